//! The lookup of one packet: hash and prefetch (`probe`, `reprobe`, `prefetch_entry`),
//! then the lookup and the state update in packet order (`track_probe`).
//!
//! Owns: the per-packet protocol rules on a hit or a miss (the TCP table lives in
//! `tcp`). May not touch: the index layout (through `table`'s functions only),
//! entry creation (`commit`).
//!
//! # Design
//! * **Hit path.** The TCP transition is one load from a table of one-byte codes built
//!   at compile time from the rule function (`tcp.rs`), indexed by the entry's raw state
//!   byte; [`Conntrack::track_probe_inline`] lets a caller with one hot call site (the
//!   pipeline) match the outcome where it is built.
//!
//! # Performance (benches/conntrack.rs; thread CPU time on the shared 2-vCPU KVM build
//! machine (AMD EPYC), other tenants' load while measuring, so figures vary by ±5–10%)
//! Entry 64 bytes, index 8–16 bytes per entry (≈ 80 MiB for 1M, 323 MiB for 4M).
//! M packets/s, one core, `--warm-up-time 2 --measurement-time 5`; ranges over 2–4 runs
//! of the final code, and over 2–6 runs of the code before this round's changes (same
//! session, same machine, runs interleaved) for reference. (Measured before the benches
//! were split by shipped path: the `track_burst` 256 rows are now
//! `conntrack::not_shipped::{hit,miss}/track_burst256`, not the shipped path; `track` one
//! by one is what `per_frame` measures; the pipeline's own phases, `pipeline32`, have no
//! row here yet.)
//!
//! Instructions per hit by callgrind (`examples/profile_conntrack.rs 4000 10000 MODE`,
//! inclusive cost of the driving function over 1,024,000 hits; not noisy): `pipeline32`
//! (the shipped phases) 254, `per_frame` 223, `track_burst` 259.
//!
//! | case | 10k | 1M | 4M | before: 10k / 1M / 4M |
//! |---|---|---|---|---|
//! | hit, `track_burst` 256 | 40.2–40.9 | **26.5–27.1** | 23.5–24.9 | 37.6–38.4 / 19.0–20.6 / 17.4–18.7 |
//! | hit, `track` one by one | 30.1 | 5.9–6.7 | 5.1–6.0 | 30.2–30.4 / 5.6–6.4 / 5.3–6.2 |
//! | miss, `track_burst` 256 | 55.3 | 38.0–39.4 | 33.1–33.3 | 51.2–52.3 / 30.3–32.9 / 25.9–26.6 |
//! | miss, `track` one by one | 66.7–67.3 | 13.1–17.9 | 11.2–12.9 | 64.6–65.5 / 10.9–16.8 / 10.0–13.0 |
//! | commit + remove (cold, no prefetch) | 16.0–16.2 | 5.3–5.5 | 4.6–5.0 | 15.9–16.0 / 5.1–5.2 / 4.7–4.8 |
//!
//! The target of 20 M hits/s at 1M entries is met with a margin of ~30% (it was met
//! only narrowly, 19.0–20.6, before the burst groups). Most of the gain is the loop
//! shape of `track_burst` (see Bursts: +25–30% at 1M and 4M for about the same
//! instructions, 295 -> 290 per hit); whole huge pages give 2–5% at 1M; fewer
//! instructions per hit the rest (and the 10k row). `examples/profile_conntrack.rs`
//! (mode `track_burst`) runs the burst-hit workload under callgrind (10k entries): 257 instructions per hit (295
//! before; 310 before the flag table and the explicit enum tags; this round: groups −5,
//! first-match-only entry prefetch −13, flat 64-byte probe −7, two-byte `Kind` −13).
//! Single lookups (`track`) gain little: two dependent random cache lines (bucket, then
//! entry) that nothing overlaps. A burst hit still needs both lines; what remains of the
//! gap between the 10k and the 1M rows is probably DRAM traffic and TLB reach (the VM's
//! nested paging) rather than latency left unhidden, since larger groups do not help
//! (not verified: no PMU in this VM). Next step if needed: lay each bucket out next to
//! its entries (one page per lookup), at the price of moving entries on cuckoo steps.
//!
//! # Rejected options
//! * A software prefetch to L2 (`T1`) instead of L1: no better (18.7 vs 19.4 M/s).
//! * Prefetching every signature-matching entry of the bucket (a loop over the match
//!   mask) instead of the first only: a second match is a 16-bit signature collision;
//!   the loop cost ~13 instructions per packet and 2–3% at 1M.
//! * An SSE2 compare of the 40-byte keys (two 16-byte compares and one word): no fewer
//!   instructions per hit overall (259 vs 257) for an extra `unsafe` block.

use super::key::{self, Class, CtKey, Kind, Look};
use super::table::{sig_of, F_CUT, F_LISTED, F_ORIG_LO, F_SEEN_REPLY};
use super::{tcp, Conntrack, CtState, Handle, Track};
use crate::flow::PacketMeta;

/// The result of hashing a packet: everything [`Conntrack::track_probe`] needs. Cheap to
/// compute; see [`Conntrack::probe`].
#[derive(Clone, Copy, Debug)]
pub struct Probe {
    pub(super) class: Class,
    /// Zone-less hash of the key (selects the buckets).
    pub(super) hash: u64,
    /// Signature of the key in its zone.
    pub(super) sig: u16,
    /// Slot whose signature matched in the prefetch stage ([`NO_HINT`] if none): tried
    /// first (and verified by key) before scanning the bucket again.
    pub(super) hint: u32,
}

const _: () = assert!(core::mem::size_of::<Probe>() == 64);
const _: () = assert!(core::mem::size_of::<Option<Probe>>() == 64);

pub(super) const NO_HINT: u32 = u32::MAX;

impl Probe {
    /// A placeholder (an untrackable packet).
    #[cfg(any(test, feature = "bench"))]
    pub(super) const NONE: Probe = Probe {
        class: Class::UNTRACKABLE,
        hash: 0,
        sig: 0,
        hint: NO_HINT,
    };

    /// The entry hint found by [`Conntrack::prefetch_entry`] (opaque), to carry it
    /// without the probe.
    #[inline(always)]
    pub fn hint(&self) -> u32 {
        self.hint
    }

    /// This probe with entry hint `hint` (from [`Probe::hint`]). Any value is safe: a
    /// hint is verified by key before it is used.
    #[inline(always)]
    pub fn with_hint(mut self, hint: u32) -> Probe {
        self.hint = hint;
        self
    }
}

#[inline(always)]
pub(super) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint that never faults, whatever the address; SSE is part of
    // the x86_64 baseline, so the instruction exists on every x86_64 CPU.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

impl Conntrack {
    /// The probe of the same packet in another zone (a frame checked at its sending port
    /// and again at its receiving port): reuses the classification and the hash. The
    /// buckets are chosen by the zone-less hash, so the primary bucket is the one `p`
    /// already prefetched; only the signature changes. Same result as
    /// `probe(zone, meta)`.
    #[inline(always)]
    pub fn reprobe(&self, p: &Probe, zone: u16) -> Probe {
        let class = Class {
            key: p.class.key.with_zone(zone),
            ..p.class
        };
        Probe {
            class,
            hash: p.hash,
            sig: sig_of(p.hash, zone),
            hint: NO_HINT,
        }
    }

    /// Hash a packet and prefetch its primary index bucket. Pure: the table is not
    /// changed, so probes may be computed for a whole burst ahead of `track_probe`.
    #[inline(always)]
    pub fn probe(&self, zone: u16, meta: &PacketMeta) -> Probe {
        let class = key::classify(zone, meta);
        let hash = match class.look {
            Look::Conn | Look::Error => self.hasher.hash(&class.key),
            Look::Untrackable => 0,
        };
        prefetch(&self.buckets[self.primary(hash)]);
        Probe {
            class,
            hash,
            sig: sig_of(hash, zone),
            hint: NO_HINT,
        }
    }

    /// Prefetch the first entry whose signature matches in the probe's primary bucket
    /// (second prefetch stage of a burst) and remember it in the probe as a hint that
    /// `track_probe` verifies; the table is not changed. (A second match is a 16-bit
    /// signature collision, rare enough to go unprefetched.)
    #[inline(always)]
    pub fn prefetch_entry(&self, probe: &mut Probe) {
        let bucket = &self.buckets[self.primary(probe.hash)];
        let m = bucket.matches(probe.sig);
        if m != 0 {
            // `m` has bits 0..8 only; the mask just spares the bounds check.
            let slot = bucket.slot[(m.trailing_zeros() & 7) as usize];
            probe.hint = slot;
            // A prefetch never faults, so the address needs no bounds check (a slot
            // in the index is always below the capacity anyway).
            prefetch(self.entries.as_ptr().wrapping_add(slot as usize));
        }
    }

    /// Track one packet of zone `zone` at time `now_ns`. See [`Track`].
    #[inline]
    pub fn track(&mut self, zone: u16, meta: &PacketMeta, now_ns: u64) -> Track {
        let p = self.probe(zone, meta);
        self.track_probe(&p, now_ns)
    }

    /// Track a packet from its [`Probe`] (which must come from this table).
    #[inline]
    pub fn track_probe(&mut self, probe: &Probe, now_ns: u64) -> Track {
        self.track_probe_inline(probe, now_ns)
    }

    /// [`Conntrack::track_probe`], always inlined: for a caller with one hot call site
    /// that matches the outcome right away (the pipeline), so the [`Track`] never goes
    /// through memory.
    #[inline(always)]
    pub fn track_probe_inline(&mut self, probe: &Probe, now_ns: u64) -> Track {
        let c = &probe.class;
        match c.look {
            Look::Conn => {
                let Some(slot) =
                    self.lookup_live(&c.key, probe.hash, probe.sig, probe.hint, now_ns)
                else {
                    self.stats.misses += 1;
                    return self.miss(c.kind);
                };
                self.stats.hits += 1;
                self.update(slot, c.src_lo, c.kind, now_ns)
            }
            Look::Error => {
                match self.lookup_live(&c.key, probe.hash, probe.sig, probe.hint, now_ns) {
                    Some(slot) => {
                        self.stats.hits += 1;
                        self.stats.related += 1;
                        let e = &self.entries[slot as usize];
                        Track::Related {
                            handle: Handle { slot, gen: e.gen },
                            epoch: e.epoch,
                            cut: e.flags & F_CUT != 0,
                            tag: e.tag,
                        }
                    }
                    None => {
                        self.stats.misses += 1;
                        self.stats.invalid += 1;
                        Track::Invalid
                    }
                }
            }
            Look::Untrackable => {
                self.stats.invalid += 1;
                Track::Invalid
            }
        }
    }

    /// Live slot of `key`; an expired entry found on the way is removed. `hint` (a slot
    /// that probably holds `key`) is tried first; keys are unique in the table, so a
    /// live entry with the same key IS the one the index would find.
    #[inline(always)]
    pub(super) fn lookup_live(
        &mut self,
        key: &CtKey,
        hash: u64,
        sig: u16,
        hint: u32,
        now_ns: u64,
    ) -> Option<u32> {
        let hinted = self
            .entries
            .get(hint as usize)
            .is_some_and(|e| e.live() && e.key == *key);
        let slot = if hinted {
            hint
        } else {
            self.find(key, hash, sig)?
        };
        if self.entries[slot as usize].expires <= now_ns {
            self.remove_slot(slot);
            self.stats.expired += 1;
            return None;
        }
        Some(slot)
    }

    #[inline]
    fn miss(&mut self, kind: Kind) -> Track {
        if can_start(kind).is_some() {
            Track::New
        } else {
            self.stats.invalid += 1;
            Track::Invalid
        }
    }

    #[inline(always)]
    fn update(&mut self, slot: u32, src_lo: bool, kind: Kind, now_ns: u64) -> Track {
        let udp_stream_ns = self.udp_stream_ns;
        let e = &mut self.entries[slot as usize];
        let reply = src_lo != (e.flags & F_ORIG_LO != 0);
        // A packet of another protocol class on the same key cannot happen (the protocol
        // is part of the key); ICMP and "other" need no state machine. TCP is tested
        // first (the bulk of traffic): a compare, not a jump table.
        if let Kind::Tcp(idx) = kind {
            // The codes below `CODE_KEEP` are states (the common case: one compare).
            match tcp::step_code(e.state, reply, idx) {
                next @ ..tcp::CODE_KEEP => {
                    e.state = next;
                    e.expires = now_ns.saturating_add(self.timeouts[(next & 15) as usize]);
                }
                tcp::CODE_KEEP => {}
                tcp::CODE_INVALID => {
                    self.stats.invalid += 1;
                    return Track::Invalid;
                }
                tcp::CODE_REOPEN => {
                    self.remove_slot(slot);
                    self.stats.removed += 1;
                    return Track::New;
                }
                unassure => {
                    // An assured connection is over (`TIME_WAIT`, `CLOSE`): evictable
                    // again (`fair`).
                    let next = unassure & 15;
                    e.state = next;
                    e.expires = now_ns.saturating_add(self.timeouts[next as usize]);
                    self.reclass(slot, reply);
                }
            }
        } else {
            // `e.state` is a valid `CtState` (`Udp`, `Icmp` or `Other` here).
            let t = match kind {
                Kind::Udp if reply || e.flags & F_SEEN_REPLY != 0 => udp_stream_ns,
                // The key makes a request in the reply orientation impossible except when
                // id == request type; a reply in the original orientation likewise.
                Kind::IcmpRequest { .. } if reply => {
                    self.stats.invalid += 1;
                    return Track::Invalid;
                }
                Kind::IcmpReply if !reply => {
                    self.stats.invalid += 1;
                    return Track::Invalid;
                }
                _ => self.timeouts[(e.state & 15) as usize],
            };
            e.expires = now_ns.saturating_add(t);
        }
        let e = &self.entries[slot as usize];
        // Assured (a reply seen, off the eviction list): nothing more to do. Otherwise the
        // cold path records the reply and whether the connection is now assured.
        if e.flags & (F_SEEN_REPLY | F_LISTED) != F_SEEN_REPLY {
            self.reclass(slot, reply);
        }
        let e = &self.entries[slot as usize];
        Track::Tracked {
            handle: Handle { slot, gen: e.gen },
            reply,
            epoch: e.epoch,
            cut: e.flags & F_CUT != 0,
            tag: e.tag,
        }
    }
}

/// The first state of a connection started by a packet of this kind, if it may start one.
#[inline]
pub(super) fn can_start(kind: Kind) -> Option<CtState> {
    match kind {
        Kind::Tcp(idx) => tcp::initial(idx),
        Kind::Udp => Some(CtState::Udp),
        Kind::IcmpRequest { .. } => Some(CtState::Icmp),
        Kind::IcmpReply => None,
        Kind::Other => Some(CtState::Other),
    }
}
