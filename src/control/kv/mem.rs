//! [`MemKv`]: the in-process [`Kv`] backend with etcd's semantics, exactly where the
//! control plane can tell: one global revision (1 when empty; every transaction that
//! changes something bumps it by one, one that changes nothing does not), per-key
//! create/mod revisions, all-or-nothing transactions, reads at an older revision from
//! the kept history, compaction (`Compacted` for reads and watches before it), watchers
//! whose targets come and go while they run and replay history from their start
//! revision before going live, and leases that delete their keys when revoked or expired.
//!
//! It is the local store's revision and watch engine (single host: no etcd, same code
//! paths) and the test double for everything above [`Kv`]. Cloning is cheap: the clones
//! share one store.
//!
//! # How it runs
//! State is one mutex ([`State`]). Writers never call user code: a committed revision
//! appends its events to the log and wakes the store's **engine thread**, which hands
//! each watcher's new events to its sink (on that thread, as the trait says) and expires
//! leases whose holder abandoned them. A watcher's targets live behind its own mutex,
//! held while the engine delivers to it; `remove` and `drop` take it too, so once they
//! return nothing more reaches the sink for that target. Lock order: a watcher's
//! targets, then the state. The engine holds only a weak reference between rounds and
//! ends within [`IDLE_TICK`] of the last handle (store, watcher, lease) going away.
//!
//! Leases: a live [`Lease`] handle keeps its lease alive (in-process there is nothing to
//! miss), dropping it revokes the lease; [`Lease::abandon`] stops the keep-alive so the
//! lease expires `ttl` seconds later, like a holder that crashed.
//!
//! Deliberate differences from etcd (none visible through [`Kv`]): lease ids count up
//! from 1 instead of being random; a revision's events are kept twice (in the key's
//! history for reads and in the log for watches) until compacted.
//!
//! Owns: the in-process store. May not know: what the keys mean, the dataplane.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use super::{
    check_txn_ops, txn_request_size, Compare, Event, Health, KeyValue, Kv, KvError, Lease, LeaseId,
    Op, Revision, Sink, Snapshot, Target, Txn, TxnOutcome, WatchMsg, Watcher,
    ETCD_MAX_REQUEST_BYTES,
};

/// How often the idle engine thread checks whether its store is gone.
const IDLE_TICK: Duration = Duration::from_millis(200);

/// At most this many events per [`WatchMsg::Events`] (more go in the next message,
/// split between revisions, never inside one).
const EVENTS_PER_MESSAGE: usize = 4096;

/// How a [`MemKv`] is set up.
#[derive(Clone, Debug)]
pub struct MemKvOptions {
    /// Refuse a transaction larger than this ([`super::txn_request_size`]) with
    /// `TooLarge`, like etcd (`None`: no limit). Default: etcd's 1.5 MiB.
    pub max_request_bytes: Option<usize>,
    /// Compact by itself so that at most this many revisions of history are kept
    /// (`None`: only [`Kv::compact`] compacts). Default: `None`.
    pub retain_revisions: Option<u64>,
}

impl Default for MemKvOptions {
    fn default() -> Self {
        MemKvOptions {
            max_request_bytes: Some(ETCD_MAX_REQUEST_BYTES),
            retain_revisions: None,
        }
    }
}

/// The in-process store (see the module doc). `MemKv::new()` for etcd's defaults.
#[derive(Clone)]
pub struct MemKv {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the engine: a revision committed, a target added, a lease abandoned.
    wake: Condvar,
    opts: MemKvOptions,
}

/// One version of a key; `value == None` is a deletion (a tombstone).
struct Version {
    mod_revision: Revision,
    create_revision: Revision,
    value: Option<Vec<u8>>,
    lease: LeaseId,
}

struct LeaseState {
    ttl: i64,
    /// `None` while a handle keeps it alive; else when it expires.
    expires: Option<Instant>,
    keys: BTreeSet<String>,
}

struct State {
    revision: Revision,
    /// Reads before this revision answer `Compacted` (0: nothing compacted yet).
    compact_revision: Revision,
    /// Every key's versions, oldest first; after compaction at `c` each key keeps its
    /// last version at or before `c` (unless a deletion) and every later one.
    keys: BTreeMap<String, Vec<Version>>,
    /// The events of revisions `log_start..=revision` (no gaps: each revision has some).
    log: VecDeque<Vec<Event>>,
    log_start: Revision,
    leases: HashMap<LeaseId, LeaseState>,
    next_lease: LeaseId,
    watchers: BTreeMap<u64, Arc<WatchCore>>,
    next_watcher: u64,
    /// Something for the engine to do.
    dirty: bool,
}

struct WatchCore {
    sink: Sink,
    /// Each target with the next revision to deliver.
    targets: Mutex<BTreeMap<Target, Revision>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves consistent data here (every write is
    // validated before the first change), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Default for MemKv {
    fn default() -> Self {
        MemKv::new()
    }
}

impl MemKv {
    /// An empty store with etcd's defaults (revision 1, 1.5 MiB per transaction, history
    /// kept until compacted).
    pub fn new() -> MemKv {
        MemKv::with_options(MemKvOptions::default())
    }

    pub fn with_options(opts: MemKvOptions) -> MemKv {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                revision: 1,
                compact_revision: 0,
                keys: BTreeMap::new(),
                log: VecDeque::new(),
                log_start: 2,
                leases: HashMap::new(),
                next_lease: 1,
                watchers: BTreeMap::new(),
                next_watcher: 1,
                dirty: false,
            }),
            wake: Condvar::new(),
            opts,
        });
        let weak = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("memkv-engine".into())
            .spawn(move || engine(weak))
            .expect("spawn the MemKv engine thread");
        MemKv { shared }
    }

    /// The store's revision now.
    pub fn revision(&self) -> Revision {
        lock(&self.shared.state).revision
    }

    /// The oldest revision still readable (0: nothing compacted yet).
    pub fn compact_revision(&self) -> Revision {
        lock(&self.shared.state).compact_revision
    }

    /// The leases alive now (tests: a revoked or expired lease is gone).
    pub fn lease_ids(&self) -> Vec<LeaseId> {
        let mut v: Vec<_> = lock(&self.shared.state).leases.keys().copied().collect();
        v.sort_unstable();
        v
    }
}

impl Shared {
    fn notify(&self, st: &mut State) {
        st.dirty = true;
        self.wake.notify_all();
    }
}

impl State {
    /// The version of `key` visible at `rev` (None: absent then).
    fn visible(&self, key: &str, rev: Revision) -> Option<KeyValue> {
        let versions = self.keys.get(key)?;
        let v = versions.iter().rev().find(|v| v.mod_revision <= rev)?;
        Some(KeyValue {
            key: key.to_string(),
            value: v.value.clone()?,
            create_revision: v.create_revision,
            mod_revision: v.mod_revision,
            lease: v.lease,
        })
    }

    fn current(&self, key: &str) -> Option<&Version> {
        self.keys
            .get(key)
            .and_then(|v| v.last())
            .filter(|v| v.value.is_some())
    }

    /// The revision a read at `at` sees, or why it cannot.
    fn read_revision(&self, at: Option<Revision>) -> Result<Revision, KvError> {
        match at {
            None => Ok(self.revision),
            Some(r) if r <= 0 => Ok(self.revision),
            Some(r) if r < self.compact_revision => Err(KvError::Compacted {
                requested: r,
                compact_revision: self.compact_revision,
            }),
            Some(r) if r > self.revision => Err(KvError::Invalid(format!(
                "revision {r} is in the future (the store is at {})",
                self.revision
            ))),
            Some(r) => Ok(r),
        }
    }

    fn holds(&self, c: &Compare) -> bool {
        match c {
            Compare::ModRevision { key, revision } => {
                self.current(key).map_or(0, |v| v.mod_revision) == *revision
            }
            Compare::Absent { key } => self.current(key).is_none(),
            Compare::Present { key } => self.current(key).is_some(),
        }
    }

    /// Apply `ops` at `self.revision + 1` (validated: leases exist, no duplicates).
    /// Returns the events (none: nothing changed, no new revision).
    fn apply(&mut self, ops: Vec<Op>) -> Vec<Event> {
        let rev = self.revision + 1;
        let mut events = Vec::new();
        for op in ops {
            match op {
                Op::Put { key, value, lease } => {
                    let lease = lease.unwrap_or(0);
                    let (create, old_lease) = match self.current(&key) {
                        Some(v) => (v.create_revision, v.lease),
                        None => (rev, 0),
                    };
                    self.rebind(&key, old_lease, lease);
                    self.keys.entry(key.clone()).or_default().push(Version {
                        mod_revision: rev,
                        create_revision: create,
                        value: Some(value.clone()),
                        lease,
                    });
                    events.push(Event::Put(KeyValue {
                        key,
                        value,
                        create_revision: create,
                        mod_revision: rev,
                        lease,
                    }));
                }
                Op::Delete { key } => self.delete(&key, rev, &mut events),
                Op::DeletePrefix { prefix } => {
                    let live: Vec<String> = self
                        .keys
                        .range(prefix.clone()..)
                        .take_while(|(k, _)| k.starts_with(prefix.as_str()))
                        .filter(|(_, v)| v.last().is_some_and(|v| v.value.is_some()))
                        .map(|(k, _)| k.clone())
                        .collect();
                    for key in live {
                        self.delete(&key, rev, &mut events);
                    }
                }
            }
        }
        if !events.is_empty() {
            self.revision = rev;
            self.log.push_back(events.clone());
        }
        events
    }

    fn delete(&mut self, key: &str, rev: Revision, events: &mut Vec<Event>) {
        let Some(old_lease) = self.current(key).map(|v| v.lease) else {
            return;
        };
        self.rebind(key, old_lease, 0);
        self.keys.entry(key.to_string()).or_default().push(Version {
            mod_revision: rev,
            create_revision: 0,
            value: None,
            lease: 0,
        });
        events.push(Event::Delete {
            key: key.to_string(),
            mod_revision: rev,
        });
    }

    fn rebind(&mut self, key: &str, old: LeaseId, new: LeaseId) {
        if old == new {
            return;
        }
        if let Some(l) = self.leases.get_mut(&old) {
            l.keys.remove(key);
        }
        if let Some(l) = self.leases.get_mut(&new) {
            l.keys.insert(key.to_string());
        }
    }

    fn compact(&mut self, rev: Revision) {
        // Drop the log before `rev`; the keys those events touched shed their old versions.
        let mut touched = BTreeSet::new();
        while self.log_start < rev {
            let Some(events) = self.log.pop_front() else {
                break;
            };
            self.log_start += 1;
            touched.extend(events.into_iter().map(|e| e.key().to_string()));
        }
        self.log_start = self.log_start.max(rev);
        for key in touched {
            let Some(versions) = self.keys.get_mut(&key) else {
                continue;
            };
            // Keep the last version at or before `rev` (unless a deletion) and later ones.
            if let Some(i) = versions.iter().rposition(|v| v.mod_revision <= rev) {
                let keep_it = versions[i].value.is_some();
                versions.drain(..if keep_it { i } else { i + 1 });
            }
            if versions.is_empty() {
                self.keys.remove(&key);
            }
        }
        self.compact_revision = rev;
    }

    /// Revoke lease `id`: its keys go in one revision. False if it was gone already.
    fn revoke(&mut self, id: LeaseId) -> bool {
        let Some(lease) = self.leases.remove(&id) else {
            return false;
        };
        let ops = lease
            .keys
            .into_iter()
            .map(|key| Op::Delete { key })
            .collect();
        self.apply(ops);
        true
    }
}

impl Kv for MemKv {
    fn get(
        &self,
        key: &str,
        at: Option<Revision>,
    ) -> Result<(Option<KeyValue>, Revision), KvError> {
        let st = lock(&self.shared.state);
        let rev = st.read_revision(at)?;
        Ok((st.visible(key, rev), rev))
    }

    fn range(&self, prefix: &str, at: Option<Revision>) -> Result<Snapshot, KvError> {
        let st = lock(&self.shared.state);
        let revision = st.read_revision(at)?;
        let kvs = st
            .keys
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter_map(|(k, _)| st.visible(k, revision))
            .collect();
        Ok(Snapshot { revision, kvs })
    }

    fn txn(&self, txn: Txn) -> Result<TxnOutcome, KvError> {
        if let Some(limit) = self.shared.opts.max_request_bytes {
            let size = txn_request_size(&txn);
            if size > limit {
                return Err(KvError::TooLarge {
                    what: "the transaction".into(),
                    size,
                    limit,
                });
            }
        }
        check_txn_ops(&txn.ops)?;
        let mut st = lock(&self.shared.state);
        if !txn.compares.iter().all(|c| st.holds(c)) {
            return Ok(TxnOutcome::Failed {
                revision: st.revision,
            });
        }
        for op in &txn.ops {
            if let Op::Put {
                lease: Some(id), ..
            } = op
            {
                if *id != 0 && !st.leases.contains_key(id) {
                    return Err(KvError::Invalid(format!("lease {id} not found")));
                }
            }
        }
        let events = st.apply(txn.ops);
        if !events.is_empty() {
            if let Some(keep) = self.shared.opts.retain_revisions {
                // Compact in steps of half the window so each step is amortized.
                let keep = keep.max(1) as Revision;
                if st.revision - st.compact_revision.max(1) >= keep + keep / 2 {
                    let to = st.revision - keep + 1;
                    st.compact(to);
                }
            }
            self.shared.notify(&mut st);
        }
        Ok(TxnOutcome::Committed {
            revision: st.revision,
        })
    }

    fn watcher(&self, sink: Sink) -> Result<Box<dyn Watcher>, KvError> {
        let core = Arc::new(WatchCore {
            sink,
            targets: Mutex::new(BTreeMap::new()),
        });
        let mut st = lock(&self.shared.state);
        let id = st.next_watcher;
        st.next_watcher += 1;
        st.watchers.insert(id, core.clone());
        Ok(Box::new(MemWatcher {
            shared: self.shared.clone(),
            core,
            id,
        }))
    }

    fn grant_lease(&self, ttl: i64) -> Result<Box<dyn Lease>, KvError> {
        if ttl <= 0 {
            return Err(KvError::Invalid(format!(
                "a lease TTL must be at least 1 second, not {ttl}"
            )));
        }
        let mut st = lock(&self.shared.state);
        let id = st.next_lease;
        st.next_lease += 1;
        st.leases.insert(
            id,
            LeaseState {
                ttl,
                expires: None,
                keys: BTreeSet::new(),
            },
        );
        Ok(Box::new(MemLease {
            shared: self.shared.clone(),
            id,
            ttl,
            abandoned: false,
        }))
    }

    fn compact(&self, revision: Revision) -> Result<(), KvError> {
        let mut st = lock(&self.shared.state);
        if revision <= st.compact_revision {
            return Err(KvError::Compacted {
                requested: revision,
                compact_revision: st.compact_revision,
            });
        }
        if revision > st.revision {
            return Err(KvError::Invalid(format!(
                "cannot compact at revision {revision}: the store is at {}",
                st.revision
            )));
        }
        st.compact(revision);
        // Watch targets behind the compaction learn it from the engine.
        self.shared.notify(&mut st);
        Ok(())
    }

    fn health(&self) -> Health {
        Health::Connected
    }

    fn describe(&self) -> String {
        "local".to_string()
    }
}

struct MemWatcher {
    shared: Arc<Shared>,
    core: Arc<WatchCore>,
    id: u64,
}

impl Watcher for MemWatcher {
    fn add(&mut self, target: Target, from: Revision) -> Result<(), KvError> {
        let mut targets = lock(&self.core.targets);
        if targets.contains_key(&target) {
            return Err(KvError::Invalid(format!("{target} is watched already")));
        }
        let mut st = lock(&self.shared.state);
        let from = if from <= 0 { st.revision + 1 } else { from };
        targets.insert(target, from);
        self.shared.notify(&mut st);
        Ok(())
    }

    fn remove(&mut self, target: &Target) -> Result<(), KvError> {
        match lock(&self.core.targets).remove(target) {
            Some(_) => Ok(()),
            None => Err(KvError::Invalid(format!("{target} is not watched"))),
        }
    }

    fn targets(&self) -> Vec<Target> {
        lock(&self.core.targets).keys().cloned().collect()
    }
}

impl Drop for MemWatcher {
    fn drop(&mut self) {
        lock(&self.core.targets).clear();
        lock(&self.shared.state).watchers.remove(&self.id);
    }
}

struct MemLease {
    shared: Arc<Shared>,
    id: LeaseId,
    ttl: i64,
    abandoned: bool,
}

impl Lease for MemLease {
    fn id(&self) -> LeaseId {
        self.id
    }
    fn ttl(&self) -> i64 {
        self.ttl
    }
    fn abandon(mut self: Box<Self>) {
        self.abandoned = true;
        let mut st = lock(&self.shared.state);
        if let Some(l) = st.leases.get_mut(&self.id) {
            l.expires = Some(Instant::now() + Duration::from_secs(l.ttl as u64));
        }
        self.shared.notify(&mut st);
    }
}

impl Drop for MemLease {
    fn drop(&mut self) {
        if self.abandoned {
            return;
        }
        let mut st = lock(&self.shared.state);
        if st.revoke(self.id) {
            self.shared.notify(&mut st);
        }
    }
}

/// The engine thread: expires abandoned leases and delivers to watchers.
fn engine(weak: Weak<Shared>) {
    loop {
        let Some(shared) = weak.upgrade() else {
            return;
        };
        let mut st = lock(&shared.state);
        let now = Instant::now();
        let next_expiry = st.leases.values().filter_map(|l| l.expires).min();
        if !st.dirty && next_expiry.is_none_or(|t| t > now) {
            let wait = next_expiry.map_or(IDLE_TICK, |t| (t - now).min(IDLE_TICK));
            st = shared
                .wake
                .wait_timeout(st, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let now = Instant::now();
        let expired: Vec<LeaseId> = st
            .leases
            .iter()
            .filter(|(_, l)| l.expires.is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            st.revoke(id);
            st.dirty = true;
        }
        if !st.dirty {
            continue;
        }
        st.dirty = false;
        let watchers: Vec<Arc<WatchCore>> = st.watchers.values().cloned().collect();
        drop(st);
        for w in watchers {
            deliver(&shared, &w);
        }
    }
}

/// Hand `w` every event it has not seen yet (and `Compacted` for targets behind the
/// compaction), holding its targets so `remove` waits for a delivery in flight.
fn deliver(shared: &Shared, w: &WatchCore) {
    let mut targets = lock(&w.targets);
    let mut msgs = Vec::new();
    {
        let st = lock(&shared.state);
        let mut gone = Vec::new();
        for (target, next) in targets.iter_mut() {
            if *next > st.revision {
                continue;
            }
            if *next < st.compact_revision {
                msgs.push(WatchMsg::Compacted {
                    target: target.clone(),
                    compact_revision: st.compact_revision,
                });
                gone.push(target.clone());
                continue;
            }
            let first = (*next - st.log_start).max(0) as usize;
            let mut events = Vec::new();
            for batch in st.log.range(first..) {
                if events.len() >= EVENTS_PER_MESSAGE {
                    msgs.push(WatchMsg::Events {
                        target: target.clone(),
                        events: std::mem::take(&mut events),
                    });
                }
                events.extend(batch.iter().filter(|e| target.covers(e.key())).cloned());
            }
            if !events.is_empty() {
                msgs.push(WatchMsg::Events {
                    target: target.clone(),
                    events,
                });
            }
            *next = st.revision + 1;
        }
        for t in gone {
            targets.remove(&t);
        }
    }
    for m in msgs {
        (w.sink)(m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_thread_ends_with_the_last_handle() {
        let kv = MemKv::new();
        let weak = Arc::downgrade(&kv.shared);
        let w = kv.watcher(Arc::new(|_| {})).unwrap();
        let l = kv.grant_lease(1).unwrap();
        drop(kv);
        drop(w);
        drop(l);
        let end = Instant::now() + IDLE_TICK * 10;
        while weak.strong_count() > 0 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            weak.strong_count(),
            0,
            "the engine thread still holds the store"
        );
    }
}
