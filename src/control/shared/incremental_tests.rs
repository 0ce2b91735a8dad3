//! The differential test of [`super::incremental`]: on random event sequences over a
//! random cache, the model the agent's incremental path holds (patch when it may, full
//! build otherwise, the previous model kept on an error) equals a full rebuild of the
//! cache, errors agree, and the compiled verdicts of both agree on random flow keys.

use std::collections::BTreeSet;

use super::{patch, Built, Patch};
use crate::classifier::CompiledPolicy;
use crate::control::kv::Op;
use crate::control::shared::interest::{build, needs, BuildError, Cache, Cached};
use crate::control::shared::layout::{GroupValue, Keys, MemberValue, RuleValue};
use crate::control::shared::model_sync::assign_changed;
use crate::control::shared::sim::{group_value, port_ops, tcp_rule};
use crate::flow::{FlowKey, FAMILY_V4};
use crate::policy::validate::GroupMemo;
use crate::policy::{Direction, Model};

/// xorshift64*: a small deterministic generator (each seed is a reproducible case).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const HOST: &str = "h";
/// Groups: g0..g3 are used by the host's ports (g3 has g0's name: `name@id`), r0 is
/// referenced by rules only (remote), r1 by no rule at the start.
const GROUPS: [(&str, &str); 6] = [
    ("g0", "web"),
    ("g1", "db"),
    ("g2", "ops"),
    ("g3", "web"),
    ("r0", "far"),
    ("r1", "farther"),
];

fn keys() -> Keys {
    Keys::new("/d/")
}

fn put_op<T: serde::Serialize>(key: String, v: &T) -> Op {
    Op::Put {
        key,
        value: serde_json::to_vec(v).unwrap(),
        lease: None,
    }
}

/// A random rule: TCP to a port of 1..300, from anywhere, a prefix (sometimes a bad
/// one), or a remote group.
fn random_rule(rng: &mut Rng, n: usize) -> RuleValue {
    let id = format!("rule{n}");
    let port = 1 + rng.below(3000) as u16;
    match rng.below(40) {
        0..=15 => tcp_rule(&id, port, None, None),
        16..=29 => {
            let p = format!("10.{}.0.0/16", rng.below(4));
            tcp_rule(&id, port, Some(&p), None)
        }
        30 => tcp_rule(&id, port, Some("not-a-cidr"), None),
        31..=35 => tcp_rule(&id, port, None, Some("r0")),
        36..=38 => tcp_rule(&id, port, None, Some(["g0", "g1"][rng.below(2)])),
        _ => tcp_rule(&id, port, None, Some("r1")),
    }
}

struct World {
    cache: Cache,
    groups: Vec<GroupValue>,
    rev: i64,
    rules: usize,
}

impl World {
    fn new(rng: &mut Rng) -> World {
        let k = keys();
        let mut w = World {
            cache: Cache::new(),
            groups: Vec::new(),
            rev: 0,
            rules: 0,
        };
        for (id, name) in GROUPS {
            let rules = (0..rng.below(6))
                .map(|_| {
                    w.rules += 1;
                    // Valid at the start (no bad prefix, no remote r1).
                    tcp_rule(&format!("rule{}", w.rules), w.rules as u16, None, None)
                })
                .collect();
            w.groups.push(group_value(id, name, rules));
        }
        w.groups[1]
            .security_group_rules
            .push(tcp_rule("to-r0", 5432, None, Some("r0")));
        for i in 0..GROUPS.len() {
            w.put_group(i);
        }
        let mut ops = port_ops(&k, HOST, "p0", 1, &["g0", "g1"], "net0");
        ops.extend(port_ops(&k, HOST, "p1", 2, &["g2", "g3"], "net0"));
        ops.extend(port_ops(&k, "other", "p9", 9, &["r0"], "net1"));
        w.exec(ops);
        w
    }

    fn exec(&mut self, ops: Vec<Op>) -> BTreeSet<String> {
        let mut changed = BTreeSet::new();
        for op in ops {
            self.rev += 1;
            match op {
                Op::Put { key, value, .. } => {
                    changed.insert(key.clone());
                    self.cache.insert(key, Cached::new(value, self.rev));
                }
                Op::Delete { key } => {
                    self.cache.remove(&key);
                    changed.insert(key);
                }
                Op::DeletePrefix { .. } => unreachable!("not made here"),
            }
        }
        changed
    }

    fn put_group(&mut self, i: usize) -> BTreeSet<String> {
        let op = put_op(keys().group(&self.groups[i].meta.id), &self.groups[i]);
        self.exec(vec![op])
    }

    /// One random event; returns the keys it changed.
    fn event(&mut self, rng: &mut Rng) -> BTreeSet<String> {
        let k = keys();
        let g = rng.below(GROUPS.len());
        match rng.below(100) {
            0..=39 => {
                self.rules += 1;
                let r = random_rule(rng, self.rules);
                self.groups[g].security_group_rules.push(r);
                self.put_group(g)
            }
            40..=64 => {
                let rules = &mut self.groups[g].security_group_rules;
                if !rules.is_empty() {
                    let i = rng.below(rules.len());
                    rules.remove(i);
                }
                // A bad rule goes soon, and so does a stateless group.
                rules.retain(|r| r.remote_ip_prefix.as_deref() != Some("not-a-cidr"));
                self.groups[g].stateful = true;
                self.put_group(g)
            }
            65..=67 => {
                self.groups[g].stateful = !self.groups[g].stateful;
                self.put_group(g)
            }
            68..=69 => {
                self.groups[g].name = ["web", "db", "new"][rng.below(3)].into();
                self.put_group(g)
            }
            70..=71 => self.put_group(g), // rewritten unchanged
            72..=89 => {
                let group = ["r0", "g0", "r1"][rng.below(3)];
                let key = k.member(group, &format!("m{}", rng.below(4)));
                if rng.chance(40) {
                    self.exec(vec![Op::Delete { key }])
                } else {
                    let v = MemberValue {
                        addresses: vec![format!("10.{}.{}.0/24", rng.below(4), rng.below(9))],
                        network_id: "net1".into(),
                    };
                    self.exec(vec![put_op(key, &v)])
                }
            }
            90 => {
                // A bad member value.
                let key = k.member("r0", "bad");
                self.exec(vec![Op::Put {
                    key,
                    value: b"{".to_vec(),
                    lease: None,
                }])
            }
            91..=95 => {
                let key = k.member("r0", "bad");
                self.exec(vec![Op::Delete { key }])
            }
            _ => {
                // A port moves between groups (never patched).
                let groups: &[&str] = [&["g2", "g3"][..], &["g2"], &["g0", "g2"]][rng.below(3)];
                self.exec(port_ops(&k, HOST, "p1", 2, groups, "net0"))
            }
        }
    }
}

/// The agent's incremental state: the model it holds and what its build knew.
#[derive(Default)]
struct Incremental {
    model: Option<Model>,
    built: Option<Built>,
    memo: GroupMemo,
    patched: usize,
    rebuilt: usize,
}

impl Incremental {
    /// As `Run::build_and_apply` (with an apply that always succeeds): `Ok` the model
    /// now held, `Err` the errors (the model held stays).
    fn step(&mut self, cache: &Cache, changed: &BTreeSet<String>) -> Result<(), String> {
        let k = keys();
        let p = match (&self.built, &self.model) {
            (Some(b), Some(m)) => patch(&k, cache, b, m, changed, &needs(&k, HOST, cache)),
            _ => Patch::Rebuild,
        };
        let r = match p {
            Patch::Unchanged => Ok(()),
            Patch::Failed(e) => Err(sorted(e)),
            Patch::Changes(mut c) => {
                c.apply(self.model.as_mut().unwrap());
                self.patched += 1;
                Ok(())
            }
            Patch::Rebuild => {
                self.rebuilt += 1;
                match build(&k, HOST, cache, &mut self.memo) {
                    Ok((m, b)) => {
                        self.model = Some(m);
                        self.built = Some(b);
                        Ok(())
                    }
                    Err(e) => Err(sorted(e)),
                }
            }
        };
        if r.is_err() {
            self.built = None;
        }
        r
    }
}

/// Errors as text, in one order (a patch finds them in the order of the changed keys).
fn sorted(e: Vec<BuildError>) -> String {
    let mut e: Vec<String> = e
        .iter()
        .map(|e| format!("{}: {}", e.object, e.message))
        .collect();
    e.sort();
    e.join("; ")
}

fn tcp_key(src: u32, dst: u32, dport: u16) -> FlowKey {
    FlowKey {
        src: FlowKey::map_v4(src.to_be_bytes()),
        dst: FlowKey::map_v4(dst.to_be_bytes()),
        sport: 40000,
        dport,
        proto: 6,
        family: FAMILY_V4,
        _pad: [0; 2],
    }
}

/// The two models' compiled policies answer alike on random keys.
fn same_verdicts(rng: &mut Rng, a: &Model, b: &Model) {
    let (ca, cb) = (CompiledPolicy::compile(a, 1), CompiledPolicy::compile(b, 1));
    for _ in 0..64 {
        let port = rng.below(a.ports.len().max(1));
        let dir = if rng.chance(50) {
            Direction::Ingress
        } else {
            Direction::Egress
        };
        let remote = 0x0a00_0000 | (rng.next() as u32 & 0x0003_ff03);
        let key = tcp_key(remote, 0x0a00_0002, 1 + rng.below(300) as u16);
        assert_eq!(
            ca.allows(port, dir, &key),
            cb.allows(port, dir, &key),
            "port {port} {dir:?} {key:?}"
        );
    }
}

#[test]
fn incremental_model_equals_full_rebuild() {
    let (mut patched, mut rebuilt, mut failed, mut synced) = (0, 0, 0, 0);
    for seed in 1..=40u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut w = World::new(&mut rng);
        let mut inc = Incremental::default();
        let all: BTreeSet<String> = w.cache.keys().cloned().collect();
        inc.step(&w.cache, &all).expect("the first model builds");
        // The model a full rebuild gave last time it succeeded (what the agent holds).
        let mut held = inc.model.clone().unwrap();
        // What an applier keeps (the sim's null dataplane): synced with each model
        // applied by cloning only what differs ([`model_sync::assign_changed`]).
        let mut kept = held.clone();
        for step in 0..150 {
            let mut changed = BTreeSet::new();
            for _ in 0..1 + rng.below(3) {
                changed.extend(w.event(&mut rng));
            }
            let full = build(&keys(), HOST, &w.cache, &mut GroupMemo::default());
            let got = inc.step(&w.cache, &changed);
            let ctx = format!("seed {seed} step {step} changed {changed:?}");
            match (&full, &got) {
                (Ok((m, _)), Ok(())) => {
                    assert_eq!(inc.model.as_ref(), Some(m), "{ctx}");
                    held = m.clone();
                    assign_changed(&mut kept, m);
                    assert_eq!(&kept, m, "synced copy: {ctx}");
                    synced += 1;
                }
                (Err(e), Err(got)) => {
                    // The same errors (status reports them as today).
                    assert_eq!(&sorted(e.clone()), got, "{ctx}");
                    failed += 1;
                    assert_eq!(inc.model.as_ref(), Some(&held), "kept: {ctx}");
                }
                _ => panic!("{ctx}: full {:?} incremental {got:?}", full.as_ref().err()),
            }
            if step % 10 == 0 {
                same_verdicts(&mut rng, inc.model.as_ref().unwrap(), &held);
            }
        }
        patched += inc.patched;
        rebuilt += inc.rebuilt;
    }
    // The sequences exercise all three paths.
    eprintln!("patched {patched}, rebuilt {rebuilt}, failed {failed}");
    assert!(patched > 1000, "patched {patched}");
    assert!(rebuilt > 100, "rebuilt {rebuilt}");
    assert!(failed > 100, "failed {failed}");
    assert!(synced > 1000, "synced {synced}");
}
