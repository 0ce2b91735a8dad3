//! `sgswitch soak`: a bounded soak of a live switch (outside CI): everything #14 hardens
//! against, at once, for `--duration`, with a report every `--every`.
//!
//! # What it builds and runs
//! A lab (`sgswitch::lab`) of five instances on veths (AF_PACKET by default, `--backend
//! afxdp`), `sgswitch run` (this executable) with `--workers` workers and its API on an
//! ephemeral loopback port, and then, all at once:
//! * **floods** from i0 to i1 (raw IPv4, `--flood-pps` frames a second in all, a third
//!   each): SYNs to the allowed tcp 7000 and UDP datagrams to the allowed udp 7001, both
//!   from random source ports, and a **fragment storm** of first and middle fragments of
//!   datagrams that never complete;
//! * an **established session** i2 → i1:7000, 1000-byte round trips as fast as they go
//!   (its rate is the one flooding must not stall), and **new connections** i3 → i1:7000
//!   every 20 ms (ok / failed);
//! * **rule churn** through the API: create and delete a rule of the instances' group in
//!   a loop (each answered only once the dataplane runs it); every request's latency is
//!   kept for the report;
//! * **port faults**: every `--fault-every`, i4's veth is deleted, the API must say DOWN,
//!   it is re-created two seconds later (the instance configures it), the API must say
//!   ACTIVE, and a ping i4 → i1 must pass;
//! * **hostile API clients**: `--idle-clients` connections that say nothing and
//!   `--slow-clients` that announce a 100 kB body and send a byte a second, reopened
//!   whenever the switch closes them (counted).
//!
//! # The report
//! Every `--every`: the switch's RSS, conntrack entries per worker (and `table_full`),
//! drops by reason over the interval (over all ports), API latency (requests, p50, p99,
//! max), the established session's round trips a second, new connections ok/failed, the
//! frames the floods sent, and the fault cycles so far (with the worst DOWN and ACTIVE
//! delays). At the end a summary, and the exit status:
//! * 0 — the switch ran to the end, RSS grew at most `--rss-growth-mb` from the report at
//!   a third of the run (once the tables are warm) to the end, the session never stalled
//!   (an interval without a round trip), every fault cycle was seen DOWN and ACTIVE again;
//! * 1 — any of those failed (each failure is named), or the lab could not be built.
//!
//! Needs root, iproute2, ethtool, python3. Cleans up everything it made (namespaces,
//! veths, the switch) on the way out, also on Ctrl-C (SIGINT/SIGTERM stop it early, with
//! the summary).
//!
//! Owns: the soak's orchestration, its traffic agents (one python program, `AGENT`) and
//! its report. May not touch: the library beyond `lab` (the lab and the switch as a
//! process), `control::http_client` (the API) and `flow::DropReason` names; it holds no
//! dataplane logic.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use serde_json::{json, Value};

use sgswitch::control::http_client::Client;
use sgswitch::lab::cmd::{missing_tools, python};
use sgswitch::lab::netns::Link;
use sgswitch::lab::probe::ping;
use sgswitch::lab::proc::Proc;
use sgswitch::lab::switch::{Launch, Switch};
use sgswitch::lab::topo::{add_veth, Backend, Topo};

/// `sgswitch soak` options.
#[derive(Args, Debug)]
pub struct SoakArgs {
    /// How long to run (`90s`, `10m`, `1h`, or seconds)
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub duration: Duration,
    /// How often to report
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub every: Duration,
    /// Flood frames a second from i0 to i1, SYN, UDP and fragments a third each
    #[arg(long, default_value_t = 3000)]
    pub flood_pps: u32,
    /// How often i4's veth is deleted and re-created
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub fault_every: Duration,
    /// API connections kept open without a byte
    #[arg(long, default_value_t = 32)]
    pub idle_clients: usize,
    /// API clients dribbling a body a byte a second
    #[arg(long, default_value_t = 1)]
    pub slow_clients: usize,
    /// Allowed RSS growth (MiB) from a third of the run to its end
    #[arg(long, default_value_t = 64)]
    pub rss_growth_mb: u64,
    /// Polling workers of the switch
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// The instances' ports
    #[arg(long, value_enum, default_value_t = SoakBackend::Afpacket)]
    pub backend: SoakBackend,
}

/// The backends a soak runs on (veths; taps have no fault cycle here).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SoakBackend {
    Afpacket,
    Afxdp,
}

/// `90s`, `10m`, `1h`, `500ms`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, ""), |i| s.split_at(i));
    let n: u64 = num.parse().map_err(|_| format!("not a duration: {s:?}"))?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("unknown unit in {s:?} (ms, s, m, h)")),
    }
}

const POLICY: &str = r#"
[switch]
workers = WORKERS

[[security_groups]]
name = "inst"
rules = [
  { direction = "ingress", ethertype = "IPv4", protocol = "tcp", port_range_min = 7000, port_range_max = 7000 },
  { direction = "ingress", ethertype = "IPv4", protocol = "udp", port_range_min = 7001, port_range_max = 7001 },
  { direction = "ingress", ethertype = "IPv4", protocol = "icmp" },
  { direction = "egress", ethertype = "IPv4" },
  { direction = "egress", ethertype = "IPv6" },
]
"#;

/// The traffic agents, one program: `AGENT ROLE ARGS...`; every role but `server` prints
/// one JSON line of running totals a second.
const AGENT: &str = r#"
import json, random, socket, struct, sys, threading, time
role = sys.argv[1]

def report(d):
    sys.stdout.write(json.dumps(d) + "\n")
    sys.stdout.flush()

def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF

def ip4(src, dst, proto, payload, ident=0, frag=0):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, frag, 64, proto, 0, src, dst)
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload

def l4(src, dst, proto, seg, at):
    c = csum(src + dst + struct.pack("!BBH", 0, proto, len(seg)) + seg) or 0xFFFF
    return seg[:at] + struct.pack("!H", c) + seg[at + 2:]

if role == "server":
    port = int(sys.argv[2])
    def serve(c):
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    break
                c.sendall(d)
        except OSError:
            pass
        c.close()
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(1024)
    us = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    us.bind(("0.0.0.0", port + 1))
    threading.Thread(target=lambda: [us.recv(2048) for _ in iter(int, 1)], daemon=True).start()
    report({"ready": True})
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()

elif role == "flood":
    srcs, dsts, pps = sys.argv[2], sys.argv[3], int(sys.argv[4])
    src, dst = socket.inet_aton(srcs), socket.inet_aton(dsts)
    sports = list(range(1024, 65536))
    random.shuffle(sports)
    pool = {"syn": [], "udp": [], "frag": []}
    for i, sp in enumerate(sports):
        seg = struct.pack("!HHIIBBHHH", sp, 7000, random.getrandbits(32), 0, 5 << 4, 0x02, 64240, 0, 0)
        pool["syn"].append(ip4(src, dst, 6, l4(src, dst, 6, seg, 16)))
        seg = struct.pack("!HHHH", sp, 7001, 8 + 32, 0) + b"u" * 32
        pool["udp"].append(ip4(src, dst, 17, l4(src, dst, 17, seg, 6)))
        # A first (offset 0) or a middle (offset 64) fragment, MF set, of a datagram whose
        # other fragments never come.
        body = struct.pack("!HHHH", sp, 7001, 8 + 200, 0) + b"f" * 40
        pool["frag"].append(ip4(src, dst, 17, body, random.getrandbits(16), 0x2000 | (i % 2) * 8))
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    kinds = ("syn", "udp", "frag")
    sent = {k: 0 for k in kinds}
    errors = 0
    batch = max(1, pps // 100)
    n = len(sports)
    i = 0
    t_next = last = time.time()
    while True:
        for _ in range(batch):
            k = kinds[i % 3]
            try:
                s.sendto(pool[k][(i // 3) % n], (dsts, 0))
                sent[k] += 1
            except OSError:
                errors += 1
            i += 1
        t_next += 0.01
        d = t_next - time.time()
        if d > 0:
            time.sleep(d)
        else:
            t_next = time.time()
        if time.time() - last >= 1:
            last = time.time()
            report(dict(sent, errors=errors))

elif role == "session":
    dst, port = sys.argv[2], int(sys.argv[3])
    msg = b"s" * 1000
    rt = reconnects = 0
    s = None
    last = time.time()
    while True:
        try:
            if s is None:
                s = socket.create_connection((dst, port), timeout=5)
            s.sendall(msg)
            got = 0
            while got < len(msg):
                d = s.recv(65536)
                if not d:
                    raise OSError("closed")
                got += len(d)
            rt += 1
        except OSError:
            reconnects += 1
            if s is not None:
                s.close()
            s = None
            time.sleep(0.2)
        if time.time() - last >= 1:
            last = time.time()
            report({"rt": rt, "reconnects": reconnects})

elif role == "newconn":
    dst, port = sys.argv[2], int(sys.argv[3])
    ok = failed = 0
    last = time.time()
    while True:
        t0 = time.time()
        try:
            c = socket.create_connection((dst, port), timeout=1)
            c.settimeout(1)
            c.sendall(b"n")
            if c.recv(1) == b"n":
                ok += 1
            else:
                failed += 1
            c.close()
        except OSError:
            failed += 1
        if time.time() - last >= 1:
            last = time.time()
            report({"ok": ok, "failed": failed})
        time.sleep(max(0.0, 0.02 - (time.time() - t0)))
"#;

/// A running agent: its process and its latest line.
struct Agent {
    _proc: Proc,
    last: Arc<Mutex<Value>>,
}

impl Agent {
    fn start(topo: &Topo, i: usize, args: &[&str]) -> Result<Agent, String> {
        let ns = &topo.insts[i].ns;
        let mut all = vec![python(), "-c", AGENT];
        all.extend_from_slice(args);
        let mut child = ns
            .cmd(&all)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("start the {} agent in {}: {e}", args[0], ns.name))?;
        let out = child.stdout.take().expect("piped");
        let last = Arc::new(Mutex::new(Value::Null));
        let (l, role) = (last.clone(), args[0].to_string());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    *lock(&l) = v;
                    let _ = tx.send(());
                }
            }
        });
        let agent = Agent {
            _proc: Proc { child },
            last,
        };
        if role == "server" && rx.recv_timeout(Duration::from_secs(10)).is_err() {
            return Err(format!("the server agent in {} did not start", ns.name));
        }
        Ok(agent)
    }

    fn get(&self, key: &str) -> u64 {
        lock(&self.last)[key].as_u64().unwrap_or(0)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the background threads share with the reporter.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    /// API request latencies (µs) since the last report.
    latencies: Mutex<Vec<u64>>,
    api_errors: AtomicU64,
    /// Hostile connections the switch closed.
    hostile_closed: AtomicU64,
    faults: Mutex<Faults>,
}

#[derive(Default, Debug)]
struct Faults {
    cycles: u64,
    failures: Vec<String>,
    worst_down_ms: u64,
    worst_active_ms: u64,
}

/// Sleep `d` in slices, false when asked to stop.
fn nap(sh: &Shared, d: Duration) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if sh.stop.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50).min(end - Instant::now()));
    }
    !sh.stop.load(Ordering::Relaxed)
}

/// Create and delete a rule of `inst` in a loop; every request's latency recorded.
fn churn(sh: &Shared, api: &Client, group: &str) {
    let mut k = 0u32;
    while !sh.stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        let body = json!({"security_group_rule": {"security_group_id": group,
            "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
            "port_range_min": 30000 + k % 1000, "port_range_max": 30000 + k % 1000}});
        k += 1;
        let created = api.post("/v2.0/security-group-rules", &body);
        lock(&sh.latencies).push(t.elapsed().as_micros() as u64);
        let id = match created {
            Ok(v) => v["security_group_rule"]["id"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            Err(_) => {
                sh.api_errors.fetch_add(1, Ordering::Relaxed);
                nap(sh, Duration::from_millis(200));
                continue;
            }
        };
        let t = Instant::now();
        if api
            .delete(&format!("/v2.0/security-group-rules/{id}"))
            .is_err()
        {
            sh.api_errors.fetch_add(1, Ordering::Relaxed);
        }
        lock(&sh.latencies).push(t.elapsed().as_micros() as u64);
        nap(sh, Duration::from_millis(20));
    }
}

/// Keep `idle` silent connections and `slow` byte-a-second bodies open to the API (the
/// slow ones authenticated with `token`: the server checks the token before it reads a
/// body, so an anonymous slow body is answered 401 at once).
fn hostile(sh: &Shared, addr: &str, token: &str, idle: usize, slow: usize) {
    let open = |slow: bool| -> Option<TcpStream> {
        let mut s = TcpStream::connect(addr).ok()?;
        s.set_write_timeout(Some(Duration::from_secs(1))).ok()?;
        if slow {
            s.write_all(
                format!(
                    "POST /v2.0/security-group-rules HTTP/1.1\r\nHost: soak\r\n\
                     X-Auth-Token: {token}\r\n\
                     Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
                )
                .as_bytes(),
            )
            .ok()?;
        }
        Some(s)
    };
    let mut conns: Vec<(bool, Option<TcpStream>)> = (0..idle)
        .map(|_| (false, None))
        .chain((0..slow).map(|_| (true, None)))
        .collect();
    while nap(sh, Duration::from_secs(1)) {
        for (is_slow, c) in &mut conns {
            let alive = match c {
                Some(s) => {
                    // A peek that returns 0 (or fails) means the switch closed it.
                    let mut b = [0u8; 1];
                    let _ = s.set_nonblocking(true);
                    let closed = matches!(s.peek(&mut b), Ok(0))
                        || matches!(s.peek(&mut b), Err(ref e) if e.kind() != std::io::ErrorKind::WouldBlock);
                    let _ = s.set_nonblocking(false);
                    !closed && (!*is_slow || s.write_all(b" ").is_ok())
                }
                None => false,
            };
            if !alive {
                if c.is_some() {
                    sh.hostile_closed.fetch_add(1, Ordering::Relaxed);
                }
                *c = open(*is_slow);
            }
        }
    }
}

fn port_status(api: &Client, name: &str) -> Option<String> {
    let v = api.get(&format!("/v2.0/ports?name={name}")).ok()?;
    v["ports"][0]["status"].as_str().map(str::to_string)
}

/// Wait until the API says `want` for `port`; the time it took.
fn wait_status(api: &Client, port: &str, want: &str, within: Duration) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < within {
        if port_status(api, port).as_deref() == Some(want) {
            return Some(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// Every `every`: delete i4's veth, see DOWN, re-create it, see ACTIVE, ping i1.
fn faults(sh: &Shared, api: &Client, topo: &Topo, every: Duration, links: &Mutex<Vec<Link>>) {
    let (i4, i1) = (&topo.insts[4], &topo.insts[1]);
    while nap(sh, every) {
        let mut fail = Vec::new();
        let _ = sgswitch::lab::cmd::sh(&["ip", "link", "del", &i4.link]);
        match wait_status(api, &i4.port, "DOWN", Duration::from_secs(10)) {
            Some(d) => {
                let mut f = lock(&sh.faults);
                f.worst_down_ms = f.worst_down_ms.max(d.as_millis() as u64);
            }
            None => fail.push("not DOWN within 10 s".to_string()),
        }
        std::thread::sleep(Duration::from_secs(2));
        match add_veth(&i4.link, &i4.ns) {
            Ok(l) => lock(links).push(l),
            Err(e) => fail.push(format!("re-creating the veth: {e}")),
        }
        if let Err(e) = i4.configure() {
            fail.push(format!("configuring i4: {e}"));
        }
        match wait_status(api, &i4.port, "ACTIVE", Duration::from_secs(10)) {
            Some(d) => {
                let mut f = lock(&sh.faults);
                f.worst_active_ms = f.worst_active_ms.max(d.as_millis() as u64);
            }
            None => fail.push("not ACTIVE within 10 s".to_string()),
        }
        if !ping(&i4.ns, &i1.v4, None, 5, "0.3") {
            fail.push("no ping i4 -> i1 after it came back".to_string());
        }
        let mut f = lock(&sh.faults);
        f.cycles += 1;
        let cycle = f.cycles;
        f.failures.extend(
            fail.into_iter()
                .map(|m| format!("fault cycle {cycle}: {m}")),
        );
    }
}

/// The switch's resident set (KiB), from /proc.
fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Drop counters over all ports, by reason.
fn drops_by_reason(stats: &Value) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for p in stats["stats"]["ports"].as_array().into_iter().flatten() {
        for (r, n) in p["drops"].as_object().into_iter().flatten() {
            *m.entry(r.clone()).or_default() += n.as_u64().unwrap_or(0);
        }
    }
    m
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// One report's figures, kept for the summary.
struct Sample {
    t: f64,
    rss_kib: u64,
    session_rate: f64,
}

/// Run `sgswitch soak`.
pub fn run(args: &SoakArgs) -> ExitCode {
    match soak(args) {
        Ok(failures) if failures.is_empty() => {
            println!("soak: PASS");
            ExitCode::SUCCESS
        }
        Ok(failures) => {
            for f in &failures {
                println!("soak: FAIL: {f}");
            }
            ExitCode::from(super::EXIT_INVALID)
        }
        Err(e) => {
            eprintln!("sgswitch soak: {e}");
            ExitCode::from(super::EXIT_INVALID)
        }
    }
}

fn soak(args: &SoakArgs) -> Result<Vec<String>, String> {
    let missing = missing_tools(true);
    if !missing.is_empty() {
        let m: Vec<String> = missing.iter().map(|t| t.describe()).collect();
        return Err(format!("missing: {}", m.join(", ")));
    }
    let backend = match args.backend {
        SoakBackend::Afpacket => Backend::AfPacket,
        SoakBackend::Afxdp => Backend::AfXdp,
    };
    let sh = Arc::new(Shared::default());
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let stop = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(sig, stop.clone()).map_err(|e| e.to_string())?;
        let sh = sh.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
            }
            sh.stop.store(true, Ordering::Relaxed);
        });
    }
    let topo = Topo::new("soak", backend, 5).map_err(|e| e.to_string())?;
    let groups = vec![r#"["inst"]"#; 5];
    let config = format!(
        "{}{}",
        POLICY.replace("WORKERS", &args.workers.to_string()),
        topo.ports_toml(&groups)
    );
    let path = topo.write_config(&config).map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let log = topo.dir.path.join("switch.log");
    // The switch's API token in the lab's own directory (created 0600 by `run`), read
    // back below: the churn, the fault checks and the slow clients are authenticated.
    let token_file = topo.dir.path.join("api-token");
    let token_arg = token_file.to_string_lossy().into_owned();
    let mut sw = Switch::spawn(&Launch {
        exe: &exe,
        config: &path,
        log: &log,
        args: &["--api", "127.0.0.1:0", "--api-token-file", &token_arg],
        own_group: true,
    })
    .map_err(|e| e.to_string())?;
    sw.wait_ready(Duration::from_secs(20), &|| sh.stop.load(Ordering::Relaxed))
        .map_err(|e| e.to_string())?;
    let addr = sw.api_addr().ok_or("no API address in the switch's log")?;
    let token =
        sgswitch::control::api::token::read_token_file(&token_file).map_err(|e| e.to_string())?;
    let api =
        Client::new(&format!("http://{addr}"), Some(token.clone())).map_err(|e| e.to_string())?;
    let group = api
        .get("/v2.0/security-groups?name=inst")
        .map_err(|e| e.to_string())?["security_groups"][0]["id"]
        .as_str()
        .ok_or("no group inst")?
        .to_string();
    let (i0, i1) = (&topo.insts[0], &topo.insts[1]);
    let _server = Agent::start(&topo, 1, &["server", "7000"])?;
    let pps = args.flood_pps.to_string();
    let session = Agent::start(&topo, 2, &["session", &i1.v4, "7000"])?;
    let newconn = Agent::start(&topo, 3, &["newconn", &i1.v4, "7000"])?;
    let flood = Agent::start(&topo, 0, &["flood", &i0.v4, &i1.v4, &pps])?;
    println!(
        "soak: {} for {:?} (switch pid {}, API {addr}, log {}); flood {} frames/s, faults every {:?}, {} idle + {} slow API clients",
        exe.display(),
        args.duration,
        sw.pid(),
        log.display(),
        args.flood_pps,
        args.fault_every,
        args.idle_clients,
        args.slow_clients
    );
    let links = Mutex::new(Vec::new());
    let (failures, samples) = std::thread::scope(|s| {
        s.spawn(|| churn(&sh, &api, &group));
        s.spawn(|| hostile(&sh, &addr, &token, args.idle_clients, args.slow_clients));
        s.spawn(|| faults(&sh, &api, &topo, args.fault_every, &links));
        let r = report_loop(args, &sh, &sw, &api, &session, &newconn, &flood);
        sh.stop.store(true, Ordering::Relaxed);
        r
    });
    let mut failures = failures;
    failures.extend(lock(&sh.faults).failures.iter().cloned());
    summary(args, &samples, &sh, &mut failures);
    if let Some(st) = sw.stop(Duration::from_secs(10)) {
        if !st.success() {
            failures.push(format!("the switch exited with {st}"));
        }
    }
    if sw.log_text().contains("panicked") {
        failures.push(format!("the switch panicked (log {})", log.display()));
    }
    Ok(failures)
}

#[allow(clippy::too_many_arguments)]
fn report_loop(
    args: &SoakArgs,
    sh: &Shared,
    sw: &Switch,
    api: &Client,
    session: &Agent,
    newconn: &Agent,
    flood: &Agent,
) -> (Vec<String>, Vec<Sample>) {
    let start = Instant::now();
    let mut failures = Vec::new();
    let mut samples = Vec::new();
    let mut prev_drops = BTreeMap::new();
    let (mut prev_rt, mut prev_ok, mut prev_failed) = (0, 0, 0);
    let mut prev_sent = 0;
    let mut last = Instant::now();
    while start.elapsed() < args.duration && !sh.stop.load(Ordering::Relaxed) {
        nap(
            sh,
            args.every
                .min(args.duration.saturating_sub(start.elapsed())),
        );
        let dt = last.elapsed().as_secs_f64().max(0.001);
        last = Instant::now();
        let t = start.elapsed().as_secs_f64();
        let pid = sw.pid();
        let Some(rss) = rss_kib(pid) else {
            failures.push(format!("the switch is gone at {t:.0} s"));
            break;
        };
        let stats = api.get("/sgswitch/v1/stats").unwrap_or(Value::Null);
        let ct: Vec<String> = stats["stats"]["workers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|w| w["conntrack"]["entries"].as_u64().unwrap_or(0).to_string())
            .collect();
        let table_full = stats["stats"]["conntrack"]["table_full"]
            .as_u64()
            .unwrap_or(0);
        let drops = drops_by_reason(&stats);
        let delta: Vec<String> = drops
            .iter()
            .filter_map(|(r, n)| {
                let d = n.saturating_sub(*prev_drops.get(r).unwrap_or(&0));
                (d > 0).then(|| format!("{r}={d}"))
            })
            .collect();
        prev_drops = drops;
        let mut lat = std::mem::take(&mut *lock(&sh.latencies));
        lat.sort_unstable();
        let rt = session.get("rt");
        let rate = (rt - prev_rt.min(rt)) as f64 / dt;
        prev_rt = rt;
        let (ok, failed) = (newconn.get("ok"), newconn.get("failed"));
        let sent = flood.get("syn") + flood.get("udp") + flood.get("frag");
        let f = lock(&sh.faults);
        println!(
            "[{t:6.0} s] rss {:.1} MiB | conntrack per worker [{}] table_full {table_full} | drops {} | api {} req p50 {:.1} ms p99 {:.1} ms max {:.1} ms, {} errors | session {rate:.0} rt/s ({} reconnects) | new conns {} ok {} failed | flood {:.0} frames/s | faults {} cycles (worst DOWN {} ms, ACTIVE {} ms), hostile closed {}",
            rss as f64 / 1024.0,
            ct.join(" "),
            if delta.is_empty() { "none".to_string() } else { delta.join(" ") },
            lat.len(),
            percentile(&lat, 0.5) as f64 / 1000.0,
            percentile(&lat, 0.99) as f64 / 1000.0,
            lat.last().copied().unwrap_or(0) as f64 / 1000.0,
            sh.api_errors.load(Ordering::Relaxed),
            session.get("reconnects"),
            ok - prev_ok.min(ok),
            failed - prev_failed.min(failed),
            (sent - prev_sent.min(sent)) as f64 / dt,
            f.cycles,
            f.worst_down_ms,
            f.worst_active_ms,
            sh.hostile_closed.load(Ordering::Relaxed),
        );
        drop(f);
        (prev_ok, prev_failed, prev_sent) = (ok, failed, sent);
        if rate == 0.0 && dt > 1.0 {
            failures.push(format!(
                "the session stalled in the interval ending at {t:.0} s"
            ));
        }
        samples.push(Sample {
            t,
            rss_kib: rss,
            session_rate: rate,
        });
    }
    (failures, samples)
}

fn summary(args: &SoakArgs, samples: &[Sample], sh: &Shared, failures: &mut Vec<String>) {
    let Some(end) = samples.last() else {
        failures.push("no report was made".to_string());
        return;
    };
    // The baseline: the report at a third of the run (the tables are warm by then).
    let base = samples
        .iter()
        .find(|s| s.t >= end.t / 3.0)
        .unwrap_or(&samples[0]);
    let max_after = samples
        .iter()
        .filter(|s| s.t >= base.t)
        .map(|s| s.rss_kib)
        .max()
        .unwrap_or(base.rss_kib);
    let growth_kib = max_after.saturating_sub(base.rss_kib);
    let rates: Vec<f64> = samples.iter().map(|s| s.session_rate).collect();
    let min_rate = rates.iter().copied().fold(f64::INFINITY, f64::min);
    let mean_rate = rates.iter().sum::<f64>() / rates.len() as f64;
    let f = lock(&sh.faults);
    println!(
        "soak summary: {:.0} s; rss {:.1} MiB at {:.0} s, at most {:.1} MiB after (growth {:.1} MiB, bound {} MiB), {:.1} MiB at the end; session {:.0} rt/s mean, {:.0} min; {} fault cycles (worst DOWN {} ms, ACTIVE {} ms); {} API errors; {} hostile connections closed by the switch",
        end.t,
        base.rss_kib as f64 / 1024.0,
        base.t,
        max_after as f64 / 1024.0,
        growth_kib as f64 / 1024.0,
        args.rss_growth_mb,
        end.rss_kib as f64 / 1024.0,
        mean_rate,
        min_rate,
        f.cycles,
        f.worst_down_ms,
        f.worst_active_ms,
        sh.api_errors.load(Ordering::Relaxed),
        sh.hostile_closed.load(Ordering::Relaxed),
    );
    if growth_kib > args.rss_growth_mb * 1024 {
        failures.push(format!(
            "RSS grew {:.1} MiB after {:.0} s (bound {} MiB)",
            growth_kib as f64 / 1024.0,
            base.t,
            args.rss_growth_mb
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("m").is_err());
    }

    #[test]
    fn percentiles() {
        let v = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        assert_eq!(percentile(&v, 0.5), 6);
        assert_eq!(percentile(&v, 0.99), 10);
        assert_eq!(percentile(&[], 0.5), 0);
    }
}
