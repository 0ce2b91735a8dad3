//! TEMPORARY: `admitting_rule` until the attribution tables land (branch h-rule).

use super::CompiledPolicy;
use crate::flow::FlowKey;
use crate::policy::{Direction, RuleRef};

impl CompiledPolicy {
    /// Placeholder: whether allowed, with rule (0, 0).
    pub fn admitting_rule(&self, port: usize, dir: Direction, key: &FlowKey) -> Option<RuleRef> {
        self.allows(port, dir, key)
            .then_some(RuleRef { group: 0, rule: 0 })
    }
}
