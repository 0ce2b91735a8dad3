//! Compilation: a validated model → the lookup structures of every distinct group set.
//!
//! Owns: remote resolution, port specs of rules, the rules' model order, the sweeps that
//! build each bucket and its attribution.
//! May not touch: the lookup path (it only builds what `super` reads).
//!
//! # Compilation
//! * Address groups are resolved once into per-family sorted address ranges, part of the
//!   address decomposition. Remote groups are not: a `Group(g)` rule becomes a group term
//!   of its bucket (the group's index in the model, its `dport` interval), the terms of
//!   one group in one bucket merged into one first-rule envelope; the members (fixed IPs
//!   as hosts plus allowed-address-pair CIDRs of every port bound to `g`, plus
//!   `Model::remote_members[g]`) are `members::GroupMembers`, built beside the rules and
//!   rebuilt alone by [`CompiledPolicy::with_members`]. An unknown group: no term.
//! * A rule becomes a *port spec* — the set of `dport` values it allows — interned by value:
//!   ports for tcp/udp/sctp/dccp/udplite, `(type << 8) | code` intervals for ICMP of the
//!   rule's family (type only = 256 consecutive values, no type = everything), everything
//!   for other protocols. Protocol-any rules are added, as "everything", to every protocol
//!   bucket and form bucket 0 on their own, so a lookup consults exactly one bucket.
//! * Per bucket, the address ranges of each spec are merged (sorted, disjoint, non-adjacent)
//!   and a sweep over their start/end events yields the elementary intervals with the set of
//!   specs active on each (a bitset). Each distinct bitset is turned once into the union of
//!   its specs' intervals, which is interned as a class: equal unions share a class id, and
//!   neighbouring elementary intervals with the same class are merged.
//! * The attribution (which rule is first) is a second sweep per bucket over the rules
//!   themselves (not the specs): the rules of a set are numbered in model order (groups by
//!   index in `Model::security_groups`, then rules; `SetPolicy::refs` maps the number back
//!   to a `RuleRef`), each elementary interval gets the envelope of its active rules — each
//!   `dport` tagged with the lowest-numbered rule covering it, only the first active rule of
//!   each spec considered — interned by value (`attrib`).
//! * Ports with identical (deduplicated, sorted) group sets share one `Arc<SetPolicy>`.
//!   The remote-group member sets do not depend on the port (nor live in the `SetPolicy`),
//!   so this sharing is exact.
//!
//! Cost: O(R log R) per distinct group set and direction, R = number of (rule, remote
//! range) pairs, plus O(E × S/64) for the sweep's bitsets (E events, S distinct specs),
//! plus for the attribution O(E × (R'/64 + k log k)) (R' rules in the bucket, k active
//! specs on an interval); figures in `attrib`.

use std::collections::HashMap;
use std::sync::Arc;

use ipnet::IpNet;

use super::addr::{Addr, AddrIndex};
use super::attrib::{Attribution, AttributionBuilder, ATTR_NONE};
use super::delta::{FlatRemote, FlatRule};
use super::incremental::set_key;
use super::members::{self, GroupMembers, GroupTerm};
use super::ports::{normalize, ClassTable, PortRange, CLASS_ALLOW, CLASS_DENY, FULL};
use super::{Bucket, CompiledPolicy, DirTable, FamilyTable, PolicyStats, PortSlot, SetPolicy};
use crate::classifier::groups_in_model_order;
use crate::flow::proto;
use crate::policy::{Direction, EtherType, Model, Remote, Rule, RuleRef, SecurityGroup};

/// How a rule's port fields apply, by (family, protocol).
enum PortKind {
    Ports,
    Icmp,
    Ignored,
}

fn port_kind(v6: bool, p: u8) -> PortKind {
    if proto::has_ports(p) {
        PortKind::Ports
    } else if (!v6 && p == proto::ICMP) || (v6 && p == proto::ICMPV6) {
        PortKind::Icmp
    } else {
        PortKind::Ignored
    }
}

/// The `dport` values a rule allows (empty = the rule can never match).
fn rule_spec(v6: bool, r: &Rule) -> Vec<PortRange> {
    let Some(p) = r.protocol else {
        return vec![FULL];
    };
    match port_kind(v6, p) {
        PortKind::Ignored => vec![FULL],
        PortKind::Ports => {
            let (lo, hi) = match (r.port_range_min, r.port_range_max) {
                (None, None) => (0, u16::MAX),
                (Some(a), Some(b)) => (a, b),
                (Some(a), None) | (None, Some(a)) => (a, a),
            };
            if lo > hi {
                vec![]
            } else {
                vec![PortRange { lo, hi }]
            }
        }
        PortKind::Icmp => match (r.port_range_min, r.port_range_max) {
            (None, _) => vec![FULL],
            (Some(t), _) if t > 255 => vec![],
            (Some(t), None) => vec![PortRange {
                lo: t << 8,
                hi: (t << 8) | 0xff,
            }],
            (Some(_), Some(c)) if c > 255 => vec![],
            (Some(t), Some(c)) => {
                let v = (t << 8) | c;
                vec![PortRange { lo: v, hi: v }]
            }
        },
    }
}

/// Remote sets resolved to address ranges, per family.
#[derive(Default)]
struct RangeSet {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl RangeSet {
    fn push(&mut self, net: &IpNet) {
        if let Some(r) = u32::range_of(net) {
            self.v4.push(r);
        }
        if let Some(r) = u128::range_of(net) {
            self.v6.push(r);
        }
    }
}

trait FamilyRanges<A> {
    fn ranges(&self) -> &[(A, A)];
}
impl FamilyRanges<u32> for RangeSet {
    fn ranges(&self) -> &[(u32, u32)] {
        &self.v4
    }
}
impl FamilyRanges<u128> for RangeSet {
    fn ranges(&self) -> &[(u128, u128)] {
        &self.v6
    }
}

pub(super) struct Resolver<'m> {
    /// Group name → index in `Model::security_groups` (the first of a duplicated name):
    /// the member set a `Remote::Group` rule's term names.
    groups: HashMap<&'m str, u32>,
    addr_groups: HashMap<&'m str, RangeSet>,
    empty: RangeSet,
}

impl<'m> Resolver<'m> {
    pub(super) fn new(model: &'m Model) -> Self {
        let mut groups: HashMap<&str, u32> = HashMap::new();
        for (i, g) in model.security_groups.iter().enumerate() {
            groups.entry(g.name.as_str()).or_insert(i as u32);
        }
        let mut addr_groups = HashMap::new();
        for a in &model.address_groups {
            let mut set = RangeSet::default();
            for n in &a.addresses {
                set.push(n);
            }
            addr_groups.insert(a.name.as_str(), set);
        }
        Resolver {
            groups,
            addr_groups,
            empty: RangeSet::default(),
        }
    }

    /// The ranges of a remote for family `A`; `None` = any address.
    fn remote<A: Addr>(&self, r: &Remote) -> Option<RemoteRanges<'_, A>>
    where
        RangeSet: FamilyRanges<A>,
    {
        match r {
            Remote::Any => None,
            Remote::Prefix(n) => Some(RemoteRanges::One(A::range_of(n))),
            Remote::Group(g) => Some(RemoteRanges::Group(self.groups.get(g.as_str()).copied())),
            Remote::AddressGroup(g) => Some(RemoteRanges::Many(
                self.addr_groups
                    .get(g.as_str())
                    .unwrap_or(&self.empty)
                    .ranges(),
            )),
        }
    }
}

impl Resolver<'_> {
    /// Rule `r` in flat form (what a patch matches key by key), resolved as the compiled
    /// sets resolve it.
    pub(super) fn flat(&self, r: &Rule) -> FlatRule {
        let v6 = r.ethertype == EtherType::IPv6;
        let resolved = match &r.remote {
            Remote::Any => FlatRemote::Any,
            Remote::Prefix(n) => match (u32::range_of(n), u128::range_of(n)) {
                (Some((lo, hi)), _) => FlatRemote::V4(lo, hi),
                (None, Some((lo, hi))) => FlatRemote::V6(lo, hi),
                (None, None) => FlatRemote::Group(None),
            },
            Remote::Group(g) => FlatRemote::Group(self.groups.get(g.as_str()).copied()),
            Remote::AddressGroup(g) => {
                let set = self.addr_groups.get(g.as_str()).unwrap_or(&self.empty);
                FlatRemote::Ranges {
                    v4: set.v4.clone().into_boxed_slice(),
                    v6: set.v6.clone().into_boxed_slice(),
                }
            }
        };
        FlatRule {
            direction: r.direction,
            ethertype: r.ethertype,
            protocol: r.protocol,
            port_range_min: r.port_range_min,
            port_range_max: r.port_range_max,
            remote: r.remote.clone(),
            ports: rule_spec(v6, r).first().copied(),
            resolved,
        }
    }
}

/// Every rule of `model` in flat form, per group (model index).
pub(super) fn flat_rules(model: &Model) -> Arc<[Arc<[FlatRule]>]> {
    let resolver = Resolver::new(model);
    model
        .security_groups
        .iter()
        .map(|g| g.rules.iter().map(|r| resolver.flat(r)).collect())
        .collect()
}

enum RemoteRanges<'a, A> {
    One(Option<(A, A)>),
    Many(&'a [(A, A)]),
    /// A security group's member set (`None`: a group the model does not have, empty).
    Group(Option<u32>),
}

/// Interns port specs and classes while building one bucket, and keeps each rule's own
/// ranges for the attribution sweep.
struct BucketBuilder<A> {
    /// Per spec id: its intervals and its address ranges.
    spec_ranges: Vec<Vec<PortRange>>,
    spec_addrs: Vec<Vec<(A, A)>>,
    spec_ids: HashMap<Vec<PortRange>, usize>,
    /// The rules that can match, in model order (for the attribution).
    rules: Vec<BucketRule<A>>,
    /// The rules whose remote is a group: (member set, ordinal, `dport` interval), in
    /// model order.
    groups: Vec<(u32, u32, PortRange)>,
}

/// A rule of a bucket, for the attribution sweep.
struct BucketRule<A> {
    /// Ordinal in the set's rule table.
    ordinal: u32,
    /// Its spec id (rules with equal specs share it) and the spec's one interval.
    spec: usize,
    ports: PortRange,
    addrs: Vec<(A, A)>,
}

impl<A: Addr> BucketBuilder<A> {
    fn new() -> Self {
        BucketBuilder {
            spec_ranges: Vec::new(),
            spec_addrs: Vec::new(),
            spec_ids: HashMap::new(),
            rules: Vec::new(),
            groups: Vec::new(),
        }
    }

    fn spec(&mut self, spec: &[PortRange]) -> usize {
        if let Some(&id) = self.spec_ids.get(spec) {
            return id;
        }
        let id = self.spec_ranges.len();
        self.spec_ranges.push(spec.to_vec());
        self.spec_addrs.push(Vec::new());
        self.spec_ids.insert(spec.to_vec(), id);
        id
    }

    /// Add rule `ordinal` (calls come in increasing ordinals).
    fn add(&mut self, ordinal: u32, spec: &[PortRange], remote: &Option<RemoteRanges<'_, A>>) {
        let full = [(A::default(), A::MAX)];
        let rs: &[(A, A)] = match remote {
            None => &full,
            Some(RemoteRanges::One(Some(r))) => std::slice::from_ref(r),
            // A prefix of the other family: no address of this one.
            Some(RemoteRanges::One(None)) => return,
            Some(RemoteRanges::Many(rs)) => rs,
            Some(RemoteRanges::Group(set)) => {
                if let (Some(set), [one]) = (set, spec) {
                    self.groups.push((*set, ordinal, *one));
                }
                return;
            }
        };
        let [one] = spec else {
            // `[]`: no dport value (the rule never matches).
            return;
        };
        let id = self.spec(spec);
        self.spec_addrs[id].extend_from_slice(rs);
        self.rules.push(BucketRule {
            ordinal,
            spec: id,
            ports: *one,
            addrs: rs.to_vec(),
        });
    }

    fn build(self) -> (Bucket<A>, Attribution<A>) {
        let mut class_ids: HashMap<Vec<PortRange>, u32> = HashMap::new();
        let mut off: Vec<u32> = vec![0, 0, 1];
        let mut ranges: Vec<PortRange> = vec![FULL];
        class_ids.insert(Vec::new(), CLASS_DENY);
        class_ids.insert(vec![FULL], CLASS_ALLOW);
        let spec_ranges = &self.spec_ranges;
        let (starts, classes) = sweep(self.spec_addrs, CLASS_DENY, true, |active| {
            let mut union = Vec::new();
            for id in bits(active) {
                let spec = &spec_ranges[id];
                if spec.first() == Some(&FULL) {
                    union = vec![FULL];
                    break;
                }
                union.extend_from_slice(spec);
            }
            let union = normalize(union);
            let next = (off.len() - 1) as u32;
            *class_ids.entry(union).or_insert_with_key(|u| {
                ranges.extend_from_slice(u);
                off.push(ranges.len() as u32);
                next
            })
        });
        let bucket = Bucket {
            addr: AddrIndex::new(starts, classes),
            classes: ClassTable::new(off, ranges),
            terms: group_terms(self.groups),
        };

        // Of the active rules with equal specs only the first can be the first for any
        // `dport`: `seen[spec]` marks the specs met on the current interval (stamp `now`).
        let mut attr = AttributionBuilder::new();
        let rules: Vec<(u32, usize, PortRange)> = self
            .rules
            .iter()
            .map(|r| (r.ordinal, r.spec, r.ports))
            .collect();
        let mut seen = vec![0u32; self.spec_ranges.len()];
        let mut now = 0u32;
        let addrs = self.rules.into_iter().map(|r| r.addrs).collect();
        let (starts, classes) = sweep(addrs, ATTR_NONE, false, |active| {
            now += 1;
            attr.class(bits(active).filter_map(|i| {
                let (ordinal, spec, ports) = rules[i];
                (std::mem::replace(&mut seen[spec], now) != now).then_some((ordinal, ports))
            }))
        });
        (bucket, attr.finish(starts, classes))
    }
}

/// One term per group named by the bucket's rules (ascending set id), each with the
/// first-rule envelope of its rules' `dport` intervals.
fn group_terms(mut rules: Vec<(u32, u32, PortRange)>) -> Box<[GroupTerm]> {
    // Stable: within a group, rules stay in model order.
    rules.sort_by_key(|r| r.0);
    rules
        .chunk_by(|a, b| a.0 == b.0)
        .map(|c| GroupTerm {
            set: c[0].0,
            ports: AttributionBuilder::envelope_of(c.iter().map(|&(_, o, p)| (o, p)))
                .into_boxed_slice(),
        })
        .collect()
}

/// The set bits of a bitset, ascending.
fn bits(words: &[u64]) -> Bits<'_> {
    Bits {
        words,
        w: 0,
        cur: words.first().copied().unwrap_or(0),
    }
}

struct Bits<'a> {
    words: &'a [u64],
    /// Index of the word `cur` holds what is left of.
    w: usize,
    cur: u64,
}

impl Iterator for Bits<'_> {
    type Item = usize;
    #[inline]
    fn next(&mut self) -> Option<usize> {
        while self.cur == 0 {
            self.w += 1;
            self.cur = *self.words.get(self.w)?;
        }
        let i = self.cur.trailing_zeros() as usize;
        self.cur &= self.cur - 1;
        Some(self.w * 64 + i)
    }
}

/// The elementary-interval decomposition of some sets of address ranges: merges each set's
/// ranges, sweeps their start / end events keeping the bitset of active sets, and asks
/// `class_of` for each elementary interval — once per distinct bitset if `memo` (worth it
/// when sets are few and `class_of` costly; with thousands of sets, hashing the bitset costs
/// more than the class). Returns the interval starts (`starts[0] == 0`) and
/// their classes, neighbours with the same class merged; below the first range is `none`.
fn sweep<A: Addr>(
    sets: Vec<Vec<(A, A)>>,
    none: u32,
    memo: bool,
    mut class_of: impl FnMut(&[u64]) -> u32,
) -> (Vec<A>, Vec<u32>) {
    // Merge each set's address ranges; emit start / end events.
    let nsets = sets.len();
    let mut events: Vec<(A, u32, bool)> = Vec::new();
    for (id, mut addrs) in sets.into_iter().enumerate() {
        addrs.sort_unstable();
        let mut merged: Vec<(A, A)> = Vec::with_capacity(addrs.len());
        for (lo, hi) in addrs {
            if let Some(last) = merged.last_mut() {
                // Overlapping or adjacent: extend.
                if last.1.checked_succ().is_none_or(|n| lo <= n) {
                    if hi > last.1 {
                        last.1 = hi;
                    }
                    continue;
                }
            }
            merged.push((lo, hi));
        }
        for (lo, hi) in merged {
            events.push((lo, id as u32, true));
            if let Some(end) = hi.checked_succ() {
                events.push((end, id as u32, false));
            }
        }
    }
    events.sort_unstable_by_key(|e| e.0);

    let words = nsets.div_ceil(64).max(1);
    let mut active = vec![0u64; words];
    let mut by_bitset: HashMap<Box<[u64]>, u32> = HashMap::new();
    let mut starts: Vec<A> = Vec::new();
    let mut classes: Vec<u32> = Vec::new();
    let push = |at: A, class: u32, starts: &mut Vec<A>, classes: &mut Vec<u32>| {
        if classes.last() != Some(&class) {
            starts.push(at);
            classes.push(class);
        }
    };
    if events.first().is_none_or(|e| e.0 != A::default()) {
        push(A::default(), none, &mut starts, &mut classes);
    }
    let mut i = 0;
    while i < events.len() {
        let at = events[i].0;
        while i < events.len() && events[i].0 == at {
            let (_, id, start) = events[i];
            let (w, b) = (id as usize / 64, id % 64);
            if start {
                active[w] |= 1 << b;
            } else {
                active[w] &= !(1 << b);
            }
            i += 1;
        }
        let class = if !memo {
            class_of(&active)
        } else if let Some(&c) = by_bitset.get(active.as_slice()) {
            c
        } else {
            let c = class_of(&active);
            by_bitset.insert(active.clone().into_boxed_slice(), c);
            c
        };
        push(at, class, &mut starts, &mut classes);
    }
    (starts, classes)
}

/// `rules`: every rule of the set with its ordinal in the set's rule table (model order).
fn build_family<A: Addr>(
    rules: &[(u32, &Rule)],
    dir: Direction,
    resolver: &Resolver<'_>,
) -> FamilyTable<A>
where
    RangeSet: FamilyRanges<A>,
{
    let v6 = A::BITS == 128;
    let want = if v6 { EtherType::IPv6 } else { EtherType::IPv4 };
    let rules: Vec<(u32, &Rule)> = rules
        .iter()
        .copied()
        .filter(|(_, r)| r.direction == dir && r.ethertype == want)
        .collect();

    // Protocols some rule names, in order of first appearance.
    let mut bucket_of = [0u16; 256];
    let mut protos: Vec<u8> = Vec::new();
    for (_, r) in &rules {
        if let Some(p) = r.protocol {
            if bucket_of[usize::from(p)] == 0 {
                protos.push(p);
                bucket_of[usize::from(p)] = protos.len() as u16;
            }
        }
    }
    let mut builders: Vec<BucketBuilder<A>> =
        (0..=protos.len()).map(|_| BucketBuilder::new()).collect();
    for &(ord, r) in &rules {
        let spec = rule_spec(v6, r);
        let remote = resolver.remote::<A>(&r.remote);
        match r.protocol {
            // Protocol any: its own bucket and every protocol bucket.
            None => {
                for b in builders.iter_mut() {
                    b.add(ord, &spec, &remote);
                }
            }
            Some(p) => builders[usize::from(bucket_of[usize::from(p)])].add(ord, &spec, &remote),
        }
    }
    let (buckets, attrib): (Vec<_>, Vec<_>) =
        builders.into_iter().map(BucketBuilder::build).unzip();
    FamilyTable {
        bucket_of,
        buckets: buckets.into_boxed_slice(),
        attrib: attrib.into_boxed_slice(),
    }
}

/// `groups`: the set's groups with their index in `Model::security_groups`, in model order.
fn build_set(groups: &[(usize, &SecurityGroup)], resolver: &Resolver<'_>) -> SetPolicy {
    let refs: Vec<RuleRef> = groups
        .iter()
        .flat_map(|&(gi, g)| {
            (0..g.rules.len()).map(move |ri| RuleRef {
                group: gi as u32,
                rule: ri as u32,
            })
        })
        .collect();
    let rules: Vec<(u32, &Rule)> = groups
        .iter()
        .flat_map(|(_, g)| g.rules.iter())
        .enumerate()
        .map(|(i, r)| (i as u32, r))
        .collect();
    let dir_table = |d: Direction| DirTable {
        v4: build_family::<u32>(&rules, d, resolver),
        v6: build_family::<u128>(&rules, d, resolver),
        rules: rules.iter().filter(|(_, r)| r.direction == d).count(),
    };
    SetPolicy {
        ingress: dir_table(Direction::Ingress),
        egress: dir_table(Direction::Egress),
        stateful: groups.iter().any(|(_, g)| g.stateful),
        refs: refs.into_boxed_slice(),
        groups: groups.iter().map(|&(gi, _)| gi as u32).collect(),
    }
}

fn family_stats<A: Addr>(f: &FamilyTable<A>, st: &mut PolicyStats) {
    for b in f.buckets.iter() {
        st.group_terms += b.terms.len();
        st.intervals += b.addr.len;
        st.classes += b.classes.len();
        st.max_search_rounds = st.max_search_rounds.max(b.addr.rounds);
    }
    for a in f.attrib.iter() {
        st.attribution_intervals += a.addr.len;
        st.attribution_classes += a.classes();
        st.attribution_bytes += a.bytes();
    }
    st.bytes += f.bytes();
}

fn set_stats(s: &SetPolicy, st: &mut PolicyStats) {
    for d in [&s.ingress, &s.egress] {
        family_stats(&d.v4, st);
        family_stats(&d.v6, st);
    }
    st.attribution_bytes += s.refs.len() * std::mem::size_of::<RuleRef>();
}

/// The policy of `model`: for each port, the set of its group names (deduplicated,
/// sorted) — taken from `reuse` when it has it (an unchanged set of the previous policy,
/// [`CompiledPolicy::recompile`]), else compiled once and shared by every port with that
/// set — and the member sets `members`.
pub(super) fn assemble<'m>(
    model: &'m Model,
    epoch: u64,
    resolver: &Resolver<'_>,
    members: Box<[Arc<GroupMembers>]>,
    mut reuse: impl FnMut(&[&'m str]) -> Option<Arc<SetPolicy>>,
) -> CompiledPolicy {
    let mut sets: HashMap<Vec<&str>, Arc<SetPolicy>> = HashMap::new();
    let mut stats = PolicyStats {
        ports: model.ports.len(),
        ..PolicyStats::default()
    };
    let ports: Arc<[PortSlot]> = model
        .ports
        .iter()
        .map(|p| {
            if !p.port_security {
                return PortSlot::AllowAll;
            }
            let names = set_key(&p.security_groups);
            if names.is_empty() {
                return PortSlot::DenyAll;
            }
            if let Some(s) = sets.get(&names) {
                return PortSlot::Rules(s.clone());
            }
            let set = reuse(&names).unwrap_or_else(|| {
                let groups = groups_in_model_order(model, &names);
                Arc::new(build_set(&groups, resolver))
            });
            stats.distinct_group_sets += 1;
            set_stats(&set, &mut stats);
            sets.insert(names, set.clone());
            PortSlot::Rules(set)
        })
        .collect();
    member_stats(&members, &mut stats);
    CompiledPolicy {
        epoch,
        ports,
        members,
        stats,
        delta: None,
        base_rules: None,
    }
}

impl CompiledPolicy {
    /// Compile a (validated) model. Never fails: references that validation should have
    /// rejected are empty sets (see the module doc of [`crate::classifier`]).
    pub fn compile(model: &Model, epoch: u64) -> CompiledPolicy {
        let resolver = Resolver::new(model);
        assemble(model, epoch, &resolver, members::build_all(model), |_| None)
    }

    /// `self` updated to `model` when `model` differs from the model `self` was compiled
    /// for in `Model::remote_members` alone ([`crate::classifier::members_only_change`]):
    /// shares every compiled rule structure with `self` (the port table is one `Arc`) and
    /// rebuilds only the member sets of the groups whose `remote_members` entry changed.
    /// Cost: O(groups) comparisons of the entries plus O(ports + members) per changed
    /// group; no rule is recompiled. Under any other difference the answer is undefined
    /// (checked by a debug assertion on the number of groups only): use
    /// [`CompiledPolicy::update`], which checks.
    pub fn with_members(&self, model: &Model, epoch: u64) -> CompiledPolicy {
        debug_assert_eq!(self.members.len(), model.security_groups.len());
        debug_assert_eq!(self.ports.len(), model.ports.len());
        let (members, _rebuilt) = members::rebuild_changed(&self.members, model);
        let mut stats = PolicyStats {
            member_entries: 0,
            member_bytes: 0,
            ..self.stats
        };
        member_stats(&members, &mut stats);
        CompiledPolicy {
            epoch,
            ports: self.ports.clone(),
            members,
            stats,
            delta: self.delta.clone(),
            base_rules: self.base_rules.clone(),
        }
    }

    /// The policy of `new`, given that `self` is the policy of `old`, the cheapest exact
    /// way: [`Self::with_members`] when only `remote_members` differ, else
    /// [`Self::patch`] (the rules changed are a delta beside the shared sets), else
    /// [`Self::recompile`] (which also folds a delta in). Answers as
    /// [`Self::compile`]`(new, epoch)`; `stats()` may be those of the sets compiled
    /// last (use [`Self::update`] where they must equal a fresh compile's).
    pub fn derive(&self, old: &Model, new: &Model, epoch: u64) -> CompiledPolicy {
        if crate::classifier::members_only_change(old, new) {
            return self.with_members(new, epoch);
        }
        self.patch(old, new, epoch)
            .unwrap_or_else(|| self.recompile(old, new, epoch))
    }

    /// The policy of `new`, given that `self` is the policy of `old`: [`Self::with_members`]
    /// when the two differ in `remote_members` alone, else [`Self::recompile`] (only the
    /// group sets the change touches are compiled). What an
    /// [`crate::control::connect::ApplyPolicy`] that keeps its last model calls.
    pub fn update(&self, old: &Model, new: &Model, epoch: u64) -> CompiledPolicy {
        if crate::classifier::members_only_change(old, new) {
            self.with_members(new, epoch)
        } else {
            self.recompile(old, new, epoch)
        }
    }
}

fn member_stats(members: &[Arc<GroupMembers>], st: &mut PolicyStats) {
    for m in members {
        st.member_entries += m.len();
        st.member_bytes += m.bytes();
    }
}
