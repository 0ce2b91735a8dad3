//! The overlay's shared-store slice (issue #19, Neutron's l2population) through the HTTP
//! API and host agents, on the in-process [`MemKv`] and on a real etcd
//! (`kv::testing::EtcdServer`): hosts publish their VTEP in `hosts/HOST`, the API writes
//! a bound port's `net-ports/NETWORK/PORT` key in its transaction, a host's model gains
//! the remote ports of its networks (and only of its networks), and when a host's lease
//! expires its ports leave the other hosts' models and show `status: DOWN` in the API.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sgswitch::control::api::{ApiHandle, ApiServer};
use sgswitch::control::config;
use sgswitch::control::connect::ApplyPolicy;
use sgswitch::control::http_client::{Client, Response};
use sgswitch::control::kv::testing::EtcdServer;
use sgswitch::control::kv::{EtcdKv, Kv, MemKv};
use sgswitch::control::shared::agent::{Agent, AgentOptions};
use sgswitch::control::shared::layout::{EncapPorts, HostValue, Keys, NetPortValue};
use sgswitch::control::store::Store;
use sgswitch::policy::Model;

/// compute-1 has vm-a on net1; compute-3 has vm-c on net2 (no port on net1).
const SEED: &str = r#"
[[security_groups]]
name = "web"
rules = [ { direction = "ingress", protocol = "tcp", port_range_min = 80, port_range_max = 80 } ]

[[ports]]
name = "vm-a"
network = "net1"
mac = "fa:16:3e:00:00:0a"
fixed_ips = ["10.0.0.10"]
security_groups = ["web"]
host = "compute-1"

[[ports]]
name = "vm-c"
network = "net2"
mac = "fa:16:3e:00:00:0c"
fixed_ips = ["10.0.2.12"]
security_groups = ["web"]
host = "compute-3"
"#;

fn keys() -> Keys {
    Keys::new("/sgswitch-overlay/")
}

struct Server {
    _store: Arc<Store>,
    _handle: ApiHandle,
    client: Client,
}

impl Server {
    fn start(kv: Arc<dyn Kv>) -> Server {
        let seed = config::parse_str(SEED, "seed.toml").expect("seed");
        let store = Arc::new(Store::open_shared(kv, keys(), &seed).expect("opens"));
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        // With a token: its requests are an admin's (binding:host_id is admin only).
        let token = "shared-test-admin".to_string();
        let handle =
            ApiServer::start(addr, Some(token.clone()), Arc::clone(&store)).expect("starts");
        let client = Client::new(&format!("http://{}", handle.local_addr()), Some(token)).unwrap();
        Server {
            _store: store,
            _handle: handle,
            client,
        }
    }
    fn req(&self, method: &str, path: &str, body: Option<Value>) -> Response {
        self.client
            .raw(method, path, body.as_ref())
            .expect("answer")
    }
    fn id(&self, collection: &str, name: &str) -> String {
        let r = self.req("GET", &format!("/v2.0/{collection}?name={name}"), None);
        r.body[collection][0]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no {name} in {}", r.body))
            .to_string()
    }
    fn status(&self, port: &str) -> String {
        let r = self.req("GET", &format!("/v2.0/ports/{port}"), None);
        r.body["port"]["status"].as_str().unwrap_or("").to_string()
    }
}

/// A host agent with VTEP `10.255.0.N` and a lease of `ttl` seconds, on a dataplane that
/// takes every model.
fn agent(kv: Arc<dyn Kv>, host: &str, n: u8, ttl: i64) -> Agent {
    let target: Arc<dyn ApplyPolicy> = Arc::new(|_: &Model| Ok(()));
    let opts = AgentOptions {
        vtep: Some(IpAddr::from([10, 255, 0, n])),
        lease_ttl: ttl,
        ..AgentOptions::default()
    };
    Agent::start(kv, keys(), host, target, opts).expect("agent starts")
}

/// The ports of `a`'s model bound to other hosts, as `NAME@HOST`.
fn remote(a: &Agent) -> Vec<String> {
    a.model().map_or(vec![], |m| {
        m.ports
            .iter()
            .filter(|p| p.host.as_deref() != Some(a.host()))
            .map(|p| format!("{}@{}", p.name, p.host.as_deref().unwrap_or("")))
            .collect()
    })
}

fn wait(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The whole slice on one store; `ttl`: compute-2's lease (etcd rounds a short TTL up).
fn l2population(kv: Arc<dyn Kv>, ttl: i64) {
    let api = Server::start(kv.clone());
    let h1 = agent(kv.clone(), "compute-1", 1, 10);
    let h2 = agent(kv.clone(), "compute-2", 2, ttl);
    let h3 = agent(kv.clone(), "compute-3", 3, 10);
    let t = Duration::from_secs(10);
    // hosts/HOST carries the VTEP.
    wait("hosts/compute-2", t, || {
        kv.get(&keys().host("compute-2"), None).unwrap().0.is_some()
    });
    let (v, _) = kv.get(&keys().host("compute-2"), None).unwrap();
    let hv: HostValue = serde_json::from_slice(&v.expect("hosts/compute-2").value).unwrap();
    assert_eq!(hv.vtep.as_deref(), Some("10.255.0.2"));
    assert_eq!(hv.udp_ports, Some(EncapPorts::default()));
    wait("h1 and h3 applied", t, || {
        h1.model().is_some() && h3.model().is_some()
    });
    assert!(remote(&h1).is_empty() && remote(&h3).is_empty());
    // compute-3 saw its own hosts/ key (the only one it watches: no other host has a
    // port on net2), so no late liveness event counts below.
    let key3 = keys().host("compute-3");
    wait("hosts/compute-3", t, || {
        kv.get(&key3, None).unwrap().0.is_some()
    });
    let rev = kv.get(&key3, None).unwrap().0.unwrap().mod_revision;
    assert!(h3.wait_applied(rev, t));
    let m = h3.model().unwrap();
    assert_eq!(m.hosts.len(), 1, "{:?}", m.hosts);
    let e3 = h3.stats().events;

    // A port on net1 bound to compute-2, created through the API: its index key is in
    // the same write, and it reaches compute-1's model (a port there on net1).
    let net1 = api.id("networks", "net1");
    let r = api.req(
        "POST",
        "/v2.0/ports",
        Some(json!({"port": {"name": "vm-b", "network_id": net1,
            "mac_address": "fa:16:3e:00:00:0b", "fixed_ips": [{"ip_address": "10.0.0.11"}],
            "allowed_address_pairs": [{"ip_address": "10.0.9.0/24", "mac_address": "fa:16:3e:00:09:00"}],
            "binding:host_id": "compute-2"}})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let vm_b = r.body["port"]["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["port"]["status"], "ACTIVE");
    let (v, _) = kv.get(&keys().net_port(&net1, &vm_b), None).unwrap();
    let np: NetPortValue = serde_json::from_slice(&v.expect("net-ports key").value).unwrap();
    assert_eq!(
        (np.host_id.as_str(), np.mac_address.as_str()),
        ("compute-2", "fa:16:3e:00:00:0b")
    );
    // (Waiting for the model: the API's revision also counts other hosts' status keys,
    // which compute-1 never sees.)
    wait("vm-b at compute-1", t, || remote(&h1) == ["vm-b@compute-2"]);
    let m = h1.model().unwrap();
    let b = m.ports.iter().find(|p| p.name == "vm-b").unwrap();
    assert_eq!(b.fixed_ips, [IpAddr::from([10, 0, 0, 11])]);
    assert_eq!(b.allowed_address_pairs.len(), 1);
    assert!(b.security_groups.is_empty() && b.backend.is_none());
    // compute-2 sees vm-a the other way; compute-3 (net2 only) got no event at all.
    wait("vm-a at compute-2", t, || remote(&h2) == ["vm-a@compute-1"]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(h3.stats().events, e3, "compute-3 got an event of net1");
    assert!(remote(&h3).is_empty());

    // Deleted through the API: it leaves compute-1's model, still no event at compute-3.
    let r = api.req("DELETE", &format!("/v2.0/ports/{vm_b}"), None);
    assert_eq!(r.status, 204, "{}", r.body);
    wait("vm-b gone from compute-1", t, || remote(&h1).is_empty());
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(h3.stats().events, e3, "compute-3 got an event of net1");

    // compute-2 dies with a port on net1: the port stays ACTIVE until the lease expires,
    // then it leaves compute-1's model and the API shows it DOWN.
    let r = api.req(
        "POST",
        "/v2.0/ports",
        Some(json!({"port": {"name": "vm-d", "network_id": net1,
            "mac_address": "fa:16:3e:00:00:0d", "fixed_ips": [{"ip_address": "10.0.0.13"}],
            "binding:host_id": "compute-2"}})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let vm_d = r.body["port"]["id"].as_str().unwrap().to_string();
    wait("vm-d at compute-1", t, || remote(&h1) == ["vm-d@compute-2"]);
    let vm_a = api.id("ports", "vm-a");
    let t_crash = Instant::now();
    h2.crash();
    assert_eq!(api.status(&vm_d), "ACTIVE", "DOWN before the lease expired");
    wait(
        "vm-d gone from compute-1",
        t + Duration::from_secs(ttl as u64),
        || remote(&h1).is_empty(),
    );
    wait("vm-d DOWN", t, || api.status(&vm_d) == "DOWN");
    assert!(
        t_crash.elapsed() >= Duration::from_millis(900),
        "before the TTL"
    );
    assert_eq!(api.status(&vm_a), "ACTIVE");
    // Listed with the others, DOWN too.
    let r = api.req("GET", "/v2.0/ports?name=vm-d", None);
    assert_eq!(r.body["ports"][0]["status"], "DOWN", "{}", r.body);
    // compute-2 back: ACTIVE again, and in compute-1's model.
    let h2 = agent(kv.clone(), "compute-2", 2, ttl);
    wait("vm-d ACTIVE", t, || api.status(&vm_d) == "ACTIVE");
    wait("vm-d back at compute-1", t, || {
        remote(&h1) == ["vm-d@compute-2"]
    });
    drop(h2);
}

#[test]
fn l2population_on_the_in_process_store() {
    l2population(Arc::new(MemKv::new()), 1);
}

#[test]
fn l2population_on_etcd() {
    let Some(etcd) = EtcdServer::start_or_skip("l2population_on_etcd") else {
        return;
    };
    l2population(Arc::new(EtcdKv::open(&etcd.url()).expect("etcd client")), 2);
}

#[test]
fn an_index_missing_from_an_older_prefix_is_written_at_open() {
    let kv = Arc::new(MemKv::new());
    let api = Server::start(kv.clone());
    let net1 = api.id("networks", "net1");
    let vm_a = api.id("ports", "vm-a");
    let key = keys().net_port(&net1, &vm_a);
    assert!(kv.get(&key, None).unwrap().0.is_some());
    drop(api);
    // As a prefix written before the index existed: the key is gone.
    kv.txn(sgswitch::control::kv::Txn {
        compares: vec![],
        ops: vec![sgswitch::control::kv::Op::DeletePrefix {
            prefix: keys().all_net_ports(),
        }],
    })
    .unwrap();
    let _api = Server::start(kv.clone());
    let (v, _) = kv.get(&key, None).unwrap();
    let np: NetPortValue = serde_json::from_slice(&v.expect("repaired").value).unwrap();
    assert_eq!(np.host_id, "compute-1");
}

/// A process of ours, killed by its PID on drop.
struct Proc(std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn run_store_publishes_its_vtep_from_the_flag_over_the_config() {
    let Some(etcd) = EtcdServer::start_or_skip("run_store_publishes_its_vtep") else {
        return;
    };
    let kv: Arc<dyn Kv> = Arc::new(EtcdKv::open(&etcd.url()).expect("etcd client"));
    let _api = Server::start(kv.clone());
    let dir = std::env::temp_dir().join(format!("sgswitch-vtep-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("host.toml");
    std::fs::write(
        &cfg,
        "[switch]\nworkers = 1\n\n[overlay]\nvtep = \"192.0.2.8\"\n",
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("run.log")).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_sgswitch"))
        .arg("run")
        .arg("--config")
        .arg(&cfg)
        .args(["--store", &etcd.url(), "--store-prefix", keys().prefix()])
        .args(["--host-id", "compute-9", "--vtep", "192.0.2.9"])
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("sgswitch run starts");
    let _run = Proc(child);
    let key = keys().host("compute-9");
    let deadline = Instant::now() + Duration::from_secs(20);
    let v = loop {
        if let Some(v) = kv.get(&key, None).unwrap().0 {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "no {key}:\n{}",
            std::fs::read_to_string(dir.join("run.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let hv: HostValue = serde_json::from_slice(&v.value).unwrap();
    assert_eq!(hv.vtep.as_deref(), Some("192.0.2.9"));
    // With its VTEP, the ports it receives each encapsulation on.
    assert_eq!(hv.udp_ports, Some(EncapPorts::default()));
    assert_eq!(hv.udp_port(sgswitch::policy::Encap::Vxlan), 4789);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `run --store`: the host name is `--host-id` or the config's `[overlay] host`; two
/// different names are refused before anything starts, naming both.
#[test]
fn run_store_refuses_two_different_host_names() {
    let dir = std::env::temp_dir().join(format!("sgswitch-hosts2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("host.toml");
    std::fs::write(&cfg, "[overlay]\nhost = \"compute-1\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sgswitch"))
        .arg("run")
        .arg("--config")
        .arg(&cfg)
        .args([
            "--store",
            "etcd://127.0.0.1:9",
            "--host-id",
            "compute-2",
            "--no-api",
        ])
        .output()
        .expect("sgswitch run");
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--host-id compute-2 and [overlay] host = \"compute-1\""),
        "{err}"
    );
}
