//! `sgswitch trace`: why one frame is delivered or dropped, stage by stage.
//!
//! Owns: the trace command's arguments, reading the frame (a packet description, or frame
//! N of a capture), its output (text, or `--json`) and exit code. May not explain
//! anything itself: the frame goes through `control::explain::trace_frame`, which runs
//! the switch's own pipeline on a scratch copy; the description grammar and the frame
//! builder are `control::explain::packet`'s.
//!
//! Exit codes: 0 the trace ran (delivered or dropped); 1 bad input (config, description,
//! port, capture, frame number); 2 usage error.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use serde_json::{json, Value};

use sgswitch::control::explain::{self, packet};
use sgswitch::control::http_client::Client;
use sgswitch::pipeline::{Dataplane, IdMap};
use sgswitch::policy::Model;
use sgswitch::port::pcap::{CaptureReader, LINKTYPE_ETHERNET};
use sgswitch::wire::Mac;

use super::{load_or_report, EXIT_INVALID, EXIT_OK};

/// Arguments of `sgswitch trace`.
#[derive(Args, Debug)]
pub struct TraceArgs {
    /// The TOML config file whose policy judges the frame (offline)
    #[arg(
        short,
        long,
        value_name = "FILE",
        required_unless_present = "api",
        conflicts_with = "api"
    )]
    pub config: Option<PathBuf>,

    /// Judge the frame by a running switch instead: its policy in force and the live
    /// connection state of the frame's flow (nothing is changed)
    #[arg(
        long,
        visible_alias = "endpoint",
        value_name = "URL",
        conflicts_with = "after"
    )]
    pub api: Option<String>,

    /// File holding the API token (with --api; default: $SGSWITCH_API_TOKEN, else the
    /// token file `sgswitch run` created)
    #[arg(long, value_name = "FILE", requires = "api")]
    pub token_file: Option<PathBuf>,

    /// Deprecated: the API token itself (with --api; every local user sees it in `ps`)
    #[arg(long, value_name = "TOKEN", requires = "api", hide = true)]
    pub token: Option<String>,

    /// The port the frame arrives on (with --pcap: instead of the capture interface's name)
    #[arg(long, value_name = "PORT")]
    pub in_port: Option<String>,

    /// The packet, e.g. 'tcp 10.0.0.10:40000 > 10.0.0.11:22 flags S' (see --help)
    #[arg(
        value_name = "PACKET",
        conflicts_with = "pcap",
        required_unless_present = "pcap"
    )]
    pub packet: Option<String>,

    /// Trace a frame of this capture (pcap or pcapng) instead of a description
    #[arg(long, value_name = "FILE", requires = "frame")]
    pub pcap: Option<PathBuf>,

    /// With --pcap: the frame's number (1 is the first)
    #[arg(long, value_name = "N", requires = "pcap")]
    pub frame: Option<u64>,

    /// Source MAC of the described frame (default: the in-port's MAC)
    #[arg(long, value_name = "MAC", value_parser = parse_mac)]
    pub src_mac: Option<Mac>,

    /// Destination MAC of the described frame (default: the MAC of the port that has the destination address)
    #[arg(long, value_name = "MAC", value_parser = parse_mac)]
    pub dst_mac: Option<Mac>,

    /// Run PORT=PACKET through the pipeline first (repeatable, in order), so that the
    /// traced frame meets the connections it opened
    #[arg(long, value_name = "PORT=PACKET")]
    pub after: Vec<String>,

    /// Print the explanation as JSON
    #[arg(long)]
    pub json: bool,
}

/// `--help` of `sgswitch trace`.
pub const LONG_ABOUT: &str = "Explain one frame: run it through the very pipeline the \
switch runs (on a scratch copy: nothing is changed) and print every stage it passes — \
parse, port security, the sender's egress security groups, the L2 decision, each \
destination's ingress security groups — with what connection tracking said and created, \
and the rule that admitted it (group, rule index, the rule in Neutron's words) or the \
reason and place of the drop.\n\n\
The frame is a description, in the grammar `sgswitch replay` prints frames in:\n\
  tcp 10.0.0.10:40000 > 10.0.0.11:22 flags S     (flags: S F R P A U E W; default S)\n\
  tcp [fd00::a]:40000 > [fd00::b]:22\n\
  udp 10.0.0.10:4000 > 10.0.0.11:53\n\
  icmp 10.0.0.10 > 10.0.0.11 type 8 code 0        (or a name: echo-request)\n\
  icmp6 fd00::a > ff02::1:ff00:b neighbor-solicit target fd00::b\n\
  icmp 10.0.0.11 > 10.0.0.10 dest-unreachable code 3 for udp 10.0.0.10:4000 > 10.0.0.11:53\n\
  arp who-has 10.0.0.11 tell 10.0.0.10\n\
  vlan 100 tcp 10.0.0.10:1 > 10.0.0.11:2\n\
  udp 10.0.0.10:1 > 10.0.0.11:2 frag id 7 offset 0 more\n\
  ethertype 0x88cc\n\
or frame N of a capture (--pcap FILE --frame N; the pcapng interface name is the port). \
MACs default to the in-port's and to the MAC of the port that has the destination address \
(broadcast and multicast MACs for such addresses); --src-mac/--dst-mac override them.\n\n\
Connection tracking starts empty: a first packet is a new connection. --after PORT=PACKET \
runs packets before (e.g. the SYN, to trace the SYN-ACK as a reply).\n\n\
With --api URL instead of --config, the running switch judges the frame: its policy in \
force (Neutron ids of groups and rules included) and the live connection-tracking entries \
of the frame's flow, on a scratch copy: the switch's state is not changed.\n\n\
Exit codes: 0 the trace ran (delivered or dropped), 1 invalid input, 2 usage error.";

fn parse_mac(s: &str) -> Result<Mac, String> {
    s.parse()
        .map_err(|_| format!("'{s}' is not a MAC address (aa:bb:cc:dd:ee:ff)"))
}

/// Run `sgswitch trace`.
pub fn run(args: &TraceArgs) -> ExitCode {
    let result = match (&args.api, &args.config) {
        (Some(api), _) => trace_live(args, api),
        (None, Some(path)) => match load_or_report(path) {
            Ok(config) => trace(args, &config.model),
            Err(code) => return code,
        },
        (None, None) => Err("give --config FILE, or --api URL of a running switch".into()),
    };
    match result {
        Ok(out) => {
            print!("{out}");
            ExitCode::from(EXIT_OK)
        }
        Err(e) => {
            eprintln!("sgswitch: trace: {e}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}

/// The trace of a running switch (`POST /sgswitch/v1/trace`): its output, or what is
/// wrong.
fn trace_live(args: &TraceArgs, api: &str) -> Result<String, String> {
    let token = super::stats::client_token(args.token.as_deref(), args.token_file.as_deref())?;
    let client = Client::new(api, token).map_err(|e| e.to_string())?;
    let mut body = serde_json::Map::new();
    match (&args.pcap, args.frame, &args.packet) {
        (Some(path), Some(n), _) => {
            let (iface, frame) = capture_frame(path, n)?;
            let port = args.in_port.clone().or(iface).ok_or_else(|| {
                format!(
                    "{}: frame {n}'s interface has no name: give the port with --in-port",
                    path.display()
                )
            })?;
            let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
            body.insert("in_port".into(), json!(port));
            body.insert("frame".into(), json!(hex));
        }
        (_, _, Some(desc)) => {
            let port = args
                .in_port
                .clone()
                .ok_or("give the port the frame arrives on with --in-port")?;
            body.insert("in_port".into(), json!(port));
            body.insert("packet".into(), json!(desc));
            if let Some(m) = args.src_mac {
                body.insert("src_mac".into(), json!(m.to_string()));
            }
            if let Some(m) = args.dst_mac {
                body.insert("dst_mac".into(), json!(m.to_string()));
            }
        }
        _ => return Err("give a packet description, or --pcap FILE --frame N".into()),
    }
    let v = client
        .post("/sgswitch/v1/trace", &Value::Object(body))
        .map_err(|e| e.to_string())?;
    if args.json {
        let mut v = v;
        if let Value::Object(m) = &mut v {
            m.remove("text");
        }
        serde_json::to_string_pretty(&v)
            .map(|s| s + "\n")
            .map_err(|e| e.to_string())
    } else {
        Ok(v["text"].as_str().unwrap_or_default().to_string())
    }
}

/// The trace's output, or what is wrong with the input.
fn trace(args: &TraceArgs, model: &Model) -> Result<String, String> {
    let dp = Dataplane::compile(model, 1, &mut IdMap::default());
    let (port, frame) = match (&args.pcap, args.frame, &args.packet) {
        (Some(path), Some(n), _) => {
            let (iface, frame) = capture_frame(path, n)?;
            let port = args.in_port.clone().or(iface).ok_or_else(|| {
                format!(
                    "{}: frame {n}'s interface has no name: give the port with --in-port",
                    path.display()
                )
            })?;
            (port, frame)
        }
        (_, _, Some(desc)) => {
            let port = args
                .in_port
                .clone()
                .ok_or("give the port the frame arrives on with --in-port")?;
            let frame = packet::frame_for(model, &port, desc, args.src_mac, args.dst_mac)?;
            (port, frame)
        }
        _ => return Err("give a packet description, or --pcap FILE --frame N".into()),
    };
    let in_port = port_index(&dp, &port, "--in-port")?;
    let mut before = Vec::new();
    for a in &args.after {
        let (p, desc) = a
            .split_once('=')
            .ok_or_else(|| format!("--after '{a}': expected PORT=PACKET"))?;
        let i = port_index(&dp, p, "--after")?;
        let f = packet::frame_for(model, p, desc, None, None)
            .map_err(|e| format!("--after '{a}': {e}"))?;
        before.push((i, f));
    }
    let seed = explain::entries_after(&dp, model, &before);
    let e = explain::trace_frame(&dp, model, None, in_port, &frame, seed);
    if args.json {
        serde_json::to_string_pretty(&e)
            .map(|s| s + "\n")
            .map_err(|e| e.to_string())
    } else {
        Ok(e.text())
    }
}

fn port_index(dp: &Dataplane, name: &str, what: &str) -> Result<u16, String> {
    dp.port_index(name).ok_or_else(|| {
        let names: Vec<&str> = dp.ports.iter().map(|p| p.name.as_str()).collect();
        format!(
            "{what} {name}: no port has that name (ports: {})",
            names.join(", ")
        )
    })
}

/// Frame `n` (1-based) of a capture, with its interface's name.
fn capture_frame(path: &Path, n: u64) -> Result<(Option<String>, Vec<u8>), String> {
    let shown = path.display();
    if n == 0 {
        return Err("--frame: frames are numbered from 1".into());
    }
    let file = File::open(path).map_err(|e| format!("{shown}: cannot open: {e}"))?;
    let mut r = CaptureReader::new(BufReader::new(file)).map_err(|e| format!("{shown}: {e}"))?;
    let mut frame = Vec::new();
    let mut i = 0u64;
    while let Some(rec) = r
        .next_frame(&mut frame)
        .map_err(|e| format!("{shown}: {e}"))?
    {
        i += 1;
        if i == n {
            let Some(iface) = r.interfaces().get(rec.interface) else {
                return Err(format!(
                    "{shown}: frame {n} names an interface the capture lacks"
                ));
            };
            if iface.link_type != LINKTYPE_ETHERNET {
                return Err(format!(
                    "{shown}: frame {n} has link type {}; sgswitch takes Ethernet frames only (link type 1)",
                    iface.link_type
                ));
            }
            return Ok((iface.name.clone().filter(|s| !s.is_empty()), frame));
        }
    }
    Err(format!("{shown}: has {i} frames, there is no frame {n}"))
}
