//! [`Recompiler`]: the classifier side of an `ApplyPolicy` that keeps its last model, so
//! that a model differing only in `Model::remote_members` (a remote-group member joined or
//! left) is applied with [`CompiledPolicy::with_members`], a change of rules with
//! [`CompiledPolicy::patch`] (a delta beside the shared sets) and any other model with
//! [`CompiledPolicy::recompile`] (only the group sets the change touches are compiled),
//! instead of a full compile.
//!
//! Owns: the last (model, policy) pair of one applier. May not touch: the dataplane (the
//! running switch has its own path, `Switch::apply` with `Dataplane::with_members`), the
//! store.

use std::sync::{Arc, Mutex};

use super::{members_only_change, CompiledPolicy};
use crate::policy::Model;

/// The last model applied and its compiled policy (`None` before the first).
#[derive(Default)]
pub struct Recompiler {
    last: Mutex<Option<(Model, Arc<CompiledPolicy>)>>,
}

impl Recompiler {
    pub fn new() -> Self {
        Self::default()
    }

    /// The compiled policy of `model` at `epoch`, derived from the last one: its member
    /// sets alone when only `remote_members` changed, else its unaffected group sets
    /// shared ([`CompiledPolicy::recompile`]); the first call compiles. Returns it and
    /// whether only the member sets were rebuilt (`true`). Keeps a copy of `model` for
    /// the next call.
    pub fn apply(&self, model: &Model, epoch: u64) -> (Arc<CompiledPolicy>, bool) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let (policy, derived) = match last.as_ref() {
            Some((m, p)) if members_only_change(m, model) => (p.with_members(model, epoch), true),
            Some((m, p)) => match p.patch(m, model, epoch) {
                Some(patched) => (patched, false),
                None => (p.recompile(m, model, epoch), false),
            },
            None => (CompiledPolicy::compile(model, epoch), false),
        };
        let policy = Arc::new(policy);
        *last = Some((model.clone(), policy.clone()));
        (policy, derived)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Network;

    #[test]
    fn derives_on_members_only_and_compiles_otherwise() {
        let mut m = Model {
            networks: vec![Network {
                name: "n".into(),
                ..Network::default()
            }],
            ..Model::default()
        };
        let r = Recompiler::new();
        assert!(!r.apply(&m, 1).1, "first: compiled");
        m.remote_members
            .insert("g".into(), vec!["10.0.0.1/32".parse().unwrap()]);
        let (p, derived) = r.apply(&m, 2);
        assert!(derived && p.epoch() == 2);
        m.permitted_ethertypes.push(0x88cc);
        assert!(!r.apply(&m, 3).1, "another field changed: recompiled");
    }
}
