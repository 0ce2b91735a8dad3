//! Unit tests of the store: the file format round trip, atomicity of mutations, reload.

use std::sync::{Arc, Mutex};

use super::persist::{decode_state, encode_state};
use super::state::seed_state;
use super::*;
use crate::control::config;
use crate::policy::validate;

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

#[test]
fn replace_model_keeps_ids_of_unchanged_objects() {
    let store = Store::open(None, &seed()).unwrap();
    let before = store.snapshot();
    let mut m = before.model.clone();
    m.security_groups[0].rules.pop();
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
