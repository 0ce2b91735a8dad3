//! Drive `Conntrack::track_burst` with hits on established TCP connections (the
//! `conntrack::hit/burst256` benchmark's workload), for profilers that count
//! instructions (callgrind) or sample (perf), without criterion's machinery.
//!
//! `cargo build --release --example profile_conntrack`
//! `valgrind --tool=callgrind target/release/examples/profile_conntrack 2000 10000`
//! (arguments: bursts of 256, table entries; defaults 20000 and 1000000).

use sgswitch::conntrack::{Conntrack, CtConfig, Track};
use sgswitch::flow::{proto, tcp_flags, FlowKey, PacketMeta, FAMILY_V4};

const BURST: usize = 256;

/// Flow `i` as a TCP packet (the benchmark's flow layout).
fn flow(i: u64, flags: u8) -> (u16, PacketMeta) {
    let m = PacketMeta {
        key: FlowKey {
            src: FlowKey::map_v4([10, (i >> 16) as u8, (i >> 8) as u8, i as u8]),
            dst: FlowKey::map_v4([192, 168, (i >> 24) as u8, (i % 7) as u8]),
            sport: 1024 + (i % 50_000) as u16,
            dport: 443,
            proto: proto::TCP,
            family: FAMILY_V4,
            _pad: [0; 2],
        },
        tcp_flags: flags,
        ..PacketMeta::default()
    };
    ((i % 64) as u16, m)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let bursts: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let n: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let mut ct = Conntrack::new(CtConfig {
        capacity: n as usize,
        seed: Some(7),
        ..CtConfig::default()
    });
    for i in 0..n {
        let (z, m) = flow(i, tcp_flags::ACK);
        ct.commit(z, &m, 1, 0, 0).expect("prefill");
    }
    let mut rng = 0x1234_5678_9abc_def1u64;
    let mut pkts = vec![flow(0, 0); BURST];
    let mut out = [Track::Invalid; BURST];
    let mut hits = 0u64;
    for _ in 0..bursts {
        for p in pkts.iter_mut() {
            rng ^= rng >> 12;
            rng ^= rng << 25;
            rng ^= rng >> 27;
            *p = flow(rng.wrapping_mul(0x2545_f491_4f6c_dd1d) % n, tcp_flags::ACK);
        }
        let refs: Vec<(u16, &PacketMeta)> = pkts.iter().map(|(z, m)| (*z, m)).collect();
        ct.track_burst(&refs, 1, &mut out);
        hits += out
            .iter()
            .filter(|t| matches!(t, Track::Tracked { .. }))
            .count() as u64;
    }
    assert_eq!(hits, (bursts * BURST) as u64, "every packet a hit");
    println!("{} packets, all hits", bursts * BURST);
}
