//! ClassBench rule sets and traces as security-group benchmarks.
//!
//! # Formats (as DPDK's `dpdk-test-acl` reads them; IPv6 as with its `--ipv6`)
//! Rule file, one filter per line (blank lines and lines starting with `#` are skipped):
//! ```text
//! @192.168.1.0/24 10.0.0.0/8 0 : 65535 80 : 80 0x06/0xFF
//!  SRC/LEN        DST/LEN    SPLO:SPHI DPLO:DPHI PROTO/MASK   [ignored extra columns]
//! @2001:db8::/32 ::/0 0 : 65535 443 : 443 0x06/0xFF
//! ```
//! Protocol mask `0x00` = any protocol, `0xFF` = exactly PROTO; other masks are rejected.
//! Trace file, one packet per line: `SRC DST SPORT DPORT PROTO [ignored columns]`, numbers in
//! decimal or `0x` hexadecimal (IPv4 addresses are usually hex: `0xc0a80101`), IPv6
//! addresses in their text form (`2001:db8::1`). A file holds one family (dpdk-test-acl
//! reads one).
//!
//! # Mapping to security groups
//! Every filter becomes one **ingress** rule of one security group bound to one port
//! (index 0 of [`to_model`]'s model):
//! * source prefix → `Remote::Prefix` (normalised);
//! * destination prefix → **ignored**: in a security group the destination of an ingress
//!   packet is the port itself, there is no destination match. Use `/0` destinations
//!   (as [`generate`] does) for a like-for-like comparison with `dpdk-test-acl`;
//! * source-port range: must be `0 : 65535` — security groups cannot match source ports, so
//!   any other range is an error naming the line;
//! * destination-port range → `port_range_min/max` (`0 : 65535` = any); a non-full range on
//!   a protocol without ports (any, ICMP, GRE, ...) is an error naming the line;
//! * protocol `0` with mask `0xFF` is treated as any protocol (Neutron's protocol 0).
//!
//! Filter priorities do not exist in security groups (allow-only union), so a packet is
//! "matched" when any filter covers it.
//!
//! # Measuring
//! [`run`] compiles the model and classifies the trace in bursts, pass after pass, for about
//! one second; [`measure`] does the measuring part for any [`Classifier`] (the linear oracle
//! too). Cycle counts come from `rdtsc` on x86_64.
//!
//! Owns: the ClassBench formats, their mapping and the lookup measurement. May not touch:
//! the classifier's internals (it uses the public [`Classifier`] API only).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use ipnet::IpNet;

use crate::classifier::{Classifier, CompiledPolicy};
use crate::flow::{proto, FlowKey, FAMILY_V4, FAMILY_V6};
use crate::policy::{Direction, EtherType, Model, Network, Port, Remote, Rule, SecurityGroup};

/// One ClassBench filter as read from a rule file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CbRule {
    /// 1-based line number in the rule file.
    pub line: usize,
    pub src: IpNet,
    pub dst: IpNet,
    pub sport: (u16, u16),
    pub dport: (u16, u16),
    pub proto: u8,
    pub proto_mask: u8,
}

/// Errors reading or converting ClassBench files.
#[derive(Debug, thiserror::Error)]
pub enum ClassbenchError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("rules line {line}: {msg}")]
    RuleSyntax { line: usize, msg: String },
    #[error("trace line {line}: {msg}")]
    TraceSyntax { line: usize, msg: String },
    #[error(
        "rules line {line}: source port range {lo} : {hi} cannot be a security-group rule \
         (security groups match destination ports only; use 0 : 65535)"
    )]
    SourcePortRange { line: usize, lo: u16, hi: u16 },
    #[error(
        "rules line {line}: destination port range {lo} : {hi} on {proto}, which has no ports \
         (port ranges need tcp, udp, sctp, dccp or udplite)"
    )]
    PortsWithoutProtocol {
        line: usize,
        lo: u16,
        hi: u16,
        proto: String,
    },
    #[error("rules line {line}: protocol mask {mask:#04x} is neither 0x00 (any) nor 0xFF (exact)")]
    ProtocolMask { line: usize, mask: u8 },
    #[error("the trace is empty")]
    EmptyTrace,
}

/// Parse a decimal or `0x`-hexadecimal unsigned number.
fn parse_num(s: &str) -> Option<u64> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else {
        s.parse().ok()
    }
}

fn skip_line(l: &str) -> bool {
    let t = l.trim_start();
    t.is_empty() || t.starts_with('#')
}

/// Parse a rule file (see the module doc). Syntax only: [`to_model`] checks what security
/// groups can express.
pub fn parse_rules(text: &str) -> Result<Vec<CbRule>, ClassbenchError> {
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let line = i + 1;
        if skip_line(l) {
            continue;
        }
        let err = |msg: &str| ClassbenchError::RuleSyntax {
            line,
            msg: msg.to_string(),
        };
        let body = l
            .trim_start()
            .strip_prefix('@')
            .ok_or_else(|| err("a rule starts with '@'"))?;
        let f: Vec<&str> = body.split_whitespace().collect();
        if f.len() < 9 {
            return Err(err(
                "expected `@SRC/LEN DST/LEN SPLO : SPHI DPLO : DPHI PROTO/MASK`",
            ));
        }
        let net = |s: &str, what: &str| -> Result<IpNet, ClassbenchError> {
            s.parse::<IpNet>()
                .map(|n| n.trunc())
                .map_err(|_| err(&format!("bad {what} prefix `{s}`")))
        };
        let port = |s: &str, what: &str| -> Result<u16, ClassbenchError> {
            parse_num(s)
                .and_then(|v| u16::try_from(v).ok())
                .ok_or_else(|| err(&format!("bad {what} `{s}`")))
        };
        if f[3] != ":" || f[6] != ":" {
            return Err(err("port ranges are written `LO : HI`"));
        }
        let (pv, pm) = f[8]
            .split_once('/')
            .ok_or_else(|| err("protocol is written `PROTO/MASK`"))?;
        let byte = |s: &str| -> Result<u8, ClassbenchError> {
            parse_num(s)
                .and_then(|v| u8::try_from(v).ok())
                .ok_or_else(|| err(&format!("bad protocol field `{s}`")))
        };
        let (src, dst) = (net(f[0], "source")?, net(f[1], "destination")?);
        if matches!(src, IpNet::V4(_)) != matches!(dst, IpNet::V4(_)) {
            return Err(err("source and destination prefixes of different families"));
        }
        out.push(CbRule {
            line,
            src,
            dst,
            sport: (port(f[2], "source port")?, port(f[4], "source port")?),
            dport: (
                port(f[5], "destination port")?,
                port(f[7], "destination port")?,
            ),
            proto: byte(pv)?,
            proto_mask: byte(pm)?,
        });
    }
    Ok(out)
}

/// Convert one filter into an ingress security-group rule of its family (see the module
/// doc).
pub fn to_rule(r: &CbRule) -> Result<Rule, ClassbenchError> {
    if r.sport != (0, u16::MAX) {
        return Err(ClassbenchError::SourcePortRange {
            line: r.line,
            lo: r.sport.0,
            hi: r.sport.1,
        });
    }
    let protocol = match r.proto_mask {
        0x00 => None,
        0xff if r.proto == 0 => None,
        0xff => Some(r.proto),
        mask => {
            return Err(ClassbenchError::ProtocolMask { line: r.line, mask });
        }
    };
    let (lo, hi) = r.dport;
    let full = (lo, hi) == (0, u16::MAX);
    let (min, max) = match protocol {
        _ if full => (None, None),
        Some(p) if proto::has_ports(p) => {
            if lo > hi {
                return Err(ClassbenchError::RuleSyntax {
                    line: r.line,
                    msg: format!("destination port range {lo} : {hi} is empty"),
                });
            }
            (Some(lo), Some(hi))
        }
        p => {
            return Err(ClassbenchError::PortsWithoutProtocol {
                line: r.line,
                lo,
                hi,
                proto: p.map_or("protocol any".to_string(), |p| format!("protocol {p}")),
            });
        }
    };
    Ok(Rule {
        direction: Direction::Ingress,
        ethertype: match r.src {
            IpNet::V4(_) => EtherType::IPv4,
            IpNet::V6(_) => EtherType::IPv6,
        },
        protocol,
        protocol_zero: false,
        port_range_min: min,
        port_range_max: max,
        remote: Remote::Prefix(r.src),
        remote_ip_prefix_raw: Some(r.src.to_string()),
        description: format!("classbench line {}", r.line),
    })
}

/// Name of the group and the port of [`to_model`].
pub const GROUP: &str = "classbench";
/// Index of the port carrying the rules in [`to_model`]'s model.
pub const PORT: usize = 0;

/// A model with one group holding every filter as an ingress rule, bound to port [`PORT`].
pub fn to_model(rules: &[CbRule]) -> Result<Model, ClassbenchError> {
    let rules = rules.iter().map(to_rule).collect::<Result<Vec<_>, _>>()?;
    Ok(Model {
        security_groups: vec![SecurityGroup {
            name: GROUP.to_string(),
            description: "ClassBench filters".to_string(),
            stateful: true,
            rules,
        }],
        ports: vec![Port {
            name: "classbench0".to_string(),
            network: "classbench".to_string(),
            mac: crate::wire::Mac([0x02, 0, 0, 0, 0, 1]),
            fixed_ips: Vec::new(),
            security_groups: vec![GROUP.to_string()],
            port_security: true,
            allowed_address_pairs: Vec::new(),
            backend: None,
            host: None,
        }],
        networks: vec![Network {
            name: "classbench".to_string(),
            ..Network::default()
        }],
        ..Model::default()
    })
}

/// Parse a trace file into flow keys (extra columns are ignored); an address with a `:` is
/// IPv6, and both addresses of a line must be of one family.
pub fn parse_trace(text: &str) -> Result<Vec<FlowKey>, ClassbenchError> {
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        if skip_line(l) {
            continue;
        }
        let line = i + 1;
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 5 {
            return Err(ClassbenchError::TraceSyntax {
                line,
                msg: "expected `SRC DST SPORT DPORT PROTO`".to_string(),
            });
        }
        let num = |s: &str, max: u64, what: &str| -> Result<u64, ClassbenchError> {
            parse_num(s)
                .filter(|v| *v <= max)
                .ok_or_else(|| ClassbenchError::TraceSyntax {
                    line,
                    msg: format!("bad {what} `{s}`"),
                })
        };
        let addr = |s: &str, what: &str| -> Result<(u8, [u8; 16]), ClassbenchError> {
            if s.contains(':') {
                s.parse::<Ipv6Addr>()
                    .map(|a| (FAMILY_V6, a.octets()))
                    .map_err(|_| ClassbenchError::TraceSyntax {
                        line,
                        msg: format!("bad {what} `{s}`"),
                    })
            } else {
                let a = num(s, u64::from(u32::MAX), what)? as u32;
                Ok((FAMILY_V4, FlowKey::map_v4(a.to_be_bytes())))
            }
        };
        let (family, src) = addr(f[0], "source address")?;
        let (dfamily, dst) = addr(f[1], "destination address")?;
        if family != dfamily {
            return Err(ClassbenchError::TraceSyntax {
                line,
                msg: "source and destination addresses of different families".to_string(),
            });
        }
        let sport = num(f[2], u64::from(u16::MAX), "source port")? as u16;
        let dport = num(f[3], u64::from(u16::MAX), "destination port")? as u16;
        let proto = num(f[4], u64::from(u8::MAX), "protocol")? as u8;
        out.push(FlowKey {
            src,
            dst,
            sport,
            dport,
            proto,
            family,
            _pad: [0; 2],
        });
    }
    Ok(out)
}

fn read(path: &Path) -> Result<String, ClassbenchError> {
    std::fs::read_to_string(path).map_err(|source| ClassbenchError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Read and parse a rule file and a trace file.
pub fn load(rules: &Path, trace: &Path) -> Result<(Vec<CbRule>, Vec<FlowKey>), ClassbenchError> {
    Ok((parse_rules(&read(rules)?)?, parse_trace(&read(trace)?)?))
}

/// What one measurement found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClassbenchReport {
    /// Filters (= ingress rules).
    pub rules: usize,
    /// Keys in the trace.
    pub trace_len: usize,
    /// Keys per call: 1 = `allows`, one key at a time (the shipped path: the pipeline
    /// classifies each new connection alone); more = `classify_burst` (not shipped).
    pub burst: usize,
    /// Time to compile the model (0 for [`measure`] on a prebuilt classifier).
    pub compile_seconds: f64,
    /// Lookups performed (whole passes over the trace).
    pub lookups: u64,
    pub seconds: f64,
    pub lookups_per_sec: f64,
    /// TSC cycles per lookup (x86_64 only; wall-clock cycles, like `dpdk-test-acl`).
    pub cycles_per_lookup: Option<f64>,
    /// CPU time this thread spent measuring (differs from `seconds` on a busy machine).
    pub cpu_seconds: f64,
    /// Lookups per second of this thread's CPU time.
    pub lookups_per_cpu_sec: f64,
    /// Trace keys allowed in one pass.
    pub matched: u64,
    /// Heap bytes of what `allows` reads ([`crate::classifier::PolicyStats::bytes`]; 0 for
    /// [`measure`] on a prebuilt classifier).
    pub bytes: usize,
    /// Heap bytes of the rule attribution (`admitting_rule`), apart from `bytes`.
    pub attribution_bytes: usize,
    /// Binary-search rounds before the linear count, at most over the buckets.
    pub search_rounds: u32,
}

/// CPU time of the calling thread, in seconds (0 where unavailable).
fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call writes nothing else.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc == 0 {
        ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
    } else {
        0.0
    }
}

#[inline]
fn tsc() -> Option<u64> {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `rdtsc` has no memory effects and is available on every x86_64 CPU.
        Some(unsafe { core::arch::x86_64::_rdtsc() })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

/// Classify `trace` through `c` (port `port`, ingress), whole passes, until at least
/// `min_time` has elapsed (at least one pass): with `burst` 1 one key at a time through
/// [`Classifier::allows`], what the pipeline runs for each new connection; with a larger
/// `burst`, in bursts through `classify_burst` (not the shipped path, kept to compare).
pub fn measure<C: Classifier + ?Sized>(
    c: &C,
    port: usize,
    trace: &[FlowKey],
    burst: usize,
    min_time: Duration,
) -> Result<ClassbenchReport, ClassbenchError> {
    if trace.is_empty() {
        return Err(ClassbenchError::EmptyTrace);
    }
    let burst = burst.clamp(1, trace.len());
    let mut out = vec![false; burst];
    let mut matched = 0u64;
    for chunk in trace.chunks(burst) {
        c.classify_burst(port, Direction::Ingress, chunk, &mut out);
        matched += out[..chunk.len()].iter().filter(|&&b| b).count() as u64;
    }
    let mut lookups = 0u64;
    let mut sink = 0usize;
    let start = Instant::now();
    let cpu0 = thread_cpu_seconds();
    let t0 = tsc();
    loop {
        if burst == 1 {
            for k in trace {
                sink = sink.wrapping_add(usize::from(c.allows(port, Direction::Ingress, k)));
            }
        } else {
            for chunk in trace.chunks(burst) {
                c.classify_burst(port, Direction::Ingress, chunk, &mut out);
                sink = sink.wrapping_add(usize::from(out[0]));
            }
        }
        lookups += trace.len() as u64;
        if start.elapsed() >= min_time {
            break;
        }
    }
    let t1 = tsc();
    let cpu_seconds = thread_cpu_seconds() - cpu0;
    std::hint::black_box(sink);
    let seconds = start.elapsed().as_secs_f64();
    Ok(ClassbenchReport {
        rules: c.rule_count(port, Direction::Ingress),
        trace_len: trace.len(),
        burst,
        compile_seconds: 0.0,
        lookups,
        seconds,
        lookups_per_sec: lookups as f64 / seconds,
        cycles_per_lookup: t0
            .zip(t1)
            .map(|(a, b)| b.wrapping_sub(a) as f64 / lookups as f64),
        matched,
        bytes: 0,
        attribution_bytes: 0,
        search_rounds: 0,
        cpu_seconds,
        lookups_per_cpu_sec: if cpu_seconds > 0.0 {
            lookups as f64 / cpu_seconds
        } else {
            0.0
        },
    })
}

/// Build the model of `rules`, compile it, and [`measure`] it for about one second.
pub fn run(
    rules: &[CbRule],
    trace: &[FlowKey],
    burst: usize,
) -> Result<ClassbenchReport, ClassbenchError> {
    let model = to_model(rules)?;
    let t = Instant::now();
    let policy = CompiledPolicy::compile(&model, 1);
    let compile_seconds = t.elapsed().as_secs_f64();
    let mut r = measure(&policy, PORT, trace, burst, Duration::from_secs(1))?;
    r.compile_seconds = compile_seconds;
    r.bytes = policy.stats().bytes;
    r.attribution_bytes = policy.stats().attribution_bytes;
    r.search_rounds = policy.stats().max_search_rounds;
    Ok(r)
}

/// Per trace key, whether the compiled `rules` allow it (for a differential check against
/// another classifier's results on the same files).
pub fn verdicts(rules: &[CbRule], trace: &[FlowKey]) -> Result<Vec<bool>, ClassbenchError> {
    let policy = CompiledPolicy::compile(&to_model(rules)?, 1);
    Ok(trace
        .iter()
        .map(|k| policy.allows(PORT, Direction::Ingress, k))
        .collect())
}

// ---------------------------------------------------------------------------------------
// Generator
// ---------------------------------------------------------------------------------------

/// A small deterministic PRNG (SplitMix64); good enough for test inputs, not for secrets.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`; returns 0 for `n == 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
        }
    }
    /// True with probability `pct` percent.
    pub fn pct(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

/// Generated ClassBench-style files.
#[derive(Clone, Debug)]
pub struct Generated {
    pub rules: String,
    pub trace: String,
}

const WELL_KNOWN: [u16; 12] = [22, 25, 53, 80, 110, 123, 143, 443, 993, 3306, 5432, 8080];

/// What [`generate_with`] generates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GenOptions {
    /// IPv6 prefixes (`/0`-`/128`) and addresses instead of IPv4.
    pub ipv6: bool,
    /// Security-group shaped: tcp and udp rules only (no ICMP or protocol-any filter), a
    /// `/0` rule only for one well-known port, and trace keys outside the filters tcp or
    /// udp, a third of them in the filters' address clusters, so that the match fraction
    /// is about `inside_pct` plus a little.
    pub sg: bool,
    /// Percent of trace keys drawn inside a random filter (the rest: random keys).
    pub inside_pct: u64,
}

impl GenOptions {
    /// What [`generate`] makes: IPv4, mixed protocols, 80 % of the keys inside a filter.
    pub const CLASSIC: GenOptions = GenOptions {
        ipv6: false,
        sg: false,
        inside_pct: 80,
    };
    /// The `benches/acl-ab.sh` shape: tcp/udp, half of the keys inside a filter (about
    /// 55-65 % matching).
    pub const fn sg(ipv6: bool) -> GenOptions {
        GenOptions {
            ipv6,
            sg: true,
            inside_pct: 50,
        }
    }
}

/// Generate `n_rules` ClassBench-style filters every security group can express (full
/// source-port range, `/0` destination, ports only on tcp/udp) and `n_trace` packets, ~80 %
/// drawn inside a random filter (ports near its range boundaries half of the time), the
/// rest random. Deterministic for a seed. [`generate_with`] with [`GenOptions::CLASSIC`].
pub fn generate(n_rules: usize, n_trace: usize, seed: u64) -> Generated {
    generate_with(n_rules, n_trace, seed, GenOptions::CLASSIC)
}

/// An address of `bits` bits (32 or 128) as `u128`, from the generator.
fn rand_addr(rng: &mut SplitMix64, bits: u32) -> u128 {
    if bits == 32 {
        u128::from(rng.next_u64() as u32)
    } else {
        (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64())
    }
}

/// The host bits of a `/len` prefix in a `bits`-bit address.
fn host_mask(len: u32, bits: u32) -> u128 {
    if len == 0 {
        u128::MAX >> (128 - bits)
    } else {
        (u128::MAX >> (128 - bits)).checked_shr(len).unwrap_or(0)
    }
}

fn addr_text(a: u128, bits: u32) -> String {
    if bits == 32 {
        format!("0x{:08x}", a as u32)
    } else {
        Ipv6Addr::from(a).to_string()
    }
}

fn net_text(a: u128, len: u32, bits: u32) -> String {
    if bits == 32 {
        format!("{}/{len}", Ipv4Addr::from(a as u32))
    } else {
        format!("{}/{len}", Ipv6Addr::from(a))
    }
}

/// Generate filters and a trace as [`generate`] does, of the shape `opt` says.
pub fn generate_with(n_rules: usize, n_trace: usize, seed: u64, opt: GenOptions) -> Generated {
    use std::fmt::Write;
    let mut rng = SplitMix64::new(seed);
    let bits: u32 = if opt.ipv6 { 128 } else { 32 };
    // Source prefixes cluster under a few /8s (IPv6: /32s) so that they nest and overlap,
    // as in ClassBench's seed files.
    let top_bits = if opt.ipv6 { 32 } else { 8 };
    let tops: Vec<u128> = (0..16)
        .map(|_| {
            let t = if opt.ipv6 {
                0x2000_0000 + rng.below(0x2000_0000)
            } else {
                rng.below(224) + 1
            };
            u128::from(t) << (bits - top_bits)
        })
        .collect();
    let low = host_mask(top_bits, bits);
    let any_dst = if opt.ipv6 { "::/0" } else { "0.0.0.0/0" };
    struct G {
        base: u128,
        len: u32,
        dport: (u16, u16),
        proto: u8,
        mask: u8,
    }
    let mut gen = Vec::with_capacity(n_rules);
    let mut rules = String::with_capacity(n_rules * 64);
    for _ in 0..n_rules {
        let (proto, mask) = match rng.below(100) {
            0..=59 if opt.sg => (proto::TCP, 0xff),
            _ if opt.sg => (proto::UDP, 0xff),
            0..=49 => (proto::TCP, 0xff),
            50..=79 => (proto::UDP, 0xff),
            80..=84 => (proto::ICMP, 0xff),
            _ => (0, 0x00),
        };
        let dport = if mask == 0xff && proto::has_ports(proto) {
            match rng.below(100) {
                0..=29 => (0, u16::MAX),
                30..=69 => {
                    let p = WELL_KNOWN[rng.below(WELL_KNOWN.len() as u64) as usize];
                    (p, p)
                }
                70..=79 => (1024, u16::MAX),
                _ => {
                    let a = rng.below(65536) as u16;
                    let b = rng.below(65536) as u16;
                    (a.min(b), a.max(b))
                }
            }
        } else {
            (0, u16::MAX)
        };
        // A short source prefix only on rules narrowed by a port range: a /0 "any protocol"
        // (or "all tcp") rule would allow a whole bucket and make the benchmark trivial.
        let narrow = mask == 0xff && proto::has_ports(proto) && dport != (0, u16::MAX);
        let len4: u32 = match rng.below(100) {
            0..=2 if narrow => 0,
            0..=12 => 8 + 8 * u32::from(!narrow),
            13..=32 => 16,
            33..=62 => 24,
            63..=84 => 32,
            _ => 9 + rng.below(23) as u32,
        };
        // IPv6: the same distribution stretched over 128 bits.
        let len = len4 * bits / 32;
        // Security-group shaped: a rule open to every address names one service port (a
        // `/0` with a wide range would allow most of the trace).
        let dport = if opt.sg && len == 0 {
            let p = WELL_KNOWN[rng.below(WELL_KNOWN.len() as u64) as usize];
            (p, p)
        } else {
            dport
        };
        let top = tops[rng.below(tops.len() as u64) as usize];
        let raw = top | (rand_addr(&mut rng, bits) & low);
        let base = raw & !host_mask(len, bits);
        let _ = writeln!(
            rules,
            "@{}\t{any_dst}\t0 : 65535\t{} : {}\t0x{:02X}/0x{:02X}",
            net_text(base, len, bits),
            dport.0,
            dport.1,
            proto,
            mask
        );
        gen.push(G {
            base,
            len,
            dport,
            proto,
            mask,
        });
    }
    let mut trace = String::with_capacity(n_trace * 48);
    for _ in 0..n_trace {
        let dst = rand_addr(&mut rng, bits);
        let sport = 1024 + rng.below(64512) as u16;
        let (src, dport, p, which) = if !gen.is_empty() && rng.pct(opt.inside_pct) {
            let i = rng.below(gen.len() as u64) as usize;
            let g = &gen[i];
            let src = g.base | (rand_addr(&mut rng, bits) & host_mask(g.len, bits));
            let (lo, hi) = g.dport;
            let dport = match rng.below(4) {
                0 => lo,
                1 => hi,
                _ => lo + rng.below(u64::from(hi - lo) + 1) as u16,
            };
            let p = if g.mask == 0 {
                [proto::TCP, proto::UDP, proto::GRE, proto::ESP][rng.below(4) as usize]
            } else {
                g.proto
            };
            (src, dport, p, i + 1)
        } else if opt.sg {
            // A third near the filters (in their clusters), the rest anywhere.
            let top = tops[rng.below(tops.len() as u64) as usize];
            let near = rng.below(3) == 0;
            let a = rand_addr(&mut rng, bits);
            let src = if near { top | (a & low) } else { a };
            let p = [proto::TCP, proto::UDP][rng.below(2) as usize];
            (src, rng.below(65536) as u16, p, 0)
        } else {
            let p = [proto::TCP, proto::UDP, proto::ICMP, proto::SCTP][rng.below(4) as usize];
            (rand_addr(&mut rng, bits), rng.below(65536) as u16, p, 0)
        };
        let _ = writeln!(
            trace,
            "{}\t{}\t{sport}\t{dport}\t{p}\t{which}",
            addr_text(src, bits),
            addr_text(dst, bits)
        );
    }
    Generated { rules, trace }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classifier::LinearPolicy;

    #[test]
    fn parses_dpdk_rule_line() {
        let r =
            parse_rules("# c\n\n@192.168.1.7/24 10.0.0.0/8 0 : 65535 80 : 80 0x06/0xFF\n").unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].line, 3);
        assert_eq!(r[0].src, "192.168.1.0/24".parse().unwrap());
        assert_eq!(r[0].dst, "10.0.0.0/8".parse().unwrap());
        assert_eq!(r[0].sport, (0, 65535));
        assert_eq!(r[0].dport, (80, 80));
        assert_eq!((r[0].proto, r[0].proto_mask), (6, 0xff));
        let rule = to_rule(&r[0]).unwrap();
        assert_eq!(rule.protocol, Some(6));
        assert_eq!(
            (rule.port_range_min, rule.port_range_max),
            (Some(80), Some(80))
        );
        assert_eq!(
            rule.remote,
            Remote::Prefix("192.168.1.0/24".parse().unwrap())
        );
        assert_eq!(rule.direction, Direction::Ingress);
    }

    #[test]
    fn extra_columns_and_any_protocol() {
        let r = parse_rules("@0.0.0.0/0 1.2.3.0/24 0 : 65535 0 : 65535 0x00/0x00 0x0000/0x0200\n")
            .unwrap();
        let rule = to_rule(&r[0]).unwrap();
        assert_eq!(rule.protocol, None);
        assert_eq!(rule.port_range_min, None);
    }

    #[test]
    fn rejects_what_security_groups_cannot_express() {
        let r = parse_rules("\n@1.0.0.0/8 0.0.0.0/0 1024 : 65535 80 : 80 0x06/0xFF\n").unwrap();
        let e = to_model(&r).unwrap_err();
        assert!(matches!(
            e,
            ClassbenchError::SourcePortRange { line: 2, .. }
        ));
        assert!(e.to_string().contains("line 2"), "{e}");

        let r = parse_rules("@1.0.0.0/8 0.0.0.0/0 0 : 65535 80 : 80 0x00/0x00\n").unwrap();
        let e = to_model(&r).unwrap_err();
        assert!(
            matches!(e, ClassbenchError::PortsWithoutProtocol { line: 1, .. }),
            "{e}"
        );
        let r = parse_rules("@1.0.0.0/8 0.0.0.0/0 0 : 65535 0 : 10 0x01/0xFF\n").unwrap();
        assert!(matches!(
            to_model(&r),
            Err(ClassbenchError::PortsWithoutProtocol { .. })
        ));
        let r = parse_rules("@1.0.0.0/8 0.0.0.0/0 0 : 65535 0 : 65535 0x06/0xF0\n").unwrap();
        assert!(matches!(
            to_model(&r),
            Err(ClassbenchError::ProtocolMask { mask: 0xf0, .. })
        ));
    }

    #[test]
    fn syntax_errors_name_the_line() {
        for bad in [
            "1.0.0.0/8 0.0.0.0/0 0 : 65535 0 : 65535 0x06/0xFF",
            "@1.0.0.0/33 0.0.0.0/0 0 : 65535 0 : 65535 0x06/0xFF",
            "@1.0.0.0/8 0.0.0.0/0 0 - 65535 0 : 65535 0x06/0xFF",
            "@1.0.0.0/8 0.0.0.0/0 0 : 65536 0 : 65535 0x06/0xFF",
            "@1.0.0.0/8 0.0.0.0/0 0 : 65535 0 : 65535 0x06",
            "@1.0.0.0/8 0.0.0.0/0 0 : 65535",
        ] {
            let text = format!("# header\n{bad}\n");
            match parse_rules(&text) {
                Err(ClassbenchError::RuleSyntax { line: 2, .. }) => {}
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert!(matches!(
            parse_trace("0x01020304 0x05060708 1 2\n"),
            Err(ClassbenchError::TraceSyntax { line: 1, .. })
        ));
        assert!(matches!(
            parse_trace("0x01020304 0x05060708 1 70000 6\n"),
            Err(ClassbenchError::TraceSyntax { line: 1, .. })
        ));
    }

    #[test]
    fn parses_trace_hex_and_decimal_with_extra_columns() {
        let t = parse_trace("0xc0a80101 0x0a000001 1234 80 6 17\n3232235778 167772162 1 53 17\n")
            .unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(
            t[0].src_ip(),
            "192.168.1.1".parse::<std::net::IpAddr>().unwrap()
        );
        assert_eq!(
            t[0].dst_ip(),
            "10.0.0.1".parse::<std::net::IpAddr>().unwrap()
        );
        assert_eq!(
            (t[0].sport, t[0].dport, t[0].proto, t[0].family),
            (1234, 80, 6, 4)
        );
        assert_eq!(
            t[1].src_ip(),
            "192.168.1.2".parse::<std::net::IpAddr>().unwrap()
        );
        assert_eq!(t[1].proto, 17);
    }

    #[test]
    fn generated_files_round_trip_and_agree_with_the_oracle() {
        let g = generate(300, 2000, 7);
        let rules = parse_rules(&g.rules).unwrap();
        assert_eq!(rules.len(), 300);
        let trace = parse_trace(&g.trace).unwrap();
        assert_eq!(trace.len(), 2000);
        let model = to_model(&rules).unwrap();
        let compiled = CompiledPolicy::compile(&model, 1);
        let linear = LinearPolicy::new(&model, 1);
        let mut hits = 0;
        for k in &trace {
            let a = compiled.allows(PORT, Direction::Ingress, k);
            assert_eq!(a, linear.allows(PORT, Direction::Ingress, k), "{k:?}");
            hits += usize::from(a);
        }
        // ~80 % of the packets are drawn inside a filter.
        assert!(hits > 1400, "hits {hits}");
        assert!(hits < 2000, "hits {hits}");
        // Deterministic.
        assert_eq!(generate(300, 2000, 7).rules, g.rules);
    }

    /// The security-group shaped files, both families: they parse, tcp/udp only, every
    /// filter a rule of the file's family, 50-70 % of the keys allowed, and the compiled
    /// classifier agrees with the linear oracle on every key.
    #[test]
    fn sg_shaped_files_both_families_agree_with_the_oracle() {
        for ipv6 in [false, true] {
            let g = generate_with(400, 3000, 11, GenOptions::sg(ipv6));
            let rules = parse_rules(&g.rules).unwrap();
            assert_eq!(rules.len(), 400);
            assert!(rules
                .iter()
                .all(|r| matches!(r.src, IpNet::V6(_)) == ipv6 && r.proto_mask == 0xff));
            assert!(rules
                .iter()
                .all(|r| r.proto == proto::TCP || r.proto == proto::UDP));
            let trace = parse_trace(&g.trace).unwrap();
            let family = if ipv6 { FAMILY_V6 } else { FAMILY_V4 };
            assert!(trace.iter().all(|k| k.family == family));
            let model = to_model(&rules).unwrap();
            let compiled = CompiledPolicy::compile(&model, 1);
            let linear = LinearPolicy::new(&model, 1);
            let v = verdicts(&rules, &trace).unwrap();
            for (k, a) in trace.iter().zip(&v) {
                assert_eq!(*a, linear.allows(PORT, Direction::Ingress, k), "{k:?}");
                assert_eq!(*a, compiled.allows(PORT, Direction::Ingress, k));
            }
            let hits = v.iter().filter(|&&b| b).count();
            assert!((1500..=2100).contains(&hits), "ipv6 {ipv6}: hits {hits}");
        }
        // An IPv6 rule line and trace line as dpdk-test-acl --ipv6 reads them.
        let r = parse_rules("@2001:db8::/32 ::/0 0 : 65535 443 : 443 0x06/0xFF\n").unwrap();
        let m = to_model(&r).unwrap();
        assert_eq!(m.security_groups[0].rules[0].ethertype, EtherType::IPv6);
        let t = parse_trace("2001:db8::7 ::1 1234 443 6\n2001:db9::7 ::1 1234 443 6\n").unwrap();
        let p = CompiledPolicy::compile(&m, 1);
        assert!(p.allows(PORT, Direction::Ingress, &t[0]));
        assert!(!p.allows(PORT, Direction::Ingress, &t[1]));
        assert!(matches!(
            parse_trace("2001:db8::7 0x01020304 1 2 6\n"),
            Err(ClassbenchError::TraceSyntax { line: 1, .. })
        ));
        assert!(matches!(
            parse_rules("@2001:db8::/32 0.0.0.0/0 0 : 65535 0 : 65535 0x06/0xFF\n"),
            Err(ClassbenchError::RuleSyntax { line: 1, .. })
        ));
    }

    #[test]
    fn measure_counts_matches_per_pass() {
        let g = generate(50, 100, 3);
        let model = to_model(&parse_rules(&g.rules).unwrap()).unwrap();
        let trace = parse_trace(&g.trace).unwrap();
        let p = CompiledPolicy::compile(&model, 1);
        let expect = trace
            .iter()
            .filter(|k| p.allows(PORT, Direction::Ingress, k))
            .count() as u64;
        let r = measure(&p, PORT, &trace, 32, Duration::from_millis(5)).unwrap();
        assert_eq!(r.matched, expect);
        assert_eq!(r.rules, 50);
        assert!(r.lookups >= 100 && r.lookups.is_multiple_of(100));
        assert!(r.lookups_per_sec > 0.0);
        assert!(matches!(
            measure(&p, PORT, &[], 32, Duration::ZERO),
            Err(ClassbenchError::EmptyTrace)
        ));
    }
}
