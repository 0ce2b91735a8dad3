//! `track_burst`: a whole burst tracked with memory prefetched ahead, the same answers
//! as `track` on each packet in order.
//!
//! **Not the shipped path.** The pipeline runs its own phases over its bursts of 32
//! (`probe` for every frame, `prefetch_entry` for every probe, then `track_probe_inline`
//! in frame order: `Pipeline::process_parsed_burst`), because a frame's two lookups
//! (sending and receiving port) share one probe there. `track_burst` is built only for
//! the tests (the reference the burst tests compare) and with the `bench` feature (the
//! `conntrack::not_shipped::*` benches: the ceiling of a conntrack-only burst).
//!
//! Owns: the burst software pipeline. May not touch: anything but the public lookup
//! steps of `probe` (`probe`, `prefetch_entry`, `track_probe`).
//!
//! # Design
//! * **Bursts.** `track_burst` is a software pipeline over groups of
//!   [`BURST_LOOKAHEAD`] = G = 16 packets: while group `g` is tracked, group `g + 1`'s
//!   buckets are scanned and its candidate entries prefetched (the slot of the first
//!   signature match is kept as a hint, verified by key later), and group `g + 2` is
//!   hashed and its buckets prefetched. Each stage runs as its own tight loop over a
//!   group, not one packet of each stage per iteration. Measured: 19–20.6 M/s at 1M
//!   entries with the per-packet rolling pipeline this replaced, 26.5–27.1 now, for
//!   about the same instructions. Our reading (no PMU in this VM to confirm it): a
//!   stage loop of 25–100 instructions per packet lets the out-of-order core run ahead
//!   across several packets of the SAME stage, so the loads whose prefetch has not
//!   completed yet miss in parallel; one packet of each stage per iteration (~300
//!   instructions) filled the reorder window, and each late line stalled it. Hits then
//!   cost one entry compare, no second bucket scan.
//!
//! # Rejected options
//! * In the per-packet rolling pipeline (before the groups), buckets prefetched further
//!   ahead than entries (64 vs 16 packets): no better at 1M (18.7 vs 19.0–20.2 M/s); the
//!   prefetches were early enough, the stalls came from the loop's shape (see Bursts).
//! * Group sizes 8 and 32 instead of 16: 25.1–25.9 and 21.0–22.9 M/s at 1M (16: 26.4),
//!   23.0–23.6 and 21.0–21.2 at 4M (16: 23.3–24.7).
//! * Tracking a group before (instead of after) hashing the group two ahead: +3% at 10k,
//!   −3% to −4% at 1M (the bucket prefetches go out later).

use super::probe::Probe;
use super::{Conntrack, Track};
use crate::flow::PacketMeta;

/// Packets per group of the [`Conntrack::track_burst`] pipeline: entries are prefetched
/// one group ahead of their use, buckets two groups ahead.
pub const BURST_LOOKAHEAD: usize = 16;

impl Conntrack {
    /// [`Conntrack::track`] for a burst (not the shipped path: see the module doc): `out[i]`
    /// is the outcome of `pkts[i]` (zone, meta),
    /// exactly as if `track` were called on each in order; only memory is fetched ahead.
    /// Processes `min(pkts.len(), out.len())` packets.
    pub fn track_burst(&mut self, pkts: &[(u16, &PacketMeta)], now_ns: u64, out: &mut [Track]) {
        // Software pipeline over groups of G packets: while group g is tracked, group
        // g+1's candidate entries are prefetched and group g+2 is hashed (its buckets
        // prefetched), so one group of work hides each memory latency. Each stage is its
        // own tight loop (few live values, no per-packet ring arithmetic). The lookup
        // itself is done afresh by `track_probe`, so earlier packets' updates are always
        // seen (sequential semantics).
        const G: usize = BURST_LOOKAHEAD;
        let n = pkts.len().min(out.len());
        let (pkts, out) = (&pkts[..n], &mut out[..n]);
        // Group `g` by index arithmetic (`chunks().nth(g)` would walk g chunks per call).
        let group = |g: usize| {
            let start = (g * G).min(n);
            &pkts[start..(start + G).min(n)]
        };
        let mut ring = [[Probe::NONE; G]; 3];
        for (g, r) in ring.iter_mut().enumerate().take(2) {
            for (p, (zone, meta)) in r.iter_mut().zip(group(g)) {
                *p = self.probe(*zone, meta);
            }
        }
        for p in &mut ring[0][..group(0).len()] {
            self.prefetch_entry(p);
        }
        for (g, (o, pk)) in out.chunks_mut(G).zip(pkts.chunks(G)).enumerate() {
            for (p, (zone, meta)) in ring[(g + 2) % 3].iter_mut().zip(group(g + 2)) {
                *p = self.probe(*zone, meta);
            }
            let next = group(g + 1).len();
            for p in &mut ring[(g + 1) % 3][..next] {
                self.prefetch_entry(p);
            }
            for (o, p) in o.iter_mut().zip(&ring[g % 3][..pk.len()]) {
                *o = self.track_probe(p, now_ns);
            }
        }
    }
}
