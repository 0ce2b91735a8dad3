//! IPv4 fixtures: a TCP SYN (and its malformed variants), IPv4 options over UDP, first and
//! later fragments, UDP-Lite, SCTP, DCCP and GRE.

use super::*;

/// A 60-byte TCP SYN, 10.0.0.1:49153 -> 10.0.0.2:22, with Ethernet padding.
#[rustfmt::skip]
const TCP_SYN: [u8; 60] = [
    // Ethernet II
    0x02, 0x00, 0x00, 0x00, 0x00, 0x0b, // destination MAC
    0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, // source MAC
    0x08, 0x00,                         // ethertype IPv4
    // IPv4 (offset 14)
    0x45,                               // version 4, IHL 5
    0x00,                               // DSCP/ECN
    0x00, 0x28,                         // total length 40
    0x12, 0x34,                         // identification
    0x40, 0x00,                         // flags DF, fragment offset 0
    0x40,                               // TTL 64
    0x06,                               // protocol TCP
    0x00, 0x00,                         // header checksum
    10, 0, 0, 1,                        // source
    10, 0, 0, 2,                        // destination
    // TCP (offset 34)
    0xc0, 0x01,                         // source port 49153
    0x00, 0x16,                         // destination port 22
    0x01, 0x02, 0x03, 0x04,             // sequence number
    0x00, 0x00, 0x00, 0x00,             // acknowledgement number
    0x50,                               // data offset 5
    0x02,                               // flags SYN
    0xfa, 0xf0,                         // window 64240
    0x00, 0x00,                         // checksum
    0x00, 0x00,                         // urgent pointer
    // Ethernet padding (not part of the IP packet)
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

#[test]
fn tcp_syn_v4() {
    let m = extract(&TCP_SYN).unwrap();
    assert_eq!(m.eth_dst, MAC_B);
    assert_eq!(m.eth_src, MAC_A);
    assert_eq!(m.vlan_count, 0);
    assert_eq!(m.ethertype, ethertype::IPV4);
    assert_eq!(m.l3, L3Kind::Ipv4);
    assert_eq!(m.key.src, FlowKey::map_v4([10, 0, 0, 1]));
    assert_eq!(m.key.dst, FlowKey::map_v4([10, 0, 0, 2]));
    assert_eq!(m.key.src_ip().to_string(), "10.0.0.1");
    assert_eq!((m.key.sport, m.key.dport), (49153, 22));
    assert_eq!((m.key.proto, m.key.family), (proto::TCP, FAMILY_V4));
    assert_eq!(m.tcp_flags, tcp_flags::SYN);
    assert_eq!(m.tcp_seq, 0x0102_0304);
    assert_eq!(m.tcp_ack, 0);
    assert_eq!(m.tcp_window, 64240);
    assert_eq!(m.hop_limit, 64);
    assert_eq!((m.l3_offset, m.l4_offset, m.ip_len), (14, 34, 40));
    assert!(!m.frag.is_fragment);
    assert_eq!(m.frag.id, 0x1234);
    assert_eq!(m.icmp_inner.family, 0);
    assert!(!m.has_nd_target);
    // extract_into overwrites stale scratch completely.
    let mut scratch = extract(&ICMP_PORT_UNREACH).unwrap();
    extract_into(&TCP_SYN, &mut scratch).unwrap();
    assert_eq!(scratch, m);
}

#[test]
fn tcp_syn_v4_malformed() {
    assert_eq!(err(&[]), (Layer::Ethernet, K::Truncated));
    assert_eq!(err(&TCP_SYN[..13]), (Layer::Ethernet, K::Truncated));
    assert_eq!(err(&TCP_SYN[..33]), (Layer::Ipv4, K::Truncated));
    // Total length 40 but only 30 bytes of IP packet present.
    assert_eq!(err(&TCP_SYN[..44]), (Layer::Ipv4, K::BadTotalLength));
    let patch = |at: usize, v: u8| {
        let mut f = TCP_SYN;
        f[at] = v;
        err(&f)
    };
    assert_eq!(patch(14, 0x44), (Layer::Ipv4, K::BadIhl));
    assert_eq!(patch(14, 0x40), (Layer::Ipv4, K::BadIhl));
    assert_eq!(patch(14, 0x65), (Layer::Ipv4, K::BadVersion));
    assert_eq!(patch(17, 19), (Layer::Ipv4, K::BadTotalLength)); // below the header
    assert_eq!(patch(17, 47), (Layer::Ipv4, K::BadTotalLength)); // one byte too many
    assert_eq!(patch(17, 30), (Layer::Tcp, K::Truncated)); // 10 bytes of TCP
    assert_eq!(patch(46, 0x40), (Layer::Tcp, K::BadDataOffset)); // offset 4
    assert_eq!(patch(46, 0x60), (Layer::Tcp, K::BadDataOffset)); // 24 > 20 bytes
    assert_eq!(patch(46, 0xf0), (Layer::Tcp, K::BadDataOffset)); // 60 > 20 bytes
                                                                 // Total length 66 exceeds the 46 bytes of the frame after Ethernet.
    assert_eq!(patch(17, 66), (Layer::Ipv4, K::BadTotalLength));
}

/// IPv4 with 8 bytes of options (NOP, record route) carrying UDP 5353 -> 53 + 4 bytes.
#[rustfmt::skip]
const UDP_OPTS: [u8; 54] = [
    0x02, 0x00, 0x00, 0x00, 0x00, 0x0b, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x08, 0x00,
    // IPv4 (offset 14)
    0x47,                               // version 4, IHL 7 (28 bytes)
    0x00,
    0x00, 0x28,                         // total length 40 = 28 + 12
    0x00, 0x01,                         // identification
    0x00, 0x00,                         // no flags
    0x01,                               // TTL 1
    0x11,                               // protocol UDP
    0x00, 0x00,
    10, 0, 0, 1,
    10, 0, 0, 2,
    0x01,                               // option NOP (offset 34)
    0x07, 0x07, 0x04, 0, 0, 0, 0,       // option record route, length 7, pointer 4
    // UDP (offset 42)
    0x14, 0xe9,                         // source port 5353
    0x00, 0x35,                         // destination port 53
    0x00, 0x0c,                         // length 12
    0x00, 0x00,                         // checksum
    0xde, 0xad, 0xbe, 0xef,             // data
];

#[test]
fn ipv4_options_udp() {
    let m = extract(&UDP_OPTS).unwrap();
    assert_eq!(
        (m.key.sport, m.key.dport, m.key.proto),
        (5353, 53, proto::UDP)
    );
    assert_eq!((m.l4_offset, m.hop_limit, m.ip_len), (42, 1, 40));
    let patch = |at: usize, v: u8| {
        let mut f = UDP_OPTS;
        f[at] = v;
        err(&f)
    };
    assert_eq!(patch(36, 0), (Layer::Ipv4, K::ZeroLengthOption));
    assert_eq!(patch(36, 1), (Layer::Ipv4, K::BadOption));
    assert_eq!(patch(36, 8), (Layer::Ipv4, K::BadOption)); // past the header
    assert_eq!(patch(47, 7), (Layer::Udp, K::BadUdpLength)); // below 8
    assert_eq!(patch(47, 13), (Layer::Udp, K::BadUdpLength)); // past the IP payload
    assert_eq!(patch(17, 46), (Layer::Ipv4, K::BadTotalLength));
    assert_eq!(patch(17, 35), (Layer::Udp, K::Truncated)); // 7 bytes of UDP
                                                           // EOL in the first option byte: the rest of the options area is padding.
    let mut f = UDP_OPTS;
    f[34] = 0;
    f[35] = 0xff;
    assert!(extract(&f).is_ok());
}

#[test]
fn ipv4_fragments() {
    #[rustfmt::skip]
    let first = cat(&[
        &MAC_B, &MAC_A, &[0x08, 0x00],
        &[0x45, 0x00, 0x00, 0x24,       // total length 36
          0xbe, 0xef,                   // identification
          0x20, 0x00,                   // MF, offset 0
          0x40, 0x11, 0x00, 0x00,
          10, 0, 0, 1, 10, 0, 0, 2],
        &[0x30, 0x39, 0x00, 0x35,       // UDP 12345 -> 53
          0x05, 0xdc, 0x00, 0x00],      // length 1500: the whole datagram, not this fragment
        &[0u8; 8],
    ]);
    // The UDP length covers the reassembled datagram, longer than this fragment.
    let m = extract(&first).unwrap();
    assert!(m.frag.is_fragment && m.frag.more && !m.frag.is_later_fragment());
    assert_eq!((m.frag.offset, m.frag.id), (0, 0xbeef));
    assert_eq!((m.key.sport, m.key.dport, m.l4_offset), (12345, 53, 34));
    // Still at least a header's worth.
    let mut bad = first.clone();
    bad[38..40].copy_from_slice(&[0x00, 0x04]);
    assert_eq!(err(&bad), (Layer::Udp, K::BadUdpLength));
    // The same bytes without MF are one whole datagram: the length must fit.
    let mut whole = first.clone();
    whole[20] = 0x00;
    assert_eq!(err(&whole), (Layer::Udp, K::BadUdpLength));
    assert_eq!(m.frag.len, 16);
    // A tiny first fragment that cuts the UDP header (RFC 1858 §3) parses as tiny: its
    // datagram is known, its ports are not.
    let mut tiny = first[..40].to_vec();
    tiny[17] = 26;
    let t = extract(&tiny).unwrap();
    assert!(t.frag.tiny && t.frag.more);
    assert_eq!((t.frag.id, t.frag.len), (0xbeef, 6));
    assert_eq!(
        (t.key.proto, t.key.sport, t.key.dport, t.l4_offset),
        (proto::UDP, 0, 0, 0)
    );
    // The same bytes unfragmented are malformed.
    tiny[20] = 0x00;
    assert_eq!(err(&tiny), (Layer::Udp, K::Truncated));
    // TCP: a 10-byte header, and a 20-byte one whose options (data offset 8: 32 bytes)
    // run past the fragment, are tiny; a data offset below 5 stays malformed.
    let mut t = first[..34].to_vec();
    t[23] = 6;
    t.extend_from_slice(&[0x30, 0x39, 0x00, 0x50, 0, 0, 0, 1, 0, 0]);
    t[17] = 30;
    let m = extract(&t).unwrap();
    assert!(m.frag.tiny && m.tcp_flags == 0);
    t.extend_from_slice(&[0, 0, 0x80, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
    t[17] = 40;
    assert!(extract(&t).unwrap().frag.tiny);
    t[46] = 0x40;
    assert_eq!(err(&t), (Layer::Tcp, K::BadDataOffset));

    #[rustfmt::skip]
    let later = cat(&[
        &MAC_B, &MAC_A, &[0x08, 0x00],
        &[0x45, 0x00, 0x00, 0x18,       // total length 24: 4 bytes of data
          0xbe, 0xef,
          0x00, 0xb9,                   // last fragment, offset 185 (1480 bytes)
          0x40, 0x11, 0x00, 0x00,
          10, 0, 0, 1, 10, 0, 0, 2],
        &[0xff, 0xff, 0xff, 0xff],      // data, not a UDP header
    ]);
    let m = extract(&later).unwrap();
    assert!(m.frag.is_later_fragment() && !m.frag.more);
    assert_eq!((m.frag.offset, m.frag.len), (185, 4));
    assert_eq!((m.key.proto, m.key.sport, m.key.dport), (proto::UDP, 0, 0));
    assert_eq!(m.l4_offset, 0);
}

#[test]
fn udplite_sctp_dccp_gre() {
    // UDP-Lite 1000 -> 2000, coverage 0 (whole datagram).
    let f = ipv4_frame(proto::UDPLITE, &[0x03, 0xe8, 0x07, 0xd0, 0, 0, 0, 0, 1, 2]);
    let m = extract(&f).unwrap();
    assert_eq!((m.key.proto, m.key.sport, m.key.dport), (136, 1000, 2000));
    let f = ipv4_frame(proto::UDPLITE, &[0x03, 0xe8, 0x07, 0xd0, 0, 4, 0, 0, 1, 2]);
    assert_eq!(err(&f), (Layer::UdpLite, K::BadUdpLength));

    #[rustfmt::skip]
    let sctp = [
        0x0b, 0x59, 0x0b, 0x5a,         // ports 2905 -> 2906
        0x00, 0x00, 0x00, 0x01,         // verification tag
        0x00, 0x00, 0x00, 0x00,         // checksum
    ];
    let m = extract(&ipv4_frame(proto::SCTP, &sctp)).unwrap();
    assert_eq!((m.key.proto, m.key.sport, m.key.dport), (132, 2905, 2906));
    assert_eq!(
        err(&ipv4_frame(proto::SCTP, &sctp[..8])),
        (Layer::Sctp, K::Truncated)
    );

    #[rustfmt::skip]
    let dccp = [
        0x13, 0x88, 0x13, 0x89,         // ports 5000 -> 5001
        0x03, 0x00, 0x00, 0x00,         // data offset 3, CCVal/CsCov, checksum
        0x00, 0x00, 0x00, 0x01,         // type/X, sequence (short form)
    ];
    let m = extract(&ipv4_frame(proto::DCCP, &dccp)).unwrap();
    assert_eq!((m.key.proto, m.key.sport, m.key.dport), (33, 5000, 5001));
    assert_eq!(
        err(&ipv4_frame(proto::DCCP, &dccp[..3])),
        (Layer::Dccp, K::Truncated)
    );

    // GRE: no ports, but the upper-layer header offset is known.
    let m = extract(&ipv4_frame(proto::GRE, &[0, 0, 0x08, 0x00])).unwrap();
    assert_eq!(
        (m.key.proto, m.key.sport, m.key.dport, m.l4_offset),
        (47, 0, 0, 34)
    );
}
