//! Shared helpers for the live tests that run `sgswitch run` between network namespaces.
//!
//! The namespaces, links, instances, the switch process, ping, the one-shot probes and
//! the echo server are the library's namespace lab (`sgswitch::lab`, shared with
//! `sgswitch demo`); this module gives them to the tests the way tests want them: a
//! failure panics with the command and what it said, instead of returning an error.
//! What only the tests need lives here: skipping or failing when the environment cannot
//! run a test ([`env_ready`]), more traffic helpers (`traffic`), tcpdump captures and
//! frame summaries (`capture`), what the whole-switch suites share (`live`), and the
//! `sgswitch api --store` server of the multi-host tests (`store_api`).
//!
//! # Rules every helper follows
//! * **Unique names.** Namespaces are `sgs-e2e-PID-TAG-I`, links `sPIDTAGI` (at most 15
//!   bytes, the kernel's limit): tests of one run, and concurrent runs, never collide.
//! * **Always cleaned up.** Every namespace, link, process and temp directory is owned by a
//!   guard whose `Drop` removes it, so a failing assertion (a panic) still cleans up. Locals
//!   drop in reverse order of declaration: create the topology first, then the switch, then
//!   the traffic processes, and they go away in the right order.
//! * **Skip visibly or fail loudly.** Without root or a needed tool a test reports
//!   `SKIPPED test: reason` in `cargo test`'s output (not hidden behind `--nocapture`) and
//!   passes, and the binary's summary names every skipped test (`skip`); under `CI=true`
//!   it fails instead, so CI cannot go green by skipping.
//! * **Processes are signalled by their id only** (the `Child` we spawned, or the ids
//!   `ip netns pids` lists for a namespace this process created).
//!
//! Tools: `ip` (iproute2), `ping` (iputils-ping), `ethtool` (veth backends), `python3`
//! (Debian's `/usr/bin/python3` when present) for TCP/UDP clients and servers.

// Each test binary uses a part of the helpers.
#![allow(dead_code, unused_imports)]

mod capture;
mod live;
mod skip;
mod stats;
mod store_api;
mod traffic;

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sgswitch::lab;
use sgswitch::lab::probe::{EchoServer, ECHO, ECHO_PROBE};
use sgswitch::lab::switch::{Drops, Launch};

pub use capture::*;
pub use live::*;
pub use sgswitch::lab::cmd::{python, sh_quiet};
pub use sgswitch::lab::netns::{link_name, netns_name, Link, Netns};
pub use sgswitch::lab::proc::{signal, Proc};
pub use sgswitch::lab::switch::grew;
pub use sgswitch::lab::topo::{Backend, Instance, TempDir};
pub use skip::{in_ci, skip};
pub use stats::*;
pub use store_api::*;
pub use traffic::*;

/// True if this test can run here (root and the tools); otherwise reports the skip where
/// `cargo test` shows it ([`skip`]) and returns false, or panics under CI.
pub fn env_ready(test: &str, backend: Backend) -> bool {
    env_ready_with(test, backend, &[])
}

/// [`env_ready`], also requiring each of `tools` (checked with `TOOL --version`), e.g.
/// `tcpdump`.
pub fn env_ready_with(test: &str, backend: Backend, tools: &[&str]) -> bool {
    let mut missing: Vec<String> = Vec::new();
    if !lab::cmd::is_root() {
        missing.push("root".to_string());
    }
    missing.extend(
        lab::cmd::missing_tools(backend.uses_veth())
            .into_iter()
            .map(|t| t.describe()),
    );
    for t in tools {
        if !lab::cmd::works(&[t, "--version"]) {
            missing.push(t.to_string());
        }
    }
    if missing.is_empty() {
        return true;
    }
    skip(test, &format!("missing: {}", missing.join(", ")));
    false
}

/// Panic with a lab error the way these helpers always did: the command as a list and
/// its stderr.
fn fail(e: lab::Error) -> ! {
    match e {
        lab::Error::Failed { cmd, stderr } => panic!("{cmd:?} failed: {stderr}"),
        lab::Error::Spawn { cmd, source } => panic!("{cmd:?}: {source}"),
        e => panic!("{e}"),
    }
}

/// Run a command and return its stdout; panic with its stderr if it fails.
pub fn sh(args: &[&str]) -> String {
    lab::cmd::sh(args).unwrap_or_else(|e| fail(e))
}

/// Ping `dst` from `ns` (optionally from source address `src`); true if a reply came
/// within `secs` seconds.
pub fn ping(ns: &Netns, dst: &str, src: Option<&str>, secs: u32) -> bool {
    lab::probe::ping(ns, dst, src, secs, "0.3")
}

/// Start the echo server in `ns` on the given ports (it answers `echo ` and what it got);
/// returns once it listens.
pub fn echo_server(ns: &Netns, tcp: &[u16], udp: &[u16]) -> Proc {
    let server = EchoServer {
        tcp,
        udp,
        reply: ECHO,
        detached: false,
    };
    server.start(ns).unwrap_or_else(|e| match e {
        lab::Error::NotStarted { .. } => panic!("echo server in {} did not start", ns.name),
        e => panic!("start echo server: {e}"),
    })
}

/// Outcome of a one-shot TCP/UDP probe to an [`echo_server`]: `PASS`, `BAD`, `TIMEOUT`,
/// `REFUSED` or `ERROR ...`.
pub fn probe(ns: &Netns, kind: &str, dst: &str, port: u16, secs: u32) -> String {
    lab::probe::probe(ns, kind, dst, port, secs, ECHO_PROBE)
        .unwrap_or_else(|e| panic!("run probe: {e}"))
}

/// The switch's drop reason names.
pub fn reasons() -> Vec<&'static str> {
    sgswitch::flow::DropReason::ALL
        .iter()
        .map(|r| r.as_str())
        .collect()
}

/// Drop counters from a counter dump: lines starting with a port name, then
/// `reason=count` tokens. Later dumps in `text` overwrite earlier ones.
pub fn parse_drops(text: &str, ports: &[&str]) -> Drops {
    lab::switch::parse_drops(text, ports, &reasons())
}

// ---------------------------------------------------------------------------------------
// Topology.

/// Instances in namespaces for one test (the lab's `Topo`, panicking on failure).
/// Instance `i` has MAC `fa:16:3e:00:00:1i`, addresses `10.0.0.1i/24` and `fd00::1i/64`.
pub struct Topo(lab::topo::Topo);

impl Topo {
    pub fn new(tag: &str, backend: Backend, n: usize) -> Topo {
        Topo(lab::topo::Topo::new(tag, backend, n).unwrap_or_else(|e| fail(e)))
    }

    /// Give every instance's interface its MAC and addresses and bring it up. For taps,
    /// call it once the switch is ready (it creates them); veth topologies do it in `new`.
    pub fn configure(&self) {
        self.0.configure().unwrap_or_else(|e| fail(e));
    }

    /// [`Topo::configure`] for instance `i` only (a tap switch may run a subset of them).
    pub fn configure_one(&self, i: usize) {
        self.0.configure_one(i).unwrap_or_else(|e| fail(e));
    }

    /// Write `text` as the config file and return its path.
    pub fn write_config(&self, text: &str) -> PathBuf {
        self.0.write_config(text).unwrap_or_else(|e| fail(e))
    }
}

impl Deref for Topo {
    type Target = lab::topo::Topo;
    fn deref(&self) -> &lab::topo::Topo {
        &self.0
    }
}

// ---------------------------------------------------------------------------------------
// The switch process.

/// `sgswitch run --config FILE`, stderr to a log file; stopped (SIGTERM, then SIGKILL)
/// on drop. The lab's `Switch`, panicking on failure.
pub struct Switch(lab::switch::Switch);

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
        // Tests run in parallel: each switch's API on its own ephemeral port.
        let mut all = vec!["--api", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let mut sw = lab::switch::Switch::spawn(&Launch {
            exe: Path::new(env!("CARGO_BIN_EXE_sgswitch")),
            config,
            log: &log,
            args: &all,
            own_group: false,
        })
        .unwrap_or_else(|e| panic!("spawn sgswitch run: {e}"));
        match sw.wait_ready(Duration::from_secs(20), &|| false) {
            Ok(()) => Switch(sw),
            Err(lab::Error::SwitchExited { status, log }) => {
                panic!("sgswitch run exited ({status}) before ready:\n{log}")
            }
            Err(lab::Error::SwitchNotReady { log, .. }) => {
                panic!("sgswitch run not ready within 20 s:\n{log}")
            }
            Err(e) => panic!("sgswitch run: {e}"),
        }
    }

    /// A client of the switch's API with the token `run` keeps in its default token file
    /// (as `sgswitch stats` and the other client commands find it).
    #[allow(dead_code)]
    pub fn api_client(&self) -> sgswitch::control::http_client::Client {
        let addr = self.0.api_addr().expect("API address in the log");
        let token = sgswitch::control::api::token::client_token(None, None)
            .expect("the API token file")
            .token;
        sgswitch::control::http_client::Client::new(&format!("http://{addr}"), token)
            .expect("API client")
    }

    /// SIGHUP, then wait for `sgswitch: reloaded`; panics with the log if it does not come.
    pub fn reload(&self) {
        match self.0.reload() {
            Ok(()) => {}
            Err(lab::Error::NotReloaded { log }) => {
                panic!("no `sgswitch: reloaded` after SIGHUP:\n{log}")
            }
            Err(e) => panic!("reload: {e}"),
        }
    }

    /// SIGUSR1, and the drop counters of the dump it prints: (port, reason) → count.
    pub fn drops(&self, ports: &[&str]) -> Drops {
        self.0
            .drops(ports, &reasons())
            .unwrap_or_else(|e| panic!("SIGUSR1: {e}"))
    }
}

impl Deref for Switch {
    type Target = lab::switch::Switch;
    fn deref(&self) -> &lab::switch::Switch {
        &self.0
    }
}

impl DerefMut for Switch {
    fn deref_mut(&mut self) -> &mut lab::switch::Switch {
        &mut self.0
    }
}
