//! Packet classification for connection tracking and the canonical (orientation-free)
//! connection key.
//!
//! A packet and its reply must land on the same table entry with ONE lookup. We therefore
//! map every packet to a pseudo 5-tuple (ICMP queries get pseudo ports, see below) and
//! order its two endpoints: the smaller `(address, port)` pair (compared as native-endian
//! words: any fixed total order will do) becomes the `lo` side. The
//! entry remembers which side sent the first packet (`ORIG_LO`), so a packet is a reply
//! iff its source side differs from the original one.
//!
//! ICMP queries (echo, timestamp, information, address mask; ICMPv6 echo and node
//! information): the requester's pseudo port is the query identifier, the responder's
//! pseudo port is the *request* type. A request `A -> B (id, type 8)` becomes
//! `(A, id) -> (B, 8)`; its reply `B -> A (id, type 0)` becomes `(B, 8) -> (A, id)`, which is
//! exactly the reverse, so both normalise to the same canonical key. Different query kinds
//! with the same id (echo vs timestamp) stay distinct.
//!
//! Owns: the canonical key ([`CtKey`], [`KeyParts`]), the classification of a packet for
//! tracking ([`classify`]: key, lookup kind, orientation, [`Kind`]), the ICMP query/error
//! pairing, and the seeded key hash ([`KeyHasher`]). May not touch: the table (placement,
//! entries, state are `table`'s and the other submodules'), rules or policy epochs. Uses
//! `flow`'s [`PacketMeta`]/[`FlowKey`] and protocol numbers, `wire`'s ICMP and ICMPv6
//! message numbers, and [`super::tcp`] for the flag classes.

use crate::flow::{proto, FlowKey, PacketMeta, FAMILY_V4, FAMILY_V6};
use crate::wire::{icmp, icmpv6};

use super::tcp::{self, TcpIdx};

/// Canonical connection key: both endpoints in a fixed order plus protocol, family and
/// zone, packed into five machine words (compare and hash word by word).
///
/// Word layout: `[lo_addr (2 words), hi_addr (2 words), lo_port | hi_port << 16 |
/// proto << 32 | family << 40 | zone << 48]` (addresses as native-endian `u128` halves).
#[derive(Clone, Copy, Eq, Debug, Default)]
pub(crate) struct CtKey(pub(crate) [u64; 5]);

impl PartialEq for CtKey {
    /// Branch-free word compare (the derived one calls `bcmp`).
    #[inline(always)]
    fn eq(&self, o: &CtKey) -> bool {
        let (a, b) = (&self.0, &o.0);
        ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (a[4] ^ b[4])) == 0
    }
}

const _: () = assert!(core::mem::size_of::<CtKey>() == 40);
const _: () = assert!(core::mem::size_of::<Kind>() == 2);

/// The unpacked parts of a [`CtKey`].
pub(crate) struct KeyParts {
    pub lo: [u8; 16],
    pub hi: [u8; 16],
    pub lo_port: u16,
    pub hi_port: u16,
    pub proto: u8,
    pub family: u8,
}

/// An address as two words (one 16-byte load); [`words_addr`] is the inverse.
#[inline(always)]
fn addr_words(a: &[u8; 16]) -> (u64, u64) {
    let v = u128::from_ne_bytes(*a);
    (v as u64, (v >> 64) as u64)
}

#[inline(always)]
fn words_addr(w0: u64, w1: u64) -> [u8; 16] {
    (u128::from(w0) | u128::from(w1) << 64).to_ne_bytes()
}

/// The zone's bits in the last word of a [`CtKey`].
const ZONE_BITS: u64 = 0xffff << 48;

impl CtKey {
    /// The same key in another zone.
    #[inline(always)]
    pub(crate) fn with_zone(mut self, zone: u16) -> CtKey {
        self.0[4] = (self.0[4] & !ZONE_BITS) | u64::from(zone) << 48;
        self
    }

    /// Build the canonical key of `src:sport -> dst:dport`; returns it and whether the
    /// source is the `lo` side.
    #[inline]
    pub(crate) fn new(
        zone: u16,
        family: u8,
        proto: u8,
        src: &[u8; 16],
        sport: u16,
        dst: &[u8; 16],
        dport: u16,
    ) -> (CtKey, bool) {
        // Any total order on endpoints works; comparing native-endian words avoids a
        // byte-wise memcmp.
        let s = addr_words(src);
        let d = addr_words(dst);
        // Branch-free (orientation is random in real traffic): bitwise, not short-circuit.
        let src_lo =
            (s.0 < d.0) | ((s.0 == d.0) & ((s.1 < d.1) | ((s.1 == d.1) & (sport <= dport))));
        let ((w0, w1), lp, (w2, w3), hp) = if src_lo {
            (s, sport, d, dport)
        } else {
            (d, dport, s, sport)
        };
        let w4 = u64::from(lp)
            | u64::from(hp) << 16
            | u64::from(proto) << 32
            | u64::from(family) << 40
            | u64::from(zone) << 48;
        (CtKey([w0, w1, w2, w3, w4]), src_lo)
    }

    pub(crate) fn parts(&self) -> KeyParts {
        let w = &self.0;
        KeyParts {
            lo: words_addr(w[0], w[1]),
            hi: words_addr(w[2], w[3]),
            lo_port: w[4] as u16,
            hi_port: (w[4] >> 16) as u16,
            proto: (w[4] >> 32) as u8,
            family: (w[4] >> 40) as u8,
        }
    }

    #[inline]
    pub(crate) fn zone(&self) -> u16 {
        (self.0[4] >> 48) as u16
    }
}

/// What kind of packet this is for connection tracking. `repr(u8)`: an explicit tag
/// byte, so testing for TCP is one compare (the default layout hides the tag in a niche
/// of a field, which costs a decode per test).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub(crate) enum Kind {
    /// TCP with this flag class ([`TcpIdx::Bad`] for an invalid flag combination).
    Tcp(TcpIdx),
    Udp,
    /// ICMP/ICMPv6 query request (may start a connection), with its ICMP code.
    IcmpRequest {
        code: u8,
    },
    /// ICMP/ICMPv6 query reply. (Two variants, not one with a `request` flag: the kind
    /// stays two bytes, one load.)
    IcmpReply,
    /// Any other IP protocol (SCTP, DCCP, UDP-Lite, GRE, ESP, ... keyed by their ports
    /// when the flow extractor filled them, else by addresses only).
    Other,
}

/// How a packet is looked up (`repr(u8)`: testing it is one compare).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub(crate) enum Look {
    /// Looked up under its own key; may start a connection (see [`Kind`]).
    Conn,
    /// ICMP error: looked up under the key of the quoted packet (`Related` if found).
    Error,
    /// Can never be tracked nor start a connection (non-IP, later fragment, ICMP type
    /// that is neither a query nor an error, an error without a trackable quote, ...).
    Untrackable,
}

/// A packet reduced to what connection tracking looks at. Flat, not an enum with
/// payloads: every field is one load at a fixed offset, and a probe holding it fits in
/// 64 bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Class {
    /// `Conn`: the packet's key; `Error`: the quoted packet's; `Untrackable`: zero.
    pub key: CtKey,
    pub look: Look,
    /// `Conn`: the packet's source is the key's `lo` side.
    pub src_lo: bool,
    /// `Conn`: what kind of packet; otherwise `Other` (unused).
    pub kind: Kind,
}

impl Class {
    pub(crate) const UNTRACKABLE: Class = Class {
        key: CtKey([0; 5]),
        look: Look::Untrackable,
        src_lo: false,
        kind: Kind::Other,
    };

    #[inline(always)]
    fn conn(key: CtKey, src_lo: bool, kind: Kind) -> Class {
        Class {
            key,
            look: Look::Conn,
            src_lo,
            kind,
        }
    }
}

/// For an ICMP query type of `family`: `Some((is_request, request_type))`.
#[inline]
fn icmp_query(family: u8, t: u8) -> Option<(bool, u8)> {
    if family == FAMILY_V4 {
        match t {
            icmp::msg::ECHO_REQUEST
            | icmp::msg::TIMESTAMP
            | icmp::msg::INFO_REQUEST
            | icmp::msg::MASK_REQUEST => Some((true, t)),
            icmp::msg::ECHO_REPLY => Some((false, icmp::msg::ECHO_REQUEST)),
            icmp::msg::TIMESTAMP_REPLY | icmp::msg::INFO_REPLY | icmp::msg::MASK_REPLY => {
                Some((false, t - 1))
            }
            _ => None,
        }
    } else {
        match t {
            icmpv6::msg::ECHO_REQUEST | icmpv6::msg::NODE_INFO_QUERY => Some((true, t)),
            icmpv6::msg::ECHO_REPLY | icmpv6::msg::NODE_INFO_RESPONSE => Some((false, t - 1)),
            _ => None,
        }
    }
}

/// Whether `t` is an ICMP error type of `family` (its payload quotes the offending packet).
#[inline]
pub(crate) fn icmp_is_error(family: u8, t: u8) -> bool {
    if family == FAMILY_V4 {
        icmp::is_error(t)
    } else {
        icmpv6::is_error(t)
    }
}

/// Pseudo 5-tuple of a flow key for tracking: `(sport, dport, kind)`; `None` when the key
/// cannot be tracked (ICMP error or unknown ICMP type, unset family).
#[inline(always)]
fn pseudo(k: &FlowKey, tcp_flags: u8) -> Option<(u16, u16, Kind)> {
    if k.family != FAMILY_V4 && k.family != FAMILY_V6 {
        return None;
    }
    if k.is_icmp() {
        let (request, req_type) = icmp_query(k.family, k.icmp_type())?;
        return Some(if request {
            (
                k.sport,
                u16::from(req_type),
                Kind::IcmpRequest {
                    code: k.icmp_code(),
                },
            )
        } else {
            (u16::from(req_type), k.sport, Kind::IcmpReply)
        });
    }
    let kind = match k.proto {
        proto::TCP => Kind::Tcp(tcp::classify_flags(tcp_flags)),
        proto::UDP => Kind::Udp,
        _ => Kind::Other,
    };
    Some((k.sport, k.dport, kind))
}

/// Classify a packet of zone `zone`.
#[inline(always)]
pub(crate) fn classify(zone: u16, meta: &PacketMeta) -> Class {
    let k = &meta.key;
    if meta.frag.is_later_fragment() {
        return Class::UNTRACKABLE;
    }
    // Fast path for the bulk of traffic: TCP and UDP.
    if k.family == FAMILY_V4 || k.family == FAMILY_V6 {
        let kind = match k.proto {
            proto::TCP => Some(Kind::Tcp(tcp::classify_flags(meta.tcp_flags))),
            proto::UDP => Some(Kind::Udp),
            _ => None,
        };
        if let Some(kind) = kind {
            let (key, src_lo) =
                CtKey::new(zone, k.family, k.proto, &k.src, k.sport, &k.dst, k.dport);
            return Class::conn(key, src_lo, kind);
        }
    }
    if k.is_icmp() && icmp_is_error(k.family, k.icmp_type()) {
        let q = &meta.icmp_inner;
        // The quoted packet must be of the same family as the error that carries it; a
        // quoted ICMP error is never tracked. Flags of a quoted TCP segment are unknown:
        // only the key matters for RELATED.
        let inner =
            if q.family == k.family && !(q.is_icmp() && icmp_is_error(q.family, q.icmp_type())) {
                pseudo(q, 0)
                    .map(|(sp, dp, _)| CtKey::new(zone, q.family, q.proto, &q.src, sp, &q.dst, dp))
            } else {
                None
            };
        return match inner {
            Some((key, src_lo)) => Class {
                key,
                look: Look::Error,
                src_lo,
                kind: Kind::Other,
            },
            None => Class::UNTRACKABLE,
        };
    }
    match pseudo(k, meta.tcp_flags) {
        Some((sp, dp, kind)) => {
            let (key, src_lo) = CtKey::new(zone, k.family, k.proto, &k.src, sp, &k.dst, dp);
            Class::conn(key, src_lo, kind)
        }
        None => Class::UNTRACKABLE,
    }
}

/// Seeded 64-bit hash of a key: two rounds of folded 64x64->128 multiplies (the foldhash /
/// wyhash construction). The seeds are random per table so remote peers cannot aim
/// collisions at one bucket.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyHasher {
    seeds: [u64; 6],
}

#[inline(always)]
fn fold_mul(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

impl KeyHasher {
    pub(crate) fn new(seed: u64) -> KeyHasher {
        // Expand one seed into six with a splitmix64 sequence (odd, well mixed constants).
        let mut s = seed;
        let mut next = || {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        KeyHasher {
            seeds: [next(), next(), next(), next(), next(), next()],
        }
    }

    /// Hash of the key WITHOUT its zone: the same connection tuple seen in two zones (a
    /// frame checked at its sending and at its receiving port) hashes alike, so both
    /// entries share a bucket (the table mixes the zone into the signature).
    #[inline(always)]
    pub(crate) fn hash(&self, k: &CtKey) -> u64 {
        let w = &k.0;
        let s = &self.seeds;
        let a = fold_mul(w[0] ^ s[0], w[1] ^ s[1]);
        let b = fold_mul(w[2] ^ s[2], w[3] ^ s[3]);
        fold_mul(a ^ (w[4] & !ZONE_BITS) ^ s[4], b ^ s[5])
    }
}
