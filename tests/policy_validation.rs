//! Neutron validation rules (security-groups.md §2 items 7-9, §3 items 10-22), each with
//! accept and reject cases, through the public policy API.
//!
//! One test crate (each file under `tests/` is a crate of its own, linked separately):
//! this file holds the helpers every module shares; the modules under
//! `tests/policy_validation/` hold the tests, one per part of security-groups.md.

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
// The tests, one module per part of security-groups.md

#[path = "policy_validation/defaults.rs"]
mod defaults;
#[path = "policy_validation/groups.rs"]
mod groups;
#[path = "policy_validation/model.rs"]
mod model;
#[path = "policy_validation/ports.rs"]
mod ports;
#[path = "policy_validation/protocols.rs"]
mod protocols;
#[path = "policy_validation/rules.rs"]
mod rules;
