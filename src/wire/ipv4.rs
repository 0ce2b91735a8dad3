//! IPv4 header view (RFC 791).
//!
//! [`Packet::check_len`] establishes, in this order:
//! 1. the 20-byte fixed header is present (`Truncated`);
//! 2. the version nibble is 4 (`BadVersion`);
//! 3. IHL ≥ 5 (`BadIhl`), and the IHL-sized header is present (`Truncated`);
//! 4. header length ≤ total length ≤ buffer length (`BadTotalLength`). Bytes after the total
//!    length are link-layer padding (Ethernet pads short frames to 60 bytes) and are
//!    excluded from [`Packet::payload`].
//!
//! [`Packet::check_options`] walks the options (RFC 791 §3.1): EOL (0) ends the list, NOP
//! (1) is one byte, every other option has a length byte that must be ≥ 2 and keep the
//! option inside the header (`ZeroLengthOption`, `BadOption`). Option contents (source
//! route, record route, timestamps) are not interpreted: the switch forwards at L2.
//!
//! Owns: the IPv4 header layout, the length checks above and the option walk. May not
//! touch: what the addresses are allowed to be (anti-spoofing is the pipeline's), fragment
//! bookkeeping (it reports offset, MF and identification; `pipeline::fragments` keeps
//! datagrams) or checksums. Like every view: uses only `super`, no allocation, no
//! `unsafe`, and no accessor panics once `check_len` returned `Ok`.

use super::{fields, typed_view, walk_tlv_options, Error, Field};

mod field {
    use super::Field;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC_ADDR: usize = 12;
    pub const DST_ADDR: usize = 16;
    pub const OPTIONS: usize = 20;
}

/// Length of the fixed header (IHL = 5).
pub const HEADER_LEN: usize = field::OPTIONS;

/// Don't-fragment flag in the flags/offset word.
pub const FLAG_DF: u16 = 0x4000;
/// More-fragments flag in the flags/offset word.
pub const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

typed_view!(
    /// A read-only view of an IPv4 packet.
    Packet,
    checks = [check_len, check_options]
);

impl<T: AsRef<[u8]>> Packet<T> {
    /// Validate the header and length fields (see the module doc). After `Ok`, no accessor
    /// can panic.
    #[inline]
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        self.check_header()?;
        let total = self.total_len() as usize;
        if total < self.header_len() || total > len {
            return Err(Error::BadTotalLength);
        }
        Ok(())
    }

    /// Steps 1–3 of [`check_len`](Self::check_len) only: the header (with its options) is
    /// present and well formed, whatever the total length says. For headers quoted in
    /// ICMP errors, whose total length describes the original packet, not the quote.
    /// After `Ok`, every accessor but [`payload`](Self::payload) is safe.
    #[inline]
    pub fn check_header(&self) -> Result<(), Error> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b[field::VER_IHL] >> 4 != 4 {
            return Err(Error::BadVersion);
        }
        let hl = self.header_len();
        if hl < HEADER_LEN {
            return Err(Error::BadIhl);
        }
        if hl > b.len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Walk and validate the options. Call after `check_len` or `check_header`.
    #[inline]
    pub fn check_options(&self) -> Result<(), Error> {
        let opts = self.options();
        if opts.is_empty() {
            return Ok(());
        }
        walk_tlv_options(opts, 1, Some(0), true)
    }

    fields! {
        /// Version nibble.
        version: u8 = field::VER_IHL, |v: u8| v >> 4;
        /// Header length in bytes (IHL × 4).
        header_len: usize = field::VER_IHL, |v: u8| ((v & 0x0f) as usize) * 4;
        /// DSCP (6 bits).
        dscp: u8 = field::DSCP_ECN, |v: u8| v >> 2;
        /// ECN (2 bits).
        ecn: u8 = field::DSCP_ECN, |v: u8| v & 0x03;
        /// Total length (header + payload) as declared.
        total_len: u16 = field::LENGTH;
        /// Identification.
        ident: u16 = field::IDENT;
        /// Don't-fragment flag.
        dont_frag: bool = field::FLG_OFF, |v: u16| v & FLAG_DF != 0;
        /// More-fragments flag.
        more_frags: bool = field::FLG_OFF, |v: u16| v & FLAG_MF != 0;
        /// Fragment offset in 8-byte units.
        frag_offset: u16 = field::FLG_OFF, |v: u16| v & OFFSET_MASK;
        /// Time to live.
        ttl: u8 = field::TTL;
        /// Protocol of the payload.
        protocol: u8 = field::PROTOCOL;
        /// Header checksum as carried (not verified).
        checksum: u16 = field::CHECKSUM;
        /// Source address.
        src_addr: [u8; 4] = field::SRC_ADDR;
        /// Destination address.
        dst_addr: [u8; 4] = field::DST_ADDR;
    }

    /// The options area (empty when IHL = 5).
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::OPTIONS..self.header_len()]
    }

    /// The payload: from the end of the header to the total length (padding excluded).
    /// Needs a full `check_len`.
    #[inline(always)]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..self.total_len() as usize]
    }

    /// The bytes after the header, whatever the total length says (for ICMP quotes).
    /// Needs `check_header`.
    #[inline]
    pub fn rest(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 10.0.0.1 -> 10.0.0.2, TCP, with one NOP and one 3-byte option, then EOL padding.
    static WITH_OPTIONS: [u8; 30] = [
        0x46, // version 4, IHL 6 (24 bytes)
        0x00, // DSCP/ECN
        0x00, 0x1c, // total length 28 (24 header + 4 payload)
        0xab, 0xcd, // identification
        0x20, 0x02, // MF set, offset 2 (16 bytes)
        0x40, // TTL 64
        0x06, // protocol TCP
        0x00, 0x00, // checksum (not verified)
        10, 0, 0, 1, // source
        10, 0, 0, 2,    // destination
        0x01, // option NOP
        0x94, 0x03, 0x00, // option router alert-ish, len 3
        0xde, 0xad, 0xbe, 0xef, // payload
        0x00, 0x00, // Ethernet padding beyond total length
    ];

    #[test]
    fn fields() {
        let p = Packet::new_checked(&WITH_OPTIONS[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.total_len(), 28);
        assert_eq!(p.ident(), 0xabcd);
        assert!(p.more_frags());
        assert!(!p.dont_frag());
        assert_eq!(p.frag_offset(), 2);
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), 6);
        assert_eq!(p.src_addr(), [10, 0, 0, 1]);
        assert_eq!(p.dst_addr(), [10, 0, 0, 2]);
        assert_eq!(p.options(), &[0x01, 0x94, 0x03, 0x00]);
        assert_eq!(p.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(p.rest().len(), 6);
    }

    #[test]
    fn malformed() {
        let check = |b: &[u8]| Packet::new_checked(b).map(|_| ());
        assert_eq!(check(&WITH_OPTIONS[..19]), Err(Error::Truncated));
        assert_eq!(check(&WITH_OPTIONS[..22]), Err(Error::Truncated)); // options cut
        let mut b = WITH_OPTIONS;
        b[0] = 0x65;
        assert_eq!(check(&b), Err(Error::BadVersion));
        let mut b = WITH_OPTIONS;
        b[0] = 0x44; // IHL 4
        assert_eq!(check(&b), Err(Error::BadIhl));
        let mut b = WITH_OPTIONS;
        b[3] = 23; // total length below header length
        assert_eq!(check(&b), Err(Error::BadTotalLength));
        let mut b = WITH_OPTIONS;
        b[3] = 31; // total length past the buffer
        assert_eq!(check(&b), Err(Error::BadTotalLength));
        let mut b = WITH_OPTIONS;
        b[21] = 0x44;
        b[22] = 0x00; // zero-length option
        assert_eq!(check(&b), Err(Error::ZeroLengthOption));
        let mut b = WITH_OPTIONS;
        b[22] = 0x04; // option runs past the header
        assert_eq!(check(&b), Err(Error::BadOption));
        let mut b = WITH_OPTIONS;
        b[22] = 0x01; // length 1
        assert_eq!(check(&b), Err(Error::BadOption));
    }

    #[test]
    fn header_only_check_for_quotes() {
        // The quote ends after 26 bytes but claims 28 in total: fine for check_header.
        let p = Packet::new_unchecked(&WITH_OPTIONS[..26]);
        assert_eq!(p.check_len(), Err(Error::BadTotalLength));
        assert_eq!(p.check_header(), Ok(()));
        assert_eq!(p.rest(), &[0xde, 0xad]);
    }
}
