//! The namespace lab: network namespaces acting as instances, veth pairs, the switch as a
//! process, traffic probes and the switch's drop counters — the one implementation behind
//! `sgswitch demo` and the live tests (`tests/common`).
//!
//! # What it owns
//! * [`cmd`]: running commands (`sh`, `sh_quiet`), the python interpreter, tool checks.
//! * [`netns`]: the [`Netns`](netns::Netns) and [`Link`](netns::Link) guards (removed on
//!   drop), killing what is left in a namespace, unique names for tests.
//! * [`proc`]: signals by process id, stopping with a grace period, the
//!   [`Proc`](proc::Proc) guard.
//! * [`topo`]: instances (a namespace, a veth or a tap, a MAC and addresses) and the
//!   temporary directory a topology keeps its files in.
//! * [`switch`]: `sgswitch run` as a child process (ready line, reload, SIGUSR1 counter
//!   dumps) and the parser of its drop counters.
//! * [`probe`]: ping, one-shot TCP/UDP probes and the echo server they talk to.
//!
//! # What it must not touch
//! It is test and demo infrastructure: the dataplane never uses it, and it uses nothing of
//! this crate — only `std`, `libc`, the system's tools (`ip`, `ping`, `ethtool`,
//! `python3`) and the `sgswitch` binary as a process (its command line, its log, signals).
//! Callers that know the library (the demo, the tests) pass what it would need from it,
//! e.g. the drop reason names to [`switch::parse_drops`].
//!
//! # Errors
//! Functions that can fail return [`Result`]: the demo reports the [`Error`] and cleans up;
//! `tests/common` wraps them with `.expect(..)`-style panics. Every error names the command,
//! file or process it is about. Guards never fail: their `Drop` ignores errors (the thing
//! may be gone already).

use std::fmt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

pub mod cmd;
pub mod netns;
pub mod probe;
pub mod proc;
pub mod switch;
pub mod topo;

/// What went wrong in the lab.
#[derive(Debug)]
pub enum Error {
    /// A command could not be started.
    Spawn {
        /// The command line.
        cmd: Vec<String>,
        source: std::io::Error,
    },
    /// A command ran and exited unsuccessfully.
    Failed {
        /// The command line.
        cmd: Vec<String>,
        /// Its standard error, as written.
        stderr: String,
    },
    /// A file or directory could not be read, written or created.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The switch exited before it printed `sgswitch: ready`.
    SwitchExited {
        status: ExitStatus,
        /// The switch's log (stderr) so far.
        log: String,
    },
    /// The switch did not print `sgswitch: ready` in time.
    SwitchNotReady {
        after: Duration,
        /// The switch's log (stderr) so far.
        log: String,
    },
    /// The switch did not print `sgswitch: reloaded` after SIGHUP.
    NotReloaded {
        /// The switch's log (stderr) so far.
        log: String,
    },
    /// A signal could not be sent: the process is gone.
    NoProcess { pid: u32 },
    /// A helper process did not report `ready`.
    NotStarted {
        /// What it is, e.g. "the echo server in NS".
        what: String,
    },
    /// The caller asked to stop (its interrupt check returned true).
    Interrupted,
}

/// The lab's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// The last 30 lines of `text`, each indented by four spaces.
pub fn indent_tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(30)..];
    tail.iter().map(|l| format!("    {l}\n")).collect()
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Spawn { cmd, source } => write!(f, "{}: {source}", cmd.join(" ")),
            Error::Failed { cmd, stderr } => {
                write!(f, "`{}` failed: {}", cmd.join(" "), stderr.trim())
            }
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::SwitchExited { status, log } => write!(
                f,
                "the switch exited ({status}) before it was ready:\n{}",
                indent_tail(log)
            ),
            Error::SwitchNotReady { after, log } => write!(
                f,
                "the switch did not print `sgswitch: ready` within {} s:\n{}",
                after.as_secs(),
                indent_tail(log)
            ),
            Error::NotReloaded { log } => write!(
                f,
                "no `sgswitch: reloaded` after SIGHUP:\n{}",
                indent_tail(log)
            ),
            Error::NoProcess { pid } => write!(f, "process {pid} is gone"),
            Error::NotStarted { what } => write!(f, "{what} did not start"),
            Error::Interrupted => f.write_str("interrupted"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Spawn { source, .. } | Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
