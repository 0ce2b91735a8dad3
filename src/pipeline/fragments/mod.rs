//! IP fragments in the pipeline: the one fragment implementation of the switch.
//!
//! # What it does
//! The first fragment of a datagram (the only one with an L4 header) is judged like any
//! packet; its whole verdict (destinations and drops) is recorded and every later fragment
//! of the datagram gets that verdict. A later fragment that arrives before its first
//! fragment is *held* (its bytes copied into a pooled buffer) and released with the first
//! fragment's verdict, or dropped `fragment-denied` when the datagram times out. When
//! nothing more can be remembered or held, a fragment is dropped `fragment-overflow`.
//!
//! # Data (all allocated when the pipeline is made; nothing grows afterwards)
//! * [`FragTable`] ([`table`]): the datagrams, keyed (zone, family, protocol, source,
//!   destination, identification) as IP reassembly does (RFC 791 §3.2, RFC 8200 §4.5).
//!   Its limits, from [`PipelineConfig`]: `max_fragmented_datagrams` datagrams (four times
//!   `conntrack.max_pending_fragments`, at least 64), `max_pending_fragments` held
//!   fragments in all, and `fragment_timeout` (default 30 s) after a datagram was first
//!   seen or a later fragment last matched it.
//! * A verdict pool of `max_fragmented_datagrams` [`Verdict`]s: a datagram's verdict id in
//!   the table is its slot; the table hands back the ids of the datagrams it forgets.
//! * A pool of `max_pending_fragments` held frames (bytes, ingress port, caller token):
//!   the table's token for a held fragment is its slot here.
//!
//! # Rejected options
//! * Reassembly: a switch forwards fragments as they are, like Open vSwitch's
//!   `ct(... )` without `nf_defrag`; holding only what arrives early keeps memory bounded.
//! * A second table in `conntrack` (an earlier version had one, used only by a test):
//!   conntrack knows connections, not datagrams.
//!
//! Owns: the pipeline's fragment state (`Fragments`: the table, the verdict pool and
//! the held-frame pool) and what a first or later fragment does to it. May not touch: the
//! verdict of a first fragment (`judge` reaches it; this module records and replays it),
//! connection state (`conntrack` never sees a datagram), or ports: held frames are bytes
//! with an ingress port index and the caller's token. Uses the pipeline's types
//! (`super::*`) and [`table`].

pub mod table;

pub use table::{FragConfig, FragKey, FragStats, FragTable, HoldError};

use super::*;

/// A fragment waiting for its first fragment's verdict.
#[derive(Debug, Default)]
struct HeldFrame {
    token: u64,
    in_port: u16,
    frame: Vec<u8>,
}

/// A held frame whose verdict is now known.
#[derive(Debug, Clone, Copy)]
struct ReleasedRef {
    held: u32,
    /// Verdict pool slot, or None: dropped at the ingress port, `fragment-denied`.
    verdict: Option<u32>,
}

/// One pipeline's fragment state (see the module doc).
pub(super) struct Fragments {
    table: FragTable,
    verdicts: Vec<Verdict>,
    verdict_free: Vec<u32>,
    held: Vec<HeldFrame>,
    held_free: Vec<u32>,
    /// Frames held or released and not yet drained.
    held_count: usize,
    released: Vec<ReleasedRef>,
    scratch: Verdict,
    /// The latest clock seen ([`Fragments::expire`] runs on every path): the time of the
    /// records of fragments released later.
    now_ns: u64,
}

impl Fragments {
    pub(super) fn new(cfg: &PipelineConfig) -> Fragments {
        let held = cfg.max_pending_fragments;
        let vp = cfg.max_fragmented_datagrams;
        Fragments {
            table: FragTable::new(FragConfig {
                max_datagrams: vp,
                max_pending: held,
                timeout_ns: cfg.fragment_timeout_ns.max(1),
            }),
            verdicts: (0..vp).map(|_| Verdict::default()).collect(),
            verdict_free: (0..vp as u32).rev().collect(),
            held: (0..held)
                .map(|_| HeldFrame {
                    frame: Vec::with_capacity(2048),
                    ..Default::default()
                })
                .collect(),
            held_free: (0..held as u32).rev().collect(),
            held_count: 0,
            released: Vec::with_capacity(held),
            scratch: Verdict::default(),
            now_ns: 0,
        }
    }

    /// Verdict slots of forgotten datagrams go back to the pool.
    fn reclaim(&mut self) {
        let free = &mut self.verdict_free;
        self.table.take_freed(|v| free.push(v));
    }

    /// Expire datagrams; their held fragments are released as drops.
    fn expire(&mut self, now_ns: u64) {
        if now_ns != u64::MAX {
            self.now_ns = self.now_ns.max(now_ns);
        }
        let released = &mut self.released;
        self.table.expire(now_ns, |_, token| {
            released.push(ReleasedRef {
                held: token as u32,
                verdict: None,
            });
        });
        self.reclaim();
    }
}

impl Pipeline {
    /// Remember the first fragment's verdict and release held fragments of its datagram.
    pub(super) fn record_first(&mut self, fk: FragKey, now_ns: u64, v: &Verdict) {
        let f = &mut self.frags;
        f.expire(now_ns);
        let slot = match f.table.verdict_of(&fk) {
            Some(s) => s,
            None => match f.verdict_free.pop() {
                Some(s) => s,
                // No room to remember this datagram: its later fragments will be held
                // and expire. Bounded memory wins over delivering them.
                None => return,
            },
        };
        f.verdicts[slot as usize].copy_from(v);
        if !f.table.record_first(fk, slot, now_ns) {
            f.verdict_free.push(slot);
            f.reclaim();
            return;
        }
        f.reclaim();
        let released = &mut f.released;
        f.table.take_held(&fk, |token| {
            released.push(ReleasedRef {
                held: token as u32,
                verdict: Some(slot),
            });
        });
    }

    /// A later fragment: its datagram's verdict, or held until the first fragment comes.
    pub(super) fn later_fragment(
        &mut self,
        fk: FragKey,
        in_port: u16,
        frame: &[u8],
        now_ns: u64,
        token: u64,
        out: &mut Verdict,
    ) -> Disposition {
        let f = &mut self.frags;
        f.expire(now_ns);
        if let Some(slot) = f.table.lookup(&fk, now_ns) {
            out.copy_from(&f.verdicts[slot as usize]);
            return Disposition::Decided;
        }
        let Some(h) = f.held_free.pop() else {
            out.dropped.push((in_port, DropReason::FragmentOverflow));
            return Disposition::Decided;
        };
        match f.table.hold(fk, h as u64, now_ns) {
            Ok(()) => {}
            Err(HoldError::Decided(slot)) => {
                f.held_free.push(h);
                out.copy_from(&f.verdicts[slot as usize]);
                return Disposition::Decided;
            }
            Err(HoldError::Overflow) => {
                f.held_free.push(h);
                f.reclaim();
                out.dropped.push((in_port, DropReason::FragmentOverflow));
                return Disposition::Decided;
            }
        }
        f.reclaim();
        let slot = &mut f.held[h as usize];
        slot.token = token;
        slot.in_port = in_port;
        slot.frame.clear();
        slot.frame.extend_from_slice(frame);
        f.held_count += 1;
        Disposition::Held
    }

    /// Expire datagrams (and drop their held fragments) older than the timeout. Cheap
    /// when nothing is due: one comparison with the earliest deadline.
    pub fn expire_fragments(&mut self, now_ns: u64) {
        self.frags.expire(now_ns);
    }

    /// Give up on every held fragment (end of a replay): they are dropped `fragment-denied`.
    pub fn flush_held(&mut self) {
        self.expire_fragments(u64::MAX);
    }

    /// Hand every held frame whose fate is now decided to `f(token, in_port, frame, verdict)`.
    pub fn drain_released<F: FnMut(u64, u16, &[u8], &Verdict)>(
        &mut self,
        dp: &Dataplane,
        mut f: F,
    ) {
        let released = std::mem::take(&mut self.frags.released);
        for r in &released {
            let (token, in_port) = {
                let h = &self.frags.held[r.held as usize];
                (h.token, h.in_port)
            };
            let mut v = std::mem::take(&mut self.frags.scratch);
            match r.verdict {
                Some(slot) => v.copy_from(&self.frags.verdicts[slot as usize]),
                None => {
                    v.clear();
                    v.dropped.push((in_port, DropReason::FragmentDenied));
                }
            }
            let len = self.frags.held[r.held as usize].frame.len();
            self.count(dp, &v, in_port, len);
            // rx was counted when the frame was held.
            if let Some(c) = self.counter(dp, in_port) {
                c.rx = c.rx.saturating_sub(1);
                c.rx_bytes = c.rx_bytes.saturating_sub(len as u64);
            }
            if dp.log_any && !v.dropped.is_empty() {
                let frame = &self.frags.held[r.held as usize].frame;
                let key = flow::extract(frame).map(|m| m.key).unwrap_or_default();
                let now = self.frags.now_ns;
                self.log_drops(dp, &v, in_port, &key, now);
            }
            f(token, in_port, &self.frags.held[r.held as usize].frame, &v);
            self.frags.scratch = v;
            self.frags.held_free.push(r.held);
            self.frags.held_count -= 1;
        }
        self.frags.released = released;
        self.frags.released.clear();
    }

    /// Whether held frames were decided and wait for [`Pipeline::drain_released`].
    pub fn has_released(&self) -> bool {
        !self.frags.released.is_empty()
    }

    /// Number of frames currently held.
    pub fn held(&self) -> usize {
        self.frags.held_count
    }

    /// The fragment table's counters.
    pub fn fragment_stats(&self) -> FragStats {
        self.frags.table.stats()
    }
}
