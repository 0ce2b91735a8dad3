//! Connection-tracking inspection of a running switch: `GET /sgswitch/v1/conntrack
//! [?port=P]` lists the live entries (every worker's), `DELETE
//! /sgswitch/v1/conntrack?port=P` forgets those of one port and answers how many.
//!
//! Owns: the JSON shape of an entry and naming a port (name or Neutron id) as its
//! conntrack zone. May not touch: the tables (the workers answer [`Switch`]'s queries
//! between two bursts) or the store (read-only snapshots, for port ids).
//!
//! An entry belongs to the zone of the port whose security groups admitted it: a
//! connection between two ports with groups has one entry at the sender (egress) and one
//! at the receiver (ingress).
//!
//! Depends on: `runtime::switch` (the queries), `conntrack::CtEntry`, `flow` (key
//! layout), `policy::protocol` (protocol names), `control::store` (port ids).

use serde_json::{json, Map, Value};

use super::error::{Fail, Reply};
use crate::conntrack::CtEntry;
use crate::control::store::State;
use crate::flow::proto;
use crate::pipeline::Dataplane;
use crate::policy::protocol::protocol_name;
use crate::runtime::switch::Switch;

/// A port of the running policy, as the API names it.
pub(super) struct PortZone {
    pub(super) name: String,
    pub(super) zone: u16,
}

/// The port called `p` (a name, or a Neutron id of the store) in the policy in force.
pub(super) fn port_zone(state: &State, dp: &Dataplane, p: &str) -> Result<PortZone, Fail> {
    let name = match state.port_by_id(p) {
        Some(i) => state.model.ports[i].name.as_str(),
        None => p,
    };
    let i = dp
        .port_index(name)
        .ok_or_else(|| Fail::not_found("PortNotFound", format!("Port {p} could not be found.")))?;
    Ok(PortZone {
        name: name.to_string(),
        zone: dp.ports[i as usize].zone,
    })
}

/// One entry as JSON; `port` is the name of its zone's port, `now_ns` the switch's clock.
pub fn entry_json(e: &CtEntry, port: &str, now_ns: u64) -> Value {
    let k = &e.orig;
    let mut m = Map::new();
    m.insert("port".into(), json!(port));
    m.insert("zone".into(), json!(e.zone));
    m.insert(
        "ethertype".into(),
        json!(if k.family == crate::flow::FAMILY_V4 {
            "IPv4"
        } else {
            "IPv6"
        }),
    );
    m.insert(
        "protocol".into(),
        json!(protocol_name(k.proto)
            .map(str::to_string)
            .unwrap_or_else(|| k.proto.to_string())),
    );
    m.insert("protocol_number".into(), json!(k.proto));
    m.insert("state".into(), json!(e.state.as_str()));
    m.insert("src".into(), json!(k.src_ip().to_string()));
    m.insert("dst".into(), json!(k.dst_ip().to_string()));
    if k.is_icmp() {
        m.insert("icmp_type".into(), json!(k.icmp_type()));
        m.insert("icmp_code".into(), json!(k.icmp_code()));
        m.insert("icmp_id".into(), json!(k.sport));
    } else if proto::has_ports(k.proto) {
        m.insert("sport".into(), json!(k.sport));
        m.insert("dport".into(), json!(k.dport));
    }
    m.insert("seen_reply".into(), json!(e.seen_reply));
    let left_ms = e.expires_ns.saturating_sub(now_ns) / 1_000_000;
    m.insert("expires_in".into(), json!(left_ms as f64 / 1000.0));
    m.insert("epoch".into(), json!(e.epoch));
    m.insert("cut".into(), json!(e.cut));
    Value::Object(m)
}

/// `GET /sgswitch/v1/conntrack[?port=P]`: `{"conntrack": [entry, ...]}`, sorted by port
/// (zone) and original tuple.
pub(super) fn list(sw: &Switch, state: &State, port: Option<&str>) -> Reply {
    let dp = sw.dataplane();
    let zone = port.map(|p| port_zone(state, &dp, p)).transpose()?;
    let mut entries = sw.conntrack_entries(zone.map(|z| z.zone));
    entries.sort_by_key(|e| (e.zone, e.orig));
    let now = sw.now_ns();
    let list: Vec<Value> = entries
        .iter()
        .map(|e| {
            let name = dp
                .port_index_by_zone(e.zone)
                .map(|i| dp.ports[i as usize].name.as_str())
                .unwrap_or("");
            entry_json(e, name, now)
        })
        .collect();
    Ok((200, Some(json!({ "conntrack": list }))))
}

/// `DELETE /sgswitch/v1/conntrack?port=P`: `{"port": P, "flushed": N}`.
pub(super) fn flush(sw: &Switch, state: &State, port: Option<&str>) -> Reply {
    let Some(p) = port else {
        return Err(Fail::bad(
            "Name the port whose connections to forget: ?port=NAME_OR_ID.",
        ));
    };
    let pz = port_zone(state, &sw.dataplane(), p)?;
    let n = sw.conntrack_flush(pz.zone);
    Ok((200, Some(json!({"port": pz.name, "flushed": n}))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::Conntrack;
    use crate::flow::{tcp_flags, FlowKey, L3Kind, PacketMeta, FAMILY_V4};
    use crate::policy::ConntrackSettings;

    #[test]
    fn entry_shape() {
        let mut ct = Conntrack::new(&ConntrackSettings::default());
        let meta = PacketMeta {
            l3: L3Kind::Ipv4,
            key: FlowKey {
                src: FlowKey::map_v4([10, 0, 0, 10]),
                dst: FlowKey::map_v4([10, 0, 0, 11]),
                sport: 40000,
                dport: 22,
                proto: proto::TCP,
                family: FAMILY_V4,
                _pad: [0; 2],
            },
            tcp_flags: tcp_flags::SYN,
            ..PacketMeta::default()
        };
        ct.commit(2, &meta, 3, 0, 0).expect("committed");
        let mut e = ct.iter().next().expect("one entry");
        e.expires_ns = 12_500_000_000;
        let v = entry_json(&e, "vm-b", 2_000_000_000);
        assert_eq!(
            v,
            json!({"port": "vm-b", "zone": 2, "ethertype": "IPv4", "protocol": "tcp",
                   "protocol_number": 6, "state": "SYN_SENT", "src": "10.0.0.10",
                   "dst": "10.0.0.11", "sport": 40000, "dport": 22, "seen_reply": false,
                   "expires_in": 10.5, "epoch": 3, "cut": false})
        );
    }
}
