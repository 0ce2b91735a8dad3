//! Link-layer fixtures: 802.1Q and QinQ tags, ARP and RARP, and other ethertypes (LLDP,
//! 802.3 length + LLC, a bare Ethernet header).

use super::*;
use crate::wire::Mac;

#[rustfmt::skip]
const IPV4_UDP_HDR: [u8; 20] = [
    0x45, 0x00, 0x00, 0x1c,             // IHL 5, total length 28
    0x00, 0x02, 0x00, 0x00,             // id 2, no fragment
    0x40, 0x11, 0x00, 0x00,             // TTL 64, UDP
    10, 0, 0, 1, 10, 0, 0, 2,
];
#[rustfmt::skip]
const UDP_68_67: [u8; 8] = [0x00, 0x44, 0x00, 0x43, 0x00, 0x08, 0x00, 0x00];

#[test]
fn vlan_and_qinq() {
    #[rustfmt::skip]
    let one = cat(&[
        &MAC_B, &MAC_A,
        &[0x81, 0x00],                  // TPID 802.1Q
        &[0x20, 0x64],                  // PCP 1, VID 100
        &[0x08, 0x00],                  // IPv4
        &IPV4_UDP_HDR, &UDP_68_67,
    ]);
    let m = extract(&one).unwrap();
    assert_eq!((m.vlan_count, m.vlan_ids[0]), (1, 100));
    assert_eq!((m.ethertype, m.l3_offset, m.l4_offset), (0x0800, 18, 38));
    assert_eq!((m.key.sport, m.key.dport), (68, 67));
    assert_eq!(err(&one[..17]), (Layer::Vlan, K::Truncated));

    #[rustfmt::skip]
    let two = cat(&[
        &MAC_B, &MAC_A,
        &[0x88, 0xa8, 0x00, 0x0a],      // 802.1ad S-tag, VID 10
        &[0x81, 0x00, 0x0f, 0xff],      // 802.1Q C-tag, VID 4095
        &[0x08, 0x00],
        &IPV4_UDP_HDR, &UDP_68_67,
    ]);
    let m = extract(&two).unwrap();
    assert_eq!((m.vlan_count, m.vlan_ids), (2, [10, 4095]));
    assert_eq!((m.l3_offset, m.l4_offset), (22, 42));
    assert_eq!(m.key.dport, 67);
    assert_eq!(err(&two[..21]), (Layer::Vlan, K::Truncated));

    #[rustfmt::skip]
    let three = cat(&[
        &MAC_B, &MAC_A,
        &[0x88, 0xa8, 0x00, 0x0a], &[0x81, 0x00, 0x00, 0x14], &[0x81, 0x00, 0x00, 0x1e],
        &[0x08, 0x00], &IPV4_UDP_HDR, &UDP_68_67,
    ]);
    assert_eq!(err(&three), (Layer::Vlan, K::TooManyVlanTags));
}

#[rustfmt::skip]
const ARP_REQUEST: [u8; 60] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // broadcast
    0x02, 0x00, 0x00, 0x00, 0x00, 0x0a,
    0x08, 0x06,                         // ethertype ARP
    0x00, 0x01,                         // hardware Ethernet
    0x08, 0x00,                         // protocol IPv4
    0x06, 0x04,                         // address lengths
    0x00, 0x01,                         // request
    0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, // sender MAC
    10, 0, 0, 1,                        // sender IP
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // target MAC
    10, 0, 0, 2,                        // target IP
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // padding
];

#[test]
fn arp_and_rarp() {
    let m = extract(&ARP_REQUEST).unwrap();
    assert_eq!(m.l3, L3Kind::Arp);
    assert!(m.is_multicast_dst());
    assert_eq!(
        m.arp,
        ArpInfo {
            op: 1,
            sha: Mac(MAC_A),
            spa: [10, 0, 0, 1],
            tha: Mac([0; 6]),
            tpa: [10, 0, 0, 2]
        }
    );
    assert_eq!(m.key, FlowKey::default());

    let mut rarp = ARP_REQUEST;
    rarp[12..14].copy_from_slice(&[0x80, 0x35]);
    rarp[21] = 3; // RARP request
    let m = extract(&rarp).unwrap();
    assert_eq!((m.l3, m.ethertype, m.arp.op), (L3Kind::Arp, 0x8035, 3));

    assert_eq!(err(&ARP_REQUEST[..41]), (Layer::Arp, K::Truncated));
    let mut bad = ARP_REQUEST;
    bad[16] = 0x86;
    bad[17] = 0xdd; // protocol IPv6
    assert_eq!(err(&bad), (Layer::Arp, K::UnsupportedArp));
    let mut bad = ARP_REQUEST;
    bad[18] = 8; // 8-byte hardware addresses
    assert_eq!(err(&bad), (Layer::Arp, K::UnsupportedArp));
}

#[test]
fn other_ethertypes() {
    // LLDP: accepted, nothing above L2.
    let lldp = cat(&[&MAC_B, &MAC_A, &[0x88, 0xcc], &[0x02, 0x07, 0x04]]);
    let m = extract(&lldp).unwrap();
    assert_eq!(
        (m.l3, m.ethertype, m.l3_offset),
        (L3Kind::Other, 0x88cc, 14)
    );
    assert!(!m.is_ip());
    // 802.3 length field + LLC.
    let llc = cat(&[&MAC_B, &MAC_A, &[0x00, 0x26], &[0x42, 0x42, 0x03]]);
    assert_eq!(extract(&llc).unwrap().l3, L3Kind::Other);
    // A bare Ethernet header.
    assert_eq!(extract(&lldp[..14]).unwrap().l3, L3Kind::Other);
}
