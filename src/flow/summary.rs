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
//! connection state; it reads only the frame, through [`extract`](fn@super::extract).
//! Not on the packet path (it builds text), but `sgswitch replay` runs it on every frame:
//! numbers and IPv4 addresses are written by hand, not through `format!`.

use std::fmt::{self, Write};

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
    let mut s = String::with_capacity(8);
    let _ = tcp_flags_into(&mut s, flags);
    s
}

/// The one-line summary of `frame` (see the module doc).
pub fn summary(frame: &[u8]) -> String {
    let mut s = String::with_capacity(64);
    summary_into(frame, &mut s);
    s
}

/// [`summary`] appended to `out` (a reused buffer: `sgswitch replay` summarises every
/// frame; the text is built by hand, without `format!`'s machinery, which cost 4x more).
pub fn summary_into(frame: &[u8], out: &mut String) {
    match extract(frame) {
        Ok(m) => {
            let _ = write_summary(out, &m);
        }
        Err(e) => {
            let _ = write!(out, "malformed: {e}");
        }
    }
}

/// The summary of a parsed frame, as a `Display`.
#[derive(Clone, Copy, Debug)]
pub struct Summary<'a>(pub &'a PacketMeta);

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_summary(f, self.0)
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
            icmp_type_code(f, k)?;
        }
        Ok(())
    }
}

/// A decimal number, without the formatter's machinery.
fn dec<W: Write>(w: &mut W, mut v: u64) -> fmt::Result {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    w.write_str(std::str::from_utf8(&buf[i..]).unwrap_or("?"))
}

fn ipv4<W: Write>(w: &mut W, a: [u8; 4]) -> fmt::Result {
    for (i, o) in a.iter().enumerate() {
        if i > 0 {
            w.write_char('.')?;
        }
        dec(w, u64::from(*o))?;
    }
    Ok(())
}

fn write_summary<W: Write>(w: &mut W, m: &PacketMeta) -> fmt::Result {
    for v in &m.vlan_ids[..usize::from(m.vlan_count.min(2))] {
        w.write_str("vlan ")?;
        dec(w, u64::from(*v))?;
        w.write_char(' ')?;
    }
    match m.l3 {
        L3Kind::Arp => arp(w, m),
        L3Kind::Ipv4 | L3Kind::Ipv6 => {
            let later = m.frag.is_later_fragment();
            ip(w, &m.key, !later)?;
            if m.key.is_icmp() && !later {
                icmp(w, m)?;
            } else if m.key.proto == proto::TCP && !later {
                w.write_str(" flags ")?;
                tcp_flags_into(w, m.tcp_flags)?;
            }
            if m.frag.is_fragment {
                w.write_str(" frag id ")?;
                dec(w, u64::from(m.frag.id))?;
                w.write_str(" offset ")?;
                dec(w, u64::from(m.frag.offset) * 8)?;
                if m.frag.more {
                    w.write_str(" more")?;
                }
            }
            Ok(())
        }
        L3Kind::Other => write!(w, "ethertype {:#06x}", m.ethertype),
    }
}

fn tcp_flags_into<W: Write>(w: &mut W, flags: u8) -> fmt::Result {
    if flags == 0 {
        return w.write_str("none");
    }
    for (bit, c) in TCP_FLAG_LETTERS {
        if flags & bit != 0 {
            w.write_char(*c)?;
        }
    }
    Ok(())
}

/// `PROTO SRC > DST` with ports for the protocols that have them (when `l4`: the key
/// carries its L4 header).
fn ip<W: Write>(w: &mut W, k: &FlowKey, l4: bool) -> fmt::Result {
    match proto_name(k.proto) {
        Some(n) => w.write_str(n)?,
        None => {
            w.write_str("proto ")?;
            dec(w, u64::from(k.proto))?;
        }
    }
    let ports = l4 && proto::has_ports(k.proto);
    w.write_char(' ')?;
    endpoint(w, k.family, &k.src, ports.then_some(k.sport))?;
    w.write_str(" > ")?;
    endpoint(w, k.family, &k.dst, ports.then_some(k.dport))
}

fn endpoint<W: Write>(w: &mut W, family: u8, a: &[u8; 16], port: Option<u16>) -> fmt::Result {
    if family == FAMILY_V4 {
        ipv4(w, [a[12], a[13], a[14], a[15]])?;
    } else {
        let v6 = std::net::Ipv6Addr::from(*a);
        match port {
            Some(_) => write!(w, "[{v6}]")?,
            None => write!(w, "{v6}")?,
        }
    }
    if let Some(p) = port {
        w.write_char(':')?;
        dec(w, u64::from(p))?;
    }
    Ok(())
}

/// ` echo-request`, ` dest-unreachable code 3`, ` type 42 code 1`, then ` id N`.
fn icmp_type_code<W: Write>(w: &mut W, k: &FlowKey) -> fmt::Result {
    let (t, c) = (k.icmp_type(), k.icmp_code());
    match icmp_name(k.family, t) {
        Some(n) => {
            w.write_char(' ')?;
            w.write_str(n)?;
        }
        None => {
            w.write_str(" type ")?;
            dec(w, u64::from(t))?;
        }
    }
    if c != 0 || icmp_name(k.family, t).is_none() {
        w.write_str(" code ")?;
        dec(w, u64::from(c))?;
    }
    if k.sport != 0 {
        w.write_str(" id ")?;
        dec(w, u64::from(k.sport))?;
    }
    Ok(())
}

/// ICMP type and code (named where known), query id, ND target, the quoted packet.
fn icmp<W: Write>(w: &mut W, m: &PacketMeta) -> fmt::Result {
    icmp_type_code(w, &m.key)?;
    if m.has_nd_target {
        write!(w, " target {}", std::net::Ipv6Addr::from(m.nd_target))?;
    }
    let q = &m.icmp_inner;
    if q.family != 0 {
        w.write_str(" for ")?;
        ip(w, q, true)?;
    }
    Ok(())
}

fn arp<W: Write>(w: &mut W, m: &PacketMeta) -> fmt::Result {
    let a = &m.arp;
    let rarp = m.ethertype == ethertype::RARP;
    match (rarp, a.op) {
        (false, 1) => {
            w.write_str("arp who-has ")?;
            ipv4(w, a.tpa)?;
            w.write_str(" tell ")?;
            ipv4(w, a.spa)
        }
        (false, 2) => {
            w.write_str("arp reply ")?;
            ipv4(w, a.spa)?;
            write!(w, " is-at {} to ", a.sha)?;
            ipv4(w, a.tpa)
        }
        _ => {
            w.write_str(if rarp { "rarp op " } else { "arp op " })?;
            dec(w, u64::from(a.op))?;
            w.write_char(' ')?;
            ipv4(w, a.spa)?;
            w.write_str(" > ")?;
            ipv4(w, a.tpa)
        }
    }
}

#[cfg(test)]
mod tests;
