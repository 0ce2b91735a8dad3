//! Validation errors of the security-group model, shaped for a Neutron-compatible API.
//!
//! Every error carries
//! * a [`ErrorClass`] that mirrors the HTTP status Neutron answers with (400 / 404 / 409),
//! * a [`FieldPath`] such as `security_groups[2].rules[0].port_range_min`, addressing the
//!   offending value in the declarative model (the config file uses the same paths, so the
//!   config loader can map a path back to a file line),
//! * the name of the group / port it concerns and the rule's position inside its group,
//! * a typed [`ErrorKind`] whose `Display` is the human reason.
//!
//! Rejected option: a plain `String` reason. A REST layer needs to choose the Neutron
//! exception (`SecurityGroupRuleExists`, `SecurityGroupNotFound`, ...) and its status
//! code without parsing text, and tests can match on the variant.
//!
//! Owns: the error types, their classes, field paths and reasons. May not touch: the
//! checks that raise them ([`super::validate`]) or how a caller answers them (Neutron
//! exception names are `control::store`'s, file lines `control::config`'s). It depends
//! on nothing else in the crate.

use std::borrow::Cow;
use std::fmt;

/// The class of a validation error, mirroring the HTTP status Neutron returns.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ErrorClass {
    /// 400: the request itself is malformed (`InvalidInput`, `BadRequest`).
    BadRequest,
    /// 404: a referenced object does not exist.
    NotFound,
    /// 409: the request conflicts with existing state (`InUse`, `Conflict`).
    Conflict,
}

impl ErrorClass {
    /// The HTTP status code Neutron uses for this class.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorClass::BadRequest => 400,
            ErrorClass::NotFound => 404,
            ErrorClass::Conflict => 409,
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorClass::BadRequest => "bad request",
            ErrorClass::NotFound => "not found",
            ErrorClass::Conflict => "conflict",
        })
    }
}

/// One step of a [`FieldPath`].
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum PathSeg {
    /// A table key / struct field (a field name is static: no allocation).
    Key(Cow<'static, str>),
    /// A position in a list (0-based).
    Index(usize),
}

/// The address of a value in the declarative model, e.g.
/// `security_groups[2].rules[0].port_range_min`. The empty path is the model itself.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct FieldPath(Vec<PathSeg>);

impl FieldPath {
    /// The empty path (the whole model).
    pub fn root() -> Self {
        FieldPath(Vec::new())
    }

    /// This path extended by a key. Validation makes a path for every field it checks
    /// (a host agent validates its whole model on each change): one allocation each.
    pub fn key(&self, key: impl Into<Cow<'static, str>>) -> Self {
        self.with(PathSeg::Key(key.into()))
    }

    /// This path extended by a list index.
    pub fn index(&self, index: usize) -> Self {
        self.with(PathSeg::Index(index))
    }

    fn with(&self, seg: PathSeg) -> Self {
        let mut segs = Vec::with_capacity(self.0.len() + 1);
        segs.extend_from_slice(&self.0);
        segs.push(seg);
        FieldPath(segs)
    }

    /// The steps of the path, outermost first.
    pub fn segments(&self) -> &[PathSeg] {
        &self.0
    }

    /// Whether `prefix` is this path or one of its ancestors.
    pub fn starts_with(&self, prefix: &FieldPath) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// The last key of the path (the field name), if the path ends with a key.
    pub fn field(&self) -> Option<&str> {
        match self.0.last() {
            Some(PathSeg::Key(k)) => Some(k),
            _ => None,
        }
    }

    /// Whether this is the empty path.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(model)");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                PathSeg::Key(k) if i == 0 => f.write_str(k)?,
                PathSeg::Key(k) => write!(f, ".{k}")?,
                PathSeg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// What is wrong. `Display` is the human reason (without the location).
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    #[error("missing required field")]
    Missing,
    #[error("must not be empty")]
    Empty,
    #[error("longer than {max} characters")]
    TooLong { max: usize },
    #[error("invalid direction {0:?}: expected \"ingress\" or \"egress\"")]
    InvalidDirection(String),
    #[error("invalid ethertype {0:?}: expected \"IPv4\" or \"IPv6\"")]
    InvalidEthertype(String),
    #[error(
        "invalid protocol {0}: expected a protocol name (ah, dccp, egp, esp, gre, hopopt, icmp, \
         igmp, ip, ipip, ipv6-encap, ipv6-frag, ipv6-icmp, icmpv6, ipv6-nonxt, ipv6-opts, \
         ipv6-route, ospf, pgm, rsvp, sctp, tcp, udp, udplite, vrrp), a number 0..255 or \"any\""
    )]
    InvalidProtocol(String),
    #[error("invalid ethertype IPv4 for protocol {0} (an IPv6-only protocol)")]
    IPv6OnlyProtocol(String),
    #[error("a port range needs a protocol: set protocol to tcp, udp, sctp, dccp, udplite, icmp or ipv6-icmp")]
    PortsWithoutProtocol,
    #[error("invalid port value {0}: expected an integer")]
    NotAnInteger(String),
    #[error("invalid port {value} for protocol {protocol}: ports are 1..65535")]
    InvalidPort { value: String, protocol: String },
    #[error("{missing} is required when {given} is given for protocol {protocol} (use the same value for a single port)")]
    IncompletePortRange {
        given: &'static str,
        missing: &'static str,
        protocol: String,
    },
    #[error("port_range_min {min} is greater than port_range_max {max}")]
    PortRangeInverted { min: u16, max: u16 },
    #[error("invalid ICMP {what} {value}: must be 0..255")]
    InvalidIcmpValue { what: &'static str, value: String },
    #[error("ICMP code (port_range_max) given without ICMP type (port_range_min)")]
    IcmpCodeWithoutType,
    #[error("ports cannot be specified for protocol {0}")]
    PortsNotAllowed(String),
    #[error("invalid CIDR {value:?}: {reason}")]
    InvalidCidr { value: String, reason: String },
    #[error("conflicting value ethertype {ethertype} for CIDR {cidr}")]
    PrefixFamilyConflict { ethertype: String, cidr: String },
    #[error("only one of remote_ip_prefix, remote_group and remote_address_group may be given")]
    MultipleRemotes,
    #[error("security group {0:?} not found")]
    UnknownSecurityGroup(String),
    #[error("address group {0:?} not found")]
    UnknownAddressGroup(String),
    #[error("duplicate rule: same as rule {first} of this group (direction, ethertype, protocol, ports and remote are equal)")]
    DuplicateRule { first: usize },
    #[error("security group name {name:?} is already used by security_groups[{first}]")]
    DuplicateGroupName { name: String, first: usize },
    #[error("security group name {0:?} is reserved: only the group named exactly \"default\" may use it")]
    ReservedDefaultName(String),
    #[error("address group name {name:?} is already used by address_groups[{first}]")]
    DuplicateAddressGroupName { name: String, first: usize },
    #[error("address {cidr} is already listed at addresses[{first}]")]
    DuplicateAddress { cidr: String, first: usize },
    #[error("network name {name:?} is already declared by networks[{first}]")]
    DuplicateNetworkName { name: String, first: usize },
    #[error("port name {name:?} is already used by ports[{first}]")]
    DuplicatePortName { name: String, first: usize },
    #[error("invalid MAC address {value:?}: {reason}")]
    InvalidMac { value: String, reason: &'static str },
    #[error("MAC address {mac} is already used by port {other_port:?} on network {network:?}")]
    DuplicateMac {
        mac: String,
        network: String,
        other_port: String,
    },
    #[error("invalid IP address {value:?}: {reason}")]
    InvalidIpAddress { value: String, reason: String },
    #[error("IP address {ip} is listed twice")]
    DuplicateFixedIp { ip: String },
    #[error("IP address {ip} is already used by port {other_port:?} on network {network:?}")]
    IpInUse {
        ip: String,
        network: String,
        other_port: String,
    },
    #[error("security group {0:?} is listed twice")]
    DuplicatePortGroup(String),
    #[error("cannot mix stateful and stateless security groups on one port (stateful: {stateful}; stateless: {stateless})")]
    MixedStatefulness { stateful: String, stateless: String },
    #[error("security groups require port_security = true (a port without port security has no security groups)")]
    GroupsWithoutPortSecurity,
    #[error("allowed address pairs require port_security = true")]
    AddressPairsWithoutPortSecurity,
    #[error("allowed address pair ({0}) is listed twice")]
    DuplicateAddressPair(String),
    #[error("invalid interface name {value:?}: {reason}")]
    InvalidInterfaceName { value: String, reason: &'static str },
    #[error("interface {ifname:?} is already used by port {other_port:?}")]
    DuplicateInterface { ifname: String, other_port: String },
    #[error("invalid host name {value:?}: {reason}")]
    InvalidHost { value: String, reason: &'static str },
    #[error("invalid AF_XDP mode {0:?}: expected \"native\", \"generic\" or \"auto\"")]
    InvalidXdpMode(String),
    #[error("ethertype {value:#06x} cannot be permitted: {reason}")]
    InvalidPermittedEthertype { value: u16, reason: &'static str },
    #[error("ethertype {value:#06x} is listed twice")]
    DuplicatePermittedEthertype { value: u16 },
    #[error("invalid value {value}: {reason}")]
    OutOfRange { value: u64, reason: &'static str },
    #[error("port {0:?} not found")]
    UnknownPort(String),
    #[error("invalid event {0:?}: expected \"ACCEPT\", \"DROP\" or \"ALL\"")]
    InvalidLogEvent(String),
    #[error("port {port:?} does not use security group {group:?} (a log's target must be a port of its resource)")]
    LogTargetNotInGroup { port: String, group: String },
    #[error("invalid VNI {0}: VNIs are 1..16777215")]
    InvalidVni(i64),
    #[error("invalid encapsulation {0:?}: expected \"geneve\" or \"vxlan\"")]
    InvalidEncap(String),
    #[error("{encap} VNI {vni} of network {network:?} is already used by network {other:?} (set `vni` explicitly on one of them)")]
    DuplicateVni {
        vni: u32,
        encap: &'static str,
        network: String,
        other: String,
    },
    #[error("host name {name:?} is already used by hosts[{first}]")]
    DuplicateHostName { name: String, first: usize },
    #[error("invalid VTEP address {value:?}: {reason}")]
    InvalidVtep { value: String, reason: &'static str },
    #[error("VTEP address {vtep} is already used by host {other_host:?}")]
    DuplicateVtep { vtep: String, other_host: String },
    #[error("the port is bound to host {host:?}, not to this switch's host {local:?}: a remote port is never attached here (remove `backend`, or bind the port to {local:?})")]
    RemotePortBackend { host: String, local: String },
}

impl ErrorKind {
    /// The Neutron error class (HTTP status) of this error.
    pub fn class(&self) -> ErrorClass {
        use ErrorKind::*;
        match self {
            UnknownSecurityGroup(_) | UnknownAddressGroup(_) | UnknownPort(_) => {
                ErrorClass::NotFound
            }
            DuplicateRule { .. }
            | DuplicateGroupName { .. }
            | ReservedDefaultName(_)
            | DuplicateAddressGroupName { .. }
            | DuplicateAddress { .. }
            | DuplicateNetworkName { .. }
            | DuplicatePortName { .. }
            | DuplicateMac { .. }
            | IpInUse { .. }
            | MixedStatefulness { .. }
            | AddressPairsWithoutPortSecurity
            | DuplicateInterface { .. }
            | DuplicateVni { .. }
            | DuplicateHostName { .. }
            | DuplicateVtep { .. } => ErrorClass::Conflict,
            _ => ErrorClass::BadRequest,
        }
    }
}

/// One validation failure: where, in which object, and why.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ValidationError {
    /// The offending value, e.g. `security_groups[2].rules[0].port_range_min`.
    pub path: FieldPath,
    /// The security group concerned (by name), for rule and group errors.
    pub group: Option<String>,
    /// The rule's position inside its group (0-based), for rule errors.
    pub rule: Option<usize>,
    /// The port concerned (by name), for port errors.
    pub port: Option<String>,
    /// The address group concerned (by name), for address-group errors.
    pub address_group: Option<String>,
    /// What is wrong.
    pub kind: ErrorKind,
}

impl ValidationError {
    /// An error at `path` with no object context.
    pub fn new(path: FieldPath, kind: ErrorKind) -> Self {
        ValidationError {
            path,
            group: None,
            rule: None,
            port: None,
            address_group: None,
            kind,
        }
    }

    /// The Neutron error class (HTTP status) of this error.
    pub fn class(&self) -> ErrorClass {
        self.kind.class()
    }

    /// The human reason, without location.
    pub fn reason(&self) -> String {
        self.kind.to_string()
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path)?;
        let mut ctx = Vec::new();
        if let Some(g) = &self.group {
            ctx.push(format!("group {g:?}"));
        }
        if let Some(r) = self.rule {
            ctx.push(format!("rule {r}"));
        }
        if let Some(p) = &self.port {
            ctx.push(format!("port {p:?}"));
        }
        if let Some(a) = &self.address_group {
            ctx.push(format!("address group {a:?}"));
        }
        if !ctx.is_empty() {
            write!(f, " ({})", ctx.join(", "))?;
        }
        write!(f, ": {}", self.kind)
    }
}

impl std::error::Error for ValidationError {}

/// Every validation failure of one request / model, in discovery order.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl ValidationErrors {
    /// The failures.
    pub fn errors(&self) -> &[ValidationError] {
        &self.0
    }

    /// The failures, by value.
    pub fn into_vec(self) -> Vec<ValidationError> {
        self.0
    }

    /// Number of failures.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is no failure.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The class an API answers with: that of the first failure (Neutron stops at the
    /// first error too), `BadRequest` if empty.
    pub fn class(&self) -> ErrorClass {
        self.0
            .first()
            .map(|e| e.class())
            .unwrap_or(ErrorClass::BadRequest)
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

impl From<ValidationError> for ValidationErrors {
    fn from(e: ValidationError) -> Self {
        ValidationErrors(vec![e])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_display() {
        let p = FieldPath::root()
            .key("security_groups")
            .index(2)
            .key("rules")
            .index(0)
            .key("port_range_min");
        assert_eq!(p.to_string(), "security_groups[2].rules[0].port_range_min");
        assert_eq!(p.field(), Some("port_range_min"));
        assert!(p.starts_with(&FieldPath::root().key("security_groups").index(2)));
        assert!(!p.starts_with(&FieldPath::root().key("security_groups").index(1)));
        assert_eq!(FieldPath::root().to_string(), "(model)");
    }

    #[test]
    fn error_display_names_group_rule_and_field() {
        let mut e = ValidationError::new(
            FieldPath::root()
                .key("security_groups")
                .index(1)
                .key("rules")
                .index(3)
                .key("protocol"),
            ErrorKind::InvalidProtocol("\"tpc\"".into()),
        );
        e.group = Some("web".into());
        e.rule = Some(3);
        let s = e.to_string();
        assert!(s.starts_with("security_groups[1].rules[3].protocol (group \"web\", rule 3): invalid protocol \"tpc\""), "{s}");
        assert_eq!(e.class(), ErrorClass::BadRequest);
        assert_eq!(e.class().http_status(), 400);
    }

    #[test]
    fn classes() {
        assert_eq!(
            ErrorKind::UnknownSecurityGroup("x".into()).class(),
            ErrorClass::NotFound
        );
        assert_eq!(
            ErrorKind::DuplicateRule { first: 0 }.class(),
            ErrorClass::Conflict
        );
        assert_eq!(ErrorClass::Conflict.http_status(), 409);
        assert_eq!(ErrorClass::NotFound.http_status(), 404);
    }
}
