//! Classifier lookups/s: compiled vs linear, by rule count, for a large remote group, and
//! per-key vs burst lookups. Inputs are generated (ClassBench-style rules and traces).
//!
//! Every measured iteration classifies one burst of 32 keys (Throughput::Elements(32)).
//!
//! What the dataplane runs: `CompiledPolicy::allows`, one key at a time, for the first
//! packet of each connection (`Pipeline::sg_check`; established packets never reach the
//! classifier) — the `classify::burst/single_10000` case. The other cases measure
//! `Classifier::classify_burst`, which the pipeline does not call (it is the interface the
//! compiled structure shares with the linear oracle, and `sgswitch bench classify`'s).

use criterion::{black_box, criterion_group, BenchmarkId, Criterion, Throughput};
use sgswitch::bench::{classbench, synth};
use sgswitch::classifier::{Classifier, CompiledPolicy, LinearPolicy};
use sgswitch::flow::FlowKey;
use sgswitch::policy::Direction;

const BURST: usize = 32;

/// Classify the next burst of `trace` (cycling) through `c`.
fn bench_bursts<'a, C: Classifier>(
    c: &'a C,
    port: usize,
    trace: &'a [FlowKey],
) -> impl FnMut() + 'a {
    let mut out = [false; BURST];
    let mut pos = 0usize;
    move || {
        if pos + BURST > trace.len() {
            pos = 0;
        }
        c.classify_burst(port, Direction::Ingress, &trace[pos..pos + BURST], &mut out);
        black_box(&out);
        pos += BURST;
    }
}

fn by_rule_count(cr: &mut Criterion) {
    let mut g = cr.benchmark_group("classify::rules");
    g.throughput(Throughput::Elements(BURST as u64));
    for n in [10usize, 1_000, 10_000] {
        let (model, trace) = synth::classbench_model(n, 8192, 42);
        let compiled = CompiledPolicy::compile(&model, 1);
        let linear = LinearPolicy::new(&model, 1);
        let mut f = bench_bursts(&compiled, 0, &trace);
        g.bench_function(BenchmarkId::new("compiled", n), |b| b.iter(&mut f));
        if n >= 10_000 {
            g.sample_size(10);
        }
        let mut f = bench_bursts(&linear, 0, &trace);
        g.bench_function(BenchmarkId::new("linear", n), |b| b.iter(&mut f));
        g.sample_size(100);
    }
    g.finish();
}

fn remote_group(cr: &mut Criterion) {
    let mut g = cr.benchmark_group("classify::remote_group");
    g.throughput(Throughput::Elements(BURST as u64));
    let members = 10_000;
    let model = synth::remote_group_model(members);
    let keys = synth::remote_group_keys(members, 8192, 9);
    let compiled = CompiledPolicy::compile(&model, 1);
    let linear = LinearPolicy::new(&model, 1);
    let mut f = bench_bursts(&compiled, 0, &keys);
    g.bench_function(BenchmarkId::new("compiled", members), |b| b.iter(&mut f));
    g.sample_size(10);
    let mut f = bench_bursts(&linear, 0, &keys);
    g.bench_function(BenchmarkId::new("linear", members), |b| b.iter(&mut f));
    g.finish();
}

fn burst_vs_single(cr: &mut Criterion) {
    let mut g = cr.benchmark_group("classify::burst");
    g.throughput(Throughput::Elements(BURST as u64));
    let (model, trace) = synth::classbench_model(10_000, 8192, 42);
    let compiled = CompiledPolicy::compile(&model, 1);
    let mut pos = 0usize;
    g.bench_function("single_10000", |b| {
        b.iter(|| {
            if pos + BURST > trace.len() {
                pos = 0;
            }
            let mut n = 0usize;
            for k in &trace[pos..pos + BURST] {
                n += usize::from(compiled.allows(0, Direction::Ingress, k));
            }
            pos += BURST;
            black_box(n)
        })
    });
    let mut f = bench_bursts(&compiled, 0, &trace);
    g.bench_function("burst32_10000", |b| b.iter(&mut f));
    g.finish();
}

fn compile(cr: &mut Criterion) {
    let mut g = cr.benchmark_group("classify::compile");
    g.sample_size(10);
    let m = synth::many_ports_model(100, 100, 100, 7);
    g.bench_function("10k_rules_100_ports", |b| {
        b.iter(|| CompiledPolicy::compile(black_box(&m), 1))
    });
    let (one, _) = synth::classbench_model(10_000, 1, 7);
    g.bench_function("10k_rules_1_group", |b| {
        b.iter(|| CompiledPolicy::compile(black_box(&one), 1))
    });
    g.finish();
}

/// With `CLASSBENCH_DIR=dir`: write generated ClassBench files (1k and 10k rules, 64k-packet
/// traces) there — the inputs for `dpdk-test-acl --rulesf=… --tracef=…` — and print the
/// ClassBench driver's report for each, before the criterion groups run.
fn classbench_report() {
    let Some(dir) = std::env::var_os("CLASSBENCH_DIR") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    for n in [1_000usize, 10_000] {
        let g = classbench::generate(n, 65_536, 42);
        let rules_path = dir.join(format!("rules_{n}"));
        let trace_path = dir.join(format!("trace_{n}"));
        let written = std::fs::write(&rules_path, &g.rules)
            .and_then(|_| std::fs::write(&trace_path, &g.trace));
        if let Err(e) = written {
            eprintln!("cannot write {}: {e}", dir.display());
            return;
        }
        let (rules, trace) = match classbench::load(&rules_path, &trace_path) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("classbench {n}: {e}");
                return;
            }
        };
        match classbench::run(&rules, &trace, BURST) {
            Ok(r) => println!(
                "classbench {n} rules: compile {:.3} ms, {:.1} M lookups/s ({:.1} M per CPU-second), \
                 {:.1} cycles/lookup, matched {}/{} per pass",
                r.compile_seconds * 1e3,
                r.lookups_per_sec / 1e6,
                r.lookups_per_cpu_sec / 1e6,
                r.cycles_per_lookup.unwrap_or(f64::NAN),
                r.matched,
                r.trace_len
            ),
            Err(e) => eprintln!("classbench {n}: {e}"),
        }
        let Ok(model) = classbench::to_model(&rules) else {
            continue;
        };
        let linear = LinearPolicy::new(&model, 1);
        let short = &trace[..trace.len().min(4096)];
        let min = std::time::Duration::from_millis(500);
        if let Ok(l) = classbench::measure(&linear, classbench::PORT, short, BURST, min) {
            println!(
                "classbench {n} rules, linear oracle: {:.3} M lookups/s, {:.0} cycles/lookup",
                l.lookups_per_sec / 1e6,
                l.cycles_per_lookup.unwrap_or(f64::NAN)
            );
        }
    }
}

criterion_group!(
    benches,
    by_rule_count,
    remote_group,
    burst_vs_single,
    compile
);

fn main() {
    classbench_report();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
