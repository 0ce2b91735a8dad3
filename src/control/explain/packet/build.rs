//! Building the frame of a [`PacketSpec`]: Ethernet, VLAN tags, IPv4 or IPv6 (with a
//! fragment header), TCP, UDP, UDP-Lite, SCTP, DCCP, ICMP, ICMPv6 (neighbour discovery
//! target, quoted packet of an error), ARP, other ethertypes; valid lengths and
//! checksums; padded to the Ethernet minimum. And the MACs a description implies.
//!
//! Owns: the bytes of a described frame. May not touch: the grammar (`super`), the
//! pipeline.

use std::net::{IpAddr, Ipv6Addr};

use super::{parse, Body, IpSpec, PacketSpec};
use crate::flow::proto;
use crate::policy::Model;
use crate::wire::Mac;

/// The one's-complement sum of `data` folded to 16 bits (not inverted).
pub(super) fn sum16(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc
}

fn checksum(acc: u32, data: &[u8]) -> [u8; 2] {
    (!(sum16(acc, data) as u16)).to_be_bytes()
}

/// The pseudo-header sum of an L4 segment of `len` bytes.
pub(super) fn pseudo(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> u32 {
    let mut acc = 0;
    for a in [src, dst] {
        acc = match a {
            IpAddr::V4(a) => sum16(acc, &a.octets()),
            IpAddr::V6(a) => sum16(acc, &a.octets()),
        };
    }
    sum16(acc, &[0, proto]) + sum16(0, &(len as u32).to_be_bytes())
}

/// The L4 part of `s` (header and payload); checksum filled where the protocol has one.
fn l4_bytes(s: &IpSpec) -> Vec<u8> {
    if s.frag.is_some_and(|f| f.offset > 0) {
        return vec![0; s.len.max(8)];
    }
    let mut b: Vec<u8> = match s.proto {
        proto::TCP => {
            let mut h = vec![0u8; 20];
            h[0..2].copy_from_slice(&s.sport.to_be_bytes());
            h[2..4].copy_from_slice(&s.dport.to_be_bytes());
            h[4..8].copy_from_slice(&s.seq.to_be_bytes());
            h[8..12].copy_from_slice(&s.ack.to_be_bytes());
            h[12] = 0x50;
            h[13] = s.tcp_flags;
            h[14..16].copy_from_slice(&65535u16.to_be_bytes());
            h
        }
        p if proto::has_ports(p) => {
            // UDP, UDP-Lite (8 bytes), SCTP and DCCP (12 and 16 bytes: ports first).
            let hl = match p {
                proto::SCTP => 12,
                proto::DCCP => 16,
                _ => 8,
            };
            let mut h = vec![0u8; hl];
            h[0..2].copy_from_slice(&s.sport.to_be_bytes());
            h[2..4].copy_from_slice(&s.dport.to_be_bytes());
            if p == proto::DCCP {
                h[4] = 4; // data offset: 4 words
            }
            h
        }
        proto::ICMP | proto::ICMPV6 => {
            let mut h = vec![s.icmp_type, s.icmp_code, 0, 0];
            h.extend_from_slice(&s.icmp_id.to_be_bytes());
            h.extend_from_slice(&[0, 1]);
            if let Some(q) = &s.quoted {
                let inner = ip_packet(q);
                let keep = if s.proto == proto::ICMP {
                    let ihl = 20;
                    inner.len().min(ihl + 8)
                } else {
                    inner.len()
                };
                h.extend_from_slice(&inner[..keep]);
            } else if s.proto == proto::ICMPV6 && matches!(s.icmp_type, 135 | 136) {
                let target = s.target.unwrap_or(match s.dst {
                    IpAddr::V6(a) => a,
                    IpAddr::V4(_) => Ipv6Addr::UNSPECIFIED,
                });
                h.extend_from_slice(&target.octets());
            }
            h
        }
        _ => Vec::new(),
    };
    b.resize(b.len() + s.len, 0);
    let len = b.len();
    let acc = pseudo(s.src, s.dst, s.proto, len);
    if matches!(s.proto, proto::UDP | proto::UDPLITE) {
        b[4..6].copy_from_slice(&(len as u16).to_be_bytes());
    }
    // Where the checksum goes, and whether the pseudo-header counts.
    let at = match s.proto {
        proto::TCP => Some((16, acc)),
        proto::UDP | proto::UDPLITE => Some((6, acc)),
        proto::ICMP => Some((2, 0)),
        proto::ICMPV6 => Some((2, acc)),
        _ => None,
    };
    if let Some((off, acc)) = at {
        let c = checksum(acc, &b);
        b[off..off + 2].copy_from_slice(&c);
    }
    b
}

/// The IP packet of `s` (header(s) and L4).
fn ip_packet(s: &IpSpec) -> Vec<u8> {
    let l4 = l4_bytes(s);
    match (s.src, s.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let mut h = vec![0u8; 20];
            h[0] = 0x45;
            h[2..4].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
            let (id, flags) = match s.frag {
                Some(f) => (f.id as u16, (u16::from(f.more) << 13) | (f.offset / 8)),
                None => (1, 0x4000), // don't fragment
            };
            h[4..6].copy_from_slice(&id.to_be_bytes());
            h[6..8].copy_from_slice(&flags.to_be_bytes());
            h[8] = 64;
            h[9] = s.proto;
            h[12..16].copy_from_slice(&src.octets());
            h[16..20].copy_from_slice(&dst.octets());
            let c = checksum(0, &h);
            h[10..12].copy_from_slice(&c);
            h.extend_from_slice(&l4);
            h
        }
        (src, dst) => {
            let v6 = |a: IpAddr| match a {
                IpAddr::V6(a) => a.octets(),
                IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            };
            let mut ext = Vec::new();
            let mut next = s.proto;
            if let Some(f) = s.frag {
                ext.extend_from_slice(&[s.proto, 0]);
                ext.extend_from_slice(&(f.offset | u16::from(f.more)).to_be_bytes());
                ext.extend_from_slice(&f.id.to_be_bytes());
                next = proto::IPV6_FRAG;
            }
            let mut h = vec![0x60, 0, 0, 0];
            h.extend_from_slice(&((ext.len() + l4.len()) as u16).to_be_bytes());
            h.extend_from_slice(&[next, 64]);
            h.extend_from_slice(&v6(src));
            h.extend_from_slice(&v6(dst));
            h.extend_from_slice(&ext);
            h.extend_from_slice(&l4);
            h
        }
    }
}

/// The frame of `spec` between `src` and `dst` MACs, padded to 60 bytes.
pub fn build(spec: &PacketSpec, src: Mac, dst: Mac) -> Vec<u8> {
    let mut f = Vec::with_capacity(128);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    for v in &spec.vlans {
        f.extend_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&v.to_be_bytes());
    }
    match &spec.body {
        Body::Ip(s) => {
            let et: u16 = if s.src.is_ipv4() { 0x0800 } else { 0x86dd };
            f.extend_from_slice(&et.to_be_bytes());
            f.extend_from_slice(&ip_packet(s));
        }
        Body::Arp(a) => {
            let et: u16 = if a.rarp { 0x8035 } else { 0x0806 };
            f.extend_from_slice(&et.to_be_bytes());
            f.extend_from_slice(&[0, 1, 8, 0, 6, 4]);
            f.extend_from_slice(&a.op.to_be_bytes());
            f.extend_from_slice(&a.sha.unwrap_or(src).0);
            f.extend_from_slice(&a.spa.octets());
            let tha = if a.op == 1 { Mac([0; 6]) } else { dst };
            f.extend_from_slice(&tha.0);
            f.extend_from_slice(&a.tpa.octets());
        }
        Body::Ethertype { ethertype, len } => {
            f.extend_from_slice(&ethertype.to_be_bytes());
            f.resize(f.len() + len, 0);
        }
    }
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

/// The destination MAC a description implies in `network` of `model`: broadcast and
/// multicast MACs for such addresses, else the MAC of the port that has the address.
pub fn implied_dst_mac(model: &Model, network: &str, spec: &PacketSpec) -> Result<Mac, String> {
    let ip = match &spec.body {
        Body::Ethertype { .. } => return Ok(Mac::BROADCAST),
        Body::Arp(a) if a.op == 1 || a.rarp => return Ok(Mac::BROADCAST),
        Body::Arp(a) => IpAddr::V4(a.tpa),
        Body::Ip(s) => s.dst,
    };
    match ip {
        IpAddr::V4(a) if a.is_broadcast() || a.is_unspecified() => return Ok(Mac::BROADCAST),
        IpAddr::V4(a) if a.is_multicast() => {
            let o = a.octets();
            return Ok(Mac([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]));
        }
        IpAddr::V6(a) if a.is_multicast() => {
            let o = a.octets();
            return Ok(Mac([0x33, 0x33, o[12], o[13], o[14], o[15]]));
        }
        _ => {}
    }
    let owner = model
        .ports
        .iter()
        .filter(|p| p.network == network)
        .find(|p| {
            p.fixed_ips.contains(&ip)
                || p.allowed_address_pairs
                    .iter()
                    .any(|aap| aap.ip_address.contains(&ip))
        });
    match owner {
        Some(p) => Ok(p.allowed_address_pairs
            .iter()
            .find(|aap| !p.fixed_ips.contains(&ip) && aap.ip_address.contains(&ip))
            .and_then(|aap| aap.mac_address)
            .unwrap_or(p.mac)),
        None => Err(format!(
            "no port of network '{network}' has the address {ip}: give the destination MAC with --dst-mac (e.g. a router port's MAC)"
        )),
    }
}

/// The frame of a description sent by port `in_port` of `model`: source MAC the port's
/// (or `src_mac`), destination MAC [`implied_dst_mac`] (or `dst_mac`).
pub fn frame_for(
    model: &Model,
    in_port: &str,
    text: &str,
    src_mac: Option<Mac>,
    dst_mac: Option<Mac>,
) -> Result<Vec<u8>, String> {
    let spec = parse(text).map_err(|e| format!("packet description: {e}"))?;
    let port = model
        .port(in_port)
        .ok_or_else(|| format!("--in-port {in_port}: no port has that name"))?;
    let dst = match dst_mac {
        Some(m) => m,
        None => implied_dst_mac(model, &port.network, &spec)?,
    };
    Ok(build(&spec, src_mac.unwrap_or(port.mac), dst))
}
