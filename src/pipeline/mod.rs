//! The per-frame pipeline: port security, egress security groups, L2, ingress security
//! groups — the exact behaviour of a Neutron-conformant stateful firewall inside a switch.
//!
//! # Path of a frame received on port P
//! 1. parse ([`flow::extract`]); error → `malformed`;
//! 2. port security of P (anti-spoofing, ARP, DHCP / RA guards, ethertype allow-list);
//! 3. egress security groups of P, stateful through P's conntrack zone;
//! 4. L2 in P's network (static FDB, learned MACs, flood); an ARP request for a remote
//!    port's address is answered here instead of going to the tunnels
//!    ([`ArpTable`], `arp_responder`);
//! 5. for each destination Q: destination-MAC check, always-allowed ingress, then the
//!    ingress security groups of Q through Q's zone;
//! 6. the frame is delivered to every Q that accepted it.
//!
//! # Ownership and threads
//! A [`Dataplane`] is the immutable compiled form of a configuration (port table, FDB,
//! classifier, epoch); it is built off the fast path and shared read-only (`Arc`). A
//! [`Pipeline`] is one worker's mutable state (conntrack table, learned MACs, fragment
//! state, counters): it is never shared, so nothing on the packet path takes a lock.
//!
//! # Policy changes
//! Every `Dataplane` carries a new epoch. Connection-tracking entries remember the epoch
//! they were judged under; the first packet of a connection seen under a newer epoch
//! re-judges the connection's original direction against the current rules and cuts it
//! (both directions) when it is no longer allowed (`security-groups.md` §37-39).
//!
//! # Fragments
//! The first fragment of a datagram is judged like any packet; its whole verdict
//! (destinations and drops) is recorded and shared by the later fragments, which carry no
//! L4 header. A later fragment arriving before its first fragment is held (bounded) and
//! released with the first fragment's verdict, or dropped when it expires.
//!
//! # Bursts
//! [`Pipeline::process_burst`] gives the same verdicts as [`Pipeline::process`] on each
//! frame in order (checked on every fixture by `tests/pipeline_burst.rs`), but in phases
//! over the burst: parse every frame and start its egress conntrack lookup (hash, prefetch
//! the bucket), prefetch the entries, run egress + L2 and note, for each unicast
//! destination whose ingress check consults conntrack, its zone; then prefetch those
//! ingress entries and finish. The ingress lookup is the egress probe moved to the other
//! zone (`Conntrack::reprobe`): the conntrack index ignores the zone when it picks a
//! bucket, so both lookups of a frame share one hash and one bucket line, and a pending
//! frame carries only (zone, entry hint), not a second probe. A lookup in a table larger
//! than the cache costs two memory misses; overlapping them keeps the rate at 50k flows
//! where frame-by-frame processing loses half of it. A frame with a probe made ahead
//! skips the checks that decided to make it (port security on, IP, not always allowed,
//! stateful port) and runs the conntrack check inline (`ct_check`). Frames of one burst
//! come from one port P, so the egress phase (zone P) and the ingress phase (other zones)
//! touch disjoint entries; fragments are finished in place, in order.
//!
//! Cost (callgrind, `examples/profile_pipeline.rs`, 1,000 established flows): 1,075
//! instructions per frame in bursts (was 1,475), 1,114 frame by frame (`frame` mode);
//! about 310 of them are conntrack (one hash, two prefetch stages, two lookups and
//! updates), ~200 parse the frame, ~45 the static FDB lookup.
//!
//! # Allocation
//! Verdicts, held-fragment buffers and fragment records are pooled and reused; in steady
//! state processing a frame allocates nothing.
//!
//! # Owns, and may not touch
//! This module owns the per-frame decision: the order of the steps above, the compiled
//! [`Dataplane`] of an epoch and a worker's [`Pipeline`] (its conntrack table, learned
//! MACs, fragment state and counters), and the [`Verdict`]s it hands back. It uses `flow`
//! (parsing, keys, drop reasons), `classifier` ([`CompiledPolicy`]), `conntrack` and `l2`,
//! and `policy` and `wire` for their types; nothing else. May not touch: ports or any port
//! backend (a frame comes in as a byte slice and an ingress port index, and leaves as a
//! verdict naming destination port indices; no `use crate::port` anywhere in this tree),
//! threads, locks or the clock (the caller passes `now_ns`), or where a policy comes from
//! (the runtime compiles and publishes a `Dataplane`; the control plane owns the model).
//!
//! Files: `dataplane` the compiled port table; `judge` steps 2–6 of one frame; `security`
//! port security and always-allowed traffic; `verdict` the outcome and counters;
//! `arp_responder` ARP answered locally for remote ports (#19, l2population);
//! [`fragments`] IP fragments. This file holds [`Pipeline`], its configuration and the
//! burst phases.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use hashbrown::HashMap;
use ipnet::IpNet;

use crate::classifier::CompiledPolicy;
use crate::conntrack::{CommitError, Conntrack, CtEntry, Handle, Probe, Track};
use crate::flow::{self, proto, DropReason, FlowKey, L3Kind, PacketMeta, FAMILY_V4, FAMILY_V6};
use crate::l2::{self, L2Dest, LearnedFdb, StaticFdb};
use crate::policy::validate::{rule_key, RuleKey};
use crate::policy::{ConntrackSettings, Direction, Encap, Model, Network, Rule, RuleRef};
use crate::wire::Mac;

mod arp_responder;
mod dataplane;
pub mod fragments;
mod judge;
pub mod observe;
mod security;
mod verdict;

pub use arp_responder::{ArpReply, ArpTable, ARP_REPLY_LEN};
pub use dataplane::{
    eui64_link_local, rules_only_change, Dataplane, IdMap, PortEntry, PortLog, Tunnel,
};
pub use verdict::{Disposition, PortCounters, Verdict};

pub use fragments::FragStats;
use fragments::Fragments;
use judge::{Check, CtRefusals, Frame};
use observe::Observe;
pub use observe::{
    CtStep, L2Step, LogCounters, LogLimits, LogRecord, LogVerdict, Step, Trace, LOG_BUFFER,
};
use security::port_security;
/// Which traffic passes without security groups (DHCP, router and neighbour discovery,
/// MLD): public for oracles that must apply the same rule (the pipeline fuzz target).
pub use security::{always_allowed_egress, always_allowed_ingress};

/// Tunables of a pipeline (one worker).
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    pub conntrack: ConntrackSettings,
    pub max_pending_fragments: usize,
    pub max_fragmented_datagrams: usize,
    pub fragment_timeout_ns: u64,
    pub learned_macs: usize,
    pub mac_ageing_ns: u64,
    /// Count, per security-group rule, the new connections it admits (default on).
    pub rule_hits: bool,
    /// Rate limits of the packet log (per pipeline).
    pub log_limits: LogLimits,
}

impl PipelineConfig {
    pub fn from_model(model: &Model) -> PipelineConfig {
        let c = &model.conntrack;
        PipelineConfig {
            conntrack: c.clone(),
            max_pending_fragments: c.max_pending_fragments.max(1),
            max_fragmented_datagrams: (c.max_pending_fragments * 4).max(64),
            fragment_timeout_ns: c.fragment_timeout.saturating_mul(1_000_000_000),
            learned_macs: 4096,
            mac_ageing_ns: l2::DEFAULT_AGEING_NS,
            rule_hits: true,
            log_limits: LogLimits::default(),
        }
    }
}

/// One worker's pipeline state.
pub struct Pipeline {
    ct: Conntrack,
    learned: LearnedFdb,
    counters: Vec<PortCounters>,
    frags: Fragments,
    burst_meta: Vec<(bool, PacketMeta)>,
    burst_probe: Vec<Option<Probe>>,
    burst_dest: Vec<Pending>,
    /// Record MACs learned here for the other workers (see [`l2::LearnedFdb`]).
    share_learning: bool,
    learned_out: Vec<Learned>,
    obs: Observe,
    /// New connections conntrack refused, for the rate-limited warning (`judge`).
    ct_refusals: CtRefusals,
    /// New connections the sending port may still start in this burst
    /// ([`Pipeline::set_new_flow_budget`]; `u32::MAX`: no bound).
    new_flows: u32,
}

/// A MAC learned by one worker's pipeline, for the others ([`Pipeline::take_learned`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Learned {
    pub network: u16,
    pub mac: Mac,
    /// Dataplane port index, valid under `epoch`.
    pub port: u16,
    pub epoch: u64,
}

/// Learned MACs kept for [`Pipeline::take_learned`] between two calls; more are not
/// recorded (the next refresh announces them again).
pub const LEARNED_OUT: usize = 256;

/// A frame of a burst between its L2 step and its ingress step.
#[derive(Clone, Copy, Debug)]
struct Pending {
    /// Index in the chunk.
    i: usize,
    /// `None`: decided at the sending port.
    dest: Option<L2Dest>,
    /// For a unicast destination whose ingress check consults conntrack: its zone and
    /// the entry hint found by the prefetch ([`Probe::hint`]).
    ct: Option<(u16, u32)>,
}

/// A chunk's frames, their parse results and egress probes, as the burst phases read them.
type BurstInputs<'a> = (
    &'a [&'a [u8]],
    &'a [(bool, PacketMeta)],
    &'a [Option<Probe>],
);

/// No entry hint (a hint is only ever verified, so any value is safe).
const NO_HINT: u32 = u32::MAX;

/// Frames per phase of [`Pipeline::process_burst`].
pub const BURST: usize = 32;

const EGRESS: Direction = Direction::Egress;
const INGRESS: Direction = Direction::Ingress;

const TAG_EGRESS: u8 = 0;
const TAG_INGRESS: u8 = 1;

#[inline]
fn dir_tag(d: Direction) -> u8 {
    match d {
        Direction::Egress => TAG_EGRESS,
        Direction::Ingress => TAG_INGRESS,
    }
}

#[inline]
fn denied(d: Direction) -> DropReason {
    match d {
        Direction::Egress => DropReason::EgressDenied,
        Direction::Ingress => DropReason::IngressDenied,
    }
}

#[inline]
fn v4_zero(key: &FlowKey) -> bool {
    key.src[12..16] == [0, 0, 0, 0]
}

impl Pipeline {
    pub fn new(cfg: &PipelineConfig) -> Pipeline {
        Pipeline {
            ct: Conntrack::new(&cfg.conntrack),
            learned: LearnedFdb::new(cfg.learned_macs, cfg.mac_ageing_ns),
            counters: Vec::new(),
            frags: Fragments::new(cfg),
            burst_meta: vec![(false, PacketMeta::default()); BURST],
            burst_probe: vec![None; BURST],
            burst_dest: Vec::with_capacity(BURST),
            share_learning: false,
            learned_out: Vec::with_capacity(LEARNED_OUT),
            obs: Observe::new(cfg),
            ct_refusals: CtRefusals::default(),
            new_flows: u32::MAX,
        }
    }

    /// Bound the new connections the frames processed from now on may start (`None`: no
    /// bound, the default). A worker sets it for each burst it receives: a full burst
    /// means the port sends faster than the worker serves it, and then only `budget` of
    /// the burst's frames may start a connection; the others that would are dropped as
    /// `new-flow-overload` (counted at the sending port) before anything is committed or
    /// delivered. A TCP SYN (without ACK) on a known entry (a retry, or a closed
    /// connection reopened) spends the budget like a new connection; other frames of
    /// known connections are never affected, nor are ports without port security (no
    /// egress check). Under a flood of new connections, delivering them is what costs the
    /// worker (the receiving instance's kernel answers each one in the worker's `write`,
    /// and the sender's kernel answers the reply): the budget bounds that cost per burst.
    pub fn set_new_flow_budget(&mut self, budget: Option<u32>) {
        self.new_flows = budget.unwrap_or(u32::MAX);
    }

    /// New connections admitted per rule slot ([`IdMap::rule_slot`]); slots never counted
    /// may be missing at the end.
    pub fn rule_hits(&self) -> &[u64] {
        &self.obs.rule_hits
    }

    /// Counters of the packet log.
    pub fn log_counters(&self) -> LogCounters {
        self.obs.log_counters
    }

    /// Hand every packet-log record written since the last call to `f`, in order.
    pub fn take_log_records(&mut self, mut f: impl FnMut(&LogRecord)) {
        for r in &self.obs.log {
            f(r);
        }
        self.obs.log.clear();
    }

    /// Whether packet-log records are waiting for [`Pipeline::take_log_records`].
    #[inline]
    pub fn has_log_records(&self) -> bool {
        !self.obs.log.is_empty()
    }

    /// Process one frame like [`Pipeline::process`] and return its steps as well
    /// (`sgswitch trace`). The pipeline's state changes exactly as with `process` (a new
    /// connection is committed): trace on a scratch pipeline to leave a live one alone.
    pub fn trace(
        &mut self,
        dp: &Dataplane,
        in_port: u16,
        frame: &[u8],
        now_ns: u64,
        out: &mut Verdict,
    ) -> (Disposition, Trace) {
        self.obs.trace = Some(Box::default());
        let d = self.process(dp, in_port, frame, now_ns, 0, out);
        let t = self.obs.trace.take().map(|t| *t).unwrap_or_default();
        (d, t)
    }

    /// Forget every connection of conntrack zone `zone` (`sgswitch conntrack flush`):
    /// their next packets are judged as new. Returns how many entries went.
    pub fn conntrack_flush(&mut self, zone: u16) -> usize {
        self.ct.remove_zone(zone)
    }

    /// Insert a copy of a connection-tracking entry (from another pipeline: `trace`
    /// against a running switch seeds its scratch pipeline with the live entry).
    pub fn seed_conntrack(&mut self, e: &CtEntry) -> bool {
        self.ct.insert_copy(e)
    }

    /// Record a trace step when tracing (cold: never while switching).
    #[cold]
    #[inline(never)]
    fn trace_step(&mut self, s: Step) {
        if let Some(t) = self.obs.trace.as_deref_mut() {
            t.steps.push(s);
        }
    }

    #[inline(always)]
    fn tracing(&self) -> bool {
        self.obs.trace.is_some()
    }

    /// Counters per conntrack zone (a zone is stable for a port name across reloads:
    /// see [`IdMap`]).
    pub fn counters(&self) -> &[PortCounters] {
        &self.counters
    }

    /// Record the MACs this pipeline learns for other workers' pipelines (off by default:
    /// one pipeline, as in replay, has no one to tell).
    pub fn share_learning(&mut self, on: bool) {
        self.share_learning = on;
        self.learned_out.clear();
    }

    /// Hand every MAC learned since the last call to `f` (see [`l2::LearnedFdb`]).
    pub fn take_learned(&mut self, mut f: impl FnMut(Learned)) {
        for l in self.learned_out.drain(..) {
            f(l);
        }
    }

    /// Apply a MAC another worker's pipeline learned.
    pub fn learn_remote(&mut self, l: Learned, now_ns: u64) {
        self.learned
            .learn_remote(l.network, l.mac, l.port, l.epoch, now_ns);
    }

    /// The connection-tracking table (for statistics and debugging).
    pub fn conntrack(&self) -> &Conntrack {
        &self.ct
    }

    #[inline]
    fn counter(&mut self, dp: &Dataplane, port: u16) -> Option<&mut PortCounters> {
        let zone = dp.ports.get(port as usize)?.zone as usize;
        if zone >= self.counters.len() {
            self.grow_counters(zone);
        }
        self.counters.get_mut(zone)
    }

    /// First frame counted for `zone` (since it appeared): make room (cold).
    #[cold]
    #[inline(never)]
    fn grow_counters(&mut self, zone: usize) {
        self.counters.resize(zone + 1, PortCounters::default());
    }

    #[inline]
    fn count(&mut self, dp: &Dataplane, v: &Verdict, in_port: u16, len: usize) {
        let len = len as u64;
        if let Some(c) = self.counter(dp, in_port) {
            c.rx += 1;
            c.rx_bytes += len;
        }
        for &d in &v.delivered {
            if let Some(c) = self.counter(dp, d) {
                c.tx += 1;
                c.tx_bytes += len;
            }
        }
        for &(p, r) in &v.dropped {
            if let Some(c) = self.counter(dp, p) {
                c.dropped[r as usize] += 1;
            }
        }
        if v.reply.is_some() {
            if let Some(c) = self.counter(dp, in_port) {
                c.tx += 1;
                c.tx_bytes += ARP_REPLY_LEN as u64;
                c.arp_replies += 1;
            }
        }
    }

    /// Drop, after the fact, a frame of `len` bytes from `in_port` that the pipeline
    /// delivered: the worker's fair share of a saturated worker
    /// ([`DropReason::FairShare`]). Its deliveries are taken back from the counters and
    /// the drop is counted at the port it arrived on; conntrack keeps what it saw (as for
    /// a frame lost on the wire after a firewall).
    pub fn shed_delivered(&mut self, dp: &Dataplane, in_port: u16, v: &mut Verdict, len: usize) {
        let len = len as u64;
        for i in 0..v.delivered.len() {
            if let Some(c) = self.counter(dp, v.delivered[i]) {
                c.tx = c.tx.saturating_sub(1);
                c.tx_bytes = c.tx_bytes.saturating_sub(len);
            }
        }
        v.delivered.clear();
        v.dropped.push((in_port, DropReason::FairShare));
        if let Some(c) = self.counter(dp, in_port) {
            c.dropped[DropReason::FairShare as usize] += 1;
        }
    }

    /// Take back, after the fact, the delivery to port `to` of a frame of `len` bytes from
    /// `in_port`, and count `reason` at `in_port` (the runtime's underlay refuses a frame
    /// larger than the overlay's inner MTU: [`DropReason::TunnelTooBig`]).
    pub fn refuse_delivery(
        &mut self,
        dp: &Dataplane,
        in_port: u16,
        v: &mut Verdict,
        to: u16,
        len: usize,
        reason: DropReason,
    ) {
        let Some(i) = v.delivered.iter().position(|&d| d == to) else {
            return;
        };
        v.delivered.remove(i);
        if let Some(c) = self.counter(dp, to) {
            c.tx = c.tx.saturating_sub(1);
            c.tx_bytes = c.tx_bytes.saturating_sub(len as u64);
        }
        v.dropped.push((in_port, reason));
        if let Some(c) = self.counter(dp, in_port) {
            c.dropped[reason as usize] += 1;
        }
    }

    /// Packet-log records of the drops of a frame, for the ports whose drops are logged.
    #[cold]
    #[inline(never)]
    fn log_drops(&mut self, dp: &Dataplane, v: &Verdict, in_port: u16, key: &FlowKey, now: u64) {
        for &(p, r) in &v.dropped {
            if dp.logs.get(p as usize).is_some_and(|l| l.drop) && self.obs.may_record(now) {
                self.obs.record(LogRecord {
                    time_ns: now,
                    epoch: dp.epoch,
                    port: p,
                    dir: if p == in_port { EGRESS } else { INGRESS },
                    verdict: LogVerdict::Drop(r),
                    rule: None,
                    key: *key,
                });
            }
        }
    }

    /// Process one frame received on port `in_port` at time `now_ns`. `token` identifies
    /// the frame if it has to be held (e.g. its number in a capture). The verdict is
    /// written to `out` when the result is [`Disposition::Decided`].
    pub fn process(
        &mut self,
        dp: &Dataplane,
        in_port: u16,
        frame: &[u8],
        now_ns: u64,
        token: u64,
        out: &mut Verdict,
    ) -> Disposition {
        out.clear();
        let mut meta = PacketMeta::default();
        let parsed = flow::extract_into(frame, &mut meta).is_ok();
        let d = self.process_parsed(
            dp,
            now_ns,
            in_port,
            frame,
            parsed.then_some(&meta),
            None,
            token,
            out,
        );
        let key = parsed.then_some(&meta.key);
        self.account(dp, in_port, d, out, frame.len(), key, now_ns);
        d
    }

    /// Process a burst of frames received on `in_port`, in phases over the whole burst:
    /// parse every frame and compute its egress conntrack probe (which prefetches the
    /// hash bucket), prefetch the candidate entries, then finish each frame. The memory
    /// latency of the conntrack lookups overlaps instead of adding up. Same results as
    /// calling [`Pipeline::process`] on each frame in order.
    pub fn process_burst(
        &mut self,
        dp: &Dataplane,
        in_port: u16,
        frames: &[&[u8]],
        now_ns: u64,
        out: &mut [Verdict],
        dispositions: &mut [Disposition],
    ) {
        let mut metas = std::mem::take(&mut self.burst_meta);
        let n = frames.len().min(out.len()).min(dispositions.len());
        for start in (0..n).step_by(BURST) {
            let end = (start + BURST).min(n);
            parse_burst(&frames[start..end], &mut metas[..end - start]);
            self.process_parsed_burst(
                dp,
                in_port,
                &frames[start..end],
                &metas[..end - start],
                now_ns,
                &mut out[start..end],
                &mut dispositions[start..end],
            );
        }
        self.burst_meta = metas;
    }

    /// [`Pipeline::process_burst`] for frames already parsed by [`parse_burst`] (the
    /// runtime parses a burst once, to steer it between workers, then processes it here):
    /// `metas[i]` is the result of parsing `frames[i]`.
    #[allow(clippy::too_many_arguments)]
    pub fn process_parsed_burst(
        &mut self,
        dp: &Dataplane,
        in_port: u16,
        frames: &[&[u8]],
        metas: &[(bool, PacketMeta)],
        now_ns: u64,
        out: &mut [Verdict],
        dispositions: &mut [Disposition],
    ) {
        let mut probes = std::mem::take(&mut self.burst_probe);
        let port = dp.ports.get(in_port as usize);
        let stateful = dp.policy.is_stateful(in_port as usize);
        let total = frames
            .len()
            .min(metas.len())
            .min(out.len())
            .min(dispositions.len());
        for chunk_start in (0..total).step_by(BURST) {
            let end = (chunk_start + BURST).min(total);
            let n = end - chunk_start;
            let metas = &metas[chunk_start..end];
            // Phase 1: start the egress conntrack lookup.
            for (k, slot) in metas.iter().enumerate() {
                let (ok, ref m) = *slot;
                let probe = match port {
                    Some(p)
                        if ok
                            && stateful
                            && p.port_security
                            && m.is_ip()
                            && !m.frag.is_later_fragment()
                            && !always_allowed_egress(m) =>
                    {
                        Some(self.ct.probe(p.zone, m))
                    }
                    _ => None,
                };
                probes[k] = probe;
            }
            // Phase 2: prefetch the entries the probes point at.
            for p in probes[..n].iter_mut().flatten() {
                self.ct.prefetch_entry(p);
            }
            // Phase 3: egress and L2 of every frame; start the ingress lookup of unicast
            // destinations. Fragments (rare) are finished on the spot, after the frames
            // before them, so that their shared verdicts are recorded in frame order.
            let mut dests = std::mem::take(&mut self.burst_dest);
            dests.clear();
            for i in 0..n {
                let (ok, ref m) = metas[i];
                let frag = ok && m.is_ip() && m.frag.is_fragment;
                let simple = ok
                    && !frag
                    && port.is_some_and(|p| !p.port_security || port_security(dp, p, m).is_ok());
                if !simple {
                    self.finish_pending(
                        dp,
                        now_ns,
                        in_port,
                        (&frames[chunk_start..end], metas, &probes),
                        &mut dests,
                        &mut out[chunk_start..],
                    );
                }
                let o = &mut out[chunk_start + i];
                o.clear();
                if !simple {
                    let d = self.process_parsed(
                        dp,
                        now_ns,
                        in_port,
                        frames[chunk_start + i],
                        ok.then_some(m),
                        probes[i].as_ref(),
                        0,
                        o,
                    );
                    let key = ok.then_some(&m.key);
                    self.account(
                        dp,
                        in_port,
                        d,
                        o,
                        frames[chunk_start + i].len(),
                        key,
                        now_ns,
                    );
                    dispositions[chunk_start + i] = d;
                    continue;
                }
                let Some(p) = port else { continue };
                let f = Frame {
                    dp,
                    now_ns,
                    in_port,
                    p,
                    meta: m,
                };
                let dest = self.egress_and_l2(f, probes[i].as_ref(), o);
                let ct = match dest {
                    Some(L2Dest::Port(q)) => self.ingress_zone(dp, q, m),
                    _ => None,
                };
                if let Some(zone) = ct {
                    if probes[i].is_none() {
                        // No egress lookup to derive it from (P is not stateful): probe
                        // in Q's zone now (this frame's egress is done with `probes[i]`).
                        probes[i] = Some(self.ct.probe(zone, m));
                    }
                }
                dests.push(Pending {
                    i,
                    dest,
                    ct: ct.map(|zone| (zone, NO_HINT)),
                });
                dispositions[chunk_start + i] = Disposition::Decided;
            }
            self.finish_pending(
                dp,
                now_ns,
                in_port,
                (&frames[chunk_start..end], metas, &probes),
                &mut dests,
                &mut out[chunk_start..],
            );
            self.burst_dest = dests;
        }
        self.burst_probe = probes;
    }

    /// Phases 4-5 of a burst: prefetch the pending frames' ingress conntrack entries, then
    /// run their ingress checks and account them. The ingress probe of a frame is its
    /// probe in `probes` moved to the destination's zone: same bucket (prefetched in
    /// phase 1), another signature.
    fn finish_pending(
        &mut self,
        dp: &Dataplane,
        now_ns: u64,
        in_port: u16,
        (frames, metas, probes): BurstInputs<'_>,
        dests: &mut Vec<Pending>,
        out: &mut [Verdict],
    ) {
        if dests.is_empty() {
            return;
        }
        for d in dests.iter_mut() {
            if let (Some((zone, hint)), Some(Some(e))) = (&mut d.ct, probes.get(d.i)) {
                let mut p = self.ct.reprobe(e, *zone);
                self.ct.prefetch_entry(&mut p);
                *hint = p.hint();
            }
        }
        let Some(p) = dp.ports.get(in_port as usize) else {
            dests.clear();
            return;
        };
        for d in dests.drain(..) {
            let o = &mut out[d.i];
            let f = Frame {
                dp,
                now_ns,
                in_port,
                p,
                meta: &metas[d.i].1,
            };
            match (d.dest, d.ct, probes.get(d.i)) {
                // `ct` is set only when `deliver`'s checks before the security groups all
                // pass (see `ingress_zone`): go straight to them.
                (Some(L2Dest::Port(q)), Some((zone, hint)), Some(Some(e))) => {
                    let probe = self.ct.reprobe(e, zone).with_hint(hint);
                    let c = Check {
                        idx: q as usize,
                        zone,
                        dir: INGRESS,
                    };
                    match self.ct_check(f, c, &probe) {
                        Ok(()) => o.delivered.push(q),
                        Err(r) => o.dropped.push((q, r)),
                    }
                }
                (Some(dest), _, _) => self.ingress(f, dest, o),
                (None, _, _) => {}
            }
            let len = frames.get(d.i).map_or(0, |f| f.len());
            let key = &metas[d.i].1.key;
            self.account(dp, in_port, Disposition::Decided, o, len, Some(key), now_ns);
        }
    }

    /// Count a frame's verdict (`d`: decided now, or held), and log its drops.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn account(
        &mut self,
        dp: &Dataplane,
        in_port: u16,
        d: Disposition,
        o: &mut Verdict,
        len: usize,
        key: Option<&FlowKey>,
        now_ns: u64,
    ) {
        if d == Disposition::Decided {
            o.normalise();
            self.count(dp, o, in_port, len);
            if dp.log_any && !o.dropped.is_empty() {
                let key = key.copied().unwrap_or_default();
                self.log_drops(dp, o, in_port, &key, now_ns);
            }
        } else if let Some(c) = self.counter(dp, in_port) {
            c.rx += 1;
            c.rx_bytes += len as u64;
        }
    }

    /// Periodic housekeeping (per burst): expire conntrack entries with a bounded budget;
    /// report refused connections held back by the warning's rate limit.
    pub fn housekeeping(&mut self, now_ns: u64) {
        self.ct.expire(now_ns, 64);
        if self.ct_refusals.pending() {
            self.ct_refusals.report(now_ns, &self.ct);
        }
    }
}

/// Parse every frame of a burst: `metas[i]` = (whether `frames[i]` parsed, its metadata),
/// for [`Pipeline::process_parsed_burst`]. Extra entries on either side are left alone.
pub fn parse_burst(frames: &[&[u8]], metas: &mut [(bool, PacketMeta)]) {
    for (f, slot) in frames.iter().zip(metas.iter_mut()) {
        slot.0 = flow::extract_into(f, &mut slot.1).is_ok();
    }
}

/// A shareable handle to a compiled dataplane.
pub type SharedDataplane = Arc<Dataplane>;
