//! The flow key and the numbers it is made of: address families, IP protocol numbers,
//! ethertypes and TCP flag bits.
//!
//! Owns: [`FlowKey`] (its layout and encoding) and the protocol constants every later
//! stage names. May not touch: frames or headers (that is [`extract`](fn@super::extract)), policy.
//!
//! # FlowKey encoding
//! * IPv4 addresses are stored IPv4-mapped in 16 bytes (`::ffff:a.b.c.d`), so v4 and v6
//!   share one fixed layout; `family` says which one it is.
//! * TCP, UDP, SCTP, DCCP, UDP-Lite: `sport`/`dport` are the L4 ports.
//! * ICMP / ICMPv6: `dport = (type << 8) | code`; `sport` is the echo/query identifier for
//!   echo, timestamp, information and address-mask messages (requests and replies), 0
//!   otherwise. The classifier matches ICMP type/code rules against `dport`.
//! * Every other protocol, and non-first fragments: `sport = dport = 0`.

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
        [
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a[0], a[1], a[2], a[3],
        ]
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
