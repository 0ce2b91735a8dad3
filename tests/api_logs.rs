//! Neutron's logging extension through the management API (`/v2.0/log/logs`,
//! `/v2.0/log/loggable-resources`): Neutron's fields and answers, the change reaching
//! the apply hook like every other, persistence, and the logs of a deleted port.

mod api_common;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use api_common::{err_type, seed, Harness};
use serde_json::{json, Value};
use sgswitch::control::store::Store;
use sgswitch::policy::LogEvent;

fn create(h: &Harness, log: Value) -> sgswitch::control::http_client::Response {
    h.req("POST", "/v2.0/log/logs", Some(json!({ "log": log })))
}

#[test]
fn loggable_resources_and_the_extension() {
    let h = Harness::start();
    let r = h.req("GET", "/v2.0/log/loggable-resources", None);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        json!({"loggable_resources": [{"type": "security_group"}]})
    );
    assert_eq!(
        h.req("POST", "/v2.0/log/loggable-resources", None).status,
        405
    );
    let r = h.req("GET", "/v2.0/extensions", None);
    let aliases: Vec<&str> = r.body["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["alias"].as_str().unwrap())
        .collect();
    assert!(aliases.contains(&"logging"), "{aliases:?}");
    assert_eq!(h.req("GET", "/v2.0/log/nothing", None).status, 404);
    assert_eq!(h.req("PATCH", "/v2.0/log/logs", None).status, 405);
}

#[test]
fn log_lifecycle_goes_through_the_apply_hook() {
    let h = Harness::start();
    let web = h.sg_id("web");
    let vm_a = h.port_id("vm-a");
    let before = h.published_count();
    let r = create(
        &h,
        json!({"name": "web-log", "description": "d", "resource_type": "security_group",
               "resource_id": web, "target_id": vm_a, "event": "ACCEPT",
               "project_id": "00000000000000000000000000000000"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let log = &r.body["log"];
    let id = log["id"].as_str().unwrap().to_string();
    for (k, v) in [
        ("name", json!("web-log")),
        ("description", json!("d")),
        ("resource_type", json!("security_group")),
        ("resource_id", json!(web)),
        ("target_id", json!(vm_a)),
        ("event", json!("ACCEPT")),
        ("enabled", json!(true)),
        ("revision_number", json!(0)),
        ("project_id", json!("00000000000000000000000000000000")),
        ("tenant_id", json!("00000000000000000000000000000000")),
    ] {
        assert_eq!(log[k], v, "{k}: {log}");
    }
    assert!(log["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(log["updated_at"].is_string());
    // The change reached the apply hook with the log in the model.
    assert_eq!(h.published_count(), before + 1);
    let published = h.published.lock().unwrap().last().unwrap().clone();
    assert_eq!(published.logs.len(), 1);
    assert_eq!(published.logs[0].resource.as_deref(), Some("web"));
    assert_eq!(published.logs[0].target.as_deref(), Some("vm-a"));
    assert_eq!(published.logs[0].event, LogEvent::Accept);

    // Defaults: no resource, no target, event ALL, enabled.
    let r = create(&h, json!({"resource_type": "security_group"}));
    assert_eq!(r.status, 201, "{}", r.body);
    let other = r.body["log"]["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["log"]["event"], "ALL");
    assert_eq!(r.body["log"]["name"], "");
    assert!(r.body["log"]["resource_id"].is_null() && r.body["log"]["target_id"].is_null());

    // List, filters, show.
    let r = h.req("GET", "/v2.0/log/logs", None);
    assert_eq!(r.body["logs"].as_array().unwrap().len(), 2);
    let r = h.req("GET", "/v2.0/log/logs?name=web-log", None);
    assert_eq!(r.body["logs"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["logs"][0]["id"], id.as_str());
    let r = h.req(
        "GET",
        &format!("/v2.0/log/logs?resource_id={web}&event=ACCEPT"),
        None,
    );
    assert_eq!(r.body["logs"].as_array().unwrap().len(), 1);
    let r = h.req("GET", "/v2.0/log/logs?enabled=true&event=DROP", None);
    assert_eq!(r.body["logs"].as_array().unwrap().len(), 0);
    assert_eq!(h.req("GET", "/v2.0/log/logs?colour=red", None).status, 400);
    let r = h.req("GET", &format!("/v2.0/log/logs/{id}"), None);
    assert_eq!(r.status, 200);
    assert_eq!(r.body["log"]["name"], "web-log");

    // Disable, rename: the hook sees it; the revision moves.
    let r = h.req(
        "PUT",
        &format!("/v2.0/log/logs/{id}"),
        Some(json!({"log": {"enabled": false, "name": "renamed"}})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["log"]["enabled"], false);
    assert_eq!(r.body["log"]["name"], "renamed");
    assert_eq!(r.body["log"]["revision_number"], 1);
    let published = h.published.lock().unwrap().last().unwrap().clone();
    assert!(!published.logs[0].enabled);
    // What was fixed at creation stays fixed.
    for body in [
        json!({"log": {"event": "DROP"}}),
        json!({"log": {"target_id": null}}),
        json!({"log": {"resource_type": "security_group"}}),
    ] {
        let r = h.req("PUT", &format!("/v2.0/log/logs/{id}"), Some(body.clone()));
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(r.body["NeutronError"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Cannot update read-only attribute"));
    }
    let r = h.req(
        "PUT",
        &format!("/v2.0/log/logs/{id}"),
        Some(json!({"log": {"enabled": "maybe"}})),
    );
    assert_eq!(r.status, 400);

    // Delete.
    let r = h.req("DELETE", &format!("/v2.0/log/logs/{id}"), None);
    assert_eq!(r.status, 204);
    let r = h.req("GET", &format!("/v2.0/log/logs/{id}"), None);
    assert_eq!(r.status, 404);
    assert_eq!(err_type(&r), "LogResourceNotFound");
    assert_eq!(
        r.body["NeutronError"]["message"],
        format!("Log resource {id} could not be found.")
    );
    assert_eq!(
        h.req("DELETE", &format!("/v2.0/log/logs/{id}"), None)
            .status,
        404
    );
    let r = h.req("GET", "/v2.0/log/logs", None);
    assert_eq!(r.body["logs"][0]["id"], other.as_str());
}

#[test]
fn bad_requests_get_neutrons_errors() {
    let h = Harness::start();
    let web = h.sg_id("web");
    let default = h.sg_id("default");
    let vm_a = h.port_id("vm-a");
    let ghost = "0123abcd-4567-4abc-8def-0123456789ab";
    let cases = [
        (
            json!({}),
            400,
            "HTTPBadRequest",
            "Required attribute 'resource_type'",
        ),
        (
            json!({"resource_type": "firewall_group"}),
            400,
            "InvalidLogResourceType",
            "Invalid log resource_type: firewall_group.",
        ),
        (
            json!({"resource_type": "security_group", "event": "drop"}),
            400,
            "InvalidInput",
            "Invalid input for event.",
        ),
        (
            json!({"resource_type": "security_group", "event": 1}),
            400,
            "HTTPBadRequest",
            "Invalid input for event.",
        ),
        (
            json!({"resource_type": "security_group", "resource_id": "web"}),
            400,
            "HTTPBadRequest",
            "Invalid input for resource_id. Reason: 'web' is not a valid UUID.",
        ),
        (
            json!({"resource_type": "security_group", "resource_id": ghost}),
            404,
            "ResourceNotFound",
            "Resource 0123abcd-4567-4abc-8def-0123456789ab could not be found.",
        ),
        (
            json!({"resource_type": "security_group", "target_id": ghost}),
            404,
            "TargetResourceNotFound",
            "Target resource 0123abcd-4567-4abc-8def-0123456789ab could not be found.",
        ),
        (
            json!({"resource_type": "security_group", "resource_id": default, "target_id": vm_a}),
            400,
            "InvalidResourceConstraint",
            "Invalid resource constraint between resource (security_group",
        ),
        (
            json!({"resource_type": "security_group", "name": "x".repeat(256)}),
            400,
            "InvalidInput",
            "Invalid input for name.",
        ),
        (
            json!({"resource_type": "security_group", "colour": "red"}),
            400,
            "HTTPBadRequest",
            "Unrecognized attribute(s) 'colour'",
        ),
    ];
    for (body, status, ty, message) in cases {
        let r = create(&h, body.clone());
        assert_eq!(r.status, status, "{body}: {}", r.body);
        assert_eq!(err_type(&r), ty, "{body}: {}", r.body);
        let got = r.body["NeutronError"]["message"].as_str().unwrap();
        assert!(got.contains(message), "{body}: {got}");
    }
    let r = h.req("POST", "/v2.0/log/logs", Some(json!({"logs": {}})));
    assert_eq!(r.status, 400);
    assert!(h.store.snapshot().model.logs.is_empty());
    // The port of the group is fine.
    let r = create(
        &h,
        json!({"resource_type": "security_group", "resource_id": web, "target_id": vm_a}),
    );
    assert_eq!(r.status, 201);
    // A refused apply changes nothing.
    h.fail_apply.store(true, Ordering::SeqCst);
    let r = create(&h, json!({"resource_type": "security_group"}));
    assert_eq!(
        (r.status, err_type(&r).as_str()),
        (409, "PolicyApplyFailed")
    );
    assert_eq!(h.store.snapshot().model.logs.len(), 1);
}

#[test]
fn deleting_a_port_deletes_its_logs() {
    let h = Harness::start();
    let vm_b = h.port_id("vm-b");
    let r = create(
        &h,
        json!({"resource_type": "security_group", "target_id": vm_b, "event": "DROP"}),
    );
    assert_eq!(r.status, 201);
    let keep = create(&h, json!({"resource_type": "security_group"}));
    assert_eq!(keep.status, 201);
    assert_eq!(
        h.req("DELETE", &format!("/v2.0/ports/{vm_b}"), None).status,
        204
    );
    let r = h.req("GET", "/v2.0/log/logs", None);
    let logs = r.body["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["id"], keep.body["log"]["id"]);
}

#[test]
fn logs_persist_with_their_ids() {
    let dir = std::env::temp_dir().join(format!("sgswitch-api-logs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let id = {
        let h = Harness::start_with(Some(&dir), None);
        let web = h.sg_id("web");
        let r = create(
            &h,
            json!({"resource_type": "security_group", "resource_id": web, "name": "kept"}),
        );
        assert_eq!(r.status, 201);
        r.body["log"]["id"].as_str().unwrap().to_string()
    };
    let store = Arc::new(Store::open(Some(&dir), &seed()).expect("reopens"));
    let snap = store.snapshot();
    let li = snap.log_by_id(&id).expect("the log is back with its id");
    assert_eq!(snap.model.logs[li].name, "kept");
    assert_eq!(snap.model.logs[li].resource.as_deref(), Some("web"));
    let _ = std::fs::remove_dir_all(&dir);
}
