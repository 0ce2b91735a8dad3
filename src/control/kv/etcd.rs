//! [`EtcdKv`]: the [`Kv`] backend on etcd v3, through the `etcd-client` crate (gRPC on
//! tonic and tokio).
//!
//! # Threads
//! The async runtime lives on the control plane only: ONE small multi-thread tokio
//! runtime per process ([`RUNTIME_THREADS`] workers, named `etcd-client`), shared by
//! every [`EtcdKv`] (`sim-hosts` opens a thousand clients). The blocking [`Kv`] methods
//! drive their request on the calling thread (`block_on`, bounded by the request
//! timeout); watch streams and lease keep-alives are tasks on the runtime, and a
//! watcher's sink is called on a runtime thread. Never call a [`Kv`] method from a sink
//! or from async code: it answers `Other("... async context ...")` instead of blocking
//! the runtime.
//!
//! # Watches
//! One gRPC watch stream per [`Watcher`] with one watch id per target (client-chosen ids,
//! etcd 3.4+). The watcher remembers, per target, the revision after the last one it
//! delivered. When the stream breaks it reports `Health(Unreachable)` once, reconnects
//! with exponential backoff and jitter ([`BACKOFF_MIN`] .. [`BACKOFF_MAX`]), re-creates
//! every target from that revision, then reports `Health(Connected)`: nothing is missed or
//! repeated. A start revision etcd has compacted ends that target with
//! `WatchMsg::Compacted`.
//!
//! # Leases
//! Granted, then kept alive by a task (a keep-alive every TTL/3, the stream reopened on
//! failure); dropping the handle revokes the lease, [`Lease::abandon`] only stops the
//! keep-alive.
//!
//! # Limits
//! A transaction larger than etcd's `--max-request-bytes` (1.5 MiB by default,
//! [`EtcdOptions::max_request_bytes`]) is refused before it is sent
//! (`KvError::TooLarge`); etcd's own "request is too large" maps to the same error.
//! Responses may be large (a whole prefix, a watch batch): the decoding limit is raised
//! to [`MAX_RESPONSE_BYTES`].
//!
//! # Cost (measured on the 2-core build machine, under other builds' load)
//! * clean build of `etcd-client` and its dependencies (tonic, prost, hyper, tower, tokio;
//!   `protoc` at build time): see the h-kv report (`cargo build --release -p etcd-client
//!   --target-dir /tmp/x`), recorded below once measured;
//! * stripped release binary: see below.
//!
//! Owns: the etcd client, its runtime, the URL syntax (`etcd://h:p[,h:p]`,
//! `etcds://` for TLS). May not know: what the keys mean, the dataplane.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use etcd_client as ec;
use tokio::sync::mpsc;

use super::{
    check_txn_ops, txn_request_size, Compare, Event, Health, KeyValue, Kv, KvError, Lease, LeaseId,
    Op, Revision, Sink, Snapshot, Target, Txn, TxnOutcome, WatchMsg, Watcher,
    ETCD_MAX_REQUEST_BYTES,
};

/// Worker threads of the process-wide client runtime.
pub const RUNTIME_THREADS: usize = 2;
/// The first reconnect delay of a watch stream or keep-alive.
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// The longest reconnect delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(3);
/// The largest response taken (a prefix read or a watch batch).
pub const MAX_RESPONSE_BYTES: usize = 1 << 30;

/// Where and how to reach etcd. [`EtcdOptions::from_url`] parses the `--store` URL; the
/// TLS files and timeouts come from their own options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdOptions {
    /// `host:port` of each member (IPv6 as `[addr]:port`).
    pub endpoints: Vec<String>,
    /// `etcds://`: TLS to every endpoint.
    pub tls: bool,
    /// The CA certificate (PEM) that signed the servers' certificates (TLS; `None`: the
    /// system's roots are not used, so this is needed with TLS).
    pub ca: Option<PathBuf>,
    /// A client certificate (PEM) and its key (PEM), for etcd's `--client-cert-auth`.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// How long a connection attempt may take.
    pub connect_timeout: Duration,
    /// How long one request may take, connecting included.
    pub request_timeout: Duration,
    /// The largest transaction sent (etcd's `--max-request-bytes`).
    pub max_request_bytes: usize,
}

impl EtcdOptions {
    /// Parse `etcd://host:port[,host:port...]` (or `etcds://` for TLS); errors name the
    /// bad part.
    pub fn from_url(url: &str) -> Result<EtcdOptions, KvError> {
        let bad = |why: String| KvError::Invalid(format!("store URL {url:?}: {why}"));
        let (tls, rest) = if let Some(r) = url.strip_prefix("etcd://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("etcds://") {
            (true, r)
        } else {
            let scheme = url.split("://").next().unwrap_or(url);
            return Err(bad(format!(
                "the scheme must be etcd:// or etcds:// (TLS), not {scheme:?}"
            )));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() {
            return Err(bad("no endpoint (expected host:port[,host:port...])".into()));
        }
        let mut endpoints = Vec::new();
        for ep in rest.split(',') {
            endpoints
                .push(parse_endpoint(ep).map_err(|why| bad(format!("endpoint {ep:?}: {why}")))?);
        }
        Ok(EtcdOptions {
            endpoints,
            tls,
            ca: None,
            cert: None,
            key: None,
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(5),
            max_request_bytes: ETCD_MAX_REQUEST_BYTES,
        })
    }

    /// The URL these options came from (`etcd://a:1,b:2`).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "etcds" } else { "etcd" };
        format!("{scheme}://{}", self.endpoints.join(","))
    }

    fn check(&self) -> Result<(), KvError> {
        let has_tls_file = self.ca.is_some() || self.cert.is_some() || self.key.is_some();
        if has_tls_file && !self.tls {
            return Err(KvError::Invalid(format!(
                "TLS files (CA, client certificate or key) were given for {}: use etcds:// for TLS",
                self.url()
            )));
        }
        if self.cert.is_some() != self.key.is_some() {
            return Err(KvError::Invalid(
                "a client certificate needs its key, and a key its certificate".into(),
            ));
        }
        if self.endpoints.is_empty() {
            return Err(KvError::Invalid("no etcd endpoint".into()));
        }
        Ok(())
    }

    fn connect_options(&self) -> Result<ec::ConnectOptions, KvError> {
        let mut o = ec::ConnectOptions::new()
            .with_connect_timeout(self.connect_timeout)
            .with_timeout(self.request_timeout)
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5))
            .with_keep_alive_while_idle(false);
        if self.tls {
            let read = |what: &str, p: &PathBuf| {
                std::fs::read(p).map_err(|e| {
                    KvError::Invalid(format!("cannot read the {what} {}: {e}", p.display()))
                })
            };
            let mut tls = ec::TlsOptions::new();
            if let Some(ca) = &self.ca {
                tls = tls.ca_certificate(ec::Certificate::from_pem(read("CA certificate", ca)?));
            }
            if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
                tls = tls.identity(ec::Identity::from_pem(
                    read("client certificate", cert)?,
                    read("client key", key)?,
                ));
            }
            o = o.with_tls(tls);
        }
        Ok(o)
    }

    fn endpoint_urls(&self) -> Vec<String> {
        let scheme = if self.tls { "https" } else { "http" };
        self.endpoints
            .iter()
            .map(|e| format!("{scheme}://{e}"))
            .collect()
    }
}

/// `host:port` with a non-empty host and a port 1-65535.
fn parse_endpoint(ep: &str) -> Result<String, String> {
    if ep.is_empty() {
        return Err("empty (two commas in a row, or a trailing comma?)".into());
    }
    if ep.contains('/') || ep.contains('@') || ep.contains('?') {
        return Err("expected host:port, without a path, user or query".into());
    }
    let (host, port) = if let Some(r) = ep.strip_prefix('[') {
        let (h, p) = r
            .split_once(']')
            .ok_or_else(|| "an IPv6 address needs its closing ']'".to_string())?;
        let p = p
            .strip_prefix(':')
            .ok_or_else(|| "no port after the IPv6 address ([addr]:port)".to_string())?;
        (h, p)
    } else {
        ep.rsplit_once(':')
            .ok_or_else(|| "no port (expected host:port, e.g. 127.0.0.1:2379)".to_string())?
    };
    if host.is_empty() {
        return Err("no host before the port".into());
    }
    if host.contains(':') && !ep.starts_with('[') {
        return Err("an IPv6 address must be in brackets: [addr]:port".into());
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(ep.to_string()),
        _ => Err(format!("port {port:?} is not a number 1-65535")),
    }
}

/// The process-wide client runtime (see the module doc).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(RUNTIME_THREADS)
            .thread_name("etcd-client")
            .enable_all()
            .build()
            .expect("build the etcd client runtime")
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The last known reachability, shared by a client, its watchers and lease tasks.
#[derive(Default)]
struct HealthCell(Mutex<Option<Health>>);

impl HealthCell {
    fn get(&self) -> Health {
        lock(&self.0).clone().unwrap_or(Health::Connected)
    }
    /// Record a success; true if it was unreachable before.
    fn ok(&self) -> bool {
        let mut h = lock(&self.0);
        let was_down = matches!(*h, Some(Health::Unreachable { .. }));
        *h = Some(Health::Connected);
        was_down
    }
    /// Record a failure to reach etcd; true if it was reachable before.
    fn down(&self, error: &str) -> bool {
        let mut h = lock(&self.0);
        let since = match &*h {
            Some(Health::Unreachable { since, .. }) => Some(*since),
            _ => None,
        };
        *h = Some(Health::Unreachable {
            since: since.unwrap_or_else(unix_now),
            error: error.to_string(),
        });
        since.is_none()
    }
}

/// The etcd store (see the module doc). Cheap to clone.
#[derive(Clone)]
pub struct EtcdKv {
    inner: Arc<Inner>,
}

struct Inner {
    client: ec::Client,
    opts: EtcdOptions,
    health: Arc<HealthCell>,
}

/// What a failed call was doing (for the error's words and `TooLarge`).
struct Call<'a> {
    what: &'a str,
    size: usize,
    requested: Revision,
}

impl EtcdKv {
    /// Parse `url` ([`EtcdOptions::from_url`]) and connect with default timeouts.
    pub fn open(url: &str) -> Result<EtcdKv, KvError> {
        EtcdKv::connect(EtcdOptions::from_url(url)?)
    }

    /// A client for `opts`. Connecting is lazy: an unreachable etcd is not an error
    /// here (calls answer `Unavailable` until it is back); bad options and unreadable TLS
    /// files are.
    pub fn connect(opts: EtcdOptions) -> Result<EtcdKv, KvError> {
        opts.check()?;
        let options = opts.connect_options()?;
        let urls = opts.endpoint_urls();
        let client = in_runtime(async move { ec::Client::connect(urls, Some(options)).await })?
            .map_err(|e| KvError::Invalid(format!("etcd client: {e}")))?;
        Ok(EtcdKv {
            inner: Arc::new(Inner {
                client,
                opts,
                health: Arc::default(),
            }),
        })
    }

    /// The options this client was made with.
    pub fn options(&self) -> &EtcdOptions {
        &self.inner.opts
    }

    fn kv_client(&self) -> ec::KvClient {
        self.inner
            .client
            .kv_client()
            .max_decoding_message_size(MAX_RESPONSE_BYTES)
    }

    /// Run `f` on the runtime within the request timeout, mapping errors and recording
    /// the store's health.
    fn call<T, F>(&self, c: Call<'_>, f: F) -> Result<T, KvError>
    where
        F: Future<Output = Result<T, ec::Error>>,
    {
        let timeout = self.inner.opts.request_timeout;
        let r = in_runtime(async move { tokio::time::timeout(timeout, f).await })?;
        let r = match r {
            Err(_) => Err(KvError::Unavailable(format!(
                "{}: no answer from {} within {timeout:?}",
                c.what,
                self.inner.opts.endpoints.join(",")
            ))),
            Ok(r) => r.map_err(|e| map_error(e, &c, self.inner.opts.max_request_bytes)),
        };
        match &r {
            Ok(_) => {
                self.inner.health.ok();
            }
            Err(KvError::Unavailable(e)) => {
                self.inner.health.down(e);
            }
            Err(_) => {
                self.inner.health.ok();
            }
        }
        match r {
            Err(KvError::Compacted { requested, .. }) => Err(KvError::Compacted {
                requested,
                compact_revision: self.compact_revision_of(requested),
            }),
            r => r,
        }
    }

    /// etcd's compact revision (a read error does not carry it; a watch from a
    /// compacted revision does). 0 when it cannot be learned.
    fn compact_revision_of(&self, requested: Revision) -> Revision {
        let mut client = self.inner.client.watch_client();
        let probe = async move {
            let opts = ec::WatchOptions::new().with_start_revision(requested.max(1));
            let mut stream = client.watch("\0", Some(opts)).await?;
            while let Some(resp) = stream.message().await? {
                if resp.compact_revision() > 0 {
                    return Ok(resp.compact_revision());
                }
                if resp.canceled() || !resp.events().is_empty() {
                    break;
                }
            }
            Ok::<_, ec::Error>(0)
        };
        let r =
            in_runtime(async move { tokio::time::timeout(Duration::from_secs(2), probe).await });
        match r {
            Ok(Ok(Ok(rev))) => rev,
            _ => 0,
        }
    }
}

/// Block on `f` on the client runtime, refusing (not panicking) inside async code.
fn in_runtime<F: Future>(f: F) -> Result<F::Output, KvError> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(KvError::Other(
            "a blocking store call from an async context (a watch sink?): hand the work to \
             a control-plane thread"
                .into(),
        ));
    }
    Ok(runtime().block_on(f))
}

fn map_error(e: ec::Error, c: &Call<'_>, limit: usize) -> KvError {
    let what = c.what;
    match e {
        ec::Error::GRpcStatus(s) => {
            let msg = s.message();
            // etcd's raft check ("request is too large": over --max-request-bytes) or
            // its gRPC server's (a message over that + 512 KiB).
            if msg.contains("request is too large")
                || (s.code() == tonic::Code::ResourceExhausted && msg.contains("larger than max"))
            {
                return KvError::TooLarge {
                    what: what.to_string(),
                    size: c.size,
                    limit,
                };
            }
            if msg.contains("required revision has been compacted") {
                return KvError::Compacted {
                    requested: c.requested,
                    compact_revision: 0,
                };
            }
            if msg.contains("future revision")
                || msg.contains("lease not found")
                || msg.contains("duplicate key")
            {
                return KvError::Invalid(format!("{what}: etcd says: {msg}"));
            }
            use tonic::Code;
            match s.code() {
                Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
                    KvError::Unavailable(format!("{what}: {msg}"))
                }
                Code::Unknown if msg.contains("transport") || msg.contains("connect") => {
                    KvError::Unavailable(format!("{what}: {msg}"))
                }
                Code::InvalidArgument => KvError::Invalid(format!("{what}: etcd says: {msg}")),
                _ => KvError::Other(format!("{what}: etcd says: {msg} ({:?})", s.code())),
            }
        }
        ec::Error::TransportError(t) => KvError::Unavailable(format!("{what}: {t}")),
        ec::Error::IoError(io) => KvError::Unavailable(format!("{what}: {io}")),
        ec::Error::InvalidArgs(a) => KvError::Invalid(format!("{what}: {a}")),
        ec::Error::InvalidUri(u) => KvError::Invalid(format!("{what}: {u}")),
        other => KvError::Other(format!("{what}: {other}")),
    }
}

fn key_value(kv: &ec::KeyValue) -> KeyValue {
    KeyValue {
        key: String::from_utf8_lossy(kv.key()).into_owned(),
        value: kv.value().to_vec(),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
        lease: kv.lease(),
    }
}

fn event(e: &ec::Event) -> Option<Event> {
    let kv = e.kv()?;
    Some(match e.event_type() {
        ec::EventType::Put => Event::Put(key_value(kv)),
        ec::EventType::Delete => Event::Delete {
            key: String::from_utf8_lossy(kv.key()).into_owned(),
            mod_revision: kv.mod_revision(),
        },
    })
}

fn etcd_txn(txn: Txn) -> ec::Txn {
    use ec::CompareOp::{Equal, Greater};
    let compares: Vec<ec::Compare> = txn
        .compares
        .into_iter()
        .map(|c| match c {
            Compare::ModRevision { key, revision } => {
                ec::Compare::mod_revision(key, Equal, revision)
            }
            Compare::Absent { key } => ec::Compare::version(key, Equal, 0),
            Compare::Present { key } => ec::Compare::version(key, Greater, 0),
        })
        .collect();
    let ops: Vec<ec::TxnOp> = txn
        .ops
        .into_iter()
        .map(|o| match o {
            Op::Put { key, value, lease } => {
                let opts = lease
                    .filter(|l| *l != 0)
                    .map(|l| ec::PutOptions::new().with_lease(l));
                ec::TxnOp::put(key, value, opts)
            }
            Op::Delete { key } => ec::TxnOp::delete(key, None),
            Op::DeletePrefix { prefix } => {
                ec::TxnOp::delete(prefix, Some(ec::DeleteOptions::new().with_prefix()))
            }
        })
        .collect();
    ec::Txn::new().when(compares).and_then(ops)
}

impl Kv for EtcdKv {
    fn get(
        &self,
        key: &str,
        at: Option<Revision>,
    ) -> Result<(Option<KeyValue>, Revision), KvError> {
        let at = at.filter(|r| *r > 0);
        let mut kv = self.kv_client();
        let opts = at.map(|r| ec::GetOptions::new().with_revision(r));
        let key = key.to_string();
        let c = Call {
            what: "get",
            size: 0,
            requested: at.unwrap_or(0),
        };
        let resp = self.call(c, async move { kv.get(key, opts).await })?;
        let rev = at.unwrap_or_else(|| resp.header().map_or(0, |h| h.revision()));
        Ok((resp.kvs().first().map(key_value), rev))
    }

    fn range(&self, prefix: &str, at: Option<Revision>) -> Result<Snapshot, KvError> {
        let at = at.filter(|r| *r > 0);
        let mut kv = self.kv_client();
        let mut opts = ec::GetOptions::new().with_prefix();
        if let Some(r) = at {
            opts = opts.with_revision(r);
        }
        let prefix = prefix.to_string();
        let c = Call {
            what: "range",
            size: 0,
            requested: at.unwrap_or(0),
        };
        let resp = self.call(c, async move { kv.get(prefix, Some(opts)).await })?;
        Ok(Snapshot {
            revision: at.unwrap_or_else(|| resp.header().map_or(0, |h| h.revision())),
            kvs: resp.kvs().iter().map(key_value).collect(),
        })
    }

    fn txn(&self, txn: Txn) -> Result<TxnOutcome, KvError> {
        let size = txn_request_size(&txn);
        let limit = self.inner.opts.max_request_bytes;
        if size > limit {
            return Err(KvError::TooLarge {
                what: "the transaction".into(),
                size,
                limit,
            });
        }
        check_txn_ops(&txn.ops)?;
        let mut kv = self.kv_client();
        let t = etcd_txn(txn);
        let c = Call {
            what: "txn",
            size,
            requested: 0,
        };
        let resp = self.call(c, async move { kv.txn(t).await })?;
        let revision = resp.header().map_or(0, |h| h.revision());
        Ok(if resp.succeeded() {
            TxnOutcome::Committed { revision }
        } else {
            TxnOutcome::Failed { revision }
        })
    }

    fn watcher(&self, sink: Sink) -> Result<Box<dyn Watcher>, KvError> {
        let shared = Arc::new(WatchShared {
            sink,
            targets: Mutex::new(Targets::default()),
            health: self.inner.health.clone(),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let client = self
            .inner
            .client
            .watch_client()
            .max_decoding_message_size(MAX_RESPONSE_BYTES);
        let task = runtime().spawn(watch_task(
            client,
            shared.clone(),
            rx,
            self.inner.opts.clone(),
        ));
        Ok(Box::new(EtcdWatcher {
            kv: self.clone(),
            shared,
            cmds: tx,
            task,
        }))
    }

    fn grant_lease(&self, ttl: i64) -> Result<Box<dyn Lease>, KvError> {
        if ttl <= 0 {
            return Err(KvError::Invalid(format!(
                "a lease TTL must be at least 1 second, not {ttl}"
            )));
        }
        let mut lc = self.inner.client.lease_client();
        let c = Call {
            what: "lease grant",
            size: 0,
            requested: 0,
        };
        let resp = self.call(c, async move { lc.grant(ttl, None).await })?;
        let (id, ttl) = (resp.id(), resp.ttl());
        let task = runtime().spawn(keep_alive_task(
            self.inner.client.lease_client(),
            id,
            ttl,
            self.inner.health.clone(),
        ));
        Ok(Box::new(EtcdLease {
            kv: self.clone(),
            id,
            ttl,
            task: Some(task),
        }))
    }

    fn compact(&self, revision: Revision) -> Result<(), KvError> {
        let mut kv = self.kv_client();
        let c = Call {
            what: "compact",
            size: 0,
            requested: revision,
        };
        self.call(c, async move { kv.compact(revision, None).await })?;
        Ok(())
    }

    fn health(&self) -> Health {
        self.inner.health.get()
    }

    fn describe(&self) -> String {
        let mut m = self.inner.client.maintenance_client();
        let c = Call {
            what: "status",
            size: 0,
            requested: 0,
        };
        let at = self.inner.opts.endpoints.join(",");
        match self.call(c, async move { m.status().await }) {
            Ok(s) => format!("etcd {} at {at}", s.version()),
            Err(e) => format!("etcd (version unknown: {e}) at {at}"),
        }
    }
}

// ---- leases --------------------------------------------------------------------------------

struct EtcdLease {
    kv: EtcdKv,
    id: LeaseId,
    ttl: i64,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Lease for EtcdLease {
    fn id(&self) -> LeaseId {
        self.id
    }
    fn ttl(&self) -> i64 {
        self.ttl
    }
    fn abandon(mut self: Box<Self>) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

impl Drop for EtcdLease {
    fn drop(&mut self) {
        let Some(task) = self.task.take() else {
            return;
        };
        task.abort();
        let mut lc = self.kv.inner.client.lease_client();
        let id = self.id;
        let revoke = async move { lc.revoke(id).await };
        if tokio::runtime::Handle::try_current().is_ok() {
            // Dropped in async code: revoke in the background.
            runtime().spawn(revoke);
            return;
        }
        let c = Call {
            what: "lease revoke",
            size: 0,
            requested: 0,
        };
        if let Err(e) = self.kv.call(c, revoke) {
            // Unreachable now: the lease expires by its TTL.
            tracing::warn!(lease = id, error = %e, "could not revoke the lease; it expires by its TTL");
        }
    }
}

/// Keep lease `id` alive every TTL/3 until aborted; reopen the stream on failure; end
/// when etcd says the lease is gone.
async fn keep_alive_task(mut lc: ec::LeaseClient, id: LeaseId, ttl: i64, health: Arc<HealthCell>) {
    let every = Duration::from_millis((ttl.max(1) as u64 * 1000 / 3).max(200));
    let mut backoff = Backoff::new(id as u64);
    loop {
        let (mut keeper, mut stream) =
            match tokio::time::timeout(every * 2, lc.keep_alive(id)).await {
                Ok(Ok(ks)) => ks,
                Ok(Err(e)) if e.to_string().contains("lease not found") => {
                    tracing::warn!(lease = id, "the lease expired: etcd no longer knows it");
                    return;
                }
                Ok(Err(e)) => {
                    health.down(&format!("lease keep-alive: {e}"));
                    backoff.sleep().await;
                    continue;
                }
                Err(_) => {
                    backoff.sleep().await;
                    continue;
                }
            };
        backoff.reset();
        loop {
            tokio::time::sleep(every).await;
            if keeper.keep_alive().await.is_err() {
                break;
            }
            match tokio::time::timeout(every * 2, stream.message()).await {
                Ok(Ok(Some(resp))) if resp.ttl() <= 0 => {
                    tracing::warn!(lease = id, "the lease expired before its keep-alive");
                    return;
                }
                Ok(Ok(Some(_))) => {}
                _ => break,
            }
        }
    }
}

// ---- watches -------------------------------------------------------------------------------

struct WatchShared {
    sink: Sink,
    /// Held while delivering, so `remove` waits for a delivery in flight.
    targets: Mutex<Targets>,
    health: Arc<HealthCell>,
}

#[derive(Default)]
struct Targets {
    by_target: BTreeMap<Target, TargetState>,
    by_id: HashMap<i64, Target>,
    next_id: i64,
}

#[derive(Clone, Copy)]
struct TargetState {
    id: i64,
    /// The first revision not delivered yet (0: "from now", not known yet).
    next: Revision,
}

enum Cmd {
    Create {
        id: i64,
        target: Target,
        from: Revision,
    },
    Cancel {
        id: i64,
    },
}

struct EtcdWatcher {
    /// For the revision "now" when a target is added from 0.
    kv: EtcdKv,
    shared: Arc<WatchShared>,
    cmds: mpsc::UnboundedSender<Cmd>,
    task: tokio::task::JoinHandle<()>,
}

impl Watcher for EtcdWatcher {
    fn add(&mut self, target: Target, from: Revision) -> Result<(), KvError> {
        // "From now" is the revision now + 1, fixed here like MemKv's (etcd would fix it
        // when it creates the watch, later). Unreachable: etcd's "now" when it is back.
        let from = if from > 0 {
            from
        } else {
            self.kv.get("\0", None).map_or(0, |(_, r)| r + 1)
        };
        let mut t = lock(&self.shared.targets);
        if t.by_target.contains_key(&target) {
            return Err(KvError::Invalid(format!("{target} is watched already")));
        }
        t.next_id += 1;
        let id = t.next_id;
        let from = from.max(0);
        t.by_target
            .insert(target.clone(), TargetState { id, next: from });
        t.by_id.insert(id, target.clone());
        // Sent under the lock: the task's reconnect snapshot stays consistent with it.
        let _ = self.cmds.send(Cmd::Create { id, target, from });
        Ok(())
    }

    fn remove(&mut self, target: &Target) -> Result<(), KvError> {
        let mut t = lock(&self.shared.targets);
        let Some(state) = t.by_target.remove(target) else {
            return Err(KvError::Invalid(format!("{target} is not watched")));
        };
        t.by_id.remove(&state.id);
        let _ = self.cmds.send(Cmd::Cancel { id: state.id });
        Ok(())
    }

    fn targets(&self) -> Vec<Target> {
        lock(&self.shared.targets)
            .by_target
            .keys()
            .cloned()
            .collect()
    }
}

impl Drop for EtcdWatcher {
    fn drop(&mut self) {
        let mut t = lock(&self.shared.targets);
        t.by_target.clear();
        t.by_id.clear();
        self.task.abort();
    }
}

fn create_request(target: &Target, id: i64, from: Revision) -> ec::WatchOptions {
    let mut o = ec::WatchOptions::new().with_watch_id(id);
    if from > 0 {
        o = o.with_start_revision(from);
    }
    match target {
        Target::Key(k) => o.with_key(k.as_bytes()),
        Target::Prefix(p) => o.with_key(p.as_bytes()).with_prefix(),
    }
}

/// Exponential backoff with jitter (a small xorshift: no RNG crate for this).
struct Backoff {
    attempt: u32,
    seed: u64,
}

impl Backoff {
    fn new(salt: u64) -> Backoff {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.subsec_nanos() as u64);
        Backoff {
            attempt: 0,
            seed: (nanos ^ salt.rotate_left(17)) | 1,
        }
    }
    fn reset(&mut self) {
        self.attempt = 0;
    }
    /// The next delay: a random point in [d/2, d], d doubling from BACKOFF_MIN to
    /// BACKOFF_MAX.
    fn next_delay(&mut self) -> Duration {
        let d = BACKOFF_MIN
            .saturating_mul(1 << self.attempt.min(16))
            .min(BACKOFF_MAX);
        self.attempt += 1;
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let half = d / 2;
        half + Duration::from_nanos(self.seed % (half.as_nanos() as u64).max(1))
    }
    async fn sleep(&mut self) {
        tokio::time::sleep(self.next_delay()).await;
    }
}

/// One watcher's stream: (re)connect, create every target, deliver, repeat on loss.
async fn watch_task(
    mut client: ec::WatchClient,
    shared: Arc<WatchShared>,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
    opts: EtcdOptions,
) {
    let mut backoff = Backoff::new(Arc::as_ptr(&shared) as u64);
    let mut down = false;
    loop {
        // Every target now, from the revision after the last delivered; queued commands
        // are already reflected in the targets (they are sent under the same lock).
        let creates: Vec<(i64, Target, Revision)> = {
            let t = lock(&shared.targets);
            while cmds.try_recv().is_ok() {}
            t.by_target
                .iter()
                .map(|(target, s)| (s.id, target.clone(), s.next))
                .collect()
        };
        let Some(((id0, t0, from0), rest)) = creates.split_first().map(|(f, r)| (f.clone(), r))
        else {
            // Nothing to watch: wait for a command (None: the watcher is gone).
            match cmds.recv().await {
                Some(Cmd::Create { .. }) => continue,
                Some(Cmd::Cancel { .. }) => continue,
                None => return,
            }
        };
        let first = create_request(&t0, id0, from0);
        let key0 = match &t0 {
            Target::Key(k) | Target::Prefix(k) => k.clone(),
        };
        let open = tokio::time::timeout(
            opts.connect_timeout + opts.request_timeout,
            client.watch(key0, Some(first)),
        )
        .await;
        let stream = match open {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                lost(&shared, &mut down, &format!("watch: {e}"));
                backoff.sleep().await;
                continue;
            }
            Err(_) => {
                lost(&shared, &mut down, "watch: no answer from etcd");
                backoff.sleep().await;
                continue;
            }
        };
        let (mut sender, mut responses) = stream.split();
        let mut ok = true;
        for (id, t, from) in rest {
            if sender
                .watch(key_of(t), Some(create_request(t, *id, *from)))
                .await
                .is_err()
            {
                ok = false;
                break;
            }
        }
        if ok {
            backoff.reset();
            if std::mem::take(&mut down) || shared.health.ok() {
                (shared.sink)(WatchMsg::Health(Health::Connected));
            }
        }
        while ok {
            tokio::select! {
                cmd = cmds.recv() => match cmd {
                    None => return,
                    Some(Cmd::Create { id, target, from }) => {
                        ok = sender.watch(key_of(&target), Some(create_request(&target, id, from))).await.is_ok();
                    }
                    Some(Cmd::Cancel { id }) => {
                        ok = sender.cancel(id).await.is_ok();
                    }
                },
                msg = responses.message() => match msg {
                    Ok(Some(resp)) => {
                        if let Some((id, t, from)) = deliver(&shared, &resp) {
                            // etcd cancelled a live target without a compaction: create it again.
                            ok = sender.watch(key_of(&t), Some(create_request(&t, id, from))).await.is_ok();
                        }
                    }
                    Ok(None) => {
                        lost(&shared, &mut down, "watch: etcd closed the stream");
                        ok = false;
                    }
                    Err(e) => {
                        lost(&shared, &mut down, &format!("watch: {e}"));
                        ok = false;
                    }
                },
            }
        }
        backoff.sleep().await;
    }
}

fn key_of(t: &Target) -> String {
    match t {
        Target::Key(k) | Target::Prefix(k) => k.clone(),
    }
}

/// The stream broke: report it once per outage.
fn lost(shared: &WatchShared, down: &mut bool, error: &str) {
    shared.health.down(error);
    if !*down {
        *down = true;
        let since = match shared.health.get() {
            Health::Unreachable { since, .. } => since,
            Health::Connected => unix_now(),
        };
        (shared.sink)(WatchMsg::Health(Health::Unreachable {
            since,
            error: error.to_string(),
        }));
    }
}

/// Hand one response to the sink (holding the targets). Returns a target to create
/// again when etcd cancelled it for another reason than a compaction.
fn deliver(shared: &WatchShared, resp: &ec::WatchResponse) -> Option<(i64, Target, Revision)> {
    let mut t = lock(&shared.targets);
    let id = resp.watch_id();
    let target = t.by_id.get(&id)?.clone();
    let state = t.by_target.get_mut(&target)?;
    let header_rev = resp.header().map_or(0, |h| h.revision());
    if resp.compact_revision() > 0 {
        t.by_target.remove(&target);
        t.by_id.remove(&id);
        (shared.sink)(WatchMsg::Compacted {
            target,
            compact_revision: resp.compact_revision(),
        });
        return None;
    }
    if resp.canceled() {
        tracing::warn!(%target, reason = resp.cancel_reason(), "etcd cancelled a watch; creating it again");
        return Some((id, target, state.next));
    }
    if resp.created() && state.next == 0 {
        state.next = header_rev + 1;
    }
    let events: Vec<Event> = resp.events().iter().filter_map(event).collect();
    if let Some(last) = events.last() {
        state.next = last.revision() + 1;
        (shared.sink)(WatchMsg::Events { target, events });
    }
    None
}
