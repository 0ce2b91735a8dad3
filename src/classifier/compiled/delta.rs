//! Rule patches (#15, "incremental policy updates"): a policy whose compiled group sets
//! are those of an earlier model (the *base*) plus a small *delta* — per changed group,
//! the base rules removed and the rules added — published with the epoch, so that adding
//! or removing a rule costs O(rules compared + delta), whatever the number of ports and
//! group sets holding the group.
//!
//! Owns: [`FlatRule`] (one rule in a form matched one key at a time), [`Delta`], the diff
//! of a group's base rules against its new rules, the exact lookups through a delta, and
//! [`CompiledPolicy::patch`]. May not touch: the compiled sets (shared as they are), the
//! member sets (rebuilt by `members`).
//!
//! # Semantics (why lookups are exact)
//! For a group `g` with a delta, the new rule list is the base list with the rules at
//! `removed` (base indices) taken out and the rules of `added` (new indices) put in; the
//! base rules kept, in order, fill the other new indices (a monotone map). Each kept base
//! rule is equal, in every field the compiler reads, to the new rule at its new index
//! (the diff pairs only such rules), so the new policy's rules are the kept base rules
//! (renumbered) plus the added ones. For a set holding a changed group:
//! * `admitting_rule` = the lower (in model order: `RuleRef`) of the first *kept* base
//!   rule matching and the first added rule matching. The first kept one is the base's
//!   admitting rule when that one is not removed; when it is, a linear scan of the set's
//!   base rules in order, skipping the removed ones (the slow path: only for a key the
//!   removed rule admitted, until the next compile folds the delta in). Base indices are
//!   then renumbered to new ones.
//! * `allows`: when no changed group of the set lost a rule, the base's answer or an added
//!   rule matching; else whether `admitting_rule` finds one.
//!   A set holding no changed group answers from its compiled structures alone; an empty
//!   delta (`None`) costs one predictable branch.
//!
//! # Bounds
//! A delta holds at most [`MAX_DELTA`] rule changes over all groups; beyond that (or under
//! any change other than rules of existing groups: group added, removed, renamed or its
//! `stateful` flag changed, address groups, port group lists or port security), `patch`
//! answers `None` and the caller compiles ([`CompiledPolicy::recompile`]), which folds
//! the delta in. The base rules in flat form are built once, at the first patch after a
//! compile (O(rules), no allocation per rule but for address-group remotes), then shared
//! by every policy patched from that compile, an empty delta's too.

use std::sync::Arc;

use super::addr::Addr;
use super::compile::{flat_rules, Resolver};
use super::members::{self, GroupMembers};
use super::ports::PortRange;
use super::{CompiledPolicy, PortSlot, SetPolicy};
use crate::flow::{FlowKey, FAMILY_V4, FAMILY_V6};
use crate::policy::{Direction, EtherType, Model, Remote, Rule, RuleRef};

/// Most rule changes (removed plus added, over all groups) a delta holds before a patch
/// gives way to a compile.
pub const MAX_DELTA: usize = 64;

/// A rule's remote, resolved.
#[derive(Debug, Clone)]
pub(super) enum FlatRemote {
    Any,
    /// A prefix (of one family: the other family's keys never match it).
    V4(u32, u32),
    V6(u128, u128),
    /// Address ranges (a prefix, or an address group's CIDRs), per family.
    Ranges {
        v4: Box<[(u32, u32)]>,
        v6: Box<[(u128, u128)]>,
    },
    /// A security group's member set (index in the model); `None`: unknown group.
    Group(Option<u32>),
}

/// One rule in the form the patch lookups match against a key, with the fields the
/// compiler reads (to diff it against a model's rule).
#[derive(Debug, Clone)]
pub(super) struct FlatRule {
    pub(super) direction: Direction,
    pub(super) ethertype: EtherType,
    pub(super) protocol: Option<u8>,
    pub(super) port_range_min: Option<u16>,
    pub(super) port_range_max: Option<u16>,
    pub(super) remote: Remote,
    /// The `dport` values the rule allows (`None`: none, the rule never matches).
    pub(super) ports: Option<PortRange>,
    pub(super) resolved: FlatRemote,
}

impl FlatRule {
    /// Whether the rule matches `key` in direction `dir` (the classifier's semantics, the
    /// member sets of `members`).
    #[inline]
    fn matches(&self, dir: Direction, key: &FlowKey, members: &[Arc<GroupMembers>]) -> bool {
        if self.direction != dir {
            return false;
        }
        let v6 = match (self.ethertype, key.family) {
            (EtherType::IPv4, FAMILY_V4) => false,
            (EtherType::IPv6, FAMILY_V6) => true,
            _ => return false,
        };
        if self.protocol.is_some_and(|p| p != key.proto) {
            return false;
        }
        if !self
            .ports
            .is_some_and(|r| r.lo <= key.dport && key.dport <= r.hi)
        {
            return false;
        }
        let remote = match dir {
            Direction::Ingress => &key.src,
            Direction::Egress => &key.dst,
        };
        if v6 {
            self.remote_has(u128::from_key(remote), members)
        } else {
            self.remote_has(u32::from_key(remote), members)
        }
    }

    fn remote_has<A: Addr + RangesOf>(&self, a: A, members: &[Arc<GroupMembers>]) -> bool {
        match &self.resolved {
            FlatRemote::Any => true,
            FlatRemote::V4(lo, hi) => A::v4(a).is_some_and(|a| *lo <= a && a <= *hi),
            FlatRemote::V6(lo, hi) => A::v6(a).is_some_and(|a| *lo <= a && a <= *hi),
            FlatRemote::Ranges { v4, v6 } => {
                A::ranges(v4, v6).iter().any(|&(lo, hi)| lo <= a && a <= hi)
            }
            FlatRemote::Group(Some(g)) => members
                .get(*g as usize)
                .is_some_and(|m| A::members(m).contains(a)),
            FlatRemote::Group(None) => false,
        }
    }

    /// Whether `r` compiles the same as this rule (the fields the compiler reads).
    fn same(&self, r: &Rule) -> bool {
        self.direction == r.direction
            && self.ethertype == r.ethertype
            && self.protocol == r.protocol
            && self.port_range_min == r.port_range_min
            && self.port_range_max == r.port_range_max
            && self.remote == r.remote
    }
}

trait RangesOf: Sized {
    fn ranges<'a>(v4: &'a [(u32, u32)], v6: &'a [(u128, u128)]) -> &'a [(Self, Self)];
    fn v4(self) -> Option<u32>;
    fn v6(self) -> Option<u128>;
}
impl RangesOf for u32 {
    fn ranges<'a>(v4: &'a [(u32, u32)], _: &'a [(u128, u128)]) -> &'a [(u32, u32)] {
        v4
    }
    fn v4(self) -> Option<u32> {
        Some(self)
    }
    fn v6(self) -> Option<u128> {
        None
    }
}
impl RangesOf for u128 {
    fn ranges<'a>(_: &'a [(u32, u32)], v6: &'a [(u128, u128)]) -> &'a [(u128, u128)] {
        v6
    }
    fn v4(self) -> Option<u32> {
        None
    }
    fn v6(self) -> Option<u128> {
        Some(self)
    }
}

/// The base model's rules in flat form, per group (model index).
pub(super) type BaseRules = Arc<[Arc<[FlatRule]>]>;

/// The changes of one group since the base.
#[derive(Debug, Clone)]
pub(super) struct GroupDelta {
    /// Index of the group in the model.
    pub(super) group: u32,
    /// Base rule indices removed, ascending.
    removed: Box<[u32]>,
    /// Rules added, with their index in the new rule list, ascending.
    added: Box<[(u32, FlatRule)]>,
    /// Rules added minus removed, per direction (ingress, egress).
    net: [isize; 2],
}

impl GroupDelta {
    fn is_removed(&self, base_rule: u32) -> bool {
        self.removed.binary_search(&base_rule).is_ok()
    }

    /// The new index of kept base rule `base_rule`.
    fn renumber(&self, base_rule: u32) -> u32 {
        let kept_rank = base_rule - self.removed.partition_point(|&r| r < base_rule) as u32;
        let mut n = kept_rank;
        for &(a, _) in self.added.iter() {
            if a <= n {
                n += 1;
            } else {
                break;
            }
        }
        n
    }

    fn changes(&self) -> usize {
        self.removed.len() + self.added.len()
    }
}

/// What a patched policy adds to its base's compiled sets.
#[derive(Debug)]
pub(super) struct Delta {
    /// The base model's rules in flat form, per group (model index).
    base: BaseRules,
    /// The changed groups, ascending by group index.
    groups: Box<[GroupDelta]>,
    /// Whether some changed group lost a rule.
    any_removed: bool,
    /// Per port (index in `CompiledPolicy::ports`): whether its set holds a changed group,
    /// worked out once per patch so that lookups of every other port take the compiled
    /// path alone.
    ports: Box<[bool]>,
}

impl Delta {
    /// The changed groups the set holds.
    #[inline]
    fn touching<'a>(&'a self, set: &'a SetPolicy) -> impl Iterator<Item = &'a GroupDelta> + 'a {
        self.groups
            .iter()
            .filter(|d| set.groups.binary_search(&d.group).is_ok())
    }

    fn group(&self, g: u32) -> Option<&GroupDelta> {
        self.groups
            .binary_search_by_key(&g, |d| d.group)
            .ok()
            .map(|i| &self.groups[i])
    }

    /// Total rule changes.
    pub(super) fn changes(&self) -> usize {
        self.groups.iter().map(GroupDelta::changes).sum()
    }

    /// Whether port `port`'s set holds a changed group.
    #[inline]
    pub(super) fn touches_port(&self, port: usize) -> bool {
        self.ports.get(port).copied().unwrap_or(false)
    }

    /// Whether group `g` (model index) has changes.
    pub(super) fn touches(&self, g: usize) -> bool {
        self.group(g as u32).is_some()
    }
}

/// Which entries of `base` and `new` a diff pairs: `None` when more than `budget` rules
/// differ. Pairs only rules that compile the same, in order (any such alignment is exact;
/// a greedy one with a bounded look-ahead is small for the edits that happen: one rule
/// added or removed somewhere).
fn diff(base: &[FlatRule], new: &[Rule], budget: usize) -> Option<(Vec<u32>, Vec<u32>)> {
    let (mut removed, mut added) = (Vec::new(), Vec::new());
    // The common prefix and suffix first: one edit anywhere is then exactly its rule.
    let mut i = base.iter().zip(new).take_while(|(b, n)| b.same(n)).count();
    let mut j = i;
    let suffix = base[i..]
        .iter()
        .rev()
        .zip(new[j..].iter().rev())
        .take_while(|(b, n)| b.same(n))
        .count();
    let (bend, nend) = (base.len() - suffix, new.len() - suffix);
    let left = |r: &Vec<u32>, a: &Vec<u32>| budget.checked_sub(r.len() + a.len());
    while i < bend && j < nend {
        if base[i].same(&new[j]) {
            i += 1;
            j += 1;
            continue;
        }
        let room = left(&removed, &added)?;
        if room == 0 {
            return None;
        }
        // The nearest resync: `k` base rules removed, or `k` new rules added.
        let mut step = None;
        for k in 1..=room {
            if i + k < bend && base[i + k].same(&new[j]) {
                step = Some((k, 0));
                break;
            }
            if j + k < nend && base[i].same(&new[j + k]) {
                step = Some((0, k));
                break;
            }
        }
        // No resync in reach: the base rule replaced by the new one.
        let (r, a) = step.unwrap_or((1, 1));
        removed.extend((i..i + r).map(|x| x as u32));
        added.extend((j..j + a).map(|x| x as u32));
        i += r;
        j += a;
    }
    removed.extend((i..bend).map(|x| x as u32));
    added.extend((j..nend).map(|x| x as u32));
    left(&removed, &added)?;
    Some((removed, added))
}

fn dir_index(d: Direction) -> usize {
    match d {
        Direction::Ingress => 0,
        Direction::Egress => 1,
    }
}

/// Whether the patch applies at all: same groups (names, order, `stateful`), same address
/// groups, every port with the same group list and port-security flag.
fn patchable(old: &Model, new: &Model) -> bool {
    old.security_groups.len() == new.security_groups.len()
        && old
            .security_groups
            .iter()
            .zip(&new.security_groups)
            .all(|(a, b)| a.name == b.name && a.stateful == b.stateful)
        && old.ports.len() == new.ports.len()
        && old.ports.iter().zip(&new.ports).all(|(a, b)| {
            a.port_security == b.port_security && a.security_groups == b.security_groups
        })
        && old.address_groups == new.address_groups
}

impl CompiledPolicy {
    /// The policy of `new`, given that `self` is the policy of `old`, as a patch: when
    /// `new` differs from `old` in the rules of existing groups (and in members, ports'
    /// addresses, anything the classifier does not compile), every compiled set is shared
    /// and the rule changes since the compile that built them are a delta (module doc);
    /// member sets are rebuilt for the groups whose members changed. `None` when the
    /// change is of another kind or the delta would exceed [`MAX_DELTA`] rules: compile
    /// then ([`CompiledPolicy::recompile`]). Answers `allows`, `admitting_rule`,
    /// `rule_count`, `is_stateful` and `port_security` exactly as
    /// [`CompiledPolicy::compile`]`(new, epoch)`; `stats()` are the base's (with the new
    /// member sets). Cost: one comparison per rule of the model plus O(delta).
    pub fn patch(&self, old: &Model, new: &Model, epoch: u64) -> Option<CompiledPolicy> {
        if self.ports.len() != old.ports.len()
            || self.members.len() != old.security_groups.len()
            || !patchable(old, new)
        {
            return None;
        }
        // Kept by every policy patched from the same compile (an empty delta too).
        let base: BaseRules = match &self.base_rules {
            Some(b) => b.clone(),
            None => flat_rules(old),
        };
        let resolver = Resolver::new(new);
        let mut groups = Vec::new();
        let mut budget = MAX_DELTA;
        for (gi, g) in new.security_groups.iter().enumerate() {
            let b = base.get(gi)?;
            // Unchanged since `old`: the previous delta of the group holds.
            let unchanged = old.security_groups[gi].rules.len() == g.rules.len()
                && old.security_groups[gi]
                    .rules
                    .iter()
                    .zip(&g.rules)
                    .all(|(x, y)| super::incremental::same_compiled(x, y));
            let gd = if unchanged {
                match self.delta.as_ref().and_then(|d| d.group(gi as u32)) {
                    Some(d) => d.clone(),
                    None => continue,
                }
            } else {
                let (removed, added) = diff(b, &g.rules, budget)?;
                if removed.is_empty() && added.is_empty() {
                    continue;
                }
                let mut net = [0isize; 2];
                for &r in &removed {
                    net[dir_index(b[r as usize].direction)] -= 1;
                }
                let added: Box<[(u32, FlatRule)]> = added
                    .iter()
                    .map(|&j| {
                        let r = &g.rules[j as usize];
                        net[dir_index(r.direction)] += 1;
                        (j, resolver.flat(r))
                    })
                    .collect();
                GroupDelta {
                    group: gi as u32,
                    removed: removed.into_boxed_slice(),
                    added,
                    net,
                }
            };
            budget = budget.checked_sub(gd.changes())?;
            groups.push(gd);
        }
        let members = members::rebuild_for(&self.members, old, new);
        let mut stats = super::PolicyStats {
            member_entries: 0,
            member_bytes: 0,
            ..self.stats
        };
        for m in members.iter() {
            stats.member_entries += m.len();
            stats.member_bytes += m.bytes();
        }
        let any_removed = groups.iter().any(|g| !g.removed.is_empty());
        let delta = (!groups.is_empty()).then(|| {
            let mut d = Delta {
                base: base.clone(),
                groups: groups.into_boxed_slice(),
                any_removed,
                ports: Box::default(),
            };
            d.ports = self
                .ports
                .iter()
                .map(|slot| match slot {
                    PortSlot::Rules(s) => d.touching(s).next().is_some(),
                    _ => false,
                })
                .collect();
            Arc::new(d)
        });
        Some(CompiledPolicy {
            epoch,
            ports: self.ports.clone(),
            members,
            stats,
            delta,
            base_rules: Some(base),
        })
    }

    /// Rule changes the policy holds beside its compiled sets (0: none, as compiled).
    pub fn delta_rules(&self) -> usize {
        self.delta.as_ref().map_or(0, |d| d.changes())
    }

    /// `allows` of a port whose set may hold a changed group.
    #[cold]
    #[inline(never)]
    pub(super) fn delta_allows(
        &self,
        d: &Delta,
        s: &SetPolicy,
        dir: Direction,
        key: &FlowKey,
        remote: &[u8; 16],
    ) -> bool {
        let mut touched = d.touching(s).peekable();
        if touched.peek().is_none() {
            return s.dir(dir).allows(remote, key, &self.members);
        }
        if !d.any_removed || d.touching(s).all(|g| g.removed.is_empty()) {
            return s.dir(dir).allows(remote, key, &self.members)
                || touched.any(|g| {
                    g.added
                        .iter()
                        .any(|(_, r)| r.matches(dir, key, &self.members))
                });
        }
        self.delta_first(d, s, dir, key, remote).is_some()
    }

    /// `admitting_rule` of a port whose set may hold a changed group (module doc).
    #[cold]
    #[inline(never)]
    pub(super) fn delta_first(
        &self,
        d: &Delta,
        s: &SetPolicy,
        dir: Direction,
        key: &FlowKey,
        remote: &[u8; 16],
    ) -> Option<RuleRef> {
        let base_first = s
            .dir(dir)
            .first_rule(remote, key, &self.members)
            .and_then(|o| s.refs.get(o as usize).copied());
        let mut touched = d.touching(s).peekable();
        if touched.peek().is_none() {
            return base_first;
        }
        let kept = match base_first {
            Some(r) if d.group(r.group).is_some_and(|g| g.is_removed(r.rule)) => {
                self.scan_kept(d, s, dir, key)
            }
            other => other,
        }
        .map(|r| match d.group(r.group) {
            Some(g) => RuleRef {
                group: r.group,
                rule: g.renumber(r.rule),
            },
            None => r,
        });
        let added = touched
            .flat_map(|g| {
                g.added
                    .iter()
                    .find(|(_, r)| r.matches(dir, key, &self.members))
                    .map(|&(i, _)| RuleRef {
                        group: g.group,
                        rule: i,
                    })
            })
            .min();
        match (kept, added) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        }
    }

    /// The first base rule of the set, in model order, that the delta keeps and that
    /// matches (base indices): the slow path, a linear scan.
    fn scan_kept(
        &self,
        d: &Delta,
        s: &SetPolicy,
        dir: Direction,
        key: &FlowKey,
    ) -> Option<RuleRef> {
        for &g in s.groups.iter() {
            let gd = d.group(g);
            let rules = d.base.get(g as usize)?;
            for (i, r) in rules.iter().enumerate() {
                if gd.is_some_and(|gd| gd.is_removed(i as u32)) {
                    continue;
                }
                if r.matches(dir, key, &self.members) {
                    return Some(RuleRef {
                        group: g,
                        rule: i as u32,
                    });
                }
            }
        }
        None
    }

    /// `rule_count` with the delta's changes of the set's groups.
    pub(super) fn delta_count(d: &Delta, s: &SetPolicy, dir: Direction, base: usize) -> usize {
        let net: isize = d.touching(s).map(|g| g.net[dir_index(dir)]).sum();
        base.saturating_add_signed(net)
    }

    /// Whether a port's set holds a group the delta changed (for burst lookups, which
    /// fall back to `allows`).
    pub(super) fn delta_touches_port(&self, port: usize) -> bool {
        self.delta.as_ref().is_some_and(|d| d.touches_port(port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(p: u16) -> Rule {
        Rule {
            direction: Direction::Ingress,
            ethertype: EtherType::IPv4,
            protocol: Some(6),
            protocol_zero: false,
            port_range_min: Some(p),
            port_range_max: Some(p),
            remote: Remote::Any,
            remote_ip_prefix_raw: None,
            description: String::new(),
        }
    }

    fn flat(ports: &[u16]) -> Vec<FlatRule> {
        let m = Model::default();
        let r = Resolver::new(&m);
        ports.iter().map(|&p| r.flat(&rule(p))).collect()
    }

    fn rules(ports: &[u16]) -> Vec<Rule> {
        ports.iter().map(|&p| rule(p)).collect()
    }

    #[test]
    fn diff_finds_single_edits_and_respects_the_budget() {
        let b = flat(&[1, 2, 3, 4, 5]);
        assert_eq!(
            diff(&b, &rules(&[1, 2, 3, 4, 5]), 8),
            Some((vec![], vec![]))
        );
        assert_eq!(diff(&b, &rules(&[1, 2, 4, 5]), 8), Some((vec![2], vec![])));
        assert_eq!(
            diff(&b, &rules(&[1, 2, 3, 4, 5, 6]), 8),
            Some((vec![], vec![5]))
        );
        assert_eq!(
            diff(&b, &rules(&[9, 1, 2, 3, 4, 5]), 8),
            Some((vec![], vec![0]))
        );
        assert_eq!(
            diff(&b, &rules(&[1, 9, 3, 4, 5]), 8),
            Some((vec![1], vec![1]))
        );
        assert_eq!(
            diff(&b, &rules(&[2, 3, 5, 7]), 8),
            Some((vec![0, 3], vec![3]))
        );
        assert_eq!(diff(&b, &rules(&[6, 7, 8]), 4), None, "8 changes > 4");
    }

    #[test]
    fn renumber_fills_the_gaps_in_order() {
        // base 0..5, 1 and 3 removed, new indices 0 and 2 added: new = [A, b0, A, b2, b4].
        let m = Model::default();
        let r = Resolver::new(&m);
        let gd = GroupDelta {
            group: 0,
            removed: vec![1, 3].into(),
            added: vec![(0, r.flat(&rule(1))), (2, r.flat(&rule(1)))].into(),
            net: [0, 0],
        };
        assert_eq!(
            [0, 2, 4].map(|b| gd.renumber(b)),
            [1, 3, 4],
            "kept base rules take the free new indices in order"
        );
        assert!(gd.is_removed(3) && !gd.is_removed(2));
    }
}
