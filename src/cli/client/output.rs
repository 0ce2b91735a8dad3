//! Human output of the API client commands: an aligned table, the rule and port rows,
//! and the `show` layouts of a group and a port.
//!
//! Owns: formatting JSON answers of the API for people. May not send requests, except
//! for the group-name map that [`show_port`] needs to name groups.
//!
//! # The table is hand-written, not `comfy-table` or `tabled`
//! [`table`] prints a header, a rule of dashes exactly as wide as each column's widest
//! cell, columns two spaces apart and no trailing blanks (`A    Bee` / `---  ---` /
//! `xyz  1`, asserted byte for byte by the `table_aligns_columns` test and read by
//! scripts). Neither crate can print that rule: tried with `comfy-table` 7.2
//! (`default-features = false`; custom presets, padding `(0, 1)`) and `tabled` 0.20
//! (`default-features = false, features = ["std"]`; `Style::blank()` with a `-` header
//! line), both draw the header line across the padding and the column gap (`---------`,
//! `---- ----`), or put one space between columns (`--- ---`), and pad the last column
//! with trailing blanks; matching the output would mean computing the widths here
//! anyway. What they would cost, measured on this machine (2 cores under other builds'
//! load; CPU time is the figure to trust, wall time was 2–3× it):
//!
//! | | added crates | CPU to compile them (user+sys) | stripped size of a minimal binary printing one table |
//! |---|---|---:|---:|
//! | hand-written (this file) | — | — | 347,792 B (no table crate) |
//! | `comfy-table` | comfy-table, unicode-segmentation, unicode-width | +10.1 s | 495,576 B (+148 KB) |
//! | `tabled` | tabled, papergrid, bytecount, fnv, unicode-width | +19.0 s | 620,912 B (+273 KB) |
//!
//! (`comfy-table` would have been the leaner.) The other "tables" of the CLI are not
//! tables: `check`'s summary is one aligned sentence per object, and the counter dump
//! is `runtime::switch::format_report`'s.

use std::fmt::Write as _;

use serde_json::Value;

use sgswitch::control::http_client::Client;

use super::{group_name_map, print_json};

pub(super) fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap_or_default().to_string()
}

pub(crate) fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A plain aligned table: the header, a rule of dashes as wide as each column, the
/// rows; columns two spaces apart, widths in `char`s, no trailing blanks (see the module
/// doc for why this is not a table crate).
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut w: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(x) = w.get_mut(i) {
                *x = (*x).max(c.chars().count());
            }
        }
    }
    let mut out = String::new();
    let line = |cells: &[String], out: &mut String| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            let pad = w[i].saturating_sub(c.chars().count());
            l.push_str(c);
            l.push_str(&" ".repeat(pad));
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(
        &headers.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
        &mut out,
    );
    line(
        &w.iter().map(|n| "-".repeat(*n)).collect::<Vec<_>>(),
        &mut out,
    );
    for r in rows {
        line(r, &mut out);
    }
    out
}

pub(super) fn port_range(r: &Value) -> String {
    let proto = text(&r["protocol"]);
    let (min, max) = (&r["port_range_min"], &r["port_range_max"]);
    if proto == "icmp" || proto == "ipv6-icmp" {
        return match (min.as_u64(), max.as_u64()) {
            (None, _) => "any".into(),
            (Some(t), None) => format!("type {t}"),
            (Some(t), Some(c)) => format!("type {t} code {c}"),
        };
    }
    match (min.as_u64(), max.as_u64()) {
        (Some(a), Some(b)) if a == b => a.to_string(),
        (Some(a), Some(b)) => format!("{a}:{b}"),
        _ => "any".into(),
    }
}

/// The name of group `id` in `names` (see `group_name_map`), or the id itself.
fn group_name(names: &[(String, String)], id: &str) -> String {
    names
        .iter()
        .find(|(i, _)| i == id)
        .map(|(_, n)| n.clone())
        .unwrap_or_else(|| id.to_string())
}

/// The table of `rules`, their groups named from `names`.
pub(super) fn rule_table(rules: &[Value], names: &[(String, String)]) -> String {
    table(RULE_HEADERS, &rule_rows(rules, names))
}

fn rule_rows(rules: &[Value], names: &[(String, String)]) -> Vec<Vec<String>> {
    rules
        .iter()
        .map(|r| {
            let remote = if !r["remote_ip_prefix"].is_null() {
                text(&r["remote_ip_prefix"])
            } else if let Some(g) = r["remote_group_id"].as_str() {
                format!("group {}", group_name(names, g))
            } else if let Some(a) = r["remote_address_group_id"].as_str() {
                format!("address group {a}")
            } else {
                "any".into()
            };
            vec![
                id_of(r),
                group_name(names, r["security_group_id"].as_str().unwrap_or_default()),
                text(&r["direction"]),
                text(&r["ethertype"]),
                if r["protocol"].is_null() {
                    "any".into()
                } else {
                    text(&r["protocol"])
                },
                port_range(r),
                remote,
                text(&r["description"]),
            ]
        })
        .collect()
}

const RULE_HEADERS: &[&str] = &[
    "ID",
    "Group",
    "Direction",
    "Ethertype",
    "Protocol",
    "Ports",
    "Remote",
    "Description",
];

pub(super) fn show_group(g: &Value, names: &[(String, String)], json_out: bool) {
    if json_out {
        print_json(g);
        return;
    }
    let mut out = String::new();
    let _ = writeln!(out, "id:          {}", id_of(g));
    let _ = writeln!(out, "name:        {}", text(&g["name"]));
    let _ = writeln!(out, "description: {}", text(&g["description"]));
    let _ = writeln!(out, "stateful:    {}", text(&g["stateful"]));
    let _ = writeln!(out, "revision:    {}", text(&g["revision_number"]));
    let _ = writeln!(out, "updated_at:  {}", text(&g["updated_at"]));
    let rules = g["security_group_rules"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let _ = writeln!(out, "rules ({}):", rules.len());
    out.push_str(&rule_table(&rules, names));
    print!("{out}");
}

pub(super) fn port_row(p: &Value, names: &[(String, String)]) -> Vec<String> {
    let ips: Vec<String> = p["fixed_ips"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|f| text(&f["ip_address"]))
        .collect();
    let groups: Vec<String> = p["security_groups"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|g| group_name(names, &text(g)))
        .collect();
    vec![
        id_of(p),
        text(&p["name"]),
        text(&p["mac_address"]),
        ips.join(","),
        groups.join(","),
        text(&p["port_security_enabled"]),
        text(&p["status"]),
    ]
}

pub(super) const PORT_HEADERS: &[&str] = &[
    "ID",
    "Name",
    "MAC",
    "Fixed IPs",
    "Security groups",
    "Port security",
    "Status",
];

pub(super) fn show_port(c: &Client, p: &Value, json_out: bool) {
    if json_out {
        print_json(p);
    } else {
        print!(
            "{}",
            table(PORT_HEADERS, &[port_row(p, &group_name_map(c))])
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_aligns_columns() {
        let t = table(&["A", "Bee"], &[vec!["xyz".into(), "1".into()]]);
        assert_eq!(t, "A    Bee\n---  ---\nxyz  1\n");
    }

    #[test]
    fn port_ranges_display() {
        assert_eq!(
            port_range(&json!({"protocol": "tcp", "port_range_min": 22, "port_range_max": 22})),
            "22"
        );
        assert_eq!(
            port_range(&json!({"protocol": "tcp", "port_range_min": 1, "port_range_max": 9})),
            "1:9"
        );
        assert_eq!(
            port_range(&json!({"protocol": "icmp", "port_range_min": 8, "port_range_max": null})),
            "type 8"
        );
        assert_eq!(port_range(&json!({"protocol": null})), "any");
    }
}
