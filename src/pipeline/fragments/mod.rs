//! IP fragments in the pipeline: the one fragment implementation of the switch.
//!
//! # What it does
//! Every fragment that passed port security is first *placed* in its datagram
//! ([`table`]: its byte range against the ranges seen). A fragment that overlaps another
//! of its datagram (RFC 1858, RFC 5722), or that starts inside the TCP/SCTP/DCCP header a
//! first fragment carries (RFC 1858 §4, the tiny-overlap attack), is dropped
//! `fragment-overlap` and so is every later fragment of that datagram (held ones too); an
//! exact repeat of bytes seen is dropped `fragment-duplicate` alone; a first fragment too
//! short for its transport header or IPv6 header chain (RFC 1858 §3, RFC 7112: the flow
//! key is not in it, no rule can judge it) is dropped `fragment-tiny` with the whole
//! datagram. Then the first fragment of a datagram (the only one with an L4 header) is
//! judged like any packet; its whole verdict (destinations and drops) is recorded and
//! every later fragment of the datagram gets that verdict. A later fragment that arrives
//! before its first fragment is *held* (its bytes copied into a pooled buffer) and
//! released with the first fragment's verdict, or dropped `fragment-denied` when the
//! datagram times out. When nothing more can be remembered or held, a fragment is
//! dropped `fragment-overflow`.
//!
//! What a switch cannot do: call back fragments it already forwarded. When an overlap
//! shows up after some fragments of a datagram left, those stay delivered; the receiver
//! then has an incomplete datagram that its own reassembly drops at its timeout (and an
//! RFC 5722 receiver would discard it anyway). What reaches it never holds two versions
//! of a byte, nor a fragment of a datagram whose first fragment was denied.
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
//! * A pool of twice `max_pending_fragments` held frames (bytes, ingress port, caller
//!   token; a released frame keeps its slot until the caller drains it):
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

pub use table::{FragConfig, FragKey, FragStats, FragTable, Later, Refusal, Span, RUNS};

use super::*;

/// A fragment waiting for its first fragment's verdict.
#[derive(Debug, Default)]
struct HeldFrame {
    token: u64,
    in_port: u16,
    frame: Vec<u8>,
}

/// What becomes of a held frame.
#[derive(Debug, Clone, Copy)]
enum Fate {
    /// Its datagram's verdict (pool slot).
    Verdict(u32),
    /// Dropped at the ingress port.
    Drop(DropReason),
}

/// A held frame whose fate is now known.
#[derive(Debug, Clone, Copy)]
struct ReleasedRef {
    held: u32,
    fate: Fate,
}

/// The drop reason of a refused fragment.
fn refused(r: Refusal) -> DropReason {
    match r {
        Refusal::Duplicate => DropReason::FragmentDuplicate,
        Refusal::Overlap => DropReason::FragmentOverlap,
        Refusal::Tiny => DropReason::FragmentTiny,
        Refusal::Scattered | Refusal::Overflow => DropReason::FragmentOverflow,
    }
}

/// One pipeline's fragment state (see the module doc).
pub(super) struct Fragments {
    table: FragTable,
    verdicts: Vec<Verdict>,
    verdict_free: Vec<u32>,
    /// Verdict slots forgotten while released frames wait for a drain: one of them may
    /// still name the slot ([`Fate::Verdict`]), so it is reused only after the drain.
    verdict_deferred: Vec<u32>,
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
        // Twice the table's bound: a held frame released (a mass expiry) keeps its slot
        // until the caller drains it, and a fragment arriving before that drain may still
        // need one.
        let slots = held.saturating_mul(2);
        let vp = cfg.max_fragmented_datagrams;
        Fragments {
            table: FragTable::new(FragConfig {
                max_datagrams: vp,
                max_pending: held,
                timeout_ns: cfg.fragment_timeout_ns.max(1),
            }),
            verdicts: (0..vp).map(|_| Verdict::default()).collect(),
            verdict_free: (0..vp as u32).rev().collect(),
            verdict_deferred: Vec::with_capacity(vp),
            held: (0..slots)
                .map(|_| HeldFrame {
                    frame: Vec::with_capacity(2048),
                    ..Default::default()
                })
                .collect(),
            held_free: (0..slots as u32).rev().collect(),
            held_count: 0,
            // Every held frame can be released at most once before the next drain.
            released: Vec::with_capacity(slots),
            scratch: Verdict::default(),
            now_ns: 0,
        }
    }

    /// Verdict slots of forgotten datagrams go back to the pool (after the next drain
    /// while released frames wait: a datagram's held frames keep its verdict even when it
    /// is discarded and its slot forgotten before the caller drains them).
    fn reclaim(&mut self) {
        let free = if self.released.is_empty() {
            &mut self.verdict_free
        } else {
            &mut self.verdict_deferred
        };
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
                fate: Fate::Drop(DropReason::FragmentDenied),
            });
        });
        self.reclaim();
    }

    /// A callback for a table call that may discard a datagram: it collects the held
    /// frames handed back; [`Fragments::discarded_since`] then gives them their reason.
    fn collect(released: &mut Vec<ReleasedRef>) -> impl FnMut(u64) + '_ {
        move |token| {
            released.push(ReleasedRef {
                held: token as u32,
                fate: Fate::Drop(DropReason::FragmentDenied),
            })
        }
    }

    /// The held frames released since `mark` were dropped because their datagram was
    /// discarded for `r`; verdict slots the table forgot go back to the pool.
    fn discarded_since(&mut self, mark: usize, r: Refusal) {
        for x in &mut self.released[mark..] {
            x.fate = Fate::Drop(refused(r));
        }
        self.reclaim();
    }
}

impl Pipeline {
    /// A fragment (first or later, `f.meta.frag.is_fragment`) that passed port security:
    /// placed in its datagram ([`FragTable`]: duplicates, overlaps and tiny first
    /// fragments are refused), then a first fragment is judged (`judge`) and its verdict
    /// recorded, a later one gets that verdict or is held.
    pub(super) fn fragment(
        &mut self,
        f: Frame<'_>,
        frame: &[u8],
        probe: Option<&Probe>,
        token: u64,
        out: &mut Verdict,
    ) -> Disposition {
        let Frame {
            now_ns,
            in_port,
            p,
            meta,
            ..
        } = f;
        let fk = FragKey::of(p.zone, meta);
        let span = Span::of(&meta.frag);
        let fr = &mut self.frags;
        fr.expire(now_ns);
        let mark = fr.released.len();
        if meta.frag.tiny {
            // The ports are not in this fragment: no rule can judge it, nor the rest.
            let collect = Fragments::collect(&mut fr.released);
            fr.table.discard(fk, Refusal::Tiny, now_ns, collect);
            fr.discarded_since(mark, Refusal::Tiny);
            out.dropped.push((in_port, DropReason::FragmentTiny));
            return Disposition::Decided;
        }
        if meta.frag.offset != 0 {
            if self.tracing() {
                self.trace_step(Step::LaterFragment);
            }
            return self.later_fragment(fk, span, f, frame, token, out);
        }
        let collect = Fragments::collect(&mut fr.released);
        if let Err(r) = fr.table.first(fk, span, now_ns, collect) {
            fr.discarded_since(mark, r);
            out.dropped.push((in_port, refused(r)));
            return Disposition::Decided;
        }
        self.judge(f, probe, out);
        self.record_first(fk, now_ns, out);
        Disposition::Decided
    }

    /// Remember the first fragment's verdict and release held fragments of its datagram.
    fn record_first(&mut self, fk: FragKey, now_ns: u64, v: &Verdict) {
        let f = &mut self.frags;
        let slot = match f.table.verdict_of(&fk) {
            Some(s) => s,
            None => match f.verdict_free.pop() {
                Some(s) => s,
                // No room to remember this verdict: its later fragments will be held and
                // expire. Bounded memory wins over delivering them.
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
                fate: Fate::Verdict(slot),
            });
        });
    }

    /// A later fragment: its datagram's verdict, or held until the first fragment comes.
    fn later_fragment(
        &mut self,
        fk: FragKey,
        span: Span,
        f: Frame<'_>,
        frame: &[u8],
        token: u64,
        out: &mut Verdict,
    ) -> Disposition {
        let (in_port, now_ns) = (f.in_port, f.now_ns);
        let fr = &mut self.frags;
        let h = fr.held_free.pop();
        let mark = fr.released.len();
        let collect = Fragments::collect(&mut fr.released);
        let later = fr.table.later(
            fk,
            span,
            f.meta.key.proto,
            h.map(u64::from),
            now_ns,
            collect,
        );
        let h = match (later, h) {
            (Later::Held, Some(h)) => h,
            (later, h) => {
                if let Some(h) = h {
                    fr.held_free.push(h);
                }
                match later {
                    Later::Verdict(slot) => {
                        fr.reclaim();
                        out.copy_from(&fr.verdicts[slot as usize]);
                    }
                    Later::Refused(r) => {
                        fr.discarded_since(mark, r);
                        out.dropped.push((in_port, refused(r)));
                    }
                    // Held without a token: cannot happen (the table holds only with one).
                    Later::Held => out.dropped.push((in_port, DropReason::FragmentOverflow)),
                }
                return Disposition::Decided;
            }
        };
        fr.reclaim();
        let slot = &mut fr.held[h as usize];
        slot.token = token;
        slot.in_port = in_port;
        slot.frame.clear();
        slot.frame.extend_from_slice(frame);
        fr.held_count += 1;
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
            match r.fate {
                Fate::Verdict(slot) => v.copy_from(&self.frags.verdicts[slot as usize]),
                Fate::Drop(reason) => {
                    v.clear();
                    v.dropped.push((in_port, reason));
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
        let f = &mut self.frags;
        f.verdict_free.append(&mut f.verdict_deferred);
    }

    /// Whether held frames were decided and wait for [`Pipeline::drain_released`].
    pub fn has_released(&self) -> bool {
        !self.frags.released.is_empty()
    }

    /// Number of frames currently held.
    pub fn held(&self) -> usize {
        self.frags.held_count
    }

    /// Fragmented datagrams the table knows now (at most `max_fragmented_datagrams`).
    pub fn fragment_datagrams(&self) -> usize {
        self.frags.table.len()
    }

    /// The fragment table's counters.
    pub fn fragment_stats(&self) -> FragStats {
        self.frags.table.stats()
    }
}
