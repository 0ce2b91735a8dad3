//! Compiled security-group classifier.
