//! Port backends: one small trait for moving bursts of Ethernet frames in and out of
//! the switch, and the backends behind it.
//!
//! # Purpose
//! The runtime polls ports and hands bursts of frames to the pipeline; the pipeline knows
//! no backend. This module owns every byte of I/O: `tap` (a `/dev/net/tun` tap, optionally
//! with virtio-net headers: offload metadata, [`gso`], carried beside each frame in a
//! [`FrameBatch`], and superframes segmented in software where a port cannot take them;
//! its batched I/O through io_uring in `tap_uring`), `afxdp` (AF_XDP sockets through `xdpilone`, with our own XDP
//! redirect program from [`xdp`]), `afpacket` (a raw `AF_PACKET` socket, works on any
//! netdev) and `mem` (an in-memory double for tests). It holds no dataplane logic.
//!
//! # The contract ([`Port`])
//! * [`Port::rx_burst`] *appends* up to `batch.capacity() - batch.len()` frames to a
//!   caller-owned [`FrameBatch`] and returns how many it appended. It never blocks: `Ok(0)`
//!   means "nothing now". Truncated or malformed frames are dropped by the backend and
//!   counted in [`PortStats::rx_dropped`].
//! * [`Port::tx_burst`] takes a slice of frame slices, transmits as many as it can without
//!   blocking and returns how many it accepted. The frames it did not accept are **dropped
//!   and counted** in [`PortStats::tx_dropped`]: a port never keeps a reference to caller
//!   memory and never asks the caller to retry (run-to-completion, as DPDK `rte_eth_tx_burst`
//!   callers that free the unsent tail).
//! * [`Port::poll_fd`] returns a file descriptor that becomes readable (`POLLIN`) when
//!   frames may be waiting, so an idle worker can `poll(2)` instead of spinning.
//! * [`Port::stats`] returns plain counters owned by the port (a port is driven by one
//!   thread; the runtime publishes the counters it wants to share).
//!
//! # Memory
//! [`FrameBatch`] is a fixed-capacity set of fixed-size slots (one allocation at creation,
//! reused for ever). Backends receive straight into the slots (`read(2)`, `recvmmsg(2)`,
//! one `memcpy` from the AF_XDP UMEM). Nothing on a burst path allocates.
//!
//! # What the runtime drives: [`PortGroup`]
//! The runtime does not call `Port` directly: it drives [`PortGroup`]s ([`group`]), one
//! interface for every backend. Any port is a group of one ([`Single`], copying); AF_XDP
//! ports that share one UMEM form an [`afxdp::UmemPorts`] group, whose members forward to
//! each other by moving descriptors (zero copy), copy only for floods and for frames from
//! other groups, and release dropped frames' descriptors. The runtime says, per received
//! frame, which members of the group transmit it; how is the group's business. The
//! lower-level descriptor API ([`afxdp::UmemGroup::rx_descs`], `frame`, `tx_descs`,
//! `release`) stays for tests and benchmarks; see [`afxdp`] for the ownership rules.
//!
//! # Opening ports
//! [`open_backend`] maps a model's `policy::Backend` to a boxed port; each backend also has
//! its own `open` with a config struct. Opening errors are [`PortError`]s naming the
//! interface and the [`Step`] that failed; an error leaves nothing behind (no XDP program
//! attached, no tap, no socket).
//!
//! # A netdev that goes away
//! A port does not outlive its device: an AF_PACKET or AF_XDP socket stays bound to the
//! deleted device's index (a new device of the same name is another device), a tap's fd
//! to the deleted tap. Each backend notes the error that says so ([`gone_errno`]: which
//! errno each backend sees is listed there) and hands it out once through
//! [`Port::take_fault`] / [`PortGroup::take_fault`]; nothing else changes on the packet
//! path. What to do about it (check the device, close the port, open it again when a
//! device of that name is back) is the runtime's (`runtime::switch::supervise`): a port
//! is never re-opened from here.
//!
//! # Logging (`tracing`; the program sets the subscriber up, this library never does)
//! * WARN: receive and transmit errors, rate-limited per port and error kind
//!   ([`errlog`]: at most one event a second, with the count held back); a socket option
//!   a backend needs and the kernel refused.
//! * INFO: XDP program attached and detached ([`xdp`]), NAPI moderation set and restored
//!   ([`napi`]). Opening and closing ports is logged by the runtime, which names them.
//! * DEBUG: backend details at open (AF_XDP bind mode obtained, a refused XDP mode, tap
//!   created, AF_PACKET options); TRACE: AF_XDP bind retries on a busy queue.
//!
//! Errors of opening a port are returned ([`PortError`]), not logged. Nothing is logged
//! on a path that has no error.
//!
//! # Owns, and may not touch
//! This module (its file) owns the [`Port`] trait, [`FrameBatch`], [`PortStats`],
//! [`PortError`]/[`Step`] and [`open_backend`]; the backends are its submodules. It may
//! use `policy` (a [`crate::policy::Backend`] to open, [`crate::policy::XdpMode`]) and
//! nothing above it: no `pipeline`, `runtime` or `control`, no verdicts.
//!
//! # Rejected options
//! * A `Box<[u8]>` or `Vec<u8>` per frame (an allocation per packet).
//! * A generic iterator argument for `tx_burst`: it would make the trait not object safe;
//!   a `&[&[u8]]` built on the stack (see [`Port::tx_batch`]) costs nothing.
//! * Making `rx_burst` block: blocking belongs to the runtime's idle policy (`poll_fd`).
//! * `pnet_datalink` for AF_PACKET: one frame per syscall through a channel object; a raw
//!   socket with `recvmmsg`/`sendmmsg` moves a whole burst per syscall with no dependency.

pub mod afpacket;
pub mod afxdp;
pub mod errlog;
pub mod group;
pub mod gso;
pub mod mem;
pub mod napi;
pub mod neigh;
pub mod pcap;
pub mod tap;
pub mod tap_uring;
pub mod underlay;
pub mod xdp;

pub use group::{Members, PortGroup, Single};
pub use gso::Offload;

use std::io;
use std::os::fd::RawFd;

/// Largest burst a [`FrameBatch`] holds (and a backend moves per call).
pub const MAX_BURST: usize = 256;
/// Default slot size: an untagged or tagged 1500-byte-MTU frame with room to spare.
pub const DEFAULT_SLOT: usize = 2048;
/// Smallest slot size accepted by [`FrameBatch::new`] (it is clamped up to this).
pub const MIN_SLOT: usize = 128;
/// Largest slot size accepted by [`FrameBatch::new`] (it is clamped down to this).
pub const MAX_SLOT: usize = 65_536;

/// Per-port counters (plain integers: a port is owned by one thread).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    /// Frames the backend received but could not deliver (too long for a slot, malformed
    /// virtio header, ...).
    pub rx_dropped: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Frames passed to `tx_burst` that were not transmitted (ring or socket buffer full,
    /// too long, errors).
    pub tx_dropped: u64,
    /// Of `rx_dropped`: frames whose virtio-net header was malformed or did not match the
    /// frame ([`gso::check`]; the drop reason `bad-offload`).
    pub rx_bad_offload: u64,
    /// Segments made in software from GSO superframes for this port (it could not take
    /// them whole); counted by whoever segments (the runtime), not by the backend.
    pub gso_segmented: u64,
    /// Tunnel packets an underlay ([`underlay::UnderlayGroup`]) received malformed or for
    /// an unknown (VNI, VTEP) (the drop reason `bad-tunnel`).
    pub bad_tunnel: u64,
}

impl PortStats {
    /// Add every counter of `o` (destructured: a new counter cannot be left out), e.g.
    /// the queues of one multiqueue tap, or one port's counters from several workers.
    pub fn add(&mut self, o: &PortStats) {
        let PortStats {
            rx_packets,
            rx_bytes,
            rx_dropped,
            tx_packets,
            tx_bytes,
            tx_dropped,
            rx_bad_offload,
            gso_segmented,
            bad_tunnel,
        } = *o;
        self.rx_packets += rx_packets;
        self.rx_bytes += rx_bytes;
        self.rx_dropped += rx_dropped;
        self.tx_packets += tx_packets;
        self.tx_bytes += tx_bytes;
        self.tx_dropped += tx_dropped;
        self.rx_bad_offload += rx_bad_offload;
        self.gso_segmented += gso_segmented;
        self.bad_tunnel += bad_tunnel;
    }

    #[inline]
    pub(crate) fn count_rx(&mut self, len: usize) {
        self.rx_packets += 1;
        self.rx_bytes += len as u64;
    }

    #[inline]
    pub(crate) fn count_tx(&mut self, len: usize) {
        self.tx_packets += 1;
        self.tx_bytes += len as u64;
    }
}

/// A port: a burst-oriented, non-blocking frame source and sink. See the module doc for the
/// contract.
pub trait Port: Send {
    /// A short human name (interface name, or the name given to a test double).
    fn name(&self) -> &str;

    /// Append up to `batch.capacity() - batch.len()` received frames to `batch`; returns
    /// the number appended. Never blocks.
    fn rx_burst(&mut self, batch: &mut FrameBatch) -> io::Result<usize>;

    /// Transmit `frames` in order without blocking; returns how many were accepted. The
    /// rest are dropped and counted in [`PortStats::tx_dropped`].
    fn tx_burst(&mut self, frames: &[&[u8]]) -> io::Result<usize>;

    /// Transmit every frame of `batch` (see [`Port::tx_burst`]), with the batch's offload
    /// metadata where the port takes it ([`Port::tx_burst_offload`]). Builds the slice
    /// array on the stack: no allocation.
    fn tx_batch(&mut self, batch: &FrameBatch) -> io::Result<usize> {
        let mut slices: [&[u8]; MAX_BURST] = [&[]; MAX_BURST];
        let mut n = 0;
        for (dst, frame) in slices.iter_mut().zip(batch.iter()) {
            *dst = frame;
            n += 1;
        }
        if self.takes_offload() {
            self.tx_burst_offload(&slices[..n], batch.offloads())
        } else {
            self.tx_burst(&slices[..n])
        }
    }

    /// True if the port transmits frames with their offload metadata ([`Offload`]: a
    /// superframe or a partial checksum) and the other side completes the work: a tap
    /// with `vnet_hdr`. Other ports get frames with nothing left to do (see
    /// [`gso::resolve`]).
    fn takes_offload(&self) -> bool {
        false
    }

    /// As [`Port::tx_burst`], frame `i` with the metadata `offs[i]` (none past the end of
    /// `offs`). Only called on ports that [`Port::takes_offload`]; the default ignores
    /// the metadata.
    fn tx_burst_offload(&mut self, frames: &[&[u8]], _offs: &[Offload]) -> io::Result<usize> {
        self.tx_burst(frames)
    }

    /// The receive slot size this port needs: [`MAX_SLOT`] for a tap that accepts 64 KB
    /// superframes, [`DEFAULT_SLOT`] otherwise.
    fn slot_size(&self) -> usize {
        DEFAULT_SLOT
    }

    /// A descriptor that polls readable (`POLLIN`) when frames may be waiting, for idle
    /// back-off; `None` if the port cannot be polled (then the caller sleeps instead).
    fn poll_fd(&self) -> Option<RawFd>;

    /// Counters since the port was opened.
    fn stats(&self) -> PortStats;

    /// The errno of the last receive or transmit error that says the netdev under the
    /// port may be gone ([`gone_errno`]), once: the call clears it. The runtime asks a
    /// few times a second, never per frame, and checks the netdev itself before it
    /// believes it. Backends without such errors keep the default (`None`).
    fn take_fault(&mut self) -> Option<i32> {
        None
    }
}

/// A reusable burst of frames: `capacity` slots of `slot_size` bytes each, plus lengths.
///
/// Invariants: `len <= cap <= lens.len()` (the slots allocated); `lens[i] <= slot_size`
/// for every `i < len`; only the first `len` slots are frames, and only the first `cap`
/// are used ([`FrameBatch::set_capacity`]). One allocation at creation, none afterwards.
///
/// Beside each frame: its offload metadata ([`Offload`], the virtio-net header a tap
/// received with it; [`Offload::NONE`] for every frame committed or pushed without).
pub struct FrameBatch {
    buf: Box<[u8]>,
    lens: Box<[u32]>,
    offs: Box<[Offload]>,
    slot_size: usize,
    len: usize,
    cap: usize,
}

impl FrameBatch {
    /// A batch of `capacity` slots (clamped to `1..=MAX_BURST`) of `slot_size` bytes
    /// (clamped to `MIN_SLOT..=MAX_SLOT`).
    pub fn new(capacity: usize, slot_size: usize) -> Self {
        let capacity = capacity.clamp(1, MAX_BURST);
        let slot_size = slot_size.clamp(MIN_SLOT, MAX_SLOT);
        FrameBatch {
            buf: vec![0u8; capacity * slot_size].into_boxed_slice(),
            lens: vec![0u32; capacity].into_boxed_slice(),
            offs: vec![Offload::NONE; capacity].into_boxed_slice(),
            slot_size,
            len: 0,
            cap: capacity,
        }
    }

    /// Number of slots in use (all of them unless [`FrameBatch::set_capacity`] said less).
    #[inline]
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Use only the first `n` slots from now on (clamped to `1..=` the slots allocated at
    /// creation), e.g. to receive a shorter burst into the same batch; frames beyond `n`
    /// are forgotten. No allocation.
    #[inline]
    pub fn set_capacity(&mut self, n: usize) {
        self.cap = n.clamp(1, self.lens.len());
        self.len = self.len.min(self.cap);
    }

    /// Size of one slot in bytes (the longest frame it holds).
    #[inline]
    pub fn slot_size(&self) -> usize {
        self.slot_size
    }

    /// Number of frames held.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == self.capacity()
    }

    /// Free slots left.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.capacity() - self.len
    }

    /// Forget every frame (the slots are kept).
    #[inline]
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Keep the first `n` frames.
    #[inline]
    pub fn truncate(&mut self, n: usize) {
        self.len = self.len.min(n);
    }

    /// Frame `i`, if `i < len`.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        if i >= self.len {
            return None;
        }
        let start = i * self.slot_size;
        let n = self.lens[i] as usize;
        self.buf.get(start..start + n)
    }

    /// Frame `i` for in-place rewriting, if `i < len`.
    #[inline]
    pub fn get_mut(&mut self, i: usize) -> Option<&mut [u8]> {
        if i >= self.len {
            return None;
        }
        let start = i * self.slot_size;
        let n = self.lens[i] as usize;
        self.buf.get_mut(start..start + n)
    }

    /// Change the length of frame `i` (e.g. to strip or add a header in place); clamped to
    /// the slot size. Returns false if `i` is not a frame.
    pub fn set_frame_len(&mut self, i: usize, len: usize) -> bool {
        if i >= self.len {
            return false;
        }
        self.lens[i] = len.min(self.slot_size) as u32;
        true
    }

    /// The frames, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        let slot = self.slot_size;
        self.buf
            .chunks_exact(slot)
            .zip(self.lens.iter())
            .take(self.len)
            .map(|(chunk, &n)| &chunk[..n as usize])
    }

    /// Copy `frame` into the next free slot. Returns false (and copies nothing) if the
    /// batch is full or the frame is longer than a slot.
    pub fn push(&mut self, frame: &[u8]) -> bool {
        self.push_offload(frame, Offload::NONE)
    }

    /// [`FrameBatch::push`] with offload metadata.
    pub fn push_offload(&mut self, frame: &[u8], off: Offload) -> bool {
        match self.spare_slot() {
            Some(slot) if frame.len() <= slot.len() => {
                slot[..frame.len()].copy_from_slice(frame);
                self.commit_offload(frame.len(), off);
                true
            }
            _ => false,
        }
    }

    /// The offload metadata of frame `i` ([`Offload::NONE`] if `i` is not a frame).
    #[inline]
    pub fn offload(&self, i: usize) -> Offload {
        if i < self.len {
            self.offs[i]
        } else {
            Offload::NONE
        }
    }

    /// The offload metadata of the frames, in order.
    #[inline]
    pub fn offloads(&self) -> &[Offload] {
        &self.offs[..self.len]
    }

    /// The whole next free slot, to be written and then [`FrameBatch::commit`]ted.
    #[inline]
    pub fn spare_slot(&mut self) -> Option<&mut [u8]> {
        if self.is_full() {
            return None;
        }
        let start = self.len * self.slot_size;
        self.buf.get_mut(start..start + self.slot_size)
    }

    /// Every free slot, in order (for backends that fill several at once, e.g. with
    /// `recvmmsg`); follow with one [`FrameBatch::commit`] per filled slot.
    pub(crate) fn spare_slots(&mut self) -> std::slice::ChunksExactMut<'_, u8> {
        let start = self.len * self.slot_size;
        let end = self.cap * self.slot_size;
        self.buf[start..end].chunks_exact_mut(self.slot_size)
    }

    /// Copy the first `len` bytes of the free slot `offset` places after the next free slot
    /// into the next free slot (closes a hole left by a dropped frame). Does nothing if
    /// either slot does not exist.
    pub(crate) fn pull_spare(&mut self, offset: usize, len: usize) {
        let slot = self.slot_size;
        let to = self.len * slot;
        let from = (self.len + offset) * slot;
        let len = len.min(slot);
        if offset == 0 || from + slot > self.cap * slot {
            return;
        }
        self.buf.copy_within(from..from + len, to);
    }

    /// Make the next free slot a frame of `len` bytes (clamped to the slot size). Does
    /// nothing if the batch is full.
    #[inline]
    pub fn commit(&mut self, len: usize) {
        self.commit_offload(len, Offload::NONE);
    }

    /// [`FrameBatch::commit`] with the frame's offload metadata.
    #[inline]
    pub fn commit_offload(&mut self, len: usize, off: Offload) {
        if self.is_full() {
            return;
        }
        self.lens[self.len] = len.min(self.slot_size) as u32;
        self.offs[self.len] = off;
        self.len += 1;
    }
}

impl Default for FrameBatch {
    fn default() -> Self {
        FrameBatch::new(MAX_BURST, DEFAULT_SLOT)
    }
}

impl std::fmt::Debug for FrameBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameBatch")
            .field("len", &self.len)
            .field("capacity", &self.capacity())
            .field("slot_size", &self.slot_size)
            .finish()
    }
}

/// Which step of opening a port failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    InterfaceLookup,
    OpenTun,
    TunSetIff,
    SetNonBlocking,
    LinkUp,
    MoveNetns,
    Socket,
    BindSocket,
    Mmap,
    UmemRegister,
    Rings,
    MapCreate,
    MapUpdate,
    ProgLoad,
    XdpAttach,
    XskBind,
    NapiTuning,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Step::InterfaceLookup => "interface lookup",
            Step::OpenTun => "open /dev/net/tun",
            Step::TunSetIff => "TUNSETIFF",
            Step::SetNonBlocking => "set non-blocking",
            Step::LinkUp => "set link up",
            Step::MoveNetns => "move to network namespace",
            Step::Socket => "socket()",
            Step::BindSocket => "bind()",
            Step::Mmap => "mmap UMEM",
            Step::UmemRegister => "UMEM registration",
            Step::Rings => "ring setup",
            Step::MapCreate => "XSKMAP creation (BPF_MAP_CREATE)",
            Step::MapUpdate => "XSKMAP update",
            Step::ProgLoad => "XDP program load (BPF_PROG_LOAD)",
            Step::XdpAttach => "XDP attach (BPF_LINK_CREATE)",
            Step::XskBind => "AF_XDP bind",
            Step::NapiTuning => "NAPI moderation (sysfs napi_defer_hard_irqs / gro_flush_timeout)",
        })
    }
}

/// Why a port could not be opened. Every variant names the interface and the step.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("interface {ifname:?} does not exist")]
    NoSuchInterface { ifname: String },
    #[error("{ifname}: {step}: permission denied (needs root or CAP_NET_ADMIN/CAP_BPF): {source}")]
    PermissionDenied {
        ifname: String,
        step: Step,
        source: io::Error,
    },
    #[error("{ifname}: the kernel refused the XDP program in {mode} mode: {source}")]
    XdpRefused {
        ifname: String,
        mode: &'static str,
        source: io::Error,
    },
    #[error("{ifname} queue {queue}: AF_XDP bind failed ({mode}): {source}")]
    BindFailed {
        ifname: String,
        queue: u32,
        mode: &'static str,
        source: io::Error,
    },
    #[error("{ifname}: {step} failed: {source}")]
    Os {
        ifname: String,
        step: Step,
        source: io::Error,
    },
    #[error("invalid port configuration: {0}")]
    Config(String),
}

impl PortError {
    /// Classify an OS error of `step` on `ifname` (EPERM/EACCES and ENODEV get their own
    /// variants).
    pub(crate) fn os(ifname: &str, step: Step, source: io::Error) -> Self {
        match source.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => PortError::PermissionDenied {
                ifname: ifname.to_owned(),
                step,
                source,
            },
            Some(libc::ENODEV) => PortError::NoSuchInterface {
                ifname: ifname.to_owned(),
            },
            _ => PortError::Os {
                ifname: ifname.to_owned(),
                step,
                source,
            },
        }
    }
}

/// Open the port a model's [`crate::policy::Backend`] describes (for the runtime).
///
/// `Tap { vnet_hdr: true }` also enables checksum offload and TSO (`TUN_F_CSUM |
/// TUN_F_TSO4 | TUN_F_TSO6`, USO where the kernel has it): the instance side may then
/// leave L4 checksums partial and send 64 KB superframes, which travel with their
/// metadata ([`Offload`]). `AfXdp { mode: None }`
/// is [`xdp::XdpMode::Auto`].
pub fn open_backend(backend: &crate::policy::Backend) -> Result<Box<dyn Port>, PortError> {
    use crate::policy::Backend;
    Ok(match backend {
        Backend::Tap { .. } => Box::new(tap::TapPort::open(&tap_config(backend))?),
        Backend::AfXdp {
            ifname,
            queue,
            mode,
        } => {
            let mut cfg = afxdp::AfXdpConfig::new(ifname);
            cfg.member.queue = *queue;
            cfg.member.xdp_mode = mode.unwrap_or_default();
            Box::new(afxdp::AfXdpPort::open(&cfg)?)
        }
        Backend::AfPacket { ifname } => Box::new(afpacket::AfPacketPort::open(ifname)?),
    })
}

/// The [`tap::TapConfig`] of a tap backend (an empty config for any other backend).
fn tap_config(backend: &crate::policy::Backend) -> tap::TapConfig {
    match backend {
        crate::policy::Backend::Tap {
            ifname,
            netns,
            vnet_hdr,
            instance_mac,
            ..
        } => tap::TapConfig {
            name: ifname.clone(),
            vnet_hdr: *vnet_hdr,
            csum_offload: *vnet_hdr,
            tso: *vnet_hdr,
            netns: netns.clone(),
            mac: instance_mac.map(|m| m.to_string()),
            // Measurements only (README "Floods"): taps with threaded NAPI.
            napi: std::env::var_os("SGSWITCH_TAP_NAPI").is_some(),
        },
        _ => tap::TapConfig::default(),
    }
}

/// Open `queues` queues of a tap backend as one multiqueue tap (`IFF_MULTI_QUEUE`:
/// [`tap::TapPort::open_multiqueue`]), one [`Port`] per queue, each with the offloads of
/// [`open_backend`]. With `queues` ≤ 1, or for any other backend, this is
/// [`open_backend`] (one port, a tap without `IFF_MULTI_QUEUE`: today's device).
pub fn open_backend_queues(
    backend: &crate::policy::Backend,
    queues: usize,
) -> Result<Vec<Box<dyn Port>>, PortError> {
    if queues <= 1 || !matches!(backend, crate::policy::Backend::Tap { .. }) {
        return Ok(vec![open_backend(backend)?]);
    }
    let all = tap::TapPort::open_multiqueue(&tap_config(backend), queues)?;
    Ok(all
        .into_iter()
        .map(|p| Box::new(p) as Box<dyn Port>)
        .collect())
}

/// Check an interface name for `IFNAMSIZ` and characters the kernel refuses.
pub(crate) fn check_ifname(name: &str) -> Result<(), PortError> {
    let ok = !name.is_empty()
        && name.len() < libc::IFNAMSIZ
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':');
    if ok {
        Ok(())
    } else {
        Err(PortError::Config(format!(
            "bad interface name {name:?} (1..15 printable bytes, no '/' or ':')"
        )))
    }
}

/// `if_nametoindex`, with typed errors.
pub(crate) fn ifindex(name: &str) -> Result<u32, PortError> {
    check_ifname(name)?;
    let c = std::ffi::CString::new(name).map_err(|_| PortError::Config("NUL in name".into()))?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::ENODEV) | Some(libc::ENXIO) | None => PortError::NoSuchInterface {
                ifname: name.to_owned(),
            },
            _ => PortError::os(name, Step::InterfaceLookup, e),
        });
    }
    Ok(idx)
}

/// The errno of `e` if it is one a backend sees when its netdev is deleted (or, for
/// `ENETDOWN`, deleted or set down), as measured on Linux 6.18:
/// * AF_PACKET: the first `recvmmsg` after the device goes fails with `ENETDOWN` (the
///   socket's pending error), later ones find nothing (`EAGAIN`); every `sendmmsg` fails
///   with `ENXIO` (the socket is no longer bound to any device), also after a device of
///   the same name returns.
/// * tap: `read` and `write` fail with `EBADFD` once the device is deleted (`ip link
///   del`, or the deletion of the namespace it was moved into).
/// * AF_XDP: the TX wakeup (`sendto`) fails with `ENXIO` (the socket is unbound); the
///   rings just stay empty.
/// * `ENODEV`: the generic "no such device".
///
/// `None` for every other error (a full ring, a malformed frame, `EIO` from a tap whose
/// link is down: the device is still there).
pub fn gone_errno(e: &io::Error) -> Option<i32> {
    match e.raw_os_error() {
        Some(n @ (libc::ENXIO | libc::ENODEV | libc::ENETDOWN | libc::EBADFD)) => Some(n),
        _ => None,
    }
}

/// True for the errno values that mean "try again later" on a non-blocking fd.
#[inline]
pub(crate) fn would_block(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EAGAIN) | Some(libc::EINTR) | Some(libc::ENOBUFS)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_push_get_clear() {
        let mut b = FrameBatch::new(4, 200);
        assert_eq!(b.capacity(), 4);
        assert_eq!(b.slot_size(), 200);
        assert!(b.push(&[1, 2, 3]));
        assert!(b.push(&[4; 200]));
        assert!(!b.push(&[5; 201]), "longer than a slot");
        assert_eq!(b.len(), 2);
        assert_eq!(b.get(0), Some(&[1u8, 2, 3][..]));
        assert_eq!(b.get(1).map(|f| f.len()), Some(200));
        assert_eq!(b.get(2), None);
        let lens: Vec<usize> = b.iter().map(|f| f.len()).collect();
        assert_eq!(lens, vec![3, 200]);
        b.clear();
        assert!(b.is_empty());
        assert_eq!(b.iter().count(), 0);
    }

    #[test]
    fn batch_clamps_and_fills() {
        let mut b = FrameBatch::new(10_000, 1);
        assert_eq!(b.capacity(), MAX_BURST);
        assert_eq!(b.slot_size(), MIN_SLOT);
        for i in 0..MAX_BURST {
            assert!(b.push(&[i as u8]));
        }
        assert!(b.is_full());
        assert!(!b.push(&[0]));
        assert!(b.spare_slot().is_none());
        b.commit(5); // full: ignored
        assert_eq!(b.len(), MAX_BURST);
        assert_eq!(b.get(255), Some(&[255u8][..]));
        let b0 = FrameBatch::new(0, usize::MAX);
        assert_eq!(b0.capacity(), 1);
        assert_eq!(b0.slot_size(), MAX_SLOT);
    }

    #[test]
    fn batch_spare_slot_commit_and_resize() {
        let mut b = FrameBatch::new(2, 128);
        let s = b.spare_slot().unwrap();
        assert_eq!(s.len(), 128);
        s[..4].copy_from_slice(b"abcd");
        b.commit(4);
        assert_eq!(b.get(0), Some(&b"abcd"[..]));
        assert!(b.set_frame_len(0, 2));
        assert_eq!(b.get(0), Some(&b"ab"[..]));
        assert!(b.set_frame_len(0, 10_000));
        assert_eq!(b.get(0).unwrap().len(), 128);
        assert!(!b.set_frame_len(1, 3));
        b.get_mut(0).unwrap()[0] = b'z';
        assert_eq!(b.get(0).unwrap()[0], b'z');
        assert_eq!(b.spare_slots().count(), 1);
        b.truncate(0);
        b.spare_slots().nth(1).unwrap()[..3].copy_from_slice(b"xyz");
        b.pull_spare(1, 3);
        b.pull_spare(5, 3); // out of range: ignored
        b.commit(3);
        assert_eq!(b.get(0), Some(&b"xyz"[..]));
        b.truncate(0);
        assert!(b.is_empty());
    }

    #[test]
    fn batch_set_capacity() {
        let mut b = FrameBatch::new(4, 128);
        assert!(b.push(b"a") && b.push(b"b") && b.push(b"c"));
        b.set_capacity(2);
        assert_eq!(
            (b.capacity(), b.len()),
            (2, 2),
            "the third frame is forgotten"
        );
        assert!(b.is_full() && !b.push(b"d") && b.spare_slot().is_none());
        b.clear();
        assert_eq!(b.spare_slots().count(), 2);
        b.pull_spare(2, 1); // slot 2 is outside the window: ignored
        b.set_capacity(0);
        assert_eq!(b.capacity(), 1);
        b.set_capacity(usize::MAX);
        assert_eq!(b.capacity(), 4, "clamped to the slots allocated");
        assert_eq!(b.remaining(), 4);
    }

    #[test]
    fn ifname_checks() {
        assert!(check_ifname("veth0").is_ok());
        assert!(check_ifname("").is_err());
        assert!(check_ifname("a/b").is_err());
        assert!(check_ifname("0123456789abcdef").is_err());
        assert!(matches!(
            ifindex("nosuchif-xyz"),
            Err(PortError::NoSuchInterface { .. })
        ));
        assert!(ifindex("lo").unwrap() > 0);
    }

    #[test]
    fn open_backend_rejects_bad_config() {
        use crate::policy::Backend;
        // An unknown XDP mode no longer reaches this point: the model carries an
        // `XdpMode`, parsed by validation (tests/policy_validation.rs `port_backends`).
        let bad_name = Backend::AfXdp {
            ifname: "a/b".into(),
            queue: 0,
            mode: Some(xdp::XdpMode::Native),
        };
        assert!(matches!(open_backend(&bad_name), Err(PortError::Config(_))));
        let missing = Backend::AfPacket {
            ifname: "sgnosuch0".into(),
        };
        assert!(matches!(
            open_backend(&missing),
            Err(PortError::NoSuchInterface { .. })
        ));
    }
}
