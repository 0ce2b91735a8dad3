//! What a replay says about each frame besides its verdict: the frame in one line, what
//! connection tracking said, the rules that admitted it, why each drop happened; the
//! printed line (text or JSON) and the comment of a dropped frame in a capture.
//!
//! Owns: the per-frame notes (from the pipeline's [`Trace`] of the frame) and their
//! layout. May not touch: the decision (the verdict and the trace are the pipeline's),
//! the words for rules and drops (a [`Narrator`] gives them; without one, rules are named
//! by group and index and drops by their reason's description).

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::flow::{self, DropReason};
use crate::pipeline::{CtStep, Dataplane, Step, Trace, Verdict, ARP_REPLY_LEN};
use crate::policy::{Direction, Model, RuleRef};

use super::Narrator;

/// The notes of one decided frame.
#[derive(Clone, Debug, Default)]
pub(super) struct FrameNotes {
    /// `flow::summary` of the frame.
    pub(super) summary: String,
    /// What conntrack said at each security-group check, in order, repeated words
    /// folded: `new`, `established`, `reply`, `related`, `invalid`, `stateless`, `cut`,
    /// `rejudged`; `-` when no check consulted it.
    pub(super) ct: String,
    /// The rules that admitted the frame (new connections and stateless groups), by port
    /// and direction, in order.
    pub(super) rules: Vec<(u16, Direction, RuleRef)>,
}

/// The word for what conntrack said at a check.
fn ct_word(ct: &CtStep) -> &'static str {
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

impl FrameNotes {
    /// Fill with the notes of `frame` from its trace (`None`: a fragment decided without
    /// one), reusing the buffers.
    pub(super) fn fill(&mut self, frame: &[u8], trace: Option<&Trace>) {
        self.summary.clear();
        flow::summary_into(frame, &mut self.summary);
        self.ct.clear();
        self.rules.clear();
        let mut last = "";
        for s in trace.map_or(&[][..], |t| &t.steps) {
            let w = match s {
                Step::SecurityGroups {
                    port,
                    dir,
                    ct,
                    result,
                    ..
                } => {
                    if let Ok(Some(r)) = result {
                        self.rules.push((*port, *dir, *r));
                    }
                    ct_word(ct)
                }
                Step::LaterFragment => "fragment",
                _ => continue,
            };
            if w != last {
                if !self.ct.is_empty() {
                    self.ct.push('/');
                }
                self.ct.push_str(w);
                last = w;
            }
        }
        if self.ct.is_empty() {
            self.ct.push('-');
        }
    }
}

/// Names and words for printing: port names of the current dataplane, the current model
/// (rules are named in it), the narrator, and each rule's label and words, made once per
/// model.
pub(super) struct Names<'a> {
    pub(super) ports: Vec<String>,
    pub(super) model: Model,
    pub(super) narrator: Option<&'a dyn Narrator>,
    /// `(label, words)` of rule `r` of group `g`: `rules[g][r]`.
    rules: Vec<Vec<(String, String)>>,
}

impl<'a> Names<'a> {
    pub(super) fn new(
        ports: Vec<String>,
        model: Model,
        narrator: Option<&'a dyn Narrator>,
    ) -> Self {
        let mut n = Names {
            ports,
            model,
            narrator,
            rules: Vec::new(),
        };
        n.set_model(n.model.clone());
        n
    }

    /// A new model (a policy change): name its rules.
    pub(super) fn set_model(&mut self, model: Model) {
        self.rules = model
            .security_groups
            .iter()
            .enumerate()
            .map(|(g, grp)| {
                (0..grp.rules.len())
                    .map(|r| {
                        let rr = RuleRef {
                            group: g as u32,
                            rule: r as u32,
                        };
                        let words = self
                            .narrator
                            .map_or_else(String::new, |n| n.rule(&model, rr));
                        (format!("{}#{r}", grp.name), words)
                    })
                    .collect()
            })
            .collect();
        self.model = model;
    }

    pub(super) fn port(&self, i: u16) -> &str {
        self.ports.get(i as usize).map_or("?", |s| s.as_str())
    }

    fn rule(&self, r: RuleRef) -> Option<&(String, String)> {
        self.rules.get(r.group as usize)?.get(r.rule as usize)
    }

    /// `web#1`: a rule's group name and index.
    pub(super) fn label(&self, r: RuleRef) -> String {
        self.rule(r)
            .map_or_else(|| format!("#{}#{}", r.group, r.rule), |x| x.0.clone())
    }

    /// The group name of a rule.
    pub(super) fn group(&self, r: RuleRef) -> &str {
        self.model
            .security_groups
            .get(r.group as usize)
            .map_or("?", |g| g.name.as_str())
    }

    /// A rule in words (empty without a narrator).
    pub(super) fn rule_text(&self, r: RuleRef) -> &str {
        self.rule(r).map_or("", |x| x.1.as_str())
    }

    /// Why `reason` happened at `port`.
    pub(super) fn why(&self, dp: &Dataplane, port: u16, r: DropReason, frame: &[u8]) -> String {
        match self.narrator {
            Some(n) => n.why(&self.model, dp, port, r, frame),
            None => r.describe().to_string(),
        }
    }
}

/// Append `v` as a JSON string (quotes and escapes).
fn json_str(out: &mut String, v: &str) {
    if v.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(v);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(v).unwrap_or_default());
    }
}

/// Append `s` to `line`, padded with spaces to `width` characters, and a gap.
fn cell(line: &mut String, s: &str, width: usize) {
    line.push_str(s);
    for _ in s.chars().count()..width {
        line.push(' ');
    }
    line.push_str("  ");
}

/// The text line of a frame: frame number, in-port, delivered, dropped, ct, rules,
/// summary, in columns. Built by hand into `line` (reused), then written once.
pub(super) fn text_line<W: Write>(
    out: &mut W,
    line: &mut String,
    names: &Names<'_>,
    n: u64,
    in_port: u16,
    v: &Verdict,
    notes: &FrameNotes,
) -> io::Result<()> {
    line.clear();
    let num = n.to_string();
    for _ in num.len()..7 {
        line.push(' ');
    }
    line.push_str(&num);
    line.push_str("  ");
    cell(line, names.port(in_port), 12);
    let start = line.len();
    for (i, d) in v.delivered.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        line.push_str(names.port(*d));
    }
    if v.reply.is_some() {
        if !v.delivered.is_empty() {
            line.push(',');
        }
        line.push_str(names.port(in_port));
        line.push_str(":arp-reply");
    }
    pad_from(line, start, 24);
    let start = line.len();
    for (i, (p, r)) in v.dropped.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        line.push_str(names.port(*p));
        line.push(':');
        line.push_str(r.as_str());
    }
    pad_from(line, start, 28);
    cell(line, &notes.ct, 11);
    let start = line.len();
    for (i, (_, _, r)) in notes.rules.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        line.push_str(&names.label(*r));
    }
    pad_from(line, start, 20);
    line.push_str(&notes.summary);
    line.push('\n');
    out.write_all(line.as_bytes())
}

/// The cell written since `start`: `-` when empty, padded to `width`, and a gap.
fn pad_from(line: &mut String, start: usize, width: usize) {
    if line.len() == start {
        line.push('-');
    }
    let written = line[start..].chars().count();
    for _ in written..width {
        line.push(' ');
    }
    line.push_str("  ");
}

/// The header of the text lines.
pub(super) fn text_header<W: Write>(out: &mut W) -> io::Result<()> {
    writeln!(
        out,
        "{:>7}  {:<12}  {:<24}  {:<28}  {:<11}  {:<20}  frame",
        "frame", "in_port", "delivered", "dropped (port:reason)", "conntrack", "rules"
    )
}

/// The JSON object of a frame: the verdict keys first (`frame`, `in_port`, `delivered`,
/// `dropped`, as always), then `summary`, `ct`, `rules` and `why`. Built by hand into
/// `s` (reused), then written once.
#[allow(clippy::too_many_arguments)]
pub(super) fn json_line<W: Write>(
    out: &mut W,
    s: &mut String,
    names: &Names<'_>,
    dp: &Dataplane,
    n: u64,
    in_port: u16,
    frame: &[u8],
    v: &Verdict,
    notes: &FrameNotes,
) -> io::Result<()> {
    s.clear();
    let _ = write!(s, "{{\"frame\":{n},\"in_port\":");
    json_str(s, names.port(in_port));
    s.push_str(",\"delivered\":[");
    for (i, d) in v.delivered.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        json_str(s, names.port(*d));
    }
    s.push_str("],\"dropped\":[");
    for (i, (p, r)) in v.dropped.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str("{\"port\":");
        json_str(s, names.port(*p));
        s.push_str(",\"reason\":\"");
        s.push_str(r.as_str());
        s.push_str("\"}");
    }
    s.push(']');
    if let Some(r) = v.reply {
        s.push_str(",\"arp_reply\":{\"port\":");
        json_str(s, names.port(in_port));
        s.push_str(",\"summary\":");
        let mut buf = [0u8; ARP_REPLY_LEN];
        let len = r.write(&mut buf).unwrap_or(0);
        json_str(s, &flow::summary(&buf[..len]));
        s.push('}');
    }
    s.push_str(",\"summary\":");
    json_str(s, &notes.summary);
    s.push_str(",\"ct\":\"");
    s.push_str(&notes.ct);
    s.push_str("\",\"rules\":[");
    for (i, (p, dir, r)) in notes.rules.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str("{\"port\":");
        json_str(s, names.port(*p));
        s.push_str(",\"dir\":\"");
        s.push_str(dir.as_str());
        s.push_str("\",\"group\":");
        json_str(s, names.group(*r));
        let _ = write!(s, ",\"rule\":{}", r.rule);
        if names.narrator.is_some() {
            s.push_str(",\"text\":");
            json_str(s, names.rule_text(*r));
        }
        s.push('}');
    }
    s.push_str("],\"why\":[");
    for (i, (p, r)) in v.dropped.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str("{\"port\":");
        json_str(s, names.port(*p));
        s.push_str(",\"text\":");
        json_str(s, &names.why(dp, *p, *r, frame));
        s.push('}');
    }
    s.push_str("]}\n");
    out.write_all(s.as_bytes())
}

/// The pcapng comment of a dropped frame: `port vm-b: ingress-denied (why)`, then the
/// rules that admitted the frame before (`; admitted by client#0: egress IPv4 tcp to any`).
pub(super) fn drop_comment(
    names: &Names<'_>,
    dp: &Dataplane,
    port: u16,
    r: DropReason,
    frame: &[u8],
    notes: &FrameNotes,
) -> String {
    let mut c = format!(
        "port {}: {} ({})",
        names.port(port),
        r.as_str(),
        names.why(dp, port, r, frame)
    );
    for (p, dir, rule) in &notes.rules {
        let _ = write!(
            c,
            "; {} {} admitted by {}",
            names.port(*p),
            dir.as_str(),
            names.label(*rule)
        );
        let t = names.rule_text(*rule);
        if !t.is_empty() {
            let _ = write!(c, ": {t}");
        }
    }
    c
}
