//! Serve the management API over a config with a dry-run apply target connected to the
//! store (`control::connect`; no dataplane), for trying API clients by hand:
//!
//! ```text
//! SGSWITCH_API_TOKEN=secret cargo run --example api_server -- configs/example.toml 127.0.0.1:9696 [STATE_DIR]
//! openstack --os-auth-type admin_token --os-token secret --os-endpoint http://127.0.0.1:9696 security group list
//! ```
//!
//! Without `$SGSWITCH_API_TOKEN` it serves without a token (loopback only, and then no
//! request may give a port a backend).

use std::sync::Arc;

use sgswitch::control::api::ApiServer;
use sgswitch::control::config;
use sgswitch::control::store::Store;
use sgswitch::policy::Model;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(cfg), Some(addr)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: api_server CONFIG ADDR [STATE_DIR]");
        std::process::exit(2);
    };
    let cfg = match config::load_file(cfg.as_ref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let store = match Store::open(args.get(3).map(std::path::Path::new), &cfg) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("api_server: {e}");
            std::process::exit(1);
        }
    };
    // A dry run: the model is only summarised, never compiled or published.
    sgswitch::control::connect(
        &store,
        Arc::new(|m: &Model| {
            eprintln!(
                "apply: {} groups, {} rules, {} ports",
                m.security_groups.len(),
                m.security_groups
                    .iter()
                    .map(|g| g.rules.len())
                    .sum::<usize>(),
                m.ports.len()
            );
            Ok(())
        }),
    );
    let addr = match addr.parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("api_server: bad address {addr}: {e}");
            std::process::exit(2);
        }
    };
    let token = std::env::var("SGSWITCH_API_TOKEN").ok();
    match ApiServer::start(addr, token, store) {
        Ok(h) => {
            eprintln!("api_server: listening on http://{}", h.local_addr());
            loop {
                std::thread::park();
            }
        }
        Err(e) => {
            eprintln!("api_server: {e}");
            std::process::exit(1);
        }
    }
}
