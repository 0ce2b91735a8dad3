//! One polling worker: the receive path, the same for every backend and worker count.
//!
//! # The loop
//! 1. Commands from the control thread (ports added or removed), the published policy
//!    (loaded once per iteration), MACs the other workers learned.
//! 2. For every port group and member ([`PortGroup`]): receive a burst, read the frames
//!    in place, parse them once ([`pipeline::parse_burst`]). With several workers, every
//!    IP frame whose connection another worker owns ([`steer`]) goes to that worker with
//!    its parsed metadata (a [`handoff`] batch); the rest, compacted, run through
//!    [`Pipeline::process_parsed_burst`]; a burst that came back full (the port sends
//!    faster than this worker reads it) may start at most `[switch] new_flow_budget` new
//!    connections, the rest shed as `new-flow-overload` (so a flood of new connections
//!    costs the worker a bounded share of each round, and known connections of every port
//!    keep theirs; frames steered to another worker are judged there without a budget).
//!    Each delivery goes to a member of the same group (the group moves or copies the
//!    frame when the burst ends: [`PortGroup::rx_done`]), to another group of this worker
//!    (a copy), or to the worker driving that port (a handoff batch). An ARP reply the
//!    pipeline's responder generated (#19) goes back out of the ingress member
//!    ([`send_arp_replies`]: written into a stack buffer, then `tx_copy`).
//! 3. The inbox: batches steered here run through the same `process_parsed_burst`
//!    (grouped by ingress port), batches to transmit go to their ports.
//! 4. Flush every group, send the handoff batches, publish counters on request, back off
//!    when idle.
//! 5. Every [`FAULT_POLL`] (one clock comparison per iteration otherwise): take each
//!    port's note that its netdev may be gone ([`PortGroup::take_fault`]) and pass it to
//!    the supervisor ([`super::supervise`]), which decides; closing a port is a
//!    `Cmd::Remove` like a hot-unplug.
//!
//! So one worker and many run the same code; with one worker nothing is steered and the
//! handoff queues are never touched. The worker owns every port it drives, its
//! [`Pipeline`] and its scratch; nothing on the packet path takes a lock or allocates
//! (fragments released from the pipeline's hold are the rare exception noted there).

use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Duration;

use super::handoff::{Kind, Outbox, Queues, HANDOFF};
use super::observe::{CaptureDir, CaptureRing, CaptureSpec, Query, WorkerCounters};
use super::share::{FloodSettings, Shares, MAX_EXTRA_READS};
use super::supervise::FAULT_POLL;
use super::underlay;
use super::{lock, Shared, WorkerSnapshot};
use crate::flow::PacketMeta;
use crate::pipeline::{self, Dataplane, Disposition, Pipeline, PipelineConfig, Verdict};
use crate::port::gso::{self, Resolved};
use crate::port::{Members, Offload, PortGroup, PortStats, MAX_BURST, MAX_SLOT};

/// A control-thread command to one worker.
pub(super) enum Cmd {
    /// Drive `ports`; member `m` is the port of conntrack zone `zones[m]`, named
    /// `names[m]`.
    Add {
        zones: Vec<u16>,
        names: Vec<String>,
        ports: Box<dyn PortGroup>,
    },
    /// Stop driving the port of `zone` (closing it, detaching its XDP program).
    Remove { zone: u16 },
    /// A question from the control side ([`Query`]).
    Query(Query),
}

/// A port group this worker drives.
struct GroupSlot {
    ports: Box<dyn PortGroup>,
    zones: Vec<u16>,
    /// Port names, for the log.
    names: Vec<String>,
    /// Dataplane index of each member (`None`: not in the policy).
    idx: Vec<Option<u16>>,
}

/// Where a frame delivered to a dataplane port goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    /// Member `m` of this worker's group `g`.
    Local {
        g: u16,
        m: u16,
    },
    /// The port of `zone`, driven by worker `w`.
    Remote {
        w: u16,
        zone: u16,
    },
    Nowhere,
}

pub(super) struct Worker {
    id: usize,
    nw: usize,
    shared: Arc<Shared>,
    cmds: Receiver<Cmd>,
    pipeline: Pipeline,
    /// `None` only while the group is being polled.
    groups: Vec<Option<GroupSlot>>,
    /// Dataplane port index → route.
    routes: Vec<Route>,
    /// Zone → (group, member) of this worker's ports.
    by_zone: Vec<Option<(u16, u16)>>,
    dp: Arc<Dataplane>,
    burst: usize,
    /// New connections a port may start per full burst (`[switch] new_flow_budget`,
    /// [`super::share::NewFlowBudget`]: by default a quarter of the burst; `None`: no
    /// bound). A flooding port then costs the worker at most this many deliveries of new
    /// connections per round, while every port's frames of known connections go on at a
    /// full burst per round; a port whose bursts are not full is not bounded at all.
    new_flows: Option<u32>,
    /// Each port's share of the worker while it is saturated ([`super::share`]).
    shares: Shares,
    /// The share is in force in this round.
    engaged: bool,
    backoff: bool,
    out: Outbox,
    // Per-burst scratch, MAX_BURST entries each.
    metas: Vec<(bool, PacketMeta)>,
    /// Local position → index in the received burst.
    map: Vec<u16>,
    verdicts: Vec<Verdict>,
    disp: Vec<Disposition>,
    fates: Vec<Members>,
    steered: u64,
    snap_seen: u64,
    counters: WorkerCounters,
    /// Running captures (rarely more than one).
    captures: Vec<(Arc<CaptureRing>, CaptureSpec)>,
    /// When (ns on the switch's clock) the ports' fault notes are taken next.
    next_fault_poll: u64,
    /// Where superframes are segmented (and partial checksums completed) for destinations
    /// that cannot take them: [`MAX_SLOT`] bytes, allocated once.
    scratch: Vec<u8>,
    /// Zone → segments this worker made for that port ([`PortStats::gso_segmented`]).
    segmented: Vec<u64>,
}

/// Everything a delivery may need, borrowed apart from the pipeline.
struct Sinks<'a> {
    routes: &'a [Route],
    groups: &'a mut [Option<GroupSlot>],
    out: &'a mut Outbox,
    queues: &'a Queues,
    scratch: &'a mut [u8],
    segmented: &'a mut Vec<u64>,
}

impl Sinks<'_> {
    /// Deliver a copy of `frame` to dataplane port `q` (a port of the group being polled
    /// is `None` here: its deliveries go through `rx_done`).
    #[inline]
    fn copy_to(&mut self, q: u16, frame: &[u8]) {
        self.copy_offload_to(q, frame, Offload::NONE);
    }

    /// [`Sinks::copy_to`] for a frame with offload metadata: whole, metadata and all, to a
    /// port that takes it (a tap with `vnet_hdr`); segmented or checksummed in software
    /// ([`gso::resolve`], counted per port) to any other, and to another worker (a handoff
    /// carries no metadata).
    #[inline]
    fn copy_offload_to(&mut self, q: u16, frame: &[u8], off: Offload) {
        let route = self
            .routes
            .get(q as usize)
            .copied()
            .unwrap_or(Route::Nowhere);
        match route {
            Route::Local { g, m } => {
                let Some(Some(s)) = self.groups.get_mut(g as usize) else {
                    return;
                };
                let m = m as usize;
                if off.is_none() {
                    s.ports.tx_copy(m, frame);
                } else if s.ports.takes_offload(m) {
                    s.ports.tx_copy_offload(m, frame, off);
                } else {
                    let r = gso::resolve(frame, &off, self.scratch, |f| s.ports.tx_copy(m, f));
                    count_segments(self.segmented, s.zones[m], r);
                }
            }
            Route::Remote { w, zone } => {
                let (out, queues) = (&mut *self.out, self.queues);
                let r = gso::resolve(frame, &off, self.scratch, |f| {
                    out.tx(queues, w as usize, zone, f)
                });
                count_segments(self.segmented, zone, r);
            }
            Route::Nowhere => {}
        }
    }
}

/// Count the segments `r` made for the port of `zone`.
fn count_segments(segmented: &mut Vec<u64>, zone: u16, r: Resolved) {
    if let Resolved::Segmented(n) = r {
        let z = zone as usize;
        if segmented.len() <= z {
            segmented.resize(z + 1, 0);
        }
        segmented[z] += n as u64;
    }
}

impl Worker {
    #[allow(clippy::too_many_arguments)] // the worker's settings, each from its own source
    pub(super) fn new(
        id: usize,
        nw: usize,
        shared: Arc<Shared>,
        cmds: Receiver<Cmd>,
        pcfg: &PipelineConfig,
        burst: usize,
        backoff: bool,
        flood: FloodSettings,
    ) -> Worker {
        let dp = shared.dp.load_full();
        let mut pipeline = Pipeline::new(pcfg);
        pipeline.share_learning(nw > 1);
        let scratch = MAX_BURST.max(HANDOFF);
        Worker {
            id,
            nw,
            cmds,
            pipeline,
            groups: Vec::new(),
            routes: Vec::new(),
            by_zone: Vec::new(),
            dp,
            burst,
            new_flows: flood.new_flow_budget.per_burst(burst),
            shares: Shares::new(flood.fair_share, burst),
            engaged: false,
            backoff,
            out: Outbox::new(id, nw),
            metas: vec![(false, PacketMeta::default()); scratch],
            map: vec![0; scratch],
            verdicts: vec![Verdict::default(); scratch],
            disp: vec![Disposition::Decided; scratch],
            fates: vec![0; scratch],
            steered: 0,
            snap_seen: 0,
            counters: WorkerCounters::default(),
            captures: Vec::new(),
            next_fault_poll: 0,
            scratch: vec![0; MAX_SLOT],
            segmented: Vec::new(),
            shared,
        }
    }

    fn reroute(&mut self) {
        for s in self.groups.iter_mut().flatten() {
            underlay::sync(&mut *s.ports, &mut s.zones, &mut s.names, &self.dp);
        }
        self.by_zone.clear();
        for (g, s) in self.groups.iter().enumerate() {
            let Some(s) = s else { continue };
            for (m, z) in s.zones.iter().enumerate() {
                let z = *z as usize;
                if self.by_zone.len() <= z {
                    self.by_zone.resize(z + 1, None);
                }
                self.by_zone[z] = Some((g as u16, m as u16));
            }
        }
        let owners = lock(&self.shared.owners).clone();
        self.routes.clear();
        for p in self.dp.ports.iter() {
            let r = match self.by_zone.get(p.zone as usize).copied().flatten() {
                Some((g, m)) => Route::Local { g, m },
                None => match owners.get(&p.zone) {
                    Some(w) if *w != self.id => Route::Remote {
                        w: *w as u16,
                        zone: p.zone,
                    },
                    _ => Route::Nowhere,
                },
            };
            self.routes.push(r);
        }
        for s in self.groups.iter_mut().flatten() {
            s.idx = s
                .zones
                .iter()
                .map(|z| self.dp.port_index_by_zone(*z))
                .collect();
        }
    }

    fn commands(&mut self) {
        let mut changed = false;
        while let Ok(c) = self.cmds.try_recv() {
            changed = true;
            match c {
                Cmd::Add {
                    zones,
                    names,
                    ports,
                } => {
                    let n = zones.len();
                    self.groups.push(Some(GroupSlot {
                        ports,
                        zones,
                        names,
                        idx: vec![None; n],
                    }));
                }
                Cmd::Query(q) => self.answer(q),
                Cmd::Remove { zone } => {
                    let found = self.groups.iter().enumerate().find_map(|(g, s)| {
                        let s = s.as_ref()?;
                        s.zones.iter().position(|z| *z == zone).map(|m| (g, m))
                    });
                    if let Some((g, m)) = found {
                        let s = self.groups[g].as_mut().expect("not being polled");
                        s.ports.flush();
                        let name = s.names.get(m).cloned().unwrap_or_default();
                        if s.ports.remove_member(m) {
                            s.zones.remove(m);
                            s.names.remove(m);
                            s.idx.remove(m);
                        } else {
                            // The last member takes the group (and its UMEM) with it.
                            self.groups.remove(g);
                        }
                        tracing::info!(port = %name, worker = self.id, zone, "port closed");
                    }
                }
            }
        }
        if changed {
            self.reroute();
        }
    }

    pub(super) fn run(mut self) -> WorkerSnapshot {
        let mut idle: u32 = 0;
        let start = self.shared.start;
        loop {
            if self.shared.stop.load(Ordering::Acquire) {
                break;
            }
            self.commands();
            // The published policy: compared through a cheap guard, cloned only on change.
            let changed = {
                let cur = self.shared.dp.load();
                cur.epoch != self.dp.epoch || self.routes.len() != cur.ports.len()
            };
            if changed {
                self.dp = self.shared.dp.load_full();
                self.reroute();
                tracing::debug!(worker = self.id, epoch = self.dp.epoch, "policy taken");
            }
            // One reference for this iteration (not one per frame).
            let dp = Arc::clone(&self.dp);
            self.shared.seen[self.id].store(self.dp.epoch, Ordering::Release);
            let now = start.elapsed().as_nanos() as u64;
            self.pipeline.housekeeping(now);
            while let Some(l) = self.shared.learned[self.id].pop() {
                self.pipeline.learn_remote(l, now);
            }
            let mut work = 0usize;
            self.engaged = self.shares.round(now, dp.ports.len());
            for g in 0..self.groups.len() {
                work += self.poll_group(&dp, g, now);
            }
            work += self.inbox(&dp, now);
            self.announce_learned();
            if self.pipeline.has_log_records() {
                let (q, full) = (
                    &self.shared.logs[self.id],
                    &mut self.counters.log_queue_full,
                );
                self.pipeline.take_log_records(|r| {
                    if q.push(*r).is_err() {
                        *full += 1;
                    }
                });
            }
            for s in self.groups.iter_mut().flatten() {
                s.ports.flush();
            }
            self.out.send_all(&self.shared.queues);
            if now >= self.next_fault_poll {
                self.next_fault_poll = now + FAULT_POLL.as_nanos() as u64;
                self.pass_faults();
            }
            let gen = self.shared.snap_gen.load(Ordering::Acquire);
            if gen != self.snap_seen {
                self.snap_seen = gen;
                *lock(&self.shared.snapshots[self.id]) = self.snapshot();
                self.shared.snap_done[self.id].store(gen, Ordering::Release);
            }
            if work == 0 {
                self.counters.idle_polls += 1;
                idle = idle.saturating_add(1);
                if self.backoff && idle > 16 {
                    let us = (idle as u64 - 16).min(1000);
                    std::thread::sleep(Duration::from_micros(us));
                } else {
                    std::hint::spin_loop();
                }
            } else {
                self.counters.busy_polls += 1;
                idle = 0;
            }
        }
        for s in self.groups.iter_mut().flatten() {
            s.ports.flush();
        }
        let snap = self.snapshot();
        // The ports close when the worker (their owner) goes, right after this.
        for s in self.groups.iter().flatten() {
            for (name, zone) in s.names.iter().zip(&s.zones) {
                tracing::info!(port = %name, worker = self.id, zone, "port closed");
            }
        }
        snap
    }

    /// Pass every port's note that its netdev may be gone to the supervisor (a full
    /// queue loses the note: the supervisor's index check finds the device all the same).
    #[cold]
    fn pass_faults(&mut self) {
        for s in self.groups.iter_mut().flatten() {
            for (m, zone) in s.zones.iter().enumerate() {
                if let Some(errno) = s.ports.take_fault(m) {
                    let _ = self.shared.faults.push((*zone, errno));
                }
            }
        }
    }

    /// Tell the other workers the MACs this one learned.
    fn announce_learned(&mut self) {
        if self.nw < 2 {
            return;
        }
        let (id, learned) = (self.id, &self.shared.learned);
        self.pipeline.take_learned(|l| {
            for (w, q) in learned.iter().enumerate() {
                if w != id {
                    let _ = q.push(l);
                }
            }
        });
    }

    /// Receive a burst on every member of group `g` and run it through the pipeline.
    fn poll_group(&mut self, dp: &Dataplane, g: usize, now: u64) -> usize {
        let Some(mut slot) = self.groups.get_mut(g).and_then(Option::take) else {
            return 0;
        };
        let mut total = 0;
        let mut m = 0;
        let mut extra = 0;
        while m < slot.ports.len() {
            let zone = slot.zones[m];
            let in_port = slot.idx[m].unwrap_or(u16::MAX);
            // A saturated worker reads a port for at most its credit ([`super::share`]).
            let want = if self.engaged {
                self.shares.readable(in_port).min(self.burst)
            } else {
                self.burst
            };
            if want == 0 {
                // Out of its share of a saturated worker: its frames wait in its queue.
                self.counters.deferred_bursts += 1;
                self.shares.saturated(now);
                total += 1; // not idle
                (m, extra) = (m + 1, 0);
                continue;
            }
            let n = slot.ports.rx(m, want).min(MAX_BURST);
            if n == 0 {
                (m, extra) = (m + 1, 0);
                continue;
            }
            if n >= want {
                self.shares.saturated(now);
            }
            total += n;
            self.counters.bursts += 1;
            let mut frames: [&[u8]; MAX_BURST] = [&[]; MAX_BURST];
            for (k, f) in frames.iter_mut().enumerate().take(n) {
                *f = slot.ports.rx_frame(k);
            }
            pipeline::parse_burst(&frames[..n], &mut self.metas[..n]);
            // Steer: frames whose connection another worker owns go there; this worker's
            // are compacted to the front (`map` remembers where they were).
            let mut local = 0;
            for k in 0..n {
                if self.nw > 1 {
                    if let Some(w) = steer(&self.metas[k].1, self.metas[k].0, self.nw) {
                        if w != self.id {
                            let q = &self.shared.queues;
                            let off = slot.ports.rx_offload(k);
                            if off.is_none() {
                                self.out.process(q, w, zone, frames[k], &self.metas[k]);
                            } else {
                                // A handoff carries no metadata: the owner judges the
                                // segments (counted against the ingress port).
                                let out = &mut self.out;
                                let r = gso::resolve(frames[k], &off, &mut self.scratch, |f| {
                                    let mut meta = [(false, PacketMeta::default())];
                                    pipeline::parse_burst(&[f], &mut meta);
                                    out.process(q, w, zone, f, &meta[0]);
                                });
                                count_segments(&mut self.segmented, zone, r);
                            }
                            self.steered += 1;
                            continue;
                        }
                    }
                }
                if local != k {
                    frames[local] = frames[k];
                    self.metas.swap(local, k);
                }
                self.map[local] = k as u16;
                local += 1;
            }
            self.fates[..n].fill(0);
            let mut policed = 0;
            if local > 0 {
                // A full burst: the port has a backlog, so its new connections are bounded
                // (`[switch] new_flow_budget`).
                // (A quarter of what was asked for, in a round with the fair share.)
                let budget = self
                    .new_flows
                    .filter(|_| n >= want)
                    .map(|b| b.min((want as u32 / 4).max(1)));
                self.pipeline.set_new_flow_budget(budget);
                self.pipeline.process_parsed_burst(
                    dp,
                    in_port,
                    &frames[..local],
                    &self.metas[..local],
                    now,
                    &mut self.verdicts[..local],
                    &mut self.disp[..local],
                );
                self.pipeline.set_new_flow_budget(None);
                if let Some(max) = self.tunnel_max(dp) {
                    let (fr, sl) = (&frames[..local], &slot.ports);
                    let (map, v, d) = (&self.map, &mut self.verdicts[..local], &self.disp);
                    let off = |i: usize| !sl.rx_offload(map[i] as usize).is_none();
                    underlay::police(&mut self.pipeline, dp, in_port, fr, v, d, max, off);
                }
                if self.engaged {
                    policed = self.police(dp, zone, in_port, &frames[..local]);
                }
                if !self.captures.is_empty() {
                    self.capture(dp, in_port, &frames[..local], now);
                }
                let mut sinks = Sinks {
                    routes: &self.routes,
                    groups: &mut self.groups,
                    out: &mut self.out,
                    queues: &self.shared.queues,
                    scratch: &mut self.scratch,
                    segmented: &mut self.segmented,
                };
                for (i, frame) in frames.iter().enumerate().take(local) {
                    if self.disp[i] != Disposition::Decided {
                        continue;
                    }
                    let k = self.map[i] as usize;
                    let off = slot.ports.rx_offload(k);
                    for &q in &self.verdicts[i].delivered {
                        match sinks.routes.get(q as usize) {
                            Some(Route::Local { g: gg, m: mm }) if *gg as usize == g => {
                                self.fates[k] |= 1 << *mm;
                            }
                            _ => sinks.copy_offload_to(q, frame, off),
                        }
                    }
                }
                send_arp_replies(slot.ports.as_mut(), m, &self.verdicts[..local]);
            }
            slot.ports.rx_done(&self.fates[..n]);
            // A full burst mostly dropped by the share cost little: read the port again.
            if self.engaged && n >= want && 2 * policed >= n && extra < MAX_EXTRA_READS {
                extra += 1;
            } else {
                (m, extra) = (m + 1, 0);
            }
        }
        self.groups[g] = Some(slot);
        self.deliver_released(dp);
        total
    }

    /// The fair share of a saturated worker ([`super::share`]) over the `local` frames of a
    /// burst from `in_port` (zone `zone`) that the pipeline just judged: charge each
    /// delivered frame to the port that opened its connection (the receiving port for a
    /// reply), and drop it (`fair-share`) when that port is out of credit. Returns how many
    /// were dropped.
    #[cold]
    fn police(&mut self, dp: &Dataplane, zone: u16, in_port: u16, frames: &[&[u8]]) -> usize {
        let mut dropped = 0;
        for (i, frame) in frames.iter().enumerate() {
            let v = &mut self.verdicts[i];
            if self.disp[i] != Disposition::Decided || v.delivered.is_empty() {
                continue;
            }
            let (parsed, ref meta) = self.metas[i];
            let opener = match v.delivered[..] {
                [to] if parsed && self.pipeline.conntrack().is_reply(zone, meta) => to,
                _ => in_port,
            };
            if !self.shares.charge(opener, opener == in_port) {
                self.pipeline.shed_delivered(dp, in_port, v, frame.len());
                dropped += 1;
            }
        }
        dropped
    }

    /// The largest inner frame the underlay carries, when `dp` has tunnel ports and the
    /// switch an underlay (see [`underlay::police`]).
    #[inline]
    fn tunnel_max(&self, dp: &Dataplane) -> Option<usize> {
        if dp.tunnels.is_empty() {
            return None;
        }
        let max = self.shared.tunnel_max.as_ref()?;
        Some(max.load(Ordering::Relaxed))
    }

    /// Batches other workers handed over.
    fn inbox(&mut self, dp: &Dataplane, now: u64) -> usize {
        if self.nw < 2 {
            return 0;
        }
        let mut n = 0;
        while n < self.burst * 4 {
            let Some(b) = self.shared.queues.inboxes[self.id].pop() else {
                break;
            };
            let len = b.frames.len();
            n += len.max(1);
            let mut frames: [&[u8]; HANDOFF] = [&[]; HANDOFF];
            for (k, f) in frames.iter_mut().enumerate().take(len) {
                *f = b.frames.get(k).unwrap_or(&[]);
            }
            match b.kind {
                Kind::Process => {
                    // Runs of frames from one ingress port, each one burst.
                    let mut a = 0;
                    while a < len {
                        let zone = b.zones[a];
                        let e = (a..len).find(|&e| b.zones[e] != zone).unwrap_or(len);
                        let in_port = dp.port_index_by_zone(zone).unwrap_or(u16::MAX);
                        self.pipeline.process_parsed_burst(
                            dp,
                            in_port,
                            &frames[a..e],
                            &b.metas[a..e],
                            now,
                            &mut self.verdicts[..e - a],
                            &mut self.disp[..e - a],
                        );
                        if let Some(max) = self.tunnel_max(dp) {
                            let (fr, v) = (&frames[a..e], &mut self.verdicts[..e - a]);
                            let d = &self.disp[..e - a];
                            underlay::police(
                                &mut self.pipeline,
                                dp,
                                in_port,
                                fr,
                                v,
                                d,
                                max,
                                |_| false,
                            );
                        }
                        if !self.captures.is_empty() {
                            self.capture(dp, in_port, &frames[a..e], now);
                        }
                        let mut sinks = Sinks {
                            routes: &self.routes,
                            groups: &mut self.groups,
                            out: &mut self.out,
                            queues: &self.shared.queues,
                            scratch: &mut self.scratch,
                            segmented: &mut self.segmented,
                        };
                        for i in 0..e - a {
                            if self.disp[i] == Disposition::Decided {
                                for &q in &self.verdicts[i].delivered {
                                    sinks.copy_to(q, frames[a + i]);
                                }
                            }
                        }
                        a = e;
                    }
                }
                Kind::Tx => {
                    for (k, f) in frames.iter().enumerate().take(len) {
                        let at = self.by_zone.get(b.zones[k] as usize).copied().flatten();
                        if let Some((g, m)) = at {
                            if let Some(Some(s)) = self.groups.get_mut(g as usize) {
                                s.ports.tx_copy(m as usize, f);
                            }
                        }
                    }
                }
            }
            self.shared.queues.recycle(b);
            self.deliver_released(dp);
        }
        n
    }

    /// Deliver the held frames (fragments) whose verdict is now known.
    fn deliver_released(&mut self, dp: &Dataplane) {
        if !self.pipeline.has_released() {
            return;
        }
        let mut sinks = Sinks {
            routes: &self.routes,
            groups: &mut self.groups,
            out: &mut self.out,
            queues: &self.shared.queues,
            scratch: &mut self.scratch,
            segmented: &mut self.segmented,
        };
        self.pipeline.drain_released(dp, |_, _, frame, v| {
            for &q in &v.delivered {
                sinks.copy_to(q, frame);
            }
        });
    }

    /// Answer a question of the control side (between two bursts).
    fn answer(&mut self, q: Query) {
        let ct = self.pipeline.conntrack();
        match q {
            Query::Conntrack { zone, reply } => {
                let v: Vec<_> = ct
                    .iter()
                    .filter(|e| zone.is_none_or(|z| e.zone == z))
                    .collect();
                let _ = reply.send(v);
            }
            Query::Flush { zone, reply } => {
                let _ = reply.send(self.pipeline.conntrack_flush(zone));
            }
            Query::Lookup { zones, meta, reply } => {
                let v = zones
                    .iter()
                    .filter_map(|z| ct.lookup(*z, &meta).map(|(e, _)| e))
                    .collect();
                let _ = reply.send(v);
            }
            Query::Capture { ring, on } => {
                self.captures.retain(|(r, _)| !Arc::ptr_eq(r, &ring));
                if let Some(spec) = on {
                    self.captures.push((ring, spec));
                }
            }
        }
    }

    /// Copy the frames of a just-processed burst that concern a captured port (their
    /// verdicts are in `self.verdicts`, their dispositions in `self.disp`).
    #[cold]
    #[inline(never)]
    fn capture(&self, dp: &Dataplane, in_port: u16, frames: &[&[u8]], now: u64) {
        let zone_of = |i: u16| dp.ports.get(i as usize).map(|p| p.zone);
        let in_zone = zone_of(in_port);
        for (i, frame) in frames.iter().enumerate() {
            if self.disp[i] != Disposition::Decided {
                continue;
            }
            let v = &self.verdicts[i];
            for (ring, spec) in &self.captures {
                for &(p, r) in &v.dropped {
                    if zone_of(p) == Some(spec.zone) {
                        ring.put(now, CaptureDir::Dropped(r), frame);
                    }
                }
                if spec.dropped_only {
                    continue;
                }
                if in_zone == Some(spec.zone) {
                    ring.put(now, CaptureDir::Rx, frame);
                    // The ARP responder's answer goes back out of the in port: shown as
                    // that port's tx, the bytes `send_arp_replies` writes.
                    if let Some(r) = v.reply {
                        let mut buf = [0u8; pipeline::ARP_REPLY_LEN];
                        if let Some(len) = r.write(&mut buf) {
                            ring.put(now, CaptureDir::Tx, &buf[..len]);
                        }
                    }
                }
                if v.delivered.iter().any(|&q| zone_of(q) == Some(spec.zone)) {
                    ring.put(now, CaptureDir::Tx, frame);
                }
            }
        }
    }

    fn snapshot(&self) -> WorkerSnapshot {
        let groups = || self.groups.iter().flatten();
        let ct = self.pipeline.conntrack();
        let mut counters = self.counters;
        counters.steered = self.steered;
        counters.inbox_full = self.out.dropped;
        counters.moved = groups().map(|s| s.ports.moved()).sum();
        counters.conntrack_entries = ct.len();
        counters.conntrack_capacity = ct.capacity();
        counters.conntrack = ct.stats();
        counters.fragment_datagrams = self.pipeline.fragment_datagrams();
        counters.fragments_held = self.pipeline.held();
        counters.fragments = self.pipeline.fragment_stats();
        counters.log = self.pipeline.log_counters();
        WorkerSnapshot {
            worker: counters,
            rule_hits: self.pipeline.rule_hits().to_vec(),
            counters: self.pipeline.counters().to_vec(),
            io: groups()
                .flat_map(|s| {
                    s.zones
                        .iter()
                        .enumerate()
                        .map(|(m, z)| (*z, s.ports.stats(m)))
                })
                .chain(
                    self.segmented
                        .iter()
                        .enumerate()
                        .filter(|(_, n)| **n > 0)
                        .map(|(z, n)| {
                            let st = PortStats {
                                gso_segmented: *n,
                                ..PortStats::default()
                            };
                            (z as u16, st)
                        }),
                )
                .collect(),
        }
    }
}

/// Send the ARP replies the pipeline's responder generated for a burst from member `m`
/// (`verdicts`, #19: `pipeline::ArpTable`) back out of `m`, each written into a buffer on
/// the stack (no allocation). Only ARP requests carry a reply; they are never steered to
/// another worker or held, so the ingress port is always this group's member `m`.
fn send_arp_replies(ports: &mut dyn PortGroup, m: usize, verdicts: &[Verdict]) {
    for r in verdicts.iter().filter_map(|v| v.reply) {
        let mut buf = [0u8; pipeline::ARP_REPLY_LEN];
        if let Some(len) = r.write(&mut buf) {
            ports.tx_copy(m, &buf[..len]);
        }
    }
}

/// The worker owning a frame's connection state: a symmetric hash (the same for both
/// directions) of
/// * for TCP that is not a fragment, the address pair and the port pair, so that one
///   instance's TCP connections to one peer spread over the workers (#16: with a
///   multiqueue tap each worker serves the instance's connections the kernel puts on its
///   queue, and tun's flow table keeps a connection on the queue its owner transmits on);
/// * for an ICMP error (`icmp_inner`), the quoted packet's connection as its own frames
///   are steered (address and port pairs for TCP, the address pair otherwise): the error
///   meets the connection's owner (conntrack's RELATED), also when a router sent it (its
///   outer addresses are not the connection's);
/// * for everything else IP, and every fragment, the address pair (every fragment of a
///   datagram meets the same fragment table). A TCP segment fragmented by IP is the one
///   case where a connection's frames meet two workers: its fragments are judged without
///   the connection's entry (TCP sets DF and sizes segments to the path MTU, so an L2
///   port practically never sees one).
///
/// `None` for frames that did not parse and non-IP frames (ARP and other non-IP frames
/// carry no connection state: they are processed where they arrive).
#[inline]
pub(super) fn steer(m: &PacketMeta, parsed: bool, nw: usize) -> Option<usize> {
    const TCP: u8 = 6;
    if !parsed || !m.is_ip() {
        return None;
    }
    let (k, ports) = if m.icmp_inner.family != 0 {
        (&m.icmp_inner, m.icmp_inner.proto == TCP)
    } else {
        (&m.key, m.key.proto == TCP && !m.frag.is_fragment)
    };
    let ((a, pa), (b, pb)) = if (k.src, k.sport) <= (k.dst, k.dport) {
        ((k.src, k.sport), (k.dst, k.dport))
    } else {
        ((k.dst, k.dport), (k.src, k.sport))
    };
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut mix = |x: u8| {
        h ^= x as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    a.iter().chain(b.iter()).for_each(|x| mix(*x));
    if ports {
        pa.to_be_bytes()
            .iter()
            .chain(pb.to_be_bytes().iter())
            .for_each(|x| mix(*x));
        // FNV's low bits are the parity of the bytes mixed in, and Linux gives connect()
        // even ports first: without folding the high bits in, `% 2` would put every
        // connection of a pair on one worker.
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
    }
    Some((h % nw as u64) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steering_is_symmetric_and_ignores_non_ip() {
        let mut m = PacketMeta {
            l3: crate::flow::L3Kind::Ipv4,
            ..Default::default()
        };
        m.key.family = 4;
        m.key.src[12..16].copy_from_slice(&[10, 0, 0, 1]);
        m.key.dst[12..16].copy_from_slice(&[10, 0, 0, 2]);
        let fwd = steer(&m, true, 2);
        std::mem::swap(&mut m.key.src, &mut m.key.dst);
        assert_eq!(steer(&m, true, 2), fwd);
        assert!(fwd.is_some_and(|w| w < 2));
        assert_eq!(steer(&m, false, 2), None, "did not parse");
        m.l3 = crate::flow::L3Kind::Arp;
        assert_eq!(steer(&m, true, 2), None, "ARP stays where it arrives");
    }

    #[test]
    fn tcp_steers_by_connection_symmetrically_icmp_errors_follow_it() {
        let mut m = PacketMeta {
            l3: crate::flow::L3Kind::Ipv4,
            ..Default::default()
        };
        m.key.family = 4;
        m.key.proto = 6;
        m.key.src[12..16].copy_from_slice(&[10, 0, 0, 1]);
        m.key.dst[12..16].copy_from_slice(&[10, 0, 0, 2]);
        m.key.dport = 5201;
        let nw = 4;
        let mut seen = [false; 4];
        let mut even = [0usize; 2];
        for sport in (40000..40128).step_by(2) {
            m.key.sport = sport;
            even[steer(&m, true, 2).unwrap()] += 1;
        }
        assert!(
            even.iter().all(|n| *n > 16),
            "even source ports (Linux's connect()) spread over two workers: {even:?}"
        );
        for sport in 40000..40064 {
            m.key.sport = sport;
            let fwd = steer(&m, true, nw).unwrap();
            seen[fwd] = true;
            let mut r = m;
            std::mem::swap(&mut r.key.src, &mut r.key.dst);
            std::mem::swap(&mut r.key.sport, &mut r.key.dport);
            assert_eq!(steer(&r, true, nw), Some(fwd), "both directions of {sport}");
            // An ICMP error about the connection, from a router (outer addresses differ).
            let e = router_error_quoting(&m);
            assert_eq!(steer(&e, true, nw), Some(fwd), "ICMP error for {sport}");
        }
        assert!(
            seen.iter().all(|s| *s),
            "64 connections of one pair reach every worker"
        );
        // Fragments and UDP: the address pair only (the hash without ports).
        let mut f = m;
        f.frag.is_fragment = true;
        let mut u = m;
        u.key.proto = 17;
        let mut pair = m;
        pair.key.proto = 17;
        pair.key.sport = 0;
        pair.key.dport = 0;
        assert_eq!(steer(&f, true, nw), steer(&pair, true, nw));
        assert_eq!(steer(&u, true, nw), steer(&pair, true, nw));
        // An ICMP error from a router quoting UDP follows the UDP flow's address pair.
        for last in 0..32u8 {
            let mut flow = u;
            flow.key.dst[15] = last;
            let e = router_error_quoting(&flow);
            assert_eq!(
                steer(&e, true, nw),
                steer(&flow, true, nw),
                "UDP error {last}"
            );
        }
    }

    /// An ICMPv4 error from a router (192.0.2.1) to 10.0.0.1 quoting `m`'s packet.
    fn router_error_quoting(m: &PacketMeta) -> PacketMeta {
        let mut e = PacketMeta {
            l3: crate::flow::L3Kind::Ipv4,
            ..Default::default()
        };
        e.key.family = 4;
        e.key.proto = 1;
        e.key.src[12..16].copy_from_slice(&[192, 0, 2, 1]);
        e.key.dst[12..16].copy_from_slice(&[10, 0, 0, 1]);
        e.icmp_inner = m.key;
        e
    }
}
