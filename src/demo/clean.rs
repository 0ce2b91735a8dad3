//! `sgswitch demo --clean`: remove whatever a previous demo left (by `--keep`, or by a
//! crash), from its state file and the fixed name prefixes.
//!
//! Processes are signalled only by the pids the state file recorded, after checking
//! `/proc/PID/cmdline` still names them, or by `ip netns pids` of a demo namespace.
//!
//! Owns: the removal order (switch, servers, namespaces, links, state directory) and how
//! the state file's lines are trusted (a recorded name must carry the demo's prefix).
//! May not touch: anything without the demo's prefixes or not in its state file, or a
//! running switch's config or state. Uses the lab (`cmd`, `netns`, `proc`), the state
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

/// `sgswitch demo --clean`.
pub(super) fn clean() -> ExitCode {
    let dir = state_dir();
    let state = std::fs::read_to_string(dir.join("state")).unwrap_or_default();
    let mut removed = 0usize;
    let mut netns: Vec<String> = demo_namespaces();
    let mut links: Vec<String> = INSTANCES.iter().map(|i| i.link.to_string()).collect();
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
    if removed == 0 {
        println!("nothing to clean: no demo is set up");
    } else {
        println!("the demo is removed");
    }
    ExitCode::SUCCESS
}
