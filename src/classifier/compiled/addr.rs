//! Addresses of both families as integers, and the address → class id index of one
//! bucket: the elementary-interval decomposition searched through a skip table.
//!
//! Owns: `Addr` and `AddrIndex`. May not touch: ports, rules or the model.
//!
//! # Invariants
//! * `AddrIndex::starts[0] == 0`, strictly increasing; `classes.len() == starts.len()`;
//!   `starts` is followed by `A::LINEAR` padding entries equal to `A::MAX` (`len` counts
//!   the real entries only).
//! * With `base = starts[1]` and `slot(x) = min((x - base) >> shift, S - 1)`, `skip[t]` is
//!   the first index `i >= 1` with `slot(starts[i]) >= t` (`skip.len() == S + 1`, S a power
//!   of two); so for `a >= base` the interval holding `a` is in
//!   `skip[slot(a)] - 1 .. skip[slot(a) + 1]`.
//! * A slot whose window is wider than `A::LINEAR` when the table is as large as it gets
//!   (addresses clustered more finely than the slots: IPv6 prefixes inside a few /32s) has a
//!   second-level table (`dense[t]` indexes `subs`), built the same way over the starts of
//!   that slot alone: `skip2[off + s]` is the (absolute) first index whose sub-slot is
//!   `>= s`, and below `Sub::base` is the interval before the slot's first start.
//! * `rounds` halvings bring the widest remaining window down to at most `A::LINEAR`
//!   entries, which one branch-free count finishes.
//!   The slots cover `[starts[1], starts[last]]`, not the whole address space: a remote group
//!   packed into one /16 still spreads over all slots.

use ipnet::IpNet;

use super::members::{GroupMembers, MemberSet};
use super::ports::CLASS_DENY;

/// An address of one family as an unsigned integer (IPv4 as `u32`, IPv6 as `u128`).
pub(super) trait Addr:
    Copy + Ord + Default + std::hash::Hash + std::fmt::Debug + Send + Sync + 'static
{
    const BITS: u32;
    const MAX: Self;
    /// Entries of the window counted at once after the binary-search rounds (one cache
    /// line of `u32` starts; eight `u128`, two lines).
    const LINEAR: usize;
    /// The address from a flow key's 16-byte field (IPv4 is mapped in the last 4 bytes).
    fn from_key(a: &[u8; 16]) -> Self;
    /// The inclusive range of a network of this family, `None` for the other family.
    fn range_of(net: &IpNet) -> Option<(Self, Self)>;
    /// `min((self - base) >> shift, last)` for `self >= base`, `shift < BITS`.
    fn slot(self, base: Self, shift: u32, last: usize) -> usize;
    /// Number of significant bits (0 for 0).
    fn bit_len(self) -> u32;
    fn checked_succ(self) -> Option<Self>;
    fn wrapping_sub_addr(self, other: Self) -> Self;
    /// The member set of this family of a group.
    fn members(m: &GroupMembers) -> &MemberSet<Self>;
}

impl Addr for u32 {
    const BITS: u32 = 32;
    const MAX: Self = u32::MAX;
    const LINEAR: usize = 16;
    #[inline(always)]
    fn from_key(a: &[u8; 16]) -> Self {
        u32::from_be_bytes([a[12], a[13], a[14], a[15]])
    }
    fn range_of(net: &IpNet) -> Option<(Self, Self)> {
        match net {
            IpNet::V4(n) => Some((u32::from(n.network()), u32::from(n.broadcast()))),
            IpNet::V6(_) => None,
        }
    }
    #[inline(always)]
    fn slot(self, base: Self, shift: u32, last: usize) -> usize {
        (self.wrapping_sub(base).checked_shr(shift).unwrap_or(0) as usize).min(last)
    }
    fn bit_len(self) -> u32 {
        32 - self.leading_zeros()
    }
    fn checked_succ(self) -> Option<Self> {
        self.checked_add(1)
    }
    fn wrapping_sub_addr(self, other: Self) -> Self {
        self.wrapping_sub(other)
    }
    #[inline(always)]
    fn members(m: &GroupMembers) -> &MemberSet<Self> {
        &m.v4
    }
}

impl Addr for u128 {
    const BITS: u32 = 128;
    const MAX: Self = u128::MAX;
    const LINEAR: usize = 8;
    #[inline(always)]
    fn from_key(a: &[u8; 16]) -> Self {
        u128::from_be_bytes(*a)
    }
    fn range_of(net: &IpNet) -> Option<(Self, Self)> {
        match net {
            IpNet::V6(n) => Some((u128::from(n.network()), u128::from(n.broadcast()))),
            IpNet::V4(_) => None,
        }
    }
    #[inline(always)]
    fn slot(self, base: Self, shift: u32, last: usize) -> usize {
        let d = self.wrapping_sub(base).checked_shr(shift).unwrap_or(0);
        d.min(last as u128) as usize
    }
    fn bit_len(self) -> u32 {
        128 - self.leading_zeros()
    }
    fn checked_succ(self) -> Option<Self> {
        self.checked_add(1)
    }
    fn wrapping_sub_addr(self, other: Self) -> Self {
        self.wrapping_sub(other)
    }
    #[inline(always)]
    fn members(m: &GroupMembers) -> &MemberSet<Self> {
        &m.v6
    }
}

/// Address → class id: the elementary-interval decomposition of one bucket.
///
/// The search for the interval holding `a` is narrowed by a skip table over the span of
/// the interval starts (not over the whole address space, so clustered addresses — a
/// remote group inside one /16 — still spread over the slots), then finished by a
/// branch-free binary search of a fixed number of `rounds`.
#[derive(Debug)]
pub(super) struct AddrIndex<A> {
    /// Start of each elementary interval; `starts[0] == 0`, strictly increasing; then
    /// `A::LINEAR` entries `A::MAX` so that the linear count never reads past the end.
    pub(super) starts: Box<[A]>,
    /// Number of elementary intervals (`starts` without its padding).
    pub(super) len: usize,
    /// Class id of the interval beginning at `starts[i]`.
    pub(super) classes: Box<[u32]>,
    /// `starts[1]` (`A::MAX` with a single interval); below it is interval 0.
    pub(super) base: A,
    pub(super) shift: u32,
    /// `skip[t]` = first index `i >= 1` whose slot `min((starts[i] - base) >> shift, S - 1)`
    /// is `>= t`, for `t in 0..=S` (`S` = number of slots, a power of two).
    pub(super) skip: Box<[u32]>,
    /// Binary-search halvings that bring the widest window to at most `A::LINEAR` entries.
    pub(super) rounds: u32,
    /// Per slot: the index in `subs` of its second-level table, `u32::MAX` for none; empty
    /// when no slot has one.
    dense: Box<[u32]>,
    subs: Box<[Sub<A>]>,
    /// The second-level skip tables, one after the other (absolute indices into `starts`).
    skip2: Box<[u32]>,
}

/// The second-level skip table of one dense slot.
#[derive(Debug, Clone, Copy)]
struct Sub<A> {
    /// The slot's first start.
    base: A,
    shift: u32,
    /// Number of sub-slots minus one.
    last: u32,
    /// Where its table begins in `skip2`.
    off: u32,
}

impl<A: Addr> AddrIndex<A> {
    pub(super) fn new(starts: Vec<A>, classes: Vec<u32>) -> Self {
        debug_assert_eq!(starts.len(), classes.len());
        debug_assert!(starts.first() == Some(&A::default()));
        let n = starts.len();
        let base = starts.get(1).copied().unwrap_or(A::MAX);
        let span_bits = match (starts.get(1), starts.last()) {
            (Some(&first), Some(&last)) => last.wrapping_sub_addr(first).bit_len(),
            _ => 0,
        };
        // The smallest skip table (from about one slot per two starts up to four to eight
        // slots per start, at most 2^16 slots = 256 KiB) whose widest window the linear count
        // finishes alone; failing that the largest, and binary-search rounds first.
        let bits = usize::BITS - n.leading_zeros();
        let mut best = None;
        for k in bits.saturating_sub(1).min(16)..=(bits + 2).min(16) {
            let (skip, shift, widest) = Self::skip_table(&starts, base, span_bits, k);
            best = Some((skip, shift, widest));
            if widest <= A::LINEAR {
                break;
            }
        }
        let (skip, shift, mut widest) = best.unwrap_or_else(|| (vec![1, 1], 0, 1));
        let (mut dense, mut subs, mut skip2) = (Vec::new(), Vec::new(), Vec::new());
        if widest > A::LINEAR {
            widest = 1;
            dense = vec![u32::MAX; skip.len()];
            for t in 0..skip.len() - 1 {
                let (lo, hi) = (skip[t] as usize, skip[t + 1] as usize);
                if hi - lo < A::LINEAR {
                    widest = widest.max(hi - lo + 1);
                    continue;
                }
                // The starts of slot t, after the one before them (relative index 0).
                let sub = &starts[lo - 1..hi];
                let span = sub[sub.len() - 1].wrapping_sub_addr(sub[1]).bit_len();
                let b = usize::BITS - sub.len().leading_zeros();
                let mut best2 = None;
                for k in b.saturating_sub(1).min(16)..=(b + 2).min(16) {
                    let st = Self::skip_table(sub, sub[1], span, k);
                    let fits = st.2 <= A::LINEAR;
                    best2 = Some((st, k));
                    if fits {
                        break;
                    }
                }
                let Some(((s2, shift2, w2), k)) = best2 else {
                    widest = widest.max(hi - lo + 1);
                    continue;
                };
                widest = widest.max(w2);
                dense[t] = subs.len() as u32;
                subs.push(Sub {
                    base: sub[1],
                    shift: shift2,
                    last: (1u32 << k) - 1,
                    off: skip2.len() as u32,
                });
                skip2.extend(s2.iter().map(|&i| i + (lo - 1) as u32));
            }
        }
        let mut rounds = 0;
        let mut w = widest;
        while w > A::LINEAR {
            w -= w / 2;
            rounds += 1;
        }
        let mut padded = starts;
        padded.resize(n + A::LINEAR, A::MAX);
        AddrIndex {
            starts: padded.into_boxed_slice(),
            len: n,
            classes: classes.into_boxed_slice(),
            base,
            shift,
            skip: skip.into_boxed_slice(),
            rounds,
            dense: dense.into_boxed_slice(),
            subs: subs.into_boxed_slice(),
            skip2: skip2.into_boxed_slice(),
        }
    }

    /// The skip table of `2^k` slots over the span of `starts[1..]`: `(skip, shift, widest
    /// window)`.
    fn skip_table(starts: &[A], base: A, span_bits: u32, k: u32) -> (Vec<u32>, u32, usize) {
        let n = starts.len();
        let shift = span_bits.saturating_sub(k);
        let slots = 1usize << k;
        let mut skip = Vec::with_capacity(slots + 1);
        let mut i = 1usize;
        for t in 0..=slots {
            while i < n && starts[i].slot(base, shift, slots - 1) < t {
                i += 1;
            }
            skip.push(i as u32);
        }
        let widest = skip
            .windows(2)
            .map(|w| (w[1] - w[0]) as usize + 1)
            .max()
            .unwrap_or(1);
        (skip, shift, widest)
    }

    /// The search window for `a`: `(pos, len)` with `starts[pos] <= a` and the answer in
    /// `pos..pos + len`.
    #[inline(always)]
    pub(super) fn window(&self, a: A) -> (usize, usize) {
        if a < self.base {
            return (0, 1);
        }
        let last = self.skip.len().saturating_sub(2);
        let t = a.slot(self.base, self.shift, last);
        let lo = self.skip.get(t).copied().unwrap_or(1) as usize;
        let hi = self.skip.get(t + 1).copied().unwrap_or(1) as usize;
        let pos = lo.saturating_sub(1);
        let len = hi.saturating_sub(pos).max(1);
        if len <= A::LINEAR {
            return (pos, len);
        }
        // A dense slot (the branch is not taken at all where no slot is dense).
        match self.dense.get(t).and_then(|&d| self.subs.get(d as usize)) {
            Some(sub) => self.window2(a, sub, pos),
            None => (pos, len),
        }
    }

    /// The window of `a` in a dense slot whose starts follow `starts[pos]`.
    #[inline(always)]
    fn window2(&self, a: A, sub: &Sub<A>, pos: usize) -> (usize, usize) {
        if a < sub.base {
            return (pos, 1);
        }
        let s = sub.off as usize + a.slot(sub.base, sub.shift, sub.last as usize);
        let lo = self.skip2.get(s).copied().unwrap_or(1) as usize;
        let hi = self.skip2.get(s + 1).copied().unwrap_or(1) as usize;
        let pos = lo.saturating_sub(1);
        (pos, hi.saturating_sub(pos).max(1))
    }

    /// One branch-free binary-search step (a conditional move: which half holds `a` is
    /// unpredictable, a branch would mispredict half of the time).
    #[inline(always)]
    pub(super) fn step(&self, a: A, pos: &mut usize, len: &mut usize) {
        let half = *len / 2;
        let s = self.starts.get(*pos + half).copied().unwrap_or(A::MAX);
        *pos = std::hint::select_unpredictable(s <= a, *pos + half, *pos);
        *len -= half;
    }

    #[inline(always)]
    pub(super) fn class_at(&self, pos: usize) -> u32 {
        self.classes.get(pos).copied().unwrap_or(CLASS_DENY)
    }

    /// The interval holding `a` in a window of at most `A::LINEAR` entries starting at
    /// `pos` (`starts[pos] <= a`): the number of starts `<= a` among the `A::LINEAR` from
    /// `pos`, counted without a branch (entries past the window are `> a`, being sorted;
    /// the padding is `A::MAX`, which only `a == A::MAX` reaches, hence the clamp).
    #[inline(always)]
    pub(super) fn finish(&self, a: A, pos: usize) -> usize {
        let count = match self.starts.get(pos..pos + A::LINEAR) {
            Some(w) => w.iter().map(|s| usize::from(*s <= a)).sum::<usize>(),
            None => 1,
        };
        (pos + count)
            .saturating_sub(1)
            .min(self.len.saturating_sub(1))
    }

    #[inline(always)]
    pub(super) fn class_of(&self, a: A) -> u32 {
        let (mut pos, mut len) = self.window(a);
        for _ in 0..self.rounds {
            self.step(a, &mut pos, &mut len);
        }
        self.class_at(self.finish(a, pos))
    }

    pub(super) fn bytes(&self) -> usize {
        self.starts.len() * std::mem::size_of::<A>()
            + self.classes.len() * 4
            + (self.skip.len() + self.dense.len() + self.skip2.len()) * 4
            + self.subs.len() * std::mem::size_of::<Sub<A>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::classbench::SplitMix64;

    /// The skip table + fixed-round search finds the same interval as a plain scan, for
    /// clustered, spread and degenerate start sets, at and around every start.
    #[test]
    fn addr_index_matches_a_scan() {
        let mut rng = SplitMix64::new(5);
        for case in 0..200u32 {
            let n = rng.below(300) as usize;
            let cluster = case % 3;
            let mut starts: Vec<u32> = (0..n)
                .map(|_| match cluster {
                    0 => rng.next_u64() as u32,
                    1 => 0x6400_0000 + (rng.below(4096) as u32),
                    _ => u32::MAX - rng.below(64) as u32,
                })
                .collect();
            starts.push(0);
            starts.sort_unstable();
            starts.dedup();
            let classes: Vec<u32> = (0..starts.len() as u32).collect();
            let idx = AddrIndex::new(starts.clone(), classes);
            let scan = |a: u32| starts.iter().rposition(|s| *s <= a).unwrap() as u32;
            let mut probes = vec![0, 1, u32::MAX, u32::MAX - 1];
            for s in &starts {
                probes.extend([s.wrapping_sub(1), *s, s.wrapping_add(1)]);
            }
            probes.extend((0..100).map(|_| rng.next_u64() as u32));
            for a in probes {
                assert_eq!(idx.class_of(a), scan(a), "case {case} a {a:#x}");
            }
            assert!(idx.rounds <= 16);
        }
        // Tight clusters far apart: each cluster falls into one slot of the largest
        // first-level table, so those slots get a second-level table.
        for case in 0..40u32 {
            let mut starts: Vec<u32> = vec![0];
            let mut v6: Vec<u128> = vec![0];
            for _ in 0..1 + case % 5 {
                let c = rng.next_u64() as u32;
                let c6 = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
                for _ in 0..20 + rng.below(200) {
                    let d = rng.below(4096);
                    starts.push(c.saturating_add(d as u32));
                    v6.push(c6.saturating_add(u128::from(d) << (case % 90)));
                }
            }
            for _ in 0..case * 3 {
                starts.push(rng.next_u64() as u32);
            }
            starts.sort_unstable();
            starts.dedup();
            v6.sort_unstable();
            v6.dedup();
            let idx = AddrIndex::new(starts.clone(), (0..starts.len() as u32).collect());
            let idx6 = AddrIndex::new(v6.clone(), (0..v6.len() as u32).collect());
            if case % 5 == 4 {
                assert!(!idx.subs.is_empty() && !idx6.subs.is_empty(), "case {case}");
            }
            let mut probes = vec![0, 1, u32::MAX];
            for s in &starts {
                probes.extend([s.wrapping_sub(1), *s, s.wrapping_add(1)]);
            }
            probes.extend((0..200).map(|_| rng.next_u64() as u32));
            for a in probes {
                let want = starts.iter().rposition(|s| *s <= a).unwrap() as u32;
                assert_eq!(idx.class_of(a), want, "case {case} a {a:#x}");
            }
            let mut probes6 = vec![0, 1, u128::MAX];
            for s in &v6 {
                probes6.extend([s.wrapping_sub(1), *s, s.wrapping_add(1)]);
            }
            for a in probes6 {
                let want = v6.iter().rposition(|s| *s <= a).unwrap() as u32;
                assert_eq!(idx6.class_of(a), want, "v6 case {case} a {a:#x}");
            }
        }
        // IPv6: one interval, and starts at the top of the space.
        let one = AddrIndex::<u128>::new(vec![0], vec![7]);
        assert_eq!(one.class_of(0), 7);
        assert_eq!(one.class_of(u128::MAX), 7);
        let top = AddrIndex::<u128>::new(vec![0, u128::MAX - 1, u128::MAX], vec![0, 1, 2]);
        assert_eq!(top.class_of(u128::MAX - 2), 0);
        assert_eq!(top.class_of(u128::MAX - 1), 1);
        assert_eq!(top.class_of(u128::MAX), 2);
    }
}
