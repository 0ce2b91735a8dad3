//! The `sgswitch` command line: the clap definition of every command ([`Cli`],
//! [`Command`]), the exit codes, and the dispatch to one module per command.
//!
//! Exit codes (stable, scripts rely on them):
//! * 0 — success;
//! * 1 — the input is invalid (config errors, unreadable file);
//! * 2 — usage error (unknown option, missing argument), as clap reports it.
//!
//! Each subcommand is a variant of [`Command`] with its own `Args` struct, defined in
//! the module that runs it, and a `run` function returning an [`ExitCode`]:
//! * [`check`] — `check`: validate a config, print its summary;
//! * [`replay`] — `replay`: a capture through the pipeline;
//! * [`mod@trace`] — `trace`: one frame through the pipeline, explained;
//! * [`mod@bench`] — `bench classify`;
//! * [`mod@run`] — `run`: the store, the live switch, the API, signals and reload;
//! * [`mod@api`] — `api --store`: the API alone, served from the shared store;
//! * [`store_args`] — the `--store` flags of `run`, `api` and `sim-hosts`;
//! * [`logging`] — the `tracing` subscriber of `run` (`--log`, `--log-format`);
//! * [`notify`] — `sd_notify` to systemd (READY, RELOADING, STOPPING) for `run`;
//! * [`export`] — `export`; [`reload`] — `reload` (through the API, SIGHUP as fallback;
//!   also the switch's reload and log-level hooks);
//! * [`status`] — `status` and `log-level` (API client);
//! * [`client`] — the API client commands (`security-group …`, `port …`);
//! * [`stats`], [`conntrack`], [`capture`] — what a running switch is doing, through its
//!   API: counters, connection tracking, live captures;
//! * [`soak`] — `soak`: a bounded soak of a live switch in a lab (#14);
//! * [`generate`] — `generate`: man pages and shell completions from this
//!   definition (#17);
//! * `crate::demo` — `demo` (its own module, beside this one).
//!
//! Owns: argument parsing, human output and exit codes. May not hold dataplane or
//! control-plane logic: every command calls the library (`sgswitch::…`) for the work and
//! only formats its answer; it is the top of the layering and nothing in the library
//! depends on it.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use sgswitch::control::config::{self, Config};

pub mod api;
#[cfg(feature = "bench")]
pub mod bench;
pub mod capture;
pub mod check;
pub mod client;
pub mod conntrack;
pub mod export;
pub mod generate;
pub mod logging;
pub mod notify;
pub mod reload;
pub mod replay;
pub mod run;
pub mod sim_hosts;
pub mod soak;
pub mod stats;
pub mod status;
pub mod store_args;
pub mod trace;

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
exit code is 1. A value stored normalised (a CIDR with host bits set, as Neutron stores it) is \
noted on stderr as `FILE:LINE: key.path: note: ...` (exit 0).\n\n\
`--explain KEY` describes one config key; `--explain-all` prints the whole reference \
(docs/configuration.md)."
    )]
    Check(check::CheckArgs),

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
    Replay(replay::ReplayArgs),

    /// Explain why one frame is delivered or dropped: every stage, the rule or the reason
    #[command(long_about = trace::LONG_ABOUT)]
    Trace(trace::TraceArgs),

    /// Benchmarks built into the binary (feature `bench`, on by default)
    #[cfg(feature = "bench")]
    #[command(subcommand)]
    Bench(bench::BenchCommand),

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
    Run(run::RunArgs),

    /// Serve the Neutron API from the shared store (etcd), without a switch
    #[command(
        long_about = "Serve the Neutron API from the shared store (--store etcd://HOST:PORT): \
every write is one etcd transaction with compare-and-swap, so several API servers never lose \
an update; reads answer from this server's cache of the prefix, and an answer is sent once \
that cache shows the write. ?wait=applied on a write waits until every live host applied it \
(504 naming the hosts that lag after wait_timeout=S, default 10 s). etcd unreachable: writes \
answer 503, reads serve the cache. A prefix written by another schema version is refused \
(exit 1). --config seeds an empty prefix."
    )]
    Api(api::ApiArgs),

    /// Build instances in network namespaces, run the switch on them, show what passes
    #[command(long_about = crate::demo::LONG_ABOUT)]
    Demo(crate::demo::DemoArgs),

    /// Write the current state (config + API changes in --state-dir) as a config file
    Export(export::ExportArgs),

    /// Make a running `sgswitch run` re-read its config file; exit 1 if the file is bad
    #[command(
        long_about = "Make a running `sgswitch run` re-read its config file and apply it as \
a whole (declarative mode): validate, compile, publish whole or nothing. Through its API \
(POST /sgswitch/v1/reload) when it answers, else SIGHUP. A bad config is printed here as \
the switch found it (FILE:LINE: key.path: message), the running policy stays, and the exit \
code is 1. --pid must name an `sgswitch run` process. When no API answers, the outcome is \
only in the switch's log (exit 0 once SIGHUP is sent)."
    )]
    Reload(reload::ReloadArgs),

    /// Ports, workers, policy epoch, readiness, uptime and version of a running switch (API client)
    Status(status::StatusArgs),

    /// Show or change the log level of a running switch (API client, needs the token)
    #[command(name = "log-level")]
    LogLevel(status::LogLevelArgs),

    // --- management API client commands (see the "API client commands" block) ---
    /// Manage security groups and their rules on a running switch (API client)
    #[command(subcommand, name = "security-group")]
    SecurityGroup(client::SecurityGroupCommand),

    /// Show ports and set their security groups on a running switch (API client)
    #[command(subcommand)]
    Port(client::PortCommand),

    /// Counters of a running switch: ports, drops by reason, workers, rule hits (API client)
    #[command(
        long_about = "Show the counters of a running switch, from its management API: per \
port (frames and bytes received and delivered, drops by reason), per worker (bursts, busy and \
idle polls, steered frames, connection tracking), the hits of each security-group rule (new \
connections it admitted; --rules also lists the rules without hits), connection-tracking \
totals and packet-log counters.\n\n\
--watch redraws the tables every second with rates (frames/s, drops/s) until Ctrl-C. \
--json prints the API's answer (GET /sgswitch/v1/stats). The same counters are served to \
Prometheus at GET /metrics."
    )]
    Stats(stats::StatsArgs),

    /// List or flush the connection-tracking entries of a running switch (API client)
    #[command(subcommand)]
    Conntrack(conntrack::ConntrackCommand),

    /// Capture the frames of a port of a running switch to a pcapng file (API client)
    #[command(
        long_about = "Capture the frames of one port of a running switch, like ovs-tcpdump, \
into a pcapng file (-w FILE, or -w - for standard output). Each frame carries a comment: \
rx, tx, or for a frame the switch dropped, the port, the drop reason and its description \
(Wireshark shows it as the packet comment). --dropped captures only the dropped frames.\n\n\
The capture runs until COUNT frames (-c), SECS seconds (--duration) or Ctrl-C; the file \
always ends with a whole block."
    )]
    Capture(capture::CaptureArgs),

    /// Soak a live switch in a lab (root): floods, fragments, rule churn, port faults, hostile API clients
    #[command(
        long_about = "Build five instances in network namespaces, run the switch on them \
and, for --duration, at once: SYN, UDP and fragment floods, an established TCP session, new \
connections, rule churn through the API, a port's veth deleted and re-created, idle and slow \
API clients. Reports every --every: RSS, conntrack entries per worker, drops by reason, API \
latency, the session's rate, fault cycles. Exit 0 when RSS stayed within --rss-growth-mb, \
the session never stalled and every fault cycle recovered; 1 otherwise."
    )]
    Soak(soak::SoakArgs),

    /// Simulate N host agents on a shared store and measure propagation (benchmarks of #18)
    #[command(
        long_about = "Run N simulated host control planes in one process, each with its own \
store client, lease, interest set and classifier compiler, on a null dataplane that records \
when each store revision was applied. Seeds the store under --prefix (cleared first), runs \
a scenario and prints the store, the cores, N, put -> applied percentiles, events per host \
and memory per simulated host.\n\n\
Scenarios: propagation (a rule change in a group every host uses), remote-group (members \
join a group referenced by a tenth of the hosts: the others must get no event), churn \
(--rate port creates+deletes a second for --duration), cold-start (all hosts applied), \
member-join-compile (no store: compile time before and after a member joins)."
    )]
    SimHosts(sim_hosts::SimHostsArgs),

    /// Write the man pages or the shell completions, generated from these definitions
    #[command(subcommand)]
    Generate(generate::GenerateCommand),
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Replay(args) => replay::run(&args),
        Command::Trace(args) => trace::run(&args),
        #[cfg(feature = "bench")]
        Command::Bench(bench::BenchCommand::Classify(args)) => bench::run_classify(&args),
        Command::Run(args) => run::run(&args),
        Command::Api(args) => api::run(&args),
        Command::Demo(args) => crate::demo::run(&args),
        Command::Export(args) => export::run(&args),
        Command::Reload(args) => reload::run(&args),
        Command::Status(args) => status::run(&args),
        Command::LogLevel(args) => status::run_log_level(&args),
        Command::SecurityGroup(cmd) => client::run_security_group(cmd),
        Command::Port(cmd) => client::run_port(cmd),
        Command::Stats(args) => stats::run(&args),
        Command::Conntrack(cmd) => conntrack::run(cmd),
        Command::Capture(args) => capture::run(&args),
        Command::Soak(args) => soak::run(&args),
        Command::SimHosts(args) => sim_hosts::run(&args),
        Command::Generate(cmd) => generate::run(&cmd),
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

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
        assert_eq!(a.config, Some(PathBuf::from("x.toml")));
    }
}
