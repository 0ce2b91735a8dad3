//! `sgswitch conntrack list [--port P] [--json]` and `sgswitch conntrack flush --port P`:
//! the connection-tracking entries of a running switch through its management API
//! (`GET|DELETE /sgswitch/v1/conntrack`), like `conntrack -L` / `ovs-appctl
//! dpctl/dump-conntrack` and `conntrack -F`.
//!
//! `list` prints one line per entry, as `conntrack -L` does: protocol name and number,
//! seconds until it expires, the TCP state, the original tuple, `[UNREPLIED]` while no
//! reply was seen, the reply tuple, then the port (its zone), the policy epoch it was
//! judged under and `[CUT]` if a policy change cut it. The count goes to stderr.
//!
//! Owns: the commands' flags and the line format. May not use the store or the runtime:
//! everything goes through HTTP.

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::Value;

use super::client::encode;
use super::client::output::text;
use super::stats::{fail, print_json, ApiOpts};
use super::EXIT_OK;

/// `sgswitch conntrack …`
#[derive(Subcommand, Debug)]
pub enum ConntrackCommand {
    /// List the live connection-tracking entries (like `conntrack -L`)
    List {
        /// Only the entries of this port (name or id)
        #[arg(long, value_name = "PORT")]
        port: Option<String>,
        /// Print the API's JSON instead of lines
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiOpts,
    },
    /// Forget every connection of a port (its next packets are judged as new)
    Flush {
        /// The port (name or id)
        #[arg(long, value_name = "PORT")]
        port: String,
        #[command(flatten)]
        api: ApiOpts,
    },
}

/// Run `sgswitch conntrack …`.
pub fn run(cmd: ConntrackCommand) -> ExitCode {
    let r = match cmd {
        ConntrackCommand::List { port, json, api } => list(&api, port.as_deref(), json),
        ConntrackCommand::Flush { port, api } => flush(&api, &port),
    };
    match r {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(e) => fail(e),
    }
}

fn list(api: &ApiOpts, port: Option<&str>, json: bool) -> Result<(), String> {
    let c = api.client()?;
    let path = match port {
        Some(p) => format!("/sgswitch/v1/conntrack?port={}", encode(p)),
        None => "/sgswitch/v1/conntrack".to_string(),
    };
    let v = c.get(&path).map_err(|e| e.to_string())?;
    let entries = v["conntrack"].as_array().cloned().unwrap_or_default();
    if json {
        print_json(&Value::Array(entries));
        return Ok(());
    }
    for e in &entries {
        println!("{}", entry_line(e));
    }
    let n = entries.len();
    eprintln!(
        "sgswitch: {n} flow entr{} shown",
        if n == 1 { "y" } else { "ies" }
    );
    Ok(())
}

fn flush(api: &ApiOpts, port: &str) -> Result<(), String> {
    let c = api.client()?;
    let v = c
        .delete(&format!("/sgswitch/v1/conntrack?port={}", encode(port)))
        .map_err(|e| e.to_string())?;
    let n = v["flushed"].as_u64().unwrap_or(0);
    println!(
        "{n} connection{} of port {} flushed",
        if n == 1 { "" } else { "s" },
        text(&v["port"])
    );
    Ok(())
}

/// One tuple, `src=… dst=… sport=… dport=…` (ICMP: `type=… code=… id=…`), from the
/// original direction or (`reply`) the reply direction.
fn tuple(e: &Value, reply: bool) -> String {
    let (src, dst) = if reply {
        (text(&e["dst"]), text(&e["src"]))
    } else {
        (text(&e["src"]), text(&e["dst"]))
    };
    let mut s = format!("src={src} dst={dst}");
    if e.get("sport").is_some() {
        let (sp, dp) = if reply {
            (&e["dport"], &e["sport"])
        } else {
            (&e["sport"], &e["dport"])
        };
        s.push_str(&format!(" sport={sp} dport={dp}"));
    } else if e.get("icmp_id").is_some() && !reply {
        s.push_str(&format!(
            " type={} code={} id={}",
            e["icmp_type"], e["icmp_code"], e["icmp_id"]
        ));
    } else if e.get("icmp_id").is_some() {
        s.push_str(&format!(" id={}", e["icmp_id"]));
    }
    s
}

/// One entry as a `conntrack -L`-like line.
pub fn entry_line(e: &Value) -> String {
    let secs = e["expires_in"].as_f64().unwrap_or(0.0).ceil() as u64;
    let mut s = format!(
        "{:<8} {} {secs} ",
        text(&e["protocol"]),
        e["protocol_number"]
    );
    let state = text(&e["state"]);
    if text(&e["protocol"]) == "tcp" {
        s.push_str(&state);
        s.push(' ');
    }
    s.push_str(&tuple(e, false));
    if e["seen_reply"] != Value::Bool(true) {
        s.push_str(" [UNREPLIED]");
    }
    s.push(' ');
    s.push_str(&tuple(e, true));
    s.push_str(&format!(
        " port={} zone={} epoch={}",
        text(&e["port"]),
        e["zone"],
        e["epoch"]
    ));
    if e["cut"] == Value::Bool(true) {
        s.push_str(" [CUT]");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lines_like_conntrack() {
        let tcp = json!({"port": "vm-b", "zone": 1, "ethertype": "IPv4", "protocol": "tcp",
            "protocol_number": 6, "state": "ESTABLISHED", "src": "10.0.0.10",
            "dst": "10.0.0.11", "sport": 40000, "dport": 22, "seen_reply": true,
            "expires_in": 86399.2, "epoch": 3, "cut": false});
        assert_eq!(
            entry_line(&tcp),
            "tcp      6 86400 ESTABLISHED src=10.0.0.10 dst=10.0.0.11 sport=40000 dport=22 \
             src=10.0.0.11 dst=10.0.0.10 sport=22 dport=40000 port=vm-b zone=1 epoch=3"
        );
        let icmp = json!({"port": "vm-a", "zone": 0, "protocol": "icmp", "protocol_number": 1,
            "state": "icmp", "src": "10.0.0.10", "dst": "10.0.0.11", "icmp_type": 8,
            "icmp_code": 0, "icmp_id": 77, "seen_reply": false, "expires_in": 29.0,
            "epoch": 1, "cut": true});
        assert_eq!(
            entry_line(&icmp),
            "icmp     1 29 src=10.0.0.10 dst=10.0.0.11 type=8 code=0 id=77 [UNREPLIED] \
             src=10.0.0.11 dst=10.0.0.10 id=77 port=vm-a zone=0 epoch=1 [CUT]"
        );
    }
}
