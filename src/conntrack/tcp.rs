//! The TCP state machine: Linux `nf_conntrack_proto_tcp.c` (`tcp_conntracks`,
//! `tcp_valid_flags`) without window tracking, tightened where the lead's spec asks.
//!
//! States follow Linux, which approximates both endpoints with ONE state:
//! `SynSent` (SYN seen), `SynSent2` (simultaneous open: SYN seen both ways), `SynRecv`
//! (SYN/ACK seen), `Established`, `FinWait` (a FIN seen), `CloseWait` (FIN acknowledged),
//! `LastAck` (FIN both ways), `TimeWait`, `Close` (after RST).
//!
//! Differences from Linux (no sequence numbers here, so Linux's "ignore and let the window
//! check decide" cases become a decision):
//! * a SYN in the original direction on an established or closing connection is invalid
//!   (Linux: ignored); a retransmitted SYN in `SynSent`/`SynRecv` is valid, no change;
//! * a SYN/ACK in the original direction is valid only after a simultaneous open
//!   (`SynSent2 -> SynRecv`); in the reply direction a retransmitted SYN/ACK in
//!   `SynRecv`/`Established` is valid, no change; anywhere else invalid;
//! * a reply ACK in `SynSent`/`SynSent2` (no SYN/ACK yet) is invalid (Linux: ignored);
//! * a SYN (either direction where Linux reopens) in `TimeWait`, or an original SYN in
//!   `Close`, REOPENS: the old entry is removed and the packet is treated as the first
//!   packet of a new connection (judged by the rules again, admitted in its own
//!   direction);
//! * RST is accepted in every state (Linux checks its sequence number).
//!
//! Which states are *assured* (a connection that completed its handshake and is not over:
//! `Established`, `FinWait`, `CloseWait`, `LastAck`, [`assured_state`]) is decided here
//! too: the others may be evicted under pressure (`conntrack::fair`), and the transition
//! table marks the steps from an assured state to an unassured one ([`CODE_UNASSURE`]),
//! so that the hit path notices them without a test of its own.
//!
//! Owns: [`CtState`], the classes of TCP flag combinations, the transition table
//! (`initial`, `step`) and which states are assured. May not touch: entries, timeouts (one per state, set up by
//! `Conntrack::new` from `ConntrackSettings`), keys or the table: it is a pure function of
//! (state, direction, flags). Uses `flow::tcp_flags` only.

/// Connection-tracking state of an entry (also used in dumps).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[repr(u8)]
pub enum CtState {
    /// Slot not in use (never reported by the public API).
    Free = 0,
    TcpSynSent,
    TcpSynSent2,
    TcpSynRecv,
    TcpEstablished,
    TcpFinWait,
    TcpCloseWait,
    TcpLastAck,
    TcpTimeWait,
    TcpClose,
    /// UDP; [`super::CtEntry::seen_reply`] says unreplied or stream.
    Udp,
    /// ICMP/ICMPv6 query (echo, timestamp, ...).
    Icmp,
    /// Any other protocol.
    Other,
}

impl CtState {
    /// Stable lower-case name (conntrack(8) style).
    pub const fn as_str(self) -> &'static str {
        match self {
            CtState::Free => "free",
            CtState::TcpSynSent => "SYN_SENT",
            CtState::TcpSynSent2 => "SYN_SENT2",
            CtState::TcpSynRecv => "SYN_RECV",
            CtState::TcpEstablished => "ESTABLISHED",
            CtState::TcpFinWait => "FIN_WAIT",
            CtState::TcpCloseWait => "CLOSE_WAIT",
            CtState::TcpLastAck => "LAST_ACK",
            CtState::TcpTimeWait => "TIME_WAIT",
            CtState::TcpClose => "CLOSE",
            CtState::Udp => "udp",
            CtState::Icmp => "icmp",
            CtState::Other => "other",
        }
    }

    pub(crate) const fn from_u8(v: u8) -> CtState {
        match v {
            1 => CtState::TcpSynSent,
            2 => CtState::TcpSynSent2,
            3 => CtState::TcpSynRecv,
            4 => CtState::TcpEstablished,
            5 => CtState::TcpFinWait,
            6 => CtState::TcpCloseWait,
            7 => CtState::TcpLastAck,
            8 => CtState::TcpTimeWait,
            9 => CtState::TcpClose,
            10 => CtState::Udp,
            11 => CtState::Icmp,
            12 => CtState::Other,
            _ => CtState::Free,
        }
    }

    /// Whether this is a TCP state.
    pub const fn is_tcp(self) -> bool {
        (self as u8) >= 1 && (self as u8) <= 9
    }
}

impl std::fmt::Display for CtState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The flag class of a segment (Linux `get_conntrack_index`), or `Bad` for a combination
/// `tcp_valid_flags` rejects (no flags, FIN without ACK, SYN+FIN, SYN+RST, ...).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum TcpIdx {
    Syn = 0,
    SynAck = 1,
    Fin = 2,
    Ack = 3,
    Rst = 4,
    Bad = 5,
}

/// Classify a TCP flags byte. PSH, ECE and CWR are ignored; URG is allowed with SYN, ACK
/// and FIN|ACK only (Linux `tcp_valid_flags`). One load from a table built at compile
/// time from [`classify_rule`].
#[inline(always)]
pub(crate) fn classify_flags(flags: u8) -> TcpIdx {
    FLAG_CLASSES[(flags & 0x3f) as usize]
}

/// [`classify_rule`] for every combination of FIN, SYN, RST, PSH, ACK, URG (the low six
/// bits; ECE and CWR do not matter).
static FLAG_CLASSES: [TcpIdx; 64] = {
    let mut t = [TcpIdx::Bad; 64];
    let mut f = 0;
    while f < 64 {
        t[f] = classify_rule(f as u8);
        f += 1;
    }
    t
};

/// The flag classification rule (the specification [`classify_flags`] tabulates).
const fn classify_rule(flags: u8) -> TcpIdx {
    use crate::flow::tcp_flags::{ACK, FIN, RST, SYN, URG};
    let f = flags & (FIN | SYN | RST | ACK | URG);
    if f == SYN || f == SYN | URG {
        TcpIdx::Syn
    } else if f == SYN | ACK {
        TcpIdx::SynAck
    } else if f == RST || f == RST | ACK {
        TcpIdx::Rst
    } else if f == FIN | ACK || f == FIN | ACK | URG {
        TcpIdx::Fin
    } else if f == ACK || f == ACK | URG {
        TcpIdx::Ack
    } else {
        TcpIdx::Bad
    }
}

/// Result of one transition.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Step {
    /// Valid; the connection moves to this state (may be the same) and its timeout is
    /// refreshed.
    To(CtState),
    /// Valid (a retransmission); state and timeout unchanged.
    Keep,
    /// Invalid in this state; nothing changes.
    Invalid,
    /// The old connection is over; drop the entry and treat the packet as new.
    Reopen,
}

/// The first state of a connection started by a segment of class `idx`, if it can start
/// one (SYN, or a bare ACK picked up loosely).
#[inline]
pub(crate) fn initial(idx: TcpIdx) -> Option<CtState> {
    match idx {
        TcpIdx::Syn => Some(CtState::TcpSynSent),
        TcpIdx::Ack => Some(CtState::TcpEstablished),
        _ => None,
    }
}

/// The transition for a segment of class `idx` in direction `reply` on state `s`.
#[cfg(test)]
pub(crate) fn step(s: CtState, reply: bool, idx: TcpIdx) -> Step {
    match step_code(s as u8, reply, idx) {
        CODE_KEEP => Step::Keep,
        CODE_INVALID => Step::Invalid,
        CODE_REOPEN => Step::Reopen,
        next => Step::To(CtState::from_u8(next & 15)),
    }
}

/// [`Step`] as one byte: `0..=12` is `To(CtState as u8)`, then these three, then
/// `CODE_UNASSURE | state`.
pub(crate) const CODE_KEEP: u8 = 13;
pub(crate) const CODE_INVALID: u8 = 14;
pub(crate) const CODE_REOPEN: u8 = 15;
/// Added to a `To(state)` code when the step leaves an assured state for an unassured one
/// (`TimeWait`, `Close`): the connection becomes evictable again. Never on the steps of an
/// established connection's data, so the hit path's first compare (`< CODE_KEEP`) still
/// takes them.
pub(crate) const CODE_UNASSURE: u8 = 16;

/// Whether a connection in state `s` (that has seen a reply) is assured: its handshake
/// completed and it is not over. Assured connections are never evicted for new ones;
/// `SynSent`, `SynSent2`, `SynRecv` (half-open), `TimeWait` and `Close` (over) are not
/// assured, nor is any connection that never saw a reply (Linux: `IPS_ASSURED`, and the
/// closing states its early drop takes under pressure).
#[inline]
pub(crate) const fn assured_state(s: CtState) -> bool {
    matches!(
        s,
        CtState::TcpEstablished | CtState::TcpFinWait | CtState::TcpCloseWait | CtState::TcpLastAck
    )
}

/// The transition of a segment of class `idx` in direction `reply` on the entry state
/// `state` (`CtState as u8`), encoded (see [`CODE_KEEP`]): one load from a table built at
/// compile time from [`step_rule`], no branch.
#[inline(always)]
pub(crate) fn step_code(state: u8, reply: bool, idx: TcpIdx) -> u8 {
    STEPS[idx as usize][reply as usize][(state & 15) as usize]
}

/// Number of [`TcpIdx`] classes and of state slots (13 [`CtState`] values, padded to
/// 16 so that any byte masked to 4 bits is in bounds).
const IDXS: usize = 6;
const STATES: usize = 16;

/// Every packet class, in table order.
const IDX: [TcpIdx; IDXS] = [
    TcpIdx::Syn,
    TcpIdx::SynAck,
    TcpIdx::Fin,
    TcpIdx::Ack,
    TcpIdx::Rst,
    TcpIdx::Bad,
];

/// [`step_rule`] for every (class, direction, state), encoded.
static STEPS: [[[u8; STATES]; 2]; IDXS] = {
    let mut t = [[[CODE_INVALID; STATES]; 2]; IDXS];
    let mut i = 0;
    while i < IDXS {
        let mut r = 0;
        while r < 2 {
            // Slots 13..16 are no state: invalid (never looked up for a live entry).
            let mut st = 0;
            while st <= CtState::Other as usize {
                let from = CtState::from_u8(st as u8);
                t[i][r][st] = match step_rule(from, r == 1, IDX[i]) {
                    Step::To(next) if assured_state(from) && !assured_state(next) => {
                        CODE_UNASSURE | next as u8
                    }
                    Step::To(next) => next as u8,
                    Step::Keep => CODE_KEEP,
                    Step::Invalid => CODE_INVALID,
                    Step::Reopen => CODE_REOPEN,
                };
                st += 1;
            }
            r += 1;
        }
        i += 1;
    }
    t
};

/// The transition rule (the specification [`step`] tabulates).
const fn step_rule(s: CtState, reply: bool, idx: TcpIdx) -> Step {
    use CtState::*;
    use Step::{Invalid, Keep, Reopen, To};
    match (idx, reply) {
        (TcpIdx::Bad, _) => Invalid,
        (TcpIdx::Rst, _) => To(TcpClose),
        (TcpIdx::Syn, false) => match s {
            TcpSynSent | TcpSynSent2 | TcpSynRecv => Keep,
            TcpTimeWait | TcpClose => Reopen,
            _ => Invalid,
        },
        (TcpIdx::Syn, true) => match s {
            TcpSynSent | TcpSynSent2 => To(TcpSynSent2),
            TcpTimeWait => Reopen,
            _ => Invalid,
        },
        (TcpIdx::SynAck, false) => match s {
            TcpSynSent2 => To(TcpSynRecv),
            _ => Invalid,
        },
        (TcpIdx::SynAck, true) => match s {
            TcpSynSent | TcpSynSent2 => To(TcpSynRecv),
            TcpSynRecv | TcpEstablished => Keep,
            _ => Invalid,
        },
        (TcpIdx::Fin, _) => match s {
            TcpSynRecv | TcpEstablished => To(TcpFinWait),
            TcpFinWait | TcpCloseWait | TcpLastAck => To(TcpLastAck),
            TcpTimeWait => To(TcpTimeWait),
            TcpClose => To(TcpClose),
            _ => Invalid,
        },
        (TcpIdx::Ack, false) => match s {
            TcpSynRecv | TcpEstablished => To(TcpEstablished),
            TcpFinWait | TcpCloseWait => To(TcpCloseWait),
            TcpLastAck | TcpTimeWait => To(TcpTimeWait),
            TcpClose => To(TcpClose),
            _ => Invalid,
        },
        (TcpIdx::Ack, true) => match s {
            TcpSynRecv => To(TcpSynRecv),
            TcpEstablished => To(TcpEstablished),
            TcpFinWait | TcpCloseWait => To(TcpCloseWait),
            TcpLastAck | TcpTimeWait => To(TcpTimeWait),
            TcpClose => To(TcpClose),
            _ => Invalid,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_equals_rule() {
        for i in IDX {
            for reply in [false, true] {
                for st in 0..=CtState::Other as u8 {
                    let s = CtState::from_u8(st);
                    assert_eq!(
                        step(s, reply, i),
                        step_rule(s, reply, i),
                        "{i:?} {reply} {s:?}"
                    );
                }
            }
        }
        assert_eq!(
            step(CtState::TcpEstablished, true, TcpIdx::Ack),
            Step::To(CtState::TcpEstablished)
        );
        assert_eq!(
            step(CtState::TcpSynSent, false, TcpIdx::SynAck),
            Step::Invalid
        );
    }

    #[test]
    fn unassuring_steps_are_marked_and_data_steps_are_not() {
        for i in IDX {
            for reply in [false, true] {
                for st in 1..=CtState::TcpClose as u8 {
                    let s = CtState::from_u8(st);
                    let code = step_code(st, reply, i);
                    let marked = code >= CODE_UNASSURE;
                    let want = matches!(step_rule(s, reply, i), Step::To(n)
                        if assured_state(s) && !assured_state(n));
                    assert_eq!(marked, want, "{i:?} {reply} {s:?}");
                }
            }
        }
        // An established connection's data and ACKs, both ways: a plain state code.
        for reply in [false, true] {
            let c = step_code(CtState::TcpEstablished as u8, reply, TcpIdx::Ack);
            assert_eq!(c, CtState::TcpEstablished as u8);
        }
        assert_eq!(
            step_code(CtState::TcpEstablished as u8, false, TcpIdx::Rst),
            CODE_UNASSURE | CtState::TcpClose as u8
        );
        assert_eq!(
            step_code(CtState::TcpLastAck as u8, true, TcpIdx::Ack),
            CODE_UNASSURE | CtState::TcpTimeWait as u8
        );
    }

    #[test]
    fn flag_table_equals_rule() {
        for f in 0..=255u8 {
            assert_eq!(classify_flags(f), classify_rule(f), "flags {f:#04x}");
        }
        assert_eq!(classify_flags(0x10 | 0x08 | 0x80), TcpIdx::Ack);
        assert_eq!(classify_flags(0x03), TcpIdx::Bad);
    }
}
