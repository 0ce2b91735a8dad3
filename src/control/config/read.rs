//! Step 2 of loading: the schema walk over the span-carrying tree. Unknown keys (with a
//! "did you mean", see [`super::suggest`]), wrong types and out-of-range `[switch]` and
//! `[logging]` settings are collected as [`Problem`]s with the span of the offending value, and a
//! [`ModelSpec`] is built whose lists keep the file's order and length (a wrong element
//! is read as a default one), so policy error paths still index the file.
//!
//! Owns: the config file's keys and value types. May not touch: Neutron's rules and
//! defaults (those are [`crate::policy::validate_model`]'s, run afterwards by
//! [`super::parse_str`]), or lines (spans only; the caller turns them into lines).
//! Depends on: `policy` (spec types, field paths, conntrack settings), `port::napi` (the
//! maximum of `napi_defer_us`), and its siblings `tree` and `suggest`.

use std::fmt::Write as _;
use std::ops::Range;

use crate::overlay::{OverlaySettings, Underlay, UnderlayBackend};
use crate::policy::spec::{
    AddressGroupSpec, AllowedAddressPairSpec, BackendSpec, HostSpec, LogSpec, ModelSpec,
    NetworkSpec, PortSpec, RuleSpec, Scalar, SecurityGroupSpec,
};
use crate::policy::{ConntrackSettings, FieldPath, CONNTRACK_FIELDS};

use super::keys;
use super::suggest::closest;
use super::tree::{Kind, Node};
use crate::runtime::switch::NewFlowBudget;

use super::{
    ApiSettings, LoggingSettings, SwitchSettings, MAX_BURST, MAX_CORE_ID, MAX_LOG_LIMIT,
    MAX_WORKERS, MIN_BURST_LIMIT, MIN_RATE_LIMIT,
};

pub(super) struct Problem {
    pub(super) path: FieldPath,
    pub(super) span: Option<Range<usize>>,
    pub(super) message: String,
}

#[derive(Default)]
pub(super) struct Walker {
    pub(super) problems: Vec<Problem>,
    /// Tests: every (table, key) the reader asked for, present in the file or not, so
    /// that `keys`' descriptors can be compared with what the reader reads.
    #[cfg(test)]
    pub(super) asked: std::collections::BTreeSet<(&'static str, &'static str)>,
}

/// A table being read: remembers which keys were used.
struct Table<'n> {
    path: FieldPath,
    entries: &'n [(String, Node)],
    used: Vec<bool>,
    #[cfg(test)]
    asked: Vec<&'static str>,
}

impl<'n> Table<'n> {
    fn take(&mut self, key: &'static str) -> Option<&'n Node> {
        #[cfg(test)]
        self.asked.push(key);
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        self.used[i] = true;
        Some(&self.entries[i].1)
    }

    /// Report every key not taken. `table` names it in the key reference
    /// ([`super::keys`], e.g. `"ports[].backend"`), which lists the accepted keys (of
    /// backend type `variant`, for a backend).
    fn finish(self, w: &mut Walker, table: &'static str, variant: Option<&str>) {
        let allowed = keys::names(table, variant);
        #[cfg(test)]
        w.asked.extend(self.asked.iter().map(|k| (table, *k)));
        for (i, (key, node)) in self.entries.iter().enumerate() {
            if self.used[i] {
                continue;
            }
            let mut msg = format!("unknown key `{key}`");
            if let Some(s) = closest(key, &allowed) {
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
                #[cfg(test)]
                asked: Vec::new(),
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

/// What the file holds: the model as written and the host-local settings tables.
pub(super) type Read = (
    ModelSpec,
    SwitchSettings,
    LoggingSettings,
    ApiSettings,
    OverlaySettings,
);

pub(super) fn read_root(w: &mut Walker, root: &Node) -> Read {
    let mut spec = ModelSpec::default();
    let mut switch = SwitchSettings::default();
    let mut logging = LoggingSettings::default();
    let mut api = ApiSettings::default();
    let mut overlay = OverlaySettings::default();
    let Some(mut t) = w.table(root, &FieldPath::root()) else {
        return (spec, switch, logging, api, overlay);
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
            let vni = t.take("vni").and_then(|n| w.integer(n, &t.path.key("vni")));
            let encap = t
                .take("encap")
                .and_then(|n| w.string(n, &t.path.key("encap")));
            t.finish(w, "networks[]", None);
            NetworkSpec { name, vni, encap }
        });
    }
    if let Some(n) = t.take("ports") {
        spec.ports = w.table_list(n, &root_path.key("ports"), read_port);
    }
    if let Some(n) = t.take("logs") {
        spec.logs = w.table_list(n, &root_path.key("logs"), read_log);
    }
    if let Some(n) = t.take("logging") {
        read_logging(w, n, &root_path.key("logging"), &mut logging);
    }
    if let Some(n) = t.take("api") {
        read_api(w, n, &root_path.key("api"), &mut api);
    }
    if let Some(n) = t.take("hosts") {
        spec.hosts = w.table_list(n, &root_path.key("hosts"), |w, mut t| {
            let p = t.path.clone();
            let mut s = |key: &'static str| t.take(key).and_then(|n| w.string(n, &p.key(key)));
            let h = HostSpec {
                name: s("name"),
                vtep: s("vtep"),
                mac: s("mac"),
            };
            t.finish(w, "hosts[]", None);
            h
        });
    }
    if let Some(n) = t.take("overlay") {
        read_overlay(w, n, &root_path.key("overlay"), &mut overlay, &mut spec);
    }
    t.finish(w, "", None);
    (spec, switch, logging, api, overlay)
}

/// `[overlay]`: `host` (into the model as its local host), `vtep`, `underlay`.
fn read_overlay(
    w: &mut Walker,
    node: &Node,
    path: &FieldPath,
    overlay: &mut OverlaySettings,
    spec: &mut ModelSpec,
) {
    let Some(mut t) = w.table(node, path) else {
        return;
    };
    if let Some(n) = t.take("host") {
        spec.local_host = w.string(n, &path.key("host"));
    }
    if let Some(n) = t.take("vtep") {
        let p = path.key("vtep");
        if let Some(v) = w.string(n, &p) {
            match crate::policy::validate::parse_vtep(&v) {
                Ok(ip) => overlay.vtep = Some(ip),
                Err(reason) => w.fail(&p, n, format!("invalid VTEP address {v:?}: {reason}")),
            }
        }
    }
    if let Some(n) = t.take("underlay") {
        let p = path.key("underlay");
        if let Some(mut u) = w.table(n, &p) {
            let kind = u.take("type").and_then(|n| w.string(n, &p.key("type")));
            let ifname = u.take("ifname").and_then(|n| w.string(n, &p.key("ifname")));
            u.finish(w, "overlay.underlay", None);
            let backend = match kind.as_deref() {
                None => Some(UnderlayBackend::AfPacket),
                Some(k) => {
                    let b = UnderlayBackend::from_name(k);
                    if b.is_none() {
                        w.fail(
                            &p.key("type"),
                            n,
                            format!("unknown underlay type {k:?}: expected \"afpacket\""),
                        );
                    }
                    b
                }
            };
            match (backend, ifname) {
                (Some(backend), Some(ifname)) => {
                    match crate::policy::validate::check_ifname(&ifname) {
                        Ok(()) => overlay.underlay = Some(Underlay { backend, ifname }),
                        Err(reason) => w.fail(
                            &p.key("ifname"),
                            n,
                            format!("invalid interface name {ifname:?}: {reason}"),
                        ),
                    }
                }
                (_, None) => w.fail(&p, n, "missing key `ifname`"),
                _ => {}
            }
        }
    }
    t.finish(w, "overlay", None);
}

/// `[api]`: `token_file`.
fn read_api(w: &mut Walker, node: &Node, path: &FieldPath, api: &mut ApiSettings) {
    let Some(mut t) = w.table(node, path) else {
        return;
    };
    if let Some(n) = t.take("token_file") {
        let p = path.key("token_file");
        match w.string(n, &p) {
            Some(f) if f.trim().is_empty() => w.fail(&p, n, "must not be empty"),
            Some(f) => api.token_file = Some(f.into()),
            None => {}
        }
    }
    t.finish(w, "api", None);
}

/// The words `[logging] level` takes (`warning` is `warn`'s other name).
const LOG_LEVELS: &[&str] = &["off", "error", "warn", "warning", "info", "debug", "trace"];

fn read_logging(w: &mut Walker, node: &Node, path: &FieldPath, logging: &mut LoggingSettings) {
    let Some(mut t) = w.table(node, path) else {
        return;
    };
    if let Some(n) = t.take("file") {
        let p = path.key("file");
        match w.string(n, &p) {
            Some(f) if f.trim().is_empty() => w.fail(&p, n, "must not be empty"),
            Some(f) => logging.file = Some(f.into()),
            None => {}
        }
    }
    if let Some(n) = t.take("level") {
        let p = path.key("level");
        if let Some(l) = w.string(n, &p) {
            let lower = l.trim().to_ascii_lowercase();
            if LOG_LEVELS.contains(&lower.as_str()) {
                logging.level = Some(lower);
            } else {
                w.fail(
                    &p,
                    n,
                    format!("unknown level {l:?}; expected one of: off, error, warn, info, debug, trace"),
                );
            }
        }
    }
    let limits = [
        ("rate_limit", MIN_RATE_LIMIT, &mut logging.rate_limit),
        ("burst_limit", MIN_BURST_LIMIT, &mut logging.burst_limit),
    ];
    for (key, min, field) in limits {
        let Some(n) = t.take(key) else { continue };
        let max = i64::from(MAX_LOG_LIMIT);
        if let Some(v) = w.ranged(n, &path.key(key), i64::from(min), max) {
            *field = v as u32;
        }
    }
    t.finish(w, "logging", None);
}

fn read_log(w: &mut Walker, mut t: Table<'_>) -> LogSpec {
    let path = t.path.clone();
    let s = |t: &mut Table<'_>, w: &mut Walker, key: &'static str| {
        t.take(key).and_then(|n| w.string(n, &path.key(key)))
    };
    let log = LogSpec {
        name: s(&mut t, w, "name"),
        description: s(&mut t, w, "description"),
        resource: s(&mut t, w, "resource"),
        target: s(&mut t, w, "target"),
        event: s(&mut t, w, "event"),
        enabled: t
            .take("enabled")
            .and_then(|n| w.boolean(n, &path.key("enabled"))),
    };
    t.finish(w, "logs[]", None);
    log
}

/// `[switch] cores`: CPU ids for the workers, each once (whether this machine has them is
/// checked when `run` starts: `SwitchSettings::pin_cores`).
fn read_cores(w: &mut Walker, n: &Node, p: &FieldPath, switch: &mut SwitchSettings) {
    let Some(items) = w.array(n, p) else {
        return;
    };
    let mut cores = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let ip = p.index(i);
        let Some(v) = w.ranged(item, &ip, 0, i64::from(MAX_CORE_ID)) else {
            continue;
        };
        let v = v as usize;
        if cores.contains(&v) {
            w.fail(&ip, item, format!("core {v} is listed twice"));
        } else {
            cores.push(v);
        }
    }
    switch.cores = cores;
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
    if let Some(n) = t.take("cores") {
        read_cores(w, n, &path.key("cores"), switch);
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
    if let Some(n) = t.take("new_flow_budget") {
        read_new_flow_budget(w, n, &path.key("new_flow_budget"), switch);
    }
    if let Some(n) = t.take("fair_share") {
        if let Some(v) = w.boolean(n, &path.key("fair_share")) {
            switch.flood.fair_share = v;
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
    t.finish(w, "switch", None);
}

/// `[switch] new_flow_budget`: `"auto"`, `"off"` or new connections per full burst,
/// 1..=the burst (read before it: `burst` comes first in the table's walk, whatever the
/// file's order).
fn read_new_flow_budget(w: &mut Walker, n: &Node, p: &FieldPath, switch: &mut SwitchSettings) {
    const EXPECTED: &str = "a number of new connections per full burst, \"auto\" or \"off\"";
    let budget = match &n.kind {
        Kind::Str(s) if s == "off" => NewFlowBudget::Off,
        Kind::Str(s) if s == "auto" => NewFlowBudget::Auto,
        Kind::Str(s) => {
            w.fail(p, n, format!("{s:?} is not {EXPECTED}"));
            return;
        }
        Kind::Int(_) => {
            let burst = switch.burst as i64;
            let Some(v) = w.ranged(n, p, 1, burst) else {
                return;
            };
            NewFlowBudget::PerBurst(v as u32)
        }
        _ => {
            w.wrong_type(p, n, EXPECTED);
            return;
        }
    };
    switch.flood.new_flow_budget = budget;
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
    for f in CONNTRACK_FIELDS {
        let Some(n) = t.take(f.key) else { continue };
        let Some(v) = w.non_negative(n, &path.key(f.key)) else {
            continue;
        };
        (f.set)(ct, v);
    }
    t.finish(w, "conntrack", None);
}

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
    t.finish(w, "security_groups[]", None);
    g
}

fn read_rule(w: &mut Walker, mut t: Table<'_>) -> RuleSpec {
    let path = t.path.clone();
    let s = |t: &mut Table<'_>, w: &mut Walker, key: &'static str| {
        t.take(key).and_then(|n| w.string(n, &path.key(key)))
    };
    let direction = s(&mut t, w, "direction");
    let ethertype = s(&mut t, w, "ethertype");
    let remote_ip_prefix = s(&mut t, w, "remote_ip_prefix");
    let remote_group = s(&mut t, w, "remote_group");
    let remote_address_group = s(&mut t, w, "remote_address_group");
    let description = s(&mut t, w, "description");
    let sc = |t: &mut Table<'_>, w: &mut Walker, key: &'static str| {
        t.take(key).and_then(|n| w.scalar(n, &path.key(key)))
    };
    let protocol = sc(&mut t, w, "protocol");
    let port_range_min = sc(&mut t, w, "port_range_min");
    let port_range_max = sc(&mut t, w, "port_range_max");
    t.finish(w, "security_groups[].rules[]", None);
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
    t.finish(w, "address_groups[]", None);
    g
}

fn read_port(w: &mut Walker, mut t: Table<'_>) -> PortSpec {
    let path = t.path.clone();
    let s = |t: &mut Table<'_>, w: &mut Walker, key: &'static str| {
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
            t.finish(w, "ports[].allowed_address_pairs[]", None);
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
    let host = s(&mut t, w, "host");
    t.finish(w, "ports[]", None);
    PortSpec {
        name,
        network,
        mac,
        fixed_ips,
        security_groups,
        port_security,
        allowed_address_pairs,
        backend,
        host,
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
            let max = i64::from(crate::policy::MAX_TAP_QUEUES);
            let queues = t
                .take("queues")
                .and_then(|n| w.ranged(n, &path.key("queues"), 1, max))
                .map(|q| q as u16);
            t.finish(w, "ports[].backend", Some("tap"));
            BackendSpec::Tap {
                ifname,
                netns,
                vnet_hdr,
                queues,
            }
        }
        "afxdp" => {
            let queue = t
                .take("queue")
                .and_then(|n| w.ranged(n, &path.key("queue"), 0, i64::from(u32::MAX)))
                .map(|q| q as u32);
            let mode = t.take("mode").and_then(|n| w.string(n, &path.key("mode")));
            t.finish(w, "ports[].backend", Some("afxdp"));
            BackendSpec::AfXdp {
                ifname,
                queue,
                mode,
            }
        }
        "afpacket" => {
            t.finish(w, "ports[].backend", Some("afpacket"));
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
