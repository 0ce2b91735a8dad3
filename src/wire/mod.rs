//! Zero-copy typed views over frame bytes.
//!
//! # Purpose
//! Every protocol header the switch looks at has a view type here: a thin wrapper
//! `Packet<T: AsRef<[u8]>>` (or `Frame` for Ethernet) around a borrowed byte buffer, with
//! accessors that read big-endian fields at fixed offsets. Nothing is copied, nothing is
//! allocated, and no struct is ever cast over the bytes: each module keeps its offsets in
//! a private `field` table and reads them with [`Field`] ranges.
//!
//! | module | header | reference |
//! |---|---|---|
//! | [`mac`] | [`Mac`], the one MAC address type: text forms, broadcast/multicast/zero | IEEE 802 (EUI-48) |
//! | [`ethernet`] | Ethernet II | IEEE 802.3 |
//! | [`vlan`] | 802.1Q / 802.1ad tag (after the outer ethertype) | IEEE 802.1Q |
//! | [`arp`] | ARP / RARP, Ethernet + IPv4 only | RFC 826, RFC 903 |
//! | [`ipv4`] | IPv4 header and options | RFC 791 |
//! | [`ipv6`] | IPv6 fixed header, extension headers (HBH, routing, dest opts, fragment, AH) | RFC 8200, RFC 4302 |
//! | [`tcp`] | TCP header | RFC 9293 |
//! | [`udp`] | UDP and UDP-Lite | RFC 768, RFC 3828 |
//! | [`ports`] | first 4 bytes of SCTP / DCCP (source and destination port) | RFC 9260, RFC 4340 |
//! | [`icmp`] | ICMP (v4) | RFC 792 |
//! | [`icmpv6`] | ICMPv6 | RFC 4443, RFC 4861 |
//! | [`vxlan`] | VXLAN header (UDP 4789) | RFC 7348 |
//! | [`geneve`] | Geneve header and options (UDP 6081) | RFC 8926 |
//!
//! # The contract of every view
//! * `new_unchecked(buffer)` wraps without looking. Accessors on an unchecked view may
//!   panic if the buffer is too short; use it only on bytes already checked.
//! * `check_len()` validates everything the accessors rely on: the fixed header is present,
//!   and every length field that an accessor uses to compute a slice (IPv4 IHL and total
//!   length, IPv6 payload length, TCP data offset, UDP length, extension header length)
//!   lies inside the buffer. **After `check_len()` returned `Ok`, no accessor of that view
//!   can panic, whatever the bytes are.** Some views add protocol checks (`check_options`
//!   for IPv4, `check_ethernet_ipv4` for ARP) that `new_checked` also runs.
//! * `new_checked(buffer)` = `new_unchecked` + all checks.
//!
//! The struct, its three constructors and the plain field readers are declared once, by
//! `typed_view!` and `fields!` below (each reader is an `#[inline]` method reading
//! its field through `Read`); what differs between views — `check_len` for the views
//! with length fields, slices, flags — is written out in each module.
//!
//! The parser in [`crate::flow`] uses only checked views, so it cannot panic on any input;
//! `tests/parse_props.rs` feeds it random and mutated frames to keep it so.
//!
//! # Invariants
//! * No `unsafe` in this module tree (`forbid(unsafe_code)` below).
//! * No allocation, no loops that are not bounded by the buffer length or a constant.
//! * Checksums are not verified: the switch forwards bytes unchanged and the receiving host
//!   verifies them; verifying would cost a pass over every payload.
//!
//! # Owns, and may not touch
//! This module tree owns the byte layout of every header the switch reads (each view's
//! private `field` table, its `check_*` rules, the protocol numbers a header needs to be
//! walked), the per-header error kind [`Error`], the one MAC type [`Mac`], and the
//! macros every view is declared with (`typed_view!`, `fields!`, `type_numbers!`, and
//! `named_enum!`, which [`crate::flow`] also uses for its `DropReason`). It is the bottom
//! of the layering (wire → flow → policy → … → CLI): it may use `core` (and implement
//! `std::error::Error`) and nothing of this crate outside `wire` — no `use crate::` line
//! in it names another module. May not touch: policy or any per-frame decision (a view
//! says what a header contains, never whether that is allowed), connection or fragment
//! state, I/O, allocation or `unsafe` (see *Invariants*), and no accessor may panic
//! after `check_len` returned `Ok` (see *The contract of every view*).
//!
//! # Rejected options
//! * Casting `#[repr(packed)]` structs over the buffer (DPDK style): needs `unsafe`, invites
//!   unaligned reads and endianness slips; reading at offsets compiles to the same loads.
//! * Using `etherparse` in the data path: fine as a parser, but its error and slice types
//!   would leak into [`crate::flow`], and it does not produce our fixed key layout in one
//!   pass. It stays a dev-dependency to compare against (`benches/parse.rs`).
//! * Writable views (setters): the switch never rewrites frames; tests build frames as
//!   annotated byte arrays instead. The one exception is encapsulation: [`vxlan::emit`]
//!   and [`geneve::emit`] write those headers (into a caller's buffer, no allocation),
//!   once per tunnel destination into the overlay's header template.
#![forbid(unsafe_code)]

pub mod arp;
pub mod ethernet;
pub mod geneve;
pub mod icmp;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod mac;
pub mod ports;
pub mod tcp;
pub mod udp;
pub mod vlan;
pub mod vxlan;

pub use mac::{Mac, ParseMacError};

/// A fixed field of a header: a byte range from the start of the header.
pub type Field = core::ops::Range<usize>;
/// The rest of a header or packet from an offset.
pub type Rest = core::ops::RangeFrom<usize>;

/// Declare a field-less enum whose variants each carry a fixed name: `as_str`, `ALL` (the
/// variants in declaration order) and `Display` (the name). With
/// `Variant = ("name", "description"),` it also gets `describe`.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $enum:ident {
            $($(#[$vmeta:meta])* $variant:ident = $name:literal,)+
        }
    ) => {
        $(#[$meta])*
        $vis enum $enum {
            $($(#[$vmeta])* $variant,)+
        }

        impl $enum {
            /// Every variant, in declaration order.
            pub const ALL: [$enum; [$($name),+].len()] = [$($enum::$variant),+];

            /// The stable kebab-case name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($enum::$variant => $name,)+
                }
            }
        }

        impl core::fmt::Display for $enum {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
    (
        $(#[$meta:meta])*
        $vis:vis enum $enum:ident {
            $($(#[$vmeta:meta])* $variant:ident = ($name:literal, $desc:literal),)+
        }
    ) => {
        $crate::wire::named_enum! {
            $(#[$meta])*
            $vis enum $enum {
                $($(#[$vmeta])* $variant = $name,)+
            }
        }

        impl $enum {
            /// One-line human description.
            pub const fn describe(self) -> &'static str {
                match self {
                    $($enum::$variant => $desc,)+
                }
            }
        }
    };
}
pub(crate) use named_enum;

named_enum! {
    /// What is wrong with a header. `Copy`, no payload: it is the per-frame error kind that
    /// [`crate::flow::ParseError`] pairs with the layer where it happened.
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
    pub enum Error {
        /// The buffer ends before the header does.
        Truncated = "truncated",
        /// The IP version nibble does not match the ethertype.
        BadVersion = "bad-version",
        /// IPv4 IHL below 5 (the header would be shorter than 20 bytes).
        BadIhl = "bad-ihl",
        /// IPv4 total length shorter than the header, or longer than the bytes available.
        BadTotalLength = "bad-total-length",
        /// IPv6 payload length longer than the bytes available.
        BadPayloadLength = "bad-payload-length",
        /// An IPv4 option (or IPv6 HBH/destination option) with a length of 1 or one that
        /// runs past the end of its header.
        BadOption = "bad-option",
        /// An IPv4 option with a length byte of 0 (would loop forever in a naive walker).
        ZeroLengthOption = "zero-length-option",
        /// More IPv6 extension headers than the parser walks.
        TooManyExtHeaders = "too-many-ext-headers",
        /// A malformed IPv6 extension header (hop-by-hop not first, AH too short, ...).
        BadExtHeader = "bad-ext-header",
        /// TCP data offset below 5 or past the end of the segment.
        BadDataOffset = "bad-data-offset",
        /// UDP length below 8 or past the end of the IP payload (UDP-Lite: bad coverage).
        BadUdpLength = "bad-udp-length",
        /// ARP for anything but Ethernet hardware and IPv4 protocol addresses.
        UnsupportedArp = "unsupported-arp",
        /// More than two VLAN tags.
        TooManyVlanTags = "too-many-vlan-tags",
    }
}

impl std::error::Error for Error {}

/// Read a big-endian `u16` at a 2-byte field. Panics only if `f` is out of bounds, which
/// a checked view rules out.
#[inline(always)]
pub(crate) fn read_u16(b: &[u8], f: Field) -> u16 {
    let s = &b[f];
    u16::from_be_bytes([s[0], s[1]])
}

/// Read a big-endian `u32` at a 4-byte field (see [`read_u16`]).
#[inline(always)]
pub(crate) fn read_u32(b: &[u8], f: Field) -> u32 {
    let s = &b[f];
    u32::from_be_bytes([s[0], s[1], s[2], s[3]])
}

/// Copy a fixed-size field into an array (see [`read_u16`]).
#[inline(always)]
pub(crate) fn read_array<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&b[at..at + N]);
    out
}

/// A value read from a header at a fixed place: one byte at an offset (`u8`), a
/// big-endian integer over a [`Field`] (`u16`, `u32`), or bytes copied from an offset
/// (`[u8; N]`, [`Mac`]). What the [`fields!`] accessors call; panics only where the `read_*`
/// functions do, which a checked view rules out.
pub(crate) trait Read<At>: Sized {
    fn read(b: &[u8], at: At) -> Self;
}

impl Read<usize> for u8 {
    #[inline(always)]
    fn read(b: &[u8], at: usize) -> u8 {
        b[at]
    }
}

impl Read<Field> for u16 {
    #[inline(always)]
    fn read(b: &[u8], at: Field) -> u16 {
        read_u16(b, at)
    }
}

impl Read<Field> for u32 {
    #[inline(always)]
    fn read(b: &[u8], at: Field) -> u32 {
        read_u32(b, at)
    }
}

impl<const N: usize> Read<usize> for [u8; N] {
    #[inline(always)]
    fn read(b: &[u8], at: usize) -> [u8; N] {
        read_array(b, at)
    }
}

impl Read<usize> for Mac {
    #[inline(always)]
    fn read(b: &[u8], at: usize) -> Mac {
        Mac(read_array(b, at))
    }
}

/// `Ok` when `b` holds at least `len` bytes, else [`Error::Truncated`].
#[inline(always)]
pub(crate) fn check_min_len(b: &[u8], len: usize) -> Result<(), Error> {
    if b.len() < len {
        Err(Error::Truncated)
    } else {
        Ok(())
    }
}

/// Declare `pub const NAME: u8 = value;` for every `NAME = value`, written as a table: one
/// line per group of related numbers, the group's doc on each of its constants. For the
/// message-type numbers of [`icmp`] and [`icmpv6`].
macro_rules! type_numbers {
    ($($(#[$doc:meta])* $($name:ident = $value:literal),+;)+) => {
        $($crate::wire::type_numbers!(@group { $(#[$doc])* } $($name = $value),+);)+
    };
    (@group $docs:tt $($name:ident = $value:literal),+) => {
        $($crate::wire::type_numbers!(@one $docs $name = $value);)+
    };
    (@one { $(#[$doc:meta])* } $name:ident = $value:literal) => {
        $(#[$doc])*
        pub const $name: u8 = $value;
    };
}
pub(crate) use type_numbers;

/// Declare a read-only typed view `$name<T: AsRef<[u8]>>` over a byte buffer, with
/// `new_unchecked`, `new_checked` and `into_inner` (the contract in the module doc).
///
/// * `typed_view!(Packet, len = HEADER_LEN)`: a fixed-size view; its `check_len` asks for
///   `HEADER_LEN` bytes (`Truncated`) and `new_checked` runs it (then the checks listed in
///   `then = [..]`, if any).
/// * `typed_view!(Packet, checks = [check_len, check_options])`: the view writes its own
///   checks; `new_checked` runs them in the order given.
macro_rules! typed_view {
    ($(#[$doc:meta])* $name:ident, len = $len:expr $(, then = [$($then:ident),+])?) => {
        $crate::wire::typed_view!(
            $(#[$doc])* $name, checks = [check_len $($(, $then)+)?]
        );

        impl<T: AsRef<[u8]>> $name<T> {
            #[doc = concat!(
                "`Ok` when the buffer holds at least [`", stringify!($len),
                "`] bytes; then no accessor can panic."
            )]
            #[inline]
            pub fn check_len(&self) -> Result<(), $crate::wire::Error> {
                $crate::wire::check_min_len(self.buffer.as_ref(), $len)
            }
        }
    };
    ($(#[$doc:meta])* $name:ident, checks = [$($check:ident),+]) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name<T: AsRef<[u8]>> {
            buffer: T,
        }

        impl<T: AsRef<[u8]>> $name<T> {
            /// Wrap a buffer without checking it (accessors may panic on a short buffer).
            #[inline]
            pub const fn new_unchecked(buffer: T) -> Self {
                $name { buffer }
            }

            #[doc = concat!(
                "Wrap and run",
                $(" [`", stringify!($check), "`](Self::", stringify!($check), ")",)+
                ", in this order."
            )]
            #[inline]
            pub fn new_checked(buffer: T) -> Result<Self, $crate::wire::Error> {
                let p = Self::new_unchecked(buffer);
                $(p.$check()?;)+
                Ok(p)
            }

            /// The wrapped buffer.
            #[inline]
            pub fn into_inner(self) -> T {
                self.buffer
            }
        }
    };
}
pub(crate) use typed_view;

/// Declare `#[inline]` accessors of a typed view, one per line:
/// `name: u16 = field::X;` reads the field as it is ([`Read`]);
/// `name: u8 = field::X, |raw: u16| expr;` reads it as `raw` and returns `expr`.
macro_rules! fields {
    ($(
        $(#[$doc:meta])*
        $name:ident: $ty:ty = $at:expr $(, |$v:ident: $raw:ty| $map:expr)?;
    )+) => {
        $(
            $(#[$doc])*
            #[inline]
            pub fn $name(&self) -> $ty {
                $crate::wire::fields!(@read self.buffer.as_ref(), $ty, $at $(, |$v: $raw| $map)?)
            }
        )+
    };
    (@read $b:expr, $ty:ty, $at:expr) => {
        <$ty as $crate::wire::Read<_>>::read($b, $at)
    };
    (@read $b:expr, $ty:ty, $at:expr, |$v:ident: $raw:ty| $map:expr) => {{
        let $v = <$raw as $crate::wire::Read<_>>::read($b, $at);
        $map
    }};
}
pub(crate) use fields;

/// Walk a TLV option area in which a single byte `pad1` (and, when given, `eol`) has no
/// length byte and every other option is `type, len, data` with `len` counting either the
/// whole option (`len_includes_header`, IPv4) or only its data (IPv6).
///
/// Bounded: every step advances at least one byte. Used by [`ipv4`] and [`ipv6`].
pub(crate) fn walk_tlv_options(
    opts: &[u8],
    pad1: u8,
    eol: Option<u8>,
    len_includes_header: bool,
) -> Result<(), Error> {
    let mut i = 0usize;
    while i < opts.len() {
        let kind = opts[i];
        if Some(kind) == eol {
            // End of option list: the rest is padding.
            return Ok(());
        }
        if kind == pad1 {
            i += 1;
            continue;
        }
        let Some(&len) = opts.get(i + 1) else {
            return Err(Error::BadOption);
        };
        let total = if len_includes_header {
            match len {
                0 => return Err(Error::ZeroLengthOption),
                1 => return Err(Error::BadOption),
                n => n as usize,
            }
        } else {
            len as usize + 2
        };
        if total > opts.len() - i {
            return Err(Error::BadOption);
        }
        i += total;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tlv_walk_ipv4_style() {
        // NOP, NOP, option 0x44 (timestamp) len 4, EOL, garbage after EOL is padding.
        assert_eq!(
            walk_tlv_options(&[1, 1, 0x44, 4, 0, 0, 0, 0xff], 1, Some(0), true),
            Ok(())
        );
        assert_eq!(
            walk_tlv_options(&[0x44, 0], 1, Some(0), true),
            Err(Error::ZeroLengthOption)
        );
        assert_eq!(
            walk_tlv_options(&[0x44, 1], 1, Some(0), true),
            Err(Error::BadOption)
        );
        assert_eq!(
            walk_tlv_options(&[1, 0x44, 8, 0], 1, Some(0), true),
            Err(Error::BadOption)
        );
        // A type byte with no room for its length byte.
        assert_eq!(
            walk_tlv_options(&[1, 1, 1, 0x44], 1, Some(0), true),
            Err(Error::BadOption)
        );
    }

    #[test]
    fn tlv_walk_ipv6_style() {
        // Pad1, PadN with 1 data byte, router alert (5) with 2 data bytes.
        assert_eq!(
            walk_tlv_options(&[0, 1, 1, 0, 5, 2, 0, 0], 0, None, false),
            Ok(())
        );
        // Zero data length is fine in IPv6 (PadN of 2 bytes).
        assert_eq!(walk_tlv_options(&[1, 0, 1, 0], 0, None, false), Ok(()));
        assert_eq!(
            walk_tlv_options(&[1, 3, 0, 0], 0, None, false),
            Err(Error::BadOption)
        );
    }

    #[test]
    fn readers() {
        let b = [0x12, 0x34, 0x56, 0x78, 0x9a];
        assert_eq!(read_u16(&b, 0..2), 0x1234);
        assert_eq!(read_u32(&b, 1..5), 0x3456_789a);
        assert_eq!(read_array::<3>(&b, 2), [0x56, 0x78, 0x9a]);
        assert_eq!(Error::BadIhl.to_string(), "bad-ihl");
    }
}
