//! Simulated hosts (`sgswitch sim-hosts`): N host agents in one process, each with its
//! own store client, lease, interest set and compiler, on a null dataplane that compiles
//! every model with the real classifier compiler ([`CompiledPolicy::compile`]) and
//! records when each revision was applied; and the scenarios of issue #18's benchmarks.
//!
//! The store is seeded with direct puts in the key layout ([`super::layout`] values;
//! batches of [`SEED_BATCH`] ops per transaction, under etcd's default 128 ops): the
//! schema key, the networks (`--networks`, default one per host), the groups,
//! `--ports-per-host` ports per host with their `host-ports/`, `members/` and
//! `net-ports/` keys. Every host has a VTEP ([`vtep_of`]).
//!
//! Scenarios (every one starts by starting the N agents, which is the cold start):
//! * `cold-start`: time from starting the agents until every host applied its model;
//! * `propagation`: a rule added to a group every host's ports use, again and again:
//!   put → applied per host, and put → last host applied per change;
//! * `remote-group`: a group of `--members` member keys (ports on no simulated host)
//!   referenced by a rule of the group of a tenth of the hosts (`--interested`); members
//!   join: put → applied at the interested hosts, and the events the others received
//!   during the joins (must be 0);
//! * `churn`: `--rate` port creates+deletes a second on random hosts for `--duration`
//!   (a port create is one transaction: its record, its `host-ports/` entry and its
//!   `members/` key): put → applied at the owning host; p99 of the first and second half
//!   (a growing lag shows as a larger second half);
//! * `l2pop`: the hosts' ports on `--networks` networks (default 10; host `h` on
//!   `net{h % K}`), ports created on `net0` one at a time: put → applied at the hosts of
//!   `net0` (their models gain the remote port), and the events at the hosts of the
//!   other networks (must be 0);
//! * `member-join-compile` (no store): the compile time of a host model with R rules
//!   referencing a remote group, and what one member joining costs: the member sets are
//!   swapped, the rules kept ([`CompiledPolicy::with_members`]), beside a full compile.
//!
//! Memory per simulated host = the process's RSS growth while starting the agents / N.
//!
//! Owns: the simulation, its seeding and its report. May not touch: the dataplane (its
//! dataplane is [`NullDataplane`]), keys outside the prefix it is given.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::agent::{Agent, AgentOptions};
use super::codec;
use super::layout::{
    GroupValue, Keys, MemberValue, MetaValue, NetworkValue, PortValue, RuleValue, SchemaValue,
    SCHEMA_VERSION,
};
use super::model_sync::assign_changed;
use crate::classifier::{members_only_change, CompiledPolicy};
use crate::control::connect::ApplyPolicy;
use crate::control::kv::{Kv, KvError, Op, Revision, Txn, TxnOutcome};
use crate::control::store::ApplyError;
use crate::policy::Model;

/// The pause after a change has reached every host before the next one (propagation,
/// remote-group): each change is measured on its own, once the previous one's status
/// writes (one per host) are done.
pub const CHANGE_GAP: Duration = Duration::from_millis(200);

/// Ops per seeding transaction (etcd's default `--max-txn-ops` is 128).
pub const SEED_BATCH: usize = 100;

/// The benchmark scenarios.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    ColdStart,
    Propagation,
    RemoteGroup,
    Churn,
    MemberJoinCompile,
    L2pop,
}

impl Scenario {
    pub fn parse(s: &str) -> Option<Scenario> {
        Some(match s {
            "cold-start" => Scenario::ColdStart,
            "propagation" => Scenario::Propagation,
            "remote-group" => Scenario::RemoteGroup,
            "churn" => Scenario::Churn,
            "member-join-compile" => Scenario::MemberJoinCompile,
            "l2pop" => Scenario::L2pop,
            _ => return None,
        })
    }
}

/// What to simulate.
#[derive(Clone, Debug)]
pub struct SimOptions {
    pub hosts: usize,
    pub ports_per_host: usize,
    pub scenario: Scenario,
    /// Churn: how long; propagation / remote-group: at most this long for the changes.
    pub duration: Duration,
    /// Propagation / remote-group: how many changes.
    pub changes: usize,
    /// Remote-group: members of the remote group; member-join-compile: too.
    pub members: usize,
    /// Remote-group: hosts whose ports reference the remote group (default N / 10).
    pub interested: Option<usize>,
    /// Churn: creates+deletes a second.
    pub rate: u32,
    /// Member-join-compile: rules of the host model (comma list in the CLI).
    pub rules: Vec<usize>,
    /// Networks the hosts' ports are on: host `h`'s on `net{h % K}` (default: one per host
    /// (its own); `l2pop`: 10).
    pub networks: Option<usize>,
    /// Compile each model with the real compiler (default true).
    pub compile: bool,
    /// Agents write `status/HOST` after each apply.
    pub write_status: bool,
    pub prefix: String,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            hosts: 10,
            ports_per_host: 2,
            scenario: Scenario::Propagation,
            duration: Duration::from_secs(10),
            changes: 50,
            members: 10_000,
            interested: None,
            rate: 100,
            rules: vec![1_000, 10_000],
            networks: None,
            compile: true,
            write_status: true,
            prefix: "/sgswitch-sim/".into(),
        }
    }
}

/// When each host applied which revision.
#[derive(Default)]
pub struct Applied {
    log: Mutex<Vec<(Revision, Instant)>>,
}

impl Applied {
    /// The first time this host applied a revision `>= rev`.
    pub fn at(&self, rev: Revision) -> Option<Instant> {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let i = log.partition_point(|(r, _)| *r < rev);
        log.get(i).map(|(_, t)| *t)
    }
}

/// The null dataplane: compiles the model (unless `compile` is off) as the switch does
/// (a model that differs from the last only in remote-group members derives the
/// compiled policy from the last one, [`CompiledPolicy::with_members`]; any other
/// model recompiles only the group sets it touches, [`CompiledPolicy::recompile`]) and
/// keeps nothing else. Like the classifier's `Recompiler`, except for the copy of the
/// last model it keeps: brought up to date by cloning what differs
/// ([`super::model_sync::assign_changed`]), not cloned whole and dropped per apply.
pub struct NullDataplane {
    compile: bool,
    last: Mutex<Option<(Model, Arc<CompiledPolicy>)>>,
}

impl NullDataplane {
    pub fn new(compile: bool) -> NullDataplane {
        NullDataplane {
            compile,
            last: Mutex::new(None),
        }
    }
}

impl ApplyPolicy for NullDataplane {
    fn apply_policy(&self, model: &Model) -> Result<(), ApplyError> {
        if !self.compile {
            return Ok(());
        }
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        match last.as_mut() {
            Some((m, p)) => {
                let next = if members_only_change(m, model) {
                    p.with_members(model, 1)
                } else {
                    p.recompile(m, model, 1)
                };
                *p = Arc::new(next);
                assign_changed(m, model);
            }
            None => *last = Some((model.clone(), Arc::new(CompiledPolicy::compile(model, 1)))),
        }
        std::hint::black_box(&*last);
        Ok(())
    }
}

/// Latency figures, milliseconds.
#[derive(Clone, Debug, Default)]
pub struct Lat {
    pub n: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Lat {
    pub fn of(mut v: Vec<Duration>) -> Lat {
        if v.is_empty() {
            return Lat::default();
        }
        v.sort();
        let q = |p: f64| {
            let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
            v[i].as_secs_f64() * 1e3
        };
        Lat {
            n: v.len(),
            p50: q(0.50),
            p90: q(0.90),
            p99: q(0.99),
            max: q(1.0),
        }
    }
}

impl std::fmt::Display for Lat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "n={} p50={:.1} ms p90={:.1} ms p99={:.1} ms max={:.1} ms",
            self.n, self.p50, self.p90, self.p99, self.max
        )
    }
}

/// Opens one store client per simulated host.
pub type Connect<'a> = &'a (dyn Fn(usize) -> Result<Arc<dyn Kv>, KvError> + Sync);

/// The resident set size of this process, bytes.
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn meta(id: &str) -> MetaValue {
    MetaValue {
        id: id.to_string(),
        created_at: "2026-01-01T00:00:00Z".into(),
        updated_at: "2026-01-01T00:00:00Z".into(),
        revision_number: 1,
    }
}

/// An ingress TCP rule from `remote_ip_prefix` or `remote_group_id`.
pub fn tcp_rule(id: &str, port: u16, prefix: Option<&str>, group: Option<&str>) -> RuleValue {
    RuleValue {
        meta: meta(id),
        direction: "ingress".into(),
        ethertype: "IPv4".into(),
        protocol: Some("tcp".into()),
        port_range_min: Some(port),
        port_range_max: Some(port),
        remote_ip_prefix: prefix.map(str::to_string),
        remote_group_id: group.map(str::to_string),
        remote_address_group_id: None,
        description: String::new(),
    }
}

/// A group value with an egress-any rule and `rules`.
pub fn group_value(id: &str, name: &str, mut rules: Vec<RuleValue>) -> GroupValue {
    let mut egress = tcp_rule(&format!("{id}-egress"), 0, None, None);
    egress.direction = "egress".into();
    egress.protocol = None;
    egress.port_range_min = None;
    egress.port_range_max = None;
    rules.insert(0, egress);
    GroupValue {
        meta: meta(id),
        name: name.to_string(),
        description: String::new(),
        stateful: true,
        security_group_rules: rules,
    }
}

/// The address of simulated port `i` (10.0.0.0/8 upwards).
pub fn port_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000u32 + i as u32 + 1)
}

/// The ops creating port `id` (index `i`) on `host` in `groups` on network `net`, with
/// its `members/` keys and its `net-ports/` key (as the API writes them).
pub fn port_ops(
    keys: &Keys,
    host: &str,
    id: &str,
    i: usize,
    groups: &[&str],
    net: &str,
) -> Vec<Op> {
    let ip = port_ip(i).to_string();
    let mac = format!(
        "fa:16:3e:{:02x}:{:02x}:{:02x}",
        (i >> 16) & 0xff,
        (i >> 8) & 0xff,
        i & 0xff
    );
    let v = PortValue {
        meta: meta(id),
        name: id.to_string(),
        network_id: net.into(),
        mac_address: mac,
        fixed_ips: vec![ip.clone()],
        security_groups: groups.iter().map(|g| g.to_string()).collect(),
        port_security_enabled: true,
        allowed_address_pairs: Vec::new(),
        host_id: Some(host.to_string()),
        profile: Default::default(),
    };
    let mut ops = vec![
        Op::Put {
            key: keys.host_port(host, id),
            value: Vec::new(),
            lease: None,
        },
        put(keys.net_port(net, id), &codec::net_port_value(&v)),
    ];
    for g in groups {
        ops.push(put(
            keys.member(g, id),
            &MemberValue {
                addresses: vec![format!("{ip}/32")],
                network_id: net.into(),
            },
        ));
    }
    ops.push(put(keys.port(id), &v));
    ops
}

/// The ops deleting what [`port_ops`] made.
pub fn port_delete_ops(keys: &Keys, host: &str, id: &str, groups: &[&str], net: &str) -> Vec<Op> {
    let mut ops = vec![
        Op::Delete { key: keys.port(id) },
        Op::Delete {
            key: keys.host_port(host, id),
        },
        Op::Delete {
            key: keys.net_port(net, id),
        },
    ];
    ops.extend(groups.iter().map(|g| Op::Delete {
        key: keys.member(g, id),
    }));
    ops
}

pub fn put<T: serde::Serialize>(key: String, v: &T) -> Op {
    Op::Put {
        key,
        value: serde_json::to_vec(v).unwrap_or_default(),
        lease: None,
    }
}

/// Run `ops` in transactions of [`SEED_BATCH`]; the last revision.
pub fn put_all(kv: &dyn Kv, ops: Vec<Op>) -> Result<Revision, KvError> {
    let mut rev = 0;
    let mut ops = ops.into_iter().peekable();
    while ops.peek().is_some() {
        let batch: Vec<Op> = ops.by_ref().take(SEED_BATCH).collect();
        rev = commit(kv, batch)?;
    }
    Ok(rev)
}

/// One transaction without compares; its revision.
pub fn commit(kv: &dyn Kv, ops: Vec<Op>) -> Result<Revision, KvError> {
    match kv.txn(Txn {
        compares: Vec::new(),
        ops,
    })? {
        TxnOutcome::Committed { revision } | TxnOutcome::Failed { revision } => Ok(revision),
    }
}

pub fn host_name(h: usize) -> String {
    format!("sim-{h:05}")
}

/// The simulated world: agents and their records.
pub struct Sim {
    pub keys: Keys,
    pub agents: Vec<Agent>,
    pub applied: Vec<Arc<Applied>>,
    /// Seconds from starting the agents until every one applied the seeded revision.
    pub cold_start: Duration,
    pub rss_per_host: u64,
    /// When the cold start ended.
    pub started: Instant,
}

/// Seed: schema, network, groups `shared` (every port; remote prefix rules), `ref`
/// (a rule from remote group `remote`), `remote` (members only), and the ports.
fn seed(kv: &dyn Kv, keys: &Keys, o: &SimOptions) -> Result<Revision, KvError> {
    commit(
        kv,
        vec![Op::DeletePrefix {
            prefix: keys.prefix().to_string(),
        }],
    )?;
    let mut ops = vec![
        put(
            keys.schema(),
            &SchemaValue {
                schema_version: SCHEMA_VERSION,
                written_by: format!("sgswitch {} sim-hosts", env!("CARGO_PKG_VERSION")),
            },
        ),
        put(
            keys.group("shared"),
            &group_value(
                "shared",
                "shared",
                vec![tcp_rule("shared-r0", 22, Some("192.168.0.0/16"), None)],
            ),
        ),
        put(
            keys.group("ref"),
            &group_value(
                "ref",
                "ref",
                vec![tcp_rule("ref-r0", 443, None, Some("remote"))],
            ),
        ),
        put(
            keys.group("remote"),
            &group_value("remote", "remote", vec![]),
        ),
        put(keys.group("churn"), &group_value("churn", "churn", vec![])),
    ];
    commit(kv, std::mem::take(&mut ops))?;
    for n in 0..networks(o) {
        let id = format!("net{n}");
        ops.push(put(
            keys.network(&id),
            &NetworkValue {
                meta: meta(&id),
                name: id.clone(),
                subnets: Vec::new(),
                network_type: None,
                segmentation_id: None,
            },
        ));
    }
    let interested = interested(o);
    let mut i = 0;
    for h in 0..o.hosts {
        let host = host_name(h);
        for p in 0..o.ports_per_host {
            let id = format!("{host}-p{p}");
            let groups: &[&str] = if o.scenario == Scenario::RemoteGroup && h < interested {
                &["shared", "ref"]
            } else {
                &["shared"]
            };
            ops.extend(port_ops(keys, &host, &id, i, groups, &net_of(o, h)));
            i += 1;
        }
    }
    if o.scenario == Scenario::RemoteGroup {
        for m in 0..o.members {
            ops.push(put(
                keys.member("remote", &format!("member-{m}")),
                &MemberValue {
                    addresses: vec![format!("{}/32", port_ip(1_000_000 + m))],
                    network_id: "net0".into(),
                },
            ));
        }
    }
    let r = put_all(kv, ops)?;
    Ok(r)
}

/// How many networks the hosts' ports are on (see [`SimOptions::networks`]).
fn networks(o: &SimOptions) -> usize {
    let k = match (o.networks, o.scenario) {
        (Some(k), _) => k,
        (None, Scenario::L2pop) => 10,
        (None, _) => o.hosts,
    };
    k.clamp(1, o.hosts.max(1))
}

/// The network of host `h`'s ports.
pub fn net_of(o: &SimOptions, h: usize) -> String {
    format!("net{}", h % networks(o))
}

/// Host `h`'s VTEP (172.16.0.0/12 upwards).
pub fn vtep_of(h: usize) -> std::net::IpAddr {
    Ipv4Addr::from(0xac10_0000u32 + h as u32 + 1).into()
}

fn interested(o: &SimOptions) -> usize {
    o.interested.unwrap_or(o.hosts.div_ceil(10)).min(o.hosts)
}

/// Simulated hosts started at once by [`start`].
pub const START_THREADS: usize = 32;

/// A started host, or why not.
type Started = Result<(Agent, Arc<Applied>), String>;

/// Open host `h`'s client and start its agent on a [`NullDataplane`].
fn start_host(connect: Connect<'_>, keys: &Keys, o: &SimOptions, h: usize) -> Started {
    let kv = connect(h).map_err(|e| format!("host {h}: {e}"))?;
    let rec = Arc::new(Applied::default());
    let r2 = rec.clone();
    let opts = AgentOptions {
        write_status: o.write_status,
        on_applied: Some(Arc::new(move |rev, _m: &Model| {
            r2.log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((rev, Instant::now()));
        })),
        vtep: Some(vtep_of(h)),
        ..AgentOptions::default()
    };
    let target = Arc::new(NullDataplane::new(o.compile));
    let a = Agent::start(kv, keys.clone(), &host_name(h), target, opts)
        .map_err(|e| format!("host {h}: {e}"))?;
    Ok((a, rec))
}

/// Seed, start the agents, wait until all applied the seeded revision.
pub fn start(connect: Connect<'_>, o: &SimOptions) -> Result<Sim, String> {
    let keys = Keys::new(&o.prefix);
    let admin = connect(usize::MAX).map_err(|e| e.to_string())?;
    let seeded = seed(admin.as_ref(), &keys, o).map_err(|e| format!("seeding: {e}"))?;
    let rss0 = rss_bytes();
    let t0 = Instant::now();
    // Hosts start in parallel, as a cloud's hosts do (START_THREADS at a time).
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Started>>> = (0..o.hosts).map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..START_THREADS.min(o.hosts) {
            s.spawn(|| loop {
                let h = next.fetch_add(1, Ordering::Relaxed);
                if h >= o.hosts {
                    return;
                }
                *slots[h].lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(start_host(connect, &keys, o, h));
            });
        }
    });
    let mut agents = Vec::with_capacity(o.hosts);
    let mut applied = Vec::with_capacity(o.hosts);
    for slot in slots {
        let (a, rec) = slot
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or_else(|| Err("not started".into()))?;
        agents.push(a);
        applied.push(rec);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    for a in &agents {
        let left = deadline.saturating_duration_since(Instant::now());
        if !a.wait_applied(seeded, left) {
            return Err(format!("{} did not apply revision {seeded}", a.host()));
        }
    }
    let cold_start = t0.elapsed();
    let rss_per_host = rss_bytes().saturating_sub(rss0) / o.hosts.max(1) as u64;
    drop(admin);
    Ok(Sim {
        keys,
        agents,
        applied,
        cold_start,
        rss_per_host,
        started: Instant::now(),
    })
}

/// How long no agent may receive an event for the simulation to count as settled.
pub const QUIET: Duration = Duration::from_millis(500);

/// Wait until no agent received an event for [`QUIET`] (at most 60 s); the time since
/// the agents started.
fn settle(sim: &Sim) -> Duration {
    let total = || -> u64 { sim.agents.iter().map(|a| a.stats().events).sum() };
    let end = Instant::now() + Duration::from_secs(60);
    let mut last = total();
    while Instant::now() < end {
        std::thread::sleep(QUIET);
        let now = total();
        if now == last {
            break;
        }
        last = now;
    }
    sim.cold_start + sim.started.elapsed()
}

/// Wait until each of `hosts` applied `rev`; their put → applied latencies from `t0`.
fn wait_all(
    sim: &Sim,
    hosts: &[usize],
    rev: Revision,
    t0: Instant,
    lat: &mut Vec<Duration>,
) -> Result<Duration, String> {
    let mut last = Duration::ZERO;
    for &h in hosts {
        if !sim.agents[h].wait_applied(rev, Duration::from_secs(30)) {
            return Err(format!(
                "{} did not apply revision {rev} in 30 s",
                sim.agents[h].host()
            ));
        }
        let at = sim.applied[h].at(rev).unwrap_or_else(Instant::now);
        let d = at.saturating_duration_since(t0);
        lat.push(d);
        last = last.max(d);
    }
    Ok(last)
}

/// The lines of a scenario's report.
pub fn run(connect: Connect<'_>, o: &SimOptions) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    if o.scenario == Scenario::MemberJoinCompile {
        for &r in &o.rules {
            out.push(member_join_compile(r, o.members));
        }
        return Ok(out);
    }
    let admin = connect(usize::MAX).map_err(|e| e.to_string())?;
    out.push(format!(
        "store: {}; cores: {}; hosts N={}; ports/host {}; scenario {:?}; compile {}",
        admin.describe(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        o.hosts,
        o.ports_per_host,
        o.scenario,
        o.compile
    ));
    let sim = start(connect, o)?;
    out.push(format!(
        "cold start: all {} hosts applied in {:.3} s; memory per simulated host {} KiB (RSS delta / N)",
        o.hosts,
        sim.cold_start.as_secs_f64(),
        sim.rss_per_host / 1024
    ));
    let all: Vec<usize> = (0..o.hosts).collect();
    // Applied the seeded revision is not the end of the cold start: the liveness keys of
    // the hosts of a network still arrive (one event at each of its other hosts).
    let settled = settle(&sim);
    let events0: Vec<u64> = sim.agents.iter().map(|a| a.stats().events).collect();
    out.push(format!(
        "quiet (no event anywhere for {} ms) {:.3} s after the start",
        QUIET.as_millis(),
        settled.as_secs_f64()
    ));
    out.push(format!(
        "events during the cold start (the hosts/ keys of the hosts of each network): total {}, per host max {}; {} networks",
        events0.iter().sum::<u64>(),
        events0.iter().max().copied().unwrap_or(0),
        networks(o)
    ));
    let cpu0: Vec<u64> = sim.agents.iter().map(|a| a.stats().cpu_us).collect();
    // Agent CPU per host and change: the agents' thread CPU time over the changes.
    let cpu_per_change = |hosts: std::ops::Range<usize>, changes: usize| -> String {
        let n = hosts.len() * changes;
        let us: u64 = hosts.map(|h| sim.agents[h].stats().cpu_us - cpu0[h]).sum();
        format!(
            "agent CPU per host and change: {:.0} us (thread CPU time, mean over {n})",
            us as f64 / n.max(1) as f64
        )
    };
    let kv = admin.as_ref();
    let keys = &sim.keys;
    match o.scenario {
        Scenario::ColdStart | Scenario::MemberJoinCompile => {}
        Scenario::Propagation => {
            let (mut per_host, mut last) = (Vec::new(), Vec::new());
            let end = Instant::now() + o.duration;
            let mut rules = vec![tcp_rule("shared-r0", 22, Some("192.168.0.0/16"), None)];
            for c in 0..o.changes {
                if Instant::now() > end {
                    break;
                }
                rules.push(tcp_rule(
                    &format!("shared-c{c}"),
                    1000 + c as u16,
                    Some("10.0.0.0/8"),
                    None,
                ));
                let v = group_value("shared", "shared", rules.clone());
                let t0 = Instant::now();
                let rev =
                    commit(kv, vec![put(keys.group("shared"), &v)]).map_err(|e| e.to_string())?;
                last.push(wait_all(&sim, &all, rev, t0, &mut per_host)?);
                std::thread::sleep(CHANGE_GAP);
            }
            let changes = last.len();
            out.push(format!("put -> last host applied: {}", Lat::of(last)));
            out.push(format!("put -> applied, every host: {}", Lat::of(per_host)));
            out.push(cpu_per_change(0..o.hosts, changes));
        }
        Scenario::RemoteGroup => {
            let k = interested(o);
            let ihosts: Vec<usize> = (0..k).collect();
            let (mut per_host, mut last) = (Vec::new(), Vec::new());
            let end = Instant::now() + o.duration;
            for c in 0..o.changes {
                if Instant::now() > end {
                    break;
                }
                let op = put(
                    keys.member("remote", &format!("joiner-{c}")),
                    &MemberValue {
                        addresses: vec![format!("{}/32", port_ip(2_000_000 + c))],
                        network_id: "net0".into(),
                    },
                );
                let t0 = Instant::now();
                let rev = commit(kv, vec![op]).map_err(|e| e.to_string())?;
                last.push(wait_all(&sim, &ihosts, rev, t0, &mut per_host)?);
                std::thread::sleep(CHANGE_GAP);
            }
            // Let any stray event arrive before counting.
            std::thread::sleep(Duration::from_millis(300));
            let changes = last.len();
            let ev = |h: usize| sim.agents[h].stats().events - events0[h];
            let others: u64 = (k..o.hosts).map(ev).sum();
            let mine: Vec<u64> = (0..k).map(ev).collect();
            out.push(format!(
                "remote group of {} members, referenced by {k} of {} hosts; {} joins",
                o.members,
                o.hosts,
                last.len()
            ));
            out.push(format!(
                "join put -> last interested host applied: {}",
                Lat::of(last)
            ));
            out.push(format!(
                "join put -> applied, interested hosts: {}",
                Lat::of(per_host)
            ));
            out.push(cpu_per_change(0..k, changes));
            out.push(format!(
                "events during the joins: {} in all at the {} other hosts; per interested host min {} max {}",
                others,
                o.hosts - k,
                mine.iter().min().copied().unwrap_or(0),
                mine.iter().max().copied().unwrap_or(0)
            ));
            let us: Vec<u64> = sim.agents[..k]
                .iter()
                .map(|a| a.stats().last_apply_us)
                .collect();
            out.push(format!(
                "last build+compile+apply per interested host: max {:.1} ms",
                us.iter().max().copied().unwrap_or(0) as f64 / 1e3
            ));
        }
        Scenario::Churn => out.extend(churn(&sim, kv, o)?),
        Scenario::L2pop => out.extend(l2pop(&sim, kv, o)?),
    }
    let ev: Vec<u64> = sim.agents.iter().map(|a| a.stats().events).collect();
    out.push(format!(
        "events per host (whole run): min {} max {} total {}",
        ev.iter().min().copied().unwrap_or(0),
        ev.iter().max().copied().unwrap_or(0),
        ev.iter().sum::<u64>()
    ));
    let fails: u64 = sim.agents.iter().map(|a| a.stats().apply_failures).sum();
    out.push(format!("apply failures: {fails}"));
    Ok(out)
}

fn churn(sim: &Sim, kv: &dyn Kv, o: &SimOptions) -> Result<Vec<String>, String> {
    let keys = &sim.keys;
    let period = Duration::from_secs_f64(1.0 / f64::from(o.rate.max(1)));
    let t_start = Instant::now();
    let mut live: BTreeMap<usize, (usize, String)> = BTreeMap::new();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    // (host, revision, put instant, half)
    let mut pending: Vec<(usize, Revision, Instant, bool)> = Vec::new();
    let mut n = 0usize;
    let base = o.hosts * o.ports_per_host + 10;
    while t_start.elapsed() < o.duration {
        let due = t_start + period * n as u32;
        if let Some(d) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
        let second_half = t_start.elapsed() > o.duration / 2;
        let h = (next() % o.hosts as u64) as usize;
        let host = host_name(h);
        // Delete the oldest live port once 20 are live, else create one.
        let ops;
        let owner;
        if live.len() >= 20 {
            let (&k, _) = live.iter().next().expect("non-empty");
            let (ph, id) = live.remove(&k).expect("present");
            ops = port_delete_ops(keys, &host_name(ph), &id, &["churn"], &net_of(o, ph));
            owner = ph;
        } else {
            let id = format!("churn-{n}");
            ops = port_ops(keys, &host, &id, base + n, &["churn"], &net_of(o, h));
            live.insert(n, (h, id));
            owner = h;
        }
        let t0 = Instant::now();
        let rev = commit(kv, ops).map_err(|e| e.to_string())?;
        pending.push((owner, rev, t0, second_half));
        n += 1;
    }
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for (h, rev, t0, half) in pending {
        if !sim.agents[h].wait_applied(rev, Duration::from_secs(30)) {
            return Err(format!(
                "{} did not apply revision {rev}",
                sim.agents[h].host()
            ));
        }
        let d = sim.applied[h]
            .at(rev)
            .unwrap_or_else(Instant::now)
            .saturating_duration_since(t0);
        if half {
            second.push(d);
        } else {
            first.push(d);
        }
    }
    let all: Vec<Duration> = first.iter().chain(&second).copied().collect();
    Ok(vec![
        format!(
            "churn: {n} port creates+deletes in {:.1} s ({:.0}/s asked {})",
            t_start.elapsed().as_secs_f64(),
            n as f64 / t_start.elapsed().as_secs_f64(),
            o.rate
        ),
        format!("put -> applied at the owning host: {}", Lat::of(all)),
        format!("first half: {}", Lat::of(first)),
        format!("second half: {}", Lat::of(second)),
    ])
}

/// `l2pop`: ports created on `net0` by its first host, one at a time: put → applied at
/// the hosts with a port on `net0` (their models gain the remote port), and the events
/// the hosts of the other networks received meanwhile (must be 0).
fn l2pop(sim: &Sim, kv: &dyn Kv, o: &SimOptions) -> Result<Vec<String>, String> {
    let keys = &sim.keys;
    let on_net0: Vec<usize> = (0..o.hosts).filter(|&h| net_of(o, h) == "net0").collect();
    let events0: Vec<u64> = sim.agents.iter().map(|a| a.stats().events).collect();
    let (mut per_host, mut last) = (Vec::new(), Vec::new());
    let end = Instant::now() + o.duration;
    let base = o.hosts * o.ports_per_host + 10;
    for c in 0..o.changes {
        if Instant::now() > end {
            break;
        }
        let id = format!("l2pop-{c}");
        let ops = port_ops(keys, &host_name(0), &id, base + c, &["shared"], "net0");
        let t0 = Instant::now();
        let rev = commit(kv, ops).map_err(|e| e.to_string())?;
        last.push(wait_all(sim, &on_net0, rev, t0, &mut per_host)?);
        std::thread::sleep(CHANGE_GAP);
    }
    std::thread::sleep(Duration::from_millis(300));
    let ev = |h: usize| sim.agents[h].stats().events - events0[h];
    let others: u64 = (0..o.hosts).filter(|h| !on_net0.contains(h)).map(ev).sum();
    let remote = sim
        .agents
        .get(on_net0.get(1).copied().unwrap_or(0))
        .and_then(|a| {
            let m = a.model()?;
            Some(
                m.ports
                    .iter()
                    .filter(|p| p.host.as_deref() != Some(a.host()))
                    .count(),
            )
        });
    Ok(vec![
        format!(
            "{} port creates on net0 ({} of {} hosts have a port there, {} networks)",
            last.len(),
            on_net0.len(),
            o.hosts,
            networks(o)
        ),
        format!("put -> last host of net0 applied: {}", Lat::of(last)),
        format!("put -> applied, hosts of net0: {}", Lat::of(per_host)),
        format!(
            "events during the creates at the {} hosts of other networks: {others}; remote ports in a net0 host's model: {}",
            o.hosts - on_net0.len(),
            remote.map_or("-".into(), |n| n.to_string())
        ),
    ])
}

/// Compile time of a host model with `rules` rules, every tenth referencing a remote
/// group of `members` members, before and after one member joins.
pub fn member_join_compile(rules: usize, members: usize) -> String {
    use crate::policy::{Direction, EtherType, Network, Port, Remote, Rule, SecurityGroup};
    let rule = |i: usize| Rule {
        direction: Direction::Ingress,
        ethertype: EtherType::IPv4,
        protocol: Some(6),
        protocol_zero: false,
        port_range_min: Some(1000 + (i % 60000) as u16),
        port_range_max: Some(1000 + (i % 60000) as u16),
        remote: if i.is_multiple_of(10) {
            Remote::Group("remote".into())
        } else {
            Remote::Prefix(ipnet::IpNet::from(std::net::IpAddr::V4(port_ip(i * 7))).trunc())
        },
        remote_ip_prefix_raw: None,
        description: String::new(),
    };
    let mut m = Model {
        security_groups: vec![
            SecurityGroup {
                name: "local".into(),
                description: String::new(),
                stateful: true,
                rules: (0..rules).map(rule).collect(),
            },
            SecurityGroup {
                name: "remote".into(),
                description: String::new(),
                stateful: true,
                rules: Vec::new(),
            },
        ],
        ports: vec![Port {
            name: "p0".into(),
            network: "n".into(),
            mac: crate::wire::Mac([2, 0, 0, 0, 0, 1]),
            fixed_ips: vec![std::net::IpAddr::V4(port_ip(0))],
            security_groups: vec!["local".into()],
            port_security: true,
            allowed_address_pairs: Vec::new(),
            backend: None,
            host: None,
        }],
        networks: vec![Network {
            name: "n".into(),
            ..Network::default()
        }],
        ..Model::default()
    };
    let nets = |k: usize| -> Vec<ipnet::IpNet> {
        (0..k)
            .map(|i| ipnet::IpNet::from(std::net::IpAddr::V4(port_ip(3_000_000 + i))))
            .collect()
    };
    m.remote_members.insert("remote".into(), nets(members));
    let time = |m: &Model| {
        let t = Instant::now();
        let c = CompiledPolicy::compile(m, 1);
        std::hint::black_box(&c);
        t.elapsed()
    };
    let _ = time(&m);
    let before = time(&m);
    let last = CompiledPolicy::compile(&m, 1);
    m.remote_members.insert("remote".into(), nets(members + 1));
    let full = time(&m);
    // What a host does on a join: derive the policy from the last one, the rules kept.
    let t = Instant::now();
    let derived = last.with_members(&m, 2);
    let join = t.elapsed();
    std::hint::black_box(&derived);
    format!(
        "member join, host model of {rules} rules ({} referencing a remote group of {members} members): \
         compile {:.1} ms before the join; on the join, members swapped in {:.3} ms with the \
         rules kept (a full compile would take {:.1} ms)",
        rules.div_ceil(10),
        before.as_secs_f64() * 1e3,
        join.as_secs_f64() * 1e3,
        full.as_secs_f64() * 1e3
    )
}
