//! Shared helpers for the live tests that run `sgswitch run` between network namespaces.
//!
//! # Rules every helper follows
//! * **Unique names.** Namespaces are `sgs-e2e-PID-TAG-I`, links `sPIDTAGI` (at most 15
//!   bytes, the kernel's limit): tests of one run, and concurrent runs, never collide.
//! * **Always cleaned up.** Every namespace, link, process and temp directory is owned by a
//!   guard whose `Drop` removes it, so a failing assertion (a panic) still cleans up. Locals
//!   drop in reverse order of declaration: create the topology first, then the switch, then
//!   the traffic processes, and they go away in the right order.
//! * **Skip or fail loudly.** Without root or a needed tool a test prints why it skips and
//!   passes; under `CI=true` it fails instead, so CI cannot go green by skipping.
//! * **Processes are signalled by their id only** (the `Child` we spawned, or the ids
//!   `ip netns pids` lists for a namespace this process created).
//!
//! Tools: `ip` (iproute2), `ping` (iputils-ping), `ethtool` (veth backends), `python3`
//! (Debian's `/usr/bin/python3` when present) for TCP/UDP clients and servers.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// True under CI (`CI=true`): a test that cannot run must fail, not skip.
pub fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// The python interpreter: Debian's when present (the pyenv shim is slow to start).
pub fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

fn works(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// True if this test can run here (root and the tools); otherwise prints why and returns
/// false, or panics under CI.
pub fn env_ready(test: &str, backend: Backend) -> bool {
    env_ready_with(test, backend, &[])
}

/// [`env_ready`], also requiring each of `tools` (checked with `TOOL --version`), e.g.
/// `tcpdump`.
pub fn env_ready_with(test: &str, backend: Backend, tools: &[&str]) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut missing = Vec::new();
    if !root {
        missing.push("root");
    }
    if !works(&["ip", "-V"]) {
        missing.push("ip (iproute2)");
    }
    if !works(&["ping", "-V"]) {
        missing.push("ping (iputils-ping)");
    }
    if !works(&[python(), "-c", "import socket, selectors"]) {
        missing.push("python3");
    }
    if backend.uses_veth() && !works(&["ethtool", "--version"]) {
        missing.push("ethtool");
    }
    for t in tools {
        if !works(&[t, "--version"]) {
            missing.push(t);
        }
    }
    if missing.is_empty() {
        return true;
    }
    let reason = format!("missing: {}", missing.join(", "));
    assert!(!in_ci(), "{test}: cannot run under CI: {reason}");
    eprintln!("skipping {test}: {reason}");
    false
}

/// Run a command and return its stdout; panic with its stderr if it fails.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run a command, ignore the outcome (cleanup paths).
pub fn sh_quiet(args: &[&str]) {
    let _ = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Send `sig` to one process id.
pub fn signal(pid: u32, sig: libc::c_int) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill has no memory-safety preconditions; pid is one positive process id.
    pid > 0 && unsafe { libc::kill(pid, sig) } == 0
}

/// A link name unique to this process: `s` + pid + tag + index, at most 15 bytes.
pub fn link_name(tag: &str, i: usize) -> String {
    let n = format!("s{}{tag}{i}", std::process::id());
    assert!(n.len() <= 15, "interface name too long: {n}");
    n
}

/// A namespace name unique to this process.
pub fn netns_name(tag: &str, i: usize) -> String {
    format!("sgs-e2e-{}-{tag}-{i}", std::process::id())
}

// ---------------------------------------------------------------------------------------
// Guards.

/// A network namespace; on drop, the processes left in it are killed and it is deleted.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(name: &str) -> Netns {
        sh_quiet(&["ip", "netns", "del", name]);
        sh(&["ip", "netns", "add", name]);
        let ns = Netns {
            name: name.to_string(),
        };
        sh(&["ip", "-n", name, "link", "set", "lo", "up"]);
        ns
    }

    /// `ip netns exec NS ARGS...` as a Command.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(args);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok())
            {
                signal(pid, libc::SIGKILL);
            }
        }
        sh_quiet(&["ip", "netns", "del", &self.name]);
    }
}

/// A link in the root namespace, deleted on drop if it still exists.
pub struct Link {
    pub name: String,
}

impl Drop for Link {
    fn drop(&mut self) {
        if Path::new(&format!("/sys/class/net/{}", self.name)).exists() {
            sh_quiet(&["ip", "link", "del", &self.name]);
        }
    }
}

/// A child process, killed and reaped on drop.
pub struct Proc {
    pub child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temporary directory, removed on drop.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("sgs-e2e-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

// ---------------------------------------------------------------------------------------
// Topology.

/// How the instances are attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The switch creates the taps and moves them into the namespaces (vnet_hdr on).
    Tap,
    /// veth pairs; the switch opens AF_XDP sockets on the root-side ends.
    AfXdp,
    /// veth pairs; the switch opens AF_PACKET sockets on the root-side ends.
    AfPacket,
}

impl Backend {
    pub fn uses_veth(self) -> bool {
        self != Backend::Tap
    }
}

/// One instance: a namespace with one interface attached to a switch port.
pub struct Instance {
    /// The switch port's name (`i0`, `i1`, ...).
    pub port: String,
    pub ns: Netns,
    /// The tap's name, or the veth end in the root namespace.
    pub link: String,
    /// The interface inside the namespace.
    pub ifname: String,
    pub mac: String,
    pub v4: String,
    pub v6: String,
}

/// Instances in namespaces for one test. Instance `i` has MAC `fa:16:3e:00:00:1i`,
/// addresses `10.0.0.1i/24` and `fd00::1i/64`.
pub struct Topo {
    pub backend: Backend,
    pub insts: Vec<Instance>,
    links: Vec<Link>,
    pub dir: TempDir,
}

impl Topo {
    pub fn new(tag: &str, backend: Backend, n: usize) -> Topo {
        assert!(n <= 9);
        let dir = TempDir::new(tag);
        let mut t = Topo {
            backend,
            insts: Vec::new(),
            links: Vec::new(),
            dir,
        };
        for i in 0..n {
            let ns = Netns::new(&netns_name(tag, i));
            let link = link_name(tag, i);
            let ifname = if backend.uses_veth() {
                "eth0".to_string()
            } else {
                link.clone()
            };
            if backend.uses_veth() {
                t.links.push(Link { name: link.clone() });
                sh(&[
                    "ip", "link", "add", &link, "type", "veth", "peer", "name", "eth0", "netns",
                    &ns.name,
                ]);
                // The host stays silent on the switch's side of the pair.
                let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{link}/disable_ipv6"), "1");
                sh(&["ip", "link", "set", &link, "up"]);
                // The switch forwards frames untouched: no partial checksums.
                sh(&[
                    "ip", "netns", "exec", &ns.name, "ethtool", "-K", "eth0", "tx", "off",
                ]);
            }
            t.insts.push(Instance {
                port: format!("i{i}"),
                ns,
                link,
                ifname,
                mac: format!("fa:16:3e:00:00:1{i}"),
                v4: format!("10.0.0.1{i}"),
                v6: format!("fd00::1{i}"),
            });
        }
        if backend.uses_veth() {
            t.configure();
        }
        t
    }

    /// The `backend = {...}` value of instance `i`'s port.
    pub fn backend_toml(&self, i: usize) -> String {
        let inst = &self.insts[i];
        match self.backend {
            Backend::Tap => format!(
                "{{ type = \"tap\", ifname = \"{}\", netns = \"{}\", vnet_hdr = true }}",
                inst.link, inst.ns.name
            ),
            Backend::AfXdp => format!("{{ type = \"afxdp\", ifname = \"{}\" }}", inst.link),
            Backend::AfPacket => format!("{{ type = \"afpacket\", ifname = \"{}\" }}", inst.link),
        }
    }

    /// `[[ports]]` tables for every instance, with `groups[i]` as its groups (a TOML list).
    pub fn ports_toml(&self, groups: &[&str]) -> String {
        let mut s = String::new();
        for (i, inst) in self.insts.iter().enumerate() {
            s.push_str(&format!(
                "\n[[ports]]\nname = \"{}\"\nmac = \"{}\"\nfixed_ips = [\"{}\", \"{}\"]\n\
                 security_groups = {}\nbackend = {}\n",
                inst.port,
                inst.mac,
                inst.v4,
                inst.v6,
                groups[i],
                self.backend_toml(i)
            ));
        }
        s
    }

    /// Give every instance's interface its MAC and addresses and bring it up. For taps,
    /// call it once the switch is ready (it creates them); veth topologies do it in `new`.
    pub fn configure(&self) {
        for i in 0..self.insts.len() {
            self.configure_one(i);
        }
    }

    /// [`Topo::configure`] for instance `i` only (a tap switch may run a subset of them).
    pub fn configure_one(&self, i: usize) {
        let inst = &self.insts[i];
        let (ns, ifn) = (inst.ns.name.as_str(), inst.ifname.as_str());
        // Down first: the link-local address must derive from the port's MAC.
        sh(&["ip", "-n", ns, "link", "set", ifn, "down"]);
        sh(&["ip", "-n", ns, "link", "set", ifn, "address", &inst.mac]);
        sh(&["ip", "-n", ns, "link", "set", ifn, "up"]);
        sh(&[
            "ip",
            "-n",
            ns,
            "addr",
            "add",
            &format!("{}/24", inst.v4),
            "dev",
            ifn,
        ]);
        sh(&[
            "ip",
            "-n",
            ns,
            "-6",
            "addr",
            "add",
            &format!("{}/64", inst.v6),
            "dev",
            ifn,
            "nodad",
        ]);
    }

    /// Write `text` as the config file and return its path.
    pub fn write_config(&self, text: &str) -> PathBuf {
        let p = self.dir.path.join("switch.toml");
        std::fs::write(&p, text).unwrap();
        p
    }
}

// ---------------------------------------------------------------------------------------
// The switch process.

/// `sgswitch run --config FILE`, stderr to a log file; stopped (SIGTERM, then SIGKILL)
/// on drop.
pub struct Switch {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Switch {
    /// Start the switch and wait for `sgswitch: ready`; panic with its log if it does not
    /// come within 20 s.
    pub fn start(config: &Path, dir: &Path) -> Switch {
        Switch::start_args(config, dir, &[])
    }

    /// [`Switch::start`] with more arguments of `sgswitch run` (e.g. `--workers 2`,
    /// `--copy-forward`).
    pub fn start_args(config: &Path, dir: &Path, args: &[&str]) -> Switch {
        let log = dir.join("switch.log");
        let f = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_sgswitch"))
            .arg("run")
            .arg("--config")
            .arg(config)
            // Tests run in parallel: each switch's API on its own ephemeral port.
            .args(["--api", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(f)
            .spawn()
            .expect("spawn sgswitch run");
        let mut sw = Switch {
            child: Some(child),
            log,
        };
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            if sw.log_text().contains("sgswitch: ready") {
                return sw;
            }
            if let Some(status) = sw.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!(
                    "sgswitch run exited ({status}) before ready:\n{}",
                    sw.log_text()
                );
            }
            assert!(
                Instant::now() < end,
                "sgswitch run not ready within 20 s:\n{}",
                sw.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The management API's address, from the ready line (`API on http://ADDR`).
    pub fn api_addr(&self) -> Option<String> {
        let text = self.log_text();
        let i = text.find("API on http://")? + "API on http://".len();
        let rest = &text[i..];
        let end = rest.find([')', ',', '\n', ' ']).unwrap_or(rest.len());
        Some(rest[..end].to_string())
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log's length now (an offset for [`Switch::log_from`]).
    pub fn log_len(&self) -> u64 {
        std::fs::metadata(&self.log).map_or(0, |m| m.len())
    }

    /// The log from byte `offset` on.
    pub fn log_from(&self, offset: u64) -> String {
        let mut s = Vec::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            if f.seek(SeekFrom::Start(offset)).is_ok() {
                let _ = f.read_to_end(&mut s);
            }
        }
        String::from_utf8_lossy(&s).into_owned()
    }

    /// Wait until the log, from byte `offset`, contains `needle`.
    pub fn wait_log_from(&self, offset: u64, needle: &str, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.log_from(offset).contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        false
    }

    /// SIGHUP, then wait for `sgswitch: reloaded`; panics with the log if it does not come.
    pub fn reload(&self) {
        let off = self.log_len();
        assert!(signal(self.pid(), libc::SIGHUP));
        assert!(
            self.wait_log_from(off, "sgswitch: reloaded", Duration::from_secs(10)),
            "no `sgswitch: reloaded` after SIGHUP:\n{}",
            self.log_text()
        );
    }

    /// SIGUSR1, and the drop counters of the dump it prints: (port, reason) → count.
    pub fn drops(&self, ports: &[&str]) -> BTreeMap<(String, String), u64> {
        let off = self.log_len();
        assert!(signal(self.pid(), libc::SIGUSR1));
        // The dump is one write of a table; wait until a line for every port is there.
        let end = Instant::now() + Duration::from_secs(5);
        let mut text = String::new();
        while Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
            text = self.log_from(off);
            let lines: Vec<&str> = text.lines().collect();
            if ports
                .iter()
                .all(|p| lines.iter().any(|l| l.split_whitespace().next() == Some(p)))
            {
                break;
            }
        }
        parse_drops(&text, ports)
    }

    /// SIGKILL the switch and reap it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait; returns whether it exited by itself within `timeout`, and its
    /// exit status if so.
    pub fn stop(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        signal(c.id(), libc::SIGTERM);
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Ok(Some(st)) = c.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
        None
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

/// Drop counters from a counter dump: lines starting with a port name, then
/// `reason=count` tokens. Later dumps in `text` overwrite earlier ones.
pub fn parse_drops(text: &str, ports: &[&str]) -> BTreeMap<(String, String), u64> {
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let mut toks = line.split_whitespace();
        let Some(first) = toks.next() else { continue };
        if !ports.contains(&first) {
            continue;
        }
        for t in toks {
            if let Some((r, n)) = t.split_once('=') {
                if let Ok(n) = n.parse::<u64>() {
                    m.insert((first.to_string(), r.to_string()), n);
                }
            }
        }
    }
    m
}

/// How many more `reason` drops `port` has in `after` than in `before`.
pub fn grew(
    before: &BTreeMap<(String, String), u64>,
    after: &BTreeMap<(String, String), u64>,
    port: &str,
    reason: &str,
) -> u64 {
    let k = (port.to_string(), reason.to_string());
    after
        .get(&k)
        .copied()
        .unwrap_or(0)
        .saturating_sub(before.get(&k).copied().unwrap_or(0))
}

// ---------------------------------------------------------------------------------------
// Traffic.

/// Ping `dst` from `ns` (optionally from source address `src`); true if a reply came
/// within `secs` seconds.
pub fn ping(ns: &Netns, dst: &str, src: Option<&str>, secs: u32) -> bool {
    let w = secs.to_string();
    let mut args = vec!["ping", "-n", "-c", "1", "-i", "0.3", "-w", &w];
    if dst.contains(':') {
        args.push("-6");
    }
    if let Some(s) = src {
        args.extend(["-I", s]);
    }
    args.push(dst);
    ns.cmd(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Echo server (TCP line echo and UDP datagram echo), dual-stack.
const SERVER_PY: &str = r#"
import selectors, socket, sys
sel = selectors.DefaultSelector()
def listen(kind, port):
    s = socket.socket(socket.AF_INET6, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    if kind == socket.SOCK_STREAM:
        s.listen(64)
    sel.register(s, selectors.EVENT_READ, kind)
for p in filter(None, sys.argv[1].split(",")):
    listen(socket.SOCK_STREAM, int(p))
for p in filter(None, sys.argv[2].split(",")):
    listen(socket.SOCK_DGRAM, int(p))
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        s = key.fileobj
        try:
            if key.data == "conn":
                d = s.recv(4096)
                if d:
                    s.sendall(b"echo " + d)
                else:
                    sel.unregister(s)
                    s.close()
            elif key.data == socket.SOCK_STREAM:
                c, _ = s.accept()
                sel.register(c, selectors.EVENT_READ, "conn")
            else:
                d, a = s.recvfrom(4096)
                s.sendto(b"echo " + d, a)
        except OSError:
            try:
                sel.unregister(s)
                s.close()
            except Exception:
                pass
"#;

/// Start the echo server in `ns` on the given ports; returns once it listens.
pub fn echo_server(ns: &Netns, tcp: &[u16], udp: &[u16]) -> Proc {
    let list = |v: &[u16]| v.iter().map(u16::to_string).collect::<Vec<_>>().join(",");
    let mut child = ns
        .cmd(&[python(), "-c", SERVER_PY, &list(tcp), &list(udp)])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start echo server");
    let out = child.stdout.take().unwrap();
    let p = Proc { child };
    let mut line = String::new();
    let _ = BufReader::new(out).read_line(&mut line);
    assert_eq!(
        line.trim(),
        "ready",
        "echo server in {} did not start",
        ns.name
    );
    p
}

/// One-shot client: prints PASS, TIMEOUT, REFUSED or ERROR.
const PROBE_PY: &str = r#"
import socket, sys
kind, host, port, t = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
try:
    if kind == "tcp":
        s = socket.create_connection((host, port), timeout=t)
        s.sendall(b"probe\n")
    else:
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.settimeout(t)
        s.sendto(b"probe\n", (host, port))
    d = s.recv(4096)
    print("PASS" if d.startswith(b"echo probe") else "BAD")
except socket.timeout:
    print("TIMEOUT")
except ConnectionRefusedError:
    print("REFUSED")
except OSError as e:
    print("ERROR", e)
"#;

/// Outcome of a one-shot TCP/UDP probe.
pub fn probe(ns: &Netns, kind: &str, dst: &str, port: u16, secs: u32) -> String {
    let out = ns
        .cmd(&[
            python(),
            "-c",
            PROBE_PY,
            kind,
            dst,
            &port.to_string(),
            &secs.to_string(),
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run probe");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A long-lived TCP client exchanging lines with an echo server.
const LINES_PY: &str = r#"
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
except OSError as e:
    print("connect-failed", e, flush=True)
    sys.exit(0)
print("connected", flush=True)
while True:
    line = sys.stdin.readline()
    if not line:
        break
    try:
        s.sendall(line.encode())
        d = s.recv(4096)
        print("ok" if d == b"echo " + line.encode() else "closed", flush=True)
    except socket.timeout:
        print("timeout", flush=True)
    except OSError as e:
        print("error", e, flush=True)
"#;

/// A TCP connection kept open across a policy change.
pub struct LineClient {
    _proc: Proc,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl LineClient {
    /// Connect from `ns` to `dst:port`; Err(the client's words) if it cannot.
    pub fn connect(ns: &Netns, dst: &str, port: u16, secs: u32) -> Result<LineClient, String> {
        let mut child = ns
            .cmd(&[
                python(),
                "-c",
                LINES_PY,
                dst,
                &port.to_string(),
                &secs.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start line client");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let proc_ = Proc { child };
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        if line.trim() != "connected" {
            return Err(line.trim().to_string());
        }
        Ok(LineClient {
            _proc: proc_,
            stdin,
            stdout,
        })
    }

    /// Send one line and report what happened: "ok", "timeout", "closed", "error ...".
    pub fn exchange(&mut self, text: &str) -> String {
        if writeln!(self.stdin, "{text}")
            .and_then(|_| self.stdin.flush())
            .is_err()
        {
            return "client gone".to_string();
        }
        let mut line = String::new();
        let _ = self.stdout.read_line(&mut line);
        line.trim().to_string()
    }
}

/// Whether `ip -d link show DEV` reports an XDP program on `dev`.
pub fn xdp_attached(dev: &str) -> bool {
    let out = Command::new("ip")
        .args(["-d", "link", "show", "dev", dev])
        .output()
        .expect("ip -d link show");
    String::from_utf8_lossy(&out.stdout).contains("xdp")
}

// ---------------------------------------------------------------------------------------
// Several probes at once, neighbour resolution, broadcasts.

/// Many one-shot probes from one namespace at once (threads): one line per probe,
/// `kind,host,port RESULT` with the results of [`probe`].
const MULTI_PROBE_PY: &str = r#"
import socket, sys, threading
t = float(sys.argv[1])
specs = sys.argv[2:]
res = {}
def one(spec):
    kind, host, port = spec.split(",")
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        if kind == "tcp":
            s = socket.create_connection((host, int(port)), timeout=t)
            s.sendall(b"probe\n")
        else:
            s = socket.socket(fam, socket.SOCK_DGRAM)
            s.settimeout(t)
            s.sendto(b"probe\n", (host, int(port)))
        d = s.recv(4096)
        s.close()
        res[spec] = "PASS" if d.startswith(b"echo probe") else "BAD"
    except socket.timeout:
        res[spec] = "TIMEOUT"
    except ConnectionRefusedError:
        res[spec] = "REFUSED"
    except OSError as e:
        res[spec] = "ERROR " + str(e).replace(" ", "_")
ths = [threading.Thread(target=one, args=(s,)) for s in specs]
for th in ths:
    th.start()
for th in ths:
    th.join()
for s in specs:
    print(s, res.get(s, "ERROR no-result"), flush=True)
"#;

/// Run `probes` (kind `tcp`/`udp`, host, port) from `ns` at once, each with a timeout of
/// `secs`; the outcome of each, in order (`PASS`, `TIMEOUT`, `REFUSED`, `ERROR ...`).
pub fn probes(ns: &Netns, probes: &[(&str, &str, u16)], secs: f64) -> Vec<String> {
    if probes.is_empty() {
        return Vec::new();
    }
    let specs: Vec<String> = probes
        .iter()
        .map(|(k, h, p)| format!("{k},{h},{p}"))
        .collect();
    let mut args: Vec<&str> = vec![python(), "-c", MULTI_PROBE_PY];
    let t = secs.to_string();
    args.push(&t);
    args.extend(specs.iter().map(String::as_str));
    let out = ns
        .cmd(&args)
        .stdin(Stdio::null())
        .output()
        .expect("run probes");
    let text = String::from_utf8_lossy(&out.stdout);
    specs
        .iter()
        .map(|s| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{s} ")))
                .unwrap_or("ERROR no output")
                .to_string()
        })
        .collect()
}

/// Neighbour resolution done by hand from one interface: an ARP request (IPv4) or a
/// neighbour solicitation to the solicited-node group (IPv6) for each target, resent
/// every 0.3 s, until every answer came or the time is up. Prints `TARGET MAC` (the
/// answer's sender / target link-layer address) or `TARGET none`. Answers count only if
/// addressed to us (ARP target MAC, NA to our address), so a neighbour entry learned from
/// the other side's own request cannot pass for a resolution.
const RESOLVE_PY: &str = r#"
import select, socket, struct, sys, time
ifname, my_mac, my_v4, my_v6, t = sys.argv[1:6]
targets = sys.argv[6:]
mac = bytes.fromhex(my_mac.replace(":", ""))
idx = socket.if_nametoindex(ifname)
want4 = [x for x in targets if ":" not in x]
want6 = [x for x in targets if ":" in x]
found = {}
s4 = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
s4.bind((ifname, 0x0806))
s6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s6.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
s6.bind((my_v6, 0, 0, idx))
def send_all():
    for ip in want4:
        if ip not in found:
            arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac,
                              socket.inet_aton(my_v4), b"\0" * 6, socket.inet_aton(ip))
            s4.send(b"\xff" * 6 + mac + b"\x08\x06" + arp)
    for ip in want6:
        if ip not in found:
            tgt = socket.inet_pton(socket.AF_INET6, ip)
            snm = socket.inet_pton(socket.AF_INET6, "ff02::1:ff00:0")[:13] + tgt[13:]
            ns = struct.pack("!BBHI16s", 135, 0, 0, 0, tgt) + bytes([1, 1]) + mac
            s6.sendto(ns, (socket.inet_ntop(socket.AF_INET6, snm), 0, 0, idx))
end = time.time() + float(t)
next_send = 0.0
while len(found) < len(targets):
    now = time.time()
    if now >= end:
        break
    if now >= next_send:
        send_all()
        next_send = now + 0.3
    r, _, _ = select.select([s4, s6], [], [], max(0.0, min(end, next_send) - now))
    if s4 in r:
        d = s4.recv(2048)
        if len(d) >= 42 and d[12:14] == b"\x08\x06" and d[20:22] == b"\x00\x02" and d[32:38] == mac:
            spa = socket.inet_ntoa(d[28:32])
            if spa in want4:
                found.setdefault(spa, d[22:28].hex(":"))
    if s6 in r:
        d = s6.recv(2048)
        if len(d) >= 24 and d[0] == 136:
            tgt = socket.inet_ntop(socket.AF_INET6, d[8:24])
            opts, lla = d[24:], None
            while len(opts) >= 8 and opts[1] > 0:
                if opts[0] == 2:
                    lla = opts[2:8].hex(":")
                opts = opts[opts[1] * 8:]
            if tgt in want6 and lla:
                found.setdefault(tgt, lla)
for ip in targets:
    print(ip, found.get(ip, "none"), flush=True)
"#;

/// Resolve `targets` (IPv4 by ARP, IPv6 by neighbour solicitation, all at once) from
/// instance `inst`; the link-layer address each answer gave (`None`: no answer within
/// `secs`).
pub fn resolve(inst: &Instance, targets: &[&str], secs: f64) -> Vec<Option<String>> {
    if targets.is_empty() {
        return Vec::new();
    }
    let t = secs.to_string();
    let mut args: Vec<&str> = vec![
        python(),
        "-c",
        RESOLVE_PY,
        &inst.ifname,
        &inst.mac,
        &inst.v4,
        &inst.v6,
        &t,
    ];
    args.extend(targets);
    let out = inst
        .ns
        .cmd(&args)
        .stdin(Stdio::null())
        .output()
        .expect("run resolve");
    let text = String::from_utf8_lossy(&out.stdout);
    targets
        .iter()
        .map(|tg| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{tg} ")))
                .filter(|m| *m != "none")
                .map(str::to_string)
        })
        .collect()
}

/// UDP datagrams from one interface: `DST,PORT,PAYLOAD` each; IPv4 broadcast allowed
/// (the socket is bound to the interface, so 255.255.255.255 leaves through it), IPv6
/// link-scope multicast through the interface.
const SEND_UDP_PY: &str = r#"
import socket, sys
ifname = sys.argv[1]
idx = socket.if_nametoindex(ifname)
for spec in sys.argv[2:]:
    dst, port, payload = spec.split(",")
    if ":" in dst:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, idx)
        s.sendto(payload.encode(), (dst, int(port), 0, idx))
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
        s.sendto(payload.encode(), (dst, int(port)))
    s.close()
print("sent", flush=True)
"#;

/// Send UDP datagrams `(destination, port, payload)` from instance `inst`'s interface
/// (broadcast and multicast destinations allowed). Panics if the sender fails.
pub fn send_udp(inst: &Instance, datagrams: &[(&str, u16, &str)]) {
    let specs: Vec<String> = datagrams
        .iter()
        .map(|(d, p, m)| format!("{d},{p},{m}"))
        .collect();
    let mut args: Vec<&str> = vec![python(), "-c", SEND_UDP_PY, &inst.ifname];
    args.extend(specs.iter().map(String::as_str));
    let out = inst
        .ns
        .cmd(&args)
        .stdin(Stdio::null())
        .output()
        .expect("run udp sender");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("sent"),
        "udp sender in {} failed: {}",
        inst.ns.name,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Forget every neighbour (IPv4 and IPv6) of a namespace.
pub fn neigh_flush(ns: &Netns) {
    sh(&["ip", "-n", &ns.name, "-4", "neigh", "flush", "all"]);
    sh(&["ip", "-n", &ns.name, "-6", "neigh", "flush", "all"]);
}

/// Many pings at once: `(namespace, destination)`; whether each got a reply within `secs`.
pub fn pings(list: &[(&Netns, &str)], secs: u32) -> Vec<bool> {
    let w = secs.to_string();
    let children: Vec<Option<Child>> = list
        .iter()
        .map(|(ns, dst)| {
            let mut args = vec!["ping", "-n", "-c", "1", "-i", "0.3", "-w", &w];
            if dst.contains(':') {
                args.push("-6");
            }
            args.push(dst);
            ns.cmd(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .ok()
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.is_some_and(|mut c| c.wait().is_ok_and(|s| s.success())))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Captures.

/// Which frames of an interface a capture sees (tcpdump `-Q`): `In`, frames the interface
/// received (for an instance: what the switch delivered to its port); `Out`, frames it
/// sent (what entered the switch on its port).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    In,
    Out,
}

/// A tcpdump capture inside a namespace, to a pcap file (nanosecond timestamps, whole
/// frames, written as they come). [`Capture::start`] returns once tcpdump listens;
/// [`Capture::stop`] sends SIGINT (tcpdump flushes) and reads the frames. Killed on drop.
pub struct Capture {
    child: Option<Child>,
    stderr: Option<std::thread::JoinHandle<String>>,
    pub file: PathBuf,
    /// `NS/IF in|out`, for messages.
    pub what: String,
}

/// One captured frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub ts_ns: u64,
    /// Interface index in the file (pcapng), 0 for pcap.
    pub interface: usize,
    pub bytes: Vec<u8>,
}

impl Capture {
    /// Start tcpdump on `ifname` in `ns`; `filter` is a pcap filter ("" for every frame).
    /// Panics (with tcpdump's words) if it does not report listening within 10 s.
    pub fn start(ns: &Netns, ifname: &str, dir: Dir, file: &Path, filter: &str) -> Capture {
        let q = match dir {
            Dir::In => "in",
            Dir::Out => "out",
        };
        let what = format!("{}/{ifname} {q}", ns.name);
        let file_s = file.to_string_lossy().into_owned();
        let mut args = vec![
            "tcpdump",
            "-i",
            ifname,
            "-Q",
            q,
            "-U",
            "-w",
            &file_s,
            "--immediate-mode",
            "-s",
            "0",
            "-n",
            "--time-stamp-precision",
            "nano",
            // Debian's tcpdump drops to user tcpdump, who could not write the file.
            "-Z",
            "root",
        ];
        if !filter.is_empty() {
            args.push(filter);
        }
        let mut child = ns
            .cmd(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tcpdump");
        let err = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let reader = std::thread::spawn(move || {
            let mut all = String::new();
            let mut r = BufReader::new(err);
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                if line.contains("listening on") {
                    let _ = tx.send(());
                }
                all.push_str(&line);
                line.clear();
            }
            all
        });
        let mut cap = Capture {
            child: Some(child),
            stderr: Some(reader),
            file: file.to_path_buf(),
            what,
        };
        if rx.recv_timeout(Duration::from_secs(10)).is_err() {
            if let Some(mut c) = cap.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
            let said = cap
                .stderr
                .take()
                .and_then(|h| h.join().ok())
                .unwrap_or_default();
            panic!("tcpdump ({}) did not start: {said}", cap.what);
        }
        cap
    }

    /// Stop with SIGINT, wait for tcpdump to exit and return the captured frames.
    /// Panics if tcpdump does not exit, fails, or reports frames dropped by the kernel
    /// (the capture would be incomplete).
    pub fn stop(mut self) -> Vec<Frame> {
        let mut child = self.child.take().expect("capture running");
        signal(child.id(), libc::SIGINT);
        let end = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Ok(Some(st)) = child.try_wait() {
                break Some(st);
            }
            if Instant::now() > end {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let said = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        assert!(
            status.is_some_and(|s| s.success()),
            "tcpdump ({}) did not stop cleanly ({status:?}): {said}",
            self.what
        );
        assert!(
            said.lines()
                .any(|l| l.trim() == "0 packets dropped by kernel"),
            "tcpdump ({}) lost frames: {said}",
            self.what
        );
        read_capture(&self.file)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Every frame of a pcap or pcapng file (panics if it cannot be read).
pub fn read_capture(path: &Path) -> Vec<Frame> {
    use sgswitch::port::pcap::CaptureReader;
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut r =
        CaptureReader::new(BufReader::new(f)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while let Some(rec) = r
        .next_frame(&mut buf)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    {
        out.push(Frame {
            ts_ns: rec.ts_ns,
            interface: rec.interface,
            bytes: buf.clone(),
        });
    }
    out
}

fn mac_str(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A one-line description of a frame for failure messages: MACs, ethertype, and for
/// ARP, IPv4 and IPv6 the addresses, protocol, ports or ICMP type, and the length.
pub fn frame_summary(f: &[u8]) -> String {
    if f.len() < 14 {
        return format!("runt frame of {} bytes", f.len());
    }
    let et = u16::from_be_bytes([f[12], f[13]]);
    let head = format!(
        "{} > {} len {}",
        mac_str(&f[6..12]),
        mac_str(&f[0..6]),
        f.len()
    );
    let p = &f[14..];
    let l4 = |proto: u8, l: &[u8]| -> String {
        match proto {
            6 if l.len() >= 14 => {
                let flags = l[13];
                let names: String = [
                    (0x02, 'S'),
                    (0x10, '.'),
                    (0x01, 'F'),
                    (0x04, 'R'),
                    (0x08, 'P'),
                ]
                .iter()
                .filter(|(b, _)| flags & b != 0)
                .map(|(_, c)| *c)
                .collect();
                format!(
                    "tcp {} > {} [{names}]",
                    u16::from_be_bytes([l[0], l[1]]),
                    u16::from_be_bytes([l[2], l[3]])
                )
            }
            17 if l.len() >= 8 => format!(
                "udp {} > {}",
                u16::from_be_bytes([l[0], l[1]]),
                u16::from_be_bytes([l[2], l[3]])
            ),
            1 if l.len() >= 2 => format!("icmp type {} code {}", l[0], l[1]),
            58 if l.len() >= 2 => format!("icmp6 type {} code {}", l[0], l[1]),
            n => format!("proto {n}"),
        }
    };
    match et {
        0x0806 if p.len() >= 28 => format!(
            "{head} arp {} {}.{}.{}.{} ({}) -> {}.{}.{}.{} ({})",
            if p[7] == 1 { "request" } else { "reply" },
            p[14],
            p[15],
            p[16],
            p[17],
            mac_str(&p[8..14]),
            p[24],
            p[25],
            p[26],
            p[27],
            mac_str(&p[18..24])
        ),
        0x0800 if p.len() >= 20 => {
            let ihl = usize::from(p[0] & 0x0f) * 4;
            format!(
                "{head} ipv4 {}.{}.{}.{} > {}.{}.{}.{} {}",
                p[12],
                p[13],
                p[14],
                p[15],
                p[16],
                p[17],
                p[18],
                p[19],
                l4(p[9], p.get(ihl..).unwrap_or(&[]))
            )
        }
        0x86dd if p.len() >= 40 => {
            let a = |b: &[u8]| {
                let mut o = [0u8; 16];
                o.copy_from_slice(b);
                std::net::Ipv6Addr::from(o).to_string()
            };
            format!(
                "{head} ipv6 {} > {} {}",
                a(&p[8..24]),
                a(&p[24..40]),
                l4(p[6], &p[40..])
            )
        }
        _ => format!("{head} ethertype {et:#06x}"),
    }
}
