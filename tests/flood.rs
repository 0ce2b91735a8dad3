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
//!   full never), and the switch's VmRSS grew by less than 16 MiB from the moment the
//!   zones were full (2 s into the flood) to its end: flat while the flood goes on.
//!
//! `new_flow_budget_from_config_sheds_a_flood`: `[switch] new_flow_budget` and `fair_share`
//! reach the worker (its start line in the log says what it runs with), and a SYN flood
//! whose bursts come back full (a burst of 4) is shed as `new-flow-overload` at the
//! flooding port (`stats`), while C's new connections to B pass and C is never shed.
//!
//! The same measurement at the highest rate the machine makes, with the established
//! session's rate before and during (`flood_measure`), and with a Linux bridge in the
//! switch's place (`flood_measure_kernel`): `benches/flood.sh [--compare]` (outside CI).
//!
//! Needs root, iproute2, python3; without them a test skips, under `CI=true` it fails.

mod common;

use common::{
    echo_server, env_ready, netns_name, probe, python, Backend, Instance, LineClient, Netns,
    Switch, Topo,
};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const EXE: &str = env!("CARGO_BIN_EXE_sgswitch");
const GEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/flood_gen.py");

/// Table and per-port limit of the tests: a flood at `RATE` for `FLOOD_SECS` makes about
/// ten times `LIMIT` connection attempts (each one an entry at A and one at B), so both
/// zones reach their limit within a second and then evict their oldest half-open entries.
/// B's zone holds C's entries too: a half-open entry of C's lives about `LIMIT / RATE`
/// seconds (0.8 s) before the flood's newer ones push it out, longer than a handshake
/// through a tap takes on a loaded CI machine (with 2,048 it was 0.1 s, and a SYN-ACK
/// delayed that long found its entry evicted: see the README, "Floods").
const CAPACITY: u64 = 65_536;
const LIMIT: u64 = 16_384;
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
         \x20 {{ direction = \"ingress\", ethertype = \"IPv4\", protocol = \"tcp\", port_range_min = 7002, port_range_max = 7002 }},\n\
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

    let mut gen = generator(
        &[],
        a,
        kind,
        &b.v4,
        &dport.to_string(),
        &FLOOD_SECS.to_string(),
        &RATE.to_string(),
    );

    // (B's TCP 7002, allowed too, is `flood_measure`'s.)
    // During the flood (after it had 2 s to fill the table): the session and new
    // connections from C to B.
    std::thread::sleep(Duration::from_secs(2));
    // By now both zones are at their limit (LIMIT / RATE < 1 s): the table's pages the
    // flood can touch are touched; from here on memory must stay flat.
    let rss_full = vm_rss_kib(sw.pid());
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
    // Before the queries below: listing 16k entries costs the API thread its own memory.
    let rss_after = vm_rss_kib(sw.pid());
    let stats = cli_json(&["stats", "--api", &api, "--json"]);
    let zone_a = cli_json(&["conntrack", "list", "--api", &api, "--port", "i0", "--json"]);
    let out = gen.child.wait_with_output_ref();
    assert!(n >= 3, "{test}: only {n} rounds during the flood");

    let ct = &stats["conntrack"];
    let entries = ct["entries"].as_u64().unwrap();
    let a_entries = zone_a.as_array().unwrap().len() as u64;
    let evictions = ct["evictions"].as_u64().unwrap();
    eprintln!(
        "{test}: generator: {out}; {n} rounds; entries {entries}, A's {a_entries}, \
         evictions {evictions}, table full {}, VmRSS {rss_before} -> {rss_full} (zones full) \
         -> {rss_after} KiB",
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
    // A's (and B's) zone at its limit: those evictions are the zones' own, and no new
    // connection was refused (the flood's entries are unassured, so one always goes).
    let zone_evictions = ct["zone_evictions"].as_u64().unwrap();
    assert!(
        zone_evictions > 0 && zone_evictions <= evictions,
        "{test}: zone evictions: {ct}"
    );
    assert_eq!(ct["zone_full"], 0, "{test}: {ct}");
    assert_eq!(ct["table_full"], 0, "{test}: {ct}");
    assert!(
        rss_after < rss_full + 16 * 1024,
        "{test}: VmRSS {rss_before} -> {rss_full} (zones full) -> {rss_after} KiB"
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

/// A TCP sink (B) and a sender (C) that prints the bytes it sent so far every 0.5 s.
const SINK_PY: &str = r#"
import socket
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("0.0.0.0", 7000)); l.listen(4)
print("listening", flush=True)
while True:
    c, _ = l.accept()
    while c.recv(1 << 16):
        pass
"#;
const STREAM_PY: &str = r#"
import socket, sys, time
s = socket.create_connection((sys.argv[1], 7000), timeout=5)
buf = b"x" * 65536
total, t0, next_t = 0, time.monotonic(), 0.5
while True:
    try:
        total += s.send(buf)
    except OSError as e:
        print("error", e, flush=True); break
    t = time.monotonic() - t0
    if t >= next_t:
        print("%.3f %d" % (t, total), flush=True); next_t += 0.5
"#;

/// Bytes per second of the stream between two of its `(t, total)` samples.
fn rate(samples: &[(f64, u64)], from: f64, to: f64) -> f64 {
    let at = |t: f64| {
        *samples
            .iter()
            .find(|s| s.0 >= t)
            .unwrap_or(samples.last().unwrap())
    };
    let (a, b) = (at(from), at(to));
    (b.1 - a.1) as f64 / (b.0 - a.0).max(1e-3)
}

/// The flood settings of a measurement, from the environment: `FLOOD_KIND` syn|udp
/// (default syn), `FLOOD_PPS` (default 0 = unpaced), `FLOOD_SECS` (default 10), the
/// switch's `FLOOD_WORKERS` (default 1), and `FLOOD_INSTANCE_CPUS` (a `taskset` CPU list,
/// e.g. `1`; default: none): every process of the instances (generator, stream, sink,
/// echo server) is pinned to those CPUs, as a host gives its instances' vCPUs cores of
/// their own, away from the switch's polling workers (worker 0 is pinned to core 0).
struct FloodEnv {
    kind: String,
    pps: String,
    secs: String,
    workers: String,
    instance_cpus: Option<String>,
}

impl FloodEnv {
    fn read() -> FloodEnv {
        let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
        FloodEnv {
            kind: env("FLOOD_KIND", "syn"),
            pps: env("FLOOD_PPS", "0"),
            secs: env("FLOOD_SECS", "10"),
            workers: env("FLOOD_WORKERS", "1"),
            instance_cpus: std::env::var("FLOOD_INSTANCE_CPUS")
                .ok()
                .filter(|c| !c.is_empty()),
        }
    }

    /// Pins every process (every thread) running in the namespaces to `instance_cpus`, if
    /// set; says which processes.
    fn pin(&self, namespaces: &[&Netns]) {
        let Some(cpus) = &self.instance_cpus else {
            return;
        };
        for ns in namespaces {
            let o = Command::new("ip")
                .args(["netns", "pids", &ns.name])
                .output()
                .expect("ip netns pids");
            for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let t = Command::new("taskset")
                    .args(["-a", "-p", "-c", cpus, pid])
                    .output()
                    .expect("taskset");
                assert!(
                    t.status.success(),
                    "taskset -a -p -c {cpus} {pid}: {}",
                    String::from_utf8_lossy(&t.stderr)
                );
            }
        }
    }

    /// What the generator's command line starts with: `taskset -c CPUS` when
    /// `instance_cpus` is set.
    fn taskset(&self) -> Vec<&str> {
        match &self.instance_cpus {
            Some(cpus) => vec!["taskset", "-c", cpus.as_str()],
            None => Vec::new(),
        }
    }
}

/// Starts `benches/flood_gen.py` in `from`'s namespace (after `prefix`, e.g. a `taskset`):
/// a `kind` (syn|udp) flood from `from` to `dst`:`dport` for `secs` seconds at `pps`
/// packets per second (0: as fast as it goes), output piped (read it with
/// [`WaitRef::wait_with_output_ref`]).
fn generator(
    prefix: &[&str],
    from: &Instance,
    kind: &str,
    dst: &str,
    dport: &str,
    secs: &str,
    pps: &str,
) -> common::Proc {
    let mut args = prefix.to_vec();
    args.extend([python(), GEN, kind, &from.v4, dst, dport, secs, pps]);
    from.ns
        .cmd(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map(|child| common::Proc { child })
        .expect("start the flood generator")
}

/// Busy and total jiffies of the whole machine (`/proc/stat`'s `cpu` line).
fn cpu_jiffies() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = s
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// CPU seconds (user + system, all threads) process `pid` used so far.
fn proc_cpu_secs(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis: utime and stime are the 12th and
    // 13th of them.
    let rest = s.rsplit_once(')').map_or("", |x| x.1);
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    f.iter().sum::<u64>() as f64 / 100.0
}

/// The session and the flood of a measurement, the same for the switch and the kernel
/// bridge: C streams TCP to B:7000 for 6 s, then A floods B for `FLOOD_SECS`; `before` runs
/// just before the flood starts, `after` when the generator is done (the stream still
/// running) and returns what to print.
/// Prints the generator's rate and CPU, the stream's rate over the 5 s before the flood and
/// from 2 s into it to its end, how busy the machine's cores were during the flood, and
/// the load average.
fn measure_session(
    label: &str,
    (a, b, c): (&Instance, &Instance, &Instance),
    fl: &FloodEnv,
    before: impl FnOnce(),
    after: impl FnOnce() -> String,
) {
    use std::io::{BufRead, BufReader};
    let flood_secs: f64 = fl.secs.parse().expect("FLOOD_SECS");
    let mut sink =
        b.ns.cmd(&[python(), "-c", SINK_PY])
            .stdout(Stdio::piped())
            .spawn()
            .map(|child| common::Proc { child })
            .expect("sink");
    assert_eq!(sink.first_line(), "listening");
    let mut stream =
        c.ns.cmd(&[python(), "-c", STREAM_PY, &b.v4])
            .stdout(Stdio::piped())
            .spawn()
            .map(|child| common::Proc { child })
            .expect("stream");
    let out = stream.child.stdout.take().unwrap();
    let samples = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(f64, u64)>::new()));
    let s2 = samples.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let mut w = line.split_whitespace();
            if let (Some(t), Some(n)) = (w.next(), w.next()) {
                if let (Ok(t), Ok(n)) = (t.parse(), n.parse()) {
                    s2.lock().unwrap().push((t, n));
                }
            }
        }
    });
    fl.pin(&[&b.ns, &c.ns]);
    std::thread::sleep(Duration::from_secs(6));
    let dport = if fl.kind == "syn" { "7000" } else { "7001" };
    let _echo = echo_server(&b.ns, &[7002], &[7001]);
    fl.pin(&[&b.ns]);
    let t_flood = samples.lock().unwrap().last().map_or(0.0, |s| s.0);
    before();
    let cpu0 = cpu_jiffies();
    let mut gen = generator(&fl.taskset(), a, &fl.kind, &b.v4, dport, &fl.secs, &fl.pps);
    let gen_out = gen.child.wait_with_output_ref();
    let cpu1 = cpu_jiffies();
    let extra = after();
    let samples = samples.lock().unwrap().clone();
    let before = rate(&samples, t_flood - 5.0, t_flood);
    let during = rate(&samples, t_flood + 2.0, t_flood + flood_secs);
    let busy = (cpu1.0 - cpu0.0) as f64 / (cpu1.1 - cpu0.1).max(1) as f64;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let pinned = fl
        .instance_cpus
        .as_ref()
        .map_or(String::new(), |c| format!(", instances pinned to CPU {c}"));
    println!(
        "flood {} ({label}{pinned}): generator {gen_out}\n\
         session C->B: {:.1} MB/s before, {:.1} MB/s during ({:.0} %)\n\
         machine during the flood: {:.2} of {cores} cores busy\n{extra}load average {}",
        fl.kind,
        before / 1e6,
        during / 1e6,
        100.0 * during / before.max(1.0),
        busy * cores as f64,
        load.trim()
    );
}

/// The measurement of `benches/flood.sh` (not run in CI): the default conntrack settings,
/// a flood from A at the highest rate the generator makes ([`FloodEnv`]) while C streams
/// TCP to B ([`measure_session`]); also prints the switch's CPU seconds during the flood,
/// entries, evictions, drops and VmRSS.
#[test]
#[ignore = "a measurement: benches/flood.sh"]
fn flood_measure() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let fl = FloodEnv::read();
    if !env_ready("flood_measure", Backend::Tap) {
        return;
    }
    let topo = Topo::new("flm", Backend::Tap, 3);
    let text = config(&topo)
        .replace(
            &format!("capacity = {CAPACITY}\nper_port_limit = {LIMIT}\n"),
            "",
        )
        .replace("workers = 1", &format!("workers = {}", fl.workers));
    let path = topo.write_config(&text);
    let sw = Switch::start(&path, &topo.dir.path);
    topo.configure();
    let api = format!("http://{}", sw.api_addr().expect("API address in the log"));
    let (a, b, c) = (&topo.insts[0], &topo.insts[1], &topo.insts[2]);
    let pid = sw.pid();
    let (rss_before, sw_cpu0) = (std::cell::Cell::new(0), std::cell::Cell::new(0.0));
    let before = || {
        rss_before.set(vm_rss_kib(pid));
        sw_cpu0.set(proc_cpu_secs(pid));
    };
    let after = || {
        // Before the API calls below: a dump of 100,000 entries grows the heap by itself.
        let rss_after = vm_rss_kib(pid);
        let sw_cpu = proc_cpu_secs(pid) - sw_cpu0.get();
        let probe_after = probe(&c.ns, "tcp", &b.v4, 7002, 2);
        let stats = cli_json(&["stats", "--api", &api, "--json"]);
        let zone_a = cli_json(&["conntrack", "list", "--api", &api, "--port", "i0", "--json"]);
        let ct = &stats["conntrack"];
        let ports: Vec<String> = stats["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| format!("{}: rx {} drops {}", p["name"], p["rx_packets"], p["drops"]))
            .collect();
        format!(
            "switch: {sw_cpu:.2} CPU-s during the flood; conntrack: entries {} of {}, A's zone \
             {}, evictions {}, table full {}, inserts {}\nports: {}\nworker: bursts {}, \
             deferred by the fair share {}\nswitch VmRSS {} -> {rss_after} KiB; new \
             connection C->B after: {probe_after}\n",
            ct["entries"],
            ct["capacity"],
            zone_a.as_array().unwrap().len(),
            ct["evictions"],
            ct["table_full"],
            ct["inserts"],
            ports.join("; "),
            stats["workers"][0]["bursts"],
            stats["workers"][0]["deferred_bursts"],
            rss_before.get(),
        )
    };
    let label = format!("sgswitch, tap ports, {} worker(s)", fl.workers);
    measure_session(&label, (a, b, c), &fl, before, after);
}

/// The same session and flood with the kernel switching: the three instances on veth
/// pairs enslaved to a Linux bridge in a namespace of its own (no sgswitch, no filtering,
/// no conntrack): what this machine keeps of the session when only kernels switch.
#[test]
#[ignore = "a measurement: benches/flood.sh --compare"]
fn flood_measure_kernel() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let fl = FloodEnv::read();
    if !env_ready("flood_measure_kernel", Backend::AfPacket) {
        return;
    }
    let topo = Topo::new("flk", Backend::AfPacket, 3);
    let br = Netns::new(&netns_name("flk", 9)).unwrap_or_else(|e| panic!("{e}"));
    let ip = |args: &[&str]| {
        let o = Command::new("ip").args(args).output().expect("ip");
        assert!(
            o.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    ip(&["-n", &br.name, "link", "add", "br0", "type", "bridge"]);
    ip(&["-n", &br.name, "link", "set", "br0", "up"]);
    for i in &topo.insts {
        // The veth's root end moves into the bridge's namespace (deleted with it).
        ip(&["link", "set", &i.link, "netns", &br.name]);
        ip(&["-n", &br.name, "link", "set", &i.link, "master", "br0"]);
        ip(&["-n", &br.name, "link", "set", &i.link, "up"]);
    }
    let (a, b, c) = (&topo.insts[0], &topo.insts[1], &topo.insts[2]);
    // The bridge forwards: B answers (nothing listens yet).
    assert_eq!(
        probe(&c.ns, "tcp", &b.v4, 7002, 2),
        "REFUSED",
        "C -> B over the bridge"
    );
    measure_session(
        "kernel: Linux bridge, veth",
        (a, b, c),
        &fl,
        || {},
        || {
            format!(
                "new connection C->B after: {}\n",
                probe(&c.ns, "tcp", &b.v4, 7002, 2)
            )
        },
    );
}

#[test]
fn new_flow_budget_from_config_sheds_a_flood() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let test = "new_flow_budget_from_config_sheds_a_flood";
    if !env_ready(test, Backend::Tap) {
        return;
    }
    let topo = Topo::new("flb", Backend::Tap, 3);
    let text = config(&topo).replace(
        "workers = 1\n",
        "workers = 1\nburst = 4\nnew_flow_budget = 1\nfair_share = false\n",
    );
    let path = topo.write_config(&text);
    let sw = Switch::start(&path, &topo.dir.path);
    topo.configure();
    let log = sw.log_text();
    let start = log
        .lines()
        .find(|l| l.contains("worker started"))
        .unwrap_or_else(|| panic!("{test}: no `worker started` in the log:\n{log}"));
    // The environment overrides the file for measurements: say so rather than fail.
    if std::env::var_os("SGSWITCH_NEW_FLOW_BUDGET").is_none()
        && std::env::var_os("SGSWITCH_FAIR_SHARE").is_none()
    {
        assert!(
            start.contains("new_flow_budget=1") && start.contains("fair_share=false"),
            "{test}: the worker runs without the config's settings: {start}"
        );
    }
    let api = format!("http://{}", sw.api_addr().expect("API address in the log"));
    let (a, b, c) = (&topo.insts[0], &topo.insts[1], &topo.insts[2]);
    let _server = echo_server(&b.ns, &[7000], &[7001]);
    let secs = 4;
    let mut gen = generator(
        &[],
        a,
        "syn",
        &b.v4,
        "7000",
        &secs.to_string(),
        &RATE.to_string(),
    );
    std::thread::sleep(Duration::from_secs(1));
    let mut failures = Vec::new();
    for n in 0..4 {
        let r = probe(&c.ns, "tcp", &b.v4, 7000, 2);
        if r != "PASS" {
            failures.push(format!("new connection {n}: {r}"));
        }
    }
    let out = gen.child.wait_with_output_ref();
    let stats = cli_json(&["stats", "--api", &api, "--json"]);
    let shed = |name: &str| {
        stats["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map_or(0, |p| p["drops"]["new-flow-overload"].as_u64().unwrap_or(0))
    };
    let (shed_a, shed_c) = (shed("i0"), shed("i2"));
    eprintln!("{test}: generator: {out}; A shed {shed_a}, C shed {shed_c}; {start}");
    assert!(out.contains("sent="), "{test}: generator said {out}");
    assert!(
        failures.is_empty(),
        "{test}: {failures:#?}\n{}",
        sw.log_text()
    );
    assert!(shed_a > 0, "{test}: nothing shed at A: {}", stats["ports"]);
    assert_eq!(shed_c, 0, "{test}: C shed: {}", stats["ports"]);
}

#[test]
fn syn_flood_keeps_other_connections() {
    flood("syn", 7000);
}

#[test]
fn udp_flood_keeps_other_connections() {
    flood("udp", 7001);
}
