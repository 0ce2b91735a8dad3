//! NAPI moderation of a kernel netdev port (`[switch] napi_defer_us`).
//!
//! # Why
//! The kernel does the receive work of an AF_XDP or AF_PACKET port in the device's NAPI
//! poll: for a veth or a VM's tap that is the sender's context or a NAPI thread, often on
//! the core of whoever sends (a VM's vCPU/vhost thread, a traffic generator). With the
//! default settings each frame the sender queues wakes the poll at once, and a poll then
//! finds one frame: a wakeup and a context switch per frame on that core. Measured with
//! `benches/e2e.sh` (threaded NAPI on the generator's core, `napi:napi_poll` and
//! `sched:sched_switch` tracepoints): 1.8 frames per poll and ~2 context switches per
//! frame, ~2.8 µs of NAPI time per frame; with moderation the poll runs from a timer and
//! finds dozens of frames, ~0.9 µs per frame, and the sender's core gets the difference
//! back.
//!
//! # What
//! Linux's deferred-interrupt moderation, per netdev: `napi_defer_hard_irqs` (how many
//! empty polls re-arm a timer instead of re-enabling the interrupt / wakeup) and
//! `gro_flush_timeout` (that timer, in ns). While a port is open, [`NapiDefer`] sets them
//! to `2` and `napi_defer_us * 1000` (the values DPDK's AF_XDP guide recommends, with the
//! timeout configurable), and puts the previous values back when it is dropped (port
//! closed, hot-unplugged, switch stopped). The price is latency: under load a frame may
//! wait up to the timeout before the kernel hands it to the switch (a frame that finds the
//! poll idle, as at low rates, is handled at once). On by default with 100 µs, about what a
//! NIC's adaptive interrupt moderation gives (a veth or tap has none); 0 turns it off.
//! Measured with `benches/e2e.sh` (every system moderated alike): 50 µs already gives
//! most of the gain; 200 µs a little more.
//!
//! # After a crash
//! A crash or SIGKILL leaves the values set on the device (a veth or tap that goes away
//! takes them with it; a NIC keeps them). So that the next sgswitch on that device puts
//! back the real originals, not the values its killed predecessor set, each guard keeps a
//! record while it lives: `/run/sgswitch/napi/<netns inode>-<ifname>` holding the pid,
//! the originals and the values set. `apply` takes a recorded original for each value the
//! device still holds exactly as the record says it was set (a value changed since is
//! the original now; field by field, so a kill between the two writes is covered); the
//! guard's drop restores and deletes the record. A record whose process still runs (a
//! second switch on the same device) is used the same way but left to its owner. Best
//! effort: without a writable `/run` the guard works as before, only without the crash
//! record. Not covered: a recycled pid of the killed process (its record is then taken
//! for a live owner's: originals still right, record left behind).
//!
//! # Logging
//! INFO when moderation is set (with the values found) and restored; WARN when the
//! originals cannot be written back to a device that still exists; DEBUG when the device
//! went first. Failing to set it is a returned [`PortError`].
//!
//! # Rejected options
//! * Socket busy polling (`SO_PREFER_BUSY_POLL` + `SO_BUSY_POLL` on the AF_XDP socket):
//!   measured here, no effect on veth ports (the poll is never driven from the socket);
//!   it also needs these same two settings to keep the NAPI deferred.
//! * Netlink per-NAPI configuration (Linux 6.13+): sysfs works on every kernel that has
//!   the knobs and needs no netlink code.
//!
//! # Owns, and may not touch
//! Owns: the two sysfs settings of one netdev while a [`NapiDefer`] lives (and putting the
//! originals back), and its crash record under [`STATE_DIR`]. May not touch: sockets,
//! frames or the netdev's other settings; it opens no port (the runtime applies it per
//! netdev of an AF_XDP or AF_PACKET port; `control::config` reads its bounds). Uses only
//! `port`'s [`PortError`]/[`Step`] and interface-name check, `std` and `libc`.

use super::{check_ifname, PortError, Step};
use std::io;
use std::path::{Path, PathBuf};

/// Empty polls before the device falls back to immediate wakeups.
pub const DEFER_HARD_IRQS: u32 = 2;
/// Largest accepted `napi_defer_us` (100 ms).
pub const MAX_DEFER_US: u32 = 100_000;
/// Default `napi_defer_us`: about what a NIC's adaptive interrupt moderation gives.
pub const DEFAULT_DEFER_US: u32 = 100;

/// Where the crash records live (see the module doc, "After a crash").
pub const STATE_DIR: &str = "/run/sgswitch/napi";

/// NAPI moderation set on one netdev while this value lives. See the module doc.
#[derive(Debug)]
pub struct NapiDefer {
    ifname: String,
    dir: PathBuf,
    old_defer: String,
    old_timeout: String,
    /// This guard's crash record, if it could be written.
    record: Option<PathBuf>,
}

/// A crash record: what a guard found and what it set.
#[derive(Debug, PartialEq, Eq)]
struct Record {
    pid: u32,
    old_defer: String,
    old_timeout: String,
    set_defer: String,
    set_timeout: String,
}

impl Record {
    fn parse(text: &str) -> Option<Record> {
        let mut w = text.split_whitespace();
        let r = Record {
            pid: w.next()?.parse().ok()?,
            old_defer: w.next()?.to_owned(),
            old_timeout: w.next()?.to_owned(),
            set_defer: w.next()?.to_owned(),
            set_timeout: w.next()?.to_owned(),
        };
        w.next().is_none().then_some(r)
    }

    fn render(&self) -> String {
        format!(
            "{} {} {} {} {}\n",
            self.pid, self.old_defer, self.old_timeout, self.set_defer, self.set_timeout
        )
    }
}

/// Whether process `pid` exists (signal 0: EPERM still means it exists).
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks for existence and permission; no signal is sent.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The record file for `ifname` in the caller's network namespace.
fn record_path(state_dir: &Path, ifname: &str) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let netns = std::fs::metadata("/proc/self/ns/net").ok()?.ino();
    Some(state_dir.join(format!("{netns}-{ifname}")))
}

impl NapiDefer {
    /// Set `napi_defer_hard_irqs = 2` and `gro_flush_timeout = us * 1000` on `ifname` (in
    /// the caller's network namespace).
    pub fn apply(ifname: &str, us: u32) -> Result<NapiDefer, PortError> {
        Self::apply_in(
            Path::new("/sys/class/net"),
            Path::new(STATE_DIR),
            ifname,
            us,
        )
    }

    /// As [`NapiDefer::apply`], with the sysfs and crash-record directories given (tests).
    pub fn apply_in(
        root: &Path,
        state_dir: &Path,
        ifname: &str,
        us: u32,
    ) -> Result<NapiDefer, PortError> {
        check_ifname(ifname)?;
        if us == 0 || us > MAX_DEFER_US {
            return Err(PortError::Config(format!(
                "{ifname}: napi_defer_us {us} out of range 1..={MAX_DEFER_US}"
            )));
        }
        let dir = root.join(ifname);
        if !dir.exists() {
            return Err(PortError::NoSuchInterface {
                ifname: ifname.to_owned(),
            });
        }
        let os = |e: io::Error| PortError::os(ifname, Step::NapiTuning, e);
        let mut old_defer = read_value(&dir, "napi_defer_hard_irqs").map_err(os)?;
        let mut old_timeout = read_value(&dir, "gro_flush_timeout").map_err(os)?;
        let set_defer = DEFER_HARD_IRQS.to_string();
        let set_timeout = (u64::from(us) * 1000).to_string();
        let record = record_path(state_dir, ifname);
        // Another process's record (killed, or still running on the same device): a value
        // the device still holds exactly as that process set it stands for the recorded
        // original. Field by field, so a kill between the two writes is covered too.
        let mut own_record = true;
        if let Some(prev) = record
            .as_deref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| Record::parse(&t))
        {
            if prev.pid != std::process::id() {
                if prev.set_defer == old_defer {
                    old_defer = prev.old_defer;
                }
                if prev.set_timeout == old_timeout {
                    old_timeout = prev.old_timeout;
                }
                // A live owner keeps its record: it writes and removes it, not us.
                own_record = !process_alive(prev.pid);
            }
        }
        let mut tuned = NapiDefer {
            ifname: ifname.to_owned(),
            dir,
            old_defer,
            old_timeout,
            record: None,
        };
        // The record goes first, so that a crash between the writes below leaves it.
        if let Some(path) = record.filter(|_| own_record) {
            let rec = Record {
                pid: std::process::id(),
                old_defer: tuned.old_defer.clone(),
                old_timeout: tuned.old_timeout.clone(),
                set_defer: set_defer.clone(),
                set_timeout: set_timeout.clone(),
            };
            let written = std::fs::create_dir_all(state_dir)
                .and_then(|()| std::fs::write(&path, rec.render()));
            if written.is_ok() {
                tuned.record = Some(path);
            }
        }
        // Timeout first: a defer count without a timeout does nothing, so the device is
        // never left deferring with no timer if the second write fails (Drop restores).
        std::fs::write(tuned.dir.join("gro_flush_timeout"), set_timeout).map_err(os)?;
        std::fs::write(tuned.dir.join("napi_defer_hard_irqs"), set_defer).map_err(os)?;
        tracing::info!(
            ifname,
            napi_defer_hard_irqs = DEFER_HARD_IRQS,
            gro_flush_timeout_ns = u64::from(us) * 1000,
            previous_defer = %tuned.old_defer,
            previous_timeout = %tuned.old_timeout,
            crash_record = tuned.record.is_some(),
            "NAPI moderation set"
        );
        Ok(tuned)
    }

    /// The interface this guard tunes.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }
}

fn read_value(dir: &Path, file: &str) -> io::Result<String> {
    Ok(std::fs::read_to_string(dir.join(file))?.trim().to_owned())
}

impl Drop for NapiDefer {
    fn drop(&mut self) {
        // Best effort: the device may be gone already (then there is nothing to restore).
        let defer = std::fs::write(self.dir.join("napi_defer_hard_irqs"), &self.old_defer);
        let timeout = std::fs::write(self.dir.join("gro_flush_timeout"), &self.old_timeout);
        if let Some(path) = &self.record {
            let _ = std::fs::remove_file(path);
        }
        match defer.and(timeout) {
            Ok(()) => tracing::info!(
                ifname = %self.ifname,
                napi_defer_hard_irqs = %self.old_defer,
                gro_flush_timeout = %self.old_timeout,
                "NAPI moderation restored"
            ),
            Err(_) if !self.dir.exists() => {
                tracing::debug!(ifname = %self.ifname, "NAPI moderation: device gone, nothing to restore")
            }
            Err(e) => tracing::warn!(
                ifname = %self.ifname,
                error = %e,
                "NAPI moderation could not be restored"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake sysfs root with `veth0` holding `defer`/`timeout`, and an empty record dir.
    fn fake(tag: &str, defer: &str, timeout: &str) -> (PathBuf, PathBuf) {
        let base = std::env::temp_dir().join(format!("sgswitch-napi-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let dir = base.join("sys").join("veth0");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("napi_defer_hard_irqs"), format!("{defer}\n")).unwrap();
        std::fs::write(dir.join("gro_flush_timeout"), format!("{timeout}\n")).unwrap();
        (base.join("sys"), base.join("run"))
    }

    fn read(root: &Path, f: &str) -> String {
        std::fs::read_to_string(root.join("veth0").join(f))
            .unwrap()
            .trim()
            .to_owned()
    }

    fn settings(root: &Path) -> (String, String) {
        (
            read(root, "napi_defer_hard_irqs"),
            read(root, "gro_flush_timeout"),
        )
    }

    fn cleanup(root: &Path) {
        std::fs::remove_dir_all(root.parent().unwrap()).unwrap();
    }

    /// The pid of a process that has exited (and been reaped).
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!process_alive(pid));
        pid
    }

    /// Leave a record as a killed sgswitch would have.
    fn crash_record(state: &Path, pid: u32, old: (&str, &str), set: (&str, &str)) {
        let rec = Record {
            pid,
            old_defer: old.0.into(),
            old_timeout: old.1.into(),
            set_defer: set.0.into(),
            set_timeout: set.1.into(),
        };
        std::fs::create_dir_all(state).unwrap();
        std::fs::write(record_path(state, "veth0").unwrap(), rec.render()).unwrap();
    }

    #[test]
    fn sets_and_restores() {
        let (root, state) = fake("ok", "0", "0");
        let g = NapiDefer::apply_in(&root, &state, "veth0", 200).unwrap();
        assert_eq!(g.ifname(), "veth0");
        assert_eq!(settings(&root), ("2".into(), "200000".into()));
        // The crash record: our pid, the originals, what we set.
        let path = record_path(&state, "veth0").unwrap();
        let rec = Record::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(
            rec,
            Record {
                pid: std::process::id(),
                old_defer: "0".into(),
                old_timeout: "0".into(),
                set_defer: "2".into(),
                set_timeout: "200000".into(),
            }
        );
        drop(g);
        assert_eq!(settings(&root), ("0".into(), "0".into()));
        assert!(!path.exists(), "record removed with the guard");
        cleanup(&root);
    }

    #[test]
    fn a_killed_predecessors_record_gives_the_originals() {
        // The device still holds what the killed process set; its record knows the truth.
        let (root, state) = fake("crash", "2", "100000");
        crash_record(&state, dead_pid(), ("0", "7000"), ("2", "100000"));
        let g = NapiDefer::apply_in(&root, &state, "veth0", 50).unwrap();
        assert_eq!(settings(&root), ("2".into(), "50000".into()));
        drop(g);
        assert_eq!(settings(&root), ("0".into(), "7000".into()));
        cleanup(&root);
    }

    #[test]
    fn a_record_counts_only_for_values_still_as_it_set_them() {
        // Someone changed the values after the crash: the current ones are the originals.
        let (root, state) = fake("changed", "0", "5000");
        crash_record(&state, dead_pid(), ("0", "7000"), ("2", "100000"));
        drop(NapiDefer::apply_in(&root, &state, "veth0", 50).unwrap());
        assert_eq!(settings(&root), ("0".into(), "5000".into()));
        cleanup(&root);
        // Killed between its two writes (timeout set, defer not yet): each field alone.
        let (root, state) = fake("half", "0", "100000");
        crash_record(&state, dead_pid(), ("0", "7000"), ("2", "100000"));
        drop(NapiDefer::apply_in(&root, &state, "veth0", 50).unwrap());
        assert_eq!(settings(&root), ("0".into(), "7000".into()));
        cleanup(&root);
    }

    #[test]
    fn a_live_owners_record_gives_the_originals_and_stays_its_own() {
        // Another switch (pid 1 stands in: it runs) moderates the same device.
        let (root, state) = fake("alive", "2", "100000");
        crash_record(&state, 1, ("0", "7000"), ("2", "100000"));
        let path = record_path(&state, "veth0").unwrap();
        let before = std::fs::read_to_string(&path).unwrap();
        let g = NapiDefer::apply_in(&root, &state, "veth0", 50).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before, "not ours");
        drop(g);
        assert_eq!(settings(&root), ("0".into(), "7000".into()));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            before,
            "left alone"
        );
        cleanup(&root);
    }

    #[test]
    fn records_parse_strictly() {
        let ok = Record::parse("12 0 7000 2 100000\n").unwrap();
        assert_eq!((ok.pid, ok.old_timeout.as_str()), (12, "7000"));
        for bad in [
            "",
            "12 0 7000 2",
            "x 0 7000 2 100000",
            "12 0 7000 2 100000 9",
        ] {
            assert_eq!(Record::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn works_without_a_writable_record_dir() {
        let (root, _) = fake("nostate", "0", "0");
        // A regular file where the directory should be: no record, same behaviour.
        let blocker = root.parent().unwrap().join("blocker");
        std::fs::write(&blocker, "").unwrap();
        let g = NapiDefer::apply_in(&root, &blocker.join("napi"), "veth0", 100).unwrap();
        assert_eq!(settings(&root), ("2".into(), "100000".into()));
        drop(g);
        assert_eq!(settings(&root), ("0".into(), "0".into()));
        cleanup(&root);
    }

    #[test]
    fn rejects_bad_values_and_missing_devices() {
        let (root, state) = fake("bad", "0", "0");
        for us in [0, MAX_DEFER_US + 1] {
            let e = NapiDefer::apply_in(&root, &state, "veth0", us).unwrap_err();
            assert!(e.to_string().contains("napi_defer_us"), "{e}");
        }
        let e = NapiDefer::apply_in(&root, &state, "nosuch0", 50).unwrap_err();
        assert!(matches!(e, PortError::NoSuchInterface { .. }), "{e}");
        // Nothing was changed by the refused calls, and no record left.
        assert_eq!(settings(&root), ("0".into(), "0".into()));
        assert!(!state.exists());
        cleanup(&root);
    }
}
