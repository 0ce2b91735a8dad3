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
//! A crash or SIGKILL leaves the values set on the device (they are harmless settings,
//! and a veth or tap that goes away takes them with it); the next clean stop does not
//! know the originals, so an operator who cares resets them (`echo 0 > ...`).
//!
//! # Rejected options
//! * Socket busy polling (`SO_PREFER_BUSY_POLL` + `SO_BUSY_POLL` on the AF_XDP socket):
//!   measured here, no effect on veth ports (the poll is never driven from the socket);
//!   it also needs these same two settings to keep the NAPI deferred.
//! * Netlink per-NAPI configuration (Linux 6.13+): sysfs works on every kernel that has
//!   the knobs and needs no netlink code.

use super::{check_ifname, PortError, Step};
use std::io;
use std::path::PathBuf;

/// Empty polls before the device falls back to immediate wakeups.
pub const DEFER_HARD_IRQS: u32 = 2;
/// Largest accepted `napi_defer_us` (100 ms).
pub const MAX_DEFER_US: u32 = 100_000;
/// Default `napi_defer_us`: about what a NIC's adaptive interrupt moderation gives.
pub const DEFAULT_DEFER_US: u32 = 100;

/// NAPI moderation set on one netdev while this value lives. See the module doc.
#[derive(Debug)]
pub struct NapiDefer {
    ifname: String,
    dir: PathBuf,
    old_defer: String,
    old_timeout: String,
}

impl NapiDefer {
    /// Set `napi_defer_hard_irqs = 2` and `gro_flush_timeout = us * 1000` on `ifname` (in
    /// the caller's network namespace).
    pub fn apply(ifname: &str, us: u32) -> Result<NapiDefer, PortError> {
        Self::apply_in(&PathBuf::from("/sys/class/net"), ifname, us)
    }

    /// As [`NapiDefer::apply`], with the sysfs directory given (tests).
    pub fn apply_in(root: &std::path::Path, ifname: &str, us: u32) -> Result<NapiDefer, PortError> {
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
        let old_defer = read_value(&dir, "napi_defer_hard_irqs").map_err(os)?;
        let old_timeout = read_value(&dir, "gro_flush_timeout").map_err(os)?;
        let tuned = NapiDefer {
            ifname: ifname.to_owned(),
            dir,
            old_defer,
            old_timeout,
        };
        // Timeout first: a defer count without a timeout does nothing, so the device is
        // never left deferring with no timer if the second write fails (Drop restores).
        std::fs::write(
            tuned.dir.join("gro_flush_timeout"),
            (u64::from(us) * 1000).to_string(),
        )
        .map_err(os)?;
        std::fs::write(
            tuned.dir.join("napi_defer_hard_irqs"),
            DEFER_HARD_IRQS.to_string(),
        )
        .map_err(os)?;
        Ok(tuned)
    }

    /// The interface this guard tunes.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }
}

fn read_value(dir: &std::path::Path, file: &str) -> io::Result<String> {
    Ok(std::fs::read_to_string(dir.join(file))?.trim().to_owned())
}

impl Drop for NapiDefer {
    fn drop(&mut self) {
        // Best effort: the device may be gone already (then there is nothing to restore).
        let _ = std::fs::write(self.dir.join("napi_defer_hard_irqs"), &self.old_defer);
        let _ = std::fs::write(self.dir.join("gro_flush_timeout"), &self.old_timeout);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_sysfs(tag: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("sgswitch-napi-{tag}-{}", std::process::id()));
        let dir = root.join("veth0");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("napi_defer_hard_irqs"), "0\n").unwrap();
        std::fs::write(dir.join("gro_flush_timeout"), "0\n").unwrap();
        root
    }

    fn read(root: &std::path::Path, f: &str) -> String {
        std::fs::read_to_string(root.join("veth0").join(f)).unwrap()
    }

    #[test]
    fn sets_and_restores() {
        let root = fake_sysfs("ok");
        let g = NapiDefer::apply_in(&root, "veth0", 200).unwrap();
        assert_eq!(g.ifname(), "veth0");
        assert_eq!(read(&root, "napi_defer_hard_irqs"), "2");
        assert_eq!(read(&root, "gro_flush_timeout"), "200000");
        drop(g);
        assert_eq!(read(&root, "napi_defer_hard_irqs"), "0");
        assert_eq!(read(&root, "gro_flush_timeout"), "0");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn rejects_bad_values_and_missing_devices() {
        let root = fake_sysfs("bad");
        for us in [0, MAX_DEFER_US + 1] {
            let e = NapiDefer::apply_in(&root, "veth0", us).unwrap_err();
            assert!(e.to_string().contains("napi_defer_us"), "{e}");
        }
        let e = NapiDefer::apply_in(&root, "nosuch0", 50).unwrap_err();
        assert!(matches!(e, PortError::NoSuchInterface { .. }), "{e}");
        // Nothing was changed by the refused calls.
        assert_eq!(read(&root, "gro_flush_timeout"), "0\n");
        std::fs::remove_dir_all(root).unwrap();
    }
}
