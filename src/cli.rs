//! The `sgswitch` command line: clap derive definitions, human output, exit codes.
//!
//! Exit codes (stable, scripts rely on them):
//! * 0 — success;
//! * 1 — the input is invalid (config errors, unreadable file);
//! * 2 — usage error (unknown option, missing argument), as clap reports it.
//!
//! Each subcommand is a variant of [`Command`] with its own `Args` struct and a `run_*`
//! function returning an [`ExitCode`]; new subcommands (`replay`, `bench`, `run`,
//! `export`) are added the same way beside `check`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use sgswitch::control::config::{self, Config};
use sgswitch::policy::validate::format_mac;
use sgswitch::policy::Model;

/// Exit code for success.
pub const EXIT_OK: u8 = 0;
/// Exit code for invalid input (config errors, unreadable files).
pub const EXIT_INVALID: u8 = 1;
/// Exit code for usage errors (clap's own).
pub const EXIT_USAGE: u8 = 2;

/// A userspace virtual switch that enforces OpenStack Neutron security groups.
#[derive(Parser, Debug)]
#[command(
    name = "sgswitch",
    version,
    propagate_version = true,
    about = "A userspace virtual switch that enforces OpenStack Neutron security groups",
    long_about = "sgswitch switches Ethernet frames between ports (tap, AF_XDP, AF_PACKET) and \
enforces OpenStack Neutron security groups on them, statefully, with connection tracking.\n\n\
The model — security groups and their rules, address groups, ports and networks — is \
declared in one TOML config file (see configs/example.toml).\n\n\
Exit codes: 0 success, 1 invalid input, 2 usage error."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Validate a config file and print a summary of the model
    #[command(
        long_about = "Validate a config file with Neutron's rules and print a summary: \
security groups with their rule counts, address groups, networks, and each port with its \
network, MAC, IPs, groups and effective rule count (the rules of all its groups, ingress / \
egress).\n\n\
On error, every problem found is printed to stderr as `FILE:LINE: key.path: message`, and the \
exit code is 1."
    )]
    Check(CheckArgs),

    /// Replay a pcap/pcapng capture through the pipeline and print every frame's verdict
    #[command(
        long_about = "Replay a capture through the very same pipeline the live switch runs \
(parse, port security, egress security groups with connection tracking, L2, ingress security \
groups) and print, for every frame, the ports it is delivered to and the drops with their \
reasons.\n\n\
In pcapng, each interface's if_name is the name of the port the frames arrive on; for pcap, or \
interfaces without a name, --in-port names it. The capture's timestamps are the pipeline's \
clock, so connection timeouts are reproducible. --apply-at S=FILE replaces the whole config \
when the capture clock reaches S seconds after the first frame, through the same \
validate-compile-publish path a live reload uses; connections the new policy no longer \
allows are cut.\n\n\
Exit codes: 0 the replay ran to the end (however many frames were dropped); 1 invalid input \
(config, capture, unknown interface, or an --apply-at config that failed: the policy then \
stayed as it was); 2 usage error."
    )]
    Replay(ReplayArgs),

    /// Benchmarks built into the binary
    #[command(subcommand)]
    Bench(BenchCommand),

    /// Run the switch in the foreground on the ports of a config file
    #[command(
        long_about = "Run the switch: open every port of the config that has a `backend` \
(tap, afxdp, afpacket), start the polling workers, and switch frames through the pipeline \
until SIGINT/SIGTERM.\n\n\
Signals: SIGHUP re-reads the config file (validate, compile, publish whole or nothing; a bad \
config is reported and the running policy stays; ports added or removed are opened or \
closed); SIGUSR1 prints per-port counters; SIGINT/SIGTERM drain, close every port (detaching \
XDP programs), print the counters and exit 0.\n\n\
When every port is open, one line `sgswitch: ready ...` is printed on stderr. Errors opening \
a port name the port and the reason and exit 1 with nothing left attached.\n\n\
Instances in network namespaces behind veth ports send partial checksums: run \
`ethtool -K IF tx off` on their interface, or use tap ports with vnet_hdr = true."
    )]
    Run(RunArgs),

    /// Build instances in network namespaces, run the switch on them, show what passes
    #[command(long_about = crate::demo::LONG_ABOUT)]
    Demo(crate::demo::DemoArgs),

    /// Write the current state (config + API changes in --state-dir) as a config file
    Export(ExportArgs),

    /// Make a running `sgswitch run` re-read its config file (sends it SIGHUP)
    #[command(
        long_about = "Send SIGHUP to a running `sgswitch run`: it re-reads its config \
file and applies it as a whole (declarative mode): validate, compile, publish whole or \
nothing; a bad config is reported on the switch's stderr and the running policy stays."
    )]
    Reload(ReloadArgs),

    // --- management API client commands (see the "API client commands" block) ---
    /// Manage security groups and their rules on a running switch (API client)
    #[command(subcommand, name = "security-group")]
    SecurityGroup(client::SecurityGroupCommand),

    /// Show ports and set their security groups on a running switch (API client)
    #[command(subcommand)]
    Port(client::PortCommand),
}

/// Arguments of `sgswitch run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The TOML config file (re-read on SIGHUP)
    #[arg(short, long, value_name = "FILE")]
    pub config: PathBuf,

    /// Number of polling workers (overrides [switch] workers)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: Option<u16>,

    /// CPU cores to pin the workers to, e.g. `1` or `0,1` (default: cores 0, 1, ...)
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        conflicts_with = "no_pin"
    )]
    pub cores: Vec<usize>,

    /// Do not pin workers to cores
    #[arg(long)]
    pub no_pin: bool,

    /// Busy-poll even when idle (default: idle workers back off, see [switch] idle_backoff)
    #[arg(long)]
    pub busy_poll: bool,

    /// NAPI moderation of the AF_XDP / AF_PACKET ports' netdevs in microseconds, 0 = off
    /// (default: [switch] napi_defer_us, 100)
    /// (overrides [switch] napi_defer_us; see README "NAPI moderation")
    #[arg(long, value_name = "US", value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub napi_defer_us: Option<u32>,

    /// AF_XDP ports of a worker each get their own UMEM and frames are copied between them
    /// (default: they share one UMEM and frames move by descriptor)
    #[arg(long)]
    pub copy_forward: bool,

    /// Log level: error, warn, info, debug (default: $RUST_LOG or info)
    #[arg(long, value_name = "LEVEL")]
    pub log: Option<String>,

    /// Address of the management API (Neutron-compatible REST)
    #[arg(long, value_name = "ADDR", default_value = None)]
    pub api: Option<std::net::SocketAddr>,

    /// Token required in X-Auth-Token (mandatory when --api is not a loopback address)
    #[arg(long, value_name = "TOKEN")]
    pub api_token: Option<String>,

    /// Do not serve the management API
    #[arg(long, conflicts_with_all = ["api", "api_token"])]
    pub no_api: bool,

    /// Keep the state changed through the API here (state.json), so it survives restarts
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// Arguments of `sgswitch export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The config file the switch was started with (seeds the state on first launch)
    #[arg(short, long, value_name = "FILE")]
    pub config: PathBuf,

    /// The state directory of the switch (its state.json wins over the config's model)
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Write to FILE instead of standard output
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Arguments of `sgswitch reload`.
#[derive(Args, Debug)]
pub struct ReloadArgs {
    /// PID of the `sgswitch run` process (default: the only one running)
    #[arg(long, value_name = "PID")]
    pub pid: Option<i32>,
}

/// Arguments of `sgswitch replay`.
#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// The TOML config file the replay starts with
    #[arg(short, long, value_name = "FILE")]
    pub config: PathBuf,

    /// Port the frames arrive on, for pcap files and unnamed pcapng interfaces
    #[arg(long, value_name = "PORT")]
    pub in_port: Option<String>,

    /// Every frame arrives on --in-port, whatever its pcapng interface is named
    #[arg(long, requires = "in_port")]
    pub all_on_in_port: bool,

    /// Replace the config with FILE at S seconds after the first frame (repeatable; fractions allowed)
    #[arg(long = "apply-at", value_name = "SECONDS=FILE", value_parser = parse_apply_at)]
    pub apply_at: Vec<(f64, PathBuf)>,

    /// One JSON object per frame on stdout (the summary goes to stderr)
    #[arg(long)]
    pub json: bool,

    /// Write one pcap per port with what it would transmit, and dropped.pcapng
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,

    /// The capture to replay (pcap or pcapng)
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,
}

fn parse_apply_at(s: &str) -> Result<(f64, PathBuf), String> {
    let (t, f) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}': expected SECONDS=FILE, e.g. 2.5=new.toml"))?;
    let secs: f64 = t
        .trim()
        .parse()
        .map_err(|_| format!("'{t}' is not a number of seconds"))?;
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("'{t}': seconds must be a non-negative number"));
    }
    if f.is_empty() {
        return Err(format!("'{s}': missing FILE after '='"));
    }
    Ok((secs, PathBuf::from(f)))
}

/// `sgswitch bench ...`
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Classify a ClassBench trace with a ClassBench rule set compiled as security-group rules
    #[command(
        long_about = "Read a ClassBench rule file and trace in the format DPDK's \
dpdk-test-acl reads (rules `@SRC/LEN DST/LEN SPLO : SPHI DPLO : DPHI PROTO/MASK`, trace lines \
`0xSRC 0xDST SPORT DPORT PROTO`), compile the rules as one port's ingress security-group rules \
(the source prefix is the remote; the destination is the port itself and is ignored), classify \
the trace in bursts for about a second, and print lookups per second and cycles per lookup. A \
rule whose source-port range is not `0 : 65535` cannot be a security-group rule and is \
rejected.\n\n\
Without files, --generate N makes a deterministic N-rule set and trace."
    )]
    Classify(ClassifyArgs),
}

/// Arguments of `sgswitch bench classify`.
#[derive(Args, Debug)]
pub struct ClassifyArgs {
    /// ClassBench rule file
    #[arg(long, value_name = "RULES", requires = "trace")]
    pub classbench: Option<PathBuf>,
    /// ClassBench trace file
    #[arg(long, value_name = "TRACE", requires = "classbench")]
    pub trace: Option<PathBuf>,
    /// Generate N rules (and a 100,000-packet trace) instead of reading files
    #[arg(long, value_name = "N", conflicts_with = "classbench")]
    pub generate: Option<usize>,
    /// Write the generated rule and trace files to DIR (rules.txt, trace.txt)
    #[arg(long, value_name = "DIR", requires = "generate")]
    pub write: Option<PathBuf>,
    /// Keys per classify call
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub burst: u16,
    /// Also measure the linear (one rule after another) classifier
    #[arg(long)]
    pub linear: bool,
}

/// Arguments of `sgswitch check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The TOML config file to validate
    #[arg(short, long, value_name = "FILE")]
    pub config: PathBuf,

    /// Print nothing on success (only the exit code tells)
    #[arg(short, long)]
    pub quiet: bool,
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Check(args) => run_check(&args),
        Command::Replay(args) => run_replay(&args),
        Command::Bench(BenchCommand::Classify(args)) => run_bench_classify(&args),
        Command::Run(args) => run_switch(&args),
        Command::Demo(args) => crate::demo::run(&args),
        Command::Export(args) => run_export(&args),
        Command::Reload(args) => run_reload(&args),
        Command::SecurityGroup(cmd) => client::run_security_group(cmd),
        Command::Port(cmd) => client::run_port(cmd),
    }
}

/// Load a config file, or print every problem to stderr.
pub fn load_or_report(path: &std::path::Path) -> Result<Config, ExitCode> {
    match config::load_file(path) {
        Ok(c) => Ok(c),
        Err(errors) => {
            eprintln!("{errors}");
            let n = errors.len();
            eprintln!(
                "{}: {n} problem{} found",
                path.display(),
                if n == 1 { "" } else { "s" }
            );
            Err(ExitCode::from(EXIT_INVALID))
        }
    }
}

fn run_check(args: &CheckArgs) -> ExitCode {
    match load_or_report(&args.config) {
        Err(code) => code,
        Ok(config) => {
            if !args.quiet {
                print!("{}", summary(&args.config.display().to_string(), &config));
            }
            ExitCode::from(EXIT_OK)
        }
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The human summary printed by `check`.
pub fn summary(file: &str, config: &Config) -> String {
    let m: &Model = &config.model;
    let mut out = String::new();
    let _ = writeln!(out, "{file}: OK");

    let _ = writeln!(out, "security groups ({}):", m.security_groups.len());
    let w = m
        .security_groups
        .iter()
        .map(|g| g.name.len())
        .max()
        .unwrap_or(0);
    for g in &m.security_groups {
        let ingress = g
            .rules
            .iter()
            .filter(|r| r.direction == sgswitch::policy::Direction::Ingress)
            .count();
        let _ = writeln!(
            out,
            "  {:w$}  {:9}  {} ({ingress} ingress, {} egress), {}",
            g.name,
            if g.stateful { "stateful" } else { "stateless" },
            plural(g.rules.len(), "rule", "rules"),
            g.rules.len() - ingress,
            plural(m.ports_in_group(&g.name).count(), "port", "ports"),
        );
    }

    let _ = writeln!(out, "address groups ({}):", m.address_groups.len());
    let w = m
        .address_groups
        .iter()
        .map(|g| g.name.len())
        .max()
        .unwrap_or(0);
    for a in &m.address_groups {
        let list: Vec<String> = a.addresses.iter().map(|n| n.to_string()).collect();
        let _ = writeln!(
            out,
            "  {:w$}  {}: {}",
            a.name,
            plural(a.addresses.len(), "address", "addresses"),
            if list.is_empty() {
                "-".to_string()
            } else {
                list.join(", ")
            }
        );
    }

    let _ = writeln!(out, "networks ({}):", m.networks.len());
    let w = m.networks.iter().map(|n| n.name.len()).max().unwrap_or(0);
    for n in &m.networks {
        let count = m.ports.iter().filter(|p| p.network == n.name).count();
        let _ = writeln!(out, "  {:w$}  {}", n.name, plural(count, "port", "ports"));
    }

    let _ = writeln!(out, "ports ({}):", m.ports.len());
    let w = m.ports.iter().map(|p| p.name.len()).max().unwrap_or(0);
    for p in &m.ports {
        let ips: Vec<String> = p.fixed_ips.iter().map(|ip| ip.to_string()).collect();
        let ips = if ips.is_empty() {
            "-".to_string()
        } else {
            ips.join(",")
        };
        let _ = write!(
            out,
            "  {:w$}  network {}  mac {}  ips {}",
            p.name,
            p.network,
            format_mac(&p.mac),
            ips
        );
        if p.port_security {
            let (ingress, egress) = m.effective_rule_counts(p);
            let groups = if p.security_groups.is_empty() {
                "(none)".to_string()
            } else {
                p.security_groups.join(",")
            };
            let _ = write!(
                out,
                "  groups {groups}  rules {ingress} ingress / {egress} egress"
            );
            if !p.allowed_address_pairs.is_empty() {
                let _ = write!(
                    out,
                    "  {}",
                    plural(
                        p.allowed_address_pairs.len(),
                        "address pair",
                        "address pairs"
                    )
                );
            }
        } else {
            let _ = write!(out, "  port security off (no groups, no anti-spoofing)");
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(
        out,
        "switch: {}, burst {}, conntrack capacity {}",
        match config.switch.workers {
            0 => "workers: one per core (at most one per port)".to_string(),
            1 => "1 worker".to_string(),
            n => format!("{n} workers"),
        },
        config.switch.burst,
        m.conntrack.capacity
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn check_requires_config() {
        let e = Cli::try_parse_from(["sgswitch", "check"]).unwrap_err();
        assert_eq!(e.exit_code(), i32::from(EXIT_USAGE));
        let ok = Cli::try_parse_from(["sgswitch", "check", "--config", "x.toml"]).unwrap();
        let Command::Check(a) = ok.command else {
            panic!("parsed as another command");
        };
        assert_eq!(a.config, PathBuf::from("x.toml"));
    }

    #[test]
    fn summary_counts_effective_rules() {
        let text = r#"
[[security_groups]]
name = "web"
rules = [ { direction = "ingress", protocol = "tcp", port_range_min = 80, port_range_max = 80 } ]

[[ports]]
name = "vm"
mac = "fa:16:3e:00:00:01"
fixed_ips = ["10.0.0.1"]
security_groups = ["default", "web"]

[[ports]]
name = "rtr"
mac = "fa:16:3e:00:00:02"
port_security = false
"#;
        let c = config::parse_str(text, "t.toml").unwrap();
        let s = summary("t.toml", &c);
        assert!(
            s.contains("groups default,web  rules 3 ingress / 2 egress"),
            "{s}"
        );
        assert!(
            s.contains("rtr  network default  mac fa:16:3e:00:00:02  ips -  port security off"),
            "{s}"
        );
        assert!(
            s.contains("web      stateful   1 rule (1 ingress, 0 egress), 1 port"),
            "{s}"
        );
    }
}

fn run_replay(args: &ReplayArgs) -> ExitCode {
    use sgswitch::runtime::replay::{self, ReplayOptions};
    let config = match load_or_report(&args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let loader = |p: &std::path::Path| -> Result<Model, String> {
        config::load_file(p)
            .map(|c| c.model)
            .map_err(|e| format!("invalid config:\n{e}"))
    };
    let opts = ReplayOptions {
        input: args.input.clone(),
        in_port: args.in_port.clone(),
        force_in_port: args.all_on_in_port,
        apply_at: args.apply_at.clone(),
        json: args.json,
        out_dir: args.out_dir.clone(),
        loader: &loader,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let result = replay::run(&config.model, &opts, &mut out);
    drop(out);
    match result {
        Ok(summary) => {
            let r = if args.json {
                replay::print_summary(&summary, &mut std::io::stderr())
            } else {
                replay::print_summary(&summary, &mut std::io::stdout())
            };
            if let Err(e) = r {
                eprintln!("sgswitch: replay: {e}");
                return ExitCode::from(EXIT_INVALID);
            }
            if summary.failed_applies.is_empty() {
                ExitCode::from(EXIT_OK)
            } else {
                ExitCode::from(EXIT_INVALID)
            }
        }
        Err(e) => {
            eprintln!("sgswitch: replay: {e}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}

fn run_bench_classify(args: &ClassifyArgs) -> ExitCode {
    use sgswitch::classifier::{classbench, LinearPolicy};
    let loaded = match (&args.classbench, &args.trace, args.generate) {
        (Some(r), Some(t), _) => classbench::load(r, t).map_err(|e| e.to_string()),
        (_, _, Some(n)) => {
            let g = classbench::generate(n, 100_000, 42);
            if let Some(dir) = &args.write {
                let w = std::fs::create_dir_all(dir)
                    .and_then(|_| std::fs::write(dir.join("rules.txt"), &g.rules))
                    .and_then(|_| std::fs::write(dir.join("trace.txt"), &g.trace));
                if let Err(e) = w {
                    eprintln!("sgswitch: bench classify: {}: {e}", dir.display());
                    return ExitCode::from(EXIT_INVALID);
                }
            }
            classbench::parse_rules(&g.rules)
                .and_then(|r| Ok((r, classbench::parse_trace(&g.trace)?)))
                .map_err(|e| e.to_string())
        }
        _ => Err("give --classbench RULES --trace TRACE, or --generate N".to_string()),
    };
    let (rules, trace) = match loaded {
        Ok(x) => x,
        Err(e) => {
            eprintln!("sgswitch: bench classify: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let report = match classbench::run(&rules, &trace, args.burst as usize) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sgswitch: bench classify: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let show = |name: &str, r: &classbench::ClassbenchReport| {
        println!(
            "{name:9} rules {:>6}  trace {:>7}  burst {:>3}  {:>8.2} M lookups/s  {:>7} cycles/lookup  matched {}/{}",
            r.rules,
            r.trace_len,
            r.burst,
            r.lookups_per_sec / 1e6,
            r.cycles_per_lookup.map_or("-".to_string(), |c| format!("{c:.1}")),
            r.matched,
            r.trace_len
        );
    };
    println!("compile: {:.3} ms", report.compile_seconds * 1e3);
    show("compiled", &report);
    if args.linear {
        let model = match classbench::to_model(&rules) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("sgswitch: bench classify: {e}");
                return ExitCode::from(EXIT_INVALID);
            }
        };
        let lin = LinearPolicy::new(&model, 1);
        match classbench::measure(
            &lin,
            classbench::PORT,
            &trace,
            args.burst as usize,
            std::time::Duration::from_secs(1),
        ) {
            Ok(r) => show("linear", &r),
            Err(e) => eprintln!("sgswitch: bench classify: {e}"),
        }
    }
    ExitCode::from(EXIT_OK)
}

static SIG_HUP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static SIG_USR1: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static SIG_STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int) {
    use std::sync::atomic::Ordering;
    match sig {
        libc::SIGHUP => SIG_HUP.store(true, Ordering::SeqCst),
        libc::SIGUSR1 => SIG_USR1.store(true, Ordering::SeqCst),
        _ => SIG_STOP.store(true, Ordering::SeqCst),
    }
}

fn install_signals() {
    for sig in [libc::SIGHUP, libc::SIGUSR1, libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `on_signal` is an `extern "C"` function that only stores to atomics,
        // which is async-signal-safe; the handler stays valid for the process lifetime.
        unsafe {
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

fn log_level(arg: &Option<String>) -> Level {
    let v = arg
        .clone()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    match v.as_str() {
        "error" => Level::Error,
        "warn" | "warning" => Level::Warn,
        "debug" | "trace" => Level::Debug,
        _ => Level::Info,
    }
}

fn run_switch(args: &RunArgs) -> ExitCode {
    use sgswitch::control::api::{ApiServer, DEFAULT_ADDR};
    use sgswitch::control::store::Store;
    use sgswitch::runtime::switch::{format_report, Switch, SwitchSettings};
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    let level = log_level(&args.log);
    let log = |l: Level, msg: &str| {
        if l <= level {
            eprintln!("sgswitch: {msg}");
        }
    };
    let config = match load_or_report(&args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // The store is the authoritative state: the config seeds it on first launch; with
    // --state-dir, later launches start from the saved state (API changes survive).
    let store = match Store::open(args.state_dir.as_deref(), &config) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("sgswitch: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let model = store.model();
    let with_backend = model.ports.iter().filter(|p| p.backend.is_some()).count();
    let settings = SwitchSettings {
        workers: match (args.workers, config.switch.workers) {
            (Some(n), _) => usize::from(n),
            (None, 0) => {
                let cores = core_affinity::get_core_ids().map_or(1, |c| c.len());
                cores.min(with_backend).max(1)
            }
            (None, n) => n,
        },
        burst: config.switch.burst,
        idle_backoff: config.switch.idle_backoff && !args.busy_poll,
        cores: args.cores.clone(),
        no_pin: args.no_pin,
        shared_umem: !args.copy_forward,
        napi_defer_us: args.napi_defer_us.unwrap_or(config.switch.napi_defer_us),
    };
    install_signals();
    let switch = match Switch::start(&model, &settings) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("sgswitch: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let sw = switch.clone();
    store.set_apply_hook(Box::new(move |m| {
        sw.apply(m).map(|_| ()).map_err(|e| e.to_string())
    }));
    let api = if args.no_api {
        None
    } else {
        let addr = args
            .api
            .unwrap_or_else(|| DEFAULT_ADDR.parse().expect("valid default"));
        match ApiServer::start(addr, args.api_token.clone(), store.clone()) {
            Ok(h) => Some(h),
            Err(e) => {
                eprintln!("sgswitch: management API on {addr}: {e}");
                switch.shutdown();
                return ExitCode::from(EXIT_INVALID);
            }
        }
    };
    eprintln!(
        "sgswitch: ready ({} ports, {with_backend} with a backend, {} worker{}, policy epoch {}{})",
        model.ports.len(),
        settings.workers,
        if settings.workers == 1 { "" } else { "s" },
        switch.epoch(),
        match &api {
            Some(h) => format!(", API on http://{}", h.local_addr()),
            None => String::new(),
        }
    );
    while !SIG_STOP.load(Ordering::SeqCst) {
        std::thread::sleep(std::time::Duration::from_millis(20));
        if SIG_HUP.swap(false, Ordering::SeqCst) {
            log(
                Level::Info,
                &format!("SIGHUP: reloading {}", args.config.display()),
            );
            match config::load_file(&args.config) {
                Err(errors) => {
                    eprintln!("{errors}");
                    log(
                        Level::Error,
                        &format!(
                            "reload failed: {}: {} problem(s); the running policy is unchanged",
                            args.config.display(),
                            errors.len()
                        ),
                    );
                }
                Ok(new) => match store.replace_model(&new.model) {
                    Ok(()) => log(
                        Level::Warn,
                        &format!("reloaded (policy epoch {})", switch.epoch()),
                    ),
                    Err(e) => log(
                        Level::Error,
                        &format!("reload failed: {e}; the running policy is unchanged"),
                    ),
                },
            }
        }
        if SIG_USR1.swap(false, Ordering::SeqCst) {
            eprint!("{}", format_report(&switch.report()));
        }
    }
    log(Level::Info, "stopping");
    if let Some(h) = api {
        h.shutdown();
    }
    let report = switch.shutdown();
    eprint!("{}", format_report(&report));
    ExitCode::from(EXIT_OK)
}

// =====================================================================================
// API client commands: `sgswitch security-group …`, `sgswitch port …`.
// They talk HTTP to a running switch's management API (control::api) with the small
// client in control::http_client, mirroring the `openstack` verbs and flags.
// =====================================================================================
pub mod client {
    use std::fmt::Write as _;
    use std::process::ExitCode;

    use clap::{Args, Subcommand};
    use serde_json::{json, Value};

    use sgswitch::control::http_client::{Client, ClientError};

    use super::{EXIT_INVALID, EXIT_OK};

    /// Default API endpoint.
    pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:9696";

    /// Options every client command takes.
    #[derive(Args, Debug, Clone)]
    pub struct ClientOpts {
        /// API endpoint of the running switch
        #[arg(long, value_name = "URL", default_value = DEFAULT_ENDPOINT)]
        pub endpoint: String,
        /// API token (sent as X-Auth-Token)
        #[arg(long, value_name = "TOKEN")]
        pub token: Option<String>,
        /// Print the API's JSON instead of a table
        #[arg(long)]
        pub json: bool,
    }

    /// `sgswitch security-group …`
    #[derive(Subcommand, Debug)]
    pub enum SecurityGroupCommand {
        /// Create a security group (it gets the two egress rules)
        Create {
            /// Name of the new group
            name: String,
            /// Description
            #[arg(long)]
            description: Option<String>,
            /// Create a stateless group (no connection tracking)
            #[arg(long)]
            stateless: bool,
            #[command(flatten)]
            opts: ClientOpts,
        },
        /// List security groups
        List {
            #[command(flatten)]
            opts: ClientOpts,
        },
        /// Show a security group and its rules
        Show {
            /// Group name or id
            group: String,
            #[command(flatten)]
            opts: ClientOpts,
        },
        /// Delete security groups
        Delete {
            /// Group names or ids
            #[arg(required = true)]
            groups: Vec<String>,
            #[command(flatten)]
            opts: ClientOpts,
        },
        /// Manage security group rules
        #[command(subcommand)]
        Rule(RuleCommand),
    }

    /// `sgswitch security-group rule …`
    #[derive(Subcommand, Debug)]
    pub enum RuleCommand {
        /// Create a rule in a group
        Create(RuleCreateArgs),
        /// List rules (of one group, or all)
        List {
            /// Group name or id
            group: Option<String>,
            /// Only ingress rules
            #[arg(long, conflicts_with = "egress")]
            ingress: bool,
            /// Only egress rules
            #[arg(long)]
            egress: bool,
            #[command(flatten)]
            opts: ClientOpts,
        },
        /// Delete rules by id
        Delete {
            /// Rule ids
            #[arg(required = true)]
            rules: Vec<String>,
            #[command(flatten)]
            opts: ClientOpts,
        },
    }

    /// Arguments of `sgswitch security-group rule create`.
    #[derive(Args, Debug)]
    pub struct RuleCreateArgs {
        /// The group the rule is added to (name or id)
        pub group: String,
        /// Rule applies to incoming traffic (default)
        #[arg(long, conflicts_with = "egress")]
        pub ingress: bool,
        /// Rule applies to outgoing traffic
        #[arg(long)]
        pub egress: bool,
        /// IPv4 or IPv6 (default IPv4, or the family of --remote-ip)
        #[arg(long)]
        pub ethertype: Option<String>,
        /// IP protocol: a name (tcp, udp, icmp, ...), a number, or any (default)
        #[arg(long)]
        pub protocol: Option<String>,
        /// Destination port or range: 22 or 8000:8080 (tcp, udp, sctp, dccp, udplite)
        #[arg(long, value_name = "PORT-RANGE")]
        pub dst_port: Option<String>,
        /// ICMP type (icmp / ipv6-icmp)
        #[arg(long, conflicts_with = "dst_port")]
        pub icmp_type: Option<i64>,
        /// ICMP code (icmp / ipv6-icmp)
        #[arg(long, requires = "icmp_type")]
        pub icmp_code: Option<i64>,
        /// Remote IP prefix (source for ingress, destination for egress)
        #[arg(long, value_name = "CIDR", conflicts_with = "remote_group")]
        pub remote_ip: Option<String>,
        /// Remote security group (name or id)
        #[arg(long, value_name = "GROUP")]
        pub remote_group: Option<String>,
        /// Description
        #[arg(long)]
        pub description: Option<String>,
        #[command(flatten)]
        pub opts: ClientOpts,
    }

    /// `sgswitch port …`
    #[derive(Subcommand, Debug)]
    pub enum PortCommand {
        /// List ports
        List {
            #[command(flatten)]
            opts: ClientOpts,
        },
        /// Show a port
        Show {
            /// Port name or id
            port: String,
            #[command(flatten)]
            opts: ClientOpts,
        },
        /// Add security groups to a port (or replace them with --no-security-group first)
        Set {
            /// Port name or id
            port: String,
            /// Group to add (name or id; repeatable)
            #[arg(long = "security-group", value_name = "GROUP")]
            security_groups: Vec<String>,
            /// Remove every group first
            #[arg(long)]
            no_security_group: bool,
            #[command(flatten)]
            opts: ClientOpts,
        },
        /// Remove security groups from a port
        Unset {
            /// Port name or id
            port: String,
            /// Group to remove (name or id; repeatable)
            #[arg(long = "security-group", value_name = "GROUP", required = true)]
            security_groups: Vec<String>,
            #[command(flatten)]
            opts: ClientOpts,
        },
    }

    fn client(opts: &ClientOpts) -> Result<Client, ClientError> {
        Client::new(&opts.endpoint, opts.token.clone())
    }

    fn fail(e: impl std::fmt::Display) -> ExitCode {
        eprintln!("sgswitch: {e}");
        ExitCode::from(EXIT_INVALID)
    }

    /// Resolve a name or id of `collection` (`security-groups`, `ports`) to its object:
    /// `GET …/{x}`, then `GET …?name={x}` (what the openstack client does).
    fn resolve(c: &Client, collection: &str, key: &str, x: &str) -> Result<Value, String> {
        match c.get(&format!("/v2.0/{collection}/{}", encode(x))) {
            Ok(v) => return Ok(v[key].clone()),
            Err(ClientError::Status { status: 404, .. }) => {}
            Err(e) => return Err(e.to_string()),
        }
        let list = c
            .get(&format!("/v2.0/{collection}?name={}", encode(x)))
            .map_err(|e| e.to_string())?;
        let items = list[format!("{key}s")]
            .as_array()
            .cloned()
            .unwrap_or_default();
        match items.len() {
            1 => Ok(items[0].clone()),
            0 => Err(format!(
                "no {} named or with id {x:?}",
                key.replace('_', " ")
            )),
            n => Err(format!(
                "{n} {}s are named {x:?}; use the id",
                key.replace('_', " ")
            )),
        }
    }

    /// Percent-encode a path segment / query value.
    fn encode(s: &str) -> String {
        let mut out = String::new();
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                out.push(b as char);
            } else {
                let _ = write!(out, "%{b:02X}");
            }
        }
        out
    }

    fn id_of(v: &Value) -> String {
        v["id"].as_str().unwrap_or_default().to_string()
    }

    fn text(v: &Value) -> String {
        match v {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    /// A plain aligned table.
    fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
        let mut w: Vec<usize> = headers.iter().map(|h| h.len()).collect();
        for r in rows {
            for (i, c) in r.iter().enumerate() {
                if let Some(x) = w.get_mut(i) {
                    *x = (*x).max(c.chars().count());
                }
            }
        }
        let mut out = String::new();
        let line = |cells: &[String], out: &mut String| {
            let mut l = String::new();
            for (i, c) in cells.iter().enumerate() {
                if i > 0 {
                    l.push_str("  ");
                }
                let pad = w[i].saturating_sub(c.chars().count());
                l.push_str(c);
                l.push_str(&" ".repeat(pad));
            }
            out.push_str(l.trim_end());
            out.push('\n');
        };
        line(
            &headers.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
            &mut out,
        );
        line(
            &w.iter().map(|n| "-".repeat(*n)).collect::<Vec<_>>(),
            &mut out,
        );
        for r in rows {
            line(r, &mut out);
        }
        out
    }

    fn port_range(r: &Value) -> String {
        let proto = text(&r["protocol"]);
        let (min, max) = (&r["port_range_min"], &r["port_range_max"]);
        if proto == "icmp" || proto == "ipv6-icmp" {
            return match (min.as_u64(), max.as_u64()) {
                (None, _) => "any".into(),
                (Some(t), None) => format!("type {t}"),
                (Some(t), Some(c)) => format!("type {t} code {c}"),
            };
        }
        match (min.as_u64(), max.as_u64()) {
            (Some(a), Some(b)) if a == b => a.to_string(),
            (Some(a), Some(b)) => format!("{a}:{b}"),
            _ => "any".into(),
        }
    }

    fn rule_rows(rules: &[Value], group_names: &dyn Fn(&str) -> String) -> Vec<Vec<String>> {
        rules
            .iter()
            .map(|r| {
                let remote = if !r["remote_ip_prefix"].is_null() {
                    text(&r["remote_ip_prefix"])
                } else if let Some(g) = r["remote_group_id"].as_str() {
                    format!("group {}", group_names(g))
                } else if let Some(a) = r["remote_address_group_id"].as_str() {
                    format!("address group {a}")
                } else {
                    "any".into()
                };
                vec![
                    id_of(r),
                    group_names(r["security_group_id"].as_str().unwrap_or_default()),
                    text(&r["direction"]),
                    text(&r["ethertype"]),
                    if r["protocol"].is_null() {
                        "any".into()
                    } else {
                        text(&r["protocol"])
                    },
                    port_range(r),
                    remote,
                    text(&r["description"]),
                ]
            })
            .collect()
    }

    const RULE_HEADERS: &[&str] = &[
        "ID",
        "Group",
        "Direction",
        "Ethertype",
        "Protocol",
        "Ports",
        "Remote",
        "Description",
    ];

    /// id → name of every security group (for readable tables).
    fn group_name_map(c: &Client) -> Vec<(String, String)> {
        c.get("/v2.0/security-groups")
            .ok()
            .and_then(|v| v["security_groups"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|g| (id_of(g), text(&g["name"])))
            .collect()
    }

    fn print_json(v: &Value) {
        println!(
            "{}",
            serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
        );
    }

    fn show_group(g: &Value, names: &[(String, String)], json_out: bool) {
        if json_out {
            print_json(g);
            return;
        }
        let mut out = String::new();
        let _ = writeln!(out, "id:          {}", id_of(g));
        let _ = writeln!(out, "name:        {}", text(&g["name"]));
        let _ = writeln!(out, "description: {}", text(&g["description"]));
        let _ = writeln!(out, "stateful:    {}", text(&g["stateful"]));
        let _ = writeln!(out, "revision:    {}", text(&g["revision_number"]));
        let _ = writeln!(out, "updated_at:  {}", text(&g["updated_at"]));
        let rules = g["security_group_rules"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let _ = writeln!(out, "rules ({}):", rules.len());
        let lookup = |id: &str| {
            names
                .iter()
                .find(|(i, _)| i == id)
                .map(|(_, n)| n.clone())
                .unwrap_or_else(|| id.to_string())
        };
        out.push_str(&table(RULE_HEADERS, &rule_rows(&rules, &lookup)));
        print!("{out}");
    }

    /// Run `sgswitch security-group …`.
    pub fn run_security_group(cmd: SecurityGroupCommand) -> ExitCode {
        match security_group(cmd) {
            Ok(()) => ExitCode::from(EXIT_OK),
            Err(e) => fail(e),
        }
    }

    fn security_group(cmd: SecurityGroupCommand) -> Result<(), String> {
        let e = |e: ClientError| e.to_string();
        match cmd {
            SecurityGroupCommand::Create {
                name,
                description,
                stateless,
                opts,
            } => {
                let c = client(&opts).map_err(e)?;
                let mut body = json!({"name": name});
                if let Some(d) = description {
                    body["description"] = json!(d);
                }
                if stateless {
                    body["stateful"] = json!(false);
                }
                let v = c
                    .post("/v2.0/security-groups", &json!({ "security_group": body }))
                    .map_err(e)?;
                show_group(&v["security_group"], &group_name_map(&c), opts.json);
            }
            SecurityGroupCommand::List { opts } => {
                let c = client(&opts).map_err(e)?;
                let v = c.get("/v2.0/security-groups").map_err(e)?;
                if opts.json {
                    print_json(&v["security_groups"]);
                    return Ok(());
                }
                let rows: Vec<Vec<String>> = v["security_groups"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|g| {
                        vec![
                            id_of(g),
                            text(&g["name"]),
                            text(&g["description"]),
                            text(&g["stateful"]),
                            g["security_group_rules"]
                                .as_array()
                                .map_or(0, Vec::len)
                                .to_string(),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    table(&["ID", "Name", "Description", "Stateful", "Rules"], &rows)
                );
            }
            SecurityGroupCommand::Show { group, opts } => {
                let c = client(&opts).map_err(e)?;
                let g = resolve(&c, "security-groups", "security_group", &group)?;
                show_group(&g, &group_name_map(&c), opts.json);
            }
            SecurityGroupCommand::Delete { groups, opts } => {
                let c = client(&opts).map_err(e)?;
                for name in groups {
                    let g = resolve(&c, "security-groups", "security_group", &name)?;
                    c.delete(&format!("/v2.0/security-groups/{}", id_of(&g)))
                        .map_err(|err| format!("cannot delete {name}: {err}"))?;
                    if !opts.json {
                        println!("deleted security group {name} ({})", id_of(&g));
                    }
                }
            }
            SecurityGroupCommand::Rule(rc) => rule(rc)?,
        }
        Ok(())
    }

    /// The JSON rule of `rule create`'s flags (without security_group_id).
    fn rule_body(a: &RuleCreateArgs, c: &Client) -> Result<Value, String> {
        let mut r = json!({"direction": if a.egress { "egress" } else { "ingress" }});
        let v6 = a.remote_ip.as_deref().is_some_and(|ip| ip.contains(':'));
        match &a.ethertype {
            Some(et) => r["ethertype"] = json!(et),
            None if v6 => r["ethertype"] = json!("IPv6"),
            None => {}
        }
        if let Some(p) = &a.protocol {
            r["protocol"] = match p.parse::<i64>() {
                Ok(n) => json!(n),
                Err(_) => json!(p),
            };
        }
        if let Some(range) = &a.dst_port {
            let (lo, hi) = range.split_once(':').unwrap_or((range, range));
            let parse = |s: &str| {
                s.trim()
                    .parse::<i64>()
                    .map_err(|_| format!("--dst-port {range:?}: expected PORT or MIN:MAX"))
            };
            r["port_range_min"] = json!(parse(lo)?);
            r["port_range_max"] = json!(parse(hi)?);
        }
        if let Some(t) = a.icmp_type {
            r["port_range_min"] = json!(t);
        }
        if let Some(code) = a.icmp_code {
            r["port_range_max"] = json!(code);
        }
        if let Some(ip) = &a.remote_ip {
            r["remote_ip_prefix"] = json!(ip);
        }
        if let Some(g) = &a.remote_group {
            let g = resolve(c, "security-groups", "security_group", g)?;
            r["remote_group_id"] = json!(id_of(&g));
        }
        if let Some(d) = &a.description {
            r["description"] = json!(d);
        }
        Ok(r)
    }

    fn rule(cmd: RuleCommand) -> Result<(), String> {
        let e = |e: ClientError| e.to_string();
        match cmd {
            RuleCommand::Create(a) => {
                let c = client(&a.opts).map_err(e)?;
                let g = resolve(&c, "security-groups", "security_group", &a.group)?;
                let mut body = rule_body(&a, &c)?;
                body["security_group_id"] = json!(id_of(&g));
                let v = c
                    .post(
                        "/v2.0/security-group-rules",
                        &json!({ "security_group_rule": body }),
                    )
                    .map_err(e)?;
                let r = &v["security_group_rule"];
                if a.opts.json {
                    print_json(r);
                } else {
                    let names = group_name_map(&c);
                    let lookup = |id: &str| {
                        names
                            .iter()
                            .find(|(i, _)| i == id)
                            .map(|(_, n)| n.clone())
                            .unwrap_or_else(|| id.to_string())
                    };
                    print!(
                        "{}",
                        table(RULE_HEADERS, &rule_rows(std::slice::from_ref(r), &lookup))
                    );
                }
            }
            RuleCommand::List {
                group,
                ingress,
                egress,
                opts,
            } => {
                let c = client(&opts).map_err(e)?;
                let mut query = Vec::new();
                if let Some(g) = &group {
                    let g = resolve(&c, "security-groups", "security_group", g)?;
                    query.push(format!("security_group_id={}", id_of(&g)));
                }
                if ingress {
                    query.push("direction=ingress".into());
                }
                if egress {
                    query.push("direction=egress".into());
                }
                let path = if query.is_empty() {
                    "/v2.0/security-group-rules".to_string()
                } else {
                    format!("/v2.0/security-group-rules?{}", query.join("&"))
                };
                let v = c.get(&path).map_err(e)?;
                let rules = v["security_group_rules"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                if opts.json {
                    print_json(&Value::Array(rules));
                    return Ok(());
                }
                let names = group_name_map(&c);
                let lookup = |id: &str| {
                    names
                        .iter()
                        .find(|(i, _)| i == id)
                        .map(|(_, n)| n.clone())
                        .unwrap_or_else(|| id.to_string())
                };
                print!("{}", table(RULE_HEADERS, &rule_rows(&rules, &lookup)));
            }
            RuleCommand::Delete { rules, opts } => {
                let c = client(&opts).map_err(e)?;
                for id in rules {
                    c.delete(&format!("/v2.0/security-group-rules/{}", encode(&id)))
                        .map_err(|err| format!("cannot delete rule {id}: {err}"))?;
                    if !opts.json {
                        println!("deleted rule {id}");
                    }
                }
            }
        }
        Ok(())
    }

    fn port_row(p: &Value, names: &[(String, String)]) -> Vec<String> {
        let ips: Vec<String> = p["fixed_ips"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|f| text(&f["ip_address"]))
            .collect();
        let groups: Vec<String> = p["security_groups"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|g| {
                let id = text(g);
                names
                    .iter()
                    .find(|(i, _)| *i == id)
                    .map(|(_, n)| n.clone())
                    .unwrap_or(id)
            })
            .collect();
        vec![
            id_of(p),
            text(&p["name"]),
            text(&p["mac_address"]),
            ips.join(","),
            groups.join(","),
            text(&p["port_security_enabled"]),
            text(&p["status"]),
        ]
    }

    const PORT_HEADERS: &[&str] = &[
        "ID",
        "Name",
        "MAC",
        "Fixed IPs",
        "Security groups",
        "Port security",
        "Status",
    ];

    fn show_port(c: &Client, p: &Value, json_out: bool) {
        if json_out {
            print_json(p);
        } else {
            print!(
                "{}",
                table(PORT_HEADERS, &[port_row(p, &group_name_map(c))])
            );
        }
    }

    /// Run `sgswitch port …`.
    pub fn run_port(cmd: PortCommand) -> ExitCode {
        match port(cmd) {
            Ok(()) => ExitCode::from(EXIT_OK),
            Err(e) => fail(e),
        }
    }

    fn port(cmd: PortCommand) -> Result<(), String> {
        let e = |e: ClientError| e.to_string();
        match cmd {
            PortCommand::List { opts } => {
                let c = client(&opts).map_err(e)?;
                let v = c.get("/v2.0/ports").map_err(e)?;
                let ports = v["ports"].as_array().cloned().unwrap_or_default();
                if opts.json {
                    print_json(&Value::Array(ports));
                    return Ok(());
                }
                let names = group_name_map(&c);
                let rows: Vec<Vec<String>> = ports.iter().map(|p| port_row(p, &names)).collect();
                print!("{}", table(PORT_HEADERS, &rows));
            }
            PortCommand::Show { port, opts } => {
                let c = client(&opts).map_err(e)?;
                let p = resolve(&c, "ports", "port", &port)?;
                show_port(&c, &p, opts.json);
            }
            PortCommand::Set {
                port,
                security_groups,
                no_security_group,
                opts,
            } => {
                let c = client(&opts).map_err(e)?;
                let p = resolve(&c, "ports", "port", &port)?;
                let mut ids: Vec<String> = if no_security_group {
                    Vec::new()
                } else {
                    p["security_groups"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .iter()
                        .map(text)
                        .collect()
                };
                for g in &security_groups {
                    let id = id_of(&resolve(&c, "security-groups", "security_group", g)?);
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
                let v = c
                    .put(
                        &format!("/v2.0/ports/{}", id_of(&p)),
                        &json!({"port": {"security_groups": ids}}),
                    )
                    .map_err(e)?;
                show_port(&c, &v["port"], opts.json);
            }
            PortCommand::Unset {
                port,
                security_groups,
                opts,
            } => {
                let c = client(&opts).map_err(e)?;
                let p = resolve(&c, "ports", "port", &port)?;
                let mut ids: Vec<String> = p["security_groups"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(text)
                    .collect();
                for g in &security_groups {
                    let id = id_of(&resolve(&c, "security-groups", "security_group", g)?);
                    if !ids.contains(&id) {
                        return Err(format!("security group {g} is not set on port {port}"));
                    }
                    ids.retain(|x| *x != id);
                }
                let v = c
                    .put(
                        &format!("/v2.0/ports/{}", id_of(&p)),
                        &json!({"port": {"security_groups": ids}}),
                    )
                    .map_err(e)?;
                show_port(&c, &v["port"], opts.json);
            }
        }
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn table_aligns_columns() {
            let t = table(&["A", "Bee"], &[vec!["xyz".into(), "1".into()]]);
            assert_eq!(t, "A    Bee\n---  ---\nxyz  1\n");
        }

        #[test]
        fn port_ranges_display() {
            assert_eq!(
                port_range(&json!({"protocol": "tcp", "port_range_min": 22, "port_range_max": 22})),
                "22"
            );
            assert_eq!(
                port_range(&json!({"protocol": "tcp", "port_range_min": 1, "port_range_max": 9})),
                "1:9"
            );
            assert_eq!(
                port_range(
                    &json!({"protocol": "icmp", "port_range_min": 8, "port_range_max": null})
                ),
                "type 8"
            );
            assert_eq!(port_range(&json!({"protocol": null})), "any");
        }

        #[test]
        fn encoding() {
            assert_eq!(encode("a b/c"), "a%20b%2Fc");
        }
    }
}

fn run_export(args: &ExportArgs) -> ExitCode {
    use sgswitch::control::store::Store;
    let config = match load_or_report(&args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let exported = match Store::export_from(args.state_dir.as_deref(), &config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sgswitch: export: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let text = config::to_toml_string(&exported);
    match &args.output {
        Some(path) => {
            if let Err(e) = std::fs::write(path, text) {
                eprintln!("sgswitch: export: {}: {e}", path.display());
                return ExitCode::from(EXIT_INVALID);
            }
        }
        None => print!("{text}"),
    }
    ExitCode::from(EXIT_OK)
}

/// PIDs of running `sgswitch run` processes (other than this one).
fn running_switches() -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
        let is_sgs = args.first().is_some_and(|a| a.ends_with(b"sgswitch"));
        if is_sgs && args.get(1) == Some(&&b"run"[..]) {
            out.push(pid);
        }
    }
    out
}

fn run_reload(args: &ReloadArgs) -> ExitCode {
    let pid = match args.pid {
        Some(p) => p,
        None => match running_switches().as_slice() {
            [p] => *p,
            [] => {
                eprintln!("sgswitch: reload: no `sgswitch run` process found");
                return ExitCode::from(EXIT_INVALID);
            }
            many => {
                let list: Vec<String> = many.iter().map(|p| p.to_string()).collect();
                eprintln!(
                    "sgswitch: reload: several `sgswitch run` processes ({}); choose one with --pid",
                    list.join(", ")
                );
                return ExitCode::from(EXIT_INVALID);
            }
        },
    };
    // SAFETY: kill(2) with a plain signal number has no memory-safety preconditions.
    let rc = unsafe { libc::kill(pid, libc::SIGHUP) };
    if rc != 0 {
        eprintln!(
            "sgswitch: reload: cannot signal process {pid}: {}",
            std::io::Error::last_os_error()
        );
        return ExitCode::from(EXIT_INVALID);
    }
    println!("sent SIGHUP to sgswitch run (pid {pid}); it logs the outcome on its stderr");
    ExitCode::from(EXIT_OK)
}
