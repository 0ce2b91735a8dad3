//! `sgswitch check`: validate a config file and print a summary of its model; its notes
//! (values Neutron would normalise, `FILE:LINE: key.path: note: ...` on stderr, exit 0);
//! `--verbose` (every group's normalised rules) and `--json` (the normalised model);
//! `--explain KEY` / `--explain-all` (the configuration reference, see
//! `control::config::keys`; `--explain-all` is `docs/configuration.md`).
//!
//! Owns: the check command's arguments and its output ([`summary`], [`rules_text`],
//! [`model_json`]). May not validate or describe anything itself: `control::config`
//! loads, validates, finds the notes and holds the key reference; this only formats.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use serde_json::{json, Value};

use sgswitch::control::config::{self, keys, Config};
use sgswitch::policy::protocol::protocol_name;
use sgswitch::policy::{Backend, Direction, Model, Remote, Rule, CONNTRACK_FIELDS};

use super::{load_or_report, EXIT_INVALID, EXIT_OK};

/// Arguments of `sgswitch check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The TOML config file to validate
    #[arg(
        short,
        long,
        value_name = "FILE",
        required_unless_present_any = ["explain", "explain_all"]
    )]
    pub config: Option<PathBuf>,

    /// Print nothing on success (only the exit code tells; notes still go to stderr)
    #[arg(short, long)]
    pub quiet: bool,

    /// Also list every group's rules as the model stores them (normalised)
    #[arg(short, long, conflicts_with = "json")]
    pub verbose: bool,

    /// Print the normalised model (groups, rules, address groups, networks, ports) as JSON
    #[arg(long)]
    pub json: bool,

    /// Describe one config key (type, default, values, meaning, example), e.g.
    /// `switch.napi_defer_us`, `ports.backend.netns` or a bare key such as `workers`
    #[arg(long, value_name = "KEY", conflicts_with = "explain_all")]
    pub explain: Option<String>,

    /// Print the whole configuration reference (Markdown: docs/configuration.md)
    #[arg(long)]
    pub explain_all: bool,
}

/// Run `sgswitch check`.
pub fn run(args: &CheckArgs) -> ExitCode {
    if args.explain_all {
        print!("{}", keys::markdown());
        return ExitCode::from(EXIT_OK);
    }
    if let Some(key) = &args.explain {
        return match keys::lookup(key) {
            Ok(d) => {
                print!("{}", keys::explain(d));
                ExitCode::from(EXIT_OK)
            }
            Err(msg) => {
                eprintln!("{msg}");
                ExitCode::from(EXIT_INVALID)
            }
        };
    }
    let Some(path) = &args.config else {
        return ExitCode::from(EXIT_INVALID);
    };
    match load_or_report(path) {
        Err(code) => code,
        Ok(config) => {
            let file = path.display().to_string();
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let notes = config::notes(&text, &file);
            for n in &notes {
                eprintln!("{n}");
            }
            if args.json {
                let mut v = model_json(&config);
                v["file"] = json!(file);
                v["notes"] = json!(notes.iter().map(|n| n.to_string()).collect::<Vec<_>>());
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else if !args.quiet {
                print!("{}", summary(&file, &config));
                if args.verbose {
                    print!("{}", rules_text(&config.model));
                }
            }
            ExitCode::from(EXIT_OK)
        }
    }
}

/// A rule as the model stores it, on one line: `ingress IPv4 tcp 80-80 from 10.0.0.0/24`.
pub fn rule_line(r: &Rule) -> String {
    let mut s = format!("{:7} {}", r.direction.as_str(), r.ethertype.as_str());
    match r.neutron_protocol() {
        None => s.push_str(" any"),
        Some(n) => {
            let _ = write!(
                s,
                " {}",
                protocol_name(n).map_or(n.to_string(), str::to_string)
            );
        }
    }
    match (r.port_range_min, r.port_range_max) {
        (None, None) => {}
        (Some(a), Some(b)) => {
            let _ = write!(s, " {a}-{b}");
        }
        (Some(a), None) => {
            let _ = write!(s, " {a}");
        }
        (None, Some(b)) => {
            let _ = write!(s, " -{b}");
        }
    }
    let side = match r.direction {
        Direction::Ingress => "from",
        Direction::Egress => "to",
    };
    match &r.remote {
        Remote::Any => {}
        Remote::Prefix(net) => {
            let _ = write!(s, " {side} {net}");
        }
        Remote::Group(g) => {
            let _ = write!(s, " {side} group {g}");
        }
        Remote::AddressGroup(g) => {
            let _ = write!(s, " {side} address group {g}");
        }
    }
    if !r.description.is_empty() {
        let _ = write!(s, "  ({})", r.description);
    }
    s
}

/// `--verbose`: every group's rules, normalised (defaults and template rules included).
pub fn rules_text(m: &Model) -> String {
    let mut out = String::from("rules:\n");
    for g in &m.security_groups {
        let _ = writeln!(out, "  {}:", g.name);
        if g.rules.is_empty() {
            let _ = writeln!(out, "    (no rule)");
        }
        for (i, r) in g.rules.iter().enumerate() {
            let _ = writeln!(out, "    [{i}] {}", rule_line(r));
        }
    }
    out
}

fn rule_json(r: &Rule) -> Value {
    let (prefix, group, agroup) = match &r.remote {
        Remote::Any => (None, None, None),
        Remote::Prefix(n) => (Some(n.to_string()), None, None),
        Remote::Group(g) => (None, Some(g.clone()), None),
        Remote::AddressGroup(g) => (None, None, Some(g.clone())),
    };
    json!({
        "direction": r.direction.as_str(),
        "ethertype": r.ethertype.as_str(),
        "protocol": r.neutron_protocol().map(|n| protocol_name(n).map_or(n.to_string(), str::to_string)),
        "port_range_min": r.port_range_min,
        "port_range_max": r.port_range_max,
        "remote_ip_prefix": prefix,
        "remote_group": group,
        "remote_address_group": agroup,
        "description": r.description,
    })
}

fn backend_json(b: &Backend) -> Value {
    match b {
        Backend::Tap {
            ifname,
            netns,
            vnet_hdr,
            queues,
            ..
        } => {
            json!({"type": "tap", "ifname": ifname, "netns": netns, "vnet_hdr": vnet_hdr, "queues": queues})
        }
        Backend::AfXdp {
            ifname,
            queue,
            mode,
        } => json!({"type": "afxdp", "ifname": ifname, "queue": queue,
                    "mode": mode.map(|m| m.as_str())}),
        Backend::AfPacket { ifname } => json!({"type": "afpacket", "ifname": ifname}),
    }
}

/// `--json`: the normalised model (every default explicit) and the switch settings.
pub fn model_json(config: &Config) -> Value {
    let m = &config.model;
    let groups: Vec<Value> = m
        .security_groups
        .iter()
        .map(|g| {
            json!({
                "name": g.name,
                "description": g.description,
                "stateful": g.stateful,
                "rules": g.rules.iter().map(rule_json).collect::<Vec<_>>(),
                "ports": m.ports_in_group(&g.name).map(|p| p.name.clone()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let address_groups: Vec<Value> = m
        .address_groups
        .iter()
        .map(|a| {
            json!({
                "name": a.name,
                "description": a.description,
                "addresses": a.addresses.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let networks: Vec<Value> = m
        .networks
        .iter()
        .map(|n| {
            let ports: Vec<&str> = m
                .ports
                .iter()
                .filter(|p| p.network == n.name)
                .map(|p| p.name.as_str())
                .collect();
            json!({"name": n.name, "ports": ports})
        })
        .collect();
    let ports: Vec<Value> = m
        .ports
        .iter()
        .map(|p| {
            let (ingress, egress) = m.effective_rule_counts(p);
            json!({
                "name": p.name,
                "network": p.network,
                "mac": p.mac.to_string(),
                "fixed_ips": p.fixed_ips.iter().map(|ip| ip.to_string()).collect::<Vec<_>>(),
                "security_groups": p.security_groups,
                "port_security": p.port_security,
                "allowed_address_pairs": p.allowed_address_pairs.iter().map(|a| json!({
                    "ip_address": a.ip_address.to_string(),
                    "mac_address": a.mac_address.unwrap_or(p.mac).to_string(),
                })).collect::<Vec<_>>(),
                "backend": p.backend.as_ref().map(backend_json),
                "effective_rules": if p.port_security {
                    json!({"ingress": ingress, "egress": egress})
                } else {
                    Value::Null
                },
            })
        })
        .collect();
    json!({
        "security_groups": groups,
        "address_groups": address_groups,
        "networks": networks,
        "ports": ports,
        "switch": {
            "workers": config.switch.workers,
            "cores": config.switch.cores,
            "burst": config.switch.burst,
            "idle_backoff": config.switch.idle_backoff,
            "napi_defer_us": config.switch.napi_defer_us,
            "new_flow_budget": config.switch.flood.new_flow_budget.to_config(),
            "fair_share": config.switch.flood.fair_share,
        },
        "conntrack": CONNTRACK_FIELDS.iter().map(|f| (f.key.to_string(), json!((f.get)(&m.conntrack)))).collect::<serde_json::Map<_, _>>(),
    })
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
