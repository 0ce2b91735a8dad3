//! The demo's scenario: its four instances, the config it runs (the security groups and a
//! port per instance) and the cases it shows (who sends what to whom, and what must
//! happen). Pure data and text: nothing here touches the system.
//!
//! Owns: the instance names, prefixes, MACs and addresses, the config text, the cases and
//! their expected outcomes. May not touch: the system (no command, file or process), or
//! how a case is run (`drive`). Uses the lab's [`InstanceSpec`] type and the demo's
//! backend choice; nothing of the dataplane (the config is checked by `drive` with the
//! library's own config parser).

use std::fmt::Write as _;

use sgswitch::lab::topo::InstanceSpec;

use super::DemoBackend;

/// One instance of the demo topology: the lab's [`InstanceSpec`] as constants, and its
/// security groups.
pub(super) struct DemoInstance {
    pub(super) port: &'static str,
    pub(super) ns: &'static str,
    /// Tap name, or the root-side veth end.
    pub(super) link: &'static str,
    pub(super) mac: &'static str,
    pub(super) v4: &'static str,
    pub(super) v6: &'static str,
    /// TOML list of groups, or `None` for a port without port security.
    pub(super) groups: Option<&'static str>,
}

impl DemoInstance {
    /// What the lab builds for it.
    pub(super) fn spec(&self) -> InstanceSpec {
        InstanceSpec {
            port: self.port.to_string(),
            ns: self.ns.to_string(),
            link: self.link.to_string(),
            mac: self.mac.to_string(),
            v4: self.v4.to_string(),
            v6: self.v6.to_string(),
        }
    }
}

pub(super) const WEB1: usize = 0;
pub(super) const WEB2: usize = 1;
pub(super) const DB: usize = 2;
pub(super) const RTR: usize = 3;

pub(super) const INSTANCES: [DemoInstance; 4] = [
    DemoInstance {
        port: "web-1",
        ns: "sgs-demo-web1",
        link: "sgsd-web1",
        mac: "fa:16:3e:00:00:11",
        v4: "10.0.0.11",
        v6: "fd00::11",
        groups: Some(r#"["default", "web"]"#),
    },
    DemoInstance {
        port: "web-2",
        ns: "sgs-demo-web2",
        link: "sgsd-web2",
        mac: "fa:16:3e:00:00:12",
        v4: "10.0.0.12",
        v6: "fd00::12",
        groups: Some(r#"["default", "web"]"#),
    },
    DemoInstance {
        port: "db",
        ns: "sgs-demo-db",
        link: "sgsd-db",
        mac: "fa:16:3e:00:00:13",
        v4: "10.0.0.13",
        v6: "fd00::13",
        groups: Some(r#"["db"]"#),
    },
    DemoInstance {
        port: "router",
        ns: "sgs-demo-rtr",
        link: "sgsd-rtr",
        mac: "fa:16:3e:00:00:01",
        v4: "10.0.0.1",
        v6: "fd00::1",
        groups: None,
    },
];

/// Prefix of every namespace the demo creates.
pub(super) const NS_PREFIX: &str = "sgs-demo-";
/// Prefix of every link the demo creates.
pub(super) const LINK_PREFIX: &str = "sgsd-";
/// Address used by the anti-spoofing probe: on web-2's interface, but not web-2's.
pub(super) const FORGED_V4: &str = "10.0.0.99";
/// TCP ports every demo server listens on (so "blocked" never means "nobody listening").
pub(super) const TCP_PORTS: [u16; 3] = [22, 80, 5432];
/// UDP ports every demo server listens on.
pub(super) const UDP_PORTS: [u16; 2] = [53, 5000];
/// How long a probe waits for an answer before calling it blocked.
pub(super) const PROBE_SECS: u32 = 2;

/// The config the demo runs, for `backend`.
pub(super) fn config_text(backend: DemoBackend) -> String {
    let mut t = String::new();
    t.push_str(
        "# Written by `sgswitch demo`.\n\
         #   web-1, web-2  groups default + web: HTTP and ping from anywhere; members of\n\
         #                 default reach each other on anything\n\
         #   db            group db: PostgreSQL (tcp/5432) only from members of web;\n\
         #                 no egress rule (replies still pass: the group is stateful)\n\
         #   router        port security off (a Neutron router port)\n\
         # The default group is not declared: it has Neutron's default rules.\n\n\
         [switch]\nworkers = 1\n\n\
         [[security_groups]]\n\
         name = \"web\"\n\
         rules = [\n\
         \x20 { direction = \"ingress\", ethertype = \"IPv4\", protocol = \"tcp\", port_range_min = 80, port_range_max = 80 },\n\
         \x20 { direction = \"ingress\", ethertype = \"IPv6\", protocol = \"tcp\", port_range_min = 80, port_range_max = 80 },\n\
         \x20 { direction = \"ingress\", ethertype = \"IPv4\", protocol = \"icmp\", port_range_min = 8 },\n\
         \x20 { direction = \"ingress\", ethertype = \"IPv6\", protocol = \"ipv6-icmp\", port_range_min = 128 },\n\
         \x20 { direction = \"egress\", ethertype = \"IPv4\" },\n\
         \x20 { direction = \"egress\", ethertype = \"IPv6\" },\n\
         ]\n\n\
         [[security_groups]]\n\
         name = \"db\"\n\
         rules = [\n\
         \x20 { direction = \"ingress\", ethertype = \"IPv4\", protocol = \"tcp\", port_range_min = 5432, port_range_max = 5432, remote_group = \"web\" },\n\
         \x20 { direction = \"ingress\", ethertype = \"IPv6\", protocol = \"tcp\", port_range_min = 5432, port_range_max = 5432, remote_group = \"web\" },\n\
         ]\n",
    );
    for i in &INSTANCES {
        let _ = write!(
            t,
            "\n[[ports]]\nname = \"{}\"\nmac = \"{}\"\nfixed_ips = [\"{}\", \"{}\"]\n",
            i.port, i.mac, i.v4, i.v6
        );
        match i.groups {
            Some(g) => {
                let _ = writeln!(t, "security_groups = {g}");
            }
            None => t.push_str("port_security = false\n"),
        }
        let _ = writeln!(t, "backend = {}", backend.lab().port_toml(i.link, i.ns));
    }
    t
}

/// What a probe sends.
#[derive(Clone, Copy, Debug)]
pub(super) enum Probe {
    Ping,
    Tcp(u16),
    Udp(u16),
}

/// One row of the demo's table.
pub(super) struct Case {
    pub(super) from: usize,
    pub(super) to: usize,
    pub(super) v6: bool,
    pub(super) probe: Probe,
    /// Send from this (forged) source address instead of the instance's own.
    pub(super) forged_src: Option<&'static str>,
    pub(super) expect_pass: bool,
    /// The rule (or its absence) that decides the case.
    pub(super) rule: &'static str,
}

pub(super) const CASES: [Case; 13] = [
    Case {
        from: WEB1,
        to: WEB2,
        v6: false,
        probe: Probe::Ping,
        forged_src: None,
        expect_pass: true,
        rule: "default: ingress from members of default",
    },
    Case {
        from: WEB1,
        to: WEB2,
        v6: true,
        probe: Probe::Ping,
        forged_src: None,
        expect_pass: true,
        rule: "default: ingress from members of default (ND always allowed)",
    },
    Case {
        from: WEB2,
        to: WEB1,
        v6: false,
        probe: Probe::Udp(5000),
        forged_src: None,
        expect_pass: true,
        rule: "default: ingress from members of default",
    },
    Case {
        from: RTR,
        to: WEB1,
        v6: false,
        probe: Probe::Tcp(80),
        forged_src: None,
        expect_pass: true,
        rule: "web: ingress tcp/80 from anywhere",
    },
    Case {
        from: RTR,
        to: WEB2,
        v6: true,
        probe: Probe::Tcp(80),
        forged_src: None,
        expect_pass: true,
        rule: "web: ingress tcp/80 from anywhere (IPv6)",
    },
    Case {
        from: RTR,
        to: WEB2,
        v6: false,
        probe: Probe::Ping,
        forged_src: None,
        expect_pass: true,
        rule: "web: ingress icmp echo from anywhere",
    },
    Case {
        from: WEB1,
        to: DB,
        v6: false,
        probe: Probe::Tcp(5432),
        forged_src: None,
        expect_pass: true,
        rule: "db: tcp/5432 from group web; reply passes statefully",
    },
    Case {
        from: WEB2,
        to: DB,
        v6: true,
        probe: Probe::Tcp(5432),
        forged_src: None,
        expect_pass: true,
        rule: "db: tcp/5432 from group web (IPv6)",
    },
    Case {
        from: RTR,
        to: DB,
        v6: false,
        probe: Probe::Tcp(5432),
        forged_src: None,
        expect_pass: false,
        rule: "db: router is not a member of web",
    },
    Case {
        from: WEB1,
        to: DB,
        v6: false,
        probe: Probe::Tcp(22),
        forged_src: None,
        expect_pass: false,
        rule: "db: no rule for tcp/22",
    },
    Case {
        from: DB,
        to: WEB1,
        v6: false,
        probe: Probe::Ping,
        forged_src: None,
        expect_pass: false,
        rule: "db: no egress rule",
    },
    Case {
        from: RTR,
        to: WEB1,
        v6: false,
        probe: Probe::Udp(53),
        forged_src: None,
        expect_pass: false,
        rule: "web-1: no udp rule; router not in default",
    },
    Case {
        from: WEB2,
        to: RTR,
        v6: false,
        probe: Probe::Ping,
        forged_src: Some(FORGED_V4),
        expect_pass: false,
        rule: "anti-spoofing: 10.0.0.99 is not web-2's",
    },
];

impl Case {
    pub(super) fn title(&self) -> String {
        let what = match self.probe {
            Probe::Ping if self.v6 => "ping -6".to_string(),
            Probe::Ping => "ping".to_string(),
            Probe::Tcp(p) => format!("tcp/{p}{}", if self.v6 { " v6" } else { "" }),
            Probe::Udp(p) => format!("udp/{p}{}", if self.v6 { " v6" } else { "" }),
        };
        match self.forged_src {
            Some(src) => format!("{what} from {src}"),
            None => what,
        }
    }

    pub(super) fn dst(&self) -> &'static str {
        let i = &INSTANCES[self.to];
        if self.v6 {
            i.v6
        } else {
            i.v4
        }
    }
}
