//! Persistence: API changes survive a restart; a torn or corrupt state file is refused
//! with a message naming it; the config only seeds the first launch; reload keeps ids.

mod api_common;

use std::fs;

use api_common::Harness;
use serde_json::json;
use sgswitch::control::config;
use sgswitch::control::store::{Store, StoreError, BACKUP_FILE, STATE_FILE};

fn tempdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "sgswitch-api-{tag}-{}-{}",
        std::process::id(),
        sgswitch::control::store::new_uuid()
    ));
    fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn changes_survive_a_restart() {
    let dir = tempdir("restart");
    let (db_id, rule_id, port_rev);
    {
        let h = Harness::start_with(Some(&dir), None);
        assert!(
            dir.join(STATE_FILE).exists(),
            "seeded state is written at once"
        );
        let r = h.req(
            "POST",
            "/v2.0/security-groups",
            Some(json!({"security_group": {"name": "db"}})),
        );
        db_id = r.body["security_group"]["id"].as_str().unwrap().to_string();
        let r = h.rule(&db_id, json!({"direction": "ingress", "protocol": "tcp", "port_range_min": 5432, "port_range_max": 5432, "remote_ip_prefix": "10.0.0.7/24"}));
        assert_eq!(r.status, 201);
        rule_id = r.body["security_group_rule"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let a = h.port_id("vm-a");
        let r = h.req(
            "PUT",
            &format!("/v2.0/ports/{a}"),
            Some(json!({"port": {"security_groups": [db_id]}})),
        );
        assert_eq!(r.status, 200);
        port_rev = r.body["port"]["revision_number"].clone();
        assert!(dir.join(BACKUP_FILE).exists());
        // A rejected change does not touch the state file.
        let saved = fs::read(dir.join(STATE_FILE)).unwrap();
        let r = h.rule(&db_id, json!({"direction": "ingress", "protocol": "tcp", "port_range_min": 5432, "port_range_max": 5432, "remote_ip_prefix": "10.0.0.7/24"}));
        assert_eq!(r.status, 409);
        assert_eq!(fs::read(dir.join(STATE_FILE)).unwrap(), saved);
        h.handle.shutdown();
    }
    let h = Harness::start_with(Some(&dir), None);
    assert_eq!(h.sg_id("db"), db_id);
    let r = h.req(
        "GET",
        &format!("/v2.0/security-group-rules/{rule_id}"),
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["security_group_rule"]["remote_ip_prefix"],
        "10.0.0.7/24"
    );
    let r = h.req("GET", &format!("/v2.0/ports/{}", h.port_id("vm-a")), None);
    assert_eq!(r.body["port"]["security_groups"], json!([db_id]));
    assert_eq!(r.body["port"]["revision_number"], port_rev);
    let m = h.store.model();
    assert_eq!(m.port("vm-a").unwrap().security_groups, ["db"]);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn corrupt_or_torn_state_file_is_refused() {
    let dir = tempdir("corrupt");
    {
        let h = Harness::start_with(Some(&dir), None);
        let r = h.req(
            "POST",
            "/v2.0/security-groups",
            Some(json!({"security_group": {"name": "db"}})),
        );
        assert_eq!(r.status, 201);
    }
    let file = dir.join(STATE_FILE);
    let good = fs::read(&file).unwrap();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (good[..good.len() / 2].to_vec(), "length mismatch"),
        (
            {
                let mut b = good.clone();
                let n = b.len() - 20;
                b[n] ^= 0x01;
                b
            },
            "checksum",
        ),
        (Vec::new(), "no header"),
        (b"{\"json\": true}\n".to_vec(), "not an sgswitch state file"),
    ];
    for (bytes, why) in cases {
        fs::write(&file, &bytes).unwrap();
        let err = Store::open(Some(&dir), &api_common::seed()).expect_err("refused");
        assert!(matches!(err, StoreError::Corrupt { .. }));
        let msg = err.to_string();
        assert!(msg.contains(&file.display().to_string()), "{msg}");
        assert!(msg.contains(why), "{why}: {msg}");
        assert!(msg.contains(BACKUP_FILE), "{msg}");
        // The corrupt file is left alone (not overwritten with the seed).
        assert_eq!(fs::read(&file).unwrap(), bytes);
    }
    // The backup is the last good state: putting it back recovers.
    fs::copy(dir.join(BACKUP_FILE), &file).unwrap();
    let store = Store::open(Some(&dir), &api_common::seed()).expect("backup is valid");
    assert!(store.model().group("web").is_some());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn config_seeds_only_the_first_launch_and_reload_keeps_ids() {
    let dir = tempdir("seed");
    let first = Store::open(Some(&dir), &api_common::seed()).unwrap();
    let web_id = first.snapshot().group_id("web").unwrap().to_string();
    drop(first);
    // A different config on the next start does not override the saved state.
    let other = config::parse_str("[[security_groups]]\nname = \"only\"\n", "other.toml").unwrap();
    let store = Store::open(Some(&dir), &other).unwrap();
    assert!(store.model().group("web").is_some());
    assert!(store.model().group("only").is_none());
    // Declarative reload: applies the config whole; unchanged objects keep their ids.
    let mut cfg = api_common::seed();
    cfg.model.security_groups[1].description = "changed".into();
    let before = store.snapshot();
    store.replace_model(&cfg.model).unwrap();
    let after = store.snapshot();
    assert_eq!(after.group_id("web").unwrap().to_string(), web_id);
    assert_eq!(after.meta.ports, before.meta.ports);
    let rev = |s: &sgswitch::control::store::State, n: &str| {
        s.meta.groups[s.group_by_name(n).unwrap()]
            .obj
            .revision_number
    };
    assert_eq!(rev(&after, "web"), rev(&before, "web"));
    assert_eq!(rev(&after, "nostate"), rev(&before, "nostate") + 1);
    // Export gives the config back.
    assert_eq!(store.export().model, cfg.model);
    drop(store);
    assert_eq!(
        Store::export_from(Some(&dir), &other).unwrap().model,
        cfg.model
    );
    let fresh = tempdir("fresh");
    assert_eq!(Store::export_from(Some(&fresh), &other).unwrap(), other);
    assert!(
        !fresh.join(STATE_FILE).exists(),
        "export_from writes nothing"
    );
    fs::remove_dir_all(&fresh).unwrap();
    let again = Store::open(Some(&dir), &other).unwrap();
    assert_eq!(again.model(), cfg.model);
    fs::remove_dir_all(&dir).unwrap();
}

/// A state directory written by an earlier build (`tests/fixtures/state-v1`: the example
/// config plus groups, rules, an address group and three ports created through the API,
/// one port renamed) still loads: the same model (its export is `export.toml`), the same
/// ids, timestamps and revisions.
#[test]
fn a_state_directory_written_by_an_earlier_build_loads() {
    let fixture = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/state-v1"
    ));
    let dir = tempdir("fixture");
    fs::copy(fixture.join(STATE_FILE), dir.join(STATE_FILE)).unwrap();
    let seed = config::parse_str(include_str!("../configs/example.toml"), "example.toml").unwrap();
    let store = Store::open(Some(&dir), &seed).expect("the old state file loads");
    assert_eq!(
        config::to_toml_string(&store.export()),
        fs::read_to_string(fixture.join("export.toml")).unwrap()
    );
    // Opening did not rewrite the file.
    assert_eq!(
        fs::read(dir.join(STATE_FILE)).unwrap(),
        fs::read(fixture.join(STATE_FILE)).unwrap()
    );
    let (status, body) = sgswitch::control::api::handle(
        &store,
        "GET",
        "/v2.0/security-groups/46089e3e-f8bc-477d-a0bf-1a4db9c26ae3",
        "h",
        b"",
    );
    assert_eq!(status, 200);
    let g = &body.unwrap()["security_group"];
    assert_eq!(g["name"], "default");
    assert_eq!(g["created_at"], "2026-12-03T12:48:12Z");
    let (status, body) = sgswitch::control::api::handle(
        &store,
        "GET",
        "/v2.0/ports/0a97509c-6de4-43e3-934e-41034ac3a963",
        "h",
        b"",
    );
    assert_eq!(status, 200);
    let p = &body.unwrap()["port"];
    assert_eq!(p["name"], "renamed");
    assert_eq!(p["revision_number"], 1);
    let _ = fs::remove_dir_all(&dir);
}
