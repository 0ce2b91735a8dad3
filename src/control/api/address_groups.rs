//! Address groups: rendering, `POST` / `PUT` bodies and `add_addresses` /
//! `remove_addresses`.
//!
//! Owns: the Neutron shape of an address group. May not touch: the store's state
//! directly.

use serde_json::{json, Map, Value};

use super::body::{created, ok_one, parse_json, unwrap_body, Body};
use super::error::{Fail, Reply};
use super::std_attrs;
use crate::control::store::{AddressGroupUpdate, State, Store};

pub(super) fn ag_json(s: &State, ai: usize) -> Value {
    let a = &s.model.address_groups[ai];
    let mut m = Map::new();
    std_attrs(&mut m, &s.meta.address_groups[ai]);
    m.insert("name".into(), json!(a.name));
    m.insert("description".into(), json!(a.description));
    m.insert(
        "addresses".into(),
        json!(a
            .addresses
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()),
    );
    Value::Object(m)
}

pub(super) fn ag_json_all(s: &State) -> Vec<Value> {
    (0..s.model.address_groups.len())
        .map(|ai| ag_json(s, ai))
        .collect()
}

pub(super) fn create_address_group(store: &Store, body: &[u8]) -> Reply {
    let b = Body::new(
        unwrap_body(body, "address_group")?,
        &["name", "description", "addresses"],
        "POST",
    )?;
    let id = store.create_address_group(
        &b.string("name", false)?.unwrap_or_default(),
        b.string("description", true)?.as_deref(),
        &b.string_list("addresses")?.unwrap_or_default(),
    )?;
    let snap = store.snapshot();
    let ai = snap
        .address_group_by_id(&id)
        .ok_or_else(|| Fail::not_found("AddressGroupNotFound", id.clone()))?;
    created("address_group", ag_json(&snap, ai))
}

pub(super) fn update_address_group(store: &Store, id: &str, body: &[u8]) -> Reply {
    let b = Body::new(
        unwrap_body(body, "address_group")?,
        &["name", "description"],
        "PUT",
    )?;
    store.update_address_group(
        id,
        &AddressGroupUpdate {
            name: b.string("name", false)?,
            description: b.string("description", true)?,
        },
    )?;
    let snap = store.snapshot();
    let ai = snap
        .address_group_by_id(id)
        .ok_or_else(|| Fail::not_found("AddressGroupNotFound", id.to_string()))?;
    ok_one("address_group", ag_json(&snap, ai))
}

pub(super) fn change_addresses(store: &Store, id: &str, body: &[u8], add: bool) -> Reply {
    let Value::Object(m) = parse_json(body)? else {
        return Err(Fail::bad(
            "The request body must be a JSON object with the key 'addresses'.",
        ));
    };
    let b = Body::new(m, &["addresses"], "PUT")?;
    let addresses = b.string_list("addresses")?.ok_or_else(|| {
        Fail::bad("Failed to parse request. Required attribute 'addresses' not specified")
    })?;
    store.change_addresses(id, &addresses, add)?;
    let snap = store.snapshot();
    let ai = snap
        .address_group_by_id(id)
        .ok_or_else(|| Fail::not_found("AddressGroupNotFound", id.to_string()))?;
    ok_one("address_group", ag_json(&snap, ai))
}
