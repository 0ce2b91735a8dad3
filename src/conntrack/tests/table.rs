//! The table: zones, epochs and cut flags, capacity and eviction, expiry sweeps, bursts,
//! the shared bucket of a tuple's zones, memory accounting.

use super::*;

#[test]
fn zones_are_isolated() {
    let mut ct = seeded(cfg(64));
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
    let mut ct = seeded(cfg(64));
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
    let mut ct = seeded(cfg(8));
    assert_eq!(ct.capacity(), 8);
    for i in 0..8u16 {
        assure_udp(&mut ct, 0, 1000 + i, 0);
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
    let mut z = seeded(cfg(0));
    assert_eq!(z.track(0, &extra, 0), Track::New);
    assert_eq!(z.commit(0, &extra, 1, 0, 0), Err(CommitError::Full));
    assert_eq!(z.expire(0, 100), 0);
}

#[test]
fn never_exceeds_capacity_under_churn() {
    let mut ct = seeded(cfg(100));
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
    // 30 s timeout at 10 new flows/s = 300 live flows wanted: the table stays full, and
    // since none of them is answered (unassured), each new one takes the place of the
    // oldest instead of being refused.
    assert_eq!(full, 0);
    assert_eq!(ct.stats().full, 0);
    assert!(ct.stats().early_drop > 0);
    assert_eq!(ct.stats().inserts, 10_000);
    ct.check_fairness();
}

/// A UDP connection A:sport -> B:53 made assured: query, answer, and a packet after the
/// answer (a query and its one answer are not enough: see `fair`).
pub(super) fn assure_udp(ct: &mut Conntrack, zone: u16, sport: u16, now: u64) {
    open(ct, zone, &meta4(A, B, proto::UDP, sport, 53), now);
    let back = meta4(B, A, proto::UDP, 53, sport);
    assert!(is_tracked(ct.track(zone, &back, now), true));
    let again = meta4(A, B, proto::UDP, sport, 53);
    assert!(is_tracked(ct.track(zone, &again, now), false));
}

#[test]
fn full_table_evicts_an_unassured_connection_first() {
    // Linux's early_drop: a new connection may take the place of one that is not assured
    // (here: never saw a reply); assured connections stay. The victim is the oldest
    // unassured entry of the zone with the most of them, wherever it is in the index.
    let mut ct = seeded(cfg(8));
    for i in 0..8u16 {
        if i == 3 {
            open(&mut ct, 0, &meta4(A, B, proto::UDP, 1000 + i, 53), 0);
        } else {
            assure_udp(&mut ct, 0, 1000 + i, 0);
        }
    }
    assert_eq!(ct.zone_unassured(0), 1);
    let extra = meta4(A, B, proto::UDP, 2000, 53);
    let h = ct.commit(0, &extra, 1, 0, SEC).expect("room made");
    assert!(ct.get(h).is_some());
    assert_eq!(ct.stats().early_drop, 1);
    assert_eq!(ct.stats().zone_evicted, 0);
    assert_eq!(ct.len(), 8);
    // The unreplied one (sport 1003) was the victim; every assured one remains.
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
    ct.check_fairness();
}

#[test]
fn fills_to_capacity_and_finds_everything() {
    // Structured keys (like the benchmark's) up to the last slot: no refusal, every key
    // found, every handle still valid after the cuckoo steps that made room.
    let n = 131_072u32; // 32768 buckets: 50% of the ways used when full
    let mut ct = seeded(cfg(n as usize));
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
    let mut ct = seeded(cfg(64));
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
    let mut seq = seeded(cfg(64));
    let mut bur = seeded(cfg(64));
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
    let mut ct = seeded(cfg(64));
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

#[test]
fn reprobe_equals_probe_in_the_other_zone() {
    let mut ct = seeded(cfg(64));
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
    let mut ct = seeded(cfg(4096));
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
    // 40,000 × 4 B; `fair`'s links: 40,000 × 8 B (an ordinary allocation) and zone
    // counts: 65,536 × 16 B.
    let ct = Conntrack::new(&ConntrackSettings {
        capacity: 40_000,
        ..ConntrackSettings::default()
    });
    assert_eq!(
        ct.memory_bytes(),
        (4 << 20) + (1 << 20) + 40_000 * 4 + 40_000 * 8 + 65_536 * 16
    );
}

/// The sweep as it was written before #15 (one slot per iteration), the reference for
/// [`Conntrack::expire`]'s scan over slices.
fn expire_one_by_one(ct: &mut Conntrack, now_ns: u64, budget: usize) -> usize {
    let cap = ct.entries.len();
    if cap == 0 || ct.len == 0 {
        return 0;
    }
    let mut removed = 0;
    for _ in 0..budget.min(cap) {
        let slot = ct.cursor;
        ct.cursor = if slot + 1 == cap { 0 } else { slot + 1 };
        let e = &ct.entries[slot];
        if e.live() && e.expires <= now_ns {
            ct.remove_slot(slot as u32);
            removed += 1;
        }
    }
    ct.stats.expired += removed as u64;
    removed
}

/// The pipeline's commit (`commit_probe`, right after `track_probe` said `New`) and the
/// sweep leave the table exactly as `commit` and the one-slot-at-a-time sweep do: two
/// tables fed the same random packets in four zones (a small table, a per-zone limit and
/// short timeouts, so reclaim, eviction and expiry all run) agree on every outcome, every
/// entry, the sweep cursor and every counter.
#[test]
fn commit_probe_and_sweep_are_the_reference() {
    use super::model::{random_packet, Rng};
    let c = ConntrackSettings {
        capacity: 24,
        per_port_limit: 7,
        udp_timeout: 2,
        icmp_timeout: 2,
        tcp_syn_timeout: 3,
        ..ConntrackSettings::default()
    };
    let (mut a, mut b) = (seeded(c.clone()), seeded(c));
    let mut r = Rng(0x15_0015);
    let mut now = 1;
    for i in 0..40_000u64 {
        let m = random_packet(&mut r);
        let zone = r.below(4) as u16;
        now += r.below(SEC / 4);
        let (pa, pb) = (a.probe(zone, &m), b.probe(zone, &m));
        let (ta, tb) = (a.track_probe(&pa, now), b.track_probe(&pb, now));
        assert_eq!(ta, tb, "packet {i}");
        if ta == Track::New {
            let tag = (i % 2) as u8;
            assert_eq!(
                a.commit(zone, &m, i, tag, now),
                b.commit_probe(&pb, i, tag, now),
                "commit {i}"
            );
        }
        if r.below(8) == 0 {
            let budget = r.below(40) as usize;
            assert_eq!(
                expire_one_by_one(&mut a, now, budget),
                b.expire(now, budget),
                "sweep {i}"
            );
            assert_eq!(a.cursor, b.cursor);
        }
        assert_eq!(a.stats(), b.stats(), "packet {i}");
    }
    let s = a.stats();
    assert!(
        s.inserts > 5_000 && s.early_drop > 100 && s.zone_evicted > 100 && s.expired > 1_000,
        "{s:?}"
    );
    assert_eq!(a.iter().collect::<Vec<_>>(), b.iter().collect::<Vec<_>>());
    a.check_fairness();
    b.check_fairness();
}
