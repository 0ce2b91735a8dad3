//! ARP / RARP packet view (RFC 826, RFC 903), Ethernet hardware + IPv4 protocol only.
//!
//! RARP (ethertype 0x8035) uses the same layout with other opcodes (3 request, 4 reply).
//! Any other hardware/protocol combination is reported as [`Error::UnsupportedArp`] by
//! [`Packet::check_ethernet_ipv4`]: port security can only reason about MAC/IPv4 pairs.

use super::{read_array, read_u16, Error, Field};

mod field {
    use super::Field;
    pub const HTYPE: Field = 0..2;
    pub const PTYPE: Field = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Field = 6..8;
    pub const SHA: usize = 8;
    pub const SPA: usize = 14;
    pub const THA: usize = 18;
    pub const TPA: usize = 24;
    pub const END: usize = 28;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = field::END;

/// Hardware type Ethernet.
pub const HTYPE_ETHERNET: u16 = 1;
/// Opcodes.
pub const OP_REQUEST: u16 = 1;
pub const OP_REPLY: u16 = 2;
pub const OP_RARP_REQUEST: u16 = 3;
pub const OP_RARP_REPLY: u16 = 4;

/// A read-only view of an ARP packet.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap a buffer without checking it.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wrap, [`check_len`](Self::check_len) and
    /// [`check_ethernet_ipv4`](Self::check_ethernet_ipv4).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        p.check_ethernet_ipv4()?;
        Ok(p)
    }

    /// `Ok` when the 28 bytes of an Ethernet/IPv4 ARP packet are present; then no accessor
    /// can panic (bytes after 28 are Ethernet padding and ignored).
    #[inline]
    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < PACKET_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// `Ok` when hardware is Ethernet (1, length 6) and protocol IPv4 (0x0800, length 4).
    /// Call after `check_len`.
    #[inline]
    pub fn check_ethernet_ipv4(&self) -> Result<(), Error> {
        if self.hardware_type() == HTYPE_ETHERNET
            && self.protocol_type() == 0x0800
            && self.hardware_len() == 6
            && self.protocol_len() == 4
        {
            Ok(())
        } else {
            Err(Error::UnsupportedArp)
        }
    }

    /// The wrapped buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn hardware_type(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::HTYPE)
    }

    #[inline]
    pub fn protocol_type(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::PTYPE)
    }

    #[inline]
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    #[inline]
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// Operation (1 request, 2 reply, 3/4 RARP request/reply).
    #[inline]
    pub fn operation(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::OPER)
    }

    /// Sender hardware address.
    #[inline]
    pub fn sha(&self) -> [u8; 6] {
        read_array(self.buffer.as_ref(), field::SHA)
    }

    /// Sender protocol (IPv4) address.
    #[inline]
    pub fn spa(&self) -> [u8; 4] {
        read_array(self.buffer.as_ref(), field::SPA)
    }

    /// Target hardware address.
    #[inline]
    pub fn tha(&self) -> [u8; 6] {
        read_array(self.buffer.as_ref(), field::THA)
    }

    /// Target protocol (IPv4) address.
    #[inline]
    pub fn tpa(&self) -> [u8; 4] {
        read_array(self.buffer.as_ref(), field::TPA)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static REQUEST: [u8; 28] = [
        0x00, 0x01, // htype Ethernet
        0x08, 0x00, // ptype IPv4
        0x06, // hlen
        0x04, // plen
        0x00, 0x01, // op request
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // sha
        10, 0, 0, 1, // spa
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // tha
        10, 0, 0, 2, // tpa
    ];

    #[test]
    fn request_fields() {
        let p = Packet::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(p.operation(), OP_REQUEST);
        assert_eq!(p.sha(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(p.spa(), [10, 0, 0, 1]);
        assert_eq!(p.tha(), [0; 6]);
        assert_eq!(p.tpa(), [10, 0, 0, 2]);
    }

    #[test]
    fn malformed() {
        assert_eq!(
            Packet::new_checked(&REQUEST[..27]).unwrap_err(),
            Error::Truncated
        );
        let mut b = REQUEST;
        b[1] = 6; // IEEE 802 hardware
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            Error::UnsupportedArp
        );
        let mut b = REQUEST;
        b[5] = 16; // IPv6-sized protocol addresses
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            Error::UnsupportedArp
        );
    }
}
