//! Address groups: rendering, `POST` / `PUT` bodies and `add_addresses` /
//! `remove_addresses`.
//!
//! Owns: the Neutron shape of an address group. May not touch: the store's state
//! directly.
//!
//! Depends on: `control::store` (state, requests).

use serde_json::{json, Map, Value};

use super::body::{self, decode, parse_json, request_body, required, unwrap_body};
use super::error::{Fail, Reply};
use super::resource::ADDRESS_GROUPS;
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

request_body! {
    /// `address_group` in `POST`.
    struct CreateBody {
        #[serde(default, deserialize_with = "body::string")]
        name: Option<String>,
        #[serde(default, deserialize_with = "body::nullable_string")]
        description: Option<String>,
        #[serde(default, deserialize_with = "body::string_list")]
        addresses: Option<Vec<String>>,
    }
}

request_body! {
    /// `address_group` in `PUT` (addresses change through `add_addresses` /
    /// `remove_addresses`).
    struct UpdateBody {
        #[serde(default, deserialize_with = "body::string")]
        name: Option<String>,
        #[serde(default, deserialize_with = "body::nullable_string")]
        description: Option<String>,
    }
}

request_body! {
    /// The body of `add_addresses` / `remove_addresses` (no wrapper key).
    struct AddressesBody {
        #[serde(default, deserialize_with = "body::string_list")]
        addresses: Option<Vec<String>>,
    }
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
