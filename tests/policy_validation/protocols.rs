//! §3 items 10-13: protocol names, numbers, `any` and protocol 0, ICMP under IPv6, and the
//! IPv6-only protocols.

use super::*;

#[test]
fn item10_protocol_names_case_insensitive_numbers_and_any() {
    for name in [
        "ah", "dccp", "egp", "esp", "gre", "icmp", "igmp", "ipip", "ospf", "pgm", "rsvp", "sctp",
        "tcp", "udp", "udplite", "vrrp",
    ] {
        accept(proto(ingress(), name));
        accept(proto(ingress(), name.to_uppercase().as_str()));
    }
    for name in [
        "ipv6-encap",
        "ipv6-frag",
        "ipv6-icmp",
        "icmpv6",
        "ipv6-nonxt",
        "ipv6-opts",
        "ipv6-route",
    ] {
        accept(v6(proto(ingress(), name)));
    }
    assert_eq!(accept(proto(ingress(), "TCP")).protocol, Some(6));
    assert_eq!(accept(proto(ingress(), 132)).protocol, Some(132));
    assert_eq!(accept(proto(ingress(), "47")).protocol, Some(47));
    assert_eq!(accept(proto(ingress(), 255)).protocol, Some(255));
    assert_eq!(accept(proto(ingress(), "any")).protocol, None);
    assert_eq!(accept(proto(ingress(), "Any")).protocol, None);
    assert_eq!(accept(ingress()).protocol, None);

    for bad in [
        proto(ingress(), "tcpx"),
        proto(ingress(), 256),
        proto(ingress(), -1),
        proto(ingress(), "300"),
        proto(ingress(), ""),
    ] {
        let e = reject(bad);
        assert!(matches!(e.kind, ErrorKind::InvalidProtocol(_)), "{e}");
        assert_eq!(e.class(), ErrorClass::BadRequest);
        assert_eq!(e.path.field(), Some("protocol"));
    }
}

#[test]
fn item11_protocol_zero_means_any() {
    assert_eq!(accept(proto(ingress(), 0)).protocol, None);
    assert_eq!(accept(proto(ingress(), "0")).protocol, None);
    assert_eq!(accept(proto(ingress(), "ip")).protocol, None);
    assert_eq!(accept(proto(ingress(), "hopopt")).protocol, None);
    assert!(accept(proto(ingress(), 0)).protocol_zero);
    assert_eq!(accept(proto(ingress(), "0")).neutron_protocol(), Some(0));
    assert!(!accept(proto(ingress(), "any")).protocol_zero);
    assert_eq!(accept(ingress()).neutron_protocol(), None);
    // Ports with protocol 0 are still ports without a protocol (§14).
    let e = reject(ports(proto(ingress(), 0), Some(80), Some(80)));
    assert_eq!(e.kind, ErrorKind::PortsWithoutProtocol);
}

/// Neutron stores protocol 0 as "0", not null: a `0` rule and an otherwise identical
/// `any` (or protocol-less) rule are two rules, both matching every protocol.
#[test]
fn item11_protocol_zero_is_not_a_duplicate_of_any() {
    let zeros = [
        Scalar::from(0),
        Scalar::from("0"),
        Scalar::from("ip"),
        Scalar::from("HOPOPT"),
    ];
    for zero in &zeros {
        for any in [None, Some(Scalar::from("any"))] {
            for et in [ingress(), v6(egress())] {
                let mut a = et.clone();
                a.protocol = any.clone();
                let z = proto(et.clone(), zero.clone());
                let m = model_with_rules(vec![a.clone(), z.clone()])
                    .unwrap_or_else(|e| panic!("{any:?} then {zero:?}: {e}"));
                let rules = &m.group("g").unwrap().rules;
                assert_eq!(rules.len(), 2);
                assert!(rules.iter().all(|r| r.protocol.is_none()));
                assert_eq!(
                    rules.iter().map(|r| r.protocol_zero).collect::<Vec<_>>(),
                    [false, true]
                );
                // The other order too.
                let m = model_with_rules(vec![z, a]).unwrap();
                assert_eq!(m.group("g").unwrap().rules.len(), 2);
            }
        }
    }
    // 0, "0", ip and hopopt are one protocol; any and no protocol are another.
    for (i, a) in zeros.iter().enumerate() {
        for b in &zeros[i..] {
            let e = model_with_rules(vec![
                proto(ingress(), a.clone()),
                proto(ingress(), b.clone()),
            ])
            .unwrap_err();
            assert_eq!(
                kinds(&e),
                vec![ErrorKind::DuplicateRule { first: 0 }],
                "{a:?} {b:?}"
            );
        }
    }
    let e = model_with_rules(vec![ingress(), proto(ingress(), "any")]).unwrap_err();
    assert_eq!(kinds(&e), vec![ErrorKind::DuplicateRule { first: 0 }]);
    // One rule at a time against a group (the API's path).
    let m = model_with_rules(vec![ingress()]).unwrap();
    let r = validate_rule(&m, "g", &proto(ingress(), 0)).unwrap();
    assert!(r.protocol_zero && r.protocol.is_none());
    let e = validate_rule(&m, "g", &proto(ingress(), "any")).unwrap_err();
    assert_eq!(kinds(&e), vec![ErrorKind::DuplicateRule { first: 0 }]);
    let m = model_with_rules(vec![proto(ingress(), "0")]).unwrap();
    assert!(validate_rule(&m, "g", &proto(ingress(), "Any")).is_ok());
    let e = validate_rule(&m, "g", &proto(ingress(), "ip")).unwrap_err();
    assert_eq!(kinds(&e), vec![ErrorKind::DuplicateRule { first: 0 }]);
}

/// Both the `0` rule and the `any` rule match every IP protocol of their family, on the
/// compiled classifier and on the linear oracle.
#[test]
fn item11_protocol_zero_and_any_both_match_every_protocol() {
    use sgswitch::classifier::{Classifier, CompiledPolicy, LinearPolicy};
    use sgswitch::flow::{FlowKey, FAMILY_V4, FAMILY_V6};

    let rules_of = |which: &str| -> Vec<RuleSpec> {
        let zero = prefix(proto(ingress(), 0), "192.0.2.0/24");
        let any = prefix(proto(ingress(), "any"), "192.0.2.0/24");
        match which {
            "zero" => vec![zero],
            "any" => vec![any],
            _ => vec![zero, any],
        }
    };
    let names = ["zero", "any", "both"];
    let spec = ModelSpec {
        security_groups: names.iter().map(|n| group(n, Some(rules_of(n)))).collect(),
        ports: names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let ip = format!("10.0.0.{}", i + 1);
                let mut p = port(
                    &format!("p-{n}"),
                    &format!("fa:16:3e:00:00:{:02x}", i + 1),
                    &[ip.as_str()],
                );
                p.security_groups = Some(vec![n.to_string()]);
                p
            })
            .collect(),
        ..Default::default()
    };
    let m = validate_model(&spec).unwrap();
    assert_eq!(m.group("both").unwrap().rules.len(), 2);
    let compiled = CompiledPolicy::compile(&m, 1);
    let linear = LinearPolicy::new(&m, 1);
    let key = |v6: bool, port: usize, p: u8| {
        let (src, dst, family) = if v6 {
            let mut d = [0u8; 16];
            d[0] = 0xfd;
            d[15] = port as u8 + 1;
            let mut s = [0u8; 16];
            s[0] = 0x20;
            (s, d, FAMILY_V6)
        } else {
            (
                FlowKey::map_v4([192, 0, 2, 7]),
                FlowKey::map_v4([10, 0, 0, port as u8 + 1]),
                FAMILY_V4,
            )
        };
        FlowKey {
            src,
            dst,
            sport: 40000,
            dport: 80,
            proto: p,
            family,
            _pad: [0; 2],
        }
    };
    for (port, name) in names.iter().enumerate() {
        assert_eq!(m.ports[port].name, format!("p-{name}"));
        for p in 0..=255u8 {
            let k = key(false, port, p);
            assert!(
                compiled.allows(port, Direction::Ingress, &k),
                "{name} proto {p}"
            );
            assert!(
                Classifier::allows(&linear, port, Direction::Ingress, &k),
                "{name} proto {p} (linear)"
            );
            // The rules are IPv4 ones, and only from 192.0.2.0/24.
            let mut other = k;
            other.src = FlowKey::map_v4([198, 51, 100, 7]);
            assert!(!compiled.allows(port, Direction::Ingress, &other));
            assert!(!compiled.allows(port, Direction::Ingress, &key(true, port, p)));
        }
    }
}

#[test]
fn item12_ipv6_icmp_is_canonical() {
    assert_eq!(accept(v6(proto(ingress(), "icmp"))).protocol, Some(58));
    assert_eq!(accept(v6(proto(ingress(), "icmpv6"))).protocol, Some(58));
    assert_eq!(accept(v6(proto(ingress(), 1))).protocol, Some(58));
    assert_eq!(accept(v6(proto(ingress(), "1"))).protocol, Some(58));
    assert_eq!(accept(proto(ingress(), "icmp")).protocol, Some(1));
    // icmp and ipv6-icmp under IPv6 are the same rule.
    let e = model_with_rules(vec![
        v6(proto(ingress(), "icmp")),
        v6(proto(ingress(), "ipv6-icmp")),
    ])
    .unwrap_err();
    assert_eq!(kinds(&e), vec![ErrorKind::DuplicateRule { first: 0 }]);
}

#[test]
fn item13_ipv6_only_protocols_reject_ipv4() {
    for p in [
        Scalar::from("ipv6-icmp"),
        Scalar::from("icmpv6"),
        Scalar::from("ipv6-encap"),
        Scalar::from("ipv6-frag"),
        Scalar::from("ipv6-nonxt"),
        Scalar::from("ipv6-opts"),
        Scalar::from("ipv6-route"),
        Scalar::Int(41),
        Scalar::Int(43),
        Scalar::Int(44),
        Scalar::Int(58),
        Scalar::from("59"),
        Scalar::Int(60),
    ] {
        let e = reject(proto(ingress(), p.clone()));
        assert!(matches!(e.kind, ErrorKind::IPv6OnlyProtocol(_)), "{p}: {e}");
        assert!(
            e.to_string()
                .contains("invalid ethertype IPv4 for protocol"),
            "{e}"
        );
        accept(v6(proto(ingress(), p)));
    }
}
