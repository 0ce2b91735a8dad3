//! The per-frame pipeline: port security, egress security groups, L2, ingress security
//! groups — the exact behaviour of a Neutron-conformant stateful firewall inside a switch.
//!
//! # Path of a frame received on port P
//! 1. parse ([`flow::extract`]); error → `malformed`;
//! 2. port security of P (anti-spoofing, ARP, DHCP / RA guards, ethertype allow-list);
//! 3. egress security groups of P, stateful through P's conntrack zone;
//! 4. L2 in P's network (static FDB, learned MACs, flood);
//! 5. for each destination Q: destination-MAC check, always-allowed ingress, then the
//!    ingress security groups of Q through Q's zone;
//! 6. the frame is delivered to every Q that accepted it.
//!
//! # Ownership and threads
//! A [`Dataplane`] is the immutable compiled form of a configuration (port table, FDB,
//! classifier, epoch); it is built off the fast path and shared read-only (`Arc`). A
//! [`Pipeline`] is one worker's mutable state (conntrack table, learned MACs, fragment
//! state, counters): it is never shared, so nothing on the packet path takes a lock.
//!
//! # Policy changes
//! Every `Dataplane` carries a new epoch. Connection-tracking entries remember the epoch
//! they were judged under; the first packet of a connection seen under a newer epoch
//! re-judges the connection's original direction against the current rules and cuts it
//! (both directions) when it is no longer allowed (`security-groups.md` §37-39).
//!
//! # Fragments
//! The first fragment of a datagram is judged like any packet; its whole verdict
//! (destinations and drops) is recorded and shared by the later fragments, which carry no
//! L4 header. A later fragment arriving before its first fragment is held (bounded) and
//! released with the first fragment's verdict, or dropped when it expires.
//!
//! # Bursts
//! [`Pipeline::process_burst`] gives the same verdicts as [`Pipeline::process`] on each
//! frame in order (checked on every fixture by `tests/pipeline_burst.rs`), but in phases
//! over the burst: parse every frame and start its egress conntrack lookup (hash, prefetch
//! the bucket), prefetch the entries, run egress + L2 and note, for each unicast
//! destination whose ingress check consults conntrack, its zone; then prefetch those
//! ingress entries and finish. The ingress lookup is the egress probe moved to the other
//! zone (`Conntrack::reprobe`): the conntrack index ignores the zone when it picks a
//! bucket, so both lookups of a frame share one hash and one bucket line, and a pending
//! frame carries only (zone, entry hint), not a second probe. A lookup in a table larger
//! than the cache costs two memory misses; overlapping them keeps the rate at 50k flows
//! where frame-by-frame processing loses half of it. A frame with a probe made ahead
//! skips the checks that decided to make it (port security on, IP, not always allowed,
//! stateful port) and runs the conntrack check inline (`ct_check`). Frames of one burst
//! come from one port P, so the egress phase (zone P) and the ingress phase (other zones)
//! touch disjoint entries; fragments are finished in place, in order.
//!
//! Cost (callgrind, `examples/profile_pipeline.rs`, 1,000 established flows): 1,075
//! instructions per frame in bursts (was 1,475), 1,114 frame by frame (`frame` mode);
//! about 310 of them are conntrack (one hash, two prefetch stages, two lookups and
//! updates), ~200 parse the frame, ~45 the static FDB lookup.
//!
//! # Allocation
//! Verdicts, held-fragment buffers and fragment records are pooled and reused; in steady
//! state processing a frame allocates nothing.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use hashbrown::HashMap;
use ipnet::IpNet;

use crate::classifier::CompiledPolicy;
use crate::conntrack::{Conntrack, CtConfig, Handle, Probe, Track};
use crate::flow::{self, proto, DropReason, FlowKey, L3Kind, PacketMeta, FAMILY_V4, FAMILY_V6};
use crate::l2::{self, L2Dest, LearnedFdb, StaticFdb};
use crate::policy::{Direction, Model};

/// MAC address.
pub type Mac = [u8; 6];

/// One port of a compiled configuration.
#[derive(Clone, Debug)]
pub struct PortEntry {
    pub name: String,
    /// Connection-tracking zone: stable for a port name across reloads.
    pub zone: u16,
    pub network: u16,
    pub mac: Mac,
    pub port_security: bool,
    /// The port's MAC and its allowed-address-pair MACs (deduplicated).
    pub macs: Vec<Mac>,
    /// (MAC, prefix) pairs the instance may send from: fixed IPs with the port MAC,
    /// allowed address pairs, EUI-64 link-local addresses of each allowed MAC.
    pub pairs: Vec<(Mac, IpNet)>,
    /// `pairs` in the flow key's 16-byte address layout, for the per-frame checks.
    fast_pairs: Vec<FastPair>,
    /// `macs` as words ([`mac_word`]), for the per-frame checks.
    mac_words: Vec<u64>,
}

/// A MAC as one integer (two loads, one compare instead of a 6-byte compare).
#[inline(always)]
fn mac_word(m: &Mac) -> u64 {
    u64::from(u32::from_le_bytes([m[0], m[1], m[2], m[3]]))
        | u64::from(u16::from_le_bytes([m[4], m[5]])) << 32
}

/// An allowed (MAC, prefix) in the [`FlowKey`] address layout (IPv4 mapped into 16 bytes).
#[derive(Clone, Copy, Debug)]
struct FastPair {
    /// [`mac_word`] of the MAC.
    mac: u64,
    family: u8,
    net: u128,
    mask: u128,
}

impl FastPair {
    fn new(mac: Mac, net: &IpNet) -> FastPair {
        match net {
            IpNet::V4(n) => {
                let bits = 96 + n.prefix_len() as u32;
                FastPair {
                    mac: mac_word(&mac),
                    family: FAMILY_V4,
                    net: u128::from_be_bytes(FlowKey::map_v4(n.network().octets())),
                    mask: prefix_mask(bits),
                }
            }
            IpNet::V6(n) => FastPair {
                mac: mac_word(&mac),
                family: FAMILY_V6,
                net: u128::from_be_bytes(n.network().octets()),
                mask: prefix_mask(n.prefix_len() as u32),
            },
        }
    }

    #[inline]
    fn contains(&self, family: u8, addr: &[u8; 16]) -> bool {
        self.family == family && u128::from_be_bytes(*addr) & self.mask == self.net
    }
}

fn prefix_mask(bits: u32) -> u128 {
    if bits == 0 {
        0
    } else {
        u128::MAX << (128 - bits.min(128))
    }
}

impl PortEntry {
    #[inline]
    fn owns_mac(&self, mac: &Mac) -> bool {
        self.mac_words.contains(&mac_word(mac))
    }

    /// Whether (`mac`, `addr`) is an allowed source pair (`addr` in the key layout).
    #[inline]
    fn pair_allows(&self, mac: &Mac, family: u8, addr: &[u8; 16]) -> bool {
        let mac = mac_word(mac);
        self.fast_pairs
            .iter()
            .any(|p| p.mac == mac && p.contains(family, addr))
    }

    /// Whether `addr` is one of the port's addresses (any allowed MAC).
    #[inline]
    fn owns_ip(&self, family: u8, addr: &[u8; 16]) -> bool {
        self.fast_pairs.iter().any(|p| p.contains(family, addr))
    }
}

/// Assigns stable conntrack zones to port names across reloads.
#[derive(Clone, Debug, Default)]
pub struct ZoneMap {
    zones: HashMap<String, u16>,
}

impl ZoneMap {
    pub fn zone(&mut self, name: &str) -> u16 {
        if let Some(z) = self.zones.get(name) {
            return *z;
        }
        let z = self.zones.len() as u16;
        self.zones.insert(name.to_string(), z);
        z
    }

    /// Port names indexed by zone.
    pub fn names(&self) -> Vec<String> {
        let mut v = vec![String::new(); self.zones.len()];
        for (n, z) in &self.zones {
            v[*z as usize] = n.clone();
        }
        v
    }
}

/// The immutable compiled form of a configuration, shared by all workers.
#[derive(Debug)]
pub struct Dataplane {
    pub epoch: u64,
    pub ports: Vec<PortEntry>,
    pub networks: Vec<String>,
    pub fdb: StaticFdb,
    pub policy: CompiledPolicy,
    pub permitted_ethertypes: Vec<u16>,
    by_name: HashMap<String, u16>,
    /// zone → port index
    by_zone: Vec<Option<u16>>,
}

/// The EUI-64 IPv6 link-local address (fe80::/64) derived from a MAC.
pub fn eui64_link_local(mac: &Mac) -> Ipv6Addr {
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        mac[0] ^ 0x02,
        mac[1],
        mac[2],
        0xff,
        0xfe,
        mac[3],
        mac[4],
        mac[5],
    ])
}

impl Dataplane {
    /// Compile a validated model. `zones` keeps conntrack zones stable across reloads.
    pub fn compile(model: &Model, epoch: u64, zones: &mut ZoneMap) -> Dataplane {
        let mut networks: Vec<String> = Vec::new();
        for n in &model.networks {
            if !networks.contains(&n.name) {
                networks.push(n.name.clone());
            }
        }
        for p in &model.ports {
            if !networks.contains(&p.network) {
                networks.push(p.network.clone());
            }
        }
        let mut ports = Vec::with_capacity(model.ports.len());
        let mut by_name = HashMap::new();
        for (i, p) in model.ports.iter().enumerate() {
            let mut macs = vec![p.mac];
            for aap in &p.allowed_address_pairs {
                let m = aap.mac_address.unwrap_or(p.mac);
                if !macs.contains(&m) {
                    macs.push(m);
                }
            }
            let mut pairs: Vec<(Mac, IpNet)> = Vec::new();
            for ip in &p.fixed_ips {
                pairs.push((p.mac, IpNet::from(*ip)));
            }
            for aap in &p.allowed_address_pairs {
                pairs.push((aap.mac_address.unwrap_or(p.mac), aap.ip_address));
            }
            for m in &macs {
                pairs.push((*m, IpNet::from(IpAddr::V6(eui64_link_local(m)))));
            }
            let network = networks.iter().position(|n| *n == p.network).unwrap_or(0) as u16;
            by_name.insert(p.name.clone(), i as u16);
            ports.push(PortEntry {
                name: p.name.clone(),
                zone: zones.zone(&p.name),
                network,
                mac: p.mac,
                port_security: p.port_security,
                fast_pairs: pairs.iter().map(|(m, n)| FastPair::new(*m, n)).collect(),
                mac_words: macs.iter().map(mac_word).collect(),
                macs,
                pairs,
            });
        }
        let fdb = StaticFdb::new(
            networks.len(),
            ports
                .iter()
                .enumerate()
                .map(|(i, p)| (p.network, i as u16, p.macs.as_slice())),
        );
        let mut by_zone = Vec::new();
        for (i, p) in ports.iter().enumerate() {
            if by_zone.len() <= p.zone as usize {
                by_zone.resize(p.zone as usize + 1, None);
            }
            by_zone[p.zone as usize] = Some(i as u16);
        }
        Dataplane {
            epoch,
            by_zone,
            policy: CompiledPolicy::compile(model, epoch),
            ports,
            networks,
            fdb,
            permitted_ethertypes: model.permitted_ethertypes.clone(),
            by_name,
        }
    }

    /// Index of the port with conntrack zone `zone`.
    #[inline]
    pub fn port_index_by_zone(&self, zone: u16) -> Option<u16> {
        self.by_zone.get(zone as usize).copied().flatten()
    }

    /// Index of the port called `name`.
    pub fn port_index(&self, name: &str) -> Option<u16> {
        self.by_name.get(name).copied()
    }
}

/// The outcome for one frame: the ports it is delivered to and the drops, each naming
/// the port where it happened. Reused across frames (no allocation in steady state).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub delivered: Vec<u16>,
    pub dropped: Vec<(u16, DropReason)>,
}

impl Verdict {
    pub fn clear(&mut self) {
        self.delivered.clear();
        self.dropped.clear();
    }

    fn copy_from(&mut self, o: &Verdict) {
        self.delivered.clear();
        self.delivered.extend_from_slice(&o.delivered);
        self.dropped.clear();
        self.dropped.extend_from_slice(&o.dropped);
    }

    /// Sort both lists by port index (config order). Most verdicts name one port: no
    /// sort call then.
    #[inline]
    fn normalise(&mut self) {
        if self.delivered.len() > 1 {
            self.delivered.sort_unstable();
        }
        if self.dropped.len() > 1 {
            self.dropped.sort_unstable_by_key(|d| d.0);
        }
    }
}

/// What happened to a frame handed to [`Pipeline::process`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// The verdict is final.
    Decided,
    /// The frame is held (a fragment waiting for its first fragment); its verdict comes
    /// later through [`Pipeline::drain_released`].
    Held,
}

/// Per-port counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortCounters {
    pub rx: u64,
    pub tx: u64,
    pub dropped: [u64; DropReason::COUNT],
}

impl PortCounters {
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct FragKey {
    zone: u16,
    family: u8,
    proto: u8,
    id: u32,
    src: [u8; 16],
    dst: [u8; 16],
}

#[derive(Debug)]
struct FragRecord {
    /// Pool slot of the first fragment's verdict, once known.
    verdict: Option<u32>,
    expires_ns: u64,
    /// Held later fragments (indices into the held pool), in arrival order.
    held: Vec<u32>,
}

#[derive(Debug, Default)]
struct HeldFrame {
    token: u64,
    in_port: u16,
    frame: Vec<u8>,
}

/// A held frame whose verdict is now known.
#[derive(Debug, Clone, Copy)]
struct ReleasedRef {
    held: u32,
    /// Verdict pool slot, or None for a drop at the ingress port with `reason`.
    verdict: Option<u32>,
    reason: DropReason,
}

/// Tunables of a pipeline (one worker).
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    pub conntrack: CtConfig,
    pub max_pending_fragments: usize,
    pub max_fragmented_datagrams: usize,
    pub fragment_timeout_ns: u64,
    pub learned_macs: usize,
    pub mac_ageing_ns: u64,
}

impl PipelineConfig {
    pub fn from_model(model: &Model) -> PipelineConfig {
        let c = &model.conntrack;
        PipelineConfig {
            conntrack: CtConfig {
                capacity: c.capacity,
                tcp_syn_timeout: c.tcp_syn_timeout,
                tcp_established_timeout: c.tcp_established_timeout,
                tcp_fin_timeout: c.tcp_fin_timeout,
                tcp_close_timeout: c.tcp_close_timeout,
                udp_timeout: c.udp_timeout,
                udp_stream_timeout: c.udp_stream_timeout,
                icmp_timeout: c.icmp_timeout,
                other_timeout: c.other_timeout,
                seed: None,
            },
            max_pending_fragments: c.max_pending_fragments.max(1),
            max_fragmented_datagrams: (c.max_pending_fragments * 4).max(64),
            fragment_timeout_ns: c.fragment_timeout.saturating_mul(1_000_000_000),
            learned_macs: 4096,
            mac_ageing_ns: l2::DEFAULT_AGEING_NS,
        }
    }
}

/// One worker's pipeline state.
pub struct Pipeline {
    ct: Conntrack,
    learned: LearnedFdb,
    counters: Vec<PortCounters>,
    frags: HashMap<FragKey, FragRecord>,
    /// Earliest `expires_ns` in `frags` (a lower bound; `u64::MAX` when empty).
    frags_next_due: u64,
    max_datagrams: usize,
    frag_timeout_ns: u64,
    verdict_pool: Vec<Verdict>,
    verdict_free: Vec<u32>,
    held_pool: Vec<HeldFrame>,
    held_free: Vec<u32>,
    held_count: usize,
    released: Vec<ReleasedRef>,
    scratch: Verdict,
    burst_meta: Vec<(bool, PacketMeta)>,
    burst_probe: Vec<Option<Probe>>,
    burst_dest: Vec<Pending>,
    /// Record MACs learned here for the other workers (see [`l2::LearnedFdb`]).
    share_learning: bool,
    learned_out: Vec<Learned>,
}

/// A MAC learned by one worker's pipeline, for the others ([`Pipeline::take_learned`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Learned {
    pub network: u16,
    pub mac: Mac,
    /// Dataplane port index, valid under `epoch`.
    pub port: u16,
    pub epoch: u64,
}

/// Learned MACs kept for [`Pipeline::take_learned`] between two calls; more are not
/// recorded (the next refresh announces them again).
pub const LEARNED_OUT: usize = 256;

/// A frame of a burst between its L2 step and its ingress step.
#[derive(Clone, Copy, Debug)]
struct Pending {
    /// Index in the chunk.
    i: usize,
    /// `None`: decided at the sending port.
    dest: Option<L2Dest>,
    /// For a unicast destination whose ingress check consults conntrack: its zone and
    /// the entry hint found by the prefetch ([`Probe::hint`]).
    ct: Option<(u16, u32)>,
}

/// No entry hint (a hint is only ever verified, so any value is safe).
const NO_HINT: u32 = u32::MAX;

/// Frames per phase of [`Pipeline::process_burst`].
pub const BURST: usize = 32;

const EGRESS: Direction = Direction::Egress;
const INGRESS: Direction = Direction::Ingress;

const TAG_EGRESS: u8 = 0;
const TAG_INGRESS: u8 = 1;

#[inline]
fn dir_tag(d: Direction) -> u8 {
    match d {
        Direction::Egress => TAG_EGRESS,
        Direction::Ingress => TAG_INGRESS,
    }
}

#[inline]
fn denied(d: Direction) -> DropReason {
    match d {
        Direction::Egress => DropReason::EgressDenied,
        Direction::Ingress => DropReason::IngressDenied,
    }
}

#[inline]
fn v4_zero(key: &FlowKey) -> bool {
    key.src[12..16] == [0, 0, 0, 0]
}

impl Pipeline {
    pub fn new(cfg: &PipelineConfig) -> Pipeline {
        let held = cfg.max_pending_fragments;
        let mut held_pool = Vec::with_capacity(held);
        for _ in 0..held {
            held_pool.push(HeldFrame {
                token: 0,
                in_port: 0,
                frame: Vec::with_capacity(2048),
            });
        }
        let vp = cfg.max_fragmented_datagrams;
        Pipeline {
            ct: Conntrack::new(cfg.conntrack),
            learned: LearnedFdb::new(cfg.learned_macs, cfg.mac_ageing_ns),
            counters: Vec::new(),
            frags: HashMap::with_capacity(vp),
            frags_next_due: u64::MAX,
            max_datagrams: vp,
            frag_timeout_ns: cfg.fragment_timeout_ns.max(1),
            verdict_pool: (0..vp).map(|_| Verdict::default()).collect(),
            verdict_free: (0..vp as u32).rev().collect(),
            held_pool,
            held_free: (0..held as u32).rev().collect(),
            held_count: 0,
            released: Vec::with_capacity(held),
            scratch: Verdict::default(),
            burst_meta: vec![(false, PacketMeta::default()); BURST],
            burst_probe: vec![None; BURST],
            burst_dest: Vec::with_capacity(BURST),
            share_learning: false,
            learned_out: Vec::with_capacity(LEARNED_OUT),
        }
    }

    /// Counters per conntrack zone (a zone is stable for a port name across reloads:
    /// see [`ZoneMap`]).
    pub fn counters(&self) -> &[PortCounters] {
        &self.counters
    }

    /// Record the MACs this pipeline learns for other workers' pipelines (off by default:
    /// one pipeline, as in replay, has no one to tell).
    pub fn share_learning(&mut self, on: bool) {
        self.share_learning = on;
        self.learned_out.clear();
    }

    /// Hand every MAC learned since the last call to `f` (see [`l2::LearnedFdb`]).
    pub fn take_learned(&mut self, mut f: impl FnMut(Learned)) {
        for l in self.learned_out.drain(..) {
            f(l);
        }
    }

    /// Apply a MAC another worker's pipeline learned.
    pub fn learn_remote(&mut self, l: Learned, now_ns: u64) {
        self.learned
            .learn_remote(l.network, l.mac, l.port, l.epoch, now_ns);
    }

    /// The connection-tracking table (for statistics and debugging).
    pub fn conntrack(&self) -> &Conntrack {
        &self.ct
    }

    #[inline]
    fn counter(&mut self, dp: &Dataplane, port: u16) -> Option<&mut PortCounters> {
        let zone = dp.ports.get(port as usize)?.zone as usize;
        if zone >= self.counters.len() {
            self.grow_counters(zone);
        }
        self.counters.get_mut(zone)
    }

    /// First frame counted for `zone` (since it appeared): make room (cold).
    #[cold]
    #[inline(never)]
    fn grow_counters(&mut self, zone: usize) {
        self.counters.resize(zone + 1, PortCounters::default());
    }

    #[inline]
    fn count(&mut self, dp: &Dataplane, v: &Verdict, in_port: u16) {
        if let Some(c) = self.counter(dp, in_port) {
            c.rx += 1;
        }
        for &d in &v.delivered {
            if let Some(c) = self.counter(dp, d) {
                c.tx += 1;
            }
        }
        for &(p, r) in &v.dropped {
            if let Some(c) = self.counter(dp, p) {
                c.dropped[r as usize] += 1;
            }
        }
    }

    /// Process one frame received on port `in_port` at time `now_ns`. `token` identifies
    /// the frame if it has to be held (e.g. its number in a capture). The verdict is
    /// written to `out` when the result is [`Disposition::Decided`].
    pub fn process(
        &mut self,
        dp: &Dataplane,
        in_port: u16,
        frame: &[u8],
        now_ns: u64,
        token: u64,
        out: &mut Verdict,
    ) -> Disposition {
        out.clear();
        let d = self.process_inner(dp, in_port, frame, now_ns, token, out);
        self.account(dp, in_port, d, out);
        d
    }

    fn process_inner(
        &mut self,
        dp: &Dataplane,
        in_port: u16,
        frame: &[u8],
        now_ns: u64,
        token: u64,
        out: &mut Verdict,
    ) -> Disposition {
        let mut meta = PacketMeta::default();
        let parsed = flow::extract_into(frame, &mut meta).is_ok();
        self.process_parsed(
            dp,
            in_port,
            frame,
            parsed.then_some(&meta),
            None,
            now_ns,
            token,
            out,
        )
    }

    /// Process a burst of frames received on `in_port`, in phases over the whole burst:
    /// parse every frame and compute its egress conntrack probe (which prefetches the
    /// hash bucket), prefetch the candidate entries, then finish each frame. The memory
    /// latency of the conntrack lookups overlaps instead of adding up. Same results as
    /// calling [`Pipeline::process`] on each frame in order.
    pub fn process_burst(
        &mut self,
        dp: &Dataplane,
        in_port: u16,
        frames: &[&[u8]],
        now_ns: u64,
        out: &mut [Verdict],
        dispositions: &mut [Disposition],
    ) {
        let mut metas = std::mem::take(&mut self.burst_meta);
        let n = frames.len().min(out.len()).min(dispositions.len());
        for start in (0..n).step_by(BURST) {
            let end = (start + BURST).min(n);
            parse_burst(&frames[start..end], &mut metas[..end - start]);
            self.process_parsed_burst(
                dp,
                in_port,
                &frames[start..end],
                &metas[..end - start],
                now_ns,
                &mut out[start..end],
                &mut dispositions[start..end],
            );
        }
        self.burst_meta = metas;
    }

    /// [`Pipeline::process_burst`] for frames already parsed by [`parse_burst`] (the
    /// runtime parses a burst once, to steer it between workers, then processes it here):
    /// `metas[i]` is the result of parsing `frames[i]`.
    #[allow(clippy::too_many_arguments)]
    pub fn process_parsed_burst(
        &mut self,
        dp: &Dataplane,
        in_port: u16,
        frames: &[&[u8]],
        metas: &[(bool, PacketMeta)],
        now_ns: u64,
        out: &mut [Verdict],
        dispositions: &mut [Disposition],
    ) {
        let mut probes = std::mem::take(&mut self.burst_probe);
        let port = dp.ports.get(in_port as usize);
        let stateful = dp.policy.is_stateful(in_port as usize);
        let total = frames
            .len()
            .min(metas.len())
            .min(out.len())
            .min(dispositions.len());
        for chunk_start in (0..total).step_by(BURST) {
            let end = (chunk_start + BURST).min(total);
            let n = end - chunk_start;
            let metas = &metas[chunk_start..end];
            // Phase 1: start the egress conntrack lookup.
            for (k, slot) in metas.iter().enumerate() {
                let (ok, ref m) = *slot;
                let probe = match port {
                    Some(p)
                        if ok
                            && stateful
                            && p.port_security
                            && m.is_ip()
                            && !m.frag.is_later_fragment()
                            && !always_allowed_egress(m) =>
                    {
                        Some(self.ct.probe(p.zone, m))
                    }
                    _ => None,
                };
                probes[k] = probe;
            }
            // Phase 2: prefetch the entries the probes point at.
            for p in probes[..n].iter_mut().flatten() {
                self.ct.prefetch_entry(p);
            }
            // Phase 3: egress and L2 of every frame; start the ingress lookup of unicast
            // destinations. Fragments (rare) are finished on the spot, after the frames
            // before them, so that their shared verdicts are recorded in frame order.
            let mut dests = std::mem::take(&mut self.burst_dest);
            dests.clear();
            for i in 0..n {
                let (ok, ref m) = metas[i];
                let frag = ok && m.is_ip() && m.frag.is_fragment;
                let simple = ok
                    && !frag
                    && port.is_some_and(|p| !p.port_security || port_security(dp, p, m).is_ok());
                if !simple {
                    self.finish_pending(
                        dp,
                        in_port,
                        metas,
                        &probes,
                        &mut dests,
                        now_ns,
                        &mut out[chunk_start..],
                    );
                }
                let o = &mut out[chunk_start + i];
                o.clear();
                if !simple {
                    let d = self.process_parsed(
                        dp,
                        in_port,
                        frames[chunk_start + i],
                        ok.then_some(m),
                        probes[i].as_ref(),
                        now_ns,
                        0,
                        o,
                    );
                    self.account(dp, in_port, d, o);
                    dispositions[chunk_start + i] = d;
                    continue;
                }
                let Some(p) = port else { continue };
                let dest = self.egress_and_l2(dp, in_port, p, m, probes[i].as_ref(), now_ns, o);
                let ct = match dest {
                    Some(L2Dest::Port(q)) => self.ingress_zone(dp, q, m),
                    _ => None,
                };
                if let Some(zone) = ct {
                    if probes[i].is_none() {
                        // No egress lookup to derive it from (P is not stateful): probe
                        // in Q's zone now (this frame's egress is done with `probes[i]`).
                        probes[i] = Some(self.ct.probe(zone, m));
                    }
                }
                dests.push(Pending {
                    i,
                    dest,
                    ct: ct.map(|zone| (zone, NO_HINT)),
                });
                dispositions[chunk_start + i] = Disposition::Decided;
            }
            self.finish_pending(
                dp,
                in_port,
                metas,
                &probes,
                &mut dests,
                now_ns,
                &mut out[chunk_start..],
            );
            self.burst_dest = dests;
        }
        self.burst_probe = probes;
    }

    /// Phases 4-5 of a burst: prefetch the pending frames' ingress conntrack entries, then
    /// run their ingress checks and account them. The ingress probe of a frame is its
    /// probe in `probes` moved to the destination's zone: same bucket (prefetched in
    /// phase 1), another signature.
    #[allow(clippy::too_many_arguments)]
    fn finish_pending(
        &mut self,
        dp: &Dataplane,
        in_port: u16,
        metas: &[(bool, PacketMeta)],
        probes: &[Option<Probe>],
        dests: &mut Vec<Pending>,
        now_ns: u64,
        out: &mut [Verdict],
    ) {
        if dests.is_empty() {
            return;
        }
        for d in dests.iter_mut() {
            if let (Some((zone, hint)), Some(Some(e))) = (&mut d.ct, probes.get(d.i)) {
                let mut p = self.ct.reprobe(e, *zone);
                self.ct.prefetch_entry(&mut p);
                *hint = p.hint();
            }
        }
        let Some(p) = dp.ports.get(in_port as usize) else {
            dests.clear();
            return;
        };
        for d in dests.drain(..) {
            let o = &mut out[d.i];
            let m = &metas[d.i].1;
            match (d.dest, d.ct, probes.get(d.i)) {
                // `ct` is set only when `deliver`'s checks before the security groups all
                // pass (see `ingress_zone`): go straight to them.
                (Some(L2Dest::Port(q)), Some((zone, hint)), Some(Some(e))) => {
                    let probe = self.ct.reprobe(e, zone).with_hint(hint);
                    match self.ct_check(dp, q as usize, zone, INGRESS, m, &probe, now_ns) {
                        Ok(()) => o.delivered.push(q),
                        Err(r) => o.dropped.push((q, r)),
                    }
                }
                (Some(dest), _, _) => self.ingress(dp, in_port, p, dest, m, now_ns, o),
                (None, _, _) => {}
            }
            self.account(dp, in_port, Disposition::Decided, o);
        }
    }

    #[inline]
    fn account(&mut self, dp: &Dataplane, in_port: u16, d: Disposition, o: &mut Verdict) {
        if d == Disposition::Decided {
            o.normalise();
            self.count(dp, o, in_port);
        } else if let Some(c) = self.counter(dp, in_port) {
            c.rx += 1;
        }
    }

    /// Steps 2-6 for a frame parsed into `meta` (`None`: it did not parse).
    #[allow(clippy::too_many_arguments)]
    fn process_parsed(
        &mut self,
        dp: &Dataplane,
        in_port: u16,
        frame: &[u8],
        meta: Option<&PacketMeta>,
        probe: Option<&Probe>,
        now_ns: u64,
        token: u64,
        out: &mut Verdict,
    ) -> Disposition {
        let Some(p) = dp.ports.get(in_port as usize) else {
            out.dropped.push((in_port, DropReason::UnknownPort));
            return Disposition::Decided;
        };
        let Some(meta) = meta else {
            out.dropped.push((in_port, DropReason::Malformed));
            return Disposition::Decided;
        };
        if p.port_security {
            if let Err(r) = port_security(dp, p, meta) {
                out.dropped.push((in_port, r));
                return Disposition::Decided;
            }
        }
        // Fragments: later fragments share the first fragment's verdict.
        if meta.is_ip() && meta.frag.is_fragment {
            let fk = FragKey {
                zone: p.zone,
                family: meta.key.family,
                proto: meta.key.proto,
                id: meta.frag.id,
                src: meta.key.src,
                dst: meta.key.dst,
            };
            if meta.frag.offset != 0 {
                return self.later_fragment(fk, in_port, frame, now_ns, token, out);
            }
            self.judge(dp, in_port, p, meta, probe, now_ns, out);
            self.record_first(fk, now_ns, out);
            return Disposition::Decided;
        }
        self.judge(dp, in_port, p, meta, probe, now_ns, out);
        Disposition::Decided
    }

    /// Steps 3-5 for a parsed frame that passed P's port security.
    #[allow(clippy::too_many_arguments)]
    fn judge(
        &mut self,
        dp: &Dataplane,
        in_port: u16,
        p: &PortEntry,
        meta: &PacketMeta,
        probe: Option<&Probe>,
        now_ns: u64,
        out: &mut Verdict,
    ) {
        if let Some(dest) = self.egress_and_l2(dp, in_port, p, meta, probe, now_ns, out) {
            self.ingress(dp, in_port, p, dest, meta, now_ns, out);
        }
    }

    /// Steps 3-4: egress security groups of P, then the L2 decision. `None` when the frame
    /// is already decided (dropped at P). `probe` is this frame's conntrack probe in P's
    /// zone, made ahead by a burst only when P's egress check consults conntrack (port
    /// security, IP, not always allowed, stateful P): then the lookup is done right here.
    #[allow(clippy::too_many_arguments)]
    fn egress_and_l2(
        &mut self,
        dp: &Dataplane,
        in_port: u16,
        p: &PortEntry,
        meta: &PacketMeta,
        probe: Option<&Probe>,
        now_ns: u64,
        out: &mut Verdict,
    ) -> Option<L2Dest> {
        // 3. egress security groups of P.
        let check = match probe {
            Some(pr) => {
                debug_assert!(p.port_security && meta.is_ip() && !always_allowed_egress(meta));
                debug_assert!(dp.policy.is_stateful(in_port as usize));
                Some(self.ct_check(dp, in_port as usize, p.zone, EGRESS, meta, pr, now_ns))
            }
            None if p.port_security && meta.is_ip() && !always_allowed_egress(meta) => {
                Some(self.sg_check(dp, in_port, p.zone, EGRESS, meta, None, now_ns))
            }
            None => None,
        };
        if let Some(Err(r)) = check {
            out.dropped.push((in_port, r));
            return None;
        }
        // 4. L2.
        if !p.port_security
            && self
                .learned
                .learn(p.network, meta.eth_src, in_port, dp.epoch, now_ns)
            && self.share_learning
            && self.learned_out.len() < LEARNED_OUT
        {
            self.learned_out.push(Learned {
                network: p.network,
                mac: meta.eth_src,
                port: in_port,
                epoch: dp.epoch,
            });
        }
        match l2::forward(
            &dp.fdb,
            &self.learned,
            p.network,
            &meta.eth_dst,
            dp.epoch,
            now_ns,
        ) {
            L2Dest::Port(q) if q == in_port => {
                out.dropped.push((in_port, DropReason::Hairpin));
                None
            }
            L2Dest::Flood if dp.fdb.members(p.network).len() <= 1 => {
                out.dropped.push((in_port, DropReason::NoDestination));
                None
            }
            d => Some(d),
        }
    }

    /// Step 5 for every destination.
    #[allow(clippy::too_many_arguments)]
    fn ingress(
        &mut self,
        dp: &Dataplane,
        in_port: u16,
        p: &PortEntry,
        dest: L2Dest,
        meta: &PacketMeta,
        now_ns: u64,
        out: &mut Verdict,
    ) {
        match dest {
            L2Dest::Port(q) => self.deliver(dp, q, meta, now_ns, out),
            L2Dest::Flood => {
                for &q in dp.fdb.members(p.network) {
                    if q != in_port {
                        self.deliver(dp, q, meta, now_ns, out);
                    }
                }
            }
        }
    }

    /// The conntrack zone of unicast destination `q` if its ingress check will consult
    /// conntrack (and so is worth a lookup ahead): exactly when [`Pipeline::deliver`]
    /// would reach [`Pipeline::sg_check`] of a stateful port, which the burst then calls
    /// directly.
    #[inline]
    fn ingress_zone(&self, dp: &Dataplane, q: u16, meta: &PacketMeta) -> Option<u16> {
        let qp = dp.ports.get(q as usize)?;
        if !qp.port_security
            || !qp.owns_mac(&meta.eth_dst)
            || !meta.is_ip()
            || always_allowed_ingress(meta)
            || !dp.policy.is_stateful(q as usize)
        {
            return None;
        }
        Some(qp.zone)
    }

    /// Step 5 for one destination port.
    fn deliver(
        &mut self,
        dp: &Dataplane,
        q: u16,
        meta: &PacketMeta,
        now_ns: u64,
        out: &mut Verdict,
    ) {
        let Some(qp) = dp.ports.get(q as usize) else {
            return;
        };
        if !qp.port_security {
            out.delivered.push(q);
            return;
        }
        if !meta.is_multicast_dst() && !qp.owns_mac(&meta.eth_dst) {
            out.dropped.push((q, DropReason::DstMacMismatch));
            return;
        }
        if !meta.is_ip() || always_allowed_ingress(meta) {
            // ARP (and permitted non-IP) is never subject to security groups.
            out.delivered.push(q);
            return;
        }
        match self.sg_check(dp, q, qp.zone, Direction::Ingress, meta, None, now_ns) {
            Ok(()) => out.delivered.push(q),
            Err(r) => out.dropped.push((q, r)),
        }
    }

    /// Security groups of `port` in direction `dir`, stateful through `zone`. `probe`, when
    /// given, is this packet's conntrack probe for `zone`, computed (and prefetched) ahead.
    #[allow(clippy::too_many_arguments)]
    fn sg_check(
        &mut self,
        dp: &Dataplane,
        port: u16,
        zone: u16,
        dir: Direction,
        meta: &PacketMeta,
        probe: Option<&Probe>,
        now_ns: u64,
    ) -> Result<(), DropReason> {
        let idx = port as usize;
        if !dp.policy.is_stateful(idx) {
            return if dp.policy.allows(idx, dir, &meta.key) {
                Ok(())
            } else {
                Err(denied(dir))
            };
        }
        // The conntrack lookup is inlined in each arm, so that its outcome is matched
        // where it is built (no `Track` through memory, no call), and the arm with a
        // probe made ahead (bursts) does not carry the other one's.
        match probe {
            Some(p) => self.ct_check(dp, idx, zone, dir, meta, p, now_ns),
            None => {
                let p = self.ct.probe(zone, meta);
                self.ct_check(dp, idx, zone, dir, meta, &p, now_ns)
            }
        }
    }

    /// The stateful part of [`Pipeline::sg_check`]: track the packet through its probe
    /// for `zone`; a connection judged under the current epoch is decided here, the rare
    /// cases (stale epoch, new connection) in out-of-line helpers.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn ct_check(
        &mut self,
        dp: &Dataplane,
        idx: usize,
        zone: u16,
        dir: Direction,
        meta: &PacketMeta,
        probe: &Probe,
        now_ns: u64,
    ) -> Result<(), DropReason> {
        match self.ct.track_probe_inline(probe, now_ns) {
            Track::Tracked {
                handle,
                epoch,
                cut,
                tag,
                ..
            } => {
                if epoch != dp.epoch {
                    self.rejudge(dp, idx, handle, tag)
                } else if cut {
                    Err(DropReason::ConnectionCut)
                } else {
                    Ok(())
                }
            }
            Track::Related { .. } => Ok(()),
            Track::Invalid => Err(DropReason::InvalidState),
            Track::New => self.admit(dp, idx, zone, dir, meta, now_ns),
        }
    }

    /// A tracked connection last judged under an older epoch: re-judge its original
    /// direction against the current rules, record the outcome (cut or not).
    #[cold]
    #[inline(never)]
    fn rejudge(
        &mut self,
        dp: &Dataplane,
        idx: usize,
        handle: Handle,
        tag: u8,
    ) -> Result<(), DropReason> {
        let odir = if tag == TAG_INGRESS {
            Direction::Ingress
        } else {
            Direction::Egress
        };
        let ok = match self.ct.orig(handle) {
            Some(orig) => dp.policy.allows(idx, odir, &orig),
            None => false,
        };
        self.ct.set_epoch(handle, dp.epoch, !ok);
        if ok {
            Ok(())
        } else {
            Err(DropReason::ConnectionCut)
        }
    }

    /// The first packet of a connection: judge it, and commit an entry when allowed.
    #[inline(never)]
    fn admit(
        &mut self,
        dp: &Dataplane,
        idx: usize,
        zone: u16,
        dir: Direction,
        meta: &PacketMeta,
        now_ns: u64,
    ) -> Result<(), DropReason> {
        if !dp.policy.allows(idx, dir, &meta.key) {
            return Err(denied(dir));
        }
        match self.ct.commit(zone, meta, dp.epoch, dir_tag(dir), now_ns) {
            Ok(_) => Ok(()),
            Err(_) => Err(DropReason::ConntrackFull),
        }
    }

    fn alloc_verdict(&mut self) -> Option<u32> {
        self.verdict_free.pop()
    }

    /// Remember the first fragment's verdict and release held fragments of its datagram.
    fn record_first(&mut self, fk: FragKey, now_ns: u64, v: &Verdict) {
        self.expire_fragments(now_ns);
        let expires = now_ns.saturating_add(self.frag_timeout_ns);
        if !self.frags.contains_key(&fk) && self.frags.len() >= self.max_datagrams {
            // No room to remember this datagram: its later fragments will be held and
            // expire. Bounded memory wins over delivering them.
            return;
        }
        let slot = match self.frags.get(&fk).and_then(|r| r.verdict) {
            Some(s) => Some(s),
            None => self.alloc_verdict(),
        };
        let Some(slot) = slot else { return };
        self.verdict_pool[slot as usize].copy_from(v);
        let rec = self.frags.entry(fk).or_insert(FragRecord {
            verdict: None,
            expires_ns: expires,
            held: Vec::new(),
        });
        rec.verdict = Some(slot);
        rec.expires_ns = expires;
        self.frags_next_due = self.frags_next_due.min(expires);
        for h in rec.held.drain(..) {
            self.released.push(ReleasedRef {
                held: h,
                verdict: Some(slot),
                reason: DropReason::FragmentDenied,
            });
        }
    }

    fn later_fragment(
        &mut self,
        fk: FragKey,
        in_port: u16,
        frame: &[u8],
        now_ns: u64,
        token: u64,
        out: &mut Verdict,
    ) -> Disposition {
        self.expire_fragments(now_ns);
        if let Some(rec) = self.frags.get(&fk) {
            if let Some(slot) = rec.verdict {
                out.copy_from(&self.verdict_pool[slot as usize]);
                return Disposition::Decided;
            }
        }
        if !self.frags.contains_key(&fk) && self.frags.len() >= self.max_datagrams {
            out.dropped.push((in_port, DropReason::FragmentOverflow));
            return Disposition::Decided;
        }
        let Some(h) = self.held_free.pop() else {
            out.dropped.push((in_port, DropReason::FragmentOverflow));
            return Disposition::Decided;
        };
        let slot = &mut self.held_pool[h as usize];
        slot.token = token;
        slot.in_port = in_port;
        slot.frame.clear();
        slot.frame.extend_from_slice(frame);
        self.held_count += 1;
        let expires = now_ns.saturating_add(self.frag_timeout_ns);
        let rec = self.frags.entry(fk).or_insert(FragRecord {
            verdict: None,
            expires_ns: expires,
            held: Vec::new(),
        });
        rec.held.push(h);
        self.frags_next_due = self.frags_next_due.min(expires);
        Disposition::Held
    }

    /// Expire fragment records (and drop their held fragments) older than the timeout.
    /// Cheap when nothing is due: one comparison with the earliest deadline; a table scan
    /// (no allocation) only when some datagram expired.
    pub fn expire_fragments(&mut self, now_ns: u64) {
        if self.frags.is_empty() || now_ns < self.frags_next_due {
            return;
        }
        let (released, verdict_free) = (&mut self.released, &mut self.verdict_free);
        for (_, mut rec) in self.frags.extract_if(|_, r| r.expires_ns <= now_ns) {
            for h in rec.held.drain(..) {
                released.push(ReleasedRef {
                    held: h,
                    verdict: None,
                    reason: DropReason::FragmentDenied,
                });
            }
            if let Some(v) = rec.verdict {
                verdict_free.push(v);
            }
        }
        self.frags_next_due = self
            .frags
            .values()
            .map(|r| r.expires_ns)
            .min()
            .unwrap_or(u64::MAX);
    }

    /// Give up on every held fragment (end of a replay): they are dropped `fragment-denied`.
    pub fn flush_held(&mut self) {
        self.expire_fragments(u64::MAX);
    }

    /// Hand every held frame whose fate is now decided to `f(token, in_port, frame, verdict)`.
    pub fn drain_released<F: FnMut(u64, u16, &[u8], &Verdict)>(
        &mut self,
        dp: &Dataplane,
        mut f: F,
    ) {
        let released = std::mem::take(&mut self.released);
        for r in &released {
            let (token, in_port) = {
                let h = &self.held_pool[r.held as usize];
                (h.token, h.in_port)
            };
            let mut v = std::mem::take(&mut self.scratch);
            match r.verdict {
                Some(slot) => v.copy_from(&self.verdict_pool[slot as usize]),
                None => {
                    v.clear();
                    v.dropped.push((in_port, r.reason));
                }
            }
            self.count(dp, &v, in_port);
            // rx was counted when the frame was held.
            if let Some(c) = self.counter(dp, in_port) {
                c.rx = c.rx.saturating_sub(1);
            }
            f(token, in_port, &self.held_pool[r.held as usize].frame, &v);
            self.scratch = v;
            self.held_free.push(r.held);
            self.held_count -= 1;
        }
        self.released = released;
        self.released.clear();
    }

    /// Whether held frames were decided and wait for [`Pipeline::drain_released`].
    pub fn has_released(&self) -> bool {
        !self.released.is_empty()
    }

    /// Number of frames currently held.
    pub fn held(&self) -> usize {
        self.held_count
    }

    /// Periodic housekeeping (per burst): expire conntrack entries with a bounded budget.
    pub fn housekeeping(&mut self, now_ns: u64) {
        self.ct.expire(now_ns, 64);
    }
}

/// Port security of the sending port (step 2). `Ok` = continue.
/// Parse every frame of a burst: `metas[i]` = (whether `frames[i]` parsed, its metadata),
/// for [`Pipeline::process_parsed_burst`]. Extra entries on either side are left alone.
pub fn parse_burst(frames: &[&[u8]], metas: &mut [(bool, PacketMeta)]) {
    for (f, slot) in frames.iter().zip(metas.iter_mut()) {
        slot.0 = flow::extract_into(f, &mut slot.1).is_ok();
    }
}

fn port_security(dp: &Dataplane, p: &PortEntry, m: &PacketMeta) -> Result<(), DropReason> {
    if !p.owns_mac(&m.eth_src) {
        return Err(DropReason::SpoofedMac);
    }
    match m.l3 {
        L3Kind::Arp => {
            if m.ethertype == flow::ethertype::RARP {
                return Ok(());
            }
            let a = &m.arp;
            if a.sha != m.eth_src || !(a.op == 1 || a.op == 2) {
                return Err(DropReason::ArpDenied);
            }
            if !p.pair_allows(&m.eth_src, FAMILY_V4, &FlowKey::map_v4(a.spa)) {
                return Err(DropReason::ArpDenied);
            }
            Ok(())
        }
        L3Kind::Other => {
            if dp.permitted_ethertypes.contains(&m.ethertype) {
                Ok(())
            } else {
                Err(DropReason::EthertypeDenied)
            }
        }
        L3Kind::Ipv4 | L3Kind::Ipv6 => {
            let k = &m.key;
            let first = !m.frag.is_later_fragment();
            if !p.pair_allows(&m.eth_src, k.family, &k.src) {
                let dhcp_discover = k.family == FAMILY_V4
                    && v4_zero(k)
                    && first
                    && k.proto == proto::UDP
                    && k.sport == 68
                    && k.dport == 67;
                let dad = k.family == FAMILY_V6
                    && k.src == [0u8; 16]
                    && first
                    && k.proto == proto::ICMPV6
                    && matches!(k.icmp_type(), 135 | 131 | 143)
                    && k.dst[0] == 0xff
                    && k.dst[1] == 0x02;
                if !(dhcp_discover || dad) {
                    return Err(DropReason::SpoofedIp);
                }
            }
            if first
                && k.proto == proto::UDP
                && ((k.family == FAMILY_V4 && k.sport == 67 && k.dport == 68)
                    || (k.family == FAMILY_V6 && k.sport == 547 && k.dport == 546))
            {
                return Err(DropReason::DhcpServer);
            }
            if first && k.family == FAMILY_V6 && k.proto == proto::ICMPV6 {
                match k.icmp_type() {
                    134 => return Err(DropReason::RouterAdvertisement),
                    136 if (!m.has_nd_target || !p.owns_ip(FAMILY_V6, &m.nd_target)) => {
                        return Err(DropReason::SpoofedIp);
                    }
                    _ => {}
                }
            }
            Ok(())
        }
    }
}

/// Egress traffic that passes without security groups (after anti-spoofing).
#[inline]
fn always_allowed_egress(m: &PacketMeta) -> bool {
    let k = &m.key;
    if m.frag.is_later_fragment() {
        return false;
    }
    match (k.family, k.proto) {
        (FAMILY_V4, proto::UDP) => k.sport == 68 && k.dport == 67,
        (FAMILY_V6, proto::UDP) => k.sport == 546 && k.dport == 547,
        (FAMILY_V6, proto::ICMPV6) => {
            matches!(k.icmp_type(), 130 | 131 | 132 | 133 | 135 | 136 | 143)
        }
        _ => false,
    }
}

/// Ingress traffic that passes without security groups.
#[inline]
fn always_allowed_ingress(m: &PacketMeta) -> bool {
    let k = &m.key;
    if m.frag.is_later_fragment() {
        return false;
    }
    match (k.family, k.proto) {
        (FAMILY_V4, proto::UDP) => k.sport == 67 && k.dport == 68,
        (FAMILY_V6, proto::UDP) => k.sport == 547 && k.dport == 546,
        (FAMILY_V6, proto::ICMPV6) => {
            matches!(k.icmp_type(), 130 | 131 | 132 | 133 | 134 | 135 | 136 | 143)
        }
        _ => false,
    }
}

/// A shareable handle to a compiled dataplane.
pub type SharedDataplane = Arc<Dataplane>;
