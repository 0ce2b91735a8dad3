//! `classifier::member_join`: what a remote-group member joining costs a host (#18).
//!
//! The host model of `sgswitch sim-hosts --scenario member-join-compile`: one local port
//! whose group has R rules, every tenth with `remote_group = "remote"`, a group of M
//! members on other hosts (`Model::remote_members`). One more member joins:
//! * `compile/R_M` — `CompiledPolicy::compile` of the model after the join (what a
//!   join cost before `with_members`, and what any other change still costs);
//! * `with_members/R_M` — `CompiledPolicy::with_members` from the policy before the join:
//!   the rule structures shared, the group's member set rebuilt;
//! * `update/R_M` — `CompiledPolicy::update`, i.e. `with_members` plus the
//!   `members_only_change` comparison of the two models that chooses it.

use std::net::{IpAddr, Ipv4Addr};

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ipnet::IpNet;
use sgswitch::classifier::CompiledPolicy;
use sgswitch::policy::{Direction, EtherType, Model, Network, Port, Remote, Rule, SecurityGroup};

fn host(i: usize) -> IpNet {
    IpNet::from(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i as u32)))
}

fn model(rules: usize, members: usize) -> Model {
    let rule = |i: usize| Rule {
        direction: Direction::Ingress,
        ethertype: EtherType::IPv4,
        protocol: Some(6),
        protocol_zero: false,
        port_range_min: Some(1000 + i as u16),
        port_range_max: Some(1000 + i as u16),
        remote: if i.is_multiple_of(10) {
            Remote::Group("remote".into())
        } else {
            Remote::Prefix(host(7 * i + 5_000_000))
        },
        remote_ip_prefix_raw: None,
        description: String::new(),
    };
    let group = |name: &str, rules: Vec<Rule>| SecurityGroup {
        name: name.into(),
        description: String::new(),
        stateful: true,
        rules,
    };
    let mut m = Model {
        security_groups: vec![
            group("local", (0..rules).map(rule).collect()),
            group("remote", Vec::new()),
        ],
        ports: vec![Port {
            name: "p0".into(),
            network: "n".into(),
            mac: sgswitch::wire::Mac([2, 0, 0, 0, 0, 1]),
            fixed_ips: vec![IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1))],
            security_groups: vec!["local".into()],
            port_security: true,
            allowed_address_pairs: Vec::new(),
            backend: None,
            host: None,
        }],
        networks: vec![Network {
            name: "n".into(),
            ..Network::default()
        }],
        ..Model::default()
    };
    m.remote_members
        .insert("remote".into(), (0..members).map(host).collect());
    m
}

fn member_join(cr: &mut Criterion) {
    let mut g = cr.benchmark_group("classifier::member_join");
    g.sample_size(20);
    for (rules, members) in [(1_000, 10_000), (10_000, 10_000)] {
        let id = format!("{rules}_{members}");
        let before = model(rules, members);
        let mut after = before.clone();
        after
            .remote_members
            .get_mut("remote")
            .expect("the group")
            .push(host(members));
        let policy = CompiledPolicy::compile(&before, 1);
        g.bench_function(format!("compile/{id}"), |b| {
            b.iter(|| CompiledPolicy::compile(black_box(&after), 2))
        });
        g.bench_function(format!("with_members/{id}"), |b| {
            b.iter(|| policy.with_members(black_box(&after), 2))
        });
        g.bench_function(format!("update/{id}"), |b| {
            b.iter(|| policy.update(black_box(&before), black_box(&after), 2))
        });
    }
    g.finish();
}

criterion_group!(benches, member_join);
criterion_main!(benches);
