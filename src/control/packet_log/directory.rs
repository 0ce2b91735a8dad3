//! What a packet-log record's indices mean: the names of one policy epoch's ports,
//! groups, rules and logs ([`Directory`], built from the model that epoch compiled), and
//! their Neutron ids ([`Ids`], looked up by name in the store's committed state).
//!
//! A [`LogRecord`] names its port by dataplane index and its rule by model position
//! ([`RuleRef`]), valid under the record's epoch; the directory of that epoch turns them
//! into names. Ids are resolved by name (ports, groups), by group name and Neutron rule
//! key (rules, as the store keeps rule ids) and by equality (logs, whose names need not be
//! unique), against whichever state the store has committed when the record is written:
//! the ids of objects that kept their names across a change are the same in both.
//!
//! Owns: the name and id lookups of the packet log, and which log objects a record
//! matches. May not touch: the store's state (it reads a snapshot) or the writer.

use std::sync::Arc;

use crate::control::store::{Id, State};
use crate::pipeline::{LogRecord, LogVerdict};
use crate::policy::validate::{rule_key, RuleKey};
use crate::policy::{Model, NetworkLog, RuleRef};

/// A port of a directory: its name and its groups (model indices).
#[derive(Clone, Debug)]
struct DirPort {
    name: String,
    groups: Vec<u32>,
}

/// A group of a directory: its name and its rules' Neutron keys (model order).
#[derive(Clone, Debug)]
struct DirGroup {
    name: String,
    rules: Vec<RuleKey>,
}

/// A log object of a directory, with its group and port as indices.
#[derive(Clone, Debug)]
struct DirLog {
    log: NetworkLog,
    resource: Option<u32>,
    target: Option<usize>,
}

/// The names of one policy epoch (see the module doc).
#[derive(Clone, Debug)]
pub struct Directory {
    pub epoch: u64,
    ports: Vec<DirPort>,
    groups: Vec<DirGroup>,
    logs: Vec<DirLog>,
}

impl Directory {
    /// The directory of `model`, compiled as policy epoch `epoch`.
    pub fn new(epoch: u64, model: &Model) -> Directory {
        let group_index = |name: &str| {
            model
                .security_groups
                .iter()
                .position(|g| g.name == name)
                .map(|i| i as u32)
        };
        Directory {
            epoch,
            ports: model
                .ports
                .iter()
                .map(|p| DirPort {
                    name: p.name.clone(),
                    groups: p
                        .security_groups
                        .iter()
                        .filter_map(|g| group_index(g))
                        .collect(),
                })
                .collect(),
            groups: model
                .security_groups
                .iter()
                .map(|g| DirGroup {
                    name: g.name.clone(),
                    rules: g.rules.iter().map(rule_key).collect(),
                })
                .collect(),
            logs: model
                .logs
                .iter()
                .map(|l| DirLog {
                    log: l.clone(),
                    resource: l.resource.as_deref().and_then(group_index),
                    target: l.target.as_deref().and_then(|t| model.port_index(t)),
                })
                .collect(),
        }
    }

    /// Name of the port with dataplane index `port`.
    pub fn port_name(&self, port: u16) -> Option<&str> {
        self.ports.get(port as usize).map(|p| p.name.as_str())
    }

    /// Name of the group of `rule`.
    pub fn group_name(&self, rule: RuleRef) -> Option<&str> {
        self.groups
            .get(rule.group as usize)
            .map(|g| g.name.as_str())
    }

    /// The enabled log objects (indices) that `r` is a record of: Neutron's matching of
    /// a log's resource (group), target (port) and event.
    pub fn matching_logs(&self, r: &LogRecord) -> impl Iterator<Item = usize> + '_ {
        let port = r.port as usize;
        let groups: &[u32] = self.ports.get(port).map_or(&[], |p| &p.groups);
        let accept_group = match r.verdict {
            LogVerdict::Accept => Some(r.rule.map(|x| x.group)),
            LogVerdict::Drop(_) => None,
        };
        self.logs.iter().enumerate().filter_map(move |(i, l)| {
            let event = match accept_group {
                Some(_) => l.log.event.accepts(),
                None => l.log.event.drops(),
            };
            let target = l.log.target.is_none() || l.target == Some(port);
            let resource = match (l.log.resource.is_some(), l.resource) {
                (false, _) => true,
                (true, None) => false,
                (true, Some(g)) => {
                    groups.contains(&g)
                        && accept_group.is_none_or(|rule_group| rule_group == Some(g))
                }
            };
            (l.log.enabled && event && target && resource).then_some(i)
        })
    }

    /// The name of log object `i`.
    pub fn log_name(&self, i: usize) -> &str {
        &self.logs[i].log.name
    }
}

/// The Neutron ids of a [`Directory`]'s objects in one committed state (`None`: the
/// state has no such object, e.g. a record of an epoch whose change was refused).
#[derive(Clone, Debug, Default)]
pub struct Ids {
    /// The snapshot these were resolved against (to notice a newer one).
    pub(super) state: Option<Arc<State>>,
    ports: Vec<Option<Id>>,
    groups: Vec<Option<Id>>,
    rules: Vec<Vec<Option<Id>>>,
    logs: Vec<Option<Id>>,
}

impl Ids {
    /// Resolve the ids of `dir`'s objects in `state`.
    pub fn resolve(dir: &Directory, state: Arc<State>) -> Ids {
        let s = &*state;
        let groups = dir.groups.iter().map(|g| s.group_by_name(&g.name));
        let rules = groups
            .clone()
            .zip(&dir.groups)
            .map(|(gi, g)| {
                let Some(gi) = gi else {
                    return vec![None; g.rules.len()];
                };
                let have = &s.model.security_groups[gi].rules;
                g.rules
                    .iter()
                    .map(|k| {
                        let ri = have.iter().position(|r| rule_key(r) == *k)?;
                        Some(s.meta.groups[gi].rules[ri].id)
                    })
                    .collect()
            })
            .collect();
        let mut claimed = vec![false; s.model.logs.len()];
        let logs = dir
            .logs
            .iter()
            .map(|l| {
                let j =
                    (0..s.model.logs.len()).find(|&j| !claimed[j] && s.model.logs[j] == l.log)?;
                claimed[j] = true;
                Some(s.meta.logs[j].id)
            })
            .collect();
        Ids {
            ports: dir.ports.iter().map(|p| s.port_id(&p.name)).collect(),
            groups: groups
                .map(|gi| gi.map(|i| s.meta.groups[i].obj.id))
                .collect(),
            rules,
            logs,
            state: Some(state),
        }
    }

    pub fn port(&self, port: u16) -> Option<Id> {
        self.ports.get(port as usize).copied().flatten()
    }

    pub fn group(&self, rule: RuleRef) -> Option<Id> {
        self.groups.get(rule.group as usize).copied().flatten()
    }

    pub fn rule(&self, rule: RuleRef) -> Option<Id> {
        let g = self.rules.get(rule.group as usize)?;
        g.get(rule.rule as usize).copied().flatten()
    }

    pub fn log(&self, i: usize) -> Option<Id> {
        self.logs.get(i).copied().flatten()
    }
}
