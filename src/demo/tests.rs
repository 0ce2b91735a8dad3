//! Unit tests of the demo: its config, names, cases, and the counter explanations.

use sgswitch::flow::DropReason;
use sgswitch::lab::switch::{parse_drops, Drops};

use super::output::explain;
use super::scenario::{config_text, CASES, INSTANCES, NS_PREFIX};
use super::DemoBackend;

/// The counter parser with the switch's drop reason names, as the demo runs it.
fn parse_drop_counters(text: &str, ports: &[&str]) -> Drops {
    let reasons: Vec<&str> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
    parse_drops(text, ports, &reasons)
}

#[test]
fn demo_config_is_valid_for_every_backend() {
    for b in [DemoBackend::Tap, DemoBackend::Afxdp, DemoBackend::Afpacket] {
        let c = sgswitch::control::config::parse_str(&config_text(b), "demo.toml")
            .unwrap_or_else(|e| panic!("{b:?}: {e}"));
        assert_eq!(c.model.ports.len(), 4);
        let rtr = c.model.ports.iter().find(|p| p.name == "router").unwrap();
        assert!(!rtr.port_security);
        let db = c.model.ports.iter().find(|p| p.name == "db").unwrap();
        assert_eq!(db.security_groups, vec!["db".to_string()]);
        for p in &c.model.ports {
            assert!(p.backend.is_some(), "{b:?}: {} has no backend", p.name);
            assert_eq!(p.fixed_ips.len(), 2);
        }
        if b == DemoBackend::Tap {
            assert!(matches!(
                &db.backend,
                Some(sgswitch::policy::Backend::Tap { netns: Some(n), vnet_hdr: true, .. }) if n == "sgs-demo-db"
            ));
        }
    }
}

#[test]
fn names_fit_the_kernel_limits() {
    for i in &INSTANCES {
        assert!(i.link.len() <= 15, "{}", i.link);
        assert!(i.ns.starts_with(NS_PREFIX));
        assert!(i.link.starts_with("sgsd-"));
    }
}

#[test]
fn every_case_is_consistent() {
    for c in &CASES {
        assert_ne!(c.from, c.to);
        assert!(c.from < INSTANCES.len() && c.to < INSTANCES.len());
        assert!(!c.rule.is_empty());
    }
    // Both outcomes are shown.
    assert!(CASES.iter().any(|c| c.expect_pass));
    assert!(CASES.iter().any(|c| !c.expect_pass));
}

#[test]
fn counters_parse_from_several_layouts() {
    let ports = ["web-1", "db"];
    let a = "counters:\n port db: rx 10 tx 3\n   ingress-denied 4\n   egress-denied=2\n\
             port web-1 rx=5 tx=5 spoofed-ip=1\n";
    let m = parse_drop_counters(a, &ports);
    assert_eq!(
        m.get(&("db".to_string(), "ingress-denied".to_string())),
        Some(&4)
    );
    assert_eq!(
        m.get(&("db".to_string(), "egress-denied".to_string())),
        Some(&2)
    );
    assert_eq!(
        m.get(&("web-1".to_string(), "spoofed-ip".to_string())),
        Some(&1)
    );
    let b = "sgswitch: counters port=db dropped{ingress-denied: 7, invalid-state: 1}";
    let m = parse_drop_counters(b, &ports);
    assert_eq!(
        m.get(&("db".to_string(), "ingress-denied".to_string())),
        Some(&7)
    );
    assert_eq!(
        m.get(&("db".to_string(), "invalid-state".to_string())),
        Some(&1)
    );
    // A reason without a number is ignored, never a panic.
    assert!(parse_drop_counters("ingress-denied", &ports).is_empty());
}

#[test]
fn explain_prefers_the_probe_ports() {
    let ports = ["web-1", "db", "router"];
    let before = parse_drop_counters(
        "port db ingress-denied 1\nport router egress-denied 1",
        &ports,
    );
    let after = parse_drop_counters(
        "port db ingress-denied 3\nport router egress-denied 5\nport web-1 spoofed-ip 0",
        &ports,
    );
    assert_eq!(
        explain(&before, &after, &["web-1", "db"]),
        "ingress-denied x2 on db"
    );
    assert_eq!(
        explain(&before, &after, &["web-1"]),
        "ingress-denied x2 on db, egress-denied x4 on router"
    );
    assert_eq!(explain(&after, &after, &["db"]), "");
}

#[test]
fn case_titles_are_readable() {
    assert_eq!(CASES[0].title(), "ping");
    assert_eq!(CASES[1].title(), "ping -6");
    assert_eq!(CASES[7].title(), "tcp/5432 v6");
    assert_eq!(CASES[12].title(), "ping from 10.0.0.99");
    assert_eq!(CASES[7].dst(), "fd00::13");
}
