//! The rest of a model: address groups, networks, switch-wide settings, how every problem
//! is reported, one port against a model, and effective rule counts.

use super::*;

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
        networks: vec![NetworkSpec {
            name: s("spare"),
            ..Default::default()
        }],
        ports: vec![port("a", "fa:16:3e:00:00:01", &[])],
        permitted_ethertypes: vec![0x88cc],
        ..Default::default()
    })
    .unwrap();
    let names: Vec<&str> = m.networks.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, vec!["spare", "default"]);
    assert_eq!(m.permitted_ethertypes, vec![0x88cc]);

    let mut spec = ModelSpec {
        networks: vec![
            NetworkSpec {
                name: s("n"),
                ..Default::default()
            },
            NetworkSpec {
                name: s("n"),
                ..Default::default()
            },
        ],
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
