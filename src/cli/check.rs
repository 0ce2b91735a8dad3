//! `sgswitch check`: validate a config file and print a summary of its model.
//!
//! Owns: the check command's arguments and its human summary ([`summary`]). May not
//! validate anything itself: `control::config` loads and validates, this only formats.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use sgswitch::control::config::Config;
use sgswitch::policy::Model;

use super::{load_or_report, EXIT_OK};

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

/// Run `sgswitch check`.
pub fn run(args: &CheckArgs) -> ExitCode {
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
            p.name, p.network, p.mac, ips
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
    use sgswitch::control::config;

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
