//! Ports whose netdev goes away and comes back: detection, the DOWN state, and re-attaching
//! by itself.
//!
//! # What happens
//! * **Detection, without cost on the packet path.** A backend notes an error that says
//!   its device may be gone ([`crate::port::gone_errno`]); its worker takes those notes
//!   every [`FAULT_POLL`] (one comparison of the loop's clock per iteration) and passes
//!   them here through a bounded queue. This thread wakes every [`TICK`] and, once a
//!   [`CHECK_EVERY`], also compares each AF_XDP and AF_PACKET port's netdev index with the
//!   one it opened (`if_nametoindex`): a device that is gone, or was replaced by another
//!   of the same name, is found within a second even when no frame is sent to it (an
//!   AF_XDP socket's receive ring just stays empty, an AF_PACKET socket reports
//!   `ENETDOWN` once).
//! * **Which notes are believed.** `ENXIO`, `ENODEV` and `EBADFD` mean the socket or tap
//!   is no longer attached to any device: the port is down. `ENETDOWN` is also what a
//!   device that was only set down gives: the port is down only if the index check says
//!   the device is gone or replaced (a link that comes up again resumes by itself; the
//!   sockets stay bound to it).
//! * **Down.** The port's worker closes it (the same command as a hot-unplug: the XDP
//!   program detached, the socket or tap fd closed); its conntrack zone, counters, routes
//!   and place in the policy stay, so frames to it are dropped at its worker and nothing
//!   else changes: the other ports keep forwarding. The NAPI settings guard of its netdev
//!   is dropped. One WARN line names the port, backend, interface and reason, and
//!   [`port_status`] says `DOWN` (the API's port `status`).
//! * **Back.** Once a [`CHECK_EVERY`] each down port is tried again, with a cheap check
//!   first: an AF_XDP or AF_PACKET port when a netdev of its name exists (then a new
//!   socket and, for AF_XDP, a new XDP program and UMEM: a port that was in a shared-UMEM
//!   group comes back as a group of its own), a tap when the namespace it goes into
//!   exists (`/run/netns/NAME`), or at once if it has none. The port goes to the worker
//!   that had it (so no other worker's routes change), with its NAPI moderation set
//!   again; one INFO line says it is up again and after how long, and the status is
//!   `ACTIVE`. A failed attempt is logged once per distinct error at WARN (DEBUG when it
//!   repeats) and tried again a second later.
//! * **Multiqueue taps** (`queues = N`): a note from any queue marks the whole port down,
//!   every worker holding a queue closes its queue (the netdev goes with the last fd),
//!   and the port comes back with all its queues, each on the worker that had it.
//!
//! # Taps
//! A tap is the switch's own device: when it is deleted (`ip link del`, or its instance's
//! namespace is deleted, which deletes the tap in it) the switch creates it again, in
//! the namespace the config names as soon as that namespace exists again; the instance
//! then configures its side (MAC, addresses) as after a first start. A tap that is only
//! set down is not a fault (its writes fail with `EIO`, counted and logged by the port).
//!
//! # Policy changes while a port is down
//! [`super::Switch::apply`] keeps a down port as it is when its backend is unchanged (it
//! does not try to open it: a change to the policy never fails because an instance's
//! device is missing), forgets it when it leaves the model, and opens the new backend
//! when it changed (as any hot-plug; that can fail).
//!
//! # Port status for the API
//! The API renders a port from the store's snapshot, without the switch; [`port_status`]
//! answers from a process-wide list of the running switches' [`Health`] tables (weak
//! references: a stopped switch drops out). A name one switch reports down is `DOWN`;
//! two switches in one process with ports of the same name (tests) share the answer.
//!
//! Owns: this thread, the DOWN state of ports ([`Health`], [`PortDown`]) and the
//! decisions above. May not touch: the packet path (workers only pass notes), port
//! backends' internals (it opens and closes ports through the same functions as
//! [`super::Switch::apply`]), or the policy (never publishes an epoch).

use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::worker::Cmd;
use super::{hand_queues, lock, netdev_of, open_port, tune_netdevs, ControlState, Shared};
use crate::policy::Backend;
use crate::port;

/// How often a worker takes its ports' fault notes.
pub const FAULT_POLL: Duration = Duration::from_millis(100);
/// How often this thread wakes for the workers' notes.
pub const TICK: Duration = Duration::from_millis(100);
/// How often every netdev index is checked and every down port tried again.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);
/// Fault notes in flight from the workers (more are dropped: the index check still
/// finds the device gone).
pub(super) const FAULT_QUEUE: usize = 256;

/// Why and since when a port is down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortDown {
    /// In words: `netdev vm-a is gone`, `tap deleted (EBADFD)`, ...
    pub reason: String,
    /// Milliseconds since the Unix epoch.
    pub since_ms: u64,
}

/// The ports of one switch that are down (a port not named here is up).
#[derive(Debug, Default)]
pub struct Health {
    down: Mutex<HashMap<String, PortDown>>,
}

impl Health {
    /// A new table, listed for [`port_status`] while it lives.
    pub(super) fn new_registered() -> Arc<Health> {
        let h = Arc::new(Health::default());
        let mut reg = lock(&REGISTRY);
        reg.retain(|w| w.strong_count() > 0);
        reg.push(Arc::downgrade(&h));
        h
    }

    /// Why `port` is down, or `None` if it is up (or not this switch's).
    pub fn down(&self, port: &str) -> Option<PortDown> {
        lock(&self.down).get(port).cloned()
    }

    /// Every down port, by name.
    pub fn all_down(&self) -> Vec<(String, PortDown)> {
        let mut v: Vec<_> = lock(&self.down)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    fn set_down(&self, port: &str, reason: String) {
        let since_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        lock(&self.down).insert(port.to_string(), PortDown { reason, since_ms });
    }

    pub(super) fn set_up(&self, port: &str) {
        lock(&self.down).remove(port);
    }
}

static REGISTRY: Mutex<Vec<Weak<Health>>> = Mutex::new(Vec::new());

/// Neutron's port status of `port` in this process: `DOWN` while a running switch has it
/// down (its netdev is gone), else `ACTIVE`.
pub fn port_status(port: &str) -> &'static str {
    let reg = lock(&REGISTRY);
    let down = reg
        .iter()
        .filter_map(Weak::upgrade)
        .any(|h| lock(&h.down).contains_key(port));
    if down {
        "DOWN"
    } else {
        "ACTIVE"
    }
}

/// Whether a port is down, and what its re-opening found so far.
#[derive(Debug)]
pub(super) struct Down {
    since: Instant,
    attempts: u32,
    /// The last re-open error, logged once at WARN.
    last_error: Option<String>,
}

/// One port the switch opened (and keeps while it is down).
#[derive(Debug)]
pub(super) struct OpenPort {
    pub(super) zone: u16,
    /// The worker of its first queue: its owner ([`super::Shared::owners`]).
    pub(super) worker: usize,
    /// Every worker driving a queue of it (`[worker]` but for a multiqueue tap).
    pub(super) workers: Vec<usize>,
    pub(super) backend: Backend,
    /// Index of its netdev when opened (AF_XDP and AF_PACKET ports).
    pub(super) ifindex: Option<u32>,
    pub(super) down: Option<Down>,
}

impl OpenPort {
    pub(super) fn new(zone: u16, worker: usize, backend: Backend) -> OpenPort {
        let ifindex = netdev_of(&backend).and_then(|n| port::ifindex(n).ok());
        OpenPort {
            zone,
            worker,
            workers: vec![worker],
            backend,
            ifindex,
            down: None,
        }
    }

    pub(super) fn is_down(&self) -> bool {
        self.down.is_some()
    }
}

/// What the thread needs of the switch (the control state only through a weak
/// reference: a switch dropped without `shutdown` ends the thread).
pub(super) struct Supervisor {
    pub(super) control: Weak<Mutex<ControlState>>,
    pub(super) shared: Arc<Shared>,
    pub(super) cmds: Vec<Sender<Cmd>>,
    pub(super) health: Arc<Health>,
}

impl Supervisor {
    /// The thread's loop, until the switch stops or is dropped.
    pub(super) fn run(self) {
        let mut last_check = Instant::now();
        loop {
            std::thread::sleep(TICK);
            if self.shared.stop.load(std::sync::atomic::Ordering::Acquire) {
                break;
            }
            let Some(control) = self.control.upgrade() else {
                break;
            };
            let mut notes = Vec::new();
            while let Some(n) = self.shared.faults.pop() {
                notes.push(n);
            }
            let due = last_check.elapsed() >= CHECK_EVERY;
            if notes.is_empty() && !due {
                continue;
            }
            let mut st = lock(&control);
            for (zone, errno) in notes {
                self.note(&mut st, zone, errno);
            }
            if due {
                last_check = Instant::now();
                self.check(&mut st);
                self.retry(&mut st);
            }
        }
    }

    /// A worker's note: port of `zone` saw `errno`.
    fn note(&self, st: &mut ControlState, zone: u16, errno: i32) {
        let Some((name, p)) = st.open.iter().find(|(_, p)| p.zone == zone) else {
            return;
        };
        if p.is_down() {
            return;
        }
        let err = std::io::Error::from_raw_os_error(errno);
        let reason = match errno {
            libc::ENETDOWN => match netdev_change(p) {
                Some(r) => r,
                None => return, // the link is down, the device is there
            },
            _ => match &p.backend {
                Backend::Tap { .. } => format!("tap deleted ({err})"),
                _ => format!("socket no longer bound to a device ({err})"),
            },
        };
        let name = name.clone();
        self.mark_down(st, &name, reason);
    }

    /// Every up AF_XDP and AF_PACKET port: is its netdev still the one it opened?
    fn check(&self, st: &mut ControlState) {
        let gone: Vec<(String, String)> = st
            .open
            .iter()
            .filter(|(_, p)| !p.is_down())
            .filter_map(|(n, p)| netdev_change(p).map(|r| (n.clone(), r)))
            .collect();
        for (name, reason) in gone {
            self.mark_down(st, &name, reason);
        }
    }

    /// Close the port, keep its place, say so.
    fn mark_down(&self, st: &mut ControlState, name: &str, reason: String) {
        let Some(p) = st.open.get_mut(name) else {
            return;
        };
        if p.is_down() {
            return;
        }
        p.down = Some(Down {
            since: Instant::now(),
            attempts: 0,
            last_error: None,
        });
        let zone = p.zone;
        let (kind, ifname) = super::backend_text(&p.backend);
        let ifname = ifname.to_string();
        let dev = netdev_of(&p.backend).map(str::to_string);
        // Every queue (a multiqueue tap has one on each of several workers).
        for &w in &p.workers {
            if self.cmds[w].send(Cmd::Remove { zone }).is_err() {
                tracing::warn!(port = %name, worker = w, "worker gone: close of a down port not delivered");
            }
        }
        if let Some(dev) = dev {
            if !st
                .open
                .values()
                .any(|o| !o.is_down() && netdev_of(&o.backend) == Some(dev.as_str()))
            {
                st.napi.remove(&dev);
            }
        }
        tracing::warn!(
            port = %name,
            backend = kind,
            ifname = %ifname,
            reason = %reason,
            "port {name} DOWN: {reason}; the other ports keep forwarding, it re-attaches when {ifname} is back"
        );
        self.health.set_down(name, reason);
    }

    /// Try every down port whose device (or namespace) looks back.
    fn retry(&self, st: &mut ControlState) {
        let names: Vec<String> = st
            .open
            .iter()
            .filter(|(_, p)| p.is_down() && looks_back(&p.backend))
            .map(|(n, _)| n.clone())
            .collect();
        for name in names {
            self.reopen(st, &name);
        }
    }

    fn reopen(&self, st: &mut ControlState, name: &str) {
        let Some(p) = st.open.get(name) else { return };
        let (w, backend) = (p.worker, p.backend.clone());
        let opened = open_port(name, &backend, st.burst, self.cmds.len()).and_then(|o| {
            let tuned = tune_netdevs(
                std::iter::once((name, &backend)),
                &st.napi,
                st.napi_defer_us,
            )?;
            Ok((o, tuned))
        });
        let (kind, ifname) = super::backend_text(&backend);
        match opened {
            Ok((o, tuned)) => {
                let down = st.open.get(name).and_then(|p| p.down.as_ref());
                let (down_ms, attempts) = down.map_or((0, 0), |d| {
                    (d.since.elapsed().as_millis() as u64, d.attempts + 1)
                });
                st.napi.extend(tuned);
                let st = &mut *st;
                hand_queues(
                    &self.cmds,
                    w,
                    o,
                    &mut st.zones,
                    &self.shared,
                    &mut st.open,
                    false,
                );
                self.health.set_up(name);
                tracing::info!(
                    port = %name,
                    backend = kind,
                    ifname,
                    worker = w,
                    down_ms,
                    attempts,
                    "port {name} ACTIVE again: {ifname} is back, re-attached after {down_ms} ms"
                );
            }
            Err(e) => {
                let text = e.to_string();
                let Some(d) = st.open.get_mut(name).and_then(|p| p.down.as_mut()) else {
                    return;
                };
                d.attempts += 1;
                if d.last_error.as_deref() != Some(text.as_str()) {
                    tracing::warn!(port = %name, backend = kind, ifname, error = %text, "port {name} still down: re-attaching failed, trying again every second");
                    d.last_error = Some(text);
                } else {
                    tracing::debug!(port = %name, error = %text, attempts = d.attempts, "re-attach failed again");
                }
            }
        }
    }
}

/// Why an AF_XDP or AF_PACKET port's netdev is no longer the one it opened: gone, or
/// replaced by another device of the same name. `None` when it is the same device (or
/// the port has no netdev of its own: a tap).
fn netdev_change(p: &OpenPort) -> Option<String> {
    let dev = netdev_of(&p.backend)?;
    let was = p.ifindex?;
    match port::ifindex(dev) {
        Ok(now) if now == was => None,
        Ok(now) => Some(format!(
            "netdev {dev} was replaced (ifindex {was} is gone, {now} is a new device)"
        )),
        Err(_) => Some(format!("netdev {dev} is gone (ifindex {was})")),
    }
}

/// Whether a down port's backend can be tried again: its netdev exists (AF_XDP,
/// AF_PACKET), or its tap's namespace does (or it has none).
fn looks_back(b: &Backend) -> bool {
    match b {
        Backend::AfXdp { ifname, .. } | Backend::AfPacket { ifname } => {
            port::ifindex(ifname).is_ok()
        }
        Backend::Tap {
            netns: Some(ns), ..
        } => Path::new("/run/netns").join(ns).exists(),
        Backend::Tap { netns: None, .. } => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_the_health_tables() {
        let h = Health::new_registered();
        assert_eq!(port_status("sup-test-p"), "ACTIVE");
        h.set_down("sup-test-p", "netdev x is gone".into());
        assert_eq!(port_status("sup-test-p"), "DOWN");
        assert_eq!(h.down("sup-test-p").unwrap().reason, "netdev x is gone");
        assert_eq!(h.all_down().len(), 1);
        h.set_up("sup-test-p");
        assert_eq!(port_status("sup-test-p"), "ACTIVE");
        h.set_down("sup-test-q", "gone".into());
        drop(h);
        assert_eq!(
            port_status("sup-test-q"),
            "ACTIVE",
            "a dropped switch drops out"
        );
    }

    #[test]
    fn netdev_checks() {
        let lo = OpenPort::new(
            0,
            0,
            Backend::AfPacket {
                ifname: "lo".into(),
            },
        );
        assert!(lo.ifindex.is_some());
        assert_eq!(netdev_change(&lo), None, "lo is still lo");
        let mut moved = OpenPort::new(0, 0, lo.backend.clone());
        moved.ifindex = moved.ifindex.map(|i| i + 100_000);
        assert!(netdev_change(&moved).is_some_and(|r| r.contains("replaced")));
        let mut gone = OpenPort::new(
            0,
            0,
            Backend::AfXdp {
                ifname: "sgnosuch9".into(),
                queue: 0,
                mode: None,
            },
        );
        assert_eq!(gone.ifindex, None);
        gone.ifindex = Some(7);
        assert!(netdev_change(&gone).is_some_and(|r| r.contains("is gone")));
        assert!(!looks_back(&gone.backend));
        assert!(looks_back(&lo.backend));
        let tap = |netns: Option<&str>| Backend::Tap {
            ifname: "t".into(),
            netns: netns.map(str::to_string),
            vnet_hdr: false,
            instance_mac: None,
            queues: 1,
        };
        assert!(looks_back(&tap(None)));
        assert!(!looks_back(&tap(Some("sgs-no-such-netns-xyz"))));
        assert_eq!(netdev_change(&OpenPort::new(0, 0, tap(None))), None);
    }
}
