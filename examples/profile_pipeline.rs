//! Drive the pipeline with established TCP flows in bursts of 32 (or new UDP flows), for
//! profilers that count instructions (callgrind) or sample (perf), without criterion's
//! machinery.
//!
//! `cargo build --release --example profile_pipeline`
//! `valgrind --tool=callgrind target/release/examples/profile_pipeline 20000 1000`
//! (arguments: bursts, flows, mode, observation; defaults 200000, 1000, `burst` and
//! `default`; mode `frame` calls `Pipeline::process` on each frame instead of
//! `process_burst`, mode `new` sends a new UDP flow per frame through `process`, as
//! `benches/pipeline.rs` `new_flows`, mode `steady` takes `flows` as the conntrack
//! capacity and a sixteenth of it as the per-port limit (the bench's 1,048,576 and
//! 65,536; a smaller table warms up faster under callgrind and runs the same path), runs
//! 4 × (2 × limit) / 32 bursts of new UDP flows (8 × the room in entries: filled, 7 turnovers)
//! then `bursts` more through `process_burst` + `housekeeping` at that steady state, as
//! `new_flows/steady/burst` (`bench::workload::NewFlows`); observation `bare` (no rule counters), `default`
//! (as shipped) or `logged` (a packet log of every port, records drained per burst), as
//! `pipeline/observe/*`). Instructions per frame: run twice with different bursts and
//! divide the difference.

use std::hint::black_box;

use sgswitch::bench::frames::{ipv4_frame, pad, udp, V4};
use sgswitch::bench::workload::{
    open_tcp_flows, web_pair_with, NewFlows, Observed, CLIENT_IP, CLIENT_MAC, SERVER_IP, SERVER_MAC,
};
use sgswitch::pipeline::{Disposition, Pipeline, Verdict};

const BURST: usize = 32;

fn main() {
    let mut args = std::env::args().skip(1);
    let bursts: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let flows: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let mode = args.next().unwrap_or_else(|| "burst".into());
    let obs = match args.next().as_deref() {
        Some("bare") => Observed::Bare,
        Some("logged") => Observed::Logged,
        _ => Observed::Default,
    };
    let (dp, mut pcfg) = web_pair_with(obs);
    if mode == "steady" {
        pcfg.conntrack.capacity = flows;
        pcfg.conntrack.per_port_limit = flows / 16;
    }
    let client = dp.port_index("client").expect("client");
    let server = dp.port_index("server").expect("server");
    let mut p = Pipeline::new(&pcfg);
    let mut outs = vec![Verdict::default(); BURST];
    let mut disp = vec![Disposition::Decided; BURST];
    let mut delivered = 0u64;
    if mode == "steady" {
        let mut stream = NewFlows::new(&pcfg);
        stream.run(&dp, &mut p, 4 * NewFlows::room(&pcfg) / BURST);
        delivered = stream.run(&dp, &mut p, bursts);
    } else if mode == "new" {
        // A new UDP flow per frame, client -> server:5000.. (the web group allows
        // 5000-6000), a fresh source port each; the clock moves 1 µs per burst.
        let frames: Vec<Vec<u8>> = (0..bursts * BURST)
            .map(|n| {
                let sport = 1024 + (n % 60_000) as u16;
                let dport = 5000 + (n / 60_000 % 1000) as u16;
                pad(ipv4_frame(
                    SERVER_MAC,
                    CLIENT_MAC,
                    V4::new(CLIENT_IP, SERVER_IP, 17),
                    &udp(sport, dport, &[0u8; 18]),
                ))
            })
            .collect();
        for (k, burst) in frames.chunks(BURST).enumerate() {
            for (f, o) in burst.iter().zip(outs.iter_mut()) {
                p.process(&dp, client, black_box(f), 1 + k as u64 * 1000, 0, o);
            }
            p.take_log_records(|r| {
                black_box(r);
            });
            delivered += outs.iter().filter(|o| o.delivered == [server]).count() as u64;
        }
    } else {
        // The workload of `benches/pipeline.rs` `established/*`.
        let data = open_tcp_flows(&dp, &mut p, flows);
        let mut j = 0usize;
        for _ in 0..bursts {
            let mut burst: [&[u8]; BURST] = [&[]; BURST];
            for f in burst.iter_mut() {
                *f = &data[j % flows];
                j += 1;
            }
            if mode == "frame" {
                for (f, o) in burst.iter().zip(outs.iter_mut()) {
                    p.process(&dp, client, black_box(f), 3, 0, o);
                }
            } else {
                p.process_burst(&dp, client, black_box(&burst), 3, &mut outs, &mut disp);
            }
            p.take_log_records(|r| {
                black_box(r);
            });
            delivered += outs.iter().filter(|o| o.delivered == [server]).count() as u64;
        }
    }
    assert_eq!(delivered, (bursts * BURST) as u64, "every frame delivered");
    println!("{} frames, all delivered", bursts * BURST);
}
