//! Compiled security-group classifier.
//!
//! # Purpose
//! Answer, for one port, one direction and one [`FlowKey`], the only question the security
//! groups ask: *does any rule of any group bound to this port allow this packet?*
//! (`security-groups.md` §1, §6, §7). Connection tracking, always-allowed traffic (ARP,
//! DHCP, ND, ...) and anti-spoofing are the pipeline's business; this module only knows
//! rules.
//!
//! Two implementations share the [`Classifier`] trait:
//! * [`linear::LinearPolicy`] — the obvious scan over every rule, written straight from the
//!   semantics. It is the oracle the compiled form is tested against and a baseline in the
//!   benches; never used on the packet path.
//! * [`CompiledPolicy`] — the model compiled into immutable per-port, per-direction lookup
//!   structures ([`compiled`] describes the layout). Lookup cost does not depend on the
//!   number of rules beyond a binary search over the address boundaries. Remote-group
//!   members live outside the rule structures: a member joining or leaving is
//!   [`CompiledPolicy::with_members`] (rules not recompiled), chosen by
//!   [`members_only_change`] ([`CompiledPolicy::update`], [`Recompiler`]).
//!
//! # Matching semantics (both implementations)
//! For port X, direction D and key K, a rule matches when
//! * `rule.direction == D` and the rule's ethertype is K's family (IPv4 ⇔ 4, IPv6 ⇔ 6);
//! * `protocol` is `None` (any) or equals `K.proto`;
//! * for tcp/udp/sctp/dccp/udplite ([`crate::flow::proto::has_ports`]): `K.dport` lies in
//!   `port_range_min..=port_range_max` (`None` = all ports);
//! * for ICMP of the rule's family (1 with IPv4, 58 with IPv6): `port_range_min` is the type
//!   (must equal [`FlowKey::icmp_type`]), `port_range_max`, if any, the code (must equal
//!   [`FlowKey::icmp_code`]); no type = every ICMP message;
//! * any other protocol ignores the port fields;
//! * the remote (K.src for ingress, K.dst for egress) is in the rule's remote set:
//!   `Any` = everything, `Prefix` = that network, `Group(g)` = every fixed IP (as a host
//!   route) and every allowed-address-pair CIDR of every port whose `security_groups`
//!   contains `g` (whatever that port's port-security flag), plus the addresses of `g`'s
//!   members on other hosts (`Model::remote_members[g]`, a host agent's view; only for a
//!   group the model has), `AddressGroup(a)` = its CIDRs.
//!   Only addresses of K's family count; an empty set matches nothing.
//!
//! A port's policy in direction D is the union of the rules of all its groups: the packet is
//! allowed iff one rule matches. A port with no group allows nothing. A port with
//! `port_security == false` allows everything (the pipeline skips it anyway).
//!
//! The rule that *admitted* a packet ([`Classifier::admitting_rule`], for per-rule hit
//! counters and `sgswitch trace`) is the first matching rule in model order: the port's
//! groups by their index in `Model::security_groups` (not the order the port lists them),
//! then each group's rules by index, named by a [`RuleRef`].
//!
//! Model fields that validation should have rejected are given a defined, deny-leaning
//! meaning rather than a panic: an unknown group or address-group name is an empty set; a
//! port range with only one bound is that single port; `min > max` matches nothing; an ICMP
//! type or code above 255 matches nothing; a key whose `family` is neither 4 nor 6 is denied.
//!
//! Out-of-range port indices never panic: `allows` answers `false`, `admitting_rule`
//! `None`, `rule_count` 0, `is_stateful` and `port_security` `true` (so the pipeline still
//! enforces, and denies).
//!
//! # Thread safety
//! Both policies are immutable after construction and `Send + Sync`; a [`CompiledPolicy`] is
//! meant to be published whole through one atomic pointer (`arc-swap`) and read by every
//! worker without locks. Policies carry the `epoch` they were compiled for, which
//! connection tracking stores in each entry (architecture principle 8).
//!
//! ClassBench files, synthetic models and the lookup measurement are not part of the
//! classifier: they live in [`crate::bench`] (feature `bench`).

pub mod compiled;
pub mod linear;
mod update;

use crate::flow::FlowKey;
use crate::policy::{Direction, Model, RuleRef, SecurityGroup};

pub use compiled::{CompiledPolicy, PolicyStats, MAX_DELTA};
pub use linear::LinearPolicy;
pub use update::Recompiler;

/// The lookup API shared by the compiled classifier and its linear oracle.
pub trait Classifier: Send + Sync {
    /// The policy epoch this structure was built for.
    fn epoch(&self) -> u64;

    /// Whether the rules of `port` (index in `Model::ports`) in direction `dir` allow `key`.
    fn allows(&self, port: usize, dir: Direction, key: &FlowKey) -> bool;

    /// The rule that admits `key`: the first rule in model order (lowest
    /// [`RuleRef`], i.e. group index in `Model::security_groups`, then rule index) among
    /// the rules of the port's groups in direction `dir` that matches `key`, with exactly
    /// the matching semantics of [`Classifier::allows`]. For a port with port security and
    /// at least one group, `allows(..) == admitting_rule(..).is_some()`; a port without port
    /// security (everything allowed, no rule involved), with no group, or unknown: `None`.
    fn admitting_rule(&self, port: usize, dir: Direction, key: &FlowKey) -> Option<RuleRef>;

    /// Classify a burst: `out[i] = allows(port, dir, &keys[i])` for every
    /// `i < min(keys.len(), out.len())`; entries beyond that are left untouched. Not the
    /// shipped path (the pipeline calls `allows`, one key at a time): tests and the
    /// `bench` feature only (`sgswitch bench classify` measures it).
    #[cfg(any(test, feature = "bench"))]
    fn classify_burst(&self, port: usize, dir: Direction, keys: &[FlowKey], out: &mut [bool]) {
        for (k, o) in keys.iter().zip(out.iter_mut()) {
            *o = self.allows(port, dir, k);
        }
    }

    /// Whether the port's groups are stateful (no group, port security off, or unknown
    /// port: `true`).
    fn is_stateful(&self, port: usize) -> bool;

    /// Number of rules of the port's groups in direction `dir` (both ethertypes); 0 when
    /// port security is off (the groups are not enforced).
    fn rule_count(&self, port: usize, dir: Direction) -> usize;

    /// The port's `port_security` flag (unknown port: `true`).
    fn port_security(&self, port: usize) -> bool;
}

/// The groups named by a port (deduplicated names) as `(index in Model::security_groups,
/// group)`, in model order: the order in which [`Classifier::admitting_rule`] looks for the
/// first matching rule. Unknown names are skipped; a duplicated group name (which validation
/// rejects) is its first group, as in [`Model::group`].
fn groups_in_model_order<'m>(model: &'m Model, names: &[&str]) -> Vec<(usize, &'m SecurityGroup)> {
    let mut groups: Vec<_> = names
        .iter()
        .filter_map(|n| {
            model
                .security_groups
                .iter()
                .enumerate()
                .find(|(_, g)| g.name == *n)
        })
        .collect();
    groups.sort_unstable_by_key(|(i, _)| *i);
    groups
}

/// Whether `a` and `b` differ at most in `remote_members`: then
/// [`CompiledPolicy::with_members`] turns the policy of `a` into that of `b` without
/// recompiling any rule. Compares every other field (the destructuring is exhaustive on
/// purpose: a field added to [`Model`] must be listed here, compared or knowingly not).
pub fn members_only_change(a: &Model, b: &Model) -> bool {
    let Model {
        security_groups,
        address_groups,
        ports,
        networks,
        permitted_ethertypes,
        conntrack,
        logs,
        hosts,
        local_host,
        remote_members: _,
    } = a;
    *security_groups == b.security_groups
        && *ports == b.ports
        && *address_groups == b.address_groups
        && *networks == b.networks
        && *permitted_ethertypes == b.permitted_ethertypes
        && *conntrack == b.conntrack
        && *logs == b.logs
        && *hosts == b.hosts
        && *local_host == b.local_host
}

#[cfg(test)]
mod tests;
