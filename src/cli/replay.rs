//! `sgswitch replay`: a capture through the pipeline, every frame's verdict printed.
//!
//! Owns: the replay command's arguments (`--apply-at S=FILE` parsing) and its exit code.
//! May not process frames itself: `runtime::replay` runs the capture through the same
//! pipeline as the live switch and prints the verdicts.

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
    use sgswitch::runtime::replay::{self, ReplayOptions};
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
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let result = replay::run(&config.model, &opts, &mut out);
    drop(out);
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
