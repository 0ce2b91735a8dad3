//! Rate-limited logging of a port's receive and transmit errors ([`ErrorLog`]).
//!
//! # Why
//! An I/O error on a port repeats at the rate of the traffic or of the polling loop (a tap
//! whose instance went away fails every write; a broken socket fails every poll): up to
//! millions per second. Swallowing them hides a dead port; logging each floods the log
//! and costs more than the packet path. [`ErrorLog`] lets through at most one `tracing`
//! event (level WARN, target `sgswitch::port::errlog`) per port, per error kind, per
//! [`INTERVAL`], and the next event of that kind says how many were held back since
//! (`suppressed`).
//!
//! # Cost
//! An `ErrorLog` is plain counters inside the port or group that owns it (a port is driven
//! by one thread): no allocation, no lock, no atomic. A call that has no error does not
//! touch it; an error reads the clock once and compares; the `tracing` macro sits behind
//! an `if` that is true at most once per interval and kind.
//!
//! # Kinds
//! A kind is an operation ([`Op`]) and the OS error number (0 when there is none). An
//! `ErrorLog` tracks [`SLOTS`] kinds; a new kind when all are taken replaces the one
//! logged least recently (that kind's held-back count is then not reported; the frames
//! it concerns are counted in the port's `PortStats` all the same).
//!
//! Owns no I/O: the backends and [`super::Single`] call it where an error is seen.
//!
//! # The `tracing` crate (added for the library's logging)
//! Measured on this 2-core VM under a load average of ~9.5 (other builds running), clean
//! `cargo build --release --bin sgswitch`: the stripped binary grows from 3,541,480 to
//! 3,549,280 bytes (+7.8 kB, +0.2 %) with every event of `port` and `runtime` in it;
//! `tracing`, `tracing-core`, `tracing-attributes` (its proc macro; `syn` was already
//! built for serde), `pin-project-lite` and `once_cell` take 8.1 s of compile time
//! together (cargo `--timings`). The whole clean build took 432 s before and 305 s after:
//! the load, not the crate, decides that difference.

use std::io;
use std::time::{Duration, Instant};

/// At most one event per port and error kind in this interval.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// Error kinds tracked per port.
pub const SLOTS: usize = 4;

/// What failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Receiving (a read, `recvmmsg`, an rx burst).
    Rx,
    /// Transmitting (a write, `sendmmsg`, a tx burst).
    Tx,
    /// Waking the kernel to transmit (AF_XDP `sendto`).
    Kick,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Rx => "rx",
            Op::Tx => "tx",
            Op::Kick => "tx wakeup",
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    /// (operation, errno); `None`: a free slot.
    key: Option<(Op, i32)>,
    /// When an event of this kind was last logged.
    last: Option<Instant>,
    /// Errors of this kind since then, not logged.
    suppressed: u64,
}

/// Per-port error counters that rate-limit error events. See the module doc.
#[derive(Clone, Debug, Default)]
pub struct ErrorLog {
    slots: [Slot; SLOTS],
}

impl ErrorLog {
    /// Record an error of `op` on `port`: logged (with the count held back since the last
    /// event of its kind) unless an event of its kind was logged less than [`INTERVAL`]
    /// ago. Returns whether it was logged.
    #[cold]
    #[inline(never)]
    pub fn error(&mut self, port: &str, op: Op, err: &io::Error) -> bool {
        self.error_at(port, op, err, Instant::now())
    }

    fn error_at(&mut self, port: &str, op: Op, err: &io::Error, now: Instant) -> bool {
        let key = (op, err.raw_os_error().unwrap_or(0));
        let i = match self.slots.iter().position(|s| s.key == Some(key)) {
            Some(i) => i,
            None => {
                // A free slot, else the kind logged least recently.
                let i = self
                    .slots
                    .iter()
                    .position(|s| s.key.is_none())
                    .or_else(|| (0..SLOTS).min_by_key(|&i| self.slots[i].last.unwrap_or(now)))
                    .unwrap_or(0);
                self.slots[i] = Slot {
                    key: Some(key),
                    ..Slot::default()
                };
                i
            }
        };
        let s = &mut self.slots[i];
        if s.last
            .is_some_and(|t| now.saturating_duration_since(t) < INTERVAL)
        {
            s.suppressed += 1;
            return false;
        }
        let suppressed = std::mem::take(&mut s.suppressed);
        s.last = Some(now);
        tracing::warn!(
            port,
            op = op.as_str(),
            error = %err,
            suppressed,
            "port {} error: {err} ({suppressed} more not logged since the last one)",
            op.as_str()
        );
        true
    }

    /// Errors held back (not logged) and not yet reported, over every kind tracked.
    pub fn suppressed(&self) -> u64 {
        self.slots.iter().map(|s| s.suppressed).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(n: i32) -> io::Error {
        io::Error::from_raw_os_error(n)
    }

    #[test]
    fn one_event_per_kind_per_interval() {
        let mut l = ErrorLog::default();
        let t0 = Instant::now();
        assert!(l.error_at("p", Op::Tx, &err(libc::EIO), t0));
        for k in 1..=5 {
            let t = t0 + Duration::from_millis(100 * k);
            assert!(!l.error_at("p", Op::Tx, &err(libc::EIO), t), "held back");
        }
        assert_eq!(l.suppressed(), 5);
        // Another kind (errno, or operation) has its own budget.
        assert!(l.error_at("p", Op::Tx, &err(libc::EINVAL), t0));
        assert!(l.error_at("p", Op::Rx, &err(libc::EIO), t0));
        assert_eq!(l.suppressed(), 5);
        // A second later the kind is logged again, with its held-back count reset.
        assert!(l.error_at("p", Op::Tx, &err(libc::EIO), t0 + INTERVAL));
        assert_eq!(l.suppressed(), 0);
    }

    #[test]
    fn a_new_kind_replaces_the_least_recent() {
        let mut l = ErrorLog::default();
        let t0 = Instant::now();
        for (k, e) in [1, 2, 3, 4].into_iter().enumerate() {
            let t = t0 + Duration::from_millis(10 * k as u64);
            assert!(l.error_at("p", Op::Rx, &err(e), t));
        }
        assert!(!l.error_at("p", Op::Rx, &err(1), t0 + Duration::from_millis(50)));
        // A fifth kind takes errno 1's slot (logged first), which loses its count.
        assert!(l.error_at("p", Op::Rx, &err(5), t0 + Duration::from_millis(60)));
        assert_eq!(l.suppressed(), 0);
        // Errno 1 is a new kind again: logged at once.
        assert!(l.error_at("p", Op::Rx, &err(1), t0 + Duration::from_millis(70)));
        // An error without an errno is a kind too.
        assert!(l.error_at("p", Op::Kick, &io::Error::other("x"), t0));
    }
}
