//! Control plane: config files.
