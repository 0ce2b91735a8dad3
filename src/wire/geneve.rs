//! Geneve header view (RFC 8926 §3.4).
//!
//! ```text
//!  0                   1                   2                   3
//! |Ver|  Opt Len  |O|C|    Rsvd.  |          Protocol Type        |
//! |        Virtual Network Identifier (VNI)       |    Reserved   |
//! |                    Variable-Length Options                    |
//! ```
//! Eight fixed bytes after the outer UDP header (destination port 6081), then `Opt Len`
//! 4-byte words of options, then the payload (an Ethernet frame when the protocol type
//! is [`PROTO_ETHERNET`], 0x6558). Each option is `class (16) | type (8) | R R R len (5)`
//! followed by `len` 4-byte words.
//!
//! [`Packet::check_len`]: the fixed header and the whole option area are present
//! (`Truncated`), and the version is 0 (`BadVersion`). [`Packet::check_options`]: the
//! options tile the option area exactly (`BadOption`); a walk bounded by the area's at
//! most 252 bytes. Whether an option or the O/C bits are acceptable is the receiver's
//! decision (RFC 8926 §3.5.1: a critical option it does not understand means drop).
//!
//! Owns: the Geneve header layout, and [`emit`] (the one writer: encapsulation builds
//! this header, see the `wire` module doc). May not touch: what a VNI or an option
//! means (the overlay's). Uses only `super`; no allocation, no `unsafe`; no accessor
//! panics after `check_len` returned `Ok`.

use super::{fields, typed_view, Error};

mod field {
    use super::super::Field;
    pub const VER_OPTLEN: usize = 0;
    pub const FLAGS: usize = 1;
    pub const PROTOCOL: Field = 2..4;
    pub const VNI_WORD: Field = 4..8;
    pub const OPTIONS: usize = 8;
}

/// Length of the fixed header (without options).
pub const HEADER_LEN: usize = field::OPTIONS;
/// Protocol type of an Ethernet payload ("Transparent Ethernet Bridging").
pub const PROTO_ETHERNET: u16 = 0x6558;
/// The O bit: an OAM (control) packet, not to be forwarded as data.
pub const FLAG_OAM: u8 = 0x80;
/// The C bit: critical options are present.
pub const FLAG_CRITICAL: u8 = 0x40;
/// The critical bit of an option's type.
pub const OPTION_TYPE_CRITICAL: u8 = 0x80;
/// IANA UDP destination port.
pub const UDP_PORT: u16 = 6081;

typed_view!(
    /// A read-only view of a Geneve header, its options and what follows them.
    Packet,
    checks = [check_len, check_options]
);

impl<T: AsRef<[u8]>> Packet<T> {
    /// The fixed header and the option area are present and the version is 0. After
    /// `Ok`, no accessor can panic.
    #[inline]
    pub fn check_len(&self) -> Result<(), Error> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 0 {
            return Err(Error::BadVersion);
        }
        if b.len() < self.header_len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The options exactly fill the option area (after [`check_len`](Self::check_len)).
    pub fn check_options(&self) -> Result<(), Error> {
        let opts = self.options();
        let mut i = 0usize;
        while i < opts.len() {
            let Some(&len) = opts.get(i + 3) else {
                return Err(Error::BadOption);
            };
            let total = 4 + 4 * usize::from(len & 0x1f);
            if total > opts.len() - i {
                return Err(Error::BadOption);
            }
            i += total;
        }
        Ok(())
    }

    fields! {
        /// The version (0 is the only one defined).
        version: u8 = field::VER_OPTLEN, |v: u8| v >> 6;
        /// The option area's length in 4-byte words.
        opt_len_words: u8 = field::VER_OPTLEN, |v: u8| v & 0x3f;
        /// The flags byte: [`FLAG_OAM`], [`FLAG_CRITICAL`], 6 reserved bits.
        flags: u8 = field::FLAGS;
        /// The payload's protocol type ([`PROTO_ETHERNET`] for a frame).
        protocol: u16 = field::PROTOCOL;
        /// The 24-bit VNI.
        vni: u32 = field::VNI_WORD, |w: u32| w >> 8;
    }

    /// The O bit (an OAM packet).
    #[inline]
    pub fn oam(&self) -> bool {
        self.flags() & FLAG_OAM != 0
    }

    /// The C bit (critical options present).
    #[inline]
    pub fn critical(&self) -> bool {
        self.flags() & FLAG_CRITICAL != 0
    }

    /// Fixed header plus options, in bytes (8..=260).
    #[inline]
    pub fn header_len(&self) -> usize {
        HEADER_LEN + 4 * usize::from(self.opt_len_words())
    }

    /// The option area.
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// Whether any option has its type's critical bit set (after `check_options`).
    pub fn has_critical_option(&self) -> bool {
        let opts = self.options();
        let mut i = 0usize;
        while i + 4 <= opts.len() {
            if opts[i + 2] & OPTION_TYPE_CRITICAL != 0 {
                return true;
            }
            i += 4 + 4 * usize::from(opts[i + 3] & 0x1f);
        }
        false
    }

    /// The payload after the options (the inner frame).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

/// Write a Geneve header without options for `vni` (low 24 bits) and an Ethernet payload
/// into the first [`HEADER_LEN`] bytes of `out`: version 0, O and C clear.
/// `Err(Truncated)` if `out` is shorter.
pub fn emit(out: &mut [u8], vni: u32) -> Result<(), Error> {
    let Some(h) = out.get_mut(..HEADER_LEN) else {
        return Err(Error::Truncated);
    };
    h[0] = 0;
    h[1] = 0;
    h[2..4].copy_from_slice(&PROTO_ETHERNET.to_be_bytes());
    h[4..8].copy_from_slice(&((vni & 0x00ff_ffff) << 8).to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// scapy 2.5: `bytes(GENEVE(vni=0x123456, proto=0x6558, optionlen=2,
    /// options=bytes.fromhex("01020301deadbeef")))` is `020065581234560001020301deadbeef`
    /// (RFC 8926 §3.4 / §3.5: opt len 2 words; option class 0x0102, type 0x03, length 1
    /// word, 4 bytes of data), then two bytes of inner frame.
    static WITH_OPT: [u8; 18] = [
        0x02, 0x00, 0x65, 0x58, // ver 0, opt len 2; O=0 C=0; proto 0x6558
        0x12, 0x34, 0x56, 0x00, // VNI 0x123456, reserved
        0x01, 0x02, 0x03, 0x01, // option class, type, len 1
        0xde, 0xad, 0xbe, 0xef, // option data
        0xaa, 0xbb, // inner frame
    ];

    #[test]
    fn fields() {
        let p = Packet::new_checked(&WITH_OPT[..]).unwrap();
        assert_eq!(p.version(), 0);
        assert_eq!(p.opt_len_words(), 2);
        assert_eq!(p.header_len(), 16);
        assert_eq!(p.protocol(), PROTO_ETHERNET);
        assert_eq!(p.vni(), 0x12_3456);
        assert!(!p.oam() && !p.critical() && !p.has_critical_option());
        assert_eq!(p.options().len(), 8);
        assert_eq!(p.payload(), &[0xaa, 0xbb]);
        let mut crit = WITH_OPT;
        crit[1] = FLAG_OAM | FLAG_CRITICAL;
        crit[10] |= OPTION_TYPE_CRITICAL;
        let p = Packet::new_checked(&crit[..]).unwrap();
        assert!(p.oam() && p.critical() && p.has_critical_option());
    }

    #[test]
    fn malformed() {
        for n in 0..16 {
            assert_eq!(
                Packet::new_checked(&WITH_OPT[..n]).unwrap_err(),
                Error::Truncated,
                "{n}"
            );
        }
        let mut v1 = WITH_OPT;
        v1[0] |= 0x40;
        assert_eq!(Packet::new_checked(&v1[..]).unwrap_err(), Error::BadVersion);
        // Option length runs past the area.
        let mut long = WITH_OPT;
        long[11] = 2;
        assert_eq!(
            Packet::new_checked(&long[..]).unwrap_err(),
            Error::BadOption
        );
        // An option area of one word holds one option header without data.
        let mut one = WITH_OPT;
        one[0] = 0x01;
        one[11] = 0;
        assert!(Packet::new_checked(&one[..]).is_ok());
        // Largest option area: 63 words, longer than the buffer.
        let mut big = WITH_OPT;
        big[0] = 0x3f;
        assert_eq!(Packet::new_checked(&big[..]).unwrap_err(), Error::Truncated);
    }

    #[test]
    fn emit_writes_what_the_view_reads() {
        let mut b = [0xffu8; 8];
        emit(&mut b, 0x12_3456).unwrap();
        assert_eq!(b, [0x00, 0x00, 0x65, 0x58, 0x12, 0x34, 0x56, 0x00]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!((p.vni(), p.header_len()), (0x12_3456, 8));
        assert_eq!(emit(&mut b[..7], 1), Err(Error::Truncated));
    }
}
