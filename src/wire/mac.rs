//! [`Mac`]: the one MAC (EUI-48) address type of the crate.
//!
//! Owns: the address's bytes, its text forms and its classes (broadcast, multicast, zero).
//! Every module that holds a MAC — frames ([`super::ethernet`], [`super::arp`]), the
//! per-frame metadata, the policy model, the FDB, the dataplane's port table, the control
//! plane's text — uses this type. May not touch: policy (which MACs a port may use is
//! `policy::validate`'s rule), I/O.
//!
//! * [`Display`](core::fmt::Display): lower-case, colon-separated (`fa:16:3e:00:00:01`),
//!   the form the config files, the state file and the API write. `Debug` is the same.
//! * [`FromStr`]: six hex octets separated by all `:` or all `-`, either case; anything
//!   else is [`ParseMacError`] ("expected six hex octets like fa:16:3e:00:00:01").
//!
//! There is no serde implementation: the state file and the API carry MACs as strings in
//! `policy::spec` (validated into a `Mac` with a field path when the model is built), so
//! nothing serialises a `Mac` itself.
//!
//! Model: smoltcp `src/wire/ethernet.rs` (`EthernetAddress`).

use core::fmt;
use core::str::FromStr;

/// A MAC address. `Copy`, 6 bytes, ordered and hashed as its bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: Mac = Mac([0xff; 6]);

    /// The six bytes.
    #[inline]
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// `ff:ff:ff:ff:ff:ff`.
    #[inline]
    pub const fn is_broadcast(&self) -> bool {
        matches!(self.0, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
    }

    /// The group bit is set: multicast, broadcast included.
    #[inline]
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 1 != 0
    }

    /// `00:00:00:00:00:00`.
    #[inline]
    pub const fn is_zero(&self) -> bool {
        matches!(self.0, [0, 0, 0, 0, 0, 0])
    }
}

impl From<[u8; 6]> for Mac {
    #[inline]
    fn from(b: [u8; 6]) -> Mac {
        Mac(b)
    }
}

impl From<Mac> for [u8; 6] {
    #[inline]
    fn from(m: Mac) -> [u8; 6] {
        m.0
    }
}

impl AsRef<[u8]> for Mac {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl PartialEq<[u8; 6]> for Mac {
    #[inline]
    fn eq(&self, other: &[u8; 6]) -> bool {
        self.0 == *other
    }
}

impl PartialEq<Mac> for [u8; 6] {
    #[inline]
    fn eq(&self, other: &Mac) -> bool {
        *self == other.0
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A text that is not a MAC address (see the module doc for the accepted forms).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ParseMacError;

impl ParseMacError {
    /// The reason, as validation reports it.
    pub const fn reason(self) -> &'static str {
        "expected six hex octets like fa:16:3e:00:00:01"
    }
}

impl fmt::Display for ParseMacError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for ParseMacError {}

impl FromStr for Mac {
    type Err = ParseMacError;

    /// `aa:bb:cc:dd:ee:ff` (or with `-`), case-insensitive. Any unicast or multicast value
    /// is returned.
    fn from_str(text: &str) -> Result<Mac, ParseMacError> {
        let bytes = text.as_bytes();
        if bytes.len() != 17 {
            return Err(ParseMacError);
        }
        let sep = bytes[2];
        if sep != b':' && sep != b'-' {
            return Err(ParseMacError);
        }
        let mut mac = [0u8; 6];
        for (i, octet) in mac.iter_mut().enumerate() {
            let at = i * 3;
            if i > 0 && bytes[at - 1] != sep {
                return Err(ParseMacError);
            }
            let pair = text.get(at..at + 2).ok_or(ParseMacError)?;
            if !pair.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ParseMacError);
            }
            *octet = u8::from_str_radix(pair, 16).map_err(|_| ParseMacError)?;
        }
        Ok(Mac(mac))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_mac(text: &str) -> Result<Mac, ParseMacError> {
        text.parse()
    }

    /// Moved from `policy::validate::addresses` (`mac_parsing`), with the port rules
    /// staying there.
    #[test]
    fn mac_parsing() {
        assert_eq!(
            parse_mac("fa:16:3e:0A:0b:ff"),
            Ok(Mac([0xfa, 0x16, 0x3e, 0x0a, 0x0b, 0xff]))
        );
        assert_eq!(
            parse_mac("fa-16-3e-0a-0b-ff"),
            parse_mac("fa:16:3e:0a:0b:ff")
        );
        for bad in [
            "",
            "fa:16:3e:0a:0b",
            "fa:16:3e:0a:0b:ff:",
            "fa:16-3e:0a:0b:ff",
            "fa:16:3e:0a:0b:fg",
            "+a:16:3e:0a:0b:ff",
            "fa:16:3e:0a:0b:é",
            "fa163e0a0bff",
        ] {
            assert!(parse_mac(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Mac([0xfa, 0x16, 0x3e, 0, 0x0a, 0xff]).to_string(),
            "fa:16:3e:00:0a:ff"
        );
        assert_eq!(
            parse_mac("x").unwrap_err().to_string(),
            "expected six hex octets like fa:16:3e:00:00:01"
        );
    }

    #[test]
    fn classes() {
        assert!(Mac::BROADCAST.is_broadcast() && Mac::BROADCAST.is_multicast());
        assert!(Mac([0x01, 0, 0x5e, 0, 0, 1]).is_multicast());
        assert!(!Mac([0x01, 0, 0x5e, 0, 0, 1]).is_broadcast());
        assert!(!Mac([0x02, 0, 0, 0, 0, 1]).is_multicast());
        assert!(Mac::default().is_zero() && !Mac([0, 0, 0, 0, 0, 1]).is_zero());
        assert_eq!(
            format!("{:?}", Mac([0xfa, 0x16, 0x3e, 0, 0, 1])),
            "fa:16:3e:00:00:01"
        );
        assert_eq!(Mac([1, 2, 3, 4, 5, 6]), [1, 2, 3, 4, 5, 6]);
        assert_eq!(
            <[u8; 6]>::from(Mac::from([1, 2, 3, 4, 5, 6])),
            [1, 2, 3, 4, 5, 6]
        );
    }
}
