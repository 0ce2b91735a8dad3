//! [`StoreError`]: why a store operation failed, and the Neutron answer (HTTP status and
//! exception name) for it, including the translation of policy validation errors.
//!
//! Owns: the mapping from [`crate::policy::ValidationErrors`] to Neutron exception names
//! and messages. May not touch: the state (it only reads it to name an existing rule).
//!
//! Depends on: `policy`'s error types and its siblings `state`, `persist` and `lock`.

use std::path::PathBuf;

use super::lock::locked_message;
use super::persist::{PersistError, STATE_FILE};
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
    /// The state file could not be written (503 `StorageFull` on a full disk or
    /// quota, `StorageError` otherwise); `outcome` says what that left (normally:
    /// nothing changed, the dataplane included).
    #[error("the state could not be saved: {error}; {outcome}")]
    Persist {
        error: PersistError,
        outcome: PersistOutcome,
    },
    /// Another process holds the state directory's lock; the store refuses to open.
    #[error("{}", locked_message(.dir, *.pid))]
    Locked { dir: PathBuf, pid: Option<u32> },
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
    /// The shared store cannot be reached (503; nothing was written).
    #[error("the shared store ({store}) is unreachable: {message}")]
    Unavailable { store: String, message: String },
    /// The change is larger than the shared store takes (413; nothing was written).
    #[error("{message}")]
    TooLarge { message: String },
    /// The shared store's schema key holds another layout version: refuse to start.
    #[error("{key} holds schema version {found} (written by {written_by}); this sgswitch uses version {expected}: run a matching version, or use another --store-prefix")]
    Schema {
        key: String,
        found: u32,
        written_by: String,
        expected: u32,
    },
    /// Another failure of the shared store (500).
    #[error("{message}")]
    Shared { message: String },
    /// `?wait=applied` timed out (504): these live hosts had not applied `revision`.
    #[error("not every host applied revision {revision} within {} s; lagging: {}", .waited.as_secs_f64(), .hosts.join(", "))]
    Lagging {
        revision: i64,
        hosts: Vec<String>,
        waited: std::time::Duration,
    },
    /// `If-Match: revision_number=N` did not hold (412; nothing was written).
    #[error("{message}")]
    PreconditionFailed { message: String },
}

/// What a failed write of the state file left behind ([`StoreError::Persist`]).
#[derive(Debug)]
pub enum PersistOutcome {
    /// Nothing changed: the state file, the committed state and the dataplane's policy
    /// are the previous ones.
    Unchanged,
    /// The dataplane took the new policy and could not be given the previous one back
    /// (the hook's error): the new policy runs and is the committed state, but the file
    /// holds the previous one.
    RunningNotSaved(String),
    /// The new state was renamed into place but the directory could not be synced, and
    /// the previous file could not be put back: the change is in effect and in the
    /// file, but may not survive a power failure.
    SavedNotSynced,
}

impl std::fmt::Display for PersistOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PersistOutcome::Unchanged => f.write_str("nothing was changed"),
            PersistOutcome::RunningNotSaved(back) => write!(
                f,
                "re-applying the previous policy failed ({back}): the new policy is running but not saved"
            ),
            PersistOutcome::SavedNotSynced => f.write_str(
                "the change is in effect and written, but may not survive a power failure",
            ),
        }
    }
}

impl StoreError {
    /// A failed write that changed nothing.
    pub(super) fn unsaved(error: PersistError) -> StoreError {
        StoreError::Persist {
            error,
            outcome: PersistOutcome::Unchanged,
        }
    }

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
            // The disk refused the write: the request may succeed once it is fixed.
            StoreError::Persist { .. } => 503,
            StoreError::Unavailable { .. } => 503,
            StoreError::TooLarge { .. } => 413,
            StoreError::Lagging { .. } => 504,
            StoreError::PreconditionFailed { .. } => 412,
            _ => 500,
        }
    }

    /// The Neutron exception name.
    pub fn neutron_type(&self) -> &str {
        match self {
            StoreError::Rejected { neutron_type, .. } => neutron_type,
            StoreError::Apply(_) => "PolicyApplyFailed",
            StoreError::Persist { error, .. } if error.storage_full() => "StorageFull",
            StoreError::Persist { .. } => "StorageError",
            StoreError::Unavailable { .. } => "ServiceUnavailable",
            StoreError::TooLarge { .. } => "RequestEntityTooLarge",
            StoreError::Lagging { .. } => "GatewayTimeout",
            StoreError::PreconditionFailed { .. } => "PreconditionFailed",
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
