//! What a running switch tells about itself (#13): counters, `/metrics`, `stats`,
//! `conntrack list|flush` and live captures, from `sgswitch run` between two instances in
//! network namespaces (tap ports), with real traffic; and the observation endpoints of an
//! in-process API server (no root needed).
//!
//! `observe_a_running_switch` starts one switch and checks, in order:
//! * two captures of port i1 started first (`sgswitch capture`, every frame and only the
//!   dropped ones), stopped with SIGINT at the end;
//! * traffic: ping and a TCP connection i0 → i1 (allowed), TCP to i1:7002 (no rule:
//!   `ingress-denied` at i1), ping i1 → i0 (i0 has no ingress rule);
//! * `stats --json`: frames and bytes both ways, drops by reason, rule hits of the rules
//!   that admitted ping and TCP, a dead rule at 0; the tables of `stats` and `--rules`;
//! * `/metrics` parsed by the `prometheus_client` Python package (the `.ci/run`
//!   virtualenv; under `CI=true` a missing parser fails the test): families, types and
//!   values;
//! * `conntrack list` shows the TCP connection; `flush --port i1` removes it, and the
//!   next packet of that connection is judged as new (admitted by its rule again: one
//!   more hit); an unknown port exits 1 naming it;
//! * the captures read back with `pcap-file`: dropped frames carry `port i1:
//!   ingress-denied: …`, the others `rx` / `tx`; a `--duration` capture to standard
//!   output ends by itself; the switch stops each capture once its client is gone;
//! * `sgswitch trace --api` (the live policy and entries) and `trace --config` (offline,
//!   the connection opened by `--after`) explain the same frames the same way, and the
//!   live trace leaves the connection state as it was.
//!
//! The endpoints' answers without traffic (token rule, errors) are `tests/observe_api.rs`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::*;

const POLICY: &str = r#"
[switch]
workers = 1

[[security_groups]]
name = "client"
rules = [
  { direction = "egress", ethertype = "IPv4" },
  { direction = "egress", ethertype = "IPv6" },
]

[[security_groups]]
name = "server"
rules = [
  { direction = "ingress", ethertype = "IPv4", protocol = "tcp", port_range_min = 7000, port_range_max = 7000 },
  { direction = "ingress", ethertype = "IPv4", protocol = "icmp", port_range_min = 8 },
  { direction = "ingress", ethertype = "IPv4", protocol = "udp", port_range_min = 7009, port_range_max = 7009 },
  { direction = "egress", ethertype = "IPv4" },
  { direction = "egress", ethertype = "IPv6" },
]
"#;

const EXE: &str = env!("CARGO_BIN_EXE_sgswitch");

/// Run `sgswitch ARGS`.
fn cli(args: &[&str]) -> Output {
    Command::new(EXE)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run sgswitch")
}

/// Run `sgswitch ARGS`, which must succeed; its stdout.
fn cli_ok(args: &[&str]) -> String {
    let o = cli(args);
    assert!(
        o.status.success(),
        "sgswitch {args:?}: {}\n{}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn cli_json(args: &[&str]) -> Value {
    let out = cli_ok(args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("sgswitch {args:?}: {e}:\n{out}"))
}

/// A Python with `prometheus_client`: beside `$SGSWITCH_OPENSTACK` (the `.ci/run`
/// virtualenv), this checkout's `target/osc-venv`, or `python3` on PATH.
fn prometheus_python() -> Option<PathBuf> {
    let mut c: Vec<PathBuf> = Vec::new();
    if let Ok(p) = std::env::var("SGSWITCH_OPENSTACK") {
        c.push(Path::new(&p).with_file_name("python3"));
    }
    c.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("target/osc-venv/bin/python3"));
    c.push(PathBuf::from("python3"));
    c.into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import prometheus_client"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Scrape `url` with the API token of the file `argv[2]` (#14) and parse it with
/// prometheus_client's text parser: family name → {"type", "samples": [[name, labels,
/// value]]}.
const SCRAPE_PY: &str = r#"
import json, sys, urllib.request
from prometheus_client.parser import text_string_to_metric_families
token = open(sys.argv[2]).read().strip()
req = urllib.request.Request(sys.argv[1], headers={"X-Auth-Token": token})
text = urllib.request.urlopen(req).read().decode()
out = {}
for f in text_string_to_metric_families(text):
    out[f.name] = {"type": f.type, "samples": [[s.name, s.labels, s.value] for s in f.samples]}
print(json.dumps(out))
"#;

/// `sgswitch capture …` running in the background, its stderr read line by line.
struct CaptureProc {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl CaptureProc {
    /// Start it and wait for `sgswitch: capturing` (the switch captures from then on).
    fn start(args: &[&str]) -> CaptureProc {
        let mut child = Command::new(EXE)
            .arg("capture")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sgswitch capture");
        let err = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let mut p = CaptureProc {
            child,
            lines: rx,
            seen: Vec::new(),
        };
        assert!(
            p.wait_line("sgswitch: capturing", Duration::from_secs(10)),
            "capture {args:?} did not start: {:?}",
            p.seen
        );
        p
    }

    fn wait_line(&mut self, needle: &str, within: Duration) -> bool {
        let end = Instant::now() + within;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let hit = l.contains(needle);
                    self.seen.push(l);
                    if hit {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
    }

    /// SIGINT (Ctrl-C); it must exit 0 and say how many frames it wrote.
    fn stop(mut self) -> Vec<String> {
        signal(self.child.id(), libc::SIGINT);
        let end = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait capture") {
                break s;
            }
            assert!(Instant::now() < end, "capture did not stop on SIGINT");
            std::thread::sleep(Duration::from_millis(50));
        };
        self.wait_line("frames captured", Duration::from_secs(2));
        assert!(status.success(), "capture exited {status}: {:?}", self.seen);
        std::mem::take(&mut self.seen)
    }
}

impl Drop for CaptureProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The rule of `stats` whose words are `words` in group `group`.
fn rule<'a>(stats: &'a Value, group: &str, words: &str) -> &'a Value {
    stats["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["group"] == group && r["rule"] == words)
        .unwrap_or_else(|| panic!("no rule {group}: {words} in {stats:#}"))
}

fn hits(stats: &Value, group: &str, words: &str) -> u64 {
    rule(stats, group, words)["hits"].as_u64().unwrap()
}

fn total_hits(stats: &Value) -> u64 {
    stats["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["hits"].as_u64().unwrap())
        .sum()
}

/// The TCP 7000 entries of `sgswitch conntrack list --port P --json`.
fn tcp7000(api: &str, port: &str) -> Vec<Value> {
    let v = cli_json(&["conntrack", "list", "--api", api, "--port", port, "--json"]);
    v.as_array()
        .unwrap()
        .iter()
        .filter(|e| e["protocol"] == "tcp" && e["dport"] == 7000)
        .cloned()
        .collect()
}

/// What two explanations must share: the verdict, and each stage's kind, port, result,
/// reason, conntrack state and admitting rule (group and position; ids only live).
fn trace_shape(e: &Value) -> Value {
    let stages: Vec<Value> = e["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            serde_json::json!([
                s["stage"],
                s["port"],
                s["result"],
                s["reason"],
                s["conntrack"]["state"],
                s["rule"]["group"],
                s["rule"]["rule"]
            ])
        })
        .collect();
    serde_json::json!({"stages": stages, "delivered": e["delivered"], "dropped": e["dropped"]})
}

/// `sgswitch trace --api` (the running switch: its policy and the live entries of the
/// flow) and `sgswitch trace --config` (offline, the connection opened by `--after`)
/// explain the same frames the same way, and the live trace changes nothing.
fn traces_agree(api: &str, config: &Path, c: &str, s: &str, sport: u64) {
    let config = config.to_string_lossy();
    let entries = |p| tcp7000(api, p);
    let before = (entries("i0"), entries("i1"));
    let syn = format!("tcp {c}:{sport} > {s}:7000 flags S");
    let synack = format!("i1=tcp {s}:7000 > {c}:{sport} flags SA");
    for (packet, established) in [
        (format!("tcp {c}:{sport} > {s}:7000 flags A"), true),
        (format!("tcp {c}:45999 > {s}:7000 flags S"), false),
        (format!("tcp {c}:45998 > {s}:7002 flags S"), false),
    ] {
        let live = cli_json(&["trace", "--api", api, "--in-port", "i0", &packet, "--json"]);
        let mut offline_args = vec!["trace", "--config", &config, "--in-port", "i0"];
        let after_syn = format!("i0={syn}");
        if established {
            offline_args.extend_from_slice(&["--after", &after_syn, "--after", &synack]);
        }
        offline_args.extend_from_slice(&[&packet, "--json"]);
        let offline = cli_json(&offline_args);
        assert_eq!(trace_shape(&live), trace_shape(&offline), "{packet}");
        let states: Vec<&str> = live["stages"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["conntrack"]["state"].as_str())
            .collect();
        if established {
            assert_eq!(states, ["established", "established"], "{live:#}");
        } else {
            assert_eq!(states.first(), Some(&"new"), "{live:#}");
            // Live, the admitting rules carry their Neutron ids.
            let rule = live["stages"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["stage"] == "egress")
                .map(|s| &s["rule"])
                .unwrap();
            assert!(
                rule["rule_id"].is_string() && rule["group_id"].is_string(),
                "{live:#}"
            );
        }
    }
    // The same entries, their deadlines not pushed back (a trace is no packet).
    let after = (entries("i0"), entries("i1"));
    let strip = |v: &[Value]| -> Vec<Value> {
        v.iter()
            .map(|e| {
                let mut e = e.clone();
                e.as_object_mut().unwrap().remove("expires_in");
                e
            })
            .collect()
    };
    let left = |v: &[Value]| v[0]["expires_in"].as_f64().unwrap();
    for (b, a) in [(&before.0, &after.0), (&before.1, &after.1)] {
        assert_eq!(
            strip(a),
            strip(b),
            "a live trace changes no connection state"
        );
        assert!(left(a) <= left(b), "not refreshed: {a:?} {b:?}");
    }
}

#[test]
fn observe_a_running_switch() {
    let test = "observe_a_running_switch";
    if !env_ready(test, Backend::Tap) {
        return;
    }
    let python = prometheus_python();
    if python.is_none() {
        assert!(
            !in_ci(),
            "{test}: CI=true but no python3 with prometheus_client (the .ci/run virtualenv)"
        );
        eprintln!("{test}: no prometheus_client: /metrics is checked without the parser");
    }
    let topo = Topo::new("obs", Backend::Tap, 2);
    let config = format!(
        "{POLICY}{}",
        topo.ports_toml(&[r#"["client"]"#, r#"["server"]"#])
    );
    let path = topo.write_config(&config);
    let sw = Switch::start(&path, &topo.dir.path);
    topo.configure();
    let api = format!("http://{}", sw.api_addr().expect("API address in the log"));
    let (cli0, srv) = (&topo.insts[0], &topo.insts[1]);

    // Captures of i1 first, so that they see the traffic.
    let all_file = topo.dir.path.join("all.pcapng");
    let dropped_file = topo.dir.path.join("dropped.pcapng");
    let all_s = all_file.to_string_lossy().into_owned();
    let dropped_s = dropped_file.to_string_lossy().into_owned();
    let cap_all = CaptureProc::start(&["--api", &api, "--port", "i1", "-w", &all_s]);
    let cap_dropped =
        CaptureProc::start(&["--api", &api, "--port", "i1", "--dropped", "-w", &dropped_s]);
    std::thread::sleep(Duration::from_millis(200));

    // Traffic.
    let _server = echo_server(&srv.ns, &[7000, 7002], &[]);
    for _ in 0..3 {
        assert!(ping(&cli0.ns, &srv.v4, None, 5), "ping i0 -> i1");
    }
    // One echo of 3000 bytes over 1500-byte links: a datagram in fragments each way.
    let big = cli0
        .ns
        .cmd(&["ping", "-n", "-c", "1", "-s", "3000", "-w", "5", &srv.v4])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("ping runs");
    assert!(big.success(), "fragmented ping i0 -> i1");
    let mut conn = LineClient::connect(&cli0.ns, &srv.v4, 7000, 5).expect("tcp/7000 i0 -> i1");
    assert_eq!(conn.exchange("hello"), "ok");
    assert_eq!(probe(&cli0.ns, "tcp", &srv.v4, 7002, 2), "TIMEOUT");
    assert!(
        !ping(&srv.ns, &cli0.v4, None, 1),
        "ping i1 -> i0 must be blocked"
    );

    // Counters.
    let stats = cli_json(&["stats", "--api", &api, "--json"]);
    assert_eq!(stats["epoch"], 1);
    for name in ["i0", "i1"] {
        let p = stats_port(&stats, name);
        let (rx, tx) = (
            p["rx_packets"].as_u64().unwrap(),
            p["tx_packets"].as_u64().unwrap(),
        );
        assert!(rx >= 5 && tx >= 5, "{name}: rx {rx} tx {tx}");
        assert!(p["rx_bytes"].as_u64().unwrap() >= 60 * rx, "{p}");
        assert!(p["tx_bytes"].as_u64().unwrap() >= 60 * tx, "{p}");
        assert!(
            p["drops"]["ingress-denied"].as_u64().unwrap_or(0) >= 1,
            "{name}: {p}"
        );
    }
    let tcp_rule = "ingress IPv4 tcp 7000 from any";
    let icmp_rule = "ingress IPv4 icmp type 8 from any";
    let dead_rule = "ingress IPv4 udp 7009 from any";
    assert_eq!(hits(&stats, "server", dead_rule), 0, "the dead rule");
    // 3 pings, the TCP connection at i0 and i1, the 7002 attempt at i0.
    assert!(total_hits(&stats) >= 8, "{stats:#}");
    assert!(hits(&stats, "server", icmp_rule) >= 3, "{stats:#}");
    assert_eq!(hits(&stats, "server", tcp_rule), 1, "{stats:#}");
    assert!(
        hits(&stats, "client", "egress IPv4 any to any") >= 5,
        "{stats:#}"
    );
    assert!(
        stats["conntrack"]["entries"].as_u64().unwrap() >= 2,
        "{stats:#}"
    );
    assert!(
        stats["conntrack"]["inserts"].as_u64().unwrap() >= 8,
        "{stats:#}"
    );
    assert_eq!(stats["workers"].as_array().unwrap().len(), 1);
    let w = &stats["workers"][0];
    assert!(w["bursts"].as_u64().unwrap() > 0 && w["busy_polls"].as_u64().unwrap() > 0);
    assert_eq!(stats["packet_log"]["written"], 0);
    // The fragmented echo and its reply: each first fragment judged and recorded, the
    // later ones given its verdict.
    let fr = &stats["fragments"];
    assert!(fr["recorded"].as_u64().unwrap() >= 2, "{fr}");
    assert!(fr["hits"].as_u64().unwrap() >= 2, "{fr}");
    assert_eq!(w["fragments"]["recorded"], fr["recorded"], "{stats:#}");

    let table = cli_ok(&["stats", "--api", &api]);
    assert!(table.starts_with("policy epoch 1, 1 worker\n"), "{table}");
    assert!(table.contains("ingress-denied="), "{table}");
    assert!(!table.contains(dead_rule), "{table}");
    assert!(
        table.contains("without hits; --rules lists every rule"),
        "{table}"
    );
    let table = cli_ok(&["stats", "--api", &api, "--rules"]);
    assert!(table.contains(dead_rule), "{table}");

    // /metrics, through the reference parser.
    let metrics_url = format!("{api}/metrics");
    if let Some(py) = &python {
        let o = Command::new(py)
            .args(["-c", SCRAPE_PY, &metrics_url])
            // The token file `sgswitch run` made (the default, as the client commands).
            .arg(sgswitch::control::api::token::default_token_file())
            .output()
            .expect("run python");
        assert!(
            o.status.success(),
            "prometheus_client could not parse /metrics: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let fams: Value = serde_json::from_slice(&o.stdout).expect("parser output");
        let fam = |name: &str, ty: &str| -> Vec<Value> {
            let f = &fams[name];
            assert_eq!(f["type"], ty, "family {name}: {fams:#}");
            f["samples"].as_array().unwrap().clone()
        };
        let value = |samples: &[Value], labels: &[(&str, &str)]| -> f64 {
            samples
                .iter()
                .find(|s| labels.iter().all(|(k, v)| s[1][*k] == *v))
                .unwrap_or_else(|| panic!("no sample {labels:?} in {samples:?}"))[2]
                .as_f64()
                .unwrap()
        };
        for (f, field) in [
            ("sgswitch_port_rx_packets", "rx_packets"),
            ("sgswitch_port_tx_packets", "tx_packets"),
            ("sgswitch_port_rx_bytes", "rx_bytes"),
            ("sgswitch_port_tx_bytes", "tx_bytes"),
        ] {
            let s = fam(f, "counter");
            assert_eq!(s.len(), 2, "{f}: {s:?}");
            assert!(s.iter().all(|x| x[0] == format!("{f}_total")), "{s:?}");
            let v = value(&s, &[("port", "i1")]);
            assert!(
                v >= stats_port(&stats, "i1")[field].as_f64().unwrap(),
                "{f}"
            );
        }
        let drops = fam("sgswitch_drops", "counter");
        assert!(value(&drops, &[("port", "i1"), ("reason", "ingress-denied")]) >= 1.0);
        assert!(
            drops.iter().all(|s| s[2].as_f64().unwrap() > 0.0),
            "{drops:?}"
        );
        let rule_hits = fam("sgswitch_rule_hits", "counter");
        assert_eq!(rule_hits.len(), stats["rules"].as_array().unwrap().len());
        let dead = rule(&stats, "server", dead_rule);
        let dead_labels = [
            ("group", "server"),
            ("rule_id", dead["rule_id"].as_str().unwrap()),
            ("group_id", dead["group_id"].as_str().unwrap()),
            ("direction", "ingress"),
        ];
        assert_eq!(value(&rule_hits, &dead_labels), 0.0);
        let tcp = rule(&stats, "server", tcp_rule);
        assert_eq!(
            value(&rule_hits, &[("rule_id", tcp["rule_id"].as_str().unwrap())]),
            1.0
        );
        for f in ["sgswitch_conntrack_entries", "sgswitch_conntrack_capacity"] {
            assert!(value(&fam(f, "gauge"), &[("worker", "0")]) > 0.0, "{f}");
        }
        for f in [
            "sgswitch_conntrack_inserts",
            "sgswitch_worker_busy_polls",
            "sgswitch_worker_idle_polls",
            "sgswitch_worker_bursts",
            "sgswitch_fragment_datagrams_recorded",
            "sgswitch_fragment_hits",
        ] {
            assert!(value(&fam(f, "counter"), &[("worker", "0")]) > 0.0, "{f}");
        }
        for f in [
            "sgswitch_conntrack_evictions",
            "sgswitch_conntrack_zone_evictions",
            "sgswitch_conntrack_table_full",
            "sgswitch_conntrack_zone_full",
            "sgswitch_worker_steered",
        ] {
            assert_eq!(value(&fam(f, "counter"), &[("worker", "0")]), 0.0, "{f}");
        }
        let log = fam("sgswitch_packet_log_records", "counter");
        for outcome in ["written", "suppressed", "overflow", "queue_full"] {
            assert_eq!(value(&log, &[("outcome", outcome)]), 0.0);
        }
        assert_eq!(value(&fam("sgswitch_policy_epoch", "gauge"), &[]), 1.0);
        let build = fam("sgswitch_build_info", "gauge");
        assert_eq!(
            value(&build, &[("version", env!("CARGO_PKG_VERSION"))]),
            1.0
        );
    }

    // Connection tracking: the TCP connection at both ports, flushed at i1, then judged
    // as new by the next packet (admitted by its rule again).
    let listed = cli_ok(&["conntrack", "list", "--api", &api, "--port", "i1"]);
    assert!(
        listed.lines().any(|l| l.starts_with("tcp      6 ")
            && l.contains(" ESTABLISHED ")
            && l.contains("dport=7000")
            && l.contains(" port=i1 ")),
        "{listed}"
    );
    for p in ["i0", "i1"] {
        let e = tcp7000(&api, p);
        assert_eq!(e.len(), 1, "{p}: {e:?}");
        assert_eq!(e[0]["state"], "ESTABLISHED");
        assert_eq!(e[0]["seen_reply"], true);
        assert_eq!(e[0]["src"], cli0.v4.as_str());
    }
    let sport = tcp7000(&api, "i0")[0]["sport"].as_u64().unwrap();
    traces_agree(&api, &path, &cli0.v4, &srv.v4, sport);
    let o = cli(&["conntrack", "list", "--api", &api, "--port", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nope"), "{o:?}");
    let flushed = cli_ok(&["conntrack", "flush", "--api", &api, "--port", "i1"]);
    let n: u64 = flushed.split_whitespace().next().unwrap().parse().unwrap();
    assert!(
        n >= 1 && flushed.contains("of port i1 flushed"),
        "{flushed}"
    );
    assert!(tcp7000(&api, "i1").is_empty(), "flushed");
    assert_eq!(tcp7000(&api, "i0").len(), 1, "i0's entry stays");
    let before = cli_json(&["stats", "--api", &api, "--json"]);
    assert_eq!(conn.exchange("again"), "ok");
    let after = cli_json(&["stats", "--api", &api, "--json"]);
    let e = tcp7000(&api, "i1");
    assert_eq!(e.len(), 1, "the connection is tracked again at i1: {e:?}");
    assert!(
        after["conntrack"]["inserts"].as_u64() > before["conntrack"]["inserts"].as_u64(),
        "judged as new"
    );
    assert_eq!(
        hits(&after, "server", tcp_rule),
        hits(&before, "server", tcp_rule) + 1,
        "admitted by its rule again"
    );
    let o = cli(&["conntrack", "flush", "--api", &api, "--port", "nope"]);
    assert_eq!(o.status.code(), Some(1));

    // A capture to standard output that ends by itself.
    let o = cli(&[
        "capture",
        "--api",
        &api,
        "--port",
        "i0",
        "--duration",
        "0.5",
        "-w",
        "-",
    ]);
    assert!(o.status.success(), "{o:?}");
    let stdout_file = topo.dir.path.join("stdout.pcapng");
    std::fs::write(&stdout_file, &o.stdout).unwrap();
    let (names, _) = read_pcapng(&stdout_file);
    assert_eq!(names, ["i0"]);
    let o = cli(&["capture", "--api", &api, "--port", "nope", "-w", "-"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nope"), "{o:?}");

    // The captures: stopped like Ctrl-C, read back with their comments.
    let log_at = sw.log_len();
    let said = cap_dropped.stop();
    assert!(
        said.iter()
            .any(|l| l.contains("frames captured from port i1 (dropped only)")),
        "{said:?}"
    );
    let said = cap_all.stop();
    assert!(
        said.iter().any(|l| l.contains("frames captured")),
        "{said:?}"
    );
    let (names, dropped) = read_pcapng(&dropped_file);
    assert_eq!(names, ["i1"]);
    assert!(!dropped.is_empty(), "no dropped frame captured");
    let denied = "port i1: ingress-denied: no ingress rule of the receiving port allows it";
    for (f, c) in &dropped {
        assert_eq!(c.len(), 1, "{}: {c:?}", frame_summary(f));
        assert!(c[0].starts_with("port i1: "), "{c:?}");
    }
    assert!(
        dropped.iter().any(|(f, c)| c[0] == denied
            && frame_summary(f).contains("tcp ")
            && frame_summary(f).contains("> 7002 [S]")),
        "no denied SYN to 7002 among {:?}",
        dropped
            .iter()
            .map(|(f, c)| format!("{} / {c:?}", frame_summary(f)))
            .collect::<Vec<_>>()
    );
    let (names, all) = read_pcapng(&all_file);
    assert_eq!(names, ["i1"]);
    let has = |comment: &str, what: &str| {
        all.iter()
            .any(|(f, c)| c.iter().any(|x| x == comment) && frame_summary(f).contains(what))
    };
    let summary: Vec<String> = all
        .iter()
        .map(|(f, c)| format!("{} / {c:?}", frame_summary(f)))
        .collect();
    assert!(
        has("tx", "icmp type 8"),
        "echo request delivered to i1: {summary:#?}"
    );
    assert!(
        has("rx", "icmp type 0"),
        "echo reply received from i1: {summary:#?}"
    );
    assert!(
        has("tx", "> 7000"),
        "tcp/7000 delivered to i1: {summary:#?}"
    );
    assert!(has(denied, "> 7002"), "{summary:#?}");
    // The switch stopped both captures once their clients were gone.
    let end = Instant::now() + Duration::from_secs(5);
    while sw.log_from(log_at).matches("capture ended").count() < 2 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        sw.log_from(log_at).matches("capture ended").count(),
        2,
        "{}",
        sw.log_from(log_at)
    );
    drop(conn);
}
