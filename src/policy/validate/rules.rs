//! One security-group rule (security-groups.md §10-20): direction, ethertype, protocol,
//! port range or ICMP type/code, remote, description; and the key under which two rules
//! of a group are duplicates (Neutron's `_rule_to_key`).
//!
//! Owns: turning a [`RuleSpec`] into a [`Rule`] and [`rule_key`]. May not touch: other
//! rules (the duplicate check itself runs where the group's rules are, in
//! [`super::groups`] and [`super::RuleBatch`]), ports or switch settings; it knows
//! the other groups and address groups only through [`super::Scope`]. Protocol names and
//! numbers are [`crate::policy::protocol`]'s.
//!
//! Depends on: the model, spec and error types, [`crate::policy::protocol`] and
//! `addresses`, inside `policy`; no other sgswitch module.

use std::cell::Cell;

use ipnet::IpNet;

use super::super::error::{ErrorKind, FieldPath};
use super::super::protocol::{self, ProtocolError, ProtocolInput};
use super::super::spec::{RuleSpec, Scalar};
use super::super::{Direction, EtherType, Remote, Rule};
use super::addresses::{family_matches, parse_cidr};
use super::{check_description, Found, Scope};

/// The key under which two rules of one group are duplicates (Neutron `_rule_to_key`):
/// everything but the description, with the protocol as Neutron's number (`None` for
/// any, `Some(0)` for 0, see [`Rule::neutron_protocol`]) and a `/0` prefix equal to
/// "no remote".
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct RuleKey {
    pub direction: Direction,
    pub ethertype: EtherType,
    pub protocol: Option<u8>,
    pub port_range_min: Option<u16>,
    pub port_range_max: Option<u16>,
    pub remote: RuleKeyRemote,
}

/// The remote part of a [`RuleKey`].
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum RuleKeyRemote {
    Any,
    /// The prefix as written (host bits kept), never `/0`.
    Prefix(IpNet),
    Group(String),
    AddressGroup(String),
}

thread_local! {
    /// Rule keys computed on this thread ([`rule_key`] calls): a work counter, so tests
    /// can show that checking new rules costs keys linear in the rules. Per thread, so
    /// tests running in parallel do not count each other's work (a store mutation runs
    /// on its caller's thread); validation is not on the packet path.
    static RULE_KEYS: Cell<u64> = const { Cell::new(0) };
}

/// How many rule keys this thread has computed (see `RULE_KEYS`).
pub fn rule_keys_computed() -> u64 {
    RULE_KEYS.with(Cell::get)
}

/// The duplicate-detection key of a validated rule.
pub fn rule_key(rule: &Rule) -> RuleKey {
    RULE_KEYS.with(|n| n.set(n.get() + 1));
    let remote = match &rule.remote {
        Remote::Any => RuleKeyRemote::Any,
        Remote::Prefix(net) => {
            let raw = rule
                .remote_ip_prefix_raw
                .as_deref()
                .and_then(|s| parse_cidr(s).ok())
                .unwrap_or(*net);
            if raw.prefix_len() == 0 {
                RuleKeyRemote::Any
            } else {
                RuleKeyRemote::Prefix(raw)
            }
        }
        Remote::Group(g) => RuleKeyRemote::Group(g.clone()),
        Remote::AddressGroup(g) => RuleKeyRemote::AddressGroup(g.clone()),
    };
    RuleKey {
        direction: rule.direction,
        ethertype: rule.ethertype,
        protocol: rule.neutron_protocol(),
        port_range_min: rule.port_range_min,
        port_range_max: rule.port_range_max,
        remote,
    }
}

/// A port bound value from a [`Scalar`]: an integer or a numeric string.
fn scalar_int(s: &Scalar) -> Result<i64, ErrorKind> {
    match s {
        Scalar::Int(n) => Ok(*n),
        Scalar::Str(t) => t
            .trim()
            .parse::<i64>()
            .map_err(|_| ErrorKind::NotAnInteger(format!("{t:?}"))),
    }
}

/// Check one rule's fields and references. `path` addresses the rule.
pub(super) fn check_rule(
    spec: &RuleSpec,
    path: &FieldPath,
    scope: &Scope<'_>,
    found: &mut Found,
) -> Option<Rule> {
    let before = found.len();

    let direction = match spec.direction.as_deref() {
        None => {
            found.push((path.key("direction"), ErrorKind::Missing));
            None
        }
        Some("ingress") => Some(Direction::Ingress),
        Some("egress") => Some(Direction::Egress),
        Some(other) => {
            found.push((
                path.key("direction"),
                ErrorKind::InvalidDirection(other.to_string()),
            ));
            None
        }
    };

    // `None` = invalid ethertype: family-dependent checks are skipped.
    let ethertype = match spec.ethertype.as_deref() {
        None => Some(EtherType::IPv4),
        Some(t) if t.eq_ignore_ascii_case("ipv4") => Some(EtherType::IPv4),
        Some(t) if t.eq_ignore_ascii_case("ipv6") => Some(EtherType::IPv6),
        Some(other) => {
            found.push((
                path.key("ethertype"),
                ErrorKind::InvalidEthertype(other.to_string()),
            ));
            None
        }
    };

    // Protocol as Neutron keys it: Ok(None) = any, Ok(Some(0)) = written as 0;
    // Err(()) = invalid (port checks skipped).
    let protocol: Result<Option<u8>, ()> = match &spec.protocol {
        None => Ok(None),
        Some(p) => {
            let input = match p {
                Scalar::Int(n) => ProtocolInput::Number(*n),
                Scalar::Str(s) => ProtocolInput::Text(s),
            };
            match protocol::parse_protocol_number(input, ethertype.unwrap_or(EtherType::IPv6)) {
                Ok(v) => Ok(v),
                Err(ProtocolError::Unknown) => {
                    found.push((
                        path.key("protocol"),
                        ErrorKind::InvalidProtocol(p.to_string()),
                    ));
                    Err(())
                }
                Err(ProtocolError::IPv6Only(n)) => {
                    found.push((
                        path.key("protocol"),
                        ErrorKind::IPv6OnlyProtocol(protocol::protocol_display(Some(n))),
                    ));
                    Err(())
                }
            }
        }
    };

    // Matching folds 0 into "any" (ports with protocol 0 are "ports without protocol").
    let protocol_zero = protocol == Ok(Some(0));
    let protocol = protocol.map(|p| p.filter(|&n| n != 0));
    let (port_range_min, port_range_max) = match protocol {
        Ok(p) => check_ports(spec, p, path, found),
        Err(()) => (None, None),
    };

    let remote = check_remote(spec, ethertype, path, scope, found);
    check_description(&spec.description, path, found);

    if found.len() != before {
        return None;
    }
    let (remote, raw) = remote?;
    Some(Rule {
        direction: direction?,
        ethertype: ethertype?,
        protocol: protocol.ok()?,
        protocol_zero,
        port_range_min,
        port_range_max,
        remote,
        remote_ip_prefix_raw: raw,
        description: spec.description.clone().unwrap_or_default(),
    })
}

/// §14-17: port range / ICMP type and code, for an already canonical protocol.
fn check_ports(
    spec: &RuleSpec,
    protocol: Option<u8>,
    path: &FieldPath,
    found: &mut Found,
) -> (Option<u16>, Option<u16>) {
    let min_path = path.key("port_range_min");
    let max_path = path.key("port_range_max");
    // Integer conversion first (a non-integer is an error whatever the protocol).
    let mut bad = false;
    let mut int_of = |s: &Option<Scalar>, p: &FieldPath, found: &mut Found| -> Option<i64> {
        let v = s.as_ref()?;
        match scalar_int(v) {
            Ok(n) => Some(n),
            Err(kind) => {
                found.push((p.clone(), kind));
                bad = true;
                None
            }
        }
    };
    let min = int_of(&spec.port_range_min, &min_path, found);
    let max = int_of(&spec.port_range_max, &max_path, found);
    if bad {
        return (None, None);
    }
    if min.is_none() && max.is_none() {
        return (None, None);
    }
    let Some(proto) = protocol else {
        let at = if min.is_some() { min_path } else { max_path };
        found.push((at, ErrorKind::PortsWithoutProtocol));
        return (None, None);
    };
    let proto_name = protocol::protocol_display(Some(proto));

    if protocol::has_ports(proto) {
        let mut valid = true;
        for (v, p) in [(min, &min_path), (max, &max_path)] {
            if let Some(v) = v {
                if !(1..=65535).contains(&v) {
                    found.push((
                        p.clone(),
                        ErrorKind::InvalidPort {
                            value: v.to_string(),
                            protocol: proto_name.clone(),
                        },
                    ));
                    valid = false;
                }
            }
        }
        match (min, max) {
            (Some(_), None) => {
                found.push((
                    max_path,
                    ErrorKind::IncompletePortRange {
                        given: "port_range_min",
                        missing: "port_range_max",
                        protocol: proto_name,
                    },
                ));
                (None, None)
            }
            (None, Some(_)) => {
                found.push((
                    min_path,
                    ErrorKind::IncompletePortRange {
                        given: "port_range_max",
                        missing: "port_range_min",
                        protocol: proto_name,
                    },
                ));
                (None, None)
            }
            (Some(lo), Some(hi)) if valid => {
                // Both in 1..=65535 here.
                let (lo, hi) = (lo as u16, hi as u16);
                if lo > hi {
                    found.push((min_path, ErrorKind::PortRangeInverted { min: lo, max: hi }));
                    (None, None)
                } else if lo == 1 && hi == 65535 {
                    (None, None)
                } else {
                    (Some(lo), Some(hi))
                }
            }
            _ => (None, None),
        }
    } else if protocol::is_icmp(proto) {
        let mut out = [None, None];
        for (i, (v, p, what)) in [(min, &min_path, "type"), (max, &max_path, "code")]
            .into_iter()
            .enumerate()
        {
            if let Some(v) = v {
                if (0..=255).contains(&v) {
                    out[i] = Some(v as u16);
                } else {
                    found.push((
                        p.clone(),
                        ErrorKind::InvalidIcmpValue {
                            what,
                            value: v.to_string(),
                        },
                    ));
                }
            }
        }
        if min.is_none() && max.is_some() {
            found.push((max_path, ErrorKind::IcmpCodeWithoutType));
            return (None, None);
        }
        (out[0], out[1])
    } else {
        let at = if min.is_some() { min_path } else { max_path };
        found.push((at, ErrorKind::PortsNotAllowed(proto_name)));
        (None, None)
    }
}

/// §18-19: the remote. Returns the remote and the raw prefix text.
fn check_remote(
    spec: &RuleSpec,
    ethertype: Option<EtherType>,
    path: &FieldPath,
    scope: &Scope<'_>,
    found: &mut Found,
) -> Option<(Remote, Option<String>)> {
    let given: Vec<&str> = [
        ("remote_ip_prefix", spec.remote_ip_prefix.is_some()),
        ("remote_group", spec.remote_group.is_some()),
        ("remote_address_group", spec.remote_address_group.is_some()),
    ]
    .iter()
    .filter(|(_, g)| *g)
    .map(|(k, _)| *k)
    .collect();
    if given.len() > 1 {
        found.push((path.key(given[1]), ErrorKind::MultipleRemotes));
    }
    let mut result = Some((Remote::Any, None));
    if let Some(text) = &spec.remote_ip_prefix {
        let p = path.key("remote_ip_prefix");
        match parse_cidr(text) {
            Err(reason) => {
                found.push((
                    p,
                    ErrorKind::InvalidCidr {
                        value: text.clone(),
                        reason,
                    },
                ));
                result = None;
            }
            Ok(net) => {
                if let Some(et) = ethertype {
                    if !family_matches(&net, et) {
                        found.push((
                            p,
                            ErrorKind::PrefixFamilyConflict {
                                ethertype: et.as_str().to_string(),
                                cidr: net.to_string(),
                            },
                        ));
                    }
                }
                result = Some((Remote::Prefix(net.trunc()), Some(net.to_string())));
            }
        }
    }
    if let Some(name) = &spec.remote_group {
        let p = path.key("remote_group");
        if name.is_empty() {
            found.push((p, ErrorKind::Empty));
        } else if !scope.groups.contains(name.as_str()) {
            found.push((p, ErrorKind::UnknownSecurityGroup(name.clone())));
        }
        if given[0] == "remote_group" {
            result = Some((Remote::Group(name.clone()), None));
        }
    }
    if let Some(name) = &spec.remote_address_group {
        let p = path.key("remote_address_group");
        if name.is_empty() {
            found.push((p, ErrorKind::Empty));
        } else if !scope.address_groups.contains(name.as_str()) {
            found.push((p, ErrorKind::UnknownAddressGroup(name.clone())));
        }
        if given[0] == "remote_address_group" {
            result = Some((Remote::AddressGroup(name.clone()), None));
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::validate::defaults::allow_all;

    #[test]
    fn key_treats_zero_prefix_as_any_and_keeps_host_bits() {
        let mut r = allow_all(Direction::Ingress, EtherType::IPv4, Remote::Any);
        let any = rule_key(&r);
        r.remote = Remote::Prefix("0.0.0.0/0".parse().unwrap());
        r.remote_ip_prefix_raw = Some("0.0.0.0/0".into());
        assert_eq!(rule_key(&r), any);
        r.remote = Remote::Prefix("10.0.0.0/24".parse().unwrap());
        r.remote_ip_prefix_raw = Some("10.0.0.7/24".into());
        let host = rule_key(&r);
        r.remote_ip_prefix_raw = Some("10.0.0.0/24".into());
        assert_ne!(rule_key(&r), host);
        // The description never matters.
        let mut d = r.clone();
        d.description = "x".into();
        assert_eq!(rule_key(&d), rule_key(&r));
    }
}
