//! Notes on a valid config: values the model stores differently from how the file wrote
//! them, the way Neutron normalises them (a CIDR with host bits set, e.g.
//! `remote_ip_prefix = "10.0.0.5/24"`, is stored as `10.0.0.0/24`). `sgswitch check`
//! prints them as `FILE:LINE: key.path: note: ...` and still exits 0.
//!
//! Owns: finding those values in the file and the note's wording. May not touch: the
//! normalisation itself (`policy::validate` does it; this only compares the written
//! value with the network it stands for) or whether a config is valid.

use std::fmt;

use ipnet::IpNet;

use super::tree::{self, Kind, Node};

/// One note: where, and what was normalised.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ConfigNote {
    pub file: String,
    pub line: Option<usize>,
    /// Key path (`security_groups[0].rules[2].remote_ip_prefix`).
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(
                f,
                "{}:{l}: {}: note: {}",
                self.file, self.path, self.message
            ),
            None => write!(f, "{}: {}: note: {}", self.file, self.path, self.message),
        }
    }
}

/// The notes of config text (already known to be valid TOML; nothing for invalid text).
pub fn notes(text: &str, file_name: &str) -> Vec<ConfigNote> {
    let Ok(root) = tree::parse(text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut note = |path: String, node: &Node| {
        let Kind::Str(s) = &node.kind else { return };
        let Ok(net) = s.trim().parse::<IpNet>() else {
            return;
        };
        if net.trunc() != net {
            out.push(ConfigNote {
                file: file_name.to_string(),
                line: node.line_span().map(|r| tree::line_of(text, r.start)),
                path,
                message: format!(
                    "{s:?} has host bits set: normalised to {} (as Neutron stores it)",
                    net.trunc()
                ),
            });
        }
    };
    for (i, g) in items(root.get("security_groups")) {
        for (j, r) in items(g.get("rules")) {
            if let Some(n) = r.get("remote_ip_prefix") {
                note(
                    format!("security_groups[{i}].rules[{j}].remote_ip_prefix"),
                    n,
                );
            }
        }
    }
    for (i, a) in items(root.get("address_groups")) {
        for (j, n) in items(a.get("addresses")) {
            note(format!("address_groups[{i}].addresses[{j}]"), n);
        }
    }
    for (i, p) in items(root.get("ports")) {
        for (j, pair) in items(p.get("allowed_address_pairs")) {
            if let Some(n) = pair.get("ip_address") {
                note(
                    format!("ports[{i}].allowed_address_pairs[{j}].ip_address"),
                    n,
                );
            }
        }
    }
    out
}

fn items(node: Option<&Node>) -> impl Iterator<Item = (usize, &Node)> {
    let items: &[Node] = match node.map(|n| &n.kind) {
        Some(Kind::Array(items)) => items,
        _ => &[],
    };
    items.iter().enumerate()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_bits_are_noted_with_line_and_path() {
        let text = r#"
[[security_groups]]
name = "web"
rules = [
  { direction = "ingress", remote_ip_prefix = "10.0.0.0/24" },
  { direction = "ingress", remote_ip_prefix = "10.0.0.5/24" },
  { direction = "ingress", remote_ip_prefix = "10.0.0.5" },
]

[[address_groups]]
name = "a"
addresses = ["192.0.2.7/28", "198.51.100.0/24"]
"#;
        let n: Vec<String> = notes(text, "t.toml")
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(
            n,
            [
                "t.toml:6: security_groups[0].rules[1].remote_ip_prefix: note: \"10.0.0.5/24\" has host bits set: normalised to 10.0.0.0/24 (as Neutron stores it)",
                "t.toml:12: address_groups[0].addresses[0]: note: \"192.0.2.7/28\" has host bits set: normalised to 192.0.2.0/28 (as Neutron stores it)",
            ]
        );
        assert!(super::super::parse_str(text, "t.toml").is_ok());
    }
}
