//! End-to-end tests: `sgswitch run` between instances in network namespaces, for each
//! backend (tap, AF_XDP on veth, AF_PACKET on veth), with real traffic tools.
//!
//! Each test builds its own namespaces, links, switch and traffic processes with names
//! unique to the test process (see `common`), and every one of them is removed by a guard,
//! also when an assertion fails. Tests run in parallel.
//!
//! Needs root, iproute2, iputils-ping, python3 and (veth backends) ethtool; without them a
//! test prints why it skips, and under `CI=true` it fails.
//!
//! What is checked, per backend:
//! * `traffic_*`: ping, TCP and UDP pass where a rule allows them; a port without a rule is
//!   blocked (and counted as `ingress-denied`); replies of allowed connections pass
//!   although the client has no ingress rule at all (stateful), while the same traffic
//!   started from the other side is blocked; ping -6 works, neighbour discovery included;
//!   a forged IPv4 or IPv6 source address is blocked (and counted as `spoofed-ip`) while
//!   the instance's own address still works. `traffic_afxdp_two_workers` repeats it with
//!   two polling workers, so the two directions of a connection reach different workers.
//! * `reload_*`: a SIGHUP reload that removes the rule of an open TCP connection cuts it
//!   (the next line exchanged gets no answer) and new connections are refused service.
//! * `demo_command_passes_and_cleans_up`: `sgswitch demo` exits 0 with 8 passes and 5
//!   blocks explained, and leaves no namespace or link behind.
//! * `port_open_error_leaves_nothing_attached`: a port on a missing interface is named
//!   in the error, the exit code is 1, and the other (AF_XDP) port keeps no XDP program.
//! * `sigkill_leaves_no_xdp_program`: after SIGKILL of a switch on AF_XDP ports, no XDP
//!   program stays attached to the veths.

mod common;

use common::{
    echo_server, env_ready, grew, ping, probe, xdp_attached, Backend, LineClient, Switch, Topo,
};
use std::time::Duration;

/// Client group: egress only, no ingress rule at all (replies pass only statefully).
/// Server group: TCP 7000, UDP 7001 and ping (v4 and v6) from anywhere; not TCP 7002.
fn policy(server_tcp_7000: bool) -> String {
    policy_with_workers(server_tcp_7000, 1)
}

/// [`policy`] with `workers` polling workers: with two ports on two workers, the two
/// directions of every connection arrive at different workers.
fn policy_with_workers(server_tcp_7000: bool, workers: usize) -> String {
    let tcp7000 = if server_tcp_7000 {
        "  { direction = \"ingress\", ethertype = \"IPv4\", protocol = \"tcp\", port_range_min = 7000, port_range_max = 7000 },\n\
         \x20 { direction = \"ingress\", ethertype = \"IPv6\", protocol = \"tcp\", port_range_min = 7000, port_range_max = 7000 },\n"
    } else {
        ""
    };
    format!(
        "[switch]\nworkers = {workers}\n\n\
         [[security_groups]]\nname = \"client\"\nrules = [\n\
         \x20 {{ direction = \"egress\", ethertype = \"IPv4\" }},\n\
         \x20 {{ direction = \"egress\", ethertype = \"IPv6\" }},\n]\n\n\
         [[security_groups]]\nname = \"server\"\nrules = [\n{tcp7000}\
         \x20 {{ direction = \"ingress\", ethertype = \"IPv4\", protocol = \"udp\", port_range_min = 7001, port_range_max = 7001 }},\n\
         \x20 {{ direction = \"ingress\", ethertype = \"IPv6\", protocol = \"udp\", port_range_min = 7001, port_range_max = 7001 }},\n\
         \x20 {{ direction = \"ingress\", ethertype = \"IPv4\", protocol = \"icmp\", port_range_min = 8 }},\n\
         \x20 {{ direction = \"ingress\", ethertype = \"IPv6\", protocol = \"ipv6-icmp\", port_range_min = 128 }},\n\
         \x20 {{ direction = \"egress\", ethertype = \"IPv4\" }},\n\
         \x20 {{ direction = \"egress\", ethertype = \"IPv6\" }},\n]\n"
    )
}

const GROUPS: [&str; 2] = [r#"["client"]"#, r#"["server"]"#];
const PORTS: [&str; 2] = ["i0", "i1"];

/// Start the switch on `topo` with `config`; for taps, configure the instances once the
/// switch created them.
fn start(topo: &Topo, config: &str) -> Switch {
    let path = topo.write_config(config);
    let sw = Switch::start(&path, &topo.dir.path);
    if topo.backend == Backend::Tap {
        topo.configure();
    }
    sw
}

fn traffic(tag: &str, backend: Backend, workers: usize) {
    let test = format!("traffic_{backend:?}_{workers}_workers");
    if !env_ready(&test, backend) {
        return;
    }
    let topo = Topo::new(tag, backend, 2);
    let config = format!(
        "{}{}",
        policy_with_workers(true, workers),
        topo.ports_toml(&GROUPS)
    );
    let sw = start(&topo, &config);
    let plural = if workers == 1 { "" } else { "s" };
    assert!(
        sw.log_text()
            .contains(&format!(" {workers} worker{plural}")),
        "{test}: not started with {workers} worker{plural}:\n{}",
        sw.log_text()
    );
    let (cli, srv) = (&topo.insts[0], &topo.insts[1]);
    let _server = echo_server(&srv.ns, &[7000, 7002], &[7001]);
    let _client_side = echo_server(&cli.ns, &[7000], &[]);

    let mut failures: Vec<String> = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            failures.push(what);
        }
    };

    // Allowed, and the replies pass although the client has no ingress rule.
    check(
        ping(&cli.ns, &srv.v4, None, 5),
        "ping client -> server (IPv4)".into(),
    );
    let r = probe(&cli.ns, "tcp", &srv.v4, 7000, 3);
    check(r == "PASS", format!("tcp/7000 client -> server: {r}"));
    let r = probe(&cli.ns, "udp", &srv.v4, 7001, 3);
    check(r == "PASS", format!("udp/7001 client -> server: {r}"));

    // IPv6, neighbour discovery included (the client has never talked v6 before).
    check(
        ping(&cli.ns, &srv.v6, None, 5),
        "ping -6 client -> server".into(),
    );
    let r = probe(&cli.ns, "tcp", &srv.v6, 7000, 3);
    check(
        r == "PASS",
        format!("tcp/7000 client -> server over IPv6: {r}"),
    );

    // Denied: no rule for tcp/7002 on the server, and nothing may start towards the client.
    let before = sw.drops(&PORTS);
    let r = probe(&cli.ns, "tcp", &srv.v4, 7002, 2);
    check(
        r == "TIMEOUT",
        format!("tcp/7002 (no rule) should time out: {r}"),
    );
    let r = probe(&srv.ns, "tcp", &cli.v4, 7000, 2);
    check(
        r == "TIMEOUT",
        format!("tcp/7000 server -> client (client has no ingress rule): {r}"),
    );
    check(
        !ping(&srv.ns, &cli.v4, None, 2),
        "ping server -> client should be blocked".into(),
    );
    let after = sw.drops(&PORTS);
    let denied: u64 = PORTS
        .iter()
        .map(|p| grew(&before, &after, p, "ingress-denied"))
        .sum();
    check(
        denied >= 3,
        format!("ingress-denied grew by {denied}, expected >= 3; counters {after:?}"),
    );

    // Anti-spoofing: a second address on the client's interface is not the port's.
    let before = sw.drops(&PORTS);
    let ifn = cli.ifname.as_str();
    common::sh(&[
        "ip",
        "-n",
        &cli.ns.name,
        "addr",
        "add",
        "10.0.0.99/32",
        "dev",
        ifn,
    ]);
    common::sh(&[
        "ip",
        "-n",
        &cli.ns.name,
        "-6",
        "addr",
        "add",
        "fd00::99/128",
        "dev",
        ifn,
        "nodad",
    ]);
    check(
        !ping(&cli.ns, &srv.v4, Some("10.0.0.99"), 2),
        "ping from forged 10.0.0.99 should be blocked".into(),
    );
    check(
        !ping(&cli.ns, &srv.v6, Some("fd00::99"), 2),
        "ping -6 from forged fd00::99 should be blocked".into(),
    );
    let after = sw.drops(&PORTS);
    let spoofed = grew(&before, &after, "i0", "spoofed-ip");
    check(
        spoofed >= 2,
        format!("spoofed-ip on i0 grew by {spoofed}, expected >= 2; counters {after:?}"),
    );
    check(
        ping(&cli.ns, &srv.v4, Some(&cli.v4), 3),
        "ping from the client's own address after the forged ones".into(),
    );

    assert!(
        failures.is_empty(),
        "{test}: {} failure(s):\n  {}\nswitch log:\n{}",
        failures.len(),
        failures.join("\n  "),
        sw.log_text()
    );
}

fn reload_cuts_open_connection(tag: &str, backend: Backend) {
    let test = format!("reload_{backend:?}");
    if !env_ready(&test, backend) {
        return;
    }
    let topo = Topo::new(tag, backend, 2);
    let config = format!("{}{}", policy(true), topo.ports_toml(&GROUPS));
    let sw = start(&topo, &config);
    let (cli, srv) = (&topo.insts[0], &topo.insts[1]);
    let _server = echo_server(&srv.ns, &[7000], &[]);

    let mut conn = LineClient::connect(&cli.ns, &srv.v4, 7000, 3)
        .unwrap_or_else(|e| panic!("{test}: connect: {e}\n{}", sw.log_text()));
    for i in 0..3 {
        let r = conn.exchange(&format!("line {i}"));
        assert_eq!(
            r,
            "ok",
            "{test}: exchange {i} before the reload\n{}",
            sw.log_text()
        );
    }

    // Remove the rule and reload: the open connection is cut.
    let without = format!("{}{}", policy(false), topo.ports_toml(&GROUPS));
    topo.write_config(&without);
    let before = sw.drops(&PORTS);
    sw.reload();
    let r = conn.exchange("after reload");
    assert_ne!(
        r,
        "ok",
        "{test}: the connection still works after its rule was removed\n{}",
        sw.log_text()
    );
    let r = probe(&cli.ns, "tcp", &srv.v4, 7000, 2);
    assert_eq!(r, "TIMEOUT", "{test}: a new connection after the reload");
    let after = sw.drops(&PORTS);
    let cut: u64 = PORTS
        .iter()
        .flat_map(|p| {
            ["connection-cut", "ingress-denied"]
                .map(|r| grew(&before, &after, p, r))
                .into_iter()
        })
        .sum();
    assert!(cut >= 1, "{test}: no cut/denied drop counted; {after:?}");

    // Putting the rule back allows new connections again.
    topo.write_config(&config);
    sw.reload();
    let r = probe(&cli.ns, "tcp", &srv.v4, 7000, 3);
    assert_eq!(
        r, "PASS",
        "{test}: a new connection after restoring the rule"
    );
}

#[test]
fn traffic_tap() {
    traffic("tt", Backend::Tap, 1);
}

#[test]
fn traffic_afxdp() {
    traffic("tx", Backend::AfXdp, 1);
}

#[test]
fn traffic_afpacket() {
    traffic("tp", Backend::AfPacket, 1);
}

/// Two workers: replies arrive at the other worker than the one that saw the request.
#[test]
fn traffic_afxdp_two_workers() {
    traffic("tw", Backend::AfXdp, 2);
}

#[test]
fn reload_tap() {
    reload_cuts_open_connection("rt", Backend::Tap);
}

#[test]
fn reload_afxdp() {
    reload_cuts_open_connection("rx", Backend::AfXdp);
}

#[test]
fn reload_afpacket() {
    reload_cuts_open_connection("rp", Backend::AfPacket);
}

#[test]
fn sigkill_leaves_no_xdp_program() {
    let test = "sigkill_leaves_no_xdp_program";
    if !env_ready(test, Backend::AfXdp) {
        return;
    }
    let topo = Topo::new("k", Backend::AfXdp, 2);
    let config = format!("{}{}", policy(true), topo.ports_toml(&GROUPS));
    let mut sw = start(&topo, &config);
    for inst in &topo.insts {
        assert!(
            xdp_attached(&inst.link),
            "{test}: no XDP program on {} while the switch runs (the check would prove nothing)",
            inst.link
        );
    }
    // Traffic flows, so the sockets are really in use when the process dies.
    assert!(ping(&topo.insts[0].ns, &topo.insts[1].v4, None, 5));
    sw.kill9();
    // The bpf_link goes away with the last fd; allow the kernel a moment.
    let end = std::time::Instant::now() + Duration::from_secs(3);
    let mut left: Vec<&str> = Vec::new();
    while std::time::Instant::now() < end {
        left = topo
            .insts
            .iter()
            .map(|i| i.link.as_str())
            .filter(|l| xdp_attached(l))
            .collect();
        if left.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        left.is_empty(),
        "{test}: XDP still attached after SIGKILL on {left:?}"
    );
    // And the links are usable by a new switch right away.
    let sw2 = start(&topo, &config);
    assert!(
        ping(&topo.insts[0].ns, &topo.insts[1].v4, None, 5),
        "{test}: a new switch on the same veths\n{}",
        sw2.log_text()
    );
}

#[test]
fn counter_dump_parser() {
    let text = "port                   rx         tx    dropped  drops by reason\n\
                i0                  29         37          6  spoofed-mac=2 spoofed-ip=4\n\
                i1                  29         27          0  -\n\
                i0                  30         37          7  spoofed-ip=5 ingress-denied=1\n";
    let m = common::parse_drops(text, &PORTS);
    assert_eq!(m.get(&("i0".into(), "spoofed-ip".into())), Some(&5));
    assert_eq!(m.get(&("i0".into(), "ingress-denied".into())), Some(&1));
    assert_eq!(m.get(&("i1".into(), "spoofed-ip".into())), None);
    let empty = Default::default();
    assert_eq!(grew(&empty, &m, "i0", "spoofed-ip"), 5);
    assert_eq!(grew(&m, &empty, "i0", "spoofed-ip"), 0);
}

/// `sgswitch demo` (the README's first command): every observation matches, and it
/// removes everything it created. It uses fixed names, so it is the only test running it.
#[test]
fn demo_command_passes_and_cleans_up() {
    let test = "demo_command_passes_and_cleans_up";
    if !env_ready(test, Backend::Tap) {
        return;
    }
    let listed = || common::sh(&["ip", "netns", "list"]);
    if listed().contains("sgs-demo-") {
        assert!(!common::in_ci(), "{test}: a demo is already set up");
        common::skip(test, "a demo is already set up (sgswitch demo --clean)");
        return;
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sgswitch"))
        .arg("demo")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run sgswitch demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{test}: exit {:?}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("all 13 observations match the security groups (backend tap)"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("PASSED THROUGH").count(), 8, "{stdout}");
    assert_eq!(stdout.matches("BLOCKED").count(), 5, "{stdout}");
    assert!(
        stdout.contains("spoofed-ip"),
        "the forged source is explained: {stdout}"
    );
    assert!(stdout.contains("ingress-denied"), "{stdout}");
    assert!(
        !listed().contains("sgs-demo-"),
        "{test}: namespaces left behind"
    );
    assert!(
        !std::path::Path::new("/sys/class/net/sgsd-web1").exists(),
        "{test}: a link was left behind"
    );
}

/// A port that cannot be opened: `sgswitch run` names it, exits 1, and leaves no XDP
/// program on the ports it had already opened.
#[test]
fn port_open_error_leaves_nothing_attached() {
    let test = "port_open_error_leaves_nothing_attached";
    if !env_ready(test, Backend::AfXdp) {
        return;
    }
    let topo = Topo::new("e", Backend::AfXdp, 1);
    let missing = common::link_name("e", 9);
    let config = format!(
        "{}{}\n[[ports]]\nname = \"broken\"\nmac = \"fa:16:3e:00:00:99\"\n\
         backend = {{ type = \"afxdp\", ifname = \"{missing}\" }}\n",
        policy(true),
        topo.ports_toml(&[GROUPS[0]])
    );
    let path = topo.write_config(&config);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sgswitch"))
        .arg("run")
        .arg("--config")
        .arg(&path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn sgswitch run");
    let guard_pid = child.id();
    let end = std::time::Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if std::time::Instant::now() > end {
            common::signal(guard_pid, libc::SIGKILL);
            let _ = child.wait();
            panic!("{test}: sgswitch run did not exit on a missing interface");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    eprintln!("{test}: sgswitch run said: {err}");
    assert_eq!(status.code(), Some(1), "{test}: {err}");
    assert!(
        err.contains("broken"),
        "{test}: the port is not named: {err}"
    );
    assert!(!err.contains("sgswitch: ready"), "{test}: {err}");
    assert!(
        !xdp_attached(&topo.insts[0].link),
        "{test}: XDP left on {} after the failed start",
        topo.insts[0].link
    );
}

fn napi_settings(link: &str) -> (String, String) {
    let read = |f: &str| {
        std::fs::read_to_string(format!("/sys/class/net/{link}/{f}"))
            .unwrap_or_else(|e| panic!("read {f} of {link}: {e}"))
            .trim()
            .to_owned()
    };
    (read("napi_defer_hard_irqs"), read("gro_flush_timeout"))
}

/// `[switch] napi_defer_us` moderates the NAPI of the ports' netdevs while the switch
/// runs (traffic still flows, statefully) and gives the devices their own values back
/// on a clean stop.
#[test]
fn napi_moderation_is_set_and_restored() {
    let test = "napi_moderation_is_set_and_restored";
    if !env_ready(test, Backend::AfXdp) {
        return;
    }
    let topo = Topo::new("n", Backend::AfXdp, 2);
    // Non-default originals, so that "restored" cannot mean "reset to 0".
    for inst in &topo.insts {
        std::fs::write(
            format!("/sys/class/net/{}/gro_flush_timeout", inst.link),
            "7000",
        )
        .expect("set gro_flush_timeout");
        assert_eq!(napi_settings(&inst.link), ("0".into(), "7000".into()));
    }
    const MODERATED: (&str, &str) = ("2", "150000");
    const ORIGINAL: (&str, &str) = ("0", "7000");
    let expect_all = |want: (&str, &str), when: &str| {
        for inst in &topo.insts {
            let (defer, timeout) = napi_settings(&inst.link);
            assert_eq!(
                (defer.as_str(), timeout.as_str()),
                want,
                "{test}: {} {when}",
                inst.link
            );
        }
    };
    let config = format!(
        "{}{}",
        policy(true).replace("[switch]\n", "[switch]\nnapi_defer_us = 150\n"),
        topo.ports_toml(&GROUPS)
    );
    let mut sw = start(&topo, &config);
    expect_all(MODERATED, "while the switch runs");
    assert!(
        ping(&topo.insts[0].ns, &topo.insts[1].v4, None, 5),
        "{test}: ping through moderated ports\n{}",
        sw.log_text()
    );
    let srv = echo_server(&topo.insts[1].ns, &[7000], &[]);
    let out = probe(&topo.insts[0].ns, "tcp", &topo.insts[1].v4, 7000, 5);
    assert_eq!(out, "PASS", "{test}: TCP 7000\n{}", sw.log_text());
    drop(srv);
    let status = sw.stop(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "{test}: clean stop: {status:?}"
    );
    expect_all(ORIGINAL, "after the switch stopped");

    // SIGKILL leaves the moderation set; the next switch on these devices puts back the
    // real originals when it stops (from the killed one's record), not what it found.
    let mut sw = start(&topo, &config);
    sw.kill9();
    expect_all(MODERATED, "after SIGKILL");
    let mut sw = start(&topo, &config);
    let status = sw.stop(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "{test}: clean stop after a restart: {status:?}\n{}",
        sw.log_text()
    );
    expect_all(ORIGINAL, "after SIGKILL, restart and stop");
}

/// Hot-unplug of an AF_XDP port that shares its worker's UMEM with other ports: a reload
/// without the port detaches its XDP program (the device is the host's again) while the
/// others keep forwarding; a reload with the port back re-attaches it and traffic flows.
#[test]
fn shared_umem_member_hot_unplug() {
    let test = "shared_umem_member_hot_unplug";
    if !env_ready(test, Backend::AfXdp) {
        return;
    }
    let topo = Topo::new("u", Backend::AfXdp, 3);
    // One worker: the three AF_XDP ports form one shared-UMEM group (i0 is its first
    // member, whose socket holds the UMEM; i2 an ordinary member).
    let groups = [r#"["client"]"#, r#"["server"]"#, r#"["server"]"#];
    let full = format!("{}{}", policy(true), topo.ports_toml(&groups));
    let mut sw = start(&topo, &full);
    let links: Vec<&str> = topo.insts.iter().map(|i| i.link.as_str()).collect();
    for l in &links {
        assert!(xdp_attached(l), "{test}: XDP on {l} at start");
    }
    // The config without one port.
    let without = |port: &str| {
        let line = format!("name = \"{port}\"");
        full.split("\n[[ports]]")
            .filter(|part| !part.contains(&line))
            .collect::<Vec<_>>()
            .join("\n[[ports]]")
    };
    // Detaching happens when the worker takes the command: wait up to 3 s for it.
    let wait_detached = |link: &str| {
        let end = std::time::Instant::now() + Duration::from_secs(3);
        while xdp_attached(link) && std::time::Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    assert!(
        ping(&topo.insts[0].ns, &topo.insts[2].v4, None, 5),
        "{test}: i0 -> i2"
    );

    // Without i2: its program goes, i0 <-> i1 still forward.
    let without_i2 = without("i2");
    assert!(!without_i2.contains("\"i2\""), "{test}: config edit");
    topo.write_config(&without_i2);
    sw.reload();
    wait_detached(links[2]);
    assert!(
        !xdp_attached(links[2]),
        "{test}: XDP still on {} after its port was removed\n{}",
        links[2],
        sw.log_text()
    );
    assert!(xdp_attached(links[0]) && xdp_attached(links[1]));
    assert!(
        ping(&topo.insts[0].ns, &topo.insts[1].v4, None, 5),
        "{test}: i0 -> i1 after removing i2\n{}",
        sw.log_text()
    );

    // i2 back (a port of its own now): attached again, reachable.
    topo.write_config(&full);
    sw.reload();
    assert!(
        xdp_attached(links[2]),
        "{test}: XDP on {} after re-adding it",
        links[2]
    );
    assert!(
        ping(&topo.insts[0].ns, &topo.insts[2].v4, None, 5),
        "{test}: i0 -> i2 after re-adding i2\n{}",
        sw.log_text()
    );

    // The group's first member can leave too: its program is detached.
    topo.write_config(&without("i0"));
    sw.reload();
    wait_detached(links[0]);
    assert!(!xdp_attached(links[0]), "{test}: XDP still on {}", links[0]);
    assert!(
        ping(&topo.insts[1].ns, &topo.insts[2].v4, None, 5),
        "{test}: i1 -> i2 after removing i0\n{}",
        sw.log_text()
    );

    // ... and come back: its socket closed with it, so its device queue is free again
    // (it used to stay bound and the re-added port failed with EBUSY).
    topo.write_config(&full);
    sw.reload();
    assert!(
        xdp_attached(links[0]),
        "{test}: XDP on {} after re-adding it\n{}",
        links[0],
        sw.log_text()
    );
    assert!(
        ping(&topo.insts[0].ns, &topo.insts[1].v4, None, 5),
        "{test}: i0 -> i1 after re-adding i0\n{}",
        sw.log_text()
    );
    let status = sw.stop(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "{test}: clean stop: {status:?}"
    );
}
