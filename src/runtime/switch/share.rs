//! Each port's share of a saturated worker: frames charged to the port that opened their
//! connection, deficit round robin over those charges.
//!
//! # Why
//! The poll loop reads one burst per port per round, which is fair by the frames each port
//! *sends*. A port flooding an allowed UDP port of another instance that answers each
//! datagram also fills the answering port's queue with the answers: the victim's port
//! then carries as many frames as the flooder's, its burst per round no longer keeps up,
//! and an established TCP session to that victim waits for its acknowledgements behind
//! hundreds of answers to the flood (its rate fell to 15–23 %; README, Reliability,
//! "Floods"). With the kernel bridge the same work runs in the flooder's and the
//! answering application's own system calls.
//!
//! # How
//! While the worker is *saturated* (a burst came back full, or a port was deferred, in the
//! last [`HOLD`]), every delivered frame is charged to the port that *opened* its
//! connection: the sending port for a frame in its connection's original direction (and
//! for anything untracked), the receiving port for a reply. Each port holds a credit of
//! frames: every round adds a burst (capped at a burst: an idle port banks nothing), each
//! charged frame takes one; a port is read for at most its credit. The quantum is a quarter
//! of the burst: a flooder then takes a short slice of every round, and a port that sends
//! little (a session whose round trip is the round's length: TCP with 64 KB superframes
//! sends one or two per round) is served again soon; with a quantum of a whole burst, the
//! session's rate fell to a third under a UDP flood although every frame of it passed.
//! A port out of credit is not read (its frames wait in its own
//! kernel queue, and when that is full the *instance's* kernel drops them, at the
//! instance's cost), so a port's own frames are never dropped here: they take the credit
//! into debt. A frame arriving on *another* port (a reply) whose opener is more than a
//! burst in debt is dropped before it is transmitted (`fair-share`, counted at the port it
//! arrived on): that is what keeps the answers to a flood from clogging the victim's
//! port, while a session's acknowledgements, charged to a session that is at most a
//! little in debt, pass. A burst whose frames were
//! mostly dropped this way cost little, so its port is read again in the same round (up
//! to [`MAX_EXTRA_READS`] times): the victim's queue drains and the session's
//! acknowledgements in it pass at once.
//!
//! So each port that opens connections gets an equal share of the frames a saturated
//! worker moves, whichever port they arrive on: the flood's datagrams *and* their answers
//! count against the flooder. A reply's direction is one read-only conntrack lookup per
//! delivered frame, made only while the share is engaged.
//!
//! When the worker is not saturated nothing is charged, looked up or dropped: the share
//! costs one clock comparison per round when there is time for everyone.
//!
//! # Settings
//! `[switch] fair_share = true|false` (default true) turns it on or off, and `[switch]
//! new_flow_budget` sets the worker's other defence, the bound on new connections per
//! full burst ([`NewFlowBudget`]). Both are read when the switch starts (`[switch]` is
//! not reloaded). For measurements only (`benches/flood.sh --compare`), the environment
//! variables `SGSWITCH_FAIR_SHARE` (`off`/`on`) and `SGSWITCH_NEW_FLOW_BUDGET` (a number
//! or `off`) override the config when a worker starts ([`FloodSettings::with_env`]).
//! `SGSWITCH_FAIR_REPLY_DEBT=0` (measurements only, `benches/flood.sh` mode `strict`)
//! drops a reply as soon as its opener's credit is spent instead of after a quantum of
//! debt (README, Floods: "Closing the gap").
//!
//! # Owns, and may not touch
//! Owns the credits (per dataplane port index) and the saturation clock of one worker,
//! and the two flood settings' type ([`FloodSettings`]) with their environment overrides.
//! Knows nothing of ports, frames or policy: the worker asks and charges.

/// How long the worker stays saturated after the last full or deferred burst (ns).
pub(super) const HOLD: u64 = 2_000_000;

/// Extra bursts read from one port in one round when its bursts are mostly dropped.
pub(super) const MAX_EXTRA_READS: usize = 3;

/// `[switch] new_flow_budget`: how many new connections a port may start per full burst
/// (one that came back full: the port sends faster than its worker reads it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NewFlowBudget {
    /// A quarter of the burst (8 of 32), the default.
    #[default]
    Auto,
    /// No bound (the switch before #14's fix).
    Off,
    /// This many per full burst, 1..=the burst.
    PerBurst(u32),
}

impl NewFlowBudget {
    /// The bound for a worker reading bursts of `burst` frames (`None`: no bound).
    pub fn per_burst(self, burst: usize) -> Option<u32> {
        match self {
            NewFlowBudget::Auto => Some((burst / 4).max(1) as u32),
            NewFlowBudget::Off => None,
            NewFlowBudget::PerBurst(n) => Some(n.max(1)),
        }
    }

    /// The config value: `"auto"`, `"off"` or the number.
    pub fn to_config(self) -> String {
        match self {
            NewFlowBudget::Auto => "auto".into(),
            NewFlowBudget::Off => "off".into(),
            NewFlowBudget::PerBurst(n) => n.to_string(),
        }
    }
}

/// A worker's defences against floods: the `[switch]` keys `new_flow_budget` and
/// `fair_share` (see [`SwitchSettings`](super::SwitchSettings)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FloodSettings {
    /// New connections a port may start per full burst.
    pub new_flow_budget: NewFlowBudget,
    /// Each port's fair share of a saturated worker ([`Shares`]).
    pub fair_share: bool,
}

impl Default for FloodSettings {
    fn default() -> Self {
        FloodSettings {
            new_flow_budget: NewFlowBudget::Auto,
            fair_share: true,
        }
    }
}

impl FloodSettings {
    /// These settings with the measurement overrides of the environment applied
    /// (`SGSWITCH_NEW_FLOW_BUDGET`, `SGSWITCH_FAIR_SHARE`; a value that does not parse is
    /// ignored).
    pub fn with_env(self) -> FloodSettings {
        let var = |k: &str| std::env::var(k).ok();
        self.with_overrides(
            var("SGSWITCH_NEW_FLOW_BUDGET").as_deref(),
            var("SGSWITCH_FAIR_SHARE").as_deref(),
        )
    }

    fn with_overrides(mut self, budget: Option<&str>, share: Option<&str>) -> FloodSettings {
        match budget {
            Some("off") => self.new_flow_budget = NewFlowBudget::Off,
            Some("auto") => self.new_flow_budget = NewFlowBudget::Auto,
            Some(v) => {
                if let Ok(n) = v.parse::<u32>() {
                    self.new_flow_budget = NewFlowBudget::PerBurst(n.max(1));
                }
            }
            None => {}
        }
        match share {
            Some("off" | "0" | "false") => self.fair_share = false,
            Some("on" | "1" | "true") => self.fair_share = true,
            _ => {}
        }
        self
    }
}

/// The fair-share state of one worker.
#[derive(Debug)]
pub(super) struct Shares {
    enabled: bool,
    /// The worker is saturated until this time (ns on the switch's clock).
    until: u64,
    /// Credit of frames of each dataplane port (index), while engaged.
    credit: Vec<i32>,
    /// Credit added per round, and the most a port holds (the burst size).
    quantum: i32,
    /// A reply arriving on another port passes while its opener's debt is under this
    /// (frames): a quantum by default; 0 with `SGSWITCH_FAIR_REPLY_DEBT=0` (measurements
    /// only, `benches/flood.sh` mode `strict`: a flood's answers go as soon as the
    /// flooder's credit is spent).
    reply_debt: i32,
}

impl Shares {
    pub(super) fn new(enabled: bool, burst: usize) -> Shares {
        let quantum = (burst / 4).clamp(1, i32::MAX as usize) as i32;
        let reply_debt = std::env::var("SGSWITCH_FAIR_REPLY_DEBT")
            .ok()
            .and_then(|v| v.parse::<i32>().ok())
            .map_or(quantum, |d| d.clamp(0, quantum));
        Shares {
            enabled,
            until: 0,
            credit: Vec::new(),
            quantum,
            reply_debt,
        }
    }

    /// Start a round at `now`: whether the share is in force in it; if so, every port's
    /// credit grows by a burst (capped at a burst). `ports`: the dataplane's port count.
    #[inline]
    pub(super) fn round(&mut self, now: u64, ports: usize) -> bool {
        if !self.enabled || now >= self.until {
            return false;
        }
        if self.credit.len() != ports {
            self.credit.resize(ports, self.quantum);
        }
        let q = self.quantum;
        for c in &mut self.credit {
            *c = (*c + q).min(q);
        }
        true
    }

    /// Note that a burst came back full, or a port was deferred, at `now`.
    #[inline]
    pub(super) fn saturated(&mut self, now: u64) {
        self.until = now + HOLD;
    }

    /// How many frames port `p` may be read for (in an engaged round): its credit, 0 when
    /// it has none; unbounded for a port outside the policy.
    #[inline]
    pub(super) fn readable(&self, p: u16) -> usize {
        self.credit
            .get(p as usize)
            .map_or(usize::MAX, |c| (*c).max(0) as usize)
    }

    /// Charge one frame to port `p` (its connection's opener). `own`: the frame arrived on
    /// `p` itself, and is always charged (the port is not read again until its debt is
    /// paid); otherwise `false` when `p` is more than a burst in debt and the frame must be
    /// dropped.
    #[inline]
    pub(super) fn charge(&mut self, p: u16, own: bool) -> bool {
        let q = self.quantum;
        match self.credit.get_mut(p as usize) {
            Some(c) if own => {
                *c = (*c - 1).max(-4 * q);
                true
            }
            Some(c) if *c <= -self.reply_debt => false,
            Some(c) => {
                *c -= 1;
                true
            }
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flooder_gets_a_quarter_burst_per_round_and_a_light_session_all_it_needs() {
        let mut s = Shares::new(true, 32);
        s.saturated(0);
        // Port 0 floods port 1, which answers each datagram (the answers, arriving on port
        // 1, are charged to port 0); port 2 sends 2 frames per round and gets 2 replies.
        let (mut flood, mut answers, mut session) = (0, 0, 0);
        for _ in 0..100 {
            assert!(s.round(1, 3));
            let want = s.readable(0).min(32);
            for _ in 0..want {
                assert!(s.charge(0, true));
                flood += 1;
            }
            for _ in 0..want {
                if s.charge(0, false) {
                    answers += 1;
                }
            }
            for _ in 0..s.readable(2).min(2) {
                assert!(s.charge(2, true));
                session += 1;
            }
            for _ in 0..2 {
                if s.charge(2, false) {
                    session += 1;
                }
            }
        }
        // The flooder's datagrams and answers together: about a quarter burst per round;
        // the session's 4 frames per round all pass.
        assert!(
            (750..=850).contains(&(flood + answers)),
            "{flood} + {answers}"
        );
        assert_eq!(session, 400);
    }

    #[test]
    fn reads_are_bounded_by_credit_and_credit_is_capped() {
        let mut s = Shares::new(true, 16); // quantum 4
        s.saturated(0);
        assert!(s.round(0, 2));
        assert_eq!(s.readable(1), 4);
        for _ in 0..4 {
            assert!(s.charge(1, false));
        }
        assert_eq!(s.readable(1), 0);
        assert_eq!(s.readable(0), 4);
        // Replies pass until a quantum of debt, then are dropped; own frames always count.
        for _ in 0..4 {
            assert!(s.charge(1, false));
        }
        assert!(!s.charge(1, false));
        assert!(s.charge(1, true));
        // Idle rounds bank nothing beyond one quantum.
        for _ in 0..10 {
            assert!(s.round(0, 2));
        }
        assert_eq!(s.readable(0), 4);
        // Unknown ports are never limited.
        assert_eq!(s.readable(9), usize::MAX);
        assert!(s.charge(9, false));
    }

    #[test]
    fn the_environment_overrides_the_config_for_measurements() {
        let cfg = FloodSettings {
            new_flow_budget: NewFlowBudget::PerBurst(4),
            fair_share: true,
        };
        assert_eq!(cfg.with_overrides(None, None), cfg);
        let off = cfg.with_overrides(Some("off"), Some("off"));
        assert_eq!(
            (off.new_flow_budget, off.fair_share),
            (NewFlowBudget::Off, false)
        );
        let n = cfg.with_overrides(Some("0"), Some("garbage"));
        assert_eq!(n.new_flow_budget, NewFlowBudget::PerBurst(1));
        assert!(n.fair_share);
        assert_eq!(cfg.with_overrides(Some("x"), None), cfg, "ignored");
        assert_eq!(NewFlowBudget::Auto.per_burst(32), Some(8));
        assert_eq!(NewFlowBudget::Auto.per_burst(1), Some(1));
        assert_eq!(NewFlowBudget::Off.per_burst(32), None);
        assert_eq!(NewFlowBudget::PerBurst(3).per_burst(32), Some(3));
    }

    #[test]
    fn saturation_holds_then_ends_and_can_be_disabled() {
        let mut s = Shares::new(true, 32);
        assert!(!s.round(0, 1));
        s.saturated(1_000);
        assert!(s.round(1_000 + HOLD - 1, 1));
        assert!(!s.round(1_000 + HOLD, 1));
        let mut off = Shares::new(false, 32);
        off.saturated(0);
        assert!(!off.round(1, 1));
    }
}
