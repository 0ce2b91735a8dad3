//! Running the system's tools: a command's output or a typed [`Error`] naming it,
//! quiet commands for clean-up paths, the python interpreter, and which tools are missing.
//!
//! Owns only process spawning of short-lived commands; it knows nothing of namespaces or
//! the switch (callers build `ip netns exec ...` themselves or use
//! [`Netns::cmd`](super::netns::Netns::cmd)).

use std::path::Path;
use std::process::{Command, Stdio};

use super::{Error, Result};

/// The python interpreter: Debian's when present (the pyenv shim is slow to start).
pub fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_string()).collect()
}

/// Run `cmd` (stdin closed) and return its stdout; [`Error::Spawn`] or [`Error::Failed`]
/// (with its stderr) naming `args`, the command line it was built from.
fn output(cmd: &mut Command, args: &[&str]) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Spawn {
            cmd: owned(args),
            source: e,
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::Failed {
            cmd: owned(args),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// Run a command (`args[0]` with the rest as arguments) and return its stdout.
pub fn sh(args: &[&str]) -> Result<String> {
    output(Command::new(args[0]).args(&args[1..]), args)
}

/// Run a command, ignore the outcome and its output (clean-up paths).
pub fn sh_quiet(args: &[&str]) {
    let _ = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Whether a command runs and exits successfully (its output discarded).
pub fn works(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether this process runs as root (namespaces and links need it).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A tool the lab runs, and the Debian package that has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tool {
    pub name: &'static str,
    pub package: &'static str,
}

impl Tool {
    /// `name (package)`, or just the name when the package is called the same.
    pub fn describe(self) -> String {
        if self.name == self.package {
            self.name.to_string()
        } else {
            format!("{} ({})", self.name, self.package)
        }
    }
}

/// The tools the lab needs that do not work here: `ip`, `ping`, `python3` with `socket`
/// and `selectors`, and `ethtool` when `veth` (the lab turns checksum offload off on the
/// instance's end of a veth pair).
pub fn missing_tools(veth: bool) -> Vec<Tool> {
    let mut missing = Vec::new();
    if !works(&["ip", "-V"]) {
        missing.push(Tool {
            name: "ip",
            package: "iproute2",
        });
    }
    if !works(&["ping", "-V"]) {
        missing.push(Tool {
            name: "ping",
            package: "iputils-ping",
        });
    }
    if !works(&[python(), "-c", "import socket, selectors"]) {
        missing.push(Tool {
            name: "python3",
            package: "python3",
        });
    }
    if veth && !works(&["ethtool", "--version"]) {
        missing.push(Tool {
            name: "ethtool",
            package: "ethtool",
        });
    }
    missing
}
