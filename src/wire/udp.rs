//! UDP (RFC 768) and UDP-Lite (RFC 3828) header view.
//!
//! [`Packet::check_len`] (UDP): the 8-byte header is present (`Truncated`) and
//! 8 ≤ length ≤ buffer (`BadUdpLength`); the buffer must be the IP payload so that "within
//! the IP payload" is what is checked. [`Packet::check_len_lite`] (UDP-Lite): the same
//! field is the checksum coverage, 0 (whole datagram) or 8 ≤ coverage ≤ buffer.
//! [`Packet::check_len_first_fragment`]: for a first IP fragment, where the length counts
//! the reassembled datagram, only 8 ≤ length is checked.
//!
//! Owns: the UDP / UDP-Lite header layout and its four length checks (which accessors each
//! leaves safe is said on each). May not touch: which check applies to a packet (plain or
//! Lite, first fragment or whole: `flow` chooses), what a port means (DHCP guards are the
//! pipeline's) or checksums. Like every view: uses only `super`, no allocation, no
//! `unsafe`, and no accessor panics once `check_len` returned `Ok`.

use super::{fields, read_u16, typed_view, Error, Field};

mod field {
    use super::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const LENGTH: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
    pub const PAYLOAD: usize = 8;
}

/// Length of the header.
pub const HEADER_LEN: usize = field::PAYLOAD;

typed_view!(
    /// A read-only view of a UDP or UDP-Lite datagram (`new_checked` applies the UDP rules).
    Packet,
    checks = [check_len]
);

impl<T: AsRef<[u8]>> Packet<T> {
    /// UDP rules (see the module doc). After `Ok`, no accessor can panic.
    #[inline]
    pub fn check_len(&self) -> Result<(), Error> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let l = self.len() as usize;
        if l < HEADER_LEN || l > b.len() {
            return Err(Error::BadUdpLength);
        }
        Ok(())
    }

    /// Rules for the first fragment of a fragmented datagram, whose length field counts
    /// the whole datagram and may exceed the buffer: the header is present (`Truncated`)
    /// and the length is at least 8 (`BadUdpLength`). After `Ok`, every accessor but
    /// [`payload`](Self::payload) is safe.
    #[inline]
    pub fn check_len_first_fragment(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if (self.len() as usize) < HEADER_LEN {
            return Err(Error::BadUdpLength);
        }
        Ok(())
    }

    /// UDP-Lite in a first fragment: the header is present and the coverage is 0 or at
    /// least 8 (it may exceed this fragment). After `Ok`, every accessor but
    /// [`payload`](Self::payload) is safe.
    #[inline]
    pub fn check_len_lite_first_fragment(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let l = self.len() as usize;
        if l != 0 && l < HEADER_LEN {
            return Err(Error::BadUdpLength);
        }
        Ok(())
    }

    /// UDP-Lite rules (see the module doc). After `Ok`, every accessor but
    /// [`payload`](Self::payload) is safe; use [`payload_lite`](Self::payload_lite).
    #[inline]
    pub fn check_len_lite(&self) -> Result<(), Error> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let l = self.len() as usize;
        if l != 0 && (l < HEADER_LEN || l > b.len()) {
            return Err(Error::BadUdpLength);
        }
        Ok(())
    }

    fields! {
        src_port: u16 = field::SRC_PORT;
        dst_port: u16 = field::DST_PORT;
        /// Checksum as carried (not verified).
        checksum: u16 = field::CHECKSUM;
    }

    /// The length field (UDP: header + data; UDP-Lite: checksum coverage).
    #[inline]
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// UDP data, up to the length field (bytes after it are ignored).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.len() as usize]
    }

    /// UDP-Lite data: the rest of the buffer.
    #[inline]
    pub fn payload_lite(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static DNS: [u8; 12] = [
        0xd4, 0x31, // source port 54321
        0x00, 0x35, // destination port 53
        0x00, 0x0a, // length 10
        0x00, 0x00, // checksum
        0xab, 0xcd, // data
        0xee, 0xee, // bytes past the UDP length (ignored)
    ];

    #[test]
    fn fields() {
        let p = Packet::new_checked(&DNS[..]).unwrap();
        assert_eq!(p.src_port(), 54321);
        assert_eq!(p.dst_port(), 53);
        assert_eq!(p.len(), 10);
        assert_eq!(p.payload(), &[0xab, 0xcd]);
    }

    #[test]
    fn malformed() {
        assert_eq!(
            Packet::new_checked(&DNS[..7]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Packet::new_checked(&DNS[..9]).unwrap_err(),
            Error::BadUdpLength
        );
        let mut b = DNS;
        b[5] = 7;
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            Error::BadUdpLength
        );
    }

    #[test]
    fn first_fragment() {
        let mut b = DNS;
        b[4] = 0x05; // length 1290: the whole datagram, longer than this fragment
        let p = Packet::new_unchecked(&b[..]);
        assert_eq!(p.check_len(), Err(Error::BadUdpLength));
        assert_eq!(p.check_len_first_fragment(), Ok(()));
        assert_eq!((p.src_port(), p.dst_port()), (54321, 53));
        b[4] = 0;
        b[5] = 7;
        assert_eq!(
            Packet::new_unchecked(&b[..]).check_len_first_fragment(),
            Err(Error::BadUdpLength)
        );
        assert_eq!(
            Packet::new_unchecked(&b[..7]).check_len_first_fragment(),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn lite_coverage() {
        let mut b = DNS;
        b[5] = 0; // coverage 0 = whole datagram: fine for UDP-Lite, not for UDP
        let p = Packet::new_unchecked(&b[..]);
        assert_eq!(p.check_len_lite(), Ok(()));
        assert_eq!(p.check_len(), Err(Error::BadUdpLength));
        assert_eq!(p.payload_lite().len(), 4);
        b[5] = 4;
        assert_eq!(
            Packet::new_unchecked(&b[..]).check_len_lite(),
            Err(Error::BadUdpLength)
        );
        assert_eq!(
            Packet::new_unchecked(&b[..]).check_len_lite_first_fragment(),
            Err(Error::BadUdpLength)
        );
        b[4] = 0x05; // coverage past this fragment
        b[5] = 0;
        let p = Packet::new_unchecked(&b[..]);
        assert_eq!(p.check_len_lite(), Err(Error::BadUdpLength));
        assert_eq!(p.check_len_lite_first_fragment(), Ok(()));
    }
}
