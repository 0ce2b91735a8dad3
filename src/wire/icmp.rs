//! ICMP (v4) message view (RFC 792, RFC 950 for address mask).
//!
//! Every ICMP message starts with type, code, checksum and 4 more bytes whose meaning
//! depends on the type (identifier + sequence for queries, unused / pointer / gateway /
//! next-hop MTU for errors); [`Packet::check_len`] requires those 8 bytes. For error
//! messages the payload is the quoted original datagram: its IPv4 header and at least the
//! first 8 bytes of its payload (RFC 792; RFC 1812 §4.3.2.3 allows more).
//!
//! Owns: the ICMP (v4) header layout (shared with [`super::icmpv6`]), the message-type
//! numbers ([`msg`]) and which of them are queries or errors ([`is_query`], [`is_error`]).
//! May not touch: the quoted datagram (it is handed out as bytes; `flow` parses it), which
//! messages start or relate to a connection (`conntrack`), or which a rule matches
//! (`classifier`). Like every view: uses only `super`, no allocation, no `unsafe`, and no
//! accessor panics once `check_len` returned `Ok`.

use super::{fields, typed_view, Field};

/// The layout ICMPv6 shares (see `super::icmpv6`).
pub(super) mod field {
    use super::Field;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const SEQ_NO: Field = 6..8;
    pub const PAYLOAD: usize = 8;
}

/// Length of the ICMP header (including the 4 type-specific bytes).
pub const HEADER_LEN: usize = field::PAYLOAD;

/// Message types this switch distinguishes (IANA "ICMP Type Numbers").
pub mod msg {
    crate::wire::type_numbers! {
        /// Echo (RFC 792).
        ECHO_REPLY = 0, ECHO_REQUEST = 8;
        /// Errors (RFC 792): they quote the offending datagram.
        DEST_UNREACHABLE = 3, SOURCE_QUENCH = 4, REDIRECT = 5,
        TIME_EXCEEDED = 11, PARAM_PROBLEM = 12;
        /// Timestamp and information request/reply (RFC 792).
        TIMESTAMP = 13, TIMESTAMP_REPLY = 14, INFO_REQUEST = 15, INFO_REPLY = 16;
        /// Address mask request/reply (RFC 950).
        MASK_REQUEST = 17, MASK_REPLY = 18;
    }
}

/// Query messages (requests and replies) whose bytes 4..6 are an identifier.
#[inline]
pub const fn is_query(msg_type: u8) -> bool {
    matches!(
        msg_type,
        msg::ECHO_REPLY
            | msg::ECHO_REQUEST
            | msg::TIMESTAMP
            | msg::TIMESTAMP_REPLY
            | msg::INFO_REQUEST
            | msg::INFO_REPLY
            | msg::MASK_REQUEST
            | msg::MASK_REPLY
    )
}

/// Error messages that quote the offending datagram.
#[inline]
pub const fn is_error(msg_type: u8) -> bool {
    matches!(
        msg_type,
        msg::DEST_UNREACHABLE
            | msg::SOURCE_QUENCH
            | msg::REDIRECT
            | msg::TIME_EXCEEDED
            | msg::PARAM_PROBLEM
    )
}

typed_view!(
    /// A read-only view of an ICMP message.
    Packet,
    len = HEADER_LEN
);

impl<T: AsRef<[u8]>> Packet<T> {
    fields! {
        msg_type: u8 = field::TYPE;
        msg_code: u8 = field::CODE;
        /// Checksum as carried (not verified).
        checksum: u16 = field::CHECKSUM;
        /// Identifier (meaningful for [`is_query`] types).
        ident: u16 = field::IDENT;
        /// Sequence number (meaningful for [`is_query`] types).
        seq_no: u16 = field::SEQ_NO;
    }

    /// Everything after the 8-byte header (the quoted datagram for [`is_error`] types).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Error;

    static ECHO: [u8; 10] = [
        0x08, // type echo request
        0x00, // code
        0x00, 0x00, // checksum
        0x12, 0x34, // identifier
        0x00, 0x01, // sequence
        0xaa, 0xbb, // data
    ];

    #[test]
    fn echo() {
        let p = Packet::new_checked(&ECHO[..]).unwrap();
        assert_eq!((p.msg_type(), p.msg_code()), (8, 0));
        assert_eq!((p.ident(), p.seq_no()), (0x1234, 1));
        assert_eq!(p.payload(), &[0xaa, 0xbb]);
        assert!(is_query(p.msg_type()) && !is_error(p.msg_type()));
        assert_eq!(
            Packet::new_checked(&ECHO[..7]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn classes() {
        for t in [3, 4, 5, 11, 12] {
            assert!(is_error(t) && !is_query(t));
        }
        for t in [0, 8, 13, 14, 15, 16, 17, 18] {
            assert!(is_query(t));
        }
        assert!(!is_query(9) && !is_error(9)); // router advertisement
    }
}
