//! Unit tests: every transition rule, timeouts, capacity policy, epochs, zones, the
//! fragment table, and a randomized comparison against a plain `HashMap` model.
//!
//! `protocols`: the per-protocol rules; `table`: zones, epochs, capacity, expiry, bursts
//! and the index; `fair`: per-zone limits, assured connections and who is evicted first;
//! `model`: randomized runs against an independent `HashMap` model.

mod fair;
mod model;
mod protocols;
mod table;

use super::key;
use super::table::{Bucket, Entry};
use super::tcp::Step;
use super::*;
use crate::flow::{proto, tcp_flags as tf, FragInfo, L3Kind, FAMILY_V4, FAMILY_V6};
use crate::flow::{FlowKey, PacketMeta};
use crate::policy::ConntrackSettings;

const SEC: u64 = 1_000_000_000;
const A: [u8; 4] = [10, 0, 0, 1];
const B: [u8; 4] = [10, 0, 0, 2];

fn cfg(capacity: usize) -> ConntrackSettings {
    ConntrackSettings {
        capacity,
        ..ConntrackSettings::default()
    }
}

/// A table with the fixed hash seed of these tests.
fn seeded(c: ConntrackSettings) -> Conntrack {
    Conntrack::with_seed(&c, 42)
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
