//! [`super::assign_changed`] on hand-made model pairs (the random sequences are in
//! `incremental_model_equals_full_rebuild`): afterwards the copy equals the source, and
//! the elements that were equal kept their allocations (they were not cloned).

use super::assign_changed;
use crate::policy::{Direction, EtherType, Model, Remote, Rule, SecurityGroup};

fn rule(port: u16) -> Rule {
    Rule {
        direction: Direction::Ingress,
        ethertype: EtherType::IPv4,
        protocol: Some(6),
        protocol_zero: false,
        port_range_min: Some(port),
        port_range_max: Some(port),
        remote: Remote::Any,
        remote_ip_prefix_raw: None,
        description: format!("rule {port}"),
    }
}

fn model(groups: &[(&str, &[u16])], members: &[(&str, usize)]) -> Model {
    let mut m = Model {
        security_groups: groups
            .iter()
            .map(|(name, ports)| SecurityGroup {
                name: name.to_string(),
                description: String::new(),
                stateful: true,
                rules: ports.iter().map(|p| rule(*p)).collect(),
            })
            .collect(),
        ..Model::default()
    };
    for (g, n) in members {
        let nets = (0..*n)
            .map(|i| format!("10.1.{}.{}/32", i / 256, i % 256).parse().unwrap())
            .collect();
        m.remote_members.insert(g.to_string(), nets);
    }
    m
}

#[test]
fn assign_changed_equals_clone() {
    let cases: Vec<(Model, Model)> = vec![
        // A rule appended (the propagation benchmark's change).
        (
            model(&[("a", &[1, 2, 3])], &[]),
            model(&[("a", &[1, 2, 3, 4])], &[]),
        ),
        // Removed at the end, in the middle, and inserted in the middle.
        (
            model(&[("a", &[1, 2, 3])], &[]),
            model(&[("a", &[1, 2])], &[]),
        ),
        (
            model(&[("a", &[1, 2, 3])], &[]),
            model(&[("a", &[1, 3])], &[]),
        ),
        (
            model(&[("a", &[1, 3])], &[]),
            model(&[("a", &[1, 2, 3])], &[]),
        ),
        // Groups added, removed, renamed.
        (
            model(&[("a", &[1])], &[]),
            model(&[("a", &[1]), ("b", &[2])], &[]),
        ),
        (
            model(&[("a", &[1]), ("b", &[2])], &[]),
            model(&[("b", &[2])], &[]),
        ),
        (model(&[("a", &[1])], &[]), model(&[("z", &[1])], &[])),
        // Members joined, left, a group's set gone and another one's come.
        (model(&[], &[("r", 3)]), model(&[], &[("r", 4)])),
        (model(&[], &[("r", 4)]), model(&[], &[("r", 2)])),
        (
            model(&[], &[("r", 4), ("s", 1)]),
            model(&[], &[("s", 1), ("t", 2)]),
        ),
        (model(&[("a", &[1])], &[("r", 1)]), Model::default()),
        (Model::default(), model(&[("a", &[1, 2])], &[("r", 5)])),
    ];
    for (i, (from, to)) in cases.into_iter().enumerate() {
        let mut kept = from.clone();
        assign_changed(&mut kept, &to);
        assert_eq!(kept, to, "case {i}");
        // And back.
        assign_changed(&mut kept, &from);
        assert_eq!(kept, from, "case {i}, back");
    }
    let mut to = model(&[("a", &[1, 2]), ("b", &[3])], &[]);
    to.permitted_ethertypes.push(0x88cc);
    to.local_host = Some("h1".into());
    let mut kept = Model::default();
    assign_changed(&mut kept, &to);
    assert_eq!(kept, to);
}

#[test]
fn assign_changed_keeps_what_is_equal() {
    let from = model(&[("a", &[1, 2, 3]), ("b", &[9])], &[("r", 3)]);
    let mut to = from.clone();
    to.security_groups[0].rules.push(rule(4));
    let mut kept = from.clone();
    let rule0 = kept.security_groups[0].rules[0].description.as_ptr();
    let b = kept.security_groups[1].rules.as_ptr();
    let members = kept.remote_members["r"].as_ptr();
    assign_changed(&mut kept, &to);
    assert_eq!(kept, to);
    // Not cloned: the same allocations as before.
    assert_eq!(kept.security_groups[0].rules[0].description.as_ptr(), rule0);
    assert_eq!(kept.security_groups[1].rules.as_ptr(), b);
    assert_eq!(kept.remote_members["r"].as_ptr(), members);
}
