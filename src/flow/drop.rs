//! [`DropReason`]: why a frame was dropped, with its stable name and description.
//!
//! Owns: the per-frame drop outcomes (a `Copy` enum, one counter each, fixed strings; the
//! names are part of the product: replay output, counters, the README). May not touch:
//! anything that decides a drop (that is the pipeline's job).

use crate::wire::named_enum;

named_enum! {
    /// Why a frame was dropped. Stable kebab-case names (see [`DropReason::as_str`]) are part of
    /// the product: they appear in replay output, counters and the README.
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
    #[repr(u8)]
    pub enum DropReason {
        /// The frame could not be parsed (truncated, bad lengths, ...).
        Malformed = ("malformed", "frame could not be parsed"),
        /// Source MAC is not the port's MAC nor an allowed-address-pair MAC.
        SpoofedMac = ("spoofed-mac", "source MAC not allowed on the sending port"),
        /// Source IP (or ARP sender IP) is not allowed for the source MAC.
        SpoofedIp = ("spoofed-ip", "source IP not allowed for the source MAC"),
        /// ARP that port security does not allow (bad sender, unknown op, ...).
        ArpDenied = ("arp-denied", "ARP not allowed by port security"),
        /// DHCP server traffic (UDP 67->68 / 547->546) sent by an instance.
        DhcpServer = ("dhcp-server", "DHCP server reply sent by an instance"),
        /// ICMPv6 router advertisement sent by an instance.
        RouterAdvertisement = ("router-advertisement", "router advertisement sent by an instance"),
        /// Ethertype other than IPv4/IPv6/ARP that is not allow-listed.
        EthertypeDenied = ("ethertype-denied", "ethertype not allowed"),
        /// No egress rule of the sending port allows it.
        EgressDenied = ("egress-denied", "no egress rule of the sending port allows it"),
        /// No ingress rule of the receiving port allows it.
        IngressDenied = ("ingress-denied", "no ingress rule of the receiving port allows it"),
        /// Connection tracking says invalid (TCP state, unsolicited reply, ...).
        InvalidState = ("invalid-state", "invalid for connection tracking"),
        /// The connection was cut by a policy change.
        ConnectionCut = ("connection-cut", "connection cut by a policy change"),
        /// The connection-tracking table is full and the packet would need a new entry.
        ConntrackFull = ("conntrack-full", "connection-tracking table full"),
        /// The receiving or sending port holds its limit of tracked connections, all assured.
        ConntrackZoneFull = ("conntrack-zone-full", "the port's connection-tracking limit reached"),
        /// A new connection from a port the worker is behind on, over the port's budget of
        /// new connections per burst (`Pipeline::set_new_flow_budget`): shed so that the
        /// frames of established connections keep their share of the worker.
        NewFlowOverload = ("new-flow-overload", "new connection shed: its port sends more than the worker keeps up with"),
        /// A frame of a connection whose opening port used its share of a saturated worker
        /// (the worker's fair share: the flood's datagrams and their answers count against
        /// the port that opened them), dropped before it was transmitted.
        FairShare = ("fair-share", "its connection's opening port used its share of a saturated worker"),
        /// Unicast frame whose destination MAC does not belong to the receiving port.
        DstMacMismatch = ("dst-mac-mismatch", "destination MAC is not the receiving port's"),
        /// Fragment of a datagram whose first fragment was denied (or that expired).
        FragmentDenied = ("fragment-denied", "fragment of a denied or expired datagram"),
        /// No room to track this fragment's datagram (too many fragments held, datagrams
        /// known, or gaps in one datagram).
        FragmentOverflow = ("fragment-overflow", "too many pending fragments or fragmented datagrams"),
        /// The fragment overlaps another of its datagram (RFC 1858, RFC 5722): it and every
        /// later fragment of the datagram are dropped.
        FragmentOverlap = ("fragment-overlap", "fragment overlapping another of its datagram"),
        /// Every byte of the fragment was seen already (a duplicate): not sent twice.
        FragmentDuplicate = ("fragment-duplicate", "fragment whose bytes were all seen already"),
        /// A first fragment too short for its transport header (RFC 1858 §3, RFC 7112),
        /// or a later fragment of such a datagram.
        FragmentTiny = ("fragment-tiny", "first fragment too short for its transport header"),
        /// The frame arrived on a port that is not configured (or is administratively down).
        UnknownPort = ("unknown-port", "frame arrived on an unknown port"),
        /// Unknown unicast/flood with no other port in the network to deliver to.
        NoDestination = ("no-destination", "no port to deliver to"),
        /// A frame looping back to its own port.
        Hairpin = ("hairpin", "destination is the sending port"),
        /// The frame's virtio-net header (offload metadata from a tap) is malformed or does
        /// not match the frame; counted by the port, before the pipeline (`port::gso::check`).
        BadOffload = ("bad-offload", "malformed virtio-net header (GSO/checksum offload metadata)"),
        /// A frame for a remote port whose encapsulated packet would exceed the underlay's
        /// MTU (the inner MTU is the underlay MTU minus 50, IPv4): never fragmented.
        TunnelTooBig = ("tunnel-too-big", "larger than the overlay's inner MTU"),
        /// A frame for a remote port whose host has no known tunnel endpoint (or no
        /// underlay is configured).
        TunnelUnreachable = ("tunnel-unreachable", "the remote port's host has no tunnel"),
        /// A Geneve/VXLAN packet from the underlay that is malformed, on an unknown VNI or
        /// from an unknown VTEP.
        BadTunnel = ("bad-tunnel", "malformed tunnel packet, or unknown VNI or VTEP"),
    }
}

impl DropReason {
    /// Number of reasons (size of a counter array).
    pub const COUNT: usize = Self::ALL.len();
}
