//! Creating an entry for the first packet of an allowed connection, and the policy
//! when the table is full: reclaim expired entries, then evict an unreplied one.
//!
//! Owns: `commit` and the full-table policy. May not touch: the lookup path.
//!
//! # Design
//! * **Bounded memory, no allocation after [`Conntrack::new`].** The table never grows.
//!   When it is full, [`Conntrack::commit`] first reclaims expired entries with bounded
//!   work (the candidate buckets, then a sweep step of [`RECLAIM_BUDGET`] slots), then,
//!   like Linux's `early_drop`, evicts the connection in the new key's candidate buckets
//!   that never saw a reply and expires first (counted in [`CtStats::early_drop`](super::CtStats::early_drop); an
//!   answered connection is never evicted for a new one), and otherwise refuses with
//!   [`CommitError::Full`] (counted in [`CtStats::full`](super::CtStats::full)).

use super::key::Kind;
use super::key::{self, Class, Look};
use super::probe::{can_start, NO_HINT};
use super::table::{F_ORIG_LO, F_SEEN_REPLY, WAYS};
use super::{CommitError, Conntrack, Handle, RECLAIM_BUDGET};
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
}
