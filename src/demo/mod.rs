//! `sgswitch demo`: a live tour of the switch on network namespaces.
//!
//! # What it does
//! 1. Checks that it can run (root, `ip`, `ping`, `python3`, and `ethtool` for veth
//!    backends), takes the demo lock (`lock`: one demo at a time; a second one is refused
//!    with the first one's pid) and checks that no demo is left set up by `--keep`.
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
//!    try by hand; `sgswitch demo --clean` removes it later: only what the state file
//!    records (`--clean --all`: also any `sgs-demo-*` namespace and `sgsd-*` link), and
//!    never while a demo runs (it takes the lock too).
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
//! # Layout
//! The namespaces, links, the switch process, the probes and the counter parser are the
//! library's namespace lab ([`sgswitch::lab`], shared with the live tests); this module
//! owns the scenario ([`scenario`]: instances, config, cases), running it ([`drive`]: the
//! demo's own resources and its state file), the table ([`output`]) and `--clean`
//! ([`clean`]). It uses the library only through the lab, the config validator and the
//! drop reason names.
//!
//! # Invariants
//! * Every resource the demo creates is recorded in the state file *before* it is created,
//!   so `--clean` can remove it even if the demo was killed with SIGKILL; all names carry
//!   the fixed prefixes `sgs-demo-` (namespaces) and `sgsd-` (links); the lock (`lock`)
//!   makes a second demo, or a `--clean`, refuse while one runs, naming its pid, instead
//!   of trampling it.
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

mod clean;
mod drive;
mod lock;
mod output;
mod scenario;
#[cfg(test)]
mod tests;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use sgswitch::lab::topo::Backend;

/// `sgswitch demo --help`.
pub const LONG_ABOUT: &str = "Build a small network of instances in network namespaces \
(web-1 and web-2 in the groups default and web, db in the group db that allows PostgreSQL only \
from members of web, and a router port without port security; IPv4 and IPv6), run \
`sgswitch run` on them, send real traffic (ping, ping -6, TCP, UDP, a forged source address) \
and print what passed, what was blocked and why.\n\n\
Needs root, iproute2, iputils-ping, python3 (and ethtool for --backend afxdp|afpacket). \
Everything it creates (namespaces sgs-demo-*, links sgsd-*, the switch, the echo servers) is \
removed at the end, also on Ctrl-C. --keep leaves it running for you to try by hand; \
`sgswitch demo --clean` removes it. One demo runs at a time: a second one (or --clean) is \
refused while the first runs, with its pid.\n\n\
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

/// Arguments of `sgswitch demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Leave the namespaces and the switch running and print commands to try by hand
    #[arg(long, conflicts_with = "clean")]
    pub keep: bool,
    /// Remove the demo left set up (by --keep, or by a crash): what its state file
    /// records; refused while a demo runs
    #[arg(long)]
    pub clean: bool,
    /// With --clean: also every namespace sgs-demo-* and link sgsd-* found, recorded or not
    #[arg(long, requires = "clean")]
    pub all: bool,
    /// How the instances are attached to the switch
    #[arg(long, value_enum, default_value_t = DemoBackend::Tap)]
    pub backend: DemoBackend,
}

impl DemoBackend {
    fn as_str(self) -> &'static str {
        match self {
            DemoBackend::Tap => "tap",
            DemoBackend::Afxdp => "afxdp",
            DemoBackend::Afpacket => "afpacket",
        }
    }

    /// The lab's name for it.
    fn lab(self) -> Backend {
        match self {
            DemoBackend::Tap => Backend::Tap,
            DemoBackend::Afxdp => Backend::AfXdp,
            DemoBackend::Afpacket => Backend::AfPacket,
        }
    }

    fn uses_veth(self) -> bool {
        self.lab().uses_veth()
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

fn check_interrupt() -> Result<(), String> {
    if interrupted() {
        Err("interrupted".to_string())
    } else {
        Ok(())
    }
}

/// What is missing to run the demo with `backend`, as human lines.
fn preflight(backend: DemoBackend) -> Vec<String> {
    let mut missing = Vec::new();
    if !sgswitch::lab::cmd::is_root() {
        missing.push("root (the demo creates network namespaces): run it with sudo".to_string());
    }
    let pkgs: Vec<&str> = sgswitch::lab::cmd::missing_tools(backend.uses_veth())
        .iter()
        .map(|t| t.package)
        .collect();
    if !pkgs.is_empty() {
        missing.push(format!(
            "tools: apt-get install -y {} (Debian package names)",
            pkgs.join(" ")
        ));
    }
    missing
}

// ---------------------------------------------------------------------------------------
// The command.

/// Run `sgswitch demo`.
pub fn run(args: &DemoArgs) -> ExitCode {
    if args.clean {
        // Held until the cleaning is done: no demo starts meanwhile.
        return match lock::take("`sgswitch demo --clean`") {
            Ok(_lock) => clean::clean(args.all),
            Err(e) => {
                eprintln!("sgswitch demo: {e}");
                ExitCode::from(1)
            }
        };
    }
    let missing = preflight(args.backend);
    if !missing.is_empty() {
        eprintln!("sgswitch demo: cannot run here; it needs:");
        for m in missing {
            eprintln!("  - {m}");
        }
        return ExitCode::from(1);
    }
    // Held for the whole run (released when this process ends, even on SIGKILL).
    let _lock = match lock::take("a second demo") {
        Ok(l) => l,
        Err(e) => {
            eprintln!("sgswitch demo: {e}");
            return ExitCode::from(1);
        }
    };
    let running = clean::demo_namespaces();
    if !running.is_empty() {
        let (by, how) = match clean::recorded_demo_pid() {
            Some(pid) => (
                format!("; left by demo pid {pid}, which has exited"),
                "--clean",
            ),
            None => (", not recorded by a demo".to_string(), "--clean --all"),
        };
        eprintln!(
            "sgswitch demo: a demo is already set up ({}{by}); remove it with `sgswitch demo {how}`",
            running.join(", ")
        );
        return ExitCode::from(1);
    }
    install_signal_handlers();
    let mut lab = match drive::Lab::new(args.backend) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("sgswitch demo: {e}");
            return ExitCode::from(1);
        }
    };
    let result = drive::drive(&mut lab, args);
    let mut keep = false;
    let code = match result {
        Ok(all_as_expected) => {
            if args.keep {
                keep = true;
                output::print_keep_help(&lab);
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
    if keep {
        lab.keep();
    } else {
        drop(lab);
        println!("\nremoved the namespaces, links and processes the demo created");
    }
    ExitCode::from(code)
}
