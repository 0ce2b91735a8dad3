//! The `sgswitch` binary: see [`cli`] for the commands and exit codes.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod demo;

fn main() -> ExitCode {
    match cli::Cli::try_parse() {
        Ok(args) => cli::run(args),
        Err(e) => {
            // --help / --version print to stdout and succeed; usage errors exit 2.
            let _ = e.print();
            if e.use_stderr() {
                ExitCode::from(cli::EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}
