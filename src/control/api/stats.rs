//! The counters of a running switch as one snapshot ([`Stats`]), named in the API's
//! terms: ports by name (and Neutron id), rules by group, Neutron ids and the rule in
//! words; and its JSON form (`GET /sgswitch/v1/stats`). `/metrics` renders the same
//! snapshot ([`super::metrics`]).
//!
//! Owns: joining the switch's report ([`SwitchReport`], counters by zone and by
//! [`RuleRef`]) with the store's committed state (names and ids, index-aligned with the
//! model the switch runs). May not touch: the counters themselves (the runtime's) or the
//! store's state (read-only snapshots).
//!
//! # Consistency
//! A change is applied to the switch before the store commits it, so for a moment the
//! switch may run a model the snapshot does not have yet. [`collect`] reads the snapshot,
//! the report, and the snapshot again, and retries (a few times, briefly) until both
//! snapshots are the same and the report's rules are exactly the snapshot's; otherwise it
//! leaves out the rules it cannot name.
//!
//! Depends on: `runtime::switch` (the report), `control::store` (names and ids), `policy`
//! (rules in words), `flow::DropReason`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::control::explain::rule_words;
use crate::control::store::{State, Store};
use crate::flow::DropReason;
use crate::policy::{Rule, RuleRef};
use crate::runtime::switch::{Switch, SwitchReport};

/// Counters of one port.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortStat {
    pub name: String,
    /// The port's Neutron id.
    pub id: String,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Every reason with a non-zero count, in [`DropReason::ALL`] order.
    pub drops: Vec<(DropReason, u64)>,
    /// Frames the backend could not take in or send (not verdicts).
    pub io_rx_dropped: u64,
    pub io_tx_dropped: u64,
    /// Segments made in software from GSO superframes for this port.
    pub gso_segmented: u64,
    /// ARP requests from this port answered by the switch for a remote port.
    pub arp_replies: u64,
    /// A multiqueue tap's queues: (worker, frames received, frames sent) by its backend
    /// (empty for a port with one queue).
    pub queues: Vec<(usize, u64, u64)>,
}

impl PortStat {
    /// Frames dropped by a verdict, all reasons.
    pub fn dropped(&self) -> u64 {
        self.drops.iter().map(|(_, n)| n).sum()
    }
}

/// Counters of one polling worker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerStat {
    pub rx: u64,
    pub tx: u64,
    pub dropped: u64,
    pub bursts: u64,
    /// Port polls deferred by the fair share of a saturated worker.
    pub deferred_bursts: u64,
    pub busy_polls: u64,
    pub idle_polls: u64,
    pub steered: u64,
    pub inbox_full: u64,
    pub moved: u64,
    pub conntrack: CtTotals,
    pub fragments: FragTotals,
}

/// Fragment-table counters (one worker's or all of them; `pipeline::fragments`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FragTotals {
    /// Fragmented datagrams known now (each until its timeout).
    pub datagrams: u64,
    /// Later fragments held now, waiting for their datagram's first fragment.
    pub held: u64,
    /// Datagrams whose first fragment was judged (its verdict recorded for the rest).
    pub recorded: u64,
    /// Later fragments given their datagram's recorded verdict.
    pub hits: u64,
    /// Datagrams discarded: overlapping, tiny first fragment, scattered.
    pub discarded: u64,
    /// Fragments refused as duplicates.
    pub duplicates: u64,
    /// Fragments refused because the table or the hold pool was full.
    pub overflow: u64,
    /// Datagrams that timed out.
    pub expired: u64,
}

impl FragTotals {
    fn add(&mut self, o: &FragTotals) {
        self.datagrams += o.datagrams;
        self.held += o.held;
        self.recorded += o.recorded;
        self.hits += o.hits;
        self.discarded += o.discarded;
        self.duplicates += o.duplicates;
        self.overflow += o.overflow;
        self.expired += o.expired;
    }
}

/// Connection-tracking counters (one worker's or all of them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtTotals {
    pub entries: u64,
    pub capacity: u64,
    pub inserts: u64,
    /// Unassured entries (half-open, closed, unreplied) evicted to make room for a new
    /// connection, in a full table or in a zone at its limit (conntrack's `early_drop`).
    pub evictions: u64,
    /// Of `evictions`, those because the zone (a port) was at its `per_port_limit`.
    pub zone_evictions: u64,
    /// Commits refused because the table was full.
    pub table_full: u64,
    /// Commits refused because the zone held its limit, every entry assured
    /// (`conntrack-zone-full` drops).
    pub zone_full: u64,
    pub expired: u64,
    pub invalid: u64,
}

impl CtTotals {
    fn add(&mut self, o: &CtTotals) {
        self.entries += o.entries;
        self.capacity += o.capacity;
        self.inserts += o.inserts;
        self.evictions += o.evictions;
        self.zone_evictions += o.zone_evictions;
        self.table_full += o.table_full;
        self.zone_full += o.zone_full;
        self.expired += o.expired;
        self.invalid += o.invalid;
    }
}

/// Hits of one security-group rule.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleStat {
    pub group: String,
    pub group_id: String,
    pub rule_id: String,
    /// `ingress` or `egress`.
    pub direction: &'static str,
    /// The rule in words (`ingress IPv4 tcp 22 from 0.0.0.0/0`).
    pub rule: String,
    /// New connections admitted by the rule (every allowed packet for a stateless group).
    pub hits: u64,
}

/// Packet-log record counters, summed over the workers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogTotals {
    pub written: u64,
    /// Over the rate limit.
    pub suppressed: u64,
    /// The pipeline's record buffer was full.
    pub overflow: u64,
    /// The worker's queue to the writer was full.
    pub queue_full: u64,
}

/// Everything `stats` and `/metrics` show.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// The policy epoch in force.
    pub epoch: u64,
    /// Ports of the model, in model order.
    pub ports: Vec<PortStat>,
    pub workers: Vec<WorkerStat>,
    /// Every rule of the policy in model order, zero hits included.
    pub rules: Vec<RuleStat>,
    pub conntrack: CtTotals,
    pub fragments: FragTotals,
    pub packet_log: LogTotals,
}

/// How often [`collect`] re-reads when the store and the switch disagree.
const TRIES: usize = 5;

/// Read the switch's counters and name them from the store's committed state.
pub fn collect(switch: &Switch, store: &Store) -> Stats {
    let mut last = None;
    for i in 0..TRIES {
        let before = store.snapshot();
        let report = switch.report();
        let after = store.snapshot();
        if Arc::ptr_eq(&before, &after) && rules_match(&after, &report) {
            return name(&after, &report);
        }
        last = Some((after, report));
        std::thread::sleep(Duration::from_millis(20 * (i as u64 + 1)));
    }
    let (state, report) = last.expect("TRIES > 0");
    name(&state, &report)
}

/// Whether the report's rules are exactly the rules of `state`'s model.
fn rules_match(state: &State, report: &SwitchReport) -> bool {
    let n: usize = state
        .model
        .security_groups
        .iter()
        .map(|g| g.rules.len())
        .sum();
    n == report.rule_hits.len()
        && report
            .rule_hits
            .iter()
            .all(|(r, _)| rule_of(state, *r).is_some())
}

fn rule_of(state: &State, r: RuleRef) -> Option<&Rule> {
    state
        .model
        .security_groups
        .get(r.group as usize)?
        .rules
        .get(r.rule as usize)
}

/// Join `report` with the names and ids of `state`.
pub fn name(state: &State, report: &SwitchReport) -> Stats {
    let ports = state
        .model
        .ports
        .iter()
        .zip(&state.meta.ports)
        .map(|(p, meta)| {
            let mut s = PortStat {
                name: p.name.clone(),
                id: meta.id.to_string(),
                ..PortStat::default()
            };
            if let Some(r) = report.ports.iter().find(|r| r.name == p.name) {
                let c = &r.counters;
                s.rx_packets = c.rx;
                s.tx_packets = c.tx;
                s.rx_bytes = c.rx_bytes;
                s.tx_bytes = c.tx_bytes;
                s.drops = DropReason::ALL
                    .iter()
                    .map(|d| (*d, c.dropped[*d as usize]))
                    .filter(|(_, n)| *n > 0)
                    .collect();
                s.io_rx_dropped = r.io.rx_dropped;
                s.io_tx_dropped = r.io.tx_dropped;
                s.gso_segmented = r.io.gso_segmented;
                s.arp_replies = c.arp_replies;
                s.queues = r
                    .queues
                    .iter()
                    .map(|(w, q)| (*w, q.rx_packets, q.tx_packets))
                    .collect();
            }
            s
        })
        .collect();
    let mut out = Stats {
        epoch: report.epoch,
        ports,
        ..Stats::default()
    };
    for w in &report.workers {
        let d = &w.detail;
        let ct = CtTotals {
            entries: d.conntrack_entries as u64,
            capacity: d.conntrack_capacity as u64,
            inserts: d.conntrack.inserts,
            evictions: d.conntrack.early_drop,
            zone_evictions: d.conntrack.zone_evicted,
            table_full: d.conntrack.full,
            zone_full: d.conntrack.zone_full,
            expired: d.conntrack.expired,
            invalid: d.conntrack.invalid,
        };
        out.conntrack.add(&ct);
        let fr = FragTotals {
            datagrams: d.fragment_datagrams as u64,
            held: d.fragments_held as u64,
            recorded: d.fragments.recorded,
            hits: d.fragments.hits,
            discarded: d.fragments.discarded,
            duplicates: d.fragments.duplicates,
            overflow: d.fragments.overflow,
            expired: d.fragments.expired,
        };
        out.fragments.add(&fr);
        out.packet_log.written += d.log.written;
        out.packet_log.suppressed += d.log.suppressed;
        out.packet_log.overflow += d.log.overflow;
        out.packet_log.queue_full += d.log_queue_full;
        out.workers.push(WorkerStat {
            rx: w.rx,
            tx: w.tx,
            dropped: w.dropped,
            bursts: d.bursts,
            deferred_bursts: d.deferred_bursts,
            busy_polls: d.busy_polls,
            idle_polls: d.idle_polls,
            steered: d.steered,
            inbox_full: d.inbox_full,
            moved: d.moved,
            conntrack: ct,
            fragments: fr,
        });
    }
    for &(r, hits) in &report.rule_hits {
        let (Some(rule), Some(gm)) = (rule_of(state, r), state.meta.groups.get(r.group as usize))
        else {
            continue;
        };
        let Some(rm) = gm.rules.get(r.rule as usize) else {
            continue;
        };
        out.rules.push(RuleStat {
            group: state.model.security_groups[r.group as usize].name.clone(),
            group_id: gm.obj.id.to_string(),
            rule_id: rm.id.to_string(),
            direction: rule.direction.as_str(),
            rule: rule_words(rule),
            hits,
        });
    }
    out
}

fn ct_json(c: &CtTotals) -> Value {
    json!({
        "entries": c.entries,
        "capacity": c.capacity,
        "inserts": c.inserts,
        "evictions": c.evictions,
        "zone_evictions": c.zone_evictions,
        "table_full": c.table_full,
        "zone_full": c.zone_full,
        "expired": c.expired,
        "invalid": c.invalid,
    })
}

fn frag_json(f: &FragTotals) -> Value {
    json!({
        "datagrams": f.datagrams,
        "held": f.held,
        "recorded": f.recorded,
        "hits": f.hits,
        "discarded": f.discarded,
        "duplicates": f.duplicates,
        "overflow": f.overflow,
        "expired": f.expired,
    })
}

/// The JSON answer of `GET /sgswitch/v1/stats` (see the README, "Metrics").
pub fn stats_json(s: &Stats) -> Value {
    let ports: Vec<Value> = s
        .ports
        .iter()
        .map(|p| {
            let drops: Map<String, Value> = p
                .drops
                .iter()
                .map(|(d, n)| (d.as_str().to_string(), json!(n)))
                .collect();
            let mut v = json!({
                "name": p.name,
                "id": p.id,
                "rx_packets": p.rx_packets,
                "tx_packets": p.tx_packets,
                "rx_bytes": p.rx_bytes,
                "tx_bytes": p.tx_bytes,
                "dropped": p.dropped(),
                "drops": drops,
                "io_rx_dropped": p.io_rx_dropped,
                "io_tx_dropped": p.io_tx_dropped,
                "gso_segmented": p.gso_segmented,
                "arp_replies": p.arp_replies,
            });
            if !p.queues.is_empty() {
                let q: Vec<Value> = p
                    .queues
                    .iter()
                    .map(|(w, rx, tx)| json!({"worker": w, "rx_packets": rx, "tx_packets": tx}))
                    .collect();
                v["queues"] = json!(q);
            }
            v
        })
        .collect();
    let workers: Vec<Value> = s
        .workers
        .iter()
        .enumerate()
        .map(|(i, w)| {
            json!({
                "worker": i,
                "rx": w.rx,
                "tx": w.tx,
                "dropped": w.dropped,
                "bursts": w.bursts,
                "deferred_bursts": w.deferred_bursts,
                "busy_polls": w.busy_polls,
                "idle_polls": w.idle_polls,
                "steered": w.steered,
                "inbox_full": w.inbox_full,
                "moved": w.moved,
                "conntrack": ct_json(&w.conntrack),
                "fragments": frag_json(&w.fragments),
            })
        })
        .collect();
    let rules: Vec<Value> = s
        .rules
        .iter()
        .map(|r| {
            json!({
                "group": r.group,
                "group_id": r.group_id,
                "rule_id": r.rule_id,
                "direction": r.direction,
                "rule": r.rule,
                "hits": r.hits,
            })
        })
        .collect();
    let l = &s.packet_log;
    json!({"stats": {
        "epoch": s.epoch,
        "ports": ports,
        "workers": workers,
        "rules": rules,
        "conntrack": ct_json(&s.conntrack),
        "fragments": frag_json(&s.fragments),
        "packet_log": {
            "written": l.written,
            "suppressed": l.suppressed,
            "overflow": l.overflow,
            "queue_full": l.queue_full,
        },
    }})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::config;
    use crate::runtime::switch::PortReport;

    const CONFIG: &str = r#"
[[security_groups]]
name = "web"
rules = [
  { direction = "ingress", ethertype = "IPv4", protocol = "tcp", port_range_min = 80, port_range_max = 80, remote_ip_prefix = "0.0.0.0/0" },
  { direction = "ingress", ethertype = "IPv4", protocol = "icmp", port_range_min = 8, remote_group = "web" },
  { direction = "egress", ethertype = "IPv6" },
]

[[ports]]
name = "vm-a"
mac = "fa:16:3e:00:00:0a"
fixed_ips = ["10.0.0.10"]
security_groups = ["web"]
"#;

    fn state() -> State {
        let cfg = config::parse_str(CONFIG, "t.toml").expect("valid config");
        let store = Store::open(None, &cfg).expect("store");
        State::clone(&store.snapshot())
    }

    #[test]
    fn rules_in_words() {
        let s = state();
        let g = &s
            .model
            .security_groups
            .iter()
            .find(|g| g.name == "web")
            .unwrap();
        let words: Vec<String> = g.rules.iter().map(rule_words).collect();
        assert_eq!(
            words,
            [
                "ingress IPv4 tcp 80 from 0.0.0.0/0",
                "ingress IPv4 icmp type 8 from group web",
                "egress IPv6 any to any",
            ]
        );
    }

    #[test]
    fn report_is_named_from_the_state() {
        let s = state();
        let web = s.group_by_name("web").unwrap() as u32;
        let mut report = SwitchReport {
            epoch: 4,
            ..SwitchReport::default()
        };
        let mut pr = PortReport {
            name: "vm-a".into(),
            ..PortReport::default()
        };
        pr.counters.rx = 3;
        pr.counters.dropped[DropReason::SpoofedIp as usize] = 2;
        report.ports.push(pr);
        for (gi, g) in s.model.security_groups.iter().enumerate() {
            for ri in 0..g.rules.len() {
                let hits = if gi as u32 == web && ri == 0 { 7 } else { 0 };
                report.rule_hits.push((
                    RuleRef {
                        group: gi as u32,
                        rule: ri as u32,
                    },
                    hits,
                ));
            }
        }
        assert!(rules_match(&s, &report));
        let st = name(&s, &report);
        assert_eq!(st.epoch, 4);
        assert_eq!(st.ports.len(), 1);
        assert_eq!(st.ports[0].rx_packets, 3);
        assert_eq!(st.ports[0].drops, vec![(DropReason::SpoofedIp, 2)]);
        assert_eq!(st.ports[0].id, s.meta.ports[0].id.to_string());
        let hit: Vec<&RuleStat> = st.rules.iter().filter(|r| r.hits > 0).collect();
        assert_eq!(hit.len(), 1);
        assert_eq!(hit[0].group, "web");
        assert_eq!(hit[0].rule, "ingress IPv4 tcp 80 from 0.0.0.0/0");
        assert_eq!(
            hit[0].rule_id,
            s.meta.groups[web as usize].rules[0].id.to_string()
        );
        assert_eq!(st.rules.len(), report.rule_hits.len());
        // A report from another model (one rule fewer) is not taken for this one.
        report.rule_hits.pop();
        assert!(!rules_match(&s, &report));
        let v = stats_json(&st);
        assert_eq!(v["stats"]["ports"][0]["drops"]["spoofed-ip"], 2);
        assert_eq!(v["stats"]["ports"][0]["dropped"], 2);
    }
}
