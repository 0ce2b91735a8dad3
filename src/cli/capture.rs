//! `sgswitch capture --port P [--dropped] [-c COUNT] [--duration SECS] -w FILE`: a live
//! capture of one port of a running switch, written as pcapng (like `ovs-tcpdump`), from
//! the management API's stream (`GET /sgswitch/v1/capture`, see
//! `control::api::capture`). Every frame carries a comment: `rx`, `tx`, or for a frame
//! the switch dropped, the port, the drop reason and its description. `-w -` writes to
//! standard output (`sgswitch capture --port vm-b -w - | tshark -r -`).
//!
//! It runs until COUNT frames, SECS seconds, or Ctrl-C (SIGINT/SIGTERM): the file then
//! ends after the last whole block (never a torn one), and closing the connection stops
//! the capture in the switch. On stderr: `sgswitch: capturing …` once the switch
//! captures, and at the end how many frames, and how many the switch lost because they
//! came faster than they could be sent.
//!
//! Owns: the command's flags and reading the stream (HTTP/1.1 chunked, decoded here
//! because the JSON client in `control::http_client` reads whole answers). May not use
//! the store or the runtime: everything goes through HTTP.

use std::fs::File;
use std::io::{self, BufWriter, ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::Value;

use super::client::encode;
use super::stats::{fail, ApiOpts};
use super::EXIT_OK;

/// Arguments of `sgswitch capture`.
#[derive(Args, Debug)]
pub struct CaptureArgs {
    /// The port to capture (name or id)
    #[arg(long, value_name = "PORT")]
    pub port: String,
    /// Only the frames the switch dropped at the port, each with its reason
    #[arg(long)]
    pub dropped: bool,
    /// Stop after COUNT frames
    #[arg(short = 'c', long = "count", value_name = "COUNT", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Stop after SECS seconds
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// The pcapng file to write; `-` for standard output
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: PathBuf,
    #[command(flatten)]
    pub api: ApiOpts,
}

/// How long connecting and the answer's head may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a blocked read looks at the stop flag.
const READ_SLICE: Duration = Duration::from_millis(200);

/// Run `sgswitch capture`.
pub fn run(args: &CaptureArgs) -> ExitCode {
    if args.duration.is_some_and(|d| !(d > 0.0 && d.is_finite())) {
        return fail("--duration must be a positive number of seconds");
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&stop)) {
            return fail(format!("cannot handle signals: {e}"));
        }
    }
    let mut path = format!("/sgswitch/v1/capture?port={}", encode(&args.port));
    if args.dropped {
        path.push_str("&dropped=true");
    }
    if let Some(n) = args.count {
        path.push_str(&format!("&count={n}"));
    }
    if let Some(d) = args.duration {
        path.push_str(&format!("&duration={d}"));
    }
    let stream = match Stream::open(&args.api, &path) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    eprintln!(
        "sgswitch: capturing {} of port {} to {}",
        if args.dropped {
            "the dropped frames"
        } else {
            "the frames"
        },
        args.port,
        if args.write.as_os_str() == "-" {
            "standard output".to_string()
        } else {
            args.write.display().to_string()
        }
    );
    let out: Box<dyn Write> = if args.write.as_os_str() == "-" {
        Box::new(io::stdout().lock())
    } else {
        match File::create(&args.write) {
            Ok(f) => Box::new(BufWriter::new(f)),
            Err(e) => return fail(format!("{}: {e}", args.write.display())),
        }
    };
    match copy(stream, out, &stop) {
        Ok(t) => {
            eprintln!(
                "sgswitch: {} frame{} captured from port {}{}{}",
                t.frames,
                if t.frames == 1 { "" } else { "s" },
                args.port,
                if args.dropped { " (dropped only)" } else { "" },
                if t.lost > 0 {
                    format!("; {} lost (not read fast enough)", t.lost)
                } else {
                    String::new()
                }
            );
            ExitCode::from(EXIT_OK)
        }
        Err(e) => fail(e),
    }
}

/// The capture's answer being read: the connection, and the body bytes not yet decoded.
struct Stream {
    conn: TcpStream,
    raw: Vec<u8>,
    chunked: bool,
}

/// Read once into `buf`; `Ok(None)` when the read timed out.
fn read_some(conn: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
    let mut tmp = [0u8; 16384];
    match conn.read(&mut tmp) {
        Ok(n) => {
            buf.extend_from_slice(&tmp[..n]);
            Ok(Some(n))
        }
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(None),
        Err(e) if e.kind() == ErrorKind::Interrupted => Ok(None),
        Err(e) => Err(e),
    }
}

impl Stream {
    /// Send the request and read the answer's head; an error status is an `Err` with
    /// the API's message.
    fn open(api: &ApiOpts, path: &str) -> Result<Stream, String> {
        let rest = api
            .api
            .strip_prefix("http://")
            .ok_or_else(|| format!("invalid endpoint {:?}: expected http://HOST:PORT", api.api))?;
        let (host, prefix) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
        let host = if host.contains(':') && !host.ends_with(']') {
            host.to_string()
        } else {
            format!("{host}:80")
        };
        let unreachable = |e: io::Error| format!("cannot reach {}: {e}", api.api);
        let addr = host
            .to_socket_addrs()
            .map_err(unreachable)?
            .next()
            .ok_or_else(|| format!("cannot resolve {host}"))?;
        let mut conn = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(unreachable)?;
        let prefix = prefix.trim_end_matches('/');
        let mut req = format!(
            "GET {}{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAccept: application/x-pcapng\r\n",
            if prefix.is_empty() { String::new() } else { format!("/{prefix}") }
        );
        if let Some(t) = &api.token()? {
            req.push_str(&format!("X-Auth-Token: {t}\r\n"));
        }
        req.push_str("\r\n");
        conn.write_all(req.as_bytes()).map_err(unreachable)?;
        conn.set_read_timeout(Some(READ_SLICE))
            .map_err(unreachable)?;
        // The head: up to the blank line.
        let mut raw = Vec::new();
        let started = Instant::now();
        let end = loop {
            if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            if started.elapsed() > CONNECT_TIMEOUT {
                return Err(format!(
                    "no answer from {} within {CONNECT_TIMEOUT:?}",
                    api.api
                ));
            }
            if read_some(&mut conn, &mut raw).map_err(unreachable)? == Some(0) {
                return Err(format!("{} closed the connection", api.api));
            }
        };
        let head = String::from_utf8_lossy(&raw[..end]).to_string();
        raw.drain(..end + 4);
        let mut lines = head.lines();
        let status: u16 = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad answer from {}", api.api))?;
        let mut chunked = false;
        let mut length = None;
        for l in lines {
            if let Some((k, v)) = l.split_once(':') {
                let v = v.trim();
                if k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
                {
                    chunked = true;
                } else if k.eq_ignore_ascii_case("content-length") {
                    length = v.parse::<usize>().ok();
                }
            }
        }
        if status != 200 {
            // A JSON error: read it whole (Content-Length, or until the server closes).
            while length.is_none_or(|n| raw.len() < n) && started.elapsed() < CONNECT_TIMEOUT {
                if read_some(&mut conn, &mut raw).map_err(unreachable)? == Some(0) {
                    break;
                }
            }
            let msg = serde_json::from_slice::<Value>(&raw)
                .ok()
                .and_then(|v| v["NeutronError"]["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&raw).trim().to_string());
            return Err(format!("HTTP {status}: {msg}"));
        }
        Ok(Stream { conn, raw, chunked })
    }
}

/// Decodes chunked transfer encoding incrementally.
#[derive(Default)]
struct Dechunk {
    /// Bytes of the current chunk still to come; `None` before a size line.
    left: Option<usize>,
    done: bool,
}

impl Dechunk {
    /// Move what `raw` holds of the body into `body`; true once the last chunk came.
    fn feed(&mut self, raw: &mut Vec<u8>, body: &mut Vec<u8>) -> Result<bool, String> {
        let mut at = 0;
        while !self.done {
            match self.left {
                None => {
                    let Some(eol) = raw[at..].windows(2).position(|w| w == b"\r\n") else {
                        break;
                    };
                    let line = String::from_utf8_lossy(&raw[at..at + eol]).to_string();
                    let size =
                        usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                            .map_err(|_| format!("bad chunk size {line:?}"))?;
                    at += eol + 2;
                    if size == 0 {
                        self.done = true;
                    } else {
                        // The data and its CRLF.
                        self.left = Some(size + 2);
                    }
                }
                Some(n) => {
                    let take = n.min(raw.len() - at);
                    if take == 0 {
                        break;
                    }
                    // The last two bytes of a chunk are its CRLF, not data.
                    let data_end = (n.saturating_sub(2)).min(take);
                    body.extend_from_slice(&raw[at..at + data_end]);
                    at += take;
                    self.left = if take == n { None } else { Some(n - take) };
                }
            }
        }
        raw.drain(..at);
        Ok(self.done)
    }
}

/// Totals of a finished capture.
#[derive(Debug, Default, PartialEq, Eq)]
struct Totals {
    frames: u64,
    /// Frames the switch could not capture (the last statistics block's `isb_ifdrop`).
    lost: u64,
}

/// The length of the whole pcapng blocks at the start of `b` (little-endian, as the
/// switch writes them), counting packets and reading statistics into `t`.
fn whole_blocks(b: &[u8], t: &mut Totals) -> Result<usize, String> {
    let mut at = 0;
    while b.len() - at >= 12 {
        let ty = u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let len = u32::from_le_bytes([b[at + 4], b[at + 5], b[at + 6], b[at + 7]]) as usize;
        if len < 12 || !len.is_multiple_of(4) {
            return Err(format!("corrupt pcapng stream (block length {len})"));
        }
        if b.len() - at < len {
            break;
        }
        match ty {
            6 => t.frames += 1,
            5 => {
                // Interface statistics: options after interface id and timestamp.
                let mut o = at + 8 + 12;
                while o + 4 <= at + len - 4 {
                    let code = u16::from_le_bytes([b[o], b[o + 1]]);
                    let olen = u16::from_le_bytes([b[o + 2], b[o + 3]]) as usize;
                    if code == 0 || o + 4 + olen > at + len - 4 {
                        break;
                    }
                    if code == 5 && olen == 8 {
                        let mut v = [0u8; 8];
                        v.copy_from_slice(&b[o + 4..o + 12]);
                        t.lost = u64::from_le_bytes(v);
                    }
                    o += 4 + olen.next_multiple_of(4);
                }
            }
            _ => {}
        }
        at += len;
    }
    Ok(at)
}

/// Copy the stream's whole blocks to `out` until it ends or `stop` is set.
fn copy(mut s: Stream, mut out: Box<dyn Write>, stop: &AtomicBool) -> Result<Totals, String> {
    let mut t = Totals::default();
    let mut dechunk = Dechunk::default();
    let mut body = Vec::new();
    let mut eof = false;
    loop {
        if s.chunked {
            eof |= dechunk.feed(&mut s.raw, &mut body)?;
        } else {
            body.append(&mut s.raw);
        }
        let n = whole_blocks(&body, &mut t)?;
        if n > 0 {
            out.write_all(&body[..n])
                .and_then(|_| out.flush())
                .map_err(|e| format!("writing the capture: {e}"))?;
            body.drain(..n);
        }
        if eof || stop.load(Ordering::Relaxed) {
            break;
        }
        match read_some(&mut s.conn, &mut s.raw) {
            Ok(Some(0)) => eof = true,
            Ok(_) => {}
            Err(e) => return Err(format!("reading the capture: {e}")),
        }
    }
    out.flush()
        .map_err(|e| format!("writing the capture: {e}"))?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sgswitch::port::pcap::PcapNgWriter;

    #[test]
    fn chunks_decode_in_any_split() {
        let mut wire = Vec::new();
        for part in [&b"hello "[..], b"chunked", b" world"] {
            wire.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            wire.extend_from_slice(part);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\n\r\n");
        for step in 1..wire.len() {
            let mut d = Dechunk::default();
            let (mut raw, mut body) = (Vec::new(), Vec::new());
            let mut done = false;
            for piece in wire.chunks(step) {
                raw.extend_from_slice(piece);
                done = d.feed(&mut raw, &mut body).unwrap();
            }
            assert!(done, "step {step}");
            assert_eq!(body, b"hello chunked world", "step {step}");
        }
    }

    #[test]
    fn only_whole_blocks_are_written() {
        let mut w = PcapNgWriter::new(Vec::new(), &["p"]).unwrap();
        w.write(0, 1, &[1; 60], Some("rx")).unwrap();
        w.write_stats(0, 2, 7).unwrap();
        let bytes = w.finish().unwrap();
        for cut in 0..bytes.len() {
            let mut t = Totals::default();
            let n = whole_blocks(&bytes[..cut], &mut t).unwrap();
            assert!(n <= cut);
            assert!(n < bytes.len());
        }
        let mut t = Totals::default();
        assert_eq!(whole_blocks(&bytes, &mut t).unwrap(), bytes.len());
        assert_eq!(t, Totals { frames: 1, lost: 7 });
    }
}
