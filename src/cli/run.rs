//! `sgswitch run`: the switch in the foreground — the store, the live switch, the
//! management API, signals (SIGHUP reload, SIGUSR1 counters, SIGINT/SIGTERM stop).
//!
//! Order at start: load the config, open the store (the authoritative state; the
//! config seeds it on first launch), layer the flags on the config's `[switch]` table
//! ([`RunArgs::switch_settings`]), install the signal flags, start the switch from the
//! store's model, connect the store to it (`control::connect`), serve the API, log
//! `ready` (and tell systemd `READY=1`, [`super::notify`]; `RELOADING=1`/`READY=1` around
//! a SIGHUP reload, `STOPPING=1` at the end). Every failure exits 1 with nothing left
//! attached.
//!
//! With `--store URL --host-id NAME` (scale-out, #18) the policy comes from the shared
//! store instead: the switch starts with no port and the host agent
//! (`control::shared::agent`) applies this host's model as it arrives; no API is served
//! by `run` then (`sgswitch api --store URL` serves it), the config gives the switch
//! settings and logging ([`run_shared`]). The host's name is `--host-id`, else the
//! config's `[overlay] host` (one setting: both given and different is refused,
//! `shared_host`).
//!
//! The API's token (#14) comes from a root-only file created at first start
//! (`control::api::token`), `$SGSWITCH_API_TOKEN`, or, warned, `--api-token`;
//! `--api-no-auth` serves without one (loopback only, logged as a warning).
//!
//! Owns: the run command's arguments and the process's life cycle. May not compile,
//! publish or persist policy itself: `control::store` and `runtime::switch` do; logging
//! goes through `tracing` ([`super::logging`]).
//!
//! # Signals: `signal-hook`
//! `signal_hook::flag::register` sets an `AtomicBool` per signal; the loop polls the
//! flags every 20 ms, as it polled the hand-written handlers' statics before (three
//! statics, an `extern "C"` handler and an `unsafe` `libc::signal` loop, now gone: this
//! module has no `unsafe`). signal-hook (`default-features = false`) adds
//! signal-hook-registry and errno: +5.0 s compile CPU, +18 KB in a stripped minimal
//! binary (365,304 B against 347,160 B). Kept hand-written: nothing.
//!
//! # Whole-binary figures of this module's crates (`tracing`, `tracing-subscriber`,
//! `signal-hook`)
//! `cargo build --release --locked --bin sgswitch` from an empty target directory, before
//! (main at the start of this change) and after (this branch, with the CLI split):
//!
//! | | before | after |
//! |---|---:|---:|
//! | clean release build, CPU (user+sys) | 100.1 s | 139.9 s |
//! | clean release build, wall (machine loaded by other builds) | 6:00 | 6:15 |
//! | `sgswitch`, stripped | 3,541,480 B | 3,838,520 B (+8.4 %) |
//!
//! The two clean builds ran 15 minutes apart under other helpers' builds (load 9–11), so
//! their CPU times differ by more than the added crates cost on their own (+10.1 s for
//! tracing + tracing-subscriber, +5.0 s for signal-hook, measured on top of an already
//! built dependency set); the size difference is exact. Most of it is
//! `tracing-subscriber`'s formatter and its JSON output (see [`super::logging`]).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Args;
use tracing::{error, info, warn};

use sgswitch::control::api::{token, ApiServer, DEFAULT_ADDR};
use sgswitch::control::kv::Health;
use sgswitch::control::packet_log::{self, PacketLog};
use sgswitch::control::shared::agent::{Agent, AgentOptions};
use sgswitch::control::store::Store;
use sgswitch::control::{self, config};
use sgswitch::policy::Model;
use sgswitch::port::underlay::UnderlayGroup;
use sgswitch::runtime::switch::{format_report, Switch, SwitchSettings};

use tracing_subscriber::filter::LevelFilter;

use super::logging::{self, LogFormat, Timestamps, STATUS};
use super::notify;
use super::reload::RunOps;
use super::store_args::StoreArgs;
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

    /// Log level: off, error, warn, info, debug, trace (default: $RUST_LOG, else the
    /// config's [logging] level, else info); changeable at run time with
    /// `sgswitch log-level`
    #[arg(long, value_name = "LEVEL", value_parser = logging::parse_level)]
    pub log: Option<LevelFilter>,

    /// Log format: text (`TIMESTAMP LEVEL sgswitch: MESSAGE` lines) or json (one object
    /// per event)
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Timestamps on text lines: auto (off when stderr is the journal, which stamps
    /// lines itself), always, never
    #[arg(long, value_name = "WHEN", value_enum, default_value_t = Timestamps::Auto)]
    pub log_timestamps: Timestamps,

    /// Address of the management API (Neutron-compatible REST)
    #[arg(long, value_name = "ADDR", default_value = None)]
    pub api: Option<std::net::SocketAddr>,

    /// The API token file: read, or created at first start with a random token (mode
    /// 0600, directory 0700); every request needs that token in X-Auth-Token (default:
    /// [api] token_file, else /run/sgswitch/api-token for root)
    #[arg(long, value_name = "FILE", conflicts_with = "api_no_auth")]
    pub api_token_file: Option<PathBuf>,

    /// Deprecated: the token on the command line, where `ps` shows it to every user
    /// (accepted with a warning; use --api-token-file or $SGSWITCH_API_TOKEN)
    #[arg(
        long,
        value_name = "TOKEN",
        hide = true,
        conflicts_with = "api_no_auth"
    )]
    pub api_token: Option<String>,

    /// Serve the API without a token, on a loopback address only (tests, demos): every
    /// local user can then change the policy; ports with a backend cannot be created
    /// through the API
    #[arg(long)]
    pub api_no_auth: bool,

    /// Do not serve the management API
    #[arg(long, conflicts_with_all = ["api", "api_token", "api_token_file", "api_no_auth"])]
    pub no_api: bool,

    /// Keep the state changed through the API here (state.json), so it survives restarts
    #[arg(long, value_name = "DIR", conflicts_with = "store")]
    pub state_dir: Option<PathBuf>,

    /// The shared store (scale-out: many hosts, one policy)
    #[command(flatten)]
    pub store: StoreArgs,

    /// This host's name in the shared store (ports bound to it with binding:host_id are
    /// the ones it plugs in); needs --store (default: the config's [overlay] host; both
    /// given must be the same name)
    #[arg(long, value_name = "NAME", requires = "store", value_parser = parse_host_id)]
    pub host_id: Option<String>,

    /// This host's VTEP (its underlay address), published in the shared store's
    /// hosts/HOST so that the other hosts reach its ports; overrides the config's
    /// [overlay] vtep. Neither: no overlay (its ports are unreachable from other hosts)
    #[arg(long, value_name = "ADDR", requires = "store")]
    pub vtep: Option<std::net::IpAddr>,
}

/// A `--host-id`: 1..64 characters of `[A-Za-z0-9._-]` (a key path element).
pub fn parse_host_id(s: &str) -> Result<String, String> {
    sgswitch::policy::validate::check_host(s)
        .map(|()| s.to_string())
        .map_err(|r| format!("invalid host name {s:?}: {r}"))
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
            log_limits: from_config.log_limits,
            flood: from_config.flood,
        }
    }
}

/// The signals `run` reacts to, as flags that the main loop polls every 20 ms; the
/// handlers (signal-hook's, async-signal-safe) only set them.
struct Signals {
    /// SIGHUP: re-read the config.
    reload: Arc<AtomicBool>,
    /// SIGUSR1: print the counters.
    report: Arc<AtomicBool>,
    /// SIGINT, SIGTERM: stop.
    stop: Arc<AtomicBool>,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
        use signal_hook::flag::register;
        let s = Signals {
            reload: Arc::default(),
            report: Arc::default(),
            stop: Arc::default(),
        };
        register(SIGHUP, Arc::clone(&s.reload))?;
        register(SIGUSR1, Arc::clone(&s.report))?;
        register(SIGINT, Arc::clone(&s.stop))?;
        register(SIGTERM, Arc::clone(&s.stop))?;
        Ok(s)
    }
}

/// Run `sgswitch run`.
pub fn run(args: &RunArgs) -> ExitCode {
    // The config first: its [logging] level is the last in line (flag > RUST_LOG > file).
    let config = match load_or_report(&args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let rust_log = std::env::var("RUST_LOG").ok();
    let from_file = config
        .logging
        .level
        .as_deref()
        .and_then(|l| logging::parse_level(l).ok());
    let (level, warning) = logging::level(args.log, rust_log.as_deref(), from_file);
    logging::init(level, args.log_format, args.log_timestamps);
    if let Some(w) = warning {
        warn!("{w}");
    }
    if args.store.store.is_some() {
        return run_shared(args, &config);
    }
    // The store is the authoritative state: the config seeds it on first launch; with
    // --state-dir, later launches start from the saved state (API changes survive).
    let store = match Store::open(args.state_dir.as_deref(), &config) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            error!("{e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let model = store.model();
    let with_backend = model.ports.iter().filter(|p| p.backend.is_some()).count();
    let mut settings = args.switch_settings(&config.switch);
    settings.log_limits = config.logging.limits();
    let workers = settings.worker_count(&model);
    let signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            error!("cannot install signal handlers: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let local_vtep = model
        .local_host
        .as_deref()
        .and_then(|h| model.host(h))
        .map(|h| h.vtep);
    let Ok(underlay) = open_underlay(config.overlay.vtep.or(local_vtep), &config, &settings) else {
        return ExitCode::from(EXIT_INVALID);
    };
    let switch = match Switch::start_with(&model, &settings, underlay) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            error!("{e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    control::connect(&store, switch.clone());
    // The packet log: records of every worker, named and rate limited, to [logging] file.
    let packet_log = match PacketLog::start(&config.logging, Some(store.clone())) {
        Ok(l) => Arc::new(l),
        Err(e) => {
            error!("{e}");
            switch.shutdown();
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let pump = match packet_log::live::attach(&switch, &packet_log, &model) {
        Ok(p) => p,
        Err(e) => {
            error!("cannot start the packet log: {e}");
            switch.shutdown();
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let ops = Arc::new(RunOps::new(
        &args.config,
        store.clone(),
        switch.clone(),
        args.log_format,
    ));
    if args.log.is_none() && rust_log.as_deref().is_none_or(|r| r.trim().is_empty()) {
        // The file's level is in force: a reload that changes it applies it.
        ops.follow_file_level(config.logging.level.clone());
    }
    let api = if args.no_api {
        None
    } else {
        let addr = args
            .api
            .unwrap_or_else(|| DEFAULT_ADDR.parse().expect("valid default"));
        let token = match api_token(args, &config) {
            Ok(t) => t,
            Err(e) => {
                error!("management API: {e}");
                switch.shutdown();
                return ExitCode::from(EXIT_INVALID);
            }
        };
        if token.is_none() {
            warn!(
                "management API on {addr} WITHOUT authentication (--api-no-auth): every local \
                 user can change the policy; ports with a backend cannot be created through it"
            );
        }
        match ApiServer::start_operated(addr, token, store.clone(), switch.clone(), ops.clone()) {
            Ok(h) => Some(h),
            Err(e) => {
                error!("management API on {addr}: {e}");
                switch.shutdown();
                return ExitCode::from(EXIT_INVALID);
            }
        }
    };
    let ready = format!(
        "ready ({} ports, {with_backend} with a backend, {workers} worker{}, policy epoch {}{})",
        model.ports.len(),
        if workers == 1 { "" } else { "s" },
        switch.epoch(),
        match &api {
            Some(h) => format!(", API on http://{}", h.local_addr()),
            None => String::new(),
        }
    );
    info!(target: STATUS, "{ready}");
    notify::tell(&format!("READY=1\n{}", notify::status_line(&ready)));
    while !signals.stop.load(Ordering::SeqCst) {
        std::thread::sleep(std::time::Duration::from_millis(20));
        if signals.reload.swap(false, Ordering::SeqCst) {
            // `reload` tells systemd (RELOADING=1, READY=1) itself, for the API's too.
            ops.reload("signal");
        }
        if signals.report.swap(false, Ordering::SeqCst) {
            logging::counters(args.log_format, &format_report(&switch.report()));
        }
    }
    info!("stopping");
    notify::tell("STOPPING=1");
    if let Some(h) = api {
        h.shutdown();
    }
    let report = switch.shutdown();
    // The workers are stopped: a last drain of their queues, then the writer's.
    drop(pump);
    packet_log.flush();
    logging::counters(args.log_format, &format_report(&report));
    ExitCode::from(EXIT_OK)
}

/// The API's token, the first of: `--api-token` (warned), the file `--api-token-file`,
/// `$SGSWITCH_API_TOKEN`, the file `[api] token_file`, the default file
/// ([`token::default_token_file`]); a file is read, or created with a new token.
/// `None` with `--api-no-auth`.
fn api_token(args: &RunArgs, config: &config::Config) -> Result<Option<String>, String> {
    resolve_token(
        args.api_token.as_deref(),
        args.api_token_file.as_deref(),
        args.api_no_auth,
        config,
    )
}

/// [`api_token`] from the flags' values (`sgswitch api` has the same flags).
pub(super) fn resolve_token(
    api_token: Option<&str>,
    api_token_file: Option<&std::path::Path>,
    api_no_auth: bool,
    config: &config::Config,
) -> Result<Option<String>, String> {
    if api_no_auth {
        return Ok(None);
    }
    if let Some(t) = api_token {
        warn!(
            "--api-token puts the token on the command line, where every local user can \
             read it (ps); use --api-token-file or ${}",
            token::TOKEN_ENV
        );
        return check_token(t, "--api-token").map(Some);
    }
    if api_token_file.is_none() {
        if let Ok(t) = std::env::var(token::TOKEN_ENV) {
            info!("API token from ${}", token::TOKEN_ENV);
            return check_token(&t, &format!("${}", token::TOKEN_ENV)).map(Some);
        }
    }
    let path = api_token_file
        .map(std::path::Path::to_path_buf)
        .or_else(|| config.api.token_file.clone())
        .unwrap_or_else(token::default_token_file);
    let (t, created) = token::load_or_create(&path).map_err(|e| e.to_string())?;
    info!(
        "API token {} {} (send it as X-Auth-Token; sgswitch's client commands read it)",
        if created { "created in" } else { "read from" },
        path.display()
    );
    Ok(Some(t))
}

fn check_token(t: &str, from: &str) -> Result<String, String> {
    let t = t.trim();
    if token::valid_token(t) {
        Ok(t.to_string())
    } else {
        Err(format!("{from}: not a token (one word of printable ASCII)"))
    }
}

/// The overlay's underlay (`[overlay] underlay`), opened on its netdev with the local
/// VTEP `vtep`; `Ok(None)` without one. An underlay without a VTEP, or one that does not
/// open, is an error (logged). It is opened once: a reload does not change it.
fn open_underlay(
    vtep: Option<std::net::IpAddr>,
    config: &config::Config,
    settings: &SwitchSettings,
) -> Result<Option<UnderlayGroup>, ()> {
    let Some(u) = &config.overlay.underlay else {
        return Ok(None);
    };
    let Some(vtep) = vtep else {
        error!(
            "[overlay] underlay {} needs the local VTEP: [overlay] vtep, or this host's hosts[].vtep",
            u.ifname
        );
        return Err(());
    };
    let burst = settings.burst.clamp(1, sgswitch::port::MAX_BURST);
    match UnderlayGroup::open(&u.ifname, vtep, burst) {
        Ok(g) => {
            info!(ifname = %u.ifname, %vtep, "overlay underlay opened");
            Ok(Some(g))
        }
        Err(e) => {
            error!("[overlay] underlay: {e}");
            Err(())
        }
    }
}

/// `sgswitch run --store URL --host-id NAME [--vtep ADDR]`: the policy comes from the
/// shared store through the host agent ([`sgswitch::control::shared::agent`]), which
/// publishes the VTEP (`--vtep`, else the config's `[overlay] vtep`, else none) in
/// `hosts/NAME`; the switch starts with
/// no port, and the agent applies this host's model (the ports bound to it, their groups
/// and networks, the remote groups' members) as it arrives, keeping the last good one
/// while the store is away. This version serves no management API itself: serve it with
/// `sgswitch api --store URL` (any host); the config file gives only the switch settings
/// and logging.
fn run_shared(args: &RunArgs, config: &config::Config) -> ExitCode {
    let host = match shared_host(
        args.host_id.as_deref(),
        config.model.local_host.as_deref(),
        &args.config.display().to_string(),
    ) {
        Ok(h) => h,
        Err(e) => {
            error!("{e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let (kv, keys) = match args.store.open() {
        Ok(Some(s)) => s,
        Ok(None) => return ExitCode::from(EXIT_INVALID),
        Err(e) => {
            error!("{e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let mut settings = args.switch_settings(&config.switch);
    settings.log_limits = config.logging.limits();
    let signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            error!("cannot install signal handlers: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let Ok(underlay) = open_underlay(args.vtep.or(config.overlay.vtep), config, &settings) else {
        return ExitCode::from(EXIT_INVALID);
    };
    let switch = match Switch::start_with(&Model::default(), &settings, underlay) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            error!("{e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let opts = AgentOptions {
        vtep: args.vtep.or(config.overlay.vtep),
        ..AgentOptions::default()
    };
    let agent = match Agent::start(kv.clone(), keys, &host, switch.clone(), opts) {
        Ok(a) => a,
        Err(e) => {
            error!("{e}");
            switch.shutdown();
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let ready = format!(
        "ready (host {host}, store {}: the policy comes from the store; its API: sgswitch api --store)",
        kv.describe()
    );
    info!(target: STATUS, "{ready}");
    notify::tell(&format!("READY=1\n{}", notify::status_line(&ready)));
    let mut seen = (0, 0, Health::Connected);
    while !signals.stop.load(Ordering::SeqCst) {
        std::thread::sleep(std::time::Duration::from_millis(20));
        if signals.report.swap(false, Ordering::SeqCst) {
            logging::counters(args.log_format, &format_report(&switch.report()));
        }
        let s = agent.stats();
        if (s.models_applied, s.apply_failures, s.health.clone()) != seen {
            match (&s.health, s.errors.first()) {
                (Health::Unreachable { error, .. }, _) => {
                    warn!("the store is unreachable ({error}): the last policy stays")
                }
                (_, Some(e)) => warn!(
                    "store revision not applied, the previous policy stays: {} {}",
                    e.object, e.message
                ),
                _ => info!(
                    "applied store revision {} ({} models, last in {} us)",
                    s.applied_revision, s.models_applied, s.last_apply_us
                ),
            }
            seen = (s.models_applied, s.apply_failures, s.health);
        }
    }
    info!("stopping");
    notify::tell("STOPPING=1");
    drop(agent);
    let report = switch.shutdown();
    logging::counters(args.log_format, &format_report(&report));
    ExitCode::from(EXIT_OK)
}

/// This host's name with a shared store: `--host-id`, else the config's `[overlay] host`
/// (the same setting: the host whose ports this switch plugs in, the model's
/// `local_host`). Both given and different is an error naming both; neither is an error
/// too.
fn shared_host(flag: Option<&str>, file: Option<&str>, path: &str) -> Result<String, String> {
    match (flag, file) {
        (Some(f), Some(c)) if f != c => Err(format!(
            "--host-id {f} and [overlay] host = {c:?} in {path} name different hosts; they \
             are one setting (this switch's host name): give one, or the same name in both"
        )),
        (Some(h), _) | (None, Some(h)) => Ok(h.to_string()),
        (None, None) => Err(
            "--store needs this host's name (the ports' binding:host_id): --host-id NAME, \
             or [overlay] host in the config"
                .to_string(),
        ),
    }
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
                log_limits: Default::default(),
                flood: Default::default(),
            }
        );
        assert!(run_args(&["--no-pin"]).switch_settings(&file).no_pin);
        // Not given on the command line: 0 (automatic) stays for worker_count.
        let auto = run_args(&[]).switch_settings(&SwitchSettings::default());
        assert_eq!(auto.workers, 0);
    }

    #[test]
    fn the_host_name_has_one_source_of_truth() {
        assert_eq!(shared_host(Some("h1"), None, "c.toml").unwrap(), "h1");
        assert_eq!(shared_host(None, Some("h1"), "c.toml").unwrap(), "h1");
        assert_eq!(shared_host(Some("h1"), Some("h1"), "c.toml").unwrap(), "h1");
        let e = shared_host(Some("h2"), Some("h1"), "c.toml").unwrap_err();
        assert!(
            e.contains("--host-id h2") && e.contains("[overlay] host = \"h1\" in c.toml"),
            "{e}"
        );
        assert!(shared_host(None, None, "c.toml")
            .unwrap_err()
            .contains("--host-id NAME"));
    }
}
