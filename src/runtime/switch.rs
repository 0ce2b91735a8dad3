//! The live switch: pinned polling workers that move bursts of frames between ports and
//! the pipeline, run to completion.
//!
//! # Threads and ownership
//! * Every port is owned by exactly one worker, which does all of its receiving and
//!   transmitting. A worker also owns a [`Pipeline`] (its conntrack shard, learned MACs,
//!   fragment state and counters). Nothing on the packet path takes a lock.
//! * With several workers, both directions of a connection must meet the same
//!   connection-tracking state. Each IP frame is steered by a *symmetric* hash of its
//!   address pair to an owning worker (the same for both directions and for every
//!   fragment); a frame received by another worker is handed over through the owner's
//!   lock-free inbox (`crossbeam_queue::ArrayQueue`). Frames to a port owned by another
//!   worker go through that worker's inbox too. Buffers come from per-worker pools and go
//!   back to them, so steady state allocates nothing. Non-IP frames (ARP) carry no state
//!   and are processed where they arrive. With one worker (the default) nothing is steered.
//! * The compiled policy ([`Dataplane`]) is published through one atomic pointer
//!   (`arc-swap`); a worker loads it once per loop iteration and records the epoch it
//!   saw, so [`Switch::apply`] returns only when every worker uses the new policy.
//!
//! # Rejected options
//! * A lock around each conntrack zone: contention and a lock per packet.
//! * Per-port conntrack zones owned by the ports' workers with a two-stage pipeline (egress
//!   where the frame arrives, ingress where it leaves): correct too, but it splits the
//!   per-frame verdict across threads and complicates fragments; flow steering keeps the
//!   pipeline whole.
//! * Learned MACs are per worker: a MAC learned by one worker is unknown to another, which
//!   floods until it learns it too (correct, slightly more flooding).

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use crossbeam_queue::ArrayQueue;

use crate::flow::{self, DropReason};
use crate::pipeline::{Dataplane, Pipeline, PipelineConfig, PortCounters, Verdict, ZoneMap};
use crate::policy::{Backend, Model};
use crate::port::afxdp::{DescBatch, GroupConfig, MemberConfig, UmemGroup};
use crate::port::napi::NapiDefer;
use crate::port::xdp::XdpMode;
use crate::port::{self, FrameBatch, Port, PortError, PortStats};

/// Runtime settings of a live switch.
#[derive(Clone, Debug)]
pub struct SwitchSettings {
    pub workers: usize,
    pub burst: usize,
    /// Idle workers sleep (up to 1 ms) instead of spinning.
    pub idle_backoff: bool,
    /// CPU cores to pin workers to (worker i → cores[i % len]); empty = cores 0, 1, ...
    pub cores: Vec<usize>,
    /// Do not pin (tests, shared machines).
    pub no_pin: bool,
    /// A worker's AF_XDP ports share one UMEM and forward by moving descriptors.
    pub shared_umem: bool,
    /// NAPI moderation (µs) of the netdevs under AF_XDP and AF_PACKET ports while they
    /// are open (default 100); 0 leaves the devices alone. See [`crate::port::napi`].
    pub napi_defer_us: u32,
}

impl Default for SwitchSettings {
    fn default() -> Self {
        SwitchSettings {
            workers: 1,
            burst: 32,
            idle_backoff: true,
            cores: Vec::new(),
            no_pin: false,
            shared_umem: true,
            napi_defer_us: crate::port::napi::DEFAULT_DEFER_US,
        }
    }
}

/// Errors of the live switch.
#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    #[error("port {port}: {source}")]
    Port {
        port: String,
        #[source]
        source: PortError,
    },
    #[error("cannot start worker thread: {0}")]
    Thread(io::Error),
    #[error("the dataplane did not take the new policy within {0:?}")]
    Timeout(Duration),
}

const INBOX: usize = 4096;
const POOL: usize = 4096;
const BUF: usize = 2048;

enum Msg {
    /// A frame received on port `zone`, steered to this worker for processing.
    Process {
        zone: u16,
        buf: Vec<u8>,
        origin: u16,
    },
    /// A frame to transmit on port `zone` (owned by this worker).
    Tx {
        zone: u16,
        buf: Vec<u8>,
        origin: u16,
    },
}

enum Cmd {
    AddPort { zone: u16, port: Box<dyn Port> },
    AddGroup { zones: Vec<u16>, group: UmemGroup },
    RemovePort { zone: u16 },
}

/// Statistics of a running switch.
#[derive(Clone, Debug, Default)]
pub struct SwitchReport {
    pub ports: Vec<PortReport>,
    /// Frames handed to another worker for processing (flow steering).
    pub steered: u64,
    /// Frames dropped because another worker's inbox was full.
    pub inbox_full: u64,
    /// Per worker: (frames received by the pipeline, delivered, dropped, steered away).
    pub workers: Vec<WorkerLine>,
}

/// One worker's totals.
#[derive(Clone, Copy, Debug, Default)]
pub struct WorkerLine {
    pub rx: u64,
    pub tx: u64,
    pub dropped: u64,
    pub steered: u64,
    /// Frames forwarded between AF_XDP ports by moving their descriptor (no copy).
    pub moved: u64,
    pub conntrack_entries: usize,
}

/// Per-port statistics of a running switch.
#[derive(Clone, Debug, Default)]
pub struct PortReport {
    pub name: String,
    pub counters: PortCounters,
    pub io: PortStats,
}

#[derive(Default)]
struct WorkerSnapshot {
    conntrack_entries: usize,
    moved: u64,
    counters: Vec<PortCounters>,
    io: Vec<(u16, PortStats)>,
    steered: u64,
    inbox_full: u64,
}

struct Shared {
    dp: ArcSwap<Dataplane>,
    seen: Vec<AtomicU64>,
    stop: AtomicBool,
    snap_gen: AtomicU64,
    snap_done: Vec<AtomicU64>,
    snapshots: Vec<Mutex<WorkerSnapshot>>,
    inboxes: Vec<ArrayQueue<Msg>>,
    pools: Vec<ArrayQueue<Vec<u8>>>,
    /// zone → owning worker (read by workers only when the epoch changes).
    owners: Mutex<HashMap<u16, usize>>,
}

struct ControlState {
    zones: ZoneMap,
    epoch: u64,
    /// name → (zone, worker, backend) of every open port.
    open: HashMap<String, (u16, usize, Backend)>,
    /// netdev → its NAPI moderation while some open port uses it (restored when the
    /// entry goes).
    napi: HashMap<String, NapiDefer>,
    napi_defer_us: u32,
}

/// A running switch.
pub struct Switch {
    shared: Arc<Shared>,
    cmds: Vec<Sender<Cmd>>,
    workers: Mutex<Vec<JoinHandle<WorkerSnapshot>>>,
    control: Mutex<ControlState>,
}

/// How long [`Switch::apply`] waits for every worker to take a new policy.
pub const APPLY_TIMEOUT: Duration = Duration::from_secs(5);

enum Opened {
    Port(String, Backend, Box<dyn Port>),
    Group(Vec<(String, Backend)>, UmemGroup),
}

/// Open AF_XDP ports as one group sharing a UMEM.
fn open_group(ports: &[&(String, Backend)]) -> Result<Opened, SwitchError> {
    let mut members = Vec::new();
    for (name, b) in ports {
        if let Backend::AfXdp {
            ifname,
            queue,
            mode,
        } = b
        {
            let mut m = MemberConfig::new(ifname);
            m.queue = *queue;
            m.xdp_mode = match mode.as_deref() {
                None => XdpMode::Auto,
                Some(x) => XdpMode::parse(x).ok_or_else(|| SwitchError::Port {
                    port: name.clone(),
                    source: PortError::Config(format!(
                        "{ifname}: unknown XDP mode {x:?} (auto, native, generic)"
                    )),
                })?,
            };
            members.push(m);
        }
    }
    let names: Vec<&str> = ports.iter().map(|(n, _)| n.as_str()).collect();
    let group =
        UmemGroup::open(&members, &GroupConfig::default()).map_err(|source| SwitchError::Port {
            port: names.join(", "),
            source,
        })?;
    Ok(Opened::Group(
        ports.iter().map(|(n, b)| (n.clone(), b.clone())).collect(),
        group,
    ))
}

/// The kernel netdev under an AF_XDP or AF_PACKET port.
fn netdev_of(b: &Backend) -> Option<&str> {
    match b {
        Backend::AfXdp { ifname, .. } | Backend::AfPacket { ifname } => Some(ifname),
        Backend::Tap { .. } => None,
    }
}

/// Moderate the netdevs under `ports` (AF_XDP and AF_PACKET; a tap's receive work is the
/// writer's system call, there is no NAPI to moderate) that `have` does not moderate yet,
/// one guard per netdev. On an error the guards made so far are dropped (devices
/// restored) and nothing else changed.
fn tune_netdevs<'a>(
    ports: impl Iterator<Item = (&'a str, &'a Backend)>,
    have: &HashMap<String, NapiDefer>,
    us: u32,
) -> Result<HashMap<String, NapiDefer>, SwitchError> {
    let mut new = HashMap::new();
    if us == 0 {
        return Ok(new);
    }
    for (name, b) in ports {
        let Some(ifname) = netdev_of(b) else { continue };
        if have.contains_key(ifname) || new.contains_key(ifname) {
            continue;
        }
        let g = NapiDefer::apply(ifname, us).map_err(|source| SwitchError::Port {
            port: name.to_string(),
            source,
        })?;
        new.insert(ifname.to_string(), g);
    }
    Ok(new)
}

fn open_port(name: &str, b: &Backend) -> Result<Box<dyn Port>, SwitchError> {
    port::open_backend(b).map_err(|source| SwitchError::Port {
        port: name.to_string(),
        source,
    })
}

impl Switch {
    /// Open every port of `model` that has a backend and start the workers. On error
    /// nothing stays open or attached.
    pub fn start(model: &Model, settings: &SwitchSettings) -> Result<Switch, SwitchError> {
        let nw = settings.workers.max(1);
        let mut zones = ZoneMap::default();
        let dp = Dataplane::compile(model, 1, &mut zones);
        // Assign ports to workers (round robin), then open them: a worker's AF_XDP ports
        // share one UMEM so that frames move between them by descriptor, without a copy.
        // An error drops (closes, detaches) everything already open.
        let with_backend: Vec<(String, Backend)> = model
            .ports
            .iter()
            .filter_map(|p| p.backend.clone().map(|b| (p.name.clone(), b)))
            .collect();
        let napi = tune_netdevs(
            with_backend.iter().map(|(n, b)| (n.as_str(), b)),
            &HashMap::new(),
            settings.napi_defer_us,
        )?;
        let mut opened: Vec<(usize, Opened)> = Vec::new();
        for w in 0..nw {
            let mine: Vec<&(String, Backend)> = with_backend
                .iter()
                .enumerate()
                .filter(|(i, _)| i % nw == w)
                .map(|(_, x)| x)
                .collect();
            let xdp: Vec<&(String, Backend)> = mine
                .iter()
                .copied()
                .filter(|(_, b)| matches!(b, Backend::AfXdp { .. }))
                .collect();
            let grouped = xdp.len() >= 2 && settings.shared_umem;
            if grouped {
                opened.push((w, open_group(&xdp)?));
            }
            for (name, b) in mine {
                if grouped && matches!(b, Backend::AfXdp { .. }) {
                    continue;
                }
                opened.push((
                    w,
                    Opened::Port(name.clone(), b.clone(), open_port(name, b)?),
                ));
            }
        }
        let shared = Arc::new(Shared {
            dp: ArcSwap::from_pointee(dp),
            seen: (0..nw).map(|_| AtomicU64::new(0)).collect(),
            stop: AtomicBool::new(false),
            snap_gen: AtomicU64::new(0),
            snap_done: (0..nw).map(|_| AtomicU64::new(0)).collect(),
            snapshots: (0..nw)
                .map(|_| Mutex::new(WorkerSnapshot::default()))
                .collect(),
            inboxes: (0..nw).map(|_| ArrayQueue::new(INBOX)).collect(),
            pools: (0..nw).map(|_| ArrayQueue::new(POOL)).collect(),
            owners: Mutex::new(HashMap::new()),
        });
        let pcfg = PipelineConfig::from_model(model);
        let mut cmds = Vec::new();
        let mut rxs = Vec::new();
        for _ in 0..nw {
            let (tx, rx) = mpsc::channel();
            cmds.push(tx);
            rxs.push(rx);
        }
        let mut open = HashMap::new();
        for (w, o) in opened {
            match o {
                Opened::Port(name, b, port) => {
                    let zone = zones.zone(&name);
                    lock(&shared.owners).insert(zone, w);
                    let _ = cmds[w].send(Cmd::AddPort { zone, port });
                    open.insert(name, (zone, w, b));
                }
                Opened::Group(members, group) => {
                    let mut gz = Vec::new();
                    for (name, b) in members {
                        let zone = zones.zone(&name);
                        lock(&shared.owners).insert(zone, w);
                        open.insert(name, (zone, w, b));
                        gz.push(zone);
                    }
                    let _ = cmds[w].send(Cmd::AddGroup { zones: gz, group });
                }
            }
        }
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let mut workers = Vec::new();
        for (w, rx) in rxs.into_iter().enumerate() {
            let shared2 = shared.clone();
            let pcfg2 = pcfg.clone();
            let core = if settings.no_pin || cores.is_empty() {
                None
            } else if settings.cores.is_empty() {
                Some(cores[w % cores.len()])
            } else {
                let want = settings.cores[w % settings.cores.len()];
                cores.iter().find(|c| c.id == want).copied()
            };
            let burst = settings.burst.clamp(1, port::MAX_BURST);
            let backoff = settings.idle_backoff;
            let h = std::thread::Builder::new()
                .name(format!("sgs-worker-{w}"))
                .spawn(move || {
                    if let Some(c) = core {
                        core_affinity::set_for_current(c);
                    }
                    Worker::new(w, nw, shared2, rx, &pcfg2, burst, backoff).run()
                })
                .map_err(SwitchError::Thread)?;
            workers.push(h);
        }
        let sw = Switch {
            shared,
            cmds,
            workers: Mutex::new(workers),
            control: Mutex::new(ControlState {
                zones,
                epoch: 1,
                open,
                napi,
                napi_defer_us: settings.napi_defer_us,
            }),
        };
        sw.wait_epoch(1, APPLY_TIMEOUT)?;
        Ok(sw)
    }

    fn wait_epoch(&self, epoch: u64, timeout: Duration) -> Result<(), SwitchError> {
        let t = Instant::now();
        while self
            .shared
            .seen
            .iter()
            .any(|s| s.load(Ordering::Acquire) < epoch)
        {
            if t.elapsed() > timeout {
                return Err(SwitchError::Timeout(timeout));
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        Ok(())
    }

    /// The policy epoch in force.
    pub fn epoch(&self) -> u64 {
        self.shared.dp.load().epoch
    }

    /// Replace the whole model: open new ports, compile and publish the new policy, wait
    /// until every worker uses it, then close the ports that are gone. Validation is the
    /// caller's (the model must be valid). On a port-open error nothing changes.
    /// Returns the new epoch.
    pub fn apply(&self, model: &Model) -> Result<u64, SwitchError> {
        let mut st = lock(&self.control);
        // 1. Ports to add (new, or backend changed) — open them before anything changes.
        let mut added = Vec::new();
        for p in &model.ports {
            let Some(b) = &p.backend else { continue };
            match st.open.get(&p.name) {
                Some((_, _, old)) if old == b => {}
                _ => added.push((p.name.clone(), b.clone(), open_port(&p.name, b)?)),
            }
        }
        let with_backend = || {
            model
                .ports
                .iter()
                .filter_map(|p| p.backend.as_ref().map(|b| (p.name.as_str(), b)))
        };
        // Netdevs new to the switch; one that stays in use keeps its guard (which holds
        // the device's original values).
        let tuned = tune_netdevs(with_backend(), &st.napi, st.napi_defer_us)?;
        let removed: Vec<String> = st
            .open
            .iter()
            .filter(|(name, (_, _, b))| {
                !model
                    .ports
                    .iter()
                    .any(|p| &p.name == *name && p.backend.as_ref() == Some(b))
            })
            .map(|(n, _)| n.clone())
            .collect();
        // 2. Retire ports that are gone or replaced.
        for name in &removed {
            if let Some((zone, w, _)) = st.open.remove(name) {
                let _ = self.cmds[w].send(Cmd::RemovePort { zone });
                lock(&self.shared.owners).remove(&zone);
            }
        }
        st.napi
            .retain(|dev, _| with_backend().any(|(_, b)| netdev_of(b) == Some(dev.as_str())));
        st.napi.extend(tuned);
        // 3. Hand new ports to the least loaded workers.
        for (name, b, port) in added {
            let zone = st.zones.zone(&name);
            let mut load = vec![0usize; self.cmds.len()];
            for (_, w, _) in st.open.values() {
                load[*w] += 1;
            }
            let w = (0..load.len()).min_by_key(|i| load[*i]).unwrap_or(0);
            lock(&self.shared.owners).insert(zone, w);
            let _ = self.cmds[w].send(Cmd::AddPort { zone, port });
            st.open.insert(name, (zone, w, b));
        }
        // 4. Publish the new policy.
        st.epoch += 1;
        let epoch = st.epoch;
        let dp = Dataplane::compile(model, epoch, &mut st.zones);
        self.shared.dp.store(Arc::new(dp));
        drop(st);
        self.wait_epoch(epoch, APPLY_TIMEOUT)?;
        Ok(epoch)
    }

    /// Per-port counters summed over the workers (a consistent snapshot per worker).
    pub fn report(&self) -> SwitchReport {
        let gen = self.shared.snap_gen.fetch_add(1, Ordering::AcqRel) + 1;
        let t = Instant::now();
        while self
            .shared
            .snap_done
            .iter()
            .any(|d| d.load(Ordering::Acquire) < gen)
            && t.elapsed() < Duration::from_secs(1)
        {
            std::thread::sleep(Duration::from_micros(200));
        }
        let snaps: Vec<WorkerSnapshot> = self
            .shared
            .snapshots
            .iter()
            .map(|m| std::mem::take(&mut *lock(m)))
            .collect();
        self.merge(&snaps)
    }

    fn merge(&self, snaps: &[WorkerSnapshot]) -> SwitchReport {
        let names = lock(&self.control).zones.names();
        let mut out: Vec<PortReport> = names
            .iter()
            .map(|n| PortReport {
                name: n.clone(),
                ..Default::default()
            })
            .collect();
        let mut rep = SwitchReport::default();
        for s in snaps {
            rep.steered += s.steered;
            rep.inbox_full += s.inbox_full;
            rep.workers.push(WorkerLine {
                rx: s.counters.iter().map(|c| c.rx).sum(),
                tx: s.counters.iter().map(|c| c.tx).sum(),
                dropped: s.counters.iter().map(|c| c.dropped_total()).sum(),
                steered: s.steered,
                moved: s.moved,
                conntrack_entries: s.conntrack_entries,
            });
            for (z, c) in s.counters.iter().enumerate() {
                if let Some(r) = out.get_mut(z) {
                    r.counters.rx += c.rx;
                    r.counters.tx += c.tx;
                    for (a, b) in r.counters.dropped.iter_mut().zip(c.dropped.iter()) {
                        *a += b;
                    }
                }
            }
            for (z, io) in &s.io {
                if let Some(r) = out.get_mut(*z as usize) {
                    r.io.rx_packets += io.rx_packets;
                    r.io.rx_bytes += io.rx_bytes;
                    r.io.rx_dropped += io.rx_dropped;
                    r.io.tx_packets += io.tx_packets;
                    r.io.tx_bytes += io.tx_bytes;
                    r.io.tx_dropped += io.tx_dropped;
                }
            }
        }
        rep.ports = out;
        rep
    }

    /// Stop the workers, close every port (detaching XDP programs) and return the final
    /// counters.
    pub fn shutdown(&self) -> SwitchReport {
        self.shared.stop.store(true, Ordering::Release);
        let mut snaps = Vec::new();
        let workers = std::mem::take(&mut *lock(&self.workers));
        for h in workers {
            if let Ok(s) = h.join() {
                snaps.push(s);
            }
        }
        // The ports are closed: give their netdevs their own NAPI settings back.
        lock(&self.control).napi.clear();
        self.merge(&snaps)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Format counters as a table (for SIGUSR1 and exit).
pub fn format_report(report: &SwitchReport) -> String {
    let reports = &report.ports;
    let mut s = String::new();
    s.push_str(&format!(
        "{:<14} {:>10} {:>10} {:>10}  drops by reason\n",
        "port", "rx", "tx", "dropped"
    ));
    for r in reports {
        if r.name.is_empty() {
            continue;
        }
        let drops: Vec<String> = DropReason::ALL
            .iter()
            .filter(|d| r.counters.dropped[**d as usize] > 0)
            .map(|d| format!("{}={}", d.as_str(), r.counters.dropped[*d as usize]))
            .collect();
        s.push_str(&format!(
            "{:<14} {:>10} {:>10} {:>10}  {}\n",
            r.name,
            r.counters.rx,
            r.counters.tx,
            r.counters.dropped_total(),
            if drops.is_empty() {
                "-".to_string()
            } else {
                drops.join(" ")
            }
        ));
        if r.io.rx_dropped > 0 || r.io.tx_dropped > 0 {
            s.push_str(&format!(
                "{:<14} io: rx {} ({} dropped by the backend), tx {} ({} not sent)\n",
                "", r.io.rx_packets, r.io.rx_dropped, r.io.tx_packets, r.io.tx_dropped
            ));
        }
    }
    for (i, w) in report.workers.iter().enumerate() {
        s.push_str(&format!(
            "worker {i}: rx {} tx {} dropped {} steered-away {} moved-by-descriptor {} conntrack entries {}\n",
            w.rx, w.tx, w.dropped, w.steered, w.moved, w.conntrack_entries
        ));
    }
    if report.steered > 0 || report.inbox_full > 0 {
        s.push_str(&format!(
            "workers: {} frames steered to their flow's worker, {} dropped (inbox full)\n",
            report.steered, report.inbox_full
        ));
    }
    s
}

struct Slot {
    zone: u16,
    port: Box<dyn Port>,
    tx: FrameBatch,
    /// Index in the current dataplane (None: not in the policy).
    idx: Option<u16>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    Local(usize),
    /// Member `.1` of shared-UMEM group `.0` of this worker.
    Group(usize, usize),
    Remote(usize),
    Nowhere,
}

/// AF_XDP ports sharing one UMEM, owned by one worker.
struct GroupSlot {
    group: UmemGroup,
    zones: Vec<u16>,
    /// Dataplane index of each member.
    idx: Vec<Option<u16>>,
    rx: DescBatch,
    /// Descriptors to transmit per member (moved, not copied).
    tx: Vec<DescBatch>,
    /// Frames copied in from other ports, per member.
    copy_tx: Vec<FrameBatch>,
    /// Frames forwarded by moving their descriptor.
    moved: u64,
}

struct Worker {
    id: usize,
    nw: usize,
    shared: Arc<Shared>,
    cmds: Receiver<Cmd>,
    pipeline: Pipeline,
    slots: Vec<Slot>,
    groups: Vec<GroupSlot>,
    /// scratch for frames of a group delivered by copy
    copies: Vec<(usize, Vec<u8>)>,
    /// zone → slot
    by_zone: Vec<Option<usize>>,
    /// dataplane port index → route
    routes: Vec<Route>,
    dp: Arc<Dataplane>,
    rx: FrameBatch,
    burst: usize,
    backoff: bool,
    verdict: Verdict,
    verdicts: Vec<Verdict>,
    dispositions: Vec<crate::pipeline::Disposition>,
    steered: u64,
    inbox_full: u64,
    start: Instant,
    snap_seen: u64,
}

impl Worker {
    fn new(
        id: usize,
        nw: usize,
        shared: Arc<Shared>,
        cmds: Receiver<Cmd>,
        pcfg: &PipelineConfig,
        burst: usize,
        backoff: bool,
    ) -> Worker {
        for _ in 0..if nw > 1 { POOL / 2 } else { 0 } {
            let _ = shared.pools[id].push(Vec::with_capacity(BUF));
        }
        let dp = shared.dp.load_full();
        Worker {
            id,
            nw,
            cmds,
            pipeline: Pipeline::new(pcfg),
            slots: Vec::new(),
            groups: Vec::new(),
            copies: Vec::new(),
            by_zone: Vec::new(),
            routes: Vec::new(),
            dp,
            rx: FrameBatch::new(burst, port::DEFAULT_SLOT),
            burst,
            backoff,
            verdict: Verdict::default(),
            verdicts: Vec::new(),
            dispositions: Vec::new(),
            steered: 0,
            inbox_full: 0,
            start: Instant::now(),
            snap_seen: 0,
            shared,
        }
    }

    fn reroute(&mut self) {
        let owners = lock(&self.shared.owners).clone();
        self.routes.clear();
        for p in &self.dp.ports {
            let group = self
                .groups
                .iter()
                .enumerate()
                .find_map(|(g, gs)| gs.zones.iter().position(|z| *z == p.zone).map(|m| (g, m)));
            let r = match (self.by_zone.get(p.zone as usize).copied().flatten(), group) {
                (Some(s), _) => Route::Local(s),
                (None, Some((g, m))) => Route::Group(g, m),
                (None, None) => match owners.get(&p.zone) {
                    Some(w) if *w != self.id => Route::Remote(*w),
                    _ => Route::Nowhere,
                },
            };
            self.routes.push(r);
        }
        for s in &mut self.slots {
            s.idx = self.dp.port_index_by_zone(s.zone);
        }
        for gs in &mut self.groups {
            gs.idx = gs
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
                Cmd::AddPort { zone, port } => {
                    let slot = self.slots.len();
                    self.slots.push(Slot {
                        zone,
                        port,
                        tx: FrameBatch::new(self.burst.max(32), port::DEFAULT_SLOT),
                        idx: None,
                    });
                    if self.by_zone.len() <= zone as usize {
                        self.by_zone.resize(zone as usize + 1, None);
                    }
                    self.by_zone[zone as usize] = Some(slot);
                }
                Cmd::AddGroup { zones, group } => {
                    let n = zones.len();
                    self.groups.push(GroupSlot {
                        group,
                        idx: vec![None; n],
                        zones,
                        rx: DescBatch::default(),
                        tx: (0..n).map(|_| DescBatch::default()).collect(),
                        copy_tx: (0..n)
                            .map(|_| FrameBatch::new(self.burst.max(32), port::DEFAULT_SLOT))
                            .collect(),
                        moved: 0,
                    });
                }
                Cmd::RemovePort { zone } => {
                    // A member of a shared-UMEM group leaves it (XDP detached); the last
                    // member takes the group with it.
                    let member = self.groups.iter().enumerate().find_map(|(g, gs)| {
                        gs.zones.iter().position(|z| *z == zone).map(|m| (g, m))
                    });
                    if let Some((g, m)) = member {
                        let gs = &mut self.groups[g];
                        let mut pending = std::mem::take(&mut gs.tx[m]);
                        gs.group.release(&mut pending);
                        if gs.group.remove_member(m) {
                            gs.zones.remove(m);
                            gs.idx.remove(m);
                            gs.tx.remove(m);
                            gs.copy_tx.remove(m);
                        } else {
                            self.groups.remove(g);
                        }
                    }
                    if let Some(Some(s)) = self.by_zone.get(zone as usize).copied() {
                        self.by_zone[zone as usize] = None;
                        let last = self.slots.len() - 1;
                        self.slots.swap_remove(s);
                        if s != last {
                            let moved = self.slots[s].zone;
                            self.by_zone[moved as usize] = Some(s);
                        }
                    }
                }
            }
        }
        if changed {
            self.reroute();
        }
    }

    fn run(mut self) -> WorkerSnapshot {
        let mut idle: u32 = 0;
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
            }
            // One reference for this iteration (not one per frame).
            let dp = Arc::clone(&self.dp);
            self.shared.seen[self.id].store(self.dp.epoch, Ordering::Release);
            let now = self.start.elapsed().as_nanos() as u64;
            self.pipeline.housekeeping(now);
            let mut work = 0usize;
            for s in 0..self.slots.len() {
                self.rx.clear();
                let n = self.slots[s].port.rx_burst(&mut self.rx).unwrap_or(0);
                if n == 0 {
                    continue;
                }
                work += n;
                let rx = std::mem::take(&mut self.rx);
                let zone = self.slots[s].zone;
                let idx = self.slots[s].idx;
                if self.nw == 1 {
                    self.process_rx_burst(&dp, idx, &rx, now);
                    self.rx = rx;
                    continue;
                }
                for f in rx.iter() {
                    let owner = steer(f, self.nw, self.id);
                    if owner != self.id {
                        self.hand_over(owner, f, |buf, origin| Msg::Process { zone, buf, origin });
                        self.steered += 1;
                        continue;
                    }
                    self.process(&dp, idx, f, now);
                }
                self.rx = rx;
            }
            for g in 0..self.groups.len() {
                work += self.group_rx(&dp, g, now);
            }
            work += self.inbox(&dp, now);
            self.flush();
            let gen = self.shared.snap_gen.load(Ordering::Acquire);
            if gen != self.snap_seen {
                self.snap_seen = gen;
                *lock(&self.shared.snapshots[self.id]) = self.snapshot();
                self.shared.snap_done[self.id].store(gen, Ordering::Release);
            }
            if work == 0 {
                idle = idle.saturating_add(1);
                if self.backoff && idle > 16 {
                    let us = (idle as u64 - 16).min(1000);
                    std::thread::sleep(Duration::from_micros(us));
                } else {
                    std::hint::spin_loop();
                }
            } else {
                idle = 0;
            }
        }
        self.flush();
        self.snapshot()
    }

    fn snapshot(&self) -> WorkerSnapshot {
        WorkerSnapshot {
            conntrack_entries: self.pipeline.conntrack().len(),
            counters: self.pipeline.counters().to_vec(),
            io: self
                .slots
                .iter()
                .map(|s| (s.zone, s.port.stats()))
                .chain(self.groups.iter().flat_map(|g| {
                    g.zones
                        .iter()
                        .enumerate()
                        .map(|(m, z)| (*z, g.group.stats(m)))
                }))
                .collect(),
            moved: self.groups.iter().map(|g| g.moved).sum(),
            steered: self.steered,
            inbox_full: self.inbox_full,
        }
    }

    fn hand_over<F: FnOnce(Vec<u8>, u16) -> Msg>(&mut self, to: usize, f: &[u8], make: F) {
        let mut buf = self.shared.pools[self.id]
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(BUF));
        buf.clear();
        buf.extend_from_slice(f);
        if let Err(m) = self.shared.inboxes[to].push(make(buf, self.id as u16)) {
            self.inbox_full += 1;
            let (Msg::Process { buf, .. } | Msg::Tx { buf, .. }) = m;
            let _ = self.shared.pools[self.id].push(buf);
        }
    }

    fn inbox(&mut self, dp: &Dataplane, now: u64) -> usize {
        let mut n = 0;
        while n < self.burst * 4 {
            let Some(m) = self.shared.inboxes[self.id].pop() else {
                break;
            };
            n += 1;
            match m {
                Msg::Process { zone, buf, origin } => {
                    let idx = dp.port_index_by_zone(zone);
                    self.process(dp, idx, &buf, now);
                    let _ = self.shared.pools[origin as usize].push(buf);
                }
                Msg::Tx { zone, buf, origin } => {
                    if let Some(Some(s)) = self.by_zone.get(zone as usize).copied() {
                        self.tx_local(s, &buf);
                    }
                    let _ = self.shared.pools[origin as usize].push(buf);
                }
            }
        }
        n
    }

    fn process(&mut self, dp: &Dataplane, idx: Option<u16>, f: &[u8], now: u64) {
        let in_port = idx.unwrap_or(u16::MAX);
        let mut v = std::mem::take(&mut self.verdict);
        if self.pipeline.process(dp, in_port, f, now, 0, &mut v)
            == crate::pipeline::Disposition::Decided
        {
            self.deliver(&v, f);
        }
        self.verdict = v;
        self.deliver_released(dp);
    }

    /// Receive on every member of shared-UMEM group `g` by descriptor, run the pipeline on
    /// the frames in place, and forward a frame delivered to exactly one member of the same
    /// group by moving its descriptor to that member's TX ring (no copy). Other deliveries
    /// (floods, other ports) copy; dropped frames' descriptors go back to the free stack.
    fn group_rx(&mut self, dp: &Dataplane, g: usize, now: u64) -> usize {
        let mut total = 0;
        for m in 0..self.groups[g].zones.len() {
            let n = {
                let gs = &mut self.groups[g];
                gs.group.rx_descs(m, &mut gs.rx)
            };
            if n == 0 {
                continue;
            }
            total += n;
            let mut outs = std::mem::take(&mut self.verdicts);
            let mut disp = std::mem::take(&mut self.dispositions);
            if outs.len() < n {
                outs.resize(n, Verdict::default());
                disp.resize(n, crate::pipeline::Disposition::Decided);
            }
            {
                let gs = &self.groups[g];
                let mut slices: [&[u8]; port::MAX_BURST] = [&[]; port::MAX_BURST];
                for (dst, d) in slices.iter_mut().zip(gs.rx.as_slice()) {
                    *dst = gs.group.frame(d);
                }
                let idx = gs.idx[m].unwrap_or(u16::MAX);
                self.pipeline.process_burst(
                    dp,
                    idx,
                    &slices[..n],
                    now,
                    &mut outs[..n],
                    &mut disp[..n],
                );
            }
            // Move, copy or release each descriptor.
            let mut copies = std::mem::take(&mut self.copies);
            {
                let routes = &self.routes;
                let gs = &mut self.groups[g];
                let mut rx = std::mem::take(&mut gs.rx);
                for (k, d) in rx.drain().enumerate() {
                    let v = &outs[k];
                    let decided = disp[k] == crate::pipeline::Disposition::Decided;
                    if decided && v.delivered.len() == 1 {
                        if let Some(Route::Group(gg, mm)) = routes.get(v.delivered[0] as usize) {
                            if *gg == g {
                                if let Err(d) = gs.tx[*mm].push(d) {
                                    gs.group.release_one(d);
                                }
                                gs.moved += 1;
                                continue;
                            }
                        }
                    }
                    if decided && !v.delivered.is_empty() {
                        let mut buf = Vec::with_capacity(d.len());
                        buf.extend_from_slice(gs.group.frame(&d));
                        copies.push((k, buf));
                    }
                    gs.group.release_one(d);
                }
                gs.rx = rx;
                for mm in 0..gs.zones.len() {
                    if gs.tx[mm].len() >= 32 {
                        gs.group.tx_descs(mm, &mut gs.tx[mm]);
                    }
                }
            }
            for (k, buf) in copies.drain(..) {
                self.deliver(&outs[k], &buf);
            }
            self.copies = copies;
            self.verdicts = outs;
            self.dispositions = disp;
            self.deliver_released(dp);
        }
        total
    }

    /// One worker owns every port: process the burst in phases (prefetching conntrack).
    fn process_rx_burst(&mut self, dp: &Dataplane, idx: Option<u16>, rx: &FrameBatch, now: u64) {
        let mut slices: [&[u8]; port::MAX_BURST] = [&[]; port::MAX_BURST];
        let mut n = 0;
        for (dst, f) in slices.iter_mut().zip(rx.iter()) {
            *dst = f;
            n += 1;
        }
        let mut outs = std::mem::take(&mut self.verdicts);
        let mut disp = std::mem::take(&mut self.dispositions);
        if outs.len() < n {
            outs.resize(n, Verdict::default());
            disp.resize(n, crate::pipeline::Disposition::Decided);
        }
        self.pipeline.process_burst(
            dp,
            idx.unwrap_or(u16::MAX),
            &slices[..n],
            now,
            &mut outs[..n],
            &mut disp[..n],
        );
        for i in 0..n {
            if disp[i] == crate::pipeline::Disposition::Decided {
                self.deliver(&outs[i], slices[i]);
            }
        }
        self.verdicts = outs;
        self.dispositions = disp;
        self.deliver_released(dp);
    }

    /// Deliver the held frames (fragments) whose verdict is now known. Rare: the frames
    /// are copied out of the pipeline's pool.
    fn deliver_released(&mut self, dp: &Dataplane) {
        if !self.pipeline.has_released() {
            return;
        }
        let mut out: Vec<(Vec<u16>, Vec<u8>)> = Vec::new();
        self.pipeline.drain_released(dp, |_, _, frame, v| {
            out.push((v.delivered.clone(), frame.to_vec()));
        });
        for (dests, frame) in out {
            let v = Verdict {
                delivered: dests,
                dropped: Vec::new(),
            };
            self.deliver(&v, &frame);
        }
    }

    fn deliver(&mut self, v: &Verdict, f: &[u8]) {
        for &q in &v.delivered {
            match self
                .routes
                .get(q as usize)
                .copied()
                .unwrap_or(Route::Nowhere)
            {
                Route::Local(s) => self.tx_local(s, f),
                Route::Group(g, m) => {
                    let gs = &mut self.groups[g];
                    if !gs.copy_tx[m].push(f) {
                        if let Some(mut p) = gs.group.port(m) {
                            let _ = p.tx_batch(&gs.copy_tx[m]);
                        }
                        gs.copy_tx[m].clear();
                        let _ = gs.copy_tx[m].push(f);
                    }
                }
                Route::Remote(w) => {
                    let zone = self.dp.ports[q as usize].zone;
                    self.hand_over(w, f, |buf, origin| Msg::Tx { zone, buf, origin });
                }
                Route::Nowhere => {}
            }
        }
    }

    fn tx_local(&mut self, s: usize, f: &[u8]) {
        let slot = &mut self.slots[s];
        if !slot.tx.push(f) {
            let _ = slot.port.tx_batch(&slot.tx);
            slot.tx.clear();
            let _ = slot.tx.push(f);
        }
    }

    fn flush(&mut self) {
        for gs in &mut self.groups {
            for m in 0..gs.zones.len() {
                if !gs.copy_tx[m].is_empty() {
                    if let Some(mut p) = gs.group.port(m) {
                        let _ = p.tx_batch(&gs.copy_tx[m]);
                    }
                    gs.copy_tx[m].clear();
                }
                if !gs.tx[m].is_empty() {
                    gs.group.tx_descs(m, &mut gs.tx[m]);
                }
            }
        }
        for slot in &mut self.slots {
            if !slot.tx.is_empty() {
                let _ = slot.port.tx_batch(&slot.tx);
                slot.tx.clear();
            }
        }
    }
}

/// The worker owning a frame's connection state: a symmetric hash of the IP address pair
/// (the same for both directions and every fragment). Non-IP frames stay where they are.
fn steer(f: &[u8], nw: usize, me: usize) -> usize {
    let mut m = flow::PacketMeta::default();
    match flow::extract_into(f, &mut m) {
        Ok(()) if m.is_ip() => {
            let (a, b) = if m.key.src <= m.key.dst {
                (m.key.src, m.key.dst)
            } else {
                (m.key.dst, m.key.src)
            };
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for x in a.iter().chain(b.iter()) {
                h ^= *x as u64;
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            (h % nw as u64) as usize
        }
        _ => me,
    }
}
