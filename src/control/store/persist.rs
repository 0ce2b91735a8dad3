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
use std::path::Path;

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

/// Write the state atomically (see the module doc).
pub(super) fn write_state(dir: &Path, state: &State) -> Result<(), String> {
    let bytes = encode_state(state)?;
    let tmp = dir.join(TEMP_FILE);
    let file = dir.join(STATE_FILE);
    let ctx = |what: &str, p: &Path, e: std::io::Error| format!("{what} {}: {e}", p.display());
    {
        let mut f = File::create(&tmp).map_err(|e| ctx("cannot create", &tmp, e))?;
        f.write_all(&bytes)
            .map_err(|e| ctx("cannot write", &tmp, e))?;
        f.sync_all().map_err(|e| ctx("cannot sync", &tmp, e))?;
    }
    if file.exists() {
        let bak_tmp = dir.join("state.json.bak.tmp");
        let _ = fs::remove_file(&bak_tmp);
        fs::hard_link(&file, &bak_tmp).map_err(|e| ctx("cannot link", &bak_tmp, e))?;
        fs::rename(&bak_tmp, dir.join(BACKUP_FILE))
            .map_err(|e| ctx("cannot rename", &bak_tmp, e))?;
    }
    fs::rename(&tmp, &file).map_err(|e| ctx("cannot rename", &tmp, e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ctx("cannot sync", dir, e))?;
    Ok(())
}
