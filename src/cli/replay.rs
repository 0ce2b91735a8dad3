//! `sgswitch replay`: a capture through the pipeline, every frame's verdict printed.
//!
//! Owns: the replay command's arguments (`--apply-at S=FILE` parsing), its exit code and
//! its progress bar. May not process frames itself: `runtime::replay` runs the capture
//! through the same pipeline as the live switch and prints the verdicts, with the words of
//! `control::explain` (the same `sgswitch trace` prints).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use sgswitch::control::config;
use sgswitch::policy::Model;

use super::{load_or_report, EXIT_INVALID, EXIT_OK};

/// Arguments of `sgswitch replay`.
#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// The TOML config file the replay starts with
    #[arg(short, long, value_name = "FILE")]
    pub config: PathBuf,

    /// Port the frames arrive on, for pcap files and unnamed pcapng interfaces
    #[arg(long, value_name = "PORT")]
    pub in_port: Option<String>,

    /// Every frame arrives on --in-port, whatever its pcapng interface is named
    #[arg(long, requires = "in_port")]
    pub all_on_in_port: bool,

    /// Replace the config with FILE at S seconds after the first frame (repeatable; fractions allowed)
    #[arg(long = "apply-at", value_name = "SECONDS=FILE", value_parser = parse_apply_at)]
    pub apply_at: Vec<(f64, PathBuf)>,

    /// One JSON object per frame on stdout (the summary goes to stderr)
    #[arg(long)]
    pub json: bool,

    /// Write one pcap per port with what it would transmit, and dropped.pcapng
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,

    /// Print only the frames that were dropped somewhere (the summary counts every frame)
    #[arg(long)]
    pub only_dropped: bool,

    /// Print only the frames that come from, go to or are dropped at PORT
    #[arg(long, value_name = "PORT")]
    pub port: Option<String>,

    /// Write the dropped frames to FILE (pcapng), each commented with port, reason, why and the rule
    #[arg(long, value_name = "FILE")]
    pub dropped_out: Option<PathBuf>,

    /// The capture to replay (pcap or pcapng)
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,
}

fn parse_apply_at(s: &str) -> Result<(f64, PathBuf), String> {
    let (t, f) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}': expected SECONDS=FILE, e.g. 2.5=new.toml"))?;
    let secs: f64 = t
        .trim()
        .parse()
        .map_err(|_| format!("'{t}' is not a number of seconds"))?;
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("'{t}': seconds must be a non-negative number"));
    }
    if f.is_empty() {
        return Err(format!("'{s}': missing FILE after '='"));
    }
    Ok((secs, PathBuf::from(f)))
}

/// Run `sgswitch replay`.
pub fn run(args: &ReplayArgs) -> ExitCode {
    use sgswitch::control::explain::words::ReplayWords;
    use sgswitch::runtime::replay::{self, ReplayExplain, ReplayOptions};
    let config = match load_or_report(&args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let loader = |p: &std::path::Path| -> Result<Model, String> {
        config::load_file(p)
            .map(|c| c.model)
            .map_err(|e| format!("invalid config:\n{e}"))
    };
    let opts = ReplayOptions {
        input: args.input.clone(),
        in_port: args.in_port.clone(),
        force_in_port: args.all_on_in_port,
        apply_at: args.apply_at.clone(),
        json: args.json,
        out_dir: args.out_dir.clone(),
        loader: &loader,
    };
    let words = ReplayWords;
    let bar = progress::Bar::new();
    let show = |p| bar.show(p);
    let explain = ReplayExplain {
        only_dropped: args.only_dropped,
        port: args.port.clone(),
        dropped_out: args.dropped_out.clone(),
        narrator: Some(&words),
        progress: bar.is_on().then_some(&show as &dyn Fn(_)),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let result = replay::run_explained(&config.model, &opts, &explain, &mut out);
    drop(out);
    bar.finish();
    match result {
        Ok(summary) => {
            let r = if args.json {
                replay::print_summary(&summary, &mut std::io::stderr())
            } else {
                replay::print_summary(&summary, &mut std::io::stdout())
            };
            if let Err(e) = r {
                eprintln!("sgswitch: replay: {e}");
                return ExitCode::from(EXIT_INVALID);
            }
            if summary.failed_applies.is_empty() {
                ExitCode::from(EXIT_OK)
            } else {
                ExitCode::from(EXIT_INVALID)
            }
        }
        Err(e) => {
            eprintln!("sgswitch: replay: {e}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}

/// The progress bar of a replay: on stderr when it is a terminal, nothing otherwise (so
/// tests and pipes never see it). Drawn by `indicatif`, at most 10 times a second, from
/// the runtime's progress calls: the share of the capture read, frames and frames/s.
///
/// What `indicatif` 0.18.6 costs (default features off; it brings `console`,
/// `unicode-width`, `portable-atomic` and `unit-prefix`), measured on 2026-12-07 on this
/// 2-core machine while other builds ran (treat times as ±20 %): a clean release build of
/// a hello-world that draws one bar takes 22.9 s with it, 0.9 s without (so about 22 s of
/// the clean `sgswitch` build, most of it overlapping other crates on the second core);
/// the hello-world's stripped binary grows from 345,512 to 501,520 bytes (+156 kB).
/// Stripped `sgswitch` went from 4,095,992 to 4,277,880 bytes (+182 kB) with the bar and
/// the rest of the explaining replay. Rejected: a hand-drawn `\r` line (no rate limiting,
/// no width handling, more code of our own for a cosmetic feature).
mod progress {
    use std::io::IsTerminal;
    use std::time::Instant;

    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    use sgswitch::runtime::replay::ReplayProgress;

    pub struct Bar {
        bar: Option<ProgressBar>,
        start: Instant,
    }

    impl Bar {
        /// A bar on stderr if it is a terminal.
        pub fn new() -> Bar {
            let bar = std::io::stderr().is_terminal().then(|| {
                let b =
                    ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(10));
                b.set_style(
                    ProgressStyle::with_template(
                        "{bar:40} {percent:>3}%  {msg}  elapsed {elapsed}, eta {eta}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                b
            });
            Bar {
                bar,
                start: Instant::now(),
            }
        }

        pub fn is_on(&self) -> bool {
            self.bar.is_some()
        }

        pub fn show(&self, p: ReplayProgress) {
            let Some(b) = &self.bar else { return };
            b.set_length(p.total_bytes.max(1));
            b.set_position(p.bytes);
            let secs = self.start.elapsed().as_secs_f64().max(1e-3);
            b.set_message(format!(
                "{} frames, {:.0} frames/s",
                p.frames,
                p.frames as f64 / secs
            ));
        }

        /// Take the bar off the terminal.
        pub fn finish(&self) {
            if let Some(b) = &self.bar {
                b.finish_and_clear();
            }
        }
    }
}
