//! The overlay's underlay in the live switch (issue #19, docs/overlay.md step 4): the
//! glue between the dataplane's tunnel ports and the one [`UnderlayGroup`]
//! ([`crate::port::underlay`]) that one worker drives.
//!
//! * [`sync`]: when a worker takes a new dataplane, the underlay group's members become
//!   member 0 (the underlay itself, its own zone `underlay:IFNAME`) and one member per
//!   tunnel port (its zone and name), so the worker's routes send a frame delivered to a
//!   tunnel port to that member, and its receive loop reads decapsulated frames from it
//!   like any port's.
//! * [`own_tunnels`]: the tunnel ports' zones belong to the underlay's worker (the other
//!   workers hand frames for them over, as to any port that worker drives).
//! * [`police`]: a frame delivered to a tunnel port that is larger than the path's inner
//!   frame is taken back and counted `tunnel-too-big` at the port that sent it (before
//!   the worker copies it anywhere); frames with offload metadata (superframes, which are
//!   segmented on the way) are left to the group, which counts a segment still too large
//!   as `tx_dropped` at the tunnel's member.
//!
//! Owns: nothing but these three functions. May not touch: the pipeline's decisions
//! (it only takes a delivery back through [`Pipeline::refuse_delivery`]), ports other than
//! the underlay group.

use std::collections::HashMap;

use crate::flow::DropReason;
use crate::pipeline::{Dataplane, Disposition, Pipeline, Verdict};
use crate::port::underlay::TunnelDest;
use crate::port::PortGroup;

/// The tunnels of `dp` as the underlay sees them.
fn dests(dp: &Dataplane) -> Vec<TunnelDest> {
    dp.tunnels
        .iter()
        .map(|t| TunnelDest {
            encap: t.encap,
            vni: t.vni,
            vtep: t.vtep,
            mac: t.mac,
        })
        .collect()
}

/// If `ports` is the underlay group, give it `dp`'s tunnels and make its members' zones
/// and names follow (member 0, the underlay, keeps its own).
pub(super) fn sync(
    ports: &mut dyn PortGroup,
    zones: &mut Vec<u16>,
    names: &mut Vec<String>,
    dp: &Dataplane,
) {
    if !ports.set_tunnels(&dests(dp)) {
        return;
    }
    zones.truncate(1);
    names.truncate(1);
    for t in dp.tunnels.iter() {
        if let Some(p) = dp.ports.get(t.port as usize) {
            zones.push(p.zone);
            names.push(p.name.clone());
        }
    }
}

/// Record worker `w` (the underlay's) as the owner of `dp`'s tunnel ports.
pub(super) fn own_tunnels(owners: &mut HashMap<u16, usize>, dp: &Dataplane, w: usize) {
    for t in dp.tunnels.iter() {
        if let Some(p) = dp.ports.get(t.port as usize) {
            owners.insert(p.zone, w);
        }
    }
}

/// Take back every delivery to a tunnel port of a frame longer than `max` (the path's
/// largest inner frame) among the decided frames of a burst from `in_port`, counting
/// `tunnel-too-big` at `in_port`. `offloaded(i)`: frame `i` carries offload metadata (it
/// is segmented on the way: left alone).
#[allow(clippy::too_many_arguments)]
pub(super) fn police(
    pipeline: &mut Pipeline,
    dp: &Dataplane,
    in_port: u16,
    frames: &[&[u8]],
    verdicts: &mut [Verdict],
    disp: &[Disposition],
    max: usize,
    offloaded: impl Fn(usize) -> bool,
) {
    for (i, frame) in frames.iter().enumerate() {
        if frame.len() <= max || disp[i] != Disposition::Decided || offloaded(i) {
            continue;
        }
        let v = &mut verdicts[i];
        let mut j = 0;
        while j < v.delivered.len() {
            let q = v.delivered[j];
            if dp.ports.get(q as usize).is_some_and(|p| p.tunnel.is_some()) {
                let reason = DropReason::TunnelTooBig;
                pipeline.refuse_delivery(dp, in_port, v, q, frame.len(), reason);
            } else {
                j += 1;
            }
        }
    }
}
