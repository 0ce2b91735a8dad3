//! Batched tap I/O through io_uring ([`TapUring`]): a burst of `readv` in one
//! `io_uring_enter`, a burst of `writev` in another.
//!
//! # Why
//! tun has no batched read or write: without this every frame costs one `readv` and every
//! transmitted frame one `writev` (two syscalls per forwarded frame). Here a receive burst
//! is one `io_uring_enter` that runs up to a burst of `readv` (virtio-net header iovec +
//! slot, as [`super::tap`] does them one by one) and a transmit burst one
//! `io_uring_enter` of `writev`s. Every operation carries `RWF_NOWAIT`, so the kernel
//! runs it inline and completes it at once, with a frame or `-EAGAIN`: nothing is ever in
//! flight when a call returns (the slots and frames the iovecs point to are the caller's,
//! borrowed for the call only), and the call never blocks. The poll loop's idle back-off
//! is unchanged: the tap's fd is still what the worker polls.
//!
//! A receive burst does not know how many frames are queued (tun has no queue-length
//! query), and each `readv` that finds the queue empty still costs a trip into tun. So a
//! burst asks for twice what the last one got (at least [`MIN_WANT`], at most the spare
//! slots): at line rate every burst is full, when idle each costs one `io_uring_enter`
//! with a few empty reads, no more than the one `read` it replaces.
//!
//! # Fallback
//! Where the kernel refuses io_uring (`io_uring_setup` fails: `ENOSYS`, `EPERM` under
//! `kernel.io_uring_disabled`, a seccomp filter, `ENOMEM` under a tight `RLIMIT_MEMLOCK`),
//! [`TapUring::new`] returns `None`, says so once per process in the log (WARN) and the
//! tap keeps its per-frame syscalls. `SGSWITCH_TAP_IO=syscalls` in the environment also
//! keeps them (for comparison: `benches/tap.sh`).
//!
//! # Cost
//! The `io-uring` crate 0.7 (pure Rust over the syscalls; its dependencies bitflags, cfg-if
//! and libc, no build script compiling C): a clean release build of it and its
//! dependencies alone takes 2.1 CPU-seconds (8.6 s wall on the shared 2-core machine); the
//! stripped `sgswitch` binary grows by 6.4 KB (4,946,600 to 4,953,000 bytes).
//!
//! # Measured (`benches/tap.sh --quick --systems sgswitch-tap`, load average ~11)
//! The switch's syscalls per delivered 64-byte UDP frame (`perf stat -e
//! raw_syscalls:sys_enter -p PID`): 1.84 with one syscall per frame
//! (`SGSWITCH_TAP_IO=syscalls`), 0.11 with io_uring; delivered 69 and 93 kpps (noisy).
//!
//! # Owns, and may not touch
//! Owns: one io_uring instance per tap port (its rings, unmapped on drop) and the iovec
//! and result arrays of one burst. It does not own the tap's fd (borrowed per call), the
//! frames, or their meaning: what a received frame's virtio-net header says and whether
//! the frame is kept is [`super::tap`]'s (`accept_rx`), as are the counters. No dataplane
//! logic, no policy.

use io_uring::{opcode, types, IoUring};
use std::io;
use std::os::fd::RawFd;
use std::sync::Once;

use super::tap::VNET_HDR_LEN;
use super::{FrameBatch, MAX_BURST};

/// The fewest `readv`s a receive burst asks for.
pub const MIN_WANT: usize = 4;

/// The result of one operation of a burst: bytes moved, or a negative errno.
pub type OpResult = i32;

static FALLBACK_LOGGED: Once = Once::new();

/// One tap port's io_uring and the per-burst arrays it fills (no allocation per burst).
pub struct TapUring {
    ring: IoUring,
    /// Two iovecs per operation: the virtio-net header, then the frame.
    iovs: Box<[[libc::iovec; 2]]>,
    hdrs: Box<[[u8; VNET_HDR_LEN]]>,
    results: Box<[OpResult]>,
    /// How many frames the last receive burst got.
    last_rx: usize,
}

// SAFETY: the raw pointers in `iovs` are only written and read inside one call, which
// borrows everything they point to; between calls they dangle unused. The ring itself is
// `Send`.
unsafe impl Send for TapUring {}

impl TapUring {
    /// A ring for bursts of up to [`MAX_BURST`] frames, or `None` (logged once per process)
    /// where the kernel refuses io_uring or `SGSWITCH_TAP_IO=syscalls` says not to.
    pub fn new(ifname: &str) -> Option<TapUring> {
        if std::env::var("SGSWITCH_TAP_IO").is_ok_and(|v| v == "syscalls") {
            return None;
        }
        match IoUring::new(MAX_BURST as u32) {
            Ok(ring) => Some(TapUring {
                ring,
                iovs: vec![[empty_iov(), empty_iov()]; MAX_BURST].into_boxed_slice(),
                hdrs: vec![[0u8; VNET_HDR_LEN]; MAX_BURST].into_boxed_slice(),
                results: vec![0; MAX_BURST].into_boxed_slice(),
                last_rx: MAX_BURST,
            }),
            Err(e) => {
                FALLBACK_LOGGED.call_once(|| {
                    tracing::warn!(
                        ifname,
                        error = %e,
                        "io_uring refused: tap ports use one read/write syscall per frame"
                    );
                });
                None
            }
        }
    }

    /// Read up to the batch's spare slots (fewer: see the module doc) from `fd` in one
    /// `io_uring_enter`. Returns how many reads ran; `results()[i]` and `header(i)` are
    /// the outcome of read `i`, whose frame (if any) is in the `i`-th spare slot of
    /// `batch`. Frames are read in slot order.
    pub fn read_burst(
        &mut self,
        fd: RawFd,
        vnet_hdr: bool,
        batch: &mut FrameBatch,
    ) -> io::Result<usize> {
        let want = (self.last_rx * 2).max(MIN_WANT);
        let mut n = 0;
        for ((slot, iov), hdr) in batch
            .spare_slots()
            .take(want)
            .zip(self.iovs.iter_mut())
            .zip(self.hdrs.iter_mut())
        {
            iov[0] = libc::iovec {
                iov_base: hdr.as_mut_ptr().cast(),
                iov_len: VNET_HDR_LEN,
            };
            iov[1] = libc::iovec {
                iov_base: slot.as_mut_ptr().cast(),
                iov_len: slot.len(),
            };
            n += 1;
        }
        let skip = usize::from(!vnet_hdr);
        let entries = self.iovs[..n].iter().enumerate().map(|(i, iov)| {
            opcode::Readv::new(types::Fd(fd), iov[skip..].as_ptr(), (2 - skip) as u32)
                .offset(u64::MAX)
                .rw_flags(libc::RWF_NOWAIT)
                .build()
                .user_data(i as u64)
        });
        // SAFETY: each entry's iovecs point to a distinct spare slot of `batch` and a
        // distinct header buffer of `self`, both borrowed until `run` has reaped every
        // completion (RWF_NOWAIT: none stays in flight).
        let got = unsafe { run(&mut self.ring, &mut self.results, entries, n) }?;
        self.last_rx = self.results[..got].iter().filter(|&&r| r > 0).count();
        Ok(got)
    }

    /// Write every frame of `frames` (with the virtio-net header `hdr_of(i)` when
    /// `vnet_hdr`: all zero for a complete frame, the offload metadata of a superframe or
    /// a partial checksum) to `fd` in one `io_uring_enter` per [`MAX_BURST`] frames.
    /// `results()[i]` is the outcome of frame `i` of the last chunk; `each(i, result)` is
    /// called for every frame, in order. The headers are staged in the ring's header
    /// buffers (no receive is in flight: every burst is reaped before it returns).
    pub fn write_burst(
        &mut self,
        fd: RawFd,
        vnet_hdr: bool,
        frames: &[&[u8]],
        hdr_of: impl Fn(usize) -> [u8; VNET_HDR_LEN],
        mut each: impl FnMut(usize, OpResult),
    ) -> io::Result<()> {
        let skip = usize::from(!vnet_hdr);
        for (c, chunk) in frames.chunks(MAX_BURST).enumerate() {
            for (k, ((f, iov), hdr)) in chunk
                .iter()
                .zip(self.iovs.iter_mut())
                .zip(self.hdrs.iter_mut())
                .enumerate()
            {
                *hdr = hdr_of(c * MAX_BURST + k);
                iov[0] = libc::iovec {
                    iov_base: hdr.as_mut_ptr().cast(),
                    iov_len: VNET_HDR_LEN,
                };
                iov[1] = libc::iovec {
                    iov_base: f.as_ptr() as *mut libc::c_void,
                    iov_len: f.len(),
                };
            }
            let entries = self.iovs[..chunk.len()].iter().enumerate().map(|(i, iov)| {
                opcode::Writev::new(types::Fd(fd), iov[skip..].as_ptr(), (2 - skip) as u32)
                    .offset(u64::MAX)
                    .rw_flags(libc::RWF_NOWAIT)
                    .build()
                    .user_data(i as u64)
            });
            // SAFETY: the iovecs point to `frames` and the ring's header buffers, which
            // outlive the call; the kernel only reads them; every completion is reaped in
            // `run`.
            let got = unsafe { run(&mut self.ring, &mut self.results, entries, chunk.len()) }?;
            for (i, &r) in self.results[..got].iter().enumerate() {
                each(c * MAX_BURST + i, r);
            }
            if got < chunk.len() {
                break;
            }
        }
        Ok(())
    }

    /// Results of the last burst, by operation.
    pub fn results(&self) -> &[OpResult] {
        &self.results
    }

    /// The virtio-net header read by operation `i` of the last receive burst.
    pub fn header(&self, i: usize) -> &[u8; VNET_HDR_LEN] {
        &self.hdrs[i]
    }
}

/// Push `n` entries, submit them in one `io_uring_enter`, and reap all `n` completions
/// into `results` (by `user_data`). Returns how many completed (all of them, short only
/// where the kernel took fewer submissions).
///
/// # Safety
/// Every entry's buffers must stay valid until this returns.
unsafe fn run(
    ring: &mut IoUring,
    results: &mut [OpResult],
    entries: impl Iterator<Item = io_uring::squeue::Entry>,
    n: usize,
) -> io::Result<usize> {
    if n == 0 {
        return Ok(0);
    }
    {
        let mut sq = ring.submission();
        for e in entries {
            // SAFETY: the caller keeps the buffers alive; the queue has MAX_BURST
            // entries, n <= MAX_BURST and it was empty.
            if unsafe { sq.push(&e) }.is_err() {
                break;
            }
        }
    }
    let submitted = loop {
        match ring.submit_and_wait(n) {
            Ok(s) => break s,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    };
    let mut done = 0;
    for cqe in ring.completion() {
        if let Some(r) = results.get_mut(cqe.user_data() as usize) {
            *r = cqe.result();
            done += 1;
        }
    }
    debug_assert_eq!(done, submitted.min(n));
    Ok(done)
}

fn empty_iov() -> libc::iovec {
    libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }
}

impl std::fmt::Debug for TapUring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TapUring")
            .field("last_rx", &self.last_rx)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    /// A non-blocking SOCK_SEQPACKET pair: message boundaries like a tap's frames.
    fn pair() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: socketpair writes two fds into `fds`, which we then own.
        let rc = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        assert_eq!(rc, 0);
        // SAFETY: fresh fds, owned by nobody else.
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    }

    #[test]
    fn bursts_of_reads_and_writes_keep_order_and_never_block() {
        let Some(mut ring) = TapUring::new("test") else {
            eprintln!("io_uring refused here: nothing to test");
            return;
        };
        let (a, b) = pair();
        let mut batch = FrameBatch::new(32, 2048);
        // Nothing queued: every read says EAGAIN at once.
        let ran = ring.read_burst(b.as_raw_fd(), false, &mut batch).unwrap();
        assert!(ran >= MIN_WANT);
        assert!(ring.results()[..ran].iter().all(|&r| r == -libc::EAGAIN));

        let frames: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 60 + i as usize]).collect();
        let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
        let mut wrote = Vec::new();
        ring.write_burst(
            a.as_raw_fd(),
            true,
            &refs,
            |_| [0; VNET_HDR_LEN],
            |i, r| wrote.push((i, r)),
        )
        .unwrap();
        assert_eq!(wrote.len(), 40);
        for (i, r) in &wrote {
            assert_eq!(*r as usize, VNET_HDR_LEN + 60 + i, "frame {i}");
        }
        // Read them back with the header split off, in order, across bursts.
        let mut seen = 0;
        while seen < 40 {
            batch.clear();
            let ran = ring.read_burst(b.as_raw_fd(), true, &mut batch).unwrap();
            let got: Vec<i32> = ring.results()[..ran]
                .iter()
                .copied()
                .filter(|&r| r > 0)
                .collect();
            assert!(!got.is_empty(), "frames left unread");
            for (k, r) in got.iter().enumerate() {
                let i = seen + k;
                assert_eq!(*r as usize, VNET_HDR_LEN + 60 + i);
                assert_eq!(ring.header(k), &[0u8; VNET_HDR_LEN]);
                batch.commit(*r as usize - VNET_HDR_LEN);
                assert_eq!(batch.get(k).unwrap(), frames[i].as_slice());
            }
            seen += got.len();
        }
    }
}
