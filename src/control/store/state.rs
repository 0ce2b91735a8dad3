//! The committed state's data: [`State`] (the model plus [`Meta`]), the metadata types,
//! lookups by id and name, and building metadata for a model (first launch, reload).
//!
//! Owns: the index alignment of meta with model (see the `store` module doc) and its
//! check. May not touch: files, the apply hook or the `Store`'s locks; it changes no
//! committed state (`Store` hands it private candidates).
//!
//! Depends on: `policy` (the model, the rule key) and its sibling `ids`.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::ids::{now_secs, Id};
use crate::policy::validate::rule_key;
use crate::policy::Model;

/// Neutron-visible metadata of one object (plain data: cloning the meta of a large
/// model is a `memcpy`). Times are seconds since the Unix epoch, shown as RFC 3339.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ObjMeta {
    pub id: Id,
    pub created_at: u64,
    pub updated_at: u64,
    pub revision_number: u64,
}

impl ObjMeta {
    pub(super) fn new(now: u64) -> ObjMeta {
        ObjMeta {
            id: Id::random(),
            created_at: now,
            updated_at: now,
            revision_number: 0,
        }
    }
    pub(super) fn touch(&mut self, now: u64) {
        self.updated_at = now;
        self.revision_number += 1;
    }
}

/// Metadata of a security group and of its rules (index-aligned with the rules).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct GroupMeta {
    #[serde(flatten)]
    pub obj: ObjMeta,
    pub rules: Vec<ObjMeta>,
}

/// Metadata of a network: its id and the ids of its (implicit) IPv4 / IPv6 subnets.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct NetworkMeta {
    #[serde(flatten)]
    pub obj: ObjMeta,
    pub subnet_v4: Id,
    pub subnet_v6: Id,
}

/// Everything Neutron shows that the model does not hold, index-aligned with it.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Meta {
    pub groups: Vec<GroupMeta>,
    pub address_groups: Vec<ObjMeta>,
    pub ports: Vec<ObjMeta>,
    pub networks: Vec<NetworkMeta>,
    /// Packet-logging objects. Absent from state files without logs (those written
    /// before logs existed load, and re-encode byte for byte).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<ObjMeta>,
}

/// A committed state: the model and its metadata.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct State {
    pub model: Model,
    pub meta: Meta,
    /// The hosts whose lease is alive (a shared store's `hosts/` keys, as its cache saw
    /// them); `None` on a local store. Not policy: never written, it only gives a port's
    /// status ([`State::bound_host_down`]).
    pub live_hosts: Option<Arc<BTreeSet<String>>>,
}

impl State {
    /// Whether port `pi` is bound to a host that is not live (shared store only: its
    /// `hosts/` key is gone, the lease expired): Neutron's `status` is then `DOWN`.
    pub fn bound_host_down(&self, pi: usize) -> bool {
        match (
            &self.live_hosts,
            self.model.ports.get(pi).and_then(|p| p.host.as_ref()),
        ) {
            (Some(live), Some(h)) => !live.contains(h),
            _ => false,
        }
    }

    /// Check that the meta is aligned with the model and ids are unique.
    pub fn check(&self) -> Result<(), String> {
        let m = &self.model;
        let t = &self.meta;
        if m.security_groups.len() != t.groups.len()
            || m.address_groups.len() != t.address_groups.len()
            || m.ports.len() != t.ports.len()
            || m.networks.len() != t.networks.len()
            || m.logs.len() != t.logs.len()
        {
            return Err("metadata does not match the model (object counts differ)".into());
        }
        for (g, gm) in m.security_groups.iter().zip(&t.groups) {
            if g.rules.len() != gm.rules.len() {
                return Err(format!(
                    "metadata does not match the model (rule count of group {:?})",
                    g.name
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        let ids = t
            .groups
            .iter()
            .flat_map(|g| std::iter::once(&g.obj).chain(g.rules.iter()))
            .chain(t.address_groups.iter())
            .chain(t.ports.iter())
            .chain(t.networks.iter().map(|n| &n.obj))
            .chain(t.logs.iter());
        for o in ids {
            if !seen.insert(o.id) {
                return Err(format!("id {} is used twice", o.id));
            }
        }
        Ok(())
    }

    /// Index of the security group with this id.
    pub fn group_by_id(&self, id: &str) -> Option<usize> {
        let id = Id::parse(id)?;
        self.meta.groups.iter().position(|g| g.obj.id == id)
    }
    /// Index of the security group with this name.
    pub fn group_by_name(&self, name: &str) -> Option<usize> {
        self.model
            .security_groups
            .iter()
            .position(|g| g.name == name)
    }
    /// (group index, rule index) of the rule with this id.
    pub fn rule_by_id(&self, id: &str) -> Option<(usize, usize)> {
        let id = Id::parse(id)?;
        self.meta
            .groups
            .iter()
            .enumerate()
            .find_map(|(gi, g)| g.rules.iter().position(|r| r.id == id).map(|ri| (gi, ri)))
    }
    pub fn address_group_by_id(&self, id: &str) -> Option<usize> {
        let id = Id::parse(id)?;
        self.meta.address_groups.iter().position(|g| g.id == id)
    }
    pub fn address_group_by_name(&self, name: &str) -> Option<usize> {
        self.model
            .address_groups
            .iter()
            .position(|g| g.name == name)
    }
    pub fn port_by_id(&self, id: &str) -> Option<usize> {
        let id = Id::parse(id)?;
        self.meta.ports.iter().position(|p| p.id == id)
    }
    pub fn network_by_id(&self, id: &str) -> Option<usize> {
        let id = Id::parse(id)?;
        self.meta.networks.iter().position(|n| n.obj.id == id)
    }
    pub fn network_by_name(&self, name: &str) -> Option<usize> {
        self.model.networks.iter().position(|n| n.name == name)
    }
    /// Index of the packet log with this id.
    pub fn log_by_id(&self, id: &str) -> Option<usize> {
        let id = Id::parse(id)?;
        self.meta.logs.iter().position(|l| l.id == id)
    }
    /// The `revision_number` of the object (group, rule, address group, port, network or
    /// log) with this id.
    pub fn revision_of(&self, id: &str) -> Option<u64> {
        let id = Id::parse(id)?;
        let t = &self.meta;
        t.groups
            .iter()
            .flat_map(|g| std::iter::once(&g.obj).chain(g.rules.iter()))
            .chain(t.address_groups.iter())
            .chain(t.ports.iter())
            .chain(t.networks.iter().map(|n| &n.obj))
            .chain(t.logs.iter())
            .find(|o| o.id == id)
            .map(|o| o.revision_number)
    }
    /// Id of the port named `name`.
    pub fn port_id(&self, name: &str) -> Option<Id> {
        self.model.port_index(name).map(|i| self.meta.ports[i].id)
    }
    /// Id of the security group named `name`.
    pub fn group_id(&self, name: &str) -> Option<Id> {
        self.group_by_name(name).map(|i| self.meta.groups[i].obj.id)
    }
    /// Id of the address group named `name`.
    pub fn address_group_id(&self, name: &str) -> Option<Id> {
        self.address_group_by_name(name)
            .map(|i| self.meta.address_groups[i].id)
    }
    /// Id of the network named `name`.
    pub fn network_id(&self, name: &str) -> Option<Id> {
        self.network_by_name(name)
            .map(|i| self.meta.networks[i].obj.id)
    }
}

fn new_network_meta(now: u64) -> NetworkMeta {
    NetworkMeta {
        obj: ObjMeta::new(now),
        subnet_v4: Id::random(),
        subnet_v6: Id::random(),
    }
}

/// Fresh metadata for a model (first launch).
pub(super) fn seed_state(model: &Model) -> State {
    let now = now_secs();
    let meta = Meta {
        groups: model
            .security_groups
            .iter()
            .map(|g| GroupMeta {
                obj: ObjMeta::new(now),
                rules: g.rules.iter().map(|_| ObjMeta::new(now)).collect(),
            })
            .collect(),
        address_groups: model
            .address_groups
            .iter()
            .map(|_| ObjMeta::new(now))
            .collect(),
        ports: model.ports.iter().map(|_| ObjMeta::new(now)).collect(),
        networks: model
            .networks
            .iter()
            .map(|_| new_network_meta(now))
            .collect(),
        logs: model.logs.iter().map(|_| ObjMeta::new(now)).collect(),
    };
    State {
        model: model.clone(),
        meta,
        live_hosts: None,
    }
}

/// Metadata for `new`, keeping the ids of objects of `old` with the same name (rules:
/// same key in a same-named group; logs, whose names need not be unique: an equal log
/// first, else the first unclaimed one with the same name).
pub(super) fn rebuild_meta(old: &State, new: &Model, now: u64) -> Meta {
    let keep = |o: Option<&ObjMeta>, changed: bool| match o {
        Some(m) if changed => {
            let mut m = *m;
            m.touch(now);
            m
        }
        Some(m) => *m,
        None => ObjMeta::new(now),
    };
    let groups = new
        .security_groups
        .iter()
        .map(|g| match old.group_by_name(&g.name) {
            Some(oi) => {
                let og = &old.model.security_groups[oi];
                let om = &old.meta.groups[oi];
                let mut by_key: HashMap<_, &ObjMeta> = HashMap::new();
                for (r, m) in og.rules.iter().zip(&om.rules) {
                    by_key.entry(rule_key(r)).or_insert(m);
                }
                let rules = g
                    .rules
                    .iter()
                    .map(|r| match by_key.remove(&rule_key(r)) {
                        Some(m) => *m,
                        None => ObjMeta::new(now),
                    })
                    .collect();
                GroupMeta {
                    obj: keep(Some(&om.obj), og != g),
                    rules,
                }
            }
            None => GroupMeta {
                obj: ObjMeta::new(now),
                rules: g.rules.iter().map(|_| ObjMeta::new(now)).collect(),
            },
        })
        .collect();
    let address_groups = new
        .address_groups
        .iter()
        .map(|a| {
            let oi = old.address_group_by_name(&a.name);
            keep(
                oi.map(|i| &old.meta.address_groups[i]),
                oi.is_some_and(|i| old.model.address_groups[i] != *a),
            )
        })
        .collect();
    let ports = new
        .ports
        .iter()
        .map(|p| {
            let oi = old.model.port_index(&p.name);
            keep(
                oi.map(|i| &old.meta.ports[i]),
                oi.is_some_and(|i| old.model.ports[i] != *p),
            )
        })
        .collect();
    let networks = new
        .networks
        .iter()
        .map(|n| match old.network_by_name(&n.name) {
            Some(i) => old.meta.networks[i].clone(),
            None => new_network_meta(now),
        })
        .collect();
    let mut claimed = vec![false; old.model.logs.len()];
    let logs = new
        .logs
        .iter()
        .map(|l| {
            let olds = &old.model.logs;
            let free = |i: &usize| !claimed[*i];
            let equal = (0..olds.len()).filter(free).find(|&i| olds[i] == *l);
            let named = || {
                (0..olds.len())
                    .filter(free)
                    .find(|&i| olds[i].name == l.name)
            };
            let oi = equal.or_else(named);
            if let Some(i) = oi {
                claimed[i] = true;
            }
            keep(
                oi.map(|i| &old.meta.logs[i]),
                oi.is_some_and(|i| olds[i] != *l),
            )
        })
        .collect();
    Meta {
        groups,
        address_groups,
        ports,
        networks,
        logs,
    }
}
