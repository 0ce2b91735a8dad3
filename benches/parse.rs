//! Parsing cost per frame: `flow::extract` (full `PacketMeta` + key in one pass) next to
//! `etherparse::SlicedPacket::from_ethernet` (header slicing only, no key) on the same
//! frames. Groups: `parse::tcp4_64`, `parse::udp6_ext`, `parse::icmp4_error`; variants
//! `sgswitch/extract`, `sgswitch/extract_into` (into reused scratch, as the pipeline does
//! per burst) and `etherparse/sliced`.
//!
//! Time is the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), not wall time: the
//! build machine is shared by many processes, and wall time would count the slices in which
//! another process ran. Set `PARSE_BENCH_WALL=1` for wall time.
//!
//! Run: `cargo bench --bench parse -- --warm-up-time 1 --measurement-time 3`.

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{black_box, criterion_main, Criterion, Throughput};
use sgswitch::flow::{self, PacketMeta};

/// Thread CPU time in nanoseconds, as a criterion measurement.
struct ThreadCpuTime;

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes one `timespec` through the pointer, which points to a
    // live, writable local.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

static WALL: WallTime = WallTime;

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns().saturating_sub(start)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        // Values are nanoseconds, exactly like wall time's: reuse its formatting.
        WALL.formatter()
    }
}

/// 64-byte TCP/IPv4 ACK with 10 bytes of data (Ethernet 14 + IPv4 20 + TCP 20 + 10).
fn tcp4_64() -> Vec<u8> {
    let mut f = vec![
        0x02, 0, 0, 0, 0, 0x0b, 0x02, 0, 0, 0, 0, 0x0a, 0x08, 0x00, // Ethernet
        0x45, 0x00, 0x00, 0x32, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0, 0, // IPv4, total 50
        10, 0, 0, 1, 10, 0, 0, 2, // addresses
        0xc0, 0x01, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 2, // TCP 49153 -> 80, seq, ack
        0x50, 0x18, 0xfa, 0xf0, 0, 0, 0, 0, // data offset 5, PSH|ACK, window
    ];
    f.resize(64, 0x61);
    f
}

/// IPv6 + hop-by-hop + routing + destination options + UDP, 108 bytes. (No fragment
/// header: etherparse would stop at it and not slice the UDP header.)
fn udp6_ext() -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x0b, 0x02, 0, 0, 0, 0, 0x0a, 0x86, 0xdd];
    let payload_len: u16 = 8 + 8 + 8 + 8 + 22; // 3 ext headers, UDP header, data
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&payload_len.to_be_bytes());
    f.extend_from_slice(&[0, 64]); // next: hop-by-hop
    f.extend_from_slice(&[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a]);
    f.extend_from_slice(&[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b]);
    f.extend_from_slice(&[43, 0, 5, 2, 0, 0, 1, 0]); // HBH: router alert, PadN
    f.extend_from_slice(&[60, 0, 253, 0, 0, 0, 0, 0]); // routing, segments left 0
    f.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]); // dest opts: PadN
    f.extend_from_slice(&[0x14, 0xe9, 0x00, 0x35, 0x00, 30, 0, 0]); // UDP 5353 -> 53
    f.resize(f.len() + 22, 0x62);
    f
}

/// ICMP port unreachable quoting a UDP datagram (70 bytes).
fn icmp4_error() -> Vec<u8> {
    vec![
        0x02, 0, 0, 0, 0, 0x0a, 0x02, 0, 0, 0, 0, 0x0b, 0x08, 0x00, // Ethernet
        0x45, 0x00, 0x00, 0x38, 0, 3, 0, 0, 0x40, 0x01, 0, 0, 10, 0, 0, 2, 10, 0, 0,
        1, // IPv4
        3, 3, 0, 0, 0, 0, 0, 0, // ICMP port unreachable
        0x45, 0x00, 0x00, 0x30, 0, 9, 0, 0, 0x40, 0x11, 0, 0, 10, 0, 0, 1, 10, 0, 0,
        2, // quote
        0x14, 0xe9, 0x00, 0x35, 0x00, 0x1c, 0, 0, // quoted UDP
    ]
}

fn bench_frame<M: Measurement>(c: &mut Criterion<M>, name: &str, frame: &[u8]) {
    // Both parsers must accept the frame, or the comparison is meaningless.
    let m = flow::extract(frame).expect("sgswitch accepts the bench frame");
    assert!(m.is_ip() && (m.key.dport != 0 || m.key.sport != 0));
    let sliced =
        etherparse::SlicedPacket::from_ethernet(frame).expect("etherparse accepts the bench frame");
    assert!(
        sliced.transport.is_some(),
        "etherparse reaches the transport header"
    );

    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(1));
    // The result is returned to criterion, which moves it into `black_box`: a full
    // PacketMeta leaves the parser every iteration, so no field can be optimised away.
    g.bench_function("sgswitch/extract", |b| {
        b.iter(|| flow::extract(black_box(frame)))
    });
    let mut scratch = PacketMeta::default();
    g.bench_function("sgswitch/extract_into", |b| {
        b.iter(|| {
            let r = flow::extract_into(black_box(frame), &mut scratch);
            black_box(&scratch);
            r
        })
    });
    g.bench_function("etherparse/sliced", |b| {
        b.iter(|| etherparse::SlicedPacket::from_ethernet(black_box(frame)))
    });
    g.finish();
}

fn parse<M: Measurement>(c: &mut Criterion<M>) {
    bench_frame(c, "parse::tcp4_64", &tcp4_64());
    bench_frame(c, "parse::udp6_ext", &udp6_ext());
    bench_frame(c, "parse::icmp4_error", &icmp4_error());
}

fn benches() {
    if std::env::var_os("PARSE_BENCH_WALL").is_some() {
        parse(&mut Criterion::default().configure_from_args());
    } else {
        parse(
            &mut Criterion::default()
                .with_measurement(ThreadCpuTime)
                .configure_from_args(),
        );
    }
}

criterion_main!(benches);
