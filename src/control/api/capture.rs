//! Live captures: `GET /sgswitch/v1/capture?port=P[&dropped=true][&count=N]
//! [&duration=SECONDS]` streams the frames of one port of the running switch as a pcapng
//! file (like `ovs-tcpdump`), over HTTP/1.1 chunked transfer encoding, until the client
//! closes the connection or `count` frames or `duration` seconds are reached.
//!
//! The file has one interface, named after the port. Each frame carries a packet
//! comment: `rx` (received from the port), `tx` (delivered to it), or for a frame the
//! switch dropped at the port `port vm-b: ingress-denied: no ingress rule of the
//! receiving port allows it` (the reason's name and description). With `dropped=true`
//! only dropped frames are captured. Frames are cut at
//! [`CAPTURE_SNAPLEN`](crate::runtime::switch::observe::CAPTURE_SNAPLEN) bytes (the
//! original length is kept).
//!
//! Every second without frames, and whenever the count of frames lost because the
//! reader was too slow changes, an interface statistics block (`isb_ifdrop` = frames
//! lost) is sent: it keeps the stream alive and lets the server notice a client that is
//! gone (the write fails). The capture then stops in the workers (the [`Capture`] is
//! dropped).
//!
//! Owns: the capture request's parameters, the stream's HTTP framing, the comments.
//! May not touch: the workers' capture rings (the runtime's) or the pcapng block layout
//! (`port::pcap`'s writer). Each capture runs on its connection's own thread (at most
//! [`MAX_CAPTURES`] at once), so the API's request threads stay free; a client that stops
//! reading for the listener's write timeout ends it.
//!
//! Depends on: `runtime::switch` (captures, clock), `port::pcap` (pcapng writer),
//! `flow::DropReason`.

use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::conntrack::PortZone;
use super::error::{error_body, Fail};
use super::server::Answer;
use crate::port::pcap::PcapNgWriter;
use crate::runtime::switch::observe::{Capture, CaptureDir, CapturedFrame};
use crate::runtime::switch::Switch;

/// Captures that may run at once (each holds a thread and a ring of preallocated frames).
pub const MAX_CAPTURES: usize = 4;

/// How often the stream looks for new frames.
const POLL: Duration = Duration::from_millis(20);

/// Longest silence on the stream (a statistics block is sent then).
const KEEPALIVE: Duration = Duration::from_secs(1);

/// What to capture.
pub(super) struct CaptureRequest {
    pub(super) port: PortZone,
    pub(super) dropped_only: bool,
    pub(super) count: Option<u64>,
    pub(super) duration: Option<Duration>,
}

/// Read `dropped`, `count` and `duration` from the query (the port is resolved by the
/// caller).
pub(super) fn parse(port: PortZone, query: &[(String, String)]) -> Result<CaptureRequest, Fail> {
    let mut c = CaptureRequest {
        port,
        dropped_only: false,
        count: None,
        duration: None,
    };
    for (k, v) in query {
        match k.as_str() {
            "port" => {}
            "dropped" => {
                c.dropped_only = match v.to_ascii_lowercase().as_str() {
                    "" | "1" | "true" | "yes" => true,
                    "0" | "false" | "no" => false,
                    _ => return Err(Fail::bad(format!("dropped={v:?}: expected true or false."))),
                }
            }
            "count" => match v.parse::<u64>() {
                Ok(n) if n > 0 => c.count = Some(n),
                _ => {
                    return Err(Fail::bad(format!(
                        "count={v:?}: expected a positive integer."
                    )))
                }
            },
            "duration" => match v.parse::<f64>() {
                Ok(s) if s > 0.0 && s.is_finite() && s < 1e9 => {
                    c.duration = Some(Duration::from_secs_f64(s))
                }
                _ => {
                    return Err(Fail::bad(format!(
                        "duration={v:?}: expected a positive number of seconds."
                    )))
                }
            },
            _ => return Err(Fail::bad(format!("Unknown capture parameter {k:?}."))),
        }
    }
    Ok(c)
}

/// Captures running now, and whether the API is stopping (they end then).
#[derive(Default)]
pub(super) struct Captures {
    running: AtomicUsize,
    pub(super) closing: AtomicBool,
}

/// One running capture's place in [`Captures`]; freed on drop.
struct Slot(Arc<Captures>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The answer that streams the capture `c` (on the connection's own thread, see
/// [`super::server`]), or 503 when [`MAX_CAPTURES`] run already.
pub(super) fn start(sw: Arc<Switch>, captures: &Arc<Captures>, c: CaptureRequest) -> Answer {
    if captures.running.fetch_add(1, Ordering::AcqRel) >= MAX_CAPTURES {
        captures.running.fetch_sub(1, Ordering::AcqRel);
        let (status, body) = error_body(
            503,
            "ServiceUnavailable",
            &format!("{MAX_CAPTURES} captures are running already."),
        );
        return Answer::Full(super::make_response(status, body));
    }
    // `slot` lives as long as the capture (or the answer, if the connection is gone
    // before it starts): its drop frees the place.
    let slot = Slot(Arc::clone(captures));
    Answer::Stream(Box::new(move |conn: &TcpStream, chunked: bool| {
        let mut out = conn;
        let port = c.port.name.clone();
        match stream(&sw, &mut out, &c, chunked, &slot.0.closing) {
            Ok(n) => tracing::info!(port = %port, frames = n, "capture ended"),
            Err(e) => tracing::info!(port = %port, "capture ended: client gone ({e})"),
        }
    }))
}

/// The HTTP framing of the stream: chunks (HTTP/1.1), or the bare body until the
/// connection closes (HTTP/1.0).
struct Framed<'a> {
    out: &'a mut dyn Write,
    chunked: bool,
}

impl Framed<'_> {
    fn send(&mut self, data: &mut Vec<u8>) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        if self.chunked {
            write!(self.out, "{:x}\r\n", data.len())?;
            self.out.write_all(data)?;
            self.out.write_all(b"\r\n")?;
        } else {
            self.out.write_all(data)?;
        }
        data.clear();
        self.out.flush()
    }

    fn end(&mut self) -> io::Result<()> {
        if self.chunked {
            self.out.write_all(b"0\r\n\r\n")?;
        }
        self.out.flush()
    }
}

/// The packet comment of a captured frame.
fn comment(port: &str, dir: CaptureDir) -> String {
    match dir {
        CaptureDir::Rx => "rx".to_string(),
        CaptureDir::Tx => "tx".to_string(),
        CaptureDir::Dropped(r) => format!("port {port}: {}: {}", r.as_str(), r.describe()),
    }
}

/// Run the capture until the count, the duration, the client or the server ends it;
/// returns the frames sent.
fn stream(
    sw: &Switch,
    out: &mut dyn Write,
    c: &CaptureRequest,
    chunked: bool,
    closing: &AtomicBool,
) -> io::Result<u64> {
    let cap: Capture = sw.capture(c.port.zone, c.dropped_only);
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let base = wall.saturating_sub(sw.now_ns());
    let mut head = String::from("HTTP/1.1 200 OK\r\nContent-Type: application/x-pcapng\r\n");
    head.push_str("Cache-Control: no-store\r\nConnection: close\r\n");
    if chunked {
        head.push_str("Transfer-Encoding: chunked\r\n");
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    let mut f = Framed { out, chunked };
    let mut png = PcapNgWriter::new(Vec::new(), &[c.port.name.as_str()])?;
    f.send(png.get_mut())?;
    let started = Instant::now();
    let mut last_sent = Instant::now();
    let mut lost_sent = 0;
    let limit = c.count.unwrap_or(u64::MAX);
    loop {
        cap.drain(|fr: &CapturedFrame| {
            if png.frames < limit {
                let note = comment(&c.port.name, fr.dir);
                // Writing into a Vec cannot fail.
                let _ = png.write_cut(0, base + fr.time_ns, &fr.data, fr.orig_len, Some(&note));
            }
        });
        let lost = cap.lost();
        let done = png.frames >= limit
            || c.duration.is_some_and(|d| started.elapsed() >= d)
            || closing.load(Ordering::Acquire);
        if lost != lost_sent || last_sent.elapsed() >= KEEPALIVE || done {
            png.write_stats(0, base + sw.now_ns(), lost)?;
            lost_sent = lost;
        }
        if !png.get_mut().is_empty() {
            f.send(png.get_mut())?;
            last_sent = Instant::now();
        }
        if done {
            break;
        }
        std::thread::sleep(POLL);
    }
    drop(cap);
    f.end()?;
    Ok(png.frames)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::DropReason;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn port() -> PortZone {
        PortZone {
            name: "vm-b".into(),
            zone: 1,
        }
    }

    #[test]
    fn parameters() {
        let c = parse(
            port(),
            &q(&[
                ("port", "vm-b"),
                ("dropped", "true"),
                ("count", "5"),
                ("duration", "1.5"),
            ]),
        )
        .unwrap();
        assert!(c.dropped_only);
        assert_eq!(c.count, Some(5));
        assert_eq!(c.duration, Some(Duration::from_millis(1500)));
        let c = parse(port(), &q(&[("dropped", "")])).unwrap();
        assert!(c.dropped_only && c.count.is_none() && c.duration.is_none());
        for bad in [
            ("count", "0"),
            ("duration", "-1"),
            ("dropped", "maybe"),
            ("x", "1"),
        ] {
            assert!(parse(port(), &q(&[bad])).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn comments() {
        assert_eq!(comment("vm-b", CaptureDir::Rx), "rx");
        assert_eq!(comment("vm-b", CaptureDir::Tx), "tx");
        assert_eq!(
            comment("vm-b", CaptureDir::Dropped(DropReason::IngressDenied)),
            "port vm-b: ingress-denied: no ingress rule of the receiving port allows it"
        );
    }

    #[test]
    fn framing() {
        let mut out = Vec::new();
        let mut f = Framed {
            out: &mut out,
            chunked: true,
        };
        f.send(&mut vec![1u8; 26]).unwrap();
        f.send(&mut Vec::new()).unwrap();
        f.end().unwrap();
        let mut want = b"1a\r\n".to_vec();
        want.extend_from_slice(&[1u8; 26]);
        want.extend_from_slice(b"\r\n0\r\n\r\n");
        assert_eq!(out, want);
    }
}
