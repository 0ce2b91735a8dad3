//! ICMP (v4) fixtures: queries (echo, timestamp, address mask, router advertisement) and
//! their pseudo ports, and errors whose quoted packet becomes the inner key, including
//! quotes cut short.

use super::*;

#[test]
fn icmp_queries() {
    // Echo request, id 0x4242, seq 1.
    let f = ipv4_frame(proto::ICMP, &[8, 0, 0, 0, 0x42, 0x42, 0x00, 0x01, 0xaa]);
    let m = extract(&f).unwrap();
    assert!(m.key.is_icmp());
    assert_eq!((m.key.icmp_type(), m.key.icmp_code()), (8, 0));
    assert_eq!((m.key.dport, m.key.sport), (0x0800, 0x4242));
    // Timestamp reply (14), id 7.
    let mut ts = vec![14, 0, 0, 0, 0x00, 0x07, 0x00, 0x01];
    ts.extend_from_slice(&[0u8; 12]);
    let m = extract(&ipv4_frame(proto::ICMP, &ts)).unwrap();
    assert_eq!((m.key.dport, m.key.sport), (0x0e00, 7));
    // Address mask request (17), id 9.
    let m = extract(&ipv4_frame(
        proto::ICMP,
        &[17, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0],
    ))
    .unwrap();
    assert_eq!((m.key.dport, m.key.sport), (0x1100, 9));
    // Router advertisement (9): no identifier.
    let m = extract(&ipv4_frame(proto::ICMP, &[9, 0, 0, 0, 1, 2, 3, 4])).unwrap();
    assert_eq!((m.key.dport, m.key.sport), (0x0900, 0));
    assert_eq!(
        err(&ipv4_frame(proto::ICMP, &[8, 0, 0, 0, 0x42, 0x42, 0x00])),
        (Layer::Icmp, K::Truncated)
    );
}

#[test]
fn icmp_errors() {
    let m = extract(&ICMP_PORT_UNREACH).unwrap();
    assert_eq!((m.key.dport, m.key.sport), (0x0303, 0));
    assert_eq!(m.key.src, FlowKey::map_v4([10, 0, 0, 2]));
    let inner = m.icmp_inner;
    assert_eq!(inner.family, FAMILY_V4);
    assert_eq!(inner.src, FlowKey::map_v4([10, 0, 0, 1]));
    assert_eq!(inner.dst, FlowKey::map_v4([10, 0, 0, 2]));
    assert_eq!(
        (inner.proto, inner.sport, inner.dport),
        (proto::UDP, 5353, 53)
    );
    // The quoted key reversed is the direction the error travels in.
    assert_eq!(inner.reversed().src, m.key.src);

    // Quote truncated after 4 bytes of UDP: still has ports.
    let mut f = ICMP_PORT_UNREACH[..66].to_vec();
    f[17] = 52;
    assert_eq!(extract(&f).unwrap().icmp_inner.sport, 5353);
    // Quote with only 2 bytes of UDP: the error is valid, the inner key is not.
    let mut f = ICMP_PORT_UNREACH[..64].to_vec();
    f[17] = 50;
    let m = extract(&f).unwrap();
    assert_eq!((m.key.dport, m.icmp_inner.family), (0x0303, 0));
    // Quote with half an IPv4 header.
    let mut f = ICMP_PORT_UNREACH[..52].to_vec();
    f[17] = 38;
    assert_eq!(extract(&f).unwrap().icmp_inner, FlowKey::default());
    // Quote whose IHL is bad.
    let mut f = ICMP_PORT_UNREACH;
    f[42] = 0x43;
    assert_eq!(extract(&f).unwrap().icmp_inner.family, 0);
    // Quoted later fragment: key without ports.
    let mut f = ICMP_PORT_UNREACH;
    f[48] = 0x00;
    f[49] = 0x10;
    let inner = extract(&f).unwrap().icmp_inner;
    assert_eq!((inner.family, inner.sport, inner.dport), (FAMILY_V4, 0, 0));
    // The same quote under a query type (echo reply) is not parsed.
    let mut f = ICMP_PORT_UNREACH;
    f[34] = 0;
    f[35] = 0;
    assert_eq!(extract(&f).unwrap().icmp_inner.family, 0);

    // Time exceeded about an echo request id 0x0101 (quote: header + 8 ICMP bytes).
    #[rustfmt::skip]
    let te = [
        &[11u8, 0, 0, 0, 0, 0, 0, 0][..],   // time exceeded in transit
        &[0x45, 0x00, 0x00, 0x54, 0, 0, 0x40, 0x00, 0x01, 0x01, 0, 0,
          10, 0, 0, 1, 8, 8, 8, 8],        // quoted IPv4, ICMP, 10.0.0.1 -> 8.8.8.8
        &[8, 0, 0, 0, 0x01, 0x01, 0, 5],   // quoted echo request id 0x0101
    ]
    .concat();
    let m = extract(&ipv4_frame(proto::ICMP, &te)).unwrap();
    assert_eq!(m.key.dport, 0x0b00);
    let inner = m.icmp_inner;
    assert_eq!(
        (inner.proto, inner.dport, inner.sport),
        (proto::ICMP, 0x0800, 0x0101)
    );
    assert_eq!(inner.dst, FlowKey::map_v4([8, 8, 8, 8]));
    // Only 6 of the 8 quoted ICMP bytes: no inner key.
    let m = extract(&ipv4_frame(proto::ICMP, &te[..34])).unwrap();
    assert_eq!(m.icmp_inner.family, 0);

    // Fragmentation needed (3/4) about TCP 10.0.0.1:40000 -> 10.0.0.2:443.
    #[rustfmt::skip]
    let frag_needed = [
        &[3u8, 4, 0, 0, 0, 0, 0x05, 0xdc][..],  // next-hop MTU 1500
        &[0x45, 0, 0x05, 0xdc, 0, 0, 0x40, 0, 0x40, 0x06, 0, 0,
          10, 0, 0, 1, 10, 0, 0, 2],
        &[0x9c, 0x40, 0x01, 0xbb, 0, 0, 0, 1],   // 40000 -> 443, sequence
    ]
    .concat();
    let inner = extract(&ipv4_frame(proto::ICMP, &frag_needed))
        .unwrap()
        .icmp_inner;
    assert_eq!(
        (inner.proto, inner.sport, inner.dport),
        (proto::TCP, 40000, 443)
    );
}
