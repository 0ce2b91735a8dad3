//! A read-only view of a running switch for operators (`sgswitch status`, `GET /readyz`):
//! each opened port with its backend, worker and UP/DOWN state, each worker with the core
//! it is pinned to, when the policy in force was published and when the switch started.
//!
//! Owns: [`Facts`] (written once by a worker thread when it pins itself, and by
//! [`Switch::start`] / [`Switch::apply`] when an epoch is published) and the view types.
//! May not change anything: every method here only reads the control state under its
//! lock, for a moment, and copies out.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use super::supervise::PortDown;
use super::{lock, Switch};
use crate::policy::Backend;

/// Milliseconds since the Unix epoch, now.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What a switch records for its view.
#[derive(Debug)]
pub(super) struct Facts {
    /// Per worker: the core it pinned itself to, -1 if not pinned.
    pub(super) cores: Arc<Vec<AtomicI64>>,
    /// When the switch started (ms since the Unix epoch).
    started_ms: u64,
    /// When the policy in force was published (ms since the Unix epoch).
    published_ms: AtomicU64,
}

impl Facts {
    pub(super) fn new(workers: usize) -> Facts {
        Facts {
            cores: Arc::new((0..workers).map(|_| AtomicI64::new(-1)).collect()),
            started_ms: now_ms(),
            published_ms: AtomicU64::new(0),
        }
    }

    /// An epoch was just published.
    pub(super) fn published(&self) {
        self.published_ms.store(now_ms(), Ordering::Relaxed);
    }
}

/// One port the switch opened (ports without a backend are not the switch's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortView {
    pub name: String,
    pub backend: Backend,
    /// The worker that drives it (its first queue's).
    pub worker: usize,
    /// Every worker driving a queue of it, queue 0's first (`[worker]` but for a
    /// multiqueue tap).
    pub workers: Vec<usize>,
    /// `Some` while its netdev is gone ([`super::supervise`]).
    pub down: Option<PortDown>,
}

impl PortView {
    /// `tap`, `afxdp` or `afpacket`, as the config names it.
    pub fn backend_kind(&self) -> &'static str {
        match self.backend {
            Backend::Tap { .. } => "tap",
            Backend::AfXdp { .. } => "afxdp",
            Backend::AfPacket { .. } => "afpacket",
        }
    }

    /// The interface under the port.
    pub fn ifname(&self) -> &str {
        match &self.backend {
            Backend::Tap { ifname, .. }
            | Backend::AfXdp { ifname, .. }
            | Backend::AfPacket { ifname } => ifname,
        }
    }
}

impl Switch {
    /// Every port the switch has opened (also those down), by name.
    pub fn port_views(&self) -> Vec<PortView> {
        let mut v: Vec<PortView> = lock(&self.control)
            .open
            .iter()
            .map(|(name, o)| PortView {
                name: name.clone(),
                backend: o.backend.clone(),
                worker: o.worker,
                workers: o.workers.clone(),
                down: self.health.down(name),
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Per worker, the core it is pinned to (`None`: not pinned, or not started yet).
    pub fn worker_cores(&self) -> Vec<Option<usize>> {
        self.facts
            .cores
            .iter()
            .map(|c| usize::try_from(c.load(Ordering::Relaxed)).ok())
            .collect()
    }

    /// When the switch started, in ms since the Unix epoch.
    pub fn started_ms(&self) -> u64 {
        self.facts.started_ms
    }

    /// When the policy in force was published, in ms since the Unix epoch (0: never).
    pub fn published_ms(&self) -> u64 {
        self.facts.published_ms.load(Ordering::Relaxed)
    }
}
