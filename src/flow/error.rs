//! Parse errors: the [`Layer`] in which [`extract`](fn@super::extract) gave up and what
//! was wrong there ([`ParseErrorKind`], the `wire` error).
//!
//! Owns: [`ParseError`] and its mapping to [`DropReason::Malformed`]. May not touch:
//! frames.

use super::DropReason;

/// What is wrong (shared with the `wire` views).
pub use crate::wire::Error as ParseErrorKind;

/// The header in which parsing failed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Layer {
    Ethernet,
    Vlan,
    Arp,
    Ipv4,
    Ipv6,
    /// An IPv6 extension header.
    Ipv6Ext,
    Tcp,
    Udp,
    UdpLite,
    Sctp,
    Dccp,
    Icmp,
    Icmpv6,
}

impl Layer {
    /// A stable lower-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Layer::Ethernet => "ethernet",
            Layer::Vlan => "vlan",
            Layer::Arp => "arp",
            Layer::Ipv4 => "ipv4",
            Layer::Ipv6 => "ipv6",
            Layer::Ipv6Ext => "ipv6-ext",
            Layer::Tcp => "tcp",
            Layer::Udp => "udp",
            Layer::UdpLite => "udplite",
            Layer::Sctp => "sctp",
            Layer::Dccp => "dccp",
            Layer::Icmp => "icmp",
            Layer::Icmpv6 => "icmpv6",
        }
    }
}

/// Why [`extract`](fn@super::extract) rejected a frame: the layer and what was wrong with
/// it. `Copy`, no allocation; the pipeline counts it as [`DropReason::Malformed`] and may
/// keep the detail for traces.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct ParseError {
    pub layer: Layer,
    pub kind: ParseErrorKind,
}

impl ParseError {
    #[inline]
    pub const fn new(layer: Layer, kind: ParseErrorKind) -> Self {
        ParseError { layer, kind }
    }

    /// The drop reason a frame with this error is counted under.
    #[inline]
    pub const fn drop_reason(self) -> DropReason {
        DropReason::Malformed
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.layer.as_str(), self.kind.as_str())
    }
}

impl std::error::Error for ParseError {}

impl From<ParseError> for DropReason {
    #[inline]
    fn from(e: ParseError) -> DropReason {
        e.drop_reason()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ParseErrorKind as K;

    #[test]
    fn error_display() {
        let e = ParseError::new(Layer::Ipv6Ext, K::TooManyExtHeaders);
        assert_eq!(e.to_string(), "ipv6-ext: too-many-ext-headers");
        assert_eq!(DropReason::from(e), DropReason::Malformed);
        let boxed: Box<dyn std::error::Error> = Box::new(e);
        assert!(boxed.to_string().starts_with("ipv6-ext"));
    }
}
