//! The live test matrix: `sgswitch run` between instances in network namespaces for every
//! backend {afxdp, afxdp `--copy-forward`, afpacket, tap} × workers {1, 2} × ports
//! {2, 3, 5}, each cell checked for the basics an instance network must give:
//!
//! * neighbour resolution: ARP (IPv4) and neighbour solicitation (IPv6) from every port
//!   of network `a` to every other one, answered with the right MAC (done by hand from a
//!   raw socket, so an entry learned from the other side's request cannot pass for it);
//! * ICMP echo both ways between every pair, IPv4 and IPv6;
//! * TCP and UDP request/response (IPv4 and IPv6) between every pair: the groups allow
//!   the requests in, and the replies pass only statefully (no ingress rule matches them);
//! * a blocked flow (TCP 7002 and UDP 7003, no rule allows them in, although a server
//!   listens) gets no answer, and the switch's counters show `ingress-denied` on the
//!   receiving port;
//! * broadcast and multicast stay in their network: an IPv4 broadcast and an IPv6
//!   all-nodes multicast from two ports of `a` reach every other port of `a` exactly once
//!   and no port of `b`; a broadcast from `b` reaches no port of `a` (tcpdump in every
//!   namespace).
//!
//! Ports go to workers round robin in config order (`Switch::start`), so with 2 workers
//! `i0` and `i1` (the pairs checked both ways) live on different workers and every pair
//! of workers exchanges frames. Network `b` has one port in every cell: the 5-port cells
//! put their last port there, the 2- and 3-port cells get it as an extra port.
//!
//! Cost: one #[test] per backend, its namespaces (and veths) built once and reused by its
//! six cells, one switch per cell for all its checks, short timeouts; the tests of this
//! file run one at a time (a lock), so the matrix does not compete with itself for the
//! two cores. Every cell runs to the end whatever fails in it (a panic inside a cell is
//! one of its failures); the test then fails with a table of cell → failed checks.
//!
//! Needs root, iproute2, iputils-ping, python3, tcpdump and (veth backends) ethtool;
//! without them a test skips with a message, under `CI=true` it fails.

mod common;

use common::{
    echo_server, env_ready_with, grew, neigh_flush, pings, probes, resolve, send_udp, xdp_attached,
    Backend, Capture, Dir, Instance, Switch, Topo, Variant, POLICY, SERIAL,
};
use std::collections::BTreeMap;
use std::time::Duration;

/// The instance (namespace) on network `b` in every cell.
const B: usize = 4;

/// One cell: the instances of network `a`, then `b`'s, in config order.
struct Cell {
    name: String,
    workers: usize,
    a: Vec<usize>,
    b: Vec<usize>,
}

impl Cell {
    fn new(v: Variant, workers: usize, ports: usize) -> Cell {
        let a: Vec<usize> = match ports {
            5 => (0..4).collect(),
            n => (0..n).collect(),
        };
        Cell {
            name: format!("{} workers={workers} ports={ports}", v.name),
            workers,
            b: vec![B],
            a,
        }
    }

    fn all(&self) -> Vec<usize> {
        self.a.iter().chain(&self.b).copied().collect()
    }
}

fn config(topo: &Topo, cell: &Cell) -> String {
    let mut s = POLICY.to_string();
    for i in cell.all() {
        let inst = &topo.insts[i];
        let net = if cell.b.contains(&i) { "b" } else { "a" };
        s.push_str(&format!(
            "\n[[ports]]\nname = \"{}\"\nnetwork = \"{net}\"\nmac = \"{}\"\n\
             fixed_ips = [\"{}\", \"{}\"]\nsecurity_groups = [\"inst\"]\nbackend = {}\n",
            inst.port,
            inst.mac,
            inst.v4,
            inst.v6,
            topo.backend_toml(i)
        ));
    }
    s
}

fn matrix(tag: &str, v: Variant) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let test = format!("live_matrix_{}", v.name);
    if !env_ready_with(&test, v.backend, &["tcpdump"]) {
        return;
    }
    let topo = Topo::new(tag, v.backend, 5);
    // Servers on the allowed and the denied ports, in every namespace, for all cells.
    let _servers: Vec<common::Proc> = topo
        .insts
        .iter()
        .map(|i| echo_server(&i.ns, &[7000, 7002], &[7001, 7003]))
        .collect();
    let mut table: Vec<(String, Vec<String>)> = Vec::new();
    for workers in [1, 2] {
        for ports in [2, 3, 5] {
            let cell = Cell::new(v, workers, ports);
            let started = std::time::Instant::now();
            let failures = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_cell(&topo, v, &cell)
            })) {
                Ok(f) => f,
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
                "{}: {} in {:.1} s",
                cell.name,
                if failures.is_empty() {
                    "ok".to_string()
                } else {
                    format!("{} failed", failures.len())
                },
                started.elapsed().as_secs_f64()
            );
            table.push((cell.name, failures));
        }
    }
    let mut report = String::new();
    for (name, f) in &table {
        if f.is_empty() {
            report.push_str(&format!("{name:<42} ok\n"));
        } else {
            report.push_str(&format!("{name:<42} {} failed:\n", f.len()));
            for x in f {
                report.push_str(&format!("{:<44}{x}\n", ""));
            }
        }
    }
    eprintln!("{test}:\n{report}");
    assert!(
        table.iter().all(|(_, f)| f.is_empty()),
        "{test}: cell -> failed checks\n{report}"
    );
}

/// (target address, the link-layer address it answered with).
type Answers = Vec<(String, Option<String>)>;

/// Run one cell's checks on a fresh switch; the list of what failed.
fn run_cell(topo: &Topo, v: Variant, cell: &Cell) -> Vec<String> {
    let mut fails: Vec<String> = Vec::new();
    let path = topo.write_config(&config(topo, cell));
    let w = cell.workers.to_string();
    let mut args = vec!["--workers", w.as_str()];
    if v.copy_forward {
        args.push("--copy-forward");
    }
    let mut sw = Switch::start_args(&path, &topo.dir.path, &args);
    let plural = if cell.workers == 1 { "" } else { "s" };
    if !sw
        .log_text()
        .contains(&format!(" {} worker{plural}", cell.workers))
    {
        fails.push(format!(
            "not started with {} worker{plural}: {}",
            cell.workers,
            sw.log_text().trim()
        ));
    }
    let all = cell.all();
    if v.backend == Backend::Tap {
        for &i in &all {
            topo.configure_one(i);
        }
    }
    for &i in &all {
        neigh_flush(&topo.insts[i].ns);
    }
    let inst = |i: usize| -> &Instance { &topo.insts[i] };
    let names: Vec<&str> = all.iter().map(|&i| inst(i).port.as_str()).collect();
    let pairs: Vec<(usize, usize)> = cell
        .a
        .iter()
        .flat_map(|&s| {
            cell.a
                .iter()
                .filter(move |&&d| d != s)
                .map(move |&d| (s, d))
        })
        .collect();

    // 1. Neighbour resolution, from every port of `a` to every other, at once.
    let resolved: Vec<(usize, Answers)> = std::thread::scope(|s| {
        let hs: Vec<_> = cell
            .a
            .iter()
            .map(|&src| {
                s.spawn(move || {
                    let targets: Vec<&str> = cell
                        .a
                        .iter()
                        .filter(|&&d| d != src)
                        .flat_map(|&d| [inst(d).v4.as_str(), inst(d).v6.as_str()])
                        .collect();
                    let got = resolve(inst(src), &targets, 2.0);
                    (
                        src,
                        targets.iter().map(|t| t.to_string()).zip(got).collect(),
                    )
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (src, list) in resolved {
        for (target, mac) in list {
            let dst = cell
                .a
                .iter()
                .copied()
                .find(|&d| inst(d).v4 == target || inst(d).v6 == target)
                .unwrap();
            let what = if target.contains(':') { "nd" } else { "arp" };
            match mac {
                Some(m) if m == inst(dst).mac => {}
                Some(m) => fails.push(format!(
                    "{what} {} -> {target} ({}): answered with {m}, expected {}",
                    inst(src).port,
                    inst(dst).port,
                    inst(dst).mac
                )),
                None => fails.push(format!(
                    "{what} {} -> {target} ({}): no answer",
                    inst(src).port,
                    inst(dst).port
                )),
            }
        }
    }

    // 2. Ping both ways between every pair, IPv4 and IPv6.
    let list: Vec<(&common::Netns, &str)> = pairs
        .iter()
        .flat_map(|&(s, d)| {
            [
                (&inst(s).ns, inst(d).v4.as_str()),
                (&inst(s).ns, inst(d).v6.as_str()),
            ]
        })
        .collect();
    let got = pings(&list, 3);
    for (k, ok) in got.iter().enumerate() {
        if !ok {
            let (s, d) = pairs[k / 2];
            fails.push(format!(
                "ping{} {} -> {} {}: no reply",
                if k % 2 == 0 { "" } else { " -6" },
                inst(s).port,
                inst(d).port,
                list[k].1
            ));
        }
    }

    // 3. TCP and UDP request/response (replies pass statefully), IPv4 and IPv6.
    let results: Vec<(usize, Vec<(String, String)>)> = std::thread::scope(|s| {
        let hs: Vec<_> = cell
            .a
            .iter()
            .map(|&src| {
                s.spawn(move || {
                    let mut ps: Vec<(&str, &str, u16)> = Vec::new();
                    for &d in cell.a.iter().filter(|&&d| d != src) {
                        for h in [inst(d).v4.as_str(), inst(d).v6.as_str()] {
                            ps.push(("tcp", h, 7000));
                            ps.push(("udp", h, 7001));
                        }
                    }
                    let got = probes(&inst(src).ns, &ps, 2.0);
                    (
                        src,
                        ps.iter()
                            .map(|(k, h, p)| format!("{k}/{p} to {h}"))
                            .zip(got)
                            .collect(),
                    )
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (src, list) in results {
        for (what, r) in list {
            if r != "PASS" {
                fails.push(format!("{what} from {}: {r}", inst(src).port));
            }
        }
    }

    // 4. Blocked flows, between the two first ports both ways (two workers when there
    //    are two): no answer, and ingress-denied counted on the receiving port.
    let (p0, p1) = (cell.a[0], cell.a[1]);
    let before = sw.drops(&names);
    let blocked: Vec<(usize, usize, Vec<String>)> = std::thread::scope(|s| {
        let hs: Vec<_> = [(p0, p1), (p1, p0)]
            .into_iter()
            .map(|(src, dst)| {
                s.spawn(move || {
                    let d = inst(dst);
                    let ps = [
                        ("tcp", d.v4.as_str(), 7002),
                        ("tcp", d.v6.as_str(), 7002),
                        ("udp", d.v4.as_str(), 7003),
                    ];
                    let got = probes(&inst(src).ns, &ps, 1.0);
                    let list = ps
                        .iter()
                        .zip(got)
                        .filter(|(_, r)| r != "TIMEOUT")
                        .map(|((k, h, p), r)| format!("{k}/{p} to {h}: {r}, expected TIMEOUT"))
                        .collect();
                    (src, dst, list)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let after = sw.drops(&names);
    for (src, dst, list) in blocked {
        for x in list {
            fails.push(format!("blocked {x} (from {})", inst(src).port));
        }
        let port = inst(dst).port.as_str();
        let n = grew(&before, &after, port, "ingress-denied");
        if n < 3 {
            fails.push(format!(
                "blocked flows to {port}: ingress-denied on {port} grew by {n}, expected >= 3 \
                 (tcp/7002 v4 and v6, udp/7003); counters {after:?}"
            ));
        }
    }

    // 5. Broadcast and multicast stay in their network.
    let caps: Vec<(usize, Capture)> = all
        .iter()
        .map(|&i| {
            let file = topo.dir.path.join(format!("bcast-{}.pcap", inst(i).port));
            (
                i,
                Capture::start(
                    &inst(i).ns,
                    &inst(i).ifname,
                    Dir::In,
                    &file,
                    "udp port 7005",
                ),
            )
        })
        .collect();
    // (sender, payload marker)
    let mut sent: Vec<(usize, String)> = Vec::new();
    for &src in &[p0, p1] {
        let m4 = format!("mark-{}-bcast4", inst(src).port);
        let m6 = format!("mark-{}-mcast6", inst(src).port);
        send_udp(
            inst(src),
            &[("255.255.255.255", 7005, &m4), ("ff02::1", 7005, &m6)],
        );
        sent.push((src, m4));
        sent.push((src, m6));
    }
    let mb = format!("mark-{}-bcast4", inst(B).port);
    send_udp(inst(B), &[("255.255.255.255", 7005, &mb)]);
    sent.push((B, mb));
    std::thread::sleep(Duration::from_millis(400));
    let seen: BTreeMap<usize, Vec<Vec<u8>>> = caps
        .into_iter()
        .map(|(i, c)| (i, c.stop().into_iter().map(|f| f.bytes).collect()))
        .collect();
    for (src, marker) in &sent {
        let src_net_a = cell.a.contains(src);
        for &rcv in &all {
            let n = seen[&rcv]
                .iter()
                .filter(|f| f.windows(marker.len()).any(|w| w == marker.as_bytes()))
                .count();
            let same_net = cell.a.contains(&rcv) == src_net_a;
            let want = usize::from(same_net && rcv != *src);
            if n != want {
                fails.push(format!(
                    "{marker} from {} ({}): reached {} {n} times, expected {want} ({})",
                    inst(*src).port,
                    if src_net_a { "network a" } else { "network b" },
                    inst(rcv).port,
                    if rcv == *src {
                        "the sender"
                    } else if same_net {
                        "same network"
                    } else {
                        "other network"
                    }
                ));
            }
        }
    }

    // The switch stops cleanly and leaves no XDP program behind.
    let status = sw.stop(Duration::from_secs(10));
    if !status.is_some_and(|s| s.success()) {
        fails.push(format!(
            "switch did not stop cleanly: {status:?}\n{}",
            sw.log_text()
        ));
    }
    if v.backend == Backend::AfXdp {
        for &i in &all {
            if xdp_attached(&inst(i).link) {
                fails.push(format!("XDP still attached to {} after stop", inst(i).link));
            }
        }
    }
    if !fails.is_empty() {
        eprintln!("{}: switch log:\n{}", cell.name, sw.log_text());
    }
    fails
}

#[test]
fn live_matrix_afxdp() {
    matrix("mx", Variant::AFXDP);
}

#[test]
fn live_matrix_afxdp_copy_forward() {
    matrix("mc", Variant::AFXDP_COPY_FORWARD);
}

#[test]
fn live_matrix_afpacket() {
    matrix("mp", Variant::AFPACKET);
}

#[test]
fn live_matrix_tap() {
    matrix("mt", Variant::TAP);
}
