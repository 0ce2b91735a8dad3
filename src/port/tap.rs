//! A tap device ([`TapPort`]) opened through `/dev/net/tun`.
//!
//! # What it does
//! * `TUNSETIFF` with `IFF_TAP | IFF_NO_PI` (plus `IFF_VNET_HDR` on request); the fd is
//!   non-blocking; the tap is *not* persistent, so the netdev disappears when the port (its
//!   only fd) is dropped — including when the process dies.
//! * With `TapConfig::napi` (measurements only: `SGSWITCH_TAP_NAPI=1`), `IFF_NAPI` and
//!   threaded NAPI (`/sys/class/net/NAME/threaded`, before any move): a write queues the
//!   frame to the tap's NAPI thread instead of running the instance's stack in `writev`.
//!   On 2 cores it measured worse for #14's floods (README "Floods").
//! * Optionally moves the netdev into a named network namespace (`ip link set X netns NS`),
//!   where it then stands for an instance; the switch keeps the fd. There it gets the
//!   port's MAC (`TapConfig::mac`), then its link is set up (a move brings a device down).
//! * Bursts: through io_uring where the kernel allows it ([`super::tap_uring`]: a burst of
//!   `readv` in one `io_uring_enter`, a burst of `writev` in another); otherwise
//!   `rx_burst` reads until `EAGAIN` or the batch is full (one `read`/`readv` per frame —
//!   tun has no batched read) and `tx_burst` writes each frame. Both paths keep or drop a
//!   received frame by the same code (`accept_rx`), and drop (count) the rest of a
//!   transmit burst on `EAGAIN`.
//!
//! # virtio-net header and offloads
//! With `vnet_hdr`, each frame is preceded by a 10-byte `struct virtio_net_hdr`. On receive
//! it is read into a separate iovec (so the frame lands at the start of the slot, no
//! `memmove`). With `csum_offload` the tap announces `TUN_F_CSUM`, with `tso` also
//! `TUN_F_TSO4 | TUN_F_TSO6` and, where the kernel knows them (EINVAL otherwise: retried
//! without, said once in the log), `TUN_F_USO4 | TUN_F_USO6`: the instance's kernel then
//! leaves L4 checksums partial (`VIRTIO_NET_HDR_F_NEEDS_CSUM`) and sends GSO superframes of
//! up to 64 KB (receive slots of [`super::MAX_SLOT`] bytes: [`Port::slot_size`]). Each
//! frame's header is checked against the frame ([`vnet_rx`], [`super::gso::check`]) and
//! travels beside it as data ([`super::FrameBatch::offload`]); nothing is completed or
//! segmented here. A malformed header is dropped and counted ([`PortStats::rx_bad_offload`],
//! the drop reason `bad-offload`). On transmit each frame goes out with its own header
//! ([`Port::tx_burst_offload`]: a superframe or a partial checksum reaches the instance as
//! it was sent; all zero for frames without metadata). Whoever transmits to a port that
//! does not take metadata resolves it first ([`super::gso::resolve`]).
//! [`super::afpacket`] receives through the same `vnet_rx` (a packet socket with
//! `PACKET_VNET_HDR` gives the same header).
//!
//! # Rejected options
//! * (Was: multi-queue taps, "one queue per port is enough for now". Now the port layer
//!   opens them, [`TapPort::open_multiqueue`], and the runtime gives each worker its own
//!   queue of a port with `queues = N`: see the README's "Live dataplane".)
//! * Netlink for link-up and namespace moves: an ioctl covers link-up in our own namespace;
//!   the namespace move is a one-time control-plane step where `ip` is simpler and clear.
//!
//! # Owns, and may not touch
//! Owns: the `/dev/net/tun` fd of one tap, and so the netdev itself (not persistent: it
//! lives as long as the fd); moving it into a namespace (`ip link set … netns …`) and
//! bringing its link up (an ioctl, or `ip -n NS` after a move); the virtio-net header
//! handling (`vnet_rx`, which [`super::afpacket`] shares; the offloads announced; the checksum and segmentation code is [`super::gso`]'s).
//! May not touch: the instance's side of the device beyond the MAC it is given on the move
//! (its addresses inside the namespace belong to whoever runs the instance: the demo, the
//! lab, a VM), or any
//! dataplane logic (no parsing beyond the checksum's offsets, no verdicts, no policy).
//! Uses only `port`'s own items, `std`, `libc`, `tracing` and the `ip` tool.

use super::errlog::{ErrorLog, Op};
use super::tap_uring::TapUring;
use super::{check_ifname, gone_errno, would_block, FrameBatch, Port, PortError, PortStats, Step};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::Command;

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;
const IFF_MULTI_QUEUE: libc::c_short = 0x0100;
const IFF_NAPI: libc::c_short = 0x0010;
const TUN_F_CSUM: libc::c_uint = 0x01;
const TUN_F_TSO4: libc::c_uint = 0x02;
const TUN_F_TSO6: libc::c_uint = 0x04;
const TUN_F_USO4: libc::c_uint = 0x20;
const TUN_F_USO6: libc::c_uint = 0x40;

use super::gso::Offload;
pub use super::gso::{complete_checksum, ones_complement_sum, VNET_HDR_LEN};

/// `struct ifreq` restricted to the name and the flags member of its union (40 bytes).
#[repr(C)]
struct IfReqFlags {
    name: [libc::c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

impl IfReqFlags {
    fn new(name: &str) -> Self {
        let mut r = IfReqFlags {
            name: [0; libc::IFNAMSIZ],
            flags: 0,
            _pad: [0; 22],
        };
        for (d, s) in r.name.iter_mut().zip(name.bytes().take(libc::IFNAMSIZ - 1)) {
            *d = s as libc::c_char;
        }
        r
    }

    fn name(&self) -> String {
        let bytes: Vec<u8> = self
            .name
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// How to create a tap.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TapConfig {
    /// Interface name; empty lets the kernel choose (`tap%d`).
    pub name: String,
    /// Exchange a `virtio_net_hdr` with every frame.
    pub vnet_hdr: bool,
    /// With `vnet_hdr`: announce `TUN_F_CSUM`, accept partial checksums (passed up as
    /// metadata, completed where a destination needs it).
    pub csum_offload: bool,
    /// With `csum_offload`: also announce `TUN_F_TSO4 | TUN_F_TSO6` (and `TUN_F_USO4/6`
    /// where the kernel has them), accept GSO superframes (up to 64 KB: receive slots of
    /// [`super::MAX_SLOT`] bytes).
    pub tso: bool,
    /// Move the netdev into this network namespace after creation.
    pub netns: Option<String>,
    /// With `netns`: the MAC the device gets there, before its link comes up (so its IPv6
    /// link-local address derives from it): the port's MAC, so that the instance's
    /// frames pass anti-spoofing.
    pub mac: Option<String>,
    /// `IFF_NAPI` with threaded NAPI (`/sys/class/net/NAME/threaded`): a frame written to
    /// the tap is queued to the tap's NAPI kernel thread, which runs the instance's
    /// receiving stack, instead of running it inside the writer's `writev` (#14, README
    /// "Floods").
    pub napi: bool,
}

/// A tap port. Dropping it closes the fd and removes the netdev.
pub struct TapPort {
    fd: OwnedFd,
    name: String,
    vnet_hdr: bool,
    /// Superframes may arrive: receive slots must hold 64 KB.
    tso: bool,
    stats: PortStats,
    /// Transmit errors this port drops and goes on from (logged, rate-limited).
    errors: ErrorLog,
    /// A read or write failed with an errno that says the device is gone (`EBADFD`:
    /// deleted), not yet taken by [`Port::take_fault`].
    fault: Option<i32>,
    /// Batched I/O ([`super::tap_uring`]); `None`: one syscall per frame.
    uring: Option<TapUring>,
}

impl TapPort {
    /// Create the tap, make it non-blocking, optionally move it, and set the link up.
    pub fn open(cfg: &TapConfig) -> Result<TapPort, PortError> {
        Self::open_with(cfg, 0)
    }

    /// Create a multiqueue tap (`IFF_MULTI_QUEUE`) with `queues` queues (at least 1), one
    /// [`TapPort`] per queue, each with its own fd; then move it (once) and set it up.
    /// The kernel spreads the instance's frames over the queues by flow hash, and sends a
    /// flow's frames to the queue the switch last wrote that flow's frames on (tun's
    /// flow table; the hash is symmetric, so both directions count as one flow). Every
    /// queue announces the same offloads; with `netns` the device gets `mac` there, as
    /// [`TapPort::open`] does. Dropping every queue removes the netdev.
    pub fn open_multiqueue(cfg: &TapConfig, queues: usize) -> Result<Vec<TapPort>, PortError> {
        let here = TapConfig {
            netns: None,
            ..cfg.clone()
        };
        let first = Self::open_with(&here, IFF_MULTI_QUEUE)?;
        let more = TapConfig {
            name: first.name.clone(),
            ..here
        };
        let mut all = vec![first];
        for _ in 1..queues.max(1) {
            all.push(Self::open_with(&more, IFF_MULTI_QUEUE)?);
        }
        if let Some(ns) = &cfg.netns {
            let name = &all[0].name;
            run_ip(name, Step::MoveNetns, &["link", "set", name, "netns", ns])?;
            if let Some(mac) = &cfg.mac {
                let set = ["-n", ns, "link", "set", name, "address", mac];
                run_ip(name, Step::MoveNetns, &set)?;
            }
            run_ip(name, Step::LinkUp, &["-n", ns, "link", "set", name, "up"])?;
        }
        Ok(all)
    }

    /// [`TapPort::open`] with more `TUNSETIFF` flags (`IFF_MULTI_QUEUE`).
    fn open_with(cfg: &TapConfig, more_flags: libc::c_short) -> Result<TapPort, PortError> {
        if !cfg.name.is_empty() {
            check_ifname(&cfg.name)?;
        }
        if cfg.csum_offload && !cfg.vnet_hdr {
            return Err(PortError::Config(
                "tap csum_offload needs vnet_hdr (the kernel reports partial checksums in it)"
                    .into(),
            ));
        }
        let label = if cfg.name.is_empty() {
            "tap"
        } else {
            &cfg.name
        };
        let path = c"/dev/net/tun";
        // SAFETY: `path` is a valid NUL-terminated string; the returned fd is checked.
        let raw = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if raw < 0 {
            return Err(PortError::os(
                label,
                Step::OpenTun,
                io::Error::last_os_error(),
            ));
        }
        // SAFETY: `raw` is a freshly opened fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };

        let mut req = IfReqFlags::new(&cfg.name);
        let napi = if cfg.napi { IFF_NAPI } else { 0 };
        req.flags =
            IFF_TAP | IFF_NO_PI | napi | more_flags | if cfg.vnet_hdr { IFF_VNET_HDR } else { 0 };
        // SAFETY: TUNSETIFF reads and writes a `struct ifreq`; `req` has its 40-byte layout
        // and lives across the call.
        if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF, &mut req as *mut IfReqFlags) } < 0 {
            return Err(PortError::os(
                label,
                Step::TunSetIff,
                io::Error::last_os_error(),
            ));
        }
        let name = req.name();
        if cfg.napi {
            // Before the move: the NAPI thread stays with the device.
            let f = format!("/sys/class/net/{name}/threaded");
            if let Err(e) = std::fs::write(&f, "1") {
                tracing::warn!(ifname = %name, "{f}: {e}: NAPI runs in the writer's context");
            }
        }

        if cfg.tso && !cfg.csum_offload {
            return Err(PortError::Config(
                "tap tso needs csum_offload (superframes carry partial checksums)".into(),
            ));
        }
        if cfg.csum_offload {
            set_offloads(fd.as_raw_fd(), &name, cfg.tso)?;
        }

        // SAFETY: fcntl on an fd we own; flags are read, then written back with O_NONBLOCK.
        let ok = unsafe {
            let fl = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
            fl >= 0 && libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK) == 0
        };
        if !ok {
            return Err(PortError::os(
                &name,
                Step::SetNonBlocking,
                io::Error::last_os_error(),
            ));
        }

        match &cfg.netns {
            Some(ns) => {
                run_ip(&name, Step::MoveNetns, &["link", "set", &name, "netns", ns])?;
                if let Some(mac) = &cfg.mac {
                    let set = ["-n", ns, "link", "set", &name, "address", mac];
                    run_ip(&name, Step::MoveNetns, &set)?;
                }
                run_ip(&name, Step::LinkUp, &["-n", ns, "link", "set", &name, "up"])?;
            }
            None => set_link_up(&name)?,
        }

        tracing::debug!(
            ifname = %name,
            netns = cfg.netns.as_deref().unwrap_or("-"),
            vnet_hdr = cfg.vnet_hdr,
            "tap created"
        );
        let uring = TapUring::new(&name);
        Ok(TapPort {
            fd,
            name,
            vnet_hdr: cfg.vnet_hdr,
            tso: cfg.tso,
            stats: PortStats::default(),
            errors: ErrorLog::default(),
            fault: None,
            uring,
        })
    }

    /// The interface name the kernel gave the tap.
    pub fn ifname(&self) -> &str {
        &self.name
    }
}

/// `TUNSETOFFLOAD`: `TUN_F_CSUM`, with `tso` also TSO4/6 and, where the kernel knows them
/// (6.2 and later; EINVAL before), USO4/6. A refused USO is said once in the log.
fn set_offloads(fd: RawFd, name: &str, tso: bool) -> Result<(), PortError> {
    static USO_REFUSED: std::sync::Once = std::sync::Once::new();
    let set = |f: libc::c_uint| {
        // SAFETY: TUNSETOFFLOAD takes an unsigned int by value.
        if unsafe { libc::ioctl(fd, TUNSETOFFLOAD, f) } < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    let base = TUN_F_CSUM | if tso { TUN_F_TSO4 | TUN_F_TSO6 } else { 0 };
    let r = if tso {
        set(base | TUN_F_USO4 | TUN_F_USO6).or_else(|e| {
            if e.raw_os_error() != Some(libc::EINVAL) {
                return Err(e);
            }
            USO_REFUSED.call_once(|| {
                tracing::warn!(
                    ifname = name,
                    "the kernel refused TUN_F_USO4/6 (EINVAL): taps announce TSO only"
                );
            });
            set(base)
        })
    } else {
        set(base)
    };
    r.map_err(|e| PortError::os(name, Step::TunSetIff, e))
}

/// One received frame with a virtio-net header: `got` bytes were read, the header into
/// `hdr` and the frame into `slot`. Returns the frame's length and metadata, or why it is
/// dropped (counted by the caller: [`PortStats::rx_dropped`], and a bad header also
/// [`PortStats::rx_bad_offload`]). For every receive path (one `readv`, or a batch).
pub(crate) fn vnet_rx(
    hdr: &[u8; VNET_HDR_LEN],
    got: usize,
    slot: &[u8],
) -> Result<(usize, Offload), RxDrop> {
    let len = got.checked_sub(VNET_HDR_LEN).ok_or(RxDrop::Short)?;
    if len >= slot.len() || len < 14 {
        return Err(RxDrop::Short);
    }
    let off = Offload::from_vnet(hdr);
    super::gso::check(&off, &slot[..len]).map_err(|_| RxDrop::BadOffload)?;
    Ok((len, off))
}

/// Why [`vnet_rx`] dropped a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RxDrop {
    /// Shorter than a header, or truncated by a full slot.
    Short,
    /// The virtio-net header is malformed or does not match the frame.
    BadOffload,
}

fn run_ip(ifname: &str, step: Step, args: &[&str]) -> Result<(), PortError> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| PortError::os(ifname, step, e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(PortError::Os {
            ifname: ifname.to_owned(),
            step,
            source: io::Error::other(format!(
                "ip {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )),
        })
    }
}

/// Set `IFF_UP` on an interface of the current namespace (SIOCGIFFLAGS / SIOCSIFFLAGS).
pub(crate) fn set_link_up(name: &str) -> Result<(), PortError> {
    // SAFETY: plain socket(2) call; the result is checked and owned below.
    let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if s < 0 {
        return Err(PortError::os(
            name,
            Step::LinkUp,
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: `s` is a fresh fd that nothing else owns.
    let s = unsafe { OwnedFd::from_raw_fd(s) };
    let mut req = IfReqFlags::new(name);
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read/write a `struct ifreq` (name + short flags),
    // which `req` lays out; it lives across both calls.
    let rc = unsafe {
        if libc::ioctl(
            s.as_raw_fd(),
            libc::SIOCGIFFLAGS,
            &mut req as *mut IfReqFlags,
        ) < 0
        {
            -1
        } else {
            req.flags |= libc::IFF_UP as libc::c_short;
            libc::ioctl(
                s.as_raw_fd(),
                libc::SIOCSIFFLAGS,
                &mut req as *mut IfReqFlags,
            )
        }
    };
    if rc < 0 {
        return Err(PortError::os(
            name,
            Step::LinkUp,
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Keep or drop one received frame: `got` bytes were read (with the virtio-net header
/// `hdr` first when `vnet_hdr`) into `slot`. Returns the frame's length and offload
/// metadata to commit, or `None` after counting the drop (`rx_bad_offload` for a malformed
/// header). Counts the frame received. The syscall and io_uring paths both call it.
fn accept_rx(
    vnet_hdr: bool,
    stats: &mut PortStats,
    got: usize,
    hdr: &[u8; VNET_HDR_LEN],
    slot: &[u8],
) -> Option<(usize, Offload)> {
    let (len, off) = if vnet_hdr {
        match vnet_rx(hdr, got, slot) {
            Ok(x) => x,
            Err(why) => {
                stats.rx_dropped += 1;
                if why == RxDrop::BadOffload {
                    stats.rx_bad_offload += 1;
                }
                return None;
            }
        }
    } else {
        // A frame longer than the slot is truncated by read(2): drop it.
        if got >= slot.len() || got < 14 {
            stats.rx_dropped += 1;
            return None;
        }
        (got, Offload::NONE)
    };
    stats.count_rx(len);
    Some((len, off))
}

impl TapPort {
    /// `rx_burst` through io_uring; `None` when the ring failed (it is then dropped, said
    /// once in the log, and the caller reads with syscalls).
    fn rx_uring(&mut self, batch: &mut FrameBatch) -> Option<io::Result<usize>> {
        let fd = self.fd.as_raw_fd();
        let ring = self.uring.as_mut()?;
        let ran = match ring.read_burst(fd, self.vnet_hdr, batch) {
            Ok(ran) => ran,
            Err(e) => return self.uring_failed(&e),
        };
        let (mut n, mut err) = (0, None);
        for i in 0..ran {
            let r = ring.results()[i];
            if r < 0 {
                let e = io::Error::from_raw_os_error(-r);
                if i == 0 && r == -libc::EOPNOTSUPP {
                    return self.uring_failed(&e);
                }
                if !would_block(&e) {
                    self.fault = gone_errno(&e).or(self.fault);
                    err.get_or_insert(e);
                }
                continue;
            }
            // Frames land in the spare slot of their read; close the hole a drop left.
            batch.pull_spare(i - n, r as usize);
            let slot = batch.spare_slot()?;
            if let Some((len, off)) = accept_rx(
                self.vnet_hdr,
                &mut self.stats,
                r as usize,
                ring.header(i),
                slot,
            ) {
                batch.commit_offload(len, off);
                n += 1;
            }
        }
        // As the syscall path: with frames in hand an error waits for the next call.
        Some(match err {
            Some(e) if n == 0 => Err(e),
            _ => Ok(n),
        })
    }

    /// `tx_burst_offload` through io_uring; `None` as [`TapPort::rx_uring`] (nothing was
    /// sent).
    fn tx_uring(&mut self, frames: &[&[u8]], offs: &[Offload]) -> Option<io::Result<usize>> {
        let fd = self.fd.as_raw_fd();
        let ring = self.uring.as_mut()?;
        let (mut sent, mut failed, mut unsupported) = (0, 0, false);
        let (stats, errors, fault, name) = (
            &mut self.stats,
            &mut self.errors,
            &mut self.fault,
            &self.name,
        );
        let hdr_of = |i: usize| offs.get(i).map_or([0u8; VNET_HDR_LEN], Offload::to_vnet);
        let res = ring.write_burst(fd, self.vnet_hdr, frames, hdr_of, |i, r| {
            if r >= 0 {
                stats.count_tx(frames[i].len());
                sent += 1;
                return;
            }
            let e = io::Error::from_raw_os_error(-r);
            if i == 0 && r == -libc::EOPNOTSUPP {
                unsupported = true;
            } else if !would_block(&e) {
                // Malformed frame (EINVAL), link down (EIO), device deleted (EBADFD): drop
                // this one, keep going.
                *fault = gone_errno(&e).or(*fault);
                errors.error(name, Op::Tx, &e);
                stats.tx_dropped += 1;
                failed += 1;
            }
        });
        if let Err(e) = res {
            if sent + failed == 0 {
                return self.uring_failed(&e);
            }
        }
        if unsupported {
            return self.uring_failed(&io::Error::from_raw_os_error(libc::EOPNOTSUPP));
        }
        // Everything neither sent nor already counted as failed was cut off by EAGAIN.
        self.stats.tx_dropped += (frames.len() - sent - failed) as u64;
        Some(Ok(sent))
    }

    /// The ring failed as a whole: drop it (log once) so this port uses syscalls from now.
    fn uring_failed<T>(&mut self, e: &io::Error) -> Option<T> {
        tracing::warn!(ifname = %self.name, error = %e, "io_uring failed on this tap: one syscall per frame from now on");
        self.uring = None;
        None
    }
}

impl Port for TapPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn rx_burst(&mut self, batch: &mut FrameBatch) -> io::Result<usize> {
        if self.uring.is_some() {
            if let Some(r) = self.rx_uring(batch) {
                return r;
            }
        }
        let fd = self.fd.as_raw_fd();
        let mut n = 0;
        while let Some(slot) = batch.spare_slot() {
            let mut hdr = [0u8; VNET_HDR_LEN];
            let got = if self.vnet_hdr {
                let iov = [
                    libc::iovec {
                        iov_base: hdr.as_mut_ptr().cast(),
                        iov_len: VNET_HDR_LEN,
                    },
                    libc::iovec {
                        iov_base: slot.as_mut_ptr().cast(),
                        iov_len: slot.len(),
                    },
                ];
                // SAFETY: both iovecs point to live, writable buffers of the given lengths.
                unsafe { libc::readv(fd, iov.as_ptr(), 2) }
            } else {
                // SAFETY: `slot` is a live, writable buffer of `slot.len()` bytes.
                unsafe { libc::read(fd, slot.as_mut_ptr().cast(), slot.len()) }
            };
            if got < 0 {
                let e = io::Error::last_os_error();
                if would_block(&e) {
                    break;
                }
                self.fault = gone_errno(&e).or(self.fault);
                // With frames in hand the error waits: a lasting one fails the next call
                // before any frame, which returns it (and the caller logs it).
                return if n > 0 { Ok(n) } else { Err(e) };
            }
            if let Some((len, off)) =
                accept_rx(self.vnet_hdr, &mut self.stats, got as usize, &hdr, slot)
            {
                batch.commit_offload(len, off);
                n += 1;
            }
        }
        Ok(n)
    }

    fn tx_burst(&mut self, frames: &[&[u8]]) -> io::Result<usize> {
        self.tx_burst_offload(frames, &[])
    }

    fn takes_offload(&self) -> bool {
        self.vnet_hdr
    }

    fn slot_size(&self) -> usize {
        if self.tso {
            super::MAX_SLOT
        } else {
            super::DEFAULT_SLOT
        }
    }

    /// Frame `i` goes out with the virtio-net header of `offs[i]` (none past its end), so
    /// a superframe or a partial checksum reaches the instance as it was sent.
    fn tx_burst_offload(&mut self, frames: &[&[u8]], offs: &[Offload]) -> io::Result<usize> {
        if self.uring.is_some() {
            if let Some(r) = self.tx_uring(frames, offs) {
                return r;
            }
        }
        let fd = self.fd.as_raw_fd();
        let mut sent = 0;
        let mut failed = 0;
        for (i, f) in frames.iter().enumerate() {
            let hdr = offs.get(i).map_or([0u8; VNET_HDR_LEN], Offload::to_vnet);
            let rc = if self.vnet_hdr {
                let iov = [
                    libc::iovec {
                        iov_base: hdr.as_ptr() as *mut libc::c_void,
                        iov_len: VNET_HDR_LEN,
                    },
                    libc::iovec {
                        iov_base: f.as_ptr() as *mut libc::c_void,
                        iov_len: f.len(),
                    },
                ];
                // SAFETY: both iovecs point to live buffers; writev only reads them.
                unsafe { libc::writev(fd, iov.as_ptr(), 2) }
            } else {
                // SAFETY: `f` is a live buffer of `f.len()` bytes; write only reads it.
                unsafe { libc::write(fd, f.as_ptr().cast(), f.len()) }
            };
            if rc < 0 {
                let e = io::Error::last_os_error();
                if would_block(&e) {
                    break;
                }
                self.fault = gone_errno(&e).or(self.fault);
                // Malformed frame (EINVAL), link down (EIO), device deleted (EBADFD): drop
                // this one, keep going.
                self.errors.error(&self.name, Op::Tx, &e);
                self.stats.tx_dropped += 1;
                failed += 1;
                continue;
            }
            self.stats.count_tx(f.len());
            sent += 1;
        }
        // Everything neither sent nor already counted as failed was cut off by EAGAIN.
        self.stats.tx_dropped += (frames.len() - sent - failed) as u64;
        Ok(sent)
    }

    fn poll_fd(&self) -> Option<RawFd> {
        Some(self.fd.as_raw_fd())
    }

    fn stats(&self) -> PortStats {
        self.stats
    }

    fn take_fault(&mut self) -> Option<i32> {
        self.fault.take()
    }
}

impl std::fmt::Debug for TapPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TapPort")
            .field("name", &self.name)
            .field("vnet_hdr", &self.vnet_hdr)
            .finish()
    }
}

const _: () = assert!(std::mem::size_of::<IfReqFlags>() == 40);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_sum_and_completion() {
        // RFC 1071 example words.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(ones_complement_sum(&d), 0xddf2);
        assert_eq!(ones_complement_sum(&[0xab]), 0xab00);
        let mut f = [0u8; 8];
        f[..4].copy_from_slice(&[0x12, 0x34, 0x00, 0x00]);
        assert!(complete_checksum(&mut f, 0, 2));
        // After completion the sum over the range is 0xffff (verifies).
        assert_eq!(ones_complement_sum(&f), 0xffff);
        assert!(!complete_checksum(&mut f, 0, 7));
        assert!(!complete_checksum(&mut f, 9, 0));
        assert!(!complete_checksum(&mut f, usize::MAX, 1));
    }

    #[test]
    fn vnet_rx_passes_metadata_and_refuses_bad_headers() {
        // Ethernet + IPv4 (total length 40) + TCP (data offset 5), no payload.
        let mut f = vec![0u8; 54];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[16..18].copy_from_slice(&40u16.to_be_bytes());
        f[23] = 6;
        f[46] = 0x50;
        let slot = {
            let mut s = vec![0u8; 2048];
            s[..54].copy_from_slice(&f);
            s
        };
        let tso = Offload {
            flags: super::super::gso::F_NEEDS_CSUM,
            gso_type: super::super::gso::GSO_TCPV4,
            hdr_len: 54,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
        };
        let got = VNET_HDR_LEN + 54;
        assert_eq!(vnet_rx(&tso.to_vnet(), got, &slot), Ok((54, tso)));
        assert_eq!(
            vnet_rx(&[0; VNET_HDR_LEN], got, &slot),
            Ok((54, Offload::NONE))
        );
        let mut bad = tso;
        bad.gso_size = 0;
        assert_eq!(vnet_rx(&bad.to_vnet(), got, &slot), Err(RxDrop::BadOffload));
        bad = tso;
        bad.csum_start = 2000;
        assert_eq!(vnet_rx(&bad.to_vnet(), got, &slot), Err(RxDrop::BadOffload));
        assert_eq!(vnet_rx(&tso.to_vnet(), 5, &slot), Err(RxDrop::Short));
        assert_eq!(
            vnet_rx(&tso.to_vnet(), VNET_HDR_LEN + 2048, &slot),
            Err(RxDrop::Short),
            "filled the slot: maybe truncated"
        );
    }
}
