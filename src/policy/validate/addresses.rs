//! Address and prefix parsing: MAC addresses, CIDRs (Neutron's forms: a network or a bare
//! address, host bits kept), a port's fixed IPs, and the address-family check of a prefix
//! against a rule's ethertype.
//!
//! Owns: the text forms of addresses and what a port may be assigned. May not touch:
//! specs, field paths or [`super::super::ErrorKind`] — every function returns the reason
//! as text, and the caller attaches it to the field it came from; no uniqueness checks
//! (those need the other ports, see [`super::ports`]).
//!
//! Depends on: the model's `EtherType` and MAC type, inside `policy`; no other sgswitch
//! module.

use std::net::IpAddr;

use ipnet::IpNet;

use super::super::EtherType;
use crate::wire::{Mac, ParseMacError};

/// Parse a MAC ([`Mac`]'s text forms) that a port (or an allowed address pair) may use:
/// see [`check_port_mac`]. Returns the reason on failure.
pub(super) fn parse_port_mac(text: &str) -> Result<Mac, &'static str> {
    let mac: Mac = text.parse().map_err(ParseMacError::reason)?;
    check_port_mac(&mac)?;
    Ok(mac)
}

/// Check that a MAC may be assigned to a port (or an allowed address pair): not
/// multicast / broadcast, not all zeros.
pub fn check_port_mac(mac: &Mac) -> Result<(), &'static str> {
    if mac.is_multicast() {
        return Err("multicast and broadcast addresses cannot be assigned to a port");
    }
    if mac.is_zero() {
        return Err("the all-zero address cannot be assigned to a port");
    }
    Ok(())
}

/// Parse a CIDR the Neutron way: `a.b.c.d/n`, `x::y/n`, or a bare address (→ /32 or
/// /128). Host bits are kept (call `trunc()` for the network). Returns the reason on
/// failure.
pub fn parse_cidr(text: &str) -> Result<IpNet, String> {
    let t = text.trim();
    if t != text {
        return Err("leading or trailing whitespace".to_string());
    }
    if t.contains('/') {
        t.parse::<IpNet>().map_err(|_| {
            "expected an IPv4 or IPv6 network such as 10.0.0.0/24 or 2001:db8::/64 (prefix length up to 32 / 128)"
                .to_string()
        })
    } else {
        t.parse::<IpAddr>()
            .map(IpNet::from)
            .map_err(|_| "expected an IPv4 or IPv6 address or network".to_string())
    }
}

/// Parse a port's fixed IP: a bare unicast address.
pub(super) fn parse_fixed_ip(text: &str) -> Result<IpAddr, String> {
    if text.contains('/') {
        return Err("expected an address without prefix length".to_string());
    }
    let ip: IpAddr = text
        .parse()
        .map_err(|_| "expected an IPv4 or IPv6 address".to_string())?;
    if ip.is_unspecified() {
        return Err("the unspecified address cannot be assigned to a port".to_string());
    }
    if ip.is_multicast() {
        return Err("a multicast address cannot be assigned to a port".to_string());
    }
    if let IpAddr::V4(v4) = ip {
        if v4.is_broadcast() {
            return Err("the broadcast address cannot be assigned to a port".to_string());
        }
    }
    Ok(ip)
}

pub(super) fn family_matches(net: &IpNet, et: EtherType) -> bool {
    matches!(
        (net, et),
        (IpNet::V4(_), EtherType::IPv4) | (IpNet::V6(_), EtherType::IPv6)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MAC parsing and formatting moved to `wire::mac` (`mac_parsing`); the port rules
    /// stay here.
    #[test]
    fn port_mac_rules() {
        assert!(check_port_mac(&Mac([0x01, 0, 0x5e, 0, 0, 1])).is_err());
        assert!(check_port_mac(&Mac([0xff; 6])).is_err());
        assert!(check_port_mac(&Mac([0; 6])).is_err());
        assert!(check_port_mac(&Mac([0x02, 0, 0, 0, 0, 1])).is_ok());
        assert_eq!(
            parse_port_mac("fa:16:3e:0A:0b:ff"),
            Ok(Mac([0xfa, 0x16, 0x3e, 0x0a, 0x0b, 0xff]))
        );
        assert_eq!(
            parse_port_mac("fa163e0a0bff"),
            Err("expected six hex octets like fa:16:3e:00:00:01")
        );
    }

    #[test]
    fn cidr_parsing() {
        assert_eq!(parse_cidr("10.0.0.7").unwrap().to_string(), "10.0.0.7/32");
        assert_eq!(
            parse_cidr("10.0.0.7/24").unwrap().to_string(),
            "10.0.0.7/24"
        );
        assert_eq!(
            parse_cidr("2001:DB8::1").unwrap().to_string(),
            "2001:db8::1/128"
        );
        for bad in [
            "",
            " 10.0.0.0/8",
            "10.0.0.0/8 ",
            "10.0.0.0/-1",
            "10/8",
            "010.0.0.1",
            "::/200",
        ] {
            assert!(parse_cidr(bad).is_err(), "{bad:?}");
        }
    }
}
