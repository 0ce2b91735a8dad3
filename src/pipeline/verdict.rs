//! The outcome of a frame and the per-port counters it feeds.
//!
//! Owns: [`Verdict`] (destination port indices and per-port drop reasons of one frame,
//! and the ARP reply generated for its sender, if any),
//! [`Disposition`] and [`PortCounters`]. May not touch: how a verdict is reached (`judge`)
//! or carried out (the runtime transmits; no port backend is known here). Uses `flow`'s
//! [`DropReason`] only.

use super::*;

/// The outcome for one frame: the ports it is delivered to and the drops, each naming
/// the port where it happened. Reused across frames (no allocation in steady state).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub delivered: Vec<u16>,
    pub dropped: Vec<(u16, DropReason)>,
    /// An ARP reply generated for the frame's sender (`arp_responder`): to be written
    /// ([`ArpReply::write`]) and sent out of the ingress port.
    pub reply: Option<ArpReply>,
}

impl Verdict {
    pub fn clear(&mut self) {
        self.delivered.clear();
        self.dropped.clear();
        self.reply = None;
    }

    pub(super) fn copy_from(&mut self, o: &Verdict) {
        self.delivered.clear();
        self.delivered.extend_from_slice(&o.delivered);
        self.dropped.clear();
        self.dropped.extend_from_slice(&o.dropped);
        self.reply = o.reply;
    }

    /// Sort both lists by port index (config order). Most verdicts name one port: no
    /// sort call then.
    #[inline]
    pub(super) fn normalise(&mut self) {
        if self.delivered.len() > 1 {
            self.delivered.sort_unstable();
        }
        if self.dropped.len() > 1 {
            self.dropped.sort_unstable_by_key(|d| d.0);
        }
    }
}

/// What happened to a frame handed to [`Pipeline::process`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// The verdict is final.
    Decided,
    /// The frame is held (a fragment waiting for its first fragment); its verdict comes
    /// later through [`Pipeline::drain_released`].
    Held,
}

/// Per-port counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortCounters {
    /// Frames received from the port.
    pub rx: u64,
    /// Frames delivered to the port.
    pub tx: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub dropped: [u64; DropReason::COUNT],
    /// ARP requests from the port answered by the responder (each reply is also counted
    /// in `tx`/`tx_bytes`: a frame sent to the port).
    pub arp_replies: u64,
}

impl PortCounters {
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    /// Add `o`'s counts to these (summing workers' counters of one port). Every field is
    /// named here, destructured, so a new counter cannot be left out of the sum.
    pub fn add(&mut self, o: &PortCounters) {
        let PortCounters {
            rx,
            tx,
            rx_bytes,
            tx_bytes,
            dropped,
            arp_replies,
        } = o;
        self.rx += rx;
        self.tx += tx;
        self.rx_bytes += rx_bytes;
        self.tx_bytes += tx_bytes;
        for (a, b) in self.dropped.iter_mut().zip(dropped) {
            *a += b;
        }
        self.arp_replies += arp_replies;
    }
}
