//! The copying [`Port`] views of an AF_XDP group: [`AfXdpPort`] (a group of one, what
//! `port::open_backend` opens) and [`MemberPort`] (one member of a larger group). Their
//! rx/tx copy between the UMEM and the caller's [`FrameBatch`]; descriptor moves are
//! [`super::forward`]'s.
//!
//!
//! Owns: the two view types, their configs ([`AfXdpConfig`]) and the [`Port`] glue to the
//! group's copying rx/tx. May not touch: the group's state (every call goes through
//! [`UmemGroup`]'s methods) or descriptor moves. Uses `port`'s [`Port`] contract,
//! [`FrameBatch`], [`PortError`], [`PortStats`].

use super::{GroupConfig, MemberConfig, MemberInfo, UmemGroup};
use crate::port::{FrameBatch, Port, PortError, PortStats};
use std::io;
use std::os::fd::RawFd;

/// A [`Port`] view of one member of a [`UmemGroup`] (copying rx/tx).
pub struct MemberPort<'g> {
    group: &'g mut UmemGroup,
    i: usize,
}

impl UmemGroup {
    /// A [`Port`] view of member `i` (copying rx/tx).
    pub fn port(&mut self, i: usize) -> Option<MemberPort<'_>> {
        (i < self.members.len()).then_some(MemberPort { group: self, i })
    }
}

impl Port for MemberPort<'_> {
    fn name(&self) -> &str {
        &self.group.members[self.i].info.ifname
    }
    fn rx_burst(&mut self, batch: &mut FrameBatch) -> io::Result<usize> {
        Ok(self.group.rx_copy(self.i, batch))
    }
    fn tx_burst(&mut self, frames: &[&[u8]]) -> io::Result<usize> {
        Ok(self.group.tx_copy(self.i, frames))
    }
    fn poll_fd(&self) -> Option<RawFd> {
        self.group.poll_fd(self.i)
    }
    fn stats(&self) -> PortStats {
        self.group.stats(self.i)
    }
    fn take_fault(&mut self) -> Option<i32> {
        self.group.take_fault(self.i)
    }
}

/// A single AF_XDP port: a [`UmemGroup`] of one member.
pub struct AfXdpPort {
    group: UmemGroup,
}

/// Options of a single AF_XDP port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AfXdpConfig {
    pub member: MemberConfig,
    pub group: GroupConfig,
}

impl AfXdpConfig {
    pub fn new(ifname: &str) -> Self {
        AfXdpConfig {
            member: MemberConfig::new(ifname),
            group: GroupConfig::default(),
        }
    }
}

impl AfXdpPort {
    pub fn open(cfg: &AfXdpConfig) -> Result<AfXdpPort, PortError> {
        Ok(AfXdpPort {
            group: UmemGroup::open(std::slice::from_ref(&cfg.member), &cfg.group)?,
        })
    }

    /// What was obtained (XDP mode, zero-copy or copy).
    pub fn info(&self) -> &MemberInfo {
        &self.group.members[0].info
    }

    /// The underlying group (for descriptor-level access).
    pub fn group_mut(&mut self) -> &mut UmemGroup {
        &mut self.group
    }
}

impl Port for AfXdpPort {
    fn name(&self) -> &str {
        &self.group.members[0].info.ifname
    }
    fn rx_burst(&mut self, batch: &mut FrameBatch) -> io::Result<usize> {
        Ok(self.group.rx_copy(0, batch))
    }
    fn tx_burst(&mut self, frames: &[&[u8]]) -> io::Result<usize> {
        Ok(self.group.tx_copy(0, frames))
    }
    fn poll_fd(&self) -> Option<RawFd> {
        self.group.poll_fd(0)
    }
    fn stats(&self) -> PortStats {
        self.group.stats(0)
    }
    fn take_fault(&mut self) -> Option<i32> {
        self.group.take_fault(0)
    }
}
