//! ICMPv6 message view (RFC 4443, neighbour discovery RFC 4861).
//!
//! [`Packet::check_len`] requires 8 bytes: the 4-byte common header plus the 4 bytes every
//! defined message has next (identifier/sequence, MTU, pointer, reserved/flags). Error
//! messages (types 1–4) quote as much of the offending packet as fits after those 8 bytes.
//! Neighbour solicitation (135) and advertisement (136) carry a 16-byte target address at
//! offset 8: [`Packet::nd_target`] returns `None` when it is missing.
//!
//! Owns: the ICMPv6 message-type numbers ([`msg`]), their classes ([`is_error`],
//! [`is_mld`], [`is_echo`]) and the neighbour discovery target; the common layout is
//! [`super::icmp`]'s. May not touch: which messages are always allowed or guarded (router
//! advertisements, ND, MLD: the pipeline's port security), connection state (`conntrack`)
//! or the quoted packet (`flow` parses it). Like every view: uses only `super`, no
//! allocation, no `unsafe`, and no accessor panics once `check_len` returned `Ok`.

use super::{fields, read_array, typed_view};

/// ICMPv6 messages have the layout of ICMP (v4) messages (RFC 4443 §2.1: type, code,
/// checksum, 4 message-specific bytes), plus the neighbour discovery target.
mod field {
    pub use super::super::icmp::field::*;
    pub const ND_TARGET: usize = 8;
}

/// Length of the header this view checks.
pub const HEADER_LEN: usize = field::PAYLOAD;

/// Message types this switch distinguishes (IANA "ICMPv6 Parameters").
pub mod msg {
    crate::wire::type_numbers! {
        /// Errors (RFC 4443 §3): they quote the offending packet.
        DEST_UNREACHABLE = 1, PACKET_TOO_BIG = 2, TIME_EXCEEDED = 3, PARAM_PROBLEM = 4;
        /// Echo (RFC 4443 §4).
        ECHO_REQUEST = 128, ECHO_REPLY = 129;
        /// Multicast listener discovery: query (v1 and v2), MLDv1 report and done (RFC 2710).
        MLD_QUERY = 130, MLD_REPORT = 131, MLD_DONE = 132;
        /// MLDv2 report (RFC 3810 §5.2).
        MLDV2_REPORT = 143;
        /// Neighbour discovery (RFC 4861 §4).
        ROUTER_SOLICIT = 133, ROUTER_ADVERT = 134, NEIGHBOR_SOLICIT = 135, NEIGHBOR_ADVERT = 136;
        /// Node information query and response (RFC 4620): a query/reply pair like echo.
        NODE_INFO_QUERY = 139, NODE_INFO_RESPONSE = 140;
    }
}

/// Error messages that quote the offending packet.
#[inline]
pub const fn is_error(msg_type: u8) -> bool {
    matches!(msg_type, msg::DEST_UNREACHABLE..=msg::PARAM_PROBLEM)
}

/// Multicast listener discovery: queries, MLDv1 reports and dones, MLDv2 reports.
#[inline]
pub const fn is_mld(msg_type: u8) -> bool {
    matches!(
        msg_type,
        msg::MLD_QUERY | msg::MLD_REPORT | msg::MLD_DONE | msg::MLDV2_REPORT
    )
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
        assert!([130, 131, 132, 143].into_iter().all(is_mld));
        assert!(!is_mld(133) && !is_mld(129));
    }
}
