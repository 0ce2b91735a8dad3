//! The API client commands, `sgswitch security-group …` and `sgswitch port …`: they talk
//! HTTP to a running switch's management API (`control::api`) with the small client in
//! `control::http_client`, mirroring the `openstack` verbs and flags.
//!
//! * this file: the options every command takes ([`ClientOpts`]), name-or-id resolution,
//!   percent-encoding, the group-name map and JSON output;
//! * [`security_group`] — groups and rules; [`port`] — ports;
//! * [`output`] — the tables and `show` layouts.
//!
//! The token: `--token-file`, `$SGSWITCH_API_TOKEN` or the default token file
//! (`super::stats::client_token`).
//!
//! Owns: the client side of the API. May not use the store or the runtime: everything
//! goes through HTTP, as with any other client.

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::Args;
use serde_json::Value;

use sgswitch::control::http_client::{Client, ClientError};

use super::EXIT_INVALID;

pub mod output;
pub mod port;
pub mod security_group;

pub use port::{run_port, PortCommand};
pub use security_group::{run_security_group, SecurityGroupCommand};

use output::{id_of, text};

/// Default API endpoint.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:9696";

/// Options every client command takes.
#[derive(Args, Debug, Clone)]
pub struct ClientOpts {
    /// API endpoint of the running switch
    #[arg(long, value_name = "URL", default_value = DEFAULT_ENDPOINT)]
    pub endpoint: String,
    /// File holding the API token (default: $SGSWITCH_API_TOKEN, else the token file
    /// `sgswitch run` created, /run/sgswitch/api-token for root)
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<std::path::PathBuf>,
    /// Deprecated: the API token itself (every local user sees it in `ps`)
    #[arg(long, value_name = "TOKEN", hide = true)]
    pub token: Option<String>,
    /// Print the API's JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

fn client(opts: &ClientOpts) -> Result<Client, ClientError> {
    let token = super::stats::client_token(opts.token.as_deref(), opts.token_file.as_deref())
        .map_err(ClientError::Token)?;
    Client::new(&opts.endpoint, token)
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("sgswitch: {e}");
    ExitCode::from(EXIT_INVALID)
}

/// Resolve a name or id of `collection` (`security-groups`, `ports`) to its object:
/// `GET …/{x}`, then `GET …?name={x}` (what the openstack client does).
fn resolve(c: &Client, collection: &str, key: &str, x: &str) -> Result<Value, String> {
    match c.get(&format!("/v2.0/{collection}/{}", encode(x))) {
        Ok(v) => return Ok(v[key].clone()),
        Err(ClientError::Status { status: 404, .. }) => {}
        Err(e) => return Err(e.to_string()),
    }
    let list = c
        .get(&format!("/v2.0/{collection}?name={}", encode(x)))
        .map_err(|e| e.to_string())?;
    let items = list[format!("{key}s")]
        .as_array()
        .cloned()
        .unwrap_or_default();
    match items.len() {
        1 => Ok(items[0].clone()),
        0 => Err(format!(
            "no {} named or with id {x:?}",
            key.replace('_', " ")
        )),
        n => Err(format!(
            "{n} {}s are named {x:?}; use the id",
            key.replace('_', " ")
        )),
    }
}

/// Percent-encode a path segment / query value.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// id → name of every security group (for readable tables).
fn group_name_map(c: &Client) -> Vec<(String, String)> {
    c.get("/v2.0/security-groups")
        .ok()
        .and_then(|v| v["security_groups"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|g| (id_of(g), text(&g["name"])))
        .collect()
}

fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding() {
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
    }
}
