//! `sgswitch export`: the current state (config + API changes saved in `--state-dir`)
//! written as a config file.
//!
//! Owns: the export command's arguments. May not read or write the state file itself:
//! `control::store` decides what the state is, `control::config` writes the TOML.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use sgswitch::control::config;

use super::{load_or_report, EXIT_INVALID, EXIT_OK};

/// Arguments of `sgswitch export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The config file the switch was started with (seeds the state on first launch)
    #[arg(short, long, value_name = "FILE")]
    pub config: PathBuf,

    /// The state directory of the switch (its state.json wins over the config's model)
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Write to FILE instead of standard output
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Run `sgswitch export`.
pub fn run(args: &ExportArgs) -> ExitCode {
    use sgswitch::control::store::Store;
    let config = match load_or_report(&args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let exported = match Store::export_from(args.state_dir.as_deref(), &config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sgswitch: export: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let text = config::to_toml_string(&exported);
    match &args.output {
        Some(path) => {
            if let Err(e) = std::fs::write(path, text) {
                eprintln!("sgswitch: export: {}: {e}", path.display());
                return ExitCode::from(EXIT_INVALID);
            }
        }
        None => print!("{text}"),
    }
    ExitCode::from(EXIT_OK)
}
