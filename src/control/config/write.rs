//! The export: a [`Config`] written back as TOML in the format of [`super`], every
//! default explicit (the `default` group, template rules, `security_groups`,
//! `port_security`), so that `parse_str(&to_toml_string(&c), ..) == Ok(c)`.
//!
//! Owns: the layout of an exported file. May not touch: reading or validation (the
//! round trip is checked by the tests here through [`super::parse_str`]).

use std::fmt::Write as _;

use crate::policy::protocol;
use crate::policy::validate::format_mac;
use crate::policy::{Backend, Direction, EtherType, Remote};

use super::{Config, CONNTRACK_KEYS};

/// A TOML string literal.
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn q_list<I: IntoIterator<Item = String>>(items: I) -> String {
    let v: Vec<String> = items.into_iter().map(|s| q(&s)).collect();
    format!("[{}]", v.join(", "))
}

/// Write a config back as TOML, every default explicit; `parse_str` of the result gives
/// back an equal [`Config`].
pub fn to_toml_string(config: &Config) -> String {
    let m = &config.model;
    let mut out = String::new();
    let _ = writeln!(out, "# sgswitch configuration");
    let _ = writeln!(out);
    let _ = writeln!(out, "[switch]");
    if config.switch.workers > 0 {
        let _ = writeln!(out, "workers = {}", config.switch.workers);
    }
    let _ = writeln!(out, "burst = {}", config.switch.burst);
    let _ = writeln!(out, "idle_backoff = {}", config.switch.idle_backoff);
    let _ = writeln!(out, "napi_defer_us = {}", config.switch.napi_defer_us);
    let _ = writeln!(
        out,
        "permitted_ethertypes = {}",
        q_list(m.permitted_ethertypes.iter().map(|e| format!("{e:#06x}")))
    );
    let _ = writeln!(out);
    let ct = &m.conntrack;
    let _ = writeln!(out, "[conntrack]");
    for &(key, field) in CONNTRACK_KEYS {
        let v: u64 = match field {
            "capacity" => ct.capacity as u64,
            "tcp_syn_timeout" => ct.tcp_syn_timeout,
            "tcp_established_timeout" => ct.tcp_established_timeout,
            "tcp_fin_timeout" => ct.tcp_fin_timeout,
            "tcp_close_timeout" => ct.tcp_close_timeout,
            "udp_timeout" => ct.udp_timeout,
            "udp_stream_timeout" => ct.udp_stream_timeout,
            "icmp_timeout" => ct.icmp_timeout,
            "other_timeout" => ct.other_timeout,
            "fragment_timeout" => ct.fragment_timeout,
            _ => ct.max_pending_fragments as u64,
        };
        let _ = writeln!(out, "{key} = {v}");
    }

    for n in &m.networks {
        let _ = writeln!(out, "\n[[networks]]\nname = {}", q(&n.name));
    }

    for g in &m.security_groups {
        let _ = writeln!(out, "\n[[security_groups]]");
        let _ = writeln!(out, "name = {}", q(&g.name));
        let _ = writeln!(out, "description = {}", q(&g.description));
        let _ = writeln!(out, "stateful = {}", g.stateful);
        if g.rules.is_empty() {
            let _ = writeln!(out, "rules = []");
        } else {
            let _ = writeln!(out, "rules = [");
            for r in &g.rules {
                let mut fields = vec![
                    format!(
                        "direction = {}",
                        q(match r.direction {
                            Direction::Ingress => "ingress",
                            Direction::Egress => "egress",
                        })
                    ),
                    format!(
                        "ethertype = {}",
                        q(match r.ethertype {
                            EtherType::IPv4 => "IPv4",
                            EtherType::IPv6 => "IPv6",
                        })
                    ),
                ];
                if let Some(p) = r.neutron_protocol() {
                    fields.push(match protocol::protocol_name(p) {
                        Some(name) => format!("protocol = {}", q(name)),
                        None => format!("protocol = {p}"),
                    });
                }
                if let Some(v) = r.port_range_min {
                    fields.push(format!("port_range_min = {v}"));
                }
                if let Some(v) = r.port_range_max {
                    fields.push(format!("port_range_max = {v}"));
                }
                match &r.remote {
                    Remote::Any => {}
                    Remote::Prefix(net) => {
                        let raw = r
                            .remote_ip_prefix_raw
                            .clone()
                            .unwrap_or_else(|| net.to_string());
                        fields.push(format!("remote_ip_prefix = {}", q(&raw)));
                    }
                    Remote::Group(name) => fields.push(format!("remote_group = {}", q(name))),
                    Remote::AddressGroup(name) => {
                        fields.push(format!("remote_address_group = {}", q(name)))
                    }
                }
                if !r.description.is_empty() {
                    fields.push(format!("description = {}", q(&r.description)));
                }
                let _ = writeln!(out, "  {{ {} }},", fields.join(", "));
            }
            let _ = writeln!(out, "]");
        }
    }

    for a in &m.address_groups {
        let _ = writeln!(out, "\n[[address_groups]]");
        let _ = writeln!(out, "name = {}", q(&a.name));
        if !a.description.is_empty() {
            let _ = writeln!(out, "description = {}", q(&a.description));
        }
        let _ = writeln!(
            out,
            "addresses = {}",
            q_list(a.addresses.iter().map(|n| n.to_string()))
        );
    }

    for p in &m.ports {
        let _ = writeln!(out, "\n[[ports]]");
        let _ = writeln!(out, "name = {}", q(&p.name));
        let _ = writeln!(out, "network = {}", q(&p.network));
        let _ = writeln!(out, "mac = {}", q(&format_mac(&p.mac)));
        let _ = writeln!(
            out,
            "fixed_ips = {}",
            q_list(p.fixed_ips.iter().map(|ip| ip.to_string()))
        );
        let _ = writeln!(
            out,
            "security_groups = {}",
            q_list(p.security_groups.iter().cloned())
        );
        let _ = writeln!(out, "port_security = {}", p.port_security);
        if !p.allowed_address_pairs.is_empty() {
            let pairs: Vec<String> = p
                .allowed_address_pairs
                .iter()
                .map(|a| match a.mac_address {
                    Some(mac) => format!(
                        "{{ ip_address = {}, mac_address = {} }}",
                        q(&a.ip_address.to_string()),
                        q(&format_mac(&mac))
                    ),
                    None => format!("{{ ip_address = {} }}", q(&a.ip_address.to_string())),
                })
                .collect();
            let _ = writeln!(out, "allowed_address_pairs = [{}]", pairs.join(", "));
        }
        if let Some(b) = &p.backend {
            let text = match b {
                Backend::Tap {
                    ifname,
                    netns,
                    vnet_hdr,
                } => {
                    let ns = netns
                        .as_ref()
                        .map(|n| format!(", netns = {}", q(n)))
                        .unwrap_or_default();
                    format!(
                        "{{ type = \"tap\", ifname = {}{ns}, vnet_hdr = {vnet_hdr} }}",
                        q(ifname)
                    )
                }
                Backend::AfXdp {
                    ifname,
                    queue,
                    mode,
                } => {
                    let mode = mode
                        .as_ref()
                        .map(|m| format!(", mode = {}", q(m)))
                        .unwrap_or_default();
                    format!(
                        "{{ type = \"afxdp\", ifname = {}, queue = {queue}{mode} }}",
                        q(ifname)
                    )
                }
                Backend::AfPacket { ifname } => {
                    format!("{{ type = \"afpacket\", ifname = {} }}", q(ifname))
                }
            };
            let _ = writeln!(out, "backend = {text}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::parse_str;
    use super::super::tests::lines;
    use super::super::SwitchSettings;
    use super::*;
    use crate::policy::{validate_model, Model};

    const EXAMPLE: &str = include_str!("../../../configs/example.toml");
    const QUICKSTART: &str = include_str!("../../../configs/quickstart.toml");

    fn round_trip(text: &str) {
        let c = parse_str(text, "in.toml").unwrap_or_else(|e| panic!("{e}"));
        let out = to_toml_string(&c);
        let back = parse_str(&out, "out.toml").unwrap_or_else(|e| panic!("{e}\n{out}"));
        assert_eq!(back, c, "round trip changed the config:\n{out}");
        assert_eq!(to_toml_string(&back), out, "export is not a fixed point");
    }

    #[test]
    fn shipped_configs_are_valid_and_round_trip() {
        round_trip(EXAMPLE);
        round_trip(QUICKSTART);
        let c = parse_str(EXAMPLE, "example.toml").unwrap();
        assert_eq!(c.switch.workers, 2);
        assert_eq!(c.model.permitted_ethertypes, vec![0x88cc, 0x8809]);
        assert!(c.model.group("stateless-dns").is_some_and(|g| !g.stateful));
        assert!(c
            .model
            .port("router-prod")
            .is_some_and(|p| !p.port_security));
    }

    #[test]
    fn round_trip_of_awkward_values() {
        round_trip(
            r#"
[switch]
workers = 3
burst = 1
idle_backoff = false
[conntrack]
capacity = 7
udp = 1
fragment = 3600
max_pending_fragments = 0
[[networks]]
name = "net \"quoted\""
[[security_groups]]
name = "g with spaces/ünïcode"
description = "line1\nline2 \\ \"q\" 'single'"
stateful = false
rules = []
[[security_groups]]
name = "x"
rules = [
  { direction = "egress", protocol = 200, description = "\t" },
  { direction = "ingress", ethertype = "IPv6", protocol = "icmp", port_range_min = 1 },
  { direction = "ingress", protocol = "tcp", port_range_min = 1, port_range_max = 65535, remote_ip_prefix = "10.9.8.7/8" },
  { direction = "ingress", protocol = "udp", port_range_min = 5, port_range_max = 6, remote_address_group = "a" },
  { direction = "egress", ethertype = "ipv6", remote_ip_prefix = "2001:db8::1" },
]
[[address_groups]]
name = "a"
description = "d"
addresses = []
[[ports]]
name = "p"
network = "net \"quoted\""
mac = "FA:16:3E:00:00:01"
security_groups = []
backend = { type = "afxdp", ifname = "eth0" }
[[ports]]
name = "q"
mac = "fa:16:3e:00:00:02"
port_security = false
backend = { type = "tap", ifname = "t", netns = "ns" }
"#,
        );
    }

    #[test]
    fn napi_defer_is_ranged_and_exported() {
        let e = lines("[switch]\nnapi_defer_us = 100001\n").join("\n");
        assert!(
            e.contains("t.toml:2: switch.napi_defer_us") && e.contains("100000"),
            "{e}"
        );
        let e = lines("[switch]\nnapi_defer_us = -1\n").join("\n");
        assert!(e.contains("switch.napi_defer_us"), "{e}");
        let c = parse_str("[switch]\nnapi_defer_us = 50\n", "t.toml").unwrap();
        assert_eq!(c.switch.napi_defer_us, 50);
        let text = to_toml_string(&c);
        assert!(text.contains("napi_defer_us = 50"), "{text}");
        assert_eq!(parse_str(&text, "x.toml").unwrap().switch, c.switch);
        // On by default; 0 (off) is kept through an export.
        let c = parse_str("", "t.toml").unwrap();
        assert_eq!(c.switch.napi_defer_us, crate::port::napi::DEFAULT_DEFER_US);
        let c = parse_str("[switch]\nnapi_defer_us = 0\n", "t.toml").unwrap();
        let text = to_toml_string(&c);
        assert!(text.contains("napi_defer_us = 0"), "{text}");
        assert_eq!(parse_str(&text, "x.toml").unwrap().switch.napi_defer_us, 0);
    }

    mod props {
        use super::*;
        use crate::policy::spec::{
            AddressGroupSpec, ModelSpec, PortSpec, RuleSpec, Scalar, SecurityGroupSpec,
        };
        use proptest::prelude::*;

        fn opt_str(choices: &'static [&'static str]) -> impl Strategy<Value = Option<String>> {
            prop::option::of(prop::sample::select(choices).prop_map(str::to_string))
        }

        fn rule_spec() -> impl Strategy<Value = RuleSpec> {
            let protocol = prop::option::of(prop_oneof![
                prop::sample::select(
                    &[
                        "tcp",
                        "udp",
                        "icmp",
                        "any",
                        "17",
                        "ipv6-icmp",
                        "sctp",
                        "gre",
                        "TCP"
                    ][..]
                )
                .prop_map(Scalar::from),
                prop::sample::select(&[0i64, 6, 47, 112, 200][..]).prop_map(Scalar::Int),
            ]);
            let port_pair = prop::sample::select(
                &[
                    (None, None),
                    (Some(80), Some(80)),
                    (Some(1), Some(65535)),
                    (Some(1000), Some(2000)),
                    (Some(8), Some(0)),
                    (Some(3), None),
                ][..],
            );
            let remote = prop::sample::select(
                &[
                    (None, None, None),
                    (Some("10.1.2.3/16"), None, None),
                    (Some("0.0.0.0/0"), None, None),
                    (Some("::/0"), None, None),
                    (Some("fd00::5/64"), None, None),
                    (Some("192.0.2.9"), None, None),
                    (None, Some("g0"), None),
                    (None, Some("default"), None),
                    (None, None, Some("a0")),
                ][..],
            );
            (
                opt_str(&["ingress", "egress"]),
                opt_str(&["IPv4", "IPv6", "ipv6"]),
                protocol,
                port_pair,
                remote,
                opt_str(&["", "d", "quote \" and \\ back"]),
            )
                .prop_map(
                    |(
                        direction,
                        ethertype,
                        protocol,
                        (min, max),
                        (prefix, group, ag),
                        description,
                    )| RuleSpec {
                        direction: direction.or(Some("ingress".into())),
                        ethertype,
                        protocol,
                        port_range_min: min.map(Scalar::Int),
                        port_range_max: max.map(Scalar::Int),
                        remote_ip_prefix: prefix.map(str::to_string),
                        remote_group: group.map(str::to_string),
                        remote_address_group: ag.map(str::to_string),
                        description,
                    },
                )
        }

        /// Validate, dropping offending rules until the model is valid.
        fn valid_model(mut spec: ModelSpec) -> Model {
            loop {
                match validate_model(&spec) {
                    Ok(m) => return m,
                    Err(e) => {
                        let mut drop: Vec<(usize, usize)> = e
                            .errors()
                            .iter()
                            .map(|e| {
                                let g = spec
                                    .security_groups
                                    .iter()
                                    .position(|g| g.name == e.group)
                                    .expect("only rule errors");
                                (g, e.rule.expect("only rule errors"))
                            })
                            .collect();
                        drop.sort_unstable();
                        drop.dedup();
                        for &(g, r) in drop.iter().rev() {
                            if let Some(rules) = spec.security_groups[g].rules.as_mut() {
                                rules.remove(r);
                            }
                        }
                    }
                }
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

            /// Random valid models (about 6 rules each on average) survive export + parse.
            #[test]
            fn export_round_trips(
                groups in prop::collection::vec(prop::option::of(prop::collection::vec(rule_spec(), 0..8)), 1..4),
                stateless in any::<bool>(),
                port_groups in prop::collection::vec((prop::option::of(prop::sample::subsequence(vec!["g0", "default"], 0..=2)), any::<bool>()), 0..3),
            ) {
                let mut spec = ModelSpec {
                    security_groups: groups
                        .into_iter()
                        .enumerate()
                        .map(|(i, rules)| SecurityGroupSpec {
                            name: Some(format!("g{i}")),
                            stateful: Some(!(stateless && i > 0)),
                            rules,
                            ..Default::default()
                        })
                        .collect(),
                    address_groups: vec![AddressGroupSpec {
                        name: Some("a0".into()),
                        addresses: vec!["198.51.100.0/24".into(), "2001:db8::/48".into()],
                        ..Default::default()
                    }],
                    ..Default::default()
                };
                for (i, (groups, psec)) in port_groups.into_iter().enumerate() {
                    spec.ports.push(PortSpec {
                        name: Some(format!("p{i}")),
                        mac: Some(format!("fa:16:3e:00:00:{i:02x}")),
                        fixed_ips: vec![format!("10.0.0.{}", i + 1)],
                        security_groups: if psec { groups.map(|g| g.into_iter().map(str::to_string).collect()) } else { None },
                        port_security: Some(psec),
                        ..Default::default()
                    });
                }
                let config = Config { model: valid_model(spec), switch: SwitchSettings::default() };
                let text = to_toml_string(&config);
                let back = parse_str(&text, "export.toml");
                prop_assert_eq!(back.as_ref().ok(), Some(&config), "{}", text);
            }
        }
    }
}
