//! 802.1Q / 802.1ad VLAN tag view.
//!
//! The view starts *after* the tag protocol identifier (0x8100 or 0x88a8), which the
//! enclosing header carries as its ethertype: it covers the tag control information and
//! the next ethertype, 4 bytes.
//!
//! Owns: the layout of one tag (PCP, DEI, VID, next ethertype). May not touch: how many
//! tags a frame may carry ([`super::Error::TooManyVlanTags`] is `flow`'s decision) or VLAN
//! membership (the switch has no VLAN policy). Like every view: uses only `super`, no
//! allocation, no `unsafe`, and no accessor panics once `check_len` returned `Ok`.

use super::{fields, typed_view, Field, Rest};

mod field {
    use super::{Field, Rest};
    pub const TCI: Field = 0..2;
    pub const ETHERTYPE: Field = 2..4;
    pub const PAYLOAD: Rest = 4..;
}

/// Length of a VLAN tag after its TPID.
pub const HEADER_LEN: usize = field::PAYLOAD.start;

typed_view!(
    /// A read-only view of a VLAN tag.
    Packet,
    len = HEADER_LEN
);

impl<T: AsRef<[u8]>> Packet<T> {
    fields! {
        /// Priority code point (3 bits).
        pcp: u8 = field::TCI, |tci: u16| (tci >> 13) as u8;
        /// Drop eligible indicator.
        dei: bool = field::TCI, |tci: u16| tci & 0x1000 != 0;
        /// VLAN identifier (12 bits).
        vid: u16 = field::TCI, |tci: u16| tci & 0x0fff;
        /// Ethertype of what follows the tag.
        ethertype: u16 = field::ETHERTYPE;
    }

    /// Everything after the tag.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Error;

    #[test]
    fn fields() {
        // PCP 5, DEI 1, VID 0x123; inner ethertype IPv6.
        let b = [0xb1, 0x23, 0x86, 0xdd, 0x60];
        let t = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(t.pcp(), 5);
        assert!(t.dei());
        assert_eq!(t.vid(), 0x123);
        assert_eq!(t.ethertype(), 0x86dd);
        assert_eq!(t.payload(), &[0x60]);
        assert_eq!(Packet::new_checked(&b[..3]).unwrap_err(), Error::Truncated);
    }
}
