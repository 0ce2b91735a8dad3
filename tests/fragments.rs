//! Fragment attacks against the pipeline, in process (#14): overlapping fragments (RFC
//! 1858, RFC 5722), tiny first fragments that hide the L4 header (RFC 1858 §3, RFC
//! 7112), storms of fragments that never complete (bounded tables, timeouts release
//! them), and the invariant under all of them: a datagram whose first fragment is denied
//! never has a fragment delivered, and an allowed one in any order is delivered whole.
//!
//! Owns: these scenarios. May not touch: the pipeline's internals (only its public API:
//! `process`, `drain_released`, counters and the fragment gauges).

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use sgswitch::bench::frames::{ipv4_frame, ipv6_frame, tcp, udp, V4};
use sgswitch::flow::{proto, tcp_flags, DropReason};
use sgswitch::pipeline::{Dataplane, Disposition, IdMap, Pipeline, PipelineConfig, Verdict};
use sgswitch::wire::Mac;

const A_MAC: Mac = Mac([0xfa, 0x16, 0x3e, 0, 0, 1]);
const B_MAC: Mac = Mac([0xfa, 0x16, 0x3e, 0, 0, 2]);
const A_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const A_IP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
const B_IP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);
const SEC: u64 = 1_000_000_000;

/// Ports a and b in group `web`: ingress tcp/80 and udp/53 (IPv4 and IPv6), egress
/// anything. tcp/81 and udp/54 are denied at b.
const CONFIG: &str = r#"
[[security_groups]]
name = "web"
rules = [
  { direction = "ingress", ethertype = "IPv4", protocol = "tcp", port_range_min = 80, port_range_max = 80 },
  { direction = "ingress", ethertype = "IPv4", protocol = "udp", port_range_min = 53, port_range_max = 53 },
  { direction = "ingress", ethertype = "IPv6", protocol = "tcp", port_range_min = 80, port_range_max = 80 },
  { direction = "ingress", ethertype = "IPv6", protocol = "udp", port_range_min = 53, port_range_max = 53 },
  { direction = "egress", ethertype = "IPv4" },
  { direction = "egress", ethertype = "IPv6" },
]

[[ports]]
name = "a"
mac = "fa:16:3e:00:00:01"
fixed_ips = ["10.0.0.1", "fd00::1"]
security_groups = ["web"]

[[ports]]
name = "b"
mac = "fa:16:3e:00:00:02"
fixed_ips = ["10.0.0.2", "fd00::2"]
security_groups = ["web"]
"#;

/// What became of a frame: the ports it was delivered to, and its drops.
type Outcome = (Vec<u16>, Vec<(u16, DropReason)>);

struct Rig {
    dp: Dataplane,
    p: Pipeline,
    a: u16,
    b: u16,
    /// Outcome per token (a held frame gets its outcome when released).
    outcomes: HashMap<u64, Outcome>,
    next: u64,
}

impl Rig {
    fn new() -> Rig {
        let model = sgswitch::control::config::parse_str(CONFIG, "fragments.toml")
            .expect("valid config")
            .model;
        let mut ids = IdMap::default();
        let dp = Dataplane::compile(&model, 1, &mut ids);
        let (a, b) = (dp.port_index("a").unwrap(), dp.port_index("b").unwrap());
        Rig {
            p: Pipeline::new(&PipelineConfig::from_model(&model)),
            dp,
            a,
            b,
            outcomes: HashMap::new(),
            next: 0,
        }
    }

    /// Send `frame` from port a at `now`; its token.
    fn send(&mut self, frame: &[u8], now: u64) -> u64 {
        let t = self.send_only(frame, now);
        self.drain();
        t
    }

    /// Send without draining the released held frames (as a worker within one burst).
    fn send_only(&mut self, frame: &[u8], now: u64) -> u64 {
        let t = self.next;
        self.next += 1;
        let mut v = Verdict::default();
        if self.p.process(&self.dp, self.a, frame, now, t, &mut v) == Disposition::Decided {
            self.outcomes.insert(t, (v.delivered, v.dropped));
        }
        t
    }

    fn drain(&mut self) {
        let outcomes = &mut self.outcomes;
        self.p.drain_released(&self.dp, |tok, _, _, v| {
            outcomes.insert(tok, (v.delivered.clone(), v.dropped.clone()));
        });
    }

    /// The outcome of token `t` (decided by now).
    fn outcome(&self, t: u64) -> &Outcome {
        self.outcomes
            .get(&t)
            .unwrap_or_else(|| panic!("frame {t} still held"))
    }

    /// Whether `t` was delivered to b (and nowhere else).
    fn delivered(&self, t: u64) -> bool {
        let (d, _) = self.outcome(t);
        assert!(d.is_empty() || d == &[self.b], "{d:?}");
        !d.is_empty()
    }

    /// The reason `t` was dropped (exactly one drop).
    fn reason(&self, t: u64) -> DropReason {
        let (d, drops) = self.outcome(t);
        assert!(d.is_empty(), "frame {t} delivered");
        assert_eq!(drops.len(), 1, "{drops:?}");
        drops[0].1
    }

    /// Drops of `r` counted at port a.
    fn count_a(&self, r: DropReason) -> u64 {
        self.p.counters()[self.a as usize].dropped[r as usize]
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Family {
    V4,
    V6,
}

/// Bytes `[from, to)` of `datagram` (upper-layer protocol `p`, identification `id`) as one
/// fragment from a to b; `more` unless it reaches the end.
fn piece(f: Family, id: u32, p: u8, datagram: &[u8], from: usize, to: usize) -> Vec<u8> {
    assert_eq!(from % 8, 0);
    let more = to < datagram.len();
    let data = &datagram[from..to];
    match f {
        Family::V4 => {
            let ip = V4 {
                id: id as u16,
                frag_offset: (from / 8) as u16,
                more_fragments: more,
                ..V4::new(A_IP, B_IP, p)
            };
            ipv4_frame(B_MAC, A_MAC, ip, data)
        }
        Family::V6 => {
            let off = ((from / 8) as u16) << 3 | more as u16;
            let mut payload = vec![p, 0];
            payload.extend_from_slice(&off.to_be_bytes());
            payload.extend_from_slice(&id.to_be_bytes());
            payload.extend_from_slice(data);
            ipv6_frame(B_MAC, A_MAC, A_IP6, B_IP6, proto::IPV6_FRAG, &payload)
        }
    }
}

/// A 64-byte datagram: a TCP SYN or a UDP datagram from `sport` to `dport`.
fn datagram(p: u8, sport: u16, dport: u16) -> Vec<u8> {
    let data = [0x5a; 56];
    if p == proto::TCP {
        tcp(sport, dport, tcp_flags::SYN, 1, 0, &data[..44])
    } else {
        udp(sport, dport, &data)
    }
}

/// The four fragments of a 64-byte datagram: `[0,24) [24,40) [40,48) [48,64)`.
const CUTS: [(usize, usize); 4] = [(0, 24), (24, 40), (40, 48), (48, 64)];

/// Every order of `n` items.
fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for at in 0..=p.len() {
            let mut q = p.clone();
            q.insert(at, n - 1);
            out.push(q);
        }
    }
    out
}

const CASES: [(Family, u8); 4] = [
    (Family::V4, proto::TCP),
    (Family::V4, proto::UDP),
    (Family::V6, proto::TCP),
    (Family::V6, proto::UDP),
];

fn allowed_port(p: u8) -> u16 {
    if p == proto::TCP {
        80
    } else {
        53
    }
}

#[test]
fn allowed_datagrams_in_any_order_are_delivered_whole() {
    let mut r = Rig::new();
    let mut id = 0;
    for (f, p) in CASES {
        for order in permutations(CUTS.len()) {
            id += 1;
            let d = datagram(p, 10_000 + id as u16, allowed_port(p));
            assert_eq!(d.len(), 64);
            let tokens: Vec<u64> = order
                .iter()
                .map(|&i| r.send(&piece(f, id, p, &d, CUTS[i].0, CUTS[i].1), SEC))
                .collect();
            for t in tokens {
                assert!(
                    r.delivered(t),
                    "{f:?} {p} order {order:?}: {:?}",
                    r.outcome(t)
                );
            }
        }
    }
    assert_eq!(r.p.held(), 0);
    assert_eq!(r.p.counters()[r.a as usize].dropped_total(), 0);
}

/// Every byte delivered for one datagram, checking no byte is delivered twice.
fn delivered_bytes(r: &Rig, sent: &[(u64, (usize, usize))]) -> usize {
    let mut seen = [false; 64];
    for (t, (from, to)) in sent {
        if r.delivered(*t) {
            for b in &mut seen[*from..*to] {
                assert!(!*b, "byte delivered twice");
                *b = true;
            }
        }
    }
    seen.iter().filter(|b| **b).count()
}

#[test]
fn denied_datagrams_never_leak() {
    let mut r = Rig::new();
    let mut id = 1000;
    let mut sent_total = 0;
    for (f, p) in CASES {
        let allowed = allowed_port(p);
        let denied = allowed + 1;
        for order in permutations(CUTS.len()) {
            // Variants: as is; every fragment twice; an overlapping fragment [16,32) after
            // each position; the first fragment re-sent with the allowed port (same
            // length: a duplicate; longer: an overlap) after the denied one.
            for variant in 0..4 {
                for extra_at in 0..=order.len() {
                    id += 1;
                    let sport = 20_000 + (id % 40_000) as u16;
                    let bad = datagram(p, sport, denied);
                    let good = datagram(p, sport, allowed);
                    let mut seq: Vec<(Vec<u8>, (usize, usize))> = Vec::new();
                    for &i in &order {
                        let (from, to) = CUTS[i];
                        let frame = piece(f, id, p, &bad, from, to);
                        if variant == 1 {
                            seq.push((frame.clone(), (from, to)));
                        }
                        seq.push((frame, (from, to)));
                    }
                    // Where the extra fragments go: after the `extra_at`th of the order.
                    let at = seq.len() * extra_at / order.len();
                    let first_sent = seq[..at].iter().any(|(_, s)| s.0 == 0);
                    let extra = match variant {
                        2 => vec![(piece(f, id, p, &bad, 16, 32), (16, 32))],
                        3 if first_sent => vec![
                            (piece(f, id, p, &good, 0, 24), (0, 24)),
                            (piece(f, id, p, &good, 0, 32), (0, 32)),
                        ],
                        _ => vec![],
                    };
                    seq.splice(at..at, extra);
                    let sent: Vec<(u64, (usize, usize))> = seq
                        .iter()
                        .map(|(frame, span)| (r.send(frame, SEC), *span))
                        .collect();
                    sent_total += sent.len();
                    let leaked = delivered_bytes(&r, &sent);
                    assert_eq!(
                        leaked, 0,
                        "{f:?} {p} {order:?} variant {variant} at {extra_at}"
                    );
                }
            }
        }
    }
    // Nothing is left held, and every drop was counted at a port.
    assert_eq!(r.p.held(), 0);
    let drops: u64 = r.p.counters().iter().map(|c| c.dropped_total()).sum();
    assert_eq!(drops, sent_total as u64);
}

#[test]
fn overlaps_drop_the_rest_of_the_datagram() {
    for (f, p) in CASES {
        let mut r = Rig::new();
        let d = datagram(p, 4000, allowed_port(p));
        // In order, then a fragment overlapping what was delivered: it and every later
        // fragment are dropped (RFC 5722: the datagram is discarded; the fragments already
        // delivered cannot be called back).
        let t0 = r.send(&piece(f, 1, p, &d, 0, 24), SEC);
        let t1 = r.send(&piece(f, 1, p, &d, 24, 40), SEC);
        let t2 = r.send(&piece(f, 1, p, &d, 32, 48), SEC);
        let t3 = r.send(&piece(f, 1, p, &d, 48, 64), SEC);
        assert!(r.delivered(t0) && r.delivered(t1), "{f:?} {p}");
        assert_eq!(r.reason(t2), DropReason::FragmentOverlap);
        assert_eq!(r.reason(t3), DropReason::FragmentOverlap);
        // Held fragments of a datagram found overlapped go with it.
        let h1 = r.send(&piece(f, 2, p, &d, 24, 40), SEC);
        let h2 = r.send(&piece(f, 2, p, &d, 48, 64), SEC);
        let o = r.send(&piece(f, 2, p, &d, 40, 56), SEC);
        let first = r.send(&piece(f, 2, p, &d, 0, 24), SEC);
        for t in [h1, h2, o, first] {
            assert_eq!(r.reason(t), DropReason::FragmentOverlap, "{f:?} {p}");
        }
        // An exact retransmission is a duplicate: dropped alone, the datagram goes on.
        let ts: Vec<u64> = [(0, 24), (24, 40), (24, 40), (40, 48), (0, 24), (48, 64)]
            .iter()
            .map(|&(a, b)| r.send(&piece(f, 3, p, &d, a, b), SEC))
            .collect();
        for (i, t) in ts.iter().enumerate() {
            if i == 2 || i == 4 {
                assert_eq!(r.reason(*t), DropReason::FragmentDuplicate);
            } else {
                assert!(r.delivered(*t), "{f:?} {p} fragment {i}");
            }
        }
        assert_eq!(r.count_a(DropReason::FragmentOverlap), 6);
        assert_eq!(r.count_a(DropReason::FragmentDuplicate), 2);
        assert_eq!(r.p.held(), 0);
    }
}

#[test]
fn fragments_inside_the_tcp_header_are_overlaps() {
    // RFC 1858 §4, the tiny-overlap attack: a fragment at offset 1 (8 bytes) rewrites the
    // TCP flags of a first fragment judged with others. Any TCP fragment starting inside
    // the 20-byte header is refused at once, before or after the first fragment.
    for f in [Family::V4, Family::V6] {
        let mut r = Rig::new();
        let syn = datagram(proto::TCP, 5000, 80);
        let mut ack = syn.clone();
        ack[13] = tcp_flags::ACK;
        let early = r.send(&piece(f, 1, proto::TCP, &ack, 8, 24), SEC);
        let first = r.send(&piece(f, 1, proto::TCP, &syn, 0, 8 * 3), SEC);
        assert_eq!(r.reason(early), DropReason::FragmentOverlap);
        assert_eq!(r.reason(first), DropReason::FragmentOverlap);
        let first = r.send(&piece(f, 2, proto::TCP, &syn, 0, 24), SEC);
        let late = r.send(&piece(f, 2, proto::TCP, &ack, 16, 64), SEC);
        assert!(r.delivered(first));
        assert_eq!(r.reason(late), DropReason::FragmentOverlap);
    }
}

#[test]
fn tiny_first_fragments_are_dropped_with_their_datagram() {
    for f in [Family::V4, Family::V6] {
        let mut r = Rig::new();
        let d = datagram(proto::TCP, 6000, 80);
        // 16 bytes of a 20-byte TCP header: the flow key cannot be known.
        let held = r.send(&piece(f, 1, proto::TCP, &d, 24, 40), SEC);
        let tiny = r.send(&piece(f, 1, proto::TCP, &d, 0, 16), SEC);
        let after = r.send(&piece(f, 1, proto::TCP, &d, 40, 64), SEC);
        let full = r.send(&piece(f, 1, proto::TCP, &d, 0, 24), SEC);
        for t in [held, tiny, after, full] {
            assert_eq!(r.reason(t), DropReason::FragmentTiny, "{f:?}");
        }
        assert_eq!(r.count_a(DropReason::FragmentTiny), 4);
        // UDP: 6 bytes of an 8-byte header.
        let u = datagram(proto::UDP, 6000, 53);
        let mut tiny = piece(f, 2, proto::UDP, &u, 0, 8);
        tiny.truncate(tiny.len() - 2);
        let len_at = if f == Family::V4 { 16 } else { 18 };
        let l = u16::from_be_bytes([tiny[len_at], tiny[len_at + 1]]) - 2;
        tiny[len_at..len_at + 2].copy_from_slice(&l.to_be_bytes());
        if f == Family::V4 {
            // Fix the header checksum after the length change.
            tiny[24..26].copy_from_slice(&[0, 0]);
            let mut sum = 0u32;
            for w in tiny[14..34].chunks(2) {
                sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
            }
            while sum > 0xffff {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            tiny[24..26].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        }
        let t = r.send(&tiny, SEC);
        assert_eq!(r.reason(t), DropReason::FragmentTiny, "{f:?}");
        // The same cut header in an unfragmented packet is malformed, as before.
        let mut whole = ipv4_frame(B_MAC, A_MAC, V4::new(A_IP, B_IP, proto::TCP), &d[..16]);
        if f == Family::V6 {
            whole = ipv6_frame(B_MAC, A_MAC, A_IP6, B_IP6, proto::TCP, &d[..16]);
        }
        let t = r.send(&whole, SEC);
        assert_eq!(r.reason(t), DropReason::Malformed, "{f:?}");
    }
    // IPv6: a first fragment whose extension header chain does not fit (RFC 7112): the
    // fragment header, then destination options claiming 16 bytes with 8 present.
    let mut r = Rig::new();
    let mut payload = vec![60, 0, 0, 1, 0, 0, 0, 9];
    payload.extend_from_slice(&[proto::TCP, 1, 1, 4, 0, 0, 0, 0]);
    let t = r.send(
        &ipv6_frame(B_MAC, A_MAC, A_IP6, B_IP6, proto::IPV6_FRAG, &payload),
        SEC,
    );
    assert_eq!(r.reason(t), DropReason::FragmentTiny);
}

#[test]
fn a_storm_of_fragments_that_never_complete_stays_bounded() {
    let mut r = Rig::new();
    let (max_held, max_datagrams) = (1024, 4096);
    // 100k later fragments of distinct datagrams over one second, then 10k tiny first
    // fragments of others.
    let d = datagram(proto::UDP, 7000, 53);
    let mut held = 0;
    for i in 0..100_000u32 {
        let t = r.send(
            &piece(Family::V6, 1_000_000 + i, proto::UDP, &d, 24, 40),
            i as u64 * 10_000,
        );
        if !r.outcomes.contains_key(&t) {
            held += 1;
        } else {
            assert_eq!(r.reason(t), DropReason::FragmentOverflow);
        }
        assert!(r.p.held() <= max_held);
    }
    assert_eq!(held, max_held);
    assert_eq!(r.p.held(), max_held);
    for i in 0..10_000u32 {
        let t = r.send(
            &piece(Family::V6, 2_000_000 + i, proto::TCP, &d, 0, 16),
            SEC,
        );
        assert!(matches!(
            r.reason(t),
            DropReason::FragmentTiny | DropReason::FragmentOverflow
        ));
        assert!(r.p.fragment_datagrams() <= max_datagrams);
    }
    assert_eq!(r.p.fragment_datagrams(), max_datagrams);
    let overflow = r.count_a(DropReason::FragmentOverflow);
    assert_eq!(
        overflow + r.count_a(DropReason::FragmentTiny),
        100_000 - max_held as u64 + 10_000
    );
    assert!(overflow >= 100_000 - max_held as u64);
    // Meanwhile a new fragmented datagram has no room (counted).
    let v = datagram(proto::UDP, 7001, 53);
    let t = r.send(&piece(Family::V4, 9, proto::UDP, &v, 0, 24), 2 * SEC);
    assert_eq!(r.reason(t), DropReason::FragmentOverflow);
    // After the fragment timeout (30 s) the state is released: the held fragments are
    // dropped fragment-denied, and a new datagram in any order passes whole.
    let now = 32 * SEC;
    let ts: Vec<u64> = [(24, 40), (48, 64), (0, 24), (40, 48)]
        .iter()
        .map(|&(a, b)| r.send(&piece(Family::V4, 10, proto::UDP, &v, a, b), now))
        .collect();
    for t in ts {
        assert!(r.delivered(t), "{:?}", r.outcome(t));
    }
    assert_eq!(r.count_a(DropReason::FragmentDenied), max_held as u64);
    assert_eq!(r.p.held(), 0);
    assert!(r.p.fragment_datagrams() <= 1);
}

#[test]
fn held_fragments_keep_their_verdict_until_drained() {
    // Within one burst (no drain between frames): held fragments of a denied datagram
    // are released with its verdict, the datagram is then discarded (an overlap) and a
    // new allowed datagram's verdict is recorded. The held ones stay denied.
    for f in [Family::V4, Family::V6] {
        let mut r = Rig::new();
        let bad = datagram(proto::UDP, 8000, 54);
        let good = datagram(proto::UDP, 8001, 53);
        let h1 = r.send_only(&piece(f, 1, proto::UDP, &bad, 24, 40), SEC);
        let h2 = r.send_only(&piece(f, 1, proto::UDP, &bad, 48, 64), SEC);
        let first = r.send_only(&piece(f, 1, proto::UDP, &bad, 0, 24), SEC);
        let o = r.send_only(&piece(f, 1, proto::UDP, &bad, 32, 56), SEC);
        let g = r.send_only(&piece(f, 2, proto::UDP, &good, 0, 24), SEC);
        r.drain();
        assert!(r.delivered(g));
        assert_eq!(r.reason(o), DropReason::FragmentOverlap);
        for t in [h1, h2, first] {
            assert_eq!(r.reason(t), DropReason::IngressDenied, "{f:?}");
        }
        // Slots come back after the drain: many datagrams later, still right.
        for id in 3..200 {
            let t = r.send(&piece(f, id, proto::UDP, &good, 0, 24), SEC);
            assert!(r.delivered(t));
        }
    }
}
