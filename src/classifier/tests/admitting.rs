//! Unit tests of [`Classifier::admitting_rule`] on both implementations: the first
//! matching rule in model order, where rules overlap on ports, remotes, protocols and
//! groups. Every `check_rule` also runs the `allows` checks of `super::check`.

use super::*;

/// Check the admitting rule on both implementations against `(group index, rule index)`.
fn check_rule(m: &Model, port: usize, dir: Direction, k: &FlowKey, expect: Option<(u32, u32)>) {
    check(m, port, dir, k, expect.is_some());
    let want = expect.map(|(group, rule)| RuleRef { group, rule });
    let c = CompiledPolicy::compile(m, 1);
    assert_eq!(c.admitting_rule(port, dir, k), want, "compiled {k:?}");
    let l = LinearPolicy::new(m, 1);
    assert_eq!(l.admitting_rule(port, dir, k), want, "linear {k:?}");
}

/// The first matching rule in model order: groups by their index in the model (not the
/// order a port lists them, not by name), then rules by index, both directions counted.
#[test]
fn admitting_rule_is_the_first_in_model_order() {
    let tcp = |min, max, remote| rule(Ingress, IPv4, Some(proto::TCP), min, max, remote);
    let m = model(
        vec![
            group(
                "zeta",
                vec![
                    rule(Egress, IPv4, None, None, None, Remote::Any),
                    tcp(Some(80), Some(80), Remote::Any),
                ],
            ),
            group(
                "alpha",
                vec![
                    tcp(Some(80), Some(80), Remote::Any),
                    tcp(Some(1000), Some(2000), Remote::Any),
                    tcp(None, None, Remote::Any),
                    tcp(Some(1500), Some(1500), Remote::Any),
                ],
            ),
        ],
        vec![
            port("both", &["10.0.0.1"], &["alpha", "zeta"]),
            port("alpha", &["10.0.0.2"], &["alpha"]),
            port("twice", &["10.0.0.3"], &["zeta", "alpha", "zeta"]),
        ],
    );
    let k = |d| key("1.1.1.1", "10.0.0.1", proto::TCP, d);
    for p in [0, 2] {
        check_rule(&m, p, Ingress, &k(80), Some((0, 1)));
        check_rule(&m, p, Ingress, &k(1500), Some((1, 1)));
        check_rule(&m, p, Ingress, &k(999), Some((1, 2)));
        check_rule(&m, p, Ingress, &k(2001), Some((1, 2)));
        check_rule(&m, p, Egress, &k(7), Some((0, 0)));
    }
    check_rule(&m, 1, Ingress, &k(80), Some((1, 0)));
    check_rule(&m, 1, Ingress, &k(1000), Some((1, 1)));
    check_rule(&m, 1, Egress, &k(7), None);
    check_rule(&m, 1, Ingress, &key("::1", "::2", proto::TCP, 80), None);
    let c = CompiledPolicy::compile(&m, 1);
    assert!(c.shares_structure(0, 2));
    let r = c.admitting_rule(0, Ingress, &k(1500)).unwrap();
    let (g, found) = r.resolve(&m).unwrap();
    assert_eq!(
        (g.name.as_str(), found.port_range_min),
        ("alpha", Some(1000))
    );
    assert_eq!(RuleRef { group: 9, rule: 0 }.resolve(&m), None);
    assert_eq!(RuleRef { group: 1, rule: 4 }.resolve(&m), None);
}

/// Nested remotes with the same ports: the address decides which rule is first, though
/// both give the same `allows` class (the case the attribution index exists for).
#[test]
fn admitting_rule_nested_remotes_and_dead_rules() {
    let tcp = |remote| {
        rule(
            Ingress,
            IPv4,
            Some(proto::TCP),
            Some(443),
            Some(443),
            remote,
        )
    };
    let m = model(
        vec![
            group(
                "narrow_first",
                vec![tcp(net("10.1.0.0/16")), tcp(net("10.0.0.0/8"))],
            ),
            group(
                "wide_first",
                vec![tcp(net("10.0.0.0/8")), tcp(net("10.1.0.0/16"))],
            ),
        ],
        vec![
            port("a", &["192.168.0.1"], &["narrow_first"]),
            port("b", &["192.168.0.2"], &["wide_first"]),
        ],
    );
    let k = |s: &str, d| key(s, "192.168.0.1", proto::TCP, d);
    check_rule(&m, 0, Ingress, &k("10.1.2.3", 443), Some((0, 0)));
    check_rule(&m, 0, Ingress, &k("10.1.255.255", 443), Some((0, 0)));
    check_rule(&m, 0, Ingress, &k("10.2.0.0", 443), Some((0, 1)));
    check_rule(&m, 0, Ingress, &k("10.0.255.255", 443), Some((0, 1)));
    check_rule(&m, 0, Ingress, &k("10.1.2.3", 444), None);
    check_rule(&m, 0, Ingress, &k("11.0.0.0", 443), None);
    // The /16 after the /8 is never the first: a dead rule.
    for s in ["10.1.2.3", "10.2.0.0", "10.255.255.255"] {
        check_rule(&m, 1, Ingress, &k(s, 443), Some((1, 0)));
    }
}

/// Protocol any (and protocol 0) before and after specific rules, ICMP type/code against
/// type-only against any ICMP, IPv4 against IPv6.
#[test]
fn admitting_rule_protocols_icmp_and_families() {
    let mut zero = rule(Ingress, IPv4, None, None, None, net("10.0.0.0/8"));
    zero.protocol_zero = true;
    let m = model(
        vec![group(
            "g",
            vec![
                rule(Ingress, IPv6, Some(proto::TCP), None, None, Remote::Any),
                rule(
                    Ingress,
                    IPv4,
                    Some(proto::TCP),
                    Some(22),
                    Some(22),
                    Remote::Any,
                ),
                zero,
                rule(
                    Ingress,
                    IPv4,
                    Some(proto::UDP),
                    Some(53),
                    Some(53),
                    Remote::Any,
                ),
                rule(
                    Ingress,
                    IPv4,
                    Some(proto::ICMP),
                    Some(8),
                    Some(0),
                    Remote::Any,
                ),
                rule(Ingress, IPv4, Some(proto::ICMP), Some(8), None, Remote::Any),
                rule(Ingress, IPv4, Some(proto::ICMP), None, None, Remote::Any),
                rule(Ingress, IPv4, None, None, None, Remote::Any),
                rule(
                    Ingress,
                    IPv6,
                    Some(proto::ICMPV6),
                    Some(128),
                    None,
                    Remote::Any,
                ),
                rule(Ingress, IPv6, None, None, None, net("2001:db8::/32")),
            ],
        )],
        vec![port("p", &["192.168.0.1"], &["g"])],
    );
    let k = |s: &str, p, d| key(s, "192.168.0.1", p, d);
    check_rule(&m, 0, Ingress, &k("10.0.0.1", proto::TCP, 22), Some((0, 1)));
    check_rule(&m, 0, Ingress, &k("10.0.0.1", proto::UDP, 53), Some((0, 2)));
    check_rule(&m, 0, Ingress, &k("11.0.0.1", proto::UDP, 53), Some((0, 3)));
    check_rule(&m, 0, Ingress, &k("11.0.0.1", proto::UDP, 54), Some((0, 7)));
    check_rule(&m, 0, Ingress, &k("10.0.0.1", proto::GRE, 0), Some((0, 2)));
    check_rule(&m, 0, Ingress, &k("11.0.0.1", proto::GRE, 0), Some((0, 7)));
    let icmp = |t: u16, c: u16| k("11.0.0.1", proto::ICMP, (t << 8) | c);
    check_rule(&m, 0, Ingress, &icmp(8, 0), Some((0, 4)));
    check_rule(&m, 0, Ingress, &icmp(8, 1), Some((0, 5)));
    check_rule(&m, 0, Ingress, &icmp(3, 3), Some((0, 6)));
    let v6 = |s: &str, p, d| key(s, "2001:db8::1", p, d);
    check_rule(
        &m,
        0,
        Ingress,
        &v6("2001:db9::1", proto::TCP, 22),
        Some((0, 0)),
    );
    check_rule(
        &m,
        0,
        Ingress,
        &v6("2001:db9::1", proto::ICMPV6, 128 << 8),
        Some((0, 8)),
    );
    check_rule(
        &m,
        0,
        Ingress,
        &v6("2001:db9::1", proto::ICMPV6, 129 << 8),
        None,
    );
    check_rule(
        &m,
        0,
        Ingress,
        &v6("2001:db8::1", proto::ICMPV6, 129 << 8),
        Some((0, 9)),
    );
    check_rule(
        &m,
        0,
        Ingress,
        &v6("2001:db8::1", proto::UDP, 53),
        Some((0, 9)),
    );
}

/// Remote groups (fixed IPs and allowed-address-pair CIDRs of members) and address groups
/// overlapping on addresses and ports.
#[test]
fn admitting_rule_remote_and_address_groups() {
    let mut member = port("m", &["10.0.0.5"], &["web"]);
    member.allowed_address_pairs.push(AllowedAddressPair {
        ip_address: "192.0.2.128/25".parse().unwrap(),
        mac_address: None,
    });
    let tcp = |min, max, remote| rule(Ingress, IPv4, Some(proto::TCP), min, max, remote);
    let mut m = model(
        vec![
            group(
                "db",
                vec![
                    tcp(Some(5432), Some(5432), Remote::Group("web".into())),
                    tcp(
                        Some(5000),
                        Some(6000),
                        Remote::AddressGroup("admins".into()),
                    ),
                    tcp(None, None, net("192.0.2.0/24")),
                ],
            ),
            group("web", vec![]),
        ],
        vec![port("db", &["10.0.0.9"], &["db"]), member],
    );
    m.address_groups.push(AddressGroup {
        name: "admins".into(),
        description: String::new(),
        addresses: vec![
            "192.0.2.0/24".parse().unwrap(),
            "10.0.0.5/32".parse().unwrap(),
        ],
    });
    let k = |s: &str, d| key(s, "10.0.0.9", proto::TCP, d);
    check_rule(&m, 0, Ingress, &k("10.0.0.5", 5432), Some((0, 0)));
    check_rule(&m, 0, Ingress, &k("10.0.0.5", 5433), Some((0, 1)));
    check_rule(&m, 0, Ingress, &k("10.0.0.5", 6001), None);
    check_rule(&m, 0, Ingress, &k("192.0.2.200", 5432), Some((0, 0)));
    check_rule(&m, 0, Ingress, &k("192.0.2.100", 5432), Some((0, 1)));
    check_rule(&m, 0, Ingress, &k("192.0.2.100", 22), Some((0, 2)));
    check_rule(&m, 0, Ingress, &k("192.0.3.1", 5432), None);
}

/// No rule is named where no rule decides: port security off, no group, unknown port, a
/// key of no family.
#[test]
fn admitting_rule_none_without_rules() {
    let mut off = port("off", &[], &[]);
    off.port_security = false;
    let m = model(
        vec![group(
            "g",
            vec![rule(Ingress, IPv4, None, None, None, Remote::Any)],
        )],
        vec![port("p", &[], &["g"]), port("none", &[], &[]), off],
    );
    let k = key("1.1.1.1", "2.2.2.2", proto::TCP, 1);
    check_rule(&m, 0, Ingress, &k, Some((0, 0)));
    check_rule(&m, 1, Ingress, &k, None);
    check(&m, 2, Ingress, &k, true);
    let c = CompiledPolicy::compile(&m, 1);
    let l = LinearPolicy::new(&m, 1);
    for x in [&c as &dyn Classifier, &l] {
        assert_eq!(x.admitting_rule(2, Ingress, &k), None, "port security off");
        assert_eq!(x.admitting_rule(9, Ingress, &k), None, "unknown port");
    }
    let mut odd = k;
    odd.family = 5;
    assert_eq!(c.admitting_rule(0, Ingress, &odd), None);
}
