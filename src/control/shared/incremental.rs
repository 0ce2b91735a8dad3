//! The host agent's incremental model (#18): a change to keys that do not change the
//! model's shape is applied to the model the agent holds, instead of rebuilding the whole
//! model from the cache ([`super::interest::build`]).
//!
//! What a change may be patched:
//! * `security-groups/G` of a group with a record before and after, whose value keeps its
//!   name and `stateful` flag: a local group's rules are converted
//!   ([`codec::group_spec`]) and checked ([`revalidate_group`]) alone, and replace that
//!   group of the model; a remote-only group (no rules in the model) leaves it unchanged;
//! * `members/R/P`: the member addresses of remote group `R` are gathered again
//!   ([`super::interest::remote_members_of`]).
//!
//! Anything else (ports, networks, address groups, settings, hosts, net-ports, a key
//! read or dropped by an interest change, a group renamed, one whose statefulness
//! changed, a group whose record came or went) is a [`Patch::Rebuild`]: the full build.
//! And only a model that the last full build or patch made is patched: after a failed
//! build the next one is full (a failed group does not leave a model to patch).
//!
//! # Why a patch equals a full rebuild
//! A full build is a function of the cache. Between the last build and now only the
//! changed keys differ. [`Needs`] (ports, networks, local and remote groups, address
//! groups) is recomputed and must be equal, so the set of objects, their order and their
//! names (a function of the values' names in that order, [`Built::names`]) are the same;
//! a local group's spec depends only on its own value and those names; its validation
//! only on the names in the model ([`revalidate_group`]); with its name and statefulness
//! unchanged, no other object's validation or position changes. Members are a function
//! of `members/R/` and the host's own ports, which did not change. The differential test
//! (`agent/incremental_tests.rs`) checks patch == full rebuild on random event sequences,
//! and the compiled verdicts of both on random keys.
//!
//! Owns: deciding whether a change may be patched, and the patch. May not touch: the
//! cache, the store, the dataplane (the agent applies the patched model as any other).

use std::collections::{BTreeSet, HashMap, HashSet};

use ipnet::IpNet;

use super::codec;
use super::interest::{err, remote_members_of, BuildError, Cache, Needs, Stored};
use super::layout::{GroupValue, Keys};
use crate::policy::validate::revalidate_group;
use crate::policy::{Model, SecurityGroup};

/// A group of the last build that had a record.
#[derive(Debug, Clone)]
pub(super) struct GroupMeta {
    /// Its value's name (the model's name is derived from it, [`Built::names`]).
    pub(super) name: String,
    pub(super) stateful: bool,
    /// Its position in the model's `security_groups` (and in the spec validated).
    pub(super) index: usize,
}

/// What the last full build knew: what a patch needs to be exact.
#[derive(Debug, Default)]
pub struct Built {
    pub(super) needs: Needs,
    /// Id (group, address group, network) → its name in the model.
    pub(super) names: HashMap<String, String>,
    /// The groups (local and remote) that had a record, by id.
    pub(super) groups: HashMap<String, GroupMeta>,
    /// The host's ports in the model (ids).
    pub(super) local_ports: HashSet<String>,
}

/// What a change does to the model the agent holds.
#[derive(Debug)]
pub enum Patch {
    /// Not patchable: build the whole model.
    Rebuild,
    /// The model is unchanged.
    Unchanged,
    /// Replace these groups and member sets.
    Changes(Changes),
    /// A changed group does not validate (the model stays).
    Failed(Vec<BuildError>),
}

/// The replacements of a [`Patch::Changes`]; [`Changes::apply`] swaps them into a model
/// and back.
#[derive(Debug, Default)]
pub struct Changes {
    groups: Vec<(usize, SecurityGroup)>,
    /// Group name → its member addresses (`None`: none, the entry goes).
    members: Vec<(String, Option<Vec<IpNet>>)>,
}

impl Changes {
    /// Swap the replacements into `model`: afterwards `self` holds what they replaced,
    /// so a second call undoes the first.
    pub fn apply(&mut self, model: &mut Model) {
        for (i, g) in &mut self.groups {
            std::mem::swap(&mut model.security_groups[*i], g);
        }
        for (name, nets) in &mut self.members {
            let old = match nets.take() {
                Some(n) => model.remote_members.insert(name.clone(), n),
                None => model.remote_members.remove(name),
            };
            *nets = old;
        }
    }
}

/// The id of a `security-groups/ID` key.
fn group_id<'k>(keys: &Keys, key: &'k str) -> Option<&'k str> {
    key.strip_prefix(keys.prefix())?
        .strip_prefix("security-groups/")
}

/// The group id of a `members/GROUP/PORT` key.
fn members_group<'k>(keys: &Keys, key: &'k str) -> Option<&'k str> {
    let rest = key.strip_prefix(keys.prefix())?.strip_prefix("members/")?;
    rest.split_once('/').map(|(g, _)| g)
}

/// What the keys `changed` since the build `built` of `model` do to it (module doc).
/// `now`: what the host needs by the cache now ([`super::interest::needs`]; the agent
/// has it from its interest set).
pub(super) fn patch(
    keys: &Keys,
    cache: &Cache,
    built: &Built,
    model: &Model,
    changed: &BTreeSet<String>,
    now: &Needs,
) -> Patch {
    if *now != built.needs {
        return Patch::Rebuild;
    }
    let mut changes = Changes::default();
    // Conversion errors; validation errors count only without them (as in a full build,
    // which validates only what converted).
    let mut errors = Vec::new();
    let mut invalid = Vec::new();
    let mut members_done = HashSet::new();
    for key in changed {
        if let Some(g) = group_id(keys, key) {
            let Some(meta) = built.groups.get(g) else {
                return Patch::Rebuild; // its record came (or is not one of ours)
            };
            let Some(c) = cache.get(key.as_str()) else {
                return Patch::Rebuild; // its record went
            };
            let v = match c.decoded::<GroupValue>(key) {
                Ok(v) => v,
                Err(e) => {
                    errors.push(err(e));
                    continue;
                }
            };
            if v.name != meta.name || v.stateful != meta.stateful {
                return Patch::Rebuild;
            }
            if !built.needs.groups.contains(g) {
                continue; // remote only: a group with no rules, unchanged
            }
            let lookup = |id: &str| built.names.get(id).cloned();
            let mut spec = match codec::group_spec(key, &v, &lookup) {
                Ok(s) => s,
                Err(e) => {
                    errors.push(err(e));
                    continue;
                }
            };
            spec.name = lookup(g);
            if model.security_groups.get(meta.index).map(|m| &m.name) != spec.name.as_ref() {
                return Patch::Rebuild; // not where the build put it: never patch blind
            }
            match revalidate_group(model, meta.index, &spec) {
                Ok(group) => changes.groups.push((meta.index, group)),
                Err(e) => invalid.extend(e.errors().iter().map(|e| BuildError {
                    object: String::new(),
                    message: format!("{}: {}", e.path, e.kind),
                })),
            }
        } else if let Some(g) = members_group(keys, key) {
            if !built.needs.remote_groups.contains(g) {
                return Patch::Rebuild;
            }
            if !members_done.insert(g) {
                continue;
            }
            let nets = remote_members_of(keys, cache, g, &built.local_ports, &mut errors);
            let name = built.names[g].clone();
            changes
                .members
                .push((name, (!nets.is_empty()).then_some(nets)));
        } else {
            return Patch::Rebuild;
        }
    }
    if !errors.is_empty() {
        return Patch::Failed(errors);
    }
    if !invalid.is_empty() {
        return Patch::Failed(invalid);
    }
    // Drop the replacements that change nothing (the model comparison the agent makes
    // otherwise: a rewrite of a group with the same rules).
    changes
        .groups
        .retain(|(i, g)| model.security_groups[*i] != *g);
    changes
        .members
        .retain(|(name, nets)| model.remote_members.get(name) != nets.as_ref());
    if changes.groups.is_empty() && changes.members.is_empty() {
        Patch::Unchanged
    } else {
        Patch::Changes(changes)
    }
}

#[cfg(test)]
#[path = "incremental_tests.rs"]
mod tests;
