//! TCP header view (RFC 9293 §3.1).
//!
//! [`Packet::check_len`]: the 20-byte fixed header is present (`Truncated`) and the data
//! offset is 5..=15 words and inside the segment (`BadDataOffset`). Options are not
//! interpreted (connection tracking does not need MSS or window scale to judge state the
//! way Linux `nf_conntrack` is configured by Neutron: no window tracking is claimed).
//!
//! Owns: the TCP header layout and the data-offset check. May not touch: what the flags
//! mean for a connection (`conntrack::tcp`; the flag bits are named in `flow::tcp_flags`),
//! options, sequence numbers or checksums. Like every view: uses only `super`, no
//! allocation, no `unsafe`, and no accessor panics once `check_len` returned `Ok`.

use super::{fields, typed_view, Error, Field};

mod field {
    use super::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ_NUM: Field = 4..8;
    pub const ACK_NUM: Field = 8..12;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WIN_SIZE: Field = 14..16;
    pub const CHECKSUM: Field = 16..18;
    pub const URGENT: Field = 18..20;
    pub const OPTIONS: usize = 20;
}

/// Length of the fixed header (data offset 5).
pub const HEADER_LEN: usize = field::OPTIONS;

typed_view!(
    /// A read-only view of a TCP segment.
    Packet,
    checks = [check_len]
);

impl<T: AsRef<[u8]>> Packet<T> {
    /// See the module doc. After `Ok`, no accessor can panic.
    #[inline]
    pub fn check_len(&self) -> Result<(), Error> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hl = self.header_len();
        if hl < HEADER_LEN || hl > b.len() {
            return Err(Error::BadDataOffset);
        }
        Ok(())
    }

    fields! {
        src_port: u16 = field::SRC_PORT;
        dst_port: u16 = field::DST_PORT;
        seq_number: u32 = field::SEQ_NUM;
        ack_number: u32 = field::ACK_NUM;
        /// Header length in bytes (data offset × 4).
        header_len: usize = field::DATA_OFF, |off: u8| ((off >> 4) as usize) * 4;
        /// The flags byte (CWR ECE URG ACK PSH RST SYN FIN, see `crate::flow::tcp_flags`).
        flags: u8 = field::FLAGS;
        window_len: u16 = field::WIN_SIZE;
        /// Checksum as carried (not verified).
        checksum: u16 = field::CHECKSUM;
        urgent_at: u16 = field::URGENT;
    }

    /// The options area (empty for data offset 5).
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::OPTIONS..self.header_len()]
    }

    /// The segment data.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static SYN: [u8; 24] = [
        0xc0, 0x00, // source port 49152
        0x00, 0x16, // destination port 22
        0x00, 0x00, 0x00, 0x64, // sequence 100
        0x00, 0x00, 0x00, 0x00, // ack 0
        0x60, // data offset 6 (24 bytes)
        0x02, // flags SYN
        0xff, 0xff, // window 65535
        0x00, 0x00, // checksum
        0x00, 0x00, // urgent pointer
        0x02, 0x04, 0x05, 0xb4, // option MSS 1460
    ];

    #[test]
    fn fields() {
        let p = Packet::new_checked(&SYN[..]).unwrap();
        assert_eq!(p.src_port(), 49152);
        assert_eq!(p.dst_port(), 22);
        assert_eq!(p.seq_number(), 100);
        assert_eq!(p.ack_number(), 0);
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.flags(), 0x02);
        assert_eq!(p.window_len(), 65535);
        assert_eq!(p.options(), &[2, 4, 5, 0xb4]);
        assert!(p.payload().is_empty());
    }

    #[test]
    fn malformed() {
        assert_eq!(
            Packet::new_checked(&SYN[..19]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Packet::new_checked(&SYN[..23]).unwrap_err(),
            Error::BadDataOffset
        );
        let mut b = SYN;
        b[12] = 0x40; // data offset 4
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            Error::BadDataOffset
        );
        b[12] = 0xf0; // data offset 15 = 60 bytes > 24
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            Error::BadDataOffset
        );
    }
}
