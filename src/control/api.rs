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
//! * `/v2.0/networks[/{id}]`: list, show.
//!
//! Lists filter on any top-level field (`?name=web&id=…`; a repeated key is an OR; an
//! array field matches when it contains the value); `fields`, `limit`, `marker`,
//! `sort_key`, `sort_dir` and `page_reverse` are accepted and ignored. An unknown filter
//! is a 400, as in Neutron with filter validation.
//!
//! # Request checking
//! Bodies above [`MAX_BODY`] get 413 before they are read. A body must be a JSON object
//! with exactly the resource's wrapper key; every attribute is type-checked and an
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
//! store.set_apply_hook(Box::new(move |m| runtime.apply(m)));  // compile + publish + wait
//! let api = ApiServer::start(args.api.unwrap_or(DEFAULT_ADDR.parse()?), args.api_token, store.clone())?;
//! // SIGHUP: match config::load_file(..) { Ok(c) => store.replace_model(&c.model), Err(e) => log }
//! // export:  config::to_toml_string(&Store::export_from(state_dir, &cfg)?)
//! ```
//!
//! # Threads
//! [`WORKERS`] threads share one `tiny_http` server; reads run concurrently on
//! snapshots, mutations are serialised by the store. Rejected option: an async stack
//! (hyper/axum) — the control plane handles a few requests per second and gains nothing
//! from it but dependencies.

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::thread::JoinHandle;

use serde_json::{json, Map, Value};

use crate::control::store::{
    rfc3339, AddressGroupUpdate, GroupCreate, GroupUpdate, PortCreate, PortUpdate, RuleCreate,
    State, Store, StoreError, PROJECT_ID,
};
use crate::policy::protocol::protocol_name;
use crate::policy::spec::{AllowedAddressPairSpec, BackendSpec, RuleSpec, Scalar};
use crate::policy::validate::format_mac;
use crate::policy::{Backend, Direction, EtherType, Remote};

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
        let mut threads = Vec::with_capacity(WORKERS);
        for i in 0..WORKERS {
            let server = Arc::clone(&server);
            let store = Arc::clone(&store);
            let token = token.clone();
            let t = std::thread::Builder::new()
                .name(format!("sgswitch-api-{i}"))
                .spawn(move || serve(&server, &store, token.as_deref()))
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
        })
    }
}

fn serve(server: &tiny_http::Server, store: &Store, token: Option<&str>) {
    while let Ok(mut req) = server.recv() {
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

fn process(
    store: &Store,
    token: Option<&str>,
    req: &mut tiny_http::Request,
) -> (u16, Option<Value>) {
    if let Some(t) = token {
        if !header(req, "X-Auth-Token").is_some_and(|given| token_eq(given, t)) {
            return error_body(
                401,
                "Unauthorized",
                "Authentication required: a valid X-Auth-Token header is needed.",
            );
        }
    }
    if req.body_length().is_some_and(|n| n > MAX_BODY) {
        return error_body(
            413,
            "RequestEntityTooLarge",
            &format!("Request body larger than {MAX_BODY} bytes."),
        );
    }
    let mut body = Vec::new();
    if let Err(e) = req
        .as_reader()
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut body)
    {
        return error_body(
            400,
            "HTTPBadRequest",
            &format!("Cannot read the request body: {e}"),
        );
    }
    if body.len() > MAX_BODY {
        return error_body(
            413,
            "RequestEntityTooLarge",
            &format!("Request body larger than {MAX_BODY} bytes."),
        );
    }
    let host = header(req, "Host").unwrap_or("127.0.0.1:9696").to_string();
    let method = req.method().as_str().to_ascii_uppercase();
    let url = req.url().to_string();
    handle(store, &method, &url, &host, &body)
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

/// A failed request: status, Neutron type, message.
#[derive(Debug)]
struct Fail {
    status: u16,
    ty: String,
    message: String,
}

impl Fail {
    fn bad(message: impl Into<String>) -> Fail {
        Fail {
            status: 400,
            ty: "HTTPBadRequest".into(),
            message: message.into(),
        }
    }
    fn not_found(ty: &str, message: impl Into<String>) -> Fail {
        Fail {
            status: 404,
            ty: ty.into(),
            message: message.into(),
        }
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Fail {
        Fail {
            status: e.http_status(),
            ty: e.neutron_type().to_string(),
            message: e.to_string(),
        }
    }
}

type Reply = Result<(u16, Option<Value>), Fail>;

fn error_body(status: u16, ty: &str, message: &str) -> (u16, Option<Value>) {
    (
        status,
        Some(json!({"NeutronError": {"type": ty, "message": message, "detail": ""}})),
    )
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
            "GET" => Ok((200, Some(versions(host)))),
            _ => not_allowed(),
        },
        ["v2.0"] => match method {
            "GET" => Ok((
                200,
                Some(json!({"resources": [
                    {"name": "security_group", "collection": "security_groups", "links": []},
                    {"name": "security_group_rule", "collection": "security_group_rules", "links": []},
                    {"name": "address_group", "collection": "address_groups", "links": []},
                    {"name": "port", "collection": "ports", "links": []},
                    {"name": "network", "collection": "networks", "links": []}
                ]})),
            )),
            _ => not_allowed(),
        },
        ["v2.0", "extensions"] => match method {
            "GET" => Ok((200, Some(extensions()))),
            _ => not_allowed(),
        },
        ["v2.0", res] | ["v2.0", res, _] | ["v2.0", res, _, _] => {
            let res = res.strip_suffix(".json").unwrap_or(res);
            let id = segs.get(2).map(|s| s.strip_suffix(".json").unwrap_or(s));
            let action = segs.get(3).copied();
            match (res, id, action) {
                ("security-groups", None, None) => match method {
                    "GET" => list(store, query, "security_groups", sg_json_all),
                    "POST" => create_group(store, body),
                    _ => not_allowed(),
                },
                ("security-groups", Some(id), None) => match method {
                    "GET" => show(store, id, "security_group", |s, id| {
                        s.group_by_id(id).map(|gi| sg_json(s, gi))
                    }, "SecurityGroupNotFound", "Security group"),
                    "PUT" => update_group(store, id, body),
                    "DELETE" => store.delete_group(id).map(|_| (204, None)).map_err(Fail::from),
                    _ => not_allowed(),
                },
                ("security-group-rules", None, None) => match method {
                    "GET" => list(store, query, "security_group_rules", rule_json_all),
                    "POST" => create_rules(store, body),
                    _ => not_allowed(),
                },
                ("security-group-rules", Some(id), None) => match method {
                    "GET" => show(store, id, "security_group_rule", |s, id| {
                        s.rule_by_id(id).map(|(gi, ri)| rule_json(s, gi, ri))
                    }, "SecurityGroupRuleNotFound", "Security group rule"),
                    "DELETE" => store.delete_rule(id).map(|_| (204, None)).map_err(Fail::from),
                    "PUT" => Err(Fail::bad("Security group rules cannot be updated: delete the rule and create a new one.")),
                    _ => not_allowed(),
                },
                ("address-groups", None, None) => match method {
                    "GET" => list(store, query, "address_groups", ag_json_all),
                    "POST" => create_address_group(store, body),
                    _ => not_allowed(),
                },
                ("address-groups", Some(id), None) => match method {
                    "GET" => show(store, id, "address_group", |s, id| {
                        s.address_group_by_id(id).map(|ai| ag_json(s, ai))
                    }, "AddressGroupNotFound", "Address group"),
                    "PUT" => update_address_group(store, id, body),
                    "DELETE" => store.delete_address_group(id).map(|_| (204, None)).map_err(Fail::from),
                    _ => not_allowed(),
                },
                ("address-groups", Some(id), Some(a @ ("add_addresses" | "remove_addresses"))) => {
                    match method {
                        "PUT" => change_addresses(store, id, body, a == "add_addresses"),
                        _ => not_allowed(),
                    }
                }
                ("ports", None, None) => match method {
                    "GET" => list_ports(store, query),
                    "POST" => create_port(store, body),
                    _ => not_allowed(),
                },
                ("ports", Some(id), None) => match method {
                    "GET" => show(store, id, "port", |s, id| {
                        s.port_by_id(id).map(|pi| port_json(s, pi))
                    }, "PortNotFound", "Port"),
                    "PUT" => update_port(store, id, body),
                    "DELETE" => store.delete_port(id).map(|_| (204, None)).map_err(Fail::from),
                    _ => not_allowed(),
                },
                ("networks", None, None) => match method {
                    "GET" => list(store, query, "networks", network_json_all),
                    _ => not_allowed(),
                },
                ("networks", Some(id), None) => match method {
                    "GET" => show(store, id, "network", |s, id| {
                        s.network_by_id(id).map(|ni| network_json(s, ni))
                    }, "NetworkNotFound", "Network"),
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

fn versions(host: &str) -> Value {
    json!({"versions": [{
        "id": "v2.0",
        "status": "CURRENT",
        "links": [{"href": format!("http://{host}/v2.0/"), "rel": "self"}]
    }]})
}

fn extensions() -> Value {
    let ext = |alias: &str, name: &str| json!({"alias": alias, "name": name, "description": name, "links": [], "updated": "2026-01-01T00:00:00-00:00"});
    json!({"extensions": [
        ext("security-group", "security-group"),
        ext("stateful-security-group", "Stateful security group"),
        ext("address-group", "Address group"),
        ext("port-security", "Port Security"),
        ext("allowed-address-pairs", "Allowed Address Pairs"),
        ext("standard-attr-revisions", "Resource revision numbers"),
        ext("standard-attr-timestamp", "Resource timestamps"),
        ext("project-id", "project_id field enabled"),
        ext("binding", "Port Binding"),
    ]})
}

// ----- query strings -------------------------------------------------------------

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

const IGNORED_QUERY: &[&str] = &[
    "fields",
    "limit",
    "marker",
    "sort_key",
    "sort_dir",
    "page_reverse",
];

/// The values of one filter parameter: the value itself, or the items of a list literal
/// (`['a', 'b']` or `["a"]`), which the stock `openstack` client sends for list-valued
/// filters such as `port list --security-group NAME`. Items are ORed like repeated keys.
fn list_literal(v: &str) -> Vec<&str> {
    match v.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        Some(inner) => inner
            .split(',')
            .map(|i| i.trim().trim_matches(|c| c == '\'' || c == '"'))
            .filter(|i| !i.is_empty())
            .collect(),
        None => vec![v],
    }
}

fn scalar_matches(v: &Value, want: &str) -> bool {
    match v {
        Value::String(s) => s == want,
        Value::Bool(b) => want.eq_ignore_ascii_case(if *b { "true" } else { "false" }),
        Value::Number(n) => n.to_string() == want,
        Value::Null => want.is_empty() || want == "None" || want == "null",
        Value::Array(a) => a.iter().any(|e| !e.is_array() && scalar_matches(e, want)),
        Value::Object(_) => false,
    }
}

/// Keep the objects matching every filter (OR within one key).
fn filter(items: Vec<Value>, query: &[(String, String)]) -> Result<Vec<Value>, Fail> {
    let mut filters: Vec<(&str, Vec<&str>)> = Vec::new();
    for (k, v) in query {
        if IGNORED_QUERY.contains(&k.as_str()) {
            continue;
        }
        let idx = match filters.iter().position(|(fk, _)| fk == k) {
            Some(i) => i,
            None => {
                filters.push((k, Vec::new()));
                filters.len() - 1
            }
        };
        filters[idx].1.extend(list_literal(v));
    }
    if filters.is_empty() {
        return Ok(items);
    }
    if let Some(first) = items.first() {
        for (k, _) in &filters {
            if first.get(k).is_none() {
                return Err(Fail::bad(format!(
                    "{k} is an invalid attribute for filtering."
                )));
            }
        }
    }
    Ok(items
        .into_iter()
        .filter(|it| {
            filters.iter().all(|(k, vs)| {
                it.get(k)
                    .is_some_and(|v| vs.iter().any(|w| scalar_matches(v, w)))
            })
        })
        .collect())
}

/// `GET /v2.0/ports`: a `security_groups` filter value may name a group as well as give
/// its id (group names are unique here). The stock client's `port list --security-group
/// NAME` sends the name as it was typed.
fn list_ports(store: &Store, query: &[(String, String)]) -> Reply {
    let snap = store.snapshot();
    let q: Vec<(String, String)> = query
        .iter()
        .flat_map(|(k, v)| {
            let values: Vec<String> = list_literal(v)
                .into_iter()
                .map(|item| {
                    let by_name = (k == "security_groups")
                        .then(|| {
                            snap.model
                                .security_groups
                                .iter()
                                .position(|g| g.name == item)
                        })
                        .flatten();
                    match by_name {
                        Some(gi) => snap.meta.groups[gi].obj.id.to_string(),
                        None => item.to_string(),
                    }
                })
                .collect();
            values.into_iter().map(move |v| (k.clone(), v))
        })
        .collect();
    collection_reply("ports", filter(port_json_all(&snap), &q)?)
}

fn list(
    store: &Store,
    query: &[(String, String)],
    collection: &str,
    render: fn(&State) -> Vec<Value>,
) -> Reply {
    let snap = store.snapshot();
    collection_reply(collection, filter(render(&snap), query)?)
}

/// `200 {"<collection>": [items]}`.
fn collection_reply(collection: &str, items: Vec<Value>) -> Reply {
    let mut m = Map::new();
    m.insert(collection.to_string(), Value::Array(items));
    Ok((200, Some(Value::Object(m))))
}

fn show(
    store: &Store,
    id: &str,
    key: &str,
    find: impl Fn(&State, &str) -> Option<Value>,
    ty: &str,
    what: &str,
) -> Reply {
    let snap = store.snapshot();
    match find(&snap, id) {
        Some(v) => {
            let mut m = Map::new();
            m.insert(key.to_string(), v);
            Ok((200, Some(Value::Object(m))))
        }
        None => Err(Fail::not_found(
            ty,
            format!("{what} {id} could not be found."),
        )),
    }
}

// ----- rendering -------------------------------------------------------------------

fn std_attrs(m: &mut Map<String, Value>, o: &crate::control::store::ObjMeta) {
    m.insert("id".into(), json!(o.id));
    m.insert("tenant_id".into(), json!(PROJECT_ID));
    m.insert("project_id".into(), json!(PROJECT_ID));
    m.insert("created_at".into(), json!(rfc3339(o.created_at)));
    m.insert("updated_at".into(), json!(rfc3339(o.updated_at)));
    m.insert("revision_number".into(), json!(o.revision_number));
    m.insert("tags".into(), json!([]));
}

fn direction_str(d: Direction) -> &'static str {
    match d {
        Direction::Ingress => "ingress",
        Direction::Egress => "egress",
    }
}

fn ethertype_str(e: EtherType) -> &'static str {
    match e {
        EtherType::IPv4 => "IPv4",
        EtherType::IPv6 => "IPv6",
    }
}

/// One rule as Neutron shows it.
pub fn rule_json(s: &State, gi: usize, ri: usize) -> Value {
    let g = &s.model.security_groups[gi];
    let r = &g.rules[ri];
    let mut m = Map::new();
    std_attrs(&mut m, &s.meta.groups[gi].rules[ri]);
    m.insert("security_group_id".into(), json!(s.meta.groups[gi].obj.id));
    m.insert("direction".into(), json!(direction_str(r.direction)));
    m.insert("ethertype".into(), json!(ethertype_str(r.ethertype)));
    m.insert(
        "protocol".into(),
        match r.neutron_protocol() {
            None => Value::Null,
            Some(n) => json!(protocol_name(n)
                .map(str::to_string)
                .unwrap_or_else(|| n.to_string())),
        },
    );
    m.insert("port_range_min".into(), json!(r.port_range_min));
    m.insert("port_range_max".into(), json!(r.port_range_max));
    let (prefix, norm, rg, rag) = match &r.remote {
        Remote::Any => (Value::Null, Value::Null, Value::Null, Value::Null),
        Remote::Prefix(net) => (
            json!(r
                .remote_ip_prefix_raw
                .clone()
                .unwrap_or_else(|| net.to_string())),
            json!(net.to_string()),
            Value::Null,
            Value::Null,
        ),
        Remote::Group(n) => (Value::Null, Value::Null, json!(s.group_id(n)), Value::Null),
        Remote::AddressGroup(n) => (
            Value::Null,
            Value::Null,
            Value::Null,
            json!(s.address_group_id(n)),
        ),
    };
    m.insert("remote_ip_prefix".into(), prefix);
    m.insert("normalized_cidr".into(), norm);
    m.insert("remote_group_id".into(), rg);
    m.insert("remote_address_group_id".into(), rag);
    m.insert("description".into(), json!(r.description));
    m.insert(
        "belongs_to_default_sg".into(),
        json!(g.name == crate::policy::DEFAULT_GROUP),
    );
    Value::Object(m)
}

fn rule_json_all(s: &State) -> Vec<Value> {
    let mut out = Vec::new();
    for (gi, g) in s.model.security_groups.iter().enumerate() {
        for ri in 0..g.rules.len() {
            out.push(rule_json(s, gi, ri));
        }
    }
    out
}

/// One security group as Neutron shows it (rules embedded).
pub fn sg_json(s: &State, gi: usize) -> Value {
    let g = &s.model.security_groups[gi];
    let mut m = Map::new();
    std_attrs(&mut m, &s.meta.groups[gi].obj);
    m.insert("name".into(), json!(g.name));
    m.insert("description".into(), json!(g.description));
    m.insert("stateful".into(), json!(g.stateful));
    m.insert("shared".into(), json!(false));
    m.insert(
        "security_group_rules".into(),
        Value::Array((0..g.rules.len()).map(|ri| rule_json(s, gi, ri)).collect()),
    );
    Value::Object(m)
}

fn sg_json_all(s: &State) -> Vec<Value> {
    (0..s.model.security_groups.len())
        .map(|gi| sg_json(s, gi))
        .collect()
}

fn ag_json(s: &State, ai: usize) -> Value {
    let a = &s.model.address_groups[ai];
    let mut m = Map::new();
    std_attrs(&mut m, &s.meta.address_groups[ai]);
    m.insert("name".into(), json!(a.name));
    m.insert("description".into(), json!(a.description));
    m.insert(
        "addresses".into(),
        json!(a
            .addresses
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()),
    );
    Value::Object(m)
}

fn ag_json_all(s: &State) -> Vec<Value> {
    (0..s.model.address_groups.len())
        .map(|ai| ag_json(s, ai))
        .collect()
}

fn host_or_cidr(net: &ipnet::IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.to_string()
    }
}

fn backend_json(b: &Option<Backend>) -> Value {
    match b {
        None => json!({}),
        Some(Backend::Tap {
            ifname,
            netns,
            vnet_hdr,
        }) => {
            let mut v = json!({"type": "tap", "ifname": ifname, "vnet_hdr": vnet_hdr});
            if let Some(ns) = netns {
                v["netns"] = json!(ns);
            }
            v
        }
        Some(Backend::AfXdp {
            ifname,
            queue,
            mode,
        }) => {
            let mut v = json!({"type": "afxdp", "ifname": ifname, "queue": queue});
            if let Some(mode) = mode {
                v["mode"] = json!(mode);
            }
            v
        }
        Some(Backend::AfPacket { ifname }) => json!({"type": "afpacket", "ifname": ifname}),
    }
}

/// One port as Neutron shows it.
pub fn port_json(s: &State, pi: usize) -> Value {
    let p = &s.model.ports[pi];
    let ni = s.network_by_name(&p.network);
    let nm = ni.map(|i| &s.meta.networks[i]);
    let mut m = Map::new();
    std_attrs(&mut m, &s.meta.ports[pi]);
    m.insert("name".into(), json!(p.name));
    m.insert("description".into(), json!(""));
    m.insert("network_id".into(), json!(nm.map(|n| n.obj.id)));
    m.insert("mac_address".into(), json!(format_mac(&p.mac)));
    m.insert(
        "fixed_ips".into(),
        Value::Array(
            p.fixed_ips
                .iter()
                .map(|ip| {
                    let subnet = nm.map(|n| {
                        if ip.is_ipv4() {
                            &n.subnet_v4
                        } else {
                            &n.subnet_v6
                        }
                    });
                    json!({"subnet_id": subnet, "ip_address": ip.to_string()})
                })
                .collect(),
        ),
    );
    m.insert(
        "security_groups".into(),
        json!(p
            .security_groups
            .iter()
            .filter_map(|g| s.group_id(g))
            .collect::<Vec<_>>()),
    );
    m.insert("port_security_enabled".into(), json!(p.port_security));
    m.insert(
        "allowed_address_pairs".into(),
        Value::Array(
            p.allowed_address_pairs
                .iter()
                .map(|a| {
                    json!({
                        "ip_address": host_or_cidr(&a.ip_address),
                        "mac_address": format_mac(a.mac_address.as_ref().unwrap_or(&p.mac)),
                    })
                })
                .collect(),
        ),
    );
    m.insert("status".into(), json!("ACTIVE"));
    m.insert("admin_state_up".into(), json!(true));
    m.insert("device_id".into(), json!(""));
    m.insert("device_owner".into(), json!(""));
    m.insert("binding:vnic_type".into(), json!("normal"));
    m.insert("binding:profile".into(), backend_json(&p.backend));
    Value::Object(m)
}

fn port_json_all(s: &State) -> Vec<Value> {
    (0..s.model.ports.len())
        .map(|pi| port_json(s, pi))
        .collect()
}

fn network_json(s: &State, ni: usize) -> Value {
    let n = &s.model.networks[ni];
    let nm = &s.meta.networks[ni];
    let mut m = Map::new();
    std_attrs(&mut m, &nm.obj);
    m.insert("name".into(), json!(n.name));
    m.insert("description".into(), json!(""));
    m.insert("status".into(), json!("ACTIVE"));
    m.insert("admin_state_up".into(), json!(true));
    m.insert("shared".into(), json!(false));
    m.insert("router:external".into(), json!(false));
    m.insert("port_security_enabled".into(), json!(true));
    m.insert("mtu".into(), json!(1500));
    m.insert("subnets".into(), json!([nm.subnet_v4, nm.subnet_v6]));
    Value::Object(m)
}

fn network_json_all(s: &State) -> Vec<Value> {
    (0..s.model.networks.len())
        .map(|ni| network_json(s, ni))
        .collect()
}

// ----- request bodies --------------------------------------------------------------

fn parse_json(body: &[u8]) -> Result<Value, Fail> {
    if body.is_empty() {
        return Err(Fail::bad(
            "The request body is empty; a JSON object is required.",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| Fail::bad(format!("Malformed JSON in request body: {e}")))
}

/// The object under the wrapper key `key`; anything else in the body is a 400.
fn unwrap_body(body: &[u8], key: &str) -> Result<Map<String, Value>, Fail> {
    let v = parse_json(body)?;
    let Value::Object(mut outer) = v else {
        return Err(Fail::bad(format!(
            "The request body must be a JSON object with the key '{key}'."
        )));
    };
    if let Some(k) = outer.keys().find(|k| *k != key) {
        return Err(Fail::bad(format!(
            "Unrecognized attribute '{k}' (expected only '{key}')."
        )));
    }
    match outer.remove(key) {
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(Fail::bad(format!("'{key}' must be a JSON object."))),
        None => Err(Fail::bad(format!(
            "Resource body required: missing '{key}'."
        ))),
    }
}

const IGNORED_ATTRS: &[&str] = &["tenant_id", "project_id"];

/// Typed access to a request object; every key must be in `allowed`.
struct Body {
    m: Map<String, Value>,
}

impl Body {
    fn new(m: Map<String, Value>, allowed: &[&str], verb: &str) -> Result<Body, Fail> {
        for k in m.keys() {
            if !allowed.contains(&k.as_str()) && !IGNORED_ATTRS.contains(&k.as_str()) {
                return Err(Fail::bad(format!(
                    "Unrecognized attribute(s) '{k}' (not allowed in {verb})."
                )));
            }
        }
        for k in IGNORED_ATTRS {
            if let Some(v) = m.get(*k) {
                if !v.is_string() {
                    return Err(Fail::bad(format!(
                        "Invalid input for {k}. Reason: '{v}' is not a valid string."
                    )));
                }
            }
        }
        Ok(Body { m })
    }

    fn type_err(key: &str, v: &Value, what: &str) -> Fail {
        Fail::bad(format!(
            "Invalid input for {key}. Reason: '{v}' is not a valid {what}."
        ))
    }

    /// A string (`null` = absent when `nullable`).
    fn string(&self, key: &str, nullable: bool) -> Result<Option<String>, Fail> {
        match self.m.get(key) {
            None => Ok(None),
            Some(Value::Null) if nullable => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(Self::type_err(key, v, "string")),
        }
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>, Fail> {
        match self.m.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(Self::type_err(key, v, "boolean")),
        }
    }

    /// A number or string (protocol, port bounds); `null` = absent.
    fn scalar(&self, key: &str) -> Result<Option<Scalar>, Fail> {
        match self.m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(Scalar::Str(s.clone()))),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) => Ok(Some(Scalar::Int(i))),
                None => Err(Self::type_err(key, &Value::Number(n.clone()), "integer")),
            },
            Some(v) => Err(Self::type_err(key, v, "integer or string")),
        }
    }

    fn string_list(&self, key: &str) -> Result<Option<Vec<String>>, Fail> {
        match self.m.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(|e| match e {
                    Value::String(s) => Ok(s.clone()),
                    v => Err(Self::type_err(key, v, "list of strings")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(Self::type_err(key, v, "list")),
        }
    }

    fn objects(&self, key: &str) -> Result<Option<Vec<Map<String, Value>>>, Fail> {
        match self.m.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(|e| match e {
                    Value::Object(o) => Ok(o.clone()),
                    v => Err(Self::type_err(key, v, "list of objects")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(Self::type_err(key, v, "list")),
        }
    }

    fn required(&self, key: &str) -> Result<String, Fail> {
        self.string(key, false)?.ok_or_else(|| {
            Fail::bad(format!(
                "Failed to parse request. Required attribute '{key}' not specified"
            ))
        })
    }
}

fn created(key: &str, v: Value) -> Reply {
    let mut m = Map::new();
    m.insert(key.to_string(), v);
    Ok((201, Some(Value::Object(m))))
}

fn ok_one(key: &str, v: Value) -> Reply {
    let mut m = Map::new();
    m.insert(key.to_string(), v);
    Ok((200, Some(Value::Object(m))))
}

fn create_group(store: &Store, body: &[u8]) -> Reply {
    let b = Body::new(
        unwrap_body(body, "security_group")?,
        &["name", "description", "stateful"],
        "POST",
    )?;
    let req = GroupCreate {
        name: b.string("name", false)?.unwrap_or_default(),
        description: b.string("description", true)?,
        stateful: b.boolean("stateful")?,
    };
    let id = store.create_group(&req)?;
    let snap = store.snapshot();
    let gi = snap
        .group_by_id(&id)
        .ok_or_else(|| Fail::not_found("SecurityGroupNotFound", id.clone()))?;
    created("security_group", sg_json(&snap, gi))
}

fn update_group(store: &Store, id: &str, body: &[u8]) -> Reply {
    let b = Body::new(
        unwrap_body(body, "security_group")?,
        &["name", "description", "stateful"],
        "PUT",
    )?;
    let req = GroupUpdate {
        name: b.string("name", false)?,
        description: b.string("description", true)?,
        stateful: b.boolean("stateful")?,
    };
    store.update_group(id, &req)?;
    let snap = store.snapshot();
    let gi = snap
        .group_by_id(id)
        .ok_or_else(|| Fail::not_found("SecurityGroupNotFound", id.to_string()))?;
    ok_one("security_group", sg_json(&snap, gi))
}

const RULE_ATTRS: &[&str] = &[
    "security_group_id",
    "direction",
    "ethertype",
    "protocol",
    "port_range_min",
    "port_range_max",
    "remote_ip_prefix",
    "remote_group_id",
    "remote_address_group_id",
    "description",
];

fn rule_request(m: Map<String, Value>) -> Result<RuleCreate, Fail> {
    let b = Body::new(m, RULE_ATTRS, "POST")?;
    Ok(RuleCreate {
        security_group_id: b.required("security_group_id")?,
        spec: RuleSpec {
            direction: Some(b.required("direction")?),
            ethertype: b.string("ethertype", true)?,
            protocol: b.scalar("protocol")?,
            port_range_min: b.scalar("port_range_min")?,
            port_range_max: b.scalar("port_range_max")?,
            remote_ip_prefix: b.string("remote_ip_prefix", true)?,
            remote_group: None,
            remote_address_group: None,
            description: b.string("description", true)?,
        },
        remote_group_id: b.string("remote_group_id", true)?,
        remote_address_group_id: b.string("remote_address_group_id", true)?,
    })
}

fn create_rules(store: &Store, body: &[u8]) -> Reply {
    let v = parse_json(body)?;
    let Value::Object(mut outer) = v else {
        return Err(Fail::bad("The request body must be a JSON object."));
    };
    let bulk = outer.contains_key("security_group_rules");
    let key = if bulk {
        "security_group_rules"
    } else {
        "security_group_rule"
    };
    if let Some(k) = outer.keys().find(|k| *k != key) {
        return Err(Fail::bad(format!(
            "Unrecognized attribute '{k}' (expected only '{key}')."
        )));
    }
    let reqs: Vec<RuleCreate> = match outer.remove(key) {
        Some(Value::Object(m)) if !bulk => vec![rule_request(m)?],
        Some(Value::Array(items)) if bulk => items
            .into_iter()
            .map(|it| match it {
                Value::Object(m) => rule_request(m),
                _ => Err(Fail::bad(
                    "Each element of 'security_group_rules' must be an object.",
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(Fail::bad(format!("'{key}' has the wrong type."))),
        None => {
            return Err(Fail::bad(
                "Resource body required: missing 'security_group_rule'.",
            ))
        }
    };
    if reqs.is_empty() {
        return Err(Fail::bad("No security group rules given."));
    }
    let ids = store.create_rules(&reqs)?;
    let snap = store.snapshot();
    let mut out = Vec::with_capacity(ids.len());
    for id in &ids {
        let (gi, ri) = snap
            .rule_by_id(id)
            .ok_or_else(|| Fail::not_found("SecurityGroupRuleNotFound", id.clone()))?;
        out.push(rule_json(&snap, gi, ri));
    }
    if bulk {
        created("security_group_rules", Value::Array(out))
    } else {
        created("security_group_rule", out.pop().unwrap_or(Value::Null))
    }
}

fn create_address_group(store: &Store, body: &[u8]) -> Reply {
    let b = Body::new(
        unwrap_body(body, "address_group")?,
        &["name", "description", "addresses"],
        "POST",
    )?;
    let id = store.create_address_group(
        &b.string("name", false)?.unwrap_or_default(),
        b.string("description", true)?.as_deref(),
        &b.string_list("addresses")?.unwrap_or_default(),
    )?;
    let snap = store.snapshot();
    let ai = snap
        .address_group_by_id(&id)
        .ok_or_else(|| Fail::not_found("AddressGroupNotFound", id.clone()))?;
    created("address_group", ag_json(&snap, ai))
}

fn update_address_group(store: &Store, id: &str, body: &[u8]) -> Reply {
    let b = Body::new(
        unwrap_body(body, "address_group")?,
        &["name", "description"],
        "PUT",
    )?;
    store.update_address_group(
        id,
        &AddressGroupUpdate {
            name: b.string("name", false)?,
            description: b.string("description", true)?,
        },
    )?;
    let snap = store.snapshot();
    let ai = snap
        .address_group_by_id(id)
        .ok_or_else(|| Fail::not_found("AddressGroupNotFound", id.to_string()))?;
    ok_one("address_group", ag_json(&snap, ai))
}

fn change_addresses(store: &Store, id: &str, body: &[u8], add: bool) -> Reply {
    let Value::Object(m) = parse_json(body)? else {
        return Err(Fail::bad(
            "The request body must be a JSON object with the key 'addresses'.",
        ));
    };
    let b = Body::new(m, &["addresses"], "PUT")?;
    let addresses = b.string_list("addresses")?.ok_or_else(|| {
        Fail::bad("Failed to parse request. Required attribute 'addresses' not specified")
    })?;
    store.change_addresses(id, &addresses, add)?;
    let snap = store.snapshot();
    let ai = snap
        .address_group_by_id(id)
        .ok_or_else(|| Fail::not_found("AddressGroupNotFound", id.to_string()))?;
    ok_one("address_group", ag_json(&snap, ai))
}

fn address_pairs(b: &Body) -> Result<Option<Vec<AllowedAddressPairSpec>>, Fail> {
    let Some(items) = b.objects("allowed_address_pairs")? else {
        return Ok(None);
    };
    items
        .into_iter()
        .map(|o| {
            let p = Body::new(o, &["ip_address", "mac_address"], "allowed_address_pairs")?;
            Ok(AllowedAddressPairSpec {
                ip_address: Some(p.required("ip_address")?),
                mac_address: p.string("mac_address", true)?,
            })
        })
        .collect::<Result<Vec<_>, Fail>>()
        .map(Some)
}

fn backend_spec(b: &Body) -> Result<Option<BackendSpec>, Fail> {
    let m = match b.m.get("binding:profile") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(m)) if m.is_empty() => return Ok(None),
        Some(Value::Object(m)) => m.clone(),
        Some(v) => return Err(Body::type_err("binding:profile", v, "object")),
    };
    let ty = m.get("type").cloned();
    let p = Body::new(
        m,
        &["type", "ifname", "netns", "vnet_hdr", "queue", "mode"],
        "binding:profile",
    )?;
    let ifname = p.string("ifname", false)?;
    let queue = match p.scalar("queue")? {
        None => None,
        Some(Scalar::Int(i)) => Some(
            u32::try_from(i)
                .map_err(|_| Fail::bad("Invalid input for binding:profile queue.".to_string()))?,
        ),
        Some(Scalar::Str(s)) => {
            Some(s.parse::<u32>().map_err(|_| {
                Fail::bad(format!("Invalid input for binding:profile queue: {s:?}."))
            })?)
        }
    };
    match ty.as_ref().and_then(Value::as_str) {
        Some("tap") => Ok(Some(BackendSpec::Tap {
            ifname,
            netns: p.string("netns", true)?,
            vnet_hdr: p.boolean("vnet_hdr")?,
        })),
        Some("afxdp") => Ok(Some(BackendSpec::AfXdp {
            ifname,
            queue,
            mode: p.string("mode", true)?,
        })),
        Some("afpacket") => Ok(Some(BackendSpec::AfPacket { ifname })),
        _ => Err(Fail::bad(
            "Invalid input for binding:profile. Reason: 'type' must be \"tap\", \"afxdp\" or \"afpacket\".",
        )),
    }
}

const PORT_CREATE_ATTRS: &[&str] = &[
    "name",
    "network_id",
    "mac_address",
    "fixed_ips",
    "security_groups",
    "port_security_enabled",
    "allowed_address_pairs",
    "binding:profile",
    "admin_state_up",
    "description",
    "device_id",
    "device_owner",
];

fn create_port(store: &Store, body: &[u8]) -> Reply {
    let b = Body::new(unwrap_body(body, "port")?, PORT_CREATE_ATTRS, "POST")?;
    if b.boolean("admin_state_up")? == Some(false) {
        return Err(Fail::bad("admin_state_up = false is not supported."));
    }
    b.string("description", true)?;
    b.string("device_id", true)?;
    b.string("device_owner", true)?;
    let fixed_ips = b
        .objects("fixed_ips")?
        .unwrap_or_default()
        .into_iter()
        .map(|o| {
            let f = Body::new(o, &["ip_address", "subnet_id"], "fixed_ips")?;
            f.string("subnet_id", true)?;
            f.string("ip_address", false)?.ok_or_else(|| {
                Fail::bad("Invalid input for fixed_ips. Reason: ip_address is required (no IP address management).")
            })
        })
        .collect::<Result<Vec<_>, Fail>>()?;
    let req = PortCreate {
        name: b.string("name", false)?.unwrap_or_default(),
        network_id: b.required("network_id")?,
        mac: b.string("mac_address", true)?,
        fixed_ips,
        security_group_ids: b.string_list("security_groups")?,
        port_security: b.boolean("port_security_enabled")?,
        allowed_address_pairs: address_pairs(&b)?.unwrap_or_default(),
        backend: backend_spec(&b)?,
    };
    let id = store.create_port(&req)?;
    let snap = store.snapshot();
    let pi = snap
        .port_by_id(&id)
        .ok_or_else(|| Fail::not_found("PortNotFound", id.clone()))?;
    created("port", port_json(&snap, pi))
}

fn update_port(store: &Store, id: &str, body: &[u8]) -> Reply {
    let b = Body::new(
        unwrap_body(body, "port")?,
        &[
            "name",
            "security_groups",
            "port_security_enabled",
            "allowed_address_pairs",
        ],
        "PUT",
    )?;
    let req = PortUpdate {
        name: b.string("name", false)?,
        security_group_ids: match b.m.get("security_groups") {
            Some(Value::Null) => Some(Vec::new()),
            _ => b.string_list("security_groups")?,
        },
        port_security: b.boolean("port_security_enabled")?,
        allowed_address_pairs: match b.m.get("allowed_address_pairs") {
            Some(Value::Null) => Some(Vec::new()),
            _ => address_pairs(&b)?,
        },
    };
    store.update_port(id, &req)?;
    let snap = store.snapshot();
    let pi = snap
        .port_by_id(id)
        .ok_or_else(|| Fail::not_found("PortNotFound", id.to_string()))?;
    ok_one("port", port_json(&snap, pi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing_and_decoding() {
        let q = parse_query("name=a%20b&id=1&id=2&fields=id&x=%zz+y");
        assert_eq!(q[0], ("name".into(), "a b".into()));
        assert_eq!(q[1], ("id".into(), "1".into()));
        assert_eq!(q[4], ("x".into(), "%zz y".into()));
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("a%4"), "a%4");
        assert_eq!(percent_decode("%41"), "A");
    }

    #[test]
    fn filters_or_within_key_and_reject_unknown() {
        let items = vec![
            json!({"id": "1", "name": "a", "s": true, "l": ["x"]}),
            json!({"id": "2", "name": "b", "s": false, "l": []}),
        ];
        let q = |s: &str| parse_query(s);
        assert_eq!(filter(items.clone(), &q("id=1&id=2")).unwrap().len(), 2);
        assert_eq!(
            filter(items.clone(), &q("name=b&fields=id")).unwrap().len(),
            1
        );
        assert_eq!(filter(items.clone(), &q("s=True")).unwrap().len(), 1);
        assert_eq!(filter(items.clone(), &q("l=x")).unwrap().len(), 1);
        // The openstack client's list literal (`port list --security-group SG`).
        assert_eq!(
            filter(items.clone(), &q("l=%5B%27x%27%5D")).unwrap().len(),
            1
        );
        assert_eq!(
            filter(items.clone(), &q("l=%5B%22y%22%5D")).unwrap().len(),
            0
        );
        assert_eq!(
            filter(items.clone(), &q("id=%5B%271%27%2C%20%272%27%5D"))
                .unwrap()
                .len(),
            2
        );
        assert_eq!(filter(items, &q("nope=1")).unwrap_err().status, 400);
    }

    #[test]
    fn loopback_detection() {
        assert!(is_loopback("127.0.0.1".parse().unwrap()));
        assert!(is_loopback("::1".parse().unwrap()));
        assert!(!is_loopback("0.0.0.0".parse().unwrap()));
        assert!(!is_loopback("10.0.0.1".parse().unwrap()));
    }
}
