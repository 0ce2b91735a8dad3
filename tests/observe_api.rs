//! The observation endpoints of the management API (#13) without root or traffic: an
//! in-process API server observing a switch without ports (`ApiServer::start_observed`,
//! with a token). Checked: the API's token rule on every observation path, the metrics'
//! content type and a zero for every rule, a rule added through the API named in `stats`
//! under its Neutron ids, a port by name or by id, 404 for an unknown port, 400 / 405 for
//! bad parameters and methods, a capture (the CLI, to standard output) that ends by
//! itself with the port as its interface, and the Neutron API beside them.
//!
//! With traffic: `tests/live_observe.rs`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;

use serde_json::json;
use sgswitch::control::api::ApiServer;
use sgswitch::control::http_client::Client;
use sgswitch::control::store::Store;
use sgswitch::control::{self, config};
use sgswitch::runtime::switch::{Switch, SwitchSettings};

/// `GET path` with a token: (status, content type, body).
fn get_text(addr: SocketAddr, path: &str, token: &str) -> (u16, String, String) {
    let mut c = TcpStream::connect(addr).expect("connect");
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Auth-Token: {token}\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    c.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a head");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let ctype = head
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        })
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    (status, ctype, body.to_string())
}

const IN_PROCESS: &str = r#"
[[security_groups]]
name = "web"
rules = [
  { direction = "ingress", ethertype = "IPv4", protocol = "tcp", port_range_min = 80, port_range_max = 80 },
  { direction = "egress", ethertype = "IPv4" },
]

[[ports]]
name = "vm-a"
mac = "fa:16:3e:00:00:0a"
fixed_ips = ["10.0.0.10"]
security_groups = ["web"]
"#;

#[test]
fn observation_endpoints_in_process() {
    let cfg = config::parse_str(IN_PROCESS, "t.toml").expect("valid config");
    let store = Arc::new(Store::open(None, &cfg).expect("store"));
    let settings = SwitchSettings {
        workers: 1,
        no_pin: true,
        napi_defer_us: 0,
        ..SwitchSettings::default()
    };
    let sw = Arc::new(Switch::start(&store.model(), &settings).expect("switch without ports"));
    control::connect(&store, sw.clone());
    let api = ApiServer::start_observed(
        "127.0.0.1:0".parse().unwrap(),
        Some("tok".into()),
        store.clone(),
        sw.clone(),
    )
    .expect("API server");
    let addr = api.local_addr();
    let url = format!("http://{addr}");
    let c = Client::new(&url, Some("tok".into())).unwrap();
    let anon = Client::new(&url, None).unwrap();
    let status = |c: &Client, m: &str, p: &str| c.raw(m, p, None).unwrap().status;

    // The API's token rule.
    assert_eq!(status(&anon, "GET", "/metrics"), 401);
    assert_eq!(status(&anon, "GET", "/sgswitch/v1/stats"), 401);
    assert_eq!(status(&anon, "GET", "/sgswitch/v1/capture?port=vm-a"), 401);

    // Metrics: text format 0.0.4, every rule with zero hits.
    let (st, ctype, text) = get_text(addr, "/metrics", "tok");
    assert_eq!(st, 200);
    assert_eq!(ctype, "text/plain; version=0.0.4; charset=utf-8");
    let rules: usize = store
        .model()
        .security_groups
        .iter()
        .map(|g| g.rules.len())
        .sum();
    let hits: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("sgswitch_rule_hits_total{"))
        .collect();
    assert_eq!(hits.len(), rules, "{text}");
    assert!(hits.iter().all(|l| l.ends_with(" 0")), "{text}");
    assert!(text.contains("\nsgswitch_policy_epoch 1\n"), "{text}");
    assert!(
        text.contains("sgswitch_port_rx_packets_total{port=\"vm-a\"} 0\n"),
        "{text}"
    );

    // Stats: named from the store, also after a change made through the API.
    let web = store.snapshot().group_id("web").unwrap().to_string();
    let added = c
        .post(
            "/v2.0/security-group-rules",
            &json!({"security_group_rule": {"security_group_id": web, "direction": "ingress",
                    "ethertype": "IPv4", "protocol": "udp", "port_range_min": 53, "port_range_max": 53}}),
        )
        .expect("rule created");
    let rule_id = added["security_group_rule"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let s = c.get("/sgswitch/v1/stats").unwrap();
    let s = &s["stats"];
    assert_eq!(s["epoch"], 2);
    assert_eq!(s["ports"][0]["name"], "vm-a");
    let new_rule = s["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule_id"] == rule_id.as_str())
        .unwrap_or_else(|| panic!("rule {rule_id} not in {s:#}"));
    assert_eq!(new_rule["group"], "web");
    assert_eq!(new_rule["group_id"], web.as_str());
    assert_eq!(new_rule["rule"], "ingress IPv4 udp 53 from any");
    assert_eq!(new_rule["hits"], 0);

    // Connection tracking and captures: ports by name or id; errors.
    let port_id = store.snapshot().meta.ports[0].id.to_string();
    let v = c
        .get(&format!("/sgswitch/v1/conntrack?port={port_id}"))
        .unwrap();
    assert_eq!(v, json!({"conntrack": []}));
    let r = c
        .raw("GET", "/sgswitch/v1/conntrack?port=nope", None)
        .unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(r.body["NeutronError"]["type"], "PortNotFound");
    assert!(r.body["NeutronError"]["message"]
        .as_str()
        .unwrap()
        .contains("nope"));
    assert_eq!(status(&c, "DELETE", "/sgswitch/v1/conntrack"), 400);
    let v = c.delete("/sgswitch/v1/conntrack?port=vm-a").unwrap();
    assert_eq!(v, json!({"port": "vm-a", "flushed": 0}));
    assert_eq!(status(&c, "GET", "/sgswitch/v1/capture?port=nope"), 404);
    assert_eq!(status(&c, "GET", "/sgswitch/v1/capture"), 400);
    assert_eq!(
        status(&c, "GET", "/sgswitch/v1/capture?port=vm-a&count=0"),
        400
    );
    assert_eq!(status(&c, "POST", "/metrics"), 405);
    assert_eq!(status(&c, "PUT", "/sgswitch/v1/stats"), 405);
    assert_eq!(status(&c, "GET", "/sgswitch/v1/nothing"), 404);
    assert_eq!(status(&c, "GET", "/v2.0/ports"), 200);

    let o = Command::new(env!("CARGO_BIN_EXE_sgswitch"))
        .args([
            "capture",
            "--api",
            &url,
            "--token",
            "tok",
            "--port",
            "vm-a",
            "--duration",
            "0.3",
            "-w",
            "-",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run sgswitch capture");
    assert!(o.status.success(), "{o:?}");
    let mut r = sgswitch::port::pcap::CaptureReader::new(&o.stdout[..]).expect("pcapng");
    let mut buf = Vec::new();
    assert!(
        r.next_frame(&mut buf).unwrap().is_none(),
        "no traffic, no frame"
    );
    assert_eq!(r.interfaces()[0].name.as_deref(), Some("vm-a"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("0 frames captured from port vm-a"), "{err}");

    api.shutdown();
    sw.shutdown();
}
