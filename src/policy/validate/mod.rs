//! Neutron validation: from a [`ModelSpec`] (what the user wrote) to a [`Model`] whose
//! invariants later stages rely on (see the [`super`] module doc).
//!
//! # What is checked (security-groups.md §1-3, §22, §32)
//! * rules (§10-20): direction, ethertype (case-insensitive, default IPv4), protocol
//!   (see [`super::protocol`]), port ranges (ports for tcp/udp/sctp/dccp/udplite, ICMP
//!   type/code for icmp/ipv6-icmp, nothing for other protocols, 1..65535 canonicalised to
//!   "all ports"), remote_ip_prefix (bare address → host prefix, host bits kept in
//!   `remote_ip_prefix_raw`, normalised network in `Remote::Prefix`, family must match
//!   the ethertype), at most one remote, remote groups / address groups must exist,
//!   duplicates inside a group (Neutron's `_rule_to_key`);
//! * groups (§7-9, §21): unique non-empty names, `default` reserved in every spelling but
//!   the exact one, template rules, the implicit `default` group;
//! * address groups: unique names, CIDRs (stored normalised), no address twice;
//! * ports (§22, §32): unique names, unicast non-zero MAC unique per network, fixed IPs
//!   (bare unicast addresses, unique per network), groups exist and are listed once, no
//!   mix of stateful and stateless groups, no groups and no allowed address pairs without
//!   port security, address pairs (CIDR, optional MAC, no duplicates), backends
//!   (interface name syntax, one port per interface, AF_XDP mode);
//! * packet-logging objects (Neutron's `logging` extension): event, names, the group and
//!   port they name exist (see `logs` for the group/port rule checked only on creation);
//! * switch-wide settings: permitted ethertypes, conntrack limits;
//! * the overlay (`overlay`): network VNIs and encapsulations, hosts and their VTEPs,
//!   this switch's host name;
//! * names and descriptions: at most 255 characters (Neutron's attribute limits).
//!
//! Every problem is reported (not only the first), each with a [`FieldPath`] into the
//! spec, the group / rule / port it concerns and a typed [`ErrorKind`].
//!
//! # Decisions where Neutron is ambiguous or has no equivalent
//! * Protocol `0` matches like "any" (§11 recommendation), but as in Neutron (which
//!   stores `"0"`, not null) a `0` rule and an otherwise identical `any` rule are two
//!   different rules; `0`, `"0"`, `ip` and `hopopt` are one protocol in the key.
//! * A `/0` prefix is "any address of the family" in the duplicate key (Neutron compares
//!   the strings `0.0.0.0/0`, `::/0` and null; `10.0.0.7/0` is treated the same way).
//! * Two rules whose prefixes differ only in host bits (`10.0.0.7/24`, `10.0.0.0/24`)
//!   are *not* duplicates, as in Neutron (the key holds the prefix as written).
//! * Names (groups, address groups, ports) are the identifiers, so they must be unique
//!   and non-empty; Neutron uses UUIDs and only reserves `default`.
//! * Address-group CIDRs and allowed-address-pair CIDRs are stored normalised (host bits
//!   cleared): enforcement only ever uses the network.
//!
//! # API use
//! [`validate_rule`] checks one new rule against an existing model (the Neutron
//! `POST /security-group-rules` case: field checks, references, duplicates within the
//! target group), [`RuleBatch`] many (a bulk create, in time linear in the rules);
//! [`validate_group`], [`validate_port`] and [`validate_log`] do the same
//! for a new security group, port and packet log. All of them leave the model untouched.
//!
//! # Layout
//! This file is the driver: the order of the checks, the names every object may refer
//! to (`Scope`), attaching group / rule / port context to findings, building the
//! [`Model`], and the single-object entry points for the API. The checks themselves:
//! * `rules`: one rule's fields, and the duplicate key [`rule_key`];
//! * `groups`: one security group (its rules, template rules, duplicates) and one
//!   address group;
//! * `ports`: one port against the ports before it;
//! * `logs`: one packet-logging object, and the rule between its group and port;
//! * `settings`: permitted ethertypes and conntrack limits;
//! * `overlay`: VNIs, encapsulations, hosts (see its decisions);
//! * `defaults`: Neutron's default group, template rules and default network;
//! * `addresses`: MAC, CIDR and fixed-IP parsing.
//!
//! A submodule checks one object and pushes `(FieldPath, ErrorKind)` findings; only the
//! driver turns them into [`ValidationError`]s and decides what enters the model.
//!
//! Owns: the order of the checks, the rules across objects (unique names, references,
//! the implicit `default` group), the context of every error, and what enters the
//! model. May not touch: I/O, Neutron ids, or anything after validation (compiling, the
//! store). Depends on the rest of `policy` only ([`super::spec`], [`super::error`],
//! [`super::protocol`] through `rules`, the model types); no other sgswitch module.

use std::collections::{HashMap, HashSet};

use super::error::{ErrorKind, FieldPath, ValidationError, ValidationErrors};
use super::spec::{LogSpec, ModelSpec, PortSpec, RuleSpec, SecurityGroupSpec};
use super::{Model, Network, NetworkLog, Port, Rule, SecurityGroup};

mod addresses;
mod defaults;
mod groups;
mod logs;
mod overlay;
mod ports;
mod rules;
mod settings;

pub use addresses::{check_port_mac, parse_cidr};
pub use defaults::{
    default_group, default_group_rules, template_rules, DEFAULT_GROUP, DEFAULT_GROUP_DESCRIPTION,
    DEFAULT_NETWORK,
};
pub use logs::{log_target_errors, parse_log_event};
pub use overlay::parse_vtep;
pub use ports::{check_host, check_ifname};
pub use rules::{rule_key, rule_keys_computed, RuleKey, RuleKeyRemote};
pub use settings::{
    MAX_CONNTRACK_CAPACITY, MAX_FRAGMENT_TIMEOUT_SECS, MAX_PENDING_FRAGMENTS, MAX_TIMEOUT_SECS,
};

use groups::{check_address_group, check_group};
use logs::{check_log, target_error};
use ports::{check_port, PortRegistry};
use rules::check_rule;
use settings::{check_conntrack, check_permitted_ethertypes};

/// Longest accepted name, in characters (Neutron's `NAME_MAX_LEN`).
pub const MAX_NAME_LEN: usize = 255;
/// Longest accepted description, in characters (Neutron's `DESCRIPTION_MAX_LEN`).
pub const MAX_DESCRIPTION_LEN: usize = 255;

/// Errors found while checking one object, before its context is attached.
type Found = Vec<(FieldPath, ErrorKind)>;

/// The names a rule may refer to.
struct Scope<'a> {
    groups: HashSet<&'a str>,
    address_groups: HashSet<&'a str>,
}

/// Check a name field: present and not empty.
fn check_name<'a>(
    name: &'a Option<String>,
    path: &FieldPath,
    found: &mut Found,
) -> Option<&'a str> {
    match name.as_deref() {
        None => {
            found.push((path.key("name"), ErrorKind::Missing));
            None
        }
        Some(n) if n.trim().is_empty() => {
            found.push((path.key("name"), ErrorKind::Empty));
            None
        }
        Some(n) if n.chars().count() > MAX_NAME_LEN => {
            found.push((path.key("name"), ErrorKind::TooLong { max: MAX_NAME_LEN }));
            None
        }
        Some(n) => Some(n),
    }
}

/// Check an optional description (Neutron: at most 255 characters).
fn check_description(description: &Option<String>, path: &FieldPath, found: &mut Found) {
    if description
        .as_ref()
        .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_LEN)
    {
        found.push((
            path.key("description"),
            ErrorKind::TooLong {
                max: MAX_DESCRIPTION_LEN,
            },
        ));
    }
}

/// Attach object context to raw findings.
fn attach(
    found: Found,
    group: Option<&str>,
    rule: Option<usize>,
    port: Option<&str>,
    address_group: Option<&str>,
    out: &mut Vec<ValidationError>,
) {
    for (path, kind) in found {
        out.push(ValidationError {
            path,
            group: group.map(str::to_string),
            rule,
            port: port.map(str::to_string),
            address_group: address_group.map(str::to_string),
            kind,
        });
    }
}

/// Validate a whole model: every problem is reported.
pub fn validate_model(spec: &ModelSpec) -> Result<Model, ValidationErrors> {
    validate_model_with(spec, &mut GroupMemo::default())
}

/// The groups a previous validation accepted, by name, with the spec each came from: a
/// host agent validates its whole model on every change, and most of its groups did not
/// change. A group whose spec is equal to the remembered one, and whose rules' remote
/// groups and address groups all still exist, validates to the remembered group (a
/// group's validation reads nothing else of the model); any other group is checked in
/// full. Only groups without errors are remembered.
#[derive(Default, Debug)]
pub struct GroupMemo {
    groups: HashMap<String, (SecurityGroupSpec, SecurityGroup)>,
}

impl GroupMemo {
    /// Take the remembered group for `spec` out of `old` if it still holds.
    fn take(
        old: &mut HashMap<String, (SecurityGroupSpec, SecurityGroup)>,
        spec: &SecurityGroupSpec,
        scope: &Scope<'_>,
    ) -> Option<(SecurityGroupSpec, SecurityGroup)> {
        let (s, g) = old.remove(spec.name.as_deref()?)?;
        let in_scope = |r: &Rule| match &r.remote {
            super::Remote::Group(n) => scope.groups.contains(n.as_str()),
            super::Remote::AddressGroup(n) => scope.address_groups.contains(n.as_str()),
            super::Remote::Any | super::Remote::Prefix(_) => true,
        };
        (s == *spec && g.rules.iter().all(in_scope)).then_some((s, g))
    }
}

/// [`validate_model`], reusing the groups `memo` remembers and remembering this model's
/// (the same answer as `validate_model`, cheaper when few groups changed).
pub fn validate_model_with(
    spec: &ModelSpec,
    memo: &mut GroupMemo,
) -> Result<Model, ValidationErrors> {
    let mut errors = Vec::new();
    let root = FieldPath::root();

    // Address groups.
    let mut address_groups = Vec::new();
    let mut ag_names: HashMap<&str, usize> = HashMap::new();
    for (i, ag) in spec.address_groups.iter().enumerate() {
        let path = root.key("address_groups").index(i);
        let mut found = Found::new();
        let name = check_name(&ag.name, &path, &mut found);
        if let Some(n) = name {
            if let Some(&first) = ag_names.get(n) {
                found.push((
                    path.key("name"),
                    ErrorKind::DuplicateAddressGroupName {
                        name: n.to_string(),
                        first,
                    },
                ));
            } else {
                ag_names.insert(n, i);
            }
        }
        let group = check_address_group(ag, name, &path, &mut found);
        attach(found, None, None, None, name, &mut errors);
        if let Some(g) = group {
            address_groups.push(g);
        }
    }

    // Security-group names first: rules may refer to groups declared later.
    let mut sg_names: HashMap<&str, usize> = HashMap::new();
    let mut sg_name_ok = vec![false; spec.security_groups.len()];
    for (i, sg) in spec.security_groups.iter().enumerate() {
        let path = root.key("security_groups").index(i);
        let mut found = Found::new();
        if let Some(n) = check_name(&sg.name, &path, &mut found) {
            if n != DEFAULT_GROUP && n.eq_ignore_ascii_case(DEFAULT_GROUP) {
                found.push((
                    path.key("name"),
                    ErrorKind::ReservedDefaultName(n.to_string()),
                ));
            } else if let Some(&first) = sg_names.get(n) {
                found.push((
                    path.key("name"),
                    ErrorKind::DuplicateGroupName {
                        name: n.to_string(),
                        first,
                    },
                ));
            } else {
                sg_names.insert(n, i);
                sg_name_ok[i] = true;
            }
        }
        attach(found, sg.name.as_deref(), None, None, None, &mut errors);
    }
    let has_declared_default = sg_names.contains_key(DEFAULT_GROUP);

    let mut scope = Scope {
        groups: sg_names.keys().copied().collect(),
        address_groups: ag_names.keys().copied().collect(),
    };
    scope.groups.insert(DEFAULT_GROUP);

    let mut security_groups = Vec::new();
    let mut old = std::mem::take(&mut memo.groups);
    for (i, sg) in spec.security_groups.iter().enumerate() {
        let checked = match GroupMemo::take(&mut old, sg, &scope) {
            Some(hit) => Some(hit),
            None => {
                let path = root.key("security_groups").index(i);
                let before = errors.len();
                let g = check_group(sg, &path, &scope, &mut errors);
                g.filter(|_| errors.len() == before)
                    .map(|g| (sg.clone(), g))
            }
        };
        if let Some((s, g)) = checked {
            if sg_name_ok[i] {
                security_groups.push(g.clone());
                memo.groups.insert(g.name.clone(), (s, g));
            }
        }
    }
    if !has_declared_default {
        security_groups.push(default_group());
    }

    // Networks: declared ones, then those of the ports.
    let mut networks: Vec<Network> = Vec::new();
    let mut net_names: HashMap<&str, usize> = HashMap::new();
    for (i, n) in spec.networks.iter().enumerate() {
        let path = root.key("networks").index(i);
        let mut found = Found::new();
        if let Some(name) = check_name(&n.name, &path, &mut found) {
            if let Some(&first) = net_names.get(name) {
                found.push((
                    path.key("name"),
                    ErrorKind::DuplicateNetworkName {
                        name: name.to_string(),
                        first,
                    },
                ));
            } else {
                net_names.insert(name, i);
                let (vni, encap) = overlay::check_network_overlay(n, &path, &mut found);
                networks.push(Network {
                    name: name.to_string(),
                    vni,
                    encap,
                });
            }
        }
        attach(found, None, None, None, None, &mut errors);
    }

    // Ports, each against those before it. Statefulness comes from the declarations, so
    // that a group with an invalid rule still takes part in the mixing check.
    let mut stateful_by_name: HashMap<&str, bool> = HashMap::new();
    for (i, sg) in spec.security_groups.iter().enumerate() {
        if let (true, Some(n)) = (sg_name_ok[i], sg.name.as_deref()) {
            stateful_by_name.insert(n, sg.stateful.unwrap_or(true));
        }
    }
    stateful_by_name.entry(DEFAULT_GROUP).or_insert(true);
    let mut registry = PortRegistry::default();
    let mut ports = Vec::new();
    for (i, p) in spec.ports.iter().enumerate() {
        let path = root.key("ports").index(i);
        let mut found = Found::new();
        let port = check_port(
            p,
            i,
            &path,
            &stateful_by_name,
            &scope,
            &mut registry,
            &mut found,
        );
        attach(found, None, None, p.name.as_deref(), None, &mut errors);
        if let Some(port) = port {
            ports.push(port);
        }
    }
    for p in &ports {
        if !networks.iter().any(|n| n.name == p.network) {
            networks.push(Network {
                name: p.network.clone(),
                ..Network::default()
            });
        }
    }

    // Packet logs, against the declared groups and ports (a port with an error of its
    // own is not reported again as missing).
    let port_names: HashSet<&str> = spec
        .ports
        .iter()
        .filter_map(|p| p.name.as_deref())
        .collect();
    let mut logs = Vec::new();
    for (i, l) in spec.logs.iter().enumerate() {
        let path = root.key("logs").index(i);
        let mut found = Found::new();
        let log = check_log(l, &path, &scope.groups, &port_names, &mut found);
        attach(found, None, None, None, None, &mut errors);
        logs.extend(log);
    }

    // Switch-wide settings.
    let mut found = Found::new();
    check_permitted_ethertypes(
        &spec.permitted_ethertypes,
        &root.key("permitted_ethertypes"),
        &mut found,
    );
    check_conntrack(&spec.conntrack, &root.key("conntrack"), &mut found);
    attach(found, None, None, None, None, &mut errors);

    // The overlay: hosts, this host's name, unique VNIs when the overlay is in use.
    let mut found = Found::new();
    let hosts = overlay::check_hosts(&spec.hosts, &root, &mut found);
    overlay::check_local_host(&spec.local_host, &root, &mut found);
    attach(found, None, None, None, None, &mut errors);
    for (i, p) in spec.ports.iter().enumerate() {
        let mut found = Found::new();
        overlay::check_remote_backend(
            p,
            spec.local_host.as_deref(),
            &root.key("ports").index(i),
            &mut found,
        );
        attach(found, None, None, p.name.as_deref(), None, &mut errors);
    }
    let mut found = Found::new();
    if !spec.hosts.is_empty() || spec.local_host.is_some() {
        overlay::check_vnis_unique(&networks, &net_names, &root, &mut found);
    }
    attach(found, None, None, None, None, &mut errors);

    if !errors.is_empty() {
        return Err(ValidationErrors(errors));
    }
    Ok(Model {
        security_groups,
        address_groups,
        ports,
        networks,
        permitted_ethertypes: spec.permitted_ethertypes.clone(),
        conntrack: spec.conntrack.clone(),
        logs,
        remote_members: Default::default(),
        hosts,
        local_host: spec.local_host.clone(),
    })
}

fn model_scope(model: &Model) -> Scope<'_> {
    let mut groups: HashSet<&str> = model
        .security_groups
        .iter()
        .map(|g| g.name.as_str())
        .collect();
    groups.insert(DEFAULT_GROUP);
    Scope {
        groups,
        address_groups: model
            .address_groups
            .iter()
            .map(|g| g.name.as_str())
            .collect(),
    }
}

/// Validate one new rule for the existing group `group` of `model` (the API's
/// "create security group rule"): field checks, references to groups and address groups
/// of `model`, and duplicates among the group's rules. Error paths address the rule as
/// `security_groups[G].rules[N]` with `N` the position it would get. One rule of a
/// [`RuleBatch`].
pub fn validate_rule(
    model: &Model,
    group: &str,
    spec: &RuleSpec,
) -> Result<Rule, ValidationErrors> {
    let Some(gi) = model.security_groups.iter().position(|g| g.name == group) else {
        return Err(ValidationError::new(
            FieldPath::root().key("security_groups"),
            ErrorKind::UnknownSecurityGroup(group.to_string()),
        )
        .into());
    };
    RuleBatch::new(model).check(gi, spec)
}

/// New rules checked against one model (the API's bulk "create security group rules"),
/// each as if the rules accepted before it had been appended to their groups: field
/// checks, references, and duplicates among a group's rules and the batch's. The names
/// rules may refer to are collected once, and a group's duplicate keys are hashed the
/// first time a rule goes to it, so N new rules for groups of M rules cost O(N + M)
/// key computations, not O(N × M). The model is not changed: the caller appends the
/// accepted rules, in order.
pub struct RuleBatch<'m> {
    model: &'m Model,
    scope: Scope<'m>,
    /// Per group index: each rule key of the group (its rules, then the batch's accepted
    /// ones) with the position of its first rule, and the group's length so far.
    groups: HashMap<usize, (HashMap<RuleKey, usize>, usize)>,
}

impl<'m> RuleBatch<'m> {
    /// A batch against `model` (collects the names in scope: O(groups + address groups)).
    pub fn new(model: &'m Model) -> RuleBatch<'m> {
        RuleBatch {
            model,
            scope: model_scope(model),
            groups: HashMap::new(),
        }
    }

    /// Validate one new rule for the group at index `gi` of the model (which must
    /// exist). Accepted, it counts for the duplicate checks of the rules after it; a
    /// duplicate of an earlier rule of the batch names that rule's position (at or
    /// beyond the group's length in the model).
    pub fn check(&mut self, gi: usize, spec: &RuleSpec) -> Result<Rule, ValidationErrors> {
        let sg = &self.model.security_groups[gi];
        let (keys, len) = self.groups.entry(gi).or_insert_with(|| {
            let mut keys = HashMap::with_capacity(sg.rules.len());
            for (i, r) in sg.rules.iter().enumerate() {
                keys.entry(rule_key(r)).or_insert(i);
            }
            (keys, sg.rules.len())
        });
        let position = *len;
        let path = FieldPath::root()
            .key("security_groups")
            .index(gi)
            .key("rules")
            .index(position);
        let mut found = Found::new();
        let rule = check_rule(spec, &path, &self.scope, &mut found);
        let key = rule.as_ref().map(rule_key);
        if let Some(first) = key.as_ref().and_then(|k| keys.get(k)) {
            found.push((path, ErrorKind::DuplicateRule { first: *first }));
        }
        let mut errors = Vec::new();
        attach(
            found,
            Some(&sg.name),
            Some(position),
            None,
            None,
            &mut errors,
        );
        match (rule, key) {
            (Some(r), Some(k)) if errors.is_empty() => {
                keys.insert(k, position);
                *len += 1;
                Ok(r)
            }
            _ => Err(ValidationErrors(errors)),
        }
    }
}

/// Validate one new port against `model` (the API's "create port"): its own fields,
/// references, and conflicts (name, MAC and IPs per network, interface) with the
/// model's ports. Error paths address it as `ports[N]`, `N` = number of ports.
pub fn validate_port(model: &Model, spec: &PortSpec) -> Result<Port, ValidationErrors> {
    let index = model.ports.len();
    let path = FieldPath::root().key("ports").index(index);
    let stateful_by_name: HashMap<&str, bool> = model
        .security_groups
        .iter()
        .map(|g| (g.name.as_str(), g.stateful))
        .collect();
    let scope = model_scope(model);
    let mut registry = PortRegistry::from_model(model);
    let mut found = Found::new();
    let port = check_port(
        spec,
        index,
        &path,
        &stateful_by_name,
        &scope,
        &mut registry,
        &mut found,
    );
    let mut errors = Vec::new();
    attach(found, None, None, spec.name.as_deref(), None, &mut errors);
    match port {
        Some(p) if errors.is_empty() => Ok(p),
        _ => Err(ValidationErrors(errors)),
    }
}

/// Validate one new security group against `model` (the API's "create security
/// group"): name (unique, not a second `default`), description, and its rules (or the
/// template rules when `rules` is `None`). Rules may refer to the group itself. Error
/// paths address it as `security_groups[N]`, `N` = number of groups.
pub fn validate_group(
    model: &Model,
    spec: &SecurityGroupSpec,
) -> Result<SecurityGroup, ValidationErrors> {
    let index = model.security_groups.len();
    let path = FieldPath::root().key("security_groups").index(index);
    let mut found = Found::new();
    if let Some(n) = check_name(&spec.name, &path, &mut found) {
        if n.eq_ignore_ascii_case(DEFAULT_GROUP) && n != DEFAULT_GROUP {
            found.push((
                path.key("name"),
                ErrorKind::ReservedDefaultName(n.to_string()),
            ));
        } else if let Some(first) = model.security_groups.iter().position(|g| g.name == n) {
            found.push((
                path.key("name"),
                ErrorKind::DuplicateGroupName {
                    name: n.to_string(),
                    first,
                },
            ));
        }
    }
    let mut errors = Vec::new();
    attach(found, spec.name.as_deref(), None, None, None, &mut errors);
    let mut scope = model_scope(model);
    if let Some(n) = spec.name.as_deref() {
        scope.groups.insert(n);
    }
    let group = check_group(spec, &path, &scope, &mut errors);
    match group {
        Some(g) if errors.is_empty() => Ok(g),
        _ => Err(ValidationErrors(errors)),
    }
}

/// Check again group `spec`, which replaces `model.security_groups[index]` with the same
/// name and statefulness (a host agent's rule change, `control::shared::incremental`), as
/// [`validate_model_with`] checks a group: against the model's group and address-group
/// names, errors at `security_groups[index]`. A group's validation reads nothing else of
/// the model, and with its name and statefulness unchanged no model-wide check (names,
/// ports' stateful mixing) can change: so this is the whole difference a full
/// validation of the changed model would find.
pub fn revalidate_group(
    model: &Model,
    index: usize,
    spec: &SecurityGroupSpec,
) -> Result<SecurityGroup, ValidationErrors> {
    let path = FieldPath::root().key("security_groups").index(index);
    let scope = model_scope(model);
    let mut errors = Vec::new();
    match check_group(spec, &path, &scope, &mut errors) {
        Some(g) if errors.is_empty() => Ok(g),
        _ => Err(ValidationErrors(errors)),
    }
}

/// Validate one new packet log against `model` (the API's "create log"): its fields,
/// that its group and port exist, and that the port uses the group (see `logs`). Error
/// paths address it as `logs[N]`, `N` = number of logs.
pub fn validate_log(model: &Model, spec: &LogSpec) -> Result<NetworkLog, ValidationErrors> {
    let path = FieldPath::root().key("logs").index(model.logs.len());
    let groups: HashSet<&str> = model
        .security_groups
        .iter()
        .map(|g| g.name.as_str())
        .collect();
    let ports: HashSet<&str> = model.ports.iter().map(|p| p.name.as_str()).collect();
    let mut found = Found::new();
    let log = check_log(spec, &path, &groups, &ports, &mut found);
    if let Some(kind) = log.as_ref().and_then(|l| target_error(model, l)) {
        found.push((path.key("target"), kind));
    }
    let mut errors = Vec::new();
    attach(found, None, None, None, None, &mut errors);
    match log {
        Some(l) if errors.is_empty() => Ok(l),
        _ => Err(ValidationErrors(errors)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Remote;

    #[test]
    fn validate_group_against_a_model() {
        let model = validate_model(&ModelSpec::default()).unwrap();
        let spec = SecurityGroupSpec {
            name: Some("web".into()),
            rules: Some(vec![RuleSpec {
                direction: Some("ingress".into()),
                remote_group: Some("web".into()),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let g = validate_group(&model, &spec).unwrap();
        assert_eq!(g.rules[0].remote, Remote::Group("web".into()));
        assert!(g.stateful);
        let dup = SecurityGroupSpec {
            name: Some("default".into()),
            ..Default::default()
        };
        let e = validate_group(&model, &dup).unwrap_err();
        assert_eq!(e.class(), crate::policy::ErrorClass::Conflict);
        assert_eq!(e.errors()[0].path.to_string(), "security_groups[1].name");
        let long = SecurityGroupSpec {
            name: Some("x".repeat(256)),
            description: Some("d".repeat(256)),
            ..Default::default()
        };
        let e = validate_group(&model, &long).unwrap_err();
        assert_eq!(e.len(), 2, "{e}");
        assert!(e
            .errors()
            .iter()
            .all(|e| e.kind == ErrorKind::TooLong { max: 255 }));
        // 255 characters (not bytes) of description are fine.
        let ok = SecurityGroupSpec {
            name: Some("ok".into()),
            description: Some("é".repeat(255)),
            ..Default::default()
        };
        assert_eq!(validate_group(&model, &ok).unwrap().rules.len(), 2);
    }

    /// `validate_model_with` gives `validate_model`'s answer whatever the memo holds:
    /// along a sequence of edits (a rule changed, a referenced group or address group
    /// removed and back, a group renamed, a bad rule), with one memo carried through.
    #[test]
    fn memo_gives_the_same_answer() {
        let rule = |port: i64, remote_group: Option<&str>, ag: Option<&str>| RuleSpec {
            direction: Some("ingress".into()),
            protocol: Some(crate::policy::spec::Scalar::Str("tcp".into())),
            port_range_min: Some(crate::policy::spec::Scalar::Int(port)),
            port_range_max: Some(crate::policy::spec::Scalar::Int(port)),
            remote_group: remote_group.map(String::from),
            remote_address_group: ag.map(String::from),
            ..Default::default()
        };
        let group = |name: &str, rules: Vec<RuleSpec>| SecurityGroupSpec {
            name: Some(name.into()),
            rules: Some(rules),
            ..Default::default()
        };
        let base = ModelSpec {
            security_groups: vec![
                group(
                    "web",
                    vec![rule(80, None, None), rule(443, Some("db"), None)],
                ),
                group(
                    "db",
                    vec![
                        rule(5432, Some("web"), None),
                        rule(22, None, Some("admins")),
                    ],
                ),
            ],
            address_groups: vec![crate::policy::spec::AddressGroupSpec {
                name: Some("admins".into()),
                addresses: vec!["10.0.0.0/8".into()],
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut steps = vec![base.clone()];
        let mut s = base.clone();
        s.security_groups[0].rules.as_mut().unwrap()[0] = rule(8080, None, None);
        steps.push(s.clone());
        s.security_groups.remove(1); // "web" refers to the missing "db" now
        steps.push(s.clone());
        steps.push(base.clone());
        let mut s2 = base.clone();
        s2.address_groups.clear(); // "db" refers to the missing "admins"
        steps.push(s2);
        steps.push(base.clone());
        let mut s3 = base.clone();
        s3.security_groups[1].name = Some("db2".into());
        steps.push(s3);
        let mut s4 = base.clone();
        s4.security_groups[0].rules.as_mut().unwrap()[0] = rule(70000, None, None);
        steps.push(s4);
        steps.push(base);
        let mut memo = GroupMemo::default();
        let mut errors_seen = 0;
        for (k, spec) in steps.iter().enumerate() {
            let fresh = validate_model(spec);
            let memoized = validate_model_with(spec, &mut memo);
            errors_seen += usize::from(fresh.is_err());
            if k == 0 {
                assert!(fresh.is_ok(), "{fresh:?}");
            }
            assert_eq!(fresh, memoized, "step {k}");
        }
        assert_eq!(errors_seen, 4, "the steps that must fail did");
        assert_eq!(
            memo.groups.len(),
            2,
            "the last model's groups are remembered"
        );
    }
}
