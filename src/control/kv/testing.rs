//! A real etcd for tests and benchmarks: [`EtcdServer::start`] runs `/usr/bin/etcd`
//! (`SGSWITCH_ETCD` overrides the path) on free 127.0.0.1 client and peer ports with a
//! temporary data directory (in `/dev/shm` when there is one: etcd 3.4 cannot turn fsync
//! off, a memory file system makes it cheap), waits until it answers, and kills it by its
//! PID and removes the directory on drop. [`EtcdServer::stop`] and
//! [`EtcdServer::restart`] keep the ports and the data, for outage tests.
//!
//! Flags for speed: one member, `--heartbeat-interval 25 --election-timeout 250` (it
//! elects itself at once, and the smallest lease TTL etcd grants becomes 1 s instead of
//! 2 s), `--snapshot-count 10000`, `--quota-backend-bytes 256 MiB`, errors-only logging
//! into `etcd.log` beside the data (its tail is in every start error).
//!
//! Skipping: [`EtcdServer::start_or_skip`] returns `None` (and prints `SKIPPED test:
//! reason` to the process's standard error, where `cargo test` shows it) when there is
//! no etcd binary; under `CI=true` it panics instead (`.ci/run` installs `etcd-server`),
//! like `tests/common`'s skip helpers.
//!
//! Owns: the etcd processes it starts. May not touch: any other process.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long etcd may take to answer after it was started.
pub const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A running (or stopped) etcd of this process's own.
pub struct EtcdServer {
    child: Option<Child>,
    bin: PathBuf,
    /// The client port on 127.0.0.1.
    pub client_port: u16,
    pub peer_port: u16,
    dir: PathBuf,
}

/// The etcd binary: `SGSWITCH_ETCD`, else `/usr/bin/etcd`.
pub fn etcd_binary() -> PathBuf {
    std::env::var_os("SGSWITCH_ETCD")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/etcd"))
}

fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl EtcdServer {
    /// Start a fresh etcd (see the module doc); an error says why, with etcd's log.
    pub fn start() -> Result<EtcdServer, String> {
        let bin = etcd_binary();
        if !bin.exists() {
            return Err(format!("no etcd binary at {}", bin.display()));
        }
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        // Free ports can be taken by someone else before etcd binds them: try again.
        let mut last = String::new();
        for _ in 0..3 {
            let n = SEQ.fetch_add(1, Ordering::Relaxed);
            let dir = base.join(format!("sgswitch-etcd-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let ports = free_port().and_then(|c| Ok((c, free_port()?)));
            let (client_port, peer_port) = ports.map_err(|e| format!("a free port: {e}"))?;
            let mut s = EtcdServer {
                child: None,
                bin: bin.clone(),
                client_port,
                peer_port,
                dir,
            };
            match s.spawn_and_wait() {
                Ok(()) => return Ok(s),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// [`EtcdServer::start`], or `None` after reporting a visible skip when there is no
    /// etcd binary; panics under `CI=true`, and when etcd is there but does not start.
    pub fn start_or_skip(test: &str) -> Option<EtcdServer> {
        let bin = etcd_binary();
        if !bin.exists() {
            let reason = format!(
                "no etcd at {} (Debian: apt install etcd-server; SGSWITCH_ETCD=PATH)",
                bin.display()
            );
            assert!(!in_ci(), "{test}: cannot run under CI: {reason}");
            let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
            return None;
        }
        match EtcdServer::start() {
            Ok(s) => Some(s),
            Err(e) => panic!("{test}: etcd did not start: {e}"),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// `etcd://127.0.0.1:PORT`, for `--store`.
    pub fn url(&self) -> String {
        format!("etcd://{}", self.endpoint())
    }

    /// The running etcd's PID (None while stopped).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The data and log directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stop etcd (SIGKILL by its PID, like a crash: the data stays). No-op if stopped.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same ports with the same data; returns once it answers.
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        let end = Instant::now() + Duration::from_secs(5);
        // The old process's ports may linger a moment.
        loop {
            match self.spawn_and_wait() {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() >= end => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("etcd.log")
    }

    fn log_tail(&self) -> String {
        let s = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let client = format!("http://127.0.0.1:{}", self.client_port);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| format!("{}: {e}", self.log_path().display()))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(&self.bin)
            .arg("--name=sgswitch-test")
            .arg(format!("--data-dir={}", self.dir.join("data").display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=sgswitch-test={peer}"))
            .args([
                "--heartbeat-interval=25",
                "--election-timeout=250",
                "--snapshot-count=10000",
                "--quota-backend-bytes=268435456",
                "--logger=zap",
                "--log-outputs=stderr",
                "--log-level=error",
            ])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("{}: {e}", self.bin.display()))?;
        self.child = Some(child);
        let end = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                return Err(format!(
                    "etcd exited at start ({status}); its log:\n{}",
                    self.log_tail()
                ));
            }
            if healthy(self.client_port) {
                return Ok(());
            }
            if Instant::now() >= end {
                self.stop();
                return Err(format!(
                    "etcd did not answer on {client} within {START_TIMEOUT:?}; its log:\n{}",
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(30));
        }
    }
}

/// etcd's `/health` on the client port says `"health":"true"`.
fn healthy(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET /health HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body.contains("\"health\":\"true\"")
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
