//! What a caller asks of an AF_XDP group ([`MemberConfig`], [`GroupConfig`], [`BindMode`])
//! and what each member obtained ([`MemberInfo`]). Plain data: no system calls here.
//!
//! Owns: those types and their defaults. May not touch: sockets, the UMEM or rings
//! ([`super::open`] acts on a config). Uses [`crate::port::xdp::XdpMode`] (the model's
//! [`crate::policy::XdpMode`], re-exported) and nothing else of the crate.

use crate::port::xdp::XdpMode;

/// How the AF_XDP socket binds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BindMode {
    /// Zero-copy first, then copy mode.
    #[default]
    Auto,
    ZeroCopy,
    Copy,
}

impl BindMode {
    pub fn as_str(self) -> &'static str {
        match self {
            BindMode::Auto => "auto",
            BindMode::ZeroCopy => "zero-copy",
            BindMode::Copy => "copy",
        }
    }
}

/// One member of a group: a device queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberConfig {
    pub ifname: String,
    pub queue: u32,
    pub xdp_mode: XdpMode,
}

impl MemberConfig {
    pub fn new(ifname: &str) -> Self {
        MemberConfig {
            ifname: ifname.to_owned(),
            queue: 0,
            xdp_mode: XdpMode::Auto,
        }
    }
}

/// Sizes and modes of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupConfig {
    /// Total UMEM frames; 0 = `4 * ring_size` per member. The fill ring is `2 * ring_size`
    /// long; a member keeps up to half of its share (at most `2 * ring_size`) in it when
    /// idle, and in copy mode only `ring_size / 2` while frames flow (`super::fill`).
    pub frame_count: u32,
    /// Size of each ring (fill, completion, RX, TX); a power of two in 64..=16384.
    pub ring_size: u32,
    pub bind: BindMode,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            frame_count: 0,
            ring_size: 1024,
            bind: BindMode::Auto,
        }
    }
}

/// What a member obtained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberInfo {
    pub ifname: String,
    pub ifindex: u32,
    pub queue: u32,
    /// `Native` or `Generic` (never `Auto`).
    pub xdp_mode: XdpMode,
    /// `ZeroCopy` or `Copy` (never `Auto`).
    pub bind: BindMode,
}
