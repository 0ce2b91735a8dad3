//! `GET /metrics`: the counters of a running switch ([`Stats`]) in Prometheus' text
//! exposition format 0.0.4.
//!
//! Owns: the metric names, their help texts and types, and the format itself (a
//! `# HELP` and a `# TYPE` line per family, then its samples; counters end in `_total`;
//! label values escaped: `\` → `\\`, `"` → `\"`, newline → `\n`; help texts escape `\`
//! and newline). Families come in a fixed order, samples in the order of the snapshot
//! (ports and rules in model order, reasons in the order of
//! [`DropReason::ALL`](crate::flow::DropReason::ALL), workers by index), so two scrapes
//! of an idle switch are byte for byte the same.
//!
//! # Families
//! | name | type | labels |
//! |---|---|---|
//! | `sgswitch_port_rx_packets_total`, `…_tx_packets_total`, `…_rx_bytes_total`, `…_tx_bytes_total` | counter | `port` |
//! | `sgswitch_port_gso_segmented_total` (segments made in software for the port) | counter | `port` |
//! | `sgswitch_port_arp_replies_total` (requests for remote ports answered by the ARP responder) | counter | `port` |
//! | `sgswitch_drops_total` (reasons with a non-zero count) | counter | `port`, `reason` |
//! | `sgswitch_rule_hits_total` (every rule, zero included) | counter | `group`, `group_id`, `rule_id`, `direction` |
//! | `sgswitch_conntrack_entries`, `sgswitch_conntrack_capacity` | gauge | `worker` |
//! | `sgswitch_fragment_datagrams`, `sgswitch_fragments_held` | gauge | `worker` |
//! | `sgswitch_fragment_datagrams_recorded_total`, `…_hits_total`, `…_datagrams_discarded_total`, `…_duplicates_total`, `…_overflow_total`, `…_datagrams_expired_total` | counter | `worker` |
//! | `sgswitch_conntrack_inserts_total`, `…_evictions_total`, `…_zone_evictions_total`, `…_table_full_total`, `…_zone_full_total` | counter | `worker` |
//! | `sgswitch_worker_busy_polls_total`, `…_idle_polls_total`, `…_bursts_total`, `…_deferred_bursts_total`, `…_steered_total` | counter | `worker` |
//! | `sgswitch_packet_log_records_total` | counter | `outcome` = written, suppressed, overflow, queue_full |
//! | `sgswitch_policy_epoch` | gauge | |
//! | `sgswitch_build_info` (always 1) | gauge | `version` |
//! | `sgswitch_store_connected`, `sgswitch_store_revision`, `sgswitch_store_unreachable_since_seconds` (a shared store only: [`render_store`]) | gauge | |
//!
//! Hand-written rather than with the `prometheus` or `prometheus-client` crate: the
//! values are a snapshot the API already holds (no registry of live metric objects to
//! keep), and the format is a few `write!`s; the tests parse the output with the
//! reference Python parser (`prometheus_client`).
//!
//! Depends on: [`super::stats`] only.

use std::fmt::Write as _;

use super::stats::Stats;

/// The `Content-Type` of the answer.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

/// A text exposition being written.
#[derive(Default)]
struct Exposition {
    out: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// A label value as the format wants it.
fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// The shared store's families (appended to [`render`]'s, or alone on an API server
/// without a switch): reachable or not, since when (Unix seconds, 0 while connected),
/// and the revision this server's cache reflects.
pub fn render_store(s: &crate::control::store::SharedStatus) -> String {
    use crate::control::kv::Health;
    let (up, since) = match &s.health {
        Health::Connected => (1, 0),
        Health::Unreachable { since, .. } => (0, *since),
    };
    let mut out = String::new();
    for (name, help, v) in [
        (
            "sgswitch_store_connected",
            "1 while the shared store is reachable.",
            up as i64,
        ),
        (
            "sgswitch_store_revision",
            "The shared store revision this server's state reflects.",
            s.revision,
        ),
        (
            "sgswitch_store_unreachable_since_seconds",
            "Since when (Unix seconds) the shared store is unreachable; 0 while connected.",
            since as i64,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(out, "# TYPE {name} gauge");
        let _ = writeln!(out, "{name} {v}");
    }
    out
}

/// A help text as the format wants it.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// The whole exposition of `s`.
pub fn render(s: &Stats) -> String {
    let mut e = Exposition::default();
    type PortField = fn(&super::stats::PortStat) -> u64;
    let port_families: [(&str, &str, PortField); 6] = [
        (
            "sgswitch_port_rx_packets_total",
            "Frames received from the port.",
            |p| p.rx_packets,
        ),
        (
            "sgswitch_port_tx_packets_total",
            "Frames delivered to the port.",
            |p| p.tx_packets,
        ),
        (
            "sgswitch_port_rx_bytes_total",
            "Bytes received from the port.",
            |p| p.rx_bytes,
        ),
        (
            "sgswitch_port_tx_bytes_total",
            "Bytes delivered to the port.",
            |p| p.tx_bytes,
        ),
        (
            "sgswitch_port_gso_segmented_total",
            "Segments made in software from GSO superframes for the port (it cannot take them whole).",
            |p| p.gso_segmented,
        ),
        (
            "sgswitch_port_arp_replies_total",
            "ARP requests from the port for a remote port's address answered by the switch (the ARP responder).",
            |p| p.arp_replies,
        ),
    ];
    for (name, help, f) in port_families {
        e.family(name, Kind::Counter, help);
        for p in &s.ports {
            e.sample(name, &[("port", &p.name)], f(p));
        }
    }
    let name = "sgswitch_drops_total";
    e.family(
        name,
        Kind::Counter,
        "Frames dropped at the port, by reason (reasons with a count only).",
    );
    for p in &s.ports {
        for (d, n) in &p.drops {
            e.sample(name, &[("port", &p.name), ("reason", d.as_str())], *n);
        }
    }
    let name = "sgswitch_rule_hits_total";
    e.family(
        name,
        Kind::Counter,
        "New connections admitted by the security-group rule (every allowed packet in a stateless group).",
    );
    for r in &s.rules {
        let labels = [
            ("group", r.group.as_str()),
            ("group_id", r.group_id.as_str()),
            ("rule_id", r.rule_id.as_str()),
            ("direction", r.direction),
        ];
        e.sample(name, &labels, r.hits);
    }
    type WorkerField = fn(&super::stats::WorkerStat) -> u64;
    let worker_families: [(&str, Kind, &str, WorkerField); 20] = [
        (
            "sgswitch_conntrack_entries",
            Kind::Gauge,
            "Live connection-tracking entries of the worker.",
            |w| w.conntrack.entries,
        ),
        (
            "sgswitch_conntrack_capacity",
            Kind::Gauge,
            "Capacity of the worker's connection-tracking table.",
            |w| w.conntrack.capacity,
        ),
        (
            "sgswitch_conntrack_inserts_total",
            Kind::Counter,
            "Connection-tracking entries created.",
            |w| w.conntrack.inserts,
        ),
        (
            "sgswitch_conntrack_evictions_total",
            Kind::Counter,
            "Unassured entries (half-open, closed, unreplied) evicted to make room for a new connection.",
            |w| w.conntrack.evictions,
        ),
        (
            "sgswitch_conntrack_zone_evictions_total",
            Kind::Counter,
            "Of the evictions, those because a port's zone was at its per_port_limit.",
            |w| w.conntrack.zone_evictions,
        ),
        (
            "sgswitch_conntrack_zone_full_total",
            Kind::Counter,
            "New connections refused because their port's zone held its limit of assured entries.",
            |w| w.conntrack.zone_full,
        ),
        (
            "sgswitch_conntrack_table_full_total",
            Kind::Counter,
            "New connections refused because the table was full.",
            |w| w.conntrack.table_full,
        ),
        (
            "sgswitch_fragment_datagrams",
            Kind::Gauge,
            "Fragmented datagrams the worker's fragment table knows now.",
            |w| w.fragments.datagrams,
        ),
        (
            "sgswitch_fragments_held",
            Kind::Gauge,
            "Later fragments held now, waiting for their datagram's first fragment.",
            |w| w.fragments.held,
        ),
        (
            "sgswitch_fragment_datagrams_recorded_total",
            Kind::Counter,
            "Fragmented datagrams whose first fragment was judged.",
            |w| w.fragments.recorded,
        ),
        (
            "sgswitch_fragment_hits_total",
            Kind::Counter,
            "Later fragments given their datagram's recorded verdict.",
            |w| w.fragments.hits,
        ),
        (
            "sgswitch_fragment_datagrams_discarded_total",
            Kind::Counter,
            "Fragmented datagrams discarded (overlapping, tiny first fragment, scattered).",
            |w| w.fragments.discarded,
        ),
        (
            "sgswitch_fragment_duplicates_total",
            Kind::Counter,
            "Fragments refused as duplicates.",
            |w| w.fragments.duplicates,
        ),
        (
            "sgswitch_fragment_overflow_total",
            Kind::Counter,
            "Fragments refused because the fragment table or its hold pool was full.",
            |w| w.fragments.overflow,
        ),
        (
            "sgswitch_fragment_datagrams_expired_total",
            Kind::Counter,
            "Fragmented datagrams that timed out.",
            |w| w.fragments.expired,
        ),
        (
            "sgswitch_worker_busy_polls_total",
            Kind::Counter,
            "Polling loop iterations that found frames.",
            |w| w.busy_polls,
        ),
        (
            "sgswitch_worker_idle_polls_total",
            Kind::Counter,
            "Polling loop iterations that found nothing.",
            |w| w.idle_polls,
        ),
        (
            "sgswitch_worker_bursts_total",
            Kind::Counter,
            "Bursts received from ports.",
            |w| w.bursts,
        ),
        (
            "sgswitch_worker_deferred_bursts_total",
            Kind::Counter,
            "Port polls deferred because the port had used its share of a saturated worker's time.",
            |w| w.deferred_bursts,
        ),
        (
            "sgswitch_worker_steered_total",
            Kind::Counter,
            "Frames handed to the worker owning their flow.",
            |w| w.steered,
        ),
    ];
    for (name, kind, help, f) in worker_families {
        e.family(name, kind, help);
        for (i, w) in s.workers.iter().enumerate() {
            e.sample(name, &[("worker", &i.to_string())], f(w));
        }
    }
    let name = "sgswitch_packet_log_records_total";
    e.family(
        name,
        Kind::Counter,
        "Packet-log records, by outcome (written, suppressed by the rate limit, lost to a full buffer or queue).",
    );
    let l = &s.packet_log;
    for (outcome, n) in [
        ("written", l.written),
        ("suppressed", l.suppressed),
        ("overflow", l.overflow),
        ("queue_full", l.queue_full),
    ] {
        e.sample(name, &[("outcome", outcome)], n);
    }
    let name = "sgswitch_policy_epoch";
    e.family(
        name,
        Kind::Gauge,
        "The policy epoch in force (1 at start, +1 per change).",
    );
    e.sample(name, &[], s.epoch);
    let name = "sgswitch_build_info";
    e.family(name, Kind::Gauge, "The running sgswitch (always 1).");
    e.sample(name, &[("version", env!("CARGO_PKG_VERSION"))], 1);
    e.out
}

#[cfg(test)]
mod tests {
    use super::super::stats::{FragTotals, PortStat, RuleStat, WorkerStat};
    use super::*;
    use crate::flow::DropReason;

    fn sample_stats() -> Stats {
        Stats {
            epoch: 3,
            ports: vec![
                PortStat {
                    name: "vm-b".into(),
                    rx_packets: 5,
                    drops: vec![(DropReason::SpoofedIp, 1), (DropReason::IngressDenied, 4)],
                    ..PortStat::default()
                },
                PortStat {
                    name: "vm-a\"x\\y\nz".into(),
                    tx_bytes: 70,
                    arp_replies: 2,
                    ..PortStat::default()
                },
            ],
            workers: vec![
                WorkerStat::default(),
                WorkerStat {
                    bursts: 9,
                    fragments: FragTotals {
                        held: 2,
                        discarded: 1,
                        ..Default::default()
                    },
                    ..WorkerStat::default()
                },
            ],
            rules: vec![RuleStat {
                group: "web".into(),
                group_id: "g1".into(),
                rule_id: "r1".into(),
                direction: "ingress",
                rule: String::new(),
                hits: 0,
            }],
            ..Stats::default()
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("x\ny"), "x\\ny");
        assert_eq!(escape_help("a\\b\nc \"d\""), "a\\\\b\\nc \"d\"");
        let text = render(&sample_stats());
        assert!(
            text.contains("sgswitch_port_tx_bytes_total{port=\"vm-a\\\"x\\\\y\\nz\"} 70\n"),
            "{text}"
        );
    }

    #[test]
    fn families_are_ordered_and_typed() {
        let text = render(&sample_stats());
        // Every sample follows its family's HELP and TYPE, families never interleave.
        let mut families: Vec<(String, String)> = Vec::new();
        let mut current = String::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                current = name.to_string();
                assert!(
                    !families.iter().any(|(n, _)| n == name),
                    "{name} declared twice"
                );
                families.push((name.to_string(), kind.to_string()));
                if kind == "counter" {
                    assert!(name.ends_with("_total"), "{name}");
                }
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert_eq!(name, current, "sample outside its family: {line}");
            }
        }
        let names: Vec<&str> = families.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names[0], "sgswitch_port_rx_packets_total");
        assert_eq!(names[4], "sgswitch_port_gso_segmented_total");
        assert_eq!(names[6], "sgswitch_drops_total");
        assert_eq!(names[7], "sgswitch_rule_hits_total");
        assert_eq!(names.last(), Some(&"sgswitch_build_info"));
        assert_eq!(names.len(), 31);
        // Drops: reasons with a count only, in DropReason order within each port; rule
        // hits with zero included.
        let drops: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("sgswitch_drops_total{"))
            .collect();
        assert_eq!(
            drops,
            [
                "sgswitch_drops_total{port=\"vm-b\",reason=\"spoofed-ip\"} 1",
                "sgswitch_drops_total{port=\"vm-b\",reason=\"ingress-denied\"} 4",
            ]
        );
        assert!(text.contains(
            "sgswitch_rule_hits_total{group=\"web\",group_id=\"g1\",rule_id=\"r1\",direction=\"ingress\"} 0\n"
        ));
        assert!(text.contains("sgswitch_worker_bursts_total{worker=\"1\"} 9\n"));
        assert!(text.contains("# TYPE sgswitch_fragments_held gauge\n"));
        assert!(text.contains("sgswitch_port_arp_replies_total{port=\"vm-a\\\"x\\\\y\\nz\"} 2\n"));
        assert!(text.contains("sgswitch_fragments_held{worker=\"1\"} 2\n"));
        assert!(text.contains("sgswitch_fragment_datagrams_discarded_total{worker=\"1\"} 1\n"));
        assert!(text.contains("sgswitch_policy_epoch 3\n"));
        assert!(text.ends_with(&format!(
            "sgswitch_build_info{{version=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        )));
        // Deterministic.
        assert_eq!(text, render(&sample_stats()));
    }
}
