//! Unit tests of the classifier semantics, each checked on both implementations
//! (`admitting`: the rule that admits, [`Classifier::admitting_rule`]).

mod admitting;

use std::net::IpAddr;

use super::*;
use crate::flow::{proto, FAMILY_V4, FAMILY_V6};
use crate::policy::{
    AddressGroup, AllowedAddressPair, EtherType, Model, Network, Port, Remote, Rule, RuleRef,
    SecurityGroup,
};

fn rule(
    dir: Direction,
    et: EtherType,
    p: Option<u8>,
    min: Option<u16>,
    max: Option<u16>,
    remote: Remote,
) -> Rule {
    Rule {
        direction: dir,
        ethertype: et,
        protocol: p,
        protocol_zero: false,
        port_range_min: min,
        port_range_max: max,
        remote,
        remote_ip_prefix_raw: None,
        description: String::new(),
    }
}

fn group(name: &str, rules: Vec<Rule>) -> SecurityGroup {
    SecurityGroup {
        name: name.into(),
        description: String::new(),
        stateful: true,
        rules,
    }
}

fn port(name: &str, ips: &[&str], groups: &[&str]) -> Port {
    Port {
        name: name.into(),
        network: "n".into(),
        mac: crate::wire::Mac([2, 0, 0, 0, 0, 1]),
        fixed_ips: ips.iter().map(|s| s.parse().unwrap()).collect(),
        security_groups: groups.iter().map(|s| s.to_string()).collect(),
        port_security: true,
        allowed_address_pairs: Vec::new(),
        backend: None,
        host: None,
    }
}

fn model(groups: Vec<SecurityGroup>, ports: Vec<Port>) -> Model {
    Model {
        security_groups: groups,
        ports,
        networks: vec![Network {
            name: "n".into(),
            ..Default::default()
        }],
        ..Model::default()
    }
}

fn key(src: &str, dst: &str, p: u8, dport: u16) -> FlowKey {
    let s: IpAddr = src.parse().unwrap();
    let d: IpAddr = dst.parse().unwrap();
    let (src, dst, family) = match (s, d) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (
            FlowKey::map_v4(a.octets()),
            FlowKey::map_v4(b.octets()),
            FAMILY_V4,
        ),
        (IpAddr::V6(a), IpAddr::V6(b)) => (a.octets(), b.octets(), FAMILY_V6),
        _ => panic!("mixed families"),
    };
    FlowKey {
        src,
        dst,
        sport: 40000,
        dport,
        proto: p,
        family,
        _pad: [0; 2],
    }
}

fn net(s: &str) -> Remote {
    Remote::Prefix(s.parse().unwrap())
}

/// Check `allows` on both implementations (and the burst path) against `expect`, and
/// that both name the same admitting rule, present iff allowed (ports with port security).
fn check(m: &Model, port: usize, dir: Direction, k: &FlowKey, expect: bool) {
    let c = CompiledPolicy::compile(m, 1);
    let l = LinearPolicy::new(m, 1);
    assert_eq!(Classifier::allows(&l, port, dir, k), expect, "linear {k:?}");
    assert_eq!(c.allows(port, dir, k), expect, "compiled {k:?}");
    let mut out = [!expect; 3];
    c.classify_burst(port, dir, &[*k, *k, *k], &mut out);
    assert_eq!(out, [expect; 3], "burst {k:?}");
    let rule = l.admitting_rule(port, dir, k);
    assert_eq!(c.admitting_rule(port, dir, k), rule, "compiled rule {k:?}");
    if c.port_security(port) {
        assert_eq!(rule.is_some(), expect, "rule iff allowed {k:?}");
    } else {
        assert_eq!(rule, None, "port security off: no rule {k:?}");
    }
    if let Some(r) = rule {
        let (_, found) = r.resolve(m).expect("rule in the model");
        assert_eq!(found.direction, dir);
    }
}

use Direction::{Egress, Ingress};
use EtherType::{IPv4, IPv6};

#[test]
fn port_ranges_and_boundaries() {
    let m = model(
        vec![group(
            "g",
            vec![
                rule(
                    Ingress,
                    IPv4,
                    Some(proto::TCP),
                    Some(22),
                    Some(22),
                    Remote::Any,
                ),
                rule(
                    Ingress,
                    IPv4,
                    Some(proto::UDP),
                    Some(1),
                    Some(1000),
                    Remote::Any,
                ),
                rule(
                    Ingress,
                    IPv4,
                    Some(proto::SCTP),
                    Some(65535),
                    Some(65535),
                    Remote::Any,
                ),
            ],
        )],
        vec![port("p", &["10.0.0.1"], &["g"])],
    );
    let k = |p, d| key("1.2.3.4", "10.0.0.1", p, d);
    check(&m, 0, Ingress, &k(proto::TCP, 22), true);
    check(&m, 0, Ingress, &k(proto::TCP, 21), false);
    check(&m, 0, Ingress, &k(proto::TCP, 23), false);
    check(&m, 0, Ingress, &k(proto::UDP, 0), false);
    check(&m, 0, Ingress, &k(proto::UDP, 1), true);
    check(&m, 0, Ingress, &k(proto::UDP, 1000), true);
    check(&m, 0, Ingress, &k(proto::UDP, 1001), false);
    check(&m, 0, Ingress, &k(proto::SCTP, 65535), true);
    check(&m, 0, Ingress, &k(proto::SCTP, 65534), false);
    // Wrong direction, protocol, family.
    check(
        &m,
        0,
        Egress,
        &key("10.0.0.1", "1.2.3.4", proto::TCP, 22),
        false,
    );
    check(&m, 0, Ingress, &k(proto::DCCP, 22), false);
    check(&m, 0, Ingress, &key("::1", "::2", proto::TCP, 22), false);
}

#[test]
fn icmp_type_and_code() {
    let m = model(
        vec![group(
            "g",
            vec![
                rule(Ingress, IPv4, Some(proto::ICMP), Some(8), None, Remote::Any),
                rule(
                    Ingress,
                    IPv4,
                    Some(proto::ICMP),
                    Some(3),
                    Some(4),
                    Remote::Any,
                ),
                rule(Ingress, IPv6, Some(proto::ICMPV6), None, None, Remote::Any),
                // ICMP type 1 on IPv6 is proto 1 = not ICMPv6: port fields ignored.
                rule(
                    Ingress,
                    IPv6,
                    Some(proto::ICMP),
                    Some(200),
                    Some(7),
                    Remote::Any,
                ),
            ],
        )],
        vec![port("p", &["10.0.0.1"], &["g"])],
    );
    let icmp = |t: u16, c: u16| key("1.1.1.1", "10.0.0.1", proto::ICMP, (t << 8) | c);
    check(&m, 0, Ingress, &icmp(8, 0), true);
    check(&m, 0, Ingress, &icmp(8, 255), true);
    check(&m, 0, Ingress, &icmp(7, 255), false);
    check(&m, 0, Ingress, &icmp(9, 0), false);
    check(&m, 0, Ingress, &icmp(3, 4), true);
    check(&m, 0, Ingress, &icmp(3, 3), false);
    check(&m, 0, Ingress, &icmp(3, 5), false);
    check(&m, 0, Ingress, &icmp(0, 0), false);
    for (k, want) in [
        (key("::1", "::2", proto::ICMPV6, 0x8000), true),
        (key("::1", "::2", proto::ICMP, 0x0102), true),
        // v4 ICMP rules never match v6 keys and vice versa.
        (key("::1", "::2", proto::TCP, 0x0800), false),
    ] {
        check(&m, 0, Ingress, &k, want);
    }
}

#[test]
fn remote_prefixes_nested() {
    let m = model(
        vec![group(
            "g",
            vec![
                rule(
                    Ingress,
                    IPv4,
                    Some(proto::TCP),
                    Some(80),
                    Some(80),
                    net("10.0.0.0/8"),
                ),
                rule(
                    Ingress,
                    IPv4,
                    Some(proto::TCP),
                    Some(443),
                    Some(443),
                    net("10.1.0.0/16"),
                ),
                rule(Ingress, IPv4, None, None, None, net("10.1.2.3/32")),
                rule(
                    Ingress,
                    IPv6,
                    Some(proto::UDP),
                    None,
                    None,
                    net("2001:db8::/32"),
                ),
            ],
        )],
        vec![port("p", &["192.168.0.1"], &["g"])],
    );
    let k = |s: &str, p, d| key(s, "192.168.0.1", p, d);
    check(&m, 0, Ingress, &k("10.9.9.9", proto::TCP, 80), true);
    check(&m, 0, Ingress, &k("10.9.9.9", proto::TCP, 443), false);
    check(&m, 0, Ingress, &k("10.1.9.9", proto::TCP, 443), true);
    check(&m, 0, Ingress, &k("10.1.9.9", proto::TCP, 80), true);
    check(&m, 0, Ingress, &k("10.1.2.3", proto::GRE, 0), true);
    check(&m, 0, Ingress, &k("10.1.2.4", proto::GRE, 0), false);
    check(&m, 0, Ingress, &k("11.0.0.0", proto::TCP, 80), false);
    check(&m, 0, Ingress, &k("9.255.255.255", proto::TCP, 80), false);
    check(&m, 0, Ingress, &k("10.255.255.255", proto::TCP, 80), true);
    for (k, want) in [
        (key("2001:db8:ffff::1", "2001::1", proto::UDP, 9), true),
        (key("2001:db9::1", "2001::1", proto::UDP, 9), false),
    ] {
        check(&m, 0, Ingress, &k, want);
    }
}

#[test]
fn egress_matches_destination() {
    let m = model(
        vec![group(
            "g",
            vec![rule(
                Egress,
                IPv4,
                Some(proto::TCP),
                None,
                None,
                net("8.8.8.0/24"),
            )],
        )],
        vec![port("p", &["10.0.0.1"], &["g"])],
    );
    for (dir, k, want) in [
        (Egress, key("10.0.0.1", "8.8.8.8", proto::TCP, 5), true),
        (Egress, key("8.8.8.8", "10.0.0.1", proto::TCP, 5), false),
        (Ingress, key("8.8.8.8", "10.0.0.1", proto::TCP, 5), false),
    ] {
        check(&m, 0, dir, &k, want);
    }
}

#[test]
fn remote_groups_and_address_groups() {
    let mut member = port("m", &["10.0.0.5", "2001:db8::5"], &["web"]);
    member.allowed_address_pairs.push(AllowedAddressPair {
        ip_address: "172.16.0.0/12".parse().unwrap(),
        mac_address: None,
    });
    let mut insecure = port("i", &["10.0.0.6"], &["web"]);
    insecure.port_security = false;
    let mut m = model(
        vec![
            group(
                "db",
                vec![
                    rule(
                        Ingress,
                        IPv4,
                        Some(proto::TCP),
                        Some(5432),
                        Some(5432),
                        Remote::Group("web".into()),
                    ),
                    rule(
                        Ingress,
                        IPv6,
                        Some(proto::TCP),
                        Some(5432),
                        Some(5432),
                        Remote::Group("web".into()),
                    ),
                    rule(
                        Ingress,
                        IPv4,
                        Some(proto::UDP),
                        None,
                        None,
                        Remote::Group("empty".into()),
                    ),
                    rule(
                        Ingress,
                        IPv4,
                        Some(proto::TCP),
                        Some(22),
                        Some(22),
                        Remote::AddressGroup("admins".into()),
                    ),
                ],
            ),
            group("web", vec![]),
            group("empty", vec![]),
        ],
        vec![port("db", &["10.0.0.9"], &["db"]), member, insecure],
    );
    m.address_groups.push(AddressGroup {
        name: "admins".into(),
        description: String::new(),
        addresses: vec![
            "192.0.2.0/24".parse().unwrap(),
            "198.51.100.7/32".parse().unwrap(),
        ],
    });
    let k = |s: &str, p, d| key(s, "10.0.0.9", p, d);
    check(&m, 0, Ingress, &k("10.0.0.5", proto::TCP, 5432), true);
    check(&m, 0, Ingress, &k("10.0.0.6", proto::TCP, 5432), true);
    check(&m, 0, Ingress, &k("10.0.0.7", proto::TCP, 5432), false);
    check(&m, 0, Ingress, &k("172.20.1.1", proto::TCP, 5432), true);
    check(&m, 0, Ingress, &k("172.32.0.0", proto::TCP, 5432), false);
    check(
        &m,
        0,
        Ingress,
        &key("2001:db8::5", "2001:db8::9", proto::TCP, 5432),
        true,
    );
    check(
        &m,
        0,
        Ingress,
        &key("2001:db8::6", "2001:db8::9", proto::TCP, 5432),
        false,
    );
    check(&m, 0, Ingress, &k("10.0.0.5", proto::UDP, 53), false);
    check(&m, 0, Ingress, &k("192.0.2.200", proto::TCP, 22), true);
    check(&m, 0, Ingress, &k("198.51.100.7", proto::TCP, 22), true);
    check(&m, 0, Ingress, &k("198.51.100.8", proto::TCP, 22), false);
    // The member port has the group "web" with no rule: denies everything.
    check(&m, 1, Ingress, &k("10.0.0.9", proto::TCP, 5432), false);
    // port_security = false allows everything.
    check(&m, 2, Ingress, &k("1.1.1.1", proto::TCP, 1), true);
}

#[test]
fn port_flags_counts_and_sharing() {
    let mut stateless = group(
        "sl",
        vec![rule(Ingress, IPv4, None, None, None, Remote::Any)],
    );
    stateless.stateful = false;
    let mut off = port("off", &[], &[]);
    off.port_security = false;
    let m = model(
        vec![
            group(
                "a",
                vec![
                    rule(Ingress, IPv4, Some(6), None, None, Remote::Any),
                    rule(Egress, IPv4, None, None, None, Remote::Any),
                    rule(Egress, IPv6, None, None, None, Remote::Any),
                ],
            ),
            group(
                "b",
                vec![rule(Ingress, IPv6, Some(17), None, None, Remote::Any)],
            ),
            stateless,
        ],
        vec![
            port("p0", &[], &["a", "b"]),
            port("p1", &[], &["b", "a"]),
            port("p2", &[], &["a"]),
            port("p3", &[], &[]),
            off,
            port("p5", &[], &["sl"]),
        ],
    );
    let c = CompiledPolicy::compile(&m, 42);
    let l = LinearPolicy::new(&m, 42);
    let both: [&dyn Classifier; 2] = [&c, &l];
    for x in both {
        assert_eq!(x.epoch(), 42);
        assert_eq!(x.rule_count(0, Ingress), 2);
        assert_eq!(x.rule_count(0, Egress), 2);
        assert_eq!(x.rule_count(2, Ingress), 1);
        assert_eq!(x.rule_count(3, Ingress), 0);
        assert_eq!(x.rule_count(99, Ingress), 0);
        assert!(x.is_stateful(0) && x.is_stateful(3) && !x.is_stateful(5));
        assert!(x.port_security(0) && !x.port_security(4) && x.port_security(99));
        let k = key("1.1.1.1", "2.2.2.2", 6, 1);
        assert!(x.allows(0, Ingress, &k));
        assert!(!x.allows(3, Ingress, &k), "no group denies");
        assert!(x.allows(4, Ingress, &k), "port security off allows");
        assert!(!x.allows(99, Ingress, &k), "unknown port denies");
    }
    assert!(c.shares_structure(0, 1));
    assert!(!c.shares_structure(0, 2));
    assert_eq!(c.stats().distinct_group_sets, 3);
    assert_eq!(c.stats().ports, 6);
}

#[test]
fn odd_keys_and_buffers_never_panic() {
    let m = model(
        vec![group(
            "g",
            vec![rule(Ingress, IPv4, None, None, None, Remote::Any)],
        )],
        vec![port("p", &[], &["g"])],
    );
    let c = CompiledPolicy::compile(&m, 1);
    let mut k = key("1.1.1.1", "2.2.2.2", 6, 1);
    k.family = 0;
    assert!(!c.allows(0, Ingress, &k));
    k.family = 5;
    assert!(!c.allows(0, Ingress, &k));
    let keys = [key("1.1.1.1", "2.2.2.2", 6, 1); 40];
    let mut out = [false; 10];
    c.classify_burst(0, Ingress, &keys, &mut out);
    assert_eq!(out, [true; 10]);
    let mut out = [false; 50];
    c.classify_burst(0, Ingress, &keys, &mut out);
    assert!(out[..40].iter().all(|&b| b) && out[40..].iter().all(|&b| !b));
    c.classify_burst(7, Ingress, &keys, &mut out);
    assert!(out[..40].iter().all(|&b| !b));
}

#[test]
fn invalid_fields_are_deny_leaning() {
    let m = model(
        vec![group(
            "g",
            vec![
                rule(Ingress, IPv4, Some(6), Some(90), Some(80), Remote::Any),
                rule(Ingress, IPv4, Some(17), Some(53), None, Remote::Any),
                rule(Ingress, IPv4, Some(1), Some(300), None, Remote::Any),
                rule(Ingress, IPv4, Some(1), Some(3), Some(256), Remote::Any),
                // A v6 prefix on an IPv4 rule matches nothing.
                rule(Ingress, IPv4, Some(47), None, None, net("::/0")),
                rule(
                    Ingress,
                    IPv4,
                    Some(50),
                    None,
                    None,
                    Remote::Group("nope".into()),
                ),
            ],
        )],
        vec![port("p", &[], &["g"])],
    );
    let k = |p, d| key("1.1.1.1", "2.2.2.2", p, d);
    check(&m, 0, Ingress, &k(6, 85), false);
    check(&m, 0, Ingress, &k(17, 53), true);
    check(&m, 0, Ingress, &k(17, 54), false);
    check(&m, 0, Ingress, &k(1, 300), false);
    check(&m, 0, Ingress, &k(1, 0x0300), false);
    check(&m, 0, Ingress, &k(47, 0), false);
    check(&m, 0, Ingress, &k(50, 0), false);
}

#[test]
fn large_remote_group_is_an_interval_search() {
    let members: Vec<Port> = (0..5000u32)
        .map(|i| {
            let a = std::net::Ipv4Addr::from(0x0a00_0000 + i * 3);
            port(&format!("m{i}"), &[&a.to_string()], &["members"])
        })
        .collect();
    let mut ports = vec![port("target", &["192.168.0.1"], &["t"])];
    ports.extend(members);
    let m = model(
        vec![
            group(
                "t",
                vec![rule(
                    Ingress,
                    IPv4,
                    Some(6),
                    Some(443),
                    Some(443),
                    Remote::Group("members".into()),
                )],
            ),
            group("members", vec![]),
        ],
        ports,
    );
    let c = CompiledPolicy::compile(&m, 1);
    let l = LinearPolicy::new(&m, 1);
    for i in 0..15_000u32 {
        let a = std::net::Ipv4Addr::from(0x0a00_0000 + i);
        let k = key(&a.to_string(), "192.168.0.1", 6, 443);
        let expect = i % 3 == 0 && i < 15_000;
        assert_eq!(c.allows(0, Ingress, &k), expect, "{a}");
        let rule = expect.then_some(RuleRef { group: 0, rule: 0 });
        assert_eq!(c.admitting_rule(0, Ingress, &k), rule, "{a}");
        if i % 97 == 0 {
            assert_eq!(l.allows(0, Ingress, &k), expect, "{a}");
            assert_eq!(l.admitting_rule(0, Ingress, &k), rule, "{a}");
        }
    }
    // One bucket (tcp) + the any bucket per family/direction; 2 intervals per member.
    assert!(c.stats().intervals >= 10_000);
}

/// `Model::remote_members` (members bound on other hosts) join the local member ports'
/// addresses in a `Remote::Group` set, on both implementations; members of a group the
/// model does not have, or of a group no rule references, change nothing.
#[test]
fn remote_members_join_the_group_set() {
    let mut m = model(
        vec![
            group(
                "web",
                vec![
                    rule(
                        Ingress,
                        IPv4,
                        Some(6),
                        Some(22),
                        Some(22),
                        Remote::Group("db".into()),
                    ),
                    rule(
                        Ingress,
                        IPv6,
                        Some(6),
                        Some(22),
                        Some(22),
                        Remote::Group("db".into()),
                    ),
                ],
            ),
            group("db", vec![]),
        ],
        vec![
            port("w", &["10.0.0.1"], &["web"]),
            port("d", &["10.0.0.2"], &["db"]),
        ],
    );
    let tcp = |src: &str, dst: &str| key(src, dst, 6, 22);
    check(&m, 0, Ingress, &tcp("10.0.0.2", "10.0.0.1"), true);
    check(&m, 0, Ingress, &tcp("10.9.0.7", "10.0.0.1"), false);
    check(&m, 0, Ingress, &tcp("fd00::9", "fd00::1"), false);
    m.remote_members.insert(
        "db".into(),
        vec![
            "10.9.0.7/32".parse().unwrap(),
            "172.16.0.0/24".parse().unwrap(),
            "fd00::9/128".parse().unwrap(),
        ],
    );
    m.remote_members
        .insert("ghost".into(), vec!["10.7.7.7/32".parse().unwrap()]);
    m.remote_members
        .insert("web".into(), vec!["10.8.8.8/32".parse().unwrap()]);
    check(&m, 0, Ingress, &tcp("10.0.0.2", "10.0.0.1"), true);
    check(&m, 0, Ingress, &tcp("10.9.0.7", "10.0.0.1"), true);
    check(&m, 0, Ingress, &tcp("172.16.0.200", "10.0.0.1"), true);
    check(&m, 0, Ingress, &tcp("fd00::9", "fd00::1"), true);
    check(&m, 0, Ingress, &tcp("10.9.0.8", "10.0.0.1"), false);
    check(&m, 0, Ingress, &tcp("10.7.7.7", "10.0.0.1"), false);
    check(&m, 0, Ingress, &tcp("10.8.8.8", "10.0.0.1"), false);
}
