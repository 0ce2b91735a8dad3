//! `classify_burst`: a burst of keys classified in phases, the same answers as `allows`
//! on each key.
//!
//! **Not the shipped path.** The pipeline classifies only the first packet of a
//! connection (and every packet of a stateless port), one key at a time, with
//! [`CompiledPolicy::allows`] (`Pipeline::sg_check`, `Pipeline::admit`); its bursts have no
//! batch of keys to classify. `classify_burst` is built for the tests (compared with
//! `allows` and the linear oracle) and with the `bench` feature (`sgswitch bench classify`
//! and the `classify::not_shipped::*` benches).
//!
//! Owns: the phased burst lookup. May not touch: the structures (read only, through
//! `super`'s and `addr`'s lookup steps).

use std::sync::Arc;

use super::addr::Addr;
use super::{Bucket, CompiledPolicy, DirTable, GroupMembers, PortSlot};
use crate::flow::{FlowKey, FAMILY_V4, FAMILY_V6};
use crate::policy::Direction;

impl CompiledPolicy {
    /// Classify a burst (not the shipped path: see the module doc) in phases: (1) per key pick the bucket and the skip-table window and
    /// prefetch the first probe, (2) binary-search all addresses, (3) test all `dport`s.
    /// Works on chunks of [`BURST_CHUNK`] keys with an explicit tail; writes
    /// `out[i]` for `i < min(keys.len(), out.len())`. No allocation.
    pub fn classify_burst(&self, port: usize, dir: Direction, keys: &[FlowKey], out: &mut [bool]) {
        let n = keys.len().min(out.len());
        let (keys, out) = (&keys[..n], &mut out[..n]);
        if self.delta_touches_port(port) {
            for (k, o) in keys.iter().zip(out.iter_mut()) {
                *o = self.allows(port, dir, k);
            }
            return;
        }
        let set = match self.ports.get(port) {
            Some(PortSlot::Rules(s)) => s,
            Some(PortSlot::AllowAll) => {
                out.fill(true);
                return;
            }
            Some(PortSlot::DenyAll) | None => {
                out.fill(false);
                return;
            }
        };
        let table = set.dir(dir);
        let ingress = dir == Direction::Ingress;
        for (kc, oc) in keys.chunks(BURST_CHUNK).zip(out.chunks_mut(BURST_CHUNK)) {
            classify_chunk(table, &self.members, ingress, kc, oc);
        }
    }
}

/// Keys classified per phase group in [`CompiledPolicy::classify_burst`].
pub const BURST_CHUNK: usize = 32;

/// One key's search state between the phases of a chunk.
#[derive(Clone, Copy)]
enum Probe<'a> {
    Deny,
    V4(&'a Bucket<u32>, u32),
    V6(&'a Bucket<u128>, u128),
}

const _: () = assert!(std::mem::size_of::<Probe<'static>>() <= 32);

#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it never faults, even on an invalid address, and the
    // pointer here is derived from a live slice anyway. SSE is baseline on x86_64.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Finish one probe: the binary search (fixed rounds, in registers), the linear count and
/// the port check; the bucket's group terms if the decomposition denies.
#[inline(always)]
fn finish<A: Addr>(
    b: &Bucket<A>,
    m: &[Arc<GroupMembers>],
    a: A,
    (mut pos, mut len): (usize, usize),
    dport: u16,
) -> bool {
    for _ in 0..b.addr.rounds {
        b.addr.step(a, &mut pos, &mut len);
    }
    b.classes
        .allows(b.addr.class_at(b.addr.finish(a, pos)), dport)
        || b.terms_allow(a, dport, m)
}

/// Phase 1: per key, the bucket, the skip-table window, and a prefetch of the first probe
/// (the skip table is small and hot; the interval starts are the likely misses).
/// Phase 2: per key, the branch-free search and the port check. Each key's search is a
/// short dependent chain with a loop count fixed per bucket, so the core overlaps the
/// chains of consecutive keys; a lockstep variant (one step of every key per round) was
/// measured slower: its state lives in memory instead of registers.
#[inline(always)]
fn classify_chunk(
    t: &DirTable,
    m: &[Arc<GroupMembers>],
    ingress: bool,
    keys: &[FlowKey],
    out: &mut [bool],
) {
    let mut probes = [(Probe::Deny, 0usize, 1usize); BURST_CHUNK];
    for (k, pr) in keys.iter().zip(probes.iter_mut()) {
        let remote = if ingress { &k.src } else { &k.dst };
        match k.family {
            FAMILY_V4 => {
                if let Some(b) = t.v4.bucket(k.proto) {
                    let a = u32::from_key(remote);
                    let (p, l) = b.addr.window(a);
                    prefetch(b.addr.starts.as_ptr().wrapping_add(p + l / 2));
                    *pr = (Probe::V4(b, a), p, l);
                }
            }
            FAMILY_V6 => {
                if let Some(b) = t.v6.bucket(k.proto) {
                    let a = u128::from_key(remote);
                    let (p, l) = b.addr.window(a);
                    prefetch(b.addr.starts.as_ptr().wrapping_add(p + l / 2));
                    *pr = (Probe::V6(b, a), p, l);
                }
            }
            _ => {}
        }
    }
    for (((pr, p, l), k), o) in probes.iter().zip(keys).zip(out.iter_mut()) {
        *o = match *pr {
            Probe::V4(b, a) => finish(b, m, a, (*p, *l), k.dport),
            Probe::V6(b, a) => finish(b, m, a, (*p, *l), k.dport),
            Probe::Deny => false,
        };
    }
}
