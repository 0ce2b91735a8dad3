//! Health, readiness and status of a running switch (#17): `GET /healthz`, `GET /readyz`
//! (without the token), `GET /sgswitch/v1/status` and `sgswitch status`.
//!
//! One instance in a namespace behind a veth, on an AF_PACKET port: ready (200, `status`
//! UP); its veth deleted: `/readyz` 503 naming the port and its netdev, `status` DOWN with
//! the reason and `ready NO (...)`, `/healthz` still 200; the veth re-created: 200 again.
//! Also: `/sgswitch/v1/status` needs the token, the probes do not, and their answers carry
//! no secret (no token, no address, no path).
//!
//! Needs root, iproute2 and ethtool; without them it skips, under `CI=true` it fails.
//! The namespace, the veth and the switch are removed by guards, also on failure.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use sgswitch::control::http_client::Client;
use sgswitch::lab::topo::add_veth;

const POLICY: &str = r#"
[[security_groups]]
name = "inst"
rules = [ { direction = "egress", ethertype = "IPv4" } ]
"#;

/// How long a port's state may take to show (the supervisor checks once a second).
const WITHIN: Duration = Duration::from_secs(8);

/// `GET path` without a token: (status, body).
fn probe_get(addr: &str, path: &str) -> (u16, Value) {
    let c = Client::new(&format!("http://{addr}"), None).expect("client");
    let r = c.raw("GET", path, None).expect(path);
    (r.status, r.body)
}

/// Poll `/readyz` until it answers `want`; the body.
fn wait_ready(addr: &str, want: u16) -> Value {
    let t = Instant::now();
    loop {
        let (s, body) = probe_get(addr, "/readyz");
        if s == want {
            return body;
        }
        assert!(
            t.elapsed() < WITHIN,
            "/readyz still {s} after {WITHIN:?}: {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `sgswitch status [--json]` against `addr` (the default token file): stdout.
fn status_cli(addr: &str, json: bool) -> String {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sgswitch"));
    c.args(["status", "--api", &format!("http://{addr}")]);
    if json {
        c.arg("--json");
    }
    let out = c.output().expect("run sgswitch status");
    assert!(
        out.status.success(),
        "sgswitch status: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn readyz_follows_a_port_whose_netdev_goes_and_comes_back() {
    let test = "readyz_follows_a_port_whose_netdev_goes_and_comes_back";
    if !env_ready(test, Backend::AfPacket) {
        return;
    }
    let topo = Topo::new("hz", Backend::AfPacket, 1);
    let config = format!("{POLICY}{}", topo.ports_toml(&[r#"["inst"]"#]));
    let path = topo.write_config(&config);
    let sw = Switch::start(&path, &topo.dir.path);
    let addr = sw.api_addr().expect("API address");
    let i0 = &topo.insts[0];

    // Up: alive and ready, without a token; status needs it.
    assert_eq!(
        probe_get(&addr, "/healthz"),
        (200, serde_json::json!({"status": "alive"}))
    );
    let body = wait_ready(&addr, 200);
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(probe_get(&addr, "/sgswitch/v1/status").0, 401);
    let s: Value = serde_json::from_str(&status_cli(&addr, true)).expect("status --json");
    assert_eq!(s["ports"][0]["name"], "i0", "{s}");
    assert_eq!(s["ports"][0]["state"], "UP", "{s}");
    assert_eq!(s["ports"][0]["backend"], "afpacket", "{s}");
    assert_eq!(s["policy"]["epoch"], 1, "{s}");
    assert_eq!(
        s["version"]
            .as_str()
            .map(|v| v.starts_with(env!("CARGO_PKG_VERSION"))),
        Some(true)
    );
    assert_eq!(s["pid"], sw.pid(), "{s}");
    assert!(
        s["config"].as_str().is_some_and(|c| c.ends_with(".toml")),
        "{s}"
    );
    assert_eq!(s["workers"].as_array().map(Vec::len), Some(1), "{s}");

    // The veth goes: not ready, naming the port and why; still alive.
    sh(&["ip", "link", "del", &i0.link]);
    let body = wait_ready(&addr, 503);
    assert_eq!(body["status"], "not ready", "{body}");
    let nr = &body["ports"]["not_ready"][0];
    assert_eq!(nr["port"], "i0", "{body}");
    assert!(
        nr["reason"].as_str().is_some_and(|r| r.contains(&i0.link)),
        "the reason names the netdev: {body}"
    );
    let text = body.to_string();
    let token = sgswitch::control::api::token::client_token(None, None)
        .expect("token")
        .token
        .expect("a token file");
    assert!(!text.contains(&token), "no token in /readyz: {text}");
    assert!(
        !text.contains(&i0.v4) && !text.contains(i0.mac.as_str()),
        "{text}"
    );
    assert!(
        !text.contains(&*topo.dir.path.to_string_lossy()),
        "no path: {text}"
    );
    assert_eq!(probe_get(&addr, "/healthz").0, 200, "alive while not ready");
    let human = status_cli(&addr, false);
    assert!(human.contains("ready       NO (port i0: netdev"), "{human}");
    assert!(
        human
            .lines()
            .any(|l| l.starts_with("i0 ") && l.contains("DOWN (netdev")),
        "{human}"
    );

    // It comes back: ready again, UP.
    let _link = add_veth(&i0.link, &i0.ns).expect("re-create the veth");
    let body = wait_ready(&addr, 200);
    assert_eq!(body["ports"]["not_ready"], serde_json::json!([]), "{body}");
    let s: Value = serde_json::from_str(&status_cli(&addr, true)).expect("status --json");
    assert_eq!(s["ports"][0]["state"], "UP", "{s}");
    assert_eq!(s["ready"], true, "{s}");
}
