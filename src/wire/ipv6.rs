//! IPv6 fixed header and extension header views (RFC 8200 §3–4, RFC 4302 for AH), and a
//! bounded walk over the extension header chain.
//!
//! [`Packet::check_len`]: the 40-byte header is present (`Truncated`), version is 6
//! (`BadVersion`), and 40 + payload length ≤ buffer length (`BadPayloadLength`); bytes
//! beyond are link padding. Jumbograms (payload length 0 + a jumbo option, RFC 2675) are
//! not supported: they cannot occur on the links a virtual switch serves.
//!
//! [`walk_ext_headers`] follows next-header values through hop-by-hop options (0, only as
//! the first header), routing (43), fragment (44), destination options (60) and AH (51),
//! at most [`MAX_EXT_HEADERS`] of them. It stops at the first other value — an upper-layer
//! protocol, ESP (50, whose payload is encrypted) or No Next Header (59) — or at a
//! fragment header with a non-zero offset (later fragments carry no upper-layer header).
//! Hop-by-hop and destination options are walked as TLVs and must stay inside their
//! header (`BadOption`). Mobility (135), HIP (139) and Shim6 (140) are treated as upper
//! layers without ports, as Open vSwitch does.
//!
//! Rejected option: an unbounded walk. A chain of thousands of 8-byte destination-options
//! headers is legal on the wire but has no use except to exhaust parsers (RFC 7112, RFC
//! 9098); real stacks send at most a handful.
//!
//! Owns: the IPv6 fixed header and extension header layouts, their next-header numbers
//! ([`next_header`]), and the bounded chain walk with what it reports ([`Chain`], the
//! fragment header's fields and where its data starts, also for a walk cut short). May
//! not touch: upper-layer headers (the walk stops at them; `flow` reads them), fragment
//! bookkeeping (`pipeline::fragments`) or address policy.
//! Like every view: uses only `super` (no `crate::flow`, see [`next_header`]), no
//! allocation, no `unsafe`, a walk bounded by [`MAX_EXT_HEADERS`], and no accessor panics
//! once `check_len` returned `Ok`.

use super::{fields, read_u16, read_u32, typed_view, walk_tlv_options, Error, Field};

/// Next-header values this module knows (IANA protocol numbers). Kept here rather than
/// taken from `crate::flow::proto` so that `wire` depends on nothing above it.
pub mod next_header {
    pub const HOPOPT: u8 = 0;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const ESP: u8 = 50;
    pub const AH: u8 = 51;
    pub const NO_NEXT: u8 = 59;
    pub const DSTOPTS: u8 = 60;
}
use next_header as proto;

mod field {
    use super::Field;
    pub const VER_TC_FLOW: Field = 0..4;
    pub const LENGTH: Field = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: usize = 8;
    pub const DST_ADDR: usize = 24;
    pub const PAYLOAD: usize = 40;
}

/// Length of the fixed header.
pub const HEADER_LEN: usize = field::PAYLOAD;

/// Most extension headers [`walk_ext_headers`] accepts before [`Error::TooManyExtHeaders`].
pub const MAX_EXT_HEADERS: usize = 8;

typed_view!(
    /// A read-only view of an IPv6 packet.
    Packet,
    checks = [check_len]
);

impl<T: AsRef<[u8]>> Packet<T> {
    /// Validate the header and payload length (see the module doc). After `Ok`, no
    /// accessor can panic.
    #[inline]
    pub fn check_len(&self) -> Result<(), Error> {
        self.check_header()?;
        if HEADER_LEN + self.payload_len() as usize > self.buffer.as_ref().len() {
            return Err(Error::BadPayloadLength);
        }
        Ok(())
    }

    /// The fixed header only, whatever the payload length says (for ICMPv6 quotes). After
    /// `Ok`, every accessor but [`payload`](Self::payload) is safe.
    #[inline]
    pub fn check_header(&self) -> Result<(), Error> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b[0] >> 4 != 6 {
            return Err(Error::BadVersion);
        }
        Ok(())
    }

    fields! {
        /// Version nibble.
        version: u8 = 0, |v: u8| v >> 4;
        /// Traffic class.
        traffic_class: u8 = field::VER_TC_FLOW, |v: u32| (v >> 20) as u8;
        /// Flow label (20 bits).
        flow_label: u32 = field::VER_TC_FLOW, |v: u32| v & 0x000f_ffff;
        /// Payload length (everything after the fixed header).
        payload_len: u16 = field::LENGTH;
        /// Next header of the fixed header.
        next_header: u8 = field::NXT_HDR;
        /// Hop limit.
        hop_limit: u8 = field::HOP_LIMIT;
        /// Source address.
        src_addr: [u8; 16] = field::SRC_ADDR;
        /// Destination address.
        dst_addr: [u8; 16] = field::DST_ADDR;
    }

    /// The payload as declared (padding excluded). Needs a full `check_len`.
    #[inline(always)]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + self.payload_len() as usize]
    }

    /// Everything after the fixed header (for ICMPv6 quotes). Needs `check_header`.
    #[inline]
    pub fn rest(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

mod ext_field {
    pub const NXT_HDR: usize = 0;
    pub const LENGTH: usize = 1;
    pub const FRAG_OFF: super::Field = 2..4;
    pub const FRAG_IDENT: super::Field = 4..8;
    pub const OPTIONS: usize = 2;
}

/// A read-only view of a generic extension header: hop-by-hop, routing, destination
/// options, fragment or AH. The header length depends on the kind, so the view is built
/// with it: see [`ExtHeader::new_checked`].
#[derive(Debug, Clone, Copy)]
pub struct ExtHeader<T: AsRef<[u8]>> {
    buffer: T,
    kind: u8,
}

impl<T: AsRef<[u8]>> ExtHeader<T> {
    /// Wrap a buffer holding an extension header of protocol number `kind` (0, 43, 44, 51,
    /// 60) without checking it.
    #[inline]
    pub const fn new_unchecked(buffer: T, kind: u8) -> Self {
        ExtHeader { buffer, kind }
    }

    /// Wrap and [`check_len`](Self::check_len).
    #[inline]
    pub fn new_checked(buffer: T, kind: u8) -> Result<Self, Error> {
        let h = Self::new_unchecked(buffer, kind);
        h.check_len()?;
        Ok(h)
    }

    /// `Ok` when the whole header (per its length field) is in the buffer, and AH's length
    /// covers its 12-byte fixed part (`BadExtHeader`). After `Ok`, no accessor can panic.
    #[inline]
    pub fn check_len(&self) -> Result<(), Error> {
        let b = self.buffer.as_ref();
        if b.len() < 8 {
            return Err(Error::Truncated);
        }
        if self.kind == proto::AH && b[ext_field::LENGTH] == 0 {
            return Err(Error::BadExtHeader);
        }
        if self.header_len() > b.len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Walk the TLV options of a hop-by-hop or destination options header (no-op for
    /// other kinds). Call after `check_len`.
    #[inline]
    pub fn check_options(&self) -> Result<(), Error> {
        if self.kind == proto::HOPOPT || self.kind == proto::DSTOPTS {
            walk_tlv_options(
                &self.buffer.as_ref()[ext_field::OPTIONS..self.header_len()],
                0,
                None,
                false,
            )
        } else {
            Ok(())
        }
    }

    /// The protocol number this header was built with.
    #[inline]
    pub fn kind(&self) -> u8 {
        self.kind
    }

    /// Next header.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[ext_field::NXT_HDR]
    }

    /// Length of this header in bytes: 8 for fragment, (len + 2) × 4 for AH, (len + 1) × 8
    /// otherwise.
    #[inline]
    pub fn header_len(&self) -> usize {
        let l = self.buffer.as_ref()[ext_field::LENGTH] as usize;
        match self.kind {
            proto::FRAGMENT => 8,
            proto::AH => (l + 2) * 4,
            _ => (l + 1) * 8,
        }
    }

    /// Fragment offset in 8-byte units (fragment header only).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        read_u16(self.buffer.as_ref(), ext_field::FRAG_OFF) >> 3
    }

    /// More-fragments flag (fragment header only).
    #[inline]
    pub fn more_frags(&self) -> bool {
        read_u16(self.buffer.as_ref(), ext_field::FRAG_OFF) & 1 != 0
    }

    /// Identification (fragment header only).
    #[inline]
    pub fn frag_ident(&self) -> u32 {
        read_u32(self.buffer.as_ref(), ext_field::FRAG_IDENT)
    }
}

/// Fragment header fields found by [`walk_ext_headers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fragment {
    /// Offset in 8-byte units.
    pub offset: u16,
    /// More-fragments flag.
    pub more: bool,
    /// Identification.
    pub ident: u32,
}

/// Result of [`walk_ext_headers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Chain {
    /// The first next-header value that is not a walked extension header: the upper-layer
    /// protocol (or ESP / No Next Header / the fragmented protocol of a later fragment).
    pub upper: u8,
    /// Offset of the upper-layer header from the start of the walked bytes.
    pub offset: usize,
    /// Number of extension headers walked.
    pub count: u8,
    /// The fragment header, if one was walked.
    pub fragment: Option<Fragment>,
    /// Offset of the bytes after the fragment header (the fragment's data: what a
    /// fragment's offset counts from, RFC 8200 §4.5) from the start of the walked bytes;
    /// 0 when no fragment header was walked.
    pub frag_data: usize,
}

impl Chain {
    /// The walk stopped at a fragment with a non-zero offset: no upper-layer header here.
    #[inline]
    pub fn is_later_fragment(&self) -> bool {
        matches!(self.fragment, Some(f) if f.offset != 0)
    }
}

/// Walk the extension header chain in `payload` (the bytes after the fixed header)
/// starting with `next_header` from the fixed header. See the module doc. Never loops more
/// than [`MAX_EXT_HEADERS`] + 1 times.
#[inline]
pub fn walk_ext_headers(next_header: u8, payload: &[u8]) -> Result<Chain, Error> {
    let mut chain = Chain::default();
    walk_ext_headers_into(next_header, payload, &mut chain)?;
    Ok(chain)
}

/// [`walk_ext_headers`] into `chain` (reset first), which also tells how far a failed walk
/// got: on `Err`, `chain` describes the headers walked before the bad one (its
/// `fragment` is set when a fragment header came before it: a first fragment whose
/// header chain does not fit, RFC 7112).
#[inline]
pub fn walk_ext_headers_into(
    mut next_header: u8,
    payload: &[u8],
    chain: &mut Chain,
) -> Result<(), Error> {
    *chain = Chain::default();
    let mut offset = 0usize;
    let mut count = 0usize;
    while matches!(
        next_header,
        proto::HOPOPT | proto::ROUTING | proto::DSTOPTS | proto::FRAGMENT | proto::AH
    ) {
        chain.upper = next_header;
        chain.offset = offset;
        chain.count = count as u8;
        if next_header == proto::HOPOPT && count != 0 {
            return Err(Error::BadExtHeader);
        }
        if count == MAX_EXT_HEADERS {
            return Err(Error::TooManyExtHeaders);
        }
        let rest = payload.get(offset..).unwrap_or(&[]);
        let h = ExtHeader::new_checked(rest, next_header)?;
        h.check_options()?;
        count += 1;
        offset += h.header_len();
        next_header = h.next_header();
        if h.kind() == proto::FRAGMENT {
            let f = Fragment {
                offset: h.frag_offset(),
                more: h.more_frags(),
                ident: h.frag_ident(),
            };
            chain.fragment = Some(f);
            chain.frag_data = offset;
            if f.offset != 0 {
                break;
            }
        }
    }
    chain.upper = next_header;
    chain.offset = offset;
    chain.count = count as u8;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// fe80::1 -> ff02::1, UDP, payload 8 bytes.
    static HEADER: [u8; 48] = [
        0x60, 0x00, 0x00, 0x00, // version 6, TC 0, flow 0
        0x00, 0x08, // payload length 8
        0x11, // next header UDP
        0xff, // hop limit 255
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, // source
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, // destination
        0x12, 0x34, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00, // UDP header
    ];

    #[test]
    fn fixed_header() {
        let p = Packet::new_checked(&HEADER[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.payload_len(), 8);
        assert_eq!(p.next_header(), 17);
        assert_eq!(p.hop_limit(), 255);
        assert_eq!(p.src_addr()[0..2], [0xfe, 0x80]);
        assert_eq!(p.dst_addr()[15], 1);
        assert_eq!(p.payload().len(), 8);
        assert_eq!(
            Packet::new_checked(&HEADER[..39]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Packet::new_checked(&HEADER[..47]).unwrap_err(),
            Error::BadPayloadLength
        );
        let mut b = HEADER;
        b[0] = 0x40;
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::BadVersion);
    }

    #[test]
    fn walk_chain() {
        let chain = [
            60, 0, 1, 4, 0, 0, 0, 0, // HBH: next dest opts, len 0, PadN(4)
            44, 0, 5, 2, 0, 0, 0,
            0, // dest opts: next frag, option 5 with 2 data bytes, Pad1, Pad1
            51, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef, // frag: next AH, offset 0, M=1, id
            6, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, // AH: next TCP, len 1 (12 bytes)
        ];
        let c = walk_ext_headers(0, &chain).unwrap();
        assert_eq!(c.upper, 6);
        assert_eq!(c.offset, 36);
        assert_eq!(c.count, 4);
        assert_eq!(
            c.fragment,
            Some(Fragment {
                offset: 0,
                more: true,
                ident: 0xdead_beef
            })
        );
        assert!(!c.is_later_fragment());
        // The fragment's data starts after the fragment header.
        assert_eq!(c.frag_data, 24);
        // A first fragment whose chain is cut after its fragment header (RFC 7112): the
        // failed walk still tells the fragment header.
        let mut partial = Chain::default();
        assert_eq!(
            walk_ext_headers_into(0, &chain[..28], &mut partial),
            Err(Error::Truncated)
        );
        assert_eq!((partial.upper, partial.offset, partial.count), (51, 24, 3));
        assert_eq!(partial.fragment, c.fragment);
        assert_eq!(walk_ext_headers(0, &chain[..28]), Err(Error::Truncated));
    }

    #[test]
    fn walk_errors() {
        // Hop-by-hop after another header.
        let b = [0, 0, 1, 4, 0, 0, 0, 0, 6, 0, 1, 4, 0, 0, 0, 0];
        assert_eq!(walk_ext_headers(60, &b), Err(Error::BadExtHeader));
        // AH with length 0.
        let b = [6, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(walk_ext_headers(51, &b), Err(Error::BadExtHeader));
        // Truncated routing header (claims 16 bytes).
        let b = [6, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(walk_ext_headers(43, &b), Err(Error::Truncated));
        // Option running past its header.
        let b = [6, 0, 1, 5, 0, 0, 0, 0];
        assert_eq!(walk_ext_headers(60, &b), Err(Error::BadOption));
        // Nine destination options headers.
        let mut b = [0u8; 72];
        for h in b.chunks_mut(8) {
            h.copy_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
        }
        assert_eq!(walk_ext_headers(60, &b), Err(Error::TooManyExtHeaders));
        // Eight are fine.
        b[56] = 59;
        let c = walk_ext_headers(60, &b[..64]).unwrap();
        assert_eq!((c.upper, c.count, c.offset), (59, 8, 64));
    }

    #[test]
    fn later_fragment_stops_walk() {
        // Fragment header: next UDP, offset 185 (1480 bytes), M=0; then garbage.
        let b = [17, 0, 0x05, 0xc8, 0, 0, 0, 7, 0xff, 0xff];
        let c = walk_ext_headers(44, &b).unwrap();
        assert_eq!(c.upper, 17);
        assert!(c.is_later_fragment());
        assert_eq!((c.offset, c.frag_data), (8, 8));
        assert_eq!(
            c.fragment,
            Some(Fragment {
                offset: 185,
                more: false,
                ident: 7
            })
        );
    }
}
