//! Property tests for `flow::extract`: no input panics, and generated valid frames of every
//! kind parse to the key they were built with.
//!
//! Frames are built here by small, independent encoders (not by the parser's views), so a
//! bug shared by encoder and parser is unlikely. Mutations (bit flips, truncations, byte
//! overwrites) of valid frames reach the deep branches that random bytes rarely do.

use proptest::prelude::*;
use sgswitch::flow::{self, proto, FlowKey, L3Kind, PacketMeta, FAMILY_V4, FAMILY_V6};

// ----- encoders -------------------------------------------------------------------------

fn eth(vlans: &[u16], ethertype: u16) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x0b, 0x02, 0, 0, 0, 0, 0x0a];
    for (i, vid) in vlans.iter().enumerate() {
        let tpid: u16 = if i == 0 && vlans.len() == 2 {
            0x88a8
        } else {
            0x8100
        };
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

fn ipv4(
    src: [u8; 4],
    dst: [u8; 4],
    protocol: u8,
    opt_words: usize,
    frag: u16,
    l4: &[u8],
) -> Vec<u8> {
    let hl = 20 + opt_words * 4;
    let total = (hl + l4.len()) as u16;
    let mut h = vec![0x40 | (hl / 4) as u8, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0x12, 0x34]);
    h.extend_from_slice(&frag.to_be_bytes());
    h.extend_from_slice(&[64, protocol, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.resize(hl, 1); // NOP options
    h.extend_from_slice(l4);
    h
}

/// `exts`: extension header kinds to put before `protocol` (0 = hop-by-hop, 43 routing,
/// 44 fragment (first, M=1), 51 AH, 60 destination options).
fn ipv6(src: [u8; 16], dst: [u8; 16], exts: &[u8], protocol: u8, l4: &[u8]) -> Vec<u8> {
    let mut chain = Vec::new();
    for (i, &kind) in exts.iter().enumerate() {
        let next = exts.get(i + 1).copied().unwrap_or(protocol);
        match kind {
            44 => chain.extend_from_slice(&[next, 0, 0, 1, 0, 0, 0, 9]),
            51 => chain.extend_from_slice(&[next, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1]),
            43 => chain.extend_from_slice(&[next, 0, 0, 0, 0, 0, 0, 0]),
            _ => chain.extend_from_slice(&[next, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        }
    }
    let first = exts.first().copied().unwrap_or(protocol);
    let len = (chain.len() + l4.len()) as u16;
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&len.to_be_bytes());
    h.extend_from_slice(&[first, 64]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend_from_slice(&chain);
    h.extend_from_slice(l4);
    h
}

fn tcp(sport: u16, dport: u16, flags: u8, seq: u32, opt_words: usize, data: usize) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&seq.wrapping_add(1).to_be_bytes());
    t.push(((5 + opt_words) as u8) << 4);
    t.push(flags);
    t.extend_from_slice(&[0x10, 0x00, 0, 0, 0, 0]);
    t.resize(20 + opt_words * 4 + data, 1);
    t
}

fn udp(sport: u16, dport: u16, data: usize) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + data) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.resize(8 + data, 0xab);
    u
}

fn icmp_query(ty: u8, id: u16) -> Vec<u8> {
    let mut i = vec![ty, 0, 0, 0];
    i.extend_from_slice(&id.to_be_bytes());
    i.extend_from_slice(&[0, 1, 0xaa, 0xbb]);
    i
}

// ----- generated valid frames with their expected key ------------------------------------

#[derive(Debug, Clone)]
struct Case {
    frame: Vec<u8>,
    l3: L3Kind,
    vlans: Vec<u16>,
    /// Expected key (for IP frames).
    key: FlowKey,
    /// Expected ICMP inner key (family 0 when none).
    inner: FlowKey,
    /// Offset where the IP packet (or ARP packet) ends; cutting before it must fail.
    l3_end: usize,
}

fn key(family: u8, src: [u8; 16], dst: [u8; 16], p: u8, sport: u16, dport: u16) -> FlowKey {
    FlowKey {
        src,
        dst,
        sport,
        dport,
        proto: p,
        family,
        _pad: [0; 2],
    }
}

/// L4 kinds: (protocol, bytes, expected sport, expected dport, expected inner key).
fn l4_for(kind: u8, v6: bool, a: u16, b: u16, n: usize) -> (u8, Vec<u8>, u16, u16, FlowKey) {
    let none = FlowKey::default();
    match kind % 8 {
        0 => (proto::TCP, tcp(a, b, 0x12, 77, n % 11, n), a, b, none),
        1 => (proto::UDP, udp(a, b, n), a, b, none),
        2 => {
            let mut u = udp(a, b, n);
            u[4] = 0; // UDP-Lite coverage 0 = everything
            u[5] = 0;
            (proto::UDPLITE, u, a, b, none)
        }
        3 => {
            let mut s = udp(a, b, 4 + n);
            s[4..8].copy_from_slice(&[1, 2, 3, 4]);
            (proto::SCTP, s, a, b, none)
        }
        4 => {
            let mut d = udp(a, b, 4 + n);
            d[4..8].copy_from_slice(&[3, 0, 0, 0]);
            (proto::DCCP, d, a, b, none)
        }
        5 if v6 => (proto::ICMPV6, icmp_query(128, a), a, 0x8000, none),
        5 => (proto::ICMP, icmp_query(8, a), a, 0x0800, none),
        6 if v6 => {
            // Destination unreachable quoting a UDP packet.
            let mut q = vec![1, 4, 0, 0, 0, 0, 0, 0];
            q.extend_from_slice(&ipv6(
                [0xfd; 16],
                [0xfe; 16],
                &[],
                proto::UDP,
                &udp(b, a, 0),
            ));
            (
                proto::ICMPV6,
                q,
                0,
                0x0104,
                key(FAMILY_V6, [0xfd; 16], [0xfe; 16], proto::UDP, b, a),
            )
        }
        6 => {
            let mut q = vec![3, 3, 0, 0, 0, 0, 0, 0];
            q.extend_from_slice(&ipv4(
                [9, 9, 9, 9],
                [8, 8, 8, 8],
                proto::UDP,
                0,
                0,
                &udp(b, a, 0),
            ));
            (
                proto::ICMP,
                q,
                0,
                0x0303,
                key(
                    FAMILY_V4,
                    FlowKey::map_v4([9; 4]),
                    FlowKey::map_v4([8; 4]),
                    proto::UDP,
                    b,
                    a,
                ),
            )
        }
        _ => (proto::GRE, vec![0, 0, 0x08, 0x00], 0, 0, none),
    }
}

fn arb_case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(0u16..4096, 0..=2),
        0u8..3,      // 0 IPv4, 1 IPv6, 2 ARP
        any::<u8>(), // L4 kind
        any::<(u16, u16)>(),
        0usize..40, // data length / options
        prop::collection::vec(prop::sample::select(vec![43u8, 44, 51, 60]), 0..=4),
        any::<bool>(), // hop-by-hop first
        0usize..8,     // Ethernet padding
        any::<([u8; 4], [u8; 4])>(),
        0u8..3, // IPv4: unfragmented, first fragment, later fragment
    )
        .prop_map(
            |(vlans, l3, kind, (a, b), n, mut exts, hbh, pad, (s4, d4), frag_kind)| {
                let mut frame;
                let case = match l3 {
                    0 => {
                        let (p, l4, sp, dp, inner) = l4_for(kind, false, a, b, n);
                        // Flags/offset word: none, MF with offset 0, offset 100 (800 bytes).
                        let frag = [0u16, 0x2000, 0x0064][frag_kind as usize];
                        let later = frag_kind == 2;
                        let (sp, dp, inner) = if later {
                            (0, 0, FlowKey::default())
                        } else {
                            (sp, dp, inner)
                        };
                        frame = eth(&vlans, 0x0800);
                        frame.extend_from_slice(&ipv4(s4, d4, p, n % 11, frag, &l4));
                        Case {
                            l3_end: frame.len(),
                            frame: Vec::new(),
                            l3: L3Kind::Ipv4,
                            vlans: vlans.clone(),
                            key: key(
                                FAMILY_V4,
                                FlowKey::map_v4(s4),
                                FlowKey::map_v4(d4),
                                p,
                                sp,
                                dp,
                            ),
                            inner,
                        }
                    }
                    1 => {
                        let (p, l4, sp, dp, inner) = l4_for(kind, true, a, b, n);
                        if hbh {
                            exts.insert(0, 0);
                        }
                        // At most one fragment header, and it is a first fragment.
                        let mut seen = false;
                        exts.retain(|&k| k != 44 || !std::mem::replace(&mut seen, true));
                        let src = [
                            0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, s4[0], s4[1], s4[2], s4[3],
                        ];
                        let dst = [
                            0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, d4[0], d4[1], d4[2], d4[3],
                        ];
                        frame = eth(&vlans, 0x86dd);
                        frame.extend_from_slice(&ipv6(src, dst, &exts, p, &l4));
                        Case {
                            l3_end: frame.len(),
                            frame: Vec::new(),
                            l3: L3Kind::Ipv6,
                            vlans: vlans.clone(),
                            key: key(FAMILY_V6, src, dst, p, sp, dp),
                            inner,
                        }
                    }
                    _ => {
                        frame = eth(&vlans, if kind & 1 == 0 { 0x0806 } else { 0x8035 });
                        frame.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1 + (kind & 3)]);
                        frame.extend_from_slice(&[2, 0, 0, 0, 0, 0x0a]);
                        frame.extend_from_slice(&s4);
                        frame.extend_from_slice(&[0; 6]);
                        frame.extend_from_slice(&d4);
                        Case {
                            l3_end: frame.len(),
                            frame: Vec::new(),
                            l3: L3Kind::Arp,
                            vlans: vlans.clone(),
                            key: FlowKey::default(),
                            inner: FlowKey::default(),
                        }
                    }
                };
                frame.resize(frame.len() + pad, 0);
                Case { frame, ..case }
            },
        )
}

// ----- invariants that hold for every accepted frame --------------------------------------

fn check_invariants(frame: &[u8], m: &PacketMeta) {
    assert!(m.vlan_count <= 2);
    assert!(m.l3_offset as usize <= frame.len());
    assert!(m.l4_offset as usize <= frame.len());
    if m.is_ip() {
        assert!(m.key.family == FAMILY_V4 || m.key.family == FAMILY_V6);
        assert!(m.l4_offset == 0 || m.l4_offset > m.l3_offset);
        if m.frag.is_later_fragment() {
            assert_eq!((m.key.sport, m.key.dport, m.l4_offset), (0, 0, 0));
        }
    } else {
        assert_eq!(m.key, FlowKey::default());
    }
    assert!(matches!(m.icmp_inner.family, 0 | FAMILY_V4 | FAMILY_V6));
    if m.icmp_inner.family != 0 {
        assert!(m.key.is_icmp());
    }
    if m.has_nd_target {
        assert_eq!(m.key.proto, proto::ICMPV6);
    }
}

fn run(frame: &[u8]) {
    match flow::extract(frame) {
        Ok(m) => check_invariants(frame, &m),
        Err(e) => {
            // Display works and names the layer.
            assert!(!e.to_string().is_empty());
        }
    }
}

fn config() -> ProptestConfig {
    ProptestConfig {
        // 512 per property by default; `PROPTEST_CASES=100000` for a longer soak.
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(512),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        run(&bytes);
    }

    #[test]
    fn random_l3_payloads_never_panic(
        ethertype in prop::sample::select(vec![0x0800u16, 0x86dd, 0x0806, 0x8035, 0x8100, 0x88a8]),
        version_byte in prop::sample::select(vec![0x45u8, 0x46, 0x4f, 0x60, 0x00]),
        body in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut f = eth(&[], ethertype);
        f.push(version_byte);
        f.extend_from_slice(&body);
        run(&f);
    }

    #[test]
    fn valid_frames_parse_to_their_key(case in arb_case()) {
        let m = flow::extract(&case.frame).unwrap_or_else(|e| panic!("{e}: {:02x?}", case.frame));
        check_invariants(&case.frame, &m);
        prop_assert_eq!(m.l3, case.l3);
        prop_assert_eq!(m.vlan_count as usize, case.vlans.len());
        for (i, vid) in case.vlans.iter().enumerate() {
            prop_assert_eq!(m.vlan_ids[i], *vid);
        }
        prop_assert_eq!(m.key, case.key);
        // The quoted packet's key as its sender sent it.
        prop_assert_eq!(m.icmp_inner, case.inner);
        if m.frag.is_later_fragment() {
            // No L4 header was read.
            prop_assert_eq!((m.tcp_flags, m.tcp_seq, m.l4_offset), (0, 0, 0));
        } else if m.key.proto == proto::TCP {
            prop_assert_eq!(m.tcp_flags, 0x12);
            prop_assert_eq!((m.tcp_seq, m.tcp_ack), (77, 78));
        }
    }

    #[test]
    fn truncated_valid_frames_are_rejected(case in arb_case(), cut in any::<prop::sample::Index>()) {
        let at = cut.index(case.l3_end);
        prop_assert!(flow::extract(&case.frame[..at]).is_err(), "cut at {} of {}", at, case.l3_end);
    }

    #[test]
    fn bit_flips_never_panic(
        case in arb_case(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..4),
    ) {
        let mut f = case.frame.clone();
        for (i, bit) in flips {
            let i = i.index(f.len());
            f[i] ^= 1 << bit;
        }
        run(&f);
    }

    #[test]
    fn overwrites_and_truncations_never_panic(
        case in arb_case(),
        writes in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut f = case.frame.clone();
        for (i, v) in writes {
            let i = i.index(f.len());
            f[i] = v;
        }
        let at = cut.index(f.len() + 1);
        run(&f[..at]);
        run(&f);
    }
}

/// Differential check against etherparse (the oracle): where both parsers accept a frame
/// and etherparse reaches a TCP or UDP header, addresses and ports agree.
fn agrees_with_etherparse(frame: &[u8]) -> Result<(), TestCaseError> {
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    let (Ok(m), Ok(e)) = (flow::extract(frame), SlicedPacket::from_ethernet(frame)) else {
        return Ok(());
    };
    match &e.net {
        Some(NetSlice::Ipv4(ip)) if m.l3 == L3Kind::Ipv4 => {
            prop_assert_eq!(m.key.src, FlowKey::map_v4(ip.header().source()));
            prop_assert_eq!(m.key.dst, FlowKey::map_v4(ip.header().destination()));
        }
        Some(NetSlice::Ipv6(ip)) if m.l3 == L3Kind::Ipv6 => {
            prop_assert_eq!(m.key.src, ip.header().source());
            prop_assert_eq!(m.key.dst, ip.header().destination());
        }
        _ => return Ok(()),
    }
    let ports = match &e.transport {
        Some(TransportSlice::Tcp(t)) => Some((proto::TCP, t.source_port(), t.destination_port())),
        Some(TransportSlice::Udp(u)) => Some((proto::UDP, u.source_port(), u.destination_port())),
        _ => None,
    };
    // etherparse 0.16 decodes the IPv6 fragment header's offset and M bits in the wrong
    // positions (JulianSchmid/etherparse#150, fixed in 0.20): it slices the transport of
    // later fragments. Compare only packets without a fragment header there.
    if m.l3 == L3Kind::Ipv6 && ipv6_has_fragment_header(frame, m.l3_offset as usize) {
        return Ok(());
    }
    if let Some(p) = ports {
        prop_assert_eq!((m.key.proto, m.key.sport, m.key.dport), p);
    }
    Ok(())
}

fn ipv6_has_fragment_header(frame: &[u8], l3_offset: usize) -> bool {
    use sgswitch::wire::ipv6;
    let Ok(ip) = ipv6::Packet::new_checked(&frame[l3_offset..]) else {
        return false;
    };
    matches!(ipv6::walk_ext_headers(ip.next_header(), ip.payload()), Ok(c) if c.fragment.is_some())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn etherparse_agrees_on_valid_frames(case in arb_case()) {
        // The comparison is not vacuous: etherparse slices our unfragmented TCP/UDP frames
        // down to the transport header.
        let m = flow::extract(&case.frame).unwrap();
        if matches!(m.key.proto, proto::TCP | proto::UDP) && !m.frag.is_fragment {
            let e = etherparse::SlicedPacket::from_ethernet(&case.frame);
            prop_assert!(
                matches!(&e, Ok(e) if e.transport.is_some()),
                "etherparse: {:?}",
                e.err()
            );
        }
        agrees_with_etherparse(&case.frame)?;
    }

    #[test]
    fn etherparse_agrees_on_mutated_frames(
        case in arb_case(),
        writes in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut f = case.frame.clone();
        for (i, v) in writes {
            let i = i.index(f.len());
            f[i] = v;
        }
        agrees_with_etherparse(&f)?;
    }
}

#[test]
fn empty_and_tiny_frames() {
    for n in 0..64 {
        run(&vec![0xff; n]);
        run(&vec![0x00; n]);
    }
}
