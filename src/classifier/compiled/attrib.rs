//! Rule attribution of one bucket: remote address → *attribution class* → the first rule
//! (in model order) that covers each `dport`. It answers
//! [`super::CompiledPolicy::admitting_rule`], beside the class table that answers `allows`
//! (never inside it: `allows` reads none of this).
//!
//! Owns: [`Attribution`], the tagged interval lists and their interning while a bucket is
//! built ([`AttributionBuilder`]). May not touch: the class table or the `allows` path,
//! the model (rules arrive as ordinals into the set's rule table, in model order).
//!
//! # Layout
//! ```text
//! Attribution
//!   ├─ AddrIndex: remote address ─► attribution class id  (same search as the class index)
//!   └─ class c ─► segs[off[c]..off[c + 1]]: sorted disjoint `dport` intervals, each tagged
//!                  with the ordinal of the first rule covering it (gaps: no rule)
//! ```
//! Class 0 is the empty list (no rule), so an address outside every rule's remote stops
//! after the address search. A lookup is the address search and one binary search over the
//! class's list: O(log intervals + log list), never a scan of rules.
//!
//! # Why a second address index
//! The class index merges neighbouring elementary intervals whose *union* of specs is
//! equal, and interns specs by value across rules; both forget which rule covers what.
//! Two neighbouring intervals with the same union can have different first rules (a /16
//! rule listed before a /8 rule with the same ports), so the attribution index keeps its own
//! elementary intervals, merged only where the attribution class is equal.
//!
//! # Invariants
//! * `off[0] == off[1] == 0` (class 0 is empty); `off` is non-decreasing and ends at
//!   `segs.len()`.
//! * Within a class, intervals are sorted, disjoint, and two adjacent intervals
//!   (`a.hi + 1 == b.lo`) have different rules.
//! * A `dport` is covered by a class iff the union class of the same address (the `allows`
//!   path) contains it: both come from the same rules of the same bucket.
//!
//! # Measurements (2026-12, shared 2-core EPYC VM; inputs of `benches/classify.rs`)
//! Instruction counts are callgrind's (exact); times are criterion's on the loaded machine
//! (±20 %). "Before" is the tree without attribution (commit 3355afe).
//!
//! | input | `bytes` (allows) | `attribution_bytes` | compile instr. before → after |
//! |---|---|---|---|
//! | ClassBench 10 rules | 4,345 | 1,352 | 0.10 M → 0.17 M |
//! | ClassBench 1,000 rules | 72,157 | 110,436 | 4.2 M → 10.9 M |
//! | ClassBench 10,000 rules | 179,216 | 915,832 | 29.3 M → 155 M |
//! | remote group of 10,000 members | 428,039 | 422,648 | 20.3 M → 33.6 M |
//! | 10,000 rules over 100 ports (98 group sets) | 1,252,586 | 2,379,872 | 129 M → 305 M |
//!
//! `classify::compile` (criterion): `10k_rules_1_group` 2.5 ms → 20.3 ms,
//! `10k_rules_100_ports` 15.7 ms → 48 ms. The cost is the envelope of each elementary
//! interval (~24,000 of them for 10,000 ClassBench rules, ~20 distinct specs active on
//! each, the first rule of each spec only); memoising by active-rule bitset, as the class
//! sweep does, did not pay (273 M → 264 M instructions without it, before the other
//! changes): nearly every interval has its own set of active rules.
//!
//! Lookup, instructions per key (callgrind, same keys): `allows` 140 / 160 / 166 / 137
//! (unchanged by this table, to the instruction), `admitting_rule` 170 / 212 / 219 / 160
//! (ClassBench 10 / 1,000 / 10,000 rules, remote group). Criterion, 32 keys per iteration:
//! `classify::admitting_rule` 0.60 / 0.87 / 1.78 / 0.84 µs against `classify::allows`
//! 0.28 / 0.32 / 0.37 / 0.48 µs: about 19 to 56 ns per new connection, the rest of the
//! difference being cache misses in the larger table (10,000 ClassBench rules: 0.9 MB
//! against 0.18 MB) and the data-dependent list search.

use std::collections::HashMap;

use super::addr::{Addr, AddrIndex};
use super::ports::{PortRange, FULL};

/// A `dport` interval tagged with the ordinal, in the set's rule table, of the first rule
/// covering it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(super) struct Tagged {
    pub(super) lo: u16,
    pub(super) hi: u16,
    pub(super) rule: u32,
}

const _: () = assert!(std::mem::size_of::<Tagged>() == 8);

/// Attribution class that covers nothing.
pub(super) const ATTR_NONE: u32 = 0;

/// Address → attribution class → first rule per `dport`, for one bucket.
#[derive(Debug)]
pub(super) struct Attribution<A> {
    pub(super) addr: AddrIndex<A>,
    /// Class `c` owns `segs[off[c] as usize..off[c + 1] as usize]`.
    off: Box<[u32]>,
    segs: Box<[Tagged]>,
}

impl<A: Addr> Attribution<A> {
    /// The ordinal of the first rule matching remote `a` and `dport`.
    #[inline]
    pub(super) fn first_rule(&self, a: A, dport: u16) -> Option<u32> {
        let c = self.addr.class_of(a) as usize;
        let (&from, &to) = (self.off.get(c)?, self.off.get(c + 1)?);
        let list = self.segs.get(from as usize..to as usize)?;
        // Sorted and disjoint: the interval that can hold `dport` is the last one starting
        // at or below it.
        let s = list.get(list.partition_point(|s| s.lo <= dport).checked_sub(1)?)?;
        (dport <= s.hi).then_some(s.rule)
    }

    pub(super) fn bytes(&self) -> usize {
        self.addr.bytes() + self.off.len() * 4 + self.segs.len() * 8
    }

    /// Number of attribution classes (class 0 included).
    pub(super) fn classes(&self) -> usize {
        self.off.len() - 1
    }
}

/// Interns attribution classes while one bucket is swept.
pub(super) struct AttributionBuilder {
    /// Class lists (each interval as [`Tagged::key`], hashed as one byte string) → id.
    ids: HashMap<Box<[u64]>, u32>,
    off: Vec<u32>,
    segs: Vec<Tagged>,
    /// Scratch: the `dport` values no rule seen so far covers (sorted, disjoint).
    gaps: Vec<PortRange>,
    /// Scratch: the envelope of the current interval, and its keys.
    out: Vec<Tagged>,
    keys: Vec<u64>,
    /// The keys and class of the previous call (neighbouring intervals often share one).
    last_keys: Vec<u64>,
    last: u32,
}

impl Tagged {
    fn key(self) -> u64 {
        u64::from(self.lo) | u64::from(self.hi) << 16 | u64::from(self.rule) << 32
    }
}

impl AttributionBuilder {
    pub(super) fn new() -> Self {
        let mut ids = HashMap::new();
        ids.insert(Box::default(), ATTR_NONE);
        AttributionBuilder {
            ids,
            off: vec![0, 0],
            segs: Vec::new(),
            gaps: Vec::new(),
            out: Vec::new(),
            keys: Vec::new(),
            last_keys: Vec::new(),
            last: ATTR_NONE,
        }
    }

    /// The class of the rules `(ordinal, dport interval)` active on one elementary
    /// interval, given in model order (ordinals increasing).
    pub(super) fn class(&mut self, rules: impl Iterator<Item = (u32, PortRange)>) -> u32 {
        self.envelope(rules);
        self.keys.clear();
        self.keys.extend(self.out.iter().map(|t| t.key()));
        if self.keys == self.last_keys {
            return self.last;
        }
        let c = match self.ids.get(self.keys.as_slice()) {
            Some(&c) => c,
            None => {
                let c = (self.off.len() - 1) as u32;
                self.segs.extend_from_slice(&self.out);
                self.off.push(self.segs.len() as u32);
                self.ids.insert(self.keys.as_slice().into(), c);
                c
            }
        };
        std::mem::swap(&mut self.keys, &mut self.last_keys);
        self.last = c;
        c
    }

    /// The first-rule envelope into `self.out`: paint each rule's interval over the values
    /// no earlier rule covers; stop once every value is covered. O(k log k) for k rules,
    /// plus the shifts of the gap list.
    fn envelope(&mut self, rules: impl Iterator<Item = (u32, PortRange)>) {
        let (gaps, out) = (&mut self.gaps, &mut self.out);
        gaps.clear();
        gaps.push(FULL);
        out.clear();
        for (rule, r) in rules {
            let first = gaps.partition_point(|g| g.hi < r.lo);
            let last = first + gaps[first..].partition_point(|g| g.lo <= r.hi);
            if first == last {
                continue;
            }
            // Keep `out` sorted: the new pieces go between the pieces painted earlier.
            for g in &gaps[first..last] {
                let t = Tagged {
                    lo: g.lo.max(r.lo),
                    hi: g.hi.min(r.hi),
                    rule,
                };
                let at = out.partition_point(|o| o.lo < t.lo);
                out.insert(at, t);
            }
            // What is left of the first and last gaps replaces gaps[first..last].
            let (head, tail) = (gaps[first], gaps[last - 1]);
            let mut at = first;
            if head.lo < r.lo {
                gaps[at] = PortRange {
                    lo: head.lo,
                    hi: r.lo - 1,
                };
                at += 1;
            }
            if tail.hi > r.hi {
                let rest = PortRange {
                    lo: r.hi + 1,
                    hi: tail.hi,
                };
                if at < last {
                    gaps[at] = rest;
                } else {
                    gaps.insert(at, rest);
                }
                at += 1;
            }
            if at < last {
                gaps.drain(at..last);
            }
            if gaps.is_empty() {
                break;
            }
        }
        // Merge neighbours painted by the same rule.
        let mut n = 0;
        for i in 0..out.len() {
            let t = out[i];
            if n > 0 && out[n - 1].rule == t.rule && u32::from(out[n - 1].hi) + 1 == u32::from(t.lo)
            {
                out[n - 1].hi = t.hi;
            } else {
                out[n] = t;
                n += 1;
            }
        }
        out.truncate(n);
    }

    /// The first-rule envelope of `rules` (given in model order) on its own: the tagged
    /// `dport` list of a group term (`members::GroupTerm`).
    pub(super) fn envelope_of(rules: impl Iterator<Item = (u32, PortRange)>) -> Vec<Tagged> {
        let mut b = AttributionBuilder::new();
        b.envelope(rules);
        b.out
    }

    /// The bucket's attribution from the sweep's elementary intervals.
    pub(super) fn finish<A: Addr>(self, starts: Vec<A>, classes: Vec<u32>) -> Attribution<A> {
        Attribution {
            addr: AddrIndex::new(starts, classes),
            off: self.off.into_boxed_slice(),
            segs: self.segs.into_boxed_slice(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl AttributionBuilder {
        fn env(&mut self, rules: impl Iterator<Item = (u32, PortRange)>) -> Vec<Tagged> {
            self.envelope(rules);
            self.out.clone()
        }
    }

    fn pr(lo: u16, hi: u16) -> PortRange {
        PortRange { lo, hi }
    }

    fn t(lo: u16, hi: u16, rule: u32) -> Tagged {
        Tagged { lo, hi, rule }
    }

    /// The envelope equals "first rule covering each value" computed value by value.
    #[test]
    fn envelope_is_the_first_rule_per_value() {
        let mut b = AttributionBuilder::new();
        let rules = [
            (2, pr(80, 80)),
            (5, pr(1, 1000)),
            (7, pr(443, 443)),
            (8, pr(990, 2000)),
            (9, pr(65535, 65535)),
        ];
        let env = b.env(rules.iter().copied());
        assert_eq!(
            env,
            vec![
                t(1, 79, 5),
                t(80, 80, 2),
                t(81, 1000, 5),
                t(1001, 2000, 8),
                t(65535, 65535, 9),
            ]
        );
        // A full rule first hides everything after it.
        let env = b.env([(0, FULL), (1, pr(22, 22))].into_iter());
        assert_eq!(env, vec![t(0, 65535, 0)]);
        // Splits on both sides, and a rule inside one gap.
        let env = b.env([(1, pr(10, 20)), (3, pr(0, 65535)), (4, pr(5, 5))].into_iter());
        assert_eq!(env, vec![t(0, 9, 3), t(10, 20, 1), t(21, 65535, 3)]);
        assert_eq!(b.env(std::iter::empty()), vec![]);
    }

    #[test]
    fn envelope_matches_a_scan_on_random_rules() {
        let mut rng = crate::bench::classbench::SplitMix64::new(3);
        let mut b = AttributionBuilder::new();
        for _ in 0..300 {
            let k = rng.below(12) as u32;
            let rules: Vec<(u32, PortRange)> = (0..k)
                .map(|i| {
                    let a = rng.below(120) as u16;
                    let w = rng.below(40) as u16;
                    let r = if rng.below(10) == 0 {
                        FULL
                    } else {
                        pr(a, a + w)
                    };
                    (i * 2, r)
                })
                .collect();
            let env = b.env(rules.iter().copied());
            for w in env.windows(2) {
                assert!(w[0].hi < w[1].lo);
                assert!(w[0].rule != w[1].rule || w[0].hi + 1 < w[1].lo);
            }
            for d in (0..200u16).chain([65535]) {
                let want = rules
                    .iter()
                    .find(|(_, r)| r.lo <= d && d <= r.hi)
                    .map(|x| x.0);
                let got = env.iter().find(|s| s.lo <= d && d <= s.hi).map(|s| s.rule);
                assert_eq!(got, want, "{rules:?} {d}");
            }
        }
    }

    #[test]
    fn classes_are_interned_and_looked_up() {
        let mut b = AttributionBuilder::new();
        let c1 = b.class([(4, pr(22, 22))].into_iter());
        let c2 = b.class([(1, pr(80, 90)), (4, pr(85, 100))].into_iter());
        assert_eq!(b.class([(4, pr(22, 22))].into_iter()), c1);
        assert_eq!(b.class(std::iter::empty()), ATTR_NONE);
        let a = b.finish::<u32>(vec![0, 100, 200, 300], vec![ATTR_NONE, c1, c2, ATTR_NONE]);
        assert_eq!(a.classes(), 3);
        assert_eq!(a.first_rule(50, 22), None);
        assert_eq!(a.first_rule(100, 22), Some(4));
        assert_eq!(a.first_rule(199, 23), None);
        assert_eq!(a.first_rule(250, 85), Some(1));
        assert_eq!(a.first_rule(250, 91), Some(4));
        assert_eq!(a.first_rule(250, 101), None);
        assert_eq!(a.first_rule(250, 79), None);
        assert_eq!(a.first_rule(u32::MAX, 85), None);
    }
}
