//! Drive the pipeline with established TCP flows in bursts of 32, for profilers that
//! count instructions (callgrind) or sample (perf), without criterion's machinery.
//!
//! `cargo build --release --example profile_pipeline`
//! `valgrind --tool=callgrind target/release/examples/profile_pipeline 20000 1000`
//! (arguments: bursts, flows, mode; defaults 200000, 1000 and `burst`; mode `frame`
//! calls `Pipeline::process` on each frame instead of `process_burst`).

use std::hint::black_box;

use sgswitch::bench::workload::{open_tcp_flows, web_pair};
use sgswitch::pipeline::{Disposition, Pipeline, Verdict};

const BURST: usize = 32;

fn main() {
    let mut args = std::env::args().skip(1);
    let bursts: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let flows: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let per_frame = args.next().is_some_and(|m| m == "frame");
    // The workload of `benches/pipeline.rs` `established/*`.
    let (dp, pcfg) = web_pair();
    let client = dp.port_index("client").expect("client");
    let server = dp.port_index("server").expect("server");
    let mut p = Pipeline::new(&pcfg);
    let data = open_tcp_flows(&dp, &mut p, flows);
    let mut outs = vec![Verdict::default(); BURST];
    let mut disp = vec![Disposition::Decided; BURST];
    let mut j = 0usize;
    let mut delivered = 0u64;
    for _ in 0..bursts {
        let mut burst: [&[u8]; BURST] = [&[]; BURST];
        for f in burst.iter_mut() {
            *f = &data[j % flows];
            j += 1;
        }
        if per_frame {
            for (f, o) in burst.iter().zip(outs.iter_mut()) {
                p.process(&dp, client, black_box(f), 3, 0, o);
            }
        } else {
            p.process_burst(&dp, client, black_box(&burst), 3, &mut outs, &mut disp);
        }
        delivered += outs.iter().filter(|o| o.delivered == [server]).count() as u64;
    }
    assert_eq!(
        delivered,
        (bursts * BURST) as u64,
        "every data segment delivered"
    );
    println!("{} frames, all delivered", bursts * BURST);
}
