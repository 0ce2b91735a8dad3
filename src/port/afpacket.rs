//! [`AfPacketPort`]: a raw `AF_PACKET` socket bound to one netdev — the fallback that works
//! on any interface (physical, veth, tap held by someone else, bridge, ...).
//!
//! # Design
//! * `socket(AF_PACKET, SOCK_RAW, ETH_P_ALL)`, bound to the ifindex, non-blocking,
//!   promiscuous (`PACKET_MR_PROMISC`: a switch port must see frames for every MAC), and
//!   `PACKET_IGNORE_OUTGOING` so our own transmissions are not received back.
//! * A whole burst per syscall: `recvmmsg(2)` straight into the [`FrameBatch`] slots and
//!   `sendmmsg(2)` straight from the caller's slices. The `mmsghdr`/`iovec` arrays are
//!   preallocated once per port and re-pointed on every call.
//! * A frame longer than a slot arrives with `MSG_TRUNC`: dropped and counted.
//! * `PACKET_VNET_HDR`: the kernel prepends a `virtio_net_hdr` to every received frame
//!   (read into a separate iovec, so the frame still lands at the slot start), and the
//!   frame comes up with its offload metadata exactly as from a tap ([`super::tap`]'s
//!   `vnet_rx`): a frame sent from a local namespace with TX checksum offload on has a
//!   *partial* L4 checksum (`NEEDS_CSUM`), and with TSO on (a veth's default) the
//!   instance's TCP sends GSO superframes of up to 64 KB. Both go up as [`Offload`]
//!   metadata, so the pipeline judges a superframe once and the runtime hands it whole to
//!   a port that takes it (a tap with `vnet_hdr`) or completes / segments it for one that
//!   does not ([`super::gso::resolve`], counted as `gso_segmented` at the destination);
//!   the slots are then [`super::MAX_SLOT`] bytes. A malformed header is dropped and
//!   counted (`rx_bad_offload`). Before this, superframes were dropped here, which stalled
//!   TCP from any instance whose veth kept the kernel's default offloads. On transmit we
//!   write an all-zero header (frames leave complete: this port does not take offload
//!   metadata). If the kernel refuses the option, frames go without header (and partial
//!   checksums are passed up unchanged) in [`super::DEFAULT_SLOT`] slots.
//!
//! # Rejected options
//! * `pnet_datalink`: one frame per syscall behind a channel abstraction (about 35 kpps
//!   measured on this kind of machine); `recvmmsg`/`sendmmsg` need no dependency.
//! * `PACKET_MMAP` rings (TPACKET_V3): faster still, but more unsafe surface; AF_XDP is the
//!   fast path, this backend is the functional fallback. (benches/e2e.sh: this backend
//!   forwards 0.80–0.93× Open vSwitch-AF_XDP's rate with the switch core saturated, about
//!   3.2–4.2 µs of process CPU per frame.)
//! * `PACKET_QDISC_BYPASS` on transmit: measured no gain on veth ports (3 rounds each,
//!   0.82–0.93× with it, 0.87–0.98× without, within noise: a veth has no qdisc to skip),
//!   and on a NIC it would bypass the operator's traffic control.
//!
//! # Owns, and may not touch
//! Owns: one `AF_PACKET` socket (its fd, bind to the ifindex, its promiscuous membership
//! and socket options, all released when the port is dropped) and the preallocated
//! `mmsghdr`/`iovec`/header scratch of its bursts. May not touch: the netdev itself (it
//! creates, configures or brings up nothing; NAPI moderation is [`super::napi`]'s, applied
//! by the runtime), frame contents beyond completing a partial checksum (the virtio-net
//! header helpers are [`super::tap`]'s), or any dataplane logic (no parsing, verdicts or
//! policy). Uses only `port`'s own items (`errlog`, `tap`'s vnet-header helpers, the
//! [`Port`] contract), `std` and `libc`.

use super::errlog::{ErrorLog, Op};
use super::tap::{vnet_rx, RxDrop, VNET_HDR_LEN};
use super::{
    gone_errno, ifindex, would_block, FrameBatch, Offload, Port, PortError, PortStats, Step,
    DEFAULT_SLOT, MAX_BURST, MAX_SLOT,
};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
const PACKET_VNET_HDR: libc::c_int = 15;
/// The header written in front of every transmitted frame (checksum complete, no GSO).
static ZERO_VNET_HDR: [u8; VNET_HDR_LEN] = [0; VNET_HDR_LEN];

/// An `AF_PACKET` port.
pub struct AfPacketPort {
    fd: OwnedFd,
    name: String,
    ifindex: u32,
    msgs: Box<[libc::mmsghdr]>,
    iovs: Box<[[libc::iovec; 2]]>,
    hdrs: Box<[[u8; VNET_HDR_LEN]]>,
    vnet_hdr: bool,
    stats: PortStats,
    /// Transmit errors this port drops and goes on from (logged, rate-limited).
    errors: ErrorLog,
    /// A receive or send failed with an errno that says the device may be gone
    /// (`ENETDOWN`, `ENXIO`), not yet taken by [`Port::take_fault`].
    fault: Option<i32>,
}

// SAFETY: the raw pointers inside `msgs`/`iovs` are scratch: they are rewritten before
// every syscall to point at buffers borrowed for the duration of that call only, and never
// dereferenced otherwise. Moving the port to another thread moves no live borrow.
unsafe impl Send for AfPacketPort {}

fn setsockopt<T>(fd: RawFd, level: libc::c_int, opt: libc::c_int, val: &T) -> io::Result<()> {
    // SAFETY: `val` is a live `T` and the length passed is exactly its size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (val as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl AfPacketPort {
    /// Open a packet socket on `ifname` (which must exist in the current namespace).
    pub fn open(ifname: &str) -> Result<AfPacketPort, PortError> {
        let idx = ifindex(ifname)?;
        let proto = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket(2) call; the result is checked.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                libc::c_int::from(proto),
            )
        };
        if raw < 0 {
            return Err(PortError::os(
                ifname,
                Step::Socket,
                io::Error::last_os_error(),
            ));
        }
        // SAFETY: `raw` is a fresh fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };

        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = idx as i32;
        // SAFETY: `sll` is a valid sockaddr_ll and the length matches it.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(PortError::os(
                ifname,
                Step::BindSocket,
                io::Error::last_os_error(),
            ));
        }
        // SAFETY: packet_mreq is plain old data; all-zero is valid.
        let mut mreq: libc::packet_mreq = unsafe { std::mem::zeroed() };
        mreq.mr_ifindex = idx as i32;
        mreq.mr_type = libc::PACKET_MR_PROMISC as u16;
        setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_ADD_MEMBERSHIP,
            &mreq,
        )
        .map_err(|e| PortError::os(ifname, Step::BindSocket, e))?;
        let vnet_hdr = setsockopt(fd.as_raw_fd(), libc::SOL_PACKET, PACKET_VNET_HDR, &1i32).is_ok();
        // Older kernels lack it; our own frames would then be received back.
        if let Err(e) = setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            PACKET_IGNORE_OUTGOING,
            &1i32,
        ) {
            tracing::warn!(ifname, error = %e, "PACKET_IGNORE_OUTGOING refused: the port receives its own transmissions back");
        }
        if let Err(e) = setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &(4i32 << 20),
        ) {
            tracing::debug!(ifname, error = %e, "SO_RCVBUF not raised");
        }
        tracing::debug!(ifname, ifindex = idx, vnet_hdr, "AF_PACKET socket bound");

        // SAFETY: mmsghdr and iovec are plain old data; all-zero (null pointers, zero
        // lengths) is valid and never used before being re-pointed.
        let msgs = (0..MAX_BURST)
            .map(|_| unsafe { std::mem::zeroed::<libc::mmsghdr>() })
            .collect();
        // SAFETY: as above.
        let iovs = (0..MAX_BURST)
            .map(|_| unsafe { std::mem::zeroed::<[libc::iovec; 2]>() })
            .collect();
        let hdrs = vec![[0u8; VNET_HDR_LEN]; MAX_BURST].into_boxed_slice();
        Ok(AfPacketPort {
            fd,
            name: ifname.to_owned(),
            ifindex: idx,
            msgs,
            iovs,
            hdrs,
            vnet_hdr,
            stats: PortStats::default(),
            errors: ErrorLog::default(),
            fault: None,
        })
    }

    /// Whether the kernel accepted `PACKET_VNET_HDR` (frames come up with their offload
    /// metadata: partial checksums and GSO superframes).
    pub fn vnet_hdr(&self) -> bool {
        self.vnet_hdr
    }

    /// The interface index the socket is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }
}

/// Point `msg` at one frame buffer (`buf`, `len` bytes), preceded by the virtio-net
/// header at `hdr` when `vnet` (without it, the message starts at the frame's iovec).
fn set_msg(
    msg: &mut libc::mmsghdr,
    iov: &mut [libc::iovec; 2],
    vnet: bool,
    hdr: *mut libc::c_void,
    buf: *mut libc::c_void,
    len: usize,
) {
    iov[0].iov_base = hdr;
    iov[0].iov_len = VNET_HDR_LEN;
    iov[1].iov_base = buf;
    iov[1].iov_len = len;
    msg.msg_hdr.msg_iov = if vnet { iov.as_mut_ptr() } else { &mut iov[1] };
    msg.msg_hdr.msg_iovlen = if vnet { 2 } else { 1 };
    msg.msg_hdr.msg_name = std::ptr::null_mut();
    msg.msg_hdr.msg_namelen = 0;
    msg.msg_hdr.msg_control = std::ptr::null_mut();
    msg.msg_hdr.msg_controllen = 0;
    msg.msg_hdr.msg_flags = 0;
    msg.msg_len = 0;
}

impl Port for AfPacketPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn rx_burst(&mut self, batch: &mut FrameBatch) -> io::Result<usize> {
        let mut want = 0;
        let vnet = self.vnet_hdr;
        for ((slot, hdr), (iov, msg)) in batch
            .spare_slots()
            .zip(self.hdrs.iter_mut())
            .zip(self.iovs.iter_mut().zip(self.msgs.iter_mut()))
        {
            set_msg(
                msg,
                iov,
                vnet,
                hdr.as_mut_ptr().cast(),
                slot.as_mut_ptr().cast(),
                slot.len(),
            );
            want += 1;
        }
        if want == 0 {
            return Ok(0);
        }
        // SAFETY: the first `want` mmsghdrs each point to their own iovecs, which point to
        // a distinct free slot of `batch` (and that entry's header buffer), all live and
        // writable for this call.
        let got = unsafe {
            libc::recvmmsg(
                self.fd.as_raw_fd(),
                self.msgs.as_mut_ptr(),
                want as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if got < 0 {
            let e = io::Error::last_os_error();
            if would_block(&e) {
                return Ok(0);
            }
            self.fault = gone_errno(&e).or(self.fault);
            return Err(e);
        }
        let mut n = 0;
        let hlen = if vnet { VNET_HDR_LEN } else { 0 };
        for (i, (msg, hdr)) in self.msgs[..got as usize]
            .iter()
            .zip(self.hdrs.iter())
            .enumerate()
        {
            let got_len = msg.msg_len as usize;
            if msg.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 || got_len < hlen + 14 {
                self.stats.rx_dropped += 1;
                continue;
            }
            let len = got_len - hlen;
            // Frames land in consecutive slots; close the hole a dropped one left.
            if i != n {
                batch.pull_spare(i - n, len);
            }
            let mut off = Offload::NONE;
            if vnet {
                let Some(slot) = batch.spare_slot() else {
                    break;
                };
                match vnet_rx(hdr, got_len, slot) {
                    Ok((_, o)) => off = o,
                    Err(why) => {
                        self.stats.rx_dropped += 1;
                        if why == RxDrop::BadOffload {
                            self.stats.rx_bad_offload += 1;
                        }
                        continue;
                    }
                }
            }
            batch.commit_offload(len, off);
            self.stats.count_rx(len);
            n += 1;
        }
        Ok(n)
    }

    fn tx_burst(&mut self, frames: &[&[u8]]) -> io::Result<usize> {
        let mut sent = 0usize;
        'chunks: for chunk in frames.chunks(MAX_BURST) {
            let vnet = self.vnet_hdr;
            for (f, (iov, msg)) in chunk
                .iter()
                .zip(self.iovs.iter_mut().zip(self.msgs.iter_mut()))
            {
                // The kernel only reads the header and the frame on send.
                set_msg(
                    msg,
                    iov,
                    vnet,
                    ZERO_VNET_HDR.as_ptr() as *mut libc::c_void,
                    f.as_ptr() as *mut libc::c_void,
                    f.len(),
                );
            }
            let mut done = 0usize;
            while done < chunk.len() {
                // SAFETY: entries `done..chunk.len()` point to iovecs that point to the
                // caller's frames and the static zero header, live for this call;
                // sendmmsg only reads them.
                let rc = unsafe {
                    libc::sendmmsg(
                        self.fd.as_raw_fd(),
                        self.msgs[done..].as_mut_ptr(),
                        (chunk.len() - done) as libc::c_uint,
                        libc::MSG_DONTWAIT,
                    )
                };
                if rc <= 0 {
                    let e = io::Error::last_os_error();
                    if rc == 0 || would_block(&e) {
                        // Socket buffer full: the rest of the burst is dropped below.
                        break 'chunks;
                    }
                    // This frame is refused (too long, link down, device gone): drop it,
                    // go on.
                    self.fault = gone_errno(&e).or(self.fault);
                    self.errors.error(&self.name, Op::Tx, &e);
                    done += 1;
                    continue;
                }
                let rc = rc as usize;
                for f in &chunk[done..done + rc] {
                    self.stats.count_tx(f.len());
                }
                sent += rc;
                done += rc;
            }
        }
        self.stats.tx_dropped += (frames.len() - sent) as u64;
        Ok(sent)
    }

    /// Superframes need 64 KB slots (with `PACKET_VNET_HDR`; without it the kernel
    /// never hands one up).
    fn slot_size(&self) -> usize {
        if self.vnet_hdr {
            MAX_SLOT
        } else {
            DEFAULT_SLOT
        }
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
