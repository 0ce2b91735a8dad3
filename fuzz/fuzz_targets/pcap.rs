#![no_main]
//! `pcap`: `port::pcap::CaptureReader` (pcap and pcapng) on any bytes. No panic, every
//! frame names a declared interface and is no longer than the input, and allocation is
//! bounded by the input: a corrupt length field may not make the reader allocate more
//! than the bytes it was given (plus its fixed 64 KiB buffer). A counting allocator
//! measures the peak of live heap bytes while the reader runs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use libfuzzer_sys::fuzz_target;
use sgswitch::port::pcap::CaptureReader;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` with the same arguments; the counters are
// only statistics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(l.size(), Relaxed) + l.size();
        PEAK.fetch_max(now, Relaxed);
        // SAFETY: forwarded.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(l.size(), Relaxed) + l.size();
        PEAK.fetch_max(now, Relaxed);
        // SAFETY: forwarded.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Relaxed);
        // SAFETY: forwarded.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        if new > l.size() {
            let now = LIVE.fetch_add(new - l.size(), Relaxed) + new - l.size();
            PEAK.fetch_max(now, Relaxed);
        } else {
            LIVE.fetch_sub(l.size() - new, Relaxed);
        }
        // SAFETY: forwarded.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Fixed buffers the reader may hold whatever the input (its 64 KiB block buffer, the
/// caller's frame buffer, the interface list) on top of a multiple of the input.
const SLACK: usize = 256 * 1024;

fuzz_target!(|data: &[u8]| {
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    {
        let Ok(mut r) = CaptureReader::new(data) else {
            return;
        };
        let mut buf = Vec::new();
        for _ in 0..100_000 {
            match r.next_frame(&mut buf) {
                Ok(Some(f)) => {
                    assert!(
                        f.interface < r.interfaces().len(),
                        "frame of an undeclared interface"
                    );
                    assert!(buf.len() <= data.len(), "a frame longer than the file");
                }
                Ok(None) | Err(_) => break,
            }
        }
    }
    let peak = PEAK.load(Relaxed).saturating_sub(base);
    assert!(
        peak <= SLACK + 4 * data.len(),
        "the reader allocated {peak} bytes for a {}-byte input",
        data.len()
    );
});
