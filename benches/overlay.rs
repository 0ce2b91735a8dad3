//! Encapsulation and decapsulation cost per frame, as the product runs them:
//! `overlay::encap` is `Template::encap_into` (outer headers from the per-destination
//! template, lengths, IPv4 checksum and the UDP source port patched, the flow-entropy
//! hash of the inner frame, and the copy of the inner frame), `overlay::decap` is
//! `overlay::decap` (outer header checks, the inner frame's range). Inner frames of 64
//! and 1400 bytes, Geneve and VXLAN over IPv4.
//!
//! Wall time (criterion's default): run it on a quiet machine.
//! Run: `cargo bench --bench overlay -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sgswitch::overlay::{decap, Endpoints, Template};
use sgswitch::wire::{Encap, Mac};

fn inner(len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0xa, 1]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0xa, 2]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x45;
    f[16..18].copy_from_slice(&((len - 14) as u16).to_be_bytes());
    f[23] = 17;
    f[26..30].copy_from_slice(&[10, 0, 0, 1]);
    f[30..34].copy_from_slice(&[10, 0, 0, 2]);
    f[34..38].copy_from_slice(&[0x04, 0xd2, 0x00, 0x35]);
    f
}

fn template(encap: Encap) -> Template {
    let ep = Endpoints {
        src_mac: Mac([2, 0, 0, 0, 0, 1]),
        dst_mac: Mac([2, 0, 0, 0, 0, 2]),
        src_ip: "10.9.0.1".parse().unwrap(),
        dst_ip: "10.9.0.2".parse().unwrap(),
        encap,
        dst_port: encap.udp_port(),
        vni: 1001,
    };
    Template::new(&ep, 1500).expect("IPv4 endpoints")
}

fn bench(c: &mut Criterion) {
    for encap in [Encap::Geneve, Encap::Vxlan] {
        let t = template(encap);
        for len in [64usize, 1400] {
            let f = inner(len);
            let mut out = vec![0u8; 2048];
            let mut g = c.benchmark_group("overlay::encap");
            g.throughput(Throughput::Elements(1));
            g.bench_function(format!("{}/{len}", encap.as_str()), |b| {
                b.iter(|| t.encap_into(black_box(&mut out), black_box(&f)))
            });
            g.finish();
            let n = t.encap_into(&mut out, &f).expect("fits");
            let outer = out[..n].to_vec();
            let mut g = c.benchmark_group("overlay::decap");
            g.throughput(Throughput::Elements(1));
            g.bench_function(format!("{}/{len}", encap.as_str()), |b| {
                b.iter(|| decap(black_box(&outer), encap, encap.udp_port()))
            });
            g.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
