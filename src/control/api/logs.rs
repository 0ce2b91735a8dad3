//! Packet logs (Neutron's `logging` extension, under `/v2.0/log`): rendering, `POST` /
//! `PUT` bodies, and the loggable resource types.
//!
//! # Routes
//! * `GET /v2.0/log/loggable-resources` → `{"loggable_resources":[{"type":"security_group"}]}`;
//! * `GET /v2.0/log/logs` (filters on any field, as every list), `POST` (201);
//! * `GET`, `PUT` (`name`, `description`, `enabled`), `DELETE` (204) `/v2.0/log/logs/{id}`.
//!
//! A log shows Neutron's fields: `id`, `name`, `description`, `project_id`, `tenant_id`,
//! `resource_type` (always `security_group`), `resource_id` (the group's id or `null`),
//! `target_id` (the port's id or `null`), `event`, `enabled`, `created_at`,
//! `updated_at`, `revision_number` (and `tags`, like every object here). Ids are checked
//! to be UUIDs (`type:uuid_or_none`, 400) before the store looks them up (404).
//!
//! Owns: the Neutron shape of a log and its bodies. May not touch: the store's state
//! directly (changes go through `Store` methods, which answer Neutron's errors).
//!
//! Depends on: `control::store` (state, requests, the loggable types).

use serde_json::{json, Map, Value};

use super::body::{self, decode, request_body, required, unwrap_body};
use super::error::{Fail, Reply};
use super::resource::{wrapped, LOGS};
use super::std_attrs;
use crate::control::store::{Id, LogCreate, LogUpdate, State, Store, LOGGABLE_RESOURCE_TYPES};

/// One packet log as Neutron shows it.
pub fn log_json(s: &State, li: usize) -> Value {
    let l = &s.model.logs[li];
    let mut m = Map::new();
    std_attrs(&mut m, &s.meta.logs[li]);
    m.insert("name".into(), json!(l.name));
    m.insert("description".into(), json!(l.description));
    m.insert("resource_type".into(), json!(LOGGABLE_RESOURCE_TYPES[0]));
    let resource = l.resource.as_deref().and_then(|g| s.group_id(g));
    m.insert("resource_id".into(), json!(resource));
    let target = l.target.as_deref().and_then(|p| s.port_id(p));
    m.insert("target_id".into(), json!(target));
    m.insert("event".into(), json!(l.event.as_str()));
    m.insert("enabled".into(), json!(l.enabled));
    Value::Object(m)
}

request_body! {
    /// `log` in `POST`.
    struct CreateBody {
        #[serde(default, deserialize_with = "body::string")]
        name: Option<String>,
        #[serde(default, deserialize_with = "body::nullable_string")]
        description: Option<String>,
        #[serde(default, deserialize_with = "body::string")]
        resource_type: Option<String>,
        #[serde(default, deserialize_with = "body::nullable_string")]
        resource_id: Option<String>,
        #[serde(default, deserialize_with = "body::nullable_string")]
        target_id: Option<String>,
        #[serde(default, deserialize_with = "body::string")]
        event: Option<String>,
        #[serde(default, deserialize_with = "body::boolean")]
        enabled: Option<bool>,
    }
}

request_body! {
    /// `log` in `PUT`: `name`, `description` and `enabled` change; the attributes fixed
    /// at creation are refused by name.
    struct UpdateBody {
        #[serde(default, deserialize_with = "body::string")]
        name: Option<String>,
        #[serde(default, deserialize_with = "body::nullable_string")]
        description: Option<String>,
        #[serde(default, deserialize_with = "body::boolean")]
        enabled: Option<bool>,
        #[serde(default, deserialize_with = "body::raw")]
        resource_type: Option<Value>,
        #[serde(default, deserialize_with = "body::raw")]
        resource_id: Option<Value>,
        #[serde(default, deserialize_with = "body::raw")]
        target_id: Option<Value>,
        #[serde(default, deserialize_with = "body::raw")]
        event: Option<Value>,
    }
}

/// A `uuid_or_none` attribute: `None`, or a UUID (400 otherwise).
fn uuid_or_none(v: Option<String>, key: &str) -> Result<Option<String>, Fail> {
    match v {
        Some(id) if Id::parse(&id).is_none() => Err(Fail::bad(format!(
            "Invalid input for {key}. Reason: '{id}' is not a valid UUID."
        ))),
        v => Ok(v),
    }
}

pub(super) fn create_log(store: &Store, body: &[u8]) -> Reply {
    let b: CreateBody = decode(unwrap_body(body, "log")?, "POST")?;
    let req = LogCreate {
        name: b.name,
        description: b.description,
        resource_type: required(b.resource_type, "resource_type")?,
        resource_id: uuid_or_none(b.resource_id, "resource_id")?,
        target_id: uuid_or_none(b.target_id, "target_id")?,
        event: b.event,
        enabled: b.enabled,
    };
    let id = store.create_log(&req)?;
    LOGS.created(store, &id)
}

pub(super) fn update_log(store: &Store, id: &str, body: &[u8]) -> Reply {
    let b: UpdateBody = decode(unwrap_body(body, "log")?, "PUT")?;
    let fixed = [
        ("resource_type", &b.resource_type),
        ("resource_id", &b.resource_id),
        ("target_id", &b.target_id),
        ("event", &b.event),
    ];
    if let Some((key, _)) = fixed.iter().find(|(_, v)| v.is_some()) {
        return Err(Fail::bad(format!(
            "Cannot update read-only attribute {key}"
        )));
    }
    let req = LogUpdate {
        name: b.name,
        description: b.description,
        enabled: b.enabled,
    };
    store.update_log(id, &req)?;
    LOGS.updated(store, id)
}

/// `GET /v2.0/log/loggable-resources`.
pub(super) fn loggable_resources() -> Reply {
    let types = LOGGABLE_RESOURCE_TYPES
        .iter()
        .map(|t| json!({ "type": t }))
        .collect();
    wrapped(200, "loggable_resources", Value::Array(types))
}
