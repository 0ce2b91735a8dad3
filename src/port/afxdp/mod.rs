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
//! * Copying ([`Port`]): `rx_burst` copies each received frame into the caller's
//!   [`FrameBatch`] and returns the frame to the free stack at once; `tx_burst` copies into
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
//! `rx`: reap completions, top up the fill ring (see "Fill depth"), wake the fill queue if
//! the kernel asks, take up to a burst from the RX ring. `tx`: reap completions, reserve TX
//! slots, write descriptors, commit, then kick with `sendto(MSG_DONTWAIT)` *in a loop* while
//! the kernel has not consumed them: in copy mode one kick moves at most 32 descriptors.
//! Frames that find no TX slot or no free frame are dropped and counted.
//!
//! # Fill depth
//! The fill ring is a FIFO: a frame given to it is written by the kernel only after every
//! frame queued before it, so its depth is the reuse distance of receive frames. Each
//! frame is a page of its own (4096-byte frames), and in copy mode the kernel writes it
//! through its own 4 KiB-page mapping of the UMEM: a deep fill ring makes every received
//! frame a fresh page and cache line on both the kernel's side (the copy) and ours (the
//! header reads). So a member keeps two depths:
//! * while frames flow, in copy mode, `busy_fill` = half the RX ring (512 by default),
//!   refilled every [`REFILL_BATCH`] frames from the top of the (LIFO) free stack, so the
//!   same few hundred frames circulate (zero-copy binds keep the idle depth: there is no
//!   kernel copy to save, and a NIC at line rate wants the headroom);
//! * after [`IDLE_AFTER`] (10 ms) without a frame, `idle_fill` = the whole RX ring or more
//!   (`2 * ring_size`, bounded by the member's share of the UMEM), so a burst that arrives
//!   while an idle worker sleeps (the runtime backs off up to 1 ms) finds the RX ring,
//!   not the fill ring, as its limit. When traffic resumes the deep ring drains to the
//!   busy depth by itself (top-ups stop until it is below). Idleness is time, not a count
//!   of empty polls: under load with NAPI moderation the RX ring is empty for up to
//!   `napi_defer_us` between two kernel batches, thousands of busy polls (a first version
//!   counting 64 empty polls went deep in every such gap). The clock is read once per
//!   [`IDLE_CHECK`] empty polls.
//!
//! Measured (benches/e2e.sh, 64-byte frames through two veths, NAPI on the generator's
//! core), the kernel's receive work per frame for sgswitch's ports: with one constant
//! depth, 3 rounds each in one series, 0.94–1.04 µs at 2048 (the old default), 0.89–1.02
//! at 1024, 0.87–0.91 at 512, 0.86–0.90 at 256 (less room for a stall); with the two
//! depths as shipped, 0.79–0.88 µs (3 rounds) and 0.82–0.87 (the README's 5-round table).
//!
//! # Modes
//! [`BindMode::Auto`] tries zero-copy then copy (veth and tap only do copy mode; their
//! zero-copy bind fails with `EOPNOTSUPP`). The XDP program runs native, then generic
//! ([`XdpMode::Auto`]). [`UmemGroup::info`] reports what was obtained.
//!
//! # Observed here (Linux 6.18, veth and tap)
//! * veth and tap: native XDP attaches; AF_XDP binds in copy mode only (a zero-copy bind
//!   fails with `EOPNOTSUPP`, reported as [`PortError::BindFailed`]); generic mode works
//!   too. A bridge refuses native XDP ([`PortError::XdpRefused`]).
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
//!   depth above; moving descriptors or copying makes no measurable difference there.
//!   Loss under overload shows up as `rx_ring_full` in [`UmemGroup::xsk_statistics`].
//!
//! # Rejected options
//! * `libxdp`/`libbpf` (C toolchain) and the `aya` loader (large): six BPF instructions do.
//! * Unaligned-chunk UMEM mode: frames are 4096-byte aligned chunks, which keeps masking
//!   to a single AND and every frame in one page.
//! * A mutex-protected free list shared by several threads: one worker owns a group.

mod forward;
pub use forward::UmemPorts;

use super::xdp::{XdpAttachment, XdpMode, XskMap};
use super::{ifindex, FrameBatch, Port, PortError, PortStats, Step, MAX_BURST};
use std::io;
use std::num::NonZeroU32;
use std::os::fd::RawFd;
use std::ptr::NonNull;
use xdpilone::xdp::XdpDesc;
use xdpilone::{DeviceQueue, IfInfo, RingRx, RingTx, Socket, SocketConfig, Umem, UmemConfig, User};

/// Size of a UMEM frame (a page: one frame never spans two pages).
pub const FRAME_SIZE: u32 = 4096;
const FRAME_MASK: u64 = !(FRAME_SIZE as u64 - 1);
/// Most `sendto` kicks per `tx` call (each moves up to 32 descriptors in copy mode).
const MAX_KICKS: usize = 64;

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
    /// idle, and in copy mode only `ring_size / 2` while frames flow (module doc, "Fill
    /// depth").
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

/// A frame owned by the caller: its UMEM address, length and the group it belongs to.
///
/// Neither `Copy` nor `Clone`: a descriptor is the *ownership* of one UMEM frame, so the
/// type system guarantees it is given back (to `tx_descs` or `release`) at most once, and
/// that `UmemGroup::frame` can only be called while the caller still owns it. Only a group
/// creates them; a descriptor of another group is refused (empty frame, not transmitted).
#[derive(Debug, PartialEq, Eq)]
pub struct Desc {
    addr: u64,
    len: u32,
    group: u32,
}

impl Desc {
    /// The placeholder for empty `DescBatch` entries (belongs to no group).
    const NULL: Desc = Desc {
        addr: 0,
        len: 0,
        group: 0,
    };

    pub fn len(&self) -> usize {
        self.len as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The UMEM offset of the frame data (diagnostics).
    pub fn addr(&self) -> u64 {
        self.addr
    }
}

/// A fixed-capacity burst of [`Desc`]s (no allocation after creation).
pub struct DescBatch {
    descs: [Desc; MAX_BURST],
    len: usize,
}

impl Default for DescBatch {
    fn default() -> Self {
        DescBatch {
            descs: [const { Desc::NULL }; MAX_BURST],
            len: 0,
        }
    }
}

impl DescBatch {
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn is_full(&self) -> bool {
        self.len == MAX_BURST
    }
    pub fn as_slice(&self) -> &[Desc] {
        &self.descs[..self.len]
    }
    /// For [`UmemGroup::set_desc_len`].
    pub fn as_mut_slice(&mut self) -> &mut [Desc] {
        &mut self.descs[..self.len]
    }
    /// Add a descriptor; a full batch hands it back.
    pub fn push(&mut self, d: Desc) -> Result<(), Desc> {
        if self.is_full() {
            return Err(d);
        }
        self.descs[self.len] = d;
        self.len += 1;
        Ok(())
    }
    /// Take the last descriptor out.
    pub fn pop(&mut self) -> Option<Desc> {
        self.len = self.len.checked_sub(1)?;
        Some(std::mem::replace(&mut self.descs[self.len], Desc::NULL))
    }
    /// Take every descriptor out, in order, leaving the batch empty.
    pub fn drain(&mut self) -> impl Iterator<Item = Desc> + '_ {
        let n = std::mem::take(&mut self.len);
        self.descs[..n]
            .iter_mut()
            .map(|d| std::mem::replace(d, Desc::NULL))
    }
}

/// Source of group ids (0 is `Desc::NULL`'s).
static NEXT_GROUP_ID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

/// The anonymous mapping that backs a UMEM. Unmapped on drop.
struct Area {
    ptr: NonNull<u8>,
    len: usize,
}

impl Area {
    fn new(len: usize, ifname: &str) -> Result<Area, PortError> {
        // SAFETY: anonymous private mapping with no address hint; the result is checked.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(PortError::os(
                ifname,
                Step::Mmap,
                io::Error::last_os_error(),
            ));
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(|| PortError::Os {
            ifname: ifname.to_owned(),
            step: Step::Mmap,
            source: io::Error::other("mmap returned NULL"),
        })?;
        Ok(Area { ptr, len })
    }

    fn as_slice_ptr(&self) -> NonNull<[u8]> {
        NonNull::slice_from_raw_parts(self.ptr, self.len)
    }
}

impl Drop for Area {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly the mapping created in `new`; every user (the
        // Umem and all rings) is dropped before the Area (field order in UmemGroup).
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

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
    /// the module doc, "Fill depth").
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
}

/// TX reservations per `tx` call. `xdpilone` reserves `1..=n` slots against its cached
/// copy of the kernel's consumer index and refreshes that copy only when it shows no room
/// at all, so one reservation can return fewer slots than the ring really has (measured:
/// ~4% of forwarded frames dropped as "not sent" at 400 kpps with half-empty rings).
/// A second reservation starts from an exhausted cache, so it sees the kernel's progress.
const TX_RESERVE_ROUNDS: usize = 2;

/// Frames received between two fill-ring top-ups.
const REFILL_BATCH: u32 = 32;

/// Time without a received frame after which a member's fill ring is topped up to its
/// idle depth.
pub const IDLE_AFTER: std::time::Duration = std::time::Duration::from_millis(10);

/// Empty polls between two looks at the clock while the RX ring stays empty.
const IDLE_CHECK: u32 = 64;

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

fn errno_to_io(e: xdpilone::Errno) -> io::Error {
    io::Error::from_raw_os_error(e.get_raw().abs())
}

/// Bind, retrying while the kernel still holds the queue for a socket that was just
/// closed (its release is deferred to a workqueue, so an immediate re-open of the same
/// queue sees `EBUSY` for a few milliseconds).
fn bind_retrying(umem: &Umem, user: &User) -> io::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match umem.bind(user) {
            Ok(()) => return Ok(()),
            Err(e) => {
                let e = errno_to_io(e);
                if e.raw_os_error() != Some(libc::EBUSY) || std::time::Instant::now() > deadline {
                    return Err(e);
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
}

impl UmemGroup {
    /// Open every member, sharing one UMEM. On error nothing stays attached or open.
    pub fn open(members: &[MemberConfig], cfg: &GroupConfig) -> Result<UmemGroup, PortError> {
        let first = members
            .first()
            .ok_or_else(|| PortError::Config("an AF_XDP group needs a member".into()))?;
        if members.len() > 64 {
            return Err(PortError::Config("at most 64 members per UMEM".into()));
        }
        let ring = cfg.ring_size;
        if !ring.is_power_of_two() || !(64..=16384).contains(&ring) {
            return Err(PortError::Config(format!(
                "ring_size {ring} must be a power of two in 64..=16384"
            )));
        }
        let n = members.len() as u32;
        let frame_count = if cfg.frame_count == 0 {
            4 * ring * n
        } else {
            cfg.frame_count
        };
        if frame_count < 2 * n * 64 || frame_count > (1 << 22) {
            return Err(PortError::Config(format!(
                "frame_count {frame_count} must be in {}..={}",
                2 * n * 64,
                1 << 22
            )));
        }
        let mut ifindexes = Vec::with_capacity(members.len());
        for m in members {
            ifindexes.push(ifindex(&m.ifname)?);
        }
        let area = Area::new(frame_count as usize * FRAME_SIZE as usize, &first.ifname)?;
        let tries: &[BindMode] = match cfg.bind {
            BindMode::Auto => &[BindMode::ZeroCopy, BindMode::Copy],
            BindMode::ZeroCopy => &[BindMode::ZeroCopy],
            BindMode::Copy => &[BindMode::Copy],
        };
        let mut last_err = None;
        for &bind in tries {
            match Self::try_open(&area, members, &ifindexes, ring, frame_count, bind) {
                Ok(members) => {
                    let mut g = UmemGroup {
                        members,
                        id: NEXT_GROUP_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                        free: Vec::with_capacity(frame_count as usize),
                        frame_count,
                        area,
                    };
                    g.free
                        .extend((0..frame_count as u64).rev().map(|i| i * FRAME_SIZE as u64));
                    for i in 0..g.members.len() {
                        let depth = g.members[i].idle_fill;
                        g.top_up(i, depth);
                    }
                    return Ok(g);
                }
                Err(e @ PortError::BindFailed { .. }) if bind == BindMode::ZeroCopy => {
                    last_err = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| PortError::Config("no bind mode to try".into())))
    }

    fn try_open(
        area: &Area,
        members: &[MemberConfig],
        ifindexes: &[u32],
        ring: u32,
        frame_count: u32,
        bind: BindMode,
    ) -> Result<Vec<Member>, PortError> {
        let first = &members[0].ifname;
        // The fill ring is twice the RX ring: while the worker is descheduled the kernel
        // can fill the whole RX ring before the fill ring runs dry.
        let ucfg = UmemConfig {
            fill_size: 2 * ring,
            complete_size: ring,
            frame_size: FRAME_SIZE,
            headroom: 0,
            flags: 0,
        };
        // SAFETY: `area` is a page-aligned private mapping of exactly frame_count frames;
        // it outlives the Umem (dropped at the end of this function) and every ring
        // derived from it (the caller's UmemGroup drops its members before its area).
        let umem = unsafe { Umem::new(ucfg, area.as_slice_ptr()) }
            .map_err(|e| PortError::os(first, Step::UmemRegister, errno_to_io(e)))?;
        let idle_fill = (2 * ring).min(frame_count / (2 * members.len() as u32));
        // Shallow only in copy mode, where the kernel's copy is what a deep ring slows
        // down (measured); a zero-copy NIC DMAs into the frames and refills its hardware
        // ring from the fill ring in batches, so it keeps the deep ring (headroom at
        // line rate), as DPDK's AF_XDP driver does.
        let busy_fill = if bind == BindMode::ZeroCopy {
            idle_fill
        } else {
            (ring / 2).min(idle_fill)
        };
        let ring_nz = NonZeroU32::new(ring);
        let mut out = Vec::with_capacity(members.len());
        for (k, (m, &idx)) in members.iter().zip(ifindexes).enumerate() {
            let name = m.ifname.as_str();
            let mut info = IfInfo::invalid();
            info.from_ifindex(idx)
                .map_err(|e| PortError::os(name, Step::InterfaceLookup, errno_to_io(e)))?;
            info.set_queue(m.queue);
            let sock = if k == 0 {
                Socket::with_shared(&info, &umem)
            } else {
                Socket::new(&info)
            }
            .map_err(|e| PortError::os(name, Step::Socket, errno_to_io(e)))?;
            let fq = umem
                .fq_cq(&sock)
                .map_err(|e| PortError::os(name, Step::Rings, errno_to_io(e)))?;
            let bind_flags = if k == 0 {
                SocketConfig::XDP_BIND_NEED_WAKEUP
                    | match bind {
                        BindMode::ZeroCopy => SocketConfig::XDP_BIND_ZEROCOPY,
                        _ => SocketConfig::XDP_BIND_COPY,
                    }
            } else {
                0
            };
            let user = umem
                .rx_tx(
                    &sock,
                    &SocketConfig {
                        rx_size: ring_nz,
                        tx_size: ring_nz,
                        bind_flags,
                    },
                )
                .map_err(|e| PortError::os(name, Step::Rings, errno_to_io(e)))?;
            let rx = user
                .map_rx()
                .map_err(|e| PortError::os(name, Step::Rings, errno_to_io(e)))?;
            let tx = user
                .map_tx()
                .map_err(|e| PortError::os(name, Step::Rings, errno_to_io(e)))?;
            bind_retrying(&umem, &user).map_err(|e| PortError::BindFailed {
                ifname: name.to_owned(),
                queue: m.queue,
                mode: bind.as_str(),
                source: e,
            })?;
            let map = XskMap::create(name, m.queue + 1)?;
            map.insert(name, m.queue, user.as_raw_fd())?;
            let attachment = XdpAttachment::attach(name, idx, map, m.xdp_mode)?;
            out.push(Member {
                info: MemberInfo {
                    ifname: m.ifname.clone(),
                    ifindex: idx,
                    queue: m.queue,
                    xdp_mode: attachment.mode(),
                    bind,
                },
                _attachment: attachment,
                rx,
                tx,
                fq,
                user,
                // Members after the first inherit the first one's need_wakeup setting.
                need_wakeup: true,
                busy_fill,
                idle_fill,
                empty_polls: 0,
                idle_since: std::time::Instant::now(),
                since_refill: u32::MAX,
                tx_outstanding: 0,
                stats: PortStats::default(),
            });
        }
        // `umem` goes here: it only held another reference to member 0's socket, which
        // would keep that socket bound to its queue after member 0 leaves the group.
        Ok(out)
    }

    /// Take member `i` out of the group (hot-unplug of its port): its XDP program is
    /// detached, so the device stops redirecting frames to the group; frames it had
    /// received and not handed out, and finished transmissions, go back to the free stack.
    /// Frames still in its fill ring or TX ring are lost to the group (at most its share,
    /// which the remaining members never needed). Its socket closes, which frees its
    /// device queue (member 0's too: the other sockets keep the UMEM registered). Indexes
    /// above `i` shift down by one.
    /// Refused (false) for an index out of range or the last member: drop the group.
    pub fn remove_member(&mut self, i: usize) -> bool {
        if i >= self.members.len() || self.members.len() == 1 {
            return false;
        }
        self.reap(i);
        // Drain what the kernel delivered and nobody read.
        {
            let m = &mut self.members[i];
            let mut r = m.rx.receive(u32::MAX);
            while let Some(d) = r.read() {
                if d.addr < self.area.len as u64 && self.free.len() < self.free.capacity() {
                    self.free.push(d.addr & FRAME_MASK);
                }
            }
            r.release();
        }
        // Field order of `Member`: the XDP attachment goes first, then the rings.
        drop(self.members.remove(i));
        true
    }

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

    /// The socket fd of member `i`, readable when its RX ring has frames.
    pub fn poll_fd(&self, i: usize) -> Option<RawFd> {
        self.members.get(i).map(|m| m.user.as_raw_fd())
    }

    /// A [`Port`] view of member `i` (copying rx/tx).
    pub fn port(&mut self, i: usize) -> Option<MemberPort<'_>> {
        (i < self.members.len()).then_some(MemberPort { group: self, i })
    }

    /// Move completed TX frames of member `i` to the free stack.
    fn reap(&mut self, i: usize) {
        let m = &mut self.members[i];
        if m.tx_outstanding == 0 {
            return;
        }
        let avail = m.fq.available();
        if avail == 0 {
            return;
        }
        let mut c = m.fq.complete(avail);
        let mut n = 0u32;
        while let Some(addr) = c.read() {
            n += 1;
            if self.free.len() < self.free.capacity() {
                self.free.push(addr & FRAME_MASK);
            }
        }
        c.release();
        m.tx_outstanding = m.tx_outstanding.saturating_sub(n);
    }

    /// Top up member `i`'s fill ring to its busy depth, once per [`REFILL_BATCH`] frames.
    fn refill(&mut self, i: usize) {
        let m = &mut self.members[i];
        if m.since_refill < REFILL_BATCH {
            return;
        }
        let depth = m.busy_fill;
        self.top_up(i, depth);
    }

    /// Top up member `i`'s fill ring to `depth` frames from the top of the free stack.
    fn top_up(&mut self, i: usize, depth: u32) {
        let m = &mut self.members[i];
        m.since_refill = 0;
        let pending = m.fq.pending();
        let missing = depth.saturating_sub(pending);
        let mut added = 0u32;
        let mut want = missing.min(self.free.len() as u32);
        // Two reservations at most, as for TX (see `TX_RESERVE_ROUNDS`): the first may be
        // cut short by a stale cached consumer index.
        for _ in 0..TX_RESERVE_ROUNDS {
            if want == 0 {
                break;
            }
            let mut w = m.fq.fill(want);
            let cap = w.capacity() as usize;
            let start = self.free.len() - cap.min(self.free.len());
            let n = w.insert(self.free[start..].iter().copied()) as usize;
            w.commit();
            drop(w);
            self.free.truncate(self.free.len() - n);
            added += n as u32;
            want = want.saturating_sub(n as u32).min(self.free.len() as u32);
            if n == 0 {
                break;
            }
        }
        if added < missing {
            // Cut short (the free stack ran low: frames in TX rings or held by a caller):
            // try again on the next call instead of after REFILL_BATCH more frames, which
            // a drained fill ring would never deliver.
            m.since_refill = REFILL_BATCH;
        }
        // Copy mode fills frames from the XDP path in softirq and never needs a fill-ring
        // wakeup (its flag stays set: waking would cost a poll(2) per call). Zero-copy
        // drivers ask for one when they ran dry.
        if m.info.bind == BindMode::ZeroCopy && m.need_wakeup && m.fq.needs_wakeup() {
            m.fq.wake();
        }
    }

    /// Take up to `max` received descriptors of member `i`, calling `f` on each.
    fn rx_with(&mut self, i: usize, max: usize, mut f: impl FnMut(&Area, Desc)) -> usize {
        if i >= self.members.len() || max == 0 {
            return 0;
        }
        self.reap(i);
        self.refill(i);
        let area = &self.area;
        let gid = self.id;
        let m = &mut self.members[i];
        let mut r = m.rx.receive(max.min(MAX_BURST) as u32);
        let mut n = 0;
        while let Some(d) = r.read() {
            let ok = d.len as usize <= FRAME_SIZE as usize
                && (d.addr & !FRAME_MASK) + d.len as u64 <= FRAME_SIZE as u64
                && d.addr < area.len as u64;
            if ok {
                m.stats.count_rx(d.len as usize);
                f(
                    area,
                    Desc {
                        addr: d.addr,
                        len: d.len,
                        group: gid,
                    },
                );
                n += 1;
            } else {
                m.stats.rx_dropped += 1;
                if self.free.len() < self.free.capacity() {
                    self.free.push(d.addr & FRAME_MASK);
                }
            }
            m.since_refill = m.since_refill.saturating_add(1);
        }
        r.release();
        drop(r);
        if n == 0 {
            m.empty_polls = m.empty_polls.wrapping_add(1);
            if m.empty_polls == 1 {
                m.idle_since = std::time::Instant::now();
            } else if m.empty_polls.is_multiple_of(IDLE_CHECK)
                && m.idle_since.elapsed() >= IDLE_AFTER
            {
                // Repeated every IDLE_CHECK polls while idle: cheap once full (no frame
                // to add; the ring's indexes are not contended while nothing arrives).
                let depth = m.idle_fill;
                self.top_up(i, depth);
            }
        } else {
            m.empty_polls = 0;
        }
        n
    }

    /// Receive on member `i` by moving descriptors into `out` (appends; up to its room).
    /// The caller owns the descriptors until it passes them to [`UmemGroup::tx_descs`] or
    /// [`UmemGroup::release`].
    pub fn rx_descs(&mut self, i: usize, out: &mut DescBatch) -> usize {
        let room = MAX_BURST - out.len;
        // `room` bounds the count, so every push succeeds.
        self.rx_with(i, room, |_, d| {
            let _ = out.push(d);
        })
    }

    /// The bytes of a descriptor the caller owns (empty for another group's descriptor).
    pub fn frame(&self, d: &Desc) -> &[u8] {
        if d.group != self.id {
            return &[];
        }
        let start = d.addr as usize;
        let end = start.saturating_add(d.len as usize).min(self.area.len);
        let start = start.min(end);
        // SAFETY: `start..end` is inside the mapping (clamped above). The frame belongs to
        // the caller (it came out of an RX ring and was not given back), so the kernel does
        // not write it while this shared borrow of the group lives.
        unsafe { std::slice::from_raw_parts(self.area.ptr.as_ptr().add(start), end - start) }
    }

    /// The bytes of a descriptor the caller owns, for in-place rewriting.
    pub fn frame_mut(&mut self, d: &Desc) -> &mut [u8] {
        if d.group != self.id {
            return &mut [];
        }
        let start = d.addr as usize;
        let end = start.saturating_add(d.len as usize).min(self.area.len);
        let start = start.min(end);
        // SAFETY: as in `frame`; the exclusive borrow of the group makes this the only
        // live reference into the mapping.
        unsafe { std::slice::from_raw_parts_mut(self.area.ptr.as_ptr().add(start), end - start) }
    }

    /// Set the length of a descriptor the caller owns (clamped to the frame end).
    pub fn set_desc_len(&self, d: &mut Desc, len: usize) {
        let room = FRAME_SIZE as u64 - (d.addr & !FRAME_MASK);
        d.len = (len as u64).min(room) as u32;
    }

    /// Give descriptors back to the free stack (drop the frames).
    pub fn release(&mut self, descs: &mut DescBatch) {
        for d in descs.drain() {
            self.release_one(d);
        }
    }

    /// Give one descriptor back to the free stack. Another group's descriptor is ignored
    /// (its frame stays lost to that group, but nothing is corrupted).
    pub fn release_one(&mut self, d: Desc) {
        if d.group == self.id && self.free.len() < self.free.capacity() {
            self.free.push(d.addr & FRAME_MASK);
        }
    }

    /// Transmit descriptors on member `i` without copying (they may come from any member
    /// of this group). Takes every descriptor out of `descs`: those that find no TX slot
    /// are dropped (back to the free stack) and counted. Returns the number queued.
    pub fn tx_descs(&mut self, i: usize, descs: &mut DescBatch) -> usize {
        if i >= self.members.len() {
            self.release(descs);
            return 0;
        }
        self.reap(i);
        let gid = self.id;
        let m = &mut self.members[i];
        let all = descs.as_slice();
        let mut next = 0;
        let mut n = 0;
        let mut dropped = 0u64;
        // Two reservations at most: see `TX_RESERVE_ROUNDS`.
        for _ in 0..TX_RESERVE_ROUNDS {
            if next == all.len() {
                break;
            }
            let mut w = m.tx.transmit((all.len() - next) as u32);
            while let Some(d) = all.get(next) {
                if d.group != gid {
                    dropped += 1;
                    next += 1;
                    continue;
                }
                if !w.insert_once(XdpDesc {
                    addr: d.addr,
                    len: d.len,
                    options: 0,
                }) {
                    break;
                }
                m.stats.count_tx(d.len as usize);
                m.tx_outstanding += 1;
                n += 1;
                next += 1;
            }
            w.commit();
        }
        // What found no TX slot (the ring is really full) is dropped.
        for d in &all[next..] {
            dropped += 1;
            if d.group == gid && self.free.len() < self.free.capacity() {
                self.free.push(d.addr & FRAME_MASK);
            }
        }
        descs.drain().for_each(drop);
        m.stats.tx_dropped += dropped;
        self.kick(i);
        n
    }

    /// Copy `frames` into free UMEM frames and transmit them on member `i`.
    fn tx_copy(&mut self, i: usize, frames: &[&[u8]]) -> usize {
        if i >= self.members.len() {
            return 0;
        }
        self.reap(i);
        let area_ptr = self.area.ptr;
        let m = &mut self.members[i];
        let mut sent = 0usize;
        let mut next = 0usize;
        // Two reservations at most: see `TX_RESERVE_ROUNDS`.
        for _ in 0..TX_RESERVE_ROUNDS {
            let want = (frames.len() - next).min(self.free.len()) as u32;
            if want == 0 {
                break;
            }
            let mut w = m.tx.transmit(want);
            let mut full = false;
            while let Some(f) = frames.get(next) {
                if f.len() > FRAME_SIZE as usize {
                    next += 1; // counted as dropped below
                    continue;
                }
                let Some(addr) = self.free.pop() else { break };
                // SAFETY: `addr` is a free frame (owned by us, not in any ring) and
                // addr + FRAME_SIZE <= area length; `f` has at most FRAME_SIZE bytes and
                // cannot overlap the mapping's free frame (it is caller memory or another
                // frame we own).
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        f.as_ptr(),
                        area_ptr.as_ptr().add(addr as usize),
                        f.len(),
                    );
                }
                if !w.insert_once(XdpDesc {
                    addr,
                    len: f.len() as u32,
                    options: 0,
                }) {
                    self.free.push(addr);
                    full = true;
                    break;
                }
                m.stats.count_tx(f.len());
                m.tx_outstanding += 1;
                sent += 1;
                next += 1;
            }
            w.commit();
            if !full {
                break;
            }
        }
        m.stats.tx_dropped += (frames.len() - sent) as u64;
        self.kick(i);
        sent
    }

    /// Wake the kernel until it has consumed member `i`'s TX ring (copy mode moves at most
    /// 32 descriptors per wakeup) or stops making progress.
    fn kick(&mut self, i: usize) {
        for _ in 0..MAX_KICKS {
            let m = &mut self.members[i];
            if m.tx.pending() == 0 {
                break;
            }
            // Copy mode needs a syscall per 32 descriptors whatever the flag says;
            // zero-copy drivers only when they ask.
            if m.info.bind == BindMode::ZeroCopy && m.need_wakeup && !m.tx.needs_wakeup() {
                break;
            }
            // SAFETY: sendto with a null buffer of length 0 on our own AF_XDP socket is the
            // documented TX wakeup; no memory is read or written.
            let rc = unsafe {
                libc::sendto(
                    m.tx.as_raw_fd(),
                    std::ptr::null(),
                    0,
                    libc::MSG_DONTWAIT,
                    std::ptr::null(),
                    0,
                )
            };
            if rc < 0 {
                match io::Error::last_os_error().raw_os_error() {
                    Some(libc::EAGAIN) | Some(libc::EBUSY) | Some(libc::ENOBUFS)
                    | Some(libc::EINTR) => {
                        // Completion ring may be full: make room and try again.
                        self.reap(i);
                    }
                    _ => break,
                }
            }
        }
        self.reap(i);
    }

    /// A free frame holding a copy of `bytes` (at most a frame), as a descriptor the
    /// caller owns; `None` when the free stack is empty or `bytes` is too long.
    fn load(&mut self, bytes: &[u8]) -> Option<Desc> {
        if bytes.len() > FRAME_SIZE as usize {
            return None;
        }
        let addr = self.free.pop()?;
        // SAFETY: `addr` is a free frame (owned by us, in no ring) and
        // addr + FRAME_SIZE <= area length; `bytes` has at most FRAME_SIZE bytes and is
        // not that frame (it is caller memory, or a frame the caller owns: see `dup`).
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.area.ptr.as_ptr().add(addr as usize),
                bytes.len(),
            );
        }
        Some(Desc {
            addr,
            len: bytes.len() as u32,
            group: self.id,
        })
    }

    /// A copy of the frame of `d` (a descriptor of this group the caller owns) in a free
    /// frame; `None` when the free stack is empty.
    fn dup(&mut self, d: &Desc) -> Option<Desc> {
        let src = self.frame(d);
        let (ptr, len) = (src.as_ptr(), src.len());
        // SAFETY: `ptr..ptr+len` is the caller's frame inside the mapping (checked by
        // `frame`); `load` writes only a frame taken from the free stack, which is never
        // a frame the caller owns, so the two do not overlap. No reference into the
        // mapping is alive across the call (the slice above is rebuilt from its parts).
        let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
        self.load(bytes)
    }

    fn rx_copy(&mut self, i: usize, batch: &mut FrameBatch) -> usize {
        let room = batch.remaining();
        let mut free_back: [u64; MAX_BURST] = [0; MAX_BURST];
        let mut nb = 0;
        let mut too_long = 0u64;
        let n = self.rx_with(i, room, |area, d| {
            let start = d.addr as usize;
            // SAFETY: rx_with checked the descriptor lies inside one frame of the
            // mapping; the frame came out of the RX ring, so the kernel no longer writes it.
            let bytes =
                unsafe { std::slice::from_raw_parts(area.ptr.as_ptr().add(start), d.len as usize) };
            if !batch.push(bytes) {
                too_long += 1;
            }
            free_back[nb] = d.addr & FRAME_MASK;
            nb += 1;
        });
        self.free.extend_from_slice(&free_back[..nb]);
        if let Some(m) = self.members.get_mut(i) {
            m.stats.rx_dropped += too_long;
        }
        n - too_long as usize
    }
}

/// A [`Port`] view of one member of a [`UmemGroup`] (copying rx/tx).
pub struct MemberPort<'g> {
    group: &'g mut UmemGroup,
    i: usize,
}

impl Port for MemberPort<'_> {
    fn name(&self) -> &str {
        &self.group.members[self.i].info.ifname
    }
    fn rx_burst(&mut self, batch: &mut FrameBatch) -> io::Result<usize> {
        Ok(self.group.rx_copy(self.i, batch))
    }
    fn tx_burst(&mut self, frames: &[&[u8]]) -> io::Result<usize> {
        Ok(self.group.tx_copy(self.i, frames))
    }
    fn poll_fd(&self) -> Option<RawFd> {
        self.group.poll_fd(self.i)
    }
    fn stats(&self) -> PortStats {
        self.group.stats(self.i)
    }
}

/// A single AF_XDP port: a [`UmemGroup`] of one member.
pub struct AfXdpPort {
    group: UmemGroup,
}

/// Options of a single AF_XDP port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AfXdpConfig {
    pub member: MemberConfig,
    pub group: GroupConfig,
}

impl AfXdpConfig {
    pub fn new(ifname: &str) -> Self {
        AfXdpConfig {
            member: MemberConfig::new(ifname),
            group: GroupConfig::default(),
        }
    }
}

impl AfXdpPort {
    pub fn open(cfg: &AfXdpConfig) -> Result<AfXdpPort, PortError> {
        Ok(AfXdpPort {
            group: UmemGroup::open(std::slice::from_ref(&cfg.member), &cfg.group)?,
        })
    }

    /// What was obtained (XDP mode, zero-copy or copy).
    pub fn info(&self) -> &MemberInfo {
        &self.group.members[0].info
    }

    /// The underlying group (for descriptor-level access).
    pub fn group_mut(&mut self) -> &mut UmemGroup {
        &mut self.group
    }
}

impl Port for AfXdpPort {
    fn name(&self) -> &str {
        &self.group.members[0].info.ifname
    }
    fn rx_burst(&mut self, batch: &mut FrameBatch) -> io::Result<usize> {
        Ok(self.group.rx_copy(0, batch))
    }
    fn tx_burst(&mut self, frames: &[&[u8]]) -> io::Result<usize> {
        Ok(self.group.tx_copy(0, frames))
    }
    fn poll_fd(&self) -> Option<RawFd> {
        self.group.poll_fd(0)
    }
    fn stats(&self) -> PortStats {
        self.group.stats(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desc_batch_push_drain() {
        let mut b = DescBatch::default();
        for i in 0..MAX_BURST as u64 {
            assert!(b
                .push(Desc {
                    addr: i,
                    len: 1,
                    group: 7
                })
                .is_ok());
        }
        assert!(b.is_full());
        assert_eq!(b.push(Desc::NULL), Err(Desc::NULL));
        assert_eq!(b.pop().map(|d| d.addr()), Some(255));
        let addrs: Vec<u64> = b.drain().map(|d| d.addr()).collect();
        assert_eq!(addrs.len(), MAX_BURST - 1);
        assert_eq!(addrs[3], 3);
        assert!(b.is_empty());
        assert!(b.pop().is_none());
    }

    #[test]
    fn config_validation() {
        let m = [MemberConfig::new("lo")];
        let bad_ring = GroupConfig {
            ring_size: 100,
            ..Default::default()
        };
        assert!(matches!(
            UmemGroup::open(&m, &bad_ring),
            Err(PortError::Config(_))
        ));
        assert!(matches!(
            UmemGroup::open(&[], &GroupConfig::default()),
            Err(PortError::Config(_))
        ));
        assert!(matches!(
            UmemGroup::open(&[MemberConfig::new("nosuch-if9")], &GroupConfig::default()),
            Err(PortError::NoSuchInterface { .. })
        ));
    }

    #[test]
    fn frame_mask() {
        assert_eq!((4096 * 3 + 256) & FRAME_MASK, 4096 * 3);
    }
}
