//! [`StoreError`]: why a store operation failed, and the Neutron answer (HTTP status and
//! exception name) for it, including the translation of policy validation errors.
//!
//! Owns: the mapping from [`crate::policy::ValidationErrors`] to Neutron exception names
//! and messages. May not touch: the state (it only reads it to name an existing rule).
//!
//! Depends on: `policy`'s error types and its siblings `state` and `persist`.

use std::path::PathBuf;

use super::persist::STATE_FILE;
use super::state::State;
use crate::policy::{ErrorClass, ErrorKind, ValidationErrors};

/// Why a store operation failed. [`StoreError::http_status`] and
/// [`StoreError::neutron_type`] give the Neutron answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The change breaks a Neutron rule (400 / 404 / 409).
    #[error("{message}")]
    Rejected {
        class: ErrorClass,
        /// Neutron exception name (`SecurityGroupRuleExists`, `InvalidInput`, ...).
        neutron_type: String,
        message: String,
    },
    /// The apply hook refused the candidate model (nothing changed).
    #[error("the new policy could not be applied: {0}")]
    Apply(#[source] super::ApplyError),
    /// The state file could not be written (nothing changed).
    #[error("the state could not be saved: {0}")]
    Persist(String),
    /// The state file exists but is unusable; the store refuses to start.
    #[error("state file {} is corrupt: {reason}; the last good state is kept in {} (inspect it and rename it to {STATE_FILE} to recover, or remove both files to re-seed from the config)", .file.display(), .backup.display())]
    Corrupt {
        file: PathBuf,
        backup: PathBuf,
        reason: String,
    },
    /// An I/O error while opening the state directory.
    #[error("{}: {message}", .file.display())]
    Io { file: PathBuf, message: String },
}

impl StoreError {
    /// A 400/404/409 with a Neutron type.
    pub fn rejected(class: ErrorClass, neutron_type: &str, message: impl Into<String>) -> Self {
        StoreError::Rejected {
            class,
            neutron_type: neutron_type.to_string(),
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::rejected(ErrorClass::BadRequest, "InvalidInput", message)
    }
    pub fn not_found(neutron_type: &str, message: impl Into<String>) -> Self {
        Self::rejected(ErrorClass::NotFound, neutron_type, message)
    }
    pub fn conflict(neutron_type: &str, message: impl Into<String>) -> Self {
        Self::rejected(ErrorClass::Conflict, neutron_type, message)
    }

    /// The HTTP status Neutron would answer with.
    pub fn http_status(&self) -> u16 {
        match self {
            StoreError::Rejected { class, .. } => class.http_status(),
            // The dataplane refused the policy: a conflict with the running state.
            StoreError::Apply(_) => 409,
            _ => 500,
        }
    }

    /// The Neutron exception name.
    pub fn neutron_type(&self) -> &str {
        match self {
            StoreError::Rejected { neutron_type, .. } => neutron_type,
            StoreError::Apply(_) => "PolicyApplyFailed",
            _ => "InternalError",
        }
    }

    /// Convert validation errors, naming the Neutron exception from the first one.
    pub(super) fn from_validation(errors: ValidationErrors, state: &State) -> StoreError {
        let Some(first) = errors.errors().first() else {
            return StoreError::bad_request("invalid request");
        };
        let class = first.class();
        let reason = first.reason();
        let field = first.path.field().map(str::to_string);
        let (ty, message) = match &first.kind {
            ErrorKind::DuplicateRule { first: idx } => {
                let id = first
                    .group
                    .as_deref()
                    .and_then(|g| state.group_by_name(g))
                    .and_then(|gi| state.meta.groups[gi].rules.get(*idx))
                    .map(|r| r.id.to_string())
                    .unwrap_or_default();
                (
                    "SecurityGroupRuleExists",
                    format!("Security group rule already exists. Rule id is {id}."),
                )
            }
            ErrorKind::UnknownSecurityGroup(_) => ("SecurityGroupNotFound", reason),
            ErrorKind::UnknownAddressGroup(_) => ("AddressGroupNotFound", reason),
            ErrorKind::ReservedDefaultName(_) => ("SecurityGroupDefaultAlreadyExists", reason),
            ErrorKind::DuplicateGroupName { .. } => ("SecurityGroupNameInUse", reason),
            ErrorKind::MixedStatefulness { .. } => ("PortSecurityGroupsStatefulnessMixed", reason),
            ErrorKind::GroupsWithoutPortSecurity => {
                ("PortSecurityAndIPRequiredForSecurityGroups", reason)
            }
            ErrorKind::AddressPairsWithoutPortSecurity => {
                ("AddressPairAndPortSecurityRequired", reason)
            }
            ErrorKind::DuplicateMac { .. } => ("MacAddressInUse", reason),
            ErrorKind::IpInUse { .. } => ("IpAddressInUse", reason),
            ErrorKind::UnknownPort(_) => ("PortNotFound", reason),
            ErrorKind::LogTargetNotInGroup { .. } => ("InvalidResourceConstraint", reason),
            _ => match class {
                ErrorClass::Conflict => ("Conflict", reason),
                ErrorClass::NotFound => ("NotFound", reason),
                ErrorClass::BadRequest => (
                    "InvalidInput",
                    match field {
                        Some(f) => format!("Invalid input for {f}. Reason: {reason}."),
                        None => format!("Invalid input. Reason: {reason}."),
                    },
                ),
            },
        };
        StoreError::rejected(class, ty, message)
    }
}
