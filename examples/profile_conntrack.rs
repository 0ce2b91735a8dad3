//! Drive `Conntrack::track_burst` with hits on established TCP connections (the
//! `conntrack::hit/burst256` benchmark's workload), for profilers that count
//! instructions (callgrind) or sample (perf), without criterion's machinery.
//!
//! `cargo build --release --example profile_conntrack`
//! `valgrind --tool=callgrind target/release/examples/profile_conntrack 2000 10000`
//! (arguments: bursts of 256, table entries; defaults 20000 and 1000000).

use sgswitch::bench::workload::{ct_flow, XorShift};
use sgswitch::conntrack::{Conntrack, Track};
use sgswitch::flow::{tcp_flags, PacketMeta};
use sgswitch::policy::ConntrackSettings;

const BURST: usize = 256;

fn main() {
    let mut args = std::env::args().skip(1);
    let bursts: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let n: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let settings = ConntrackSettings {
        capacity: n as usize,
        ..ConntrackSettings::default()
    };
    let mut ct = Conntrack::with_seed(&settings, 7);
    for i in 0..n {
        let (z, m) = ct_flow(i, 443, tcp_flags::ACK);
        ct.commit(z, &m, 1, 0, 0).expect("prefill");
    }
    let mut rng = XorShift(0x1234_5678_9abc_def1);
    let mut pkts = vec![ct_flow(0, 443, 0); BURST];
    let mut out = [Track::Invalid; BURST];
    let mut hits = 0u64;
    for _ in 0..bursts {
        for p in pkts.iter_mut() {
            *p = ct_flow(rng.next() % n, 443, tcp_flags::ACK);
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
