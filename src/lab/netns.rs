//! Network namespaces and root-namespace links as guards, and the names tests give them.
//!
//! A [`Netns`] kills the processes left in it (by the ids `ip netns pids` lists) and is
//! deleted on drop; a [`Link`] is deleted on drop if it still exists. Both are created
//! before the thing they guard is complete, so a failure half-way still cleans up.
//! Owns no addresses or veth set-up (that is [`topo`](super::topo)).

use std::path::Path;
use std::process::Command;

use super::cmd::{sh, sh_quiet};
use super::proc::signal;
use super::Result;

/// A network namespace; on drop, the processes left in it are killed and it is deleted.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Create namespace `name` (a leftover of that name is deleted first) with `lo` up.
    pub fn new(name: &str) -> Result<Netns> {
        sh_quiet(&["ip", "netns", "del", name]);
        sh(&["ip", "netns", "add", name])?;
        let ns = Netns {
            name: name.to_string(),
        };
        sh(&["ip", "-n", name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// `ip netns exec NS ARGS...` as a Command.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(args);
        c
    }

    /// Run `ip netns exec NS ARGS...` and return its stdout (see [`sh`]).
    pub fn sh(&self, args: &[&str]) -> Result<String> {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(args);
        sh(&full)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        kill_pids(&self.name);
        sh_quiet(&["ip", "netns", "del", &self.name]);
    }
}

/// SIGKILL the processes in namespace `ns` (by the ids `ip netns pids` lists).
pub fn kill_pids(ns: &str) {
    for pid in sh(&["ip", "netns", "pids", ns])
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse::<u32>().ok())
    {
        signal(pid, libc::SIGKILL);
    }
}

/// Whether namespace `ns` exists (`ip netns pids` accepts it).
pub fn exists(ns: &str) -> bool {
    sh(&["ip", "netns", "pids", ns]).is_ok()
}

/// The namespaces whose names start with `prefix`.
pub fn list_with_prefix(prefix: &str) -> Vec<String> {
    sh(&["ip", "netns", "list"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(prefix))
        .map(str::to_string)
        .collect()
}

/// A link in the root namespace, deleted on drop if it still exists.
pub struct Link {
    pub name: String,
}

/// Whether a link of that name exists in the root namespace.
pub fn link_exists(name: &str) -> bool {
    Path::new(&format!("/sys/class/net/{name}")).exists()
}

/// Delete link `name` if it exists; whether it did.
pub fn del_link(name: &str) -> bool {
    if link_exists(name) {
        sh_quiet(&["ip", "link", "del", name]);
        true
    } else {
        false
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        del_link(&self.name);
    }
}

// ---------------------------------------------------------------------------------------
// Names unique to a test process.

/// A link name unique to this process: `s` + pid + tag + index, at most 15 bytes (the
/// kernel's limit; panics if longer: a tag too long is a bug of the test).
pub fn link_name(tag: &str, i: usize) -> String {
    let n = format!("s{}{tag}{i}", std::process::id());
    assert!(n.len() <= 15, "interface name too long: {n}");
    n
}

/// A namespace name unique to this process: `sgs-e2e-PID-TAG-I`.
pub fn netns_name(tag: &str, i: usize) -> String {
    format!("sgs-e2e-{}-{tag}-{i}", std::process::id())
}

/// A temporary directory name unique to this process: `sgs-e2e-PID-TAG`.
pub fn dir_name(tag: &str) -> String {
    format!("sgs-e2e-{}-{tag}", std::process::id())
}
