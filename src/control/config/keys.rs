//! The configuration reference: one descriptor per config key (its table, name, type,
//! default, range, meaning and an example), the single source of
//! * the keys the reader accepts in each table (`read` asks [`names`] for the list of its
//!   unknown-key check and "did you mean"; a test walks a config with every table and
//!   fails when the reader asks for a key that has no descriptor, or a descriptor names a
//!   key the reader never asks for),
//! * `sgswitch check --explain KEY` ([`explain`], with "did you mean" for an unknown key),
//! * `docs/configuration.md` ([`markdown`]; `sgswitch check --explain-all` writes it and a
//!   test fails when the committed file differs).
//!
//! Defaults and ranges that are constants in the code (`[switch]`, `[logging]`,
//! `[conntrack]`) are computed from those constants and from
//! [`CONNTRACK_FIELDS`], not written twice.
//!
//! Owns: the descriptors and their text. May not touch: how values are read or
//! validated (`read`, `policy::validate`); it only describes them. Depends on the
//! settings types and constants of `config`, `policy` and `port::napi`, and on `suggest`.

use std::fmt::Write as _;
use std::sync::OnceLock;

use crate::policy::{ConntrackSettings, CONNTRACK_FIELDS};

use super::suggest::closest;
use super::{
    LoggingSettings, SwitchSettings, MAX_BURST, MAX_CORE_ID, MAX_LOG_LIMIT, MAX_WORKERS,
    MIN_BURST_LIMIT, MIN_RATE_LIMIT,
};

/// One config key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyDoc {
    /// The table it is in, as a path: `""` (top level), `"switch"`, `"ports[]"`,
    /// `"ports[].backend"`, `"security_groups[].rules[]"`.
    pub table: &'static str,
    /// The key.
    pub key: &'static str,
    /// For `ports[].backend`: the backend `type` the key belongs to (`None`: every type).
    pub variant: Option<&'static str>,
    /// The TOML type.
    pub ty: &'static str,
    /// The default when the key is omitted (`"required"` when it must be given).
    pub default: String,
    /// The accepted values.
    pub range: String,
    /// What it means.
    pub meaning: &'static str,
    /// An example line of TOML.
    pub example: &'static str,
}

impl KeyDoc {
    /// The full key path: `switch.workers`, `ports[].backend.netns`.
    pub fn path(&self) -> String {
        match self.table {
            "" => self.key.to_string(),
            t => format!("{t}.{}", self.key),
        }
    }
}

/// Every config key, in reference order.
pub fn all() -> &'static [KeyDoc] {
    static KEYS: OnceLock<Vec<KeyDoc>> = OnceLock::new();
    KEYS.get_or_init(build)
}

/// The keys accepted in `table` (for `ports[].backend`, those of backend `variant` and
/// of every backend).
pub fn names(table: &str, variant: Option<&str>) -> Vec<&'static str> {
    all()
        .iter()
        .filter(|k| k.table == table && (k.variant.is_none() || k.variant == variant))
        .map(|k| k.key)
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn k(
    table: &'static str,
    key: &'static str,
    ty: &'static str,
    default: impl Into<String>,
    range: impl Into<String>,
    meaning: &'static str,
    example: &'static str,
) -> KeyDoc {
    KeyDoc {
        table,
        key,
        variant: None,
        ty,
        default: default.into(),
        range: range.into(),
        meaning,
        example,
    }
}

fn backend(variant: &'static str, mut d: KeyDoc) -> KeyDoc {
    d.variant = Some(variant);
    d
}

/// What each `[conntrack]` key means (the ranges and defaults are [`CONNTRACK_FIELDS`]'s).
fn conntrack_meaning(key: &str) -> (&'static str, &'static str) {
    match key {
        "capacity" => ("Tracked connections per worker (the table is allocated at start).", "capacity = 262144"),
        "per_port_limit" => ("Tracked connections of one port (its zone) per worker, 0 = no limit; at the limit a new connection evicts the port's oldest unassured one, else it is dropped (`conntrack-zone-full`).", "per_port_limit = 65536"),
        "tcp_syn" => ("Timeout of a TCP connection being opened (SYN seen), seconds.", "tcp_syn = 120"),
        "tcp_established" => ("Timeout of an established TCP connection, seconds.", "tcp_established = 86400"),
        "tcp_fin" => ("Timeout of a TCP connection being closed (FIN seen), seconds.", "tcp_fin = 120"),
        "tcp_close" => ("Timeout of a closed or reset TCP connection, seconds.", "tcp_close = 10"),
        "udp" => ("Timeout of a UDP flow seen in one direction, seconds.", "udp = 30"),
        "udp_stream" => ("Timeout of a UDP flow answered (seen both ways), seconds.", "udp_stream = 120"),
        "icmp" => ("Timeout of an ICMP / ICMPv6 echo or query, seconds.", "icmp = 30"),
        "other" => ("Timeout of a flow of any other IP protocol, seconds.", "other = 600"),
        "fragment" => ("Time a partly reassembled fragmented packet is kept, seconds.", "fragment = 30"),
        "max_pending_fragments" => ("Fragmented packets being reassembled at once per worker (0: every fragment is dropped).", "max_pending_fragments = 1024"),
        _ => ("", ""),
    }
}

fn build() -> Vec<KeyDoc> {
    let sw = SwitchSettings::default();
    let log = LoggingSettings::default();
    let napi_max = crate::port::napi::MAX_DEFER_US;
    let mut v = vec![
        k("", "switch", "table", "every key at its default", "", "Runtime settings of the live switch (`run`).", "[switch]"),
        k("", "conntrack", "table", "every key at its default", "", "Connection tracking: capacity, per-port limit, timeouts.", "[conntrack]"),
        k("", "logging", "table", "every key at its default", "", "Where and how fast packet-log records (`[[logs]]`) are written.", "[logging]"),
        k("", "api", "table", "every key at its default", "", "The management API (`run --api`).", "[api]"),
        k("", "security_groups", "array of tables", "[] (the group `default` exists anyway)", "", "Security groups with their rules.", "[[security_groups]]"),
        k("", "address_groups", "array of tables", "[]", "", "Named lists of CIDRs, usable as a rule's remote.", "[[address_groups]]"),
        k("", "networks", "array of tables", "the networks the ports name", "", "Networks beyond those of the ports.", "[[networks]]"),
        k("", "ports", "array of tables", "[]", "", "Instance ports: addresses, groups, how they are attached.", "[[ports]]"),
        k("", "logs", "array of tables", "[]", "", "Neutron packet logging objects (resource type security_group).", "[[logs]]"),
        k("", "hosts", "array of tables", "[] (single host)", "", "Overlay hosts with their tunnel endpoints (VTEPs), this one included.", "[[hosts]]"),
        k("", "overlay", "table", "no overlay (every port local)", "", "This host in the overlay: its name, VTEP address and underlay netdev.", "[overlay]"),
        // [switch]
        k("switch", "workers", "integer", "0 (automatic: one per core, at most one per port with a backend)", format!("1..={MAX_WORKERS}"), "Polling worker threads.", "workers = 2"),
        k("switch", "cores", "array of integers", "[] (worker i on core i)", format!("CPU ids 0..={MAX_CORE_ID}, each once, cores this machine has"), "CPU cores the workers are pinned to (worker i on cores[i % len]); give them cores the instances do not run on (a polling worker shares its core badly). `run --cores` overrides it; read at start.", "cores = [1]"),
        k("switch", "burst", "integer", sw.burst.to_string(), format!("1..={MAX_BURST}"), "Frames a worker takes from a port at once.", "burst = 32"),
        k("switch", "idle_backoff", "boolean", sw.idle_backoff.to_string(), "true, false", "Idle workers sleep a little (up to 1 ms) instead of spinning.", "idle_backoff = true"),
        k("switch", "napi_defer_us", "integer", sw.napi_defer_us.to_string(), format!("0..={napi_max} (0 = off)"), "NAPI moderation (µs) of the netdevs under afxdp/afpacket ports while they are open; restored after.", "napi_defer_us = 100"),
        k("switch", "new_flow_budget", "integer or string", sw.flood.new_flow_budget.to_config(), "1..=burst, \"auto\" (a quarter of the burst), \"off\"", "New connections a port may start per burst that came back full (it sends faster than its worker reads it); the rest are dropped as `new-flow-overload`, so a flood of new connections takes a bounded share of the worker. Read at start; `SGSWITCH_NEW_FLOW_BUDGET` overrides it for measurements.", "new_flow_budget = \"auto\""),
        k("switch", "fair_share", "boolean", sw.flood.fair_share.to_string(), "true, false", "While a worker is saturated, each port gets an equal share of the frames it moves, charged to the port that opened their connection; replies of a port far over its share are dropped as `fair-share`. Read at start; `SGSWITCH_FAIR_SHARE=off` overrides it for measurements.", "fair_share = true"),
        k("switch", "permitted_ethertypes", "array of integers or strings", "[] (Neutron's OVS-firewall behaviour)", "0x0600..=0xffff, not IPv4/IPv6/ARP", "Non-IP, non-ARP ethertypes let through port security.", "permitted_ethertypes = [0x88cc, \"0x8809\"]"),
        // [logging]
        k("logging", "level", "string", "info", "off, error, warn, info, debug, trace", "The switch's own log level when neither `--log` nor `RUST_LOG` gives one (precedence: flag > `RUST_LOG` > this key > info); a reload applies a change.", "level = \"debug\""),
        k("logging", "file", "string (path)", "standard error", "a non-empty path", "File the packet-log records are appended to (created mode 0640).", "file = \"/var/log/sgswitch/packets.log\""),
        k("logging", "rate_limit", "integer", log.rate_limit.to_string(), format!("{MIN_RATE_LIMIT}..={MAX_LOG_LIMIT}"), "Packet-log records per second, all workers together (Neutron's `[network_log] rate_limit`).", "rate_limit = 100"),
        k("logging", "burst_limit", "integer", log.burst_limit.to_string(), format!("{MIN_BURST_LIMIT}..={MAX_LOG_LIMIT}"), "Packet-log records allowed at once above the rate (Neutron's `burst_limit`).", "burst_limit = 25"),
        // [api]
        k("api", "token_file", "string (path)", "/run/sgswitch/api-token as root, else $XDG_RUNTIME_DIR/sgswitch/api-token or ~/.sgswitch/api-token (`run --api-token-file` overrides)", "a non-empty path", "File holding the management API's bearer token (root-only).", "token_file = \"/run/sgswitch/api-token\""),
        // [[security_groups]]
        k("security_groups[]", "name", "string", "required", "unique; `default` is the default group", "The group's name; rules and ports refer to it.", "name = \"web\""),
        k("security_groups[]", "description", "string", "\"\"", "any text", "Free text.", "description = \"HTTP from anywhere\""),
        k("security_groups[]", "stateful", "boolean", "true", "true, false; a port cannot mix both", "Stateful: replies of allowed connections pass. Stateless: every packet needs a rule.", "stateful = false"),
        k("security_groups[]", "rules", "array of tables", "the two allow-all egress rules (IPv4, IPv6); for `default` also ingress from members of `default`", "[] = no rule", "The group's rules (allow-only; a port's policy is the union of its groups' rules).", "rules = [ { direction = \"ingress\", protocol = \"tcp\", port_range_min = 80, port_range_max = 80 } ]"),
        // rules
        k("security_groups[].rules[]", "direction", "string", "required", "\"ingress\" (towards the instance), \"egress\" (from it)", "Which traffic the rule allows.", "direction = \"ingress\""),
        k("security_groups[].rules[]", "ethertype", "string", "\"IPv4\"", "\"IPv4\", \"IPv6\" (case-insensitive)", "IP version the rule matches.", "ethertype = \"IPv6\""),
        k("security_groups[].rules[]", "protocol", "string or integer", "any protocol", "a name (tcp, udp, icmp, ipv6-icmp, sctp, ...), 0..=255, \"any\"", "IP protocol; 0 and \"any\" mean every protocol; icmp with IPv6 is ipv6-icmp.", "protocol = \"tcp\""),
        k("security_groups[].rules[]", "port_range_min", "integer or string", "every port", "1..=65535 (ports); 0..=255 (ICMP type)", "tcp, udp, sctp, dccp, udplite: first destination port; icmp: the ICMP type.", "port_range_min = 80"),
        k("security_groups[].rules[]", "port_range_max", "integer or string", "every port", "port_range_min..=65535 (ports); 0..=255 (ICMP code, needs a type)", "Last destination port; icmp: the ICMP code.", "port_range_max = 80"),
        k("security_groups[].rules[]", "remote_ip_prefix", "string (CIDR or address)", "any address", "family of the ethertype; host bits are cleared (as Neutron does; `check` notes it)", "Remote addresses: the source for ingress, the destination for egress.", "remote_ip_prefix = \"203.0.113.0/24\""),
        k("security_groups[].rules[]", "remote_group", "string", "none", "a security group's name; at most one remote", "Remote addresses: those of the ports in that group.", "remote_group = \"web\""),
        k("security_groups[].rules[]", "remote_address_group", "string", "none", "an address group's name; at most one remote", "Remote addresses: the CIDRs of that address group.", "remote_address_group = \"office\""),
        k("security_groups[].rules[]", "description", "string", "\"\"", "any text", "Free text.", "description = \"echo request\""),
        // [[address_groups]]
        k("address_groups[]", "name", "string", "required", "unique", "The address group's name.", "name = \"office\""),
        k("address_groups[]", "description", "string", "\"\"", "any text", "Free text.", "description = \"Office networks\""),
        k("address_groups[]", "addresses", "array of strings", "[]", "CIDRs or bare addresses (/32, /128)", "The addresses.", "addresses = [\"198.51.100.0/24\"]"),
        // [[networks]]
        k("networks[]", "name", "string", "required", "unique", "A network (ports of different networks never see each other's frames).", "name = \"spare\""),
        k("networks[]", "vni", "integer", "derived from the name (FNV-1a, 24 bits)", "1..=16777215, unique per encapsulation when the overlay is used", "The network's virtual network identifier between hosts.", "vni = 1001"),
        k("networks[]", "encap", "string", "\"geneve\"", "\"geneve\" (UDP 6081), \"vxlan\" (UDP 4789)", "The encapsulation of the network's frames between hosts.", "encap = \"vxlan\""),
        // [[ports]]
        k("ports[]", "name", "string", "required", "unique", "The port's name in logs, counters and verdicts.", "name = \"vm-a\""),
        k("ports[]", "network", "string", "\"default\"", "any name", "The port's network.", "network = \"net1\""),
        k("ports[]", "mac", "string", "required", "a unicast MAC, unique within the network", "The instance's MAC (anti-spoofing; set on a tap moved into a namespace).", "mac = \"fa:16:3e:00:00:0a\""),
        k("ports[]", "fixed_ips", "array of strings", "[]", "bare IPv4 / IPv6 addresses", "The instance's addresses (anti-spoofing, remote groups).", "fixed_ips = [\"10.0.0.10\", \"fd00::a\"]"),
        k("ports[]", "security_groups", "array of strings", "[\"default\"] (none without port security)", "names of security groups; [] = none", "The port's groups.", "security_groups = [\"default\", \"web\"]"),
        k("ports[]", "port_security", "boolean", "true", "true, false", "false: no anti-spoofing and no security groups (routers, DHCP, uplinks).", "port_security = false"),
        k("ports[]", "allowed_address_pairs", "array of tables", "[]", "", "Extra (IP or CIDR, MAC) the instance may send from, e.g. a VRRP address.", "allowed_address_pairs = [ { ip_address = \"10.0.0.100/32\" } ]"),
        k("ports[]", "backend", "table", "none (replay only)", "", "How the live switch attaches the port.", "backend = { type = \"tap\", ifname = \"vm-a\" }"),
        k("ports[]", "host", "string", "none (not bound)", "1..64 characters of A-Z a-z 0-9 . _ -", "Neutron's binding:host_id: the host whose switch the port plugs into (a shared store indexes ports by it; single-host use ignores it).", "host = \"compute-1\""),
        k("ports[].allowed_address_pairs[]", "ip_address", "string", "required", "CIDR or bare address", "The extra address.", "ip_address = \"10.0.0.100/32\""),
        k("ports[].allowed_address_pairs[]", "mac_address", "string", "the port's MAC", "a unicast MAC", "The MAC it is sent from.", "mac_address = \"fa:16:3e:8c:84:13\""),
        k("ports[].backend", "type", "string", "required", "\"tap\", \"afxdp\", \"afpacket\"", "tap: the switch creates a tap netdev; afxdp/afpacket: attach to an existing netdev.", "type = \"tap\""),
        k("ports[].backend", "ifname", "string", "required", "an interface name (at most 15 bytes)", "The netdev.", "ifname = \"tap-vm-a\""),
        backend("tap", k("ports[].backend", "netns", "string", "none (the tap stays in the switch's namespace)", "an existing network namespace", "Move the tap into this namespace (the instance side); its MAC is set to the port's `mac`.", "netns = \"vm-a\"")),
        backend("tap", k("ports[].backend", "vnet_hdr", "boolean", "true", "true, false", "Exchange a virtio-net header with every frame: checksum offload and TSO/USO superframes carried whole; false: plain, MTU-sized frames.", "vnet_hdr = false")),
        backend("tap", k("ports[].backend", "queues", "integer", "1", "1..=256", "Queues of the tap (IFF_MULTI_QUEUE above 1): each worker gets one queue and serves the instance's flows that the kernel puts on it; more queues than workers are not opened (said in the log).", "queues = 2")),
        backend("afxdp", k("ports[].backend", "queue", "integer", "0", "0..=4294967295", "The netdev's queue the socket binds to.", "queue = 0")),
        backend("afxdp", k("ports[].backend", "mode", "string", "\"auto\"", "\"native\", \"generic\", \"auto\" (native, generic if the driver refuses)", "How the XDP program is attached.", "mode = \"native\"")),
        // [[hosts]]
        k("hosts[]", "name", "string", "required", "1..64 characters of A-Z a-z 0-9 . _ -, unique", "The host's name (`ports[].host`, `overlay.host`).", "name = \"compute-1\""),
        k("hosts[]", "vtep", "string", "required", "a unicast IPv4 or IPv6 address, unique", "The host's tunnel endpoint on the underlay.", "vtep = \"192.0.2.1\""),
        k("hosts[]", "mac", "string", "the underlay netdev's neighbour table", "a unicast MAC", "The outer destination MAC towards this VTEP (the next hop's).", "mac = \"52:54:00:00:00:01\""),
        // [overlay]
        k("overlay", "host", "string", "none (single host: every port is local)", "a host name", "This switch's host: ports bound to another host are remote, reached through their host's VTEP.", "host = \"compute-1\""),
        k("overlay", "vtep", "string", "this host's `hosts[].vtep`", "a unicast IPv4 or IPv6 address", "The local tunnel endpoint (outer source address).", "vtep = \"192.0.2.1\""),
        k("overlay", "underlay", "table", "none (remote ports unreachable)", "", "The underlay netdev encapsulated frames leave and arrive on.", "underlay = { type = \"afpacket\", ifname = \"eth1\" }"),
        k("overlay.underlay", "type", "string", "\"afpacket\"", "\"afpacket\"", "How the switch attaches to the underlay netdev.", "type = \"afpacket\""),
        k("overlay.underlay", "ifname", "string", "required", "an interface name (at most 15 bytes)", "The underlay netdev (its MTU bounds the inner MTU).", "ifname = \"eth1\""),
        // [[logs]]
        k("logs[]", "name", "string", "\"\"", "any; need not be unique", "The log's name (in its records).", "name = \"web-drops\""),
        k("logs[]", "description", "string", "\"\"", "any text", "Free text.", "description = \"drops on web\""),
        k("logs[]", "resource", "string", "every group", "a security group's name", "The group whose verdicts are logged.", "resource = \"web\""),
        k("logs[]", "target", "string", "every port", "a port's name (of `resource`, if given)", "The port whose verdicts are logged.", "target = \"vm-a\""),
        k("logs[]", "event", "string", "\"ALL\"", "\"ACCEPT\", \"DROP\", \"ALL\"", "ACCEPT: one record per admitted connection; DROP: one per dropped packet.", "event = \"DROP\""),
        k("logs[]", "enabled", "boolean", "true", "true, false", "false: the log exists but records nothing.", "enabled = false"),
    ];
    let ct = ConntrackSettings::default();
    let at = v
        .iter()
        .position(|d| d.table == "logging")
        .unwrap_or(v.len());
    let conntrack: Vec<KeyDoc> = CONNTRACK_FIELDS
        .iter()
        .map(|f| {
            let (meaning, example) = conntrack_meaning(f.key);
            k(
                "conntrack",
                f.key,
                "integer",
                (f.get)(&ct).to_string(),
                format!("{}..={}", f.min, f.max),
                meaning,
                example,
            )
        })
        .collect();
    v.splice(at..at, conntrack);
    v
}

/// The entry of `key` (a full path like `ports[].backend.netns`, the same without `[]`,
/// or a bare key that names one entry, like `napi_defer_us`), or the message for an
/// unknown or ambiguous key (with "did you mean").
pub fn lookup(key: &str) -> Result<&'static KeyDoc, String> {
    let want = key.trim().replace("[]", "");
    let plain = |d: &KeyDoc| d.path().replace("[]", "");
    if let Some(d) = all().iter().find(|d| plain(d) == want) {
        return Ok(d);
    }
    let by_key: Vec<&KeyDoc> = all()
        .iter()
        .filter(|d| plain(d).ends_with(&format!(".{want}")))
        .collect();
    match by_key.as_slice() {
        [d] => return Ok(d),
        [] => {}
        many => {
            let list: Vec<String> = many.iter().map(|d| d.path()).collect();
            return Err(format!(
                "`{key}` is a key of several tables: {}; name one",
                list.join(", ")
            ));
        }
    }
    let paths: Vec<String> = all().iter().map(plain).collect();
    let mut candidates: Vec<&str> = paths.iter().map(String::as_str).collect();
    candidates.extend(all().iter().map(|d| d.key));
    let mut msg = format!("unknown config key `{key}`");
    if let Some(s) = closest(&want, &candidates) {
        let _ = write!(msg, " (did you mean `{s}`?)");
    }
    msg.push_str("; `sgswitch check --explain-all` lists every key");
    Err(msg)
}

/// `check --explain KEY`'s text for one entry.
pub fn explain(d: &KeyDoc) -> String {
    let mut s = format!("{}\n", d.path());
    if let Some(v) = d.variant {
        let _ = writeln!(s, "  backend: type = \"{v}\" only");
    }
    let _ = writeln!(s, "  type:    {}", d.ty);
    let _ = writeln!(s, "  default: {}", d.default);
    if !d.range.is_empty() {
        let _ = writeln!(s, "  values:  {}", d.range);
    }
    let _ = writeln!(s, "  meaning: {}", d.meaning);
    let _ = writeln!(s, "  example: {}", d.example);
    s
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// `docs/configuration.md`: every key, one table per config table.
pub fn markdown() -> String {
    let mut s = String::from(
        "# Configuration reference\n\n\
         Every key of the TOML config file (`sgswitch check --config FILE` validates one; \
         the README's \"Configuration\" section shows a whole file, `configs/example.toml` \
         uses every key with comments). Generated from the key descriptors in \
         `src/control/config/keys.rs` by `sgswitch check --explain-all > docs/configuration.md`; \
         `cargo test` fails when this file and the code differ. \
         `sgswitch check --explain KEY` prints one entry.\n",
    );
    let mut table = None;
    for d in all() {
        if table != Some(d.table) {
            table = Some(d.table);
            let title = match d.table {
                "" => "Top level".to_string(),
                t if t.ends_with("[]") => format!("`[[{}]]`", t.trim_end_matches("[]")),
                t => format!("`[{t}]`"),
            };
            let _ = write!(
                s,
                "\n## {title}\n\n| key | type | default | values | meaning | example |\n|---|---|---|---|---|---|\n"
            );
        }
        let key = match d.variant {
            Some(v) => format!("`{}` ({v})", d.key),
            None => format!("`{}`", d.key),
        };
        let _ = writeln!(
            s,
            "| {key} | {} | {} | {} | {} | `{}` |",
            cell(d.ty),
            cell(&d.default),
            cell(&d.range),
            cell(d.meaning),
            cell(d.example)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_conntrack_field_is_described() {
        for f in CONNTRACK_FIELDS {
            assert!(!conntrack_meaning(f.key).0.is_empty(), "{}", f.key);
        }
    }

    #[test]
    fn paths_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for d in all() {
            assert!(seen.insert(d.path()), "duplicate {}", d.path());
        }
    }

    #[test]
    fn lookup_by_path_key_and_typo() {
        assert_eq!(lookup("switch.workers").unwrap().key, "workers");
        assert_eq!(lookup("napi_defer_us").unwrap().table, "switch");
        assert_eq!(lookup("ports.backend.netns").unwrap().variant, Some("tap"));
        assert_eq!(
            lookup("security_groups[].rules[].protocol").unwrap().key,
            "protocol"
        );
        let e = lookup("napi_defer").unwrap_err();
        assert!(e.contains("did you mean `napi_defer_us`"), "{e}");
        let e = lookup("name").unwrap_err();
        assert!(e.contains("several tables"), "{e}");
    }

    /// Every table of the file (and every backend type) once: the reader asks for each
    /// of its keys whether present or not, so this covers every key it can read.
    const EVERY_TABLE: &str = r#"
[switch]
[conntrack]
[logging]
[api]
[[security_groups]]
name = "g"
rules = [ { direction = "ingress" } ]
[[address_groups]]
name = "a"
[[networks]]
name = "n"
[[ports]]
name = "p1"
mac = "fa:16:3e:00:00:01"
allowed_address_pairs = [ { ip_address = "10.0.0.9" } ]
backend = { type = "tap", ifname = "t1" }
[[ports]]
name = "p2"
mac = "fa:16:3e:00:00:02"
backend = { type = "afxdp", ifname = "t2" }
[[ports]]
name = "p3"
mac = "fa:16:3e:00:00:03"
backend = { type = "afpacket", ifname = "t3" }
[[logs]]
[[hosts]]
[overlay]
underlay = { ifname = "u0" }
"#;

    #[test]
    fn descriptors_are_exactly_the_keys_the_reader_reads() {
        let root = super::super::tree::parse(EVERY_TABLE).unwrap();
        let mut w = super::super::read::Walker::default();
        let _ = super::super::read::read_root(&mut w, &root);
        assert!(w.problems.is_empty());
        let read: std::collections::BTreeSet<String> = w
            .asked
            .iter()
            .map(|(t, k)| match *t {
                "" => k.to_string(),
                t => format!("{t}.{k}"),
            })
            .collect();
        let described: std::collections::BTreeSet<String> =
            all().iter().map(|d| d.path()).collect();
        let undocumented: Vec<_> = read.difference(&described).collect();
        let unread: Vec<_> = described.difference(&read).collect();
        assert!(
            undocumented.is_empty() && unread.is_empty(),
            "read but without a descriptor in keys.rs: {undocumented:?}; described but never read: {unread:?}"
        );
        // Each backend key is read for its own type.
        for d in all().iter().filter(|d| d.variant.is_some()) {
            let v = d.variant.unwrap();
            assert!(names("ports[].backend", Some(v)).contains(&d.key));
        }
    }

    #[test]
    fn docs_configuration_md_is_generated_from_the_descriptors() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md");
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == markdown(),
            "docs/configuration.md differs from the key descriptors: run \
             `cargo run --release -- check --explain-all > docs/configuration.md`"
        );
    }
}
