//! What a running switch tells about itself: counters beyond the ports', connection
//! tracking dumps and flushes, packet-log records, live captures and live traces.
//!
//! Owns: the questions the control side asks the workers ([`Query`], answered between
//! two bursts through the worker's command channel) and what travels back: the
//! per-worker packet-log queues ([`LOG_QUEUE`] records each) and capture rings
//! ([`CaptureRing`], preallocated frames). May not touch: per-frame decisions (the
//! pipeline's) or port backends.
//!
//! # Costs on the packet path
//! * Counters: plain integers in each worker, copied out on request (a report asks every
//!   worker for a snapshot at its next loop iteration).
//! * Packet log: after each burst, a worker moves its pipeline's records (if any) into
//!   its bounded lock-free queue; a full queue drops and counts them. Nothing when no log
//!   object is enabled (the pipeline writes no record).
//! * Captures: one test per burst while no capture runs; while one runs, each frame of
//!   the burst is checked against the captured port and copied into a preallocated slot
//!   of the ring (none free: counted, not captured).
//! * Queries: conntrack dumps, flushes and lookups run on the worker between bursts (a
//!   dump of a 1M-entry table takes a few milliseconds of that worker's time).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;

use super::worker::Cmd;
use super::Switch;
use crate::conntrack::{CtEntry, CtStats};
use crate::flow::{DropReason, PacketMeta};
use crate::pipeline::{Dataplane, FragStats, LogCounters, LogRecord};

/// Packet-log records a worker queues for the writer.
pub const LOG_QUEUE: usize = 4096;

/// Frames a capture ring holds (preallocated).
pub const CAPTURE_SLOTS: usize = 1024;

/// Bytes of a frame a capture keeps (longer frames are cut; the original length is kept).
pub const CAPTURE_SNAPLEN: usize = 9216;

/// A question to a worker, answered on `reply` between two bursts.
pub(super) enum Query {
    /// Every live entry (of `zone`, or all).
    Conntrack {
        zone: Option<u16>,
        reply: mpsc::Sender<Vec<CtEntry>>,
    },
    /// Remove every entry of `zone`; answers how many.
    Flush {
        zone: u16,
        reply: mpsc::Sender<usize>,
    },
    /// The entries a packet belongs to, in each of `zones` (read-only).
    Lookup {
        zones: Vec<u16>,
        meta: Box<PacketMeta>,
        reply: mpsc::Sender<Vec<CtEntry>>,
    },
    /// Start copying the frames of `zone` into `ring` (replacing a capture of the same
    /// ring), or stop (`None`).
    Capture {
        ring: Arc<CaptureRing>,
        on: Option<CaptureSpec>,
    },
}

/// What a capture takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CaptureSpec {
    /// Conntrack zone of the captured port.
    pub zone: u16,
    /// Only the frames dropped at that port (with their reasons).
    pub dropped_only: bool,
}

/// How a captured frame met the captured port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureDir {
    /// Received from the port.
    Rx,
    /// Delivered to the port.
    Tx,
    /// Dropped at the port.
    Dropped(DropReason),
}

/// One captured frame.
#[derive(Clone, Debug)]
pub struct CapturedFrame {
    /// The switch's clock (ns since it started).
    pub time_ns: u64,
    pub dir: CaptureDir,
    /// The frame's length on the wire.
    pub orig_len: usize,
    /// The frame's bytes, at most [`CAPTURE_SNAPLEN`].
    pub data: Vec<u8>,
}

/// The frames of one capture on their way from the workers to the reader: filled slots,
/// and the empty ones the workers fill (all allocated when the capture starts).
pub struct CaptureRing {
    full: ArrayQueue<CapturedFrame>,
    free: ArrayQueue<CapturedFrame>,
    /// Frames not captured because no slot was free (the reader was too slow).
    lost: AtomicU64,
}

impl CaptureRing {
    pub(super) fn new() -> CaptureRing {
        let free = ArrayQueue::new(CAPTURE_SLOTS);
        for _ in 0..CAPTURE_SLOTS {
            let _ = free.push(CapturedFrame {
                time_ns: 0,
                dir: CaptureDir::Rx,
                orig_len: 0,
                data: Vec::with_capacity(2048),
            });
        }
        CaptureRing {
            full: ArrayQueue::new(CAPTURE_SLOTS),
            free,
            lost: AtomicU64::new(0),
        }
    }

    /// Copy `frame` into a free slot (worker side).
    pub(super) fn put(&self, time_ns: u64, dir: CaptureDir, frame: &[u8]) {
        let Some(mut slot) = self.free.pop() else {
            self.lost.fetch_add(1, Ordering::Relaxed);
            return;
        };
        slot.time_ns = time_ns;
        slot.dir = dir;
        slot.orig_len = frame.len();
        slot.data.clear();
        slot.data
            .extend_from_slice(&frame[..frame.len().min(CAPTURE_SNAPLEN)]);
        if let Err(slot) = self.full.push(slot) {
            let _ = self.free.push(slot);
            self.lost.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Hand every captured frame to `f` (reader side); returns how many.
    pub fn drain(&self, mut f: impl FnMut(&CapturedFrame)) -> usize {
        let mut n = 0;
        while let Some(slot) = self.full.pop() {
            f(&slot);
            n += 1;
            let _ = self.free.push(slot);
        }
        n
    }

    /// Frames lost so far because the reader was too slow.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }
}

/// Counters of one worker (beyond the per-port ones).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerCounters {
    /// Loop iterations that found frames to process.
    pub busy_polls: u64,
    /// Loop iterations that found nothing.
    pub idle_polls: u64,
    /// Bursts received from ports.
    pub bursts: u64,
    /// Polls of a port skipped because the port had used its share of the worker's time
    /// while the worker was saturated ([`super::share`]).
    pub deferred_bursts: u64,
    /// Frames handed to another worker (flow steering).
    pub steered: u64,
    /// Frames dropped because another worker's inbox was full.
    pub inbox_full: u64,
    /// Frames forwarded between AF_XDP ports by moving their descriptor.
    pub moved: u64,
    /// Live connection-tracking entries, and the table's capacity.
    pub conntrack_entries: usize,
    pub conntrack_capacity: usize,
    pub conntrack: CtStats,
    /// Fragmented datagrams the worker's fragment table knows now, later fragments it
    /// holds now, and the table's counters.
    pub fragment_datagrams: usize,
    pub fragments_held: usize,
    pub fragments: FragStats,
    /// The pipeline's packet log.
    pub log: LogCounters,
    /// Packet-log records dropped because the worker's queue was full.
    pub log_queue_full: u64,
}

/// A running capture ([`Switch::capture`]): read its frames with [`Capture::drain`];
/// dropping it stops the capture in every worker.
pub struct Capture {
    ring: Arc<CaptureRing>,
    cmds: Vec<mpsc::Sender<Cmd>>,
}

impl Capture {
    /// Hand every frame captured since the last call to `f`; returns how many.
    pub fn drain(&self, f: impl FnMut(&CapturedFrame)) -> usize {
        self.ring.drain(f)
    }

    /// Frames lost because the reader was too slow.
    pub fn lost(&self) -> u64 {
        self.ring.lost()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        for c in &self.cmds {
            let _ = c.send(Cmd::Query(Query::Capture {
                ring: Arc::clone(&self.ring),
                on: None,
            }));
        }
    }
}

/// How long a question to the workers may take before the answers so far are used.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

impl Switch {
    /// Nanoseconds since the switch started: the workers' clock (conntrack deadlines,
    /// capture and packet-log times).
    pub fn now_ns(&self) -> u64 {
        self.shared.start.elapsed().as_nanos() as u64
    }

    /// The compiled policy in force.
    pub fn dataplane(&self) -> Arc<Dataplane> {
        self.shared.dp.load_full()
    }

    /// Ask every worker; collect the answers that come within [`QUERY_TIMEOUT`].
    fn ask<T: Send + 'static>(&self, make: impl Fn(mpsc::Sender<T>) -> Query) -> Vec<T> {
        let (tx, rx) = mpsc::channel();
        let asked = self
            .cmds
            .iter()
            .filter(|c| c.send(Cmd::Query(make(tx.clone()))).is_ok())
            .count();
        drop(tx);
        let deadline = Instant::now() + QUERY_TIMEOUT;
        let mut out = Vec::with_capacity(asked);
        while out.len() < asked {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(a) => out.push(a),
                Err(_) => break,
            }
        }
        out
    }

    /// Every live connection-tracking entry of every worker (of conntrack zone `zone`,
    /// or all), in no particular order. Expired entries not yet swept are left out.
    pub fn conntrack_entries(&self, zone: Option<u16>) -> Vec<CtEntry> {
        let now = self.now_ns();
        self.ask(|reply| Query::Conntrack { zone, reply })
            .into_iter()
            .flatten()
            .filter(|e| e.expires_ns > now)
            .collect()
    }

    /// Forget every connection of zone `zone` in every worker; returns how many.
    pub fn conntrack_flush(&self, zone: u16) -> usize {
        let n = self
            .ask(|reply| Query::Flush { zone, reply })
            .into_iter()
            .sum();
        tracing::info!(zone, entries = n, "conntrack flushed");
        n
    }

    /// The live entries a packet belongs to, in any zone (read-only).
    pub fn conntrack_lookup(&self, meta: &PacketMeta) -> Vec<CtEntry> {
        let zones: Vec<u16> = self.dataplane().ports.iter().map(|p| p.zone).collect();
        let now = self.now_ns();
        self.ask(|reply| Query::Lookup {
            zones: zones.clone(),
            meta: Box::new(*meta),
            reply,
        })
        .into_iter()
        .flatten()
        .filter(|e| e.expires_ns > now)
        .collect()
    }

    /// Start capturing the frames of the port of conntrack zone `zone` (all of them, or
    /// only those dropped at it).
    pub fn capture(&self, zone: u16, dropped_only: bool) -> Capture {
        let ring = Arc::new(CaptureRing::new());
        for c in &self.cmds {
            let _ = c.send(Cmd::Query(Query::Capture {
                ring: Arc::clone(&ring),
                on: Some(CaptureSpec { zone, dropped_only }),
            }));
        }
        tracing::info!(zone, dropped_only, "capture started");
        Capture {
            ring,
            cmds: self.cmds.clone(),
        }
    }

    /// Hand every packet-log record the workers queued to `f` (worker by worker, each in
    /// order); returns how many.
    pub fn drain_log_records(&self, mut f: impl FnMut(&LogRecord)) -> usize {
        let mut n = 0;
        for q in &self.shared.logs {
            while let Some(r) = q.pop() {
                f(&r);
                n += 1;
            }
        }
        n
    }
}
