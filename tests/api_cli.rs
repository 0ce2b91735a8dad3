//! The `sgswitch security-group …` / `sgswitch port …` client commands against an
//! in-process API server.

mod api_common;

use std::process::{Command, Output};

use api_common::Harness;
use serde_json::Value;

fn sgswitch(h: &Harness, args: &[&str]) -> Output {
    let mut all: Vec<&str> = args.to_vec();
    let endpoint = h.endpoint();
    all.push("--endpoint");
    all.push(&endpoint);
    Command::new(env!("CARGO_BIN_EXE_sgswitch"))
        .args(&all)
        .output()
        .expect("binary runs")
}

fn ok(h: &Harness, args: &[&str]) -> String {
    let o = sgswitch(h, args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn security_group_and_rule_commands() {
    let h = Harness::start();
    let out = ok(
        &h,
        &[
            "security-group",
            "create",
            "db",
            "--description",
            "databases",
        ],
    );
    assert!(out.contains("name:        db"), "{out}");
    assert!(out.contains("rules (2):"), "{out}");
    let list = ok(&h, &["security-group", "list"]);
    assert!(list.lines().next().unwrap().starts_with("ID"));
    assert!(list.contains("db") && list.contains("default") && list.contains("web"));
    let json: Value = serde_json::from_str(&ok(&h, &["security-group", "list", "--json"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 4);

    // rule create with openstack-like flags, by group name.
    let out = ok(
        &h,
        &[
            "security-group",
            "rule",
            "create",
            "db",
            "--ingress",
            "--protocol",
            "tcp",
            "--dst-port",
            "5432",
            "--remote-group",
            "web",
            "--json",
        ],
    );
    let rule: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rule["port_range_min"], 5432);
    assert_eq!(rule["port_range_max"], 5432);
    assert_eq!(rule["remote_group_id"].as_str().unwrap(), h.sg_id("web"));
    let rid = rule["id"].as_str().unwrap().to_string();
    let out = ok(
        &h,
        &[
            "security-group",
            "rule",
            "create",
            "db",
            "--egress",
            "--protocol",
            "udp",
            "--dst-port",
            "8000:8080",
            "--remote-ip",
            "2001:db8::/64",
        ],
    );
    assert!(
        out.contains("8000:8080") && out.contains("IPv6") && out.contains("egress"),
        "{out}"
    );
    let out = ok(
        &h,
        &[
            "security-group",
            "rule",
            "create",
            "db",
            "--protocol",
            "icmp",
            "--icmp-type",
            "8",
            "--icmp-code",
            "0",
        ],
    );
    assert!(out.contains("type 8 code 0"), "{out}");
    let m = h.store.model();
    assert_eq!(m.group("db").unwrap().rules.len(), 5);

    let out = ok(&h, &["security-group", "rule", "list", "db", "--ingress"]);
    assert_eq!(out.lines().count(), 2 + 2, "{out}");
    assert!(out.contains("group web"));
    let show = ok(&h, &["security-group", "show", "db"]);
    assert!(show.contains("rules (5):"), "{show}");

    // Errors: exit 1 with the API's message.
    let o = sgswitch(
        &h,
        &[
            "security-group",
            "rule",
            "create",
            "db",
            "--protocol",
            "tcp",
            "--dst-port",
            "5432",
            "--remote-group",
            "web",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("already exists"));
    let o = sgswitch(&h, &["security-group", "show", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no security group named"));

    ok(&h, &["security-group", "rule", "delete", &rid]);
    assert_eq!(h.store.model().group("db").unwrap().rules.len(), 4);
    ok(&h, &["security-group", "delete", "db"]);
    assert!(h.store.model().group("db").is_none());
    let o = sgswitch(&h, &["security-group", "delete", "default"]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn port_commands() {
    let h = Harness::start();
    let list = ok(&h, &["port", "list"]);
    assert!(
        list.contains("vm-a") && list.contains("fa:16:3e:00:00:0a") && list.contains("10.0.0.10")
    );
    ok(&h, &["security-group", "create", "db"]);
    let out = ok(
        &h,
        &[
            "port",
            "set",
            "vm-a",
            "--security-group",
            "db",
            "--security-group",
            "default",
        ],
    );
    assert!(out.contains("web,db,default"), "{out}");
    assert_eq!(
        h.store.model().port("vm-a").unwrap().security_groups,
        ["web", "db", "default"]
    );
    ok(&h, &["port", "unset", "vm-a", "--security-group", "web"]);
    assert_eq!(
        h.store.model().port("vm-a").unwrap().security_groups,
        ["db", "default"]
    );
    ok(
        &h,
        &[
            "port",
            "set",
            "vm-a",
            "--no-security-group",
            "--security-group",
            "web",
        ],
    );
    assert_eq!(
        h.store.model().port("vm-a").unwrap().security_groups,
        ["web"]
    );
    let p: Value = serde_json::from_str(&ok(&h, &["port", "show", "vm-a", "--json"])).unwrap();
    assert_eq!(p["name"], "vm-a");
    let o = sgswitch(&h, &["port", "set", "vm-a", "--security-group", "nostate"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("409"));
    // Unreachable endpoint: a clear error.
    let o = Command::new(env!("CARGO_BIN_EXE_sgswitch"))
        .args(["port", "list", "--endpoint", "http://127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot reach"));
}
