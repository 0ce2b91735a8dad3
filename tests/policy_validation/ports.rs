//! Ports: names, MAC addresses, fixed IPs, allowed address pairs and backends.

use super::*;

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
        queues: None,
    });
    let mut c = port("c", "fa:16:3e:00:00:03", &[]);
    // Same name in another namespace: fine.
    c.backend = Some(BackendSpec::Tap {
        ifname: s("tap-b"),
        netns: None,
        vnet_hdr: Some(true),
        queues: None,
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
fn tap_queues_default_one_and_bounded() {
    let tap = |queues: Option<u16>| {
        let mut p = port("q", "fa:16:3e:00:00:0a", &[]);
        p.backend = Some(BackendSpec::Tap {
            ifname: s("tap-q"),
            netns: None,
            vnet_hdr: None,
            queues,
        });
        model_with_ports(vec![p])
    };
    let queues = |m: &sgswitch::policy::Model| match &m.ports[0].backend {
        Some(sgswitch::policy::Backend::Tap { queues, .. }) => *queues,
        b => panic!("not a tap: {b:?}"),
    };
    assert_eq!(queues(&tap(None).unwrap()), 1, "default: one queue");
    assert_eq!(queues(&tap(Some(2)).unwrap()), 2);
    assert_eq!(
        queues(&tap(Some(256)).unwrap()),
        256,
        "the kernel's maximum"
    );
    for bad in [0, 257] {
        let e = tap(Some(bad)).unwrap_err();
        assert_eq!(
            e.errors()[0].path.to_string(),
            "ports[0].backend.queues",
            "{e}"
        );
        assert!(
            matches!(e.errors()[0].kind, ErrorKind::OutOfRange { value, .. } if value == u64::from(bad)),
            "{e}"
        );
    }
}
