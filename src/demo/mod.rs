//! `sgswitch demo`: a live tour of the switch on network namespaces.
//!
//! # What it does
//! 1. Checks that it can run (root, `ip`, `ping`, `python3`, and `ethtool` for veth
//!    backends) and that no other demo is running.
//! 2. Builds four network namespaces acting as instances: `web-1` and `web-2` (groups
//!    `default` and `web`), `db` (group `db`: TCP 5432 from members of `web` only, no egress
//!    rule at all) and `router` (port security off, like a Neutron router port). Each gets a
//!    fixed MAC, an IPv4 and an IPv6 address on 10.0.0.0/24 and fd00::/64.
//! 3. Writes the config to a state directory (`/run/sgswitch-demo`), checks it with the
//!    library's own validator, starts `sgswitch run --config FILE` (this very executable)
//!    in its own process group with stderr to a log file, and waits for `sgswitch: ready`.
//! 4. Starts a small TCP/UDP echo server (python3) in every namespace and sends real
//!    traffic between them: ping and ping -6, TCP connects, UDP datagrams, and a ping from a
//!    forged source address. After each probe it sends SIGUSR1 to the switch and reads the
//!    counter dump from the log: the drop reasons that grew tell *why* a probe was blocked.
//! 5. Prints a table (test, from → to, expected, observed, why) and exits 1 if any
//!    observation differs from its expectation.
//! 6. Removes everything it created — the switch (SIGTERM, then SIGKILL), the servers,
//!    the namespaces, the veth pairs and the state directory — on success, on failure and
//!    on Ctrl-C / SIGTERM. With `--keep` it leaves everything running and prints commands to
//!    try by hand; `sgswitch demo --clean` removes it later.
//!
//! # Backends
//! * `tap` (default): the switch creates one tap per instance (`vnet_hdr = true`, so
//!   partial checksums are completed by the switch) and moves it into the instance's
//!   namespace (`netns = "..."`); the demo then sets its MAC and addresses there.
//! * `afxdp` / `afpacket`: the demo creates a veth pair per instance, `eth0` inside the
//!   namespace (with `ethtool -K eth0 tx off`: the switch forwards frames untouched, and
//!   partial checksums would be dropped by the receiver) and `sgsd-NAME` in the root
//!   namespace, which the switch opens. IPv6 is disabled on the root-side ends so the host
//!   stays silent on them.
//!
//! # Invariants
//! * Every resource the demo creates is recorded in the state file *before* it is created,
//!   so `--clean` can remove it even if the demo was killed with SIGKILL; all names carry
//!   the fixed prefixes `sgs-demo-` (namespaces) and `sgsd-` (links), so a second demo
//!   refuses to start instead of trampling a running one.
//! * Processes are only ever signalled by the pid the demo recorded (or by `ip netns pids`
//!   of a demo namespace), after checking `/proc/PID/cmdline` still names them.
//! * The verdict of a probe comes from the traffic tool (did the reply arrive?), never from
//!   the switch's counters; counters only explain it.
//!
//! # Rejected options
//! * Driving traffic through in-process raw sockets: real `ping`/TCP/UDP stacks exercise
//!   ARP, neighbour discovery and conntrack the way an instance would.
//! * A `ctrlc`-style crate: a `libc::signal` handler that sets an atomic flag is enough;
//!   the switch and servers run in their own process groups, so a terminal Ctrl-C reaches
//!   only the demo and its short-lived probes, and the demo tears down in order.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sgswitch::flow::DropReason;

/// `sgswitch demo --help`.
pub const LONG_ABOUT: &str = "Build a small network of instances in network namespaces \
(web-1 and web-2 in the groups default and web, db in the group db that allows PostgreSQL only \
from members of web, and a router port without port security; IPv4 and IPv6), run \
`sgswitch run` on them, send real traffic (ping, ping -6, TCP, UDP, a forged source address) \
and print what passed, what was blocked and why.\n\n\
Needs root, iproute2, iputils-ping, python3 (and ethtool for --backend afxdp|afpacket). \
Everything it creates (namespaces sgs-demo-*, links sgsd-*, the switch, the echo servers) is \
removed at the end, also on Ctrl-C. --keep leaves it running for you to try by hand; \
`sgswitch demo --clean` removes it.\n\n\
Exit codes: 0 every observation matched the security groups; 1 one did not, or the demo \
could not run; 130 interrupted.";

/// How the instances are attached to the switch.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DemoBackend {
    /// Taps created by the switch and moved into the namespaces
    Tap,
    /// veth pairs, AF_XDP sockets on the root-side ends
    Afxdp,
    /// veth pairs, AF_PACKET sockets on the root-side ends
    Afpacket,
}

impl DemoBackend {
    fn as_str(self) -> &'static str {
        match self {
            DemoBackend::Tap => "tap",
            DemoBackend::Afxdp => "afxdp",
            DemoBackend::Afpacket => "afpacket",
        }
    }
    fn uses_veth(self) -> bool {
        self != DemoBackend::Tap
    }
}

/// Arguments of `sgswitch demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Leave the namespaces and the switch running and print commands to try by hand
    #[arg(long, conflicts_with = "clean")]
    pub keep: bool,
    /// Remove a demo left running (by --keep, or by a crash) and exit
    #[arg(long)]
    pub clean: bool,
    /// How the instances are attached to the switch
    #[arg(long, value_enum, default_value_t = DemoBackend::Tap)]
    pub backend: DemoBackend,
}

/// One instance of the demo topology.
struct Instance {
    port: &'static str,
    ns: &'static str,
    /// Tap name, or the root-side veth end.
    link: &'static str,
    mac: &'static str,
    v4: &'static str,
    v6: &'static str,
    /// TOML list of groups, or `None` for a port without port security.
    groups: Option<&'static str>,
}

const WEB1: usize = 0;
const WEB2: usize = 1;
const DB: usize = 2;
const RTR: usize = 3;

const INSTANCES: [Instance; 4] = [
    Instance {
        port: "web-1",
        ns: "sgs-demo-web1",
        link: "sgsd-web1",
        mac: "fa:16:3e:00:00:11",
        v4: "10.0.0.11",
        v6: "fd00::11",
        groups: Some(r#"["default", "web"]"#),
    },
    Instance {
        port: "web-2",
        ns: "sgs-demo-web2",
        link: "sgsd-web2",
        mac: "fa:16:3e:00:00:12",
        v4: "10.0.0.12",
        v6: "fd00::12",
        groups: Some(r#"["default", "web"]"#),
    },
    Instance {
        port: "db",
        ns: "sgs-demo-db",
        link: "sgsd-db",
        mac: "fa:16:3e:00:00:13",
        v4: "10.0.0.13",
        v6: "fd00::13",
        groups: Some(r#"["db"]"#),
    },
    Instance {
        port: "router",
        ns: "sgs-demo-rtr",
        link: "sgsd-rtr",
        mac: "fa:16:3e:00:00:01",
        v4: "10.0.0.1",
        v6: "fd00::1",
        groups: None,
    },
];

/// Prefix of every namespace the demo creates.
const NS_PREFIX: &str = "sgs-demo-";
/// Address used by the anti-spoofing probe: on web-2's interface, but not web-2's.
const FORGED_V4: &str = "10.0.0.99";
/// TCP ports every demo server listens on (so "blocked" never means "nobody listening").
const TCP_PORTS: [u16; 3] = [22, 80, 5432];
/// UDP ports every demo server listens on.
const UDP_PORTS: [u16; 2] = [53, 5000];
/// How long a probe waits for an answer before calling it blocked.
const PROBE_SECS: u32 = 2;

/// The config the demo runs, for `backend`.
fn config_text(backend: DemoBackend) -> String {
    let mut t = String::new();
    t.push_str(
        "# Written by `sgswitch demo`.\n\
         #   web-1, web-2  groups default + web: HTTP and ping from anywhere; members of\n\
         #                 default reach each other on anything\n\
         #   db            group db: PostgreSQL (tcp/5432) only from members of web;\n\
         #                 no egress rule (replies still pass: the group is stateful)\n\
         #   router        port security off (a Neutron router port)\n\
         # The default group is not declared: it has Neutron's default rules.\n\n\
         [switch]\nworkers = 1\n\n\
         [[security_groups]]\n\
         name = \"web\"\n\
         rules = [\n\
         \x20 { direction = \"ingress\", ethertype = \"IPv4\", protocol = \"tcp\", port_range_min = 80, port_range_max = 80 },\n\
         \x20 { direction = \"ingress\", ethertype = \"IPv6\", protocol = \"tcp\", port_range_min = 80, port_range_max = 80 },\n\
         \x20 { direction = \"ingress\", ethertype = \"IPv4\", protocol = \"icmp\", port_range_min = 8 },\n\
         \x20 { direction = \"ingress\", ethertype = \"IPv6\", protocol = \"ipv6-icmp\", port_range_min = 128 },\n\
         \x20 { direction = \"egress\", ethertype = \"IPv4\" },\n\
         \x20 { direction = \"egress\", ethertype = \"IPv6\" },\n\
         ]\n\n\
         [[security_groups]]\n\
         name = \"db\"\n\
         rules = [\n\
         \x20 { direction = \"ingress\", ethertype = \"IPv4\", protocol = \"tcp\", port_range_min = 5432, port_range_max = 5432, remote_group = \"web\" },\n\
         \x20 { direction = \"ingress\", ethertype = \"IPv6\", protocol = \"tcp\", port_range_min = 5432, port_range_max = 5432, remote_group = \"web\" },\n\
         ]\n",
    );
    for i in &INSTANCES {
        let _ = write!(
            t,
            "\n[[ports]]\nname = \"{}\"\nmac = \"{}\"\nfixed_ips = [\"{}\", \"{}\"]\n",
            i.port, i.mac, i.v4, i.v6
        );
        match i.groups {
            Some(g) => {
                let _ = writeln!(t, "security_groups = {g}");
            }
            None => t.push_str("port_security = false\n"),
        }
        let _ = match backend {
            DemoBackend::Tap => writeln!(
                t,
                "backend = {{ type = \"tap\", ifname = \"{}\", netns = \"{}\", vnet_hdr = true }}",
                i.link, i.ns
            ),
            DemoBackend::Afxdp => writeln!(
                t,
                "backend = {{ type = \"afxdp\", ifname = \"{}\" }}",
                i.link
            ),
            DemoBackend::Afpacket => writeln!(
                t,
                "backend = {{ type = \"afpacket\", ifname = \"{}\" }}",
                i.link
            ),
        };
    }
    t
}

/// What a probe sends.
#[derive(Clone, Copy, Debug)]
enum Probe {
    Ping,
    Tcp(u16),
    Udp(u16),
}

/// One row of the demo's table.
struct Case {
    from: usize,
    to: usize,
    v6: bool,
    probe: Probe,
    /// Send from this (forged) source address instead of the instance's own.
    forged_src: Option<&'static str>,
    expect_pass: bool,
    /// The rule (or its absence) that decides the case.
    rule: &'static str,
}

const CASES: [Case; 13] = [
    Case {
        from: WEB1,
        to: WEB2,
        v6: false,
        probe: Probe::Ping,
        forged_src: None,
        expect_pass: true,
        rule: "default: ingress from members of default",
    },
    Case {
        from: WEB1,
        to: WEB2,
        v6: true,
        probe: Probe::Ping,
        forged_src: None,
        expect_pass: true,
        rule: "default: ingress from members of default (ND always allowed)",
    },
    Case {
        from: WEB2,
        to: WEB1,
        v6: false,
        probe: Probe::Udp(5000),
        forged_src: None,
        expect_pass: true,
        rule: "default: ingress from members of default",
    },
    Case {
        from: RTR,
        to: WEB1,
        v6: false,
        probe: Probe::Tcp(80),
        forged_src: None,
        expect_pass: true,
        rule: "web: ingress tcp/80 from anywhere",
    },
    Case {
        from: RTR,
        to: WEB2,
        v6: true,
        probe: Probe::Tcp(80),
        forged_src: None,
        expect_pass: true,
        rule: "web: ingress tcp/80 from anywhere (IPv6)",
    },
    Case {
        from: RTR,
        to: WEB2,
        v6: false,
        probe: Probe::Ping,
        forged_src: None,
        expect_pass: true,
        rule: "web: ingress icmp echo from anywhere",
    },
    Case {
        from: WEB1,
        to: DB,
        v6: false,
        probe: Probe::Tcp(5432),
        forged_src: None,
        expect_pass: true,
        rule: "db: tcp/5432 from group web; reply passes statefully",
    },
    Case {
        from: WEB2,
        to: DB,
        v6: true,
        probe: Probe::Tcp(5432),
        forged_src: None,
        expect_pass: true,
        rule: "db: tcp/5432 from group web (IPv6)",
    },
    Case {
        from: RTR,
        to: DB,
        v6: false,
        probe: Probe::Tcp(5432),
        forged_src: None,
        expect_pass: false,
        rule: "db: router is not a member of web",
    },
    Case {
        from: WEB1,
        to: DB,
        v6: false,
        probe: Probe::Tcp(22),
        forged_src: None,
        expect_pass: false,
        rule: "db: no rule for tcp/22",
    },
    Case {
        from: DB,
        to: WEB1,
        v6: false,
        probe: Probe::Ping,
        forged_src: None,
        expect_pass: false,
        rule: "db: no egress rule",
    },
    Case {
        from: RTR,
        to: WEB1,
        v6: false,
        probe: Probe::Udp(53),
        forged_src: None,
        expect_pass: false,
        rule: "web-1: no udp rule; router not in default",
    },
    Case {
        from: WEB2,
        to: RTR,
        v6: false,
        probe: Probe::Ping,
        forged_src: Some(FORGED_V4),
        expect_pass: false,
        rule: "anti-spoofing: 10.0.0.99 is not web-2's",
    },
];

impl Case {
    fn title(&self) -> String {
        let what = match self.probe {
            Probe::Ping if self.v6 => "ping -6".to_string(),
            Probe::Ping => "ping".to_string(),
            Probe::Tcp(p) => format!("tcp/{p}{}", if self.v6 { " v6" } else { "" }),
            Probe::Udp(p) => format!("udp/{p}{}", if self.v6 { " v6" } else { "" }),
        };
        match self.forged_src {
            Some(src) => format!("{what} from {src}"),
            None => what,
        }
    }

    fn dst(&self) -> &'static str {
        let i = &INSTANCES[self.to];
        if self.v6 {
            i.v6
        } else {
            i.v4
        }
    }
}

// ---------------------------------------------------------------------------------------
// Signals.

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_sig: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

fn install_signal_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: `on_signal` only stores to an atomic, which is async-signal-safe; the
        // handler stays valid for the life of the process.
        unsafe {
            libc::signal(
                sig,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    }
}

fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Send `sig` to `pid`; false if it does not exist.
fn signal(pid: u32, sig: libc::c_int) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill has no memory-safety preconditions; pid is a single positive id.
    unsafe { libc::kill(pid, sig) == 0 }
}

/// The command line of `pid` (arguments joined by spaces), if it is alive.
fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// SIGTERM `pid` if its command line contains `marker`, wait up to `grace`, then SIGKILL.
fn stop_pid(pid: u32, marker: &str, grace: Duration) {
    if !cmdline(pid).is_some_and(|c| c.contains(marker)) {
        return;
    }
    signal(pid, libc::SIGTERM);
    let end = Instant::now() + grace;
    while Instant::now() < end {
        if !Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(pid, libc::SIGKILL);
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------------------
// Shell helpers.

fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// Run a command; Err with its stderr if it fails.
fn sh(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn sh_quiet(args: &[&str]) {
    let _ = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn tool_works(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// What is missing to run the demo with `backend`, as human lines.
fn preflight(backend: DemoBackend) -> Vec<String> {
    let mut missing = Vec::new();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        missing.push("root (the demo creates network namespaces): run it with sudo".to_string());
    }
    let mut pkgs = Vec::new();
    if !tool_works(&["ip", "-V"]) {
        pkgs.push("iproute2");
    }
    if !tool_works(&["ping", "-V"]) {
        pkgs.push("iputils-ping");
    }
    if !tool_works(&[python(), "-c", "import socket, selectors"]) {
        pkgs.push("python3");
    }
    if backend.uses_veth() && !tool_works(&["ethtool", "--version"]) {
        pkgs.push("ethtool");
    }
    if !pkgs.is_empty() {
        missing.push(format!(
            "tools: apt-get install -y {} (Debian package names)",
            pkgs.join(" ")
        ));
    }
    missing
}

fn demo_namespaces() -> Vec<String> {
    sh(&["ip", "netns", "list"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(NS_PREFIX))
        .map(str::to_string)
        .collect()
}

/// Where the demo keeps its config, the switch's log and the state file: `/run` (only
/// root can write there, and the demo runs as root) or, without it, the temp directory.
fn state_dir() -> PathBuf {
    let run = Path::new("/run");
    if run.is_dir() {
        run.join("sgswitch-demo")
    } else {
        std::env::temp_dir().join("sgswitch-demo")
    }
}

// ---------------------------------------------------------------------------------------
// The lab: everything the demo created, torn down on drop unless kept.

struct Lab {
    backend: DemoBackend,
    dir: PathBuf,
    netns: Vec<String>,
    links: Vec<String>,
    servers: Vec<Child>,
    switch: Option<Child>,
    log: PathBuf,
    keep: bool,
}

impl Lab {
    fn new(backend: DemoBackend) -> Result<Lab, String> {
        let dir = state_dir();
        // A leftover directory (a demo killed before --clean) is replaced; a symlink is
        // never followed.
        if std::fs::symlink_metadata(&dir).is_ok() {
            let _ = std::fs::remove_file(&dir);
            let _ = std::fs::remove_dir_all(&dir);
        }
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        let lab = Lab {
            backend,
            log: dir.join("switch.log"),
            dir,
            netns: Vec::new(),
            links: Vec::new(),
            servers: Vec::new(),
            switch: None,
            keep: false,
        };
        lab.save_state();
        Ok(lab)
    }

    /// Record what exists (or is about to) so that `--clean` can remove it.
    fn save_state(&self) {
        let mut s = String::new();
        let _ = writeln!(s, "backend {}", self.backend.as_str());
        if let Some(c) = &self.switch {
            let _ = writeln!(s, "switch {}", c.id());
        }
        for c in &self.servers {
            let _ = writeln!(s, "server {}", c.id());
        }
        for n in &self.netns {
            let _ = writeln!(s, "netns {n}");
        }
        for l in &self.links {
            let _ = writeln!(s, "link {l}");
        }
        let _ = std::fs::write(self.dir.join("state"), s);
    }

    fn add_netns(&mut self, name: &str) -> Result<(), String> {
        self.netns.push(name.to_string());
        self.save_state();
        sh(&["ip", "netns", "add", name])?;
        sh(&["ip", "-n", name, "link", "set", "lo", "up"])?;
        Ok(())
    }

    /// A veth pair: `link` in the root namespace, `eth0` in `inst.ns`.
    fn add_veth(&mut self, inst: &Instance) -> Result<(), String> {
        self.links.push(inst.link.to_string());
        self.save_state();
        sh(&[
            "ip", "link", "add", inst.link, "type", "veth", "peer", "name", "eth0", "netns",
            inst.ns,
        ])?;
        // The host must stay silent on the switch's side (no IPv6 link-local, no RS/MLD).
        let _ = std::fs::write(
            format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", inst.link),
            "1",
        );
        sh(&["ip", "link", "set", inst.link, "up"])?;
        sh(&[
            "ip", "netns", "exec", inst.ns, "ethtool", "-K", "eth0", "tx", "off",
        ])?;
        Ok(())
    }

    /// Give the instance's interface (inside its namespace) its MAC and addresses.
    fn configure_instance(&self, inst: &Instance) -> Result<(), String> {
        let ifname = self.instance_ifname(inst);
        let ns = inst.ns;
        // Down first: the IPv6 link-local address is derived from the MAC when the link
        // comes up, and must be derived from the port's MAC (anti-spoofing allows that one).
        sh(&["ip", "-n", ns, "link", "set", ifname, "down"])?;
        sh(&["ip", "-n", ns, "link", "set", ifname, "address", inst.mac])?;
        sh(&["ip", "-n", ns, "link", "set", ifname, "up"])?;
        let v4 = format!("{}/24", inst.v4);
        sh(&["ip", "-n", ns, "addr", "add", &v4, "dev", ifname])?;
        let v6 = format!("{}/64", inst.v6);
        sh(&[
            "ip", "-n", ns, "-6", "addr", "add", &v6, "dev", ifname, "nodad",
        ])?;
        Ok(())
    }

    fn instance_ifname(&self, inst: &Instance) -> &'static str {
        if self.backend.uses_veth() {
            "eth0"
        } else {
            inst.link
        }
    }

    fn start_switch(&mut self, config: &Path) -> Result<(), String> {
        let exe = std::env::current_exe().map_err(|e| format!("current executable: {e}"))?;
        let log =
            std::fs::File::create(&self.log).map_err(|e| format!("{}: {e}", self.log.display()))?;
        let child = Command::new(exe)
            .arg("run")
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            // Its own process group: a terminal Ctrl-C reaches the demo, which then stops
            // the switch in order (and --keep leaves it running after the demo exits).
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start the switch: {e}"))?;
        self.switch = Some(child);
        self.save_state();
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if text.contains("sgswitch: ready") {
                return Ok(());
            }
            if let Some(c) = self.switch.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    self.switch = None;
                    return Err(format!(
                        "the switch exited ({status}) before it was ready:\n{}",
                        indent(&text)
                    ));
                }
            }
            if interrupted() {
                return Err("interrupted".to_string());
            }
            if Instant::now() > end {
                return Err(format!(
                    "the switch did not print `sgswitch: ready` within 20 s:\n{}",
                    indent(&text)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn switch_pid(&self) -> Option<u32> {
        self.switch.as_ref().map(Child::id)
    }

    /// Start the echo server in `inst`'s namespace and wait until it listens.
    fn start_server(&mut self, inst: &Instance) -> Result<(), String> {
        let tcp: Vec<String> = TCP_PORTS.iter().map(u16::to_string).collect();
        let udp: Vec<String> = UDP_PORTS.iter().map(u16::to_string).collect();
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                inst.ns,
                python(),
                "-c",
                SERVER_PY,
                inst.port,
            ])
            .arg(tcp.join(","))
            .arg(udp.join(","))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start the server in {}: {e}", inst.ns))?;
        let out = child.stdout.take();
        self.servers.push(child);
        self.save_state();
        let mut line = String::new();
        if let Some(out) = out {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        if line.trim() != "ready" {
            return Err(format!("the echo server in {} did not start", inst.ns));
        }
        Ok(())
    }

    /// Tear everything down (idempotent).
    fn teardown(&mut self) {
        if let Some(mut c) = self.switch.take() {
            signal(c.id(), libc::SIGTERM);
            let end = Instant::now() + Duration::from_secs(5);
            while Instant::now() < end {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        for mut c in self.servers.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in self.netns.drain(..) {
            kill_netns_pids(&ns);
            sh_quiet(&["ip", "netns", "del", &ns]);
        }
        for l in self.links.drain(..) {
            if Path::new(&format!("/sys/class/net/{l}")).exists() {
                sh_quiet(&["ip", "link", "del", &l]);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.keep {
            self.teardown();
        }
    }
}

/// Kill the processes left in a demo namespace (by the ids `ip netns pids` lists).
fn kill_netns_pids(ns: &str) {
    for pid in sh(&["ip", "netns", "pids", ns])
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse::<u32>().ok())
    {
        signal(pid, libc::SIGKILL);
    }
}

fn indent(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(30)..];
    tail.iter().map(|l| format!("    {l}\n")).collect()
}

// ---------------------------------------------------------------------------------------
// Traffic.

/// Echo server: argv = name, tcp ports, udp ports (comma-separated). Dual-stack sockets.
const SERVER_PY: &str = r#"
import selectors, socket, sys
name = sys.argv[1].encode()
sel = selectors.DefaultSelector()
def listen(kind, port):
    s = socket.socket(socket.AF_INET6, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    if kind == socket.SOCK_STREAM:
        s.listen(64)
    sel.register(s, selectors.EVENT_READ, kind)
for p in filter(None, sys.argv[2].split(",")):
    listen(socket.SOCK_STREAM, int(p))
for p in filter(None, sys.argv[3].split(",")):
    listen(socket.SOCK_DGRAM, int(p))
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        s = key.fileobj
        try:
            if key.data == "conn":
                d = s.recv(4096)
                if d:
                    s.sendall(b"ok " + name + b" " + d)
                else:
                    sel.unregister(s)
                    s.close()
            elif key.data == socket.SOCK_STREAM:
                c, _ = s.accept()
                c.settimeout(2)
                sel.register(c, selectors.EVENT_READ, "conn")
            else:
                d, a = s.recvfrom(4096)
                s.sendto(b"ok " + name + b" " + d, a)
        except OSError:
            try:
                sel.unregister(s)
                s.close()
            except Exception:
                pass
"#;

/// Client: argv = tcp|udp, address, port, timeout. Prints PASS, TIMEOUT, REFUSED or ERROR.
const CLIENT_PY: &str = r#"
import socket, sys
kind, host, port, t = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
try:
    if kind == "tcp":
        s = socket.create_connection((host, port), timeout=t)
        s.sendall(b"hello\n")
    else:
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.settimeout(t)
        s.sendto(b"hello\n", (host, port))
    d = s.recv(4096)
    print("PASS" if d else "CLOSED")
except socket.timeout:
    print("TIMEOUT")
except ConnectionRefusedError:
    print("REFUSED")
except OSError as e:
    print("ERROR", e.strerror or e)
"#;

/// What a probe saw.
struct Observed {
    passed: bool,
    detail: String,
}

fn run_probe(case: &Case) -> Observed {
    let from = &INSTANCES[case.from];
    let dst = case.dst();
    match case.probe {
        Probe::Ping => {
            let w = PROBE_SECS.to_string();
            let mut args = vec![
                "ip", "netns", "exec", from.ns, "ping", "-n", "-c", "1", "-i", "0.5", "-w", &w,
            ];
            if case.v6 {
                args.push("-6");
            }
            if let Some(src) = case.forged_src {
                args.extend(["-I", src]);
            }
            args.push(dst);
            let ok = tool_works(&args);
            Observed {
                passed: ok,
                detail: if ok { "reply" } else { "no reply" }.to_string(),
            }
        }
        Probe::Tcp(port) | Probe::Udp(port) => {
            let kind = if matches!(case.probe, Probe::Tcp(_)) {
                "tcp"
            } else {
                "udp"
            };
            let port = port.to_string();
            let t = PROBE_SECS.to_string();
            let out = sh(&[
                "ip",
                "netns",
                "exec",
                from.ns,
                python(),
                "-c",
                CLIENT_PY,
                kind,
                dst,
                &port,
                &t,
            ])
            .unwrap_or_else(|e| format!("ERROR {e}"));
            let out = out.trim();
            Observed {
                // A refusal (RST / port unreachable) came back through the switch.
                passed: out == "PASS" || out == "REFUSED",
                detail: match out {
                    "PASS" => "answered".to_string(),
                    "REFUSED" => "refused".to_string(),
                    "TIMEOUT" => "timed out".to_string(),
                    o => o.to_lowercase(),
                },
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Counters.

/// Drop counters by (port, reason) from a counter dump, whatever its layout: a line that
/// names a port sets the port context for the reasons that follow on it or on later lines;
/// a reason name followed by a number adds that number. Per-worker and per-port dumps of
/// the same counter add up, which is harmless: only differences between dumps are used.
fn parse_drop_counters(text: &str, ports: &[&str]) -> BTreeMap<(String, &'static str), u64> {
    let mut m = BTreeMap::new();
    let mut port = String::from("?");
    for line in text.lines() {
        let toks: Vec<&str> = line
            .split(|c: char| c.is_whitespace() || ",;:={}()[]\"'|".contains(c))
            .filter(|t| !t.is_empty())
            .collect();
        let mut i = 0;
        while i < toks.len() {
            let t = toks[i];
            if let Some(p) = ports.iter().find(|p| **p == t) {
                port = (*p).to_string();
            } else if let Some(r) = DropReason::ALL.iter().find(|r| r.as_str() == t) {
                if let Some(n) = toks.get(i + 1).and_then(|n| n.parse::<u64>().ok()) {
                    *m.entry((port.clone(), r.as_str())).or_insert(0) += n;
                    i += 1;
                }
            }
            i += 1;
        }
    }
    m
}

/// Reads the switch's log: the text appended since the last call.
struct LogTail {
    path: PathBuf,
    offset: u64,
}

impl LogTail {
    fn new(path: &Path) -> LogTail {
        let offset = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        LogTail {
            path: path.to_path_buf(),
            offset,
        }
    }

    fn read_new(&mut self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.path) {
            if f.seek(SeekFrom::Start(self.offset)).is_ok() {
                let mut buf = Vec::new();
                if f.read_to_end(&mut buf).is_ok() {
                    self.offset += buf.len() as u64;
                    s = String::from_utf8_lossy(&buf).into_owned();
                }
            }
        }
        s
    }

    /// Send SIGUSR1 to the switch and return the dump it prints (the text appended until
    /// the log has been quiet for 150 ms, at most 2 s).
    fn dump(&mut self, pid: u32) -> String {
        let _ = self.read_new();
        if !signal(pid, libc::SIGUSR1) {
            return String::new();
        }
        let mut text = String::new();
        let end = Instant::now() + Duration::from_secs(2);
        let mut quiet_since = Instant::now();
        while Instant::now() < end {
            std::thread::sleep(Duration::from_millis(30));
            let more = self.read_new();
            if more.is_empty() {
                if !text.is_empty() && quiet_since.elapsed() > Duration::from_millis(150) {
                    break;
                }
            } else {
                text.push_str(&more);
                quiet_since = Instant::now();
            }
        }
        text
    }
}

/// Reasons that grew between two dumps, preferring the ports of the probe.
fn explain(
    before: &BTreeMap<(String, &'static str), u64>,
    after: &BTreeMap<(String, &'static str), u64>,
    ports: &[&str],
) -> String {
    let mut grew: Vec<(String, &'static str, u64)> = after
        .iter()
        .filter_map(|((p, r), n)| {
            let old = before.get(&(p.clone(), *r)).copied().unwrap_or(0);
            (*n > old).then(|| (p.clone(), *r, n - old))
        })
        .collect();
    if grew.iter().any(|(p, _, _)| ports.contains(&p.as_str())) {
        grew.retain(|(p, _, _)| ports.contains(&p.as_str()));
    }
    grew.iter()
        .map(|(p, r, n)| {
            if p == "?" {
                format!("{r} x{n}")
            } else {
                format!("{r} x{n} on {p}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------------------------------
// The command.

/// Run `sgswitch demo`.
pub fn run(args: &DemoArgs) -> ExitCode {
    if args.clean {
        return clean();
    }
    let missing = preflight(args.backend);
    if !missing.is_empty() {
        eprintln!("sgswitch demo: cannot run here; it needs:");
        for m in missing {
            eprintln!("  - {m}");
        }
        return ExitCode::from(1);
    }
    let running = demo_namespaces();
    if !running.is_empty() {
        eprintln!(
            "sgswitch demo: a demo is already set up ({}); remove it with `sgswitch demo --clean`",
            running.join(", ")
        );
        return ExitCode::from(1);
    }
    install_signal_handlers();
    let mut lab = match Lab::new(args.backend) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("sgswitch demo: {e}");
            return ExitCode::from(1);
        }
    };
    let result = drive(&mut lab, args);
    let code = match result {
        Ok(all_as_expected) => {
            if args.keep {
                lab.keep = true;
                print_keep_help(&lab);
            }
            if all_as_expected {
                0
            } else {
                1
            }
        }
        Err(e) => {
            if interrupted() {
                eprintln!("sgswitch demo: interrupted; cleaning up");
                130
            } else {
                eprintln!("sgswitch demo: {e}");
                1
            }
        }
    };
    if !lab.keep {
        lab.teardown();
        println!("\nremoved the namespaces, links and processes the demo created");
    }
    ExitCode::from(code)
}

fn check_interrupt() -> Result<(), String> {
    if interrupted() {
        Err("interrupted".to_string())
    } else {
        Ok(())
    }
}

/// Build, run and report; Ok(true) if every observation matched its expectation.
fn drive(lab: &mut Lab, args: &DemoArgs) -> Result<bool, String> {
    let backend = args.backend;
    println!(
        "sgswitch demo: 4 instances in network namespaces, backend {}",
        backend.as_str()
    );
    for inst in &INSTANCES {
        lab.add_netns(inst.ns)?;
        check_interrupt()?;
    }
    if backend.uses_veth() {
        for inst in &INSTANCES {
            lab.add_veth(inst)?;
            lab.configure_instance(inst)?;
            check_interrupt()?;
        }
    }
    let text = config_text(backend);
    let config = lab.dir.join("demo.toml");
    if let Err(e) = sgswitch::control::config::parse_str(&text, &config.display().to_string()) {
        return Err(format!("internal error: the demo config is invalid:\n{e}"));
    }
    std::fs::write(&config, &text).map_err(|e| format!("{}: {e}", config.display()))?;
    println!("config: {}", config.display());
    println!("starting: {} run --config {}", exe_name(), config.display());
    lab.start_switch(&config)?;
    if !backend.uses_veth() {
        // The switch created the taps and moved them into the namespaces.
        for inst in &INSTANCES {
            lab.configure_instance(inst)?;
        }
    }
    for inst in &INSTANCES {
        lab.start_server(inst)?;
        check_interrupt()?;
    }
    println!(
        "switch ready (pid {}); each instance runs an echo server on tcp {:?} and udp {:?}\n",
        lab.switch_pid().unwrap_or(0),
        TCP_PORTS,
        UDP_PORTS
    );

    let ports: Vec<&str> = INSTANCES.iter().map(|i| i.port).collect();
    let pid = lab.switch_pid().ok_or("the switch is not running")?;
    let mut tail = LogTail::new(&lab.log);
    let mut before = parse_drop_counters(&tail.dump(pid), &ports);
    let mut rows = Vec::new();
    let mut all_ok = true;
    for case in &CASES {
        check_interrupt()?;
        let from = &INSTANCES[case.from];
        let to = &INSTANCES[case.to];
        if let Some(src) = case.forged_src {
            let a = format!("{src}/32");
            sh(&[
                "ip",
                "-n",
                from.ns,
                "addr",
                "add",
                &a,
                "dev",
                lab.instance_ifname(from),
            ])?;
        }
        let obs = run_probe(case);
        if let Some(src) = case.forged_src {
            let a = format!("{src}/32");
            sh_quiet(&[
                "ip",
                "-n",
                from.ns,
                "addr",
                "del",
                &a,
                "dev",
                lab.instance_ifname(from),
            ]);
        }
        check_interrupt()?;
        let after = parse_drop_counters(&tail.dump(pid), &ports);
        let drops = explain(&before, &after, &[from.port, to.port]);
        before = after;
        let ok = obs.passed == case.expect_pass;
        all_ok &= ok;
        let why = if obs.passed {
            case.rule.to_string()
        } else if drops.is_empty() {
            format!("{} ({})", case.rule, obs.detail)
        } else {
            format!("{}: {drops}", case.rule)
        };
        rows.push([
            case.title(),
            format!("{} -> {} {}", from.port, to.port, case.dst()),
            if case.expect_pass { "pass" } else { "block" }.to_string(),
            format!(
                "{}{}",
                if obs.passed {
                    "PASSED THROUGH"
                } else {
                    "BLOCKED"
                },
                if ok { "" } else { "  <-- UNEXPECTED" }
            ),
            why,
        ]);
        // Print as we go: a slow probe is visible, and Ctrl-C keeps what was seen.
        print_row(
            rows.last().map(|r| r.as_slice()).unwrap_or(&[]),
            rows.len() == 1,
        );
    }
    let failed = rows.iter().filter(|r| r[3].contains("UNEXPECTED")).count();
    println!();
    if failed == 0 {
        println!(
            "all {} observations match the security groups (backend {})",
            rows.len(),
            backend.as_str()
        );
    } else {
        println!(
            "{failed} of {} observations differ from the expectation (backend {})",
            rows.len(),
            backend.as_str()
        );
        println!("switch log: {}", lab.log.display());
        if let Ok(log) = std::fs::read_to_string(&lab.log) {
            print!("{}", indent(&log));
        }
    }
    Ok(all_ok)
}

const WIDTHS: [usize; 4] = [22, 31, 8, 14];

fn print_row(cells: &[String], header: bool) {
    if header {
        let h = ["test", "from -> to", "expected", "observed", "why"];
        let mut line = String::new();
        for (i, w) in WIDTHS.iter().enumerate() {
            let _ = write!(line, "{:w$}  ", h[i]);
        }
        line.push_str(h[4]);
        println!("{line}");
        println!("{}", "-".repeat(line.len() + 40));
    }
    let mut line = String::new();
    for (i, c) in cells.iter().enumerate() {
        match WIDTHS.get(i) {
            Some(w) => {
                let _ = write!(line, "{c:w$}  ");
            }
            None => line.push_str(c),
        }
    }
    println!("{}", line.trim_end());
}

fn exe_name() -> String {
    std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "sgswitch".to_string())
}

fn print_keep_help(lab: &Lab) {
    let (w1, w2, db, rtr) = (
        &INSTANCES[WEB1],
        &INSTANCES[WEB2],
        &INSTANCES[DB],
        &INSTANCES[RTR],
    );
    let pid = lab.switch_pid().unwrap_or(0);
    println!(
        "\nthe demo is still running (--keep): switch pid {pid}, log {}",
        lab.log.display()
    );
    println!("try traffic by hand:");
    let tries = [
        (
            format!("ip netns exec {} ping -c 3 {}", w1.ns, db.v4),
            "web-1 -> db: blocked, db has no icmp rule",
        ),
        (
            format!("ip netns exec {} ping -6 -c 3 {}", w1.ns, w2.v6),
            "web-1 -> web-2: passes (default group)",
        ),
        (
            format!(
                "ip netns exec {} bash -c 'echo > /dev/tcp/{}/5432' && echo open",
                w1.ns, db.v4
            ),
            "passes: web-1 is in web",
        ),
        (
            format!(
                "ip netns exec {} timeout 3 bash -c 'echo > /dev/tcp/{}/5432' || echo blocked",
                rtr.ns, db.v4
            ),
            "blocked: the router is not in web",
        ),
        (
            format!("ip netns exec {} bash", w1.ns),
            "a shell inside web-1 (echo servers on tcp 22, 80, 5432 and udp 53, 5000)",
        ),
    ];
    for (cmd, what) in &tries {
        println!("  # {what}\n  {cmd}");
    }
    println!("counters:   kill -USR1 {pid}; tail {}", lab.log.display());
    println!(
        "new policy: edit {} then kill -HUP {pid}",
        lab.dir.join("demo.toml").display()
    );
    println!("stop and remove everything: sgswitch demo --clean");
}

/// `sgswitch demo --clean`: remove whatever a previous demo left.
fn clean() -> ExitCode {
    let dir = state_dir();
    let state = std::fs::read_to_string(dir.join("state")).unwrap_or_default();
    let mut removed = 0usize;
    let mut netns: Vec<String> = demo_namespaces();
    let mut links: Vec<String> = INSTANCES.iter().map(|i| i.link.to_string()).collect();
    for line in state.lines() {
        let (what, val) = line.split_once(' ').unwrap_or((line, ""));
        match what {
            "switch" => {
                if let Ok(pid) = val.parse::<u32>() {
                    if cmdline(pid).is_some_and(|c| c.contains(" run --config")) {
                        stop_pid(pid, " run --config", Duration::from_secs(5));
                        println!("stopped the switch (pid {pid})");
                        removed += 1;
                    }
                }
            }
            "server" => {
                if let Ok(pid) = val.parse::<u32>() {
                    if cmdline(pid).is_some_and(|c| c.contains("python")) {
                        stop_pid(pid, "python", Duration::from_millis(500));
                        removed += 1;
                    }
                }
            }
            "netns" if val.starts_with(NS_PREFIX) && !netns.iter().any(|n| n == val) => {
                netns.push(val.to_string())
            }
            "link" if val.starts_with("sgsd-") && !links.iter().any(|n| n == val) => {
                links.push(val.to_string())
            }
            _ => {}
        }
    }
    for ns in &netns {
        if sh(&["ip", "netns", "pids", ns]).is_ok() {
            kill_netns_pids(ns);
            sh_quiet(&["ip", "netns", "del", ns]);
            println!("removed namespace {ns}");
            removed += 1;
        }
    }
    for l in &links {
        if Path::new(&format!("/sys/class/net/{l}")).exists() {
            sh_quiet(&["ip", "link", "del", l]);
            println!("removed link {l}");
            removed += 1;
        }
    }
    if dir.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        removed += 1;
    }
    if removed == 0 {
        println!("nothing to clean: no demo is set up");
    } else {
        println!("the demo is removed");
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_config_is_valid_for_every_backend() {
        for b in [DemoBackend::Tap, DemoBackend::Afxdp, DemoBackend::Afpacket] {
            let c = sgswitch::control::config::parse_str(&config_text(b), "demo.toml")
                .unwrap_or_else(|e| panic!("{b:?}: {e}"));
            assert_eq!(c.model.ports.len(), 4);
            let rtr = c.model.ports.iter().find(|p| p.name == "router").unwrap();
            assert!(!rtr.port_security);
            let db = c.model.ports.iter().find(|p| p.name == "db").unwrap();
            assert_eq!(db.security_groups, vec!["db".to_string()]);
            for p in &c.model.ports {
                assert!(p.backend.is_some(), "{b:?}: {} has no backend", p.name);
                assert_eq!(p.fixed_ips.len(), 2);
            }
            if b == DemoBackend::Tap {
                assert!(matches!(
                    &db.backend,
                    Some(sgswitch::policy::Backend::Tap { netns: Some(n), vnet_hdr: true, .. }) if n == "sgs-demo-db"
                ));
            }
        }
    }

    #[test]
    fn names_fit_the_kernel_limits() {
        for i in &INSTANCES {
            assert!(i.link.len() <= 15, "{}", i.link);
            assert!(i.ns.starts_with(NS_PREFIX));
            assert!(i.link.starts_with("sgsd-"));
        }
    }

    #[test]
    fn every_case_is_consistent() {
        for c in &CASES {
            assert_ne!(c.from, c.to);
            assert!(c.from < INSTANCES.len() && c.to < INSTANCES.len());
            assert!(!c.rule.is_empty());
        }
        // Both outcomes are shown.
        assert!(CASES.iter().any(|c| c.expect_pass));
        assert!(CASES.iter().any(|c| !c.expect_pass));
    }

    #[test]
    fn counters_parse_from_several_layouts() {
        let ports = ["web-1", "db"];
        let a = "counters:\n port db: rx 10 tx 3\n   ingress-denied 4\n   egress-denied=2\n\
                 port web-1 rx=5 tx=5 spoofed-ip=1\n";
        let m = parse_drop_counters(a, &ports);
        assert_eq!(m.get(&("db".to_string(), "ingress-denied")), Some(&4));
        assert_eq!(m.get(&("db".to_string(), "egress-denied")), Some(&2));
        assert_eq!(m.get(&("web-1".to_string(), "spoofed-ip")), Some(&1));
        let b = "sgswitch: counters port=db dropped{ingress-denied: 7, invalid-state: 1}";
        let m = parse_drop_counters(b, &ports);
        assert_eq!(m.get(&("db".to_string(), "ingress-denied")), Some(&7));
        assert_eq!(m.get(&("db".to_string(), "invalid-state")), Some(&1));
        // A reason without a number is ignored, never a panic.
        assert!(parse_drop_counters("ingress-denied", &ports).is_empty());
    }

    #[test]
    fn explain_prefers_the_probe_ports() {
        let ports = ["web-1", "db", "router"];
        let before = parse_drop_counters(
            "port db ingress-denied 1\nport router egress-denied 1",
            &ports,
        );
        let after = parse_drop_counters(
            "port db ingress-denied 3\nport router egress-denied 5\nport web-1 spoofed-ip 0",
            &ports,
        );
        assert_eq!(
            explain(&before, &after, &["web-1", "db"]),
            "ingress-denied x2 on db"
        );
        assert_eq!(
            explain(&before, &after, &["web-1"]),
            "ingress-denied x2 on db, egress-denied x4 on router"
        );
        assert_eq!(explain(&after, &after, &["db"]), "");
    }

    #[test]
    fn case_titles_are_readable() {
        assert_eq!(CASES[0].title(), "ping");
        assert_eq!(CASES[1].title(), "ping -6");
        assert_eq!(CASES[7].title(), "tcp/5432 v6");
        assert_eq!(CASES[12].title(), "ping from 10.0.0.99");
        assert_eq!(CASES[7].dst(), "fd00::13");
    }
}
