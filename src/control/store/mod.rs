//! The authoritative control-plane state: the [`Model`] plus what Neutron clients see
//! and the model does not carry (UUIDs, timestamps, revision numbers), and its
//! persistence.
//!
//! # Design
//! * **One committed state, published whole.** The committed [`State`] (model + meta)
//!   lives behind an `RwLock<Arc<State>>`; readers (API `GET`s) take the `Arc` and never
//!   wait for a mutation in progress. Mutations are serialised by one `Mutex` that also
//!   owns the apply hook.
//! * **Validate → prepare the file → apply → commit the file → commit.** A mutation
//!   clones the committed state into a candidate and changes it with the policy
//!   validators (`validate_rule` / `RuleBatch`, `validate_port`, `validate_group`,
//!   `validate_log`, or `validate_model` on the whole candidate where no targeted
//!   validator exists). With a state directory, the candidate is then written to the
//!   temp file and synced ([`persist::prepare_write`]): every step that needs disk space
//!   runs *before* the dataplane sees anything, so a full or failing disk (`ENOSPC`,
//!   `EDQUOT`, `EIO`) changes nothing and the API answers 503 `StorageFull` /
//!   `StorageError` naming the file and the OS error. Then the apply hook makes the
//!   candidate model live (the runtime compiles and publishes it and returns once the
//!   dataplane uses it); then the temp file is renamed over the state file and the
//!   directory synced; only then is the candidate swapped in. A refusal of the hook
//!   removes the temp file. If the rename (or the directory sync, after which the
//!   previous file is put back) fails, the dataplane is given the old model again and
//!   the call fails having changed nothing; the two ways even that can fail are told in
//!   the error ([`PersistOutcome`]). Rejected option: apply, then write (the order
//!   before #14): a full disk had the dataplane run a policy the disk did not have
//!   until the old one was re-applied, and a failing re-apply left them apart.
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
//! `LEN` bytes of JSON: the model (as its `policy::spec` form, re-validated on
//! load) and the meta, both by their serde derives ([`persist`]). A write hard-links
//! the committed file to `state.json.bak`, writes `state.json.tmp` and fsyncs it (the
//! prepare step, before the apply hook), then renames the temp file over `state.json`
//! and fsyncs the directory (the commit step, after it), so a crash leaves either the
//! old or the new file, never a mix. On open, a missing file seeds the state from the config; a
//! file whose header, length, checksum, JSON or model is wrong is refused with an
//! error naming the file and the last good copy (`state.json.bak`), never silently
//! replaced.
//!
//! One process owns a state directory: `Store::open` takes an exclusive `flock` on
//! `DIR/lock` (holding its PID, for the message) for the store's life, and a second
//! `sgswitch run` on the same directory is refused naming the first one's PID
//! ([`lock`]). `sgswitch export` takes no lock: it reads `state.json`, which is only ever
//! replaced whole.
//!
//! Thread safety: `Store` is `Send + Sync`; share it as `Arc<Store>`.
//!
//! # Modules
//! This module owns the committed state and the one path every change takes
//! (`Store::mutate`: validate → prepare → apply → commit); nothing else swaps the
//! committed state, calls the apply hook or writes the state file.
//! * [`state`] — [`State`], [`Meta`] and their lookups; metadata for a new model;
//! * [`ops`] — the mutations (one per Neutron operation) and their request types;
//! * [`logs`] — the packet-log mutations (Neutron's logging extension);
//! * [`error`] — [`StoreError`] and the Neutron answer for it;
//! * [`persist`] — the state file format, atomic writes (prepare, commit), loading;
//! * [`lock`] — the state directory's lock;
//! * [`shared`] — the shared mode ([`Store::open_shared`]): the state is a watch-fed
//!   cache of a `Kv` prefix, each write one compare-and-swap transaction, no apply hook
//!   and no state directory (see its doc); `mutate` hands it the change;
//! * [`to_spec`] — the spec that validates back to a model;
//! * [`ids`] — UUIDs, MACs, RFC 3339 time.
//!
//! Depends on: `policy` (the model, its specs and validators) and `control::config` (the
//! [`Config`] a store is seeded from); never on `api` (which uses the store) or the
//! runtime (the apply hook is a function its caller supplies).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use crate::control::config::{Config, LoggingSettings, SwitchSettings};
use crate::policy::Model;

pub mod error;
pub mod ids;
pub mod lock;
pub mod logs;
pub mod ops;
pub mod persist;
pub mod shared;
pub mod state;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_disk;
pub mod to_spec;

pub use error::{PersistOutcome, StoreError};
pub use ids::{new_uuid, now_rfc3339, now_secs, random_mac, rfc3339, Id};
pub use lock::LOCK_FILE;
pub use logs::{LogCreate, LogUpdate, LOGGABLE_RESOURCE_TYPES, MAX_LOGS};
pub use ops::{AddressGroupUpdate, GroupCreate, GroupUpdate, PortCreate, PortUpdate, RuleCreate};
pub use persist::{PersistError, BACKUP_FILE, STATE_FILE};
pub use shared::SharedStatus;
pub use state::{GroupMeta, Meta, NetworkMeta, ObjMeta, State};
pub use to_spec::{log_to_spec, model_to_spec, port_to_spec};

use lock::DirLock;
use persist::{load_state, prepare_write, write_state};
use state::{rebuild_meta, seed_state};

/// The callback that makes a candidate model live: compile it and publish it to the
/// dataplane, returning only once the dataplane uses it. An `Err` rejects the change.
/// Set through [`crate::control::connect()`], the one place hooks are wired.
pub type ApplyHook = Box<dyn Fn(&Model) -> Result<(), ApplyError> + Send + Sync>;

/// Why the apply hook refused a candidate model ([`StoreError::Apply`]: nothing
/// changed; the API answers 409 `PolicyApplyFailed` with this message).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The live switch could not make the model live: a port the model adds could not
    /// be opened or its netdev tuned. Nothing was published. The switch's error, whole
    /// (its message is the answer's).
    #[error(transparent)]
    Switch(crate::runtime::switch::SwitchError),
    /// The live switch published the policy but not every worker took it in time.
    #[error(transparent)]
    Timeout(crate::runtime::switch::SwitchError),
    /// A target that is not the live switch (a test double, a dry run) refused the
    /// model, in its own words.
    #[error("{0}")]
    Rejected(String),
}

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

thread_local! {
    /// The `If-Match: revision_number=N` of the request this thread is serving: the
    /// object's id and N ([`if_match`]); taken by the next mutation.
    static IF_MATCH: std::cell::Cell<Option<(String, u64)>> = const { std::cell::Cell::new(None) };
}

/// Run `f` (one store call) with Neutron's `If-Match: revision_number=N` precondition
/// on the object `id`: the mutation it makes fails with 412 `PreconditionFailed`,
/// changing nothing, unless the object's `revision_number` is `revision` in the state
/// the change is computed from (checked inside the mutation: atomic with it, in both
/// stores).
pub fn if_match<T>(id: &str, revision: u64, f: impl FnOnce() -> T) -> T {
    IF_MATCH.with(|c| c.set(Some((id.to_string(), revision))));
    let out = f();
    IF_MATCH.with(|c| c.set(None));
    out
}

fn check_if_match(state: &State, id: &str, revision: u64) -> Result<(), StoreError> {
    let Some(found) = state.revision_of(id) else {
        // The change itself answers 404.
        return Ok(());
    };
    if found == revision {
        return Ok(());
    }
    Err(StoreError::PreconditionFailed {
        message: format!(
            "Precondition failed: the revision number of {id} is {found}, not {revision} (If-Match)."
        ),
    })
}

struct Mutator {
    apply: Option<ApplyHook>,
}

/// The authoritative state; see the module doc.
pub struct Store {
    current: RwLock<Arc<State>>,
    mutator: Mutex<Mutator>,
    state_dir: Option<PathBuf>,
    /// Held for the store's life: no other process uses the state directory.
    _lock: Option<DirLock>,
    switch: SwitchSettings,
    logging: LoggingSettings,
    /// Shared mode ([`Store::open_shared`]): the state is the cache of a `Kv`'s keys,
    /// `current` and the apply hook are unused.
    shared: Option<Arc<shared::Shared>>,
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
    /// is an error ([`StoreError::Corrupt`]), and so is a directory another process
    /// holds ([`StoreError::Locked`], naming its PID); the lock is kept until the store
    /// is dropped. No apply hook is set: the caller builds
    /// its runtime from [`Store::model`], then connects it ([`crate::control::connect()`]).
    pub fn open(state_dir: Option<&Path>, seed: &Config) -> Result<Store, StoreError> {
        let (state, lock) = match state_dir {
            None => (seed_state(&seed.model), None),
            Some(dir) => {
                fs::create_dir_all(dir).map_err(|e| StoreError::Io {
                    file: dir.to_path_buf(),
                    message: format!("cannot create the state directory: {e}"),
                })?;
                let lock = DirLock::acquire(dir)?;
                let state = match load_state(dir)? {
                    Some(state) => state,
                    None => {
                        let state = seed_state(&seed.model);
                        write_state(dir, &state).map_err(|e| StoreError::Io {
                            file: dir.join(STATE_FILE),
                            message: format!("cannot write the first state: {e}"),
                        })?;
                        state
                    }
                };
                (state, Some(lock))
            }
        };
        Ok(Store {
            current: RwLock::new(Arc::new(state)),
            mutator: Mutex::new(Mutator { apply: None }),
            state_dir: state_dir.map(Path::to_path_buf),
            _lock: lock,
            switch: seed.switch.clone(),
            logging: seed.logging.clone(),
            shared: None,
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
                switch: seed.switch.clone(),
                logging: seed.logging.clone(),
                api: seed.api.clone(),
                overlay: seed.overlay.clone(),
            },
            None => seed.clone(),
        })
    }

    /// Set (or replace) the apply hook every later mutation goes through; see
    /// [`crate::control::connect()`], the one caller outside the store's tests.
    pub(crate) fn set_apply_hook(&self, hook: ApplyHook) {
        self.lock_mutator().apply = Some(hook);
    }

    /// The committed state (cheap: an `Arc`).
    pub fn snapshot(&self) -> Arc<State> {
        if let Some(s) = &self.shared {
            return s.snapshot();
        }
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
            switch: self.switch.clone(),
            logging: self.logging.clone(),
            // The store does not keep the [api] table (`export_from` does, from its seed).
            api: Default::default(),
            overlay: Default::default(),
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

    /// Run one mutation: clone, change, prepare the file, apply, commit the file, commit
    /// (see the module doc).
    pub(super) fn mutate<T>(
        &self,
        mut change: impl FnMut(&mut State, u64) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let expect = IF_MATCH.with(|c| c.take());
        let mut change = move |state: &mut State, now: u64| {
            if let Some((id, revision)) = &expect {
                check_if_match(state, id, *revision)?;
            }
            change(state, now)
        };
        let mutator = self.lock_mutator();
        if let Some(s) = &self.shared {
            // Serialised on this server by the mutator lock too: concurrent writers of
            // one server do not race each other's compare.
            return s.mutate(&mut change);
        }
        let old = self.snapshot();
        let mut candidate = State::clone(&old);
        let out = change(&mut candidate, now_secs())?;
        debug_assert!(candidate.check().is_ok(), "{:?}", candidate.check());
        // Everything that needs disk space happens before the dataplane sees the
        // candidate: a full disk fails here and changes nothing.
        let pending = match &self.state_dir {
            Some(dir) => Some(prepare_write(dir, &candidate).map_err(StoreError::unsaved)?),
            None => None,
        };
        if let Some(apply) = &mutator.apply {
            // Refused: `pending` is dropped, which removes the temp file.
            apply(&candidate.model).map_err(StoreError::Apply)?;
        }
        let Some(pending) = pending else {
            self.commit(candidate);
            return Ok(out);
        };
        let Err(e) = pending.commit() else {
            self.commit(candidate);
            return Ok(out);
        };
        let outcome = if e.new_file_in_place {
            self.commit(candidate);
            PersistOutcome::SavedNotSynced
        } else {
            // The file holds the committed state: put the dataplane back on it. If even
            // that fails the dataplane runs the candidate, and the store says so.
            match mutator.apply.as_ref().map(|apply| apply(&old.model)) {
                Some(Err(back)) => {
                    self.commit(candidate);
                    PersistOutcome::RunningNotSaved(back.to_string())
                }
                _ => PersistOutcome::Unchanged,
            }
        };
        Err(StoreError::Persist {
            error: e.error,
            outcome,
        })
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
}
