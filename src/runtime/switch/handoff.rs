//! Frames handed from one worker to another, in batches.
//!
//! A worker hands over two kinds of frames: frames it received whose connection another
//! worker owns (flow steering: [`Kind::Process`], each with the metadata the receiving
//! worker parsed, so the owner does not parse it again), and frames the pipeline delivered
//! to a port another worker drives ([`Kind::Tx`]). Each goes into the batch this worker is
//! filling for that (worker, kind); a batch moves to the owner's inbox (a lock-free
//! `ArrayQueue` of boxed batches) when it is full and at the end of every loop iteration,
//! and returns to the pool of the worker that filled it once it has been processed. The
//! batches are allocated once, when the switch starts: steady state allocates nothing.
//! With no batch left in the pool, or the owner's inbox full, frames are dropped and
//! counted (`inbox_full`), never waited for.

use crossbeam_queue::ArrayQueue;

use crate::flow::PacketMeta;
use crate::port::FrameBatch;

/// Frames per batch.
pub(super) const HANDOFF: usize = 64;
/// Largest frame handed over (an AF_XDP frame is at most a 4096-byte UMEM frame).
pub(super) const HANDOFF_SLOT: usize = 4096;
/// Batches per worker's pool.
pub(super) const POOL_BATCHES: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// Run through the pipeline as received on `zones[k]`.
    Process,
    /// Transmit on the port of `zones[k]`.
    Tx,
}

/// A batch of frames for one worker.
pub(super) struct Handoff {
    pub kind: Kind,
    /// The worker whose pool the batch returns to.
    pub origin: u16,
    pub frames: FrameBatch,
    /// Per frame: the ingress port's zone (`Process`) or the egress port's (`Tx`).
    pub zones: [u16; HANDOFF],
    /// Per frame (`Process` only): the parse result.
    pub metas: Vec<(bool, PacketMeta)>,
}

impl Handoff {
    pub fn new(origin: u16) -> Box<Handoff> {
        Box::new(Handoff {
            kind: Kind::Process,
            origin,
            frames: FrameBatch::new(HANDOFF, HANDOFF_SLOT),
            zones: [0; HANDOFF],
            metas: vec![(false, PacketMeta::default()); HANDOFF],
        })
    }
}

/// What [`Outbox`] needs of the shared state: each worker's inbox and pool.
pub(super) struct Queues {
    pub inboxes: Vec<ArrayQueue<Box<Handoff>>>,
    pub pools: Vec<ArrayQueue<Box<Handoff>>>,
}

impl Queues {
    /// Queues for `nw` workers, each pool full (no batches at all for one worker, which
    /// never hands over).
    pub fn new(nw: usize) -> Queues {
        let batches = if nw > 1 { POOL_BATCHES } else { 0 };
        let q = Queues {
            inboxes: (0..nw)
                .map(|_| ArrayQueue::new((nw * POOL_BATCHES).max(1)))
                .collect(),
            pools: (0..nw)
                .map(|_| ArrayQueue::new(POOL_BATCHES.max(1)))
                .collect(),
        };
        for (w, pool) in q.pools.iter().enumerate() {
            for _ in 0..batches {
                let _ = pool.push(Handoff::new(w as u16));
            }
        }
        q
    }

    /// Give a processed batch back to the pool it came from.
    pub fn recycle(&self, mut b: Box<Handoff>) {
        b.frames.clear();
        if let Some(pool) = self.pools.get(b.origin as usize) {
            let _ = pool.push(b);
        }
    }
}

/// The batches one worker is filling, per destination worker and kind.
pub(super) struct Outbox {
    me: usize,
    process: Vec<Option<Box<Handoff>>>,
    tx: Vec<Option<Box<Handoff>>>,
    /// Frames dropped: no free batch, or the destination's inbox was full.
    pub dropped: u64,
}

impl Outbox {
    pub fn new(me: usize, nw: usize) -> Outbox {
        Outbox {
            me,
            process: (0..nw).map(|_| None).collect(),
            tx: (0..nw).map(|_| None).collect(),
            dropped: 0,
        }
    }

    /// Hand `frame`, received on `zone` and parsed into `meta`, to worker `to`.
    pub fn process(
        &mut self,
        q: &Queues,
        to: usize,
        zone: u16,
        frame: &[u8],
        meta: &(bool, PacketMeta),
    ) {
        self.push(q, Kind::Process, to, zone, frame, Some(meta));
    }

    /// Hand `frame` to worker `to` for transmission on the port of `zone`.
    pub fn tx(&mut self, q: &Queues, to: usize, zone: u16, frame: &[u8]) {
        self.push(q, Kind::Tx, to, zone, frame, None);
    }

    fn push(
        &mut self,
        q: &Queues,
        kind: Kind,
        to: usize,
        zone: u16,
        frame: &[u8],
        meta: Option<&(bool, PacketMeta)>,
    ) {
        let me = self.me;
        let slots = match kind {
            Kind::Process => &mut self.process,
            Kind::Tx => &mut self.tx,
        };
        let Some(slot) = slots.get_mut(to) else {
            self.dropped += 1;
            return;
        };
        if slot.is_none() {
            *slot = q.pools[me].pop().map(|mut b| {
                b.kind = kind;
                b.frames.clear();
                b
            });
        }
        let Some(b) = slot.as_mut() else {
            self.dropped += 1;
            return;
        };
        let k = b.frames.len();
        if !b.frames.push(frame) {
            self.dropped += 1;
            return;
        }
        b.zones[k] = zone;
        if let Some(m) = meta {
            b.metas[k] = *m;
        }
        if b.frames.is_full() {
            if let Some(b) = slot.take() {
                send(q, to, b, &mut self.dropped);
            }
        }
    }

    /// Send every batch being filled.
    pub fn send_all(&mut self, q: &Queues) {
        for to in 0..self.process.len() {
            for b in [self.process[to].take(), self.tx[to].take()]
                .into_iter()
                .flatten()
            {
                send(q, to, b, &mut self.dropped);
            }
        }
    }
}

fn send(q: &Queues, to: usize, b: Box<Handoff>, dropped: &mut u64) {
    let n = b.frames.len() as u64;
    if n == 0 {
        q.recycle(b);
        return;
    }
    if let Err(b) = q.inboxes[to].push(b) {
        *dropped += n;
        q.recycle(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_travel_and_come_back() {
        let q = Queues::new(2);
        let mut out = Outbox::new(0, 2);
        let meta = (true, PacketMeta::default());
        for i in 0..HANDOFF + 3 {
            out.process(&q, 1, 7, &[i as u8; 60], &meta);
        }
        out.tx(&q, 1, 9, &[1; 100]);
        // One full batch went at once; the rest wait for send_all.
        assert_eq!(q.inboxes[1].len(), 1);
        out.send_all(&q);
        assert_eq!(q.inboxes[1].len(), 3);
        let b = q.inboxes[1].pop().unwrap();
        assert_eq!(
            (b.kind, b.frames.len(), b.zones[0]),
            (Kind::Process, HANDOFF, 7)
        );
        assert_eq!(b.frames.get(5), Some(&[5u8; 60][..]));
        q.recycle(b);
        let b = q.inboxes[1].pop().unwrap();
        assert_eq!((b.kind, b.frames.len()), (Kind::Process, 3));
        q.recycle(b);
        let b = q.inboxes[1].pop().unwrap();
        assert_eq!((b.kind, b.frames.len(), b.zones[0]), (Kind::Tx, 1, 9));
        q.recycle(b);
        assert_eq!(q.pools[0].len(), POOL_BATCHES);
        assert_eq!(out.dropped, 0);
        // Too long for a slot: dropped and counted.
        out.tx(&q, 1, 9, &[0; HANDOFF_SLOT + 1]);
        assert_eq!(out.dropped, 1);
    }

    #[test]
    fn no_batch_no_wait() {
        let q = Queues::new(2);
        let mut out = Outbox::new(0, 2);
        while let Some(b) = q.pools[0].pop() {
            drop(b);
        }
        out.tx(&q, 1, 0, &[0; 60]);
        assert_eq!(out.dropped, 1);
    }
}
