//! The model as a user writes it, before validation.
//!
//! These types hold what a config file (or an API request body) says, loosely typed
//! where Neutron accepts several forms (a protocol is a name, a number or a numeric
//! string; a port bound is a number or a numeric string) and with every optional field
//! an `Option`, so that *validation* — not the parser — decides about defaults and
//! reports missing values with a field path. [`super::validate`] turns a [`ModelSpec`]
//! into a [`super::Model`].
//!
//! Lists keep the user's order and length: the index of an element here is the index in
//! the source document, which is how error paths map back to file lines.
//!
//! The serde form (the derives) is the control plane's state file, not the config file
//! (read with line numbers by `control::config`) nor an API body (decoded per verb by
//! `control::api`): every struct refuses unknown fields, a [`Scalar`] is a bare number or
//! string, a backend is tagged by `type`, an address pair is the compact
//! `[ip_address, mac_address]` and a network is its bare name. Changing it changes
//! that file format.
//!
//! Owns: the written form of the model and its serde form. May not touch: validation or
//! defaults (a spec may hold anything; [`super::validate`] decides). Depends only on
//! [`super::ConntrackSettings`], which a spec holds as it is.

use serde::{Deserialize, Serialize};

use super::ConntrackSettings;

/// A scalar that may be written as a number or as a string.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Int(i64),
    Str(String),
}

impl std::fmt::Display for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scalar::Int(n) => write!(f, "{n}"),
            Scalar::Str(s) => write!(f, "{s:?}"),
        }
    }
}

impl From<i64> for Scalar {
    fn from(n: i64) -> Self {
        Scalar::Int(n)
    }
}

impl From<&str> for Scalar {
    fn from(s: &str) -> Self {
        Scalar::Str(s.to_string())
    }
}

/// A security-group rule as written.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub direction: Option<String>,
    pub ethertype: Option<String>,
    pub protocol: Option<Scalar>,
    pub port_range_min: Option<Scalar>,
    pub port_range_max: Option<Scalar>,
    pub remote_ip_prefix: Option<String>,
    /// Name of a security group.
    pub remote_group: Option<String>,
    /// Name of an address group.
    pub remote_address_group: Option<String>,
    pub description: Option<String>,
}

/// A security group as written.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityGroupSpec {
    pub name: Option<String>,
    pub description: Option<String>,
    /// Default `true`.
    pub stateful: Option<bool>,
    /// `None`: the template rules (2 egress-any rules; 4 rules for `default`).
    pub rules: Option<Vec<RuleSpec>>,
}

/// An address group as written.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressGroupSpec {
    pub name: Option<String>,
    pub description: Option<String>,
    pub addresses: Vec<String>,
}

/// An allowed address pair as written. Serialised as `[ip_address, mac_address]`.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(
    from = "(Option<String>, Option<String>)",
    into = "(Option<String>, Option<String>)"
)]
pub struct AllowedAddressPairSpec {
    pub ip_address: Option<String>,
    pub mac_address: Option<String>,
}

impl From<(Option<String>, Option<String>)> for AllowedAddressPairSpec {
    fn from((ip_address, mac_address): (Option<String>, Option<String>)) -> Self {
        AllowedAddressPairSpec {
            ip_address,
            mac_address,
        }
    }
}

impl From<AllowedAddressPairSpec> for (Option<String>, Option<String>) {
    fn from(a: AllowedAddressPairSpec) -> Self {
        (a.ip_address, a.mac_address)
    }
}

/// A port backend as written (its shape is checked by the parser).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, tag = "type", rename_all = "lowercase")]
pub enum BackendSpec {
    Tap {
        ifname: Option<String>,
        netns: Option<String>,
        vnet_hdr: Option<bool>,
        /// Tap queues (1..=256; default 1): see `Backend::Tap::queues`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queues: Option<u16>,
    },
    AfXdp {
        ifname: Option<String>,
        queue: Option<u32>,
        mode: Option<String>,
    },
    AfPacket {
        ifname: Option<String>,
    },
}

/// A port as written.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortSpec {
    pub name: Option<String>,
    /// Default `"default"`.
    pub network: Option<String>,
    pub mac: Option<String>,
    pub fixed_ips: Vec<String>,
    /// `None`: `["default"]` with port security, `[]` without.
    pub security_groups: Option<Vec<String>>,
    /// Default `true`.
    pub port_security: Option<bool>,
    pub allowed_address_pairs: Vec<AllowedAddressPairSpec>,
    pub backend: Option<BackendSpec>,
    /// `binding:host_id` (`None`: not bound). Absent from (and not written to) state
    /// files for unbound ports, so files written before it existed load unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// A network declaration as written. Serialised as its bare name when it sets no
/// overlay field (so state files written before the overlay load and re-encode
/// unchanged), else as a table `{name, vni?, encap?}`.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(from = "NetworkForm", into = "NetworkForm")]
pub struct NetworkSpec {
    pub name: Option<String>,
    /// The overlay VNI (`None`: derived from the name).
    pub vni: Option<i64>,
    /// `geneve` or `vxlan` (`None`: geneve).
    pub encap: Option<String>,
}

/// The serde form of a [`NetworkSpec`]: a bare name or a table.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum NetworkForm {
    Name(Option<String>),
    Table {
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vni: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        encap: Option<String>,
    },
}

impl From<NetworkForm> for NetworkSpec {
    fn from(f: NetworkForm) -> Self {
        match f {
            NetworkForm::Name(name) => NetworkSpec {
                name,
                ..Default::default()
            },
            NetworkForm::Table { name, vni, encap } => NetworkSpec { name, vni, encap },
        }
    }
}

impl From<NetworkSpec> for NetworkForm {
    fn from(n: NetworkSpec) -> Self {
        match (n.vni, n.encap) {
            (None, None) => NetworkForm::Name(n.name),
            (vni, encap) => NetworkForm::Table {
                name: n.name,
                vni,
                encap,
            },
        }
    }
}

/// An overlay host as written (`[[hosts]]`).
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    pub name: Option<String>,
    /// The VTEP's underlay address.
    pub vtep: Option<String>,
    /// The underlay next hop's MAC for this VTEP (`None`: the kernel's neighbour table).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

/// A packet-logging object as written (Neutron's `log` resource, type
/// `security_group`). Group and port are named, as everywhere in the model.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSpec {
    /// Default `""` (Neutron: log names need not be unique nor given).
    pub name: Option<String>,
    pub description: Option<String>,
    /// Name of a security group (`None`: every group).
    pub resource: Option<String>,
    /// Name of a port (`None`: every port of `resource`, or every port).
    pub target: Option<String>,
    /// `ACCEPT`, `DROP` or `ALL` (default `ALL`).
    pub event: Option<String>,
    /// Default `true`.
    pub enabled: Option<bool>,
}

/// The whole model as written.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub security_groups: Vec<SecurityGroupSpec>,
    pub address_groups: Vec<AddressGroupSpec>,
    pub ports: Vec<PortSpec>,
    /// Extra networks (port networks exist implicitly).
    pub networks: Vec<NetworkSpec>,
    pub permitted_ethertypes: Vec<u16>,
    pub conntrack: ConntrackSettings,
    /// Packet-logging objects. Absent from (and not written to) state files without
    /// any, so that files written before logs existed load and re-encode unchanged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<LogSpec>,
    /// Overlay hosts (absent from state files without any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<HostSpec>,
    /// This switch's host name (`[overlay] host`; absent when not set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_host: Option<String>,
}
