//! The fragment table: later fragments of an IP datagram share the verdict of its first
//! fragment (the only one with an L4 header), whatever order they arrive in.
//!
//! The pipeline judges a first fragment like any packet and records an opaque `u32`
//! verdict id for the datagram ([`FragTable::record_first`]). A later fragment looks the
//! verdict up ([`FragTable::lookup`]); when it arrives before its first fragment the
//! pipeline parks it here as an opaque `u64` token (an index into its own frame store:
//! this table never sees bytes, [`FragTable::hold`]) and gets the tokens back when the
//! first fragment is judged ([`FragTable::take_held`]) or when the datagram times out
//! ([`FragTable::expire`], the pipeline then drops them `fragment-denied`).
//!
//! Key: (zone, family, protocol, source, destination, identification), as IP reassembly
//! does (RFC 791 §3.2, RFC 8200 §4.5), plus the zone so that ports never share
//! datagrams.
//!
//! # Bounds
//! * At most `max_datagrams` datagrams are known (verdicts and/or held fragments);
//!   `record_first` and `hold` on a new datagram fail when the table is full even after
//!   dropping expired verdict-only datagrams.
//! * At most `max_pending` fragments are held in total (a fixed pool of tokens linked
//!   per datagram, FIFO); `hold` fails with [`HoldError::Overflow`] beyond that.
//! * A datagram lives `timeout` after it was first seen; every later fragment that finds
//!   its verdict extends it (a datagram still flowing keeps its verdict).
//!
//! All memory is allocated in [`FragTable::new`]. `expire` returns at once unless some
//! datagram is due; then it scans the table (O(`max_datagrams`), a few µs at the
//! default 4096).
//!
//! Owns: the datagram keys, their verdict ids, held tokens, deadlines and the bounds above.
//! May not touch: frames or verdicts (both are opaque ids owned by the caller), the
//! pipeline or conntrack. Uses only `flow`'s [`PacketMeta`] (to build a key) and
//! `hashbrown`.

use hashbrown::HashMap;

use crate::flow::PacketMeta;

const NIL: u32 = u32::MAX;
const NS: u64 = 1_000_000_000;

/// Fragment table limits (from the policy's `conntrack.max_pending_fragments` and
/// `conntrack.fragment_timeout`: see [`crate::pipeline::PipelineConfig`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FragConfig {
    /// Datagrams known at once (verdicts and/or held fragments). Default 4096; the
    /// pipeline uses four times `max_pending_fragments`, at least 64.
    pub max_datagrams: usize,
    /// Fragments held, all datagrams together. Default 1024 (`max_pending_fragments`).
    pub max_pending: usize,
    /// How long a datagram is kept after it was first seen or last matched, in
    /// nanoseconds. Default 30 s (`fragment_timeout`, as Linux's `ipfrag_time`).
    pub timeout_ns: u64,
}

impl Default for FragConfig {
    fn default() -> Self {
        FragConfig {
            max_datagrams: 4096,
            max_pending: 1024,
            timeout_ns: 30 * NS,
        }
    }
}

/// Identity of one IP datagram in one zone.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct FragKey {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub id: u32,
    pub zone: u16,
    pub proto: u8,
    pub family: u8,
}

impl FragKey {
    /// The datagram key of a fragment (first or later) seen in `zone`.
    pub fn of(zone: u16, meta: &PacketMeta) -> FragKey {
        FragKey {
            src: meta.key.src,
            dst: meta.key.dst,
            id: meta.frag.id,
            zone,
            proto: meta.key.proto,
            family: meta.key.family,
        }
    }
}

/// Why [`FragTable::hold`] refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HoldError {
    /// Too many fragments pending, or too many datagrams known.
    Overflow,
    /// The datagram's verdict is already known (use it instead).
    Decided(u32),
}

/// Counters (monotonic).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct FragStats {
    pub recorded: u64,
    pub hits: u64,
    pub held: u64,
    pub overflow: u64,
    /// Held fragments reported by `expire`.
    pub expired_held: u64,
    /// Datagrams that timed out.
    pub expired: u64,
}

#[derive(Clone, Copy, Debug)]
struct Datagram {
    verdict: Option<u32>,
    expires: u64,
    head: u32,
    tail: u32,
}

#[derive(Clone, Copy, Debug)]
struct Node {
    token: u64,
    next: u32,
}

/// Bounded per-worker table of fragment verdicts and pending fragments.
#[derive(Debug)]
pub struct FragTable {
    map: HashMap<FragKey, Datagram>,
    nodes: Box<[Node]>,
    free_head: u32,
    held: usize,
    max_datagrams: usize,
    timeout_ns: u64,
    /// No datagram expires before this time (lets `expire` return at once).
    next_expiry: u64,
    /// Verdict ids of datagrams this table forgot, for [`FragTable::take_freed`]
    /// (allocated for every datagram at once: pushing never allocates).
    freed: Vec<u32>,
    stats: FragStats,
}

impl FragTable {
    /// A table with all its memory allocated.
    pub fn new(cfg: FragConfig) -> FragTable {
        let max_pending = cfg.max_pending.min(NIL as usize - 1);
        let nodes: Box<[Node]> = (0..max_pending)
            .map(|i| Node {
                token: 0,
                next: if i + 1 < max_pending {
                    i as u32 + 1
                } else {
                    NIL
                },
            })
            .collect();
        FragTable {
            // Twice the bound: hashbrown then always reclaims tombstones in place instead
            // of growing, so the map never allocates after this.
            map: HashMap::with_capacity(cfg.max_datagrams.saturating_mul(2)),
            free_head: if max_pending > 0 { 0 } else { NIL },
            nodes,
            held: 0,
            max_datagrams: cfg.max_datagrams,
            timeout_ns: cfg.timeout_ns,
            next_expiry: u64::MAX,
            freed: Vec::with_capacity(cfg.max_datagrams),
            stats: FragStats::default(),
        }
    }

    /// Datagrams known.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no datagram is known.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Fragments currently held.
    pub fn held(&self) -> usize {
        self.held
    }

    pub fn stats(&self) -> FragStats {
        self.stats
    }

    /// Make room for one more datagram: drop expired verdict-only datagrams (their held
    /// fragments, if any, stay for `expire` to report). Returns whether there is room.
    fn room(&mut self, now_ns: u64) -> bool {
        if self.map.len() < self.max_datagrams {
            return true;
        }
        let before = self.map.len();
        let freed = &mut self.freed;
        self.map.retain(|_, d| {
            let gone = d.expires <= now_ns && d.head == NIL;
            if gone {
                push_freed(freed, d.verdict);
            }
            !gone
        });
        self.stats.expired += (before - self.map.len()) as u64;
        self.map.len() < self.max_datagrams
    }

    /// Record the verdict of a datagram whose first fragment was just judged. Its held
    /// fragments (if any) stay until [`FragTable::take_held`]. `false` if the table is full
    /// (later fragments will then be held and time out).
    pub fn record_first(&mut self, key: FragKey, verdict: u32, now_ns: u64) -> bool {
        let expires = now_ns.saturating_add(self.timeout_ns);
        if let Some(d) = self.map.get_mut(&key) {
            d.verdict = Some(verdict);
            d.expires = expires;
        } else {
            if !self.room(now_ns) {
                self.stats.overflow += 1;
                return false;
            }
            self.map.insert(
                key,
                Datagram {
                    verdict: Some(verdict),
                    expires,
                    head: NIL,
                    tail: NIL,
                },
            );
        }
        self.next_expiry = self.next_expiry.min(expires);
        self.stats.recorded += 1;
        true
    }

    /// The verdict id recorded for `key`, if any (no side effect: for a first fragment
    /// seen again, whose verdict slot is reused).
    pub fn verdict_of(&self, key: &FragKey) -> Option<u32> {
        self.map.get(key)?.verdict
    }

    /// Hand the verdict ids of the datagrams forgotten since the last call (expired, or
    /// reclaimed to make room) to `f`, so their owner can reuse them.
    pub fn take_freed(&mut self, mut f: impl FnMut(u32)) {
        for v in self.freed.drain(..) {
            f(v);
        }
    }

    /// The verdict of a live datagram (extends its lifetime).
    pub fn lookup(&mut self, key: &FragKey, now_ns: u64) -> Option<u32> {
        let timeout = self.timeout_ns;
        let d = self.map.get_mut(key)?;
        if d.expires <= now_ns {
            return None;
        }
        let v = d.verdict?;
        d.expires = now_ns.saturating_add(timeout);
        self.stats.hits += 1;
        Some(v)
    }

    /// Park a later fragment (its `token`) until the datagram's first fragment is judged.
    pub fn hold(&mut self, key: FragKey, token: u64, now_ns: u64) -> Result<(), HoldError> {
        if let Some(d) = self.map.get(&key) {
            if let (Some(v), true) = (d.verdict, d.expires > now_ns) {
                return Err(HoldError::Decided(v));
            }
        }
        if self.free_head == NIL {
            self.stats.overflow += 1;
            return Err(HoldError::Overflow);
        }
        if !self.map.contains_key(&key) {
            if !self.room(now_ns) {
                self.stats.overflow += 1;
                return Err(HoldError::Overflow);
            }
            let expires = now_ns.saturating_add(self.timeout_ns);
            self.map.insert(
                key,
                Datagram {
                    verdict: None,
                    expires,
                    head: NIL,
                    tail: NIL,
                },
            );
            self.next_expiry = self.next_expiry.min(expires);
        }
        let Some(d) = self.map.get_mut(&key) else {
            return Err(HoldError::Overflow);
        };
        let n = self.free_head;
        let node = &mut self.nodes[n as usize];
        self.free_head = node.next;
        node.token = token;
        node.next = NIL;
        if d.tail == NIL {
            d.head = n;
        } else {
            self.nodes[d.tail as usize].next = n;
        }
        d.tail = n;
        self.held += 1;
        self.stats.held += 1;
        Ok(())
    }

    /// Hand the held fragments of `key` to `f` in arrival order and release them; returns
    /// how many. The datagram's verdict (if any) stays.
    pub fn take_held(&mut self, key: &FragKey, mut f: impl FnMut(u64)) -> usize {
        let Some(d) = self.map.get_mut(key) else {
            return 0;
        };
        let head = d.head;
        d.head = NIL;
        d.tail = NIL;
        if d.verdict.is_none() {
            self.map.remove(key);
        }
        release(
            &mut self.nodes,
            &mut self.free_head,
            &mut self.held,
            head,
            &mut f,
        )
    }

    /// Drop datagrams that timed out; their held fragments go to `f(key, token)` (the
    /// pipeline drops them `fragment-denied`). Returns the number of fragments reported.
    /// Cheap when nothing is due.
    pub fn expire(&mut self, now_ns: u64, mut f: impl FnMut(&FragKey, u64)) -> usize {
        if now_ns < self.next_expiry {
            return 0;
        }
        let mut reported = 0;
        let mut next = u64::MAX;
        let mut dropped = 0u64;
        let FragTable {
            map,
            nodes,
            free_head,
            held,
            freed,
            ..
        } = self;
        map.retain(|k, d| {
            if d.expires > now_ns {
                next = next.min(d.expires);
                return true;
            }
            push_freed(freed, d.verdict);
            reported += release(nodes, free_head, held, d.head, &mut |t| f(k, t));
            dropped += 1;
            false
        });
        self.next_expiry = next;
        self.stats.expired += dropped;
        self.stats.expired_held += reported as u64;
        reported
    }
}

fn push_freed(freed: &mut Vec<u32>, verdict: Option<u32>) {
    if let Some(v) = verdict {
        if freed.len() < freed.capacity() {
            freed.push(v);
        }
    }
}

/// Walk a node list from `head`, report each token and push the node on the free list.
fn release(
    nodes: &mut [Node],
    free_head: &mut u32,
    held: &mut usize,
    mut n: u32,
    f: &mut impl FnMut(u64),
) -> usize {
    let mut count = 0;
    while let Some(node) = nodes.get_mut(n as usize) {
        let next = node.next;
        f(node.token);
        node.next = *free_head;
        *free_head = n;
        *held -= 1;
        count += 1;
        n = next;
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{proto, FlowKey, FragInfo, FAMILY_V4};

    const SEC: u64 = NS;
    const A: [u8; 4] = [10, 0, 0, 1];
    const B: [u8; 4] = [10, 0, 0, 2];

    // ---------------------------------------------------------------------------------------
    // Fragment table.

    fn fkey(id: u32) -> FragKey {
        FragKey {
            src: FlowKey::map_v4(A),
            dst: FlowKey::map_v4(B),
            id,
            zone: 0,
            proto: proto::UDP,
            family: FAMILY_V4,
        }
    }

    #[test]
    fn frag_key_of_meta() {
        let mut m = PacketMeta {
            l3: crate::flow::L3Kind::Ipv4,
            ..PacketMeta::default()
        };
        m.key.src = FlowKey::map_v4(A);
        m.key.dst = FlowKey::map_v4(B);
        m.key.proto = proto::UDP;
        m.key.family = FAMILY_V4;
        m.frag = FragInfo {
            is_fragment: true,
            offset: 10,
            more: true,
            id: 77,
        };
        assert_eq!(FragKey::of(0, &m), fkey(77));
        assert_ne!(FragKey::of(1, &m), fkey(77));
    }

    #[test]
    fn frag_first_then_later() {
        let mut ft = FragTable::new(FragConfig::default());
        assert_eq!(ft.lookup(&fkey(1), 0), None);
        assert!(ft.record_first(fkey(1), 42, 0));
        assert_eq!(ft.lookup(&fkey(1), SEC), Some(42));
        assert_eq!(ft.lookup(&fkey(2), SEC), None);
        assert_eq!(ft.hold(fkey(1), 9, SEC), Err(HoldError::Decided(42)));
        // Lookups extend the lifetime; then it expires.
        assert_eq!(ft.lookup(&fkey(1), 30 * SEC), Some(42));
        assert_eq!(ft.lookup(&fkey(1), 61 * SEC), None);
        let mut n = 0;
        assert_eq!(ft.expire(61 * SEC, |_, _| n += 1), 0);
        assert_eq!(n, 0);
        assert!(ft.is_empty());
    }

    #[test]
    fn frag_held_then_first_arrives() {
        let mut ft = FragTable::new(FragConfig::default());
        ft.hold(fkey(1), 10, 0).unwrap();
        ft.hold(fkey(1), 11, 0).unwrap();
        ft.hold(fkey(2), 20, 0).unwrap();
        assert_eq!(ft.held(), 3);
        assert_eq!(ft.lookup(&fkey(1), 0), None);
        assert!(ft.record_first(fkey(1), 7, SEC));
        let mut got = Vec::new();
        assert_eq!(ft.take_held(&fkey(1), |t| got.push(t)), 2);
        assert_eq!(got, vec![10, 11]);
        assert_eq!(ft.held(), 1);
        assert_eq!(ft.take_held(&fkey(1), |_| panic!("empty")), 0);
        assert_eq!(ft.lookup(&fkey(1), 2 * SEC), Some(7));
        // Datagram 2 never gets its first fragment: its fragment expires.
        let mut exp = Vec::new();
        assert_eq!(ft.expire(29 * SEC, |k, t| exp.push((k.id, t))), 0);
        assert_eq!(ft.expire(30 * SEC, |k, t| exp.push((k.id, t))), 1);
        assert_eq!(exp, vec![(2, 20)]);
        assert_eq!(ft.held(), 0);
        assert_eq!(ft.len(), 1);
        assert_eq!(ft.stats().expired_held, 1);
    }

    #[test]
    fn forgotten_verdicts_are_handed_back() {
        let mut ft = FragTable::new(FragConfig {
            max_datagrams: 2,
            max_pending: 2,
            timeout_ns: SEC,
        });
        assert!(ft.record_first(fkey(1), 10, 0));
        assert!(ft.record_first(fkey(2), 11, 0));
        assert_eq!(ft.verdict_of(&fkey(1)), Some(10));
        let mut got = Vec::new();
        ft.take_freed(|v| got.push(v));
        assert!(got.is_empty());
        // Full: making room reclaims the expired verdict-only datagrams.
        assert!(ft.record_first(fkey(3), 12, 2 * SEC));
        ft.take_freed(|v| got.push(v));
        got.sort();
        assert_eq!(got, vec![10, 11]);
        ft.expire(4 * SEC, |_, _| {});
        got.clear();
        ft.take_freed(|v| got.push(v));
        assert_eq!(got, vec![12]);
        assert_eq!(ft.verdict_of(&fkey(3)), None);
    }

    #[test]
    fn frag_bounds() {
        let mut ft = FragTable::new(FragConfig {
            max_datagrams: 2,
            max_pending: 3,
            timeout_ns: SEC,
        });
        ft.hold(fkey(1), 1, 0).unwrap();
        ft.hold(fkey(1), 2, 0).unwrap();
        ft.hold(fkey(2), 3, 0).unwrap();
        assert_eq!(ft.hold(fkey(2), 4, 0), Err(HoldError::Overflow));
        let mut got = Vec::new();
        ft.take_held(&fkey(1), |t| got.push(t));
        assert_eq!(got, vec![1, 2]);
        // Datagram 1 had no verdict: it is gone, so room for another.
        assert_eq!(ft.len(), 1);
        assert!(ft.record_first(fkey(3), 1, 0));
        // Two datagrams known: a third is refused, for verdicts and holds alike.
        assert!(!ft.record_first(fkey(4), 1, 0));
        assert_eq!(ft.hold(fkey(5), 5, 0), Err(HoldError::Overflow));
        // After the timeout the verdict-only datagram is reclaimed on demand.
        assert!(ft.record_first(fkey(4), 1, SEC));
        assert_eq!(ft.stats().overflow, 3);
        // Nodes are reused: pool of 3 with 1 held.
        let mut ex = 0;
        ft.expire(SEC, |_, _| ex += 1);
        assert_eq!(ex, 1);
        assert_eq!(ft.held(), 0);
        ft.hold(fkey(9), 1, SEC).unwrap();
        ft.hold(fkey(9), 2, SEC).unwrap();
        ft.hold(fkey(9), 3, SEC).unwrap();
        assert_eq!(ft.held(), 3);
        let zero = FragTable::new(FragConfig {
            max_datagrams: 0,
            max_pending: 0,
            timeout_ns: SEC,
        });
        assert!(zero.is_empty());
    }
}
