//! Switch-wide settings of the model: permitted ethertypes and connection-tracking
//! limits (capacity, timeouts, fragments).
//!
//! Owns: the ranges of these settings. May not touch: groups, rules or ports; the
//! `[switch]` runtime settings (workers, burst, ...) are not part of the model and are
//! checked by the config reader (`control::config`).
//!
//! Depends on: the error types and [`crate::policy::ConntrackSettings`], inside `policy`;
//! no other sgswitch module.

use super::super::error::{ErrorKind, FieldPath};
use super::super::ConntrackSettings;
use super::Found;

/// Largest accepted conntrack capacity (entries per worker).
pub const MAX_CONNTRACK_CAPACITY: usize = 1 << 30;
/// Largest accepted conntrack timeout, in seconds (one year).
pub const MAX_TIMEOUT_SECS: u64 = 31_536_000;
/// Largest accepted fragment timeout, in seconds.
pub const MAX_FRAGMENT_TIMEOUT_SECS: u64 = 3_600;
/// Largest accepted number of pending fragments.
pub const MAX_PENDING_FRAGMENTS: usize = 1 << 20;

pub(super) fn check_permitted_ethertypes(list: &[u16], path: &FieldPath, found: &mut Found) {
    for (k, &value) in list.iter().enumerate() {
        let p = path.index(k);
        let reason = match value {
            0..=0x05ff => Some("values below 0x0600 are IEEE 802.3 lengths, not ethertypes"),
            0x0800 | 0x86dd | 0x0806 => {
                Some("IPv4, IPv6 and ARP are governed by port security and security groups")
            }
            _ => None,
        };
        if let Some(reason) = reason {
            found.push((p, ErrorKind::InvalidPermittedEthertype { value, reason }));
        } else if list[..k].contains(&value) {
            found.push((p, ErrorKind::DuplicatePermittedEthertype { value }));
        }
    }
}

/// Field names of [`ConntrackSettings`] checked, with their ranges.
pub(super) fn check_conntrack(ct: &ConntrackSettings, path: &FieldPath, found: &mut Found) {
    let mut range = |field: &str, value: u64, lo: u64, hi: u64, reason: &'static str| {
        if value < lo || value > hi {
            found.push((path.key(field), ErrorKind::OutOfRange { value, reason }));
        }
    };
    const TIMEOUT: &str = "timeouts are 1..31536000 seconds";
    range(
        "capacity",
        ct.capacity as u64,
        1,
        MAX_CONNTRACK_CAPACITY as u64,
        "capacity is 1..1073741824 connections",
    );
    range(
        "tcp_syn_timeout",
        ct.tcp_syn_timeout,
        1,
        MAX_TIMEOUT_SECS,
        TIMEOUT,
    );
    range(
        "tcp_established_timeout",
        ct.tcp_established_timeout,
        1,
        MAX_TIMEOUT_SECS,
        TIMEOUT,
    );
    range(
        "tcp_fin_timeout",
        ct.tcp_fin_timeout,
        1,
        MAX_TIMEOUT_SECS,
        TIMEOUT,
    );
    range(
        "tcp_close_timeout",
        ct.tcp_close_timeout,
        1,
        MAX_TIMEOUT_SECS,
        TIMEOUT,
    );
    range("udp_timeout", ct.udp_timeout, 1, MAX_TIMEOUT_SECS, TIMEOUT);
    range(
        "udp_stream_timeout",
        ct.udp_stream_timeout,
        1,
        MAX_TIMEOUT_SECS,
        TIMEOUT,
    );
    range(
        "icmp_timeout",
        ct.icmp_timeout,
        1,
        MAX_TIMEOUT_SECS,
        TIMEOUT,
    );
    range(
        "other_timeout",
        ct.other_timeout,
        1,
        MAX_TIMEOUT_SECS,
        TIMEOUT,
    );
    range(
        "fragment_timeout",
        ct.fragment_timeout,
        1,
        MAX_FRAGMENT_TIMEOUT_SECS,
        "the fragment timeout is 1..3600 seconds",
    );
    range(
        "max_pending_fragments",
        ct.max_pending_fragments as u64,
        0,
        MAX_PENDING_FRAGMENTS as u64,
        "at most 1048576 pending fragments",
    );
}
