//! Address groups: rendering, `POST` / `PUT` bodies and `add_addresses` /
//! `remove_addresses`.
//!
//! Owns: the Neutron shape of an address group. May not touch: the store's state
//! directly.

use serde_json::{json, Map, Value};

use serde::Deserialize;

use super::body::{self, decode, parse_json, required, unwrap_body};
use super::error::{Fail, Reply};
use super::resource::Resource;
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

/// Address groups for the generic list / show answers.
pub(super) const ADDRESS_GROUPS: Resource<usize> = Resource {
    collection: "address_groups",
    key: "address_group",
    not_found: "AddressGroupNotFound",
    what: "Address group",
    all: |s| (0..s.model.address_groups.len()).collect(),
    find: State::address_group_by_id,
    render: ag_json,
};

/// `address_group` in `POST`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    #[serde(default, deserialize_with = "body::string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "body::nullable_string")]
    description: Option<String>,
    #[serde(default, deserialize_with = "body::string_list")]
    addresses: Option<Vec<String>>,
    #[serde(default, rename = "tenant_id", deserialize_with = "body::string")]
    _tenant_id: Option<String>,
    #[serde(default, rename = "project_id", deserialize_with = "body::string")]
    _project_id: Option<String>,
}

/// `address_group` in `PUT` (addresses change through `add_addresses` /
/// `remove_addresses`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    #[serde(default, deserialize_with = "body::string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "body::nullable_string")]
    description: Option<String>,
    #[serde(default, rename = "tenant_id", deserialize_with = "body::string")]
    _tenant_id: Option<String>,
    #[serde(default, rename = "project_id", deserialize_with = "body::string")]
    _project_id: Option<String>,
}

/// The body of `add_addresses` / `remove_addresses` (no wrapper key).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddressesBody {
    #[serde(default, deserialize_with = "body::string_list")]
    addresses: Option<Vec<String>>,
    #[serde(default, rename = "tenant_id", deserialize_with = "body::string")]
    _tenant_id: Option<String>,
    #[serde(default, rename = "project_id", deserialize_with = "body::string")]
    _project_id: Option<String>,
}

pub(super) fn create_address_group(store: &Store, body: &[u8]) -> Reply {
    let b: CreateBody = decode(unwrap_body(body, "address_group")?, "POST")?;
    let id = store.create_address_group(
        &b.name.unwrap_or_default(),
        b.description.as_deref(),
        &b.addresses.unwrap_or_default(),
    )?;
    ADDRESS_GROUPS.created(store, &id)
}

pub(super) fn update_address_group(store: &Store, id: &str, body: &[u8]) -> Reply {
    let b: UpdateBody = decode(unwrap_body(body, "address_group")?, "PUT")?;
    store.update_address_group(
        id,
        &AddressGroupUpdate {
            name: b.name,
            description: b.description,
        },
    )?;
    ADDRESS_GROUPS.updated(store, id)
}

pub(super) fn change_addresses(store: &Store, id: &str, body: &[u8], add: bool) -> Reply {
    let Value::Object(m) = parse_json(body)? else {
        return Err(Fail::bad(
            "The request body must be a JSON object with the key 'addresses'.",
        ));
    };
    let b: AddressesBody = decode(m, "PUT")?;
    let addresses = required(b.addresses, "addresses")?;
    store.change_addresses(id, &addresses, add)?;
    ADDRESS_GROUPS.updated(store, id)
}
