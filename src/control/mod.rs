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
//! * [`packet_log`] writes the packet-log records the pipelines produce (Neutron's
//!   logging extension) as JSON lines, named, with ids, rate limited, off the dataplane.
//!
//! Principle: validate → compile → publish, whole or nothing. Nothing here runs on the
//! packet path; allocation and `String` errors are fine.
//!
//! Owns: where the model comes from (the config file, the store and its state file, the
//! API) and the one path a change takes (validate → prepare → apply → commit). May not
//! touch: the dataplane's state; a change reaches the workers only as a whole validated
//! model handed to the store's apply hook, which its caller connects to the runtime.
//!
//! Layering (wire → flow → policy → classifier → conntrack → l2 → port → pipeline →
//! runtime → **control** → CLI; a module may use only those to its left): `control` may
//! use any module to its left; today it uses `policy` (model, specs, validation) and
//! `port::napi`'s bounds for the `[switch]` settings, and nothing of the dataplane (the
//! apply hook keeps the runtime out of it); `packet_log` uses `pipeline`'s record type
//! and token bucket. Inside it: `api` → `store` → `config` → `policy`; `packet_log` →
//! `store`, `config`; `http_client` stands alone. Only the CLI, tests and the test kit use it.

pub mod api;
pub mod config;
pub mod connect;
pub mod explain;
pub mod http_client;
pub mod kv;
pub mod packet_log;
pub mod shared;
pub mod store;

pub use connect::{connect, ApplyPolicy};
