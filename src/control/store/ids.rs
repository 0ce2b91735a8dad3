//! Ids, random MACs and time for the store: [`Id`] (a v4 UUID kept as a number), Neutron
//! MAC addresses, and RFC 3339 timestamps.
//!
//! Owns: generating, parsing and showing ids and times. May not touch: the state, the
//! model or the file format (an [`Id`] serialises as its hyphenated text; how a time is
//! stored — epoch seconds — is [`super::state::ObjMeta`]'s business).
//!
//! UUIDs come from the `uuid` crate (random bytes from `getrandom`, which it brings),
//! RFC 3339 text from `humantime`. Both replaced hand-written code (a `/dev/urandom`
//! reader with a clock fallback, and a civil-date conversion); `humantime` was chosen
//! over `time` and `jiff` as the leanest crate that writes `created_at` exactly as
//! before (`2026-11-25T18:00:00Z`: whole seconds, `Z`). Build time and binary size of
//! the swap are in the issue-12 note of the branch `store-house`.
//!
//! Depends on: `uuid`, `humantime` and `serde`; nothing else in the crate.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::wire::Mac;

/// A UUID, stored as a number (cheap to copy and compare) and shown hyphenated.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct Id(pub u128);

impl Id {
    /// A random (version 4) UUID.
    pub fn random() -> Id {
        Id(Uuid::new_v4().as_u128())
    }

    /// Parse the hyphenated (or plain 32-hex-digit) form; `None` if it is not a UUID.
    /// (`uuid` also reads the braced and `urn:uuid:` forms; Neutron ids never take them,
    /// so they stay refused.)
    pub fn parse(text: &str) -> Option<Id> {
        if !matches!(text.len(), 32 | 36) {
            return None;
        }
        Uuid::try_parse(text).ok().map(|u| Id(u.as_u128()))
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        Uuid::from_u128(self.0).hyphenated().fmt(f)
    }
}

impl Serialize for Id {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Id, D::Error> {
        let text = String::deserialize(d)?;
        Id::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("invalid id {text:?}")))
    }
}

/// A random (version 4) UUID, lower-case hyphenated.
pub fn new_uuid() -> String {
    Id::random().to_string()
}

/// A random locally-administered-style Neutron MAC (`fa:16:3e:xx:xx:xx`).
pub fn random_mac() -> String {
    // Bytes 0..6 of a v4 UUID are random (the version and variant bits are 6 and 8).
    let b = Uuid::new_v4().into_bytes();
    Mac([0xfa, 0x16, 0x3e, b[0], b[1], b[2]]).to_string()
}

/// The last second RFC 3339 (four-digit years) can show: 9999-12-31T23:59:59Z.
const MAX_RFC3339_SECS: u64 = 253_402_300_799;

/// Format seconds since the Unix epoch as RFC 3339 UTC (`2026-11-25T18:00:00Z`). Times
/// after the year 9999 (only a hand-edited state file holds them) show as its last
/// second.
pub fn rfc3339(secs: u64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(secs.min(MAX_RFC3339_SECS));
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The current time in seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The current time, RFC 3339 UTC.
pub fn now_rfc3339() -> String {
    rfc3339(now_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_629_600), "2026-11-25T18:00:00Z");
        assert_eq!(rfc3339(MAX_RFC3339_SECS), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(u64::MAX), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn uuids_are_v4_and_distinct() {
        let a = new_uuid();
        let b = new_uuid();
        assert_eq!(Id::parse(&a).unwrap().to_string(), a);
        assert!(Id::parse("web").is_none());
        assert!(Id::parse("0000000-00000-4000-8000-000000000000").is_none());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
    }

    #[test]
    fn id_text_forms_are_the_neutron_ones() {
        let hyph = "0123abcd-4567-4abc-8def-0123456789ab";
        let id = Id::parse(hyph).unwrap();
        assert_eq!(id.0, 0x0123abcd_4567_4abc_8def_0123456789ab);
        assert_eq!(Id::parse(&hyph.to_uppercase()), Some(id));
        assert_eq!(Id::parse(&hyph.replace('-', "")), Some(id));
        assert_eq!(id.to_string(), hyph);
        assert!(Id::parse(&format!("{{{hyph}}}")).is_none());
        assert!(Id::parse(&format!("urn:uuid:{hyph}")).is_none());
        assert!(Id::parse("0123abcd4567-4abc-8def-0123456789ab-").is_none());
        assert!(Id::parse("0123abcd-4567-4abc-8def-0123456789ag").is_none());
        assert!(Id::parse("0123abcd-4567-4abc-8def0-123456789ab").is_none());
    }
}
