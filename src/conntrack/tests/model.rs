//! Randomized comparison with a reference model (and of bursts with packet-by-packet
//! tracking).

use super::*;

/// The reference: a `HashMap` keyed by (zone, original pseudo key), looked up under the
/// packet's pseudo key and its reverse; no index, no slab, no capacity pressure.
struct Model {
    map: std::collections::HashMap<(u16, FlowKey), MEntry>,
    cfg: ConntrackSettings,
}

#[derive(Clone, Copy)]
struct MEntry {
    state: CtState,
    seen_reply: bool,
    expires: u64,
    epoch: u64,
    cut: bool,
    tag: u8,
    orig: FlowKey,
}

/// ICMP query -> pseudo key with ports (requester id, responder request type); the
/// model's own, independent formulation.
fn model_pseudo(k: &FlowKey) -> Option<(FlowKey, Option<bool>)> {
    let mut p = *k;
    p._pad = [0; 2];
    if !k.is_icmp() {
        return Some((p, None));
    }
    let t = k.icmp_type();
    let pairs: &[(u8, u8)] = if k.family == FAMILY_V4 {
        &[(8, 0), (13, 14), (15, 16), (17, 18)]
    } else {
        &[(128, 129), (139, 140)]
    };
    for &(q, r) in pairs {
        if t == q {
            p.sport = k.sport;
            p.dport = u16::from(q);
            return Some((p, Some(true)));
        }
        if t == r {
            p.sport = u16::from(q);
            p.dport = k.sport;
            return Some((p, Some(false)));
        }
    }
    None
}

impl Model {
    fn timeout(&self, st: CtState, seen_reply: bool) -> u64 {
        let c = &self.cfg;
        SEC * match st {
            CtState::TcpSynSent | CtState::TcpSynSent2 | CtState::TcpSynRecv => c.tcp_syn_timeout,
            CtState::TcpEstablished => c.tcp_established_timeout,
            CtState::TcpClose => c.tcp_close_timeout,
            CtState::Udp if seen_reply => c.udp_stream_timeout,
            CtState::Udp => c.udp_timeout,
            CtState::Icmp => c.icmp_timeout,
            CtState::Other => c.other_timeout,
            CtState::Free => 0,
            _ => c.tcp_fin_timeout,
        }
    }

    /// Live entry for a pseudo key: (map key, is reply).
    fn find(&mut self, zone: u16, p: &FlowKey, now: u64) -> Option<((u16, FlowKey), bool)> {
        for (k, reply) in [((zone, *p), false), ((zone, p.reversed()), true)] {
            if let Some(e) = self.map.get(&k) {
                if e.expires > now {
                    return Some((k, reply));
                }
                self.map.remove(&k);
            }
        }
        None
    }

    fn track(&mut self, zone: u16, m: &PacketMeta, now: u64) -> (Track, Option<FlowKey>) {
        let k = &m.key;
        if m.frag.is_later_fragment() || k.family == 0 {
            return (Track::Invalid, None);
        }
        if k.is_icmp() && key::icmp_is_error(k.family, k.icmp_type()) {
            let q = &m.icmp_inner;
            if q.family != k.family || (q.is_icmp() && key::icmp_is_error(q.family, q.icmp_type()))
            {
                return (Track::Invalid, None);
            }
            let Some((p, _)) = model_pseudo(q) else {
                return (Track::Invalid, None);
            };
            return match self.find(zone, &p, now) {
                Some((mk, _)) => {
                    let e = self.map[&mk];
                    (
                        Track::Related {
                            handle: Handle { slot: 0, gen: 0 },
                            epoch: e.epoch,
                            cut: e.cut,
                            tag: e.tag,
                        },
                        Some(e.orig),
                    )
                }
                None => (Track::Invalid, None),
            };
        }
        let Some((p, icmp_req)) = model_pseudo(k) else {
            return (Track::Invalid, None);
        };
        let idx = tcp::classify_flags(m.tcp_flags);
        let Some((mk, reply)) = self.find(zone, &p, now) else {
            return match (k.proto, icmp_req) {
                (_, Some(false)) => (Track::Invalid, None),
                (_, Some(true)) => (Track::New, None),
                (proto::TCP, None) if tcp::initial(idx).is_none() => (Track::Invalid, None),
                _ => (Track::New, None),
            };
        };
        let mut e = self.map[&mk];
        if let Some(req) = icmp_req {
            if req == reply {
                return (Track::Invalid, None);
            }
        }
        if e.state.is_tcp() {
            match tcp::step(e.state, reply, idx) {
                Step::To(s) => {
                    e.state = s;
                    e.expires = now + self.timeout(s, false);
                }
                Step::Keep => {}
                Step::Invalid => return (Track::Invalid, None),
                Step::Reopen => {
                    self.map.remove(&mk);
                    return (Track::New, None);
                }
            }
        } else {
            e.expires = now + self.timeout(e.state, e.seen_reply || reply);
        }
        e.seen_reply |= reply;
        self.map.insert(mk, e);
        (
            Track::Tracked {
                handle: Handle { slot: 0, gen: 0 },
                reply,
                epoch: e.epoch,
                cut: e.cut,
                tag: e.tag,
            },
            Some(e.orig),
        )
    }

    fn commit(&mut self, zone: u16, m: &PacketMeta, epoch: u64, tag: u8, now: u64) {
        let (p, _) = model_pseudo(&m.key).expect("commit of an untrackable packet");
        if self.find(zone, &p, now).is_some() {
            return;
        }
        let state = if m.key.is_icmp() {
            CtState::Icmp
        } else {
            match m.key.proto {
                proto::TCP => tcp::initial(tcp::classify_flags(m.tcp_flags)).expect("startable"),
                proto::UDP => CtState::Udp,
                _ => CtState::Other,
            }
        };
        let mut orig = m.key;
        orig._pad = [0; 2];
        self.map.insert(
            (zone, p),
            MEntry {
                state,
                seen_reply: false,
                expires: now + self.timeout(state, false),
                epoch,
                cut: false,
                tag,
                orig,
            },
        );
    }

    fn live(&self, now: u64) -> usize {
        self.map.values().filter(|e| e.expires > now).count()
    }
}

/// Small deterministic PRNG (xorshift64*), so failures reproduce.
pub(super) struct Rng(pub(super) u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

pub(super) fn random_packet(r: &mut Rng) -> PacketMeta {
    let hosts = [A, B, [10, 0, 0, 3]];
    let s = hosts[r.below(3) as usize];
    let d = hosts[r.below(3) as usize];
    let sp = [1000u16, 80, 8][r.below(3) as usize];
    let dp = [1000u16, 80, 8][r.below(3) as usize];
    match r.below(10) {
        0..=4 => {
            let flags = [
                tf::SYN,
                tf::SYN | tf::ACK,
                tf::ACK,
                tf::ACK | tf::PSH,
                tf::FIN | tf::ACK,
                tf::RST,
                0,
                tf::FIN,
            ][r.below(8) as usize];
            tcp(s, d, sp, dp, flags)
        }
        5 | 6 => meta4(s, d, proto::UDP, sp, dp),
        7 => {
            let ty = [8u8, 0, 13, 14, 9][r.below(5) as usize];
            icmp4(s, d, ty, 0, sp)
        }
        8 => {
            // An error quoting a random TCP/UDP/echo key.
            let inner = match r.below(3) {
                0 => tcp(s, d, sp, dp, 0).key,
                1 => meta4(d, s, proto::UDP, dp, sp).key,
                _ => icmp4(s, d, 8, 0, sp).key,
            };
            let mut e = icmp4([192, 0, 2, 1], s, [3u8, 11][r.below(2) as usize], 0, 0);
            e.icmp_inner = inner;
            e
        }
        _ => meta4(s, d, proto::GRE, 0, 0),
    }
}

/// A real outcome in the model's terms: handle zeroed, `orig` looked up.
fn normalise(ct: &Conntrack, t: Track) -> (Track, Option<FlowKey>) {
    let zero = Handle { slot: 0, gen: 0 };
    match t {
        Track::Tracked {
            handle,
            reply,
            epoch,
            cut,
            tag,
        } => (
            Track::Tracked {
                handle: zero,
                reply,
                epoch,
                cut,
                tag,
            },
            ct.orig(handle),
        ),
        Track::Related {
            handle,
            epoch,
            cut,
            tag,
        } => (
            Track::Related {
                handle: zero,
                epoch,
                cut,
                tag,
            },
            ct.orig(handle),
        ),
        t => (t, None),
    }
}

#[test]
fn randomized_against_model() {
    for seed in 1..=20u64 {
        let c = ConntrackSettings {
            capacity: 4096,
            tcp_syn_timeout: 3,
            tcp_established_timeout: 50,
            tcp_fin_timeout: 4,
            tcp_close_timeout: 1,
            udp_timeout: 2,
            udp_stream_timeout: 6,
            icmp_timeout: 2,
            other_timeout: 5,
            ..ConntrackSettings::default()
        };
        let mut ct = Conntrack::with_seed(&c, seed);
        let mut model = Model {
            map: Default::default(),
            cfg: c,
        };
        let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut now = 0u64;
        let mut handles: Vec<Handle> = Vec::new();
        for step in 0..4000 {
            now += r.below(SEC / 2);
            let zone = r.below(3) as u16;
            let m = random_packet(&mut r);
            let got = ct.track(zone, &m, now);
            let want = model.track(zone, &m, now);
            assert_eq!(normalise(&ct, got), want, "seed {seed} step {step}: {m:?}");
            match got {
                Track::New if r.below(4) != 0 => {
                    let epoch = r.below(4);
                    let tag = r.below(2) as u8;
                    let h = ct
                        .commit(zone, &m, epoch, tag, now)
                        .expect("capacity is ample");
                    model.commit(zone, &m, epoch, tag, now);
                    handles.push(h);
                }
                Track::Tracked { handle, .. } if r.below(5) == 0 => {
                    let orig = ct.orig(handle).expect("live");
                    // A re-judgement: new epoch, maybe cut; mirror it in the model.
                    let epoch = r.below(8);
                    let cut = r.below(2) == 0;
                    assert!(ct.set_epoch(handle, epoch, cut));
                    let e = ct.get(handle).unwrap();
                    assert_eq!(e.orig, orig);
                    let (p, _) = model_pseudo(&orig).unwrap();
                    let me = model.map.get_mut(&(zone, p)).expect("model has it");
                    me.epoch = epoch;
                    me.cut = cut;
                }
                _ => {}
            }
            if r.below(10) == 0 {
                ct.expire(now, r.below(64) as usize);
            }
            if step % 100 == 0 {
                let live = ct.iter().filter(|e| e.expires_ns > now).count();
                assert_eq!(live, model.live(now), "seed {seed} step {step}");
                assert!(ct.len() <= ct.capacity());
                ct.check_fairness();
                // Stale handles never alias a live entry of another connection.
                for h in &handles {
                    if let Some(e) = ct.get(*h) {
                        assert_eq!(e.handle, *h);
                    }
                }
            }
        }
        let s = ct.stats();
        assert!(
            s.hits > 100 && s.misses > 100 && s.inserts > 50,
            "seed {seed}: {s:?}"
        );
    }
}

#[test]
fn randomized_burst_equals_sequential() {
    // Same seed, same operations: `track_burst` must give exactly what `track` gives
    // packet by packet, for every burst length (including ones shorter than the
    // prefetch ring and ones spanning several strides), with commits, expiry and TCP
    // reopens changing the table between and within bursts.
    for seed in 1..=10u64 {
        let c = ConntrackSettings {
            capacity: 512,
            tcp_syn_timeout: 2,
            udp_timeout: 1,
            icmp_timeout: 1,
            ..ConntrackSettings::default()
        };
        let mut seq = Conntrack::with_seed(&c, seed);
        let mut bur = Conntrack::with_seed(&c, seed);
        let mut r = Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1);
        let mut now = 0u64;
        for _ in 0..300 {
            now += r.below(SEC);
            let len = r.below(70) as usize;
            let pkts: Vec<(u16, PacketMeta)> = (0..len)
                .map(|_| (r.below(2) as u16, random_packet(&mut r)))
                .collect();
            let refs: Vec<(u16, &PacketMeta)> = pkts.iter().map(|(z, m)| (*z, m)).collect();
            let want: Vec<Track> = pkts.iter().map(|(z, m)| seq.track(*z, m, now)).collect();
            let mut got = vec![Track::Invalid; len];
            bur.track_burst(&refs, now, &mut got);
            assert_eq!(got, want, "seed {seed}");
            for ((z, m), t) in pkts.iter().zip(&want) {
                if *t == Track::New {
                    let a = seq.commit(*z, m, 1, 0, now);
                    let b = bur.commit(*z, m, 1, 0, now);
                    assert_eq!(a, b);
                }
            }
            if r.below(4) == 0 {
                assert_eq!(seq.expire(now, 50), bur.expire(now, 50));
            }
        }
        assert_eq!(seq.stats(), bur.stats());
    }
}
