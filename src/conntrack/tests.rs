//! Unit tests: every transition rule, timeouts, capacity policy, epochs, zones, the
//! fragment table, and a randomized comparison against a plain `HashMap` model.

use super::tcp::Step;
use super::*;
use crate::flow::{proto, tcp_flags as tf, FragInfo, L3Kind, FAMILY_V4, FAMILY_V6};

const SEC: u64 = 1_000_000_000;
const A: [u8; 4] = [10, 0, 0, 1];
const B: [u8; 4] = [10, 0, 0, 2];

fn cfg(capacity: usize) -> CtConfig {
    CtConfig {
        capacity,
        seed: Some(42),
        ..CtConfig::default()
    }
}

fn meta4(src: [u8; 4], dst: [u8; 4], p: u8, sport: u16, dport: u16) -> PacketMeta {
    PacketMeta {
        l3: L3Kind::Ipv4,
        key: FlowKey {
            src: FlowKey::map_v4(src),
            dst: FlowKey::map_v4(dst),
            sport,
            dport,
            proto: p,
            family: FAMILY_V4,
            _pad: [0; 2],
        },
        ..PacketMeta::default()
    }
}

fn tcp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, flags: u8) -> PacketMeta {
    let mut m = meta4(src, dst, proto::TCP, sport, dport);
    m.tcp_flags = flags;
    m
}

/// Client A:1000 -> server B:80 and back.
fn c2s(flags: u8) -> PacketMeta {
    tcp(A, B, 1000, 80, flags)
}
fn s2c(flags: u8) -> PacketMeta {
    tcp(B, A, 80, 1000, flags)
}

fn icmp4(src: [u8; 4], dst: [u8; 4], ty: u8, code: u8, id: u16) -> PacketMeta {
    meta4(
        src,
        dst,
        proto::ICMP,
        id,
        (u16::from(ty) << 8) | u16::from(code),
    )
}

fn v6(last: u8) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[0] = 0x20;
    a[1] = 0x01;
    a[15] = last;
    a
}

fn meta6(src: [u8; 16], dst: [u8; 16], p: u8, sport: u16, dport: u16) -> PacketMeta {
    PacketMeta {
        l3: L3Kind::Ipv6,
        key: FlowKey {
            src,
            dst,
            sport,
            dport,
            proto: p,
            family: FAMILY_V6,
            _pad: [0; 2],
        },
        ..PacketMeta::default()
    }
}

fn is_tracked(t: Track, want_reply: bool) -> bool {
    matches!(t, Track::Tracked { reply, .. } if reply == want_reply)
}

fn state_of(ct: &Conntrack, h: Handle) -> CtState {
    ct.get(h).map(|e| e.state).unwrap_or(CtState::Free)
}

/// Commit `m` as a new connection (asserting track says New first).
fn open(ct: &mut Conntrack, zone: u16, m: &PacketMeta, now: u64) -> Handle {
    assert_eq!(ct.track(zone, m, now), Track::New);
    ct.commit(zone, m, 1, 0, now).expect("commit")
}

#[test]
fn sizes() {
    assert_eq!(core::mem::size_of::<Entry>(), 64);
    assert_eq!(core::mem::align_of::<Entry>(), 64);
    assert_eq!(core::mem::size_of::<Bucket>(), 64);
}

#[test]
fn tcp_flag_classes() {
    use tcp::{classify_flags as c, TcpIdx};
    assert_eq!(c(tf::SYN), TcpIdx::Syn);
    assert_eq!(c(tf::SYN | tf::ECE | tf::CWR), TcpIdx::Syn);
    assert_eq!(c(tf::SYN | tf::ACK), TcpIdx::SynAck);
    assert_eq!(c(tf::ACK | tf::PSH), TcpIdx::Ack);
    assert_eq!(c(tf::FIN | tf::ACK), TcpIdx::Fin);
    assert_eq!(c(tf::RST), TcpIdx::Rst);
    assert_eq!(c(tf::RST | tf::ACK), TcpIdx::Rst);
    assert_eq!(c(0), TcpIdx::Bad);
    assert_eq!(c(tf::FIN), TcpIdx::Bad);
    assert_eq!(c(tf::SYN | tf::FIN), TcpIdx::Bad);
    assert_eq!(c(tf::SYN | tf::RST), TcpIdx::Bad);
    assert_eq!(c(tf::FIN | tf::PSH | tf::URG), TcpIdx::Bad);
}

#[test]
fn syn_starts_and_bare_ack_is_picked_up() {
    let mut ct = Conntrack::new(cfg(64));
    let h = open(&mut ct, 1, &c2s(tf::SYN), 0);
    assert_eq!(state_of(&ct, h), CtState::TcpSynSent);
    let h2 = open(&mut ct, 1, &tcp(A, B, 2000, 22, tf::ACK), 0);
    assert_eq!(state_of(&ct, h2), CtState::TcpEstablished);
    // The picked-up connection's reply passes.
    assert!(is_tracked(
        ct.track(1, &tcp(B, A, 22, 2000, tf::ACK | tf::PSH), 1),
        true
    ));
    assert_eq!(ct.len(), 2);
    assert_eq!(ct.stats().inserts, 2);
}

#[test]
fn unsolicited_segments_are_invalid() {
    let mut ct = Conntrack::new(cfg(64));
    for flags in [
        tf::SYN | tf::ACK,
        tf::FIN | tf::ACK,
        tf::FIN,
        tf::RST,
        tf::RST | tf::ACK,
        0,
        tf::SYN | tf::FIN,
        tf::PSH,
    ] {
        assert_eq!(
            ct.track(0, &c2s(flags), 0),
            Track::Invalid,
            "flags {flags:#x}"
        );
        assert_eq!(
            ct.commit(0, &c2s(flags), 1, 0, 0),
            Err(CommitError::Invalid)
        );
    }
    assert!(ct.is_empty());
}

#[test]
fn full_handshake_and_fin_close() {
    let mut ct = Conntrack::new(cfg(64));
    let h = open(&mut ct, 0, &c2s(tf::SYN), 0);
    let steps: [(PacketMeta, bool, CtState); 8] = [
        (s2c(tf::SYN | tf::ACK), true, CtState::TcpSynRecv),
        (c2s(tf::ACK), false, CtState::TcpEstablished),
        (c2s(tf::ACK | tf::PSH), false, CtState::TcpEstablished),
        (s2c(tf::ACK), true, CtState::TcpEstablished),
        (c2s(tf::FIN | tf::ACK), false, CtState::TcpFinWait),
        (s2c(tf::ACK), true, CtState::TcpCloseWait),
        (s2c(tf::FIN | tf::ACK), true, CtState::TcpLastAck),
        (c2s(tf::ACK), false, CtState::TcpTimeWait),
    ];
    for (i, (m, reply, st)) in steps.iter().enumerate() {
        let t = ct.track(0, m, i as u64 + 1);
        assert!(is_tracked(t, *reply), "step {i}: {t:?}");
        assert_eq!(state_of(&ct, h), *st, "step {i}");
    }
    let e = ct.get(h).unwrap();
    assert!(e.seen_reply);
    assert_eq!(e.expires_ns, 8 + 120 * SEC);
}

#[test]
fn invalid_segments_on_existing_connections() {
    let mut ct = Conntrack::new(cfg(64));
    let h = open(&mut ct, 0, &c2s(tf::SYN), 0);
    // Before the SYN/ACK: a reply ACK, an original SYN/ACK, FIN are invalid.
    assert_eq!(ct.track(0, &s2c(tf::ACK), 1), Track::Invalid);
    assert_eq!(ct.track(0, &c2s(tf::SYN | tf::ACK), 1), Track::Invalid);
    assert_eq!(ct.track(0, &c2s(tf::FIN | tf::ACK), 1), Track::Invalid);
    assert_eq!(ct.track(0, &c2s(tf::ACK), 1), Track::Invalid);
    // SYN retransmission is fine.
    assert!(is_tracked(ct.track(0, &c2s(tf::SYN), 1), false));
    assert_eq!(state_of(&ct, h), CtState::TcpSynSent);
    ct.track(0, &s2c(tf::SYN | tf::ACK), 2);
    ct.track(0, &c2s(tf::ACK), 3);
    assert_eq!(state_of(&ct, h), CtState::TcpEstablished);
    // SYN on an established connection, either direction; SYN/ACK in the original
    // direction; no flags: invalid, state unchanged.
    let expires = ct.get(h).unwrap().expires_ns;
    assert_eq!(ct.track(0, &c2s(tf::SYN), 4), Track::Invalid);
    assert_eq!(ct.track(0, &s2c(tf::SYN), 4), Track::Invalid);
    assert_eq!(ct.track(0, &c2s(tf::SYN | tf::ACK), 4), Track::Invalid);
    assert_eq!(ct.track(0, &c2s(0), 4), Track::Invalid);
    assert_eq!(ct.track(0, &s2c(tf::FIN), 4), Track::Invalid);
    assert_eq!(state_of(&ct, h), CtState::TcpEstablished);
    assert_eq!(ct.get(h).unwrap().expires_ns, expires);
    // A retransmitted SYN/ACK from the server is tolerated, state kept.
    assert!(is_tracked(ct.track(0, &s2c(tf::SYN | tf::ACK), 5), true));
    assert_eq!(state_of(&ct, h), CtState::TcpEstablished);
    assert_eq!(ct.stats().invalid, 9);
}

#[test]
fn rst_closes_from_any_state_and_syn_reopens() {
    let mut ct = Conntrack::new(cfg(64));
    let h = open(&mut ct, 0, &c2s(tf::SYN), 0);
    assert!(is_tracked(ct.track(0, &s2c(tf::RST | tf::ACK), 1), true));
    assert_eq!(state_of(&ct, h), CtState::TcpClose);
    assert_eq!(ct.get(h).unwrap().expires_ns, 1 + 10 * SEC);
    // After RST the client may open again: the old entry goes, the SYN is new.
    assert_eq!(ct.track(0, &c2s(tf::SYN), 2), Track::New);
    assert!(ct.get(h).is_none());
    let h2 = ct.commit(0, &c2s(tf::SYN), 7, 3, 2).unwrap();
    assert_ne!(h, h2);
    assert_eq!(state_of(&ct, h2), CtState::TcpSynSent);

    // RST in the original direction on an established connection.
    let h3 = open(&mut ct, 0, &tcp(A, B, 3000, 443, tf::ACK), 0);
    assert!(is_tracked(
        ct.track(0, &tcp(A, B, 3000, 443, tf::RST), 1),
        false
    ));
    assert_eq!(state_of(&ct, h3), CtState::TcpClose);
    // A reply SYN in CLOSE is invalid (Linux).
    assert_eq!(
        ct.track(0, &tcp(B, A, 443, 3000, tf::SYN), 1),
        Track::Invalid
    );
}

#[test]
fn time_wait_reopen_in_reverse_direction() {
    let mut ct = Conntrack::new(cfg(64));
    let h = open(&mut ct, 0, &c2s(tf::ACK), 0);
    ct.track(0, &c2s(tf::FIN | tf::ACK), 1);
    ct.track(0, &s2c(tf::FIN | tf::ACK), 2);
    ct.track(0, &c2s(tf::ACK), 3);
    assert_eq!(state_of(&ct, h), CtState::TcpTimeWait);
    // The former server opens to the former client with the same ports: new connection.
    assert_eq!(ct.track(0, &s2c(tf::SYN), 4), Track::New);
    let h2 = ct.commit(0, &s2c(tf::SYN), 1, 1, 4).unwrap();
    let e = ct.get(h2).unwrap();
    assert_eq!(e.orig, s2c(tf::SYN).key);
    assert_eq!(e.tag, 1);
}

#[test]
fn simultaneous_open() {
    let mut ct = Conntrack::new(cfg(64));
    let h = open(&mut ct, 0, &c2s(tf::SYN), 0);
    assert!(is_tracked(ct.track(0, &s2c(tf::SYN), 1), true));
    assert_eq!(state_of(&ct, h), CtState::TcpSynSent2);
    assert!(is_tracked(ct.track(0, &c2s(tf::SYN | tf::ACK), 2), false));
    assert_eq!(state_of(&ct, h), CtState::TcpSynRecv);
    assert!(is_tracked(ct.track(0, &c2s(tf::ACK), 3), false));
    assert_eq!(state_of(&ct, h), CtState::TcpEstablished);
}

#[test]
fn tcp_state_timeouts() {
    let c = CtConfig {
        tcp_syn_timeout: 5,
        tcp_established_timeout: 100,
        tcp_fin_timeout: 7,
        tcp_close_timeout: 2,
        ..cfg(64)
    };
    let mut ct = Conntrack::new(c);
    let h = open(&mut ct, 0, &c2s(tf::SYN), 0);
    assert_eq!(ct.get(h).unwrap().expires_ns, 5 * SEC);
    // Just before the deadline: alive; the SYN/ACK moves it on.
    assert!(is_tracked(
        ct.track(0, &s2c(tf::SYN | tf::ACK), 5 * SEC - 1),
        true
    ));
    assert_eq!(ct.get(h).unwrap().expires_ns, 10 * SEC - 1);
    ct.track(0, &c2s(tf::ACK), 6 * SEC);
    assert_eq!(ct.get(h).unwrap().expires_ns, 106 * SEC);
    ct.track(0, &c2s(tf::FIN | tf::ACK), 10 * SEC);
    assert_eq!(ct.get(h).unwrap().expires_ns, 17 * SEC);
    // At the deadline the entry is gone: the server's ACK is unsolicited... but a bare
    // ACK can be picked up, so it is New; the FIN is Invalid.
    assert_eq!(
        ct.track(0, &s2c(tf::FIN | tf::ACK), 17 * SEC),
        Track::Invalid
    );
    assert!(ct.get(h).is_none());
    assert_eq!(ct.stats().expired, 1);
    assert_eq!(ct.track(0, &s2c(tf::ACK), 17 * SEC), Track::New);
    // RST -> close timeout.
    let h = open(&mut ct, 0, &c2s(tf::SYN), 20 * SEC);
    ct.track(0, &s2c(tf::RST), 21 * SEC);
    assert_eq!(ct.get(h).unwrap().expires_ns, 23 * SEC);
}

#[test]
fn udp_unreplied_then_stream() {
    let mut ct = Conntrack::new(cfg(64));
    let q = meta4(A, B, proto::UDP, 5353, 53);
    let r = meta4(B, A, proto::UDP, 53, 5353);
    // An unsolicited reply-looking packet is just new (UDP has no states).
    assert_eq!(ct.track(0, &r, 0), Track::New);
    let h = open(&mut ct, 0, &q, 0);
    assert_eq!(ct.get(h).unwrap().expires_ns, 30 * SEC);
    assert_eq!(ct.get(h).unwrap().state, CtState::Udp);
    assert!(is_tracked(ct.track(0, &q, SEC), false));
    assert_eq!(ct.get(h).unwrap().expires_ns, 31 * SEC);
    assert!(!ct.get(h).unwrap().seen_reply);
    assert!(is_tracked(ct.track(0, &r, 2 * SEC), true));
    assert!(ct.get(h).unwrap().seen_reply);
    assert_eq!(ct.get(h).unwrap().expires_ns, 122 * SEC);
    assert!(is_tracked(ct.track(0, &q, 3 * SEC), false));
    assert_eq!(ct.get(h).unwrap().expires_ns, 123 * SEC);
    assert_eq!(ct.track(0, &q, 123 * SEC), Track::New);
}

#[test]
fn other_protocols() {
    let mut ct = Conntrack::new(cfg(64));
    let g = meta4(A, B, proto::GRE, 0, 0);
    let h = open(&mut ct, 0, &g, 0);
    assert_eq!(ct.get(h).unwrap().state, CtState::Other);
    assert_eq!(ct.get(h).unwrap().expires_ns, 600 * SEC);
    assert!(is_tracked(
        ct.track(0, &meta4(B, A, proto::GRE, 0, 0), 1),
        true
    ));
    // Another protocol between the same hosts is another connection.
    assert_eq!(ct.track(0, &meta4(B, A, proto::ESP, 0, 0), 1), Track::New);
    // SCTP with ports.
    let s = meta4(A, B, proto::SCTP, 9, 36412);
    open(&mut ct, 0, &s, 0);
    assert!(is_tracked(
        ct.track(0, &meta4(B, A, proto::SCTP, 36412, 9), 1),
        true
    ));
    assert_eq!(
        ct.track(0, &meta4(B, A, proto::SCTP, 36412, 10), 1),
        Track::New
    );
}

#[test]
fn icmp_echo_request_reply_and_unsolicited_reply() {
    let mut ct = Conntrack::new(cfg(64));
    // Unsolicited echo reply.
    assert_eq!(ct.track(0, &icmp4(B, A, 0, 0, 7), 0), Track::Invalid);
    let req = icmp4(A, B, 8, 0, 7);
    let h = open(&mut ct, 0, &req, 0);
    assert_eq!(ct.get(h).unwrap().state, CtState::Icmp);
    assert_eq!(ct.get(h).unwrap().orig, req.key);
    assert_eq!(ct.get(h).unwrap().expires_ns, 30 * SEC);
    match ct.track(0, &icmp4(B, A, 0, 0, 7), 1) {
        Track::Tracked { reply, handle, .. } => {
            assert!(reply);
            assert_eq!(ct.orig(handle), Some(req.key));
        }
        t => panic!("{t:?}"),
    }
    // Another id, or a reply of another query type, is not this connection.
    assert_eq!(ct.track(0, &icmp4(B, A, 0, 0, 8), 1), Track::Invalid);
    assert_eq!(ct.track(0, &icmp4(B, A, 14, 0, 7), 1), Track::Invalid);
    // A "reply" sent by the requester is not a reply.
    assert_eq!(ct.track(0, &icmp4(A, B, 0, 0, 7), 1), Track::Invalid);
    // Next request of the same id refreshes.
    assert!(is_tracked(ct.track(0, &req, 2), false));
    // Timestamp, info, mask requests start connections; their replies match.
    for (q, r) in [(13u8, 14u8), (15, 16), (17, 18)] {
        open(&mut ct, 0, &icmp4(A, B, q, 0, 7), 0);
        assert!(
            is_tracked(ct.track(0, &icmp4(B, A, r, 0, 7), 1), true),
            "{q}"
        );
    }
    // Non-query, non-error ICMP types never start one (router advertisement 9).
    assert_eq!(ct.track(0, &icmp4(A, B, 9, 0, 0), 0), Track::Invalid);
    assert_eq!(
        ct.commit(0, &icmp4(A, B, 9, 0, 0), 1, 0, 0),
        Err(CommitError::Invalid)
    );
    // Expiry.
    assert_eq!(ct.track(0, &icmp4(B, A, 0, 0, 7), 32 * SEC), Track::Invalid);
}

#[test]
fn icmpv6_echo() {
    let mut ct = Conntrack::new(cfg(64));
    let req = meta6(v6(1), v6(2), proto::ICMPV6, 99, 128 << 8);
    let rep = meta6(v6(2), v6(1), proto::ICMPV6, 99, 129 << 8);
    assert_eq!(ct.track(3, &rep, 0), Track::Invalid);
    open(&mut ct, 3, &req, 0);
    assert!(is_tracked(ct.track(3, &rep, 1), true));
    // Node information query 139 / reply 140.
    open(
        &mut ct,
        3,
        &meta6(v6(1), v6(2), proto::ICMPV6, 5, 139 << 8),
        0,
    );
    assert!(is_tracked(
        ct.track(3, &meta6(v6(2), v6(1), proto::ICMPV6, 5, 140 << 8), 1),
        true
    ));
    // ND (135) is not tracked here.
    assert_eq!(
        ct.track(3, &meta6(v6(1), v6(2), proto::ICMPV6, 0, 135 << 8), 0),
        Track::Invalid
    );
}

fn error4(from: [u8; 4], to: [u8; 4], ty: u8, inner: FlowKey) -> PacketMeta {
    let mut m = icmp4(from, to, ty, 0, 0);
    m.icmp_inner = inner;
    m
}

#[test]
fn related_icmp_errors_v4_both_orientations() {
    let mut ct = Conntrack::new(cfg(64));
    let u = meta4(A, B, proto::UDP, 4000, 53);
    let h = open(&mut ct, 0, &u, 0);
    let router = [192, 0, 2, 1];
    // Error about the original direction's packet, sent back to A.
    for ty in [3u8, 4, 5, 11, 12] {
        match ct.track(0, &error4(router, A, ty, u.key), 1) {
            Track::Related {
                handle,
                epoch,
                cut,
                tag,
            } => {
                assert_eq!(handle, h);
                assert_eq!(ct.orig(handle), Some(u.key));
                assert_eq!((epoch, cut, tag), (1, false, 0));
            }
            t => panic!("type {ty}: {t:?}"),
        }
    }
    // Error about the reply direction's packet (B -> A), sent to B.
    assert!(matches!(
        ct.track(0, &error4(router, B, 3, u.key.reversed()), 1),
        Track::Related { .. }
    ));
    // Quoting something untracked, another zone, nothing, or another family: invalid.
    let other = meta4(A, B, proto::UDP, 4001, 53).key;
    assert_eq!(ct.track(0, &error4(router, A, 3, other), 1), Track::Invalid);
    assert_eq!(ct.track(1, &error4(router, A, 3, u.key), 1), Track::Invalid);
    assert_eq!(
        ct.track(0, &error4(router, A, 3, FlowKey::default()), 1),
        Track::Invalid
    );
    let mut v6inner = u.key;
    v6inner.family = FAMILY_V6;
    assert_eq!(
        ct.track(0, &error4(router, A, 3, v6inner), 1),
        Track::Invalid
    );
    // Related does not refresh the entry.
    assert_eq!(ct.get(h).unwrap().expires_ns, 30 * SEC);
    // Error quoting a tracked echo request.
    let req = icmp4(A, B, 8, 0, 1);
    open(&mut ct, 0, &req, 0);
    assert!(matches!(
        ct.track(0, &error4(router, A, 11, req.key), 1),
        Track::Related { .. }
    ));
    // Error quoting a TCP segment of a tracked connection.
    open(&mut ct, 0, &c2s(tf::SYN), 0);
    assert!(matches!(
        ct.track(0, &error4(router, A, 3, c2s(0).key), 1),
        Track::Related { .. }
    ));
    // Once expired, no longer related.
    assert_eq!(
        ct.track(0, &error4(router, A, 3, u.key), 30 * SEC),
        Track::Invalid
    );
    assert_eq!(ct.stats().related, 8);
}

#[test]
fn related_icmpv6_errors_both_orientations() {
    let mut ct = Conntrack::new(cfg(64));
    let t = meta6(v6(1), v6(2), proto::TCP, 40000, 443);
    let mut syn = t;
    syn.tcp_flags = tf::SYN;
    open(&mut ct, 5, &syn, 0);
    for ty in 1u8..=4 {
        for inner in [t.key, t.key.reversed()] {
            let mut e = meta6(v6(9), v6(1), proto::ICMPV6, 0, u16::from(ty) << 8);
            e.icmp_inner = inner;
            assert!(
                matches!(ct.track(5, &e, 1), Track::Related { .. }),
                "type {ty}"
            );
        }
    }
    let mut e = meta6(v6(9), v6(1), proto::ICMPV6, 0, 1 << 8);
    e.icmp_inner = meta6(v6(1), v6(3), proto::TCP, 40000, 443).key;
    assert_eq!(ct.track(5, &e, 1), Track::Invalid);
}

#[test]
fn later_fragments_and_non_ip_are_invalid() {
    let mut ct = Conntrack::new(cfg(64));
    let mut m = meta4(A, B, proto::UDP, 0, 0);
    m.frag = FragInfo {
        is_fragment: true,
        offset: 100,
        more: false,
        id: 5,
    };
    assert_eq!(ct.track(0, &m, 0), Track::Invalid);
    assert_eq!(ct.commit(0, &m, 0, 0, 0), Err(CommitError::Invalid));
    assert_eq!(ct.track(0, &PacketMeta::default(), 0), Track::Invalid);
    // A first fragment is tracked like a packet.
    m.frag.offset = 0;
    m.frag.more = true;
    m.key.sport = 1;
    m.key.dport = 2;
    assert_eq!(ct.track(0, &m, 0), Track::New);
}

#[test]
fn zones_are_isolated() {
    let mut ct = Conntrack::new(cfg(64));
    open(&mut ct, 1, &c2s(tf::SYN), 0);
    // The SYN/ACK in zone 2 is unsolicited there.
    assert_eq!(ct.track(2, &s2c(tf::SYN | tf::ACK), 1), Track::Invalid);
    assert!(is_tracked(ct.track(1, &s2c(tf::SYN | tf::ACK), 1), true));
    open(&mut ct, 2, &c2s(tf::SYN), 0);
    open(&mut ct, u16::MAX, &c2s(tf::SYN), 0);
    assert_eq!(ct.len(), 3);
    assert_eq!(ct.remove_zone(1), 1);
    assert_eq!(ct.len(), 2);
    assert_eq!(ct.track(1, &s2c(tf::FIN | tf::ACK), 1), Track::Invalid);
    assert!(ct.iter().all(|e| e.zone != 1));
    assert_eq!(ct.iter().count(), 2);
}

#[test]
fn epoch_and_cut_bookkeeping() {
    let mut ct = Conntrack::new(cfg(64));
    let m = c2s(tf::SYN);
    assert_eq!(ct.track(0, &m, 0), Track::New);
    let h = ct.commit(0, &m, 4, 2, 0).unwrap();
    match ct.track(0, &s2c(tf::SYN | tf::ACK), 1) {
        Track::Tracked {
            handle,
            reply,
            epoch,
            cut,
            tag,
        } => {
            assert_eq!(handle, h);
            assert!(reply);
            assert_eq!((epoch, cut, tag), (4, false, 2));
            assert_eq!(ct.orig(handle), Some(m.key));
        }
        t => panic!("{t:?}"),
    }
    assert!(ct.set_epoch(h, 5, true));
    // Cut connections are still tracked (the pipeline drops them); state moves on.
    match ct.track(0, &c2s(tf::ACK), 2) {
        Track::Tracked {
            epoch, cut, reply, ..
        } => assert_eq!((epoch, cut, reply), (5, true, false)),
        t => panic!("{t:?}"),
    }
    assert_eq!(state_of(&ct, h), CtState::TcpEstablished);
    // A bare ACK from the other side does not create a fresh entry: it hits the cut one.
    assert!(matches!(
        ct.track(0, &s2c(tf::ACK), 3),
        Track::Tracked { cut: true, .. }
    ));
    assert!(ct.set_epoch(h, 6, false));
    assert!(matches!(
        ct.track(0, &s2c(tf::ACK), 4),
        Track::Tracked {
            cut: false,
            epoch: 6,
            ..
        }
    ));
    // Commit of an existing connection returns it unchanged.
    assert_eq!(ct.commit(0, &c2s(tf::SYN), 9, 9, 5), Ok(h));
    assert_eq!(ct.get(h).unwrap().epoch, 6);
    // Stale handles are refused.
    assert!(ct.remove(h));
    assert!(!ct.set_epoch(h, 7, false));
    assert!(!ct.remove(h));
    assert!(ct.get(h).is_none());
    let h2 = open(&mut ct, 0, &c2s(tf::SYN), 6);
    assert_eq!(h2.slot(), h.slot());
    assert!(!ct.set_epoch(h, 7, false));
    assert!(ct.get(h2).is_some());
}

#[test]
fn capacity_full_policy() {
    let mut ct = Conntrack::new(cfg(8));
    assert_eq!(ct.capacity(), 8);
    for i in 0..8u16 {
        open(&mut ct, 0, &meta4(A, B, proto::UDP, 1000 + i, 53), 0);
        // Replied: such connections are never evicted to make room.
        assert!(is_tracked(
            ct.track(0, &meta4(B, A, proto::UDP, 53, 1000 + i), 0),
            true
        ));
    }
    assert_eq!(ct.len(), 8);
    let extra = meta4(A, B, proto::UDP, 2000, 53);
    assert_eq!(ct.track(0, &extra, SEC), Track::New);
    assert_eq!(ct.commit(0, &extra, 1, 0, SEC), Err(CommitError::Full));
    assert_eq!(ct.stats().full, 1);
    assert_eq!(ct.len(), 8);
    // Existing connections still work.
    assert!(is_tracked(
        ct.track(0, &meta4(B, A, proto::UDP, 53, 1000), SEC),
        true
    ));
    // Once entries have expired, commit reclaims them (bounded sweep).
    let later = 121 * SEC; // replied UDP: the stream timeout (120 s)
    let h = ct.commit(0, &extra, 1, 0, later).expect("reclaimed");
    assert!(ct.get(h).is_some());
    assert!(ct.len() <= 8);
    assert!(ct.stats().expired >= 1);
    // Zero capacity: everything is full, nothing panics.
    let mut z = Conntrack::new(cfg(0));
    assert_eq!(z.track(0, &extra, 0), Track::New);
    assert_eq!(z.commit(0, &extra, 1, 0, 0), Err(CommitError::Full));
    assert_eq!(z.expire(0, 100), 0);
}

#[test]
fn never_exceeds_capacity_under_churn() {
    let mut ct = Conntrack::new(cfg(100));
    let mut full = 0;
    for i in 0..10_000u32 {
        let m = meta4(A, [10, 1, (i >> 8) as u8, i as u8], proto::UDP, 1, 2);
        let now = u64::from(i) * SEC / 10;
        if ct.commit(0, &m, 1, 0, now).is_err() {
            full += 1;
        }
        assert!(ct.len() <= 100);
        ct.expire(now, 4);
    }
    // 30 s timeout at 10 new flows/s = 300 live flows wanted: many refusals, bounded.
    assert!(full > 0);
    assert_eq!(ct.stats().full, full);
    assert_eq!(ct.stats().inserts + full, 10_000);
}

#[test]
fn full_table_evicts_an_unreplied_connection_first() {
    // Linux's early_drop: a new connection may take the place of one that never saw a
    // reply; replied connections stay.
    let mut ct = Conntrack::new(cfg(8));
    for i in 0..8u16 {
        open(&mut ct, 0, &meta4(A, B, proto::UDP, 1000 + i, 53), 0);
        if i != 3 {
            assert!(is_tracked(
                ct.track(0, &meta4(B, A, proto::UDP, 53, 1000 + i), 0),
                true
            ));
        }
    }
    let extra = meta4(A, B, proto::UDP, 2000, 53);
    match ct.commit(0, &extra, 1, 0, SEC) {
        Ok(h) => {
            assert!(ct.get(h).is_some());
            assert_eq!(ct.stats().early_drop, 1);
            assert_eq!(ct.len(), 8);
            // The unreplied one (sport 1003) was the victim; every replied one remains.
            assert_eq!(
                ct.track(0, &meta4(A, B, proto::UDP, 1003, 53), SEC),
                Track::New
            );
            for i in (0..8u16).filter(|i| *i != 3) {
                assert!(is_tracked(
                    ct.track(0, &meta4(A, B, proto::UDP, 1000 + i, 53), SEC),
                    false
                ));
            }
        }
        // The unreplied entry is not in the new key's candidate buckets: refused.
        Err(e) => {
            assert_eq!(e, CommitError::Full);
            assert_eq!(ct.stats().early_drop, 0);
        }
    }
}

#[test]
fn fills_to_capacity_and_finds_everything() {
    // Structured keys (like the benchmark's) up to the last slot: no refusal, every key
    // found, every handle still valid after the cuckoo steps that made room.
    let n = 131_072u32; // 32768 buckets: 50% of the ways used when full
    let mut ct = Conntrack::new(cfg(n as usize));
    let flow = |i: u32| {
        let mut m = tcp(
            [10, (i >> 16) as u8, (i >> 8) as u8, i as u8],
            [192, 168, 0, (i % 7) as u8],
            1024 + (i % 50_000) as u16,
            443,
            tf::ACK,
        );
        m.key.dport = 443;
        ((i % 64) as u16, m)
    };
    let mut handles = Vec::with_capacity(n as usize);
    for i in 0..n {
        let (z, m) = flow(i);
        handles.push(ct.commit(z, &m, 1, 0, 0).expect("below capacity"));
    }
    assert_eq!(ct.len(), n as usize);
    assert_eq!(ct.stats().full, 0);
    assert!(ct.stats().displaced > 0, "{:?}", ct.stats());
    for i in 0..n {
        let (z, m) = flow(i);
        match ct.track(z, &m, 1) {
            Track::Tracked { handle, .. } => {
                assert_eq!(handle, handles[i as usize]);
                assert_eq!(ct.orig(handle), Some(m.key));
            }
            t => panic!("flow {i}: {t:?}"),
        }
    }
    // Remove every other entry (exercises spill-counter bookkeeping), then refill.
    for h in handles.iter().step_by(2) {
        assert!(ct.remove(*h));
    }
    for i in (0..n).step_by(2) {
        let (z, m) = flow(i + n);
        ct.commit(z, &m, 1, 0, 0).expect("room again");
    }
    assert_eq!(ct.len(), n as usize);
    for i in (1..n).step_by(2) {
        let (z, m) = flow(i);
        assert!(
            matches!(ct.track(z, &m, 1), Track::Tracked { .. }),
            "flow {i}"
        );
    }
    for i in (0..n).step_by(2) {
        let (z, m) = flow(i + n);
        assert!(
            matches!(ct.track(z, &m, 1), Track::Tracked { .. }),
            "flow {}",
            i + n
        );
    }
}

#[test]
fn expire_sweeps_with_budget() {
    let mut ct = Conntrack::new(cfg(64));
    for i in 0..10u16 {
        open(&mut ct, 0, &meta4(A, B, proto::UDP, i, 1), 0);
    }
    open(&mut ct, 0, &c2s(tf::ACK), 0);
    assert_eq!(ct.expire(29 * SEC, 64), 0);
    let mut removed = 0;
    for _ in 0..8 {
        removed += ct.expire(30 * SEC, 8);
    }
    assert_eq!(removed, 10);
    assert_eq!(ct.len(), 1);
    assert_eq!(ct.stats().expired, 10);
    ct.clear();
    assert!(ct.is_empty());
}

#[test]
fn burst_matches_sequential() {
    let pkts: Vec<(u16, PacketMeta)> = (0..100u16)
        .map(|i| {
            let flags = [
                tf::SYN,
                tf::SYN | tf::ACK,
                tf::ACK,
                tf::FIN | tf::ACK,
                tf::RST,
            ][usize::from(i % 5)];
            let m = if i % 2 == 0 {
                tcp(A, B, 1000 + i % 7, 80, flags)
            } else {
                tcp(B, A, 80, 1000 + i % 7, flags)
            };
            (i % 3, m)
        })
        .collect();
    let mut seq = Conntrack::new(cfg(64));
    let mut bur = Conntrack::new(cfg(64));
    for c in [&mut seq, &mut bur] {
        for z in 0..3 {
            for p in 0..7 {
                c.commit(z, &tcp(A, B, 1000 + p, 80, tf::SYN), 1, 0, 0)
                    .unwrap();
            }
        }
    }
    let want: Vec<Track> = pkts.iter().map(|(z, m)| seq.track(*z, m, 1)).collect();
    let refs: Vec<(u16, &PacketMeta)> = pkts.iter().map(|(z, m)| (*z, m)).collect();
    let mut got = vec![Track::Invalid; pkts.len()];
    bur.track_burst(&refs, 1, &mut got);
    assert_eq!(got, want);
    assert_eq!(seq.stats(), bur.stats());
}

#[test]
fn burst_stops_at_the_shorter_slice() {
    // 40 packets (more than two groups) but room for 37 outcomes: exactly the first 37
    // are tracked, the rest of the table untouched.
    let mut ct = Conntrack::new(cfg(64));
    for p in 0..40u16 {
        ct.commit(0, &tcp(A, B, 1000 + p, 80, tf::SYN), 1, 0, 0)
            .unwrap();
    }
    let pkts: Vec<PacketMeta> = (0..40u16)
        .map(|p| tcp(B, A, 80, 1000 + p, tf::SYN | tf::ACK))
        .collect();
    let refs: Vec<(u16, &PacketMeta)> = pkts.iter().map(|m| (0, m)).collect();
    let mut got = vec![Track::New; 37];
    let before = ct.stats().hits;
    ct.track_burst(&refs, 1, &mut got);
    assert!(got
        .iter()
        .all(|t| matches!(t, Track::Tracked { reply: true, .. })));
    assert_eq!(ct.stats().hits - before, 37);
    // The 38th connection is still in SYN_SENT (its SYN/ACK was not tracked).
    let h = match ct.track(0, &tcp(A, B, 1037, 80, tf::SYN), 1) {
        Track::Tracked { handle, .. } => handle,
        t => panic!("{t:?}"),
    };
    assert_eq!(ct.get(h).map(|e| e.state), Some(CtState::TcpSynSent));
}

// ---------------------------------------------------------------------------------------
// Randomized comparison with a reference model.

/// The reference: a `HashMap` keyed by (zone, original pseudo key), looked up under the
/// packet's pseudo key and its reverse; no index, no slab, no capacity pressure.
struct Model {
    map: std::collections::HashMap<(u16, FlowKey), MEntry>,
    cfg: CtConfig,
}

#[derive(Clone, Copy)]
struct MEntry {
    state: CtState,
    seen_reply: bool,
    expires: u64,
    epoch: u64,
    cut: bool,
    tag: u8,
    orig: FlowKey,
}

/// ICMP query -> pseudo key with ports (requester id, responder request type); the
/// model's own, independent formulation.
fn model_pseudo(k: &FlowKey) -> Option<(FlowKey, Option<bool>)> {
    let mut p = *k;
    p._pad = [0; 2];
    if !k.is_icmp() {
        return Some((p, None));
    }
    let t = k.icmp_type();
    let pairs: &[(u8, u8)] = if k.family == FAMILY_V4 {
        &[(8, 0), (13, 14), (15, 16), (17, 18)]
    } else {
        &[(128, 129), (139, 140)]
    };
    for &(q, r) in pairs {
        if t == q {
            p.sport = k.sport;
            p.dport = u16::from(q);
            return Some((p, Some(true)));
        }
        if t == r {
            p.sport = u16::from(q);
            p.dport = k.sport;
            return Some((p, Some(false)));
        }
    }
    None
}

impl Model {
    fn timeout(&self, st: CtState, seen_reply: bool) -> u64 {
        let c = &self.cfg;
        SEC * match st {
            CtState::TcpSynSent | CtState::TcpSynSent2 | CtState::TcpSynRecv => c.tcp_syn_timeout,
            CtState::TcpEstablished => c.tcp_established_timeout,
            CtState::TcpClose => c.tcp_close_timeout,
            CtState::Udp if seen_reply => c.udp_stream_timeout,
            CtState::Udp => c.udp_timeout,
            CtState::Icmp => c.icmp_timeout,
            CtState::Other => c.other_timeout,
            CtState::Free => 0,
            _ => c.tcp_fin_timeout,
        }
    }

    /// Live entry for a pseudo key: (map key, is reply).
    fn find(&mut self, zone: u16, p: &FlowKey, now: u64) -> Option<((u16, FlowKey), bool)> {
        for (k, reply) in [((zone, *p), false), ((zone, p.reversed()), true)] {
            if let Some(e) = self.map.get(&k) {
                if e.expires > now {
                    return Some((k, reply));
                }
                self.map.remove(&k);
            }
        }
        None
    }

    fn track(&mut self, zone: u16, m: &PacketMeta, now: u64) -> (Track, Option<FlowKey>) {
        let k = &m.key;
        if m.frag.is_later_fragment() || k.family == 0 {
            return (Track::Invalid, None);
        }
        if k.is_icmp() && key::icmp_is_error(k.family, k.icmp_type()) {
            let q = &m.icmp_inner;
            if q.family != k.family || (q.is_icmp() && key::icmp_is_error(q.family, q.icmp_type()))
            {
                return (Track::Invalid, None);
            }
            let Some((p, _)) = model_pseudo(q) else {
                return (Track::Invalid, None);
            };
            return match self.find(zone, &p, now) {
                Some((mk, _)) => {
                    let e = self.map[&mk];
                    (
                        Track::Related {
                            handle: Handle { slot: 0, gen: 0 },
                            epoch: e.epoch,
                            cut: e.cut,
                            tag: e.tag,
                        },
                        Some(e.orig),
                    )
                }
                None => (Track::Invalid, None),
            };
        }
        let Some((p, icmp_req)) = model_pseudo(k) else {
            return (Track::Invalid, None);
        };
        let idx = tcp::classify_flags(m.tcp_flags);
        let Some((mk, reply)) = self.find(zone, &p, now) else {
            return match (k.proto, icmp_req) {
                (_, Some(false)) => (Track::Invalid, None),
                (_, Some(true)) => (Track::New, None),
                (proto::TCP, None) if tcp::initial(idx).is_none() => (Track::Invalid, None),
                _ => (Track::New, None),
            };
        };
        let mut e = self.map[&mk];
        if let Some(req) = icmp_req {
            if req == reply {
                return (Track::Invalid, None);
            }
        }
        if e.state.is_tcp() {
            match tcp::step(e.state, reply, idx) {
                Step::To(s) => {
                    e.state = s;
                    e.expires = now + self.timeout(s, false);
                }
                Step::Keep => {}
                Step::Invalid => return (Track::Invalid, None),
                Step::Reopen => {
                    self.map.remove(&mk);
                    return (Track::New, None);
                }
            }
        } else {
            e.expires = now + self.timeout(e.state, e.seen_reply || reply);
        }
        e.seen_reply |= reply;
        self.map.insert(mk, e);
        (
            Track::Tracked {
                handle: Handle { slot: 0, gen: 0 },
                reply,
                epoch: e.epoch,
                cut: e.cut,
                tag: e.tag,
            },
            Some(e.orig),
        )
    }

    fn commit(&mut self, zone: u16, m: &PacketMeta, epoch: u64, tag: u8, now: u64) {
        let (p, _) = model_pseudo(&m.key).expect("commit of an untrackable packet");
        if self.find(zone, &p, now).is_some() {
            return;
        }
        let state = if m.key.is_icmp() {
            CtState::Icmp
        } else {
            match m.key.proto {
                proto::TCP => tcp::initial(tcp::classify_flags(m.tcp_flags)).expect("startable"),
                proto::UDP => CtState::Udp,
                _ => CtState::Other,
            }
        };
        let mut orig = m.key;
        orig._pad = [0; 2];
        self.map.insert(
            (zone, p),
            MEntry {
                state,
                seen_reply: false,
                expires: now + self.timeout(state, false),
                epoch,
                cut: false,
                tag,
                orig,
            },
        );
    }

    fn live(&self, now: u64) -> usize {
        self.map.values().filter(|e| e.expires > now).count()
    }
}

/// Small deterministic PRNG (xorshift64*), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn random_packet(r: &mut Rng) -> PacketMeta {
    let hosts = [A, B, [10, 0, 0, 3]];
    let s = hosts[r.below(3) as usize];
    let d = hosts[r.below(3) as usize];
    let sp = [1000u16, 80, 8][r.below(3) as usize];
    let dp = [1000u16, 80, 8][r.below(3) as usize];
    match r.below(10) {
        0..=4 => {
            let flags = [
                tf::SYN,
                tf::SYN | tf::ACK,
                tf::ACK,
                tf::ACK | tf::PSH,
                tf::FIN | tf::ACK,
                tf::RST,
                0,
                tf::FIN,
            ][r.below(8) as usize];
            tcp(s, d, sp, dp, flags)
        }
        5 | 6 => meta4(s, d, proto::UDP, sp, dp),
        7 => {
            let ty = [8u8, 0, 13, 14, 9][r.below(5) as usize];
            icmp4(s, d, ty, 0, sp)
        }
        8 => {
            // An error quoting a random TCP/UDP/echo key.
            let inner = match r.below(3) {
                0 => tcp(s, d, sp, dp, 0).key,
                1 => meta4(d, s, proto::UDP, dp, sp).key,
                _ => icmp4(s, d, 8, 0, sp).key,
            };
            let mut e = icmp4([192, 0, 2, 1], s, [3u8, 11][r.below(2) as usize], 0, 0);
            e.icmp_inner = inner;
            e
        }
        _ => meta4(s, d, proto::GRE, 0, 0),
    }
}

/// A real outcome in the model's terms: handle zeroed, `orig` looked up.
fn normalise(ct: &Conntrack, t: Track) -> (Track, Option<FlowKey>) {
    let zero = Handle { slot: 0, gen: 0 };
    match t {
        Track::Tracked {
            handle,
            reply,
            epoch,
            cut,
            tag,
        } => (
            Track::Tracked {
                handle: zero,
                reply,
                epoch,
                cut,
                tag,
            },
            ct.orig(handle),
        ),
        Track::Related {
            handle,
            epoch,
            cut,
            tag,
        } => (
            Track::Related {
                handle: zero,
                epoch,
                cut,
                tag,
            },
            ct.orig(handle),
        ),
        t => (t, None),
    }
}

#[test]
fn randomized_against_model() {
    for seed in 1..=20u64 {
        let c = CtConfig {
            capacity: 4096,
            tcp_syn_timeout: 3,
            tcp_established_timeout: 50,
            tcp_fin_timeout: 4,
            tcp_close_timeout: 1,
            udp_timeout: 2,
            udp_stream_timeout: 6,
            icmp_timeout: 2,
            other_timeout: 5,
            seed: Some(seed),
        };
        let mut ct = Conntrack::new(c);
        let mut model = Model {
            map: Default::default(),
            cfg: c,
        };
        let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut now = 0u64;
        let mut handles: Vec<Handle> = Vec::new();
        for step in 0..4000 {
            now += r.below(SEC / 2);
            let zone = r.below(3) as u16;
            let m = random_packet(&mut r);
            let got = ct.track(zone, &m, now);
            let want = model.track(zone, &m, now);
            assert_eq!(normalise(&ct, got), want, "seed {seed} step {step}: {m:?}");
            match got {
                Track::New if r.below(4) != 0 => {
                    let epoch = r.below(4);
                    let tag = r.below(2) as u8;
                    let h = ct
                        .commit(zone, &m, epoch, tag, now)
                        .expect("capacity is ample");
                    model.commit(zone, &m, epoch, tag, now);
                    handles.push(h);
                }
                Track::Tracked { handle, .. } if r.below(5) == 0 => {
                    let orig = ct.orig(handle).expect("live");
                    // A re-judgement: new epoch, maybe cut; mirror it in the model.
                    let epoch = r.below(8);
                    let cut = r.below(2) == 0;
                    assert!(ct.set_epoch(handle, epoch, cut));
                    let e = ct.get(handle).unwrap();
                    assert_eq!(e.orig, orig);
                    let (p, _) = model_pseudo(&orig).unwrap();
                    let me = model.map.get_mut(&(zone, p)).expect("model has it");
                    me.epoch = epoch;
                    me.cut = cut;
                }
                _ => {}
            }
            if r.below(10) == 0 {
                ct.expire(now, r.below(64) as usize);
            }
            if step % 100 == 0 {
                let live = ct.iter().filter(|e| e.expires_ns > now).count();
                assert_eq!(live, model.live(now), "seed {seed} step {step}");
                assert!(ct.len() <= ct.capacity());
                // Stale handles never alias a live entry of another connection.
                for h in &handles {
                    if let Some(e) = ct.get(*h) {
                        assert_eq!(e.handle, *h);
                    }
                }
            }
        }
        let s = ct.stats();
        assert!(
            s.hits > 100 && s.misses > 100 && s.inserts > 50,
            "seed {seed}: {s:?}"
        );
    }
}

#[test]
fn randomized_burst_equals_sequential() {
    // Same seed, same operations: `track_burst` must give exactly what `track` gives
    // packet by packet, for every burst length (including ones shorter than the
    // prefetch ring and ones spanning several strides), with commits, expiry and TCP
    // reopens changing the table between and within bursts.
    for seed in 1..=10u64 {
        let c = CtConfig {
            capacity: 512,
            tcp_syn_timeout: 2,
            udp_timeout: 1,
            icmp_timeout: 1,
            seed: Some(seed),
            ..CtConfig::default()
        };
        let mut seq = Conntrack::new(c);
        let mut bur = Conntrack::new(c);
        let mut r = Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1);
        let mut now = 0u64;
        for _ in 0..300 {
            now += r.below(SEC);
            let len = r.below(70) as usize;
            let pkts: Vec<(u16, PacketMeta)> = (0..len)
                .map(|_| (r.below(2) as u16, random_packet(&mut r)))
                .collect();
            let refs: Vec<(u16, &PacketMeta)> = pkts.iter().map(|(z, m)| (*z, m)).collect();
            let want: Vec<Track> = pkts.iter().map(|(z, m)| seq.track(*z, m, now)).collect();
            let mut got = vec![Track::Invalid; len];
            bur.track_burst(&refs, now, &mut got);
            assert_eq!(got, want, "seed {seed}");
            for ((z, m), t) in pkts.iter().zip(&want) {
                if *t == Track::New {
                    let a = seq.commit(*z, m, 1, 0, now);
                    let b = bur.commit(*z, m, 1, 0, now);
                    assert_eq!(a, b);
                }
            }
            if r.below(4) == 0 {
                assert_eq!(seq.expire(now, 50), bur.expire(now, 50));
            }
        }
        assert_eq!(seq.stats(), bur.stats());
    }
}

#[test]
fn reprobe_equals_probe_in_the_other_zone() {
    let mut ct = Conntrack::new(cfg(64));
    let metas = [
        meta4(A, B, proto::UDP, 1000, 53),
        tcp(A, B, 40000, 443, tf::SYN),
        meta4(B, A, proto::TCP, 443, 40000),
    ];
    for m in &metas {
        // Commit in zone 7, then track the same packet through a probe made in zone 3
        // and moved to zone 7: it must find the entry exactly as a fresh probe does.
        let _ = ct.commit(7, m, 1, 0, 0);
        let moved = ct.reprobe(&ct.probe(3, m), 7);
        let fresh = ct.probe(7, m);
        assert_eq!(moved.hash, fresh.hash);
        assert_eq!(moved.sig, fresh.sig);
        assert_eq!(ct.track_probe(&moved, 1), ct.track_probe(&fresh, 1));
    }
}

#[test]
fn one_tuple_in_many_zones() {
    // The bucket index ignores the zone: the entries of one tuple in different zones
    // share their primary bucket but not their signature, and a tuple in more zones than
    // a bucket has ways (a flooded frame judged at every port) spills to per-zone
    // secondary buckets instead of being refused.
    let mut ct = Conntrack::new(cfg(4096));
    let m = meta4(A, [224, 0, 0, 251], proto::UDP, 5353, 5353);
    let p0 = ct.probe(0, &m);
    for z in 1..64u16 {
        let p = ct.probe(z, &m);
        assert_eq!(p.hash, p0.hash);
        assert_ne!(p.sig, p0.sig, "zone {z}");
    }
    let handles: Vec<Handle> = (0..64u16)
        .map(|z| ct.commit(z, &m, 1, z as u8, 0).expect("room"))
        .collect();
    assert_eq!(ct.len(), 64);
    for (z, h) in handles.iter().enumerate() {
        match ct.track(z as u16, &m, 1) {
            Track::Tracked { handle, tag, .. } => {
                assert_eq!(handle, *h);
                assert_eq!(tag, z as u8);
            }
            t => panic!("zone {z}: {t:?}"),
        }
    }
    for h in handles.iter().step_by(2) {
        assert!(ct.remove(*h));
    }
    for z in (1..64u16).step_by(2) {
        assert!(
            matches!(ct.track(z, &m, 2), Track::Tracked { .. }),
            "zone {z}"
        );
    }
    for z in (0..64u16).step_by(2) {
        assert_eq!(ct.track(z, &m, 2), Track::New, "zone {z}");
    }
}

#[test]
fn memory_bytes_counts_what_is_allocated() {
    // Slab: 40,000 × 64 B = 2.56 MB, allocated as two whole 2 MiB pages; index: 16,384
    // buckets × 64 B = 1 MiB (under one huge page: an ordinary allocation); free stack:
    // 40,000 × 4 B.
    let ct = Conntrack::new(CtConfig {
        capacity: 40_000,
        ..CtConfig::default()
    });
    assert_eq!(ct.memory_bytes(), (4 << 20) + (1 << 20) + 40_000 * 4);
}
