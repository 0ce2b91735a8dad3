//! Neutron's defaults (security-groups.md §7-9): the `default` group, its four rules, the
//! two egress template rules every other new group gets, and the default network name.
//!
//! Owns: the names and rule lists of the defaults. May not touch: specs, error
//! reporting or the model being validated — these are plain constructors; whether a
//! default applies (a group without `rules`, a model without a `default` group) is
//! decided by [`super::groups`] and the driver.
//!
//! Depends on: the model types, inside `policy`; no other sgswitch module.

use super::super::{Direction, EtherType, Remote, Rule, SecurityGroup};

/// Name of the default security group.
pub const DEFAULT_GROUP: &str = "default";
/// Description given to the default security group when none is written.
pub const DEFAULT_GROUP_DESCRIPTION: &str = "Default security group";
/// Network of a port that names none.
pub const DEFAULT_NETWORK: &str = "default";

/// A rule allowing everything in `direction` for `ethertype`, optionally from/to a
/// remote group.
pub(super) fn allow_all(direction: Direction, ethertype: EtherType, remote: Remote) -> Rule {
    Rule {
        direction,
        ethertype,
        protocol: None,
        protocol_zero: false,
        port_range_min: None,
        port_range_max: None,
        remote,
        remote_ip_prefix_raw: None,
        description: String::new(),
    }
}

/// The rules every new security group gets (§8): egress IPv4 any, egress IPv6 any.
pub fn template_rules() -> Vec<Rule> {
    vec![
        allow_all(Direction::Egress, EtherType::IPv4, Remote::Any),
        allow_all(Direction::Egress, EtherType::IPv6, Remote::Any),
    ]
}

/// The rules of the `default` group (§8): the template rules plus ingress IPv4 / IPv6
/// from members of `default` itself.
pub fn default_group_rules() -> Vec<Rule> {
    let mut rules = template_rules();
    for et in [EtherType::IPv4, EtherType::IPv6] {
        rules.push(allow_all(
            Direction::Ingress,
            et,
            Remote::Group(DEFAULT_GROUP.to_string()),
        ));
    }
    rules
}

/// The implicit `default` group of a model that declares none.
pub fn default_group() -> SecurityGroup {
    SecurityGroup {
        name: DEFAULT_GROUP.to_string(),
        description: DEFAULT_GROUP_DESCRIPTION.to_string(),
        stateful: true,
        rules: default_group_rules(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::validate::{rule_key, RuleKey};
    use std::collections::HashSet;

    #[test]
    fn templates() {
        assert_eq!(template_rules().len(), 2);
        let d = default_group();
        assert_eq!(d.rules.len(), 4);
        assert!(d.rules[2..]
            .iter()
            .all(|r| r.remote == Remote::Group(DEFAULT_GROUP.into())
                && r.direction == Direction::Ingress));
        // The default rules are themselves valid and pairwise distinct.
        let keys: HashSet<RuleKey> = d.rules.iter().map(rule_key).collect();
        assert_eq!(keys.len(), 4);
    }
}
