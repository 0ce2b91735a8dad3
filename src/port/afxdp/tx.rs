//! Transmitting on a member of an AF_XDP group: descriptors the caller owns
//! ([`UmemGroup::tx_descs`]) or copies into free frames, the `sendto` kicks that make the
//! kernel consume the TX ring, and reaping the completion ring into the free stack.
//!
//! Frames that find no TX slot or no free frame are dropped and counted in the member's
//! `tx_dropped`; nothing here blocks or allocates. A kick that fails for another reason
//! than a full ring is logged through the member's `ErrorLog` (rate-limited WARN).

use super::{BindMode, Desc, DescBatch, UmemGroup, FRAME_MASK, FRAME_SIZE};
use crate::port::errlog::Op;
use std::io;
use xdpilone::xdp::XdpDesc;

/// Most `sendto` kicks per `tx` call (each moves up to 32 descriptors in copy mode).
const MAX_KICKS: usize = 64;

/// TX reservations per `tx` call. `xdpilone` reserves `1..=n` slots against its cached
/// copy of the kernel's consumer index and refreshes that copy only when it shows no room
/// at all, so one reservation can return fewer slots than the ring really has (measured:
/// ~4% of forwarded frames dropped as "not sent" at 400 kpps with half-empty rings).
/// A second reservation starts from an exhausted cache, so it sees the kernel's progress.
pub(super) const TX_RESERVE_ROUNDS: usize = 2;

impl UmemGroup {
    /// Move completed TX frames of member `i` to the free stack.
    pub(super) fn reap(&mut self, i: usize) {
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
    pub(super) fn tx_copy(&mut self, i: usize, frames: &[&[u8]]) -> usize {
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
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EAGAIN) | Some(libc::EBUSY) | Some(libc::ENOBUFS)
                    | Some(libc::EINTR) => {
                        // Completion ring may be full: make room and try again.
                        self.reap(i);
                    }
                    _ => {
                        // The frames stay in the TX ring for the next kick; say why.
                        m.fault = crate::port::gone_errno(&e).or(m.fault);
                        m.errors.error(&m.info.ifname, Op::Kick, &e);
                        break;
                    }
                }
            }
        }
        self.reap(i);
    }

    /// A free frame holding a copy of `bytes` (at most a frame), as a descriptor the
    /// caller owns; `None` when the free stack is empty or `bytes` is too long.
    pub(super) fn load(&mut self, bytes: &[u8]) -> Option<Desc> {
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
    pub(super) fn dup(&mut self, d: &Desc) -> Option<Desc> {
        let src = self.frame(d);
        let (ptr, len) = (src.as_ptr(), src.len());
        // SAFETY: `ptr..ptr+len` is the caller's frame inside the mapping (checked by
        // `frame`); `load` writes only a frame taken from the free stack, which is never
        // a frame the caller owns, so the two do not overlap. No reference into the
        // mapping is alive across the call (the slice above is rebuilt from its parts).
        let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
        self.load(bytes)
    }
}
