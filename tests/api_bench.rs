//! API latency and throughput figures (run: `cargo test --release --test api_bench --
//! --ignored --nocapture`): time from an API call to the new model being handed to the
//! apply hook (the runtime's compile is excluded: the hook only records the instant), for
//! a group with 10,000 rules and for a remote group with 10,000 members; and sustained
//! rule creations per second.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use sgswitch::control::api::{ApiHandle, ApiServer};
use sgswitch::control::config::{Config, SwitchSettings};
use sgswitch::control::http_client::Client;
use sgswitch::control::store::Store;
use sgswitch::policy::spec::{ModelSpec, PortSpec, RuleSpec, Scalar, SecurityGroupSpec};
use sgswitch::policy::validate_model;
use sgswitch::wire::Mac;

const N: usize = 10_000;

fn big_config() -> Config {
    let rules: Vec<RuleSpec> = (1..=N as i64)
        .map(|p| RuleSpec {
            direction: Some("ingress".into()),
            protocol: Some(Scalar::Str("tcp".into())),
            port_range_min: Some(Scalar::Int(p)),
            port_range_max: Some(Scalar::Int(p)),
            ..Default::default()
        })
        .collect();
    let ports: Vec<PortSpec> = (0..N)
        .map(|i| PortSpec {
            name: Some(format!("m{i}")),
            network: Some("net".into()),
            mac: Some(
                Mac([0xfa, 0x16, 0x3e, (i >> 16) as u8, (i >> 8) as u8, i as u8]).to_string(),
            ),
            fixed_ips: vec![std::net::Ipv4Addr::from(0x0a00_0001 + i as u32).to_string()],
            security_groups: Some(vec!["members".into()]),
            ..Default::default()
        })
        .collect();
    let spec = ModelSpec {
        security_groups: vec![
            SecurityGroupSpec {
                name: Some("big".into()),
                rules: Some(rules),
                ..Default::default()
            },
            SecurityGroupSpec {
                name: Some("members".into()),
                ..Default::default()
            },
            SecurityGroupSpec {
                name: Some("referrer".into()),
                ..Default::default()
            },
        ],
        ports,
        ..Default::default()
    };
    Config {
        model: validate_model(&spec).expect("generated model is valid"),
        switch: SwitchSettings::default(),
        logging: Default::default(),
        api: Default::default(),
        overlay: Default::default(),
    }
}

/// Serve `store` on an ephemeral loopback port: the server's handle and a client for it.
fn serve(store: &Arc<Store>) -> (ApiHandle, Client) {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let h = ApiServer::start(addr, None, Arc::clone(store)).unwrap();
    let c = Client::new(&format!("http://{}", h.local_addr()), None).unwrap();
    (h, c)
}

/// Create one single-port rule in `group` through the API (asserts 201).
fn post_rule(c: &Client, group: &str, direction: &str, protocol: &str, port: i64) {
    let r = c
        .raw(
            "POST",
            "/v2.0/security-group-rules",
            Some(&json!({"security_group_rule": {
            "security_group_id": group, "direction": direction, "protocol": protocol,
            "port_range_min": port, "port_range_max": port}})),
        )
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
}

/// Replace a port's security groups through the API (asserts 200).
fn set_groups(c: &Client, port: &str, groups: serde_json::Value) {
    let r = c
        .raw(
            "PUT",
            &format!("/v2.0/ports/{port}"),
            Some(&json!({"port": {"security_groups": groups}})),
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
fn api_to_apply_hook_latency_and_rule_rate() {
    let t = Instant::now();
    let cfg = big_config();
    println!("model built in {:?}", t.elapsed());
    let store = Arc::new(Store::open(None, &cfg).unwrap());
    let stamps = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let s2 = Arc::clone(&stamps);
    sgswitch::control::connect(
        &store,
        Arc::new(move |_m: &sgswitch::policy::Model| {
            s2.lock().unwrap().push(Instant::now());
            Ok(())
        }),
    );
    let (h, c) = serve(&store);
    let snap = store.snapshot();
    let big = snap.group_id("big").unwrap().to_string();
    let members = snap.group_id("members").unwrap().to_string();
    let referrer = snap.group_id("referrer").unwrap().to_string();
    drop(snap);

    // (1) Add a rule to the 10,000-rule group.
    let mut to_hook = Vec::new();
    let mut total = Vec::new();
    for i in 0..20 {
        let t0 = Instant::now();
        post_rule(&c, &big, "egress", "udp", 1000 + i);
        total.push(t0.elapsed());
        to_hook.push(*stamps.lock().unwrap().last().unwrap() - t0);
    }
    println!(
        "rule create in a {N}-rule group: API call -> apply hook median {:?}, full round trip median {:?}",
        median(to_hook),
        median(total)
    );

    // (2) A rule with a 10,000-member remote group, then a membership change.
    let t0 = Instant::now();
    let r = c
        .raw(
            "POST",
            "/v2.0/security-group-rules",
            Some(&json!({"security_group_rule": {
            "security_group_id": referrer, "direction": "ingress", "protocol": "tcp",
            "port_range_min": 22, "port_range_max": 22, "remote_group_id": members}})),
        )
        .unwrap();
    assert_eq!(r.status, 201);
    println!(
        "remote-group rule ({N} members): API call -> apply hook {:?}",
        *stamps.lock().unwrap().last().unwrap() - t0
    );
    let port = store.snapshot().meta.ports[0].id;
    let mut to_hook = Vec::new();
    for i in 0..20 {
        let groups = if i % 2 == 0 {
            json!([])
        } else {
            json!([members])
        };
        let t0 = Instant::now();
        set_groups(&c, &port.to_string(), groups);
        to_hook.push(*stamps.lock().unwrap().last().unwrap() - t0);
    }
    println!(
        "remote-group member removed/added ({N} members, {N} ports): API call -> apply hook median {:?}",
        median(to_hook)
    );

    // (3) Sustained rule creations per second (sequential client, one rule per call).
    for (label, group) in [
        ("small group", referrer.clone()),
        ("10k-rule group", big.clone()),
    ] {
        let n = 300;
        let t0 = Instant::now();
        for i in 0..n {
            post_rule(&c, &group, "egress", "tcp", 20000 + i);
        }
        let secs = t0.elapsed().as_secs_f64();
        println!(
            "sustained rule creations ({label}): {:.0}/s ({n} in {secs:.2}s)",
            n as f64 / secs
        );
    }
    h.shutdown();

    // (4) The same with persistence (--state-dir: the whole state is written and
    // fsynced on every change).
    let dir = std::env::temp_dir().join(format!("sgswitch-api-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for (label, cfg) in [
        (
            "small model",
            Config {
                model: Default::default(),
                switch: SwitchSettings::default(),
                logging: Default::default(),
                api: Default::default(),
                overlay: Default::default(),
            },
        ),
        ("10k rules + 10k ports", big_config()),
    ] {
        let _ = std::fs::remove_dir_all(&dir);
        let cfg = if cfg.model.security_groups.is_empty() {
            Config {
                model: validate_model(&ModelSpec::default()).unwrap(),
                ..cfg
            }
        } else {
            cfg
        };
        let store = Arc::new(Store::open(Some(&dir), &cfg).unwrap());
        let (h, c) = serve(&store);
        let def = store.snapshot().group_id("default").unwrap().to_string();
        let n = 100;
        let t0 = Instant::now();
        for i in 0..n {
            post_rule(&c, &def, "egress", "tcp", 30000 + i);
        }
        let secs = t0.elapsed().as_secs_f64();
        println!(
            "sustained rule creations with --state-dir ({label}): {:.0}/s",
            n as f64 / secs
        );
        h.shutdown();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The whole path a user sees: the API call returns once the live runtime (compile,
/// publish through the atomic pointer, every worker on the new epoch) uses the new policy.
/// The switch runs two polling workers (no ports: this measures the control path).
#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
fn api_to_policy_in_force_with_the_runtime() {
    use sgswitch::runtime::switch::Switch;
    let cfg = big_config();
    let store = Arc::new(Store::open(None, &cfg).unwrap());
    let settings = SwitchSettings {
        workers: 2,
        no_pin: true,
        ..Default::default()
    };
    let sw = Arc::new(Switch::start(&store.model(), &settings).unwrap());
    sgswitch::control::connect(&store, sw.clone());
    let (h, c) = serve(&store);
    let snap = store.snapshot();
    let big = snap.group_id("big").unwrap().to_string();
    let members = snap.group_id("members").unwrap().to_string();
    let referrer = snap.group_id("referrer").unwrap().to_string();
    drop(snap);
    let epoch0 = sw.epoch();

    let mut total = Vec::new();
    for i in 0..10 {
        let t0 = Instant::now();
        post_rule(&c, &big, "egress", "udp", 1000 + i);
        total.push(t0.elapsed());
    }
    assert_eq!(sw.epoch(), epoch0 + 10, "every call published a new policy");
    println!(
        "rule create in a {N}-rule group ({N} ports): API call -> policy in force, median {:?}",
        median(total)
    );
    let t0 = Instant::now();
    let r = c
        .raw(
            "POST",
            "/v2.0/security-group-rules",
            Some(&json!({"security_group_rule": {
            "security_group_id": referrer, "direction": "ingress", "protocol": "tcp",
            "port_range_min": 22, "port_range_max": 22, "remote_group_id": members}})),
        )
        .unwrap();
    assert_eq!(r.status, 201);
    println!(
        "remote-group rule ({N} members): API call -> policy in force {:?}",
        t0.elapsed()
    );
    let port = store.snapshot().meta.ports[0].id;
    let mut total = Vec::new();
    for i in 0..10 {
        let groups = if i % 2 == 0 {
            json!([])
        } else {
            json!([members])
        };
        let t0 = Instant::now();
        set_groups(&c, &port.to_string(), groups);
        total.push(t0.elapsed());
    }
    println!(
        "remote-group member removed/added ({N} members): API call -> policy in force, median {:?}",
        median(total)
    );
    let n = 100;
    let t0 = Instant::now();
    for i in 0..n {
        post_rule(&c, &referrer, "egress", "tcp", 30000 + i);
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "sustained rule creations into the running switch ({N}-rule, {N}-port model): {:.0}/s",
        n as f64 / secs
    );
    h.shutdown();
    sw.shutdown();
}

/// `rules` bulk-create bodies of `per` single-port rules each (ports `base..`), into `group`.
fn bulk_bodies(group: &str, requests: usize, per: usize, base: usize) -> Vec<serde_json::Value> {
    (0..requests)
        .map(|k| {
            let rules: Vec<_> = (0..per)
                .map(|i| {
                    let n = base + k * per + i;
                    // Distinct keys: port (1..=60000) and direction / protocol beyond that.
                    json!({"security_group_id": group,
                           "direction": if (n / 60_000).is_multiple_of(2) { "ingress" } else { "egress" },
                           "protocol": if (n / 120_000).is_multiple_of(2) { "tcp" } else { "udp" },
                           "port_range_min": 1 + n % 60_000, "port_range_max": 1 + n % 60_000})
                })
                .collect();
            json!({ "security_group_rules": rules })
        })
        .collect()
}

/// Eight bulk requests of 5,000 rules each into one group, through the API (the issue's
/// measurement: before #14 each took longer than the one before, 0.66 s growing to
/// 10.7 s, with the store lock held). Prints each request's round trip; with
/// `SGSWITCH_BENCH_STATE_DIR=DIR` the store persists to DIR (fsync on every request);
/// `SGSWITCH_BENCH_BULK=RxN` makes it R requests of N rules (the callgrind comparison
/// in the module doc runs `2x1000` and `2x4000`).
#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
fn bulk_rule_creation_is_linear() {
    let state_dir = std::env::var_os("SGSWITCH_BENCH_STATE_DIR").map(std::path::PathBuf::from);
    if let Some(d) = &state_dir {
        let _ = std::fs::remove_dir_all(d);
    }
    let cfg = Config {
        model: validate_model(&ModelSpec::default()).unwrap(),
        switch: SwitchSettings::default(),
        logging: Default::default(),
        api: Default::default(),
        overlay: Default::default(),
    };
    let store = Arc::new(Store::open(state_dir.as_deref(), &cfg).unwrap());
    sgswitch::control::connect(&store, Arc::new(|_m: &sgswitch::policy::Model| Ok(())));
    let (h, c) = serve(&store);
    let def = store.snapshot().group_id("default").unwrap().to_string();
    let (requests, per) = std::env::var("SGSWITCH_BENCH_BULK")
        .ok()
        .and_then(|v| {
            let (r, n) = v.split_once('x')?;
            Some((r.parse().ok()?, n.parse().ok()?))
        })
        .unwrap_or((8, 5_000));
    let mut times = Vec::new();
    for (k, body) in bulk_bodies(&def, requests, per, 0).into_iter().enumerate() {
        let t0 = Instant::now();
        let r = c
            .raw("POST", "/v2.0/security-group-rules", Some(&body))
            .unwrap();
        let dt = t0.elapsed();
        assert_eq!(r.status, 201, "{}", r.body);
        println!(
            "bulk request {} ({per} rules, {} in the group before): {dt:?}",
            k + 1,
            k * per + 4
        );
        times.push(dt);
    }
    println!(
        "{requests} bulk requests of {per} rules: first {:?}, last {:?}, total {:?}",
        times[0],
        times[requests - 1],
        times.iter().sum::<Duration>()
    );
    h.shutdown();
    if let Some(d) = &state_dir {
        let _ = std::fs::remove_dir_all(d);
    }
}
