//! The conformance suite: the same test functions run on [`MemKv`] and on an `EtcdKv`
//! talking to a real etcd (`testing::EtcdServer`), so the two backends are
//! interchangeable. Each test works under its own key prefix; the tests that compact
//! get a store of their own (compaction is global).
//!
//! Owns: the tests of `control::kv`. May not know: the key layout.

use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;

/// One backend under test and the prefix this test owns.
pub(super) struct Backend {
    pub kv: Arc<dyn Kv>,
    pub prefix: String,
    /// Keeps what the backend needs alive (an etcd server).
    pub _keep: Option<Box<dyn std::any::Any>>,
}

impl Backend {
    pub fn mem(test: &str) -> Backend {
        Backend {
            kv: Arc::new(MemKv::new()),
            prefix: format!("/t/{test}/"),
            _keep: None,
        }
    }
    /// A fresh etcd of the test's own and a client; `None` when skipped (no etcd).
    pub fn etcd(test: &str) -> Option<Backend> {
        let server = testing::EtcdServer::start_or_skip(test)?;
        let kv = EtcdKv::open(&server.url()).expect("connect to the test etcd");
        Some(Backend {
            kv: Arc::new(kv),
            prefix: format!("/t/{test}/"),
            _keep: Some(Box::new(server)),
        })
    }
    fn k(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

fn put(kv: &dyn Kv, key: &str, value: &str) -> Revision {
    match kv.txn(Txn {
        compares: vec![],
        ops: vec![Op::Put {
            key: key.into(),
            value: value.into(),
            lease: None,
        }],
    }) {
        Ok(TxnOutcome::Committed { revision }) => revision,
        other => panic!("put {key}: {other:?}"),
    }
}

/// The store's revision now.
fn now(kv: &dyn Kv, b: &Backend) -> Revision {
    kv.range(&b.prefix, None).expect("range").revision
}

fn ops(kv: &dyn Kv, ops: Vec<Op>) -> TxnOutcome {
    kv.txn(Txn {
        compares: vec![],
        ops,
    })
    .expect("txn")
}

fn p(key: String, value: &str) -> Op {
    Op::Put {
        key,
        value: value.into(),
        lease: None,
    }
}

fn value(kv: &dyn Kv, key: &str) -> Option<String> {
    kv.get(key, None)
        .expect("get")
        .0
        .map(|kv| String::from_utf8(kv.value).unwrap())
}

/// A watcher and what it delivered.
struct Watch {
    w: Box<dyn Watcher>,
    rx: Receiver<WatchMsg>,
}

fn watch(kv: &dyn Kv) -> Watch {
    let (tx, rx) = channel();
    let sink: Sink = Arc::new(move |m| {
        let _ = tx.send(m);
    });
    Watch {
        w: kv.watcher(sink).expect("watcher"),
        rx,
    }
}

impl Watch {
    /// The next message that is not a `Health` one, within `secs`.
    fn next(&self, secs: u64) -> Option<WatchMsg> {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(WatchMsg::Health(_)) => continue,
                Ok(m) => return Some(m),
                Err(_) => return None,
            }
        }
    }

    /// Exactly `n` events for `target` (in one or more messages), as
    /// (key, revision, value or None for a delete); panics if a message for another
    /// target or more events arrive.
    fn events(&self, target: &Target, n: usize) -> Vec<(String, Revision, Option<String>)> {
        let mut got = Vec::new();
        while got.len() < n {
            match self.next(10) {
                Some(WatchMsg::Events { target: t, events }) => {
                    assert_eq!(&t, target, "events for another target: {events:?}");
                    assert_grouped(&events);
                    got.extend(events.into_iter().map(flat));
                }
                other => panic!("waiting for {n} events of {target}, got {got:?} then {other:?}"),
            }
        }
        assert_eq!(got.len(), n, "more events than expected: {got:?}");
        got
    }

    /// Nothing more arrives within `ms`.
    fn quiet(&self, ms: u64) {
        let end = Instant::now() + Duration::from_millis(ms);
        while let Ok(m) = self
            .rx
            .recv_timeout(end.saturating_duration_since(Instant::now()))
        {
            assert!(matches!(m, WatchMsg::Health(_)), "unexpected {m:?}");
        }
    }
}

fn flat(e: Event) -> (String, Revision, Option<String>) {
    match e {
        Event::Put(kv) => (
            kv.key,
            kv.mod_revision,
            Some(String::from_utf8(kv.value).unwrap()),
        ),
        Event::Delete { key, mod_revision } => (key, mod_revision, None),
    }
}

/// Revisions never go down within a message.
fn assert_grouped(events: &[Event]) {
    assert!(
        events
            .windows(2)
            .all(|w| w[0].revision() <= w[1].revision()),
        "events out of revision order: {events:?}"
    );
}

// ---- the suite ---------------------------------------------------------------------------

fn revisions(b: &Backend) {
    let kv = &*b.kv;
    let (a, start) = kv.get(&b.k("a"), None).unwrap();
    assert!(a.is_none());
    let r1 = put(kv, &b.k("a"), "1");
    assert!(r1 > start, "a put bumps the revision: {start} -> {r1}");
    let (a, at) = kv.get(&b.k("a"), None).unwrap();
    let a = a.unwrap();
    assert_eq!((a.create_revision, a.mod_revision, at), (r1, r1, r1));
    assert_eq!(a.lease, 0);
    let r2 = put(kv, &b.k("a"), "2");
    assert_eq!(r2, r1 + 1);
    let a = kv.get(&b.k("a"), None).unwrap().0.unwrap();
    assert_eq!((a.create_revision, a.mod_revision), (r1, r2));
    assert_eq!(a.value, b"2");
    // A transaction without writes, or deleting nothing, does not bump the revision.
    let now = now(kv, b);
    assert_eq!(ops(kv, vec![]), TxnOutcome::Committed { revision: now });
    let r = ops(
        kv,
        vec![Op::Delete {
            key: b.k("nothing"),
        }],
    );
    assert_eq!(r, TxnOutcome::Committed { revision: now });
    // Deleted then put again: a new create revision.
    let TxnOutcome::Committed { revision: r3 } = ops(kv, vec![Op::Delete { key: b.k("a") }]) else {
        panic!()
    };
    assert_eq!(r3, now + 1);
    assert_eq!(value(kv, &b.k("a")), None);
    let r4 = put(kv, &b.k("a"), "3");
    let a = kv.get(&b.k("a"), None).unwrap().0.unwrap();
    assert_eq!((a.create_revision, a.mod_revision), (r4, r4));
}

fn txn_compares(b: &Backend) {
    let kv = &*b.kv;
    let r1 = put(kv, &b.k("x"), "1");
    let cas = |compares: Vec<Compare>, v: &str| {
        kv.txn(Txn {
            compares,
            ops: vec![p(b.k("x"), v), p(b.k("y"), v)],
        })
        .unwrap()
    };
    let mr = |key: String, revision| Compare::ModRevision { key, revision };
    // ModRevision: holds at the key's revision only; 0 means absent.
    let f = cas(vec![mr(b.k("x"), r1 - 1)], "no");
    assert_eq!(f, TxnOutcome::Failed { revision: r1 });
    let f = cas(vec![mr(b.k("x"), 0)], "no");
    assert_eq!(f, TxnOutcome::Failed { revision: r1 });
    let r2 = match cas(vec![mr(b.k("x"), r1), mr(b.k("y"), 0)], "2") {
        TxnOutcome::Committed { revision } => revision,
        f => panic!("{f:?}"),
    };
    assert_eq!(r2, r1 + 1, "every op of a transaction at one revision");
    let x = kv.get(&b.k("x"), None).unwrap().0.unwrap();
    let y = kv.get(&b.k("y"), None).unwrap().0.unwrap();
    assert_eq!(
        (x.mod_revision, y.mod_revision, y.create_revision),
        (r2, r2, r2)
    );
    // Absent / Present; one failing compare among holding ones writes nothing.
    let absent = |k: &str| Compare::Absent { key: b.k(k) };
    let present = |k: &str| Compare::Present { key: b.k(k) };
    let f = cas(vec![present("x"), absent("y")], "no");
    assert_eq!(f, TxnOutcome::Failed { revision: r2 });
    let f = cas(vec![absent("z"), present("z")], "no");
    assert_eq!(f, TxnOutcome::Failed { revision: r2 });
    assert_eq!(value(kv, &b.k("x")).as_deref(), Some("2"));
    assert_eq!(value(kv, &b.k("y")).as_deref(), Some("2"));
    assert_eq!(now(kv, b), r2, "a failed txn writes nothing");
    let c = cas(vec![present("x"), present("y"), absent("z")], "3");
    assert_eq!(c, TxnOutcome::Committed { revision: r2 + 1 });
    // A key put twice, or put and deleted, in one transaction is refused.
    let dup = kv.txn(Txn {
        compares: vec![],
        ops: vec![p(b.k("d"), "1"), p(b.k("d"), "2")],
    });
    assert!(matches!(dup, Err(KvError::Invalid(_))), "{dup:?}");
    let dup = kv.txn(Txn {
        compares: vec![],
        ops: vec![p(b.k("d/1"), "1"), Op::DeletePrefix { prefix: b.k("d/") }],
    });
    assert!(matches!(dup, Err(KvError::Invalid(_))), "{dup:?}");
    assert_eq!(value(kv, &b.k("d")), None);
}

fn reads_at_revision(b: &Backend) {
    let kv = &*b.kv;
    let r1 = put(kv, &b.k("a"), "1");
    let r2 = put(kv, &b.k("b"), "1");
    let r3 = put(kv, &b.k("a"), "2");
    let r4 = match ops(kv, vec![Op::Delete { key: b.k("b") }]) {
        TxnOutcome::Committed { revision } => revision,
        f => panic!("{f:?}"),
    };
    let at = |key: &str, r| {
        let (kv, read) = kv.get(&b.k(key), Some(r)).unwrap();
        assert_eq!(read, r);
        kv.map(|kv| String::from_utf8(kv.value).unwrap())
    };
    assert_eq!(at("a", r1).as_deref(), Some("1"));
    assert_eq!(at("b", r1), None);
    assert_eq!(at("b", r2).as_deref(), Some("1"));
    assert_eq!(at("a", r3).as_deref(), Some("2"));
    assert_eq!(at("b", r4), None);
    let snap = |r| {
        let s = kv.range(&b.prefix, r).unwrap();
        let keys: Vec<_> = s.kvs.iter().map(|kv| kv.key.clone()).collect();
        (s.revision, keys)
    };
    assert_eq!(snap(Some(r2)), (r2, vec![b.k("a"), b.k("b")]));
    assert_eq!(snap(Some(r1)), (r1, vec![b.k("a")]));
    assert_eq!(snap(None), (r4, vec![b.k("a")]));
    let s = kv.range(&b.prefix, Some(r3)).unwrap();
    assert_eq!(s.kvs[0].mod_revision, r3);
    assert_eq!(s.kvs[0].create_revision, r1);
    // A future revision is refused.
    let e = kv.get(&b.k("a"), Some(r4 + 1000));
    assert!(matches!(e, Err(KvError::Invalid(_))), "{e:?}");
}

fn compaction(b: &Backend) {
    let kv = &*b.kv;
    let r1 = put(kv, &b.k("a"), "1");
    let r2 = put(kv, &b.k("a"), "2");
    let r3 = put(kv, &b.k("b"), "1");
    let r4 = put(kv, &b.k("a"), "3");
    kv.compact(r3).unwrap();
    // Reads before the compaction: Compacted; at or after it: as before.
    let e = kv.get(&b.k("a"), Some(r1));
    assert_eq!(
        e,
        Err(KvError::Compacted {
            requested: r1,
            compact_revision: r3
        })
    );
    assert!(matches!(
        kv.range(&b.prefix, Some(r2)),
        Err(KvError::Compacted { .. })
    ));
    assert_eq!(
        kv.get(&b.k("a"), Some(r3)).unwrap().0.unwrap().value,
        b"2",
        "the last version before the compaction stays readable"
    );
    let s = kv.range(&b.prefix, Some(r3)).unwrap();
    assert_eq!(s.kvs.len(), 2);
    assert_eq!(value(kv, &b.k("a")).as_deref(), Some("3"));
    // Compacting again at or before: Compacted.
    assert!(matches!(kv.compact(r2), Err(KvError::Compacted { .. })));
    // A watch from before the compaction: Compacted, and the target is dropped; from the
    // compaction revision on: every event.
    let mut w = watch(kv);
    let t = Target::Prefix(b.prefix.clone());
    w.w.add(t.clone(), r2).unwrap();
    match w.next(10) {
        Some(WatchMsg::Compacted {
            target,
            compact_revision,
        }) => {
            assert_eq!((target, compact_revision), (t.clone(), r3));
        }
        other => panic!("expected Compacted, got {other:?}"),
    }
    assert!(w.w.targets().is_empty(), "a compacted target is dropped");
    w.w.add(t.clone(), r3).unwrap();
    let got = w.events(&t, 2);
    assert_eq!(got[0], (b.k("b"), r3, Some("1".into())));
    assert_eq!(got[1], (b.k("a"), r4, Some("3".into())));
}

fn watch_add_remove(b: &Backend) {
    let kv = &*b.kv;
    let mut w = watch(kv);
    let all = Target::Prefix(b.prefix.clone());
    let one = Target::Key(b.k("one"));
    w.w.add(all.clone(), 0).unwrap();
    assert!(matches!(w.w.add(all.clone(), 0), Err(KvError::Invalid(_))));
    let r1 = put(kv, &b.k("one"), "1");
    assert_eq!(w.events(&all, 1), vec![(b.k("one"), r1, Some("1".into()))]);
    // Add a key target from the current revision + 1 while running.
    w.w.add(one.clone(), r1 + 1).unwrap();
    let mut targets = w.w.targets();
    targets.sort();
    assert_eq!(targets, vec![one.clone(), all.clone()]);
    w.w.remove(&all).unwrap();
    assert!(matches!(w.w.remove(&all), Err(KvError::Invalid(_))));
    put(kv, &b.k("two"), "2");
    let r3 = put(kv, &b.k("one"), "3");
    assert_eq!(w.events(&one, 1), vec![(b.k("one"), r3, Some("3".into()))]);
    w.quiet(300);
    // Added again from an older revision: history first, then live.
    w.w.add(all.clone(), r1).unwrap();
    let got = w.events(&all, 3);
    let revs: Vec<_> = got.iter().map(|e| e.1).collect();
    assert_eq!(revs, vec![r1, r1 + 1, r3]);
    let r4 = put(kv, &b.k("three"), "4");
    assert_eq!(
        w.events(&all, 1),
        vec![(b.k("three"), r4, Some("4".into()))]
    );
    w.quiet(300);
    // Dropping the watcher cancels every target.
    drop(w.w);
    put(kv, &b.k("one"), "5");
    std::thread::sleep(Duration::from_millis(200));
    assert!(w.rx.try_iter().all(|m| matches!(m, WatchMsg::Health(_))));
}

fn event_grouping(b: &Backend) {
    let kv = &*b.kv;
    let r0 = put(kv, &b.k("z"), "0");
    let mut w = watch(kv);
    let all = Target::Prefix(b.prefix.clone());
    w.w.add(all.clone(), r0 + 1).unwrap();
    // Three revisions, the middle one with three events in op order; every message
    // holds whole revisions.
    put(kv, &b.k("a"), "1");
    ops(
        kv,
        vec![
            p(b.k("c"), "2"),
            p(b.k("a"), "2"),
            Op::Delete { key: b.k("z") },
        ],
    );
    put(kv, &b.k("b"), "3");
    let mut got = Vec::new();
    while got.len() < 5 {
        match w.next(10) {
            Some(WatchMsg::Events { events, .. }) => {
                assert_grouped(&events);
                // Whole revisions: a message never ends inside the 3-event revision.
                let n2 = events.iter().filter(|e| e.revision() == r0 + 2).count();
                assert!(
                    n2 == 0 || n2 == 3,
                    "a revision split over messages: {events:?}"
                );
                got.extend(events.into_iter().map(flat));
            }
            other => panic!("{other:?}"),
        }
    }
    let want = vec![
        (b.k("a"), r0 + 1, Some("1".to_string())),
        (b.k("c"), r0 + 2, Some("2".to_string())),
        (b.k("a"), r0 + 2, Some("2".to_string())),
        (b.k("z"), r0 + 2, None),
        (b.k("b"), r0 + 3, Some("3".to_string())),
    ];
    assert_eq!(got, want);
    w.quiet(200);
}

fn prefix_vs_key(b: &Backend) {
    let kv = &*b.kv;
    let mut w = watch(kv);
    let key = Target::Key(b.k("a"));
    let prefix = Target::Prefix(b.k("a"));
    w.w.add(key.clone(), 0).unwrap();
    put(kv, &b.k("ab"), "1");
    put(kv, &b.k("b"), "1");
    let r = put(kv, &b.k("a"), "1");
    assert_eq!(w.events(&key, 1), vec![(b.k("a"), r, Some("1".into()))]);
    w.quiet(200);
    w.w.remove(&key).unwrap();
    w.w.add(prefix.clone(), r - 2).unwrap();
    let got = w.events(&prefix, 2);
    let keys: Vec<_> = got.into_iter().map(|e| e.0).collect();
    assert_eq!(keys, vec![b.k("ab"), b.k("a")]);
    w.quiet(200);
}

fn delete_prefix(b: &Backend) {
    let kv = &*b.kv;
    put(kv, &b.k("d/2"), "x");
    put(kv, &b.k("d/1"), "x");
    put(kv, &b.k("d"), "x");
    put(kv, &b.k("e/1"), "x");
    let r0 = now(kv, b);
    let mut w = watch(kv);
    let all = Target::Prefix(b.prefix.clone());
    w.w.add(all.clone(), 0).unwrap();
    let r = ops(kv, vec![Op::DeletePrefix { prefix: b.k("d/") }]);
    assert_eq!(r, TxnOutcome::Committed { revision: r0 + 1 });
    let got = w.events(&all, 2);
    assert_eq!(
        got,
        vec![(b.k("d/1"), r0 + 1, None), (b.k("d/2"), r0 + 1, None)],
        "one revision, key order"
    );
    let left: Vec<_> = kv
        .range(&b.prefix, None)
        .unwrap()
        .kvs
        .into_iter()
        .map(|kv| kv.key)
        .collect();
    assert_eq!(left, vec![b.k("d"), b.k("e/1")]);
    // Deleting an empty prefix range changes nothing.
    let r = ops(kv, vec![Op::DeletePrefix { prefix: b.k("d/") }]);
    assert_eq!(r, TxnOutcome::Committed { revision: r0 + 1 });
    w.quiet(200);
}

fn leases(b: &Backend) {
    let kv = &*b.kv;
    let mut w = watch(kv);
    let all = Target::Prefix(b.prefix.clone());
    w.w.add(all.clone(), 0).unwrap();
    let put_leased = |key: &str, lease: LeaseId| {
        kv.txn(Txn {
            compares: vec![],
            ops: vec![Op::Put {
                key: b.k(key),
                value: b"alive".to_vec(),
                lease: Some(lease),
            }],
        })
    };
    // Revoked on drop: its keys go, in one revision.
    let l = kv.grant_lease(5).unwrap();
    assert!(l.ttl() >= 5 && l.id() != 0);
    put_leased("a", l.id()).unwrap();
    put_leased("b", l.id()).unwrap();
    assert_eq!(kv.get(&b.k("a"), None).unwrap().0.unwrap().lease, l.id());
    w.events(&all, 2);
    drop(l);
    let got = w.events(&all, 2);
    assert!(
        got.iter().all(|e| e.2.is_none() && e.1 == got[0].1),
        "{got:?}"
    );
    assert_eq!(value(kv, &b.k("a")), None);
    // Kept alive past its TTL while the handle lives; expires once abandoned.
    let l = kv.grant_lease(1).unwrap();
    let ttl = l.ttl();
    put_leased("c", l.id()).unwrap();
    w.events(&all, 1);
    std::thread::sleep(Duration::from_secs(ttl as u64 + 1));
    assert_eq!(value(kv, &b.k("c")).as_deref(), Some("alive"));
    let abandoned = Instant::now();
    l.abandon();
    let got = w.events(&all, 1);
    assert_eq!(got[0].2, None);
    let took = abandoned.elapsed();
    assert!(
        took <= Duration::from_secs(ttl as u64 + 3),
        "expired after {took:?} (ttl {ttl})"
    );
    // A put with an unknown lease is refused and writes nothing.
    let e = put_leased("d", 0x7fff_0000_1234);
    assert!(e.is_err(), "{e:?}");
    assert_eq!(value(kv, &b.k("d")), None);
    assert!(matches!(kv.grant_lease(0), Err(KvError::Invalid(_))));
}

fn too_large(b: &Backend) {
    let kv = &*b.kv;
    let r0 = put(kv, &b.k("small"), "x");
    let big = "x".repeat(ETCD_MAX_REQUEST_BYTES);
    let e = kv.txn(Txn {
        compares: vec![],
        ops: vec![p(b.k("small"), "y"), p(b.k("big"), &big)],
    });
    match e {
        Err(KvError::TooLarge { size, limit, .. }) => {
            assert!(
                size > limit && limit == ETCD_MAX_REQUEST_BYTES,
                "{size} {limit}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(value(kv, &b.k("small")).as_deref(), Some("x"));
    assert_eq!(now(kv, b), r0);
    // Just under the limit goes through.
    let ok = "x".repeat(ETCD_MAX_REQUEST_BYTES - 4096);
    assert!(matches!(
        kv.txn(Txn {
            compares: vec![],
            ops: vec![p(b.k("big"), &ok)],
        }),
        Ok(TxnOutcome::Committed { .. })
    ));
}

/// Every conformance test, once per backend.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod mem_kv {
            $(
                #[test]
                fn $name() {
                    super::$name(&super::Backend::mem(stringify!($name)));
                }
            )*
        }
        mod etcd_kv {
            $(
                #[test]
                fn $name() {
                    let test = concat!("etcd_kv::", stringify!($name));
                    if let Some(b) = super::Backend::etcd(test) {
                        super::$name(&b);
                    }
                }
            )*
        }
    };
}

conformance!(
    revisions,
    txn_compares,
    reads_at_revision,
    compaction,
    watch_add_remove,
    event_grouping,
    prefix_vs_key,
    delete_prefix,
    leases,
    too_large,
);

// ---- MemKv only ----------------------------------------------------------------------------

#[test]
fn mem_retention_compacts_by_itself() {
    let kv = MemKv::with_options(MemKvOptions {
        max_request_bytes: None,
        retain_revisions: Some(10),
    });
    for i in 0..100 {
        put(&kv, "/k", &i.to_string());
    }
    let rev = kv.revision();
    let c = kv.compact_revision();
    assert!(
        c > rev - 16 && c <= rev - 9,
        "compacted at {c}, revision {rev}"
    );
    assert!(kv.get("/k", Some(rev - 9)).is_ok());
    assert!(kv.get("/k", Some(c - 1)).is_err());
    // No request limit: a 2 MiB value goes in.
    put(&kv, "/big", &"x".repeat(2 << 20));
}

#[test]
fn mem_lease_gone_after_revoke_and_clones_share() {
    let kv = MemKv::new();
    let clone = kv.clone();
    let l = kv.grant_lease(3).unwrap();
    assert_eq!(clone.lease_ids(), vec![l.id()]);
    drop(l);
    assert!(clone.lease_ids().is_empty());
    put(&clone, "/a", "1");
    assert_eq!(value(&kv, "/a").as_deref(), Some("1"));
    assert_eq!(kv.describe(), "local");
    assert_eq!(kv.health(), Health::Connected);
}

// ---- EtcdKv only ---------------------------------------------------------------------------

/// The EtcdKv-only tests' server and client (None: skipped).
fn etcd_only(test: &str) -> Option<(testing::EtcdServer, EtcdKv)> {
    let server = testing::EtcdServer::start_or_skip(test)?;
    let kv = EtcdKv::open(&server.url()).expect("connect to the test etcd");
    Some((server, kv))
}

#[test]
fn etcd_outage_watch_resumes_without_loss_or_repeat() {
    let Some((mut server, kv)) = etcd_only("etcd_outage_watch_resumes_without_loss_or_repeat")
    else {
        return;
    };
    let b = Backend {
        kv: Arc::new(kv.clone()),
        prefix: "/t/outage/".into(),
        _keep: None,
    };
    let (tx, rx) = channel();
    let sink: Sink = Arc::new(move |m| {
        let _ = tx.send(m);
    });
    let mut w = kv.watcher(sink).unwrap();
    let all = Target::Prefix(b.prefix.clone());
    let key = Target::Key(b.k("k"));
    w.add(all.clone(), 0).unwrap();
    w.add(key.clone(), 0).unwrap();
    let mut want_all = Vec::new();
    let mut want_key = Vec::new();
    for i in 0..3 {
        let r = put(&kv, &b.k("k"), &format!("before{i}"));
        want_all.push(r);
        want_key.push(r);
        want_all.push(put(&kv, &b.k("other"), "x"));
    }
    // Everything so far delivered, then etcd goes away.
    let mut got_all = Vec::new();
    let mut got_key = Vec::new();
    let mut health = Vec::new();
    let mut take = |m: WatchMsg, got_all: &mut Vec<Revision>, got_key: &mut Vec<Revision>| match m {
        WatchMsg::Events { target, events } => {
            let revs = events.iter().map(|e| e.revision());
            if target == all {
                got_all.extend(revs);
            } else {
                got_key.extend(revs);
            }
        }
        WatchMsg::Health(h) => health.push(h),
        m => panic!("unexpected {m:?}"),
    };
    let end = Instant::now() + Duration::from_secs(10);
    while (got_all.len() < 6 || got_key.len() < 3) && Instant::now() < end {
        if let Ok(m) = rx.recv_timeout(Duration::from_millis(100)) {
            take(m, &mut got_all, &mut got_key);
        }
    }
    assert_eq!((&got_all, &got_key), (&want_all, &want_key));
    server.stop();
    // The watcher says so; a write fails as Unavailable and health() agrees.
    let m = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("a Health message");
    assert!(
        matches!(&m, WatchMsg::Health(Health::Unreachable { .. })),
        "{m:?}"
    );
    let t0 = Instant::now();
    let e = kv.txn(Txn {
        compares: vec![],
        ops: vec![p(b.k("k"), "during")],
    });
    assert!(matches!(e, Err(KvError::Unavailable(_))), "{e:?}");
    let failed_in = t0.elapsed();
    assert!(matches!(kv.health(), Health::Unreachable { .. }));
    server.restart().unwrap();
    // Written after the restart, maybe before the watcher is back: none lost.
    for i in 0..3 {
        let r = put(&kv, &b.k("k"), &format!("after{i}"));
        want_all.push(r);
        want_key.push(r);
    }
    assert_eq!(kv.health(), Health::Connected);
    let end = Instant::now() + Duration::from_secs(15);
    while (got_all.len() < want_all.len() || got_key.len() < want_key.len()) && Instant::now() < end
    {
        if let Ok(m) = rx.recv_timeout(Duration::from_millis(100)) {
            take(m, &mut got_all, &mut got_key);
        }
    }
    // Nothing repeated either: no more events arrive.
    while let Ok(m) = rx.recv_timeout(Duration::from_millis(300)) {
        take(m, &mut got_all, &mut got_key);
    }
    assert_eq!(got_all, want_all, "prefix target: lost or repeated events");
    assert_eq!(got_key, want_key, "key target: lost or repeated events");
    assert!(
        health.contains(&Health::Connected),
        "no Health(Connected) after the restart: {health:?}"
    );
    assert!(
        failed_in < Duration::from_secs(6),
        "a write took {failed_in:?} to fail"
    );
    let d = kv.describe();
    assert!(
        d.starts_with("etcd 3.") && d.ends_with(&server.endpoint()),
        "{d}"
    );
}

#[test]
fn etcd_too_large_from_etcd_itself() {
    let Some((server, _)) = etcd_only("etcd_too_large_from_etcd_itself") else {
        return;
    };
    // Our own check passes (a higher limit than etcd's): etcd refuses, same error.
    let mut opts = EtcdOptions::from_url(&server.url()).unwrap();
    opts.max_request_bytes = 8 << 20;
    let kv = EtcdKv::connect(opts).unwrap();
    // Over --max-request-bytes (raft's check), and over its gRPC limit (+ 512 KiB).
    for size in [ETCD_MAX_REQUEST_BYTES + (200 << 10), 3 << 20] {
        let big = "x".repeat(size);
        let e = kv.txn(Txn {
            compares: vec![],
            ops: vec![p("/t/big".into(), &big)],
        });
        match e {
            Err(KvError::TooLarge { size: s, .. }) => assert!(s > size, "{s} {size}"),
            other => panic!("{size}: {other:?}"),
        }
        assert_eq!(value(&kv, "/t/big"), None);
    }
    assert_eq!(kv.health(), Health::Connected);
}

#[test]
fn etcd_unreachable_answers_unavailable() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut opts = EtcdOptions::from_url(&format!("etcd://127.0.0.1:{port}")).unwrap();
    opts.request_timeout = Duration::from_secs(2);
    let kv = EtcdKv::connect(opts).expect("connecting is lazy");
    let t0 = Instant::now();
    let e = kv.get("/x", None);
    assert!(matches!(e, Err(KvError::Unavailable(_))), "{e:?}");
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
    match kv.health() {
        Health::Unreachable { since, error } => {
            assert!(since > 0 && !error.is_empty());
        }
        h => panic!("{h:?}"),
    }
    assert!(kv.describe().contains("unknown"), "{}", kv.describe());
}

#[test]
fn etcd_urls_and_options() {
    let ok = EtcdOptions::from_url("etcd://10.0.0.1:2379,h2:2379,[::1]:2379/").unwrap();
    assert_eq!(ok.endpoints, vec!["10.0.0.1:2379", "h2:2379", "[::1]:2379"]);
    assert!(!ok.tls);
    assert_eq!(ok.url(), "etcd://10.0.0.1:2379,h2:2379,[::1]:2379");
    assert!(EtcdOptions::from_url("etcds://h:1").unwrap().tls);
    for (url, says) in [
        ("http://h:2379", "scheme must be etcd:// or etcds://"),
        ("h:2379", "scheme"),
        ("etcd://", "no endpoint"),
        ("etcd://h", "\"h\": no port"),
        ("etcd://h:0", "port \"0\""),
        ("etcd://h:70000", "port \"70000\""),
        ("etcd://h:x", "port \"x\""),
        ("etcd://:2379", "no host"),
        ("etcd://a:1,,b:2", "empty"),
        ("etcd://a:1/prefix", "without a path"),
        ("etcd://::1:2379", "in brackets"),
        ("etcd://[::1:2379", "closing ']'"),
    ] {
        match EtcdOptions::from_url(url) {
            Err(KvError::Invalid(e)) => {
                assert!(e.contains(says) && e.contains(url), "{url}: {e}")
            }
            other => panic!("{url}: {other:?}"),
        }
    }
    // TLS files: only with etcds://, a certificate with its key, readable.
    let mut o = EtcdOptions::from_url("etcd://h:1").unwrap();
    o.ca = Some("/nonexistent/ca.pem".into());
    let e = EtcdKv::connect(o.clone()).err().unwrap();
    assert!(e.to_string().contains("use etcds://"), "{e}");
    o.tls = true;
    let e = EtcdKv::connect(o.clone()).err().unwrap();
    assert!(
        e.to_string()
            .contains("cannot read the CA certificate /nonexistent/ca.pem"),
        "{e}"
    );
    o.cert = Some("/nonexistent/c.pem".into());
    let e = EtcdKv::connect(o).err().unwrap();
    assert!(e.to_string().contains("needs its key"), "{e}");
}
