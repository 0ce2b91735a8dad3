#![no_main]
//! `pipeline`: a random *valid* policy (2–6 ports in 1–2 networks, security groups with
//! random rules, address groups, allowed address pairs, ports without port security,
//! stateless groups, a small conntrack table) decoded from the input, then random frames
//! from random ports (replies to earlier frames, ICMP errors quoting them, fragments in
//! any order, spoofed addresses, ARP, ND, DHCP, VLAN tags, byte flips) in bursts through
//! three pipelines: `Pipeline::process` frame by frame, `Pipeline::process_burst` and
//! `Pipeline::trace`.
//!
//! Invariants: no panic; the three give the same dispositions and verdicts (and release
//! the same held fragments with the same verdicts, in any order: expiry walks a hash map)
//! until one of their conntrack tables was full or dropped an entry early (each table has
//! its own random hash seed, so from then on they may hold different connections; the
//! invariants below still hold for each of the three); no frame is delivered to its sender
//! or to a port of another network; no IP frame that is the first of its connection is
//! delivered to a port Q unless the linear oracle (`classifier::LinearPolicy`) allows it
//! at the sender's egress and at Q's ingress — except where the switch lets it through
//! without security groups (port security off, or traffic `pipeline::security` always
//! allows: `pipeline::always_allowed_egress`/`_ingress`, the switch's own rule). For a stateless port every packet, not only the first, must
//! be allowed by its rules.
//!
//! "First of its connection" is judged by this harness, not by the switch's conntrack:
//! a frame whose connection (protocol, the unordered pair of its endpoints; for ICMP
//! the address pair alone) and, for an ICMP error, whose quoted connection were never
//! seen in any earlier frame of the run. That is conservative (a connection evicted from
//! a full table and started again is not checked), never wrong. Later fragments carry no
//! ports and share their first fragment's verdict: they are not checked against the
//! oracle (the first fragment is).

use std::collections::HashSet;
use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use sgswitch::bench::frames::{self, V4};
use sgswitch::classifier::{Classifier, LinearPolicy};
use sgswitch::flow::{self, proto};
use sgswitch::pipeline::{
    always_allowed_egress, always_allowed_ingress, Dataplane, Disposition, IdMap, Pipeline,
    PipelineConfig, Verdict,
};
use sgswitch::policy::{Direction, Model};
use sgswitch::wire::icmpv6::msg;

// ---------------------------------------------------------------- the policy

/// One port as generated (what frames are built from).
#[derive(Clone, Debug)]
struct GenPort {
    net: usize,
    mac: [u8; 6],
    ip4: Ipv4Addr,
    ip6: Option<Ipv6Addr>,
    /// An allowed address pair: (its CIDR, a host address inside it, its MAC if not the
    /// port's).
    aap: Option<(&'static str, IpAddr, Option<[u8; 6]>)>,
}

fn mac_str(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

const V4_PREFIXES: &[&str] = &[
    "10.0.0.0/24",
    "10.0.0.10/32",
    "10.0.0.12/31",
    "10.0.0.8/29",
    "10.0.1.0/24",
    "192.0.2.0/24",
    "0.0.0.0/1",
];
const V6_PREFIXES: &[&str] = &[
    "fd00::/64",
    "fd00::a/128",
    "fd00::8/125",
    "fe80::/10",
    "::/1",
];
const PORT_VALUES: &[u16] = &[22, 53, 67, 68, 80, 443, 546, 547, 1000, 1024, 8080, 65535];

/// A rule as generated; distinct values are distinct rules for validation.
#[derive(Clone, PartialEq, Eq, Debug)]
struct GenRule {
    ingress: bool,
    v6: bool,
    protocol: Option<u8>,
    min: Option<u16>,
    max: Option<u16>,
    /// `remote_ip_prefix`, `remote_group` or `remote_address_group` (key, value).
    remote: Option<(&'static str, String)>,
}

fn gen_rule(u: &mut Unstructured, groups: usize, addr_groups: usize) -> Result<GenRule> {
    let ingress = u.ratio(2, 3)?;
    let v6 = u.ratio(1, 3)?;
    let icmp = if v6 { proto::ICMPV6 } else { proto::ICMP };
    let protocol = *u.choose(&[
        None,
        Some(proto::TCP),
        Some(proto::TCP),
        Some(proto::UDP),
        Some(icmp),
        Some(proto::SCTP),
        Some(proto::GRE),
    ])?;
    let (mut min, mut max) = (None, None);
    match protocol {
        Some(proto::TCP | proto::UDP | proto::SCTP) if u.ratio(2, 3)? => {
            let a = *u.choose(PORT_VALUES)?;
            let b = *u.choose(PORT_VALUES)?;
            min = Some(a.min(b));
            max = Some(a.max(b));
        }
        Some(proto::ICMP | proto::ICMPV6) if u.ratio(1, 2)? => {
            min = Some(u16::from(*u.choose(&[0u8, 3, 8, 11, 128, 129, 135, 136])?));
            if u.ratio(1, 3)? {
                max = Some(u.int_in_range(0..=3)?);
            }
        }
        _ => {}
    }
    let remote = match u.int_in_range(0..=5)? {
        0 | 1 => None,
        2 | 3 => Some((
            "remote_ip_prefix",
            u.choose(if v6 { V6_PREFIXES } else { V4_PREFIXES })?
                .to_string(),
        )),
        4 if addr_groups > 0 => Some(("remote_address_group", "ag0".to_string())),
        _ => {
            let g = u.int_in_range(0..=groups)?;
            let name = if g == groups {
                "default".to_string()
            } else {
                format!("g{g}")
            };
            Some(("remote_group", name))
        }
    };
    Ok(GenRule {
        ingress,
        v6,
        protocol,
        min,
        max,
        remote,
    })
}

fn write_rules(out: &mut String, rules: &[GenRule]) {
    out.push_str("rules = [\n");
    for r in rules {
        let _ = write!(
            out,
            "  {{ direction = \"{}\", ethertype = \"{}\"",
            if r.ingress { "ingress" } else { "egress" },
            if r.v6 { "IPv6" } else { "IPv4" }
        );
        if let Some(p) = r.protocol {
            let _ = write!(out, ", protocol = {p}");
        }
        if let Some(v) = r.min {
            let _ = write!(out, ", port_range_min = {v}");
        }
        if let Some(v) = r.max {
            let _ = write!(out, ", port_range_max = {v}");
        }
        if let Some((k, v)) = &r.remote {
            let _ = write!(out, ", {k} = \"{v}\"");
        }
        out.push_str(" },\n");
    }
    out.push_str("]\n");
}

/// Decode a valid config: its text and the ports as generated.
fn gen_config(u: &mut Unstructured) -> Result<(String, Vec<GenPort>)> {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "[conntrack]\ncapacity = {}\nmax_pending_fragments = {}\nfragment = {}\nudp = {}\ntcp_syn = {}\n",
        u.choose(&[4u32, 16, 64, 1024])?,
        u.choose(&[0u32, 1, 4, 64])?,
        u.int_in_range(1..=60)?,
        u.int_in_range(1..=60)?,
        u.int_in_range(1..=120)?,
    );
    if u.ratio(1, 3)? {
        t.push_str("[switch]\npermitted_ethertypes = [\"0x88cc\"]\n\n");
    }
    let addr_groups = usize::from(u.ratio(1, 3)?);
    if addr_groups > 0 {
        let all = ["10.0.0.8/30", "10.0.0.12/32", "192.0.2.0/24", "fd00::8/126"];
        let mut list = Vec::new();
        for a in all {
            if list.is_empty() || u.ratio(1, 2)? {
                list.push(format!("\"{a}\""));
            }
        }
        let _ = writeln!(
            t,
            "[[address_groups]]\nname = \"ag0\"\naddresses = [{}]\n",
            list.join(", ")
        );
    }
    // Groups g0.. and maybe an explicit "default" (index `groups`).
    let groups = u.int_in_range(1..=3)?;
    let declare_default = u.ratio(1, 2)?;
    let mut stateful = Vec::new();
    for g in 0..=groups {
        let is_default = g == groups;
        if is_default && !declare_default {
            stateful.push(true);
            break;
        }
        let st = !u.ratio(1, 4)?;
        stateful.push(st);
        let name = if is_default {
            "default".to_string()
        } else {
            format!("g{g}")
        };
        let _ = writeln!(t, "[[security_groups]]\nname = \"{name}\"\nstateful = {st}");
        if u.ratio(1, 6)? {
            // No `rules` key: the two allow-all egress rules.
            t.push('\n');
            continue;
        }
        let n = u.int_in_range(0..=6)?;
        let mut rules: Vec<GenRule> = Vec::new();
        for _ in 0..n {
            let r = gen_rule(u, groups, addr_groups)?;
            if !rules.contains(&r) {
                rules.push(r);
            }
        }
        write_rules(&mut t, &rules);
        t.push('\n');
    }
    let nets = u.int_in_range(1..=2)?;
    let n_ports = u.int_in_range(2..=6)?;
    let mut ports: Vec<GenPort> = Vec::new();
    for i in 0..n_ports {
        let net = u.int_in_range(0..=nets - 1)?;
        let fresh = GenPort {
            net,
            mac: [0xfa, 0x16, 0x3e, 0, 0, 0x10 + i as u8],
            ip4: Ipv4Addr::new(10, 0, 0, 10 + i as u8),
            ip6: Some(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 10 + i as u16)),
            aap: None,
        };
        // Sometimes the MAC and addresses of a port of the other network.
        let mut p = fresh.clone();
        if u.ratio(1, 3)? {
            if let Some(o) = ports.iter().find(|o| o.net != net) {
                let clash = ports
                    .iter()
                    .any(|q| q.net == net && (q.mac == o.mac || q.ip4 == o.ip4 || q.ip6 == o.ip6));
                if !clash {
                    p.mac = o.mac;
                    p.ip4 = o.ip4;
                    p.ip6 = o.ip6;
                }
            }
        }
        if u.ratio(1, 4)? {
            p.ip6 = None;
        }
        let port_security = !u.ratio(1, 4)?;
        let mut sgs: Vec<String> = Vec::new();
        let mut first_state = None;
        if port_security {
            for (g, &st) in stateful.iter().enumerate() {
                if u.ratio(1, 2)? && *first_state.get_or_insert(st) == st {
                    sgs.push(if g == groups {
                        "\"default\"".to_string()
                    } else {
                        format!("\"g{g}\"")
                    });
                }
            }
            if u.ratio(1, 3)? {
                let (cidr, host): (&str, IpAddr) = *u.choose(&[
                    ("10.0.0.100/32", IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100))),
                    ("10.0.0.96/28", IpAddr::V4(Ipv4Addr::new(10, 0, 0, 99))),
                    ("10.0.1.0/24", IpAddr::V4(Ipv4Addr::new(10, 0, 1, 7))),
                    (
                        "fd00::100/128",
                        IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x100)),
                    ),
                ])?;
                let mac = u.ratio(1, 2)?.then_some([0xfa, 0x16, 0x3e, 0, 1, i as u8]);
                p.aap = Some((cidr, host, mac));
            }
        }
        let mut fixed = vec![format!("\"{}\"", p.ip4)];
        if let Some(ip6) = p.ip6 {
            fixed.push(format!("\"{ip6}\""));
        }
        let _ = writeln!(
            t,
            "[[ports]]\nname = \"p{i}\"\nnetwork = \"n{net}\"\nmac = \"{}\"\nfixed_ips = [{}]\nsecurity_groups = [{}]\nport_security = {port_security}",
            mac_str(p.mac),
            fixed.join(", "),
            sgs.join(", ")
        );
        if let Some((cidr, _, mac)) = p.aap {
            let _ = write!(t, "allowed_address_pairs = [ {{ ip_address = \"{cidr}\"");
            if let Some(m) = mac {
                let _ = write!(t, ", mac_address = \"{}\"", mac_str(m));
            }
            t.push_str(" } ]\n");
        }
        t.push('\n');
        ports.push(p);
    }
    if u.ratio(1, 4)? {
        let ev = u.choose(&["ALL", "DROP", "ACCEPT"])?;
        let _ = writeln!(t, "[[logs]]\nname = \"all\"\nevent = \"{ev}\"\n");
    }
    Ok((t, ports))
}

// ---------------------------------------------------------------- the frames

/// The layer 4 of an IP packet as generated.
#[derive(Clone, Debug)]
enum L4 {
    Tcp {
        sport: u16,
        dport: u16,
        flags: u8,
    },
    Udp {
        sport: u16,
        dport: u16,
    },
    /// ICMP or ICMPv6 (by the packet's family): type, code, identifier.
    Icmp {
        ty: u8,
        code: u8,
        id: u16,
    },
    /// An ICMP error quoting an earlier packet.
    Error {
        ty: u8,
        code: u8,
        quote: Box<Pkt>,
    },
    Other(u8),
}

/// An IP packet as generated (kept to answer it or quote it later).
#[derive(Clone, Debug)]
struct Pkt {
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: IpAddr,
    dst: IpAddr,
    l4: L4,
}

const BROADCAST: [u8; 6] = [0xff; 6];

fn icmp_msg(ty: u8, code: u8, id: u16) -> Vec<u8> {
    let mut rest = id.to_be_bytes().to_vec();
    rest.extend_from_slice(&[0, 1]);
    frames::icmp(ty, code, &rest)
}

/// The L4 bytes (and protocol number) of a packet.
fn l4_bytes(p: &Pkt) -> (u8, Vec<u8>) {
    let v6 = p.src.is_ipv6();
    let icmp = if v6 { proto::ICMPV6 } else { proto::ICMP };
    match &p.l4 {
        L4::Tcp {
            sport,
            dport,
            flags,
        } => (
            proto::TCP,
            frames::tcp(*sport, *dport, *flags, 1000, 0, &[]),
        ),
        L4::Udp { sport, dport } => (proto::UDP, frames::udp(*sport, *dport, &[1, 2, 3, 4])),
        L4::Icmp { ty, code, id } => {
            let mut m = icmp_msg(*ty, *code, *id);
            if v6 && (*ty == msg::NEIGHBOR_SOLICIT || *ty == msg::NEIGHBOR_ADVERT) {
                // ND carries its target after the 4 reserved bytes.
                m.truncate(8);
                m.extend_from_slice(&match (*ty, p.dst, p.src) {
                    (t, IpAddr::V6(d), _) if t == msg::NEIGHBOR_SOLICIT => d.octets(),
                    (_, _, IpAddr::V6(s)) => s.octets(),
                    _ => [0; 16],
                });
            }
            (icmp, m)
        }
        L4::Error { ty, code, quote } => {
            let mut q = ip_bytes(quote);
            q.truncate(if v6 { 48 + 8 } else { 28 + 8 });
            let mut m = frames::icmp(*ty, *code, &[0, 0, 0, 0]);
            m.extend_from_slice(&q);
            (icmp, m)
        }
        L4::Other(n) => (*n, vec![0; 8]),
    }
}

/// The IP packet without Ethernet (to quote it in an ICMP error).
fn ip_bytes(p: &Pkt) -> Vec<u8> {
    let mut f = frame_of(p);
    f.drain(..14);
    f
}

fn frame_of(p: &Pkt) -> Vec<u8> {
    let (n, l4) = l4_bytes(p);
    match (p.src, p.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            frames::ipv4_frame(p.dst_mac, p.src_mac, V4::new(s, d, n), &l4)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => frames::ipv6_frame(p.dst_mac, p.src_mac, s, d, n, &l4),
        _ => Vec::new(),
    }
}

/// A packet's fragments: IPv4 (`MF`, offsets) or IPv6 (fragment header), split at an
/// 8-byte boundary, maybe reordered, repeated or overlapping.
fn fragments_of(u: &mut Unstructured, p: &Pkt) -> Result<Vec<Vec<u8>>> {
    let (n, mut payload) = l4_bytes(p);
    payload.extend_from_slice(&[7; 24]);
    let cut = 8 * u.int_in_range(1..=((payload.len() - 1) / 8))?;
    let id: u16 = u.arbitrary()?;
    let mut pieces = vec![
        (0usize, &payload[..cut], true),
        (cut, &payload[cut..], false),
    ];
    if u.ratio(1, 4)? {
        // An overlapping later fragment, rewriting the start of the L4 header.
        pieces.push((8, &payload[8..], false));
    }
    if u.ratio(1, 3)? {
        pieces.swap(0, 1);
    }
    if u.ratio(1, 5)? {
        pieces.remove(0);
    }
    let mut out = Vec::new();
    for (off, data, more) in pieces {
        let f = match (p.src, p.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let mut ip = V4::new(s, d, n);
                ip.id = id;
                ip.frag_offset = (off / 8) as u16;
                ip.more_fragments = more;
                frames::ipv4_frame(p.dst_mac, p.src_mac, ip, data)
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let mut h = vec![n, 0];
                h.extend_from_slice(&(((off / 8) as u16) << 3 | u16::from(more)).to_be_bytes());
                h.extend_from_slice(&u32::from(id).to_be_bytes());
                h.extend_from_slice(data);
                frames::ipv6_frame(p.dst_mac, p.src_mac, s, d, 44, &h)
            }
            _ => continue,
        };
        out.push(f);
    }
    Ok(out)
}

struct FrameGen<'a> {
    ports: &'a [GenPort],
    /// IP packets sent so far, with their sender.
    sent: Vec<(u16, Pkt)>,
}

impl FrameGen<'_> {
    fn port(&self, i: usize) -> &GenPort {
        &self.ports[i % self.ports.len()]
    }

    fn addr(&self, u: &mut Unstructured, own: usize, v6: bool, src: bool) -> Result<IpAddr> {
        let p = self.port(own);
        Ok(match u.int_in_range(0..=9)? {
            0 if p.aap.is_some_and(|(_, a, _)| a.is_ipv6() == v6) => {
                p.aap.map_or(IpAddr::V4(p.ip4), |a| a.1)
            }
            1 => {
                let o = self.port(u.int_in_range(0..=5)?);
                if v6 {
                    IpAddr::V6(o.ip6.unwrap_or(Ipv6Addr::LOCALHOST))
                } else {
                    IpAddr::V4(o.ip4)
                }
            }
            2 if v6 => *u.choose(&[
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1)),
                IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 0x10)),
                IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0xf816, 0x3eff, 0xfe00, 0x10)),
                IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x99)),
            ])?,
            2 => *u.choose(&[
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V4(Ipv4Addr::BROADCAST),
                IpAddr::V4(Ipv4Addr::new(224, 0, 0, 1)),
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, 99)),
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            ])?,
            _ if v6 && src => IpAddr::V6(p.ip6.unwrap_or(Ipv6Addr::new(
                0xfe80,
                0,
                0,
                0,
                0xf816,
                0x3eff,
                0xfe00,
                0x10 + own as u16,
            ))),
            _ if v6 => IpAddr::V6(
                p.ip6
                    .unwrap_or(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x42)),
            ),
            _ => IpAddr::V4(p.ip4),
        })
    }

    fn src_mac(&self, u: &mut Unstructured, own: usize) -> Result<[u8; 6]> {
        let p = self.port(own);
        Ok(match u.int_in_range(0..=11)? {
            0 => p.aap.and_then(|(_, _, m)| m).unwrap_or(p.mac),
            1 => self.port(u.int_in_range(0..=5)?).mac,
            2 => [0xfa, 0x16, 0x3e, 0xee, 0, u.arbitrary()?],
            _ => p.mac,
        })
    }

    fn dst_mac(&self, u: &mut Unstructured, to: usize) -> Result<[u8; 6]> {
        Ok(match u.int_in_range(0..=9)? {
            0 => BROADCAST,
            1 => [0x33, 0x33, 0, 0, 0, 1],
            2 => [0x01, 0x00, 0x5e, 0, 0, 1],
            3 => [0xfa, 0x16, 0x3e, 0xee, 0, u.arbitrary()?],
            4 => self
                .port(to)
                .aap
                .and_then(|(_, _, m)| m)
                .unwrap_or(self.port(to).mac),
            _ => self.port(to).mac,
        })
    }

    /// One or more frames, all from one port.
    fn next(&mut self, u: &mut Unstructured) -> Result<(u16, Vec<Vec<u8>>)> {
        let n = self.ports.len();
        let mut from = u.int_in_range(0..=n - 1)?;
        let to = u.int_in_range(0..=n - 1)?;
        let kind = u.int_in_range(0..=15)?;
        let mut out = Vec::new();
        let pkt = match kind {
            // Replies to and repeats of earlier packets.
            0..=2 if !self.sent.is_empty() => {
                let i = u.int_in_range(0..=self.sent.len() - 1)?;
                let (sender, mut p) = self.sent[i].clone();
                if kind == 2 {
                    from = sender as usize;
                } else {
                    let receiver = self.ports.iter().position(|q| q.mac == p.dst_mac);
                    from = receiver.unwrap_or(to);
                    std::mem::swap(&mut p.src, &mut p.dst);
                    std::mem::swap(&mut p.src_mac, &mut p.dst_mac);
                    if p.src_mac[0] & 1 != 0 {
                        p.src_mac = self.port(from).mac;
                    }
                    p.l4 = match p.l4 {
                        L4::Tcp {
                            sport,
                            dport,
                            flags,
                        } => L4::Tcp {
                            sport: dport,
                            dport: sport,
                            flags: if flags & 0x02 != 0 {
                                0x12
                            } else {
                                *u.choose(&[0x10u8, 0x11, 0x14, 0x18])?
                            },
                        },
                        L4::Udp { sport, dport } => L4::Udp {
                            sport: dport,
                            dport: sport,
                        },
                        L4::Icmp { ty, code, id } => L4::Icmp {
                            ty: match ty {
                                8 => 0,
                                128 => 129,
                                t => t,
                            },
                            code,
                            id,
                        },
                        other => other,
                    };
                }
                Some(p)
            }
            // An ICMP error about an earlier packet, from its receiver.
            3 if !self.sent.is_empty() => {
                let i = u.int_in_range(0..=self.sent.len() - 1)?;
                let (sender, q) = self.sent[i].clone();
                let receiver = self.ports.iter().position(|r| r.mac == q.dst_mac);
                from = receiver.unwrap_or(to);
                let v6 = q.src.is_ipv6();
                let (ty, code) = if v6 { (1, 4) } else { (3, 3) };
                Some(Pkt {
                    src_mac: self.port(from).mac,
                    dst_mac: self.port(sender as usize).mac,
                    src: q.dst,
                    dst: q.src,
                    l4: L4::Error {
                        ty,
                        code,
                        quote: Box::new(q),
                    },
                })
            }
            4 => {
                // ARP.
                let op = *u.choose(&[1u16, 2, 3])?;
                let sha = self.src_mac(u, from)?;
                let spa = match self.addr(u, from, false, true)? {
                    IpAddr::V4(a) => a,
                    _ => Ipv4Addr::UNSPECIFIED,
                };
                let tpa = self.port(to).ip4;
                let dst = if op == 1 {
                    BROADCAST
                } else {
                    self.port(to).mac
                };
                out.push(frames::pad(frames::arp(
                    dst,
                    self.src_mac(u, from)?,
                    op,
                    sha,
                    spa,
                    [0; 6],
                    tpa,
                )));
                None
            }
            5 => {
                // Another ethertype, maybe permitted.
                let mut f = self.dst_mac(u, to)?.to_vec();
                f.extend_from_slice(&self.src_mac(u, from)?);
                f.extend_from_slice(&u.choose(&[0x88ccu16, 0x9000, 0x0801])?.to_be_bytes());
                f.resize(60, 0);
                out.push(f);
                None
            }
            6 => {
                // Raw bytes.
                let len = u.int_in_range(0..=80)?;
                out.push(u.bytes(len)?.to_vec());
                None
            }
            _ => {
                let v6 = u.ratio(1, 3)?;
                let src = self.addr(u, from, v6, true)?;
                let dst = self.addr(u, to, v6, false)?;
                let port = |u: &mut Unstructured| -> Result<u16> {
                    Ok(if u.ratio(3, 4)? {
                        *u.choose(PORT_VALUES)?
                    } else {
                        u.arbitrary()?
                    })
                };
                let l4 = match u.int_in_range(0..=7)? {
                    0..=2 => L4::Tcp {
                        sport: port(u)?,
                        dport: port(u)?,
                        flags: *u.choose(&[0x02u8, 0x02, 0x12, 0x10, 0x11, 0x04, 0x18, 0x03])?,
                    },
                    3 | 4 => L4::Udp {
                        sport: port(u)?,
                        dport: port(u)?,
                    },
                    5 | 6 => L4::Icmp {
                        ty: if v6 {
                            *u.choose(&[128u8, 129, 133, 134, 135, 136, 130, 143, 1])?
                        } else {
                            *u.choose(&[8u8, 0, 13, 3])?
                        },
                        code: 0,
                        id: u.int_in_range(0..=3)?,
                    },
                    _ => L4::Other(*u.choose(&[proto::GRE, proto::SCTP, 50, 59])?),
                };
                Some(Pkt {
                    src_mac: self.src_mac(u, from)?,
                    dst_mac: self.dst_mac(u, to)?,
                    src,
                    dst,
                    l4,
                })
            }
        };
        if let Some(p) = pkt {
            if u.ratio(1, 8)? {
                out.extend(fragments_of(u, &p)?);
            } else {
                out.push(frame_of(&p));
            }
            self.sent.push((from as u16, p));
            if self.sent.len() > 64 {
                self.sent.remove(0);
            }
        }
        for f in &mut out {
            if u.ratio(1, 12)? && f.len() >= 14 {
                // An 802.1Q tag.
                let vid: u16 = u.int_in_range(0..=4095)?;
                let mut tag = vec![0x81, 0x00];
                tag.extend_from_slice(&vid.to_be_bytes());
                f.splice(12..12, tag);
            }
            if u.ratio(1, 10)? && !f.is_empty() {
                let i = u.int_in_range(0..=f.len() - 1)?;
                f[i] ^= u.int_in_range(1..=255)?;
            }
            if u.ratio(1, 10)? {
                let len = u.int_in_range(0..=f.len())?;
                f.truncate(len);
            }
        }
        // Now and then a frame from a port that does not exist.
        let from = if u.ratio(1, 64)? { 7 } else { from as u16 };
        Ok((from, out))
    }
}

// ---------------------------------------------------------------- the oracle

type ConnId = (u8, u8, ([u8; 16], u16), ([u8; 16], u16));

fn conn_id(k: &flow::FlowKey) -> ConnId {
    let (sp, dp) = if k.is_icmp() {
        (0, 0)
    } else {
        (k.sport, k.dport)
    };
    let a = (k.src, sp);
    let b = (k.dst, dp);
    (k.family, k.proto, a.min(b), a.max(b))
}

struct Oracle<'m> {
    model: &'m Model,
    lin: LinearPolicy,
    seen: HashSet<ConnId>,
}

impl Oracle<'_> {
    /// Whether a frame starts a connection never seen before (and remember it).
    fn first_of(&mut self, in_port: u16, frame: &[u8]) -> bool {
        let Ok(m) = flow::extract(frame) else {
            return false;
        };
        if self.model.ports.get(in_port as usize).is_none()
            || !m.is_ip()
            || m.frag.is_later_fragment()
        {
            return false;
        }
        let mut ids = vec![conn_id(&m.key)];
        if m.key.is_icmp() && m.icmp_inner.family != 0 {
            ids.push(conn_id(&m.icmp_inner));
        }
        let first = ids.iter().all(|id| !self.seen.contains(id));
        self.seen.extend(ids);
        first
    }

    /// Check one decided verdict of a frame received on `in_port` (`first`: from
    /// [`Oracle::first_of`]).
    fn check(
        &self,
        in_port: u16,
        frame: &[u8],
        first: bool,
        v: &Verdict,
        ctx: &dyn Fn() -> String,
    ) {
        let ports = &self.model.ports;
        let Some(sender) = ports.get(in_port as usize) else {
            assert!(
                v.delivered.is_empty(),
                "delivered from an unknown port\n{}",
                ctx()
            );
            return;
        };
        for &q in &v.delivered {
            assert_ne!(q, in_port, "delivered back to its sender\n{}", ctx());
            let qp = &ports[q as usize];
            assert_eq!(
                qp.network,
                sender.network,
                "{} delivered to {} of another network\n{}",
                sender.name,
                qp.name,
                ctx()
            );
        }
        let Ok(m) = flow::extract(frame) else {
            assert!(
                v.delivered.is_empty(),
                "an unparsable frame was delivered\n{}",
                ctx()
            );
            return;
        };
        if !m.is_ip() || m.frag.is_later_fragment() {
            return;
        }
        let passed_egress = !v.delivered.is_empty() || v.dropped.iter().any(|&(p, _)| p != in_port);
        let lin = &self.lin;
        let p = in_port as usize;
        if passed_egress
            && sender.port_security
            && !always_allowed_egress(&m)
            && (first || !lin.is_stateful(p))
            && !lin.allows(p, Direction::Egress, &m.key)
        {
            panic!(
                "{} egress let through what its rules deny (first: {first})\n{}",
                sender.name,
                ctx()
            );
        }
        for &q in &v.delivered {
            let qp = &ports[q as usize];
            let qi = q as usize;
            if qp.port_security
                && !always_allowed_ingress(&m)
                && (first || !lin.is_stateful(qi))
                && !lin.allows(qi, Direction::Ingress, &m.key)
            {
                panic!(
                    "delivered to {} whose ingress rules deny it (first: {first})\n{}",
                    qp.name,
                    ctx()
                );
            }
        }
    }
}

// ---------------------------------------------------------------- the run

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn run(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    let (text, ports) = gen_config(&mut u)?;
    let cfg = match sgswitch::control::config::parse_str(&text, "fuzz.toml") {
        Ok(c) => c,
        Err(e) => panic!("the generated config does not load:\n{e}\n{text}"),
    };
    let model = &cfg.model;
    let dp = Dataplane::compile(model, 1, &mut IdMap::default());
    let mut pcfg = PipelineConfig::from_model(model);
    pcfg.learned_macs = 4;
    let mut seq = Pipeline::new(&pcfg);
    let mut bur = Pipeline::new(&pcfg);
    let mut tra = Pipeline::new(&pcfg);
    let mut oracle = Oracle {
        model,
        lin: LinearPolicy::new(model, 1),
        seen: HashSet::new(),
    };
    let mut gen = FrameGen {
        ports: &ports,
        sent: Vec::new(),
    };
    let mut now: u64 = 1_000_000_000;
    let mut history: Vec<String> = Vec::new();
    // Set once a conntrack table was full (see below).
    let mut diverged = false;
    let bursts = u.int_in_range(1..=24)?;
    for _ in 0..bursts {
        now += *u.choose(&[
            0u64,
            1_000,
            1_000_000,
            1_000_000_000,
            40_000_000_000,
            200_000_000_000,
        ])?;
        // A burst: frames of one port.
        let (in_port, mut burst) = gen.next(&mut u)?;
        while burst.len() < 40 && u.ratio(2, 3)? {
            let (p, more) = gen.next(&mut u)?;
            if p != in_port {
                break;
            }
            burst.extend(more);
        }
        let slices: Vec<&[u8]> = burst.iter().map(|f| f.as_slice()).collect();
        let mut outs = vec![Verdict::default(); slices.len()];
        let mut disp = vec![Disposition::Decided; slices.len()];
        bur.process_burst(&dp, in_port, &slices, now, &mut outs, &mut disp);
        for (k, f) in slices.iter().enumerate() {
            history.push(format!(
                "t={now} in_port={in_port} {} {}",
                flow::summary(f),
                hex(f)
            ));
            let ctx = || {
                format!(
                    "config:\n{text}\nframes (last is the failing one):\n{}",
                    history.join("\n")
                )
            };
            let mut v = Verdict::default();
            let d = seq.process(&dp, in_port, f, now, 0, &mut v);
            let mut tv = Verdict::default();
            let (td, _steps) = tra.trace(&dp, in_port, f, now, &mut tv);
            assert_eq!(
                d,
                disp[k],
                "process and process_burst dispositions differ\n{}",
                ctx()
            );
            assert_eq!(d, td, "process and trace dispositions differ\n{}", ctx());
            if d == Disposition::Decided {
                // Each conntrack table has its own random hash seed (so that peers cannot
                // aim at buckets): once one of them was full or dropped an entry early,
                // the three may hold different connections and judge differently. Until
                // then they must agree; the oracle's invariants hold for all three always.
                let pressed = [&seq, &bur, &tra].iter().any(|p| {
                    let s = p.conntrack().stats();
                    s.full > 0 || s.early_drop > 0
                });
                diverged |= pressed;
                if !diverged {
                    assert_eq!(
                        v,
                        outs[k],
                        "process and process_burst verdicts differ\n{}",
                        ctx()
                    );
                    assert_eq!(v, tv, "process and trace verdicts differ\n{}", ctx());
                }
                let first = oracle.first_of(in_port, f);
                for verdict in [&v, &outs[k], &tv] {
                    oracle.check(in_port, f, first, verdict, &ctx);
                }
            }
        }
        let ctx = || format!("config:\n{text}\nframes:\n{}", history.join("\n"));
        let mut released: [Vec<(u16, Vec<u8>, Verdict)>; 3] = Default::default();
        for (p, r) in [&mut seq, &mut bur, &mut tra]
            .into_iter()
            .zip(released.iter_mut())
        {
            p.housekeeping(now);
            p.expire_fragments(now);
            p.drain_released(&dp, |_, port, frame, v| {
                r.push((port, frame.to_vec(), v.clone()))
            });
            p.take_log_records(|_| {});
            // Expired datagrams come out in the order of the fragment table's hash map,
            // whose seed differs per pipeline: compare what is released, not its order.
            r.sort_by_cached_key(|(port, frame, v)| (*port, frame.clone(), format!("{v:?}")));
        }
        if diverged {
            for (port, frame, v) in released.iter().flatten() {
                oracle.check(*port, frame, false, v, &ctx);
            }
            continue;
        }
        assert_eq!(
            released[0],
            released[1],
            "process and process_burst release differently\n{}",
            ctx()
        );
        assert_eq!(
            released[0],
            released[2],
            "process and trace release differently\n{}",
            ctx()
        );
        for (port, frame, v) in &released[0] {
            let ports = &model.ports;
            for &q in &v.delivered {
                assert_eq!(
                    ports[q as usize].network,
                    ports[*port as usize].network,
                    "a released fragment crossed networks\n{}",
                    ctx()
                );
                assert_ne!(
                    q,
                    *port,
                    "a released fragment went back to its sender\n{}",
                    ctx()
                );
            }
            let _ = frame;
        }
        assert_eq!(seq.counters(), bur.counters(), "counters differ\n{}", ctx());
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});
