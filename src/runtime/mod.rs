//! Runtimes that move frames between ports and the pipeline. Replay is a runtime too: a
//! capture file feeding the same pipeline the live switch runs.
//!
//! * [`switch`]: the live switch (workers, port groups, policy publication, hot-plug);
//! * [`replay`]: a capture through the pipeline, with the capture's clock.
//!
//! May use `pipeline`, `port` and `policy` (the model it is given); never `control` or the
//! CLI: a config reaches it as a validated `Model` (and, for replay, a loader function).
//! Both log through `tracing` (see each module's "Logging") and set no subscriber up.

pub mod replay;
pub mod switch;
