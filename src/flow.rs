//! One pass from a frame to [`PacketMeta`] (with its [`FlowKey`]) or a parse error.
//!
//! This module fixes the data layout every later stage reads: the classifier reads only
//! the [`FlowKey`], connection tracking reads the key plus TCP flags / ICMP details, the
//! pipeline reads the L2 and ARP fields for port security.
//!
//! # FlowKey encoding
//! * IPv4 addresses are stored IPv4-mapped in 16 bytes (`::ffff:a.b.c.d`), so v4 and v6
//!   share one fixed layout; `family` says which one it is.
//! * TCP, UDP, SCTP, DCCP, UDP-Lite: `sport`/`dport` are the L4 ports.
//! * ICMP / ICMPv6: `dport = (type << 8) | code`; `sport` is the echo/query identifier for
//!   echo, timestamp, information and address-mask messages (requests and replies), 0
//!   otherwise. The classifier matches ICMP type/code rules against `dport`.
//! * Every other protocol, and non-first fragments: `sport = dport = 0`.
//!
//! This module owns no policy: it never decides whether a frame is allowed.

/// Address family of a flow key.
pub const FAMILY_V4: u8 = 4;
/// Address family of a flow key.
pub const FAMILY_V6: u8 = 6;

/// IP protocol numbers used across the crate.
pub mod proto {
    pub const ICMP: u8 = 1;
    pub const IGMP: u8 = 2;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const DCCP: u8 = 33;
    pub const IPV6_ROUTE: u8 = 43;
    pub const IPV6_FRAG: u8 = 44;
    pub const GRE: u8 = 47;
    pub const ESP: u8 = 50;
    pub const AH: u8 = 51;
    pub const ICMPV6: u8 = 58;
    pub const IPV6_NONXT: u8 = 59;
    pub const IPV6_OPTS: u8 = 60;
    pub const HOPOPT: u8 = 0;
    pub const SCTP: u8 = 132;
    pub const UDPLITE: u8 = 136;

    /// Protocols whose rules may carry port ranges (matched against the destination port).
    #[inline]
    pub const fn has_ports(p: u8) -> bool {
        matches!(p, TCP | UDP | DCCP | SCTP | UDPLITE)
    }
}

/// Ethertypes.
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const RARP: u16 = 0x8035;
    pub const VLAN: u16 = 0x8100;
    pub const QINQ: u16 = 0x88a8;
    pub const IPV6: u16 = 0x86dd;
}

/// TCP flag bits as in the TCP header's flags byte.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

/// The compact 5-tuple of a packet (see the module doc for the encoding). 40 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, PartialOrd, Ord)]
#[repr(C)]
pub struct FlowKey {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    /// [`FAMILY_V4`] or [`FAMILY_V6`]; 0 for a key that is not set.
    pub family: u8,
    pub _pad: [u8; 2],
}

const _: () = assert!(core::mem::size_of::<FlowKey>() == 40);

impl FlowKey {
    /// Map an IPv4 address into the 16-byte key layout (`::ffff:a.b.c.d`).
    #[inline]
    pub const fn map_v4(a: [u8; 4]) -> [u8; 16] {
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a[0], a[1], a[2], a[3]]
    }

    /// The key with source and destination swapped (the reply direction's key).
    #[inline]
    pub fn reversed(&self) -> FlowKey {
        FlowKey {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            ..*self
        }
    }

    /// Source address as a `std::net::IpAddr`.
    pub fn src_ip(&self) -> std::net::IpAddr {
        key_ip(self.family, &self.src)
    }

    /// Destination address as a `std::net::IpAddr`.
    pub fn dst_ip(&self) -> std::net::IpAddr {
        key_ip(self.family, &self.dst)
    }

    /// ICMP type (for ICMP/ICMPv6 keys).
    #[inline]
    pub fn icmp_type(&self) -> u8 {
        (self.dport >> 8) as u8
    }

    /// ICMP code (for ICMP/ICMPv6 keys).
    #[inline]
    pub fn icmp_code(&self) -> u8 {
        self.dport as u8
    }

    /// Whether this key's protocol is ICMP of its family (1 for v4, 58 for v6).
    #[inline]
    pub fn is_icmp(&self) -> bool {
        (self.family == FAMILY_V4 && self.proto == proto::ICMP)
            || (self.family == FAMILY_V6 && self.proto == proto::ICMPV6)
    }
}

fn key_ip(family: u8, a: &[u8; 16]) -> std::net::IpAddr {
    if family == FAMILY_V4 {
        std::net::IpAddr::V4(std::net::Ipv4Addr::new(a[12], a[13], a[14], a[15]))
    } else {
        std::net::IpAddr::V6(std::net::Ipv6Addr::from(*a))
    }
}

/// What sits above Ethernet (after any VLAN tags).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum L3Kind {
    /// ARP or RARP; see [`PacketMeta::arp`].
    Arp,
    Ipv4,
    Ipv6,
    /// Any other ethertype (the pipeline drops these unless allow-listed).
    #[default]
    Other,
}

/// ARP (Ethernet/IPv4 only) fields.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ArpInfo {
    pub op: u16,
    pub sha: [u8; 6],
    pub spa: [u8; 4],
    pub tha: [u8; 6],
    pub tpa: [u8; 4],
}

/// IP fragment information (IPv4 header fields or the IPv6 fragment header).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct FragInfo {
    /// The packet is a fragment (offset > 0 or more-fragments set).
    pub is_fragment: bool,
    /// Fragment offset in 8-byte units.
    pub offset: u16,
    /// More-fragments flag.
    pub more: bool,
    /// Identification (16 bits for IPv4, 32 for IPv6).
    pub id: u32,
}

impl FragInfo {
    /// A fragment that is not the first one: it carries no L4 header.
    #[inline]
    pub fn is_later_fragment(&self) -> bool {
        self.is_fragment && self.offset != 0
    }
}

/// Everything later stages need to know about one frame, extracted in one pass.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct PacketMeta {
    pub eth_dst: [u8; 6],
    pub eth_src: [u8; 6],
    /// Number of 802.1Q/802.1ad tags seen (0, 1 or 2).
    pub vlan_count: u8,
    /// VLAN ids of the tags, outermost first (valid up to `vlan_count`).
    pub vlan_ids: [u16; 2],
    /// The ethertype after the tags.
    pub ethertype: u16,
    pub l3: L3Kind,
    /// Valid when `l3` is `Arp`.
    pub arp: ArpInfo,
    /// Valid when `l3` is `Ipv4` or `Ipv6`.
    pub key: FlowKey,
    /// TCP flags byte (valid for TCP first fragments / unfragmented packets).
    pub tcp_flags: u8,
    /// TCP sequence and acknowledgement numbers (valid for TCP).
    pub tcp_seq: u32,
    pub tcp_ack: u32,
    /// TCP window (valid for TCP).
    pub tcp_window: u16,
    pub frag: FragInfo,
    /// For ICMP/ICMPv6 error messages (dest unreachable, time exceeded, parameter
    /// problem, packet too big, source quench, redirect): the key of the quoted packet as
    /// its original sender sent it. `family == 0` when absent or unparseable.
    pub icmp_inner: FlowKey,
    /// ICMPv6 neighbour solicitation/advertisement target (valid when `has_nd_target`).
    pub nd_target: [u8; 16],
    pub has_nd_target: bool,
    /// IPv4 header ttl / IPv6 hop limit.
    pub hop_limit: u8,
    /// Offset of the L3 header in the frame.
    pub l3_offset: u16,
    /// Offset of the L4 header in the frame (0 when there is none).
    pub l4_offset: u16,
    /// Length of the IP packet as its header declares it (total length / payload + 40).
    pub ip_len: u16,
}

impl PacketMeta {
    #[inline]
    pub fn is_ip(&self) -> bool {
        matches!(self.l3, L3Kind::Ipv4 | L3Kind::Ipv6)
    }

    /// Broadcast or multicast destination MAC (group bit set).
    #[inline]
    pub fn is_multicast_dst(&self) -> bool {
        self.eth_dst[0] & 1 == 1
    }
}

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

// The extractor (`extract`) and its error type are implemented below by the parsing work.
