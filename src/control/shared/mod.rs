//! Sharing the policy between hosts through a [`crate::control::kv::Kv`] store (etcd).
//!
//! * [`layout`] — the key layout and value types (docs/scale-out.md shows it);
//! * [`codec`] — the control-plane state as keys and back, diffs, per-value decoding;
//! * [`interest`] — a host's interest set and the model its cached keys make;
//! * [`incremental`] — the agent's model patched for a rule or member change (equal to a
//!   full build);
//! * [`model_sync`] — a kept model brought up to date by cloning only what differs;
//! * [`agent`] — the host agent: watches its interest set, applies its model, reports
//!   liveness and status;
//! * [`sim`] — simulated hosts and the scale-out benchmark scenarios (`sgswitch sim-hosts`);
//!
//! Owns: what the keys mean. May not touch: the dataplane (a host agent hands the
//! runtime a whole model through an apply hook, like every other source of policy).

pub mod agent;
pub mod codec;
pub mod incremental;
pub mod interest;
pub mod layout;
pub mod model_sync;
pub mod sim;
