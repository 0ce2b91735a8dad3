//! The version documents: `GET /` (API versions), `GET /v2.0` (resources) and
//! `GET /v2.0/extensions` (the aliases we implement).
//!
//! Owns: what the server says it is and supports. May not touch: the store.
//!
//! Depends on: nothing outside `api`.

use serde_json::{json, Value};

pub(super) fn versions(host: &str) -> Value {
    json!({"versions": [{
        "id": "v2.0",
        "status": "CURRENT",
        "links": [{"href": format!("http://{host}/v2.0/"), "rel": "self"}]
    }]})
}

pub(super) fn extensions() -> Value {
    let ext = |alias: &str, name: &str| json!({"alias": alias, "name": name, "description": name, "links": [], "updated": "2026-01-01T00:00:00-00:00"});
    json!({"extensions": [
        ext("security-group", "security-group"),
        ext("stateful-security-group", "Stateful security group"),
        ext("address-group", "Address group"),
        ext("port-security", "Port Security"),
        ext("allowed-address-pairs", "Allowed Address Pairs"),
        ext("standard-attr-revisions", "Resource revision numbers"),
        ext("standard-attr-timestamp", "Resource timestamps"),
        ext("project-id", "project_id field enabled"),
        ext("binding", "Port Binding"),
        ext("logging", "Logging API Extension"),
    ]})
}

/// `GET /v2.0`: the collections served.
pub(super) fn resources() -> Value {
    json!({"resources": [
        {"name": "security_group", "collection": "security_groups", "links": []},
        {"name": "security_group_rule", "collection": "security_group_rules", "links": []},
        {"name": "address_group", "collection": "address_groups", "links": []},
        {"name": "port", "collection": "ports", "links": []},
        {"name": "network", "collection": "networks", "links": []},
        {"name": "log", "collection": "logs", "links": []},
        {"name": "loggable_resource", "collection": "loggable_resources", "links": []}
    ]})
}
