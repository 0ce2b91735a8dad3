//! A host's interest set and the model it makes: from the keys a host agent has cached,
//! which keys it must watch, and the [`Model`] of its ports.
//!
//! The interest set of host `H` is a fixed point over the cache:
//! * `host-ports/H/` (prefix, always) → its port ids → `ports/P` (keys);
//! * each cached port → `networks/N` and `security-groups/G` of its groups;
//! * each such network `N` → `net-ports/N/` (prefix: the bound ports of the network,
//!   l2population) → `hosts/H` (key: liveness and VTEP) of each host `H` those ports are
//!   bound to, and its own `hosts/HOST`. Not the `hosts/` prefix: that simplest set made
//!   every host start or lease expiry an event at every host with a port (98,336 events
//!   during a cold start of 1,000 simulated hosts on one network each, at most 981 at a
//!   host; with the keys: `sim-hosts --scenario cold-start`, see docs/scale-out.md);
//! * each cached local group's rules → `security-groups/R` and `members/R/` (prefix) of
//!   every remote group `R`, `address-groups/A` of every remote address group;
//! * `settings` (conntrack, permitted ethertypes).
//!
//! Nothing else: a host whose ports do not use a group gets no event for it.
//!
//! The model ([`build_model`]) is built through Neutron's validation (values → a
//! [`ModelSpec`] by [`super::codec`]'s conversions → [`Model::validate`]), so a host
//! enforces only what validated:
//! * groups, networks and ports are named by the API names in their values; a name
//!   taken by an earlier object (two projects' `default` groups) gets `@ID` appended, as
//!   does an empty port name;
//! * a port whose record (or one of whose groups' records) has not arrived yet stays out
//!   of the model: it is blocked, as an unknown port is;
//! * a remote group the host has no port in comes in as a group with no rules, its
//!   members (`members/R/*`, minus this host's own ports, which the model has already)
//!   as [`Model::remote_members`]; a missing network or address group record is named by
//!   its id (an address group with no addresses matches nothing);
//! * **remote ports**: every `net-ports/N/P` of its networks whose host is another live
//!   host with a VTEP (`hosts/H` present, `vtep` set) is a port of the model bound to that
//!   host, with its MAC, fixed IPs and address pairs, no groups (its own host enforces
//!   them) and no backend, named as the API names it (`NAME@ID` on a clash). A port
//!   whose host has no live `hosts/` key is left out: unreachable (once the host's lease
//!   expired, its ports leave every other host's model);
//! * **the overlay**: a network's VNI is its value's `provider:segmentation_id`, else
//!   derived from its id ([`Network::vni_of_name`] of the id: every host derives the same
//!   one, and two networks of one name get two VNIs), its encapsulation
//!   `provider:network_type` (absent: Geneve); `local_host` is this host; `hosts` are the live hosts with a VTEP
//!   ([`live_vteps`]), this one included when it has one;
//! * packet-log objects (`logs/`) are not watched yet: a host agent's model has none.
//!
//! Owns: the interest rules and the values → model conversion for a host. May not touch:
//! the store (the agent reads and watches), the dataplane.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use ipnet::IpNet;

use super::codec::{self, CodecError, SettingsValue};
use super::layout::{
    AddressGroupValue, GroupValue, HostValue, Keys, MemberValue, NetPortValue, NetworkValue,
    PortValue,
};
use crate::control::kv::{Revision, Target};
use crate::policy::spec::{HostSpec, ModelSpec, NetworkSpec, SecurityGroupSpec};
use crate::policy::validate::{check_host, GroupMemo};
use crate::policy::{Model, Network};

pub use super::incremental::Built;
use super::incremental::GroupMeta;

/// The cached keys of a host.
pub type Cache = BTreeMap<String, Cached>;

/// One cached key: its value, its mod revision and its value decoded once (a rule
/// change decodes the one group that changed, not every cached port and group again:
/// decoding was a third of a host's build before; for a member key, its addresses too).
#[derive(Debug)]
pub struct Cached {
    pub value: Vec<u8>,
    pub revision: Revision,
    members: OnceLock<Result<Vec<IpNet>, CodecError>>,
    /// The value decoded as the one type its key holds (`Result<Arc<T>, CodecError>`).
    decoded: OnceLock<Arc<dyn Any + Send + Sync>>,
}

impl Cached {
    pub fn new(value: Vec<u8>, revision: Revision) -> Cached {
        Cached {
            value,
            revision,
            members: OnceLock::new(),
            decoded: OnceLock::new(),
        }
    }

    fn members(&self, key: &str) -> &Result<Vec<IpNet>, CodecError> {
        self.members.get_or_init(|| {
            codec::decode::<MemberValue>(key, &self.value)
                .and_then(|m| codec::member_addresses(key, &m))
        })
    }
}

/// A cached value's bytes (an agent's [`Cached`], or the plain bytes an API server's
/// cache keeps), decoded.
pub trait Stored {
    fn bytes(&self) -> &[u8];

    /// The value decoded as `T` (an agent's [`Cached`] decodes once and keeps it).
    fn decoded<T: Decoded>(&self, key: &str) -> Result<Arc<T>, CodecError> {
        codec::decode(key, self.bytes()).map(Arc::new)
    }

    /// The host of a `net-ports/` value (`None`: it does not decode).
    fn net_port_host(&self, key: &str) -> Option<String> {
        self.decoded::<NetPortValue>(key)
            .ok()
            .map(|v| v.host_id.clone())
    }
}

/// A value type a key holds.
pub trait Decoded: serde::de::DeserializeOwned + Send + Sync + 'static {}
impl<T: serde::de::DeserializeOwned + Send + Sync + 'static> Decoded for T {}

impl Stored for Cached {
    fn bytes(&self) -> &[u8] {
        &self.value
    }

    fn decoded<T: Decoded>(&self, key: &str) -> Result<Arc<T>, CodecError> {
        let fresh = || -> Arc<dyn Any + Send + Sync> {
            Arc::new(codec::decode::<T>(key, &self.value).map(Arc::new))
        };
        let any = self.decoded.get_or_init(fresh);
        match any.downcast_ref::<Result<Arc<T>, CodecError>>() {
            Some(r) => r.clone(),
            // A key read as two types (never in this module): decode again.
            None => codec::decode(key, &self.value).map(Arc::new),
        }
    }
}

impl Stored for Vec<u8> {
    fn bytes(&self) -> &[u8] {
        self
    }
}

/// One error of a build: the object (`ports/ID`, ...) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildError {
    pub object: String,
    pub message: String,
}

fn decode<T: Decoded, V: Stored>(
    cache: &BTreeMap<String, V>,
    key: &str,
    errors: &mut Vec<BuildError>,
) -> Option<Arc<T>> {
    let c = cache.get(key)?;
    match c.decoded::<T>(key) {
        Ok(t) => Some(t),
        Err(e) => {
            errors.push(err(e));
            None
        }
    }
}

/// The ids directly under `prefix` in the cache.
fn ids_under<'c, V: Stored>(
    cache: &'c BTreeMap<String, V>,
    prefix: &'c str,
) -> impl Iterator<Item = &'c str> + 'c {
    cache
        .range(prefix.to_string()..)
        .take_while(move |(k, _)| k.starts_with(prefix))
        .map(|(k, _)| Keys::leaf(k))
}

/// What the cache says a host's ports need (ids), in one pass.
#[derive(Default, Debug, Clone, PartialEq, Eq)]
pub(super) struct Needs {
    ports: Vec<String>,
    networks: BTreeSet<String>,
    /// Groups of the host's ports.
    pub(super) groups: BTreeSet<String>,
    /// Remote groups referenced by those groups' rules.
    pub(super) remote_groups: BTreeSet<String>,
    address_groups: BTreeSet<String>,
}

pub(super) fn needs<V: Stored>(keys: &Keys, host: &str, cache: &BTreeMap<String, V>) -> Needs {
    let mut n = Needs::default();
    let hp = keys.host_ports(host);
    let mut ignore = Vec::new();
    // The keys looked up are written into one buffer (`Keys::port`, `Keys::group` would
    // format and allocate one per lookup: a tenth of an agent's instructions per rule
    // change, #18). `keys_match_builders` checks both spell the same keys.
    let mut key = String::with_capacity(hp.len() + 48);
    for id in ids_under(cache, &hp) {
        n.ports.push(id.to_string());
        key_into(&mut key, keys, PORTS, id);
        if let Some(p) = decode::<PortValue, _>(cache, &key, &mut ignore) {
            n.networks.insert(p.network_id.clone());
            n.groups.extend(p.security_groups.iter().cloned());
        }
    }
    for g in &n.groups {
        key_into(&mut key, keys, GROUPS, g);
        let v = decode::<GroupValue, _>(cache, &key, &mut ignore);
        if let Some(v) = v {
            for r in &v.security_group_rules {
                if let Some(rg) = &r.remote_group_id {
                    n.remote_groups.insert(rg.clone());
                }
                if let Some(a) = &r.remote_address_group_id {
                    n.address_groups.insert(a.clone());
                }
            }
        }
    }
    n
}

/// `buf` = the key of `id` of `kind` (`PORTS`, `GROUPS`) under `keys`' prefix.
fn key_into(buf: &mut String, keys: &Keys, kind: &str, id: &str) {
    buf.clear();
    buf.push_str(keys.prefix());
    buf.push_str(kind);
    buf.push_str(id);
}

/// The kind parts of the keys [`needs`] looks up (as [`Keys::port`] and [`Keys::group`]
/// spell them).
const PORTS: &str = "ports/";
const GROUPS: &str = "security-groups/";

/// The targets host `host` watches, given what it has cached (an agent's [`Cache`]) or
/// what an API server's cache of the whole prefix holds (which keys a write touches
/// that host: `?wait=applied` waits only for those hosts).
pub fn interest<V: Stored>(
    keys: &Keys,
    host: &str,
    cache: &BTreeMap<String, V>,
) -> BTreeSet<Target> {
    targets(keys, host, cache, &needs(keys, host, cache))
}

/// [`interest`] from the host's [`Needs`] (computed from the same cache). The targets
/// are a function of `n` and of the cached `net-ports/` keys of its networks only.
pub(super) fn targets<V: Stored>(
    keys: &Keys,
    host: &str,
    cache: &BTreeMap<String, V>,
    n: &Needs,
) -> BTreeSet<Target> {
    let mut t = BTreeSet::new();
    t.insert(Target::Prefix(keys.host_ports(host)));
    t.insert(Target::Key(keys.settings()));
    t.extend(n.ports.iter().map(|p| Target::Key(keys.port(p))));
    t.extend(n.networks.iter().map(|x| Target::Key(keys.network(x))));
    // l2population: the bound ports of its networks, and the `hosts/` keys (liveness,
    // VTEPs) of the hosts those ports are bound to, its own included.
    for x in &n.networks {
        let prefix = keys.net_ports(x);
        t.insert(Target::Prefix(prefix.clone()));
        for (k, c) in cache
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
        {
            if let Some(h) = c.net_port_host(k) {
                t.insert(Target::Key(keys.host(&h)));
            }
        }
    }
    if !n.networks.is_empty() {
        t.insert(Target::Key(keys.host(host)));
    }
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

pub(super) fn err(e: CodecError) -> BuildError {
    BuildError {
        object: e.key,
        message: e.message,
    }
}

/// The live hosts in the cache (`hosts/`, bound to their leases) that have a VTEP: name →
/// VTEP. A host whose `vtep` does not parse counts as one without overlay.
///
/// The model's hosts must have valid names and unique VTEPs: a host whose name does not
/// validate, or whose VTEP an earlier host (key order) has, is left out (another host's
/// misconfiguration must not refuse this host's model).
pub fn live_vteps<V: Stored>(keys: &Keys, cache: &BTreeMap<String, V>) -> BTreeMap<String, IpAddr> {
    let prefix = keys.hosts();
    let mut seen = HashSet::new();
    cache
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .filter_map(|(k, c)| {
            let v = c.decoded::<HostValue>(k).ok()?;
            let vtep: IpAddr = v.vtep.as_deref()?.parse().ok()?;
            check_host(&v.host_id).ok()?;
            seen.insert(vtep).then(|| (v.host_id.clone(), vtep))
        })
        .collect()
}

/// The model of `host`'s ports from the cache (see the module doc), through
/// [`super::codec`]'s value → spec conversions and Neutron's validation. `Err`: the
/// errors that keep the previous model (decode or validation failures). `memo` carries
/// the groups validated by the previous builds (a change revalidates what changed).
pub fn build_model(
    keys: &Keys,
    host: &str,
    cache: &Cache,
    memo: &mut GroupMemo,
) -> Result<Model, Vec<BuildError>> {
    build(keys, host, cache, memo).map(|(m, _)| m)
}

/// [`build_model`], and what the build knew ([`Built`]: what a later change may be
/// patched against, [`super::incremental`]).
pub fn build(
    keys: &Keys,
    host: &str,
    cache: &Cache,
    memo: &mut GroupMemo,
) -> Result<(Model, Built), Vec<BuildError>> {
    let n = needs(keys, host, cache);
    let mut errors = Vec::new();
    // Local groups first (id order), then remote-only ones.
    let all_groups: Vec<&String> = n
        .groups
        .iter()
        .chain(n.remote_groups.difference(&n.groups))
        .collect();
    let groups: BTreeMap<&str, (String, Arc<GroupValue>)> = all_groups
        .iter()
        .filter_map(|g| {
            let key = keys.group(g);
            let v = decode(cache, &key, &mut errors)?;
            Some((g.as_str(), (key, v)))
        })
        .collect();
    let ags: BTreeMap<&str, Arc<AddressGroupValue>> = n
        .address_groups
        .iter()
        .filter_map(|a| {
            Some((
                a.as_str(),
                decode(cache, &keys.address_group(a), &mut errors)?,
            ))
        })
        .collect();
    let ports: Vec<(&str, String, Arc<PortValue>)> = n
        .ports
        .iter()
        .filter_map(|p| {
            let key = keys.port(p);
            let v = decode(cache, &key, &mut errors)?;
            Some((p.as_str(), key, v))
        })
        .collect();
    // Names: groups (local, then remote-only), address groups, networks, ports; each
    // kind unique on its own. A missing record is named by its id.
    let mut names: HashMap<String, String> = HashMap::new();
    let mut gn = Names::default();
    for g in &all_groups {
        let name = groups.get(g.as_str()).map_or("", |(_, v)| v.name.as_str());
        names.insert(g.to_string(), gn.name(g, name));
    }
    let mut an = Names::default();
    for a in &n.address_groups {
        let name = ags.get(a.as_str()).map_or("", |v| v.name.as_str());
        names.insert(a.clone(), an.name(a, name));
    }
    let mut nn = Names::default();
    let mut networks = Vec::new();
    for x in &n.networks {
        let v: Option<Arc<NetworkValue>> = decode(cache, &keys.network(x), &mut errors);
        let name = nn.name(x, v.as_ref().map_or("", |v| v.name.as_str()));
        names.insert(x.clone(), name.clone());
        // The VNI: the value's, else derived from the id (not the name: names need not
        // be unique, and every host must derive the same one).
        let vni = v.as_ref().and_then(|v| v.segmentation_id);
        networks.push(NetworkSpec {
            name: Some(name),
            vni: Some(i64::from(vni.unwrap_or_else(|| Network::vni_of_name(x)))),
            encap: v.and_then(|v| v.network_type.clone()),
        });
    }
    let mut pn = Names::default();
    let port_names: HashMap<&str, String> = ports
        .iter()
        .map(|(id, _, v)| (*id, pn.name(id, &v.name)))
        .collect();
    let lookup = |id: &str| names.get(id).cloned();
    let mut spec = ModelSpec {
        networks,
        ..ModelSpec::default()
    };
    let mut group_meta = HashMap::new();
    for g in &all_groups {
        let local = n.groups.contains(*g);
        if let Some((_, v)) = groups.get(g.as_str()) {
            let meta = GroupMeta {
                name: v.name.clone(),
                stateful: v.stateful,
                index: spec.security_groups.len(),
            };
            group_meta.insert(g.to_string(), meta);
        }
        match groups.get(g.as_str()) {
            Some((key, v)) if local => match codec::group_spec(key, v, &lookup) {
                Ok(mut s) => {
                    s.name = lookup(g);
                    spec.security_groups.push(s);
                }
                Err(e) => errors.push(err(e)),
            },
            // A remote group (its record or not): a group with no rules.
            _ => spec.security_groups.push(SecurityGroupSpec {
                name: lookup(g),
                stateful: groups.get(g.as_str()).map(|(_, v)| v.stateful),
                rules: Some(Vec::new()),
                ..Default::default()
            }),
        }
    }
    for a in &n.address_groups {
        let mut s = ags
            .get(a.as_str())
            .map(|v| codec::address_group_spec(v))
            .unwrap_or_default();
        s.name = lookup(a);
        spec.address_groups.push(s);
    }
    let mut local_ports = HashSet::new();
    for (id, key, v) in &ports {
        if v.security_groups
            .iter()
            .any(|g| !groups.contains_key(g.as_str()))
        {
            continue; // a group's record has not arrived: blocked until it does
        }
        match codec::port_spec(key, v, &lookup) {
            Ok(mut s) => {
                s.name = port_names.get(id).cloned();
                local_ports.insert(*id);
                spec.ports.push(s);
            }
            Err(e) => errors.push(err(e)),
        }
    }
    // Remote ports: the other hosts' ports on this host's networks, those whose host is
    // live with a VTEP (else unreachable: left out).
    let vteps = live_vteps(keys, cache);
    for x in &n.networks {
        let prefix = keys.net_ports(x);
        for (key, c) in cache
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
        {
            let id = Keys::leaf(key);
            if port_names.contains_key(id) {
                continue; // this host's own port (its record is in the model)
            }
            let v = match c.decoded::<NetPortValue>(key) {
                Ok(v) => v,
                Err(e) => {
                    errors.push(err(e));
                    continue;
                }
            };
            if v.host_id == host || !vteps.contains_key(&v.host_id) {
                continue;
            }
            let name = pn.name(id, &v.name);
            spec.ports
                .push(codec::remote_port_spec(&v, &names[x.as_str()], &name));
        }
    }
    // The overlay: this host, and the live hosts with a VTEP (itself included).
    spec.local_host = Some(host.to_string());
    spec.hosts = vteps
        .iter()
        .map(|(name, vtep)| HostSpec {
            name: Some(name.clone()),
            vtep: Some(vtep.to_string()),
            mac: None,
        })
        .collect();
    let settings: Option<Arc<SettingsValue>> = decode(cache, &keys.settings(), &mut errors);
    match codec::settings_from_value(&keys.settings(), settings.as_deref()) {
        Ok((conntrack, ethertypes)) => {
            spec.conntrack = conntrack;
            spec.permitted_ethertypes = ethertypes;
        }
        Err(e) => errors.push(err(e)),
    }
    let mut remote_members = BTreeMap::new();
    for g in &n.remote_groups {
        let nets = remote_members_of(keys, cache, g, &local_ports, &mut errors);
        if !nets.is_empty() {
            remote_members.insert(names[g.as_str()].clone(), nets);
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut model = Model::validate_with(&spec, memo).map_err(|e| {
        e.errors()
            .iter()
            .map(|e| BuildError {
                object: String::new(),
                message: format!("{}: {}", e.path, e.kind),
            })
            .collect::<Vec<_>>()
    })?;
    model.remote_members = remote_members;
    let local_ports = local_ports.into_iter().map(str::to_string).collect();
    let built = Built {
        names,
        groups: group_meta,
        local_ports,
        needs: n,
    };
    Ok((model, built))
}

/// The addresses of remote group `g`'s members in the cache (`members/G/*`), minus the
/// host's own ports (`local_ports`: the model has them as ports).
pub(super) fn remote_members_of<S: AsRef<str> + std::hash::Hash + Eq + std::borrow::Borrow<str>>(
    keys: &Keys,
    cache: &Cache,
    g: &str,
    local_ports: &HashSet<S>,
    errors: &mut Vec<BuildError>,
) -> Vec<IpNet> {
    let mut nets = Vec::new();
    let prefix = keys.members(g);
    for (key, c) in cache
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
    {
        if local_ports.contains(Keys::leaf(key)) {
            continue; // the model has it as a port
        }
        match c.members(key) {
            Ok(a) => nets.extend_from_slice(a),
            Err(e) => errors.push(err(e.clone())),
        }
    }
    nets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_builders() {
        for prefix in ["/sgswitch/", "/d/", "/a b/c/"] {
            let keys = Keys::new(prefix);
            let mut buf = String::from("left over");
            for id in ["p1", "0b7c-11", ""] {
                key_into(&mut buf, &keys, PORTS, id);
                assert_eq!(buf, keys.port(id));
                key_into(&mut buf, &keys, GROUPS, id);
                assert_eq!(buf, keys.group(id));
            }
        }
    }
}
