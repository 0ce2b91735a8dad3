//! A running switch's counters as the live tests read them: `sgswitch stats --json`
//! (the client command, with the token file `run` made) and one port's row of it.

use std::process::{Command, Stdio};

use serde_json::Value;

/// `sgswitch stats --api API --json`, parsed; panics with the command's stderr if it fails.
pub fn switch_stats(api: &str) -> Value {
    client_json("stats", api)
}

/// `sgswitch status --api API --json`, parsed (the same way).
#[allow(dead_code)] // not every test crate reads the status
pub fn switch_status(api: &str) -> Value {
    client_json("status", api)
}

fn client_json(command: &str, api: &str) -> Value {
    let o = Command::new(env!("CARGO_BIN_EXE_sgswitch"))
        .args([command, "--api", api, "--json"])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run sgswitch {command}: {e}"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{command} JSON: {e}"))
}

/// The row of port `name` in a stats answer; panics (showing the answer) if it has none.
pub fn stats_port<'a>(s: &'a Value, name: &str) -> &'a Value {
    s["ports"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("no port {name} in {s:#}"))
}
