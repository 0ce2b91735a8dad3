//! Ports that come back (#14): a port whose netdev disappears is reported DOWN (API and
//! log) while the other ports keep forwarding, and re-attaches by itself when a netdev of
//! that name returns.
//!
//! Each test runs `sgswitch run` with two workers between three instances (i0, i1, i2;
//! i2 shares a worker with i0), a ping flood i0 → i1 and an open TCP connection i0 → i1
//! running throughout, and then:
//! * `veth_afpacket_*`, `veth_afxdp_*`: deletes i2's veth (`ip link del`, which removes
//!   both ends); the API's port `status` of i2 turns `DOWN` within a few seconds and the
//!   log has a WARN line naming i2 and why, i0 and i1 stay `ACTIVE`; re-creates the veth
//!   with the same name, its peer in i2's namespace again (the instance configures its
//!   side as at first start); without any command to the switch, i2 turns `ACTIVE`, an
//!   INFO line says it is back, and ping and TCP between i2 and the others work again.
//! * `tap_*`: the switch created i2's tap in i2's namespace; deleting that namespace
//!   deletes the tap (the instance is gone): `DOWN`; the switch cannot re-create it until
//!   the namespace exists again, so it stays `DOWN`; once a namespace of that name is
//!   back, the switch re-creates the tap in it (`ACTIVE`), and traffic resumes once the
//!   instance has configured it. Before that, a tap deleted with `ip link del` inside a
//!   namespace that stays is re-created by the switch within a couple of seconds.
//! * Throughout: the ping flood i0 → i1 loses (almost) nothing and the TCP connection
//!   opened before the fault still answers after it.
//!
//! The text log format has no level column: the lines are matched by their message (the
//! switch logs DOWN at WARN and ACTIVE again at INFO; `supervise`'s doc says so).
//!
//! Needs root, iproute2, iputils-ping, python3 (and ethtool for veths); without them a
//! test skips, under `CI=true` it fails. Every namespace, link and process is removed by
//! a guard, also when an assertion fails. The tests of this file run one at a time.

mod common;

use std::process::{Child, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use sgswitch::control::http_client::Client;
use sgswitch::lab::topo::add_veth;

static SERIAL: Mutex<()> = Mutex::new(());

const POLICY: &str = r#"
[switch]
workers = 2

[[security_groups]]
name = "inst"
rules = [
  { direction = "ingress", ethertype = "IPv4", protocol = "tcp", port_range_min = 7000, port_range_max = 7000 },
  { direction = "ingress", ethertype = "IPv4", protocol = "icmp" },
  { direction = "egress", ethertype = "IPv4" },
  { direction = "egress", ethertype = "IPv6" },
]
"#;

const GROUPS: [&str; 3] = [r#"["inst"]"#, r#"["inst"]"#, r#"["inst"]"#];

/// How long a status change may take to show in the API.
const WITHIN: Duration = Duration::from_secs(6);

/// The API's `status` of every port, by name.
fn statuses(api: &Client) -> Vec<(String, String)> {
    let v: Value = api.get("/v2.0/ports").expect("GET /v2.0/ports");
    v["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or("").to_string(),
                p["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn status_of(api: &Client, port: &str) -> String {
    statuses(api)
        .into_iter()
        .find(|(n, _)| n == port)
        .map(|(_, s)| s)
        .unwrap_or_else(|| panic!("no port {port} in the API"))
}

/// Wait until the API says `port` is `want`; how long it took.
fn wait_status(api: &Client, sw: &Switch, port: &str, want: &str) -> Duration {
    let t = Instant::now();
    while t.elapsed() < WITHIN {
        if status_of(api, port) == want {
            return t.elapsed();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "port {port} not {want} within {WITHIN:?} (API: {:?}); switch log:\n{}",
        statuses(api),
        sw.log_text()
    );
}

/// `ping -i 0.05` from `ns` to `dst` for `secs` seconds in the background.
struct PingFlood {
    child: Option<Child>,
}

impl PingFlood {
    fn start(ns: &Netns, dst: &str, secs: u32) -> PingFlood {
        let w = secs.to_string();
        let child = ns
            .cmd(&["ping", "-n", "-q", "-i", "0.05", "-w", &w, dst])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ping");
        PingFlood { child: Some(child) }
    }

    /// Wait for it to end: (transmitted, received).
    fn finish(mut self) -> (u32, u32) {
        let child = self.child.take().expect("running");
        let out = child.wait_with_output().expect("ping output");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.contains("packets transmitted"))
            .unwrap_or_else(|| panic!("ping summary missing:\n{text}"));
        // "N packets transmitted, M received, ..."
        let num = |word: &str| -> u32 {
            let before = line.split(word).next().unwrap_or("");
            before
                .split([',', ' '])
                .rfind(|t| !t.is_empty())
                .and_then(|t| t.parse().ok())
                .unwrap_or(0)
        };
        (num(" packets transmitted"), num(" received"))
    }
}

impl Drop for PingFlood {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// What the fault does and how the instance comes back.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fault {
    /// Delete i2's veth, then create it again.
    DeleteVeth,
    /// Delete i2's namespace (and with it the tap), then create the namespace again.
    DeleteNetns,
}

/// The whole scenario for one backend.
fn ports_come_back(tag: &str, backend: Backend, fault: Fault) {
    let test = format!("ports_come_back_{backend:?}");
    if !env_ready(&test, backend) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let topo = Topo::new(tag, backend, 3);
    let config = format!("{POLICY}{}", topo.ports_toml(&GROUPS));
    let path = topo.write_config(&config);
    let sw = Switch::start(&path, &topo.dir.path);
    if backend == Backend::Tap {
        topo.configure();
    }
    let api = sw.api_client();
    let (i0, i1, i2) = (&topo.insts[0], &topo.insts[1], &topo.insts[2]);
    assert!(ping(&i0.ns, &i1.v4, None, 5), "i0 -> i1 before the fault");
    assert!(ping(&i0.ns, &i2.v4, None, 5), "i0 -> i2 before the fault");
    for (n, s) in statuses(&api) {
        assert_eq!(s, "ACTIVE", "port {n} before the fault");
    }
    let _server = echo_server(&i1.ns, &[7000], &[]);
    let mut conn = LineClient::connect(&i0.ns, &i1.v4, 7000, 3).expect("TCP i0 -> i1");
    assert_eq!(conn.exchange("before"), "ok");
    let flood = PingFlood::start(&i0.ns, &i1.v4, 10);
    std::thread::sleep(Duration::from_millis(500));

    // The fault.
    let off = sw.log_len();
    match fault {
        Fault::DeleteVeth => {
            sh(&["ip", "link", "del", &i2.link]);
        }
        Fault::DeleteNetns => {
            sh(&["ip", "netns", "del", &i2.ns.name]);
        }
    }
    let took = wait_status(&api, &sw, "i2", "DOWN");
    eprintln!("{test}: i2 DOWN in the API {took:?} after the fault");
    assert_eq!(status_of(&api, "i0"), "ACTIVE");
    assert_eq!(status_of(&api, "i1"), "ACTIVE");
    let log = sw.log_from(off);
    let warn = log
        .lines()
        .find(|l| l.contains("port i2 DOWN: "))
        .unwrap_or_else(|| panic!("no DOWN line for i2 in the log:\n{log}"));
    eprintln!("{test}: {warn}");
    // It stays down while its device is missing (the switch keeps trying quietly).
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(status_of(&api, "i2"), "DOWN", "nothing to re-attach to yet");
    assert!(ping(&i0.ns, &i1.v4, None, 3), "i0 -> i1 while i2 is down");

    // The device comes back.
    let _new_link = match fault {
        Fault::DeleteVeth => Some(add_veth(&i2.link, &i2.ns).expect("re-create the veth")),
        Fault::DeleteNetns => {
            sh(&["ip", "netns", "add", &i2.ns.name]);
            sh(&["ip", "-n", &i2.ns.name, "link", "set", "lo", "up"]);
            None
        }
    };
    let off = sw.log_len();
    if fault == Fault::DeleteVeth {
        // The instance configures its side of the new veth (MAC, addresses).
        topo.configure_one(2);
    }
    let took = wait_status(&api, &sw, "i2", "ACTIVE");
    eprintln!("{test}: i2 ACTIVE again {took:?} after its device came back");
    if fault == Fault::DeleteNetns {
        // The switch created the tap in the new namespace: the instance configures it.
        topo.configure_one(2);
    }
    let log = sw.log_from(off);
    assert!(
        log.lines().any(|l| l.contains("port i2 ACTIVE again: ")),
        "no INFO line for i2 coming back:\n{log}"
    );
    assert!(ping(&i0.ns, &i2.v4, None, 5), "i0 -> i2 after it came back");
    assert!(ping(&i2.ns, &i1.v4, None, 5), "i2 -> i1 after it came back");
    let _server2 = echo_server(&i2.ns, &[7000], &[]);
    assert_eq!(
        probe(&i0.ns, "tcp", &i2.v4, 7000, 3),
        "PASS",
        "TCP i0 -> i2"
    );

    // The others never stopped.
    let (sent, got) = flood.finish();
    eprintln!("{test}: ping flood i0 -> i1 during the fault: {got}/{sent} answered");
    assert!(sent > 50, "the flood ran ({sent} sent)");
    assert!(
        got * 100 >= sent * 95,
        "i0 -> i1 lost more than 5 % while i2 was down and back: {got}/{sent}"
    );
    assert_eq!(conn.exchange("after"), "ok", "the TCP connection i0 -> i1");
    assert!(
        !sw.log_text().contains("panicked"),
        "switch log:\n{}",
        sw.log_text()
    );
}

#[test]
fn veth_afpacket_port_goes_down_and_comes_back() {
    ports_come_back("pfp", Backend::AfPacket, Fault::DeleteVeth);
}

#[test]
fn veth_afxdp_port_goes_down_and_comes_back() {
    ports_come_back("pfx", Backend::AfXdp, Fault::DeleteVeth);
}

#[test]
fn tap_port_goes_down_with_its_namespace_and_comes_back() {
    ports_come_back("pft", Backend::Tap, Fault::DeleteNetns);
}

/// A tap deleted inside a namespace that stays is created again by the switch.
#[test]
fn tap_deleted_is_created_again() {
    if !env_ready("tap_deleted_is_created_again", Backend::Tap) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let topo = Topo::new("pfd", Backend::Tap, 2);
    let config = format!("{POLICY}{}", topo.ports_toml(&GROUPS[..2]));
    let path = topo.write_config(&config);
    let sw = Switch::start(&path, &topo.dir.path);
    topo.configure();
    let (i0, i1) = (&topo.insts[0], &topo.insts[1]);
    assert!(ping(&i0.ns, &i1.v4, None, 5), "before");
    let off = sw.log_len();
    sh(&["ip", "-n", &i1.ns.name, "link", "del", &i1.link]);
    assert!(
        sw.wait_log_from(off, "port i1 ACTIVE again", Duration::from_secs(6)),
        "the tap was not created again:\n{}",
        sw.log_from(off)
    );
    let log = sw.log_from(off);
    assert!(
        log.contains("port i1 DOWN") && log.contains("tap deleted"),
        "{log}"
    );
    topo.configure_one(1);
    assert!(ping(&i0.ns, &i1.v4, None, 5), "after the tap came back");
}
