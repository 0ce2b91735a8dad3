//! The TOML config file: the single declarative form of the model.
//!
//! ```toml
//! [switch]                      # optional
//! workers = 2                   # polling workers, 1..=1024 (default: one per core, at most one per port)
//! burst = 32                    # frames per burst, 1..=256 (default 32)
//! idle_backoff = true           # sleep a little when idle (default true)
//! napi_defer_us = 100           # NAPI moderation of afxdp/afpacket netdevs, µs, 0..=100000 (default 100, 0 = off)
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
//!
//! [[ports]]
//! name = "vm-a"
//! network = "net1"              # default "default"
//! mac = "fa:16:3e:00:00:0a"
//! fixed_ips = ["10.0.0.10", "fd00:1::a"]
//! security_groups = ["web"]     # omitted: ["default"] (none without port security)
//! port_security = true
//! allowed_address_pairs = [ { ip_address = "10.0.0.100/32", mac_address = "fa:16:3e:8c:84:13" } ]
//! backend = { type = "tap", ifname = "vm-a" }   # tap {ifname, netns?, vnet_hdr?},
//!                               # afxdp {ifname, queue?, mode?}, afpacket {ifname}
//! ```
//!
//! # Loading
//! 1. The text is parsed into a span-carrying tree (module `control::toml_tree`); a TOML syntax
//!    error stops here (the TOML parser cannot go on past one).
//! 2. The tree is walked against the schema above: unknown keys (with a "did you mean"),
//!    wrong types and out-of-range switch settings are collected, and a
//!    [`ModelSpec`] is built whose lists keep the file's order and length.
//! 3. [`crate::policy::validate_model`] applies Neutron's rules and defaults. Its error
//!    paths (`security_groups[2].rules[0].port_range_min`) are the file's key paths, so
//!    each is mapped back to the line of the offending key (or of the nearest enclosing
//!    table when the key is absent). A policy error under a value that already had a
//!    type error is dropped (it would only repeat it).
//!
//! Every problem is reported, one `FILE:LINE: path: message` line each, in file order.
//!
//! # Export
//! [`to_toml_string`] writes a [`Config`] back in this format with every default made
//! explicit (the `default` group, template rules, `security_groups`, `port_security`),
//! so that `parse_str(&to_toml_string(&c), ..) == Ok(c)`.

use std::fmt::{self, Write as _};
use std::ops::Range;
use std::path::Path;

use crate::policy::protocol;
use crate::policy::spec::{
    AddressGroupSpec, AllowedAddressPairSpec, BackendSpec, ModelSpec, NetworkSpec, PortSpec,
    RuleSpec, Scalar, SecurityGroupSpec,
};
use crate::policy::validate::format_mac;
use crate::policy::{
    validate_model, Backend, ConntrackSettings, Direction, EtherType, FieldPath, Model, PathSeg,
    Remote, ValidationError,
};

use super::toml_tree::{self, Kind, Node};

/// Switch runtime settings from the `[switch]` table (the rest of the file is the
/// [`Model`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SwitchSettings {
    /// Number of polling workers; 0 = not set: one per core, at most one per port with a
    /// backend (decided when the switch starts).
    pub workers: usize,
    /// Frames per burst.
    pub burst: usize,
    /// Whether idle workers back off (sleep) instead of spinning.
    pub idle_backoff: bool,
    /// NAPI moderation (µs) set on the netdevs of AF_XDP and AF_PACKET ports while they
    /// are open (default 100); 0 = leave the devices alone (see `crate::port::napi`).
    pub napi_defer_us: u32,
}

impl Default for SwitchSettings {
    fn default() -> Self {
        SwitchSettings {
            workers: 0,
            burst: 32,
            idle_backoff: true,
            napi_defer_us: crate::port::napi::DEFAULT_DEFER_US,
        }
    }
}

/// Largest accepted number of workers.
pub const MAX_WORKERS: usize = 1024;
/// Largest accepted burst size.
pub const MAX_BURST: usize = 256;

/// A loaded, validated config file.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Config {
    pub model: Model,
    pub switch: SwitchSettings,
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
    let root = match toml_tree::parse(text) {
        Ok(root) => root,
        Err(e) => {
            let line = e.span().map(|s| toml_tree::line_of(text, s.start));
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

    let mut walker = Walker::default();
    let (spec, switch) = read_root(&mut walker, &root);

    // (line, error) pairs, sorted by line at the end.
    let mut errors: Vec<ConfigError> = Vec::new();
    let line_of = |span: Option<Range<usize>>| span.map(|s| toml_tree::line_of(text, s.start));
    for p in &walker.problems {
        errors.push(ConfigError {
            file: file_name.to_string(),
            line: line_of(p.span.clone()),
            path: Some(p.path.to_string()),
            message: format!("{}: {}", p.path, p.message),
            kind: ConfigErrorKind::Schema,
        });
    }

    let model = match validate_model(&spec) {
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
        Some(model) if errors.is_empty() => Ok(Config { model, switch }),
        _ => {
            errors.sort_by_key(|e| e.line.unwrap_or(0));
            Err(ConfigErrors { errors })
        }
    }
}

/// Config-file keys of the `[conntrack]` table and the [`ConntrackSettings`] fields
/// they set.
const CONNTRACK_KEYS: &[(&str, &str)] = &[
    ("capacity", "capacity"),
    ("tcp_syn", "tcp_syn_timeout"),
    ("tcp_established", "tcp_established_timeout"),
    ("tcp_fin", "tcp_fin_timeout"),
    ("tcp_close", "tcp_close_timeout"),
    ("udp", "udp_timeout"),
    ("udp_stream", "udp_stream_timeout"),
    ("icmp", "icmp_timeout"),
    ("other", "other_timeout"),
    ("fragment", "fragment_timeout"),
    ("max_pending_fragments", "max_pending_fragments"),
];

/// Translate a policy path (model field names) into a config key path.
fn config_path(path: &FieldPath) -> FieldPath {
    let segs = path.segments();
    let mut out = FieldPath::root();
    let mut rest = segs;
    match segs.first() {
        Some(PathSeg::Key(k)) if k == "permitted_ethertypes" => {
            out = out.key("switch").key("permitted_ethertypes");
            rest = &segs[1..];
        }
        Some(PathSeg::Key(k)) if k == "conntrack" => {
            out = out.key("conntrack");
            rest = &segs[1..];
            if let Some(PathSeg::Key(field)) = rest.first() {
                let key = CONNTRACK_KEYS
                    .iter()
                    .find(|(_, f)| f == field)
                    .map(|(k, _)| *k)
                    .unwrap_or(field.as_str());
                out = out.key(key);
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

// ---------------------------------------------------------------------------------------
// Schema walk
// ---------------------------------------------------------------------------------------

struct Problem {
    path: FieldPath,
    span: Option<Range<usize>>,
    message: String,
}

#[derive(Default)]
struct Walker {
    problems: Vec<Problem>,
}

/// A table being read: remembers which keys were used.
struct Table<'n> {
    path: FieldPath,
    entries: &'n [(String, Node)],
    used: Vec<bool>,
}

impl<'n> Table<'n> {
    fn take(&mut self, key: &str) -> Option<&'n Node> {
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        self.used[i] = true;
        Some(&self.entries[i].1)
    }

    /// Report every key not taken.
    fn finish(self, w: &mut Walker, allowed: &[&str]) {
        for (i, (key, node)) in self.entries.iter().enumerate() {
            if self.used[i] {
                continue;
            }
            let mut msg = format!("unknown key `{key}`");
            if let Some(s) = closest(key, allowed) {
                let _ = write!(msg, " (did you mean `{s}`?)");
            }
            let _ = write!(msg, "; expected one of: {}", allowed.join(", "));
            w.problems.push(Problem {
                path: self.path.key(key.clone()),
                span: node.line_span(),
                message: msg,
            });
        }
    }
}

/// The allowed key closest to `key` by edit distance, if close enough to be a typo.
fn closest<'a>(key: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|a| (edit_distance(key, a), *a))
        .filter(|&(d, a)| d <= 2.max(a.len() / 4) && d < a.len())
        .min_by_key(|&(d, _)| d)
        .map(|(_, a)| a)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

impl Walker {
    fn fail(&mut self, path: &FieldPath, node: &Node, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.clone(),
            span: node.line_span(),
            message: message.into(),
        });
    }

    fn wrong_type(&mut self, path: &FieldPath, node: &Node, expected: &str) {
        let msg = format!("expected {expected}, found {}", node.kind.type_name());
        self.fail(path, node, msg);
    }

    fn table<'n>(&mut self, node: &'n Node, path: &FieldPath) -> Option<Table<'n>> {
        match &node.kind {
            Kind::Table(entries) => Some(Table {
                path: path.clone(),
                entries,
                used: vec![false; entries.len()],
            }),
            _ => {
                self.wrong_type(path, node, "a table");
                None
            }
        }
    }

    fn array<'n>(&mut self, node: &'n Node, path: &FieldPath) -> Option<&'n [Node]> {
        match &node.kind {
            Kind::Array(items) => Some(items),
            _ => {
                self.wrong_type(path, node, "an array");
                None
            }
        }
    }

    fn string(&mut self, node: &Node, path: &FieldPath) -> Option<String> {
        match &node.kind {
            Kind::Str(s) => Some(s.clone()),
            _ => {
                self.wrong_type(path, node, "a string");
                None
            }
        }
    }

    fn boolean(&mut self, node: &Node, path: &FieldPath) -> Option<bool> {
        match &node.kind {
            Kind::Bool(b) => Some(*b),
            _ => {
                self.wrong_type(path, node, "a boolean (true or false)");
                None
            }
        }
    }

    fn integer(&mut self, node: &Node, path: &FieldPath) -> Option<i64> {
        match &node.kind {
            Kind::Int(n) => Some(*n),
            _ => {
                self.wrong_type(path, node, "an integer");
                None
            }
        }
    }

    /// An integer in `lo..=hi`.
    fn ranged(&mut self, node: &Node, path: &FieldPath, lo: i64, hi: i64) -> Option<i64> {
        let n = self.integer(node, path)?;
        if n < lo || n > hi {
            self.fail(path, node, format!("{n} is out of range {lo}..={hi}"));
            return None;
        }
        Some(n)
    }

    /// An integer >= 0.
    fn non_negative(&mut self, node: &Node, path: &FieldPath) -> Option<u64> {
        let n = self.integer(node, path)?;
        match u64::try_from(n) {
            Ok(v) => Some(v),
            Err(_) => {
                self.fail(
                    path,
                    node,
                    format!("{n} is negative: expected an integer >= 0"),
                );
                None
            }
        }
    }

    fn scalar(&mut self, node: &Node, path: &FieldPath) -> Option<Scalar> {
        match &node.kind {
            Kind::Int(n) => Some(Scalar::Int(*n)),
            Kind::Str(s) => Some(Scalar::Str(s.clone())),
            _ => {
                self.wrong_type(path, node, "a string or an integer");
                None
            }
        }
    }

    /// A list of strings; a non-string element is reported and kept as "" so indexes
    /// stay aligned with the file.
    fn string_list(&mut self, node: &Node, path: &FieldPath) -> Option<Vec<String>> {
        let items = self.array(node, path)?;
        Some(
            items
                .iter()
                .enumerate()
                .map(|(i, n)| self.string(n, &path.index(i)).unwrap_or_default())
                .collect(),
        )
    }

    /// An array of tables read by `read`; a non-table element is reported and read as
    /// `T::default()` so indexes stay aligned with the file.
    fn table_list<T: Default>(
        &mut self,
        node: &Node,
        path: &FieldPath,
        mut read: impl FnMut(&mut Walker, Table<'_>) -> T,
    ) -> Vec<T> {
        let Some(items) = self.array(node, path) else {
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .map(|(i, n)| match self.table(n, &path.index(i)) {
                Some(t) => read(self, t),
                None => T::default(),
            })
            .collect()
    }
}

const ROOT_KEYS: &[&str] = &[
    "switch",
    "conntrack",
    "security_groups",
    "address_groups",
    "networks",
    "ports",
];

fn read_root(w: &mut Walker, root: &Node) -> (ModelSpec, SwitchSettings) {
    let mut spec = ModelSpec::default();
    let mut switch = SwitchSettings::default();
    let Some(mut t) = w.table(root, &FieldPath::root()) else {
        return (spec, switch);
    };
    let root_path = FieldPath::root();
    if let Some(n) = t.take("switch") {
        read_switch(w, n, &root_path.key("switch"), &mut switch, &mut spec);
    }
    if let Some(n) = t.take("conntrack") {
        read_conntrack(w, n, &root_path.key("conntrack"), &mut spec.conntrack);
    }
    if let Some(n) = t.take("security_groups") {
        spec.security_groups = w.table_list(n, &root_path.key("security_groups"), read_group);
    }
    if let Some(n) = t.take("address_groups") {
        spec.address_groups = w.table_list(n, &root_path.key("address_groups"), read_address_group);
    }
    if let Some(n) = t.take("networks") {
        spec.networks = w.table_list(n, &root_path.key("networks"), |w, mut t| {
            let name = t
                .take("name")
                .and_then(|n| w.string(n, &t.path.key("name")));
            t.finish(w, &["name"]);
            NetworkSpec { name }
        });
    }
    if let Some(n) = t.take("ports") {
        spec.ports = w.table_list(n, &root_path.key("ports"), read_port);
    }
    t.finish(w, ROOT_KEYS);
    (spec, switch)
}

fn read_switch(
    w: &mut Walker,
    node: &Node,
    path: &FieldPath,
    switch: &mut SwitchSettings,
    spec: &mut ModelSpec,
) {
    let Some(mut t) = w.table(node, path) else {
        return;
    };
    if let Some(n) = t.take("workers") {
        if let Some(v) = w.ranged(n, &path.key("workers"), 1, MAX_WORKERS as i64) {
            switch.workers = v as usize;
        }
    }
    if let Some(n) = t.take("burst") {
        if let Some(v) = w.ranged(n, &path.key("burst"), 1, MAX_BURST as i64) {
            switch.burst = v as usize;
        }
    }
    if let Some(n) = t.take("idle_backoff") {
        if let Some(v) = w.boolean(n, &path.key("idle_backoff")) {
            switch.idle_backoff = v;
        }
    }
    if let Some(n) = t.take("napi_defer_us") {
        let max = i64::from(crate::port::napi::MAX_DEFER_US);
        if let Some(v) = w.ranged(n, &path.key("napi_defer_us"), 0, max) {
            switch.napi_defer_us = v as u32;
        }
    }
    if let Some(n) = t.take("permitted_ethertypes") {
        let p = path.key("permitted_ethertypes");
        if let Some(items) = w.array(n, &p) {
            for (i, item) in items.iter().enumerate() {
                let ip = p.index(i);
                let value = match &item.kind {
                    Kind::Int(v) => u16::try_from(*v).ok(),
                    Kind::Str(s) => parse_ethertype(s),
                    _ => {
                        w.wrong_type(&ip, item, "an integer or a string like \"0x88cc\"");
                        // Keep indexes aligned; the value is never validated.
                        spec.permitted_ethertypes.push(0);
                        continue;
                    }
                };
                match value {
                    Some(v) => spec.permitted_ethertypes.push(v),
                    None => {
                        w.fail(
                            &ip,
                            item,
                            "not an ethertype: expected 0x0600..0xffff, e.g. 0x88cc",
                        );
                        spec.permitted_ethertypes.push(0);
                    }
                }
            }
        }
    }
    t.finish(
        w,
        &[
            "workers",
            "burst",
            "idle_backoff",
            "napi_defer_us",
            "permitted_ethertypes",
        ],
    );
}

/// `"0x88cc"` (hex) or `"35020"` (decimal).
fn parse_ethertype(s: &str) -> Option<u16> {
    let t = s.trim();
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u16::from_str_radix(hex, 16).ok()
    } else {
        t.parse().ok()
    }
}

fn read_conntrack(w: &mut Walker, node: &Node, path: &FieldPath, ct: &mut ConntrackSettings) {
    let Some(mut t) = w.table(node, path) else {
        return;
    };
    for &(key, _) in CONNTRACK_KEYS {
        let Some(n) = t.take(key) else { continue };
        let Some(v) = w.non_negative(n, &path.key(key)) else {
            continue;
        };
        let as_usize = usize::try_from(v).unwrap_or(usize::MAX);
        match key {
            "capacity" => ct.capacity = as_usize,
            "tcp_syn" => ct.tcp_syn_timeout = v,
            "tcp_established" => ct.tcp_established_timeout = v,
            "tcp_fin" => ct.tcp_fin_timeout = v,
            "tcp_close" => ct.tcp_close_timeout = v,
            "udp" => ct.udp_timeout = v,
            "udp_stream" => ct.udp_stream_timeout = v,
            "icmp" => ct.icmp_timeout = v,
            "other" => ct.other_timeout = v,
            "fragment" => ct.fragment_timeout = v,
            "max_pending_fragments" => ct.max_pending_fragments = as_usize,
            _ => {}
        }
    }
    let keys: Vec<&str> = CONNTRACK_KEYS.iter().map(|(k, _)| *k).collect();
    t.finish(w, &keys);
}

const GROUP_KEYS: &[&str] = &["name", "description", "stateful", "rules"];
const RULE_KEYS: &[&str] = &[
    "direction",
    "ethertype",
    "protocol",
    "port_range_min",
    "port_range_max",
    "remote_ip_prefix",
    "remote_group",
    "remote_address_group",
    "description",
];

fn read_group(w: &mut Walker, mut t: Table<'_>) -> SecurityGroupSpec {
    let path = t.path.clone();
    let mut g = SecurityGroupSpec {
        name: t.take("name").and_then(|n| w.string(n, &path.key("name"))),
        description: t
            .take("description")
            .and_then(|n| w.string(n, &path.key("description"))),
        stateful: t
            .take("stateful")
            .and_then(|n| w.boolean(n, &path.key("stateful"))),
        rules: None,
    };
    if let Some(n) = t.take("rules") {
        let rules = w.table_list(n, &path.key("rules"), read_rule);
        // A `rules` value of the wrong type still means "rules were given".
        g.rules = Some(rules);
    }
    t.finish(w, GROUP_KEYS);
    g
}

fn read_rule(w: &mut Walker, mut t: Table<'_>) -> RuleSpec {
    let path = t.path.clone();
    let s = |t: &mut Table<'_>, w: &mut Walker, key: &str| {
        t.take(key).and_then(|n| w.string(n, &path.key(key)))
    };
    let direction = s(&mut t, w, "direction");
    let ethertype = s(&mut t, w, "ethertype");
    let remote_ip_prefix = s(&mut t, w, "remote_ip_prefix");
    let remote_group = s(&mut t, w, "remote_group");
    let remote_address_group = s(&mut t, w, "remote_address_group");
    let description = s(&mut t, w, "description");
    let sc = |t: &mut Table<'_>, w: &mut Walker, key: &str| {
        t.take(key).and_then(|n| w.scalar(n, &path.key(key)))
    };
    let protocol = sc(&mut t, w, "protocol");
    let port_range_min = sc(&mut t, w, "port_range_min");
    let port_range_max = sc(&mut t, w, "port_range_max");
    t.finish(w, RULE_KEYS);
    RuleSpec {
        direction,
        ethertype,
        protocol,
        port_range_min,
        port_range_max,
        remote_ip_prefix,
        remote_group,
        remote_address_group,
        description,
    }
}

fn read_address_group(w: &mut Walker, mut t: Table<'_>) -> AddressGroupSpec {
    let path = t.path.clone();
    let g = AddressGroupSpec {
        name: t.take("name").and_then(|n| w.string(n, &path.key("name"))),
        description: t
            .take("description")
            .and_then(|n| w.string(n, &path.key("description"))),
        addresses: t
            .take("addresses")
            .and_then(|n| w.string_list(n, &path.key("addresses")))
            .unwrap_or_default(),
    };
    t.finish(w, &["name", "description", "addresses"]);
    g
}

const PORT_KEYS: &[&str] = &[
    "name",
    "network",
    "mac",
    "fixed_ips",
    "security_groups",
    "port_security",
    "allowed_address_pairs",
    "backend",
];

fn read_port(w: &mut Walker, mut t: Table<'_>) -> PortSpec {
    let path = t.path.clone();
    let s = |t: &mut Table<'_>, w: &mut Walker, key: &str| {
        t.take(key).and_then(|n| w.string(n, &path.key(key)))
    };
    let name = s(&mut t, w, "name");
    let network = s(&mut t, w, "network");
    let mac = s(&mut t, w, "mac");
    let fixed_ips = t
        .take("fixed_ips")
        .and_then(|n| w.string_list(n, &path.key("fixed_ips")))
        .unwrap_or_default();
    let security_groups = t
        .take("security_groups")
        .and_then(|n| w.string_list(n, &path.key("security_groups")));
    let port_security = t
        .take("port_security")
        .and_then(|n| w.boolean(n, &path.key("port_security")));
    let allowed_address_pairs = match t.take("allowed_address_pairs") {
        Some(n) => w.table_list(n, &path.key("allowed_address_pairs"), |w, mut t| {
            let p = t.path.clone();
            let ip_address = t
                .take("ip_address")
                .and_then(|n| w.string(n, &p.key("ip_address")));
            let mac_address = t
                .take("mac_address")
                .and_then(|n| w.string(n, &p.key("mac_address")));
            t.finish(w, &["ip_address", "mac_address"]);
            AllowedAddressPairSpec {
                ip_address,
                mac_address,
            }
        }),
        None => Vec::new(),
    };
    let backend = t
        .take("backend")
        .and_then(|n| read_backend(w, n, &path.key("backend")));
    t.finish(w, PORT_KEYS);
    PortSpec {
        name,
        network,
        mac,
        fixed_ips,
        security_groups,
        port_security,
        allowed_address_pairs,
        backend,
    }
}

fn read_backend(w: &mut Walker, node: &Node, path: &FieldPath) -> Option<BackendSpec> {
    let mut t = w.table(node, path)?;
    let Some(type_node) = t.take("type") else {
        w.fail(
            path,
            node,
            "missing key `type` (one of \"tap\", \"afxdp\", \"afpacket\")",
        );
        return None;
    };
    let kind = w.string(type_node, &path.key("type"))?;
    let ifname = t
        .take("ifname")
        .and_then(|n| w.string(n, &path.key("ifname")));
    let problems_before = w.problems.len();
    let backend = match kind.as_str() {
        "tap" => {
            let netns = t
                .take("netns")
                .and_then(|n| w.string(n, &path.key("netns")));
            let vnet_hdr = t
                .take("vnet_hdr")
                .and_then(|n| w.boolean(n, &path.key("vnet_hdr")));
            t.finish(w, &["type", "ifname", "netns", "vnet_hdr"]);
            BackendSpec::Tap {
                ifname,
                netns,
                vnet_hdr,
            }
        }
        "afxdp" => {
            let queue = t
                .take("queue")
                .and_then(|n| w.ranged(n, &path.key("queue"), 0, i64::from(u32::MAX)))
                .map(|q| q as u32);
            let mode = t.take("mode").and_then(|n| w.string(n, &path.key("mode")));
            t.finish(w, &["type", "ifname", "queue", "mode"]);
            BackendSpec::AfXdp {
                ifname,
                queue,
                mode,
            }
        }
        "afpacket" => {
            t.finish(w, &["type", "ifname"]);
            BackendSpec::AfPacket { ifname }
        }
        other => {
            w.fail(
                &path.key("type"),
                type_node,
                format!(
                    "unknown backend type {other:?}: expected \"tap\", \"afxdp\" or \"afpacket\""
                ),
            );
            return None;
        }
    };
    // A backend with a schema problem is not validated further (its errors are known).
    (w.problems.len() == problems_before).then_some(backend)
}

// ---------------------------------------------------------------------------------------
// Export
// ---------------------------------------------------------------------------------------

/// A TOML string literal.
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn q_list<I: IntoIterator<Item = String>>(items: I) -> String {
    let v: Vec<String> = items.into_iter().map(|s| q(&s)).collect();
    format!("[{}]", v.join(", "))
}

/// Write a config back as TOML, every default explicit; `parse_str` of the result gives
/// back an equal [`Config`].
pub fn to_toml_string(config: &Config) -> String {
    let m = &config.model;
    let mut out = String::new();
    let _ = writeln!(out, "# sgswitch configuration");
    let _ = writeln!(out);
    let _ = writeln!(out, "[switch]");
    if config.switch.workers > 0 {
        let _ = writeln!(out, "workers = {}", config.switch.workers);
    }
    let _ = writeln!(out, "burst = {}", config.switch.burst);
    let _ = writeln!(out, "idle_backoff = {}", config.switch.idle_backoff);
    let _ = writeln!(out, "napi_defer_us = {}", config.switch.napi_defer_us);
    let _ = writeln!(
        out,
        "permitted_ethertypes = {}",
        q_list(m.permitted_ethertypes.iter().map(|e| format!("{e:#06x}")))
    );
    let _ = writeln!(out);
    let ct = &m.conntrack;
    let _ = writeln!(out, "[conntrack]");
    for &(key, field) in CONNTRACK_KEYS {
        let v: u64 = match field {
            "capacity" => ct.capacity as u64,
            "tcp_syn_timeout" => ct.tcp_syn_timeout,
            "tcp_established_timeout" => ct.tcp_established_timeout,
            "tcp_fin_timeout" => ct.tcp_fin_timeout,
            "tcp_close_timeout" => ct.tcp_close_timeout,
            "udp_timeout" => ct.udp_timeout,
            "udp_stream_timeout" => ct.udp_stream_timeout,
            "icmp_timeout" => ct.icmp_timeout,
            "other_timeout" => ct.other_timeout,
            "fragment_timeout" => ct.fragment_timeout,
            _ => ct.max_pending_fragments as u64,
        };
        let _ = writeln!(out, "{key} = {v}");
    }

    for n in &m.networks {
        let _ = writeln!(out, "\n[[networks]]\nname = {}", q(&n.name));
    }

    for g in &m.security_groups {
        let _ = writeln!(out, "\n[[security_groups]]");
        let _ = writeln!(out, "name = {}", q(&g.name));
        let _ = writeln!(out, "description = {}", q(&g.description));
        let _ = writeln!(out, "stateful = {}", g.stateful);
        if g.rules.is_empty() {
            let _ = writeln!(out, "rules = []");
        } else {
            let _ = writeln!(out, "rules = [");
            for r in &g.rules {
                let mut fields = vec![
                    format!(
                        "direction = {}",
                        q(match r.direction {
                            Direction::Ingress => "ingress",
                            Direction::Egress => "egress",
                        })
                    ),
                    format!(
                        "ethertype = {}",
                        q(match r.ethertype {
                            EtherType::IPv4 => "IPv4",
                            EtherType::IPv6 => "IPv6",
                        })
                    ),
                ];
                if let Some(p) = r.neutron_protocol() {
                    fields.push(match protocol::protocol_name(p) {
                        Some(name) => format!("protocol = {}", q(name)),
                        None => format!("protocol = {p}"),
                    });
                }
                if let Some(v) = r.port_range_min {
                    fields.push(format!("port_range_min = {v}"));
                }
                if let Some(v) = r.port_range_max {
                    fields.push(format!("port_range_max = {v}"));
                }
                match &r.remote {
                    Remote::Any => {}
                    Remote::Prefix(net) => {
                        let raw = r
                            .remote_ip_prefix_raw
                            .clone()
                            .unwrap_or_else(|| net.to_string());
                        fields.push(format!("remote_ip_prefix = {}", q(&raw)));
                    }
                    Remote::Group(name) => fields.push(format!("remote_group = {}", q(name))),
                    Remote::AddressGroup(name) => {
                        fields.push(format!("remote_address_group = {}", q(name)))
                    }
                }
                if !r.description.is_empty() {
                    fields.push(format!("description = {}", q(&r.description)));
                }
                let _ = writeln!(out, "  {{ {} }},", fields.join(", "));
            }
            let _ = writeln!(out, "]");
        }
    }

    for a in &m.address_groups {
        let _ = writeln!(out, "\n[[address_groups]]");
        let _ = writeln!(out, "name = {}", q(&a.name));
        if !a.description.is_empty() {
            let _ = writeln!(out, "description = {}", q(&a.description));
        }
        let _ = writeln!(
            out,
            "addresses = {}",
            q_list(a.addresses.iter().map(|n| n.to_string()))
        );
    }

    for p in &m.ports {
        let _ = writeln!(out, "\n[[ports]]");
        let _ = writeln!(out, "name = {}", q(&p.name));
        let _ = writeln!(out, "network = {}", q(&p.network));
        let _ = writeln!(out, "mac = {}", q(&format_mac(&p.mac)));
        let _ = writeln!(
            out,
            "fixed_ips = {}",
            q_list(p.fixed_ips.iter().map(|ip| ip.to_string()))
        );
        let _ = writeln!(
            out,
            "security_groups = {}",
            q_list(p.security_groups.iter().cloned())
        );
        let _ = writeln!(out, "port_security = {}", p.port_security);
        if !p.allowed_address_pairs.is_empty() {
            let pairs: Vec<String> = p
                .allowed_address_pairs
                .iter()
                .map(|a| match a.mac_address {
                    Some(mac) => format!(
                        "{{ ip_address = {}, mac_address = {} }}",
                        q(&a.ip_address.to_string()),
                        q(&format_mac(&mac))
                    ),
                    None => format!("{{ ip_address = {} }}", q(&a.ip_address.to_string())),
                })
                .collect();
            let _ = writeln!(out, "allowed_address_pairs = [{}]", pairs.join(", "));
        }
        if let Some(b) = &p.backend {
            let text = match b {
                Backend::Tap {
                    ifname,
                    netns,
                    vnet_hdr,
                } => {
                    let ns = netns
                        .as_ref()
                        .map(|n| format!(", netns = {}", q(n)))
                        .unwrap_or_default();
                    format!(
                        "{{ type = \"tap\", ifname = {}{ns}, vnet_hdr = {vnet_hdr} }}",
                        q(ifname)
                    )
                }
                Backend::AfXdp {
                    ifname,
                    queue,
                    mode,
                } => {
                    let mode = mode
                        .as_ref()
                        .map(|m| format!(", mode = {}", q(m)))
                        .unwrap_or_default();
                    format!(
                        "{{ type = \"afxdp\", ifname = {}, queue = {queue}{mode} }}",
                        q(ifname)
                    )
                }
                Backend::AfPacket { ifname } => {
                    format!("{{ type = \"afpacket\", ifname = {} }}", q(ifname))
                }
            };
            let _ = writeln!(out, "backend = {text}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{ErrorClass, ErrorKind};

    const EXAMPLE: &str = include_str!("../../configs/example.toml");
    const QUICKSTART: &str = include_str!("../../configs/quickstart.toml");

    fn errors(text: &str) -> Vec<ConfigError> {
        match parse_str(text, "t.toml") {
            Ok(_) => panic!("config must be rejected:\n{text}"),
            Err(e) => e.errors,
        }
    }

    fn lines(text: &str) -> Vec<String> {
        errors(text).iter().map(|e| e.to_string()).collect()
    }

    fn round_trip(text: &str) {
        let c = parse_str(text, "in.toml").unwrap_or_else(|e| panic!("{e}"));
        let out = to_toml_string(&c);
        let back = parse_str(&out, "out.toml").unwrap_or_else(|e| panic!("{e}\n{out}"));
        assert_eq!(back, c, "round trip changed the config:\n{out}");
        assert_eq!(to_toml_string(&back), out, "export is not a fixed point");
    }

    #[test]
    fn shipped_configs_are_valid_and_round_trip() {
        round_trip(EXAMPLE);
        round_trip(QUICKSTART);
        let c = parse_str(EXAMPLE, "example.toml").unwrap();
        assert_eq!(c.switch.workers, 2);
        assert_eq!(c.model.permitted_ethertypes, vec![0x88cc, 0x8809]);
        assert!(c.model.group("stateless-dns").is_some_and(|g| !g.stateful));
        assert!(c
            .model
            .port("router-prod")
            .is_some_and(|p| !p.port_security));
    }

    #[test]
    fn round_trip_of_awkward_values() {
        round_trip(
            r#"
[switch]
workers = 3
burst = 1
idle_backoff = false
[conntrack]
capacity = 7
udp = 1
fragment = 3600
max_pending_fragments = 0
[[networks]]
name = "net \"quoted\""
[[security_groups]]
name = "g with spaces/ünïcode"
description = "line1\nline2 \\ \"q\" 'single'"
stateful = false
rules = []
[[security_groups]]
name = "x"
rules = [
  { direction = "egress", protocol = 200, description = "\t" },
  { direction = "ingress", ethertype = "IPv6", protocol = "icmp", port_range_min = 1 },
  { direction = "ingress", protocol = "tcp", port_range_min = 1, port_range_max = 65535, remote_ip_prefix = "10.9.8.7/8" },
  { direction = "ingress", protocol = "udp", port_range_min = 5, port_range_max = 6, remote_address_group = "a" },
  { direction = "egress", ethertype = "ipv6", remote_ip_prefix = "2001:db8::1" },
]
[[address_groups]]
name = "a"
description = "d"
addresses = []
[[ports]]
name = "p"
network = "net \"quoted\""
mac = "FA:16:3E:00:00:01"
security_groups = []
backend = { type = "afxdp", ifname = "eth0" }
[[ports]]
name = "q"
mac = "fa:16:3e:00:00:02"
port_security = false
backend = { type = "tap", ifname = "t", netns = "ns" }
"#,
        );
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
    fn napi_defer_is_ranged_and_exported() {
        let e = lines("[switch]\nnapi_defer_us = 100001\n").join("\n");
        assert!(
            e.contains("t.toml:2: switch.napi_defer_us") && e.contains("100000"),
            "{e}"
        );
        let e = lines("[switch]\nnapi_defer_us = -1\n").join("\n");
        assert!(e.contains("switch.napi_defer_us"), "{e}");
        let c = parse_str("[switch]\nnapi_defer_us = 50\n", "t.toml").unwrap();
        assert_eq!(c.switch.napi_defer_us, 50);
        let text = to_toml_string(&c);
        assert!(text.contains("napi_defer_us = 50"), "{text}");
        assert_eq!(parse_str(&text, "x.toml").unwrap().switch, c.switch);
        // On by default; 0 (off) is kept through an export.
        let c = parse_str("", "t.toml").unwrap();
        assert_eq!(c.switch.napi_defer_us, crate::port::napi::DEFAULT_DEFER_US);
        let c = parse_str("[switch]\nnapi_defer_us = 0\n", "t.toml").unwrap();
        let text = to_toml_string(&c);
        assert!(text.contains("napi_defer_us = 0"), "{text}");
        assert_eq!(parse_str(&text, "x.toml").unwrap().switch.napi_defer_us, 0);
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
        use crate::policy::spec::{
            AddressGroupSpec, ModelSpec, PortSpec, RuleSpec, Scalar, SecurityGroupSpec,
        };
        use proptest::prelude::*;

        fn opt_str(choices: &'static [&'static str]) -> impl Strategy<Value = Option<String>> {
            prop::option::of(prop::sample::select(choices).prop_map(str::to_string))
        }

        fn rule_spec() -> impl Strategy<Value = RuleSpec> {
            let protocol = prop::option::of(prop_oneof![
                prop::sample::select(
                    &[
                        "tcp",
                        "udp",
                        "icmp",
                        "any",
                        "17",
                        "ipv6-icmp",
                        "sctp",
                        "gre",
                        "TCP"
                    ][..]
                )
                .prop_map(Scalar::from),
                prop::sample::select(&[0i64, 6, 47, 112, 200][..]).prop_map(Scalar::Int),
            ]);
            let port_pair = prop::sample::select(
                &[
                    (None, None),
                    (Some(80), Some(80)),
                    (Some(1), Some(65535)),
                    (Some(1000), Some(2000)),
                    (Some(8), Some(0)),
                    (Some(3), None),
                ][..],
            );
            let remote = prop::sample::select(
                &[
                    (None, None, None),
                    (Some("10.1.2.3/16"), None, None),
                    (Some("0.0.0.0/0"), None, None),
                    (Some("::/0"), None, None),
                    (Some("fd00::5/64"), None, None),
                    (Some("192.0.2.9"), None, None),
                    (None, Some("g0"), None),
                    (None, Some("default"), None),
                    (None, None, Some("a0")),
                ][..],
            );
            (
                opt_str(&["ingress", "egress"]),
                opt_str(&["IPv4", "IPv6", "ipv6"]),
                protocol,
                port_pair,
                remote,
                opt_str(&["", "d", "quote \" and \\ back"]),
            )
                .prop_map(
                    |(
                        direction,
                        ethertype,
                        protocol,
                        (min, max),
                        (prefix, group, ag),
                        description,
                    )| RuleSpec {
                        direction: direction.or(Some("ingress".into())),
                        ethertype,
                        protocol,
                        port_range_min: min.map(Scalar::Int),
                        port_range_max: max.map(Scalar::Int),
                        remote_ip_prefix: prefix.map(str::to_string),
                        remote_group: group.map(str::to_string),
                        remote_address_group: ag.map(str::to_string),
                        description,
                    },
                )
        }

        /// Validate, dropping offending rules until the model is valid.
        fn valid_model(mut spec: ModelSpec) -> Model {
            loop {
                match validate_model(&spec) {
                    Ok(m) => return m,
                    Err(e) => {
                        let mut drop: Vec<(usize, usize)> = e
                            .errors()
                            .iter()
                            .map(|e| {
                                let g = spec
                                    .security_groups
                                    .iter()
                                    .position(|g| g.name == e.group)
                                    .expect("only rule errors");
                                (g, e.rule.expect("only rule errors"))
                            })
                            .collect();
                        drop.sort_unstable();
                        drop.dedup();
                        for &(g, r) in drop.iter().rev() {
                            if let Some(rules) = spec.security_groups[g].rules.as_mut() {
                                rules.remove(r);
                            }
                        }
                    }
                }
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

            /// Random valid models (about 6 rules each on average) survive export + parse.
            #[test]
            fn export_round_trips(
                groups in prop::collection::vec(prop::option::of(prop::collection::vec(rule_spec(), 0..8)), 1..4),
                stateless in any::<bool>(),
                port_groups in prop::collection::vec((prop::option::of(prop::sample::subsequence(vec!["g0", "default"], 0..=2)), any::<bool>()), 0..3),
            ) {
                let mut spec = ModelSpec {
                    security_groups: groups
                        .into_iter()
                        .enumerate()
                        .map(|(i, rules)| SecurityGroupSpec {
                            name: Some(format!("g{i}")),
                            stateful: Some(!(stateless && i > 0)),
                            rules,
                            ..Default::default()
                        })
                        .collect(),
                    address_groups: vec![AddressGroupSpec {
                        name: Some("a0".into()),
                        addresses: vec!["198.51.100.0/24".into(), "2001:db8::/48".into()],
                        ..Default::default()
                    }],
                    ..Default::default()
                };
                for (i, (groups, psec)) in port_groups.into_iter().enumerate() {
                    spec.ports.push(PortSpec {
                        name: Some(format!("p{i}")),
                        mac: Some(format!("fa:16:3e:00:00:{i:02x}")),
                        fixed_ips: vec![format!("10.0.0.{}", i + 1)],
                        security_groups: if psec { groups.map(|g| g.into_iter().map(str::to_string).collect()) } else { None },
                        port_security: Some(psec),
                        ..Default::default()
                    });
                }
                let config = Config { model: valid_model(spec), switch: SwitchSettings::default() };
                let text = to_toml_string(&config);
                let back = parse_str(&text, "export.toml");
                prop_assert_eq!(back.as_ref().ok(), Some(&config), "{}", text);
            }

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

    #[test]
    fn typo_suggestions() {
        assert_eq!(closest("protcol", RULE_KEYS), Some("protocol"));
        assert_eq!(closest("remote_groups", RULE_KEYS), Some("remote_group"));
        assert_eq!(closest("zzzzzz", RULE_KEYS), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
