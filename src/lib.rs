//! sgswitch: a userspace virtual switch that enforces OpenStack Neutron security groups.
//!
//! Module layering (a module may use only the ones listed before it):
//! `wire` → `flow` → (`policy`, `overlay`) → `classifier` → `conntrack` → `l2` → `port` →
//! `pipeline` → `runtime` → `control`. See "Layout" in the README.
//!
//! Beside the layers, used by none of them: `bench` (ClassBench files, synthetic models,
//! frame builders and workloads for the benches, the profiles and `sgswitch bench`;
//! feature `bench`, on by default) and `lab` (the network-namespace lab shared by the
//! demo and the live tests; uses only std, libc, system tools and the `sgswitch` binary).
#![forbid(unsafe_op_in_unsafe_fn)]

#[cfg(any(test, feature = "bench"))]
pub mod bench;
pub mod classifier;
pub mod conntrack;
pub mod control;
pub mod flow;
pub mod l2;
pub mod lab;
pub mod overlay;
pub mod pipeline;
pub mod policy;
pub mod port;
pub mod runtime;
pub mod wire;
