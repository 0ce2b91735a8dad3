//! The operator endpoints of a running `sgswitch run`: reload, the log level, and the
//! record of the last reload, served when the program gave the API its [`Operator`]
//! hooks ([`super::ApiServer::start_operated`]):
//!
//! * `POST /sgswitch/v1/reload` (admin) — re-read the config file and apply it, as
//!   SIGHUP does, through the very same function of the program; 200
//!   `{"reload":{"ok":true,"epoch":N,...}}`, or 422 `ConfigInvalid` with every problem
//!   (`FILE:LINE: key.path: message`) in the message and as the list `problems`, the
//!   running policy unchanged;
//! * `GET /sgswitch/v1/log-level`, `PUT /sgswitch/v1/log-level {"level":"debug"}`
//!   (admin) — the level of the switch's own log, changed at run time;
//! * the last reload (by SIGHUP or the API: `seq`, time, outcome) is part of
//!   `GET /sgswitch/v1/status` ([`super::health`]), so that `sgswitch reload` can read
//!   the outcome of a SIGHUP it sent when it may not POST (a server without a token has
//!   no admin).
//!
//! Admin-only: the changes need the token (a server without one, `--api-no-auth`, has no
//! admin and answers 403): raising the level to `trace` is a way to fill a disk, and a
//! reload applies whatever the file now says.
//!
//! Owns: the hooks' trait and these routes. May not reload or log anything itself: the
//! program implements [`Operator`] (the library does not own the subscriber or know the
//! config path).

use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{error_body, Fail, Reply};
use super::{rfc3339_ms, Caller};

/// The outcome of one reload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReloadRecord {
    /// 1 for the first reload of the process, then +1.
    pub seq: u64,
    /// When it ended, in ms since the Unix epoch.
    pub at_ms: u64,
    /// `signal` or `api`.
    pub trigger: &'static str,
    /// The new policy epoch, or the problems (`FILE:LINE: key.path: message` lines, or
    /// one line for an error applying a valid file).
    pub outcome: Result<u64, Vec<String>>,
}

impl ReloadRecord {
    /// As JSON (`ok`, `epoch` or `problems`, `seq`, `at`, `trigger`).
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "seq": self.seq,
            "at": rfc3339_ms(self.at_ms),
            "trigger": self.trigger,
            "ok": self.outcome.is_ok(),
        });
        match &self.outcome {
            Ok(epoch) => v["epoch"] = json!(epoch),
            Err(p) => v["problems"] = json!(p),
        }
        v
    }
}

/// What `sgswitch run` lets the API do to it and tells it.
pub trait Operator: Send + Sync + 'static {
    /// Re-read the config file and apply it (what SIGHUP does); the record is also the
    /// new last reload.
    fn reload(&self) -> ReloadRecord;
    /// The last reload, if any.
    fn last_reload(&self) -> Option<ReloadRecord>;
    /// The level of the switch's own log (`info`...).
    fn log_level(&self) -> String;
    /// Change it; `(old, new)`, or why not (an unknown level, naming the valid ones).
    fn set_log_level(&self, level: &str) -> Result<(String, String), String>;
    /// The config file the switch reads.
    fn config_path(&self) -> String;
}

/// The body of `PUT /sgswitch/v1/log-level`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LevelBody {
    level: String,
}

fn forbidden(what: &str) -> Reply {
    Ok(error_body(
        403,
        "Forbidden",
        &format!("{what} needs the API token (this server has none: --api-no-auth)."),
    ))
}

/// Answer an operator request (`None`: not one of these paths).
pub(super) fn serve(
    ops: &dyn Operator,
    caller: Caller,
    method: &str,
    path: &str,
    body: &[u8],
) -> Option<Reply> {
    let reply = match (method, path) {
        ("POST", "/sgswitch/v1/reload") => {
            if !caller.admin {
                return Some(forbidden("Reloading the config"));
            }
            let r = ops.reload();
            match &r.outcome {
                Ok(_) => Ok((200, Some(json!({"reload": r.to_json()})))),
                Err(problems) => {
                    let (s, mut b) = error_body(422, "ConfigInvalid", &problems.join("\n"));
                    if let Some(b) = b.as_mut() {
                        b["reload"] = r.to_json();
                    }
                    Ok((s, b))
                }
            }
        }
        ("GET", "/sgswitch/v1/log-level") => {
            Ok((200, Some(json!({"log_level": {"level": ops.log_level()}}))))
        }
        ("PUT", "/sgswitch/v1/log-level") => {
            if !caller.admin {
                return Some(forbidden("Changing the log level"));
            }
            match serde_json::from_slice::<LevelBody>(body) {
                Err(e) => Err(Fail::bad(format!("Expected {{\"level\": LEVEL}}: {e}"))),
                Ok(b) => match ops.set_log_level(&b.level) {
                    Ok((old, new)) => Ok((
                        200,
                        Some(json!({"log_level": {"level": new, "previous": old}})),
                    )),
                    Err(e) => Err(Fail::bad(e)),
                },
            }
        }
        (_, "/sgswitch/v1/reload" | "/sgswitch/v1/log-level") => Ok(error_body(
            405,
            "HTTPMethodNotAllowed",
            &format!("Method {method} is not allowed here."),
        )),
        _ => return None,
    };
    Some(reply)
}
