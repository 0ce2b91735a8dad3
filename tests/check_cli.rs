//! `sgswitch check` end to end: the built binary on good and bad configs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sgswitch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sgswitch"))
        .args(args)
        .output()
        .expect("run sgswitch")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn shipped(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("configs")
        .join(name)
        .display()
        .to_string()
}

/// A config file in a per-test temporary directory, removed on drop.
struct TempConfig {
    dir: PathBuf,
    path: PathBuf,
}

impl TempConfig {
    fn new(test: &str, text: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("sgswitch-check-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.toml");
        std::fs::write(&path, text).unwrap();
        TempConfig { dir, path }
    }

    fn path(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn quickstart_is_valid_and_summarised() {
    let file = shipped("quickstart.toml");
    let o = sgswitch(&["check", "--config", &file]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{}{}", out, stderr(&o));
    assert!(out.starts_with(&format!("{file}: OK\n")), "{out}");
    assert!(out.contains("security groups (3):"), "{out}");
    assert!(
        out.contains("web      stateful   6 rules (4 ingress, 2 egress), 2 ports"),
        "{out}"
    );
    assert!(
        out.contains("default  stateful   4 rules (2 ingress, 2 egress), 3 ports"),
        "{out}"
    );
    assert!(out.contains("networks (1):\n  default  4 ports"), "{out}");
    assert!(out.contains(
        "web-1    network default  mac fa:16:3e:00:00:11  ips 10.0.0.11,fd00::11  groups default,web,ssh  rules 7 ingress / 6 egress"
    ), "{out}");
    assert!(out.contains("router   network default  mac fa:16:3e:00:00:01  ips 10.0.0.1,fd00::1  port security off"), "{out}");
    assert!(stderr(&o).is_empty());
}

#[test]
fn example_is_valid() {
    let o = sgswitch(&["check", "-c", &shipped("example.toml")]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{}{}", out, stderr(&o));
    assert!(out.contains("address groups (2):"), "{out}");
    assert!(out.contains("stateless-dns  stateless  7 rules"), "{out}");
    assert!(out.contains("ports (8):"), "{out}");
}

#[test]
fn quiet_prints_nothing() {
    let o = sgswitch(&["check", "--quiet", "--config", &shipped("quickstart.toml")]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).is_empty());
}

#[test]
fn bad_config_lists_every_problem_with_file_and_line() {
    let cfg = TempConfig::new(
        "every-problem",
        r#"# a config with six problems
[[security_groups]]
name = "web"
rules = [
  { direction = "ingress", protocol = "tcp", port_range_min = 80, port_range_max = 80 },
  { direction = "ingress", protocol = "tcp", port_range_min = 80, port_range_max = 80 },
  { direction = "ingress", ethertype = "IPv4", protocol = "ipv6-icmp" },
]

[[ports]]
name = "vm-a"
mac = "01:00:5e:00:00:01"
fixed_ips = ["10.0.0.10"]
security_groups = ["web", "missing"]
colour = "blue"

[[ports]]
name = "vm-a"
mac = "fa:16:3e:00:00:0b"
"#,
    );
    let o = sgswitch(&["check", "--config", cfg.path()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
    let lines: Vec<&str> = err.lines().collect();
    let f = cfg.path();
    let expect = [
        format!("{f}:6: security_groups[0].rules[1] (group \"web\", rule 1): duplicate rule: same as rule 0"),
        format!("{f}:7: security_groups[0].rules[2].protocol (group \"web\", rule 2): invalid ethertype IPv4 for protocol ipv6-icmp"),
        format!("{f}:12: ports[0].mac (port \"vm-a\"): invalid MAC address \"01:00:5e:00:00:01\""),
        format!("{f}:14: ports[0].security_groups[1] (port \"vm-a\"): security group \"missing\" not found"),
        format!("{f}:15: ports[0].colour: unknown key `colour`"),
        format!("{f}:18: ports[1].name (port \"vm-a\"): port name \"vm-a\" is already used by ports[0]"),
    ];
    assert_eq!(lines.len(), expect.len() + 1, "{err}");
    for (line, want) in lines.iter().zip(&expect) {
        assert!(
            line.starts_with(want.as_str()),
            "got:  {line}\nwant: {want}"
        );
    }
    assert_eq!(lines[expect.len()], format!("{f}: 6 problems found"));
}

#[test]
fn protocol_zero_and_any_are_two_rules() {
    // Neutron stores protocol 0 as "0", not null: a rule with protocol 0 and an otherwise
    // identical one with protocol any (or none) are two rules (security-groups.md §11, §20).
    let cfg = TempConfig::new(
        "protocol-zero",
        r#"[[security_groups]]
name = "g"
rules = [
  { direction = "ingress", remote_ip_prefix = "10.0.0.0/8" },
  { direction = "ingress", protocol = 0, remote_ip_prefix = "10.0.0.0/8" },
  { direction = "egress", protocol = "any" },
  { direction = "egress", protocol = "0" },
]
"#,
    );
    let o = sgswitch(&["check", "--config", cfg.path()]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{}{}", out, stderr(&o));
    assert!(
        out.contains("g        stateful   4 rules (2 ingress, 2 egress)"),
        "{out}"
    );
    // 0, "0", ip and hopopt are one protocol: still duplicates of each other.
    let cfg = TempConfig::new(
        "protocol-zero-dup",
        "[[security_groups]]\nname = \"g\"\nrules = [\n  { direction = \"egress\", protocol = 0 },\n  { direction = \"egress\", protocol = \"ip\" },\n]\n",
    );
    let o = sgswitch(&["check", "--config", cfg.path()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with(&format!(
            "{}:5: security_groups[0].rules[1] (group \"g\", rule 1): duplicate rule: same as rule 0",
            cfg.path()
        )),
        "{err}"
    );
}

#[test]
fn syntax_error_has_a_line() {
    let cfg = TempConfig::new("syntax", "[[ports]]\nname = \"a\"\nmac = \n");
    let o = sgswitch(&["check", "--config", cfg.path()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.starts_with(&format!("{}:3: TOML syntax error", cfg.path())),
        "{err}"
    );
}

#[test]
fn type_and_range_errors() {
    let cfg = TempConfig::new(
        "types",
        "[switch]\nburst = 512\n\n[[security_groups]]\nname = \"g\"\nstateful = \"no\"\n",
    );
    let o = sgswitch(&["check", "--config", cfg.path()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    let f = cfg.path();
    assert!(
        err.contains(&format!("{f}:2: switch.burst: 512 is out of range 1..=256")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{f}:6: security_groups[0].stateful: expected a boolean"
        )),
        "{err}"
    );
}

#[test]
fn missing_file_is_an_error() {
    let o = sgswitch(&["check", "--config", "/nonexistent/dir/none.toml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("cannot read config file"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["check"],
        vec!["check", "--config"],
        vec!["check", "--config", "x", "--bogus"],
        vec!["frobnicate"],
        vec![],
    ] {
        let o = sgswitch(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).is_empty());
    }
}

#[test]
fn help_and_version() {
    let o = sgswitch(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(out.contains("Neutron security groups"), "{out}");
    assert!(out.contains("check"), "{out}");
    assert!(out.contains("Exit codes"), "{out}");

    let o = sgswitch(&["check", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(out.contains("--config <FILE>"), "{out}");
    assert!(out.contains("FILE:LINE"), "{out}");

    let o = sgswitch(&["help", "check"]);
    assert_eq!(o.status.code(), Some(0));

    let o = sgswitch(&["--version"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o).trim(),
        format!("sgswitch {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn host_bits_are_noted_and_verbose_lists_normalised_rules() {
    let cfg = TempConfig::new(
        "notes",
        r#"[[security_groups]]
name = "web"
rules = [
  { direction = "ingress", protocol = "tcp", port_range_min = 80, port_range_max = 80, remote_ip_prefix = "10.0.0.5/24" },
]
"#,
    );
    let o = sgswitch(&["check", "--verbose", "-c", cfg.path()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        format!(
            "{}:4: security_groups[0].rules[0].remote_ip_prefix: note: \"10.0.0.5/24\" has host bits set: normalised to 10.0.0.0/24 (as Neutron stores it)\n",
            cfg.path()
        )
    );
    let out = stdout(&o);
    assert!(
        out.contains("rules:\n  web:\n    [0] ingress IPv4 tcp 80-80 from 10.0.0.0/24\n"),
        "{out}"
    );
    assert!(
        out.contains("    [2] ingress IPv4 any from group default\n"),
        "{out}"
    );
}

#[test]
fn json_is_the_normalised_model() {
    let o = sgswitch(&["check", "--json", "-c", &shipped("quickstart.toml")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    let groups = v["security_groups"].as_array().unwrap();
    assert_eq!(groups.len(), 3);
    let default = groups.iter().find(|g| g["name"] == "default").unwrap();
    assert_eq!(default["rules"].as_array().unwrap().len(), 4);
    assert_eq!(default["rules"][2]["remote_group"], "default");
    let web = groups.iter().find(|g| g["name"] == "web").unwrap();
    assert_eq!(web["rules"][0]["protocol"], "tcp");
    assert_eq!(web["rules"][0]["remote_ip_prefix"], "0.0.0.0/0");
    assert_eq!(v["ports"].as_array().unwrap().len(), 4);
    assert_eq!(v["ports"][0]["effective_rules"]["ingress"], 7);
    assert_eq!(v["networks"][0]["name"], "default");
    assert_eq!(v["conntrack"]["capacity"], 262144);
}

#[test]
fn explain_a_key_and_suggest_on_a_typo() {
    let o = sgswitch(&["check", "--explain", "switch.napi_defer_us"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("switch.napi_defer_us\n"), "{out}");
    assert!(out.contains("default: 100"), "{out}");
    assert!(out.contains("values:  0..=100000"), "{out}");

    let o = sgswitch(&["check", "--explain", "ports.backend.netns"]);
    assert!(stdout(&o).contains("type = \"tap\" only"), "{}", stdout(&o));

    let o = sgswitch(&["check", "--explain", "remote_ip_prefx"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("did you mean `remote_ip_prefix`?"),
        "{}",
        stderr(&o)
    );

    let o = sgswitch(&["check", "--explain-all"]);
    assert_eq!(o.status.code(), Some(0));
    let docs = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md"),
    )
    .unwrap();
    assert_eq!(
        stdout(&o),
        docs,
        "docs/configuration.md is --explain-all's output"
    );
}
