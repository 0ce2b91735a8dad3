//! The packet log writer: Neutron-style packet logging records, named and rate limited,
//! written as JSON lines to a file or to standard error.
//!
//! # Flow
//! A pipeline writes a [`LogRecord`] for each connection a logged rule admits (`ACCEPT`,
//! once per connection) and each packet dropped at a logged port (`DROP`, per packet),
//! rate limited per pipeline (`pipeline::observe`). Whoever drains the pipelines (the
//! live switch's workers, a replay, a test) hands the records to a [`LogSender`]
//! ([`LogSender::send`], [`LogSender::send_all`]): a bounded channel into this module's
//! own thread. Sending never blocks and never allocates: when the channel is full the
//! record is counted as `dropped` and forgotten. The thread
//! 1. rate limits the records of every source together with one token bucket of
//!    `[logging] rate_limit` per second and `burst_limit` (Neutron's `rate_limit` and
//!    `burst_limit`, defaults and minimums 100/s and 25), on the records' own clock
//!    (their time as Unix nanoseconds: `origin + time_ns`, see [`PacketLog::sender`]), so
//!    a replay is limited over capture time and a flood over any span T writes at most
//!    `rate_limit × T + burst_limit` records; the rest are counted as `suppressed`;
//! 2. names each record with the [`Directory`] of its policy epoch (published by
//!    [`PacketLog::set_policy`] when the policy is compiled) and, when a [`Store`] is
//!    connected, the Neutron ids of its port, group, rule and log objects ([`Ids`],
//!    resolved by name in the committed state);
//! 3. formats it as one JSON line ([`format`]) and appends it to the file (opened in
//!    append mode, created with mode 0640 and missing parent directories) or to standard
//!    error, flushed after each batch: whenever the channel runs empty, and at least
//!    every 1024 records.
//!
//! A failed write loses the lines of that batch (counted: `write_errors`, `lost`) and is
//! reported through `tracing` at most once per second; it never stops the writer or the
//! switch.
//!
//! # Wiring
//! ```text
//! let log = PacketLog::start(&config.logging, Some(store.clone()))?;  // [logging]
//! log.set_policy(epoch, &model);                 // after each compile, before its records
//! let tx = log.sender(switch_start_wall_time);   // time_ns 0 = this instant
//! pipeline.take_log_records(|r| { tx.send(r); });
//! ```
//! A capture replay passes `UNIX_EPOCH` as the origin (its clock is the capture's).
//!
//! Owns: the packet log's destination, its global rate limit, its counters and its
//! thread. May not touch: the dataplane (records arrive as plain data; nothing here
//! runs on the packet path beyond [`LogSender::send`]'s `try_send`) or the store's state
//! (read through snapshots). Depends on `pipeline` (the record, the token bucket),
//! `policy` (the model), `control::store` (ids) and `control::config` (the settings).

use std::collections::VecDeque;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::control::config::LoggingSettings;
use crate::control::store::{State, Store};
use crate::pipeline::observe::TokenBucket;
use crate::pipeline::{LogLimits, LogRecord};
use crate::policy::Model;

mod directory;
pub mod format;
pub mod live;
#[cfg(test)]
mod tests;

pub use directory::{Directory, Ids};

/// Records the channel holds before [`LogSender::send`] drops them.
pub const QUEUE: usize = 8192;
/// Policy epochs whose names are kept (records of older epochs are written without
/// names: `port_index` instead of `port`).
pub const EPOCHS_KEPT: usize = 8;
/// Records handled between two looks at the store's committed state.
const BATCH: usize = 1024;

/// Counters of the packet log (monotonic).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketLogCounters {
    /// Records accepted into the channel.
    pub received: u64,
    /// Records refused because the channel was full (or the writer gone).
    pub dropped: u64,
    /// Records over the rate limit, not written.
    pub suppressed: u64,
    /// Lines written.
    pub written: u64,
    /// Failed writes, and the lines they lost.
    pub write_errors: u64,
    pub lost: u64,
}

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    dropped: AtomicU64,
    suppressed: AtomicU64,
    written: AtomicU64,
    write_errors: AtomicU64,
    lost: AtomicU64,
}

/// What the senders, the handle and the thread share.
#[derive(Default)]
struct Shared {
    counters: Counters,
    /// The directories of the last [`EPOCHS_KEPT`] epochs, oldest first.
    directories: Mutex<VecDeque<Arc<Directory>>>,
}

enum Msg {
    Record { rec: LogRecord, origin_ns: u64 },
    Flush(SyncSender<()>),
    Stop,
}

/// The packet log: its writer thread and what feeds it (see the module doc).
pub struct PacketLog {
    tx: SyncSender<Msg>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// A handle that hands records to the writer without blocking; cheap to clone (one per
/// worker). Its origin turns a record's `time_ns` into Unix time.
#[derive(Clone)]
pub struct LogSender {
    tx: SyncSender<Msg>,
    shared: Arc<Shared>,
    origin_ns: u64,
}

impl LogSender {
    /// Hand one record over; `false` (and counted as `dropped`) when the queue is full.
    #[inline]
    pub fn send(&self, rec: &LogRecord) -> bool {
        let msg = Msg::Record {
            rec: *rec,
            origin_ns: self.origin_ns,
        };
        let c = &self.shared.counters;
        match self.tx.try_send(msg) {
            Ok(()) => {
                c.received.fetch_add(1, Relaxed);
                true
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                c.dropped.fetch_add(1, Relaxed);
                false
            }
        }
    }

    /// Hand records over (for instance a pipeline's drained buffer); returns how many
    /// the queue took.
    pub fn send_all<'a>(&self, records: impl IntoIterator<Item = &'a LogRecord>) -> usize {
        records.into_iter().filter(|r| self.send(r)).count()
    }
}

fn unix_ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Open the packet log file: append, create with mode 0640 (and its missing parent
/// directories).
pub fn open_log_file(path: &std::path::Path) -> io::Result<fs::File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
}

impl PacketLog {
    /// Start the writer on `settings`' destination (`file`, or standard error) and rate
    /// limits; `store`, when given, supplies Neutron ids. Fails only if the file cannot
    /// be opened.
    pub fn start(settings: &LoggingSettings, store: Option<Arc<Store>>) -> io::Result<PacketLog> {
        let sink: Box<dyn Write + Send> = match &settings.file {
            Some(path) => Box::new(open_log_file(path).map_err(|e| {
                io::Error::new(e.kind(), format!("packet log {}: {e}", path.display()))
            })?),
            None => Box::new(io::stderr()),
        };
        Self::with_sink(settings, store, sink)
    }

    /// Start the writer on any sink (tests, tools).
    pub fn with_sink(
        settings: &LoggingSettings,
        store: Option<Arc<Store>>,
        sink: Box<dyn Write + Send>,
    ) -> io::Result<PacketLog> {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let shared = Arc::new(Shared::default());
        let limits = LogLimits {
            rate_limit: settings.rate_limit,
            burst_limit: settings.burst_limit,
        };
        let writer = Writer {
            rx,
            shared: Arc::clone(&shared),
            store,
            sink,
            bucket: TokenBucket::new(limits),
            buf: Vec::with_capacity(64 * 1024),
            lines: 0,
            dir: None,
            ids: None,
            last_report: None,
            unreported: 0,
        };
        let thread = std::thread::Builder::new()
            .name("sgswitch-packet-log".into())
            .spawn(move || writer.run())?;
        Ok(PacketLog {
            tx,
            shared,
            thread: Some(thread),
        })
    }

    /// Publish the names of policy epoch `epoch` (compiled from `model`): call it when
    /// the epoch is compiled, before its records are sent.
    pub fn set_policy(&self, epoch: u64, model: &Model) {
        let dir = Arc::new(Directory::new(epoch, model));
        let mut dirs = match self.shared.directories.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        dirs.retain(|d| d.epoch != epoch);
        dirs.push_back(dir);
        while dirs.len() > EPOCHS_KEPT {
            dirs.pop_front();
        }
    }

    /// A sender whose records' `time_ns` count from `origin` (the live switch: the wall
    /// time of its clock's zero; a capture replay: `UNIX_EPOCH`).
    pub fn sender(&self, origin: SystemTime) -> LogSender {
        LogSender {
            tx: self.tx.clone(),
            shared: Arc::clone(&self.shared),
            origin_ns: unix_ns(origin),
        }
    }

    /// The counters so far.
    pub fn counters(&self) -> PacketLogCounters {
        let c = &self.shared.counters;
        PacketLogCounters {
            received: c.received.load(Relaxed),
            dropped: c.dropped.load(Relaxed),
            suppressed: c.suppressed.load(Relaxed),
            written: c.written.load(Relaxed),
            write_errors: c.write_errors.load(Relaxed),
            lost: c.lost.load(Relaxed),
        }
    }

    /// Wait until every record sent before this call is written (or suppressed) and the
    /// sink flushed. Blocks (control plane and tests only).
    pub fn flush(&self) {
        let (ack, done) = mpsc::sync_channel(1);
        if self.tx.send(Msg::Flush(ack)).is_ok() {
            let _ = done.recv();
        }
    }

    /// Write what is queued, stop the thread and return the final counters.
    pub fn shutdown(mut self) -> PacketLogCounters {
        self.stop();
        self.counters()
    }

    fn stop(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = self.tx.send(Msg::Stop);
            let _ = t.join();
        }
    }
}

impl Drop for PacketLog {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The writer thread's state.
struct Writer {
    rx: Receiver<Msg>,
    shared: Arc<Shared>,
    store: Option<Arc<Store>>,
    sink: Box<dyn Write + Send>,
    bucket: TokenBucket,
    /// Formatted lines not yet written, and how many.
    buf: Vec<u8>,
    lines: u64,
    /// The directory of the last record's epoch.
    dir: Option<Arc<Directory>>,
    /// Ids of `dir` in the store's state they were resolved against.
    ids: Option<(u64, Ids)>,
    last_report: Option<Instant>,
    unreported: u64,
}

impl Writer {
    fn run(mut self) {
        loop {
            let Ok(first) = self.rx.recv() else {
                break;
            };
            let snapshot = self.store.as_ref().map(|s| s.snapshot());
            let mut next = Some(first);
            let mut handled = 0;
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Record { rec, origin_ns } => {
                        self.record(&rec, origin_ns, snapshot.as_ref());
                        if self.buf.len() >= 60 * 1024 {
                            self.write_out();
                        }
                    }
                    Msg::Flush(ack) => {
                        self.write_out();
                        let _ = ack.send(());
                    }
                    Msg::Stop => {
                        self.write_out();
                        return;
                    }
                }
                handled += 1;
                if handled < BATCH {
                    next = self.rx.try_recv().ok();
                }
            }
            self.write_out();
        }
        self.write_out();
    }

    /// Rate limit, name and format one record.
    fn record(&mut self, rec: &LogRecord, origin_ns: u64, state: Option<&Arc<State>>) {
        let counters = &self.shared.counters;
        let unix = origin_ns.saturating_add(rec.time_ns);
        if !self.bucket.take(unix) {
            counters.suppressed.fetch_add(1, Relaxed);
            return;
        }
        if self.dir.as_ref().is_none_or(|d| d.epoch != rec.epoch) {
            let dirs = match self.shared.directories.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            self.dir = dirs.iter().find(|d| d.epoch == rec.epoch).cloned();
        }
        let dir = self.dir.as_deref();
        if let (Some(d), Some(state)) = (dir, state) {
            let fresh = self.ids.as_ref().is_some_and(|(epoch, ids)| {
                *epoch == d.epoch && ids.state.as_ref().is_some_and(|s| Arc::ptr_eq(s, state))
            });
            if !fresh {
                self.ids = Some((d.epoch, Ids::resolve(d, Arc::clone(state))));
            }
        }
        let ids = match (dir, state) {
            (Some(_), Some(_)) => self.ids.as_ref().map(|(_, i)| i),
            _ => None,
        };
        format::write_line(&mut self.buf, rec, unix, dir, ids);
        self.lines += 1;
    }

    /// Write and flush the buffered lines; a failure loses them (counted, reported at
    /// most once per second).
    fn write_out(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let counters = &self.shared.counters;
        let result = self
            .sink
            .write_all(&self.buf)
            .and_then(|()| self.sink.flush());
        match result {
            Ok(()) => {
                counters.written.fetch_add(self.lines, Relaxed);
            }
            Err(e) => {
                counters.write_errors.fetch_add(1, Relaxed);
                counters.lost.fetch_add(self.lines, Relaxed);
                self.unreported += self.lines;
                let due = self
                    .last_report
                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
                if due {
                    tracing::warn!(
                        error = %e,
                        lost = self.unreported,
                        "cannot write the packet log; records lost"
                    );
                    self.last_report = Some(Instant::now());
                    self.unreported = 0;
                }
            }
        }
        self.buf.clear();
        self.lines = 0;
    }
}
