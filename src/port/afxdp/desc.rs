//! [`Desc`] and [`DescBatch`]: the ownership of UMEM frames outside the group's rings.
//!
//! A descriptor *is* the ownership of one frame (see the parent module, "Frame
//! ownership"); only the group creates them ([`super::rx`] hands them out, [`super::tx`]
//! and [`super::UmemGroup::release`] take them back). No system calls, no UMEM access.
//!
//! Owns: the descriptor type (private fields: only the group makes one) and the
//! fixed-capacity batch of them ([`crate::port::MAX_BURST`]). May not touch: rings, the
//! free stack or frame bytes. Uses `port::MAX_BURST` only.

use crate::port::MAX_BURST;

/// A frame owned by the caller: its UMEM address, length and the group it belongs to.
///
/// Neither `Copy` nor `Clone`: a descriptor is the *ownership* of one UMEM frame, so the
/// type system guarantees it is given back (to `tx_descs` or `release`) at most once, and
/// that `UmemGroup::frame` can only be called while the caller still owns it. Only a group
/// creates them; a descriptor of another group is refused (empty frame, not transmitted).
#[derive(Debug, PartialEq, Eq)]
pub struct Desc {
    pub(super) addr: u64,
    pub(super) len: u32,
    pub(super) group: u32,
}

impl Desc {
    /// The placeholder for empty `DescBatch` entries (belongs to no group).
    pub(super) const NULL: Desc = Desc {
        addr: 0,
        len: 0,
        group: 0,
    };

    pub fn len(&self) -> usize {
        self.len as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The UMEM offset of the frame data (diagnostics).
    pub fn addr(&self) -> u64 {
        self.addr
    }
}

/// A fixed-capacity burst of [`Desc`]s (no allocation after creation).
pub struct DescBatch {
    descs: [Desc; MAX_BURST],
    pub(super) len: usize,
}

impl Default for DescBatch {
    fn default() -> Self {
        DescBatch {
            descs: [const { Desc::NULL }; MAX_BURST],
            len: 0,
        }
    }
}

impl DescBatch {
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn is_full(&self) -> bool {
        self.len == MAX_BURST
    }
    pub fn as_slice(&self) -> &[Desc] {
        &self.descs[..self.len]
    }
    /// For [`super::UmemGroup::set_desc_len`].
    pub fn as_mut_slice(&mut self) -> &mut [Desc] {
        &mut self.descs[..self.len]
    }
    /// Add a descriptor; a full batch hands it back.
    pub fn push(&mut self, d: Desc) -> Result<(), Desc> {
        if self.is_full() {
            return Err(d);
        }
        self.descs[self.len] = d;
        self.len += 1;
        Ok(())
    }
    /// Take the last descriptor out.
    pub fn pop(&mut self) -> Option<Desc> {
        self.len = self.len.checked_sub(1)?;
        Some(std::mem::replace(&mut self.descs[self.len], Desc::NULL))
    }
    /// Take every descriptor out, in order, leaving the batch empty.
    pub fn drain(&mut self) -> impl Iterator<Item = Desc> + '_ {
        let n = std::mem::take(&mut self.len);
        self.descs[..n]
            .iter_mut()
            .map(|d| std::mem::replace(d, Desc::NULL))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desc_batch_push_drain() {
        let mut b = DescBatch::default();
        for i in 0..MAX_BURST as u64 {
            assert!(b
                .push(Desc {
                    addr: i,
                    len: 1,
                    group: 7
                })
                .is_ok());
        }
        assert!(b.is_full());
        assert_eq!(b.push(Desc::NULL), Err(Desc::NULL));
        assert_eq!(b.pop().map(|d| d.addr()), Some(255));
        let addrs: Vec<u64> = b.drain().map(|d| d.addr()).collect();
        assert_eq!(addrs.len(), MAX_BURST - 1);
        assert_eq!(addrs[3], 3);
        assert!(b.is_empty());
        assert!(b.pop().is_none());
    }
}
