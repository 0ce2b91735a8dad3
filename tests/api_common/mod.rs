//! Shared helpers for the API tests: a server on an ephemeral port whose store is
//! connected (`control::connect`) to a test double that records every model it is
//! handed, or refuses it with "injected compile failure" while `fail_apply` is set.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use sgswitch::control;
use sgswitch::control::api::{ApiHandle, ApiServer};
use sgswitch::control::config::{self, Config};
use sgswitch::control::http_client::{Client, Response};
use sgswitch::control::store::{ApplyError, Store};
use sgswitch::policy::Model;

pub const SEED: &str = r#"
[[security_groups]]
name = "web"
description = "web servers"
rules = [ { direction = "ingress", protocol = "tcp", port_range_min = 80, port_range_max = 80 } ]

[[security_groups]]
name = "nostate"
stateful = false
rules = []

[[address_groups]]
name = "office"
addresses = ["198.51.100.0/24"]

[[ports]]
name = "vm-a"
network = "net1"
mac = "fa:16:3e:00:00:0a"
fixed_ips = ["10.0.0.10", "fd00::a"]
security_groups = ["web"]

[[ports]]
name = "vm-b"
network = "net1"
mac = "fa:16:3e:00:00:0b"
fixed_ips = ["10.0.0.11"]

[[networks]]
name = "spare"
"#;

pub fn seed() -> Config {
    config::parse_str(SEED, "seed.toml").expect("seed config is valid")
}

/// A running server with its store and recorded models.
pub struct Harness {
    pub store: Arc<Store>,
    pub published: Arc<Mutex<Vec<Model>>>,
    pub fail_apply: Arc<AtomicBool>,
    pub handle: ApiHandle,
    pub client: Client,
}

impl Harness {
    pub fn start() -> Harness {
        Self::start_with(None, None)
    }

    pub fn start_with(state_dir: Option<&Path>, token: Option<&str>) -> Harness {
        let store = Arc::new(Store::open(state_dir, &seed()).expect("store opens"));
        let published = Arc::new(Mutex::new(Vec::new()));
        let fail_apply = Arc::new(AtomicBool::new(false));
        let (p, f) = (Arc::clone(&published), Arc::clone(&fail_apply));
        control::connect(
            &store,
            Arc::new(move |m: &Model| {
                if f.load(Ordering::SeqCst) {
                    return Err(ApplyError::Rejected("injected compile failure".into()));
                }
                p.lock().unwrap().push(m.clone());
                Ok(())
            }),
        );
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let handle =
            ApiServer::start(addr, token.map(str::to_string), Arc::clone(&store)).expect("starts");
        let client = Client::new(
            &format!("http://{}", handle.local_addr()),
            token.map(str::to_string),
        )
        .unwrap();
        Harness {
            store,
            published,
            fail_apply,
            handle,
            client,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.handle.local_addr())
    }

    pub fn req(&self, method: &str, path: &str, body: Option<Value>) -> Response {
        self.client
            .raw(method, path, body.as_ref())
            .expect("request completes")
    }

    pub fn published_count(&self) -> usize {
        self.published.lock().unwrap().len()
    }

    /// Id of a security group by name.
    pub fn sg_id(&self, name: &str) -> String {
        let r = self.req("GET", &format!("/v2.0/security-groups?name={name}"), None);
        assert_eq!(r.status, 200);
        r.body["security_groups"][0]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no group {name}: {}", r.body))
            .to_string()
    }

    pub fn port_id(&self, name: &str) -> String {
        let r = self.req("GET", &format!("/v2.0/ports?name={name}"), None);
        r.body["ports"][0]["id"].as_str().unwrap().to_string()
    }

    /// POST a rule; returns the response.
    pub fn rule(&self, sg: &str, fields: Value) -> Response {
        let mut rule = fields;
        rule["security_group_id"] = json!(sg);
        self.req(
            "POST",
            "/v2.0/security-group-rules",
            Some(json!({ "security_group_rule": rule })),
        )
    }
}

/// The Neutron error type of a response.
pub fn err_type(r: &Response) -> String {
    r.body["NeutronError"]["type"]
        .as_str()
        .unwrap_or("")
        .to_string()
}
