//! A kept copy of a model brought up to date with another one by cloning only what
//! differs (#18): an applier that keeps the last model it applied (to derive the next
//! compiled policy from it, [`crate::classifier::CompiledPolicy::recompile`]) paid a
//! clone of the whole model per apply and a drop of the previous one; for a rule added
//! to a 100-rule group that is ~100 rules allocated and ~100 freed per host and change,
//! where one rule changed. [`assign_changed`] compares (no allocation) and clones the
//! differing elements only. Afterwards `dst == src`, whatever both were
//! (`assign_changed_equals_clone` checks it on random model pairs).
//!
//! Owns: nothing but the copy. May not touch: the classifier (it only reads the
//! [`Model`] type).

use std::collections::BTreeMap;

use crate::policy::{Model, SecurityGroup};

/// Make `dst` equal to `src`, cloning only the elements that differ.
pub fn assign_changed(dst: &mut Model, src: &Model) {
    // Exhaustive on purpose: a field added to `Model` must be listed here.
    let Model {
        security_groups,
        address_groups,
        ports,
        networks,
        permitted_ethertypes,
        conntrack,
        logs,
        remote_members,
        hosts,
        local_host,
    } = src;
    sync_vec_with(&mut dst.security_groups, security_groups, sync_group);
    sync_vec(&mut dst.address_groups, address_groups);
    sync_vec(&mut dst.ports, ports);
    sync_vec(&mut dst.networks, networks);
    sync_vec(&mut dst.permitted_ethertypes, permitted_ethertypes);
    assign(&mut dst.conntrack, conntrack);
    sync_vec(&mut dst.logs, logs);
    sync_map(&mut dst.remote_members, remote_members);
    sync_vec(&mut dst.hosts, hosts);
    assign(&mut dst.local_host, local_host);
}

fn assign<T: Clone + PartialEq>(dst: &mut T, src: &T) {
    if dst != src {
        dst.clone_from(src);
    }
}

fn sync_group(dst: &mut SecurityGroup, src: &SecurityGroup) {
    let SecurityGroup {
        name,
        description,
        stateful,
        rules,
    } = src;
    assign(&mut dst.name, name);
    assign(&mut dst.description, description);
    dst.stateful = *stateful;
    sync_vec(&mut dst.rules, rules);
}

fn sync_vec<T: Clone + PartialEq>(dst: &mut Vec<T>, src: &[T]) {
    sync_vec_with(dst, src, assign)
}

/// `dst` made equal to `src` element by element (`sync` on the pairs that differ). An
/// element inserted or removed in the middle shifts the rest: they are then synced one
/// by one (still correct, just not cheaper than a clone).
fn sync_vec_with<T: Clone + PartialEq>(dst: &mut Vec<T>, src: &[T], sync: fn(&mut T, &T)) {
    if dst.len() > src.len() {
        dst.truncate(src.len());
    }
    for (d, s) in dst.iter_mut().zip(src) {
        if d != s {
            sync(d, s);
        }
    }
    let have = dst.len();
    dst.extend_from_slice(&src[have..]);
}

fn sync_map<V: Clone + PartialEq>(dst: &mut BTreeMap<String, V>, src: &BTreeMap<String, V>) {
    if dst == src {
        return;
    }
    dst.retain(|k, _| src.contains_key(k));
    for (k, v) in src {
        match dst.get_mut(k) {
            Some(d) => assign(d, v),
            None => {
                dst.insert(k.clone(), v.clone());
            }
        }
    }
}

#[cfg(test)]
#[path = "model_sync_tests.rs"]
mod tests;
