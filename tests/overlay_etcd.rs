//! The overlay on a shared store (issue #19's tests): three sgswitch hosts, each in a
//! network namespace of its own on a bridged underlay, take their policy from one real
//! etcd (`sgswitch run --store etcd://… --host-id hN --vtep …`), written through
//! `sgswitch api --store` (which plays the third party: an API on no compute host), and
//! carry their instances' traffic to each other in Geneve.
//!
//! ```text
//!   root ns: etcd (127.0.0.1 and 10.9.0.254), sgswitch api --store
//!      │ veth (10.9.0.254)
//!   underlay ns: bridge ─┬─ h1 ns: ul 10.9.0.1, sgswitch run --host-id h1: i1 (net1, p0), i4 (net2, p1)
//!                        ├─ h2 ns: ul 10.9.0.2, sgswitch run --host-id h2: i2 (net1, p0)
//!                        └─ h3 ns: ul 10.9.0.3, sgswitch run --host-id h3: i3 (net2, p0)
//! ```
//! The hosts reach etcd over their underlay interface (management and tunnels on one
//! NIC, as on many compute hosts); the switch's underlay group ignores that traffic (it is
//! not a tunnel packet).
//!
//! `three_hosts_on_etcd`, in order:
//! * across hosts: ping i1 → i2 (net1, h1 → h2) and i4 → i3 (net2, h1 → h3), UDP 7001
//!   i4 → i3; TCP 8080 i1 → i2 admitted by i2's rule whose remote is the group `client`
//!   of i1 (a member on another host);
//! * broadcast scope: a broadcast from i1 on net1 reaches h2 (the only other host with a
//!   net1 port) and never h3 (tcpdump on both underlays);
//! * remote group across hosts: the API takes i1 out of `client`; the open connection
//!   i1 → i2:8080 is cut at h2 and a new one is refused;
//! * killing h2's switch (SIGKILL) leaves h1 ↔ h3 forwarding, and the API shows i2 DOWN
//!   once h2's lease (10 s) is gone.
//!
//! Needs root, etcd and tcpdump; under `CI=true` a missing piece fails the test. Everything
//! (processes, namespaces, the root veth, etcd's directory) is removed on drop, also when
//! an assertion fails.

mod common;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sgswitch::control::http_client::Client;
use sgswitch::control::kv::testing::EtcdServer;

use common::*;

const EXE: &str = env!("CARGO_BIN_EXE_sgswitch");
/// etcd's address on the underlay (the root namespace's end of its veth).
const ETCD_IP: &str = "10.9.0.254";

const MAC: [&str; 4] = [
    "fa:16:3e:00:01:01",
    "fa:16:3e:00:01:02",
    "fa:16:3e:00:01:03",
    "fa:16:3e:00:01:04",
];
const IP: [&str; 4] = ["10.0.0.1", "10.0.0.2", "10.1.0.3", "10.1.0.4"];

/// The shared policy: `client` (i1) may reach `web` (i2) on TCP 8080 by group; `plain`
/// (i3, i4) takes ICMP, TCP 7000 and UDP 7001 from anyone. net1 = i1 + i2 (hosts h1, h2),
/// net2 = i3 + i4 (hosts h3, h1).
fn seed() -> String {
    let egress = r#"{ direction = "egress", ethertype = "IPv4" },
  { direction = "ingress", ethertype = "IPv4", protocol = "icmp" },"#;
    let mut s = format!(
        r#"
[[networks]]
name = "net1"
vni = 1001

[[networks]]
name = "net2"
vni = 1002

[[security_groups]]
name = "client"
rules = [
  {egress}
]

[[security_groups]]
name = "web"
rules = [
  {egress}
  {{ direction = "ingress", ethertype = "IPv4", protocol = "tcp", port_range_min = 8080, port_range_max = 8080, remote_group = "client" }},
]

[[security_groups]]
name = "plain"
rules = [
  {egress}
  {{ direction = "ingress", ethertype = "IPv4", protocol = "tcp", port_range_min = 7000, port_range_max = 7000 }},
  {{ direction = "ingress", ethertype = "IPv4", protocol = "udp", port_range_min = 7001, port_range_max = 7001 }},
]
"#
    );
    // (port, network, group, host, netdev on its host)
    let ports = [
        ("i1", "net1", "client", "h1", "p0"),
        ("i2", "net1", "web", "h2", "p0"),
        ("i3", "net2", "plain", "h3", "p0"),
        ("i4", "net2", "plain", "h1", "p1"),
    ];
    for (i, (name, net, group, host, dev)) in ports.iter().enumerate() {
        s.push_str(&format!(
            "\n[[ports]]\nname = \"{name}\"\nnetwork = \"{net}\"\nmac = \"{}\"\n\
             fixed_ips = [\"{}\"]\nsecurity_groups = [\"{group}\"]\nhost = \"{host}\"\n\
             backend = {{ type = \"afpacket\", ifname = \"{dev}\" }}\n",
            MAC[i], IP[i]
        ));
    }
    s
}

fn ns(i: usize) -> Netns {
    Netns::new(&netns_name("oetcd", i)).unwrap_or_else(|e| panic!("netns: {e}"))
}

fn ip(ns: &Netns, args: &[&str]) {
    let mut full = vec!["ip", "-n", &ns.name];
    full.extend_from_slice(args);
    sh(&full);
}

fn offloads_off(ns: &Netns, dev: &str) {
    sh(&[
        "ip", "netns", "exec", &ns.name, "ethtool", "-K", dev, "tx", "off", "tso", "off", "gso",
        "off",
    ]);
}

/// Instance `i` in `inst` behind veth `dev` of host namespace `host`.
fn instance(host: &Netns, inst: &Netns, dev: &str, i: usize) {
    ip(
        host,
        &[
            "link", "add", dev, "type", "veth", "peer", "name", "eth0", "netns", &inst.name,
        ],
    );
    ip(host, &["link", "set", dev, "up"]);
    ip(
        inst,
        &[
            "link", "set", "eth0", "address", MAC[i], "mtu", "1450", "up",
        ],
    );
    ip(
        inst,
        &["addr", "add", &format!("{}/24", IP[i]), "dev", "eth0"],
    );
    offloads_off(inst, "eth0");
}

/// A child process killed on drop (stderr to a log file).
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait (20 s at most) for `needle` in the log; panic with the log.
    fn wait_for(&mut self, needle: &str) {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let t = self.text();
            if t.contains(needle) {
                return;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!(
                    "{} exited ({st}) before {needle:?}:\n{t}",
                    self.log.display()
                );
            }
            assert!(
                Instant::now() < end,
                "no {needle:?} within 20 s in {}:\n{t}",
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sgswitch run --store` for host `hN` inside its namespace.
fn host(n: &Netns, id: &str, vtep: &str, url: &str, dir: &Path) -> Daemon {
    let cfg = dir.join(format!("{id}.toml"));
    std::fs::write(
        &cfg,
        "[switch]\nworkers = 1\n\n[overlay]\nunderlay = { type = \"afpacket\", ifname = \"ul\" }\n",
    )
    .expect("host config");
    let log = dir.join(format!("{id}.log"));
    let f = std::fs::File::create(&log).expect("log");
    let child = Command::new("ip")
        .args(["netns", "exec", &n.name, EXE, "run", "--config"])
        .arg(&cfg)
        .args(["--store", url, "--host-id", id, "--vtep", vtep, "--no-pin"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(f)
        .spawn()
        .expect("spawn sgswitch run --store");
    let mut d = Daemon { child, log };
    d.wait_for("sgswitch: ready");
    d
}

fn port_json(api: &Client, name: &str) -> Value {
    let list = api
        .get(&format!("/v2.0/ports?name={name}"))
        .expect("list ports");
    list["ports"][0].clone()
}

fn group_id(api: &Client, name: &str) -> String {
    let list = api
        .get(&format!("/v2.0/security-groups?name={name}"))
        .expect("list groups");
    list["security_groups"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no group {name}: {list}"))
        .to_string()
}

#[test]
fn three_hosts_on_etcd() {
    let test = "three_hosts_on_etcd";
    if !env_ready_with(test, Backend::AfPacket, &["tcpdump"]) {
        return;
    }
    if !sgswitch::control::kv::testing::etcd_binary().exists() {
        skip(test, "no etcd binary (apt install etcd-server)");
        return;
    }
    let dir = TempDir::new(std::env::temp_dir().join(sgswitch::lab::netns::dir_name("oetcd")))
        .expect("temp dir");
    // Namespaces: 0 underlay, 1..=3 hosts, 4..=7 instances i1..i4.
    let nss: Vec<Netns> = (0..8).map(ns).collect();
    let (ul, hosts, insts) = (&nss[0], &nss[1..4], &nss[4..8]);
    ip(ul, &["link", "add", "br0", "type", "bridge"]);
    ip(ul, &["link", "set", "br0", "up"]);
    for (k, h) in hosts.iter().enumerate() {
        let port = format!("u{}", k + 1);
        ip(
            h,
            &[
                "link", "add", "ul", "type", "veth", "peer", "name", &port, "netns", &ul.name,
            ],
        );
        ip(ul, &["link", "set", &port, "master", "br0", "up"]);
        ip(
            h,
            &["addr", "add", &format!("10.9.0.{}/24", k + 1), "dev", "ul"],
        );
        ip(h, &["link", "set", "ul", "up"]);
        offloads_off(h, "ul");
    }
    // etcd's end in the root namespace.
    let root = Link {
        name: sgswitch::lab::netns::link_name("oe", 0),
    };
    sh(&[
        "ip", "link", "add", &root.name, "type", "veth", "peer", "name", "ue", "netns", &ul.name,
    ]);
    sh(&[
        "ip",
        "addr",
        "add",
        &format!("{ETCD_IP}/24"),
        "dev",
        &root.name,
    ]);
    sh(&["ip", "link", "set", &root.name, "up"]);
    ip(ul, &["link", "set", "ue", "master", "br0", "up"]);
    instance(&hosts[0], &insts[0], "p0", 0);
    instance(&hosts[1], &insts[1], "p0", 1);
    instance(&hosts[2], &insts[2], "p0", 2);
    instance(&hosts[0], &insts[3], "p1", 3);

    let etcd_ip: IpAddr = ETCD_IP.parse().unwrap();
    let etcd = EtcdServer::start_also_on(&[etcd_ip])
        .unwrap_or_else(|e| panic!("{test}: etcd did not start: {e}"));
    let seed_file = dir.path.join("seed.toml");
    std::fs::write(&seed_file, seed()).expect("seed");
    let store_api = StoreApi::start(&etcd.url(), &seed_file, &dir.path);
    let api = &store_api.client;
    let url = etcd.url_at(etcd_ip);
    let h1 = host(&hosts[0], "h1", "10.9.0.1", &url, &dir.path);
    let h2 = host(&hosts[1], "h2", "10.9.0.2", &url, &dir.path);
    let h3 = host(&hosts[2], "h3", "10.9.0.3", &url, &dir.path);
    let logs = |what: &str| {
        format!(
            "{what}\n--- h1\n{}\n--- h2\n{}\n--- h3\n{}",
            h1.text(),
            h2.text(),
            h3.text()
        )
    };
    let (i1, i2, i3, i4) = (&insts[0], &insts[1], &insts[2], &insts[3]);

    // Across hosts.
    assert!(
        eventually(20, || ping(i1, IP[1], None, 1)),
        "{}",
        logs("ping i1 (h1) -> i2 (h2) on net1")
    );
    assert!(
        eventually(10, || ping(i4, IP[2], None, 1)),
        "{}",
        logs("ping i4 (h1) -> i3 (h3) on net2")
    );
    let _s3 = echo_server(i3, &[7000], &[7001]);
    assert_eq!(probe(i4, "udp", IP[2], 7001, 3), "PASS", "UDP i4 -> i3");
    assert_eq!(probe(i4, "tcp", IP[2], 7000, 3), "PASS", "TCP i4 -> i3");
    let _s2 = echo_server(i2, &[8080], &[]);
    let mut conn = LineClient::connect(i1, IP[1], 8080, 5).unwrap_or_else(|e| {
        panic!(
            "{}",
            logs(&format!("TCP i1 -> i2:8080 (remote group): {e}"))
        )
    });
    assert_eq!(conn.exchange("hello"), "ok", "i1 -> i2:8080");

    // Broadcast scope: net1's broadcast reaches h2, never h3.
    let cap2 = Capture::start(
        &hosts[1],
        "ul",
        Dir::In,
        &dir.path.join("h2.pcap"),
        "udp dst port 6081",
    );
    let cap3 = Capture::start(
        &hosts[2],
        "ul",
        Dir::In,
        &dir.path.join("h3.pcap"),
        "udp dst port 6081",
    );
    let _ = i1
        .cmd(&[
            "ping",
            "-n",
            "-b",
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "1",
            "10.0.0.255",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    std::thread::sleep(Duration::from_millis(300));
    let (at2, at3) = (cap2.stop(), cap3.stop());
    let bcast = |frames: &[Frame]| {
        frames
            .iter()
            .filter(|f| f.bytes.windows(6).any(|w| w == [0xff; 6]))
            .count()
    };
    eprintln!(
        "broadcast from i1: h2 {} of {} tunnel packets, h3 {} of {}",
        bcast(&at2),
        at2.len(),
        bcast(&at3),
        at3.len()
    );
    assert!(bcast(&at2) >= 3, "h2 got net1's broadcasts: {}", at2.len());
    assert_eq!(
        bcast(&at3),
        0,
        "h3 has no net1 port: {} tunnel packets",
        at3.len()
    );

    // Remote group across hosts: i1 leaves `client` through the API (no compute host).
    let i1_id = port_json(api, "i1")["id"].as_str().unwrap().to_string();
    let plain = group_id(api, "plain");
    let r = api
        .raw(
            "PUT",
            &format!("/v2.0/ports/{i1_id}"),
            Some(&json!({"port": {"security_groups": [plain]}})),
        )
        .expect("PUT port");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        eventually(10, || conn.exchange("after") != "ok"),
        "{}",
        logs("the open connection i1 -> i2:8080 must be cut once i1 left `client`")
    );
    assert_eq!(
        probe(i1, "tcp", IP[1], 8080, 2),
        "TIMEOUT",
        "a new connection i1 -> i2:8080 is refused"
    );

    // Killing h2's switch: h1 <-> h3 go on; i2 goes DOWN after h2's lease.
    // (`ip netns exec` execs the switch: the child's pid is the switch's.)
    assert!(signal(h2.child.id(), libc::SIGKILL), "kill h2's switch");
    assert!(
        ping(i4, IP[2], None, 3),
        "{}",
        logs("h1 -> h3 after h2 died")
    );
    assert!(ping(i3, IP[3], None, 3), "h3 -> h1 after h2 died");
    let killed = Instant::now();
    assert!(
        eventually(25, || port_json(api, "i2")["status"] == "DOWN"),
        "i2 DOWN after h2's lease: {}",
        port_json(api, "i2")
    );
    eprintln!(
        "i2 DOWN {:.1} s after h2 was killed",
        killed.elapsed().as_secs_f64()
    );
    assert_eq!(port_json(api, "i4")["status"], "ACTIVE");
    assert!(ping(i4, IP[2], None, 3), "h1 -> h3 still");
}
