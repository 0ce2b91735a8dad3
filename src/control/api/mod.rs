//! The management API: a Neutron-compatible REST subset over the [`Store`].
//!
//! The stock `openstack` client (python-openstackclient / openstacksdk) works against it
//! without Keystone: `openstack --os-auth-type none --os-endpoint http://127.0.0.1:9696
//! security group list`, or with `--os-auth-type admin_token --os-token T` when a token is
//! configured.
//!
//! # Resources (Neutron v2.0 shapes, wrapper keys and status codes)
//! * `GET /` version document; `GET /v2.0/extensions` the aliases we implement;
//! * `/v2.0/security-groups[/{id}]`: list, show, create (201), update, delete (204);
//! * `/v2.0/security-group-rules[/{id}]`: list, show, create (201; single or bulk with
//!   `security_group_rules`), delete (204);
//! * `/v2.0/address-groups[/{id}]`: list, show, create, update, delete, and
//!   `PUT …/{id}/add_addresses`, `…/remove_addresses`;
//! * `/v2.0/ports[/{id}]`: list, show, create (hot-plug; the backend is given as
//!   `binding:profile` = `{"type":"tap","ifname":…}`; `binding:host_id`), update
//!   (`name`, `security_groups`, `allowed_address_pairs`, `port_security_enabled`,
//!   `binding:host_id`), delete;
//! * `/v2.0/networks[/{id}]`: list, show;
//! * `/v2.0/log/logs[/{id}]`: list, show, create, update (`name`, `description`,
//!   `enabled`), delete; `GET /v2.0/log/loggable-resources` (Neutron's `logging`
//!   extension, [`logs`]).
//!
//! With the running switch ([`ApiServer::start_observed`], as `sgswitch run` starts it),
//! also its counters and state, outside Neutron's namespace ([`live`]): `GET /metrics`
//! (Prometheus), `GET /sgswitch/v1/stats`, `GET|DELETE /sgswitch/v1/conntrack`,
//! `GET /sgswitch/v1/capture` (pcapng stream).
//!
//! For operators and probes ([`health`], [`ops`]): `GET /healthz` (alive) and
//! `GET /readyz` (every port open, policy published, store writable; 503 naming what is
//! not) without the token; `GET /sgswitch/v1/status`; with the program's [`Operator`]
//! hooks ([`ApiServer::start_operated`], as `sgswitch run` starts it), admin-only
//! `POST /sgswitch/v1/reload` and `PUT /sgswitch/v1/log-level`. Every request is logged
//! ([`access_log`]).
//!
//! Writes: `If-Match: revision_number=N` on `PUT`/`DELETE` is checked inside the
//! store's mutation (412 `PreconditionFailed`, [`crate::control::store::if_match`]);
//! `?wait=applied[&wait_timeout=S]` on a write waits until every live host of a shared
//! store that the write concerns (a changed key is in its interest set) applied it (504 naming the hosts that lag; at once on a local store). On a
//! shared store (`sgswitch api --store`), `/metrics` without a switch shows the store's
//! families alone (docs/scale-out.md).
//!
//! Lists filter on any top-level field (`?name=web&id=…`; a repeated key is an OR; an
//! array field matches when it contains the value); `fields`, `limit`, `marker`,
//! `sort_key`, `sort_dir` and `page_reverse` are accepted and ignored. An unknown filter
//! is a 400, as in Neutron with filter validation.
//!
//! # Request checking
//! Bodies above [`MAX_BODY`] get 413 before they are read. A body must be a JSON object
//! with exactly the resource's wrapper key; every attribute is type-checked (each verb
//! decodes into a serde struct with `deny_unknown_fields`, see [`body`]) and an
//! attribute Neutron does not accept for that verb is a 400 (`tenant_id`/`project_id`
//! are accepted and ignored: there is one project). Errors use Neutron's body
//! `{"NeutronError":{"type":…,"message":…,"detail":""}}`.
//!
//! # Security
//! [`ApiServer::start`] refuses a non-loopback address without a token. With a token,
//! every request (`GET /` included) needs `X-Auth-Token` equal to it (401 otherwise),
//! except the probes `GET /healthz` and `GET /readyz` ([`health`] says why and what they
//! show).
//!
//! # Wiring (`sgswitch run`)
//! ```text
//! let cfg = config::load_file(&args.config)?;                 // exit 1 on errors
//! let store = Arc::new(Store::open(args.state_dir.as_deref(), &cfg)?); // Corrupt: exit 1
//! let runtime = start_runtime(&store.model(), ...)?;          // the store's model, not cfg's
//! control::connect(&store, runtime.clone());                // compile + publish + wait
//! let api = ApiServer::start_observed(addr, args.api_token, store.clone(), runtime.clone())?;
//! // SIGHUP: match config::load_file(..) { Ok(c) => store.replace_model(&c.model), Err(e) => log }
//! // export:  config::to_toml_string(&Store::export_from(state_dir, &cfg)?)
//! ```
//!
//! # Modules
//! This module owns the server (threads, token, body size), routing and the one place
//! requests reach the store; each resource module renders its objects and decodes its
//! bodies: [`groups`], [`rules`], [`address_groups`], [`ports`], [`networks`], [`logs`];
//! [`versions`] the version documents, [`query`] query strings and filters,
//! [`resource`] the list / show / single-object answers every resource shares,
//! [`body`] request bodies, [`error`] the error answer. None of them holds state.
//! The observation endpoints: [`live`] routes them, [`stats`] names the switch's
//! counters, [`metrics`] renders them for Prometheus, [`conntrack`] lists and flushes
//! entries, [`capture`] streams captures.
//!
//! # Threads
//! [`server`] is the HTTP listener (our own accept loop on `httparse`: timeouts, bounded
//! connections and sizes, accept errors survived; its doc says why and what it costs):
//! one thread reads each connection, [`WORKERS`] threads handle whole requests and never
//! touch a socket. Reads run concurrently on snapshots, mutations are serialised by the
//! store. The token is checked ([`server::Handler::admit`]) before a body is read.
//! Rejected option: an async stack (hyper/axum) — the control plane handles a few
//! requests per second and gains nothing from it but dependencies.
//!
//! Depends on: [`Store`] (every read is a snapshot, every change a `Store` method),
//! `policy`'s text forms (protocol names, MACs, spec types), and, for the observation
//! endpoints only, the running [`Switch`]: they read its counters, connection tracking
//! and compiled port table, flush its connection-tracking entries and run captures.
//! Never on `config`; the API changes policy only through the store (whose apply hook
//! publishes it to the switch), never through the switch.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::control::store::{rfc3339, ObjMeta, Store, PROJECT_ID};
use crate::runtime::switch::Switch;

pub mod access_log;
pub mod address_groups;
pub mod body;
pub mod capture;
pub mod conntrack;
pub mod error;
pub mod groups;
pub mod health;
pub mod live;
pub mod logs;
pub mod metrics;
pub mod networks;
pub mod ops;
pub mod ports;
pub mod query;
pub mod resource;
pub mod rules;
pub mod server;
pub mod stats;
pub mod token;
pub mod trace;
pub mod versions;

use error::{error_body, Fail, Reply};
use query::parse_query;
use server::{Answer, Request, Response};

pub use groups::sg_json;
pub use ops::{Operator, ReloadRecord};
pub use ports::port_json;
pub use rules::rule_json;

/// Largest accepted request body.
pub const MAX_BODY: usize = 1 << 20;
/// Number of request-handling threads (they never read or write a socket).
pub const WORKERS: usize = server::WORKERS;
/// Default listen address.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9696";

/// Why the API server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(
        "refusing to serve the API on non-loopback address {0} without a token (set --api-token-file)"
    )]
    TokenRequired(SocketAddr),
    #[error("cannot listen on {addr}: {message}")]
    Bind { addr: SocketAddr, message: String },
}

/// The API server entry point.
pub struct ApiServer;

/// A running API server; dropping it (or [`ApiHandle::shutdown`]) stops it.
pub struct ApiHandle {
    listener: server::Listener,
    /// Running captures (they end when the server stops).
    captures: Arc<capture::Captures>,
}

impl ApiHandle {
    /// The bound address (with the real port when started on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr()
    }

    /// Connections open now.
    pub fn connections(&self) -> usize {
        self.listener.connections()
    }

    /// The listener's counters (accepted, shed, refused, accept errors, timeouts).
    pub fn listener_stats(&self) -> &server::ListenerStats {
        self.listener.stats()
    }

    /// Stop serving and join the threads.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.captures.closing.store(true, Ordering::Release);
        self.listener.stop();
    }
}

impl Drop for ApiHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v| v.is_loopback()),
    }
}

impl ApiServer {
    /// Bind `addr` and serve the store. With `token`, every request needs it and is an
    /// admin's; without, only on loopback, and no request is an admin's (see
    /// [`Caller`]).
    pub fn start(
        addr: SocketAddr,
        token: Option<String>,
        store: Arc<Store>,
    ) -> Result<ApiHandle, ApiError> {
        ApiServer::start_with(addr, token, store, None, None)
    }

    /// [`ApiServer::start`], also serving the observation endpoints of `switch` (see
    /// [`live`]): the switch must run the store's model (connected with
    /// [`crate::control::connect()`]).
    pub fn start_observed(
        addr: SocketAddr,
        token: Option<String>,
        store: Arc<Store>,
        switch: Arc<Switch>,
    ) -> Result<ApiHandle, ApiError> {
        ApiServer::start_with(addr, token, store, Some(switch), None)
    }

    /// [`ApiServer::start_observed`], also serving the operator endpoints (reload, log
    /// level: [`ops`]) through `ops`, the program's hooks.
    pub fn start_operated(
        addr: SocketAddr,
        token: Option<String>,
        store: Arc<Store>,
        switch: Arc<Switch>,
        ops: Arc<dyn Operator>,
    ) -> Result<ApiHandle, ApiError> {
        ApiServer::start_with(addr, token, store, Some(switch), Some(ops))
    }

    fn start_with(
        addr: SocketAddr,
        token: Option<String>,
        store: Arc<Store>,
        switch: Option<Arc<Switch>>,
        ops: Option<Arc<dyn Operator>>,
    ) -> Result<ApiHandle, ApiError> {
        let token = token.filter(|t| !t.is_empty());
        if token.is_none() && !is_loopback(addr.ip()) {
            return Err(ApiError::TokenRequired(addr));
        }
        let captures = Arc::new(capture::Captures::default());
        let api = Api {
            store,
            live: switch.map(|switch| live::Live {
                switch,
                captures: Arc::clone(&captures),
            }),
            token: token.map(Arc::from),
            ops,
        };
        let listener =
            server::Listener::start(addr, Arc::new(api)).map_err(|e| ApiError::Bind {
                addr,
                message: e.to_string(),
            })?;
        Ok(ApiHandle { listener, captures })
    }
}

/// Who sent a request, as far as the API's policy goes. There is one token: a request
/// that carries it is an admin's. A server without a token (loopback only) has no
/// admin: its callers may change security groups, rules, address groups, logs and the
/// ports' Neutron attributes, but never give a port a backend (that opens a netdev of
/// the host in the root process: [`ports`]) nor bind it to a host (`binding:host_id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    pub admin: bool,
}

/// The API as the listener's [`server::Handler`].
struct Api {
    store: Arc<Store>,
    live: Option<live::Live>,
    token: Option<Arc<str>>,
    ops: Option<Arc<dyn Operator>>,
}

impl server::Handler for Api {
    fn admit(&self, head: &Request) -> Option<Response> {
        let path = head.target.split('?').next().unwrap_or_default();
        if health::is_probe(&head.method, path) || authorized(head, self.token.as_deref()) {
            None
        } else {
            let (status, body) = unauthorized();
            Some(make_response(status, body))
        }
    }

    fn max_body(&self) -> usize {
        MAX_BODY
    }

    fn refusal(&self, status: u16, message: &str) -> Response {
        let ty = match status {
            400 => "HTTPBadRequest",
            408 => "RequestTimeout",
            413 => "RequestEntityTooLarge",
            431 => "RequestHeaderFieldsTooLarge",
            501 => "NotImplemented",
            503 => "ServiceUnavailable",
            _ => "InternalServerError",
        };
        let (status, body) = error_body(status, ty, message);
        make_response(status, body)
    }

    fn handle(&self, req: Request) -> Answer {
        let caller = Caller {
            admin: self.token.is_some(),
        };
        let path = req.target.split('?').next().unwrap_or_default();
        let method = req.method.to_ascii_uppercase();
        let switch = self.live.as_ref().map(|l| &*l.switch);
        if method == "GET" {
            if let Some((status, body)) = health::probe(path, &self.store, switch) {
                return Answer::Full(make_response(status, Some(body)));
            }
        }
        if let Some(ops) = &self.ops {
            if let Some(reply) = ops::serve(&**ops, caller, &method, path, &req.body) {
                let (status, body) =
                    reply.unwrap_or_else(|f| error_body(f.status, &f.ty, &f.message));
                return Answer::Full(make_response(status, body));
            }
        }
        if let (Some(sw), "/sgswitch/v1/status") = (switch, path) {
            let body = match method.as_str() {
                "GET" => (
                    200,
                    Some(json!({"status": health::status(&self.store, sw, self.ops.as_deref())})),
                ),
                _ => error_body(
                    405,
                    "HTTPMethodNotAllowed",
                    &format!("Method {method} is not allowed here."),
                ),
            };
            return Answer::Full(make_response(body.0, body.1));
        }
        if let Some(l) = &self.live {
            if let Some(a) = live::serve(l, &self.store, &req) {
                return a;
            }
        } else if let (Some(s), "GET", "/metrics") =
            (self.store.shared_status(), method.as_str(), path)
        {
            // An API server without a switch: the shared store's families only.
            return Answer::Full(Response {
                status: 200,
                headers: vec![("Content-Type", metrics::CONTENT_TYPE.to_string())],
                body: metrics::render_store(&s).into_bytes(),
            });
        }
        let host = req.header("Host").unwrap_or("127.0.0.1:9696");
        let call = || handle_as(&self.store, caller, &method, &req.target, host, &req.body);
        let (status, body) = match req.header("If-Match") {
            Some(cond) if matches!(method.as_str(), "PUT" | "DELETE") => {
                match (parse_if_match(cond), object_id(path)) {
                    (Some(revision), Some(id)) => {
                        crate::control::store::if_match(id, revision, call)
                    }
                    (None, _) => error_body(
                        400,
                        "HTTPBadRequest",
                        &format!("Invalid If-Match header {cond:?}: expected revision_number=N."),
                    ),
                    (Some(_), None) => call(),
                }
            }
            _ => call(),
        };
        Answer::Full(make_response(status, body))
    }
}

/// `revision_number=N` of an `If-Match` header (Neutron's form).
fn parse_if_match(v: &str) -> Option<u64> {
    v.trim()
        .strip_prefix("revision_number=")?
        .trim()
        .parse()
        .ok()
}

/// The object id of a resource path (`/v2.0/ports/ID`, `/v2.0/log/logs/ID`,
/// `/v2.0/address-groups/ID/add_addresses`): its first segment that is a UUID.
fn object_id(path: &str) -> Option<&str> {
    path.split('/')
        .map(|s| s.strip_suffix(".json").unwrap_or(s))
        .find(|s| crate::control::store::Id::parse(s).is_some())
}

/// Constant-time comparison (the token is a secret).
fn token_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether `req` carries the token (when there is one).
fn authorized(req: &Request, token: Option<&str>) -> bool {
    token.is_none_or(|t| {
        req.header("X-Auth-Token")
            .is_some_and(|given| token_eq(given, t))
    })
}

/// The answer to a request without the token.
fn unauthorized() -> (u16, Option<Value>) {
    error_body(
        401,
        "Unauthorized",
        "Authentication required: a valid X-Auth-Token header is needed.",
    )
}

/// A JSON answer (none for 204), with Neutron's request id.
fn make_response(status: u16, body: Option<Value>) -> Response {
    let mut headers = vec![(
        "X-Openstack-Request-Id",
        format!("req-{}", crate::control::store::new_uuid()),
    )];
    if status != 204 {
        headers.push(("Content-Type", "application/json".into()));
    }
    Response {
        status,
        headers,
        body: body.map(|v| v.to_string().into_bytes()).unwrap_or_default(),
    }
}

/// Route one request as a trusted in-process caller (an admin). Public for tests that
/// bypass HTTP.
pub fn handle(
    store: &Store,
    method: &str,
    url: &str,
    host: &str,
    body: &[u8],
) -> (u16, Option<Value>) {
    handle_as(store, Caller { admin: true }, method, url, host, body)
}

/// Route one request from `caller`.
pub fn handle_as(
    store: &Store,
    caller: Caller,
    method: &str,
    url: &str,
    host: &str,
    body: &[u8],
) -> (u16, Option<Value>) {
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p, q),
        None => (url, ""),
    };
    let query = parse_query(query);
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let reply = route(store, caller, method, &segs, &query, host, body)
        .and_then(|r| wait_applied(store, method, &query, r));
    match reply {
        Ok(r) => r,
        Err(f) => error_body(f.status, &f.ty, &f.message),
    }
}

/// How long `?wait=applied` waits by default (`wait_timeout=S` changes it).
pub const WAIT_APPLIED_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `?wait=applied` on a write that succeeded: answer once every live host the write
/// concerns (a key it changed is in the host's interest set) reports its revision
/// applied, or 504 naming the hosts that lag. A local store answers at once.
fn wait_applied(
    store: &Store,
    method: &str,
    query: &[(String, String)],
    reply: (u16, Option<Value>),
) -> Reply {
    let get = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.as_str());
    if method == "GET" || get("wait") != Some("applied") || reply.0 >= 300 {
        return Ok(reply);
    }
    let timeout = match get("wait_timeout") {
        None => WAIT_APPLIED_TIMEOUT,
        Some(s) => match s.parse::<f64>() {
            Ok(t) if t > 0.0 && t <= 3600.0 => std::time::Duration::from_secs_f64(t),
            _ => {
                return Err(Fail::bad(format!(
                    "Invalid wait_timeout {s:?}: expected seconds, 0 < S <= 3600."
                )))
            }
        },
    };
    store.wait_applied_last_write(timeout)?;
    Ok(reply)
}

fn route(
    store: &Store,
    caller: Caller,
    method: &str,
    segs: &[&str],
    query: &[(String, String)],
    host: &str,
    body: &[u8],
) -> Reply {
    let not_allowed = || -> Reply {
        Ok(error_body(
            405,
            "HTTPMethodNotAllowed",
            &format!("Method {method} is not allowed here."),
        ))
    };
    match segs {
        [] => match method {
            "GET" => Ok((200, Some(versions::versions(host)))),
            _ => not_allowed(),
        },
        ["v2.0"] => match method {
            "GET" => Ok((200, Some(versions::resources()))),
            _ => not_allowed(),
        },
        ["v2.0", "extensions"] => match method {
            "GET" => Ok((200, Some(versions::extensions()))),
            _ => not_allowed(),
        },
        ["v2.0", "log", res] | ["v2.0", "log", res, _] => {
            let res = res.strip_suffix(".json").unwrap_or(res);
            let id = segs.get(3).map(|s| s.strip_suffix(".json").unwrap_or(s));
            match (res, id) {
                ("loggable-resources", None) => match method {
                    "GET" => logs::loggable_resources(),
                    _ => not_allowed(),
                },
                ("logs", None) => match method {
                    "GET" => resource::LOGS.list(store, query),
                    "POST" => logs::create_log(store, body),
                    _ => not_allowed(),
                },
                ("logs", Some(id)) => match method {
                    "GET" => resource::LOGS.show(store, id),
                    "PUT" => logs::update_log(store, id, body),
                    "DELETE" => store
                        .delete_log(id)
                        .map(|_| (204, None))
                        .map_err(Fail::from),
                    _ => not_allowed(),
                },
                _ => Err(Fail::not_found(
                    "HTTPNotFound",
                    "The resource could not be found.",
                )),
            }
        }
        ["v2.0", res] | ["v2.0", res, _] | ["v2.0", res, _, _] => {
            let res = res.strip_suffix(".json").unwrap_or(res);
            let id = segs.get(2).map(|s| s.strip_suffix(".json").unwrap_or(s));
            let action = segs.get(3).copied();
            match (res, id, action) {
                ("security-groups", None, None) => match method {
                    "GET" => resource::GROUPS.list(store, query),
                    "POST" => groups::create_group(store, body),
                    _ => not_allowed(),
                },
                ("security-groups", Some(id), None) => match method {
                    "GET" => resource::GROUPS.show(store, id),
                    "PUT" => groups::update_group(store, id, body),
                    "DELETE" => store.delete_group(id).map(|_| (204, None)).map_err(Fail::from),
                    _ => not_allowed(),
                },
                ("security-group-rules", None, None) => match method {
                    "GET" => resource::RULES.list(store, query),
                    "POST" => rules::create_rules(store, body),
                    _ => not_allowed(),
                },
                ("security-group-rules", Some(id), None) => match method {
                    "GET" => resource::RULES.show(store, id),
                    "DELETE" => store.delete_rule(id).map(|_| (204, None)).map_err(Fail::from),
                    "PUT" => Err(Fail::bad("Security group rules cannot be updated: delete the rule and create a new one.")),
                    _ => not_allowed(),
                },
                ("address-groups", None, None) => match method {
                    "GET" => resource::ADDRESS_GROUPS.list(store, query),
                    "POST" => address_groups::create_address_group(store, body),
                    _ => not_allowed(),
                },
                ("address-groups", Some(id), None) => match method {
                    "GET" => resource::ADDRESS_GROUPS.show(store, id),
                    "PUT" => address_groups::update_address_group(store, id, body),
                    "DELETE" => store.delete_address_group(id).map(|_| (204, None)).map_err(Fail::from),
                    _ => not_allowed(),
                },
                ("address-groups", Some(id), Some(a @ ("add_addresses" | "remove_addresses"))) => {
                    match method {
                        "PUT" => address_groups::change_addresses(store, id, body, a == "add_addresses"),
                        _ => not_allowed(),
                    }
                }
                ("ports", None, None) => match method {
                    "GET" => ports::list_ports(store, query),
                    "POST" => ports::create_port(store, body, caller),
                    _ => not_allowed(),
                },
                ("ports", Some(id), None) => match method {
                    "GET" => resource::PORTS.show(store, id),
                    "PUT" => ports::update_port(store, id, body, caller),
                    "DELETE" => store.delete_port(id).map(|_| (204, None)).map_err(Fail::from),
                    _ => not_allowed(),
                },
                ("networks", None, None) => match method {
                    "GET" => resource::NETWORKS.list(store, query),
                    _ => not_allowed(),
                },
                ("networks", Some(id), None) => match method {
                    "GET" => resource::NETWORKS.show(store, id),
                    _ => not_allowed(),
                },
                _ => Err(Fail::not_found("HTTPNotFound", "The resource could not be found.")),
            }
        }
        _ => Err(Fail::not_found(
            "HTTPNotFound",
            "The resource could not be found.",
        )),
    }
}

/// RFC 3339 (seconds) of a time in ms since the Unix epoch.
fn rfc3339_ms(ms: u64) -> String {
    rfc3339(ms / 1000)
}

/// The attributes every Neutron object has (id, project, timestamps, revision, tags).
fn std_attrs(m: &mut Map<String, Value>, o: &ObjMeta) {
    m.insert("id".into(), json!(o.id));
    m.insert("tenant_id".into(), json!(PROJECT_ID));
    m.insert("project_id".into(), json!(PROJECT_ID));
    m.insert("created_at".into(), json!(rfc3339(o.created_at)));
    m.insert("updated_at".into(), json!(rfc3339(o.updated_at)));
    m.insert("revision_number".into(), json!(o.revision_number));
    m.insert("tags".into(), json!([]));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_detection() {
        assert!(is_loopback("127.0.0.1".parse().unwrap()));
        assert!(is_loopback("::1".parse().unwrap()));
        assert!(!is_loopback("0.0.0.0".parse().unwrap()));
        assert!(!is_loopback("10.0.0.1".parse().unwrap()));
    }
}
