//! Processes: signals sent by process id only, stopping with a grace period (SIGTERM,
//! then SIGKILL), the zombie check, and the [`Proc`] guard that kills and reaps a child.
//!
//! Nothing here signals by name or process group: a pid comes from a `Child` the caller
//! spawned, from `ip netns pids` of a namespace it created, or from its own record (then
//! [`stop_pid`] checks `/proc/PID/cmdline` still names the process first).
//!
//! Owns: signals by process id, the `/proc/PID` reads (`cmdline`, zombie state), the
//! grace-period stop and the [`Proc`] guard. May not touch: namespaces, links or commands
//! (`netns`, `topo`, `cmd`), or which process to stop (the caller passes a child it
//! spawned, or a pid and a `marker` its command line must contain). Uses only `std` and `libc`: nothing of the crate, not even the rest of the lab.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// Send `sig` to one process id; false if it does not exist (or the id is not one).
pub fn signal(pid: u32, sig: libc::c_int) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill has no memory-safety preconditions; pid is one positive process id.
    pid > 0 && unsafe { libc::kill(pid, sig) } == 0
}

/// The command line of `pid` (arguments joined by spaces), if it is alive.
pub fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// Whether `pid` is a zombie (exited, not reaped by its parent).
pub fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// SIGTERM `pid` if its command line contains `marker`, wait up to `grace` for it to go
/// (or become a zombie: it is not our child, so we cannot reap it), then SIGKILL.
pub fn stop_pid(pid: u32, marker: &str, grace: Duration) {
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

/// SIGTERM a child and wait up to `grace`; its exit status if it exited by itself, None
/// if it had to be killed (it is reaped either way).
pub fn stop_child(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    signal(child.id(), libc::SIGTERM);
    let end = Instant::now() + grace;
    while Instant::now() < end {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// A child process, killed (SIGKILL) and reaped on drop.
pub struct Proc {
    pub child: Child,
}

impl Proc {
    /// The first line the child writes to its (piped) stdout, trimmed; empty if it closed
    /// stdout first or stdout is not piped. Blocks until then.
    pub fn first_line(&mut self) -> String {
        let mut line = String::new();
        if let Some(out) = self.child.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        line.trim().to_string()
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
