//! The state directory's lock: one process at a time owns `DIR` (`sgswitch run
//! --state-dir DIR`).
//!
//! `DIR/lock` is locked with `flock(LOCK_EX | LOCK_NB)` for as long as the [`DirLock`]
//! lives (the `Store` holds it); a second process is refused with
//! [`StoreError::Locked`], naming the first one's PID. The kernel releases a `flock`
//! when its holder's descriptor closes, so the lock of a process that died (even by
//! `kill -9`) is simply taken over: the PID written in the file is informative only and
//! never decides anything. The descriptor is close-on-exec (as every file Rust opens),
//! so children do not inherit the lock.
//!
//! Readers that take no lock: `sgswitch export` (`Store::export_from`) reads
//! `state.json`, which is only ever replaced whole by a rename, so it sees one
//! committed state and may run beside the owner.
//!
//! Owns: `DIR/lock`. May not touch: the state files (`persist`) or the committed state.
//!
//! Depends on: `libc` (`flock`) and its sibling `error`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::error::StoreError;

/// Name of the lock file inside the state directory.
pub const LOCK_FILE: &str = "lock";

/// An exclusive lock on a state directory, released when dropped (or when the process
/// ends, however it ends).
#[derive(Debug)]
pub(super) struct DirLock {
    file: File,
}

impl DirLock {
    /// Lock `dir` (which must exist) for this process, writing its PID in `DIR/lock`.
    pub(super) fn acquire(dir: &Path) -> Result<DirLock, StoreError> {
        let path = dir.join(LOCK_FILE);
        let io = |what: &str, e: std::io::Error| StoreError::Io {
            file: path.clone(),
            message: format!("{what}: {e}"),
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io("cannot open the lock file", e))?;
        // SAFETY: flock on a descriptor this function owns; no memory is shared.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(StoreError::Locked {
                    dir: dir.to_path_buf(),
                    pid: holder_pid(&mut file),
                });
            }
            return Err(io("cannot lock", e));
        }
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .map_err(|e| io("cannot write the lock file", e))?;
        Ok(DirLock { file })
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // An empty file after a clean exit; the kernel releases the lock at close.
        let _ = self.file.set_len(0);
    }
}

/// The PID the lock's holder wrote, if it has written one yet.
fn holder_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    Read::by_ref(file).take(32).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// The message of [`StoreError::Locked`].
pub(super) fn locked_message(dir: &Path, pid: Option<u32>) -> String {
    let who = match pid {
        Some(pid) => format!("sgswitch pid {pid}"),
        None => "another sgswitch process".to_string(),
    };
    format!(
        "state directory {} is used by {who} (it holds {}); stop it first or give another --state-dir",
        dir.display(),
        PathBuf::from(dir).join(LOCK_FILE).display()
    )
}
