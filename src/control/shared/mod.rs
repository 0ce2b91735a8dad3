//! Sharing the policy between hosts through a [`crate::control::kv::Kv`] store (etcd).
//!
//! * [`layout`] — the key layout and value types (docs/scale-out.md shows it);
//! * [`codec`] — the control-plane state as keys and back, diffs, per-value decoding;
//!
//! Owns: what the keys mean. May not touch: the dataplane (a host agent hands the
//! runtime a whole model through an apply hook, like every other source of policy).

pub mod codec;
pub mod layout;
