//! `sgswitch replay` bad-input handling: every error is clear, names what is wrong and exits
//! non-zero; a failed `--apply-at` leaves the running policy untouched.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sgswitch::bench::frames::{ipv4_frame, pad, tcp, V4};
use sgswitch::port::pcap::{PcapNgWriter, PcapWriter};

const CONFIG: &str = r#"
[[security_groups]]
name = "web"
rules = [ { direction = "ingress", protocol = "tcp", port_range_min = 80, port_range_max = 80 } ]
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

const A: [u8; 6] = [0xfa, 0x16, 0x3e, 0, 0, 0x0a];
const B: [u8; 6] = [0xfa, 0x16, 0x3e, 0, 0, 0x0b];

struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("sgs-replay-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn syn(dport: u16, sport: u16) -> Vec<u8> {
    pad(ipv4_frame(
        B,
        A,
        V4::new([10, 0, 0, 10].into(), [10, 0, 0, 11].into(), 6),
        &tcp(sport, dport, 0x02, 1, 0, &[]),
    ))
}

fn write_pcapng(path: &Path, ifaces: &[&str], frames: &[(u32, u64, Vec<u8>)]) {
    let f = std::fs::File::create(path).unwrap();
    let mut w = PcapNgWriter::new(f, ifaces).unwrap();
    for (i, ts, fr) in frames {
        w.write(*i, *ts, fr, None).unwrap();
    }
    w.finish().unwrap();
}

fn replay(dir: &TempDir, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sgswitch"))
        .arg("replay")
        .args(args)
        .current_dir(&dir.0)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn unknown_interface_name_is_an_error() {
    let d = TempDir::new("ghost");
    std::fs::write(d.path("c.toml"), CONFIG).unwrap();
    write_pcapng(
        &d.path("x.pcapng"),
        &["vm-a", "ghost"],
        &[(0, 0, syn(80, 1000)), (1, 1, syn(80, 1001))],
    );
    let o = replay(&d, &["--config", "c.toml", "--json", "x.pcapng"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("'ghost'") && e.contains("no port has that name"),
        "{e}"
    );
    assert!(e.contains("vm-a, vm-b"), "lists the ports: {e}");
}

#[test]
fn pcap_without_in_port_is_an_error_and_with_it_works() {
    let d = TempDir::new("inport");
    std::fs::write(d.path("c.toml"), CONFIG).unwrap();
    let mut w = PcapWriter::new(std::fs::File::create(d.path("x.pcap")).unwrap()).unwrap();
    w.write(0, &syn(80, 1000)).unwrap();
    w.write(1000, &syn(81, 1001)).unwrap();
    w.finish().unwrap();
    let o = replay(&d, &["--config", "c.toml", "--json", "x.pcap"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--in-port"), "{}", stderr(&o));
    let o = replay(
        &d,
        &[
            "--config",
            "c.toml",
            "--json",
            "--in-port",
            "vm-a",
            "x.pcap",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        vec![
            concat!(
                r#"{"frame":1,"in_port":"vm-a","delivered":["vm-b"],"dropped":[],"#,
                r#""summary":"tcp 10.0.0.10:1000 > 10.0.0.11:80 flags S","ct":"new","#,
                r#""rules":[{"port":"vm-a","dir":"egress","group":"default","rule":0,"text":"egress IPv4 any to any"},"#,
                r#"{"port":"vm-b","dir":"ingress","group":"web","rule":0,"text":"ingress IPv4 tcp 80 from any"}],"why":[]}"#
            ),
            concat!(
                r#"{"frame":2,"in_port":"vm-a","delivered":[],"dropped":[{"port":"vm-b","reason":"ingress-denied"}],"#,
                r#""summary":"tcp 10.0.0.10:1001 > 10.0.0.11:81 flags S","ct":"new","#,
                r#""rules":[{"port":"vm-a","dir":"egress","group":"default","rule":0,"text":"egress IPv4 any to any"}],"#,
                r#""why":[{"port":"vm-b","text":"no ingress rule of vm-b (group web) allows tcp 81 from 10.0.0.10"}]}"#
            ),
        ]
    );
    let e = stderr(&o);
    assert!(e.contains("summary: 2 frames, 1 delivered"), "{e}");
    assert!(e.contains("ingress-denied"), "{e}");
    let o = replay(&d, &["--config", "c.toml", "--in-port", "nope", "x.pcap"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--in-port nope"), "{}", stderr(&o));
}

#[test]
fn unreadable_and_truncated_captures_are_errors() {
    let d = TempDir::new("trunc");
    std::fs::write(d.path("c.toml"), CONFIG).unwrap();
    let o = replay(&d, &["--config", "c.toml", "missing.pcapng"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("missing.pcapng: cannot open"),
        "{}",
        stderr(&o)
    );
    std::fs::write(d.path("junk.pcap"), b"this is not a capture at all").unwrap();
    let o = replay(&d, &["--config", "c.toml", "junk.pcap"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("not a pcap or pcapng file"),
        "{}",
        stderr(&o)
    );
    write_pcapng(
        &d.path("t.pcapng"),
        &["vm-a"],
        &[(0, 0, syn(80, 1)), (0, 1, syn(80, 2))],
    );
    let bytes = std::fs::read(d.path("t.pcapng")).unwrap();
    std::fs::write(d.path("t.pcapng"), &bytes[..bytes.len() - 10]).unwrap();
    let o = replay(&d, &["--config", "c.toml", "--json", "t.pcapng"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("truncated block"), "{}", stderr(&o));
    // The frame before the damage was still processed and printed.
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 1);
}

#[test]
fn failed_apply_at_keeps_the_running_policy() {
    let d = TempDir::new("apply");
    std::fs::write(d.path("c.toml"), CONFIG).unwrap();
    // An invalid config: port range on a protocol without ports.
    std::fs::write(
        d.path("bad.toml"),
        CONFIG.replace(r#"protocol = "tcp""#, r#"protocol = "gre""#),
    )
    .unwrap();
    // A valid config that allows nothing on vm-b.
    std::fs::write(
        d.path("closed.toml"),
        CONFIG.replace(
            r#"rules = [ { direction = "ingress", protocol = "tcp", port_range_min = 80, port_range_max = 80 } ]"#,
            "rules = []",
        ),
    )
    .unwrap();
    let frames = vec![
        (0, 0, syn(80, 1000)),
        (0, 2_000_000_000, syn(80, 1001)),
        (0, 4_000_000_000, syn(80, 1002)),
    ];
    write_pcapng(&d.path("x.pcapng"), &["vm-a"], &frames);
    let o = replay(
        &d,
        &[
            "--config",
            "c.toml",
            "--json",
            "--apply-at",
            "1=bad.toml",
            "--apply-at",
            "3.5=closed.toml",
            "x.pcapng",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "a failed --apply-at makes the exit code 1"
    );
    let e = stderr(&o);
    assert!(
        e.contains("bad.toml") && e.contains("running policy is unchanged"),
        "{e}"
    );
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[1].contains(r#""delivered":["vm-b"]"#),
        "old policy still in force: {}",
        lines[1]
    );
    assert!(
        lines[2].contains("ingress-denied"),
        "the valid change applied: {}",
        lines[2]
    );
    assert!(e.contains("policy changes: 1 applied, 1 failed"), "{e}");
}

#[test]
fn text_output_is_a_table_with_a_summary() {
    let d = TempDir::new("text");
    std::fs::write(d.path("c.toml"), CONFIG).unwrap();
    write_pcapng(
        &d.path("x.pcapng"),
        &["vm-a"],
        &[(0, 0, syn(80, 1)), (0, 1, syn(22, 2))],
    );
    let o = replay(&d, &["--config", "c.toml", "x.pcapng"]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.lines().next().unwrap().contains("delivered"), "{out}");
    assert!(out.contains("vm-b:ingress-denied"), "{out}");
    assert!(
        out.contains("summary: 2 frames, 1 delivered (1 deliveries), 1 drops"),
        "{out}"
    );
    // The columns added for #13: conntrack, the admitting rules, the frame itself.
    let header = out.lines().next().unwrap();
    for col in ["conntrack", "rules", "frame"] {
        assert!(header.contains(col), "{header}");
    }
    let lines: Vec<&str> = out.lines().collect();
    let words = |l: &str| l.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(
        words(lines[1]),
        words("1  vm-a  vm-b  -  new  default#0,web#0  tcp 10.0.0.10:1 > 10.0.0.11:80 flags S"),
        "{out}"
    );
    assert_eq!(
        words(lines[2]),
        words("2  vm-a  -  vm-b:ingress-denied  new  default#0  tcp 10.0.0.10:2 > 10.0.0.11:22 flags S"),
        "{out}"
    );
    assert!(
        out.contains("drops by port:\n  vm-b  ingress-denied"),
        "{out}"
    );
    assert!(out.contains("new connections by rule:"), "{out}");
    assert!(
        out.lines()
            .any(|l| words(l) == words("web#0  1  ingress IPv4 tcp 80 from any")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| words(l) == words("default#0  2  egress IPv4 any to any")),
        "{out}"
    );
}

/// A SYN, its SYN-ACK and ACK, a lone SYN-ACK, a refused SYN: every column of every line.
fn conversation(d: &TempDir) {
    std::fs::write(d.path("c.toml"), CONFIG).unwrap();
    let reply = |flags: u8, sport: u16, dport: u16| {
        pad(ipv4_frame(
            A,
            B,
            V4::new([10, 0, 0, 11].into(), [10, 0, 0, 10].into(), 6),
            &tcp(sport, dport, flags, 1, 1, &[]),
        ))
    };
    let ack = pad(ipv4_frame(
        B,
        A,
        V4::new([10, 0, 0, 10].into(), [10, 0, 0, 11].into(), 6),
        &tcp(1000, 80, 0x10, 2, 2, &[]),
    ));
    write_pcapng(
        &d.path("x.pcapng"),
        &["vm-a", "vm-b"],
        &[
            (0, 0, syn(80, 1000)),
            (1, 1, reply(0x12, 80, 1000)),
            (0, 2, ack),
            (1, 3, reply(0x12, 80, 2000)),
            (0, 4, syn(22, 1001)),
        ],
    );
}

#[test]
fn json_lines_explain_each_frame() {
    let d = TempDir::new("explain");
    conversation(&d);
    let o = replay(&d, &["--config", "c.toml", "--json", "x.pcapng"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let v: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(v.len(), 5);
    let cts: Vec<&str> = v.iter().map(|x| x["ct"].as_str().unwrap()).collect();
    assert_eq!(cts, ["new", "reply", "established", "invalid", "new"]);
    assert_eq!(
        v[1]["summary"],
        "tcp 10.0.0.11:80 > 10.0.0.10:1000 flags SA"
    );
    assert_eq!(v[3]["dropped"][0]["reason"], "invalid-state");
    assert_eq!(v[3]["why"][0]["port"], "vm-b");
    assert!(
        v[3]["why"][0]["text"]
            .as_str()
            .unwrap()
            .contains("flags SA"),
        "{}",
        v[3]
    );
    assert_eq!(v[0]["rules"][1]["group"], "web");
    assert_eq!(v[0]["rules"][1]["text"], "ingress IPv4 tcp 80 from any");
    assert_eq!(v[2]["rules"], serde_json::json!([]));
}

#[test]
fn only_dropped_and_port_filter_the_lines_not_the_summary() {
    let d = TempDir::new("filters");
    conversation(&d);
    let frames = |args: &[&str]| -> Vec<u64> {
        let mut a = vec!["--config", "c.toml", "--json"];
        a.extend_from_slice(args);
        a.push("x.pcapng");
        let o = replay(&d, &a);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("summary: 5 frames, 3 delivered"),
            "{}",
            stderr(&o)
        );
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["frame"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    };
    assert_eq!(frames(&[]), [1, 2, 3, 4, 5]);
    assert_eq!(frames(&["--only-dropped"]), [4, 5]);
    // vm-a: sends 1, 3, 5; receives 2 (4 is dropped at vm-b, its sender).
    assert_eq!(frames(&["--port", "vm-a"]), [1, 2, 3, 5]);
    assert_eq!(frames(&["--port", "vm-b", "--only-dropped"]), [4, 5]);
    let o = replay(&d, &["--config", "c.toml", "--port", "nope", "x.pcapng"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("--port nope: no port has that name"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn summary_counts_drops_by_port_and_connections_by_rule() {
    let d = TempDir::new("summary");
    conversation(&d);
    let o = replay(&d, &["--config", "c.toml", "x.pcapng"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let tail: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("summary:"))
        .collect();
    let words = |l: &str| l.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    let want = [
        "summary: 5 frames, 3 delivered (3 deliveries), 2 drops",
        "ingress-denied 1 no ingress rule of the receiving port allows it",
        "invalid-state 1 invalid for connection tracking",
        "drops by port:",
        "vm-b ingress-denied 1",
        "vm-b invalid-state 1",
        "new connections by rule:",
        "default#0 2 egress IPv4 any to any",
        "web#0 1 ingress IPv4 tcp 80 from any",
    ];
    let got: Vec<Vec<String>> = tail.iter().map(|l| words(l)).collect();
    let want: Vec<Vec<String>> = want.iter().map(|l| words(l)).collect();
    assert_eq!(got, want, "{out}");
}

/// Comments of the dropped frames, read back with another pcapng reader.
fn comments(path: &Path) -> Vec<(u32, String)> {
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;
    use pcap_file::pcapng::{Block, PcapNgReader};
    let mut r = PcapNgReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut out = Vec::new();
    while let Some(b) = r.next_block() {
        if let Block::EnhancedPacket(epb) = b.unwrap() {
            for o in &epb.options {
                if let EnhancedPacketOption::Comment(c) = o {
                    out.push((epb.interface_id, c.to_string()));
                }
            }
        }
    }
    out
}

#[test]
fn dropped_out_writes_the_dropped_frames_with_comments() {
    let d = TempDir::new("droppedout");
    conversation(&d);
    let o = replay(
        &d,
        &[
            "--config",
            "c.toml",
            "--dropped-out",
            "drops.pcapng",
            "x.pcapng",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let c = comments(&d.path("drops.pcapng"));
    assert_eq!(
        c,
        [
            (
                1,
                "port vm-b: invalid-state (TCP flags SA neither start a connection nor fit a tracked one)".to_string()
            ),
            (
                1,
                "port vm-b: ingress-denied (no ingress rule of vm-b (group web) allows tcp 22 from 10.0.0.10); vm-a egress admitted by default#0: egress IPv4 any to any".to_string()
            ),
        ]
    );
    // --out-dir's dropped.pcapng carries the same comments.
    let o = replay(&d, &["--config", "c.toml", "--out-dir", "out", "x.pcapng"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(comments(&d.path("out/dropped.pcapng")), c);
}

#[test]
fn no_progress_bar_when_stderr_is_not_a_terminal() {
    let d = TempDir::new("progress");
    conversation(&d);
    let o = replay(&d, &["--config", "c.toml", "--json", "x.pcapng"]);
    assert!(o.status.success());
    let e = stderr(&o);
    assert!(
        e.starts_with("summary:"),
        "only the summary on stderr: {e:?}"
    );
    assert!(!e.contains('\r') && !e.contains("frames/s"), "{e:?}");
}

fn udp_frame(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
) -> Vec<u8> {
    pad(ipv4_frame(
        dst_mac,
        src_mac,
        V4::new(src.into(), dst.into(), 17),
        &sgswitch::bench::frames::udp(sport, dport, b"ping"),
    ))
}

const UDP_CONFIG: &str = r#"
[[security_groups]]
name = "server"
rules = [ { direction = "ingress", protocol = "udp", port_range_min = 53, port_range_max = 53 }, { direction = "egress" } ]
[[security_groups]]
name = "client"
rules = [ { direction = "egress" } ]
[[ports]]
name = "vm-a"
mac = "fa:16:3e:00:00:0a"
fixed_ips = ["10.0.0.10"]
security_groups = ["client"]
[[ports]]
name = "vm-b"
mac = "fa:16:3e:00:00:0b"
fixed_ips = ["10.0.0.11"]
security_groups = ["server"]
[conntrack]
udp = 5
udp_stream = 5
capacity = 4
"#;

/// The capture's timestamps are the clock: a UDP reply within the timeout passes as part
/// of the connection; after the timeout the entry is gone and the reply is a new, denied
/// flow at the client. Reproducible, because no wall clock is involved.
#[test]
fn conntrack_timeouts_follow_the_capture_clock() {
    let d = TempDir::new("timeout");
    std::fs::write(d.path("c.toml"), UDP_CONFIG).unwrap();
    let (a, b) = ([10, 0, 0, 10], [10, 0, 0, 11]);
    let s = 1_000_000_000u64;
    let frames = vec![
        (0, 0, udp_frame(A, B, a, b, 4000, 53)),      // query
        (1, 2 * s, udp_frame(B, A, b, a, 53, 4000)),  // reply after 2 s: tracked
        (1, 20 * s, udp_frame(B, A, b, a, 53, 4000)), // 18 s of silence > 5 s: expired
    ];
    write_pcapng(&d.path("x.pcapng"), &["vm-a", "vm-b"], &frames);
    for _ in 0..2 {
        let o = replay(&d, &["--config", "c.toml", "--json", "x.pcapng"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines,
            vec![
                concat!(
                    r#"{"frame":1,"in_port":"vm-a","delivered":["vm-b"],"dropped":[],"#,
                    r#""summary":"udp 10.0.0.10:4000 > 10.0.0.11:53","ct":"new","#,
                    r#""rules":[{"port":"vm-a","dir":"egress","group":"client","rule":0,"text":"egress IPv4 any to any"},"#,
                    r#"{"port":"vm-b","dir":"ingress","group":"server","rule":0,"text":"ingress IPv4 udp 53 from any"}],"why":[]}"#
                ),
                concat!(
                    r#"{"frame":2,"in_port":"vm-b","delivered":["vm-a"],"dropped":[],"#,
                    r#""summary":"udp 10.0.0.11:53 > 10.0.0.10:4000","ct":"reply","rules":[],"why":[]}"#
                ),
                concat!(
                    r#"{"frame":3,"in_port":"vm-b","delivered":[],"dropped":[{"port":"vm-a","reason":"ingress-denied"}],"#,
                    r#""summary":"udp 10.0.0.11:53 > 10.0.0.10:4000","ct":"new","#,
                    r#""rules":[{"port":"vm-b","dir":"egress","group":"server","rule":1,"text":"egress IPv4 any to any"}],"#,
                    r#""why":[{"port":"vm-a","text":"no ingress rule of vm-a (group client) allows udp 4000 from 10.0.0.11"}]}"#
                ),
            ]
        );
    }
}

/// A full table first evicts unassured connections (Linux's early drop); when every
/// entry is an assured connection (a UDP query, its answer and a packet after it) it
/// refuses new ones (counted as `conntrack-full`) and keeps serving the tracked ones;
/// once entries expire, new connections are admitted again.
#[test]
fn full_conntrack_table_refuses_new_connections() {
    let d = TempDir::new("full");
    std::fs::write(d.path("c.toml"), UDP_CONFIG).unwrap();
    let (a, b) = ([10, 0, 0, 10], [10, 0, 0, 11]);
    let ms = 1_000_000u64;
    let mut frames = Vec::new();
    // Each admitted query takes two entries (vm-a's egress zone, vm-b's ingress zone):
    // capacity 4 holds two connections. Both are assured: answered, then a second query.
    for (i, sport) in [4000u16, 4001].iter().enumerate() {
        let t = 3 * i as u64 * ms;
        frames.push((0, t, udp_frame(A, B, a, b, *sport, 53)));
        frames.push((1, t + ms, udp_frame(B, A, b, a, 53, *sport)));
        frames.push((0, t + 2 * ms, udp_frame(A, B, a, b, *sport, 53)));
    }
    frames.push((0, 10 * ms, udp_frame(A, B, a, b, 4002, 53))); // no room
    frames.push((1, 11 * ms, udp_frame(B, A, b, a, 53, 4000))); // a tracked flow
    frames.push((0, 10_000 * ms, udp_frame(A, B, a, b, 4003, 53))); // after expiry
    write_pcapng(&d.path("x.pcapng"), &["vm-a", "vm-b"], &frames);
    let o = replay(&d, &["--config", "c.toml", "--json", "x.pcapng"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 9, "{out}");
    for l in &lines[..6] {
        assert!(!l.contains("dropped\":[{"), "{out}");
    }
    assert!(lines[6].contains("conntrack-full"), "{out}");
    assert!(lines[7].contains(r#""delivered":["vm-a"]"#), "{out}");
    assert!(
        lines[8].contains(r#""delivered":["vm-b"]"#),
        "expired entries make room: {out}"
    );
    assert!(stderr(&o).contains("conntrack-full"), "{}", stderr(&o));
}

/// Every packet a new, unanswered flow (a scan, or the benchmark's "new flow" mix): the
/// table never refuses, it evicts the oldest unanswered connections instead.
#[test]
fn full_table_of_unanswered_flows_keeps_admitting() {
    let d = TempDir::new("early");
    std::fs::write(d.path("c.toml"), UDP_CONFIG).unwrap();
    let (a, b) = ([10, 0, 0, 10], [10, 0, 0, 11]);
    let ms = 1_000_000u64;
    let frames: Vec<_> = (0..40u16)
        .map(|i| (0, i as u64 * ms, udp_frame(A, B, a, b, 5000 + i, 53)))
        .collect();
    write_pcapng(&d.path("x.pcapng"), &["vm-a", "vm-b"], &frames);
    let o = replay(&d, &["--config", "c.toml", "--json", "x.pcapng"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let delivered = out
        .lines()
        .filter(|l| l.contains(r#""delivered":["vm-b"]"#))
        .count();
    // A new key whose two candidate buckets hold no unanswered entry is still refused;
    // with a table this small almost every one finds a victim.
    assert!(delivered >= 30, "{delivered} of 40 admitted:\n{out}");
}
