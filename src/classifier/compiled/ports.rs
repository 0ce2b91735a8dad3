//! `dport` sets: inclusive intervals, their normal form, and the class table (class id
//! → sorted disjoint intervals, the first sixteen checked branch-free).
//!
//! Owns: `PortRange`, `ClassTable`. May not touch: addresses, rules or the model.
//!
//! # Invariants
//! * Class 0 has no interval, class 1 the single interval `0..=65535`, every other class a
//!   non-empty sorted list of disjoint, non-adjacent intervals that is neither.

/// An inclusive interval of `dport` values.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
#[repr(C)]
pub(super) struct PortRange {
    pub(super) lo: u16,
    pub(super) hi: u16,
}

const _: () = assert!(std::mem::size_of::<PortRange>() == 4);

pub(super) const FULL: PortRange = PortRange {
    lo: 0,
    hi: u16::MAX,
};

/// Class id that allows nothing.
pub(super) const CLASS_DENY: u32 = 0;
/// Class id that allows every `dport`.
pub(super) const CLASS_ALLOW: u32 = 1;

/// Intervals of a class kept inline, checked branch-free.
const INLINE: usize = 16;

/// The first [`INLINE`] intervals of a class, as two lanes of bounds (unused slots are the
/// empty interval `0xffff..=0`), so the check is sixteen independent compares that compile to
/// vector instructions: no loop whose length depends on the class, no mispredicted exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(64))]
struct ClassCell {
    lo: [u16; INLINE],
    hi: [u16; INLINE],
}

const _: () = assert!(std::mem::size_of::<ClassCell>() == 64);

impl ClassCell {
    pub(super) fn new(list: &[PortRange]) -> Self {
        let mut c = ClassCell {
            lo: [u16::MAX; INLINE],
            hi: [0; INLINE],
        };
        for (i, r) in list.iter().take(INLINE).enumerate() {
            c.lo[i] = r.lo;
            c.hi[i] = r.hi;
        }
        c
    }

    #[inline(always)]
    fn hit(&self, d: u16) -> bool {
        let mut hit = false;
        for i in 0..INLINE {
            hit |= (self.lo[i] <= d) & (d <= self.hi[i]);
        }
        hit
    }
}

/// Class id → sorted disjoint `dport` intervals.
#[derive(Debug)]
pub(super) struct ClassTable {
    /// Per class, its first [`INLINE`] intervals (class 0: none, class 1: `0..=65535`).
    cells: Box<[ClassCell]>,
    /// Per class: more than [`INLINE`] intervals (then the full list is searched on a miss).
    long: Box<[bool]>,
    /// Class `c` owns `ranges[off[c] as usize..off[c + 1] as usize]`.
    off: Box<[u32]>,
    ranges: Box<[PortRange]>,
}

impl ClassTable {
    pub(super) fn new(off: Vec<u32>, ranges: Vec<PortRange>) -> Self {
        let lists = off
            .windows(2)
            .map(|w| ranges.get(w[0] as usize..w[1] as usize).unwrap_or(&[]));
        let cells = lists.clone().map(ClassCell::new).collect();
        let long = lists.map(|l| l.len() > INLINE).collect();
        ClassTable {
            cells,
            long,
            off: off.into_boxed_slice(),
            ranges: ranges.into_boxed_slice(),
        }
    }

    #[inline(always)]
    pub(super) fn allows(&self, class: u32, dport: u16) -> bool {
        let c = class as usize;
        let hit = self.cells.get(c).is_some_and(|cell| cell.hit(dport));
        // `long` is false for nearly every class: a well-predicted branch.
        let long = self.long.get(c).copied().unwrap_or(false) && self.list_allows(c, dport);
        hit | long
    }

    /// Search the full list of class `c`.
    #[cold]
    fn list_allows(&self, c: usize, dport: u16) -> bool {
        let (Some(&a), Some(&b)) = (self.off.get(c), self.off.get(c + 1)) else {
            return false;
        };
        let Some(list) = self.ranges.get(a as usize..b as usize) else {
            return false;
        };
        // Sorted and disjoint: the interval that can hold `dport` is the last one starting
        // at or below it.
        let i = list.partition_point(|r| r.lo <= dport);
        i.checked_sub(1)
            .and_then(|j| list.get(j))
            .is_some_and(|r| dport <= r.hi)
    }

    pub(super) fn bytes(&self) -> usize {
        self.cells.len() * 64 + self.long.len() + self.off.len() * 4 + self.ranges.len() * 4
    }

    pub(super) fn len(&self) -> usize {
        self.cells.len()
    }
}

/// Sort and merge intervals into a disjoint, non-adjacent list.
pub(super) fn normalize(mut v: Vec<PortRange>) -> Vec<PortRange> {
    v.sort_unstable();
    let mut out: Vec<PortRange> = Vec::with_capacity(v.len());
    for r in v {
        match out.last_mut() {
            Some(last) if u32::from(r.lo) <= u32::from(last.hi) + 1 => {
                last.hi = last.hi.max(r.hi);
            }
            _ => out.push(r),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_table_lists() {
        let mut v = vec![];
        for i in 0..40u16 {
            v.push(PortRange {
                lo: i * 100,
                hi: i * 100 + 9,
            });
        }
        let short = normalize(vec![
            PortRange { lo: 80, hi: 80 },
            PortRange { lo: 22, hi: 22 },
            PortRange { lo: 81, hi: 90 },
            PortRange { lo: 85, hi: 100 },
        ]);
        assert_eq!(
            short,
            vec![PortRange { lo: 22, hi: 22 }, PortRange { lo: 80, hi: 100 }]
        );
        let mut ranges = vec![FULL];
        let mut off = vec![0, 0, 1];
        for list in [&short, &v] {
            ranges.extend_from_slice(list);
            off.push(ranges.len() as u32);
        }
        let t = ClassTable::new(off, ranges);
        for p in [0u16, 21, 22, 23, 79, 80, 100, 101, 65535] {
            assert!(!t.allows(CLASS_DENY, p));
            assert!(t.allows(CLASS_ALLOW, p));
            assert_eq!(t.allows(2, p), p == 22 || (80..=100).contains(&p), "{p}");
            assert_eq!(t.allows(3, p), p < 4000 && p % 100 < 10, "{p}");
        }
        assert!(!t.allows(99, 80), "unknown class denies");
    }
}
