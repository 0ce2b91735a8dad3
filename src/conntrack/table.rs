//! The slab of entries and the index of buckets that maps keys to slots: placement,
//! lookup by key, insertion with one bounded cuckoo step, unlinking.
//!
//! Owns: the memory layout of the table (`Entry`, `Bucket`) and the index invariants.
//! May not touch: protocol state, timeouts or policy epochs (callers set the entry's
//! fields after `insert`). Tells `fair` of every insertion and removal (per-zone counts,
//! the lists of unassured entries).
//!
//! # Design
//! * **Storage.** Entries live in a slab of `capacity` cache-line sized slots (64 bytes,
//!   asserted), allocated once. An index of 64-byte buckets (8 × 16-bit signature +
//!   8 × 32-bit slot index) maps keys to slots; each key has two candidate buckets
//!   (primary and secondary) and lives in the first with a free way. The index has
//!   `≥ capacity / 4` buckets (power of two), i.e. at most 50% of the ways are used when
//!   the slab is full, so the secondary bucket is rarely needed (a per-bucket spill
//!   counter lets a lookup skip it when nothing spilled). A bucket's eight signatures
//!   are compared in one SSE2 operation (x86_64 baseline; a portable loop elsewhere).
//! * **One bucket for both zones of a frame.** A frame is tracked twice, at its sending
//!   port's zone and at its receiving port's: the same tuple in two zones. The bucket
//!   index comes from the hash of the key WITHOUT its zone, so both entries of a
//!   connection share their primary bucket: the pipeline hashes once per frame and
//!   fetches one bucket line. The zone is mixed into the 16-bit signature (the hash's
//!   top bits XOR the zone times an odd constant: a bijection, so the two entries'
//!   signatures differ) and into the choice of the secondary bucket (derived from the
//!   signature), so a tuple present in many zones (a flooded frame judged at every
//!   port) fills its shared primary bucket and then spreads over per-zone secondary
//!   buckets instead of being refused. The price: the two entries of a connection
//!   compete for the same primary bucket, so more keys spill to their secondary bucket
//!   as the table fills (both are still one bucket each; tested to full capacity). Both candidates full is NOT negligible at a million entries (measured:
//!   the first failure at 34% way occupancy), so an insertion then makes room with one
//!   bounded cuckoo step: a key of a full candidate moves to its own other bucket (at
//!   most 2 × 8 re-hashes; counted in [`CtStats::displaced`](super::CtStats::displaced)); if even that fails the
//!   commit is refused as `Full`. Only index ways move, never slab slots, so a
//!   [`Handle`] (slot + generation) stays valid
//!   until its entry is removed; a stale handle is detected by the generation.
//! * **Hash.** A seeded folded-multiply hash over the five key words, the zone masked
//!   out (random seed per table, so peers cannot aim collisions at one bucket; the zone
//!   comes back in through the signature, see above).
//! * **Huge pages.** The slab and the index are `madvise(MADV_HUGEPAGE)`d before first
//!   touch (Linux): with 4 KiB pages every random lookup in a table of tens of MiB
//!   also walks the page tables. A huge page only backs a whole, aligned 2 MiB range, so
//!   a table of 2 MiB or more gets its own 2 MiB aligned allocation rounded up to whole
//!   huge pages (`huge.rs`); with a plain `Vec` the partial pages at both ends stayed on
//!   4 KiB pages (measured at 1M entries: 73.7 of 80 MiB on huge pages; now all of it:
//!   `AnonHugePages` of the conntrack bench = 388 MiB, exactly its 1M and 4M tables;
//!   worth 2–5% of burst hits at 1M).
//!
//! # Rejected options
//! * `hashbrown::HashMap<Key, Entry>`: fast for hits in cache, but offers no stable slot
//!   handle (in-place rehash after many deletions moves entries) and no way to prefetch a
//!   key's group ahead of the probe; at 1M entries every lookup is two dependent cache
//!   misses that a burst cannot overlap.
//! * The zone in the bucket hash (as before): the two zones of one frame then hit two
//!   random buckets, a second hash and a second bucket line per frame (the pipeline
//!   measured ~18% of its cycles waiting right after those two prefetches).
//! * Two entries per connection (one per direction, as Linux): twice the memory and two
//!   inserts per connection for no gain, since one canonical key needs one lookup.
//! * Full cuckoo hashing (displacement chains of any length) or balanced "two choices"
//!   placement: chains cost unbounded or large work per insert, and balanced placement
//!   puts half the keys in their secondary bucket, so half the hits read two buckets.
//!   Primary-first placement plus one bounded displacement step keeps ~99% of lookups
//!   at one bucket and never fails below full capacity in practice (tested at the
//!   benchmark's 1M and 4M entries).

use super::key::CtKey;
use super::{Conntrack, CtState, Handle};
use crate::flow::FlowKey;

// Entry flag bits.
pub(super) const F_ORIG_LO: u8 = 1;
pub(super) const F_SEEN_REPLY: u8 = 2;
pub(super) const F_CUT: u8 = 4;
/// On its zone's list of unassured entries (`fair`).
pub(super) const F_LISTED: u8 = 8;

/// One connection: exactly one cache line.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub(super) struct Entry {
    pub(super) key: CtKey,
    pub(super) epoch: u64,
    pub(super) expires: u64,
    pub(super) gen: u32,
    /// `CtState as u8`; 0 = free slot.
    pub(super) state: u8,
    pub(super) flags: u8,
    pub(super) tag: u8,
    /// ICMP code of the first packet (to rebuild `orig`).
    pub(super) code: u8,
}

const _: () = assert!(core::mem::size_of::<Entry>() == 64);

impl Entry {
    pub(super) const FREE: Entry = Entry {
        key: CtKey([0; 5]),
        epoch: 0,
        expires: 0,
        gen: 0,
        state: 0,
        flags: 0,
        tag: 0,
        code: 0,
    };

    #[inline]
    pub(super) fn live(&self) -> bool {
        self.state != CtState::Free as u8
    }

    pub(super) fn orig(&self) -> FlowKey {
        let p = self.key.parts();
        let (src, sport, dst, dport) = if self.flags & F_ORIG_LO != 0 {
            (p.lo, p.lo_port, p.hi, p.hi_port)
        } else {
            (p.hi, p.hi_port, p.lo, p.lo_port)
        };
        let dport = if self.state == CtState::Icmp as u8 {
            (dport << 8) | u16::from(self.code)
        } else {
            dport
        };
        FlowKey {
            src,
            dst,
            sport,
            dport,
            proto: p.proto,
            family: p.family,
            _pad: [0; 2],
        }
    }
}

pub(super) const WAYS: usize = 8;

/// One index bucket: exactly one cache line. `sig[i] == 0` marks a free way.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub(super) struct Bucket {
    pub(super) sig: [u16; WAYS],
    pub(super) slot: [u32; WAYS],
    /// Number of keys whose primary bucket is this one but which live in their secondary.
    pub(super) spilled: u32,
}

const _: () = assert!(core::mem::size_of::<Bucket>() == 64);

impl Bucket {
    pub(super) const EMPTY: Bucket = Bucket {
        sig: [0; WAYS],
        slot: [0; WAYS],
        spilled: 0,
    };

    /// Bit i set when way i holds signature `sig` (`sig == 0`: the free ways).
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    pub(super) fn matches(&self, sig: u16) -> u32 {
        use core::arch::x86_64::{
            __m128i, _mm_cmpeq_epi16, _mm_loadu_si128, _mm_movemask_epi8, _mm_packs_epi16,
            _mm_set1_epi16, _mm_setzero_si128,
        };
        // Eight 16-bit lanes compare to all-ones/zero, pack (saturating) to eight bytes,
        // and the byte mask's low 8 bits are the ways.
        // SAFETY: SSE2 is part of the x86_64 baseline, so these instructions exist on every
        // CPU this code runs on; the load reads `self.sig`, 8 × u16 = 16 readable bytes,
        // and `_mm_loadu_si128` has no alignment requirement.
        unsafe {
            let ways = _mm_loadu_si128(self.sig.as_ptr().cast::<__m128i>());
            let eq = _mm_cmpeq_epi16(ways, _mm_set1_epi16(sig as i16));
            _mm_movemask_epi8(_mm_packs_epi16(eq, _mm_setzero_si128())) as u32
        }
    }

    /// Bit i set when way i holds signature `sig` (`sig == 0`: the free ways).
    #[cfg(not(target_arch = "x86_64"))]
    #[inline(always)]
    pub(super) fn matches(&self, sig: u16) -> u32 {
        let mut m = 0u32;
        for (i, s) in self.sig.iter().enumerate() {
            m |= u32::from(*s == sig) << i;
        }
        m
    }
}

/// The signature of a key in `zone`, from its zone-less hash: the hash's top 16 bits
/// XOR the zone times an odd constant (a bijection of the zone), so the entries of one
/// tuple in different zones, which share their primary bucket, get different signatures.
/// Never 0 (0 marks a free way).
#[inline(always)]
pub(super) fn sig_of(hash: u64, zone: u16) -> u16 {
    let s = (hash >> 48) as u16 ^ zone.wrapping_mul(0x9e37);
    if s == 0 {
        1
    } else {
        s
    }
}

impl Conntrack {
    #[inline(always)]
    pub(super) fn primary(&self, hash: u64) -> usize {
        hash as usize & self.mask
    }

    /// The secondary bucket depends on the signature (so on the zone): the entries of a
    /// tuple seen in many zones (a flooded frame) spill to different buckets.
    #[inline(always)]
    pub(super) fn secondary(&self, hash: u64, sig: u16) -> usize {
        let p = self.primary(hash);
        let s = ((hash >> 24) as usize ^ usize::from(sig).wrapping_mul(0x9e37_79b9)) & self.mask;
        if s == p {
            p ^ 1
        } else {
            s
        }
    }

    #[inline(always)]
    fn find_in(&self, b: usize, key: &CtKey, sig: u16) -> Option<u32> {
        let bucket = &self.buckets[b];
        let mut m = bucket.matches(sig);
        while m != 0 {
            let way = m.trailing_zeros() as usize;
            m &= m - 1;
            let slot = bucket.slot[way];
            if let Some(e) = self.entries.get(slot as usize) {
                if e.key == *key {
                    return Some(slot);
                }
            }
        }
        None
    }

    /// Zone-less hash and signature of `key`.
    #[inline(always)]
    pub(super) fn loc(&self, key: &CtKey) -> (u64, u16) {
        let hash = self.hasher.hash(key);
        (hash, sig_of(hash, key.zone()))
    }

    /// Slot of `key`, live or expired.
    #[inline(always)]
    pub(super) fn find(&self, key: &CtKey, hash: u64, sig: u16) -> Option<u32> {
        let p = self.primary(hash);
        if let Some(s) = self.find_in(p, key, sig) {
            return Some(s);
        }
        if self.buckets[p].spilled == 0 {
            return None;
        }
        self.find_in(self.secondary(hash, sig), key, sig)
    }

    /// Unlink slot `slot` (must be live) from the index and free it.
    pub(super) fn remove_slot(&mut self, slot: u32) {
        let Some(e) = self.entries.get(slot as usize) else {
            return;
        };
        if !e.live() {
            return;
        }
        let (hash, sig) = self.loc(&e.key);
        let p = self.primary(hash);
        let mut done = false;
        for (b, spill) in [(p, false), (self.secondary(hash, sig), true)] {
            let bucket = &mut self.buckets[b];
            for w in 0..WAYS {
                if bucket.sig[w] == sig && bucket.slot[w] == slot {
                    bucket.sig[w] = 0;
                    done = true;
                    break;
                }
            }
            if done {
                if spill {
                    let pb = &mut self.buckets[p];
                    pb.spilled = pb.spilled.saturating_sub(1);
                }
                break;
            }
        }
        debug_assert!(done, "live entry missing from the index");
        let e = &self.entries[slot as usize];
        let (zone, flags) = (e.key.zone(), e.flags);
        self.count_out(slot, zone, flags);
        if let Some(e) = self.entries.get_mut(slot as usize) {
            e.state = CtState::Free as u8;
            e.flags = 0;
        }
        self.free.push(slot);
        self.len -= 1;
    }

    /// Index a new entry; `None` when no slot is free or no way can be made free.
    pub(super) fn insert(&mut self, key: CtKey, hash: u64, sig: u16) -> Option<u32> {
        let slot = *self.free.last()?;
        let p = self.primary(hash);
        let s = self.secondary(hash, sig);
        let (b, way) = if let Some(w) = free_way(&self.buckets[p]) {
            (p, w)
        } else if let Some(w) = free_way(&self.buckets[s]) {
            self.buckets[p].spilled += 1;
            (s, w)
        } else if let Some(w) = self.displace(p) {
            (p, w)
        } else if let Some(w) = self.displace(s) {
            self.buckets[p].spilled += 1;
            (s, w)
        } else {
            return None;
        };
        self.free.pop();
        let bucket = &mut self.buckets[b];
        bucket.sig[way] = sig;
        bucket.slot[way] = slot;
        let e = &mut self.entries[slot as usize];
        e.key = key;
        e.gen = e.gen.wrapping_add(1);
        e.flags = 0;
        self.len += 1;
        self.count_in(key.zone());
        Some(slot)
    }

    /// Free a way of the full bucket `b` by moving one of its keys to that key's other
    /// candidate bucket (one cuckoo step, at most `WAYS` re-hashes). Only the index way
    /// moves; the slab slot (and so every handle) stays put.
    fn displace(&mut self, b: usize) -> Option<usize> {
        for w in 0..WAYS {
            let slot = self.buckets[b].slot[w];
            let Some(e) = self.entries.get(slot as usize) else {
                continue;
            };
            let (h, sig) = self.loc(&e.key);
            let (p, s) = (self.primary(h), self.secondary(h, sig));
            let alt = if b == p { s } else { p };
            let Some(aw) = free_way(&self.buckets[alt]) else {
                continue;
            };
            self.buckets[alt].sig[aw] = sig;
            self.buckets[alt].slot[aw] = slot;
            self.buckets[b].sig[w] = 0;
            if alt == s {
                self.buckets[p].spilled += 1;
            } else {
                let pb = &mut self.buckets[p];
                pb.spilled = pb.spilled.saturating_sub(1);
            }
            self.stats.displaced += 1;
            return Some(w);
        }
        None
    }
    #[inline]
    pub(super) fn handle_of(&self, slot: u32) -> Handle {
        let gen = self.entries.get(slot as usize).map_or(0, |e| e.gen);
        Handle { slot, gen }
    }

    #[inline]
    pub(super) fn entry(&self, h: Handle) -> Option<&Entry> {
        self.entries
            .get(h.slot as usize)
            .filter(|e| e.live() && e.gen == h.gen)
    }
}

#[inline]
pub(super) fn free_way(b: &Bucket) -> Option<usize> {
    match b.matches(0) {
        0 => None,
        m => Some(m.trailing_zeros() as usize),
    }
}
