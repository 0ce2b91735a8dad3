//! Security-group rules: rendering and `POST` bodies (single or bulk).
//!
//! Owns: the Neutron shape of a rule (protocol names, normalised CIDR, remote ids). May
//! not touch: the store's state directly.
//!
//! Depends on: `control::store` (state, requests) and `policy` (rule types, protocol
//! names).

use serde_json::{json, Map, Value};

use super::body::{self, decode, parse_json, request_body, required};
use super::error::{Fail, Reply};
use super::resource::{wrapped, RULES};
use super::std_attrs;
use crate::control::store::{RuleCreate, State, Store};
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
        Remote::Group(n) => (Value::Null, Value::Null, json!(s.group_id(n)), Value::Null),
        Remote::AddressGroup(n) => (
            Value::Null,
            Value::Null,
            Value::Null,
            json!(s.address_group_id(n)),
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
    let snap = store.snapshot();
    let mut out = Vec::with_capacity(ids.len());
    for id in &ids {
        out.push(RULES.render_id(&snap, id)?);
    }
    if bulk {
        wrapped(201, RULES.keys.0, Value::Array(out))
    } else {
        wrapped(201, RULES.keys.1, out.pop().unwrap_or(Value::Null))
    }
}
