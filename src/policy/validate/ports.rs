//! Switch ports (security-groups.md §22, §32): name, network, MAC, fixed IPs, bound
//! groups (exist, listed once, no stateful/stateless mix, none without port security),
//! allowed address pairs, and the backend (interface name syntax, one port per
//! interface, AF_XDP mode parsed into an [`XdpMode`]).
//!
//! Owns: one port, checked against the ports before it through a [`PortRegistry`]
//! (names, MAC and IPs per network, interfaces). May not touch: rules or group contents
//! — it sees groups only as names in [`super::Scope`] and their statefulness; address
//! syntax is [`super::addresses`]'s.
//!
//! Depends on: the model, spec and error types, and its sibling checks, inside `policy`;
//! no other sgswitch module.

use std::collections::HashMap;
use std::net::IpAddr;

use super::super::error::{ErrorKind, FieldPath};
use super::super::spec::{AllowedAddressPairSpec, BackendSpec, PortSpec};
use super::super::{AllowedAddressPair, Backend, Model, Port, XdpMode};
use super::addresses::{parse_cidr, parse_fixed_ip, parse_port_mac};
use super::defaults::{DEFAULT_GROUP, DEFAULT_NETWORK};
use super::{check_name, Found, Scope};
use crate::wire::Mac;

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

/// Check a host name (`binding:host_id`): 1..64 characters of `[A-Za-z0-9._-]` (it is
/// a path element of the shared store's keys).
pub fn check_host(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("must not be empty");
    }
    if name.len() > 64 {
        return Err("longer than 64 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err("only letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

/// What earlier ports hold, for uniqueness checks.
#[derive(Default)]
pub(super) struct PortRegistry {
    names: HashMap<String, usize>,
    /// (network, MAC) → port name.
    macs: HashMap<(String, Mac), String>,
    /// (network, IP) → port name.
    ips: HashMap<(String, IpAddr), String>,
    /// (host, netns, ifname) → port name: a netdev is unique on its host (ports bound to
    /// different hosts may each have their own `p0`).
    ifnames: HashMap<IfKey, String>,
}

impl PortRegistry {
    pub(super) fn from_model(model: &Model) -> Self {
        let mut r = PortRegistry::default();
        for (i, p) in model.ports.iter().enumerate() {
            r.names.insert(p.name.clone(), i);
            r.macs.insert((p.network.clone(), p.mac), p.name.clone());
            for ip in &p.fixed_ips {
                r.ips.insert((p.network.clone(), *ip), p.name.clone());
            }
            if let Some(b) = &p.backend {
                r.ifnames
                    .insert(backend_ifkey(p.host.as_deref(), b), p.name.clone());
            }
        }
        r
    }
}

/// A port's netdev: (host, namespace of a tap, interface name).
type IfKey = (Option<String>, Option<String>, String);

fn backend_ifkey(host: Option<&str>, b: &Backend) -> IfKey {
    let host = host.map(str::to_owned);
    match b {
        Backend::Tap { ifname, netns, .. } => (host, netns.clone(), ifname.clone()),
        Backend::AfXdp { ifname, .. } | Backend::AfPacket { ifname } => {
            (host, None, ifname.clone())
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn check_port(
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
        Some(text) => match parse_port_mac(text) {
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
                            mac: m.to_string(),
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
                    .map(|m| m.to_string())
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
        let key = backend_ifkey(spec.host.as_deref(), b);
        if let Some(other) = registry.ifnames.get(&key) {
            found.push((
                path.key("backend").key("ifname"),
                ErrorKind::DuplicateInterface {
                    ifname: key.2.clone(),
                    other_port: other.clone(),
                },
            ));
        } else {
            registry.ifnames.insert(key, port_name.clone());
        }
    }

    if let Some(h) = &spec.host {
        if let Err(reason) = check_host(h) {
            found.push((
                path.key("host"),
                ErrorKind::InvalidHost {
                    value: h.clone(),
                    reason,
                },
            ));
        }
    }

    if found.len() != before {
        return None;
    }
    // A tap moved into a namespace is the instance's interface: it gets the port's MAC
    // (else every frame it sends is dropped as spoofed).
    let mut backend = backend;
    if let Some(Backend::Tap {
        netns: Some(_),
        instance_mac,
        ..
    }) = &mut backend
    {
        *instance_mac = mac;
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
        host: spec.host.clone(),
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
        Some(text) => match parse_port_mac(text) {
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

/// A tap's `queues`: 1..=[`crate::policy::MAX_TAP_QUEUES`], 1 when not given. A count
/// above the switch's workers is not an error here (the model does not know the workers):
/// the live switch opens one queue per worker at most and says so in its log.
fn tap_queues(queues: Option<u16>, path: &FieldPath, found: &mut Found) -> Option<u16> {
    let q = queues.unwrap_or(1);
    if (1..=crate::policy::MAX_TAP_QUEUES).contains(&q) {
        return Some(q);
    }
    found.push((
        path.key("queues"),
        ErrorKind::OutOfRange {
            value: u64::from(q),
            reason: "a tap has 1..=256 queues",
        },
    ));
    None
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
            queues,
        } => {
            let ifname = ifname_ok(ifname, found);
            let queues = tap_queues(*queues, path, found);
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
                vnet_hdr: vnet_hdr.unwrap_or(true),
                instance_mac: None,
                queues: queues?,
            })
        }
        BackendSpec::AfXdp {
            ifname,
            queue,
            mode,
        } => {
            let ifname = ifname_ok(ifname, found);
            // Parsed here, once: the model carries the enum.
            let mode = match mode {
                None => None,
                Some(m) => match XdpMode::from_name(m) {
                    Some(x) => Some(x),
                    None => {
                        found.push((path.key("mode"), ErrorKind::InvalidXdpMode(m.clone())));
                        return None;
                    }
                },
            };
            Some(Backend::AfXdp {
                ifname: ifname?,
                queue: queue.unwrap_or(0),
                mode,
            })
        }
        BackendSpec::AfPacket { ifname } => Some(Backend::AfPacket {
            ifname: ifname_ok(ifname, found)?,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::spec::{BackendSpec, ModelSpec, NetworkSpec, PortSpec};
    use super::super::validate_model;
    use super::*;

    /// A netdev is unique on its host: ports bound to different hosts may each have a
    /// `p0`; two ports on one host (or both unbound) may not.
    #[test]
    fn interfaces_are_unique_per_host() {
        let port = |name: &str, mac: &str, host: Option<&str>| PortSpec {
            name: Some(name.into()),
            network: Some("n".into()),
            mac: Some(mac.into()),
            host: host.map(str::to_string),
            backend: Some(BackendSpec::AfPacket {
                ifname: Some("p0".into()),
            }),
            ..Default::default()
        };
        let spec = |ports: Vec<PortSpec>| ModelSpec {
            networks: vec![NetworkSpec {
                name: Some("n".into()),
                ..Default::default()
            }],
            ports,
            ..Default::default()
        };
        let ok = spec(vec![
            port("a", "fa:16:3e:00:00:01", Some("h1")),
            port("b", "fa:16:3e:00:00:02", Some("h2")),
            port("c", "fa:16:3e:00:00:03", None),
        ]);
        assert!(validate_model(&ok).is_ok());
        for (h1, h2) in [(Some("h1"), Some("h1")), (None, None)] {
            let bad = spec(vec![
                port("a", "fa:16:3e:00:00:01", h1),
                port("b", "fa:16:3e:00:00:02", h2),
            ]);
            let errs = validate_model(&bad).unwrap_err().into_vec();
            assert_eq!(errs.len(), 1, "{errs:?}");
            assert_eq!(errs[0].path.to_string(), "ports[1].backend.ifname");
            assert!(matches!(
                &errs[0].kind,
                ErrorKind::DuplicateInterface { ifname, other_port }
                    if ifname == "p0" && other_port == "a"
            ));
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
}
