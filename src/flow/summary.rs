//! One line that says what a frame is, the way `tcpdump -n` does: protocol, addresses,
//! ports, TCP flags, ICMP type and code with their names, ARP who-has / is-at, VLAN tags,
//! fragments, or `malformed: <layer>: <error>` for a frame that does not parse.
//!
//! The line is written in the packet-description grammar `sgswitch trace` reads
//! (`control::explain::packet`), so a line of `sgswitch replay` can be pasted into
//! `sgswitch trace`:
//!
//! ```text
//! tcp 10.0.0.10:40000 > 10.0.0.11:22 flags S
//! udp [fd00::a]:5353 > [fd00::b]:53
//! icmp 10.0.0.10 > 10.0.0.11 echo-request id 7
//! icmp 10.0.0.11 > 10.0.0.10 dest-unreachable code 3 for udp 10.0.0.10:4000 > 10.0.0.11:53
//! icmp6 fe80::f816:3eff:fe00:a > ff02::1:ff00:b neighbor-solicit target fd00::b
//! arp who-has 10.0.0.11 tell 10.0.0.10
//! arp reply 10.0.0.11 is-at fa:16:3e:00:00:0b to 10.0.0.10
//! vlan 100 udp 10.0.0.10:4000 > 10.0.0.11:53 frag id 7 offset 0 more
//! ethertype 0x88cc
//! malformed: ipv4: truncated
//! ```
//!
//! TCP flags are letters in a fixed order, `S` `F` `R` `P` `A` `U` `E` `W` (SYN, FIN, RST,
//! PSH, ACK, URG, ECE, CWR): `S`, `SA`, `FA`, `R`, `PA`; `none` when no flag is set.
//! Fragment offsets are in bytes. The ICMP and ICMPv6 message names are [`ICMP_NAMES`]
//! and [`ICMPV6_NAMES`]; protocol names [`PROTO_NAMES`] (the grammar reads them back).
//!
//! Owns: the summary line and the name tables it prints. May not touch: policy, ports,
//! connection state; it reads only the frame, through [`extract`](fn@super::extract)
//! (and `wire`'s ARP numbers). Not on the packet path: it allocates a `String`.

use std::fmt::{self, Write as _};
use std::net::IpAddr;

use super::{ethertype, extract, proto, tcp_flags, FlowKey, L3Kind, PacketMeta, FAMILY_V4};

/// ICMP (v4) message types with names (IANA "ICMP Type Numbers").
pub const ICMP_NAMES: &[(u8, &str)] = &[
    (0, "echo-reply"),
    (3, "dest-unreachable"),
    (4, "source-quench"),
    (5, "redirect"),
    (8, "echo-request"),
    (9, "router-advert"),
    (10, "router-solicit"),
    (11, "time-exceeded"),
    (12, "param-problem"),
    (13, "timestamp-request"),
    (14, "timestamp-reply"),
    (15, "info-request"),
    (16, "info-reply"),
    (17, "mask-request"),
    (18, "mask-reply"),
];

/// ICMPv6 message types with names (IANA "ICMPv6 Parameters").
pub const ICMPV6_NAMES: &[(u8, &str)] = &[
    (1, "dest-unreachable"),
    (2, "packet-too-big"),
    (3, "time-exceeded"),
    (4, "param-problem"),
    (128, "echo-request"),
    (129, "echo-reply"),
    (130, "mld-query"),
    (131, "mld-report"),
    (132, "mld-done"),
    (133, "router-solicit"),
    (134, "router-advert"),
    (135, "neighbor-solicit"),
    (136, "neighbor-advert"),
    (137, "redirect"),
    (139, "node-info-query"),
    (140, "node-info-response"),
    (143, "mldv2-report"),
];

/// IP protocols the summary names (others print as `proto N`). `icmp6` is ICMPv6.
pub const PROTO_NAMES: &[(u8, &str)] = &[
    (proto::TCP, "tcp"),
    (proto::UDP, "udp"),
    (proto::ICMP, "icmp"),
    (proto::ICMPV6, "icmp6"),
    (proto::SCTP, "sctp"),
    (proto::DCCP, "dccp"),
    (proto::UDPLITE, "udplite"),
    (proto::IGMP, "igmp"),
    (proto::GRE, "gre"),
    (proto::ESP, "esp"),
    (proto::AH, "ah"),
];

/// TCP flag letters in the order they are printed.
pub const TCP_FLAG_LETTERS: &[(u8, char)] = &[
    (tcp_flags::SYN, 'S'),
    (tcp_flags::FIN, 'F'),
    (tcp_flags::RST, 'R'),
    (tcp_flags::PSH, 'P'),
    (tcp_flags::ACK, 'A'),
    (tcp_flags::URG, 'U'),
    (tcp_flags::ECE, 'E'),
    (tcp_flags::CWR, 'W'),
];

/// The name of ICMP type `t` of `family` (4: ICMP, 6: ICMPv6).
pub fn icmp_name(family: u8, t: u8) -> Option<&'static str> {
    let table = if family == FAMILY_V4 {
        ICMP_NAMES
    } else {
        ICMPV6_NAMES
    };
    table.iter().find(|e| e.0 == t).map(|e| e.1)
}

/// The summary's name of IP protocol `p`, if it has one.
pub fn proto_name(p: u8) -> Option<&'static str> {
    PROTO_NAMES.iter().find(|e| e.0 == p).map(|e| e.1)
}

/// TCP flags as letters (`SA`, `FA`, `none`).
pub fn tcp_flags_str(flags: u8) -> String {
    let s: String = TCP_FLAG_LETTERS
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|e| e.1)
        .collect();
    if s.is_empty() {
        "none".to_string()
    } else {
        s
    }
}

/// The one-line summary of `frame` (see the module doc).
pub fn summary(frame: &[u8]) -> String {
    match extract(frame) {
        Ok(m) => Summary(&m).to_string(),
        Err(e) => format!("malformed: {e}"),
    }
}

/// The summary of a parsed frame, as a `Display` (no allocation of its own).
#[derive(Clone, Copy, Debug)]
pub struct Summary<'a>(pub &'a PacketMeta);

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        for v in &m.vlan_ids[..usize::from(m.vlan_count.min(2))] {
            write!(f, "vlan {v} ")?;
        }
        match m.l3 {
            L3Kind::Arp => arp(f, m),
            L3Kind::Ipv4 | L3Kind::Ipv6 => {
                let later = m.frag.is_later_fragment();
                ip(f, &m.key, !later)?;
                if m.key.is_icmp() && !later {
                    icmp(f, m)?;
                } else if m.key.proto == proto::TCP && !later {
                    write!(f, " flags {}", tcp_flags_str(m.tcp_flags))?;
                }
                if m.frag.is_fragment {
                    write!(
                        f,
                        " frag id {} offset {}",
                        m.frag.id,
                        u32::from(m.frag.offset) * 8
                    )?;
                    if m.frag.more {
                        f.write_str(" more")?;
                    }
                }
                Ok(())
            }
            L3Kind::Other => write!(f, "ethertype {:#06x}", m.ethertype),
        }
    }
}

/// A flow key as `PROTO SRC > DST` (ports where the protocol has them; ICMP type and
/// code): how connection-tracking entries and quoted packets are shown.
#[derive(Clone, Copy, Debug)]
pub struct KeySummary<'a>(pub &'a FlowKey);

impl fmt::Display for KeySummary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = self.0;
        ip(f, k, true)?;
        if k.is_icmp() {
            let (t, c) = (k.icmp_type(), k.icmp_code());
            match icmp_name(k.family, t) {
                Some(n) if c == 0 => write!(f, " {n}")?,
                Some(n) => write!(f, " {n} code {c}")?,
                None => write!(f, " type {t} code {c}")?,
            }
            if k.sport != 0 {
                write!(f, " id {}", k.sport)?;
            }
        }
        Ok(())
    }
}

/// `PROTO SRC > DST` with ports for the protocols that have them (when `l4`: the key
/// carries its L4 header).
fn ip(f: &mut fmt::Formatter<'_>, k: &FlowKey, l4: bool) -> fmt::Result {
    match proto_name(k.proto) {
        Some(n) => f.write_str(n)?,
        None => write!(f, "proto {}", k.proto)?,
    }
    let ports = l4 && proto::has_ports(k.proto);
    f.write_char(' ')?;
    endpoint(f, k.src_ip(), ports.then_some(k.sport))?;
    f.write_str(" > ")?;
    endpoint(f, k.dst_ip(), ports.then_some(k.dport))
}

fn endpoint(f: &mut fmt::Formatter<'_>, ip: IpAddr, port: Option<u16>) -> fmt::Result {
    match (ip, port) {
        (IpAddr::V6(a), Some(p)) => write!(f, "[{a}]:{p}"),
        (a, Some(p)) => write!(f, "{a}:{p}"),
        (a, None) => write!(f, "{a}"),
    }
}

/// ICMP type and code (named where known), query id, ND target, the quoted packet.
fn icmp(f: &mut fmt::Formatter<'_>, m: &PacketMeta) -> fmt::Result {
    let k = &m.key;
    let (t, c) = (k.icmp_type(), k.icmp_code());
    match icmp_name(k.family, t) {
        Some(n) => write!(f, " {n}")?,
        None => write!(f, " type {t}")?,
    }
    if c != 0 || icmp_name(k.family, t).is_none() {
        write!(f, " code {c}")?;
    }
    if k.sport != 0 {
        write!(f, " id {}", k.sport)?;
    }
    if m.has_nd_target {
        write!(f, " target {}", std::net::Ipv6Addr::from(m.nd_target))?;
    }
    let q = &m.icmp_inner;
    if q.family != 0 {
        f.write_str(" for ")?;
        ip(f, q, true)?;
    }
    Ok(())
}

fn arp(f: &mut fmt::Formatter<'_>, m: &PacketMeta) -> fmt::Result {
    let a = &m.arp;
    let name = if m.ethertype == ethertype::RARP {
        "rarp"
    } else {
        "arp"
    };
    let (spa, tpa) = (
        std::net::Ipv4Addr::from(a.spa),
        std::net::Ipv4Addr::from(a.tpa),
    );
    match (name, a.op) {
        ("arp", 1) => write!(f, "arp who-has {tpa} tell {spa}"),
        ("arp", 2) => write!(f, "arp reply {spa} is-at {} to {tpa}", a.sha),
        _ => write!(f, "{name} op {} {spa} > {tpa}", a.op),
    }
}

#[cfg(test)]
mod tests;
