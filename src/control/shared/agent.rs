//! The host agent: one host's view of the shared store, made live through an
//! [`ApplyPolicy`] (the running switch in `sgswitch run --store`, a null dataplane in
//! `sgswitch sim-hosts`, a recorder in tests).
//!
//! [`Agent::start`] checks the store's schema version (absent or another one: it refuses,
//! naming both), then on its own thread:
//! * **liveness**: puts `hosts/HOST` bound to a lease (TTL [`AgentOptions::lease_ttl`],
//!   kept alive by the store backend); when the store comes back and the key is gone (the
//!   lease expired during the outage) it grants a new lease and puts the key again;
//! * **interest**: watches exactly the targets [`super::interest::interest`] derives from
//!   its cache; targets that appear are read at one revision `R` (all of them, with one
//!   read each at `R`) and watched from `R + 1`; targets that go are unwatched and their
//!   keys dropped from the cache. Events of a target older than its start are ignored
//!   (a removed and re-added target's stale events);
//! * **model**: after each burst of events (the channel is drained first, so a burst is
//!   one build) it patches the model it holds when only group rules or remote members
//!   changed ([`super::incremental`]), else builds the host's model
//!   ([`super::interest::build`]), and when it differs from the one applied, hands it to
//!   the [`ApplyPolicy`] (a patch the dataplane refuses is swapped back out). Success writes
//!   `status/HOST` with the revision applied; a build or apply failure keeps the previous
//!   model (nothing is applied) and writes the errors into `status/HOST`;
//! * **what `applied_revision` means**: the highest store revision of the keys this
//!   host watches that its applied model reflects. A write to keys no port of the host
//!   needs never reaches it, so its status does not move for that write: a waiter
//!   (`?wait=applied`) must wait only for the hosts the write affects (those whose
//!   interest set holds a written key), not for every live host;
//! * **outages**: while the store is unreachable the last model stays applied (nothing is
//!   flushed); the watcher resumes by itself. On `Compacted`, the agent reads the
//!   compacted targets at one revision, replaces their cached keys (the diff), applies,
//!   and watches them again from that revision + 1 (a resync);
//! * **counters** ([`AgentStats`]): events received, models applied, apply failures,
//!   apply latency, resyncs, the store's health.
//!
//! Owns: the agent thread, its cache and watch targets, the host's `hosts/` and `status/`
//! keys. May not touch: other hosts' keys, any policy key (it only reads them), the
//! dataplane beyond [`ApplyPolicy::apply_policy`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use super::incremental::{self, Built, Patch};
use super::interest::{build, needs, targets, BuildError, Cache, Cached, Needs};
use super::layout::{
    EncapPorts, HostError, HostValue, Keys, SchemaValue, StatusValue, SCHEMA_VERSION,
};
use crate::control::connect::ApplyPolicy;
use crate::control::kv::{
    Event, Health, Kv, KvError, Lease, Op, Revision, Sink, Target, Txn, WatchMsg, Watcher,
};
use crate::policy::validate::GroupMemo;
use crate::policy::Model;

/// Called after each model applied, with the store revision it reflects (the sim's null
/// dataplane records `(revision, Instant)` here).
pub type OnApplied = Arc<dyn Fn(Revision, &Model) + Send + Sync>;

/// Options of [`Agent::start`].
#[derive(Clone)]
pub struct AgentOptions {
    /// The liveness lease's TTL, seconds (default 10).
    pub lease_ttl: i64,
    /// How long to wait before retrying a failed store call (default 500 ms).
    pub retry: Duration,
    /// Write `status/HOST` after applies (default true).
    pub write_status: bool,
    /// How long a status waits before it is written (default 100 ms): the applies of
    /// that window make one write, and the store's write load from N hosts reporting a
    /// change does not compete with the fan-out of the change itself (each status is a
    /// store write; at N = 1,000 writing at once slowed the change's own propagation
    /// from p99 197 ms to 465 ms on 2 cores). `?wait=applied` answers that much later.
    pub status_delay: Duration,
    pub on_applied: Option<OnApplied>,
    /// This host's VTEP, published in `hosts/HOST` (`None`: no overlay; other hosts
    /// cannot reach its ports).
    pub vtep: Option<IpAddr>,
}

impl Default for AgentOptions {
    fn default() -> Self {
        AgentOptions {
            lease_ttl: 10,
            retry: Duration::from_millis(500),
            write_status: true,
            status_delay: Duration::from_millis(100),
            on_applied: None,
            vtep: None,
        }
    }
}

/// The agent's counters (a snapshot).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentStats {
    /// Watch events received (every event of every target, ignored ones included).
    pub events: u64,
    /// Models handed to the [`ApplyPolicy`] and accepted.
    pub models_applied: u64,
    /// Builds or applies that failed (the previous model stayed).
    pub apply_failures: u64,
    /// Compaction resyncs.
    pub resyncs: u64,
    /// The last apply's latency (build + apply), and the sum over all, microseconds.
    pub last_apply_us: u64,
    pub total_apply_us: u64,
    /// CPU time the agent's thread spent handling events (interest, build, apply,
    /// status), microseconds: what a change costs a host, whatever else runs on its cores.
    pub cpu_us: u64,
    /// The revision of the model applied now (0: none yet).
    pub applied_revision: Revision,
    /// The targets watched now.
    pub targets: usize,
    /// The last errors (empty after a success).
    pub errors: Vec<HostError>,
    pub health: Health,
}

/// Why an agent did not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{0}")]
    Schema(String),
    #[error(transparent)]
    Kv(#[from] KvError),
}

enum Msg {
    Watch(WatchMsg),
    Stop,
    /// Stop without revoking the lease (it expires after its TTL).
    Crash,
}

struct Shared {
    stats: Mutex<AgentStats>,
    model: Mutex<Option<Model>>,
}

/// A running host agent (see the module doc); dropping it stops the thread, revokes
/// its lease (the `hosts/HOST` key vanishes) and cancels its watches.
pub struct Agent {
    host: String,
    shared: Arc<Shared>,
    tx: Sender<Msg>,
    thread: Option<JoinHandle<()>>,
}

/// Check `P"schema"`: present and [`SCHEMA_VERSION`].
pub fn check_schema(kv: &dyn Kv, keys: &Keys) -> Result<(), AgentError> {
    let (kv_, _) = kv.get(&keys.schema(), None)?;
    let Some(v) = kv_ else {
        return Err(AgentError::Schema(format!(
            "the store has no schema key {} (no API server initialised it); this host \
             speaks schema version {SCHEMA_VERSION}: refusing to start",
            keys.schema()
        )));
    };
    let s: SchemaValue = serde_json::from_slice(&v.value).map_err(|e| {
        AgentError::Schema(format!(
            "the store's schema key {} is not readable ({e}); this host speaks schema \
             version {SCHEMA_VERSION}: refusing to start",
            keys.schema()
        ))
    })?;
    if s.schema_version != SCHEMA_VERSION {
        return Err(AgentError::Schema(format!(
            "the store's key layout is schema version {} (written by {}), this host \
             speaks version {SCHEMA_VERSION}: refusing to start",
            s.schema_version, s.written_by
        )));
    }
    Ok(())
}

impl Agent {
    /// Check the schema, then run the agent of `host` on its own thread (module doc).
    pub fn start(
        kv: Arc<dyn Kv>,
        keys: Keys,
        host: &str,
        target: Arc<dyn ApplyPolicy>,
        opts: AgentOptions,
    ) -> Result<Agent, AgentError> {
        check_schema(kv.as_ref(), &keys)?;
        let (tx, rx) = mpsc::channel();
        let sink_tx = Mutex::new(tx.clone());
        let sink: Sink = Arc::new(move |m| {
            let _ = sink_tx
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .send(Msg::Watch(m));
        });
        let watcher = kv.watcher(sink)?;
        let shared = Arc::new(Shared {
            stats: Mutex::new(AgentStats {
                events: 0,
                models_applied: 0,
                apply_failures: 0,
                resyncs: 0,
                last_apply_us: 0,
                total_apply_us: 0,
                cpu_us: 0,
                applied_revision: 0,
                targets: 0,
                errors: Vec::new(),
                health: kv.health(),
            }),
            model: Mutex::new(None),
        });
        let mut run = Run {
            kv,
            keys,
            host: host.to_string(),
            target,
            opts,
            shared: shared.clone(),
            watcher,
            targets: BTreeMap::new(),
            cache: Cache::new(),
            revision: 0,
            lease: None,
            built: None,
            changed: BTreeSet::new(),
            structural: true,
            needs: None,
            status_pending: None,
            status_due: None,
            memo: GroupMemo::default(),
            dirty: true,
        };
        let thread = std::thread::Builder::new()
            .name(format!("agent-{host}"))
            .spawn(move || run.main(rx))
            .map_err(|e| AgentError::Kv(KvError::Other(format!("spawn: {e}"))))?;
        Ok(Agent {
            host: host.to_string(),
            shared,
            tx,
            thread: Some(thread),
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// The counters now.
    pub fn stats(&self) -> AgentStats {
        lock(&self.shared.stats).clone()
    }

    /// The model applied now (`None`: none yet).
    pub fn model(&self) -> Option<Model> {
        lock(&self.shared.model).clone()
    }

    /// Wait until the applied revision is at least `rev` (`false` on timeout).
    pub fn wait_applied(&self, rev: Revision, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.stats().applied_revision >= rev {
                return true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        false
    }

    /// Stop the thread (also on drop).
    pub fn stop(mut self) {
        self.halt();
    }

    /// Stop as a host that died: the thread ends and the lease is left to expire (its
    /// `hosts/HOST` key vanishes after the TTL, not at once). Tests and `sim-hosts`.
    pub fn crash(mut self) {
        let _ = self.tx.send(Msg::Crash);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    fn halt(&mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.halt();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The calling thread's CPU time, microseconds.
fn thread_cpu_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// A key read: key, value, mod revision.
type Read = (String, Vec<u8>, Revision);

/// The agent thread's state.
struct Run {
    kv: Arc<dyn Kv>,
    keys: Keys,
    host: String,
    target: Arc<dyn ApplyPolicy>,
    opts: AgentOptions,
    shared: Arc<Shared>,
    watcher: Box<dyn Watcher>,
    /// Watched targets and the revision each was watched from.
    targets: BTreeMap<Target, Revision>,
    cache: Cache,
    /// The highest revision the cache reflects.
    revision: Revision,
    lease: Option<Box<dyn Lease>>,
    /// What the build of the model applied now knew (`None`: the next build is a full
    /// one, [`incremental`]). The model itself is `shared.model`.
    built: Option<Built>,
    /// The keys put or deleted by events since the last build.
    changed: BTreeSet<String>,
    /// Keys were read or dropped (interest, resync) since the last build: a full build.
    structural: bool,
    /// What the cache says the host needs, as the last interest fixed point computed it
    /// (`None`: not known, e.g. after a failed store call). Valid for the cache as it is
    /// except the keys in `changed`.
    needs: Option<Needs>,
    /// A status not yet written (the store was unreachable).
    status_pending: Option<StatusValue>,
    /// When `status_pending` is to be written.
    status_due: Option<Instant>,
    /// The cache changed (or a store call failed) since the last build.
    dirty: bool,
    /// The groups the previous builds validated.
    memo: GroupMemo,
}

impl Run {
    fn main(&mut self, rx: Receiver<Msg>) {
        loop {
            self.liveness();
            if self.dirty {
                self.step(Vec::new());
            }
            self.flush_status();
            let mut wait = if self.dirty || self.lease.is_none() {
                self.opts.retry
            } else {
                Duration::from_secs(3600)
            };
            if let (Some(_), Some(due)) = (&self.status_pending, self.status_due) {
                wait = wait.min(due.saturating_duration_since(Instant::now()));
            }
            let first = match rx.recv_timeout(wait) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            // Coalesce: everything queued now is one build.
            let mut compacted = Vec::new();
            for m in std::iter::once(first).chain(rx.try_iter()) {
                match m {
                    Msg::Stop => return,
                    Msg::Crash => {
                        if let Some(l) = self.lease.take() {
                            l.abandon();
                        }
                        return;
                    }
                    Msg::Watch(WatchMsg::Events { target, events }) => self.events(&target, events),
                    Msg::Watch(WatchMsg::Compacted { target, .. }) => compacted.push(target),
                    Msg::Watch(WatchMsg::Health(h)) => {
                        if h == Health::Connected && self.lease.is_some() {
                            // The lease may have expired while away: checked by liveness().
                            self.lease_check();
                        }
                        lock(&self.shared.stats).health = h;
                    }
                }
            }
            if self.dirty || !compacted.is_empty() {
                self.step(compacted);
            }
            lock(&self.shared.stats).cpu_us = thread_cpu_us();
        }
    }

    fn events(&mut self, target: &Target, events: Vec<Event>) {
        lock(&self.shared.stats).events += events.len() as u64;
        let Some(&from) = self.targets.get(target) else {
            return; // removed since
        };
        for e in events {
            let rev = e.revision();
            if rev < from {
                continue;
            }
            self.revision = self.revision.max(rev);
            match e {
                Event::Put(kv) => {
                    self.changed.insert(kv.key.clone());
                    self.cache
                        .insert(kv.key, Cached::new(kv.value, kv.mod_revision));
                }
                Event::Delete { key, .. } => {
                    self.cache.remove(&key);
                    self.changed.insert(key);
                }
            }
            self.dirty = true;
        }
    }

    /// Grant the lease and put `hosts/HOST` if not done yet.
    fn liveness(&mut self) {
        if self.lease.is_some() {
            return;
        }
        let lease = match self.kv.grant_lease(self.opts.lease_ttl) {
            Ok(l) => l,
            Err(_) => return,
        };
        let value = HostValue {
            host_id: self.host.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: std::process::id(),
            started_at: now_rfc3339(),
            vtep: self.opts.vtep.map(|a| a.to_string()),
            // The ports this host receives on (the IANA ones), with its VTEP.
            udp_ports: self.opts.vtep.map(|_| EncapPorts::default()),
        };
        let put = Txn {
            compares: Vec::new(),
            ops: vec![Op::Put {
                key: self.keys.host(&self.host),
                value: serde_json::to_vec(&value).unwrap_or_default(),
                lease: Some(lease.id()),
            }],
        };
        if self.kv.txn(put).is_ok() {
            self.lease = Some(lease);
        }
    }

    /// After a reconnection: if `hosts/HOST` vanished (the lease expired), start over.
    fn lease_check(&mut self) {
        if let Ok((None, _)) = self.kv.get(&self.keys.host(&self.host), None) {
            self.lease = None;
        }
    }

    /// Resync `compacted`, follow the interest set, build and apply.
    fn step(&mut self, compacted: Vec<Target>) {
        if !compacted.is_empty() {
            for t in &compacted {
                let _ = self.watcher.remove(t);
                self.targets.remove(t);
            }
            lock(&self.shared.stats).resyncs += 1;
            if self
                .read_and_watch(compacted.into_iter().collect())
                .is_err()
            {
                self.dirty = true;
                return;
            }
        }
        if self.follow_interest().is_err() {
            self.dirty = true;
            return;
        }
        self.dirty = false;
        self.build_and_apply();
    }

    /// Watch what the cache says the host needs, to a fixed point.
    ///
    /// The targets are a function of the host's [`Needs`] and of the `net-ports/` keys
    /// of its networks ([`super::interest::targets`]), and `Needs` of the `host-ports/`,
    /// `ports/` and `security-groups/` keys only. So when every key changed since the
    /// last fixed point is a `members/` key, the targets are those of the last one; when
    /// they are `members/` and `security-groups/` keys, they are unless the needs moved
    /// (a rule's remote group or address group came or went): a rule change costs a host
    /// one walk of its groups' rules, not the whole set built and compared (#18).
    fn follow_interest(&mut self) -> Result<(), KvError> {
        let last = self.needs.take();
        let mut now = None;
        if let Some(last) = last {
            if !self.structural && self.changed.iter().all(|k| members_key(&self.keys, k)) {
                self.needs = Some(last);
                return Ok(());
            }
            let only_groups = !self.structural
                && self
                    .changed
                    .iter()
                    .all(|k| members_key(&self.keys, k) || group_key(&self.keys, k));
            if only_groups {
                let n = needs(&self.keys, &self.host, &self.cache);
                if n == last {
                    self.needs = Some(n);
                    return Ok(());
                }
                now = Some(n);
            }
        }
        loop {
            let n = now
                .take()
                .unwrap_or_else(|| needs(&self.keys, &self.host, &self.cache));
            let want = targets(&self.keys, &self.host, &self.cache, &n);
            let gone: Vec<Target> = self
                .targets
                .keys()
                .filter(|t| !want.contains(*t))
                .cloned()
                .collect();
            for t in &gone {
                let _ = self.watcher.remove(t);
                self.targets.remove(t);
                let keep = |k: &str| self.targets.keys().any(|t| t.covers(k));
                let drop: Vec<String> = self
                    .cache
                    .keys()
                    .filter(|k| t.covers(k) && !keep(k))
                    .cloned()
                    .collect();
                for k in drop {
                    self.cache.remove(&k);
                    self.structural = true;
                }
            }
            let new: BTreeSet<Target> = want
                .into_iter()
                .filter(|t| !self.targets.contains_key(t))
                .collect();
            lock(&self.shared.stats).targets = self.targets.len() + new.len();
            if new.is_empty() {
                self.needs = Some(n);
                return Ok(());
            }
            self.read_and_watch(new)?;
        }
    }

    /// Read `targets` at one revision `R`, replace their cached keys, watch from `R + 1`.
    fn read_and_watch(&mut self, targets: BTreeSet<Target>) -> Result<(), KvError> {
        let mut at: Option<Revision> = None;
        let mut read: Vec<(Target, Vec<Read>)> = Vec::new();
        for t in &targets {
            let kvs = match t {
                Target::Key(k) => {
                    let (v, rev) = self.kv.get(k, at)?;
                    at.get_or_insert(rev);
                    v.into_iter()
                        .map(|v| (v.key, v.value, v.mod_revision))
                        .collect()
                }
                Target::Prefix(p) => {
                    let s = self.kv.range(p, at)?;
                    at.get_or_insert(s.revision);
                    s.kvs
                        .into_iter()
                        .map(|v| (v.key, v.value, v.mod_revision))
                        .collect()
                }
            };
            read.push((t.clone(), kvs));
        }
        let r = at.unwrap_or(0);
        self.structural = true;
        for (t, kvs) in read {
            let stale: Vec<String> = self.cache.keys().filter(|k| t.covers(k)).cloned().collect();
            for k in stale {
                self.cache.remove(&k);
            }
            for (k, v, rev) in kvs {
                self.cache.insert(k, Cached::new(v, rev));
            }
            self.watcher.add(t.clone(), r + 1)?;
            self.targets.insert(t, r + 1);
        }
        self.revision = self.revision.max(r);
        Ok(())
    }

    fn build_and_apply(&mut self) {
        let t0 = Instant::now();
        let rev = self.revision;
        let changed = std::mem::take(&mut self.changed);
        let structural = std::mem::replace(&mut self.structural, false);
        let shared = self.shared.clone();
        let mut model = lock(&shared.model);
        let patch = match (&self.built, model.as_ref(), &self.needs) {
            (Some(b), Some(m), Some(n)) if !structural => {
                incremental::patch(&self.keys, &self.cache, b, m, &changed, n)
            }
            _ => Patch::Rebuild,
        };
        let apply_error = |e: crate::control::store::ApplyError| {
            vec![BuildError {
                object: String::new(),
                message: format!("apply: {e}"),
            }]
        };
        // Ok(true): a new model is applied; Ok(false): the model is unchanged.
        let result: Result<bool, Vec<BuildError>> = match patch {
            Patch::Unchanged => Ok(false),
            Patch::Failed(errs) => Err(errs),
            Patch::Changes(mut c) => {
                let m = model.as_mut().expect("a patch needs a model");
                c.apply(m);
                let r = self.target.apply_policy(m);
                if r.is_err() {
                    c.apply(m); // back to the model in force
                }
                r.map(|()| true).map_err(apply_error)
            }
            Patch::Rebuild => match build(&self.keys, &self.host, &self.cache, &mut self.memo) {
                Ok((m, b)) if model.as_ref() == Some(&m) => {
                    self.built = Some(b);
                    Ok(false)
                }
                Ok((m, b)) => self.target.apply_policy(&m).map_err(apply_error).map(|()| {
                    *model = Some(m);
                    self.built = Some(b);
                    true
                }),
                Err(errs) => Err(errs),
            },
        };
        if result.is_err() {
            self.built = None; // the cache is ahead of the model: the next build is full
        }
        if let (Ok(true), Some(f), Some(m)) = (&result, &self.opts.on_applied, model.as_ref()) {
            f(rev, m);
        }
        drop(model);
        let us = t0.elapsed().as_micros() as u64;
        let errors: Vec<HostError> = match result {
            Ok(false) => {
                // The model is unchanged, but the host has seen `rev`: report it, so a
                // `?wait=applied` on a write to a key it watches ends.
                let mut s = lock(&self.shared.stats);
                let moved = s.applied_revision < rev;
                s.applied_revision = rev;
                if !moved || !s.errors.is_empty() {
                    return;
                }
                Vec::new()
            }
            Ok(true) => {
                let mut s = lock(&self.shared.stats);
                s.models_applied += 1;
                s.last_apply_us = us;
                s.total_apply_us += us;
                s.applied_revision = rev;
                s.errors.clear();
                Vec::new()
            }
            Err(errs) => {
                let errors: Vec<HostError> = errs
                    .into_iter()
                    .map(|e| HostError {
                        object: e.object,
                        message: e.message,
                    })
                    .collect();
                let mut s = lock(&self.shared.stats);
                s.apply_failures += 1;
                s.errors = errors.clone();
                errors
            }
        };
        if self.opts.write_status {
            self.status_due
                .get_or_insert_with(|| Instant::now() + self.opts.status_delay);
            let applied_revision = lock(&self.shared.stats).applied_revision;
            self.status_pending = Some(StatusValue {
                host_id: self.host.clone(),
                applied_revision,
                applied_at: now_rfc3339(),
                errors,
            });
        }
    }

    fn flush_status(&mut self) {
        if self.status_due.is_some_and(|due| Instant::now() < due) {
            return;
        }
        let Some(st) = self.status_pending.take() else {
            return;
        };
        let put = Txn {
            compares: Vec::new(),
            ops: vec![Op::Put {
                key: self.keys.status(&self.host),
                value: serde_json::to_vec(&st).unwrap_or_default(),
                lease: None,
            }],
        };
        if self.kv.txn(put).is_err() {
            self.status_pending = Some(st);
            self.status_due = Some(Instant::now() + self.opts.retry);
        } else {
            self.status_due = None;
        }
    }
}

/// Whether `key` is a `members/GROUP/PORT` key.
fn members_key(keys: &Keys, key: &str) -> bool {
    key.strip_prefix(keys.prefix())
        .is_some_and(|k| k.starts_with("members/"))
}

/// Whether `key` is a `security-groups/ID` key.
fn group_key(keys: &Keys, key: &str) -> bool {
    key.strip_prefix(keys.prefix())
        .is_some_and(|k| k.starts_with("security-groups/"))
}

#[cfg(test)]
mod tests;
