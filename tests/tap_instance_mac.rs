//! A tap port the switch moves into a namespace (`backend = { type = "tap", netns = ... }`)
//! gets the port's MAC there before its link comes up (so its IPv6 link-local address is
//! derived from it too): the instance only adds its addresses and can ping another port
//! at once, IPv4 and IPv6 (neighbour discovery from the link-local address included),
//! nothing is dropped as spoofed.
//!
//! Needs root, iproute2, iputils-ping and python3; without them the test skips (see
//! `common::env_ready`), under `CI=true` it fails. Names carry the pid; everything is
//! removed by guards, also on failure.

mod common;

use common::{env_ready, grew, ping, Backend, Switch, Topo, POLICY};

#[test]
fn tap_moved_into_a_namespace_gets_the_port_mac_and_pings() {
    let test = "tap_moved_into_a_namespace_gets_the_port_mac_and_pings";
    if !env_ready(test, Backend::Tap) {
        return;
    }
    let topo = Topo::new("tm", Backend::Tap, 2);
    let groups = [r#"["inst"]"#, r#"["inst"]"#];
    let config = format!("{POLICY}{}", topo.ports_toml(&groups));
    let path = topo.write_config(&config);
    let sw = Switch::start(&path, &topo.dir.path);
    for inst in &topo.insts {
        let ns = &inst.ns.name;
        let link = common::sh(&["ip", "-n", ns, "link", "show", &inst.ifname]);
        assert!(
            link.contains(&format!("link/ether {} ", inst.mac)) && link.contains(",UP"),
            "{test}: {} in {ns} has the port's MAC and is up:\n{link}",
            inst.ifname
        );
        // Addresses only: no `ip link set ... address` by hand.
        let v4 = format!("{}/24", inst.v4);
        common::sh(&["ip", "-n", ns, "addr", "add", &v4, "dev", &inst.ifname]);
        let v6 = format!("{}/64", inst.v6);
        common::sh(&[
            "ip",
            "-n",
            ns,
            "-6",
            "addr",
            "add",
            &v6,
            "dev",
            &inst.ifname,
            "nodad",
        ]);
    }
    let before = sw.drops(&["i0", "i1"]);
    let (a, b) = (&topo.insts[0], &topo.insts[1]);
    assert!(ping(&a.ns, &b.v4, None, 5), "{test}: ping i0 -> i1 (IPv4)");
    assert!(ping(&b.ns, &a.v6, None, 5), "{test}: ping -6 i1 -> i0");
    let after = sw.drops(&["i0", "i1"]);
    for port in ["i0", "i1"] {
        for reason in ["spoofed-mac", "spoofed-ip"] {
            assert_eq!(
                grew(&before, &after, port, reason),
                0,
                "{test}: {port} {reason}"
            );
        }
    }
}
