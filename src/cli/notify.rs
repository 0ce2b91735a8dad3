//! The systemd readiness protocol (`sd_notify(3)`): one datagram of `KEY=VALUE` lines
//! to the Unix socket named by `$NOTIFY_SOCKET`, which systemd sets for a `Type=notify`
//! service. `sgswitch run` sends `READY=1` once every port is open and the API listens,
//! `RELOADING=1` then `READY=1` around a SIGHUP reload, and `STOPPING=1` when it stops
//! (`packaging/sgswitch.service`). Without `$NOTIFY_SOCKET` (run by hand) it does nothing.
//!
//! Written here rather than taken from the `sd-notify` crate: the protocol is a path (or
//! an abstract name, `@...`) and one `send_to`, which `std::os::unix::net::UnixDatagram`
//! does with no `unsafe` and no dependency; the crate would add a dependency for the same
//! dozen lines (and its `MONOTONIC_USEC` for `Type=notify-reload`, which systemd 252 in
//! Debian 12 does not have).
//!
//! Owns: formatting and sending those datagrams. May not touch: when they are sent (that
//! is `run`'s life cycle, [`super::run`]) or anything else about the process.

use std::io;
use std::os::unix::net::UnixDatagram;

/// The environment variable systemd names its notification socket in.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Send `state` (`KEY=VALUE` lines) to the service manager, if there is one
/// (`$NOTIFY_SOCKET` set). `Ok(false)` when there is none.
pub fn notify(state: &str) -> io::Result<bool> {
    match std::env::var_os(NOTIFY_SOCKET) {
        Some(addr) if !addr.is_empty() => send_to(&addr.to_string_lossy(), state).map(|()| true),
        _ => Ok(false),
    }
}

/// Send `state` to the socket `addr`: a filesystem path, or `@name` for an abstract one.
pub fn send_to(addr: &str, state: &str) -> io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    if let Some(name) = addr.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        let a = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        sock.send_to_addr(state.as_bytes(), &a)?;
    } else {
        sock.send_to(state.as_bytes(), addr)?;
    }
    Ok(())
}

/// `notify`, with a failure logged and otherwise ignored: a service manager that cannot
/// be told is no reason to stop switching (systemd then times the start out by itself).
pub fn tell(state: &str) {
    if let Err(e) = notify(state) {
        tracing::warn!("sd_notify ${NOTIFY_SOCKET}: {e}");
    }
}

/// The `STATUS=` line `systemctl status` shows: one line, no newline in it.
pub fn status_line(text: &str) -> String {
    format!("STATUS={}", text.replace('\n', " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_a_path_and_to_an_abstract_name() {
        let dir = std::env::temp_dir().join(format!("sgswitch-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        send_to(path.to_str().unwrap(), "READY=1\nSTATUS=ok").unwrap();
        let mut buf = [0u8; 256];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=ok");
        std::fs::remove_dir_all(&dir).unwrap();

        use std::os::linux::net::SocketAddrExt;
        let name = format!("sgswitch-notify-test-{}", std::process::id());
        let a = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&a).unwrap();
        send_to(&format!("@{name}"), "RELOADING=1").unwrap();
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"RELOADING=1");
    }

    #[test]
    fn a_missing_socket_is_an_error_and_status_is_one_line() {
        assert!(send_to("/nonexistent/sgswitch/notify.sock", "READY=1").is_err());
        assert_eq!(status_line("a\nb"), "STATUS=a b");
    }
}
