//! [`DropReason`]: why a frame was dropped, with its stable name and description.
//!
//! Owns: the per-frame drop outcomes (a `Copy` enum, one counter each, fixed strings; the
//! names are part of the product: replay output, counters, the README). May not touch:
//! anything that decides a drop (that is the pipeline's job).

/// Why a frame was dropped. Stable kebab-case names (see [`DropReason::as_str`]) are part of
/// the product: they appear in replay output, counters and the README.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
#[repr(u8)]
pub enum DropReason {
    /// The frame could not be parsed (truncated, bad lengths, ...).
    Malformed = 0,
    /// Source MAC is not the port's MAC nor an allowed-address-pair MAC.
    SpoofedMac,
    /// Source IP (or ARP sender IP) is not allowed for the source MAC.
    SpoofedIp,
    /// ARP that port security does not allow (bad sender, unknown op, ...).
    ArpDenied,
    /// DHCP server traffic (UDP 67->68 / 547->546) sent by an instance.
    DhcpServer,
    /// ICMPv6 router advertisement sent by an instance.
    RouterAdvertisement,
    /// Ethertype other than IPv4/IPv6/ARP that is not allow-listed.
    EthertypeDenied,
    /// No egress rule of the sending port allows it.
    EgressDenied,
    /// No ingress rule of the receiving port allows it.
    IngressDenied,
    /// Connection tracking says invalid (TCP state, unsolicited reply, ...).
    InvalidState,
    /// The connection was cut by a policy change.
    ConnectionCut,
    /// The connection-tracking table is full and the packet would need a new entry.
    ConntrackFull,
    /// Unicast frame whose destination MAC does not belong to the receiving port.
    DstMacMismatch,
    /// Fragment of a datagram whose first fragment was denied (or that expired).
    FragmentDenied,
    /// Too many fragments pending; this one could not be held.
    FragmentOverflow,
    /// The frame arrived on a port that is not configured (or is administratively down).
    UnknownPort,
    /// Unknown unicast/flood with no other port in the network to deliver to.
    NoDestination,
    /// A frame looping back to its own port.
    Hairpin,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [DropReason; 18] = [
        DropReason::Malformed,
        DropReason::SpoofedMac,
        DropReason::SpoofedIp,
        DropReason::ArpDenied,
        DropReason::DhcpServer,
        DropReason::RouterAdvertisement,
        DropReason::EthertypeDenied,
        DropReason::EgressDenied,
        DropReason::IngressDenied,
        DropReason::InvalidState,
        DropReason::ConnectionCut,
        DropReason::ConntrackFull,
        DropReason::DstMacMismatch,
        DropReason::FragmentDenied,
        DropReason::FragmentOverflow,
        DropReason::UnknownPort,
        DropReason::NoDestination,
        DropReason::Hairpin,
    ];
    /// Number of reasons (size of a counter array).
    pub const COUNT: usize = Self::ALL.len();

    /// The stable kebab-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::SpoofedMac => "spoofed-mac",
            DropReason::SpoofedIp => "spoofed-ip",
            DropReason::ArpDenied => "arp-denied",
            DropReason::DhcpServer => "dhcp-server",
            DropReason::RouterAdvertisement => "router-advertisement",
            DropReason::EthertypeDenied => "ethertype-denied",
            DropReason::EgressDenied => "egress-denied",
            DropReason::IngressDenied => "ingress-denied",
            DropReason::InvalidState => "invalid-state",
            DropReason::ConnectionCut => "connection-cut",
            DropReason::ConntrackFull => "conntrack-full",
            DropReason::DstMacMismatch => "dst-mac-mismatch",
            DropReason::FragmentDenied => "fragment-denied",
            DropReason::FragmentOverflow => "fragment-overflow",
            DropReason::UnknownPort => "unknown-port",
            DropReason::NoDestination => "no-destination",
            DropReason::Hairpin => "hairpin",
        }
    }

    /// One-line human description.
    pub const fn describe(self) -> &'static str {
        match self {
            DropReason::Malformed => "frame could not be parsed",
            DropReason::SpoofedMac => "source MAC not allowed on the sending port",
            DropReason::SpoofedIp => "source IP not allowed for the source MAC",
            DropReason::ArpDenied => "ARP not allowed by port security",
            DropReason::DhcpServer => "DHCP server reply sent by an instance",
            DropReason::RouterAdvertisement => "router advertisement sent by an instance",
            DropReason::EthertypeDenied => "ethertype not allowed",
            DropReason::EgressDenied => "no egress rule of the sending port allows it",
            DropReason::IngressDenied => "no ingress rule of the receiving port allows it",
            DropReason::InvalidState => "invalid for connection tracking",
            DropReason::ConnectionCut => "connection cut by a policy change",
            DropReason::ConntrackFull => "connection-tracking table full",
            DropReason::DstMacMismatch => "destination MAC is not the receiving port's",
            DropReason::FragmentDenied => "fragment of a denied or expired datagram",
            DropReason::FragmentOverflow => "too many pending fragments",
            DropReason::UnknownPort => "frame arrived on an unknown port",
            DropReason::NoDestination => "no port to deliver to",
            DropReason::Hairpin => "destination is the sending port",
        }
    }
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
