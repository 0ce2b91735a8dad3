use sgswitch::conntrack::{Conntrack, CtConfig, Track};
use sgswitch::flow::{proto, tcp_flags, FlowKey, PacketMeta, FAMILY_V4};
use std::time::Instant;
fn flow(i: u64, dport: u16, flags: u8) -> (u16, PacketMeta) {
    let m = PacketMeta {
        key: FlowKey {
            src: FlowKey::map_v4([10, (i >> 16) as u8, (i >> 8) as u8, i as u8]),
            dst: FlowKey::map_v4([192, 168, (i >> 24) as u8, (i % 7) as u8]),
            sport: 1024 + (i % 50_000) as u16,
            dport,
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
    println!(
        "PacketMeta {} Track {}",
        std::mem::size_of::<PacketMeta>(),
        std::mem::size_of::<Track>()
    );
    let n = 1000u64;
    let mut ct = Conntrack::new(CtConfig {
        capacity: 1024,
        ..CtConfig::default()
    });
    for i in 0..n {
        let (z, m) = flow(i, 443, tcp_flags::ACK);
        ct.commit(z, &m, 1, 0, 0).unwrap();
    }
    let pkts: Vec<(u16, PacketMeta)> = (0..256)
        .map(|i| flow(i * 3 % n, 443, tcp_flags::ACK))
        .collect();
    let refs: Vec<(u16, &PacketMeta)> = pkts.iter().map(|(z, m)| (*z, m)).collect();
    let mut out = vec![Track::Invalid; 256];
    for round in 0..3 {
        let t = Instant::now();
        let iters = 100000;
        for _ in 0..iters {
            ct.track_burst(&refs, 1, &mut out);
        }
        let ns = t.elapsed().as_nanos() as f64 / (iters * 256) as f64;
        let t = Instant::now();
        for _ in 0..iters {
            for (z, m) in &refs {
                std::hint::black_box(ct.track(*z, m, 1));
            }
        }
        let ns2 = t.elapsed().as_nanos() as f64 / (iters * 256) as f64;
        let t = Instant::now();
        let mut acc = 0u64;
        for _ in 0..iters {
            for (z, m) in &refs {
                acc = acc.wrapping_add(std::hint::black_box(ct.probe(*z, m)).hash_dbg());
            }
        }
        let ns3 = t.elapsed().as_nanos() as f64 / (iters * 256) as f64;
        println!("round {round}: burst {ns:.1} ns/pkt, single {ns2:.1}, probe {ns3:.1} {acc}");
    }
}
