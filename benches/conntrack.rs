//! Connection-tracking throughput: hits, misses and inserts on tables of 10k, 1M and 4M
//! entries. What the dataplane runs (the headline groups `conntrack::hit`,
//! `conntrack::miss`, `conntrack::insert`):
//! * `pipeline32` — the conntrack phases of `Pipeline::process_parsed_burst` (the live
//!   workers' path) over bursts of 32: `Conntrack::probe` for every packet,
//!   `Conntrack::prefetch_entry` for every probe, then `Conntrack::track_probe_inline` one
//!   by one, as `Pipeline::ct_check` does (`sgswitch::bench::workload::ct_pipeline_phases`);
//! * `per_frame` — `Conntrack::probe` then `Conntrack::track_probe_inline`, one packet
//!   after another: `Pipeline::sg_check` without a probe made ahead, i.e. `Pipeline::process`
//!   (replay, and frames a burst finishes on the spot) (`workload::ct_per_frame`);
//! * `commit+remove` — `Conntrack::commit` (`Pipeline::admit`), then `Conntrack::remove` to
//!   keep the table at its size (the dataplane removes by expiry instead).
//!
//! Not the shipped path (`conntrack::not_shipped::hit`, `conntrack::not_shipped::miss`):
//! * `track_burst256` — `Conntrack::track_burst` (groups of 16 hashed and prefetched two
//!   groups ahead; built with the `bench` feature only), which the pipeline does **not**
//!   call: kept as the measured ceiling of a conntrack-only burst, against which the
//!   pipeline's phases are compared.
//!
//! Flows are derived from an index (no key array to read, which would add its own cache
//! misses) and drawn uniformly at random from the whole table, so the large tables are
//! measured out of cache. Packet metadata for each burst is generated outside the timed
//! routine.
//!
//! Time is the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), not wall time:
//! the build machine is shared, and wall time would count the slices other processes
//! get. (Their cache pollution still shows.)
//!
//! Run: `cargo bench --bench conntrack -- --warm-up-time 1 --measurement-time 3`

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sgswitch::bench::workload::{ct_flow, ct_per_frame, ct_pipeline_phases, XorShift};
use sgswitch::conntrack::{Conntrack, Track};
use sgswitch::flow::{tcp_flags, PacketMeta};
use sgswitch::policy::ConntrackSettings;

const BURST: usize = 256;
/// Bursts per timed sample: reading the thread CPU clock costs ~0.7 µs on this VM, so
/// one sample covers `BURSTS * BURST` packets.
const BURSTS: usize = 16;
const SAMPLE: usize = BURST * BURSTS;
const SIZES: [(usize, &str); 3] = [(10_000, "10k"), (1_000_000, "1M"), (4_000_000, "4M")];

/// A table of capacity `n` holding `n - BURST` established connections (room for one
/// insert burst).
fn build(n: usize) -> Conntrack {
    let mut ct = Conntrack::new(&ConntrackSettings {
        capacity: n,
        ..ConntrackSettings::default()
    });
    for i in 0..(n - BURST) as u64 {
        let (z, m) = ct_flow(i, 443, tcp_flags::ACK);
        ct.commit(z, &m, 1, 0, 0).expect("prefill");
    }
    ct
}

fn burst(rng: &mut XorShift, live: u64, dport: u16) -> Vec<(u16, PacketMeta)> {
    (0..SAMPLE)
        .map(|_| ct_flow(rng.next() % live, dport, tcp_flags::ACK | tcp_flags::PSH))
        .collect()
}

/// CPU time consumed by this thread.
fn cpu_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux knows.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Run `iters` bursts: `setup` (untimed) makes a burst, `f` (timed, CPU time) uses it.
fn timed<S>(iters: u64, mut setup: impl FnMut() -> S, mut f: impl FnMut(&mut S)) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let mut input = setup();
        let t0 = cpu_now();
        f(&mut input);
        total += cpu_now() - t0;
    }
    total
}

/// `Conntrack::track_burst` over bursts of 256 (not the shipped path).
fn run_burst(ct: &mut Conntrack, pkts: &[(u16, PacketMeta)], out: &mut [Track; BURST]) {
    for chunk in pkts.chunks(BURST) {
        let mut refs = [(0u16, &chunk[0].1); BURST];
        for (r, (z, m)) in refs.iter_mut().zip(chunk) {
            *r = (*z, m);
        }
        ct.track_burst(&refs[..chunk.len()], 1, out);
    }
}

fn benches(c: &mut Criterion) {
    let mut tables: Vec<(usize, &str, Conntrack)> =
        SIZES.iter().map(|&(n, name)| (n, name, build(n))).collect();
    for (_, name, ct) in &tables {
        eprintln!(
            "conntrack {name}: {} entries, {} MiB",
            ct.len(),
            ct.memory_bytes() >> 20
        );
    }
    let mut rng = XorShift(0x1234_5678_9abc_def1);
    let mut out = [Track::Invalid; BURST];

    for (case, dport) in [("hit", 443u16), ("miss", 444)] {
        let want = |t: &Track| {
            if dport == 443 {
                matches!(t, Track::Tracked { .. })
            } else {
                *t == Track::New
            }
        };
        let mut g = c.benchmark_group(format!("conntrack::{case}"));
        g.throughput(Throughput::Elements(SAMPLE as u64));
        for (n, name, ct) in tables.iter_mut() {
            let live = (*n - BURST) as u64;
            g.bench_function(BenchmarkId::new("pipeline32", &name), |b| {
                b.iter_custom(|iters| {
                    timed(
                        iters,
                        || burst(&mut rng, live, dport),
                        |pkts| assert!(want(&ct_pipeline_phases(ct, pkts, 1))),
                    )
                })
            });
            g.bench_function(BenchmarkId::new("per_frame", &name), |b| {
                b.iter_custom(|iters| {
                    timed(
                        iters,
                        || burst(&mut rng, live, dport),
                        |pkts| assert!(want(&ct_per_frame(ct, pkts, 1))),
                    )
                })
            });
        }
        g.finish();

        let mut g = c.benchmark_group(format!("conntrack::not_shipped::{case}"));
        g.throughput(Throughput::Elements(SAMPLE as u64));
        for (n, name, ct) in tables.iter_mut() {
            let live = (*n - BURST) as u64;
            g.bench_function(BenchmarkId::new("track_burst256", &name), |b| {
                b.iter_custom(|iters| {
                    timed(
                        iters,
                        || burst(&mut rng, live, dport),
                        |pkts| {
                            run_burst(ct, pkts, &mut out);
                            assert!(want(&out[BURST - 1]));
                        },
                    )
                })
            });
        }
        g.finish();
    }

    // Insert: commit a burst of new connections, then remove them again so the table
    // stays at its size (the figure is the cost of one create + one delete).
    let mut g = c.benchmark_group("conntrack::insert");
    g.throughput(Throughput::Elements(SAMPLE as u64));
    for (n, name, ct) in tables.iter_mut() {
        let live = (*n - BURST) as u64;
        g.bench_function(BenchmarkId::new("commit+remove", &name), |b| {
            b.iter_custom(|iters| {
                timed(
                    iters,
                    || burst(&mut rng, live, 445),
                    |pkts| {
                        for chunk in pkts.chunks(BURST) {
                            let mut hs = [None; BURST];
                            for (h, (z, m)) in hs.iter_mut().zip(chunk) {
                                let mut syn = *m;
                                syn.tcp_flags = tcp_flags::SYN;
                                *h = ct.commit(*z, &syn, 1, 0, 1).ok();
                            }
                            for h in hs.into_iter().flatten() {
                                ct.remove(h);
                            }
                        }
                    },
                )
            })
        });
    }
    g.finish();
    for (_, name, ct) in &tables {
        let s = ct.stats();
        eprintln!(
            "conntrack {name}: inserts {}, full refusals {}, displaced {}, len {}",
            s.inserts,
            s.full,
            s.displaced,
            ct.len()
        );
    }
}

criterion_group!(conntrack, benches);
criterion_main!(conntrack);
