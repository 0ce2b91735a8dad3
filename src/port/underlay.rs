//! [`UnderlayGroup`]: the overlay's underlay netdev as one [`PortGroup`] (issue #19, see
//! docs/overlay.md step 4): one `AF_PACKET` socket on the netdev, whose members are the
//! tunnel ports of the running dataplane.
//!
//! # Members
//! Member 0 is the underlay itself (the socket: its counters, and `bad_tunnel`); member
//! `1 + i` is tunnel `i` ([`TunnelDest`], in the dataplane's tunnel order), set by
//! [`PortGroup::set_tunnels`] whenever the runtime takes a new dataplane. So the runtime's
//! one receive loop drives it like any group:
//! * `rx(0)` reads one burst from the socket and decapsulates it in place
//!   ([`overlay::decap`]): each inner frame is staged for its tunnel's member (by
//!   (encapsulation, VNI, source VTEP)); `rx(0)` itself returns no frame. A frame that is
//!   not a tunnel packet to the local VTEP is ignored (the kernel's: ARP, other traffic);
//!   a malformed one or an unknown (VNI, VTEP) is counted `bad_tunnel` (the drop reason
//!   `bad-tunnel` at the underlay's row).
//! * `rx(1 + i)` returns the frames staged for tunnel `i`: the inner frames, read in place
//!   in the receive slots (no copy); the runtime runs them through the pipeline from that
//!   tunnel port and steers them by their inner addresses as any frame.
//! * `tx_copy(1 + i, frame)` encapsulates straight into the next transmit slot
//!   ([`Template::encap_into`]: the outer headers, then one copy of the frame); `flush`
//!   sends the batch (`sendmmsg`). No allocation per frame. A tunnel whose next hop's MAC
//!   is not known yet, or a frame too large for the path, is counted `tx_dropped` at the
//!   tunnel's member (the runtime counts `tunnel-too-big` at the sender before that).
//!
//! # Templates, neighbours, MTU
//! One [`Template`] per tunnel, rebuilt when the tunnels change, when a neighbour entry
//! changes and when the underlay's MTU changes. The outer destination MAC is the tunnel's
//! `hosts[].mac` when the model gives it, else the kernel's neighbour entry for the VTEP
//! on the underlay netdev (`/proc/net/arp` for IPv4, an rtnetlink dump for IPv6:
//! [`super::neigh`]). A resolver thread (never the
//! packet path) reads the table and the MTU once a second, and for a VTEP without an
//! entry sends one UDP datagram (to the discard port) through a kernel socket so that the
//! kernel resolves it; the group sees a change through one atomic generation number per
//! `rx(0)` and takes the new state with `try_lock` (a busy lock is retried next round).
//! The outer source MAC is the netdev's. The switch also binds a UDP socket on each
//! encapsulation's port at the local VTEP so that the kernel, which sees the same packets,
//! does not answer them with ICMP port unreachable.
//!
//! Owns: the underlay socket, the bound UDP sockets, the resolver thread (it ends when the
//! group is dropped), the templates and the staging of decapsulated frames. May not
//! touch: verdicts, the dataplane (it knows tunnels by [`TunnelDest`], given by the
//! runtime), the netdev's configuration. Uses `overlay` (encap/decap), `wire` and this
//! module's siblings.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use super::afpacket::AfPacketPort;
use super::errlog::{ErrorLog, Op};
use super::group::{Members, PortGroup};
use super::{FrameBatch, Port, PortError, PortStats, Step, DEFAULT_SLOT};
use crate::overlay::{self, tunnel::ip_overhead, Endpoints, Template};
use crate::wire::{Encap, Mac};

/// One tunnel as the underlay sees it: where tunnel `i`'s frames go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunnelDest {
    pub encap: Encap,
    pub vni: u32,
    /// The remote VTEP.
    pub vtep: IpAddr,
    /// The next hop's MAC when the model gives it (`hosts[].mac`).
    pub mac: Option<Mac>,
}

/// What the resolver thread and the group share.
struct Neigh {
    /// Bumped on every change of `state`.
    gen: AtomicU64,
    state: Mutex<NeighState>,
    /// Largest inner frame (Ethernet header included) the path carries: what the runtime
    /// checks before delivering to a tunnel port (`tunnel-too-big`).
    max_inner: Arc<AtomicUsize>,
}

#[derive(Default)]
struct NeighState {
    /// VTEPs without a MAC from the model: the ones to resolve.
    wanted: Vec<IpAddr>,
    macs: HashMap<IpAddr, Mac>,
    /// The underlay's IP MTU.
    mtu: usize,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One tunnel member.
struct Member {
    dest: TunnelDest,
    tpl: Option<Template>,
    stats: PortStats,
    /// (frame index in the receive batch, inner start, inner end) of the current burst.
    staged: Vec<(u16, u32, u32)>,
}

/// The underlay netdev as a port group. See the module doc.
pub struct UnderlayGroup {
    port: Box<dyn Port>,
    ifname: String,
    local: IpAddr,
    src_mac: Mac,
    rx: FrameBatch,
    tx: FrameBatch,
    errors: ErrorLog,
    members: Vec<Member>,
    /// (encap, VNI, source VTEP) → tunnel index.
    by_key: HashMap<(Encap, u32, IpAddr), u16>,
    /// The tunnel whose frames `rx_frame` reads (`usize::MAX`: none).
    cur: usize,
    bad_tunnel: u64,
    neigh: Arc<Neigh>,
    /// The `neigh.gen` the templates were built from.
    seen: u64,
    mtu: usize,
    macs: HashMap<IpAddr, Mac>,
    /// Bound UDP sockets (kept open, never read).
    _udp: Vec<UdpSocket>,
    /// Ends the resolver thread with the group.
    stop: Option<StopOnDrop>,
}

/// Read a netdev attribute from sysfs.
fn sysfs(ifname: &str, attr: &str) -> io::Result<String> {
    std::fs::read_to_string(format!("/sys/class/net/{ifname}/{attr}")).map(|s| s.trim().to_string())
}

/// The netdev's IP MTU.
fn read_mtu(ifname: &str) -> Option<usize> {
    sysfs(ifname, "mtu").ok()?.parse().ok()
}

/// Complete IPv4 neighbour entries of `ifname` from `/proc/net/arp` text.
pub fn parse_arp(text: &str, ifname: &str) -> HashMap<IpAddr, Mac> {
    let mut out = HashMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 || f[5] != ifname {
            continue;
        }
        // Flags: 0x2 = complete (ATF_COM).
        let complete =
            u32::from_str_radix(f[2].trim_start_matches("0x"), 16).is_ok_and(|fl| fl & 0x2 != 0);
        if let (true, Ok(ip), Ok(mac)) = (complete, f[0].parse::<IpAddr>(), f[3].parse::<Mac>()) {
            out.insert(ip, mac);
        }
    }
    out
}

impl Neigh {
    /// One look at the kernel: the MTU and the neighbour table; poke the VTEPs missing from
    /// it through `poke` (one datagram each). Returns whether anything changed.
    fn refresh(&self, ifname: &str, poke: Option<&UdpSocket>) -> bool {
        let mtu = read_mtu(ifname);
        let mut table = std::fs::read_to_string("/proc/net/arp")
            .map(|t| parse_arp(&t, ifname))
            .unwrap_or_default();
        if lock(&self.state).wanted.iter().any(IpAddr::is_ipv6) {
            let v6 = sysfs(ifname, "ifindex")
                .ok()
                .and_then(|i| i.parse().ok())
                .and_then(|i| super::neigh::ipv6_neighbours(i).ok());
            table.extend(v6.unwrap_or_default());
        }
        let mut st = lock(&self.state);
        let mut changed = false;
        if let Some(m) = mtu.filter(|m| *m != st.mtu) {
            st.mtu = m;
            changed = true;
        }
        let wanted = st.wanted.clone();
        for v in wanted {
            match table.get(&v) {
                Some(mac) => {
                    if st.macs.get(&v) != Some(mac) {
                        st.macs.insert(v, *mac);
                        changed = true;
                    }
                }
                None => {
                    // A MAC once known is kept (an entry the kernel aged out is still
                    // the best guess) while the kernel resolves it again.
                    // (A VTEP of the other family than the socket's fails harmlessly.)
                    if let Some(s) = poke {
                        let _ = s.send_to(&[0u8], SocketAddr::new(v, 9));
                    }
                }
            }
        }
        if changed {
            self.gen.fetch_add(1, Ordering::AcqRel);
        }
        changed
    }
}

/// The resolver: once a second while the group lives.
fn resolve_loop(neigh: Weak<Neigh>, stop: Arc<AtomicBool>, ifname: String, local: IpAddr) {
    let any: IpAddr = if local.is_ipv6() {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    };
    let poke = UdpSocket::bind(SocketAddr::new(local, 0))
        .or_else(|_| UdpSocket::bind(SocketAddr::new(any, 0)))
        .ok();
    while !stop.load(Ordering::Acquire) {
        let Some(n) = neigh.upgrade() else { return };
        n.refresh(&ifname, poke.as_ref());
        drop(n);
        for _ in 0..10 {
            if stop.load(Ordering::Acquire) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Stops the resolver thread when the group goes.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

impl UnderlayGroup {
    /// Open the underlay on `ifname` with local VTEP `local`: the `AF_PACKET` socket, one
    /// UDP socket bound on each encapsulation's port at `local` (a failure to bind is
    /// logged, not fatal: someone else may hold the port), the resolver thread.
    pub fn open(ifname: &str, local: IpAddr, burst: usize) -> Result<UnderlayGroup, PortError> {
        let port = AfPacketPort::open(ifname)?;
        let src_mac = sysfs(ifname, "address")
            .ok()
            .and_then(|s| s.parse::<Mac>().ok())
            .ok_or_else(|| {
                PortError::os(
                    ifname,
                    Step::Socket,
                    io::Error::other("cannot read the netdev's MAC address"),
                )
            })?;
        let mut udp = Vec::new();
        for e in [Encap::Geneve, Encap::Vxlan] {
            match UdpSocket::bind(SocketAddr::new(local, e.udp_port())) {
                Ok(s) => udp.push(s),
                Err(err) => tracing::warn!(
                    ifname, port = e.udp_port(), error = %err,
                    "cannot bind the encapsulation's UDP port: the kernel may answer tunnel packets with ICMP port unreachable"
                ),
            }
        }
        let mut g = Self::with_port(Box::new(port), ifname, local, src_mac, burst);
        g._udp = udp;
        g.neigh.refresh(ifname, None);
        g.take_neigh();
        let stop = Arc::new(AtomicBool::new(false));
        let (weak, stop2, name) = (Arc::downgrade(&g.neigh), stop.clone(), ifname.to_string());
        std::thread::Builder::new()
            .name("sgs-underlay".into())
            .spawn(move || resolve_loop(weak, stop2, name, local))
            .map_err(|e| PortError::os(ifname, Step::Socket, e))?;
        g.stop = Some(StopOnDrop(stop));
        Ok(g)
    }

    /// A group on any port (tests: a memory port), with the source MAC given; no resolver.
    pub fn with_port(
        port: Box<dyn Port>,
        ifname: &str,
        local: IpAddr,
        src_mac: Mac,
        burst: usize,
    ) -> UnderlayGroup {
        let mtu = read_mtu(ifname).unwrap_or(1500);
        let slot = (mtu + 14 + 4).max(DEFAULT_SLOT);
        let neigh = Arc::new(Neigh {
            gen: AtomicU64::new(1),
            state: Mutex::new(NeighState {
                mtu,
                ..NeighState::default()
            }),
            max_inner: Arc::new(AtomicUsize::new(
                mtu.saturating_sub(ip_overhead(local.is_ipv6())),
            )),
        });
        UnderlayGroup {
            port,
            ifname: ifname.to_string(),
            local,
            src_mac,
            rx: FrameBatch::new(burst, slot),
            tx: FrameBatch::new(burst.max(32), slot),
            errors: ErrorLog::default(),
            members: Vec::new(),
            by_key: HashMap::new(),
            cur: usize::MAX,
            bad_tunnel: 0,
            neigh,
            seen: 0,
            mtu,
            macs: HashMap::new(),
            _udp: Vec::new(),
            stop: None,
        }
    }

    /// The largest inner frame (Ethernet header included) the path carries now, shared
    /// with the runtime (which drops larger frames to a tunnel port as `tunnel-too-big`).
    pub fn max_inner(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.neigh.max_inner)
    }

    /// The netdev's name.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// Set the underlay's IP MTU by hand (tests without a netdev).
    pub fn set_mtu(&mut self, mtu: usize) {
        lock(&self.neigh.state).mtu = mtu;
        self.neigh.gen.fetch_add(1, Ordering::AcqRel);
        self.take_neigh();
    }

    /// Take the resolver's state if it changed (never blocks: a busy lock waits a round).
    fn take_neigh(&mut self) {
        let gen = self.neigh.gen.load(Ordering::Acquire);
        if gen == self.seen {
            return;
        }
        let Ok(st) = self.neigh.state.try_lock() else {
            return;
        };
        self.mtu = st.mtu;
        self.macs.clone_from(&st.macs);
        drop(st);
        self.seen = gen;
        let max = self.mtu.saturating_sub(ip_overhead(self.local.is_ipv6()));
        self.neigh.max_inner.store(max, Ordering::Release);
        self.rebuild();
    }

    /// The templates from the members, the MACs and the MTU.
    fn rebuild(&mut self) {
        for m in &mut self.members {
            let d = &m.dest;
            m.tpl = d
                .mac
                .or_else(|| self.macs.get(&d.vtep).copied())
                .and_then(|dst_mac| {
                    let ep = Endpoints {
                        src_mac: self.src_mac,
                        dst_mac,
                        src_ip: self.local,
                        dst_ip: d.vtep,
                        encap: d.encap,
                        dst_port: d.encap.udp_port(),
                        vni: d.vni,
                    };
                    Template::new(&ep, self.mtu)
                });
        }
    }

    /// Receive one burst and stage its inner frames per tunnel.
    fn receive(&mut self, max: usize) {
        self.take_neigh();
        for m in &mut self.members {
            m.staged.clear();
        }
        self.rx.clear();
        self.rx.set_capacity(max);
        if let Err(e) = self.port.rx_burst(&mut self.rx) {
            self.errors.error(self.port.name(), Op::Rx, &e);
            return;
        }
        for k in 0..self.rx.len() {
            let frame = self.rx.get(k).unwrap_or(&[]);
            let mut got = Err(overlay::DecapError::NotTunnel);
            // Both kinds, whichever the tunnels use: a packet of a kind no network of
            // this host uses is an unknown VNI (`bad-tunnel`), not someone else's.
            for e in [Encap::Geneve, Encap::Vxlan] {
                got = overlay::decap(frame, e, e.udp_port()).map(|d| (e, d));
                if got != Err(overlay::DecapError::NotTunnel) {
                    break;
                }
            }
            match got {
                Ok((_, d)) if d.dst_vtep != self.local => {}
                Ok((e, d)) => match self.by_key.get(&(e, d.vni, d.src_vtep)) {
                    Some(&t) => {
                        let m = &mut self.members[t as usize];
                        m.stats.count_rx(d.inner.len());
                        m.staged
                            .push((k as u16, d.inner.start as u32, d.inner.end as u32));
                    }
                    None => self.bad_tunnel += 1,
                },
                Err(overlay::DecapError::Malformed) => self.bad_tunnel += 1,
                Err(overlay::DecapError::NotTunnel) => {}
            }
        }
    }

    fn send(&mut self) {
        if let Err(e) = self.port.tx_batch(&self.tx) {
            self.errors.error(self.port.name(), Op::Tx, &e);
        }
        self.tx.clear();
    }
}

impl PortGroup for UnderlayGroup {
    fn len(&self) -> usize {
        1 + self.members.len()
    }

    fn rx(&mut self, m: usize, max: usize) -> usize {
        if m == 0 {
            self.cur = usize::MAX;
            if max > 0 && !self.members.is_empty() {
                self.receive(max);
            }
            return 0;
        }
        self.cur = m - 1;
        self.members.get(m - 1).map_or(0, |t| t.staged.len())
    }

    fn rx_frame(&self, k: usize) -> &[u8] {
        let Some(&(i, s, e)) = self.members.get(self.cur).and_then(|t| t.staged.get(k)) else {
            return &[];
        };
        self.rx
            .get(i as usize)
            .and_then(|f| f.get(s as usize..e as usize))
            .unwrap_or(&[])
    }

    /// A tunnel port never sends to another (split horizon): nothing to transmit. The
    /// member's staged frames are consumed (a second `rx` of it before the next `rx(0)`
    /// returns none).
    fn rx_done(&mut self, _fates: &[Members]) {
        if let Some(t) = self.members.get_mut(self.cur) {
            t.staged.clear();
        }
        self.cur = usize::MAX;
    }

    fn tx_copy(&mut self, m: usize, frame: &[u8]) {
        if self.tx.is_full() {
            self.send();
        }
        let Some(t) = m.checked_sub(1).and_then(|i| self.members.get_mut(i)) else {
            return;
        };
        let Some(tpl) = &t.tpl else {
            t.stats.tx_dropped += 1;
            return;
        };
        let Some(slot) = self.tx.spare_slot() else {
            t.stats.tx_dropped += 1;
            return;
        };
        match tpl.encap_into(slot, frame) {
            Ok(n) => {
                self.tx.commit(n);
                t.stats.count_tx(frame.len());
            }
            Err(_) => t.stats.tx_dropped += 1,
        }
    }

    fn flush(&mut self) {
        if !self.tx.is_empty() {
            self.send();
        }
    }

    fn stats(&self, m: usize) -> PortStats {
        match m {
            0 => PortStats {
                bad_tunnel: self.bad_tunnel,
                ..self.port.stats()
            },
            _ => self
                .members
                .get(m - 1)
                .map_or_else(PortStats::default, |t| t.stats),
        }
    }

    fn poll_fd(&self, m: usize) -> Option<RawFd> {
        (m == 0).then(|| self.port.poll_fd()).flatten()
    }

    /// The members follow the dataplane ([`PortGroup::set_tunnels`]), not hot-unplug.
    fn remove_member(&mut self, _m: usize) -> bool {
        false
    }

    fn take_fault(&mut self, m: usize) -> Option<i32> {
        if m == 0 {
            self.port.take_fault()
        } else {
            None
        }
    }

    fn set_tunnels(&mut self, tunnels: &[TunnelDest]) -> bool {
        let same = self.members.len() == tunnels.len()
            && self.members.iter().zip(tunnels).all(|(m, t)| m.dest == *t);
        if !same {
            let cap = self.rx.capacity();
            let old = std::mem::take(&mut self.members);
            self.members = tunnels
                .iter()
                .map(|d| Member {
                    // A tunnel that stays keeps its counters.
                    stats: old
                        .iter()
                        .find(|m| m.dest == *d)
                        .map_or_else(PortStats::default, |m| m.stats),
                    dest: d.clone(),
                    tpl: None,
                    staged: Vec::with_capacity(cap),
                })
                .collect();
            self.by_key = tunnels
                .iter()
                .enumerate()
                .map(|(i, d)| ((d.encap, d.vni, d.vtep), i as u16))
                .collect();
            let wanted: Vec<IpAddr> = tunnels
                .iter()
                .filter(|d| d.mac.is_none())
                .map(|d| d.vtep)
                .collect();
            lock(&self.neigh.state).wanted = wanted;
            self.rebuild();
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::mem::MemPort;

    fn group(local: [u8; 4], mac: u8) -> (UnderlayGroup, crate::port::mem::MemHandle) {
        let (port, peer) = MemPort::new("mem-underlay", 64);
        let g = UnderlayGroup::with_port(
            Box::new(port),
            "no-such-netdev",
            IpAddr::from(local),
            Mac([2, 0, 0, 0, 0, mac]),
            32,
        );
        (g, peer)
    }

    fn dest(encap: Encap, vni: u32, vtep: [u8; 4], mac: u8) -> TunnelDest {
        TunnelDest {
            encap,
            vni,
            vtep: IpAddr::from(vtep),
            mac: Some(Mac([2, 0, 0, 0, 0, mac])),
        }
    }

    fn inner(len: usize, tag: u8) -> Vec<u8> {
        let mut f = vec![tag; len];
        f[..12].copy_from_slice(&[2, 0, 0, 0, 0, 0xb, 2, 0, 0, 0, 0, 0xa]);
        f[12..14].copy_from_slice(&[0x88, 0xb5]);
        f
    }

    #[test]
    fn frames_cross_and_land_on_their_tunnel() {
        let (mut a, pa) = group([10, 0, 0, 1], 1);
        let (mut b, pb) = group([10, 0, 0, 2], 2);
        for e in [Encap::Geneve, Encap::Vxlan] {
            assert!(a.set_tunnels(&[dest(e, 7, [10, 0, 0, 3], 3), dest(e, 5, [10, 0, 0, 2], 2)]));
            assert!(b.set_tunnels(&[dest(e, 5, [10, 0, 0, 1], 1)]));
            assert_eq!((a.len(), b.len()), (3, 2));
            a.tx_copy(2, &inner(100, 1));
            a.tx_copy(2, &inner(1450 + 14, 2)); // the inner MTU: passes
            a.tx_copy(2, &inner(1450 + 15, 3)); // one byte over
            a.tx_copy(0, &inner(60, 4)); // the underlay itself: not a destination
            a.flush();
            assert_eq!(a.stats(2).tx_packets, 2);
            assert_eq!(a.stats(2).tx_dropped, 1, "too big for the path");
            assert_eq!(a.max_inner().load(Ordering::Relaxed), 1450 + 14);
            let sent = pa.take_tx();
            assert_eq!(sent.len(), 2);
            assert_eq!(&sent[0][..6], &[2, 0, 0, 0, 0, 2], "outer destination MAC");
            for f in &sent {
                pb.inject(f);
            }
            pb.inject(&inner(60, 9)); // not a tunnel packet: ignored
            assert_eq!(b.rx(0, 32), 0, "member 0 only reads and stages");
            assert_eq!(b.rx(1, 32), 2);
            assert_eq!(b.rx_frame(0), &inner(100, 1)[..]);
            assert_eq!(b.rx_frame(1).len(), 1464);
            assert!(b.rx_frame(2).is_empty());
            b.rx_done(&[0, 0]);
            assert_eq!(b.rx(1, 32), 0, "consumed");
            assert_eq!(b.stats(0).bad_tunnel, 0);
            // The same packet seen by a host with no tunnel for that VNI: bad-tunnel.
            b.set_tunnels(&[dest(e, 6, [10, 0, 0, 1], 1)]);
            pb.inject(&sent[0]);
            b.rx(0, 32);
            assert_eq!(b.rx(1, 32), 0);
            assert_eq!(b.stats(0).bad_tunnel, 1);
            b.bad_tunnel = 0;
            a.members.clear();
        }
    }

    #[test]
    fn no_mac_no_send_and_mtu_follows() {
        let (mut a, pa) = group([10, 0, 0, 1], 1);
        let mut d = dest(Encap::Geneve, 5, [10, 0, 0, 2], 2);
        d.mac = None;
        a.set_tunnels(&[d]);
        a.tx_copy(1, &inner(100, 1));
        a.flush();
        assert!(pa.take_tx().is_empty());
        assert_eq!(a.stats(1).tx_dropped, 1, "next hop unknown");
        a.set_mtu(9000);
        assert_eq!(a.max_inner().load(Ordering::Relaxed), 9000 - 36);
        let text =
            "IP address       HW type     Flags       HW address            Mask     Device\n\
                    10.0.0.2         0x1         0x2         02:00:00:00:00:02     *        eth1\n\
                    10.0.0.3         0x1         0x0         00:00:00:00:00:00     *        eth1\n\
                    10.0.0.4         0x1         0x2         02:00:00:00:00:04     *        eth2\n";
        let t = parse_arp(text, "eth1");
        assert_eq!(t.len(), 1, "complete entries of eth1 only");
        assert_eq!(t[&IpAddr::from([10, 0, 0, 2])], Mac([2, 0, 0, 0, 0, 2]));
    }
}
