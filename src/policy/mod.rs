//! The security-group model as plain, validated data (Neutron semantics).
//!
//! A [`Model`] is what a config file (or, later, the management API) describes: security
//! groups with their rules, address groups, ports and networks. Everything in a `Model`
//! returned by [`Model::validate`]-style constructors has passed Neutron's validation
//! (`security-groups.md` §3), so later stages (the classifier compiler, the pipeline's
//! port table) can rely on its invariants:
//!
//! * `Rule::protocol` is `None` for "any" (`null`, `"any"`, `0`), else the IP protocol
//!   number; `icmp` with ethertype IPv6 is stored as 58. It is what matching uses.
//!   `Rule::protocol_zero` records that the protocol was written as `0` (`"0"`, `ip`,
//!   `hopopt`): such a rule matches exactly like "any" but is a different rule, as in
//!   Neutron, which stores `"0"` rather than null; [`Rule::neutron_protocol`] gives the
//!   number Neutron keys and shows (`Some(0)`).
//! * `Rule::port_range_min/max` are `None` for "all ports" (1..65535 is canonicalised to
//!   `None`); for ICMP they are the type and code.
//! * `Remote::Prefix` holds the *normalised* network (host bits cleared) of the rule's
//!   family; `remote_ip_prefix_raw` is the prefix as written, canonically formatted,
//!   host bits kept (`10.0.0.7` → `"10.0.0.7/32"`), and `None` for other remotes.
//! * Every group / address-group name referenced exists; names are unique and
//!   non-empty; a group named `default` always exists.
//! * Rules of one group are pairwise distinct under [`validate::rule_key`].
//! * A port's groups are listed once and are all stateful or all stateless; a port with
//!   `port_security == false` has no groups and no allowed address pairs.
//! * Port MACs are unicast and non-zero, unique per network; fixed IPs are unicast,
//!   unique per network. Address-group CIDRs and allowed-address-pair CIDRs are
//!   normalised.
//! * `networks` lists the declared networks, then those of the ports (first use order).
//! * `remote_members` (addresses of remote-group members bound on other hosts) is empty
//!   unless a host agent filled it; validation neither reads nor writes it.
//! * Networks' effective (encapsulation, VNI) pairs are unique, VNIs are
//!   1..=[`MAX_VNI`]; host names are unique and valid ([`validate::check_host`]), VTEP
//!   addresses unique and unicast; `local_host`, when set, is a valid host name (it need
//!   not be in `hosts`: a host without a VTEP reaches no remote port). A port bound to a
//!   host that is not in `hosts` is valid (remote and unreachable, see
//!   [`Model::is_remote`]).
//! * An AF_XDP backend's `mode` is an [`XdpMode`], parsed once by validation from the
//!   names `auto`, `native`, `generic` (`None`: not written, which means `auto`); the port
//!   layer takes it as it is.
//!
//! This module knows nothing of packets, compilation or I/O.
//!
//! Owns: the model's types and the invariants above, the written form ([`spec`]),
//! Neutron's validation rules and defaults ([`validate`]), their typed errors ([`error`])
//! and protocol names ([`protocol`]). May not touch: packets, compiled lookup structures,
//! files, Neutron ids (the store's), or anything running.
//!
//! Layering (wire → flow → **policy** → classifier → conntrack → l2 → port → pipeline →
//! runtime → control → CLI; a module may use only those to its left): `policy` may use
//! plain value types of `wire` and `flow`, and today uses no other sgswitch module (only
//! `ipnet`, `serde`, `thiserror`). `classifier`, `pipeline`, `port` (a backend's
//! description), `runtime` and `control` use it; it uses none of them.
//!
//! # Submodules
//! * [`spec`]: the model as written (loosely typed, every optional field an `Option`);
//! * [`validate`]: Neutron validation from a [`spec::ModelSpec`] to a [`Model`], plus
//!   single-rule / single-port validation against an existing model (for the API);
//! * [`error`]: typed errors with a Neutron class (400/404/409) and a field path;
//! * [`protocol`]: protocol names, numbers and classes.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;

pub mod error;
pub mod protocol;
pub mod spec;
pub mod validate;

pub use error::{ErrorClass, ErrorKind, FieldPath, PathSeg, ValidationError, ValidationErrors};
pub use validate::{
    validate_group, validate_model, validate_port, validate_rule, DEFAULT_GROUP, DEFAULT_NETWORK,
};

use crate::wire::Mac;

/// Rule direction, relative to the instance.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Direction {
    /// Towards the instance.
    Ingress,
    /// From the instance.
    Egress,
}

impl Direction {
    /// Neutron's spelling: `ingress`, `egress`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
}

/// Rule ethertype.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum EtherType {
    IPv4,
    IPv6,
}

impl EtherType {
    /// Neutron's spelling: `IPv4`, `IPv6`.
    pub fn as_str(self) -> &'static str {
        match self {
            EtherType::IPv4 => "IPv4",
            EtherType::IPv6 => "IPv6",
        }
    }
}

/// The remote side a rule matches (source for ingress, destination for egress).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Remote {
    /// Any address of the rule's family.
    Any,
    /// A normalised prefix (host bits cleared).
    Prefix(IpNet),
    /// The IPs of every port bound to the named security group.
    Group(String),
    /// The CIDRs of the named address group.
    AddressGroup(String),
}

/// One security-group rule (immutable once created).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Rule {
    pub direction: Direction,
    pub ethertype: EtherType,
    /// `None` = any protocol (also when written as `0`, see `protocol_zero`).
    pub protocol: Option<u8>,
    /// The protocol was written as `0` (`"0"`, `ip`, `hopopt`): it matches every
    /// protocol, like `protocol == None`, but Neutron stores `"0"` rather than null, so
    /// the rule is distinct from an "any" rule (security-groups.md §11, §20). Only ever
    /// `true` with `protocol == None`.
    pub protocol_zero: bool,
    /// Destination port range start, or ICMP type. `None` = any.
    pub port_range_min: Option<u16>,
    /// Destination port range end, or ICMP code. `None` = any.
    pub port_range_max: Option<u16>,
    pub remote: Remote,
    /// `remote_ip_prefix` as the user wrote it (host bits kept), for display.
    pub remote_ip_prefix_raw: Option<String>,
    pub description: String,
}

impl Rule {
    /// The protocol number as Neutron stores and shows it: `None` for "any", `Some(0)`
    /// for a rule written with protocol 0, else [`Rule::protocol`].
    pub fn neutron_protocol(&self) -> Option<u8> {
        if self.protocol_zero {
            Some(0)
        } else {
            self.protocol
        }
    }
}

/// A security group.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SecurityGroup {
    pub name: String,
    pub description: String,
    pub stateful: bool,
    pub rules: Vec<Rule>,
}

/// One rule of a [`Model`], by position: `group` is the index of the group in
/// [`Model::security_groups`], `rule` the index of the rule in that group's `rules`.
///
/// The derived order is model order (group index, then rule index): the classifier's
/// `admitting_rule` answers the *first* matching rule in this order. A `RuleRef` is only
/// meaningful for the model (epoch) it was computed from; the pipeline, the control plane
/// and the CLI share it to name "the rule that allowed" a connection (per-rule counters,
/// `sgswitch trace`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct RuleRef {
    /// Index in [`Model::security_groups`].
    pub group: u32,
    /// Index in [`SecurityGroup::rules`] of that group.
    pub rule: u32,
}

const _: () = assert!(std::mem::size_of::<RuleRef>() == 8);

impl RuleRef {
    /// The group and the rule this reference names in `model` (`None` if out of range,
    /// e.g. a reference kept across a policy change).
    pub fn resolve(self, model: &Model) -> Option<(&SecurityGroup, &Rule)> {
        let g = model.security_groups.get(self.group as usize)?;
        Some((g, g.rules.get(self.rule as usize)?))
    }
}

/// A named list of CIDRs usable as a rule's remote.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AddressGroup {
    pub name: String,
    pub description: String,
    pub addresses: Vec<IpNet>,
}

/// An allowed address pair: extra (MAC, IP/CIDR) the instance may send from.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AllowedAddressPair {
    pub ip_address: IpNet,
    /// `None` = the port's own MAC.
    pub mac_address: Option<Mac>,
}

/// How a port is attached to the host (used by the live dataplane; ignored by replay).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Backend {
    Tap {
        ifname: String,
        netns: Option<String>,
        vnet_hdr: bool,
        /// The MAC the instance side gets when the tap is moved into `netns`: the port's
        /// `mac` (filled in by validation; `None` without a namespace, where the device is
        /// left as the kernel made it). Not a key of its own: it follows the port's MAC.
        instance_mac: Option<Mac>,
        /// Queues of the tap (`IFF_MULTI_QUEUE` when more than 1): the live switch gives
        /// each worker its own queue, at most one per worker (`queues` beyond the worker
        /// count are not opened, said in the log). 1..=[`MAX_TAP_QUEUES`]; default 1.
        queues: u16,
    },
    AfXdp {
        ifname: String,
        queue: u32,
        /// `None` when the config or API body does not say (it then shows no mode).
        mode: Option<XdpMode>,
    },
    AfPacket {
        ifname: String,
    },
}

/// The most queues a tap port may have (the kernel's `MAX_TAP_QUEUES`).
pub const MAX_TAP_QUEUES: u16 = 256;

/// Where the XDP program of an AF_XDP port runs (`port::xdp` attaches it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum XdpMode {
    /// Native first, generic if the driver refuses.
    #[default]
    Auto,
    /// Driver mode (`XDP_FLAGS_DRV_MODE`).
    Native,
    /// Generic / skb mode (`XDP_FLAGS_SKB_MODE`).
    Generic,
}

impl XdpMode {
    /// The names a config file or an API body may give: `auto`, `native`, `generic` (what
    /// validation accepts; [`XdpMode::as_str`] gives them back).
    pub fn from_name(s: &str) -> Option<XdpMode> {
        match s {
            "auto" => Some(XdpMode::Auto),
            "native" => Some(XdpMode::Native),
            "generic" => Some(XdpMode::Generic),
            _ => None,
        }
    }

    /// Parse `auto`, `native`/`drv`, `generic`/`skb` (the names and the kernel's flag
    /// names, for tools; the model takes only [`XdpMode::from_name`]'s).
    pub fn parse(s: &str) -> Option<XdpMode> {
        match s {
            "drv" => Some(XdpMode::Native),
            "skb" => Some(XdpMode::Generic),
            _ => XdpMode::from_name(s),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            XdpMode::Auto => "auto",
            XdpMode::Native => "native",
            XdpMode::Generic => "generic",
        }
    }
}

/// A switch port: one instance's (or a router's / uplink's) attachment.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Port {
    pub name: String,
    pub network: String,
    pub mac: Mac,
    pub fixed_ips: Vec<IpAddr>,
    /// Names of the bound groups (empty = no group: only the always-allowed traffic).
    pub security_groups: Vec<String>,
    /// `false`: no anti-spoofing and no security groups.
    pub port_security: bool,
    pub allowed_address_pairs: Vec<AllowedAddressPair>,
    pub backend: Option<Backend>,
    /// Neutron's `binding:host_id`: the host whose switch the port plugs into (`None`:
    /// not bound). 1..64 characters of `[A-Za-z0-9._-]` ([`validate::check_host`]).
    /// Single-host use ignores it; a shared store indexes ports by it.
    pub host: Option<String>,
}

/// An isolated L2 network.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Network {
    pub name: String,
    /// The overlay's virtual network identifier (1..=2^24-1). `None`: derived from the
    /// name ([`Network::vni_of_name`]), so that every host computes the same one.
    /// Unique per encapsulation among the model's networks (validation).
    pub vni: Option<u32>,
    /// The encapsulation between hosts. `None`: [`Encap::Geneve`].
    pub encap: Option<Encap>,
}

impl Network {
    /// The VNI frames of this network carry between hosts: `vni`, else derived from the
    /// name.
    pub fn effective_vni(&self) -> u32 {
        self.vni.unwrap_or_else(|| Network::vni_of_name(&self.name))
    }

    /// The encapsulation: `encap`, else Geneve.
    pub fn effective_encap(&self) -> Encap {
        self.encap.unwrap_or_default()
    }

    /// The VNI of a network that does not set one: FNV-1a (32 bit) of the name, folded
    /// to 24 bits (xor of the high byte into the low bits), 0 mapped to 1. Part of the
    /// wire contract between hosts: every host derives the same VNI from the same name.
    pub fn vni_of_name(name: &str) -> u32 {
        let mut h: u32 = 0x811c_9dc5;
        for b in name.bytes() {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
        let v = (h ^ (h >> 24)) & MAX_VNI;
        v.max(1)
    }
}

/// Largest VNI (24 bits, VXLAN and Geneve alike); 0 is not used.
pub const MAX_VNI: u32 = (1 << 24) - 1;

/// An overlay encapsulation between hosts: the wire module's plain value type (the
/// header kind, with its names and UDP port), shared by the model and the overlay.
pub use crate::wire::Encap;

/// A host of the overlay: a switch with a tunnel endpoint (VTEP) address on the underlay.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Host {
    /// The host name ports name in [`Port::host`] ([`validate::check_host`]'s syntax).
    pub name: String,
    /// The tunnel endpoint's underlay address (unicast, unique among the hosts).
    pub vtep: IpAddr,
    /// The underlay MAC frames to this VTEP are sent to (the next hop's); `None`: the
    /// runtime asks the kernel's neighbour table of the underlay netdev. Host-local
    /// knowledge in practice (a static config's), never required.
    pub mac: Option<Mac>,
}

/// Connection-tracking settings (timeouts in seconds): the one type for them, from the
/// config file and the API's state format to `Conntrack::new` (which reads the capacity
/// and the timeouts; the fragment limits are the pipeline's). [`CONNTRACK_FIELDS`] lists
/// every field once with its config key and its accepted range.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConntrackSettings {
    /// Maximum number of tracked connections per worker.
    pub capacity: usize,
    /// Maximum number of tracked connections of one port (conntrack zone) per worker, so
    /// that one instance cannot fill the table for the others; 0 = no limit. A new
    /// connection over it first evicts the port's oldest unassured connection
    /// (half-open, closed or unreplied), else it is dropped (`conntrack-zone-full`).
    /// Absent from state files written before it existed (the default), and not written
    /// when it is the default, so those files re-encode byte for byte.
    #[serde(
        default = "default_per_port_limit",
        skip_serializing_if = "is_default_per_port_limit"
    )]
    pub per_port_limit: usize,
    /// TCP `SYN_SENT`, `SYN_SENT2`, `SYN_RECV`.
    pub tcp_syn_timeout: u64,
    /// TCP `ESTABLISHED`.
    pub tcp_established_timeout: u64,
    /// TCP `FIN_WAIT`, `CLOSE_WAIT`, `LAST_ACK`, `TIME_WAIT`.
    pub tcp_fin_timeout: u64,
    /// TCP `CLOSE` (after a RST).
    pub tcp_close_timeout: u64,
    /// UDP before a reply was seen.
    pub udp_timeout: u64,
    /// UDP after a reply was seen.
    pub udp_stream_timeout: u64,
    /// ICMP queries.
    pub icmp_timeout: u64,
    /// Other protocols.
    pub other_timeout: u64,
    /// Maximum number of fragments held while waiting for a datagram's first fragment.
    pub max_pending_fragments: usize,
    /// How long a datagram's fragment verdict (or pending fragments) is kept.
    pub fragment_timeout: u64,
}

/// The default of [`ConntrackSettings::per_port_limit`]: a quarter of the default
/// capacity, so that a flood between two ports (which takes entries in the sender's zone
/// and in the receiver's) holds at most half of a worker's table by default.
pub const DEFAULT_PER_PORT_LIMIT: usize = 65_536;

fn default_per_port_limit() -> usize {
    DEFAULT_PER_PORT_LIMIT
}

fn is_default_per_port_limit(v: &usize) -> bool {
    *v == DEFAULT_PER_PORT_LIMIT
}

impl Default for ConntrackSettings {
    fn default() -> Self {
        ConntrackSettings {
            capacity: 262_144,
            per_port_limit: DEFAULT_PER_PORT_LIMIT,
            tcp_syn_timeout: 120,
            tcp_established_timeout: 86_400,
            tcp_fin_timeout: 120,
            tcp_close_timeout: 10,
            udp_timeout: 30,
            udp_stream_timeout: 120,
            icmp_timeout: 30,
            other_timeout: 600,
            max_pending_fragments: 1024,
            fragment_timeout: 30,
        }
    }
}

/// One field of [`ConntrackSettings`] as the outside sees it: its key in the config
/// file's `[conntrack]` table, its field name (validation paths, the state format), how
/// to read and set it, and the range validation accepts (with the error's reason).
#[derive(Clone, Copy, Debug)]
pub struct ConntrackField {
    /// Key in the config file's `[conntrack]` table.
    pub key: &'static str,
    /// Field name of [`ConntrackSettings`].
    pub field: &'static str,
    pub get: fn(&ConntrackSettings) -> u64,
    /// Sets the field (a count above `usize::MAX` saturates).
    pub set: fn(&mut ConntrackSettings, u64),
    /// Accepted range, inclusive.
    pub min: u64,
    pub max: u64,
    /// The `OutOfRange` reason when the value is outside `min..=max`.
    pub reason: &'static str,
}

const TIMEOUT_RANGE: &str = "timeouts are 1..31536000 seconds";

/// A [`ConntrackField`] row for a `u64` timeout field of 1..=[`validate::MAX_TIMEOUT_SECS`].
macro_rules! timeout_field {
    ($key:literal, $field:ident) => {
        ConntrackField {
            key: $key,
            field: stringify!($field),
            get: |c| c.$field,
            set: |c, v| c.$field = v,
            min: 1,
            max: validate::MAX_TIMEOUT_SECS,
            reason: TIMEOUT_RANGE,
        }
    };
}

/// Every field of [`ConntrackSettings`], in config-file order. Config reading and
/// writing (`control::config`) and validation go through this table: a new setting is
/// its field (with its default) and one row here.
pub const CONNTRACK_FIELDS: &[ConntrackField] = &[
    ConntrackField {
        key: "capacity",
        field: "capacity",
        get: |c| c.capacity as u64,
        set: |c, v| c.capacity = usize::try_from(v).unwrap_or(usize::MAX),
        min: 1,
        max: validate::MAX_CONNTRACK_CAPACITY as u64,
        reason: "capacity is 1..1073741824 connections",
    },
    ConntrackField {
        key: "per_port_limit",
        field: "per_port_limit",
        get: |c| c.per_port_limit as u64,
        set: |c, v| c.per_port_limit = usize::try_from(v).unwrap_or(usize::MAX),
        min: 0,
        max: validate::MAX_CONNTRACK_CAPACITY as u64,
        reason: "per_port_limit is 0 (no limit) or 1..1073741824 connections",
    },
    timeout_field!("tcp_syn", tcp_syn_timeout),
    timeout_field!("tcp_established", tcp_established_timeout),
    timeout_field!("tcp_fin", tcp_fin_timeout),
    timeout_field!("tcp_close", tcp_close_timeout),
    timeout_field!("udp", udp_timeout),
    timeout_field!("udp_stream", udp_stream_timeout),
    timeout_field!("icmp", icmp_timeout),
    timeout_field!("other", other_timeout),
    ConntrackField {
        key: "fragment",
        field: "fragment_timeout",
        get: |c| c.fragment_timeout,
        set: |c, v| c.fragment_timeout = v,
        min: 1,
        max: validate::MAX_FRAGMENT_TIMEOUT_SECS,
        reason: "the fragment timeout is 1..3600 seconds",
    },
    ConntrackField {
        key: "max_pending_fragments",
        field: "max_pending_fragments",
        get: |c| c.max_pending_fragments as u64,
        set: |c, v| c.max_pending_fragments = usize::try_from(v).unwrap_or(usize::MAX),
        min: 0,
        max: validate::MAX_PENDING_FRAGMENTS as u64,
        reason: "at most 1048576 pending fragments",
    },
];

/// Which verdicts a packet log records (Neutron logging API `event`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Hash)]
pub enum LogEvent {
    /// Connections admitted by a rule (one record per connection).
    Accept,
    /// Dropped packets (one record per packet).
    Drop,
    /// Both.
    #[default]
    All,
}

impl LogEvent {
    /// Neutron's name: `ACCEPT`, `DROP`, `ALL`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogEvent::Accept => "ACCEPT",
            LogEvent::Drop => "DROP",
            LogEvent::All => "ALL",
        }
    }

    /// Whether admitted connections are recorded.
    pub fn accepts(self) -> bool {
        matches!(self, LogEvent::Accept | LogEvent::All)
    }

    /// Whether dropped packets are recorded.
    pub fn drops(self) -> bool {
        matches!(self, LogEvent::Drop | LogEvent::All)
    }
}

/// A Neutron packet-logging object (`/v2.0/log/logs`, resource type `security_group`):
/// which ports' verdicts are written to the packet log. `resource` names a security
/// group (`None`: every group), `target` a port (`None`: every port using the group, or
/// every port when `resource` is `None` too). A disabled log records nothing.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct NetworkLog {
    pub name: String,
    pub description: String,
    pub resource: Option<String>,
    pub target: Option<String>,
    pub event: LogEvent,
    pub enabled: bool,
}

/// The whole declarative model.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Model {
    pub security_groups: Vec<SecurityGroup>,
    pub address_groups: Vec<AddressGroup>,
    pub ports: Vec<Port>,
    pub networks: Vec<Network>,
    /// Non-IP, non-ARP ethertypes allowed through port security (default empty).
    pub permitted_ethertypes: Vec<u16>,
    pub conntrack: ConntrackSettings,
    /// Packet-logging objects (Neutron's logging extension).
    pub logs: Vec<NetworkLog>,
    /// Addresses of a security group's members that are not ports of this model (ports
    /// bound on other hosts, as a host agent learns them from the shared store's
    /// `members/` keys), by group name: fixed IPs as host prefixes and allowed-address-pair
    /// CIDRs. A rule's `Remote::Group(g)` matches the union of `g`'s local member ports'
    /// addresses and `remote_members[g]`. Empty for a single host; never in config files
    /// or the state file (a host's view, not shared policy); not validated beyond
    /// parsing (the store's API validated the ports they come from).
    pub remote_members: BTreeMap<String, Vec<IpNet>>,
    /// The overlay's hosts known to this switch, this one included (a static config's
    /// `[[hosts]]`, or the live hosts of a shared store). Names and VTEPs are unique.
    pub hosts: Vec<Host>,
    /// This switch's host name (`[overlay] host`, `run --host`). `None`: single host,
    /// every port is local as before the overlay existed. With `Some(h)`, a port whose
    /// `host` is another name is remote ([`Model::is_remote`]).
    pub local_host: Option<String>,
}

impl Model {
    /// Validate a model as written (see [`validate::validate_model`]).
    pub fn validate(spec: &spec::ModelSpec) -> Result<Model, ValidationErrors> {
        validate::validate_model(spec)
    }

    /// [`Model::validate`] reusing the groups `memo` remembers from earlier validations
    /// (see [`validate::GroupMemo`]).
    pub fn validate_with(
        spec: &spec::ModelSpec,
        memo: &mut validate::GroupMemo,
    ) -> Result<Model, ValidationErrors> {
        validate::validate_model_with(spec, memo)
    }

    /// The effective rules of `port`: the union of the rules of its groups, as
    /// `(ingress, egress)` counts (rules are counted once per group they appear in).
    pub fn effective_rule_counts(&self, port: &Port) -> (usize, usize) {
        let mut ingress = 0;
        let mut egress = 0;
        for g in port.security_groups.iter().filter_map(|n| self.group(n)) {
            for r in &g.rules {
                match r.direction {
                    Direction::Ingress => ingress += 1,
                    Direction::Egress => egress += 1,
                }
            }
        }
        (ingress, egress)
    }

    /// The ports bound to the security group `name`.
    pub fn ports_in_group<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Port> + 'a {
        self.ports
            .iter()
            .filter(move |p| p.security_groups.iter().any(|g| g == name))
    }

    /// Whether `port` is bound to another host than this one: not attached here, its
    /// MACs and IPs are reached through the tunnel to its host's VTEP. Always `false`
    /// without a local host, and for an unbound port (`host == None`: local). A remote
    /// port whose host is not in [`Model::hosts`] is still remote (not an error: a
    /// shared store's host may have gone away while its ports stay); it is unreachable
    /// (frames to it are dropped, counted) until its host is known.
    pub fn is_remote(&self, port: &Port) -> bool {
        match (&self.local_host, &port.host) {
            (Some(local), Some(h)) => h != local,
            _ => false,
        }
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    pub fn network(&self, name: &str) -> Option<&Network> {
        self.networks.iter().find(|n| n.name == name)
    }

    pub fn group(&self, name: &str) -> Option<&SecurityGroup> {
        self.security_groups.iter().find(|g| g.name == name)
    }
    pub fn address_group(&self, name: &str) -> Option<&AddressGroup> {
        self.address_groups.iter().find(|g| g.name == name)
    }
    pub fn port(&self, name: &str) -> Option<&Port> {
        self.ports.iter().find(|p| p.name == name)
    }
    pub fn port_index(&self, name: &str) -> Option<usize> {
        self.ports.iter().position(|p| p.name == name)
    }
}
