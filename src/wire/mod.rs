//! Zero-copy typed views over frame bytes.
