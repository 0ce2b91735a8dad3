//! Address groups, ports and networks, and the not-found answer of every resource.

use super::*;

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
    // A backend (vm-c's tap) only from an admin: a request with the token (#14).
    let h = Harness::start_with(None, Some("admin-token"));
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

/// `GET` of an id that names nothing: 404 with the resource's Neutron type and a message
/// naming the id, for every resource.
#[test]
fn show_of_an_unknown_id_names_it() {
    let h = Harness::start();
    let missing = "00000000-0000-4000-8000-000000000000";
    for (res, ty, what) in [
        ("security-groups", "SecurityGroupNotFound", "Security group"),
        (
            "security-group-rules",
            "SecurityGroupRuleNotFound",
            "Security group rule",
        ),
        ("address-groups", "AddressGroupNotFound", "Address group"),
        ("ports", "PortNotFound", "Port"),
        ("networks", "NetworkNotFound", "Network"),
    ] {
        for id in [missing, "nope"] {
            let r = h.req("GET", &format!("/v2.0/{res}/{id}"), None);
            assert_eq!(r.status, 404, "{res}/{id}");
            assert_eq!(err_type(&r), ty);
            assert_eq!(
                r.body["NeutronError"]["message"],
                format!("{what} {id} could not be found."),
            );
        }
    }
}
