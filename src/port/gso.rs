//! Offload metadata ([`Offload`]: the virtio-net header of a frame, as data) and software
//! segmentation of GSO superframes ([`resolve`]).
//!
//! # What it does
//! * [`Offload::from_vnet`] / [`Offload::to_vnet`]: the 10-byte `struct virtio_net_hdr`
//!   (host byte order, which tun uses without `TUNSETVNETLE`) to and from a plain struct
//!   that travels beside the frame ([`super::FrameBatch::offload`]).
//! * [`check`]: is the metadata valid for this frame? A GSO type must be one we announced
//!   (TCPv4, TCPv6, UDP L4) and match the frame's L3/L4 (IPv4/IPv6, TCP/UDP, directly or
//!   after IPv6 extension headers; one VLAN tag is allowed), `gso_size` non-zero, the
//!   checksum partial (`NEEDS_CSUM`) with `csum_start` the L4 header and `csum_offset` its
//!   checksum field, `hdr_len` within the frame, no ECN bit, and the IP length equal to
//!   the frame (no BIG TCP: `tot_len` 0 or a jumbo payload are refused). A partial checksum
//!   without GSO needs only its offsets inside the frame.
//! * [`resolve`]: what a destination that cannot take metadata receives: the frame as it
//!   is (no metadata), the frame with its checksum completed (partial checksum, no GSO), or
//!   the segments of a superframe, as the kernel's `tcp_gso_segment`/`__udp_gso_segment`
//!   make them: the payload cut in `gso_size` pieces; IPv4 total length, id (+1 per
//!   segment) and header checksum, IPv6 payload length; TCP sequence number (+ bytes
//!   before), FIN and PSH on the last segment only, CWR on the first only; UDP length; full
//!   L4 checksums (pseudo-header included).
//!
//! # Owns, and may not touch
//! Owns the virtio-net header layout, its validation and segmentation. It reads only the
//! header offsets it needs (Ethernet/VLAN, IPv4/IPv6 chain, TCP data offset): it is not
//! the parser (`flow::extract`), and decides nothing about policy. No I/O, no allocation
//! on the packet path (segments go into a caller's buffer). Uses only `std`.

/// Size of `struct virtio_net_hdr` (without `num_buffers`), the tun default.
pub const VNET_HDR_LEN: usize = 10;

pub const F_NEEDS_CSUM: u8 = 1;
pub const GSO_NONE: u8 = 0;
pub const GSO_TCPV4: u8 = 1;
pub const GSO_UDP: u8 = 3;
pub const GSO_TCPV6: u8 = 4;
pub const GSO_UDP_L4: u8 = 5;
pub const GSO_ECN: u8 = 0x80;

/// A frame's offload metadata (the fields of `struct virtio_net_hdr`). The default, all
/// zero, is "nothing to do": checksums complete, no segmentation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offload {
    pub flags: u8,
    pub gso_type: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

/// Why metadata was refused (all counted as the drop reason `bad-offload`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bad {
    /// A GSO type we never announced (UFO, unknown values) or the ECN bit.
    GsoType,
    /// `gso_size` 0 with a GSO type.
    GsoSize,
    /// GSO without `NEEDS_CSUM`, or `csum_start`/`csum_offset` outside the frame or not
    /// the L4 checksum of a superframe.
    Csum,
    /// `hdr_len` past the end of the frame.
    HdrLen,
    /// The GSO type does not match the frame (L3/L4), the headers are truncated, or the
    /// IP length is not the frame's (BIG TCP).
    Mismatch,
}

impl Offload {
    pub const NONE: Offload = Offload {
        flags: 0,
        gso_type: 0,
        hdr_len: 0,
        gso_size: 0,
        csum_start: 0,
        csum_offset: 0,
    };

    pub fn from_vnet(h: &[u8; VNET_HDR_LEN]) -> Offload {
        let u = |i: usize| u16::from_ne_bytes([h[i], h[i + 1]]);
        Offload {
            flags: h[0],
            gso_type: h[1],
            hdr_len: u(2),
            gso_size: u(4),
            csum_start: u(6),
            csum_offset: u(8),
        }
    }

    pub fn to_vnet(&self) -> [u8; VNET_HDR_LEN] {
        let mut h = [0u8; VNET_HDR_LEN];
        h[0] = self.flags;
        h[1] = self.gso_type;
        h[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        h[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        h[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        h[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
        h
    }

    /// Nothing to do for a destination (complete checksums, no GSO).
    #[inline]
    pub fn is_none(&self) -> bool {
        self.flags & F_NEEDS_CSUM == 0 && self.gso_type == GSO_NONE
    }

    #[inline]
    pub fn is_gso(&self) -> bool {
        self.gso_type != GSO_NONE
    }
}

/// Where the headers of a superframe are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Layout {
    l3: usize,
    l4: usize,
    /// End of the L4 header: the payload starts here.
    hl: usize,
    v6: bool,
    tcp: bool,
    mss: usize,
}

fn be16(f: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*f.get(at)?, *f.get(at + 1)?]))
}

/// Check `off` against `frame`; `Ok` means a destination can be given both.
pub fn check(off: &Offload, frame: &[u8]) -> Result<(), Bad> {
    if off.gso_type == GSO_NONE {
        if off.flags & F_NEEDS_CSUM != 0 {
            let field = off.csum_start as usize + off.csum_offset as usize + 2;
            if field > frame.len() {
                return Err(Bad::Csum);
            }
        }
        return Ok(());
    }
    layout(off, frame).map(|_| ())
}

fn layout(off: &Offload, frame: &[u8]) -> Result<Layout, Bad> {
    let (tcp, want_v6) = match off.gso_type {
        GSO_TCPV4 => (true, Some(false)),
        GSO_TCPV6 => (true, Some(true)),
        GSO_UDP_L4 => (false, None),
        _ => return Err(Bad::GsoType),
    };
    if off.gso_size == 0 {
        return Err(Bad::GsoSize);
    }
    if off.hdr_len as usize > frame.len() {
        return Err(Bad::HdrLen);
    }
    if off.flags & F_NEEDS_CSUM == 0 {
        return Err(Bad::Csum);
    }
    let mut l3 = 14;
    let mut et = be16(frame, 12).ok_or(Bad::Mismatch)?;
    if et == 0x8100 || et == 0x88a8 {
        et = be16(frame, 16).ok_or(Bad::Mismatch)?;
        l3 = 18;
    }
    let proto = if tcp { 6 } else { 17 };
    let (v6, l4) = match et {
        0x0800 => {
            let vihl = *frame.get(l3).ok_or(Bad::Mismatch)?;
            let ihl = usize::from(vihl & 0x0f) * 4;
            let tot = be16(frame, l3 + 2).ok_or(Bad::Mismatch)? as usize;
            let frag = be16(frame, l3 + 6).ok_or(Bad::Mismatch)?;
            if vihl >> 4 != 4
                || ihl < 20
                || frame.get(l3 + 9) != Some(&proto)
                || tot != frame.len() - l3
                || frag & 0x3fff != 0
            {
                return Err(Bad::Mismatch);
            }
            (false, l3 + ihl)
        }
        0x86dd => {
            let plen = be16(frame, l3 + 4).ok_or(Bad::Mismatch)? as usize;
            if frame.get(l3).map(|v| v >> 4) != Some(6) || plen + 40 != frame.len() - l3 {
                return Err(Bad::Mismatch);
            }
            // Hop-by-hop, routing and destination options may precede the L4 header.
            let mut nh = frame[l3 + 6];
            let mut at = l3 + 40;
            while matches!(nh, 0 | 43 | 60) && at < off.csum_start as usize {
                nh = *frame.get(at).ok_or(Bad::Mismatch)?;
                at += (usize::from(*frame.get(at + 1).ok_or(Bad::Mismatch)?) + 1) * 8;
            }
            if nh != proto {
                return Err(Bad::Mismatch);
            }
            (true, at)
        }
        _ => return Err(Bad::Mismatch),
    };
    if want_v6.is_some_and(|w| w != v6) {
        return Err(Bad::Mismatch);
    }
    if off.csum_start as usize != l4 || off.csum_offset != if tcp { 16 } else { 6 } {
        return Err(Bad::Csum);
    }
    let l4len = if tcp {
        usize::from(frame.get(l4 + 12).ok_or(Bad::Mismatch)? >> 4) * 4
    } else {
        8
    };
    let hl = l4 + l4len;
    if l4len < if tcp { 20 } else { 8 } || hl > frame.len() {
        return Err(Bad::Mismatch);
    }
    Ok(Layout {
        l3,
        l4,
        hl,
        v6,
        tcp,
        mss: off.gso_size as usize,
    })
}

/// What [`resolve`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolved {
    /// No metadata: the frame went out as it is.
    AsIs,
    /// A partial checksum completed on a copy.
    Checksummed,
    /// A superframe cut into this many segments.
    Segmented(usize),
    /// Refused (also counted by the caller): the metadata does not fit the frame, or the
    /// scratch is too small.
    Refused(Bad),
}

/// Hand `frame` to `emit` in a form a destination without offloads takes: as is, with its
/// checksum completed, or segmented (see the module doc). `scratch` must hold the frame
/// (checksum) or one segment (`hdr` + `gso_size`); [`crate::port::MAX_SLOT`] bytes hold
/// both.
pub fn resolve(
    frame: &[u8],
    off: &Offload,
    scratch: &mut [u8],
    mut emit: impl FnMut(&[u8]),
) -> Resolved {
    if off.is_none() {
        emit(frame);
        return Resolved::AsIs;
    }
    if !off.is_gso() {
        let Some(buf) = scratch.get_mut(..frame.len()) else {
            return Resolved::Refused(Bad::Csum);
        };
        buf.copy_from_slice(frame);
        if !complete_checksum(buf, off.csum_start as usize, off.csum_offset as usize) {
            return Resolved::Refused(Bad::Csum);
        }
        emit(buf);
        return Resolved::Checksummed;
    }
    let l = match layout(off, frame) {
        Ok(l) => l,
        Err(b) => return Resolved::Refused(b),
    };
    let payload = frame.len() - l.hl;
    let n = payload.div_ceil(l.mss).max(1);
    if scratch.len() < l.hl + l.mss.min(payload) {
        return Resolved::Refused(Bad::GsoSize);
    }
    for k in 0..n {
        let len = write_segment(frame, &l, k, n, scratch);
        emit(&scratch[..len]);
    }
    Resolved::Segmented(n)
}

/// Segment `k` of `n` of `frame` into `out` (large enough, checked by the caller); returns
/// its length.
fn write_segment(frame: &[u8], l: &Layout, k: usize, n: usize, out: &mut [u8]) -> usize {
    let from = l.hl + k * l.mss;
    let chunk = (frame.len() - from).min(l.mss);
    let len = l.hl + chunk;
    out[..l.hl].copy_from_slice(&frame[..l.hl]);
    out[l.hl..len].copy_from_slice(&frame[from..from + chunk]);
    let ip_len = len - l.l3;
    if l.v6 {
        out[l.l3 + 4..l.l3 + 6].copy_from_slice(&((ip_len - 40) as u16).to_be_bytes());
    } else {
        out[l.l3 + 2..l.l3 + 4].copy_from_slice(&(ip_len as u16).to_be_bytes());
        let id = u16::from_be_bytes([frame[l.l3 + 4], frame[l.l3 + 5]]).wrapping_add(k as u16);
        out[l.l3 + 4..l.l3 + 6].copy_from_slice(&id.to_be_bytes());
        out[l.l3 + 10..l.l3 + 12].fill(0);
        let c = !ones_complement_sum(&out[l.l3..l.l4]);
        out[l.l3 + 10..l.l3 + 12].copy_from_slice(&c.to_be_bytes());
    }
    let l4_len = len - l.l4;
    let csum_at = if l.tcp {
        let seq = u32::from_be_bytes([
            frame[l.l4 + 4],
            frame[l.l4 + 5],
            frame[l.l4 + 6],
            frame[l.l4 + 7],
        ])
        .wrapping_add((k * l.mss) as u32);
        out[l.l4 + 4..l.l4 + 8].copy_from_slice(&seq.to_be_bytes());
        let mut flags = frame[l.l4 + 13];
        if k + 1 < n {
            flags &= !(0x01 | 0x08); // FIN, PSH: last segment only
        }
        if k > 0 {
            flags &= !0x80; // CWR: first segment only
        }
        out[l.l4 + 13] = flags;
        l.l4 + 16
    } else {
        out[l.l4 + 4..l.l4 + 6].copy_from_slice(&(l4_len as u16).to_be_bytes());
        l.l4 + 6
    };
    // Full checksum: pseudo-header + L4 header and payload.
    out[csum_at..csum_at + 2].fill(0);
    let proto = if l.tcp { 6u16 } else { 17 };
    let mut acc = u64::from(ones_complement_sum(&out[l.l4..len]));
    let addrs = if l.v6 {
        &out[l.l3 + 8..l.l3 + 40]
    } else {
        &out[l.l3 + 12..l.l3 + 20]
    };
    acc += u64::from(ones_complement_sum(addrs));
    acc += u64::from(proto);
    acc += (l4_len as u64 & 0xffff) + (l4_len as u64 >> 16);
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    let mut c = !(acc as u16);
    if c == 0 && !l.tcp {
        c = 0xffff; // UDP: 0 means "no checksum"
    }
    out[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
    len
}

/// Complete a partial L4 checksum: the field at `start + off` holds the pseudo-header
/// seed; store the complement of the ones'-complement sum of `frame[start..]`.
/// Returns false if the offsets do not fit the frame.
pub fn complete_checksum(frame: &mut [u8], start: usize, off: usize) -> bool {
    let Some(field) = start.checked_add(off) else {
        return false;
    };
    if field.checked_add(2).is_none_or(|end| end > frame.len()) || start > frame.len() {
        return false;
    }
    let sum = ones_complement_sum(&frame[start..]);
    let mut c = !sum;
    if c == 0 {
        c = 0xffff;
    }
    frame[field..field + 2].copy_from_slice(&c.to_be_bytes());
    true
}

/// The folded 16-bit ones'-complement sum of `data` (big-endian words, odd tail padded).
pub fn ones_complement_sum(data: &[u8]) -> u16 {
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(2);
    for w in &mut chunks {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u64::from(*last) << 8;
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

#[cfg(test)]
mod tests;
