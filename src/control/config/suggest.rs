//! "Did you mean": the allowed key closest to an unknown one, by edit distance.
//!
//! Owns: the distance and the threshold of a plausible typo. May not touch: which keys
//! are allowed where (the callers, [`super::read`] and [`super::keys`], pass them; the
//! lists are `keys`' descriptors) or message wording.
//! Depends on nothing else in the crate.

/// The allowed key closest to `key` by edit distance, if close enough to be a typo.
pub(super) fn closest<'a>(key: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|a| (edit_distance(key, a), *a))
        .filter(|&(d, a)| d <= 2.max(a.len() / 4) && d < a.len())
        .min_by_key(|&(d, _)| d)
        .map(|(_, a)| a)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typo_suggestions() {
        let rule_keys = super::super::keys::names("security_groups[].rules[]", None);
        let rule_keys = rule_keys.as_slice();
        assert_eq!(closest("protcol", rule_keys), Some("protocol"));
        assert_eq!(closest("remote_groups", rule_keys), Some("remote_group"));
        assert_eq!(closest("zzzzzz", rule_keys), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
