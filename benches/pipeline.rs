//! Frames per second through the whole pipeline (parse, port security, egress SG with
//! conntrack, L2, ingress SG with conntrack) on in-memory frames, in bursts of 32.
//!
//! * `pipeline::established` — 1,024 established TCP flows, data segments.
//! * `pipeline::new_flows` — every frame a new UDP flow (conntrack insert on both ports).

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sgswitch::pipeline::{Dataplane, Pipeline, PipelineConfig, Verdict, ZoneMap};
use sgswitch::testkit::{ipv4_frame, pad, tcp, udp, V4};

const CONFIG: &str = r#"
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

const A: [u8; 6] = [0xfa, 0x16, 0x3e, 0, 0, 1];
const B: [u8; 6] = [0xfa, 0x16, 0x3e, 0, 0, 2];
const BURST: usize = 32;

fn setup() -> (Dataplane, PipelineConfig) {
    let cfg = sgswitch::control::config::parse_str(CONFIG, "bench.toml").expect("valid");
    let mut zones = ZoneMap::default();
    let dp = Dataplane::compile(&cfg.model, 1, &mut zones);
    (dp, PipelineConfig::from_model(&cfg.model))
}

fn ip(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
    Ipv4Addr::new(a, b, c, d)
}

fn bench(c: &mut Criterion) {
    let (dp, pcfg) = setup();
    let client = dp.port_index("client").unwrap();

    // Established: open 1,024 connections (SYN, then the server's SYN/ACK, then ACK).
    let mut p = Pipeline::new(&pcfg);
    let mut v = Verdict::default();
    let mut data = Vec::new();
    let server = dp.port_index("server").unwrap();
    for i in 0..1024u16 {
        let sport = 10_000 + i;
        let syn = pad(ipv4_frame(
            B,
            A,
            V4::new(ip(10, 0, 0, 1), ip(10, 0, 0, 2), 6),
            &tcp(sport, 80, 0x02, 1, 0, &[]),
        ));
        p.process(&dp, client, &syn, 1, 0, &mut v);
        assert_eq!(v.delivered, vec![server], "SYN delivered: {v:?}");
        let synack = pad(ipv4_frame(
            A,
            B,
            V4::new(ip(10, 0, 0, 2), ip(10, 0, 0, 1), 6),
            &tcp(80, sport, 0x12, 7, 2, &[]),
        ));
        p.process(&dp, server, &synack, 2, 0, &mut v);
        assert_eq!(v.delivered, vec![client], "SYN/ACK delivered: {v:?}");
        let ack = pad(ipv4_frame(
            B,
            A,
            V4::new(ip(10, 0, 0, 1), ip(10, 0, 0, 2), 6),
            &tcp(sport, 80, 0x10, 2, 8, &[0u8; 6]),
        ));
        data.push(ack);
    }
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(BURST as u64));
    let mut i = 0usize;
    g.bench_function("established", |b| {
        b.iter(|| {
            for _ in 0..BURST {
                let f = &data[i & 1023];
                i = i.wrapping_add(1);
                p.process(&dp, client, black_box(f), 3, 0, &mut v);
            }
            black_box(&v);
        })
    });

    let mut outs = vec![Verdict::default(); BURST];
    let mut disp = vec![sgswitch::pipeline::Disposition::Decided; BURST];
    let mut j = 0usize;
    g.bench_function("established_burst", |b| {
        b.iter(|| {
            let mut burst: [&[u8]; BURST] = [&[]; BURST];
            for s in burst.iter_mut() {
                *s = &data[j & 1023];
                j = j.wrapping_add(1);
            }
            p.process_burst(&dp, client, black_box(&burst), 3, &mut outs, &mut disp);
            black_box(&outs);
        })
    });

    // New flows: each frame a new UDP flow client -> server:5000..6000 from a new sport.
    let mut frames = Vec::with_capacity(65536);
    for n in 0..65536u32 {
        let sport = 1024 + (n % 60000) as u16;
        let dport = 5000 + (n / 60000) as u16 + (n % 7) as u16;
        frames.push(pad(ipv4_frame(
            B,
            A,
            V4::new(ip(10, 0, 0, 1), ip(10, 0, 0, 2), 17),
            &udp(sport, dport, &[0u8; 18]),
        )));
    }
    g.bench_function("new_flows", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0u64;
            while done < iters {
                let mut p = Pipeline::new(&pcfg);
                let batch = (iters - done).min((frames.len() / BURST) as u64);
                let t = Instant::now();
                for k in 0..batch as usize {
                    for f in &frames[k * BURST..(k + 1) * BURST] {
                        p.process(&dp, client, black_box(f), 1, 0, &mut v);
                    }
                }
                total += t.elapsed();
                done += batch;
            }
            total
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
