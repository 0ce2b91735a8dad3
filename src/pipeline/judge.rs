//! Steps 2-5 of one frame: port security, egress security groups, L2, ingress security
//! groups, with conntrack.
//!
//! Owns: the steps after parsing — port security's call, the fragment branch, egress,
//! the L2 decision, ingress and delivery — and the conntrack checks between them (track,
//! re-judge a connection of an older epoch, admit). May not touch: parsing (`flow`), what
//! port security checks (`security`), how fragments are kept (`fragments`), or any port
//! backend: it only writes destination port indices and drop reasons into a [`Verdict`].
//! Uses what `super` imports (`flow`, `classifier`, `conntrack`, `l2`, `policy` types),
//! and `tracing` for the warning about refused connections ([`CtRefusals`]).

use super::*;

/// One frame on its way: the policy it is judged by, the time, where it came from and
/// what it is. Built once per frame and passed by value (it is four words) to every step,
/// instead of the same arguments to each.
#[derive(Clone, Copy)]
pub(super) struct Frame<'a> {
    pub(super) dp: &'a Dataplane,
    pub(super) now_ns: u64,
    pub(super) in_port: u16,
    /// The sending port's entry (`dp.ports[in_port]`).
    pub(super) p: &'a PortEntry,
    pub(super) meta: &'a PacketMeta,
}

/// One security-group check: the port whose groups apply, its conntrack zone, and the
/// direction.
#[derive(Clone, Copy)]
pub(super) struct Check {
    pub(super) idx: usize,
    pub(super) zone: u16,
    pub(super) dir: Direction,
}

impl Pipeline {
    /// Steps 2-6 for a frame parsed into `meta` (`None`: it did not parse), received on
    /// `in_port` at `now_ns`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn process_parsed(
        &mut self,
        dp: &Dataplane,
        now_ns: u64,
        in_port: u16,
        frame: &[u8],
        meta: Option<&PacketMeta>,
        probe: Option<&Probe>,
        token: u64,
        out: &mut Verdict,
    ) -> Disposition {
        let Some(p) = dp.ports.get(in_port as usize) else {
            if self.tracing() {
                self.trace_step(Step::UnknownPort);
            }
            out.dropped.push((in_port, DropReason::UnknownPort));
            return Disposition::Decided;
        };
        let Some(meta) = meta else {
            if self.tracing() {
                self.trace_step(Step::Malformed);
            }
            out.dropped.push((in_port, DropReason::Malformed));
            return Disposition::Decided;
        };
        if p.port_security {
            let result = port_security(dp, p, meta);
            if self.tracing() {
                self.trace_step(Step::PortSecurity {
                    port: in_port,
                    result,
                });
            }
            if let Err(r) = result {
                out.dropped.push((in_port, r));
                return Disposition::Decided;
            }
        }
        let f = Frame {
            dp,
            now_ns,
            in_port,
            p,
            meta,
        };
        // Fragments (`fragments`): placed in their datagram, then later fragments share
        // the first fragment's verdict.
        if meta.is_ip() && meta.frag.is_fragment {
            return self.fragment(f, frame, probe, token, out);
        }
        self.judge(f, probe, out);
        Disposition::Decided
    }

    /// Steps 3-5 for a parsed frame that passed P's port security.
    pub(super) fn judge(&mut self, f: Frame<'_>, probe: Option<&Probe>, out: &mut Verdict) {
        if let Some(dest) = self.egress_and_l2(f, probe, out) {
            self.ingress(f, dest, out);
        }
    }

    /// Steps 3-4: egress security groups of P, then the L2 decision. `None` when the frame
    /// is already decided (dropped at P). `probe` is this frame's conntrack probe in P's
    /// zone, made ahead by a burst only when P's egress check consults conntrack (port
    /// security, IP, not always allowed, stateful P): then the lookup is done right here.
    pub(super) fn egress_and_l2(
        &mut self,
        f: Frame<'_>,
        probe: Option<&Probe>,
        out: &mut Verdict,
    ) -> Option<L2Dest> {
        let Frame {
            dp,
            now_ns,
            in_port,
            p,
            meta,
        } = f;
        // 3. egress security groups of P.
        let egress = Check {
            idx: in_port as usize,
            zone: p.zone,
            dir: EGRESS,
        };
        let check = match probe {
            Some(pr) => {
                debug_assert!(p.port_security && meta.is_ip() && !always_allowed_egress(meta));
                debug_assert!(dp.policy.is_stateful(in_port as usize));
                Some(self.ct_check(f, egress, pr))
            }
            None if p.port_security && meta.is_ip() && !always_allowed_egress(meta) => {
                Some(self.sg_check(f, egress, None))
            }
            None => None,
        };
        if check.is_none() && self.tracing() {
            self.trace_step(if p.port_security {
                Step::AlwaysAllowed {
                    port: in_port,
                    dir: EGRESS,
                }
            } else {
                Step::NoPortSecurity {
                    port: in_port,
                    dir: EGRESS,
                }
            });
        }
        if let Some(Err(r)) = check {
            out.dropped.push((in_port, r));
            return None;
        }
        // 4. L2 (no learning behind a tunnel port: remote MACs come from the model).
        if !p.port_security
            && p.tunnel.is_none()
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
        // The ARP responder (`arp_responder`): a request for a remote port's address is
        // answered here; the tunnel ports are then left out of its destinations.
        out.reply = dp.arp.answer(p, meta);
        let dest = match l2::forward(
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
        };
        if self.tracing() {
            let step = match dest {
                Some(L2Dest::Port(q)) => L2Step::Port(q),
                Some(L2Dest::Flood) => L2Step::Flood(
                    dp.fdb
                        .members(p.network)
                        .iter()
                        .copied()
                        .filter(|q| *q != in_port)
                        .filter(|q| out.reply.is_none() || !dp.is_tunnel(*q))
                        .collect(),
                ),
                None if out
                    .dropped
                    .last()
                    .is_some_and(|d| d.1 == DropReason::Hairpin) =>
                {
                    L2Step::Hairpin
                }
                None => L2Step::NoDestination,
            };
            self.trace_step(Step::L2 { dest: step });
            if let Some(r) = out.reply {
                self.trace_step(Step::ArpReply { reply: r });
            }
        }
        dest
    }

    /// Step 5 for every destination. Split horizon: a frame that came from a tunnel port
    /// never goes to a tunnel port (the sending host replicated it to every host itself).
    /// An ARP request the responder answered (`out.reply`) goes to no tunnel port either.
    pub(super) fn ingress(&mut self, f: Frame<'_>, dest: L2Dest, out: &mut Verdict) {
        let from_tunnel = f.p.tunnel.is_some();
        let no_tunnels = from_tunnel || out.reply.is_some();
        let is_tunnel = |q: u16| f.dp.is_tunnel(q);
        match dest {
            L2Dest::Port(q) if from_tunnel && is_tunnel(q) => {
                out.dropped.push((f.in_port, DropReason::NoDestination));
            }
            L2Dest::Port(q) if no_tunnels && is_tunnel(q) => {}
            L2Dest::Port(q) => self.deliver(f, q, out),
            L2Dest::Flood => {
                for &q in f.dp.fdb.members(f.p.network) {
                    if q != f.in_port && !(no_tunnels && is_tunnel(q)) {
                        self.deliver(f, q, out);
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
            || qp.remote
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
    pub(super) fn deliver(&mut self, f: Frame<'_>, q: u16, out: &mut Verdict) {
        let (dp, meta) = (f.dp, f.meta);
        let Some(qp) = dp.ports.get(q as usize) else {
            return;
        };
        if qp.remote {
            // A remote port whose host has no tunnel (its MACs lead to itself).
            out.dropped.push((q, DropReason::TunnelUnreachable));
            return;
        }
        if !qp.port_security {
            if self.tracing() {
                self.trace_step(Step::NoPortSecurity {
                    port: q,
                    dir: INGRESS,
                });
            }
            out.delivered.push(q);
            return;
        }
        if !meta.is_multicast_dst() && !qp.owns_mac(&meta.eth_dst) {
            if self.tracing() {
                self.trace_step(Step::Refused {
                    port: q,
                    reason: DropReason::DstMacMismatch,
                });
            }
            out.dropped.push((q, DropReason::DstMacMismatch));
            return;
        }
        if !meta.is_ip() || always_allowed_ingress(meta) {
            // ARP (and permitted non-IP) is never subject to security groups.
            if self.tracing() {
                self.trace_step(Step::AlwaysAllowed {
                    port: q,
                    dir: INGRESS,
                });
            }
            out.delivered.push(q);
            return;
        }
        let ingress = Check {
            idx: q as usize,
            zone: qp.zone,
            dir: INGRESS,
        };
        match self.sg_check(f, ingress, None) {
            Ok(()) => out.delivered.push(q),
            Err(r) => out.dropped.push((q, r)),
        }
    }

    /// The security groups of check `c` for frame `f`, stateful through `c.zone`.
    /// `probe`, when given, is this packet's conntrack probe for `c.zone`, computed (and
    /// prefetched) ahead.
    pub(super) fn sg_check(
        &mut self,
        f: Frame<'_>,
        c: Check,
        probe: Option<&Probe>,
    ) -> Result<(), DropReason> {
        let (dp, idx) = (f.dp, c.idx);
        if !dp.policy.is_stateful(idx) {
            return self.stateless(f, c);
        }
        // The conntrack lookup is inlined in each arm, so that its outcome is matched
        // where it is built (no `Track` through memory, no call), and the arm with a
        // probe made ahead (bursts) does not carry the other one's.
        match probe {
            Some(p) => self.ct_check(f, c, p),
            None => {
                let p = self.ct.probe(c.zone, f.meta);
                self.ct_check(f, c, &p)
            }
        }
    }

    /// The stateful part of [`Pipeline::sg_check`]: track the packet through its probe
    /// for `zone`; a connection judged under the current epoch is decided here, the rare
    /// cases (stale epoch, new connection) in out-of-line helpers.
    #[inline(always)]
    pub(super) fn ct_check(
        &mut self,
        f: Frame<'_>,
        c: Check,
        probe: &Probe,
    ) -> Result<(), DropReason> {
        let dp = f.dp;
        let r = match self.ct.track_probe_inline(probe, f.now_ns) {
            Track::Tracked {
                handle,
                epoch,
                cut,
                tag,
                ..
            } => {
                if epoch != dp.epoch {
                    // `rejudge` records its own trace step.
                    return self.rejudge(f, c, handle, tag);
                } else if cut {
                    Err(DropReason::ConnectionCut)
                } else if self.new_flows != u32::MAX && c.idx == f.in_port as usize {
                    // A bounded burst: a SYN on an entry (a retry, or a closed connection
                    // reopened) starts a connection as much as one without.
                    self.budget_known(f.meta)
                } else {
                    Ok(())
                }
            }
            Track::Related { .. } => Ok(()),
            Track::Invalid => Err(DropReason::InvalidState),
            // `admit` records its own trace step.
            Track::New => return self.admit(f, c, probe),
        };
        if self.tracing() {
            self.trace_known(f, c, r);
        }
        r
    }

    /// The trace step of a packet of a connection conntrack knew (judged under the
    /// current epoch), or found invalid. Found again after the fact (a read-only lookup),
    /// so that the switching path keeps nothing for the trace but one test.
    #[cold]
    #[inline(never)]
    fn trace_known(&mut self, f: Frame<'_>, c: Check, r: Result<(), DropReason>) {
        let k = &f.meta.key;
        let ct = match (r, self.ct.lookup(c.zone, f.meta)) {
            (Err(DropReason::InvalidState), _) | (_, None) => CtStep::Invalid,
            (_, Some((e, true))) => CtStep::Related { entry: e },
            (_, Some((e, false))) => CtStep::Established {
                entry: e,
                reply: (k.src, k.sport) != (e.orig.src, e.orig.sport),
            },
        };
        self.trace_step(Step::SecurityGroups {
            port: c.idx as u16,
            dir: c.dir,
            zone: c.zone,
            ct,
            result: r.map(|()| None),
            committed: None,
        });
    }

    /// The rules of `c` for a port whose groups are stateless: every packet is judged.
    fn stateless(&mut self, f: Frame<'_>, c: Check) -> Result<(), DropReason> {
        let dp = f.dp;
        let judged = self.judge_rules(f, c);
        if let Ok(Some(rule)) = judged {
            if self.obs.rule_hits_on {
                if let Some(slot) = dp.rule_slot(rule) {
                    self.obs.hit(slot);
                }
            }
        }
        if self.tracing() {
            self.trace_step(Step::SecurityGroups {
                port: c.idx as u16,
                dir: c.dir,
                zone: c.zone,
                ct: CtStep::Stateless,
                result: judged,
                committed: None,
            });
        }
        judged.map(|_| ())
    }

    /// The rules of `c` for frame `f`: `Ok(Some(rule))` with the first admitting rule
    /// when it is wanted (rule counters, packet log or trace), `Ok(None)` when only the
    /// answer is, `Err` when no rule allows it.
    #[inline]
    fn judge_rules(&self, f: Frame<'_>, c: Check) -> Result<Option<RuleRef>, DropReason> {
        let dp = f.dp;
        let key = &f.meta.key;
        if self.obs.rule_hits_on || dp.log_any || self.tracing() {
            match dp.policy.admitting_rule(c.idx, c.dir, key) {
                Some(r) => Ok(Some(r)),
                None => Err(denied(c.dir)),
            }
        } else if dp.policy.allows(c.idx, c.dir, key) {
            Ok(None)
        } else {
            Err(denied(c.dir))
        }
    }

    /// A tracked connection last judged under an older epoch: re-judge its original
    /// direction against the current rules, record the outcome (cut or not).
    #[cold]
    #[inline(never)]
    pub(super) fn rejudge(
        &mut self,
        f: Frame<'_>,
        c: Check,
        handle: Handle,
        tag: u8,
    ) -> Result<(), DropReason> {
        let (dp, idx) = (f.dp, c.idx);
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
        if self.tracing() {
            if let Some(e) = self.ct.get(handle) {
                self.trace_step(Step::SecurityGroups {
                    port: c.idx as u16,
                    dir: c.dir,
                    zone: c.zone,
                    ct: CtStep::Rejudged { entry: e, cut: !ok },
                    result: if ok {
                        Ok(None)
                    } else {
                        Err(DropReason::ConnectionCut)
                    },
                    committed: None,
                });
            }
        }
        if ok {
            Ok(())
        } else {
            Err(DropReason::ConnectionCut)
        }
    }

    /// Spend one of the burst's new connections (`set_new_flow_budget`), or shed.
    #[inline]
    fn spend_new_flow(&mut self) -> Result<(), DropReason> {
        match self.new_flows {
            0 => Err(DropReason::NewFlowOverload),
            u32::MAX => Ok(()),
            _ => {
                self.new_flows -= 1;
                Ok(())
            }
        }
    }

    /// A packet of a known connection in a burst with a budget of new connections: a TCP
    /// SYN (without ACK) spends one like a new connection; anything else passes.
    #[cold]
    #[inline(never)]
    fn budget_known(&mut self, m: &PacketMeta) -> Result<(), DropReason> {
        use flow::tcp_flags::{ACK, SYN};
        if m.key.proto == proto::TCP && m.tcp_flags & (SYN | ACK) == SYN {
            self.spend_new_flow()
        } else {
            Ok(())
        }
    }

    /// Conntrack refused the entry of a connection the rules allow: the drop reason, and
    /// the count for the rate-limited warning.
    #[cold]
    #[inline(never)]
    fn refused(&mut self, f: Frame<'_>, c: Check, e: CommitError) -> DropReason {
        let reason = match e {
            CommitError::Full => DropReason::ConntrackFull,
            CommitError::ZoneFull => DropReason::ConntrackZoneFull,
            // `track` said the packet may start a connection: not reached.
            CommitError::Invalid => return DropReason::InvalidState,
        };
        let port = f.dp.ports.get(c.idx).map_or("?", |p| p.name.as_str());
        self.ct_refusals.note(reason, port, f.now_ns, &self.ct);
        reason
    }

    /// The first packet of a connection (`probe` has just been tracked as
    /// [`Track::New`]): judge it, and commit an entry when allowed.
    #[inline(never)]
    pub(super) fn admit(
        &mut self,
        f: Frame<'_>,
        c: Check,
        probe: &Probe,
    ) -> Result<(), DropReason> {
        let dp = f.dp;
        let mut judged = self.judge_rules(f, c);
        // The sending port's own check of an allowed new connection spends its budget
        // (`set_new_flow_budget`); out of budget, it is shed before anything is committed
        // or delivered.
        if judged.is_ok() && c.idx == f.in_port as usize {
            if let Err(r) = self.spend_new_flow() {
                judged = Err(r);
            }
        }
        let committed = match judged {
            Ok(_) => self
                .ct
                .commit_probe(probe, dp.epoch, dir_tag(c.dir), f.now_ns)
                .map_err(|e| self.refused(f, c, e)),
            Err(r) => Err(r),
        };
        if let (Ok(Some(rule)), Ok(_)) = (judged, committed) {
            if self.obs.rule_hits_on {
                if let Some(slot) = dp.rule_slot(rule) {
                    self.obs.hit(slot);
                }
            }
            if dp.log_any
                && dp.logs.get(c.idx).is_some_and(|l| l.accepts(rule.group))
                && self.obs.may_record(f.now_ns)
            {
                self.obs.record(LogRecord {
                    time_ns: f.now_ns,
                    epoch: dp.epoch,
                    port: c.idx as u16,
                    dir: c.dir,
                    verdict: LogVerdict::Accept,
                    rule: Some(rule),
                    key: f.meta.key,
                });
            }
        }
        if self.tracing() {
            let entry = committed.ok().and_then(|h| self.ct.get(h));
            self.trace_step(Step::SecurityGroups {
                port: c.idx as u16,
                dir: c.dir,
                zone: c.zone,
                ct: CtStep::New,
                result: committed.and(judged),
                committed: entry,
            });
        }
        committed.map(|_| ())
    }
}

/// New connections conntrack refused (a full table, a port at its `per_port_limit`),
/// reported as a `tracing` warning at most once per [`CtRefusals::INTERVAL_NS`] per
/// pipeline (one per worker), with the counts since the last report: never one event per
/// packet. Refusals held back are reported by the next refusal after the interval, or by
/// [`Pipeline::housekeeping`] once the interval has passed.
#[derive(Clone, Debug, Default)]
pub(super) struct CtRefusals {
    /// When the last report was made (the pipeline's clock), if ever.
    last_ns: Option<u64>,
    /// Refusals not reported yet: table full, port at its limit.
    full: u64,
    zone_full: u64,
    /// The port of the last refusal at its limit.
    port: String,
}

impl CtRefusals {
    /// At most one report per second.
    pub(super) const INTERVAL_NS: u64 = 1_000_000_000;

    /// Count one refusal; report if the interval has passed.
    pub(super) fn note(&mut self, reason: DropReason, port: &str, now_ns: u64, ct: &Conntrack) {
        if reason == DropReason::ConntrackZoneFull {
            self.zone_full += 1;
            if self.port != port {
                port.clone_into(&mut self.port);
            }
        } else {
            self.full += 1;
        }
        self.report(now_ns, ct);
    }

    /// Whether refusals wait to be reported.
    #[inline(always)]
    pub(super) fn pending(&self) -> bool {
        self.full + self.zone_full != 0
    }

    /// Report the refusals counted so far if the interval since the last report has
    /// passed (or there was none).
    pub(super) fn report(&mut self, now_ns: u64, ct: &Conntrack) {
        if !self.pending()
            || self
                .last_ns
                .is_some_and(|t| now_ns.saturating_sub(t) < Self::INTERVAL_NS)
        {
            return;
        }
        self.last_ns = Some(now_ns);
        let (full, zone_full) = (
            std::mem::take(&mut self.full),
            std::mem::take(&mut self.zone_full),
        );
        let thread = std::thread::current();
        let worker = thread.name().unwrap_or("-");
        let (entries, capacity) = (ct.len(), ct.capacity());
        let limit = ct.zone_limit().unwrap_or(0);
        if full > 0 {
            tracing::warn!(
                worker,
                refused = full,
                entries,
                capacity,
                "conntrack table full: {full} new connections refused since the last report \
                 ({entries} of {capacity} entries, all assured)"
            );
        }
        if zone_full > 0 {
            let port = self.port.as_str();
            tracing::warn!(
                worker,
                refused = zone_full,
                port,
                limit,
                "conntrack per-port limit: {zone_full} new connections refused since the last \
                 report (last at port {port}: {limit} entries, all assured)"
            );
        }
    }
}
