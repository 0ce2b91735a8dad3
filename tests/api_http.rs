//! The management API through HTTP: every endpoint, status code and validation case of
//! security-groups.md §3, atomicity (a rejected change changes nothing), the apply hook,
//! request checking and the token.
//!
//! One test crate (each file under `tests/` is a crate of its own, linked separately):
//! this file holds the imports every module shares, the apply-hook and concurrency tests;
//! the modules under `tests/api_http/` hold the rest, one per resource or concern.

mod api_common;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use api_common::{err_type, Harness};
use serde_json::{json, Value};
use sgswitch::control::api::{ApiError, ApiServer};
use sgswitch::control::http_client::Client;
use sgswitch::control::store::Store;

#[path = "api_http/groups.rs"]
mod groups;
#[path = "api_http/requests.rs"]
mod requests;
#[path = "api_http/resources.rs"]
mod resources;
#[path = "api_http/rules.rs"]
mod rules;

#[test]
fn apply_failure_changes_nothing() {
    let h = Harness::start();
    let web = h.sg_id("web");
    h.fail_apply.store(true, Ordering::SeqCst);
    let before = h.store.snapshot();
    let r = h.rule(&web, json!({"direction": "ingress", "protocol": "udp"}));
    assert_eq!(r.status, 409);
    assert_eq!(err_type(&r), "PolicyApplyFailed");
    assert!(r.body["NeutronError"]["message"]
        .as_str()
        .unwrap()
        .contains("injected compile failure"));
    let r = h.req(
        "POST",
        "/v2.0/security-groups",
        Some(json!({"security_group": {"name": "x"}})),
    );
    assert_eq!(r.status, 409);
    assert_eq!(*h.store.snapshot(), *before);
    h.fail_apply.store(false, Ordering::SeqCst);
    assert_eq!(
        h.rule(&web, json!({"direction": "ingress", "protocol": "udp"}))
            .status,
        201
    );
}

#[test]
fn concurrent_rule_creations_are_serialised() {
    let h = Harness::start();
    let web = h.sg_id("web");
    let endpoint = h.endpoint();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (endpoint, web) = (endpoint.clone(), web.clone());
            std::thread::spawn(move || {
                let c = Client::new(&endpoint, None).unwrap();
                for i in 0..10 {
                    let port = 1000 + t * 100 + i;
                    let r = c
                        .raw(
                            "POST",
                            "/v2.0/security-group-rules",
                            Some(&json!({"security_group_rule": {"security_group_id": web, "direction": "ingress", "protocol": "tcp", "port_range_min": port, "port_range_max": port}})),
                        )
                        .unwrap();
                    assert_eq!(r.status, 201);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(h.store.model().group("web").unwrap().rules.len(), 41);
    assert_eq!(h.published_count(), 40);
    let last = h.published.lock().unwrap().last().unwrap().clone();
    assert_eq!(last.group("web").unwrap().rules.len(), 41);
}

#[test]
fn reads_are_not_blocked_by_a_mutation_in_progress() {
    let h = Harness::start();
    let web = h.sg_id("web");
    // Make the apply hook slow (a long compile) for the next mutation.
    let slow = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let s2 = Arc::clone(&slow);
    sgswitch::control::connect(
        &h.store,
        Arc::new(move |_m: &sgswitch::policy::Model| {
            if s2.load(Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(600));
            }
            Ok(())
        }),
    );
    let endpoint = h.endpoint();
    let writer = std::thread::spawn(move || {
        let c = Client::new(&endpoint, None).unwrap();
        c.raw(
            "POST",
            "/v2.0/security-group-rules",
            Some(&json!({"security_group_rule": {"security_group_id": web, "direction": "ingress", "protocol": "udp"}})),
        )
        .unwrap()
        .status
    });
    std::thread::sleep(std::time::Duration::from_millis(150));
    let t0 = std::time::Instant::now();
    let r = h.req("GET", "/v2.0/security-group-rules?protocol=udp", None);
    let waited = t0.elapsed();
    assert_eq!(r.status, 200);
    // The read saw the committed state (not the candidate) and did not wait for it.
    assert_eq!(r.body["security_group_rules"].as_array().unwrap().len(), 0);
    assert!(waited < std::time::Duration::from_millis(400), "{waited:?}");
    assert_eq!(writer.join().unwrap(), 201);
    slow.store(false, Ordering::SeqCst);
    let r = h.req("GET", "/v2.0/security-group-rules?protocol=udp", None);
    assert_eq!(r.body["security_group_rules"].as_array().unwrap().len(), 1);
}
