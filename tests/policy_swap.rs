//! Thousands of policy swaps while traffic flows (#14): no frame is ever judged by a
//! half-applied policy.
//!
//! `sgswitch run` with two workers between i0 (worker 0) and i1 (worker 1), so that every
//! frame i0 → i1 crosses workers. i0's groups are swapped between `A` and `B` through the
//! API (`PUT /v2.0/ports/{i0}`, one request, one policy epoch) as fast as the API answers
//! (about a thousand times a second) while a generator in i0 opens new TCP connections to i1's ports 7000,
//! 7001, 7002 and 7003 in turn, as fast as it can. The policies are built so that a
//! frame judged by half of one and half of the other gets through where neither lets it:
//!
//! | | i0 egress (its own group) | i1 ingress from i0 (`R`'s rules by remote group) | delivered |
//! |---|---|---|---|
//! | i0 in `A` | tcp 7000, 7002 | from `A`: tcp 7000, 7003 | 7000 |
//! | i0 in `B` | tcp 7001, 7003 | from `B`: tcp 7001, 7002 | 7001 |
//! | `A`'s egress with `B`'s ingress (mixed) | 7000, 7002 | 7001, 7002 | **7002** |
//! | `B`'s egress with `A`'s ingress (mixed) | 7001, 7003 | 7000, 7003 | **7003** |
//!
//! A swap changes i0's egress and, through the remote-group membership, i1's ingress in
//! one step. Asserted from a tcpdump capture of what the switch delivered to i1 (SYNs
//! only) and from the generator's own counts: no SYN to 7002 or 7003 is ever delivered and
//! no connection to them completes; SYNs to 7000 and to 7001 are both delivered (both
//! policies were in force, traffic flowed); and each delivered SYN arrived while its
//! policy could be in force — between the request that made it live and the answer to
//! the request that replaced it — the time by which it was later is printed and bounded.
//! Last, the construction itself is checked live: with i0 in both groups (each half of
//! both policies in force), 7002 and 7003 do get through.
//!
//! Needs root, iproute2, python3, tcpdump (and ethtool for the veths); without them the
//! test skips, under `CI=true` it fails. Everything is removed by guards.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use serde_json::{json, Value};

const POLICY: &str = r#"
[switch]
workers = 2

[[security_groups]]
name = "A"
rules = [
  { direction = "egress", ethertype = "IPv4", protocol = "tcp", port_range_min = 7000, port_range_max = 7000 },
  { direction = "egress", ethertype = "IPv4", protocol = "tcp", port_range_min = 7002, port_range_max = 7002 },
]

[[security_groups]]
name = "B"
rules = [
  { direction = "egress", ethertype = "IPv4", protocol = "tcp", port_range_min = 7001, port_range_max = 7001 },
  { direction = "egress", ethertype = "IPv4", protocol = "tcp", port_range_min = 7003, port_range_max = 7003 },
]

[[security_groups]]
name = "R"
rules = [
  { direction = "ingress", ethertype = "IPv4", protocol = "tcp", port_range_min = 7000, port_range_max = 7000, remote_group = "A" },
  { direction = "ingress", ethertype = "IPv4", protocol = "tcp", port_range_min = 7003, port_range_max = 7003, remote_group = "A" },
  { direction = "ingress", ethertype = "IPv4", protocol = "tcp", port_range_min = 7001, port_range_max = 7001, remote_group = "B" },
  { direction = "ingress", ethertype = "IPv4", protocol = "tcp", port_range_min = 7002, port_range_max = 7002, remote_group = "B" },
  { direction = "egress", ethertype = "IPv4" },
]
"#;

/// How long the generator runs; the swaps run as long as it does.
const SECS: f64 = 8.0;

/// At least this many swaps must have been made.
const MIN_SWAPS: usize = 1000;

/// How much later than the answer that replaced its policy a delivered SYN may be seen
/// (the capture's timestamp is taken after delivery, on a loaded machine).
const SLACK: Duration = Duration::from_millis(250);

/// What the capture keeps: SYNs without ACK (the judged frames of new connections);
/// fewer frames for a tcpdump that must not drop any on a loaded machine.
const SYN_ONLY: &str = "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn";

/// New TCP connections to PORTS in turn, up to 128 in flight, each given 100 ms; prints
/// `{"tried": {...}, "connected": {...}}`.
const GENERATOR: &str = r#"
import json, select, socket, struct, sys, time
dst, secs = sys.argv[1], float(sys.argv[2])
ports = [7000, 7001, 7002, 7003]
tried = {p: 0 for p in ports}
ok = {p: 0 for p in ports}
pending = {}
end = time.time() + secs
i = 0
linger = struct.pack("ii", 1, 0)
while time.time() < end:
    while len(pending) < 128:
        p = ports[i % 4]
        i += 1
        s = socket.socket()
        s.setblocking(False)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        s.connect_ex((dst, p))
        tried[p] += 1
        pending[s] = (p, time.time())
    _, w, _ = select.select([], list(pending), [], 0.01)
    for s in w:
        p, _ = pending.pop(s)
        if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
            ok[p] += 1
        s.close()
    now = time.time()
    for s, (p, t) in list(pending.items()):
        if now - t > 0.1:
            del pending[s]
            s.close()
print(json.dumps({"tried": tried, "connected": ok}))
"#;

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn id_of(list: &Value, key: &str, name: &str) -> String {
    list[key]
        .as_array()
        .and_then(|a| a.iter().find(|o| o["name"] == name))
        .and_then(|o| o["id"].as_str())
        .unwrap_or_else(|| panic!("no {name} in {key}"))
        .to_string()
}

/// The TCP destination port of a SYN (without ACK) in an Ethernet + IPv4 frame.
fn syn_port(f: &[u8]) -> Option<u16> {
    if f.len() < 34 || f[12..14] != [0x08, 0x00] || f[23] != 6 {
        return None;
    }
    let l4 = 14 + usize::from(f[14] & 0x0f) * 4;
    let flags = *f.get(l4 + 13)?;
    (flags & 0x12 == 0x02).then(|| u16::from_be_bytes([f[l4 + 2], f[l4 + 3]]))
}

/// One swap: the policy it made live (`true` for A), when it was sent and answered.
struct Swap {
    to_a: bool,
    sent: u64,
    answered: u64,
}

/// How much later than its policy's last moment a SYN for `a` (A's port) seen at `t`
/// was (0 when its policy could be in force then). A starts in force.
fn lateness(swaps: &[Swap], a: bool, t: u64) -> u64 {
    let k = swaps.partition_point(|s| s.sent <= t);
    if k == 0 {
        // Before the first swap only A was ever in force.
        return if a { 0 } else { u64::MAX };
    }
    if swaps[k - 1].to_a == a {
        return 0;
    }
    // The policy of the SYN was replaced by swap k-1 (its answer ends it).
    t.saturating_sub(swaps[k - 1].answered)
}

#[test]
fn policy_swaps_under_traffic_never_mix() {
    if !env_ready_with(
        "policy_swaps_under_traffic_never_mix",
        Backend::AfPacket,
        &["tcpdump"],
    ) {
        return;
    }
    let topo = Topo::new("psw", Backend::AfPacket, 2);
    let config = format!("{POLICY}{}", topo.ports_toml(&[r#"["A"]"#, r#"["R"]"#]));
    let path = topo.write_config(&config);
    let sw = Switch::start(&path, &topo.dir.path);
    let api = sw.api_client();
    let (i0, i1) = (&topo.insts[0], &topo.insts[1]);
    let port_i0 = id_of(&api.get("/v2.0/ports").expect("ports"), "ports", "i0");
    let groups = api.get("/v2.0/security-groups").expect("groups");
    let (ga, gb) = (
        id_of(&groups, "security_groups", "A"),
        id_of(&groups, "security_groups", "B"),
    );
    let _server = echo_server(&i1.ns, &[7000, 7001, 7002, 7003], &[]);
    assert_eq!(probe(&i0.ns, "tcp", &i1.v4, 7000, 3), "PASS", "A at start");
    let cap_file = topo.dir.path.join("i1-in.pcap");
    let cap = Capture::start(&i1.ns, &i1.ifname, Dir::In, &cap_file, SYN_ONLY);

    let generator = i0
        .ns
        .cmd(&[python(), "-c", GENERATOR, &i1.v4, &SECS.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the generator");
    let start = Instant::now();
    let mut swaps = Vec::new();
    let path_i0 = format!("/v2.0/ports/{port_i0}");
    while start.elapsed().as_secs_f64() < SECS {
        let to_a = swaps.len() % 2 == 1;
        let g = if to_a { &ga } else { &gb };
        let sent = now_ns();
        api.put(&path_i0, &json!({"port": {"security_groups": [g]}}))
            .unwrap_or_else(|e| panic!("swap {}: {e}", swaps.len()));
        swaps.push(Swap {
            to_a,
            sent,
            answered: now_ns(),
        });
    }
    let out = generator.wait_with_output().expect("generator output");
    assert!(
        out.status.success(),
        "generator: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_millis(300));
    let frames = cap.stop();
    let gen: Value = serde_json::from_slice(&out.stdout).expect("generator's JSON");
    eprintln!(
        "{} swaps in {:.1} s ({:.2} ms each); generator: {gen}",
        swaps.len(),
        start.elapsed().as_secs_f64(),
        start.elapsed().as_secs_f64() * 1000.0 / swaps.len() as f64
    );

    let mut syns = [0u64; 4];
    let mut worst = 0u64;
    let mut mixed = Vec::new();
    for f in &frames {
        let Some(p @ 7000..=7003) = syn_port(&f.bytes) else {
            continue;
        };
        syns[usize::from(p - 7000)] += 1;
        if p >= 7002 {
            mixed.push(frame_summary(&f.bytes));
        } else {
            worst = worst.max(lateness(&swaps, p == 7000, f.ts_ns));
        }
    }
    eprintln!(
        "SYNs delivered to i1: 7000 {}, 7001 {}, 7002 {}, 7003 {}; latest SYN after its policy was replaced: {:.3} ms",
        syns[0],
        syns[1],
        syns[2],
        syns[3],
        worst as f64 / 1e6
    );
    assert!(
        mixed.is_empty(),
        "{} SYNs that neither policy allows were delivered (a half-applied policy):\n{}",
        mixed.len(),
        mixed[..mixed.len().min(10)].join("\n")
    );
    for p in ["7002", "7003"] {
        assert_eq!(
            gen["connected"][p], 0,
            "connections to {p} completed: {gen}"
        );
    }
    assert!(swaps.len() >= MIN_SWAPS, "only {} swaps", swaps.len());
    assert!(
        syns[0] > 100 && syns[1] > 100,
        "traffic under both policies: {syns:?}"
    );
    assert!(
        gen["connected"]["7000"].as_u64().unwrap_or(0) > 0
            && gen["connected"]["7001"].as_u64().unwrap_or(0) > 0,
        "connections under both policies completed: {gen}"
    );
    assert!(
        Duration::from_nanos(worst) < SLACK,
        "a SYN was delivered {worst} ns after the answer to the swap that replaced its policy"
    );
    // The construction: with both halves of both policies, 7002 and 7003 get through.
    api.put(&path_i0, &json!({"port": {"security_groups": [ga, gb]}}))
        .expect("i0 in A and B");
    for p in [7002, 7003] {
        assert_eq!(
            probe(&i0.ns, "tcp", &i1.v4, p, 3),
            "PASS",
            "a mixed judgement lets {p} through"
        );
    }
    assert!(
        !sw.log_text().contains("panicked"),
        "switch log:\n{}",
        sw.log_text()
    );
}

#[test]
fn lateness_of_a_syn() {
    let s = |to_a, sent, answered| Swap {
        to_a,
        sent,
        answered,
    };
    let swaps = [s(false, 10, 20), s(true, 30, 40)];
    assert_eq!(lateness(&swaps, true, 5), 0, "A at start");
    assert_eq!(lateness(&swaps, true, 15), 0, "B sent, not yet answered");
    assert_eq!(lateness(&swaps, true, 25), 5, "A after B was answered");
    assert_eq!(lateness(&swaps, false, 25), 0);
    assert_eq!(
        lateness(&swaps, false, 5),
        u64::MAX,
        "B before it was ever sent"
    );
    assert_eq!(lateness(&swaps, true, 45), 0);
    assert_eq!(lateness(&swaps, false, 35), 0, "A sent, not yet answered");
}
