//! Request bodies: JSON parsing, the resource wrapper key, and decoding a request object
//! into a resource's body struct.
//!
//! Owns: what a malformed or mistyped body is answered. May not touch: the store; a
//! resource module declares which attributes its verbs accept (its body structs).
//!
//! # Decoding
//! A body struct is declared through `request_body!`, which derives `Deserialize` with
//! `#[serde(deny_unknown_fields)]`; every attribute is an `Option` with
//! `#[serde(default, deserialize_with = …)]` naming one of the attribute kinds below, so
//! an absent attribute is `None` and a present one is type-checked exactly as Neutron's
//! API (`null` is refused where Neutron refuses it).
//! `decode` runs it through `serde_path_to_error`, so the answer names the attribute:
//! `Invalid input for KEY. Reason: 'VALUE' is not a valid KIND.`, or for an attribute
//! the struct lacks `Unrecognized attribute(s) 'KEY' (not allowed in VERB).` Nested
//! objects (address pairs, fixed IPs, `binding:profile`) are kept as JSON objects by
//! `objects` / `object` and decoded by their own `decode` call, whose `verb` is
//! the parent attribute (as Neutron names it in the error). Required attributes are
//! checked after decoding (`required`), which is how `null` and absence get their
//! different answers.
//!
//! `tenant_id` and `project_id` are accepted (and ignored: there is one project) in
//! every object, as strings: `request_body!` adds them to each body struct.
//!
//! Where two attributes are wrong at once, the one reported first can differ from the
//! hand-written checker this replaced (serde reads the keys in order, that checker
//! looked for unknown keys first); each single error is answered as before
//! (`tests/fixtures/api-bodies.txt`).
//!
//! Depends on: `policy::spec::Scalar`, nothing else outside `api`.

use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::Fail;
use crate::policy::spec::Scalar;

/// Declare a request body struct: `Deserialize` with `deny_unknown_fields`, the given
/// attributes, and `tenant_id` / `project_id` accepted as strings and ignored.
macro_rules! request_body {
    ($(#[$meta:meta])* struct $name:ident { $($(#[$fmeta:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct $name {
            $($(#[$fmeta])* $field: $ty,)*
            #[serde(
                default,
                rename = "tenant_id",
                deserialize_with = "crate::control::api::body::string"
            )]
            _tenant_id: Option<String>,
            #[serde(
                default,
                rename = "project_id",
                deserialize_with = "crate::control::api::body::string"
            )]
            _project_id: Option<String>,
        }
    };
}
pub(super) use request_body;

pub(super) fn parse_json(body: &[u8]) -> Result<Value, Fail> {
    if body.is_empty() {
        return Err(Fail::bad(
            "The request body is empty; a JSON object is required.",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| Fail::bad(format!("Malformed JSON in request body: {e}")))
}

/// The object under the wrapper key `key`; anything else in the body is a 400.
pub(super) fn unwrap_body(body: &[u8], key: &str) -> Result<Map<String, Value>, Fail> {
    let v = parse_json(body)?;
    let Value::Object(mut outer) = v else {
        return Err(Fail::bad(format!(
            "The request body must be a JSON object with the key '{key}'."
        )));
    };
    if let Some(k) = outer.keys().find(|k| *k != key) {
        return Err(Fail::bad(format!(
            "Unrecognized attribute '{k}' (expected only '{key}')."
        )));
    }
    match outer.remove(key) {
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(Fail::bad(format!("'{key}' must be a JSON object."))),
        None => Err(Fail::bad(format!(
            "Resource body required: missing '{key}'."
        ))),
    }
}

/// Decode one request object into `T`; `verb` names the object in an unknown-attribute
/// answer (`POST`, `PUT`, or the parent attribute of a nested object).
pub(super) fn decode<T: DeserializeOwned>(m: Map<String, Value>, verb: &str) -> Result<T, Fail> {
    serde_path_to_error::deserialize(Value::Object(m)).map_err(|e| {
        let key = e.path().to_string();
        let reason = e.inner().to_string();
        if reason.starts_with("unknown field") {
            Fail::bad(format!(
                "Unrecognized attribute(s) '{key}' (not allowed in {verb})."
            ))
        } else {
            Fail::bad(format!("Invalid input for {key}. Reason: {reason}."))
        }
    })
}

/// A required attribute that was absent.
pub(super) fn required<T>(v: Option<T>, key: &str) -> Result<T, Fail> {
    v.ok_or_else(|| {
        Fail::bad(format!(
            "Failed to parse request. Required attribute '{key}' not specified"
        ))
    })
}

fn not_valid<E: serde::de::Error>(v: &Value, what: &str) -> E {
    E::custom(format!("'{v}' is not a valid {what}"))
}

/// The reason a value is not a string (the same check as [`string`], for attributes
/// checked only in some cases).
pub(super) fn check_string(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        v => Err(format!("'{v}' is not a valid string")),
    }
}

/// The reason a value is not a boolean (`true`, `false`, or those words in any case).
pub(super) fn check_boolean(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        v => Err(format!("'{v}' is not a valid boolean")),
    }
}

/// A list of nested request objects, each decoded by its own [`decode`].
pub(super) type Objects = Vec<Map<String, Value>>;

// ----- attribute kinds (for `deserialize_with`) ------------------------------------

/// A string; `null` is refused.
pub(super) fn string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    check_string(&Value::deserialize(d)?)
        .map(Some)
        .map_err(D::Error::custom)
}

/// A string; `null` = absent.
pub(super) fn nullable_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        v => check_string(&v).map(Some).map_err(D::Error::custom),
    }
}

/// A boolean, or the strings `true` / `false` in any case.
pub(super) fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    check_boolean(&Value::deserialize(d)?)
        .map(Some)
        .map_err(D::Error::custom)
}

/// A number or string (protocol, port bounds, queue); `null` = absent.
pub(super) fn scalar<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Scalar>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(Scalar::Str(s))),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Ok(Some(Scalar::Int(i))),
            None => Err(not_valid(&Value::Number(n), "integer")),
        },
        v => Err(not_valid(&v, "integer or string")),
    }
}

/// A list of strings.
pub(super) fn string_list<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<String>>, D::Error> {
    match Value::deserialize(d)? {
        Value::Array(a) => a
            .into_iter()
            .map(|e| match e {
                Value::String(s) => Ok(s),
                v => Err(not_valid(&v, "list of strings")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        v => Err(not_valid(&v, "list")),
    }
}

/// A list of objects, each decoded later by its own [`decode`].
pub(super) fn objects<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Objects>, D::Error> {
    match Value::deserialize(d)? {
        Value::Array(a) => a
            .into_iter()
            .map(|e| match e {
                Value::Object(o) => Ok(o),
                v => Err(not_valid(&v, "list of objects")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        v => Err(not_valid(&v, "list")),
    }
}

/// An object, decoded later by its own [`decode`]; `null` and `{}` = absent.
pub(super) fn object<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Map<String, Value>>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Object(m) if m.is_empty() => Ok(None),
        Value::Object(m) => Ok(Some(m)),
        v => Err(not_valid(&v, "object")),
    }
}

/// Any value, kept as it is (`null` included), for attributes checked only in some
/// cases.
pub(super) fn raw<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// A list of objects or `null` (`Some(None)`: the `PUT` form that clears the list).
pub(super) fn nullable_objects<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<Objects>>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(Some(None)),
        v => objects(v).map(Some).map_err(D::Error::custom),
    }
}

/// A list of strings or `null` (`Some(None)`: the `PUT` form that clears the list).
pub(super) fn nullable_string_list<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<Vec<String>>>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(Some(None)),
        v => string_list(v).map(Some).map_err(D::Error::custom),
    }
}
