//! §2 Defaults (items 7-9): the default group and its four rules, the two egress rules
//! of every other group, and statefulness.

use super::*;

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
