//! Running the demo: the resources it creates (through the library's namespace lab) and
//! the state file that records them for `--clean`, then the probes of every case and the
//! counters that explain them.
//!
//! Owns the demo's order of things (record, create, start, probe, tear down); how a
//! namespace, a link, the switch or a probe is made is the lab's.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use sgswitch::flow::DropReason;
use sgswitch::lab;
use sgswitch::lab::probe::EchoServer;
use sgswitch::lab::proc::Proc;
use sgswitch::lab::switch::{Drops, Launch, Switch};
use sgswitch::lab::topo::{TempDir, Topo};

use super::output::{exe_name, explain, print_row};
use super::scenario::{Case, Probe, CASES, INSTANCES, PROBE_SECS, TCP_PORTS, UDP_PORTS};
use super::{check_interrupt, interrupted, DemoArgs, DemoBackend};

/// Where the demo keeps its config, the switch's log and the state file: `/run` (only
/// root can write there, and the demo runs as root) or, without it, the temp directory.
pub(super) fn state_dir() -> PathBuf {
    let run = std::path::Path::new("/run");
    if run.is_dir() {
        run.join("sgswitch-demo")
    } else {
        std::env::temp_dir().join("sgswitch-demo")
    }
}

/// Everything the demo created. Dropping it tears it down, in the order of the fields:
/// the switch (SIGTERM, then SIGKILL), the servers, the namespaces (and what runs in
/// them), the veth pairs, the state directory. [`Lab::keep`] leaves it all running.
pub(super) struct Lab {
    backend: DemoBackend,
    /// The state directory.
    pub(super) dir: PathBuf,
    /// The switch's log (stderr), in the state directory.
    pub(super) log: PathBuf,
    /// Names recorded in the state file before they are created.
    netns: Vec<String>,
    links: Vec<String>,
    switch: Option<Switch>,
    servers: Vec<Proc>,
    /// The instances; it owns the state directory once built.
    topo: Option<Topo>,
    /// The state directory until `topo` takes it.
    fresh_dir: Option<TempDir>,
}

impl Lab {
    /// The state directory (a leftover of a demo killed before `--clean` is replaced; a
    /// symlink is never followed) with a first state file.
    pub(super) fn new(backend: DemoBackend) -> Result<Lab, String> {
        let dir = TempDir::new(state_dir()).map_err(|e| e.to_string())?;
        let lab = Lab {
            backend,
            log: dir.path.join("switch.log"),
            dir: dir.path.clone(),
            netns: Vec::new(),
            links: Vec::new(),
            switch: None,
            servers: Vec::new(),
            topo: None,
            fresh_dir: Some(dir),
        };
        lab.save_state();
        Ok(lab)
    }

    /// Leave everything running (`--keep`); `sgswitch demo --clean` removes it later.
    pub(super) fn keep(self) {
        std::mem::forget(self);
    }

    /// Record what exists (or is about to) so that `--clean` can remove it.
    fn save_state(&self) {
        let mut s = String::new();
        let _ = writeln!(s, "demo {}", std::process::id());
        let _ = writeln!(s, "backend {}", self.backend.as_str());
        if let Some(sw) = &self.switch {
            let _ = writeln!(s, "switch {}", sw.pid());
        }
        for p in &self.servers {
            let _ = writeln!(s, "server {}", p.id());
        }
        for n in &self.netns {
            let _ = writeln!(s, "netns {n}");
        }
        for l in &self.links {
            let _ = writeln!(s, "link {l}");
        }
        let _ = std::fs::write(self.dir.join("state"), s);
    }

    /// The namespaces and (veth backends) the veth pairs, configured; recorded first.
    fn build(&mut self) -> Result<(), String> {
        let specs: Vec<_> = INSTANCES.iter().map(|i| i.spec()).collect();
        self.netns = specs.iter().map(|s| s.ns.clone()).collect();
        if self.backend.uses_veth() {
            self.links = specs.iter().map(|s| s.link.clone()).collect();
        }
        self.save_state();
        let dir = self.fresh_dir.take().ok_or("the demo is already built")?;
        let topo = Topo::build(self.backend.lab(), specs, dir).map_err(|e| e.to_string())?;
        self.topo = Some(topo);
        Ok(())
    }

    fn topo(&self) -> Result<&Topo, String> {
        self.topo
            .as_ref()
            .ok_or_else(|| "the demo is not built".to_string())
    }

    fn start_switch(&mut self, config: &std::path::Path) -> Result<(), String> {
        let exe = std::env::current_exe().map_err(|e| format!("current executable: {e}"))?;
        let sw = Switch::spawn(&Launch {
            exe: &exe,
            config,
            log: &self.log,
            args: &[],
            // A terminal Ctrl-C reaches the demo, which then stops the switch in order
            // (and --keep leaves it running after the demo exits).
            own_group: true,
        })
        .map_err(|e| match e {
            lab::Error::Spawn { source, .. } => format!("cannot start the switch: {source}"),
            e => e.to_string(),
        })?;
        self.switch = Some(sw);
        self.save_state();
        let sw = self.switch.as_mut().ok_or("the switch is not running")?;
        sw.wait_ready(Duration::from_secs(20), &interrupted)
            .map_err(|e| e.to_string())
    }

    pub(super) fn switch_pid(&self) -> Option<u32> {
        self.switch.as_ref().map(Switch::pid)
    }

    /// Start the echo server of instance `i` (it answers `ok PORT ` and what it got) and
    /// wait until it listens.
    fn start_server(&mut self, i: usize) -> Result<(), String> {
        let topo = self.topo.as_ref().ok_or("the demo is not built")?;
        let inst = &topo.insts[i];
        let reply = format!("ok {} ", inst.port);
        let server = EchoServer {
            tcp: &TCP_PORTS,
            udp: &UDP_PORTS,
            reply: &reply,
            detached: true,
        };
        let p = server.spawn(&inst.ns).map_err(|e| match e {
            lab::Error::Spawn { source, .. } => {
                format!("cannot start the server in {}: {source}", inst.ns.name)
            }
            e => e.to_string(),
        })?;
        self.servers.push(p);
        self.save_state();
        match self.servers.last_mut() {
            Some(p) => EchoServer::wait_ready(p, &inst.ns).map_err(|e| e.to_string()),
            None => Err("the echo server is gone".to_string()),
        }
    }

    /// SIGUSR1 and the drop counters of the dump (empty if the switch is gone).
    fn drops(&self, ports: &[&str]) -> Drops {
        let reasons: Vec<&str> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
        self.switch
            .as_ref()
            .and_then(|sw| sw.drops(ports, &reasons).ok())
            .unwrap_or_default()
    }
}

/// What a probe saw.
struct Observed {
    passed: bool,
    detail: String,
}

fn run_probe(topo: &Topo, case: &Case) -> Observed {
    let from = &topo.insts[case.from].ns;
    let dst = case.dst();
    match case.probe {
        Probe::Ping => {
            let ok = lab::probe::ping(from, dst, case.forged_src, PROBE_SECS, "0.5");
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
            let out = lab::probe::probe(from, kind, dst, port, PROBE_SECS, "")
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

/// Build, run and report; Ok(true) if every observation matched its expectation.
pub(super) fn drive(lab: &mut Lab, args: &DemoArgs) -> Result<bool, String> {
    let backend = args.backend;
    println!(
        "sgswitch demo: 4 instances in network namespaces, backend {}",
        backend.as_str()
    );
    lab.build()?;
    check_interrupt()?;
    let text = super::scenario::config_text(backend);
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
        lab.topo()?.configure().map_err(|e| e.to_string())?;
    }
    for i in 0..INSTANCES.len() {
        lab.start_server(i)?;
        check_interrupt()?;
    }
    println!(
        "switch ready (pid {}); each instance runs an echo server on tcp {:?} and udp {:?}\n",
        lab.switch_pid().unwrap_or(0),
        TCP_PORTS,
        UDP_PORTS
    );

    let ports: Vec<&str> = INSTANCES.iter().map(|i| i.port).collect();
    if lab.switch_pid().is_none() {
        return Err("the switch is not running".to_string());
    }
    let topo = lab.topo()?;
    let mut before = lab.drops(&ports);
    let mut rows = Vec::new();
    let mut all_ok = true;
    for case in &CASES {
        check_interrupt()?;
        let (from, to) = (&topo.insts[case.from], &topo.insts[case.to]);
        let (ns, ifname) = (from.ns.name.as_str(), from.ifname.as_str());
        if let Some(src) = case.forged_src {
            let a = format!("{src}/32");
            sgswitch::lab::cmd::sh(&["ip", "-n", ns, "addr", "add", &a, "dev", ifname])
                .map_err(|e| e.to_string())?;
        }
        let obs = run_probe(topo, case);
        if let Some(src) = case.forged_src {
            let a = format!("{src}/32");
            sgswitch::lab::cmd::sh_quiet(&["ip", "-n", ns, "addr", "del", &a, "dev", ifname]);
        }
        check_interrupt()?;
        let after = lab.drops(&ports);
        let drops = explain(&before, &after, &[from.port.as_str(), to.port.as_str()]);
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
            print!("{}", sgswitch::lab::indent_tail(&log));
        }
    }
    Ok(all_ok)
}
