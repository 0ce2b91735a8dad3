//! Security groups: the version document, the group lifecycle, and what deleting a group
//! does to the rules that reference it.

use super::*;

#[test]
fn version_document_and_extensions() {
    let h = Harness::start();
    let r = h.req("GET", "/", None);
    assert_eq!(r.status, 200);
    let v = &r.body["versions"][0];
    assert_eq!(v["id"], "v2.0");
    assert_eq!(v["status"], "CURRENT");
    assert_eq!(v["links"][0]["rel"], "self");
    assert!(v["links"][0]["href"].as_str().unwrap().ends_with("/v2.0/"));
    let r = h.req("GET", "/v2.0/extensions", None);
    let aliases: Vec<&str> = r.body["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["alias"].as_str().unwrap())
        .collect();
    assert!(aliases.contains(&"security-group"));
    assert_eq!(h.req("GET", "/v2.0/nothing", None).status, 404);
    assert_eq!(h.req("PATCH", "/v2.0/security-groups", None).status, 405);
}

#[test]
fn security_group_lifecycle() {
    let h = Harness::start();
    // The default group is there with its four rules.
    let r = h.req("GET", "/v2.0/security-groups", None);
    assert_eq!(r.status, 200);
    let groups = r.body["security_groups"].as_array().unwrap();
    assert_eq!(groups.len(), 3);
    let def = groups.iter().find(|g| g["name"] == "default").unwrap();
    assert_eq!(def["security_group_rules"].as_array().unwrap().len(), 4);
    let def_id = def["id"].as_str().unwrap().to_string();
    let self_ref = def["security_group_rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["remote_group_id"] == json!(def_id))
        .count();
    assert_eq!(self_ref, 2);

    // Create: 201, two egress rules, Neutron fields.
    let r = h.req(
        "POST",
        "/v2.0/security-groups",
        Some(json!({"security_group": {"name": "db", "description": "databases"}})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let g = &r.body["security_group"];
    let id = g["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 36);
    assert_eq!(g["name"], "db");
    assert_eq!(g["description"], "databases");
    assert_eq!(g["stateful"], true);
    assert!(g["tenant_id"].is_string() && g["project_id"].is_string());
    assert!(g["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(g["revision_number"].is_u64());
    let rules = g["security_group_rules"].as_array().unwrap();
    assert_eq!(rules.len(), 2);
    assert!(rules.iter().all(|r| r["direction"] == "egress"
        && r["protocol"].is_null()
        && r["remote_ip_prefix"].is_null()
        && r["security_group_id"] == json!(id)));
    let mut ets: Vec<&str> = rules
        .iter()
        .map(|r| r["ethertype"].as_str().unwrap())
        .collect();
    ets.sort();
    assert_eq!(ets, ["IPv4", "IPv6"]);
    assert_eq!(h.published_count(), 1);
    assert_eq!(
        h.published.lock().unwrap()[0]
            .group("db")
            .unwrap()
            .rules
            .len(),
        2
    );

    // Show, filters, unknown id.
    let r = h.req("GET", &format!("/v2.0/security-groups/{id}"), None);
    assert_eq!(r.status, 200);
    assert_eq!(r.body["security_group"]["name"], "db");
    let r = h.req("GET", "/v2.0/security-groups/db", None);
    assert_eq!(r.status, 404);
    assert_eq!(err_type(&r), "SecurityGroupNotFound");
    assert_eq!(r.body["NeutronError"]["detail"], "");
    let r = h.req("GET", "/v2.0/security-groups?name=db", None);
    assert_eq!(r.body["security_groups"].as_array().unwrap().len(), 1);
    let r = h.req(
        "GET",
        &format!("/v2.0/security-groups?id={id}&fields=id"),
        None,
    );
    assert_eq!(r.body["security_groups"][0]["id"], json!(id));
    let r = h.req("GET", "/v2.0/security-groups?name=nothing", None);
    assert_eq!(r.body["security_groups"].as_array().unwrap().len(), 0);
    let r = h.req("GET", "/v2.0/security-groups?bogus=1", None);
    assert_eq!(r.status, 400);

    // Update name / description / stateful.
    let r = h.req(
        "PUT",
        &format!("/v2.0/security-groups/{id}"),
        Some(json!({"security_group": {"name": "db2", "description": "x", "stateful": false}})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["security_group"]["name"], "db2");
    assert_eq!(r.body["security_group"]["stateful"], false);
    assert_eq!(r.body["security_group"]["revision_number"], 1);
    // Names reserved / duplicate / default protected: 409.
    for (body, path) in [
        (
            json!({"name": "Default"}),
            format!("/v2.0/security-groups/{id}"),
        ),
        (
            json!({"name": "web"}),
            format!("/v2.0/security-groups/{id}"),
        ),
        (
            json!({"name": "other"}),
            format!("/v2.0/security-groups/{def_id}"),
        ),
    ] {
        let r = h.req("PUT", &path, Some(json!({ "security_group": body })));
        assert_eq!(r.status, 409, "{body}: {}", r.body);
    }
    for name in ["default", "DEFAULT", "web"] {
        let r = h.req(
            "POST",
            "/v2.0/security-groups",
            Some(json!({"security_group": {"name": name}})),
        );
        assert_eq!(r.status, 409, "{name}");
    }
    // Stateful flip on a bound group: 409.
    let web = h.sg_id("web");
    let r = h.req(
        "PUT",
        &format!("/v2.0/security-groups/{web}"),
        Some(json!({"security_group": {"stateful": false}})),
    );
    assert_eq!(r.status, 409);
    // Delete: default 409, bound 409, free 204, then 404.
    assert_eq!(
        h.req("DELETE", &format!("/v2.0/security-groups/{def_id}"), None)
            .status,
        409
    );
    let r = h.req("DELETE", &format!("/v2.0/security-groups/{web}"), None);
    assert_eq!(r.status, 409);
    assert_eq!(err_type(&r), "SecurityGroupInUse");
    let r = h.req("DELETE", &format!("/v2.0/security-groups/{id}"), None);
    assert_eq!(r.status, 204);
    assert!(r.body.is_null());
    assert_eq!(
        h.req("DELETE", &format!("/v2.0/security-groups/{id}"), None)
            .status,
        404
    );
    assert!(h.store.model().group("db2").is_none());
}

#[test]
fn deleting_a_group_removes_rules_that_reference_it() {
    let h = Harness::start();
    let web = h.sg_id("web");
    let db = h
        .req(
            "POST",
            "/v2.0/security-groups",
            Some(json!({"security_group": {"name": "db"}})),
        )
        .body["security_group"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        h.rule(&web, json!({"direction": "ingress", "remote_group_id": db}))
            .status,
        201
    );
    assert_eq!(
        h.req("DELETE", &format!("/v2.0/security-groups/{db}"), None)
            .status,
        204
    );
    assert_eq!(h.store.model().group("web").unwrap().rules.len(), 1);
}
