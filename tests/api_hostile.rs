//! Hostile and unauthenticated API clients (#14): idle connections, bodies dribbled a
//! byte a second, a 1 GB header line, running out of file descriptors, the token file,
//! requests without the token, and port backends from a caller that is not an admin.
//!
//! In process (the API on an ephemeral loopback port, `tests/api_common`) where the
//! server alone is under test; against a child `sgswitch run` (no ports, no root needed)
//! for the token file and `EMFILE` (its `RLIMIT_NOFILE` lowered before exec).

mod api_common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use api_common::{err_type, Harness};
use serde_json::json;
use sgswitch::control::http_client::Client;

/// One request on a fresh connection: its status (0 if no answer came within `wait`).
fn status_of(addr: SocketAddr, req: &str, wait: Duration) -> u16 {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, wait) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(wait));
    if s.write_all(req.as_bytes()).is_err() {
        return 0;
    }
    let mut line = String::new();
    let _ = BufReader::new(s).read_line(&mut line);
    line.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn get(path: &str, token: Option<&str>) -> String {
    let auth = token
        .map(|t| format!("X-Auth-Token: {t}\r\n"))
        .unwrap_or_default();
    format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}\r\n")
}

fn vm_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn idle_connections_never_lock_out_a_request() {
    let h = Harness::start();
    let addr = h.handle.local_addr();
    // 300 connections that never send a byte: more than the listener keeps (256).
    let idle: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    assert_eq!(
        status_of(
            addr,
            &get("/v2.0/security-groups", None),
            Duration::from_secs(5)
        ),
        200
    );
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    let stats = h.handle.listener_stats();
    assert!(
        stats.shed.load(std::sync::atomic::Ordering::Relaxed) >= 44,
        "the oldest idle ones are shed: {stats:?}"
    );
    assert!(h.handle.connections() <= 256);
    drop(idle);
}

#[test]
fn slow_bodies_never_delay_other_clients() {
    let h = Harness::start();
    let addr = h.handle.local_addr();
    let body = r#"{"security_group": {"name": "slow"}}"#;
    // More dribblers than handler threads: none of them holds one.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let dribblers: Vec<_> = (0..6)
        .map(|_| {
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                let head = format!(
                    "POST /v2.0/security-groups HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                s.write_all(head.as_bytes()).unwrap();
                for b in body.bytes() {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    if s.write_all(&[b]).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..20 {
        let t = Instant::now();
        assert_eq!(
            status_of(addr, &get("/v2.0/ports", None), Duration::from_secs(5)),
            200
        );
        assert!(
            t.elapsed() < Duration::from_millis(1500),
            "{:?}",
            t.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for d in dribblers {
        d.join().unwrap();
    }
}

#[test]
fn a_huge_header_line_is_refused_without_buffering_it() {
    let h = Harness::start();
    let addr = h.handle.local_addr();
    let before = vm_rss_kib();
    let mut s = TcpStream::connect(addr).unwrap();
    let mut reader = s.try_clone().unwrap();
    reader
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let answer = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        // The answer comes while the client is still sending.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            if got.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        String::from_utf8_lossy(&got).into_owned()
    });
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /v2.0/ports HTTP/1.1\r\nHost: x\r\nX-Big: ")
        .unwrap();
    let chunk = vec![b'a'; 1 << 20];
    let mut sent: u64 = 0;
    // Up to 1 GiB, until the server stops taking it.
    while sent < 1 << 30 {
        match s.write(&chunk) {
            Ok(n) => sent += n as u64,
            Err(_) => break,
        }
    }
    let head = answer.join().unwrap();
    assert!(
        head.starts_with("HTTP/1.1 431 "),
        "after {sent} bytes: {head:?}"
    );
    let grown = vm_rss_kib().saturating_sub(before);
    assert!(grown < 64 << 10, "RSS grew by {grown} KiB");
    // And the server still answers.
    assert_eq!(
        status_of(addr, &get("/v2.0/ports", None), Duration::from_secs(5)),
        200
    );
}

#[test]
fn backends_only_from_an_admin() {
    let profile = json!({"port": {
        "name": "vm-x", "network_id": "net1",
        "binding:profile": {"type": "afpacket", "ifname": "eth0"}
    }});
    // No token: nobody is an admin.
    let h = Harness::start();
    let net1 = h.store.snapshot().network_id("net1").unwrap().to_string();
    let mut body = profile.clone();
    body["port"]["network_id"] = json!(net1);
    let r = h.req("POST", "/v2.0/ports", Some(body.clone()));
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(err_type(&r), "PolicyNotAuthorized");
    assert!(h.store.model().port("vm-x").is_none());
    // Nor by a port update (a backend cannot be set after creation at all).
    let vm_a = h.port_id("vm-a");
    let r = h.req(
        "PUT",
        &format!("/v2.0/ports/{vm_a}"),
        Some(json!({"port": {"binding:profile": {"type": "tap", "ifname": "t0"}}})),
    );
    assert!(r.status >= 400, "{} {}", r.status, r.body);
    // Without a backend the same caller may create the port.
    body["port"]
        .as_object_mut()
        .unwrap()
        .remove("binding:profile");
    assert_eq!(h.req("POST", "/v2.0/ports", Some(body.clone())).status, 201);

    // With a token: the request carrying it is an admin's; one without is refused
    // before anything else.
    let h = Harness::start_with(None, Some("admin-secret"));
    let anon = Client::new(&h.endpoint(), None).unwrap();
    let mut body = profile;
    body["port"]["network_id"] = json!(net1);
    let r = anon.raw("POST", "/v2.0/ports", Some(&body)).unwrap();
    assert_eq!(r.status, 401);
    assert!(h.store.model().port("vm-x").is_none());
}

/// `binding:host_id` decides which host attaches a port: admin only, as Neutron's
/// `create_port:binding:host_id` and `update_port:binding:host_id`.
#[test]
fn host_binding_only_from_an_admin() {
    let h = Harness::start();
    let net1 = h.store.snapshot().network_id("net1").unwrap().to_string();
    let body = json!({"port": {"name": "vm-h", "network_id": net1,
                               "binding:host_id": "compute-2"}});
    let r = h.req("POST", "/v2.0/ports", Some(body.clone()));
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(err_type(&r), "PolicyNotAuthorized");
    assert!(r.body.to_string().contains("binding:host_id"), "{}", r.body);
    assert!(h.store.model().port("vm-h").is_none());
    // An update that binds or unbinds is refused too, and changes nothing.
    let vm_a = h.port_id("vm-a");
    let before = h.store.model().port("vm-a").unwrap().host.clone();
    for host in [json!("compute-2"), json!(""), json!(null)] {
        let r = h.req(
            "PUT",
            &format!("/v2.0/ports/{vm_a}"),
            Some(json!({"port": {"binding:host_id": host}})),
        );
        assert_eq!(r.status, 403, "{host}: {}", r.body);
    }
    assert_eq!(h.store.model().port("vm-a").unwrap().host, before);
    // Without the attribute (or with it empty) the same caller may create the port.
    let mut plain = body.clone();
    plain["port"]["binding:host_id"] = json!("");
    assert_eq!(h.req("POST", "/v2.0/ports", Some(plain)).status, 201);

    // The admin (the request carrying the token) may bind and re-bind.
    let h = Harness::start_with(None, Some("admin-secret"));
    let net1 = h.store.snapshot().network_id("net1").unwrap().to_string();
    let admin = Client::new(&h.endpoint(), Some("admin-secret".into())).unwrap();
    let mut body = body;
    body["port"]["network_id"] = json!(net1);
    let r = admin.raw("POST", "/v2.0/ports", Some(&body)).unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["port"]["binding:host_id"], "compute-2");
    let id = r.body["port"]["id"].as_str().unwrap().to_string();
    let r = admin
        .raw(
            "PUT",
            &format!("/v2.0/ports/{id}"),
            Some(&json!({"port": {"binding:host_id": "compute-3"}})),
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        h.store.model().port("vm-h").unwrap().host.as_deref(),
        Some("compute-3")
    );
}

// ---- against `sgswitch run` ------------------------------------------------------

/// A child `sgswitch run` with no ports; killed on drop.
struct Run {
    child: Child,
    dir: PathBuf,
    api: SocketAddr,
}

impl Run {
    fn start(tag: &str, args: &[&str], nofile: Option<u64>) -> Run {
        let dir =
            std::env::temp_dir().join(format!("sgswitch-hostile-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("c.toml");
        std::fs::write(&config, "[switch]\nworkers = 1\n").unwrap();
        let log = std::fs::File::create(dir.join("log")).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sgswitch"));
        cmd.arg("run")
            .arg("--config")
            .arg(&config)
            .args(["--api", "127.0.0.1:0"])
            .args(args)
            .env_remove("SGSWITCH_API_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(n) = nofile {
            // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
            unsafe {
                cmd.pre_exec(move || {
                    let l = libc::rlimit {
                        rlim_cur: n,
                        rlim_max: n,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &l) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = cmd.spawn().expect("spawn sgswitch run");
        let mut run = Run {
            child,
            dir,
            api: "127.0.0.1:0".parse().unwrap(),
        };
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            let log = run.log();
            if let Some(a) = log
                .lines()
                .find(|l| l.contains("ready ("))
                .and_then(|l| l.split("API on http://").nth(1))
                .map(|a| a.trim_end_matches(')'))
            {
                run.api = a.parse().unwrap();
                return run;
            }
            if let Ok(Some(st)) = run.child.try_wait() {
                panic!("sgswitch run exited ({st}):\n{log}");
            }
            assert!(Instant::now() < until, "not ready in 20 s:\n{log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn token_file_is_private_and_required() {
    let base = std::env::temp_dir().join(format!("sgswitch-hostile-tok-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let file = base.join("d/api-token");
    let run = Run::start("token", &["--api-token-file", file.to_str().unwrap()], None);
    let m = std::fs::metadata(&file).expect("token file created");
    assert_eq!(m.permissions().mode() & 0o777, 0o600);
    // SAFETY: geteuid has no preconditions.
    assert_eq!(m.uid(), unsafe { libc::geteuid() });
    let d = std::fs::metadata(file.parent().unwrap()).unwrap();
    assert_eq!(d.permissions().mode() & 0o777, 0o700);
    let token = std::fs::read_to_string(&file).unwrap();
    let token = token.trim();
    assert_eq!(token.len(), 64);
    let wait = Duration::from_secs(5);
    assert_eq!(status_of(run.api, &get("/v2.0/ports", None), wait), 401);
    assert_eq!(status_of(run.api, &get("/metrics", None), wait), 401);
    assert_eq!(
        status_of(run.api, &get("/v2.0/ports", Some("x")), wait),
        401
    );
    assert_eq!(
        status_of(run.api, &get("/v2.0/ports", Some(token)), wait),
        200
    );
    // Our own client reads the file.
    let o = Command::new(env!("CARGO_BIN_EXE_sgswitch"))
        .args(["stats", "--json", "--api", &format!("http://{}", run.api)])
        .arg("--token-file")
        .arg(&file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    // The token is not on the command line.
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", run.child.id())).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains(token));
    drop(run);
    let _ = std::fs::remove_dir_all(&base);
}

/// Open connections past the child's descriptor limit, close them: the API answers
/// again, and the accept errors were logged.
#[test]
fn emfile_is_survived() {
    let run = Run::start("emfile", &["--api-no-auth"], Some(64));
    let wait = Duration::from_secs(5);
    assert_eq!(status_of(run.api, &get("/v2.0/ports", None), wait), 200);
    let flood: Vec<TcpStream> = (0..200)
        .filter_map(|_| TcpStream::connect_timeout(&run.api, Duration::from_secs(1)).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    drop(flood);
    let until = Instant::now() + Duration::from_secs(10);
    let mut last = 0;
    while Instant::now() < until {
        last = status_of(run.api, &get("/v2.0/ports", None), wait);
        if last == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = run.log();
    assert_eq!(last, 200, "the API answers again:\n{log}");
    assert!(
        log.contains("cannot accept a connection"),
        "the accept errors are logged:\n{log}"
    );
    assert!(log.contains("WITHOUT authentication"), "{log}");
}
