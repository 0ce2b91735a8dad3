//! Health and status of a running switch, for probes and operators:
//!
//! * `GET /healthz` — alive: 200 `{"status":"alive"}` whenever the process answers (the
//!   listener and a handler thread work); nothing else is checked, so that a supervisor
//!   restarts the process only when it is stuck, never because an instance's netdev is
//!   missing. On a shared store it also shows the store's state ([`shared_store_json`]:
//!   connected or unreachable since when, the revision the cache reflects), still 200.
//! * `GET /readyz` — ready: 200 only when every port of the model that has a backend is
//!   open and UP (its netdev is there: see `runtime::switch::supervise`), the policy is
//!   published (the dataplane runs an epoch, the first one included), and the store is
//!   usable (its state directory, if any, is writable: the next change can be saved).
//!   Otherwise 503 with the same JSON naming what is not ready: each port and why
//!   (`netdev vm-a is gone`, `not open`), the policy, the store.
//! * `GET /sgswitch/v1/status` — what `sgswitch status` prints: version (crate version,
//!   and the git commit when the build set `$SGSWITCH_GIT_COMMIT`), pid, start time and
//!   uptime, config file, state directory, log level, policy epoch and when it was
//!   published, workers and their cores, ports (backend, interface, worker, UP/DOWN),
//!   readiness and the last reload ([`super::ops`]).
//!
//! # No token for `/healthz` and `/readyz`
//! Probes (systemd's `ExecStartPost`/watchdog scripts, Kubernetes `httpGet`, load
//! balancers) do not carry a token, as Neutron's and OVS's own health checks do not: the
//! listener admits these two paths without `X-Auth-Token` ([`is_probe`]). Their answers
//! are therefore kept free of secrets and of anything beyond readiness: port names and
//! the reason a port is not ready, the policy epoch, whether the store is writable; no
//! token, no addresses or MACs, no rules, no file paths (`/sgswitch/v1/status`, which
//! has them, needs the token like every other path).
//!
//! Owns: these answers. May not change anything: the switch and the store are only read.
//!
//! Depends on: `runtime::switch` (its read-only view), `control::store` (the model, the
//! state directory).

use std::path::Path;

use serde_json::{json, Value};

use super::ops::Operator;
use super::rfc3339_ms;
use crate::control::kv::Health;
use crate::control::store::{SharedStatus, Store};
use crate::runtime::switch::Switch;

/// Paths the listener admits without the token (probes).
pub fn is_probe(method: &str, path: &str) -> bool {
    method.eq_ignore_ascii_case("GET") && matches!(path, "/healthz" | "/readyz")
}

/// The crate version, and `+COMMIT` when the build set `$SGSWITCH_GIT_COMMIT`.
pub fn version() -> String {
    match option_env!("SGSWITCH_GIT_COMMIT") {
        Some(c) if !c.is_empty() => format!("{}+{c}", env!("CARGO_PKG_VERSION")),
        _ => env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// Whether `dir` is a directory this process may write (`access(W_OK)`).
fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access(2) on a NUL-terminated path we own.
    dir.is_dir() && unsafe { libc::access(c.as_ptr(), libc::W_OK) } == 0
}

/// The readiness checks: whether all pass, and the JSON naming each.
pub fn readiness(store: &Store, switch: Option<&Switch>) -> (bool, Value) {
    let model = store.model();
    let mut not_ready = Vec::new();
    let (mut epoch, mut published) = (0, false);
    if let Some(sw) = switch {
        let views = sw.port_views();
        for p in model.ports.iter().filter(|p| p.backend.is_some()) {
            let reason = match views.iter().find(|v| v.name == p.name) {
                None => Some("not open".to_string()),
                Some(v) => v.down.as_ref().map(|d| d.reason.clone()),
            };
            if let Some(reason) = reason {
                not_ready.push(json!({"port": p.name, "reason": reason}));
            }
        }
        epoch = sw.epoch();
        published = epoch >= 1 && sw.published_ms() > 0;
    }
    let ports_ok = not_ready.is_empty();
    let shared = store.shared_status();
    let shared_ok = shared
        .as_ref()
        .is_none_or(|s| s.health == Health::Connected);
    let store_ok = store.state_dir().is_none_or(writable) && shared_ok;
    let policy_ok = switch.is_none() || published;
    let ok = ports_ok && store_ok && policy_ok;
    let body = json!({
        "status": if ok { "ready" } else { "not ready" },
        "ports": {"ok": ports_ok, "not_ready": not_ready},
        "policy": {"ok": policy_ok, "epoch": epoch},
        "store": {
            "ok": store_ok,
            "persistent": store.state_dir().is_some(),
            "reason": if store_ok { Value::Null } else if !shared_ok { json!("shared store unreachable") } else { json!("state directory not writable") },
        },
    });
    (ok, body)
}

/// A shared store's state: `state` (`connected` | `unreachable`), `unreachable_since`
/// (RFC 3339), `revision` (what the cache reflects), `decode_error`; with `detail` also
/// the store (its address) and the prefix, which probes do not get.
pub fn shared_store_json(s: &SharedStatus, detail: bool) -> Value {
    let (state, since, error) = match &s.health {
        Health::Connected => ("connected", Value::Null, Value::Null),
        Health::Unreachable { since, error } => {
            ("unreachable", json!(rfc3339_ms(since * 1000)), json!(error))
        }
    };
    let mut v = json!({
        "state": state,
        "unreachable_since": since,
        "revision": s.revision,
        "decode_error": s.decode_error,
    });
    if detail {
        v["store"] = json!(s.store);
        v["prefix"] = json!(s.prefix);
        v["error"] = error;
    }
    v
}

/// `GET /healthz` and `GET /readyz` (`None`: another path).
pub(super) fn probe(path: &str, store: &Store, switch: Option<&Switch>) -> Option<(u16, Value)> {
    match path {
        "/healthz" => {
            let mut body = json!({"status": "alive"});
            if let Some(s) = store.shared_status() {
                body["store"] = shared_store_json(&s, false);
            }
            Some((200, body))
        }
        "/readyz" => {
            let (ok, body) = readiness(store, switch);
            Some((if ok { 200 } else { 503 }, body))
        }
        _ => None,
    }
}

/// `GET /sgswitch/v1/status`.
pub(super) fn status(store: &Store, sw: &Switch, ops: Option<&dyn Operator>) -> Value {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let snap = store.snapshot();
    let views = sw.port_views();
    let ports: Vec<Value> = views
        .iter()
        .map(|v| {
            let id = snap.port_id(&v.name).map(|i| i.to_string());
            json!({
                "name": v.name,
                "id": id,
                "backend": v.backend_kind(),
                "ifname": v.ifname(),
                "worker": v.worker,
                "workers": v.workers,
                "state": if v.down.is_some() { "DOWN" } else { "UP" },
                "reason": v.down.as_ref().map(|d| d.reason.clone()),
                "down_since": v.down.as_ref().map(|d| rfc3339_ms(d.since_ms)),
            })
        })
        .collect();
    let workers: Vec<Value> = sw
        .worker_cores()
        .iter()
        .enumerate()
        .map(|(w, core)| {
            let names: Vec<&str> = views
                .iter()
                .filter(|v| v.workers.contains(&w))
                .map(|v| v.name.as_str())
                .collect();
            json!({"worker": w, "core": core, "ports": names})
        })
        .collect();
    let (ready, readiness) = readiness(store, Some(sw));
    json!({
        "version": version(),
        "pid": std::process::id(),
        "started_at": rfc3339_ms(sw.started_ms()),
        "uptime_s": now_ms.saturating_sub(sw.started_ms()) / 1000,
        "config": ops.map(|o| o.config_path()),
        "state_dir": store.state_dir().map(|d| d.display().to_string()),
        "shared_store": store.shared_status().map(|s| shared_store_json(&s, true)),
        "log_level": ops.map(|o| o.log_level()),
        "policy": {
            "epoch": sw.epoch(),
            "published_at": rfc3339_ms(sw.published_ms()),
        },
        "ready": ready,
        "readiness": readiness,
        "workers": workers,
        "ports": ports,
        "last_reload": ops.and_then(|o| o.last_reload()).map(|r| r.to_json()),
    })
}
