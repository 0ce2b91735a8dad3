//! Unit tests of the packet log: the line format, names and ids, the global rate limit
//! and its counters, a full queue, write errors, the file.

use std::io;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::*;
use crate::control::config;
use crate::control::store::Id;
use crate::flow::{DropReason, FlowKey, FAMILY_V4, FAMILY_V6};
use crate::pipeline::LogVerdict;
use crate::policy::{Direction, RuleRef};

const CONFIG: &str = r#"
[[security_groups]]
name = "web"
rules = [
  { direction = "ingress", protocol = "tcp", port_range_min = 80, port_range_max = 80 },
  { direction = "egress" },
]

[[ports]]
name = "vm-a"
mac = "fa:16:3e:00:00:0a"
fixed_ips = ["10.0.0.10"]
security_groups = ["web"]

[[ports]]
name = "vm-b"
mac = "fa:16:3e:00:00:0b"
fixed_ips = ["10.0.0.11"]

[[logs]]
name = "web-accepts"
resource = "web"
event = "ACCEPT"

[[logs]]
name = "vm-b-drops"
target = "vm-b"
event = "DROP"

[[logs]]
name = "off"
enabled = false
"#;

/// A sink the test can read (and make fail or stall).
#[derive(Clone, Default)]
struct Sink {
    data: Arc<Mutex<Vec<u8>>>,
    /// Writes left to fail.
    fail: Arc<Mutex<u32>>,
    /// Held by the test to stall the writer.
    gate: Arc<Mutex<()>>,
}

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let _g = self.gate.lock().unwrap();
        let mut fail = self.fail.lock().unwrap();
        if *fail > 0 {
            *fail -= 1;
            return Err(io::Error::other("disk full"));
        }
        self.data.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Sink {
    fn lines(&self) -> Vec<Value> {
        let data = self.data.lock().unwrap();
        std::str::from_utf8(&data)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn v4(a: [u8; 4]) -> [u8; 16] {
    FlowKey::map_v4(a)
}

fn tcp_key(sport: u16, dport: u16) -> FlowKey {
    FlowKey {
        src: v4([10, 0, 0, 11]),
        dst: v4([10, 0, 0, 10]),
        sport,
        dport,
        proto: 6,
        family: FAMILY_V4,
        _pad: [0; 2],
    }
}

fn accept(time_ns: u64, port: u16, rule: RuleRef) -> LogRecord {
    LogRecord {
        time_ns,
        epoch: 1,
        port,
        dir: Direction::Ingress,
        verdict: LogVerdict::Accept,
        rule: Some(rule),
        key: tcp_key(40000, 80),
    }
}

fn drop_at(time_ns: u64, port: u16) -> LogRecord {
    LogRecord {
        time_ns,
        epoch: 1,
        port,
        dir: Direction::Ingress,
        verdict: LogVerdict::Drop(DropReason::IngressDenied),
        rule: None,
        key: FlowKey {
            src: [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a],
            dst: [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b],
            sport: 7,
            dport: (128 << 8) | 3,
            proto: 58,
            family: FAMILY_V6,
            _pad: [0; 2],
        },
    }
}

fn settings(rate: u32, burst: u32) -> LoggingSettings {
    LoggingSettings {
        level: None,
        file: None,
        rate_limit: rate,
        burst_limit: burst,
    }
}

#[test]
fn time_is_rfc3339_with_microseconds() {
    assert_eq!(
        format::rfc3339_micros(1_795_629_600_123_456_789),
        "2026-11-25T18:00:00.123456Z"
    );
    assert_eq!(format::rfc3339_micros(0), "1970-01-01T00:00:00.000000Z");
}

#[test]
fn lines_name_the_record_with_neutron_ids() {
    let cfg = config::parse_str(CONFIG, "t.toml").unwrap();
    let store = Arc::new(Store::open(None, &cfg).unwrap());
    let sink = Sink::default();
    let log = PacketLog::with_sink(
        &settings(100, 25),
        Some(store.clone()),
        Box::new(sink.clone()),
    )
    .unwrap();
    log.set_policy(1, &cfg.model);
    let tx = log.sender(UNIX_EPOCH);
    let t0 = 1_795_629_600_000_001_000;
    assert!(tx.send(&accept(t0, 0, RuleRef { group: 0, rule: 0 })));
    assert!(tx.send(&drop_at(t0 + 1000, 1)));
    // A record of an epoch the writer was never told about: indices only.
    let mut stale = drop_at(t0 + 2000, 1);
    stale.epoch = 9;
    tx.send(&stale);
    log.flush();
    let lines = sink.lines();
    assert_eq!(lines.len(), 3, "{lines:?}");
    let snap = store.snapshot();
    let web = &snap.meta.groups[snap.group_by_name("web").unwrap()];
    let id = |v: Option<Id>| Value::String(v.unwrap().to_string());

    let a = &lines[0];
    assert_eq!(a["time"], "2026-11-25T18:00:00.000001Z");
    assert_eq!(a["verdict"], "ACCEPT");
    assert!(a.get("reason").is_none());
    assert_eq!(a["direction"], "ingress");
    assert_eq!(a["port"], "vm-a");
    assert_eq!(a["port_id"], id(snap.port_id("vm-a")));
    assert_eq!(a["group"], "web");
    assert_eq!(a["group_id"], id(Some(web.obj.id)));
    assert_eq!(a["rule_id"], id(Some(web.rules[0].id)));
    assert_eq!(a["ethertype"], "IPv4");
    assert_eq!(a["protocol"], "tcp");
    assert_eq!(a["src_ip"], "10.0.0.11");
    assert_eq!(a["src_port"], 40000);
    assert_eq!(a["dst_ip"], "10.0.0.10");
    assert_eq!(a["dst_port"], 80);
    assert!(a.get("icmp_type").is_none());
    assert_eq!(a["logs"], serde_json::json!(["web-accepts"]));
    assert_eq!(
        a["log_ids"],
        serde_json::json!([id(Some(snap.meta.logs[0].id))])
    );
    assert_eq!(a["epoch"], 1);

    let d = &lines[1];
    assert_eq!(d["verdict"], "DROP");
    assert_eq!(d["reason"], "ingress-denied");
    assert_eq!(d["port"], "vm-b");
    assert!(d.get("group").is_none() && d.get("rule_id").is_none());
    assert_eq!(d["ethertype"], "IPv6");
    assert_eq!(d["protocol"], "ipv6-icmp");
    assert_eq!(d["src_ip"], "fd00::a");
    assert_eq!(
        (d["icmp_type"].as_u64(), d["icmp_code"].as_u64()),
        (Some(128), Some(3))
    );
    assert!(d.get("src_port").is_none() && d.get("dst_port").is_none());
    assert_eq!(d["logs"], serde_json::json!(["vm-b-drops"]));

    let s = &lines[2];
    assert_eq!(s["port_index"], 1);
    assert!(s.get("port").is_none() && s.get("port_id").is_none());
    assert_eq!(s["logs"], serde_json::json!([]));
    let c = log.shutdown();
    assert_eq!(
        (c.received, c.written, c.suppressed, c.dropped),
        (3, 3, 0, 0)
    );
}

#[test]
fn without_a_store_lines_carry_names_only() {
    let cfg = config::parse_str(CONFIG, "t.toml").unwrap();
    let sink = Sink::default();
    let log = PacketLog::with_sink(&settings(100, 25), None, Box::new(sink.clone())).unwrap();
    log.set_policy(1, &cfg.model);
    // A replay's clock counts from the Unix epoch; a live switch's from its start.
    let start = UNIX_EPOCH + Duration::from_secs(1_795_629_600);
    log.sender(start)
        .send(&accept(5_000, 0, RuleRef { group: 0, rule: 1 }));
    log.flush();
    let l = &sink.lines()[0];
    assert_eq!(l["time"], "2026-11-25T18:00:00.000005Z");
    assert_eq!(l["group"], "web");
    assert!(l.get("port_id").is_none() && l.get("log_ids").is_none());
    // Rule 1 of web is the egress rule: the ACCEPT log of web still matches (it logs
    // every rule of the group).
    assert_eq!(l["logs"], serde_json::json!(["web-accepts"]));
}

#[test]
fn a_flood_stays_within_rate_times_time_plus_burst() {
    let sink = Sink::default();
    let log = PacketLog::with_sink(&settings(100, 25), None, Box::new(sink.clone())).unwrap();
    // 20,000 drops over 2 s of record time, from two sources (workers) whose clocks
    // start 1 s apart, sent in chunks the queue holds.
    let base = UNIX_EPOCH + Duration::from_secs(1_000_000);
    let a = log.sender(base);
    let b = log.sender(base - Duration::from_secs(1));
    for chunk in 0..20 {
        for i in 0..1000u64 {
            let t = (chunk * 1000 + i) * 100_000; // one every 100 µs
            a.send(&drop_at(t, 1));
            b.send(&drop_at(t + 1_000_000_000, 1));
        }
        log.flush();
    }
    let c = log.counters();
    assert_eq!(c.received, 40_000);
    assert_eq!(c.dropped, 0);
    assert_eq!(c.written + c.suppressed, c.received);
    // 2 s at 100/s plus the burst of 25 (the last record is at 1.9999 s).
    assert!(c.written <= 2 * 100 + 25, "{c:?}");
    assert!(c.written >= 2 * 100, "{c:?}");
    assert_eq!(sink.lines().len() as u64, c.written);
    // Within any one second of record time, at most rate + burst lines.
    let times: Vec<String> = sink.lines().iter().map(|l| l["time"].to_string()).collect();
    let first_second = times.iter().filter(|t| t.contains("T13:46:40.")).count();
    assert!((100..=125).contains(&first_second), "{first_second}");
    // After a quiet second the bucket is full again: a new burst of 25 passes.
    let later = 10_000_000_000;
    for i in 0..100 {
        a.send(&drop_at(later + i, 1));
    }
    log.flush();
    assert_eq!(log.counters().written, c.written + 25);
}

#[test]
fn a_full_queue_is_counted_and_never_blocks() {
    let sink = Sink::default();
    let log =
        PacketLog::with_sink(&settings(MAX_LOG, MAX_LOG), None, Box::new(sink.clone())).unwrap();
    let tx = log.sender(UNIX_EPOCH);
    let gate = sink.gate.lock().unwrap();
    let total = QUEUE as u64 + 5_000;
    let t = Instant::now();
    for i in 0..total {
        tx.send(&drop_at(i, 0));
    }
    // Sending into a stalled writer returned at once.
    assert!(t.elapsed() < Duration::from_secs(5));
    let c = log.counters();
    assert_eq!(c.received + c.dropped, total);
    assert!(c.dropped >= 5_000 - BATCH as u64 - 1, "{c:?}");
    drop(gate);
    log.flush();
    let c = log.counters();
    assert_eq!(c.written, c.received);
    assert_eq!(sink.lines().len() as u64, c.written);
}

const MAX_LOG: u32 = crate::control::config::MAX_LOG_LIMIT;

#[test]
fn write_errors_lose_lines_but_not_the_writer() {
    let sink = Sink::default();
    *sink.fail.lock().unwrap() = 1;
    let log = PacketLog::with_sink(&settings(100, 25), None, Box::new(sink.clone())).unwrap();
    let tx = log.sender(UNIX_EPOCH);
    tx.send(&drop_at(1, 0));
    tx.send(&drop_at(2, 0));
    log.flush();
    tx.send(&drop_at(3, 0));
    log.flush();
    let c = log.shutdown();
    assert_eq!(c.write_errors, 1);
    assert_eq!(c.lost, 2);
    assert_eq!(c.written, 1);
    assert_eq!(sink.lines().len(), 1);
}

#[test]
fn the_file_is_created_0640_and_appended_to() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("sgswitch-packet-log-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let path = dir.join("sub").join("packets.log");
    let s = LoggingSettings {
        file: Some(path.clone()),
        ..LoggingSettings::default()
    };
    for i in 0..2 {
        let log = PacketLog::start(&s, None).unwrap();
        log.sender(UNIX_EPOCH).send(&drop_at(i, 0));
        assert_eq!(log.shutdown().written, 1);
    }
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode & !0o640, 0, "mode {mode:o}");
    // A file that cannot be opened is an error at start.
    let bad = LoggingSettings {
        file: Some(path.join("under-a-file")),
        ..LoggingSettings::default()
    };
    let e = PacketLog::start(&bad, None).err().unwrap();
    assert!(e.to_string().contains("packet log"), "{e}");
    let _ = fs::remove_dir_all(&dir);
}
