//! Fairness between zones: how many entries each zone (a port) holds, which entries are
//! *assured*, and which unassured entry goes first when a new connection needs room.
//!
//! Owns: the per-zone counts ([`ZoneCount`]), the per-zone lists of unassured entries
//! (the [`Link`]s beside the slab and the `F_LISTED` flag), the assured rule for UDP,
//! ICMP and other protocols, and the choice of a victim ([`Conntrack::evict_oldest`],
//! [`Conntrack::evict_for_room`]). May not touch: the index (it removes entries through
//! `table`'s `remove_slot` only), timeouts or policy epochs; TCP's assured states are
//! `tcp`'s ([`tcp::assured_state`]).
//!
//! # Design
//! * **Assured.** A connection is assured once it has shown it is a conversation: TCP in
//!   an assured state ([`tcp::assured_state`]: handshake completed, not over) after a
//!   reply; UDP, ICMP queries and other protocols when a packet follows the first reply
//!   (a query and its one answer, as a flood of DNS queries to a server that answers
//!   them makes, stay unassured). Everything else is unassured: half-open TCP
//!   (`SYN_SENT`, `SYN_SENT2`, `SYN_RECV`), TCP that is over (`TIME_WAIT`, `CLOSE`),
//!   a connection picked up without a reply (a flood of bare ACKs), unreplied UDP and
//!   ICMP. This is Linux's `IPS_ASSURED` with the closing states its early drop also
//!   takes; Linux assures UDP after 2 s of two-way traffic, which needs a timestamp the
//!   64-byte entry has no room for.
//! * **Lists.** Each zone keeps its unassured entries in a doubly linked list through a
//!   side array of links (8 bytes per slot, not in the entry's cache line), oldest first
//!   (the order they became unassured): the oldest unassured entry of a zone is its
//!   list's head, found in O(1), and an entry leaves its list in O(1) when it is
//!   assured or removed. An entry's `F_LISTED` flag says it is on its zone's list.
//! * **Per-zone counts.** `table` counts every entry of a zone on insertion and removal
//!   (expired entries count until they are removed: on lookup, or by the sweep). At its
//!   limit a zone's new connection takes the place of the zone's oldest unassured entry,
//!   or is refused ([`CommitError::ZoneFull`](super::CommitError::ZoneFull)): one compare
//!   in `commit` while under the limit.
//! * **A full table** ([`Conntrack::evict_for_room`]) evicts the oldest unassured entry of
//!   the zone holding the most unassured entries (the `hog`, updated when an entry is
//!   listed, searched again over the zones in use only when its list is empty), so a
//!   flooding port pays for its flood, not the port that wants a new connection.
//! * **Evictions prefetch the next ones.** A zone at its limit (or a full table) under
//!   a flood evicts for every new connection, and an eviction touches three random cache
//!   lines (the entry, its index bucket, its links). The victims are known ahead (the
//!   list, oldest first), so each eviction prefetches the next head's bucket and the
//!   entry and links after it (`prefetch_victims`): measured (#15, perf at 1M entries,
//!   65,536 per port) `remove_slot` went from 41 % of a new-connection flood's samples to
//!   17.5 %, the run from 6,353 samples to 4,904, for ~70 instructions per eviction.
//! * **Hit path.** The entries' packets pay nothing while assured: `probe`'s update tests
//!   the flags it already loads (`F_SEEN_REPLY | F_LISTED` against `F_SEEN_REPLY`) and
//!   the TCP step table marks the few steps that make an assured connection unassured
//!   ([`tcp::CODE_UNASSURE`]); both lead to the cold [`Conntrack::reclass`].
//!
//! # Rejected options
//! * Counting only, refusing at the limit (OVS's zone limits): a flooded port's zone
//!   then refuses its legitimate clients as long as the flood lasts.
//! * A bounded sweep over the slab for an unassured entry of the zone instead of lists:
//!   no memory, but not the oldest, and its cost grows as the zone's share of the table
//!   shrinks (one entry in 256 slots: 256 slots read per new connection).
//! * Per-zone ring buffers of slots: sequential, but their size must be fixed per zone
//!   and stale items wait in them until popped.

use super::probe::prefetch;
use super::table::{F_LISTED, F_SEEN_REPLY};
use super::tcp;
use super::{Conntrack, CtState};

/// Number of zones (zones are `u16`).
pub(super) const ZONES: usize = 1 << 16;

/// No slot.
const NIL: u32 = u32::MAX;

/// A slot's place in its zone's list of unassured entries.
#[derive(Clone, Copy, Debug)]
pub(super) struct Link {
    prev: u32,
    next: u32,
}

impl Link {
    pub(super) const NONE: Link = Link {
        prev: NIL,
        next: NIL,
    };
}

/// One zone's counts and the ends of its list of unassured entries.
#[derive(Clone, Copy, Debug)]
pub(super) struct ZoneCount {
    /// Entries of the zone (live or expired, not yet removed).
    pub(super) entries: u32,
    /// Unassured entries (on the list).
    listed: u32,
    head: u32,
    tail: u32,
}

impl ZoneCount {
    pub(super) const EMPTY: ZoneCount = ZoneCount {
        entries: 0,
        listed: 0,
        head: NIL,
        tail: NIL,
    };
}

impl Conntrack {
    /// Entries of `zone` in this table (expired ones not yet removed included).
    pub fn zone_len(&self, zone: u16) -> usize {
        self.zones[usize::from(zone)].entries as usize
    }

    /// Unassured entries of `zone` (half-open, closed, unreplied: see the module doc).
    pub fn zone_unassured(&self, zone: u16) -> usize {
        self.zones[usize::from(zone)].listed as usize
    }

    /// The entry limit of a zone ([`ConntrackSettings::per_port_limit`](crate::policy::ConntrackSettings::per_port_limit); `None`: no limit).
    pub fn zone_limit(&self) -> Option<usize> {
        (self.zone_limit != u32::MAX).then_some(self.zone_limit as usize)
    }

    /// Whether `zone` holds its limit of entries.
    #[inline(always)]
    pub(super) fn zone_at_limit(&self, zone: u16) -> bool {
        self.zones[usize::from(zone)].entries >= self.zone_limit
    }

    /// Count a new entry of `zone` (called by `table` on insertion).
    #[inline(always)]
    pub(super) fn count_in(&mut self, zone: u16) {
        let z = usize::from(zone);
        self.zones[z].entries += 1;
        if z >= self.zones_hi {
            self.zones_hi = z + 1;
        }
    }

    /// Uncount a removed entry of `zone`, taking it off its list (called by `table` on
    /// removal, before the slot is freed).
    #[inline(always)]
    pub(super) fn count_out(&mut self, slot: u32, zone: u16, flags: u8) {
        let z = &mut self.zones[usize::from(zone)];
        z.entries = z.entries.saturating_sub(1);
        if flags & F_LISTED != 0 {
            self.delist(slot, zone);
        }
    }

    /// Put a new entry (state and flags set) on its zone's list if it is unassured.
    /// Every new connection is: it has seen no reply.
    #[inline]
    pub(super) fn list_new(&mut self, slot: u32) {
        let e = &self.entries[slot as usize];
        if !assured(e.state, e.flags) {
            let zone = e.key.zone();
            self.enlist(slot, zone);
        }
    }

    /// A packet of an unassured entry, or a TCP step that makes an assured one unassured
    /// (state already updated): record a reply (`reply`) and put the entry on, or take
    /// it off, its zone's list. Cold: a connection comes here for its first packets
    /// only, until it is assured.
    #[cold]
    #[inline(never)]
    pub(super) fn reclass(&mut self, slot: u32, reply: bool) {
        let e = &mut self.entries[slot as usize];
        let seen_before = e.flags & F_SEEN_REPLY != 0;
        if reply {
            e.flags |= F_SEEN_REPLY;
        }
        let state = CtState::from_u8(e.state);
        let unassured = if state.is_tcp() {
            e.flags & F_SEEN_REPLY == 0 || !tcp::assured_state(state)
        } else {
            // A packet after the first reply assures UDP, ICMP and other protocols.
            !seen_before
        };
        let (listed, zone) = (e.flags & F_LISTED != 0, e.key.zone());
        if unassured && !listed {
            self.enlist(slot, zone);
        } else if !unassured && listed {
            self.delist(slot, zone);
        }
    }

    /// Remove the oldest unassured entry of `zone` if it has expired by `now_ns`;
    /// whether it did.
    pub(super) fn expire_oldest(&mut self, zone: u16, now_ns: u64) -> bool {
        let head = self.zones[usize::from(zone)].head;
        if head == NIL || self.entries[head as usize].expires > now_ns {
            return false;
        }
        self.remove_slot(head);
        self.prefetch_victims(zone);
        true
    }

    /// Evict the oldest unassured entry of `zone`; `false` if it has none.
    pub(super) fn evict_oldest(&mut self, zone: u16) -> bool {
        let head = self.zones[usize::from(zone)].head;
        if head == NIL {
            return false;
        }
        self.remove_slot(head);
        self.prefetch_victims(zone);
        true
    }

    /// Prefetch what the next evictions from `zone`'s list will touch, two stages ahead
    /// (a table at capacity evicts for every new connection, and each eviction's entry,
    /// bucket and links are random cache lines): the bucket of the new head, whose entry
    /// the previous eviction prefetched, and the entry and links of the one after it.
    /// Only a hint: the list may change before the next eviction.
    #[inline]
    fn prefetch_victims(&self, zone: u16) {
        let head = self.zones[usize::from(zone)].head;
        let (Some(e), Some(l)) = (
            self.entries.get(head as usize),
            self.links.get(head as usize),
        ) else {
            return;
        };
        let (hash, _) = self.loc(&e.key);
        prefetch(&self.buckets[self.primary(hash)]);
        prefetch(self.entries.as_ptr().wrapping_add(l.next as usize));
        prefetch(self.links.as_ptr().wrapping_add(l.next as usize));
    }

    /// The table is full: evict the oldest unassured entry of the zone with the most of
    /// them. `false` if no zone has any.
    pub(super) fn evict_for_room(&mut self) -> bool {
        if self.listed == 0 {
            return false;
        }
        if self.zones[usize::from(self.hog)].listed == 0 {
            // The hog's list ran out: find the zone with the most (zones in use only).
            let best = (0..self.zones_hi).max_by_key(|&z| self.zones[z].listed);
            self.hog = best.map_or(0, |z| z as u16);
        }
        self.evict_oldest(self.hog)
    }

    /// Append `slot` (of `zone`, not listed) to its zone's list.
    fn enlist(&mut self, slot: u32, zone: u16) {
        let zi = usize::from(zone);
        let tail = self.zones[zi].tail;
        self.links[slot as usize] = Link {
            prev: tail,
            next: NIL,
        };
        if tail == NIL {
            self.zones[zi].head = slot;
        } else {
            self.links[tail as usize].next = slot;
        }
        let z = &mut self.zones[zi];
        z.tail = slot;
        z.listed += 1;
        self.listed += 1;
        self.entries[slot as usize].flags |= F_LISTED;
        if zone != self.hog && z.listed > self.zones[usize::from(self.hog)].listed {
            self.hog = zone;
        }
    }

    /// Take `slot` (of `zone`, listed) off its zone's list.
    fn delist(&mut self, slot: u32, zone: u16) {
        let Link { prev, next } = self.links[slot as usize];
        let zi = usize::from(zone);
        if prev == NIL {
            self.zones[zi].head = next;
        } else {
            self.links[prev as usize].next = next;
        }
        if next == NIL {
            self.zones[zi].tail = prev;
        } else {
            self.links[next as usize].prev = prev;
        }
        self.zones[zi].listed -= 1;
        self.listed -= 1;
        self.links[slot as usize] = Link::NONE;
        self.entries[slot as usize].flags &= !F_LISTED;
    }

    /// Check the lists against the entries (tests): every listed entry is on its zone's
    /// list exactly once, in both directions, and the counts add up.
    #[cfg(test)]
    pub(super) fn check_fairness(&self) {
        let mut listed = 0;
        let mut per_zone = vec![0u32; ZONES];
        let mut entries = vec![0u32; ZONES];
        for e in self.entries.iter().filter(|e| e.live()) {
            entries[usize::from(e.key.zone())] += 1;
            if e.flags & F_LISTED != 0 {
                per_zone[usize::from(e.key.zone())] += 1;
                listed += 1;
            }
        }
        assert_eq!(listed, self.listed);
        for (z, zc) in self.zones.iter().enumerate() {
            assert_eq!(zc.entries, entries[z], "zone {z} entries");
            assert_eq!(zc.listed, per_zone[z], "zone {z} listed");
            let (mut n, mut prev, mut at) = (0, NIL, zc.head);
            while at != NIL {
                let e = &self.entries[at as usize];
                assert!(e.live() && e.flags & F_LISTED != 0 && usize::from(e.key.zone()) == z);
                assert_eq!(self.links[at as usize].prev, prev);
                n += 1;
                assert!(n <= zc.listed, "zone {z}: a cycle");
                prev = at;
                at = self.links[at as usize].next;
            }
            assert_eq!(n, zc.listed, "zone {z} list length");
            assert_eq!(zc.tail, prev, "zone {z} tail");
        }
    }
}

/// Whether an entry in `state` with `flags` is assured (see the module doc). A new entry
/// (no reply yet) never is; a copy of an entry (`insert_copy`) that saw a reply is, unless
/// TCP says otherwise (the copy does not say whether a packet followed the reply).
#[inline]
fn assured(state: u8, flags: u8) -> bool {
    flags & F_SEEN_REPLY != 0 && {
        let s = CtState::from_u8(state);
        !s.is_tcp() || tcp::assured_state(s)
    }
}
