//! Ports: rendering (fixed IPs with subnet ids, address pairs, `binding:profile` = the
//! backend), the `security_groups` filter by name, and `POST` / `PUT` bodies.
//!
//! Owns: the Neutron shape of a port. May not touch: the store's state directly.

use serde_json::{json, Map, Value};

use super::body::{created, ok_one, unwrap_body, Body};
use super::error::{Fail, Reply};
use super::query::{collection_reply, filter, list_literal};
use super::std_attrs;
use crate::control::store::{PortCreate, PortUpdate, State, Store};
use crate::policy::spec::{AllowedAddressPairSpec, BackendSpec, Scalar};
use crate::policy::validate::format_mac;
use crate::policy::Backend;

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
    collection_reply("ports", filter(port_json_all(&snap), &q)?)
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

pub(super) fn port_json_all(s: &State) -> Vec<Value> {
    (0..s.model.ports.len())
        .map(|pi| port_json(s, pi))
        .collect()
}

pub(super) fn address_pairs(b: &Body) -> Result<Option<Vec<AllowedAddressPairSpec>>, Fail> {
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

pub(super) fn backend_spec(b: &Body) -> Result<Option<BackendSpec>, Fail> {
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

pub(super) const PORT_CREATE_ATTRS: &[&str] = &[
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

pub(super) fn create_port(store: &Store, body: &[u8]) -> Reply {
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

pub(super) fn update_port(store: &Store, id: &str, body: &[u8]) -> Reply {
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
