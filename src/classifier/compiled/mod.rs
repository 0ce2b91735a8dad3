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
//!   │    └─ ClassTable: class id ─► sorted disjoint `dport` intervals
//!   └─ attrib[b]: Attribution                        (what `admitting_rule` reads)
//!        ├─ AddrIndex: remote address ─► attribution class id
//!        └─ class ─► sorted disjoint `dport` intervals tagged with a rule ordinal
//! SetPolicy.refs: rule ordinal ─► RuleRef (group index in the model, rule index)
//! ```
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
//!
//! Owns: the lookup structures and their invariants. May not touch: connection
//! tracking, ports' anti-spoofing or frames (it answers for one `FlowKey`).
//!
//! # Invariants
//! * Nothing is mutated after [`CompiledPolicy::compile`] returns; the whole structure is
//!   `Send + Sync` and published by pointer.
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
//! * *Hash of exact remote IPs for remote groups*: breaks on allowed-address-pair CIDRs.

mod addr;
mod attrib;
#[cfg(any(test, feature = "bench"))]
mod burst;
mod compile;
mod ports;

use std::sync::Arc;

use super::Classifier;
use crate::flow::{FlowKey, FAMILY_V4, FAMILY_V6};
use crate::policy::{Direction, RuleRef};
use addr::{Addr, AddrIndex};
use attrib::Attribution;
use ports::ClassTable;

#[cfg(any(test, feature = "bench"))]
pub use burst::BURST_CHUNK;

#[derive(Debug)]
struct Bucket<A> {
    addr: AddrIndex<A>,
    classes: ClassTable,
}

impl<A: Addr> Bucket<A> {
    #[inline(always)]
    fn allows(&self, a: A, dport: u16) -> bool {
        self.classes.allows(self.addr.class_of(a), dport)
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
    fn allows(&self, a: A, p: u8, dport: u16) -> bool {
        self.bucket(p).is_some_and(|b| b.allows(a, dport))
    }

    /// The ordinal of the first rule of this family table matching remote `a`.
    fn first_rule(&self, a: A, p: u8, dport: u16) -> Option<u32> {
        self.attrib
            .get(usize::from(self.bucket_of[usize::from(p)]))?
            .first_rule(a, dport)
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
    fn allows(&self, remote: &[u8; 16], key: &FlowKey) -> bool {
        match key.family {
            FAMILY_V4 => self.v4.allows(u32::from_key(remote), key.proto, key.dport),
            FAMILY_V6 => self.v6.allows(u128::from_key(remote), key.proto, key.dport),
            _ => false,
        }
    }

    fn first_rule(&self, remote: &[u8; 16], key: &FlowKey) -> Option<u32> {
        match key.family {
            FAMILY_V4 => self
                .v4
                .first_rule(u32::from_key(remote), key.proto, key.dport),
            FAMILY_V6 => self
                .v6
                .first_rule(u128::from_key(remote), key.proto, key.dport),
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
}

/// The compiled, immutable classifier of a whole model (see the module doc).
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    epoch: u64,
    ports: Box<[PortSlot]>,
    stats: PolicyStats,
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
                s.dir(dir).allows(remote, key)
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
        let ordinal = s.dir(dir).first_rule(remote, key)?;
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
            Some(PortSlot::Rules(s)) => s.dir(dir).rules,
            _ => 0,
        }
    }

    /// The port's `port_security` flag (unknown port: `true`).
    pub fn port_security(&self, port: usize) -> bool {
        !matches!(self.ports.get(port), Some(PortSlot::AllowAll))
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
