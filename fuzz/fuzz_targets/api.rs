#![no_main]
//! `api`: the management API's request decoding and routing (`control::api::handle`, the
//! function every HTTP request reaches once its body is read) on random requests against
//! a store seeded from a small model and connected to an apply hook that compiles every
//! model it is handed, as the running switch does.
//!
//! Input: text, one request per line, `METHOD PATH [BODY]` (the format of
//! `tests/fixtures/api-bodies.txt`); `{NAME}` in the path or body is replaced by the id
//! of the object of that name (group, port, network, address group, log) and `{ruleN}`
//! by the id of the N-th rule, so that mutated inputs reach existing objects.
//!
//! Invariants: no panic; every status is a known HTTP status; an answer is JSON (it
//! serialises and parses back to the same value) and is either a success (2xx, an object
//! or no body for 204) or Neutron's error body `{"NeutronError": {"type": str, "message":
//! str, "detail": ""}}` with a 4xx/5xx status; 5xx never answers a request (a bad request
//! is the client's fault); every model the hook is handed validates back to itself and
//! compiles; after every request the store's state is aligned (`State::check`) and its
//! model validates back to itself.

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sgswitch::control::api::handle;
use sgswitch::control::config::{parse_str, Config};
use sgswitch::control::store::{to_spec::model_to_spec, ApplyError, Store};
use sgswitch::control::{self};
use sgswitch::pipeline::{Dataplane, IdMap};
use sgswitch::policy::{validate_model, Model};

const SEED: &str = r#"
[[networks]]
name = "spare"

[[address_groups]]
name = "office"
addresses = ["198.51.100.0/24"]

[[security_groups]]
name = "nostate"
stateful = false
rules = []

[[security_groups]]
name = "web"
description = "web servers"
rules = [ { direction = "ingress", protocol = "tcp", port_range_min = 80, port_range_max = 80 },
          { direction = "ingress", protocol = "icmp", remote_group = "web" } ]

[[ports]]
name = "vm-a"
network = "net1"
mac = "fa:16:3e:00:00:0a"
fixed_ips = ["10.0.0.10", "fd00::a"]
security_groups = ["web"]

[[ports]]
name = "vm-b"
network = "net1"
mac = "fa:16:3e:00:00:0b"
fixed_ips = ["10.0.0.11"]

[[logs]]
name = "weblog"
resource = "web"
event = "DROP"
"#;

fn seed() -> &'static Config {
    static SEED_CONFIG: OnceLock<Config> = OnceLock::new();
    SEED_CONFIG.get_or_init(|| parse_str(SEED, "seed.toml").expect("the seed config loads"))
}

/// The model validates back to itself (what the store commits must be a valid model).
fn check_model(m: &Model, what: &str) {
    match validate_model(&model_to_spec(m)) {
        Ok(again) => assert_eq!(&again, m, "{what}: the model does not validate to itself"),
        Err(e) => panic!("{what}: the model does not validate: {e:?}\n{m:#?}"),
    }
}

/// Replace `{NAME}` and `{ruleN}` by ids from the store's current state.
fn substitute(store: &Store, s: &str) -> String {
    let snap = store.snapshot();
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}').filter(|&c| c <= 24) else {
            out.push('{');
            rest = after;
            continue;
        };
        let name = &after[..close];
        let id = if let Some(n) = name.strip_prefix("rule") {
            let n: usize = n.parse().unwrap_or(0);
            snap.meta
                .groups
                .iter()
                .flat_map(|g| g.rules.iter())
                .nth(n)
                .map(|r| r.id.to_string())
        } else {
            snap.group_id(name)
                .or_else(|| snap.port_id(name))
                .or_else(|| snap.network_id(name))
                .or_else(|| snap.address_group_id(name))
                .map(|id| id.to_string())
                .or_else(|| {
                    snap.model
                        .logs
                        .iter()
                        .position(|l| l.name == name)
                        .map(|i| snap.meta.logs[i].id.to_string())
                })
        };
        match id {
            Some(id) => out.push_str(&id),
            None => {
                out.push('{');
                out.push_str(name);
                out.push('}');
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

fn check_answer(status: u16, body: &Option<Value>, req: &str) {
    assert!((200..600).contains(&status), "status {status} for {req}");
    assert!(status < 500, "a request got {status}: {req}\n{body:?}");
    if let Some(v) = body {
        let text = v.to_string();
        let back: Value = serde_json::from_str(&text).expect("an answer is JSON");
        assert_eq!(&back, v, "the answer does not survive JSON: {req}");
    }
    match (status, body) {
        (204, None) => {}
        (204, Some(_)) => panic!("204 with a body: {req}"),
        (200..=299, Some(Value::Object(_))) => {}
        (200..=299, other) => panic!("success {status} without an object: {req}\n{other:?}"),
        (_, Some(v)) => {
            let e = v
                .get("NeutronError")
                .unwrap_or_else(|| panic!("error {status} without NeutronError: {req}\n{v}"));
            assert!(
                e["type"].as_str().is_some_and(|t| !t.is_empty()),
                "error type: {req}\n{v}"
            );
            assert!(e["message"].as_str().is_some(), "error message: {req}\n{v}");
            assert_eq!(e["detail"], Value::from(""), "error detail: {req}\n{v}");
            assert_eq!(
                v.as_object().map(|o| o.len()),
                Some(1),
                "error body keys: {req}\n{v}"
            );
        }
        (_, None) => panic!("error {status} without a body: {req}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let store = Store::open(None, seed()).expect("the store opens");
    control::connect(
        &store,
        Arc::new(|m: &Model| -> Result<(), ApplyError> {
            check_model(m, "apply hook");
            let _ = Dataplane::compile(m, 2, &mut IdMap::default());
            Ok(())
        }),
    );
    for line in text.lines().take(16) {
        let mut parts = line.splitn(3, ' ');
        let method = parts.next().unwrap_or("");
        let url = substitute(&store, parts.next().unwrap_or("/"));
        let body = substitute(&store, parts.next().unwrap_or(""));
        let (status, answer) = handle(&store, method, &url, "127.0.0.1:9696", body.as_bytes());
        check_answer(status, &answer, line);
        let snap = store.snapshot();
        if let Err(e) = snap.check() {
            panic!("the state is misaligned after {line}: {e}");
        }
        check_model(&snap.model, line);
    }
});
