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
//! TLS: [`EtcdServer::start_tls`] makes a throwaway CA, a server certificate for
//! 127.0.0.1 and a client certificate with `openssl` (P-256 keys) and runs etcd with
//! `--client-cert-auth`: clients need `etcds://`, the CA and the client certificate
//! ([`EtcdServer::tls`]). Readiness is checked on a plain `--listen-metrics-urls` port
//! (`/health`) in both modes.
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
    /// Plain HTTP `/health` and `/metrics`.
    pub metrics_port: u16,
    dir: PathBuf,
    tls: Option<TlsFiles>,
    /// Addresses the client port listens on besides 127.0.0.1 (a test's namespaces reach
    /// etcd there: [`EtcdServer::start_also_on`]).
    also: Vec<std::net::IpAddr>,
}

/// The PEM files a client of a TLS etcd needs.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The CA that signed the server's (and the client's) certificate.
    pub ca: PathBuf,
    /// The client certificate and its key.
    pub cert: PathBuf,
    pub key: PathBuf,
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
        EtcdServer::start_with(false, &[])
    }

    /// [`EtcdServer::start`], its client port also listening on each address of `also`
    /// (which must be assigned in this namespace: a test's veth towards its network
    /// namespaces, so that processes there reach etcd at [`EtcdServer::url_at`]).
    pub fn start_also_on(also: &[std::net::IpAddr]) -> Result<EtcdServer, String> {
        EtcdServer::start_with(false, also)
    }

    /// Start a fresh etcd that takes only TLS clients with a certificate of its CA
    /// (needs `openssl`).
    pub fn start_tls() -> Result<EtcdServer, String> {
        EtcdServer::start_with(true, &[])
    }

    fn start_with(tls: bool, also: &[std::net::IpAddr]) -> Result<EtcdServer, String> {
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
            let ports = free_port().and_then(|c| Ok((c, free_port()?, free_port()?)));
            let (client_port, peer_port, metrics_port) =
                ports.map_err(|e| format!("a free port: {e}"))?;
            let tls = if tls {
                Some(make_certificates(&dir)?)
            } else {
                None
            };
            let mut s = EtcdServer {
                child: None,
                bin: bin.clone(),
                client_port,
                peer_port,
                metrics_port,
                dir,
                tls,
                also: also.to_vec(),
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
        if !tools_or_skip(test, false) {
            return None;
        }
        Some(EtcdServer::start().unwrap_or_else(|e| panic!("{test}: etcd did not start: {e}")))
    }

    /// [`EtcdServer::start_tls`], skipping like [`EtcdServer::start_or_skip`] (also
    /// without `openssl`).
    pub fn start_tls_or_skip(test: &str) -> Option<EtcdServer> {
        if !tools_or_skip(test, true) {
            return None;
        }
        Some(
            EtcdServer::start_tls()
                .unwrap_or_else(|e| panic!("{test}: etcd (TLS) did not start: {e}")),
        )
    }

    /// The client's TLS files (a TLS server only).
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// `127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// `etcd://127.0.0.1:PORT` (`etcds://` for a TLS server), for `--store`.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "etcds" } else { "etcd" };
        format!("{scheme}://{}", self.endpoint())
    }

    /// As [`EtcdServer::url`] at `ip`, one of the addresses given to
    /// [`EtcdServer::start_also_on`].
    pub fn url_at(&self, ip: std::net::IpAddr) -> String {
        let scheme = if self.tls.is_some() { "etcds" } else { "etcd" };
        format!(
            "{scheme}://{}",
            std::net::SocketAddr::new(ip, self.client_port)
        )
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
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let client = format!("{scheme}://127.0.0.1:{}", self.client_port);
        let listen: Vec<String> = std::iter::once(client.clone())
            .chain(self.also.iter().map(|ip| {
                format!(
                    "{scheme}://{}",
                    std::net::SocketAddr::new(*ip, self.client_port)
                )
            }))
            .collect();
        let metrics = format!("http://127.0.0.1:{}", self.metrics_port);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| format!("{}: {e}", self.log_path().display()))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(&self.bin);
        if self.tls.is_some() {
            let f = |name: &str| self.dir.join(name).display().to_string();
            cmd.arg(format!("--cert-file={}", f("server.pem")))
                .arg(format!("--key-file={}", f("server.key")))
                .arg(format!("--trusted-ca-file={}", f("ca.pem")))
                .arg("--client-cert-auth");
        }
        let child = cmd
            .arg("--name=sgswitch-test")
            .arg(format!("--listen-metrics-urls={metrics}"))
            .arg(format!("--data-dir={}", self.dir.join("data").display()))
            .arg(format!("--listen-client-urls={}", listen.join(",")))
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
            if healthy(self.metrics_port) {
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

/// Whether `openssl` runs.
fn has_openssl() -> bool {
    Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// True when etcd (and openssl, for `tls`) are here; else a visible skip, or a panic
/// under CI.
fn tools_or_skip(test: &str, tls: bool) -> bool {
    let bin = etcd_binary();
    let reason = if !bin.exists() {
        format!(
            "no etcd at {} (Debian: apt install etcd-server; SGSWITCH_ETCD=PATH)",
            bin.display()
        )
    } else if tls && !has_openssl() {
        "no openssl (Debian: apt install openssl)".to_string()
    } else {
        return true;
    };
    assert!(!in_ci(), "{test}: cannot run under CI: {reason}");
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
    false
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate in `dir`.
fn make_certificates(dir: &Path) -> Result<TlsFiles, String> {
    let openssl = |args: &[&str]| -> Result<(), String> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .map_err(|e| format!("openssl: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=sgswitch-test-ca",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(&ca)?;
    for (name, usage) in [("server", "serverAuth"), ("client", "clientAuth")] {
        let (key, csr, pem, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        std::fs::write(
            dir.join(&ext),
            format!(
                "subjectAltName=IP:127.0.0.1\nextendedKeyUsage={usage}\n\
                 basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
            ),
        )
        .map_err(|e| e.to_string())?;
        let subj = format!("/CN=sgswitch-test-{name}");
        let mut req = vec!["req"];
        req.extend(ec);
        req.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
        openssl(&req)?;
        openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            &ext,
        ])?;
    }
    Ok(TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("client.pem"),
        key: dir.join("client.key"),
    })
}

/// etcd's `/health` on the metrics port says `"health":"true"`.
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
