//! Networks (read-only): rendering, with the ids of their implicit IPv4 / IPv6 subnets.
//!
//! Owns: the Neutron shape of a network. May not touch: the store.
//!
//! Depends on: `control::store` (the state it renders).

use serde_json::{json, Map, Value};

use super::std_attrs;
use crate::control::store::State;

pub(super) fn network_json(s: &State, ni: usize) -> Value {
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
