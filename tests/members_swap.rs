//! A remote-group member joining or leaving through `Dataplane::with_members` (#18: the
//! member sets are rebuilt, the rules are not recompiled) decides frames as a fresh
//! compile does, and the new epoch makes connection tracking re-judge: the established
//! connection of a member that left is cut, a member that joined is admitted.
//!
//! In-process: a `Pipeline` fed built frames. `up` (no port security: any source, the
//! way traffic of another host's instance reaches this host) and `vm` (group `R`: ssh
//! from members of group `G`, whose only members are on other hosts:
//! `Model::remote_members["G"]`).

use std::net::Ipv4Addr;

use sgswitch::bench::frames::{ipv4_frame, tcp, V4};
use sgswitch::classifier::members_only_change;
use sgswitch::pipeline::{Dataplane, Disposition, IdMap, Pipeline, PipelineConfig, Verdict};
use sgswitch::policy::{Direction, EtherType, Model, Network, Port, Remote, Rule, SecurityGroup};
use sgswitch::wire::Mac;

const UP_MAC: Mac = Mac([2, 0, 0, 0, 0, 1]);
const VM_MAC: Mac = Mac([2, 0, 0, 0, 0, 2]);
const VM_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const OLD: Ipv4Addr = Ipv4Addr::new(10, 0, 9, 9);
const NEW: Ipv4Addr = Ipv4Addr::new(10, 0, 9, 10);

fn rule(direction: Direction, protocol: Option<u8>, port: Option<u16>, remote: Remote) -> Rule {
    Rule {
        direction,
        ethertype: EtherType::IPv4,
        protocol,
        protocol_zero: false,
        port_range_min: port,
        port_range_max: port,
        remote,
        remote_ip_prefix_raw: None,
        description: String::new(),
    }
}

fn port(name: &str, mac: Mac, ips: &[Ipv4Addr], groups: &[&str], security: bool) -> Port {
    Port {
        name: name.into(),
        network: "n".into(),
        mac,
        fixed_ips: ips.iter().map(|a| (*a).into()).collect(),
        security_groups: groups.iter().map(|g| g.to_string()).collect(),
        port_security: security,
        allowed_address_pairs: Vec::new(),
        backend: None,
        host: None,
    }
}

fn model(members: &[Ipv4Addr]) -> Model {
    let group = |name: &str, rules| SecurityGroup {
        name: name.into(),
        description: String::new(),
        stateful: true,
        rules,
    };
    let mut m = Model {
        security_groups: vec![
            group(
                "R",
                vec![
                    rule(
                        Direction::Ingress,
                        Some(6),
                        Some(22),
                        Remote::Group("G".into()),
                    ),
                    rule(Direction::Egress, None, None, Remote::Any),
                ],
            ),
            group("G", Vec::new()),
        ],
        ports: vec![
            port("up", UP_MAC, &[], &[], false),
            port("vm", VM_MAC, &[VM_IP], &["R"], true),
        ],
        networks: vec![Network {
            name: "n".into(),
            ..Network::default()
        }],
        ..Model::default()
    };
    m.remote_members.insert(
        "G".into(),
        members
            .iter()
            .map(|a| std::net::IpAddr::from(*a).into())
            .collect(),
    );
    m
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const SYN_ACK: u8 = 0x12;

struct Run {
    pipe: Pipeline,
    now: u64,
    v: Verdict,
}

impl Run {
    /// Send a TCP segment; whether it was delivered to the other port.
    fn send(&mut self, dp: &Dataplane, from_vm: bool, peer: Ipv4Addr, flags: u8) -> bool {
        self.now += 1_000_000;
        let (src_mac, dst_mac, src, dst, sport, dport) = if from_vm {
            (VM_MAC, UP_MAC, VM_IP, peer, 22, 40000)
        } else {
            (UP_MAC, VM_MAC, peer, VM_IP, 40000, 22)
        };
        let f = ipv4_frame(
            dst_mac,
            src_mac,
            V4::new(src, dst, 6),
            &tcp(sport, dport, flags, 1, 1, &[]),
        );
        let (in_port, out_port) = if from_vm { (1, 0) } else { (0, 1) };
        let d = self.pipe.process(dp, in_port, &f, self.now, 0, &mut self.v);
        assert_eq!(d, Disposition::Decided);
        self.v.delivered.contains(&out_port)
    }
}

#[test]
fn member_leaving_cuts_its_connection_and_a_joining_member_is_admitted() {
    let mut zones = IdMap::default();
    let m1 = model(&[OLD]);
    let dp1 = Dataplane::compile(&m1, 1, &mut zones);
    let mut r = Run {
        pipe: Pipeline::new(&PipelineConfig::from_model(&m1)),
        now: 0,
        v: Verdict::default(),
    };
    assert!(!r.send(&dp1, false, NEW, SYN), "not a member yet");
    assert!(r.send(&dp1, false, OLD, SYN), "member: admitted");
    assert!(r.send(&dp1, true, OLD, SYN_ACK));
    assert!(r.send(&dp1, false, OLD, ACK));

    // OLD leaves: the rules stay compiled, the epoch is new, the connection is cut.
    let m2 = model(&[]);
    assert!(members_only_change(&m1, &m2));
    let dp2 = dp1.with_members(&m2, 2);
    assert_eq!((dp2.epoch, dp2.policy.epoch()), (2, 2));
    assert!(dp2.policy.shares_structure_with(&dp1.policy, 1));
    assert!(
        !r.send(&dp2, false, OLD, ACK),
        "left: established connection re-judged"
    );
    assert!(
        !r.send(&dp2, false, OLD, SYN),
        "left: new connection denied"
    );

    // NEW joins: admitted, OLD still not.
    let m3 = model(&[NEW]);
    let dp3 = dp2.with_members(&m3, 3);
    assert!(r.send(&dp3, false, NEW, SYN), "joined: admitted");
    assert!(r.send(&dp3, true, NEW, SYN_ACK));
    assert!(r.send(&dp3, false, NEW, ACK));
    assert!(!r.send(&dp3, false, OLD, SYN));

    // The derived dataplane decides as a fresh compile of the same model.
    let fresh = Dataplane::compile(&m3, 3, &mut zones);
    let mut f = Run {
        pipe: Pipeline::new(&PipelineConfig::from_model(&m3)),
        now: 0,
        v: Verdict::default(),
    };
    for (peer, want) in [(NEW, true), (OLD, false)] {
        assert_eq!(f.send(&fresh, false, peer, SYN), want, "{peer}");
    }
    assert_eq!(dp3.policy.stats(), fresh.policy.stats());
}
