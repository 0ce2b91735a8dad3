//! [`PortGroup`]: the one receive/transmit interface the runtime drives, for every backend.
//!
//! # Purpose
//! A worker owns a list of port groups. A group is one or more ports that one thread
//! drives together: an AF_XDP shared-UMEM group ([`super::afxdp::UmemGroup`]), whose members
//! forward frames to each other by moving descriptors, or a single port of any backend
//! ([`Single`], a group of one that copies). The runtime runs *one* loop over groups,
//! whatever the backend and the worker count: receive a burst on a member, read the frames
//! in place ([`PortGroup::rx_frame`]), let the pipeline decide, copy the frame to ports of
//! other groups, then end the burst with [`PortGroup::rx_done`], telling the group which of
//! its own members transmit each frame. How that happens (a descriptor move, a copy inside
//! the UMEM, a copy into a batch) is the group's business, not the runtime's.
//!
//! # Contract
//! * `rx(m, max)` starts a burst on member `m` (at most `max` frames, at most
//!   [`super::MAX_BURST`]); frames `0..n` are readable with `rx_frame` until `rx_done`. A
//!   second `rx` before `rx_done` ends the first burst as if every frame were dropped.
//! * `rx_done(fates)` ends the burst: `fates[k]` is a bit set of members (bit `j` = member
//!   `j`) that transmit frame `k`; `0` drops it. A missing entry counts as `0`.
//! * `tx_copy(m, frame)` queues a copy of `frame` on member `m`; queued frames leave by
//!   `flush` at the latest (or earlier, when a batch fills). Frames that find no room are
//!   dropped and counted in the member's [`PortStats::tx_dropped`].
//! * Nothing on these paths allocates.
//!
//! An error a [`Single`]'s port returns from `rx_burst` or `tx_burst` is logged through
//! the port's [`ErrorLog`] (WARN, at most one event per error kind per second, with the
//! count held back); the frames concerned are in the port's counters. An error that says
//! a member's netdev may be gone is handed out once by [`PortGroup::take_fault`] (the
//! runtime asks a few times a second).
//!
//! This module holds no dataplane logic: it knows frames and members, not verdicts.

use std::os::fd::RawFd;

use super::errlog::{ErrorLog, Op};
use super::{FrameBatch, Offload, Port, PortStats, DEFAULT_SLOT};

/// At most this many receive (and transmit) slots for a port whose slots are larger than
/// [`DEFAULT_SLOT`] (a tap taking 64 KB superframes: 32 × 64 KB = 2 MB each way).
pub const BIG_SLOT_BURST: usize = 32;

/// The members of a group that transmit a frame (bit `j` = member `j`; at most 64).
pub type Members = u64;

/// Ports driven together by one worker. See the module doc for the contract.
pub trait PortGroup: Send {
    /// Number of members.
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Start a burst on member `m`: receive up to `max` frames; returns how many.
    fn rx(&mut self, m: usize, max: usize) -> usize;

    /// Frame `k` of the current burst (empty if out of range).
    fn rx_frame(&self, k: usize) -> &[u8];

    /// End the current burst: frame `k` is transmitted on each member in `fates[k]`.
    fn rx_done(&mut self, fates: &[Members]);

    /// Queue a copy of `frame` for transmission on member `m`.
    fn tx_copy(&mut self, m: usize, frame: &[u8]);

    /// The offload metadata of frame `k` of the current burst ([`Offload::NONE`] unless
    /// the member's port passes it up: a tap with `vnet_hdr`).
    fn rx_offload(&self, _k: usize) -> Offload {
        Offload::NONE
    }

    /// True if member `m` transmits frames with their offload metadata
    /// ([`Port::takes_offload`]); frames for other members must be resolved first
    /// ([`super::gso::resolve`]).
    fn takes_offload(&self, _m: usize) -> bool {
        false
    }

    /// Queue a copy of `frame` with its metadata on member `m` (which
    /// [`PortGroup::takes_offload`]); the default drops the metadata.
    fn tx_copy_offload(&mut self, m: usize, frame: &[u8], _off: Offload) {
        self.tx_copy(m, frame);
    }

    /// Transmit everything queued.
    fn flush(&mut self);

    /// Counters of member `m`.
    fn stats(&self, m: usize) -> PortStats;

    /// A descriptor readable when member `m` may have frames.
    fn poll_fd(&self, m: usize) -> Option<RawFd>;

    /// Take member `m` out (hot-unplug): members above it shift down by one. Refused
    /// (false) for the last member: drop the group instead.
    fn remove_member(&mut self, m: usize) -> bool;

    /// Frames forwarded between members without a copy, since the group was opened.
    fn moved(&self) -> u64 {
        0
    }

    /// The errno of member `m`'s last error that says its netdev may be gone
    /// ([`super::Port::take_fault`]), once. Asked a few times a second, not per burst.
    fn take_fault(&mut self, _m: usize) -> Option<i32> {
        None
    }

    /// An underlay group ([`super::underlay::UnderlayGroup`]) takes the tunnels of a new
    /// dataplane (member `1 + i` is tunnel `i`) and answers true; every other group
    /// answers false.
    fn set_tunnels(&mut self, _tunnels: &[super::underlay::TunnelDest]) -> bool {
        false
    }
}

/// Any [`Port`] as a group of one: receives into a [`FrameBatch`] and transmits copies
/// from another one.
pub struct Single {
    port: Box<dyn Port>,
    rx: FrameBatch,
    tx: FrameBatch,
    errors: ErrorLog,
}

impl Single {
    /// `burst`: frames per receive, in slots of the port's [`Port::slot_size`] (a longer
    /// frame is dropped and counted by the backend); with slots larger than
    /// [`DEFAULT_SLOT`], at most [`BIG_SLOT_BURST`] of them.
    pub fn new(port: Box<dyn Port>, burst: usize) -> Single {
        let slot = port.slot_size();
        let burst = if slot > DEFAULT_SLOT {
            burst.min(BIG_SLOT_BURST)
        } else {
            burst
        };
        Self::with_slot(port, burst, slot)
    }

    /// As [`Single::new`] with slots of `slot` bytes.
    pub fn with_slot(port: Box<dyn Port>, burst: usize, slot: usize) -> Single {
        Single {
            port,
            rx: FrameBatch::new(burst, slot),
            tx: FrameBatch::new(burst.max(32), slot),
            errors: ErrorLog::default(),
        }
    }

    /// The port.
    pub fn port(&self) -> &dyn Port {
        self.port.as_ref()
    }
}

/// Queue `frame` (with `off`) on `tx`, first transmitting what is queued when it is full.
fn queue(
    port: &mut dyn Port,
    tx: &mut FrameBatch,
    errors: &mut ErrorLog,
    frame: &[u8],
    off: Offload,
) {
    if tx.push_offload(frame, off) {
        return;
    }
    if !tx.is_empty() {
        send(port, tx, errors);
    }
    if !tx.push_offload(frame, off) {
        // Longer than a slot: hand it to the port as it is (the port counts a drop if it
        // cannot send it either).
        if let Err(e) = port.tx_burst_offload(&[frame], &[off]) {
            errors.error(port.name(), Op::Tx, &e);
        }
    }
}

/// Transmit and empty `tx`.
fn send(port: &mut dyn Port, tx: &mut FrameBatch, errors: &mut ErrorLog) {
    if let Err(e) = port.tx_batch(tx) {
        errors.error(port.name(), Op::Tx, &e);
    }
    tx.clear();
}

impl PortGroup for Single {
    fn len(&self) -> usize {
        1
    }

    /// Receives up to `max` frames, at most the burst the group was made with.
    fn rx(&mut self, m: usize, max: usize) -> usize {
        self.rx.clear();
        if m != 0 || max == 0 {
            return 0;
        }
        self.rx.set_capacity(max);
        match self.port.rx_burst(&mut self.rx) {
            Ok(n) => n,
            Err(e) => {
                self.errors.error(self.port.name(), Op::Rx, &e);
                0
            }
        }
    }

    fn rx_frame(&self, k: usize) -> &[u8] {
        self.rx.get(k).unwrap_or(&[])
    }

    fn rx_done(&mut self, fates: &[Members]) {
        // A single port can only send a frame back where it came from (a hairpin, which
        // the pipeline never asks for); honoured anyway.
        for (k, f) in fates.iter().enumerate() {
            if f & 1 != 0 {
                if let Some(frame) = self.rx.get(k) {
                    let off = self.rx.offload(k);
                    queue(
                        self.port.as_mut(),
                        &mut self.tx,
                        &mut self.errors,
                        frame,
                        off,
                    );
                }
            }
        }
        self.rx.clear();
    }

    fn tx_copy(&mut self, m: usize, frame: &[u8]) {
        if m == 0 {
            let (p, tx, e) = (self.port.as_mut(), &mut self.tx, &mut self.errors);
            queue(p, tx, e, frame, Offload::NONE);
        }
    }

    fn rx_offload(&self, k: usize) -> Offload {
        self.rx.offload(k)
    }

    fn takes_offload(&self, m: usize) -> bool {
        m == 0 && self.port.takes_offload()
    }

    fn tx_copy_offload(&mut self, m: usize, frame: &[u8], off: Offload) {
        if m == 0 {
            let (p, tx, e) = (self.port.as_mut(), &mut self.tx, &mut self.errors);
            queue(p, tx, e, frame, off);
        }
    }

    fn flush(&mut self) {
        if !self.tx.is_empty() {
            send(self.port.as_mut(), &mut self.tx, &mut self.errors);
        }
    }

    fn stats(&self, m: usize) -> PortStats {
        if m == 0 {
            self.port.stats()
        } else {
            PortStats::default()
        }
    }

    fn poll_fd(&self, m: usize) -> Option<RawFd> {
        if m == 0 {
            self.port.poll_fd()
        } else {
            None
        }
    }

    fn remove_member(&mut self, _m: usize) -> bool {
        false
    }

    fn take_fault(&mut self, m: usize) -> Option<i32> {
        if m == 0 {
            self.port.take_fault()
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::mem::MemPort;

    #[test]
    fn single_receives_forwards_and_copies() {
        let (port, peer) = MemPort::new("a", 64);
        peer.inject(&[1u8; 60]);
        peer.inject(&[2u8; 70]);
        let mut g = Single::new(Box::new(port), 32);
        assert_eq!(g.len(), 1);
        assert_eq!(g.rx(0, 32), 2);
        assert_eq!(g.rx_frame(0), &[1u8; 60][..]);
        assert_eq!(g.rx_frame(1).len(), 70);
        assert!(g.rx_frame(2).is_empty());
        // Frame 1 back out of member 0 (a hairpin), frame 0 dropped.
        g.rx_done(&[0, 1]);
        assert!(g.rx_frame(0).is_empty(), "the burst is over");
        g.tx_copy(0, &[3u8; 64]);
        g.tx_copy(1, &[4u8; 64]); // no such member: ignored
        g.flush();
        let got = peer.take_tx();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], vec![2u8; 70]);
        assert_eq!(got[1], vec![3u8; 64]);
        assert_eq!(g.stats(0).tx_packets, 2);
        assert!(!g.remove_member(0));
    }

    /// A port whose every rx and tx fails.
    struct Failing;

    impl Port for Failing {
        fn name(&self) -> &str {
            "bad"
        }
        fn rx_burst(&mut self, _: &mut FrameBatch) -> std::io::Result<usize> {
            Err(std::io::Error::from_raw_os_error(libc::EIO))
        }
        fn tx_burst(&mut self, _: &[&[u8]]) -> std::io::Result<usize> {
            Err(std::io::Error::from_raw_os_error(libc::EIO))
        }
        fn poll_fd(&self) -> Option<RawFd> {
            None
        }
        fn stats(&self) -> PortStats {
            PortStats::default()
        }
    }

    #[test]
    fn single_counts_port_errors_rate_limited() {
        let mut g = Single::new(Box::new(Failing), 4);
        for _ in 0..3 {
            assert_eq!(g.rx(0, 4), 0);
        }
        for _ in 0..3 {
            g.tx_copy(0, &[0u8; 64]);
            g.flush();
        }
        // One event per kind (rx EIO, tx EIO) went out; the other two of each were held.
        assert_eq!(g.errors.suppressed(), 4);
        g.tx_copy(0, &[0u8; 4096]); // longer than a slot: sent alone, fails too
        assert_eq!(g.errors.suppressed(), 5);
    }

    /// A port that takes offload metadata (as a tap with `vnet_hdr`), recording it.
    struct Offloading {
        big: bool,
        sent: std::sync::Arc<std::sync::Mutex<Vec<(usize, Offload)>>>,
    }

    impl Port for Offloading {
        fn name(&self) -> &str {
            "off"
        }
        fn rx_burst(&mut self, b: &mut FrameBatch) -> std::io::Result<usize> {
            let off = Offload {
                gso_type: 1,
                gso_size: 1448,
                ..Offload::NONE
            };
            let slot = b.spare_slot().unwrap();
            slot[..3000].fill(7);
            b.commit_offload(3000, off);
            Ok(1)
        }
        fn tx_burst(&mut self, f: &[&[u8]]) -> std::io::Result<usize> {
            self.tx_burst_offload(f, &[])
        }
        fn tx_burst_offload(&mut self, f: &[&[u8]], o: &[Offload]) -> std::io::Result<usize> {
            let mut sent = self.sent.lock().unwrap();
            for (i, fr) in f.iter().enumerate() {
                sent.push((fr.len(), o.get(i).copied().unwrap_or_default()));
            }
            Ok(f.len())
        }
        fn takes_offload(&self) -> bool {
            true
        }
        fn slot_size(&self) -> usize {
            if self.big {
                crate::port::MAX_SLOT
            } else {
                DEFAULT_SLOT
            }
        }
        fn poll_fd(&self) -> Option<RawFd> {
            None
        }
        fn stats(&self) -> PortStats {
            PortStats {
                tx_packets: self.sent.lock().unwrap().len() as u64,
                ..PortStats::default()
            }
        }
    }

    #[test]
    fn single_carries_offload_metadata_both_ways() {
        let sent = std::sync::Arc::default();
        let port = Offloading {
            big: true,
            sent: std::sync::Arc::clone(&sent),
        };
        let mut g = Single::new(Box::new(port), 256);
        assert_eq!(g.rx.capacity(), BIG_SLOT_BURST, "64 KB slots: at most 32");
        assert_eq!(g.rx.slot_size(), crate::port::MAX_SLOT);
        assert!(g.takes_offload(0) && !g.takes_offload(1));
        assert_eq!(g.rx(0, 256), 1);
        let got = g.rx_offload(0);
        assert_eq!((got.gso_type, got.gso_size), (1, 1448));
        assert_eq!(g.rx_offload(1), Offload::NONE);
        let frame = g.rx_frame(0).to_vec();
        g.rx_done(&[1]); // a hairpin keeps the metadata
        g.tx_copy_offload(0, &[1u8; 60_000], got);
        g.tx_copy(0, &[2u8; 60]);
        g.flush();
        assert_eq!(
            *sent.lock().unwrap(),
            vec![(3000, got), (60_000, got), (60, Offload::NONE)],
            "each frame with its own metadata"
        );
        let mut g2 = Single::new(
            Box::new(Offloading {
                big: false,
                sent: std::sync::Arc::default(),
            }),
            256,
        );
        assert_eq!(g2.rx.capacity(), 256, "default slots: the whole burst");
        g2.tx_copy(0, &frame[..100]);
        g2.flush();
        assert_eq!(g2.stats(0).tx_packets, 1);
    }

    #[test]
    fn single_rx_takes_at_most_max() {
        let (port, peer) = MemPort::new("a", 64);
        for i in 0..5u8 {
            peer.inject(&[i; 60]);
        }
        let mut g = Single::new(Box::new(port), 4);
        assert_eq!(g.rx(0, 2), 2, "max 2 of the burst of 4");
        assert_eq!(g.rx_frame(1), &[1u8; 60][..]);
        assert!(g.rx_frame(2).is_empty());
        g.rx_done(&[]);
        assert_eq!(g.rx(0, 0), 0);
        assert_eq!(peer.rx_pending(), 3);
        peer.inject(&[5u8; 60]);
        assert_eq!(g.rx(0, 32), 4, "a larger max: the burst it was made with");
        assert_eq!(g.rx_frame(0), &[2u8; 60][..]);
        assert_eq!(g.rx(0, 3), 0);
        assert_eq!(peer.rx_pending(), 0);
    }
}
