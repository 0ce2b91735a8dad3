//! Multiqueue taps in the running switch (#16): a tap port with `queues = 2` on a switch
//! with two workers has one queue on each worker, and the instance's kernel spreads its
//! flows over them.
//!
//! * `two_queue_taps_spread_flows_and_keep_verdicts`: instances i0 (a client: egress only,
//!   ICMP in) and i1 (a server: TCP 7100 and UDP 7200 in) on 2-queue taps, `workers = 2`.
//!   The taps have two queues each (sysfs in the instance), i0 runs 16 TCP connections (50
//!   request/response exchanges of 1000 bytes each) and 16 UDP flows (50 datagrams each,
//!   lock-step) to i1 at once: every exchange comes back intact and exactly once (the UDP
//!   replies pass only by conntrack: i0 admits no UDP), and both workers received at least
//!   100 frames of i0's port and of i1's (`queues` in the API's stats: the per-queue
//!   counters; TCP connections are owned by a hash of their ports). Then
//!   80 UDP datagrams on 4 flows to a port i1 does not open are each dropped once
//!   (`ingress-denied` at i1 grows by exactly 80) and a TCP connection to it times out.
//!
//! Uses only python3 in the namespaces (no benchmark tools).

mod common;

use serde_json::Value;

use common::*;

const POLICY: &str = r#"
[switch]
workers = 2

[[security_groups]]
name = "client"
rules = [
  { direction = "egress", ethertype = "IPv4" },
  { direction = "egress", ethertype = "IPv6" },
  { direction = "ingress", ethertype = "IPv4", protocol = "icmp" },
]

[[security_groups]]
name = "server"
rules = [
  { direction = "egress", ethertype = "IPv4" },
  { direction = "egress", ethertype = "IPv6" },
  { direction = "ingress", ethertype = "IPv4", protocol = "icmp" },
  { direction = "ingress", ethertype = "IPv4", protocol = "tcp", port_range_min = 7100, port_range_max = 7100 },
  { direction = "ingress", ethertype = "IPv4", protocol = "udp", port_range_min = 7200, port_range_max = 7200 },
]
"#;

/// In the client: 16 TCP connections and 16 UDP flows to `argv[1]` at once; prints one
/// line per flow: `tcpI OK` (exchanges that came back intact) or `udpI DISTINCT TOTAL`.
const CLIENT_PY: &str = r#"
import socket, sys, threading
dst = sys.argv[1]
res = {}
def tcp(i):
    ok = 0
    try:
        s = socket.create_connection((dst, 7100), timeout=5)
        for k in range(50):
            m = ("t%d-%d-" % (i, k)).encode().ljust(1000, b"x")
            s.sendall(m)
            want, got = b"echo " + m, b""
            while len(got) < len(want):
                d = s.recv(65536)
                if not d:
                    break
                got += d
            ok += got == want
        s.close()
    except OSError as e:
        print("tcp%d error %s" % (i, e), file=sys.stderr)
    res["tcp%d" % i] = "%d" % ok
def udp(i):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 0))
    s.settimeout(2)
    seen = {}
    for k in range(50):
        s.sendto(("u%d-%d" % (i, k)).encode(), (dst, 7200))
        try:
            d, _ = s.recvfrom(4096)
            seen[d] = seen.get(d, 0) + 1
        except socket.timeout:
            pass
    s.settimeout(0.3)
    try:
        while True:
            d, _ = s.recvfrom(4096)
            seen[d] = seen.get(d, 0) + 1
    except socket.timeout:
        pass
    res["udp%d" % i] = "%d %d" % (len(seen), sum(seen.values()))
ts = [threading.Thread(target=tcp, args=(i,)) for i in range(16)]
ts += [threading.Thread(target=udp, args=(i,)) for i in range(16)]
for t in ts:
    t.start()
for t in ts:
    t.join()
for k in sorted(res):
    print(k, res[k])
"#;

/// In the client: 20 datagrams on each of 4 flows to `argv[1]`:7301 (closed by policy).
const DENIED_PY: &str = r#"
import socket, sys, time
for i in range(4):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for k in range(20):
        s.sendto(b"denied", (sys.argv[1], 7301))
        time.sleep(0.002)
"#;

/// Frames each worker received on `name`'s queues: (worker, rx_packets).
fn queue_rx(s: &Value, name: &str) -> Vec<(u64, u64)> {
    let p = stats_port(s, name);
    p["queues"]
        .as_array()
        .unwrap_or_else(|| panic!("no per-queue counters for {name}: {p:#}"))
        .iter()
        .map(|q| {
            (
                q["worker"].as_u64().unwrap(),
                q["rx_packets"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn denied(s: &Value, name: &str) -> u64 {
    stats_port(s, name)["drops"]["ingress-denied"]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn two_queue_taps_spread_flows_and_keep_verdicts() {
    let test = "two_queue_taps_spread_flows_and_keep_verdicts";
    if !env_ready(test, Backend::Tap) {
        return;
    }
    let topo = Topo::new("mq", Backend::Tap, 2);
    let ports = topo
        .ports_toml(&[r#"["client"]"#, r#"["server"]"#])
        .replace("vnet_hdr = true }", "vnet_hdr = true, queues = 2 }");
    assert_eq!(ports.matches("queues = 2").count(), 2, "{ports}");
    let path = topo.write_config(&format!("{POLICY}{ports}"));
    let sw = Switch::start(&path, &topo.dir.path);
    topo.configure();
    let api = format!("http://{}", sw.api_addr().expect("API address in the log"));
    let (i0, i1) = (&topo.insts[0], &topo.insts[1]);
    for inst in [i0, i1] {
        let q = sh(&[
            "ip",
            "netns",
            "exec",
            &inst.ns.name,
            "ls",
            &format!("/sys/class/net/{}/queues", inst.ifname),
        ]);
        let mut q: Vec<&str> = q.split_whitespace().collect();
        q.sort();
        assert_eq!(q, ["rx-0", "rx-1", "tx-0", "tx-1"], "{}", inst.ifname);
    }
    assert!(ping(&i0.ns, &i1.v4, None, 5), "ping i0 -> i1");
    let _server = echo_server(&i1.ns, &[7100], &[7200]);

    let out = sh(&[
        "ip",
        "netns",
        "exec",
        &i0.ns.name,
        python(),
        "-c",
        CLIENT_PY,
        &i1.v4,
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 32, "{out}");
    for l in lines {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f[0].starts_with("tcp") {
            assert_eq!(f[1], "50", "every exchange of {} intact:\n{out}", f[0]);
        } else {
            assert_eq!(
                &f[1..],
                ["50", "50"],
                "{}: every datagram answered once:\n{out}",
                f[0]
            );
        }
    }
    let s = switch_stats(&api);
    for name in ["i0", "i1"] {
        let q = queue_rx(&s, name);
        eprintln!("{name}: frames received per worker {q:?}");
        assert_eq!(q.len(), 2, "{name} has a queue on each worker: {q:?}");
        // 16 connections of ~50 frames each way, owned by a hash of their ports: each
        // worker owns some (all 16 on one worker: 2^-15), and tun's flow table brings
        // each connection's frames to its owner's queue.
        assert!(
            q.iter().all(|(_, rx)| *rx >= 100),
            "{name}: both workers received its connections' frames: {q:?}"
        );
    }
    let w = s["workers"].as_array().expect("workers");
    assert!(
        w.iter().all(|w| w["rx"].as_u64().unwrap_or(0) > 0),
        "both workers judged frames: {w:?}"
    );
    // `status` names both workers of each port, and lists each port under both.
    let st = switch_status(&api);
    for name in ["i0", "i1"] {
        let p = st["ports"]
            .as_array()
            .and_then(|a| a.iter().find(|p| p["name"] == name))
            .unwrap_or_else(|| panic!("no {name} in {st:#}"));
        let mut ws: Vec<u64> = p["workers"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no workers in {p}"))
            .iter()
            .filter_map(Value::as_u64)
            .collect();
        assert_eq!(
            ws.first().copied(),
            p["worker"].as_u64(),
            "queue 0's first: {p}"
        );
        ws.sort_unstable();
        assert_eq!(ws, [0, 1], "{name}: {p}");
    }
    for w in st["workers"].as_array().expect("status workers") {
        assert_eq!(w["ports"], serde_json::json!(["i0", "i1"]), "{w}");
    }

    // A port i1 does not open: every datagram dropped once, whichever queue it came on.
    let before = denied(&s, "i1");
    sh(&[
        "ip",
        "netns",
        "exec",
        &i0.ns.name,
        python(),
        "-c",
        DENIED_PY,
        &i1.v4,
    ]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let after = denied(&switch_stats(&api), "i1");
    assert_eq!(
        after - before,
        80,
        "80 datagrams to a closed port, each dropped once"
    );
    assert_eq!(probe(&i0.ns, "tcp", &i1.v4, 7301, 1), "TIMEOUT");
}
