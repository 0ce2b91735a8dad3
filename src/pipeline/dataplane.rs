//! The compiled dataplane: the immutable port table, FDB and classifier of one policy
//! epoch, built off the fast path and shared read-only by every worker.
//!
//! Owns: compiling a validated model into the per-port entries (MACs, allowed (MAC, prefix)
//! pairs and their fast forms, zones, networks), the static FDB and the
//! [`CompiledPolicy`] of one epoch, and the stable zone of each port name ([`ZoneMap`]).
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

/// Assigns stable conntrack zones to port names across reloads.
#[derive(Clone, Debug, Default)]
pub struct ZoneMap {
    zones: HashMap<String, u16>,
}

impl ZoneMap {
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
#[derive(Debug)]
pub struct Dataplane {
    pub epoch: u64,
    pub ports: Vec<PortEntry>,
    pub networks: Vec<String>,
    pub fdb: StaticFdb,
    pub policy: CompiledPolicy,
    pub permitted_ethertypes: Vec<u16>,
    by_name: HashMap<String, u16>,
    /// zone → port index
    by_zone: Vec<Option<u16>>,
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
    pub fn compile(model: &Model, epoch: u64, zones: &mut ZoneMap) -> Dataplane {
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
            });
        }
        let fdb = StaticFdb::new(
            networks.len(),
            ports
                .iter()
                .enumerate()
                .map(|(i, p)| (p.network, i as u16, p.macs.as_slice())),
        );
        let mut by_zone = Vec::new();
        for (i, p) in ports.iter().enumerate() {
            if by_zone.len() <= p.zone as usize {
                by_zone.resize(p.zone as usize + 1, None);
            }
            by_zone[p.zone as usize] = Some(i as u16);
        }
        Dataplane {
            epoch,
            by_zone,
            policy: CompiledPolicy::compile(model, epoch),
            ports,
            networks,
            fdb,
            permitted_ethertypes: model.permitted_ethertypes.clone(),
            by_name,
        }
    }

    /// Index of the port with conntrack zone `zone`.
    #[inline]
    pub fn port_index_by_zone(&self, zone: u16) -> Option<u16> {
        self.by_zone.get(zone as usize).copied().flatten()
    }

    /// Index of the port called `name`.
    pub fn port_index(&self, name: &str) -> Option<u16> {
        self.by_name.get(name).copied()
    }
}
