//! Control plane: config files (and, later, the management API and persistence).
//!
//! The control plane turns declarations into a validated [`crate::policy::Model`]:
//! * [`config`] reads the TOML config file — the single declarative form of the model —
//!   reports every problem with its file line, and writes a model back as TOML.
//!
//! Principle: validate → compile → publish, whole or nothing. Nothing here runs on the
//! packet path; allocation and `String` errors are fine.

pub mod config;
mod toml_tree;
