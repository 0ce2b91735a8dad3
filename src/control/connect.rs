//! Connecting the store to what makes its model live: the one place an apply hook is
//! wired.
//!
//! A [`Store`] commits a change only after its apply hook made the candidate model live
//! (validate → prepare → apply → commit, see [`crate::control::store`]). What makes it
//! live is an [`ApplyPolicy`]: the running [`Switch`] in `sgswitch run`, a dry run that
//! only logs (the `api_server` example), or a test double that records or refuses
//! models. [`connect`] turns one into the store's hook; the binary, the example and the
//! tests all go through it, so the conversion of the switch's errors into the store's
//! typed [`ApplyError`] (which the API answers as 409 `PolicyApplyFailed`) exists once.
//!
//! A closure `Fn(&Model) -> Result<(), ApplyError>` is an [`ApplyPolicy`] too, for
//! test doubles and dry runs.
//!
//! Owns: the [`ApplyPolicy`] trait, its implementation for the live switch and the
//! mapping of [`SwitchError`] to [`ApplyError`]. May not: mutate the store (only the
//! store calls the hook), or reach into the runtime beyond [`Switch::apply`].

use std::sync::Arc;

use crate::control::store::{ApplyError, Store};
use crate::policy::Model;
use crate::runtime::switch::{Switch, SwitchError};

/// What makes a candidate model live: compile it and publish it to the dataplane,
/// returning only once the dataplane uses it. An `Err` rejects the change and nothing
/// is committed.
pub trait ApplyPolicy: Send + Sync {
    /// Make `model` the running policy.
    fn apply_policy(&self, model: &Model) -> Result<(), ApplyError>;
}

/// The live switch: [`Switch::apply`] opens the ports the model adds, closes those it
/// removes, publishes the compiled policy and waits until every worker uses it.
impl ApplyPolicy for Switch {
    fn apply_policy(&self, model: &Model) -> Result<(), ApplyError> {
        self.apply(model).map(|_epoch| ()).map_err(ApplyError::from)
    }
}

/// A closure is an [`ApplyPolicy`] (test doubles, dry runs).
impl<F> ApplyPolicy for F
where
    F: Fn(&Model) -> Result<(), ApplyError> + Send + Sync,
{
    fn apply_policy(&self, model: &Model) -> Result<(), ApplyError> {
        self(model)
    }
}

impl From<SwitchError> for ApplyError {
    fn from(e: SwitchError) -> Self {
        match e {
            SwitchError::Timeout(_) => ApplyError::Timeout(e),
            _ => ApplyError::Switch(e),
        }
    }
}

/// Connect `store` to `target`: from now on every change to the store is applied to
/// `target` before it is committed (and not committed if `target` refuses it). Call it
/// after starting the runtime from [`Store::model`]; a later call replaces the target.
pub fn connect(store: &Store, target: Arc<dyn ApplyPolicy>) {
    store.set_apply_hook(Box::new(move |m: &Model| target.apply_policy(m)));
}
