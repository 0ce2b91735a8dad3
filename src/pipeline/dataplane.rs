//! The compiled dataplane: the immutable port table, FDB and classifier of one policy
//! epoch, built off the fast path and shared read-only by every worker.
//!
//! Owns: compiling a validated model into the per-port entries (MACs, allowed (MAC, prefix)
//! pairs and their fast forms, zones, networks), the static FDB and the
//! [`CompiledPolicy`] of one epoch, and the stable zone of each port name ([`IdMap`]);
//! deriving the next epoch from the running one when only remote-group members changed
//! ([`Dataplane::with_members`]), or with the classifier's unaffected group sets shared
//! ([`Dataplane::recompile`]).
//! Overlay (#19, see docs/overlay.md): a remote port (bound to another host) stays at its
//! model index (the classifier and remote groups need it) but is marked `remote`; after
//! the model's ports come the tunnel ports, one per (network, remote host with a VTEP and
//! a port there), with no port security; the FDB maps a remote port's MACs to its
//! host's tunnel port, and a network's flood members are its local ports and its tunnel
//! ports (head-end replication). [`Dataplane::tunnel_port`] names the port a
//! decapsulated frame enters from. The ARP responder's table of remote addresses
//! ([`ArpTable`], compiled by `arp_responder`) is part of the epoch.
//!
//! May not touch: per-frame work (it only answers `owns_mac`, `pair_allows`, `owns_ip` for
//! `security`), mutable per-worker state, or ports (a port here is a name and an index, not
//! a backend). Uses what `super` imports: `policy` (the model), `classifier`, `l2`, `flow`
//! and `wire` types.

use super::*;

/// One port of a compiled configuration.
#[derive(Clone, Debug)]
pub struct PortEntry {
    pub name: String,
    /// Connection-tracking zone: stable for a port name across reloads.
    pub zone: u16,
    pub network: u16,
    pub mac: Mac,
    pub port_security: bool,
    /// The port's MAC and its allowed-address-pair MACs (deduplicated).
    pub macs: Vec<Mac>,
    /// (MAC, prefix) pairs the instance may send from: fixed IPs with the port MAC,
    /// allowed address pairs, EUI-64 link-local addresses of each allowed MAC.
    pub pairs: Vec<(Mac, IpNet)>,
    /// `pairs` in the flow key's 16-byte address layout, for the per-frame checks.
    fast_pairs: Vec<FastPair>,
    /// `macs` as words ([`mac_word`]), for the per-frame checks.
    mac_words: Vec<u64>,
    /// A port of the model bound to another host (`Model::is_remote`): never a
    /// destination itself (its MACs lead to its host's tunnel port; without one, a frame
    /// to it is dropped `tunnel-unreachable`), never a source.
    pub remote: bool,
    /// A tunnel port (index into [`Dataplane::tunnels`]): the pseudo port of one (network,
    /// remote host), after the model's ports. No port security, no groups at this host.
    pub tunnel: Option<u16>,
}

/// A tunnel port's destination: the network's frames to one remote host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tunnel {
    /// Port index of the tunnel port.
    pub port: u16,
    pub network: u16,
    /// The remote host's name and tunnel endpoint.
    pub host: String,
    pub vtep: IpAddr,
    /// The next hop's MAC towards `vtep`, if the model gives it.
    pub mac: Option<Mac>,
    pub encap: Encap,
    pub vni: u32,
}

/// A MAC as one integer (two loads, one compare instead of a 6-byte compare).
#[inline(always)]
fn mac_word(m: &Mac) -> u64 {
    let m = &m.0;
    u64::from(u32::from_le_bytes([m[0], m[1], m[2], m[3]]))
        | u64::from(u16::from_le_bytes([m[4], m[5]])) << 32
}

/// An allowed (MAC, prefix) in the [`FlowKey`] address layout (IPv4 mapped into 16 bytes).
#[derive(Clone, Copy, Debug)]
struct FastPair {
    /// [`mac_word`] of the MAC.
    mac: u64,
    family: u8,
    net: u128,
    mask: u128,
}

impl FastPair {
    fn new(mac: Mac, net: &IpNet) -> FastPair {
        match net {
            IpNet::V4(n) => {
                let bits = 96 + n.prefix_len() as u32;
                FastPair {
                    mac: mac_word(&mac),
                    family: FAMILY_V4,
                    net: u128::from_be_bytes(FlowKey::map_v4(n.network().octets())),
                    mask: prefix_mask(bits),
                }
            }
            IpNet::V6(n) => FastPair {
                mac: mac_word(&mac),
                family: FAMILY_V6,
                net: u128::from_be_bytes(n.network().octets()),
                mask: prefix_mask(n.prefix_len() as u32),
            },
        }
    }

    #[inline]
    fn contains(&self, family: u8, addr: &[u8; 16]) -> bool {
        self.family == family && u128::from_be_bytes(*addr) & self.mask == self.net
    }
}

fn prefix_mask(bits: u32) -> u128 {
    if bits == 0 {
        0
    } else {
        u128::MAX << (128 - bits.min(128))
    }
}

impl PortEntry {
    #[inline]
    pub(super) fn owns_mac(&self, mac: &Mac) -> bool {
        self.mac_words.contains(&mac_word(mac))
    }

    /// Whether (`mac`, `addr`) is an allowed source pair (`addr` in the key layout).
    #[inline]
    pub(super) fn pair_allows(&self, mac: &Mac, family: u8, addr: &[u8; 16]) -> bool {
        let mac = mac_word(mac);
        self.fast_pairs
            .iter()
            .any(|p| p.mac == mac && p.contains(family, addr))
    }

    /// Whether `addr` is one of the port's addresses (any allowed MAC).
    #[inline]
    pub(super) fn owns_ip(&self, family: u8, addr: &[u8; 16]) -> bool {
        self.fast_pairs.iter().any(|p| p.contains(family, addr))
    }
}

/// Ids that stay stable across reloads, so that per-worker state indexed by them survives
/// a policy change without being remapped: the conntrack zone of each port name, and the
/// counter slot of each security-group rule (by group name and the rule's Neutron
/// identity, [`rule_key`]: a rule keeps its hit count while it exists, whatever its
/// position). Ids are never reused; the maps grow with every distinct port name and rule
/// ever seen (a few dozen bytes each).
#[derive(Clone, Debug, Default)]
pub struct IdMap {
    zones: HashMap<String, u16>,
    rules: HashMap<(String, RuleKey), u32>,
}

impl IdMap {
    /// The counter slot of `rule` of group `group`.
    pub fn rule_slot(&mut self, group: &str, rule: &Rule) -> u32 {
        let key = (group.to_string(), rule_key(rule));
        let next = self.rules.len() as u32;
        *self.rules.entry(key).or_insert(next)
    }

    /// Number of rule slots handed out.
    pub fn rule_slots(&self) -> usize {
        self.rules.len()
    }

    pub fn zone(&mut self, name: &str) -> u16 {
        if let Some(z) = self.zones.get(name) {
            return *z;
        }
        let z = self.zones.len() as u16;
        self.zones.insert(name.to_string(), z);
        z
    }

    /// Port names indexed by zone.
    pub fn names(&self) -> Vec<String> {
        let mut v = vec![String::new(); self.zones.len()];
        for (n, z) in &self.zones {
            v[*z as usize] = n.clone();
        }
        v
    }
}

/// The immutable compiled form of a configuration, shared by all workers.
#[derive(Clone, Debug)]
pub struct Dataplane {
    pub epoch: u64,
    /// The per-port, FDB, log and overlay tables are shared (`Arc`) between the
    /// dataplanes of a rules-only change ([`Dataplane::recompile`]), which rebuilds none.
    pub ports: Arc<[PortEntry]>,
    pub networks: Arc<[String]>,
    pub fdb: Arc<StaticFdb>,
    pub policy: CompiledPolicy,
    pub permitted_ethertypes: Vec<u16>,
    by_name: Arc<HashMap<String, u16>>,
    /// zone → port index
    by_zone: Vec<Option<u16>>,
    /// Counter slot of each rule ([`IdMap::rule_slot`]): `rule_slots[rule_base[g] + r]`
    /// for rule `r` of group `g` (model order).
    rule_base: Vec<u32>,
    rule_slots: Vec<u32>,
    /// What the packet log records, per port index.
    pub logs: Arc<[PortLog]>,
    /// Some port records something (otherwise the pipeline skips the log checks).
    pub log_any: bool,
    /// The tunnel ports' destinations (empty without an overlay), by tunnel id.
    pub tunnels: Arc<[Tunnel]>,
    /// (encapsulation, VNI, source VTEP) → tunnel port index, for decapsulated frames.
    tunnel_rx: Arc<HashMap<(Encap, u32, IpAddr), u16>>,
    /// The ARP responder's addresses of remote ports (empty without an overlay).
    pub arp: Arc<ArpTable>,
}

/// What the packet log records for one port (compiled from the model's
/// [`crate::policy::NetworkLog`]s): its dropped packets, and the connections admitted by
/// the rules of which of its groups.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortLog {
    /// Dropped packets at this port (as sender or receiver) are recorded.
    pub drop: bool,
    /// Connections admitted by any rule of the port's groups are recorded.
    pub accept_all: bool,
    /// Otherwise, connections admitted by a rule of one of these groups (model indices).
    pub accept_groups: Vec<u32>,
}

impl PortLog {
    /// Whether a connection admitted by a rule of group `g` is recorded.
    #[inline]
    pub fn accepts(&self, g: u32) -> bool {
        self.accept_all || self.accept_groups.contains(&g)
    }

    /// Whether anything is recorded.
    pub fn any(&self) -> bool {
        self.drop || self.accept_all || !self.accept_groups.is_empty()
    }
}

/// Compile the enabled logs of `model` into one [`PortLog`] per port (Neutron's
/// semantics: a log names a group, a port, both or neither; it covers the ports that use
/// the group, the port, the group on that port, or every port).
/// Whether `a` and `b` differ at most in what only the classifier reads: the groups'
/// rules (not their names or order), address groups, `remote_members`, and `conntrack`
/// (read by the runtime, not the dataplane). Then [`Dataplane::recompile`] rebuilds the
/// classifier alone. The destructuring is exhaustive on purpose (as in
/// [`crate::classifier::members_only_change`]).
pub fn rules_only_change(a: &Model, b: &Model) -> bool {
    let Model {
        security_groups,
        address_groups: _,
        ports,
        networks,
        permitted_ethertypes,
        conntrack: _,
        logs,
        hosts,
        local_host,
        remote_members: _,
    } = a;
    security_groups.len() == b.security_groups.len()
        && security_groups
            .iter()
            .zip(&b.security_groups)
            .all(|(x, y)| x.name == y.name)
        && *ports == b.ports
        && *networks == b.networks
        && *permitted_ethertypes == b.permitted_ethertypes
        && *logs == b.logs
        && *hosts == b.hosts
        && *local_host == b.local_host
}

fn compile_logs(model: &Model) -> Vec<PortLog> {
    let group_index = |name: &str| {
        model
            .security_groups
            .iter()
            .position(|g| g.name == name)
            .map(|i| i as u32)
    };
    model
        .ports
        .iter()
        .map(|p| {
            let mut out = PortLog::default();
            for l in model.logs.iter().filter(|l| l.enabled) {
                if l.target.as_deref().is_some_and(|t| t != p.name) {
                    continue;
                }
                match &l.resource {
                    Some(g) if !p.security_groups.iter().any(|s| s == g) => continue,
                    Some(g) => {
                        if l.event.accepts() {
                            if let Some(i) = group_index(g) {
                                if !out.accept_groups.contains(&i) {
                                    out.accept_groups.push(i);
                                }
                            }
                        }
                    }
                    None => out.accept_all |= l.event.accepts(),
                }
                out.drop |= l.event.drops();
            }
            if out.accept_all {
                out.accept_groups.clear();
            }
            out
        })
        .collect()
}

/// Append one tunnel port per (network, remote host with a VTEP) in `remote_hosts` to
/// `ports` (first-use order, after the model's ports), and the receive map.
#[allow(clippy::type_complexity)]
fn compile_tunnels(
    model: &Model,
    networks: &[String],
    remote_hosts: &[(u16, &str)],
    ports: &mut Vec<PortEntry>,
    zones: &mut IdMap,
) -> (Vec<Tunnel>, HashMap<(Encap, u32, IpAddr), u16>) {
    let mut tunnels = Vec::new();
    let mut rx = HashMap::new();
    for &(network, h) in remote_hosts {
        let Some(host) = model.host(h) else { continue };
        let net_name = networks.get(network as usize).map_or("", String::as_str);
        let (encap, vni) = model
            .network(net_name)
            .map_or((Encap::default(), Network::vni_of_name(net_name)), |n| {
                (n.effective_encap(), n.effective_vni())
            });
        let name = format!("tunnel:{net_name}:{h}");
        let port = ports.len() as u16;
        ports.push(PortEntry {
            zone: zones.zone(&name),
            name,
            network,
            mac: Mac([0; 6]),
            port_security: false,
            macs: Vec::new(),
            pairs: Vec::new(),
            fast_pairs: Vec::new(),
            mac_words: Vec::new(),
            remote: false,
            tunnel: Some(tunnels.len() as u16),
        });
        rx.insert((encap, vni, host.vtep), port);
        tunnels.push(Tunnel {
            port,
            network,
            host: h.to_string(),
            vtep: host.vtep,
            mac: host.mac,
            encap,
            vni,
        });
    }
    (tunnels, rx)
}

/// The EUI-64 IPv6 link-local address (fe80::/64) derived from a MAC.
pub fn eui64_link_local(mac: &Mac) -> Ipv6Addr {
    let mac = &mac.0;
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        mac[0] ^ 0x02,
        mac[1],
        mac[2],
        0xff,
        0xfe,
        mac[3],
        mac[4],
        mac[5],
    ])
}

impl Dataplane {
    /// Compile a validated model. `zones` keeps conntrack zones stable across reloads.
    pub fn compile(model: &Model, epoch: u64, zones: &mut IdMap) -> Dataplane {
        let policy = CompiledPolicy::compile(model, epoch);
        Self::with_policy(model, epoch, zones, policy, None)
    }

    /// [`Dataplane::compile`] of `model`, given that `self` is the dataplane of `old`
    /// compiled with the same `zones`: the classifier is [`CompiledPolicy::recompile`]
    /// (the group sets the change did not touch are shared, not compiled again; it
    /// answers as a full compile would), and unchanged groups keep their rule counter
    /// slots without a lookup.
    ///
    /// When only rules (or the classifier's other inputs: address groups, remote
    /// members) changed ([`rules_only_change`]), the classifier is
    /// [`CompiledPolicy::derive`] (a patch: every set shared, the rule changes a delta)
    /// and nothing else is rebuilt: ports, FDB, logs and overlay tables are the same
    /// `Arc`s, only the rule counter slots are laid out again (unchanged groups copied).
    pub fn recompile(
        &self,
        old: &Model,
        model: &Model,
        epoch: u64,
        zones: &mut IdMap,
    ) -> Dataplane {
        if rules_only_change(old, model) {
            let policy = self.policy.derive(old, model, epoch);
            let (rule_base, rule_slots) = self.slots(model, zones, Some(old));
            return Dataplane {
                epoch,
                policy,
                rule_base,
                rule_slots,
                ..self.clone()
            };
        }
        let policy = self.policy.recompile(old, model, epoch);
        Self::with_policy(model, epoch, zones, policy, Some((self, old)))
    }

    /// The rule counter slots of `model` (`rule_base`, `rule_slots`); `old`: the model of
    /// `self`, whose unchanged groups keep their slots.
    fn slots(&self, model: &Model, zones: &mut IdMap, old: Option<&Model>) -> (Vec<u32>, Vec<u32>) {
        let mut rule_base = Vec::with_capacity(model.security_groups.len());
        let mut rule_slots = Vec::with_capacity(self.rule_slots.len() + 1);
        for (gi, g) in model.security_groups.iter().enumerate() {
            rule_base.push(rule_slots.len() as u32);
            // A group unchanged since the previous dataplane keeps its slots (the same
            // `zones` handed them out, and it never forgets one): no key built or hashed.
            if let Some(old) = old.and_then(|m| self.group_slots(m, gi, g)) {
                rule_slots.extend_from_slice(old);
                continue;
            }
            for r in &g.rules {
                rule_slots.push(zones.rule_slot(&g.name, r));
            }
        }
        (rule_base, rule_slots)
    }

    /// The counter slots of group `gi` of a new model (`g`) if `old` (the model of
    /// `self`) has the same group at that index: same name, same rules.
    fn group_slots(
        &self,
        old: &Model,
        gi: usize,
        g: &crate::policy::SecurityGroup,
    ) -> Option<&[u32]> {
        let o = old.security_groups.get(gi)?;
        if o.name != g.name || o.rules != g.rules {
            return None;
        }
        let base = *self.rule_base.get(gi)? as usize;
        self.rule_slots.get(base..base + g.rules.len())
    }

    /// The dataplane of `model` with its compiled classifier `policy`; `prev`: the
    /// previous dataplane and its model, whose unchanged groups' rule slots are reused.
    fn with_policy(
        model: &Model,
        epoch: u64,
        zones: &mut IdMap,
        policy: CompiledPolicy,
        prev: Option<(&Dataplane, &Model)>,
    ) -> Dataplane {
        let mut networks: Vec<String> = Vec::new();
        for n in &model.networks {
            if !networks.contains(&n.name) {
                networks.push(n.name.clone());
            }
        }
        for p in &model.ports {
            if !networks.contains(&p.network) {
                networks.push(p.network.clone());
            }
        }
        let mut ports = Vec::with_capacity(model.ports.len());
        let mut by_name = HashMap::new();
        let mut remote_hosts: Vec<(u16, &str)> = Vec::new();
        for (i, p) in model.ports.iter().enumerate() {
            let mut macs = vec![p.mac];
            for aap in &p.allowed_address_pairs {
                let m = aap.mac_address.unwrap_or(p.mac);
                if !macs.contains(&m) {
                    macs.push(m);
                }
            }
            let mut pairs: Vec<(Mac, IpNet)> = Vec::new();
            for ip in &p.fixed_ips {
                pairs.push((p.mac, IpNet::from(*ip)));
            }
            for aap in &p.allowed_address_pairs {
                pairs.push((aap.mac_address.unwrap_or(p.mac), aap.ip_address));
            }
            for m in &macs {
                pairs.push((*m, IpNet::from(IpAddr::V6(eui64_link_local(m)))));
            }
            let network = networks.iter().position(|n| *n == p.network).unwrap_or(0) as u16;
            by_name.insert(p.name.clone(), i as u16);
            let remote = model.is_remote(p);
            if let (true, Some(h)) = (remote, p.host.as_deref()) {
                if model.host(h).is_some() && !remote_hosts.contains(&(network, h)) {
                    remote_hosts.push((network, h));
                }
            }
            ports.push(PortEntry {
                name: p.name.clone(),
                zone: zones.zone(&p.name),
                network,
                mac: p.mac,
                port_security: p.port_security,
                fast_pairs: pairs.iter().map(|(m, n)| FastPair::new(*m, n)).collect(),
                mac_words: macs.iter().map(mac_word).collect(),
                macs,
                pairs,
                remote,
                tunnel: None,
            });
        }
        let (tunnels, tunnel_rx) =
            compile_tunnels(model, &networks, &remote_hosts, &mut ports, zones);
        // A remote port's MACs lead to its host's tunnel port (or to itself, unreachable,
        // when its host has none); flood members are local ports and tunnel ports.
        let tunnel_of = |p: &PortEntry, i: usize| -> u16 {
            let host = model.ports.get(i).and_then(|m| m.host.as_deref());
            tunnels
                .iter()
                .find(|t| t.network == p.network && Some(t.host.as_str()) == host)
                .map_or(i as u16, |t| t.port)
        };
        let mut fdb_entries: Vec<(u16, u16, &[Mac])> = Vec::with_capacity(ports.len());
        for (i, p) in ports.iter().enumerate().filter(|(_, p)| !p.remote) {
            fdb_entries.push((p.network, i as u16, p.macs.as_slice()));
        }
        let remote_macs: Vec<(u16, u16, &[Mac])> = ports
            .iter()
            .enumerate()
            .filter(|(_, p)| p.remote)
            .map(|(i, p)| (p.network, tunnel_of(p, i), p.macs.as_slice()))
            .collect();
        let fdb = StaticFdb::with_remote(networks.len(), fdb_entries, remote_macs);
        let arp = ArpTable::compile(model, &ports, |i| tunnel_of(&ports[i], i));
        let mut by_zone = Vec::new();
        for (i, p) in ports.iter().enumerate() {
            if by_zone.len() <= p.zone as usize {
                by_zone.resize(p.zone as usize + 1, None);
            }
            by_zone[p.zone as usize] = Some(i as u16);
        }
        let mut rule_base = Vec::with_capacity(model.security_groups.len());
        let mut rule_slots = Vec::new();
        for (gi, g) in model.security_groups.iter().enumerate() {
            rule_base.push(rule_slots.len() as u32);
            // A group unchanged since the previous dataplane keeps its slots (the same
            // `zones` handed them out, and it never forgets one): no key built or hashed.
            if let Some(old) = prev.and_then(|(dp, m)| dp.group_slots(m, gi, g)) {
                rule_slots.extend_from_slice(old);
                continue;
            }
            for r in &g.rules {
                rule_slots.push(zones.rule_slot(&g.name, r));
            }
        }
        let logs = compile_logs(model);
        Dataplane {
            epoch,
            by_zone,
            rule_base,
            rule_slots,
            log_any: logs.iter().any(PortLog::any),
            logs: logs.into(),
            policy,
            ports: ports.into(),
            networks: networks.into(),
            fdb: Arc::new(fdb),
            permitted_ethertypes: model.permitted_ethertypes.clone(),
            by_name: Arc::new(by_name),
            tunnels: tunnels.into(),
            tunnel_rx: Arc::new(tunnel_rx),
            arp: Arc::new(arp),
        }
    }

    /// `self` updated to `model` when `model` differs from the model `self` was compiled
    /// for in `Model::remote_members` alone ([`crate::classifier::members_only_change`]):
    /// ports, FDB, zones, rule slots and logs are reused as they are, the classifier is
    /// [`CompiledPolicy::with_members`] (no rule recompiled, the changed groups' member
    /// sets rebuilt). The epoch is new all the same, so connection tracking re-judges
    /// every entry against the new sets: the connections of a member that left are cut,
    /// as after a full compile.
    pub fn with_members(&self, model: &Model, epoch: u64) -> Dataplane {
        Dataplane {
            epoch,
            policy: self.policy.with_members(model, epoch),
            ..self.clone()
        }
    }

    /// The tunnel port a decapsulated frame enters from: the one of the network with
    /// this (encapsulation, VNI) towards the host of `src_vtep`.
    #[inline]
    pub fn tunnel_port(&self, encap: Encap, vni: u32, src_vtep: IpAddr) -> Option<u16> {
        self.tunnel_rx.get(&(encap, vni, src_vtep)).copied()
    }

    /// Whether port index `q` is a tunnel port.
    #[inline]
    pub fn is_tunnel(&self, q: u16) -> bool {
        self.ports
            .get(q as usize)
            .is_some_and(|e| e.tunnel.is_some())
    }

    /// Index of the port with conntrack zone `zone`.
    #[inline]
    pub fn port_index_by_zone(&self, zone: u16) -> Option<u16> {
        self.by_zone.get(zone as usize).copied().flatten()
    }

    /// The counter slot of rule `r` of group `g` (model indices), if the model has it.
    #[inline]
    pub fn rule_slot(&self, r: RuleRef) -> Option<u32> {
        let base = *self.rule_base.get(r.group as usize)? as usize;
        self.rule_slots.get(base + r.rule as usize).copied()
    }

    /// Every rule of the model with its counter slot, in model order.
    pub fn rule_refs(&self) -> impl Iterator<Item = (RuleRef, u32)> + '_ {
        let n = self.rule_slots.len() as u32;
        self.rule_base
            .iter()
            .enumerate()
            .flat_map(move |(g, &base)| {
                let end = self.rule_base.get(g + 1).copied().unwrap_or(n);
                (base..end).map(move |i| {
                    (
                        RuleRef {
                            group: g as u32,
                            rule: i - base,
                        },
                        self.rule_slots[i as usize],
                    )
                })
            })
    }

    /// Index of the port called `name`.
    pub fn port_index(&self, name: &str) -> Option<u16> {
        self.by_name.get(name).copied()
    }
}
