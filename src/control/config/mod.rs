//! The TOML config file: the single declarative form of the model.
//!
//! ```toml
//! [switch]                      # optional
//! workers = 2                   # polling workers, 1..=1024 (default: one per core, at most one per port)
//! cores = [1]                   # CPUs the workers are pinned to (default: worker i on core i)
//! burst = 32                    # frames per burst, 1..=256 (default 32)
//! idle_backoff = true           # sleep a little when idle (default true)
//! napi_defer_us = 100           # NAPI moderation of afxdp/afpacket netdevs, µs, 0..=100000 (default 100, 0 = off)
//! new_flow_budget = "auto"      # new connections per full burst, 1..=burst | "auto" (burst / 4) | "off"
//! fair_share = true             # a saturated worker's fair share per opening port (default true)
//! permitted_ethertypes = [0x88cc, "0x8809"]   # non-IP/ARP ethertypes let through
//!
//! [conntrack]                   # optional; timeouts in seconds
//! capacity = 262144
//! tcp_syn = 120
//! tcp_established = 86400
//! tcp_fin = 120
//! tcp_close = 10
//! udp = 30
//! udp_stream = 120
//! icmp = 30
//! other = 600
//! fragment = 30
//! max_pending_fragments = 1024
//!
//! [[security_groups]]
//! name = "web"                  # unique; "default" is the default group
//! description = "..."           # optional
//! stateful = true               # default true
//! rules = [ { direction = "ingress", ethertype = "IPv4", protocol = "tcp",
//!             port_range_min = 80, port_range_max = 80, remote_ip_prefix = "0.0.0.0/0" },
//!           { direction = "ingress", protocol = "icmp", remote_group = "web" } ]
//!
//! [[address_groups]]
//! name = "office"
//! addresses = ["198.51.100.0/24"]
//!
//! [[networks]]                  # optional: networks beyond those of the ports
//! name = "spare"
//! vni = 1001                    # optional: overlay VNI 1..16777215 (default: from the name)
//! encap = "geneve"              # optional: geneve (default) | vxlan
//!
//! [[ports]]
//! name = "vm-a"
//! network = "net1"              # default "default"
//! mac = "fa:16:3e:00:00:0a"
//! fixed_ips = ["10.0.0.10", "fd00:1::a"]
//! security_groups = ["web"]     # omitted: ["default"] (none without port security)
//! port_security = true
//! allowed_address_pairs = [ { ip_address = "10.0.0.100/32", mac_address = "fa:16:3e:8c:84:13" } ]
//! backend = { type = "tap", ifname = "vm-a" }   # tap {ifname, netns?, vnet_hdr? (default true)},
//!                               # afxdp {ifname, queue?, mode?}, afpacket {ifname}
//!
//! [[logs]]                      # Neutron packet logging (resource type security_group)
//! name = "web-drops"            # optional, need not be unique
//! description = "..."           # optional
//! resource = "web"              # a security group; omitted: every group
//! target = "vm-a"               # a port (using `resource`, if given); omitted: every port
//! event = "DROP"                # ACCEPT | DROP | ALL (default ALL)
//! enabled = true                # default true
//!
//! [[hosts]]                     # overlay hosts (tunnel endpoints), this one included
//! name = "compute-1"            # ports[].host names it
//! vtep = "192.0.2.1"            # the host's underlay address
//! mac = "52:54:00:00:00:01"     # optional: the next hop's MAC (else the neighbour table)
//!
//! [overlay]                     # optional: this host in the overlay
//! host = "compute-1"            # this switch's host name: ports of other hosts are remote
//! vtep = "192.0.2.1"            # optional: the local VTEP (default: this host's [[hosts]] vtep)
//! underlay = { type = "afpacket", ifname = "eth1" }   # the underlay netdev
//!
//! [logging]                     # optional: the switch's own log level, and where and how
//!                               # fast packet-log records are written
//! level = "info"                # off|error|warn|info|debug|trace; `run --log` and RUST_LOG win
//! file = "/var/log/sgswitch/packets.log"   # omitted: stderr
//! rate_limit = 100              # records per second, >= 100 (Neutron's default and minimum)
//! burst_limit = 25              # records above the rate, >= 25 (Neutron's default and minimum)
//! ```
//!
//! # Loading
//! 1. The text is parsed into a span-carrying tree (`tree`, built with `toml_edit`); a TOML syntax
//!    error stops here (the TOML parser cannot go on past one).
//! 2. The tree is walked against the schema above: unknown keys (with a "did you mean"),
//!    wrong types and out-of-range switch settings are collected, and a
//!    [`ModelSpec`](crate::policy::spec::ModelSpec) is built whose lists keep the file's order and length.
//! 3. [`crate::policy::validate_model`] applies Neutron's rules and defaults. Its error
//!    paths (`security_groups[2].rules[0].port_range_min`) are the file's key paths, so
//!    each is mapped back to the line of the offending key (or of the nearest enclosing
//!    table when the key is absent). A policy error under a value that already had a
//!    type error is dropped (it would only repeat it).
//!
//! Every problem is reported, one `FILE:LINE: path: message` line each, in file order.
//!
//! # Layout
//! * this file: the types ([`Config`], [`SwitchSettings`], [`ConfigError`]), loading
//!   (steps 1 and 3 above) and the mapping of policy paths back to config keys and lines;
//! * `tree`: step 1, the document as a tree of values with spans (`toml_edit`);
//! * `read`: step 2, the schema walk (unknown keys, types, `[switch]` and `[logging]`
//!   ranges);
//! * `keys`: the key reference, one descriptor per key (type, default, range, meaning,
//!   example): the accepted keys of each table for `read`, `check --explain` and
//!   `docs/configuration.md`;
//! * `notes`: what a valid file wrote that the model stores normalised (host bits of a
//!   CIDR), for `check`'s notes;
//! * `suggest`: the "did you mean" of unknown keys;
//! * `write`: the export, [`to_toml_string`];
//! * `log_tests`: the tests of `[[logs]]` and `[logging]`;
//! * `overlay_tests`: the tests of `[[hosts]]`, `networks[].vni/encap` and `[overlay]`.
//!
//! # TOML library: `toml_edit`, not `toml`
//! Both directions use `toml_edit` directly: its parsed document (`tree`) keeps the
//! span of every value and table, which is what the line numbers need, and it writes the
//! export. `toml` 0.8 is only a serde layer over the same `toml_edit` parser, so
//! dropping it changes no syntax error, message or span, and removes two crates
//! (`toml`, `serde_spanned`). Measured on this machine (2 cores, `cargo build --release
//! --bin sgswitch` from an empty target directory, the two runs back to back on an idle
//! machine; before = tree over `toml`'s serde deserializer + hand-written writer):
//!
//! | | before | after |
//! |---|---:|---:|
//! | clean release build, wall | 70.7 s | 68.4 s |
//! | clean release build, CPU (user) | 116.1 s | 110.4 s |
//! | rebuild of the sgswitch crate only (touch) | 54.0 s | 53.4 s |
//! | crates compiled (rlibs) | 56 | 54 |
//! | `sgswitch` binary (release, `debug = 1`) | 28,192,784 B | 27,196,064 B |
//! | same, stripped | 3,403,840 B | 3,333,248 B (−2.1 %) |
//! | `.text` | 3,336,332 B | 3,265,116 B |
//!
//! (One earlier pair under other engineers' load, 1:59 and 2:27 wall, 114.6 and 118.7 s
//! CPU, shows how noisy wall time is here; the CPU times and sizes are the figures to
//! trust.) Nothing hand-written was kept: the old writer already used `toml`'s string
//! quoting, and the `toml_edit` one writes byte-identical files for the shipped configs.
//!
//! Step 3 also checks that a log naming both a group and a port names a port of that
//! group ([`crate::policy::validate::log_target_errors`]; a config file creates its
//! logs, and Neutron refuses such a log on creation).
//!
//! # Export
//! [`to_toml_string`] writes a [`Config`] back in this format with every default made
//! explicit (the `default` group, template rules, `security_groups`, `port_security`, a
//! log's `event` and `enabled`), so that `parse_str(&to_toml_string(&c), ..) == Ok(c)`.
//! The `[logging]` table is written only when it differs from the defaults: it says
//! where this host writes its packet log, which an exported model does not carry.
//!
//! Owns: the config file format (its keys, types and the ranges of the `[switch]`
//! settings), line-numbered errors, and the export. May not touch: Neutron's rules and
//! defaults (`policy::validate`'s), the store, or the running switch. Depends on
//! `policy` and on `port::napi`'s bounds for `napi_defer_us`; `store`, the CLI and the
//! test kit use it.
//!
//! Its `use crate::` lines name two more modules, both to its left in the layering: the
//! `[switch]` table is read into `runtime::switch::SwitchSettings` (re-exported here,
//! one type for the file, the CLI flags and the runtime), and `burst` is bounded by
//! `port::MAX_BURST`, the size of the ports' burst buffers. Nothing in this tree uses the
//! store, the API or the CLI.

use std::fmt;
use std::ops::Range;
use std::path::Path;

use crate::policy::validate::log_target_errors;
use crate::policy::{
    validate_model, FieldPath, Model, PathSeg, ValidationError, ValidationErrors, CONNTRACK_FIELDS,
};

pub mod keys;
#[cfg(test)]
mod log_tests;
mod notes;
#[cfg(test)]
mod overlay_tests;
mod read;
mod suggest;
mod tree;
mod write;

use tree::Node;

pub use notes::{notes, ConfigNote};
pub use write::to_toml_string;

/// The `[switch]` table is read into the live switch's own settings type (one type for
/// the file, the CLI flags and the runtime); see [`SwitchSettings`] for what 0 workers
/// means and where it is resolved.
pub use crate::runtime::switch::SwitchSettings;

/// The `[overlay]` table's host-local settings (the overlay module's type).
pub use crate::overlay::OverlaySettings;

/// Largest accepted number of workers.
pub const MAX_WORKERS: usize = 1024;
/// Largest CPU id `[switch] cores` accepts (Linux's default `NR_CPUS` ceiling is 8192).
pub const MAX_CORE_ID: u32 = 8191;
// Largest accepted burst size: the size of the ports' burst buffers (`read` checks
// `[switch] burst` against it).
use crate::port::MAX_BURST;

/// A loaded, validated config file.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Config {
    pub model: Model,
    /// The `[switch]` table (every other field at its default).
    pub switch: SwitchSettings,
    /// The `[logging]` table: where packet-log records go, how many per second.
    pub logging: LoggingSettings,
    /// The `[api]` table: the management API's token file.
    pub api: ApiSettings,
    /// The `[overlay]` table without its `host` (the model's `local_host`): the
    /// underlay and the local VTEP address.
    pub overlay: OverlaySettings,
}

/// The `[api]` table (`sgswitch run`'s flags override it).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct ApiSettings {
    /// The token file (`--api-token-file`); `None`: the default
    /// (`control::api::token::default_token_file`).
    pub token_file: Option<std::path::PathBuf>,
}

/// Neutron's minimum (and default) `rate_limit` of the packet log, records per second.
pub const MIN_RATE_LIMIT: u32 = 100;
/// Neutron's minimum (and default) `burst_limit` of the packet log, records.
pub const MIN_BURST_LIMIT: u32 = 25;
/// Largest accepted `rate_limit` and `burst_limit`.
pub const MAX_LOG_LIMIT: u32 = 1_000_000;

/// The `[logging]` table: the packet log's destination and rate limits (Neutron's
/// `[network_log]` options `rate_limit`, `burst_limit`, `local_output_log_base`). The
/// writer is `control::packet_log`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LoggingSettings {
    /// The level of the switch's own log (`sgswitch run`'s subscriber), lower case; `None`:
    /// not set (`--log` and `$RUST_LOG` win over it; the default is `info`).
    pub level: Option<String>,
    /// The file records are appended to; `None`: standard error.
    pub file: Option<std::path::PathBuf>,
    /// Records per second, across all workers (at least [`MIN_RATE_LIMIT`]).
    pub rate_limit: u32,
    /// Records allowed at once above the rate (at least [`MIN_BURST_LIMIT`]).
    pub burst_limit: u32,
}

impl LoggingSettings {
    /// The rate limits, as the pipelines and the writer take them.
    pub fn limits(&self) -> crate::pipeline::LogLimits {
        crate::pipeline::LogLimits {
            rate_limit: self.rate_limit,
            burst_limit: self.burst_limit,
        }
    }
}

impl Default for LoggingSettings {
    fn default() -> Self {
        LoggingSettings {
            level: None,
            file: None,
            rate_limit: MIN_RATE_LIMIT,
            burst_limit: MIN_BURST_LIMIT,
        }
    }
}

/// What kind of problem a [`ConfigError`] is.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ConfigErrorKind {
    /// The file could not be read.
    Io,
    /// The text is not valid TOML.
    Syntax,
    /// Unknown key, wrong type, or a switch setting out of range.
    Schema,
    /// The model breaks a Neutron rule.
    Invalid(Box<ValidationError>),
}

/// One problem in a config file.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub struct ConfigError {
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Key path of the offending value (`ports[1].mac`), when known.
    pub path: Option<String>,
    /// The full message (starting with the key path when there is one).
    pub message: String,
    pub kind: ConfigErrorKind,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Every problem found in a config file, in file order; displays one line each.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub struct ConfigErrors {
    pub errors: Vec<ConfigError>,
}

impl ConfigErrors {
    pub fn len(&self) -> usize {
        self.errors.len()
    }
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = &ConfigError> {
        self.errors.iter()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Read and validate a config file.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    let name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse_str(&text, &name),
        Err(e) => Err(ConfigErrors {
            errors: vec![ConfigError {
                file: name,
                line: None,
                path: None,
                message: format!("cannot read config file: {e}"),
                kind: ConfigErrorKind::Io,
            }],
        }),
    }
}

/// Parse and validate config text; `file_name` is used in messages.
pub fn parse_str(text: &str, file_name: &str) -> Result<Config, ConfigErrors> {
    let root = match tree::parse(text) {
        Ok(root) => root,
        Err(e) => {
            let line = e.span().map(|s| tree::line_of(text, s.start));
            return Err(ConfigErrors {
                errors: vec![ConfigError {
                    file: file_name.to_string(),
                    line,
                    path: None,
                    message: format!("TOML syntax error: {}", e.message().trim_end()),
                    kind: ConfigErrorKind::Syntax,
                }],
            });
        }
    };

    let mut walker = read::Walker::default();
    let (spec, switch, logging, api, overlay) = read::read_root(&mut walker, &root);

    // (line, error) pairs, sorted by line at the end.
    let mut errors: Vec<ConfigError> = Vec::new();
    let line_of = |span: Option<Range<usize>>| span.map(|s| tree::line_of(text, s.start));
    for p in &walker.problems {
        errors.push(ConfigError {
            file: file_name.to_string(),
            line: line_of(p.span.clone()),
            path: Some(p.path.to_string()),
            message: format!("{}: {}", p.path, p.message),
            kind: ConfigErrorKind::Schema,
        });
    }

    let validated = validate_model(&spec).and_then(|model| {
        let errors = log_target_errors(&model);
        match errors.is_empty() {
            true => Ok(model),
            false => Err(ValidationErrors(errors)),
        }
    });
    let model = match validated {
        Ok(model) => Some(model),
        Err(verrs) => {
            for mut v in verrs.into_vec() {
                v.path = config_path(&v.path);
                if walker.problems.iter().any(|p| v.path.starts_with(&p.path)) {
                    continue;
                }
                let span = node_at(&root, &v.path).line_span();
                errors.push(ConfigError {
                    file: file_name.to_string(),
                    line: line_of(span),
                    path: Some(v.path.to_string()),
                    message: v.to_string(),
                    kind: ConfigErrorKind::Invalid(Box::new(v)),
                });
            }
            None
        }
    };

    match model {
        Some(model) if errors.is_empty() => Ok(Config {
            model,
            switch,
            logging,
            api,
            overlay,
        }),
        _ => {
            errors.sort_by_key(|e| e.line.unwrap_or(0));
            Err(ConfigErrors { errors })
        }
    }
}

/// Translate a policy path (model field names) into a config key path.
fn config_path(path: &FieldPath) -> FieldPath {
    let segs = path.segments();
    let mut out = FieldPath::root();
    let mut rest = segs;
    match segs.first() {
        Some(PathSeg::Key(k)) if k == "local_host" => {
            out = out.key("overlay").key("host");
            rest = &segs[1..];
        }
        Some(PathSeg::Key(k)) if k == "permitted_ethertypes" => {
            out = out.key("switch").key("permitted_ethertypes");
            rest = &segs[1..];
        }
        Some(PathSeg::Key(k)) if k == "conntrack" => {
            out = out.key("conntrack");
            rest = &segs[1..];
            if let Some(PathSeg::Key(field)) = rest.first() {
                out = match CONNTRACK_FIELDS.iter().find(|f| f.field == field) {
                    Some(f) => out.key(f.key),
                    None => out.key(field.clone()),
                };
                rest = &rest[1..];
            }
        }
        _ => {}
    }
    for s in rest {
        out = match s {
            PathSeg::Key(k) => out.key(k.clone()),
            PathSeg::Index(i) => out.index(*i),
        };
    }
    out
}

/// The deepest node of `root` along `path`.
fn node_at<'n>(root: &'n Node, path: &FieldPath) -> &'n Node {
    let mut node = root;
    for seg in path.segments() {
        let next = match seg {
            PathSeg::Key(k) => node.get(k),
            PathSeg::Index(i) => node.at(*i),
        };
        match next {
            Some(n) => node = n,
            None => break,
        }
    }
    node
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{ConntrackSettings, ErrorClass, ErrorKind};

    pub(super) fn errors(text: &str) -> Vec<ConfigError> {
        match parse_str(text, "t.toml") {
            Ok(_) => panic!("config must be rejected:\n{text}"),
            Err(e) => e.errors,
        }
    }

    pub(super) fn lines(text: &str) -> Vec<String> {
        errors(text).iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn defaults() {
        let c = parse_str(
            "[[security_groups]]\nname = \"web\"\n[[ports]]\nname = \"a\"\nmac = \"fa:16:3e:00:00:01\"\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.switch, SwitchSettings::default());
        assert_eq!(c.model.conntrack, ConntrackSettings::default());
        assert_eq!(c.model.group("web").unwrap().rules.len(), 2);
        assert_eq!(c.model.group("default").unwrap().rules.len(), 4);
        let p = c.model.port("a").unwrap();
        assert_eq!(p.security_groups, vec!["default"]);
        assert_eq!(p.network, "default");
        assert!(p.port_security);
        assert_eq!(c.model.networks.len(), 1);
        // An empty file is a valid (empty) model.
        let c = parse_str("", "t.toml").unwrap();
        assert_eq!(c.model.security_groups.len(), 1);
    }

    #[test]
    fn settings_are_read() {
        let c = parse_str(
            "[switch]\nworkers = 4\nburst = 256\nidle_backoff = false\nnapi_defer_us = 200\npermitted_ethertypes = [\"0x88cc\", 34958, \"0X88B5\", \"35063\"]\n\
             [conntrack]\ncapacity = 1000\ntcp_syn = 1\ntcp_established = 2\ntcp_fin = 3\ntcp_close = 4\nudp = 5\nudp_stream = 6\nicmp = 7\nother = 8\nfragment = 9\nmax_pending_fragments = 10\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(
            c.switch,
            SwitchSettings {
                workers: 4,
                burst: 256,
                idle_backoff: false,
                napi_defer_us: 200,
                ..SwitchSettings::default()
            }
        );
        assert_eq!(
            c.model.permitted_ethertypes,
            vec![0x88cc, 0x888e, 0x88b5, 0x88f7]
        );
        let ct = &c.model.conntrack;
        assert_eq!(
            (
                ct.capacity,
                ct.tcp_syn_timeout,
                ct.tcp_established_timeout,
                ct.tcp_fin_timeout,
                ct.tcp_close_timeout,
                ct.udp_timeout,
                ct.udp_stream_timeout,
                ct.icmp_timeout,
                ct.other_timeout,
                ct.fragment_timeout,
                ct.max_pending_fragments
            ),
            (1000, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
        );
    }

    #[test]
    fn policy_errors_carry_file_line_and_path() {
        // Rules as an array of tables: every key on its own line.
        let text = "[[security_groups]]\nname = \"web\"\n[[security_groups.rules]]\ndirection = \"ingress\"\nprotocol = \"tcp\"\nport_range_min = 0\nport_range_max = 80\n";
        let errs = errors(text);
        assert_eq!(errs.len(), 1);
        let e = &errs[0];
        assert_eq!(e.line, Some(6));
        assert_eq!(
            e.path.as_deref(),
            Some("security_groups[0].rules[0].port_range_min")
        );
        assert!(e.to_string().starts_with(
            "t.toml:6: security_groups[0].rules[0].port_range_min (group \"web\", rule 0): invalid port 0"
        ), "{e}");
        match &e.kind {
            ConfigErrorKind::Invalid(v) => assert_eq!(v.class(), ErrorClass::BadRequest),
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn absent_keys_point_at_their_table() {
        // Missing mac: the line of the [[ports]] header.
        let errs = errors("\n\n[[ports]]\nname = \"a\"\n");
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].line, Some(3));
        assert!(errs[0]
            .message
            .contains("ports[0].mac (port \"a\"): missing required field"));
        // A rule without direction: the line of the inline table.
        let errs =
            errors("[[security_groups]]\nname = \"g\"\nrules = [\n\n { protocol = \"tcp\" } ]\n");
        assert_eq!(errs[0].line, Some(5));
        // Dotted-key (implicit) tables: the line of their first key.
        let errs = errors("[[ports]]\nname = \"a\"\nmac = \"fa:16:3e:00:00:01\"\nbackend.type = \"afxdp\"\nbackend.ifname = \"e\"\nbackend.mode = \"turbo\"\n");
        assert_eq!(errs[0].line, Some(6), "{:?}", errs[0]);
    }

    #[test]
    fn every_problem_in_file_order() {
        let text = r#"[[security_groups]]
name = "web"
rules = [ { direction = "sideways" } ]

[[ports]]
name = "a"
mac = "fa:16:3e:00:00:01"
security_groups = ["nope"]

[switch]
burst = 0

[conntrack]
udp = 0
"#;
        let l = lines(text);
        assert_eq!(l.len(), 4, "{l:#?}");
        assert!(
            l[0].starts_with("t.toml:3: security_groups[0].rules[0].direction"),
            "{}",
            l[0]
        );
        assert!(l[1].starts_with("t.toml:8: ports[0].security_groups[0] (port \"a\"): security group \"nope\" not found"), "{}", l[1]);
        assert!(
            l[2].starts_with("t.toml:11: switch.burst: 0 is out of range 1..=256"),
            "{}",
            l[2]
        );
        assert!(
            l[3].starts_with("t.toml:14: conntrack.udp: invalid value 0"),
            "{}",
            l[3]
        );
        let all = parse_str(text, "t.toml").unwrap_err();
        assert_eq!(all.to_string().lines().count(), 4);
    }

    #[test]
    fn unknown_keys_everywhere() {
        let text = r#"bogus = 1
[switch]
wrokers = 2
[conntrack]
tcp_synn = 1
[[networks]]
name = "n"
vlan = 5
[[security_groups]]
name = "g"
colour = "red"
rules = [ { direction = "ingress", port = 22 } ]
[[address_groups]]
name = "a"
address = ["10.0.0.0/8"]
[[ports]]
name = "p"
mac = "fa:16:3e:00:00:01"
fixed_ip = ["10.0.0.1"]
allowed_address_pairs = [ { ip_address = "10.0.0.5", mac = "fa:16:3e:00:00:02" } ]
backend = { type = "afpacket", ifname = "e", queue = 1 }
"#;
        let errs = errors(text);
        let got: Vec<(Option<usize>, String)> = errs
            .iter()
            .map(|e| (e.line, e.path.clone().unwrap_or_default()))
            .collect();
        assert_eq!(
            got,
            vec![
                (Some(1), "bogus".to_string()),
                (Some(3), "switch.wrokers".to_string()),
                (Some(5), "conntrack.tcp_synn".to_string()),
                (Some(8), "networks[0].vlan".to_string()),
                (Some(11), "security_groups[0].colour".to_string()),
                (Some(12), "security_groups[0].rules[0].port".to_string()),
                (Some(15), "address_groups[0].address".to_string()),
                (Some(19), "ports[0].fixed_ip".to_string()),
                (
                    Some(20),
                    "ports[0].allowed_address_pairs[0].mac".to_string()
                ),
                (Some(21), "ports[0].backend.queue".to_string()),
            ]
        );
        assert!(
            errs[1].message.contains("did you mean `workers`?"),
            "{}",
            errs[1].message
        );
        assert!(
            errs[9].message.contains("expected one of: type, ifname"),
            "{}",
            errs[9].message
        );
        assert!(errs.iter().all(|e| e.kind == ConfigErrorKind::Schema));
    }

    #[test]
    fn type_errors_are_reported_once() {
        let text = r#"[[security_groups]]
name = 5
stateful = "yes"
rules = [ { direction = "ingress", protocol = true, port_range_min = 1.5 }, "not a table" ]
[[ports]]
name = "p"
mac = 42
fixed_ips = "10.0.0.1"
security_groups = ["default", 7]
backend = { type = "vde", ifname = "x" }
"#;
        let l = lines(text);
        let expect = [
            "t.toml:2: security_groups[0].name: expected a string, found an integer",
            "t.toml:3: security_groups[0].stateful: expected a boolean (true or false), found a string",
            "t.toml:4: security_groups[0].rules[0].protocol: expected a string or an integer, found a boolean",
            "t.toml:4: security_groups[0].rules[0].port_range_min: expected a string or an integer, found a float",
            "t.toml:4: security_groups[0].rules[1]: expected a table, found a string",
            "t.toml:7: ports[0].mac: expected a string, found an integer",
            "t.toml:8: ports[0].fixed_ips: expected an array, found a string",
            "t.toml:9: ports[0].security_groups[1]: expected a string, found an integer",
            "t.toml:10: ports[0].backend.type: unknown backend type \"vde\": expected \"tap\", \"afxdp\" or \"afpacket\"",
        ];
        assert_eq!(l, expect);
    }

    #[test]
    fn wrong_shapes_at_the_top() {
        let l = lines("security_groups = 5\nports = [1]\nswitch = []\n");
        assert_eq!(
            l,
            vec![
                "t.toml:1: security_groups: expected an array, found an integer",
                "t.toml:2: ports[0]: expected a table, found an integer",
                "t.toml:3: switch: expected a table, found an array",
            ]
        );
    }

    #[test]
    fn syntax_errors() {
        let errs = errors("[[ports]]\nname = \"a\nmac = 1\n");
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].kind, ConfigErrorKind::Syntax);
        assert_eq!(errs[0].line, Some(2));
        assert!(
            errs[0]
                .to_string()
                .starts_with("t.toml:2: TOML syntax error"),
            "{}",
            errs[0]
        );
        // A key given twice is a syntax error too.
        let errs = errors("[switch]\nburst = 1\nburst = 2\n");
        assert_eq!(errs[0].kind, ConfigErrorKind::Syntax);
        assert_eq!(errs[0].line, Some(3));
    }

    #[test]
    fn flood_settings_are_read_exported_and_checked() {
        use crate::runtime::switch::{FloodSettings, NewFlowBudget};
        let c = parse_str("", "t.toml").unwrap();
        assert_eq!(c.switch.flood, FloodSettings::default());
        assert_eq!(c.switch.flood.new_flow_budget.per_burst(32), Some(8));
        for (text, budget, share) in [
            (
                "new_flow_budget = 4\nfair_share = false\n",
                NewFlowBudget::PerBurst(4),
                false,
            ),
            ("new_flow_budget = \"off\"\n", NewFlowBudget::Off, true),
            (
                "new_flow_budget = \"auto\"\nfair_share = true\n",
                NewFlowBudget::Auto,
                true,
            ),
            // Bounded by the burst, whatever the order of the keys.
            (
                "new_flow_budget = 64\nburst = 64\n",
                NewFlowBudget::PerBurst(64),
                true,
            ),
        ] {
            let c = parse_str(&format!("[switch]\n{text}"), "t.toml").unwrap();
            let want = FloodSettings {
                new_flow_budget: budget,
                fair_share: share,
            };
            assert_eq!(c.switch.flood, want, "{text}");
            let again = parse_str(&to_toml_string(&c), "t.toml").unwrap();
            assert_eq!(again.switch.flood, want, "export of {text}");
        }
        // Defaults are not written (older exports stay byte-identical).
        assert!(!to_toml_string(&c).contains("new_flow_budget"));
        let l = lines(
            "[switch]\nnew_flow_budget = 0\nfair_share = \"yes\"\n[conntrack]\n[[ports]]\nname = \"a\"\nmac = \"fa:16:3e:00:00:01\"\n",
        );
        assert_eq!(
            l,
            vec![
                "t.toml:2: switch.new_flow_budget: 0 is out of range 1..=32",
                "t.toml:3: switch.fair_share: expected a boolean (true or false), found a string",
            ]
        );
        let l = lines("[switch]\nburst = 16\nnew_flow_budget = 17\n");
        assert_eq!(
            l,
            vec!["t.toml:3: switch.new_flow_budget: 17 is out of range 1..=16"]
        );
        let l = lines("[switch]\n\nnew_flow_budget = \"none\"\n");
        assert_eq!(
            l,
            vec!["t.toml:3: switch.new_flow_budget: \"none\" is not a number of new connections per full burst, \"auto\" or \"off\""]
        );
        let l = lines("[switch]\nnew_flow_budget = 1.5\n");
        assert_eq!(
            l,
            vec!["t.toml:2: switch.new_flow_budget: expected a number of new connections per full burst, \"auto\" or \"off\", found a float"]
        );
    }

    #[test]
    fn cores_are_read_exported_and_checked() {
        let c = parse_str("[switch]\ncores = [1, 0]\n", "t.toml").unwrap();
        assert_eq!(c.switch.cores, vec![1, 0]);
        let again = parse_str(&to_toml_string(&c), "t.toml").unwrap();
        assert_eq!(again.switch.cores, vec![1, 0], "export");
        assert!(!to_toml_string(&parse_str("", "t.toml").unwrap()).contains("cores"));
        let l = lines("[switch]\ncores = [1, -1, 1, \"2\"]\n");
        assert_eq!(
            l,
            vec![
                "t.toml:2: switch.cores[1]: -1 is out of range 0..=8191",
                "t.toml:2: switch.cores[2]: core 1 is listed twice",
                "t.toml:2: switch.cores[3]: expected an integer, found a string",
            ]
        );
        // Whether this machine has the cores is checked when the switch starts.
        let mut s = c.switch.clone();
        s.cores = vec![usize::MAX];
        let e = s.check_cores().unwrap_err().to_string();
        assert!(
            e.starts_with("switch.cores: core 18446744073709551615 is not one"),
            "{e}"
        );
        s.no_pin = true;
        assert!(s.check_cores().is_ok(), "--no-pin: nothing to check");
        s.no_pin = false;
        s.cores = core_affinity::get_core_ids()
            .unwrap_or_default()
            .iter()
            .map(|c| c.id)
            .collect();
        assert!(s.check_cores().is_ok(), "{:?}", s.cores);
    }

    #[test]
    fn switch_ranges_and_ethertype_syntax() {
        let l = lines(
            "[switch]\nworkers = 0\nburst = 257\nidle_backoff = 1\npermitted_ethertypes = [\"0x1ffff\", \"lldp\", 70000, 1.0]\n",
        );
        assert_eq!(
            l,
            vec![
                "t.toml:2: switch.workers: 0 is out of range 1..=1024",
                "t.toml:3: switch.burst: 257 is out of range 1..=256",
                "t.toml:4: switch.idle_backoff: expected a boolean (true or false), found an integer",
                "t.toml:5: switch.permitted_ethertypes[0]: not an ethertype: expected 0x0600..0xffff, e.g. 0x88cc",
                "t.toml:5: switch.permitted_ethertypes[1]: not an ethertype: expected 0x0600..0xffff, e.g. 0x88cc",
                "t.toml:5: switch.permitted_ethertypes[2]: not an ethertype: expected 0x0600..0xffff, e.g. 0x88cc",
                "t.toml:5: switch.permitted_ethertypes[3]: expected an integer or a string like \"0x88cc\", found a float",
            ]
        );
        // Semantic ethertype errors come from the policy, with the config path.
        let errs = errors("[switch]\npermitted_ethertypes = [\"0x0806\"]\n");
        assert_eq!(
            errs[0].path.as_deref(),
            Some("switch.permitted_ethertypes[0]")
        );
        assert_eq!(errs[0].line, Some(2));
        let errs = errors("[conntrack]\ntcp_established = 0\nmax_pending_fragments = -1\n");
        assert_eq!(errs[0].path.as_deref(), Some("conntrack.tcp_established"));
        assert_eq!(
            errs[1].path.as_deref(),
            Some("conntrack.max_pending_fragments")
        );
    }

    #[test]
    fn neutron_classes_survive() {
        let errs = errors(
            "[[ports]]\nname = \"a\"\nmac = \"fa:16:3e:00:00:01\"\nsecurity_groups = [\"x\"]\n",
        );
        match &errs[0].kind {
            ConfigErrorKind::Invalid(v) => {
                assert_eq!(v.class(), ErrorClass::NotFound);
                assert_eq!(v.kind, ErrorKind::UnknownSecurityGroup("x".into()));
            }
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn unreadable_file() {
        let e = load_file(Path::new("/nonexistent/sgswitch.toml")).unwrap_err();
        assert_eq!(e.errors[0].kind, ConfigErrorKind::Io);
        assert!(e
            .to_string()
            .starts_with("/nonexistent/sgswitch.toml: cannot read config file"));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        const EXAMPLE: &str = include_str!("../../../configs/example.toml");

        proptest! {
            #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

            #[test]
            fn arbitrary_text_never_panics(text in ".{0,200}") {
                let _ = parse_str(&text, "x.toml");
            }

            #[test]
            fn mutated_example_never_panics(
                edits in prop::collection::vec((any::<prop::sample::Index>(), prop::sample::select(&["", "\"", "[", "]", "{", "}", "=", ",", "\n", "0", "x", "#", "-1", "99999999999999999999"][..])), 1..4),
            ) {
                let mut text = EXAMPLE.to_string();
                for (at, with) in edits {
                    let mut i = at.index(text.len());
                    while !text.is_char_boundary(i) {
                        i -= 1;
                    }
                    let end = (i + 1..=text.len()).find(|&e| text.is_char_boundary(e)).unwrap_or(i);
                    text.replace_range(i..end, with);
                }
                if let Err(e) = parse_str(&text, "m.toml") {
                    prop_assert!(!e.is_empty());
                    for err in e.iter() {
                        prop_assert!(err.to_string().starts_with("m.toml"));
                    }
                }
            }
        }
    }
}
