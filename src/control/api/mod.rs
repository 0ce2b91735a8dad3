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
//!   `binding:profile` = `{"type":"tap","ifname":…}`), update (`name`,
//!   `security_groups`, `allowed_address_pairs`, `port_security_enabled`), delete;
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
//! every request (`GET /` included) needs `X-Auth-Token` equal to it (401 otherwise).
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
//! [`WORKERS`] threads share one `tiny_http` server; reads run concurrently on
//! snapshots, mutations are serialised by the store. Rejected option: an async stack
//! (hyper/axum) — the control plane handles a few requests per second and gains nothing
//! from it but dependencies.
//!
//! Depends on: [`Store`] (every read is a snapshot, every change a `Store` method),
//! `policy`'s text forms (protocol names, MACs, spec types), and, for the observation
//! endpoints only, the running [`Switch`]: they read its counters, connection tracking
//! and compiled port table, flush its connection-tracking entries and run captures.
//! Never on `config`; the API changes policy only through the store (whose apply hook
//! publishes it to the switch), never through the switch.

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

use serde_json::{json, Map, Value};

use crate::control::store::{rfc3339, ObjMeta, Store, PROJECT_ID};
use crate::runtime::switch::Switch;

pub mod address_groups;
pub mod body;
pub mod capture;
pub mod conntrack;
pub mod error;
pub mod groups;
pub mod live;
pub mod logs;
pub mod metrics;
pub mod networks;
pub mod ports;
pub mod query;
pub mod resource;
pub mod rules;
pub mod stats;
pub mod trace;
pub mod versions;

use error::{error_body, Fail, Reply};
use query::parse_query;

pub use groups::sg_json;
pub use ports::port_json;
pub use rules::rule_json;

/// Largest accepted request body.
pub const MAX_BODY: usize = 1 << 20;
/// Number of request-serving threads.
pub const WORKERS: usize = 2;
/// Default listen address.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9696";

/// Why the API server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(
        "refusing to serve the API on non-loopback address {0} without a token (set --api-token)"
    )]
    TokenRequired(SocketAddr),
    #[error("cannot listen on {addr}: {message}")]
    Bind { addr: SocketAddr, message: String },
}

/// The API server entry point.
pub struct ApiServer;

/// A running API server; dropping it (or [`ApiHandle::shutdown`]) stops it.
pub struct ApiHandle {
    addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    threads: Vec<JoinHandle<()>>,
    /// Running captures (they end when the server stops).
    captures: Arc<capture::Captures>,
}

impl ApiHandle {
    /// The bound address (with the real port when started on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop serving and join the threads.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.captures.closing.store(true, Ordering::Release);
        for _ in 0..self.threads.len() {
            self.server.unblock();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
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
    /// Bind `addr` and serve the store on [`WORKERS`] threads.
    pub fn start(
        addr: SocketAddr,
        token: Option<String>,
        store: Arc<Store>,
    ) -> Result<ApiHandle, ApiError> {
        ApiServer::start_with(addr, token, store, None)
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
        ApiServer::start_with(addr, token, store, Some(switch))
    }

    fn start_with(
        addr: SocketAddr,
        token: Option<String>,
        store: Arc<Store>,
        switch: Option<Arc<Switch>>,
    ) -> Result<ApiHandle, ApiError> {
        let token = token.filter(|t| !t.is_empty());
        if token.is_none() && !is_loopback(addr.ip()) {
            return Err(ApiError::TokenRequired(addr));
        }
        let server = tiny_http::Server::http(addr).map_err(|e| ApiError::Bind {
            addr,
            message: e.to_string(),
        })?;
        let bound = server.server_addr().to_ip().unwrap_or(addr);
        let server = Arc::new(server);
        let token: Option<Arc<str>> = token.map(Arc::from);
        let captures = Arc::new(capture::Captures::default());
        let mut threads = Vec::with_capacity(WORKERS);
        for i in 0..WORKERS {
            let server = Arc::clone(&server);
            let store = Arc::clone(&store);
            let token = token.clone();
            let live = switch.as_ref().map(|sw| live::Live {
                switch: Arc::clone(sw),
                captures: Arc::clone(&captures),
            });
            let t = std::thread::Builder::new()
                .name(format!("sgswitch-api-{i}"))
                .spawn(move || serve(&server, &store, live.as_ref(), token.as_deref()))
                .map_err(|e| ApiError::Bind {
                    addr,
                    message: format!("cannot start a thread: {e}"),
                })?;
            threads.push(t);
        }
        Ok(ApiHandle {
            addr: bound,
            server,
            threads,
            captures,
        })
    }
}

fn serve(
    server: &tiny_http::Server,
    store: &Store,
    live: Option<&live::Live>,
    token: Option<&str>,
) {
    while let Ok(req) = server.recv() {
        let mut req = match live {
            Some(l) => match live::serve(l, store, token, req) {
                live::Served::Done => continue,
                live::Served::NotMine(req) => req,
            },
            None => req,
        };
        let (status, body) = process(store, token, &mut req);
        let _ = req.respond(make_response(status, body));
    }
}

fn header<'a>(req: &'a tiny_http::Request, name: &str) -> Option<&'a str> {
    req.headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// Constant-time comparison (the token is a secret).
fn token_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether `req` carries the token (when there is one).
fn authorized(req: &tiny_http::Request, token: Option<&str>) -> bool {
    token.is_none_or(|t| header(req, "X-Auth-Token").is_some_and(|given| token_eq(given, t)))
}

/// The answer to a request without the token.
fn unauthorized() -> (u16, Option<Value>) {
    error_body(
        401,
        "Unauthorized",
        "Authentication required: a valid X-Auth-Token header is needed.",
    )
}

fn process(
    store: &Store,
    token: Option<&str>,
    req: &mut tiny_http::Request,
) -> (u16, Option<Value>) {
    if !authorized(req, token) {
        return unauthorized();
    }
    let body = match read_body(req) {
        Ok(b) => b,
        Err(answer) => return answer,
    };
    let host = header(req, "Host").unwrap_or("127.0.0.1:9696").to_string();
    let method = req.method().as_str().to_ascii_uppercase();
    let url = req.url().to_string();
    handle(store, &method, &url, &host, &body)
}

/// The request's body, at most [`MAX_BODY`] bytes (413 beyond, 400 if unreadable).
fn read_body(req: &mut tiny_http::Request) -> Result<Vec<u8>, (u16, Option<Value>)> {
    let too_large = || {
        error_body(
            413,
            "RequestEntityTooLarge",
            &format!("Request body larger than {MAX_BODY} bytes."),
        )
    };
    if req.body_length().is_some_and(|n| n > MAX_BODY) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    if let Err(e) = req
        .as_reader()
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut body)
    {
        return Err(error_body(
            400,
            "HTTPBadRequest",
            &format!("Cannot read the request body: {e}"),
        ));
    }
    if body.len() > MAX_BODY {
        return Err(too_large());
    }
    Ok(body)
}

fn make_response(
    status: u16,
    body: Option<Value>,
) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let data = body.map(|v| v.to_string().into_bytes()).unwrap_or_default();
    let mut r = tiny_http::Response::from_data(data).with_status_code(status);
    if status != 204 {
        if let Ok(h) = tiny_http::Header::from_bytes("Content-Type", "application/json") {
            r.add_header(h);
        }
    }
    if let Ok(h) = tiny_http::Header::from_bytes(
        "X-Openstack-Request-Id",
        format!("req-{}", crate::control::store::new_uuid()),
    ) {
        r.add_header(h);
    }
    r
}

/// Route one request. Public for tests that bypass HTTP.
pub fn handle(
    store: &Store,
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
    let reply = route(store, method, &segs, &query, host, body);
    match reply {
        Ok(r) => r,
        Err(f) => error_body(f.status, &f.ty, &f.message),
    }
}

fn route(
    store: &Store,
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
                    "POST" => ports::create_port(store, body),
                    _ => not_allowed(),
                },
                ("ports", Some(id), None) => match method {
                    "GET" => resource::PORTS.show(store, id),
                    "PUT" => ports::update_port(store, id, body),
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
