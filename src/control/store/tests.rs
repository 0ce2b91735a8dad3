//! Unit tests of the store: the file format round trip, atomicity of mutations, reload.
//! The control-plane tests run on both stores ([`on_both`]): the local one, and the
//! shared one on a [`MemKv`] and on a real etcd.

use std::sync::{Arc, Mutex};

use super::persist::{decode_state, encode_state};
use super::state::seed_state;
use super::*;
use crate::control::config;
use crate::control::kv::testing::EtcdServer;
use crate::control::kv::{EtcdKv, MemKv};
use crate::control::shared::layout::Keys;
use crate::policy::validate;

/// A store opened for a test, with the etcd it runs on (stopped by its PID on drop).
struct Opened {
    store: Store,
    _etcd: Option<EtcdServer>,
}

impl std::ops::Deref for Opened {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}

/// Opens a store seeded with a config (`None`: skipped, no etcd here).
type Open = fn(&Config) -> Option<Opened>;

fn local(c: &Config) -> Option<Opened> {
    Some(Opened {
        store: Store::open(None, c).unwrap(),
        _etcd: None,
    })
}

fn shared_mem(c: &Config) -> Option<Opened> {
    Some(Opened {
        store: Store::open_shared(Arc::new(MemKv::new()), Keys::new("/test/"), c).unwrap(),
        _etcd: None,
    })
}

fn shared_etcd(c: &Config) -> Option<Opened> {
    let etcd = EtcdServer::start_or_skip("store tests on etcd")?;
    let kv = EtcdKv::open(&etcd.url()).unwrap();
    Some(Opened {
        store: Store::open_shared(Arc::new(kv), Keys::new("/test/"), c).unwrap(),
        _etcd: Some(etcd),
    })
}

/// `#[test]`s running the function `$name(open: Open)` on each store: local, shared on
/// a [`MemKv`], shared on a real etcd (skipped without one, failing under `CI=true`).
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            #[test]
            fn local() {
                super::$name(super::local)
            }
            #[test]
            fn shared_mem() {
                super::$name(super::shared_mem)
            }
            #[test]
            fn shared_etcd() {
                super::$name(super::shared_etcd)
            }
        }
    };
}

fn seed() -> Config {
    config::parse_str(
        r#"
[[security_groups]]
name = "web"
rules = [ { direction = "ingress", protocol = "tcp", port_range_min = 80, port_range_max = 80 } ]

[[ports]]
name = "vm-a"
network = "net1"
mac = "fa:16:3e:00:00:0a"
fixed_ips = ["10.0.0.10"]
security_groups = ["web"]
"#,
        "seed.toml",
    )
    .expect("seed config")
}

#[test]
fn encode_decode_round_trip_and_corruption() {
    let state = seed_state(&seed().model);
    let bytes = encode_state(&state).unwrap();
    assert_eq!(decode_state(&bytes).unwrap(), state);
    // Torn: truncated.
    let err = decode_state(&bytes[..bytes.len() - 5]).unwrap_err();
    assert!(err.contains("length mismatch"), "{err}");
    // Flipped byte.
    let mut flipped = bytes.clone();
    let n = flipped.len() - 10;
    flipped[n] ^= 0x20;
    assert!(decode_state(&flipped).unwrap_err().contains("checksum"));
    assert!(decode_state(b"").is_err());
    assert!(decode_state(b"hello\n{}")
        .unwrap_err()
        .contains("not an sgswitch"));
}

#[test]
fn rich_model_round_trips_through_the_state_file() {
    // Backends, address pairs, address groups, stateless groups, networks,
    // permitted ethertypes and conntrack settings.
    let cfg = config::parse_str(
        include_str!("../../../configs/example.toml"),
        "example.toml",
    )
    .expect("example config");
    let state = seed_state(&cfg.model);
    let bytes = encode_state(&state).unwrap();
    assert_eq!(decode_state(&bytes).unwrap(), state);
}

#[test]
fn a_well_formed_file_with_an_invalid_model_is_refused() {
    let mut state = seed_state(&seed().model);
    // Break a Neutron rule behind the validator's back: a port bound to a group
    // that does not exist.
    state.model.ports[0].security_groups = vec!["ghost".into()];
    let bytes = encode_state(&state).unwrap();
    let err = decode_state(&bytes).unwrap_err();
    assert!(err.contains("stored model is invalid"), "{err}");
}

#[test]
fn model_to_spec_round_trips() {
    let m = seed().model;
    assert_eq!(validate::validate_model(&model_to_spec(&m)).unwrap(), m);
}

on_both!(rejected_mutation_changes_nothing);
fn rejected_mutation_changes_nothing(open: Open) {
    let Some(store) = open(&seed()) else {
        return;
    };
    let before = store.snapshot();
    let err = store
        .create_group(&GroupCreate {
            name: "web".into(),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(err.http_status(), 409);
    assert_eq!(*store.snapshot(), *before);
    let id = store
        .create_group(&GroupCreate {
            name: "db".into(),
            ..Default::default()
        })
        .unwrap();
    let snap = store.snapshot();
    let gi = snap.group_by_id(&id).unwrap();
    assert_eq!(snap.model.security_groups[gi].rules.len(), 2);
    assert_eq!(snap.meta.groups[gi].rules.len(), 2);
    // `default` exists: a second one is refused.
    let err = store
        .create_group(&GroupCreate {
            name: "default".into(),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(err.http_status(), 409);
}

#[test]
fn rejected_mutation_changes_nothing_and_hook_sees_candidates() {
    let store = Store::open(None, &seed()).unwrap();
    let seen = Arc::new(Mutex::new(Vec::<usize>::new()));
    let s2 = Arc::clone(&seen);
    crate::control::connect(
        &store,
        Arc::new(move |m: &Model| {
            s2.lock().unwrap().push(m.security_groups.len());
            Ok(())
        }),
    );
    let before = store.snapshot();
    let err = store
        .create_group(&GroupCreate {
            name: "web".into(),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(err.http_status(), 409);
    assert!(seen.lock().unwrap().is_empty());
    assert_eq!(*store.snapshot(), *before);
    let id = store
        .create_group(&GroupCreate {
            name: "db".into(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(seen.lock().unwrap().as_slice(), &[3]);
    let snap = store.snapshot();
    let gi = snap.group_by_id(&id).unwrap();
    assert_eq!(snap.model.security_groups[gi].rules.len(), 2);
    assert_eq!(snap.meta.groups[gi].rules.len(), 2);
}

on_both!(replace_model_keeps_ids_of_unchanged_objects);
fn replace_model_keeps_ids_of_unchanged_objects(open: Open) {
    let Some(store) = open(&seed()) else {
        return;
    };
    let before = store.snapshot();
    let mut m = before.model.clone();
    // By name: a shared store orders objects by (created_at, id), not by creation.
    let web = before.group_by_name("web").unwrap();
    m.security_groups[web].rules.pop();
    store.replace_model(&m).unwrap();
    let after = store.snapshot();
    assert_eq!(after.meta.ports, before.meta.ports);
    assert_eq!(after.meta.networks, before.meta.networks);
    let gi = after.group_by_name("web").unwrap();
    let bi = before.group_by_name("web").unwrap();
    assert_eq!(after.meta.groups[gi].obj.id, before.meta.groups[bi].obj.id);
    assert_eq!(
        after.meta.groups[gi].obj.revision_number,
        before.meta.groups[bi].obj.revision_number + 1
    );
    assert_eq!(
        after.meta.groups[gi].rules[..],
        before.meta.groups[bi].rules[..before.meta.groups[bi].rules.len() - 1]
    );
}

#[test]
fn apply_failure_changes_nothing() {
    let store = Store::open(None, &seed()).unwrap();
    crate::control::connect(
        &store,
        Arc::new(|_: &Model| Err(ApplyError::Rejected("compile failed".into()))),
    );
    let before = store.snapshot();
    let err = store
        .create_group(&GroupCreate {
            name: "db".into(),
            ..Default::default()
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::Apply(_)));
    assert_eq!(*store.snapshot(), *before);
}

#[test]
fn a_state_file_written_by_the_hand_written_mirror_re_encodes_to_the_same_bytes() {
    // tests/fixtures/state-v1 was written before the format was derived from the
    // policy::spec types: decoding and encoding it again gives the file back, byte for
    // byte (field order, compact address pairs and networks, tagged backends, scalars).
    let bytes = include_bytes!("../../../tests/fixtures/state-v1/state.json");
    let state = decode_state(bytes).expect("the old file decodes");
    assert_eq!(encode_state(&state).unwrap(), bytes.to_vec());
}

on_both!(logs_follow_their_group_and_port);
fn logs_follow_their_group_and_port(open: Open) {
    let Some(store) = open(&seed()) else {
        return;
    };
    let snap = store.snapshot();
    let web = snap.group_id("web").unwrap().to_string();
    let vm_a = snap.port_id("vm-a").unwrap().to_string();
    let create = |resource: Option<&str>, target: Option<&str>| {
        store.create_log(&LogCreate {
            name: Some("l".into()),
            resource_type: "security_group".into(),
            resource_id: resource.map(str::to_string),
            target_id: target.map(str::to_string),
            ..Default::default()
        })
    };
    let both = create(Some(&web), Some(&vm_a)).unwrap();
    let group_only = create(Some(&web), None).unwrap();
    let port_only = create(None, Some(&vm_a)).unwrap();
    let neither = create(None, None).unwrap();
    let snap = store.snapshot();
    assert_eq!(snap.model.logs.len(), 4);
    assert_eq!(snap.meta.logs.len(), 4);
    let li = snap.log_by_id(&both).unwrap();
    assert_eq!(snap.model.logs[li].resource.as_deref(), Some("web"));
    assert_eq!(snap.model.logs[li].target.as_deref(), Some("vm-a"));
    assert_eq!(snap.model.logs[li].event, crate::policy::LogEvent::All);
    // Renames carry over.
    store
        .update_group(
            &web,
            &GroupUpdate {
                name: Some("www".into()),
                ..Default::default()
            },
        )
        .unwrap();
    store
        .update_port(
            &vm_a,
            &PortUpdate {
                name: Some("vm-z".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let snap = store.snapshot();
    let l = &snap.model.logs[snap.log_by_id(&both).unwrap()];
    assert_eq!(
        (l.resource.as_deref(), l.target.as_deref()),
        (Some("www"), Some("vm-z"))
    );
    // Deleting the port deletes the logs that target it; deleting the group (once no
    // port uses it) those of the group.
    store.delete_port(&vm_a).unwrap();
    let snap = store.snapshot();
    assert!(snap.log_by_id(&both).is_none() && snap.log_by_id(&port_only).is_none());
    assert!(snap.log_by_id(&group_only).is_some());
    store.delete_group(&web).unwrap();
    let snap = store.snapshot();
    assert!(snap.log_by_id(&group_only).is_none());
    assert_eq!(snap.model.logs.len(), 1);
    assert!(snap.log_by_id(&neither).is_some());
    snap.check().unwrap();
}

on_both!(log_requests_get_neutrons_answers);
fn log_requests_get_neutrons_answers(open: Open) {
    let Some(store) = open(&seed()) else {
        return;
    };
    let snap = store.snapshot();
    let default = snap.group_id("default").unwrap().to_string();
    let vm_a = snap.port_id("vm-a").unwrap().to_string();
    let req =
        |resource_type: &str, resource: Option<&str>, target: Option<&str>, event| LogCreate {
            resource_type: resource_type.into(),
            resource_id: resource.map(str::to_string),
            target_id: target.map(str::to_string),
            event,
            ..Default::default()
        };
    let answer = |r: &LogCreate| {
        let e = store.create_log(r).unwrap_err();
        (e.http_status(), e.neutron_type().to_string(), e.to_string())
    };
    let ghost = Id::random().to_string();
    let (s, t, m) = answer(&req("firewall_group", None, None, None));
    assert_eq!((s, t.as_str()), (400, "InvalidLogResourceType"));
    assert_eq!(m, "Invalid log resource_type: firewall_group.");
    let (s, t, m) = answer(&req("security_group", None, None, Some("NOPE".into())));
    assert_eq!((s, t.as_str()), (400, "InvalidInput"));
    assert!(
        m.starts_with("Invalid input for event. Reason: invalid event \"NOPE\""),
        "{m}"
    );
    let (s, t, m) = answer(&req("security_group", Some(&ghost), None, None));
    assert_eq!((s, t.as_str()), (404, "ResourceNotFound"));
    assert_eq!(m, format!("Resource {ghost} could not be found."));
    let (s, t, m) = answer(&req("security_group", None, Some(&ghost), None));
    assert_eq!((s, t.as_str()), (404, "TargetResourceNotFound"));
    assert_eq!(m, format!("Target resource {ghost} could not be found."));
    // vm-a uses web, not default.
    let (s, t, m) = answer(&req("security_group", Some(&default), Some(&vm_a), None));
    assert_eq!((s, t.as_str()), (400, "InvalidResourceConstraint"));
    assert!(m.contains(&default) && m.contains(&vm_a), "{m}");
    assert!(store.snapshot().model.logs.is_empty());
    // Updates: unknown id, too long a name.
    let e = store.update_log(&ghost, &LogUpdate::default()).unwrap_err();
    assert_eq!(
        (e.http_status(), e.neutron_type()),
        (404, "LogResourceNotFound")
    );
    let id = store
        .create_log(&req("security_group", None, None, Some("DROP".into())))
        .unwrap();
    let e = store
        .update_log(
            &id,
            &LogUpdate {
                name: Some("n".repeat(256)),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(e.http_status(), 400);
    let before = store.snapshot().meta.logs[0];
    store
        .update_log(
            &id,
            &LogUpdate {
                enabled: Some(false),
                ..Default::default()
            },
        )
        .unwrap();
    let snap = store.snapshot();
    assert!(!snap.model.logs[0].enabled);
    assert_eq!(
        snap.meta.logs[0].revision_number,
        before.revision_number + 1
    );
    store.delete_log(&id).unwrap();
    assert_eq!(
        store.delete_log(&id).unwrap_err().neutron_type(),
        "LogResourceNotFound"
    );
}

#[test]
fn replace_model_keeps_log_ids_by_equality_then_name() {
    let mut cfg = seed();
    let log = |name: &str, event| crate::policy::NetworkLog {
        name: name.into(),
        description: String::new(),
        resource: None,
        target: None,
        event,
        enabled: true,
    };
    use crate::policy::LogEvent::{Accept, All, Drop};
    cfg.model.logs = vec![log("a", All), log("a", Drop), log("b", All)];
    let store = Store::open(None, &cfg).unwrap();
    let before = store.snapshot();
    let mut m = before.model.clone();
    // Reordered, one changed (same name), one new.
    m.logs = vec![
        log("a", Drop),
        log("b", Accept),
        log("a", All),
        log("c", All),
    ];
    store.replace_model(&m).unwrap();
    let after = store.snapshot();
    let id = |s: &State, i: usize| s.meta.logs[i].id;
    assert_eq!(id(&after, 0), id(&before, 1));
    assert_eq!(id(&after, 1), id(&before, 2));
    assert_eq!(after.meta.logs[1].revision_number, 1);
    assert_eq!(id(&after, 2), id(&before, 0));
    assert_eq!(after.meta.logs[2].revision_number, 0);
    assert!((0..3).all(|i| id(&before, i) != id(&after, 3)));
    // And the state file keeps them.
    let bytes = encode_state(&after).unwrap();
    assert_eq!(decode_state(&bytes).unwrap(), *after);
}
