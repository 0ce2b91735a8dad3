//! One pass from a frame to [`PacketMeta`] (with its [`FlowKey`]) or a parse error.
//!
//! This module fixes the data layout every later stage reads: the classifier reads only
//! the [`FlowKey`], connection tracking reads the key plus TCP flags / ICMP details, the
//! pipeline reads the L2 and ARP fields for port security.
//!
//! # Layout
//! | module | owns |
//! |---|---|
//! | `key` | [`FlowKey`] and its encoding (v4 and v6 in one 40-byte layout), [`FAMILY_V4`] / [`FAMILY_V6`], the [`proto`], [`ethertype`] and [`tcp_flags`] numbers |
//! | `meta` | [`PacketMeta`] and its parts [`L3Kind`], [`ArpInfo`], [`FragInfo`] |
//! | `drop` | [`DropReason`], the per-frame outcome with its stable name and description |
//! | `error` | [`ParseError`] = [`Layer`] + [`ParseErrorKind`] (the `wire` error) |
//! | `extract` | [`extract`](fn@extract) / [`extract_into`]: the per-layer extraction, and (in `extract::quote`) the packets quoted in ICMP errors |
//! | `summary` | [`summary`](fn@summary) / [`Summary`]: the one-line, `tcpdump -n`-like description of a frame, and the ICMP / protocol / TCP-flag names it prints |
//!
//! Every item is re-exported here: paths are `crate::flow::X`, never the submodule's.
//!
//! # FlowKey encoding
//! IPv4 addresses are IPv4-mapped (`::ffff:a.b.c.d`); ports for TCP, UDP, SCTP, DCCP and
//! UDP-Lite; `dport = (type << 8) | code` and `sport` = the query identifier for ICMP and
//! ICMPv6; 0 elsewhere and in non-first fragments. See [`FlowKey`] for the details.
//!
//! # What this module may touch
//! It depends on [`crate::wire`] only (the checked views it parses through). It owns no
//! policy: it never decides whether a frame is allowed, keeps no state between frames and
//! knows nothing of ports, connections or rules.

mod drop;
mod error;
mod extract;
mod key;
mod meta;
mod summary;

pub use drop::DropReason;
pub use error::{Layer, ParseError, ParseErrorKind};
pub use extract::{extract, extract_into};
pub use key::{ethertype, proto, tcp_flags, FlowKey, FAMILY_V4, FAMILY_V6};
pub use meta::{ArpInfo, FragInfo, L3Kind, PacketMeta};
pub use summary::{
    icmp_name, proto_name, summary, summary_into, tcp_flags_str, KeySummary, Summary, ICMPV6_NAMES,
    ICMP_NAMES, PROTO_NAMES, TCP_FLAG_LETTERS,
};
