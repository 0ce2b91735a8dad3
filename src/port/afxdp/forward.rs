//! [`UmemPorts`]: a shared-UMEM group behind the runtime's [`PortGroup`] interface.
//!
//! The runtime receives a burst on a member, reads the frames in place, and ends the burst
//! with each frame's set of destination members of this group. Here that becomes:
//! * no destination: the descriptor goes back to the free stack;
//! * one destination: the descriptor *moves* to that member's pending TX batch (zero copy;
//!   counted in [`PortGroup::moved`]);
//! * several (a flood inside the group): a copy into a free frame for each but the last,
//!   which gets the descriptor itself.
//!
//! Frames from other groups arrive by [`PortGroup::tx_copy`]: one copy straight into a free
//! UMEM frame, queued with the moved descriptors. A member's pending batch goes to its TX
//! ring once it holds [`TX_BATCH`] descriptors and at every [`PortGroup::flush`]; a frame
//! that finds no free UMEM frame is dropped and counted as the member's `tx_dropped`.
//! Every descriptor is owned by exactly one place at any time (the group's free stack, the
//! current burst, or one pending batch), the invariant of [`super`].
//!
//!
//! Owns: [`UmemPorts`], its per-member pending TX batches and the mapping from a burst's
//! destination members to moves or copies. May not touch: what the destinations are (the
//! runtime decides from the pipeline's verdicts; no verdict type is seen here), the rings'
//! set-up ([`super::open`]), or other groups' frames except by copy. Uses `port`'s
//! [`PortGroup`]/[`Members`] interface and [`PortStats`], and the group's descriptor API.

use std::os::fd::RawFd;

use super::{DescBatch, UmemGroup, MAX_BURST};
use crate::port::group::{Members, PortGroup};
use crate::port::PortStats;

/// Pending descriptors of a member that are sent without waiting for a flush.
pub const TX_BATCH: usize = 32;

/// A [`UmemGroup`] driven as a [`PortGroup`].
pub struct UmemPorts {
    group: UmemGroup,
    burst: DescBatch,
    pending: Vec<DescBatch>,
    moved: u64,
}

impl UmemPorts {
    pub fn new(group: UmemGroup) -> UmemPorts {
        let n = group.len();
        UmemPorts {
            group,
            burst: DescBatch::default(),
            pending: (0..n).map(|_| DescBatch::default()).collect(),
            moved: 0,
        }
    }

    /// The group (statistics, member information).
    pub fn group(&self) -> &UmemGroup {
        &self.group
    }

    fn send(&mut self, m: usize) {
        if let Some(p) = self.pending.get_mut(m) {
            if !p.is_empty() {
                self.group.tx_descs(m, p);
            }
        }
    }

    /// Queue a descriptor the caller owns on member `m`, sending the batch when full.
    fn queue(&mut self, m: usize, d: super::Desc) {
        let Some(p) = self.pending.get_mut(m) else {
            self.group.release_one(d);
            return;
        };
        if let Err(d) = p.push(d) {
            self.group.tx_descs(m, p);
            let _ = self.pending[m].push(d);
        }
    }

    fn tx_dropped(&mut self, m: usize) {
        if let Some(mem) = self.group.members.get_mut(m) {
            mem.stats.tx_dropped += 1;
        }
    }
}

impl PortGroup for UmemPorts {
    fn len(&self) -> usize {
        self.group.len()
    }

    fn rx(&mut self, m: usize, max: usize) -> usize {
        if !self.burst.is_empty() {
            self.group.release(&mut self.burst);
        }
        let burst = &mut self.burst;
        // `max` is capped at the batch's room, so every push succeeds.
        self.group.rx_with(m, max.min(MAX_BURST), |_, d| {
            let _ = burst.push(d);
        })
    }

    fn rx_frame(&self, k: usize) -> &[u8] {
        match self.burst.as_slice().get(k) {
            Some(d) => self.group.frame(d),
            None => &[],
        }
    }

    fn rx_done(&mut self, fates: &[Members]) {
        let n = self.group.len();
        let valid: Members = if n >= 64 { !0 } else { (1 << n) - 1 };
        let mut burst = std::mem::take(&mut self.burst);
        for (k, d) in burst.drain().enumerate() {
            let mut to = fates.get(k).copied().unwrap_or(0) & valid;
            if to == 0 {
                self.group.release_one(d);
                continue;
            }
            // Copies for all but the highest member, which takes the descriptor.
            let last = (Members::BITS - 1 - to.leading_zeros()) as usize;
            to &= !(1 << last);
            while to != 0 {
                let j = to.trailing_zeros() as usize;
                to &= to - 1;
                match self.group.dup(&d) {
                    Some(c) => self.queue(j, c),
                    None => self.tx_dropped(j),
                }
            }
            self.queue(last, d);
            self.moved += 1;
        }
        self.burst = burst;
        for m in 0..n {
            if self.pending[m].len() >= TX_BATCH {
                self.send(m);
            }
        }
    }

    fn tx_copy(&mut self, m: usize, frame: &[u8]) {
        if m >= self.group.len() {
            return;
        }
        match self.group.load(frame) {
            Some(d) => self.queue(m, d),
            None => self.tx_dropped(m),
        }
        if self.pending[m].len() >= TX_BATCH {
            self.send(m);
        }
    }

    fn flush(&mut self) {
        for m in 0..self.group.len() {
            self.send(m);
        }
    }

    fn stats(&self, m: usize) -> PortStats {
        self.group.stats(m)
    }

    fn poll_fd(&self, m: usize) -> Option<RawFd> {
        self.group.poll_fd(m)
    }

    fn remove_member(&mut self, m: usize) -> bool {
        if m >= self.group.len() || self.group.len() == 1 {
            return false;
        }
        let mut p = self.pending.remove(m);
        self.group.release(&mut p);
        self.group.remove_member(m)
    }

    fn moved(&self) -> u64 {
        self.moved
    }

    fn take_fault(&mut self, m: usize) -> Option<i32> {
        self.group.take_fault(m)
    }
}
