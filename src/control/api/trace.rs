//! `POST /sgswitch/v1/trace`: why one frame would be delivered or dropped by the running
//! switch — its policy in force and the live connection state of the frame's flow —
//! without changing any state (`sgswitch trace --api`).
//!
//! Body: `{"in_port": NAME_OR_ID, "packet": "tcp 10.0.0.10:40000 > 10.0.0.11:22 flags S"}`
//! (the description grammar of `control::explain::packet`; optional `src_mac`, `dst_mac`)
//! or `{"in_port": …, "frame": HEX}` (a whole Ethernet frame, e.g. from a capture). The
//! answer is the explanation as JSON (`control::explain::Explanation`) with its human
//! rendering in `text`.
//!
//! Owns: decoding the request and the answer. May not explain anything itself: the
//! frame runs through `control::explain::trace_frame_at`, on a scratch pipeline of the
//! switch's compiled policy seeded with the flow's live conntrack entries
//! (`Switch::conntrack_lookup`, read-only), at the switch's clock.

use serde::Deserialize;
use serde_json::{json, Value};

use super::conntrack::port_zone;
use super::error::{Fail, Reply};
use crate::control::explain::{self, packet};
use crate::control::store::Store;
use crate::flow;
use crate::runtime::switch::Switch;
use crate::wire::Mac;

/// The request body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TraceBody {
    in_port: String,
    #[serde(default)]
    packet: Option<String>,
    #[serde(default)]
    frame: Option<String>,
    #[serde(default)]
    src_mac: Option<String>,
    #[serde(default)]
    dst_mac: Option<String>,
}

fn mac(field: &str, v: &Option<String>) -> Result<Option<Mac>, Fail> {
    v.as_deref()
        .map(|s| {
            s.parse::<Mac>()
                .map_err(|e| Fail::bad(format!("Invalid input for {field}: {e}")))
        })
        .transpose()
}

fn unhex(s: &str) -> Result<Vec<u8>, Fail> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if !s.len().is_multiple_of(2) {
        return Err(Fail::bad(
            "Invalid input for frame: an odd number of hex digits.",
        ));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&s[i..i + 2], 16)
                .map_err(|_| Fail::bad("Invalid input for frame: not hex digits."))
        })
        .collect()
}

/// Answer a trace request.
pub(super) fn trace(sw: &Switch, store: &Store, body: &[u8]) -> Reply {
    let b: TraceBody = serde_json::from_slice(body)
        .map_err(|e| Fail::bad(format!("Invalid trace request: {e}")))?;
    let state = store.snapshot();
    let dp = sw.dataplane();
    let port = port_zone(&state, &dp, &b.in_port)?;
    let frame = match (&b.packet, &b.frame) {
        (Some(desc), None) => packet::frame_for(
            &state.model,
            &port.name,
            desc,
            mac("src_mac", &b.src_mac)?,
            mac("dst_mac", &b.dst_mac)?,
        )
        .map_err(Fail::bad)?,
        (None, Some(hex)) => unhex(hex)?,
        _ => return Err(Fail::bad("Give exactly one of packet and frame.")),
    };
    let in_port = dp.port_index(&port.name).ok_or_else(|| {
        Fail::not_found(
            "PortNotFound",
            format!("Port {} could not be found.", b.in_port),
        )
    })?;
    let seed = match flow::extract(&frame) {
        Ok(meta) => sw.conntrack_lookup(&meta),
        Err(_) => Vec::new(),
    };
    let e = explain::trace_frame_at(
        &dp,
        &state.model,
        Some(&state.meta),
        in_port,
        &frame,
        seed,
        Some(sw.now_ns()),
    );
    let mut v = serde_json::to_value(&e).map_err(|e| Fail::bad(e.to_string()))?;
    if let Value::Object(m) = &mut v {
        m.insert("text".into(), json!(e.text()));
        m.insert("epoch".into(), json!(dp.epoch));
    }
    Ok((200, Some(v)))
}
