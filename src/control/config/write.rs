//! The export: a [`Config`] written back as TOML in the format of [`super`], every
//! default explicit (the `default` group, template rules, `security_groups`,
//! `port_security`, a log's `event` and `enabled`), so that
//! `parse_str(&to_toml_string(&c), ..) == Ok(c)`. `[logging]` is written only when it is
//! not the default (see [`super`]).
//!
//! The document is built with `toml_edit` (string quoting and escapes, tables, arrays of
//! tables, inline tables), with decor only for the layout: a blank line before each
//! table, one rule per line. This replaced a hand-written writer of `format!` lines
//! (which already borrowed `toml`'s string quoting); the hand-written one was not
//! measurably better (see the measurements in [`super`]), so it is gone.
//!
//! Owns: the layout of an exported file. May not touch: reading or validation (the
//! round trip is checked by the tests here through [`super::parse_str`]).
//! Depends on: `policy` (the model, protocol names, the MAC text form) and [`super`]'s
//! types; nothing of the store or the runtime.

use toml_edit::{value, Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value};

use crate::policy::protocol;
use crate::policy::{Backend, Remote, Rule, CONNTRACK_FIELDS};
use crate::runtime::switch::NewFlowBudget;

use super::{Config, LoggingSettings, OverlaySettings};

/// An array of strings, on one line.
fn strings<I: IntoIterator<Item = String>>(items: I) -> Value {
    Value::Array(items.into_iter().collect())
}

/// A table preceded by a blank line.
fn spaced_table() -> Table {
    let mut t = Table::new();
    t.decor_mut().set_prefix("\n");
    t
}

/// A TOML integer from a validated count or duration (always far below `i64::MAX`).
fn int(v: u64) -> Item {
    value(i64::try_from(v).unwrap_or(i64::MAX))
}

/// One rule as an inline table (keys in the order of the config format).
fn rule_table(r: &Rule) -> InlineTable {
    let mut t = InlineTable::new();
    t.insert("direction", r.direction.as_str().into());
    t.insert("ethertype", r.ethertype.as_str().into());
    if let Some(p) = r.neutron_protocol() {
        let v = match protocol::protocol_name(p) {
            Some(name) => name.into(),
            None => i64::from(p).into(),
        };
        t.insert("protocol", v);
    }
    if let Some(v) = r.port_range_min {
        t.insert("port_range_min", i64::from(v).into());
    }
    if let Some(v) = r.port_range_max {
        t.insert("port_range_max", i64::from(v).into());
    }
    match &r.remote {
        Remote::Any => {}
        Remote::Prefix(net) => {
            let raw = r
                .remote_ip_prefix_raw
                .clone()
                .unwrap_or_else(|| net.to_string());
            t.insert("remote_ip_prefix", raw.into());
        }
        Remote::Group(name) => {
            t.insert("remote_group", name.as_str().into());
        }
        Remote::AddressGroup(name) => {
            t.insert("remote_address_group", name.as_str().into());
        }
    }
    if !r.description.is_empty() {
        t.insert("description", r.description.as_str().into());
    }
    t
}

fn backend_table(b: &Backend) -> InlineTable {
    let mut t = InlineTable::new();
    match b {
        Backend::Tap {
            ifname,
            netns,
            vnet_hdr,
            queues,
            ..
        } => {
            t.insert("type", "tap".into());
            t.insert("ifname", ifname.as_str().into());
            if let Some(ns) = netns {
                t.insert("netns", ns.as_str().into());
            }
            t.insert("vnet_hdr", (*vnet_hdr).into());
            if *queues > 1 {
                t.insert("queues", i64::from(*queues).into());
            }
        }
        Backend::AfXdp {
            ifname,
            queue,
            mode,
        } => {
            t.insert("type", "afxdp".into());
            t.insert("ifname", ifname.as_str().into());
            t.insert("queue", i64::from(*queue).into());
            if let Some(m) = mode {
                t.insert("mode", m.as_str().into());
            }
        }
        Backend::AfPacket { ifname } => {
            t.insert("type", "afpacket".into());
            t.insert("ifname", ifname.as_str().into());
        }
    }
    t
}

/// Write a config back as TOML, every default explicit; `parse_str` of the result gives
/// back an equal [`Config`].
pub fn to_toml_string(config: &Config) -> String {
    let m = &config.model;
    let mut doc = DocumentMut::new();

    let mut switch = Table::new();
    switch
        .decor_mut()
        .set_prefix("# sgswitch configuration\n\n");
    if config.switch.workers > 0 {
        switch["workers"] = int(config.switch.workers as u64);
    }
    if !config.switch.cores.is_empty() {
        switch["cores"] = value(Array::from_iter(
            config.switch.cores.iter().map(|&c| c as i64),
        ));
    }
    switch["burst"] = int(config.switch.burst as u64);
    switch["idle_backoff"] = value(config.switch.idle_backoff);
    switch["napi_defer_us"] = int(u64::from(config.switch.napi_defer_us));
    // The flood settings only when they differ from the defaults (older exports stay
    // byte-identical).
    let flood = config.switch.flood;
    if flood.new_flow_budget != NewFlowBudget::Auto {
        switch["new_flow_budget"] = match flood.new_flow_budget {
            NewFlowBudget::PerBurst(n) => int(u64::from(n)),
            b => value(b.to_config()),
        };
    }
    if !flood.fair_share {
        switch["fair_share"] = value(false);
    }
    switch["permitted_ethertypes"] = value(strings(
        m.permitted_ethertypes.iter().map(|e| format!("{e:#06x}")),
    ));
    doc["switch"] = Item::Table(switch);

    let mut ct = spaced_table();
    for f in CONNTRACK_FIELDS {
        ct[f.key] = int((f.get)(&m.conntrack));
    }
    doc["conntrack"] = Item::Table(ct);

    let mut networks = ArrayOfTables::new();
    for n in &m.networks {
        let mut t = spaced_table();
        t["name"] = value(n.name.as_str());
        if let Some(v) = n.vni {
            t["vni"] = int(u64::from(v));
        }
        if let Some(e) = n.encap {
            t["encap"] = value(e.as_str());
        }
        networks.push(t);
    }

    let mut hosts = ArrayOfTables::new();
    for h in &m.hosts {
        let mut t = spaced_table();
        t["name"] = value(h.name.as_str());
        t["vtep"] = value(h.vtep.to_string());
        if let Some(mac) = h.mac {
            t["mac"] = value(mac.to_string());
        }
        hosts.push(t);
    }

    let mut groups = ArrayOfTables::new();
    for g in &m.security_groups {
        let mut t = spaced_table();
        t["name"] = value(g.name.as_str());
        t["description"] = value(g.description.as_str());
        t["stateful"] = value(g.stateful);
        let mut rules = Array::new();
        for r in &g.rules {
            rules.push_formatted(Value::InlineTable(rule_table(r)).decorated("\n  ", ""));
        }
        if !rules.is_empty() {
            rules.set_trailing_comma(true);
            rules.set_trailing("\n");
        }
        t["rules"] = value(rules);
        groups.push(t);
    }

    let mut address_groups = ArrayOfTables::new();
    for a in &m.address_groups {
        let mut t = spaced_table();
        t["name"] = value(a.name.as_str());
        if !a.description.is_empty() {
            t["description"] = value(a.description.as_str());
        }
        t["addresses"] = value(strings(a.addresses.iter().map(|n| n.to_string())));
        address_groups.push(t);
    }

    let mut ports = ArrayOfTables::new();
    for p in &m.ports {
        let mut t = spaced_table();
        t["name"] = value(p.name.as_str());
        t["network"] = value(p.network.as_str());
        t["mac"] = value(p.mac.to_string());
        t["fixed_ips"] = value(strings(p.fixed_ips.iter().map(|ip| ip.to_string())));
        t["security_groups"] = value(strings(p.security_groups.iter().cloned()));
        t["port_security"] = value(p.port_security);
        if !p.allowed_address_pairs.is_empty() {
            let pairs: Array = p
                .allowed_address_pairs
                .iter()
                .map(|a| {
                    let mut pair = InlineTable::new();
                    pair.insert("ip_address", a.ip_address.to_string().into());
                    if let Some(mac) = a.mac_address {
                        pair.insert("mac_address", mac.to_string().into());
                    }
                    pair
                })
                .collect();
            t["allowed_address_pairs"] = value(pairs);
        }
        if let Some(b) = &p.backend {
            t["backend"] = value(backend_table(b));
        }
        if let Some(h) = &p.host {
            t["host"] = value(h.as_str());
        }
        ports.push(t);
    }

    let mut logs = ArrayOfTables::new();
    for l in &m.logs {
        let mut t = spaced_table();
        t["name"] = value(l.name.as_str());
        if !l.description.is_empty() {
            t["description"] = value(l.description.as_str());
        }
        if let Some(g) = &l.resource {
            t["resource"] = value(g.as_str());
        }
        if let Some(p) = &l.target {
            t["target"] = value(p.as_str());
        }
        t["event"] = value(l.event.as_str());
        t["enabled"] = value(l.enabled);
        logs.push(t);
    }

    if config.logging != LoggingSettings::default() {
        let mut t = spaced_table();
        if let Some(l) = &config.logging.level {
            t["level"] = value(l.as_str());
        }
        if let Some(f) = &config.logging.file {
            t["file"] = value(f.to_string_lossy().as_ref());
        }
        t["rate_limit"] = int(u64::from(config.logging.rate_limit));
        t["burst_limit"] = int(u64::from(config.logging.burst_limit));
        doc["logging"] = Item::Table(t);
    }

    if let Some(f) = &config.api.token_file {
        let mut t = spaced_table();
        t["token_file"] = value(f.to_string_lossy().as_ref());
        doc["api"] = Item::Table(t);
    }

    let o = &config.overlay;
    if m.local_host.is_some() || *o != OverlaySettings::default() {
        let mut t = spaced_table();
        if let Some(h) = &m.local_host {
            t["host"] = value(h.as_str());
        }
        if let Some(v) = o.vtep {
            t["vtep"] = value(v.to_string());
        }
        if let Some(u) = &o.underlay {
            let mut ut = InlineTable::new();
            ut.insert("type", u.backend.as_str().into());
            ut.insert("ifname", u.ifname.as_str().into());
            t["underlay"] = value(ut);
        }
        doc["overlay"] = Item::Table(t);
    }

    for (key, list) in [
        ("hosts", hosts),
        ("networks", networks),
        ("security_groups", groups),
        ("address_groups", address_groups),
        ("ports", ports),
        ("logs", logs),
    ] {
        if !list.is_empty() {
            doc[key] = Item::ArrayOfTables(list);
        }
    }
    doc.to_string()
}

#[cfg(test)]
mod tests {
    use super::super::parse_str;
    use super::super::tests::lines;
    use super::super::SwitchSettings;
    use super::*;
    use crate::policy::{validate_model, Model};

    const EXAMPLE: &str = include_str!("../../../configs/example.toml");
    const QUICKSTART: &str = include_str!("../../../configs/quickstart.toml");

    fn round_trip(text: &str) {
        let c = parse_str(text, "in.toml").unwrap_or_else(|e| panic!("{e}"));
        let out = to_toml_string(&c);
        let back = parse_str(&out, "out.toml").unwrap_or_else(|e| panic!("{e}\n{out}"));
        assert_eq!(back, c, "round trip changed the config:\n{out}");
        assert_eq!(to_toml_string(&back), out, "export is not a fixed point");
    }

    #[test]
    fn protocol_zero_and_any_survive_an_export() {
        let text = "[[security_groups]]\nname = \"g\"\nrules = [\n  { direction = \"egress\" },\n  { direction = \"egress\", protocol = \"hopopt\" },\n]\n";
        round_trip(text);
        let out = to_toml_string(&parse_str(text, "t.toml").unwrap());
        assert!(
            out.contains("  { direction = \"egress\", ethertype = \"IPv4\" },\n  { direction = \"egress\", ethertype = \"IPv4\", protocol = 0 },\n"),
            "{out}"
        );
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
                let config = Config { model: valid_model(spec), switch: SwitchSettings::default(), logging: LoggingSettings::default(), api: Default::default(), overlay: Default::default() };
                let text = to_toml_string(&config);
                let back = parse_str(&text, "export.toml");
                prop_assert_eq!(back.as_ref().ok(), Some(&config), "{}", text);
            }
        }
    }
}
