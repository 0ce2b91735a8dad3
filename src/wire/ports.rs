//! The first 4 bytes of SCTP (RFC 9260 §3.1) and DCCP (RFC 4340 §5.1): source and
//! destination port. The switch needs only these to match port-range rules; the rest of
//! those headers is left to the hosts.

use super::{read_u16, Error, Field};

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

/// A read-only view of a port pair.
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

    /// Wrap and [`check_len`](Self::check_len).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// `Ok` when the 4 port bytes are present; then no accessor can panic.
    #[inline]
    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < PORTS_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    #[inline]
    pub fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    #[inline]
    pub fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::DST_PORT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
