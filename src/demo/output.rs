//! What the demo prints: the table of cases (a row as soon as its probe is done), the
//! explanation of a block from the drop counters that grew, and the `--keep` help.
//!
//! Owns: the demo's text (the table's layout, the "why" column built from the drop
//! reasons that grew, the `--keep` commands). May not touch: the system or the switch (it
//! formats what it is given: counters the caller read, the [`super::drive::Lab`] it
//! describes; it only prints and looks up its own executable's path), or a probe's
//! verdict (a row shows what the traffic tool observed). Uses the lab's [`Drops`] and the
//! scenario's names; nothing of the dataplane.

use std::fmt::Write as _;

use sgswitch::lab::switch::Drops;

use super::drive::Lab;
use super::scenario::{DB, INSTANCES, RTR, WEB1, WEB2};

/// Reasons that grew between two dumps, preferring the ports of the probe.
pub(super) fn explain(before: &Drops, after: &Drops, ports: &[&str]) -> String {
    let mut grew: Vec<(String, &str, u64)> = after
        .iter()
        .filter_map(|((p, r), n)| {
            let old = before.get(&(p.clone(), r.clone())).copied().unwrap_or(0);
            (*n > old).then(|| (p.clone(), r.as_str(), n - old))
        })
        .collect();
    if grew.iter().any(|(p, _, _)| ports.contains(&p.as_str())) {
        grew.retain(|(p, _, _)| ports.contains(&p.as_str()));
    }
    grew.iter()
        .map(|(p, r, n)| {
            if p == "?" {
                format!("{r} x{n}")
            } else {
                format!("{r} x{n} on {p}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

const WIDTHS: [usize; 4] = [22, 31, 8, 14];

pub(super) fn print_row(cells: &[String], header: bool) {
    if header {
        let h = ["test", "from -> to", "expected", "observed", "why"];
        let mut line = String::new();
        for (i, w) in WIDTHS.iter().enumerate() {
            let _ = write!(line, "{:w$}  ", h[i]);
        }
        line.push_str(h[4]);
        println!("{line}");
        println!("{}", "-".repeat(line.len() + 40));
    }
    let mut line = String::new();
    for (i, c) in cells.iter().enumerate() {
        match WIDTHS.get(i) {
            Some(w) => {
                let _ = write!(line, "{c:w$}  ");
            }
            None => line.push_str(c),
        }
    }
    println!("{}", line.trim_end());
}

pub(super) fn exe_name() -> String {
    std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "sgswitch".to_string())
}

pub(super) fn print_keep_help(lab: &Lab) {
    let (w1, w2, db, rtr) = (
        &INSTANCES[WEB1],
        &INSTANCES[WEB2],
        &INSTANCES[DB],
        &INSTANCES[RTR],
    );
    let pid = lab.switch_pid().unwrap_or(0);
    println!(
        "\nthe demo is still running (--keep): switch pid {pid}, log {}",
        lab.log.display()
    );
    println!("try traffic by hand:");
    let tries = [
        (
            format!("ip netns exec {} ping -c 3 {}", w1.ns, db.v4),
            "web-1 -> db: blocked, db has no icmp rule",
        ),
        (
            format!("ip netns exec {} ping -6 -c 3 {}", w1.ns, w2.v6),
            "web-1 -> web-2: passes (default group)",
        ),
        (
            format!(
                "ip netns exec {} bash -c 'echo > /dev/tcp/{}/5432' && echo open",
                w1.ns, db.v4
            ),
            "passes: web-1 is in web",
        ),
        (
            format!(
                "ip netns exec {} timeout 3 bash -c 'echo > /dev/tcp/{}/5432' || echo blocked",
                rtr.ns, db.v4
            ),
            "blocked: the router is not in web",
        ),
        (
            format!("ip netns exec {} bash", w1.ns),
            "a shell inside web-1 (echo servers on tcp 22, 80, 5432 and udp 53, 5000)",
        ),
    ];
    for (cmd, what) in &tries {
        println!("  # {what}\n  {cmd}");
    }
    println!("counters:   kill -USR1 {pid}; tail {}", lab.log.display());
    println!(
        "new policy: edit {} then kill -HUP {pid}",
        lab.dir.join("demo.toml").display()
    );
    println!("stop and remove everything: sgswitch demo --clean");
}
