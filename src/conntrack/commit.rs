//! Creating an entry for the first packet of an allowed connection, and the policy
//! when a zone is at its limit or the table is full: reclaim expired entries, then evict
//! an unassured one.
//!
//! Owns: `commit` and the full-zone and full-table policies. May not touch: the lookup
//! path; which entries are unassured and which goes first is `fair`'s.
//!
//! # Design
//! * **Bounded memory, no allocation after [`Conntrack::new`].** The table never grows.
//! * **A zone at its limit** (`per_port_limit` entries): the new connection takes the
//!   place of the zone's oldest unassured entry (half-open, closed, unreplied; counted in
//!   [`CtStats::zone_evicted`](super::CtStats::zone_evicted) and `early_drop`), or is refused with
//!   [`CommitError::ZoneFull`] (counted in [`CtStats::zone_full`](super::CtStats::zone_full)) when every
//!   entry of the zone is assured. Under the limit this costs one compare.
//! * **A full table**: [`Conntrack::commit`] first reclaims expired entries with bounded
//!   work (the candidate buckets, then a sweep step of [`RECLAIM_BUDGET`] slots), then
//!   evicts the oldest unassured entry of the zone holding the most of them (`fair`), so
//!   that a flood's own entries go, not another port's; if the new key's two candidate
//!   buckets are still full, it evicts, like Linux's `early_drop`, the unassured entry
//!   among them that expires first (counted in [`CtStats::early_drop`](super::CtStats::early_drop); an
//!   assured connection is never evicted for a new one), and otherwise refuses with
//!   [`CommitError::Full`] (counted in [`CtStats::full`](super::CtStats::full)).
//! * **Timeouts are not shortened under pressure** (Linux does not either, beyond its
//!   early drop): unassured entries are evicted first whatever their timeout, so a flood
//!   of them never keeps a new connection out (`tests/flood.rs`).

use super::key::{self, Class, CtKey, Kind, Look};
use super::probe::{can_start, Probe, NO_HINT};
use super::table::{F_LISTED, F_ORIG_LO, WAYS};
use super::{CommitError, Conntrack, CtState, Handle, RECLAIM_BUDGET};
use crate::flow::PacketMeta;

impl Conntrack {
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
        let class = key::classify(zone, meta);
        let (Look::Conn, Some(state)) = (class.look, can_start(class.kind)) else {
            return Err(CommitError::Invalid);
        };
        let (hash, sig) = self.loc(&class.key);
        if let Some(slot) = self.lookup_live(&class.key, hash, sig, NO_HINT, now_ns) {
            return Ok(self.handle_of(slot));
        }
        self.commit_absent(&class, hash, sig, state, epoch, tag, now_ns)
    }

    /// [`Conntrack::commit`] for the packet whose [`Conntrack::track_probe`] (or
    /// `track_probe_inline`) with `probe` has just answered [`Track::New`](super::Track::New),
    /// the table unchanged since: reuses the probe's classification and hash, and skips
    /// the lookup (that answer says the key has no live entry). The pipeline's path; same
    /// table and result as `commit` on the same packet (`tests::commit_probe`).
    #[inline]
    pub fn commit_probe(
        &mut self,
        probe: &Probe,
        epoch: u64,
        tag: u8,
        now_ns: u64,
    ) -> Result<Handle, CommitError> {
        let c = &probe.class;
        let (Look::Conn, Some(state)) = (c.look, can_start(c.kind)) else {
            return Err(CommitError::Invalid);
        };
        debug_assert!(self.find(&c.key, probe.hash, probe.sig).is_none());
        self.commit_absent(c, probe.hash, probe.sig, state, epoch, tag, now_ns)
    }

    /// Create the entry of `c` (a connection's packet, no live entry for its key) in
    /// state `state`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn commit_absent(
        &mut self,
        c: &Class,
        hash: u64,
        sig: u16,
        state: CtState,
        epoch: u64,
        tag: u8,
        now_ns: u64,
    ) -> Result<Handle, CommitError> {
        let (key, src_lo, kind) = (c.key, c.src_lo, c.kind);
        let zone = key.zone();
        if self.zone_at_limit(zone) {
            self.make_room_in_zone(zone, now_ns)?;
        }
        let slot = match self.insert(key, hash, sig) {
            Some(s) => s,
            None => self.insert_under_pressure(key, hash, sig, now_ns)?,
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
        let gen = e.gen;
        self.list_new(slot);
        self.stats.inserts += 1;
        Ok(Handle { slot, gen })
    }

    /// `zone` holds its limit of entries: evict its oldest unassured one, or refuse. An
    /// oldest entry already past its timeout (the sweep has not reached it yet) is removed
    /// as expired, not counted as an eviction.
    #[cold]
    #[inline(never)]
    fn make_room_in_zone(&mut self, zone: u16, now_ns: u64) -> Result<(), CommitError> {
        if self.expire_oldest(zone, now_ns) {
            self.stats.expired += 1;
            return Ok(());
        }
        if self.evict_oldest(zone) {
            self.stats.early_drop += 1;
            self.stats.zone_evicted += 1;
            Ok(())
        } else {
            self.stats.zone_full += 1;
            Err(CommitError::ZoneFull)
        }
    }

    /// No slot free, or both candidate buckets full: reclaim expired entries (the
    /// candidate buckets, then a sweep step), then evict an unassured entry (the oldest of
    /// the zone with the most when the table is full; one in the candidate buckets when
    /// they are the problem), else refuse.
    #[cold]
    #[inline(never)]
    fn insert_under_pressure(
        &mut self,
        key: CtKey,
        hash: u64,
        sig: u16,
        now_ns: u64,
    ) -> Result<u32, CommitError> {
        self.reclaim_buckets(hash, sig, now_ns);
        if self.free.is_empty() {
            self.expire(now_ns, RECLAIM_BUDGET);
        }
        if self.free.is_empty() && self.evict_for_room() {
            self.stats.early_drop += 1;
        }
        if let Some(s) = self.insert(key, hash, sig) {
            return Ok(s);
        }
        if self.early_drop(hash, sig) {
            self.stats.early_drop += 1;
            if let Some(s) = self.insert(key, hash, sig) {
                return Ok(s);
            }
        }
        self.stats.full += 1;
        Err(CommitError::Full)
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

    /// The new key's candidate buckets are full: like Linux's `early_drop`, make room by
    /// evicting the unassured connection among them that expires first (a half-open or
    /// closed TCP connection, a UDP or ICMP flow nobody answered: see `fair`). Assured
    /// connections are never evicted for a new one. Returns whether an entry was evicted.
    fn early_drop(&mut self, hash: u64, sig: u16) -> bool {
        let mut victim: Option<(u64, u32)> = None;
        let (slots, n) = self.candidate_slots(hash, sig);
        for &slot in &slots[..n] {
            if let Some(e) = self.entries.get(slot as usize) {
                if e.live()
                    && e.flags & F_LISTED != 0
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
}
