//! Setting a group up and taking members out: the UMEM mapping ([`Area`]), its
//! registration, each member's socket, rings, bind (with the `EBUSY` retry) and XDP
//! program, and [`UmemGroup::remove_member`]. On an error nothing stays open or attached.
//!
//! Owns every system call of set-up and tear-down; the per-call rx/tx work is
//! [`super::rx`]'s and [`super::tx`]'s, the fill depths are [`super::fill`]'s.
//!
//! Logs (DEBUG) each member bound (XDP mode and bind mode obtained) and removed; the XDP
//! program's attach and detach are logged by [`crate::port::xdp`].

use super::{
    BindMode, GroupConfig, Member, MemberConfig, MemberInfo, UmemGroup, FRAME_MASK, FRAME_SIZE,
};
use crate::port::errlog::ErrorLog;
use crate::port::xdp::{XdpAttachment, XskMap};
use crate::port::{ifindex, PortError, PortStats, Step};
use std::io;
use std::num::NonZeroU32;
use std::ptr::NonNull;
use xdpilone::{IfInfo, Socket, SocketConfig, Umem, UmemConfig, User};

/// Source of group ids (0 is `Desc::NULL`'s).
static NEXT_GROUP_ID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

/// The anonymous mapping that backs a UMEM. Unmapped on drop.
pub(super) struct Area {
    pub(super) ptr: NonNull<u8>,
    pub(super) len: usize,
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
                tracing::trace!("AF_XDP bind: queue still busy, retrying");
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
                    for m in &g.members {
                        tracing::debug!(
                            ifname = %m.info.ifname,
                            queue = m.info.queue,
                            xdp_mode = m.info.xdp_mode.as_str(),
                            bind = m.info.bind.as_str(),
                            group = g.id,
                            frames = frame_count,
                            "AF_XDP socket bound"
                        );
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
                errors: ErrorLog::default(),
                fault: None,
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
        let m = self.members.remove(i);
        tracing::debug!(ifname = %m.info.ifname, group = self.id, "AF_XDP member removed");
        drop(m);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
