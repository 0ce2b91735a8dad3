//! Differential test: the same traffic through the live switch (`sgswitch run`) and
//! through `sgswitch replay` must get the same verdict for every frame.
//!
//! Method, per backend {afxdp, afxdp `--copy-forward`, afpacket, tap} and workers {1, 2},
//! three ports on one network: two instances (`i0`, `i1`, security groups) and an uplink
//! (`i2`, port security off, its interface's MAC unknown to the config, so the switch
//! learns it; the worker that learns it announces it to the others):
//! 1. In every instance namespace two tcpdump captures run on the instance's interface:
//!    `-Q out` (what entered the switch on that port) and `-Q in` (what the switch
//!    delivered to it). Checksum offload is off in the namespaces (veths: the lab does
//!    it; taps: here), so the bytes are the same on both sides of the switch.
//! 2. Traffic, each request waiting for its answer so the order of frames is defined:
//!    ping (ARP / neighbour discovery included) both ways between every pair, IPv4 and
//!    IPv6; TCP and UDP request/response (IPv4 and IPv6); denied TCP and UDP flows; an
//!    IPv4 broadcast and an IPv6 all-nodes multicast; a ping to a remote port (bound to
//!    another overlay host, which does not exist here) whose ARP request the ARP
//!    responder answers (#19): the generated reply is a frame delivered to the requester
//!    on both paths.
//! 3. The `out` captures are merged into one pcapng, one interface per port named after
//!    it (that is how replay knows the ingress port), sorted by timestamp, and replayed
//!    with the same config (`--json --out-dir`).
//! 4. For every port the multiset of frames delivered live (its `in` capture) must equal
//!    the multiset replay transmits to it (`PORT.pcap`), byte for byte; and the drops by
//!    (port, reason) in replay's verdicts must equal the growth of the live switch's
//!    counters over the traffic (SIGUSR1 dumps before and after).
//!
//! The namespaces are made quiet before the captures start (no router solicitations, no
//! DAD, neighbour entries that stay valid for the whole run), so no frame of their own
//! crosses the start or the end of a capture half-seen; the `out` captures stop before
//! the `in` ones. Every difference is printed (ethertype, addresses, ports; ingress port
//! and count) and fails the test, with a table of configuration → differences.
//!
//! Needs root, iproute2, iputils-ping, python3, tcpdump, ethtool; without them a test
//! skips with a message, under `CI=true` it fails.

mod common;

use common::{
    echo_server, env_ready_with, frame_summary, neigh_flush, ping, probe, send_udp, sh, Backend,
    Capture, Dir, Frame, Instance, Switch, Topo, Variant, POLICY, SERIAL,
};
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

type Drops = BTreeMap<(String, String), u64>;

/// No frames of the namespace's own on its interface during a run: no router
/// solicitations or DAD, MLD reports right after an address appears, and neighbour
/// entries that need no reachability probe for minutes. `devs`: `default` (for an
/// interface that appears later: a tap) and/or the interface.
fn quiet(inst: &Instance, devs: &[&str]) {
    let mut keys = Vec::new();
    for dev in devs {
        keys.push(format!("net.ipv6.conf.{dev}.router_solicitations=0"));
        keys.push(format!("net.ipv6.conf.{dev}.dad_transmits=0"));
        keys.push(format!("net.ipv6.conf.{dev}.accept_dad=0"));
        keys.push(format!(
            "net.ipv6.conf.{dev}.mldv2_unsolicited_report_interval=10"
        ));
        keys.push(format!(
            "net.ipv6.conf.{dev}.mldv1_unsolicited_report_interval=10"
        ));
        // (A namespace other than the first has no neigh/default.)
        for fam in ["ipv4", "ipv6"].into_iter().filter(|_| *dev != "default") {
            keys.push(format!("net.{fam}.neigh.{dev}.delay_first_probe_time=600"));
            keys.push(format!(
                "net.{fam}.neigh.{dev}.base_reachable_time_ms=600000"
            ));
        }
    }
    let mut args = vec!["ip", "netns", "exec", &inst.ns.name, "sysctl", "-q", "-w"];
    args.extend(keys.iter().map(String::as_str));
    sh(&args);
}

/// The uplink (port security off): its namespace's interface uses this MAC, which the
/// config does not know, so the switch has to learn it.
const UPLINK: usize = 2;
const UPLINK_MAC: &str = "02:00:00:00:00:92";

/// This switch is overlay host h1; port `r` (10.0.0.99) is on host h2 (no such switch
/// runs: only the ARP responder answers for it).
const REMOTE: &str = r#"
[overlay]
host = "h1"

[[hosts]]
name = "h1"
vtep = "10.9.0.1"

[[hosts]]
name = "h2"
vtep = "10.9.0.2"

[[ports]]
name = "r"
network = "a"
mac = "fa:16:3e:00:00:99"
fixed_ips = ["10.0.0.99"]
host = "h2"
"#;
const REMOTE_V4: &str = "10.0.0.99";

fn config(topo: &Topo) -> String {
    let mut s = POLICY.to_string();
    s.push_str(REMOTE);
    for (i, inst) in topo.insts.iter().enumerate() {
        let security = if i == UPLINK {
            "port_security = false\nsecurity_groups = []"
        } else {
            "security_groups = [\"inst\"]"
        };
        s.push_str(&format!(
            "\n[[ports]]\nname = \"{}\"\nnetwork = \"a\"\nmac = \"{}\"\n\
             fixed_ips = [\"{}\", \"{}\"]\n{security}\nbackend = {}\n",
            inst.port,
            inst.mac,
            inst.v4,
            inst.v6,
            topo.backend_toml(i)
        ));
    }
    s
}

/// Give the uplink's interface its unconfigured MAC (after [`Topo::configure_one`]).
fn uplink_mac(topo: &Topo) {
    let inst = &topo.insts[UPLINK];
    sh(&[
        "ip",
        "-n",
        &inst.ns.name,
        "link",
        "set",
        &inst.ifname,
        "address",
        UPLINK_MAC,
    ]);
}

fn differential(tag: &str, v: Variant) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let test = format!("live_vs_replay_{}", v.name);
    // ethtool also for taps: their checksum offload is turned off here.
    if !env_ready_with(&test, v.backend, &["tcpdump", "ethtool"]) {
        return;
    }
    let topo = Topo::new(tag, v.backend, 3);
    for inst in &topo.insts {
        // Defaults for a tap that appears later, and the veth's own keys now.
        if v.backend.uses_veth() {
            quiet(inst, &["default", &inst.ifname]);
        } else {
            quiet(inst, &["default"]);
        }
    }
    if v.backend.uses_veth() {
        uplink_mac(&topo);
    }
    // A fresh interface reports its multicast groups (MLD) once DAD of its link-local
    // address is done, about a second after it came up: let that pass.
    std::thread::sleep(Duration::from_millis(2000));
    let _servers: Vec<common::Proc> = topo
        .insts
        .iter()
        .map(|i| echo_server(&i.ns, &[7000, 7002], &[7001, 7003]))
        .collect();
    let mut table: Vec<(String, Vec<String>)> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    for workers in [1, 2] {
        let name = format!("{} workers={workers}", v.name);
        let started = std::time::Instant::now();
        let diffs = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_once(&topo, v, workers)
        })) {
            Ok((d, n)) => {
                notes.extend(n.into_iter().map(|n| format!("{name}: {n}")));
                d
            }
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                vec![format!("panicked: {msg}")]
            }
        };
        eprintln!(
            "{name}: {} in {:.1} s",
            if diffs.is_empty() {
                "same verdicts".to_string()
            } else {
                format!("{} differences", diffs.len())
            },
            started.elapsed().as_secs_f64()
        );
        table.push((name, diffs));
    }
    let mut report = String::new();
    for (name, d) in &table {
        if d.is_empty() {
            report.push_str(&format!("{name:<32} live = replay\n"));
        } else {
            report.push_str(&format!("{name:<32} {} differences:\n", d.len()));
            for x in d {
                for (k, line) in x.lines().enumerate() {
                    let pad = if k == 0 { 34 } else { 38 };
                    report.push_str(&format!("{:pad$}{line}\n", ""));
                }
            }
        }
    }
    for n in &notes {
        report.push_str(&format!("note (tolerated): {n}\n"));
    }
    eprintln!("{test}:\n{report}");
    assert!(
        table.iter().all(|(_, d)| d.is_empty()),
        "{test}: configuration -> differences between live and replay\n{report}"
    );
}

/// One live run and its replay; the differences found, and the tolerated ones (notes).
fn run_once(topo: &Topo, v: Variant, workers: usize) -> (Vec<String>, Vec<String>) {
    let dir = topo.dir.path.join(format!("w{workers}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = topo.write_config(&config(topo));
    let w = workers.to_string();
    let mut args = vec!["--workers", w.as_str()];
    if v.copy_forward {
        args.push("--copy-forward");
    }
    let mut sw = Switch::start_args(&path, &topo.dir.path, &args);
    let names: Vec<&str> = topo.insts.iter().map(|i| i.port.as_str()).collect();
    if v.backend == Backend::Tap {
        for (i, inst) in topo.insts.iter().enumerate() {
            topo.configure_one(i);
            sh(&[
                "ip",
                "netns",
                "exec",
                &inst.ns.name,
                "ethtool",
                "-K",
                &inst.ifname,
                "tx",
                "off",
            ]);
            quiet(inst, &[&inst.ifname]);
        }
        uplink_mac(topo);
    }
    for inst in &topo.insts {
        neigh_flush(&inst.ns);
    }
    // Let what a fresh interface sends by itself (MLD reports) pass before capturing.
    std::thread::sleep(Duration::from_millis(if v.backend == Backend::Tap {
        1500
    } else {
        300
    }));

    let ins: Vec<Capture> = topo
        .insts
        .iter()
        .map(|i| {
            let f = dir.join(format!("{}-in.pcap", i.port));
            Capture::start(&i.ns, &i.ifname, Dir::In, &f, "")
        })
        .collect();
    let outs: Vec<Capture> = topo
        .insts
        .iter()
        .map(|i| {
            let f = dir.join(format!("{}-out.pcap", i.port));
            Capture::start(&i.ns, &i.ifname, Dir::Out, &f, "")
        })
        .collect();
    let before = sw.drops(&names);

    let live = traffic(topo);

    std::thread::sleep(Duration::from_millis(300));
    let after = sw.drops(&names);
    let out_frames: Vec<Vec<Frame>> = outs.into_iter().map(Capture::stop).collect();
    std::thread::sleep(Duration::from_millis(200));
    let in_frames: Vec<Vec<Frame>> = ins.into_iter().map(Capture::stop).collect();
    let status = sw.stop(Duration::from_secs(10));

    let mut diffs = Vec::new();
    if !status.is_some_and(|s| s.success()) {
        diffs.push(format!("switch did not stop cleanly: {status:?}"));
    }

    // Merge what entered the switch, by timestamp (stable: a capture's own order stays).
    let mut merged: Vec<(u64, usize, Vec<u8>)> = out_frames
        .iter()
        .enumerate()
        .flat_map(|(p, fs)| fs.iter().map(move |f| (f.ts_ns, p, f.bytes.clone())))
        .collect();
    merged.sort_by_key(|m| m.0);
    let merged_path = dir.join("merged.pcapng");
    {
        use sgswitch::port::pcap::PcapNgWriter;
        let f = std::fs::File::create(&merged_path).unwrap();
        let mut wr = PcapNgWriter::new(std::io::BufWriter::new(f), &names).unwrap();
        for (ts, p, b) in &merged {
            wr.write(*p as u32, *ts, b, None).unwrap();
        }
        wr.finish().unwrap();
    }
    let replay_dir = dir.join("replay");
    let out = Command::new(env!("CARGO_BIN_EXE_sgswitch"))
        .arg("replay")
        .arg("--config")
        .arg(&path)
        .arg("--json")
        .arg("--out-dir")
        .arg(&replay_dir)
        .arg(&merged_path)
        .stdin(Stdio::null())
        .output()
        .expect("run sgswitch replay");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "sgswitch replay failed ({}): {stderr}",
        out.status
    );
    let (replay_drops, verdicts) = parse_verdicts(&String::from_utf8_lossy(&out.stdout), &names);

    // The run must have had the traffic it is about, or equality proves nothing.
    let deliveries: usize = verdicts.iter().map(|v| v.len()).sum();
    let denied: u64 = replay_drops
        .iter()
        .filter(|((_, r), _)| r == "ingress-denied")
        .map(|(_, n)| n)
        .sum();
    if merged.len() < 40 || deliveries < 30 || denied < 3 {
        diffs.push(format!(
            "too little traffic to compare: {} frames in, {deliveries} deliveries by replay, \
             {denied} ingress-denied drops (expected >= 40, >= 30, >= 3); {stderr}",
            merged.len()
        ));
    }

    // The ARP responder answered the request for the remote port (its reply is then
    // compared as a frame delivered to the requester, below).
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !stdout.lines().any(|l| l.contains("\"arp_reply\"")) {
        diffs.push("replay answered no ARP request for the remote port".to_string());
    }

    // Deliveries, port by port.
    let port_of = |bytes: &[u8]| -> String {
        merged
            .iter()
            .find(|m| m.2 == bytes)
            .map_or("no port (in no out capture)".to_string(), |m| {
                names[m.1].to_string()
            })
    };
    for (p, name) in names.iter().enumerate() {
        let live_in = multiset(in_frames[p].iter().map(|f| f.bytes.clone()));
        let replayed = multiset(
            common::read_capture(&replay_dir.join(format!("{name}.pcap")))
                .into_iter()
                .map(|f| f.bytes),
        );
        let mut lines = Vec::new();
        for (bytes, &n) in &replayed {
            let l = live_in.get(bytes).copied().unwrap_or(0);
            if l < n {
                lines.push(format!(
                    "replay delivers, live does not (x{}): in on {} {}",
                    n - l,
                    port_of(bytes),
                    frame_summary(bytes)
                ));
            }
        }
        for (bytes, &n) in &live_in {
            let r = replayed.get(bytes).copied().unwrap_or(0);
            if n > r {
                lines.push(format!(
                    "live delivers, replay does not (x{}): in on {} {}",
                    n - r,
                    port_of(bytes),
                    frame_summary(bytes)
                ));
            }
        }
        if !lines.is_empty() {
            let total = lines.len();
            lines.truncate(20);
            if total > 20 {
                lines.push(format!("... {} more", total - 20));
            }
            diffs.push(format!(
                "frames delivered to {name} differ (live {}, replay {}):\n{}",
                live_in.values().sum::<usize>(),
                replayed.values().sum::<usize>(),
                lines.join("\n")
            ));
        }
    }

    // Drops by (port, reason): replay's verdicts against the live counters' growth.
    let mut live_drops: Drops = BTreeMap::new();
    for k in after.keys() {
        let n = common::grew(&before, &after, &k.0, &k.1);
        if n > 0 {
            live_drops.insert(k.clone(), n);
        }
    }
    // No tolerance: learned MACs are announced to every worker (l2::LearnedFdb), so a
    // frame to the uplink's learned MAC is forwarded alike whichever worker processes it;
    // an unknown-unicast flood that replay would not make is a difference like any other.
    let notes: Vec<String> = Vec::new();
    if live_drops != replay_drops {
        let keys: std::collections::BTreeSet<_> =
            live_drops.keys().chain(replay_drops.keys()).collect();
        let lines: Vec<String> = keys
            .into_iter()
            .filter(|k| live_drops.get(*k) != replay_drops.get(*k))
            .map(|k| {
                format!(
                    "{} {}: live {}, replay {}",
                    k.0,
                    k.1,
                    live_drops.get(k).copied().unwrap_or(0),
                    replay_drops.get(k).copied().unwrap_or(0)
                )
            })
            .collect();
        diffs.push(format!("drops differ:\n{}", lines.join("\n")));
    }
    if !diffs.is_empty() {
        diffs.push(format!(
            "(live traffic outcomes: {}; {} frames in)",
            live.join(", "),
            merged.len()
        ));
        eprintln!(
            "{} workers={workers}: switch log:\n{}\nreplay: {stderr}",
            v.name,
            sw.log_text()
        );
    }
    (diffs, notes)
}

fn multiset(it: impl Iterator<Item = Vec<u8>>) -> BTreeMap<Vec<u8>, usize> {
    let mut m = BTreeMap::new();
    for b in it {
        *m.entry(b).or_insert(0) += 1;
    }
    m
}

/// Replay's `--json` lines: drops by (port, reason), and per frame the ports it went to.
fn parse_verdicts(stdout: &str, names: &[&str]) -> (Drops, Vec<Vec<String>>) {
    let mut drops = BTreeMap::new();
    let mut delivered = Vec::new();
    for line in stdout.lines().filter(|l| l.starts_with('{')) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("replay json {line}: {e}"));
        let d: Vec<String> = v["delivered"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        delivered.push(d);
        for x in v["dropped"].as_array().into_iter().flatten() {
            let port = x["port"].as_str().unwrap_or("?").to_string();
            let reason = x["reason"].as_str().unwrap_or("?").to_string();
            assert!(
                names.contains(&port.as_str()),
                "replay drop on an unknown port: {line}"
            );
            *drops.entry((port, reason)).or_insert(0) += 1;
        }
    }
    (drops, delivered)
}

/// The traffic, each step waiting for its answer; what happened live, for the report.
fn traffic(topo: &Topo) -> Vec<String> {
    let i = |k: usize| &topo.insts[k];
    let mut seen = Vec::new();
    let mut note = |what: String, ok: bool| {
        seen.push(format!("{what} {}", if ok { "ok" } else { "FAILED" }));
    };
    let pairs = [(0, 1), (1, 0), (1, 2), (2, 1), (0, 2), (2, 0)];
    for (s, d) in pairs {
        note(
            format!("ping {}->{}", i(s).port, i(d).port),
            ping(&i(s).ns, &i(d).v4, None, 2),
        );
    }
    for (s, d) in pairs {
        note(
            format!("ping6 {}->{}", i(s).port, i(d).port),
            ping(&i(s).ns, &i(d).v6, None, 2),
        );
    }
    let flows: [(usize, usize, &str, bool, u16, &str); 8] = [
        (0, 1, "tcp", false, 7000, "PASS"),
        (1, 2, "udp", false, 7001, "PASS"),
        (2, 0, "tcp", true, 7000, "PASS"),
        (0, 2, "udp", true, 7001, "PASS"),
        (1, 0, "tcp", false, 7000, "PASS"),
        (0, 1, "tcp", false, 7002, "TIMEOUT"),
        (2, 1, "udp", false, 7003, "TIMEOUT"),
        (2, 0, "tcp", true, 7002, "TIMEOUT"),
    ];
    for (s, d, kind, v6, port, want) in flows {
        let host = if v6 { &i(d).v6 } else { &i(d).v4 };
        let secs = if want == "PASS" { 2 } else { 1 };
        let r = probe(&i(s).ns, kind, host, port, secs);
        note(
            format!("{kind}/{port} {}->{} {host}: {r}", i(s).port, i(d).port),
            r == want,
        );
    }
    // The remote port: the ping goes nowhere (no underlay), its ARP request is answered.
    let _ = ping(&i(0).ns, REMOTE_V4, None, 1);
    let neigh = sh(&["ip", "-n", &i(0).ns.name, "neigh", "show", REMOTE_V4]);
    note(
        format!("arp {REMOTE_V4} (remote port) from {}", i(0).port),
        neigh.contains("lladdr fa:16:3e:00:00:99"),
    );
    send_udp(i(1), &[("255.255.255.255", 7005, "diff-bcast4")]);
    std::thread::sleep(Duration::from_millis(50));
    send_udp(i(2), &[("ff02::1", 7005, "diff-mcast6")]);
    std::thread::sleep(Duration::from_millis(50));
    seen
}

#[test]
fn live_vs_replay_afxdp() {
    differential("dx", Variant::AFXDP);
}

#[test]
fn live_vs_replay_afxdp_copy_forward() {
    differential("dc", Variant::AFXDP_COPY_FORWARD);
}

#[test]
fn live_vs_replay_afpacket() {
    differential("dp", Variant::AFPACKET);
}

#[test]
fn live_vs_replay_tap() {
    differential("dt", Variant::TAP);
}
