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
//! * switch-wide settings: permitted ethertypes, conntrack limits;
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
//! target group); [`validate_group`] and [`validate_port`] do the same for a new
//! security group and a new port. All three leave the model untouched.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;

use super::error::{ErrorKind, FieldPath, ValidationError, ValidationErrors};
use super::protocol::{self, ProtocolError, ProtocolInput};
use super::spec::{
    AddressGroupSpec, AllowedAddressPairSpec, BackendSpec, ModelSpec, PortSpec, RuleSpec, Scalar,
    SecurityGroupSpec,
};
use super::{
    AddressGroup, AllowedAddressPair, Backend, ConntrackSettings, Direction, EtherType, Mac, Model,
    Network, Port, Remote, Rule, SecurityGroup,
};

/// Name of the default security group.
pub const DEFAULT_GROUP: &str = "default";
/// Description given to the default security group when none is written.
pub const DEFAULT_GROUP_DESCRIPTION: &str = "Default security group";
/// Network of a port that names none.
pub const DEFAULT_NETWORK: &str = "default";

/// Longest accepted name, in characters (Neutron's `NAME_MAX_LEN`).
pub const MAX_NAME_LEN: usize = 255;
/// Longest accepted description, in characters (Neutron's `DESCRIPTION_MAX_LEN`).
pub const MAX_DESCRIPTION_LEN: usize = 255;

/// Largest accepted conntrack capacity (entries per worker).
pub const MAX_CONNTRACK_CAPACITY: usize = 1 << 30;
/// Largest accepted conntrack timeout, in seconds (one year).
pub const MAX_TIMEOUT_SECS: u64 = 31_536_000;
/// Largest accepted fragment timeout, in seconds.
pub const MAX_FRAGMENT_TIMEOUT_SECS: u64 = 3_600;
/// Largest accepted number of pending fragments.
pub const MAX_PENDING_FRAGMENTS: usize = 1 << 20;

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

/// The duplicate-detection key of a validated rule.
pub fn rule_key(rule: &Rule) -> RuleKey {
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

/// A rule allowing everything in `direction` for `ethertype`, optionally from/to a
/// remote group.
fn allow_all(direction: Direction, ethertype: EtherType, remote: Remote) -> Rule {
    Rule {
        direction,
        ethertype,
        protocol: None,
        protocol_zero: false,
        port_range_min: None,
        port_range_max: None,
        remote,
        remote_ip_prefix_raw: None,
        description: String::new(),
    }
}

/// The rules every new security group gets (§8): egress IPv4 any, egress IPv6 any.
pub fn template_rules() -> Vec<Rule> {
    vec![
        allow_all(Direction::Egress, EtherType::IPv4, Remote::Any),
        allow_all(Direction::Egress, EtherType::IPv6, Remote::Any),
    ]
}

/// The rules of the `default` group (§8): the template rules plus ingress IPv4 / IPv6
/// from members of `default` itself.
pub fn default_group_rules() -> Vec<Rule> {
    let mut rules = template_rules();
    for et in [EtherType::IPv4, EtherType::IPv6] {
        rules.push(allow_all(
            Direction::Ingress,
            et,
            Remote::Group(DEFAULT_GROUP.to_string()),
        ));
    }
    rules
}

/// The implicit `default` group of a model that declares none.
pub fn default_group() -> SecurityGroup {
    SecurityGroup {
        name: DEFAULT_GROUP.to_string(),
        description: DEFAULT_GROUP_DESCRIPTION.to_string(),
        stateful: true,
        rules: default_group_rules(),
    }
}

/// Parse a MAC address `aa:bb:cc:dd:ee:ff` (or with `-`), case-insensitive.
/// Returns the reason on failure. Any unicast or multicast value is returned; see
/// [`check_port_mac`] for what a port may use.
pub fn parse_mac(text: &str) -> Result<Mac, &'static str> {
    const SHAPE: &str = "expected six hex octets like fa:16:3e:00:00:01";
    let bytes = text.as_bytes();
    if bytes.len() != 17 {
        return Err(SHAPE);
    }
    let sep = bytes[2];
    if sep != b':' && sep != b'-' {
        return Err(SHAPE);
    }
    let mut mac = [0u8; 6];
    for (i, octet) in mac.iter_mut().enumerate() {
        let at = i * 3;
        if i > 0 && bytes[at - 1] != sep {
            return Err(SHAPE);
        }
        let pair = text.get(at..at + 2).ok_or(SHAPE)?;
        if !pair.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SHAPE);
        }
        *octet = u8::from_str_radix(pair, 16).map_err(|_| SHAPE)?;
    }
    Ok(mac)
}

/// Check that a MAC may be assigned to a port (or an allowed address pair): not
/// multicast / broadcast, not all zeros.
pub fn check_port_mac(mac: &Mac) -> Result<(), &'static str> {
    if mac[0] & 1 != 0 {
        return Err("multicast and broadcast addresses cannot be assigned to a port");
    }
    if mac == &[0u8; 6] {
        return Err("the all-zero address cannot be assigned to a port");
    }
    Ok(())
}

/// Format a MAC as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &Mac) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
    )
}

/// Parse a CIDR the Neutron way: `a.b.c.d/n`, `x::y/n`, or a bare address (→ /32 or
/// /128). Host bits are kept (call `trunc()` for the network). Returns the reason on
/// failure.
pub fn parse_cidr(text: &str) -> Result<IpNet, String> {
    let t = text.trim();
    if t != text {
        return Err("leading or trailing whitespace".to_string());
    }
    if t.contains('/') {
        t.parse::<IpNet>().map_err(|_| {
            "expected an IPv4 or IPv6 network such as 10.0.0.0/24 or 2001:db8::/64 (prefix length up to 32 / 128)"
                .to_string()
        })
    } else {
        t.parse::<IpAddr>()
            .map(IpNet::from)
            .map_err(|_| "expected an IPv4 or IPv6 address or network".to_string())
    }
}

/// Parse a port's fixed IP: a bare unicast address.
fn parse_fixed_ip(text: &str) -> Result<IpAddr, String> {
    if text.contains('/') {
        return Err("expected an address without prefix length".to_string());
    }
    let ip: IpAddr = text
        .parse()
        .map_err(|_| "expected an IPv4 or IPv6 address".to_string())?;
    if ip.is_unspecified() {
        return Err("the unspecified address cannot be assigned to a port".to_string());
    }
    if ip.is_multicast() {
        return Err("a multicast address cannot be assigned to a port".to_string());
    }
    if let IpAddr::V4(v4) = ip {
        if v4.is_broadcast() {
            return Err("the broadcast address cannot be assigned to a port".to_string());
        }
    }
    Ok(ip)
}

/// Check a network interface name (Linux rules: 1..15 bytes, no '/', no whitespace,
/// not "." or "..").
pub fn check_ifname(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("must not be empty");
    }
    if name.len() > 15 {
        return Err("longer than 15 bytes");
    }
    if name == "." || name == ".." {
        return Err("reserved name");
    }
    if name
        .bytes()
        .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err("contains '/', ':', whitespace or a control character");
    }
    Ok(())
}

fn ethertype_name(et: EtherType) -> &'static str {
    match et {
        EtherType::IPv4 => "IPv4",
        EtherType::IPv6 => "IPv6",
    }
}

fn family_matches(net: &IpNet, et: EtherType) -> bool {
    matches!(
        (net, et),
        (IpNet::V4(_), EtherType::IPv4) | (IpNet::V6(_), EtherType::IPv6)
    )
}

/// Errors found while checking one object, before its context is attached.
type Found = Vec<(FieldPath, ErrorKind)>;

/// The names a rule may refer to.
struct Scope<'a> {
    groups: HashSet<&'a str>,
    address_groups: HashSet<&'a str>,
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
fn check_rule(
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
                                ethertype: ethertype_name(et).to_string(),
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
    for (i, sg) in spec.security_groups.iter().enumerate() {
        let path = root.key("security_groups").index(i);
        if let Some(g) = check_group(sg, &path, &scope, &mut errors) {
            if sg_name_ok[i] {
                security_groups.push(g);
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
                networks.push(Network {
                    name: name.to_string(),
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
            });
        }
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
    })
}

fn check_address_group(
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
fn check_group(
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

/// What earlier ports hold, for uniqueness checks.
#[derive(Default)]
struct PortRegistry {
    names: HashMap<String, usize>,
    /// (network, MAC) → port name.
    macs: HashMap<(String, Mac), String>,
    /// (network, IP) → port name.
    ips: HashMap<(String, IpAddr), String>,
    /// (netns, ifname) → port name.
    ifnames: HashMap<(Option<String>, String), String>,
}

impl PortRegistry {
    fn from_model(model: &Model) -> Self {
        let mut r = PortRegistry::default();
        for (i, p) in model.ports.iter().enumerate() {
            r.names.insert(p.name.clone(), i);
            r.macs.insert((p.network.clone(), p.mac), p.name.clone());
            for ip in &p.fixed_ips {
                r.ips.insert((p.network.clone(), *ip), p.name.clone());
            }
            if let Some(b) = &p.backend {
                r.ifnames.insert(backend_ifkey(b), p.name.clone());
            }
        }
        r
    }
}

fn backend_ifkey(b: &Backend) -> (Option<String>, String) {
    match b {
        Backend::Tap { ifname, netns, .. } => (netns.clone(), ifname.clone()),
        Backend::AfXdp { ifname, .. } | Backend::AfPacket { ifname } => (None, ifname.clone()),
    }
}

#[allow(clippy::too_many_arguments)]
fn check_port(
    spec: &PortSpec,
    index: usize,
    path: &FieldPath,
    stateful_by_name: &HashMap<&str, bool>,
    scope: &Scope<'_>,
    registry: &mut PortRegistry,
    found: &mut Found,
) -> Option<Port> {
    let before = found.len();
    let name = check_name(&spec.name, path, found);
    if let Some(n) = name {
        if let Some(&first) = registry.names.get(n) {
            found.push((
                path.key("name"),
                ErrorKind::DuplicatePortName {
                    name: n.to_string(),
                    first,
                },
            ));
        } else {
            registry.names.insert(n.to_string(), index);
        }
    }
    let port_name = name.unwrap_or("").to_string();

    let network = spec
        .network
        .clone()
        .unwrap_or_else(|| DEFAULT_NETWORK.to_string());
    if network.trim().is_empty() {
        found.push((path.key("network"), ErrorKind::Empty));
    }
    let port_security = spec.port_security.unwrap_or(true);

    // MAC.
    let mac = match spec.mac.as_deref() {
        None => {
            found.push((path.key("mac"), ErrorKind::Missing));
            None
        }
        Some(text) => match parse_mac(text).and_then(|m| check_port_mac(&m).map(|()| m)) {
            Err(reason) => {
                found.push((
                    path.key("mac"),
                    ErrorKind::InvalidMac {
                        value: text.to_string(),
                        reason,
                    },
                ));
                None
            }
            Ok(m) => {
                let key = (network.clone(), m);
                if let Some(other) = registry.macs.get(&key) {
                    found.push((
                        path.key("mac"),
                        ErrorKind::DuplicateMac {
                            mac: format_mac(&m),
                            network: network.clone(),
                            other_port: other.clone(),
                        },
                    ));
                } else {
                    registry.macs.insert(key, port_name.clone());
                }
                Some(m)
            }
        },
    };

    // Fixed IPs.
    let mut fixed_ips: Vec<IpAddr> = Vec::new();
    for (k, text) in spec.fixed_ips.iter().enumerate() {
        let p = path.key("fixed_ips").index(k);
        match parse_fixed_ip(text) {
            Err(reason) => found.push((
                p,
                ErrorKind::InvalidIpAddress {
                    value: text.clone(),
                    reason,
                },
            )),
            Ok(ip) => {
                if fixed_ips.contains(&ip) {
                    found.push((p, ErrorKind::DuplicateFixedIp { ip: ip.to_string() }));
                    continue;
                }
                let key = (network.clone(), ip);
                if let Some(other) = registry.ips.get(&key) {
                    found.push((
                        p,
                        ErrorKind::IpInUse {
                            ip: ip.to_string(),
                            network: network.clone(),
                            other_port: other.clone(),
                        },
                    ));
                } else {
                    registry.ips.insert(key, port_name.clone());
                }
                fixed_ips.push(ip);
            }
        }
    }

    // Security groups (§22, §32).
    let sg_path = path.key("security_groups");
    let security_groups: Vec<String> = match &spec.security_groups {
        None if port_security => vec![DEFAULT_GROUP.to_string()],
        None => Vec::new(),
        Some(list) => {
            if !port_security && !list.is_empty() {
                found.push((sg_path.clone(), ErrorKind::GroupsWithoutPortSecurity));
            }
            let mut seen: Vec<&str> = Vec::new();
            for (k, g) in list.iter().enumerate() {
                let p = sg_path.index(k);
                if g.is_empty() {
                    found.push((p, ErrorKind::Empty));
                } else if !scope.groups.contains(g.as_str()) {
                    found.push((p, ErrorKind::UnknownSecurityGroup(g.clone())));
                } else if seen.contains(&g.as_str()) {
                    found.push((p, ErrorKind::DuplicatePortGroup(g.clone())));
                } else {
                    seen.push(g);
                }
            }
            list.clone()
        }
    };
    let (stateful, stateless): (Vec<&str>, Vec<&str>) = {
        let mut names: Vec<&str> = Vec::new();
        for g in &security_groups {
            if !names.contains(&g.as_str()) {
                names.push(g);
            }
        }
        let known: Vec<(&str, bool)> = names
            .iter()
            .filter_map(|n| stateful_by_name.get(n).map(|&s| (*n, s)))
            .collect();
        (
            known.iter().filter(|g| g.1).map(|g| g.0).collect(),
            known.iter().filter(|g| !g.1).map(|g| g.0).collect(),
        )
    };
    if !stateful.is_empty() && !stateless.is_empty() {
        found.push((
            sg_path,
            ErrorKind::MixedStatefulness {
                stateful: stateful.join(", "),
                stateless: stateless.join(", "),
            },
        ));
    }

    // Allowed address pairs.
    let aap_path = path.key("allowed_address_pairs");
    if !port_security && !spec.allowed_address_pairs.is_empty() {
        found.push((aap_path.clone(), ErrorKind::AddressPairsWithoutPortSecurity));
    }
    let mut pairs: Vec<AllowedAddressPair> = Vec::new();
    for (k, aap) in spec.allowed_address_pairs.iter().enumerate() {
        if let Some(pair) = check_address_pair(aap, &aap_path.index(k), found) {
            let effective = |p: &AllowedAddressPair| (p.ip_address, p.mac_address.or(mac));
            if pairs.iter().any(|q| effective(q) == effective(&pair)) {
                let mac_text = pair
                    .mac_address
                    .or(mac)
                    .map(|m| format_mac(&m))
                    .unwrap_or_else(|| "port MAC".to_string());
                found.push((
                    aap_path.index(k),
                    ErrorKind::DuplicateAddressPair(format!("{}, {}", pair.ip_address, mac_text)),
                ));
            } else {
                pairs.push(pair);
            }
        }
    }

    // Backend.
    let backend = spec
        .backend
        .as_ref()
        .and_then(|b| check_backend(b, &path.key("backend"), found));
    if let Some(b) = &backend {
        let key = backend_ifkey(b);
        if let Some(other) = registry.ifnames.get(&key) {
            found.push((
                path.key("backend").key("ifname"),
                ErrorKind::DuplicateInterface {
                    ifname: key.1.clone(),
                    other_port: other.clone(),
                },
            ));
        } else {
            registry.ifnames.insert(key, port_name.clone());
        }
    }

    if found.len() != before {
        return None;
    }
    Some(Port {
        name: name?.to_string(),
        network,
        mac: mac?,
        fixed_ips,
        security_groups,
        port_security,
        allowed_address_pairs: pairs,
        backend,
    })
}

fn check_address_pair(
    spec: &AllowedAddressPairSpec,
    path: &FieldPath,
    found: &mut Found,
) -> Option<AllowedAddressPair> {
    let ip = match spec.ip_address.as_deref() {
        None => {
            found.push((path.key("ip_address"), ErrorKind::Missing));
            None
        }
        Some(text) => match parse_cidr(text) {
            Ok(net) => Some(net.trunc()),
            Err(reason) => {
                found.push((
                    path.key("ip_address"),
                    ErrorKind::InvalidCidr {
                        value: text.to_string(),
                        reason,
                    },
                ));
                None
            }
        },
    };
    let mac = match spec.mac_address.as_deref() {
        None => Ok(None),
        Some(text) => match parse_mac(text).and_then(|m| check_port_mac(&m).map(|()| m)) {
            Ok(m) => Ok(Some(m)),
            Err(reason) => {
                found.push((
                    path.key("mac_address"),
                    ErrorKind::InvalidMac {
                        value: text.to_string(),
                        reason,
                    },
                ));
                Err(())
            }
        },
    };
    Some(AllowedAddressPair {
        ip_address: ip?,
        mac_address: mac.ok()?,
    })
}

fn check_backend(spec: &BackendSpec, path: &FieldPath, found: &mut Found) -> Option<Backend> {
    let ifname_ok = |ifname: &Option<String>, found: &mut Found| -> Option<String> {
        match ifname.as_deref() {
            None => {
                found.push((path.key("ifname"), ErrorKind::Missing));
                None
            }
            Some(n) => match check_ifname(n) {
                Ok(()) => Some(n.to_string()),
                Err(reason) => {
                    found.push((
                        path.key("ifname"),
                        ErrorKind::InvalidInterfaceName {
                            value: n.to_string(),
                            reason,
                        },
                    ));
                    None
                }
            },
        }
    };
    match spec {
        BackendSpec::Tap {
            ifname,
            netns,
            vnet_hdr,
        } => {
            let ifname = ifname_ok(ifname, found);
            if let Some(ns) = netns {
                if ns.is_empty() || ns.contains('/') || ns == "." || ns == ".." {
                    found.push((
                        path.key("netns"),
                        ErrorKind::InvalidInterfaceName {
                            value: ns.clone(),
                            reason: "not a valid network namespace name",
                        },
                    ));
                    return None;
                }
            }
            Some(Backend::Tap {
                ifname: ifname?,
                netns: netns.clone(),
                vnet_hdr: vnet_hdr.unwrap_or(false),
            })
        }
        BackendSpec::AfXdp {
            ifname,
            queue,
            mode,
        } => {
            let ifname = ifname_ok(ifname, found);
            if let Some(m) = mode {
                if !matches!(m.as_str(), "native" | "generic" | "auto") {
                    found.push((path.key("mode"), ErrorKind::InvalidXdpMode(m.clone())));
                    return None;
                }
            }
            Some(Backend::AfXdp {
                ifname: ifname?,
                queue: queue.unwrap_or(0),
                mode: mode.clone(),
            })
        }
        BackendSpec::AfPacket { ifname } => Some(Backend::AfPacket {
            ifname: ifname_ok(ifname, found)?,
        }),
    }
}

fn check_permitted_ethertypes(list: &[u16], path: &FieldPath, found: &mut Found) {
    for (k, &value) in list.iter().enumerate() {
        let p = path.index(k);
        let reason = match value {
            0..=0x05ff => Some("values below 0x0600 are IEEE 802.3 lengths, not ethertypes"),
            0x0800 | 0x86dd | 0x0806 => {
                Some("IPv4, IPv6 and ARP are governed by port security and security groups")
            }
            _ => None,
        };
        if let Some(reason) = reason {
            found.push((p, ErrorKind::InvalidPermittedEthertype { value, reason }));
        } else if list[..k].contains(&value) {
            found.push((p, ErrorKind::DuplicatePermittedEthertype { value }));
        }
    }
}

/// Field names of [`ConntrackSettings`] checked, with their ranges.
fn check_conntrack(ct: &ConntrackSettings, path: &FieldPath, found: &mut Found) {
    let mut range = |field: &str, value: u64, lo: u64, hi: u64, reason: &'static str| {
        if value < lo || value > hi {
            found.push((path.key(field), ErrorKind::OutOfRange { value, reason }));
        }
    };
    const TIMEOUT: &str = "timeouts are 1..31536000 seconds";
    range(
        "capacity",
        ct.capacity as u64,
        1,
        MAX_CONNTRACK_CAPACITY as u64,
        "capacity is 1..1073741824 connections",
    );
    range(
        "tcp_syn_timeout",
        ct.tcp_syn_timeout,
        1,
        MAX_TIMEOUT_SECS,
        TIMEOUT,
    );
    range(
        "tcp_established_timeout",
        ct.tcp_established_timeout,
        1,
        MAX_TIMEOUT_SECS,
        TIMEOUT,
    );
    range(
        "tcp_fin_timeout",
        ct.tcp_fin_timeout,
        1,
        MAX_TIMEOUT_SECS,
        TIMEOUT,
    );
    range(
        "tcp_close_timeout",
        ct.tcp_close_timeout,
        1,
        MAX_TIMEOUT_SECS,
        TIMEOUT,
    );
    range("udp_timeout", ct.udp_timeout, 1, MAX_TIMEOUT_SECS, TIMEOUT);
    range(
        "udp_stream_timeout",
        ct.udp_stream_timeout,
        1,
        MAX_TIMEOUT_SECS,
        TIMEOUT,
    );
    range(
        "icmp_timeout",
        ct.icmp_timeout,
        1,
        MAX_TIMEOUT_SECS,
        TIMEOUT,
    );
    range(
        "other_timeout",
        ct.other_timeout,
        1,
        MAX_TIMEOUT_SECS,
        TIMEOUT,
    );
    range(
        "fragment_timeout",
        ct.fragment_timeout,
        1,
        MAX_FRAGMENT_TIMEOUT_SECS,
        "the fragment timeout is 1..3600 seconds",
    );
    range(
        "max_pending_fragments",
        ct.max_pending_fragments as u64,
        0,
        MAX_PENDING_FRAGMENTS as u64,
        "at most 1048576 pending fragments",
    );
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
/// `security_groups[G].rules[N]` with `N` the position it would get.
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
    let sg = &model.security_groups[gi];
    let position = sg.rules.len();
    let path = FieldPath::root()
        .key("security_groups")
        .index(gi)
        .key("rules")
        .index(position);
    let scope = model_scope(model);
    let mut found = Found::new();
    let rule = check_rule(spec, &path, &scope, &mut found);
    if let Some(r) = &rule {
        let key = rule_key(r);
        if let Some(first) = sg.rules.iter().position(|e| rule_key(e) == key) {
            found.push((path, ErrorKind::DuplicateRule { first }));
        }
    }
    let mut errors = Vec::new();
    attach(found, Some(group), Some(position), None, None, &mut errors);
    match rule {
        Some(r) if errors.is_empty() => Ok(r),
        _ => Err(ValidationErrors(errors)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_parsing() {
        assert_eq!(
            parse_mac("fa:16:3e:0A:0b:ff"),
            Ok([0xfa, 0x16, 0x3e, 0x0a, 0x0b, 0xff])
        );
        assert_eq!(
            parse_mac("fa-16-3e-0a-0b-ff"),
            parse_mac("fa:16:3e:0a:0b:ff")
        );
        for bad in [
            "",
            "fa:16:3e:0a:0b",
            "fa:16:3e:0a:0b:ff:",
            "fa:16-3e:0a:0b:ff",
            "fa:16:3e:0a:0b:fg",
            "+a:16:3e:0a:0b:ff",
            "fa:16:3e:0a:0b:é",
            "fa163e0a0bff",
        ] {
            assert!(parse_mac(bad).is_err(), "{bad}");
        }
        assert!(check_port_mac(&[0x01, 0, 0x5e, 0, 0, 1]).is_err());
        assert!(check_port_mac(&[0xff; 6]).is_err());
        assert!(check_port_mac(&[0; 6]).is_err());
        assert!(check_port_mac(&[0x02, 0, 0, 0, 0, 1]).is_ok());
        assert_eq!(
            format_mac(&[0xfa, 0x16, 0x3e, 0, 0x0a, 0xff]),
            "fa:16:3e:00:0a:ff"
        );
    }

    #[test]
    fn cidr_parsing() {
        assert_eq!(parse_cidr("10.0.0.7").unwrap().to_string(), "10.0.0.7/32");
        assert_eq!(
            parse_cidr("10.0.0.7/24").unwrap().to_string(),
            "10.0.0.7/24"
        );
        assert_eq!(
            parse_cidr("2001:DB8::1").unwrap().to_string(),
            "2001:db8::1/128"
        );
        for bad in [
            "",
            " 10.0.0.0/8",
            "10.0.0.0/8 ",
            "10.0.0.0/-1",
            "10/8",
            "010.0.0.1",
            "::/200",
        ] {
            assert!(parse_cidr(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ifnames() {
        assert!(check_ifname("tap0").is_ok());
        assert!(check_ifname("123456789012345").is_ok());
        for bad in [
            "",
            "1234567890123456",
            ".",
            "..",
            "a/b",
            "a b",
            "a:1",
            "a\tb",
        ] {
            assert!(check_ifname(bad).is_err(), "{bad:?}");
        }
    }

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

    #[test]
    fn templates() {
        assert_eq!(template_rules().len(), 2);
        let d = default_group();
        assert_eq!(d.rules.len(), 4);
        assert!(d.rules[2..]
            .iter()
            .all(|r| r.remote == Remote::Group(DEFAULT_GROUP.into())
                && r.direction == Direction::Ingress));
        // The default rules are themselves valid and pairwise distinct.
        let keys: HashSet<RuleKey> = d.rules.iter().map(rule_key).collect();
        assert_eq!(keys.len(), 4);
    }
}
