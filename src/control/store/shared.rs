//! The store's **shared mode** ([`Store::open_shared`]): the committed state lives in a
//! [`Kv`] (etcd) under one prefix, shared by every API server and host.
//!
//! * **Cache.** A watch on the whole prefix feeds a cache thread, which keeps every key
//!   (`kvs`), the [`State`] decoded from them ([`codec::state_from_kvs`], whole, after
//!   each revision that touched an object key), the revision it reflects, the mod
//!   revision of `write-seq`, and the live hosts and their status keys. `snapshot()`
//!   serves the cached state. A revision whose keys do not decode keeps the previous
//!   state (the error is kept for `/healthz`) but still advances the revision; writes
//!   are refused (500, naming the key) until a later revision decodes.
//! * **Writes.** `mutate` changes a clone of the cached state, turns it into keys and
//!   diffs them with the cached state's keys ([`codec::diff`]), and writes the
//!   difference as ONE transaction that compares `write-seq`'s mod revision with the one
//!   the cache saw and bumps it. Every API write does, so a transaction that commits was
//!   computed from the latest state: no update is lost between servers.
//!   - Committed at revision R: the call returns once this server's cache reached R
//!     (read-your-writes on this server; another server shows the write once its cache
//!     reached R, see [`Store::wait_for_revision`]).
//!   - Compare failed: another server wrote first. Wait for the cache to reach the
//!     revision the store reported, and run the change again on the fresh state (at
//!     most [`MAX_ATTEMPTS`] times): its 409s (duplicate rule, group in use, `default`
//!     exists) then come from the state that won, so two concurrent creations of one
//!     project's `default` give one group.
//!   - `Unavailable` → [`StoreError::Unavailable`] (503, naming the store); `TooLarge` →
//!     [`StoreError::TooLarge`] (413). Nothing is written in either case.
//!   - The apply hook is not called: hosts apply from their own watches.
//! * **Schema.** On open, an absent `schema` key is written together with the seed state
//!   (compare: absent; a concurrent first open loses and reads the winner's state); a
//!   key with another version refuses to open ([`StoreError::Schema`]).
//! * **Port status.** The cached state carries the live hosts (`hosts/`, bound to their
//!   leases): a port bound to a host whose key is gone shows `status: DOWN`
//!   ([`State::bound_host_down`]); a host's arrival or expiry replaces the state with one
//!   whose set changed (no decode).
//! * **Index repair.** On open, the `net-ports/` keys the decoded state implies are
//!   compared with the stored ones and the difference written (one transaction comparing
//!   `write-seq`): a prefix written before the index existed gains it.
//! * **Applied.** [`Store::wait_applied_last_write`] waits until every live host
//!   (`hosts/`) whose interest set holds a key this thread's last write changed reports
//!   `status/HOST` `applied_revision >= R` (that write's revision), or times out naming
//!   the hosts that lag ([`StoreError::Lagging`], 504).
//!
//! Owns: the cache and the shared write path. May not touch: the key layout (that is
//! `shared::layout`) or the value conversions (`shared::codec`), the apply hook.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread;
use std::time::{Duration, Instant};

use super::error::StoreError;
use super::ids::now_secs;
use super::state::{seed_state, State};
use super::Store;
use crate::control::kv::{
    Compare, Event, Health, Kv, KvError, Op, Revision, Target, Txn, TxnOutcome, WatchMsg, Watcher,
};
use crate::control::shared::codec::{self, CodecError};
use crate::control::shared::interest::interest;
use crate::control::shared::layout::{HostValue, Keys, SchemaValue, StatusValue, SCHEMA_VERSION};

/// How often a write is tried again after another server wrote first.
pub const MAX_ATTEMPTS: usize = 32;

/// How long a write waits for this server's cache to show it before answering 503.
const CACHE_WAIT: Duration = Duration::from_secs(10);

/// What the cache holds (behind one mutex; the state itself is an `Arc`).
pub(super) struct Cache {
    /// Every key under the prefix with its value (hosts and status included).
    kvs: BTreeMap<String, Vec<u8>>,
    /// The decoded state (the last that decoded).
    state: Arc<State>,
    /// The store revision the cache reflects.
    revision: Revision,
    /// `write-seq`'s mod revision (0: absent).
    write_seq_rev: Revision,
    write_seq: u64,
    /// Reachability, as the watch reports it.
    health: Health,
    /// The last revision whose keys did not decode (kept state: the previous one).
    decode_error: Option<CodecError>,
}

/// The shared-mode part of a [`Store`].
pub(super) struct Shared {
    kv: Arc<dyn Kv>,
    /// `kv.describe()` at open (asking again may wait for an unreachable store).
    describe: String,
    keys: Keys,
    cache: Mutex<Cache>,
    moved: Condvar,
    /// Keeps the watch alive (dropped with the store, which ends the cache thread).
    _watcher: Mutex<Box<dyn Watcher>>,
}

/// What `/healthz` and `/metrics` show of a shared store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedStatus {
    /// `"etcd 3.4.23 at 127.0.0.1:2379"`.
    pub store: String,
    pub prefix: String,
    pub health: Health,
    /// The revision the cache reflects.
    pub revision: Revision,
    /// The last revision whose keys did not decode, in words.
    pub decode_error: Option<String>,
}

fn lock(m: &Mutex<Cache>) -> MutexGuard<'_, Cache> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn unavailable(store: &str, e: &str) -> StoreError {
    StoreError::Unavailable {
        store: store.to_string(),
        message: e.to_string(),
    }
}

fn kv_error(store: &str, e: KvError) -> StoreError {
    match e {
        KvError::Unavailable(m) => unavailable(store, &m),
        KvError::TooLarge { what, size, limit } => StoreError::TooLarge {
            message: format!(
                "the change is too large for the shared store: {what} is {size} bytes, over its limit of {limit} bytes; nothing was written"
            ),
        },
        e => StoreError::Shared {
            message: format!("the shared store ({store}) failed: {e}"),
        },
    }
}

/// The state the keys hold, with the live hosts (`hosts/`) for the ports' status.
fn decode_state(keys: &Keys, kvs: &BTreeMap<String, Vec<u8>>) -> Result<State, CodecError> {
    let mut s = codec::state_from_kvs(keys, kvs)?;
    s.live_hosts = Some(live_host_set(keys, kvs));
    Ok(s)
}

fn live_host_set(keys: &Keys, kvs: &BTreeMap<String, Vec<u8>>) -> Arc<BTreeSet<String>> {
    Arc::new(live_hosts(keys, kvs).into_iter().collect())
}

/// Whether a key is one the state is decoded from (not hosts, status, schema, write-seq).
fn is_object_key(keys: &Keys, k: &str) -> bool {
    let p = keys.prefix();
    let Some(rest) = k.strip_prefix(p) else {
        return false;
    };
    !(rest.starts_with("hosts/")
        || rest.starts_with("status/")
        || rest == "schema"
        || rest == "write-seq")
}

impl Shared {
    pub(super) fn open(
        kv: Arc<dyn Kv>,
        keys: Keys,
        seed: &crate::policy::Model,
    ) -> Result<Arc<Shared>, StoreError> {
        // Where the store is, for messages: its own words once it answers, else the
        // first error names it.
        let snap0 = kv.range(&keys.schema(), None);
        let describe = kv.describe();
        let kvd = describe.as_str();
        snap0.map_err(|e| kv_error(kvd, e))?;
        let schema_key = keys.schema();
        // Read; absent schema: write it with the seed (a concurrent first open loses the
        // compare and reads the winner's keys).
        let snapshot = loop {
            let snap = kv
                .range(keys.prefix(), None)
                .map_err(|e| kv_error(kvd, e))?;
            match snap.kvs.iter().find(|k| k.key == schema_key) {
                Some(found) => {
                    let v: SchemaValue = codec::decode(&schema_key, &found.value).map_err(|e| {
                        StoreError::Shared {
                            message: e.to_string(),
                        }
                    })?;
                    if v.schema_version != SCHEMA_VERSION {
                        return Err(StoreError::Schema {
                            key: schema_key,
                            found: v.schema_version,
                            written_by: v.written_by,
                            expected: SCHEMA_VERSION,
                        });
                    }
                    break snap;
                }
                None => {
                    // Validated as a whole (an empty seed gains its `default` group).
                    let seed = crate::policy::validate::validate_model(
                        &super::to_spec::model_to_spec(seed),
                    )
                    .map_err(|e| StoreError::Shared {
                        message: format!("the seed does not validate: {e}"),
                    })?;
                    let state = seed_state(&seed);
                    let mut ops: Vec<Op> = codec::state_to_kvs(&keys, &state)
                        .into_iter()
                        .map(|(key, value)| Op::Put {
                            key,
                            value,
                            lease: None,
                        })
                        .collect();
                    let schema = SchemaValue {
                        schema_version: SCHEMA_VERSION,
                        written_by: format!("sgswitch {}", env!("CARGO_PKG_VERSION")),
                    };
                    ops.push(Op::Put {
                        key: schema_key.clone(),
                        value: serde_json::to_vec(&schema).unwrap_or_default(),
                        lease: None,
                    });
                    ops.push(Op::Put {
                        key: keys.write_seq(),
                        value: b"1".to_vec(),
                        lease: None,
                    });
                    let txn = Txn {
                        compares: vec![Compare::Absent {
                            key: schema_key.clone(),
                        }],
                        ops,
                    };
                    kv.txn(txn).map_err(|e| kv_error(kvd, e))?;
                }
            }
        };
        let kvs: BTreeMap<String, Vec<u8>> = snapshot
            .kvs
            .iter()
            .map(|k| (k.key.clone(), k.value.clone()))
            .collect();
        let state = decode_state(&keys, &kvs).map_err(|e| StoreError::Shared {
            message: format!("the shared store ({kvd}) holds a state that does not decode: {e}"),
        })?;
        let ws = snapshot.kvs.iter().find(|k| k.key == keys.write_seq());
        repair_net_ports(
            kv.as_ref(),
            &keys,
            &kvs,
            &state,
            ws.map_or(0, |k| k.mod_revision),
        );
        let cache = Cache {
            state: Arc::new(state),
            revision: snapshot.revision,
            write_seq_rev: ws.map_or(0, |k| k.mod_revision),
            write_seq: ws
                .and_then(|k| std::str::from_utf8(&k.value).ok()?.trim().parse().ok())
                .unwrap_or(0),
            kvs,
            health: Health::Connected,
            decode_error: None,
        };
        let (tx, rx) = mpsc::channel::<WatchMsg>();
        let sink: crate::control::kv::Sink = Arc::new(move |m| {
            let _ = tx.send(m);
        });
        let mut watcher = kv.watcher(sink).map_err(|e| kv_error(kvd, e))?;
        watcher
            .add(
                Target::Prefix(keys.prefix().to_string()),
                snapshot.revision + 1,
            )
            .map_err(|e| kv_error(kvd, e))?;
        let shared = Arc::new(Shared {
            kv,
            describe,
            keys,
            cache: Mutex::new(cache),
            moved: Condvar::new(),
            _watcher: Mutex::new(watcher),
        });
        let weak = Arc::downgrade(&shared);
        thread::Builder::new()
            .name("store-cache".into())
            .spawn(move || cache_thread(weak, rx))
            .map_err(|e| StoreError::Shared {
                message: format!("cannot start the cache thread: {e}"),
            })?;
        Ok(shared)
    }

    pub(super) fn snapshot(&self) -> Arc<State> {
        Arc::clone(&lock(&self.cache).state)
    }

    pub(super) fn revision(&self) -> Revision {
        lock(&self.cache).revision
    }

    pub(super) fn status(&self) -> SharedStatus {
        let c = lock(&self.cache);
        SharedStatus {
            store: self.describe.clone(),
            prefix: self.keys.prefix().to_string(),
            health: c.health.clone(),
            revision: c.revision,
            decode_error: c.decode_error.as_ref().map(|e| e.to_string()),
        }
    }

    /// Wait until the cache reflects `revision` (false on timeout).
    pub(super) fn wait_for(&self, revision: Revision, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut c = lock(&self.cache);
        while c.revision < revision {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            c = match self.moved.wait_timeout(c, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        true
    }

    fn apply_events(&self, events: &[Event]) {
        let mut c = lock(&self.cache);
        let mut objects = false;
        let mut hosts = false;
        let mut revision = c.revision;
        let hosts_prefix = self.keys.hosts();
        for e in events {
            revision = revision.max(e.revision());
            objects |= is_object_key(&self.keys, e.key());
            hosts |= e.key().starts_with(&hosts_prefix);
            match e {
                Event::Put(kv) => {
                    if kv.key == self.keys.write_seq() {
                        c.write_seq_rev = kv.mod_revision;
                        c.write_seq = std::str::from_utf8(&kv.value)
                            .ok()
                            .and_then(|s| s.trim().parse().ok())
                            .unwrap_or(c.write_seq);
                    }
                    c.kvs.insert(kv.key.clone(), kv.value.clone());
                }
                Event::Delete { key, .. } => {
                    if *key == self.keys.write_seq() {
                        c.write_seq_rev = 0;
                    }
                    c.kvs.remove(key);
                }
            }
        }
        if objects {
            match decode_state(&self.keys, &c.kvs) {
                Ok(s) => {
                    c.state = Arc::new(s);
                    c.decode_error = None;
                }
                Err(e) => {
                    tracing::error!(revision, error = %e, "the shared state at this revision does not decode: keeping the previous one");
                    c.decode_error = Some(e);
                }
            }
        }
        let live = hosts.then(|| live_host_set(&self.keys, &c.kvs));
        if let Some(live) = live.filter(|l| c.state.live_hosts.as_ref() != Some(l)) {
            // A host came or its lease expired: the ports' status changes.
            let mut s = State::clone(&c.state);
            s.live_hosts = Some(live);
            c.state = Arc::new(s);
        }
        c.revision = revision;
        drop(c);
        self.moved.notify_all();
    }

    /// Reload every key at one revision (after a compaction hid the next one).
    fn resync(&self) -> Result<Revision, KvError> {
        let snap = self.kv.range(self.keys.prefix(), None)?;
        let mut c = lock(&self.cache);
        c.kvs = snap
            .kvs
            .iter()
            .map(|k| (k.key.clone(), k.value.clone()))
            .collect();
        let ws = snap.kvs.iter().find(|k| k.key == self.keys.write_seq());
        c.write_seq_rev = ws.map_or(0, |k| k.mod_revision);
        match decode_state(&self.keys, &c.kvs) {
            Ok(s) => {
                c.state = Arc::new(s);
                c.decode_error = None;
            }
            Err(e) => c.decode_error = Some(e),
        }
        c.revision = c.revision.max(snap.revision);
        drop(c);
        self.moved.notify_all();
        Ok(snap.revision)
    }

    /// The shared path of `Store::mutate` (see the module doc).
    pub(super) fn mutate<T>(
        &self,
        change: &mut dyn FnMut(&mut State, u64) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let kvd = self.describe.as_str();
        for _ in 0..MAX_ATTEMPTS {
            let (old, seq_rev, seq) = {
                let c = lock(&self.cache);
                if let Health::Unreachable { error, .. } = &c.health {
                    return Err(unavailable(kvd, error));
                }
                if let Some(e) = &c.decode_error {
                    // A write would commit and stay invisible here: refuse until fixed.
                    return Err(StoreError::Shared {
                        message: format!(
                            "the shared state does not decode ({e}); writes are refused until that key is fixed"
                        ),
                    });
                }
                (Arc::clone(&c.state), c.write_seq_rev, c.write_seq)
            };
            let mut candidate = State::clone(&old);
            let out = change(&mut candidate, now_secs())?;
            debug_assert!(candidate.check().is_ok(), "{:?}", candidate.check());
            let before = codec::state_to_kvs(&self.keys, &old);
            let after = codec::state_to_kvs(&self.keys, &candidate);
            let mut ops = codec::diff(&before, &after);
            if ops.is_empty() {
                return Ok(out);
            }
            let written: Vec<String> = ops.iter().map(op_key).map(str::to_string).collect();
            ops.push(Op::Put {
                key: self.keys.write_seq(),
                value: (seq + 1).to_string().into_bytes(),
                lease: None,
            });
            let txn = Txn {
                compares: vec![Compare::ModRevision {
                    key: self.keys.write_seq(),
                    revision: seq_rev,
                }],
                ops,
            };
            match self.kv.txn(txn).map_err(|e| kv_error(kvd, e))? {
                TxnOutcome::Committed { revision } => {
                    LAST_WRITE.with(|w| *w.borrow_mut() = Some((revision, written)));
                    if !self.wait_for(revision, CACHE_WAIT) {
                        return Err(unavailable(
                            kvd,
                            &format!(
                                "the write committed at revision {revision} but this server's cache did not reach it within {} s",
                                CACHE_WAIT.as_secs()
                            ),
                        ));
                    }
                    return Ok(out);
                }
                TxnOutcome::Failed { revision } => {
                    // Another server wrote first: catch up and run the change again.
                    if !self.wait_for(revision, CACHE_WAIT) {
                        return Err(unavailable(
                            kvd,
                            "this server's cache does not catch up with the store",
                        ));
                    }
                }
            }
        }
        Err(StoreError::Shared {
            message: format!(
                "the write lost {MAX_ATTEMPTS} races with other API servers in a row; try again"
            ),
        })
    }

    /// The live hosts that lag behind this thread's last write: those whose interest
    /// set (computed from this server's cache, as the host computes it from its own)
    /// holds a key the write changed and whose status is below its revision. Without a
    /// write on this thread, none.
    pub(super) fn lagging_last_write(&self) -> (Revision, Vec<String>) {
        let Some((revision, written)) = LAST_WRITE.with(|w| w.borrow().clone()) else {
            return (0, Vec::new());
        };
        let c = lock(&self.cache);
        let mut out = Vec::new();
        for host in live_hosts(&self.keys, &c.kvs) {
            let targets = interest(&self.keys, &host, &c.kvs);
            if !written.iter().any(|k| targets.iter().any(|t| t.covers(k))) {
                continue;
            }
            if applied_revision(&self.keys, &c.kvs, &host) < revision {
                out.push(host);
            }
        }
        (revision, out)
    }
}

thread_local! {
    /// The revision and keys of the last write this thread committed (for
    /// `?wait=applied`, which the API asks on the thread that wrote).
    static LAST_WRITE: std::cell::RefCell<Option<(Revision, Vec<String>)>> =
        const { std::cell::RefCell::new(None) };
}

fn op_key(op: &Op) -> &str {
    match op {
        Op::Put { key, .. } | Op::Delete { key } => key,
        Op::DeletePrefix { prefix } => prefix,
    }
}

/// Write the `net-ports/` index keys a prefix lacks or holds stale (a prefix written
/// before the index existed, or by an API server that does not keep it), in one
/// transaction that compares `write-seq` (a concurrent write wins: the repair is skipped,
/// and done again at the next open). Its events reach the cache through the watch.
fn repair_net_ports(
    kv: &dyn Kv,
    keys: &Keys,
    kvs: &BTreeMap<String, Vec<u8>>,
    state: &State,
    write_seq_rev: Revision,
) {
    let prefix = keys.all_net_ports();
    let under = |m: &BTreeMap<String, Vec<u8>>| -> BTreeMap<String, Vec<u8>> {
        m.range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let have = under(kvs);
    let want = under(&codec::state_to_kvs(keys, state));
    let ops = codec::diff(&have, &want);
    if ops.is_empty() {
        return;
    }
    let n = ops.len();
    let txn = Txn {
        compares: vec![Compare::ModRevision {
            key: keys.write_seq(),
            revision: write_seq_rev,
        }],
        ops,
    };
    match kv.txn(txn) {
        Ok(TxnOutcome::Committed { revision }) => {
            tracing::info!(keys = n, revision, "the net-ports/ index was repaired")
        }
        Ok(TxnOutcome::Failed { .. }) => {
            tracing::info!("the net-ports/ index repair lost to a write: done at the next open")
        }
        Err(e) => tracing::warn!(error = %e, "the net-ports/ index could not be repaired"),
    }
}

/// The hosts under `hosts/` (their lease is alive).
fn live_hosts(keys: &Keys, kvs: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    let hosts = keys.hosts();
    kvs.range(hosts.clone()..)
        .take_while(|(k, _)| k.starts_with(&hosts))
        .map(|(k, v)| match serde_json::from_slice::<HostValue>(v) {
            Ok(h) => h.host_id,
            Err(_) => Keys::leaf(k).to_string(),
        })
        .collect()
}

/// The revision `host` reports applied in `status/HOST` (0: none).
fn applied_revision(keys: &Keys, kvs: &BTreeMap<String, Vec<u8>>, host: &str) -> Revision {
    kvs.get(&keys.status(host))
        .and_then(|s| serde_json::from_slice::<StatusValue>(s).ok())
        .map_or(0, |s| s.applied_revision)
}

/// The cache thread: applies watch messages until the store is dropped.
fn cache_thread(shared: Weak<Shared>, rx: mpsc::Receiver<WatchMsg>) {
    loop {
        let msg = match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(m) => m,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if shared.strong_count() == 0 {
                    return;
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let Some(s) = shared.upgrade() else {
            return;
        };
        match msg {
            WatchMsg::Events { events, .. } => s.apply_events(&events),
            WatchMsg::Health(h) => {
                let mut c = lock(&s.cache);
                if let Health::Unreachable { error, .. } = &h {
                    tracing::warn!(store = %s.describe, error, "the shared store is unreachable");
                }
                c.health = h;
                drop(c);
                s.moved.notify_all();
            }
            WatchMsg::Compacted { target, .. } => match s.resync() {
                Ok(rev) => {
                    let mut w = s._watcher.lock().unwrap_or_else(|e| e.into_inner());
                    let _ = w.remove(&target);
                    if let Err(e) = w.add(target, rev + 1) {
                        tracing::error!(error = %e, "cannot watch the shared store again");
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot reload the shared store"),
            },
        }
    }
}

impl Store {
    /// Open the store on a shared key-value store (see the module doc): the state under
    /// `keys`' prefix, or `seed`'s model written there first when the prefix holds no
    /// schema key. No state directory, no apply hook.
    pub fn open_shared(
        kv: Arc<dyn Kv>,
        keys: Keys,
        seed: &crate::control::config::Config,
    ) -> Result<Store, StoreError> {
        let shared = Shared::open(kv, keys, &seed.model)?;
        let mut store = Store::open(None, seed)?;
        store.shared = Some(shared);
        Ok(store)
    }

    /// The shared store's state (`None`: a local store).
    pub fn shared_status(&self) -> Option<SharedStatus> {
        self.shared.as_ref().map(|s| s.status())
    }

    /// The revision this server's state reflects (0: a local store).
    pub fn revision(&self) -> Revision {
        self.shared.as_ref().map_or(0, |s| s.revision())
    }

    /// Wait until this server's cache reflects `revision` (true at once for a local
    /// store; false on timeout). After a write answered by server A at revision R,
    /// server B shows it once `wait_for_revision(R)` returned true.
    pub fn wait_for_revision(&self, revision: Revision, timeout: Duration) -> bool {
        self.shared
            .as_ref()
            .is_none_or(|s| s.wait_for(revision, timeout))
    }

    /// `?wait=applied`: wait until every live host that the last write of this thread
    /// concerns (its interest set holds a key the write changed) reports that write's
    /// revision applied; hosts the write does not concern are not waited for (they
    /// never see it). A local store, or no write on this thread: at once. Times out with
    /// [`StoreError::Lagging`] naming the hosts that lag.
    pub fn wait_applied_last_write(&self, timeout: Duration) -> Result<(), StoreError> {
        let Some(s) = &self.shared else {
            return Ok(());
        };
        let deadline = Instant::now() + timeout;
        loop {
            let (revision, lagging) = s.lagging_last_write();
            if lagging.is_empty() {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StoreError::Lagging {
                    revision,
                    hosts: lagging,
                    waited: timeout,
                });
            }
            let c = lock(&s.cache);
            let _ = s
                .moved
                .wait_timeout(c, left.min(Duration::from_millis(100)));
        }
    }
}
