//! Explanations of traced frames: stages, rules, conntrack and drops.

use super::*;
use crate::control::config;
use crate::pipeline::IdMap;

const CONFIG: &str = r#"
[[security_groups]]
name = "web"
rules = [
  { direction = "ingress", protocol = "tcp", port_range_min = 80, port_range_max = 80 },
  { direction = "ingress", protocol = "tcp", port_range_min = 22, port_range_max = 22, remote_ip_prefix = "10.0.0.0/24" },
]
[[ports]]
name = "vm-a"
mac = "fa:16:3e:00:00:0a"
fixed_ips = ["10.0.0.10"]
[[ports]]
name = "vm-b"
mac = "fa:16:3e:00:00:0b"
fixed_ips = ["10.0.0.11"]
security_groups = ["web"]
"#;

fn setup() -> (Model, Dataplane) {
    let m = config::parse_str(CONFIG, "t.toml").unwrap().model;
    let dp = Dataplane::compile(&m, 1, &mut IdMap::default());
    (m, dp)
}

fn trace(desc: &str) -> Explanation {
    let (m, dp) = setup();
    let f = packet::frame_for(&m, "vm-a", desc, None, None).unwrap();
    trace_frame(&dp, &m, None, dp.port_index("vm-a").unwrap(), &f, None)
}

#[test]
fn a_new_connection_passes_every_stage() {
    let e = trace("tcp 10.0.0.10:40000 > 10.0.0.11:22 flags S");
    let stages: Vec<(&str, &str)> = e.stages.iter().map(|s| (s.stage, s.result)).collect();
    assert_eq!(
        stages,
        [
            ("parse", "pass"),
            ("port-security", "pass"),
            ("egress", "pass"),
            ("l2", "forward"),
            ("ingress", "pass"),
        ]
    );
    assert_eq!(e.delivered, ["vm-b"]);
    let ing = &e.stages[4];
    let ct = ing.conntrack.as_ref().unwrap();
    assert_eq!(ct.state, "new");
    assert_eq!(ct.created.as_ref().unwrap().state, "SYN_SENT");
    assert!(ing.rule.is_some());
    assert!(
        e.text().contains("verdict: delivered to vm-b"),
        "{}",
        e.text()
    );
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["stages"][4]["conntrack"]["state"], "new");
}

#[test]
fn a_denied_frame_says_where_and_why() {
    let e = trace("tcp 10.0.0.10:40000 > 10.0.0.11:23 flags S");
    assert!(e.delivered.is_empty());
    assert_eq!(e.dropped.len(), 1);
    let d = &e.dropped[0];
    assert_eq!((d.port.as_str(), d.reason), ("vm-b", "ingress-denied"));
    assert_eq!(
        d.why,
        "no ingress rule of vm-b (group web) allows tcp 23 from 10.0.0.10"
    );
    let last = e.stages.last().unwrap();
    assert_eq!((last.stage, last.result), ("ingress", "drop"));
    assert!(e
        .text()
        .contains("verdict: dropped at vm-b (ingress-denied)"));
}

#[test]
fn seeded_entries_make_a_reply_established() {
    let (m, dp) = setup();
    let a = dp.port_index("vm-a").unwrap();
    let b = dp.port_index("vm-b").unwrap();
    // The SYN through a scratch pipeline of our own, then its entries as the seed.
    let mut p = Pipeline::new(&PipelineConfig::from_model(&m));
    let syn =
        packet::frame_for(&m, "vm-a", "tcp 10.0.0.10:4000 > 10.0.0.11:80", None, None).unwrap();
    let mut v = Verdict::default();
    p.process(&dp, a, &syn, 1_000, 0, &mut v);
    assert_eq!(v.delivered, [b]);
    let seed: Vec<CtEntry> = p.conntrack().iter().collect();
    assert_eq!(seed.len(), 2);
    let synack = packet::frame_for(
        &m,
        "vm-b",
        "tcp 10.0.0.11:80 > 10.0.0.10:4000 flags SA",
        None,
        None,
    )
    .unwrap();
    let e = trace_frame(&dp, &m, None, b, &synack, seed);
    assert_eq!(e.delivered, ["vm-a"]);
    let states: Vec<&str> = e
        .stages
        .iter()
        .filter_map(|s| s.conntrack.as_ref().map(|c| c.state))
        .collect();
    assert_eq!(states, ["reply", "reply"]);
    // Without the seed, the lone SYN-ACK is invalid.
    let e = trace_frame(&dp, &m, None, b, &synack, None);
    assert_eq!(e.dropped[0].reason, "invalid-state");
    assert!(
        e.dropped[0].why.contains("flags SA"),
        "{}",
        e.dropped[0].why
    );
}
