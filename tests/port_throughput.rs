//! Rough throughput of the backends on a veth pair (ignored by default: it needs root and
//! a quiet machine; numbers are noisy on shared cores).
//!
//! `cargo test --release --test port_throughput -- --ignored --nocapture`
//!
//! A generator thread transmits 64-byte frames on one end with an AF_XDP port; the
//! backend under test receives on the other end. Both rates are printed.

use sgswitch::port::afpacket::AfPacketPort;
use sgswitch::port::afxdp::{AfXdpConfig, AfXdpPort};
use sgswitch::port::{FrameBatch, Port, MAX_BURST};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Pair {
    a: String,
    b: String,
}

impl Pair {
    fn new(tag: &str) -> Pair {
        let p = Pair {
            a: format!("sg{}{tag}a", std::process::id()),
            b: format!("sg{}{tag}b", std::process::id()),
        };
        let ok = Command::new("ip")
            .args(["link", "add", &p.a, "type", "veth", "peer", "name", &p.b])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "cannot create veth pair (root needed)");
        for d in [&p.a, &p.b] {
            let _ = Command::new("ip").args(["link", "set", d, "up"]).status();
        }
        p
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.a]).status();
    }
}

fn frame() -> Vec<u8> {
    let mut f = vec![0xffu8; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x09, 0x88, 0xb5]);
    f.resize(64, 0xab);
    f
}

/// Generate on `gen_dev` for `secs` while `rx` receives; returns (tx pps, rx pps).
fn run(gen_dev: &str, rx: &mut dyn Port, secs: u64) -> (f64, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let gen_dev = gen_dev.to_owned();
    let gen = std::thread::spawn(move || {
        let mut cfg = AfXdpConfig::new(&gen_dev);
        cfg.group.ring_size = 2048;
        let mut g = AfXdpPort::open(&cfg).expect("generator");
        let f = frame();
        let burst: Vec<&[u8]> = (0..64).map(|_| &f[..]).collect();
        let t0 = Instant::now();
        while !stop2.load(Ordering::Relaxed) {
            let _ = g.tx_burst(&burst);
        }
        g.stats().tx_packets as f64 / t0.elapsed().as_secs_f64()
    });
    let mut batch = FrameBatch::new(MAX_BURST, 2048);
    let t0 = Instant::now();
    let mut n = 0u64;
    while t0.elapsed() < Duration::from_secs(secs) {
        batch.clear();
        n += rx.rx_burst(&mut batch).unwrap() as u64;
    }
    let rx_pps = n as f64 / t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    (gen.join().unwrap(), rx_pps)
}

#[test]
#[ignore]
fn rx_rates_on_veth() {
    let p = Pair::new("r");
    {
        let mut cfg = AfXdpConfig::new(&p.a);
        cfg.group.ring_size = 2048;
        let mut rx = AfXdpPort::open(&cfg).expect("afxdp rx");
        let (tx, r) = run(&p.b, &mut rx, 3);
        eprintln!(
            "afxdp rx ({:?}): generator {:.0} pps, received {:.0} pps",
            rx.info().xdp_mode,
            tx,
            r
        );
        eprintln!("  kernel xsk stats: {:?}", rx.group_mut().xsk_statistics(0));
        assert!(r > 0.0);
    }
    {
        let mut rx = AfPacketPort::open(&p.a).expect("afpacket rx");
        let (tx, r) = run(&p.b, &mut rx, 3);
        eprintln!("afpacket rx: generator {tx:.0} pps, received {r:.0} pps");
        assert!(r > 0.0);
    }
}

#[test]
#[ignore]
fn tx_rates_on_veth() {
    let p = Pair::new("t");
    let f = frame();
    let burst: Vec<&[u8]> = (0..64).map(|_| &f[..]).collect();
    let mut ports: Vec<Box<dyn Port>> = vec![
        Box::new(AfXdpPort::open(&AfXdpConfig::new(&p.a)).expect("afxdp")),
        Box::new(AfPacketPort::open(&p.b).expect("afpacket")),
    ];
    for port in ports.iter_mut() {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(2) {
            let _ = port.tx_burst(&burst);
        }
        let s = port.stats();
        eprintln!(
            "{} tx: {:.0} pps accepted, {} dropped",
            if port.name() == p.a {
                "afxdp"
            } else {
                "afpacket"
            },
            s.tx_packets as f64 / t0.elapsed().as_secs_f64(),
            s.tx_dropped
        );
        assert!(s.tx_packets > 0);
    }
}

/// Forwarding between two AF_XDP members of one UMEM group: moving descriptors versus
/// copying through a `FrameBatch`. A generator feeds pair 1; the forwarder moves frames
/// from pair 1 to pair 2.
#[test]
#[ignore]
fn forward_rates_shared_umem() {
    use sgswitch::port::afxdp::{DescBatch, GroupConfig, MemberConfig, UmemGroup};
    let p1 = Pair::new("f");
    let p2 = Pair::new("g");
    for zero_copy in [true, false] {
        let members = [MemberConfig::new(&p1.a), MemberConfig::new(&p2.a)];
        let cfg = GroupConfig {
            ring_size: 2048,
            ..Default::default()
        };
        let mut g = UmemGroup::open(&members, &cfg).expect("group");
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let gen_dev = p1.b.clone();
        let gen = std::thread::spawn(move || {
            let mut cfg = AfXdpConfig::new(&gen_dev);
            cfg.group.ring_size = 2048;
            let mut gport = AfXdpPort::open(&cfg).expect("generator");
            let f = frame();
            let burst: Vec<&[u8]> = (0..64).map(|_| &f[..]).collect();
            while !stop2.load(Ordering::Relaxed) {
                let _ = gport.tx_burst(&burst);
            }
        });
        let mut descs = DescBatch::default();
        let mut batch = FrameBatch::new(MAX_BURST, 2048);
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(3) {
            if zero_copy {
                g.rx_descs(0, &mut descs);
                if !descs.is_empty() {
                    g.tx_descs(1, &mut descs);
                }
            } else {
                batch.clear();
                let n = g.port(0).unwrap().rx_burst(&mut batch).unwrap();
                if n > 0 {
                    let _ = g.port(1).unwrap().tx_batch(&batch);
                }
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        gen.join().unwrap();
        let (rx, tx) = (g.stats(0), g.stats(1));
        eprintln!(
            "forward {}: rx {:.0} pps, tx {:.0} pps, tx_dropped {}, xsk {:?}",
            if zero_copy {
                "moving descriptors"
            } else {
                "copying"
            },
            rx.rx_packets as f64 / secs,
            tx.tx_packets as f64 / secs,
            tx.tx_dropped,
            g.xsk_statistics(0)
        );
        assert!(tx.tx_packets > 0);
    }
}
