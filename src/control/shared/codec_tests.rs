//! Tests of the codec: round trips on random states (built by random API operations on
//! a store), diffs, per-value decoding and errors that name their key.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::control::config;
use crate::control::store::{
    AddressGroupUpdate, GroupCreate, LogCreate, PortCreate, PortUpdate, RuleCreate, Store,
};
use crate::policy::spec::RuleSpec;

fn seed() -> config::Config {
    config::parse_str(
        r#"
[[networks]]
name = "net2"
vni = 5000
encap = "vxlan"

[[address_groups]]
name = "office"
addresses = ["192.0.2.0/24", "2001:db8::/64"]

[[security_groups]]
name = "web"
rules = [ { direction = "ingress", protocol = "tcp", port_range_min = 80, port_range_max = 80 },
          { direction = "ingress", remote_group = "web" },
          { direction = "ingress", ethertype = "IPv6", protocol = "icmp" },
          { direction = "ingress", protocol = "0", remote_ip_prefix = "10.1.2.3/16" },
          { direction = "egress", remote_address_group = "office" } ]

[[ports]]
name = "vm-a"
network = "net1"
mac = "fa:16:3e:00:00:0a"
fixed_ips = ["10.0.0.10", "fd00::a"]
security_groups = ["web"]
allowed_address_pairs = [ { ip_address = "10.0.9.0/24" } ]
host = "compute-1"
backend = { type = "tap", ifname = "tap-a", netns = "ns-a" }

[[ports]]
name = "router"
network = "net1"
mac = "fa:16:3e:00:00:01"
fixed_ips = ["10.0.0.1"]
port_security = false
backend = { type = "afxdp", ifname = "eth1", queue = 2, mode = "native" }

[[logs]]
name = "web-log"
resource = "web"
target = "vm-a"
event = "DROP"
"#,
        "seed.toml",
    )
    .expect("seed config")
}

fn keys() -> Keys {
    Keys::new("/t/")
}

fn round_trip(s: &State) {
    let kvs = state_to_kvs(&keys(), s);
    let back = state_from_kvs(&keys(), &kvs).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back, canonical(s));
    // Encoding the decoded state gives the same keys.
    assert_eq!(state_to_kvs(&keys(), &back), kvs);
}

#[test]
fn the_seed_round_trips_with_index_members_and_settings() {
    let store = Store::open(None, &seed()).unwrap();
    let s = store.snapshot();
    round_trip(&s);
    let kvs = state_to_kvs(&keys(), &s);
    let a = s.port_id("vm-a").unwrap().to_string();
    let web = s.group_id("web").unwrap().to_string();
    assert_eq!(kvs[&keys().host_port("compute-1", &a)], b"");
    let member: MemberValue = decode("m", &kvs[&keys().member(&web, &a)]).unwrap();
    assert_eq!(
        member.addresses,
        ["10.0.0.10/32", "fd00::a/128", "10.0.9.0/24"]
    );
    // No member key for the port without port security, no index for an unbound port.
    let r = s.port_id("router").unwrap().to_string();
    assert!(kvs
        .keys()
        .all(|k| !k.ends_with(&format!("/{r}")) || k.contains("/ports/")));
    assert!(kvs.contains_key(&keys().settings()));
    // A network's overlay settings, as Neutron's provider extension names them.
    let net2 = s.network_id("net2").unwrap().to_string();
    let nv: NetworkValue = decode("n", &kvs[&keys().network(&net2)]).unwrap();
    assert_eq!(
        (nv.network_type.as_deref(), nv.segmentation_id),
        (Some("vxlan"), Some(5000))
    );
    let port: PortValue = decode("p", &kvs[&keys().port(&a)]).unwrap();
    assert_eq!(port.host_id.as_deref(), Some("compute-1"));
    assert_eq!(port.profile["type"], "tap");
    assert!(port.profile["vnet_hdr"].is_boolean());
    assert!(!port.profile.contains_key("queue"));
    // The network's index of bound ports (l2population): addresses and host.
    let net1 = s.network_id("net1").unwrap().to_string();
    let np: NetPortValue = decode("n", &kvs[&keys().net_port(&net1, &a)]).unwrap();
    assert_eq!(np.host_id, "compute-1");
    assert_eq!(np.mac_address, "fa:16:3e:00:00:0a");
    assert_eq!(np.fixed_ips, ["10.0.0.10", "fd00::a"]);
    assert_eq!(np.allowed_address_pairs[0].ip_address, "10.0.9.0/24");
    assert!(np.port_security_enabled);
    let spec = remote_port_spec(&np, "net1", "vm-a");
    assert_eq!(spec.host.as_deref(), Some("compute-1"));
    assert_eq!(spec.security_groups, Some(Vec::new()));
    let net_ports: Vec<&String> = (kvs.keys())
        .filter(|k| k.starts_with(&keys().all_net_ports()))
        .collect();
    assert_eq!(
        net_ports,
        [&keys().net_port(&net1, &a)],
        "only the bound port"
    );
}

#[test]
fn the_net_port_index_follows_binding_and_addresses() {
    let store = Store::open(None, &seed()).unwrap();
    let a = store.snapshot().port_id("vm-a").unwrap();
    let net1 = store.snapshot().network_id("net1").unwrap().to_string();
    let before = state_to_kvs(&keys(), &store.snapshot());
    let key = keys().net_port(&net1, &a.to_string());
    // Moving the port to another host rewrites its one index key.
    store
        .update_port(
            &a.to_string(),
            &PortUpdate {
                host: Some(Some("compute-2".into())),
                ..Default::default()
            },
        )
        .unwrap();
    let after = state_to_kvs(&keys(), &store.snapshot());
    let ops = diff(&before, &after);
    assert!(ops
        .iter()
        .any(|o| matches!(o, Op::Put { key: k, value, .. } if *k == key
            && decode::<NetPortValue>(k, value).unwrap().host_id == "compute-2")));
    // Unbinding deletes it.
    store
        .update_port(
            &a.to_string(),
            &PortUpdate {
                host: Some(None),
                ..Default::default()
            },
        )
        .unwrap();
    let unbound = state_to_kvs(&keys(), &store.snapshot());
    assert!(diff(&after, &unbound)
        .iter()
        .any(|o| matches!(o, Op::Delete { key: k } if *k == key)));
}

#[test]
fn errors_name_the_key() {
    let store = Store::open(None, &seed()).unwrap();
    let s = store.snapshot();
    let mut kvs = state_to_kvs(&keys(), &s);
    let web = s.group_id("web").unwrap().to_string();
    let gk = keys().group(&web);

    // Not JSON.
    let mut bad = kvs.clone();
    bad.insert(gk.clone(), b"{".to_vec());
    let e = state_from_kvs(&keys(), &bad).unwrap_err();
    assert_eq!(e.key, gk);

    // A rule that does not validate.
    let mut v: GroupValue = decode(&gk, &kvs[&gk]).unwrap();
    v.security_group_rules[0].direction = "sideways".into();
    let mut bad = kvs.clone();
    bad.insert(gk.clone(), serde_json::to_vec(&v).unwrap());
    let e = state_from_kvs(&keys(), &bad).unwrap_err();
    assert_eq!(e.key, gk, "{e}");
    assert!(e.message.contains("sideways"), "{e}");

    // A port naming a group that has no key.
    let a = keys().port(&s.port_id("vm-a").unwrap().to_string());
    let mut p: PortValue = decode(&a, &kvs[&a]).unwrap();
    p.security_groups = vec!["7d1b4bd4-5a0e-4f0f-9a53-8d3c0a2f0c11".into()];
    let mut bad = kvs.clone();
    bad.insert(a.clone(), serde_json::to_vec(&p).unwrap());
    let e = state_from_kvs(&keys(), &bad).unwrap_err();
    assert_eq!(e.key, a);
    assert!(e.message.contains("does not exist"), "{e}");

    // A bad host name.
    let mut p: PortValue = decode(&a, &kvs[&a]).unwrap();
    p.host_id = Some("bad/host".into());
    let mut bad = kvs.clone();
    bad.insert(a.clone(), serde_json::to_vec(&p).unwrap());
    let e = state_from_kvs(&keys(), &bad).unwrap_err();
    assert_eq!(e.key, a, "{e}");
    assert!(e.message.contains("host"), "{e}");

    // A value under another object's key.
    let other = keys().group("7d1b4bd4-5a0e-4f0f-9a53-8d3c0a2f0c11");
    let mut bad = kvs.clone();
    let moved = bad.remove(&gk).unwrap();
    bad.insert(other.clone(), moved);
    assert_eq!(state_from_kvs(&keys(), &bad).unwrap_err().key, other);

    // No default group.
    let d = keys().group(&s.group_id("default").unwrap().to_string());
    kvs.remove(&d);
    let e = state_from_kvs(&keys(), &kvs).unwrap_err();
    assert!(e.to_string().contains("default"), "{e}");
}

#[test]
fn per_value_decoding_for_an_agent() {
    let store = Store::open(None, &seed()).unwrap();
    let s = store.snapshot();
    let kvs = state_to_kvs(&keys(), &s);
    let names = |id: &str| {
        let idx = |f: &dyn Fn(&State) -> Option<usize>| f(&s);
        idx(&|s| s.group_by_id(id))
            .map(|i| s.model.security_groups[i].name.clone())
            .or_else(|| {
                idx(&|s| s.address_group_by_id(id)).map(|i| s.model.address_groups[i].name.clone())
            })
            .or_else(|| idx(&|s| s.network_by_id(id)).map(|i| s.model.networks[i].name.clone()))
            .or_else(|| idx(&|s| s.port_by_id(id)).map(|i| s.model.ports[i].name.clone()))
    };
    for (gi, g) in s.model.security_groups.iter().enumerate() {
        let k = keys().group(&s.meta.groups[gi].obj.id.to_string());
        let v: GroupValue = decode(&k, &kvs[&k]).unwrap();
        assert_eq!(&group_from_value(&k, &v, &names).unwrap(), g);
    }
    for (pi, p) in s.model.ports.iter().enumerate() {
        let k = keys().port(&s.meta.ports[pi].id.to_string());
        let v: PortValue = decode(&k, &kvs[&k]).unwrap();
        assert_eq!(&port_from_value(&k, &v, &names).unwrap(), p);
    }
    for (ai, a) in s.model.address_groups.iter().enumerate() {
        let k = keys().address_group(&s.meta.address_groups[ai].id.to_string());
        let v: AddressGroupValue = decode(&k, &kvs[&k]).unwrap();
        assert_eq!(&address_group_from_value(&k, &v).unwrap(), a);
    }
    for (li, l) in s.model.logs.iter().enumerate() {
        let k = keys().log(&s.meta.logs[li].id.to_string());
        let v: LogValue = decode(&k, &kvs[&k]).unwrap();
        assert_eq!(&log_from_value(&k, &v, &names).unwrap(), l);
    }
    let sk = keys().settings();
    let v: SettingsValue = decode(&sk, &kvs[&sk]).unwrap();
    assert_eq!(
        settings_from_value(&sk, Some(&v)).unwrap(),
        (
            s.model.conntrack.clone(),
            s.model.permitted_ethertypes.clone()
        )
    );
    // An unknown remote group is an error naming the key.
    let web = s.group_by_name("web").unwrap();
    let k = keys().group(&s.meta.groups[web].obj.id.to_string());
    let v: GroupValue = decode(&k, &kvs[&k]).unwrap();
    let e = group_from_value(&k, &v, &|_| None).unwrap_err();
    assert_eq!(e.key, k);
}

/// Apply `n` random API operations (drawn from `ops`) to a store seeded with [`seed`].
fn random_state(ops: &[(u8, u32, u32)]) -> State {
    let store = Store::open(None, &seed()).unwrap();
    for &(op, a, b) in ops {
        let s = store.snapshot();
        let pick = |n: usize, x: u32| (n > 0).then(|| x as usize % n);
        let group =
            |x: u32| pick(s.meta.groups.len(), x).map(|i| s.meta.groups[i].obj.id.to_string());
        let _ = match op % 9 {
            0 => store
                .create_group(&GroupCreate {
                    name: format!("g{a}"),
                    description: Some(format!("d{b}")),
                    stateful: Some(b % 3 != 0),
                })
                .map(drop),
            1 | 2 => {
                let proto = ["tcp", "udp", "icmp", "6", "0", "any"][b as usize % 6];
                let ports = matches!(proto, "tcp" | "udp" | "6");
                let remote_group_id = (a % 4 == 0).then(|| group(b)).flatten();
                store
                    .create_rules(&[RuleCreate {
                        security_group_id: group(a).unwrap_or_default(),
                        spec: RuleSpec {
                            direction: Some(["ingress", "egress"][a as usize % 2].into()),
                            ethertype: Some(["IPv4", "IPv6"][b as usize % 2].into()),
                            protocol: Some(proto.into()),
                            port_range_min: ports.then(|| Scalar::Int((a % 1000 + 1).into())),
                            port_range_max: ports.then(|| Scalar::Int((a % 1000 + 5).into())),
                            remote_ip_prefix: (remote_group_id.is_none() && b % 3 == 0).then(
                                || {
                                    if b % 2 == 0 {
                                        format!("10.{}.0.7/16", a % 200)
                                    } else {
                                        "fd00::5/64".into()
                                    }
                                },
                            ),
                            description: Some(format!("r{a}")),
                            ..Default::default()
                        },
                        remote_group_id,
                        remote_address_group_id: None,
                    }])
                    .map(drop)
            }
            3 => store
                .create_address_group(
                    &format!("ag{a}"),
                    None,
                    &[format!("10.{}.{}.0/24", a % 250, b % 250)],
                )
                .map(drop),
            4 => {
                let net = s.meta.networks[b as usize % s.meta.networks.len()]
                    .obj
                    .id
                    .to_string();
                store
                    .create_port(&PortCreate {
                        name: format!("p{a}"),
                        network_id: net,
                        fixed_ips: vec![format!("10.2.{}.{}", a % 250, b % 250 + 1)],
                        security_group_ids: group(b).map(|g| vec![g]),
                        host: (a % 3 != 0).then(|| format!("host-{}", b % 4)),
                        ..Default::default()
                    })
                    .map(drop)
            }
            5 => match pick(s.meta.ports.len(), a) {
                Some(pi) if b % 2 == 0 => store.delete_port(&s.meta.ports[pi].id.to_string()),
                Some(pi) => store.update_port(
                    &s.meta.ports[pi].id.to_string(),
                    &PortUpdate {
                        host: Some((b % 3 != 0).then(|| format!("host-{}", a % 4))),
                        ..Default::default()
                    },
                ),
                None => Ok(()),
            },
            6 => match group(a) {
                Some(g) => store.delete_group(&g),
                None => Ok(()),
            },
            7 => store
                .create_log(&LogCreate {
                    name: Some(format!("l{a}")),
                    resource_type: "security_group".into(),
                    resource_id: group(b),
                    ..Default::default()
                })
                .map(drop),
            _ => match pick(s.meta.address_groups.len(), a) {
                Some(ai) => store.update_address_group(
                    &s.meta.address_groups[ai].id.to_string(),
                    &AddressGroupUpdate {
                        name: Some(format!("agx{b}")),
                        description: None,
                    },
                ),
                None => Ok(()),
            },
        };
    }
    State::clone(&store.snapshot())
}

fn apply(kvs: &BTreeMap<String, Vec<u8>>, ops: &[Op]) -> BTreeMap<String, Vec<u8>> {
    let mut out = kvs.clone();
    for op in ops {
        match op {
            Op::Put { key, value, .. } => {
                out.insert(key.clone(), value.clone());
            }
            Op::Delete { key } => {
                out.remove(key);
            }
            Op::DeletePrefix { prefix } => out.retain(|k, _| !k.starts_with(prefix.as_str())),
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_states_round_trip_and_diffs_apply(
        a in proptest::collection::vec(any::<(u8, u32, u32)>(), 0..40),
        b in proptest::collection::vec(any::<(u8, u32, u32)>(), 0..40),
    ) {
        let sa = random_state(&a);
        round_trip(&sa);
        let sb = random_state(&b);
        let ka = state_to_kvs(&keys(), &sa);
        let kb = state_to_kvs(&keys(), &sb);
        prop_assert_eq!(apply(&ka, &diff(&ka, &kb)), kb.clone());
        prop_assert!(diff(&kb, &kb).is_empty());
    }
}

/// What a shared store's cache pays per revision that touched an object (it decodes the
/// whole state) and a write per call (it encodes and diffs the whole state): 1,000
/// groups of 12 rules, 1,000 ports on 100 hosts. Run on a quiet machine:
/// `cargo test --release --lib codec_cost -- --ignored --nocapture`.
#[test]
#[ignore]
fn codec_cost() {
    use std::time::Instant;
    let store = Store::open(None, &seed()).unwrap();
    let ids: Vec<String> = (0..1000)
        .map(|i| {
            store
                .create_group(&GroupCreate {
                    name: format!("g{i}"),
                    ..Default::default()
                })
                .unwrap()
        })
        .collect();
    let rules: Vec<RuleCreate> = ids
        .iter()
        .flat_map(|g| {
            (0..10u16).map(move |p| RuleCreate {
                security_group_id: g.clone(),
                spec: RuleSpec {
                    direction: Some("ingress".into()),
                    protocol: Some("tcp".into()),
                    port_range_min: Some(Scalar::Int((1000 + p).into())),
                    port_range_max: Some(Scalar::Int((1000 + p).into())),
                    ..Default::default()
                },
                ..Default::default()
            })
        })
        .collect();
    store.create_rules(&rules).unwrap();
    let net = store.snapshot().meta.networks[0].obj.id.to_string();
    for i in 0..1000u32 {
        store
            .create_port(&PortCreate {
                name: format!("p{i}"),
                network_id: net.clone(),
                fixed_ips: vec![format!("10.3.{}.{}", i / 250, i % 250 + 1)],
                security_group_ids: Some(vec![ids[i as usize].clone()]),
                host: Some(format!("host-{}", i % 100)),
                ..Default::default()
            })
            .unwrap();
    }
    let s = store.snapshot();
    let t = Instant::now();
    let kvs = state_to_kvs(&keys(), &s);
    let encode = t.elapsed();
    let bytes: usize = kvs.iter().map(|(k, v)| k.len() + v.len()).sum();
    let t = Instant::now();
    let back = state_from_kvs(&keys(), &kvs).unwrap();
    let decode = t.elapsed();
    let mut changed = State::clone(&back);
    changed.model.security_groups[5].rules.pop();
    changed.meta.groups[5].rules.pop();
    let t = Instant::now();
    let ops = diff(&kvs, &state_to_kvs(&keys(), &changed));
    let write = t.elapsed();
    println!(
        "{} keys, {bytes} bytes: encode {encode:?}, decode (validated) {decode:?}, encode+diff of a one-rule change {write:?} ({} ops)",
        kvs.len(),
        ops.len()
    );
}
