//! The text form of an [`Explanation`]: the frame, one line per stage, the verdict.
//!
//! Owns: the layout of `sgswitch trace`'s output. May not touch: what is said (the
//! sentences come with the explanation).

use std::fmt::Write as _;

use super::Explanation;

impl Explanation {
    /// The explanation for people:
    ///
    /// ```text
    /// frame  tcp 10.0.0.10:40000 > 10.0.0.11:22 flags S  (60 bytes in on vm-a)
    ///   parse          -       pass     fa:16:3e:00:00:0a > fa:16:3e:00:00:0b, IPv4, 60 bytes
    ///   port-security  vm-a    pass     source fa:16:3e:00:00:0a / 10.0.0.10 is allowed on vm-a
    ///   egress         vm-a    pass     new connection, allowed by group default rule 0: ...
    ///   l2             vm-a    forward  destination MAC fa:16:3e:00:00:0b is vm-b's
    ///   ingress        vm-b    DROP     ingress-denied: no ingress rule of vm-b allows tcp 22 ...
    /// verdict: dropped at vm-b (ingress-denied)
    /// ```
    pub fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "frame  {}  ({} bytes in on {})",
            self.frame, self.bytes, self.in_port
        );
        let width = self
            .stages
            .iter()
            .filter_map(|st| st.port.as_ref().map(String::len))
            .max()
            .unwrap_or(1)
            .max(4);
        for st in &self.stages {
            let result = if st.result == "drop" {
                "DROP"
            } else {
                st.result
            };
            let detail = match st.reason {
                Some(r) => format!("{r}: {}", st.detail),
                None => st.detail.clone(),
            };
            let _ = writeln!(
                s,
                "  {:<13}  {:<width$}  {:<7}  {}",
                st.stage,
                st.port.as_deref().unwrap_or("-"),
                result,
                detail
            );
        }
        let _ = write!(s, "verdict: ");
        let mut parts = Vec::new();
        if !self.delivered.is_empty() {
            parts.push(format!("delivered to {}", self.delivered.join(", ")));
        }
        for d in &self.dropped {
            parts.push(format!("dropped at {} ({})", d.port, d.reason));
        }
        if let Some(r) = &self.arp_reply {
            parts.push(format!("answered: {r} sent to {}", self.in_port));
        }
        if self.held {
            parts.push("held (a later fragment waiting for its first fragment)".into());
        }
        if parts.is_empty() {
            parts.push("nothing".into());
        }
        let _ = writeln!(s, "{}", parts.join("; "));
        s
    }
}
