//! Traffic between instances, with the system's own stacks: ping, a one-shot TCP/UDP
//! client, and the dual-stack echo server it talks to (python3).
//!
//! A probe's verdict is what the traffic tool saw (did an answer come?), never the
//! switch's counters. Owns the two python programs; runs them in a namespace through
//! [`Netns::cmd`], so it needs no addresses of its own.

use std::process::Stdio;

use super::cmd::python;
use super::netns::Netns;
use super::proc::Proc;
use super::{Error, Result};

/// Ping `dst` from `ns` (optionally from source address `src`, which must be on an
/// interface there), resending every `interval` seconds; true if a reply came within
/// `secs` seconds. IPv6 when `dst` has a colon.
pub fn ping(ns: &Netns, dst: &str, src: Option<&str>, secs: u32, interval: &str) -> bool {
    let w = secs.to_string();
    let mut args = vec!["ping", "-n", "-c", "1", "-i", interval, "-w", &w];
    if dst.contains(':') {
        args.push("-6");
    }
    if let Some(s) = src {
        args.extend(["-I", s]);
    }
    args.push(dst);
    ns.cmd(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Echo server: argv = tcp ports, udp ports (comma-separated), reply prefix. Answers
/// every TCP read and UDP datagram with the prefix and what it got. Dual-stack sockets.
const SERVER_PY: &str = r#"
import selectors, socket, sys
reply = sys.argv[3].encode()
sel = selectors.DefaultSelector()
def listen(kind, port):
    s = socket.socket(socket.AF_INET6, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    if kind == socket.SOCK_STREAM:
        s.listen(64)
    sel.register(s, selectors.EVENT_READ, kind)
for p in filter(None, sys.argv[1].split(",")):
    listen(socket.SOCK_STREAM, int(p))
for p in filter(None, sys.argv[2].split(",")):
    listen(socket.SOCK_DGRAM, int(p))
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        s = key.fileobj
        try:
            if key.data == "conn":
                d = s.recv(4096)
                if d:
                    s.sendall(reply + d)
                else:
                    sel.unregister(s)
                    s.close()
            elif key.data == socket.SOCK_STREAM:
                c, _ = s.accept()
                c.settimeout(2)
                sel.register(c, selectors.EVENT_READ, "conn")
            else:
                d, a = s.recvfrom(4096)
                s.sendto(reply + d, a)
        except OSError:
            try:
                sel.unregister(s)
                s.close()
            except Exception:
                pass
"#;

/// The reply prefix of the tests' echo servers (what [`probe`] expects by default).
pub const ECHO: &str = "echo ";

/// An echo server to start in a namespace.
pub struct EchoServer<'a> {
    pub tcp: &'a [u16],
    pub udp: &'a [u16],
    /// What every answer starts with, before the bytes received.
    pub reply: &'a str,
    /// In its own process group, stderr discarded (the demo: a Ctrl-C reaches only the
    /// demo, which stops the servers itself); otherwise stderr is inherited.
    pub detached: bool,
}

impl EchoServer<'_> {
    /// Start it in `ns` without waiting; [`EchoServer::wait_ready`] waits.
    pub fn spawn(&self, ns: &Netns) -> Result<Proc> {
        use std::os::unix::process::CommandExt;
        let list = |v: &[u16]| v.iter().map(u16::to_string).collect::<Vec<_>>().join(",");
        let (tcp, udp) = (list(self.tcp), list(self.udp));
        let args = [python(), "-c", SERVER_PY, &tcp, &udp, self.reply];
        let mut cmd = ns.cmd(&args);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped());
        if self.detached {
            cmd.stderr(Stdio::null()).process_group(0);
        }
        let child = cmd.spawn().map_err(|e| Error::Spawn {
            cmd: vec![format!("the echo server in {}", ns.name)],
            source: e,
        })?;
        Ok(Proc { child })
    }

    /// Wait until a server [`EchoServer::spawn`]ed in `ns` listens on every port.
    pub fn wait_ready(proc: &mut Proc, ns: &Netns) -> Result<()> {
        if proc.first_line() == "ready" {
            Ok(())
        } else {
            Err(Error::NotStarted {
                what: format!("the echo server in {}", ns.name),
            })
        }
    }

    /// Start it in `ns` and return once it listens.
    pub fn start(&self, ns: &Netns) -> Result<Proc> {
        let mut p = self.spawn(ns)?;
        EchoServer::wait_ready(&mut p, ns)?;
        Ok(p)
    }
}

/// One-shot client: argv = tcp|udp, address, port, timeout, expected reply prefix (empty:
/// any). Sends `probe\n`; prints PASS (an answer, with the prefix), BAD (another answer),
/// CLOSED (empty answer, no prefix expected), TIMEOUT, REFUSED or ERROR and the reason.
const CLIENT_PY: &str = r#"
import socket, sys
kind, host, port, t = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
want = sys.argv[5].encode()
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
try:
    if kind == "tcp":
        s = socket.create_connection((host, port), timeout=t)
        s.sendall(b"probe\n")
    else:
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.settimeout(t)
        s.sendto(b"probe\n", (host, port))
    d = s.recv(4096)
    if want:
        print("PASS" if d.startswith(want) else "BAD")
    else:
        print("PASS" if d else "CLOSED")
except socket.timeout:
    print("TIMEOUT")
except ConnectionRefusedError:
    print("REFUSED")
except OSError as e:
    print("ERROR", e.strerror or e)
"#;

/// What the tests' probes expect back from an [`ECHO`] server.
pub const ECHO_PROBE: &str = "echo probe";

/// A one-shot `kind` (`tcp` or `udp`) probe from `ns` to `dst:port`, waiting `secs` for
/// the answer: `PASS`, `BAD`, `CLOSED`, `TIMEOUT`, `REFUSED` or `ERROR reason` (see
/// the client's program). `want`: the prefix a passing answer starts with (`""`: any answer).
pub fn probe(
    ns: &Netns,
    kind: &str,
    dst: &str,
    port: u16,
    secs: u32,
    want: &str,
) -> Result<String> {
    let (port, t) = (port.to_string(), secs.to_string());
    let args = [python(), "-c", CLIENT_PY, kind, dst, &port, &t, want];
    Ok(ns.sh(&args)?.trim().to_string())
}
