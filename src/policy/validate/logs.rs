//! One packet-logging object (Neutron's `log` resource of type `security_group`), and
//! the rule between a log's group and port.
//!
//! # What is checked (neutron-lib's `logging` API definition, Neutron's `sg_validate`)
//! * `name` and `description`: at most 255 characters; the name may be empty or absent
//!   (default `""`) and need not be unique, as in Neutron;
//! * `event`: exactly `ACCEPT`, `DROP` or `ALL` (Neutron's `type:values`), default `ALL`;
//! * `enabled`: default `true`;
//! * `resource` (a security group) and `target` (a port), each optional, must exist
//!   (Neutron: `ResourceNotFound`, `TargetResourceNotFound`, both 404);
//! * with both, the port must use the group (Neutron: `InvalidResourceConstraint`, 400).
//!   This last rule is checked when a log is *created* ([`super::validate_log`], and the
//!   config file through [`log_target_errors`]), not as an invariant of every model:
//!   Neutron lets a port leave the group afterwards (the log then records nothing for
//!   it), so a saved state holding such a log must still load, and an unrelated change
//!   must not be refused because of it.
//!
//! Owns: the fields of one log and the group/port rule. May not touch: other objects,
//! ids, or what a log records (the pipeline compiles logs into per-port flags).

use std::collections::HashSet;

use super::super::error::{ErrorKind, FieldPath, ValidationError};
use super::super::spec::LogSpec;
use super::super::{LogEvent, Model, NetworkLog};
use super::{check_description, Found, MAX_NAME_LEN};

/// Neutron's event names: `ACCEPT`, `DROP`, `ALL` (exact spelling).
pub fn parse_log_event(s: &str) -> Option<LogEvent> {
    [LogEvent::Accept, LogEvent::Drop, LogEvent::All]
        .into_iter()
        .find(|e| e.as_str() == s)
}

/// Check one log's fields and references (`groups`, `ports`: the names that exist).
pub(super) fn check_log(
    spec: &LogSpec,
    path: &FieldPath,
    groups: &HashSet<&str>,
    ports: &HashSet<&str>,
    found: &mut Found,
) -> Option<NetworkLog> {
    let before = found.len();
    let name = spec.name.clone().unwrap_or_default();
    if name.chars().count() > MAX_NAME_LEN {
        found.push((path.key("name"), ErrorKind::TooLong { max: MAX_NAME_LEN }));
    }
    check_description(&spec.description, path, found);
    let event = match spec.event.as_deref() {
        None => LogEvent::All,
        Some(e) => parse_log_event(e).unwrap_or_else(|| {
            found.push((path.key("event"), ErrorKind::InvalidLogEvent(e.to_string())));
            LogEvent::All
        }),
    };
    if let Some(g) = spec.resource.as_deref() {
        if !groups.contains(g) {
            found.push((
                path.key("resource"),
                ErrorKind::UnknownSecurityGroup(g.to_string()),
            ));
        }
    }
    if let Some(p) = spec.target.as_deref() {
        if !ports.contains(p) {
            found.push((path.key("target"), ErrorKind::UnknownPort(p.to_string())));
        }
    }
    (found.len() == before).then(|| NetworkLog {
        name,
        description: spec.description.clone().unwrap_or_default(),
        resource: spec.resource.clone(),
        target: spec.target.clone(),
        event,
        enabled: spec.enabled.unwrap_or(true),
    })
}

/// The error of a log whose target port does not use its resource group, if it is one.
pub(super) fn target_error(model: &Model, log: &NetworkLog) -> Option<ErrorKind> {
    let (Some(group), Some(port)) = (&log.resource, &log.target) else {
        return None;
    };
    let p = model.port(port)?;
    let uses = p.security_groups.iter().any(|g| g == group);
    (!uses).then(|| ErrorKind::LogTargetNotInGroup {
        port: port.clone(),
        group: group.clone(),
    })
}

/// Logs of `model` whose target port does not use their resource group (Neutron's
/// `InvalidResourceConstraint`), at `logs[i].target`. Not part of [`super::validate_model`]
/// (see the module doc): the config loader adds these to its errors, since a config file
/// creates its logs.
pub fn log_target_errors(model: &Model) -> Vec<ValidationError> {
    model
        .logs
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let path = FieldPath::root().key("logs").index(i).key("target");
            target_error(model, l).map(|kind| ValidationError::new(path, kind))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::{validate_log, validate_model};
    use super::*;
    use crate::policy::spec::{ModelSpec, PortSpec};

    fn spec(logs: Vec<LogSpec>) -> ModelSpec {
        ModelSpec {
            ports: vec![PortSpec {
                name: Some("p".into()),
                mac: Some("fa:16:3e:00:00:01".into()),
                security_groups: Some(vec![]),
                ..Default::default()
            }],
            logs,
            ..Default::default()
        }
    }

    #[test]
    fn events_are_neutrons_exact_names() {
        assert_eq!(parse_log_event("ACCEPT"), Some(LogEvent::Accept));
        assert_eq!(parse_log_event("DROP"), Some(LogEvent::Drop));
        assert_eq!(parse_log_event("ALL"), Some(LogEvent::All));
        assert_eq!(parse_log_event("all"), None);
        assert_eq!(parse_log_event(""), None);
    }

    #[test]
    fn a_port_that_left_the_group_keeps_the_model_valid() {
        // The port uses no group: creating the log is refused, but a model holding it
        // (a port that left the group afterwards) validates.
        let log = LogSpec {
            resource: Some("default".into()),
            target: Some("p".into()),
            ..Default::default()
        };
        let model = validate_model(&spec(vec![log.clone()])).unwrap();
        assert_eq!(model.logs.len(), 1);
        assert_eq!(log_target_errors(&model).len(), 1);
        let e = validate_log(&model, &log).unwrap_err();
        assert_eq!(e.errors()[0].path.to_string(), "logs[1].target");
        assert!(matches!(
            e.errors()[0].kind,
            ErrorKind::LogTargetNotInGroup { .. }
        ));
        let ok = LogSpec {
            target: Some("p".into()),
            event: Some("DROP".into()),
            ..Default::default()
        };
        let l = validate_log(&model, &ok).unwrap();
        assert_eq!(
            (l.event, l.enabled, l.name.as_str()),
            (LogEvent::Drop, true, "")
        );
    }
}
