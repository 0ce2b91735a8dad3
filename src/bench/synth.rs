//! Synthetic models and keys for benches, tests and `sgswitch bench`.
//!
//! Everything is deterministic for a seed. The shapes:
//! * [`classbench_model`]: one port, `n` ClassBench-style ingress rules ([`super::classbench::generate`]).
//! * [`many_ports_model`]: `n_ports` ports, `n_groups` groups of `rules_per_group` rules;
//!   port `i` is bound to two groups, so most ports have their own group set; a quarter of
//!   the rules use a remote group, a tenth an address group.
//! * [`remote_group_model`]: port 0 has one ingress rule (tcp 443) whose remote group has
//!   `members` member ports (one IPv4 fixed IP each, every fourth also an allowed-address
//!   pair /30).
//!
//! Owns: the synthetic model shapes. May not touch: anything but the public `policy`
//! model types.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};

use super::classbench::{self, SplitMix64};
use crate::flow::{proto, FlowKey, FAMILY_V4};
use crate::policy::{
    AddressGroup, AllowedAddressPair, Direction, EtherType, Model, Network, Port, Remote, Rule,
    SecurityGroup,
};

/// A ClassBench-style model of `n_rules` rules on port [`classbench::PORT`] and a trace of
/// `n_trace` ingress keys for it.
pub fn classbench_model(n_rules: usize, n_trace: usize, seed: u64) -> (Model, Vec<FlowKey>) {
    let g = classbench::generate(n_rules, n_trace, seed);
    // The generator only writes rules that parse and convert.
    let rules = classbench::parse_rules(&g.rules).unwrap_or_default();
    let model = classbench::to_model(&rules).unwrap_or_default();
    let trace = classbench::parse_trace(&g.trace).unwrap_or_default();
    (model, trace)
}

fn port(name: String, ip: Ipv4Addr, groups: Vec<String>) -> Port {
    let o = ip.octets();
    Port {
        name,
        network: "synth".to_string(),
        mac: crate::wire::Mac([0x02, 0, o[0], o[1], o[2], o[3]]),
        fixed_ips: vec![IpAddr::V4(ip)],
        security_groups: groups,
        port_security: true,
        allowed_address_pairs: Vec::new(),
        backend: None,
        host: None,
    }
}

fn rule(dir: Direction, protocol: Option<u8>, ports: Option<(u16, u16)>, remote: Remote) -> Rule {
    Rule {
        direction: dir,
        ethertype: EtherType::IPv4,
        protocol,
        protocol_zero: false,
        port_range_min: ports.map(|p| p.0),
        port_range_max: ports.map(|p| p.1),
        remote,
        remote_ip_prefix_raw: None,
        description: String::new(),
    }
}

/// `n_ports` ports over `n_groups` groups of `rules_per_group` rules (see the module doc).
pub fn many_ports_model(
    n_ports: usize,
    n_groups: usize,
    rules_per_group: usize,
    seed: u64,
) -> Model {
    let mut rng = SplitMix64::new(seed);
    let n_groups = n_groups.max(1);
    let mut groups = Vec::with_capacity(n_groups);
    for gi in 0..n_groups {
        let mut rules = Vec::with_capacity(rules_per_group);
        for _ in 0..rules_per_group {
            let dir = if rng.pct(70) {
                Direction::Ingress
            } else {
                Direction::Egress
            };
            let (p, ports) = match rng.below(10) {
                0..=5 => {
                    let lo = rng.below(65535) as u16 + 1;
                    let hi = if rng.pct(60) {
                        lo
                    } else {
                        lo.saturating_add(rng.below(2000) as u16)
                    };
                    (Some(proto::TCP), Some((lo, hi)))
                }
                6..=7 => (Some(proto::UDP), Some((53, 53))),
                8 => (Some(proto::ICMP), None),
                _ => (None, None),
            };
            let remote = match rng.below(20) {
                0..=4 => Remote::Group(format!("sg{}", rng.below(n_groups as u64))),
                5..=6 => Remote::AddressGroup(format!("ag{}", rng.below(4))),
                7..=8 => Remote::Any,
                _ => {
                    let a = Ipv4Addr::from((10 << 24) | (rng.next_u64() as u32 & 0x00ff_ffff));
                    let len = 8 + rng.below(25) as u8;
                    Remote::Prefix(IpNet::V4(
                        Ipv4Net::new(a, len).map(|n| n.trunc()).unwrap_or_default(),
                    ))
                }
            };
            rules.push(rule(dir, p, ports, remote));
        }
        groups.push(SecurityGroup {
            name: format!("sg{gi}"),
            description: String::new(),
            stateful: true,
            rules,
        });
    }
    let address_groups = (0..4)
        .map(|i| AddressGroup {
            name: format!("ag{i}"),
            description: String::new(),
            addresses: (0..8)
                .map(|_| {
                    let a = Ipv4Addr::from(rng.next_u64() as u32);
                    IpNet::V4(Ipv4Net::new(a, 24).map(|n| n.trunc()).unwrap_or_default())
                })
                .collect(),
        })
        .collect();
    let ports = (0..n_ports)
        .map(|i| {
            let ip = Ipv4Addr::from((10 << 24) | (i as u32 + 1));
            let a = i % n_groups;
            let b = (i * 7 + 3) % n_groups;
            let mut p = port(
                format!("p{i}"),
                ip,
                vec![format!("sg{a}"), format!("sg{b}")],
            );
            p.allowed_address_pairs.push(AllowedAddressPair {
                ip_address: IpNet::V4(
                    Ipv4Net::new(Ipv4Addr::from((172 << 24) | ((i as u32) << 8)), 24)
                        .unwrap_or_default(),
                ),
                mac_address: None,
            });
            p
        })
        .collect();
    Model {
        security_groups: groups,
        address_groups,
        ports,
        networks: vec![Network {
            name: "synth".to_string(),
            ..Network::default()
        }],
        ..Model::default()
    }
}

/// Member address `i` of [`remote_group_model`].
pub fn member_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::from((100 << 24) | ((i as u32) * 8))
}

/// Port 0 with one ingress tcp/443 rule whose remote group has `members` members.
pub fn remote_group_model(members: usize) -> Model {
    let mut ports = vec![port(
        "target".to_string(),
        Ipv4Addr::new(192, 168, 0, 1),
        vec!["target".to_string()],
    )];
    for i in 0..members {
        let mut p = port(format!("m{i}"), member_ip(i), vec!["members".to_string()]);
        if i % 4 == 0 {
            p.allowed_address_pairs.push(AllowedAddressPair {
                ip_address: IpNet::V4(
                    Ipv4Net::new(Ipv4Addr::from(u32::from(member_ip(i)) + 4), 30)
                        .unwrap_or_default(),
                ),
                mac_address: None,
            });
        }
        ports.push(p);
    }
    Model {
        security_groups: vec![
            SecurityGroup {
                name: "target".to_string(),
                description: String::new(),
                stateful: true,
                rules: vec![rule(
                    Direction::Ingress,
                    Some(proto::TCP),
                    Some((443, 443)),
                    Remote::Group("members".to_string()),
                )],
            },
            SecurityGroup {
                name: "members".to_string(),
                description: String::new(),
                stateful: true,
                rules: Vec::new(),
            },
        ],
        ports,
        networks: vec![Network {
            name: "synth".to_string(),
            ..Network::default()
        }],
        ..Model::default()
    }
}

/// `n` ingress tcp/443 keys towards [`remote_group_model`]'s port: sources alternate between
/// member addresses (allowed) and addresses between members (denied).
pub fn remote_group_keys(members: usize, n: usize, seed: u64) -> Vec<FlowKey> {
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|j| {
            let i = rng.below(members.max(1) as u64) as usize;
            let base = u32::from(member_ip(i));
            let src = if j.is_multiple_of(2) {
                base
            } else {
                base + 1 + u32::from(!i.is_multiple_of(4)) * 2
            };
            FlowKey {
                src: FlowKey::map_v4(src.to_be_bytes()),
                dst: FlowKey::map_v4([192, 168, 0, 1]),
                sport: 40000,
                dport: 443,
                proto: proto::TCP,
                family: FAMILY_V4,
                _pad: [0; 2],
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classifier::{Classifier, CompiledPolicy, LinearPolicy};

    #[test]
    fn remote_group_keys_alternate_allowed_and_denied() {
        let m = remote_group_model(100);
        let c = CompiledPolicy::compile(&m, 1);
        let l = LinearPolicy::new(&m, 1);
        for (j, k) in remote_group_keys(100, 200, 1).iter().enumerate() {
            assert_eq!(
                c.allows(0, Direction::Ingress, k),
                j % 2 == 0,
                "{}",
                k.src_ip()
            );
            assert_eq!(l.allows(0, Direction::Ingress, k), j % 2 == 0);
        }
    }

    #[test]
    fn many_ports_model_shapes() {
        let m = many_ports_model(20, 20, 10, 1);
        let c = CompiledPolicy::compile(&m, 1);
        assert_eq!(c.stats().ports, 20);
        assert!(c.stats().distinct_group_sets >= 10);
        let total: usize = (0..20)
            .map(|p| c.rule_count(p, Direction::Ingress) + c.rule_count(p, Direction::Egress))
            .sum();
        // Two groups of 10 rules per port (the same group twice for some ports).
        assert!((200..=400).contains(&total), "{total}");
    }
}
