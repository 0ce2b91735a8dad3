//! Security groups: rendering (rules embedded) and `POST` / `PUT` bodies.
//!
//! Owns: the Neutron shape of a security group. May not touch: the store's state
//! directly (changes go through `Store` methods).
//!
//! Depends on: `control::store` (state, requests).

use serde_json::{Map, Value};

use super::body::{self, decode, request_body, unwrap_body};
use super::error::Reply;
use super::resource::GROUPS;
use super::rules::rule_json;
use super::std_attrs;
use crate::control::store::{GroupCreate, GroupUpdate, State, Store};
use serde_json::json;

/// One security group as Neutron shows it (rules embedded).
pub fn sg_json(s: &State, gi: usize) -> Value {
    let g = &s.model.security_groups[gi];
    let mut m = Map::new();
    std_attrs(&mut m, &s.meta.groups[gi].obj);
    m.insert("name".into(), json!(g.name));
    m.insert("description".into(), json!(g.description));
    m.insert("stateful".into(), json!(g.stateful));
    m.insert("shared".into(), json!(false));
    m.insert(
        "security_group_rules".into(),
        Value::Array((0..g.rules.len()).map(|ri| rule_json(s, gi, ri)).collect()),
    );
    Value::Object(m)
}

request_body! {
    /// `security_group` in `POST` and `PUT`.
    struct GroupBody {
        #[serde(default, deserialize_with = "body::string")]
        name: Option<String>,
        #[serde(default, deserialize_with = "body::nullable_string")]
        description: Option<String>,
        #[serde(default, deserialize_with = "body::boolean")]
        stateful: Option<bool>,
    }
}

pub(super) fn create_group(store: &Store, body: &[u8]) -> Reply {
    let b: GroupBody = decode(unwrap_body(body, "security_group")?, "POST")?;
    let req = GroupCreate {
        name: b.name.unwrap_or_default(),
        description: b.description,
        stateful: b.stateful,
    };
    let id = store.create_group(&req)?;
    GROUPS.created(store, &id)
}

pub(super) fn update_group(store: &Store, id: &str, body: &[u8]) -> Reply {
    let b: GroupBody = decode(unwrap_body(body, "security_group")?, "PUT")?;
    let req = GroupUpdate {
        name: b.name,
        description: b.description,
        stateful: b.stateful,
    };
    store.update_group(id, &req)?;
    GROUPS.updated(store, id)
}
