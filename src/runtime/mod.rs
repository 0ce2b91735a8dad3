//! Runtimes that move frames between ports and the pipeline. Replay is a runtime too: a
//! capture file feeding the same pipeline the live switch runs.

pub mod replay;
pub mod switch;
