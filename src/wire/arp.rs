//! ARP / RARP packet view (RFC 826, RFC 903), Ethernet hardware + IPv4 protocol only.
//!
//! RARP (ethertype 0x8035) uses the same layout with other opcodes (3 request, 4 reply).
//! Any other hardware/protocol combination is reported as [`Error::UnsupportedArp`] by
//! [`Packet::check_ethernet_ipv4`]: port security can only reason about MAC/IPv4 pairs.
//!
//! Owns: the ARP layout (the 28-byte Ethernet/IPv4 packet), the opcodes and
//! [`Packet::check_ethernet_ipv4`]. May not touch: whether a sender may claim a MAC or an
//! address (ARP anti-spoofing is the pipeline's port security). Like every view: uses only
//! `super` (no other layer), no allocation, no `unsafe`, and no accessor panics once
//! `check_len` returned `Ok`.

use super::{fields, typed_view, Error, Field, Mac};

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

typed_view!(
    /// A read-only view of an ARP packet (bytes after the 28 of an Ethernet/IPv4 packet
    /// are Ethernet padding and ignored).
    Packet,
    len = PACKET_LEN,
    then = [check_ethernet_ipv4]
);

impl<T: AsRef<[u8]>> Packet<T> {
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

    fields! {
        hardware_type: u16 = field::HTYPE;
        protocol_type: u16 = field::PTYPE;
        hardware_len: u8 = field::HLEN;
        protocol_len: u8 = field::PLEN;
        /// Operation (1 request, 2 reply, 3/4 RARP request/reply).
        operation: u16 = field::OPER;
        /// Sender hardware address.
        sha: Mac = field::SHA;
        /// Sender protocol (IPv4) address.
        spa: [u8; 4] = field::SPA;
        /// Target hardware address.
        tha: Mac = field::THA;
        /// Target protocol (IPv4) address.
        tpa: [u8; 4] = field::TPA;
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
