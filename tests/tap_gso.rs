//! GSO/TSO superframes through a running switch (#16): instances on tap ports send 64 KB
//! TSO superframes with partial checksums (the tap announces `TUN_F_TSO4|TSO6`, as a VM's
//! virtio-net), and the switch judges each superframe once and forwards it whole to a tap,
//! or segments it in software for an AF_PACKET port.
//!
//! * `tso_tap_to_tap_and_to_afpacket`: one switch, instances i0, i1 on taps and p2 on a
//!   veth with an AF_PACKET port. 8 MB over TCP i0 → i1 arrive intact (SHA-256), in
//!   superframes (i0's average received frame is far above an MTU) that crossed whole
//!   (`gso_segmented` of i1 stays 0); 2 MB i0 → p2 arrive intact, segmented by the switch
//!   (`gso_segmented` of p2 counts them), and every TCP segment tcpdump sees at p2 is at
//!   most an MTU with valid IPv4 and TCP checksums (the kernel's receiver checks them too:
//!   a bad one would stall the stream).
//!   Then p2's veth gets its default offloads back (TX checksum, TSO): 4 MB p2 → i1 arrive
//!   intact, p2's AF_PACKET port hands the superframes up whole (`PACKET_VNET_HDR`, none
//!   dropped) and i1's tap receives them whole.
//! * A superframe a rule must drop: i0 sends a 30 KB superframe to i1's closed port through
//!   a packet socket with `PACKET_VNET_HDR` (the kernel hands it to the switch with its
//!   GSO header): one `ingress-denied` drop at i1, not one per segment.
//!
//! Malformed headers cannot come through a tap (the instance's kernel rebuilds the header
//! from its own skb): they are unit tests (`port::gso`, `port::tap`) and the replay fixture
//! `gso-malformed` (`tests/replay_fixtures.rs` reads every fixture).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::*;
use sgswitch::lab::netns::{link_name, netns_name};
use sgswitch::lab::topo::{InstanceSpec, TempDir, Topo as LabTopo};

const POLICY: &str = r#"
[switch]
workers = 1

[[security_groups]]
name = "open"
rules = [
  { direction = "egress", ethertype = "IPv4" },
  { direction = "egress", ethertype = "IPv6" },
  { direction = "ingress", ethertype = "IPv4", protocol = "tcp", port_range_min = 7100, port_range_max = 7100 },
  { direction = "ingress", ethertype = "IPv4", protocol = "icmp" },
]
"#;

/// A TCP receiver in `ns` on port 7100: one connection, everything read, then `bytes
/// sha256` written to `out` (`ready` is created once it listens).
fn receiver(ns: &Netns, dir: &Path, tag: &str) -> (Proc, std::path::PathBuf) {
    let ready = dir.join(format!("{tag}.ready"));
    let out = dir.join(format!("{tag}.out"));
    let script = format!(
        "import socket,hashlib\n\
         s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
         s.bind(('0.0.0.0',7100)); s.listen(1); open('{ready}','w').close()\n\
         c,_=s.accept(); c.settimeout(20); h=hashlib.sha256(); n=0\n\
         while True:\n  d=c.recv(1<<20)\n  if not d: break\n  h.update(d); n+=len(d)\n\
         open('{out}','w').write('%d %s' % (n,h.hexdigest()))\n",
        ready = ready.display(),
        out = out.display()
    );
    let child = Command::new("ip")
        .args(["netns", "exec", &ns.name, python(), "-c", &script])
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn receiver");
    let p = Proc { child };
    assert!(
        wait_file(&ready, 10),
        "receiver in {} did not start",
        ns.name
    );
    (p, out)
}

/// Wait until `p` exists (a `.ready` file) or is not empty (an `.out` file).
fn wait_file(p: &Path, secs: u64) -> bool {
    let ready = p.extension().is_some_and(|e| e == "ready");
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if std::fs::metadata(p).is_ok_and(|m| ready || m.len() > 0) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Send `mb` MB of pseudo-random bytes from `ns` to `dst`:7100; returns `bytes sha256`.
fn send(ns: &Netns, dst: &str, mb: usize) -> String {
    let script = format!(
        "import socket,hashlib\n\
         blk=b''.join(hashlib.sha256(i.to_bytes(4,'big')).digest() for i in range(32768))\n\
         data=blk*{mb}\n\
         s=socket.create_connection(('{dst}',7100),timeout=10); s.sendall(data)\n\
         s.shutdown(socket.SHUT_WR); s.recv(1); s.close()\n\
         print('%d %s' % (len(data),hashlib.sha256(data).hexdigest()))\n"
    );
    sh(&["ip", "netns", "exec", &ns.name, python(), "-c", &script])
        .trim()
        .to_string()
}

fn n(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("no {k} in {v:#}"))
}

/// The IPv4 TCP segment `f` (Ethernet) has valid IPv4 and TCP checksums.
fn tcp_checksums_ok(f: &[u8]) -> bool {
    use sgswitch::port::gso::ones_complement_sum as sum;
    let ihl = usize::from(f[14] & 0x0f) * 4;
    let tot = u16::from_be_bytes([f[16], f[17]]) as usize;
    let l4 = 14 + ihl;
    let mut p = f[26..34].to_vec();
    p.extend_from_slice(&[0, 6]);
    p.extend_from_slice(&((tot - ihl) as u16).to_be_bytes());
    p.extend_from_slice(&f[l4..14 + tot]);
    sum(&f[14..l4]) == 0xffff && sum(&p) == 0xffff
}

/// Send one TSO superframe (a `PACKET_VNET_HDR` packet socket on the tap inside `ns`):
/// TCP ACK|PSH from `src` to `dst`:`dport`, `payload` bytes, `gso_size` 1448.
fn send_superframe(inst: &Instance, dst: &Instance, dport: u16, payload: usize) {
    let script = format!(
        "import socket,struct\n\
         def csum(b):\n  b=b+b'\\0'*(len(b)%2); s=sum(struct.unpack('!%dH'%(len(b)//2),b))\n  \
         while s>>16: s=(s&0xffff)+(s>>16)\n  return s\n\
         mac=lambda m: bytes(int(x,16) for x in m.split(':'))\n\
         ip=lambda a: socket.inet_aton(a)\n\
         pl=bytes(range(256))*({payload}//256)\n\
         tcp=struct.pack('!HHIIBBHHH',40000,{dport},1,1,0x50,0x18,65535,0,0)\n\
         tot=20+len(tcp)+len(pl)\n\
         iph=struct.pack('!BBHHHBBH4s4s',0x45,0,tot,1,0x4000,64,6,0,ip('{s4}'),ip('{d4}'))\n\
         iph=iph[:10]+struct.pack('!H',0xffff-csum(iph))+iph[12:]\n\
         seed=csum(ip('{s4}')+ip('{d4}')+struct.pack('!HH',6,len(tcp)+len(pl)))\n\
         tcp=tcp[:16]+struct.pack('!H',seed)+tcp[18:]\n\
         eth=mac('{dmac}')+mac('{smac}')+b'\\x08\\x00'\n\
         vnet=struct.pack('=BBHHHH',1,1,14+20+20,1448,34,16)\n\
         s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\n\
         s.setsockopt(263,15,1)\n\
         s.bind(('{ifname}',0))\n\
         s.send(vnet+eth+iph+tcp+pl)\n",
        s4 = inst.v4,
        d4 = dst.v4,
        dmac = dst.mac,
        smac = inst.mac,
        ifname = inst.ifname,
    );
    sh(&[
        "ip",
        "netns",
        "exec",
        &inst.ns.name,
        python(),
        "-c",
        &script,
    ]);
}

#[test]
fn tso_tap_to_tap_and_to_afpacket() {
    let test = "tso_tap_to_tap_and_to_afpacket";
    if !env_ready_with(test, Backend::AfPacket, &["tcpdump"]) {
        return;
    }
    let topo = Topo::new("gso", Backend::Tap, 2);
    // p2: a veth instance with an AF_PACKET port (checksum offload off in it, as the lab
    // sets veths up: it sends complete checksums and takes what the switch gives it).
    let vdir = TempDir::new(topo.dir.path.join("veth")).expect("dir");
    let spec = InstanceSpec {
        port: "p2".into(),
        ns: netns_name("gsov", 2),
        link: link_name("gsov", 2),
        mac: "fa:16:3e:00:00:12".into(),
        v4: "10.0.0.12".into(),
        v6: "fd00::12".into(),
    };
    let veth = LabTopo::build(Backend::AfPacket, vec![spec], vdir).expect("veth instance");
    let p2 = &veth.insts[0];
    let config = format!(
        "{POLICY}{}\n[[ports]]\nname = \"p2\"\nmac = \"{}\"\nfixed_ips = [\"{}\"]\n\
         security_groups = [\"open\"]\nbackend = {}\n",
        topo.ports_toml(&[r#"["open"]"#, r#"["open"]"#]),
        p2.mac,
        p2.v4,
        veth.backend_toml(0)
    );
    let path = topo.write_config(&config);
    let sw = Switch::start(&path, &topo.dir.path);
    topo.configure();
    let api = format!("http://{}", sw.api_addr().expect("API address in the log"));
    let (i0, i1) = (&topo.insts[0], &topo.insts[1]);
    let feat = sh(&[
        "ip",
        "netns",
        "exec",
        &i0.ns.name,
        "ethtool",
        "-k",
        &i0.ifname,
    ]);
    assert!(
        feat.contains("tcp-segmentation-offload: on"),
        "the tap announces TSO to the instance:\n{feat}"
    );
    assert!(ping(&i0.ns, &i1.v4, None, 5), "ping i0 -> i1");
    assert!(ping(&i0.ns, &p2.v4, None, 5), "ping i0 -> p2");

    // Tap to tap: superframes cross whole.
    let (_r1, out1) = receiver(&i1.ns, &topo.dir.path, "r1");
    let sent = send(&i0.ns, &i1.v4, 8);
    assert!(wait_file(&out1, 20), "i1 received nothing complete");
    assert_eq!(
        std::fs::read_to_string(&out1).unwrap(),
        sent,
        "i0 -> i1 stream"
    );
    let s = switch_stats(&api);
    let (s0, s1) = (stats_port(&s, "i0"), stats_port(&s, "i1"));
    let avg_rx = n(s0, "rx_bytes") / n(s0, "rx_packets").max(1);
    eprintln!(
        "i0 rx {} frames, {} B average; i1 {s1}",
        n(s0, "rx_packets"),
        avg_rx
    );
    assert!(
        avg_rx > 4000,
        "i0 sent superframes: average frame {avg_rx} B"
    );
    assert_eq!(n(s1, "gso_segmented"), 0, "nothing segmented for a tap");
    assert!(n(s1, "tx_bytes") / n(s1, "tx_packets").max(1) > 4000);

    // Tap to AF_PACKET: segmented by the switch, checked at the receiver.
    let pcap = topo.dir.path.join("p2.pcap");
    let cap = Capture::start(
        &p2.ns,
        &p2.ifname,
        Dir::In,
        &pcap,
        "tcp and src port not 7100",
    );
    let (_r2, out2) = receiver(&p2.ns, &topo.dir.path, "r2");
    // 2 MB: ~1,450 segments, each one slot of tcpdump's ring (about 1,000 slots in its
    // 256 MiB buffer: see `Capture::start`; a lost frame fails the capture).
    let sent = send(&i0.ns, &p2.v4, 2);
    assert!(wait_file(&out2, 20), "p2 received nothing complete");
    assert_eq!(
        std::fs::read_to_string(&out2).unwrap(),
        sent,
        "i0 -> p2 stream"
    );
    let frames = cap.stop();
    let s = switch_stats(&api);
    let seg = n(stats_port(&s, "p2"), "gso_segmented");
    eprintln!(
        "p2: {seg} segments made in software, {} frames captured",
        frames.len()
    );
    assert!(seg > 1000, "2 MB segmented for p2: {seg}");
    let data: Vec<_> = frames.iter().filter(|f| f.bytes.len() > 100).collect();
    assert!(data.len() > 100, "captured {} data segments", data.len());
    for f in &data {
        assert!(f.bytes.len() <= 1514, "a segment of {} B", f.bytes.len());
        assert!(tcp_checksums_ok(&f.bytes), "{}", frame_summary(&f.bytes));
    }

    // AF_PACKET to tap with the veth's default offloads back on in p2 (TX checksum,
    // TSO): p2's TCP sends superframes with partial checksums; the packet socket hands
    // them up with their header, the switch judges each once and gives it whole to i1's
    // tap (nothing dropped at p2, nothing segmented for i1).
    sh(&[
        "ip",
        "netns",
        "exec",
        &p2.ns.name,
        "ethtool",
        "-K",
        &p2.ifname,
        "tx",
        "on",
        "tso",
        "on",
        "gso",
        "on",
    ]);
    let s = switch_stats(&api);
    let (p2_rx_before, p2_drop_before) = (
        n(stats_port(&s, "p2"), "rx_packets"),
        n(stats_port(&s, "p2"), "io_rx_dropped"),
    );
    let i1_tx_before = (
        n(stats_port(&s, "i1"), "tx_packets"),
        n(stats_port(&s, "i1"), "tx_bytes"),
    );
    let (_r3, out3) = receiver(&i1.ns, &topo.dir.path, "r3");
    let sent = send(&p2.ns, &i1.v4, 4);
    assert!(wait_file(&out3, 20), "i1 received nothing complete from p2");
    assert_eq!(
        std::fs::read_to_string(&out3).unwrap(),
        sent,
        "p2 -> i1 stream"
    );
    let s = switch_stats(&api);
    let (sp2, si1) = (stats_port(&s, "p2"), stats_port(&s, "i1"));
    eprintln!("p2 with offloads on: p2 {sp2}; i1 {si1}");
    assert_eq!(
        n(sp2, "io_rx_dropped"),
        p2_drop_before,
        "no superframe dropped at p2"
    );
    let frames = n(sp2, "rx_packets") - p2_rx_before;
    assert!(
        frames > 0 && 4 * 1024 * 1024 / frames > 4000,
        "p2 sent superframes: {frames} frames for 4 MB"
    );
    let (tx_p, tx_b) = (
        n(si1, "tx_packets") - i1_tx_before.0,
        n(si1, "tx_bytes") - i1_tx_before.1,
    );
    assert!(
        tx_b / tx_p.max(1) > 4000,
        "whole superframes to i1: {tx_p} frames, {tx_b} B"
    );
    assert_eq!(n(si1, "gso_segmented"), 0, "nothing segmented for a tap");

    // A superframe to a closed port: judged once, dropped once (by whichever check
    // refuses a mid-stream segment of an unknown connection first).
    let dropped = |s: &Value| n(stats_port(s, "i0"), "dropped") + n(stats_port(s, "i1"), "dropped");
    let denied = |s: &Value| {
        stats_port(s, "i1")["drops"]["ingress-denied"]
            .as_u64()
            .unwrap_or(0)
    };
    let (before, denied_before) = {
        let s = switch_stats(&api);
        (dropped(&s), denied(&s))
    };
    send_superframe(i0, i1, 7101, 30_000);
    std::thread::sleep(Duration::from_millis(300));
    let s = switch_stats(&api);
    eprintln!(
        "after the superframe: i0 {} / i1 {}",
        stats_port(&s, "i0"),
        stats_port(&s, "i1")
    );
    assert_eq!(dropped(&s) - before, 1, "one drop for a 30 KB superframe");
    assert_eq!(denied(&s) - denied_before, 1, "by i1's ingress rules");
    assert_eq!(
        n(stats_port(&s, "i0"), "io_rx_dropped"),
        0,
        "the header was valid"
    );
}

/// With two workers each tap has its own: a superframe that crosses to the other worker is
/// segmented at the handoff (a handoff batch carries no metadata), and the stream arrives
/// intact. Where it crosses depends on which worker owns the connection (a hash of its
/// addresses and ports): the owner is i1's worker, the superframe is segmented when it is
/// steered there (counted against the ingress port, i0); the owner is i0's worker, when
/// it is delivered to i1 (counted against i1).
#[test]
fn tso_across_workers_is_segmented_at_the_handoff() {
    let test = "tso_across_workers_is_segmented_at_the_handoff";
    if !env_ready(test, Backend::Tap) {
        return;
    }
    let topo = Topo::new("gsow", Backend::Tap, 2);
    let policy = POLICY.replace("workers = 1", "workers = 2");
    let config = format!(
        "{policy}{}",
        topo.ports_toml(&[r#"["open"]"#, r#"["open"]"#])
    );
    let path = topo.write_config(&config);
    let sw = Switch::start(&path, &topo.dir.path);
    topo.configure();
    let api = format!("http://{}", sw.api_addr().expect("API address in the log"));
    let (i0, i1) = (&topo.insts[0], &topo.insts[1]);
    assert!(ping(&i0.ns, &i1.v4, None, 5), "ping i0 -> i1");
    let (_r, out) = receiver(&i1.ns, &topo.dir.path, "w1");
    let sent = send(&i0.ns, &i1.v4, 4);
    assert!(wait_file(&out, 20), "i1 received nothing complete");
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        sent,
        "i0 -> i1 stream"
    );
    let s = switch_stats(&api);
    let seg = n(stats_port(&s, "i0"), "gso_segmented") + n(stats_port(&s, "i1"), "gso_segmented");
    eprintln!(
        "{seg} segments made at the handoff; i0 {}, i1 {}",
        stats_port(&s, "i0"),
        stats_port(&s, "i1")
    );
    assert!(seg > 500, "4 MB segmented for the other worker: {seg}");
}
