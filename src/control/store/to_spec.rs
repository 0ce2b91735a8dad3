//! The spec that validates back to a model: [`model_to_spec`], [`port_to_spec`],
//! [`log_to_spec`]. The
//! store uses it to re-validate a candidate as a whole and to persist the model (the
//! state file holds the spec, re-validated on load).
//!
//! Owns: the model → spec direction (the spec → model direction is `policy::validate`).
//! May not touch: the state or its metadata.
//!
//! Depends on: `policy` (model and spec types, the MAC text form); nothing else in the
//! crate.

use crate::policy::spec::{
    AddressGroupSpec, AllowedAddressPairSpec, BackendSpec, HostSpec, LogSpec, ModelSpec,
    NetworkSpec, PortSpec, RuleSpec, SecurityGroupSpec,
};
use crate::policy::{Backend, Model, NetworkLog, Port, Remote, Rule, SecurityGroup};

/// The spec that validates back to `port`.
pub fn port_to_spec(p: &Port) -> PortSpec {
    PortSpec {
        name: Some(p.name.clone()),
        network: Some(p.network.clone()),
        mac: Some(p.mac.to_string()),
        fixed_ips: p.fixed_ips.iter().map(|ip| ip.to_string()).collect(),
        security_groups: Some(p.security_groups.clone()),
        port_security: Some(p.port_security),
        allowed_address_pairs: p
            .allowed_address_pairs
            .iter()
            .map(|a| AllowedAddressPairSpec {
                ip_address: Some(a.ip_address.to_string()),
                mac_address: a.mac_address.map(|m| m.to_string()),
            })
            .collect(),
        backend: p.backend.as_ref().map(|b| match b {
            Backend::Tap {
                ifname,
                netns,
                vnet_hdr,
                queues,
                ..
            } => BackendSpec::Tap {
                ifname: Some(ifname.clone()),
                netns: netns.clone(),
                vnet_hdr: Some(*vnet_hdr),
                queues: (*queues > 1).then_some(*queues),
            },
            Backend::AfXdp {
                ifname,
                queue,
                mode,
            } => BackendSpec::AfXdp {
                ifname: Some(ifname.clone()),
                queue: Some(*queue),
                mode: mode.map(|m| m.as_str().to_owned()),
            },
            Backend::AfPacket { ifname } => BackendSpec::AfPacket {
                ifname: Some(ifname.clone()),
            },
        }),
        host: p.host.clone(),
    }
}

/// A rule's remote as its three Neutron fields: the prefix as written, the remote
/// group's name, the remote address group's name (at most one is set).
pub fn rule_remote(r: &Rule) -> (Option<String>, Option<&str>, Option<&str>) {
    match &r.remote {
        Remote::Any => (None, None, None),
        Remote::Prefix(net) => (
            Some(
                r.remote_ip_prefix_raw
                    .clone()
                    .unwrap_or_else(|| net.to_string()),
            ),
            None,
            None,
        ),
        Remote::Group(n) => (None, Some(n), None),
        Remote::AddressGroup(n) => (None, None, Some(n)),
    }
}

fn group_to_spec(g: &SecurityGroup) -> SecurityGroupSpec {
    SecurityGroupSpec {
        name: Some(g.name.clone()),
        description: Some(g.description.clone()),
        stateful: Some(g.stateful),
        rules: Some(
            g.rules
                .iter()
                .map(|r| {
                    let (prefix, group, agroup) = rule_remote(r);
                    RuleSpec {
                        direction: Some(
                            match r.direction {
                                crate::policy::Direction::Ingress => "ingress",
                                crate::policy::Direction::Egress => "egress",
                            }
                            .to_string(),
                        ),
                        ethertype: Some(
                            match r.ethertype {
                                crate::policy::EtherType::IPv4 => "IPv4",
                                crate::policy::EtherType::IPv6 => "IPv6",
                            }
                            .to_string(),
                        ),
                        protocol: r.neutron_protocol().map(|p| (p as i64).into()),
                        port_range_min: r.port_range_min.map(|p| (p as i64).into()),
                        port_range_max: r.port_range_max.map(|p| (p as i64).into()),
                        remote_ip_prefix: prefix,
                        remote_group: group.map(str::to_owned),
                        remote_address_group: agroup.map(str::to_owned),
                        description: Some(r.description.clone()),
                    }
                })
                .collect(),
        ),
    }
}

/// The spec that validates back to `log`.
pub fn log_to_spec(l: &NetworkLog) -> LogSpec {
    LogSpec {
        name: Some(l.name.clone()),
        description: Some(l.description.clone()),
        resource: l.resource.clone(),
        target: l.target.clone(),
        event: Some(l.event.as_str().to_owned()),
        enabled: Some(l.enabled),
    }
}

/// The spec that validates back to `model`.
pub fn model_to_spec(model: &Model) -> ModelSpec {
    ModelSpec {
        security_groups: model.security_groups.iter().map(group_to_spec).collect(),
        address_groups: model
            .address_groups
            .iter()
            .map(|a| AddressGroupSpec {
                name: Some(a.name.clone()),
                description: Some(a.description.clone()),
                addresses: a.addresses.iter().map(|n| n.to_string()).collect(),
            })
            .collect(),
        ports: model.ports.iter().map(port_to_spec).collect(),
        networks: model
            .networks
            .iter()
            .map(|n| NetworkSpec {
                name: Some(n.name.clone()),
                vni: n.vni.map(i64::from),
                encap: n.encap.map(|e| e.as_str().to_string()),
            })
            .collect(),
        permitted_ethertypes: model.permitted_ethertypes.clone(),
        conntrack: model.conntrack.clone(),
        logs: model.logs.iter().map(log_to_spec).collect(),
        hosts: model
            .hosts
            .iter()
            .map(|h| HostSpec {
                name: Some(h.name.clone()),
                vtep: Some(h.vtep.to_string()),
                mac: h.mac.map(|m| m.to_string()),
            })
            .collect(),
        local_host: model.local_host.clone(),
    }
}
