//! A fixed-length table of `Copy` values in its own allocation, laid out so transparent
//! huge pages can back ALL of it.
//!
//! The conntrack slab and index are read at random, one cache line per access; with
//! 4 KiB pages a table of tens of MiB misses the TLB on almost every access. Asking for
//! huge pages (`madvise(MADV_HUGEPAGE)`) only helps for the 2 MiB-aligned whole pages
//! inside a range: an ordinary `Vec` of 80 MiB starts 16 bytes into a page-aligned mmap
//! and leaves a partial huge page at each end (measured: ~6 of 80 MiB on 4 KiB pages at
//! 1M entries, i.e. ~7% of lookups walking the page tables). So a table of at least
//! 2 MiB is allocated 2 MiB aligned with its size rounded up to whole 2 MiB pages, and
//! advised before the first touch. Smaller tables (tests, small deployments) take an
//! ordinary allocation: rounding them up would waste memory for no TLB gain.
//!
//! Owns: the memory of one table (allocation, alignment, the `madvise`, deallocation) and
//! the `unsafe` that goes with it (each block with its `// SAFETY:` line). May not touch:
//! what the values are or where one goes (the slab and index are `table`'s, entries
//! `commit`'s and `expiry`'s), or anything outside this allocation. Uses `std::alloc` and
//! `libc` only, nothing of the crate.

use std::alloc::{self, Layout};
use std::ptr::NonNull;

/// A huge page (x86_64 and aarch64 with 4 KiB base pages).
const HUGE: usize = 2 << 20;

/// `len` values of `T`, allocated once, never resized. Derefs to `[T]`.
pub(super) struct HugeTable<T: Copy> {
    ptr: NonNull<T>,
    len: usize,
    /// `None` for an empty table (nothing allocated).
    layout: Option<Layout>,
}

// SAFETY: a `HugeTable<T>` owns its values like a `Box<[T]>` does (no sharing, no interior
// mutability of its own), so it may move to and be shared between threads whenever `T`
// may.
unsafe impl<T: Copy + Send> Send for HugeTable<T> {}
// SAFETY: as above; `&HugeTable<T>` only gives out `&[T]`.
unsafe impl<T: Copy + Sync> Sync for HugeTable<T> {}

impl<T: Copy> HugeTable<T> {
    /// `len` copies of `fill`. Aborts like `Vec` does if memory cannot be allocated.
    pub(super) fn new(len: usize, fill: T) -> HugeTable<T> {
        let bytes = len
            .checked_mul(core::mem::size_of::<T>())
            .expect("table size overflows usize");
        if bytes == 0 {
            return HugeTable {
                ptr: NonNull::dangling(),
                len,
                layout: None,
            };
        }
        let layout = if bytes >= HUGE {
            let rounded = bytes
                .checked_next_multiple_of(HUGE)
                .expect("table size overflows usize");
            Layout::from_size_align(rounded, HUGE)
        } else {
            Layout::from_size_align(bytes, core::mem::align_of::<T>())
        }
        .expect("table layout");
        // SAFETY: `layout` has a non-zero size (bytes > 0).
        let raw = unsafe { alloc::alloc(layout) };
        let Some(ptr) = NonNull::new(raw.cast::<T>()) else {
            alloc::handle_alloc_error(layout)
        };
        if bytes >= HUGE {
            advise_huge(raw, layout.size());
        }
        for i in 0..len {
            // SAFETY: the allocation holds at least `len` values of `T` (size ≥ bytes) and
            // is aligned for `T` (align ≥ align_of::<T>()); `i < len`. `write` does not
            // read the uninitialised destination.
            unsafe { ptr.as_ptr().add(i).write(fill) };
        }
        HugeTable {
            ptr,
            len,
            layout: Some(layout),
        }
    }
}

impl<T: Copy> HugeTable<T> {
    /// Bytes allocated, including the rounding up to whole huge pages.
    pub(super) fn allocated_bytes(&self) -> usize {
        self.layout.map_or(0, |l| l.size())
    }
}

impl<T: Copy> core::ops::Deref for HugeTable<T> {
    type Target = [T];

    #[inline(always)]
    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` points to `len` initialised values of `T` owned by `self` (or is
        // dangling and well aligned with `len == 0` values of a non-zero-sized `T`, or
        // `T` is zero-sized); the borrow of `self` keeps them alive and unaliased by `&mut`.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> core::ops::DerefMut for HugeTable<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> Drop for HugeTable<T> {
    fn drop(&mut self) {
        if let Some(layout) = self.layout {
            // SAFETY: `ptr` came from `alloc::alloc(layout)` with this very layout and is
            // freed only here; `T: Copy` values need no drop.
            unsafe { alloc::dealloc(self.ptr.as_ptr().cast::<u8>(), layout) };
        }
    }
}

#[cfg(target_os = "linux")]
fn advise_huge(addr: *mut u8, len: usize) {
    // SAFETY: `addr..addr + len` is one live allocation of ours, 2 MiB aligned, not yet
    // touched; MADV_HUGEPAGE only changes how the kernel backs it, never its contents.
    // Failure (THP disabled, or an allocator that did not map it privately) is harmless
    // and ignored.
    unsafe {
        libc::madvise(addr.cast::<libc::c_void>(), len, libc::MADV_HUGEPAGE);
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge(_addr: *mut u8, _len: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_table_is_filled_and_writable() {
        let mut t = HugeTable::new(1000, 7u32);
        assert_eq!(t.len(), 1000);
        assert!(t.iter().all(|&v| v == 7));
        t[999] = 9;
        assert_eq!(t[999], 9);
        assert_eq!(t[998], 7);
    }

    #[test]
    fn large_table_is_huge_page_aligned() {
        // 3 MiB of u64: rounded up to 4 MiB, 2 MiB aligned.
        let n = (3 << 20) / 8;
        let mut t = HugeTable::new(n, 1u64);
        assert_eq!(t.as_ptr() as usize % HUGE, 0);
        assert_eq!(t.allocated_bytes(), 4 << 20);
        assert_eq!(t.len(), n);
        t[n - 1] = 5;
        assert_eq!(t.iter().sum::<u64>(), n as u64 + 4);
    }

    #[test]
    fn empty_table() {
        let t = HugeTable::new(0, 0u8);
        assert!(t.is_empty());
        assert!(t.layout.is_none());
        assert_eq!(t.allocated_bytes(), 0);
    }
}
