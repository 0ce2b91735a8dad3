//! §3 items 14-20: port ranges, ICMP type and code, remote prefixes, remote references,
//! direction and ethertype, and duplicate rules.

use super::*;

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
