//! `sgswitch run`: the switch in the foreground — the store, the live switch, the
//! management API, signals (SIGHUP reload, SIGUSR1 counters, SIGINT/SIGTERM stop).
//!
//! Owns: the run command's arguments and the process's life cycle. May not compile,
//! publish or persist policy itself: `control::store` and `runtime::switch` do.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use sgswitch::control::config;
use sgswitch::runtime::switch::SwitchSettings;

use super::{load_or_report, EXIT_INVALID, EXIT_OK};

/// Arguments of `sgswitch run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The TOML config file (re-read on SIGHUP)
    #[arg(short, long, value_name = "FILE")]
    pub config: PathBuf,

    /// Number of polling workers (overrides [switch] workers)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: Option<u16>,

    /// CPU cores to pin the workers to, e.g. `1` or `0,1` (default: cores 0, 1, ...)
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        conflicts_with = "no_pin"
    )]
    pub cores: Vec<usize>,

    /// Do not pin workers to cores
    #[arg(long)]
    pub no_pin: bool,

    /// Busy-poll even when idle (default: idle workers back off, see [switch] idle_backoff)
    #[arg(long)]
    pub busy_poll: bool,

    /// NAPI moderation of the AF_XDP / AF_PACKET ports' netdevs in microseconds, 0 = off
    /// (default: [switch] napi_defer_us, 100)
    /// (overrides [switch] napi_defer_us; see README "NAPI moderation")
    #[arg(long, value_name = "US", value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub napi_defer_us: Option<u32>,

    /// AF_XDP ports of a worker each get their own UMEM and frames are copied between them
    /// (default: they share one UMEM and frames move by descriptor)
    #[arg(long)]
    pub copy_forward: bool,

    /// Log level: error, warn, info, debug (default: $RUST_LOG or info)
    #[arg(long, value_name = "LEVEL")]
    pub log: Option<String>,

    /// Address of the management API (Neutron-compatible REST)
    #[arg(long, value_name = "ADDR", default_value = None)]
    pub api: Option<std::net::SocketAddr>,

    /// Token required in X-Auth-Token (mandatory when --api is not a loopback address)
    #[arg(long, value_name = "TOKEN")]
    pub api_token: Option<String>,

    /// Do not serve the management API
    #[arg(long, conflicts_with_all = ["api", "api_token"])]
    pub no_api: bool,

    /// Keep the state changed through the API here (state.json), so it survives restarts
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

impl RunArgs {
    /// The live switch's settings: the config's `[switch]` values (`from_config`) with
    /// this command's flags layered on top. The only place where flags override the file;
    /// `workers` stays 0 (automatic) unless given, for
    /// [`SwitchSettings::worker_count`] to resolve.
    pub fn switch_settings(&self, from_config: &SwitchSettings) -> SwitchSettings {
        SwitchSettings {
            workers: self.workers.map_or(from_config.workers, usize::from),
            burst: from_config.burst,
            idle_backoff: from_config.idle_backoff && !self.busy_poll,
            cores: if self.cores.is_empty() {
                from_config.cores.clone()
            } else {
                self.cores.clone()
            },
            no_pin: from_config.no_pin || self.no_pin,
            shared_umem: from_config.shared_umem && !self.copy_forward,
            napi_defer_us: self.napi_defer_us.unwrap_or(from_config.napi_defer_us),
        }
    }
}

static SIG_HUP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static SIG_USR1: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static SIG_STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int) {
    use std::sync::atomic::Ordering;
    match sig {
        libc::SIGHUP => SIG_HUP.store(true, Ordering::SeqCst),
        libc::SIGUSR1 => SIG_USR1.store(true, Ordering::SeqCst),
        _ => SIG_STOP.store(true, Ordering::SeqCst),
    }
}

fn install_signals() {
    for sig in [libc::SIGHUP, libc::SIGUSR1, libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `on_signal` is an `extern "C"` function that only stores to atomics,
        // which is async-signal-safe; the handler stays valid for the process lifetime.
        unsafe {
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

fn log_level(arg: &Option<String>) -> Level {
    let v = arg
        .clone()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    match v.as_str() {
        "error" => Level::Error,
        "warn" | "warning" => Level::Warn,
        "debug" | "trace" => Level::Debug,
        _ => Level::Info,
    }
}

/// Run `sgswitch run`.
pub fn run(args: &RunArgs) -> ExitCode {
    use sgswitch::control::api::{ApiServer, DEFAULT_ADDR};
    use sgswitch::control::store::Store;
    use sgswitch::runtime::switch::{format_report, Switch};
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    let level = log_level(&args.log);
    let log = |l: Level, msg: &str| {
        if l <= level {
            eprintln!("sgswitch: {msg}");
        }
    };
    let config = match load_or_report(&args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // The store is the authoritative state: the config seeds it on first launch; with
    // --state-dir, later launches start from the saved state (API changes survive).
    let store = match Store::open(args.state_dir.as_deref(), &config) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("sgswitch: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let model = store.model();
    let with_backend = model.ports.iter().filter(|p| p.backend.is_some()).count();
    let settings = args.switch_settings(&config.switch);
    let workers = settings.worker_count(&model);
    install_signals();
    let switch = match Switch::start(&model, &settings) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("sgswitch: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    sgswitch::control::connect(&store, switch.clone());
    let api = if args.no_api {
        None
    } else {
        let addr = args
            .api
            .unwrap_or_else(|| DEFAULT_ADDR.parse().expect("valid default"));
        match ApiServer::start(addr, args.api_token.clone(), store.clone()) {
            Ok(h) => Some(h),
            Err(e) => {
                eprintln!("sgswitch: management API on {addr}: {e}");
                switch.shutdown();
                return ExitCode::from(EXIT_INVALID);
            }
        }
    };
    eprintln!(
        "sgswitch: ready ({} ports, {with_backend} with a backend, {} worker{}, policy epoch {}{})",
        model.ports.len(),
        workers,
        if workers == 1 { "" } else { "s" },
        switch.epoch(),
        match &api {
            Some(h) => format!(", API on http://{}", h.local_addr()),
            None => String::new(),
        }
    );
    while !SIG_STOP.load(Ordering::SeqCst) {
        std::thread::sleep(std::time::Duration::from_millis(20));
        if SIG_HUP.swap(false, Ordering::SeqCst) {
            log(
                Level::Info,
                &format!("SIGHUP: reloading {}", args.config.display()),
            );
            match config::load_file(&args.config) {
                Err(errors) => {
                    eprintln!("{errors}");
                    log(
                        Level::Error,
                        &format!(
                            "reload failed: {}: {} problem(s); the running policy is unchanged",
                            args.config.display(),
                            errors.len()
                        ),
                    );
                }
                Ok(new) => match store.replace_model(&new.model) {
                    Ok(()) => log(
                        Level::Warn,
                        &format!("reloaded (policy epoch {})", switch.epoch()),
                    ),
                    Err(e) => log(
                        Level::Error,
                        &format!("reload failed: {e}; the running policy is unchanged"),
                    ),
                },
            }
        }
        if SIG_USR1.swap(false, Ordering::SeqCst) {
            eprint!("{}", format_report(&switch.report()));
        }
    }
    log(Level::Info, "stopping");
    if let Some(h) = api {
        h.shutdown();
    }
    let report = switch.shutdown();
    eprint!("{}", format_report(&report));
    ExitCode::from(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn run_args(flags: &[&str]) -> RunArgs {
        let argv = [&["sgswitch", "run", "--config", "x.toml"], flags].concat();
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Run(a) => a,
            _ => panic!("parsed as another command"),
        }
    }

    #[test]
    fn flags_override_the_config_and_nothing_else() {
        let file = SwitchSettings {
            workers: 3,
            burst: 64,
            napi_defer_us: 50,
            ..SwitchSettings::default()
        };
        assert_eq!(run_args(&[]).switch_settings(&file), file);
        let s = run_args(&[
            "--workers",
            "2",
            "--cores",
            "1,3",
            "--busy-poll",
            "--copy-forward",
            "--napi-defer-us",
            "0",
        ])
        .switch_settings(&file);
        assert_eq!(
            s,
            SwitchSettings {
                workers: 2,
                burst: 64,
                idle_backoff: false,
                cores: vec![1, 3],
                no_pin: false,
                shared_umem: false,
                napi_defer_us: 0,
            }
        );
        assert!(run_args(&["--no-pin"]).switch_settings(&file).no_pin);
        // Not given on the command line: 0 (automatic) stays for worker_count.
        let auto = run_args(&[]).switch_settings(&SwitchSettings::default());
        assert_eq!(auto.workers, 0);
    }
}
