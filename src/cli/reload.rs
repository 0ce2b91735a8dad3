//! Reloading a running switch's config, both sides:
//!
//! * **In the switch** ([`RunOps`], `sgswitch run`'s [`Operator`] hooks): one function
//!   re-reads the config file and replaces the store's model with it (validate, compile,
//!   publish whole or nothing), for SIGHUP and for `POST /sgswitch/v1/reload` alike,
//!   and keeps the outcome as the *last reload* record (sequence number, time, trigger,
//!   new epoch or the problems) that `GET /sgswitch/v1/status` shows. A bad file's
//!   problems are logged and the running policy stays. Reloads are serialised. The same
//!   hooks change the log level ([`super::logging::set_level`]); a good reload whose
//!   `[logging] level` changed applies it too, when the file decides the level (neither
//!   `--log` nor `RUST_LOG` given).
//! * **`sgswitch reload`** (the client): the switch's answer is the outcome, so that a
//!   script or `systemctl reload` (`ExecReload`) sees a failure:
//!   1. the target: `--pid N` must be an `sgswitch run` (its `/proc/N/cmdline`), else
//!      refused; without `--pid`, the switch whose API answers at `--api`, else the only
//!      `sgswitch run` in `/proc`;
//!   2. through the API when it answers (and is that pid's; a 401 is an error, not a
//!      reason to fall back): `POST
//!      /sgswitch/v1/reload`; exit 0 with the new epoch, or exit 1 printing every
//!      problem as the switch found it (`FILE:LINE: key.path: message`);
//!   3. when the API may not reload (403: a server without a token has no admin), SIGHUP
//!      to the switch's pid, then the status endpoint's last-reload record is polled
//!      until its sequence number moves (10 s): the same exit codes and messages;
//!   4. when no API answers (`--no-api`, another address), SIGHUP only: exit 0 after
//!      sending, saying that the outcome is on the switch's log (the one case where a
//!      failed reload is not seen).
//!
//!   Rejected option: a result file in `/run/sgswitch` written by the switch after each
//!   reload: a second channel to keep in step with the API, a directory that a switch
//!   run by a user without `--state-dir` may not have, and one more thing for a package
//!   to clean; the API is already there, with the token.
//!
//! Owns: the reload function and the record, the process check, the client's choice of
//! channel. May not validate or apply policy itself: `control::config` and the store do.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{json, Value};
use tracing::{error, info};

use sgswitch::control::api::{Operator, ReloadRecord};
use sgswitch::control::config;
use sgswitch::control::http_client::{Client, ClientError};
use sgswitch::control::store::Store;
use sgswitch::runtime::switch::Switch;

use super::logging::{self, LogFormat, STATUS};
use super::stats::ApiOpts;
use super::{EXIT_INVALID, EXIT_OK};

/// Arguments of `sgswitch reload`.
#[derive(Args, Debug)]
pub struct ReloadArgs {
    /// PID of the `sgswitch run` process (default: the one whose API answers, else the
    /// only one running)
    #[arg(long, value_name = "PID")]
    pub pid: Option<i32>,
    #[command(flatten)]
    pub api: ApiOpts,
}

// ----- in the switch ------------------------------------------------------------------

/// `sgswitch run`'s operator hooks: reload and log level.
pub struct RunOps {
    config: PathBuf,
    store: Arc<Store>,
    switch: Arc<Switch>,
    format: LogFormat,
    /// The last reload; held for the whole of a reload (they are serialised).
    last: Mutex<Option<ReloadRecord>>,
    seq: AtomicU64,
    /// `Some(level of the file)` when the file's `[logging] level` decides (no `--log`,
    /// no `RUST_LOG`): a reload that changes it changes the level in force.
    file_level: Mutex<Option<Option<String>>>,
}

impl RunOps {
    pub fn new(config: &Path, store: Arc<Store>, switch: Arc<Switch>, format: LogFormat) -> Self {
        RunOps {
            // Absolute, for the log and `status` (the switch's working directory is its own).
            config: std::fs::canonicalize(config).unwrap_or_else(|_| config.to_path_buf()),
            store,
            switch,
            format,
            last: Mutex::new(None),
            seq: AtomicU64::new(0),
            file_level: Mutex::new(None),
        }
    }

    /// Let reloads apply a changed `[logging] level` (`level`: the file's at start).
    pub fn follow_file_level(&self, level: Option<String>) {
        *self.file_level.lock().unwrap_or_else(|p| p.into_inner()) = Some(level);
    }

    /// After a good reload: the file's level, if it decides and changed.
    fn apply_file_level(&self, new: Option<&str>) {
        let mut g = self.file_level.lock().unwrap_or_else(|p| p.into_inner());
        let Some(old) = g.as_mut() else { return };
        if old.as_deref() != new {
            // Valid (the config was read); back to the default when the key went.
            if let Err(e) = logging::set_level(new.unwrap_or("info")) {
                error!("cannot change the log level: {e}");
            }
            *old = new.map(str::to_string);
        }
    }

    /// Re-read the config file and replace the store's model with it; `trigger` is
    /// `signal` or `api`. A bad file's problems are logged ([`logging::problems`]) and
    /// the running policy stays.
    pub fn reload(&self, trigger: &'static str) -> ReloadRecord {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let path = &self.config;
        info!(trigger, "reloading {}", path.display());
        // systemd (Type=notify): reloading, then ready again whatever the outcome (the
        // running policy serves either way).
        super::notify::tell("RELOADING=1");
        let outcome = match config::load_file(path) {
            Err(errors) => {
                let text = errors.to_string();
                logging::problems(self.format, &text);
                error!(
                    "reload failed: {}: {} problem(s); the running policy is unchanged",
                    path.display(),
                    errors.len()
                );
                Err(text.lines().map(str::to_string).collect())
            }
            Ok(new) => match self.store.replace_model(&new.model) {
                Ok(()) => {
                    self.apply_file_level(new.logging.level.as_deref());
                    let epoch = self.switch.epoch();
                    info!(target: STATUS, "reloaded (policy epoch {epoch})");
                    Ok(epoch)
                }
                Err(e) => {
                    error!("reload failed: {e}; the running policy is unchanged");
                    Err(vec![format!("{}: {e}", path.display())])
                }
            },
        };
        let r = ReloadRecord {
            seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
            at_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            trigger,
            outcome,
        };
        let status = match &r.outcome {
            Ok(epoch) => format!("ready, policy epoch {epoch} (reloaded)"),
            Err(_) => format!(
                "ready, policy epoch {} (reload failed: the running policy stays)",
                self.switch.epoch()
            ),
        };
        super::notify::tell(&format!("READY=1\n{}", super::notify::status_line(&status)));
        *last = Some(r.clone());
        r
    }
}

impl Operator for RunOps {
    fn reload(&self) -> ReloadRecord {
        RunOps::reload(self, "api")
    }

    fn last_reload(&self) -> Option<ReloadRecord> {
        // Not while a reload runs (the API's reader would wait for it): the last one done.
        match self.last.try_lock() {
            Ok(g) => g.clone(),
            Err(_) => None,
        }
    }

    fn log_level(&self) -> String {
        logging::current_level().to_string()
    }

    fn set_log_level(&self, level: &str) -> Result<(String, String), String> {
        logging::set_level(level).map(|(old, new)| (old.to_string(), new.to_string()))
    }

    fn config_path(&self) -> String {
        self.config.display().to_string()
    }
}

// ----- the client ---------------------------------------------------------------------

/// The arguments of `/proc/PID/cmdline`, if readable.
fn cmdline(pid: i32) -> Option<Vec<Vec<u8>>> {
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        cmd.split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(<[u8]>::to_vec)
            .collect(),
    )
}

/// Whether process `pid` is an `sgswitch run`.
fn is_switch(pid: i32) -> bool {
    cmdline(pid).is_some_and(|args| {
        args.first().is_some_and(|a| a.ends_with(b"sgswitch"))
            && args.get(1).map(Vec::as_slice) == Some(&b"run"[..])
    })
}

/// PIDs of running `sgswitch run` processes (other than this one).
fn running_switches() -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
        .filter(|pid| *pid != me && is_switch(*pid))
        .collect()
}

/// Print a failed reload's problems; exit 1.
fn failed(problems: &[String]) -> ExitCode {
    for p in problems {
        eprintln!("{p}");
    }
    eprintln!("sgswitch: reload failed: the running policy is unchanged");
    ExitCode::from(EXIT_INVALID)
}

/// The exit of a reload with this record (from the API's answer).
fn report(r: &Value) -> ExitCode {
    if r["ok"].as_bool() == Some(true) {
        println!("reloaded (policy epoch {})", r["epoch"]);
        return ExitCode::from(EXIT_OK);
    }
    let problems: Vec<String> = r["problems"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    failed(&problems)
}

fn sighup(pid: i32) -> Result<(), String> {
    // SAFETY: kill(2) with a plain signal number has no memory-safety preconditions.
    if unsafe { libc::kill(pid, libc::SIGHUP) } != 0 {
        return Err(format!(
            "cannot signal process {pid}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// SIGHUP to `pid`, then wait for the status's last-reload record to move past `seq`.
fn sighup_and_wait(c: &Client, pid: i32, seq: u64) -> ExitCode {
    if let Err(e) = sighup(pid) {
        return super::stats::fail(format!("reload: {e}"));
    }
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
        if let Ok(s) = c.get(STATUS_PATH) {
            let r = &s["status"]["last_reload"];
            if r["seq"].as_u64().unwrap_or(0) > seq {
                return report(r);
            }
        }
    }
    super::stats::fail(format!(
        "reload: sent SIGHUP to pid {pid}, no outcome within 10 s; see the switch's log"
    ))
}

const STATUS_PATH: &str = "/sgswitch/v1/status";

/// Run `sgswitch reload`.
pub fn run(args: &ReloadArgs) -> ExitCode {
    if let Some(p) = args.pid {
        if !is_switch(p) {
            eprintln!("sgswitch: reload: process {p} is not an `sgswitch run`; nothing sent");
            return ExitCode::from(EXIT_INVALID);
        }
    }
    // The switch whose API answers, if it is the one asked for.
    let mut api = None;
    if let Ok(c) = args.api.client() {
        match c.get(STATUS_PATH) {
            Ok(s) => {
                let pid = s["status"]["pid"].as_i64().unwrap_or(0) as i32;
                let seq = s["status"]["last_reload"]["seq"].as_u64().unwrap_or(0);
                if pid > 0 && (args.pid.is_none() || args.pid == Some(pid)) {
                    api = Some((c, pid, seq));
                }
            }
            Err(ClientError::Status { status: 401, .. }) => {
                return super::stats::fail(format!(
                    "reload: the API at {} refused the token (give the switch's with \
                     --token-file); nothing sent",
                    args.api.api
                ));
            }
            Err(_) => {}
        }
    }
    if let Some((c, pid, seq)) = api {
        return match c.post("/sgswitch/v1/reload", &json!({})) {
            Ok(v) => report(&v["reload"]),
            Err(ClientError::Status {
                status: 422,
                message,
            }) => failed(&message.lines().map(str::to_string).collect::<Vec<_>>()),
            Err(ClientError::Status { status: 403, .. }) => sighup_and_wait(&c, pid, seq),
            Err(e) => super::stats::fail(format!("reload: {e}")),
        };
    }
    let pid = match args.pid {
        Some(p) => p,
        None => match running_switches().as_slice() {
            [p] => *p,
            [] => {
                eprintln!("sgswitch: reload: no `sgswitch run` process found");
                return ExitCode::from(EXIT_INVALID);
            }
            many => {
                let list: Vec<String> = many.iter().map(|p| p.to_string()).collect();
                eprintln!(
                    "sgswitch: reload: several `sgswitch run` processes ({}); choose one with --pid",
                    list.join(", ")
                );
                return ExitCode::from(EXIT_INVALID);
            }
        },
    };
    if let Err(e) = sighup(pid) {
        return super::stats::fail(format!("reload: {e}"));
    }
    println!(
        "sent SIGHUP to sgswitch run (pid {pid}); its API does not answer at {}, so the \
         outcome is only in its log",
        args.api.api
    );
    ExitCode::from(EXIT_OK)
}
