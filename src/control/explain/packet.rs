//! Packet descriptions: the grammar `sgswitch trace` reads, and the frame it builds.
//!
//! The grammar is the one [`flow::summary`](crate::flow::summary) prints, so a line of
//! `sgswitch replay` pastes into `sgswitch trace`. Tokens are separated by white space
//! (`>` may touch its neighbours):
//!
//! ```text
//! desc     := ("vlan" ID)* body
//! body     := PROTO EP ">" EP ip-opt*              PROTO: tcp udp sctp dccp udplite
//!           | ("icmp"|"icmp6") ADDR ">" ADDR icmp-opt* ip-opt*
//!           | ("proto" N | gre | esp | ah | igmp) ADDR ">" ADDR ip-opt*
//!           | "arp" "who-has" IPV4 "tell" IPV4
//!           | "arp" "reply" IPV4 "is-at" MAC ["to" IPV4]
//!           | ("arp"|"rarp") "op" N IPV4 ">" IPV4
//!           | "ethertype" N
//! EP       := IPV4[":"PORT] | "["IPV6"]"[":"PORT] | IPV6
//! icmp-opt := "type" (N|NAME) | NAME | "code" N | "id" N | "target" IPV6 | "for" body
//! ip-opt   := "flags" LETTERS | "seq" N | "ack" N | "frag" "id" N "offset" BYTES ["more"]
//!           | "len" N
//! ```
//!
//! TCP flags are letters `S F R P A U E W` in any order (`.` is ACK, as tcpdump prints
//! it; `none` is no flag); a TCP description without `flags` is a SYN. ICMP without a type
//! is an echo request. ICMP names are `flow`'s ([`ICMP_NAMES`], [`ICMPV6_NAMES`]). Ports
//! may be left out only in a later fragment (`frag ... offset` > 0), which carries no L4
//! header. A neighbour solicitation / advertisement without `target` targets its
//! destination address. `for` quotes a packet in an ICMP error (the rest of the line).
//!
//! MACs: [`frame_for`] takes the sending port's MAC as source and, as destination, the
//! MAC of the port of the same network that has the destination address (broadcast for
//! `arp who-has` and IPv4 broadcast, the multicast MAC of a multicast address), unless
//! the caller gives them.
//!
//! Owns: the grammar and its errors (naming the token); `build` makes the frame, with
//! valid lengths and checksums. May not touch: the pipeline (the frame is its input,
//! nothing else), the store.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::flow::{proto, tcp_flags, ICMPV6_NAMES, ICMP_NAMES, PROTO_NAMES, TCP_FLAG_LETTERS};
use crate::wire::Mac;

/// A parsed packet description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketSpec {
    /// VLAN ids, outermost first.
    pub vlans: Vec<u16>,
    pub body: Body,
}

/// What the frame carries after its VLAN tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    Ip(IpSpec),
    Arp(ArpSpec),
    /// Any other ethertype, with `len` bytes of zeros.
    Ethertype {
        ethertype: u16,
        len: usize,
    },
}

/// An IP packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpSpec {
    pub proto: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// L4 ports (TCP, UDP, SCTP, DCCP, UDP-Lite).
    pub sport: u16,
    pub dport: u16,
    pub tcp_flags: u8,
    pub seq: u32,
    pub ack: u32,
    pub icmp_type: u8,
    pub icmp_code: u8,
    pub icmp_id: u16,
    /// Neighbour discovery target.
    pub target: Option<Ipv6Addr>,
    /// The packet an ICMP error quotes.
    pub quoted: Option<Box<IpSpec>>,
    pub frag: Option<FragSpec>,
    /// Payload bytes after the L4 header.
    pub len: usize,
}

/// IP fragment fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragSpec {
    pub id: u32,
    /// Offset in bytes (a multiple of 8).
    pub offset: u16,
    pub more: bool,
}

/// An ARP (or RARP) packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArpSpec {
    pub rarp: bool,
    pub op: u16,
    pub spa: Ipv4Addr,
    pub tpa: Ipv4Addr,
    /// Sender hardware address (`None`: the frame's source MAC).
    pub sha: Option<Mac>,
}

/// A description that does not parse: which token (1-based; 0 = the end) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescError {
    pub position: usize,
    pub token: String,
    pub message: String,
}

impl fmt::Display for DescError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.position == 0 {
            write!(f, "at the end of the description: {}", self.message)
        } else {
            write!(
                f,
                "token {} '{}': {}",
                self.position, self.token, self.message
            )
        }
    }
}

impl std::error::Error for DescError {}

/// Tokens with their position, consumed left to right.
struct Tokens {
    toks: Vec<String>,
    at: usize,
}

impl Tokens {
    fn new(text: &str) -> Tokens {
        let spaced = text.replace('>', " > ");
        Tokens {
            toks: spaced.split_whitespace().map(str::to_string).collect(),
            at: 0,
        }
    }

    fn peek(&self) -> Option<&str> {
        self.toks.get(self.at).map(String::as_str)
    }

    fn next(&mut self, what: &str) -> Result<String, DescError> {
        match self.toks.get(self.at) {
            Some(t) => {
                self.at += 1;
                Ok(t.clone())
            }
            None => Err(DescError {
                position: 0,
                token: String::new(),
                message: format!("expected {what}"),
            }),
        }
    }

    /// An error about the token just consumed.
    fn err(&self, message: impl Into<String>) -> DescError {
        DescError {
            position: self.at,
            token: self
                .toks
                .get(self.at.wrapping_sub(1))
                .cloned()
                .unwrap_or_default(),
            message: message.into(),
        }
    }

    fn expect(&mut self, word: &str) -> Result<(), DescError> {
        let t = self.next(&format!("'{word}'"))?;
        if t.eq_ignore_ascii_case(word) {
            Ok(())
        } else {
            Err(self.err(format!("expected '{word}'")))
        }
    }

    fn number<T: std::str::FromStr>(&mut self, what: &str) -> Result<T, DescError> {
        let t = self.next(what)?;
        parse_number(&t).ok_or_else(|| self.err(format!("expected {what}")))
    }

    fn ipv4(&mut self) -> Result<Ipv4Addr, DescError> {
        let t = self.next("an IPv4 address")?;
        t.parse().map_err(|_| self.err("expected an IPv4 address"))
    }
}

/// A number in decimal or `0x` hex.
fn parse_number<T: std::str::FromStr>(t: &str) -> Option<T> {
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        let v = u64::from_str_radix(h, 16).ok()?;
        v.to_string().parse().ok()
    } else {
        t.parse().ok()
    }
}

/// Parse a packet description (see the module doc).
pub fn parse(text: &str) -> Result<PacketSpec, DescError> {
    let mut t = Tokens::new(text);
    let mut vlans = Vec::new();
    while t.peek().is_some_and(|w| w.eq_ignore_ascii_case("vlan")) {
        t.next("vlan")?;
        let id: u16 = t.number("a VLAN id (0-4095)")?;
        if id > 4095 {
            return Err(t.err("a VLAN id is 0-4095"));
        }
        vlans.push(id);
    }
    if vlans.len() > 2 {
        return Err(t.err("at most two VLAN tags"));
    }
    let body = parse_body(&mut t)?;
    if let Some(extra) = t.peek() {
        let extra = extra.to_string();
        t.at += 1;
        return Err(t.err(format!("unexpected '{extra}' after a complete description")));
    }
    Ok(PacketSpec { vlans, body })
}

fn parse_body(t: &mut Tokens) -> Result<Body, DescError> {
    let word = t.next("a protocol (tcp, udp, icmp, icmp6, arp, ethertype, ...)")?;
    let lower = word.to_ascii_lowercase();
    match lower.as_str() {
        "arp" | "rarp" => parse_arp(t, lower == "rarp").map(Body::Arp),
        "ethertype" => {
            let ethertype: u16 = t.number("an ethertype (e.g. 0x88cc)")?;
            let mut len = 46;
            if t.peek() == Some("len") {
                t.next("len")?;
                len = t.number("a length")?;
            }
            Ok(Body::Ethertype { ethertype, len })
        }
        _ => parse_ip(t, &lower).map(Body::Ip),
    }
}

fn parse_arp(t: &mut Tokens, rarp: bool) -> Result<ArpSpec, DescError> {
    let form = t.next("'who-has', 'reply' or 'op'")?;
    let mut a = ArpSpec {
        rarp,
        op: 1,
        spa: Ipv4Addr::UNSPECIFIED,
        tpa: Ipv4Addr::UNSPECIFIED,
        sha: None,
    };
    match form.as_str() {
        "who-has" if !rarp => {
            a.tpa = t.ipv4()?;
            t.expect("tell")?;
            a.spa = t.ipv4()?;
        }
        "reply" if !rarp => {
            a.op = 2;
            a.spa = t.ipv4()?;
            t.expect("is-at")?;
            let m = t.next("a MAC address")?;
            a.sha = Some(m.parse().map_err(|_| t.err("expected a MAC address"))?);
            if t.peek() == Some("to") {
                t.next("to")?;
                a.tpa = t.ipv4()?;
            }
        }
        "op" => {
            a.op = t.number("an ARP operation number")?;
            a.spa = t.ipv4()?;
            t.expect(">")?;
            a.tpa = t.ipv4()?;
        }
        _ => return Err(t.err("expected 'who-has', 'reply' or 'op'")),
    }
    Ok(a)
}

/// The protocol number of a protocol word (`proto N` reads the number).
fn proto_of(t: &mut Tokens, word: &str) -> Result<u8, DescError> {
    match word {
        "proto" => t.number("a protocol number (0-255)"),
        "icmpv6" | "ipv6-icmp" => Ok(proto::ICMPV6),
        _ => PROTO_NAMES
            .iter()
            .find(|e| e.1 == word)
            .map(|e| e.0)
            .ok_or_else(|| {
                t.err("expected a protocol: tcp, udp, icmp, icmp6, sctp, dccp, udplite, gre, esp, ah, igmp, proto N, arp, ethertype")
            }),
    }
}

/// An address with an optional port: `10.0.0.1:80`, `[fd00::1]:80`, `10.0.0.1`, `fd00::1`.
fn parse_endpoint(t: &mut Tokens) -> Result<(IpAddr, Option<u16>), DescError> {
    let s = t.next("an address")?;
    let bad =
        |t: &Tokens| t.err("expected an address (10.0.0.1, 10.0.0.1:80, fd00::1, [fd00::1]:80)");
    if let Some(rest) = s.strip_prefix('[') {
        let (addr, after) = rest.split_once(']').ok_or_else(|| bad(t))?;
        let ip: Ipv6Addr = addr.parse().map_err(|_| bad(t))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(
                p.parse()
                    .map_err(|_| t.err("expected a port number (0-65535)"))?,
            ),
            None if after.is_empty() => None,
            None => return Err(bad(t)),
        };
        return Ok((IpAddr::V6(ip), port));
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok((ip, None));
    }
    let (addr, port) = s.rsplit_once(':').ok_or_else(|| bad(t))?;
    let ip: Ipv4Addr = addr.parse().map_err(|_| bad(t))?;
    let port = port
        .parse()
        .map_err(|_| t.err("expected a port number (0-65535)"))?;
    Ok((IpAddr::V4(ip), Some(port)))
}

fn icmp_type_named(v6: bool, name: &str) -> Option<u8> {
    let table = if v6 { ICMPV6_NAMES } else { ICMP_NAMES };
    table.iter().find(|e| e.1 == name).map(|e| e.0)
}

fn parse_ip(t: &mut Tokens, word: &str) -> Result<IpSpec, DescError> {
    let proto = proto_of(t, word)?;
    let (src, sport) = parse_endpoint(t)?;
    t.expect(">")?;
    let (dst, dport) = parse_endpoint(t)?;
    if src.is_ipv4() != dst.is_ipv4() {
        return Err(t.err("source and destination are of different IP versions"));
    }
    let v6 = src.is_ipv6();
    if proto == proto::ICMP && v6 {
        return Err(t.err("icmp with IPv6 addresses: write icmp6"));
    }
    if proto == proto::ICMPV6 && !v6 {
        return Err(t.err("icmp6 with IPv4 addresses: write icmp"));
    }
    let has_ports = proto::has_ports(proto);
    if !has_ports && (sport.is_some() || dport.is_some()) {
        return Err(t.err(format!("{word} has no ports")));
    }
    let mut s = IpSpec {
        proto,
        src,
        dst,
        sport: sport.unwrap_or(0),
        dport: dport.unwrap_or(0),
        tcp_flags: if proto == proto::TCP {
            tcp_flags::SYN
        } else {
            0
        },
        seq: 1,
        ack: 0,
        icmp_type: if v6 { 128 } else { 8 },
        icmp_code: 0,
        icmp_id: 0,
        target: None,
        quoted: None,
        frag: None,
        len: 0,
    };
    let icmp = proto == proto::ICMP || proto == proto::ICMPV6;
    while let Some(w) = t.peek().map(str::to_ascii_lowercase) {
        t.next("")?;
        match w.as_str() {
            "flags" if proto == proto::TCP => {
                let f = t.next("TCP flags (S, SA, FA, R, PA, none)")?;
                s.tcp_flags = parse_flags(&f).ok_or_else(|| {
                    t.err("expected TCP flag letters S F R P A U E W (or '.', 'none')")
                })?;
            }
            "seq" if proto == proto::TCP => s.seq = t.number("a sequence number")?,
            "ack" if proto == proto::TCP => s.ack = t.number("an acknowledgement number")?,
            "type" if icmp => {
                let v = t.next("an ICMP type (number or name)")?;
                s.icmp_type = match parse_number::<u8>(&v).or_else(|| icmp_type_named(v6, &v)) {
                    Some(n) => n,
                    None => return Err(t.err("expected an ICMP type (number or name)")),
                };
            }
            "code" if icmp => s.icmp_code = t.number("an ICMP code (0-255)")?,
            "id" if icmp => s.icmp_id = t.number("an ICMP identifier (0-65535)")?,
            "target" if proto == proto::ICMPV6 => {
                let v = t.next("an IPv6 target address")?;
                s.target = Some(v.parse().map_err(|_| t.err("expected an IPv6 address"))?);
            }
            "for" if icmp => {
                let inner = t.next("the quoted packet's protocol")?;
                let q = parse_ip(t, &inner.to_ascii_lowercase())?;
                s.quoted = Some(Box::new(q));
            }
            "frag" => {
                t.expect("id")?;
                let id = t.number("a fragment id")?;
                t.expect("offset")?;
                let offset: u16 = t.number("a fragment offset in bytes")?;
                if !offset.is_multiple_of(8) || offset > 8 * 0x1fff {
                    return Err(t.err("a fragment offset is a multiple of 8 bytes, at most 65528"));
                }
                let more = t.peek() == Some("more");
                if more {
                    t.next("more")?;
                }
                s.frag = Some(FragSpec { id, offset, more });
            }
            "len" => s.len = t.number("a payload length")?,
            name if icmp => match icmp_type_named(v6, name) {
                Some(n) => s.icmp_type = n,
                None => {
                    return Err(t.err(format!(
                        "not an option of {word} here, nor an ICMP{} name",
                        if v6 { "v6" } else { "" }
                    )))
                }
            },
            _ => return Err(t.err(format!("not an option of {word} here"))),
        }
    }
    let later = s.frag.is_some_and(|f| f.offset > 0);
    if has_ports && !later && (sport.is_none() || dport.is_none()) {
        return Err(DescError {
            position: 0,
            token: String::new(),
            message: format!("{word} needs ports: ADDR:PORT > ADDR:PORT ([IPv6]:PORT)"),
        });
    }
    if s.quoted.is_some() && !is_icmp_error(v6, s.icmp_type) {
        return Err(t.err(
            "'for' quotes a packet in an ICMP error only (dest-unreachable, time-exceeded, ...)",
        ));
    }
    Ok(s)
}

fn is_icmp_error(v6: bool, t: u8) -> bool {
    if v6 {
        crate::wire::icmpv6::is_error(t)
    } else {
        crate::wire::icmp::is_error(t)
    }
}

/// TCP flag letters (any order), `.` for ACK, `none` for no flag.
pub fn parse_flags(s: &str) -> Option<u8> {
    if s.eq_ignore_ascii_case("none") {
        return Some(0);
    }
    let mut f = 0u8;
    for c in s.chars() {
        let c = if c == '.' {
            'A'
        } else {
            c.to_ascii_uppercase()
        };
        f |= TCP_FLAG_LETTERS.iter().find(|e| e.1 == c)?.0;
    }
    Some(f)
}

mod build;

pub use build::{build, frame_for, implied_dst_mac};

#[cfg(test)]
mod tests;
