//! The first 4 bytes of SCTP (RFC 9260 §3.1) and DCCP (RFC 4340 §5.1): source and
//! destination port. The switch needs only these to match port-range rules; the rest of
//! those headers is left to the hosts.
//!
//! Owns: the layout of the port pair at the start of an SCTP or DCCP header and those
//! headers' minimum lengths. May not touch: the rest of either protocol, or which ports a
//! rule allows (`classifier`). Like every view: uses only `super`, no allocation, no
//! `unsafe`, and no accessor panics once `check_len` returned `Ok`.

use super::{fields, typed_view, Field};

mod field {
    use super::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
}

/// Bytes this view reads.
pub const PORTS_LEN: usize = 4;
/// Length of the SCTP common header.
pub const SCTP_HEADER_LEN: usize = 12;
/// Length of the shortest DCCP generic header (X = 0).
pub const DCCP_HEADER_LEN: usize = 12;

typed_view!(
    /// A read-only view of a port pair.
    Packet,
    len = PORTS_LEN
);

impl<T: AsRef<[u8]>> Packet<T> {
    fields! {
        src_port: u16 = field::SRC_PORT;
        dst_port: u16 = field::DST_PORT;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Error;

    #[test]
    fn ports() {
        let p = Packet::new_checked(&[0x0b, 0x59, 0x0b, 0x5a][..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (2905, 2906));
        assert_eq!(
            Packet::new_checked(&[0u8; 3][..]).unwrap_err(),
            Error::Truncated
        );
    }
}
