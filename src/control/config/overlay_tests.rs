//! Tests of the overlay's keys: `[[hosts]]`, `networks[].vni/encap`, `[overlay]`.

use super::tests::lines;
use super::*;
use crate::overlay::{Underlay, UnderlayBackend};
use crate::policy::Encap;

const TEXT: &str = r#"
[[hosts]]
name = "h1"
vtep = "10.9.0.1"

[[hosts]]
name = "h2"
vtep = "10.9.0.2"
mac = "52:54:00:00:00:02"

[overlay]
host = "h1"
vtep = "10.9.0.1"
underlay = { type = "afpacket", ifname = "ul0" }

[[networks]]
name = "n1"
vni = 1001
encap = "vxlan"

[[ports]]
name = "a"
network = "n1"
mac = "fa:16:3e:00:00:01"
host = "h1"

[[ports]]
name = "b"
network = "n1"
mac = "fa:16:3e:00:00:02"
host = "h2"
"#;

#[test]
fn overlay_keys_are_read_and_exported() {
    let c = parse_str(TEXT, "t.toml").unwrap();
    assert_eq!(c.model.local_host.as_deref(), Some("h1"));
    assert_eq!(c.model.hosts.len(), 2);
    assert_eq!(
        c.model.hosts[1].mac.map(|m| m.to_string()).as_deref(),
        Some("52:54:00:00:00:02")
    );
    let n = c.model.network("n1").unwrap();
    assert_eq!((n.vni, n.encap), (Some(1001), Some(Encap::Vxlan)));
    assert_eq!(
        c.overlay.underlay,
        Some(Underlay {
            backend: UnderlayBackend::AfPacket,
            ifname: "ul0".into()
        })
    );
    assert_eq!(c.overlay.vtep, Some("10.9.0.1".parse().unwrap()));
    assert!(!c.model.is_remote(c.model.port("a").unwrap()));
    assert!(c.model.is_remote(c.model.port("b").unwrap()));
    let out = to_toml_string(&c);
    assert_eq!(parse_str(&out, "out.toml").unwrap(), c, "{out}");
}

#[test]
fn overlay_errors_carry_lines() {
    let bad = "[[hosts]]\nname = \"h1\"\nvtep = \"nope\"\n[overlay]\nhost = \"a b\"\nvtep = \"0.0.0.0\"\nunderlay = { type = \"xdp\", ifname = \"u\" }\n[[networks]]\nname = \"n\"\nvni = 0\nencap = \"gre\"\n";
    let got = lines(bad);
    let want = [
        "t.toml:3: hosts[0].vtep: invalid VTEP address \"nope\": not an IPv4 or IPv6 address",
        "t.toml:5: overlay.host: invalid host name \"a b\"",
        "t.toml:6: overlay.vtep: invalid VTEP address \"0.0.0.0\": a VTEP is a unicast address",
        "t.toml:7: overlay.underlay.type: unknown underlay type \"xdp\"",
        "t.toml:10: networks[0].vni: invalid VNI 0",
        "t.toml:11: networks[0].encap: invalid encapsulation \"gre\"",
    ];
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (g, w) in got.iter().zip(want) {
        assert!(g.starts_with(w), "{g}\n  does not start with\n{w}");
    }
}

#[test]
fn a_remote_port_with_a_backend_is_refused_at_its_line() {
    let bad = TEXT.replace(
        "host = \"h2\"\n",
        "host = \"h2\"\nbackend = { type = \"tap\", ifname = \"tap-b\" }\n",
    );
    let got = lines(&bad);
    assert_eq!(got.len(), 1, "{got:#?}");
    let want = "t.toml:32: ports[1].backend (port \"b\"): the port is bound to host \"h2\", not to this switch's host \"h1\": a remote port is never attached here";
    assert!(
        got[0].starts_with(want),
        "{}\n  does not start with\n{want}",
        got[0]
    );
}
