//! The error answer: `Fail` (status, Neutron type, message) and Neutron's error body
//! `{"NeutronError":{"type":…,"message":…,"detail":""}}`.
//!
//! Owns: the error body's shape and the mapping of a [`StoreError`] to it. May not
//! touch: the store or request parsing.
//!
//! Depends on: `control::store::StoreError`.

use serde_json::{json, Value};

use crate::control::store::StoreError;

/// A failed request: status, Neutron type, message.
#[derive(Debug)]
pub(super) struct Fail {
    pub(super) status: u16,
    pub(super) ty: String,
    pub(super) message: String,
}

impl Fail {
    pub(super) fn bad(message: impl Into<String>) -> Fail {
        Fail {
            status: 400,
            ty: "HTTPBadRequest".into(),
            message: message.into(),
        }
    }
    pub(super) fn not_found(ty: &str, message: impl Into<String>) -> Fail {
        Fail {
            status: 404,
            ty: ty.into(),
            message: message.into(),
        }
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Fail {
        Fail {
            status: e.http_status(),
            ty: e.neutron_type().to_string(),
            message: e.to_string(),
        }
    }
}

pub(super) type Reply = Result<(u16, Option<Value>), Fail>;

pub(super) fn error_body(status: u16, ty: &str, message: &str) -> (u16, Option<Value>) {
    (
        status,
        Some(json!({"NeutronError": {"type": ty, "message": message, "detail": ""}})),
    )
}
