//! The fill-ring depth policy of an AF_XDP group's members: when and how deep each
//! member's fill ring is topped up from the free stack. It only gives frames to fill
//! rings; receiving is [`super::rx`]'s, the ring set-up [`super::open`]'s.
//!
//! # Fill depth
//! The fill ring is a FIFO: a frame given to it is written by the kernel only after every
//! frame queued before it, so its depth is the reuse distance of receive frames. Each
//! frame is a page of its own (4096-byte frames), and in copy mode the kernel writes it
//! through its own 4 KiB-page mapping of the UMEM: a deep fill ring makes every received
//! frame a fresh page and cache line on both the kernel's side (the copy) and ours (the
//! header reads). So a member keeps two depths:
//! * while frames flow, in copy mode, `busy_fill` = half the RX ring (512 by default),
//!   refilled every [`REFILL_BATCH`] frames from the top of the (LIFO) free stack, so the
//!   same few hundred frames circulate (zero-copy binds keep the idle depth: there is no
//!   kernel copy to save, and a NIC at line rate wants the headroom);
//! * after [`IDLE_AFTER`] (10 ms) without a frame, `idle_fill` = the whole RX ring or more
//!   (`2 * ring_size`, bounded by the member's share of the UMEM), so a burst that arrives
//!   while an idle worker sleeps (the runtime backs off up to 1 ms) finds the RX ring,
//!   not the fill ring, as its limit. When traffic resumes the deep ring drains to the
//!   busy depth by itself (top-ups stop until it is below). Idleness is time, not a count
//!   of empty polls: under load with NAPI moderation the RX ring is empty for up to
//!   `napi_defer_us` between two kernel batches, thousands of busy polls (a first version
//!   counting 64 empty polls went deep in every such gap). The clock is read once per
//!   [`IDLE_CHECK`] empty polls.
//!
//! Measured (benches/e2e.sh, 64-byte frames through two veths, NAPI on the generator's
//! core), the kernel's receive work per frame for sgswitch's ports: with one constant
//! depth, 3 rounds each in one series, 0.94–1.04 µs at 2048 (the old default), 0.89–1.02
//! at 1024, 0.87–0.91 at 512, 0.86–0.90 at 256 (less room for a stall); with the two
//! depths as shipped, 0.79–0.88 µs (3 rounds) and 0.82–0.87 (the README's 5-round table).
//!
//!
//! Owns: the two fill depths, when to switch between them ([`IDLE_AFTER`]) and the top-up
//! of a member's fill ring from the free stack. May not touch: the RX, TX or completion
//! rings, the kernel's bind, or frames. Uses only the group ([`super::UmemGroup`],
//! [`super::BindMode`]) and `tx`'s reserve retry bound.

use super::tx::TX_RESERVE_ROUNDS;
use super::{BindMode, UmemGroup};

/// Frames received between two fill-ring top-ups.
const REFILL_BATCH: u32 = 32;

/// Time without a received frame after which a member's fill ring is topped up to its
/// idle depth.
pub const IDLE_AFTER: std::time::Duration = std::time::Duration::from_millis(10);

/// Empty polls between two looks at the clock while the RX ring stays empty.
const IDLE_CHECK: u32 = 64;

impl UmemGroup {
    /// Top up member `i`'s fill ring to its busy depth, once per [`REFILL_BATCH`] frames.
    pub(super) fn refill(&mut self, i: usize) {
        let m = &mut self.members[i];
        if m.since_refill < REFILL_BATCH {
            return;
        }
        let depth = m.busy_fill;
        self.top_up(i, depth);
    }

    /// Top up member `i`'s fill ring to `depth` frames from the top of the free stack.
    pub(super) fn top_up(&mut self, i: usize, depth: u32) {
        let m = &mut self.members[i];
        m.since_refill = 0;
        let pending = m.fq.pending();
        let missing = depth.saturating_sub(pending);
        let mut added = 0u32;
        let mut want = missing.min(self.free.len() as u32);
        // Two reservations at most, as for TX (see `TX_RESERVE_ROUNDS`): the first may be
        // cut short by a stale cached consumer index.
        for _ in 0..TX_RESERVE_ROUNDS {
            if want == 0 {
                break;
            }
            let mut w = m.fq.fill(want);
            let cap = w.capacity() as usize;
            let start = self.free.len() - cap.min(self.free.len());
            let n = w.insert(self.free[start..].iter().copied()) as usize;
            w.commit();
            drop(w);
            self.free.truncate(self.free.len() - n);
            added += n as u32;
            want = want.saturating_sub(n as u32).min(self.free.len() as u32);
            if n == 0 {
                break;
            }
        }
        if added < missing {
            // Cut short (the free stack ran low: frames in TX rings or held by a caller):
            // try again on the next call instead of after REFILL_BATCH more frames, which
            // a drained fill ring would never deliver.
            m.since_refill = REFILL_BATCH;
        }
        // Copy mode fills frames from the XDP path in softirq and never needs a fill-ring
        // wakeup (its flag stays set: waking would cost a poll(2) per call). Zero-copy
        // drivers ask for one when they ran dry.
        if m.info.bind == BindMode::ZeroCopy && m.need_wakeup && m.fq.needs_wakeup() {
            m.fq.wake();
        }
    }

    /// After a poll of member `i` that took `n` frames from its RX ring: count empty
    /// polls, and after [`IDLE_AFTER`] without a frame top the fill ring up to its idle
    /// depth.
    #[inline]
    pub(super) fn track_idle(&mut self, i: usize, n: usize) {
        let m = &mut self.members[i];
        if n == 0 {
            m.empty_polls = m.empty_polls.wrapping_add(1);
            if m.empty_polls == 1 {
                m.idle_since = std::time::Instant::now();
            } else if m.empty_polls.is_multiple_of(IDLE_CHECK)
                && m.idle_since.elapsed() >= IDLE_AFTER
            {
                // Repeated every IDLE_CHECK polls while idle: cheap once full (no frame
                // to add; the ring's indexes are not contended while nothing arrives).
                let depth = m.idle_fill;
                self.top_up(i, depth);
            }
        } else {
            m.empty_polls = 0;
        }
    }
}
