//! The demo's lock: one demo (or one `--clean`) at a time on a machine. The demo's names
//! (namespaces `sgs-demo-*`, links `sgsd-*`, the state directory) are fixed, so that the
//! README's commands and `--keep`'s hints work as printed; this lock is what keeps a second
//! demo, or a `--clean`, from trampling a running one.
//!
//! The lock is an exclusive `flock` on `/run/sgswitch-demo.lock` (beside the state
//! directory, which a demo replaces), held by the demo process for as long as it runs and
//! released by the kernel when it exits, also on SIGKILL: a crashed demo never leaves a
//! stale lock. The holder writes its pid into the file, so a refusal names it.
//!
//! Owns: the lock file and the refusal message. May not touch: the demo's resources
//! (`drive`, `clean`) or any process (it only reads the pid to name it).

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, Write as _};
use std::os::fd::AsRawFd as _;
use std::path::PathBuf;

/// The lock file: beside the state directory ([`super::drive::state_dir`]'s parent).
pub(super) fn lock_path() -> PathBuf {
    let dir = super::drive::state_dir();
    dir.with_file_name("sgswitch-demo.lock")
}

/// A held lock; dropping it (or the process ending) releases it.
pub(super) struct DemoLock {
    _file: File,
}

/// Take the lock for this process, or say who holds it: `Err` is the whole message,
/// naming the holder's pid and what to do.
pub(super) fn take(what: &str) -> Result<DemoLock, String> {
    take_at(&lock_path(), what)
}

/// [`take`] on the lock file `path`.
fn take_at(path: &std::path::Path, what: &str) -> Result<DemoLock, String> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    // SAFETY: flock on an fd this function owns; the result is checked.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r != 0 {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        let holder = holder.trim();
        let pid = if holder.is_empty() { "?" } else { holder };
        return Err(format!(
            "another sgswitch demo is running (pid {pid}, lock {}): {what} would collide with \
             it; wait for it to finish or stop it (kill {pid}: it removes what it created)",
            path.display()
        ));
    }
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = writeln!(file, "{}", std::process::id());
    Ok(DemoLock { _file: file })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_second_taker_is_refused_with_the_holders_pid() {
        // A lock file of this test's own (the real one may be a running demo's).
        let dir = std::env::temp_dir().join(format!("sgs-demo-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("demo.lock");
        let take = |what: &str| super::take_at(&path, what);
        let held = take("test").expect("a fresh lock");
        // flock locks belong to the open file: a second open in this process conflicts.
        let e = take("a second demo").err().expect("refused");
        assert!(
            e.contains(&format!("(pid {}, lock ", std::process::id())),
            "{e}"
        );
        assert!(e.contains("a second demo would collide"), "{e}");
        drop(held);
        assert!(take("again").is_ok(), "released on drop");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
