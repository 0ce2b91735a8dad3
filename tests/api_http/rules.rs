//! Security-group rules: create, show, list and delete, every validation case of
//! security-groups.md §3, and bulk creation (all or nothing).

use super::*;

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
