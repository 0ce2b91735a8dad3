//! The host agent on [`MemKv`], through a wrapper ([`Gate`]) that can hold a watcher's
//! messages back (an outage the watcher does not see) and inject `Compacted`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;
use crate::classifier::CompiledPolicy;
use crate::control::kv::{KeyValue, MemKv, Snapshot, TxnOutcome};
use crate::control::shared::layout::{MemberValue, MetaValue, NetworkValue, RuleValue};
use crate::control::shared::sim::{commit, group_value, port_delete_ops, port_ops, put, tcp_rule};
use crate::flow::{FlowKey, FAMILY_V4};
use crate::policy::Direction;

/// A [`Kv`] over a [`MemKv`] whose watchers' messages can be held back (`hold`) and
/// whose targets are known, to inject messages.
struct Gate {
    inner: MemKv,
    hold: Arc<AtomicBool>,
    sinks: Mutex<Vec<(Sink, Targets)>>,
}

/// A watcher's targets, shared with the gate.
type Targets = Arc<Mutex<Vec<Target>>>;

struct GateWatcher {
    inner: Box<dyn Watcher>,
    targets: Arc<Mutex<Vec<Target>>>,
}

impl Watcher for GateWatcher {
    fn add(&mut self, target: Target, from: Revision) -> Result<(), KvError> {
        self.inner.add(target.clone(), from)?;
        lock(&self.targets).push(target);
        Ok(())
    }
    fn remove(&mut self, target: &Target) -> Result<(), KvError> {
        lock(&self.targets).retain(|t| t != target);
        self.inner.remove(target)
    }
    fn targets(&self) -> Vec<Target> {
        self.inner.targets()
    }
}

impl Gate {
    fn new() -> Arc<Gate> {
        Arc::new(Gate {
            inner: MemKv::new(),
            hold: Arc::new(AtomicBool::new(false)),
            sinks: Mutex::new(Vec::new()),
        })
    }
    /// Tell every watcher that each of its targets was compacted (as etcd does when a
    /// watch resumes from a compacted revision), and let messages through again. Each
    /// target is removed from the inner watcher first: the watch is gone.
    fn compacted(&self) {
        for (sink, targets) in lock(&self.sinks).iter() {
            for t in lock(targets).clone() {
                sink(WatchMsg::Compacted {
                    target: t,
                    compact_revision: self.inner.compact_revision(),
                });
            }
        }
        self.hold.store(false, Ordering::SeqCst);
    }
}

impl Kv for Gate {
    fn get(
        &self,
        key: &str,
        at: Option<Revision>,
    ) -> Result<(Option<KeyValue>, Revision), KvError> {
        self.inner.get(key, at)
    }
    fn range(&self, prefix: &str, at: Option<Revision>) -> Result<Snapshot, KvError> {
        self.inner.range(prefix, at)
    }
    fn txn(&self, txn: Txn) -> Result<TxnOutcome, KvError> {
        self.inner.txn(txn)
    }
    fn watcher(&self, sink: Sink) -> Result<Box<dyn Watcher>, KvError> {
        let hold = self.hold.clone();
        let s2 = sink.clone();
        let gated: Sink = Arc::new(move |m| {
            if !hold.load(Ordering::SeqCst) {
                s2(m)
            }
        });
        let targets = Arc::new(Mutex::new(Vec::new()));
        lock(&self.sinks).push((sink, targets.clone()));
        Ok(Box::new(GateWatcher {
            inner: self.inner.watcher(gated)?,
            targets,
        }))
    }
    fn grant_lease(&self, ttl: i64) -> Result<Box<dyn Lease>, KvError> {
        self.inner.grant_lease(ttl)
    }
    fn compact(&self, revision: Revision) -> Result<(), KvError> {
        self.inner.compact(revision)
    }
    fn health(&self) -> Health {
        self.inner.health()
    }
    fn describe(&self) -> String {
        "gate over local".into()
    }
}

fn keys() -> Keys {
    Keys::new("/t/")
}

fn meta(id: &str) -> MetaValue {
    MetaValue {
        id: id.into(),
        created_at: "2026-01-01T00:00:00Z".into(),
        updated_at: "2026-01-01T00:00:00Z".into(),
        revision_number: 1,
    }
}

/// Schema, a network, groups `web` (tcp 80 from anywhere), `db` (tcp 5432 from `web`),
/// `remote` (no rules); returns the revision.
fn seed(kv: &dyn Kv) -> Revision {
    let k = keys();
    commit(
        kv,
        vec![
            put(
                k.schema(),
                &SchemaValue {
                    schema_version: SCHEMA_VERSION,
                    written_by: "test".into(),
                },
            ),
            put(
                k.network("net0"),
                &NetworkValue {
                    meta: meta("net0"),
                    name: "net0".into(),
                    subnets: vec![],
                    network_type: None,
                    segmentation_id: None,
                },
            ),
            put(
                k.group("web"),
                &group_value(
                    "web",
                    "web",
                    vec![tcp_rule("w1", 80, Some("0.0.0.0/0"), None)],
                ),
            ),
            put(
                k.group("db"),
                &group_value("db", "db", vec![tcp_rule("d1", 5432, None, Some("web"))]),
            ),
            put(k.group("remote"), &group_value("remote", "remote", vec![])),
        ],
    )
    .unwrap()
}

/// A recording target: the models applied, or refuses while `refuse` is set.
struct Rec {
    models: Mutex<Vec<Model>>,
    refuse: AtomicBool,
}

impl ApplyPolicy for Rec {
    fn apply_policy(&self, model: &Model) -> Result<(), crate::control::store::ApplyError> {
        if self.refuse.load(Ordering::SeqCst) {
            return Err(crate::control::store::ApplyError::Rejected(
                "refused by the test".into(),
            ));
        }
        lock(&self.models).push(model.clone());
        Ok(())
    }
}

fn start(kv: Arc<dyn Kv>, host: &str) -> (Agent, Arc<Rec>) {
    start_with(kv, host, AgentOptions::default())
}

fn start_with(kv: Arc<dyn Kv>, host: &str, opts: AgentOptions) -> (Agent, Arc<Rec>) {
    let rec = Arc::new(Rec {
        models: Mutex::new(Vec::new()),
        refuse: AtomicBool::new(false),
    });
    let a = Agent::start(kv, keys(), host, rec.clone(), opts).unwrap();
    (a, rec)
}

/// An agent with a VTEP (`10.255.0.N`), and a lease of `ttl` seconds.
fn start_vtep(kv: Arc<dyn Kv>, host: &str, n: u8, ttl: i64) -> Agent {
    let opts = AgentOptions {
        vtep: Some(std::net::Ipv4Addr::new(10, 255, 0, n).into()),
        lease_ttl: ttl,
        ..AgentOptions::default()
    };
    start_with(kv, host, opts).0
}

/// Wait until every agent saw its own `hosts/` key (a host with ports watches it: a late
/// liveness put is an event).
fn settled(kv: &dyn Kv, agents: &[&Agent]) {
    for a in agents {
        let key = keys().host(a.host());
        wait("hosts/ key", || kv.get(&key, None).unwrap().0.is_some());
        let rev = kv.get(&key, None).unwrap().0.unwrap().mod_revision;
        assert!(a.wait_applied(rev, Duration::from_secs(10)));
    }
}

/// The ports of an agent's model bound to another host, as `name@host`.
fn remote_ports(a: &Agent) -> Vec<String> {
    a.model().map_or(vec![], |m| {
        m.ports
            .iter()
            .filter(|p| p.host.as_deref() != Some(a.host()))
            .map(|p| format!("{}@{}", p.name, p.host.as_deref().unwrap_or("")))
            .collect()
    })
}

fn wait(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn port_names(a: &Agent) -> Vec<String> {
    a.model()
        .map_or(vec![], |m| m.ports.iter().map(|p| p.name.clone()).collect())
}

fn tcp_key(src: [u8; 4], dst: [u8; 4], dport: u16) -> FlowKey {
    FlowKey {
        src: FlowKey::map_v4(src),
        dst: FlowKey::map_v4(dst),
        sport: 40000,
        dport,
        proto: 6,
        family: FAMILY_V4,
        _pad: [0; 2],
    }
}

#[test]
fn schema_absent_or_other_version_refuses() {
    let kv: Arc<dyn Kv> = Arc::new(MemKv::new());
    let rec: Arc<dyn ApplyPolicy> = Arc::new(|_: &Model| Ok(()));
    let e = Agent::start(
        kv.clone(),
        keys(),
        "h",
        rec.clone(),
        AgentOptions::default(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        e.contains("no schema key /t/schema") && e.contains("version 1"),
        "{e}"
    );
    commit(
        kv.as_ref(),
        vec![put(
            keys().schema(),
            &SchemaValue {
                schema_version: 7,
                written_by: "sgswitch 9.0".into(),
            },
        )],
    )
    .unwrap();
    let e = Agent::start(kv, keys(), "h", rec, AgentOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("schema version 7 (written by sgswitch 9.0)"),
        "{e}"
    );
    assert!(e.contains("speaks version 1"), "{e}");
}

#[test]
fn interest_follows_ports_liveness_and_status() {
    let mem = MemKv::new();
    let kv: Arc<dyn Kv> = Arc::new(mem.clone());
    seed(kv.as_ref());
    let k = keys();
    commit(kv.as_ref(), port_ops(&k, "h1", "p1", 1, &["web"], "net0")).unwrap();
    let (a, rec) = start(kv.clone(), "h1");
    wait("p1", || port_names(&a) == ["p1"]);
    // Liveness: hosts/h1 bound to a lease.
    let (h, _) = kv.get(&k.host("h1"), None).unwrap();
    assert_ne!(h.expect("hosts/h1").lease, 0);
    // web, its port, the network, settings, host-ports/h1/, net-ports/net0/, hosts/h1.
    assert_eq!(a.stats().targets, 7);
    // A port in db: db's key and web's members come in (db's rule references web).
    let rev = commit(kv.as_ref(), port_ops(&k, "h1", "p2", 2, &["db"], "net0")).unwrap();
    assert!(a.wait_applied(rev, Duration::from_secs(10)));
    assert_eq!(port_names(&a), ["p1", "p2"]);
    // + ports/p2, security-groups/db, members/web/.
    assert_eq!(a.stats().targets, 10);
    let m = a.model().unwrap();
    assert!(m.group("db").is_some() && m.group("web").is_some());
    // Status: the revision applied.
    wait("status", || {
        kv.get(&k.status("h1"), None)
            .unwrap()
            .0
            .and_then(|v| serde_json::from_slice::<StatusValue>(&v.value).ok())
            .is_some_and(|s| s.applied_revision >= rev && s.errors.is_empty())
    });
    // p1 goes: its key and web's (still referenced by db's rule) stay.
    let rev = commit(
        kv.as_ref(),
        port_delete_ops(&k, "h1", "p2", &["db"], "net0"),
    )
    .unwrap();
    assert!(a.wait_applied(rev, Duration::from_secs(10)));
    assert_eq!(port_names(&a), ["p1"]);
    assert_eq!(a.stats().targets, 7);
    assert!(lock(&rec.models).len() >= 3);
    drop(a);
    // Stopped: the lease is revoked, hosts/h1 is gone.
    wait("hosts/h1 gone", || {
        kv.get(&k.host("h1"), None).unwrap().0.is_none()
    });
}

/// A rule change that adds or drops a remote-group reference moves the interest set
/// (the agent's shortcut for rule and member changes must not skip it); one that does
/// not keeps it.
#[test]
fn interest_follows_rule_references() {
    let kv: Arc<dyn Kv> = Arc::new(MemKv::new());
    seed(kv.as_ref());
    let k = keys();
    let rev = commit(kv.as_ref(), port_ops(&k, "h1", "p1", 1, &["web"], "net0")).unwrap();
    let (a, _) = start(kv.clone(), "h1");
    assert!(a.wait_applied(rev, Duration::from_secs(10)));
    assert_eq!(a.stats().targets, 7);
    let web = |rules: Vec<RuleValue>| vec![put(k.group("web"), &group_value("web", "web", rules))];
    let member = |id: &str, ip: &str| {
        put(
            k.member("db", id),
            &MemberValue {
                addresses: vec![ip.into()],
                network_id: "net0".into(),
            },
        )
    };
    // A member of db before anyone references db: not watched, not in the model.
    let rev = commit(kv.as_ref(), vec![member("m1", "10.7.0.1/32")]).unwrap();
    // web's rule now allows from db: db's key and members/db/ come in.
    let rev = commit(
        kv.as_ref(),
        web(vec![tcp_rule("w2", 443, None, Some("db"))]),
    )
    .unwrap()
    .max(rev);
    assert!(a.wait_applied(rev, Duration::from_secs(10)));
    assert_eq!(a.stats().targets, 9);
    let m = a.model().unwrap();
    assert_eq!(m.remote_members["db"], vec!["10.7.0.1/32".parse().unwrap()]);
    // A member joins (a members/ key only) and a rule changes without touching the
    // references: the same targets, the model follows.
    let rev = commit(kv.as_ref(), vec![member("m2", "10.7.0.2/32")]).unwrap();
    assert!(a.wait_applied(rev, Duration::from_secs(10)));
    assert_eq!(a.model().unwrap().remote_members["db"].len(), 2);
    let rev = commit(
        kv.as_ref(),
        web(vec![
            tcp_rule("w2", 443, None, Some("db")),
            tcp_rule("w3", 8443, None, Some("db")),
        ]),
    )
    .unwrap();
    assert!(a.wait_applied(rev, Duration::from_secs(10)));
    assert_eq!(a.stats().targets, 9);
    assert_eq!(a.model().unwrap().group("web").unwrap().rules.len(), 3);
    // The reference goes: db's keys are unwatched and leave the model.
    let rev = commit(
        kv.as_ref(),
        web(vec![tcp_rule("w4", 22, Some("10.0.0.0/8"), None)]),
    )
    .unwrap();
    assert!(a.wait_applied(rev, Duration::from_secs(10)));
    assert_eq!(a.stats().targets, 7);
    let m = a.model().unwrap();
    assert!(m.remote_members.is_empty() && m.group("db").is_none());
    // A member of db now: no event reaches h1.
    let e = a.stats().events;
    let rev = commit(kv.as_ref(), vec![member("m3", "10.7.0.3/32")]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        a.stats().events,
        e,
        "db is not watched any more (rev {rev})"
    );
}

#[test]
fn no_event_for_groups_the_host_does_not_use() {
    let kv: Arc<dyn Kv> = Arc::new(MemKv::new());
    seed(kv.as_ref());
    let k = keys();
    commit(kv.as_ref(), port_ops(&k, "h1", "p1", 1, &["web"], "net0")).unwrap();
    let rev = commit(
        kv.as_ref(),
        port_ops(&k, "h2", "p2", 2, &["remote"], "net1"),
    )
    .unwrap();
    let (a1, _) = start(kv.clone(), "h1");
    let (a2, _) = start(kv.clone(), "h2");
    assert!(a1.wait_applied(rev, Duration::from_secs(10)));
    assert!(a2.wait_applied(rev, Duration::from_secs(10)));
    settled(kv.as_ref(), &[&a1, &a2]);
    let (e1, e2) = (a1.stats().events, a2.stats().events);
    // Ten rule changes in `remote` (h2's group), a port of h2 joining and leaving.
    let mut rev = 0;
    for i in 0..10u16 {
        let v = group_value(
            "remote",
            "remote",
            vec![tcp_rule("r", 1000 + i, Some("10.0.0.0/8"), None)],
        );
        rev = commit(kv.as_ref(), vec![put(k.group("remote"), &v)]).unwrap();
    }
    assert!(a2.wait_applied(rev, Duration::from_secs(10)));
    let rev = commit(
        kv.as_ref(),
        port_ops(&k, "h2", "p3", 3, &["remote"], "net1"),
    )
    .unwrap();
    assert!(a2.wait_applied(rev, Duration::from_secs(10)));
    let rev = commit(
        kv.as_ref(),
        port_delete_ops(&k, "h2", "p3", &["remote"], "net1"),
    )
    .unwrap();
    assert!(a2.wait_applied(rev, Duration::from_secs(10)));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        a1.stats().events,
        e1,
        "h1 got events for groups it does not use"
    );
    assert!(a2.stats().events >= e2 + 12);
}

#[test]
fn remote_ports_of_its_networks_only_and_while_their_host_lives() {
    let kv: Arc<dyn Kv> = Arc::new(MemKv::new());
    seed(kv.as_ref());
    let k = keys();
    commit(kv.as_ref(), port_ops(&k, "h1", "p1", 1, &["web"], "net0")).unwrap();
    commit(kv.as_ref(), port_ops(&k, "h2", "p2", 2, &["web"], "net0")).unwrap();
    let rev = commit(kv.as_ref(), port_ops(&k, "h3", "p3", 3, &["web"], "net1")).unwrap();
    let a1 = start_vtep(kv.clone(), "h1", 1, 10);
    let a2 = start_vtep(kv.clone(), "h2", 2, 1);
    let a3 = start_vtep(kv.clone(), "h3", 3, 10);
    for a in [&a1, &a2, &a3] {
        assert!(a.wait_applied(rev, Duration::from_secs(10)));
    }
    // h1 shares net0 with h2 (once h2's hosts/ key is there), not net1 with h3.
    wait("p2 at h1", || remote_ports(&a1) == ["p2@h2"]);
    assert_eq!(port_names(&a1), ["p1", "p2"]);
    wait("p1 at h2", || remote_ports(&a2) == ["p1@h1"]);
    assert!(remote_ports(&a3).is_empty());
    settled(kv.as_ref(), &[&a1, &a2, &a3]);
    let e3 = a3.stats().events;
    // The overlay part of the model: this host, the live hosts with their VTEPs.
    let m = a1.model().unwrap();
    assert_eq!(m.local_host.as_deref(), Some("h1"));
    let hosts: Vec<String> = m
        .hosts
        .iter()
        .map(|h| format!("{}={}", h.name, h.vtep))
        .collect();
    // h3 has no port on net0: h1 does not watch its key.
    assert_eq!(hosts, ["h1=10.255.0.1", "h2=10.255.0.2"]);
    assert!(m.ports.iter().all(|p| m.is_remote(p) == (p.name == "p2")));
    // A port of h2 created on net0 reaches h1's model; deleted, it leaves it.
    let rev = commit(kv.as_ref(), port_ops(&k, "h2", "p4", 4, &["web"], "net0")).unwrap();
    assert!(a1.wait_applied(rev, Duration::from_secs(10)));
    assert_eq!(remote_ports(&a1), ["p2@h2", "p4@h2"]);
    let m = a1.model().unwrap();
    let p4 = m.ports.iter().find(|p| p.name == "p4").unwrap();
    assert_eq!(p4.fixed_ips, [std::net::IpAddr::from([10, 0, 0, 5])]);
    assert!(p4.security_groups.is_empty() && p4.backend.is_none());
    let rev = commit(
        kv.as_ref(),
        port_delete_ops(&k, "h2", "p4", &["web"], "net0"),
    )
    .unwrap();
    assert!(a1.wait_applied(rev, Duration::from_secs(10)));
    assert_eq!(remote_ports(&a1), ["p2@h2"]);
    // h3 (net1 only) received no event for them, though web's members/ moved: h3's
    // group has no remote-group rule.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(a3.stats().events, e3, "h3 got events of net0");
    // h2 dies: once its lease expires (TTL 1 s), its ports leave h1's model.
    a2.crash();
    assert_eq!(remote_ports(&a1), ["p2@h2"], "gone before the TTL");
    wait("h2's ports gone at h1", || remote_ports(&a1).is_empty());
    assert_eq!(port_names(&a1), ["p1"]);
    let m = a1.model().unwrap();
    assert!(m.hosts.iter().all(|h| h.name != "h2"), "{:?}", m.hosts);
}

#[test]
fn member_join_updates_the_remote_set() {
    let kv: Arc<dyn Kv> = Arc::new(MemKv::new());
    seed(kv.as_ref());
    let k = keys();
    // p1 (db, whose rule allows tcp 5432 from web) on h1; web's members elsewhere.
    let rev = commit(kv.as_ref(), port_ops(&k, "h1", "p1", 1, &["db"], "net0")).unwrap();
    let (a, _) = start(kv.clone(), "h1");
    assert!(a.wait_applied(rev, Duration::from_secs(10)));
    let m = a.model().unwrap();
    // web has no port here: a group with no rules.
    assert!(m.group("web").unwrap().rules.is_empty());
    assert!(m.remote_members.is_empty());
    let member = |id: &str, ip: &str| {
        put(
            k.member("web", id),
            &MemberValue {
                addresses: vec![ip.into()],
                network_id: "net0".into(),
            },
        )
    };
    let rev = commit(
        kv.as_ref(),
        vec![member("x", "10.9.0.7/32"), member("y", "10.9.1.0/24")],
    )
    .unwrap();
    assert!(a.wait_applied(rev, Duration::from_secs(10)));
    let m = a.model().unwrap();
    assert_eq!(m.remote_members["web"].len(), 2);
    let c = CompiledPolicy::compile(&m, 1);
    let to_p1 = |src| tcp_key(src, [10, 0, 0, 2], 5432);
    assert!(c.allows(0, Direction::Ingress, &to_p1([10, 9, 0, 7])));
    assert!(c.allows(0, Direction::Ingress, &to_p1([10, 9, 1, 200])));
    assert!(!c.allows(0, Direction::Ingress, &to_p1([10, 9, 0, 8])));
    // x leaves.
    let rev = commit(
        kv.as_ref(),
        vec![Op::Delete {
            key: k.member("web", "x"),
        }],
    )
    .unwrap();
    assert!(a.wait_applied(rev, Duration::from_secs(10)));
    let c = CompiledPolicy::compile(&a.model().unwrap(), 1);
    assert!(!c.allows(0, Direction::Ingress, &to_p1([10, 9, 0, 7])));
}

#[test]
fn compaction_resync_reads_diffs_and_rewatches() {
    let gate = Gate::new();
    let kv: Arc<dyn Kv> = gate.clone();
    seed(kv.as_ref());
    let k = keys();
    let rev = commit(kv.as_ref(), port_ops(&k, "h1", "p1", 1, &["web"], "net0")).unwrap();
    let (a, _) = start(kv.clone(), "h1");
    assert!(a.wait_applied(rev, Duration::from_secs(10)));
    // The agent misses everything from now on (an outage), while p2 comes, web's rule
    // changes, and history is compacted.
    gate.hold.store(true, Ordering::SeqCst);
    commit(kv.as_ref(), port_ops(&k, "h1", "p2", 2, &["web"], "net0")).unwrap();
    let v = group_value(
        "web",
        "web",
        vec![tcp_rule("w2", 8080, Some("0.0.0.0/0"), None)],
    );
    let rev = commit(kv.as_ref(), vec![put(k.group("web"), &v)]).unwrap();
    kv.compact(rev).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(port_names(&a), ["p1"]);
    gate.compacted();
    assert!(a.wait_applied(rev, Duration::from_secs(10)));
    wait("p2 after the resync", || port_names(&a) == ["p1", "p2"]);
    let m = a.model().unwrap();
    assert_eq!(m.group("web").unwrap().rules[1].port_range_min, Some(8080));
    // One resync per burst of `Compacted` messages: the gate sends one per target, and
    // the agent may wake between two of them (more targets since net-ports/ and hosts/).
    assert!(a.stats().resyncs >= 1);
    // Watching again: a later change arrives as an event.
    let rev = commit(
        kv.as_ref(),
        port_delete_ops(&k, "h1", "p2", &["web"], "net0"),
    )
    .unwrap();
    assert!(a.wait_applied(rev, Duration::from_secs(10)));
    assert_eq!(port_names(&a), ["p1"]);
}

#[test]
fn failure_keeps_the_previous_model_and_reports() {
    let kv: Arc<dyn Kv> = Arc::new(MemKv::new());
    seed(kv.as_ref());
    let k = keys();
    let rev = commit(kv.as_ref(), port_ops(&k, "h1", "p1", 1, &["web"], "net0")).unwrap();
    let (a, rec) = start(kv.clone(), "h1");
    assert!(a.wait_applied(rev, Duration::from_secs(10)));
    let good = a.model().unwrap();
    let status = || {
        kv.get(&k.status("h1"), None)
            .unwrap()
            .0
            .and_then(|v| serde_json::from_slice::<StatusValue>(&v.value).ok())
    };
    // A rule that fails validation (port range min above max) in web.
    let mut bad = tcp_rule("bad", 90, Some("0.0.0.0/0"), None);
    bad.port_range_max = Some(80);
    let v = group_value("web", "web", vec![bad]);
    let bad_rev = commit(kv.as_ref(), vec![put(k.group("web"), &v)]).unwrap();
    wait("an error in status/h1", || {
        status().is_some_and(|s| !s.errors.is_empty())
    });
    let s = status().unwrap();
    assert!(
        s.applied_revision >= rev && s.applied_revision < bad_rev,
        "{s:?}"
    );
    assert!(s.errors[0].message.contains("port_range"), "{s:?}");
    assert_eq!(a.model().unwrap(), good);
    assert_eq!(a.stats().apply_failures, 1);
    // A target that refuses: same.
    rec.refuse.store(true, Ordering::SeqCst);
    let v = group_value(
        "web",
        "web",
        vec![tcp_rule("w3", 443, Some("0.0.0.0/0"), None)],
    );
    commit(kv.as_ref(), vec![put(k.group("web"), &v)]).unwrap();
    wait("the refusal", || a.stats().apply_failures == 2);
    assert_eq!(a.model().unwrap(), good);
    wait("the refusal in status/h1", || {
        status().is_some_and(|s| {
            s.errors
                .iter()
                .any(|e| e.message.contains("refused by the test"))
        })
    });
    // Accepted again: the newest model goes live.
    rec.refuse.store(false, Ordering::SeqCst);
    let v = group_value(
        "web",
        "web",
        vec![tcp_rule("w4", 444, Some("0.0.0.0/0"), None)],
    );
    let rev = commit(kv.as_ref(), vec![put(k.group("web"), &v)]).unwrap();
    assert!(a.wait_applied(rev, Duration::from_secs(10)));
    assert_eq!(
        a.model().unwrap().group("web").unwrap().rules[1].port_range_min,
        Some(444)
    );
    wait("a clean status", || {
        status().is_some_and(|s| s.errors.is_empty() && s.applied_revision >= rev)
    });
}

/// On a real etcd: the store stops (the agent keeps its model and reports the store
/// unreachable), comes back (Connected), and a change made after the restart applies.
#[test]
fn etcd_outage_keeps_the_model_and_converges() {
    use crate::control::kv::testing::EtcdServer;
    use crate::control::kv::EtcdKv;
    let Some(mut etcd) = EtcdServer::start_or_skip("etcd_outage_keeps_the_model_and_converges")
    else {
        return;
    };
    let kv: Arc<dyn Kv> = Arc::new(EtcdKv::open(&etcd.url()).unwrap());
    seed(kv.as_ref());
    let k = keys();
    let rev = commit(kv.as_ref(), port_ops(&k, "h1", "p1", 1, &["web"], "net0")).unwrap();
    let (a, _) = start(kv.clone(), "h1");
    assert!(a.wait_applied(rev, Duration::from_secs(10)));
    let good = a.model().unwrap();
    etcd.stop();
    wait("Unreachable", || {
        matches!(a.stats().health, Health::Unreachable { .. })
    });
    assert_eq!(a.model().unwrap(), good, "nothing is flushed");
    etcd.restart().unwrap();
    wait("Connected", || a.stats().health == Health::Connected);
    let rev = loop {
        match commit(kv.as_ref(), port_ops(&k, "h1", "p2", 2, &["web"], "net0")) {
            Ok(r) => break r,
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    assert!(a.wait_applied(rev, Duration::from_secs(10)));
    assert_eq!(port_names(&a), ["p1", "p2"]);
    // The liveness key is there (the lease outlived the short outage, or was renewed).
    wait("hosts/h1", || {
        kv.get(&k.host("h1"), None).is_ok_and(|(v, _)| v.is_some())
    });
}

/// `sim-hosts`' scenarios run end to end on a real etcd, at a small N.
#[test]
fn sim_scenarios_on_etcd() {
    use crate::control::kv::testing::EtcdServer;
    use crate::control::kv::EtcdKv;
    use crate::control::shared::sim::{self, Scenario, SimOptions};
    let Some(etcd) = EtcdServer::start_or_skip("sim_scenarios_on_etcd") else {
        return;
    };
    let url = etcd.url();
    let connect = move |_| EtcdKv::open(&url).map(|kv| Arc::new(kv) as Arc<dyn Kv>);
    for scenario in [
        Scenario::Propagation,
        Scenario::RemoteGroup,
        Scenario::Churn,
    ] {
        let o = SimOptions {
            hosts: 10,
            scenario,
            changes: 5,
            members: 200,
            interested: Some(3),
            duration: Duration::from_secs(1),
            rate: 20,
            ..SimOptions::default()
        };
        let out = sim::run(&connect, &o).unwrap().join("\n");
        assert!(
            out.contains("store: etcd 3.4") || out.contains("store: etcd"),
            "{out}"
        );
        assert!(out.contains("apply failures: 0"), "{out}");
        if scenario == Scenario::RemoteGroup {
            assert!(
                out.contains("events during the joins: 0 in all at the 7 other hosts"),
                "{out}"
            );
        }
    }
}
