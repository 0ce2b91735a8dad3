//! Port backends.
pub mod pcap;
