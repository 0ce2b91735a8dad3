//! Ports: rendering (fixed IPs with subnet ids, address pairs, `binding:profile` = the
//! backend, `binding:host_id` = the host the port is bound to), the `security_groups` filter by name, and `POST` / `PUT` bodies.
//!
//! Owns: the Neutron shape of a port, and the rule that only an admin gives a port a
//! backend: `binding:profile` (type `tap`, `afxdp` or `afpacket`) makes the root process
//! create or open a netdev of the host, so a request carrying one is refused with 403
//! (`PolicyNotAuthorized`, as Neutron's `create_port:binding:profile` policy) unless
//! its [`Caller`] is an admin (it carries the token; a server without a token has no
//! admin). Ports with a backend otherwise come from the config file. Setting
//! `binding:host_id` (create or update) is an admin's too, as Neutron's
//! `create_port:binding:host_id` / `update_port:binding:host_id` (`rule:admin_only`). May not touch: the
//! store's state directly.
//!
//! Depends on: `control::store` (state, requests), `policy` (backend and spec types,
//! the MAC text form) and, for the `status` field only, `runtime::switch::supervise`'s
//! `port_status` (`DOWN` while the running switch has the port's netdev gone, else
//! `ACTIVE`).

use serde_json::{json, Map, Value};

use super::body::{
    self, check_boolean, check_string, decode, request_body, required, unwrap_body, Objects,
};
use super::error::{Fail, Reply};
use super::query::list_literal;
use super::resource::PORTS;
use super::{std_attrs, Caller};
use crate::control::store::{PortCreate, PortUpdate, State, Store};
use crate::policy::spec::{AllowedAddressPairSpec, BackendSpec, Scalar};
use crate::policy::Backend;
use crate::runtime::switch::supervise::port_status;

/// `GET /v2.0/ports`: a `security_groups` filter value may name a group as well as give
/// its id (group names are unique here). The stock client's `port list --security-group
/// NAME` sends the name as it was typed.
pub(super) fn list_ports(store: &Store, query: &[(String, String)]) -> Reply {
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
    PORTS.list_in(&snap, &q)
}

pub(super) fn host_or_cidr(net: &ipnet::IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.to_string()
    }
}

pub(super) fn backend_json(b: &Option<Backend>) -> Value {
    match b {
        None => json!({}),
        Some(Backend::Tap {
            ifname,
            netns,
            vnet_hdr,
            queues,
            ..
        }) => {
            let mut v = json!({"type": "tap", "ifname": ifname, "vnet_hdr": vnet_hdr});
            if let Some(ns) = netns {
                v["netns"] = json!(ns);
            }
            if *queues > 1 {
                v["queues"] = json!(queues);
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
                v["mode"] = json!(mode.as_str());
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
    m.insert("mac_address".into(), json!(p.mac.to_string()));
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
                        "mac_address": a.mac_address.unwrap_or(p.mac).to_string(),
                    })
                })
                .collect(),
        ),
    );
    // DOWN while the running switch has the port down (its netdev is gone), or its
    // bound host's lease is gone (shared store).
    let down = s.bound_host_down(pi);
    m.insert(
        "status".into(),
        json!(if down { "DOWN" } else { port_status(&p.name) }),
    );
    m.insert("admin_state_up".into(), json!(true));
    m.insert("device_id".into(), json!(""));
    m.insert("device_owner".into(), json!(""));
    m.insert("binding:vnic_type".into(), json!("normal"));
    m.insert("binding:profile".into(), backend_json(&p.backend));
    // Neutron shows an unbound port's host as "".
    m.insert(
        "binding:host_id".into(),
        json!(p.host.as_deref().unwrap_or_default()),
    );
    Value::Object(m)
}

request_body! {
    /// `port` in `POST`.
    struct CreateBody {
        #[serde(default, deserialize_with = "body::string")]
        name: Option<String>,
        #[serde(default, deserialize_with = "body::string")]
        network_id: Option<String>,
        #[serde(default, deserialize_with = "body::nullable_string")]
        mac_address: Option<String>,
        #[serde(default, deserialize_with = "body::objects")]
        fixed_ips: Option<Objects>,
        #[serde(default, deserialize_with = "body::string_list")]
        security_groups: Option<Vec<String>>,
        #[serde(default, deserialize_with = "body::boolean")]
        port_security_enabled: Option<bool>,
        #[serde(default, deserialize_with = "body::objects")]
        allowed_address_pairs: Option<Objects>,
        #[serde(default, rename = "binding:profile", deserialize_with = "body::object")]
        binding_profile: Option<Map<String, Value>>,
        #[serde(default, rename = "binding:host_id", deserialize_with = "body::nullable_string")]
        binding_host_id: Option<String>,
        #[serde(default, deserialize_with = "body::boolean")]
        admin_state_up: Option<bool>,
        // Accepted and ignored (Neutron's client sends them).
        #[serde(
            default,
            rename = "description",
            deserialize_with = "body::nullable_string"
        )]
        _description: Option<String>,
        #[serde(
            default,
            rename = "device_id",
            deserialize_with = "body::nullable_string"
        )]
        _device_id: Option<String>,
        #[serde(
            default,
            rename = "device_owner",
            deserialize_with = "body::nullable_string"
        )]
        _device_owner: Option<String>,
    }
}

request_body! {
    /// `port` in `PUT`: `null` clears a list.
    struct UpdateBody {
        #[serde(default, deserialize_with = "body::string")]
        name: Option<String>,
        #[serde(default, deserialize_with = "body::nullable_string_list")]
        security_groups: Option<Option<Vec<String>>>,
        #[serde(default, deserialize_with = "body::boolean")]
        port_security_enabled: Option<bool>,
        #[serde(default, deserialize_with = "body::nullable_objects")]
        allowed_address_pairs: Option<Option<Objects>>,
        /// `null` or `""` unbinds.
        #[serde(default, rename = "binding:host_id", deserialize_with = "body::raw")]
        binding_host_id: Option<Value>,
    }
}

/// `binding:host_id` in a `PUT`: `None` = unchanged, `Some(None)` = unbind (`null`, `""`).
fn host_update(v: Option<Value>) -> Result<Option<Option<String>>, Fail> {
    match v {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) if s.is_empty() => Ok(Some(None)),
        Some(Value::String(s)) => Ok(Some(Some(s))),
        Some(_) => Err(Fail::bad(
            "Invalid input for binding:host_id. Reason: expected a string.",
        )),
    }
}

request_body! {
    /// One of `fixed_ips` (there is no IP address management: `ip_address` is required).
    struct FixedIpBody {
        #[serde(default, deserialize_with = "body::string")]
        ip_address: Option<String>,
        #[serde(
            default,
            rename = "subnet_id",
            deserialize_with = "body::nullable_string"
        )]
        _subnet_id: Option<String>,
    }
}

request_body! {
    /// One of `allowed_address_pairs`.
    struct AddressPairBody {
        #[serde(default, deserialize_with = "body::string")]
        ip_address: Option<String>,
        #[serde(default, deserialize_with = "body::nullable_string")]
        mac_address: Option<String>,
    }
}

request_body! {
    /// `binding:profile`: the backend. `netns` and `vnet_hdr` are checked only for `tap`,
    /// `mode` only for `afxdp` (they are accepted, unchecked, with the other types).
    struct ProfileBody {
        #[serde(default, rename = "type", deserialize_with = "body::raw")]
        ty: Option<Value>,
        #[serde(default, deserialize_with = "body::string")]
        ifname: Option<String>,
        #[serde(default, deserialize_with = "body::raw")]
        netns: Option<Value>,
        #[serde(default, deserialize_with = "body::raw")]
        vnet_hdr: Option<Value>,
        #[serde(default, deserialize_with = "body::scalar")]
        queue: Option<Scalar>,
        #[serde(default, deserialize_with = "body::scalar")]
        queues: Option<Scalar>,
        #[serde(default, deserialize_with = "body::raw")]
        mode: Option<Value>,
    }
}

fn address_pairs(items: Vec<Map<String, Value>>) -> Result<Vec<AllowedAddressPairSpec>, Fail> {
    items
        .into_iter()
        .map(|o| {
            let p: AddressPairBody = decode(o, "allowed_address_pairs")?;
            Ok(AllowedAddressPairSpec {
                ip_address: Some(required(p.ip_address, "ip_address")?),
                mac_address: p.mac_address,
            })
        })
        .collect()
}

/// An attribute of `binding:profile` checked only for some types.
fn profile_attr<T>(
    key: &str,
    v: Option<Value>,
    check: impl Fn(&Value) -> Result<T, String>,
) -> Result<Option<T>, Fail> {
    v.map(|v| check(&v))
        .transpose()
        .map_err(|r| Fail::bad(format!("Invalid input for {key}. Reason: {r}.")))
}

fn nullable(
    check: fn(&Value) -> Result<String, String>,
) -> impl Fn(&Value) -> Result<Option<String>, String> {
    move |v| match v {
        Value::Null => Ok(None),
        v => check(v).map(Some),
    }
}

/// A number of `binding:profile` (`queue`, `queues`), as an integer or a string.
fn profile_number<T: TryFrom<i64> + std::str::FromStr>(
    key: &str,
    v: Option<Scalar>,
) -> Result<Option<T>, Fail> {
    match v {
        None => Ok(None),
        Some(Scalar::Int(i)) => T::try_from(i)
            .map(Some)
            .map_err(|_| Fail::bad(format!("Invalid input for binding:profile {key}."))),
        Some(Scalar::Str(s)) => s
            .parse::<T>()
            .map(Some)
            .map_err(|_| Fail::bad(format!("Invalid input for binding:profile {key}: {s:?}."))),
    }
}

fn backend_spec(m: Option<Map<String, Value>>) -> Result<Option<BackendSpec>, Fail> {
    let Some(m) = m else {
        return Ok(None);
    };
    let p: ProfileBody = decode(m, "binding:profile")?;
    let ifname = p.ifname;
    let queue = profile_number::<u32>("queue", p.queue)?;
    match p.ty.as_ref().and_then(Value::as_str) {
        Some("tap") => Ok(Some(BackendSpec::Tap {
            ifname,
            netns: profile_attr("netns", p.netns, nullable(check_string))?.flatten(),
            vnet_hdr: profile_attr("vnet_hdr", p.vnet_hdr, check_boolean)?,
            queues: profile_number::<u16>("queues", p.queues)?,
        })),
        Some("afxdp") => Ok(Some(BackendSpec::AfXdp {
            ifname,
            queue,
            mode: profile_attr("mode", p.mode, nullable(check_string))?.flatten(),
        })),
        Some("afpacket") => Ok(Some(BackendSpec::AfPacket { ifname })),
        _ => Err(Fail::bad(
            "Invalid input for binding:profile. Reason: 'type' must be \"tap\", \"afxdp\" or \"afpacket\".",
        )),
    }
}

pub(super) fn create_port(store: &Store, body: &[u8], caller: Caller) -> Reply {
    let b: CreateBody = decode(unwrap_body(body, "port")?, "POST")?;
    if b.admin_state_up == Some(false) {
        return Err(Fail::bad("admin_state_up = false is not supported."));
    }
    let fixed_ips = b
        .fixed_ips
        .unwrap_or_default()
        .into_iter()
        .map(|o| {
            let f: FixedIpBody = decode(o, "fixed_ips")?;
            f.ip_address.ok_or_else(|| {
                Fail::bad("Invalid input for fixed_ips. Reason: ip_address is required (no IP address management).")
            })
        })
        .collect::<Result<Vec<_>, Fail>>()?;
    let network_id = required(b.network_id, "network_id")?;
    let allowed_address_pairs = address_pairs(b.allowed_address_pairs.unwrap_or_default())?;
    // Checked as Neutron does: the attributes first (a malformed profile is a 400 for
    // anyone), then the policy.
    let backend = backend_spec(b.binding_profile)?;
    if backend.is_some() && !caller.admin {
        return Err(Fail {
            status: 403,
            ty: "PolicyNotAuthorized".into(),
            message: "(rule:create_port:binding:profile) is disallowed by policy: a port \
                      backend opens a netdev of the host; only an admin (a request with \
                      the API token) may give one."
                .into(),
        });
    }
    let host = b.binding_host_id.filter(|h| !h.is_empty());
    if host.is_some() {
        host_binding_allowed(caller, "create_port")?;
    }
    let req = PortCreate {
        name: b.name.unwrap_or_default(),
        network_id,
        mac: b.mac_address,
        fixed_ips,
        security_group_ids: b.security_groups,
        port_security: b.port_security_enabled,
        allowed_address_pairs,
        backend,
        host,
    };
    let id = store.create_port(&req)?;
    PORTS.created(store, &id)
}

/// Binding a port to a host decides which host attaches it and carries its traffic:
/// Neutron's `create_port:binding:host_id` / `update_port:binding:host_id` are
/// `rule:admin_only`, and so are they here (403 `PolicyNotAuthorized` otherwise). An
/// empty value (no binding) is allowed to anyone on create.
fn host_binding_allowed(caller: Caller, action: &str) -> Result<(), Fail> {
    if caller.admin {
        return Ok(());
    }
    Err(Fail {
        status: 403,
        ty: "PolicyNotAuthorized".into(),
        message: format!(
            "(rule:{action}:binding:host_id) is disallowed by policy: binding a port to a \
             host decides which host attaches it; only an admin (a request with the API \
             token) may set it."
        ),
    })
}

pub(super) fn update_port(store: &Store, id: &str, body: &[u8], caller: Caller) -> Reply {
    let b: UpdateBody = decode(unwrap_body(body, "port")?, "PUT")?;
    let req = PortUpdate {
        name: b.name,
        security_group_ids: b.security_groups.map(Option::unwrap_or_default),
        port_security: b.port_security_enabled,
        allowed_address_pairs: match b.allowed_address_pairs {
            None => None,
            Some(items) => Some(address_pairs(items.unwrap_or_default())?),
        },
        host: host_update(b.binding_host_id)?,
    };
    if req.host.is_some() {
        host_binding_allowed(caller, "update_port")?;
    }
    store.update_port(id, &req)?;
    PORTS.updated(store, id)
}
