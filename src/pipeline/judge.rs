//! Steps 2-5 of one frame: port security, egress security groups, L2, ingress security
//! groups, with conntrack.

use super::*;

impl Pipeline {
    /// Steps 2-6 for a frame parsed into `meta` (`None`: it did not parse).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn process_parsed(
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
            let fk = FragKey::of(p.zone, meta);
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
    pub(super) fn judge(
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
    pub(super) fn egress_and_l2(
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
    pub(super) fn ingress(
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
    pub(super) fn ingress_zone(&self, dp: &Dataplane, q: u16, meta: &PacketMeta) -> Option<u16> {
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
    pub(super) fn deliver(
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
    pub(super) fn sg_check(
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
    pub(super) fn ct_check(
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
    pub(super) fn rejudge(
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
    pub(super) fn admit(
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
}
