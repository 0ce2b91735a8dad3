//! Frame builders for tests and benchmarks (not used by the dataplane).
//!
//! Frames carry valid IPv4 header checksums and lengths; L4 checksums are left zero
//! (the switch never verifies them).

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::wire::Mac;

fn eth(dst: Mac, src: Mac, ethertype: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(128);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in h.chunks(2) {
        sum += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// IPv4 packet parameters.
#[derive(Clone, Copy, Debug)]
pub struct V4 {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    pub id: u16,
    /// Fragment offset in 8-byte units.
    pub frag_offset: u16,
    pub more_fragments: bool,
}

impl V4 {
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr, proto: u8) -> V4 {
        V4 {
            src,
            dst,
            proto,
            id: 1,
            frag_offset: 0,
            more_fragments: false,
        }
    }
}

/// Ethernet + IPv4 header + `payload`.
pub fn ipv4_frame(
    dst_mac: impl Into<Mac>,
    src_mac: impl Into<Mac>,
    ip: V4,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = eth(dst_mac.into(), src_mac.into(), 0x0800);
    let total = 20 + payload.len();
    let flags_off = ((ip.more_fragments as u16) << 13) | (ip.frag_offset & 0x1fff);
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    h[4..6].copy_from_slice(&ip.id.to_be_bytes());
    h[6..8].copy_from_slice(&flags_off.to_be_bytes());
    h[8] = 64;
    h[9] = ip.proto;
    h[12..16].copy_from_slice(&ip.src.octets());
    h[16..20].copy_from_slice(&ip.dst.octets());
    let c = ipv4_checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&h);
    f.extend_from_slice(payload);
    f
}

/// A TCP header (20 bytes) with the given flags, followed by `data`.
pub fn tcp(sport: u16, dport: u16, flags: u8, seq: u32, ack: u32, data: &[u8]) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = flags;
    t[14..16].copy_from_slice(&64240u16.to_be_bytes());
    t.extend_from_slice(data);
    t
}

/// A UDP header followed by `data`.
pub fn udp(sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut u = vec![0u8; 8];
    u[0..2].copy_from_slice(&sport.to_be_bytes());
    u[2..4].copy_from_slice(&dport.to_be_bytes());
    u[4..6].copy_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    u.extend_from_slice(data);
    u
}

/// An ICMP/ICMPv6 message: type, code, then `rest` (4 bytes id/seq or unused, + data).
pub fn icmp(ty: u8, code: u8, rest: &[u8]) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0];
    m.extend_from_slice(rest);
    m
}

/// Ethernet + IPv6 header + `payload` (`next` is the first next-header value).
pub fn ipv6_frame(
    dst_mac: impl Into<Mac>,
    src_mac: impl Into<Mac>,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = eth(dst_mac.into(), src_mac.into(), 0x86dd);
    let mut h = [0u8; 40];
    h[0] = 0x60;
    h[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
    h[6] = next;
    h[7] = 64;
    h[8..24].copy_from_slice(&src.octets());
    h[24..40].copy_from_slice(&dst.octets());
    f.extend_from_slice(&h);
    f.extend_from_slice(payload);
    f
}

/// An ARP frame (Ethernet/IPv4).
pub fn arp(
    dst_mac: impl Into<Mac>,
    src_mac: impl Into<Mac>,
    op: u16,
    sha: impl Into<Mac>,
    spa: Ipv4Addr,
    tha: impl Into<Mac>,
    tpa: Ipv4Addr,
) -> Vec<u8> {
    let mut f = eth(dst_mac.into(), src_mac.into(), 0x0806);
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&sha.into().0);
    f.extend_from_slice(&spa.octets());
    f.extend_from_slice(&tha.into().0);
    f.extend_from_slice(&tpa.octets());
    f
}

/// Pad a frame to the 60-byte Ethernet minimum (without FCS).
pub fn pad(mut f: Vec<u8>) -> Vec<u8> {
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

/// Workloads shared by the criterion benches and the profiling examples
/// (`examples/profile_*.rs`), so that a profile measures exactly what a benchmark does.
pub mod workload {
    use super::{ipv4_frame, pad, tcp, Mac, V4};
    use crate::flow::{proto, FlowKey, PacketMeta, FAMILY_V4};
    use crate::pipeline::{Dataplane, Pipeline, PipelineConfig, Verdict, ZoneMap};
    use std::net::Ipv4Addr;

    /// Two ports: `client` (default group) and `server` (group `web`: TCP 80, UDP
    /// 5000-6000 from 10.0.0.0/24), conntrack capacity 1M.
    pub const WEB_PAIR: &str = r#"
[[security_groups]]
name = "web"
rules = [
  { direction = "ingress", protocol = "tcp", port_range_min = 80, port_range_max = 80 },
  { direction = "ingress", protocol = "udp", port_range_min = 5000, port_range_max = 6000, remote_ip_prefix = "10.0.0.0/24" },
  { direction = "egress" },
]
[[ports]]
name = "client"
mac = "fa:16:3e:00:00:01"
fixed_ips = ["10.0.0.1"]
[[ports]]
name = "server"
mac = "fa:16:3e:00:00:02"
fixed_ips = ["10.0.0.2"]
security_groups = ["web"]
[conntrack]
capacity = 1048576
"#;
    /// MAC of `client`.
    pub const CLIENT_MAC: Mac = Mac([0xfa, 0x16, 0x3e, 0, 0, 1]);
    /// MAC of `server`.
    pub const SERVER_MAC: Mac = Mac([0xfa, 0x16, 0x3e, 0, 0, 2]);
    /// Address of `client`.
    pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    /// Address of `server`.
    pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    /// [`WEB_PAIR`] compiled: the dataplane (epoch 1) and the pipeline settings.
    pub fn web_pair() -> (Dataplane, PipelineConfig) {
        let cfg = crate::control::config::parse_str(WEB_PAIR, "web-pair.toml")
            .expect("WEB_PAIR is a valid config");
        let mut zones = ZoneMap::default();
        let dp = Dataplane::compile(&cfg.model, 1, &mut zones);
        (dp, PipelineConfig::from_model(&cfg.model))
    }

    /// Open `flows` TCP connections client → server:80 through `p` (SYN, then the
    /// server's SYN/ACK, each asserted delivered) and return one data segment of each,
    /// client → server, in flow order.
    pub fn open_tcp_flows(dp: &Dataplane, p: &mut Pipeline, flows: usize) -> Vec<Vec<u8>> {
        let client = dp.port_index("client").expect("client port");
        let server = dp.port_index("server").expect("server port");
        let (c, s) = (CLIENT_IP, SERVER_IP);
        let mut v = Verdict::default();
        let mut data = Vec::with_capacity(flows);
        for i in 0..flows {
            let sport = 10_000u16.wrapping_add(i as u16);
            let syn = pad(ipv4_frame(
                SERVER_MAC,
                CLIENT_MAC,
                V4::new(c, s, 6),
                &tcp(sport, 80, 0x02, 1, 0, &[]),
            ));
            p.process(dp, client, &syn, 1, 0, &mut v);
            assert_eq!(
                v.delivered,
                vec![server],
                "SYN of flow {i} delivered: {v:?}"
            );
            let synack = pad(ipv4_frame(
                CLIENT_MAC,
                SERVER_MAC,
                V4::new(s, c, 6),
                &tcp(80, sport, 0x12, 7, 2, &[]),
            ));
            p.process(dp, server, &synack, 2, 0, &mut v);
            assert_eq!(
                v.delivered,
                vec![client],
                "SYN/ACK of flow {i} delivered: {v:?}"
            );
            data.push(pad(ipv4_frame(
                SERVER_MAC,
                CLIENT_MAC,
                V4::new(c, s, 6),
                &tcp(sport, 80, 0x10, 2, 8, &[0u8; 6]),
            )));
        }
        data
    }

    /// Connection-tracking flow `i` as a TCP packet to `dport` (client side), and its
    /// zone (`i % 64`): 64 zones, sources spread over 10.0.0.0/8.
    pub fn ct_flow(i: u64, dport: u16, flags: u8) -> (u16, PacketMeta) {
        let m = PacketMeta {
            key: FlowKey {
                src: FlowKey::map_v4([10, (i >> 16) as u8, (i >> 8) as u8, i as u8]),
                dst: FlowKey::map_v4([192, 168, (i >> 24) as u8, (i % 7) as u8]),
                sport: 1024 + (i % 50_000) as u16,
                dport,
                proto: proto::TCP,
                family: FAMILY_V4,
                _pad: [0; 2],
            },
            tcp_flags: flags,
            ..PacketMeta::default()
        };
        ((i % 64) as u16, m)
    }

    /// xorshift64*: a cheap, reproducible stream for picking flows at random.
    pub struct XorShift(pub u64);

    impl XorShift {
        #[allow(clippy::should_implement_trait)]
        pub fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }
}
