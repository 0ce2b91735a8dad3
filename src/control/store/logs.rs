//! The packet-log mutations (Neutron's logging extension, `/v2.0/log/logs`) and their
//! request types. Each runs inside `Store::mutate` like the other operations
//! ([`super::ops`]): a log change is validated, applied (the pipeline compiles the
//! model's logs into per-port flags), persisted and only then committed.
//!
//! # Neutron's answers (neutron `services/logapi`)
//! * `resource_type` other than `security_group`: 400 `InvalidLogResourceType`;
//! * `event` other than `ACCEPT`, `DROP`, `ALL`: 400 `InvalidInput`;
//! * `resource_id` not a security group: 404 `ResourceNotFound`; `target_id` not a port:
//!   404 `TargetResourceNotFound`; both given and the port does not use the group: 400
//!   `InvalidResourceConstraint`;
//! * an unknown log id: 404 `LogResourceNotFound`;
//! * `PUT` changes `name`, `description` and `enabled` only (the API refuses the other
//!   attributes before they get here).
//!
//! Deleting a group or a port deletes the logs naming it ([`super::ops`]).
//!
//! Owns: what each log operation changes and answers. May not touch: the committed
//! state, the apply hook or the state file (`Store::mutate`'s).
//!
//! Depends on: `policy` (the log spec, its validator, event names) and its siblings
//! `state`, `ops` (index helpers, whole-model revalidation), `to_spec`, `error`.

use super::error::StoreError;
use super::ops::{group_index, port_index, revalidate};
use super::state::{ObjMeta, State};
use super::{over_quota, Store};
use crate::policy::spec::LogSpec;
use crate::policy::validate::{self, parse_log_event};
use crate::policy::{ErrorClass, ErrorKind};

/// Logs (Neutron answers 409 `OverQuota` above it).
pub const MAX_LOGS: usize = 10_000;

/// The one loggable resource type (`GET /v2.0/log/loggable-resources`).
pub const LOGGABLE_RESOURCE_TYPES: &[&str] = &["security_group"];

/// A new packet log: group and port by **id** (translated to names here).
#[derive(Clone, Debug, Default)]
pub struct LogCreate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub target_id: Option<String>,
    /// `None`: `ALL`.
    pub event: Option<String>,
    /// `None`: `true`.
    pub enabled: Option<bool>,
}

/// Changes to a packet log (`None` = unchanged).
#[derive(Clone, Debug, Default)]
pub struct LogUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

fn log_index(state: &State, id: &str) -> Result<usize, StoreError> {
    state.log_by_id(id).ok_or_else(|| {
        StoreError::not_found(
            "LogResourceNotFound",
            format!("Log resource {id} could not be found."),
        )
    })
}

impl Store {
    /// Create a packet log; returns its id.
    pub fn create_log(&self, req: &LogCreate) -> Result<String, StoreError> {
        self.mutate(|state, now| {
            if state.model.logs.len() >= MAX_LOGS {
                return Err(over_quota("log", MAX_LOGS));
            }
            if let Some(e) = req.event.as_deref().filter(|e| parse_log_event(e).is_none()) {
                let reason = ErrorKind::InvalidLogEvent(e.to_string());
                return Err(StoreError::bad_request(format!(
                    "Invalid input for event. Reason: {reason}."
                )));
            }
            if !LOGGABLE_RESOURCE_TYPES.contains(&req.resource_type.as_str()) {
                return Err(StoreError::rejected(
                    ErrorClass::BadRequest,
                    "InvalidLogResourceType",
                    format!("Invalid log resource_type: {}.", req.resource_type),
                ));
            }
            let resource = match &req.resource_id {
                Some(id) => Some(group_index(state, id).map_err(|_| {
                    StoreError::not_found(
                        "ResourceNotFound",
                        format!("Resource {id} could not be found."),
                    )
                })?),
                None => None,
            };
            let target = match &req.target_id {
                Some(id) => Some(port_index(state, id).map_err(|_| {
                    StoreError::not_found(
                        "TargetResourceNotFound",
                        format!("Target resource {id} could not be found."),
                    )
                })?),
                None => None,
            };
            if let (Some(gi), Some(pi)) = (resource, target) {
                let group = &state.model.security_groups[gi].name;
                if !state.model.ports[pi].security_groups.contains(group) {
                    return Err(StoreError::rejected(
                        ErrorClass::BadRequest,
                        "InvalidResourceConstraint",
                        format!(
                            "Invalid resource constraint between resource (security_group {}) and target resource (port {}).",
                            state.meta.groups[gi].obj.id, state.meta.ports[pi].id
                        ),
                    ));
                }
            }
            let spec = LogSpec {
                name: req.name.clone(),
                description: req.description.clone(),
                resource: resource.map(|gi| state.model.security_groups[gi].name.clone()),
                target: target.map(|pi| state.model.ports[pi].name.clone()),
                event: req.event.clone(),
                enabled: req.enabled,
            };
            let log = validate::validate_log(&state.model, &spec)
                .map_err(|e| StoreError::from_validation(e, state))?;
            let meta = ObjMeta::new(now);
            let id = meta.id.to_string();
            state.model.logs.push(log);
            state.meta.logs.push(meta);
            Ok(id)
        })
    }

    /// Rename, re-describe, enable or disable a packet log.
    pub fn update_log(&self, id: &str, req: &LogUpdate) -> Result<(), StoreError> {
        self.mutate(|state, now| {
            let li = log_index(state, id)?;
            let log = &mut state.model.logs[li];
            if let Some(n) = &req.name {
                log.name = n.clone();
            }
            if let Some(d) = &req.description {
                log.description = d.clone();
            }
            if let Some(e) = req.enabled {
                log.enabled = e;
            }
            revalidate(state)?;
            state.meta.logs[li].touch(now);
            Ok(())
        })
    }

    /// Delete a packet log.
    pub fn delete_log(&self, id: &str) -> Result<(), StoreError> {
        self.mutate(|state, _now| {
            let li = log_index(state, id)?;
            state.model.logs.remove(li);
            state.meta.logs.remove(li);
            Ok(())
        })
    }
}
