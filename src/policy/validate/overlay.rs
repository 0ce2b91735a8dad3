//! The overlay's part of the model: a network's VNI and encapsulation, the hosts with
//! their tunnel endpoints (VTEPs), and this switch's host name.
//!
//! Decisions:
//! * A network without `vni` gets one derived from its name
//!   ([`crate::policy::Network::vni_of_name`]), the same on every host; without `encap`
//!   it uses Geneve.
//! * The effective (encapsulation, VNI) pairs must be unique, but only when the overlay
//!   is in use (hosts declared or a local host set): a single switch never carries a
//!   VNI, and a hash collision between two derived VNIs must not refuse its model. The
//!   error names both networks and asks for an explicit `vni` on one.
//! * A port bound to a host that is not among the hosts is *not* an error: it is remote
//!   and unreachable until its host appears (a shared store's hosts come and go with
//!   their leases, their ports stay).
//! * `local_host` need not be among the hosts (a switch without a VTEP of its own then
//!   reaches no remote port; its local ports work as before).
//! * A port bound to another host may not name a `backend` (refused, not ignored:
//!   [`check_remote_backend`]).
//!
//! Owns: these checks. May not touch: anything outside `policy`. Depends on the model
//! types, the host-name syntax of [`super::check_host`] and MAC parsing of
//! [`super::addresses`].

use std::collections::HashMap;
use std::net::IpAddr;

use super::super::error::{ErrorKind, FieldPath};
use super::super::spec::{HostSpec, NetworkSpec, PortSpec};
use super::super::{Encap, Host, Network, MAX_VNI};
use super::{addresses, check_host, Found};

/// A declared network's `vni` and `encap`, parsed (`None` when absent or invalid).
pub(super) fn check_network_overlay(
    spec: &NetworkSpec,
    path: &FieldPath,
    found: &mut Found,
) -> (Option<u32>, Option<Encap>) {
    let vni = spec.vni.and_then(|v| match u32::try_from(v) {
        Ok(n) if (1..=MAX_VNI).contains(&n) => Some(n),
        _ => {
            found.push((path.key("vni"), ErrorKind::InvalidVni(v)));
            None
        }
    });
    let encap = spec.encap.as_deref().and_then(|e| {
        let parsed = Encap::from_name(e);
        if parsed.is_none() {
            found.push((path.key("encap"), ErrorKind::InvalidEncap(e.to_string())));
        }
        parsed
    });
    (vni, encap)
}

/// The effective (encapsulation, VNI) pairs of `networks` are unique. `declared` maps a
/// declared network's name to its index in the spec's `networks` (the error's path;
/// networks only implied by ports are reported at `networks`).
pub(super) fn check_vnis_unique(
    networks: &[Network],
    declared: &HashMap<&str, usize>,
    root: &FieldPath,
    found: &mut Found,
) {
    let mut seen: HashMap<(Encap, u32), &str> = HashMap::new();
    for n in networks {
        let key = (n.effective_encap(), n.effective_vni());
        match seen.get(&key) {
            Some(other) => {
                let path = match declared.get(n.name.as_str()) {
                    Some(&i) => root.key("networks").index(i).key("vni"),
                    None => root.key("networks"),
                };
                found.push((
                    path,
                    ErrorKind::DuplicateVni {
                        vni: key.1,
                        encap: key.0.as_str(),
                        network: n.name.clone(),
                        other: other.to_string(),
                    },
                ));
            }
            None => {
                seen.insert(key, &n.name);
            }
        }
    }
}

/// The hosts: names valid and unique, VTEPs unicast addresses and unique, MACs unicast.
pub(super) fn check_hosts(specs: &[HostSpec], root: &FieldPath, found: &mut Found) -> Vec<Host> {
    let mut hosts = Vec::new();
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut vteps: HashMap<IpAddr, &str> = HashMap::new();
    for (i, h) in specs.iter().enumerate() {
        let path = root.key("hosts").index(i);
        let before = found.len();
        let name = match h.name.as_deref() {
            None => {
                found.push((path.key("name"), ErrorKind::Missing));
                None
            }
            Some(n) => match check_host(n) {
                Err(reason) => {
                    found.push((
                        path.key("name"),
                        ErrorKind::InvalidHost {
                            value: n.to_string(),
                            reason,
                        },
                    ));
                    None
                }
                Ok(()) => {
                    if let Some(&first) = names.get(n) {
                        found.push((
                            path.key("name"),
                            ErrorKind::DuplicateHostName {
                                name: n.to_string(),
                                first,
                            },
                        ));
                    } else {
                        names.insert(n, i);
                    }
                    Some(n)
                }
            },
        };
        let vtep = match h.vtep.as_deref() {
            None => {
                found.push((path.key("vtep"), ErrorKind::Missing));
                None
            }
            Some(v) => match parse_vtep(v) {
                Err(reason) => {
                    found.push((
                        path.key("vtep"),
                        ErrorKind::InvalidVtep {
                            value: v.to_string(),
                            reason,
                        },
                    ));
                    None
                }
                Ok(ip) => {
                    if let Some(other) = vteps.get(&ip) {
                        found.push((
                            path.key("vtep"),
                            ErrorKind::DuplicateVtep {
                                vtep: ip.to_string(),
                                other_host: other.to_string(),
                            },
                        ));
                    } else {
                        vteps.insert(ip, name.unwrap_or(""));
                    }
                    Some(ip)
                }
            },
        };
        let mac = h
            .mac
            .as_deref()
            .and_then(|m| match addresses::parse_port_mac(m) {
                Ok(mac) => Some(mac),
                Err(reason) => {
                    found.push((
                        path.key("mac"),
                        ErrorKind::InvalidMac {
                            value: m.to_string(),
                            reason,
                        },
                    ));
                    None
                }
            });
        if let (Some(name), Some(vtep), true) = (name, vtep, found.len() == before) {
            hosts.push(Host {
                name: name.to_string(),
                vtep,
                mac,
            });
        }
    }
    hosts
}

/// A VTEP address: a bare unicast IPv4 or IPv6 address, not unspecified.
pub fn parse_vtep(text: &str) -> Result<IpAddr, &'static str> {
    let ip: IpAddr = text
        .trim()
        .parse()
        .map_err(|_| "not an IPv4 or IPv6 address")?;
    if ip.is_unspecified() || ip.is_multicast() || ip == IpAddr::from([255, 255, 255, 255]) {
        return Err("a VTEP is a unicast address");
    }
    Ok(ip)
}

/// A port bound to another host (`host` set and not `local_host`) names no `backend`:
/// it is remote, never attached here. Refused rather than ignored: a backend on a remote
/// port is a mistake in a config or an API request (the port is on the wrong host, or
/// the backend in the wrong file), and ignoring it would leave an interface unattached
/// without a word. The shared store never gives a host a remote port's backend (its
/// agent model drops it), so a host's model from the store never trips this.
pub(super) fn check_remote_backend(
    p: &PortSpec,
    local: Option<&str>,
    path: &FieldPath,
    found: &mut Found,
) {
    if let (Some(local), Some(host), Some(_)) = (local, p.host.as_deref(), &p.backend) {
        if host != local {
            found.push((
                path.key("backend"),
                ErrorKind::RemotePortBackend {
                    host: host.to_string(),
                    local: local.to_string(),
                },
            ));
        }
    }
}

/// This switch's host name, if set: valid host-name syntax.
pub(super) fn check_local_host(name: &Option<String>, root: &FieldPath, found: &mut Found) {
    if let Some(n) = name {
        if let Err(reason) = check_host(n) {
            found.push((
                root.key("local_host"),
                ErrorKind::InvalidHost {
                    value: n.clone(),
                    reason,
                },
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::spec::{ModelSpec, NetworkSpec, PortSpec};
    use super::super::validate_model;
    use super::*;

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    fn host(name: &str, vtep: &str) -> HostSpec {
        HostSpec {
            name: s(name),
            vtep: s(vtep),
            mac: None,
        }
    }

    fn net(name: &str, vni: Option<i64>, encap: Option<&str>) -> NetworkSpec {
        NetworkSpec {
            name: s(name),
            vni,
            encap: encap.map(str::to_string),
        }
    }

    fn kinds(spec: &ModelSpec) -> Vec<(String, ErrorKind)> {
        match validate_model(spec) {
            Ok(_) => Vec::new(),
            Err(e) => e
                .into_vec()
                .into_iter()
                .map(|e| (e.path.to_string(), e.kind))
                .collect(),
        }
    }

    #[test]
    fn hosts_networks_and_remote_ports() {
        let spec = ModelSpec {
            hosts: vec![host("h1", "10.9.0.1"), host("h2", "fd00::2")],
            local_host: s("h1"),
            networks: vec![net("a", Some(5), None), net("b", None, Some("vxlan"))],
            ports: vec![
                PortSpec {
                    name: s("p1"),
                    network: s("a"),
                    mac: s("fa:16:3e:00:00:01"),
                    host: s("h1"),
                    ..Default::default()
                },
                PortSpec {
                    name: s("p2"),
                    network: s("a"),
                    mac: s("fa:16:3e:00:00:02"),
                    host: s("h2"),
                    ..Default::default()
                },
                PortSpec {
                    name: s("p3"),
                    network: s("a"),
                    mac: s("fa:16:3e:00:00:03"),
                    host: s("h9"),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let m = validate_model(&spec).unwrap();
        assert_eq!(m.hosts.len(), 2);
        assert_eq!(m.local_host.as_deref(), Some("h1"));
        let a = m.network("a").unwrap();
        assert_eq!((a.effective_vni(), a.effective_encap()), (5, Encap::Geneve));
        let b = m.network("b").unwrap();
        assert_eq!(b.effective_encap(), Encap::Vxlan);
        assert_eq!(b.effective_vni(), crate::policy::Network::vni_of_name("b"));
        let remote: Vec<bool> = m.ports.iter().map(|p| m.is_remote(p)).collect();
        // A port of an unknown host is remote (and unreachable), not an error.
        assert_eq!(remote, vec![false, true, true]);
        assert!(m.host("h9").is_none());
    }

    #[test]
    fn bad_overlay_fields_are_reported() {
        let spec = ModelSpec {
            hosts: vec![
                host("h1", "10.9.0.1"),
                host("h1", "10.9.0.1"),
                host("bad/name", "224.0.0.1"),
                HostSpec::default(),
            ],
            local_host: s("no space"),
            networks: vec![
                net("a", Some(0), None),
                net("b", Some(1 << 24), Some("gre")),
                net("c", Some(7), None),
                net("d", Some(7), None),
                net("e", Some(7), Some("vxlan")),
            ],
            ..Default::default()
        };
        let got = kinds(&spec);
        let paths: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "networks[0].vni",
                "networks[1].vni",
                "networks[1].encap",
                "hosts[1].name",
                "hosts[1].vtep",
                "hosts[2].name",
                "hosts[2].vtep",
                "hosts[3].name",
                "hosts[3].vtep",
                "local_host",
                "networks[3].vni",
            ],
            "{got:#?}"
        );
        assert!(matches!(
            &got[10].1,
            ErrorKind::DuplicateVni { vni: 7, network, other, .. } if network == "d" && other == "c"
        ));
    }

    #[test]
    fn a_remote_port_may_not_name_a_backend() {
        let port = |name: &str, host: Option<&str>| PortSpec {
            name: s(name),
            mac: s(&format!("fa:16:3e:00:00:0{}", &name[1..])),
            host: host.map(str::to_string),
            backend: Some(crate::policy::spec::BackendSpec::AfPacket { ifname: s(name) }),
            ..Default::default()
        };
        let mut spec = ModelSpec {
            hosts: vec![host("h1", "10.9.0.1"), host("h2", "10.9.0.2")],
            local_host: s("h1"),
            ports: vec![
                port("p1", Some("h1")),
                port("p2", None),
                port("p3", Some("h2")),
            ],
            ..Default::default()
        };
        let got = kinds(&spec);
        assert_eq!(got.len(), 1, "{got:#?}");
        assert_eq!(got[0].0, "ports[2].backend");
        let ErrorKind::RemotePortBackend { host, local } = &got[0].1 else {
            panic!("{got:#?}")
        };
        assert_eq!((host.as_str(), local.as_str()), ("h2", "h1"));
        assert!(got[0].1.to_string().contains("never attached here"));
        // Without a local host every port is local: no check.
        spec.local_host = None;
        assert!(validate_model(&spec).is_ok());
    }

    #[test]
    fn vnis_are_checked_only_with_an_overlay() {
        // A clash is accepted on a single host (no VNI is ever used there).
        let mut spec = ModelSpec {
            networks: vec![net("c", Some(7), None), net("d", Some(7), None)],
            ..Default::default()
        };
        assert!(validate_model(&spec).is_ok());
        spec.local_host = s("h1");
        assert!(validate_model(&spec).is_err());
    }

    #[test]
    fn derived_vnis_are_stable_and_in_range() {
        // Part of the wire contract between hosts: must never change (checked against an
        // independent FNV-1a in Python).
        assert_eq!(crate::policy::Network::vni_of_name("default"), 3_889_997);
        for name in ["", "a", "net1", "default", "x".repeat(255).as_str()] {
            let v = crate::policy::Network::vni_of_name(name);
            assert!((1..=MAX_VNI).contains(&v), "{name}: {v}");
        }
    }
}
