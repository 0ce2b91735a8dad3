//! Fixture frames as annotated byte arrays, valid and malformed, for every protocol
//! [`extract`](fn@super::extract) knows. Checksums are zero: they are not verified.
//!
//! [`l2`]: VLAN, ARP, other ethertypes; [`ipv4`]: IPv4 with TCP, UDP, options,
//! fragments, UDP-Lite, SCTP, DCCP; [`icmp`]: ICMP queries and errors; [`ipv6`]: IPv6,
//! extension headers, ICMPv6.
use super::*;
use crate::flow::tcp_flags;
use ParseErrorKind as K;

mod icmp;
mod ipv4;
mod ipv6;
mod l2;

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn err(frame: &[u8]) -> (Layer, ParseErrorKind) {
    let e = extract(frame).expect_err("frame should be rejected");
    (e.layer, e.kind)
}

const MAC_A: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x0a];
const MAC_B: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x0b];
/// 2001:db8::a
const V6_A: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a,
];
/// 2001:db8::b
const V6_B: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b,
];

fn ipv4_frame(protocol: u8, l4: &[u8]) -> Vec<u8> {
    let total = (20 + l4.len()) as u16;
    #[rustfmt::skip]
    let ip = [
        0x45, 0x00, (total >> 8) as u8, total as u8,
        0x00, 0x00, 0x00, 0x00,
        0x40, protocol, 0x00, 0x00,
        10, 0, 0, 1, 10, 0, 0, 2,
    ];
    cat(&[&MAC_B, &MAC_A, &[0x08, 0x00], &ip, l4])
}

fn ipv6_frame(next_header: u8, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u16;
    #[rustfmt::skip]
    let fixed = [
        0x60, 0x00, 0x00, 0x00,         // version 6, traffic class 0, flow label 0
        (len >> 8) as u8, len as u8,    // payload length
        next_header,
        64,                             // hop limit
    ];
    cat(&[&MAC_B, &MAC_A, &[0x86, 0xdd], &fixed, &V6_A, &V6_B, payload])
}

/// Port unreachable from 10.0.0.2 to 10.0.0.1 about UDP 10.0.0.1:5353 -> 10.0.0.2:53.
#[rustfmt::skip]
const ICMP_PORT_UNREACH: [u8; 70] = [
    0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0b, 0x08, 0x00,
    // outer IPv4 (offset 14)
    0x45, 0x00, 0x00, 0x38,             // total length 56 = 20 + 8 + 28
    0x00, 0x03, 0x00, 0x00,
    0x40, 0x01, 0x00, 0x00,             // ICMP
    10, 0, 0, 2,                        // source: the host that reports
    10, 0, 0, 1,                        // destination: the original sender
    // ICMP (offset 34)
    0x03,                               // destination unreachable
    0x03,                               // port unreachable
    0x00, 0x00,                         // checksum
    0x00, 0x00, 0x00, 0x00,             // unused
    // quoted IPv4 header (offset 42)
    0x45, 0x00, 0x00, 0x30,             // total length 48 of the original
    0x00, 0x09, 0x00, 0x00,
    0x40, 0x11, 0x00, 0x00,             // UDP
    10, 0, 0, 1,                        // original source
    10, 0, 0, 2,                        // original destination
    // first 8 bytes of the quoted UDP datagram (offset 62)
    0x14, 0xe9, 0x00, 0x35,             // 5353 -> 53
    0x00, 0x1c, 0x00, 0x00,             // length 28, checksum
];
