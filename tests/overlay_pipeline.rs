//! The overlay's tunnel ports in the pipeline (#19, no netns): remote ports are reached
//! through one tunnel port per (network, remote host); egress is checked at the sender's
//! host only, ingress at the receiver's host only; floods are replicated once per remote
//! host with a port on the network (head-end replication); a frame from a tunnel port
//! never goes back to a tunnel port (split horizon); a port of an unknown host is
//! unreachable, counted.

use std::net::Ipv4Addr;

use sgswitch::bench::frames::{arp, ipv4_frame, pad, tcp, V4};
use sgswitch::flow::{proto, tcp_flags, DropReason};
use sgswitch::pipeline::{Dataplane, Disposition, IdMap, Pipeline, PipelineConfig, Verdict};
use sgswitch::policy::{Encap, Model, Network};
use sgswitch::wire::Mac;

const BCAST: Mac = Mac([0xff; 6]);

fn mac(i: u8) -> Mac {
    Mac([0xfa, 0x16, 0x3e, 0, 0, i])
}

fn ip(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, i)
}

/// This host is h1: a and c local on n1; b on h2, d on h3, e on an unknown host, all on
/// n1; f on h2 on n2. Group web: ingress tcp/80 only, egress anything.
const TEXT: &str = r#"
[overlay]
host = "h1"

[[hosts]]
name = "h1"
vtep = "10.9.0.1"

[[hosts]]
name = "h2"
vtep = "10.9.0.2"

[[hosts]]
name = "h3"
vtep = "10.9.0.3"
mac = "52:54:00:00:00:03"

[[networks]]
name = "n1"
vni = 1001

[[security_groups]]
name = "web"
rules = [
  { direction = "ingress", ethertype = "IPv4", protocol = "tcp", port_range_min = 80, port_range_max = 80 },
  { direction = "egress", ethertype = "IPv4" },
]

[[ports]]
name = "a"
network = "n1"
mac = "fa:16:3e:00:00:01"
fixed_ips = ["10.0.0.1"]
security_groups = ["web"]
host = "h1"

[[ports]]
name = "b"
network = "n1"
mac = "fa:16:3e:00:00:02"
fixed_ips = ["10.0.0.2"]
security_groups = ["web"]
host = "h2"

[[ports]]
name = "c"
network = "n1"
mac = "fa:16:3e:00:00:03"
fixed_ips = ["10.0.0.3"]
security_groups = ["web"]

[[ports]]
name = "d"
network = "n1"
mac = "fa:16:3e:00:00:04"
fixed_ips = ["10.0.0.4"]
security_groups = ["web"]
host = "h3"

[[ports]]
name = "e"
network = "n1"
mac = "fa:16:3e:00:00:05"
fixed_ips = ["10.0.0.5"]
security_groups = ["web"]
host = "h9"

[[ports]]
name = "f"
network = "n2"
mac = "fa:16:3e:00:00:06"
fixed_ips = ["10.0.0.6"]
host = "h2"
"#;

fn model() -> Model {
    sgswitch::control::config::parse_str(TEXT, "overlay.toml")
        .expect("valid config")
        .model
}

struct Rig {
    dp: Dataplane,
    p: Pipeline,
    now: u64,
}

impl Rig {
    fn new(m: &Model) -> Rig {
        let dp = Dataplane::compile(m, 1, &mut IdMap::default());
        Rig {
            p: Pipeline::new(&PipelineConfig::from_model(m)),
            dp,
            now: 1,
        }
    }

    fn port(&self, name: &str) -> u16 {
        self.dp.port_index(name).unwrap()
    }

    /// The tunnel port of network `net` towards host `host`.
    fn tunnel(&self, net: &str, host: &str) -> u16 {
        let n = self.dp.networks.iter().position(|x| x == net).unwrap() as u16;
        self.dp
            .tunnels
            .iter()
            .find(|t| t.network == n && t.host == host)
            .unwrap()
            .port
    }

    fn send(&mut self, from: u16, frame: &[u8]) -> Verdict {
        self.now += 1_000;
        let mut v = Verdict::default();
        let d = self.p.process(&self.dp, from, frame, self.now, 0, &mut v);
        assert_eq!(d, Disposition::Decided);
        v
    }
}

fn syn(from: u8, to: u8, dport: u16) -> Vec<u8> {
    ipv4_frame(
        mac(to),
        mac(from),
        V4::new(ip(from), ip(to), proto::TCP),
        &tcp(40000, dport, tcp_flags::SYN, 1, 0, &[]),
    )
}

fn sorted(mut v: Vec<u16>) -> Vec<u16> {
    v.sort_unstable();
    v
}

#[test]
fn tunnel_ports_are_compiled_per_network_and_remote_host() {
    let r = Rig::new(&model());
    // (n1, h2), (n1, h3), (n2, h2); none for h9 (unknown host).
    assert_eq!(r.dp.tunnels.len(), 3);
    let t = &r.dp.tunnels[r.dp.ports[r.tunnel("n1", "h3") as usize].tunnel.unwrap() as usize];
    assert_eq!((t.encap, t.vni), (Encap::Geneve, 1001));
    assert_eq!(t.mac, Some(Mac([0x52, 0x54, 0, 0, 0, 3])));
    let n2 =
        r.dp.tunnels
            .iter()
            .find(|t| t.port == r.tunnel("n2", "h2"))
            .unwrap();
    assert_eq!(n2.vni, Network::vni_of_name("n2"));
    // A decapsulated frame enters from the tunnel port of (VNI, source VTEP).
    let vtep2 = "10.9.0.2".parse().unwrap();
    assert_eq!(
        r.dp.tunnel_port(Encap::Geneve, 1001, vtep2),
        Some(r.tunnel("n1", "h2"))
    );
    assert_eq!(r.dp.tunnel_port(Encap::Vxlan, 1001, vtep2), None);
    assert_eq!(r.dp.tunnel_port(Encap::Geneve, 1002, vtep2), None);
    // Remote ports are marked; local ones (bound here or unbound) are not.
    let remote: Vec<bool> = ["a", "b", "c", "d", "e", "f"]
        .iter()
        .map(|n| r.dp.ports[r.port(n) as usize].remote)
        .collect();
    assert_eq!(remote, vec![false, true, false, true, true, true]);
}

#[test]
fn egress_at_the_sender_ingress_at_the_receiver() {
    let mut r = Rig::new(&model());
    let (a, t2) = (r.port("a"), r.tunnel("n1", "h2"));
    // a -> b: a's egress allows anything; b's ingress (tcp/80 only) is h2's business, so
    // tcp/22 goes into the tunnel too.
    for dport in [80, 22] {
        let v = r.send(a, &syn(1, 2, dport));
        assert_eq!(
            (v.delivered, v.dropped),
            (vec![t2], vec![]),
            "dport {dport}"
        );
    }
    // From the tunnel (b's host did b's egress): only a's ingress applies.
    let v = r.send(t2, &syn(2, 1, 22));
    assert_eq!(v.dropped, vec![(a, DropReason::IngressDenied)]);
    let v = r.send(t2, &syn(2, 1, 80));
    assert_eq!(v.delivered, vec![a]);
    // Port security of b is not this host's: a frame from the tunnel with an address b
    // does not own still reaches a (h2 checked it).
    let spoof = ipv4_frame(
        mac(1),
        mac(2),
        V4::new(Ipv4Addr::new(192, 0, 2, 9), ip(1), proto::TCP),
        &tcp(40001, 80, tcp_flags::SYN, 1, 0, &[]),
    );
    assert_eq!(r.send(t2, &spoof).delivered, vec![a]);
}

#[test]
fn floods_go_once_to_each_remote_host_of_the_network_and_never_back() {
    let mut r = Rig::new(&model());
    let (a, c) = (r.port("a"), r.port("c"));
    let (t2, t3) = (r.tunnel("n1", "h2"), r.tunnel("n1", "h3"));
    let who_has = |from: u8, to: u8| {
        pad(arp(
            BCAST,
            mac(from),
            1,
            mac(from),
            ip(from),
            Mac([0; 6]),
            ip(to),
        ))
    };
    // From a local port: c, and one copy per remote host of n1 (not n2's tunnel). An
    // address no port has (a remote port's is answered by the ARP responder instead:
    // tests/arp_responder.rs).
    let v = r.send(a, &who_has(1, 9));
    assert_eq!(sorted(v.delivered), sorted(vec![c, t2, t3]));
    // From a tunnel port: the local ports only (split horizon).
    let v = r.send(t2, &who_has(2, 1));
    assert_eq!(sorted(v.delivered), sorted(vec![a, c]));
    // A unicast from one tunnel to another host's port is not relayed.
    let v = r.send(t2, &syn(2, 4, 80));
    assert!(v.delivered.is_empty());
    assert_eq!(v.dropped, vec![(t2, DropReason::NoDestination)]);
}

#[test]
fn a_port_of_an_unknown_host_is_unreachable() {
    let mut r = Rig::new(&model());
    let (a, e) = (r.port("a"), r.port("e"));
    let v = r.send(a, &syn(1, 5, 80));
    assert!(v.delivered.is_empty());
    assert_eq!(v.dropped, vec![(e, DropReason::TunnelUnreachable)]);
}

#[test]
fn without_a_local_host_every_port_is_local() {
    let mut m = model();
    m.local_host = None;
    let mut r = Rig::new(&m);
    assert!(r.dp.tunnels.is_empty());
    assert!(r.dp.ports.iter().all(|p| !p.remote && p.tunnel.is_none()));
    let (a, b) = (r.port("a"), r.port("b"));
    assert_eq!(r.send(a, &syn(1, 2, 80)).delivered, vec![b]);
    assert_eq!(
        r.send(a, &syn(1, 2, 22)).dropped,
        vec![(b, DropReason::IngressDenied)]
    );
}

#[test]
fn bursts_decide_like_single_frames() {
    let m = model();
    let frames: Vec<(&str, Vec<u8>)> = vec![
        ("a", syn(1, 2, 22)),
        ("a", syn(1, 5, 80)),
        ("a", syn(1, 3, 80)),
        ("a", syn(1, 4, 22)),
        ("t2", syn(2, 1, 22)),
        ("t2", syn(2, 1, 80)),
        ("t2", syn(2, 4, 80)),
    ];
    let mut one = Rig::new(&m);
    let mut burst = Rig::new(&m);
    for from in ["a", "t2"] {
        let in_port = match from {
            "a" => one.port("a"),
            _ => one.tunnel("n1", "h2"),
        };
        let mine: Vec<&[u8]> = frames
            .iter()
            .filter(|(f, _)| *f == from)
            .map(|(_, b)| b.as_slice())
            .collect();
        let want: Vec<Verdict> = mine.iter().map(|f| one.send(in_port, f)).collect();
        let mut got = vec![Verdict::default(); mine.len()];
        let mut disp = vec![Disposition::Decided; mine.len()];
        burst.now += 1_000;
        burst
            .p
            .process_burst(&burst.dp, in_port, &mine, burst.now, &mut got, &mut disp);
        for (w, g) in want.iter().zip(&got) {
            assert_eq!((&w.delivered, &w.dropped), (&g.delivered, &g.dropped));
        }
    }
}
