//! VXLAN header view (RFC 7348 §5).
//!
//! ```text
//!  0                   1                   2                   3
//! |R|R|R|R|I|R|R|R|            Reserved                           |
//! |                VXLAN Network Identifier (VNI) |   Reserved    |
//! ```
//! Eight bytes after the outer UDP header (destination port 4789), then the inner
//! Ethernet frame. [`Packet::check_len`]: the 8 bytes are present (`Truncated`). Whether
//! the I flag is set (a valid VNI) is the receiver's decision ([`Packet::vni_valid`]),
//! not a length rule: RFC 7348 says the other bits are ignored on receipt.
//!
//! Owns: the VXLAN header layout, and [`emit`] (the one writer: encapsulation builds
//! this header, see the `wire` module doc). May not touch: which VNI means what (the
//! overlay's), anything beyond these 8 bytes. Uses only `super`; no allocation, no
//! `unsafe`; no accessor panics after `check_len` returned `Ok`.

use super::{fields, typed_view, Error};

mod field {
    use super::super::Field;
    pub const FLAGS: usize = 0;
    pub const VNI_WORD: Field = 4..8;
    pub const PAYLOAD: usize = 8;
}

/// Length of the header.
pub const HEADER_LEN: usize = field::PAYLOAD;
/// The I flag: the VNI is valid (RFC 7348: must be set).
pub const FLAG_I: u8 = 0x08;
/// IANA UDP destination port.
pub const UDP_PORT: u16 = 4789;

typed_view!(
    /// A read-only view of a VXLAN header and what follows it.
    Packet,
    len = HEADER_LEN
);

impl<T: AsRef<[u8]>> Packet<T> {
    fields! {
        /// The flags byte (only [`FLAG_I`] is defined).
        flags: u8 = field::FLAGS;
        /// The 24-bit VNI.
        vni: u32 = field::VNI_WORD, |w: u32| w >> 8;
    }

    /// The I flag is set (the VNI is valid); a frame without it is dropped.
    #[inline]
    pub fn vni_valid(&self) -> bool {
        self.flags() & FLAG_I != 0
    }

    /// The inner Ethernet frame.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

/// Write a VXLAN header for `vni` (its low 24 bits) into the first [`HEADER_LEN`] bytes
/// of `out`: I flag set, reserved bits zero. `Err(Truncated)` if `out` is shorter.
pub fn emit(out: &mut [u8], vni: u32) -> Result<(), Error> {
    let Some(h) = out.get_mut(..HEADER_LEN) else {
        return Err(Error::Truncated);
    };
    h[0] = FLAG_I;
    h[1..4].fill(0);
    h[4..8].copy_from_slice(&((vni & 0x00ff_ffff) << 8).to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The VXLAN header on VNI 123: `bytes(VXLAN(vni=123, flags=0x08))` of scapy 2.5 is
    /// `0800000000007b00`.
    static HDR: [u8; 10] = [
        0x08, 0x00, 0x00, 0x00, // flags I, reserved
        0x00, 0x00, 0x7b, 0x00, // VNI 123, reserved
        0xaa, 0xbb, // inner frame starts
    ];

    #[test]
    fn fields() {
        let p = Packet::new_checked(&HDR[..]).unwrap();
        assert!(p.vni_valid());
        assert_eq!(p.vni(), 123);
        assert_eq!(p.payload(), &[0xaa, 0xbb]);
        let mut max = HDR;
        max[4..7].fill(0xff);
        max[7] = 0xff; // the reserved byte is ignored
        assert_eq!(Packet::new_checked(&max[..]).unwrap().vni(), 0xff_ffff);
        let mut no_i = HDR;
        no_i[0] = 0;
        assert!(!Packet::new_checked(&no_i[..]).unwrap().vni_valid());
    }

    #[test]
    fn malformed() {
        for n in 0..HEADER_LEN {
            assert_eq!(
                Packet::new_checked(&HDR[..n]).unwrap_err(),
                Error::Truncated
            );
        }
        assert!(Packet::new_checked(&HDR[..8]).unwrap().payload().is_empty());
    }

    #[test]
    fn emit_writes_what_the_view_reads() {
        let mut b = [0xffu8; 10];
        emit(&mut b, 123).unwrap();
        assert_eq!(b[..8], HDR[..8]);
        emit(&mut b, 0x1ff_ffff).unwrap();
        assert_eq!(Packet::new_checked(&b[..]).unwrap().vni(), 0xff_ffff);
        assert_eq!(emit(&mut b[..7], 1), Err(Error::Truncated));
    }
}
