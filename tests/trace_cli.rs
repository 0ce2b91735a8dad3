//! `sgswitch trace`: every outcome a single frame can have, as the command prints it —
//! allowed by which rule (group, rule index, the rule in Neutron's words), each drop
//! reason the pipeline produces from one frame, the IPv6, UDP, ICMP, ARP and VLAN forms,
//! `--pcap --frame`, `--after`, `--json` (parsed), and bad input (exit 1, the token named).

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;
use sgswitch::port::pcap::PcapNgWriter;

/// vm-a (group `client`) talks to vm-b (group `web`); `router` has no port security;
/// `lonely` is alone in its network.
const CONFIG: &str = r#"
[[security_groups]]
name = "web"
rules = [
  { direction = "ingress", ethertype = "IPv4", protocol = "tcp", port_range_min = 22, port_range_max = 22, remote_ip_prefix = "10.0.0.0/24" },
  { direction = "ingress", ethertype = "IPv4", protocol = "tcp", port_range_min = 80, port_range_max = 80 },
  { direction = "ingress", ethertype = "IPv6", protocol = "tcp", port_range_min = 22, port_range_max = 22 },
  { direction = "ingress", ethertype = "IPv4", protocol = "udp", port_range_min = 53, port_range_max = 53 },
  { direction = "ingress", ethertype = "IPv4", protocol = "icmp", port_range_min = 8, remote_group = "client" },
  { direction = "egress", ethertype = "IPv4" },
  { direction = "egress", ethertype = "IPv6" },
]
[[security_groups]]
name = "client"
rules = [
  { direction = "egress", ethertype = "IPv4", protocol = "tcp" },
  { direction = "egress", ethertype = "IPv4", protocol = "udp" },
  { direction = "egress", ethertype = "IPv4", protocol = "icmp" },
  { direction = "egress", ethertype = "IPv6" },
]
[[ports]]
name = "vm-a"
mac = "fa:16:3e:00:00:0a"
fixed_ips = ["10.0.0.10", "fd00::a"]
security_groups = ["client"]
[[ports]]
name = "vm-b"
mac = "fa:16:3e:00:00:0b"
fixed_ips = ["10.0.0.11", "fd00::b"]
security_groups = ["web"]
[[ports]]
name = "router"
mac = "fa:16:3e:00:00:01"
fixed_ips = ["10.0.0.1"]
port_security = false
[[ports]]
name = "lonely"
network = "solo"
mac = "fa:16:3e:00:01:01"
fixed_ips = ["10.1.0.1"]
"#;

struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("sgs-trace-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("c.toml"), CONFIG).unwrap();
        TempDir(d)
    }
    fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sgswitch(dir: &TempDir, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sgswitch"))
        .arg("trace")
        .arg("--config")
        .arg(dir.path("c.toml"))
        .args(args)
        .output()
        .unwrap()
}

/// The JSON explanation of a trace that ran (exit 0).
fn trace(dir: &TempDir, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    let o = sgswitch(dir, &a);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not JSON ({e}): {}",
            String::from_utf8_lossy(&o.stdout)
        )
    })
}

fn from_a(dir: &TempDir, desc: &str) -> Value {
    trace(dir, &["--in-port", "vm-a", desc])
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// (port, reason) of every drop.
fn drops(v: &Value) -> Vec<(String, String)> {
    v["dropped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["port"].as_str().unwrap().to_string(),
                d["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The stage of `kind` (`egress`, `ingress`, ...) at `port`.
fn stage<'a>(v: &'a Value, kind: &str, port: &str) -> &'a Value {
    v["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == kind && s["port"] == port)
        .unwrap_or_else(|| panic!("no {kind} stage at {port}: {v:#}"))
}

/// The stage's rule as (group, rule index, Neutron words).
fn rule(s: &Value) -> (String, u64, String) {
    let r = &s["rule"];
    (
        r["group"].as_str().unwrap_or("-").to_string(),
        r["rule"].as_u64().unwrap_or(u64::MAX),
        r["text"].as_str().unwrap_or("-").to_string(),
    )
}

fn r(group: &str, i: u64, text: &str) -> (String, u64, String) {
    (group.to_string(), i, text.to_string())
}

#[test]
fn allowed_tcp_names_the_first_matching_rule_of_each_side() {
    let d = TempDir::new("allowed");
    let v = from_a(&d, "tcp 10.0.0.10:40000 > 10.0.0.11:22 flags S");
    assert_eq!(v["frame"], "tcp 10.0.0.10:40000 > 10.0.0.11:22 flags S");
    assert_eq!(strs(&v["delivered"]), ["vm-b"]);
    assert!(drops(&v).is_empty());
    let kinds: Vec<&str> = v["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["parse", "port-security", "egress", "l2", "ingress"]);
    let eg = stage(&v, "egress", "vm-a");
    assert_eq!(eg["conntrack"]["state"], "new");
    assert_eq!(eg["conntrack"]["created"]["state"], "SYN_SENT");
    assert_eq!(rule(eg), r("client", 0, "egress IPv4 tcp to any"));
    let ing = stage(&v, "ingress", "vm-b");
    assert_eq!(ing["conntrack"]["state"], "new");
    assert_eq!(
        rule(ing),
        r("web", 0, "ingress IPv4 tcp 22 from 10.0.0.0/24")
    );
    // Offline there are no Neutron ids.
    assert!(ing["rule"].get("group_id").is_none());
    // Port 80: the second rule.
    let v = from_a(&d, "tcp 10.0.0.10:40000 > 10.0.0.11:80");
    assert_eq!(
        rule(stage(&v, "ingress", "vm-b")),
        r("web", 1, "ingress IPv4 tcp 80 from any")
    );
}

#[test]
fn text_output_names_stages_rule_and_verdict() {
    let d = TempDir::new("text");
    let o = sgswitch(
        &d,
        &[
            "--in-port",
            "vm-a",
            "tcp 10.0.0.10:40000 > 10.0.0.11:22 flags S",
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.starts_with("frame  tcp 10.0.0.10:40000 > 10.0.0.11:22 flags S"),
        "{out}"
    );
    for want in [
        "port-security",
        "new connection, allowed by group client rule 0: egress IPv4 tcp to any",
        "allowed by group web rule 0: ingress IPv4 tcp 22 from 10.0.0.0/24",
        "conntrack creates SYN_SENT",
        "verdict: delivered to vm-b",
    ] {
        assert!(out.contains(want), "missing {want:?}:\n{out}");
    }
    let o = sgswitch(&d, &["--in-port", "vm-a", "tcp 10.0.0.10:1 > 10.0.0.11:23"]);
    assert_eq!(o.status.code(), Some(0), "a drop is a trace that ran");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("DROP     ingress-denied: no ingress rule of vm-b (group web) allows tcp 23 from 10.0.0.10"),
        "{out}"
    );
    assert!(
        out.contains("verdict: dropped at vm-b (ingress-denied)"),
        "{out}"
    );
}

#[test]
fn ipv6_udp_and_icmp_forms() {
    let d = TempDir::new("forms");
    let v = from_a(&d, "tcp [fd00::a]:40000 > [fd00::b]:22");
    assert_eq!(strs(&v["delivered"]), ["vm-b"]);
    assert_eq!(
        rule(stage(&v, "ingress", "vm-b")),
        r("web", 2, "ingress IPv6 tcp 22 from any")
    );
    assert_eq!(
        rule(stage(&v, "egress", "vm-a")),
        r("client", 3, "egress IPv6 any to any")
    );
    let v = from_a(&d, "udp 10.0.0.10:4000 > 10.0.0.11:53");
    assert_eq!(
        rule(stage(&v, "ingress", "vm-b")),
        r("web", 3, "ingress IPv4 udp 53 from any")
    );
    for desc in [
        "icmp 10.0.0.10 > 10.0.0.11 type 8 code 0",
        "icmp 10.0.0.10 > 10.0.0.11 echo-request",
    ] {
        let v = from_a(&d, desc);
        assert_eq!(v["frame"], "icmp 10.0.0.10 > 10.0.0.11 echo-request");
        assert_eq!(
            rule(stage(&v, "ingress", "vm-b")),
            r("web", 4, "ingress IPv4 icmp type 8 from group client"),
            "{desc}"
        );
    }
    // An echo reply starts no connection.
    let v = from_a(&d, "icmp 10.0.0.10 > 10.0.0.11 echo-reply");
    assert_eq!(drops(&v), [("vm-a".into(), "invalid-state".into())]);
    // Neighbour solicitation: always allowed both ways, flooded (multicast).
    let v = from_a(
        &d,
        "icmp6 fd00::a > ff02::1:ff00:b type 135 code 0 target fd00::b",
    );
    assert_eq!(
        v["frame"],
        "icmp6 fd00::a > ff02::1:ff00:b neighbor-solicit target fd00::b"
    );
    assert_eq!(strs(&v["delivered"]), ["vm-b", "router"]);
    assert_eq!(
        stage(&v, "egress", "vm-a")["detail"]
            .as_str()
            .unwrap()
            .split(':')
            .next(),
        Some("always allowed")
    );
    assert_eq!(stage(&v, "l2", "vm-a")["result"], "flood");
    assert!(stage(&v, "ingress", "vm-b")["rule"].is_null());
    // Port security off: no groups at the router.
    assert!(stage(&v, "ingress", "router")["detail"]
        .as_str()
        .unwrap()
        .contains("port security is disabled on router"));
}

#[test]
fn arp_and_vlan_forms() {
    let d = TempDir::new("arp");
    let v = from_a(&d, "arp who-has 10.0.0.11 tell 10.0.0.10");
    assert_eq!(v["frame"], "arp who-has 10.0.0.11 tell 10.0.0.10");
    assert_eq!(strs(&v["delivered"]), ["vm-b", "router"]);
    assert!(stage(&v, "egress", "vm-a")["detail"]
        .as_str()
        .unwrap()
        .starts_with("not IP"));
    let v = from_a(&d, "vlan 100 tcp 10.0.0.10:40000 > 10.0.0.11:22");
    assert_eq!(
        v["frame"],
        "vlan 100 tcp 10.0.0.10:40000 > 10.0.0.11:22 flags S"
    );
    assert!(v["stages"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("VLAN 100"));
    assert_eq!(strs(&v["delivered"]), ["vm-b"]);
}

/// Every drop reason one frame can get, with where it happened.
#[test]
fn every_drop_reason_of_a_single_frame() {
    let d = TempDir::new("drops");
    let cases: &[(&[&str], &str, &str, &str)] = &[
        (
            &[
                "--in-port",
                "vm-a",
                "--src-mac",
                "fa:16:3e:00:00:99",
                "udp 10.0.0.10:1 > 10.0.0.11:53",
            ],
            "vm-a",
            "spoofed-mac",
            "source MAC fa:16:3e:00:00:99 is not vm-a's",
        ),
        (
            &["--in-port", "vm-a", "udp 10.0.0.99:1 > 10.0.0.11:53"],
            "vm-a",
            "spoofed-ip",
            "source IP 10.0.0.99 is not allowed",
        ),
        (
            &["--in-port", "vm-a", "arp who-has 10.0.0.11 tell 10.0.0.99"],
            "vm-a",
            "arp-denied",
            "ARP sender IP 10.0.0.99",
        ),
        (
            &["--in-port", "vm-a", "udp 10.0.0.10:67 > 10.0.0.11:68"],
            "vm-a",
            "dhcp-server",
            "DHCP server",
        ),
        (
            &["--in-port", "vm-a", "icmp6 fd00::a > ff02::1 router-advert"],
            "vm-a",
            "router-advertisement",
            "router advertisement",
        ),
        (
            &["--in-port", "vm-a", "ethertype 0x88cc"],
            "vm-a",
            "ethertype-denied",
            "ethertype 0x88cc is not in permitted_ethertypes",
        ),
        (
            &["--in-port", "vm-a", "gre 10.0.0.10 > 10.0.0.11"],
            "vm-a",
            "egress-denied",
            "no egress rule of vm-a (group client) allows gre to 10.0.0.11",
        ),
        (
            &["--in-port", "vm-a", "tcp 10.0.0.10:1 > 10.0.0.11:23"],
            "vm-b",
            "ingress-denied",
            "no ingress rule of vm-b (group web) allows tcp 23 from 10.0.0.10",
        ),
        (
            &[
                "--in-port",
                "vm-a",
                "tcp 10.0.0.10:1 > 10.0.0.11:22 flags SA",
            ],
            "vm-a",
            "invalid-state",
            "flags SA",
        ),
        (
            &[
                "--in-port",
                "vm-a",
                "--dst-mac",
                "fa:16:3e:00:00:77",
                "tcp 10.0.0.10:1 > 10.0.0.11:22",
            ],
            "vm-b",
            "dst-mac-mismatch",
            "destination MAC fa:16:3e:00:00:77 is not vm-b's",
        ),
        (
            &["--in-port", "lonely", "arp who-has 10.1.0.2 tell 10.1.0.1"],
            "lonely",
            "no-destination",
            "no other port in network 'solo'",
        ),
        (
            &[
                "--in-port",
                "vm-a",
                "--dst-mac",
                "fa:16:3e:00:00:0a",
                "tcp 10.0.0.10:1 > 10.0.0.11:22",
            ],
            "vm-a",
            "hairpin",
            "is vm-a's own",
        ),
    ];
    for (args, port, reason, why) in cases {
        let v = trace(&d, args);
        let got = drops(&v);
        assert!(
            got.contains(&(port.to_string(), reason.to_string())),
            "{args:?}: {got:?}"
        );
        let note = v["dropped"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["reason"] == *reason)
            .unwrap();
        assert!(
            note["why"].as_str().unwrap().contains(why),
            "{args:?}: {}",
            note["why"]
        );
        // The stage that dropped it says so too.
        assert!(
            v["stages"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["result"] == "drop" && s["reason"] == *reason),
            "{args:?}: {v:#}"
        );
    }
    // dst-mac-mismatch: the flood still reaches the router (no port security).
    let v = trace(&d, cases[9].0);
    assert_eq!(strs(&v["delivered"]), ["router"]);
}

fn write_capture(path: &std::path::Path, frames: &[Vec<u8>]) {
    let f = std::fs::File::create(path).unwrap();
    let mut w = PcapNgWriter::new(f, &["vm-a"]).unwrap();
    for (i, fr) in frames.iter().enumerate() {
        w.write(0, i as u64, fr, None).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn pcap_frame_and_malformed() {
    let d = TempDir::new("pcap");
    let good = sgswitch::control::explain::packet::build(
        &sgswitch::control::explain::packet::parse("tcp 10.0.0.10:1 > 10.0.0.11:22").unwrap(),
        "fa:16:3e:00:00:0a".parse().unwrap(),
        "fa:16:3e:00:00:0b".parse().unwrap(),
    );
    let truncated = good[..30].to_vec();
    write_capture(&d.path("x.pcapng"), &[good, truncated]);
    let cap = d.path("x.pcapng");
    let cap = cap.to_str().unwrap();
    // The interface's name is the in-port.
    let v = trace(&d, &["--pcap", cap, "--frame", "1"]);
    assert_eq!(v["in_port"], "vm-a");
    assert_eq!(strs(&v["delivered"]), ["vm-b"]);
    let v = trace(&d, &["--pcap", cap, "--frame", "2"]);
    assert_eq!(drops(&v), [("vm-a".into(), "malformed".into())]);
    assert_eq!(v["stages"][0]["result"], "drop");
    assert!(
        v["frame"]
            .as_str()
            .unwrap()
            .starts_with("malformed: ipv4: "),
        "{}",
        v["frame"]
    );
    assert!(v["dropped"][0]["why"]
        .as_str()
        .unwrap()
        .starts_with("the frame does not parse: ipv4: "));
    // --in-port overrides the interface name.
    let v = trace(&d, &["--pcap", cap, "--frame", "1", "--in-port", "vm-b"]);
    assert_eq!(v["in_port"], "vm-b");
    let o = sgswitch(&d, &["--pcap", cap, "--frame", "3"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("has 2 frames, there is no frame 3"));
}

#[test]
fn after_makes_a_reply_part_of_its_connection() {
    let d = TempDir::new("after");
    let v = trace(
        &d,
        &[
            "--in-port",
            "vm-b",
            "--after",
            "vm-a=tcp 10.0.0.10:40000 > 10.0.0.11:22",
            "tcp 10.0.0.11:22 > 10.0.0.10:40000 flags SA",
        ],
    );
    assert_eq!(strs(&v["delivered"]), ["vm-a"]);
    let eg = stage(&v, "egress", "vm-b");
    assert_eq!(eg["conntrack"]["state"], "reply");
    assert_eq!(
        eg["conntrack"]["entry"]["flow"],
        "tcp 10.0.0.10:40000 > 10.0.0.11:22"
    );
    assert_eq!(stage(&v, "ingress", "vm-a")["conntrack"]["state"], "reply");
    // The same SYN-ACK alone is invalid at its sender.
    let v = trace(
        &d,
        &[
            "--in-port",
            "vm-b",
            "tcp 10.0.0.11:22 > 10.0.0.10:40000 flags SA",
        ],
    );
    assert_eq!(drops(&v), [("vm-b".into(), "invalid-state".into())]);
}

#[test]
fn bad_input_exits_1_and_names_the_problem() {
    let d = TempDir::new("bad");
    let cases: &[(&[&str], &str)] = &[
        (
            &["--in-port", "vm-a", "tcp 10.0.0.10:1 > 10.0.0.11:2x2"],
            "token 4 '10.0.0.11:2x2': expected a port number",
        ),
        (
            &["--in-port", "vm-a", "tpc 10.0.0.10:1 > 10.0.0.11:22"],
            "token 1 'tpc'",
        ),
        (
            &["--in-port", "nope", "tcp 10.0.0.10:1 > 10.0.0.11:22"],
            "--in-port nope: no port has that name",
        ),
        (&["tcp 10.0.0.10:1 > 10.0.0.11:22"], "--in-port"),
        (
            &["--in-port", "vm-a", "udp 10.0.0.10:1 > 8.8.8.8:53"],
            "--dst-mac",
        ),
        (
            &[
                "--in-port",
                "vm-a",
                "--after",
                "vm-a",
                "udp 10.0.0.10:1 > 10.0.0.11:53",
            ],
            "expected PORT=PACKET",
        ),
        (
            &["--pcap", "missing.pcapng", "--frame", "1"],
            "missing.pcapng: cannot open",
        ),
    ];
    for (args, want) in cases {
        let o = sgswitch(&d, args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains(want), "{args:?}: {e}");
    }
    // A bad config file is reported like `check` does.
    std::fs::write(d.path("c.toml"), "[[ports]]\nname = 1\n").unwrap();
    let o = sgswitch(&d, &["--in-port", "vm-a", "tcp 10.0.0.10:1 > 10.0.0.11:22"]);
    assert_eq!(o.status.code(), Some(1));
    // Usage errors are clap's (2).
    let o = sgswitch(&d, &["--in-port", "vm-a"]);
    assert_eq!(o.status.code(), Some(2));
}
