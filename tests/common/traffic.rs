//! Traffic helpers only the live tests need: a TCP connection kept open across a policy
//! change, many probes or pings at once, neighbour resolution by hand, UDP broadcasts and
//! multicasts, and whether an XDP program is attached. The single probes, the echo server
//! and ping are the library's lab (`sgswitch::lab::probe`).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use super::{python, sh, Instance, Netns, Proc};

/// A long-lived TCP client exchanging lines with an echo server.
const LINES_PY: &str = r#"
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
except OSError as e:
    print("connect-failed", e, flush=True)
    sys.exit(0)
print("connected", flush=True)
while True:
    line = sys.stdin.readline()
    if not line:
        break
    try:
        s.sendall(line.encode())
        d = s.recv(4096)
        print("ok" if d == b"echo " + line.encode() else "closed", flush=True)
    except socket.timeout:
        print("timeout", flush=True)
    except OSError as e:
        print("error", e, flush=True)
"#;

/// A TCP connection kept open across a policy change.
pub struct LineClient {
    _proc: Proc,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl LineClient {
    /// Connect from `ns` to `dst:port`; Err(the client's words) if it cannot.
    pub fn connect(ns: &Netns, dst: &str, port: u16, secs: u32) -> Result<LineClient, String> {
        let mut child = ns
            .cmd(&[
                python(),
                "-c",
                LINES_PY,
                dst,
                &port.to_string(),
                &secs.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start line client");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let proc_ = Proc { child };
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        if line.trim() != "connected" {
            return Err(line.trim().to_string());
        }
        Ok(LineClient {
            _proc: proc_,
            stdin,
            stdout,
        })
    }

    /// Send one line and report what happened: "ok", "timeout", "closed", "error ...".
    pub fn exchange(&mut self, text: &str) -> String {
        if writeln!(self.stdin, "{text}")
            .and_then(|_| self.stdin.flush())
            .is_err()
        {
            return "client gone".to_string();
        }
        let mut line = String::new();
        let _ = self.stdout.read_line(&mut line);
        line.trim().to_string()
    }
}

/// Whether `ip -d link show DEV` reports an XDP program on `dev`.
pub fn xdp_attached(dev: &str) -> bool {
    let out = Command::new("ip")
        .args(["-d", "link", "show", "dev", dev])
        .output()
        .expect("ip -d link show");
    String::from_utf8_lossy(&out.stdout).contains("xdp")
}

// ---------------------------------------------------------------------------------------
// Several probes at once, neighbour resolution, broadcasts.

/// Many one-shot probes from one namespace at once (threads): one line per probe,
/// `kind,host,port RESULT` with the results of [`probe`].
const MULTI_PROBE_PY: &str = r#"
import socket, sys, threading
t = float(sys.argv[1])
specs = sys.argv[2:]
res = {}
def one(spec):
    kind, host, port = spec.split(",")
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        if kind == "tcp":
            s = socket.create_connection((host, int(port)), timeout=t)
            s.sendall(b"probe\n")
        else:
            s = socket.socket(fam, socket.SOCK_DGRAM)
            s.settimeout(t)
            s.sendto(b"probe\n", (host, int(port)))
        d = s.recv(4096)
        s.close()
        res[spec] = "PASS" if d.startswith(b"echo probe") else "BAD"
    except socket.timeout:
        res[spec] = "TIMEOUT"
    except ConnectionRefusedError:
        res[spec] = "REFUSED"
    except OSError as e:
        res[spec] = "ERROR " + str(e).replace(" ", "_")
ths = [threading.Thread(target=one, args=(s,)) for s in specs]
for th in ths:
    th.start()
for th in ths:
    th.join()
for s in specs:
    print(s, res.get(s, "ERROR no-result"), flush=True)
"#;

/// Run `probes` (kind `tcp`/`udp`, host, port) from `ns` at once, each with a timeout of
/// `secs`; the outcome of each, in order (`PASS`, `TIMEOUT`, `REFUSED`, `ERROR ...`).
pub fn probes(ns: &Netns, probes: &[(&str, &str, u16)], secs: f64) -> Vec<String> {
    if probes.is_empty() {
        return Vec::new();
    }
    let specs: Vec<String> = probes
        .iter()
        .map(|(k, h, p)| format!("{k},{h},{p}"))
        .collect();
    let mut args: Vec<&str> = vec![python(), "-c", MULTI_PROBE_PY];
    let t = secs.to_string();
    args.push(&t);
    args.extend(specs.iter().map(String::as_str));
    let out = ns
        .cmd(&args)
        .stdin(Stdio::null())
        .output()
        .expect("run probes");
    let text = String::from_utf8_lossy(&out.stdout);
    specs
        .iter()
        .map(|s| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{s} ")))
                .unwrap_or("ERROR no output")
                .to_string()
        })
        .collect()
}

/// Neighbour resolution done by hand from one interface: an ARP request (IPv4) or a
/// neighbour solicitation to the solicited-node group (IPv6) for each target, resent
/// every 0.3 s, until every answer came or the time is up. Prints `TARGET MAC` (the
/// answer's sender / target link-layer address) or `TARGET none`. Answers count only if
/// addressed to us (ARP target MAC, NA to our address), so a neighbour entry learned from
/// the other side's own request cannot pass for a resolution.
const RESOLVE_PY: &str = r#"
import select, socket, struct, sys, time
ifname, my_mac, my_v4, my_v6, t = sys.argv[1:6]
targets = sys.argv[6:]
mac = bytes.fromhex(my_mac.replace(":", ""))
idx = socket.if_nametoindex(ifname)
want4 = [x for x in targets if ":" not in x]
want6 = [x for x in targets if ":" in x]
found = {}
s4 = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
s4.bind((ifname, 0x0806))
s6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s6.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
s6.bind((my_v6, 0, 0, idx))
def send_all():
    for ip in want4:
        if ip not in found:
            arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac,
                              socket.inet_aton(my_v4), b"\0" * 6, socket.inet_aton(ip))
            s4.send(b"\xff" * 6 + mac + b"\x08\x06" + arp)
    for ip in want6:
        if ip not in found:
            tgt = socket.inet_pton(socket.AF_INET6, ip)
            snm = socket.inet_pton(socket.AF_INET6, "ff02::1:ff00:0")[:13] + tgt[13:]
            ns = struct.pack("!BBHI16s", 135, 0, 0, 0, tgt) + bytes([1, 1]) + mac
            s6.sendto(ns, (socket.inet_ntop(socket.AF_INET6, snm), 0, 0, idx))
end = time.time() + float(t)
next_send = 0.0
while len(found) < len(targets):
    now = time.time()
    if now >= end:
        break
    if now >= next_send:
        send_all()
        next_send = now + 0.3
    r, _, _ = select.select([s4, s6], [], [], max(0.0, min(end, next_send) - now))
    if s4 in r:
        d = s4.recv(2048)
        if len(d) >= 42 and d[12:14] == b"\x08\x06" and d[20:22] == b"\x00\x02" and d[32:38] == mac:
            spa = socket.inet_ntoa(d[28:32])
            if spa in want4:
                found.setdefault(spa, d[22:28].hex(":"))
    if s6 in r:
        d = s6.recv(2048)
        if len(d) >= 24 and d[0] == 136:
            tgt = socket.inet_ntop(socket.AF_INET6, d[8:24])
            opts, lla = d[24:], None
            while len(opts) >= 8 and opts[1] > 0:
                if opts[0] == 2:
                    lla = opts[2:8].hex(":")
                opts = opts[opts[1] * 8:]
            if tgt in want6 and lla:
                found.setdefault(tgt, lla)
for ip in targets:
    print(ip, found.get(ip, "none"), flush=True)
"#;

/// Resolve `targets` (IPv4 by ARP, IPv6 by neighbour solicitation, all at once) from
/// instance `inst`; the link-layer address each answer gave (`None`: no answer within
/// `secs`).
pub fn resolve(inst: &Instance, targets: &[&str], secs: f64) -> Vec<Option<String>> {
    if targets.is_empty() {
        return Vec::new();
    }
    let t = secs.to_string();
    let mut args: Vec<&str> = vec![
        python(),
        "-c",
        RESOLVE_PY,
        &inst.ifname,
        &inst.mac,
        &inst.v4,
        &inst.v6,
        &t,
    ];
    args.extend(targets);
    let out = inst
        .ns
        .cmd(&args)
        .stdin(Stdio::null())
        .output()
        .expect("run resolve");
    let text = String::from_utf8_lossy(&out.stdout);
    targets
        .iter()
        .map(|tg| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{tg} ")))
                .filter(|m| *m != "none")
                .map(str::to_string)
        })
        .collect()
}

/// UDP datagrams from one interface: `DST,PORT,PAYLOAD` each; IPv4 broadcast allowed
/// (the socket is bound to the interface, so 255.255.255.255 leaves through it), IPv6
/// link-scope multicast through the interface.
const SEND_UDP_PY: &str = r#"
import socket, sys
ifname = sys.argv[1]
idx = socket.if_nametoindex(ifname)
for spec in sys.argv[2:]:
    dst, port, payload = spec.split(",")
    if ":" in dst:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, idx)
        s.sendto(payload.encode(), (dst, int(port), 0, idx))
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
        s.sendto(payload.encode(), (dst, int(port)))
    s.close()
print("sent", flush=True)
"#;

/// Send UDP datagrams `(destination, port, payload)` from instance `inst`'s interface
/// (broadcast and multicast destinations allowed). Panics if the sender fails.
pub fn send_udp(inst: &Instance, datagrams: &[(&str, u16, &str)]) {
    let specs: Vec<String> = datagrams
        .iter()
        .map(|(d, p, m)| format!("{d},{p},{m}"))
        .collect();
    let mut args: Vec<&str> = vec![python(), "-c", SEND_UDP_PY, &inst.ifname];
    args.extend(specs.iter().map(String::as_str));
    let out = inst
        .ns
        .cmd(&args)
        .stdin(Stdio::null())
        .output()
        .expect("run udp sender");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("sent"),
        "udp sender in {} failed: {}",
        inst.ns.name,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Forget every neighbour (IPv4 and IPv6) of a namespace.
pub fn neigh_flush(ns: &Netns) {
    sh(&["ip", "-n", &ns.name, "-4", "neigh", "flush", "all"]);
    sh(&["ip", "-n", &ns.name, "-6", "neigh", "flush", "all"]);
}

/// Many pings at once: `(namespace, destination)`; whether each got a reply within `secs`.
pub fn pings(list: &[(&Netns, &str)], secs: u32) -> Vec<bool> {
    let w = secs.to_string();
    let children: Vec<Option<Child>> = list
        .iter()
        .map(|(ns, dst)| {
            let mut args = vec!["ping", "-n", "-c", "1", "-i", "0.3", "-w", &w];
            if dst.contains(':') {
                args.push("-6");
            }
            args.push(dst);
            ns.cmd(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .ok()
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.is_some_and(|mut c| c.wait().is_ok_and(|s| s.success())))
        .collect()
}
