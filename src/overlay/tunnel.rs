//! Encapsulation and decapsulation of one frame: the outer Ethernet + IPv4/IPv6 + UDP +
//! VXLAN/Geneve headers.
//!
//! Encapsulation goes through a [`Template`]: the outer headers towards one destination
//! VTEP, built once (addresses, ports, the VNI, the IPv4 header checksum of every fixed
//! field); per frame only the lengths, the IPv4 checksum (incrementally, from the
//! template's partial sum) and the UDP source port are patched. No allocation; the
//! caller owns the buffer. The outer IPv4 header has DF set and UDP checksum 0 (RFC 7348
//! §5, RFC 8926 §3.3 allow 0 over IPv4); over IPv6 the UDP checksum is 0 too (RFC 6935,
//! RFC 6936: a Linux receiver needs `udp6zerocsumrx`).
//!
//! The UDP source port carries the inner flow's entropy (RFC 7348 §5, RFC 8926 §3.3):
//! [`flow_entropy`] hashes the inner addresses and ports, and the port is taken from
//! 49152..=65535 (the dynamic range).
//!
//! Sizes: the path MTU is the underlay netdev's MTU (an IP MTU). The outer IP packet is
//! the inner frame (its Ethernet header included) + UDP 8 + encapsulation 8 + IP 20 (40
//! for IPv6), so the inner MTU (the instance's IP MTU) is the underlay MTU minus 50
//! (VXLAN or Geneve without options, IPv4) or 70 (IPv6): [`inner_mtu`]. A frame whose
//! outer packet would exceed the path MTU is refused ([`EncapError::TooBig`]; the caller
//! drops it with a counted reason), never fragmented.
//!
//! Decapsulation ([`decap`]) checks the outer headers: IPv4 (no options needed, not a
//! fragment, total length inside the frame) or IPv6 (UDP directly after the fixed
//! header), UDP to the expected port, then the encapsulation header: VXLAN with the I
//! flag; Geneve version 0, protocol 0x6558, not OAM, no critical option (we understand
//! none, RFC 8926 §3.5.1). It returns the inner frame's range in the buffer, the VNI and
//! the source VTEP. The UDP checksum is not verified (like every checksum in the
//! switch: the inner packet's own checksums protect the payload).
//!
//! Owns: the outer header layout, the entropy hash, the MTU arithmetic. May not touch:
//! which VTEP a frame goes to, what a VNI means (the pipeline's), I/O.

use std::net::IpAddr;
use std::ops::Range;

use crate::wire::{ethernet, geneve, ipv4, ipv6, udp, vxlan, Encap, Mac};

/// IPv4 ethertype.
const ETH_IPV4: u16 = 0x0800;
/// IPv6 ethertype.
const ETH_IPV6: u16 = 0x86dd;
/// UDP protocol number.
const PROTO_UDP: u8 = 17;
/// TTL / hop limit of the outer packet (Linux's default for tunnels).
const OUTER_TTL: u8 = 64;
/// Longest outer header: Ethernet 14 + IPv6 40 + UDP 8 + 8.
pub const MAX_HEADER_LEN: usize = 70;

/// Bytes the encapsulation adds to the inner frame inside the outer IP packet (outer IP
/// + UDP + VXLAN/Geneve header), for an outer IPv4 (`false`) or IPv6 (`true`) packet.
pub fn ip_overhead(ipv6: bool) -> usize {
    (if ipv6 {
        ipv6::HEADER_LEN
    } else {
        ipv4::HEADER_LEN
    }) + udp::HEADER_LEN
        + 8
}

/// The instance's IP MTU over an underlay of IP MTU `underlay_mtu`: minus 50 (IPv4) or
/// 70 (IPv6), the outer headers and the inner Ethernet header.
pub fn inner_mtu(underlay_mtu: usize, ipv6: bool) -> usize {
    underlay_mtu.saturating_sub(ip_overhead(ipv6) + ethernet::HEADER_LEN)
}

/// Why a frame was not encapsulated.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EncapError {
    /// The outer packet would exceed the path MTU.
    TooBig,
    /// The output buffer is too short.
    NoRoom,
}

/// The outer headers towards one destination, filled once.
#[derive(Clone, Debug)]
pub struct Template {
    hdr: [u8; MAX_HEADER_LEN],
    len: usize,
    ipv6: bool,
    /// One's-complement sum of the IPv4 header with total length and checksum 0.
    ip_sum: u32,
    /// Largest outer IP packet (the underlay's IP MTU).
    mtu: usize,
}

/// Where a template sends: addresses, UDP port, header kind, VNI.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Endpoints {
    pub src_mac: Mac,
    pub dst_mac: Mac,
    /// The local VTEP.
    pub src_ip: IpAddr,
    /// The remote VTEP (same family as `src_ip`).
    pub dst_ip: IpAddr,
    pub encap: Encap,
    /// UDP destination port (normally `encap.udp_port()`).
    pub dst_port: u16,
    pub vni: u32,
}

/// Sum of big-endian 16-bit words (no folding).
fn sum16(b: &[u8]) -> u32 {
    b.chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum()
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

impl Template {
    /// The template for `ep` over a path of IP MTU `mtu`; `None` when the two addresses
    /// are of different families.
    pub fn new(ep: &Endpoints, mtu: usize) -> Option<Template> {
        let mut h = [0u8; MAX_HEADER_LEN];
        h[0..6].copy_from_slice(&ep.dst_mac.0);
        h[6..12].copy_from_slice(&ep.src_mac.0);
        let (ipv6, ip_len) = match (ep.src_ip, ep.dst_ip) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                h[12..14].copy_from_slice(&ETH_IPV4.to_be_bytes());
                let ip = &mut h[14..34];
                ip[0] = 0x45;
                ip[6..8].copy_from_slice(&ipv4::FLAG_DF.to_be_bytes());
                ip[8] = OUTER_TTL;
                ip[9] = PROTO_UDP;
                ip[12..16].copy_from_slice(&s.octets());
                ip[16..20].copy_from_slice(&d.octets());
                (false, ipv4::HEADER_LEN)
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                h[12..14].copy_from_slice(&ETH_IPV6.to_be_bytes());
                let ip = &mut h[14..54];
                ip[0] = 0x60;
                ip[6] = PROTO_UDP;
                ip[7] = OUTER_TTL;
                ip[8..24].copy_from_slice(&s.octets());
                ip[24..40].copy_from_slice(&d.octets());
                (true, ipv6::HEADER_LEN)
            }
            _ => return None,
        };
        let u = ethernet::HEADER_LEN + ip_len;
        h[u + 2..u + 4].copy_from_slice(&ep.dst_port.to_be_bytes());
        let e = u + udp::HEADER_LEN;
        let written = match ep.encap {
            Encap::Vxlan => vxlan::emit(&mut h[e..], ep.vni),
            Encap::Geneve => geneve::emit(&mut h[e..], ep.vni),
        };
        written.ok()?;
        let len = e + ep.encap.header_len();
        let ip_sum = if ipv6 {
            0
        } else {
            sum16(&h[ethernet::HEADER_LEN..u])
        };
        Some(Template {
            hdr: h,
            len,
            ipv6,
            ip_sum,
            mtu,
        })
    }

    /// Length of the outer headers (50 for IPv4, 70 for IPv6).
    pub fn header_len(&self) -> usize {
        self.len
    }

    /// Largest inner frame this template carries (Ethernet header included).
    pub fn max_inner_frame(&self) -> usize {
        self.mtu.saturating_sub(ip_overhead(self.ipv6))
    }

    /// Write the outer headers for an inner frame of `inner_len` bytes into
    /// `out[..header_len()]` (the inner frame is to follow them). `entropy` is
    /// [`flow_entropy`] of the inner frame.
    #[inline]
    pub fn write_header(
        &self,
        out: &mut [u8],
        inner_len: usize,
        entropy: u16,
    ) -> Result<(), EncapError> {
        if inner_len > self.max_inner_frame() {
            return Err(EncapError::TooBig);
        }
        let Some(h) = out.get_mut(..self.len) else {
            return Err(EncapError::NoRoom);
        };
        h.copy_from_slice(&self.hdr[..self.len]);
        let ip = ethernet::HEADER_LEN;
        let udp_len = inner_len + self.len - ip - if self.ipv6 { 40 } else { 20 };
        // Both fit in u16 for any real MTU; refuse rather than wrap otherwise.
        let udp_len16 = u16::try_from(udp_len).map_err(|_| EncapError::TooBig)?;
        if self.ipv6 {
            h[ip + 4..ip + 6].copy_from_slice(&udp_len16.to_be_bytes());
        } else {
            let total = u16::try_from(udp_len + 20).map_err(|_| EncapError::TooBig)?;
            h[ip + 2..ip + 4].copy_from_slice(&total.to_be_bytes());
            let csum = !fold(self.ip_sum + u32::from(total));
            h[ip + 10..ip + 12].copy_from_slice(&csum.to_be_bytes());
        }
        let u = ip + if self.ipv6 { 40 } else { 20 };
        let sport = 0xc000 | (entropy & 0x3fff);
        h[u..u + 2].copy_from_slice(&sport.to_be_bytes());
        h[u + 4..u + 6].copy_from_slice(&udp_len16.to_be_bytes());
        Ok(())
    }

    /// Encapsulate `inner` into `out`: the outer headers, then a copy of `inner`.
    /// Returns the outer frame's length.
    #[inline]
    pub fn encap_into(&self, out: &mut [u8], inner: &[u8]) -> Result<usize, EncapError> {
        let total = self.len + inner.len();
        if out.len() < total {
            return Err(if inner.len() > self.max_inner_frame() {
                EncapError::TooBig
            } else {
                EncapError::NoRoom
            });
        }
        self.write_header(out, inner.len(), flow_entropy(inner))?;
        out[self.len..total].copy_from_slice(inner);
        Ok(total)
    }
}

/// A 16-bit hash of the inner frame's flow: MAC addresses, and for IPv4/IPv6 the
/// addresses, the protocol and (TCP/UDP/SCTP, unfragmented IPv4) the ports. Reads at
/// most the first 58 bytes; any input is fine (short frames hash what they have).
#[inline]
pub fn flow_entropy(inner: &[u8]) -> u16 {
    let mut h: u32 = 0x811c_9dc5;
    let mut mix = |b: &[u8]| {
        for &x in b {
            h = (h ^ u32::from(x)).wrapping_mul(0x0100_0193);
        }
    };
    let Ok(eth) = ethernet::Frame::new_checked(inner) else {
        mix(inner);
        return fold(h);
    };
    mix(&inner[..12]);
    let l3 = eth.payload();
    let ports_at = match eth.ethertype() {
        ETH_IPV4 if l3.len() >= ipv4::HEADER_LEN => {
            let ip = ipv4::Packet::new_unchecked(l3);
            mix(&l3[9..10]);
            mix(&l3[12..20]);
            let unfragmented = !ip.more_frags() && ip.frag_offset() == 0;
            (unfragmented && matches!(ip.protocol(), 6 | 17 | 132)).then(|| ip.header_len())
        }
        ETH_IPV6 if l3.len() >= ipv6::HEADER_LEN => {
            mix(&l3[6..7]);
            mix(&l3[8..40]);
            matches!(l3[6], 6 | 17 | 132).then_some(ipv6::HEADER_LEN)
        }
        _ => None,
    };
    if let Some(p) = ports_at.and_then(|at| l3.get(at..at + 4)) {
        mix(p);
    }
    fold(h)
}

/// Why a frame from the underlay was not decapsulated.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DecapError {
    /// Not for us: not IPv4/IPv6 UDP to the tunnel port (ARP, other traffic): the
    /// kernel's, not a drop of the switch.
    NotTunnel,
    /// A tunnel packet with a malformed outer or encapsulation header, an outer
    /// fragment, a VXLAN header without the I flag, a Geneve OAM packet, a critical
    /// option, or a payload that is not Ethernet.
    Malformed,
}

/// A decapsulated frame: where the inner frame is, on which VNI, from which VTEP.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Decapped {
    /// The inner Ethernet frame's byte range in the outer frame.
    pub inner: Range<usize>,
    pub vni: u32,
    /// The outer source address (the sending host's VTEP).
    pub src_vtep: IpAddr,
    /// The outer destination address (to compare with the local VTEP).
    pub dst_vtep: IpAddr,
}

/// Decapsulate an outer Ethernet frame of kind `encap` arriving on UDP port `port`.
pub fn decap(frame: &[u8], encap: Encap, port: u16) -> Result<Decapped, DecapError> {
    let eth = ethernet::Frame::new_checked(frame).map_err(|_| DecapError::NotTunnel)?;
    let l3 = eth.payload();
    let (udp_off, udp_bytes, src_vtep, dst_vtep) = match eth.ethertype() {
        ETH_IPV4 => {
            let ip = ipv4::Packet::new_checked(l3).map_err(|_| DecapError::NotTunnel)?;
            if ip.protocol() != PROTO_UDP {
                return Err(DecapError::NotTunnel);
            }
            if ip.more_frags() || ip.frag_offset() != 0 {
                return Err(DecapError::Malformed);
            }
            (
                ip.header_len(),
                &l3[ip.header_len()..usize::from(ip.total_len())],
                IpAddr::from(ip.src_addr()),
                IpAddr::from(ip.dst_addr()),
            )
        }
        ETH_IPV6 => {
            let ip = ipv6::Packet::new_checked(l3).map_err(|_| DecapError::NotTunnel)?;
            if ip.next_header() != PROTO_UDP {
                return Err(DecapError::NotTunnel);
            }
            (
                ipv6::HEADER_LEN,
                &l3[ipv6::HEADER_LEN..ipv6::HEADER_LEN + usize::from(ip.payload_len())],
                IpAddr::from(ip.src_addr()),
                IpAddr::from(ip.dst_addr()),
            )
        }
        _ => return Err(DecapError::NotTunnel),
    };
    let u = udp::Packet::new_checked(udp_bytes).map_err(|_| DecapError::NotTunnel)?;
    if u.dst_port() != port {
        return Err(DecapError::NotTunnel);
    }
    let payload = u.payload();
    let (hdr_len, vni) = match encap {
        Encap::Vxlan => {
            let v = vxlan::Packet::new_checked(payload).map_err(|_| DecapError::Malformed)?;
            if !v.vni_valid() {
                return Err(DecapError::Malformed);
            }
            (vxlan::HEADER_LEN, v.vni())
        }
        Encap::Geneve => {
            let g = geneve::Packet::new_checked(payload).map_err(|_| DecapError::Malformed)?;
            if g.protocol() != geneve::PROTO_ETHERNET
                || g.oam()
                || g.critical()
                || g.has_critical_option()
            {
                return Err(DecapError::Malformed);
            }
            (g.header_len(), g.vni())
        }
    };
    let start = ethernet::HEADER_LEN + udp_off + udp::HEADER_LEN + hdr_len;
    let end = start + (payload.len() - hdr_len);
    if end - start < ethernet::HEADER_LEN {
        return Err(DecapError::Malformed);
    }
    Ok(Decapped {
        inner: start..end,
        vni,
        src_vtep,
        dst_vtep,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(encap: Encap, v6: bool) -> Endpoints {
        let (s, d): (IpAddr, IpAddr) = if v6 {
            ("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap())
        } else {
            ("10.9.0.1".parse().unwrap(), "10.9.0.2".parse().unwrap())
        };
        Endpoints {
            src_mac: Mac([2, 0, 0, 0, 0, 1]),
            dst_mac: Mac([2, 0, 0, 0, 0, 2]),
            src_ip: s,
            dst_ip: d,
            encap,
            dst_port: encap.udp_port(),
            vni: 0x12_3456,
        }
    }

    /// An inner Ethernet/IPv4/UDP frame of `len` bytes.
    fn inner(len: usize) -> Vec<u8> {
        let mut f = vec![0u8; len];
        f[0..6].copy_from_slice(&[2, 0, 0, 0, 0xa, 1]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0xa, 2]);
        f[12..14].copy_from_slice(&ETH_IPV4.to_be_bytes());
        f[14] = 0x45;
        f[16..18].copy_from_slice(&((len - 14) as u16).to_be_bytes());
        f[23] = 17;
        f[26..30].copy_from_slice(&[10, 0, 0, 1]);
        f[30..34].copy_from_slice(&[10, 0, 0, 2]);
        f[34..36].copy_from_slice(&1234u16.to_be_bytes());
        f[36..38].copy_from_slice(&53u16.to_be_bytes());
        f
    }

    #[test]
    fn overheads_and_inner_mtu() {
        assert_eq!(inner_mtu(1500, false), 1450);
        assert_eq!(inner_mtu(1500, true), 1430);
        for (e, v6, len) in [
            (Encap::Vxlan, false, 50),
            (Encap::Geneve, false, 50),
            (Encap::Geneve, true, 70),
        ] {
            assert_eq!(Template::new(&ep(e, v6), 1500).unwrap().header_len(), len);
        }
        let mixed = Endpoints {
            dst_ip: "fd00::2".parse().unwrap(),
            ..ep(Encap::Vxlan, false)
        };
        assert!(Template::new(&mixed, 1500).is_none());
    }

    #[test]
    fn encap_then_decap_round_trips_and_the_outer_headers_are_valid() {
        for (e, v6) in [
            (Encap::Vxlan, false),
            (Encap::Geneve, false),
            (Encap::Geneve, true),
            (Encap::Vxlan, true),
        ] {
            let t = Template::new(&ep(e, v6), 1500).unwrap();
            let f = inner(100);
            let mut out = [0u8; 2048];
            let n = t.encap_into(&mut out, &f).unwrap();
            assert_eq!(n, t.header_len() + 100);
            let d = decap(&out[..n], e, e.udp_port()).unwrap();
            assert_eq!(&out[d.inner.clone()], &f[..], "{e:?} v6={v6}");
            assert_eq!(d.vni, 0x12_3456);
            assert_eq!(d.src_vtep, ep(e, v6).src_ip);
            if !v6 {
                // The IPv4 header checksum verifies (the sum over the header is 0xffff).
                assert_eq!(fold(sum16(&out[14..34])), 0xffff);
                assert_eq!(u16::from_be_bytes([out[16], out[17]]) as usize, n - 14);
                assert_eq!(&out[20..22], &[0x40, 0]); // DF
            }
            let u = 14 + if v6 { 40 } else { 20 };
            let sport = u16::from_be_bytes([out[u], out[u + 1]]);
            assert!(sport >= 0xc000);
            assert_eq!(u16::from_be_bytes([out[u + 4], out[u + 5]]) as usize, n - u);
            assert_eq!(&out[u + 6..u + 8], &[0, 0]); // UDP checksum 0
                                                     // Wrong kind or port: not ours.
            assert_eq!(
                decap(&out[..n], e, 9999).unwrap_err(),
                DecapError::NotTunnel
            );
        }
    }

    #[test]
    fn the_mtu_edge_is_exact() {
        let t = Template::new(&ep(Encap::Geneve, false), 1500).unwrap();
        let mut out = [0u8; 2048];
        // Inner IP packet of 1450 bytes (the inner MTU): frame of 1464 bytes, outer IP 1500.
        let n = t.encap_into(&mut out, &inner(1464)).unwrap();
        assert_eq!(n - 14, 1500);
        assert_eq!(
            t.encap_into(&mut out, &inner(1465)),
            Err(EncapError::TooBig)
        );
        assert_eq!(
            t.encap_into(&mut out[..100], &inner(200)),
            Err(EncapError::NoRoom)
        );
    }

    #[test]
    fn entropy_follows_the_flow() {
        let a = inner(100);
        let mut b = a.clone();
        b[34] ^= 1; // another source port
        let mut c = a.clone();
        c[60] ^= 1; // payload only
        assert_ne!(flow_entropy(&a), flow_entropy(&b));
        assert_eq!(flow_entropy(&a), flow_entropy(&c));
        for n in 0..60 {
            let _ = flow_entropy(&a[..n]);
        }
    }

    #[test]
    fn bad_tunnel_packets_are_refused() {
        let t = Template::new(&ep(Encap::Geneve, false), 1500).unwrap();
        let mut out = [0u8; 2048];
        let n = t.encap_into(&mut out, &inner(100)).unwrap();
        let g = 14 + 20 + 8;
        for (at, val) in [
            (g + 1, geneve::FLAG_OAM),
            (g + 1, geneve::FLAG_CRITICAL),
            (g + 2, 0x08),
        ] {
            let mut bad = out;
            bad[at] = val;
            assert_eq!(
                decap(&bad[..n], Encap::Geneve, 6081).unwrap_err(),
                DecapError::Malformed
            );
        }
        // An outer fragment.
        let mut frag = out;
        frag[20] = 0x20;
        assert_eq!(
            decap(&frag[..n], Encap::Geneve, 6081).unwrap_err(),
            DecapError::Malformed
        );
        // VXLAN without the I flag.
        let t = Template::new(&ep(Encap::Vxlan, false), 1500).unwrap();
        let n = t.encap_into(&mut out, &inner(100)).unwrap();
        out[g] = 0;
        assert_eq!(
            decap(&out[..n], Encap::Vxlan, 4789).unwrap_err(),
            DecapError::Malformed
        );
        // Truncations never panic.
        for k in 0..n {
            let _ = decap(&out[..k], Encap::Vxlan, 4789);
        }
    }
}
