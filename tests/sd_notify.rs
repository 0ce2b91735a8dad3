//! `sgswitch run` speaks systemd's readiness protocol (`src/cli/notify.rs`): with
//! `$NOTIFY_SOCKET` set, as a `Type=notify` unit has it, it sends `READY=1` (with its
//! ready line as `STATUS=`) once it is ready, `RELOADING=1` then `READY=1` around a
//! SIGHUP reload, and `STOPPING=1` on SIGTERM. No root and no port needed: a config
//! without ports, the API on an ephemeral loopback port. The unit itself is proven under
//! systemd by `packaging/test-deb.sh` (a `.ci/run` step).

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Fixture {
    dir: PathBuf,
    child: Option<Child>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn recv(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = sock
        .recv(&mut buf)
        .expect("a notification within 20 s (read timeout)");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

#[test]
fn ready_reloading_stopping() {
    let dir = std::env::temp_dir().join(format!("sgswitch-sd-notify-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut fx = Fixture {
        dir: dir.clone(),
        child: None,
    };
    let config = dir.join("sg.toml");
    std::fs::write(
        &config,
        "[[security_groups]]\nname = \"web\"\nrules = [ { direction = \"egress\" } ]\n",
    )
    .unwrap();
    let sock_path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_sgswitch"))
        .args(["run", "--config"])
        .arg(&config)
        .args([
            "--api",
            "127.0.0.1:0",
            "--api-no-auth",
            "--no-pin",
            "--state-dir",
        ])
        .arg(dir.join("state"))
        .env("NOTIFY_SOCKET", &sock_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let child = fx.child.insert(child);

    let ready = recv(&sock);
    assert!(ready.starts_with("READY=1\nSTATUS=ready ("), "{ready:?}");
    assert!(ready.contains("API on http://127.0.0.1:"), "{ready:?}");
    assert!(!ready.ends_with('\n'), "one STATUS line: {ready:?}");

    signal(child, "-HUP");
    assert_eq!(recv(&sock), "RELOADING=1");
    let again = recv(&sock);
    assert_eq!(again, "READY=1\nSTATUS=ready, policy epoch 2 (reloaded)");

    signal(child, "-TERM");
    assert_eq!(recv(&sock), "STOPPING=1");
    let status = fx.child.take().unwrap().wait().unwrap();
    assert!(status.success(), "sgswitch run exited with {status}");
}
