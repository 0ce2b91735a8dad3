//! A running switch's counters as the live tests read them: `sgswitch stats --json`
//! (the client command, with the token file `run` made) and one port's row of it.

use std::process::{Command, Stdio};

use serde_json::Value;

/// `sgswitch stats --api API --json`, parsed; panics with the command's stderr if it fails.
pub fn switch_stats(api: &str) -> Value {
    let o = Command::new(env!("CARGO_BIN_EXE_sgswitch"))
        .args(["stats", "--api", api, "--json"])
        .stdin(Stdio::null())
        .output()
        .expect("run sgswitch stats");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("stats JSON")
}

/// The row of port `name` in a stats answer; panics (showing the answer) if it has none.
pub fn stats_port<'a>(s: &'a Value, name: &str) -> &'a Value {
    s["ports"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("no port {name} in {s:#}"))
}
