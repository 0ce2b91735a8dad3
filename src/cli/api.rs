//! `sgswitch api --store URL --listen ADDR`: the Neutron API served from the shared
//! store, without a switch (any host, or a host of its own, may run it; several may
//! run at once). Each write is one transaction of the shared store; reads answer from
//! this server's cache of the prefix (see `control::store::shared`). `/healthz`,
//! `/readyz` and `/metrics` show the store's state.
//!
//! On first use of a prefix the state is seeded from `--config` (the same TOML as
//! `run`'s; without it: only the `default` group). A prefix written by another schema
//! version is refused with exit code 1, naming both versions.
//!
//! Owns: the flags and the process's life (signals, exit codes). May not hold
//! control-plane logic: the store and the API are the library's.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Args;
use tracing::{error, info, warn};
use tracing_subscriber::filter::LevelFilter;

use sgswitch::control::api::{ApiServer, DEFAULT_ADDR};
use sgswitch::control::config;
use sgswitch::control::store::Store;

use super::logging::{self, LogFormat, Timestamps, STATUS};
use super::run::resolve_token;
use super::store_args::StoreArgs;
use super::{load_or_report, EXIT_INVALID, EXIT_OK};

/// `sgswitch api`.
#[derive(Args, Debug)]
pub struct ApiArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    /// The config that seeds an empty prefix (groups, address groups, networks, ports);
    /// ignored once the prefix holds a state
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Where to serve the API
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_ADDR)]
    pub listen: SocketAddr,

    /// The API token file: read, or created with a random token (as `run`'s)
    #[arg(long, value_name = "FILE", conflicts_with = "api_no_auth")]
    pub api_token_file: Option<PathBuf>,

    /// Serve without a token, on a loopback address only (tests, demos)
    #[arg(long)]
    pub api_no_auth: bool,

    /// Log level: off, error, warn, info, debug, trace (default: $RUST_LOG, else info)
    #[arg(long, value_name = "LEVEL", value_parser = logging::parse_level)]
    pub log: Option<LevelFilter>,

    /// Log format: text or json
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Run `sgswitch api`.
pub fn run(args: &ApiArgs) -> ExitCode {
    let config = match &args.config {
        Some(path) => match load_or_report(path) {
            Ok(c) => c,
            Err(code) => return code,
        },
        None => config::parse_str("", "(no --config)").expect("an empty config is valid"),
    };
    let rust_log = std::env::var("RUST_LOG").ok();
    let (level, warning) = logging::level(args.log, rust_log.as_deref(), None);
    logging::init(level, args.log_format, Timestamps::Auto);
    if let Some(w) = warning {
        warn!("{w}");
    }
    let (kv, keys) = match args.store.open() {
        Ok(Some(s)) => s,
        Ok(None) => {
            error!("sgswitch api needs --store etcd://HOST:PORT (the local store is `run`'s)");
            return ExitCode::from(EXIT_INVALID);
        }
        Err(e) => {
            error!("{e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let store = match Store::open_shared(kv, keys, &config) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            error!("{e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let token = match resolve_token(
        None,
        args.api_token_file.as_deref(),
        args.api_no_auth,
        &config,
    ) {
        Ok(t) => t,
        Err(e) => {
            error!("management API: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&stop)) {
            error!("cannot install signal handlers: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    }
    let handle = match ApiServer::start(args.listen, token, Arc::clone(&store)) {
        Ok(h) => h,
        Err(e) => {
            error!("management API on {}: {e}", args.listen);
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let status = store.shared_status();
    info!(
        target: STATUS,
        "ready (API on http://{}, shared store {} prefix {}, revision {})",
        handle.local_addr(),
        status.as_ref().map_or("", |s| s.store.as_str()),
        status.as_ref().map_or("", |s| s.prefix.as_str()),
        store.revision()
    );
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    info!("stopping");
    handle.shutdown();
    ExitCode::from(EXIT_OK)
}
