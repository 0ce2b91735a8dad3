//! Remote-group member sets: the addresses a `Remote::Group(g)` rule matches, kept
//! OUTSIDE the compiled rule structures so that a member joining or leaving rebuilds one
//! set and nothing else ([`super::CompiledPolicy::with_members`]).
//!
//! Owns: [`GroupMembers`] (one per security group of the model, both families),
//! [`MemberSet`] (exact host addresses in a hash set, allowed-address-pair prefixes as
//! sorted disjoint ranges) and [`GroupTerm`] (what a bucket keeps of the rules whose remote
//! is a group: the group's set id and the first-rule envelope of their `dport` specs).
//! May not touch: the decomposition (`addr`, `ports`, `attrib`), the model beyond reading
//! the ports' addresses and `remote_members`.
//!
//! # Invariants
//! * A [`MemberSet`] holds every address of the group's local member ports (fixed IPs as
//!   hosts, allowed-address-pair CIDRs) and of `Model::remote_members[g]`, of its family:
//!   single addresses in `exact`, wider prefixes merged into `cidrs` (sorted, disjoint,
//!   non-adjacent).
//! * `GroupMembers::remote` is the `remote_members[g]` list the set was built from: what
//!   [`super::CompiledPolicy::with_members`] compares to decide whether to rebuild it;
//!   `GroupMembers::local` its local members' addresses, which
//!   [`super::CompiledPolicy::recompile`] compares too.
//! * A [`GroupTerm`]'s `ports` is sorted and disjoint, each `dport` interval tagged with the
//!   lowest ordinal of the bucket's rules naming the group that covers it.

use std::sync::Arc;

use ipnet::IpNet;

use super::addr::{Addr, AddrIndex};
use super::attrib::Tagged;
use super::incremental::{first_index, set_key};
use crate::policy::Model;

/// The addresses of one group in one family.
#[derive(Debug, Default)]
pub(super) struct MemberSet<A> {
    /// Host addresses (fixed IPs, host-length prefixes).
    exact: hashbrown::HashSet<A>,
    /// Wider prefixes (allowed-address-pair CIDRs), merged, as an address index (class 1
    /// inside a prefix, 0 outside): the skip-table search of the decomposition, not a
    /// plain binary search (2,500 prefixes cost a denied key ~12 mispredicted rounds).
    cidrs: Option<AddrIndex<A>>,
    /// Number of merged prefixes.
    n_cidrs: usize,
}

impl<A: Addr> MemberSet<A> {
    fn build(nets: impl Iterator<Item = (A, A)>) -> Self {
        let mut exact = hashbrown::HashSet::new();
        let mut ranges: Vec<(A, A)> = Vec::new();
        for (lo, hi) in nets {
            if lo == hi {
                exact.insert(lo);
            } else {
                ranges.push((lo, hi));
            }
        }
        ranges.sort_unstable();
        let mut cidrs: Vec<(A, A)> = Vec::with_capacity(ranges.len());
        for (lo, hi) in ranges {
            if let Some(last) = cidrs.last_mut() {
                if last.1.checked_succ().is_none_or(|n| lo <= n) {
                    last.1 = last.1.max(hi);
                    continue;
                }
            }
            cidrs.push((lo, hi));
        }
        // A host inside a prefix is already matched by the prefix.
        if !cidrs.is_empty() {
            exact.retain(|a| !in_ranges(&cidrs, *a));
        }
        exact.shrink_to_fit();
        MemberSet {
            exact,
            n_cidrs: cidrs.len(),
            cidrs: prefix_index(&cidrs),
        }
    }

    /// Whether `a` is a member address.
    #[inline]
    pub(super) fn contains(&self, a: A) -> bool {
        (!self.exact.is_empty() && self.exact.contains(&a))
            || self.cidrs.as_ref().is_some_and(|c| c.class_of(a) != 0)
    }

    /// Number of entries (hosts and prefixes).
    pub(super) fn len(&self) -> usize {
        self.exact.len() + self.n_cidrs
    }

    /// Approximate heap bytes.
    pub(super) fn bytes(&self) -> usize {
        self.exact.capacity() * (std::mem::size_of::<A>() + 1)
            + self.cidrs.as_ref().map_or(0, AddrIndex::bytes)
    }
}

/// Sorted, disjoint, non-adjacent ranges as an address index (`None` for none).
fn prefix_index<A: Addr>(ranges: &[(A, A)]) -> Option<AddrIndex<A>> {
    if ranges.is_empty() {
        return None;
    }
    let (mut starts, mut classes) = (vec![A::default()], vec![0u32]);
    for &(lo, hi) in ranges {
        if lo == A::default() {
            classes[0] = 1;
        } else {
            starts.push(lo);
            classes.push(1);
        }
        if let Some(n) = hi.checked_succ() {
            starts.push(n);
            classes.push(0);
        }
    }
    Some(AddrIndex::new(starts, classes))
}

fn in_ranges<A: Addr>(ranges: &[(A, A)], a: A) -> bool {
    let i = ranges.partition_point(|r| r.0 <= a);
    i > 0 && a <= ranges[i - 1].1
}

/// The member set of one security group, both families.
#[derive(Debug, Default)]
pub(crate) struct GroupMembers {
    pub(super) v4: MemberSet<u32>,
    pub(super) v6: MemberSet<u128>,
    /// The addresses of the group's local member ports when this set was built
    /// ([`local_members`]): with `remote`, everything the set is built from.
    local: Vec<IpNet>,
    /// `Model::remote_members[g]` as it was when this set was built.
    remote: Vec<IpNet>,
}

impl GroupMembers {
    fn build(local: Vec<IpNet>, remote: &[IpNet]) -> Self {
        let all = || local.iter().chain(remote);
        GroupMembers {
            v4: MemberSet::build(all().filter_map(u32::range_of)),
            v6: MemberSet::build(all().filter_map(u128::range_of)),
            remote: remote.to_vec(),
            local,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub(super) fn bytes(&self) -> usize {
        self.v4.bytes() + self.v6.bytes()
    }
}

/// The addresses of each group's local member ports (fixed IPs as hosts, allowed-address-
/// pair CIDRs), by group index in `Model::security_groups` (a port naming a group twice
/// counts once; an unknown name nothing; a duplicated group name is its first group).
fn local_members(model: &Model) -> Vec<Vec<IpNet>> {
    let mut out = vec![Vec::new(); model.security_groups.len()];
    let index = first_index(model);
    for p in &model.ports {
        for n in set_key(&p.security_groups) {
            let Some(&gi) = index.get(n) else {
                continue;
            };
            let set = &mut out[gi];
            set.extend(p.fixed_ips.iter().map(|ip| IpNet::from(*ip)));
            set.extend(p.allowed_address_pairs.iter().map(|a| a.ip_address));
        }
    }
    out
}

fn remote_of(model: &Model, gi: usize) -> &[IpNet] {
    model
        .security_groups
        .get(gi)
        .and_then(|g| model.remote_members.get(&g.name))
        .map_or(&[], Vec::as_slice)
}

/// The member sets of every group of `model`, by group index.
pub(super) fn build_all(model: &Model) -> Box<[Arc<GroupMembers>]> {
    local_members(model)
        .into_iter()
        .enumerate()
        .map(|(gi, local)| Arc::new(GroupMembers::build(local, remote_of(model, gi))))
        .collect()
}

/// The member sets of every group of `new`, given `old`'s (`old_sets`, by group index in
/// `old`): a group whose local and remote members are those of the set `old` had under
/// its name shares that set (same `Arc`); the others are built.
pub(super) fn rebuild_for(
    old_sets: &[Arc<GroupMembers>],
    old: &Model,
    new: &Model,
) -> Box<[Arc<GroupMembers>]> {
    let old_index = first_index(old);
    local_members(new)
        .into_iter()
        .enumerate()
        .map(|(gi, local)| {
            let remote = remote_of(new, gi);
            let previous = new
                .security_groups
                .get(gi)
                .and_then(|g| old_index.get(g.name.as_str()))
                .and_then(|&oi| old_sets.get(oi));
            match previous {
                Some(m) if m.local == local && m.remote.as_slice() == remote => m.clone(),
                _ => Arc::new(GroupMembers::build(local, remote)),
            }
        })
        .collect()
}

/// `old` updated to `model`: the sets whose `remote_members` entry is unchanged are shared
/// (same `Arc`), the others rebuilt. Assumes `model` differs from the model `old` was
/// built for in `remote_members` only (same groups, same ports).
pub(super) fn rebuild_changed(
    old: &[Arc<GroupMembers>],
    model: &Model,
) -> (Box<[Arc<GroupMembers>]>, usize) {
    let mut rebuilt = 0;
    let sets = old
        .iter()
        .enumerate()
        .map(|(gi, m)| {
            let remote = remote_of(model, gi);
            if m.remote.as_slice() == remote {
                return m.clone();
            }
            rebuilt += 1;
            // The ports are unchanged: so are the local members.
            Arc::new(GroupMembers::build(m.local.clone(), remote))
        })
        .collect();
    (sets, rebuilt)
}

/// What a bucket keeps of its rules whose remote is one group: the group (index into the
/// policy's member sets) and, per `dport`, the first such rule covering it.
#[derive(Debug)]
pub(super) struct GroupTerm {
    pub(super) set: u32,
    pub(super) ports: Box<[Tagged]>,
}

impl GroupTerm {
    /// The ordinal of the first of the term's rules covering `dport`.
    #[inline]
    pub(super) fn first(&self, dport: u16) -> Option<u32> {
        let list = &self.ports;
        let s = list.get(list.partition_point(|s| s.lo <= dport).checked_sub(1)?)?;
        (dport <= s.hi).then_some(s.rule)
    }

    /// The term's set for family `A`, if `a` is in it and some rule covers `dport`: the
    /// first rule's ordinal. The port check (a short list) comes before the hash lookup.
    #[inline]
    pub(super) fn first_match<A: Addr>(
        &self,
        members: &[Arc<GroupMembers>],
        a: A,
        dport: u16,
    ) -> Option<u32> {
        let r = self.first(dport)?;
        let m = members.get(self.set as usize)?;
        A::members(m).contains(a).then_some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_set_hosts_and_prefixes() {
        let nets: Vec<IpNet> = ["10.0.0.1/32", "10.1.0.0/16", "10.1.2.3/32", "10.2.0.0/31"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let s = MemberSet::<u32>::build(nets.iter().filter_map(u32::range_of));
        assert_eq!(s.exact.len(), 1, "the host inside 10.1/16 is dropped");
        let ip = |s: &str| u32::from(s.parse::<std::net::Ipv4Addr>().unwrap());
        for (a, want) in [
            ("10.0.0.1", true),
            ("10.0.0.2", false),
            ("10.1.255.255", true),
            ("10.2.0.1", true),
            ("10.2.0.2", false),
            ("9.255.255.255", false),
        ] {
            assert_eq!(s.contains(ip(a)), want, "{a}");
        }
        assert!(!MemberSet::<u32>::default().contains(0));
        let edges: Vec<IpNet> = ["0.0.0.0/8", "255.0.0.0/8"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let e = MemberSet::<u32>::build(edges.iter().filter_map(u32::range_of));
        for (a, want) in [(0, true), (0x00ff_ffff, true), (0x0100_0000, false)] {
            assert_eq!(e.contains(a), want, "{a:#x}");
        }
        assert!(e.contains(u32::MAX) && !e.contains(0xfeff_ffff));
    }
}
