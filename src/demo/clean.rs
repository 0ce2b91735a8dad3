//! `sgswitch demo --clean`: remove what a previous demo left (by `--keep`, or by a crash),
//! as its state file records it; `--clean --all` also every namespace and link with the
//! demo's fixed prefixes. The caller holds the demo lock (`super::lock`), so a running
//! demo is never cleaned from under it.
//!
//! Processes are signalled only by the pids the state file recorded, after checking
//! `/proc/PID/cmdline` still names them, or by `ip netns pids` of a demo namespace.
//!
//! Owns: the removal order (switch, servers, namespaces, links, state directory) and how
//! the state file's lines are trusted (a recorded name must carry the demo's prefix).
//! May not touch: anything not in its state file (without `--all`), anything without the
//! demo's prefixes, or a running demo or switch's config or state. Uses the lab (`cmd`, `netns`, `proc`), the state
//! directory of [`super::drive`] and the names of [`super::scenario`]; nothing of the
//! dataplane.

use std::process::ExitCode;
use std::time::Duration;

use sgswitch::lab::cmd::sh_quiet;
use sgswitch::lab::netns;
use sgswitch::lab::proc::{cmdline, stop_pid};

use super::drive::state_dir;
use super::scenario::{INSTANCES, LINK_PREFIX, NS_PREFIX};

/// The demo's namespaces that exist now.
pub(super) fn demo_namespaces() -> Vec<String> {
    netns::list_with_prefix(NS_PREFIX)
}

/// The pid of the demo that wrote the state file, if one did.
pub(super) fn recorded_demo_pid() -> Option<u32> {
    let state = std::fs::read_to_string(state_dir().join("state")).ok()?;
    state
        .lines()
        .find_map(|l| l.strip_prefix("demo ")?.trim().parse().ok())
}

/// `sgswitch demo --clean` (the caller holds the demo lock, so no demo runs): what the
/// state file records; with `all`, also every namespace and link with the demo's prefixes.
pub(super) fn clean(all: bool) -> ExitCode {
    let dir = state_dir();
    let state = std::fs::read_to_string(dir.join("state")).unwrap_or_default();
    let mut removed = 0usize;
    let (mut netns, mut links): (Vec<String>, Vec<String>) = if all {
        (
            demo_namespaces(),
            INSTANCES.iter().map(|i| i.link.to_string()).collect(),
        )
    } else {
        (Vec::new(), Vec::new())
    };
    for line in state.lines() {
        let (what, val) = line.split_once(' ').unwrap_or((line, ""));
        match what {
            "switch" => {
                if let Ok(pid) = val.parse::<u32>() {
                    if cmdline(pid).is_some_and(|c| c.contains(" run --config")) {
                        stop_pid(pid, " run --config", Duration::from_secs(5));
                        println!("stopped the switch (pid {pid})");
                        removed += 1;
                    }
                }
            }
            "server" => {
                if let Ok(pid) = val.parse::<u32>() {
                    if cmdline(pid).is_some_and(|c| c.contains("python")) {
                        stop_pid(pid, "python", Duration::from_millis(500));
                        removed += 1;
                    }
                }
            }
            "netns" if val.starts_with(NS_PREFIX) && !netns.iter().any(|n| n == val) => {
                netns.push(val.to_string())
            }
            "link" if val.starts_with(LINK_PREFIX) && !links.iter().any(|n| n == val) => {
                links.push(val.to_string())
            }
            _ => {}
        }
    }
    for ns in &netns {
        if netns::exists(ns) {
            netns::kill_pids(ns);
            sh_quiet(&["ip", "netns", "del", ns]);
            println!("removed namespace {ns}");
            removed += 1;
        }
    }
    for l in &links {
        if netns::del_link(l) {
            println!("removed link {l}");
            removed += 1;
        }
    }
    if dir.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        removed += 1;
    }
    let others = demo_namespaces();
    if !all && !others.is_empty() {
        println!(
            "left alone (not in the demo's state file): {}; `sgswitch demo --clean --all` removes them",
            others.join(", ")
        );
    }
    if removed == 0 {
        println!("nothing to clean: no demo is set up");
    } else {
        println!("the demo is removed");
    }
    ExitCode::SUCCESS
}
