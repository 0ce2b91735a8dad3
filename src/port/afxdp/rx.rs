//! Receiving on a member of an AF_XDP group: taking descriptors from its RX ring
//! ([`UmemGroup::rx_descs`], or copying into a [`FrameBatch`]), access to the frames a
//! caller owns in place, and giving frames back to the free stack ([`UmemGroup::release`]).
//!
//! Each call reaps completions ([`super::tx`]) and tops the fill ring up
//! ([`super::fill`]) first; it never transmits.

use super::open::Area;
use super::{Desc, DescBatch, UmemGroup, FRAME_MASK, FRAME_SIZE};
use crate::port::{FrameBatch, MAX_BURST};

impl UmemGroup {
    /// Take up to `max` received descriptors of member `i`, calling `f` on each.
    pub(super) fn rx_with(
        &mut self,
        i: usize,
        max: usize,
        mut f: impl FnMut(&Area, Desc),
    ) -> usize {
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
        self.track_idle(i, n);
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

    pub(super) fn rx_copy(&mut self, i: usize, batch: &mut FrameBatch) -> usize {
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
