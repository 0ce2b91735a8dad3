//! IP protocol names and classes as Neutron knows them (neutron-lib `IP_PROTOCOL_MAP`).
//!
//! Parsing rules (security-groups.md §10-13):
//! * names are case-insensitive; `icmpv6` is the legacy alias of `ipv6-icmp`;
//! * `any`, an absent protocol, `0` and the names mapping to 0 (`hopopt`, `ip`) all mean
//!   "every IP protocol" when matching (our decision for Neutron's §11 divergence), so
//!   [`parse_protocol`] folds 0 into `None`. Neutron still *stores* `0` (the string
//!   `"0"`) rather than null, which makes a `0` rule a different rule from an `any` rule
//!   (§11, §20): [`parse_protocol_number`] keeps that distinction (`Some(0)`), for the
//!   duplicate key and for what is echoed back;
//! * integers and numeric strings 0..=255 are accepted;
//! * with ethertype IPv6, ICMP (`icmp`, `icmpv6`, `ipv6-icmp`, `1`, `58`) is stored as 58;
//! * the IPv6-only protocols (41, 43, 44, 58, 59, 60) are rejected with ethertype IPv4.
//!
//! Owns: the table of protocol names and numbers, which protocols have ports or an ICMP
//! type and code, and the IPv6-only set. May not touch: rules, specs or field paths (a
//! caller attaches a [`ProtocolError`] to the field it came from). Depends only on
//! [`super::EtherType`].

use super::EtherType;

/// Protocol names accepted in rules, with their numbers, in neutron-lib order.
pub const PROTOCOL_NAMES: &[(&str, u8)] = &[
    ("ah", 51),
    ("dccp", 33),
    ("egp", 8),
    ("esp", 50),
    ("gre", 47),
    ("hopopt", 0),
    ("icmp", 1),
    ("igmp", 2),
    ("ip", 0),
    ("ipip", 4),
    ("ipv6-encap", 41),
    ("ipv6-frag", 44),
    ("ipv6-icmp", 58),
    ("icmpv6", 58),
    ("ipv6-nonxt", 59),
    ("ipv6-opts", 60),
    ("ipv6-route", 43),
    ("ospf", 89),
    ("pgm", 113),
    ("rsvp", 46),
    ("sctp", 132),
    ("tcp", 6),
    ("udp", 17),
    ("udplite", 136),
    ("vrrp", 112),
];

/// ICMP for IPv4.
pub const ICMP: u8 = 1;
/// ICMP for IPv6.
pub const ICMPV6: u8 = 58;

/// Protocols valid only with ethertype IPv6 (SGDB: "Invalid ethertype IPv4 for protocol").
pub const IPV6_ONLY: &[u8] = &[41, 43, 44, 58, 59, 60];

/// Protocols whose rules may carry an L4 destination port range.
pub const PORT_PROTOCOLS: &[u8] = &[6, 17, 33, 132, 136];

/// A protocol as written by the user, before validation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ProtocolInput<'a> {
    /// A name, `"any"` or a numeric string.
    Text(&'a str),
    /// An integer.
    Number(i64),
}

/// Why a protocol was rejected.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ProtocolError {
    /// Not a known name, not a number in 0..=255.
    Unknown,
    /// An IPv6-only protocol with ethertype IPv4; carries the protocol number.
    IPv6Only(u8),
}

/// Parse and canonicalise a rule's protocol for `ethertype`, for matching: `Ok(None)` =
/// any protocol (`any`, and also `0`, `ip`, `hopopt`).
pub fn parse_protocol(
    input: ProtocolInput<'_>,
    ethertype: EtherType,
) -> Result<Option<u8>, ProtocolError> {
    Ok(parse_protocol_number(input, ethertype)?.filter(|&n| n != 0))
}

/// Parse and canonicalise a rule's protocol for `ethertype` as Neutron keys it:
/// `Ok(None)` = `any` (stored null), `Ok(Some(0))` = written as `0`, `"0"`, `ip` or
/// `hopopt` (stored `"0"`; matches every protocol too, see [`parse_protocol`]).
pub fn parse_protocol_number(
    input: ProtocolInput<'_>,
    ethertype: EtherType,
) -> Result<Option<u8>, ProtocolError> {
    let number: u8 = match input {
        ProtocolInput::Number(n) => u8::try_from(n).map_err(|_| ProtocolError::Unknown)?,
        ProtocolInput::Text(text) => {
            let t = text.trim();
            if t.eq_ignore_ascii_case("any") {
                return Ok(None);
            }
            if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
                t.parse::<u8>().map_err(|_| ProtocolError::Unknown)?
            } else {
                PROTOCOL_NAMES
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(t))
                    .map(|&(_, n)| n)
                    .ok_or(ProtocolError::Unknown)?
            }
        }
    };
    match ethertype {
        EtherType::IPv6 if number == ICMP => Ok(Some(ICMPV6)),
        EtherType::IPv4 if IPV6_ONLY.contains(&number) => Err(ProtocolError::IPv6Only(number)),
        _ => Ok(Some(number)),
    }
}

/// The canonical name of a protocol number, if it has one (`ipv6-icmp` for 58).
pub fn protocol_name(number: u8) -> Option<&'static str> {
    if number == ICMPV6 {
        return Some("ipv6-icmp");
    }
    PROTOCOL_NAMES
        .iter()
        .find(|&&(_, n)| n == number && n != 0)
        .map(|&(name, _)| name)
}

/// Human form of an optional protocol: `any`, a name, or the number.
pub fn protocol_display(protocol: Option<u8>) -> String {
    match protocol {
        None => "any".to_string(),
        Some(n) => protocol_name(n)
            .map(str::to_string)
            .unwrap_or_else(|| n.to_string()),
    }
}

/// Whether rules of this protocol may have a destination port range.
pub fn has_ports(protocol: u8) -> bool {
    PORT_PROTOCOLS.contains(&protocol)
}

/// Whether this is ICMP or ICMPv6 (port_range_min/max are the type and code).
pub fn is_icmp(protocol: u8) -> bool {
    protocol == ICMP || protocol == ICMPV6
}

#[cfg(test)]
mod tests {
    use super::*;
    use EtherType::{IPv4, IPv6};
    use ProtocolInput::{Number, Text};

    #[test]
    fn names_case_insensitive() {
        assert_eq!(parse_protocol(Text("TCP"), IPv4), Ok(Some(6)));
        assert_eq!(parse_protocol(Text("Udp"), IPv6), Ok(Some(17)));
        assert_eq!(parse_protocol(Text("udplite"), IPv4), Ok(Some(136)));
        assert_eq!(
            parse_protocol(Text("tcpx"), IPv4),
            Err(ProtocolError::Unknown)
        );
        assert_eq!(parse_protocol(Text(""), IPv4), Err(ProtocolError::Unknown));
    }

    #[test]
    fn any_and_zero() {
        for input in [
            Text("any"),
            Text("ANY"),
            Text("0"),
            Number(0),
            Text("ip"),
            Text("hopopt"),
        ] {
            assert_eq!(parse_protocol(input, IPv4), Ok(None), "{input:?}");
        }
    }

    #[test]
    fn zero_is_kept_apart_from_any_in_the_neutron_number() {
        for input in [
            Text("0"),
            Number(0),
            Text("ip"),
            Text("HOPOPT"),
            Text(" 0 "),
        ] {
            assert_eq!(parse_protocol_number(input, IPv4), Ok(Some(0)), "{input:?}");
            assert_eq!(parse_protocol_number(input, IPv6), Ok(Some(0)), "{input:?}");
        }
        assert_eq!(parse_protocol_number(Text("any"), IPv4), Ok(None));
        assert_eq!(parse_protocol_number(Text("tcp"), IPv4), Ok(Some(6)));
        assert_eq!(parse_protocol_number(Text("icmp"), IPv6), Ok(Some(58)));
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_protocol(Number(6), IPv4), Ok(Some(6)));
        assert_eq!(parse_protocol(Text("255"), IPv4), Ok(Some(255)));
        assert_eq!(
            parse_protocol(Number(256), IPv4),
            Err(ProtocolError::Unknown)
        );
        assert_eq!(
            parse_protocol(Number(-1), IPv4),
            Err(ProtocolError::Unknown)
        );
        assert_eq!(
            parse_protocol(Text("256"), IPv4),
            Err(ProtocolError::Unknown)
        );
        assert_eq!(
            parse_protocol(Text("-1"), IPv4),
            Err(ProtocolError::Unknown)
        );
    }

    #[test]
    fn icmp_ipv6_canonical() {
        assert_eq!(parse_protocol(Text("icmp"), IPv6), Ok(Some(58)));
        assert_eq!(parse_protocol(Number(1), IPv6), Ok(Some(58)));
        assert_eq!(parse_protocol(Text("icmpv6"), IPv6), Ok(Some(58)));
        assert_eq!(parse_protocol(Text("icmp"), IPv4), Ok(Some(1)));
    }

    #[test]
    fn ipv6_only() {
        for p in [
            "ipv6-icmp",
            "icmpv6",
            "58",
            "ipv6-encap",
            "ipv6-frag",
            "ipv6-nonxt",
            "ipv6-opts",
            "ipv6-route",
            "41",
        ] {
            assert!(
                matches!(
                    parse_protocol(Text(p), IPv4),
                    Err(ProtocolError::IPv6Only(_))
                ),
                "{p}"
            );
            assert!(parse_protocol(Text(p), IPv6).is_ok(), "{p}");
        }
    }

    #[test]
    fn names_round_trip() {
        for n in 1..=255u8 {
            if let Some(name) = protocol_name(n) {
                let et = if IPV6_ONLY.contains(&n) { IPv6 } else { IPv4 };
                assert_eq!(parse_protocol(Text(name), et), Ok(Some(n)));
            }
        }
        assert_eq!(protocol_display(None), "any");
        assert_eq!(protocol_display(Some(58)), "ipv6-icmp");
        assert_eq!(protocol_display(Some(200)), "200");
    }
}
