//! An in-memory [`Port`] double for tests: frames injected through a [`MemHandle`] are
//! received by `rx_burst`, frames transmitted with `tx_burst` are collected for the test
//! to inspect.
//!
//! The port and its handle share two bounded queues behind a mutex, so a test can keep the
//! handle while a runtime thread owns the port. This double allocates a `Vec` per frame
//! (it is a test tool, not a dataplane backend); `tx_capacity` bounds the transmit queue
//! so tests can exercise the tx-drop accounting.

use super::{FrameBatch, Port, PortStats};
use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Default)]
struct Queues {
    rx: VecDeque<Vec<u8>>,
    tx: VecDeque<Vec<u8>>,
}

fn lock(q: &Mutex<Queues>) -> MutexGuard<'_, Queues> {
    // A panic while holding the lock cannot leave the queues inconsistent (each operation
    // is a single push or pop), so a poisoned lock is still usable.
    q.lock().unwrap_or_else(|p| p.into_inner())
}

/// The in-memory port.
pub struct MemPort {
    name: String,
    queues: Arc<Mutex<Queues>>,
    tx_capacity: usize,
    stats: PortStats,
}

/// The test's side of a [`MemPort`].
#[derive(Clone)]
pub struct MemHandle {
    queues: Arc<Mutex<Queues>>,
}

impl MemPort {
    /// A port whose transmit queue holds at most `tx_capacity` frames (further frames are
    /// dropped and counted) until the test drains it.
    pub fn new(name: &str, tx_capacity: usize) -> (MemPort, MemHandle) {
        let queues = Arc::new(Mutex::new(Queues::default()));
        (
            MemPort {
                name: name.to_owned(),
                queues: queues.clone(),
                tx_capacity,
                stats: PortStats::default(),
            },
            MemHandle { queues },
        )
    }
}

impl MemHandle {
    /// Queue a frame for the port to receive.
    pub fn inject(&self, frame: &[u8]) {
        lock(&self.queues).rx.push_back(frame.to_vec());
    }

    /// Take every frame the port has transmitted so far, oldest first.
    pub fn take_tx(&self) -> Vec<Vec<u8>> {
        lock(&self.queues).tx.drain(..).collect()
    }

    /// Frames injected but not yet received.
    pub fn rx_pending(&self) -> usize {
        lock(&self.queues).rx.len()
    }
}

impl Port for MemPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn rx_burst(&mut self, batch: &mut FrameBatch) -> io::Result<usize> {
        let mut q = lock(&self.queues);
        let mut n = 0;
        while !batch.is_full() {
            let Some(frame) = q.rx.pop_front() else { break };
            if batch.push(&frame) {
                self.stats.count_rx(frame.len());
                n += 1;
            } else {
                self.stats.rx_dropped += 1;
            }
        }
        Ok(n)
    }

    fn tx_burst(&mut self, frames: &[&[u8]]) -> io::Result<usize> {
        let mut q = lock(&self.queues);
        let room = self.tx_capacity.saturating_sub(q.tx.len());
        let n = frames.len().min(room);
        for f in &frames[..n] {
            q.tx.push_back(f.to_vec());
            self.stats.count_tx(f.len());
        }
        self.stats.tx_dropped += (frames.len() - n) as u64;
        Ok(n)
    }

    fn poll_fd(&self) -> Option<RawFd> {
        None
    }

    fn stats(&self) -> PortStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inject_receive_transmit_drop() {
        let (mut p, h) = MemPort::new("m0", 2);
        assert_eq!(p.name(), "m0");
        h.inject(b"one");
        h.inject(&[7u8; 300]); // longer than the slot below: dropped
        h.inject(b"three");
        let mut b = FrameBatch::new(8, 128);
        assert_eq!(p.rx_burst(&mut b).unwrap(), 2);
        assert_eq!(b.get(0), Some(&b"one"[..]));
        assert_eq!(b.get(1), Some(&b"three"[..]));
        assert_eq!(h.rx_pending(), 0);
        assert_eq!(p.tx_burst(&[b"a", b"bb", b"ccc"]).unwrap(), 2);
        assert_eq!(p.tx_batch(&b).unwrap(), 0, "tx queue full");
        let s = p.stats();
        assert_eq!((s.rx_packets, s.rx_bytes, s.rx_dropped), (2, 8, 1));
        assert_eq!((s.tx_packets, s.tx_bytes, s.tx_dropped), (2, 3, 3));
        assert_eq!(h.take_tx(), vec![b"a".to_vec(), b"bb".to_vec()]);
        assert_eq!(p.tx_batch(&b).unwrap(), 2);
        assert_eq!(h.take_tx(), vec![b"one".to_vec(), b"three".to_vec()]);
    }

    #[test]
    fn rx_respects_batch_room() {
        let (mut p, h) = MemPort::new("m1", 16);
        for i in 0..5u8 {
            h.inject(&[i]);
        }
        let mut b = FrameBatch::new(3, 128);
        assert!(b.push(b"x"));
        assert_eq!(p.rx_burst(&mut b).unwrap(), 2);
        assert_eq!(b.len(), 3);
        assert_eq!(h.rx_pending(), 3);
    }
}
