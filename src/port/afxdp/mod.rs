//! AF_XDP ports through `xdpilone`, with our own redirect program ([`super::xdp`]).
//!
//! # Structure
//! A [`UmemGroup`] owns one UMEM (an anonymous `mmap` of `frame_count` frames of 4096
//! bytes) and one or more *members*: an AF_XDP socket bound to (interface, queue), with its
//! own fill, completion, RX and TX rings, and the XDP program + XSKMAP attached to that
//! interface. The first member binds on the UMEM's own socket (`need_wakeup`, zero-copy or
//! copy); further members bind with `XDP_SHARED_UMEM` and flags 0 (the kernel gives them
//! the first member's mode; any other flag is `EINVAL`). [`AfXdpPort`] is a group of one.
//! Once every member is bound the group lets go of its own handle on the registering
//! socket: every bound socket holds a kernel reference to the UMEM, so the first member's
//! socket closes like any other when that member leaves (hot-unplug) and its queue is
//! free again for a new port on the same device.
//!
//! # Frame ownership (the invariant everything rests on)
//! Every frame is in exactly one place: the group's free stack, a member's fill ring or
//! the kernel's RX path, a member's RX ring, a caller's [`DescBatch`], a member's TX ring
//! or the kernel's TX path, or a member's completion ring. The free stack is preallocated
//! with room for every frame, so returning a frame never allocates. Addresses read from RX
//! and completion rings are masked to the frame base before reuse (RX descriptors point
//! past the kernel's headroom).
//!
//! # Two ways to use a group
//! * Copying ([`Port`](crate::port::Port)): `rx_burst` copies each received frame into the caller's
//!   [`FrameBatch`](crate::port::FrameBatch) and returns the frame to the free stack at once; `tx_burst` copies into
//!   free frames. Works with any other port type.
//! * Moving descriptors (zero copy between members): [`UmemGroup::rx_descs`] hands out
//!   [`Desc`]s, which the caller now owns; [`UmemGroup::frame`] / [`UmemGroup::frame_mut`]
//!   give access to the bytes in place; then *each* descriptor must go back exactly once,
//!   either to [`UmemGroup::tx_descs`] (on any member: the frame is transmitted by that
//!   member and later reaped from its completion ring into the free stack) or to
//!   [`UmemGroup::release`]. A descriptor that is forgotten is lost to the group until it
//!   is dropped (never unsafe, but the group runs dry). `Desc` fields are private so only
//!   the group creates them; `frame` still bounds-checks.
//!
//! A group is driven by one thread (it is `Send`, not `Sync`): a runtime that forwards
//! between two AF_XDP ports by moving descriptors puts both in one group on one worker.
//!
//! # Per-call work
//! `rx`: reap completions, top up the fill ring (see `fill`), wake the fill queue if
//! the kernel asks, take up to a burst from the RX ring. `tx`: reap completions, reserve TX
//! slots, write descriptors, commit, then kick with `sendto(MSG_DONTWAIT)` *in a loop* while
//! the kernel has not consumed them: in copy mode one kick moves at most 32 descriptors.
//! Frames that find no TX slot or no free frame are dropped and counted.
//!
//! # Files
//! * this file: the group and member state ([`UmemGroup`]) and its read-only accessors;
//! * `config`: what a caller asks for and what a member obtained;
//! * `desc`: [`Desc`] and [`DescBatch`], the ownership tokens of UMEM frames;
//! * `open`: the UMEM mapping, socket and ring set-up, bind, and removing a member;
//! * `fill`: the fill-ring depth policy (with its measurements);
//! * `rx`: receiving, descriptor access in place, giving frames back;
//! * `tx`: transmitting (descriptors or copies), kicks, completions;
//! * `port`: the copying [`Port`](crate::port::Port)(super::Port) views ([`AfXdpPort`], [`MemberPort`]);
//! * `forward`: [`UmemPorts`], the group behind the runtime's `PortGroup` interface.
//!
//! This module tree owns the AF_XDP sockets and the UMEM; it uses [`super::xdp`] for the
//! program and the XSKMAP, and knows no dataplane logic (no verdicts, no policy).
//!
//! # Modes
//! [`BindMode::Auto`] tries zero-copy then copy (veth and tap only do copy mode; their
//! zero-copy bind fails with `EOPNOTSUPP`). The XDP program runs native, then generic
//! ([`XdpMode::Auto`](crate::port::xdp::XdpMode::Auto)). [`UmemGroup::info`] reports what was obtained.
//!
//! # Observed here (Linux 6.18, veth and tap)
//! * veth and tap: native XDP attaches; AF_XDP binds in copy mode only (a zero-copy bind
//!   fails with `EOPNOTSUPP`, reported as [`PortError::BindFailed`](super::PortError::BindFailed)); generic mode works
//!   too. A bridge refuses native XDP ([`PortError::XdpRefused`](super::PortError::XdpRefused)).
//! * Re-opening a queue right after closing its socket gives `EBUSY` for a few
//!   milliseconds (the kernel releases the queue from a workqueue): bind retries for up to
//!   2 s on `EBUSY`.
//! * Frames from a namespace whose veth has TX checksum offload on carry *partial* L4
//!   checksums, and XDP does not say so: such namespaces need `ethtool -K IF tx off`
//!   (the tap and AF_PACKET backends complete them from the virtio-net header instead).
//! * Forwarding between two veth members on this 2-core VM (benches/e2e.sh: 64-byte
//!   frames, generator and the veths' NAPI on one core, the switch on the other):
//!   380–430 kpps, bounded by the generator's core, where the kernel's copy-mode receive
//!   work for our sockets costs ~0.8–0.9 µs per frame with NAPI moderation and the fill
//!   depths of `fill`; moving descriptors or copying makes no measurable difference there.
//!   Loss under overload shows up as `rx_ring_full` in [`UmemGroup::xsk_statistics`].
//!
//! # Rejected options
//! * `libxdp`/`libbpf` (C toolchain) and the `aya` loader (large): six BPF instructions do.
//! * Unaligned-chunk UMEM mode: frames are 4096-byte aligned chunks, which keeps masking
//!   to a single AND and every frame in one page.
//! * A mutex-protected free list shared by several threads: one worker owns a group.

mod config;
mod desc;
mod fill;
mod forward;
mod open;
mod port;
mod rx;
mod tx;

pub use config::{BindMode, GroupConfig, MemberConfig, MemberInfo};
pub use desc::{Desc, DescBatch};
pub use fill::IDLE_AFTER;
pub use forward::UmemPorts;
pub use port::{AfXdpConfig, AfXdpPort, MemberPort};

use super::errlog::ErrorLog;
use super::xdp::XdpAttachment;
use super::{PortStats, MAX_BURST};
use open::Area;
use std::os::fd::RawFd;
use xdpilone::{DeviceQueue, RingRx, RingTx, User};

/// Size of a UMEM frame (a page: one frame never spans two pages).
pub const FRAME_SIZE: u32 = 4096;
const FRAME_MASK: u64 = !(FRAME_SIZE as u64 - 1);

struct Member {
    // Field order = drop order: detach the program first, then close rings and sockets.
    _attachment: XdpAttachment,
    rx: RingRx,
    tx: RingTx,
    fq: DeviceQueue,
    user: User,
    info: MemberInfo,
    need_wakeup: bool,
    /// Fill-ring depth while frames flow, and after [`IDLE_AFTER`] without frames (see
    /// [`fill`]).
    busy_fill: u32,
    idle_fill: u32,
    /// Polls in a row that found the RX ring empty, and when the first of them ran.
    empty_polls: u32,
    idle_since: std::time::Instant,
    /// Frames received since the fill ring was last topped up: the ring's consumer index
    /// (written by the kernel on every frame) is read only once per `REFILL_BATCH`, so the
    /// cache line does not bounce between the polling core and the NAPI core per loop.
    since_refill: u32,
    /// TX descriptors submitted and not yet seen on the completion ring: the completion
    /// ring is read only when some are outstanding.
    tx_outstanding: u32,
    stats: PortStats,
    /// Failed TX wakeups, logged rate-limited.
    errors: ErrorLog,
    /// A TX wakeup failed with an errno that says the device is gone (`ENXIO`: the
    /// socket was unbound when its device was deleted), not yet taken.
    fault: Option<i32>,
}

/// Sockets on one or more device queues sharing one UMEM. See the module doc.
pub struct UmemGroup {
    // Field order = drop order: members (programs, rings, sockets; the last socket to
    // close releases the UMEM registration), then the mapping.
    members: Vec<Member>,
    id: u32,
    free: Vec<u64>,
    frame_count: u32,
    area: Area,
}

// SAFETY: the group exclusively owns its mapping, UMEM socket and rings; none of them is
// tied to the creating thread (the raw pointers are into the group's own mapping). Moving
// the whole group to another thread moves all that state together; it is not `Sync`.
unsafe impl Send for UmemGroup {}

impl UmemGroup {
    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Total frames in the UMEM.
    pub fn frame_count(&self) -> u32 {
        self.frame_count
    }

    /// Frames currently in the free stack.
    pub fn free_frames(&self) -> usize {
        self.free.len()
    }

    /// What member `i` obtained (mode, zero-copy or copy).
    pub fn info(&self, i: usize) -> Option<&MemberInfo> {
        self.members.get(i).map(|m| &m.info)
    }

    /// Counters of member `i`.
    pub fn stats(&self, i: usize) -> PortStats {
        self.members.get(i).map(|m| m.stats).unwrap_or_default()
    }

    /// The kernel's XDP socket statistics of member `i` (ring full, fill ring empty, ...).
    pub fn xsk_statistics(&self, i: usize) -> Option<xdpilone::xdp::XdpStatisticsV2> {
        self.members.get(i)?.user.statistics_v2().ok()
    }

    /// The errno of the last TX wakeup of member `i` that said its device may be gone
    /// ([`crate::port::gone_errno`]), once: the call clears it.
    pub fn take_fault(&mut self, i: usize) -> Option<i32> {
        self.members.get_mut(i)?.fault.take()
    }

    /// The socket fd of member `i`, readable when its RX ring has frames.
    pub fn poll_fd(&self, i: usize) -> Option<RawFd> {
        self.members.get(i).map(|m| m.user.as_raw_fd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_mask() {
        assert_eq!((4096 * 3 + 256) & FRAME_MASK, 4096 * 3);
    }
}
