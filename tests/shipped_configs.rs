//! Every config in `configs/` passes `check`, and says at its top either how to run it
//! (`sgswitch run --config configs/NAME`) or that it is for `check`/`replay` only. The
//! runnable ones start: `run_runnable_configs` creates what the header says to create (the
//! namespaces, under names unique to this test process; the taps' names are made unique
//! too, since a tap is created in the root namespace before its move), starts `sgswitch
//! run` on the config, checks each tap is in its namespace with the port's MAC, pings
//! between two instances as the header shows, and stops the switch.
//!
//! The netns test needs root, iproute2, iputils-ping and python3 (skips without, fails
//! under `CI=true`); names carry the pid; guards remove everything, also on failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{env_ready, link_name, netns_name, ping, Backend, Netns, Switch, TempDir};
use sgswitch::control::config;
use sgswitch::policy;

const CHECK_ONLY: &str = "For `sgswitch check` and `sgswitch replay` only";

fn shipped() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    assert!(v.len() >= 2, "{v:?}");
    v
}

fn header(text: &str) -> String {
    text.lines()
        .take_while(|l| l.starts_with('#') || l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn runnable(path: &Path) -> bool {
    let text = std::fs::read_to_string(path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy();
    let h = header(&text);
    let run = h.contains(&format!("sgswitch run --config configs/{name}"));
    assert!(
        run != h.contains(CHECK_ONLY),
        "{name}: its header must say how to run it or `{CHECK_ONLY}`:\n{h}"
    );
    run
}

#[test]
fn every_shipped_config_passes_check_and_says_whether_it_runs() {
    for p in shipped() {
        let o = Command::new(env!("CARGO_BIN_EXE_sgswitch"))
            .args(["check", "--quiet", "--config"])
            .arg(&p)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{}: {}",
            p.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        let _ = runnable(&p);
    }
}

#[test]
fn run_runnable_configs() {
    let test = "run_runnable_configs";
    if !env_ready(test, Backend::Tap) {
        return;
    }
    let dir = TempDir::new(std::env::temp_dir().join(sgswitch::lab::netns::dir_name("cfg")))
        .expect("temp dir");
    for (ci, path) in shipped().iter().filter(|p| runnable(p)).enumerate() {
        let mut text = std::fs::read_to_string(path).unwrap();
        let model = config::load_file(path).unwrap().model;
        // The namespaces the header says to create (unique names), the taps renamed.
        let mut namespaces: Vec<Netns> = Vec::new();
        let mut taps: Vec<(String, String, String)> = Vec::new(); // (ns, ifname, mac)
        for (i, p) in model.ports.iter().enumerate() {
            let Some(policy::Backend::Tap { ifname, netns, .. }) = &p.backend else {
                panic!(
                    "{}: port {} is not a tap: extend this test",
                    path.display(),
                    p.name
                );
            };
            let new_if = link_name(&format!("c{ci}"), i);
            text = text.replace(
                &format!("ifname = \"{ifname}\""),
                &format!("ifname = \"{new_if}\""),
            );
            if let Some(ns) = netns {
                let new_ns = netns_name(&format!("cfg{ci}"), i);
                text = text.replace(
                    &format!("netns = \"{ns}\""),
                    &format!("netns = \"{new_ns}\""),
                );
                namespaces.push(Netns::new(&new_ns).expect("create namespace"));
                taps.push((new_ns, new_if, p.mac.to_string()));
            }
        }
        let cfg = dir.path.join(format!("config-{ci}.toml"));
        std::fs::write(&cfg, &text).unwrap();
        let sw = Switch::start(&cfg, &dir.path);
        for (ns, ifname, mac) in &taps {
            let link = common::sh(&["ip", "-n", ns, "link", "show", ifname]);
            assert!(
                link.contains(&format!("link/ether {mac} ")),
                "{test}: {}: {ifname} in {ns} has the port's MAC:\n{link}",
                path.display()
            );
        }
        // The header's first ping: two instances of the same network, by their first IPv4.
        let v4 = |i: usize| {
            model.ports[i]
                .fixed_ips
                .iter()
                .find(|a| a.is_ipv4())
                .map(|a| a.to_string())
        };
        if let (Some(a), Some(b)) = (v4(0), v4(1)) {
            for (i, addr) in [(0, &a), (1, &b)] {
                let (ns, ifname, _) = &taps[i];
                common::sh(&[
                    "ip",
                    "-n",
                    ns,
                    "addr",
                    "add",
                    &format!("{addr}/24"),
                    "dev",
                    ifname,
                ]);
            }
            assert!(
                ping(&namespaces[0], &b, None, 5),
                "{test}: {}: ping {} -> {b}:\n{}",
                path.display(),
                model.ports[0].name,
                sw.log_text()
            );
        }
        drop(sw);
        drop(namespaces);
    }
}
