//! Neutron validation rules (security-groups.md §2 items 7-9, §3 items 10-22), each with
//! accept and reject cases, through the public policy API.

use std::net::IpAddr;

use ipnet::IpNet;
use sgswitch::policy::spec::{
    AddressGroupSpec, AllowedAddressPairSpec, BackendSpec, ModelSpec, NetworkSpec, PortSpec,
    RuleSpec, Scalar, SecurityGroupSpec,
};
use sgswitch::policy::{
    validate_model, validate_port, validate_rule, Direction, ErrorClass, ErrorKind, EtherType,
    Model, Remote, Rule, ValidationErrors,
};

// ---------------------------------------------------------------------------------------
// Helpers

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

fn ingress() -> RuleSpec {
    RuleSpec {
        direction: s("ingress"),
        ..Default::default()
    }
}

fn egress() -> RuleSpec {
    RuleSpec {
        direction: s("egress"),
        ..Default::default()
    }
}

fn proto(mut r: RuleSpec, p: impl Into<Scalar>) -> RuleSpec {
    r.protocol = Some(p.into());
    r
}

fn v6(mut r: RuleSpec) -> RuleSpec {
    r.ethertype = s("IPv6");
    r
}

fn ports(mut r: RuleSpec, min: Option<i64>, max: Option<i64>) -> RuleSpec {
    r.port_range_min = min.map(Scalar::Int);
    r.port_range_max = max.map(Scalar::Int);
    r
}

fn prefix(mut r: RuleSpec, p: &str) -> RuleSpec {
    r.remote_ip_prefix = s(p);
    r
}

fn group(name: &str, rules: Option<Vec<RuleSpec>>) -> SecurityGroupSpec {
    SecurityGroupSpec {
        name: s(name),
        rules,
        ..Default::default()
    }
}

fn port(name: &str, mac: &str, ips: &[&str]) -> PortSpec {
    PortSpec {
        name: s(name),
        mac: s(mac),
        fixed_ips: ips.iter().map(|i| i.to_string()).collect(),
        ..Default::default()
    }
}

/// A base model: group "g" (no rules), group "other", a stateless group "sl", address
/// group "ag".
fn base() -> Model {
    let spec = ModelSpec {
        security_groups: vec![
            group("g", Some(vec![])),
            group("other", None),
            SecurityGroupSpec {
                name: s("sl"),
                stateful: Some(false),
                ..Default::default()
            },
        ],
        address_groups: vec![AddressGroupSpec {
            name: s("ag"),
            addresses: vec!["192.0.2.0/24".into()],
            ..Default::default()
        }],
        ..Default::default()
    };
    validate_model(&spec).expect("base model is valid")
}

/// Validate one rule as a new rule of group "g".
fn rule(r: RuleSpec) -> Result<Rule, ValidationErrors> {
    validate_rule(&base(), "g", &r)
}

/// The single error of a rejected rule.
fn reject(r: RuleSpec) -> sgswitch::policy::ValidationError {
    let errs = rule(r.clone()).expect_err(&format!("{r:?} must be rejected"));
    assert_eq!(errs.len(), 1, "{errs}");
    errs.errors()[0].clone()
}

fn accept(r: RuleSpec) -> Rule {
    rule(r.clone()).unwrap_or_else(|e| panic!("{r:?} must be accepted: {e}"))
}

fn model_with_rules(rules: Vec<RuleSpec>) -> Result<Model, ValidationErrors> {
    validate_model(&ModelSpec {
        security_groups: vec![group("g", Some(rules))],
        ..Default::default()
    })
}

fn model_with_ports(ports: Vec<PortSpec>) -> Result<Model, ValidationErrors> {
    validate_model(&ModelSpec {
        security_groups: vec![
            group("web", None),
            SecurityGroupSpec {
                name: s("sl"),
                stateful: Some(false),
                ..Default::default()
            },
        ],
        ports,
        ..Default::default()
    })
}

fn kinds(e: &ValidationErrors) -> Vec<ErrorKind> {
    e.errors().iter().map(|e| e.kind.clone()).collect()
}

// ---------------------------------------------------------------------------------------
// §2 Defaults

#[test]
fn item7_default_group_exists_and_ports_get_it() {
    let m = model_with_ports(vec![port("a", "fa:16:3e:00:00:01", &["10.0.0.1"])]).unwrap();
    let d = m.group("default").expect("default group is created");
    assert_eq!(d.description, "Default security group");
    assert_eq!(m.port("a").unwrap().security_groups, vec!["default"]);
}

#[test]
fn item7_trusted_ports_get_no_group() {
    let mut p = port("rtr", "fa:16:3e:00:00:01", &["10.0.0.1"]);
    p.port_security = Some(false);
    let m = model_with_ports(vec![p]).unwrap();
    let p = m.port("rtr").unwrap();
    assert!(p.security_groups.is_empty());
    assert!(!p.port_security);
}

#[test]
fn item7_explicit_empty_group_list_is_no_group() {
    let mut p = port("a", "fa:16:3e:00:00:01", &["10.0.0.1"]);
    p.security_groups = Some(vec![]);
    let m = model_with_ports(vec![p]).unwrap();
    assert!(m.port("a").unwrap().security_groups.is_empty());
    assert!(m.port("a").unwrap().port_security);
}

#[test]
fn item8_default_group_gets_four_rules() {
    let m = validate_model(&ModelSpec::default()).unwrap();
    let d = m.group("default").unwrap();
    assert_eq!(d.rules.len(), 4);
    let has = |dir, et, remote: &Remote| {
        d.rules.iter().any(|r| {
            r.direction == dir && r.ethertype == et && &r.remote == remote && r.protocol.is_none()
        })
    };
    assert!(has(Direction::Egress, EtherType::IPv4, &Remote::Any));
    assert!(has(Direction::Egress, EtherType::IPv6, &Remote::Any));
    let me = Remote::Group("default".into());
    assert!(has(Direction::Ingress, EtherType::IPv4, &me));
    assert!(has(Direction::Ingress, EtherType::IPv6, &me));

    // Declared without rules: the same four.
    let m = validate_model(&ModelSpec {
        security_groups: vec![group("default", None)],
        ..Default::default()
    })
    .unwrap();
    assert_eq!(m.group("default").unwrap().rules, d.rules);
    assert_eq!(m.security_groups.len(), 1);

    // Declared with rules: exactly those.
    let m = validate_model(&ModelSpec {
        security_groups: vec![group("default", Some(vec![egress()]))],
        ..Default::default()
    })
    .unwrap();
    assert_eq!(m.group("default").unwrap().rules.len(), 1);
}

#[test]
fn item8_other_groups_get_two_egress_rules_unless_rules_given() {
    let m = base();
    let other = m.group("other").unwrap();
    assert_eq!(other.rules.len(), 2);
    assert!(other.rules.iter().all(|r| r.direction == Direction::Egress
        && r.remote == Remote::Any
        && r.protocol.is_none()));
    assert_ne!(other.rules[0].ethertype, other.rules[1].ethertype);
    // `rules = []`: none at all.
    assert!(m.group("g").unwrap().rules.is_empty());
    // §51: a stateless group gets the template too.
    assert_eq!(m.group("sl").unwrap().rules.len(), 2);
}

#[test]
fn item9_stateful_defaults_to_true() {
    let m = base();
    assert!(m.group("other").unwrap().stateful);
    assert!(m.group("default").unwrap().stateful);
    assert!(!m.group("sl").unwrap().stateful);
}

// ---------------------------------------------------------------------------------------
// §3 Validation

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

#[test]
fn item14_ports_need_a_protocol() {
    for r in [
        ports(ingress(), Some(80), Some(80)),
        ports(proto(ingress(), "any"), Some(80), Some(80)),
        ports(proto(ingress(), 0), Some(80), Some(80)),
        ports(ingress(), None, Some(80)),
    ] {
        let e = reject(r);
        assert_eq!(e.kind, ErrorKind::PortsWithoutProtocol, "{e}");
    }
}

#[test]
fn item15_port_ranges() {
    for p in ["tcp", "udp", "sctp", "dccp", "udplite", "6", "17"] {
        let r = accept(ports(proto(ingress(), p), Some(80), Some(90)));
        assert_eq!(
            (r.port_range_min, r.port_range_max),
            (Some(80), Some(90)),
            "{p}"
        );
        // min == max: one port.
        let r = accept(ports(proto(ingress(), p), Some(22), Some(22)));
        assert_eq!((r.port_range_min, r.port_range_max), (Some(22), Some(22)));
        // 1..65535: all ports.
        let r = accept(ports(proto(ingress(), p), Some(1), Some(65535)));
        assert_eq!((r.port_range_min, r.port_range_max), (None, None));
    }
    // Numeric strings are accepted (Neutron's converter).
    let mut r = proto(ingress(), "tcp");
    r.port_range_min = Some("443".into());
    r.port_range_max = Some("443".into());
    assert_eq!(accept(r).port_range_min, Some(443));

    // 0, out of range.
    for (min, max) in [(0, 80), (80, 0), (1, 65536), (-5, 10), (70000, 70001)] {
        let errs = rule(ports(proto(ingress(), "tcp"), Some(min), Some(max))).unwrap_err();
        assert!(
            errs.errors()
                .iter()
                .all(|e| matches!(e.kind, ErrorKind::InvalidPort { .. })),
            "{errs}"
        );
    }
    // Only one bound.
    let e = reject(ports(proto(ingress(), "tcp"), Some(80), None));
    assert!(
        matches!(
            e.kind,
            ErrorKind::IncompletePortRange {
                missing: "port_range_max",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.path.field(), Some("port_range_max"));
    let e = reject(ports(proto(ingress(), "udp"), None, Some(80)));
    assert!(
        matches!(
            e.kind,
            ErrorKind::IncompletePortRange {
                missing: "port_range_min",
                ..
            }
        ),
        "{e}"
    );
    // min > max.
    let e = reject(ports(proto(ingress(), "tcp"), Some(90), Some(80)));
    assert_eq!(e.kind, ErrorKind::PortRangeInverted { min: 90, max: 80 });
    // Not an integer.
    let mut r = proto(ingress(), "tcp");
    r.port_range_min = Some("http".into());
    r.port_range_max = Some(Scalar::Int(80));
    let e = reject(r);
    assert!(matches!(e.kind, ErrorKind::NotAnInteger(_)), "{e}");
}

#[test]
fn item16_icmp_type_and_code() {
    for p in ["icmp", "1"] {
        let r = accept(ports(proto(ingress(), p), Some(8), Some(0)));
        assert_eq!((r.port_range_min, r.port_range_max), (Some(8), Some(0)));
        // No min <= max check: type 8 code 5 is fine.
        let r = accept(ports(proto(ingress(), p), Some(8), Some(5)));
        assert_eq!((r.port_range_min, r.port_range_max), (Some(8), Some(5)));
        // Type without code: any code.
        let r = accept(ports(proto(ingress(), p), Some(3), None));
        assert_eq!((r.port_range_min, r.port_range_max), (Some(3), None));
        // 0 is a valid type and code.
        accept(ports(proto(ingress(), p), Some(0), Some(0)));
        accept(ports(proto(ingress(), p), Some(255), Some(255)));
    }
    let r = accept(v6(ports(proto(ingress(), "ipv6-icmp"), Some(128), Some(0))));
    assert_eq!((r.protocol, r.port_range_min), (Some(58), Some(128)));

    let e = reject(ports(proto(ingress(), "icmp"), Some(256), None));
    assert!(
        matches!(e.kind, ErrorKind::InvalidIcmpValue { what: "type", .. }),
        "{e}"
    );
    let e = reject(ports(proto(ingress(), "icmp"), Some(8), Some(256)));
    assert!(
        matches!(e.kind, ErrorKind::InvalidIcmpValue { what: "code", .. }),
        "{e}"
    );
    assert_eq!(e.path.field(), Some("port_range_max"));
    let e = reject(ports(proto(ingress(), "icmp"), Some(-1), None));
    assert!(matches!(e.kind, ErrorKind::InvalidIcmpValue { .. }), "{e}");
    let e = reject(v6(ports(proto(ingress(), "icmpv6"), None, Some(0))));
    assert_eq!(e.kind, ErrorKind::IcmpCodeWithoutType);
}

#[test]
fn item17_no_ports_for_other_protocols() {
    for p in ["gre", "esp", "ah", "vrrp", "igmp", "112"] {
        let e = reject(ports(proto(ingress(), p), Some(1), Some(2)));
        assert!(matches!(e.kind, ErrorKind::PortsNotAllowed(_)), "{p}: {e}");
        assert!(e
            .to_string()
            .contains("ports cannot be specified for protocol"));
        accept(proto(ingress(), p));
    }
}

#[test]
fn item18_remote_ip_prefix() {
    // Bare addresses become host prefixes.
    let r = accept(prefix(ingress(), "10.0.0.7"));
    assert_eq!(r.remote, Remote::Prefix("10.0.0.7/32".parse().unwrap()));
    assert_eq!(r.remote_ip_prefix_raw.as_deref(), Some("10.0.0.7/32"));
    let r = accept(v6(prefix(ingress(), "2001:db8::1")));
    assert_eq!(r.remote, Remote::Prefix("2001:db8::1/128".parse().unwrap()));
    // Host bits: kept raw, normalised for enforcement.
    let r = accept(prefix(ingress(), "10.0.0.7/24"));
    assert_eq!(r.remote, Remote::Prefix("10.0.0.0/24".parse().unwrap()));
    assert_eq!(r.remote_ip_prefix_raw.as_deref(), Some("10.0.0.7/24"));
    let r = accept(v6(prefix(ingress(), "2001:db8::5/64")));
    assert_eq!(r.remote, Remote::Prefix("2001:db8::/64".parse().unwrap()));

    for bad in [
        "10.0.0.0/33",
        "10.0.0",
        "nonsense",
        "10.0.0.0/",
        "2001:db8::/129",
        "",
    ] {
        let e = reject(prefix(ingress(), bad));
        assert!(
            matches!(e.kind, ErrorKind::InvalidCidr { .. }),
            "{bad}: {e}"
        );
        assert_eq!(e.path.field(), Some("remote_ip_prefix"));
    }
    // Family must match the ethertype.
    let e = reject(prefix(ingress(), "2001:db8::/64"));
    assert!(
        matches!(e.kind, ErrorKind::PrefixFamilyConflict { .. }),
        "{e}"
    );
    let e = reject(v6(prefix(ingress(), "10.0.0.0/8")));
    assert!(
        matches!(e.kind, ErrorKind::PrefixFamilyConflict { .. }),
        "{e}"
    );
    assert!(
        e.to_string().contains("conflicting value ethertype IPv6"),
        "{e}"
    );
}

#[test]
fn item19_remotes_references_direction_ethertype() {
    // At most one remote.
    let mut r = prefix(ingress(), "10.0.0.0/8");
    r.remote_group = s("other");
    let e = reject(r);
    assert_eq!(e.kind, ErrorKind::MultipleRemotes);
    let mut r = ingress();
    r.remote_group = s("other");
    r.remote_address_group = s("ag");
    assert_eq!(reject(r).kind, ErrorKind::MultipleRemotes);

    // References.
    let mut r = ingress();
    r.remote_group = s("other");
    assert_eq!(accept(r).remote, Remote::Group("other".into()));
    let mut r = ingress();
    r.remote_group = s("default");
    accept(r);
    let mut r = ingress();
    r.remote_address_group = s("ag");
    assert_eq!(accept(r).remote, Remote::AddressGroup("ag".into()));
    let mut r = ingress();
    r.remote_group = s("nope");
    let e = reject(r);
    assert_eq!(e.kind, ErrorKind::UnknownSecurityGroup("nope".into()));
    assert_eq!(e.class(), ErrorClass::NotFound);
    let mut r = ingress();
    r.remote_address_group = s("nope");
    let e = reject(r);
    assert_eq!(e.kind, ErrorKind::UnknownAddressGroup("nope".into()));
    assert_eq!(e.class(), ErrorClass::NotFound);
    // Forward references inside one model are fine.
    let mut r = ingress();
    r.remote_group = s("later");
    validate_model(&ModelSpec {
        security_groups: vec![group("first", Some(vec![r])), group("later", None)],
        ..Default::default()
    })
    .unwrap();

    // Direction.
    let mut r = ingress();
    r.direction = s("inbound");
    assert!(matches!(reject(r).kind, ErrorKind::InvalidDirection(_)));
    let mut r = ingress();
    r.direction = None;
    let e = reject(r);
    assert_eq!(e.kind, ErrorKind::Missing);
    assert_eq!(e.path.field(), Some("direction"));
    assert_eq!(accept(egress()).direction, Direction::Egress);

    // Ethertype: case-insensitive, default IPv4.
    assert_eq!(accept(ingress()).ethertype, EtherType::IPv4);
    for et in ["ipv6", "IPV6", "IPv6"] {
        let mut r = ingress();
        r.ethertype = s(et);
        assert_eq!(accept(r).ethertype, EtherType::IPv6);
    }
    let mut r = ingress();
    r.ethertype = s("ipx");
    let e = reject(r);
    assert!(matches!(e.kind, ErrorKind::InvalidEthertype(_)));
    assert_eq!(e.class(), ErrorClass::BadRequest);
}

#[test]
fn item20_duplicate_rules() {
    let tcp80 = ports(proto(ingress(), "tcp"), Some(80), Some(80));
    // Exact duplicate; `tcp` == `6`; description ignored.
    let mut described = ports(proto(ingress(), 6), Some(80), Some(80));
    described.description = s("same thing");
    let e = model_with_rules(vec![tcp80.clone(), egress(), described]).unwrap_err();
    assert_eq!(e.len(), 1, "{e}");
    let err = &e.errors()[0];
    assert_eq!(err.kind, ErrorKind::DuplicateRule { first: 0 });
    assert_eq!(err.class(), ErrorClass::Conflict);
    assert_eq!(err.rule, Some(2));
    assert_eq!(err.group.as_deref(), Some("g"));
    // The message names both positions.
    let msg = err.to_string();
    assert!(
        msg.starts_with("security_groups[0].rules[2] (group \"g\", rule 2)"),
        "{msg}"
    );
    assert!(msg.contains("rule 0"), "{msg}");

    // null == 0.0.0.0/0, and ::/0 for IPv6.
    let e = model_with_rules(vec![ingress(), prefix(ingress(), "0.0.0.0/0")]).unwrap_err();
    assert_eq!(kinds(&e), vec![ErrorKind::DuplicateRule { first: 0 }]);
    let e = model_with_rules(vec![v6(prefix(ingress(), "::/0")), v6(ingress())]).unwrap_err();
    assert_eq!(kinds(&e), vec![ErrorKind::DuplicateRule { first: 0 }]);
    // 1-65535 == no ports.
    let e = model_with_rules(vec![
        proto(ingress(), "udp"),
        ports(proto(ingress(), "udp"), Some(1), Some(65535)),
    ])
    .unwrap_err();
    assert_eq!(kinds(&e), vec![ErrorKind::DuplicateRule { first: 0 }]);

    // Not duplicates: other direction, ethertype, ports, remote, or host bits.
    model_with_rules(vec![
        tcp80.clone(),
        ports(proto(egress(), "tcp"), Some(80), Some(80)),
        v6(ports(proto(ingress(), "tcp"), Some(80), Some(80))),
        ports(proto(ingress(), "tcp"), Some(80), Some(81)),
        prefix(tcp80.clone(), "10.0.0.0/24"),
        prefix(tcp80.clone(), "10.0.0.7/24"),
        ingress(),
        v6(ingress()),
    ])
    .unwrap();

    // Same rule in two groups is fine.
    validate_model(&ModelSpec {
        security_groups: vec![
            group("a", Some(vec![tcp80.clone()])),
            group("b", Some(vec![tcp80.clone()])),
        ],
        ..Default::default()
    })
    .unwrap();

    // validate_rule checks against the group's existing rules.
    let m = validate_model(&ModelSpec {
        security_groups: vec![group("a", Some(vec![egress(), tcp80.clone()]))],
        ..Default::default()
    })
    .unwrap();
    let e = validate_rule(&m, "a", &ports(proto(ingress(), "6"), Some(80), Some(80))).unwrap_err();
    assert_eq!(kinds(&e), vec![ErrorKind::DuplicateRule { first: 1 }]);
    assert_eq!(e.errors()[0].rule, Some(2));
    assert_eq!(
        e.errors()[0].path.to_string(),
        "security_groups[0].rules[2]"
    );
    // ... and an unknown target group is 404.
    let e = validate_rule(&m, "zz", &tcp80).unwrap_err();
    assert_eq!(e.class(), ErrorClass::NotFound);
}

#[test]
fn item21_group_names() {
    // Unique.
    let e = validate_model(&ModelSpec {
        security_groups: vec![group("web", None), group("db", None), group("web", None)],
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(
        kinds(&e),
        vec![ErrorKind::DuplicateGroupName {
            name: "web".into(),
            first: 0
        }]
    );
    assert_eq!(e.errors()[0].class(), ErrorClass::Conflict);
    assert_eq!(e.errors()[0].path.to_string(), "security_groups[2].name");
    // "default" in any other spelling is reserved.
    for name in ["Default", "DEFAULT"] {
        let e = validate_model(&ModelSpec {
            security_groups: vec![group(name, None)],
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(kinds(&e), vec![ErrorKind::ReservedDefaultName(name.into())]);
        assert_eq!(e.class(), ErrorClass::Conflict);
    }
    // The default group itself is fine, once.
    let e = validate_model(&ModelSpec {
        security_groups: vec![group("default", None), group("default", None)],
        ..Default::default()
    })
    .unwrap_err();
    assert!(matches!(
        e.errors()[0].kind,
        ErrorKind::DuplicateGroupName { .. }
    ));
    // Missing or empty names.
    let e = validate_model(&ModelSpec {
        security_groups: vec![SecurityGroupSpec::default(), group("  ", None)],
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(kinds(&e), vec![ErrorKind::Missing, ErrorKind::Empty]);
}

#[test]
fn item22_port_security_group_checks() {
    let mut p = port("a", "fa:16:3e:00:00:01", &["10.0.0.1"]);
    p.security_groups = Some(vec!["web".into(), "default".into()]);
    let m = model_with_ports(vec![p.clone()]).unwrap();
    assert_eq!(m.port("a").unwrap().security_groups, vec!["web", "default"]);

    // Unknown group: 404.
    p.security_groups = Some(vec!["web".into(), "nope".into()]);
    let e = model_with_ports(vec![p.clone()]).unwrap_err();
    assert_eq!(
        kinds(&e),
        vec![ErrorKind::UnknownSecurityGroup("nope".into())]
    );
    assert_eq!(e.class(), ErrorClass::NotFound);
    assert_eq!(
        e.errors()[0].path.to_string(),
        "ports[0].security_groups[1]"
    );
    assert_eq!(e.errors()[0].port.as_deref(), Some("a"));

    // Same group twice: 400.
    p.security_groups = Some(vec!["web".into(), "web".into()]);
    let e = model_with_ports(vec![p.clone()]).unwrap_err();
    assert_eq!(kinds(&e), vec![ErrorKind::DuplicatePortGroup("web".into())]);
    assert_eq!(e.class(), ErrorClass::BadRequest);

    // Stateful and stateless mixed: 409. Only stateless: fine.
    p.security_groups = Some(vec!["web".into(), "sl".into()]);
    let e = model_with_ports(vec![p.clone()]).unwrap_err();
    assert!(
        matches!(e.errors()[0].kind, ErrorKind::MixedStatefulness { .. }),
        "{e}"
    );
    assert_eq!(e.class(), ErrorClass::Conflict);
    p.security_groups = Some(vec!["sl".into()]);
    model_with_ports(vec![p.clone()]).unwrap();
    // Reported even when one of the groups has an invalid rule of its own.
    let e = validate_model(&ModelSpec {
        security_groups: vec![SecurityGroupSpec {
            name: s("broken"),
            stateful: Some(false),
            rules: Some(vec![RuleSpec::default()]),
            ..Default::default()
        }],
        ports: vec![PortSpec {
            security_groups: Some(vec!["default".into(), "broken".into()]),
            ..port("b", "fa:16:3e:00:00:02", &[])
        }],
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(e.len(), 2, "{e}");
    assert!(
        matches!(e.errors()[1].kind, ErrorKind::MixedStatefulness { .. }),
        "{e}"
    );

    // Groups without port security: rejected; no groups without port security: fine.
    p.port_security = Some(false);
    p.security_groups = Some(vec!["web".into()]);
    let e = model_with_ports(vec![p.clone()]).unwrap_err();
    assert_eq!(kinds(&e), vec![ErrorKind::GroupsWithoutPortSecurity]);
    assert_eq!(e.class(), ErrorClass::BadRequest);
    p.security_groups = Some(vec![]);
    model_with_ports(vec![p]).unwrap();
}

// ---------------------------------------------------------------------------------------
// Ports, address groups, networks, switch-wide settings

#[test]
fn port_names_unique_and_required() {
    let e = model_with_ports(vec![
        port("a", "fa:16:3e:00:00:01", &[]),
        port("a", "fa:16:3e:00:00:02", &[]),
        PortSpec {
            mac: s("fa:16:3e:00:00:03"),
            ..Default::default()
        },
    ])
    .unwrap_err();
    assert_eq!(
        kinds(&e),
        vec![
            ErrorKind::DuplicatePortName {
                name: "a".into(),
                first: 0
            },
            ErrorKind::Missing
        ]
    );
    assert_eq!(e.errors()[1].path.to_string(), "ports[2].name");
}

#[test]
fn port_mac_rules() {
    for (good, want) in [
        ("fa:16:3e:00:00:0a", [0xfa, 0x16, 0x3e, 0, 0, 0x0a]),
        ("FA:16:3E:00:00:0A", [0xfa, 0x16, 0x3e, 0, 0, 0x0a]),
        ("fa-16-3e-00-00-0a", [0xfa, 0x16, 0x3e, 0, 0, 0x0a]),
        ("02:00:00:00:00:01", [0x02, 0, 0, 0, 0, 0x01]),
    ] {
        let m = model_with_ports(vec![port("a", good, &[])]).unwrap();
        assert_eq!(m.ports[0].mac, want, "{good}");
    }
    for bad in [
        "fa:16:3e:00:00",
        "fa:16:3e:00:00:0g",
        "fa16.3e00.000a",
        "fa:16:3e-00:00:0a",
        "",
        "fa:16:3e:00:00:0a:0b",
    ] {
        let e = model_with_ports(vec![port("a", bad, &[])]).unwrap_err();
        assert!(
            matches!(e.errors()[0].kind, ErrorKind::InvalidMac { .. }),
            "{bad}: {e}"
        );
        assert_eq!(e.errors()[0].path.to_string(), "ports[0].mac");
    }
    // Multicast, broadcast, zero.
    for bad in [
        "01:00:5e:00:00:01",
        "ff:ff:ff:ff:ff:ff",
        "33:33:00:00:00:01",
        "00:00:00:00:00:00",
    ] {
        let e = model_with_ports(vec![port("a", bad, &[])]).unwrap_err();
        assert!(
            matches!(e.errors()[0].kind, ErrorKind::InvalidMac { .. }),
            "{bad}: {e}"
        );
    }
    // Missing.
    let e = model_with_ports(vec![PortSpec {
        name: s("a"),
        ..Default::default()
    }])
    .unwrap_err();
    assert_eq!(kinds(&e), vec![ErrorKind::Missing]);
}

#[test]
fn port_mac_unique_per_network() {
    let a = port("a", "fa:16:3e:00:00:01", &[]);
    let b = port("b", "fa:16:3e:00:00:01", &[]);
    let e = model_with_ports(vec![a.clone(), b.clone()]).unwrap_err();
    assert!(
        matches!(&e.errors()[0].kind, ErrorKind::DuplicateMac { other_port, .. } if other_port == "a"),
        "{e}"
    );
    assert_eq!(e.class(), ErrorClass::Conflict);
    // On another network: fine.
    let mut b2 = b;
    b2.network = s("net2");
    let m = model_with_ports(vec![a, b2]).unwrap();
    assert_eq!(
        m.networks
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>(),
        vec!["default", "net2"]
    );
}

#[test]
fn port_fixed_ips() {
    let m = model_with_ports(vec![port(
        "a",
        "fa:16:3e:00:00:01",
        &["10.0.0.1", "fd00::1"],
    )])
    .unwrap();
    assert_eq!(
        m.ports[0].fixed_ips,
        vec![
            "10.0.0.1".parse::<IpAddr>().unwrap(),
            "fd00::1".parse().unwrap()
        ]
    );
    for bad in [
        "10.0.0.1/24",
        "10.0.0.256",
        "x",
        "0.0.0.0",
        "::",
        "224.0.0.1",
        "ff02::1",
        "255.255.255.255",
    ] {
        let e =
            model_with_ports(vec![port("a", "fa:16:3e:00:00:01", &["10.0.0.9", bad])]).unwrap_err();
        assert!(
            matches!(e.errors()[0].kind, ErrorKind::InvalidIpAddress { .. }),
            "{bad}: {e}"
        );
        assert_eq!(e.errors()[0].path.to_string(), "ports[0].fixed_ips[1]");
    }
    let e = model_with_ports(vec![port(
        "a",
        "fa:16:3e:00:00:01",
        &["10.0.0.1", "10.0.0.1"],
    )])
    .unwrap_err();
    assert!(matches!(
        e.errors()[0].kind,
        ErrorKind::DuplicateFixedIp { .. }
    ));
    // The same IP on two ports of one network: 409; on two networks: fine.
    let a = port("a", "fa:16:3e:00:00:01", &["10.0.0.1"]);
    let mut b = port("b", "fa:16:3e:00:00:02", &["10.0.0.1"]);
    let e = model_with_ports(vec![a.clone(), b.clone()]).unwrap_err();
    assert!(matches!(e.errors()[0].kind, ErrorKind::IpInUse { .. }));
    assert_eq!(e.class(), ErrorClass::Conflict);
    b.network = s("other");
    model_with_ports(vec![a, b]).unwrap();
}

#[test]
fn port_allowed_address_pairs() {
    let mut p = port("a", "fa:16:3e:00:00:01", &["10.0.0.1"]);
    p.allowed_address_pairs = vec![
        AllowedAddressPairSpec {
            ip_address: s("10.0.0.100/32"),
            mac_address: s("fa:16:3e:8c:84:13"),
        },
        AllowedAddressPairSpec {
            ip_address: s("10.1.0.7/16"),
            mac_address: None,
        },
        AllowedAddressPairSpec {
            ip_address: s("fd00::100"),
            mac_address: None,
        },
    ];
    let m = model_with_ports(vec![p.clone()]).unwrap();
    let pairs = &m.ports[0].allowed_address_pairs;
    assert_eq!(
        pairs[0].ip_address,
        "10.0.0.100/32".parse::<IpNet>().unwrap()
    );
    assert_eq!(
        pairs[0].mac_address,
        Some(sgswitch::wire::Mac([0xfa, 0x16, 0x3e, 0x8c, 0x84, 0x13]))
    );
    assert_eq!(pairs[1].ip_address, "10.1.0.0/16".parse::<IpNet>().unwrap());
    assert_eq!(pairs[1].mac_address, None);
    assert_eq!(
        pairs[2].ip_address,
        "fd00::100/128".parse::<IpNet>().unwrap()
    );

    let mut bad = p.clone();
    bad.allowed_address_pairs = vec![
        AllowedAddressPairSpec {
            ip_address: s("10.0.0.300/32"),
            mac_address: None,
        },
        AllowedAddressPairSpec {
            ip_address: s("10.0.0.5"),
            mac_address: s("01:00:5e:00:00:01"),
        },
        AllowedAddressPairSpec {
            ip_address: None,
            mac_address: None,
        },
    ];
    let e = model_with_ports(vec![bad]).unwrap_err();
    let paths: Vec<String> = e.errors().iter().map(|e| e.path.to_string()).collect();
    assert_eq!(
        paths,
        vec![
            "ports[0].allowed_address_pairs[0].ip_address",
            "ports[0].allowed_address_pairs[1].mac_address",
            "ports[0].allowed_address_pairs[2].ip_address"
        ]
    );
    // Duplicate pair (no MAC == the port's MAC).
    let mut dup = p.clone();
    dup.allowed_address_pairs = vec![
        AllowedAddressPairSpec {
            ip_address: s("10.0.0.100"),
            mac_address: None,
        },
        AllowedAddressPairSpec {
            ip_address: s("10.0.0.100/32"),
            mac_address: s("fa:16:3e:00:00:01"),
        },
    ];
    let e = model_with_ports(vec![dup]).unwrap_err();
    assert!(
        matches!(e.errors()[0].kind, ErrorKind::DuplicateAddressPair(_)),
        "{e}"
    );
    // Pairs need port security.
    let mut nopsec = p;
    nopsec.port_security = Some(false);
    let e = model_with_ports(vec![nopsec]).unwrap_err();
    assert_eq!(kinds(&e), vec![ErrorKind::AddressPairsWithoutPortSecurity]);
}

#[test]
fn port_backends() {
    let mut a = port("a", "fa:16:3e:00:00:01", &[]);
    a.backend = Some(BackendSpec::AfXdp {
        ifname: s("eth0"),
        queue: None,
        mode: s("native"),
    });
    let mut b = port("b", "fa:16:3e:00:00:02", &[]);
    b.backend = Some(BackendSpec::Tap {
        ifname: s("tap-b"),
        netns: s("ns1"),
        vnet_hdr: None,
    });
    let mut c = port("c", "fa:16:3e:00:00:03", &[]);
    // Same name in another namespace: fine.
    c.backend = Some(BackendSpec::Tap {
        ifname: s("tap-b"),
        netns: None,
        vnet_hdr: Some(true),
    });
    let m = model_with_ports(vec![a.clone(), b, c]).unwrap();
    assert_eq!(
        m.ports[0].backend,
        Some(sgswitch::policy::Backend::AfXdp {
            ifname: "eth0".into(),
            queue: 0,
            mode: Some(sgswitch::policy::XdpMode::Native)
        })
    );

    let mut dup = port("d", "fa:16:3e:00:00:04", &[]);
    dup.backend = Some(BackendSpec::AfPacket { ifname: s("eth0") });
    let e = model_with_ports(vec![a.clone(), dup]).unwrap_err();
    assert!(
        matches!(e.errors()[0].kind, ErrorKind::DuplicateInterface { .. }),
        "{e}"
    );

    for (backend, field) in [
        (
            BackendSpec::AfPacket {
                ifname: s("a-very-long-interface"),
            },
            "ifname",
        ),
        (BackendSpec::AfPacket { ifname: s("") }, "ifname"),
        (BackendSpec::AfPacket { ifname: s("eth/0") }, "ifname"),
        (BackendSpec::AfPacket { ifname: None }, "ifname"),
        (
            BackendSpec::AfXdp {
                ifname: s("eth1"),
                queue: None,
                mode: s("fast"),
            },
            "mode",
        ),
    ] {
        let mut p = port("x", "fa:16:3e:00:00:09", &[]);
        p.backend = Some(backend);
        let e = model_with_ports(vec![p]).unwrap_err();
        assert_eq!(
            e.errors()[0].path.to_string(),
            format!("ports[0].backend.{field}"),
            "{e}"
        );
    }
}

#[test]
fn address_groups() {
    let spec = |ags: Vec<AddressGroupSpec>| ModelSpec {
        address_groups: ags,
        ..Default::default()
    };
    let ag = |name: &str, addrs: &[&str]| AddressGroupSpec {
        name: s(name),
        addresses: addrs.iter().map(|a| a.to_string()).collect(),
        ..Default::default()
    };
    let m = validate_model(&spec(vec![
        ag("x", &["10.0.0.7/24", "192.0.2.1", "2001:db8::/32"]),
        ag("empty", &[]),
    ]))
    .unwrap();
    assert_eq!(
        m.address_group("x").unwrap().addresses,
        vec![
            "10.0.0.0/24".parse::<IpNet>().unwrap(),
            "192.0.2.1/32".parse().unwrap(),
            "2001:db8::/32".parse().unwrap()
        ]
    );
    let e = validate_model(&spec(vec![
        ag("x", &["10.0.0.0/24", "bad", "10.0.0.9/24"]),
        ag("x", &[]),
    ]))
    .unwrap_err();
    assert_eq!(e.len(), 3, "{e}");
    assert!(
        matches!(
            e.errors()[0].kind,
            ErrorKind::DuplicateAddressGroupName { .. }
        ) || matches!(e.errors()[0].kind, ErrorKind::InvalidCidr { .. })
    );
    let ks = kinds(&e);
    assert!(ks
        .iter()
        .any(|k| matches!(k, ErrorKind::InvalidCidr { .. })));
    assert!(ks.contains(&ErrorKind::DuplicateAddress {
        cidr: "10.0.0.0/24".into(),
        first: 0
    }));
    assert!(ks.contains(&ErrorKind::DuplicateAddressGroupName {
        name: "x".into(),
        first: 0
    }));
    assert!(e
        .errors()
        .iter()
        .all(|e| e.address_group.as_deref() == Some("x")));
}

#[test]
fn networks_and_switch_settings() {
    let m = validate_model(&ModelSpec {
        networks: vec![NetworkSpec { name: s("spare") }],
        ports: vec![port("a", "fa:16:3e:00:00:01", &[])],
        permitted_ethertypes: vec![0x88cc],
        ..Default::default()
    })
    .unwrap();
    let names: Vec<&str> = m.networks.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, vec!["spare", "default"]);
    assert_eq!(m.permitted_ethertypes, vec![0x88cc]);

    let mut spec = ModelSpec {
        networks: vec![NetworkSpec { name: s("n") }, NetworkSpec { name: s("n") }],
        permitted_ethertypes: vec![0x0800, 0x05dc, 0x88cc, 0x88cc],
        ..Default::default()
    };
    spec.conntrack.capacity = 0;
    spec.conntrack.udp_timeout = 0;
    let e = validate_model(&spec).unwrap_err();
    let paths: Vec<String> = e.errors().iter().map(|e| e.path.to_string()).collect();
    assert_eq!(
        paths,
        vec![
            "networks[1].name",
            "permitted_ethertypes[0]",
            "permitted_ethertypes[1]",
            "permitted_ethertypes[3]",
            "conntrack.capacity",
            "conntrack.udp_timeout"
        ]
    );
}

#[test]
fn every_problem_is_reported_with_context() {
    let mut bad_rule = ports(proto(ingress(), "tcp"), Some(0), None);
    bad_rule.ethertype = s("ipv5");
    bad_rule.remote_group = s("ghost");
    let e = validate_model(&ModelSpec {
        security_groups: vec![group("g", Some(vec![egress(), bad_rule]))],
        ports: vec![port("p", "zz", &["x"])],
        ..Default::default()
    })
    .unwrap_err();
    let lines: Vec<String> = e.errors().iter().map(|e| e.to_string()).collect();
    assert_eq!(lines.len(), 6, "{e}");
    for l in &lines[..4] {
        assert!(l.starts_with("security_groups[0].rules[1]."), "{l}");
        assert!(l.contains("(group \"g\", rule 1)"), "{l}");
    }
    assert!(lines.iter().any(|l| l.contains(".ethertype ")));
    assert!(lines.iter().any(|l| l.contains(".port_range_min ")));
    assert!(lines.iter().any(|l| l.contains(".port_range_max ")));
    assert!(lines.iter().any(|l| l.contains(".remote_group ")));
    assert!(
        lines[4].starts_with("ports[0].mac (port \"p\")"),
        "{}",
        lines[4]
    );
    assert!(
        lines[5].starts_with("ports[0].fixed_ips[0] (port \"p\")"),
        "{}",
        lines[5]
    );
    // Display of the collection: one line per problem.
    assert_eq!(e.to_string().lines().count(), 6);
}

#[test]
fn validate_port_against_a_model() {
    let m = model_with_ports(vec![port("a", "fa:16:3e:00:00:01", &["10.0.0.1"])]).unwrap();
    let p = validate_port(&m, &port("b", "fa:16:3e:00:00:02", &["10.0.0.2"])).unwrap();
    assert_eq!(p.security_groups, vec!["default"]);
    let e = validate_port(&m, &port("a", "fa:16:3e:00:00:01", &["10.0.0.1"])).unwrap_err();
    let ks = kinds(&e);
    assert_eq!(ks.len(), 3, "{e}");
    assert!(matches!(
        ks[0],
        ErrorKind::DuplicatePortName { first: 0, .. }
    ));
    assert!(matches!(ks[1], ErrorKind::DuplicateMac { .. }));
    assert!(matches!(ks[2], ErrorKind::IpInUse { .. }));
    assert_eq!(e.errors()[0].path.to_string(), "ports[1].name");
}

#[test]
fn effective_rule_counts() {
    let mut p = port("a", "fa:16:3e:00:00:01", &["10.0.0.1"]);
    p.security_groups = Some(vec!["default".into(), "web".into()]);
    let m = model_with_ports(vec![p]).unwrap();
    // default: 2 ingress + 2 egress; web: 2 egress.
    assert_eq!(m.effective_rule_counts(m.port("a").unwrap()), (2, 4));
}
