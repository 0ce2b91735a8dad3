#![no_main]
//! `config`: `control::config::parse_str` on any text. No panic; every error has a line
//! within the text when it has a position (a syntax error always has one; a schema or
//! policy error under a key that is in the file has its line); a config that loads is
//! exported (`to_toml_string`) to text that loads again to the same config, and exports
//! to the same text.

use libfuzzer_sys::fuzz_target;
use sgswitch::control::config::{parse_str, to_toml_string, ConfigErrorKind};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_str(text, "fuzz.toml") {
        Ok(c) => {
            let out = to_toml_string(&c);
            let again = match parse_str(&out, "export.toml") {
                Ok(a) => a,
                Err(e) => {
                    panic!("the export does not load:\n{e}\n--- input\n{text}\n--- export\n{out}")
                }
            };
            assert_eq!(
                c, again,
                "the export loads to another config\n--- input\n{text}\n--- export\n{out}"
            );
            assert_eq!(
                out,
                to_toml_string(&again),
                "the export is not stable\n--- input\n{text}"
            );
        }
        Err(errs) => {
            assert!(!errs.is_empty(), "an error without errors");
            let lines = text.split('\n').count();
            let doc = text.parse::<toml_edit::DocumentMut>().ok();
            for e in errs.iter() {
                if let Some(l) = e.line {
                    assert!((1..=lines).contains(&l), "line {l} of {lines}: {e}\n{text}");
                }
                let positioned = match &e.kind {
                    ConfigErrorKind::Syntax | ConfigErrorKind::Schema => true,
                    ConfigErrorKind::Io => false,
                    // A policy error under a top-level key of the file has a position.
                    ConfigErrorKind::Invalid(_) => {
                        let first = e
                            .path
                            .as_deref()
                            .map(|p| p.split(['.', '[']).next().unwrap_or("").to_string());
                        matches!((&doc, first), (Some(d), Some(k)) if d.contains_key(&k))
                    }
                };
                if positioned {
                    assert!(
                        e.line.is_some(),
                        "no line for an error with a position: {e}\n{text}"
                    );
                }
            }
        }
    }
});
