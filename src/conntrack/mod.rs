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
//!         // allowed -> ct.commit(zone, &meta, current, tag, now_ns) (the pipeline:
//!         //   ct.commit_probe(&probe, ..), reusing the probe that said New):
//!         //   Err(Full) -> `conntrack-full`, Err(ZoneFull) -> `conntrack-zone-full`,
//!         //   Err(Invalid) -> `invalid-state`
//!     }
//!     Track::Invalid => { /* drop `invalid-state` */ }
//! }
//! ```
//! The pipeline runs `track` in pieces, in its own phases over a burst:
//! [`Conntrack::probe`] (hash + prefetch the bucket, pure), [`Conntrack::prefetch_entry`]
//! (prefetch the entry, pure) and [`Conntrack::track_probe_inline`] (the real lookup and
//! update, in packet order); a frame's second lookup reuses its probe
//! ([`Conntrack::reprobe`]). `Conntrack::track_burst` (the same answers as `track` on each
//! packet in order, memory prefetched ahead) is not the shipped path: tests and the
//! `bench` feature only.
//! Fragments: see `pipeline::fragments` (the pipeline, not conntrack, knows datagrams).
//!
//! # Design (one submodule per concern; each documents its design, measurements and
//! rejected options)
//! * **One lookup per packet.** A packet is reduced to a canonical key (`key.rs`): both
//!   endpoints ordered (smaller `(address, port)` first), protocol, family and zone, 40
//!   bytes. ICMP queries get pseudo ports (requester: the id; responder: the request
//!   type), so echo request and reply (8/0, 13/14, 15/16, 17/18, ICMPv6 128/129, 139/140)
//!   share one key. The entry remembers which side was the original sender.
//! * `table`: the slab of entries and the index of buckets (placement, one bucket for
//!   both zones of a frame, the hash, huge pages).
//! * `probe`: the lookup of one packet (`probe`, `prefetch_entry`, `track_probe`) and
//!   the state update on a hit; performance figures.
//! * `burst`: `track_burst`, the software-pipelined burst lookup (tests and benches).
//! * `commit`: creating entries (`commit`, and `commit_probe` right after a lookup said
//!   `New`), and what happens when the table or a zone is full.
//! * `fair`: fairness between zones: entries per zone (the per-port limit), which entries
//!   are assured, the per-zone lists of the unassured ones, oldest first, and which of
//!   them goes when room is needed.
//! * `expiry`: deadlines, the expiry sweep and explicit removal.
//! * `epoch`: policy epochs and cut flags (re-judgement), entry copies for dumps.
//! * `key`, `tcp`, `huge`: the canonical key, the TCP state machine, the huge-page
//!   allocation.
//!
//! Owns: the connection table and its state machines. May not touch: rules, the
//! classifier, ports or frames (it uses `flow`'s packet types, `wire`'s ICMP message names and `policy`'s
//! [`ConntrackSettings`], nothing else).
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

#[cfg(any(test, feature = "bench"))]
mod burst;
mod commit;
mod epoch;
mod expiry;
mod fair;
mod huge;
mod key;
mod probe;
mod table;
pub mod tcp;
#[cfg(test)]
mod tests;

#[cfg(any(test, feature = "bench"))]
pub use burst::BURST_LOOKAHEAD;
pub use probe::Probe;
pub use tcp::CtState;

use crate::flow::FlowKey;
use crate::policy::ConntrackSettings;
use fair::{Link, ZoneCount, ZONES};
use huge::HugeTable;
use key::KeyHasher;
use table::{Bucket, Entry};

/// Slots examined by [`Conntrack::commit`] when the table is full before it gives up.
pub const RECLAIM_BUDGET: usize = 64;

/// Largest supported capacity (slot indices are `u32`).
pub const MAX_CAPACITY: usize = 1 << 30;

const NS: u64 = 1_000_000_000;

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
    /// The table is full of assured connections (after reclaiming expired entries and
    /// evicting an unassured one, if any could be found).
    Full,
    /// The zone holds its limit of entries ([`ConntrackSettings::per_port_limit`]), all of
    /// them assured connections.
    ZoneFull,
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
    /// Commits refused because the zone held its limit of entries, none of them
    /// evictable.
    pub zone_full: u64,
    /// Entries removed because they expired (on lookup, sweep or reclaim).
    pub expired: u64,
    /// `Invalid` outcomes.
    pub invalid: u64,
    /// `Related` outcomes.
    pub related: u64,
    /// Unassured entries (half-open, closed, unreplied) evicted to make room for a new
    /// connection: in a full table, or in a zone at its limit (those also counted in
    /// `zone_evicted`).
    pub early_drop: u64,
    /// Entries evicted because their zone was at its limit (part of `early_drop`).
    pub zone_evicted: u64,
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
    /// Per slot: the links of the zone's list of unassured entries (`fair`).
    links: HugeTable<Link>,
    /// Per zone (all 65,536): entries, unassured entries, their list's ends.
    zones: Vec<ZoneCount>,
    /// Entries a zone may hold (`per_port_limit`; `u32::MAX` for no limit).
    zone_limit: u32,
    /// One above the highest zone that ever held an entry (what a search of zones scans).
    zones_hi: usize,
    /// The zone with (about) the most unassured entries: evicted from first in a full
    /// table.
    hog: u16,
    /// Unassured entries in every zone.
    listed: usize,
}

impl std::fmt::Debug for Conntrack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conntrack")
            .field("len", &self.len)
            .field("capacity", &self.entries.len())
            .field("buckets", &self.buckets.len())
            .field("stats", &self.stats)
            .field("zone_limit", &self.zone_limit)
            .field("unassured", &self.listed)
            .finish()
    }
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x5eed);
    h.finish()
}

impl Conntrack {
    /// A table for `cfg.capacity` entries (at most [`MAX_CAPACITY`]) with `cfg`'s
    /// timeouts, at most `cfg.per_port_limit` of them per zone, and a random hash seed;
    /// all memory is allocated here. The fragment
    /// settings are the pipeline's (`pipeline::fragments`): not read here.
    pub fn new(cfg: &ConntrackSettings) -> Conntrack {
        Conntrack::with_seed(cfg, random_seed())
    }

    /// [`Conntrack::new`] with a fixed hash seed, for reproducible tests and benches
    /// (never in production: a known seed lets peers aim collisions at one bucket).
    pub fn with_seed(cfg: &ConntrackSettings, seed: u64) -> Conntrack {
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
            hasher: KeyHasher::new(seed),
            timeouts,
            udp_stream_ns: s(cfg.udp_stream_timeout),
            cursor: 0,
            len: 0,
            stats: CtStats::default(),
            links: HugeTable::new(capacity, Link::NONE),
            zones: vec![ZoneCount::EMPTY; ZONES],
            zone_limit: match cfg.per_port_limit {
                0 => u32::MAX,
                n => u32::try_from(n).unwrap_or(u32::MAX),
            },
            zones_hi: 0,
            hog: 0,
            listed: 0,
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

    /// Bytes of memory held by the table (slab, index, free stack, the links and zone
    /// counts of `fair`; the slab, index and links as allocated, rounded up to whole huge
    /// pages when they are that large).
    pub fn memory_bytes(&self) -> usize {
        self.entries.allocated_bytes()
            + self.buckets.allocated_bytes()
            + self.free.capacity() * 4
            + self.links.allocated_bytes()
            + self.zones.capacity() * core::mem::size_of::<ZoneCount>()
    }
}
