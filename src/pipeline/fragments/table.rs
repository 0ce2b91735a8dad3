//! The fragment table: later fragments of an IP datagram share the verdict of its first
//! fragment (the only one with an L4 header), whatever order they arrive in, and no two
//! fragments of a datagram that overlap both get through.
//!
//! The pipeline judges a first fragment like any packet and records an opaque `u32`
//! verdict id for the datagram ([`FragTable::record_first`]). A later fragment gets the
//! verdict ([`FragTable::later`]); when it arrives before its first fragment the pipeline
//! parks it here as an opaque `u64` token (an index into its own frame store: this table
//! never sees bytes) and gets the tokens back when the first fragment is judged
//! ([`FragTable::take_held`]), when the datagram is discarded (the callback of
//! [`FragTable::first`], [`FragTable::later`], [`FragTable::discard`]) or when it times
//! out ([`FragTable::expire`], the pipeline then drops them `fragment-denied`).
//!
//! Key: (zone, family, protocol, source, destination, identification), as IP reassembly
//! does (RFC 791 §3.2), plus the zone so that ports never share datagrams. IPv6 keys
//! leave the protocol out (RFC 8200 §4.5 reassembles on addresses and identification
//! only; a later fragment names the header after the fragment header, which is not the
//! first fragment's upper-layer protocol when an extension header follows the fragment
//! header).
//!
//! # Where each fragment lies (RFC 1858, RFC 5722)
//! Every fragment, first or later, is placed in its datagram before anything else: its
//! [`Span`] (offset and length, in 8-byte units) is checked against the bytes seen so
//! far, kept as at most [`RUNS`] disjoint runs (adjacent fragments merge, so a datagram
//! sent in order is one run however many fragments it has):
//! * every byte already seen: [`Refusal::Duplicate`]. The fragment is refused alone and
//!   the datagram goes on. Its bytes are not compared (that would need them, or a digest,
//!   per fragment): a network-duplicated frame and a rewrite of seen bytes are refused
//!   alike, so a receiver never gets two versions of a byte, whichever copy its stack
//!   would keep. Linux makes the same call (a fragment inside a known run is a
//!   duplicate, dropped, the queue kept);
//! * some bytes seen and some not: [`Refusal::Overlap`], the datagram is *discarded*;
//! * a later fragment that starts inside the smallest upper-layer header a first fragment
//!   must carry (TCP: 20 bytes, so offsets 8 and 16; SCTP and DCCP: 12, so offset 8):
//!   `Overlap` at once, before the first fragment is seen (RFC 1858 §4: the offset-1
//!   tiny-overlap attack rewrites the TCP flags);
//! * a run more than [`RUNS`]: [`Refusal::Scattered`], discarded;
//! * a tiny first fragment (the parser's [`crate::flow::FragInfo::tiny`]):
//!   [`FragTable::discard`] with [`Refusal::Tiny`].
//!
//! A discarded datagram loses its verdict and its held fragments (handed back at once)
//! and keeps its entry, without runs, until it times out: every later fragment of it is
//! refused for the same reason. Fragments already delivered stay delivered: see the
//! pipeline's [`super`] doc for what that means for a receiver.
//!
//! # Bounds
//! * At most `max_datagrams` datagrams are known (verdicts, held fragments, runs);
//!   a fragment of a new datagram is refused [`Refusal::Overflow`] when the table is
//!   full even after dropping expired datagrams that hold nothing.
//! * At most `max_pending` fragments are held in total (a fixed pool of tokens linked
//!   per datagram, FIFO); a later fragment that would need one more is refused
//!   `Overflow` before its bytes are noted.
//! * At most [`RUNS`] runs per datagram (above).
//! * A datagram lives `timeout` after it was first seen; every later fragment that finds
//!   its verdict (or its discard) extends it (a datagram still flowing keeps its state).
//!
//! All memory is allocated in [`FragTable::new`]: a datagram is a fixed 64-byte value
//! (its runs inline), so the map (twice `max_datagrams` slots) is about 1.7 MB at the
//! default 4096 datagrams. `expire` returns at once unless some datagram is due; then
//! it scans the table (O(`max_datagrams`), a few µs at the default 4096).
//!
//! Owns: the datagram keys, their verdict ids, held tokens, runs, discards, deadlines
//! and the bounds above. May not touch: frames or verdicts (both are opaque ids owned by
//! the caller), the pipeline or conntrack. Uses only `flow`'s [`PacketMeta`] and
//! [`FragInfo`] (to build a key and a span) and `hashbrown`.

use hashbrown::HashMap;

use crate::flow::{proto, FragInfo, PacketMeta, FAMILY_V6};

const NIL: u32 = u32::MAX;
const NS: u64 = 1_000_000_000;

/// Disjoint runs of bytes remembered per datagram. A datagram whose fragments leave more
/// gaps than this is discarded ([`Refusal::Scattered`]): in-order and reversed streams
/// of any length are one run; eight gaps need a reordering no path produces.
pub const RUNS: usize = 8;

/// Fragment table limits (from the policy's `conntrack.max_pending_fragments` and
/// `conntrack.fragment_timeout`: see [`crate::pipeline::PipelineConfig`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FragConfig {
    /// Datagrams known at once (verdicts, held fragments, runs). Default 4096; the
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
    /// The IPv4 protocol; 0 for IPv6 (see the module doc).
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
            proto: if meta.key.family == FAMILY_V6 {
                0
            } else {
                meta.key.proto
            },
            family: meta.key.family,
        }
    }
}

/// Where a fragment's data lies in its datagram, in 8-byte units: `[start, end)`, `end`
/// rounded up. Fragment offsets are multiples of 8, so two spans share a unit exactly
/// when the fragments share a byte.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Span {
    pub start: u16,
    pub end: u16,
}

impl Span {
    /// A fragment at `offset` (8-byte units, 13 bits) carrying `len` bytes.
    pub fn new(offset: u16, len: u16) -> Span {
        let start = offset.min(0x1fff);
        let end = (u32::from(start) * 8 + u32::from(len)).div_ceil(8);
        Span {
            start,
            // At most (8191 * 8 + 65535) / 8 = 16383.
            end: end as u16,
        }
    }

    /// The span of a parsed fragment.
    pub fn of(f: &FragInfo) -> Span {
        Span::new(f.offset, f.len)
    }

    fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    fn overlaps(&self, o: &Span) -> bool {
        self.start < o.end && o.start < self.end
    }

    fn within(&self, o: &Span) -> bool {
        o.start <= self.start && self.end <= o.end
    }
}

/// Bytes of upper-layer header every accepted first fragment of `p` carries (the parser
/// marks a shorter one tiny): a later fragment starting before this overlaps it.
fn min_header(p: u8) -> u32 {
    match p {
        proto::TCP => 20,
        proto::SCTP | proto::DCCP => 12,
        _ => 8,
    }
}

/// Why a fragment is refused (see the module doc). `Overlap`, `Tiny` and `Scattered`
/// discard the whole datagram; `Duplicate` and `Overflow` refuse one fragment.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Refusal {
    /// Every byte of it was seen already.
    Duplicate,
    /// It overlaps bytes seen, or the first fragment's smallest header.
    Overlap,
    /// The datagram's first fragment was tiny.
    Tiny,
    /// The datagram's fragments left more than [`RUNS`] runs.
    Scattered,
    /// No room: the table is full, or no fragment can be held.
    Overflow,
}

/// What becomes of a later fragment ([`FragTable::later`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Later {
    /// Its datagram's verdict id.
    Verdict(u32),
    /// Held (its token) until the first fragment is judged.
    Held,
    /// Refused.
    Refused(Refusal),
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
    /// Fragments refused as duplicates.
    pub duplicates: u64,
    /// Datagrams discarded (overlap, tiny first fragment, scattered).
    pub discarded: u64,
}

#[derive(Clone, Copy, Debug)]
struct Datagram {
    verdict: Option<u32>,
    expires: u64,
    head: u32,
    tail: u32,
    /// Sorted, disjoint and not adjacent (adjacent runs merge).
    runs: [Span; RUNS],
    nruns: u8,
    /// `Overlap`, `Tiny` or `Scattered`: every fragment is refused so.
    discarded: Option<Refusal>,
}

const _: () = assert!(std::mem::size_of::<Datagram>() <= 64);

impl Datagram {
    fn new(expires: u64) -> Datagram {
        Datagram {
            verdict: None,
            expires,
            head: NIL,
            tail: NIL,
            runs: [Span::default(); RUNS],
            nruns: 0,
            discarded: None,
        }
    }

    /// Place `span` (a fragment of protocol `p`) among the runs: `Ok` when all its bytes
    /// are new (then they are noted).
    fn note(&mut self, span: Span, p: u8) -> Result<(), Refusal> {
        if span.is_empty() {
            return Err(Refusal::Duplicate);
        }
        if span.start != 0 && u32::from(span.start) * 8 < min_header(p) {
            return Err(Refusal::Overlap);
        }
        let n = self.nruns as usize;
        let mut at = n;
        for (i, r) in self.runs[..n].iter().enumerate() {
            if span.overlaps(r) {
                return Err(if span.within(r) {
                    Refusal::Duplicate
                } else {
                    Refusal::Overlap
                });
            }
            if at == n && r.start > span.start {
                at = i;
            }
        }
        let left = at > 0 && self.runs[at - 1].end == span.start;
        let right = at < n && self.runs[at].start == span.end;
        match (left, right) {
            (true, true) => {
                self.runs[at - 1].end = self.runs[at].end;
                self.runs.copy_within(at + 1..n, at);
                self.nruns -= 1;
            }
            (true, false) => self.runs[at - 1].end = span.end,
            (false, true) => self.runs[at].start = span.start,
            (false, false) => {
                if n == RUNS {
                    return Err(Refusal::Scattered);
                }
                self.runs.copy_within(at..n, at + 1);
                self.runs[at] = span;
                self.nruns += 1;
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug)]
struct Node {
    token: u64,
    next: u32,
}

/// Bounded per-worker table of fragmented datagrams.
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

/// The parts of a [`FragTable`] that discarding a datagram touches, borrowed beside the
/// datagram itself.
struct Pools<'a> {
    nodes: &'a mut [Node],
    free_head: &'a mut u32,
    held: &'a mut usize,
    freed: &'a mut Vec<u32>,
    stats: &'a mut FragStats,
}

impl Pools<'_> {
    /// Discard `d` for `why` (once): forget its verdict and runs, hand its held tokens to
    /// `f`.
    fn discard(&mut self, d: &mut Datagram, why: Refusal, f: &mut impl FnMut(u64)) {
        if d.discarded.is_some() {
            return;
        }
        d.discarded = Some(why);
        d.nruns = 0;
        push_freed(self.freed, d.verdict.take());
        release(self.nodes, self.free_head, self.held, d.head, f);
        d.head = NIL;
        d.tail = NIL;
        self.stats.discarded += 1;
    }
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

    /// Make room for one more datagram: drop expired datagrams that hold no fragment
    /// (held ones stay for `expire` to report). Returns whether there is room.
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

    /// Make sure `key` is known (a new, empty datagram if there is room): whether it is.
    fn known(&mut self, key: FragKey, now_ns: u64) -> bool {
        if self.map.contains_key(&key) {
            return true;
        }
        if !self.room(now_ns) {
            self.stats.overflow += 1;
            return false;
        }
        let expires = now_ns.saturating_add(self.timeout_ns);
        self.map.insert(key, Datagram::new(expires));
        self.next_expiry = self.next_expiry.min(expires);
        true
    }

    /// The datagram of `key` (which must be known) and the pools beside it.
    fn parts(&mut self, key: &FragKey) -> Option<(&mut Datagram, Pools<'_>)> {
        let FragTable {
            map,
            nodes,
            free_head,
            held,
            freed,
            stats,
            ..
        } = self;
        let d = map.get_mut(key)?;
        Some((
            d,
            Pools {
                nodes,
                free_head,
                held,
                freed,
                stats,
            },
        ))
    }

    /// A first fragment covering `span`: `Ok` when it may be judged (then
    /// [`FragTable::record_first`] its verdict). A refusal that discards the datagram
    /// hands its held tokens to `dropped`.
    pub fn first(
        &mut self,
        key: FragKey,
        span: Span,
        now_ns: u64,
        mut dropped: impl FnMut(u64),
    ) -> Result<(), Refusal> {
        if span.is_empty() {
            self.stats.duplicates += 1;
            return Err(Refusal::Duplicate);
        }
        if !self.known(key, now_ns) {
            return Err(Refusal::Overflow);
        }
        let until = now_ns.saturating_add(self.timeout_ns);
        let Some((d, mut pools)) = self.parts(&key) else {
            return Err(Refusal::Overflow);
        };
        if let Some(r) = d.discarded {
            d.expires = d.expires.max(until);
            return Err(r);
        }
        match d.note(span, key.proto) {
            Ok(()) => Ok(()),
            Err(Refusal::Duplicate) => {
                pools.stats.duplicates += 1;
                Err(Refusal::Duplicate)
            }
            Err(r) => {
                pools.discard(d, r, &mut dropped);
                d.expires = d.expires.max(until);
                Err(r)
            }
        }
    }

    /// A later fragment covering `span`, of protocol `p` (the IPv4 protocol, or the
    /// header after an IPv6 fragment header), with the caller's `token` should it be
    /// held (`None`: the caller has no room to hold it). A refusal that discards the
    /// datagram hands its held tokens to `dropped`.
    pub fn later(
        &mut self,
        key: FragKey,
        span: Span,
        p: u8,
        token: Option<u64>,
        now_ns: u64,
        mut dropped: impl FnMut(u64),
    ) -> Later {
        let can_hold = token.is_some() && self.free_head != NIL;
        if span.is_empty() {
            self.stats.duplicates += 1;
            return Later::Refused(Refusal::Duplicate);
        }
        if !self.map.contains_key(&key) && !can_hold {
            self.stats.overflow += 1;
            return Later::Refused(Refusal::Overflow);
        }
        if !self.known(key, now_ns) {
            return Later::Refused(Refusal::Overflow);
        }
        let until = now_ns.saturating_add(self.timeout_ns);
        let Some((d, mut pools)) = self.parts(&key) else {
            return Later::Refused(Refusal::Overflow);
        };
        if let Some(r) = d.discarded {
            d.expires = d.expires.max(until);
            return Later::Refused(r);
        }
        if d.verdict.is_none() && !can_hold {
            pools.stats.overflow += 1;
            return Later::Refused(Refusal::Overflow);
        }
        match d.note(span, p) {
            Ok(()) => {}
            Err(Refusal::Duplicate) => {
                pools.stats.duplicates += 1;
                return Later::Refused(Refusal::Duplicate);
            }
            Err(r) => {
                pools.discard(d, r, &mut dropped);
                d.expires = d.expires.max(until);
                return Later::Refused(r);
            }
        }
        if let Some(v) = d.verdict {
            d.expires = d.expires.max(until);
            pools.stats.hits += 1;
            return Later::Verdict(v);
        }
        let (Some(token), n) = (token, *pools.free_head) else {
            return Later::Refused(Refusal::Overflow);
        };
        let node = &mut pools.nodes[n as usize];
        *pools.free_head = node.next;
        node.token = token;
        node.next = NIL;
        if d.tail == NIL {
            d.head = n;
        } else {
            pools.nodes[d.tail as usize].next = n;
        }
        d.tail = n;
        *pools.held += 1;
        pools.stats.held += 1;
        Later::Held
    }

    /// Discard the datagram of `key` for `why` (a tiny first fragment), remembering it
    /// if there is room; its held tokens go to `dropped`. Whether it is now known as
    /// discarded.
    pub fn discard(
        &mut self,
        key: FragKey,
        why: Refusal,
        now_ns: u64,
        mut dropped: impl FnMut(u64),
    ) -> bool {
        if !self.known(key, now_ns) {
            return false;
        }
        let until = now_ns.saturating_add(self.timeout_ns);
        let Some((d, mut pools)) = self.parts(&key) else {
            return false;
        };
        pools.discard(d, why, &mut dropped);
        d.expires = d.expires.max(until);
        true
    }

    /// Record the verdict of a datagram whose first fragment was just judged (after
    /// [`FragTable::first`]). Its held fragments (if any) stay until
    /// [`FragTable::take_held`]. `false` if the table is full or the datagram was
    /// discarded (later fragments are then held and time out, or refused).
    pub fn record_first(&mut self, key: FragKey, verdict: u32, now_ns: u64) -> bool {
        if !self.known(key, now_ns) {
            return false;
        }
        let expires = now_ns.saturating_add(self.timeout_ns);
        let Some(d) = self.map.get_mut(&key) else {
            return false;
        };
        if d.discarded.is_some() {
            return false;
        }
        d.verdict = Some(verdict);
        d.expires = expires;
        self.next_expiry = self.next_expiry.min(expires);
        self.stats.recorded += 1;
        true
    }

    /// The verdict id recorded for `key`, if any (no side effect: for a first fragment
    /// seen again, whose verdict slot is reused).
    pub fn verdict_of(&self, key: &FragKey) -> Option<u32> {
        self.map.get(key)?.verdict
    }

    /// Hand the verdict ids of the datagrams forgotten since the last call (expired,
    /// discarded, or reclaimed to make room) to `f`, so their owner can reuse them.
    pub fn take_freed(&mut self, mut f: impl FnMut(u32)) {
        for v in self.freed.drain(..) {
            f(v);
        }
    }

    /// Hand the held fragments of `key` to `f` in arrival order and release them; returns
    /// how many. The datagram (its verdict and runs) stays.
    pub fn take_held(&mut self, key: &FragKey, mut f: impl FnMut(u64)) -> usize {
        let Some((d, pools)) = self.parts(key) else {
            return 0;
        };
        let head = d.head;
        d.head = NIL;
        d.tail = NIL;
        release(pools.nodes, pools.free_head, pools.held, head, &mut f)
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
    use crate::flow::{FlowKey, FAMILY_V4};

    const SEC: u64 = NS;
    const A: [u8; 4] = [10, 0, 0, 1];
    const B: [u8; 4] = [10, 0, 0, 2];

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

    /// Bytes `[from, to)` of a datagram (from a multiple of 8).
    fn sp(from: u16, to: u16) -> Span {
        Span::new(from / 8, to - from)
    }

    /// A later fragment of UDP datagram `id` with a token.
    fn later(ft: &mut FragTable, id: u32, s: Span, token: u64, now: u64) -> Later {
        ft.later(fkey(id), s, proto::UDP, Some(token), now, |_| {
            panic!("no discard")
        })
    }

    fn first(ft: &mut FragTable, id: u32, s: Span, now: u64) -> Result<(), Refusal> {
        ft.first(fkey(id), s, now, |_| panic!("no discard"))
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
            len: 16,
            tiny: false,
        };
        assert_eq!(FragKey::of(0, &m), fkey(77));
        assert_ne!(FragKey::of(1, &m), fkey(77));
        assert_eq!(Span::of(&m.frag), Span { start: 10, end: 12 });
        // IPv6 reassembles on addresses and identification: a later fragment naming the
        // header after the fragment header (here destination options) is the same
        // datagram as its first fragment, whose protocol is TCP.
        m.l3 = crate::flow::L3Kind::Ipv6;
        m.key.family = FAMILY_V6;
        m.key.proto = proto::TCP;
        let first = FragKey::of(0, &m);
        m.key.proto = 60;
        assert_eq!(FragKey::of(0, &m), first);
        assert_eq!(first.proto, 0);
    }

    #[test]
    fn spans_round_up_and_compare_by_bytes() {
        assert_eq!(Span::new(0, 20), Span { start: 0, end: 3 });
        assert_eq!(
            Span::new(185, 4),
            Span {
                start: 185,
                end: 186
            }
        );
        assert_eq!(
            Span::new(0x1fff, 65535),
            Span {
                start: 8191,
                end: 16383
            }
        );
        assert!(Span::new(3, 0).is_empty());
        // A last fragment ending at byte 20 and one starting at byte 24 share no byte.
        assert!(!Span::new(0, 20).overlaps(&Span::new(3, 8)));
        assert!(Span::new(0, 20).overlaps(&Span::new(2, 8)));
    }

    #[test]
    fn runs_merge_and_refuse_overlaps() {
        let mut d = Datagram::new(0);
        // Out of order: [16,24) [0,8) [8,16) -> one run.
        assert_eq!(d.note(sp(16, 24), proto::UDP), Ok(()));
        assert_eq!(d.note(sp(0, 8), proto::UDP), Ok(()));
        assert_eq!(d.nruns, 2);
        assert_eq!(d.note(sp(8, 16), proto::UDP), Ok(()));
        assert_eq!((d.nruns, d.runs[0]), (1, sp(0, 24)));
        // Inside what was seen: duplicates, whatever their boundaries.
        assert_eq!(d.note(sp(8, 16), proto::UDP), Err(Refusal::Duplicate));
        assert_eq!(d.note(sp(0, 24), proto::UDP), Err(Refusal::Duplicate));
        assert_eq!(d.note(sp(8, 12), proto::UDP), Err(Refusal::Duplicate));
        // Partly new: overlaps.
        assert_eq!(d.note(sp(16, 32), proto::UDP), Err(Refusal::Overlap));
        assert_eq!(d.note(sp(0, 32), proto::UDP), Err(Refusal::Overlap));
        // Nothing changed by refusals; the next fragment still fits.
        assert_eq!(d.note(sp(24, 32), proto::UDP), Ok(()));
        assert_eq!((d.nruns, d.runs[0]), (1, sp(0, 32)));
        // A fragment spanning a gap and both its neighbours overlaps them.
        assert_eq!(d.note(sp(48, 56), proto::UDP), Ok(()));
        assert_eq!(d.note(sp(24, 64), proto::UDP), Err(Refusal::Overlap));
        assert_eq!(d.note(sp(32, 48), proto::UDP), Ok(()));
        assert_eq!((d.nruns, d.runs[0]), (1, sp(0, 56)));
        // An empty fragment brings nothing.
        assert_eq!(
            d.note(Span::new(100, 0), proto::UDP),
            Err(Refusal::Duplicate)
        );
    }

    #[test]
    fn too_many_runs_scatter() {
        let mut d = Datagram::new(0);
        for i in 0..RUNS as u16 {
            assert_eq!(d.note(sp(16 * i + 8, 16 * i + 16), proto::UDP), Ok(()));
        }
        assert_eq!(d.nruns as usize, RUNS);
        assert_eq!(
            d.note(sp(16 * 20, 16 * 20 + 8), proto::UDP),
            Err(Refusal::Scattered)
        );
        // Filling a gap merges: room again.
        assert_eq!(d.note(sp(0, 8), proto::UDP), Ok(()));
        assert_eq!(d.nruns as usize, RUNS);
        assert_eq!(d.note(sp(16, 24), proto::UDP), Ok(()));
        assert_eq!(d.nruns as usize, RUNS - 1);
        assert_eq!(d.runs[0], sp(0, 32));
    }

    #[test]
    fn later_fragments_inside_the_smallest_header_overlap() {
        // RFC 1858 §4: TCP offset 1 (8 bytes) and 2 (16 bytes) land inside the 20-byte
        // header any accepted first fragment carries; UDP's 8 bytes end at offset 1.
        for (p, off, r) in [
            (proto::TCP, 1, Err(Refusal::Overlap)),
            (proto::TCP, 2, Err(Refusal::Overlap)),
            (proto::TCP, 3, Ok(())),
            (proto::SCTP, 1, Err(Refusal::Overlap)),
            (proto::UDP, 1, Ok(())),
            (proto::ICMP, 1, Ok(())),
        ] {
            let mut d = Datagram::new(0);
            assert_eq!(d.note(Span::new(off, 8), p), r, "proto {p} offset {off}");
        }
    }

    #[test]
    fn frag_first_then_later() {
        let mut ft = FragTable::new(FragConfig::default());
        assert_eq!(first(&mut ft, 1, sp(0, 64), 0), Ok(()));
        assert!(ft.record_first(fkey(1), 42, 0));
        assert_eq!(later(&mut ft, 1, sp(64, 128), 9, SEC), Later::Verdict(42));
        // Later fragments extend the lifetime; then it expires.
        assert_eq!(
            later(&mut ft, 1, sp(128, 136), 9, 30 * SEC),
            Later::Verdict(42)
        );
        assert_eq!(ft.expire(59 * SEC, |_, _| panic!("nothing held")), 0);
        assert_eq!(ft.len(), 1);
        assert_eq!(ft.expire(60 * SEC, |_, _| panic!("nothing held")), 0);
        assert!(ft.is_empty());
        assert_eq!(ft.stats().hits, 2);
    }

    #[test]
    fn frag_held_then_first_arrives() {
        let mut ft = FragTable::new(FragConfig::default());
        assert_eq!(later(&mut ft, 1, sp(64, 128), 10, 0), Later::Held);
        assert_eq!(later(&mut ft, 1, sp(128, 136), 11, 0), Later::Held);
        assert_eq!(later(&mut ft, 2, sp(64, 128), 20, 0), Later::Held);
        assert_eq!(ft.held(), 3);
        assert_eq!(first(&mut ft, 1, sp(0, 64), SEC), Ok(()));
        assert!(ft.record_first(fkey(1), 7, SEC));
        let mut got = Vec::new();
        assert_eq!(ft.take_held(&fkey(1), |t| got.push(t)), 2);
        assert_eq!(got, vec![10, 11]);
        assert_eq!(ft.held(), 1);
        assert_eq!(ft.take_held(&fkey(1), |_| panic!("empty")), 0);
        // The runs stay: the whole datagram was seen, a copy is a duplicate.
        assert_eq!(
            later(&mut ft, 1, sp(64, 128), 12, 2 * SEC),
            Later::Refused(Refusal::Duplicate)
        );
        assert_eq!(
            first(&mut ft, 1, sp(0, 64), 2 * SEC),
            Err(Refusal::Duplicate)
        );
        assert_eq!(ft.verdict_of(&fkey(1)), Some(7));
        // Datagram 2 never gets its first fragment: its fragment expires.
        let mut exp = Vec::new();
        assert_eq!(ft.expire(29 * SEC, |k, t| exp.push((k.id, t))), 0);
        assert_eq!(ft.expire(30 * SEC, |k, t| exp.push((k.id, t))), 1);
        assert_eq!(exp, vec![(2, 20)]);
        assert_eq!(ft.held(), 0);
        assert_eq!(ft.len(), 1);
        assert_eq!(ft.stats().expired_held, 1);
        assert_eq!(ft.stats().duplicates, 2);
    }

    #[test]
    fn overlap_discards_the_datagram_and_its_held_fragments() {
        let mut ft = FragTable::new(FragConfig::default());
        assert_eq!(later(&mut ft, 1, sp(64, 128), 10, 0), Later::Held);
        assert_eq!(later(&mut ft, 1, sp(128, 136), 11, 0), Later::Held);
        // A first fragment longer than the gap before the held ones: overlap.
        let mut dropped = Vec::new();
        assert_eq!(
            ft.first(fkey(1), sp(0, 72), 0, |t| dropped.push(t)),
            Err(Refusal::Overlap)
        );
        assert_eq!(dropped, vec![10, 11]);
        assert_eq!(ft.held(), 0);
        // Every fragment of it is refused so from now on, even one that fits.
        assert_eq!(first(&mut ft, 1, sp(0, 64), 0), Err(Refusal::Overlap));
        assert_eq!(
            later(&mut ft, 1, sp(136, 144), 12, SEC),
            Later::Refused(Refusal::Overlap)
        );
        assert!(!ft.record_first(fkey(1), 3, 0));
        assert_eq!(ft.verdict_of(&fkey(1)), None);
        assert_eq!(ft.stats().discarded, 1);
        // Until it times out (31 s: the last refusal extended it).
        ft.expire(31 * SEC, |_, _| panic!("nothing held"));
        assert!(ft.is_empty());
        assert_eq!(first(&mut ft, 1, sp(0, 64), 31 * SEC), Ok(()));
    }

    #[test]
    fn overlap_after_the_verdict_forgets_it() {
        let mut ft = FragTable::new(FragConfig::default());
        assert_eq!(first(&mut ft, 1, sp(0, 24), 0), Ok(()));
        assert!(ft.record_first(fkey(1), 5, 0));
        assert_eq!(later(&mut ft, 1, sp(24, 32), 1, 0), Later::Verdict(5));
        assert_eq!(
            later(&mut ft, 1, sp(16, 40), 2, 0),
            Later::Refused(Refusal::Overlap)
        );
        assert_eq!(
            later(&mut ft, 1, sp(40, 48), 3, 0),
            Later::Refused(Refusal::Overlap)
        );
        let mut freed = Vec::new();
        ft.take_freed(|v| freed.push(v));
        assert_eq!(freed, vec![5]);
    }

    #[test]
    fn tiny_first_fragment_discards() {
        let mut ft = FragTable::new(FragConfig::default());
        assert_eq!(later(&mut ft, 1, sp(64, 128), 10, 0), Later::Held);
        let mut dropped = Vec::new();
        assert!(ft.discard(fkey(1), Refusal::Tiny, 0, |t| dropped.push(t)));
        assert_eq!(dropped, vec![10]);
        assert_eq!(
            later(&mut ft, 1, sp(128, 136), 11, 0),
            Later::Refused(Refusal::Tiny)
        );
        assert_eq!(first(&mut ft, 1, sp(0, 64), 0), Err(Refusal::Tiny));
        // The first reason stays.
        assert!(ft.discard(fkey(1), Refusal::Overlap, 0, |_| panic!("none held")));
        assert_eq!(first(&mut ft, 1, sp(0, 64), 0), Err(Refusal::Tiny));
    }

    #[test]
    fn forgotten_verdicts_are_handed_back() {
        let mut ft = FragTable::new(FragConfig {
            max_datagrams: 2,
            max_pending: 2,
            timeout_ns: SEC,
        });
        for (id, v) in [(1, 10), (2, 11)] {
            assert_eq!(first(&mut ft, id, sp(0, 8), 0), Ok(()));
            assert!(ft.record_first(fkey(id), v, 0));
        }
        assert_eq!(ft.verdict_of(&fkey(1)), Some(10));
        let mut got = Vec::new();
        ft.take_freed(|v| got.push(v));
        assert!(got.is_empty());
        // Full: making room reclaims the expired datagrams that hold nothing.
        assert_eq!(first(&mut ft, 3, sp(0, 8), 2 * SEC), Ok(()));
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
        assert_eq!(later(&mut ft, 1, sp(8, 16), 1, 0), Later::Held);
        assert_eq!(later(&mut ft, 1, sp(16, 24), 2, 0), Later::Held);
        assert_eq!(later(&mut ft, 2, sp(8, 16), 3, 0), Later::Held);
        // The pool of held fragments is full: refused before its bytes are noted...
        assert_eq!(
            later(&mut ft, 2, sp(16, 24), 4, 0),
            Later::Refused(Refusal::Overflow)
        );
        // ... also when the caller has no room to hold it.
        assert_eq!(
            ft.later(fkey(2), sp(16, 24), proto::UDP, None, 0, |_| {}),
            Later::Refused(Refusal::Overflow)
        );
        let mut got = Vec::new();
        assert_eq!(first(&mut ft, 1, sp(0, 8), 0), Ok(()));
        assert!(ft.record_first(fkey(1), 1, 0));
        ft.take_held(&fkey(1), |t| got.push(t));
        assert_eq!(got, vec![1, 2]);
        // So the refused fragment, sent again, is not a duplicate.
        assert_eq!(later(&mut ft, 2, sp(16, 24), 4, 0), Later::Held);
        // Two datagrams known: a third is refused, first and later fragments alike.
        assert_eq!(first(&mut ft, 4, sp(0, 8), 0), Err(Refusal::Overflow));
        assert_eq!(
            later(&mut ft, 5, sp(8, 16), 5, 0),
            Later::Refused(Refusal::Overflow)
        );
        // After the timeout datagram 1 (nothing held) is reclaimed on demand; datagram
        // 2's held fragments wait for `expire`.
        assert_eq!(first(&mut ft, 4, sp(0, 8), SEC), Ok(()));
        assert_eq!(ft.stats().overflow, 4);
        let mut ex = 0;
        ft.expire(SEC, |_, _| ex += 1);
        assert_eq!(ex, 2);
        assert_eq!(ft.held(), 0);
        // Nodes are reused: pool of 3.
        for t in 1..=3 {
            assert_eq!(
                later(&mut ft, 9, sp(8 * t, 8 * t + 8), t as u64, SEC),
                Later::Held
            );
        }
        assert_eq!(ft.held(), 3);
        let zero = FragTable::new(FragConfig {
            max_datagrams: 0,
            max_pending: 0,
            timeout_ns: SEC,
        });
        assert!(zero.is_empty());
    }
}
