//! The compiled classifier against the linear oracle on random policies and packets.
//!
//! Policies: nested and overlapping v4/v6 prefixes around a few anchors, port ranges with
//! the 1 / 65535 boundaries, ICMP type/code, protocol any and odd protocol numbers, remote
//! groups whose members have fixed IPs and allowed-address-pair CIDRs, address groups,
//! several (and empty) groups per port, ports without group or port security.
//! Packets: most are placed on a rule's boundaries (first/last address of a remote range
//! and its neighbours, port range ends and their neighbours, exact ICMP type/code), the
//! rest random. Every key is checked with `allows` and through `classify_burst` for every
//! burst length 1..=64, and with `admitting_rule` (the first matching rule in model order),
//! also on the same model with every group's rules reversed, which tells the keys that
//! match several rules (where "first" decides) from the others.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use sgswitch::bench::classbench::SplitMix64;
use sgswitch::classifier::{Classifier, CompiledPolicy, LinearPolicy};
use sgswitch::flow::{proto, FlowKey, FAMILY_V4, FAMILY_V6};
use sgswitch::pipeline::{Dataplane, IdMap};
use sgswitch::policy::{
    AddressGroup, AllowedAddressPair, Direction, EtherType, Model, Network, Port, Remote, Rule,
    RuleRef, SecurityGroup,
};

struct Gen {
    rng: SplitMix64,
    v4_anchors: Vec<u32>,
    v6_anchors: Vec<u128>,
}

impl Gen {
    fn new(seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let v4_anchors = (0..4).map(|_| rng.next_u64() as u32).collect();
        let v6_anchors = (0..4)
            .map(|_| (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64()))
            .collect();
        Gen {
            rng,
            v4_anchors,
            v6_anchors,
        }
    }

    fn below(&mut self, n: u64) -> u64 {
        self.rng.below(n)
    }

    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len() as u64) as usize]
    }

    fn v4_addr(&mut self) -> u32 {
        let a = self.pick(&self.v4_anchors.clone());
        // Flip a few low bits so addresses cluster around the anchor.
        let bits = self.below(33) as u32;
        let noise = if bits == 0 {
            0
        } else {
            (self.rng.next_u64() as u32) >> (32 - bits)
        };
        a ^ noise
    }

    fn v6_addr(&mut self) -> u128 {
        let a = self.pick(&self.v6_anchors.clone());
        let bits = self.below(129) as u32;
        let noise = if bits == 0 {
            0
        } else {
            ((u128::from(self.rng.next_u64()) << 64) | u128::from(self.rng.next_u64()))
                >> (128 - bits)
        };
        a ^ noise
    }

    fn v4_net(&mut self) -> IpNet {
        let len = match self.below(10) {
            0 => 0,
            1 => 32,
            _ => self.below(33) as u8,
        };
        IpNet::V4(
            Ipv4Net::new(Ipv4Addr::from(self.v4_addr()), len)
                .unwrap()
                .trunc(),
        )
    }

    fn v6_net(&mut self) -> IpNet {
        let len = match self.below(10) {
            0 => 0,
            1 => 128,
            _ => self.below(129) as u8,
        };
        IpNet::V6(
            Ipv6Net::new(Ipv6Addr::from(self.v6_addr()), len)
                .unwrap()
                .trunc(),
        )
    }

    fn net(&mut self, v6: bool) -> IpNet {
        if v6 {
            self.v6_net()
        } else {
            self.v4_net()
        }
    }

    fn port_value(&mut self) -> u16 {
        match self.below(6) {
            0 => 1,
            1 => 65535,
            2 => 0,
            _ => self.pick(&[22, 80, 443, 1000, 1024, 8080, 65534, 2]),
        }
    }

    fn rule(&mut self, n_groups: usize, n_addr_groups: usize) -> Rule {
        let direction = if self.below(2) == 0 {
            Direction::Ingress
        } else {
            Direction::Egress
        };
        let v6 = self.below(2) == 0;
        let ethertype = if v6 { EtherType::IPv6 } else { EtherType::IPv4 };
        let icmp = if v6 { proto::ICMPV6 } else { proto::ICMP };
        let protocol = match self.below(20) {
            0..=3 => None,
            4..=8 => Some(proto::TCP),
            9..=11 => Some(proto::UDP),
            12..=14 => Some(icmp),
            15 => Some(self.pick(&[proto::SCTP, proto::DCCP, proto::UDPLITE])),
            16 => Some(self.pick(&[proto::GRE, proto::ESP, 0, 255])),
            // The other family's ICMP number: a plain protocol for this family.
            17 => Some(if v6 { proto::ICMP } else { proto::ICMPV6 }),
            _ => Some(self.below(256) as u8),
        };
        let (port_range_min, port_range_max) = match protocol {
            Some(p) if proto::has_ports(p) => match self.below(4) {
                0 => (None, None),
                1 => {
                    let v = self.port_value();
                    (Some(v), Some(v))
                }
                _ => {
                    let a = self.port_value();
                    let b = self.port_value();
                    (Some(a.min(b)), Some(a.max(b)))
                }
            },
            Some(p) if p == icmp => match self.below(3) {
                0 => (None, None),
                1 => (Some(self.pick(&[0, 3, 8, 128, 255])), None),
                _ => (
                    Some(self.pick(&[0, 3, 8, 128, 255])),
                    Some(self.pick(&[0, 1, 4, 255])),
                ),
            },
            _ => (None, None),
        };
        let remote = match self.below(10) {
            0..=1 => Remote::Any,
            2..=5 => Remote::Prefix(self.net(v6)),
            6..=8 if n_groups > 0 => Remote::Group(format!("g{}", self.below(n_groups as u64))),
            _ if n_addr_groups > 0 => {
                Remote::AddressGroup(format!("a{}", self.below(n_addr_groups as u64)))
            }
            _ => Remote::Any,
        };
        // Protocol 0 matches like "any" (a distinct rule in Neutron).
        let protocol_zero = protocol.is_none() && self.below(2) == 0;
        Rule {
            direction,
            ethertype,
            protocol,
            protocol_zero,
            port_range_min,
            port_range_max,
            remote,
            remote_ip_prefix_raw: None,
            description: String::new(),
        }
    }

    fn model(&mut self) -> Model {
        let n_groups = 1 + self.below(5) as usize;
        let n_addr_groups = self.below(3) as usize;
        let mut security_groups = Vec::new();
        for g in 0..n_groups {
            let n_rules = match self.below(5) {
                0 => 0,
                _ => self.below(14) as usize,
            };
            let rules = (0..n_rules)
                .map(|_| self.rule(n_groups, n_addr_groups))
                .collect();
            security_groups.push(SecurityGroup {
                name: format!("g{g}"),
                description: String::new(),
                stateful: self.below(4) != 0,
                rules,
            });
        }
        let address_groups = (0..n_addr_groups)
            .map(|a| {
                let n = self.below(5) as usize;
                AddressGroup {
                    name: format!("a{a}"),
                    description: String::new(),
                    addresses: (0..n)
                        .map(|_| {
                            let v6 = self.below(2) == 0;
                            self.net(v6)
                        })
                        .collect(),
                }
            })
            .collect();
        let n_ports = 2 + self.below(8) as usize;
        let ports = (0..n_ports)
            .map(|i| {
                let n_ips = self.below(4);
                let fixed_ips = (0..n_ips)
                    .map(|_| {
                        if self.below(2) == 0 {
                            IpAddr::V4(Ipv4Addr::from(self.v4_addr()))
                        } else {
                            IpAddr::V6(Ipv6Addr::from(self.v6_addr()))
                        }
                    })
                    .collect();
                let n_aap = self.below(3);
                let allowed_address_pairs = (0..n_aap)
                    .map(|_| {
                        let v6 = self.below(2) == 0;
                        AllowedAddressPair {
                            ip_address: self.net(v6),
                            mac_address: None,
                        }
                    })
                    .collect();
                let n_sg = self.below(4);
                let security_groups = (0..n_sg)
                    .map(|_| format!("g{}", self.below(n_groups as u64)))
                    .collect();
                Port {
                    name: format!("p{i}"),
                    network: "n".into(),
                    mac: sgswitch::wire::Mac([2, 0, 0, 0, 0, i as u8]),
                    fixed_ips,
                    security_groups,
                    port_security: self.below(10) != 0,
                    allowed_address_pairs,
                    backend: None,
                    host: None,
                }
            })
            .collect();
        Model {
            security_groups,
            address_groups,
            ports,
            networks: vec![Network {
                name: "n".into(),
                ..Default::default()
            }],
            ..Model::default()
        }
    }

    /// Candidate remote addresses near the boundaries of `net`.
    fn near(&mut self, net: &IpNet) -> IpAddr {
        match net {
            IpNet::V4(n) => {
                let lo = u32::from(n.network());
                let hi = u32::from(n.broadcast());
                let v = match self.below(5) {
                    0 => lo,
                    1 => hi,
                    2 => lo.wrapping_sub(1),
                    3 => hi.wrapping_add(1),
                    _ => lo + (self.rng.next_u64() as u32 & (hi - lo)),
                };
                IpAddr::V4(Ipv4Addr::from(v))
            }
            IpNet::V6(n) => {
                let lo = u128::from(n.network());
                let hi = u128::from(n.broadcast());
                let r = (u128::from(self.rng.next_u64()) << 64) | u128::from(self.rng.next_u64());
                let v = match self.below(5) {
                    0 => lo,
                    1 => hi,
                    2 => lo.wrapping_sub(1),
                    3 => hi.wrapping_add(1),
                    _ => lo + (r & (hi - lo)),
                };
                IpAddr::V6(Ipv6Addr::from(v))
            }
        }
    }

    fn key(&mut self, m: &Model, dir: Direction) -> FlowKey {
        let rules: Vec<&Rule> = m
            .security_groups
            .iter()
            .flat_map(|g| g.rules.iter())
            .collect();
        let v6;
        let mut remote: Option<IpAddr> = None;
        let mut p: u8;
        let mut dport: u16;
        if !rules.is_empty() && self.below(5) != 0 {
            let r = rules[self.below(rules.len() as u64) as usize];
            v6 = r.ethertype == EtherType::IPv6;
            p = r.protocol.unwrap_or_else(|| {
                self.pick(&[
                    proto::TCP,
                    proto::UDP,
                    proto::GRE,
                    proto::ICMP,
                    proto::ICMPV6,
                ])
            });
            if self.below(8) == 0 {
                p = self.below(256) as u8;
            }
            let (lo, hi) = (
                r.port_range_min.unwrap_or(0),
                r.port_range_max.unwrap_or(65535),
            );
            let is_icmp = (!v6 && p == proto::ICMP) || (v6 && p == proto::ICMPV6);
            dport = if is_icmp {
                let t = r.port_range_min.unwrap_or(self.below(256) as u16) as u8;
                let c = match self.below(3) {
                    0 => r.port_range_max.unwrap_or(0) as u8,
                    1 => r.port_range_max.unwrap_or(0).wrapping_add(1) as u8,
                    _ => self.below(256) as u8,
                };
                let t = if self.below(4) == 0 {
                    t.wrapping_add(1)
                } else {
                    t
                };
                (u16::from(t) << 8) | u16::from(c)
            } else {
                match self.below(6) {
                    0 => lo,
                    1 => hi,
                    2 => lo.wrapping_sub(1),
                    3 => hi.wrapping_add(1),
                    _ => self.below(65536) as u16,
                }
            };
            remote = match &r.remote {
                Remote::Prefix(n) => Some(self.near(n)),
                Remote::AddressGroup(a) => {
                    let nets = m
                        .address_group(a)
                        .map(|g| g.addresses.clone())
                        .unwrap_or_default();
                    if nets.is_empty() {
                        None
                    } else {
                        let n = nets[self.below(nets.len() as u64) as usize];
                        Some(self.near(&n))
                    }
                }
                Remote::Group(g) => {
                    let mut nets = Vec::new();
                    for port in m.ports.iter().filter(|p| p.security_groups.contains(g)) {
                        nets.extend(port.fixed_ips.iter().map(|ip| IpNet::from(*ip)));
                        nets.extend(port.allowed_address_pairs.iter().map(|a| a.ip_address));
                    }
                    if let Some(remote) = m.remote_members.get(g) {
                        nets.extend_from_slice(remote);
                    }
                    if nets.is_empty() {
                        None
                    } else {
                        let n = nets[self.below(nets.len() as u64) as usize];
                        Some(self.near(&n))
                    }
                }
                Remote::Any => None,
            };
            // A remote of the other family: keep the rule's family.
            if remote.is_some_and(|a| a.is_ipv6() != v6) {
                remote = None;
            }
        } else {
            v6 = self.below(2) == 0;
            p = self.pick(&[
                proto::TCP,
                proto::UDP,
                proto::ICMP,
                proto::ICMPV6,
                proto::SCTP,
                0,
                47,
            ]);
            dport = self.port_value();
            if self.below(2) == 0 {
                dport = self.below(65536) as u16;
            }
        }
        let remote = remote.unwrap_or_else(|| {
            if v6 {
                IpAddr::V6(Ipv6Addr::from(self.v6_addr()))
            } else {
                IpAddr::V4(Ipv4Addr::from(self.v4_addr()))
            }
        });
        let local = if v6 {
            IpAddr::V6(Ipv6Addr::from(self.v6_addr()))
        } else {
            IpAddr::V4(Ipv4Addr::from(self.v4_addr()))
        };
        let bytes = |a: IpAddr| match a {
            IpAddr::V4(a) => FlowKey::map_v4(a.octets()),
            IpAddr::V6(a) => a.octets(),
        };
        let (src, dst) = match dir {
            Direction::Ingress => (bytes(remote), bytes(local)),
            Direction::Egress => (bytes(local), bytes(remote)),
        };
        FlowKey {
            src,
            dst,
            sport: self.below(65536) as u16,
            dport,
            proto: p,
            family: if v6 { FAMILY_V6 } else { FAMILY_V4 },
            _pad: [0; 2],
        }
    }
}

/// `m` with every group's rules in reverse order, and the map of its `RuleRef`s back to `m`'s.
fn reversed(m: &Model) -> (Model, impl Fn(RuleRef) -> RuleRef + '_) {
    let mut r = m.clone();
    for g in r.security_groups.iter_mut() {
        g.rules.reverse();
    }
    let back = |x: RuleRef| RuleRef {
        group: x.group,
        rule: m.security_groups[x.group as usize].rules.len() as u32 - 1 - x.rule,
    };
    (r, back)
}

/// The admitting rule of both implementations agrees, exists iff `allows` (ports with port
/// security; none without), names a rule of direction `dir` in the model; and compared with
/// the model whose groups list their rules in reverse, it returns whether the key matches
/// two rules or more (the first and last differ), so that "first" was tested.
#[allow(clippy::too_many_arguments)]
fn check_rule(
    m: &Model,
    compiled: &CompiledPolicy,
    linear: &LinearPolicy,
    rev: (&CompiledPolicy, &LinearPolicy, &dyn Fn(RuleRef) -> RuleRef),
    port: usize,
    dir: Direction,
    k: &FlowKey,
    allowed: bool,
) -> bool {
    let what = || {
        format!(
            "port {port} {dir:?} key {k:?} src {} dst {}",
            k.src_ip(),
            k.dst_ip()
        )
    };
    let want = linear.admitting_rule(port, dir, k);
    assert_eq!(compiled.admitting_rule(port, dir, k), want, "{}", what());
    if linear.port_security(port) {
        assert_eq!(want.is_some(), allowed, "{}", what());
    } else {
        assert_eq!(want, None, "{}", what());
    }
    if let Some(r) = want {
        let (_, rule) = r.resolve(m).expect("a rule of the model");
        assert_eq!(rule.direction, dir, "{}", what());
    }
    let (rc, rl, back) = rev;
    let last = rl.admitting_rule(port, dir, k);
    assert_eq!(rc.admitting_rule(port, dir, k), last, "reversed {}", what());
    let last = last.map(back);
    // Each group's last matching rule; equal to the first only if one rule per group
    // matched and only one group matched.
    last.is_some() && last != want
}

/// Check a random model (changed by `edit`) on every port and direction; returns the keys
/// checked, allowed, and matching several rules.
fn check_model(
    seed: u64,
    keys_per_case: usize,
    edit: impl FnOnce(&mut Gen, &mut Model),
) -> (usize, usize, usize) {
    check_model_built(seed, keys_per_case, edit, |_, m| {
        CompiledPolicy::compile(m, seed)
    })
}

/// [`check_model`] on the compiled policy `build` makes of the model (a fresh compile, or
/// one derived from another model's policy).
fn check_model_built(
    seed: u64,
    keys_per_case: usize,
    edit: impl FnOnce(&mut Gen, &mut Model),
    build: impl FnOnce(&mut Gen, &Model) -> CompiledPolicy,
) -> (usize, usize, usize) {
    let mut g = Gen::new(seed);
    let mut m = g.model();
    edit(&mut g, &mut m);
    let compiled = build(&mut g, &m);
    let linear = LinearPolicy::new(&m, seed);
    let (rm, back) = reversed(&m);
    let (rc, rl) = (
        CompiledPolicy::compile(&rm, seed),
        LinearPolicy::new(&rm, seed),
    );
    let (mut total, mut allowed, mut several) = (0, 0, 0);
    for port in 0..m.ports.len() {
        assert_eq!(
            compiled.is_stateful(port),
            linear.is_stateful(port),
            "seed {seed} port {port}"
        );
        assert_eq!(compiled.port_security(port), linear.port_security(port));
        for dir in [Direction::Ingress, Direction::Egress] {
            assert_eq!(compiled.rule_count(port, dir), linear.rule_count(port, dir));
            let keys: Vec<FlowKey> = (0..keys_per_case).map(|_| g.key(&m, dir)).collect();
            let expect: Vec<bool> = keys.iter().map(|k| linear.allows(port, dir, k)).collect();
            for (k, e) in keys.iter().zip(&expect) {
                assert_eq!(
                    compiled.allows(port, dir, k),
                    *e,
                    "seed {seed} port {port} {dir:?} key {k:?} src {} dst {}\nmodel {m:#?}",
                    k.src_ip(),
                    k.dst_ip()
                );
                let rev = (&rc, &rl, &back as &dyn Fn(RuleRef) -> RuleRef);
                if check_rule(&m, &compiled, &linear, rev, port, dir, k, *e) {
                    several += 1;
                }
            }
            total += keys.len();
            allowed += expect.iter().filter(|&&b| b).count();
            let mut out = [false; 64];
            for burst in 1..=64usize {
                for (i, chunk) in keys.chunks(burst).enumerate() {
                    out.iter_mut().for_each(|o| *o = !*o);
                    compiled.classify_burst(port, dir, chunk, &mut out[..chunk.len()]);
                    let e = &expect[i * burst..i * burst + chunk.len()];
                    assert_eq!(
                        &out[..chunk.len()],
                        e,
                        "seed {seed} port {port} {dir:?} burst {burst} chunk {i}"
                    );
                }
            }
        }
    }
    (total, allowed, several)
}

#[test]
fn compiled_matches_linear_on_random_policies() {
    let (mut total, mut allowed, mut several) = (0, 0, 0);
    for seed in 0..250u64 {
        let (t, a, s) = check_model(seed, 96, |_, _| {});
        total += t;
        allowed += a;
        several += s;
    }
    // The packet generator must exercise both outcomes substantially, and keys matching
    // several rules (where the first one is the answer).
    assert!(allowed * 10 > total, "allowed {allowed} of {total}");
    assert!(allowed * 10 < total * 9, "allowed {allowed} of {total}");
    eprintln!("random policies: {total} keys, {allowed} allowed, {several} matching several rules");
    assert!(
        several * 20 > allowed,
        "several rules {several} of {allowed} allowed"
    );
}

/// Members on other hosts (`Model::remote_members`, a host agent's view) for random groups
/// (some with no local member port, some unknown to the model): both implementations
/// include them in `Remote::Group`'s set, and the key generator aims at them.
#[test]
fn compiled_matches_linear_with_remote_members() {
    let (mut total, mut allowed) = (0, 0);
    for seed in 1000..1150u64 {
        let (t, a, _) = check_model(seed, 96, remote_members);
        total += t;
        allowed += a;
    }
    assert!(allowed * 10 > total, "allowed {allowed} of {total}");
}

/// Random `remote_members` for random groups of `m` (and one unknown to it); some groups
/// lose their local member ports.
fn remote_members(g: &mut Gen, m: &mut Model) {
    set_remote_members(g, m);
    // Some groups lose their local members: only remote ones are left.
    if g.below(2) == 0 {
        for p in m.ports.iter_mut() {
            p.security_groups.retain(|s| s != "g0");
        }
    }
}

/// Replace `m.remote_members` by random entries (hosts of both families and prefixes).
fn set_remote_members(g: &mut Gen, m: &mut Model) {
    m.remote_members.clear();
    let names: Vec<String> = m.security_groups.iter().map(|s| s.name.clone()).collect();
    for name in names.iter().chain(std::iter::once(&"ghost".to_string())) {
        if g.below(3) == 0 {
            continue;
        }
        let n = 1 + g.below(6) as usize;
        let nets = (0..n)
            .map(|_| {
                let v6 = g.below(2) == 0;
                if g.below(3) == 0 {
                    g.net(v6)
                } else if v6 {
                    IpNet::from(IpAddr::V6(Ipv6Addr::from(g.v6_addr())))
                } else {
                    IpNet::from(IpAddr::V4(Ipv4Addr::from(g.v4_addr())))
                }
            })
            .collect();
        m.remote_members.insert(name.clone(), nets);
    }
}

/// Members join and leave: the policy derived with `with_members` from the policy of a
/// model with other `remote_members` (twice in a row, through `update`) answers exactly as
/// a fresh compile and the linear oracle, for `allows`, every burst length and
/// `admitting_rule`; and shares the compiled rule structures.
#[test]
fn with_members_after_joins_and_leaves_matches_a_fresh_compile() {
    let (mut total, mut allowed) = (0, 0);
    for seed in 3000..3150u64 {
        let (t, a, _) = check_model_built(seed, 96, remote_members, |g, m| {
            let mut before = m.clone();
            set_remote_members(g, &mut before);
            let mut mid = m.clone();
            set_remote_members(g, &mut mid);
            // Some entries unchanged, so that sets are both shared and rebuilt.
            if let Some((k, v)) = m.remote_members.iter().next() {
                before.remote_members.insert(k.clone(), v.clone());
            }
            assert!(sgswitch::classifier::members_only_change(&before, &mid));
            let c0 = CompiledPolicy::compile(&before, 1);
            let c1 = c0.update(&before, &mid, 2);
            let c2 = c1.update(&mid, m, seed);
            assert_eq!(c2.epoch(), seed);
            for p in 0..m.ports.len() {
                assert!(c0.shares_structure_with(&c2, p), "seed {seed} port {p}");
            }
            let fresh = CompiledPolicy::compile(m, seed).stats();
            assert_eq!(c2.stats(), fresh, "seed {seed}");
            c2
        });
        total += t;
        allowed += a;
    }
    assert!(allowed * 10 > total, "allowed {allowed} of {total}");
}

/// Each group gets variants of the model's rules (same remote or a supernet, ports widened,
/// narrowed or shifted, protocol any) so that most allowed keys match several rules, across
/// groups and within one: the first one in model order must be the answer.
#[test]
fn admitting_rule_is_the_first_on_overlapping_policies() {
    let (mut total, mut allowed, mut several) = (0, 0, 0);
    for seed in 500..650u64 {
        let (t, a, s) = check_model(seed, 96, |g, m| {
            let all: Vec<Rule> = m
                .security_groups
                .iter()
                .flat_map(|sg| sg.rules.iter().cloned())
                .collect();
            if all.is_empty() {
                return;
            }
            let n_groups = m.security_groups.len();
            for _ in 0..3 * all.len() {
                let mut r = all[g.below(all.len() as u64) as usize].clone();
                overlap(g, &mut r);
                let sg = &mut m.security_groups[g.below(n_groups as u64) as usize];
                let at = g.below(sg.rules.len() as u64 + 1) as usize;
                sg.rules.insert(at, r);
            }
        });
        total += t;
        allowed += a;
        several += s;
    }
    eprintln!(
        "overlapping policies: {total} keys, {allowed} allowed, {several} matching several rules"
    );
    assert!(allowed * 10 > total, "allowed {allowed} of {total}");
    assert!(
        several * 3 > allowed,
        "several rules {several} of {allowed} allowed"
    );
}

/// A rule overlapping `r`: a supernet remote, ports widened / narrowed / shifted, an ICMP
/// type without code, or protocol any.
fn overlap(g: &mut Gen, r: &mut Rule) {
    match g.below(5) {
        0 => {
            if let Remote::Prefix(n) = &r.remote {
                let len = n.prefix_len().saturating_sub(g.below(9) as u8);
                r.remote = Remote::Prefix(IpNet::new(n.addr(), len).unwrap().trunc());
            }
        }
        1 => {
            r.protocol = None;
            r.protocol_zero = g.below(2) == 0;
            r.port_range_min = None;
            r.port_range_max = None;
        }
        2 if r.protocol.is_some_and(proto::has_ports) => {
            let lo = r.port_range_min.unwrap_or(1);
            let hi = r.port_range_max.unwrap_or(65535);
            let d = g.pick(&[1u16, 10, 500]);
            let (lo, hi) = match g.below(3) {
                0 => (lo.saturating_sub(d), hi.saturating_add(d)),
                1 => (lo.saturating_add(d).min(hi), hi),
                _ => (lo.saturating_add(d), hi.saturating_add(d)),
            };
            r.port_range_min = Some(lo.max(1));
            r.port_range_max = Some(hi.max(lo.max(1)));
        }
        3 if r.port_range_max.is_some() && !r.protocol.is_some_and(proto::has_ports) => {
            // ICMP type/code → the whole type.
            r.port_range_max = None;
        }
        _ => {}
    }
}

#[test]
fn compiled_matches_linear_on_big_policies() {
    // Fewer, larger models: many rules per group and many members per remote group.
    for seed in 1000..1010u64 {
        let mut g = Gen::new(seed);
        let mut m = g.model();
        let n_groups = m.security_groups.len();
        let n_addr = m.address_groups.len();
        for sg in m.security_groups.iter_mut() {
            for _ in 0..150 {
                sg.rules.push(g.rule(n_groups, n_addr));
            }
        }
        for i in 0..300 {
            let v4 = Ipv4Addr::from(g.v4_addr());
            m.ports.push(Port {
                name: format!("member{i}"),
                network: "n".into(),
                mac: sgswitch::wire::Mac([2, 1, 0, 0, (i >> 8) as u8, i as u8]),
                fixed_ips: vec![IpAddr::V4(v4), IpAddr::V6(Ipv6Addr::from(g.v6_addr()))],
                security_groups: vec![format!("g{}", i % n_groups)],
                port_security: true,
                allowed_address_pairs: vec![AllowedAddressPair {
                    ip_address: g.net(i % 2 == 0),
                    mac_address: None,
                }],
                backend: None,
                host: None,
            });
        }
        let compiled = CompiledPolicy::compile(&m, 1);
        let linear = LinearPolicy::new(&m, 1);
        let (rm, back) = reversed(&m);
        let (rc, rl) = (CompiledPolicy::compile(&rm, 1), LinearPolicy::new(&rm, 1));
        let mut several = 0;
        for port in 0..4.min(m.ports.len()) {
            for dir in [Direction::Ingress, Direction::Egress] {
                let keys: Vec<FlowKey> = (0..2000).map(|_| g.key(&m, dir)).collect();
                let mut out = vec![false; keys.len()];
                compiled.classify_burst(port, dir, &keys, &mut out);
                for (k, o) in keys.iter().zip(&out) {
                    let e = linear.allows(port, dir, k);
                    assert_eq!(
                        compiled.allows(port, dir, k),
                        e,
                        "seed {seed} port {port} {k:?}"
                    );
                    assert_eq!(*o, e, "burst seed {seed} port {port} {k:?}");
                    let rev = (&rc, &rl, &back as &dyn Fn(RuleRef) -> RuleRef);
                    if check_rule(&m, &compiled, &linear, rev, port, dir, k, e) {
                        several += 1;
                    }
                }
            }
        }
        assert!(
            several > 100,
            "seed {seed}: {several} keys matching several rules"
        );
    }
}

#[test]
fn compile_time_10k_rules_100_ports_is_reported() {
    use sgswitch::bench::synth;
    // 100 groups × 100 rules = 10,000 rules; each of the 100 ports binds two groups, so
    // nearly every port has its own compiled structure (worst case for sharing).
    let m = synth::many_ports_model(100, 100, 100, 7);
    let t = std::time::Instant::now();
    let c = CompiledPolicy::compile(&m, 1);
    let spread = t.elapsed();
    // The same 10,000 rules in one group shared by all 100 ports.
    let (mut one, _) = synth::classbench_model(10_000, 1, 7);
    let port = one.ports[0].clone();
    for i in 1..100 {
        let mut p = port.clone();
        p.name = format!("cb{i}");
        one.ports.push(p);
    }
    let t = std::time::Instant::now();
    let shared = CompiledPolicy::compile(&one, 1);
    let shared_time = t.elapsed();
    eprintln!(
        "compile 10k rules / 100 ports: spread over 100 group sets {:?} ({:?}); one shared group {:?} ({:?})",
        spread,
        c.stats(),
        shared_time,
        shared.stats()
    );
    assert!(c.stats().distinct_group_sets >= 90);
    assert_eq!(shared.stats().distinct_group_sets, 1);
    assert!((1..100).all(|p| shared.shares_structure(0, p)));
    assert_eq!(shared.rule_count(99, Direction::Ingress), 10_000);
}

/// One random edit of `m`, of the kinds a policy change makes: a rule added, removed or
/// replaced in a group; a port's groups, port security or addresses changed (it moves
/// between group sets and member sets); a port added or removed; a group added at the
/// end, removed (its name left dangling in ports and rules) or two groups swapped (model
/// indices shift); an address group's addresses changed; remote members changed. Returns
/// the name of the group whose rules alone changed, if the edit was such a rule edit.
fn random_edit(g: &mut Gen, m: &mut Model) -> Option<String> {
    let n_groups = m.security_groups.len().max(1);
    let n_addr = m.address_groups.len();
    let pick_group = |g: &mut Gen, m: &Model| g.below(m.security_groups.len() as u64) as usize;
    match g.below(14) {
        0..=2 if !m.security_groups.is_empty() => {
            let i = pick_group(g, m);
            let r = g.rule(n_groups, n_addr);
            let sg = &mut m.security_groups[i];
            let at = g.below(sg.rules.len() as u64 + 1) as usize;
            sg.rules.insert(at, r);
            Some(sg.name.clone())
        }
        3..=4 if !m.security_groups.is_empty() => {
            let i = pick_group(g, m);
            let sg = &mut m.security_groups[i];
            if !sg.rules.is_empty() {
                sg.rules.remove(g.below(sg.rules.len() as u64) as usize);
            }
            Some(sg.name.clone())
        }
        5 if !m.security_groups.is_empty() => {
            let i = pick_group(g, m);
            let r = g.rule(n_groups, n_addr);
            let sg = &mut m.security_groups[i];
            if !sg.rules.is_empty() {
                let at = g.below(sg.rules.len() as u64) as usize;
                sg.rules[at] = r;
            }
            Some(sg.name.clone())
        }
        6 if !m.ports.is_empty() => {
            let p = g.below(m.ports.len() as u64) as usize;
            let name = format!("g{}", g.below(n_groups as u64 + 1));
            let port = &mut m.ports[p];
            match g.below(4) {
                0 => port.security_groups.push(name),
                1 => {
                    port.security_groups.pop();
                }
                2 => port.port_security = !port.port_security,
                _ => port.security_groups = vec![name],
            }
            None
        }
        7 if !m.ports.is_empty() => {
            let p = g.below(m.ports.len() as u64) as usize;
            let ip = if g.below(2) == 0 {
                IpAddr::V4(Ipv4Addr::from(g.v4_addr()))
            } else {
                IpAddr::V6(Ipv6Addr::from(g.v6_addr()))
            };
            let port = &mut m.ports[p];
            if g.below(2) == 0 || port.fixed_ips.is_empty() {
                port.fixed_ips.push(ip);
            } else {
                port.fixed_ips.remove(0);
            }
            None
        }
        8 => {
            if m.ports.len() > 1 && g.below(2) == 0 {
                let p = g.below(m.ports.len() as u64) as usize;
                m.ports.remove(p);
            } else if let Some(mut p) = m.ports.first().cloned() {
                p.name = format!("p{}", 100 + g.below(1_000_000));
                p.security_groups = vec![format!("g{}", g.below(n_groups as u64))];
                m.ports.push(p);
            }
            None
        }
        9 => {
            match g.below(3) {
                0 => {
                    // A name no other group has (a duplicate would not be the one resolved).
                    let name = format!("new{}", g.below(1 << 40));
                    let rules = (0..g.below(6)).map(|_| g.rule(n_groups, n_addr)).collect();
                    m.security_groups.push(SecurityGroup {
                        name,
                        description: String::new(),
                        stateful: true,
                        rules,
                    });
                }
                1 if m.security_groups.len() > 1 => {
                    let i = pick_group(g, m);
                    m.security_groups.remove(i);
                }
                _ if m.security_groups.len() > 1 => {
                    let (a, b) = (pick_group(g, m), pick_group(g, m));
                    m.security_groups.swap(a, b);
                }
                _ => {}
            }
            None
        }
        10 if n_addr > 0 => {
            let a = g.below(n_addr as u64) as usize;
            let v6 = g.below(2) == 0;
            let net = g.net(v6);
            let ag = &mut m.address_groups[a];
            if g.below(2) == 0 || ag.addresses.is_empty() {
                ag.addresses.push(net);
            } else {
                ag.addresses.pop();
            }
            None
        }
        11 if !m.security_groups.is_empty() => {
            let i = pick_group(g, m);
            m.security_groups[i].stateful = !m.security_groups[i].stateful;
            None
        }
        12 => {
            set_remote_members(g, m);
            None
        }
        _ => None,
    }
}

/// What the compiler reads of the groups (not `description`, `protocol_zero`,
/// `remote_ip_prefix_raw`).
#[allow(clippy::type_complexity)]
fn compiled_fields(
    m: &Model,
) -> Vec<(
    &str,
    bool,
    Vec<(
        Direction,
        EtherType,
        Option<u8>,
        Option<u16>,
        Option<u16>,
        &Remote,
    )>,
)> {
    m.security_groups
        .iter()
        .map(|g| {
            let rules = g
                .rules
                .iter()
                .map(|r| {
                    (
                        r.direction,
                        r.ethertype,
                        r.protocol,
                        r.port_range_min,
                        r.port_range_max,
                        &r.remote,
                    )
                })
                .collect();
            (g.name.as_str(), g.stateful, rules)
        })
        .collect()
}

/// The differential test of incremental compilation (#15): a random model goes through a
/// chain of random edits; the policy of each step is derived from the previous step's
/// (`update`: members only, or `recompile`, which shares the untouched group sets), and
/// the last one is checked against the linear oracle on every port, direction and burst
/// length, and with `admitting_rule` (as the other tests here); every step's `stats()`
/// must equal a fresh compile's (same sets, intervals, classes, terms, members). When an
/// edit changed one group's rules alone, every port whose set does not hold that group
/// keeps its very structure, and a port whose set holds it gets a new one.
#[test]
fn incremental_recompile_after_random_edits_matches_a_fresh_compile() {
    let (mut total, mut allowed, mut shared, mut rebuilt) = (0, 0, 0usize, 0usize);
    for seed in 5000..5150u64 {
        let (t, a, _) = check_model_built(seed, 64, remote_members, |g, m| {
            // The chain m_0 -> m_1 -> ... -> m_k = m, made backwards by random edits.
            let steps = 1 + g.below(8) as usize;
            let mut chain = vec![(m.clone(), None)];
            for _ in 0..steps {
                let mut prev = chain.last().unwrap().0.clone();
                let touched = random_edit(g, &mut prev);
                chain.push((prev, touched));
            }
            chain.reverse();
            // chain[i + 1] is chain[i] with the reverse of chain[i].1's edit.
            let mut policy = CompiledPolicy::compile(&chain[0].0, 0);
            // The dataplane's side: rule counter slots kept for unchanged groups.
            let mut zones = IdMap::default();
            let mut dp = Dataplane::compile(&chain[0].0, 0, &mut zones);
            for i in 1..chain.len() {
                let (old, new) = (&chain[i - 1].0, &chain[i].0);
                let next_dp = dp.recompile(old, new, i as u64, &mut zones);
                let fresh = Dataplane::compile(new, i as u64, &mut zones.clone());
                assert!(
                    next_dp.rule_refs().eq(fresh.rule_refs()),
                    "seed {seed} step {i}: rule slots"
                );
                dp = next_dp;
                let next = policy.update(old, new, i as u64);
                assert_eq!(
                    next.stats(),
                    CompiledPolicy::compile(new, i as u64).stats(),
                    "seed {seed} step {i}"
                );
                if let Some(group) = &chain[i - 1].1 {
                    for (p, port) in new.ports.iter().enumerate() {
                        if !port.port_security || port.security_groups.is_empty() {
                            continue;
                        }
                        let holds = port.security_groups.contains(group);
                        let same = policy.shares_structure_with(&next, p);
                        if holds && compiled_fields(old) != compiled_fields(new) {
                            assert!(!same, "seed {seed} step {i} port {p}: not recompiled");
                            rebuilt += 1;
                        } else if !holds {
                            assert!(same, "seed {seed} step {i} port {p}: recompiled");
                            shared += 1;
                        }
                    }
                }
                policy = next;
            }
            assert_eq!(policy.epoch(), (chain.len() - 1) as u64);
            policy
        });
        total += t;
        allowed += a;
    }
    eprintln!(
        "incremental: {total} keys, {allowed} allowed; ports shared {shared}, rebuilt {rebuilt}"
    );
    assert!(allowed * 10 > total, "allowed {allowed} of {total}");
    assert!(
        shared > 100 && rebuilt > 100,
        "shared {shared} rebuilt {rebuilt}"
    );
}

/// The differential test of rule patches (#15, "incremental policy updates"): a random
/// model goes through a long chain of random edits, most of them rule edits (a rule
/// inserted, removed or replaced anywhere in a group), the others anything `random_edit`
/// does (ports, groups, address groups, members: the patch gives way to a compile, which
/// folds the delta in). Each step's policy is `derive`d from the previous step's
/// (`with_members`, `patch` or `recompile`), so deltas build up over several steps. At
/// every step it must answer `allows`, `admitting_rule` and `rule_count` as a fresh
/// compile on keys of every port and direction; the last one is checked against the linear
/// oracle (every burst length, `admitting_rule`, reversed rules) by `check_model_built`.
#[test]
fn patched_policy_after_random_rule_edit_chains_matches_compile_and_oracle() {
    let (mut total, mut allowed, mut patched, mut steps_all) = (0, 0, 0usize, 0usize);
    let mut deepest = 0usize;
    for seed in 7000..7150u64 {
        let (t, a, _) = check_model_built(seed, 64, remote_members, |g, m| {
            let steps = 1 + g.below(16) as usize;
            let mut chain = vec![m.clone()];
            for _ in 0..steps {
                let prev = chain.last().unwrap().clone();
                // Three edits in four are rule edits.
                let next = loop {
                    let mut p = prev.clone();
                    if random_edit(g, &mut p).is_some() || g.below(4) == 0 {
                        break p;
                    }
                };
                chain.push(next);
            }
            chain.reverse();
            let mut policy = CompiledPolicy::compile(&chain[0], 0);
            for i in 1..chain.len() {
                let (old, new) = (&chain[i - 1], &chain[i]);
                let next = policy.derive(old, new, i as u64);
                let fresh = CompiledPolicy::compile(new, i as u64);
                steps_all += 1;
                if next.delta_rules() > 0 {
                    patched += 1;
                    deepest = deepest.max(next.delta_rules());
                }
                for port in 0..new.ports.len() {
                    for dir in [Direction::Ingress, Direction::Egress] {
                        assert_eq!(
                            next.rule_count(port, dir),
                            fresh.rule_count(port, dir),
                            "seed {seed} step {i} port {port}"
                        );
                        for _ in 0..24 {
                            let k = g.key(new, dir);
                            assert_eq!(
                                next.allows(port, dir, &k),
                                fresh.allows(port, dir, &k),
                                "seed {seed} step {i} port {port} {dir:?} {k:?}"
                            );
                            assert_eq!(
                                next.admitting_rule(port, dir, &k),
                                fresh.admitting_rule(port, dir, &k),
                                "seed {seed} step {i} port {port} {dir:?} {k:?}"
                            );
                        }
                    }
                }
                policy = next;
            }
            policy
        });
        total += t;
        allowed += a;
    }
    eprintln!(
        "patch chains: {total} keys, {allowed} allowed; {patched} of {steps_all} steps patched, largest delta {deepest}"
    );
    assert!(allowed * 10 > total, "allowed {allowed} of {total}");
    assert!(patched * 3 > steps_all, "patched {patched} of {steps_all}");
    assert!(deepest >= 3, "deltas built up over steps: {deepest}");
}

/// The slow path of a patch, on purpose: a key admitted by a rule the patch removed is
/// judged by the next matching rule (found by a scan, renumbered past the removal), an
/// added rule earlier in model order wins over a later base rule, and a set that does not
/// hold the changed group answers from its compiled structures.
#[test]
fn patch_removing_the_admitting_rule_falls_back_to_the_next_one() {
    let any = |lo: u16, hi: u16| Rule {
        direction: Direction::Ingress,
        ethertype: EtherType::IPv4,
        protocol: Some(proto::TCP),
        protocol_zero: false,
        port_range_min: Some(lo),
        port_range_max: Some(hi),
        remote: Remote::Any,
        remote_ip_prefix_raw: None,
        description: String::new(),
    };
    let group = |name: &str, rules: Vec<Rule>| SecurityGroup {
        name: name.into(),
        description: String::new(),
        stateful: true,
        rules,
    };
    let port = |name: &str, groups: &[&str]| Port {
        name: name.into(),
        network: "n".into(),
        mac: sgswitch::wire::Mac([2, 0, 0, 0, 0, name.len() as u8]),
        fixed_ips: vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, name.len() as u8))],
        security_groups: groups.iter().map(|s| s.to_string()).collect(),
        port_security: true,
        allowed_address_pairs: Vec::new(),
        backend: None,
        host: None,
    };
    let base = Model {
        security_groups: vec![
            group("a", vec![any(80, 80), any(1, 10), any(70, 90), any(80, 80)]),
            group("b", vec![any(80, 80)]),
        ],
        ports: vec![port("p", &["a", "b"]), port("qq", &["b"])],
        networks: vec![Network {
            name: "n".into(),
            ..Network::default()
        }],
        ..Model::default()
    };
    let key = |dport: u16| FlowKey {
        src: FlowKey::map_v4([192, 0, 2, 1]),
        dst: FlowKey::map_v4([10, 0, 0, 1]),
        sport: 40000,
        dport,
        proto: proto::TCP,
        family: FAMILY_V4,
        _pad: [0; 2],
    };
    let at = |group: u32, rule: u32| Some(RuleRef { group, rule });
    let c0 = CompiledPolicy::compile(&base, 1);
    assert_eq!(c0.admitting_rule(0, Direction::Ingress, &key(80)), at(0, 0));
    // Rule a/0 (the admitting one) and a/1 removed: a/2 (now a/0) admits 80.
    let mut m1 = base.clone();
    m1.security_groups[0].rules.drain(0..2);
    let c1 = c0
        .patch(&base, &m1, 2)
        .expect("a rules-only change patches");
    assert_eq!(c1.delta_rules(), 2);
    assert!(c0.shares_structure_with(&c1, 0) && c0.shares_structure_with(&c1, 1));
    assert_eq!(c1.admitting_rule(0, Direction::Ingress, &key(80)), at(0, 0));
    assert_eq!(c1.admitting_rule(0, Direction::Ingress, &key(5)), None);
    assert!(!c1.allows(0, Direction::Ingress, &key(5)));
    assert_eq!(c1.admitting_rule(1, Direction::Ingress, &key(80)), at(1, 0));
    assert_eq!(c1.rule_count(0, Direction::Ingress), 3);
    // Then a rule inserted first (from m1): it admits 5 and wins 80 over the old a/2.
    let mut m2 = m1.clone();
    m2.security_groups[0].rules.insert(0, any(1, 100));
    let c2 = c1.patch(&m1, &m2, 3).expect("patch on a patch");
    assert_eq!(
        c2.delta_rules(),
        3,
        "two removed, one added, against the base"
    );
    assert_eq!(c2.admitting_rule(0, Direction::Ingress, &key(80)), at(0, 0));
    assert_eq!(c2.admitting_rule(0, Direction::Ingress, &key(5)), at(0, 0));
    assert_eq!(c2.admitting_rule(0, Direction::Ingress, &key(101)), None);
    assert_eq!(c2.rule_count(0, Direction::Ingress), 4);
    // Back to the base: an empty delta.
    let c3 = c2.patch(&m2, &base, 4).expect("patch back");
    assert_eq!(c3.delta_rules(), 0);
    for (c, m) in [(&c1, &m1), (&c2, &m2), (&c3, &base)] {
        let fresh = CompiledPolicy::compile(m, 9);
        for p in 0..2 {
            for d in 0..200u16 {
                let k = key(d);
                assert_eq!(
                    c.admitting_rule(p, Direction::Ingress, &k),
                    fresh.admitting_rule(p, Direction::Ingress, &k),
                    "port {p} dport {d}"
                );
                assert_eq!(
                    c.allows(p, Direction::Ingress, &k),
                    fresh.allows(p, Direction::Ingress, &k)
                );
            }
        }
    }
    // A change of another kind does not patch.
    let mut other = base.clone();
    other.ports[1].security_groups.push("a".into());
    assert!(c0.patch(&base, &other, 5).is_none());
}
