//! One test per protocol: frames built with `bench::frames` (independent of the parser),
//! summarised.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::*;
use crate::bench::frames::{
    arp as arp_frame, icmp as icmp_msg, ipv4_frame, ipv6_frame, pad, tcp, udp, V4,
};

const A: [u8; 6] = [0xfa, 0x16, 0x3e, 0, 0, 0x0a];
const B: [u8; 6] = [0xfa, 0x16, 0x3e, 0, 0, 0x0b];

fn v4(proto: u8) -> V4 {
    V4::new(
        Ipv4Addr::new(10, 0, 0, 10),
        Ipv4Addr::new(10, 0, 0, 11),
        proto,
    )
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

#[test]
fn tcp_flags_and_ports() {
    let f = pad(ipv4_frame(B, A, v4(6), &tcp(40000, 22, 0x02, 1, 0, &[])));
    assert_eq!(summary(&f), "tcp 10.0.0.10:40000 > 10.0.0.11:22 flags S");
    let f = pad(ipv4_frame(B, A, v4(6), &tcp(22, 40000, 0x12, 1, 2, &[])));
    assert_eq!(summary(&f), "tcp 10.0.0.10:22 > 10.0.0.11:40000 flags SA");
    let f = pad(ipv4_frame(B, A, v4(6), &tcp(1, 2, 0x11, 1, 2, &[])));
    assert!(summary(&f).ends_with("flags FA"));
    let f = pad(ipv4_frame(B, A, v4(6), &tcp(1, 2, 0x04, 1, 2, &[])));
    assert!(summary(&f).ends_with("flags R"));
    let f = pad(ipv4_frame(B, A, v4(6), &tcp(1, 2, 0, 1, 2, &[])));
    assert!(summary(&f).ends_with("flags none"));
    assert_eq!(tcp_flags_str(0xff), "SFRPAUEW");
}

#[test]
fn udp_v4_and_v6() {
    let f = pad(ipv4_frame(B, A, v4(17), &udp(4000, 53, b"q")));
    assert_eq!(summary(&f), "udp 10.0.0.10:4000 > 10.0.0.11:53");
    let f = ipv6_frame(B, A, v6("fd00::a"), v6("fd00::b"), 17, &udp(5353, 53, b"q"));
    assert_eq!(summary(&f), "udp [fd00::a]:5353 > [fd00::b]:53");
}

#[test]
fn icmp_names_codes_ids_and_quotes() {
    let f = pad(ipv4_frame(B, A, v4(1), &icmp_msg(8, 0, &[0, 7, 0, 1])));
    assert_eq!(summary(&f), "icmp 10.0.0.10 > 10.0.0.11 echo-request id 7");
    let f = pad(ipv4_frame(B, A, v4(1), &icmp_msg(42, 1, &[0; 4])));
    assert_eq!(summary(&f), "icmp 10.0.0.10 > 10.0.0.11 type 42 code 1");
    // Port unreachable quoting the UDP datagram 10.0.0.11:4000 -> 10.0.0.10:53.
    let quoted = ipv4_frame(
        A,
        B,
        V4::new(Ipv4Addr::new(10, 0, 0, 11), Ipv4Addr::new(10, 0, 0, 10), 17),
        &udp(4000, 53, b""),
    );
    let mut rest = vec![0u8; 4];
    rest.extend_from_slice(&quoted[14..]);
    let f = pad(ipv4_frame(B, A, v4(1), &icmp_msg(3, 3, &rest)));
    assert_eq!(
        summary(&f),
        "icmp 10.0.0.10 > 10.0.0.11 dest-unreachable code 3 for udp 10.0.0.11:4000 > 10.0.0.10:53"
    );
}

#[test]
fn icmpv6_neighbor_solicit_names_its_target() {
    let mut ns = icmp_msg(135, 0, &[0; 4]);
    ns.extend_from_slice(&v6("fd00::b").octets());
    let f = ipv6_frame(B, A, v6("fe80::1"), v6("ff02::1:ff00:b"), 58, &ns);
    assert_eq!(
        summary(&f),
        "icmp6 fe80::1 > ff02::1:ff00:b neighbor-solicit target fd00::b"
    );
    let f = ipv6_frame(
        B,
        A,
        v6("fd00::a"),
        v6("fd00::b"),
        58,
        &icmp_msg(128, 0, &[0, 9, 0, 1]),
    );
    assert_eq!(summary(&f), "icmp6 fd00::a > fd00::b echo-request id 9");
}

#[test]
fn arp_who_has_and_is_at() {
    let (a, b) = (Ipv4Addr::new(10, 0, 0, 10), Ipv4Addr::new(10, 0, 0, 11));
    let f = pad(arp_frame([0xff; 6], A, 1, A, a, [0; 6], b));
    assert_eq!(summary(&f), "arp who-has 10.0.0.11 tell 10.0.0.10");
    let f = pad(arp_frame(A, B, 2, B, b, A, a));
    assert_eq!(
        summary(&f),
        "arp reply 10.0.0.11 is-at fa:16:3e:00:00:0b to 10.0.0.10"
    );
    let f = pad(arp_frame(A, B, 9, B, b, A, a));
    assert_eq!(summary(&f), "arp op 9 10.0.0.11 > 10.0.0.10");
}

#[test]
fn vlan_tags_come_first() {
    let inner = pad(ipv4_frame(B, A, v4(17), &udp(4000, 53, b"q")));
    let mut f = inner[..12].to_vec();
    f.extend_from_slice(&[0x81, 0x00, 0x00, 100]);
    f.extend_from_slice(&inner[12..]);
    assert_eq!(summary(&f), "vlan 100 udp 10.0.0.10:4000 > 10.0.0.11:53");
}

#[test]
fn fragments_give_id_offset_and_more() {
    let mut ip = v4(17);
    ip.id = 7;
    ip.more_fragments = true;
    let f = pad(ipv4_frame(B, A, ip, &udp(4000, 53, &[0; 16])));
    assert_eq!(
        summary(&f),
        "udp 10.0.0.10:4000 > 10.0.0.11:53 frag id 7 offset 0 more"
    );
    ip.more_fragments = false;
    ip.frag_offset = 3;
    let f = pad(ipv4_frame(B, A, ip, &[0; 16]));
    assert_eq!(summary(&f), "udp 10.0.0.10 > 10.0.0.11 frag id 7 offset 24");
}

#[test]
fn other_protocols_and_ethertypes() {
    let f = pad(ipv4_frame(B, A, v4(47), &[0; 8]));
    assert_eq!(summary(&f), "gre 10.0.0.10 > 10.0.0.11");
    let f = pad(ipv4_frame(B, A, v4(99), &[0; 8]));
    assert_eq!(summary(&f), "proto 99 10.0.0.10 > 10.0.0.11");
    let mut f = vec![0u8; 60];
    f[..6].copy_from_slice(&B);
    f[6..12].copy_from_slice(&A);
    f[12..14].copy_from_slice(&[0x88, 0xcc]);
    assert_eq!(summary(&f), "ethertype 0x88cc");
}

#[test]
fn malformed_frames_name_the_layer_and_error() {
    assert_eq!(summary(&[0u8; 10]), "malformed: ethernet: truncated");
    let f = pad(ipv4_frame(B, A, v4(6), &tcp(1, 2, 2, 0, 0, &[])));
    let s = summary(&f[..30]);
    assert!(s.starts_with("malformed: ipv4: "), "{s}");
}

#[test]
fn name_tables_round_trip() {
    for (t, n) in ICMP_NAMES {
        assert_eq!(icmp_name(4, *t), Some(*n));
    }
    for (t, n) in ICMPV6_NAMES {
        assert_eq!(icmp_name(6, *t), Some(*n));
    }
    assert_eq!(proto_name(58), Some("icmp6"));
    assert_eq!(proto_name(250), None);
}
