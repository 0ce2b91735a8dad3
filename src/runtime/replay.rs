//! Replay: a capture file as the ingress port of the very same pipeline the live switch
//! runs, with the capture's timestamps as the clock (so timeouts are reproducible).
//!
//! Policy changes during a replay (`--apply-at S=FILE`) go through the same
//! validate → compile → publish path a live reload uses: the new [`Dataplane`] gets a new
//! epoch and replaces the old one between two frames; a config that fails to load leaves
//! the running policy untouched (the failure is reported and the replay exits non-zero).
//!
//! # Logging
//! WARN: an `--apply-at` config that failed to load (file and reason). Without a
//! subscriber that takes WARN events the same message goes to stderr, as it always did.
//! Verdicts and the summary are output, not logs.
//!
//! # Explaining itself
//! Every frame but a later fragment goes through [`Pipeline::trace`] (the same processing,
//! with its steps recorded), so each line also says what the frame is
//! ([`flow::summary`](crate::flow::summary)), what connection tracking said, and which
//! rules admitted it; `--json` objects carry the same, plus why each drop happened.
//! `--only-dropped` and `--port` filter the printed lines (the summary counts every
//! frame); the summary adds drops by port and reason and new connections by rule;
//! `--dropped-out FILE` writes the dropped frames with a pcapng comment each.
//! The words for rules and drops come from the control plane through a [`Narrator`]
//! (the runtime may not depend on `control`; the CLI passes `control::explain`'s).
//!
//! Cost, measured with callgrind (instructions, so the machine's load does not blur it) on
//! a 200,000-frame capture (25,000 TCP connections of 8 frames, a tenth of them refused;
//! output to `/dev/null`, whole process), 2026-12-07: `Pipeline::trace` costs 2,245
//! instructions per frame where `Pipeline::process` costs 1,185 (1.89×, under the 2× this
//! was allowed; computing the rule from the verdict instead would re-implement the
//! pipeline's decision). The whole replay went from 6,587 to 8,437 instructions per frame
//! with text output (1.28×) and from 4,435 to 8,628 with `--json` (1.95×: the lines carry
//! several times more). What made it affordable: the summary and the lines are written by
//! hand into reused buffers (`format!` with padded columns cost 2.8× the old replay), and
//! each rule's label and words are made once per policy, not per frame.
//!
//! An ARP request the responder answers (#19, `pipeline::ArpTable`) shows its reply as a
//! frame sent to the in-port: `IN:arp-reply` in the delivered column, an `arp_reply`
//! object in `--json` (the port and the reply in one line), the reply frame in the
//! in-port's `--out-dir` capture, and the count in the summary.
//!
//! Progress: [`ReplayExplain::progress`] is called every [`PROGRESS_EVERY`] frames and
//! at the end with the frames and capture bytes read (the CLI draws a bar from it).
//!
//! Owns the replay loop and its outputs (JSON/text lines, per-port pcaps, dropped.pcapng,
//! the dropped-frames capture); may use `pipeline`, `policy`, `flow` and `port::pcap`,
//! nothing of the live switch or `control` (the config loader and the narrator are
//! passed in), and `port::gso` to read a frame's virtio-net header. Files: this one the
//! loop, options and summary; `notes` what a line says.
//!
//! # Offloads (GSO superframes, partial checksums)
//! An interface of link type [`LINKTYPE_VNET_HDR`] carries each frame behind its
//! virtio-net header, as a tap with `vnet_hdr` receives it. The header is checked as the
//! tap checks it ([`gso::check`]): a malformed one is dropped at the ingress port as
//! `bad-offload`; otherwise the frame (a superframe: one frame) goes through the pipeline
//! as the live switch runs it, judged once.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use crate::flow::{self, DropReason, PacketMeta};
use crate::pipeline::{
    Dataplane, Disposition, IdMap, Pipeline, PipelineConfig, Trace, Verdict, ARP_REPLY_LEN,
};
use crate::policy::{Model, RuleRef};
use crate::port::gso::{self, Offload, VNET_HDR_LEN};
use crate::port::pcap::{CaptureError, CaptureReader, PcapNgWriter, PcapWriter, LINKTYPE_ETHERNET};

/// Link type of a capture interface whose frames each start with a 10-byte
/// `struct virtio_net_hdr` (little-endian) before the Ethernet frame: what a tap with
/// `vnet_hdr` reads, GSO superframes and partial checksums included. `LINKTYPE_USER0`:
/// no registered link type carries it.
pub const LINKTYPE_VNET_HDR: u16 = 147;

mod notes;

use notes::{FrameNotes, Names};

/// Errors that stop a replay.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{path}: {source}")]
    Capture {
        path: String,
        #[source]
        source: CaptureError,
    },
    #[error("{path}: cannot open: {source}")]
    Open {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{path}: interface {interface} has link type {link_type}; sgswitch replays Ethernet captures only (link type 1, or 147: a virtio-net header before each frame)")]
    LinkType {
        path: String,
        interface: usize,
        link_type: u16,
    },
    #[error("{path}: interface {interface} is named '{name}', but no port has that name (ports: {ports})")]
    UnknownInterface {
        path: String,
        interface: usize,
        name: String,
        ports: String,
    },
    #[error("{path}: interface {interface} has no name; give the ingress port with --in-port")]
    NoInPort { path: String, interface: usize },
    #[error("--in-port {0}: no port has that name")]
    UnknownInPort(String),
    #[error("--port {0}: no port has that name")]
    UnknownFilterPort(String),
    #[error("output: {0}")]
    Output(#[from] io::Error),
}

/// What to replay and how.
pub struct ReplayOptions<'a> {
    pub input: PathBuf,
    pub in_port: Option<String>,
    /// Every frame arrives on `in_port`, whatever its interface's name.
    pub force_in_port: bool,
    /// (seconds after the first frame, config file), in any order.
    pub apply_at: Vec<(f64, PathBuf)>,
    pub json: bool,
    pub out_dir: Option<PathBuf>,
    /// Loads and validates a config file (the control plane's loader).
    pub loader: &'a dyn Fn(&Path) -> Result<Model, String>,
}

/// Words for what a replay explains, from the control plane: the CLI passes
/// `control::explain`'s (`sgswitch trace` says the same things).
pub trait Narrator {
    /// Rule `rule` of `model` in Neutron's words (`ingress IPv4 tcp 22 from any`).
    fn rule(&self, model: &Model, rule: RuleRef) -> String;
    /// Why `reason` happened at port `port` (a `dp` index) to `frame`, in one sentence.
    fn why(
        &self,
        model: &Model,
        dp: &Dataplane,
        port: u16,
        reason: DropReason,
        frame: &[u8],
    ) -> String;
}

/// Progress of a replay ([`ReplayExplain::progress`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayProgress {
    pub frames: u64,
    /// Capture bytes read so far, and the capture's size.
    pub bytes: u64,
    pub total_bytes: u64,
    /// The last call.
    pub done: bool,
}

/// Frames between two progress calls.
pub const PROGRESS_EVERY: u64 = 4096;

/// How a replay explains itself: filters of the printed lines, the dropped-frames
/// capture, the words, progress. The default prints every line, with rules named by group
/// and index and drops by their reason.
#[derive(Default)]
pub struct ReplayExplain<'a> {
    /// Print only the frames with at least one drop.
    pub only_dropped: bool,
    /// Print only the frames that come from, go to or are dropped at this port.
    pub port: Option<String>,
    /// Write the dropped frames here (pcapng, one interface per port), each with a
    /// comment: port, reason, why, and the rules that admitted it before.
    pub dropped_out: Option<PathBuf>,
    pub narrator: Option<&'a dyn Narrator>,
    pub progress: Option<&'a dyn Fn(ReplayProgress)>,
}

/// Totals of a replay.
#[derive(Clone, Debug, Default)]
pub struct ReplaySummary {
    pub frames: u64,
    /// Frames delivered to at least one port.
    pub frames_delivered: u64,
    /// Deliveries (a flooded frame counts once per port).
    pub deliveries: u64,
    pub drops: [u64; DropReason::COUNT],
    /// `--apply-at` configs that failed to load (the policy stayed as it was).
    pub failed_applies: Vec<String>,
    pub applied: u64,
    /// Drops by (port name, reason).
    pub drops_by_port: BTreeMap<(String, DropReason), u64>,
    /// Connections admitted by each rule (every packet for stateless groups): by (group
    /// name, rule index, the rule's words; empty without a narrator).
    pub rule_hits: BTreeMap<(String, u32, String), u64>,
    /// ARP requests the responder answered (a reply sent back to the in-port, #19).
    pub arp_replies: u64,
}

struct Outputs {
    per_port: Vec<Option<PcapWriter<BufWriter<File>>>>,
    dropped: PcapNgWriter<BufWriter<File>>,
}

/// Where a decided frame goes: the summary, the printed lines, the captures.
struct Emit<'o, 'n, W: Write> {
    out: &'o mut W,
    json: bool,
    names: Names<'n>,
    /// Dataplane index of the `--port` filter (`u16::MAX`: its port is gone).
    port_filter: Option<u16>,
    only_dropped: bool,
    outputs: Option<Outputs>,
    dropped_out: Option<PcapNgWriter<BufWriter<File>>>,
    summary: ReplaySummary,
    /// Rule hits under the current model (folded into the summary, by name, when the
    /// model changes and at the end).
    hits: hashbrown::HashMap<RuleRef, u64>,
    /// Reused per frame.
    notes: FrameNotes,
    line: String,
}

impl<W: Write> Emit<'_, '_, W> {
    /// A decided frame (`trace`: its steps, when it was traced).
    #[allow(clippy::too_many_arguments)]
    fn frame(
        &mut self,
        dp: &Dataplane,
        n: u64,
        in_port: u16,
        ts: u64,
        frame: &[u8],
        v: &Verdict,
        trace: Option<&Trace>,
    ) -> io::Result<()> {
        let mut notes = std::mem::take(&mut self.notes);
        notes.fill(frame, trace);
        let r = self.emit(dp, n, in_port, ts, frame, v, &notes);
        self.notes = notes;
        r
    }

    #[allow(clippy::too_many_arguments)]
    fn emit(
        &mut self,
        dp: &Dataplane,
        n: u64,
        in_port: u16,
        ts: u64,
        frame: &[u8],
        v: &Verdict,
        notes: &FrameNotes,
    ) -> io::Result<()> {
        self.account(v, notes);
        let shown = (!self.only_dropped || !v.dropped.is_empty())
            && self.port_filter.is_none_or(|p| {
                in_port == p || v.delivered.contains(&p) || v.dropped.iter().any(|d| d.0 == p)
            });
        if shown {
            if self.json {
                let line = &mut self.line;
                notes::json_line(self.out, line, &self.names, dp, n, in_port, frame, v, notes)?;
            } else {
                let line = &mut self.line;
                notes::text_line(self.out, line, &self.names, n, in_port, v, notes)?;
            }
        }
        if let Some(o) = self.outputs.as_mut() {
            for &d in &v.delivered {
                if let Some(Some(w)) = o.per_port.get_mut(d as usize) {
                    w.write(ts, frame)?;
                }
            }
            // The generated ARP reply is a frame sent to the in-port.
            if let (Some(r), Some(Some(w))) = (v.reply, o.per_port.get_mut(in_port as usize)) {
                let mut buf = [0u8; ARP_REPLY_LEN];
                if let Some(len) = r.write(&mut buf) {
                    w.write(ts, &buf[..len])?;
                }
            }
        }
        if self.outputs.is_some() || self.dropped_out.is_some() {
            for &(p, r) in &v.dropped {
                let c = notes::drop_comment(&self.names, dp, p, r, frame, notes);
                if let Some(o) = self.outputs.as_mut() {
                    o.dropped.write(p as u32, ts, frame, Some(&c))?;
                }
                if let Some(w) = self.dropped_out.as_mut() {
                    w.write(p as u32, ts, frame, Some(&c))?;
                }
            }
        }
        Ok(())
    }

    /// Fold the rule hits of the current model into the summary.
    fn fold_hits(&mut self) {
        for (r, c) in self.hits.drain() {
            let key = (
                self.names.group(r).to_string(),
                r.rule,
                self.names.rule_text(r).to_string(),
            );
            *self.summary.rule_hits.entry(key).or_default() += c;
        }
    }

    fn account(&mut self, v: &Verdict, notes: &FrameNotes) {
        let s = &mut self.summary;
        if !v.delivered.is_empty() {
            s.frames_delivered += 1;
        }
        s.deliveries += v.delivered.len() as u64;
        s.arp_replies += u64::from(v.reply.is_some());
        for &(p, r) in &v.dropped {
            s.drops[r as usize] += 1;
            *s.drops_by_port
                .entry((self.names.port(p).to_string(), r))
                .or_default() += 1;
        }
        for &(_, _, r) in &notes.rules {
            *self.hits.entry(r).or_default() += 1;
        }
    }
}

/// A reader that counts the bytes read through it (for progress).
struct Counting<R> {
    inner: R,
    read: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

/// Run a replay; verdicts go to `out`. Returns the summary (print it with [`print_summary`]).
pub fn run<W: Write>(
    model: &Model,
    opts: &ReplayOptions<'_>,
    out: &mut W,
) -> Result<ReplaySummary, ReplayError> {
    run_explained(model, opts, &ReplayExplain::default(), out)
}

/// [`run`], explained as `explain` says (filters, words, the dropped-frames capture,
/// progress).
pub fn run_explained<W: Write>(
    model: &Model,
    opts: &ReplayOptions<'_>,
    explain: &ReplayExplain<'_>,
    out: &mut W,
) -> Result<ReplaySummary, ReplayError> {
    let path = opts.input.display().to_string();
    let file = File::open(&opts.input).map_err(|source| ReplayError::Open {
        path: path.clone(),
        source,
    })?;
    let total_bytes = file.metadata().map_or(0, |m| m.len());
    let bytes_read = Rc::new(Cell::new(0u64));
    let counting = Counting {
        inner: file,
        read: bytes_read.clone(),
    };
    let mut reader =
        CaptureReader::new(BufReader::with_capacity(1 << 16, counting)).map_err(|source| {
            ReplayError::Capture {
                path: path.clone(),
                source,
            }
        })?;

    let mut zones = IdMap::default();
    let mut epoch = 1u64;
    let mut dp = Arc::new(Dataplane::compile(model, epoch, &mut zones));
    if let Some(p) = &opts.in_port {
        if dp.port_index(p).is_none() {
            return Err(ReplayError::UnknownInPort(p.clone()));
        }
    }
    let port_filter = match &explain.port {
        Some(p) => Some(
            dp.port_index(p)
                .ok_or_else(|| ReplayError::UnknownFilterPort(p.clone()))?,
        ),
        None => None,
    };
    let mut pipeline = Pipeline::new(&PipelineConfig::from_model(model));
    let mut applies: Vec<(u64, PathBuf)> = opts
        .apply_at
        .iter()
        .map(|(s, f)| ((s.max(0.0) * 1e9).round() as u64, f.clone()))
        .collect();
    applies.sort_by_key(|a| a.0);
    let mut next_apply = 0usize;

    let port_names: Vec<&str> = dp.ports.iter().map(|p| p.name.as_str()).collect();
    let outputs = match &opts.out_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            let mut per_port = Vec::new();
            for p in dp.ports.iter() {
                let f = File::create(dir.join(format!("{}.pcap", p.name)))?;
                per_port.push(Some(PcapWriter::new(BufWriter::new(f))?));
            }
            let f = File::create(dir.join("dropped.pcapng"))?;
            Some(Outputs {
                per_port,
                dropped: PcapNgWriter::new(BufWriter::new(f), &port_names)?,
            })
        }
        None => None,
    };
    let dropped_out = match &explain.dropped_out {
        Some(file) => Some(PcapNgWriter::new(
            BufWriter::new(File::create(file)?),
            &port_names,
        )?),
        None => None,
    };

    let mut emit = Emit {
        out,
        json: opts.json,
        names: Names::new(
            dp.ports.iter().map(|p| p.name.clone()).collect(),
            model.clone(),
            explain.narrator,
        ),
        port_filter,
        only_dropped: explain.only_dropped,
        outputs,
        dropped_out,
        summary: ReplaySummary::default(),
        hits: hashbrown::HashMap::new(),
        notes: FrameNotes::default(),
        line: String::with_capacity(256),
    };
    if !opts.json {
        notes::text_header(emit.out)?;
    }
    let progress = |frames: u64, done: bool| {
        if let Some(p) = explain.progress {
            p(ReplayProgress {
                frames,
                bytes: bytes_read.get(),
                total_bytes,
                done,
            });
        }
    };
    // Interface index -> port name (resolved lazily as interfaces appear).
    let mut iface_port: Vec<Option<String>> = Vec::new();
    // Interface index -> its frames start with a virtio-net header.
    let mut iface_vnet: Vec<bool> = Vec::new();
    let mut frame = Vec::with_capacity(65536);
    let mut verdict = Verdict::default();
    let mut meta = PacketMeta::default();
    let mut first_ts: Option<u64> = None;
    let mut n = 0u64;
    // Timestamps of frames, for held frames written to the outputs later.
    let mut held_ts: hashbrown::HashMap<u64, u64> = hashbrown::HashMap::new();

    loop {
        let rec = reader
            .next_frame(&mut frame)
            .map_err(|source| ReplayError::Capture {
                path: path.clone(),
                source,
            })?;
        let Some(rec) = rec else { break };
        n += 1;
        emit.summary.frames += 1;
        if n.is_multiple_of(PROGRESS_EVERY) {
            progress(n, false);
        }
        // Resolve the interface.
        while iface_port.len() < reader.interfaces().len() {
            let i = iface_port.len();
            let iface = &reader.interfaces()[i];
            iface_vnet.push(iface.link_type == LINKTYPE_VNET_HDR);
            if iface.link_type != LINKTYPE_ETHERNET && iface.link_type != LINKTYPE_VNET_HDR {
                return Err(ReplayError::LinkType {
                    path,
                    interface: i,
                    link_type: iface.link_type,
                });
            }
            let name = match (&iface.name, &opts.in_port) {
                (_, Some(p)) if opts.force_in_port => Some(p.clone()),
                (Some(name), _) if !name.is_empty() => {
                    if dp.port_index(name).is_none() {
                        return Err(ReplayError::UnknownInterface {
                            path,
                            interface: i,
                            name: name.clone(),
                            ports: emit.names.ports.join(", "),
                        });
                    }
                    Some(name.clone())
                }
                (_, Some(p)) => Some(p.clone()),
                _ => None,
            };
            iface_port.push(name);
        }
        let Some(Some(port_name)) = iface_port.get(rec.interface).cloned() else {
            return Err(ReplayError::NoInPort {
                path,
                interface: rec.interface,
            });
        };
        let ts = rec.ts_ns;
        let t0 = *first_ts.get_or_insert(ts);
        // Policy changes due before this frame.
        while next_apply < applies.len() && ts >= t0.saturating_add(applies[next_apply].0) {
            let file = &applies[next_apply].1;
            next_apply += 1;
            match (opts.loader)(file) {
                Ok(m) => {
                    epoch += 1;
                    dp = Arc::new(Dataplane::compile(&m, epoch, &mut zones));
                    emit.summary.applied += 1;
                    // Port names stay; a removed port's frames become unknown-port.
                    emit.names.ports = dp.ports.iter().map(|p| p.name.clone()).collect();
                    emit.fold_hits();
                    emit.names.set_model(m);
                    if let Some(p) = &explain.port {
                        emit.port_filter = Some(dp.port_index(p).unwrap_or(u16::MAX));
                    }
                }
                Err(e) => {
                    apply_failed(file, &e);
                    emit.summary.failed_applies.push(file.display().to_string());
                }
            }
        }
        let in_port = dp.port_index(&port_name).unwrap_or(u16::MAX);
        pipeline.housekeeping(ts);
        if iface_vnet.get(rec.interface).copied().unwrap_or(false) && !vnet_ok(&mut frame) {
            verdict.clear();
            verdict.dropped.push((in_port, DropReason::BadOffload));
            emit.frame(&dp, n, in_port, ts, &frame, &verdict, None)?;
            continue;
        }
        // A later fragment may be held: it needs its token, which `trace` does not take.
        let later_fragment = flow::extract_into(&frame, &mut meta).is_ok()
            && meta.is_ip()
            && meta.frag.is_later_fragment();
        let (d, trace) = if later_fragment {
            let d = pipeline.process(&dp, in_port, &frame, ts, n, &mut verdict);
            (d, None)
        } else {
            let (d, t) = pipeline.trace(&dp, in_port, &frame, ts, &mut verdict);
            (d, Some(t))
        };
        if d == Disposition::Decided {
            emit.frame(&dp, n, in_port, ts, &frame, &verdict, trace.as_ref())?;
        } else {
            held_ts.insert(n, ts);
        }
        drain(&mut pipeline, &dp, &mut emit, &mut held_ts, ts)?;
    }
    // Fragments still waiting for their first fragment: dropped.
    pipeline.flush_held();
    drain(&mut pipeline, &dp, &mut emit, &mut held_ts, 0)?;
    progress(n, true);
    emit.fold_hits();
    emit.out.flush()?;
    if let Some(o) = emit.outputs {
        for w in o.per_port.into_iter().flatten() {
            w.finish()?;
        }
        o.dropped.finish()?;
    }
    if let Some(w) = emit.dropped_out {
        w.finish()?;
    }
    Ok(emit.summary)
}

/// Take the virtio-net header off the front of `frame`; true if it is valid for the frame
/// (then `frame` is the Ethernet frame).
fn vnet_ok(frame: &mut Vec<u8>) -> bool {
    let Some(h) = frame.get(..VNET_HDR_LEN) else {
        return false;
    };
    let u = |i: usize| u16::from_le_bytes([h[i], h[i + 1]]);
    let off = Offload {
        flags: h[0],
        gso_type: h[1],
        hdr_len: u(2),
        gso_size: u(4),
        csum_start: u(6),
        csum_offset: u(8),
    };
    frame.drain(..VNET_HDR_LEN);
    gso::check(&off, frame).is_ok()
}

/// Emit the held frames the pipeline has decided (`ts`: the time of those whose own is
/// unknown).
fn drain<W: Write>(
    pipeline: &mut Pipeline,
    dp: &Dataplane,
    emit: &mut Emit<'_, '_, W>,
    held_ts: &mut hashbrown::HashMap<u64, u64>,
    ts: u64,
) -> io::Result<()> {
    let mut err = Ok(());
    pipeline.drain_released(dp, |token, inp, bytes, v| {
        let t = held_ts.remove(&token).unwrap_or(ts);
        if err.is_ok() {
            err = emit.frame(dp, token, inp, t, bytes, v, None);
        }
    });
    err
}

/// Report an `--apply-at` config that failed to load: a WARN event when a subscriber
/// takes it, else (no logging set up) the same text on stderr, so that it is never lost.
fn apply_failed(file: &Path, e: &str) {
    if tracing::enabled!(tracing::Level::WARN) {
        tracing::warn!(
            file = %file.display(),
            "replay: --apply-at {}: {e}; the running policy is unchanged",
            file.display()
        );
    } else {
        eprintln!(
            "sgswitch: replay: --apply-at {}: {e}; the running policy is unchanged",
            file.display()
        );
    }
}

/// Print the end-of-replay summary.
pub fn print_summary<W: Write>(s: &ReplaySummary, w: &mut W) -> io::Result<()> {
    let dropped: u64 = s.drops.iter().sum();
    writeln!(
        w,
        "summary: {} frames, {} delivered ({} deliveries), {} drops",
        s.frames, s.frames_delivered, s.deliveries, dropped
    )?;
    for r in DropReason::ALL {
        let c = s.drops[r as usize];
        if c > 0 {
            writeln!(w, "  {:<22} {:>8}  {}", r.as_str(), c, r.describe())?;
        }
    }
    if s.arp_replies > 0 {
        writeln!(
            w,
            "arp responder: {} requests answered locally (arp-reply)",
            s.arp_replies
        )?;
    }
    if !s.drops_by_port.is_empty() {
        writeln!(w, "drops by port:")?;
        let width = s.drops_by_port.keys().map(|k| k.0.len()).max().unwrap_or(0);
        for ((port, r), c) in &s.drops_by_port {
            writeln!(w, "  {port:<width$}  {:<22} {c:>8}", r.as_str())?;
        }
    }
    if !s.rule_hits.is_empty() {
        writeln!(w, "new connections by rule:")?;
        let labels: Vec<String> = s
            .rule_hits
            .keys()
            .map(|(g, i, _)| format!("{g}#{i}"))
            .collect();
        let width = labels.iter().map(String::len).max().unwrap_or(0);
        for (((_, _, text), c), label) in s.rule_hits.iter().zip(&labels) {
            writeln!(w, "  {label:<width$}  {c:>8}  {text}")?;
        }
    }
    if s.applied > 0 || !s.failed_applies.is_empty() {
        writeln!(
            w,
            "policy changes: {} applied, {} failed",
            s.applied,
            s.failed_applies.len()
        )?;
    }
    Ok(())
}
