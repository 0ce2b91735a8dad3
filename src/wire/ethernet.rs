//! Ethernet II frame view (IEEE 802.3 with an ethertype ≥ 0x0600 in bytes 12..14).
//!
//! The frame check sequence is not part of the buffer (ports hand us frames without it).
//! Frames shorter than 60 bytes are accepted: the minimum-size rule is the sender's NIC's
//! business, and captures often strip padding.
//!
//! Owns: the Ethernet II header layout (addresses, ethertype). May not touch: what an
//! ethertype means or which are let through (`flow` reads the tags and the layer above,
//! the pipeline's allow-list decides), MAC learning or forwarding (`l2`). Like every view:
//! uses only `super`, no allocation, no `unsafe`, and no accessor panics once `check_len`
//! returned `Ok`.

use super::{fields, typed_view, Field, Mac, Rest};

mod field {
    use super::{Field, Rest};
    pub const DESTINATION: Field = 0..6;
    pub const SOURCE: Field = 6..12;
    pub const ETHERTYPE: Field = 12..14;
    pub const PAYLOAD: Rest = 14..;
}

/// Length of the Ethernet II header.
pub const HEADER_LEN: usize = field::PAYLOAD.start;

typed_view!(
    /// A read-only view of an Ethernet II frame.
    Frame,
    len = HEADER_LEN
);

impl<T: AsRef<[u8]>> Frame<T> {
    fields! {
        /// Destination MAC address.
        dst_addr: Mac = field::DESTINATION.start;
        /// Source MAC address.
        src_addr: Mac = field::SOURCE.start;
        /// The ethertype (or 802.3 length when below 0x0600).
        ethertype: u16 = field::ETHERTYPE;
    }

    /// Everything after the header (VLAN tag, or the L3 packet, plus any padding).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Error;

    static FRAME: [u8; 16] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // destination
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // source
        0x08, 0x00, // ethertype IPv4
        0x45, 0x00, // first payload bytes
    ];

    #[test]
    fn fields() {
        let f = Frame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(f.dst_addr(), [2, 0, 0, 0, 0, 2]);
        assert_eq!(f.src_addr(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(f.ethertype(), 0x0800);
        assert_eq!(f.payload(), &[0x45, 0x00]);
    }

    #[test]
    fn truncated() {
        assert_eq!(
            Frame::new_checked(&FRAME[..13]).unwrap_err(),
            Error::Truncated
        );
        // Exactly a header: empty payload, no panic.
        assert!(Frame::new_checked(&FRAME[..14])
            .unwrap()
            .payload()
            .is_empty());
    }
}
