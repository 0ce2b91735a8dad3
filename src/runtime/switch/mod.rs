//! The live switch: pinned polling workers that move bursts of frames between ports and
//! the pipeline, run to completion.
//!
//! # Threads and ownership
//! * Every port is owned by exactly one worker, which does all of its receiving and
//!   transmitting (except a multiqueue tap, `queues = N`: each of N workers drives one
//!   queue of it, receives there and transmits there what it delivers to the port; the
//!   other workers hand its frames to its owner, the worker of queue 0), through one
//!   interface for every backend ([`PortGroup`]): a worker's
//!   AF_XDP ports form one shared-UMEM group ([`UmemPorts`]: frames between them move by
//!   descriptor), any other port is a group of one ([`Single`]). A worker also owns a
//!   [`crate::pipeline::Pipeline`] (its conntrack shard, learned MACs, fragment state and counters).
//!   Nothing on the packet path takes a lock.
//! * One receive path for every worker count (`worker.rs`): a burst is parsed once; with
//!   several workers, both directions of a connection must meet the same conntrack state,
//!   so each IP frame is steered by a *symmetric* hash of its address pair (and, for TCP,
//!   its port pair: `worker::steer`) to an owning worker (the same for both directions
//!   and for every fragment) and handed over, in
//!   batches with its parsed metadata, through the owner's lock-free inbox (`handoff.rs`);
//!   frames to a port another worker drives go the same way. Local and handed-over frames
//!   run through the same `Pipeline::process_parsed_burst`. Non-IP frames (ARP) carry no
//!   connection state and are processed where they arrive.
//! * MACs learned on ports without port security are announced to every other worker
//!   (see [`crate::l2::LearnedFdb`]), so a frame to a learned MAC is forwarded the same way
//!   whichever worker processes it.
//! * The compiled policy ([`Dataplane`]) is published through one atomic pointer
//!   (`arc-swap`); a worker loads it once per loop iteration and records the epoch it
//!   saw, so [`Switch::apply`] returns only when every worker uses the new policy.
//!   A model that differs from the running one in `Model::remote_members` alone (a
//!   remote-group member joined or left on another host) is published as
//!   [`Dataplane::with_members`] of the running dataplane: no rule recompiled, a new
//!   epoch all the same; any other model as [`Dataplane::recompile`] of the running one
//!   (the classifier compiles only the group sets the change touches).
//!
//! # Logging (`tracing`; the program sets the subscriber up)
//! * INFO: the switch started and stopped; each port opened (name, backend, interface,
//!   worker; `hotplug` when [`Switch::apply`] added it), unplugged, closed (by its
//!   worker), up again after its netdev came back ([`supervise`]); each worker started
//!   (with its core) and stopped; each policy epoch published (ports, added, removed,
//!   `members_only`).
//! * WARN: a command a worker could no longer receive (its thread is gone); a port DOWN
//!   because its netdev is gone, and why; a failed attempt to re-attach it (once per
//!   distinct error).
//! * DEBUG: a worker taking a new policy epoch.
//!
//! Nothing is logged per frame: I/O errors are the ports' (rate-limited, see
//! [`crate::port::errlog`]), drops are counters.
//!
//! # Ports whose netdev goes away
//! A supervisor thread ([`supervise`]) marks a port DOWN when its netdev is deleted or
//! replaced (from the workers' fault notes and a once-a-second index check), has its
//! worker close it while the other ports keep forwarding, and opens it again by itself
//! when a netdev of that name is back ([`Switch::port_down`], [`supervise::port_status`]
//! for the API).
//!
//! # What operators read
//! [`view`]: the opened ports with their backend, worker and UP/DOWN state, each
//! worker's core, when the switch started and when the policy in force was published
//! (`sgswitch status`, `GET /readyz`), read-only.
//!
//! # Rejected options
//! * A lock around each conntrack zone: contention and a lock per packet.
//! * Per-port conntrack zones owned by the ports' workers with a two-stage pipeline (egress
//!   where the frame arrives, ingress where it leaves): correct too, but it splits the
//!   per-frame verdict across threads and complicates fragments; flow steering keeps the
//!   pipeline whole.
//! * One learned-MAC table shared by all workers (a lock or atomics per learned frame);
//!   announcing changes keeps each worker's copy private.
//! * Parsing a frame again to steer it, and handing frames over one at a time: the first
//!   multi-worker loop did both, and was a different loop from the one-worker case, which
//!   hid a bug (frames handed to a shared-UMEM member were dropped) from every test.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use crossbeam_queue::ArrayQueue;

use crate::flow::DropReason;
use crate::pipeline::{
    Dataplane, IdMap, Learned, LogLimits, LogRecord, PipelineConfig, PortCounters,
};
use crate::policy::{Backend, Model, RuleRef};
use crate::port::afxdp::{GroupConfig, MemberConfig, UmemGroup, UmemPorts};
use crate::port::napi::NapiDefer;
use crate::port::underlay::UnderlayGroup;
use crate::port::{self, PortError, PortGroup, PortStats, Single};

mod handoff;
pub mod observe;
mod share;
pub use share::{FloodSettings, NewFlowBudget};
pub mod supervise;
mod underlay;
pub mod view;
mod worker;

use handoff::Queues;
use observe::WorkerCounters;
use supervise::{Health, OpenPort, PortDown, Supervisor};
use worker::{Cmd, Worker};

/// Settings of a live switch: the one settings type of the switch. A config file's
/// `[switch]` table fills `workers`, `burst`, `idle_backoff`, `napi_defer_us` and `flood`
/// (`control::config` reads it into this type; the other fields keep their defaults
/// there), and `sgswitch run`'s flags are layered on top by the CLI.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SwitchSettings {
    /// Number of polling workers; 0 = automatic: one per core, at most one per port with
    /// a backend. [`SwitchSettings::worker_count`] is the one place that resolves it.
    pub workers: usize,
    /// Frames per burst, 1..=[`port::MAX_BURST`].
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
    /// Each worker's packet-log rate limits (the writer limits all of them together
    /// again): `[logging] rate_limit` and `burst_limit`.
    pub log_limits: LogLimits,
    /// `[switch] new_flow_budget` and `fair_share`, read at start (the environment
    /// overrides them for measurements: [`FloodSettings::with_env`]).
    pub flood: FloodSettings,
}

impl Default for SwitchSettings {
    fn default() -> Self {
        SwitchSettings {
            workers: 0,
            burst: 32,
            idle_backoff: true,
            cores: Vec::new(),
            no_pin: false,
            shared_umem: true,
            napi_defer_us: crate::port::napi::DEFAULT_DEFER_US,
            log_limits: LogLimits::default(),
            flood: FloodSettings::default(),
        }
    }
}

impl SwitchSettings {
    /// The number of workers [`Switch::start`] starts for `model`: `workers` if set;
    /// for 0 (automatic), one per core of the machine, at most one per port of `model`
    /// with a backend, at least one. This is the only place that resolves 0.
    pub fn worker_count(&self, model: &Model) -> usize {
        match self.workers {
            0 => {
                let with_backend = model.ports.iter().filter(|p| p.backend.is_some()).count();
                let cores = core_affinity::get_core_ids().map_or(1, |c| c.len());
                cores.min(with_backend).max(1)
            }
            n => n,
        }
    }
}

impl SwitchSettings {
    /// Checks that every core of `cores` is one this process may run on (the machine's
    /// cores, within its CPU affinity): a worker is never left unpinned silently because
    /// `[switch] cores` or `--cores` named a core that is not there.
    pub fn check_cores(&self) -> Result<(), SwitchError> {
        if self.no_pin || self.cores.is_empty() {
            return Ok(());
        }
        let have: Vec<usize> = core_affinity::get_core_ids()
            .unwrap_or_default()
            .iter()
            .map(|c| c.id)
            .collect();
        match self.cores.iter().find(|c| !have.contains(c)) {
            None => Ok(()),
            Some(&core) => Err(SwitchError::NoSuchCore { core, have }),
        }
    }
}

/// Errors of the live switch.
#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    #[error(
        "switch.cores: core {core} is not one this process may run on (cores: {})",
        have.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    )]
    NoSuchCore { core: usize, have: Vec<usize> },
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
    /// New connections admitted by each rule of the policy in force (summed over the
    /// workers; a rule keeps its count across reloads while it exists).
    pub rule_hits: Vec<(RuleRef, u64)>,
    /// The policy epoch in force.
    pub epoch: u64,
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
    /// Everything else the worker counts.
    pub detail: WorkerCounters,
}

/// Per-port statistics of a running switch.
#[derive(Clone, Debug, Default)]
pub struct PortReport {
    pub name: String,
    pub counters: PortCounters,
    /// The backend's counters, summed over the port's queues.
    pub io: PortStats,
    /// A multiqueue tap's counters per queue, as (worker driving it, its counters);
    /// empty for a port with one queue.
    pub queues: Vec<(usize, PortStats)>,
}

#[derive(Default)]
struct WorkerSnapshot {
    worker: WorkerCounters,
    /// New connections admitted, by rule slot.
    rule_hits: Vec<u64>,
    counters: Vec<PortCounters>,
    io: Vec<(u16, PortStats)>,
}

/// MACs learned and not yet applied, per receiving worker.
const LEARNED_QUEUE: usize = 1024;

struct Shared {
    dp: ArcSwap<Dataplane>,
    seen: Vec<AtomicU64>,
    stop: AtomicBool,
    snap_gen: AtomicU64,
    snap_done: Vec<AtomicU64>,
    snapshots: Vec<Mutex<WorkerSnapshot>>,
    /// Handoff batches between workers: inboxes and pools.
    queues: Queues,
    /// MACs other workers learned, per worker ([`crate::l2::LearnedFdb`]).
    learned: Vec<ArrayQueue<Learned>>,
    /// zone → owning worker (read by workers only when the epoch changes).
    owners: Mutex<HashMap<u16, usize>>,
    /// The workers' common clock origin (learned-MAC ages are compared across workers).
    start: Instant,
    /// Packet-log records, per worker ([`observe::LOG_QUEUE`] each).
    logs: Vec<ArrayQueue<LogRecord>>,
    /// (zone, errno): a port's note that its netdev may be gone, from its worker to the
    /// supervisor ([`supervise`]).
    faults: ArrayQueue<(u16, i32)>,
    /// The largest inner frame the overlay's underlay carries (`None`: no underlay):
    /// larger frames to a tunnel port are dropped `tunnel-too-big` ([`underlay::police`]).
    tunnel_max: Option<Arc<AtomicUsize>>,
}

struct ControlState {
    zones: IdMap,
    epoch: u64,
    /// Every port opened, by name (also while it is down: [`supervise`]).
    open: HashMap<String, OpenPort>,
    /// netdev → its NAPI moderation while some open port uses it (restored when the
    /// entry goes).
    napi: HashMap<String, NapiDefer>,
    napi_defer_us: u32,
    burst: usize,
    /// Told each new epoch and its model just before the epoch is published.
    on_compile: Option<OnCompile>,
    /// The model of the running dataplane: when the next one differs from it in
    /// `remote_members` alone, [`Switch::apply`] derives the dataplane
    /// ([`Dataplane::with_members`]) instead of recompiling every rule.
    model: Model,
    /// The worker driving the overlay's underlay (it owns every tunnel port).
    underlay_worker: Option<usize>,
}

/// See [`Switch::on_compile`].
pub type OnCompile = Box<dyn Fn(u64, &Model) + Send + Sync>;

/// A running switch.
pub struct Switch {
    shared: Arc<Shared>,
    cmds: Vec<Sender<Cmd>>,
    workers: Mutex<Vec<JoinHandle<WorkerSnapshot>>>,
    /// Shared with the supervisor thread (which holds it weakly).
    control: Arc<Mutex<ControlState>>,
    health: Arc<Health>,
    supervisor: Mutex<Option<JoinHandle<()>>>,
    /// Read-only facts for `sgswitch status` ([`view`]): cores, publication time.
    facts: view::Facts,
}

/// How long [`Switch::apply`] waits for every worker to take a new policy.
pub const APPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// Ports opened for one worker: their names and backends, member by member.
struct Opened {
    members: Vec<(String, Backend)>,
    ports: Box<dyn PortGroup>,
}

/// Open AF_XDP ports as one group sharing a UMEM.
fn open_group(ports: &[&(String, Backend)]) -> Result<Opened, SwitchError> {
    let mut members = Vec::new();
    for (_, b) in ports {
        if let Backend::AfXdp {
            ifname,
            queue,
            mode,
        } = b
        {
            let mut m = MemberConfig::new(ifname);
            m.queue = *queue;
            m.xdp_mode = mode.unwrap_or_default();
            members.push(m);
        }
    }
    let names: Vec<&str> = ports.iter().map(|(n, _)| n.as_str()).collect();
    let group =
        UmemGroup::open(&members, &GroupConfig::default()).map_err(|source| SwitchError::Port {
            port: names.join(", "),
            source,
        })?;
    Ok(Opened {
        members: ports.iter().map(|(n, b)| (n.clone(), b.clone())).collect(),
        ports: Box::new(UmemPorts::new(group)),
    })
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

/// Open one port, each of its queues as a group of its own: one for every backend but a
/// tap with `queues` > 1, which opens as a multiqueue tap with one queue per worker at
/// most (`workers` of them: more queues than workers would leave a queue no worker reads,
/// and the instance's flows on it would stall; so the count is capped, said once per open
/// at INFO). Queue `k` goes to worker `(home + k) % workers` ([`hand_queues`]).
fn open_port(
    name: &str,
    b: &Backend,
    burst: usize,
    workers: usize,
) -> Result<Vec<Opened>, SwitchError> {
    let want = match b {
        Backend::Tap { queues, .. } => usize::from(*queues).max(1),
        _ => 1,
    };
    let n = want.min(workers.max(1));
    if n < want {
        tracing::info!(port = %name, queues = want, workers, opened = n, "port {name}: {want} queues asked, {workers} workers: {n} queues opened (one per worker)");
    }
    let ports = port::open_backend_queues(b, n).map_err(|source| SwitchError::Port {
        port: name.to_string(),
        source,
    })?;
    Ok(ports
        .into_iter()
        .map(|p| Opened {
            members: vec![(name.to_string(), b.clone())],
            ports: Box::new(Single::new(p, burst)),
        })
        .collect())
}

impl Switch {
    /// Open every port of `model` that has a backend and start the workers. On error
    /// nothing stays open or attached.
    pub fn start(model: &Model, settings: &SwitchSettings) -> Result<Switch, SwitchError> {
        Self::start_with(model, settings, None)
    }

    /// [`Switch::start`] with the overlay's underlay ([`UnderlayGroup`], opened by the
    /// caller): worker 0 drives it, and with it every tunnel port (docs/overlay.md).
    pub fn start_with(
        model: &Model,
        settings: &SwitchSettings,
        underlay: Option<UnderlayGroup>,
    ) -> Result<Switch, SwitchError> {
        settings.check_cores()?;
        let nw = settings.worker_count(model);
        let burst = settings.burst.clamp(1, port::MAX_BURST);
        let mut zones = IdMap::default();
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
        // (home worker, the port's queues: one for all but multiqueue taps)
        let mut opened: Vec<(usize, Vec<Opened>)> = Vec::new();
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
                opened.push((w, vec![open_group(&xdp)?]));
            }
            for (name, b) in mine {
                if grouped && matches!(b, Backend::AfXdp { .. }) {
                    continue;
                }
                opened.push((w, open_port(name, b, burst, nw)?));
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
            queues: Queues::new(nw),
            learned: (0..nw).map(|_| ArrayQueue::new(LEARNED_QUEUE)).collect(),
            owners: Mutex::new(HashMap::new()),
            start: Instant::now(),
            logs: (0..nw)
                .map(|_| ArrayQueue::new(observe::LOG_QUEUE))
                .collect(),
            faults: ArrayQueue::new(supervise::FAULT_QUEUE),
            tunnel_max: underlay.as_ref().map(UnderlayGroup::max_inner),
        });
        let mut pcfg = PipelineConfig::from_model(model);
        pcfg.log_limits = settings.log_limits;
        let mut cmds = Vec::new();
        let mut rxs = Vec::new();
        for _ in 0..nw {
            let (tx, rx) = mpsc::channel();
            cmds.push(tx);
            rxs.push(rx);
        }
        let mut open = HashMap::new();
        for (w, o) in opened {
            hand_queues(&cmds, w, o, &mut zones, &shared, &mut open, false);
        }
        let underlay_worker = underlay.map(|u| {
            let name = format!("underlay:{}", u.ifname());
            let zone = zones.zone(&name);
            let mut owners = lock(&shared.owners);
            owners.insert(zone, 0);
            underlay::own_tunnels(&mut owners, &shared.dp.load(), 0);
            tracing::info!(port = %name, worker = 0, zone, "underlay opened");
            let _ = cmds[0].send(Cmd::Add {
                zones: vec![zone],
                names: vec![name],
                ports: Box::new(u),
            });
            0
        });
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let facts = view::Facts::new(nw);
        let mut workers = Vec::new();
        for (w, rx) in rxs.into_iter().enumerate() {
            let shared2 = shared.clone();
            let worker_cores = Arc::clone(&facts.cores);
            let pcfg2 = pcfg.clone();
            let core = if settings.no_pin || cores.is_empty() {
                None
            } else if settings.cores.is_empty() {
                Some(cores[w % cores.len()])
            } else {
                let want = settings.cores[w % settings.cores.len()];
                cores.iter().find(|c| c.id == want).copied()
            };
            let backoff = settings.idle_backoff;
            let flood = settings.flood.with_env();
            let h = std::thread::Builder::new()
                .name(format!("sgs-worker-{w}"))
                .spawn(move || {
                    let pinned = core.is_some_and(core_affinity::set_for_current);
                    let core = core.map(|c| c.id as i64).unwrap_or(-1);
                    if pinned {
                        worker_cores[w].store(core, Ordering::Relaxed);
                    }
                    tracing::info!(
                        worker = w,
                        core,
                        pinned,
                        new_flow_budget = %flood.new_flow_budget.to_config(),
                        fair_share = flood.fair_share,
                        "worker started"
                    );
                    let snap = Worker::new(w, nw, shared2, rx, &pcfg2, burst, backoff, flood).run();
                    tracing::info!(worker = w, "worker stopped");
                    snap
                })
                .map_err(SwitchError::Thread)?;
            workers.push(h);
        }
        let control = Arc::new(Mutex::new(ControlState {
            zones,
            epoch: 1,
            open,
            napi,
            napi_defer_us: settings.napi_defer_us,
            burst,
            on_compile: None,
            model: model.clone(),
            underlay_worker,
        }));
        let health = Health::new_registered();
        let sup = Supervisor {
            control: Arc::downgrade(&control),
            shared: shared.clone(),
            cmds: cmds.clone(),
            health: health.clone(),
        };
        let supervisor = std::thread::Builder::new()
            .name("sgs-supervise".into())
            .spawn(move || sup.run())
            .map_err(SwitchError::Thread)?;
        let sw = Switch {
            shared,
            cmds,
            workers: Mutex::new(workers),
            control,
            health,
            supervisor: Mutex::new(Some(supervisor)),
            facts,
        };
        sw.wait_epoch(1, APPLY_TIMEOUT)?;
        sw.facts.published();
        tracing::info!(
            workers = nw,
            ports = lock(&sw.control).open.len(),
            epoch = 1,
            "switch started, policy published"
        );
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
            let waited = t.elapsed();
            if waited > timeout {
                return Err(SwitchError::Timeout(timeout));
            }
            // A spinning worker takes an epoch within one loop (µs): yield for the first
            // 200 µs (a 100 µs sleep was most of a rules-only apply, #15), then poll.
            if waited < Duration::from_micros(200) {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        Ok(())
    }

    /// Call `f` with every later policy epoch and the model it is compiled from, just
    /// before the epoch is published (so that whoever names the epoch's packet-log
    /// records knows it before its first record). Replaces an earlier `f`.
    pub fn on_compile(&self, f: OnCompile) {
        lock(&self.control).on_compile = Some(f);
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
        // A port that is down with the same backend stays as it is: the supervisor
        // re-attaches it when its netdev is back ([`supervise`]).
        for p in &model.ports {
            let Some(b) = &p.backend else { continue };
            match st.open.get(&p.name) {
                Some(o) if &o.backend == b => {}
                _ => added.push(open_port(&p.name, b, st.burst, self.cmds.len())?),
            }
        }
        let with_backend = || {
            model
                .ports
                .iter()
                .filter_map(|p| p.backend.as_ref().map(|b| (p.name.as_str(), b)))
        };
        // Netdevs new to the switch; one that stays in use keeps its guard (which holds
        // the device's original values). A down port's netdev is not there to tune.
        let tuned = tune_netdevs(
            with_backend().filter(|(n, _)| !st.open.get(*n).is_some_and(OpenPort::is_down)),
            &st.napi,
            st.napi_defer_us,
        )?;
        let removed: Vec<String> = st
            .open
            .iter()
            .filter(|(name, o)| {
                !model
                    .ports
                    .iter()
                    .any(|p| &p.name == *name && p.backend.as_ref() == Some(&o.backend))
            })
            .map(|(n, _)| n.clone())
            .collect();
        // 2. Retire ports that are gone or replaced.
        for name in &removed {
            if let Some(o) = st.open.remove(name) {
                let (zone, w) = (o.zone, o.worker);
                tracing::info!(port = %name, worker = w, zone, down = o.is_down(), "port unplugged");
                for &w in &o.workers {
                    if self.cmds[w].send(Cmd::Remove { zone }).is_err() {
                        tracing::warn!(port = %name, worker = w, "worker gone: unplug not delivered");
                    }
                }
                lock(&self.shared.owners).remove(&zone);
                self.health.set_up(name);
            }
        }
        st.napi
            .retain(|dev, _| with_backend().any(|(_, b)| netdev_of(b) == Some(dev.as_str())));
        st.napi.extend(tuned);
        // 3. Hand new ports to the least loaded workers.
        let n_added = added.len();
        for o in added {
            let mut load = vec![0usize; self.cmds.len()];
            for o in st.open.values() {
                for &w in &o.workers {
                    load[w] += 1;
                }
            }
            let w = (0..load.len()).min_by_key(|i| load[*i]).unwrap_or(0);
            let st = &mut *st;
            hand_queues(
                &self.cmds,
                w,
                o,
                &mut st.zones,
                &self.shared,
                &mut st.open,
                true,
            );
        }
        // 4. Publish the new policy.
        st.epoch += 1;
        let epoch = st.epoch;
        // A remote-group member joined or left and nothing else changed: the member sets
        // are rebuilt, the rules stay compiled (issue #18); a new epoch all the same, so
        // connection tracking re-judges (a member that left loses its connections).
        let members_only = crate::classifier::members_only_change(&st.model, model);
        // Otherwise only the classifier's group sets the change touches are compiled
        // (`Dataplane::recompile`, issue #15); the rest of the dataplane is rebuilt.
        let dp = if members_only {
            self.shared.dp.load().with_members(model, epoch)
        } else {
            let st = &mut *st;
            self.shared
                .dp
                .load()
                .recompile(&st.model, model, epoch, &mut st.zones)
        };
        // The model kept for the next change: after a rules-only change, only what
        // differs is copied (a whole copy was ~1 ms of a 10,000-rule apply, #15).
        if crate::pipeline::rules_only_change(&st.model, model) {
            copy_rules(&mut st.model, model);
        } else {
            st.model = model.clone();
        }
        debug_assert!(st.model == *model);
        if let Some(w) = st.underlay_worker {
            underlay::own_tunnels(&mut lock(&self.shared.owners), &dp, w);
        }
        if let Some(f) = &st.on_compile {
            f(epoch, model);
        }
        self.shared.dp.store(Arc::new(dp));
        drop(st);
        self.wait_epoch(epoch, APPLY_TIMEOUT)?;
        self.facts.published();
        tracing::info!(
            epoch,
            ports = model.ports.len(),
            added = n_added,
            removed = removed.len(),
            members_only,
            "policy published"
        );
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
        let (names, multiqueue) = {
            let st = lock(&self.control);
            let mq: HashMap<u16, Vec<usize>> = st
                .open
                .values()
                .filter(|o| o.workers.len() > 1)
                .map(|o| (o.zone, o.workers.clone()))
                .collect();
            (st.zones.names(), mq)
        };
        let mut out: Vec<PortReport> = names
            .iter()
            .map(|n| PortReport {
                name: n.clone(),
                ..Default::default()
            })
            .collect();
        let dp = self.shared.dp.load_full();
        let mut rep = SwitchReport {
            epoch: dp.epoch,
            ..Default::default()
        };
        let mut hits: Vec<u64> = Vec::new();
        for (wi, s) in snaps.iter().enumerate() {
            let w = &s.worker;
            rep.steered += w.steered;
            rep.inbox_full += w.inbox_full;
            rep.workers.push(WorkerLine {
                rx: s.counters.iter().map(|c| c.rx).sum(),
                tx: s.counters.iter().map(|c| c.tx).sum(),
                dropped: s.counters.iter().map(|c| c.dropped_total()).sum(),
                steered: w.steered,
                moved: w.moved,
                conntrack_entries: w.conntrack_entries,
                detail: *w,
            });
            if hits.len() < s.rule_hits.len() {
                hits.resize(s.rule_hits.len(), 0);
            }
            for (a, b) in hits.iter_mut().zip(&s.rule_hits) {
                *a += b;
            }
            for (z, c) in s.counters.iter().enumerate() {
                if let Some(r) = out.get_mut(z) {
                    r.counters.add(c);
                }
            }
            for (z, io) in &s.io {
                if let Some(r) = out.get_mut(*z as usize) {
                    if multiqueue.get(z).is_some_and(|ws| ws.contains(&wi)) {
                        queue_entry(&mut r.queues, wi).add(io);
                    }
                    r.io.add(io);
                    // The port dropped them before the pipeline; they count as a reason.
                    r.counters.dropped[DropReason::BadOffload as usize] += io.rx_bad_offload;
                    r.counters.dropped[DropReason::BadTunnel as usize] += io.bad_tunnel;
                }
            }
        }
        rep.ports = out;
        rep.rule_hits = dp
            .rule_refs()
            .map(|(r, slot)| (r, hits.get(slot as usize).copied().unwrap_or(0)))
            .collect();
        rep
    }

    /// Why `port` is down (its netdev is gone; see [`supervise`]), or `None` if it is up
    /// or not a port of this switch.
    pub fn port_down(&self, port: &str) -> Option<PortDown> {
        self.health.down(port)
    }

    /// Every port of this switch that is down, by name.
    pub fn ports_down(&self) -> Vec<(String, PortDown)> {
        self.health.all_down()
    }

    /// Stop the workers, close every port (detaching XDP programs) and return the final
    /// counters.
    pub fn shutdown(&self) -> SwitchReport {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(h) = lock(&self.supervisor).take() {
            let _ = h.join();
        }
        let mut snaps = Vec::new();
        let workers = std::mem::take(&mut *lock(&self.workers));
        for h in workers {
            if let Ok(s) = h.join() {
                snaps.push(s);
            }
        }
        // The ports are closed: give their netdevs their own NAPI settings back.
        lock(&self.control).napi.clear();
        tracing::info!(workers = snaps.len(), "switch stopped");
        self.merge(&snaps)
    }
}

/// The per-queue counters of worker `w` in `queues` (added when missing).
fn queue_entry(queues: &mut Vec<(usize, PortStats)>, w: usize) -> &mut PortStats {
    let i = match queues.iter().position(|(q, _)| *q == w) {
        Some(i) => i,
        None => {
            queues.push((w, PortStats::default()));
            queues.len() - 1
        }
    };
    &mut queues[i].1
}

/// Give the queues of one opened port (or one AF_XDP group: a single entry) to the
/// workers: queue `k` to worker `(home + k) % workers`, so a multiqueue tap has one queue
/// on each of `queues` workers. The port's owner (the worker that transmits for the
/// workers without a queue of it, [`Shared::owners`]) is `home`.
fn hand_queues(
    cmds: &[Sender<Cmd>],
    home: usize,
    queues: Vec<Opened>,
    zones: &mut IdMap,
    shared: &Shared,
    open: &mut HashMap<String, OpenPort>,
    hotplug: bool,
) {
    let nw = cmds.len().max(1);
    for (k, o) in queues.into_iter().enumerate() {
        let w = (home + k) % nw;
        hand_to(&cmds[w], w, k, o, zones, shared, open, hotplug);
    }
}

/// Give opened ports (queue `queue` of each) to worker `w`: their zones, their owner,
/// the command. `hotplug`: added to a running switch (for the log).
#[allow(clippy::too_many_arguments)]
fn hand_to(
    cmd: &Sender<Cmd>,
    w: usize,
    queue: usize,
    o: Opened,
    zones: &mut IdMap,
    shared: &Shared,
    open: &mut HashMap<String, OpenPort>,
    hotplug: bool,
) {
    let mut gz = Vec::with_capacity(o.members.len());
    let mut names = Vec::with_capacity(o.members.len());
    for (name, b) in o.members {
        let zone = zones.zone(&name);
        let (kind, ifname) = backend_text(&b);
        tracing::info!(port = %name, backend = kind, ifname, worker = w, zone, queue, hotplug, "port opened");
        names.push(name.clone());
        if queue == 0 {
            lock(&shared.owners).insert(zone, w);
            open.insert(name, OpenPort::new(zone, w, b));
        } else if let Some(p) = open.get_mut(&name) {
            p.workers.push(w);
        }
        gz.push(zone);
    }
    let sent = cmd.send(Cmd::Add {
        zones: gz,
        names,
        ports: o.ports,
    });
    if sent.is_err() {
        tracing::warn!(worker = w, "worker gone: ports not handed over (closed)");
    }
}

/// A backend's type and interface name, for logs.
fn backend_text(b: &Backend) -> (&'static str, &str) {
    match b {
        Backend::Tap { ifname, .. } => ("tap", ifname),
        Backend::AfXdp { ifname, .. } => ("afxdp", ifname),
        Backend::AfPacket { ifname } => ("afpacket", ifname),
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
        for (w, q) in &r.queues {
            s.push_str(&format!(
                "{:<14} queue on worker {w}: rx {} tx {} ({} dropped by the backend, {} not sent)\n",
                "", q.rx_packets, q.tx_packets, q.rx_dropped, q.tx_dropped
            ));
        }
        if r.io.gso_segmented > 0 {
            s.push_str(&format!(
                "{:<14} gso: {} segments made in software for this port\n",
                "", r.io.gso_segmented
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

/// `dst` made equal to `src` when they differ only where
/// [`crate::pipeline::rules_only_change`] allows: the groups that differ, the address
/// groups, `remote_members` and `conntrack` copied; ports and the rest left as they are.
fn copy_rules(dst: &mut Model, src: &Model) {
    for (d, s) in dst.security_groups.iter_mut().zip(&src.security_groups) {
        if d != s {
            d.clone_from(s);
        }
    }
    if dst.address_groups != src.address_groups {
        dst.address_groups.clone_from(&src.address_groups);
    }
    if dst.remote_members != src.remote_members {
        dst.remote_members.clone_from(&src.remote_members);
    }
    if dst.conntrack != src.conntrack {
        dst.conntrack.clone_from(&src.conntrack);
    }
}
