//! One packet-log record as one JSON line.
//!
//! ```json
//! {"time":"2026-12-07T10:21:03.123456Z","verdict":"ACCEPT","direction":"ingress",
//!  "port":"vm-a","port_id":"…","group":"web","group_id":"…","rule_id":"…",
//!  "ethertype":"IPv4","protocol":"tcp","src_ip":"10.0.0.10","src_port":40000,
//!  "dst_ip":"10.0.0.11","dst_port":80,"logs":["web-log"],"log_ids":["…"],"epoch":3}
//! {"time":"…","verdict":"DROP","reason":"ingress-denied","direction":"ingress",
//!  "port":"vm-b","port_id":"…","ethertype":"IPv4","protocol":"icmp","src_ip":"…",
//!  "dst_ip":"…","icmp_type":8,"icmp_code":0,"logs":["all-drops"],"log_ids":["…"],"epoch":3}
//! ```
//! (one line each in the file). `time` is RFC 3339 UTC with microseconds; `verdict` is
//! Neutron's `ACCEPT` (a connection admitted by `rule_id` of `group`, once per
//! connection) or `DROP` (one packet, with the sgswitch drop `reason`); `direction` is
//! the instance's view (`egress` at the sending port, `ingress` at the receiving one).
//! `protocol` is the IANA name (`tcp`, `udp`, `icmp`, `ipv6-icmp`, …) or the number;
//! ports are given for protocols with ports, ICMP type and code for ICMP. `logs` names
//! the enabled log objects the record belongs to. Keys without a value are left out:
//! ids when no store is connected (an offline replay), the group and rule of a `DROP`,
//! names of an epoch the writer does not know (then `port_index` stands in).
//!
//! Owns: the line format. May not touch: the rate limit, the queue or the sink.

use std::net::IpAddr;
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;

use super::directory::{Directory, Ids};
use crate::control::store::Id;
use crate::flow::{proto, FAMILY_V4};
use crate::pipeline::{LogRecord, LogVerdict};
use crate::policy::protocol::protocol_name;

/// The fields of one line, in order.
#[derive(Serialize)]
struct Line<'a> {
    time: String,
    verdict: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    direction: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    port_index: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    port_id: Option<Id>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group_id: Option<Id>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule_id: Option<Id>,
    ethertype: &'static str,
    protocol: String,
    src_ip: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_port: Option<u16>,
    dst_ip: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    dst_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_type: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_code: Option<u8>,
    logs: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log_ids: Option<Vec<Id>>,
    epoch: u64,
}

/// RFC 3339 UTC with microseconds of `unix_ns` nanoseconds since the Unix epoch.
pub fn rfc3339_micros(unix_ns: u64) -> String {
    humantime::format_rfc3339_micros(UNIX_EPOCH + Duration::from_nanos(unix_ns)).to_string()
}

/// Append the JSON line of `r` (time `unix_ns`) to `out`, named by `dir` (the record's
/// epoch) and `ids` (when a store is connected).
pub fn write_line(
    out: &mut Vec<u8>,
    r: &LogRecord,
    unix_ns: u64,
    dir: Option<&Directory>,
    ids: Option<&Ids>,
) {
    let k = &r.key;
    let (verdict, reason) = match r.verdict {
        LogVerdict::Accept => ("ACCEPT", None),
        LogVerdict::Drop(reason) => ("DROP", Some(reason.as_str())),
    };
    let port = dir.and_then(|d| d.port_name(r.port));
    let rule = r.rule.filter(|_| r.verdict == LogVerdict::Accept);
    let icmp = k.is_icmp();
    let ports = proto::has_ports(k.proto);
    let matched: Vec<usize> = dir
        .map(|d| d.matching_logs(r).collect())
        .unwrap_or_default();
    let line = Line {
        time: rfc3339_micros(unix_ns),
        verdict,
        reason,
        direction: r.dir.as_str(),
        port,
        port_index: port.is_none().then_some(r.port),
        port_id: ids.and_then(|i| i.port(r.port)),
        group: rule.and_then(|x| dir.and_then(|d| d.group_name(x))),
        group_id: rule.and_then(|x| ids.and_then(|i| i.group(x))),
        rule_id: rule.and_then(|x| ids.and_then(|i| i.rule(x))),
        ethertype: if k.family == FAMILY_V4 {
            "IPv4"
        } else {
            "IPv6"
        },
        protocol: protocol_name(k.proto)
            .map(str::to_string)
            .unwrap_or_else(|| k.proto.to_string()),
        src_ip: k.src_ip(),
        src_port: ports.then_some(k.sport),
        dst_ip: k.dst_ip(),
        dst_port: ports.then_some(k.dport),
        icmp_type: icmp.then(|| k.icmp_type()),
        icmp_code: icmp.then(|| k.icmp_code()),
        logs: dir.map_or_else(Vec::new, |d| {
            matched.iter().map(|&i| d.log_name(i)).collect()
        }),
        log_ids: ids.map(|i| matched.iter().filter_map(|&m| i.log(m)).collect()),
        epoch: r.epoch,
    };
    // Serialising plain strings, numbers and addresses cannot fail.
    let _ = serde_json::to_writer(&mut *out, &line);
    out.push(b'\n');
}
