//! The answers every resource gives the same way: list (`GET /v2.0/<collection>`), show
//! (`GET …/{id}`), and the object answered after a create (201) or an update (200).
//!
//! The table below describes each resource once as a `Resource` (its wrapper keys, its
//! not-found error, how to enumerate its objects, find one by id and render one); these
//! answers are written once for all of them. `I` is the index of an object in a
//! [`State`]: `usize`, or `(group, rule)` for rules.
//!
//! The two not-found answers are kept as they were: `show` says `<What> <id> could not be
//! found.`; an object that vanished between a change and the snapshot that renders it is
//! answered with its bare id.
//!
//! Owns: which resources the API serves (their keys and not-found answers) and the shape
//! of list, show and single-object answers. May not touch: a resource's rendering or
//! bodies (each resource module owns its own and is only named here), the store beyond
//! taking a snapshot, or query parsing and filtering ([`super::query`]).
//!
//! Depends on: `control::store` (snapshots) and the resource modules it names.

use serde_json::{Map, Value};

use super::error::{Fail, Reply};
use super::query::filter;
use super::{address_groups, groups, logs, networks, ports, rules};
use crate::control::store::{State, Store};

/// One resource of the API, as the generic answers need it.
pub(super) struct Resource<I> {
    /// The wrapper keys of a list and of one object (`security_groups`,
    /// `security_group`).
    pub(super) keys: (&'static str, &'static str),
    /// The Neutron error type when no object has the id, and the resource's name in a
    /// show's not-found message (`SecurityGroupNotFound`, `Security group`).
    pub(super) not_found: (&'static str, &'static str),
    /// Every object, in the order a list shows them.
    pub(super) all: fn(&State) -> Vec<I>,
    /// The object with this id.
    pub(super) find: fn(&State, &str) -> Option<I>,
    /// One object as Neutron shows it.
    pub(super) render: fn(&State, I) -> Value,
}

/// Security groups.
pub(super) const GROUPS: Resource<usize> = Resource {
    keys: ("security_groups", "security_group"),
    not_found: ("SecurityGroupNotFound", "Security group"),
    all: |s| (0..s.model.security_groups.len()).collect(),
    find: State::group_by_id,
    render: groups::sg_json,
};

/// Security-group rules: every rule of every group, group by group.
pub(super) const RULES: Resource<(usize, usize)> = Resource {
    keys: ("security_group_rules", "security_group_rule"),
    not_found: ("SecurityGroupRuleNotFound", "Security group rule"),
    all: |s| {
        let groups = s.model.security_groups.iter().enumerate();
        groups
            .flat_map(|(gi, g)| (0..g.rules.len()).map(move |ri| (gi, ri)))
            .collect()
    },
    find: State::rule_by_id,
    render: |s, (gi, ri)| rules::rule_json(s, gi, ri),
};

/// Address groups.
pub(super) const ADDRESS_GROUPS: Resource<usize> = Resource {
    keys: ("address_groups", "address_group"),
    not_found: ("AddressGroupNotFound", "Address group"),
    all: |s| (0..s.model.address_groups.len()).collect(),
    find: State::address_group_by_id,
    render: address_groups::ag_json,
};

/// Ports.
pub(super) const PORTS: Resource<usize> = Resource {
    keys: ("ports", "port"),
    not_found: ("PortNotFound", "Port"),
    all: |s| (0..s.model.ports.len()).collect(),
    find: State::port_by_id,
    render: ports::port_json,
};

/// Networks.
pub(super) const NETWORKS: Resource<usize> = Resource {
    keys: ("networks", "network"),
    not_found: ("NetworkNotFound", "Network"),
    all: |s| (0..s.model.networks.len()).collect(),
    find: State::network_by_id,
    render: networks::network_json,
};

/// Packet logs (`/v2.0/log/logs`).
pub(super) const LOGS: Resource<usize> = Resource {
    keys: ("logs", "log"),
    not_found: ("LogResourceNotFound", "Log resource"),
    all: |s| (0..s.model.logs.len()).collect(),
    find: State::log_by_id,
    render: logs::log_json,
};

/// `{"<key>": value}` with `status`.
pub(super) fn wrapped(status: u16, key: &str, v: Value) -> Reply {
    let mut m = Map::new();
    m.insert(key.to_string(), v);
    Ok((status, Some(Value::Object(m))))
}

impl<I> Resource<I> {
    /// `200 {"<collection>": [...]}`: the objects of `s` matching every filter of `query`.
    pub(super) fn list_in(&self, s: &State, query: &[(String, String)]) -> Reply {
        let items = (self.all)(s)
            .into_iter()
            .map(|i| (self.render)(s, i))
            .collect();
        wrapped(200, self.keys.0, Value::Array(filter(items, query)?))
    }

    /// `GET /v2.0/<collection>` on the current snapshot.
    pub(super) fn list(&self, store: &Store, query: &[(String, String)]) -> Reply {
        self.list_in(&store.snapshot(), query)
    }

    /// `GET /v2.0/<collection>/{id}`: `200 {"<key>": {...}}`, or 404
    /// `<What> <id> could not be found.`
    pub(super) fn show(&self, store: &Store, id: &str) -> Reply {
        let snap = store.snapshot();
        match (self.find)(&snap, id) {
            Some(i) => wrapped(200, self.keys.1, (self.render)(&snap, i)),
            None => {
                let (ty, what) = self.not_found;
                Err(Fail::not_found(
                    ty,
                    format!("{what} {id} could not be found."),
                ))
            }
        }
    }

    /// The object with `id` in `s`, rendered; 404 naming the bare id if it is gone.
    pub(super) fn render_id(&self, s: &State, id: &str) -> Result<Value, Fail> {
        let i = (self.find)(s, id).ok_or_else(|| Fail::not_found(self.not_found.0, id))?;
        Ok((self.render)(s, i))
    }

    /// The answer to a create: `201 {"<key>": {...}}` from a fresh snapshot.
    pub(super) fn created(&self, store: &Store, id: &str) -> Reply {
        wrapped(201, self.keys.1, self.render_id(&store.snapshot(), id)?)
    }

    /// The answer to an update: `200 {"<key>": {...}}` from a fresh snapshot.
    pub(super) fn updated(&self, store: &Store, id: &str) -> Reply {
        wrapped(200, self.keys.1, self.render_id(&store.snapshot(), id)?)
    }
}
