//! Words for what the pipeline decided: a rule in Neutron's words, the identity of a rule
//! (group name and id, rule index and id), what a packet is as a rule would see it, and
//! why a drop happened, in one sentence.
//!
//! Owns: these sentences (`sgswitch trace`, the replay's columns and capture comments, the
//! live API all print them). May not touch: the pipeline's decision (it only reads a
//! [`DropReason`] and the frame's metadata), the store (ids come in as an optional
//! [`Meta`]).

use serde::Serialize;

use crate::flow::{proto, DropReason, FlowKey, PacketMeta, FAMILY_V4};
use crate::pipeline::Dataplane;
use crate::policy::protocol::{has_ports, is_icmp, protocol_display};
use crate::policy::{Direction, Model, Remote, Rule, RuleRef};

use super::super::store::state::Meta;

/// A rule in Neutron's words: `ingress IPv4 tcp 22 from 10.0.0.0/24`, `egress IPv6 any to
/// any`, `ingress IPv4 icmp type 8 from group web`, `ingress IPv4 udp 8000-8080 from
/// address-group office`.
pub fn rule_words(r: &Rule) -> String {
    let mut s = format!(
        "{} {} {}",
        r.direction.as_str(),
        r.ethertype.as_str(),
        protocol_display(r.neutron_protocol())
    );
    match (r.protocol, r.port_range_min, r.port_range_max) {
        (Some(p), Some(t), c) if is_icmp(p) => {
            s.push_str(&format!(" type {t}"));
            if let Some(c) = c {
                s.push_str(&format!(" code {c}"));
            }
        }
        (Some(p), Some(lo), hi) if has_ports(p) => match hi {
            Some(hi) if hi != lo => s.push_str(&format!(" {lo}-{hi}")),
            _ => s.push_str(&format!(" {lo}")),
        },
        _ => {}
    }
    s.push_str(match r.direction {
        Direction::Ingress => " from ",
        Direction::Egress => " to ",
    });
    match &r.remote {
        Remote::Any => s.push_str("any"),
        Remote::Prefix(p) => match &r.remote_ip_prefix_raw {
            Some(raw) => s.push_str(raw),
            None => s.push_str(&p.to_string()),
        },
        Remote::Group(g) => s.push_str(&format!("group {g}")),
        Remote::AddressGroup(g) => s.push_str(&format!("address-group {g}")),
    }
    s
}

/// A rule named for people and tools: group name and id, rule index and id, its words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleNote {
    pub group: String,
    /// The group's Neutron id (known from a running switch's store, not from a file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// Position of the rule in its group (0-based, model order).
    pub rule: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    /// The rule in Neutron's words.
    pub text: String,
}

impl RuleNote {
    /// The note of rule `r` of `model` (ids from `meta` when given and aligned).
    pub fn of(model: &Model, meta: Option<&Meta>, r: RuleRef) -> RuleNote {
        let g = model.security_groups.get(r.group as usize);
        let gm = meta.and_then(|m| m.groups.get(r.group as usize));
        RuleNote {
            group: g.map_or_else(|| format!("#{}", r.group), |g| g.name.clone()),
            group_id: gm.map(|m| m.obj.id.to_string()),
            rule: r.rule,
            rule_id: gm
                .and_then(|m| m.rules.get(r.rule as usize))
                .map(|o| o.id.to_string()),
            text: g
                .and_then(|g| g.rules.get(r.rule as usize))
                .map_or_else(|| "(no such rule)".to_string(), rule_words),
        }
    }

    /// `web#1`: group name and rule index.
    pub fn label(&self) -> String {
        format!("{}#{}", self.group, self.rule)
    }
}

impl std::fmt::Display for RuleNote {
    /// `group web rule 1 (ingress IPv4 tcp 22 from any)`, with ids when known.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "group {}", self.group)?;
        if let Some(id) = &self.group_id {
            write!(f, " ({id})")?;
        }
        write!(f, " rule {}", self.rule)?;
        if let Some(id) = &self.rule_id {
            write!(f, " ({id})")?;
        }
        write!(f, ": {}", self.text)
    }
}

/// What a packet is, as a rule sees it: `tcp 22`, `udp 53`, `icmp type 8 code 0`,
/// `IPv6 gre` (the family is named for IPv6 only).
pub fn key_words(k: &FlowKey) -> String {
    let fam = if k.family == FAMILY_V4 { "" } else { "IPv6 " };
    let p = match crate::flow::proto_name(k.proto) {
        Some(n) => n.to_string(),
        None => format!("protocol {}", k.proto),
    };
    if k.is_icmp() {
        format!("{fam}{p} type {} code {}", k.icmp_type(), k.icmp_code())
    } else if proto::has_ports(k.proto) && k.dport != 0 {
        format!("{fam}{p} {}", k.dport)
    } else {
        format!("{fam}{p}")
    }
}

fn groups_of(model: &Model, port: &str) -> String {
    match model.port(port) {
        Some(p) if p.security_groups.is_empty() => "no security group".into(),
        Some(p) if p.security_groups.len() == 1 => format!("group {}", p.security_groups[0]),
        Some(p) => format!("groups {}", p.security_groups.join(", ")),
        None => String::new(),
    }
}

/// Why `reason` happened at port `port` (dataplane index) to the frame `meta` (`None`:
/// it did not parse; `parse_error` says why), in one sentence without the reason's name.
pub fn why(
    model: &Model,
    dp: &Dataplane,
    port: u16,
    reason: DropReason,
    meta: Option<&PacketMeta>,
    parse_error: Option<&str>,
) -> String {
    let entry = dp.ports.get(port as usize);
    let name = entry.map_or("?", |p| p.name.as_str());
    let Some(m) = meta else {
        return match parse_error {
            Some(e) => format!("the frame does not parse: {e}"),
            None => reason.describe().to_string(),
        };
    };
    let k = &m.key;
    match reason {
        DropReason::SpoofedMac => format!(
            "source MAC {} is not {name}'s ({}) nor an allowed-address-pair MAC",
            m.eth_src,
            entry.map_or_else(String::new, |p| p.mac.to_string())
        ),
        DropReason::SpoofedIp if k.is_icmp() && k.icmp_type() == 136 => format!(
            "the neighbor advertisement's target {} is not an address of {name}",
            std::net::Ipv6Addr::from(m.nd_target)
        ),
        DropReason::SpoofedIp => format!(
            "source IP {} is not allowed for MAC {} on {name}",
            k.src_ip(),
            m.eth_src
        ),
        DropReason::ArpDenied if m.arp.sha != m.eth_src => format!(
            "ARP sender MAC {} is not the frame's source MAC {}",
            m.arp.sha, m.eth_src
        ),
        DropReason::ArpDenied if !(m.arp.op == 1 || m.arp.op == 2) => {
            format!("ARP operation {} is neither request nor reply", m.arp.op)
        }
        DropReason::ArpDenied => format!(
            "ARP sender IP {} is not allowed for MAC {} on {name}",
            std::net::Ipv4Addr::from(m.arp.spa),
            m.eth_src
        ),
        DropReason::DhcpServer => {
            format!(
                "{name} sent a DHCP server message (udp {} > {}); instances may not serve DHCP",
                k.sport, k.dport
            )
        }
        DropReason::RouterAdvertisement => {
            format!("{name} sent an ICMPv6 router advertisement; instances may not")
        }
        DropReason::EthertypeDenied => format!(
            "ethertype {:#06x} is not in permitted_ethertypes",
            m.ethertype
        ),
        DropReason::EgressDenied => format!(
            "no egress rule of {name} ({}) allows {} to {}",
            groups_of(model, name),
            key_words(k),
            k.dst_ip()
        ),
        DropReason::IngressDenied => format!(
            "no ingress rule of {name} ({}) allows {} from {}",
            groups_of(model, name),
            key_words(k),
            k.src_ip()
        ),
        DropReason::InvalidState => invalid_words(m),
        DropReason::ConnectionCut => {
            "its connection was admitted by an earlier policy that no longer allows it".into()
        }
        DropReason::DstMacMismatch => {
            format!(
                "destination MAC {} is not {name}'s (the frame was flooded)",
                m.eth_dst
            )
        }
        DropReason::NoDestination => format!(
            "no other port in network '{}' to deliver to",
            entry
                .and_then(|p| dp.networks.get(p.network as usize))
                .map_or("?", |s| s.as_str())
        ),
        DropReason::Hairpin => format!("destination MAC {} is {name}'s own", m.eth_dst),
        other => other.describe().to_string(),
    }
}

/// Why conntrack found a packet invalid, from what the packet is.
fn invalid_words(m: &PacketMeta) -> String {
    let k = &m.key;
    if k.proto == proto::TCP {
        let f = crate::flow::tcp_flags_str(m.tcp_flags);
        format!("TCP flags {f} neither start a connection nor fit a tracked one")
    } else if k.is_icmp() {
        let t = k.icmp_type();
        let name = crate::flow::icmp_name(k.family, t).unwrap_or("message");
        if m.icmp_inner.family != 0 {
            format!("an ICMP {name} about no tracked connection")
        } else {
            format!(
                "an ICMP {name} (type {t}) neither starts a connection nor answers a tracked one"
            )
        }
    } else {
        "invalid for connection tracking".into()
    }
}

/// These words for `sgswitch replay` (the runtime asks through its [`Narrator`]).
///
/// [`Narrator`]: crate::runtime::replay::Narrator
#[derive(Clone, Copy, Debug, Default)]
pub struct ReplayWords;

impl crate::runtime::replay::Narrator for ReplayWords {
    fn rule(&self, model: &Model, r: RuleRef) -> String {
        model
            .security_groups
            .get(r.group as usize)
            .and_then(|g| g.rules.get(r.rule as usize))
            .map_or_else(|| "(no such rule)".to_string(), rule_words)
    }

    fn why(
        &self,
        model: &Model,
        dp: &Dataplane,
        port: u16,
        reason: DropReason,
        frame: &[u8],
    ) -> String {
        match crate::flow::extract(frame) {
            Ok(m) => why(model, dp, port, reason, Some(&m), None),
            Err(e) => why(model, dp, port, reason, None, Some(&e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> crate::control::config::Config {
        crate::control::config::parse_str(
            r#"
[[address_groups]]
name = "office"
addresses = ["198.51.100.0/24"]
[[security_groups]]
name = "web"
rules = [
  { direction = "ingress", ethertype = "IPv4", protocol = "tcp", port_range_min = 22, port_range_max = 22, remote_ip_prefix = "10.0.0.0/24" },
  { direction = "egress", ethertype = "IPv6" },
  { direction = "ingress", protocol = "icmp", port_range_min = 8, remote_group = "web" },
  { direction = "ingress", protocol = "udp", port_range_min = 8000, port_range_max = 8080, remote_address_group = "office" },
  { direction = "ingress", protocol = "icmp", port_range_min = 3, port_range_max = 4, remote_ip_prefix = "10.0.0.7" },
  { direction = "ingress", ethertype = "IPv6", protocol = "icmp" },
]
"#,
            "t.toml",
        )
        .unwrap()
    }

    fn model() -> Model {
        config().model
    }

    #[test]
    fn rules_in_neutron_words() {
        let m = model();
        let words: Vec<String> = m
            .group("web")
            .unwrap()
            .rules
            .iter()
            .map(rule_words)
            .collect();
        assert_eq!(
            words,
            [
                "ingress IPv4 tcp 22 from 10.0.0.0/24",
                "egress IPv6 any to any",
                "ingress IPv4 icmp type 8 from group web",
                "ingress IPv4 udp 8000-8080 from address-group office",
                "ingress IPv4 icmp type 3 code 4 from 10.0.0.7/32",
                "ingress IPv6 ipv6-icmp from any",
            ]
        );
    }

    #[test]
    fn notes_name_group_and_rule_with_or_without_ids() {
        let m = model();
        let g = m
            .security_groups
            .iter()
            .position(|g| g.name == "web")
            .unwrap() as u32;
        let n = RuleNote::of(&m, None, RuleRef { group: g, rule: 0 });
        assert_eq!(n.label(), "web#0");
        assert_eq!(
            n.to_string(),
            "group web rule 0: ingress IPv4 tcp 22 from 10.0.0.0/24"
        );
        let store = crate::control::store::Store::open(None, &config()).unwrap();
        let state = store.snapshot();
        let n = RuleNote::of(&m, Some(&state.meta), RuleRef { group: g, rule: 0 });
        let gid = state.meta.groups[g as usize].obj.id.to_string();
        assert_eq!(n.group_id.as_deref(), Some(gid.as_str()));
        assert!(n
            .to_string()
            .contains(&format!("group web ({gid}) rule 0 (")));
        let n = RuleNote::of(&m, None, RuleRef { group: 99, rule: 3 });
        assert_eq!(
            (n.group.as_str(), n.text.as_str()),
            ("#99", "(no such rule)")
        );
    }
}
