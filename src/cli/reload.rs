//! `sgswitch reload`: send SIGHUP to a running `sgswitch run` (found in `/proc` when no
//! `--pid` is given), which re-reads its config ([`mod@super::run`] handles the signal).
//!
//! Owns: finding the process and signalling it. May not touch the switch's state.

use std::process::ExitCode;

use clap::Args;

use super::{EXIT_INVALID, EXIT_OK};

/// Arguments of `sgswitch reload`.
#[derive(Args, Debug)]
pub struct ReloadArgs {
    /// PID of the `sgswitch run` process (default: the only one running)
    #[arg(long, value_name = "PID")]
    pub pid: Option<i32>,
}

/// PIDs of running `sgswitch run` processes (other than this one).
fn running_switches() -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
        let is_sgs = args.first().is_some_and(|a| a.ends_with(b"sgswitch"));
        if is_sgs && args.get(1) == Some(&&b"run"[..]) {
            out.push(pid);
        }
    }
    out
}

/// Run `sgswitch reload`.
pub fn run(args: &ReloadArgs) -> ExitCode {
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
    // SAFETY: kill(2) with a plain signal number has no memory-safety preconditions.
    let rc = unsafe { libc::kill(pid, libc::SIGHUP) };
    if rc != 0 {
        eprintln!(
            "sgswitch: reload: cannot signal process {pid}: {}",
            std::io::Error::last_os_error()
        );
        return ExitCode::from(EXIT_INVALID);
    }
    println!("sent SIGHUP to sgswitch run (pid {pid}); it logs the outcome on its stderr");
    ExitCode::from(EXIT_OK)
}
