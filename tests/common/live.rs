//! What the two whole-switch live suites (`live_matrix`, `live_vs_replay`) share: the
//! policy their instances run, the backend variants they cover, and the lock that runs
//! their tests one at a time.

use std::sync::Mutex;

use super::Backend;

/// The tests of a file that takes it run one at a time (each builds a whole topology
/// and would compete with the others for the two cores).
pub static SERIAL: Mutex<()> = Mutex::new(());

/// Allowed in: TCP 7000, UDP 7001, UDP 7005 (the broadcasts), echo requests; all out.
/// TCP 7002 and UDP 7003 have servers but no rule.
pub const POLICY: &str = r#"
[[security_groups]]
name = "inst"
rules = [
  { direction = "ingress", ethertype = "IPv4", protocol = "tcp", port_range_min = 7000, port_range_max = 7000 },
  { direction = "ingress", ethertype = "IPv6", protocol = "tcp", port_range_min = 7000, port_range_max = 7000 },
  { direction = "ingress", ethertype = "IPv4", protocol = "udp", port_range_min = 7001, port_range_max = 7001 },
  { direction = "ingress", ethertype = "IPv6", protocol = "udp", port_range_min = 7001, port_range_max = 7001 },
  { direction = "ingress", ethertype = "IPv4", protocol = "udp", port_range_min = 7005, port_range_max = 7005 },
  { direction = "ingress", ethertype = "IPv6", protocol = "udp", port_range_min = 7005, port_range_max = 7005 },
  { direction = "ingress", ethertype = "IPv4", protocol = "icmp", port_range_min = 8 },
  { direction = "ingress", ethertype = "IPv6", protocol = "ipv6-icmp", port_range_min = 128 },
  { direction = "egress", ethertype = "IPv4" },
  { direction = "egress", ethertype = "IPv6" },
]
"#;

/// A backend configuration of the switch under test.
#[derive(Clone, Copy, Debug)]
pub struct Variant {
    pub name: &'static str,
    pub backend: Backend,
    /// `sgswitch run --copy-forward`.
    pub copy_forward: bool,
}

impl Variant {
    pub const AFXDP: Variant = Variant {
        name: "afxdp",
        backend: Backend::AfXdp,
        copy_forward: false,
    };
    pub const AFXDP_COPY_FORWARD: Variant = Variant {
        name: "afxdp-copy-forward",
        backend: Backend::AfXdp,
        copy_forward: true,
    };
    pub const AFPACKET: Variant = Variant {
        name: "afpacket",
        backend: Backend::AfPacket,
        copy_forward: false,
    };
    pub const TAP: Variant = Variant {
        name: "tap",
        backend: Backend::Tap,
        copy_forward: false,
    };
}
