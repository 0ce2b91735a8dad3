//! The compiled classifier: immutable per-port, per-direction lookup structures.
//!
//! # Layout
//! ```text
//! CompiledPolicy ─ ports[i] ─► PortSlot { AllowAll | DenyAll | Rules(Arc<SetPolicy>) }
//! SetPolicy (one per distinct set of groups, shared by every port bound to that set)
//!   ├─ ingress: DirTable ─┬─ v4: FamilyTable<u32>
//!   └─ egress:  DirTable  └─ v6: FamilyTable<u128>
//! FamilyTable
//!   ├─ bucket_of[proto: u8] ─► bucket index (0 = protocols no rule names)
//!   ├─ buckets[b]: Bucket                            (what `allows` reads)
//!   │    ├─ AddrIndex: remote address ─► class id   (elementary intervals, binary search)
//!   │    ├─ ClassTable: class id ─► sorted disjoint `dport` intervals
//!   │    └─ terms: GroupTerm per remote group named by the bucket's rules
//!   │         (member-set id, `dport` intervals tagged with the first rule's ordinal)
//!   └─ attrib[b]: Attribution                        (what `admitting_rule` reads)
//!        ├─ AddrIndex: remote address ─► attribution class id
//!        └─ class ─► sorted disjoint `dport` intervals tagged with a rule ordinal
//! SetPolicy.refs: rule ordinal ─► RuleRef (group index in the model, rule index)
//! CompiledPolicy.members[g]: GroupMembers (g = group index in the model), per family a
//!   MemberSet: exact host addresses (hashbrown set, foldhash) + sorted merged CIDR ranges
//! CompiledPolicy.delta: None | Delta (rule changes since the sets were compiled: per
//!   changed group, base rules removed + rules added in flat form; `delta`)
//! ```
//!
//! # Remote groups: member sets outside the rules (#18)
//! A rule whose remote is a security group (`Remote::Group(g)`) is not part of the
//! address decomposition: it compiles to a *group term* of its bucket (`members`), which
//! names `g`'s member set, and `g`'s members (its local member ports' fixed IPs and
//! allowed-address-pair CIDRs plus `Model::remote_members[g]`) are a separate immutable
//! [`members::GroupMembers`] held by the policy, not by the shared rule structures. So a
//! member joining or leaving on another host changes one set:
//! [`CompiledPolicy::with_members`] shares every `SetPolicy` (the port table is one `Arc`)
//! and rebuilds the member sets whose `remote_members` entry changed; the result is
//! published as a new epoch like any policy.
//!
//! `allows` reads the decomposition first (unchanged for `Any`, `Prefix` and
//! `AddressGroup` rules); only if it denies, the bucket's group terms: per term a binary
//! search of its (short) `dport` list, then, if the port is covered, one hash probe of
//! the remote address and, if the group has prefixes, a binary search of them. A bucket
//! holds one term per distinct group (rules naming the same group are merged into its
//! tagged `dport` list), so the extra cost of a denied key is a few probes whatever the
//! number of rules and members. `admitting_rule` takes the lowest ordinal among the
//! attribution's answer and the matching terms' (model order stays exact).
//!
//! Address groups stay in the decomposition: they change only with the shared policy
//! (an API write, which recompiles anyway), and they are CIDRs, which the decomposition
//! handles without a per-packet fallback.
//!
//! Rejected: *patching the decomposition in place* (a join inserts two interval starts,
//! which shifts the sorted starts, the skip table and the attribution of every bucket
//! that names the group: a rebuild of those buckets anyway, and not publishable without
//! copying them); *the members inside the decomposition, recompiled on each join* (what
//! this replaced: 1,000 rules / 10,000 members cost a whole compile per join, and the
//! remote-group buckets carried two intervals per member); *one term per rule* (a bucket
//! with 100 rules naming one group would probe the set 100 times on a denied key).
//! Measured (2026-12, shared 2-core VM, load 2.4–3.6, the previous tree side by side):
//! `classify::allows/remote_group/10000` 468 → 549 ns per 32 keys (+17 %; half the keys
//! members, half not), `admitting_rule` 525 → 658 ns; the ClassBench `rules/*` inputs
//! have no group term and did not move beyond noise. The first version searched a set's
//! prefixes with a plain binary search (2,500 prefixes in that input): +20 % to +110 %;
//! the prefixes now go through an `addr::AddrIndex`. A join
//! (`classifier::member_join`, 1,000 / 10,000 rules, 10,000 members): full compile before
//! 9.4 / 105 ms, `with_members` now 0.19 / 0.18 ms.
//! A lookup is: pick the family table, read `bucket_of[proto]`, find the elementary
//! interval of the remote address (a skip table over the span of the interval starts —
//! with a second-level table for the slots where addresses cluster more finely than the
//! slots — narrows the search to a window of at most 16 IPv4 / 8 IPv6 starts, usually
//! without any binary-search round, and one branch-free SIMD count over the window finds
//! the interval), read its class id, and test `dport` against the
//! class's interval list. Class 0 is "deny everything", class 1 "allow everything", so the
//! common cases stop after the address search. No step scans rules.
//!
//! Measured against DPDK's rte_acl on the same security-group shaped files by
//! `benches/acl-ab.sh` (README "Benchmarks → Classifier"). Where the cycles went before
//! the window count (read from the compiled `allows`; this VM exposes no hardware counters
//! to `perf stat`): a chain of dependent loads — `bucket_of`, the bucket, the skip table,
//! then one load per binary-search round (2-6 rounds, compiled to data-dependent branches
//! that mispredict), the class id, the class cell. The window count replaced the rounds by
//! one or two cache lines compared at once, the remaining rounds (if any) are conditional
//! moves (`select_unpredictable`), and the second level keeps clustered IPv6 prefixes
//! from needing rounds.
//!
//! [`CompiledPolicy::admitting_rule`] (the first matching rule in model order, for the
//! first packet of a connection and `sgswitch trace`) takes the same bucket, searches the
//! bucket's attribution table the same way and binary-searches one tagged list: also no
//! scan of rules. The attribution lives beside the buckets, never inside them, so `allows`
//! reads exactly what it read before (`attrib` gives the figures).
//!
//! # Submodules
//! * `addr`: addresses of both families and the address → class index (skip tables,
//!   fixed-round binary search, window count).
//! * `ports`: `dport` interval lists and the class table.
//! * `attrib`: the per-bucket rule attribution (address → first rule per `dport`).
//! * `compile`: the model → lookup structures compilation.
//! * `burst`: `classify_burst`, the phased burst lookup (tests and benches).
//! * `members`: remote-group member sets and the buckets' group terms.
//! * `incremental`: [`CompiledPolicy::recompile`], a new model's policy sharing every
//!   group set the change did not touch.
//! * `delta`: [`CompiledPolicy::patch`], a rule change as a delta published beside every
//!   shared set (added rules matched one by one, removed ones masked, exact first-rule
//!   order), folded in by the next compile; `CompiledPolicy.delta` is `None` after a
//!   compile, so lookups pay one predictable branch for it.
//!
//! Owns: the lookup structures and their invariants. May not touch: connection
//! tracking, ports' anti-spoofing or frames (it answers for one `FlowKey`).
//!
//! # Invariants
//! * Nothing is mutated after [`CompiledPolicy::compile`] returns; the whole structure is
//!   `Send + Sync` and published by pointer. [`CompiledPolicy::with_members`] builds a new
//!   policy sharing the old one's rule structures; neither is modified.
//! * Every group term's set id is an index into `members` (one entry per group of the
//!   model the policy was compiled from); `with_members` keeps the indices.
//!
//! # Rejected options
//! * *Per-rule scan with early exit* (iptables, the linear oracle): O(rules) per packet.
//! * *Tuple-space search* (OVS): one hash probe per distinct (prefix length, port mask)
//!   tuple; port ranges expand into many masks and a remote group of thousands of members
//!   with several prefix lengths multiplies the probes.
//! * *DPDK-style multi-bit trie over the whole 5-tuple*: fastest for arbitrary ACLs but
//!   large and slow to build; security groups have only two dimensions that matter (remote
//!   address and destination port, with protocol as an exact selector), so a 1-D
//!   decomposition of the address plus a tiny per-class port list is enough and compiles in
//!   milliseconds.
//! * *Hash of exact remote IPs alone for remote groups*: breaks on allowed-address-pair
//!   CIDRs; the member sets keep the CIDRs as sorted ranges beside the hash set.

mod addr;
mod attrib;
#[cfg(any(test, feature = "bench"))]
mod burst;
mod compile;
mod delta;
mod incremental;
mod members;
mod ports;

use std::sync::Arc;

use super::Classifier;
use crate::flow::{FlowKey, FAMILY_V4, FAMILY_V6};
use crate::policy::{Direction, RuleRef};
use addr::{Addr, AddrIndex};
use attrib::Attribution;
use delta::Delta;
use members::{GroupMembers, GroupTerm};
use ports::ClassTable;

#[cfg(any(test, feature = "bench"))]
pub use burst::BURST_CHUNK;
pub use delta::MAX_DELTA;

#[derive(Debug)]
struct Bucket<A> {
    addr: AddrIndex<A>,
    classes: ClassTable,
    /// The bucket's rules whose remote is a security group, one term per group (read
    /// only when the decomposition denies).
    terms: Box<[GroupTerm]>,
}

impl<A: Addr> Bucket<A> {
    #[inline(always)]
    fn allows(&self, a: A, dport: u16, members: &[Arc<GroupMembers>]) -> bool {
        self.classes.allows(self.addr.class_of(a), dport) || self.terms_allow(a, dport, members)
    }

    /// Whether a group term admits remote `a` (the decomposition denied it).
    #[inline(always)]
    fn terms_allow(&self, a: A, dport: u16, members: &[Arc<GroupMembers>]) -> bool {
        !self.terms.is_empty()
            && self
                .terms
                .iter()
                .any(|t| t.first_match(members, a, dport).is_some())
    }
}

/// One family of one direction of one group set.
#[derive(Debug)]
struct FamilyTable<A> {
    /// Protocol → bucket index; 0 = the bucket of protocol-any rules alone.
    bucket_of: [u16; 256],
    buckets: Box<[Bucket<A>]>,
    /// Per bucket (same index as `buckets`): the rule attribution, which `allows` never
    /// reads.
    attrib: Box<[Attribution<A>]>,
}

impl<A: Addr> FamilyTable<A> {
    #[inline(always)]
    fn bucket(&self, p: u8) -> Option<&Bucket<A>> {
        self.buckets.get(self.bucket_of[usize::from(p)] as usize)
    }

    #[inline(always)]
    fn allows(&self, a: A, p: u8, dport: u16, members: &[Arc<GroupMembers>]) -> bool {
        self.bucket(p).is_some_and(|b| b.allows(a, dport, members))
    }

    /// The ordinal of the first rule of this family table matching remote `a`: the lower
    /// of the decomposition's answer and the matching group terms' (model order).
    fn first_rule(&self, a: A, p: u8, dport: u16, members: &[Arc<GroupMembers>]) -> Option<u32> {
        let b = usize::from(self.bucket_of[usize::from(p)]);
        let decomposed = self.attrib.get(b)?.first_rule(a, dport);
        let grouped = self
            .buckets
            .get(b)?
            .terms
            .iter()
            .filter_map(|t| t.first_match(members, a, dport))
            .min();
        match (decomposed, grouped) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        }
    }

    /// Bytes of the `allows` structures (the attribution is counted apart).
    fn bytes(&self) -> usize {
        512 + self
            .buckets
            .iter()
            .map(|b| b.addr.bytes() + b.classes.bytes())
            .sum::<usize>()
    }
}

/// Both families of one direction.
#[derive(Debug)]
struct DirTable {
    v4: FamilyTable<u32>,
    v6: FamilyTable<u128>,
    rules: usize,
}

impl DirTable {
    #[inline(always)]
    fn allows(&self, remote: &[u8; 16], key: &FlowKey, m: &[Arc<GroupMembers>]) -> bool {
        match key.family {
            FAMILY_V4 => self
                .v4
                .allows(u32::from_key(remote), key.proto, key.dport, m),
            FAMILY_V6 => self
                .v6
                .allows(u128::from_key(remote), key.proto, key.dport, m),
            _ => false,
        }
    }

    fn first_rule(&self, remote: &[u8; 16], key: &FlowKey, m: &[Arc<GroupMembers>]) -> Option<u32> {
        match key.family {
            FAMILY_V4 => self
                .v4
                .first_rule(u32::from_key(remote), key.proto, key.dport, m),
            FAMILY_V6 => self
                .v6
                .first_rule(u128::from_key(remote), key.proto, key.dport, m),
            _ => None,
        }
    }
}

/// The compiled policy of one distinct group set.
#[derive(Debug)]
struct SetPolicy {
    ingress: DirTable,
    egress: DirTable,
    stateful: bool,
    /// Ordinal (what the attribution tables hold) → the rule in the model: the rules of the
    /// set's groups in model order, both directions.
    refs: Box<[RuleRef]>,
    /// The set's groups (index in the model), ascending.
    groups: Box<[u32]>,
}

impl SetPolicy {
    #[inline(always)]
    fn dir(&self, d: Direction) -> &DirTable {
        match d {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }
}

#[derive(Debug, Clone)]
enum PortSlot {
    /// `port_security == false`.
    AllowAll,
    /// Port security on, no group.
    DenyAll,
    Rules(Arc<SetPolicy>),
}

/// Size and sharing figures of a compiled policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PolicyStats {
    /// Ports in the model.
    pub ports: usize,
    /// Distinct compiled group-set structures (ports with equal group sets share one).
    pub distinct_group_sets: usize,
    /// Elementary address intervals over all buckets of all distinct structures.
    pub intervals: usize,
    /// Distinct port classes over all buckets of all distinct structures.
    pub classes: usize,
    /// Approximate heap bytes of the lookup structures.
    pub bytes: usize,
    /// Largest number of binary-search steps after the skip table, over all buckets.
    pub max_search_rounds: u32,
    /// Elementary address intervals of the rule attribution (`admitting_rule`), over all
    /// buckets of all distinct structures.
    pub attribution_intervals: usize,
    /// Distinct attribution classes over all buckets of all distinct structures.
    pub attribution_classes: usize,
    /// Approximate heap bytes of the rule attribution (not included in `bytes`).
    pub attribution_bytes: usize,
    /// Group terms (a bucket's rules naming one remote group) over all buckets of all
    /// distinct structures.
    pub group_terms: usize,
    /// Entries (host addresses and prefixes) of the remote-group member sets.
    pub member_entries: usize,
    /// Approximate heap bytes of the member sets (not included in `bytes`).
    pub member_bytes: usize,
}

/// The compiled, immutable classifier of a whole model (see the module doc).
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    epoch: u64,
    /// Shared with the policies [`CompiledPolicy::with_members`] derives.
    ports: Arc<[PortSlot]>,
    /// Member set of each security group, by index in `Model::security_groups` (what the
    /// buckets' group terms name).
    members: Box<[Arc<GroupMembers>]>,
    stats: PolicyStats,
    /// Rule changes since the sets were compiled ([`CompiledPolicy::patch`]); `None`: the
    /// sets are the policy.
    delta: Option<Arc<Delta>>,
    /// The rules of the model the sets were compiled from, in flat form, once a patch
    /// needed them (what later patches diff against); `None` after a compile.
    base_rules: Option<delta::BaseRules>,
}

// The structure is published through an atomic pointer and read by every worker.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<CompiledPolicy>();
};
const _: () = assert!(std::mem::size_of::<PortSlot>() <= 16);

impl CompiledPolicy {
    /// The epoch given to [`CompiledPolicy::compile`].
    #[inline]
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Size and sharing figures.
    pub fn stats(&self) -> PolicyStats {
        self.stats
    }

    /// Whether the rules of `port` in direction `dir` allow `key`.
    #[inline]
    pub fn allows(&self, port: usize, dir: Direction, key: &FlowKey) -> bool {
        match self.ports.get(port) {
            Some(PortSlot::Rules(s)) => {
                let remote = match dir {
                    Direction::Ingress => &key.src,
                    Direction::Egress => &key.dst,
                };
                match &self.delta {
                    Some(d) if d.touches_port(port) => self.delta_allows(d, s, dir, key, remote),
                    _ => s.dir(dir).allows(remote, key, &self.members),
                }
            }
            Some(PortSlot::AllowAll) => true,
            Some(PortSlot::DenyAll) | None => false,
        }
    }

    /// The rule that admits `key`: the first rule in model order, among the rules of the
    /// port's groups in direction `dir`, that matches `key` (see
    /// [`Classifier::admitting_rule`]); `None` for a port without port security, without a
    /// group, or unknown. Costs an address search and a binary search in one attribution
    /// class (module [`attrib`](self) doc), more than `allows` but independent of the
    /// number of rules beyond the searches: meant for the first packet of a connection.
    pub fn admitting_rule(&self, port: usize, dir: Direction, key: &FlowKey) -> Option<RuleRef> {
        let Some(PortSlot::Rules(s)) = self.ports.get(port) else {
            return None;
        };
        let remote = match dir {
            Direction::Ingress => &key.src,
            Direction::Egress => &key.dst,
        };
        if let Some(d) = self.delta.as_ref().filter(|d| d.touches_port(port)) {
            return self.delta_first(d, s, dir, key, remote);
        }
        let ordinal = s.dir(dir).first_rule(remote, key, &self.members)?;
        s.refs.get(ordinal as usize).copied()
    }

    /// Whether the port's groups are stateful (no group or unknown port: `true`).
    pub fn is_stateful(&self, port: usize) -> bool {
        match self.ports.get(port) {
            Some(PortSlot::Rules(s)) => s.stateful,
            _ => true,
        }
    }

    /// Number of rules of the port's groups in direction `dir`.
    pub fn rule_count(&self, port: usize, dir: Direction) -> usize {
        match self.ports.get(port) {
            Some(PortSlot::Rules(s)) => match &self.delta {
                None => s.dir(dir).rules,
                Some(d) => Self::delta_count(d, s, dir, s.dir(dir).rules),
            },
            _ => 0,
        }
    }

    /// The port's `port_security` flag (unknown port: `true`).
    pub fn port_security(&self, port: usize) -> bool {
        !matches!(self.ports.get(port), Some(PortSlot::AllowAll))
    }

    /// Whether `port` uses the very same compiled rule structure in `self` and `other`
    /// (true for a policy and the ones [`CompiledPolicy::with_members`] derives from it;
    /// ports without rules: whether both have the same kind of slot).
    pub fn shares_structure_with(&self, other: &CompiledPolicy, port: usize) -> bool {
        match (self.ports.get(port), other.ports.get(port)) {
            (Some(PortSlot::Rules(x)), Some(PortSlot::Rules(y))) => Arc::ptr_eq(x, y),
            (Some(PortSlot::AllowAll), Some(PortSlot::AllowAll))
            | (Some(PortSlot::DenyAll), Some(PortSlot::DenyAll)) => true,
            _ => false,
        }
    }

    /// Whether two ports share one compiled structure (equal group sets).
    pub fn shares_structure(&self, a: usize, b: usize) -> bool {
        match (self.ports.get(a), self.ports.get(b)) {
            (Some(PortSlot::Rules(x)), Some(PortSlot::Rules(y))) => Arc::ptr_eq(x, y),
            _ => false,
        }
    }
}

impl Classifier for CompiledPolicy {
    fn epoch(&self) -> u64 {
        CompiledPolicy::epoch(self)
    }
    fn allows(&self, port: usize, dir: Direction, key: &FlowKey) -> bool {
        CompiledPolicy::allows(self, port, dir, key)
    }
    fn admitting_rule(&self, port: usize, dir: Direction, key: &FlowKey) -> Option<RuleRef> {
        CompiledPolicy::admitting_rule(self, port, dir, key)
    }
    #[cfg(any(test, feature = "bench"))]
    fn classify_burst(&self, port: usize, dir: Direction, keys: &[FlowKey], out: &mut [bool]) {
        CompiledPolicy::classify_burst(self, port, dir, keys, out)
    }
    fn is_stateful(&self, port: usize) -> bool {
        CompiledPolicy::is_stateful(self, port)
    }
    fn rule_count(&self, port: usize, dir: Direction) -> usize {
        CompiledPolicy::rule_count(self, port, dir)
    }
    fn port_security(&self, port: usize) -> bool {
        CompiledPolicy::port_security(self, port)
    }
}
