//! The grammar against the summary line: every canonical description builds a frame
//! whose summary is the description again; bad descriptions name the token.

use super::build::{pseudo, sum16};
use super::*;
use crate::flow::{extract, summary, L3Kind};
use crate::policy::Model;

const A: Mac = Mac([0xfa, 0x16, 0x3e, 0, 0, 0x0a]);
const B: Mac = Mac([0xfa, 0x16, 0x3e, 0, 0, 0x0b]);

fn round_trip(text: &str) {
    let spec = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    let frame = build(&spec, A, B);
    assert_eq!(summary(&frame), text, "summary of the frame built from it");
}

#[test]
fn canonical_descriptions_round_trip_through_the_summary() {
    for text in [
        "tcp 10.0.0.10:40000 > 10.0.0.11:22 flags S",
        "tcp 10.0.0.10:40000 > 10.0.0.11:22 flags SA",
        "tcp [fd00::a]:40000 > [fd00::b]:22 flags FA",
        "udp 10.0.0.10:4000 > 10.0.0.11:53",
        "udp [fd00::a]:5353 > [fd00::b]:53",
        "sctp 10.0.0.10:1 > 10.0.0.11:2",
        "dccp 10.0.0.10:1 > 10.0.0.11:2",
        "udplite 10.0.0.10:1 > 10.0.0.11:2",
        "icmp 10.0.0.10 > 10.0.0.11 echo-request id 7",
        "icmp 10.0.0.10 > 10.0.0.11 type 42 code 1",
        "icmp 10.0.0.11 > 10.0.0.10 dest-unreachable code 3 for udp 10.0.0.10:4000 > 10.0.0.11:53",
        "icmp6 fd00::a > fd00::b echo-request id 9",
        "icmp6 fe80::1 > ff02::1:ff00:b neighbor-solicit target fd00::b",
        "icmp6 fd00::b > fd00::a packet-too-big for tcp [fd00::a]:1 > [fd00::b]:2",
        "gre 10.0.0.10 > 10.0.0.11",
        "proto 99 10.0.0.10 > 10.0.0.11",
        "arp who-has 10.0.0.11 tell 10.0.0.10",
        "arp reply 10.0.0.11 is-at fa:16:3e:00:00:0b to 10.0.0.10",
        "arp op 9 10.0.0.11 > 10.0.0.10",
        "vlan 100 tcp 10.0.0.10:1 > 10.0.0.11:2 flags S",
        "vlan 100 vlan 200 udp 10.0.0.10:1 > 10.0.0.11:2",
        "udp 10.0.0.10:4000 > 10.0.0.11:53 frag id 7 offset 0 more",
        "udp 10.0.0.10 > 10.0.0.11 frag id 7 offset 1480",
        "udp [fd00::a]:4000 > [fd00::b]:53 frag id 9 offset 0 more",
        "udp fd00::a > fd00::b frag id 9 offset 8",
        "ethertype 0x88cc",
    ] {
        round_trip(text);
    }
}

#[test]
fn shorthands_and_defaults() {
    // No flags: a SYN; no ICMP type: an echo request; names in place of `type N`.
    let s = |t: &str| summary(&build(&parse(t).unwrap(), A, B));
    assert_eq!(
        s("tcp 10.0.0.10:1 > 10.0.0.11:2"),
        "tcp 10.0.0.10:1 > 10.0.0.11:2 flags S"
    );
    assert_eq!(
        s("tcp 10.0.0.10:1>10.0.0.11:2 flags .s"),
        "tcp 10.0.0.10:1 > 10.0.0.11:2 flags SA"
    );
    assert_eq!(
        s("icmp 10.0.0.10 > 10.0.0.11"),
        "icmp 10.0.0.10 > 10.0.0.11 echo-request"
    );
    assert_eq!(
        s("icmp 10.0.0.10 > 10.0.0.11 type 8 code 0"),
        "icmp 10.0.0.10 > 10.0.0.11 echo-request"
    );
    assert_eq!(
        s("icmp6 fd00::a > fd00::b type 135"),
        "icmp6 fd00::a > fd00::b neighbor-solicit target fd00::b"
    );
    assert_eq!(
        s("icmp6 fd00::a > fd00::b type neighbor-advert target fd00::a"),
        "icmp6 fd00::a > fd00::b neighbor-advert target fd00::a"
    );
    assert_eq!(s("ethertype 35020"), "ethertype 0x88cc");
}

#[test]
fn frames_carry_valid_checksums() {
    let f = build(&parse("tcp 10.0.0.10:1 > 10.0.0.11:2 len 5").unwrap(), A, B);
    // IPv4 header sums to 0xffff with its checksum; so does the TCP pseudo-header sum.
    assert_eq!(sum16(0, &f[14..34]), 0xffff);
    let tcp = &f[34..34 + 25];
    let ip4 = |o: usize| IpAddr::V4(Ipv4Addr::new(f[o], f[o + 1], f[o + 2], f[o + 3]));
    assert_eq!(sum16(pseudo(ip4(26), ip4(30), 6, tcp.len()), tcp), 0xffff);
    let m = extract(&f).unwrap();
    assert_eq!((m.l3, m.key.sport, m.key.dport), (L3Kind::Ipv4, 1, 2));
}

#[test]
fn errors_name_the_token() {
    let e = |t: &str| parse(t).unwrap_err().to_string();
    assert_eq!(
        e("tcp 10.0.0.10:1 < 10.0.0.11:2"),
        "token 3 '<': expected '>'"
    );
    assert!(e("tpc 10.0.0.10:1 > 10.0.0.11:2").starts_with("token 1 'tpc': expected a protocol"));
    assert!(e("tcp 10.0.0.10 > 10.0.0.11").contains("tcp needs ports"));
    assert!(e("tcp 10.0.0.10:99999 > 10.0.0.11:2")
        .starts_with("token 2 '10.0.0.10:99999': expected a port number"));
    assert!(e("tcp 10.0.0.10:1 > 10.0.0.11:2 flags SX").starts_with("token 6 'SX'"));
    assert!(e("icmp fd00::a > fd00::b").contains("write icmp6"));
    assert!(e("icmp 10.0.0.1 > 10.0.0.2 echo-requets").starts_with("token 5 'echo-requets'"));
    assert!(e("udp 10.0.0.1:1 > fd00::2:3").contains("different IP versions"));
    assert!(
        e("tcp 10.0.0.10:1 >").starts_with("at the end of the description: expected an address")
    );
    assert!(e("arp who-has 10.0.0.11 tel 10.0.0.10").starts_with("token 4 'tel': expected 'tell'"));
    assert!(e("vlan 5000 tcp 1.1.1.1:1 > 2.2.2.2:2").starts_with("token 2 '5000'"));
    assert!(e("udp 10.0.0.1:1 > 10.0.0.2:2 frag id 1 offset 3").contains("multiple of 8"));
    assert!(e("").contains("expected a protocol"));
}

fn model() -> Model {
    crate::control::config::parse_str(
        r#"
[[ports]]
name = "vm-a"
mac = "fa:16:3e:00:00:0a"
fixed_ips = ["10.0.0.10", "fd00::a"]
[[ports]]
name = "vm-b"
mac = "fa:16:3e:00:00:0b"
fixed_ips = ["10.0.0.11"]
allowed_address_pairs = [ { ip_address = "10.9.0.0/24", mac_address = "fa:16:3e:00:00:99" } ]
"#,
        "t.toml",
    )
    .unwrap()
    .model
}

#[test]
fn macs_default_to_the_ports_of_the_addresses() {
    let m = model();
    let f = frame_for(&m, "vm-a", "udp 10.0.0.10:1 > 10.0.0.11:2", None, None).unwrap();
    assert_eq!((&f[0..6], &f[6..12]), (&B.0[..], &A.0[..]));
    let f = frame_for(&m, "vm-a", "udp 10.0.0.10:1 > 10.9.0.7:2", None, None).unwrap();
    assert_eq!(
        f[0..6],
        [0xfa, 0x16, 0x3e, 0, 0, 0x99],
        "allowed-address-pair MAC"
    );
    let f = frame_for(
        &m,
        "vm-a",
        "arp who-has 10.0.0.11 tell 10.0.0.10",
        None,
        None,
    )
    .unwrap();
    assert_eq!(f[0..6], [0xff; 6]);
    let f = frame_for(
        &m,
        "vm-a",
        "icmp6 fd00::a > ff02::1:ff00:b type 135 target fd00::b",
        None,
        None,
    )
    .unwrap();
    assert_eq!(f[0..6], [0x33, 0x33, 0xff, 0, 0, 0x0b]);
    let f = frame_for(&m, "vm-a", "udp 10.0.0.10:1 > 224.0.0.251:5353", None, None).unwrap();
    assert_eq!(f[0..6], [0x01, 0, 0x5e, 0, 0, 0xfb]);
    let e = frame_for(&m, "vm-a", "udp 10.0.0.10:1 > 8.8.8.8:53", None, None).unwrap_err();
    assert!(e.contains("--dst-mac"), "{e}");
    let f = frame_for(&m, "vm-a", "udp 10.0.0.10:1 > 8.8.8.8:53", Some(B), None).unwrap_err();
    assert!(f.contains("8.8.8.8"));
    let f = frame_for(&m, "vm-a", "udp 10.0.0.10:1 > 8.8.8.8:53", Some(B), Some(A)).unwrap();
    assert_eq!((&f[0..6], &f[6..12]), (&A.0[..], &B.0[..]));
    assert!(
        frame_for(&m, "nope", "udp 10.0.0.10:1 > 10.0.0.11:2", None, None)
            .unwrap_err()
            .contains("--in-port nope")
    );
}
