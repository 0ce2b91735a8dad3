//! The linear oracle: every rule of every group of the port, scanned in model order
//! (groups by their index in `Model::security_groups`, then rules by index), so that the
//! first match is the rule [`Classifier::admitting_rule`] names.
//!
//! This is the matching semantics of the module doc written as plainly as possible, with no
//! precomputation except resolving remote groups and address groups to their CIDR lists
//! once (shared through `Arc`, so a large remote group referenced by many rules is stored
//! once). It exists to check [`super::CompiledPolicy`] against, and as a bench baseline;
//! its cost is O(rules × remote CIDRs) per lookup.
//!
//! Owns: [`LinearPolicy`] and its resolved remote sets. May not touch: the packet path
//! (nothing in `pipeline` or `runtime` uses it: it is an oracle for tests and a baseline for
//! the benches and `sgswitch bench`), the compiled structures (`super::compiled`), connection state or ports. Uses
//! `flow` (keys, protocol numbers, families) and `policy` (the model it reads), and
//! [`Classifier`] from `super`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use super::{groups_in_model_order, Classifier};
use crate::flow::{proto, FlowKey, FAMILY_V4, FAMILY_V6};
use crate::policy::{Direction, EtherType, Model, Remote, RuleRef};

/// A rule's remote, resolved.
#[derive(Clone, Debug)]
enum LinRemote {
    Any,
    Nets(Arc<Vec<IpNet>>),
}

#[derive(Clone, Debug)]
struct LinRule {
    /// Where the rule is in the model.
    at: RuleRef,
    direction: Direction,
    ethertype: EtherType,
    protocol: Option<u8>,
    min: Option<u16>,
    max: Option<u16>,
    remote: LinRemote,
}

#[derive(Clone, Debug)]
struct LinPort {
    port_security: bool,
    stateful: bool,
    rules: Vec<LinRule>,
}

/// The per-rule scan (see the module doc).
#[derive(Clone, Debug)]
pub struct LinearPolicy {
    epoch: u64,
    ports: Vec<LinPort>,
}

impl LinearPolicy {
    /// Resolve the model's ports, groups and remotes.
    pub fn new(model: &Model, epoch: u64) -> LinearPolicy {
        let mut members: HashMap<&str, Arc<Vec<IpNet>>> = HashMap::new();
        for g in &model.security_groups {
            let mut nets = Vec::new();
            for p in model
                .ports
                .iter()
                .filter(|p| p.security_groups.contains(&g.name))
            {
                for ip in &p.fixed_ips {
                    nets.push(IpNet::from(*ip));
                }
                for aap in &p.allowed_address_pairs {
                    nets.push(aap.ip_address);
                }
            }
            if let Some(remote) = model.remote_members.get(&g.name) {
                nets.extend_from_slice(remote);
            }
            members.insert(g.name.as_str(), Arc::new(nets));
        }
        let addr_groups: HashMap<&str, Arc<Vec<IpNet>>> = model
            .address_groups
            .iter()
            .map(|a| (a.name.as_str(), Arc::new(a.addresses.clone())))
            .collect();
        let empty = Arc::new(Vec::new());

        let ports = model
            .ports
            .iter()
            .map(|p| {
                let mut names: Vec<&str> = p.security_groups.iter().map(String::as_str).collect();
                names.sort_unstable();
                names.dedup();
                let groups = groups_in_model_order(model, &names);
                let stateful = groups.is_empty() || groups.iter().any(|(_, g)| g.stateful);
                let mut rules = Vec::new();
                for &(gi, g) in &groups {
                    for (ri, r) in g.rules.iter().enumerate() {
                        let remote = match &r.remote {
                            Remote::Any => LinRemote::Any,
                            Remote::Prefix(n) => LinRemote::Nets(Arc::new(vec![*n])),
                            Remote::Group(name) => LinRemote::Nets(
                                members.get(name.as_str()).unwrap_or(&empty).clone(),
                            ),
                            Remote::AddressGroup(name) => LinRemote::Nets(
                                addr_groups.get(name.as_str()).unwrap_or(&empty).clone(),
                            ),
                        };
                        rules.push(LinRule {
                            at: RuleRef {
                                group: gi as u32,
                                rule: ri as u32,
                            },
                            direction: r.direction,
                            ethertype: r.ethertype,
                            protocol: r.protocol,
                            min: r.port_range_min,
                            max: r.port_range_max,
                            remote,
                        });
                    }
                }
                LinPort {
                    port_security: p.port_security,
                    stateful,
                    rules,
                }
            })
            .collect();
        LinearPolicy { epoch, ports }
    }
}

fn rule_matches(r: &LinRule, dir: Direction, key: &FlowKey) -> bool {
    if r.direction != dir {
        return false;
    }
    let family_ok = match r.ethertype {
        EtherType::IPv4 => key.family == FAMILY_V4,
        EtherType::IPv6 => key.family == FAMILY_V6,
    };
    if !family_ok {
        return false;
    }
    if let Some(p) = r.protocol {
        if p != key.proto {
            return false;
        }
        if proto::has_ports(p) {
            let (lo, hi) = match (r.min, r.max) {
                (None, None) => (0, u16::MAX),
                (Some(a), Some(b)) => (a, b),
                (Some(a), None) | (None, Some(a)) => (a, a),
            };
            if key.dport < lo || key.dport > hi {
                return false;
            }
        } else if key.is_icmp() {
            if let Some(t) = r.min {
                if t != u16::from(key.icmp_type()) {
                    return false;
                }
                if let Some(c) = r.max {
                    if c != u16::from(key.icmp_code()) {
                        return false;
                    }
                }
            }
        }
    }
    let remote_ip: IpAddr = match dir {
        Direction::Ingress => key.src_ip(),
        Direction::Egress => key.dst_ip(),
    };
    match &r.remote {
        LinRemote::Any => true,
        LinRemote::Nets(nets) => nets.iter().any(|n| n.contains(&remote_ip)),
    }
}

impl Classifier for LinearPolicy {
    fn epoch(&self) -> u64 {
        self.epoch
    }

    fn allows(&self, port: usize, dir: Direction, key: &FlowKey) -> bool {
        let Some(p) = self.ports.get(port) else {
            return false;
        };
        if !p.port_security {
            return true;
        }
        p.rules.iter().any(|r| rule_matches(r, dir, key))
    }

    fn admitting_rule(&self, port: usize, dir: Direction, key: &FlowKey) -> Option<RuleRef> {
        let p = self.ports.get(port).filter(|p| p.port_security)?;
        p.rules
            .iter()
            .find(|r| rule_matches(r, dir, key))
            .map(|r| r.at)
    }

    fn is_stateful(&self, port: usize) -> bool {
        self.ports
            .get(port)
            .is_none_or(|p| p.stateful || !p.port_security)
    }

    fn rule_count(&self, port: usize, dir: Direction) -> usize {
        self.ports
            .get(port)
            .filter(|p| p.port_security)
            .map_or(0, |p| p.rules.iter().filter(|r| r.direction == dir).count())
    }

    fn port_security(&self, port: usize) -> bool {
        self.ports.get(port).is_none_or(|p| p.port_security)
    }
}
