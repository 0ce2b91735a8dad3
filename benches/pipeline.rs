//! Frames per second through the whole pipeline (parse, port security, egress SG with
//! conntrack, L2, ingress SG with conntrack) on in-memory frames, in bursts of 32.
//!
//! Measures `Pipeline::process_burst` (= `pipeline::parse_burst` then
//! `Pipeline::process_parsed_burst`, the two calls the live switch's workers make per
//! received burst) and, for comparison, `Pipeline::process` frame by frame (replay's path).
//!
//! * `pipeline/established/{1000,50000}_flows/burst` — `Pipeline::process_burst` (the live
//!   workers' path) on data segments of established TCP flows;
//! * `pipeline/established/*/per_frame` — `Pipeline::process` (replay's path) on the same;
//! * `pipeline/new_flows` — `Pipeline::process`, every frame a new UDP flow (classifier
//!   lookup and conntrack insert on both ports), into fresh, never full tables;
//! * `pipeline/new_flows/steady/burst` — #15's case, what the live workers run on a flood
//!   of new connections: `Pipeline::process_burst` then `Pipeline::housekeeping` per
//!   burst of 32, every frame a new UDP connection (two conntrack inserts), the two
//!   ports' zones held at their per-port limits (65,536 entries each, in a 1M table) with
//!   the clock advancing so that entries time out as fast as they are inserted
//!   (`bench::workload::NewFlows`): expiry and eviction run as in production. Elements
//!   are frames = new connections.
//!
//! * `pipeline/observe/{bare,default,logged}/...` — the same `established/1000_flows/burst`
//!   and `new_flows` cases with rule counters off (`bare`), as shipped (`default`: rule
//!   counters on, no log object), and with a packet log of every port (`logged`: event
//!   ALL, Neutron's default rate limits, records drained after every burst as a worker
//!   does with `Pipeline::take_log_records`): the cost of observing (#13).
//!
//! All of it is the shipped path.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sgswitch::bench::frames::{ipv4_frame, pad, udp, V4};
use sgswitch::bench::workload::{
    open_tcp_flows, web_pair, web_pair_with, NewFlows, Observed, CLIENT_IP, CLIENT_MAC, SERVER_IP,
    SERVER_MAC,
};
use sgswitch::pipeline::{Dataplane, Disposition, Pipeline, PipelineConfig, Verdict};

const BURST: usize = 32;

fn bench(c: &mut Criterion) {
    let (dp, pcfg) = web_pair();
    let client = dp.port_index("client").unwrap();
    let mut v = Verdict::default();
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(BURST as u64));
    // Established: open N connections (SYN, then the server's SYN/ACK), then measure
    // their data segments in round robin. 1k flows keep conntrack in cache; 50k flows
    // (100k entries: the client's and the server's zones) do not.
    for flows in [1_000usize, 50_000] {
        let mut p = Pipeline::new(&pcfg);
        let data = open_tcp_flows(&dp, &mut p, flows);
        let mut i = 0usize;
        g.bench_function(format!("established/{flows}_flows/per_frame"), |b| {
            b.iter(|| {
                for _ in 0..BURST {
                    let f = &data[i % flows];
                    i = i.wrapping_add(1);
                    p.process(&dp, client, black_box(f), 3, 0, &mut v);
                }
                black_box(&v);
            })
        });
        let mut outs = vec![Verdict::default(); BURST];
        let mut disp = vec![sgswitch::pipeline::Disposition::Decided; BURST];
        let mut j = 0usize;
        g.bench_function(format!("established/{flows}_flows/burst"), |b| {
            b.iter(|| {
                let mut burst: [&[u8]; BURST] = [&[]; BURST];
                for s in burst.iter_mut() {
                    *s = &data[j % flows];
                    j = j.wrapping_add(1);
                }
                p.process_burst(&dp, client, black_box(&burst), 3, &mut outs, &mut disp);
                black_box(&outs);
            })
        });
    }

    let frames = new_flow_frames();
    g.bench_function("new_flows", |b| {
        b.iter_custom(|iters| new_flows(&dp, &pcfg, &frames, iters, false))
    });
    // The steady state: 8 × the flood's room in entries (fill it, 7 turnovers) first.
    let mut p = Pipeline::new(&pcfg);
    let mut stream = NewFlows::new(&pcfg);
    let room = NewFlows::room(&pcfg);
    let warm = 4 * room / BURST;
    let delivered = stream.run(&dp, &mut p, warm);
    assert_eq!(delivered, (warm * BURST) as u64, "every new flow delivered");
    assert!(
        p.conntrack().len() * 10 >= room * 9,
        "the flood's room is full"
    );
    let mut outs = vec![Verdict::default(); BURST];
    let mut disp = vec![Disposition::Decided; BURST];
    g.bench_function("new_flows/steady/burst", |b| {
        b.iter(|| {
            let (burst, now) = stream.burst();
            p.process_burst(&dp, client, black_box(&burst), now, &mut outs, &mut disp);
            p.housekeeping(now);
            black_box(&outs);
        })
    });
    g.finish();
    observe(c, &frames);
}

/// The cost of observing: bare, as shipped, with a packet log.
fn observe(c: &mut Criterion, frames: &[Vec<u8>]) {
    let mut g = c.benchmark_group("pipeline/observe");
    g.throughput(Throughput::Elements(BURST as u64));
    for (name, obs) in [
        ("bare", Observed::Bare),
        ("default", Observed::Default),
        ("logged", Observed::Logged),
    ] {
        let (dp, pcfg) = web_pair_with(obs);
        let client = dp.port_index("client").unwrap();
        let mut p = Pipeline::new(&pcfg);
        let flows = 1_000;
        let data = open_tcp_flows(&dp, &mut p, flows);
        p.take_log_records(|r| {
            black_box(r);
        });
        let mut outs = vec![Verdict::default(); BURST];
        let mut disp = vec![Disposition::Decided; BURST];
        let mut j = 0usize;
        g.bench_function(format!("{name}/established_1000_flows_burst"), |b| {
            b.iter(|| {
                let mut burst: [&[u8]; BURST] = [&[]; BURST];
                for s in burst.iter_mut() {
                    *s = &data[j % flows];
                    j = j.wrapping_add(1);
                }
                p.process_burst(&dp, client, black_box(&burst), 3, &mut outs, &mut disp);
                p.take_log_records(|r| {
                    black_box(r);
                });
                black_box(&outs);
            })
        });
        g.bench_function(format!("{name}/new_flows"), |b| {
            b.iter_custom(|iters| new_flows(&dp, &pcfg, frames, iters, true))
        });
    }
    g.finish();
}

/// Time `iters` bursts of new UDP flows through fresh pipelines (`drain`: take the
/// packet-log records after each burst, as a worker does).
fn new_flows(
    dp: &Dataplane,
    pcfg: &PipelineConfig,
    frames: &[Vec<u8>],
    iters: u64,
    drain: bool,
) -> Duration {
    let client = dp.port_index("client").unwrap();
    let mut v = Verdict::default();
    let mut total = Duration::ZERO;
    let mut done = 0u64;
    while done < iters {
        let mut p = Pipeline::new(pcfg);
        let batch = (iters - done).min((frames.len() / BURST) as u64);
        // The clock advances 1 µs per burst (the packet log's rate limit sees time pass).
        let t = Instant::now();
        for k in 0..batch as usize {
            let now = 1 + k as u64 * 1_000;
            for f in &frames[k * BURST..(k + 1) * BURST] {
                p.process(dp, client, black_box(f), now, 0, &mut v);
            }
            if drain {
                p.take_log_records(|r| {
                    black_box(r);
                });
            }
        }
        total += t.elapsed();
        done += batch;
    }
    total
}

/// Each frame a new UDP flow client -> server:5000..6000 from a new sport.
fn new_flow_frames() -> Vec<Vec<u8>> {
    let mut frames = Vec::with_capacity(65536);
    for n in 0..65536u32 {
        let sport = 1024 + (n % 60000) as u16;
        let dport = 5000 + (n / 60000) as u16 + (n % 7) as u16;
        frames.push(pad(ipv4_frame(
            SERVER_MAC,
            CLIENT_MAC,
            V4::new(CLIENT_IP, SERVER_IP, 17),
            &udp(sport, dport, &[0u8; 18]),
        )));
    }
    frames
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
