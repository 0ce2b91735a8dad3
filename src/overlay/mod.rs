//! The overlay between hosts: Geneve (RFC 8926) and VXLAN (RFC 7348) encapsulation of
//! instance frames over an underlay, and this host's overlay settings.
//!
//! Owns: the host-local overlay settings ([`OverlaySettings`]: the underlay netdev, the
//! local VTEP address; not shared policy, never in the store). May not touch: policy,
//! ports, the pipeline or anything running (it uses `wire` and `flow` only; the
//! pipeline and the runtime use it).
//!
//! Layering: `wire` → `flow` → **`overlay`** (beside `policy`: neither uses the other)
//! → … → `pipeline` → `runtime`.

use std::net::IpAddr;

/// How the switch reaches the underlay netdev.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum UnderlayBackend {
    /// An AF_PACKET socket on the netdev (works on any netdev, veths included).
    #[default]
    AfPacket,
}

impl UnderlayBackend {
    /// The names a config file gives: `afpacket`.
    pub fn from_name(s: &str) -> Option<UnderlayBackend> {
        match s {
            "afpacket" => Some(UnderlayBackend::AfPacket),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            UnderlayBackend::AfPacket => "afpacket",
        }
    }
}

/// The underlay netdev: where encapsulated frames leave and arrive.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Underlay {
    pub backend: UnderlayBackend,
    /// The netdev (it carries the local VTEP address; its MTU bounds the inner MTU).
    pub ifname: String,
}

/// This host's overlay settings (config `[overlay]`; the host name itself is the
/// model's `local_host`).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct OverlaySettings {
    /// The underlay; `None`: no overlay dataplane (remote ports are unreachable).
    pub underlay: Option<Underlay>,
    /// The local VTEP address (outer source); `None`: this host's `vtep` in the model's
    /// hosts.
    pub vtep: Option<IpAddr>,
}
