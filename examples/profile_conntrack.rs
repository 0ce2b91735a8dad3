//! Drive connection tracking with hits on established TCP connections (the workloads of
//! `benches/conntrack.rs`), for profilers that count instructions (callgrind) or sample
//! (perf), without criterion's machinery.
//!
//! Modes (third argument):
//! * `pipeline32` (default) — the shipped path, the `conntrack::hit/pipeline32` bench:
//!   the conntrack phases of `Pipeline::process_parsed_burst` over bursts of 32
//!   (`sgswitch::bench::workload::ct_pipeline_phases`);
//! * `per_frame` — `conntrack::hit/per_frame`: `Conntrack::probe` then
//!   `Conntrack::track_probe_inline` one packet at a time (`Pipeline::process`);
//! * `track_burst` — `conntrack::not_shipped::hit/track_burst256`: `Conntrack::track_burst`
//!   (not the shipped path).
//!
//! `cargo build --release --example profile_conntrack`
//! `valgrind --tool=callgrind target/release/examples/profile_conntrack 2000 10000`
//! (arguments: bursts of 256, table entries, mode; defaults 20000, 1000000, `pipeline32`).

use sgswitch::bench::workload::{ct_flow, ct_per_frame, ct_pipeline_phases, XorShift};
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
    let mode = args.next().unwrap_or_else(|| "pipeline32".to_string());
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
        let tracked = |t: &Track| matches!(t, Track::Tracked { .. });
        match mode.as_str() {
            "pipeline32" => {
                assert!(tracked(&ct_pipeline_phases(&mut ct, &pkts, 1)));
                hits += BURST as u64;
            }
            "per_frame" => {
                assert!(tracked(&ct_per_frame(&mut ct, &pkts, 1)));
                hits += BURST as u64;
            }
            "track_burst" => {
                let refs: Vec<(u16, &PacketMeta)> = pkts.iter().map(|(z, m)| (*z, m)).collect();
                ct.track_burst(&refs, 1, &mut out);
                hits += out.iter().filter(|t| tracked(t)).count() as u64;
            }
            m => panic!("unknown mode {m}: pipeline32, per_frame or track_burst"),
        }
    }
    let s = ct.stats();
    assert_eq!(hits, (bursts * BURST) as u64, "every packet a hit");
    assert_eq!(s.hits, hits, "every lookup a hit");
    println!("{} packets, all hits ({mode})", bursts * BURST);
}
