//! `[[logs]]` and `[logging]`: reading, defaults, errors with their lines, the export.

use super::tests::{errors, lines};
use super::*;
use crate::policy::{ErrorClass, ErrorKind, LogEvent, NetworkLog};

const BASE: &str = r#"[[security_groups]]
name = "web"

[[ports]]
name = "vm-a"
mac = "fa:16:3e:00:00:0a"
security_groups = ["web"]

[[ports]]
name = "vm-b"
mac = "fa:16:3e:00:00:0b"
"#;

#[test]
fn logs_and_logging_are_read_with_neutron_defaults() {
    let text = format!(
        "{BASE}
[[logs]]
name = \"web-all\"
description = \"d\"
resource = \"web\"
target = \"vm-a\"
event = \"ACCEPT\"
enabled = false

[[logs]]

[logging]
file = \"/var/log/sgswitch/packets.log\"
rate_limit = 1000
burst_limit = 50
"
    );
    let c = parse_str(&text, "t.toml").unwrap();
    assert_eq!(
        c.model.logs,
        vec![
            NetworkLog {
                name: "web-all".into(),
                description: "d".into(),
                resource: Some("web".into()),
                target: Some("vm-a".into()),
                event: LogEvent::Accept,
                enabled: false,
            },
            NetworkLog {
                name: String::new(),
                description: String::new(),
                resource: None,
                target: None,
                event: LogEvent::All,
                enabled: true,
            },
        ]
    );
    assert_eq!(
        c.logging,
        LoggingSettings {
            level: None,
            file: Some("/var/log/sgswitch/packets.log".into()),
            rate_limit: 1000,
            burst_limit: 50,
        }
    );
    // Without the table: stderr, Neutron's 100/s and 25.
    let c = parse_str(BASE, "t.toml").unwrap();
    assert_eq!(c.logging, LoggingSettings::default());
    assert_eq!((c.logging.rate_limit, c.logging.burst_limit), (100, 25));
    assert!(c.model.logs.is_empty());
}

#[test]
fn log_errors_carry_their_lines() {
    let text = format!(
        "{BASE}
[[logs]]
resource = \"nope\"
target = \"ghost\"
event = \"accept\"
colour = 1

[[logs]]
resource = \"web\"
target = \"vm-b\"
"
    );
    let l = lines(&text);
    assert_eq!(
        l,
        vec![
            "t.toml:14: logs[0].resource: security group \"nope\" not found",
            "t.toml:15: logs[0].target: port \"ghost\" not found",
            "t.toml:16: logs[0].event: invalid event \"accept\": expected \"ACCEPT\", \"DROP\" or \"ALL\"",
            "t.toml:17: logs[0].colour: unknown key `colour`; expected one of: name, description, resource, target, event, enabled",
        ],
        "{l:#?}"
    );
    // The group/port rule is reported once the rest is valid (Neutron's
    // InvalidResourceConstraint, a 400).
    let text = format!("{BASE}\n[[logs]]\nresource = \"web\"\ntarget = \"vm-b\"\n");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].line, Some(15));
    assert_eq!(errs[0].path.as_deref(), Some("logs[0].target"));
    match &errs[0].kind {
        ConfigErrorKind::Invalid(v) => {
            assert_eq!(v.class(), ErrorClass::BadRequest);
            assert!(matches!(v.kind, ErrorKind::LogTargetNotInGroup { .. }));
        }
        k => panic!("{k:?}"),
    }
    let long = format!("{BASE}\n[[logs]]\nname = \"{}\"\n", "x".repeat(256));
    assert!(lines(&long)[0].starts_with("t.toml:14: logs[0].name: longer than 255"));
}

#[test]
fn logging_settings_are_ranged() {
    let l =
        lines("[logging]\nfile = \"\"\nrate_limit = 99\nburst_limit = 24\nlevel = 1\n[switch]\n");
    assert_eq!(
        l,
        vec![
            "t.toml:2: logging.file: must not be empty",
            "t.toml:3: logging.rate_limit: 99 is out of range 100..=1000000",
            "t.toml:4: logging.burst_limit: 24 is out of range 25..=1000000",
            "t.toml:5: logging.level: expected a string, found an integer",
        ]
    );
    let l = lines("[logging]\nrate_limit = \"fast\"\n[[logs]]\nenabled = \"yes\"\n");
    assert_eq!(
        l,
        vec![
            "t.toml:2: logging.rate_limit: expected an integer, found a string",
            "t.toml:4: logs[0].enabled: expected a boolean (true or false), found a string",
        ]
    );
}

#[test]
fn logs_and_logging_survive_an_export() {
    let text = format!(
        "{BASE}
[[logs]]
name = \"a\"
resource = \"web\"
target = \"vm-a\"
event = \"DROP\"

[[logs]]
name = \"a\"
description = \"same name, quoted \\\" text\"
enabled = false

[logging]
file = \"/tmp/p.log\"
"
    );
    let c = parse_str(&text, "t.toml").unwrap();
    let out = to_toml_string(&c);
    assert!(
        out.contains("[[logs]]\nname = \"a\"\nresource = \"web\"\ntarget = \"vm-a\"\nevent = \"DROP\"\nenabled = true\n"),
        "{out}"
    );
    assert!(
        out.contains("[logging]\nfile = \"/tmp/p.log\"\nrate_limit = 100\nburst_limit = 25\n"),
        "{out}"
    );
    assert_eq!(parse_str(&out, "out.toml").unwrap(), c);
    // Default logging settings are not written (the export of a model without them is
    // unchanged).
    let c = parse_str(BASE, "t.toml").unwrap();
    let out = to_toml_string(&c);
    assert!(
        !out.contains("[logging]") && !out.contains("[[logs]]"),
        "{out}"
    );
}
