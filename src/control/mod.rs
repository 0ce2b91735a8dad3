//! Control plane: config files, the management API and persistence.
//!
//! The control plane turns declarations into a validated [`crate::policy::Model`]:
//! * [`config`] reads the TOML config file — the single declarative form of the model —
//!   reports every problem with its file line, and writes a model back as TOML.
//! * [`store`] is the authoritative state (model + Neutron ids, timestamps, revisions),
//!   the one path every change goes through, and its persistence.
//! * [`api`] serves a Neutron-compatible REST subset over the store.
//! * [`mod@connect`] wires the store to what makes its model live (the running switch, or
//!   a test double): the one place an apply hook is set.
//! * [`http_client`] is the small HTTP/1.1 JSON client the CLI commands use.
//!
//! Principle: validate → compile → publish, whole or nothing. Nothing here runs on the
//! packet path; allocation and `String` errors are fine.

pub mod api;
pub mod config;
pub mod connect;
pub mod http_client;
pub mod store;

pub use connect::{connect, ApplyPolicy};
