//! Classifier lookups/s and compile time. Inputs are generated (ClassBench-style rules
//! and traces, a large remote group).
//!
//! Every measured iteration classifies 32 keys (Throughput::Elements(32)).
//!
//! What the dataplane runs (the headline groups):
//! * `classify::allows/{rules/N, remote_group/N}` — `CompiledPolicy::allows`, one key at a
//!   time, as the pipeline judges the first packet of each connection and every packet of a
//!   stateless port (`Pipeline::admit`, `Pipeline::sg_check`; established packets never
//!   reach the classifier);
//! * `classify::admitting_rule/{rules/N, remote_group/N}` — `CompiledPolicy::admitting_rule`
//!   on the same keys, one at a time: the first rule (in model order) that allows the key,
//!   which `Pipeline::admit` will call for each new connection when per-rule counters are
//!   on (issue #13; never for established traffic);
//! * `classify::compile/*` — `CompiledPolicy::compile` (`Dataplane::compile`, off the
//!   packet path, on every configuration change).
//!
//! Not the shipped path:
//! * `classify::not_shipped::classify_burst/*` — `CompiledPolicy::classify_burst` (built
//!   with the `bench` feature; `sgswitch bench classify` measures it), which the pipeline
//!   does not call;
//! * `classify::not_shipped::linear/*` — `LinearPolicy` (`Classifier::classify_burst`, i.e.
//!   `LinearPolicy::allows` key by key), the test oracle, as a baseline.
//!
//! With `CLASSBENCH_DIR` set, [`classbench_report`] also writes ClassBench files and prints
//! the `sgswitch bench classify` driver's report (`classify_burst`, not the shipped path).

use criterion::{black_box, criterion_group, Criterion, Throughput};
use sgswitch::bench::{classbench, synth};
use sgswitch::classifier::{Classifier, CompiledPolicy, LinearPolicy};
use sgswitch::flow::FlowKey;
use sgswitch::policy::{Direction, Model};

const BURST: usize = 32;

/// Classify the next burst of `trace` (cycling) through `c` with `Classifier::classify_burst`
/// (not the shipped path).
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

/// Classify the next 32 keys of `trace` (cycling) with `CompiledPolicy::allows`, one key at
/// a time: what the pipeline runs.
fn bench_allows<'a>(c: &'a CompiledPolicy, port: usize, trace: &'a [FlowKey]) -> impl FnMut() + 'a {
    let mut pos = 0usize;
    move || {
        if pos + BURST > trace.len() {
            pos = 0;
        }
        let mut n = 0usize;
        for k in &trace[pos..pos + BURST] {
            n += usize::from(c.allows(port, Direction::Ingress, black_box(k)));
        }
        pos += BURST;
        black_box(n);
    }
}

/// Like [`bench_allows`], with `CompiledPolicy::admitting_rule`.
fn bench_admitting<'a>(
    c: &'a CompiledPolicy,
    port: usize,
    trace: &'a [FlowKey],
) -> impl FnMut() + 'a {
    let mut pos = 0usize;
    move || {
        if pos + BURST > trace.len() {
            pos = 0;
        }
        let mut n = 0u32;
        for k in &trace[pos..pos + BURST] {
            let r = c.admitting_rule(port, Direction::Ingress, black_box(k));
            n = n.wrapping_add(r.map_or(0, |r| r.rule + 1));
        }
        pos += BURST;
        black_box(n);
    }
}

/// One lookup case: a model (port 0 is measured) and a trace of ingress keys.
struct Input {
    /// Benchmark id within a group.
    id: String,
    model: Model,
    trace: Vec<FlowKey>,
    /// 10,000 rules or remote-group members: the linear oracle gets few samples.
    large: bool,
}

/// ClassBench-style rule sets of 10, 1,000 and 10,000 rules, and one rule whose remote
/// group has 10,000 members.
fn inputs() -> Vec<Input> {
    let mut v: Vec<Input> = [10usize, 1_000, 10_000]
        .into_iter()
        .map(|n| {
            let (model, trace) = synth::classbench_model(n, 8192, 42);
            let id = format!("rules/{n}");
            Input {
                id,
                model,
                trace,
                large: n >= 10_000,
            }
        })
        .collect();
    let members = 10_000;
    v.push(Input {
        id: format!("remote_group/{members}"),
        model: synth::remote_group_model(members),
        trace: synth::remote_group_keys(members, 8192, 9),
        large: true,
    });
    v
}

/// `classify::allows`: the shipped lookup.
fn allows(cr: &mut Criterion, inputs: &[Input]) {
    let mut g = cr.benchmark_group("classify::allows");
    g.throughput(Throughput::Elements(BURST as u64));
    for i in inputs {
        let compiled = CompiledPolicy::compile(&i.model, 1);
        let mut f = bench_allows(&compiled, 0, &i.trace);
        g.bench_function(i.id.as_str(), |b| b.iter(&mut f));
    }
    g.finish();
}

/// `classify::admitting_rule`: the first matching rule, for each new connection when rule
/// counters are on.
fn admitting_rule(cr: &mut Criterion, inputs: &[Input]) {
    let mut g = cr.benchmark_group("classify::admitting_rule");
    g.throughput(Throughput::Elements(BURST as u64));
    for i in inputs {
        let compiled = CompiledPolicy::compile(&i.model, 1);
        let mut f = bench_admitting(&compiled, 0, &i.trace);
        g.bench_function(i.id.as_str(), |b| b.iter(&mut f));
    }
    g.finish();
}

/// `classify::not_shipped::*`: `CompiledPolicy::classify_burst` and the linear oracle.
fn not_shipped(cr: &mut Criterion, inputs: &[Input]) {
    let mut g = cr.benchmark_group("classify::not_shipped::classify_burst");
    g.throughput(Throughput::Elements(BURST as u64));
    for i in inputs {
        let compiled = CompiledPolicy::compile(&i.model, 1);
        let mut f = bench_bursts(&compiled, 0, &i.trace);
        g.bench_function(i.id.as_str(), |b| b.iter(&mut f));
    }
    g.finish();
    let mut g = cr.benchmark_group("classify::not_shipped::linear");
    g.throughput(Throughput::Elements(BURST as u64));
    for i in inputs {
        let linear = LinearPolicy::new(&i.model, 1);
        g.sample_size(if i.large { 10 } else { 100 });
        let mut f = bench_bursts(&linear, 0, &i.trace);
        g.bench_function(i.id.as_str(), |b| b.iter(&mut f));
    }
    g.finish();
}

/// Both lookup families over the same inputs.
fn lookups(cr: &mut Criterion) {
    let inputs = inputs();
    allows(cr, &inputs);
    admitting_rule(cr, &inputs);
    not_shipped(cr, &inputs);
}

/// `classify::compile`: `CompiledPolicy::compile`, as `Dataplane::compile` runs it on every
/// configuration change (off the packet path).
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
/// ClassBench driver's report for each (`classbench::run`: `CompiledPolicy::classify_burst`,
/// not the shipped path), before the criterion groups run.
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

criterion_group!(benches, lookups, compile);

fn main() {
    classbench_report();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
