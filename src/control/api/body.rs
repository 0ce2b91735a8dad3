//! Request bodies: JSON parsing, the resource wrapper key, and typed access to the
//! attributes of a request object.
//!
//! Owns: what a malformed or mistyped body is answered. May not touch: the store; a
//! resource module decides which attributes its verbs accept.

use serde_json::{Map, Value};

use super::error::{Fail, Reply};
use crate::policy::spec::Scalar;

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

pub(super) const IGNORED_ATTRS: &[&str] = &["tenant_id", "project_id"];

/// Typed access to a request object; every key must be in `allowed`.
pub(super) struct Body {
    pub(super) m: Map<String, Value>,
}

impl Body {
    pub(super) fn new(m: Map<String, Value>, allowed: &[&str], verb: &str) -> Result<Body, Fail> {
        for k in m.keys() {
            if !allowed.contains(&k.as_str()) && !IGNORED_ATTRS.contains(&k.as_str()) {
                return Err(Fail::bad(format!(
                    "Unrecognized attribute(s) '{k}' (not allowed in {verb})."
                )));
            }
        }
        for k in IGNORED_ATTRS {
            if let Some(v) = m.get(*k) {
                if !v.is_string() {
                    return Err(Fail::bad(format!(
                        "Invalid input for {k}. Reason: '{v}' is not a valid string."
                    )));
                }
            }
        }
        Ok(Body { m })
    }

    pub(super) fn type_err(key: &str, v: &Value, what: &str) -> Fail {
        Fail::bad(format!(
            "Invalid input for {key}. Reason: '{v}' is not a valid {what}."
        ))
    }

    /// A string (`null` = absent when `nullable`).
    pub(super) fn string(&self, key: &str, nullable: bool) -> Result<Option<String>, Fail> {
        match self.m.get(key) {
            None => Ok(None),
            Some(Value::Null) if nullable => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(Self::type_err(key, v, "string")),
        }
    }

    pub(super) fn boolean(&self, key: &str) -> Result<Option<bool>, Fail> {
        match self.m.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(Self::type_err(key, v, "boolean")),
        }
    }

    /// A number or string (protocol, port bounds); `null` = absent.
    pub(super) fn scalar(&self, key: &str) -> Result<Option<Scalar>, Fail> {
        match self.m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(Scalar::Str(s.clone()))),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) => Ok(Some(Scalar::Int(i))),
                None => Err(Self::type_err(key, &Value::Number(n.clone()), "integer")),
            },
            Some(v) => Err(Self::type_err(key, v, "integer or string")),
        }
    }

    pub(super) fn string_list(&self, key: &str) -> Result<Option<Vec<String>>, Fail> {
        match self.m.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(|e| match e {
                    Value::String(s) => Ok(s.clone()),
                    v => Err(Self::type_err(key, v, "list of strings")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(Self::type_err(key, v, "list")),
        }
    }

    pub(super) fn objects(&self, key: &str) -> Result<Option<Vec<Map<String, Value>>>, Fail> {
        match self.m.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(|e| match e {
                    Value::Object(o) => Ok(o.clone()),
                    v => Err(Self::type_err(key, v, "list of objects")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(Self::type_err(key, v, "list")),
        }
    }

    pub(super) fn required(&self, key: &str) -> Result<String, Fail> {
        self.string(key, false)?.ok_or_else(|| {
            Fail::bad(format!(
                "Failed to parse request. Required attribute '{key}' not specified"
            ))
        })
    }
}

pub(super) fn created(key: &str, v: Value) -> Reply {
    let mut m = Map::new();
    m.insert(key.to_string(), v);
    Ok((201, Some(Value::Object(m))))
}

pub(super) fn ok_one(key: &str, v: Value) -> Reply {
    let mut m = Map::new();
    m.insert(key.to_string(), v);
    Ok((200, Some(Value::Object(m))))
}
