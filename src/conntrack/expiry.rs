//! Deadlines and removal: the budgeted expiry sweep, and removal by handle, by zone
//! or of everything.
//!
//! Owns: the sweep cursor. May not touch: the lookup path (which removes expired
//! entries it meets on its own).
//!
//! # Design
//! * **Expiry.** Every entry has an absolute deadline (`now + timeout of its state`,
//!   refreshed by each valid packet). An expired entry is treated as absent on lookup
//!   (and removed right there); [`Conntrack::expire`] sweeps a bounded number of slots per
//!   call with a rotating cursor so the pipeline can reclaim a little per burst.
//!   The sweep scans a slice per stretch of slots with a branch-free test per slot (a
//!   table full before any per-port limit sweeps from every commit: #15 measured the
//!   one-slot-per-iteration loop at ~3,000 of 5,737 instructions per new connection
//!   there, the scan at ~880). The clock is the caller's (`now_ns`, monotonic nanoseconds; replay uses capture
//!   time).
//!
//! # Rejected options
//! * A timer wheel for expiry: per-entry links cost memory and per-packet list updates;
//!   lazy expiry on lookup plus a budgeted sweep bounds the work just as well.

use super::{Conntrack, Handle};

impl Conntrack {
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
        let mut left = budget.min(cap);
        while left > 0 {
            // The slots up to the end of the slab (then from 0 again), visited in order
            // as one scan over a slice: a branch-free test per slot, the cursor stored
            // once per stretch (a table at capacity sweeps from every commit, so this
            // loop is most of a new connection's cost there).
            let (start, end) = (self.cursor, (self.cursor + left).min(cap));
            let mut at = start;
            while let Some(k) = self.entries[at..end]
                .iter()
                .position(|e| e.live() & (e.expires <= now_ns))
            {
                self.remove_slot((at + k) as u32);
                removed += 1;
                at += k + 1;
            }
            left -= end - start;
            self.cursor = if end == cap { 0 } else { end };
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
}
