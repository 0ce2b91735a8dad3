//! Security-group rules: rendering and `POST` bodies (single or bulk). A bulk create
//! is linear in the request and the model, its answer included (`render_created`).
//!
//! Owns: the Neutron shape of a rule (protocol names, normalised CIDR, remote ids). May
//! not touch: the store's state directly.
//!
//! Depends on: `control::store` (state, requests) and `policy` (rule types, protocol
//! names).

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::body::{self, decode, parse_json, request_body, required};
use super::error::{Fail, Reply};
use super::resource::{wrapped, RULES};
use super::std_attrs;
use crate::control::store::{Id, RuleCreate, State, Store};
use crate::policy::protocol::protocol_name;
use crate::policy::spec::{RuleSpec, Scalar};
use crate::policy::{Direction, EtherType, Remote};

pub(super) fn direction_str(d: Direction) -> &'static str {
    match d {
        Direction::Ingress => "ingress",
        Direction::Egress => "egress",
    }
}

pub(super) fn ethertype_str(e: EtherType) -> &'static str {
    match e {
        EtherType::IPv4 => "IPv4",
        EtherType::IPv6 => "IPv6",
    }
}

/// One rule as Neutron shows it.
pub fn rule_json(s: &State, gi: usize, ri: usize) -> Value {
    rule_json_with(s, gi, ri, &|n| s.group_id(n), &|n| s.address_group_id(n))
}

/// [`rule_json`] with the ids of remote groups and address groups (by name) from the
/// caller: a bulk answer looks them up in maps built once instead of scanning the
/// groups for every rule.
fn rule_json_with(
    s: &State,
    gi: usize,
    ri: usize,
    group_id: &dyn Fn(&str) -> Option<Id>,
    address_group_id: &dyn Fn(&str) -> Option<Id>,
) -> Value {
    let g = &s.model.security_groups[gi];
    let r = &g.rules[ri];
    let mut m = Map::new();
    std_attrs(&mut m, &s.meta.groups[gi].rules[ri]);
    m.insert("security_group_id".into(), json!(s.meta.groups[gi].obj.id));
    m.insert("direction".into(), json!(direction_str(r.direction)));
    m.insert("ethertype".into(), json!(ethertype_str(r.ethertype)));
    m.insert(
        "protocol".into(),
        match r.neutron_protocol() {
            None => Value::Null,
            Some(n) => json!(protocol_name(n)
                .map(str::to_string)
                .unwrap_or_else(|| n.to_string())),
        },
    );
    m.insert("port_range_min".into(), json!(r.port_range_min));
    m.insert("port_range_max".into(), json!(r.port_range_max));
    let (prefix, norm, rg, rag) = match &r.remote {
        Remote::Any => (Value::Null, Value::Null, Value::Null, Value::Null),
        Remote::Prefix(net) => (
            json!(r
                .remote_ip_prefix_raw
                .clone()
                .unwrap_or_else(|| net.to_string())),
            json!(net.to_string()),
            Value::Null,
            Value::Null,
        ),
        Remote::Group(n) => (Value::Null, Value::Null, json!(group_id(n)), Value::Null),
        Remote::AddressGroup(n) => (
            Value::Null,
            Value::Null,
            Value::Null,
            json!(address_group_id(n)),
        ),
    };
    m.insert("remote_ip_prefix".into(), prefix);
    m.insert("normalized_cidr".into(), norm);
    m.insert("remote_group_id".into(), rg);
    m.insert("remote_address_group_id".into(), rag);
    m.insert("description".into(), json!(r.description));
    m.insert(
        "belongs_to_default_sg".into(),
        json!(g.name == crate::policy::DEFAULT_GROUP),
    );
    Value::Object(m)
}

request_body! {
    /// One `security_group_rule` in `POST` (single or bulk).
    struct RuleBody {
        #[serde(default, deserialize_with = "body::string")]
        security_group_id: Option<String>,
        #[serde(default, deserialize_with = "body::string")]
        direction: Option<String>,
        #[serde(default, deserialize_with = "body::nullable_string")]
        ethertype: Option<String>,
        #[serde(default, deserialize_with = "body::scalar")]
        protocol: Option<Scalar>,
        #[serde(default, deserialize_with = "body::scalar")]
        port_range_min: Option<Scalar>,
        #[serde(default, deserialize_with = "body::scalar")]
        port_range_max: Option<Scalar>,
        #[serde(default, deserialize_with = "body::nullable_string")]
        remote_ip_prefix: Option<String>,
        #[serde(default, deserialize_with = "body::nullable_string")]
        remote_group_id: Option<String>,
        #[serde(default, deserialize_with = "body::nullable_string")]
        remote_address_group_id: Option<String>,
        #[serde(default, deserialize_with = "body::nullable_string")]
        description: Option<String>,
    }
}

pub(super) fn rule_request(m: Map<String, Value>) -> Result<RuleCreate, Fail> {
    let b: RuleBody = decode(m, "POST")?;
    Ok(RuleCreate {
        security_group_id: required(b.security_group_id, "security_group_id")?,
        spec: RuleSpec {
            direction: Some(required(b.direction, "direction")?),
            ethertype: b.ethertype,
            protocol: b.protocol,
            port_range_min: b.port_range_min,
            port_range_max: b.port_range_max,
            remote_ip_prefix: b.remote_ip_prefix,
            remote_group: None,
            remote_address_group: None,
            description: b.description,
        },
        remote_group_id: b.remote_group_id,
        remote_address_group_id: b.remote_address_group_id,
    })
}

/// The created rules, in the order of `ids`, rendered from `snap` in time linear in the
/// model and the answer (one pass to find them, one map of group and address-group
/// ids); a rule already gone again is a 404 naming its id, as [`RULES`]' `render_id`.
fn render_created(snap: &State, ids: &[String]) -> Result<Vec<Value>, Fail> {
    let mut at: HashMap<Id, Option<(usize, usize)>> = ids
        .iter()
        .filter_map(|id| Id::parse(id).map(|i| (i, None)))
        .collect();
    for (gi, g) in snap.meta.groups.iter().enumerate() {
        for (ri, r) in g.rules.iter().enumerate() {
            if let Some(slot) = at.get_mut(&r.id) {
                *slot = Some((gi, ri));
            }
        }
    }
    let groups: HashMap<&str, Id> = (snap.model.security_groups.iter().zip(&snap.meta.groups))
        .map(|(g, m)| (g.name.as_str(), m.obj.id))
        .collect();
    let address_groups: HashMap<&str, Id> = (snap
        .model
        .address_groups
        .iter()
        .zip(&snap.meta.address_groups))
    .map(|(a, m)| (a.name.as_str(), m.id))
    .collect();
    ids.iter()
        .map(|id| {
            let (gi, ri) = Id::parse(id)
                .and_then(|i| at.get(&i).copied().flatten())
                .ok_or_else(|| Fail::not_found(RULES.not_found.0, id))?;
            Ok(rule_json_with(
                snap,
                gi,
                ri,
                &|n| groups.get(n).copied(),
                &|n| address_groups.get(n).copied(),
            ))
        })
        .collect()
}

pub(super) fn create_rules(store: &Store, body: &[u8]) -> Reply {
    let v = parse_json(body)?;
    let Value::Object(mut outer) = v else {
        return Err(Fail::bad("The request body must be a JSON object."));
    };
    let bulk = outer.contains_key("security_group_rules");
    let key = if bulk {
        "security_group_rules"
    } else {
        "security_group_rule"
    };
    if let Some(k) = outer.keys().find(|k| *k != key) {
        return Err(Fail::bad(format!(
            "Unrecognized attribute '{k}' (expected only '{key}')."
        )));
    }
    let reqs: Vec<RuleCreate> = match outer.remove(key) {
        Some(Value::Object(m)) if !bulk => vec![rule_request(m)?],
        Some(Value::Array(items)) if bulk => items
            .into_iter()
            .map(|it| match it {
                Value::Object(m) => rule_request(m),
                _ => Err(Fail::bad(
                    "Each element of 'security_group_rules' must be an object.",
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(Fail::bad(format!("'{key}' has the wrong type."))),
        None => {
            return Err(Fail::bad(
                "Resource body required: missing 'security_group_rule'.",
            ))
        }
    };
    if reqs.is_empty() {
        return Err(Fail::bad("No security group rules given."));
    }
    let ids = store.create_rules(&reqs)?;
    let mut out = render_created(&store.snapshot(), &ids)?;
    if bulk {
        wrapped(201, RULES.keys.0, Value::Array(out))
    } else {
        wrapped(201, RULES.keys.1, out.pop().unwrap_or(Value::Null))
    }
}
