//! ICMPv6 message view (RFC 4443, neighbour discovery RFC 4861).
//!
//! [`Packet::check_len`] requires 8 bytes: the 4-byte common header plus the 4 bytes every
//! defined message has next (identifier/sequence, MTU, pointer, reserved/flags). Error
//! messages (types 1–4) quote as much of the offending packet as fits after those 8 bytes.
//! Neighbour solicitation (135) and advertisement (136) carry a 16-byte target address at
//! offset 8: [`Packet::nd_target`] returns `None` when it is missing.

use super::{fields, read_array, typed_view, Field};

mod field {
    use super::Field;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const SEQ_NO: Field = 6..8;
    pub const PAYLOAD: usize = 8;
    pub const ND_TARGET: usize = 8;
}

/// Length of the header this view checks.
pub const HEADER_LEN: usize = field::PAYLOAD;

/// Message types this switch distinguishes.
pub mod msg {
    pub const DEST_UNREACHABLE: u8 = 1;
    pub const PACKET_TOO_BIG: u8 = 2;
    pub const TIME_EXCEEDED: u8 = 3;
    pub const PARAM_PROBLEM: u8 = 4;
    pub const ECHO_REQUEST: u8 = 128;
    pub const ECHO_REPLY: u8 = 129;
    pub const MLD_QUERY: u8 = 130;
    pub const ROUTER_SOLICIT: u8 = 133;
    pub const ROUTER_ADVERT: u8 = 134;
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    pub const NEIGHBOR_ADVERT: u8 = 136;
}

/// Error messages that quote the offending packet.
#[inline]
pub const fn is_error(msg_type: u8) -> bool {
    matches!(msg_type, 1..=4)
}

/// Echo request/reply, whose bytes 4..6 are an identifier.
#[inline]
pub const fn is_echo(msg_type: u8) -> bool {
    matches!(msg_type, msg::ECHO_REQUEST | msg::ECHO_REPLY)
}

typed_view!(
    /// A read-only view of an ICMPv6 message.
    Packet,
    len = HEADER_LEN
);

impl<T: AsRef<[u8]>> Packet<T> {
    fields! {
        msg_type: u8 = field::TYPE;
        msg_code: u8 = field::CODE;
        /// Checksum as carried (not verified).
        checksum: u16 = field::CHECKSUM;
        /// Echo identifier (meaningful for [`is_echo`] types).
        ident: u16 = field::IDENT;
        /// Echo sequence number.
        seq_no: u16 = field::SEQ_NO;
    }

    /// The target address of a neighbour solicitation/advertisement (or redirect), if the
    /// message is long enough to hold one.
    #[inline]
    pub fn nd_target(&self) -> Option<[u8; 16]> {
        let b = self.buffer.as_ref();
        if b.len() < field::ND_TARGET + 16 {
            return None;
        }
        Some(read_array(b, field::ND_TARGET))
    }

    /// Everything after the 8-byte header (the quoted packet for [`is_error`] types).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Error;

    static NS: [u8; 24] = [
        135, // type neighbour solicitation
        0,   // code
        0x00, 0x00, // checksum
        0x00, 0x00, 0x00, 0x00, // reserved
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // target fe80::2
    ];

    #[test]
    fn neighbour_solicitation() {
        let p = Packet::new_checked(&NS[..]).unwrap();
        assert_eq!((p.msg_type(), p.msg_code()), (135, 0));
        let t = p.nd_target().unwrap();
        assert_eq!((t[0], t[1], t[15]), (0xfe, 0x80, 2));
        assert_eq!(Packet::new_checked(&NS[..23]).unwrap().nd_target(), None);
        assert_eq!(Packet::new_checked(&NS[..7]).unwrap_err(), Error::Truncated);
    }

    #[test]
    fn classes() {
        assert!((1..=4).all(is_error));
        assert!(!is_error(0) && !is_error(128) && !is_error(135));
        assert!(is_echo(128) && is_echo(129) && !is_echo(130));
    }
}
