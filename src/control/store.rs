//! The authoritative control-plane state: the [`Model`] plus what Neutron clients see
//! and the model does not carry (UUIDs, timestamps, revision numbers), and its
//! persistence.
//!
//! # Design
//! * **One committed state, published whole.** The committed [`State`] (model + meta)
//!   lives behind an `RwLock<Arc<State>>`; readers (API `GET`s) take the `Arc` and never
//!   wait for a mutation in progress. Mutations are serialised by one `Mutex` that also
//!   owns the apply hook.
//! * **Validate → apply → persist → commit.** A mutation clones the committed state into
//!   a candidate, changes it with the policy validators (`validate_rule`,
//!   `validate_port`, `validate_group`, or `validate_model` on the whole candidate where
//!   no targeted validator exists), hands the candidate model to the apply hook (the
//!   runtime compiles and publishes it, and returns once the dataplane uses it), writes
//!   it to the state file, and only then swaps it in. Any failure before the swap leaves
//!   the committed state (and the dataplane) as it was: a rejected change changes
//!   nothing. If the state file cannot be written after the dataplane took the new
//!   policy, the old model is re-applied and the call fails.
//! * **Ids are numbers.** [`Id`] is a `u128` shown as a hyphenated v4 UUID and
//!   [`ObjMeta`] is `Copy` (times in epoch seconds, shown as RFC 3339), so cloning the
//!   metadata of a 10,000-rule model is a `memcpy`, not 30,000 string allocations.
//! * **Meta is index-aligned with the model.** `Meta::groups[i]` describes
//!   `model.security_groups[i]` and `Meta::groups[i].rules[j]` its rule `j`; likewise
//!   address groups, ports and networks. Every mutation edits both vectors at the same
//!   index; [`State::check`] verifies the alignment (on load and in debug builds).
//!   Rejected option: ids inside `policy::Model` — the model is shared by the config
//!   file, replay and the classifier, which have no use for Neutron ids.
//! * **Names stay the model's identifiers.** The API speaks ids and translates them to
//!   names at the boundary; names are therefore unique (409 on a duplicate), which is
//!   stricter than Neutron.
//!
//! # Persistence (`--state-dir DIR`)
//! `DIR/state.json` holds a one-line header `sgswitch-state 1 LEN FNV64` followed by
//! `LEN` bytes of JSON: the model (a serde mirror of the model spec, re-validated on
//! load) and the meta. Writes go to `state.json.tmp`, are fsynced, the
//! previous file is hard-linked to `state.json.bak`, the temp file is renamed over
//! `state.json` and the directory is fsynced, so a crash leaves either the old or the
//! new file, never a mix. On open, a missing file seeds the state from the config; a
//! file whose header, length, checksum, JSON or model is wrong is refused with an
//! error naming the file and the last good copy (`state.json.bak`), never silently
//! replaced.
//!
//! Thread safety: `Store` is `Send + Sync`; share it as `Arc<Store>`.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::control::config::{Config, SwitchSettings};
use crate::policy::spec::{
    AddressGroupSpec, AllowedAddressPairSpec, BackendSpec, ModelSpec, NetworkSpec, PortSpec,
    RuleSpec, Scalar, SecurityGroupSpec,
};
use crate::policy::validate::{self, format_mac, parse_cidr, rule_key, DEFAULT_GROUP};
use crate::policy::{
    AddressGroup, Backend, ConntrackSettings, ErrorClass, ErrorKind, Model, Port, Remote,
    SecurityGroup, ValidationErrors,
};

/// The callback that makes a candidate model live: compile it and publish it to the
/// dataplane, returning only once the dataplane uses it. An `Err` rejects the change.
pub type ApplyHook = Box<dyn Fn(&Model) -> Result<(), String> + Send + Sync>;

/// Name of the state file inside the state directory.
pub const STATE_FILE: &str = "state.json";
/// Name of the last good state file (the one before the latest write).
pub const BACKUP_FILE: &str = "state.json.bak";
const TEMP_FILE: &str = "state.json.tmp";
const HEADER_MAGIC: &str = "sgswitch-state";
const FORMAT_VERSION: u32 = 1;

/// Quotas (Neutron answers 409 `OverQuota`): they bound the memory and compile time the
/// API can make the switch spend. Config files are not limited by them.
pub const MAX_GROUPS: usize = 10_000;
/// Rules in one security group.
pub const MAX_RULES_PER_GROUP: usize = 100_000;
/// Address groups.
pub const MAX_ADDRESS_GROUPS: usize = 10_000;
/// Addresses in one address group.
pub const MAX_ADDRESSES_PER_GROUP: usize = 100_000;
/// Ports.
pub const MAX_PORTS: usize = 65_536;

fn over_quota(what: &str, limit: usize) -> StoreError {
    StoreError::conflict(
        "OverQuota",
        format!("Quota exceeded for resources: {what} (limit {limit})."),
    )
}

/// Placeholder project id reported as `tenant_id` / `project_id` (no Keystone).
pub const PROJECT_ID: &str = "00000000000000000000000000000000";

/// A UUID, stored as a number (cheap to copy and compare) and shown hyphenated.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct Id(pub u128);

impl Id {
    /// A random (version 4) UUID.
    pub fn random() -> Id {
        let mut b: [u8; 16] = random_bytes();
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        Id(u128::from_be_bytes(b))
    }

    /// Parse the hyphenated (or plain 32-hex-digit) form; `None` if it is not a UUID.
    pub fn parse(text: &str) -> Option<Id> {
        let hyphens_ok = match text.len() {
            36 => [8, 13, 18, 23]
                .iter()
                .all(|&i| text.as_bytes().get(i) == Some(&b'-')),
            32 => true,
            _ => false,
        };
        let hex: String = text.chars().filter(|&c| c != '-').collect();
        if !hyphens_ok || hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u128::from_str_radix(&hex, 16).ok().map(Id)
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let h = format!("{:032x}", self.0);
        write!(
            f,
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

impl Serialize for Id {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Id, D::Error> {
        let text = String::deserialize(d)?;
        Id::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("invalid id {text:?}")))
    }
}

/// Neutron-visible metadata of one object (plain data: cloning the meta of a large
/// model is a `memcpy`). Times are seconds since the Unix epoch, shown as RFC 3339.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ObjMeta {
    pub id: Id,
    pub created_at: u64,
    pub updated_at: u64,
    pub revision_number: u64,
}

impl ObjMeta {
    fn new(now: u64) -> ObjMeta {
        ObjMeta {
            id: Id::random(),
            created_at: now,
            updated_at: now,
            revision_number: 0,
        }
    }
    fn touch(&mut self, now: u64) {
        self.updated_at = now;
        self.revision_number += 1;
    }
}

/// Metadata of a security group and of its rules (index-aligned with the rules).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct GroupMeta {
    #[serde(flatten)]
    pub obj: ObjMeta,
    pub rules: Vec<ObjMeta>,
}

/// Metadata of a network: its id and the ids of its (implicit) IPv4 / IPv6 subnets.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct NetworkMeta {
    #[serde(flatten)]
    pub obj: ObjMeta,
    pub subnet_v4: Id,
    pub subnet_v6: Id,
}

/// Everything Neutron shows that the model does not hold, index-aligned with it.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Meta {
    pub groups: Vec<GroupMeta>,
    pub address_groups: Vec<ObjMeta>,
    pub ports: Vec<ObjMeta>,
    pub networks: Vec<NetworkMeta>,
}

/// A committed state: the model and its metadata.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct State {
    pub model: Model,
    pub meta: Meta,
}

impl State {
    /// Check that the meta is aligned with the model and ids are unique.
    pub fn check(&self) -> Result<(), String> {
        let m = &self.model;
        let t = &self.meta;
        if m.security_groups.len() != t.groups.len()
            || m.address_groups.len() != t.address_groups.len()
            || m.ports.len() != t.ports.len()
            || m.networks.len() != t.networks.len()
        {
            return Err("metadata does not match the model (object counts differ)".into());
        }
        for (g, gm) in m.security_groups.iter().zip(&t.groups) {
            if g.rules.len() != gm.rules.len() {
                return Err(format!(
                    "metadata does not match the model (rule count of group {:?})",
                    g.name
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        let ids = t
            .groups
            .iter()
            .flat_map(|g| std::iter::once(&g.obj).chain(g.rules.iter()))
            .chain(t.address_groups.iter())
            .chain(t.ports.iter())
            .chain(t.networks.iter().map(|n| &n.obj));
        for o in ids {
            if !seen.insert(o.id) {
                return Err(format!("id {} is used twice", o.id));
            }
        }
        Ok(())
    }

    /// Index of the security group with this id.
    pub fn group_by_id(&self, id: &str) -> Option<usize> {
        let id = Id::parse(id)?;
        self.meta.groups.iter().position(|g| g.obj.id == id)
    }
    /// Index of the security group with this name.
    pub fn group_by_name(&self, name: &str) -> Option<usize> {
        self.model
            .security_groups
            .iter()
            .position(|g| g.name == name)
    }
    /// (group index, rule index) of the rule with this id.
    pub fn rule_by_id(&self, id: &str) -> Option<(usize, usize)> {
        let id = Id::parse(id)?;
        self.meta
            .groups
            .iter()
            .enumerate()
            .find_map(|(gi, g)| g.rules.iter().position(|r| r.id == id).map(|ri| (gi, ri)))
    }
    pub fn address_group_by_id(&self, id: &str) -> Option<usize> {
        let id = Id::parse(id)?;
        self.meta.address_groups.iter().position(|g| g.id == id)
    }
    pub fn address_group_by_name(&self, name: &str) -> Option<usize> {
        self.model
            .address_groups
            .iter()
            .position(|g| g.name == name)
    }
    pub fn port_by_id(&self, id: &str) -> Option<usize> {
        let id = Id::parse(id)?;
        self.meta.ports.iter().position(|p| p.id == id)
    }
    pub fn network_by_id(&self, id: &str) -> Option<usize> {
        let id = Id::parse(id)?;
        self.meta.networks.iter().position(|n| n.obj.id == id)
    }
    pub fn network_by_name(&self, name: &str) -> Option<usize> {
        self.model.networks.iter().position(|n| n.name == name)
    }
    /// Id of the security group named `name`.
    pub fn group_id(&self, name: &str) -> Option<Id> {
        self.group_by_name(name).map(|i| self.meta.groups[i].obj.id)
    }
    /// Id of the address group named `name`.
    pub fn address_group_id(&self, name: &str) -> Option<Id> {
        self.address_group_by_name(name)
            .map(|i| self.meta.address_groups[i].id)
    }
    /// Id of the network named `name`.
    pub fn network_id(&self, name: &str) -> Option<Id> {
        self.network_by_name(name)
            .map(|i| self.meta.networks[i].obj.id)
    }
}

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
    Apply(String),
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
    fn from_validation(errors: ValidationErrors, state: &State) -> StoreError {
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

/// A new security group.
#[derive(Clone, Debug, Default)]
pub struct GroupCreate {
    pub name: String,
    pub description: Option<String>,
    pub stateful: Option<bool>,
}

/// Changes to a security group (`None` = unchanged).
#[derive(Clone, Debug, Default)]
pub struct GroupUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub stateful: Option<bool>,
}

/// A new rule: the target group's id and the rule as written, with remote group /
/// address group given by **id** (translated to names here).
#[derive(Clone, Debug, Default)]
pub struct RuleCreate {
    pub security_group_id: String,
    pub spec: RuleSpec,
    pub remote_group_id: Option<String>,
    pub remote_address_group_id: Option<String>,
}

/// A new port. Groups are ids; `None` = `[default]` (none without port security).
#[derive(Clone, Debug, Default)]
pub struct PortCreate {
    pub name: String,
    pub network_id: String,
    /// `None`: a random `fa:16:3e` address.
    pub mac: Option<String>,
    pub fixed_ips: Vec<String>,
    pub security_group_ids: Option<Vec<String>>,
    pub port_security: Option<bool>,
    pub allowed_address_pairs: Vec<AllowedAddressPairSpec>,
    pub backend: Option<BackendSpec>,
}

/// Changes to a port (`None` = unchanged).
#[derive(Clone, Debug, Default)]
pub struct PortUpdate {
    pub name: Option<String>,
    /// Group ids; replaces the whole list.
    pub security_group_ids: Option<Vec<String>>,
    pub port_security: Option<bool>,
    pub allowed_address_pairs: Option<Vec<AllowedAddressPairSpec>>,
}

/// Changes to an address group.
#[derive(Clone, Debug, Default)]
pub struct AddressGroupUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
}

struct Mutator {
    apply: Option<ApplyHook>,
}

/// The authoritative state; see the module doc.
pub struct Store {
    current: RwLock<Arc<State>>,
    mutator: Mutex<Mutator>,
    state_dir: Option<PathBuf>,
    switch: SwitchSettings,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("state_dir", &self.state_dir)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Open the store. With a state directory holding a state file, the state is loaded
    /// from it (and the config's model ignored: the API's changes win); without one, the
    /// state is seeded from `seed` and, with a directory, written. A corrupt state file
    /// is an error ([`StoreError::Corrupt`]). No apply hook is set: the caller builds
    /// its runtime from [`Store::model`], then calls [`Store::set_apply_hook`].
    pub fn open(state_dir: Option<&Path>, seed: &Config) -> Result<Store, StoreError> {
        let state = match state_dir {
            None => seed_state(&seed.model),
            Some(dir) => {
                fs::create_dir_all(dir).map_err(|e| StoreError::Io {
                    file: dir.to_path_buf(),
                    message: format!("cannot create the state directory: {e}"),
                })?;
                match load_state(dir)? {
                    Some(state) => state,
                    None => {
                        let state = seed_state(&seed.model);
                        write_state(dir, &state).map_err(|message| StoreError::Io {
                            file: dir.join(STATE_FILE),
                            message,
                        })?;
                        state
                    }
                }
            }
        };
        Ok(Store {
            current: RwLock::new(Arc::new(state)),
            mutator: Mutex::new(Mutator { apply: None }),
            state_dir: state_dir.map(Path::to_path_buf),
            switch: seed.switch,
        })
    }

    /// The state `open` would start from, as a config, without writing anything (for
    /// `sgswitch export`): the saved state if `state_dir` holds one, else `seed`.
    pub fn export_from(state_dir: Option<&Path>, seed: &Config) -> Result<Config, StoreError> {
        let saved = match state_dir {
            Some(dir) => load_state(dir)?,
            None => None,
        };
        Ok(match saved {
            Some(state) => Config {
                model: state.model,
                switch: seed.switch,
            },
            None => seed.clone(),
        })
    }

    /// Set (or replace) the apply hook every later mutation goes through.
    pub fn set_apply_hook(&self, hook: ApplyHook) {
        self.lock_mutator().apply = Some(hook);
    }

    /// The committed state (cheap: an `Arc`).
    pub fn snapshot(&self) -> Arc<State> {
        match self.current.read() {
            Ok(g) => Arc::clone(&g),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    /// A copy of the committed model.
    pub fn model(&self) -> Model {
        self.snapshot().model.clone()
    }

    /// The committed state as a config (for `sgswitch export`).
    pub fn export(&self) -> Config {
        Config {
            model: self.model(),
            switch: self.switch,
        }
    }

    /// The state directory, if any.
    pub fn state_dir(&self) -> Option<&Path> {
        self.state_dir.as_deref()
    }

    fn lock_mutator(&self) -> std::sync::MutexGuard<'_, Mutator> {
        match self.mutator.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Run one mutation: clone, change, apply, persist, commit (see the module doc).
    fn mutate<T>(
        &self,
        change: impl FnOnce(&mut State, u64) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mutator = self.lock_mutator();
        let old = self.snapshot();
        let mut candidate = State::clone(&old);
        let out = change(&mut candidate, now_secs())?;
        debug_assert!(candidate.check().is_ok(), "{:?}", candidate.check());
        if let Some(apply) = &mutator.apply {
            apply(&candidate.model).map_err(StoreError::Apply)?;
        }
        if let Some(dir) = &self.state_dir {
            if let Err(e) = write_state(dir, &candidate) {
                if let Some(apply) = &mutator.apply {
                    // Put the dataplane back on the committed model; if even that fails
                    // the dataplane runs the candidate and the store says so.
                    if let Err(back) = apply(&old.model) {
                        self.commit(candidate);
                        return Err(StoreError::Persist(format!(
                            "{e} (and re-applying the previous policy failed: {back}; the new policy is running but not saved)"
                        )));
                    }
                }
                return Err(StoreError::Persist(e));
            }
        }
        self.commit(candidate);
        Ok(out)
    }

    fn commit(&self, state: State) {
        let state = Arc::new(state);
        match self.current.write() {
            Ok(mut g) => *g = state,
            Err(p) => *p.into_inner() = state,
        }
    }

    /// Replace the whole model (declarative reload). Objects whose name is unchanged
    /// keep their ids (rules: same key in a same-named group); `updated_at` and
    /// `revision_number` move only for objects that changed.
    pub fn replace_model(&self, model: &Model) -> Result<(), StoreError> {
        self.mutate(|state, now| {
            let meta = rebuild_meta(state, model, now);
            state.model = model.clone();
            state.meta = meta;
            Ok(())
        })
    }

    // ----- security groups -------------------------------------------------------

    /// Create a security group with the template rules; returns its id.
    pub fn create_group(&self, req: &GroupCreate) -> Result<String, StoreError> {
        self.mutate(|state, now| {
            if state.model.security_groups.len() >= MAX_GROUPS {
                return Err(over_quota("security_group", MAX_GROUPS));
            }
            if req.name.eq_ignore_ascii_case(DEFAULT_GROUP) {
                return Err(StoreError::conflict(
                    "SecurityGroupDefaultAlreadyExists",
                    "Default security group already exists.",
                ));
            }
            let spec = SecurityGroupSpec {
                name: Some(req.name.clone()),
                description: req.description.clone(),
                stateful: req.stateful,
                rules: None,
            };
            let group = validate::validate_group(&state.model, &spec)
                .map_err(|e| StoreError::from_validation(e, state))?;
            let meta = GroupMeta {
                obj: ObjMeta::new(now),
                rules: group.rules.iter().map(|_| ObjMeta::new(now)).collect(),
            };
            let id = meta.obj.id.to_string();
            state.model.security_groups.push(group);
            state.meta.groups.push(meta);
            Ok(id)
        })
    }

    /// Update a group's name / description / stateful flag.
    pub fn update_group(&self, id: &str, req: &GroupUpdate) -> Result<(), StoreError> {
        self.mutate(|state, now| {
            let gi = group_index(state, id)?;
            let old_name = state.model.security_groups[gi].name.clone();
            if let Some(name) = &req.name {
                if *name != old_name {
                    if old_name == DEFAULT_GROUP {
                        return Err(StoreError::conflict(
                            "SecurityGroupCannotUpdateDefault",
                            "Updating default security group not allowed.",
                        ));
                    }
                    if name.eq_ignore_ascii_case(DEFAULT_GROUP) {
                        return Err(StoreError::conflict(
                            "SecurityGroupDefaultAlreadyExists",
                            "Default security group already exists.",
                        ));
                    }
                    rename_group(&mut state.model, &old_name, name);
                }
            }
            if let Some(stateful) = req.stateful {
                let g = &state.model.security_groups[gi];
                if g.stateful != stateful && state.model.ports_in_group(&g.name).next().is_some()
                {
                    return Err(StoreError::conflict(
                        "SecurityGroupInUse",
                        format!(
                            "Security Group {id} in use: cannot change stateful while it is bound to a port."
                        ),
                    ));
                }
                state.model.security_groups[gi].stateful = stateful;
            }
            if let Some(d) = &req.description {
                state.model.security_groups[gi].description = d.clone();
            }
            revalidate(state)?;
            state.meta.groups[gi].obj.touch(now);
            Ok(())
        })
    }

    /// Delete a security group (409 for `default`, or while bound to a port or
    /// referenced as another group's remote group).
    pub fn delete_group(&self, id: &str) -> Result<(), StoreError> {
        self.mutate(|state, _now| {
            let gi = group_index(state, id)?;
            let name = state.model.security_groups[gi].name.clone();
            if name == DEFAULT_GROUP {
                return Err(StoreError::conflict(
                    "SecurityGroupCannotRemoveDefault",
                    "Insufficient rights for removing default security group.",
                ));
            }
            if state.model.ports_in_group(&name).next().is_some() {
                return Err(StoreError::conflict(
                    "SecurityGroupInUse",
                    format!("Security Group {id} in use."),
                ));
            }
            // Neutron deletes rules of other groups that use this group as remote.
            for (g, gm) in state
                .model
                .security_groups
                .iter_mut()
                .zip(state.meta.groups.iter_mut())
            {
                let mut k = 0;
                while k < g.rules.len() {
                    if g.rules[k].remote == Remote::Group(name.clone()) {
                        g.rules.remove(k);
                        gm.rules.remove(k);
                    } else {
                        k += 1;
                    }
                }
            }
            state.model.security_groups.remove(gi);
            state.meta.groups.remove(gi);
            Ok(())
        })
    }

    // ----- rules -----------------------------------------------------------------

    /// Create rules, all or none (bulk create); returns their ids in order.
    pub fn create_rules(&self, reqs: &[RuleCreate]) -> Result<Vec<String>, StoreError> {
        self.mutate(|state, now| {
            let mut ids = Vec::with_capacity(reqs.len());
            let mut touched = Vec::new();
            for req in reqs {
                let gi = group_index(state, &req.security_group_id)?;
                let mut spec = req.spec.clone();
                if let Some(rid) = &req.remote_group_id {
                    let ri = state.group_by_id(rid).ok_or_else(|| {
                        StoreError::not_found(
                            "SecurityGroupNotFound",
                            format!("Security group {rid} does not exist"),
                        )
                    })?;
                    spec.remote_group = Some(state.model.security_groups[ri].name.clone());
                }
                if let Some(aid) = &req.remote_address_group_id {
                    let ai = state.address_group_by_id(aid).ok_or_else(|| {
                        StoreError::not_found(
                            "AddressGroupNotFound",
                            format!("Address group {aid} could not be found."),
                        )
                    })?;
                    spec.remote_address_group = Some(state.model.address_groups[ai].name.clone());
                }
                if state.model.security_groups[gi].rules.len() >= MAX_RULES_PER_GROUP {
                    return Err(over_quota("security_group_rule", MAX_RULES_PER_GROUP));
                }
                let name = state.model.security_groups[gi].name.clone();
                let rule = validate::validate_rule(&state.model, &name, &spec)
                    .map_err(|e| StoreError::from_validation(e, state))?;
                let meta = ObjMeta::new(now);
                ids.push(meta.id.to_string());
                state.model.security_groups[gi].rules.push(rule);
                state.meta.groups[gi].rules.push(meta);
                if !touched.contains(&gi) {
                    touched.push(gi);
                }
            }
            for gi in touched {
                state.meta.groups[gi].obj.touch(now);
            }
            Ok(ids)
        })
    }

    /// Delete a rule.
    pub fn delete_rule(&self, id: &str) -> Result<(), StoreError> {
        self.mutate(|state, now| {
            let (gi, ri) = state.rule_by_id(id).ok_or_else(|| {
                StoreError::not_found(
                    "SecurityGroupRuleNotFound",
                    format!("Security group rule {id} does not exist"),
                )
            })?;
            state.model.security_groups[gi].rules.remove(ri);
            state.meta.groups[gi].rules.remove(ri);
            state.meta.groups[gi].obj.touch(now);
            Ok(())
        })
    }

    // ----- address groups --------------------------------------------------------

    /// Create an address group; returns its id.
    pub fn create_address_group(
        &self,
        name: &str,
        description: Option<&str>,
        addresses: &[String],
    ) -> Result<String, StoreError> {
        self.mutate(|state, now| {
            if state.model.address_groups.len() >= MAX_ADDRESS_GROUPS {
                return Err(over_quota("address_group", MAX_ADDRESS_GROUPS));
            }
            if addresses.len() > MAX_ADDRESSES_PER_GROUP {
                return Err(over_quota("address", MAX_ADDRESSES_PER_GROUP));
            }
            state.model.address_groups.push(AddressGroup {
                name: name.to_string(),
                description: description.unwrap_or_default().to_string(),
                addresses: parse_addresses(addresses)?,
            });
            let meta = ObjMeta::new(now);
            let id = meta.id.to_string();
            state.meta.address_groups.push(meta);
            revalidate(state)?;
            Ok(id)
        })
    }

    /// Rename / re-describe an address group.
    pub fn update_address_group(
        &self,
        id: &str,
        req: &AddressGroupUpdate,
    ) -> Result<(), StoreError> {
        self.mutate(|state, now| {
            let ai = address_group_index(state, id)?;
            if let Some(name) = &req.name {
                let old = state.model.address_groups[ai].name.clone();
                if *name != old {
                    for g in &mut state.model.security_groups {
                        for r in &mut g.rules {
                            if r.remote == Remote::AddressGroup(old.clone()) {
                                r.remote = Remote::AddressGroup(name.clone());
                            }
                        }
                    }
                    state.model.address_groups[ai].name = name.clone();
                }
            }
            if let Some(d) = &req.description {
                state.model.address_groups[ai].description = d.clone();
            }
            revalidate(state)?;
            state.meta.address_groups[ai].touch(now);
            Ok(())
        })
    }

    /// Add (`add == true`) or remove addresses of an address group.
    pub fn change_addresses(
        &self,
        id: &str,
        addresses: &[String],
        add: bool,
    ) -> Result<(), StoreError> {
        self.mutate(|state, now| {
            let ai = address_group_index(state, id)?;
            let nets = parse_addresses(addresses)?;
            let list = &mut state.model.address_groups[ai].addresses;
            for net in nets {
                let at = list.iter().position(|a| *a == net);
                match (add, at) {
                    (true, None) => list.push(net),
                    (true, Some(_)) => {
                        return Err(StoreError::rejected(
                            ErrorClass::BadRequest,
                            "AddressesAlreadyExist",
                            format!("Addresses {net} already exist in address group {id}."),
                        ))
                    }
                    (false, Some(k)) => {
                        list.remove(k);
                    }
                    (false, None) => {
                        return Err(StoreError::rejected(
                            ErrorClass::BadRequest,
                            "AddressesNotFound",
                            format!("Addresses {net} not found in address group {id}."),
                        ))
                    }
                }
            }
            if list.len() > MAX_ADDRESSES_PER_GROUP {
                return Err(over_quota("address", MAX_ADDRESSES_PER_GROUP));
            }
            state.meta.address_groups[ai].touch(now);
            Ok(())
        })
    }

    /// Delete an address group (409 while a rule uses it).
    pub fn delete_address_group(&self, id: &str) -> Result<(), StoreError> {
        self.mutate(|state, _now| {
            let ai = address_group_index(state, id)?;
            let name = state.model.address_groups[ai].name.clone();
            let used = state
                .model
                .security_groups
                .iter()
                .flat_map(|g| g.rules.iter())
                .any(|r| r.remote == Remote::AddressGroup(name.clone()));
            if used {
                return Err(StoreError::conflict(
                    "AddressGroupInUse",
                    format!("Address group {id} is in use by a security group rule."),
                ));
            }
            state.model.address_groups.remove(ai);
            state.meta.address_groups.remove(ai);
            Ok(())
        })
    }

    // ----- ports -----------------------------------------------------------------

    /// Create a port (hot-plug); returns its id.
    pub fn create_port(&self, req: &PortCreate) -> Result<String, StoreError> {
        self.mutate(|state, now| {
            if state.model.ports.len() >= MAX_PORTS {
                return Err(over_quota("port", MAX_PORTS));
            }
            let ni = state.network_by_id(&req.network_id).ok_or_else(|| {
                StoreError::not_found(
                    "NetworkNotFound",
                    format!("Network {} could not be found.", req.network_id),
                )
            })?;
            let groups = match &req.security_group_ids {
                Some(ids) => Some(group_names(state, ids)?),
                None => None,
            };
            let spec = PortSpec {
                name: Some(req.name.clone()),
                network: Some(state.model.networks[ni].name.clone()),
                mac: Some(req.mac.clone().unwrap_or_else(random_mac)),
                fixed_ips: req.fixed_ips.clone(),
                security_groups: groups,
                port_security: req.port_security,
                allowed_address_pairs: req.allowed_address_pairs.clone(),
                backend: req.backend.clone(),
            };
            let port = validate::validate_port(&state.model, &spec)
                .map_err(|e| StoreError::from_validation(e, state))?;
            state.model.ports.push(port);
            let meta = ObjMeta::new(now);
            let id = meta.id.to_string();
            state.meta.ports.push(meta);
            Ok(id)
        })
    }

    /// Update a port.
    pub fn update_port(&self, id: &str, req: &PortUpdate) -> Result<(), StoreError> {
        self.mutate(|state, now| {
            let pi = port_index(state, id)?;
            let mut spec = port_to_spec(&state.model.ports[pi]);
            if let Some(n) = &req.name {
                spec.name = Some(n.clone());
            }
            if let Some(ids) = &req.security_group_ids {
                spec.security_groups = Some(group_names(state, ids)?);
            }
            if let Some(ps) = req.port_security {
                spec.port_security = Some(ps);
            }
            if let Some(aap) = &req.allowed_address_pairs {
                spec.allowed_address_pairs = aap.clone();
            }
            // Validate against the candidate without this port, then put it back in
            // place (the candidate is a private copy: on error it is dropped whole).
            let old = state.model.ports.remove(pi);
            let port = validate::validate_port(&state.model, &spec);
            state.model.ports.insert(pi, old);
            let port = port.map_err(|e| StoreError::from_validation(e, state))?;
            state.model.ports[pi] = port;
            state.meta.ports[pi].touch(now);
            Ok(())
        })
    }

    /// Delete a port (hot-unplug).
    pub fn delete_port(&self, id: &str) -> Result<(), StoreError> {
        self.mutate(|state, _now| {
            let pi = port_index(state, id)?;
            state.model.ports.remove(pi);
            state.meta.ports.remove(pi);
            Ok(())
        })
    }
}

// ----- helpers ---------------------------------------------------------------------

fn group_index(state: &State, id: &str) -> Result<usize, StoreError> {
    state.group_by_id(id).ok_or_else(|| {
        StoreError::not_found(
            "SecurityGroupNotFound",
            format!("Security group {id} does not exist"),
        )
    })
}

fn address_group_index(state: &State, id: &str) -> Result<usize, StoreError> {
    state.address_group_by_id(id).ok_or_else(|| {
        StoreError::not_found(
            "AddressGroupNotFound",
            format!("Address group {id} could not be found."),
        )
    })
}

fn port_index(state: &State, id: &str) -> Result<usize, StoreError> {
    state.port_by_id(id).ok_or_else(|| {
        StoreError::not_found("PortNotFound", format!("Port {id} could not be found."))
    })
}

fn group_names(state: &State, ids: &[String]) -> Result<Vec<String>, StoreError> {
    ids.iter()
        .map(|id| group_index(state, id).map(|gi| state.model.security_groups[gi].name.clone()))
        .collect()
}

fn parse_addresses(addresses: &[String]) -> Result<Vec<IpNet>, StoreError> {
    let mut out: Vec<IpNet> = Vec::with_capacity(addresses.len());
    for a in addresses {
        let net = parse_cidr(a)
            .map_err(|r| {
                StoreError::bad_request(format!(
                    "Invalid input for addresses. Reason: '{a}' is not a valid IP subnet ({r})."
                ))
            })?
            .trunc();
        if out.contains(&net) {
            return Err(StoreError::bad_request(format!(
                "Invalid input for addresses. Reason: duplicate address {net}."
            )));
        }
        out.push(net);
    }
    Ok(out)
}

/// Rename a group and every reference to it (remote groups, port bindings).
fn rename_group(model: &mut Model, old: &str, new: &str) {
    for g in &mut model.security_groups {
        if g.name == old {
            g.name = new.to_string();
        }
        for r in &mut g.rules {
            if r.remote == Remote::Group(old.to_string()) {
                r.remote = Remote::Group(new.to_string());
            }
        }
    }
    for p in &mut model.ports {
        for s in &mut p.security_groups {
            if s == old {
                *s = new.to_string();
            }
        }
    }
}

/// Validate the whole candidate model (for changes without a targeted validator).
fn revalidate(state: &State) -> Result<(), StoreError> {
    match validate::validate_model(&model_to_spec(&state.model)) {
        Ok(_) => Ok(()),
        Err(e) => Err(StoreError::from_validation(e, state)),
    }
}

/// The spec that validates back to `port`.
pub fn port_to_spec(p: &Port) -> PortSpec {
    PortSpec {
        name: Some(p.name.clone()),
        network: Some(p.network.clone()),
        mac: Some(format_mac(&p.mac)),
        fixed_ips: p.fixed_ips.iter().map(|ip| ip.to_string()).collect(),
        security_groups: Some(p.security_groups.clone()),
        port_security: Some(p.port_security),
        allowed_address_pairs: p
            .allowed_address_pairs
            .iter()
            .map(|a| AllowedAddressPairSpec {
                ip_address: Some(a.ip_address.to_string()),
                mac_address: a.mac_address.as_ref().map(format_mac),
            })
            .collect(),
        backend: p.backend.as_ref().map(|b| match b {
            Backend::Tap {
                ifname,
                netns,
                vnet_hdr,
            } => BackendSpec::Tap {
                ifname: Some(ifname.clone()),
                netns: netns.clone(),
                vnet_hdr: Some(*vnet_hdr),
            },
            Backend::AfXdp {
                ifname,
                queue,
                mode,
            } => BackendSpec::AfXdp {
                ifname: Some(ifname.clone()),
                queue: Some(*queue),
                mode: mode.clone(),
            },
            Backend::AfPacket { ifname } => BackendSpec::AfPacket {
                ifname: Some(ifname.clone()),
            },
        }),
    }
}

fn group_to_spec(g: &SecurityGroup) -> SecurityGroupSpec {
    SecurityGroupSpec {
        name: Some(g.name.clone()),
        description: Some(g.description.clone()),
        stateful: Some(g.stateful),
        rules: Some(
            g.rules
                .iter()
                .map(|r| {
                    let (prefix, group, agroup) = match &r.remote {
                        Remote::Any => (None, None, None),
                        Remote::Prefix(net) => (
                            Some(
                                r.remote_ip_prefix_raw
                                    .clone()
                                    .unwrap_or_else(|| net.to_string()),
                            ),
                            None,
                            None,
                        ),
                        Remote::Group(n) => (None, Some(n.clone()), None),
                        Remote::AddressGroup(n) => (None, None, Some(n.clone())),
                    };
                    RuleSpec {
                        direction: Some(
                            match r.direction {
                                crate::policy::Direction::Ingress => "ingress",
                                crate::policy::Direction::Egress => "egress",
                            }
                            .to_string(),
                        ),
                        ethertype: Some(
                            match r.ethertype {
                                crate::policy::EtherType::IPv4 => "IPv4",
                                crate::policy::EtherType::IPv6 => "IPv6",
                            }
                            .to_string(),
                        ),
                        protocol: r.neutron_protocol().map(|p| (p as i64).into()),
                        port_range_min: r.port_range_min.map(|p| (p as i64).into()),
                        port_range_max: r.port_range_max.map(|p| (p as i64).into()),
                        remote_ip_prefix: prefix,
                        remote_group: group,
                        remote_address_group: agroup,
                        description: Some(r.description.clone()),
                    }
                })
                .collect(),
        ),
    }
}

/// The spec that validates back to `model`.
pub fn model_to_spec(model: &Model) -> ModelSpec {
    ModelSpec {
        security_groups: model.security_groups.iter().map(group_to_spec).collect(),
        address_groups: model
            .address_groups
            .iter()
            .map(|a| AddressGroupSpec {
                name: Some(a.name.clone()),
                description: Some(a.description.clone()),
                addresses: a.addresses.iter().map(|n| n.to_string()).collect(),
            })
            .collect(),
        ports: model.ports.iter().map(port_to_spec).collect(),
        networks: model
            .networks
            .iter()
            .map(|n| NetworkSpec {
                name: Some(n.name.clone()),
            })
            .collect(),
        permitted_ethertypes: model.permitted_ethertypes.clone(),
        conntrack: model.conntrack.clone(),
    }
}

fn new_network_meta(now: u64) -> NetworkMeta {
    NetworkMeta {
        obj: ObjMeta::new(now),
        subnet_v4: Id::random(),
        subnet_v6: Id::random(),
    }
}

/// Fresh metadata for a model (first launch).
fn seed_state(model: &Model) -> State {
    let now = now_secs();
    let meta = Meta {
        groups: model
            .security_groups
            .iter()
            .map(|g| GroupMeta {
                obj: ObjMeta::new(now),
                rules: g.rules.iter().map(|_| ObjMeta::new(now)).collect(),
            })
            .collect(),
        address_groups: model
            .address_groups
            .iter()
            .map(|_| ObjMeta::new(now))
            .collect(),
        ports: model.ports.iter().map(|_| ObjMeta::new(now)).collect(),
        networks: model
            .networks
            .iter()
            .map(|_| new_network_meta(now))
            .collect(),
    };
    State {
        model: model.clone(),
        meta,
    }
}

/// Metadata for `new`, keeping the ids of objects of `old` with the same name (rules:
/// same key in a same-named group).
fn rebuild_meta(old: &State, new: &Model, now: u64) -> Meta {
    let keep = |o: Option<&ObjMeta>, changed: bool| match o {
        Some(m) if changed => {
            let mut m = *m;
            m.touch(now);
            m
        }
        Some(m) => *m,
        None => ObjMeta::new(now),
    };
    let groups = new
        .security_groups
        .iter()
        .map(|g| match old.group_by_name(&g.name) {
            Some(oi) => {
                let og = &old.model.security_groups[oi];
                let om = &old.meta.groups[oi];
                let mut by_key: HashMap<_, &ObjMeta> = HashMap::new();
                for (r, m) in og.rules.iter().zip(&om.rules) {
                    by_key.entry(rule_key(r)).or_insert(m);
                }
                let rules = g
                    .rules
                    .iter()
                    .map(|r| match by_key.remove(&rule_key(r)) {
                        Some(m) => *m,
                        None => ObjMeta::new(now),
                    })
                    .collect();
                GroupMeta {
                    obj: keep(Some(&om.obj), og != g),
                    rules,
                }
            }
            None => GroupMeta {
                obj: ObjMeta::new(now),
                rules: g.rules.iter().map(|_| ObjMeta::new(now)).collect(),
            },
        })
        .collect();
    let address_groups = new
        .address_groups
        .iter()
        .map(|a| {
            let oi = old.address_group_by_name(&a.name);
            keep(
                oi.map(|i| &old.meta.address_groups[i]),
                oi.is_some_and(|i| old.model.address_groups[i] != *a),
            )
        })
        .collect();
    let ports = new
        .ports
        .iter()
        .map(|p| {
            let oi = old.model.port_index(&p.name);
            keep(
                oi.map(|i| &old.meta.ports[i]),
                oi.is_some_and(|i| old.model.ports[i] != *p),
            )
        })
        .collect();
    let networks = new
        .networks
        .iter()
        .map(|n| match old.network_by_name(&n.name) {
            Some(i) => old.meta.networks[i].clone(),
            None => new_network_meta(now),
        })
        .collect();
    Meta {
        groups,
        address_groups,
        ports,
        networks,
    }
}

// ----- persistence -----------------------------------------------------------------

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Persisted {
    model: PModel,
    meta: Meta,
}

// The model as stored: a serde mirror of `ModelSpec` (the policy types carry no serde
// derives). Loading goes through `validate_model`, so a file that decodes but breaks a
// Neutron rule is refused like a corrupt one. Rejected option: the config TOML writer —
// correct, but 45 ms for 10,000 rules and 10,000 ports, on every change.

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum PScalar {
    Int(i64),
    Str(String),
}

impl From<Scalar> for PScalar {
    fn from(s: Scalar) -> Self {
        match s {
            Scalar::Int(i) => PScalar::Int(i),
            Scalar::Str(s) => PScalar::Str(s),
        }
    }
}

impl From<PScalar> for Scalar {
    fn from(s: PScalar) -> Self {
        match s {
            PScalar::Int(i) => Scalar::Int(i),
            PScalar::Str(s) => Scalar::Str(s),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PRule {
    direction: Option<String>,
    ethertype: Option<String>,
    protocol: Option<PScalar>,
    port_range_min: Option<PScalar>,
    port_range_max: Option<PScalar>,
    remote_ip_prefix: Option<String>,
    remote_group: Option<String>,
    remote_address_group: Option<String>,
    description: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PGroup {
    name: Option<String>,
    description: Option<String>,
    stateful: Option<bool>,
    rules: Vec<PRule>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PAddressGroup {
    name: Option<String>,
    description: Option<String>,
    addresses: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, tag = "type", rename_all = "lowercase")]
enum PBackend {
    Tap {
        ifname: Option<String>,
        netns: Option<String>,
        vnet_hdr: Option<bool>,
    },
    AfXdp {
        ifname: Option<String>,
        queue: Option<u32>,
        mode: Option<String>,
    },
    AfPacket {
        ifname: Option<String>,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PPort {
    name: Option<String>,
    network: Option<String>,
    mac: Option<String>,
    fixed_ips: Vec<String>,
    security_groups: Option<Vec<String>>,
    port_security: Option<bool>,
    /// (ip_address, mac_address)
    allowed_address_pairs: Vec<(Option<String>, Option<String>)>,
    backend: Option<PBackend>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PConntrack {
    capacity: usize,
    tcp_syn_timeout: u64,
    tcp_established_timeout: u64,
    tcp_fin_timeout: u64,
    tcp_close_timeout: u64,
    udp_timeout: u64,
    udp_stream_timeout: u64,
    icmp_timeout: u64,
    other_timeout: u64,
    max_pending_fragments: usize,
    fragment_timeout: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PModel {
    security_groups: Vec<PGroup>,
    address_groups: Vec<PAddressGroup>,
    ports: Vec<PPort>,
    networks: Vec<Option<String>>,
    permitted_ethertypes: Vec<u16>,
    conntrack: PConntrack,
}

impl From<ModelSpec> for PModel {
    fn from(m: ModelSpec) -> PModel {
        let c = m.conntrack;
        PModel {
            security_groups: m
                .security_groups
                .into_iter()
                .map(|g| PGroup {
                    name: g.name,
                    description: g.description,
                    stateful: g.stateful,
                    rules: g
                        .rules
                        .unwrap_or_default()
                        .into_iter()
                        .map(|r| PRule {
                            direction: r.direction,
                            ethertype: r.ethertype,
                            protocol: r.protocol.map(PScalar::from),
                            port_range_min: r.port_range_min.map(PScalar::from),
                            port_range_max: r.port_range_max.map(PScalar::from),
                            remote_ip_prefix: r.remote_ip_prefix,
                            remote_group: r.remote_group,
                            remote_address_group: r.remote_address_group,
                            description: r.description,
                        })
                        .collect(),
                })
                .collect(),
            address_groups: m
                .address_groups
                .into_iter()
                .map(|a| PAddressGroup {
                    name: a.name,
                    description: a.description,
                    addresses: a.addresses,
                })
                .collect(),
            ports: m
                .ports
                .into_iter()
                .map(|p| PPort {
                    name: p.name,
                    network: p.network,
                    mac: p.mac,
                    fixed_ips: p.fixed_ips,
                    security_groups: p.security_groups,
                    port_security: p.port_security,
                    allowed_address_pairs: p
                        .allowed_address_pairs
                        .into_iter()
                        .map(|a| (a.ip_address, a.mac_address))
                        .collect(),
                    backend: p.backend.map(|b| match b {
                        BackendSpec::Tap {
                            ifname,
                            netns,
                            vnet_hdr,
                        } => PBackend::Tap {
                            ifname,
                            netns,
                            vnet_hdr,
                        },
                        BackendSpec::AfXdp {
                            ifname,
                            queue,
                            mode,
                        } => PBackend::AfXdp {
                            ifname,
                            queue,
                            mode,
                        },
                        BackendSpec::AfPacket { ifname } => PBackend::AfPacket { ifname },
                    }),
                })
                .collect(),
            networks: m.networks.into_iter().map(|n| n.name).collect(),
            permitted_ethertypes: m.permitted_ethertypes,
            conntrack: PConntrack {
                capacity: c.capacity,
                tcp_syn_timeout: c.tcp_syn_timeout,
                tcp_established_timeout: c.tcp_established_timeout,
                tcp_fin_timeout: c.tcp_fin_timeout,
                tcp_close_timeout: c.tcp_close_timeout,
                udp_timeout: c.udp_timeout,
                udp_stream_timeout: c.udp_stream_timeout,
                icmp_timeout: c.icmp_timeout,
                other_timeout: c.other_timeout,
                max_pending_fragments: c.max_pending_fragments,
                fragment_timeout: c.fragment_timeout,
            },
        }
    }
}

impl From<PModel> for ModelSpec {
    fn from(m: PModel) -> ModelSpec {
        let c = m.conntrack;
        ModelSpec {
            security_groups: m
                .security_groups
                .into_iter()
                .map(|g| SecurityGroupSpec {
                    name: g.name,
                    description: g.description,
                    stateful: g.stateful,
                    rules: Some(
                        g.rules
                            .into_iter()
                            .map(|r| RuleSpec {
                                direction: r.direction,
                                ethertype: r.ethertype,
                                protocol: r.protocol.map(Scalar::from),
                                port_range_min: r.port_range_min.map(Scalar::from),
                                port_range_max: r.port_range_max.map(Scalar::from),
                                remote_ip_prefix: r.remote_ip_prefix,
                                remote_group: r.remote_group,
                                remote_address_group: r.remote_address_group,
                                description: r.description,
                            })
                            .collect(),
                    ),
                })
                .collect(),
            address_groups: m
                .address_groups
                .into_iter()
                .map(|a| AddressGroupSpec {
                    name: a.name,
                    description: a.description,
                    addresses: a.addresses,
                })
                .collect(),
            ports: m
                .ports
                .into_iter()
                .map(|p| PortSpec {
                    name: p.name,
                    network: p.network,
                    mac: p.mac,
                    fixed_ips: p.fixed_ips,
                    security_groups: p.security_groups,
                    port_security: p.port_security,
                    allowed_address_pairs: p
                        .allowed_address_pairs
                        .into_iter()
                        .map(|(ip_address, mac_address)| AllowedAddressPairSpec {
                            ip_address,
                            mac_address,
                        })
                        .collect(),
                    backend: p.backend.map(|b| match b {
                        PBackend::Tap {
                            ifname,
                            netns,
                            vnet_hdr,
                        } => BackendSpec::Tap {
                            ifname,
                            netns,
                            vnet_hdr,
                        },
                        PBackend::AfXdp {
                            ifname,
                            queue,
                            mode,
                        } => BackendSpec::AfXdp {
                            ifname,
                            queue,
                            mode,
                        },
                        PBackend::AfPacket { ifname } => BackendSpec::AfPacket { ifname },
                    }),
                })
                .collect(),
            networks: m
                .networks
                .into_iter()
                .map(|name| NetworkSpec { name })
                .collect(),
            permitted_ethertypes: m.permitted_ethertypes,
            conntrack: ConntrackSettings {
                capacity: c.capacity,
                tcp_syn_timeout: c.tcp_syn_timeout,
                tcp_established_timeout: c.tcp_established_timeout,
                tcp_fin_timeout: c.tcp_fin_timeout,
                tcp_close_timeout: c.tcp_close_timeout,
                udp_timeout: c.udp_timeout,
                udp_stream_timeout: c.udp_stream_timeout,
                icmp_timeout: c.icmp_timeout,
                other_timeout: c.other_timeout,
                max_pending_fragments: c.max_pending_fragments,
                fragment_timeout: c.fragment_timeout,
            },
        }
    }
}

/// FNV-1a, 64 bit: detects torn and bit-flipped files (not an integrity MAC).
fn fnv1a64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Serialise a state to the file format (header line + JSON payload).
fn encode_state(state: &State) -> Result<Vec<u8>, String> {
    let persisted = Persisted {
        model: PModel::from(model_to_spec(&state.model)),
        meta: state.meta.clone(),
    };
    let payload = serde_json::to_vec(&persisted).map_err(|e| e.to_string())?;
    let mut out = format!(
        "{HEADER_MAGIC} {FORMAT_VERSION} {} {:016x}\n",
        payload.len(),
        fnv1a64(&payload)
    )
    .into_bytes();
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Parse the file format back; the error is the reason the file is unusable.
fn decode_state(bytes: &[u8]) -> Result<State, String> {
    let nl = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("no header line (empty or truncated file)")?;
    let header = std::str::from_utf8(&bytes[..nl]).map_err(|_| "header is not text")?;
    let parts: Vec<&str> = header.split(' ').collect();
    if parts.len() != 4 || parts[0] != HEADER_MAGIC {
        return Err(format!(
            "not an sgswitch state file (header {:?})",
            header.chars().take(60).collect::<String>()
        ));
    }
    if parts[1] != FORMAT_VERSION.to_string() {
        return Err(format!("unsupported format version {}", parts[1]));
    }
    let len: usize = parts[2].parse().map_err(|_| "bad length in header")?;
    let sum = u64::from_str_radix(parts[3], 16).map_err(|_| "bad checksum in header")?;
    let payload = &bytes[nl + 1..];
    if payload.len() != len {
        return Err(format!(
            "length mismatch: header says {len} bytes, file has {} (torn write?)",
            payload.len()
        ));
    }
    if fnv1a64(payload) != sum {
        return Err("checksum mismatch (the file was altered or damaged)".into());
    }
    let p: Persisted =
        serde_json::from_slice(payload).map_err(|e| format!("invalid JSON payload: {e}"))?;
    let model = validate::validate_model(&ModelSpec::from(p.model))
        .map_err(|e| format!("the stored model is invalid: {e}"))?;
    let state = State {
        model,
        meta: p.meta,
    };
    state.check()?;
    Ok(state)
}

/// Load `dir/state.json`: `Ok(None)` when there is none.
fn load_state(dir: &Path) -> Result<Option<State>, StoreError> {
    let file = dir.join(STATE_FILE);
    let backup = dir.join(BACKUP_FILE);
    let bytes = match fs::read(&file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if backup.exists() {
                return Err(StoreError::Corrupt {
                    file,
                    backup,
                    reason: "the file is missing but a backup exists".into(),
                });
            }
            return Ok(None);
        }
        Err(e) => {
            return Err(StoreError::Io {
                file,
                message: format!("cannot read the state file: {e}"),
            })
        }
    };
    decode_state(&bytes)
        .map(Some)
        .map_err(|reason| StoreError::Corrupt {
            file,
            backup,
            reason,
        })
}

/// Write the state atomically (see the module doc).
fn write_state(dir: &Path, state: &State) -> Result<(), String> {
    let bytes = encode_state(state)?;
    let tmp = dir.join(TEMP_FILE);
    let file = dir.join(STATE_FILE);
    let ctx = |what: &str, p: &Path, e: std::io::Error| format!("{what} {}: {e}", p.display());
    {
        let mut f = File::create(&tmp).map_err(|e| ctx("cannot create", &tmp, e))?;
        f.write_all(&bytes)
            .map_err(|e| ctx("cannot write", &tmp, e))?;
        f.sync_all().map_err(|e| ctx("cannot sync", &tmp, e))?;
    }
    if file.exists() {
        let bak_tmp = dir.join("state.json.bak.tmp");
        let _ = fs::remove_file(&bak_tmp);
        fs::hard_link(&file, &bak_tmp).map_err(|e| ctx("cannot link", &bak_tmp, e))?;
        fs::rename(&bak_tmp, dir.join(BACKUP_FILE))
            .map_err(|e| ctx("cannot rename", &bak_tmp, e))?;
    }
    fs::rename(&tmp, &file).map_err(|e| ctx("cannot rename", &tmp, e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ctx("cannot sync", dir, e))?;
    Ok(())
}

// ----- ids and time ----------------------------------------------------------------

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    let filled = File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_ok();
    if !filled {
        // No /dev/urandom (unusual sandboxes): mix the clock and a counter. Ids must be
        // unique, not secret.
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let mut x = t ^ COUNTER.fetch_add(1, Ordering::Relaxed).rotate_left(32);
        for b in buf.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
    }
    buf
}

/// A random (version 4) UUID, lower-case hyphenated.
pub fn new_uuid() -> String {
    Id::random().to_string()
}

/// A random locally-administered-style Neutron MAC (`fa:16:3e:xx:xx:xx`).
pub fn random_mac() -> String {
    let b: [u8; 3] = random_bytes();
    format!("fa:16:3e:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2])
}

/// Format seconds since the Unix epoch as RFC 3339 UTC (`2026-11-25T18:00:00Z`).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

/// The current time in seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The current time, RFC 3339 UTC.
pub fn now_rfc3339() -> String {
    rfc3339(now_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::config;

    fn seed() -> Config {
        config::parse_str(
            r#"
[[security_groups]]
name = "web"
rules = [ { direction = "ingress", protocol = "tcp", port_range_min = 80, port_range_max = 80 } ]

[[ports]]
name = "vm-a"
network = "net1"
mac = "fa:16:3e:00:00:0a"
fixed_ips = ["10.0.0.10"]
security_groups = ["web"]
"#,
            "seed.toml",
        )
        .expect("seed config")
    }

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_629_600), "2026-11-25T18:00:00Z");
    }

    #[test]
    fn uuids_are_v4_and_distinct() {
        let a = new_uuid();
        let b = new_uuid();
        assert_eq!(Id::parse(&a).unwrap().to_string(), a);
        assert!(Id::parse("web").is_none());
        assert!(Id::parse("0000000-00000-4000-8000-000000000000").is_none());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
    }

    #[test]
    fn encode_decode_round_trip_and_corruption() {
        let state = seed_state(&seed().model);
        let bytes = encode_state(&state).unwrap();
        assert_eq!(decode_state(&bytes).unwrap(), state);
        // Torn: truncated.
        let err = decode_state(&bytes[..bytes.len() - 5]).unwrap_err();
        assert!(err.contains("length mismatch"), "{err}");
        // Flipped byte.
        let mut flipped = bytes.clone();
        let n = flipped.len() - 10;
        flipped[n] ^= 0x20;
        assert!(decode_state(&flipped).unwrap_err().contains("checksum"));
        assert!(decode_state(b"").is_err());
        assert!(decode_state(b"hello\n{}")
            .unwrap_err()
            .contains("not an sgswitch"));
    }

    #[test]
    fn rich_model_round_trips_through_the_state_file() {
        // Backends, address pairs, address groups, stateless groups, networks,
        // permitted ethertypes and conntrack settings.
        let cfg = config::parse_str(include_str!("../../configs/example.toml"), "example.toml")
            .expect("example config");
        let state = seed_state(&cfg.model);
        let bytes = encode_state(&state).unwrap();
        assert_eq!(decode_state(&bytes).unwrap(), state);
    }

    #[test]
    fn a_well_formed_file_with_an_invalid_model_is_refused() {
        let mut state = seed_state(&seed().model);
        // Break a Neutron rule behind the validator's back: a port bound to a group
        // that does not exist.
        state.model.ports[0].security_groups = vec!["ghost".into()];
        let bytes = encode_state(&state).unwrap();
        let err = decode_state(&bytes).unwrap_err();
        assert!(err.contains("stored model is invalid"), "{err}");
    }

    #[test]
    fn model_to_spec_round_trips() {
        let m = seed().model;
        assert_eq!(validate::validate_model(&model_to_spec(&m)).unwrap(), m);
    }

    #[test]
    fn rejected_mutation_changes_nothing_and_hook_sees_candidates() {
        let store = Store::open(None, &seed()).unwrap();
        let seen = Arc::new(Mutex::new(Vec::<usize>::new()));
        let s2 = Arc::clone(&seen);
        store.set_apply_hook(Box::new(move |m: &Model| {
            s2.lock().unwrap().push(m.security_groups.len());
            Ok(())
        }));
        let before = store.snapshot();
        let err = store
            .create_group(&GroupCreate {
                name: "web".into(),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(err.http_status(), 409);
        assert!(seen.lock().unwrap().is_empty());
        assert_eq!(*store.snapshot(), *before);
        let id = store
            .create_group(&GroupCreate {
                name: "db".into(),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(seen.lock().unwrap().as_slice(), &[3]);
        let snap = store.snapshot();
        let gi = snap.group_by_id(&id).unwrap();
        assert_eq!(snap.model.security_groups[gi].rules.len(), 2);
        assert_eq!(snap.meta.groups[gi].rules.len(), 2);
    }

    #[test]
    fn replace_model_keeps_ids_of_unchanged_objects() {
        let store = Store::open(None, &seed()).unwrap();
        let before = store.snapshot();
        let mut m = before.model.clone();
        m.security_groups[0].rules.pop();
        store.replace_model(&m).unwrap();
        let after = store.snapshot();
        assert_eq!(after.meta.ports, before.meta.ports);
        assert_eq!(after.meta.networks, before.meta.networks);
        let gi = after.group_by_name("web").unwrap();
        let bi = before.group_by_name("web").unwrap();
        assert_eq!(after.meta.groups[gi].obj.id, before.meta.groups[bi].obj.id);
        assert_eq!(
            after.meta.groups[gi].obj.revision_number,
            before.meta.groups[bi].obj.revision_number + 1
        );
        assert_eq!(
            after.meta.groups[gi].rules[..],
            before.meta.groups[bi].rules[..before.meta.groups[bi].rules.len() - 1]
        );
    }

    #[test]
    fn apply_failure_changes_nothing() {
        let store = Store::open(None, &seed()).unwrap();
        store.set_apply_hook(Box::new(|_| Err("compile failed".into())));
        let before = store.snapshot();
        let err = store
            .create_group(&GroupCreate {
                name: "db".into(),
                ..Default::default()
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::Apply(_)));
        assert_eq!(*store.snapshot(), *before);
    }
}
