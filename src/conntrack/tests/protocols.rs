//! Per-protocol rules: TCP transitions and timeouts, UDP, ICMP queries and errors, other
//! protocols, untrackable packets; the table's entry and bucket sizes.

use super::*;

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
    let mut ct = seeded(cfg(64));
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
    let mut ct = seeded(cfg(64));
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
    let mut ct = seeded(cfg(64));
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
    let mut ct = seeded(cfg(64));
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
    let mut ct = seeded(cfg(64));
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
    let mut ct = seeded(cfg(64));
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
    let mut ct = seeded(cfg(64));
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
    let c = ConntrackSettings {
        tcp_syn_timeout: 5,
        tcp_established_timeout: 100,
        tcp_fin_timeout: 7,
        tcp_close_timeout: 2,
        ..cfg(64)
    };
    let mut ct = seeded(c);
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
    let mut ct = seeded(cfg(64));
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
    let mut ct = seeded(cfg(64));
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
    let mut ct = seeded(cfg(64));
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
    let mut ct = seeded(cfg(64));
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
    let mut ct = seeded(cfg(64));
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
    let mut ct = seeded(cfg(64));
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
    let mut ct = seeded(cfg(64));
    let mut m = meta4(A, B, proto::UDP, 0, 0);
    m.frag = FragInfo {
        is_fragment: true,
        offset: 100,
        more: false,
        id: 5,
        ..FragInfo::default()
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
