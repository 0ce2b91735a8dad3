//! A host's interest set and the model it makes: from the keys a host agent has cached,
//! which keys it must watch, and the [`Model`] of its ports.
//!
//! The interest set of host `H` is a fixed point over the cache:
//! * `host-ports/H/` (prefix, always) → its port ids → `ports/P` (keys);
//! * each cached port → `networks/N` and `security-groups/G` of its groups;
//! * each cached local group's rules → `security-groups/R` and `members/R/` (prefix) of
//!   every remote group `R`, `address-groups/A` of every remote address group;
//! * `settings` (conntrack, permitted ethertypes).
//!
//! Nothing else: a host whose ports do not use a group gets no event for it.
//!
//! The model ([`build_model`]) is built through Neutron's validation (values → a
//! [`ModelSpec`] → [`Model::validate`]), so a host enforces only what validated:
//! * groups, networks and ports are named by the API names in their values; a name
//!   taken by an earlier object (two projects' `default` groups) gets `@ID` appended, as
//!   does an empty port name;
//! * a port whose record (or one of whose groups' records) has not arrived yet stays out
//!   of the model: it is blocked, as an unknown port is;
//! * a remote group the host has no port in comes in as a group with no rules, its
//!   members (`members/R/*`, minus this host's own ports, which the model has already)
//!   as [`Model::remote_members`]; a missing network or address group record is named by
//!   its id (an address group with no addresses matches nothing);
//! * packet-log objects (`logs/`) are not watched yet: a host agent's model has none.
//!
//! Owns: the interest rules and the values → model conversion for a host. May not touch:
//! the store (the agent reads and watches), the dataplane.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use ipnet::IpNet;
use serde::Deserialize;

use super::layout::{
    AddressGroupValue, GroupValue, Keys, MemberValue, NetworkValue, PortValue, RuleValue,
};
use crate::control::kv::{Revision, Target};
use crate::policy::spec::{
    AddressGroupSpec, AllowedAddressPairSpec, BackendSpec, ModelSpec, NetworkSpec, PortSpec,
    RuleSpec, Scalar, SecurityGroupSpec,
};
use crate::policy::{ConntrackSettings, Model};

/// The cached keys of a host: key → (value, mod revision).
pub type Cache = BTreeMap<String, (Vec<u8>, Revision)>;

/// `P"settings"` as the agent reads it (both fields optional).
#[derive(Deserialize, Default)]
struct SettingsValue {
    #[serde(default)]
    conntrack: Option<ConntrackSettings>,
    #[serde(default)]
    permitted_ethertypes: Vec<u16>,
}

/// One error of a build: the object (`ports/ID`, ...) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildError {
    pub object: String,
    pub message: String,
}

fn decode<T: serde::de::DeserializeOwned>(
    cache: &Cache,
    key: &str,
    object: &str,
    errors: &mut Vec<BuildError>,
) -> Option<T> {
    let (v, _) = cache.get(key)?;
    match serde_json::from_slice(v) {
        Ok(t) => Some(t),
        Err(e) => {
            errors.push(BuildError {
                object: object.to_string(),
                message: format!("cannot decode {key}: {e}"),
            });
            None
        }
    }
}

/// The ids directly under `prefix` in the cache.
fn ids_under<'c>(cache: &'c Cache, prefix: &'c str) -> impl Iterator<Item = &'c str> + 'c {
    cache
        .range(prefix.to_string()..)
        .take_while(move |(k, _)| k.starts_with(prefix))
        .map(|(k, _)| Keys::leaf(k))
}

/// What the cache says a host's ports need (ids), in one pass.
#[derive(Default, Debug)]
struct Needs {
    ports: Vec<String>,
    networks: BTreeSet<String>,
    /// Groups of the host's ports.
    groups: BTreeSet<String>,
    /// Remote groups referenced by those groups' rules.
    remote_groups: BTreeSet<String>,
    address_groups: BTreeSet<String>,
}

fn needs(keys: &Keys, host: &str, cache: &Cache) -> Needs {
    let mut n = Needs::default();
    let hp = keys.host_ports(host);
    let mut ignore = Vec::new();
    for id in ids_under(cache, &hp) {
        n.ports.push(id.to_string());
        if let Some(p) = decode::<PortValue>(cache, &keys.port(id), "", &mut ignore) {
            n.networks.insert(p.network_id);
            n.groups.extend(p.security_groups);
        }
    }
    for g in &n.groups {
        if let Some(v) = decode::<GroupValue>(cache, &keys.group(g), "", &mut ignore) {
            for r in v.security_group_rules {
                if let Some(rg) = r.remote_group_id {
                    n.remote_groups.insert(rg);
                }
                if let Some(a) = r.remote_address_group_id {
                    n.address_groups.insert(a);
                }
            }
        }
    }
    n
}

/// The targets host `host` watches, given what it has cached.
pub fn interest(keys: &Keys, host: &str, cache: &Cache) -> BTreeSet<Target> {
    let n = needs(keys, host, cache);
    let mut t = BTreeSet::new();
    t.insert(Target::Prefix(keys.host_ports(host)));
    t.insert(Target::Key(keys.settings()));
    t.extend(n.ports.iter().map(|p| Target::Key(keys.port(p))));
    t.extend(n.networks.iter().map(|x| Target::Key(keys.network(x))));
    t.extend(n.groups.iter().map(|g| Target::Key(keys.group(g))));
    for g in &n.remote_groups {
        t.insert(Target::Key(keys.group(g)));
        t.insert(Target::Prefix(keys.members(g)));
    }
    t.extend(
        n.address_groups
            .iter()
            .map(|a| Target::Key(keys.address_group(a))),
    );
    t
}

/// Unique names: the first object keeps its name, a later one with the same name (or an
/// empty one) gets `NAME@ID`.
#[derive(Default)]
struct Names {
    taken: HashSet<String>,
    by_id: HashMap<String, String>,
}

impl Names {
    fn name(&mut self, id: &str, name: &str) -> String {
        if let Some(n) = self.by_id.get(id) {
            return n.clone();
        }
        let n = if name.is_empty() || self.taken.contains(name) {
            format!("{name}@{id}")
        } else {
            name.to_string()
        };
        self.taken.insert(n.clone());
        self.by_id.insert(id.to_string(), n.clone());
        n
    }
}

fn rule_spec(
    r: &RuleValue,
    groups: &mut Names,
    addr: &mut Names,
    ag_names: &dyn Fn(&str) -> String,
) -> RuleSpec {
    RuleSpec {
        direction: Some(r.direction.clone()),
        ethertype: Some(r.ethertype.clone()),
        protocol: r.protocol.as_deref().map(Scalar::from),
        port_range_min: r.port_range_min.map(|v| Scalar::Int(i64::from(v))),
        port_range_max: r.port_range_max.map(|v| Scalar::Int(i64::from(v))),
        remote_ip_prefix: r.remote_ip_prefix.clone(),
        remote_group: r.remote_group_id.as_deref().map(|g| groups.name(g, "")),
        remote_address_group: r
            .remote_address_group_id
            .as_deref()
            .map(|a| addr.name(a, &ag_names(a))),
        description: Some(r.description.clone()),
    }
}

/// The model of `host`'s ports from the cache (see the module doc). `Err`: the errors
/// that keep the previous model (decode or validation failures).
pub fn build_model(keys: &Keys, host: &str, cache: &Cache) -> Result<Model, Vec<BuildError>> {
    let n = needs(keys, host, cache);
    let mut errors = Vec::new();
    // Local groups first (id order), then remote-only ones.
    let all_groups: Vec<&String> = n
        .groups
        .iter()
        .chain(n.remote_groups.difference(&n.groups))
        .collect();
    let group_values: BTreeMap<&str, GroupValue> = all_groups
        .iter()
        .filter_map(|g| {
            let v = decode(
                cache,
                &keys.group(g),
                &format!("security-groups/{g}"),
                &mut errors,
            )?;
            Some((g.as_str(), v))
        })
        .collect();
    // Group names first (local groups in id order, then remote-only ones), so that a
    // rule's remote names the group its own value names.
    let mut gnames = Names::default();
    for g in &all_groups {
        let name = group_values.get(g.as_str()).map_or("", |v| v.name.as_str());
        gnames.name(g, name);
    }
    let ag_values: HashMap<&str, AddressGroupValue> = n
        .address_groups
        .iter()
        .filter_map(|a| {
            let v = decode(
                cache,
                &keys.address_group(a),
                &format!("address-groups/{a}"),
                &mut errors,
            )?;
            Some((a.as_str(), v))
        })
        .collect();
    let ag_name = |a: &str| ag_values.get(a).map_or(String::new(), |v| v.name.clone());
    let mut anames = Names::default();
    let mut spec = ModelSpec::default();
    for g in &all_groups {
        let local = n.groups.contains(*g);
        let Some(v) = group_values.get(g.as_str()) else {
            if !local {
                // A remote group whose record has not arrived: named by its id.
                spec.security_groups.push(SecurityGroupSpec {
                    name: Some(gnames.name(g, "")),
                    rules: Some(Vec::new()),
                    ..Default::default()
                });
            }
            continue;
        };
        let rules = if local {
            v.security_group_rules
                .iter()
                .map(|r| rule_spec(r, &mut gnames, &mut anames, &ag_name))
                .collect()
        } else {
            Vec::new()
        };
        spec.security_groups.push(SecurityGroupSpec {
            name: Some(gnames.name(g, &v.name)),
            description: Some(v.description.clone()),
            stateful: Some(v.stateful),
            rules: Some(rules),
        });
    }
    for a in &n.address_groups {
        let v = ag_values.get(a.as_str());
        spec.address_groups.push(AddressGroupSpec {
            name: Some(anames.name(a, &ag_name(a))),
            description: v.map(|v| v.description.clone()),
            addresses: v.map(|v| v.addresses.clone()).unwrap_or_default(),
        });
    }
    let mut nnames = Names::default();
    let mut pnames = Names::default();
    let mut local_ports = HashSet::new();
    for id in &n.ports {
        let object = format!("ports/{id}");
        let Some(p) = decode::<PortValue>(cache, &keys.port(id), &object, &mut errors) else {
            continue; // no record yet: blocked
        };
        if p.security_groups
            .iter()
            .any(|g| !group_values.contains_key(g.as_str()))
        {
            continue; // a group's record has not arrived: blocked until it does
        }
        let nv = decode::<NetworkValue>(
            cache,
            &keys.network(&p.network_id),
            &format!("networks/{}", p.network_id),
            &mut errors,
        );
        let net = nnames.name(&p.network_id, nv.as_ref().map_or("", |v| v.name.as_str()));
        let backend = if p.profile.is_empty() {
            None
        } else {
            match serde_json::from_value::<BackendSpec>(serde_json::Value::Object(
                p.profile.clone(),
            )) {
                Ok(b) => Some(b),
                Err(e) => {
                    errors.push(BuildError {
                        object,
                        message: format!("binding:profile: {e}"),
                    });
                    continue;
                }
            }
        };
        local_ports.insert(id.as_str());
        spec.ports.push(PortSpec {
            name: Some(pnames.name(id, &p.name)),
            network: Some(net),
            mac: Some(p.mac_address.clone()),
            fixed_ips: p.fixed_ips.clone(),
            security_groups: Some(
                p.security_groups
                    .iter()
                    .map(|g| gnames.name(g, ""))
                    .collect(),
            ),
            port_security: Some(p.port_security_enabled),
            allowed_address_pairs: p
                .allowed_address_pairs
                .iter()
                .map(|a| AllowedAddressPairSpec {
                    ip_address: Some(a.ip_address.clone()),
                    mac_address: a.mac_address.clone(),
                })
                .collect(),
            backend,
        });
    }
    spec.networks = nnames
        .by_id
        .values()
        .map(|n| NetworkSpec {
            name: Some(n.clone()),
        })
        .collect();
    spec.networks.sort_by(|a, b| a.name.cmp(&b.name));
    let settings: SettingsValue =
        decode(cache, &keys.settings(), "settings", &mut errors).unwrap_or_default();
    spec.conntrack = settings.conntrack.unwrap_or_default();
    spec.permitted_ethertypes = settings.permitted_ethertypes;
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut model = Model::validate(&spec).map_err(|e| {
        vec![BuildError {
            object: String::new(),
            message: e.to_string(),
        }]
    })?;
    for g in &n.remote_groups {
        let prefix = keys.members(g);
        let mut nets = Vec::new();
        for port in ids_under(cache, &prefix) {
            if local_ports.contains(port) {
                continue; // the model has it as a port
            }
            let object = format!("members/{g}/{port}");
            let Some(m) = decode::<MemberValue>(cache, &keys.member(g, port), &object, &mut errors)
            else {
                continue;
            };
            for a in &m.addresses {
                match a.parse::<IpNet>() {
                    Ok(net) => nets.push(net.trunc()),
                    Err(_) => match a.parse::<std::net::IpAddr>() {
                        Ok(ip) => nets.push(IpNet::from(ip)),
                        Err(e) => errors.push(BuildError {
                            object: object.clone(),
                            message: format!("address {a:?}: {e}"),
                        }),
                    },
                }
            }
        }
        if !nets.is_empty() {
            model.remote_members.insert(gnames.name(g, ""), nets);
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(model)
}
