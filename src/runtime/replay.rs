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
//! Owns the replay loop and its outputs (JSON/text lines, per-port pcaps, dropped.pcapng);
//! may use `pipeline`, `policy` and `port::pcap`, nothing of the live switch or `control`
//! (the config loader is passed in).

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::flow::DropReason;
use crate::pipeline::{Dataplane, Disposition, IdMap, Pipeline, PipelineConfig, Verdict};
use crate::policy::Model;
use crate::port::pcap::{CaptureError, CaptureReader, PcapNgWriter, PcapWriter, LINKTYPE_ETHERNET};

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
    #[error("{path}: interface {interface} has link type {link_type}; sgswitch replays Ethernet captures only (link type 1)")]
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
}

struct Outputs {
    per_port: Vec<Option<PcapWriter<BufWriter<File>>>>,
    dropped: PcapNgWriter<BufWriter<File>>,
}

struct Printer<'o, W: Write> {
    out: &'o mut W,
    json: bool,
    names: Vec<String>,
}

impl<W: Write> Printer<'_, W> {
    fn frame(&mut self, n: u64, in_port: u16, v: &Verdict) -> io::Result<()> {
        let name = |i: u16| -> &str { self.names.get(i as usize).map_or("?", |s| s.as_str()) };
        if self.json {
            let mut s = String::with_capacity(128);
            s.push_str("{\"frame\":");
            s.push_str(&n.to_string());
            s.push_str(",\"in_port\":");
            s.push_str(&serde_json::to_string(name(in_port)).unwrap_or_default());
            s.push_str(",\"delivered\":[");
            for (i, d) in v.delivered.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                s.push_str(&serde_json::to_string(name(*d)).unwrap_or_default());
            }
            s.push_str("],\"dropped\":[");
            for (i, (p, r)) in v.dropped.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                s.push_str("{\"port\":");
                s.push_str(&serde_json::to_string(name(*p)).unwrap_or_default());
                s.push_str(",\"reason\":\"");
                s.push_str(r.as_str());
                s.push_str("\"}");
            }
            s.push_str("]}");
            writeln!(self.out, "{s}")
        } else {
            let delivered: Vec<&str> = v.delivered.iter().map(|d| name(*d)).collect();
            let dropped: Vec<String> = v
                .dropped
                .iter()
                .map(|(p, r)| format!("{}:{}", name(*p), r.as_str()))
                .collect();
            writeln!(
                self.out,
                "{:>7}  {:<12}  {:<24}  {}",
                n,
                name(in_port),
                if delivered.is_empty() {
                    "-".to_string()
                } else {
                    delivered.join(",")
                },
                if dropped.is_empty() {
                    "-".to_string()
                } else {
                    dropped.join(",")
                }
            )
        }
    }
}

/// Run a replay; verdicts go to `out`. Returns the summary (print it with [`print_summary`]).
pub fn run<W: Write>(
    model: &Model,
    opts: &ReplayOptions<'_>,
    out: &mut W,
) -> Result<ReplaySummary, ReplayError> {
    let path = opts.input.display().to_string();
    let file = File::open(&opts.input).map_err(|source| ReplayError::Open {
        path: path.clone(),
        source,
    })?;
    let mut reader =
        CaptureReader::new(BufReader::with_capacity(1 << 16, file)).map_err(|source| {
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
    let mut pipeline = Pipeline::new(&PipelineConfig::from_model(model));
    let mut applies: Vec<(u64, PathBuf)> = opts
        .apply_at
        .iter()
        .map(|(s, f)| ((s.max(0.0) * 1e9).round() as u64, f.clone()))
        .collect();
    applies.sort_by_key(|a| a.0);
    let mut next_apply = 0usize;

    let mut outputs = match &opts.out_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            let mut per_port = Vec::new();
            for p in &dp.ports {
                let f = File::create(dir.join(format!("{}.pcap", p.name)))?;
                per_port.push(Some(PcapWriter::new(BufWriter::new(f))?));
            }
            let names: Vec<&str> = dp.ports.iter().map(|p| p.name.as_str()).collect();
            let f = File::create(dir.join("dropped.pcapng"))?;
            Some(Outputs {
                per_port,
                dropped: PcapNgWriter::new(BufWriter::new(f), &names)?,
            })
        }
        None => None,
    };

    let mut printer = Printer {
        out,
        json: opts.json,
        names: dp.ports.iter().map(|p| p.name.clone()).collect(),
    };
    if !opts.json {
        writeln!(
            printer.out,
            "{:>7}  {:<12}  {:<24}  dropped (port:reason)",
            "frame", "in_port", "delivered"
        )?;
    }
    let mut summary = ReplaySummary::default();
    // Interface index -> port name (resolved lazily as interfaces appear).
    let mut iface_port: Vec<Option<String>> = Vec::new();
    let mut frame = Vec::with_capacity(65536);
    let mut verdict = Verdict::default();
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
        summary.frames += 1;
        // Resolve the interface.
        while iface_port.len() < reader.interfaces().len() {
            let i = iface_port.len();
            let iface = &reader.interfaces()[i];
            if iface.link_type != LINKTYPE_ETHERNET {
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
                            ports: printer.names.join(", "),
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
                    summary.applied += 1;
                    // Port names stay; a removed port's frames become unknown-port.
                    printer.names = dp.ports.iter().map(|p| p.name.clone()).collect();
                }
                Err(e) => {
                    apply_failed(file, &e);
                    summary.failed_applies.push(file.display().to_string());
                }
            }
        }
        let in_port = dp.port_index(&port_name).unwrap_or(u16::MAX);
        pipeline.housekeeping(ts);
        let d = pipeline.process(&dp, in_port, &frame, ts, n, &mut verdict);
        if d == Disposition::Decided {
            let mut out = Emit {
                summary: &mut summary,
                printer: &mut printer,
                outputs: outputs.as_mut(),
            };
            out.frame(n, in_port, ts, &frame, &verdict)?;
        } else {
            held_ts.insert(n, ts);
        }
        let mut err = Ok(());
        let mut out = Emit {
            summary: &mut summary,
            printer: &mut printer,
            outputs: outputs.as_mut(),
        };
        pipeline.drain_released(&dp, |token, inp, bytes, v| {
            let t = held_ts.remove(&token).unwrap_or(ts);
            if err.is_ok() {
                err = out.frame(token, inp, t, bytes, v);
            }
        });
        err?;
    }
    // Fragments still waiting for their first fragment: dropped.
    pipeline.flush_held();
    let mut err = Ok(());
    let mut out = Emit {
        summary: &mut summary,
        printer: &mut printer,
        outputs: outputs.as_mut(),
    };
    pipeline.drain_released(&dp, |token, inp, bytes, v| {
        let t = held_ts.remove(&token).unwrap_or(0);
        if err.is_ok() {
            err = out.frame(token, inp, t, bytes, v);
        }
    });
    err?;
    printer.out.flush()?;
    if let Some(o) = outputs {
        for w in o.per_port.into_iter().flatten() {
            w.finish()?;
        }
        o.dropped.finish()?;
    }
    Ok(summary)
}

/// Where a decided frame goes: the summary, the printed verdicts, the capture outputs.
struct Emit<'a, 'o, W: Write> {
    summary: &'a mut ReplaySummary,
    printer: &'a mut Printer<'o, W>,
    outputs: Option<&'a mut Outputs>,
}

impl<W: Write> Emit<'_, '_, W> {
    fn frame(
        &mut self,
        n: u64,
        in_port: u16,
        ts: u64,
        frame: &[u8],
        v: &Verdict,
    ) -> io::Result<()> {
        account(self.summary, v);
        self.printer.frame(n, in_port, v)?;
        if let Some(o) = self.outputs.as_deref_mut() {
            write_outputs(o, ts, frame, v, &self.printer.names)?;
        }
        Ok(())
    }
}

fn account(s: &mut ReplaySummary, v: &Verdict) {
    if !v.delivered.is_empty() {
        s.frames_delivered += 1;
    }
    s.deliveries += v.delivered.len() as u64;
    for (_, r) in &v.dropped {
        s.drops[*r as usize] += 1;
    }
}

fn write_outputs(
    o: &mut Outputs,
    ts: u64,
    frame: &[u8],
    v: &Verdict,
    names: &[String],
) -> io::Result<()> {
    for &d in &v.delivered {
        if let Some(Some(w)) = o.per_port.get_mut(d as usize) {
            w.write(ts, frame)?;
        }
    }
    for &(p, r) in &v.dropped {
        let port = names.get(p as usize).map_or("?", |s| s.as_str());
        let comment = format!("{}: {}", port, r.as_str());
        o.dropped.write(p as u32, ts, frame, Some(&comment))?;
    }
    Ok(())
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
