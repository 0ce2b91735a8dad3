//! `sgswitch port …`: list, show, and set or unset a port's security groups.
//!
//! Owns: the port commands' flags and requests. May not change anything but a port's
//! `security_groups` list (the API's `PUT /v2.0/ports/{id}`).

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::{json, Value};

use sgswitch::control::http_client::ClientError;

use super::output::{id_of, port_row, show_port, table, text, PORT_HEADERS};
use super::{client, fail, group_name_map, print_json, resolve, ClientOpts};
use crate::cli::EXIT_OK;

/// `sgswitch port …`
#[derive(Subcommand, Debug)]
pub enum PortCommand {
    /// List ports
    List {
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Show a port
    Show {
        /// Port name or id
        port: String,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Add security groups to a port (or replace them with --no-security-group first)
    Set {
        /// Port name or id
        port: String,
        /// Group to add (name or id; repeatable)
        #[arg(long = "security-group", value_name = "GROUP")]
        security_groups: Vec<String>,
        /// Remove every group first
        #[arg(long)]
        no_security_group: bool,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Remove security groups from a port
    Unset {
        /// Port name or id
        port: String,
        /// Group to remove (name or id; repeatable)
        #[arg(long = "security-group", value_name = "GROUP", required = true)]
        security_groups: Vec<String>,
        #[command(flatten)]
        opts: ClientOpts,
    },
}

/// Run `sgswitch port …`.
pub fn run_port(cmd: PortCommand) -> ExitCode {
    match port(cmd) {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(e) => fail(e),
    }
}

fn port(cmd: PortCommand) -> Result<(), String> {
    let e = |e: ClientError| e.to_string();
    match cmd {
        PortCommand::List { opts } => {
            let c = client(&opts).map_err(e)?;
            let v = c.get("/v2.0/ports").map_err(e)?;
            let ports = v["ports"].as_array().cloned().unwrap_or_default();
            if opts.json {
                print_json(&Value::Array(ports));
                return Ok(());
            }
            let names = group_name_map(&c);
            let rows: Vec<Vec<String>> = ports.iter().map(|p| port_row(p, &names)).collect();
            print!("{}", table(PORT_HEADERS, &rows));
        }
        PortCommand::Show { port, opts } => {
            let c = client(&opts).map_err(e)?;
            let p = resolve(&c, "ports", "port", &port)?;
            show_port(&c, &p, opts.json);
        }
        PortCommand::Set {
            port,
            security_groups,
            no_security_group,
            opts,
        } => {
            let c = client(&opts).map_err(e)?;
            let p = resolve(&c, "ports", "port", &port)?;
            let mut ids: Vec<String> = if no_security_group {
                Vec::new()
            } else {
                p["security_groups"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(text)
                    .collect()
            };
            for g in &security_groups {
                let id = id_of(&resolve(&c, "security-groups", "security_group", g)?);
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            let v = c
                .put(
                    &format!("/v2.0/ports/{}", id_of(&p)),
                    &json!({"port": {"security_groups": ids}}),
                )
                .map_err(e)?;
            show_port(&c, &v["port"], opts.json);
        }
        PortCommand::Unset {
            port,
            security_groups,
            opts,
        } => {
            let c = client(&opts).map_err(e)?;
            let p = resolve(&c, "ports", "port", &port)?;
            let mut ids: Vec<String> = p["security_groups"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(text)
                .collect();
            for g in &security_groups {
                let id = id_of(&resolve(&c, "security-groups", "security_group", g)?);
                if !ids.contains(&id) {
                    return Err(format!("security group {g} is not set on port {port}"));
                }
                ids.retain(|x| *x != id);
            }
            let v = c
                .put(
                    &format!("/v2.0/ports/{}", id_of(&p)),
                    &json!({"port": {"security_groups": ids}}),
                )
                .map_err(e)?;
            show_port(&c, &v["port"], opts.json);
        }
    }
    Ok(())
}
