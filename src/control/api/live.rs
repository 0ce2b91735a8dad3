//! The observation endpoints of a running switch, served beside the Neutron API when the
//! server was given the switch ([`super::ApiServer::start_observed`]):
//!
//! * `GET /metrics` — Prometheus text format ([`super::metrics`]);
//! * `GET /sgswitch/v1/stats` — the same counters as JSON ([`super::stats`]);
//! * `GET /sgswitch/v1/conntrack[?port=P]`, `DELETE /sgswitch/v1/conntrack?port=P` —
//!   connection tracking ([`super::conntrack`]);
//! * `GET /sgswitch/v1/capture?port=P[&dropped=true][&count=N][&duration=S]` — a live
//!   capture streamed as pcapng ([`super::capture`]);
//! * `POST /sgswitch/v1/trace` — one frame judged by the live policy and connection
//!   state, changing nothing ([`super::trace`]).
//!
//! A port is named by its name or its Neutron id; an unknown one is a 404
//! (`PortNotFound`). These paths live outside Neutron's `/v2.0` namespace so that they
//! can never clash with a Neutron resource. The token rule is the API's: with a token,
//! every request needs it (the listener checks it before the body is read).
//!
//! Owns: routing these paths and answering them (JSON, text, or a stream). May not
//! change policy: the switch is only read, except for its connection-tracking entries
//! (flush) and the captures it runs; policy changes go through the store.
//!
//! Depends on: `runtime::switch` (counters, queries, captures), `control::store`
//! (read-only snapshots, for names and ids).

use std::sync::Arc;

use serde_json::Value;

use super::capture::{self, Captures};
use super::error::{error_body, Fail, Reply};
use super::query::parse_query;
use super::server::{Answer, Request, Response};
use super::{conntrack, metrics, stats, trace};
use crate::control::store::Store;
use crate::runtime::switch::Switch;

/// The running switch an API server observes.
pub(super) struct Live {
    pub(super) switch: Arc<Switch>,
    pub(super) captures: Arc<Captures>,
}

/// Whether `path` is one of this module's.
fn is_live_path(path: &str) -> bool {
    path == "/metrics" || path == "/sgswitch" || path.starts_with("/sgswitch/")
}

/// Answer `req` if it is an observation request (`None`: the Neutron API answers it).
/// The listener checked the token already.
pub(super) fn serve(live: &Live, store: &Store, req: &Request) -> Option<Answer> {
    let (path, query) = req.target.split_once('?').unwrap_or((&req.target, ""));
    if !is_live_path(path) {
        return None;
    }
    let query = parse_query(query);
    let method = req.method.to_ascii_uppercase();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let port = query
        .iter()
        .find(|(k, _)| k == "port")
        .map(|(_, v)| v.as_str());
    let sw = &live.switch;
    let reply: Reply = match (method.as_str(), segs.as_slice()) {
        ("GET", ["metrics"]) => {
            let mut text = metrics::render(&stats::collect(sw, store));
            if let Some(s) = store.shared_status() {
                text.push_str(&metrics::render_store(&s));
            }
            return Some(Answer::Full(Response {
                status: 200,
                headers: vec![("Content-Type", metrics::CONTENT_TYPE.to_string())],
                body: text.into_bytes(),
            }));
        }
        ("GET", ["sgswitch", "v1", "stats"]) => {
            Ok((200, Some(stats::stats_json(&stats::collect(sw, store)))))
        }
        ("GET", ["sgswitch", "v1", "conntrack"]) => conntrack::list(sw, &store.snapshot(), port),
        ("DELETE", ["sgswitch", "v1", "conntrack"]) => {
            conntrack::flush(sw, &store.snapshot(), port)
        }
        ("POST", ["sgswitch", "v1", "trace"]) => trace::trace(sw, store, &req.body),
        ("GET", ["sgswitch", "v1", "capture"]) => {
            return Some(match capture_request(sw, store, port, &query) {
                Ok(c) => capture::start(Arc::clone(sw), &live.captures, c),
                Err(f) => answer(Err(f)),
            });
        }
        (_, ["metrics"] | ["sgswitch", "v1", "stats" | "conntrack" | "capture" | "trace"]) => {
            Ok(error_body(
                405,
                "HTTPMethodNotAllowed",
                &format!("Method {method} is not allowed here."),
            ))
        }
        _ => Err(Fail::not_found(
            "HTTPNotFound",
            "The resource could not be found.",
        )),
    };
    Some(answer(reply))
}

fn capture_request(
    sw: &Switch,
    store: &Store,
    port: Option<&str>,
    query: &[(String, String)],
) -> Result<capture::CaptureRequest, Fail> {
    let Some(p) = port else {
        return Err(Fail::bad("Name the port to capture: ?port=NAME_OR_ID."));
    };
    let pz = conntrack::port_zone(&store.snapshot(), &sw.dataplane(), p)?;
    capture::parse(pz, query)
}

fn answer(reply: Reply) -> Answer {
    let (status, body): (u16, Option<Value>) = match reply {
        Ok(r) => r,
        Err(f) => error_body(f.status, &f.ty, &f.message),
    };
    Answer::Full(super::make_response(status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert!(is_live_path("/metrics"));
        assert!(is_live_path("/sgswitch/v1/stats"));
        assert!(!is_live_path("/metricsx"));
        assert!(!is_live_path("/v2.0/ports"));
        assert!(!is_live_path("/sgswitchx"));
    }
}
