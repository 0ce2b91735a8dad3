//! The management API through HTTP: every endpoint, status code and validation case of
//! security-groups.md §3, atomicity (a rejected change changes nothing), the apply hook,
//! request checking and the token.

mod api_common;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use api_common::{err_type, Harness};
use serde_json::{json, Value};
use sgswitch::control::api::{ApiError, ApiServer};
use sgswitch::control::http_client::Client;
use sgswitch::control::store::Store;

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
fn rule_create_show_list_delete() {
    let h = Harness::start();
    let web = h.sg_id("web");
    let r = h.rule(
        &web,
        json!({"direction": "ingress", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "10.0.0.7/24"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let rule = &r.body["security_group_rule"];
    let rid = rule["id"].as_str().unwrap().to_string();
    assert_eq!(rule["ethertype"], "IPv4");
    assert_eq!(rule["protocol"], "tcp");
    assert_eq!(rule["port_range_min"], 22);
    assert_eq!(rule["port_range_max"], 22);
    assert_eq!(rule["remote_ip_prefix"], "10.0.0.7/24");
    assert_eq!(rule["normalized_cidr"], "10.0.0.0/24");
    assert!(rule["remote_group_id"].is_null());
    assert!(rule["remote_address_group_id"].is_null());
    assert_eq!(rule["security_group_id"], json!(web));
    // The hook saw the rule.
    let last = h.published.lock().unwrap().last().unwrap().clone();
    assert_eq!(last.group("web").unwrap().rules.len(), 2);

    let r = h.req("GET", &format!("/v2.0/security-group-rules/{rid}"), None);
    assert_eq!(r.status, 200);
    assert_eq!(r.body["security_group_rule"]["id"], json!(rid));
    let r = h.req(
        "GET",
        &format!("/v2.0/security-group-rules?security_group_id={web}"),
        None,
    );
    assert_eq!(r.body["security_group_rules"].as_array().unwrap().len(), 2);
    let r = h.req(
        "GET",
        &format!("/v2.0/security-group-rules?security_group_id={web}&port_range_min=22&direction=ingress"),
        None,
    );
    assert_eq!(r.body["security_group_rules"].as_array().unwrap().len(), 1);
    let r = h.req("GET", "/v2.0/security-group-rules?protocol=tcp", None);
    assert_eq!(r.body["security_group_rules"].as_array().unwrap().len(), 2);
    // The group embeds it.
    let r = h.req("GET", &format!("/v2.0/security-groups/{web}"), None);
    assert_eq!(
        r.body["security_group"]["security_group_rules"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Rules are immutable.
    assert_eq!(
        h.req(
            "PUT",
            &format!("/v2.0/security-group-rules/{rid}"),
            Some(json!({"security_group_rule": {"description": "x"}}))
        )
        .status,
        400
    );
    // Delete.
    let r = h.req("DELETE", &format!("/v2.0/security-group-rules/{rid}"), None);
    assert_eq!(r.status, 204);
    let r = h.req("DELETE", &format!("/v2.0/security-group-rules/{rid}"), None);
    assert_eq!(r.status, 404);
    assert_eq!(err_type(&r), "SecurityGroupRuleNotFound");
    assert_eq!(
        h.req("GET", &format!("/v2.0/security-group-rules/{rid}"), None)
            .status,
        404
    );
    assert_eq!(h.store.model().group("web").unwrap().rules.len(), 1);
}

#[test]
fn rule_validation_cases_of_section_3() {
    let h = Harness::start();
    let web = h.sg_id("web");
    let office = {
        let r = h.req("GET", "/v2.0/address-groups?name=office", None);
        r.body["address_groups"][0]["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let ing = |extra: Value| {
        let mut v = json!({"direction": "ingress"});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    };
    // (fields, expected status)
    let cases: Vec<(Value, u16)> = vec![
        // §10 protocol names / numbers / junk
        (ing(json!({"protocol": "bogus"})), 400),
        (ing(json!({"protocol": "256"})), 400),
        (ing(json!({"protocol": -1})), 400),
        // §13 IPv6-only protocol with IPv4
        (ing(json!({"protocol": "ipv6-icmp"})), 400),
        (ing(json!({"protocol": "58"})), 400),
        // §14 ports without protocol
        (
            ing(json!({"port_range_min": 22, "port_range_max": 22})),
            400,
        ),
        (
            ing(json!({"protocol": "any", "port_range_min": 22, "port_range_max": 22})),
            400,
        ),
        // §15 port checks
        (
            ing(json!({"protocol": "tcp", "port_range_min": 0, "port_range_max": 10})),
            400,
        ),
        (ing(json!({"protocol": "tcp", "port_range_min": 22})), 400),
        (ing(json!({"protocol": "tcp", "port_range_max": 22})), 400),
        (
            ing(json!({"protocol": "udp", "port_range_min": 90, "port_range_max": 80})),
            400,
        ),
        (
            ing(json!({"protocol": "tcp", "port_range_min": 1, "port_range_max": 65536})),
            400,
        ),
        (
            ing(json!({"protocol": "tcp", "port_range_min": "x", "port_range_max": 2})),
            400,
        ),
        // §16 ICMP type/code
        (ing(json!({"protocol": "icmp", "port_range_min": 256})), 400),
        (
            ing(json!({"protocol": "icmp", "port_range_min": 8, "port_range_max": 256})),
            400,
        ),
        (ing(json!({"protocol": "icmp", "port_range_max": 0})), 400),
        // §17 ports for a protocol without ports
        (
            ing(json!({"protocol": "gre", "port_range_min": 1, "port_range_max": 2})),
            400,
        ),
        // §18 prefixes
        (ing(json!({"remote_ip_prefix": "10.0.0.0/33"})), 400),
        (ing(json!({"remote_ip_prefix": "nonsense"})), 400),
        (ing(json!({"remote_ip_prefix": "fd00::/64"})), 400),
        (
            ing(json!({"ethertype": "IPv6", "remote_ip_prefix": "10.0.0.0/8"})),
            400,
        ),
        // §19 remotes, references, direction, ethertype
        (
            ing(json!({"remote_ip_prefix": "10.0.0.0/8", "remote_group_id": web})),
            400,
        ),
        (
            ing(json!({"remote_group_id": web, "remote_address_group_id": office})),
            400,
        ),
        (
            ing(json!({"remote_group_id": "00000000-0000-4000-8000-000000000000"})),
            404,
        ),
        (
            ing(json!({"remote_address_group_id": "00000000-0000-4000-8000-000000000000"})),
            404,
        ),
        (json!({"direction": "sideways"}), 400),
        (ing(json!({"ethertype": "IPv5"})), 400),
        // §20 duplicate of the seeded rule (tcp 80, any remote; 0.0.0.0/0 == any; 6 == tcp)
        (
            ing(json!({"protocol": "tcp", "port_range_min": 80, "port_range_max": 80})),
            409,
        ),
        (
            ing(
                json!({"protocol": "6", "port_range_min": 80, "port_range_max": 80, "remote_ip_prefix": "0.0.0.0/0"}),
            ),
            409,
        ),
        // wrong JSON types
        (ing(json!({"protocol": true})), 400),
        (json!({"direction": 5}), 400),
        (ing(json!({"remote_ip_prefix": 10})), 400),
    ];
    let before = h.store.snapshot();
    for (fields, status) in &cases {
        let r = h.rule(&web, fields.clone());
        assert_eq!(r.status, *status, "{fields}: {}", r.body);
        assert!(r.body["NeutronError"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    // None of them changed anything or reached the dataplane.
    assert_eq!(*h.store.snapshot(), *before);
    assert_eq!(h.published_count(), 0);

    // Unknown security_group_id: 404; missing direction: 400.
    let r = h.rule(
        "00000000-0000-4000-8000-000000000000",
        json!({"direction": "ingress"}),
    );
    assert_eq!(r.status, 404);
    let r = h.req(
        "POST",
        "/v2.0/security-group-rules",
        Some(json!({"security_group_rule": {"security_group_id": web}})),
    );
    assert_eq!(r.status, 400);

    // The duplicate message names the existing rule.
    let existing = before.meta.groups[before.group_by_name("web").unwrap()].rules[0].id;
    let r = h.rule(&web, json!({"direction": "ingress", "protocol": "tcp", "port_range_min": 80, "port_range_max": 80}));
    assert_eq!(err_type(&r), "SecurityGroupRuleExists");
    assert_eq!(
        r.body["NeutronError"]["message"],
        format!("Security group rule already exists. Rule id is {existing}.")
    );

    // Accepted forms and their canonical answers.
    let ok = |fields: Value| {
        let r = h.rule(&web, fields.clone());
        assert_eq!(r.status, 201, "{fields}: {}", r.body);
        r.body["security_group_rule"].clone()
    };
    // §15: 1..65535 is "all ports".
    let r = ok(
        json!({"direction": "ingress", "protocol": "udp", "port_range_min": 1, "port_range_max": 65535}),
    );
    assert!(r["port_range_min"].is_null() && r["port_range_max"].is_null());
    // §12: IPv6 + icmp is stored as ipv6-icmp.
    let r = ok(
        json!({"direction": "ingress", "ethertype": "ipv6", "protocol": "icmp", "port_range_min": 128}),
    );
    assert_eq!(r["protocol"], "ipv6-icmp");
    assert_eq!(r["ethertype"], "IPv6");
    assert!(r["port_range_max"].is_null());
    // §16: no min<=max check for ICMP.
    ok(
        json!({"direction": "ingress", "protocol": "icmp", "port_range_min": 8, "port_range_max": 5}),
    );
    // §18: bare address gets /32.
    let r = ok(
        json!({"direction": "egress", "protocol": "tcp", "port_range_min": "443", "port_range_max": "443", "remote_ip_prefix": "192.0.2.1"}),
    );
    assert_eq!(r["remote_ip_prefix"], "192.0.2.1/32");
    // Remote group and address group by id.
    let r = ok(json!({"direction": "ingress", "protocol": "icmp", "remote_group_id": web}));
    assert_eq!(r["remote_group_id"], json!(web));
    let r =
        ok(json!({"direction": "ingress", "protocol": "icmp", "remote_address_group_id": office}));
    assert_eq!(r["remote_address_group_id"], json!(office));
    // §11, §20: protocol 0 matches like any, but Neutron stores "0" (not null), so a 0
    // rule beside an otherwise identical any rule is a second rule; each is echoed as
    // Neutron would (null for any, "0" for 0), and 0 / "0" / ip stay one protocol.
    let r =
        ok(json!({"direction": "egress", "protocol": "any", "remote_ip_prefix": "203.0.113.0/24"}));
    assert!(r["protocol"].is_null(), "{r}");
    let r = ok(json!({"direction": "egress", "protocol": 0, "remote_ip_prefix": "203.0.113.0/24"}));
    assert_eq!(r["protocol"], "0");
    let id = r["id"].as_str().unwrap().to_string();
    let shown = h.req("GET", &format!("/v2.0/security-group-rules/{id}"), None);
    assert_eq!(shown.status, 200);
    assert_eq!(shown.body["security_group_rule"]["protocol"], "0");
    for zero in [json!("0"), json!("ip"), json!(0)] {
        let r = h.rule(
            &web,
            json!({"direction": "egress", "protocol": zero, "remote_ip_prefix": "203.0.113.0/24"}),
        );
        assert_eq!(r.status, 409, "{zero}: {}", r.body);
    }
    let r = h.rule(
        &web,
        json!({"direction": "egress", "remote_ip_prefix": "203.0.113.0/24"}),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    // The other order: "0" first, then no protocol.
    let r =
        ok(json!({"direction": "ingress", "protocol": "0", "remote_ip_prefix": "198.51.100.0/24"}));
    assert_eq!(r["protocol"], "0");
    let r = ok(json!({"direction": "ingress", "remote_ip_prefix": "198.51.100.0/24"}));
    assert!(r["protocol"].is_null(), "{r}");
}

#[test]
fn bulk_rule_create_is_all_or_nothing() {
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
    let base = h.published_count();
    let r = h.req(
        "POST",
        "/v2.0/security-group-rules",
        Some(json!({"security_group_rules": [
            {"security_group_id": web, "direction": "ingress", "protocol": "tcp", "port_range_min": 443, "port_range_max": 443},
            {"security_group_id": db, "direction": "ingress", "protocol": "tcp", "port_range_min": 5432, "port_range_max": 5432, "remote_group_id": web},
        ]})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let rules = r.body["security_group_rules"].as_array().unwrap();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[1]["remote_group_id"], json!(web));
    assert_eq!(
        h.published_count(),
        base + 1,
        "one publication for the whole bulk"
    );
    // A duplicate inside one bulk: 409, nothing created.
    let before = h.store.snapshot();
    let same = json!({"security_group_id": web, "direction": "egress", "protocol": "udp", "port_range_min": 53, "port_range_max": 53, "remote_ip_prefix": "10.0.0.0/8"});
    let r = h.req(
        "POST",
        "/v2.0/security-group-rules",
        Some(json!({"security_group_rules": [same.clone(), same]})),
    );
    assert_eq!(r.status, 409);
    // A bad rule after a good one: 400, nothing created.
    let r = h.req(
        "POST",
        "/v2.0/security-group-rules",
        Some(json!({"security_group_rules": [
            {"security_group_id": web, "direction": "egress", "protocol": "udp", "port_range_min": 53, "port_range_max": 53},
            {"security_group_id": web, "direction": "egress", "protocol": "udp", "port_range_min": 0, "port_range_max": 53},
        ]})),
    );
    assert_eq!(r.status, 400);
    assert_eq!(*h.store.snapshot(), *before);
    assert_eq!(h.published_count(), base + 1);
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

#[test]
fn address_groups() {
    let h = Harness::start();
    let r = h.req(
        "POST",
        "/v2.0/address-groups",
        Some(json!({"address_group": {"name": "lab", "description": "d", "addresses": ["10.1.0.7/16", "2001:db8::/64"]}})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let ag = &r.body["address_group"];
    let id = ag["id"].as_str().unwrap().to_string();
    assert_eq!(ag["addresses"], json!(["10.1.0.0/16", "2001:db8::/64"]));
    assert_eq!(
        h.req("GET", &format!("/v2.0/address-groups/{id}"), None)
            .status,
        200
    );
    assert_eq!(h.req("GET", "/v2.0/address-groups/nope", None).status, 404);
    let r = h.req("GET", "/v2.0/address-groups?name=lab", None);
    assert_eq!(r.body["address_groups"].as_array().unwrap().len(), 1);
    // Duplicate name 409, bad CIDR 400.
    let r = h.req(
        "POST",
        "/v2.0/address-groups",
        Some(json!({"address_group": {"name": "lab"}})),
    );
    assert_eq!(r.status, 409);
    let r = h.req(
        "POST",
        "/v2.0/address-groups",
        Some(json!({"address_group": {"name": "x", "addresses": ["10.0.0.0/40"]}})),
    );
    assert_eq!(r.status, 400);
    // add / remove
    let r = h.req(
        "PUT",
        &format!("/v2.0/address-groups/{id}/add_addresses"),
        Some(json!({"addresses": ["192.0.2.0/24"]})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["address_group"]["addresses"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let r = h.req(
        "PUT",
        &format!("/v2.0/address-groups/{id}/add_addresses"),
        Some(json!({"addresses": ["192.0.2.0/24"]})),
    );
    assert_eq!(r.status, 400);
    let r = h.req(
        "PUT",
        &format!("/v2.0/address-groups/{id}/remove_addresses"),
        Some(json!({"addresses": ["10.1.0.0/16"]})),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["address_group"]["addresses"],
        json!(["2001:db8::/64", "192.0.2.0/24"])
    );
    let r = h.req(
        "PUT",
        &format!("/v2.0/address-groups/{id}/remove_addresses"),
        Some(json!({"addresses": ["10.1.0.0/16"]})),
    );
    assert_eq!(r.status, 400);
    // update name
    let r = h.req(
        "PUT",
        &format!("/v2.0/address-groups/{id}"),
        Some(json!({"address_group": {"name": "lab2"}})),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body["address_group"]["name"], "lab2");
    // in use → 409; after the rule is gone → 204.
    let web = h.sg_id("web");
    let rule = h.rule(
        &web,
        json!({"direction": "ingress", "remote_address_group_id": id}),
    );
    assert_eq!(rule.status, 201);
    assert_eq!(
        h.req("DELETE", &format!("/v2.0/address-groups/{id}"), None)
            .status,
        409
    );
    let rid = rule.body["security_group_rule"]["id"].as_str().unwrap();
    assert_eq!(
        h.req("DELETE", &format!("/v2.0/security-group-rules/{rid}"), None)
            .status,
        204
    );
    assert_eq!(
        h.req("DELETE", &format!("/v2.0/address-groups/{id}"), None)
            .status,
        204
    );
    assert_eq!(
        h.req("DELETE", &format!("/v2.0/address-groups/{id}"), None)
            .status,
        404
    );
}

#[test]
fn ports_and_networks() {
    let h = Harness::start();
    let r = h.req("GET", "/v2.0/networks", None);
    let nets = r.body["networks"].as_array().unwrap();
    assert_eq!(nets.len(), 2);
    let net1 = nets.iter().find(|n| n["name"] == "net1").unwrap();
    let net1_id = net1["id"].as_str().unwrap().to_string();
    assert_eq!(net1["status"], "ACTIVE");
    assert_eq!(
        h.req("GET", &format!("/v2.0/networks/{net1_id}"), None)
            .body["network"]["name"],
        "net1"
    );
    assert_eq!(h.req("GET", "/v2.0/networks/net1", None).status, 404);

    let r = h.req("GET", "/v2.0/ports", None);
    assert_eq!(r.body["ports"].as_array().unwrap().len(), 2);
    let a = h.port_id("vm-a");
    let r = h.req("GET", &format!("/v2.0/ports/{a}"), None);
    let p = &r.body["port"];
    assert_eq!(p["mac_address"], "fa:16:3e:00:00:0a");
    assert_eq!(p["network_id"], json!(net1_id));
    assert_eq!(p["fixed_ips"][0]["ip_address"], "10.0.0.10");
    assert!(p["fixed_ips"][0]["subnet_id"].is_string());
    assert_ne!(
        p["fixed_ips"][0]["subnet_id"],
        p["fixed_ips"][1]["subnet_id"]
    );
    assert_eq!(p["port_security_enabled"], true);
    assert_eq!(p["status"], "ACTIVE");
    assert_eq!(p["admin_state_up"], true);
    assert_eq!(p["security_groups"], json!([h.sg_id("web")]));
    for q in [
        "name=vm-a".to_string(),
        format!("id={a}"),
        "mac_address=fa:16:3e:00:00:0a".to_string(),
        // By group id, by name (the openstack client sends the name as typed), and as
        // the client's list literal.
        format!("security_groups={}", h.sg_id("web")),
        "security_groups=web".to_string(),
        "security_groups=%5B%27web%27%5D".to_string(),
    ] {
        let r = h.req("GET", &format!("/v2.0/ports?{q}"), None);
        assert_eq!(r.body["ports"].as_array().unwrap().len(), 1, "{q}");
    }
    let r = h.req("GET", &format!("/v2.0/ports?network_id={net1_id}"), None);
    assert_eq!(r.body["ports"].as_array().unwrap().len(), 2);
    assert_eq!(h.req("GET", "/v2.0/ports/vm-a", None).status, 404);

    // Update security_groups (replaces), name, allowed address pairs.
    let web = h.sg_id("web");
    let def = h.sg_id("default");
    let nostate = h.sg_id("nostate");
    let put = |body: Value| {
        h.req(
            "PUT",
            &format!("/v2.0/ports/{a}"),
            Some(json!({ "port": body })),
        )
    };
    let r = put(json!({"security_groups": [def, web], "name": "vm-a2"}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["port"]["security_groups"], json!([def, web]));
    assert_eq!(r.body["port"]["name"], "vm-a2");
    assert_eq!(r.body["port"]["revision_number"], 1);
    let last = h.published.lock().unwrap().last().unwrap().clone();
    assert_eq!(
        last.port("vm-a2").unwrap().security_groups,
        ["default", "web"]
    );
    let r = put(json!({"allowed_address_pairs": [{"ip_address": "10.0.0.100"}]}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["port"]["allowed_address_pairs"],
        json!([{"ip_address": "10.0.0.100", "mac_address": "fa:16:3e:00:00:0a"}])
    );
    // §22 errors.
    let before = h.store.snapshot();
    let n = h.published_count();
    assert_eq!(
        put(json!({"security_groups": ["00000000-0000-4000-8000-000000000000"]})).status,
        404
    );
    assert_eq!(put(json!({"security_groups": [web, web]})).status, 400);
    assert_eq!(put(json!({"security_groups": [web, nostate]})).status, 409);
    assert_eq!(put(json!({"port_security_enabled": false})).status, 400);
    assert_eq!(put(json!({"name": "vm-b"})).status, 409);
    assert_eq!(put(json!({"mac_address": "fa:16:3e:00:00:01"})).status, 400);
    assert_eq!(put(json!({"security_groups": "web"})).status, 400);
    assert_eq!(*h.store.snapshot(), *before);
    assert_eq!(h.published_count(), n);
    // Port security off with no groups and no pairs.
    let r = put(
        json!({"port_security_enabled": false, "security_groups": [], "allowed_address_pairs": []}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["port"]["security_groups"], json!([]));
    // A bound stateless group can now not flip, and the group in use cannot be deleted.
    let b = h.port_id("vm-b");
    let r = h.req(
        "PUT",
        &format!("/v2.0/ports/{b}"),
        Some(json!({"port": {"security_groups": [nostate]}})),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        h.req("DELETE", &format!("/v2.0/security-groups/{nostate}"), None)
            .status,
        409
    );

    // Hot-plug: create with a backend, show it, delete it.
    let r = h.req(
        "POST",
        "/v2.0/ports",
        Some(json!({"port": {
            "name": "vm-c", "network_id": net1_id, "mac_address": "fa:16:3e:00:00:0c",
            "fixed_ips": [{"ip_address": "10.0.0.12"}], "security_groups": [web],
            "binding:profile": {"type": "tap", "ifname": "tap-c", "vnet_hdr": true}
        }})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let c = r.body["port"]["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["port"]["binding:profile"]["ifname"], "tap-c");
    let last = h.published.lock().unwrap().last().unwrap().clone();
    assert!(last.port("vm-c").unwrap().backend.is_some());
    // Default groups and a generated MAC when omitted.
    let r = h.req(
        "POST",
        "/v2.0/ports",
        Some(json!({"port": {"name": "vm-d", "network_id": net1_id}})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["port"]["security_groups"], json!([def]));
    assert!(r.body["port"]["mac_address"]
        .as_str()
        .unwrap()
        .starts_with("fa:16:3e:"));
    // Errors: IP in use 409, unknown network 404, bad backend 400.
    let mk = |extra: Value| {
        let mut p = json!({"name": "vm-e", "network_id": net1_id});
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        h.req("POST", "/v2.0/ports", Some(json!({ "port": p })))
    };
    assert_eq!(
        mk(json!({"fixed_ips": [{"ip_address": "10.0.0.12"}]})).status,
        409
    );
    assert_eq!(mk(json!({"network_id": "nope"})).status, 404);
    assert_eq!(
        mk(json!({"binding:profile": {"type": "vhost"}})).status,
        400
    );
    assert_eq!(mk(json!({"mac_address": "01:00:5e:00:00:01"})).status, 400);
    assert_eq!(
        h.req("DELETE", &format!("/v2.0/ports/{c}"), None).status,
        204
    );
    assert_eq!(
        h.req("DELETE", &format!("/v2.0/ports/{c}"), None).status,
        404
    );
    assert!(h.store.model().port("vm-c").is_none());
}

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
fn malformed_bodies() {
    let h = Harness::start();
    let raw = |method: &str, path: &str, body: &[u8]| {
        h.client.raw_bytes(method, path, Some(body), &[]).unwrap()
    };
    let r = raw("POST", "/v2.0/security-groups", b"{not json");
    assert_eq!(r.status, 400);
    assert!(r.body["NeutronError"]["message"]
        .as_str()
        .unwrap()
        .contains("Malformed JSON"));
    assert_eq!(raw("POST", "/v2.0/security-groups", b"[]").status, 400);
    assert_eq!(raw("POST", "/v2.0/security-groups", b"").status, 400);
    assert_eq!(
        raw("POST", "/v2.0/security-groups", b"{\"security_group\": 3}").status,
        400
    );
    // Unknown fields at both levels, read-only fields.
    let r = raw(
        "POST",
        "/v2.0/security-groups",
        br#"{"security_group": {"name": "x", "colour": "red"}}"#,
    );
    assert_eq!(r.status, 400);
    assert!(r.body["NeutronError"]["message"]
        .as_str()
        .unwrap()
        .contains("colour"));
    assert_eq!(
        raw(
            "POST",
            "/v2.0/security-groups",
            br#"{"security_group": {"name": "x"}, "extra": 1}"#
        )
        .status,
        400
    );
    assert_eq!(
        raw(
            "POST",
            "/v2.0/security-groups",
            br#"{"security_group": {"name": "x", "id": "y"}}"#
        )
        .status,
        400
    );
    // Wrong types.
    assert_eq!(
        raw(
            "POST",
            "/v2.0/security-groups",
            br#"{"security_group": {"name": 1}}"#
        )
        .status,
        400
    );
    assert_eq!(
        raw(
            "POST",
            "/v2.0/security-groups",
            br#"{"security_group": {"name": "x", "stateful": "maybe"}}"#
        )
        .status,
        400
    );
    // tenant_id / project_id are accepted.
    let r = raw(
        "POST",
        "/v2.0/security-groups",
        br#"{"security_group": {"name": "x", "tenant_id": "t", "project_id": "p"}}"#,
    );
    assert_eq!(r.status, 201);
    // Too large: 413 before reading.
    let big = vec![b' '; sgswitch::control::api::MAX_BODY + 1];
    let r = raw("POST", "/v2.0/security-groups", &big);
    assert_eq!(r.status, 413);
    assert_eq!(h.published_count(), 1);
}

#[test]
fn token_is_required_and_checked() {
    let h = Harness::start_with(None, Some("s3cret"));
    assert_eq!(h.req("GET", "/v2.0/security-groups", None).status, 200);
    let anon = Client::new(&h.endpoint(), None).unwrap();
    let r = anon.raw("GET", "/v2.0/security-groups", None).unwrap();
    assert_eq!(r.status, 401);
    let wrong = Client::new(&h.endpoint(), Some("s3cre".into())).unwrap();
    assert_eq!(wrong.raw("GET", "/", None).unwrap().status, 401);
    let r = wrong
        .raw(
            "POST",
            "/v2.0/security-groups",
            Some(&json!({"security_group": {"name": "x"}})),
        )
        .unwrap();
    assert_eq!(r.status, 401);
    assert!(h.store.model().group("x").is_none());
}

#[test]
fn non_loopback_without_token_is_refused() {
    let store = Arc::new(Store::open(None, &api_common::seed()).unwrap());
    let addr: SocketAddr = "0.0.0.0:0".parse().unwrap();
    let err = ApiServer::start(addr, None, Arc::clone(&store))
        .err()
        .expect("refused");
    assert!(matches!(err, ApiError::TokenRequired(_)));
    assert!(err.to_string().contains("token"));
    let err = ApiServer::start(addr, Some(String::new()), Arc::clone(&store)).err();
    assert!(matches!(err, Some(ApiError::TokenRequired(_))));
    // With a token it starts.
    let h = ApiServer::start(addr, Some("t".into()), store).expect("starts with a token");
    h.shutdown();
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

/// Replace every hyphenated UUID in `text` by its name in `names`, or by `{uuid}`.
fn unid(text: &str, names: &[(String, &str)]) -> String {
    let b = text.as_bytes();
    let is_uuid = |s: &[u8]| {
        s.len() == 36
            && s.iter().enumerate().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => *c == b'-',
                _ => c.is_ascii_hexdigit(),
            })
    };
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        if i + 36 <= b.len() && is_uuid(&b[i..i + 36]) {
            let id = &text[i..i + 36];
            match names.iter().find(|(v, _)| v == id) {
                Some((_, name)) => out.push_str(&format!("{{{name}}}")),
                None => out.push_str("{uuid}"),
            }
            i += 36;
        } else {
            let c = text[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// Every way a request body can be wrong (and some right), with the exact status, type
/// and message of the answer, as recorded in `tests/fixtures/api-bodies.txt` (pairs of
/// lines: `METHOD PATH BODY`, then `=> STATUS TYPE MESSAGE`). The cases run in order on
/// one server (accepted ones change its state). `SGSWITCH_BLESS=1` rewrites the file
/// from the running code.
#[test]
fn request_body_answers_are_stable() {
    let h = Harness::start();
    let snap = h.store.snapshot();
    let names: Vec<(String, &str)> = vec![
        (h.sg_id("web"), "web"),
        (h.port_id("vm-a"), "vm-a"),
        (snap.network_id("net1").unwrap().to_string(), "net1"),
        (
            snap.address_group_id("office").unwrap().to_string(),
            "office",
        ),
        (
            snap.meta.groups[snap.group_by_name("web").unwrap()].rules[0]
                .id
                .to_string(),
            "rule",
        ),
    ];
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/api-bodies.txt");
    let text = std::fs::read_to_string(path).unwrap();
    let mut blessed = String::new();
    let mut failures = Vec::new();
    let mut lines = text.lines();
    while let Some(case) = lines.next() {
        let expected = lines.next().unwrap_or("");
        let mut parts = case.splitn(3, ' ');
        let (method, url, body) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap_or(""),
        );
        let sub = |s: &str| {
            names.iter().fold(s.to_string(), |s, (id, n)| {
                s.replace(&format!("{{{n}}}"), id)
            })
        };
        let r = h
            .client
            .raw_bytes(method, &sub(url), Some(sub(body).as_bytes()), &[])
            .unwrap();
        let got = format!(
            "=> {} {} {}",
            r.status,
            r.body["NeutronError"]["type"].as_str().unwrap_or("-"),
            unid(
                r.body["NeutronError"]["message"].as_str().unwrap_or("-"),
                &names
            )
        );
        if got != expected {
            failures.push(format!("{case}\n  expected {expected}\n  got      {got}"));
        }
        blessed.push_str(&format!("{case}\n{got}\n"));
    }
    if std::env::var_os("SGSWITCH_BLESS").is_some() {
        std::fs::write(path, blessed).unwrap();
        return;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
