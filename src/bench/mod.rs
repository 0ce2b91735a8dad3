//! Benchmark and test support, not dataplane: ClassBench rule and trace files, synthetic
//! models, frame builders and the workloads shared by the benches and the profiling
//! examples. Built with the Cargo feature `bench` (on by default: `sgswitch bench
//! classify` uses [`classbench`]) and for the library's own unit tests; the dataplane
//! modules build without it (`cargo check --no-default-features --lib`).
//!
//! * [`classbench`] reads ClassBench rule and trace files the way DPDK's `dpdk-test-acl`
//!   does, turns the rules into one port's ingress security-group rules, and measures
//!   lookups/s.
//! * [`synth`]: deterministic synthetic models and keys (many ports, large remote groups).
//! * [`frames`]: Ethernet/IPv4/IPv6/ARP frames built byte by byte.
//! * [`workload`]: the workloads of the criterion benches, shared with
//!   `examples/profile_*.rs` so that a profile measures exactly what a benchmark does.
//!
//! Layering: this module sits on top (it may use every module of the crate, through their
//! public API); nothing but the CLI, the benches, the examples and the tests may use it.

pub mod classbench;
pub mod frames;
pub mod synth;
pub mod workload;
