//! Why a frame was delivered or dropped, in words: `sgswitch trace`, the replay's
//! columns and capture comments, and (through the same functions) the live API.
//!
//! The decision is never re-made here. [`trace_frame`] runs the frame through a scratch
//! [`Pipeline`] of the very [`Dataplane`] given (`Pipeline::trace`, the code the
//! switch runs, recording its steps) and turns the recorded steps into an
//! [`Explanation`]: every stage the frame passed (parse, port security, the sender's egress
//! groups, the L2 decision, each destination's ingress groups), what connection tracking
//! said and what it created, the exact rule that admitted the frame (group name and id,
//! rule index and id, the rule in Neutron's words), or the reason and the place of each
//! drop. An `Explanation` serialises to JSON (`--json`) and prints as text
//! ([`Explanation::text`]).
//!
//! Offline (a config file) the scratch pipeline starts with an empty conntrack table:
//! the first packet of a flow is a new connection. Against a running switch the caller
//! passes the live connection-tracking entries of the flow as `seed`, so the trace gives
//! the answer the switch would give, and the switch's own state is left alone.
//!
//! Rules are named by model position ([`crate::policy::RuleRef`]); the Neutron ids come
//! from the store's [`Meta`] when the caller has one (a running switch), and are absent
//! offline.
//!
//! Files: [`packet`] the packet-description grammar and frame builder; [`words`] rules,
//! packets and drops in words; this file the explanation of one traced frame.
//!
//! Owns: the explanation types and their text. May not touch: the pipeline's decisions
//! (it reads a [`Trace`] and a [`Verdict`]), live state (a scratch pipeline only), the
//! store (ids are read from a `Meta` given by the caller). Layering: `control` may use
//! every module to its left; this one uses `pipeline`, `conntrack`, `policy`, `flow` and
//! the store's `Meta` type.

use serde::Serialize;

use crate::conntrack::CtEntry;
use crate::flow::{self, DropReason, KeySummary, PacketMeta};
use crate::pipeline::{
    CtStep, Dataplane, Disposition, L2Step, Pipeline, PipelineConfig, Step, Trace, Verdict,
};
use crate::policy::{Direction, Model};

use super::store::state::Meta;

pub mod packet;
mod text;
pub mod words;

pub use words::{key_words, rule_words, why, RuleNote};

/// Entries of the scratch conntrack table of a trace (a trace commits at most two).
const SCRATCH_CT: usize = 1024;

/// The explanation of one frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The port the frame came from.
    pub in_port: String,
    /// The frame in one line ([`flow::summary`]).
    pub frame: String,
    pub bytes: usize,
    /// What happened, in order.
    pub stages: Vec<Stage>,
    pub delivered: Vec<String>,
    pub dropped: Vec<DropNote>,
    /// A later fragment whose first fragment was not seen: held, then dropped when it
    /// expires (or given the first fragment's verdict).
    pub held: bool,
    /// The ARP reply the responder sent back to the in-port, in one line
    /// ([`flow::summary`]), when it answered the frame (#19, `pipeline::ArpTable`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arp_reply: Option<String>,
}

/// One stage of a frame's way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stage {
    /// `parse`, `port-security`, `egress`, `l2`, `arp-responder`, `destination`,
    /// `ingress`, `fragment`.
    pub stage: &'static str,
    /// The port whose check this is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    /// `pass`, `drop`, `forward`, `flood`, `held`, `reply`.
    pub result: &'static str,
    /// The drop reason when `result` is `drop`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conntrack: Option<CtNote>,
    /// The rule that admitted the frame (a new connection, or a stateless group).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<RuleNote>,
    /// The stage in one sentence.
    pub detail: String,
}

/// What connection tracking said at a security-group check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CtNote {
    /// `new`, `established`, `reply`, `related`, `invalid`, `stateless`, `rejudged`,
    /// `cut`.
    pub state: &'static str,
    /// The zone (of the port whose check this is).
    pub zone: u16,
    /// The entry the packet belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<CtEntryNote>,
    /// The entry this packet created (a new connection).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<CtEntryNote>,
}

/// A connection-tracking entry, for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CtEntryNote {
    /// The connection's first packet (`tcp 10.0.0.10:40000 > 10.0.0.11:22`).
    pub flow: String,
    /// `SYN_SENT`, `ESTABLISHED`, `udp`, `icmp`, ... (conntrack(8) names).
    pub state: &'static str,
    pub seen_reply: bool,
    /// Policy epoch the connection was last judged under.
    pub epoch: u64,
}

impl CtEntryNote {
    fn of(e: &CtEntry) -> CtEntryNote {
        CtEntryNote {
            flow: KeySummary(&e.orig).to_string(),
            state: e.state.as_str(),
            seen_reply: e.seen_reply,
            epoch: e.epoch,
        }
    }
}

/// One drop of the frame: where, the reason, and why in words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DropNote {
    pub port: String,
    pub reason: &'static str,
    pub why: String,
}

/// The word for what conntrack said ([`CtNote::state`]).
pub fn ct_word(ct: &CtStep) -> &'static str {
    match ct {
        CtStep::Stateless => "stateless",
        CtStep::Established { reply: false, .. } => "established",
        CtStep::Established { reply: true, .. } => "reply",
        CtStep::Related { .. } => "related",
        CtStep::Invalid => "invalid",
        CtStep::Rejudged { cut: false, .. } => "rejudged",
        CtStep::Rejudged { cut: true, .. } => "cut",
        CtStep::New => "new",
    }
}

/// Trace `frame` received on port `in_port` (a dataplane index) through a scratch
/// pipeline of `dp` (compiled from `model`), after seeding its conntrack table with
/// `seed` (a running switch's entries of the flow; nothing offline), and explain it.
/// `meta_ids`: the store's metadata, for Neutron ids.
pub fn trace_frame(
    dp: &Dataplane,
    model: &Model,
    meta_ids: Option<&Meta>,
    in_port: u16,
    frame: &[u8],
    seed: impl IntoIterator<Item = CtEntry>,
) -> Explanation {
    trace_frame_at(dp, model, meta_ids, in_port, frame, seed, None)
}

/// [`trace_frame`] at a given clock (a running switch's, for its live entries); `None`:
/// just before the earliest seeded entry expires (the live clock's "now" is at most
/// that), else one second.
pub fn trace_frame_at(
    dp: &Dataplane,
    model: &Model,
    meta_ids: Option<&Meta>,
    in_port: u16,
    frame: &[u8],
    seed: impl IntoIterator<Item = CtEntry>,
    now_ns: Option<u64>,
) -> Explanation {
    let mut cfg = PipelineConfig::from_model(model);
    cfg.conntrack.capacity = SCRATCH_CT;
    cfg.rule_hits = false;
    let mut p = Pipeline::new(&cfg);
    let mut now = u64::MAX;
    for e in seed {
        now = now.min(e.expires_ns.saturating_sub(1));
        p.seed_conntrack(&e);
    }
    if let Some(n) = now_ns {
        now = n;
    } else if now == u64::MAX {
        now = 1_000_000_000;
    }
    let mut v = Verdict::default();
    let (d, trace) = p.trace(dp, in_port, frame, now, &mut v);
    explain(dp, model, meta_ids, in_port, frame, &trace, &v, d)
}

/// The connection-tracking entries that `frames` (each with its ingress port index, in
/// order) leave in a fresh pipeline of `dp`: a seed for [`trace_frame`] that makes a
/// traced frame part of the connections those frames opened (offline, what a running
/// switch's live entries do).
pub fn entries_after(dp: &Dataplane, model: &Model, frames: &[(u16, Vec<u8>)]) -> Vec<CtEntry> {
    let mut cfg = PipelineConfig::from_model(model);
    cfg.conntrack.capacity = SCRATCH_CT;
    let mut p = Pipeline::new(&cfg);
    let mut v = Verdict::default();
    for (i, (port, f)) in frames.iter().enumerate() {
        // A millisecond apart, well within every timeout.
        p.process(dp, *port, f, 1_000_000 * (i as u64 + 1), 0, &mut v);
    }
    p.conntrack().iter().collect()
}

/// Turn a traced frame into an [`Explanation`] (see [`trace_frame`]).
#[allow(clippy::too_many_arguments)]
pub fn explain(
    dp: &Dataplane,
    model: &Model,
    meta_ids: Option<&Meta>,
    in_port: u16,
    frame: &[u8],
    trace: &Trace,
    v: &Verdict,
    d: Disposition,
) -> Explanation {
    let parsed = flow::extract(frame);
    let meta = parsed.as_ref().ok();
    let perr = parsed.as_ref().err().map(|e| e.to_string());
    let name = |i: u16| {
        dp.ports
            .get(i as usize)
            .map_or_else(|| format!("#{i}"), |p| p.name.clone())
    };
    let ctx = Ctx {
        dp,
        model,
        meta_ids,
        meta,
        perr: perr.as_deref(),
    };
    let mut stages = vec![parse_stage(frame, meta, perr.as_deref())];
    for s in &trace.steps {
        if let Some(st) = ctx.stage(s, in_port) {
            stages.push(st);
        }
    }
    let dropped = v
        .dropped
        .iter()
        .map(|&(p, r)| DropNote {
            port: name(p),
            reason: r.as_str(),
            why: ctx.why(p, r),
        })
        .collect();
    Explanation {
        in_port: name(in_port),
        frame: flow::summary(frame),
        bytes: frame.len(),
        stages,
        delivered: v.delivered.iter().map(|&p| name(p)).collect(),
        dropped,
        held: d == Disposition::Held,
        arp_reply: v.reply.map(|r| flow::summary(&r.to_vec())),
    }
}

fn parse_stage(frame: &[u8], meta: Option<&PacketMeta>, perr: Option<&str>) -> Stage {
    let (result, reason, detail) = match meta {
        Some(m) => {
            let l3 = match m.l3 {
                flow::L3Kind::Arp => "ARP".to_string(),
                flow::L3Kind::Ipv4 => "IPv4".to_string(),
                flow::L3Kind::Ipv6 => "IPv6".to_string(),
                flow::L3Kind::Other => format!("ethertype {:#06x}", m.ethertype),
            };
            let vlan = match m.vlan_count {
                0 => String::new(),
                1 => format!(", VLAN {}", m.vlan_ids[0]),
                _ => format!(", VLANs {} {}", m.vlan_ids[0], m.vlan_ids[1]),
            };
            let d = format!(
                "{} > {}{vlan}, {l3}, {} bytes",
                m.eth_src,
                m.eth_dst,
                frame.len()
            );
            ("pass", None, d)
        }
        None => (
            "drop",
            Some(DropReason::Malformed.as_str()),
            format!("the frame does not parse: {}", perr.unwrap_or("?")),
        ),
    };
    Stage {
        stage: "parse",
        port: None,
        result,
        reason,
        conntrack: None,
        rule: None,
        detail,
    }
}

/// What [`explain`] reads while it turns steps into stages.
struct Ctx<'a> {
    dp: &'a Dataplane,
    model: &'a Model,
    meta_ids: Option<&'a Meta>,
    meta: Option<&'a PacketMeta>,
    perr: Option<&'a str>,
}

impl Ctx<'_> {
    fn name(&self, i: u16) -> String {
        self.dp
            .ports
            .get(i as usize)
            .map_or_else(|| format!("#{i}"), |p| p.name.clone())
    }

    fn why(&self, port: u16, r: DropReason) -> String {
        why(self.model, self.dp, port, r, self.meta, self.perr)
    }

    fn stage(&self, s: &Step, in_port: u16) -> Option<Stage> {
        let mut st = Stage {
            stage: "",
            port: None,
            result: "pass",
            reason: None,
            conntrack: None,
            rule: None,
            detail: String::new(),
        };
        let drop = |st: &mut Stage, port: u16, r: DropReason| {
            st.result = "drop";
            st.reason = Some(r.as_str());
            st.detail = self.why(port, r);
        };
        match s {
            // The parse stage comes from the frame itself.
            Step::Malformed => return None,
            Step::UnknownPort => {
                st.stage = "port-security";
                drop(&mut st, in_port, DropReason::UnknownPort);
            }
            Step::PortSecurity { port, result } => {
                st.stage = "port-security";
                st.port = Some(self.name(*port));
                match result {
                    Ok(()) => st.detail = self.source_ok(*port),
                    Err(r) => drop(&mut st, *port, *r),
                }
            }
            Step::NoPortSecurity { port, dir } => {
                st.stage = dir_stage(*dir);
                st.port = Some(self.name(*port));
                st.detail = format!(
                    "port security is disabled on {}: no anti-spoofing and no security groups",
                    self.name(*port)
                );
            }
            Step::AlwaysAllowed { port, dir } => {
                st.stage = dir_stage(*dir);
                st.port = Some(self.name(*port));
                st.detail = self.always_allowed();
            }
            Step::LaterFragment => {
                st.stage = "fragment";
                st.result = "held";
                st.detail = "a later fragment: it gets its first fragment's verdict (held until that fragment comes, dropped if it never does)".into();
            }
            Step::SecurityGroups {
                port,
                dir,
                zone,
                ct,
                result,
                committed,
            } => {
                st.stage = dir_stage(*dir);
                st.port = Some(self.name(*port));
                let entry = match ct {
                    CtStep::Established { entry, .. }
                    | CtStep::Related { entry }
                    | CtStep::Rejudged { entry, .. } => Some(CtEntryNote::of(entry)),
                    _ => None,
                };
                st.conntrack = Some(CtNote {
                    state: ct_word(ct),
                    zone: *zone,
                    entry,
                    created: committed.as_ref().map(CtEntryNote::of),
                });
                match result {
                    Ok(rule) => {
                        st.rule = rule.map(|r| RuleNote::of(self.model, self.meta_ids, r));
                        st.detail = self.sg_pass(*port, *dir, ct, st.rule.as_ref(), committed);
                    }
                    Err(r) => drop(&mut st, *port, *r),
                }
            }
            Step::L2 { dest } => {
                st.stage = "l2";
                st.port = Some(self.name(in_port));
                let dst = self
                    .meta
                    .map_or_else(String::new, |m| m.eth_dst.to_string());
                match dest {
                    L2Step::Port(q) => {
                        st.result = "forward";
                        st.detail = format!("destination MAC {dst} is {}'s", self.name(*q));
                    }
                    L2Step::Flood(qs) => {
                        st.result = "flood";
                        let names: Vec<String> = qs.iter().map(|q| self.name(*q)).collect();
                        st.detail = format!(
                            "destination MAC {dst} is broadcast, multicast or unknown: flooded to {}",
                            names.join(", ")
                        );
                    }
                    L2Step::Hairpin => drop(&mut st, in_port, DropReason::Hairpin),
                    L2Step::NoDestination => drop(&mut st, in_port, DropReason::NoDestination),
                }
            }
            Step::Refused { port, reason } => {
                st.stage = "destination";
                st.port = Some(self.name(*port));
                drop(&mut st, *port, *reason);
            }
            Step::ArpReply { reply } => {
                st.stage = "arp-responder";
                st.port = Some(self.name(in_port));
                st.result = "reply";
                let host = self
                    .model
                    .ports
                    .get(reply.port as usize)
                    .and_then(|p| p.host.as_deref())
                    .unwrap_or("?");
                st.detail = format!(
                    "{} is {} (port {} on host {host}): answered to {} with an ARP reply, not sent to the tunnels",
                    std::net::Ipv4Addr::from(reply.ip),
                    reply.mac,
                    self.name(reply.port),
                    self.name(in_port)
                );
            }
        }
        Some(st)
    }

    /// Port security passed: what it checked.
    fn source_ok(&self, port: u16) -> String {
        let name = self.name(port);
        match self.meta {
            Some(m) if m.l3 == flow::L3Kind::Arp => format!(
                "ARP sender {} / {} is allowed on {name}",
                m.arp.sha,
                std::net::Ipv4Addr::from(m.arp.spa)
            ),
            Some(m) if m.is_ip() => format!(
                "source {} / {} is allowed on {name}",
                m.eth_src,
                m.key.src_ip()
            ),
            Some(m) => format!(
                "source MAC {} is {name}'s; ethertype {:#06x} is permitted",
                m.eth_src, m.ethertype
            ),
            None => String::new(),
        }
    }

    fn always_allowed(&self) -> String {
        match self.meta {
            Some(m) if !m.is_ip() => {
                "not IP: security groups do not judge it (port security did)".into()
            }
            _ => "always allowed: DHCP, router and neighbour discovery and MLD pass without security groups, as in Neutron".into(),
        }
    }

    /// The sentence of a security-group check that passed.
    fn sg_pass(
        &self,
        port: u16,
        dir: Direction,
        ct: &CtStep,
        rule: Option<&RuleNote>,
        committed: &Option<CtEntry>,
    ) -> String {
        let name = self.name(port);
        let by = |r: Option<&RuleNote>| match r {
            Some(r) => format!("allowed by {r}"),
            None => format!("allowed by the {} rules of {name}", dir.as_str()),
        };
        match ct {
            CtStep::New => {
                let mut s = format!("new connection, {}", by(rule));
                if let Some(e) = committed {
                    s.push_str(&format!(
                        "; conntrack creates {} {} in {name}'s zone",
                        e.state.as_str(),
                        KeySummary(&e.orig)
                    ));
                }
                s
            }
            CtStep::Stateless => format!("stateless groups judge every packet: {}", by(rule)),
            CtStep::Established { entry, reply } => format!(
                "{} of the tracked connection {} (now {}): allowed without the rules",
                if *reply { "a reply" } else { "a packet" },
                KeySummary(&entry.orig),
                entry.state.as_str()
            ),
            CtStep::Related { entry } => format!(
                "an ICMP error about the tracked connection {}: allowed as related",
                KeySummary(&entry.orig)
            ),
            CtStep::Rejudged { entry, .. } => format!(
                "the connection {} was admitted under an earlier policy: judged again by the current rules, still allowed",
                KeySummary(&entry.orig)
            ),
            CtStep::Invalid => "invalid for connection tracking".into(),
        }
    }
}

fn dir_stage(d: Direction) -> &'static str {
    match d {
        Direction::Egress => "egress",
        Direction::Ingress => "ingress",
    }
}

#[cfg(test)]
mod tests;
