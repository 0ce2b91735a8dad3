//! The state file: its format, and loading and writing it atomically (see "Persistence"
//! in the `store` module doc).
//!
//! Owns: `DIR/state.json` and its siblings, the header line, the checksum and the JSON
//! payload. May not touch: the committed state (it reads a `State` to write it and
//! returns a fresh one on load).
//!
//! # Format
//! The payload is `{"model": <ModelSpec>, "meta": <Meta>}`, both serialised by their
//! serde derives: the model as the spec that validates back to it
//! ([`super::to_spec::model_to_spec`]; the serde form of `policy::spec` is this file's),
//! re-validated with `validate_model` on load, so a file that decodes but breaks a
//! Neutron rule is refused like a corrupt one. The derives replaced a hand-written
//! serde mirror of the spec; `tests/fixtures/state-v1` is a directory written by that
//! older code, which still loads and re-encodes to the same bytes. Rejected option: the
//! config TOML writer — correct, but 45 ms for 10,000 rules and 10,000 ports, on every
//! change.
//!
//! The checksum is FNV-1a (eight lines here): it detects torn and bit-flipped files, it
//! is not an integrity MAC, and a crate would add a dependency for no gain.
//!
//! Depends on: `policy` (the spec, `validate_model`) and its siblings `state`, `to_spec`,
//! `error`.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::StoreError;
use super::state::{Meta, State};
use super::to_spec::model_to_spec;
use crate::policy::spec::ModelSpec;
use crate::policy::validate;

/// Name of the state file inside the state directory.
pub const STATE_FILE: &str = "state.json";
/// Name of the last good state file (the one before the latest write).
pub const BACKUP_FILE: &str = "state.json.bak";
const TEMP_FILE: &str = "state.json.tmp";
const BACKUP_TEMP_FILE: &str = "state.json.bak.tmp";
const RESTORE_TEMP_FILE: &str = "state.json.restore.tmp";
const HEADER_MAGIC: &str = "sgswitch-state";
const FORMAT_VERSION: u32 = 1;

/// The payload as written (borrows the meta).
#[derive(Serialize)]
struct PersistedRef<'a> {
    model: ModelSpec,
    meta: &'a Meta,
}

/// The payload as read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Persisted {
    model: ModelSpec,
    meta: Meta,
}

/// FNV-1a, 64 bit: detects torn and bit-flipped files (not an integrity MAC).
fn fnv1a64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Serialise a state to the file format (header line + JSON payload).
pub(super) fn encode_state(state: &State) -> Result<Vec<u8>, String> {
    let persisted = PersistedRef {
        model: model_to_spec(&state.model),
        meta: &state.meta,
    };
    let payload = serde_json::to_vec(&persisted).map_err(|e| e.to_string())?;
    let mut out = format!(
        "{HEADER_MAGIC} {FORMAT_VERSION} {} {:016x}\n",
        payload.len(),
        fnv1a64(&payload)
    )
    .into_bytes();
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Parse the file format back; the error is the reason the file is unusable.
pub(super) fn decode_state(bytes: &[u8]) -> Result<State, String> {
    let nl = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("no header line (empty or truncated file)")?;
    let header = std::str::from_utf8(&bytes[..nl]).map_err(|_| "header is not text")?;
    let parts: Vec<&str> = header.split(' ').collect();
    if parts.len() != 4 || parts[0] != HEADER_MAGIC {
        return Err(format!(
            "not an sgswitch state file (header {:?})",
            header.chars().take(60).collect::<String>()
        ));
    }
    if parts[1] != FORMAT_VERSION.to_string() {
        return Err(format!("unsupported format version {}", parts[1]));
    }
    let len: usize = parts[2].parse().map_err(|_| "bad length in header")?;
    let sum = u64::from_str_radix(parts[3], 16).map_err(|_| "bad checksum in header")?;
    let payload = &bytes[nl + 1..];
    if payload.len() != len {
        return Err(format!(
            "length mismatch: header says {len} bytes, file has {} (torn write?)",
            payload.len()
        ));
    }
    if fnv1a64(payload) != sum {
        return Err("checksum mismatch (the file was altered or damaged)".into());
    }
    let p: Persisted =
        serde_json::from_slice(payload).map_err(|e| format!("invalid JSON payload: {e}"))?;
    let model = validate::validate_model(&p.model)
        .map_err(|e| format!("the stored model is invalid: {e}"))?;
    let state = State {
        model,
        meta: p.meta,
        live_hosts: None,
    };
    state.check()?;
    Ok(state)
}

/// Load `dir/state.json`: `Ok(None)` when there is none.
pub(super) fn load_state(dir: &Path) -> Result<Option<State>, StoreError> {
    let file = dir.join(STATE_FILE);
    let backup = dir.join(BACKUP_FILE);
    let bytes = match fs::read(&file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if backup.exists() {
                return Err(StoreError::Corrupt {
                    file,
                    backup,
                    reason: "the file is missing but a backup exists".into(),
                });
            }
            return Ok(None);
        }
        Err(e) => {
            return Err(StoreError::Io {
                file,
                message: format!("cannot read the state file: {e}"),
            })
        }
    };
    decode_state(&bytes)
        .map(Some)
        .map_err(|reason| StoreError::Corrupt {
            file,
            backup,
            reason,
        })
}

/// Why the state file could not be written: the step, the file and the OS error
/// (`cannot write /x/state.json.tmp: No space left on device (os error 28)`).
#[derive(Debug, thiserror::Error)]
#[error("cannot {step} {}: {error}", .file.display())]
pub struct PersistError {
    /// `create`, `write`, `sync`, `link`, `rename` (the commit), `sync directory`.
    pub step: &'static str,
    pub file: PathBuf,
    #[source]
    pub error: std::io::Error,
}

impl PersistError {
    /// The disk or the user's quota is full (`ENOSPC`, `EDQUOT`): the API answers
    /// `StorageFull`.
    pub fn storage_full(&self) -> bool {
        matches!(self.error.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
    }
}

/// A write of the state file in progress (see "Persistence" in the `store` module doc):
/// [`prepare_write`] put the new state in `state.json.tmp`, synced, and made the
/// committed file the backup; nothing a reader or a restart sees has changed until
/// [`PendingWrite::commit`]. Dropped uncommitted, it removes the temp file (a failed
/// or refused change leaves no trace and gives the space back).
#[derive(Debug)]
pub(super) struct PendingWrite {
    dir: PathBuf,
    had_file: bool,
    committed: bool,
}

/// Why [`PendingWrite::commit`] failed, and where that left the state file.
#[derive(Debug)]
pub(super) struct CommitError {
    pub(super) error: PersistError,
    /// The new state is `state.json` (the directory could not be synced and the
    /// previous file could not be put back either).
    pub(super) new_file_in_place: bool,
}

/// Step 1 of an atomic write: everything that needs space or can fail on a full disk,
/// before anything is visible. The previous backup is replaced first (a hard link of
/// the committed file: no data copied), so the peak disk use is two copies of the
/// state, not three.
pub(super) fn prepare_write(dir: &Path, state: &State) -> Result<PendingWrite, PersistError> {
    let tmp = dir.join(TEMP_FILE);
    let file = dir.join(STATE_FILE);
    fn fail(step: &'static str, p: &Path) -> impl FnOnce(std::io::Error) -> PersistError {
        let file = p.to_path_buf();
        move |error| PersistError { step, file, error }
    }
    let bytes = encode_state(state).map_err(|e| fail("encode", &file)(std::io::Error::other(e)))?;
    let pending = PendingWrite {
        dir: dir.to_path_buf(),
        had_file: file.exists(),
        committed: false,
    };
    if pending.had_file {
        let bak_tmp = dir.join(BACKUP_TEMP_FILE);
        let _ = fs::remove_file(&bak_tmp);
        fault::hit("link")
            .and_then(|()| fs::hard_link(&file, &bak_tmp))
            .map_err(fail("link", &bak_tmp))?;
        fs::rename(&bak_tmp, dir.join(BACKUP_FILE)).map_err(fail("rename", &bak_tmp))?;
    }
    let mut f = File::create(&tmp).map_err(fail("create", &tmp))?;
    fault::hit("write")
        .and_then(|()| f.write_all(&bytes))
        .map_err(fail("write", &tmp))?;
    fault::hit("sync")
        .and_then(|()| f.sync_all())
        .map_err(fail("sync", &tmp))?;
    Ok(pending)
}

impl PendingWrite {
    /// Step 2: rename the temp file over `state.json` and sync the directory. If the
    /// rename fails nothing changed; if the directory cannot be synced, the previous
    /// file is put back (from the backup) so that an error still means "not saved".
    pub(super) fn commit(mut self) -> Result<(), CommitError> {
        let tmp = self.dir.join(TEMP_FILE);
        let file = self.dir.join(STATE_FILE);
        fault::hit("rename")
            .and_then(|()| fs::rename(&tmp, &file))
            .map_err(|error| CommitError {
                error: PersistError {
                    step: "rename",
                    file: tmp.clone(),
                    error,
                },
                new_file_in_place: false,
            })?;
        self.committed = true;
        let synced = fault::hit("sync directory").and_then(|()| sync_dir(&self.dir));
        let Err(error) = synced else { return Ok(()) };
        let error = PersistError {
            step: "sync directory",
            file: self.dir.clone(),
            error,
        };
        let restored = fault::hit("restore").and_then(|()| {
            if self.had_file {
                let back = self.dir.join(RESTORE_TEMP_FILE);
                let _ = fs::remove_file(&back);
                fs::hard_link(self.dir.join(BACKUP_FILE), &back)
                    .and_then(|()| fs::rename(&back, &file))
            } else {
                fs::remove_file(&file)
            }
        });
        Err(CommitError {
            error,
            new_file_in_place: restored.is_err(),
        })
    }
}

impl Drop for PendingWrite {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(self.dir.join(TEMP_FILE));
        }
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Write the state atomically in one go (first launch: there is no dataplane to keep in
/// step with the file).
pub(super) fn write_state(dir: &Path, state: &State) -> Result<(), PersistError> {
    prepare_write(dir, state)?.commit().map_err(|e| e.error)
}

/// Fault injection for the store's unit tests: `inject(step, errno)` makes the next
/// write step `step` (`link`, `write`, `sync`, `rename`, `sync directory`, and
/// `restore`: putting the previous file back after a failed directory sync) on this
/// thread fail with `errno`, as a full or failing disk would. Compiled out of the
/// binary.
#[cfg(test)]
pub(super) mod fault {
    use std::cell::RefCell;

    thread_local! {
        static NEXT: RefCell<Vec<(&'static str, i32)>> = const { RefCell::new(Vec::new()) };
    }

    pub(in crate::control::store) fn inject(step: &'static str, errno: i32) {
        NEXT.with(|n| n.borrow_mut().push((step, errno)));
    }

    pub(super) fn hit(step: &str) -> std::io::Result<()> {
        NEXT.with(|n| {
            let mut n = n.borrow_mut();
            match n.iter().position(|(s, _)| *s == step) {
                Some(i) => Err(std::io::Error::from_raw_os_error(n.remove(i).1)),
                None => Ok(()),
            }
        })
    }
}

#[cfg(not(test))]
mod fault {
    #[inline(always)]
    pub(super) fn hit(_step: &str) -> std::io::Result<()> {
        Ok(())
    }
}
