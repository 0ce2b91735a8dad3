//! Drive the pipeline with established TCP flows in bursts of 32, for profilers that
//! count instructions (callgrind) or sample (perf), without criterion's machinery.
//!
//! `cargo build --release --example profile_pipeline`
//! `valgrind --tool=callgrind target/release/examples/profile_pipeline 20000 1000`
//! (arguments: bursts, flows, mode; defaults 200000, 1000 and `burst`; mode `frame`
//! calls `Pipeline::process` on each frame instead of `process_burst`).

use std::hint::black_box;
use std::net::Ipv4Addr;

use sgswitch::pipeline::{Dataplane, Disposition, Pipeline, PipelineConfig, Verdict, ZoneMap};
use sgswitch::testkit::{ipv4_frame, pad, tcp, V4};

const CONFIG: &str = r#"
[[security_groups]]
name = "web"
rules = [
  { direction = "ingress", protocol = "tcp", port_range_min = 80, port_range_max = 80 },
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

fn main() {
    let mut args = std::env::args().skip(1);
    let bursts: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let flows: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let per_frame = args.next().is_some_and(|m| m == "frame");
    let cfg = sgswitch::control::config::parse_str(CONFIG, "profile.toml").expect("valid");
    let mut zones = ZoneMap::default();
    let dp = Dataplane::compile(&cfg.model, 1, &mut zones);
    let pcfg = PipelineConfig::from_model(&cfg.model);
    let client = dp.port_index("client").expect("client");
    let server = dp.port_index("server").expect("server");
    let mut p = Pipeline::new(&pcfg);
    let mut v = Verdict::default();
    let c = Ipv4Addr::new(10, 0, 0, 1);
    let s = Ipv4Addr::new(10, 0, 0, 2);
    let mut data = Vec::with_capacity(flows);
    for i in 0..flows {
        let sport = 10_000 + i as u16;
        let syn = pad(ipv4_frame(
            B,
            A,
            V4::new(c, s, 6),
            &tcp(sport, 80, 0x02, 1, 0, &[]),
        ));
        p.process(&dp, client, &syn, 1, 0, &mut v);
        let synack = pad(ipv4_frame(
            A,
            B,
            V4::new(s, c, 6),
            &tcp(80, sport, 0x12, 7, 2, &[]),
        ));
        p.process(&dp, server, &synack, 2, 0, &mut v);
        assert_eq!(v.delivered, vec![client], "handshake of flow {i}");
        data.push(pad(ipv4_frame(
            B,
            A,
            V4::new(c, s, 6),
            &tcp(sport, 80, 0x10, 2, 8, &[0u8; 6]),
        )));
    }
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
