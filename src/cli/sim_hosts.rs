//! `sgswitch sim-hosts --store URL --hosts N [--ports-per-host K] [--scenario S]
//! [--duration SECS]`: N simulated host control planes in one process, for the scale-out
//! benchmarks (issue #18). The simulation and its scenarios are
//! [`sgswitch::control::shared::sim`]; this file is the command line and the store
//! clients: `--store mem` runs every host on one in-process store (a smoke test of the
//! agents, not a benchmark of etcd); `--store etcd://HOST:PORT[,...]` opens one etcd
//! client per simulated host.
//!
//! Owns: the command's flags and its output. May not touch: anything but the simulation
//! and the store clients it opens (it writes only under `--prefix`, which it clears).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use sgswitch::control::kv::{EtcdKv, EtcdOptions, Kv, KvError, MemKv};
use sgswitch::control::shared::sim::{self, Scenario, SimOptions};

use super::{EXIT_INVALID, EXIT_OK};

/// `sgswitch sim-hosts` flags.
#[derive(Args, Debug)]
pub struct SimHostsArgs {
    /// The store: `etcd://HOST:PORT[,HOST:PORT...]`, or `mem` (one in-process store)
    #[arg(long, value_name = "URL")]
    pub store: String,
    /// Simulated hosts
    #[arg(long, default_value_t = 10)]
    pub hosts: usize,
    /// Ports bound on each host
    #[arg(long, default_value_t = 2)]
    pub ports_per_host: usize,
    /// propagation | remote-group | churn | cold-start | member-join-compile | l2pop
    #[arg(long, default_value = "propagation")]
    pub scenario: String,
    /// Churn: how long (seconds); the other scenarios: at most this long for their changes
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Propagation and remote-group: how many changes (one at a time)
    #[arg(long, default_value_t = 50)]
    pub changes: usize,
    /// Remote-group: members of the remote group (also member-join-compile)
    #[arg(long, default_value_t = 10_000)]
    pub members: usize,
    /// Remote-group: hosts whose ports reference the remote group (default N/10)
    #[arg(long)]
    pub interested: Option<usize>,
    /// Churn: port creates+deletes a second
    #[arg(long, default_value_t = 100)]
    pub rate: u32,
    /// Member-join-compile: rules of the host model, comma separated
    #[arg(long, default_value = "1000,10000", value_delimiter = ',')]
    pub rules: Vec<usize>,
    /// Networks the hosts' ports are on (host h's on net{h % K}; default: each host its
    /// own, l2pop: 10)
    #[arg(long)]
    pub networks: Option<usize>,
    /// Do not compile the models (measure the control plane alone)
    #[arg(long)]
    pub no_compile: bool,
    /// Agents do not write status/HOST
    #[arg(long)]
    pub no_status: bool,
    /// Key prefix of the simulation (cleared first)
    #[arg(long, default_value = "/sgswitch-sim/")]
    pub prefix: String,
}

pub fn run(a: &SimHostsArgs) -> ExitCode {
    let Some(scenario) = Scenario::parse(&a.scenario) else {
        eprintln!("sim-hosts: unknown scenario {:?}", a.scenario);
        return ExitCode::from(EXIT_INVALID);
    };
    let o = SimOptions {
        hosts: a.hosts.max(1),
        ports_per_host: a.ports_per_host,
        scenario,
        duration: Duration::from_secs_f64(a.duration.max(0.0)),
        changes: a.changes,
        members: a.members,
        interested: a.interested,
        rate: a.rate,
        rules: a.rules.clone(),
        networks: a.networks,
        compile: !a.no_compile,
        write_status: !a.no_status,
        prefix: a.prefix.clone(),
    };
    let connect: ConnectFn = match a.store.as_str() {
        "mem" | "local" => {
            let mem = MemKv::new();
            Box::new(move |_| Ok(Arc::new(mem.clone()) as Arc<dyn Kv>))
        }
        url => match open_store(url) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("sim-hosts: --store {url}: {e}");
                return ExitCode::from(EXIT_INVALID);
            }
        },
    };
    match sim::run(connect.as_ref(), &o) {
        Ok(lines) => {
            for l in lines {
                println!("{l}");
            }
            ExitCode::from(EXIT_OK)
        }
        Err(e) => {
            eprintln!("sim-hosts: {e}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}

type ConnectFn = Box<dyn Fn(usize) -> Result<Arc<dyn Kv>, KvError> + Sync>;

fn open_store(url: &str) -> Result<ConnectFn, KvError> {
    let opts = EtcdOptions::from_url(url)?;
    // Fail early on a bad URL; each host then opens its own client.
    EtcdKv::connect(opts.clone())?;
    Ok(Box::new(move |_| {
        EtcdKv::connect(opts.clone()).map(|kv| Arc::new(kv) as Arc<dyn Kv>)
    }))
}
