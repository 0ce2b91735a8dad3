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

    /// AF_XDP ports of a worker each get their own UMEM and frames are copied between them
    /// (default: they share one UMEM and frames move by descriptor)
    #[arg(long)]
    pub copy_forward: bool,

    /// Log level: error, warn, info, debug (default: $RUST_LOG or info)
    #[arg(long, value_name = "LEVEL")]
    pub log: Option<String>,
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
    use sgswitch::runtime::switch::{format_report, Switch, SwitchSettings};
    use std::sync::atomic::Ordering;
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
    let settings = SwitchSettings {
        workers: match (args.workers, config.switch.workers) {
            (Some(n), _) => usize::from(n),
            (None, 0) => {
                let cores = core_affinity::get_core_ids().map_or(1, |c| c.len());
                let ports = config
                    .model
                    .ports
                    .iter()
                    .filter(|p| p.backend.is_some())
                    .count();
                cores.min(ports).max(1)
            }
            (None, n) => n,
        },
        burst: config.switch.burst,
        idle_backoff: config.switch.idle_backoff && !args.busy_poll,
        cores: args.cores.clone(),
        no_pin: args.no_pin,
        shared_umem: !args.copy_forward,
    };
    install_signals();
    let switch = match Switch::start(&config.model, &settings) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sgswitch: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let with_backend = config
        .model
        .ports
        .iter()
        .filter(|p| p.backend.is_some())
        .count();
    eprintln!(
        "sgswitch: ready ({} ports, {with_backend} with a backend, {} worker{}, policy epoch {})",
        config.model.ports.len(),
        settings.workers,
        if settings.workers == 1 { "" } else { "s" },
        switch.epoch()
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
                Ok(new) => match switch.apply(&new.model) {
                    Ok(epoch) => log(Level::Warn, &format!("reloaded (policy epoch {epoch})")),
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
    let report = switch.shutdown();
    eprint!("{}", format_report(&report));
    ExitCode::from(EXIT_OK)
}
