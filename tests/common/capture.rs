//! Packet captures for the live tests: tcpdump inside a namespace to a pcap file, the
//! frames read back (with the library's pcap reader), and one-line frame summaries for
//! failure messages.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::{signal, Netns};

/// Which frames of an interface a capture sees (tcpdump `-Q`): `In`, frames the interface
/// received (for an instance: what the switch delivered to its port); `Out`, frames it
/// sent (what entered the switch on its port).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    In,
    Out,
}

/// A tcpdump capture inside a namespace, to a pcap file (nanosecond timestamps, whole
/// frames, written as they come). [`Capture::start`] returns once tcpdump listens;
/// [`Capture::stop`] sends SIGINT (tcpdump flushes) and reads the frames. Killed on drop.
pub struct Capture {
    child: Option<Child>,
    stderr: Option<std::thread::JoinHandle<String>>,
    pub file: PathBuf,
    /// `NS/IF in|out`, for messages.
    pub what: String,
}

/// One captured frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub ts_ns: u64,
    /// Interface index in the file (pcapng), 0 for pcap.
    pub interface: usize,
    pub bytes: Vec<u8>,
}

impl Capture {
    /// Start tcpdump on `ifname` in `ns`; `filter` is a pcap filter ("" for every frame).
    /// Panics (with tcpdump's words) if it does not report listening within 10 s.
    pub fn start(ns: &Netns, ifname: &str, dir: Dir, file: &Path, filter: &str) -> Capture {
        let q = match dir {
            Dir::In => "in",
            Dir::Out => "out",
        };
        let what = format!("{}/{ifname} {q}", ns.name);
        let file_s = file.to_string_lossy().into_owned();
        let mut args = vec![
            "tcpdump",
            "-i",
            ifname,
            "-Q",
            q,
            "-U",
            "-w",
            &file_s,
            "--immediate-mode",
            // A 256 MiB kernel buffer (2 MiB by default). In immediate mode libpcap's ring
            // has one slot per frame sized for the whole snapshot length (262,144 B with
            // `-s 0`), so 32 MiB held only about 128 frames: a tcpdump descheduled on a
            // loaded 2-core machine lost 66 of 1,452 MTU-sized frames with it (and 30 of
            // 2,646 with the default).
            "-B",
            "262144",
            "-s",
            "0",
            "-n",
            "--time-stamp-precision",
            "nano",
            // Debian's tcpdump drops to user tcpdump, who could not write the file.
            "-Z",
            "root",
        ];
        if !filter.is_empty() {
            args.push(filter);
        }
        let mut child = ns
            .cmd(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tcpdump");
        let err = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let reader = std::thread::spawn(move || {
            let mut all = String::new();
            let mut r = BufReader::new(err);
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                if line.contains("listening on") {
                    let _ = tx.send(());
                }
                all.push_str(&line);
                line.clear();
            }
            all
        });
        let mut cap = Capture {
            child: Some(child),
            stderr: Some(reader),
            file: file.to_path_buf(),
            what,
        };
        if rx.recv_timeout(Duration::from_secs(10)).is_err() {
            if let Some(mut c) = cap.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
            let said = cap
                .stderr
                .take()
                .and_then(|h| h.join().ok())
                .unwrap_or_default();
            panic!("tcpdump ({}) did not start: {said}", cap.what);
        }
        cap
    }

    /// Stop with SIGINT, wait for tcpdump to exit and return the captured frames.
    /// Panics if tcpdump does not exit, fails, or reports frames dropped by the kernel
    /// (the capture would be incomplete).
    pub fn stop(mut self) -> Vec<Frame> {
        let mut child = self.child.take().expect("capture running");
        signal(child.id(), libc::SIGINT);
        let end = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Ok(Some(st)) = child.try_wait() {
                break Some(st);
            }
            if Instant::now() > end {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let said = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        assert!(
            status.is_some_and(|s| s.success()),
            "tcpdump ({}) did not stop cleanly ({status:?}): {said}",
            self.what
        );
        assert!(
            said.lines()
                .any(|l| l.trim() == "0 packets dropped by kernel"),
            "tcpdump ({}) lost frames: {said}",
            self.what
        );
        read_capture(&self.file)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Every frame of a pcap or pcapng file (panics if it cannot be read).
pub fn read_capture(path: &Path) -> Vec<Frame> {
    use sgswitch::port::pcap::CaptureReader;
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut r =
        CaptureReader::new(BufReader::new(f)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while let Some(rec) = r
        .next_frame(&mut buf)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    {
        out.push(Frame {
            ts_ns: rec.ts_ns,
            interface: rec.interface,
            bytes: buf.clone(),
        });
    }
    out
}

fn mac_str(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A one-line description of a frame for failure messages: MACs, ethertype, and for
/// ARP, IPv4 and IPv6 the addresses, protocol, ports or ICMP type, and the length.
pub fn frame_summary(f: &[u8]) -> String {
    if f.len() < 14 {
        return format!("runt frame of {} bytes", f.len());
    }
    let et = u16::from_be_bytes([f[12], f[13]]);
    let head = format!(
        "{} > {} len {}",
        mac_str(&f[6..12]),
        mac_str(&f[0..6]),
        f.len()
    );
    let p = &f[14..];
    let l4 = |proto: u8, l: &[u8]| -> String {
        match proto {
            6 if l.len() >= 14 => {
                let flags = l[13];
                let names: String = [
                    (0x02, 'S'),
                    (0x10, '.'),
                    (0x01, 'F'),
                    (0x04, 'R'),
                    (0x08, 'P'),
                ]
                .iter()
                .filter(|(b, _)| flags & b != 0)
                .map(|(_, c)| *c)
                .collect();
                format!(
                    "tcp {} > {} [{names}]",
                    u16::from_be_bytes([l[0], l[1]]),
                    u16::from_be_bytes([l[2], l[3]])
                )
            }
            17 if l.len() >= 8 => format!(
                "udp {} > {}",
                u16::from_be_bytes([l[0], l[1]]),
                u16::from_be_bytes([l[2], l[3]])
            ),
            1 if l.len() >= 2 => format!("icmp type {} code {}", l[0], l[1]),
            58 if l.len() >= 2 => format!("icmp6 type {} code {}", l[0], l[1]),
            n => format!("proto {n}"),
        }
    };
    match et {
        0x0806 if p.len() >= 28 => format!(
            "{head} arp {} {}.{}.{}.{} ({}) -> {}.{}.{}.{} ({})",
            if p[7] == 1 { "request" } else { "reply" },
            p[14],
            p[15],
            p[16],
            p[17],
            mac_str(&p[8..14]),
            p[24],
            p[25],
            p[26],
            p[27],
            mac_str(&p[18..24])
        ),
        0x0800 if p.len() >= 20 => {
            let ihl = usize::from(p[0] & 0x0f) * 4;
            format!(
                "{head} ipv4 {}.{}.{}.{} > {}.{}.{}.{} {}",
                p[12],
                p[13],
                p[14],
                p[15],
                p[16],
                p[17],
                p[18],
                p[19],
                l4(p[9], p.get(ihl..).unwrap_or(&[]))
            )
        }
        0x86dd if p.len() >= 40 => {
            let a = |b: &[u8]| {
                let mut o = [0u8; 16];
                o.copy_from_slice(b);
                std::net::Ipv6Addr::from(o).to_string()
            };
            format!(
                "{head} ipv6 {} > {} {}",
                a(&p[8..24]),
                a(&p[24..40]),
                l4(p[6], &p[40..])
            )
        }
        _ => format!("{head} ethertype {et:#06x}"),
    }
}

/// A captured frame and its comments.
pub type Commented = (Vec<u8>, Vec<String>);

/// Every enhanced packet block of a pcapng file: (frame, comments); and the interface
/// names. Read with the `pcap-file` crate, not the product's reader.
pub fn read_pcapng(path: &Path) -> (Vec<String>, Vec<Commented>) {
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
    use pcap_file::pcapng::{Block, PcapNgReader};
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut r = PcapNgReader::new(f).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (mut names, mut frames) = (Vec::new(), Vec::new());
    while let Some(b) = r.next_block() {
        match b.unwrap_or_else(|e| panic!("{}: {e}", path.display())) {
            Block::InterfaceDescription(idb) => {
                for o in &idb.options {
                    if let InterfaceDescriptionOption::IfName(n) = o {
                        names.push(n.to_string());
                    }
                }
            }
            Block::EnhancedPacket(p) => {
                let comments = p
                    .options
                    .iter()
                    .filter_map(|o| match o {
                        EnhancedPacketOption::Comment(c) => Some(c.to_string()),
                        _ => None,
                    })
                    .collect();
                frames.push((p.data.to_vec(), comments));
            }
            _ => {}
        }
    }
    (names, frames)
}
