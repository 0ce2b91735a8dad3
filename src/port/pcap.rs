//! Capture files as ports: a reader for pcap and pcapng (the replay source) and writers
//! for pcap (per-port output) and pcapng (dropped frames, with one interface per port).
//!
//! Written by hand rather than with a crate because the replay must survive deliberately
//! malformed captures (the tcpdump test corpus): every length is checked before use, a
//! truncated record is a typed error, and nothing here can panic on any input.
//!
//! Supported: pcap (both byte orders, micro- and nanosecond magic), pcapng (both byte
//! orders, several sections, interface description blocks with `if_name` and
//! `if_tsresol`, enhanced, simple and obsolete packet blocks; other blocks skipped).
//!
//! Owns the capture file formats, both ways, and nothing else: one concern in one file
//! (reader and writers share the block layouts). It may not touch the pipeline or the
//! runtime (replay drives it, not the other way round), nor any live backend; it uses only
//! `std`.

use std::fmt;
use std::io::{self, Read, Write};

/// Link type Ethernet (DLT_EN10MB / LINKTYPE_ETHERNET).
pub const LINKTYPE_ETHERNET: u16 = 1;

/// Largest block or record we accept (a corrupt length must not make us allocate GiBs).
const MAX_RECORD: usize = 256 * 1024 * 1024;

/// Errors reading a capture.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("not a pcap or pcapng file (magic {0:#010x})")]
    BadMagic(u32),
    #[error("truncated {what} at byte offset {offset}")]
    Truncated { what: &'static str, offset: u64 },
    #[error("corrupt {what} at byte offset {offset}: {detail}")]
    Corrupt {
        what: &'static str,
        offset: u64,
        detail: String,
    },
}

/// One interface of a capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureInterface {
    pub link_type: u16,
    /// `if_name` option (pcapng only).
    pub name: Option<String>,
    /// Timestamp units per second.
    ts_per_sec: u64,
}

/// One frame read from a capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureFrame {
    /// Index into [`CaptureReader::interfaces`].
    pub interface: usize,
    /// Timestamp in nanoseconds since the epoch (as recorded).
    pub ts_ns: u64,
    /// Original length on the wire.
    pub orig_len: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Pcap { big_endian: bool, nanos: bool },
    PcapNg { big_endian: bool },
}

/// Streaming reader of pcap / pcapng.
pub struct CaptureReader<R: Read> {
    r: R,
    format: Format,
    offset: u64,
    interfaces: Vec<CaptureInterface>,
    /// pcapng: index of the first interface of the current section.
    section_base: usize,
    buf: Vec<u8>,
}

impl fmt::Debug for CaptureReader<std::fs::File> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureReader")
            .field("format", &self.format)
            .field("offset", &self.offset)
            .finish()
    }
}

fn u16_at(b: &[u8], off: usize, be: bool) -> u16 {
    let v = [b[off], b[off + 1]];
    if be {
        u16::from_be_bytes(v)
    } else {
        u16::from_le_bytes(v)
    }
}

fn u32_at(b: &[u8], off: usize, be: bool) -> u32 {
    let v = [b[off], b[off + 1], b[off + 2], b[off + 3]];
    if be {
        u32::from_be_bytes(v)
    } else {
        u32::from_le_bytes(v)
    }
}

impl<R: Read> CaptureReader<R> {
    /// Open a capture, reading its file header.
    pub fn new(mut r: R) -> Result<Self, CaptureError> {
        let mut magic = [0u8; 4];
        read_exact_or(&mut r, &mut magic, "file header", 0)?;
        let m_le = u32::from_le_bytes(magic);
        let mut reader = CaptureReader {
            r,
            format: Format::PcapNg { big_endian: false },
            offset: 4,
            interfaces: Vec::new(),
            section_base: 0,
            buf: Vec::with_capacity(65536),
        };
        match m_le {
            0xa1b2c3d4 | 0xd4c3b2a1 | 0xa1b23c4d | 0x4d3cb2a1 => {
                let big_endian = m_le == 0xd4c3b2a1 || m_le == 0x4d3cb2a1;
                let nanos = m_le == 0xa1b23c4d || m_le == 0x4d3cb2a1;
                let mut hdr = [0u8; 20];
                read_exact_or(&mut reader.r, &mut hdr, "pcap file header", 4)?;
                reader.offset = 24;
                let link = u32_at(&hdr, 16, big_endian);
                reader.format = Format::Pcap { big_endian, nanos };
                reader.interfaces.push(CaptureInterface {
                    link_type: (link & 0xffff) as u16,
                    name: None,
                    ts_per_sec: if nanos { 1_000_000_000 } else { 1_000_000 },
                });
            }
            0x0a0d0d0a => {
                reader.read_shb_rest()?;
            }
            other => return Err(CaptureError::BadMagic(other)),
        }
        Ok(reader)
    }

    /// Interfaces seen so far (pcap: exactly one; pcapng: grows as IDBs are read).
    pub fn interfaces(&self) -> &[CaptureInterface] {
        &self.interfaces
    }

    /// Whether this is a pcapng file.
    pub fn is_pcapng(&self) -> bool {
        matches!(self.format, Format::PcapNg { .. })
    }

    /// After the 4-byte SHB type has been consumed: read the rest of a section header.
    fn read_shb_rest(&mut self) -> Result<(), CaptureError> {
        let start = self.offset - 4;
        let mut len = [0u8; 4];
        read_exact_or(&mut self.r, &mut len, "section header block", start)?;
        self.read_shb_body(start, len)
    }

    /// A section header block whose type and length fields (`len`, byte order not yet
    /// known) starting at `start` have been read: read the byte-order magic and the rest,
    /// and start a new section.
    fn read_shb_body(&mut self, start: u64, len: [u8; 4]) -> Result<(), CaptureError> {
        let mut bom = [0u8; 4];
        read_exact_or(&mut self.r, &mut bom, "section header block", start)?;
        let be = match u32::from_le_bytes(bom) {
            0x1a2b3c4d => false,
            0x4d3c2b1a => true,
            _ => {
                return Err(corrupt(
                    "section header block",
                    start,
                    "bad byte-order magic",
                ))
            }
        };
        let len = u32_at(&len, 0, be) as usize;
        if !(28..=MAX_RECORD).contains(&len) || !len.is_multiple_of(4) {
            return Err(CaptureError::Corrupt {
                what: "section header block",
                offset: start,
                detail: format!("bad block length {len}"),
            });
        }
        read_vec_or(
            &mut self.r,
            &mut self.buf,
            len - 12,
            "section header block",
            start,
        )?;
        self.offset = start + len as u64;
        self.format = Format::PcapNg { big_endian: be };
        self.section_base = self.interfaces.len();
        Ok(())
    }

    /// Read the next frame into `out` (cleared first). `Ok(None)` at a clean end of file.
    pub fn next_frame(&mut self, out: &mut Vec<u8>) -> Result<Option<CaptureFrame>, CaptureError> {
        match self.format {
            Format::Pcap { big_endian, nanos } => self.next_pcap(out, big_endian, nanos),
            Format::PcapNg { .. } => self.next_pcapng(out),
        }
    }

    fn next_pcap(
        &mut self,
        out: &mut Vec<u8>,
        be: bool,
        nanos: bool,
    ) -> Result<Option<CaptureFrame>, CaptureError> {
        let mut hdr = [0u8; 16];
        let start = self.offset;
        match read_full(&mut self.r, &mut hdr)? {
            0 => return Ok(None),
            16 => {}
            _ => {
                return Err(CaptureError::Truncated {
                    what: "packet record header",
                    offset: start,
                })
            }
        }
        let sec = u32_at(&hdr, 0, be) as u64;
        let frac = u32_at(&hdr, 4, be) as u64;
        let incl = u32_at(&hdr, 8, be) as usize;
        let orig = u32_at(&hdr, 12, be);
        if incl > MAX_RECORD {
            return Err(CaptureError::Corrupt {
                what: "packet record",
                offset: start,
                detail: format!("captured length {incl} is absurd"),
            });
        }
        read_vec_or(&mut self.r, out, incl, "packet record", start)?;
        self.offset = start + 16 + incl as u64;
        let ts_ns = sec.saturating_mul(1_000_000_000).saturating_add(if nanos {
            frac
        } else {
            frac.saturating_mul(1000)
        });
        Ok(Some(CaptureFrame {
            interface: 0,
            ts_ns,
            orig_len: orig,
        }))
    }

    fn next_pcapng(&mut self, out: &mut Vec<u8>) -> Result<Option<CaptureFrame>, CaptureError> {
        loop {
            let Format::PcapNg { big_endian: be } = self.format else {
                return Ok(None);
            };
            let start = self.offset;
            let mut hdr = [0u8; 8];
            match read_full(&mut self.r, &mut hdr)? {
                0 => return Ok(None),
                8 => {}
                _ => {
                    return Err(CaptureError::Truncated {
                        what: "block header",
                        offset: start,
                    })
                }
            }
            let btype = u32_at(&hdr, 0, be);
            if btype == 0x0a0d0d0a {
                // New section: it may switch the byte order.
                self.read_shb_body(start, [hdr[4], hdr[5], hdr[6], hdr[7]])?;
                continue;
            }
            let len = u32_at(&hdr, 4, be) as usize;
            if !(12..=MAX_RECORD).contains(&len) || !len.is_multiple_of(4) {
                return Err(CaptureError::Corrupt {
                    what: "block",
                    offset: start,
                    detail: format!("bad block length {len}"),
                });
            }
            read_vec_or(&mut self.r, &mut self.buf, len - 8, "block", start)?;
            self.offset = start + len as u64;
            let body_len = len - 12;
            let trailer = u32_at(&self.buf, body_len, be) as usize;
            if trailer != len {
                return Err(CaptureError::Corrupt {
                    what: "block",
                    offset: start,
                    detail: format!("trailing length {trailer} differs from {len}"),
                });
            }
            let body = &self.buf[..body_len];
            match btype {
                1 => {
                    // Interface description block.
                    if body.len() < 8 {
                        return Err(corrupt("interface description block", start, "too short"));
                    }
                    let link_type = u16_at(body, 0, be);
                    let mut iface = CaptureInterface {
                        link_type,
                        name: None,
                        ts_per_sec: 1_000_000,
                    };
                    for (code, val) in Options::new(&body[8..], be) {
                        match code {
                            2 => {
                                let s = String::from_utf8_lossy(val);
                                iface.name = Some(s.trim_end_matches('\0').to_string());
                            }
                            9 if !val.is_empty() => {
                                let r = val[0];
                                let exp = (r & 0x7f) as u32;
                                let per_sec = if r & 0x80 == 0 {
                                    10u64.checked_pow(exp)
                                } else {
                                    2u64.checked_pow(exp)
                                };
                                match per_sec {
                                    Some(v) if v > 0 => iface.ts_per_sec = v,
                                    _ => {
                                        return Err(corrupt(
                                            "interface description block",
                                            start,
                                            "unsupported if_tsresol",
                                        ))
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                    self.interfaces.push(iface);
                }
                6 | 2 => {
                    // Enhanced packet block (6) or obsolete packet block (2).
                    if body.len() < 20 {
                        return Err(corrupt("packet block", start, "too short"));
                    }
                    let if_id = if btype == 6 {
                        u32_at(body, 0, be) as usize
                    } else {
                        u16_at(body, 0, be) as usize
                    };
                    let ts = ((u32_at(body, 4, be) as u64) << 32) | u32_at(body, 8, be) as u64;
                    let caplen = u32_at(body, 12, be) as usize;
                    let orig = u32_at(body, 16, be);
                    if caplen > body.len() - 20 {
                        return Err(corrupt(
                            "packet block",
                            start,
                            "captured length exceeds the block",
                        ));
                    }
                    let interface = self.section_base + if_id;
                    let Some(iface) = self.interfaces.get(interface) else {
                        return Err(corrupt(
                            "packet block",
                            start,
                            "refers to an undeclared interface",
                        ));
                    };
                    let ts_ns = scale_ts(ts, iface.ts_per_sec);
                    out.clear();
                    out.extend_from_slice(&body[20..20 + caplen]);
                    return Ok(Some(CaptureFrame {
                        interface,
                        ts_ns,
                        orig_len: orig,
                    }));
                }
                3 => {
                    // Simple packet block: interface 0 of the section, no timestamp.
                    if body.len() < 4 {
                        return Err(corrupt("simple packet block", start, "too short"));
                    }
                    let orig = u32_at(body, 0, be);
                    let interface = self.section_base;
                    if interface >= self.interfaces.len() {
                        return Err(corrupt(
                            "simple packet block",
                            start,
                            "no interface declared",
                        ));
                    }
                    let n = (orig as usize).min(body.len() - 4);
                    out.clear();
                    out.extend_from_slice(&body[4..4 + n]);
                    return Ok(Some(CaptureFrame {
                        interface,
                        ts_ns: 0,
                        orig_len: orig,
                    }));
                }
                _ => {} // statistics, name resolution, custom...: skipped
            }
        }
    }
}

fn corrupt(what: &'static str, offset: u64, detail: &str) -> CaptureError {
    CaptureError::Corrupt {
        what,
        offset,
        detail: detail.to_string(),
    }
}

fn scale_ts(ts: u64, per_sec: u64) -> u64 {
    if per_sec == 1_000_000_000 {
        return ts;
    }
    let secs = ts / per_sec;
    let rem = ts % per_sec;
    secs.saturating_mul(1_000_000_000)
        .saturating_add(((rem as u128 * 1_000_000_000u128) / per_sec as u128) as u64)
}

/// Iterator over pcapng options (code, value); stops at opt_endofopt or a bad length.
struct Options<'a> {
    b: &'a [u8],
    be: bool,
}

impl<'a> Options<'a> {
    fn new(b: &'a [u8], be: bool) -> Self {
        Options { b, be }
    }
}

impl<'a> Iterator for Options<'a> {
    type Item = (u16, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        if self.b.len() < 4 {
            return None;
        }
        let code = u16_at(self.b, 0, self.be);
        let len = u16_at(self.b, 2, self.be) as usize;
        if code == 0 {
            return None;
        }
        let padded = (len + 3) & !3;
        if self.b.len() < 4 + len {
            return None;
        }
        let val = &self.b[4..4 + len];
        self.b = self.b.get(4 + padded..).unwrap_or(&[]);
        Some((code, val))
    }
}

/// Read as many bytes as available up to `buf.len()`; returns how many.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn read_exact_or<R: Read>(
    r: &mut R,
    buf: &mut [u8],
    what: &'static str,
    offset: u64,
) -> Result<(), CaptureError> {
    if read_full(r, buf)? != buf.len() {
        return Err(CaptureError::Truncated { what, offset });
    }
    Ok(())
}

/// Read exactly `n` bytes into `out` (replacing its contents), growing it only as the
/// bytes arrive: a corrupt length field in a short file must not allocate what it claims
/// (up to `MAX_RECORD`) before the read finds the file too short. Found by the `pcap`
/// fuzz target (a 292-byte file made the reader allocate 153 MB).
fn read_vec_or<R: Read>(
    r: &mut R,
    out: &mut Vec<u8>,
    n: usize,
    what: &'static str,
    offset: u64,
) -> Result<(), CaptureError> {
    out.clear();
    if r.take(n as u64).read_to_end(out)? != n {
        return Err(CaptureError::Truncated { what, offset });
    }
    Ok(())
}

/// Writes a classic pcap file (Ethernet, nanosecond timestamps).
pub struct PcapWriter<W: Write> {
    w: W,
    pub frames: u64,
}

impl<W: Write> PcapWriter<W> {
    pub fn new(mut w: W) -> io::Result<Self> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&0xa1b23c4du32.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&262_144u32.to_le_bytes());
        h.extend_from_slice(&(LINKTYPE_ETHERNET as u32).to_le_bytes());
        w.write_all(&h)?;
        Ok(PcapWriter { w, frames: 0 })
    }

    pub fn write(&mut self, ts_ns: u64, frame: &[u8]) -> io::Result<()> {
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&((ts_ns / 1_000_000_000) as u32).to_le_bytes());
        h[4..8].copy_from_slice(&((ts_ns % 1_000_000_000) as u32).to_le_bytes());
        h[8..12].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        h[12..16].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        self.w.write_all(&h)?;
        self.w.write_all(frame)?;
        self.frames += 1;
        Ok(())
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }
}

/// Writes a pcapng file with one Ethernet interface per name (nanosecond timestamps) and
/// an optional comment on each packet.
pub struct PcapNgWriter<W: Write> {
    w: W,
    pub frames: u64,
}

fn push_opt(b: &mut Vec<u8>, code: u16, val: &[u8]) {
    b.extend_from_slice(&code.to_le_bytes());
    b.extend_from_slice(&(val.len() as u16).to_le_bytes());
    b.extend_from_slice(val);
    while !b.len().is_multiple_of(4) {
        b.push(0);
    }
}

fn write_block<W: Write>(w: &mut W, btype: u32, body: &[u8]) -> io::Result<()> {
    let len = (12 + body.len()) as u32;
    w.write_all(&btype.to_le_bytes())?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(body)?;
    w.write_all(&len.to_le_bytes())
}

impl<W: Write> PcapNgWriter<W> {
    pub fn new<S: AsRef<str>>(mut w: W, interfaces: &[S]) -> io::Result<Self> {
        let mut shb = Vec::new();
        shb.extend_from_slice(&0x1a2b3c4du32.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        push_opt(&mut shb, 4, b"sgswitch");
        push_opt(&mut shb, 0, &[]);
        write_block(&mut w, 0x0a0d0d0a, &shb)?;
        for name in interfaces {
            let mut idb = Vec::new();
            idb.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
            idb.extend_from_slice(&0u16.to_le_bytes());
            idb.extend_from_slice(&262_144u32.to_le_bytes());
            push_opt(&mut idb, 2, name.as_ref().as_bytes());
            push_opt(&mut idb, 9, &[9]);
            push_opt(&mut idb, 0, &[]);
            write_block(&mut w, 1, &idb)?;
        }
        Ok(PcapNgWriter { w, frames: 0 })
    }

    pub fn write(
        &mut self,
        interface: u32,
        ts_ns: u64,
        frame: &[u8],
        comment: Option<&str>,
    ) -> io::Result<()> {
        self.write_cut(interface, ts_ns, frame, frame.len(), comment)
    }

    /// [`PcapNgWriter::write`] of a frame of `orig_len` bytes on the wire of which
    /// `frame` holds the first ones (a capture's snapshot length).
    pub fn write_cut(
        &mut self,
        interface: u32,
        ts_ns: u64,
        frame: &[u8],
        orig_len: usize,
        comment: Option<&str>,
    ) -> io::Result<()> {
        let mut b = Vec::with_capacity(frame.len() + 64);
        b.extend_from_slice(&interface.to_le_bytes());
        b.extend_from_slice(&((ts_ns >> 32) as u32).to_le_bytes());
        b.extend_from_slice(&(ts_ns as u32).to_le_bytes());
        b.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        b.extend_from_slice(&(orig_len.max(frame.len()) as u32).to_le_bytes());
        b.extend_from_slice(frame);
        while b.len() % 4 != 0 {
            b.push(0);
        }
        if let Some(c) = comment {
            push_opt(&mut b, 1, c.as_bytes());
            push_opt(&mut b, 0, &[]);
        }
        write_block(&mut self.w, 6, &b)?;
        self.frames += 1;
        Ok(())
    }

    /// An interface statistics block for `interface` at `ts_ns`: `dropped` frames the
    /// capture lost (`isb_ifdrop`). Readers that do not show statistics skip it; a live
    /// capture also sends one as a keep-alive.
    pub fn write_stats(&mut self, interface: u32, ts_ns: u64, dropped: u64) -> io::Result<()> {
        let mut b = Vec::with_capacity(40);
        b.extend_from_slice(&interface.to_le_bytes());
        b.extend_from_slice(&((ts_ns >> 32) as u32).to_le_bytes());
        b.extend_from_slice(&(ts_ns as u32).to_le_bytes());
        push_opt(&mut b, 5, &dropped.to_le_bytes());
        push_opt(&mut b, 0, &[]);
        write_block(&mut self.w, 5, &b)
    }

    /// The output (a live capture takes the bytes written so far out of a buffer).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.w
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames_of(bytes: &[u8]) -> Result<Vec<(usize, u64, Vec<u8>)>, CaptureError> {
        let mut r = CaptureReader::new(bytes)?;
        let mut out = Vec::new();
        let mut buf = Vec::new();
        while let Some(f) = r.next_frame(&mut buf)? {
            out.push((f.interface, f.ts_ns, buf.clone()));
        }
        Ok(out)
    }

    #[test]
    fn pcap_round_trip() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write(1_500_000_123, &[1, 2, 3]).unwrap();
        w.write(2_000_000_000, &[4; 70]).unwrap();
        let bytes = w.finish().unwrap();
        let f = frames_of(&bytes).unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f[0], (0, 1_500_000_123, vec![1, 2, 3]));
        assert_eq!(f[1].2.len(), 70);
    }

    #[test]
    fn pcapng_round_trip_with_names() {
        let mut w = PcapNgWriter::new(Vec::new(), &["vm-a", "vm-b"]).unwrap();
        w.write(1, 10, &[9, 9, 9, 9, 9], Some("hello")).unwrap();
        w.write(0, 20, &[1], None).unwrap();
        let bytes = w.finish().unwrap();
        let mut r = CaptureReader::new(&bytes[..]).unwrap();
        let mut buf = Vec::new();
        let f = r.next_frame(&mut buf).unwrap().unwrap();
        assert_eq!(f.interface, 1);
        assert_eq!(f.ts_ns, 10);
        assert_eq!(buf, vec![9, 9, 9, 9, 9]);
        assert_eq!(r.interfaces()[1].name.as_deref(), Some("vm-b"));
        let f = r.next_frame(&mut buf).unwrap().unwrap();
        assert_eq!((f.interface, f.ts_ns), (0, 20));
        assert!(r.next_frame(&mut buf).unwrap().is_none());
    }

    #[test]
    fn pcapng_cut_frames_and_statistics() {
        let mut w = PcapNgWriter::new(Vec::new(), &["p"]).unwrap();
        w.write_stats(0, 5, 0).unwrap();
        w.write_cut(0, 10, &[7; 6], 1500, Some("rx")).unwrap();
        w.write_stats(0, 11, 3).unwrap();
        let bytes = w.finish().unwrap();
        let mut r = CaptureReader::new(&bytes[..]).unwrap();
        let mut buf = Vec::new();
        let f = r.next_frame(&mut buf).unwrap().unwrap();
        assert_eq!((f.ts_ns, f.orig_len), (10, 1500));
        assert_eq!(buf, vec![7; 6]);
        assert!(r.next_frame(&mut buf).unwrap().is_none());
    }

    #[test]
    fn microsecond_pcapng_resolution() {
        // Default if_tsresol is 10^-6: a raw timestamp of 1 is 1000 ns.
        let mut b = Vec::new();
        let mut shb = Vec::new();
        shb.extend_from_slice(&0x1a2b3c4du32.to_le_bytes());
        shb.extend_from_slice(&[1, 0, 0, 0]);
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        write_block(&mut b, 0x0a0d0d0a, &shb).unwrap();
        let mut idb = vec![1, 0, 0, 0, 0, 0, 1, 0];
        push_opt(&mut idb, 0, &[]);
        write_block(&mut b, 1, &idb).unwrap();
        let mut epb = Vec::new();
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&1u32.to_le_bytes());
        epb.extend_from_slice(&4u32.to_le_bytes());
        epb.extend_from_slice(&4u32.to_le_bytes());
        epb.extend_from_slice(&[1, 2, 3, 4]);
        write_block(&mut b, 6, &epb).unwrap();
        let f = frames_of(&b).unwrap();
        assert_eq!(f, vec![(0, 1000, vec![1, 2, 3, 4])]);
    }

    #[test]
    fn absurd_lengths_in_short_files_allocate_nothing() {
        // fuzz/corpus/pcap/regression-absurd-incl: a record of 153 MB in a 292-byte file.
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write(0, &[1; 40]).unwrap();
        let mut bytes = w.finish().unwrap();
        bytes[24 + 8..24 + 12].copy_from_slice(&200_000_000u32.to_le_bytes());
        let mut r = CaptureReader::new(&bytes[..]).unwrap();
        let mut out = Vec::new();
        assert!(matches!(
            r.next_frame(&mut out),
            Err(CaptureError::Truncated { .. })
        ));
        assert!(out.capacity() < 4096, "{} bytes allocated", out.capacity());
        // pcapng: a block of 200 MB, and a section header of 200 MB.
        let mut w = PcapNgWriter::new(Vec::new(), &["p"]).unwrap();
        w.write(0, 0, &[1; 33], None).unwrap();
        let ng = w.finish().unwrap();
        let shb_len = u32::from_le_bytes(ng[4..8].try_into().unwrap()) as usize;
        let mut bad = ng.clone();
        bad[shb_len + 4..shb_len + 8].copy_from_slice(&200_000_000u32.to_le_bytes());
        let mut r = CaptureReader::new(&bad[..]).unwrap();
        assert!(r.next_frame(&mut out).is_err());
        assert!(
            r.buf.capacity() < 1 << 20,
            "{} bytes allocated",
            r.buf.capacity()
        );
        let mut bad = ng;
        bad[4..8].copy_from_slice(&200_000_000u32.to_le_bytes());
        assert!(matches!(
            CaptureReader::new(&bad[..]),
            Err(CaptureError::Truncated { .. })
        ));
    }

    #[test]
    fn truncated_and_garbage_inputs_are_errors() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write(0, &[1; 40]).unwrap();
        let bytes = w.finish().unwrap();
        for cut in 0..bytes.len() {
            let r = frames_of(&bytes[..cut]);
            if cut == 24 {
                assert!(r.unwrap().is_empty());
            } else {
                assert!(r.is_err(), "cut at {cut} must be an error");
            }
        }
        assert!(matches!(
            frames_of(b"hello world, not a capture"),
            Err(CaptureError::BadMagic(_))
        ));
        let mut w = PcapNgWriter::new(Vec::new(), &["p"]).unwrap();
        w.write(0, 0, &[1; 33], Some("c")).unwrap();
        let bytes = w.finish().unwrap();
        for cut in 1..bytes.len() {
            let _ = frames_of(&bytes[..cut]); // must not panic
        }
        // Random corruption must not panic either.
        let mut x = bytes.clone();
        for i in 0..x.len() {
            let saved = x[i];
            for v in [0u8, 0xff, 0x7f, 3] {
                x[i] = v;
                let _ = frames_of(&x);
            }
            x[i] = saved;
        }
    }
}
