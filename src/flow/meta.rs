//! [`PacketMeta`]: everything later stages need to know about one frame, and its parts
//! ([`L3Kind`], [`ArpInfo`], [`FragInfo`]).
//!
//! Owns: the per-frame metadata layout the pipeline, port security and connection tracking
//! read. May not touch: frames (filled only by [`extract`](fn@super::extract)), policy.

use super::FlowKey;
use crate::wire::Mac;

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
    pub sha: Mac,
    pub spa: [u8; 4],
    pub tha: Mac,
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
    /// Bytes of the datagram this fragment carries: the IPv4 payload, or the IPv6
    /// payload after the fragment header (RFC 8200 §4.5: what `offset` counts). With
    /// `offset`, where the fragment lies in its datagram (`pipeline::fragments` checks
    /// that fragments do not overlap).
    pub len: u16,
    /// A first fragment too short for its upper-layer header (RFC 1858 §3, RFC 7112):
    /// the header chain or the TCP/UDP/ICMP/SCTP/DCCP header is cut. The key has its
    /// addresses and protocol but no ports (they are not in this fragment); the
    /// pipeline drops it `fragment-tiny`.
    pub tiny: bool,
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
    pub eth_dst: Mac,
    pub eth_src: Mac,
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
        self.eth_dst.is_multicast()
    }
}
