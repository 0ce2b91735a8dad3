//! Neutron packet logging end to end.
//!
//! 1. The stock client: `openstack network log create|list|show|set|delete` and
//!    `network loggable resources list` (the `python-neutronclient` plugin, installed
//!    beside python-openstackclient by `.ci/run`) against the management API, checking
//!    the store after each command (the API server runs in this process over a store
//!    connected to a recording apply target, as in `tests/api_http.rs`).
//! 2. Records: a [`Pipeline`] switching real frames under a model with logs hands its
//!    records to the packet log writer (`control::packet_log`), whose lines are checked:
//!    ACCEPT once per connection, DROP once per dropped packet, and a flood from two
//!    pipelines (two workers) written within the global rate limit.
//!
//! The client comes from `$SGSWITCH_OPENSTACK` (the `.ci/run` virtualenv), or
//! `openstack` on PATH. Under `CI=true` a missing client or plugin fails the test.

mod api_common;
#[path = "common/skip.rs"]
mod skip;

use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;

use api_common::Harness;
use serde_json::Value;
use sgswitch::bench::frames::{ipv4_frame, tcp, V4};
use sgswitch::control::config::{self, LoggingSettings};
use sgswitch::control::packet_log::PacketLog;
use sgswitch::control::store::Store;
use sgswitch::flow::tcp_flags::{ACK, SYN};
use sgswitch::pipeline::{Dataplane, IdMap, LogLimits, Pipeline, PipelineConfig, Verdict};
use sgswitch::policy::LogEvent;
use sgswitch::wire::Mac;

fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

fn openstack_bin() -> Option<String> {
    let candidates = std::env::var("SGSWITCH_OPENSTACK")
        .ok()
        .into_iter()
        .chain(["openstack".to_string()]);
    candidates.into_iter().find(|bin| {
        Command::new(bin)
            .args(["network", "log", "create", "--help"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

struct Os {
    bin: String,
    endpoint: String,
}

impl Os {
    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new(&self.bin)
            .args(["--os-auth-type", "none", "--os-endpoint", &self.endpoint])
            .args(args)
            .output()
            .expect("run openstack")
    }

    /// Run `openstack ARGS`; panics with its output on failure.
    fn run(&self, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert!(
            out.status.success(),
            "openstack {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

#[test]
fn openstack_network_log_commands() {
    let test = "openstack_network_log_commands";
    let Some(bin) = openstack_bin() else {
        assert!(
            !in_ci(),
            "{test}: CI=true but the openstack client with the network log commands is missing \
             (SGSWITCH_OPENSTACK; pip install python-openstackclient python-neutronclient)"
        );
        skip::skip(test, "no openstack client with python-neutronclient");
        return;
    };
    let h = Harness::start();
    let os = Os {
        bin,
        endpoint: h.endpoint(),
    };
    let logs = || h.store.snapshot().model.logs.clone();

    let types = os.run(&["network", "loggable", "resources", "list", "-f", "value"]);
    assert_eq!(types, "security_group");

    // create
    let id = os.run(&[
        "network",
        "log",
        "create",
        "--resource-type",
        "security_group",
        "--resource",
        "web",
        "--event",
        "ALL",
        "--description",
        "web servers",
        "web-log",
        "-f",
        "value",
        "-c",
        "ID",
    ]);
    assert_eq!(id.len(), 36, "a log id (UUID): {id}");
    let l = logs();
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].name, "web-log");
    assert_eq!(l[0].resource.as_deref(), Some("web"));
    assert_eq!(l[0].target, None);
    assert_eq!(l[0].event, LogEvent::All);
    assert!(l[0].enabled);
    assert_eq!(h.published.lock().unwrap().last().unwrap().logs, l);

    // a second one, on a port of the group, DROP only
    os.run(&[
        "network",
        "log",
        "create",
        "--resource-type",
        "security_group",
        "--resource",
        "web",
        "--target",
        "vm-a",
        "--event",
        "DROP",
        "vm-a-drops",
    ]);
    let l = logs();
    assert_eq!(l.len(), 2);
    assert_eq!(l[1].target.as_deref(), Some("vm-a"));
    assert_eq!(l[1].event, LogEvent::Drop);

    // list, show
    let names = os.run(&["network", "log", "list", "-f", "value", "-c", "Name"]);
    assert_eq!(names.lines().collect::<Vec<_>>(), ["web-log", "vm-a-drops"]);
    let shown: Value =
        serde_json::from_str(&os.run(&["network", "log", "show", "web-log", "-f", "json"]))
            .unwrap();
    assert_eq!(shown["ID"], id.as_str());
    assert_eq!(shown["Event"], "ALL");
    assert_eq!(shown["Type"], "security_group");
    assert_eq!(shown["Description"], "web servers");
    assert_eq!(shown["Resource"], h.sg_id("web").as_str());
    assert_eq!(shown["Enabled"], true);

    // set --disable, set --enable: the model the apply hook gets follows
    os.run(&["network", "log", "set", "--disable", "web-log"]);
    assert!(!logs()[0].enabled);
    assert!(!h.published.lock().unwrap().last().unwrap().logs[0].enabled);
    let enabled = os.run(&[
        "network", "log", "show", &id, "-f", "value", "-c", "Enabled",
    ]);
    assert_eq!(enabled, "False");
    os.run(&[
        "network", "log", "set", "--enable", "--name", "web-all", "web-log",
    ]);
    assert!(logs()[0].enabled);
    assert_eq!(logs()[0].name, "web-all");

    // Neutron's refusal: vm-b does not use web.
    let out = os.cmd(&[
        "network",
        "log",
        "create",
        "--resource-type",
        "security_group",
        "--resource",
        "web",
        "--target",
        "vm-b",
        "bad",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Invalid resource constraint"), "{err}");
    assert_eq!(logs().len(), 2);

    // delete
    os.run(&["network", "log", "delete", "web-all", "vm-a-drops"]);
    assert!(logs().is_empty());
    assert_eq!(os.run(&["network", "log", "list", "-f", "value"]), "");
}

/// A sink the test reads.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn take(&self) -> Vec<Value> {
        let data = std::mem::take(&mut *self.0.lock().unwrap());
        String::from_utf8(data)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

const POLICY: &str = r#"
[[security_groups]]
name = "web"
rules = [
  { direction = "ingress", protocol = "tcp", port_range_min = 80, port_range_max = 80 },
  { direction = "egress" },
]

[[security_groups]]
name = "client"
rules = [ { direction = "egress" } ]

[[ports]]
name = "server"
mac = "fa:16:3e:00:00:0a"
fixed_ips = ["10.0.0.10"]
security_groups = ["web"]

[[ports]]
name = "client"
mac = "fa:16:3e:00:00:0b"
fixed_ips = ["10.0.0.11"]
security_groups = ["client"]

[[logs]]
name = "web-log"
resource = "web"
event = "ALL"
"#;

const SERVER_MAC: Mac = Mac([0xfa, 0x16, 0x3e, 0, 0, 0x0a]);
const CLIENT_MAC: Mac = Mac([0xfa, 0x16, 0x3e, 0, 0, 0x0b]);
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 11);

/// A TCP segment between the client and the server.
fn segment(to_server: bool, cport: u16, sport: u16, flags: u8) -> Vec<u8> {
    let (dmac, smac, src, dst, s, d) = if to_server {
        (SERVER_MAC, CLIENT_MAC, CLIENT, SERVER, cport, sport)
    } else {
        (CLIENT_MAC, SERVER_MAC, SERVER, CLIENT, sport, cport)
    };
    ipv4_frame(
        dmac,
        smac,
        V4::new(src, dst, 6),
        &tcp(s, d, flags, 1, 1, b"x"),
    )
}

/// One worker: a pipeline, its dataplane and its ports' indices.
struct Worker {
    p: Pipeline,
    v: Verdict,
}

impl Worker {
    fn new(model: &sgswitch::policy::Model) -> Worker {
        Worker {
            p: Pipeline::new(&PipelineConfig::from_model(model)),
            v: Verdict::default(),
        }
    }

    /// Switch one frame from `port` at `now_ns` and hand its records to `tx`.
    fn frame(
        &mut self,
        dp: &Dataplane,
        port: u16,
        f: &[u8],
        now_ns: u64,
        tx: &sgswitch::control::packet_log::LogSender,
    ) {
        self.p.process(dp, port, f, now_ns, 0, &mut self.v);
        self.p.take_log_records(|r| {
            tx.send(r);
        });
    }
}

#[test]
fn records_of_a_pipeline_become_lines() {
    let cfg = config::parse_str(POLICY, "policy.toml").unwrap();
    let store = Arc::new(Store::open(None, &cfg).unwrap());
    let model = store.model();
    let dp = Dataplane::compile(&model, 1, &mut IdMap::default());
    let (server, client) = (
        dp.port_index("server").unwrap(),
        dp.port_index("client").unwrap(),
    );
    let sink = Lines::default();
    let log = PacketLog::with_sink(
        &LoggingSettings::default(),
        Some(store.clone()),
        Box::new(sink.clone()),
    )
    .unwrap();
    log.set_policy(dp.epoch, &model);
    let tx = log.sender(UNIX_EPOCH);
    let mut w = Worker::new(&model);
    let mut now = 1_795_629_600_000_000_000u64;

    // Three connections to tcp/80, several packets each: one ACCEPT each.
    for c in 0..3u16 {
        let cport = 40000 + c;
        for (to_server, flags) in [
            (true, SYN),
            (false, SYN | ACK),
            (true, ACK),
            (true, ACK),
            (false, ACK),
            (true, ACK),
        ] {
            let port = if to_server { client } else { server };
            w.frame(&dp, port, &segment(to_server, cport, 80, flags), now, &tx);
            now += 1_000_000;
        }
    }
    // Five SYNs to tcp/22, which web does not allow: five DROPs at the server.
    for i in 0..5 {
        w.frame(&dp, client, &segment(true, 41000 + i, 22, SYN), now, &tx);
        now += 1_000_000;
    }
    log.flush();
    let lines = sink.take();
    let accepts: Vec<&Value> = lines.iter().filter(|l| l["verdict"] == "ACCEPT").collect();
    let drops: Vec<&Value> = lines.iter().filter(|l| l["verdict"] == "DROP").collect();
    assert_eq!(accepts.len(), 3, "{lines:#?}");
    assert_eq!(drops.len(), 5, "{lines:#?}");
    let snap = store.snapshot();
    let web = &snap.meta.groups[snap.group_by_name("web").unwrap()];
    for (i, a) in accepts.iter().enumerate() {
        assert_eq!(a["port"], "server");
        assert_eq!(a["port_id"], snap.port_id("server").unwrap().to_string());
        assert_eq!(a["direction"], "ingress");
        assert_eq!(a["group"], "web");
        assert_eq!(a["group_id"], web.obj.id.to_string());
        assert_eq!(a["rule_id"], web.rules[0].id.to_string());
        assert_eq!(a["protocol"], "tcp");
        assert_eq!(a["src_ip"], "10.0.0.11");
        assert_eq!(a["src_port"], 40000 + i);
        assert_eq!(a["dst_port"], 80);
        assert_eq!(a["logs"], serde_json::json!(["web-log"]));
        assert_eq!(
            a["log_ids"],
            serde_json::json!([snap.meta.logs[0].id.to_string()])
        );
    }
    for (i, d) in drops.iter().enumerate() {
        assert_eq!(d["port"], "server");
        assert_eq!(d["reason"], "ingress-denied");
        assert_eq!(d["dst_port"], 22);
        assert_eq!(d["src_port"], 41000 + i);
    }
    assert!(accepts[0]["time"]
        .as_str()
        .unwrap()
        .starts_with("2026-11-25T18:00:00.000"));

    // A flood of denied packets from two workers (each a pipeline with its own per
    // pipeline limit), 2 s of traffic: the writer keeps all sources together within
    // 100/s × 2 s + 25.
    let mut w2 = Worker::new(&model);
    let start = now;
    for i in 0..20_000u64 {
        let worker = if i % 2 == 0 { &mut w } else { &mut w2 };
        let f = segment(true, 42000 + (i % 1000) as u16, 22, SYN);
        worker.frame(&dp, client, &f, start + i * 100_000, &tx);
        if i % 2000 == 1999 {
            log.flush();
        }
    }
    log.flush();
    let flood = sink.take();
    let c = log.counters();
    // Every record a pipeline wrote reached the writer (the 8 above included).
    let per_pipeline = w.p.log_counters().written + w2.p.log_counters().written;
    assert_eq!(c.received, per_pipeline);
    assert_eq!(c.dropped, 0);
    assert!(
        per_pipeline - 8 > 225,
        "both pipelines passed more than the global limit: {per_pipeline}"
    );
    assert!(flood.len() as u64 <= 2 * 100 + 25, "{} lines", flood.len());
    assert!(flood.len() >= 2 * 100, "{} lines", flood.len());
    assert_eq!(c.written, 8 + flood.len() as u64);
    assert_eq!(c.suppressed, c.received - c.written);
    assert!(flood.iter().all(|l| l["verdict"] == "DROP"));
    assert_eq!(LogLimits::default().rate_limit, 100);
}
