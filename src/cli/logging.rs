//! The log of `sgswitch run`: one `tracing` subscriber on stderr for the binary's own
//! events and the library's (ports, runtime), set up once by [`init`].
//!
//! * **Level**: `--log LEVEL`, else `$RUST_LOG`, else `info`; a level is `off`, `error`,
//!   `warn` (or `warning`), `info`, `debug` or `trace`, in any case; anything else (an
//!   `env-filter` directive such as `sgswitch=debug`) means `info`, as before `tracing`.
//! * **Status lines** (target [`STATUS`]: `ready (...)`, `reloaded (...)`) are shown at
//!   every level: scripts and tests wait for them, and `sgswitch reload` tells the user
//!   to look for the outcome on stderr.
//! * **Format** (`--log-format`): `text` writes each event as one line `sgswitch: MESSAGE`
//!   followed by its fields as ` key=value` (no time, no level: the lines the switch
//!   always printed, which tests and scripts match); `json` writes one JSON object per
//!   event (`timestamp`, `level`, `message`, fields, `target`), from
//!   `tracing-subscriber`'s own JSON formatter.
//!
//! Blocks of several lines — counter dumps (SIGUSR1, exit) and a bad config's problems
//! on reload — are written by [`counters`] and [`problems`]: as they are in text (scripts
//! and tests parse the dump's lines; the problems look as `check` prints them), as one
//! event with the block in its `text` field in JSON (so that every stderr line is then
//! one object).
//!
//! Owns: the subscriber (filter, formats, writer). May not be used by the library: the
//! library only emits events (`tracing` macros) and never installs a subscriber.
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

use clap::ValueEnum;
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// Target of the status lines, shown at every level.
pub const STATUS: &str = "sgswitch::status";

/// `--log-format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One line per event: `sgswitch: MESSAGE key=value ...`
    #[default]
    Text,
    /// One JSON object per event
    Json,
}

/// The level of `--log LEVEL`, else of `RUST_LOG`, else `info` (see the module doc).
pub fn level(arg: Option<&str>, env: Option<&str>) -> LevelFilter {
    match arg
        .or(env)
        .unwrap_or_default()
        .to_ascii_lowercase()
        .as_str()
    {
        "off" => LevelFilter::OFF,
        "error" => LevelFilter::ERROR,
        "warn" | "warning" => LevelFilter::WARN,
        "debug" => LevelFilter::DEBUG,
        "trace" => LevelFilter::TRACE,
        _ => LevelFilter::INFO,
    }
}

/// Install the process's subscriber: events up to `level` (status lines always) on
/// stderr, in `format`. A second call changes nothing.
pub fn init(level: LevelFilter, format: LogFormat) {
    let filter = Targets::new()
        .with_default(level)
        .with_target(STATUS, LevelFilter::INFO);
    let layer = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .event_format(TextLine)
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_filter(filter)
            .boxed(),
    };
    let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer));
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

/// The text format: `sgswitch: MESSAGE key=value ...`, one line per event.
struct TextLine;

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
        writer.write_str("sgswitch: ")?;
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
    fn levels_from_the_flag_then_the_environment() {
        assert_eq!(level(None, None), LevelFilter::INFO);
        assert_eq!(level(Some("DEBUG"), Some("error")), LevelFilter::DEBUG);
        assert_eq!(level(None, Some("warning")), LevelFilter::WARN);
        assert_eq!(level(None, Some("sgswitch=debug")), LevelFilter::INFO);
        assert_eq!(level(Some("off"), None), LevelFilter::OFF);
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

    #[test]
    fn text_lines_are_the_old_lines_and_status_passes_any_level() {
        let buf = Buf::default();
        let out = buf.clone();
        let filter = Targets::new()
            .with_default(LevelFilter::ERROR)
            .with_target(STATUS, LevelFilter::INFO);
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(move || out.clone())
            .event_format(TextLine)
            .with_filter(filter);
        let sub = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(sub, || {
            tracing::info!(target: STATUS, "ready (2 ports, 1 worker{})", "");
            tracing::info!("hidden at error");
            tracing::error!(port = "vm-a", "reload failed: {}", "x");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "sgswitch: ready (2 ports, 1 worker)\nsgswitch: reload failed: x port=\"vm-a\"\n"
        );
    }
}
