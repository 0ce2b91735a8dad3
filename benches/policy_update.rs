//! `policy_update`: how long one rule change takes to reach the workers (#15, "incremental
//! policy updates"): `cargo bench --bench policy_update`.
//!
//! The model: 1,000 ports (no backend: nothing to open), 10,105 rules in force in
//! 102 groups — `common` (100 rules) used by every port, `t0`..`t99` (100 rules each) of
//! which port `i` uses `t{i % 100}` (so 100 distinct group sets of 200 rules, 10 ports
//! each), and `solo` (5 rules) used by port 0 alone (its own set). A change adds one
//! rule to a group, the next removes it again, alternately; three cases:
//! * `common`: a group used by all 1,000 ports (every set holds it: every set compiled);
//! * `t0`: a group used by 10 ports (two sets compiled: nine ports share one, port 0 has
//!   its own with `solo`);
//! * `solo`: a group used by one port (one set compiled).
//!
//! For each case, in one run, side by side: the classifier alone (`CompiledPolicy::compile`
//! of the new model, what every change cost before, against `CompiledPolicy::recompile`
//! from the previous policy, which compiles the sets holding the group, and
//! `CompiledPolicy::derive`, which patches: the sets shared, the rule a delta), the whole
//! dataplane (`Dataplane::compile` against
//! `Dataplane::recompile`, which patches the classifier and shares every other table on
//! a rules-only change), and `Switch::apply` on a running `Switch` (which uses
//! `Dataplane::recompile`): from the call to its return, which is when every worker has
//! taken the new epoch. A last row chains adds to `common` without removing any, so the
//! delta grows to `MAX_DELTA` and one change in `MAX_DELTA + 1` compiles (the p99). Median and p99 over
//! `ROUNDS` changes (default 100). `WORKERS` (default 1) workers, unpinned, spinning
//! (`IDLE_BACKOFF=1`: idle workers sleep up to 1 ms, as an idle live switch does).
//! Timing figures on a shared machine are noisy: print the load average beside them.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use sgswitch::classifier::{CompiledPolicy, MAX_DELTA};
use sgswitch::pipeline::{Dataplane, IdMap};
use sgswitch::policy::{Direction, EtherType, Model, Network, Port, Remote, Rule, SecurityGroup};
use sgswitch::runtime::switch::{Switch, SwitchSettings};

fn rule(seed: usize) -> Rule {
    let a = 0x0a00_0000u32.wrapping_add((seed as u32).wrapping_mul(2_654_435_761) >> 8);
    Rule {
        direction: if seed.is_multiple_of(3) {
            Direction::Egress
        } else {
            Direction::Ingress
        },
        ethertype: EtherType::IPv4,
        protocol: Some(if seed.is_multiple_of(4) { 17 } else { 6 }),
        protocol_zero: false,
        port_range_min: Some(1000 + (seed % 5000) as u16),
        port_range_max: Some(1000 + (seed % 5000) as u16 + (seed % 7) as u16),
        remote: Remote::Prefix(
            ipnet::Ipv4Net::new(Ipv4Addr::from(a), 16 + (seed % 17) as u8)
                .unwrap()
                .trunc()
                .into(),
        ),
        remote_ip_prefix_raw: None,
        description: String::new(),
    }
}

fn group(name: &str, rules: std::ops::Range<usize>) -> SecurityGroup {
    SecurityGroup {
        name: name.into(),
        description: String::new(),
        stateful: true,
        rules: rules.map(rule).collect(),
    }
}

fn model() -> Model {
    let mut groups = vec![group("common", 0..100), group("solo", 900_000..900_005)];
    for t in 0..100 {
        groups.push(group(
            &format!("t{t}"),
            1000 * (t + 1)..1000 * (t + 1) + 100,
        ));
    }
    let ports = (0..1000usize)
        .map(|i| {
            let mut security_groups = vec!["common".to_string(), format!("t{}", i % 100)];
            if i == 0 {
                security_groups.push("solo".into());
            }
            Port {
                name: format!("p{i}"),
                network: "n".into(),
                mac: sgswitch::wire::Mac([2, 0, 0, 0, (i >> 8) as u8, i as u8]),
                fixed_ips: vec![IpAddr::V4(Ipv4Addr::from(0xc0a8_0000 + i as u32))],
                security_groups,
                port_security: true,
                allowed_address_pairs: Vec::new(),
                backend: None,
                host: None,
            }
        })
        .collect();
    Model {
        security_groups: groups,
        ports,
        networks: vec![Network {
            name: "n".into(),
            ..Network::default()
        }],
        ..Model::default()
    }
}

/// (median, p99) in ms.
fn pct(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let q = |p: f64| v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1];
    (q(0.5).as_secs_f64() * 1e3, q(0.99).as_secs_f64() * 1e3)
}

fn time(rounds: usize, mut f: impl FnMut(usize)) -> (f64, f64) {
    let v = (0..rounds)
        .map(|i| {
            let t = Instant::now();
            f(i);
            t.elapsed()
        })
        .collect();
    pct(v)
}

/// The calling thread's CPU time (what a change costs the applier, whatever the load).
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer for the duration of the call.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Wall time and calling-thread CPU time of each call, as (median, p99) pairs.
fn time_cpu(rounds: usize, mut f: impl FnMut(usize)) -> ((f64, f64), (f64, f64)) {
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        let (t, c) = (Instant::now(), thread_cpu());
        f(i);
        cpu.push(thread_cpu().saturating_sub(c));
        wall.push(t.elapsed());
    }
    (pct(wall), pct(cpu))
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let rounds = env("ROUNDS", 100).max(2);
    let base = model();
    let rules: usize = base.security_groups.iter().map(|g| g.rules.len()).sum();
    let settings = SwitchSettings {
        workers: env("WORKERS", 1).max(1),
        no_pin: true,
        idle_backoff: env("IDLE_BACKOFF", 0) != 0,
        ..SwitchSettings::default()
    };
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "policy_update: {} ports, {rules} rules in force, {} rounds, {} worker(s), idle backoff {}; load average {}",
        base.ports.len(),
        rounds,
        settings.workers,
        settings.idle_backoff,
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    println!(
        "| group changed (ports using it) | classifier compile | classifier recompile | classifier patch (`derive`) | dataplane compile | dataplane recompile (patch) | Switch::apply, call to epoch in force | Switch::apply, CPU of the calling thread |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let f = |(m, p): (f64, f64)| format!("{m:.3} / {p:.3}");
    for (name, users) in [("common", 1000), ("t0", 10), ("solo", 1)] {
        let mut changed = base.clone();
        let g = changed
            .security_groups
            .iter_mut()
            .find(|g| g.name == name)
            .expect("group");
        g.rules.push(rule(7_777_777));
        // Alternately the model with the extra rule and without it.
        let models = [&changed, &base];
        let next = |i: usize| models[i % 2];
        let prev = |i: usize| models[(i + 1) % 2];

        let c_full = time(rounds, |i| {
            black_box(CompiledPolicy::compile(next(i), i as u64));
        });
        let mut policy = CompiledPolicy::compile(&base, 0);
        let c_incr = time(rounds, |i| {
            policy = policy.recompile(prev(i), next(i), i as u64);
        });
        let mut policy = CompiledPolicy::compile(&base, 0);
        let c_patch = time(rounds, |i| {
            policy = policy.derive(prev(i), next(i), i as u64);
        });
        let mut zones = IdMap::default();
        let d_full = time(rounds, |i| {
            black_box(Dataplane::compile(next(i), i as u64, &mut zones));
        });
        let mut dp = Dataplane::compile(&base, 0, &mut zones);
        let d_incr = time(rounds, |i| {
            dp = dp.recompile(prev(i), next(i), i as u64, &mut zones);
        });
        let sw = Switch::start(&base, &settings).expect("switch");
        let (s_incr, s_cpu) = time_cpu(rounds, |i| {
            sw.apply(next(i)).expect("apply");
        });
        black_box(sw.shutdown());
        println!(
            "| `{name}` ({users}) | {} | {} | {} | {} | {} | **{}** | {} |",
            f(c_full),
            f(c_incr),
            f(c_patch),
            f(d_full),
            f(d_incr),
            f(s_incr),
            f(s_cpu)
        );
    }
    // A chain: every change adds one more rule to `common` (none removed), so the delta
    // grows to its bound and the change past it compiles (the delta folded in).
    let chain: Vec<Model> = (0..=rounds)
        .map(|n| {
            let mut m = base.clone();
            let g = &mut m.security_groups[0];
            g.rules.extend((0..n).map(|k| rule(8_000_000 + k)));
            m
        })
        .collect();
    let mut policy = CompiledPolicy::compile(&chain[0], 0);
    let c_chain = time(rounds, |i| {
        policy = policy.derive(&chain[i], &chain[i + 1], i as u64 + 1);
    });
    let sw = Switch::start(&chain[0], &settings).expect("switch");
    let (s_chain, s_chain_cpu) = time_cpu(rounds, |i| {
        sw.apply(&chain[i + 1]).expect("apply");
    });
    black_box(sw.shutdown());
    println!(
        "| `common` chain of adds (1000; compile every {} changes) | | | {} | | | **{}** | {} |",
        MAX_DELTA + 1,
        f(c_chain),
        f(s_chain),
        f(s_chain_cpu)
    );
    println!("(median / p99, ms)");
}
