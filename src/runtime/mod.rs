//! Runtimes that move frames between ports and the pipeline. Replay is a runtime too: a
//! capture file feeding the same pipeline the live switch runs.
//!
//! * [`switch`]: the live switch — pinned polling workers, the ports each owns, flow
//!   steering between them, learned-MAC announcements, the atomic publication of a
//!   compiled policy ([`switch::Switch::apply`], which also plugs and unplugs ports),
//!   reports and shutdown;
//! * [`replay`]: a capture file as the ingress port of the same pipeline, the capture's
//!   timestamps as the clock, policy changes at given times.
//!
//! Owns: threads, which worker owns which port, and when a compiled policy takes effect.
//! May not touch: the per-frame decisions (the pipeline's), port backends' internals
//! (`port`'s), or where a policy comes from (config files, the store and the API are the
//! control plane's; it and the CLI call in through [`switch::Switch`]).
//!
//! Layering (wire → flow → policy → classifier → conntrack → l2 → port → pipeline →
//! **runtime** → control → CLI; a module may use only those to its left): `runtime` uses
//! `pipeline` and `port`, and `flow`, `l2` and `policy` for their types; never `control`
//! or the CLI, which use it.
//!
//! Both log through `tracing` (see each module's "Logging") and set no subscriber up.

pub mod replay;
pub mod switch;
