//! The log of `sgswitch run`: one `tracing` subscriber on stderr for the binary's own
//! events and the library's (ports, runtime), set up once by [`init`].
//!
//! * **Level**: `--log LEVEL`, else `$RUST_LOG`, else the config's `[logging] level`,
//!   else `info`: the flag wins over the environment, which wins over the
//!   file (what a unit's `Environment=RUST_LOG=debug` expects). A level is `off`, `error`,
//!   `warn` (or `warning`), `info`, `debug` or `trace`, in any case. `--log bogus` is an
//!   error naming the valid levels (exit 2, as clap's own usage errors). A `$RUST_LOG`
//!   that is not one of them (an `env-filter` directive such as `sgswitch=debug`, set
//!   for some other program) is not fatal: the level of a `sgswitch=LEVEL` directive in
//!   it is taken, else it is ignored with a warning naming it.
//! * **At run time**: the level can be changed while the switch runs (admin-only
//!   `PUT /sgswitch/v1/log-level`, `sgswitch log-level LEVEL`): the filter sits behind a
//!   `tracing_subscriber::reload` handle ([`set_level`]); the change is logged at
//!   `info` (status target, so it shows at every level) with the previous level.
//! * **Status lines** (target [`STATUS`]: `ready (...)`, `reloaded (...)`, a level
//!   change) are shown at every level: scripts and tests wait for them.
//! * **Format** (`--log-format`): `text` writes each event as one line
//!   `TIMESTAMP LEVEL sgswitch: MESSAGE key=value ...` (RFC 3339 UTC timestamp, level
//!   padded to 5; the `sgswitch: MESSAGE` part is the line the switch always printed,
//!   which tests and scripts match as a substring). `json` writes one JSON object per
//!   event (`timestamp`, `level`, `message`, fields, `target`), from
//!   `tracing-subscriber`'s own JSON formatter: one line per event, what journald
//!   (`MESSAGE=`), Vector, Fluent Bit and Loki's promtail take as they are.
//! * **Timestamps** (`--log-timestamps auto|always|never`, text only): `auto` leaves them
//!   out when stderr is the journal (`$JOURNAL_STREAM` names stderr's device and inode,
//!   the test systemd documents): journald stamps every line itself, a second stamp only
//!   costs width. Under the journal each text line also starts with its syslog priority
//!   (`<3>` error, `<4>` warn, `<6>` info, `<7>` debug and trace), which journald turns
//!   into the entry's `PRIORITY` (`journalctl -p warning` then works), and the level
//!   word stays for people reading `journalctl -o cat`.
//!
//! The config's `[logging] level` is read at start (the table holds everything the
//! switch logs: its own log's level and the packet log's destination and rates); when
//! it decides the level (no flag, no `RUST_LOG`), a reload that changes it applies the
//! new one ([`super::reload`]); an API change lasts until then.
//!
//! Blocks of several lines — counter dumps (SIGUSR1, exit) and a bad config's problems
//! on reload — are written by [`counters`] and [`problems`]: as they are in text (scripts
//! and tests parse the dump's lines; the problems look as `check` prints them), as one
//! event with the block in its `text` field in JSON (so that every stderr line is then
//! one object).
//!
//! Owns: the subscriber (filter and its reload handle, formats, writer). May not be used
//! by the library: the library only emits events (`tracing` macros) and never installs
//! a subscriber (the API changes the level through `sgswitch run`'s operator hooks).
//!
//! # Crates: `tracing` + `tracing-subscriber`, without `env-filter`
//! Replaced: a hand-written `Level` enum, a `RUST_LOG` match and an `eprintln!`
//! closure in `run`; the library could not log at all. `tracing-subscriber` is used with
//! `default-features = false` and the features `fmt`, `std`, `json` (no `ansi`, no
//! `tracing-log`). Rejected: the `env-filter` feature, which adds `matchers`,
//! `regex-automata`, `regex-syntax`, `once_cell` and `thread_local` for per-target
//! directives that nobody asked for; a [`LevelFilter`] parsed here plus a [`Targets`]
//! filter for the status lines covers `--log` and `RUST_LOG` as they were.
//!
//! Measured on this machine (2 cores under other builds' load: CPU time is the figure
//! to trust). Compile cost = CPU (user+sys) of building the added crates on top of
//! sgswitch's existing dependencies; size = a stripped minimal binary that logs one
//! line (`codegen-units = 4`), so that the crate's share is visible:
//!
//! | | added crates | compile CPU | minimal binary, stripped |
//! |---|---|---:|---:|
//! | `eprintln!` (before) | — | — | 347,160 B |
//! | `fmt` layer, text | tracing, tracing-core, tracing-attributes, tracing-subscriber, sharded-slab, thread_local, once_cell, lazy_static, pin-project-lite | +10.1 s (with `json`) | 513,856 B (+167 KB) |
//! | + `json` formatter | tracing-serde | (in the line above) | 693,536 B (+180 KB) |
//! | + `env-filter` (rejected) | matchers, regex-automata, regex-syntax | +27.0 s (+16.9 s) | — |
//!
//! The `sgswitch` binary itself: see [`mod@super::run`]'s module doc for the whole-binary
//! figures of this change (tracing and signal-hook together).

use std::fmt;
use std::sync::OnceLock;

use clap::ValueEnum;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{reload, Layer, Registry};

/// Target of the status lines, shown at every level.
pub const STATUS: &str = "sgswitch::status";

/// The valid levels, as the error for a bad one lists them.
pub const LEVELS: &str = "off, error, warn, info, debug, trace";

/// `--log-format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One line per event: `TIMESTAMP LEVEL sgswitch: MESSAGE key=value ...`
    #[default]
    Text,
    /// One JSON object per event
    Json,
}

/// `--log-timestamps` (text format).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Timestamps {
    /// Off when stderr is the journal (`$JOURNAL_STREAM`), on otherwise
    #[default]
    Auto,
    /// Always
    Always,
    /// Never
    Never,
}

/// One level word (any case; `warning` for `warn`), or an error naming the valid ones.
pub fn parse_level(s: &str) -> Result<LevelFilter, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "off" => Ok(LevelFilter::OFF),
        "error" => Ok(LevelFilter::ERROR),
        "warn" | "warning" => Ok(LevelFilter::WARN),
        "info" => Ok(LevelFilter::INFO),
        "debug" => Ok(LevelFilter::DEBUG),
        "trace" => Ok(LevelFilter::TRACE),
        _ => Err(format!("unknown log level {s:?}; valid levels: {LEVELS}")),
    }
}

/// The level, from `--log` (already parsed), else `$RUST_LOG`, else `config`, else
/// `info` (see the module doc), and a warning to log once the subscriber is up when
/// `$RUST_LOG` was not usable.
pub fn level(
    arg: Option<LevelFilter>,
    env: Option<&str>,
    config: Option<LevelFilter>,
) -> (LevelFilter, Option<String>) {
    if let Some(l) = arg {
        return (l, None);
    }
    let fallback = config.unwrap_or(LevelFilter::INFO);
    let Some(env) = env.filter(|e| !e.trim().is_empty()) else {
        return (fallback, None);
    };
    if let Ok(l) = parse_level(env) {
        return (l, None);
    }
    // An env-filter directive list: take `sgswitch=LEVEL` if there is one.
    let ours = env.split(',').find_map(|d| {
        let (target, l) = d.trim().split_once('=')?;
        (target == "sgswitch")
            .then(|| parse_level(l).ok())
            .flatten()
    });
    match ours {
        Some(l) => (l, None),
        None => (
            fallback,
            Some(format!(
                "RUST_LOG={env:?} names no level for sgswitch (valid levels: {LEVELS}); \
                 using {fallback}"
            )),
        ),
    }
}

/// The filter of the installed subscriber, for [`set_level`].
static FILTER: OnceLock<reload::Handle<Targets, Registry>> = OnceLock::new();

fn filter(level: LevelFilter) -> Targets {
    Targets::new()
        .with_default(level)
        .with_target(STATUS, LevelFilter::INFO)
}

/// Whether stderr is the journal: `$JOURNAL_STREAM` is `DEVICE:INODE` of it.
fn stderr_is_journal() -> bool {
    let Ok(v) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = v.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    // SAFETY: fstat on fd 2 into a zeroed stat buffer we own.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(2, &mut st) } != 0 {
        return false;
    }
    st.st_dev == dev && st.st_ino == ino
}

/// Install the process's subscriber: events up to `level` (status lines always) on
/// stderr, in `format`. A second call changes nothing.
pub fn init(level: LevelFilter, format: LogFormat, stamps: Timestamps) {
    let (filter, handle) = reload::Layer::new(filter(level));
    let layer = match format {
        LogFormat::Text => {
            let journal = stderr_is_journal();
            let line = TextLine {
                timestamps: match stamps {
                    Timestamps::Auto => !journal,
                    Timestamps::Always => true,
                    Timestamps::Never => false,
                },
                priority: journal,
            };
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .event_format(line)
                .with_filter(filter)
                .boxed()
        }
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_filter(filter)
            .boxed(),
    };
    if tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer)).is_ok() {
        let _ = FILTER.set(handle);
    }
}

/// The level in force (`info` before [`init`]).
pub fn current_level() -> LevelFilter {
    FILTER
        .get()
        .and_then(|h| h.with_current(|t| t.default_level()).ok().flatten())
        .unwrap_or(LevelFilter::INFO)
}

/// Change the level of the running subscriber; returns the previous one. Logged as a
/// status line.
pub fn set_level(level: &str) -> Result<(LevelFilter, LevelFilter), String> {
    let new = parse_level(level)?;
    let h = FILTER.get().ok_or("no log subscriber installed")?;
    let old = current_level();
    h.reload(filter(new)).map_err(|e| e.to_string())?;
    tracing::info!(target: STATUS, "log level {new} (was {old})");
    Ok((old, new))
}

/// A counter dump: on stderr as it is (text), or one status event `counters` (JSON).
pub fn counters(format: LogFormat, text: &str) {
    match format {
        LogFormat::Text => eprint!("{text}"),
        LogFormat::Json => tracing::info!(target: STATUS, text, "counters"),
    }
}

/// A config's problems (one `FILE:LINE: path: message` line each): on stderr as they are
/// (text), or one error event `config problems` (JSON).
pub fn problems(format: LogFormat, text: &str) {
    match format {
        LogFormat::Text => eprintln!("{text}"),
        LogFormat::Json => tracing::error!(text, "config problems"),
    }
}

/// The text format: `[<PRIORITY>][TIMESTAMP ]LEVEL sgswitch: MESSAGE key=value ...`, one
/// line per event.
struct TextLine {
    timestamps: bool,
    /// A syslog priority prefix for journald (`<6>`).
    priority: bool,
}

/// The syslog priority journald reads from a line's `<N>` prefix.
fn syslog_priority(l: &Level) -> u8 {
    match *l {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

impl<S, N> FormatEvent<S, N> for TextLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = event.metadata().level();
        if self.priority {
            // journald takes `<N>` off the line: no padding after it.
            write!(writer, "<{}>{level} sgswitch: ", syslog_priority(level))?;
        } else {
            if self.timestamps {
                SystemTime.format_time(&mut writer)?;
                writer.write_char(' ')?;
            }
            write!(writer, "{level:>5} sgswitch: ")?;
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn levels_from_the_flag_then_the_environment_then_the_config() {
        assert_eq!(level(None, None, None), (LevelFilter::INFO, None));
        let debug = Some(LevelFilter::DEBUG);
        assert_eq!(level(debug, Some("error"), None).0, LevelFilter::DEBUG);
        assert_eq!(level(None, Some("warning"), debug).0, LevelFilter::WARN);
        assert_eq!(level(None, None, debug).0, LevelFilter::DEBUG);
        assert_eq!(
            level(None, Some("hyper=info,sgswitch=trace"), None),
            (LevelFilter::TRACE, None)
        );
        let (l, warning) = level(None, Some("hyper=debug"), None);
        assert_eq!(l, LevelFilter::INFO);
        assert!(warning.unwrap().contains("hyper=debug"));
        assert_eq!(parse_level("OFF"), Ok(LevelFilter::OFF));
        let e = parse_level("bogus").unwrap_err();
        assert!(e.contains("bogus") && e.contains(LEVELS), "{e}");
    }

    /// A writer into a shared buffer, for one test's local subscriber.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A status line, an info line and an error line through a subscriber at `error`.
    fn three_events(priority: bool) -> String {
        let buf = Buf::default();
        let out = buf.clone();
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(move || out.clone())
            .event_format(TextLine {
                timestamps: false,
                priority,
            })
            .with_filter(filter(LevelFilter::ERROR));
        let sub = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(sub, || {
            tracing::info!(target: STATUS, "ready (2 ports, 1 worker{})", "");
            tracing::info!("hidden at error");
            tracing::error!(port = "vm-a", "reload failed: {}", "x");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        text
    }

    #[test]
    fn journald_lines_start_with_their_priority() {
        assert_eq!(
            three_events(true),
            "<6>INFO sgswitch: ready (2 ports, 1 worker)\n<3>ERROR sgswitch: reload failed: x port=\"vm-a\"\n"
        );
    }

    #[test]
    fn text_lines_carry_the_level_and_status_passes_any_level() {
        let text = three_events(false);
        assert_eq!(
            text,
            " INFO sgswitch: ready (2 ports, 1 worker)\nERROR sgswitch: reload failed: x port=\"vm-a\"\n"
        );
    }
}
