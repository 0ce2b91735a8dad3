//! The key layout of the shared store (etcd, or the local store's keys): every key
//! under one prefix, JSON values with Neutron field names. docs/scale-out.md shows it
//! to operators; this module is its one definition (key builders, value types).
//!
//! ```text
//! P = the prefix (default "/sgswitch/")
//! P"schema"                           {"schema_version":1,"written_by":"sgswitch 0.1.0"}
//! P"settings"                         {"conntrack":{..},"permitted_ethertypes":[..]}
//! P"write-seq"                        "N": every API write compares and bumps it
//! P"security-groups/"ID               GroupValue (its rules inside)
//! P"address-groups/"ID                AddressGroupValue
//! P"networks/"ID                      NetworkValue
//! P"ports/"ID                         PortValue (binding:host_id = its host)
//! P"logs/"ID                          LogValue
//! P"host-ports/"HOST"/"PORT_ID        "" (per-host index of bound ports)
//! P"members/"GROUP_ID"/"PORT_ID       MemberValue (one key per member port)
//! P"net-ports/"NETWORK_ID"/"PORT_ID   NetPortValue (one key per bound port: l2population)
//! P"hosts/"HOST                       HostValue (its VTEP and UDP ports), bound to the host's lease
//! P"status/"HOST                      StatusValue (revision applied, errors)
//! ```
//!
//! **Schema version.** `net-ports/`, `HostValue::vtep` and `HostValue::udp_ports` were
//! added without a version bump (still 1): a host of the previous layout does not watch
//! `net-ports/` and ignores the unknown `vtep` and `udp_ports` fields (no value type here
//! denies unknown fields), so it reads nothing wrongly; a value without them still
//! decodes (both optional). What it cannot do is keep the index: an API server of the previous
//! layout writes ports without their `net-ports/` key, and a port written before the
//! index existed has none; [`crate::control::store`]'s shared mode writes the missing
//! and stale index keys when it opens (the first new API server repairs the prefix).
//! Run API servers of one version on a prefix.
//!
//! Owns: key names and value types. May not touch: the store, the model (conversions
//! live in [`super::codec`]).

use serde::{Deserialize, Serialize};

use crate::policy::Encap;

/// The layout's version; a host that finds another one in `P"schema"` refuses to start.
pub const SCHEMA_VERSION: u32 = 1;

/// The default prefix.
pub const DEFAULT_PREFIX: &str = "/sgswitch/";

/// Key builders for one prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix` (a trailing `/` is added when missing).
    pub fn new(prefix: &str) -> Keys {
        let mut prefix = prefix.to_string();
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        Keys { prefix }
    }
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
    pub fn schema(&self) -> String {
        format!("{}schema", self.prefix)
    }
    pub fn settings(&self) -> String {
        format!("{}settings", self.prefix)
    }
    pub fn write_seq(&self) -> String {
        format!("{}write-seq", self.prefix)
    }
    pub fn groups(&self) -> String {
        format!("{}security-groups/", self.prefix)
    }
    pub fn group(&self, id: &str) -> String {
        format!("{}security-groups/{id}", self.prefix)
    }
    pub fn address_groups(&self) -> String {
        format!("{}address-groups/", self.prefix)
    }
    pub fn address_group(&self, id: &str) -> String {
        format!("{}address-groups/{id}", self.prefix)
    }
    pub fn networks(&self) -> String {
        format!("{}networks/", self.prefix)
    }
    pub fn network(&self, id: &str) -> String {
        format!("{}networks/{id}", self.prefix)
    }
    pub fn ports(&self) -> String {
        format!("{}ports/", self.prefix)
    }
    pub fn port(&self, id: &str) -> String {
        format!("{}ports/{id}", self.prefix)
    }
    pub fn logs(&self) -> String {
        format!("{}logs/", self.prefix)
    }
    pub fn log(&self, id: &str) -> String {
        format!("{}logs/{id}", self.prefix)
    }
    pub fn host_ports(&self, host: &str) -> String {
        format!("{}host-ports/{host}/", self.prefix)
    }
    pub fn host_port(&self, host: &str, port_id: &str) -> String {
        format!("{}host-ports/{host}/{port_id}", self.prefix)
    }
    pub fn members(&self, group_id: &str) -> String {
        format!("{}members/{group_id}/", self.prefix)
    }
    pub fn member(&self, group_id: &str, port_id: &str) -> String {
        format!("{}members/{group_id}/{port_id}", self.prefix)
    }
    /// `net-ports/NETWORK_ID/`: the bound ports of one network (l2population).
    pub fn net_ports(&self, network_id: &str) -> String {
        format!("{}net-ports/{network_id}/", self.prefix)
    }
    pub fn net_port(&self, network_id: &str, port_id: &str) -> String {
        format!("{}net-ports/{network_id}/{port_id}", self.prefix)
    }
    /// `net-ports/`: every network's index (the API server's repair reads it).
    pub fn all_net_ports(&self) -> String {
        format!("{}net-ports/", self.prefix)
    }
    pub fn hosts(&self) -> String {
        format!("{}hosts/", self.prefix)
    }
    pub fn host(&self, host: &str) -> String {
        format!("{}hosts/{host}", self.prefix)
    }
    pub fn statuses(&self) -> String {
        format!("{}status/", self.prefix)
    }
    pub fn status(&self, host: &str) -> String {
        format!("{}status/{host}", self.prefix)
    }
    /// The last path element of `key` (an id or a host name).
    pub fn leaf(key: &str) -> &str {
        key.rsplit('/').next().unwrap_or(key)
    }
}

/// `P"schema"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaValue {
    pub schema_version: u32,
    pub written_by: String,
}

/// Neutron's object metadata, as in its API answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaValue {
    pub id: String,
    /// RFC 3339.
    pub created_at: String,
    pub updated_at: String,
    pub revision_number: u64,
}

/// One rule of a group (inside [`GroupValue`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "RuleWire")]
pub struct RuleValue {
    #[serde(flatten)]
    pub meta: MetaValue,
    /// "ingress" | "egress".
    pub direction: String,
    /// "IPv4" | "IPv6".
    pub ethertype: String,
    /// A protocol number as text ("6"), a name ("tcp"), or null (any).
    pub protocol: Option<String>,
    pub port_range_min: Option<u16>,
    pub port_range_max: Option<u16>,
    pub remote_ip_prefix: Option<String>,
    pub remote_group_id: Option<String>,
    pub remote_address_group_id: Option<String>,
    #[serde(default)]
    pub description: String,
}

/// `P"security-groups/"ID`: a group with its rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "GroupWire")]
pub struct GroupValue {
    #[serde(flatten)]
    pub meta: MetaValue,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub stateful: bool,
    pub security_group_rules: Vec<RuleValue>,
}

/// `P"address-groups/"ID`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressGroupValue {
    #[serde(flatten)]
    pub meta: MetaValue,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// CIDRs.
    pub addresses: Vec<String>,
}

/// `P"networks/"ID`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkValue {
    #[serde(flatten)]
    pub meta: MetaValue,
    pub name: String,
    /// The ids of its implicit IPv4 and IPv6 subnets.
    pub subnets: Vec<String>,
    /// The overlay encapsulation, `geneve` or `vxlan` (Neutron's provider extension;
    /// absent: Geneve).
    #[serde(
        rename = "provider:network_type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub network_type: Option<String>,
    /// The VNI (absent: a host derives it from the network's id, the same everywhere).
    #[serde(
        rename = "provider:segmentation_id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub segmentation_id: Option<u32>,
}

/// One allowed address pair of a port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressPairValue {
    pub ip_address: String,
    pub mac_address: Option<String>,
}

/// `P"ports/"ID`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "PortWire")]
pub struct PortValue {
    #[serde(flatten)]
    pub meta: MetaValue,
    pub name: String,
    pub network_id: String,
    pub mac_address: String,
    /// Addresses (no subnet ids: they follow from the network).
    pub fixed_ips: Vec<String>,
    /// Group ids.
    pub security_groups: Vec<String>,
    pub port_security_enabled: bool,
    #[serde(default)]
    pub allowed_address_pairs: Vec<AddressPairValue>,
    /// The host whose switch the port plugs into (`None`: not bound).
    #[serde(rename = "binding:host_id", default)]
    pub host_id: Option<String>,
    /// The backend, as the API's `binding:profile` (`{}`: none).
    #[serde(rename = "binding:profile", default)]
    pub profile: serde_json::Map<String, serde_json::Value>,
}

// Decoding without `#[serde(flatten)]`: a flattened struct is decoded through serde's
// buffered `Content` (every field, and for a group its whole rule array, copied into a
// generic tree and decoded again from it), which made the decode of a 100-rule group
// most of an agent's decode time (#18). The wire types below list the metadata fields
// inline and decode the same JSON straight; writing keeps the flattened derive (the
// same field names, so the same JSON). `wire_decode_equals_flattened` checks both agree.

#[derive(Deserialize)]
struct RuleWire {
    id: String,
    created_at: String,
    updated_at: String,
    revision_number: u64,
    direction: String,
    ethertype: String,
    protocol: Option<String>,
    port_range_min: Option<u16>,
    port_range_max: Option<u16>,
    remote_ip_prefix: Option<String>,
    remote_group_id: Option<String>,
    remote_address_group_id: Option<String>,
    #[serde(default)]
    description: String,
}

impl From<RuleWire> for RuleValue {
    fn from(w: RuleWire) -> RuleValue {
        RuleValue {
            meta: MetaValue {
                id: w.id,
                created_at: w.created_at,
                updated_at: w.updated_at,
                revision_number: w.revision_number,
            },
            direction: w.direction,
            ethertype: w.ethertype,
            protocol: w.protocol,
            port_range_min: w.port_range_min,
            port_range_max: w.port_range_max,
            remote_ip_prefix: w.remote_ip_prefix,
            remote_group_id: w.remote_group_id,
            remote_address_group_id: w.remote_address_group_id,
            description: w.description,
        }
    }
}

#[derive(Deserialize)]
struct GroupWire {
    id: String,
    created_at: String,
    updated_at: String,
    revision_number: u64,
    name: String,
    #[serde(default)]
    description: String,
    stateful: bool,
    security_group_rules: Vec<RuleValue>,
}

impl From<GroupWire> for GroupValue {
    fn from(w: GroupWire) -> GroupValue {
        GroupValue {
            meta: MetaValue {
                id: w.id,
                created_at: w.created_at,
                updated_at: w.updated_at,
                revision_number: w.revision_number,
            },
            name: w.name,
            description: w.description,
            stateful: w.stateful,
            security_group_rules: w.security_group_rules,
        }
    }
}

#[derive(Deserialize)]
struct PortWire {
    id: String,
    created_at: String,
    updated_at: String,
    revision_number: u64,
    name: String,
    network_id: String,
    mac_address: String,
    fixed_ips: Vec<String>,
    security_groups: Vec<String>,
    port_security_enabled: bool,
    #[serde(default)]
    allowed_address_pairs: Vec<AddressPairValue>,
    #[serde(rename = "binding:host_id", default)]
    host_id: Option<String>,
    #[serde(rename = "binding:profile", default)]
    profile: serde_json::Map<String, serde_json::Value>,
}

impl From<PortWire> for PortValue {
    fn from(w: PortWire) -> PortValue {
        PortValue {
            meta: MetaValue {
                id: w.id,
                created_at: w.created_at,
                updated_at: w.updated_at,
                revision_number: w.revision_number,
            },
            name: w.name,
            network_id: w.network_id,
            mac_address: w.mac_address,
            fixed_ips: w.fixed_ips,
            security_groups: w.security_groups,
            port_security_enabled: w.port_security_enabled,
            allowed_address_pairs: w.allowed_address_pairs,
            host_id: w.host_id,
            profile: w.profile,
        }
    }
}

/// `P"members/"GROUP_ID"/"PORT_ID`: what a member port adds to its group's address set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberValue {
    /// Fixed IPs as host prefixes and allowed-address-pair CIDRs.
    pub addresses: Vec<String>,
    pub network_id: String,
}

/// `P"net-ports/"NETWORK_ID"/"PORT_ID`: what another host of the network needs to reach
/// a bound port (Neutron's l2population: no flooding to learn): its addresses and its
/// host. Written by the API in the port's transaction, for every port with a
/// `binding:host_id` (port security or not).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetPortValue {
    /// The port's name (a host's model names the remote port by it, `NAME@ID` on a clash).
    #[serde(default)]
    pub name: String,
    pub mac_address: String,
    /// Addresses (no subnet ids).
    pub fixed_ips: Vec<String>,
    /// Its allowed address pairs (CIDR, and the MAC when it is not the port's).
    #[serde(default)]
    pub allowed_address_pairs: Vec<AddressPairValue>,
    /// Without port security the port may send from any address (a receiving host must
    /// not take its frames for spoofed ones).
    #[serde(default = "yes")]
    pub port_security_enabled: bool,
    #[serde(rename = "binding:host_id")]
    pub host_id: String,
}

fn yes() -> bool {
    true
}

/// `P"logs/"ID` (Neutron's logging extension).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogValue {
    #[serde(flatten)]
    pub meta: MetaValue,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Group id (`None`: every group).
    pub resource_id: Option<String>,
    /// Port id (`None`: every port).
    pub target_id: Option<String>,
    /// "ALL" | "ACCEPT" | "DROP".
    pub event: String,
    pub enabled: bool,
}

/// `P"hosts/"HOST`: a live host (the key vanishes with its lease).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostValue {
    pub host_id: String,
    pub version: String,
    pub pid: u32,
    /// RFC 3339.
    pub started_at: String,
    /// The host's VTEP (its underlay address: tunnels to its ports end there), from its
    /// own overlay settings (`run --vtep`, the config's `[overlay]`). Absent: the host
    /// has no overlay; its ports are unreachable from other hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vtep: Option<String>,
    /// The UDP destination ports its tunnel endpoint receives each encapsulation on,
    /// written with `vtep` (`"udp_ports":{"geneve":6081,"vxlan":4789}`). Absent (a host
    /// of the previous layout, or one without a VTEP): the IANA ports
    /// ([`HostValue::udp_port`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp_ports: Option<EncapPorts>,
}

/// The UDP destination port of each encapsulation at one host's VTEP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncapPorts {
    pub geneve: u16,
    pub vxlan: u16,
}

impl Default for EncapPorts {
    /// The IANA ports, what sgswitch receives on: Geneve 6081, VXLAN 4789.
    fn default() -> Self {
        EncapPorts {
            geneve: Encap::Geneve.udp_port(),
            vxlan: Encap::Vxlan.udp_port(),
        }
    }
}

impl EncapPorts {
    /// The port of `encap`.
    pub fn get(&self, encap: Encap) -> u16 {
        match encap {
            Encap::Geneve => self.geneve,
            Encap::Vxlan => self.vxlan,
        }
    }
}

impl HostValue {
    /// The UDP port a peer sends `encap` frames to at this host's VTEP: the published
    /// one, else the IANA port.
    pub fn udp_port(&self, encap: Encap) -> u16 {
        self.udp_ports.unwrap_or_default().get(encap)
    }
}

/// One error a host reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostError {
    /// The object concerned (`security-groups/ID`, `ports/ID`), or "".
    pub object: String,
    pub message: String,
}

/// `P"status/"HOST`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusValue {
    pub host_id: String,
    /// The store revision whose state the host's dataplane enforces.
    pub applied_revision: i64,
    /// RFC 3339.
    pub applied_at: String,
    #[serde(default)]
    pub errors: Vec<HostError>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_values_publish_their_udp_ports_and_old_ones_still_decode() {
        let old = r#"{"host_id":"h1","version":"0.1.0","pid":7,"started_at":"2026-12-07T00:00:00Z","vtep":"10.9.0.1"}"#;
        let v: HostValue = serde_json::from_str(old).unwrap();
        assert_eq!(v.udp_ports, None);
        assert_eq!(
            (v.udp_port(Encap::Geneve), v.udp_port(Encap::Vxlan)),
            (6081, 4789)
        );
        let new = HostValue {
            udp_ports: Some(EncapPorts {
                geneve: 6081,
                vxlan: 8472,
            }),
            ..v
        };
        let text = serde_json::to_string(&new).unwrap();
        assert!(
            text.contains(r#""udp_ports":{"geneve":6081,"vxlan":8472}"#),
            "{text}"
        );
        let back: HostValue = serde_json::from_str(&text).unwrap();
        assert_eq!(back, new);
        assert_eq!(back.udp_port(Encap::Vxlan), 8472);
        // Unknown fields (a newer layout's) are ignored.
        let newer = text.replace("\"pid\"", "\"future\":1,\"pid\"");
        assert_eq!(serde_json::from_str::<HostValue>(&newer).unwrap(), new);
    }

    /// The decoders before the wire types (`#[serde(flatten)]` of the metadata): the
    /// reference the wire types must agree with.
    mod flat {
        use super::super::{AddressPairValue, MetaValue};
        use serde::Deserialize;

        #[derive(Deserialize, Debug)]
        pub struct Rule {
            #[serde(flatten)]
            pub meta: MetaValue,
            pub direction: String,
            pub ethertype: String,
            pub protocol: Option<String>,
            pub port_range_min: Option<u16>,
            pub port_range_max: Option<u16>,
            pub remote_ip_prefix: Option<String>,
            pub remote_group_id: Option<String>,
            pub remote_address_group_id: Option<String>,
            #[serde(default)]
            pub description: String,
        }

        #[derive(Deserialize, Debug)]
        pub struct Group {
            #[serde(flatten)]
            pub meta: MetaValue,
            pub name: String,
            #[serde(default)]
            pub description: String,
            pub stateful: bool,
            pub security_group_rules: Vec<Rule>,
        }

        #[derive(Deserialize, Debug)]
        pub struct Port {
            #[serde(flatten)]
            pub meta: MetaValue,
            pub name: String,
            pub network_id: String,
            pub mac_address: String,
            pub fixed_ips: Vec<String>,
            pub security_groups: Vec<String>,
            pub port_security_enabled: bool,
            #[serde(default)]
            pub allowed_address_pairs: Vec<AddressPairValue>,
            #[serde(rename = "binding:host_id", default)]
            pub host_id: Option<String>,
            #[serde(rename = "binding:profile", default)]
            pub profile: serde_json::Map<String, serde_json::Value>,
        }
    }

    fn rule_of(r: flat::Rule) -> RuleValue {
        RuleValue {
            meta: r.meta,
            direction: r.direction,
            ethertype: r.ethertype,
            protocol: r.protocol,
            port_range_min: r.port_range_min,
            port_range_max: r.port_range_max,
            remote_ip_prefix: r.remote_ip_prefix,
            remote_group_id: r.remote_group_id,
            remote_address_group_id: r.remote_address_group_id,
            description: r.description,
        }
    }

    fn group_of(g: flat::Group) -> GroupValue {
        GroupValue {
            meta: g.meta,
            name: g.name,
            description: g.description,
            stateful: g.stateful,
            security_group_rules: g.security_group_rules.into_iter().map(rule_of).collect(),
        }
    }

    fn port_of(p: flat::Port) -> PortValue {
        PortValue {
            meta: p.meta,
            name: p.name,
            network_id: p.network_id,
            mac_address: p.mac_address,
            fixed_ips: p.fixed_ips,
            security_groups: p.security_groups,
            port_security_enabled: p.port_security_enabled,
            allowed_address_pairs: p.allowed_address_pairs,
            host_id: p.host_id,
            profile: p.profile,
        }
    }

    /// Decode `text` both ways: the same value, or both refuse it.
    fn same<W, F>(text: &str, conv: impl Fn(F) -> W) -> Option<W>
    where
        W: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
        F: serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let wire = serde_json::from_str::<W>(text);
        let flat = serde_json::from_str::<F>(text).map(conv);
        match (wire, flat) {
            (Ok(w), Ok(f)) => {
                assert_eq!(w, f, "{text}");
                Some(w)
            }
            (Err(_), Err(_)) => None,
            (w, f) => panic!("{text}: wire {w:?}, flattened {f:?}"),
        }
    }

    /// Cut one `"field":value` out of a JSON object's text (the value has no comma:
    /// numbers, strings without commas, null, booleans).
    fn without(text: &str, field: &str) -> String {
        let k = format!("\"{field}\":");
        let Some(at) = text.find(&k) else {
            return text.to_string();
        };
        let rest = &text[at..];
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        let mut t = format!("{}{}", &text[..at], &rest[end..]);
        t = t.replace(",,", ",").replace("{,", "{").replace(",}", "}");
        t
    }

    #[test]
    fn wire_decode_equals_flattened() {
        let meta = |i: u64| MetaValue {
            id: format!("id{i}"),
            created_at: "2026-12-08T00:00:00Z".into(),
            updated_at: "2026-12-08T00:00:01Z".into(),
            revision_number: i,
        };
        let rules: Vec<RuleValue> = (0..24u64)
            .map(|i| RuleValue {
                meta: meta(i),
                direction: ["ingress", "egress"][i as usize % 2].into(),
                ethertype: ["IPv4", "IPv6"][i as usize / 2 % 2].into(),
                protocol: [None, Some("tcp".into()), Some("17".into())][i as usize % 3].clone(),
                port_range_min: (i % 4 != 0).then_some(i as u16 * 100),
                port_range_max: (i % 4 == 1).then_some(i as u16 * 100 + 10),
                remote_ip_prefix: (i % 5 == 0).then(|| format!("10.{i}.0.0/16")),
                remote_group_id: (i % 5 == 1).then(|| format!("g{i}")),
                remote_address_group_id: (i % 5 == 2).then(|| format!("a{i}")),
                description: if i % 2 == 0 {
                    String::new()
                } else {
                    format!("r {i}")
                },
            })
            .collect();
        let mut checked = 0;
        for (i, r) in rules.iter().enumerate() {
            let text = serde_json::to_string(r).unwrap();
            assert_eq!(same(&text, rule_of).as_ref(), Some(r), "round trip {text}");
            // Unknown fields are ignored; absent optional fields decode as before;
            // absent required ones fail both ways.
            same(
                &text.replacen('{', "{\"future\":[1,{\"x\":2}],", 1),
                rule_of,
            )
            .expect("an unknown field");
            for f in [
                "id",
                "created_at",
                "revision_number",
                "direction",
                "protocol",
                "port_range_min",
                "remote_group_id",
                "description",
            ] {
                let cut = without(&text, f);
                let decoded = same(&cut, rule_of);
                let required = ["id", "created_at", "revision_number", "direction"];
                assert_eq!(decoded.is_none(), required.contains(&f), "{cut}");
                checked += 1;
            }
            // A wrong type fails both ways.
            let bad = text.replace("\"revision_number\":", "\"revision_number\":\"x\",\"y\":");
            assert!(same(&bad, rule_of).is_none(), "{bad}");
            let g = GroupValue {
                meta: meta(100 + i as u64),
                name: format!("grp{i}"),
                description: "d".into(),
                stateful: i % 2 == 0,
                security_group_rules: rules[..i].to_vec(),
            };
            let text = serde_json::to_string(&g).unwrap();
            assert_eq!(same(&text, group_of).as_ref(), Some(&g), "{text}");
            assert!(same(&without(&text, "stateful"), group_of).is_none());
            assert!(same(&without(&text, "updated_at"), group_of).is_none());
            let p = PortValue {
                meta: meta(200 + i as u64),
                name: format!("p{i}"),
                network_id: "n".into(),
                mac_address: "fa:16:3e:00:00:01".into(),
                fixed_ips: vec![format!("10.0.0.{i}")],
                security_groups: vec![format!("g{i}")],
                port_security_enabled: i % 3 != 0,
                allowed_address_pairs: Vec::new(),
                host_id: (i % 2 == 0).then(|| "h1".into()),
                profile: serde_json::Map::new(),
            };
            let text = serde_json::to_string(&p).unwrap();
            assert_eq!(same(&text, port_of).as_ref(), Some(&p), "{text}");
            let cut = without(&text, "binding:host_id");
            assert_eq!(same(&cut, port_of).map(|p| p.host_id), Some(None), "{cut}");
        }
        assert_eq!(checked, 24 * 8);
    }
}
