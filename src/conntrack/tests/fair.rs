//! Fairness between zones: the per-zone limit and its eviction of the zone's oldest
//! unassured connection, when a connection is assured, and the victim of a full table.

use super::model::{random_packet, Rng};
use super::table::assure_udp;
use super::*;

fn limited(capacity: usize, per_port_limit: usize) -> Conntrack {
    seeded(ConntrackSettings {
        capacity,
        per_port_limit,
        ..ConntrackSettings::default()
    })
}

/// A SYN from A:`sport` to B:80.
fn syn(sport: u16) -> PacketMeta {
    tcp(A, B, sport, 80, tf::SYN)
}

/// A whole handshake A:`sport` -> B:80 in `zone`: an assured connection.
fn established(ct: &mut Conntrack, zone: u16, sport: u16, now: u64) -> Handle {
    let h = open(ct, zone, &syn(sport), now);
    let synack = tcp(B, A, 80, sport, tf::SYN | tf::ACK);
    assert!(is_tracked(ct.track(zone, &synack, now), true));
    let ack = tcp(A, B, sport, 80, tf::ACK);
    assert!(is_tracked(ct.track(zone, &ack, now), false));
    assert_eq!(state_of(ct, h), CtState::TcpEstablished);
    h
}

#[test]
fn a_zone_at_its_limit_evicts_its_oldest_unassured_connection() {
    let mut ct = limited(64, 4);
    assert_eq!(ct.zone_limit(), Some(4));
    for sport in 1..=4 {
        open(&mut ct, 1, &syn(sport), u64::from(sport));
    }
    open(&mut ct, 2, &syn(1), 0);
    open(&mut ct, 2, &syn(2), 0);
    assert_eq!((ct.zone_len(1), ct.zone_unassured(1)), (4, 4));
    // A fifth connection of zone 1 takes the place of its oldest (sport 1).
    open(&mut ct, 1, &syn(5), 10);
    assert_eq!(ct.zone_len(1), 4);
    assert_eq!(ct.track(1, &syn(1), 11), Track::New);
    for sport in 2..=5 {
        assert!(is_tracked(ct.track(1, &syn(sport), 11), false), "{sport}");
    }
    // Zone 2 is untouched.
    assert_eq!(ct.zone_len(2), 2);
    assert!(is_tracked(ct.track(2, &syn(1), 11), false));
    let s = ct.stats();
    assert_eq!((s.zone_evicted, s.early_drop, s.zone_full), (1, 1, 0));
    ct.check_fairness();
}

#[test]
fn a_zone_at_its_limit_removes_an_expired_oldest_entry_as_expired_not_evicted() {
    let mut ct = seeded(ConntrackSettings {
        capacity: 64,
        per_port_limit: 4,
        tcp_syn_timeout: 2,
        ..ConntrackSettings::default()
    });
    for sport in 1..=4 {
        open(&mut ct, 1, &syn(sport), 0);
    }
    // 3 s later the four half-open entries are past their 2 s but not yet swept: a fifth
    // connection takes the oldest's place, which expired rather than was evicted.
    let later = 3_000_000_000;
    open(&mut ct, 1, &syn(5), later);
    let s = ct.stats();
    assert_eq!(
        (s.zone_evicted, s.early_drop, s.zone_full),
        (0, 0, 0),
        "{s:?}"
    );
    assert_eq!(s.expired, 1, "{s:?}");
    assert_eq!(ct.zone_len(1), 4);
    // A live oldest entry is still evicted, and counted so.
    open(&mut ct, 1, &syn(6), later + 1);
    open(&mut ct, 1, &syn(7), later + 2);
    open(&mut ct, 1, &syn(8), later + 3);
    assert_eq!(ct.stats().expired, 4);
    open(&mut ct, 1, &syn(9), later + 4);
    let s = ct.stats();
    assert_eq!((s.zone_evicted, s.expired), (1, 4), "{s:?}");
    ct.check_fairness();
}

#[test]
fn a_zone_of_assured_connections_refuses_until_one_is_over() {
    let mut ct = limited(64, 4);
    let handles: Vec<Handle> = (1..=4)
        .map(|sport| established(&mut ct, 1, sport, 0))
        .collect();
    assert_eq!((ct.zone_len(1), ct.zone_unassured(1)), (4, 0));
    assert_eq!(ct.track(1, &syn(9), 1), Track::New);
    assert_eq!(ct.commit(1, &syn(9), 1, 0, 1), Err(CommitError::ZoneFull));
    assert_eq!(ct.stats().zone_full, 1);
    assert_eq!(ct.len(), 4);
    // Another zone is not affected, and the tracked connections still work.
    open(&mut ct, 2, &syn(9), 1);
    let data = tcp(B, A, 80, 2, tf::ACK | tf::PSH);
    assert!(is_tracked(ct.track(1, &data, 1), true));
    // A reset connection is over: unassured again, so it is the one evicted.
    assert!(is_tracked(
        ct.track(1, &tcp(A, B, 3, 80, tf::RST), 2),
        false
    ));
    assert_eq!(state_of(&ct, handles[2]), CtState::TcpClose);
    assert_eq!(ct.zone_unassured(1), 1);
    open(&mut ct, 1, &syn(9), 3);
    assert_eq!(state_of(&ct, handles[2]), CtState::Free);
    for h in [handles[0], handles[1], handles[3]] {
        assert_eq!(state_of(&ct, h), CtState::TcpEstablished);
    }
    ct.check_fairness();
}

#[test]
fn tcp_is_assured_from_its_handshake_until_it_is_over() {
    let mut ct = limited(64, 0);
    assert_eq!(ct.zone_limit(), None);
    let un = |ct: &Conntrack| ct.zone_unassured(0);
    open(&mut ct, 0, &c2s(tf::SYN), 0);
    assert_eq!(un(&ct), 1);
    assert!(is_tracked(ct.track(0, &s2c(tf::SYN | tf::ACK), 0), true));
    assert_eq!(un(&ct), 1, "SYN_RECV: half-open");
    assert!(is_tracked(ct.track(0, &c2s(tf::ACK), 0), false));
    assert_eq!(un(&ct), 0, "established");
    for (m, reply) in [
        (c2s(tf::FIN | tf::ACK), false), // FIN_WAIT
        (s2c(tf::ACK), true),            // CLOSE_WAIT
        (s2c(tf::FIN | tf::ACK), true),  // LAST_ACK
    ] {
        assert!(is_tracked(ct.track(0, &m, 0), reply));
        assert_eq!(un(&ct), 0, "closing, still assured");
    }
    assert!(is_tracked(ct.track(0, &c2s(tf::ACK), 0), false));
    assert_eq!(ct.iter().next().unwrap().state, CtState::TcpTimeWait);
    assert_eq!(un(&ct), 1, "TIME_WAIT: over");
    ct.check_fairness();
    // A connection picked up mid-stream (a bare ACK) is not assured until answered.
    let pick = tcp(A, B, 2000, 80, tf::ACK);
    open(&mut ct, 0, &pick, 0);
    assert_eq!(un(&ct), 2);
    assert!(is_tracked(ct.track(0, &pick, 0), false));
    assert_eq!(un(&ct), 2);
    assert!(is_tracked(
        ct.track(0, &tcp(B, A, 80, 2000, tf::ACK), 0),
        true
    ));
    assert_eq!(un(&ct), 1);
    ct.check_fairness();
}

#[test]
fn udp_and_icmp_are_assured_by_a_packet_after_the_answer() {
    let mut ct = limited(64, 0);
    let q = meta4(A, B, proto::UDP, 4000, 53);
    let a = meta4(B, A, proto::UDP, 53, 4000);
    open(&mut ct, 0, &q, 0);
    assert!(is_tracked(ct.track(0, &a, 0), true));
    assert_eq!(ct.zone_unassured(0), 1, "a query and its answer");
    assert!(is_tracked(ct.track(0, &a, 0), true));
    assert_eq!(ct.zone_unassured(0), 0, "a second answer");
    let req = icmp4(A, B, 8, 0, 7);
    let rep = icmp4(B, A, 0, 0, 7);
    open(&mut ct, 3, &req, 0);
    assert!(is_tracked(ct.track(3, &rep, 0), true));
    assert_eq!(ct.zone_unassured(3), 1);
    assert!(is_tracked(ct.track(3, &req, 0), false));
    assert_eq!(ct.zone_unassured(3), 0, "a second echo request");
    ct.check_fairness();
}

#[test]
fn a_full_table_evicts_from_the_zone_with_the_most_unassured() {
    let mut ct = limited(16, 0);
    for sport in 0..10 {
        open(&mut ct, 5, &syn(100 + sport), u64::from(sport));
    }
    for sport in 0..3 {
        assure_udp(&mut ct, 6, 200 + sport, 0);
    }
    for sport in 0..3 {
        open(&mut ct, 6, &syn(300 + sport), 0);
    }
    assert_eq!(ct.len(), 16);
    open(&mut ct, 7, &syn(1), 20);
    assert_eq!((ct.zone_len(5), ct.zone_len(6), ct.zone_len(7)), (9, 6, 1));
    assert_eq!(ct.track(5, &syn(100), 21), Track::New, "zone 5's oldest");
    assert_eq!(ct.stats().early_drop, 1);
    // Zone 7 keeps opening: each new connection evicts from the zone with the most
    // unassured entries (zone 5 until zone 7 has more, then zone 7's own), never an
    // assured one.
    for sport in 2..40 {
        ct.commit(7, &syn(sport), 1, 0, 30).expect("room made");
        assert_eq!(ct.len(), 16);
    }
    assert!(ct.zone_len(5) < 9 && ct.zone_unassured(7) >= ct.zone_unassured(5));
    for sport in 0..3 {
        let m = meta4(A, B, proto::UDP, 200 + sport, 53);
        assert!(is_tracked(ct.track(6, &m, 31), false));
    }
    assert_eq!(ct.stats().full, 0);
    ct.check_fairness();
}

#[test]
fn counts_follow_every_removal() {
    let mut ct = limited(64, 8);
    for zone in 0..3 {
        for sport in 0..6 {
            open(&mut ct, zone, &syn(sport), 0);
        }
        assure_udp(&mut ct, zone, 9, 0);
    }
    assert_eq!(ct.remove_zone(1), 7);
    assert_eq!((ct.zone_len(1), ct.zone_unassured(1)), (0, 0));
    let h = ct.track(0, &syn(0), 0);
    let Track::Tracked { handle, .. } = h else {
        panic!("{h:?}")
    };
    assert!(ct.remove(handle));
    assert_eq!((ct.zone_len(0), ct.zone_unassured(0)), (6, 5));
    ct.check_fairness();
    // Half-open connections expire after tcp_syn (120 s); the UDP ones after 120 s too.
    ct.expire(200 * SEC, 64);
    assert_eq!(ct.len(), 0);
    ct.check_fairness();
    for sport in 0..6 {
        open(&mut ct, 2, &syn(sport), 300 * SEC);
    }
    ct.clear();
    assert_eq!(ct.zone_len(2), 0);
    ct.check_fairness();
}

#[test]
fn randomized_churn_keeps_limits_and_lists() {
    for seed in 1..=8u64 {
        let mut ct = Conntrack::with_seed(
            &ConntrackSettings {
                capacity: 96,
                per_port_limit: 24,
                tcp_syn_timeout: 2,
                udp_timeout: 2,
                udp_stream_timeout: 5,
                icmp_timeout: 2,
                tcp_close_timeout: 1,
                tcp_fin_timeout: 3,
                ..ConntrackSettings::default()
            },
            seed,
        );
        let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut now = 0u64;
        for step in 0..6000 {
            now += r.below(SEC / 20);
            let zone = r.below(5) as u16;
            let m = random_packet(&mut r);
            if ct.track(zone, &m, now) == Track::New {
                let _ = ct.commit(zone, &m, 1, 0, now);
            }
            if r.below(8) == 0 {
                ct.expire(now, r.below(32) as usize);
            }
            for z in 0..5 {
                assert!(ct.zone_len(z) <= 24, "seed {seed} step {step} zone {z}");
            }
            assert!(ct.len() <= 96);
            if step % 200 == 0 {
                ct.check_fairness();
            }
        }
        ct.check_fairness();
        let s = ct.stats();
        assert!(s.zone_evicted > 0 && s.early_drop > 0, "seed {seed}: {s:?}");
    }
}
