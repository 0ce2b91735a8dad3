//! What a pipeline tells about its work besides verdicts: hit counts of security-group
//! rules, packet-log records, and (for `sgswitch trace`) the steps of one frame.
//!
//! Owns: the per-worker rule-hit counters (plain integers by [`IdMap`] rule slot, summed
//! across workers on read), the packet-log record buffer with its rate limiter, and the
//! [`Trace`] types. May not touch: I/O (records leave through
//! [`Pipeline::take_log_records`], drained by the runtime into its own queue), locks or
//! atomics, or allocation per frame (the record buffer and the counters are sized when
//! the pipeline is built or the first time a slot is counted).
//!
//! # Packet log
//! A record is written for each connection admitted by a rule of a logged group
//! (`ACCEPT`, once per connection: at commit) and for each dropped packet at a port whose
//! drops are logged (`DROP`, per packet), as Neutron's logging extension does
//! ([`PortLog`]). Records are rate limited here, per pipeline, by a token bucket of
//! Neutron's `rate_limit` per second and `burst_limit` ([`LogLimits`]); records over the
//! limit are only counted (`suppressed`), and so are records that find the buffer full
//! (`overflow`, [`LOG_BUFFER`] records between two drains). The runtime applies the
//! limit once more across workers.
//!
//! [`IdMap`]: super::IdMap
//! [`PortLog`]: super::PortLog

use super::*;

/// Records a pipeline holds between two [`Pipeline::take_log_records`] (the runtime drains
/// after every burst).
pub const LOG_BUFFER: usize = 256;

/// What a packet-log record says of the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogVerdict {
    /// A new connection admitted by `rule`.
    Accept,
    /// The packet was dropped for this reason.
    Drop(DropReason),
}

/// One packet-log record (plain data; formatted off the dataplane).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// The pipeline's clock (ns).
    pub time_ns: u64,
    /// Policy epoch of the verdict.
    pub epoch: u64,
    /// Dataplane index of the port the verdict belongs to.
    pub port: u16,
    /// From the instance's side: `Egress` at the sending port (port security, its egress
    /// groups, L2), `Ingress` at a receiving port.
    pub dir: Direction,
    pub verdict: LogVerdict,
    /// The rule that admitted the connection (`Accept`).
    pub rule: Option<RuleRef>,
    /// The packet's flow key.
    pub key: FlowKey,
}

/// Neutron's packet-log rate limits (`[network_log] rate_limit`, `burst_limit`): records
/// per second, and the burst allowed above it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogLimits {
    pub rate_limit: u32,
    pub burst_limit: u32,
}

impl Default for LogLimits {
    /// Neutron's defaults: 100 per second, bursts of 25.
    fn default() -> Self {
        LogLimits {
            rate_limit: 100,
            burst_limit: 25,
        }
    }
}

/// A token bucket of `rate` tokens per second holding at most `burst` (at least 1),
/// full at the start; written as the generic cell rate algorithm (a theoretical arrival
/// time instead of a token count), so that a refusal is one comparison.
#[derive(Clone, Copy, Debug)]
pub struct TokenBucket {
    /// Nanoseconds per token.
    ns_per_token: u64,
    /// How far ahead of the clock the theoretical arrival time may run: `burst - 1`
    /// tokens.
    slack_ns: u64,
    /// Theoretical arrival time of the next token taken at the steady rate.
    tat_ns: u64,
}

impl TokenBucket {
    pub fn new(limits: LogLimits) -> TokenBucket {
        let ns_per_token = 1_000_000_000 / u64::from(limits.rate_limit.max(1));
        TokenBucket {
            ns_per_token,
            slack_ns: ns_per_token * u64::from(limits.burst_limit.max(1) - 1),
            tat_ns: 0,
        }
    }

    /// Take one token at time `now_ns` if there is one.
    #[inline]
    pub fn take(&mut self, now_ns: u64) -> bool {
        let tat = self.tat_ns.max(now_ns);
        if tat - now_ns > self.slack_ns {
            return false;
        }
        self.tat_ns = tat + self.ns_per_token;
        true
    }
}

/// Counters of the packet log of one pipeline (monotonic).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogCounters {
    /// Records handed to the runtime.
    pub written: u64,
    /// Records over the rate limit (counted, not written).
    pub suppressed: u64,
    /// Records that found the buffer full.
    pub overflow: u64,
}

/// The observation state of one pipeline.
#[derive(Debug)]
pub(super) struct Observe {
    /// Count the rule that admits each new connection.
    pub(super) rule_hits_on: bool,
    /// Hits by rule slot.
    pub(super) rule_hits: Vec<u64>,
    pub(super) log: Vec<LogRecord>,
    pub(super) log_bucket: TokenBucket,
    pub(super) log_counters: LogCounters,
    /// The steps of the frame being traced (`sgswitch trace`), when tracing.
    pub(super) trace: Option<Box<Trace>>,
}

impl Observe {
    pub(super) fn new(cfg: &PipelineConfig) -> Observe {
        Observe {
            rule_hits_on: cfg.rule_hits,
            rule_hits: Vec::new(),
            log: Vec::with_capacity(LOG_BUFFER),
            log_bucket: TokenBucket::new(cfg.log_limits),
            log_counters: LogCounters::default(),
            trace: None,
        }
    }

    /// Count a hit of the rule in `slot`.
    #[inline]
    pub(super) fn hit(&mut self, slot: u32) {
        match self.rule_hits.get_mut(slot as usize) {
            Some(h) => *h += 1,
            None => self.grow_and_hit(slot as usize),
        }
    }

    #[cold]
    #[inline(never)]
    fn grow_and_hit(&mut self, s: usize) {
        self.rule_hits
            .resize((s + 1).next_power_of_two().max(64), 0);
        self.rule_hits[s] += 1;
    }

    /// Whether a record at `now_ns` may be written (the rate limit and the buffer
    /// allow it; counted either way): check it before building the record.
    #[inline]
    pub(super) fn may_record(&mut self, now_ns: u64) -> bool {
        if !self.log_bucket.take(now_ns) {
            self.log_counters.suppressed += 1;
            false
        } else if self.log.len() >= LOG_BUFFER {
            self.log_counters.overflow += 1;
            false
        } else {
            self.log_counters.written += 1;
            true
        }
    }

    /// Write `r` (after [`Observe::may_record`] said yes).
    #[cold]
    #[inline(never)]
    pub(super) fn record(&mut self, r: LogRecord) {
        self.log.push(r);
    }
}

/// What connection tracking said at one security-group check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtStep {
    /// The port's groups are stateless: every packet is judged by the rules.
    Stateless,
    /// A packet of a tracked connection (`reply`: in the reply direction).
    Established { entry: CtEntry, reply: bool },
    /// An ICMP error about a tracked connection.
    Related { entry: CtEntry },
    /// Invalid in the connection's state, or cannot start one.
    Invalid,
    /// A connection last judged under an older policy, judged again: `cut` when the
    /// current rules no longer allow its first packet.
    Rejudged { entry: CtEntry, cut: bool },
    /// No entry: the packet starts a connection, judged by the rules.
    New,
}

/// One step of a traced frame, in order. Ports are dataplane indices; rules are model
/// positions (the control plane names them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// The frame did not parse.
    Malformed,
    /// The frame came from an unknown port.
    UnknownPort,
    /// Port security of the sending port (`Err`: the drop).
    PortSecurity {
        port: u16,
        result: Result<(), DropReason>,
    },
    /// The port has port security off: no anti-spoofing and no groups.
    NoPortSecurity { port: u16, dir: Direction },
    /// Traffic that security groups always allow in this direction (ARP, ND, DHCP
    /// client, ...), or non-IP traffic, which groups do not judge.
    AlwaysAllowed { port: u16, dir: Direction },
    /// A later fragment shares its first fragment's verdict (or waits for it).
    LaterFragment,
    /// The security groups of `port` in `dir`, through its conntrack zone.
    SecurityGroups {
        port: u16,
        dir: Direction,
        zone: u16,
        ct: CtStep,
        /// `Ok(Some(rule))`: a new connection (or a stateless packet) admitted by `rule`;
        /// `Ok(None)`: allowed by connection state; `Err`: dropped.
        result: Result<Option<RuleRef>, DropReason>,
        /// The entry committed for a new connection.
        committed: Option<CtEntry>,
    },
    /// The L2 decision in the sender's network.
    L2 { dest: L2Step },
    /// A destination refused the frame before its groups (destination MAC not its own).
    Refused { port: u16, reason: DropReason },
    /// The ARP responder answered the request for a remote port's address: the reply
    /// goes back to the sender, the request to no tunnel port.
    ArpReply { reply: ArpReply },
}

/// The L2 step of a trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum L2Step {
    /// A known MAC (static or learned): one port.
    Port(u16),
    /// Broadcast, multicast or unknown unicast: these ports of the network.
    Flood(Vec<u16>),
    /// The destination is the sender itself.
    Hairpin,
    /// No other port in the network.
    NoDestination,
}

/// The steps of one traced frame (see [`Pipeline::trace`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    pub steps: Vec<Step>,
}
