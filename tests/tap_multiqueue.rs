//! Multiqueue taps (`IFF_MULTI_QUEUE`, #16) at the port layer: one tap netdev in an
//! instance namespace, several queues held by the switch side.
//!
//! Checked: the queues share one netdev (gone when the last queue closes), the
//! instance's flows are spread over the queues by the kernel, every flow stays on one
//! queue, and a flow's frames follow the queue the switch last wrote that flow's frames
//! on, in both directions (tun's flow table with the symmetric flow hash): what lets the
//! runtime give each worker a queue and keep a connection's frames on its owner.
//!
//! Needs root, `ip` and `python3`; without them it prints why it skips; under `CI=true` it
//! fails instead. The namespace is named after the process id and removed by a Drop guard,
//! even on panic (the tap goes with its fds).

mod common;

use common::in_ci;
use sgswitch::port::tap::{TapConfig, TapPort};
use sgswitch::port::{FrameBatch, Port};
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

struct Ns(String);
impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ready() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let tools = Command::new("ip").arg("-V").output().is_ok()
        && Command::new("python3").arg("-V").output().is_ok();
    if root && tools {
        return true;
    }
    assert!(
        !in_ci(),
        "tap_multiqueue: needs root, ip and python3 under CI"
    );
    eprintln!("tap_multiqueue: skipped (needs root, ip and python3)");
    false
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const INST_MAC: [u8; 6] = [0x02, 0x6d, 0x71, 0, 0, 1];
const PEER_MAC: [u8; 6] = [0x02, 0x6d, 0x71, 0, 0, 2];

/// From the instance: 4 UDP datagrams from each source port in `sports` to 10.77.0.2:9.
fn send_from_instance(ns: &str, sports: std::ops::Range<u16>) {
    let py = format!(
        "import socket\nfor p in range({}, {}):\n    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n    s.bind(('10.77.0.1', p))\n    for _ in range(4):\n        s.sendto(b'x' * 18, ('10.77.0.2', 9))\n    s.close()\n",
        sports.start, sports.end
    );
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "python3", "-c", &py])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every UDP frame to port 9 read from each queue within `secs`: source port -> queues.
fn drain(queues: &mut [TapPort], secs: f64, want: usize) -> BTreeMap<u16, BTreeSet<usize>> {
    let mut seen: BTreeMap<u16, BTreeSet<usize>> = BTreeMap::new();
    let mut total = 0;
    let mut batch = FrameBatch::new(32, 2048);
    let end = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < end && total < want {
        for (q, p) in queues.iter_mut().enumerate() {
            batch.clear();
            p.rx_burst(&mut batch).expect("rx");
            for f in batch.iter() {
                // IPv4 (no options) UDP to port 9: source port at 34..36.
                if f.len() >= 42 && f[12..14] == [8, 0] && f[23] == 17 && f[36..38] == [0, 9] {
                    seen.entry(u16::from_be_bytes([f[34], f[35]]))
                        .or_default()
                        .insert(q);
                    total += 1;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    seen
}

/// A UDP frame PEER (10.77.0.2:9) -> instance (10.77.0.1:`dport`), checksum 0 (none).
fn reply(dport: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&INST_MAC);
    f.extend_from_slice(&PEER_MAC);
    f.extend_from_slice(&[8, 0]);
    let mut iph = [
        0x45u8, 0, 0, 46, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 77, 0, 2, 10, 77, 0, 1,
    ];
    let sum = sgswitch::port::tap::ones_complement_sum(&iph);
    iph[10..12].copy_from_slice(&(!sum).to_be_bytes());
    f.extend_from_slice(&iph);
    f.extend_from_slice(&9u16.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&26u16.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&[0u8; 18]);
    f
}

#[test]
fn multiqueue_tap_spreads_flows_and_follows_the_writer() {
    if !ready() {
        return;
    }
    let pid = std::process::id();
    let ns = Ns(format!("sgmq-{pid}"));
    ip(&["netns", "add", &ns.0]);
    let name = format!("sgmq{pid}");
    let mut queues = TapPort::open_multiqueue(
        &TapConfig {
            name: name.clone(),
            netns: Some(ns.0.clone()),
            ..Default::default()
        },
        2,
    )
    .expect("open a 2-queue tap");
    assert_eq!(queues.len(), 2);
    assert!(queues.iter().all(|q| q.ifname() == name), "one netdev");
    let mac = INST_MAC.map(|b| format!("{b:02x}")).join(":");
    let peer = PEER_MAC.map(|b| format!("{b:02x}")).join(":");
    ip(&["-n", &ns.0, "link", "set", &name, "address", &mac]);
    ip(&["-n", &ns.0, "addr", "add", "10.77.0.1/24", "dev", &name]);
    ip(&[
        "-n",
        &ns.0,
        "neigh",
        "replace",
        "10.77.0.2",
        "lladdr",
        &peer,
        "dev",
        &name,
    ]);
    ip(&["-n", &ns.0, "link", "set", &name, "up"]);

    // 1. 64 flows from the instance: spread over both queues, each flow on one queue.
    send_from_instance(&ns.0, 20000..20064);
    let seen = drain(&mut queues, 5.0, 64 * 4);
    assert_eq!(seen.len(), 64, "every flow arrives: {seen:?}");
    assert!(
        seen.values().all(|q| q.len() == 1),
        "a flow stays on one queue: {seen:?}"
    );
    let on: BTreeSet<usize> = seen.values().flatten().copied().collect();
    assert_eq!(on.len(), 2, "flows use both queues: {seen:?}");

    // 2. The switch answers every flow on the *other* queue; the instance's next frames
    // of each flow must then arrive on that queue (tun learns flow -> queue from writes,
    // with the symmetric hash: the reply and the next datagram are one flow).
    for (&sport, q) in &seen {
        let other = 1 - *q.iter().next().unwrap();
        let f = reply(sport);
        assert_eq!(queues[other].tx_burst(&[&f]).expect("tx"), 1);
    }
    send_from_instance(&ns.0, 20000..20064);
    let again = drain(&mut queues, 5.0, 64 * 4);
    assert_eq!(again.len(), 64, "every flow arrives again: {again:?}");
    for (sport, q) in &again {
        let before = *seen[sport].iter().next().unwrap();
        assert_eq!(
            q.iter().copied().collect::<Vec<_>>(),
            vec![1 - before],
            "flow {sport} follows the queue the switch wrote it on"
        );
    }

    // 3. One netdev for all queues: gone only when the last queue closes.
    let last = queues.pop().unwrap();
    drop(queues);
    let up = Command::new("ip")
        .args(["-n", &ns.0, "link", "show", &name])
        .output()
        .unwrap();
    assert!(up.status.success(), "the tap lives while a queue is open");
    drop(last);
    let gone = Command::new("ip")
        .args(["-n", &ns.0, "link", "show", &name])
        .output()
        .unwrap();
    assert!(!gone.status.success(), "the tap goes with its last queue");
}
