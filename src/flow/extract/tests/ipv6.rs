//! IPv6 fixtures: TCP, extension header chains (and their malformed forms), ICMPv6
//! messages (echo, neighbour solicitation and advertisement, router advertisement) and
//! ICMPv6 errors with their quoted packet.

use super::*;

#[rustfmt::skip]
const TCP_ACK_443: [u8; 20] = [
    0x9c, 0x40, 0x01, 0xbb,             // 40000 -> 443
    0x00, 0x00, 0x00, 0x0a,             // sequence 10
    0x00, 0x00, 0x00, 0x14,             // ack 20
    0x50, 0x10,                         // data offset 5, ACK
    0x01, 0x00,                         // window 256
    0x00, 0x00, 0x00, 0x00,
];

#[test]
fn ipv6_tcp() {
    let f = ipv6_frame(proto::TCP, &TCP_ACK_443);
    let m = extract(&f).unwrap();
    assert_eq!(m.l3, L3Kind::Ipv6);
    assert_eq!(
        (m.key.src, m.key.dst, m.key.family),
        (V6_A, V6_B, FAMILY_V6)
    );
    assert_eq!(m.key.src_ip().to_string(), "2001:db8::a");
    assert_eq!((m.key.proto, m.key.sport, m.key.dport), (6, 40000, 443));
    assert_eq!(
        (m.tcp_flags, m.tcp_seq, m.tcp_ack, m.tcp_window),
        (0x10, 10, 20, 256)
    );
    assert_eq!(
        (m.hop_limit, m.ip_len, m.l3_offset, m.l4_offset),
        (64, 60, 14, 54)
    );
    assert_eq!(err(&f[..53]), (Layer::Ipv6, K::Truncated));
    assert_eq!(err(&f[..60]), (Layer::Ipv6, K::BadPayloadLength));
    let mut bad = f.clone();
    bad[14] = 0x40;
    assert_eq!(err(&bad), (Layer::Ipv6, K::BadVersion));
    // Ethernet padding after the payload is fine.
    let mut padded = f.clone();
    padded.extend_from_slice(&[0; 6]);
    assert_eq!(extract(&padded).unwrap().key, m.key);
}

/// Hop-by-hop + destination options + fragment (first, M=1) + UDP 546 -> 547.
#[rustfmt::skip]
const EXT_CHAIN_UDP: [u8; 40] = [
    // hop-by-hop (offset 54)
    60,                                 // next: destination options
    0,                                  // length 0 -> 8 bytes
    0x05, 0x02, 0x00, 0x00,             // router alert (MLD)
    0x01, 0x00,                         // PadN, 0 data bytes
    // destination options (offset 62)
    44,                                 // next: fragment
    0,
    0x01, 0x04, 0x00, 0x00, 0x00, 0x00, // PadN, 4 data bytes
    // fragment (offset 70)
    17,                                 // next: UDP
    0,                                  // reserved
    0x00, 0x01,                         // offset 0, M = 1
    0x00, 0x00, 0xca, 0xfe,             // identification
    // UDP (offset 78)
    0x02, 0x22, 0x02, 0x23,             // 546 -> 547
    0x00, 0x10, 0x00, 0x00,             // length 16
    1, 2, 3, 4, 5, 6, 7, 8,
];

#[test]
fn ipv6_extension_headers() {
    let m = extract(&ipv6_frame(proto::HOPOPT, &EXT_CHAIN_UDP)).unwrap();
    assert_eq!(
        (m.key.proto, m.key.sport, m.key.dport),
        (proto::UDP, 546, 547)
    );
    assert_eq!(m.l4_offset, 78);
    assert!(m.frag.is_fragment && m.frag.more && !m.frag.is_later_fragment());
    assert_eq!(m.frag.id, 0xcafe);
    // The fragment's data: what follows the fragment header (UDP, 16 bytes).
    assert_eq!((m.frag.len, m.frag.tiny), (16, false));
    // In this first fragment the UDP length may count the whole datagram.
    let mut long = EXT_CHAIN_UDP;
    long[28] = 0x05;
    let m = extract(&ipv6_frame(proto::HOPOPT, &long)).unwrap();
    assert_eq!((m.key.sport, m.key.dport), (546, 547));

    // Later fragment: protocol from the fragment header, no ports, no L4 offset.
    #[rustfmt::skip]
    let later = [
        17, 0, 0x00, 0xb8,              // next UDP, offset 23 (184 bytes), M = 0
        0, 0, 0xca, 0xfe,
        0xff, 0xff, 0xff,               // data
    ];
    let m = extract(&ipv6_frame(proto::IPV6_FRAG, &later)).unwrap();
    assert!(m.frag.is_later_fragment());
    assert_eq!((m.frag.offset, m.frag.id, m.frag.len), (23, 0xcafe, 3));
    assert_eq!(
        (m.key.proto, m.key.sport, m.key.dport, m.l4_offset),
        (17, 0, 0, 0)
    );

    // AH (length 4 -> 24 bytes) then TCP.
    let ah = cat(&[
        &[6, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1],
        &[0u8; 12],
        &TCP_ACK_443,
    ]);
    let m = extract(&ipv6_frame(proto::AH, &ah)).unwrap();
    assert_eq!((m.key.proto, m.key.dport, m.l4_offset), (6, 443, 78));
    assert_eq!(
        err(&ipv6_frame(proto::AH, &[6, 0, 0, 0, 0, 0, 0, 1])),
        (Layer::Ipv6Ext, K::BadExtHeader)
    );

    // ESP and No Next Header end the walk with ports 0.
    let m = extract(&ipv6_frame(proto::ESP, &[0, 0, 1, 0, 0, 0, 0, 1, 0xaa])).unwrap();
    assert_eq!(
        (m.key.proto, m.key.sport, m.key.dport, m.l4_offset),
        (50, 0, 0, 54)
    );
    let m = extract(&ipv6_frame(proto::IPV6_OPTS, &[59, 0, 1, 4, 0, 0, 0, 0])).unwrap();
    assert_eq!((m.key.proto, m.key.sport, m.l4_offset), (59, 0, 0));

    // Routing header (type 2, one address) then TCP.
    let rh = cat(&[&[6, 2, 2, 1, 0, 0, 0, 0], &V6_B, &TCP_ACK_443]);
    let m = extract(&ipv6_frame(proto::IPV6_ROUTE, &rh)).unwrap();
    assert_eq!((m.key.proto, m.key.dport, m.l4_offset), (6, 443, 78));
}

#[test]
fn ipv6_extension_header_errors() {
    // Nine destination options headers.
    let mut nine = Vec::new();
    for i in 0..9 {
        nine.extend_from_slice(&[if i == 8 { 59 } else { 60 }, 0, 1, 4, 0, 0, 0, 0]);
    }
    assert_eq!(
        err(&ipv6_frame(proto::IPV6_OPTS, &nine)),
        (Layer::Ipv6Ext, K::TooManyExtHeaders)
    );
    // Eight are walked.
    nine[56] = 59;
    assert_eq!(
        extract(&ipv6_frame(proto::IPV6_OPTS, &nine[..64]))
            .unwrap()
            .key
            .proto,
        59
    );
    // Hop-by-hop not first.
    assert_eq!(
        err(&ipv6_frame(
            proto::IPV6_OPTS,
            &[0, 0, 1, 4, 0, 0, 0, 0, 59, 0, 1, 4, 0, 0, 0, 0]
        )),
        (Layer::Ipv6Ext, K::BadExtHeader)
    );
    // Extension header longer than the payload.
    assert_eq!(
        err(&ipv6_frame(proto::HOPOPT, &EXT_CHAIN_UDP[..4])),
        (Layer::Ipv6Ext, K::Truncated)
    );
    assert_eq!(
        err(&ipv6_frame(proto::IPV6_ROUTE, &[6, 1, 0, 0, 0, 0, 0, 0])),
        (Layer::Ipv6Ext, K::Truncated)
    );
    // Option running past its header.
    assert_eq!(
        err(&ipv6_frame(proto::HOPOPT, &[59, 0, 1, 5, 0, 0, 0, 0])),
        (Layer::Ipv6Ext, K::BadOption)
    );
    // Payload ends in the middle of the UDP header behind the chain: in this first
    // fragment that is a tiny fragment (RFC 7112), no ports; unfragmented, malformed.
    let m = extract(&ipv6_frame(proto::HOPOPT, &EXT_CHAIN_UDP[..28])).unwrap();
    assert!(m.frag.tiny && m.frag.more && m.frag.offset == 0);
    assert_eq!((m.key.proto, m.key.sport, m.key.dport), (proto::UDP, 0, 0));
    assert_eq!((m.frag.id, m.frag.len, m.l4_offset), (0xcafe, 4, 0));
    assert_eq!(
        err(&ipv6_frame(proto::UDP, &EXT_CHAIN_UDP[24..28])),
        (Layer::Udp, K::Truncated)
    );
    // The chain itself cut after the fragment header (destination options claiming 16
    // bytes, 8 present): tiny too. Cut before the fragment header: malformed.
    let mut cut = EXT_CHAIN_UDP[..32].to_vec();
    cut[16] = 60; // fragment: next destination options
    cut[24..32].copy_from_slice(&[17, 1, 1, 4, 0, 0, 0, 0]);
    let m = extract(&ipv6_frame(proto::HOPOPT, &cut)).unwrap();
    assert!(m.frag.tiny);
    assert_eq!((m.frag.len, m.key.sport), (8, 0));
    assert_eq!(
        err(&ipv6_frame(proto::HOPOPT, &cut[..12])),
        (Layer::Ipv6Ext, K::Truncated)
    );
    // Not a fragment header with M = 1: the cut chain is malformed.
    cut[19] = 0x00;
    assert_eq!(
        err(&ipv6_frame(proto::HOPOPT, &cut)),
        (Layer::Ipv6Ext, K::Truncated)
    );
    // UDP length below a header (in a first fragment, a longer one would be fine).
    let mut bad = EXT_CHAIN_UDP;
    bad[29] = 0x04;
    assert_eq!(
        err(&ipv6_frame(proto::HOPOPT, &bad)),
        (Layer::Udp, K::BadUdpLength)
    );
}

#[test]
fn icmpv6_messages() {
    // Echo request id 0x1234.
    let m = extract(&ipv6_frame(
        proto::ICMPV6,
        &[128, 0, 0, 0, 0x12, 0x34, 0, 1],
    ))
    .unwrap();
    assert!(m.key.is_icmp());
    assert_eq!((m.key.dport, m.key.sport), (0x8000, 0x1234));
    // Echo reply.
    let m = extract(&ipv6_frame(
        proto::ICMPV6,
        &[129, 0, 0, 0, 0x12, 0x34, 0, 1],
    ))
    .unwrap();
    assert_eq!((m.key.dport, m.key.sport), (0x8100, 0x1234));
    // Neighbour solicitation for 2001:db8::b, with a source link-layer address option.
    let ns = cat(&[&[135, 0, 0, 0, 0, 0, 0, 0], &V6_B, &[1, 1], &MAC_A]);
    let m = extract(&ipv6_frame(proto::ICMPV6, &ns)).unwrap();
    assert_eq!(
        (m.key.dport, m.has_nd_target, m.nd_target),
        (0x8700, true, V6_B)
    );
    // Neighbour advertisement (solicited, override) for 2001:db8::a.
    let na = cat(&[&[136, 0, 0, 0, 0x60, 0, 0, 0], &V6_A]);
    let m = extract(&ipv6_frame(proto::ICMPV6, &na)).unwrap();
    assert_eq!((m.key.icmp_type(), m.nd_target), (136, V6_A));
    assert_eq!(
        err(&ipv6_frame(proto::ICMPV6, &na[..20])),
        (Layer::Icmpv6, K::Truncated)
    );
    assert_eq!(
        err(&ipv6_frame(proto::ICMPV6, &[128, 0, 0, 0, 0x12])),
        (Layer::Icmpv6, K::Truncated)
    );
    // Router advertisement: type/code only.
    let ra = [134, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let m = extract(&ipv6_frame(proto::ICMPV6, &ra)).unwrap();
    assert_eq!(
        (m.key.dport, m.key.sport, m.has_nd_target),
        (0x8600, 0, false)
    );
    // ICMP (v4 protocol number) inside IPv6 is just a protocol without ports.
    let m = extract(&ipv6_frame(proto::ICMP, &[8, 0, 0, 0, 0x12, 0x34, 0, 1])).unwrap();
    assert_eq!((m.key.proto, m.key.dport, m.key.sport), (1, 0, 0));
    assert!(!m.key.is_icmp());
}

#[test]
fn icmpv6_errors() {
    // Port unreachable (1/4) about UDP 2001:db8::b:5353 -> 2001:db8::a:53.
    #[rustfmt::skip]
    let quote = cat(&[
        &[1, 4, 0, 0, 0, 0, 0, 0],      // destination unreachable, port unreachable
        &[0x60, 0, 0, 0, 0, 16, 17, 64],// quoted IPv6: payload 16, UDP
        &V6_B, &V6_A,
        &[0x14, 0xe9, 0x00, 0x35, 0x00, 0x10, 0x00, 0x00], // UDP 5353 -> 53
    ]);
    let m = extract(&ipv6_frame(proto::ICMPV6, &quote)).unwrap();
    assert_eq!(m.key.dport, 0x0104);
    let inner = m.icmp_inner;
    assert_eq!(
        (inner.family, inner.src, inner.dst),
        (FAMILY_V6, V6_B, V6_A)
    );
    assert_eq!((inner.proto, inner.sport, inner.dport), (17, 5353, 53));
    // Truncated quote: inner key absent, message still valid.
    let m = extract(&ipv6_frame(proto::ICMPV6, &quote[..50])).unwrap();
    assert_eq!((m.key.dport, m.icmp_inner.family), (0x0104, 0));
    let m = extract(&ipv6_frame(proto::ICMPV6, &quote[..30])).unwrap();
    assert_eq!(m.icmp_inner, FlowKey::default());

    // Packet too big about a first-fragment TCP segment behind a fragment header.
    #[rustfmt::skip]
    let ptb = cat(&[
        &[2, 0, 0, 0, 0, 0, 0x05, 0x00],// packet too big, MTU 1280
        &[0x60, 0, 0, 0, 0x05, 0x10, 44, 64],
        &V6_A, &V6_B,
        &[6, 0, 0, 1, 0, 0, 0, 9],      // fragment: next TCP, offset 0, M
        &TCP_ACK_443[..8],
    ]);
    let m = extract(&ipv6_frame(proto::ICMPV6, &ptb)).unwrap();
    let inner = m.icmp_inner;
    assert_eq!((inner.proto, inner.sport, inner.dport), (6, 40000, 443));
    // Time exceeded about an echo request.
    #[rustfmt::skip]
    let te = cat(&[
        &[3, 0, 0, 0, 0, 0, 0, 0],
        &[0x60, 0, 0, 0, 0, 8, 58, 1], &V6_A, &V6_B,
        &[128, 0, 0, 0, 0xab, 0xcd, 0, 1],
    ]);
    let inner = extract(&ipv6_frame(proto::ICMPV6, &te)).unwrap().icmp_inner;
    assert_eq!(
        (inner.proto, inner.dport, inner.sport),
        (58, 0x8000, 0xabcd)
    );
}
