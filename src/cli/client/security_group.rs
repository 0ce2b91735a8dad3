//! `sgswitch security-group …` and `sgswitch security-group rule …`: the clap commands
//! and their requests to the API.
//!
//! Owns: the group and rule commands' flags and the JSON bodies built from them. May not
//! validate a rule: the API answers with Neutron's checks and the command shows the answer.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use sgswitch::control::http_client::{Client, ClientError};

use super::output::{id_of, rule_table, show_group, table, text};
use super::{client, encode, fail, group_name_map, print_json, resolve, ClientOpts};
use crate::cli::EXIT_OK;

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
                print!("{}", rule_table(std::slice::from_ref(r), &names));
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
            print!("{}", rule_table(&rules, &names));
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
