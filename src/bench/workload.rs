//! Workloads shared by the criterion benches and the profiling examples
//! (`examples/profile_*.rs`), so that a profile measures exactly what a benchmark does.
//!
//! Owns: the shared workloads. May not touch: anything the dataplane runs (it only
//! drives the public API).

use super::frames::{ipv4_frame, pad, tcp, V4};
use crate::conntrack::{Conntrack, Track};
use crate::flow::{proto, FlowKey, PacketMeta, FAMILY_V4};
use crate::pipeline::{Dataplane, IdMap, Pipeline, PipelineConfig, Verdict, BURST};
use crate::wire::Mac;
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
    web_pair_with(Observed::Default)
}

/// How much a [`web_pair_with`] pipeline observes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observed {
    /// No rule counters, no packet log.
    Bare,
    /// As shipped: rule counters on, no log object.
    Default,
    /// Rule counters, and a packet log of every port (`ALL`, Neutron's default rate
    /// limits); the caller drains the records after each burst as a worker does.
    Logged,
}

/// [`WEB_PAIR`] compiled with the given observation.
pub fn web_pair_with(obs: Observed) -> (Dataplane, PipelineConfig) {
    let mut cfg = crate::control::config::parse_str(WEB_PAIR, "web-pair.toml")
        .expect("WEB_PAIR is a valid config");
    if obs == Observed::Logged {
        cfg.model.logs.push(crate::policy::NetworkLog {
            name: "all".into(),
            description: String::new(),
            resource: None,
            target: None,
            event: crate::policy::LogEvent::All,
            enabled: true,
        });
    }
    let mut zones = IdMap::default();
    let dp = Dataplane::compile(&cfg.model, 1, &mut zones);
    let mut pcfg = PipelineConfig::from_model(&cfg.model);
    pcfg.rule_hits = obs != Observed::Bare;
    (dp, pcfg)
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

/// The conntrack phases of `Pipeline::process_parsed_burst` (the live workers' path) over
/// bursts of [`crate::pipeline::BURST`] packets: [`Conntrack::probe`] for every packet,
/// [`Conntrack::prefetch_entry`] for every probe, then [`Conntrack::track_probe_inline`]
/// one by one in packet order, as `Pipeline::ct_check` does. Returns the last outcome.
pub fn ct_pipeline_phases(ct: &mut Conntrack, pkts: &[(u16, PacketMeta)], now_ns: u64) -> Track {
    let mut last = Track::Invalid;
    let mut probes = [None; crate::pipeline::BURST];
    for chunk in pkts.chunks(crate::pipeline::BURST) {
        for (p, (z, m)) in probes.iter_mut().zip(chunk) {
            *p = Some(ct.probe(*z, m));
        }
        for p in probes[..chunk.len()].iter_mut().flatten() {
            ct.prefetch_entry(p);
        }
        for p in probes[..chunk.len()].iter().flatten() {
            last = std::hint::black_box(ct.track_probe_inline(p, now_ns));
        }
    }
    last
}

/// The conntrack lookup of a frame with no probe made ahead (`Pipeline::sg_check`, as
/// `Pipeline::process` runs it frame by frame for replay): [`Conntrack::probe`] then
/// [`Conntrack::track_probe_inline`], one packet after the other. Returns the last outcome.
pub fn ct_per_frame(ct: &mut Conntrack, pkts: &[(u16, PacketMeta)], now_ns: u64) -> Track {
    let mut last = Track::Invalid;
    for (z, m) in pkts {
        let p = ct.probe(*z, m);
        last = std::hint::black_box(ct.track_probe_inline(&p, now_ns));
    }
    last
}

/// Every frame a new UDP connection client → server:5000..5999 (a fresh source port
/// each, 64 M before one repeats), against a conntrack table held at steady state. The
/// flood's connections can hold `room` = min(capacity, 2 × per-port limit) entries (two
/// each, one per port's zone; WEB_PAIR: 1M entries, 65,536 per port, so 131,072: the two
/// ports' zones at their limits, as any one-pair flood ends), and the clock advances
/// `udp_timeout × 2 × BURST / room` per burst, so connections time out exactly as fast as
/// new ones fill that room: entries leave by expiry (the sweep, a lookup, a commit's
/// reclaim) or eviction (the zone's or the table's oldest unassured) as fast as they
/// come. `benches/pipeline.rs` `new_flows/steady/burst` and
/// `examples/profile_pipeline.rs` mode `steady`.
pub struct NewFlows {
    frames: Vec<Vec<u8>>,
    next: u64,
    /// The clock of the next burst (ns).
    pub now: u64,
    step: u64,
}

impl NewFlows {
    /// A stream for a pipeline built from `pcfg`, in bursts of [`BURST`] frames.
    pub fn new(pcfg: &PipelineConfig) -> NewFlows {
        let burst = BURST;
        let frame = pad(ipv4_frame(
            SERVER_MAC,
            CLIENT_MAC,
            V4::new(CLIENT_IP, SERVER_IP, proto::UDP),
            &super::frames::udp(1024, 5000, &[0u8; 18]),
        ));
        let ct = &pcfg.conntrack;
        let timeout = ct.udp_timeout.saturating_mul(1_000_000_000) as u128;
        let room = NewFlows::room(pcfg) as u128;
        NewFlows {
            frames: vec![frame; burst],
            next: 0,
            now: 1,
            step: (timeout * 2 * burst as u128 / room.max(1)) as u64,
        }
    }

    /// The entries the flood's connections can hold in a pipeline built from `pcfg`.
    pub fn room(pcfg: &PipelineConfig) -> usize {
        let ct = &pcfg.conntrack;
        match ct.per_port_limit {
            0 => ct.capacity,
            l => ct.capacity.min(l.saturating_mul(2)),
        }
    }

    /// The next burst (each frame a connection never seen before) and its clock.
    pub fn burst(&mut self) -> ([&[u8]; BURST], u64) {
        for f in &mut self.frames {
            let n = self.next;
            self.next += 1;
            let sport = 1024 + (n % 64_000) as u16;
            let dport = 5000 + (n / 64_000 % 1000) as u16;
            f[34..36].copy_from_slice(&sport.to_be_bytes());
            f[36..38].copy_from_slice(&dport.to_be_bytes());
        }
        let now = self.now;
        self.now += self.step;
        let mut out: [&[u8]; BURST] = [&[]; BURST];
        for (o, f) in out.iter_mut().zip(&self.frames) {
            *o = f;
        }
        (out, now)
    }

    /// Run `bursts` bursts through `p` as a worker does (`process_burst`, then
    /// `housekeeping`); returns the frames delivered to `server`.
    pub fn run(&mut self, dp: &Dataplane, p: &mut Pipeline, bursts: usize) -> u64 {
        let server = dp.port_index("server").expect("server port");
        let client = dp.port_index("client").expect("client port");
        let mut out = vec![Verdict::default(); BURST];
        let mut disp = vec![crate::pipeline::Disposition::Decided; BURST];
        let mut delivered = 0;
        for _ in 0..bursts {
            let (frames, now) = self.burst();
            p.process_burst(dp, client, &frames, now, &mut out, &mut disp);
            p.housekeeping(now);
            delivered += out.iter().filter(|o| o.delivered == [server]).count() as u64;
        }
        delivered
    }
}
