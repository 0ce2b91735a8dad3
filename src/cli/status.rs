//! `sgswitch status [--json]` and `sgswitch log-level [LEVEL]`: what a running switch is
//! and how it logs, from its management API (`GET /sgswitch/v1/status`,
//! `GET|PUT /sgswitch/v1/log-level`), with the client token as every client command
//! ([`super::stats::ApiOpts`]).
//!
//! `status` prints the version, pid, uptime, config file, state directory, log level,
//! policy epoch and when it was published, readiness (what is not ready), the last
//! reload, the workers with their cores and ports, and the ports (backend, interface,
//! worker, UP/DOWN and why). Exit 0 when the switch answered (ready or not: `status` is
//! for reading; `/readyz` and `curl -f` are the probe), 1 otherwise.
//!
//! Owns: the two commands' flags and output. May not use the store or the runtime:
//! everything goes through HTTP.

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::Args;
use serde_json::{json, Value};

use super::client::output::{table, text};
use super::stats::{fail, print_json, ApiOpts};
use super::EXIT_OK;

/// Arguments of `sgswitch status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub api: ApiOpts,
    /// Print the API's JSON instead of text
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `sgswitch log-level`.
#[derive(Args, Debug)]
pub struct LogLevelArgs {
    /// The new level: off, error, warn, info, debug, trace (none: print the current one)
    #[arg(value_name = "LEVEL", value_parser = super::logging::parse_level)]
    pub level: Option<tracing_subscriber::filter::LevelFilter>,
    #[command(flatten)]
    pub api: ApiOpts,
}

/// `3725` → `1h 2m 5s`.
fn uptime(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m {s}s"),
        _ => format!("{d}d {h}h {m}m"),
    }
}

/// The human form of a status document (`status` of the API's answer).
pub fn render(s: &Value) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "sgswitch {} (pid {})", text(&s["version"]), s["pid"]);
    let _ = writeln!(
        o,
        "uptime      {} (since {})",
        uptime(s["uptime_s"].as_u64().unwrap_or(0)),
        text(&s["started_at"])
    );
    let _ = writeln!(o, "config      {}", text(&s["config"]));
    let state = match s["state_dir"].as_str() {
        Some(d) => d.to_string(),
        None => "none (API changes are lost at exit)".into(),
    };
    let _ = writeln!(o, "state dir   {state}");
    let _ = writeln!(o, "log level   {}", text(&s["log_level"]));
    let _ = writeln!(
        o,
        "policy      epoch {}, published {}",
        s["policy"]["epoch"],
        text(&s["policy"]["published_at"])
    );
    let ready = if s["ready"].as_bool() == Some(true) {
        "yes".to_string()
    } else {
        let r = &s["readiness"];
        let mut why: Vec<String> = r["ports"]["not_ready"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| format!("port {}: {}", text(&p["port"]), text(&p["reason"])))
            .collect();
        if r["policy"]["ok"].as_bool() == Some(false) {
            why.push("policy not published".into());
        }
        if r["store"]["ok"].as_bool() == Some(false) {
            why.push(format!("store: {}", text(&r["store"]["reason"])));
        }
        format!("NO ({})", why.join("; "))
    };
    let _ = writeln!(o, "ready       {ready}");
    let last = &s["last_reload"];
    let reload = if last.is_null() {
        "none".to_string()
    } else if last["ok"].as_bool() == Some(true) {
        format!(
            "ok at {} ({}), epoch {}",
            text(&last["at"]),
            text(&last["trigger"]),
            last["epoch"]
        )
    } else {
        let n = last["problems"].as_array().map_or(0, Vec::len);
        format!(
            "FAILED at {} ({}), {n} problem(s); policy unchanged",
            text(&last["at"]),
            text(&last["trigger"])
        )
    };
    let _ = writeln!(o, "last reload {reload}\n");
    let workers: Vec<Vec<String>> = s["workers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| {
            let ports: Vec<String> = w["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(text)
                .collect();
            vec![
                w["worker"].to_string(),
                w["core"].as_u64().map_or("-".into(), |c| c.to_string()),
                ports.join(", "),
            ]
        })
        .collect();
    o.push_str(&table(&["Worker", "Core", "Ports"], &workers));
    o.push('\n');
    let ports: Vec<Vec<String>> = s["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            vec![
                text(&p["name"]),
                text(&p["backend"]),
                text(&p["ifname"]),
                // Every worker of a multiqueue port ("0, 1"); older servers: "worker".
                match p["workers"].as_array() {
                    Some(ws) if !ws.is_empty() => ws
                        .iter()
                        .map(Value::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                    _ => p["worker"].to_string(),
                },
                match p["reason"].as_str() {
                    Some(r) => format!("{} ({r})", text(&p["state"])),
                    None => text(&p["state"]),
                },
            ]
        })
        .collect();
    o.push_str(&table(
        &["Port", "Backend", "Interface", "Worker", "State"],
        &ports,
    ));
    o
}

/// Run `sgswitch status`.
pub fn run(args: &StatusArgs) -> ExitCode {
    let c = match args.api.client() {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    match c.get("/sgswitch/v1/status") {
        Ok(v) if args.json => print_json(&v["status"]),
        Ok(v) => print!("{}", render(&v["status"])),
        Err(e) => return fail(e),
    }
    ExitCode::from(EXIT_OK)
}

/// Run `sgswitch log-level [LEVEL]`.
pub fn run_log_level(args: &LogLevelArgs) -> ExitCode {
    let c = match args.api.client() {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let answer = match args.level {
        None => c.get("/sgswitch/v1/log-level"),
        Some(l) => c.put(
            "/sgswitch/v1/log-level",
            &json!({"level": l.to_string().to_ascii_lowercase()}),
        ),
    };
    match answer {
        Ok(v) => {
            let l = &v["log_level"];
            match l["previous"].as_str() {
                Some(p) => println!("log level {} (was {p})", text(&l["level"])),
                None => println!("{}", text(&l["level"])),
            }
            ExitCode::from(EXIT_OK)
        }
        Err(e) => fail(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptimes() {
        assert_eq!(uptime(5), "5s");
        assert_eq!(uptime(3725), "1h 2m 5s");
        assert_eq!(uptime(90061), "1d 1h 1m");
    }
}
