//! §3 items 21-22: group names, and the security groups a port may carry.

use super::*;

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
