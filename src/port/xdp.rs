//! Our own minimal XDP loader: an XSKMAP plus a 6-instruction program that redirects every
//! frame of a queue to the AF_XDP socket registered for that queue, attached through a
//! `bpf_link` — no clang, no libbpf, no bpffs.
//!
//! # The program
//! ```text
//! r2 = *(u32 *)(r1 + 16)        ; xdp_md->rx_queue_index: the XSKMAP key
//! r1 = map_fd ll                ; BPF_LD_IMM64 + BPF_PSEUDO_MAP_FD (2 slots)
//! r3 = XDP_PASS                 ; action when the queue has no socket
//! call bpf_redirect_map (51)
//! exit
//! ```
//! Frames of a queue without a socket go to the kernel stack (`XDP_PASS`), so attaching
//! never blackholes a device. The helper is not GPL-only; the license string is still
//! "Dual MIT/GPL" so the program can be inspected with any tool without warnings.
//!
//! # Lifetime
//! [`XdpAttachment`] owns three fds: map, program, link. The program stays attached while
//! the *link* fd is open: dropping the attachment or the process dying (even by SIGKILL)
//! detaches it. That is why we use `BPF_LINK_CREATE` and not netlink `IFLA_XDP` (which
//! leaves the program attached after a crash).
//!
//! # Modes
//! [`XdpMode::Native`] (`XDP_FLAGS_DRV_MODE`) runs in the driver; [`XdpMode::Generic`]
//! (`XDP_FLAGS_SKB_MODE`) runs after the skb is built, on any device. [`XdpMode::Auto`]
//! tries native, then generic. veth and tap support native mode. The enum is the model's
//! ([`crate::policy::XdpMode`], parsed once by validation); this module maps it to flags.
//!
//! Every `bpf(2)` attribute is a `#[repr(C)]` struct with exactly the kernel's leading
//! fields (the kernel accepts a shorter `attr` and zero-fills the rest).
//!
//! # Logging
//! INFO when a program is attached (interface, mode obtained) and detached; DEBUG for a
//! mode the kernel refused before the next one is tried. A load or attach failure is
//! returned as a [`PortError`], not logged.

use super::{PortError, Step};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const BPF_MAP_CREATE: libc::c_int = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_int = 2;
const BPF_MAP_DELETE_ELEM: libc::c_int = 3;
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_LINK_CREATE: libc::c_int = 28;

const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_XDP: u32 = 37;
const BPF_PSEUDO_MAP_FD: u8 = 1;
const BPF_FUNC_REDIRECT_MAP: i32 = 51;
const XDP_PASS: i32 = 2;
const XDP_FLAGS_SKB_MODE: u32 = 2;
const XDP_FLAGS_DRV_MODE: u32 = 4;

/// Where the program runs: the model's type (validation parses it from a config or API
/// body), re-exported here for callers of this module.
pub use crate::policy::XdpMode;

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct BpfInsn {
    code: u8,
    /// dst_reg in the low nibble, src_reg in the high nibble.
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> BpfInsn {
    BpfInsn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

/// The redirect program for an XSKMAP whose fd is `map_fd`.
fn program(map_fd: RawFd) -> [BpfInsn; 6] {
    [
        // BPF_LDX | BPF_MEM | BPF_W
        insn(0x61, 2, 1, 16, 0),
        // BPF_LD | BPF_DW | BPF_IMM, pseudo map fd, then the high-half slot
        insn(0x18, 1, BPF_PSEUDO_MAP_FD, 0, map_fd),
        insn(0, 0, 0, 0, 0),
        // BPF_ALU64 | BPF_MOV | BPF_K
        insn(0xb7, 3, 0, 0, XDP_PASS),
        // BPF_JMP | BPF_CALL
        insn(0x85, 0, 0, 0, BPF_FUNC_REDIRECT_MAP),
        // BPF_JMP | BPF_EXIT
        insn(0x95, 0, 0, 0, 0),
    ]
}

#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
}

/// `bpf(2)` returning a new fd.
///
/// # Safety
/// `attr` must be the attribute struct `cmd` expects (a prefix of `union bpf_attr`), and
/// every pointer inside it must be valid for the duration of the call.
unsafe fn bpf_fd<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<OwnedFd> {
    // SAFETY: the caller guarantees `attr` matches `cmd`; the size passed is exact.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a non-negative return of these commands is a new fd that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(rc as RawFd) })
}

/// An XSKMAP with max `entries` queues.
pub struct XskMap {
    fd: OwnedFd,
}

impl XskMap {
    pub fn create(ifname: &str, entries: u32) -> Result<XskMap, PortError> {
        let mut attr = MapCreateAttr {
            map_type: BPF_MAP_TYPE_XSKMAP,
            key_size: 4,
            value_size: 4,
            max_entries: entries.max(1),
            ..Default::default()
        };
        attr.map_name[..8].copy_from_slice(b"sgs_xsks");
        // SAFETY: MapCreateAttr is the BPF_MAP_CREATE prefix of bpf_attr; no pointers.
        let fd = unsafe { bpf_fd(BPF_MAP_CREATE, &mut attr) }
            .map_err(|e| PortError::os(ifname, Step::MapCreate, e))?;
        Ok(XskMap { fd })
    }

    /// Register socket `xsk_fd` for queue `queue` (the socket must be bound).
    pub fn insert(&self, ifname: &str, queue: u32, xsk_fd: RawFd) -> Result<(), PortError> {
        let key = queue;
        let value = xsk_fd as u32;
        let mut attr = MapElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            key: &key as *const u32 as u64,
            value: &value as *const u32 as u64,
            ..Default::default()
        };
        // SAFETY: MapElemAttr is the BPF_MAP_*_ELEM prefix of bpf_attr; `key` and `value`
        // are live u32s matching the map's key/value sizes.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_UPDATE_ELEM,
                &mut attr as *mut MapElemAttr,
                std::mem::size_of::<MapElemAttr>() as libc::c_uint,
            )
        };
        if rc < 0 {
            return Err(PortError::os(
                ifname,
                Step::MapUpdate,
                io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// Remove the socket of `queue` (frames of that queue then go to the stack).
    pub fn remove(&self, queue: u32) -> io::Result<()> {
        let key = queue;
        let mut attr = MapElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            key: &key as *const u32 as u64,
            ..Default::default()
        };
        // SAFETY: BPF_MAP_DELETE_ELEM reads map_fd and key; `key` is a live u32.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_DELETE_ELEM,
                &mut attr as *mut MapElemAttr,
                std::mem::size_of::<MapElemAttr>() as libc::c_uint,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// A loaded redirect program attached to one interface through a bpf_link.
/// Dropping it detaches the program (closing the link fd).
pub struct XdpAttachment {
    // Field order = drop order: detach first, then free the program and the map.
    _link: OwnedFd,
    _prog: OwnedFd,
    map: XskMap,
    mode: XdpMode,
    ifindex: u32,
    /// For the detach log.
    ifname: String,
}

impl XdpAttachment {
    /// Load the redirect program for `map` and attach it to `ifindex` in `mode`
    /// (`Auto`: native, then generic). On error nothing stays loaded or attached.
    pub fn attach(
        ifname: &str,
        ifindex: u32,
        map: XskMap,
        mode: XdpMode,
    ) -> Result<XdpAttachment, PortError> {
        let prog = load_program(ifname, &map)?;
        let tries: &[(XdpMode, u32)] = match mode {
            XdpMode::Auto => &[
                (XdpMode::Native, XDP_FLAGS_DRV_MODE),
                (XdpMode::Generic, XDP_FLAGS_SKB_MODE),
            ],
            XdpMode::Native => &[(XdpMode::Native, XDP_FLAGS_DRV_MODE)],
            XdpMode::Generic => &[(XdpMode::Generic, XDP_FLAGS_SKB_MODE)],
        };
        let mut last = None;
        for &(m, flags) in tries {
            let mut attr = LinkCreateAttr {
                prog_fd: prog.as_raw_fd() as u32,
                target_ifindex: ifindex,
                attach_type: BPF_XDP,
                flags,
            };
            // SAFETY: LinkCreateAttr is the BPF_LINK_CREATE prefix of bpf_attr; no pointers.
            match unsafe { bpf_fd(BPF_LINK_CREATE, &mut attr) } {
                Ok(link) => {
                    tracing::info!(ifname, ifindex, mode = m.as_str(), "XDP program attached");
                    return Ok(XdpAttachment {
                        _link: link,
                        _prog: prog,
                        map,
                        mode: m,
                        ifindex,
                        ifname: ifname.to_owned(),
                    });
                }
                Err(e) => {
                    tracing::debug!(ifname, mode = m.as_str(), error = %e, "XDP attach refused");
                    last = Some((m, e));
                }
            }
        }
        let (m, e) = last.unwrap_or((mode, io::Error::from_raw_os_error(libc::EINVAL)));
        Err(match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) | Some(libc::ENODEV) => {
                PortError::os(ifname, Step::XdpAttach, e)
            }
            _ => PortError::XdpRefused {
                ifname: ifname.to_owned(),
                mode: m.as_str(),
                source: e,
            },
        })
    }

    /// The mode the program actually runs in (never `Auto`).
    pub fn mode(&self) -> XdpMode {
        self.mode
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    pub fn map(&self) -> &XskMap {
        &self.map
    }
}

impl Drop for XdpAttachment {
    fn drop(&mut self) {
        // The link fd closes right after this (field order), which detaches the program.
        tracing::info!(ifname = %self.ifname, ifindex = self.ifindex, "XDP program detached");
    }
}

fn load_program(ifname: &str, map: &XskMap) -> Result<OwnedFd, PortError> {
    let insns = program(map.fd.as_raw_fd());
    let license = c"Dual MIT/GPL";
    let mut log = [0u8; 4096];
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_XDP,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        expected_attach_type: BPF_XDP,
        ..Default::default()
    };
    attr.prog_name[..10].copy_from_slice(b"sgs_redir\0");
    // SAFETY: ProgLoadAttr is the BPF_PROG_LOAD prefix of bpf_attr; `insns`, `license`
    // and `log` outlive the call and the sizes given match them.
    match unsafe { bpf_fd(BPF_PROG_LOAD, &mut attr) } {
        Ok(fd) => Ok(fd),
        Err(e) => {
            let text_len = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..text_len]);
            let source = if text.trim().is_empty() {
                e
            } else {
                io::Error::new(e.kind(), format!("{e}; verifier: {}", text.trim()))
            };
            Err(PortError::os(ifname, Step::ProgLoad, source))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_encoding() {
        let p = program(7);
        assert_eq!(std::mem::size_of::<BpfInsn>(), 8);
        assert_eq!((p[0].code, p[0].regs, p[0].off), (0x61, 0x12, 16));
        assert_eq!((p[1].code, p[1].regs, p[1].imm), (0x18, 0x11, 7));
        assert_eq!((p[2].code, p[2].imm), (0, 0));
        assert_eq!((p[3].code, p[3].regs, p[3].imm), (0xb7, 0x03, 2));
        assert_eq!((p[4].code, p[4].imm), (0x85, 51));
        assert_eq!(p[5].code, 0x95);
    }

    #[test]
    fn attr_sizes_match_kernel_prefixes() {
        assert_eq!(std::mem::size_of::<MapCreateAttr>(), 44);
        assert_eq!(std::mem::size_of::<MapElemAttr>(), 32);
        assert_eq!(std::mem::size_of::<ProgLoadAttr>(), 72);
        assert_eq!(std::mem::size_of::<LinkCreateAttr>(), 16);
    }

    #[test]
    fn mode_parse() {
        assert_eq!(XdpMode::parse("skb"), Some(XdpMode::Generic));
        assert_eq!(XdpMode::parse("native"), Some(XdpMode::Native));
        assert_eq!(XdpMode::parse("auto"), Some(XdpMode::Auto));
        assert_eq!(XdpMode::parse("x"), None);
    }

    /// Loading needs root; skipped (with a reason) otherwise, fails under CI=true.
    #[test]
    fn load_program_in_kernel() {
        let map = match XskMap::create("lo", 4) {
            Ok(m) => m,
            Err(e) => {
                assert!(std::env::var("CI").as_deref() != Ok("true"), "CI: {e}");
                eprintln!("skipping: cannot create XSKMAP: {e}");
                return;
            }
        };
        let prog = load_program("lo", &map).expect("verifier accepts the program");
        assert!(prog.as_raw_fd() >= 0);
    }
}
