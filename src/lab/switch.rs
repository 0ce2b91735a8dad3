//! `sgswitch run` as a child process: started with a config and its stderr to a log file,
//! waited for until it prints `sgswitch: ready`, reloaded with SIGHUP, asked for its
//! counters with SIGUSR1, stopped (SIGTERM, then SIGKILL) on drop; and the parser of the
//! drop counters in its counter dumps.
//!
//! The switch is only ever a process here: its binary, its command line, its log and
//! signals. The drop reason names come from the caller (`DropReason::ALL` of the library),
//! so this module does not depend on the dataplane.
//!
//! Owns: the switch child process (its spawn, optional process group, log file, ready and
//! reload lines, SIGHUP/SIGUSR1/SIGTERM), and [`Drops`] with its parser. May not touch: the
//! switch's config (the caller writes the file and passes its path), namespaces or links,
//! or the library: no `use crate::` line, only `super::proc` for signals and the lab's
//! [`Error`], plus `std` and `libc`.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::proc::{signal, stop_child};
use super::{Error, Result};

/// The line the switch prints once every port is open.
pub const READY: &str = "sgswitch: ready";
/// The line the switch prints once a SIGHUP reload is in force.
pub const RELOADED: &str = "sgswitch: reloaded";

/// How to start the switch.
pub struct Launch<'a> {
    /// The `sgswitch` executable.
    pub exe: &'a Path,
    pub config: &'a Path,
    /// Where its stderr goes (created or truncated).
    pub log: &'a Path,
    /// More arguments of `sgswitch run` (e.g. `--workers 2`).
    pub args: &'a [&'a str],
    /// In its own process group, so a terminal Ctrl-C reaches only the caller (which then
    /// stops the switch in order, or leaves it running on purpose).
    pub own_group: bool,
}

/// Drop counters by (port, reason).
pub type Drops = BTreeMap<(String, String), u64>;

/// `sgswitch run --config FILE`, stderr to a log file; stopped (SIGTERM, then SIGKILL
/// after 5 s) on drop.
pub struct Switch {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Switch {
    /// Start the switch (not waiting for it to be ready: see [`Switch::wait_ready`]).
    pub fn spawn(l: &Launch<'_>) -> Result<Switch> {
        let f = std::fs::File::create(l.log).map_err(|e| Error::io(l.log, e))?;
        let mut cmd = Command::new(l.exe);
        cmd.arg("run")
            .arg("--config")
            .arg(l.config)
            .args(l.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(f);
        if l.own_group {
            cmd.process_group(0);
        }
        let child = cmd.spawn().map_err(|e| Error::Spawn {
            cmd: vec![l.exe.display().to_string(), "run".to_string()],
            source: e,
        })?;
        Ok(Switch {
            child: Some(child),
            log: l.log.to_path_buf(),
        })
    }

    /// Wait until the log says `sgswitch: ready`, at most `timeout`; checks `stop` between
    /// looks ([`Error::Interrupted`] when it returns true). If the switch exits first it is
    /// reaped, and [`Switch::pid`] is 0 from then on.
    pub fn wait_ready(&mut self, timeout: Duration, stop: &dyn Fn() -> bool) -> Result<()> {
        let end = Instant::now() + timeout;
        loop {
            let text = self.log_text();
            if text.contains(READY) {
                return Ok(());
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(Error::SwitchExited { status, log: text });
            }
            if stop() {
                return Err(Error::Interrupted);
            }
            if Instant::now() > end {
                return Err(Error::SwitchNotReady {
                    after: timeout,
                    log: text,
                });
            }
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

    /// Its process id (0 once it was stopped or reaped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The whole log.
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

    fn signal(&self, sig: libc::c_int) -> Result<()> {
        let pid = self.pid();
        if signal(pid, sig) {
            Ok(())
        } else {
            Err(Error::NoProcess { pid })
        }
    }

    /// SIGHUP, then wait (at most 10 s) for `sgswitch: reloaded`.
    pub fn reload(&self) -> Result<()> {
        let off = self.log_len();
        self.signal(libc::SIGHUP)?;
        if self.wait_log_from(off, RELOADED, Duration::from_secs(10)) {
            Ok(())
        } else {
            Err(Error::NotReloaded {
                log: self.log_text(),
            })
        }
    }

    /// SIGUSR1, and the drop counters of the dump it prints: (port, reason) → count, by
    /// [`parse_drops`] with `reasons`. The dump is one write of a table: this waits (at
    /// most 5 s) until a line for every one of `ports` is there.
    pub fn drops(&self, ports: &[&str], reasons: &[&str]) -> Result<Drops> {
        let off = self.log_len();
        self.signal(libc::SIGUSR1)?;
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
        Ok(parse_drops(&text, ports, reasons))
    }

    /// SIGKILL the switch and reap it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait; its exit status if it exited by itself within `timeout` (else it
    /// is killed). None also if it was stopped already.
    pub fn stop(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut c = self.child.take()?;
        stop_child(&mut c, timeout)
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

/// Drop counters by (port, reason) from counter dumps, whatever their layout: a token
/// that is one of `ports` sets the port for the reasons after it, on its line or later
/// ones (`?` before any port); one of `reasons` followed by a number (`spoofed-ip=4`,
/// `spoofed-ip: 4`, `spoofed-ip 4`) is that port's count. When a (port, reason) comes
/// again (`text` holds several dumps), the later count replaces the earlier.
pub fn parse_drops(text: &str, ports: &[&str], reasons: &[&str]) -> Drops {
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
            } else if let Some(r) = reasons.iter().find(|r| **r == t) {
                if let Some(n) = toks.get(i + 1).and_then(|n| n.parse::<u64>().ok()) {
                    m.insert((port.clone(), (*r).to_string()), n);
                    i += 1;
                }
            }
            i += 1;
        }
    }
    m
}

/// How many more `reason` drops `port` has in `after` than in `before`.
pub fn grew(before: &Drops, after: &Drops, port: &str, reason: &str) -> u64 {
    let k = (port.to_string(), reason.to_string());
    after
        .get(&k)
        .copied()
        .unwrap_or(0)
        .saturating_sub(before.get(&k).copied().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REASONS: [&str; 4] = [
        "spoofed-mac",
        "spoofed-ip",
        "ingress-denied",
        "egress-denied",
    ];

    #[test]
    fn parses_the_switch_table_and_keeps_the_last_dump() {
        let text = "port                   rx         tx    dropped  drops by reason\n\
                    i0                  29         37          6  spoofed-mac=2 spoofed-ip=4\n\
                    i1                  29         27          0  -\n\
                    worker 0: rx 58 tx 64 dropped 6 steered-away 0\n\
                    i0                  30         37          7  spoofed-ip=5 ingress-denied=1\n";
        let m = parse_drops(text, &["i0", "i1"], &REASONS);
        assert_eq!(m.get(&("i0".into(), "spoofed-mac".into())), Some(&2));
        assert_eq!(m.get(&("i0".into(), "spoofed-ip".into())), Some(&5));
        assert_eq!(m.get(&("i0".into(), "ingress-denied".into())), Some(&1));
        assert_eq!(m.len(), 3, "{m:?}");
        assert_eq!(grew(&Drops::new(), &m, "i0", "spoofed-ip"), 5);
        assert_eq!(grew(&m, &Drops::new(), "i0", "spoofed-ip"), 0);
    }

    #[test]
    fn a_reason_without_a_number_or_before_a_port() {
        assert!(parse_drops("ingress-denied", &["i0"], &REASONS).is_empty());
        let m = parse_drops("egress-denied 3\ni0 egress-denied=1", &["i0"], &REASONS);
        assert_eq!(m.get(&("?".into(), "egress-denied".into())), Some(&3));
        assert_eq!(m.get(&("i0".into(), "egress-denied".into())), Some(&1));
    }
}
