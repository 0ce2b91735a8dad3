//! Frame builders for tests and benchmarks (not used by the dataplane).
//!
//! Frames carry valid IPv4 header checksums and lengths; L4 checksums are left zero
//! (the switch never verifies them).
//!
//! Owns: building frames byte by byte. May not touch: the parser (`wire`, `flow`): the
//! frames are independent input for it.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::wire::Mac;

fn eth(dst: Mac, src: Mac, ethertype: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(128);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in h.chunks(2) {
        sum += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// IPv4 packet parameters.
#[derive(Clone, Copy, Debug)]
pub struct V4 {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    pub id: u16,
    /// Fragment offset in 8-byte units.
    pub frag_offset: u16,
    pub more_fragments: bool,
}

impl V4 {
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr, proto: u8) -> V4 {
        V4 {
            src,
            dst,
            proto,
            id: 1,
            frag_offset: 0,
            more_fragments: false,
        }
    }
}

/// Ethernet + IPv4 header + `payload`.
pub fn ipv4_frame(
    dst_mac: impl Into<Mac>,
    src_mac: impl Into<Mac>,
    ip: V4,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = eth(dst_mac.into(), src_mac.into(), 0x0800);
    let total = 20 + payload.len();
    let flags_off = ((ip.more_fragments as u16) << 13) | (ip.frag_offset & 0x1fff);
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    h[4..6].copy_from_slice(&ip.id.to_be_bytes());
    h[6..8].copy_from_slice(&flags_off.to_be_bytes());
    h[8] = 64;
    h[9] = ip.proto;
    h[12..16].copy_from_slice(&ip.src.octets());
    h[16..20].copy_from_slice(&ip.dst.octets());
    let c = ipv4_checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&h);
    f.extend_from_slice(payload);
    f
}

/// A TCP header (20 bytes) with the given flags, followed by `data`.
pub fn tcp(sport: u16, dport: u16, flags: u8, seq: u32, ack: u32, data: &[u8]) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = flags;
    t[14..16].copy_from_slice(&64240u16.to_be_bytes());
    t.extend_from_slice(data);
    t
}

/// A UDP header followed by `data`.
pub fn udp(sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut u = vec![0u8; 8];
    u[0..2].copy_from_slice(&sport.to_be_bytes());
    u[2..4].copy_from_slice(&dport.to_be_bytes());
    u[4..6].copy_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    u.extend_from_slice(data);
    u
}

/// An ICMP/ICMPv6 message: type, code, then `rest` (4 bytes id/seq or unused, + data).
pub fn icmp(ty: u8, code: u8, rest: &[u8]) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0];
    m.extend_from_slice(rest);
    m
}

/// Ethernet + IPv6 header + `payload` (`next` is the first next-header value).
pub fn ipv6_frame(
    dst_mac: impl Into<Mac>,
    src_mac: impl Into<Mac>,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = eth(dst_mac.into(), src_mac.into(), 0x86dd);
    let mut h = [0u8; 40];
    h[0] = 0x60;
    h[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
    h[6] = next;
    h[7] = 64;
    h[8..24].copy_from_slice(&src.octets());
    h[24..40].copy_from_slice(&dst.octets());
    f.extend_from_slice(&h);
    f.extend_from_slice(payload);
    f
}

/// An ARP frame (Ethernet/IPv4).
pub fn arp(
    dst_mac: impl Into<Mac>,
    src_mac: impl Into<Mac>,
    op: u16,
    sha: impl Into<Mac>,
    spa: Ipv4Addr,
    tha: impl Into<Mac>,
    tpa: Ipv4Addr,
) -> Vec<u8> {
    let mut f = eth(dst_mac.into(), src_mac.into(), 0x0806);
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&sha.into().0);
    f.extend_from_slice(&spa.octets());
    f.extend_from_slice(&tha.into().0);
    f.extend_from_slice(&tpa.octets());
    f
}

/// Pad a frame to the 60-byte Ethernet minimum (without FCS).
pub fn pad(mut f: Vec<u8>) -> Vec<u8> {
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}
