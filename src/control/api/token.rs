//! The API token on disk: where it lives by default, its generation at first start into
//! a file only its owner can read, the checks before the server trusts such a file, and
//! where the client commands look for it.
//!
//! # The file
//! [`default_token_file`]: `/run/sgswitch/api-token` for root (the directory 0700, the
//! file 0600); for another user `$XDG_RUNTIME_DIR/sgswitch/api-token`, else
//! `~/.sgswitch/api-token`. [`load_or_create`] (the server, `sgswitch run`) reads it, or
//! creates it with 32 random bytes from `/dev/urandom` as 64 hex digits: written to a
//! temporary file opened with `O_EXCL` and mode 0600, then hard-linked into place, so
//! that concurrent first starts agree on one token and nobody ever reads a half-written
//! one. Before trusting an existing file the server checks that it is a regular file
//! (not a symlink) owned by its own user with no permission for group or others, in a
//! directory that no other user can write; otherwise it refuses to start and says why.
//!
//! # The client side
//! [`client_token`]: `--token` on the command line (accepted with a warning: `ps` shows
//! it to every user), else `--token-file`, else `$SGSWITCH_API_TOKEN`, else the default
//! file if it exists (no token if it does not: a server run with `--api-no-auth`).
//!
//! Owns: token files and the token's text form. May not touch: the HTTP exchange (the
//! listener checks the header, `super`'s `authorized`).

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The environment variable the server and the client commands read a token from.
pub const TOKEN_ENV: &str = "SGSWITCH_API_TOKEN";

/// Root's default token file.
pub const ROOT_TOKEN_FILE: &str = "/run/sgswitch/api-token";

/// Why a token file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("API token file {path}: {message}")]
    File { path: PathBuf, message: String },
}

fn err(path: &Path, message: impl Into<String>) -> TokenError {
    TokenError::File {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// The default token file of this user (see the module doc).
pub fn default_token_file() -> PathBuf {
    if euid() == 0 {
        return PathBuf::from(ROOT_TOKEN_FILE);
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return Path::new(&d).join("sgswitch/api-token");
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(h) => Path::new(&h).join(".sgswitch/api-token"),
        None => PathBuf::from(ROOT_TOKEN_FILE),
    }
}

/// Whether `t` can be a token: printable ASCII without spaces (it goes in a header).
pub fn valid_token(t: &str) -> bool {
    !t.is_empty() && t.len() <= 4096 && t.bytes().all(|b| b.is_ascii_graphic())
}

/// The token in a file's text (surrounding whitespace ignored).
fn parse(path: &Path, text: &str) -> Result<String, TokenError> {
    let t = text.trim();
    if valid_token(t) {
        Ok(t.to_string())
    } else if t.is_empty() {
        Err(err(path, "is empty"))
    } else {
        Err(err(
            path,
            "does not hold a token (one line of printable ASCII without spaces)",
        ))
    }
}

/// Read a token file (the client side: no ownership checks, the server's are enough).
pub fn read_token_file(path: &Path) -> Result<String, TokenError> {
    let mut text = String::new();
    fs::File::open(path)
        .and_then(|f| f.take(8192).read_to_string(&mut text))
        .map_err(|e| err(path, e.to_string()))?;
    parse(path, &text)
}

/// The checks before the server trusts an existing token file.
fn check_private(path: &Path) -> Result<(), TokenError> {
    let m = fs::symlink_metadata(path).map_err(|e| err(path, e.to_string()))?;
    if !m.file_type().is_file() {
        return Err(err(path, "is not a regular file"));
    }
    if m.uid() != euid() {
        return Err(err(
            path,
            format!(
                "is owned by uid {}, not by this process's user ({})",
                m.uid(),
                euid()
            ),
        ));
    }
    let mode = m.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(err(
            path,
            format!(
                "is accessible to other users (mode {mode:04o}); `chmod 600 {}` or remove it to get a new token",
                path.display()
            ),
        ));
    }
    Ok(())
}

/// Create the token file's directory (0700) if needed; refuse one that other users can
/// write.
fn private_dir(dir: &Path) -> Result<(), TokenError> {
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| err(dir, format!("cannot create the directory: {e}"))),
        Err(e) => Err(err(dir, e.to_string())),
        Ok(m) if !m.is_dir() => Err(err(dir, "is not a directory")),
        Ok(m) => {
            let mode = m.permissions().mode();
            let sticky = mode & 0o1000 != 0;
            if m.uid() != euid() && m.uid() != 0 {
                Err(err(
                    dir,
                    format!("the directory is owned by uid {}", m.uid()),
                ))
            } else if mode & 0o022 != 0 && !sticky {
                Err(err(
                    dir,
                    format!(
                        "the directory is writable by other users (mode {:04o})",
                        mode & 0o7777
                    ),
                ))
            } else {
                Ok(())
            }
        }
    }
}

/// 32 random bytes as 64 hex digits.
fn new_token() -> std::io::Result<String> {
    let mut b = [0u8; 32];
    fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// The server's token from `path`, created (with a new random token) if it does not
/// exist; `true` with it when this call created it.
pub fn load_or_create(path: &Path) -> Result<(String, bool), TokenError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    private_dir(dir)?;
    if fs::symlink_metadata(path).is_ok() {
        check_private(path)?;
        return Ok((read_token_file(path)?, false));
    }
    let token = new_token().map_err(|e| err(path, format!("cannot make a token: {e}")))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "api-token".into());
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{seq}.tmp", std::process::id()));
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(format!("{token}\n").as_bytes())?;
            f.sync_all()
        });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(err(path, format!("cannot write {}: {e}", tmp.display())));
    }
    // A hard link never replaces: of concurrent first starts, one wins, the others read
    // its token.
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok((token, true)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            check_private(path)?;
            Ok((read_token_file(path)?, false))
        }
        Err(e) => Err(err(path, format!("cannot create it: {e}"))),
    }
}

/// A client's token, and a note for the user (a warning, or why none is sent).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ClientToken {
    pub token: Option<String>,
    pub note: Option<String>,
}

/// The client commands' token: `arg` (`--token`, warned), else `file` (`--token-file`),
/// else [`TOKEN_ENV`], else the default file when it exists.
pub fn client_token(arg: Option<&str>, file: Option<&Path>) -> Result<ClientToken, TokenError> {
    client_token_from(
        arg,
        file,
        std::env::var(TOKEN_ENV).ok(),
        &default_token_file(),
    )
}

fn client_token_from(
    arg: Option<&str>,
    file: Option<&Path>,
    env: Option<String>,
    default: &Path,
) -> Result<ClientToken, TokenError> {
    if let Some(t) = arg {
        return Ok(ClientToken {
            token: Some(t.to_string()),
            note: Some(format!(
                "warning: --token puts the token on the command line, where every local user \
                 can read it (ps); use --token-file or ${TOKEN_ENV}"
            )),
        });
    }
    if let Some(f) = file {
        return Ok(ClientToken {
            token: Some(read_token_file(f)?),
            note: None,
        });
    }
    if let Some(t) = env.filter(|t| !t.trim().is_empty()) {
        return Ok(ClientToken {
            token: Some(t.trim().to_string()),
            note: None,
        });
    }
    match read_token_file(default) {
        Ok(t) => Ok(ClientToken {
            token: Some(t),
            note: None,
        }),
        Err(_) if fs::symlink_metadata(default).is_err() => Ok(ClientToken::default()),
        Err(e) => Ok(ClientToken {
            token: None,
            note: Some(format!("{e}; sending no token")),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sgswitch-token-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn created_private_then_read_back() {
        let d = tempdir("create");
        let f = d.join("sub/api-token");
        let (t, created) = load_or_create(&f).unwrap();
        assert!(created);
        assert_eq!(t.len(), 64);
        assert!(t.bytes().all(|b| b.is_ascii_hexdigit()));
        let m = fs::metadata(&f).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
        assert_eq!(m.uid(), euid());
        assert_eq!(
            fs::metadata(d.join("sub")).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert_eq!(load_or_create(&f).unwrap(), (t.clone(), false));
        assert_eq!(read_token_file(&f).unwrap(), t);
        // Nothing left beside it.
        assert_eq!(fs::read_dir(d.join("sub")).unwrap().count(), 1);
        // Readable by others: refused.
        fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_or_create(&f).unwrap_err().to_string();
        assert!(e.contains("mode 0644"), "{e}");
        fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
        // Empty: refused.
        fs::write(&f, "\n").unwrap();
        assert!(load_or_create(&f)
            .unwrap_err()
            .to_string()
            .contains("empty"));
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn concurrent_first_starts_agree() {
        let d = tempdir("race");
        let f = d.join("api-token");
        let ts: Vec<_> = (0..8)
            .map(|_| {
                let f = f.clone();
                std::thread::spawn(move || load_or_create(&f).unwrap())
            })
            .collect();
        let got: Vec<(String, bool)> = ts.into_iter().map(|t| t.join().unwrap()).collect();
        assert!(got.iter().all(|(t, _)| *t == got[0].0));
        assert_eq!(got.iter().filter(|(_, c)| *c).count(), 1);
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn symlinks_and_shared_directories_are_refused() {
        let d = tempdir("link");
        fs::create_dir_all(&d).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", d.join("api-token")).unwrap();
        let e = load_or_create(&d.join("api-token"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a regular file"), "{e}");
        fs::set_permissions(&d, fs::Permissions::from_mode(0o777)).unwrap();
        let e = load_or_create(&d.join("other")).unwrap_err().to_string();
        assert!(e.contains("writable by other users"), "{e}");
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn client_precedence() {
        let d = tempdir("client");
        fs::create_dir_all(&d).unwrap();
        let f = d.join("t");
        fs::write(&f, "from-file\n").unwrap();
        let none = d.join("missing");
        let r = client_token_from(Some("argv"), Some(&f), Some("env".into()), &f).unwrap();
        assert_eq!(r.token.as_deref(), Some("argv"));
        assert!(r.note.unwrap().contains("warning"));
        let r = client_token_from(None, Some(&f), Some("env".into()), &none).unwrap();
        assert_eq!(r.token.as_deref(), Some("from-file"));
        let r = client_token_from(None, None, Some("env".into()), &f).unwrap();
        assert_eq!(r.token.as_deref(), Some("env"));
        let r = client_token_from(None, None, None, &f).unwrap();
        assert_eq!(r.token.as_deref(), Some("from-file"));
        assert_eq!(
            client_token_from(None, None, None, &none).unwrap(),
            ClientToken::default()
        );
        assert!(client_token_from(None, Some(&none), None, &f).is_err());
        let _ = fs::remove_dir_all(&d);
    }
}
