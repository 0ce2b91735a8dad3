//! The shared key-value store under the control plane: one interface ([`Kv`]), two
//! backends — [`mem::MemKv`] (in-process, the single-host default and the test double)
//! and [`etcd::EtcdKv`] (etcd v3 through the `etcd-client` crate).
//!
//! The model is etcd's, so the two backends are interchangeable and one conformance
//! suite (`tests.rs`) runs on both:
//! * one global **revision** (`i64`), bumped by every committed write transaction; every
//!   key carries its `create_revision` and `mod_revision`;
//! * **transactions**: a list of compares (a key's mod revision equals N, a key is absent
//!   or present) and a list of puts/deletes applied all or nothing at one new revision;
//! * **reads at a revision** (`at = Some(r)`: the state as of `r`; `Compacted` if `r` was
//!   compacted away);
//! * **watches** from a start revision, per key or per prefix, added and removed on one
//!   [`Watcher`] while it runs, delivering every event in revision order, each revision's
//!   events together, and telling when the start revision was compacted;
//! * **leases**: a key put with a lease disappears when the lease expires or is revoked;
//!   a [`Lease`] keeps itself alive until dropped (then it is revoked).
//!
//! Threading: every method blocks its caller (a control-plane thread) and never runs on a
//! dataplane worker. A watcher delivers on the backend's own thread through the sink its
//! creator gave; the sink must only hand the message on (push into a channel).
//!
//! Owns: the interface and its error type. May not know: what the keys mean (that is
//! [`crate::control::shared`]'s key layout), the model, the dataplane.

use std::fmt;
use std::sync::Arc;

pub mod etcd;
pub mod mem;
#[doc(hidden)]
pub mod testing;
#[cfg(test)]
mod tests;

pub use etcd::{EtcdKv, EtcdOptions};
pub use mem::{MemKv, MemKvOptions};

/// A store revision (etcd's `int64`). 0 = "no revision" (a key's `create_revision` when
/// absent).
pub type Revision = i64;

/// A lease id (etcd's `int64`); 0 = no lease.
pub type LeaseId = i64;

/// One stored key with its value and revisions.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    pub create_revision: Revision,
    pub mod_revision: Revision,
    /// The lease the key is bound to (0: none).
    pub lease: LeaseId,
}

/// A condition of a transaction.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Compare {
    /// The key exists and its mod revision is `revision` (`revision == 0`: the key is
    /// absent).
    ModRevision { key: String, revision: Revision },
    /// The key does not exist.
    Absent { key: String },
    /// The key exists.
    Present { key: String },
}

/// A write of a transaction.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Op {
    Put {
        key: String,
        value: Vec<u8>,
        /// Bind the key to this lease.
        lease: Option<LeaseId>,
    },
    Delete {
        key: String,
    },
    /// Delete every key starting with `prefix`.
    DeletePrefix {
        prefix: String,
    },
}

/// All or nothing: when every compare holds, every op is applied at one new revision.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Txn {
    pub compares: Vec<Compare>,
    pub ops: Vec<Op>,
}

/// How a transaction ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TxnOutcome {
    /// Applied; the store's revision after it (unchanged when `ops` was empty).
    Committed { revision: Revision },
    /// A compare did not hold; nothing was written. The store's revision when it was
    /// evaluated.
    Failed { revision: Revision },
}

/// The keys under a prefix at one revision.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Snapshot {
    /// The revision the read saw (the store's revision, or `at`).
    pub revision: Revision,
    /// In key order.
    pub kvs: Vec<KeyValue>,
}

/// What a watch covers.
#[derive(Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Target {
    Key(String),
    Prefix(String),
}

impl Target {
    /// Whether `key` is covered.
    pub fn covers(&self, key: &str) -> bool {
        match self {
            Target::Key(k) => k == key,
            Target::Prefix(p) => key.starts_with(p.as_str()),
        }
    }
}

/// One change seen by a watch.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Event {
    Put(KeyValue),
    Delete { key: String, mod_revision: Revision },
}

impl Event {
    pub fn key(&self) -> &str {
        match self {
            Event::Put(kv) => &kv.key,
            Event::Delete { key, .. } => key,
        }
    }
    pub fn revision(&self) -> Revision {
        match self {
            Event::Put(kv) => kv.mod_revision,
            Event::Delete { mod_revision, .. } => *mod_revision,
        }
    }
}

/// The store's reachability, as a watcher and `/healthz` see it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Health {
    Connected,
    /// Unreachable since `since` (Unix seconds); the last error, in words.
    Unreachable {
        since: u64,
        error: String,
    },
}

/// What a watcher delivers.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum WatchMsg {
    /// The events of `target` at one or more revisions, in revision order, each
    /// revision's events together (never split over two messages).
    Events { target: Target, events: Vec<Event> },
    /// `target`'s next revision was compacted (`compact_revision` is the oldest
    /// revision still kept): the watch on it is gone. Read the keys at one revision,
    /// diff, and add the target again from that revision + 1.
    Compacted {
        target: Target,
        compact_revision: Revision,
    },
    /// The connection to the store changed. While unreachable the watcher reconnects
    /// by itself (backing off with jitter) and, once back, resumes every target from
    /// the revision after the last one it delivered: nothing is missed or repeated.
    Health(Health),
}

/// Where a watcher delivers (called on the backend's thread: hand the message on).
pub type Sink = Arc<dyn Fn(WatchMsg) + Send + Sync>;

/// A running watch over a changing set of targets; dropping it cancels every target.
pub trait Watcher: Send {
    /// Watch `target` from revision `from` (events at revisions `>= from`; `from <= 0`:
    /// from the store's revision when `add` is called + 1). Adding a target already
    /// watched is an error.
    fn add(&mut self, target: Target, from: Revision) -> Result<(), KvError>;
    /// Stop watching `target` (no more messages for it once this returns... except
    /// those already handed to the sink).
    fn remove(&mut self, target: &Target) -> Result<(), KvError>;
    /// The targets watched now.
    fn targets(&self) -> Vec<Target>;
}

/// A lease kept alive by the backend until dropped (then revoked: its keys vanish).
pub trait Lease: Send + Sync {
    fn id(&self) -> LeaseId;
    /// The TTL granted, in seconds.
    fn ttl(&self) -> i64;
    /// Stop keeping the lease alive WITHOUT revoking it, as a holder that died would:
    /// the lease expires `ttl` seconds after its last keep-alive and its keys vanish
    /// then (tests and `sim-hosts` use it to simulate a crashed host).
    fn abandon(self: Box<Self>);
}

/// The shared store: see the module doc.
pub trait Kv: Send + Sync {
    /// One key (and the revision read at).
    fn get(&self, key: &str, at: Option<Revision>)
        -> Result<(Option<KeyValue>, Revision), KvError>;
    /// Every key under `prefix` at one revision (`None`: the latest).
    fn range(&self, prefix: &str, at: Option<Revision>) -> Result<Snapshot, KvError>;
    /// Run a transaction.
    fn txn(&self, txn: Txn) -> Result<TxnOutcome, KvError>;
    /// A new watcher delivering to `sink` (it starts with no target).
    fn watcher(&self, sink: Sink) -> Result<Box<dyn Watcher>, KvError>;
    /// Grant a lease of `ttl` seconds and keep it alive until the returned handle drops.
    fn grant_lease(&self, ttl: i64) -> Result<Box<dyn Lease>, KvError>;
    /// Drop history before `revision` (tests and operators; etcd also auto-compacts).
    fn compact(&self, revision: Revision) -> Result<(), KvError>;
    /// Reachability now.
    fn health(&self) -> Health;
    /// For logs and benchmark headers: `"etcd 3.4.23 at 127.0.0.1:2379"`, `"local"`.
    fn describe(&self) -> String;
}

/// etcd's default `--max-request-bytes` (1.5 MiB): the largest transaction both
/// backends take by default (see [`txn_request_size`]).
pub const ETCD_MAX_REQUEST_BYTES: usize = 1536 * 1024;

/// The size of `txn` as etcd counts it against `--max-request-bytes` (its protobuf
/// encoding, within a few bytes: keys, values and a small overhead per compare and op).
pub fn txn_request_size(txn: &Txn) -> usize {
    // A field costs its bytes + a tag byte + a length varint (<= 5 bytes); each
    // compare/op is a nested message with its own tag and length.
    const FIELD: usize = 6;
    const MESSAGE: usize = 2 * FIELD + 12;
    let cmp: usize = txn
        .compares
        .iter()
        .map(|c| match c {
            Compare::ModRevision { key, .. }
            | Compare::Absent { key }
            | Compare::Present { key } => key.len() + FIELD + MESSAGE,
        })
        .sum();
    let ops: usize = txn
        .ops
        .iter()
        .map(|o| match o {
            Op::Put { key, value, .. } => key.len() + value.len() + 2 * FIELD + MESSAGE,
            Op::Delete { key } => key.len() + FIELD + MESSAGE,
            Op::DeletePrefix { prefix } => 2 * (prefix.len() + FIELD) + MESSAGE,
        })
        .sum();
    cmp + ops + MESSAGE
}

/// etcd's checks of a transaction's writes, shared so both backends refuse the same
/// transactions the same way: a key may be put at most once, and not inside a key or
/// prefix the same transaction deletes (etcd: "duplicate key given in txn request").
pub fn check_txn_ops(ops: &[Op]) -> Result<(), KvError> {
    let mut puts = std::collections::BTreeSet::new();
    for op in ops {
        if let Op::Put { key, .. } = op {
            if !puts.insert(key.as_str()) {
                return Err(KvError::Invalid(format!(
                    "duplicate key given in txn request: {key} is put twice"
                )));
            }
        }
    }
    for op in ops {
        let hit = match op {
            Op::Put { .. } => None,
            Op::Delete { key } => puts.get(key.as_str()).copied(),
            Op::DeletePrefix { prefix } => puts
                .range(prefix.as_str()..)
                .next()
                .copied()
                .filter(|k| k.starts_with(prefix.as_str())),
        };
        if let Some(k) = hit {
            return Err(KvError::Invalid(format!(
                "duplicate key given in txn request: {k} is both put and deleted"
            )));
        }
    }
    Ok(())
}

/// Why a store operation failed. Each variant says what the caller can do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// The store cannot be reached now (the API answers 503; the agent keeps the last
    /// good policy and retries).
    #[error("the store is unreachable: {0}")]
    Unavailable(String),
    /// The read revision was compacted (the oldest kept is `compact_revision`).
    #[error("revision {requested} was compacted (oldest kept: {compact_revision})")]
    Compacted {
        requested: Revision,
        compact_revision: Revision,
    },
    /// A value or transaction larger than the store takes (etcd: 1.5 MiB per request by
    /// default); nothing was written.
    #[error("{what} is {size} bytes, over the store's limit of {limit} bytes")]
    TooLarge {
        what: String,
        size: usize,
        limit: usize,
    },
    /// A bad argument (a target watched twice, a malformed store URL, TLS files).
    #[error("{0}")]
    Invalid(String),
    /// Anything else the store said.
    #[error("store error: {0}")]
    Other(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Key(k) => write!(f, "key {k}"),
            Target::Prefix(p) => write!(f, "prefix {p}"),
        }
    }
}
