//! Security groups and address groups as objects: a group's description, its rules (or
//! the template rules) and the duplicate check among them; an address group's
//! description and CIDRs (stored normalised, no address twice).
//!
//! Owns: one group at a time. May not touch: names across groups (uniqueness, the
//! reserved `default` spelling: the driver, [`super`], checks those because they need
//! every group), ports, or the fields of a single rule ([`super::rules`]).
//!
//! Depends on: the model, spec and error types, and its sibling checks, inside `policy`;
//! no other sgswitch module.

use std::collections::HashMap;

use ipnet::IpNet;

use super::super::error::{ErrorKind, FieldPath, ValidationError};
use super::super::spec::{AddressGroupSpec, SecurityGroupSpec};
use super::super::{AddressGroup, SecurityGroup};
use super::addresses::parse_cidr;
use super::defaults::{
    default_group_rules, template_rules, DEFAULT_GROUP, DEFAULT_GROUP_DESCRIPTION,
};
use super::rules::{check_rule, rule_key, RuleKey};
use super::{attach, check_description, Found, Scope};

pub(super) fn check_address_group(
    spec: &AddressGroupSpec,
    name: Option<&str>,
    path: &FieldPath,
    found: &mut Found,
) -> Option<AddressGroup> {
    let before = found.len();
    check_description(&spec.description, path, found);
    let mut addresses: Vec<IpNet> = Vec::new();
    for (k, text) in spec.addresses.iter().enumerate() {
        let p = path.key("addresses").index(k);
        match parse_cidr(text) {
            Err(reason) => found.push((
                p,
                ErrorKind::InvalidCidr {
                    value: text.clone(),
                    reason,
                },
            )),
            Ok(net) => {
                let net = net.trunc();
                if let Some(first) = addresses.iter().position(|a| *a == net) {
                    found.push((
                        p,
                        ErrorKind::DuplicateAddress {
                            cidr: net.to_string(),
                            first,
                        },
                    ));
                }
                // Keep positions aligned with the spec for `first`.
                addresses.push(net);
            }
        }
    }
    if found.len() != before {
        return None;
    }
    Some(AddressGroup {
        name: name?.to_string(),
        description: spec.description.clone().unwrap_or_default(),
        addresses,
    })
}

/// A group's rules (or template rules) and its duplicate check.
pub(super) fn check_group(
    spec: &SecurityGroupSpec,
    path: &FieldPath,
    scope: &Scope<'_>,
    errors: &mut Vec<ValidationError>,
) -> Option<SecurityGroup> {
    let name = spec.name.as_deref();
    let is_default = name == Some(DEFAULT_GROUP);
    let before = errors.len();
    let mut found = Found::new();
    check_description(&spec.description, path, &mut found);
    attach(found, name, None, None, None, errors);
    let rules = match &spec.rules {
        None if is_default => default_group_rules(),
        None => template_rules(),
        Some(list) => {
            let mut rules = Vec::with_capacity(list.len());
            let mut keys: HashMap<RuleKey, usize> = HashMap::new();
            for (j, r) in list.iter().enumerate() {
                let rpath = path.key("rules").index(j);
                let mut found = Found::new();
                if let Some(rule) = check_rule(r, &rpath, scope, &mut found) {
                    let key = rule_key(&rule);
                    if let Some(&first) = keys.get(&key) {
                        found.push((rpath, ErrorKind::DuplicateRule { first }));
                    } else {
                        keys.insert(key, j);
                        rules.push(rule);
                    }
                }
                attach(found, name, Some(j), None, None, errors);
            }
            rules
        }
    };
    if errors.len() != before {
        return None;
    }
    let description = match (&spec.description, is_default) {
        (Some(d), _) => d.clone(),
        (None, true) => DEFAULT_GROUP_DESCRIPTION.to_string(),
        (None, false) => String::new(),
    };
    Some(SecurityGroup {
        name: name?.to_string(),
        description,
        stateful: spec.stateful.unwrap_or(true),
        rules,
    })
}
