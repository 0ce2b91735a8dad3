//! Incremental compilation (#15, #18): the policy of a new model derived from the policy
//! of the previous one, recompiling only the group sets a change touches.
//!
//! Owns: deciding which compiled `SetPolicy` of the previous policy is still exactly the
//! one a full compile of the new model would build ([`Clean`]), and
//! [`CompiledPolicy::recompile`]. May not touch: the lookup structures (it reuses whole
//! `Arc<SetPolicy>`s or has `compile` build new ones), the model.
//!
//! # What a set depends on (why reuse is exact)
//! A `SetPolicy` is built by `compile::build_set` from, and only from:
//! * its key, the port's deduplicated sorted group names;
//! * for each name, the group it resolves to — the *first* group of that name in
//!   `Model::security_groups` — with its index there (the `RuleRef`s name it), its
//!   `stateful` flag and its rules in order (the fields the compiler reads: direction,
//!   ethertype, protocol, port range, remote); a name the model lacks contributes
//!   nothing;
//! * for the rules of those groups: the addresses of each address group they name (the
//!   compiler resolves a name to the *last* address group of that name), and the index
//!   of each remote security group they name (a group term names its member set by that
//!   index; the members themselves are not in the set: `members`).
//!
//! A set of the previous policy is reused (the same `Arc`) when its key is unchanged and
//! every input above compares equal between the two models; everything else is compiled
//! by the code a full compile runs. The member sets (which depend on the ports'
//! addresses and `remote_members`, not on the rules) are rebuilt only for the groups
//! whose members changed (`members::rebuild_for`). So the result answers every lookup
//! exactly as `CompiledPolicy::compile(new)` does, has the same `stats()`, and shares
//! every unaffected structure; `tests/classifier_incremental.rs` checks that on random
//! chains of edits against a full compile and the linear oracle.
//!
//! # How "unchanged" is detected
//! By comparing the two models, group by group, only for the groups some port uses, each
//! once (memoised): equality of a group's value is O(its rules), far below compiling
//! them (a 10,000-rule group: a comparison is tens of µs, its compile milliseconds).
//! Rejected: *a content fingerprint per group* kept in the model (a hash computed on
//! every model build: the same O(rules) pass, plus a collision argument, plus a field
//! every producer of a `Model` would have to keep right); *versions from the store*
//! (the classifier would depend on where the model came from: the config file, the
//! API's local store and the agents build models too).

use std::collections::HashMap;
use std::sync::Arc;

use super::compile::{assemble, Resolver};
use super::members;
use super::{CompiledPolicy, PortSlot, SetPolicy};
use crate::policy::{Model, Remote, Rule};

/// Index of the first group of each name (what a name resolves to).
pub(super) fn first_index(model: &Model) -> HashMap<&str, usize> {
    let mut out = HashMap::with_capacity(model.security_groups.len());
    for (i, g) in model.security_groups.iter().enumerate() {
        out.entry(g.name.as_str()).or_insert(i);
    }
    out
}

/// The port's set key: its deduplicated, sorted group names (as `compile` keys sets).
pub(super) fn set_key(names: &[String]) -> Vec<&str> {
    let mut key: Vec<&str> = names.iter().map(String::as_str).collect();
    key.sort_unstable();
    key.dedup();
    key
}

/// Which group names resolve to the very same compiled input in both models (memoised).
struct Clean<'m> {
    old: &'m Model,
    new: &'m Model,
    old_idx: HashMap<&'m str, usize>,
    new_idx: HashMap<&'m str, usize>,
    groups: HashMap<&'m str, bool>,
    address_groups: HashMap<&'m str, bool>,
}

impl<'m> Clean<'m> {
    fn new(old: &'m Model, new: &'m Model) -> Self {
        Clean {
            old,
            new,
            old_idx: first_index(old),
            new_idx: first_index(new),
            groups: HashMap::new(),
            address_groups: HashMap::new(),
        }
    }

    /// Whether group name `name` contributes the same to a set in both models.
    fn group(&mut self, name: &'m str) -> bool {
        if let Some(&c) = self.groups.get(name) {
            return c;
        }
        let (old, new) = (self.old, self.new);
        let clean = match (self.old_idx.get(name), self.new_idx.get(name)) {
            (None, None) => true,
            (Some(&i), Some(&j)) if i == j => {
                let (a, b) = (&old.security_groups[i], &new.security_groups[j]);
                a.stateful == b.stateful
                    && a.rules.len() == b.rules.len()
                    && a.rules
                        .iter()
                        .zip(&b.rules)
                        .all(|(x, y)| same_compiled(x, y))
                    && b.rules.iter().all(|r| self.remote(&r.remote))
            }
            _ => false,
        };
        self.groups.insert(name, clean);
        clean
    }

    /// Whether a rule's remote resolves the same in both models.
    fn remote(&mut self, r: &'m Remote) -> bool {
        match r {
            Remote::Any | Remote::Prefix(_) => true,
            Remote::Group(g) => self.old_idx.get(g.as_str()) == self.new_idx.get(g.as_str()),
            Remote::AddressGroup(a) => {
                let (old, new) = (self.old, self.new);
                *self.address_groups.entry(a.as_str()).or_insert_with(|| {
                    // The compiler's resolver keeps the last group of a name.
                    let pick = |m: &'m Model| {
                        m.address_groups
                            .iter()
                            .rev()
                            .find(|x| x.name == *a)
                            .map(|x| &x.addresses)
                    };
                    pick(old) == pick(new)
                })
            }
        }
    }
}

/// Whether two rules compile the same: equal in every field the compiler reads
/// (`compile::build_family`, `rule_spec`, the remote); `description`, `protocol_zero`
/// and `remote_ip_prefix_raw` (Neutron's spellings) are not read. Comparing whole rules
/// (their strings) was half of a recompile's own cost at 10,000 rules.
pub(super) fn same_compiled(a: &Rule, b: &Rule) -> bool {
    a.direction == b.direction
        && a.ethertype == b.ethertype
        && a.protocol == b.protocol
        && a.port_range_min == b.port_range_min
        && a.port_range_max == b.port_range_max
        && a.remote == b.remote
}

impl CompiledPolicy {
    /// The policy of `new`, given that `self` is the policy of `old` (compiled from it,
    /// or derived from such a policy by this function or [`CompiledPolicy::with_members`]):
    /// every group set whose groups, the address groups they name and the indices of the
    /// remote groups they name are unchanged is shared with `self`; the other sets are
    /// compiled; member sets are rebuilt only for groups whose members changed. Answers
    /// exactly as [`CompiledPolicy::compile`]`(new, epoch)` (module doc). Cost: the model
    /// comparison of the groups the ports use plus the compile of the affected sets.
    /// If `self` cannot be the policy of `old` (port or group counts differ): a full
    /// compile.
    pub fn recompile(&self, old: &Model, new: &Model, epoch: u64) -> CompiledPolicy {
        if self.ports.len() != old.ports.len() || self.members.len() != old.security_groups.len() {
            return CompiledPolicy::compile(new, epoch);
        }
        let mut previous: HashMap<Vec<&str>, Arc<SetPolicy>> = HashMap::new();
        for (p, slot) in old.ports.iter().zip(self.ports.iter()) {
            if let PortSlot::Rules(s) = slot {
                previous
                    .entry(set_key(&p.security_groups))
                    .or_insert_with(|| s.clone());
            }
        }
        let mut clean = Clean::new(old, new);
        let members = members::rebuild_for(&self.members, old, new);
        let resolver = Resolver::new(new);
        // A group a patch changed: the sets holding it are the base's, not `old`'s.
        let delta = self.delta.clone();
        assemble(new, epoch, &resolver, members, |key| {
            let s = previous.get(key)?;
            key.iter()
                .all(|n| {
                    let patched = delta
                        .as_ref()
                        .is_some_and(|d| clean.old_idx.get(n).is_some_and(|&i| d.touches(i)));
                    !patched && clean.group(n)
                })
                .then(|| s.clone())
        })
    }
}
