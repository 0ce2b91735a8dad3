//! The state directory under faults, with real processes and a real full disk: a second
//! `sgswitch run` on a directory in use is refused naming the owner's PID, the lock of a
//! process killed with `kill -9` is taken over, and a full tmpfs answers the API with
//! 503 `StorageFull` while the committed state, the file and the dataplane's policy stay
//! as they were. (The unit tests in `control::store::tests_disk` cover every write step
//! and errno through the fault seam; this file checks the real thing.)
//!
//! The tmpfs test needs root (`mount`); without it the test is skipped, or fails under
//! `CI=true`.

mod api_common;
#[path = "common/skip.rs"]
mod skip;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use api_common::{err_type, seed, Harness, SEED};
use serde_json::json;
use sgswitch::control::store::{Store, StoreError, LOCK_FILE, STATE_FILE};

/// A fresh directory, removed (after unmounting what `mounted` says) when dropped.
struct TempDir {
    path: PathBuf,
    mounted: bool,
}

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "sgswitch-faults-{tag}-{}-{}",
            std::process::id(),
            sgswitch::control::store::new_uuid()
        ));
        fs::create_dir_all(&path).unwrap();
        TempDir {
            path,
            mounted: false,
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(&self.path).status();
        }
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// `sgswitch run` on `dir` (API off, ports without backends), stderr captured.
fn run_on(dir: &Path, config: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sgswitch"))
        .args(["run", "--no-api", "--workers", "1", "--no-pin", "--config"])
        .arg(config)
        .arg("--state-dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sgswitch runs")
}

/// Kills the child (SIGKILL) and reaps it when dropped, also on a failed assertion.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < Duration::from_secs(20), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_second_process_on_a_state_directory_is_refused_and_a_dead_ones_lock_taken_over() {
    let dir = TempDir::new("lock");
    let config = dir.path.join("seed.toml");
    let state = dir.path.join("state");
    fs::write(&config, SEED).unwrap();

    // This process owns the directory: `sgswitch run` refuses to start, naming it.
    let owner = Store::open(Some(&state), &seed()).unwrap();
    let out = run_on(&state, &config).wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let me = std::process::id();
    assert!(
        stderr.contains(&format!(
            "state directory {} is used by sgswitch pid {me}",
            state.display()
        )),
        "{stderr}"
    );
    // `export` reads beside the owner.
    let out = Command::new(env!("CARGO_BIN_EXE_sgswitch"))
        .arg("export")
        .arg("--config")
        .arg(&config)
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(owner);

    // Now a `run` owns it: this process is refused, naming the child.
    let mut child = Reap(run_on(&state, &config));
    let pid = child.0.id();
    wait_for("the child writes its pid in the lock file", || {
        fs::read_to_string(state.join(LOCK_FILE)).is_ok_and(|s| s.trim() == pid.to_string())
    });
    match Store::open(Some(&state), &seed()) {
        Err(StoreError::Locked { pid: Some(p), .. }) => assert_eq!(p, pid),
        other => panic!("expected Locked by {pid}: {:?}", other.map(|_| ())),
    }
    // kill -9: the kernel releases the flock; the stale PID in the file is ignored.
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let again = Store::open(Some(&state), &seed()).expect("a dead owner's lock is taken over");
    assert_eq!(
        fs::read_to_string(state.join(LOCK_FILE)).unwrap().trim(),
        me.to_string()
    );
    drop(again);
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Fill the file system holding `dir` with `dir/filler` until it is full.
fn fill(dir: &Path) -> PathBuf {
    let filler = dir.join("filler");
    let mut f = fs::File::create(&filler).unwrap();
    let chunk = [0xa5u8; 512];
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("filling {}: {e}", filler.display()),
        }
    }
    filler
}

#[test]
fn a_full_disk_answers_503_and_changes_nothing() {
    if !is_root() {
        assert!(
            std::env::var("CI").is_err(),
            "a_full_disk_answers_503_and_changes_nothing needs root (mount -t tmpfs) under CI=true"
        );
        skip::skip(
            "a_full_disk_answers_503_and_changes_nothing",
            "needs root to mount a tmpfs",
        );
        return;
    }
    let mut dir = TempDir::new("full");
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "sgswitch-full"])
        .arg(&dir.path)
        .status()
        .unwrap();
    assert!(status.success(), "mount -t tmpfs");
    dir.mounted = true;

    let h = Harness::start_with(Some(&dir.path), None);
    let web = h.sg_id("web");
    let rule = |port: u16| json!({"direction": "ingress", "protocol": "tcp", "port_range_min": port, "port_range_max": port});
    assert_eq!(h.rule(&web, rule(22)).status, 201);
    let (before, published) = (h.store.snapshot(), h.published_count());
    let saved = fs::read(dir.path.join(STATE_FILE)).unwrap();
    let filler = fill(&dir.path);

    // A single rule and a bulk request: both 503, naming the file and the OS error.
    let bulk = json!({"security_group_rules": (1000..1020).map(|p| {
        let mut r = rule(p);
        r["security_group_id"] = json!(web);
        r
    }).collect::<Vec<_>>()});
    for r in [
        h.rule(&web, rule(443)),
        h.req("POST", "/v2.0/security-group-rules", Some(bulk.clone())),
    ] {
        assert_eq!(r.status, 503, "{}", r.body);
        assert_eq!(err_type(&r), "StorageFull");
        let msg = r.body["NeutronError"]["message"].as_str().unwrap();
        assert!(
            msg.contains(&dir.path.display().to_string())
                && msg.contains("No space left on device")
                && msg.contains("nothing was changed"),
            "{msg}"
        );
    }
    // Nothing changed: the committed state, the file, and the dataplane was never
    // handed the new policy; no temp file is left taking space.
    assert_eq!(*h.store.snapshot(), *before);
    assert_eq!(h.published_count(), published);
    assert_eq!(fs::read(dir.path.join(STATE_FILE)).unwrap(), saved);
    assert!(!dir.path.join("state.json.tmp").exists());

    // Space again: the same requests succeed and survive a restart.
    fs::remove_file(&filler).unwrap();
    assert_eq!(h.rule(&web, rule(443)).status, 201);
    let r = h.req("POST", "/v2.0/security-group-rules", Some(bulk));
    assert_eq!(r.status, 201, "{}", r.body);
    let rules = h.store.model().group("web").unwrap().rules.len();
    let store = h.store;
    h.handle.shutdown();
    drop(store);
    let reopened = Store::open(Some(&dir.path), &seed()).unwrap();
    assert_eq!(reopened.model().group("web").unwrap().rules.len(), rules);
}
