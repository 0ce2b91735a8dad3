//! Connection tracking: one fixed-capacity table per worker, entries for many zones
//! (a zone is a port index), TCP/UDP/ICMP state machines, per-state timeouts and the
//! policy-epoch tag of every connection. It knows no rules: the pipeline asks the
//! classifier and tells this module the outcome.
//!
//! # How the pipeline uses it
//! ```text
//! match ct.track(zone, &meta, now_ns) {
//!     Track::Tracked { handle, epoch, cut, tag, .. }
//!   | Track::Related { handle, epoch, cut, tag } => {
//!         // epoch < current: re-judge ct.orig(handle) in direction `tag`, then
//!         //   ct.set_epoch(handle, current, denied)
//!         // cut -> drop `connection-cut`, else accept
//!     }
//!     Track::New => {
//!         // classify `meta.key`; denied -> `egress-denied`/`ingress-denied`, no entry;
//!         // allowed -> ct.commit(zone, &meta, current, tag, now_ns):
//!         //   Err(Full) -> `conntrack-full`, Err(Invalid) -> `invalid-state`
//!     }
//!     Track::Invalid => { /* drop `invalid-state` */ }
//! }
//! ```
//! [`Conntrack::track_burst`] gives the same answers as calling [`Conntrack::track`] on each
//! packet in order, with memory prefetched ahead (use it for whole bursts). A pipeline
//! that runs its own phases can use the pieces: [`Conntrack::probe`] (hash + prefetch the
//! bucket, pure), [`Conntrack::prefetch_entry`] (prefetch the entry, pure) and
//! [`Conntrack::track_probe`] (the real lookup and update, in packet order).
//! Fragments: see `pipeline::fragments` (the pipeline, not conntrack, knows datagrams).
//!
//! # Design
//! * **One lookup per packet.** A packet is reduced to a canonical key (`key.rs`): both
//!   endpoints ordered (smaller `(address, port)` first), protocol, family and zone, 40
//!   bytes. ICMP queries get pseudo ports (requester: the id; responder: the request
//!   type), so echo request and reply (8/0, 13/14, 15/16, 17/18, ICMPv6 128/129, 139/140)
//!   share one key. The entry remembers which side was the original sender.
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
//!   most 2 × 8 re-hashes; counted in [`CtStats::displaced`]); if even that fails the
//!   commit is refused as `Full`. Only index ways move, never slab slots, so a
//!   [`Handle`] (slot + generation) stays valid
//!   until its entry is removed; a stale handle is detected by the generation.
//! * **Bounded memory, no allocation after [`Conntrack::new`].** The table never grows.
//!   When it is full, [`Conntrack::commit`] first reclaims expired entries with bounded
//!   work (the candidate buckets, then a sweep step of [`RECLAIM_BUDGET`] slots), then,
//!   like Linux's `early_drop`, evicts the connection in the new key's candidate buckets
//!   that never saw a reply and expires first (counted in [`CtStats::early_drop`]; an
//!   answered connection is never evicted for a new one), and otherwise refuses with
//!   [`CommitError::Full`] (counted in [`CtStats::full`]).
//! * **Expiry.** Every entry has an absolute deadline (`now + timeout of its state`,
//!   refreshed by each valid packet). An expired entry is treated as absent on lookup
//!   (and removed right there); [`Conntrack::expire`] sweeps a bounded number of slots per
//!   call with a rotating cursor so the pipeline can reclaim a little per burst.
//!   The clock is the caller's (`now_ns`, monotonic nanoseconds; replay uses capture
//!   time).
//! * **Policy epochs.** Each entry carries the policy epoch it was last judged under,
//!   a `cut` flag and an opaque `tag` (the direction it was admitted in). This module
//!   only stores and reports them; [`Conntrack::set_epoch`] records a re-judgement.
//!   Packets of a cut connection still update its state and timeout (as OVS's `ct()`
//!   does before the drop), so a cut entry ages out like any other.
//! * **Hash.** A seeded folded-multiply hash over the five key words, the zone masked
//!   out (random seed per table, so peers cannot aim collisions at one bucket; the zone
//!   comes back in through the signature, see above).
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
//! * **Hit path.** The TCP transition is one load from a table of one-byte codes built
//!   at compile time from the rule function (`tcp.rs`), indexed by the entry's raw state
//!   byte; [`Conntrack::track_probe_inline`] lets a caller with one hot call site (the
//!   pipeline) match the outcome where it is built.
//! * **Huge pages.** The slab and the index are `madvise(MADV_HUGEPAGE)`d before first
//!   touch (Linux): with 4 KiB pages every random lookup in a table of tens of MiB
//!   also walks the page tables. A huge page only backs a whole, aligned 2 MiB range, so
//!   a table of 2 MiB or more gets its own 2 MiB aligned allocation rounded up to whole
//!   huge pages (`huge.rs`); with a plain `Vec` the partial pages at both ends stayed on
//!   4 KiB pages (measured at 1M entries: 73.7 of 80 MiB on huge pages; now all of it:
//!   `AnonHugePages` of the conntrack bench = 388 MiB, exactly its 1M and 4M tables;
//!   worth 2–5% of burst hits at 1M).
//!
//! # Protocol rules
//! * TCP: see [`tcp`] (Linux `tcp_conntracks` without window tracking). With no entry a
//!   SYN (no ACK) or a bare ACK (loose pickup, `nf_conntrack_tcp_loose=1`) may start a
//!   connection; SYN/ACK, FIN, RST, no flags and invalid combinations are `Invalid`.
//! * UDP: any packet may start one; timeout `udp_timeout` until a reply was seen, then
//!   `udp_stream_timeout`.
//! * ICMP/ICMPv6: only query requests (echo, timestamp, information, address mask, node
//!   information) start one; a reply without its request is `Invalid`. Errors (v4 3, 4, 5,
//!   11, 12; v6 1-4) whose quoted packet (`meta.icmp_inner`) belongs to a live entry of
//!   the same zone, either orientation, are `Related` (the entry is not refreshed);
//!   otherwise `Invalid`. Other ICMP types (router advertisement, ND, MLD, ...) are
//!   `Invalid` here: the pipeline lets the control types through before conntrack.
//! * Other protocols: keyed by addresses (and ports when the flow key has them); any
//!   packet may start one; `other_timeout`.
//! * Later fragments (offset > 0) carry no L4 header: `track` says `Invalid`; the pipeline
//!   gives them their first fragment's verdict (`pipeline::fragments`).
//!
//! # Thread safety
//! A `Conntrack` belongs to one worker (`&mut self` everywhere, no interior mutability,
//! no locks). Workers own disjoint tables (flows are steered to workers by the ports
//! they arrive on).
//!
//! # Performance (benches/conntrack.rs; thread CPU time on the shared 2-vCPU KVM build
//! machine (AMD EPYC), other tenants' load while measuring, so figures vary by ±5–10%)
//! Entry 64 bytes, index 8–16 bytes per entry (≈ 80 MiB for 1M, 323 MiB for 4M).
//! M packets/s, one core, `--warm-up-time 2 --measurement-time 5`; ranges over 2–4 runs
//! of the final code, and over 2–6 runs of the code before this round's changes (same
//! session, same machine, runs interleaved) for reference:
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
//! instructions per hit the rest (and the 10k row). `examples/profile_conntrack.rs` runs
//! the burst-hit workload under callgrind (10k entries): 257 instructions per hit (295
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
//! * `hashbrown::HashMap<Key, Entry>`: fast for hits in cache, but offers no stable slot
//!   handle (in-place rehash after many deletions moves entries) and no way to prefetch a
//!   key's group ahead of the probe; at 1M entries every lookup is two dependent cache
//!   misses that a burst cannot overlap.
//! * `orig: FlowKey` in every [`Track::Tracked`]: rebuilding 40 bytes per hit cost ~15%
//!   of the hit rate; [`Conntrack::orig`] gives it on the rare stale-epoch path.
//! * The zone in the bucket hash (as before): the two zones of one frame then hit two
//!   random buckets, a second hash and a second bucket line per frame (the pipeline
//!   measured ~18% of its cycles waiting right after those two prefetches).
//! * A software prefetch to L2 (`T1`) instead of L1: no better (18.7 vs 19.4 M/s).
//! * In the per-packet rolling pipeline (before the groups), buckets prefetched further
//!   ahead than entries (64 vs 16 packets): no better at 1M (18.7 vs 19.0–20.2 M/s); the
//!   prefetches were early enough, the stalls came from the loop's shape (see Bursts).
//! * Group sizes 8 and 32 instead of 16: 25.1–25.9 and 21.0–22.9 M/s at 1M (16: 26.4),
//!   23.0–23.6 and 21.0–21.2 at 4M (16: 23.3–24.7).
//! * Tracking a group before (instead of after) hashing the group two ahead: +3% at 10k,
//!   −3% to −4% at 1M (the bucket prefetches go out later).
//! * Prefetching every signature-matching entry of the bucket (a loop over the match
//!   mask) instead of the first only: a second match is a 16-bit signature collision;
//!   the loop cost ~13 instructions per packet and 2–3% at 1M.
//! * An SSE2 compare of the 40-byte keys (two 16-byte compares and one word): no fewer
//!   instructions per hit overall (259 vs 257) for an extra `unsafe` block.
//! * Two entries per connection (one per direction, as Linux): twice the memory and two
//!   inserts per connection for no gain, since one canonical key needs one lookup.
//! * A timer wheel for expiry: per-entry links cost memory and per-packet list updates;
//!   lazy expiry on lookup plus a budgeted sweep bounds the work just as well.
//! * Full cuckoo hashing (displacement chains of any length) or balanced "two choices"
//!   placement: chains cost unbounded or large work per insert, and balanced placement
//!   puts half the keys in their secondary bucket, so half the hits read two buckets.
//!   Primary-first placement plus one bounded displacement step keeps ~99% of lookups
//!   at one bucket and never fails below full capacity in practice (tested at the
//!   benchmark's 1M and 4M entries).

mod huge;
mod key;
pub mod tcp;
#[cfg(test)]
mod tests;

pub use tcp::CtState;

use crate::flow::{FlowKey, PacketMeta};
use huge::HugeTable;
use key::{Class, CtKey, KeyHasher, Kind, Look};

/// Slots examined by [`Conntrack::commit`] when the table is full before it gives up.
pub const RECLAIM_BUDGET: usize = 64;

/// Packets per group of the [`Conntrack::track_burst`] pipeline: entries are prefetched
/// one group ahead of their use, buckets two groups ahead.
pub const BURST_LOOKAHEAD: usize = 16;

/// Largest supported capacity (slot indices are `u32`).
pub const MAX_CAPACITY: usize = 1 << 30;

const NS: u64 = 1_000_000_000;

/// Connection-tracking configuration (the pipeline builds it from the policy's
/// `ConntrackSettings`; the field names are the same). Timeouts are in seconds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CtConfig {
    /// Maximum number of entries (clamped to `0..=MAX_CAPACITY`).
    pub capacity: usize,
    /// `SYN_SENT`, `SYN_SENT2`, `SYN_RECV`.
    pub tcp_syn_timeout: u64,
    /// `ESTABLISHED`.
    pub tcp_established_timeout: u64,
    /// `FIN_WAIT`, `CLOSE_WAIT`, `LAST_ACK`, `TIME_WAIT`.
    pub tcp_fin_timeout: u64,
    /// `CLOSE` (after a RST).
    pub tcp_close_timeout: u64,
    /// UDP before a reply was seen.
    pub udp_timeout: u64,
    /// UDP after a reply was seen.
    pub udp_stream_timeout: u64,
    /// ICMP queries.
    pub icmp_timeout: u64,
    /// Other protocols.
    pub other_timeout: u64,
    /// Hash seed; `None` draws a random one (use a fixed seed only in tests).
    pub seed: Option<u64>,
}

impl Default for CtConfig {
    fn default() -> Self {
        CtConfig {
            capacity: 262_144,
            tcp_syn_timeout: 120,
            tcp_established_timeout: 86_400,
            tcp_fin_timeout: 120,
            tcp_close_timeout: 10,
            udp_timeout: 30,
            udp_stream_timeout: 120,
            icmp_timeout: 30,
            other_timeout: 600,
            seed: None,
        }
    }
}

/// A reference to one entry, valid until the entry is removed (expiry, reopen,
/// [`Conntrack::remove`], [`Conntrack::remove_zone`]); stale handles are detected.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct Handle {
    slot: u32,
    gen: u32,
}

impl Handle {
    /// The slot index (for debugging output).
    pub fn slot(&self) -> u32 {
        self.slot
    }
}

/// The outcome of [`Conntrack::track`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Track {
    /// A packet of a live entry, valid in its state; state and timeout were updated.
    Tracked {
        handle: Handle,
        /// The packet goes in the reply direction (opposite to the first packet).
        reply: bool,
        /// Policy epoch the connection was last judged under.
        epoch: u64,
        /// The connection was cut by a policy change.
        cut: bool,
        /// The opaque tag given at commit (the direction it was admitted in).
        tag: u8,
    },
    /// An ICMP/ICMPv6 error quoting a packet of a live entry of this zone.
    Related {
        handle: Handle,
        epoch: u64,
        cut: bool,
        tag: u8,
    },
    /// No entry, and the packet may start a connection: judge it, then `commit`.
    New,
    /// No entry and cannot start one, or invalid in the entry's TCP state.
    Invalid,
}

/// Why [`Conntrack::commit`] refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CommitError {
    /// The table is full even after reclaiming expired entries.
    Full,
    /// The packet cannot start a connection (the pipeline should not have asked).
    Invalid,
}

/// Counters (monotonic).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct CtStats {
    /// Lookups that found a live entry (`Tracked`, also when the packet was invalid in
    /// its state).
    pub hits: u64,
    /// Lookups that found no live entry.
    pub misses: u64,
    /// Entries created.
    pub inserts: u64,
    /// Commits refused because the table was full.
    pub full: u64,
    /// Entries removed because they expired (on lookup, sweep or reclaim).
    pub expired: u64,
    /// `Invalid` outcomes.
    pub invalid: u64,
    /// `Related` outcomes.
    pub related: u64,
    /// Unreplied entries evicted to make room for a new connection in a full table.
    pub early_drop: u64,
    /// Entries removed explicitly (remove, remove_zone, TCP reopen).
    pub removed: u64,
    /// Index ways moved to their other bucket to make room (cuckoo steps).
    pub displaced: u64,
}

/// A copy of one entry, for dumps and explain.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CtEntry {
    pub handle: Handle,
    pub zone: u16,
    /// The first packet's key (ICMP queries as the request).
    pub orig: FlowKey,
    pub state: CtState,
    /// A packet in the reply direction was seen.
    pub seen_reply: bool,
    pub epoch: u64,
    pub cut: bool,
    pub tag: u8,
    /// Absolute deadline (ns, caller's clock); the entry is dead from then on.
    pub expires_ns: u64,
}

// Entry flag bits.
const F_ORIG_LO: u8 = 1;
const F_SEEN_REPLY: u8 = 2;
const F_CUT: u8 = 4;

/// One connection: exactly one cache line.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct Entry {
    key: CtKey,
    epoch: u64,
    expires: u64,
    gen: u32,
    /// `CtState as u8`; 0 = free slot.
    state: u8,
    flags: u8,
    tag: u8,
    /// ICMP code of the first packet (to rebuild `orig`).
    code: u8,
}

const _: () = assert!(core::mem::size_of::<Entry>() == 64);

impl Entry {
    const FREE: Entry = Entry {
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
    fn live(&self) -> bool {
        self.state != CtState::Free as u8
    }

    fn orig(&self) -> FlowKey {
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

const WAYS: usize = 8;

/// One index bucket: exactly one cache line. `sig[i] == 0` marks a free way.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct Bucket {
    sig: [u16; WAYS],
    slot: [u32; WAYS],
    /// Number of keys whose primary bucket is this one but which live in their secondary.
    spilled: u32,
}

const _: () = assert!(core::mem::size_of::<Bucket>() == 64);

impl Bucket {
    const EMPTY: Bucket = Bucket {
        sig: [0; WAYS],
        slot: [0; WAYS],
        spilled: 0,
    };

    /// Bit i set when way i holds signature `sig` (`sig == 0`: the free ways).
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn matches(&self, sig: u16) -> u32 {
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
    fn matches(&self, sig: u16) -> u32 {
        let mut m = 0u32;
        for (i, s) in self.sig.iter().enumerate() {
            m |= u32::from(*s == sig) << i;
        }
        m
    }
}

/// The result of hashing a packet: everything [`Conntrack::track_probe`] needs. Cheap to
/// compute; see [`Conntrack::probe`].
#[derive(Clone, Copy, Debug)]
pub struct Probe {
    class: Class,
    /// Zone-less hash of the key (selects the buckets).
    hash: u64,
    /// Signature of the key in its zone.
    sig: u16,
    /// Slot whose signature matched in the prefetch stage ([`NO_HINT`] if none): tried
    /// first (and verified by key) before scanning the bucket again.
    hint: u32,
}

const _: () = assert!(core::mem::size_of::<Probe>() == 64);
const _: () = assert!(core::mem::size_of::<Option<Probe>>() == 64);

const NO_HINT: u32 = u32::MAX;

impl Probe {
    /// A placeholder (an untrackable packet).
    const NONE: Probe = Probe {
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
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint that never faults, whatever the address; SSE is part of
    // the x86_64 baseline, so the instruction exists on every x86_64 CPU.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Connection-tracking table of one worker. See the module doc.
pub struct Conntrack {
    entries: HugeTable<Entry>,
    buckets: HugeTable<Bucket>,
    /// `buckets.len() - 1` (power of two).
    mask: usize,
    /// Stack of free slot indices.
    free: Vec<u32>,
    hasher: KeyHasher,
    /// Timeout per `CtState as u8` (ns); UDP stream separately.
    timeouts: [u64; 16],
    udp_stream_ns: u64,
    cursor: usize,
    len: usize,
    stats: CtStats,
}

impl std::fmt::Debug for Conntrack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conntrack")
            .field("len", &self.len)
            .field("capacity", &self.entries.len())
            .field("buckets", &self.buckets.len())
            .field("stats", &self.stats)
            .finish()
    }
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x5eed);
    h.finish()
}

/// The signature of a key in `zone`, from its zone-less hash: the hash's top 16 bits
/// XOR the zone times an odd constant (a bijection of the zone), so the entries of one
/// tuple in different zones, which share their primary bucket, get different signatures.
/// Never 0 (0 marks a free way).
#[inline(always)]
fn sig_of(hash: u64, zone: u16) -> u16 {
    let s = (hash >> 48) as u16 ^ zone.wrapping_mul(0x9e37);
    if s == 0 {
        1
    } else {
        s
    }
}

impl Conntrack {
    /// A table for `cfg.capacity` entries; all memory is allocated here.
    pub fn new(cfg: CtConfig) -> Conntrack {
        let capacity = cfg.capacity.min(MAX_CAPACITY);
        let nbuckets = capacity.div_ceil(4).next_power_of_two().max(2);
        let s = |secs: u64| secs.saturating_mul(NS);
        let mut timeouts = [0u64; 16];
        for st in [
            CtState::TcpSynSent,
            CtState::TcpSynSent2,
            CtState::TcpSynRecv,
        ] {
            timeouts[st as usize] = s(cfg.tcp_syn_timeout);
        }
        timeouts[CtState::TcpEstablished as usize] = s(cfg.tcp_established_timeout);
        for st in [
            CtState::TcpFinWait,
            CtState::TcpCloseWait,
            CtState::TcpLastAck,
            CtState::TcpTimeWait,
        ] {
            timeouts[st as usize] = s(cfg.tcp_fin_timeout);
        }
        timeouts[CtState::TcpClose as usize] = s(cfg.tcp_close_timeout);
        timeouts[CtState::Udp as usize] = s(cfg.udp_timeout);
        timeouts[CtState::Icmp as usize] = s(cfg.icmp_timeout);
        timeouts[CtState::Other as usize] = s(cfg.other_timeout);
        // Free stack popped from the end: hand out low slots first (denser sweeps).
        let free: Vec<u32> = (0..capacity as u32).rev().collect();
        Conntrack {
            entries: HugeTable::new(capacity, Entry::FREE),
            buckets: HugeTable::new(nbuckets, Bucket::EMPTY),
            mask: nbuckets - 1,
            free,
            hasher: KeyHasher::new(cfg.seed.unwrap_or_else(random_seed)),
            timeouts,
            udp_stream_ns: s(cfg.udp_stream_timeout),
            cursor: 0,
            len: 0,
            stats: CtStats::default(),
        }
    }

    /// Number of entries in the table (including expired ones not yet swept).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Maximum number of entries.
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Counters.
    pub fn stats(&self) -> CtStats {
        self.stats
    }

    /// Bytes of memory held by the table (slab, index, free stack; the slab and index
    /// as allocated, rounded up to whole huge pages when they are that large).
    pub fn memory_bytes(&self) -> usize {
        self.entries.allocated_bytes() + self.buckets.allocated_bytes() + self.free.capacity() * 4
    }

    #[inline(always)]
    fn primary(&self, hash: u64) -> usize {
        hash as usize & self.mask
    }

    /// The secondary bucket depends on the signature (so on the zone): the entries of a
    /// tuple seen in many zones (a flooded frame) spill to different buckets.
    #[inline(always)]
    fn secondary(&self, hash: u64, sig: u16) -> usize {
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
    fn loc(&self, key: &CtKey) -> (u64, u16) {
        let hash = self.hasher.hash(key);
        (hash, sig_of(hash, key.zone()))
    }

    /// Slot of `key`, live or expired.
    #[inline(always)]
    fn find(&self, key: &CtKey, hash: u64, sig: u16) -> Option<u32> {
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
    fn remove_slot(&mut self, slot: u32) {
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
        if let Some(e) = self.entries.get_mut(slot as usize) {
            e.state = CtState::Free as u8;
        }
        self.free.push(slot);
        self.len -= 1;
    }

    /// Index a new entry; `None` when no slot is free or no way can be made free.
    fn insert(&mut self, key: CtKey, hash: u64, sig: u16) -> Option<u32> {
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
        self.len += 1;
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

    /// Remove the expired entries among the two candidate buckets of `hash`.
    fn reclaim_buckets(&mut self, hash: u64, sig: u16, now_ns: u64) {
        let (slots, n) = self.candidate_slots(hash, sig);
        for &slot in &slots[..n] {
            if self
                .entries
                .get(slot as usize)
                .is_some_and(|e| e.live() && e.expires <= now_ns)
            {
                self.remove_slot(slot);
                self.stats.expired += 1;
            }
        }
    }

    /// The slots indexed in the two candidate buckets of `hash` (copied out, so the
    /// caller may remove entries while going through them).
    fn candidate_slots(&self, hash: u64, sig: u16) -> ([u32; 2 * WAYS], usize) {
        let mut out = [0u32; 2 * WAYS];
        let mut n = 0;
        for b in [self.primary(hash), self.secondary(hash, sig)] {
            let bucket = &self.buckets[b];
            for w in 0..WAYS {
                if bucket.sig[w] != 0 {
                    out[n] = bucket.slot[w];
                    n += 1;
                }
            }
        }
        (out, n)
    }

    /// The table is full of live entries: like Linux's `early_drop`, make room by evicting
    /// the oldest-expiring connection that never saw a reply (a half-open TCP attempt, a
    /// UDP or ICMP flow nobody answered) among the new key's two candidate buckets.
    /// Established connections are never evicted for a new one. Returns whether an entry
    /// was evicted.
    fn early_drop(&mut self, hash: u64, sig: u16) -> bool {
        let mut victim: Option<(u64, u32)> = None;
        let (slots, n) = self.candidate_slots(hash, sig);
        for &slot in &slots[..n] {
            if let Some(e) = self.entries.get(slot as usize) {
                if e.live()
                    && e.flags & F_SEEN_REPLY == 0
                    && victim.is_none_or(|(exp, _)| e.expires < exp)
                {
                    victim = Some((e.expires, slot));
                }
            }
        }
        match victim {
            Some((_, slot)) => {
                self.remove_slot(slot);
                true
            }
            None => false,
        }
    }

    #[inline]
    fn handle_of(&self, slot: u32) -> Handle {
        let gen = self.entries.get(slot as usize).map_or(0, |e| e.gen);
        Handle { slot, gen }
    }

    #[inline]
    fn entry(&self, h: Handle) -> Option<&Entry> {
        self.entries
            .get(h.slot as usize)
            .filter(|e| e.live() && e.gen == h.gen)
    }

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
    fn lookup_live(
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
                _ => {
                    // `CODE_REOPEN`.
                    self.remove_slot(slot);
                    self.stats.removed += 1;
                    return Track::New;
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
        if reply {
            e.flags |= F_SEEN_REPLY;
        }
        Track::Tracked {
            handle: Handle { slot, gen: e.gen },
            reply,
            epoch: e.epoch,
            cut: e.flags & F_CUT != 0,
            tag: e.tag,
        }
    }

    /// [`Conntrack::track`] for a burst: `out[i]` is the outcome of `pkts[i]` (zone, meta),
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

    /// Create the entry for the first packet of a connection that the pipeline allowed,
    /// judged under policy `epoch`, admitted in direction `tag` (opaque here). If a live
    /// entry for it already exists (e.g. two first packets in one burst), returns that
    /// entry's handle unchanged.
    pub fn commit(
        &mut self,
        zone: u16,
        meta: &PacketMeta,
        epoch: u64,
        tag: u8,
        now_ns: u64,
    ) -> Result<Handle, CommitError> {
        let Class {
            key,
            look: Look::Conn,
            src_lo,
            kind,
        } = key::classify(zone, meta)
        else {
            return Err(CommitError::Invalid);
        };
        let Some(state) = can_start(kind) else {
            return Err(CommitError::Invalid);
        };
        let (hash, sig) = self.loc(&key);
        if let Some(slot) = self.lookup_live(&key, hash, sig, NO_HINT, now_ns) {
            return Ok(self.handle_of(slot));
        }
        let slot = match self.insert(key, hash, sig) {
            Some(s) => s,
            None => {
                self.reclaim_buckets(hash, sig, now_ns);
                if self.free.is_empty() {
                    self.expire(now_ns, RECLAIM_BUDGET);
                }
                if self.free.is_empty() && self.early_drop(hash, sig) {
                    self.stats.early_drop += 1;
                }
                match self.insert(key, hash, sig) {
                    Some(s) => s,
                    None => {
                        self.stats.full += 1;
                        return Err(CommitError::Full);
                    }
                }
            }
        };
        let timeout = self.timeouts[state as usize];
        let e = &mut self.entries[slot as usize];
        e.epoch = epoch;
        e.expires = now_ns.saturating_add(timeout);
        e.state = state as u8;
        e.flags = if src_lo { F_ORIG_LO } else { 0 };
        e.tag = tag;
        e.code = match kind {
            Kind::IcmpRequest { code } => code,
            _ => 0,
        };
        self.stats.inserts += 1;
        Ok(Handle { slot, gen: e.gen })
    }

    /// Record a re-judgement: the entry is now judged under `epoch`, cut or not.
    /// Returns `false` for a stale handle.
    pub fn set_epoch(&mut self, handle: Handle, epoch: u64, cut: bool) -> bool {
        match self.entries.get_mut(handle.slot as usize) {
            Some(e) if e.live() && e.gen == handle.gen => {
                e.epoch = epoch;
                if cut {
                    e.flags |= F_CUT;
                } else {
                    e.flags &= !F_CUT;
                }
                true
            }
            _ => false,
        }
    }

    /// The first packet's key of the connection behind `handle` (ICMP queries as the
    /// request), to re-judge it after a policy change; `None` if the handle is stale.
    /// Not part of [`Track`] because only the rare stale-epoch path needs it.
    #[inline]
    pub fn orig(&self, handle: Handle) -> Option<FlowKey> {
        self.entry(handle).map(Entry::orig)
    }

    /// A copy of the entry behind `handle` (expired or not), `None` if stale.
    pub fn get(&self, handle: Handle) -> Option<CtEntry> {
        self.entry(handle).map(|e| view(handle, e))
    }

    /// Remove the entry behind `handle`; `false` if stale.
    pub fn remove(&mut self, handle: Handle) -> bool {
        if self.entry(handle).is_none() {
            return false;
        }
        self.remove_slot(handle.slot);
        self.stats.removed += 1;
        true
    }

    /// Sweep up to `budget` slots from a rotating cursor, removing expired entries;
    /// returns how many were removed. Call with a small budget once per burst.
    pub fn expire(&mut self, now_ns: u64, budget: usize) -> usize {
        let cap = self.entries.len();
        if cap == 0 || self.len == 0 {
            return 0;
        }
        let mut removed = 0;
        for _ in 0..budget.min(cap) {
            let slot = self.cursor;
            self.cursor = if slot + 1 == cap { 0 } else { slot + 1 };
            let e = &self.entries[slot];
            if e.live() && e.expires <= now_ns {
                self.remove_slot(slot as u32);
                removed += 1;
            }
        }
        self.stats.expired += removed as u64;
        removed
    }

    /// Remove every entry of `zone` (port deleted); returns how many. O(capacity).
    pub fn remove_zone(&mut self, zone: u16) -> usize {
        let mut n = 0;
        for slot in 0..self.entries.len() {
            let e = &self.entries[slot];
            if e.live() && e.key.zone() == zone {
                self.remove_slot(slot as u32);
                n += 1;
            }
        }
        self.stats.removed += n as u64;
        n
    }

    /// Remove every entry.
    pub fn clear(&mut self) {
        for slot in 0..self.entries.len() {
            if self.entries[slot].live() {
                self.remove_slot(slot as u32);
                self.stats.removed += 1;
            }
        }
    }

    /// Every entry in the table (including expired ones not yet swept: compare
    /// `expires_ns` with your clock), in slot order. For dumps and explain; O(capacity).
    pub fn iter(&self) -> impl Iterator<Item = CtEntry> + '_ {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.live())
            .map(|(i, e)| {
                view(
                    Handle {
                        slot: i as u32,
                        gen: e.gen,
                    },
                    e,
                )
            })
    }
}

fn view(handle: Handle, e: &Entry) -> CtEntry {
    CtEntry {
        handle,
        zone: e.key.zone(),
        orig: e.orig(),
        state: CtState::from_u8(e.state),
        seen_reply: e.flags & F_SEEN_REPLY != 0,
        epoch: e.epoch,
        cut: e.flags & F_CUT != 0,
        tag: e.tag,
        expires_ns: e.expires,
    }
}

#[inline]
fn free_way(b: &Bucket) -> Option<usize> {
    match b.matches(0) {
        0 => None,
        m => Some(m.trailing_zeros() as usize),
    }
}

/// The first state of a connection started by a packet of this kind, if it may start one.
#[inline]
fn can_start(kind: Kind) -> Option<CtState> {
    match kind {
        Kind::Tcp(idx) => tcp::initial(idx),
        Kind::Udp => Some(CtState::Udp),
        Kind::IcmpRequest { .. } => Some(CtState::Icmp),
        Kind::IcmpReply => None,
        Kind::Other => Some(CtState::Other),
    }
}
