//! What the pipeline tells about its work (#13): the packet-log records it writes (an
//! ACCEPT per admitted connection, a DROP per dropped packet, within the rate limit), the
//! steps of a traced frame, per-rule hit counts, and copies of conntrack entries (the
//! seed of a live trace).

use std::net::Ipv4Addr;

use sgswitch::bench::frames::{ipv4_frame, tcp, V4};
use sgswitch::flow::{proto, tcp_flags, DropReason};
use sgswitch::pipeline::{
    CtStep, Dataplane, Disposition, IdMap, L2Step, LogLimits, LogRecord, LogVerdict, Pipeline,
    PipelineConfig, Step, Verdict,
};
use sgswitch::policy::{Direction, LogEvent, Model, NetworkLog, RuleRef};
use sgswitch::wire::Mac;

const A_MAC: Mac = Mac([0xfa, 0x16, 0x3e, 0, 0, 1]);
const B_MAC: Mac = Mac([0xfa, 0x16, 0x3e, 0, 0, 2]);
const A_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

/// Two ports in group `web`: ingress tcp/80 from anywhere (rule 0), ingress tcp/8080
/// from anywhere (rule 1), egress IPv4 anything (rule 2).
fn model(logs: Vec<NetworkLog>) -> Model {
    let text = r#"
[[security_groups]]
name = "web"
rules = [
  { direction = "ingress", ethertype = "IPv4", protocol = "tcp", port_range_min = 80, port_range_max = 80, remote_ip_prefix = "0.0.0.0/0" },
  { direction = "ingress", ethertype = "IPv4", protocol = "tcp", port_range_min = 8080, port_range_max = 8080, remote_ip_prefix = "0.0.0.0/0" },
  { direction = "egress", ethertype = "IPv4" },
]

[[ports]]
name = "a"
mac = "fa:16:3e:00:00:01"
fixed_ips = ["10.0.0.1"]
security_groups = ["web"]

[[ports]]
name = "b"
mac = "fa:16:3e:00:00:02"
fixed_ips = ["10.0.0.2"]
security_groups = ["web"]
"#;
    let mut m = sgswitch::control::config::parse_str(text, "test.toml")
        .expect("valid config")
        .model;
    m.logs = logs;
    m
}

fn log_all(resource: Option<&str>, target: Option<&str>, event: LogEvent) -> NetworkLog {
    NetworkLog {
        name: "l".into(),
        description: String::new(),
        resource: resource.map(str::to_string),
        target: target.map(str::to_string),
        event,
        enabled: true,
    }
}

/// A TCP segment from a to b.
fn a_to_b(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    ipv4_frame(
        B_MAC,
        A_MAC,
        V4::new(A_IP, B_IP, proto::TCP),
        &tcp(sport, dport, flags, 1, 0, &[]),
    )
}

/// A TCP segment from b to a.
fn b_to_a(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    ipv4_frame(
        A_MAC,
        B_MAC,
        V4::new(B_IP, A_IP, proto::TCP),
        &tcp(sport, dport, flags, 1, 2, &[]),
    )
}

struct Rig {
    dp: Dataplane,
    p: Pipeline,
    a: u16,
    b: u16,
}

fn rig(model: &Model, cfg: impl FnOnce(&mut PipelineConfig)) -> Rig {
    let mut ids = IdMap::default();
    let dp = Dataplane::compile(model, 1, &mut ids);
    let mut pcfg = PipelineConfig::from_model(model);
    cfg(&mut pcfg);
    let (a, b) = (dp.port_index("a").unwrap(), dp.port_index("b").unwrap());
    Rig {
        p: Pipeline::new(&pcfg),
        dp,
        a,
        b,
    }
}

impl Rig {
    fn send(&mut self, from: u16, frame: &[u8], now: u64) -> Verdict {
        let mut v = Verdict::default();
        let d = self.p.process(&self.dp, from, frame, now, 0, &mut v);
        assert_eq!(d, Disposition::Decided);
        v
    }

    fn records(&mut self) -> Vec<LogRecord> {
        let mut out = Vec::new();
        self.p.take_log_records(|r| out.push(*r));
        out
    }
}

const WEB80: RuleRef = RuleRef { group: 0, rule: 0 };
const WEB_EGRESS: RuleRef = RuleRef { group: 0, rule: 2 };

#[test]
fn accept_once_per_connection_drop_per_packet() {
    let m = model(vec![log_all(Some("web"), None, LogEvent::All)]);
    let mut r = rig(&m, |_| {});
    let (a, b) = (r.a, r.b);
    // A new connection to tcp/80: admitted at a (egress) and at b (ingress).
    assert_eq!(
        r.send(a, &a_to_b(40000, 80, tcp_flags::SYN), 1).delivered,
        vec![b]
    );
    let recs = r.records();
    assert_eq!(recs.len(), 2, "{recs:?}");
    assert!(recs.iter().all(|x| x.verdict == LogVerdict::Accept));
    assert_eq!(
        (recs[0].port, recs[0].dir, recs[0].rule),
        (a, Direction::Egress, Some(WEB_EGRESS))
    );
    assert_eq!(
        (recs[1].port, recs[1].dir, recs[1].rule),
        (b, Direction::Ingress, Some(WEB80))
    );
    // Its later packets, both ways: no record.
    r.send(b, &b_to_a(80, 40000, tcp_flags::SYN | tcp_flags::ACK), 2);
    r.send(a, &a_to_b(40000, 80, tcp_flags::ACK), 3);
    assert!(r.records().is_empty());
    // Two new connections to tcp/22: each admitted at a (its egress rule: an ACCEPT
    // record there) and dropped at b (no rule: a DROP record, ingress).
    for t in 0..2 {
        let v = r.send(a, &a_to_b(40001 + t, 22, tcp_flags::SYN), 10 + u64::from(t));
        assert_eq!(v.dropped, vec![(b, DropReason::IngressDenied)]);
    }
    let recs = r.records();
    assert_eq!(recs.len(), 4, "{recs:?}");
    for pair in recs.chunks(2) {
        assert_eq!(
            (pair[0].verdict, pair[0].port, pair[0].dir, pair[0].rule),
            (LogVerdict::Accept, a, Direction::Egress, Some(WEB_EGRESS))
        );
        let x = &pair[1];
        assert_eq!(x.verdict, LogVerdict::Drop(DropReason::IngressDenied));
        assert_eq!((x.port, x.dir, x.rule), (b, Direction::Ingress, None));
        assert_eq!(x.key.dport, 22);
    }
    assert_eq!(r.p.log_counters().written, 6);
}

#[test]
fn logs_follow_event_target_and_enabled() {
    // DROP only, on port b only.
    let m = model(vec![log_all(None, Some("b"), LogEvent::Drop)]);
    let mut r = rig(&m, |_| {});
    let (a, b) = (r.a, r.b);
    r.send(a, &a_to_b(40000, 80, tcp_flags::SYN), 1);
    assert!(r.records().is_empty(), "ACCEPT is not logged");
    r.send(a, &a_to_b(40001, 22, tcp_flags::SYN), 2);
    assert_eq!(r.records().len(), 1);
    // A spoofed frame from a is dropped at a: not logged (only b's drops are).
    let spoofed = ipv4_frame(
        B_MAC,
        A_MAC,
        V4::new(Ipv4Addr::new(10, 0, 0, 99), B_IP, proto::TCP),
        &tcp(1, 80, tcp_flags::SYN, 1, 0, &[]),
    );
    assert_eq!(
        r.send(a, &spoofed, 3).dropped,
        vec![(a, DropReason::SpoofedIp)]
    );
    assert!(r.records().is_empty());
    let _ = b;
    // A disabled log records nothing.
    let mut off = log_all(None, None, LogEvent::All);
    off.enabled = false;
    let mut r = rig(&model(vec![off]), |_| {});
    let (a, _) = (r.a, r.b);
    r.send(a, &a_to_b(40000, 80, tcp_flags::SYN), 1);
    r.send(a, &a_to_b(40001, 22, tcp_flags::SYN), 2);
    assert!(r.records().is_empty());
    assert_eq!(r.p.log_counters().written, 0);
}

#[test]
fn a_drop_flood_stays_within_the_rate_limit() {
    let m = model(vec![log_all(None, None, LogEvent::Drop)]);
    let limits = LogLimits {
        rate_limit: 100,
        burst_limit: 25,
    };
    let mut r = rig(&m, |c| c.log_limits = limits);
    let a = r.a;
    // 10,000 denied SYNs over one second (one every 100 µs), drained as a worker does.
    let mut written = 0;
    for i in 0..10_000u64 {
        let now = 1_000_000_000 + i * 100_000;
        r.send(
            a,
            &a_to_b(1024 + (i % 60_000) as u16, 22, tcp_flags::SYN),
            now,
        );
        written += r.records().len();
    }
    // At most the burst plus one second of the rate.
    assert!(written <= 25 + 100, "{written} records");
    assert!(written >= 100, "{written} records");
    let c = r.p.log_counters();
    assert_eq!(c.written as usize, written);
    assert_eq!(c.written + c.suppressed + c.overflow, 10_000);
}

#[test]
fn rule_hits_count_new_connections_per_rule() {
    let m = model(Vec::new());
    let mut r = rig(&m, |_| {});
    let (a, b) = (r.a, r.b);
    for i in 0..3 {
        r.send(a, &a_to_b(40000 + i, 8080, tcp_flags::SYN), 1);
    }
    r.send(a, &a_to_b(41000, 80, tcp_flags::SYN), 1);
    // Established packets do not count.
    r.send(b, &b_to_a(80, 41000, tcp_flags::SYN | tcp_flags::ACK), 2);
    let hits = |rule: RuleRef| {
        let slot = r.dp.rule_slot(rule).unwrap() as usize;
        r.p.rule_hits().get(slot).copied().unwrap_or(0)
    };
    assert_eq!(hits(RuleRef { group: 0, rule: 1 }), 3, "tcp/8080");
    assert_eq!(hits(WEB80), 1, "tcp/80");
    assert_eq!(hits(WEB_EGRESS), 4, "egress of a");
    // Off: nothing counted, same verdicts.
    let mut r = rig(&m, |c| c.rule_hits = false);
    assert_eq!(
        r.send(r.a, &a_to_b(40000, 80, tcp_flags::SYN), 1).delivered,
        vec![r.b]
    );
    assert!(r.p.rule_hits().iter().all(|h| *h == 0));
}

#[test]
fn trace_shows_every_step_of_a_new_connection() {
    let m = model(Vec::new());
    let mut r = rig(&m, |_| {});
    let (a, b) = (r.a, r.b);
    let mut v = Verdict::default();
    let (_, t) =
        r.p.trace(&r.dp, a, &a_to_b(40000, 80, tcp_flags::SYN), 1, &mut v);
    assert_eq!(v.delivered, vec![b]);
    let s = &t.steps;
    assert_eq!(s.len(), 4, "{s:#?}");
    assert_eq!(
        s[0],
        Step::PortSecurity {
            port: a,
            result: Ok(())
        }
    );
    match &s[1] {
        Step::SecurityGroups {
            port,
            dir: Direction::Egress,
            ct: CtStep::New,
            result: Ok(Some(rule)),
            committed: Some(e),
            ..
        } => {
            assert_eq!((*port, *rule), (a, WEB_EGRESS));
            assert_eq!(e.orig.dport, 80);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s[2],
        Step::L2 {
            dest: L2Step::Port(b)
        }
    );
    assert!(matches!(
        &s[3],
        Step::SecurityGroups { port, dir: Direction::Ingress, ct: CtStep::New, result: Ok(Some(WEB80)), committed: Some(_), .. } if *port == b
    ));
    // The reply: established in both zones, no rule.
    let (_, t) = r.p.trace(
        &r.dp,
        b,
        &b_to_a(80, 40000, tcp_flags::SYN | tcp_flags::ACK),
        2,
        &mut v,
    );
    assert_eq!(v.delivered, vec![a]);
    let est: Vec<_> = t
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::SecurityGroups {
                ct: CtStep::Established { reply, .. },
                result: Ok(None),
                ..
            } => Some(*reply),
            _ => None,
        })
        .collect();
    assert_eq!(est, vec![true, true], "{:#?}", t.steps);
    // A denied packet: the drop and where.
    let (_, t) =
        r.p.trace(&r.dp, a, &a_to_b(40001, 22, tcp_flags::SYN), 3, &mut v);
    assert_eq!(v.dropped, vec![(b, DropReason::IngressDenied)]);
    assert!(matches!(
        t.steps.last(),
        Some(Step::SecurityGroups {
            dir: Direction::Ingress,
            result: Err(DropReason::IngressDenied),
            committed: None,
            ..
        })
    ));
    // A lone SYN-ACK: invalid in b's egress zone.
    let (_, t) = r.p.trace(
        &r.dp,
        b,
        &b_to_a(81, 40002, tcp_flags::SYN | tcp_flags::ACK),
        4,
        &mut v,
    );
    assert_eq!(v.dropped, vec![(b, DropReason::InvalidState)]);
    assert!(matches!(
        t.steps.last(),
        Some(Step::SecurityGroups {
            ct: CtStep::Invalid,
            result: Err(DropReason::InvalidState),
            ..
        })
    ));
}

#[test]
fn seeded_entries_carry_a_connection_to_another_pipeline() {
    let m = model(Vec::new());
    let mut live = rig(&m, |_| {});
    let (a, b) = (live.a, live.b);
    live.send(a, &a_to_b(40000, 80, tcp_flags::SYN), 1);
    let entries: Vec<_> = live.p.conntrack().iter().collect();
    assert_eq!(entries.len(), 2, "one entry per zone");
    // A fresh pipeline judges the reply invalid...
    let reply = b_to_a(80, 40000, tcp_flags::SYN | tcp_flags::ACK);
    let mut fresh = rig(&m, |_| {});
    assert_eq!(
        fresh.send(b, &reply, 2).dropped,
        vec![(b, DropReason::InvalidState)]
    );
    // ...a seeded one lets it through, as the live one does.
    let mut seeded = rig(&m, |_| {});
    for e in &entries {
        assert!(seeded.p.seed_conntrack(e));
        assert!(!seeded.p.seed_conntrack(e), "already there");
    }
    let copies: Vec<_> = seeded.p.conntrack().iter().collect();
    for (x, y) in entries.iter().zip(&copies) {
        assert_eq!(
            (
                x.zone,
                x.orig,
                x.state,
                x.seen_reply,
                x.epoch,
                x.tag,
                x.expires_ns
            ),
            (
                y.zone,
                y.orig,
                y.state,
                y.seen_reply,
                y.epoch,
                y.tag,
                y.expires_ns
            )
        );
    }
    assert_eq!(seeded.send(b, &reply, 2).delivered, vec![a]);
    assert_eq!(live.send(b, &reply, 2).delivered, vec![a]);
    // The read-only lookup finds the connection of a packet without changing it.
    let meta = sgswitch::flow::extract(&reply).unwrap();
    let zone_b = live.dp.ports[b as usize].zone;
    let (e, related) = live.p.conntrack().lookup(zone_b, &meta).expect("found");
    assert!(!related);
    assert_eq!(e.orig.dport, 80);
}
