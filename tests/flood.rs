//! Floods against an allowed port (#14): one instance floods another while a third keeps
//! talking to the same destination; `sgswitch run` between instances in network
//! namespaces (tap ports, one worker), a small conntrack table so that CI sizes suffice.
//!
//! Instances: A (i0) floods, B (i1) serves TCP 7000 and UDP 7001 to anyone, C (i2) is a
//! client of B. Each test:
//! * starts a TCP session C → B and checks it exchanges lines, records the switch's VmRSS;
//! * floods B:7000 with SYNs (`syn_flood_*`) or B:7001 with UDP (`udp_flood_*`) from A, with
//!   source ports in a random order (`benches/flood_gen.py`, a raw socket), at a CI-sized
//!   rate well above what fills the table without per-port limits;
//! * during the flood: C's session keeps exchanging lines and C's *new* connections to B
//!   succeed;
//! * after: conntrack entries ≤ capacity, A's entries (`conntrack list --port i0`) ≤
//!   `per_port_limit`, the evictions are counted in `stats` (`conntrack.evictions`; table
//!   full never), and the switch's VmRSS grew by less than 16 MiB.
//!
//! The same measurement at the highest rate the machine makes, with the established
//! session's rate before and during: `benches/flood.sh` (outside CI).
//!
//! Needs root, iproute2, python3; without them a test skips, under `CI=true` it fails.

mod common;

use common::{echo_server, env_ready, probe, python, Backend, LineClient, Switch, Topo};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const EXE: &str = env!("CARGO_BIN_EXE_sgswitch");
const GEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/flood_gen.py");

/// Table and per-port limit of the tests: a flood at `RATE` for `FLOOD_SECS` makes about
/// ten times `CAPACITY` connection attempts (each one an entry at A and one at B).
const CAPACITY: u64 = 16_384;
const LIMIT: u64 = 2_048;
const RATE: u32 = 20_000;
const FLOOD_SECS: u64 = 8;

fn config(topo: &Topo) -> String {
    format!(
        "[switch]\nworkers = 1\n\n\
         [conntrack]\ncapacity = {CAPACITY}\nper_port_limit = {LIMIT}\n\n\
         [[security_groups]]\nname = \"client\"\nrules = [\n\
         \x20 {{ direction = \"egress\", ethertype = \"IPv4\" }},\n]\n\n\
         [[security_groups]]\nname = \"server\"\nrules = [\n\
         \x20 {{ direction = \"ingress\", ethertype = \"IPv4\", protocol = \"tcp\", port_range_min = 7000, port_range_max = 7000 }},\n\
         \x20 {{ direction = \"ingress\", ethertype = \"IPv4\", protocol = \"udp\", port_range_min = 7001, port_range_max = 7001 }},\n\
         \x20 {{ direction = \"egress\", ethertype = \"IPv4\" }},\n]\n{}",
        topo.ports_toml(&[r#"["client"]"#, r#"["server"]"#, r#"["client"]"#])
    )
}

fn cli_json(args: &[&str]) -> Value {
    let o = Command::new(EXE)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run sgswitch");
    assert!(
        o.status.success(),
        "sgswitch {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("sgswitch {args:?}: {e}"))
}

fn vm_rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

/// The two floods run one after the other: each takes a core.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn flood(kind: &str, dport: u16) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let test = format!("{kind}_flood_keeps_other_connections");
    if !env_ready(&test, Backend::Tap) {
        return;
    }
    let topo = Topo::new(&format!("fl{}", &kind[..1]), Backend::Tap, 3);
    let path = topo.write_config(&config(&topo));
    let sw = Switch::start(&path, &topo.dir.path);
    topo.configure();
    let api = format!("http://{}", sw.api_addr().expect("API address in the log"));
    let (a, b, c) = (&topo.insts[0], &topo.insts[1], &topo.insts[2]);
    let _server = echo_server(&b.ns, &[7000], &[7001]);

    let mut session = LineClient::connect(&c.ns, &b.v4, 7000, 3).expect("C -> B:7000");
    assert_eq!(session.exchange("before"), "ok");
    let rss_before = vm_rss_kib(sw.pid());

    let mut gen =
        a.ns.cmd(&[
            python(),
            GEN,
            kind,
            &a.v4,
            &b.v4,
            &dport.to_string(),
            &FLOOD_SECS.to_string(),
            &RATE.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map(|child| common::Proc { child })
        .expect("start the flood generator");

    // During the flood (after it had 2 s to fill the table): the session and new
    // connections from C to B.
    std::thread::sleep(Duration::from_secs(2));
    let mut failures = Vec::new();
    let until = Instant::now() + Duration::from_secs(FLOOD_SECS - 3);
    let mut n = 0;
    while Instant::now() < until {
        n += 1;
        let r = session.exchange(&format!("during {n}"));
        if r != "ok" {
            failures.push(format!("session line {n}: {r}"));
        }
        let r = probe(&c.ns, "tcp", &b.v4, 7000, 2);
        if r != "PASS" {
            failures.push(format!("new connection {n}: {r}"));
        }
    }
    let stats = cli_json(&["stats", "--api", &api, "--json"]);
    let zone_a = cli_json(&["conntrack", "list", "--api", &api, "--port", "i0", "--json"]);
    let out = gen.child.wait_with_output_ref();
    let rss_after = vm_rss_kib(sw.pid());
    assert!(n >= 3, "{test}: only {n} rounds during the flood");

    let ct = &stats["conntrack"];
    let entries = ct["entries"].as_u64().unwrap();
    let a_entries = zone_a.as_array().unwrap().len() as u64;
    let evictions = ct["evictions"].as_u64().unwrap();
    eprintln!(
        "{test}: generator: {out}; {n} rounds; entries {entries}, A's {a_entries}, \
         evictions {evictions}, table full {}, VmRSS {rss_before} -> {rss_after} KiB",
        ct["table_full"]
    );
    assert!(out.contains("sent="), "{test}: generator said {out}");
    assert!(
        failures.is_empty(),
        "{test}: {failures:#?}\n{}",
        sw.log_text()
    );
    assert!(entries <= CAPACITY, "{test}: {entries} entries");
    assert!(a_entries <= LIMIT, "{test}: A holds {a_entries} entries");
    assert!(evictions > 0, "{test}: no eviction counted: {ct}");
    assert_eq!(ct["table_full"], 0, "{test}: {ct}");
    assert!(
        rss_after < rss_before + 16 * 1024,
        "{test}: VmRSS {rss_before} -> {rss_after} KiB"
    );
    assert_eq!(session.exchange("after"), "ok");
}

/// Wait for a child with piped output without giving it up (the `Proc` guard still
/// owns it): its stdout and stderr as one string.
trait WaitRef {
    fn wait_with_output_ref(&mut self) -> String;
}

impl WaitRef for std::process::Child {
    fn wait_with_output_ref(&mut self) -> String {
        use std::io::Read;
        let _ = self.wait();
        let mut s = String::new();
        if let Some(o) = self.stdout.as_mut() {
            let _ = o.read_to_string(&mut s);
        }
        if let Some(e) = self.stderr.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s.trim().to_string()
    }
}

#[test]
fn syn_flood_keeps_other_connections() {
    flood("syn", 7000);
}

#[test]
fn udp_flood_keeps_other_connections() {
    flood("udp", 7001);
}
