//! The `sgswitch` binary: see [`cli`] for the commands and exit codes.
//!
//! Owns: the process entry point only: parse the command line and turn clap's outcome into
//! an exit code (help and version succeed, a usage error exits [`cli::EXIT_USAGE`]), then
//! hand over to [`cli::run`](fn@cli::run). May not touch: any command's work (it is
//! [`cli`]'s, and `sgswitch demo`'s is `demo`'s) or the library's internals: this binary
//! crate declares `cli` and `demo`, which reach the library as `sgswitch::…`, the top of
//! the layering (wire → … → control → CLI).

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
