//! The ARP responder for remote ports (#19, Neutron l2population's `arp_responder`): an
//! instance's ARP request for a remote port's IPv4 address is answered by this host with
//! a generated reply sent back to the ingress port, and not sent to the tunnels; the
//! request still reaches the local ports of the network. Everything else is as before:
//! unknown addresses, allowed-address-pair addresses, ports of unknown hosts and IPv6
//! neighbour solicitations are flooded to the tunnels; port security still drops a spoofed
//! request first. Pipeline level (`process`, `process_burst`, `trace`), replay (`sgswitch
//! replay` text, `--json`, `--out-dir`), and live in network namespaces (`arping` from an
//! instance gets the remote port's MAC with no other host present).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::Command;

use sgswitch::bench::frames::{arp, ipv6_frame, pad};
use sgswitch::flow::DropReason;
use sgswitch::pipeline::{
    ArpReply, Dataplane, Disposition, IdMap, Pipeline, PipelineConfig, Step, Verdict, ARP_REPLY_LEN,
};
use sgswitch::policy::Model;
use sgswitch::port::pcap::{CaptureReader, PcapNgWriter};
use sgswitch::wire::Mac;

mod common;

const BCAST: Mac = Mac([0xff; 6]);
const ZERO: Mac = Mac([0; 6]);

/// This host is h1: a (port security, group web) and c (no port security) local on n1;
/// b on h2 (with an allowed address pair and an IPv6 address), d on h3, e on an unknown
/// host, all on n1; f on h2 on n2 (no local port there).
const TEXT: &str = r#"
[[networks]]
name = "n1"
vni = 1001

[[hosts]]
name = "h3"
vtep = "10.9.0.3"

[[hosts]]
name = "h2"
vtep = "10.9.0.2"

[[hosts]]
name = "h1"
vtep = "10.9.0.1"

[overlay]
host = "h1"

[[security_groups]]
name = "web"
rules = [ { direction = "ingress", ethertype = "IPv4", protocol = "tcp", port_range_min = 80, port_range_max = 80 } ]

[[ports]]
name = "a"
network = "n1"
mac = "fa:16:3e:00:00:01"
fixed_ips = ["10.0.0.1", "fd00::1"]
security_groups = ["web"]
host = "h1"

[[ports]]
name = "b"
network = "n1"
mac = "fa:16:3e:00:00:02"
fixed_ips = ["10.0.0.2", "fd00::2"]
security_groups = ["web"]
allowed_address_pairs = [ { ip_address = "10.0.0.100", mac_address = "fa:16:3e:00:00:64" } ]
host = "h2"

[[ports]]
name = "c"
network = "n1"
mac = "fa:16:3e:00:00:03"
fixed_ips = ["10.0.0.3"]
port_security = false
host = "h1"

[[ports]]
name = "d"
network = "n1"
mac = "fa:16:3e:00:00:04"
fixed_ips = ["10.0.0.4"]
host = "h3"

[[ports]]
name = "e"
network = "n1"
mac = "fa:16:3e:00:00:05"
fixed_ips = ["10.0.0.5"]
host = "h9"

[[ports]]
name = "f"
network = "n2"
mac = "fa:16:3e:00:00:06"
fixed_ips = ["10.0.0.6"]
host = "h2"
"#;

fn mac(i: u8) -> Mac {
    Mac([0xfa, 0x16, 0x3e, 0, 0, i])
}

fn ip(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, i)
}

fn model_of(text: &str) -> Model {
    sgswitch::control::config::parse_str(text, "arp.toml")
        .expect("valid config")
        .model
}

struct Rig {
    dp: Dataplane,
    p: Pipeline,
    now: u64,
}

impl Rig {
    fn new(text: &str) -> Rig {
        let m = model_of(text);
        Rig {
            dp: Dataplane::compile(&m, 1, &mut IdMap::default()),
            p: Pipeline::new(&PipelineConfig::from_model(&m)),
            now: 1,
        }
    }

    fn port(&self, name: &str) -> u16 {
        self.dp.port_index(name).unwrap()
    }

    fn tunnel(&self, host: &str) -> u16 {
        let n1 = self.dp.networks.iter().position(|x| x == "n1").unwrap() as u16;
        let t = self
            .dp
            .tunnels
            .iter()
            .find(|t| t.network == n1 && t.host == host);
        t.unwrap().port
    }

    fn send(&mut self, from: &str, frame: &[u8]) -> Verdict {
        self.now += 1_000;
        let mut v = Verdict::default();
        let from = self.port(from);
        let d = self.p.process(&self.dp, from, frame, self.now, 0, &mut v);
        assert_eq!(d, Disposition::Decided);
        v
    }
}

/// An ARP request from `(sha, spa)` for `tpa`, to `dst`.
fn who_has(dst: Mac, sha: Mac, spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
    pad(arp(dst, sha, 1, sha, spa, ZERO, tpa))
}

/// An IPv6 neighbour solicitation from `a` for `target`.
fn neighbour_solicit(target: Ipv6Addr) -> Vec<u8> {
    let o = target.octets();
    let group = Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | o[13] as u16,
        u16::from_be_bytes([o[14], o[15]]),
    );
    let mut icmp = vec![135, 0, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&o);
    let gm = group.octets();
    let dst = Mac([0x33, 0x33, gm[12], gm[13], gm[14], gm[15]]);
    ipv6_frame(dst, mac(1), "fd00::1".parse().unwrap(), group, 58, &icmp)
}

fn expected_reply(to: u8, of: u8, port: u16) -> ArpReply {
    ArpReply {
        mac: mac(of),
        ip: ip(of).octets(),
        to_mac: mac(to),
        to_ip: ip(to).octets(),
        port,
    }
}

#[test]
fn broadcast_request_for_a_remote_port_is_answered_and_not_sent_to_the_tunnels() {
    let mut r = Rig::new(TEXT);
    let (a, b, c) = (r.port("a"), r.port("b"), r.port("c"));
    let v = r.send("a", &who_has(BCAST, mac(1), ip(1), ip(2)));
    assert_eq!(v.reply, Some(expected_reply(1, 2, b)));
    assert_eq!(
        v.delivered,
        vec![c],
        "the local port still gets the request, no tunnel"
    );
    assert!(v.dropped.is_empty(), "{v:?}");
    // The reply bytes: to a, from b's MAC, "10.0.0.2 is-at b's MAC".
    let frame = v.reply.unwrap().to_vec();
    assert_eq!(frame.len(), ARP_REPLY_LEN);
    let m = sgswitch::flow::extract(&frame).unwrap();
    assert_eq!((m.eth_dst, m.eth_src, m.arp.op), (mac(1), mac(2), 2));
    assert_eq!((m.arp.sha, m.arp.spa), (mac(2), ip(2).octets()));
    assert_eq!((m.arp.tha, m.arp.tpa), (mac(1), ip(1).octets()));
    // Counted at the requester: one reply, one frame sent to it.
    let cnt = &r.p.counters()[r.dp.ports[a as usize].zone as usize];
    assert_eq!((cnt.arp_replies, cnt.tx, cnt.rx), (1, 1, 1));
    assert_eq!(cnt.tx_bytes, ARP_REPLY_LEN as u64);
    // The other remote host's port too, from the port without port security.
    let v = r.send("c", &who_has(BCAST, mac(3), ip(3), ip(4)));
    assert_eq!(v.reply, Some(expected_reply(3, 4, r.port("d"))));
    assert_eq!(v.delivered, vec![a]);
}

#[test]
fn unicast_request_to_the_remote_mac_is_answered_too() {
    let mut r = Rig::new(TEXT);
    let v = r.send("a", &who_has(mac(2), mac(1), ip(1), ip(2)));
    assert_eq!(v.reply, Some(expected_reply(1, 2, r.port("b"))));
    assert!(v.delivered.is_empty() && v.dropped.is_empty(), "{v:?}");
    // To another MAC than the address's: not the responder's business (forwarded).
    let v = r.send("a", &who_has(mac(4), mac(1), ip(1), ip(2)));
    assert_eq!(v.reply, None);
    assert_eq!(v.delivered, vec![r.tunnel("h3")]);
}

#[test]
fn requests_the_responder_does_not_know_are_flooded_as_before() {
    let mut r = Rig::new(TEXT);
    let (c, t2, t3) = (r.port("c"), r.tunnel("h2"), r.tunnel("h3"));
    let mut flood = vec![c, t2, t3];
    flood.sort_unstable();
    for (what, tpa) in [
        ("unknown address", ip(99)),
        (
            "allowed-address-pair address (not published by l2population)",
            ip(100),
        ),
        ("port of a host without a tunnel", ip(5)),
        ("port of another network", ip(6)),
        ("a local port's address", ip(3)),
    ] {
        let v = r.send("a", &who_has(BCAST, mac(1), ip(1), tpa));
        assert_eq!(v.reply, None, "{what}");
        assert_eq!(
            v.delivered, flood,
            "{what}: flooded to the local port and the tunnels"
        );
    }
    // Gratuitous ARP (sender = target) and ARP replies: never answered.
    let v = r.send("a", &who_has(BCAST, mac(1), ip(1), ip(1)));
    assert_eq!((v.reply, &v.delivered), (None, &flood));
    let v = r.send("a", &pad(arp(BCAST, mac(1), 2, mac(1), ip(1), ZERO, ip(2))));
    assert_eq!(
        (v.reply, &v.delivered),
        (None, &flood),
        "an ARP reply is not a request"
    );
    // Sender hardware address other than the source MAC, from a port without port
    // security (which does not check it): not answered.
    let v = r.send("c", &pad(arp(BCAST, mac(3), 1, mac(9), ip(3), ZERO, ip(2))));
    assert_eq!(v.reply, None);
}

#[test]
fn a_request_port_security_forbids_is_dropped_as_before() {
    let mut r = Rig::new(TEXT);
    let a = r.port("a");
    // Sender IP not a's.
    let v = r.send("a", &who_has(BCAST, mac(1), ip(77), ip(2)));
    assert_eq!(v.reply, None);
    assert_eq!(v.dropped, vec![(a, DropReason::ArpDenied)]);
    assert!(v.delivered.is_empty());
    // Source MAC not a's.
    let v = r.send("a", &who_has(BCAST, mac(9), ip(1), ip(2)));
    assert_eq!(
        (v.reply, v.dropped),
        (None, vec![(a, DropReason::SpoofedMac)])
    );
    let cnt = &r.p.counters()[r.dp.ports[a as usize].zone as usize];
    assert_eq!(cnt.arp_replies, 0);
}

#[test]
fn ipv6_neighbour_solicitations_are_still_flooded() {
    let mut r = Rig::new(TEXT);
    let v = r.send("a", &neighbour_solicit("fd00::2".parse().unwrap()));
    assert_eq!(v.reply, None, "Neutron's responder answers ARP only");
    let mut flood = vec![r.port("c"), r.tunnel("h2"), r.tunnel("h3")];
    flood.sort_unstable();
    assert_eq!(v.delivered, flood);
}

#[test]
fn requests_from_a_tunnel_are_not_answered() {
    let mut r = Rig::new(TEXT);
    let t2 = r.tunnel("h2");
    let mut v = Verdict::default();
    let f = who_has(BCAST, mac(2), ip(2), ip(4));
    r.p.process(&r.dp, t2, &f, 10, 0, &mut v);
    assert_eq!(v.reply, None, "the sending host answers its own instances");
    assert_eq!(v.delivered, vec![r.port("a"), r.port("c")]);
}

#[test]
fn a_remote_port_leaving_the_model_stops_the_answers() {
    let r = Rig::new(TEXT);
    assert!(r.dp.arp.lookup(0, ip(2).octets()).is_some());
    // b gone: its address is unknown; b moved to h1 (local now): not answered either.
    let gone = TEXT.replace(
        "fixed_ips = [\"10.0.0.2\", \"fd00::2\"]",
        "fixed_ips = [\"fd00::2\"]",
    );
    let moved = TEXT.replacen("host = \"h2\"", "host = \"h1\"", 1);
    let no_host = TEXT.replace("[[hosts]]\nname = \"h2\"\nvtep = \"10.9.0.2\"\n", "");
    for (what, text) in [
        ("address removed", gone),
        ("port now local", moved),
        ("host gone", no_host),
    ] {
        let mut r = Rig::new(&text);
        let v = r.send("a", &who_has(BCAST, mac(1), ip(1), ip(2)));
        assert_eq!(v.reply, None, "{what}");
        assert!(
            v.delivered.contains(&r.port("c")),
            "{what}: flooded as before"
        );
    }
    // Without an overlay there is no table at all.
    let plain = Rig::new(&TEXT.replace("[overlay]\nhost = \"h1\"\n", ""));
    assert!(plain.dp.arp.is_empty());
}

#[test]
fn an_address_two_ports_claim_is_not_answered() {
    // d (h3) claims b's address too.
    let text = TEXT.replace(
        "fixed_ips = [\"10.0.0.4\"]",
        "fixed_ips = [\"10.0.0.4\", \"10.0.0.2\"]",
    );
    let Ok(cfg) = sgswitch::control::config::parse_str(&text, "dup.toml") else {
        return; // validation refuses duplicate addresses: nothing to answer wrongly
    };
    let dp = Dataplane::compile(&cfg.model, 1, &mut IdMap::default());
    assert_eq!(dp.arp.lookup(0, ip(2).octets()), None);
    assert!(dp.arp.lookup(0, ip(4).octets()).is_some());
}

#[test]
fn bursts_and_trace_say_the_same() {
    let mut r = Rig::new(TEXT);
    let frames: Vec<Vec<u8>> = vec![
        who_has(BCAST, mac(1), ip(1), ip(2)),
        who_has(BCAST, mac(1), ip(1), ip(99)),
        who_has(mac(2), mac(1), ip(1), ip(2)),
        who_has(BCAST, mac(1), ip(77), ip(2)),
    ];
    let singles: Vec<Verdict> = frames.iter().map(|f| r.send("a", f)).collect();
    let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    let mut out = vec![Verdict::default(); frames.len()];
    let mut disp = vec![Disposition::Decided; frames.len()];
    let a = r.port("a");
    r.p.process_burst(&r.dp, a, &refs, 1 << 30, &mut out, &mut disp);
    assert_eq!(out, singles);
    let mut v = Verdict::default();
    let (d, t) = r.p.trace(&r.dp, a, &frames[0], 1 << 31, &mut v);
    assert_eq!(d, Disposition::Decided);
    assert_eq!(v, singles[0]);
    assert!(
        t.steps
            .iter()
            .any(|s| matches!(s, Step::ArpReply { reply } if reply.port == r.port("b"))),
        "{t:?}"
    );
}

// ---- replay and trace (the CLI) ----

struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("sgs-arp-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
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

fn sgswitch(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_sgswitch"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn replay_shows_the_reply_as_a_frame_to_the_in_port() {
    let d = TempDir::new("replay");
    std::fs::write(d.path("c.toml"), TEXT).unwrap();
    let f = std::fs::File::create(d.path("in.pcapng")).unwrap();
    let mut w = PcapNgWriter::new(f, &["a"]).unwrap();
    w.write(0, 1_000, &who_has(BCAST, mac(1), ip(1), ip(2)), None)
        .unwrap();
    w.write(0, 2_000, &who_has(BCAST, mac(1), ip(1), ip(99)), None)
        .unwrap();
    w.finish().unwrap();
    let (ok, out, err) = sgswitch(&d.0, &["replay", "--config", "c.toml", "in.pcapng"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[1].contains("c,a:arp-reply"), "{out}");
    assert!(!lines[2].contains("arp-reply"), "{out}");
    assert!(
        lines[2].contains("tunnel:n1:h2"),
        "unknown address flooded: {out}"
    );
    assert!(
        out.contains("arp responder: 1 requests answered locally"),
        "{out}"
    );
    let (ok, out, err) = sgswitch(
        &d.0,
        &["replay", "--config", "c.toml", "--json", "in.pcapng"],
    );
    assert!(ok, "{err}");
    let first: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(first["delivered"], serde_json::json!(["c"]));
    assert_eq!(first["arp_reply"]["port"], "a");
    assert_eq!(
        first["arp_reply"]["summary"],
        "arp reply 10.0.0.2 is-at fa:16:3e:00:00:02 to 10.0.0.1"
    );
    let second: serde_json::Value = serde_json::from_str(out.lines().nth(1).unwrap()).unwrap();
    assert!(second.get("arp_reply").is_none());
    // --out-dir: the reply is in a.pcap, the request in c.pcap.
    let (ok, _, err) = sgswitch(
        &d.0,
        &[
            "replay",
            "--config",
            "c.toml",
            "--out-dir",
            "out",
            "in.pcapng",
        ],
    );
    assert!(ok, "{err}");
    let read = |p: &str| {
        let f = std::fs::File::open(d.path(p)).unwrap();
        let mut rd = CaptureReader::new(std::io::BufReader::new(f)).unwrap();
        let mut frames = Vec::new();
        let mut buf = Vec::new();
        while rd.next_frame(&mut buf).unwrap().is_some() {
            frames.push(buf.clone());
        }
        frames
    };
    let to_a = read("out/a.pcap");
    assert_eq!(to_a.len(), 1);
    let reply = expected_reply(1, 2, 1).to_vec();
    assert_eq!(to_a[0], reply);
    assert_eq!(read("out/c.pcap").len(), 2);
}

#[test]
fn trace_explains_the_answer() {
    let d = TempDir::new("trace");
    std::fs::write(d.path("c.toml"), TEXT).unwrap();
    let (ok, out, err) = sgswitch(
        &d.0,
        &[
            "trace",
            "--config",
            "c.toml",
            "--in-port",
            "a",
            "arp who-has 10.0.0.2 tell 10.0.0.1",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("arp-responder"), "{out}");
    assert!(
        out.contains("10.0.0.2 is fa:16:3e:00:00:02 (port b on host h2)"),
        "{out}"
    );
    assert!(
        out.contains("answered: arp reply 10.0.0.2 is-at fa:16:3e:00:00:02 to 10.0.0.1 sent to a"),
        "{out}"
    );
    let (ok, out, err) = sgswitch(
        &d.0,
        &[
            "trace",
            "--config",
            "c.toml",
            "--in-port",
            "a",
            "--json",
            "arp who-has 10.0.0.2 tell 10.0.0.1",
        ],
    );
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["arp_reply"],
        "arp reply 10.0.0.2 is-at fa:16:3e:00:00:02 to 10.0.0.1"
    );
    assert!(v["stages"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["stage"] == "arp-responder"));
}

// ---- live: an instance resolves a remote port's MAC with no other host present ----

/// The switch of host h1 with one instance (a tap moved into its namespace) and a remote
/// port `r` (10.0.0.99) on host h2, which does not exist: no underlay, nothing answers
/// through a tunnel. The instance's kernel resolves 10.0.0.99 all the same (the
/// responder's reply), and `ip neigh` shows r's MAC.
#[test]
fn live_instance_resolves_a_remote_port_without_the_remote_host() {
    let test = "live_instance_resolves_a_remote_port_without_the_remote_host";
    if !common::env_ready(test, common::Backend::Tap) {
        return;
    }
    let topo = common::Topo::new("ar", common::Backend::Tap, 1);
    let overlay = r#"
[overlay]
host = "h1"

[[hosts]]
name = "h1"
vtep = "10.9.0.1"

[[hosts]]
name = "h2"
vtep = "10.9.0.2"

[[ports]]
name = "r"
mac = "fa:16:3e:00:00:99"
fixed_ips = ["10.0.0.99"]
host = "h2"
"#;
    let config = format!(
        "{}{}{overlay}",
        common::POLICY,
        topo.ports_toml(&[r#"["inst"]"#])
    );
    let path = topo.write_config(&config);
    let sw = common::Switch::start(&path, &topo.dir.path);
    topo.configure();
    let inst = &topo.insts[0];
    let ns = &inst.ns.name;
    // `sgswitch capture` of the instance's port shows the request (rx) and the answer
    // (tx), as the instance saw them.
    let cap_file = topo.dir.path.join("inst.pcapng");
    let cap = capture_for(&sw, &inst.port, &cap_file, 4);
    // The ping itself goes nowhere (no underlay); it makes the kernel ask.
    let _ = common::ping(&inst.ns, "10.0.0.99", None, 1);
    let mut neigh = String::new();
    for _ in 0..20 {
        neigh = common::sh(&["ip", "-n", ns, "neigh", "show", "10.0.0.99"]);
        if neigh.contains("lladdr") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        neigh.contains("lladdr fa:16:3e:00:00:99"),
        "{test}: the instance resolved r's MAC through the responder: {neigh:?}\n{}",
        sw.log_text()
    );
    // Counted for the requester's port in the API's stats (and so in /metrics).
    let stats = sw
        .api_client()
        .get("/sgswitch/v1/stats")
        .expect("GET /sgswitch/v1/stats");
    let answered: u64 = stats["stats"]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| p["arp_replies"].as_u64().unwrap_or(0))
        .sum();
    assert!(answered >= 1, "{test}: arp_replies in stats: {stats}");
    // An address nobody has stays unresolved (flooded, unanswered).
    let _ = common::ping(&inst.ns, "10.0.0.98", None, 1);
    let none = common::sh(&["ip", "-n", ns, "neigh", "show", "10.0.0.98"]);
    assert!(!none.contains("lladdr"), "{test}: {none:?}");
    let out = cap.wait_with_output().expect("sgswitch capture ends");
    assert!(out.status.success(), "{test}: capture: {out:?}");
    let (_, frames) = common::read_pcapng(&cap_file);
    let arp = |op: u8, sha: [u8; 6]| {
        frames.iter().find(|(f, _)| {
            f.len() >= 42 && f[12..14] == [0x08, 0x06] && f[21] == op && f[22..28] == sha
        })
    };
    let r_mac = [0xfa, 0x16, 0x3e, 0, 0, 0x99];
    let reply = arp(2, r_mac).unwrap_or_else(|| {
        panic!(
            "{test}: no ARP reply from r's MAC in the capture: {:?}",
            frames
                .iter()
                .map(|(f, c)| format!("{} {c:?}", common::frame_summary(f)))
                .collect::<Vec<_>>()
        )
    });
    assert_eq!(reply.1, ["tx"], "{test}: the answer is the port's tx");
    assert_eq!(reply.0[28..32], [10, 0, 0, 99], "{test}: for 10.0.0.99");
    assert!(
        frames
            .iter()
            .any(|(f, c)| f.len() >= 42 && f[12..14] == [0x08, 0x06] && f[21] == 1 && c == &["rx"]),
        "{test}: the request is the port's rx"
    );
}

/// `sgswitch capture` of `port` for `secs` seconds into `file`, returned once it says it
/// is capturing.
fn capture_for(sw: &common::Switch, port: &str, file: &Path, secs: u32) -> std::process::Child {
    use std::io::{BufRead, BufReader};
    let addr = sw.api_addr().expect("API address in the log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sgswitch"))
        .args([
            "capture",
            "--api",
            &format!("http://{addr}"),
            "--port",
            port,
        ])
        .args(["--duration", &secs.to_string(), "-w"])
        .arg(file)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sgswitch capture starts");
    // Its stderr is drained by a thread until it ends (a closed pipe would fail its
    // last message).
    let err = child.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut said = Vec::new();
    while let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(10)) {
        let started = line.contains("sgswitch: capturing");
        said.push(line);
        if started {
            return child;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("sgswitch capture did not start: {said:?}");
}
