//! The control-plane [`State`] as keys of the shared store, and back: [`state_to_kvs`],
//! [`state_from_kvs`], [`diff`], and the per-value conversions a host agent uses to
//! build its model from the keys it watches ([`group_from_value`], [`port_from_value`],
//! ...).
//!
//! * **Names in the model, ids in the values.** The model names its groups, address
//!   groups, networks and ports (the API's names); the values refer to each other by id
//!   (Neutron's form). Decoding a value takes a `names` lookup (id → name) from its
//!   caller: the whole state for [`state_from_kvs`], the agent's cache for the agent.
//! * **Validated on the way in.** Every decoded object goes through `policy`'s
//!   validators (the whole state through `validate_model`; one group, port, address
//!   group or log through a validator against stub objects holding the names it refers
//!   to), and every error names the key it came from ([`CodecError`]).
//! * **Order.** The keys hold no order between objects: decoding puts the objects of a
//!   kind in (`created_at`, id) order, rules in their group's order. A state the store
//!   keeps in that order ([`canonical`]) round-trips exactly: `state_from_kvs(
//!   state_to_kvs(s)) == canonical(s)` (the property test below).
//! * **Derived keys.** [`state_to_kvs`] writes the per-host index of bound ports
//!   (`host-ports/HOST/PORT` = `""`) and one `members/GROUP/PORT` key per (group, port
//!   with port security) pair; [`state_from_kvs`] ignores them (they follow from the
//!   ports). Schema, write-seq, hosts and status keys are neither written nor read here.
//!
//! Owns: the value ↔ model conversions and the [`SettingsValue`] shape of `P"settings"`
//! (an addition to the layout). May not touch: the store (no I/O here), the key names
//! (that is [`super::layout`]).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::layout::{
    AddressGroupValue, AddressPairValue, GroupValue, Keys, LogValue, MemberValue, MetaValue,
    NetPortValue, NetworkValue, PortValue, RuleValue,
};
use crate::control::kv::Op;
use crate::control::store::to_spec::{port_to_spec, rule_remote};
use crate::control::store::{rfc3339, GroupMeta, Id, Meta, NetworkMeta, ObjMeta, State};
use crate::policy::spec::{
    AddressGroupSpec, AllowedAddressPairSpec, BackendSpec, LogSpec, ModelSpec, NetworkSpec,
    PortSpec, RuleSpec, Scalar, SecurityGroupSpec,
};
use crate::policy::{
    validate, AddressGroup, ConntrackSettings, Model, NetworkLog, Port, SecurityGroup,
    ValidationErrors,
};

/// `P"settings"`: the switch-wide parts of the model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsValue {
    pub conntrack: ConntrackSettings,
    #[serde(default)]
    pub permitted_ethertypes: Vec<u16>,
}

/// A key whose value could not be decoded or does not validate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct CodecError {
    /// The key concerned (`""`: the state as a whole).
    pub key: String,
    pub message: String,
}

impl CodecError {
    fn new(key: &str, message: impl Into<String>) -> CodecError {
        CodecError {
            key: key.to_string(),
            message: message.into(),
        }
    }
}

/// Decode one JSON value (`key` names it in the error).
pub fn decode<T: serde::de::DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, CodecError> {
    serde_json::from_slice(bytes).map_err(|e| CodecError::new(key, format!("bad value: {e}")))
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    // Plain data with string keys: serialising cannot fail.
    serde_json::to_vec(v).unwrap_or_default()
}

// ----- metadata --------------------------------------------------------------------

fn meta_value(m: &ObjMeta) -> MetaValue {
    MetaValue {
        id: m.id.to_string(),
        created_at: rfc3339(m.created_at),
        updated_at: rfc3339(m.updated_at),
        revision_number: m.revision_number,
    }
}

fn parse_time(key: &str, field: &str, text: &str) -> Result<u64, CodecError> {
    let t = humantime::parse_rfc3339(text)
        .map_err(|e| CodecError::new(key, format!("bad {field} {text:?}: {e}")))?;
    Ok(t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0))
}

fn parse_id(key: &str, field: &str, text: &str) -> Result<Id, CodecError> {
    Id::parse(text).ok_or_else(|| CodecError::new(key, format!("bad {field} {text:?}")))
}

/// The [`ObjMeta`] of a value (`key` names it in errors).
pub fn obj_meta(key: &str, m: &MetaValue) -> Result<ObjMeta, CodecError> {
    Ok(ObjMeta {
        id: parse_id(key, "id", &m.id)?,
        created_at: parse_time(key, "created_at", &m.created_at)?,
        updated_at: parse_time(key, "updated_at", &m.updated_at)?,
        revision_number: m.revision_number,
    })
}

fn not_found(key: &str, what: &str, id: &str) -> CodecError {
    CodecError::new(key, format!("{what} {id} does not exist"))
}

fn validation(key: &str, e: ValidationErrors) -> CodecError {
    let message = e
        .errors()
        .iter()
        .map(|e| format!("{}: {}", e.path, e.kind))
        .collect::<Vec<_>>()
        .join("; ");
    CodecError::new(key, message)
}

// ----- model -> values -------------------------------------------------------------

/// Ids of the named objects of a state (name → id), built once per encode.
struct IdsByName<'s> {
    groups: HashMap<&'s str, Id>,
    address_groups: HashMap<&'s str, Id>,
    networks: HashMap<&'s str, Id>,
    ports: HashMap<&'s str, Id>,
}

impl<'s> IdsByName<'s> {
    fn of(s: &'s State) -> IdsByName<'s> {
        let m = &s.model;
        let t = &s.meta;
        IdsByName {
            groups: (m.security_groups.iter().zip(&t.groups))
                .map(|(g, gm)| (g.name.as_str(), gm.obj.id))
                .collect(),
            address_groups: (m.address_groups.iter().zip(&t.address_groups))
                .map(|(a, am)| (a.name.as_str(), am.id))
                .collect(),
            networks: (m.networks.iter().zip(&t.networks))
                .map(|(n, nm)| (n.name.as_str(), nm.obj.id))
                .collect(),
            ports: (m.ports.iter().zip(&t.ports))
                .map(|(p, pm)| (p.name.as_str(), pm.id))
                .collect(),
        }
    }
}

fn id_text(map: &HashMap<&str, Id>, name: &str) -> String {
    map.get(name).map(Id::to_string).unwrap_or_default()
}

fn group_value(s: &State, ids: &IdsByName<'_>, gi: usize) -> GroupValue {
    let g = &s.model.security_groups[gi];
    let gm = &s.meta.groups[gi];
    let rules = g
        .rules
        .iter()
        .zip(&gm.rules)
        .map(|(r, rm)| {
            let (prefix, group, agroup) = rule_remote(r);
            RuleValue {
                meta: meta_value(rm),
                direction: r.direction.as_str().to_string(),
                ethertype: r.ethertype.as_str().to_string(),
                protocol: r.neutron_protocol().map(|p| p.to_string()),
                port_range_min: r.port_range_min,
                port_range_max: r.port_range_max,
                remote_ip_prefix: prefix,
                remote_group_id: group.map(|n| id_text(&ids.groups, n)),
                remote_address_group_id: agroup.map(|n| id_text(&ids.address_groups, n)),
                description: r.description.clone(),
            }
        })
        .collect();
    GroupValue {
        meta: meta_value(&gm.obj),
        name: g.name.clone(),
        description: g.description.clone(),
        stateful: g.stateful,
        security_group_rules: rules,
    }
}

fn address_group_value(s: &State, ai: usize) -> AddressGroupValue {
    let a = &s.model.address_groups[ai];
    AddressGroupValue {
        meta: meta_value(&s.meta.address_groups[ai]),
        name: a.name.clone(),
        description: a.description.clone(),
        addresses: a.addresses.iter().map(IpNet::to_string).collect(),
    }
}

fn network_value(s: &State, ni: usize) -> NetworkValue {
    let nm = &s.meta.networks[ni];
    NetworkValue {
        meta: meta_value(&nm.obj),
        name: s.model.networks[ni].name.clone(),
        subnets: vec![nm.subnet_v4.to_string(), nm.subnet_v6.to_string()],
        network_type: s.model.networks[ni].encap.map(|e| e.as_str().to_string()),
        segmentation_id: s.model.networks[ni].vni,
    }
}

/// `binding:profile` of a backend: its spec's serde form without the unset fields.
fn profile(b: &Option<BackendSpec>) -> serde_json::Map<String, serde_json::Value> {
    match b.as_ref().map(serde_json::to_value) {
        Some(Ok(serde_json::Value::Object(m))) => {
            m.into_iter().filter(|(_, v)| !v.is_null()).collect()
        }
        _ => serde_json::Map::new(),
    }
}

fn port_value(s: &State, ids: &IdsByName<'_>, pi: usize) -> PortValue {
    let p = &s.model.ports[pi];
    let spec = port_to_spec(p);
    PortValue {
        meta: meta_value(&s.meta.ports[pi]),
        name: p.name.clone(),
        network_id: id_text(&ids.networks, &p.network),
        mac_address: p.mac.to_string(),
        fixed_ips: p.fixed_ips.iter().map(IpAddr::to_string).collect(),
        security_groups: (p.security_groups.iter())
            .map(|g| id_text(&ids.groups, g))
            .collect(),
        port_security_enabled: p.port_security,
        allowed_address_pairs: spec
            .allowed_address_pairs
            .into_iter()
            .map(|a| AddressPairValue {
                ip_address: a.ip_address.unwrap_or_default(),
                mac_address: a.mac_address,
            })
            .collect(),
        host_id: p.host.clone(),
        profile: profile(&spec.backend),
    }
}

/// What a port adds to the address set of each of its groups: its fixed IPs as host
/// prefixes and its allowed-address-pair CIDRs (`None` without port security: such a
/// port is in no group).
pub fn member_value(port: &Port, network_id: &str) -> Option<MemberValue> {
    if !port.port_security {
        return None;
    }
    let addresses = (port.fixed_ips.iter().map(|ip| IpNet::from(*ip)))
        .chain(port.allowed_address_pairs.iter().map(|a| a.ip_address))
        .map(|n| n.to_string())
        .collect();
    Some(MemberValue {
        addresses,
        network_id: network_id.to_string(),
    })
}

/// A bound port's `net-ports/NETWORK/PORT` value (`None`: the port is not bound):
/// what the other hosts of its network need to reach it.
pub fn net_port_value(v: &PortValue) -> Option<NetPortValue> {
    Some(NetPortValue {
        name: v.name.clone(),
        mac_address: v.mac_address.clone(),
        fixed_ips: v.fixed_ips.clone(),
        allowed_address_pairs: v.allowed_address_pairs.clone(),
        port_security_enabled: v.port_security_enabled,
        host_id: v.host_id.clone()?,
    })
}

/// The spec of a remote port (bound to another host) from its `net-ports/` value, on
/// network `network`, named `name`: no security groups (its own host enforces them; a
/// host's model needs only its addresses and its host), no backend.
pub fn remote_port_spec(v: &NetPortValue, network: &str, name: &str) -> PortSpec {
    PortSpec {
        name: Some(name.to_string()),
        network: Some(network.to_string()),
        mac: Some(v.mac_address.clone()),
        fixed_ips: v.fixed_ips.clone(),
        security_groups: Some(Vec::new()),
        port_security: Some(v.port_security_enabled),
        allowed_address_pairs: (v.allowed_address_pairs.iter())
            .map(|a| AllowedAddressPairSpec {
                ip_address: Some(a.ip_address.clone()),
                mac_address: a.mac_address.clone(),
            })
            .collect(),
        backend: None,
        host: Some(v.host_id.clone()),
    }
}

/// The addresses of a member value (`key` names it in errors).
pub fn member_addresses(key: &str, v: &MemberValue) -> Result<Vec<IpNet>, CodecError> {
    v.addresses
        .iter()
        .map(|a| {
            validate::parse_cidr(a)
                .map(|n| n.trunc())
                .map_err(|r| CodecError::new(key, format!("bad address {a:?}: {r}")))
        })
        .collect()
}

fn log_value(s: &State, ids: &IdsByName<'_>, li: usize) -> LogValue {
    let l = &s.model.logs[li];
    LogValue {
        meta: meta_value(&s.meta.logs[li]),
        name: l.name.clone(),
        description: l.description.clone(),
        resource_id: l.resource.as_deref().map(|g| id_text(&ids.groups, g)),
        target_id: l.target.as_deref().map(|p| id_text(&ids.ports, p)),
        event: l.event.as_str().to_string(),
        enabled: l.enabled,
    }
}

/// Every key of `s` (objects, the host-ports index, members, settings): see the module
/// doc.
pub fn state_to_kvs(keys: &Keys, s: &State) -> BTreeMap<String, Vec<u8>> {
    let ids = IdsByName::of(s);
    let mut out = BTreeMap::new();
    for gi in 0..s.model.security_groups.len() {
        let id = s.meta.groups[gi].obj.id.to_string();
        out.insert(keys.group(&id), encode(&group_value(s, &ids, gi)));
    }
    for ai in 0..s.model.address_groups.len() {
        let id = s.meta.address_groups[ai].id.to_string();
        out.insert(keys.address_group(&id), encode(&address_group_value(s, ai)));
    }
    for ni in 0..s.model.networks.len() {
        let id = s.meta.networks[ni].obj.id.to_string();
        out.insert(keys.network(&id), encode(&network_value(s, ni)));
    }
    for (pi, p) in s.model.ports.iter().enumerate() {
        let id = s.meta.ports[pi].id.to_string();
        let v = port_value(s, &ids, pi);
        if let Some(h) = &p.host {
            out.insert(keys.host_port(h, &id), Vec::new());
        }
        if let Some(np) = net_port_value(&v) {
            out.insert(keys.net_port(&v.network_id, &id), encode(&np));
        }
        if let Some(member) = member_value(p, &v.network_id) {
            let member = encode(&member);
            for g in &v.security_groups {
                out.insert(keys.member(g, &id), member.clone());
            }
        }
        out.insert(keys.port(&id), encode(&v));
    }
    for li in 0..s.model.logs.len() {
        let id = s.meta.logs[li].id.to_string();
        out.insert(keys.log(&id), encode(&log_value(s, &ids, li)));
    }
    out.insert(
        keys.settings(),
        encode(&SettingsValue {
            conntrack: s.model.conntrack.clone(),
            permitted_ethertypes: s.model.permitted_ethertypes.clone(),
        }),
    );
    out
}

/// The writes that turn `old` into `new`: a put of every key new or changed, a delete of
/// every key gone (in key order).
pub fn diff(old: &BTreeMap<String, Vec<u8>>, new: &BTreeMap<String, Vec<u8>>) -> Vec<Op> {
    let mut ops = Vec::new();
    for (k, v) in new {
        if old.get(k) != Some(v) {
            ops.push(Op::Put {
                key: k.clone(),
                value: v.clone(),
                lease: None,
            });
        }
    }
    for k in old.keys() {
        if !new.contains_key(k) {
            ops.push(Op::Delete { key: k.clone() });
        }
    }
    ops
}

// ----- values -> specs -> model ----------------------------------------------------

/// The spec of a group value; remote groups and address groups named through `names`
/// (id → name).
pub fn group_spec(
    key: &str,
    v: &GroupValue,
    names: &impl Fn(&str) -> Option<String>,
) -> Result<SecurityGroupSpec, CodecError> {
    let rules = v
        .security_group_rules
        .iter()
        .map(|r| {
            let remote_group = match &r.remote_group_id {
                Some(id) => {
                    Some(names(id).ok_or_else(|| not_found(key, "remote security group", id))?)
                }
                None => None,
            };
            let remote_address_group = match &r.remote_address_group_id {
                Some(id) => {
                    Some(names(id).ok_or_else(|| not_found(key, "remote address group", id))?)
                }
                None => None,
            };
            Ok(RuleSpec {
                direction: Some(r.direction.clone()),
                ethertype: Some(r.ethertype.clone()),
                protocol: r.protocol.as_deref().map(Scalar::from),
                port_range_min: r.port_range_min.map(|p| Scalar::Int(p.into())),
                port_range_max: r.port_range_max.map(|p| Scalar::Int(p.into())),
                remote_ip_prefix: r.remote_ip_prefix.clone(),
                remote_group,
                remote_address_group,
                description: Some(r.description.clone()),
            })
        })
        .collect::<Result<Vec<_>, CodecError>>()?;
    Ok(SecurityGroupSpec {
        name: Some(v.name.clone()),
        description: Some(v.description.clone()),
        stateful: Some(v.stateful),
        rules: Some(rules),
    })
}

/// The spec of an address group value.
pub fn address_group_spec(v: &AddressGroupValue) -> AddressGroupSpec {
    AddressGroupSpec {
        name: Some(v.name.clone()),
        description: Some(v.description.clone()),
        addresses: v.addresses.clone(),
    }
}

/// The spec of a port value; network and groups named through `names` (id → name).
pub fn port_spec(
    key: &str,
    v: &PortValue,
    names: &impl Fn(&str) -> Option<String>,
) -> Result<PortSpec, CodecError> {
    let network = names(&v.network_id).ok_or_else(|| not_found(key, "network", &v.network_id))?;
    let groups = v
        .security_groups
        .iter()
        .map(|id| names(id).ok_or_else(|| not_found(key, "security group", id)))
        .collect::<Result<Vec<_>, _>>()?;
    let backend = if v.profile.is_empty() {
        None
    } else {
        Some(
            serde_json::from_value::<BackendSpec>(serde_json::Value::Object(v.profile.clone()))
                .map_err(|e| CodecError::new(key, format!("bad binding:profile: {e}")))?,
        )
    };
    Ok(PortSpec {
        name: Some(v.name.clone()),
        network: Some(network),
        mac: Some(v.mac_address.clone()),
        fixed_ips: v.fixed_ips.clone(),
        security_groups: Some(groups),
        port_security: Some(v.port_security_enabled),
        allowed_address_pairs: v
            .allowed_address_pairs
            .iter()
            .map(|a| AllowedAddressPairSpec {
                ip_address: Some(a.ip_address.clone()),
                mac_address: a.mac_address.clone(),
            })
            .collect(),
        backend,
        host: v.host_id.clone(),
    })
}

/// The spec of a log value; group and port named through `names` (id → name).
pub fn log_spec(
    key: &str,
    v: &LogValue,
    names: &impl Fn(&str) -> Option<String>,
) -> Result<LogSpec, CodecError> {
    let resource = match &v.resource_id {
        Some(id) => Some(names(id).ok_or_else(|| not_found(key, "security group", id))?),
        None => None,
    };
    let target = match &v.target_id {
        Some(id) => Some(names(id).ok_or_else(|| not_found(key, "port", id))?),
        None => None,
    };
    Ok(LogSpec {
        name: Some(v.name.clone()),
        description: Some(v.description.clone()),
        resource,
        target,
        event: Some(v.event.clone()),
        enabled: Some(v.enabled),
    })
}

/// Stub groups and address groups holding `names` (so that a validator sees the
/// references of one object as existing), except `own` (the object's own name).
fn stub_model(names: impl IntoIterator<Item = (bool, String)>, own: &str) -> Model {
    let mut m = Model::default();
    for (is_group, n) in names {
        if n == own {
            continue;
        }
        if is_group {
            if m.group(&n).is_none() {
                m.security_groups.push(SecurityGroup {
                    name: n,
                    description: String::new(),
                    stateful: true,
                    rules: Vec::new(),
                });
            }
        } else if m.address_group(&n).is_none() {
            m.address_groups.push(AddressGroup {
                name: n,
                description: String::new(),
                addresses: Vec::new(),
            });
        }
    }
    m
}

/// A group value as a validated [`SecurityGroup`] (`names`: id → name of the groups and
/// address groups its rules refer to).
pub fn group_from_value(
    key: &str,
    v: &GroupValue,
    names: &impl Fn(&str) -> Option<String>,
) -> Result<SecurityGroup, CodecError> {
    let spec = group_spec(key, v, names)?;
    let refs = spec.rules.iter().flatten().flat_map(|r| {
        (r.remote_group.iter().map(|n| (true, n.clone())))
            .chain(r.remote_address_group.iter().map(|n| (false, n.clone())))
    });
    let stub = stub_model(refs, &v.name);
    validate::validate_group(&stub, &spec).map_err(|e| validation(key, e))
}

/// An address group value as a validated [`AddressGroup`].
pub fn address_group_from_value(
    key: &str,
    v: &AddressGroupValue,
) -> Result<AddressGroup, CodecError> {
    let spec = ModelSpec {
        address_groups: vec![address_group_spec(v)],
        ..Default::default()
    };
    let mut m = validate::validate_model(&spec).map_err(|e| validation(key, e))?;
    m.address_groups
        .pop()
        .ok_or_else(|| CodecError::new(key, "address group vanished in validation"))
}

/// A port value as a validated [`Port`] (`names`: id → name of its network and
/// groups). Checked alone: conflicts with other ports (MAC, IPs) and the mixing of
/// stateful and stateless groups are the API's and [`state_from_kvs`]'s checks.
pub fn port_from_value(
    key: &str,
    v: &PortValue,
    names: &impl Fn(&str) -> Option<String>,
) -> Result<Port, CodecError> {
    let spec = port_spec(key, v, names)?;
    let refs = spec
        .security_groups
        .iter()
        .flatten()
        .map(|n| (true, n.clone()));
    let stub = stub_model(refs, "");
    validate::validate_port(&stub, &spec).map_err(|e| validation(key, e))
}

/// A log value as a validated [`NetworkLog`] (`names`: id → name of its group and port).
/// Whether the port uses the group is not checked (the agent may not hold both).
pub fn log_from_value(
    key: &str,
    v: &LogValue,
    names: &impl Fn(&str) -> Option<String>,
) -> Result<NetworkLog, CodecError> {
    let spec = log_spec(key, v, names)?;
    let mut m = Model::default();
    if let Some(g) = &spec.resource {
        m = stub_model([(true, g.clone())], "");
    }
    if let Some(p) = &spec.target {
        // A bare port: `target_error` only asks whether it uses the group.
        m.ports.push(Port {
            name: p.clone(),
            network: String::new(),
            mac: crate::wire::Mac([2, 0, 0, 0, 0, 1]),
            fixed_ips: Vec::new(),
            security_groups: spec.resource.iter().cloned().collect(),
            port_security: true,
            allowed_address_pairs: Vec::new(),
            backend: None,
            host: None,
        });
    }
    validate::validate_log(&m, &spec).map_err(|e| validation(key, e))
}

/// The settings value (`None`: the key is absent: the defaults).
pub fn settings_from_value(
    key: &str,
    v: Option<&SettingsValue>,
) -> Result<(ConntrackSettings, Vec<u16>), CodecError> {
    let Some(v) = v else {
        return Ok((ConntrackSettings::default(), Vec::new()));
    };
    let spec = ModelSpec {
        conntrack: v.conntrack.clone(),
        permitted_ethertypes: v.permitted_ethertypes.clone(),
        ..Default::default()
    };
    let m = validate::validate_model(&spec).map_err(|e| validation(key, e))?;
    Ok((m.conntrack, m.permitted_ethertypes))
}

// ----- the whole state -------------------------------------------------------------

/// Values of one kind with their keys and metadata, in (created_at, id) order.
struct Family<V> {
    items: Vec<(String, ObjMeta, V)>,
}

impl<V: serde::de::DeserializeOwned> Family<V> {
    fn read(
        kvs: &BTreeMap<String, Vec<u8>>,
        prefix: &str,
        meta: impl Fn(&V) -> &MetaValue,
    ) -> Result<Family<V>, CodecError> {
        let mut items = Vec::new();
        for (k, bytes) in kvs.range(prefix.to_string()..) {
            if !k.starts_with(prefix) {
                break;
            }
            let v: V = decode(k, bytes)?;
            let m = obj_meta(k, meta(&v))?;
            if Keys::leaf(k) != m.id.to_string() {
                return Err(CodecError::new(
                    k,
                    format!("the value's id {} is not the key's", m.id),
                ));
            }
            items.push((k.clone(), m, v));
        }
        items.sort_by_key(|(_, m, _)| (m.created_at, m.id));
        Ok(Family { items })
    }
}

impl<V> Family<V> {
    fn keys(&self) -> Vec<String> {
        self.items.iter().map(|i| i.0.clone()).collect()
    }
}

/// `s` in the order [`state_from_kvs`] gives: each kind's objects by (created_at, id),
/// rules, address lists and a port's groups unchanged.
pub fn canonical(s: &State) -> State {
    fn order<T: Clone, M: Clone>(
        model: &[T],
        meta: &[M],
        obj: impl Fn(&M) -> ObjMeta,
    ) -> (Vec<T>, Vec<M>) {
        let mut idx: Vec<usize> = (0..model.len()).collect();
        idx.sort_by_key(|&i| {
            let o = obj(&meta[i]);
            (o.created_at, o.id)
        });
        (
            idx.iter().map(|&i| model[i].clone()).collect(),
            idx.iter().map(|&i| meta[i].clone()).collect(),
        )
    }
    let m = &s.model;
    let t = &s.meta;
    let (security_groups, groups) = order(&m.security_groups, &t.groups, |g| g.obj);
    let (address_groups, agm) = order(&m.address_groups, &t.address_groups, |a| *a);
    let (ports, pm) = order(&m.ports, &t.ports, |p| *p);
    let (networks, nm) = order(&m.networks, &t.networks, |n| n.obj);
    let (logs, lm) = order(&m.logs, &t.logs, |l| *l);
    State {
        model: Model {
            security_groups,
            address_groups,
            ports,
            networks,
            permitted_ethertypes: m.permitted_ethertypes.clone(),
            conntrack: m.conntrack.clone(),
            logs,
            remote_members: m.remote_members.clone(),
            hosts: m.hosts.clone(),
            local_host: m.local_host.clone(),
        },
        meta: Meta {
            groups,
            address_groups: agm,
            ports: pm,
            networks: nm,
            logs: lm,
        },
        live_hosts: s.live_hosts.clone(),
    }
}

/// Where a validation error of the whole model points: the key of the object at its
/// path (`security_groups[3]...` → that group's key).
fn error_key(e: &ValidationErrors, families: &[(&str, &[String])]) -> String {
    let Some(first) = e.errors().first() else {
        return String::new();
    };
    let path = first.path.to_string();
    for (name, keys) in families {
        if let Some(rest) = path.strip_prefix(&format!("{name}[")) {
            let idx: Option<usize> = rest.split(']').next().and_then(|n| n.parse().ok());
            if let Some(k) = idx.and_then(|i| keys.get(i)) {
                return k.clone();
            }
        }
    }
    String::new()
}

/// The state held by `kvs` (keys outside the object families, the index and the
/// members are ignored), validated as a whole by `validate_model`. Every error names a
/// key (`""` when it concerns the whole state, like a missing `default` group).
pub fn state_from_kvs(keys: &Keys, kvs: &BTreeMap<String, Vec<u8>>) -> Result<State, CodecError> {
    let groups = Family::<GroupValue>::read(kvs, &keys.groups(), |v| &v.meta)?;
    let address_groups =
        Family::<AddressGroupValue>::read(kvs, &keys.address_groups(), |v| &v.meta)?;
    let networks = Family::<NetworkValue>::read(kvs, &keys.networks(), |v| &v.meta)?;
    let ports = Family::<PortValue>::read(kvs, &keys.ports(), |v| &v.meta)?;
    let logs = Family::<LogValue>::read(kvs, &keys.logs(), |v| &v.meta)?;
    let settings_key = keys.settings();
    let settings: Option<SettingsValue> = match kvs.get(&settings_key) {
        Some(b) => Some(decode(&settings_key, b)?),
        None => None,
    };

    let mut by_id: HashMap<String, String> = HashMap::new();
    for (_, m, v) in &groups.items {
        by_id.insert(m.id.to_string(), v.name.clone());
    }
    for (_, m, v) in &address_groups.items {
        by_id.insert(m.id.to_string(), v.name.clone());
    }
    for (_, m, v) in &networks.items {
        by_id.insert(m.id.to_string(), v.name.clone());
    }
    for (_, m, v) in &ports.items {
        by_id.insert(m.id.to_string(), v.name.clone());
    }
    let names = |id: &str| by_id.get(id).cloned();

    let (conntrack, permitted_ethertypes) = match &settings {
        Some(s) => (s.conntrack.clone(), s.permitted_ethertypes.clone()),
        None => (ConntrackSettings::default(), Vec::new()),
    };
    let spec = ModelSpec {
        security_groups: (groups.items.iter())
            .map(|(k, _, v)| group_spec(k, v, &names))
            .collect::<Result<_, _>>()?,
        address_groups: (address_groups.items.iter())
            .map(|(_, _, v)| address_group_spec(v))
            .collect(),
        ports: (ports.items.iter())
            .map(|(k, _, v)| port_spec(k, v, &names))
            .collect::<Result<_, _>>()?,
        networks: (networks.items.iter())
            .map(|(_, _, v)| NetworkSpec {
                name: Some(v.name.clone()),
                vni: v.segmentation_id.map(i64::from),
                encap: v.network_type.clone(),
            })
            .collect(),
        permitted_ethertypes,
        conntrack,
        logs: (logs.items.iter())
            .map(|(k, _, v)| log_spec(k, v, &names))
            .collect::<Result<_, _>>()?,
        ..Default::default()
    };
    let model = validate::validate_model(&spec).map_err(|e| {
        let fam: [(&str, Vec<String>); 4] = [
            ("security_groups", groups.keys()),
            ("address_groups", address_groups.keys()),
            ("ports", ports.keys()),
            ("logs", logs.keys()),
        ];
        let refs: Vec<(&str, &[String])> = fam.iter().map(|(n, k)| (*n, k.as_slice())).collect();
        let key = if settings.is_some()
            && e.errors().first().is_some_and(|f| {
                let p = f.path.to_string();
                p.starts_with("conntrack") || p.starts_with("permitted_ethertypes")
            }) {
            settings_key.clone()
        } else {
            error_key(&e, &refs)
        };
        validation(&key, e)
    })?;
    if model.security_groups.len() != groups.items.len() {
        return Err(CodecError::new(
            "",
            "there is no security group named \"default\"",
        ));
    }
    if model.networks.len() != networks.items.len() {
        return Err(CodecError::new("", "a port's network has no key"));
    }
    let meta = Meta {
        groups: (groups.items.iter())
            .map(|(k, m, v)| {
                Ok(GroupMeta {
                    obj: *m,
                    rules: (v.security_group_rules.iter())
                        .map(|r| obj_meta(k, &r.meta))
                        .collect::<Result<_, _>>()?,
                })
            })
            .collect::<Result<_, CodecError>>()?,
        address_groups: address_groups.items.iter().map(|i| i.1).collect(),
        ports: ports.items.iter().map(|i| i.1).collect(),
        networks: (networks.items.iter())
            .map(|(k, m, v)| match v.subnets.as_slice() {
                [v4, v6] => Ok(NetworkMeta {
                    obj: *m,
                    subnet_v4: parse_id(k, "subnet id", v4)?,
                    subnet_v6: parse_id(k, "subnet id", v6)?,
                }),
                _ => Err(CodecError::new(k, "subnets must hold two ids (IPv4, IPv6)")),
            })
            .collect::<Result<_, _>>()?,
        logs: logs.items.iter().map(|i| i.1).collect(),
    };
    let state = State {
        model,
        meta,
        live_hosts: None,
    };
    state.check().map_err(|e| CodecError::new("", e))?;
    Ok(state)
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
