//! Switch-wide settings of the model: permitted ethertypes and connection-tracking
//! limits (capacity, timeouts, fragments).
//!
//! Owns: the ranges of these settings (the conntrack ones are the `min`/`max` of
//! [`CONNTRACK_FIELDS`], next to `ConntrackSettings`; the limits are here). May not touch: groups, rules or ports; the
//! `[switch]` runtime settings (workers, burst, ...) are not part of the model and are
//! checked by the config reader (`control::config`).
//!
//! Depends on: the error types and [`crate::policy::ConntrackSettings`], inside `policy`;
//! no other sgswitch module.

use super::super::error::{ErrorKind, FieldPath};
use super::super::{ConntrackSettings, CONNTRACK_FIELDS};
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

/// The ranges of [`CONNTRACK_FIELDS`], in its order.
pub(super) fn check_conntrack(ct: &ConntrackSettings, path: &FieldPath, found: &mut Found) {
    for f in CONNTRACK_FIELDS {
        let value = (f.get)(ct);
        if value < f.min || value > f.max {
            let reason = f.reason;
            found.push((path.key(f.field), ErrorKind::OutOfRange { value, reason }));
        }
    }
}
