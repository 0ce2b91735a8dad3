//! Neutron packet logging on a running switch (#13), end to end: the stock `openstack
//! network log` commands against `sgswitch run` between two instances in network
//! namespaces (tap ports), real traffic, and the JSON lines in `[logging] file`.
//!
//! * `network log create --resource-type security_group --resource server --event ALL`
//!   while the switch runs: from then on, connections admitted by the rules of group
//!   `server` at its port (i1) are recorded once each (ACCEPT, with the rule's id), and
//!   packets dropped at i1 one by one (DROP, with the reason); port i0 (group `client`)
//!   is not logged;
//! * `network log set --disable`: nothing more is recorded; `--enable`: again;
//! * a flood of denied SYNs stays within Neutron's rate limit (`rate_limit × seconds +
//!   burst_limit`), the rest counted as suppressed in `stats`.
//!
//! The client comes from `$SGSWITCH_OPENSTACK` (the `.ci/run` virtualenv) or `openstack`
//! on PATH, with python-neutronclient; under `CI=true` a missing one fails the test.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::*;

const POLICY: &str = r#"
[switch]
workers = 1

[[security_groups]]
name = "client"
rules = [ { direction = "egress", ethertype = "IPv4" } ]

[[security_groups]]
name = "server"
rules = [
  { direction = "ingress", ethertype = "IPv4", protocol = "tcp", port_range_min = 7000, port_range_max = 7000 },
  { direction = "ingress", ethertype = "IPv4", protocol = "icmp" },
  { direction = "egress", ethertype = "IPv4" },
]
"#;

fn openstack_bin() -> Option<String> {
    std::env::var("SGSWITCH_OPENSTACK")
        .ok()
        .into_iter()
        .chain(["openstack".to_string()])
        .find(|bin| {
            Command::new(bin)
                .args(["network", "log", "create", "--help"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
}

/// `openstack --os-auth-type admin_token --os-token T --os-endpoint API ARGS -f json`,
/// which must succeed; the token is the one `sgswitch run` wrote into its default token
/// file (#14: the API requires it).
fn os(bin: &str, api: &str, args: &[&str]) -> Value {
    let token = std::fs::read_to_string(sgswitch::control::api::token::default_token_file())
        .expect("the token file sgswitch run made");
    let token = token.trim();
    let mut full = vec!["--os-auth-type", "admin_token", "--os-token", token];
    full.extend_from_slice(&["--os-endpoint", api]);
    full.extend_from_slice(args);
    let json = !matches!(args.get(2), Some(&"set") | Some(&"delete"));
    if json {
        full.extend_from_slice(&["-f", "json"]);
    }
    let o = Command::new(bin)
        .args(&full)
        .stdin(Stdio::null())
        .output()
        .expect("run openstack");
    assert!(
        o.status.success(),
        "openstack {args:?}: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    if json {
        serde_json::from_slice(&o.stdout).expect("JSON from openstack")
    } else {
        Value::Null
    }
}

/// The packet log's lines so far, parsed.
fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Wait (up to 3 s) until the log has more than `n` lines, then a little longer for the
/// rest of a batch; the lines.
fn lines_after(path: &Path, n: usize) -> Vec<Value> {
    let t = Instant::now();
    while lines(path).len() <= n && t.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    lines(path)
}

#[test]
fn network_log_records_real_traffic() {
    let test = "network_log_records_real_traffic";
    if !env_ready(test, Backend::Tap) {
        return;
    }
    let Some(bin) = openstack_bin() else {
        assert!(
            !in_ci(),
            "{test}: CI=true but no openstack client with python-neutronclient (SGSWITCH_OPENSTACK)"
        );
        common::skip(test, "no openstack client with python-neutronclient");
        return;
    };
    let topo = Topo::new("plog", Backend::Tap, 2);
    let log_file = topo.dir.path.join("packets.log");
    let config = format!(
        "{POLICY}\n[logging]\nfile = \"{}\"\n{}",
        log_file.display(),
        topo.ports_toml(&[r#"["client"]"#, r#"["server"]"#])
    );
    let path = topo.write_config(&config);
    let sw = Switch::start(&path, &topo.dir.path);
    topo.configure();
    let api = format!("http://{}", sw.api_addr().expect("API address in the log"));
    let (c, s) = (&topo.insts[0], &topo.insts[1]);
    let _server = echo_server(&s.ns, &[7000, 7002], &[]);

    // Before any log object: traffic writes nothing.
    assert!(ping(&c.ns, &s.v4, None, 5), "ping i0 -> i1");
    std::thread::sleep(Duration::from_millis(200));
    assert!(lines(&log_file).is_empty(), "no log object yet");

    let log = os(
        &bin,
        &api,
        &[
            "network",
            "log",
            "create",
            "--resource-type",
            "security_group",
            "--resource",
            "server",
            "--event",
            "ALL",
            "srvlog",
        ],
    );
    let log_id = log["ID"]
        .as_str()
        .or(log["id"].as_str())
        .unwrap_or_else(|| panic!("log id in {log:#}"))
        .to_string();
    let rules = os(&bin, &api, &["security", "group", "rule", "list", "server"]);
    let tcp_rule_id = rules
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["Port Range"] == "7000:7000")
        .and_then(|r| r["ID"].as_str())
        .expect("the tcp/7000 rule")
        .to_string();

    // An allowed connection (one ACCEPT at i1, ingress, by the tcp/7000 rule), a denied
    // one (a DROP per SYN at i1), and a ping i1 -> i0 (ACCEPT at i1's egress; dropped at
    // i0, which is not logged).
    let mut conn = LineClient::connect(&c.ns, &s.v4, 7000, 5).expect("tcp/7000 i0 -> i1");
    assert_eq!(conn.exchange("hello"), "ok");
    assert_eq!(conn.exchange("again"), "ok");
    assert_eq!(probe(&c.ns, "tcp", &s.v4, 7002, 2), "TIMEOUT");
    assert!(
        !ping(&s.ns, &c.v4, None, 1),
        "ping i1 -> i0 is blocked at i0"
    );
    let got = lines_after(&log_file, 0);
    assert!(
        got.iter().all(|l| l["port"] == "i1"),
        "only i1 is logged: {got:#?}"
    );
    assert!(got
        .iter()
        .all(|l| l["logs"] == serde_json::json!(["srvlog"])));
    assert!(got
        .iter()
        .all(|l| l["log_ids"] == serde_json::json!([log_id.as_str()])));
    let accepts_7000: Vec<_> = got
        .iter()
        .filter(|l| l["verdict"] == "ACCEPT" && l["dst_port"] == 7000)
        .collect();
    assert_eq!(accepts_7000.len(), 1, "one record per connection: {got:#?}");
    let a = accepts_7000[0];
    assert_eq!(a["direction"], "ingress");
    assert_eq!(a["group"], "server");
    assert_eq!(a["rule_id"], tcp_rule_id.as_str());
    assert_eq!(a["protocol"], "tcp");
    assert_eq!(a["src_ip"], c.v4.as_str());
    assert_eq!(a["dst_ip"], s.v4.as_str());
    let drops_7002: Vec<_> = got
        .iter()
        .filter(|l| l["verdict"] == "DROP" && l["dst_port"] == 7002)
        .collect();
    assert!(!drops_7002.is_empty(), "{got:#?}");
    for d in &drops_7002 {
        assert_eq!(d["reason"], "ingress-denied");
        assert_eq!(d["direction"], "ingress");
        assert!(d.get("rule_id").is_none());
    }
    assert!(
        got.iter().any(|l| l["verdict"] == "ACCEPT"
            && l["direction"] == "egress"
            && l["protocol"] == "icmp"),
        "the ping from i1 is admitted at i1's egress: {got:#?}"
    );

    // Disabled: nothing more.
    os(
        &bin,
        &api,
        &["network", "log", "set", "--disable", "srvlog"],
    );
    let n = lines(&log_file).len();
    let mut conn2 = LineClient::connect(&c.ns, &s.v4, 7000, 5).expect("tcp/7000 again");
    assert_eq!(conn2.exchange("x"), "ok");
    assert_eq!(probe(&c.ns, "tcp", &s.v4, 7002, 1), "TIMEOUT");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lines(&log_file).len(), n, "a disabled log records nothing");

    // Enabled again, then a flood of denied SYNs: within the rate limit.
    os(&bin, &api, &["network", "log", "set", "--enable", "srvlog"]);
    let before = switch_stats(&api);
    let t = Instant::now();
    let flood = format!(
        "import socket\nfor i in range(3000):\n    s = socket.socket(); s.setblocking(False)\n    \
         try: s.connect(('{}', 7002))\n    except OSError: pass\n    s.close()\n",
        s.v4
    );
    let status = Command::new("ip")
        .args(["netns", "exec", &c.ns.name, python(), "-c", &flood])
        .status()
        .expect("flood");
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(800));
    let secs = t.elapsed().as_secs_f64();
    let flood_lines = lines(&log_file).len() - n;
    let limit = (100.0 * secs + 25.0).ceil() as usize;
    assert!(
        flood_lines <= limit,
        "{flood_lines} records in {secs:.2} s (limit {limit})"
    );
    assert!(
        flood_lines >= 25,
        "{flood_lines} records: the burst at least"
    );
    let after = switch_stats(&api);
    let suppressed = |v: &Value| v["packet_log"]["suppressed"].as_u64().unwrap_or(0);
    assert!(
        suppressed(&after) > suppressed(&before),
        "suppressed records are counted: {}",
        after["packet_log"]
    );
    os(&bin, &api, &["network", "log", "delete", "srvlog"]);
}
