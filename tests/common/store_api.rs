//! `sgswitch api --store URL` as the multi-host tests start it, and polling until a
//! condition holds: what `scale_out_live` and `overlay_etcd` share.
//!
//! The API server runs with a token file in the test's directory (every request is an
//! admin's: `binding:host_id` is admin-only) and its log in `api.log` beside it; the
//! process is killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sgswitch::control::http_client::Client;

/// A running `sgswitch api --store …`, killed on drop.
pub struct StoreApi {
    child: Child,
    log: PathBuf,
    /// A client with the server's admin token.
    pub client: Client,
}

impl Drop for StoreApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl StoreApi {
    /// Starts the API on a free loopback port against the store at `url`, seeded from
    /// `seed`, with its token file and log in `dir`; returns once it accepts connections.
    pub fn start(url: &str, seed: &Path, dir: &Path) -> StoreApi {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let token_file = dir.join("api-token");
        let log = dir.join("api.log");
        let stderr = std::fs::File::create(&log).expect("api log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_sgswitch"))
            .args(["api", "--store", url, "--config"])
            .arg(seed)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--api-token-file")
            .arg(&token_file)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("sgswitch api starts");
        let listening = eventually(20, || std::net::TcpStream::connect(addr).is_ok());
        let token = std::fs::read_to_string(&token_file);
        if !listening || token.is_err() {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "sgswitch api did not listen on {addr} or wrote no token:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        let token = token.expect("checked above");
        let client = Client::new(&format!("http://{addr}"), Some(token.trim().to_string()))
            .expect("API client");
        StoreApi { child, log, client }
    }

    /// What the server logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The id of the object named `name` in `/v2.0/COLLECTION` (list key `key`).
    pub fn id(&self, collection: &str, key: &str, name: &str) -> String {
        let list = self
            .client
            .get(&format!("/v2.0/{collection}"))
            .expect("list");
        list[key]
            .as_array()
            .and_then(|a| a.iter().find(|o| o["name"] == name))
            .and_then(|o| o["id"].as_str())
            .unwrap_or_else(|| panic!("no {name} in {list}"))
            .to_string()
    }
}

/// Polls `f` every 200 ms until it is true (true) or `secs` pass (false).
pub fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
