//! `sgswitch stats [--api URL] [--json] [--rules] [--watch]`: the counters of a running
//! switch, from its management API (`GET /sgswitch/v1/stats`): per port (frames, bytes,
//! drops by reason), per worker, rule hits, connection tracking and the packet log.
//! `--watch` redraws the tables every second with rates (frames/s, drops/s) until
//! Ctrl-C, with a plain ANSI clear-and-redraw.
//!
//! Also [`ApiOpts`], the `--api URL` / `--token-file` options of the commands that
//! observe a running switch (`stats`, `conntrack`, `capture`), and [`client_token`], the
//! token every client command sends: `--token-file FILE`, else `$SGSWITCH_API_TOKEN`,
//! else the default token file that `sgswitch run` created (root's
//! `/run/sgswitch/api-token`) when it exists; `--token TOKEN` on the command line is still
//! accepted, with a warning (`ps` shows it to every local user).
//!
//! Owns: the command's flags and its tables. May not use the store or the runtime:
//! everything goes through HTTP.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::Value;

use sgswitch::control::api::token;
use sgswitch::control::http_client::Client;

use super::client::output::{table, text};
use super::client::DEFAULT_ENDPOINT;
use super::{EXIT_INVALID, EXIT_OK};

/// Where the running switch's API is, and its token.
#[derive(Args, Debug, Clone)]
pub struct ApiOpts {
    /// Management API of the running switch
    #[arg(long = "api", visible_alias = "endpoint", value_name = "URL", default_value = DEFAULT_ENDPOINT)]
    pub api: String,
    /// File holding the API token (default: $SGSWITCH_API_TOKEN, else the token file
    /// `sgswitch run` created, /run/sgswitch/api-token for root)
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Deprecated: the API token itself (every local user sees it in `ps`)
    #[arg(long, value_name = "TOKEN", hide = true)]
    pub token: Option<String>,
}

impl ApiOpts {
    pub fn client(&self) -> Result<Client, String> {
        Client::new(&self.api, self.token()?).map_err(|e| e.to_string())
    }

    /// The token to send (see [`client_token`]).
    pub fn token(&self) -> Result<Option<String>, String> {
        client_token(self.token.as_deref(), self.token_file.as_deref())
    }
}

/// The token a client command sends: `arg` (`--token`, warned on stderr), else `file`
/// (`--token-file`), else `$SGSWITCH_API_TOKEN`, else the default token file if it exists.
pub fn client_token(arg: Option<&str>, file: Option<&Path>) -> Result<Option<String>, String> {
    let t = token::client_token(arg, file).map_err(|e| e.to_string())?;
    if let Some(note) = &t.note {
        eprintln!("sgswitch: {note}");
    }
    Ok(t.token)
}

/// Print `e` as the commands do and return exit code 1.
pub fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("sgswitch: {e}");
    ExitCode::from(EXIT_INVALID)
}

/// Pretty JSON on stdout.
pub fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

/// Arguments of `sgswitch stats`.
#[derive(Args, Debug)]
pub struct StatsArgs {
    #[command(flatten)]
    pub api: ApiOpts,
    /// Print the API's JSON instead of tables
    #[arg(long)]
    pub json: bool,
    /// List every rule, also those without hits (dead rules)
    #[arg(long)]
    pub rules: bool,
    /// Redraw every second, with rates, until Ctrl-C
    #[arg(long, conflicts_with = "json")]
    pub watch: bool,
}

const PATH: &str = "/sgswitch/v1/stats";

/// Run `sgswitch stats`.
pub fn run(args: &StatsArgs) -> ExitCode {
    let c = match args.api.client() {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    if args.watch {
        return watch(&c, args.rules);
    }
    match c.get(PATH) {
        Ok(v) if args.json => print_json(&v["stats"]),
        Ok(v) => print!("{}", render(&v["stats"], args.rules, None)),
        Err(e) => return fail(e),
    }
    ExitCode::from(EXIT_OK)
}

/// `--watch`: fetch, clear the terminal, draw; every second until SIGINT or SIGTERM.
fn watch(c: &Client, all_rules: bool) -> ExitCode {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&stop)) {
            return fail(format!("cannot handle signals: {e}"));
        }
    }
    let mut prev: Option<(Value, Instant)> = None;
    while !stop.load(Ordering::Relaxed) {
        let v = match c.get(PATH) {
            Ok(v) => v["stats"].clone(),
            Err(e) => return fail(e),
        };
        let now = Instant::now();
        let rates = prev
            .as_ref()
            .map(|(p, t)| (p, now.duration_since(*t).as_secs_f64()));
        print!(
            "\x1b[H\x1b[2J{}\nevery 1 s; Ctrl-C to stop\n",
            render(&v, all_rules, rates)
        );
        prev = Some((v, now));
        let until = now + Duration::from_secs(1);
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    ExitCode::from(EXIT_OK)
}

fn num(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// A per-second rate of `field` of port `name` between `prev` and now.
fn rate(prev: Option<(&Value, f64)>, name: &str, now: u64, field: &str) -> String {
    let Some((p, secs)) = prev else {
        return "-".into();
    };
    let before = p["ports"]
        .as_array()
        .and_then(|ps| ps.iter().find(|x| x["name"] == name))
        .map_or(0, |x| num(&x[field]));
    if secs <= 0.0 {
        return "-".into();
    }
    format!("{:.0}", now.saturating_sub(before) as f64 / secs)
}

/// The tables of one stats answer; with the previous answer and the seconds since
/// (`--watch`), rate columns too.
pub fn render(s: &Value, all_rules: bool, prev: Option<(&Value, f64)>) -> String {
    let empty = Vec::new();
    let arr = |v: &Value| v.as_array().cloned().unwrap_or_default();
    let workers = arr(&s["workers"]);
    let mut out = format!(
        "policy epoch {}, {} worker{}\n\n",
        num(&s["epoch"]),
        workers.len(),
        if workers.len() == 1 { "" } else { "s" }
    );
    let mut headers = vec![
        "Port",
        "RX frames",
        "TX frames",
        "RX bytes",
        "TX bytes",
        "Dropped",
    ];
    if prev.is_some() {
        headers.extend(["RX/s", "TX/s", "Drops/s"]);
    }
    headers.push("Drops by reason");
    let rows: Vec<Vec<String>> = arr(&s["ports"])
        .iter()
        .map(|p| {
            let name = text(&p["name"]);
            let mut row = vec![
                name.clone(),
                num(&p["rx_packets"]).to_string(),
                num(&p["tx_packets"]).to_string(),
                num(&p["rx_bytes"]).to_string(),
                num(&p["tx_bytes"]).to_string(),
                num(&p["dropped"]).to_string(),
            ];
            if prev.is_some() {
                for f in ["rx_packets", "tx_packets", "dropped"] {
                    row.push(rate(prev, &name, num(&p[f]), f));
                }
            }
            let drops: Vec<String> = p["drops"]
                .as_object()
                .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                .unwrap_or_default();
            row.push(if drops.is_empty() {
                "-".into()
            } else {
                drops.join(" ")
            });
            row
        })
        .collect();
    out.push_str(&table(&headers, &rows));
    out.push('\n');
    let rows: Vec<Vec<String>> = workers
        .iter()
        .map(|w| {
            let ct = &w["conntrack"];
            vec![
                text(&w["worker"]),
                num(&w["rx"]).to_string(),
                num(&w["tx"]).to_string(),
                num(&w["dropped"]).to_string(),
                num(&w["bursts"]).to_string(),
                num(&w["deferred_bursts"]).to_string(),
                num(&w["busy_polls"]).to_string(),
                num(&w["idle_polls"]).to_string(),
                num(&w["steered"]).to_string(),
                num(&w["inbox_full"]).to_string(),
                format!("{}/{}", num(&ct["entries"]), num(&ct["capacity"])),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "Worker",
            "RX",
            "TX",
            "Dropped",
            "Bursts",
            "Deferred",
            "Busy polls",
            "Idle polls",
            "Steered",
            "Inbox full",
            "Conntrack",
        ],
        &rows,
    ));
    out.push('\n');
    let rules = s["rules"].as_array().unwrap_or(&empty);
    let shown: Vec<&Value> = rules
        .iter()
        .filter(|r| all_rules || num(&r["hits"]) > 0)
        .collect();
    let rows: Vec<Vec<String>> = shown
        .iter()
        .map(|r| {
            vec![
                text(&r["group"]),
                text(&r["rule_id"]),
                text(&r["rule"]),
                num(&r["hits"]).to_string(),
            ]
        })
        .collect();
    out.push_str(&table(&["Group", "Rule ID", "Rule", "Hits"], &rows));
    let unhit = rules.len() - shown.len();
    if unhit > 0 {
        out.push_str(&format!(
            "({unhit} rule{} without hits; --rules lists every rule)\n",
            if unhit == 1 { "" } else { "s" }
        ));
    }
    let ct = &s["conntrack"];
    out.push_str(&format!(
        "\nconntrack: {} entries (capacity {}), {} inserts, {} evictions ({} at a port's limit), {} table-full, {} zone-full, {} expired, {} invalid\n",
        num(&ct["entries"]),
        num(&ct["capacity"]),
        num(&ct["inserts"]),
        num(&ct["evictions"]),
        num(&ct["zone_evictions"]),
        num(&ct["table_full"]),
        num(&ct["zone_full"]),
        num(&ct["expired"]),
        num(&ct["invalid"]),
    ));
    let f = &s["fragments"];
    out.push_str(&format!(
        "fragments: {} datagrams, {} held, {} recorded, {} hits, {} discarded, {} duplicates, {} overflow, {} expired\n",
        num(&f["datagrams"]),
        num(&f["held"]),
        num(&f["recorded"]),
        num(&f["hits"]),
        num(&f["discarded"]),
        num(&f["duplicates"]),
        num(&f["overflow"]),
        num(&f["expired"]),
    ));
    let l = &s["packet_log"];
    out.push_str(&format!(
        "packet log: {} written, {} suppressed (rate limit), {} overflow, {} queue full\n",
        num(&l["written"]),
        num(&l["suppressed"]),
        num(&l["overflow"]),
        num(&l["queue_full"]),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(rx: u64, drops: u64) -> Value {
        json!({
            "epoch": 2,
            "ports": [{"name": "vm-a", "rx_packets": rx, "tx_packets": 1, "rx_bytes": 640,
                       "tx_bytes": 64, "dropped": drops, "drops": {"ingress-denied": drops}}],
            "workers": [{"worker": 0, "rx": rx, "tx": 1, "dropped": drops, "bursts": 3,
                         "busy_polls": 3, "idle_polls": 9, "steered": 0, "inbox_full": 0,
                         "conntrack": {"entries": 1, "capacity": 1024}}],
            "rules": [
                {"group": "web", "rule_id": "r1", "rule": "ingress IPv4 tcp 80 from any", "hits": 4},
                {"group": "web", "rule_id": "r2", "rule": "ingress IPv4 udp 53 from any", "hits": 0}
            ],
            "conntrack": {"entries": 1, "capacity": 1024, "inserts": 4},
            "packet_log": {"written": 0}
        })
    }

    #[test]
    fn tables_and_dead_rules() {
        let t = render(&answer(10, 2), false, None);
        assert!(t.starts_with("policy epoch 2, 1 worker\n"), "{t}");
        assert!(
            t.contains("vm-a  10         1          640       64        2        ingress-denied=2"),
            "{t}"
        );
        assert!(
            t.contains("web    r1       ingress IPv4 tcp 80 from any  4"),
            "{t}"
        );
        assert!(!t.contains("r2"), "{t}");
        assert!(
            t.contains("(1 rule without hits; --rules lists every rule)"),
            "{t}"
        );
        assert!(t.contains("1/1024"), "{t}");
        let all = render(&answer(10, 2), true, None);
        assert!(all.contains("r2"), "{all}");
    }

    #[test]
    fn watch_rates() {
        let before = answer(10, 2);
        let t = render(&answer(30, 6), false, Some((&before, 2.0)));
        // 20 frames and 4 drops in 2 s.
        assert!(t.contains("RX/s  TX/s  Drops/s"), "{t}");
        assert!(t.contains("  10    0     2        ingress-denied=6"), "{t}");
    }
}
