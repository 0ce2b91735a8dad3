//! Unit tests of the store on a failing disk (through the fault seam of `persist`), of
//! the state directory's lock, and of bulk rule creation's answers. The root test with
//! a real full tmpfs and the two-process lock test are `tests/store_faults.rs`.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::persist::fault;
use super::*;
use crate::control::config;
use crate::policy::spec::{RuleSpec, Scalar};

fn seed() -> Config {
    config::parse_str(
        r#"
[[security_groups]]
name = "web"
rules = [ { direction = "ingress", protocol = "tcp", port_range_min = 80, port_range_max = 80 } ]
"#,
        "seed.toml",
    )
    .expect("seed config")
}

/// A fresh state directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!(
            "sgswitch-store-{tag}-{}-{}",
            std::process::id(),
            new_uuid()
        ));
        fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// `Store::open` after the previous owner in this process dropped its store. Another
/// test thread that forks a child between our `open` of the lock file and its `exec`
/// holds a copy of the descriptor (close-on-exec closes it only at `exec`), and with it
/// the flock, for that moment: on a loaded machine a reopen saw `Locked { pid: None }`.
/// Retried for up to 2 s; a lock still held then is a real failure.
fn reopen(dir: &Path) -> Store {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match Store::open(Some(dir), &seed()) {
            Err(StoreError::Locked { .. }) if std::time::Instant::now() < end => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            r => return r.unwrap(),
        }
    }
}

/// A store on `dir` whose apply hook records the group count of every model it is
/// handed, and refuses the models of the calls `refuse` selects (by call number).
fn store_on(dir: &Path, refuse: fn(usize) -> bool) -> (Store, Arc<Mutex<Vec<usize>>>) {
    let store = Store::open(Some(dir), &seed()).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = Arc::clone(&seen);
    crate::control::connect(
        &store,
        Arc::new(move |m: &Model| {
            let mut s = s2.lock().unwrap();
            s.push(m.security_groups.len());
            if refuse(s.len()) {
                return Err(ApplyError::Rejected("the dataplane refused".into()));
            }
            Ok(())
        }),
    );
    (store, seen)
}

fn create_db(store: &Store) -> Result<String, StoreError> {
    store.create_group(&GroupCreate {
        name: "db".into(),
        ..Default::default()
    })
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_write_that_fails_at_any_step_changes_nothing_and_says_why() {
    // Seed model: default + web = 2 groups; the candidate has 3.
    for (step, before_apply) in [
        ("link", true),
        ("write", true),
        ("sync", true),
        ("rename", false),
        ("sync directory", false),
    ] {
        for (errno, ty, text) in [
            (libc::ENOSPC, "StorageFull", "No space left on device"),
            (libc::EDQUOT, "StorageFull", "Disk quota exceeded"),
            (libc::EIO, "StorageError", "Input/output error"),
        ] {
            let dir = TempDir::new("fault");
            let (store, seen) = store_on(&dir.0, |_| false);
            let before = store.snapshot();
            let saved = fs::read(dir.0.join(STATE_FILE)).unwrap();
            fault::inject(step, errno);
            let e = create_db(&store).unwrap_err();
            let what = format!("{step} {errno}: {e}");
            assert_eq!((e.http_status(), e.neutron_type()), (503, ty), "{what}");
            let msg = e.to_string();
            assert!(
                msg.contains(text) && msg.contains("nothing was changed"),
                "{what}"
            );
            assert!(
                msg.contains(&dir.0.display().to_string()),
                "names the file: {what}"
            );
            assert_eq!(*store.snapshot(), *before, "{what}");
            assert_eq!(fs::read(dir.0.join(STATE_FILE)).unwrap(), saved, "{what}");
            // The dataplane never ran a policy the disk does not have: a prepare step
            // fails before the hook; a commit step gives it the old model back.
            let seen = seen.lock().unwrap().clone();
            if before_apply {
                assert!(seen.is_empty(), "{what}: {seen:?}");
            } else {
                assert_eq!(seen, [3, 2], "{what}");
            }
            // No temp file left (the backup exists once a write got past `link`).
            let left = files(&dir.0);
            assert!(
                left.iter()
                    .all(|f| [LOCK_FILE, STATE_FILE, BACKUP_FILE].contains(&f.as_str())),
                "{what}: {left:?}"
            );
            // The disk is back: the same change succeeds and survives a restart.
            let id = create_db(&store).unwrap();
            drop(store);
            let again = reopen(&dir.0);
            assert!(again.snapshot().group_by_id(&id).is_some(), "{what}");
        }
    }
}

#[test]
fn a_refused_change_leaves_no_temp_file() {
    let dir = TempDir::new("refused");
    let (store, seen) = store_on(&dir.0, |_| true);
    let saved = fs::read(dir.0.join(STATE_FILE)).unwrap();
    assert!(matches!(create_db(&store), Err(StoreError::Apply(_))));
    assert_eq!(seen.lock().unwrap().as_slice(), [3]);
    assert_eq!(fs::read(dir.0.join(STATE_FILE)).unwrap(), saved);
    assert_eq!(files(&dir.0), [LOCK_FILE, STATE_FILE, BACKUP_FILE]);
}

#[test]
fn when_the_old_policy_cannot_be_re_applied_the_store_follows_the_dataplane() {
    // The rename fails, and the hook refuses the old model (its second call): the
    // dataplane runs the new policy, so the committed state is the new one, and the
    // error says it is not saved.
    let dir = TempDir::new("reapply");
    let (store, seen) = store_on(&dir.0, |call| call == 2);
    let saved = fs::read(dir.0.join(STATE_FILE)).unwrap();
    fault::inject("rename", libc::EIO);
    let e = create_db(&store).unwrap_err();
    assert!(
        matches!(
            &e,
            StoreError::Persist {
                outcome: PersistOutcome::RunningNotSaved(_),
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("running but not saved"), "{e}");
    assert_eq!(seen.lock().unwrap().as_slice(), [3, 2]);
    assert!(store.snapshot().group_by_name("db").is_some());
    assert_eq!(fs::read(dir.0.join(STATE_FILE)).unwrap(), saved);
}

#[test]
fn a_directory_that_cannot_be_synced_nor_restored_keeps_the_new_state() {
    let dir = TempDir::new("unsynced");
    let (store, seen) = store_on(&dir.0, |_| false);
    fault::inject("sync directory", libc::EIO);
    fault::inject("restore", libc::EIO);
    let e = create_db(&store).unwrap_err();
    assert!(
        matches!(
            &e,
            StoreError::Persist {
                outcome: PersistOutcome::SavedNotSynced,
                ..
            }
        ),
        "{e}"
    );
    // File, committed state and dataplane agree on the new state.
    assert_eq!(seen.lock().unwrap().as_slice(), [3]);
    assert!(store.snapshot().group_by_name("db").is_some());
    drop(store);
    let again = reopen(&dir.0);
    assert!(again.snapshot().group_by_name("db").is_some());
}

#[test]
fn the_state_directory_has_one_owner() {
    let dir = TempDir::new("lock");
    let first = Store::open(Some(&dir.0), &seed()).unwrap();
    let pid = std::process::id();
    assert_eq!(
        fs::read_to_string(dir.0.join(LOCK_FILE)).unwrap(),
        format!("{pid}\n")
    );
    // A second open (its own descriptor: flock excludes it as another process).
    let e = Store::open(Some(&dir.0), &seed()).unwrap_err();
    assert!(
        matches!(e, StoreError::Locked { pid: Some(p), .. } if p == pid),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        format!(
            "state directory {} is used by sgswitch pid {pid} (it holds {}); stop it first or give another --state-dir",
            dir.0.display(),
            dir.0.join(LOCK_FILE).display()
        )
    );
    // Reading beside the owner is allowed.
    assert!(Store::export_from(Some(&dir.0), &seed()).is_ok());
    drop(first);
    assert_eq!(fs::read_to_string(dir.0.join(LOCK_FILE)).unwrap(), "");
    // A stale PID (no lock held) is taken over.
    fs::write(dir.0.join(LOCK_FILE), "999999999\n").unwrap();
    let _second = reopen(&dir.0);
    assert_eq!(
        fs::read_to_string(dir.0.join(LOCK_FILE)).unwrap(),
        format!("{pid}\n")
    );
}

fn rule(group: &str, port: i64) -> RuleCreate {
    RuleCreate {
        security_group_id: group.to_string(),
        spec: RuleSpec {
            direction: Some("ingress".into()),
            protocol: Some(Scalar::Str("tcp".into())),
            port_range_min: Some(Scalar::Int(port)),
            port_range_max: Some(Scalar::Int(port)),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[test]
fn bulk_create_answers_duplicates_like_neutron() {
    let store = Store::open(None, &seed()).unwrap();
    let snap = store.snapshot();
    let web = snap.group_id("web").unwrap().to_string();
    let default = snap.group_id("default").unwrap().to_string();
    let existing = snap.meta.groups[snap.group_by_name("web").unwrap()].rules[0].id;
    // A duplicate of a rule of the group: 409 naming it.
    let e = store
        .create_rules(&[rule(&web, 22), rule(&web, 80)])
        .unwrap_err();
    assert_eq!(
        (e.http_status(), e.neutron_type()),
        (409, "SecurityGroupRuleExists")
    );
    assert_eq!(
        e.to_string(),
        format!("Security group rule already exists. Rule id is {existing}.")
    );
    // A duplicate inside the request.
    let e = store
        .create_rules(&[rule(&web, 22), rule(&default, 22), rule(&web, 22)])
        .unwrap_err();
    assert_eq!(
        (e.http_status(), e.neutron_type()),
        (409, "DuplicateSecurityGroupRuleInPost")
    );
    assert_eq!(*store.snapshot(), *snap);
    // The same rule in two groups is fine; ids come back in request order.
    let ids = store
        .create_rules(&[rule(&web, 22), rule(&default, 22), rule(&web, 23)])
        .unwrap();
    let after = store.snapshot();
    let at: Vec<_> = ids.iter().map(|id| after.rule_by_id(id).unwrap()).collect();
    let (w, d) = (
        after.group_by_name("web").unwrap(),
        after.group_by_name("default").unwrap(),
    );
    assert_eq!(at, [(w, 1), (d, 4), (w, 2)]);
    after.check().unwrap();
}

/// Rule keys computed (on this thread) by a bulk create of `n` rules into a group that
/// already has `m` rules (plus the seed's one).
fn keys_for_bulk(m: i64, n: i64) -> u64 {
    let store = Store::open(None, &seed()).unwrap();
    let web = store.snapshot().group_id("web").unwrap().to_string();
    let fill: Vec<_> = (0..m).map(|i| rule(&web, 1000 + i)).collect();
    store.create_rules(&fill).unwrap();
    let new: Vec<_> = (0..n).map(|i| rule(&web, 1000 + m + i)).collect();
    let k0 = crate::policy::validate::rule_keys_computed();
    store.create_rules(&new).unwrap();
    crate::policy::validate::rule_keys_computed() - k0
}

#[test]
fn bulk_create_work_is_linear_in_the_request_and_the_group() {
    // Before #14 every new rule was compared with every rule of its group, those of
    // the same request included: 1k into 1k cost ~1.5 million keys, 4k into 4k ~24
    // million. Now each group's keys are hashed once and each new rule keyed once.
    let small = keys_for_bulk(1000, 1000);
    let large = keys_for_bulk(4000, 4000);
    // (Debug builds also re-check the whole candidate: a few keys per rule more.)
    assert!(small <= 4 * 2001, "1k into 1k: {small} keys");
    assert!(large <= 4 * 8001, "4k into 4k: {large} keys");
    assert!(
        large * 10 <= small * 45,
        "4x the work should cost ~4x the keys: {small} -> {large}"
    );
}
