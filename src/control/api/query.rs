//! Query strings: percent-decoding, filters (OR within a key, list literals, unknown
//! filter = 400).
//!
//! Owns: how a list is filtered. May not touch: a resource's rendering (each resource
//! module renders its own objects), the answers built from a filtered list
//! ([`super::resource`]), or the store.
//!
//! Depends on: nothing outside `api`.

use serde_json::Value;

use super::error::Fail;

pub(super) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

pub(super) const IGNORED_QUERY: &[&str] = &[
    "fields",
    "limit",
    "marker",
    "sort_key",
    "sort_dir",
    "page_reverse",
];

/// The values of one filter parameter: the value itself, or the items of a list literal
/// (`['a', 'b']` or `["a"]`), which the stock `openstack` client sends for list-valued
/// filters such as `port list --security-group NAME`. Items are ORed like repeated keys.
pub(super) fn list_literal(v: &str) -> Vec<&str> {
    match v.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        Some(inner) => inner
            .split(',')
            .map(|i| i.trim().trim_matches(|c| c == '\'' || c == '"'))
            .filter(|i| !i.is_empty())
            .collect(),
        None => vec![v],
    }
}

pub(super) fn scalar_matches(v: &Value, want: &str) -> bool {
    match v {
        Value::String(s) => s == want,
        Value::Bool(b) => want.eq_ignore_ascii_case(if *b { "true" } else { "false" }),
        Value::Number(n) => n.to_string() == want,
        Value::Null => want.is_empty() || want == "None" || want == "null",
        Value::Array(a) => a.iter().any(|e| !e.is_array() && scalar_matches(e, want)),
        Value::Object(_) => false,
    }
}

/// Keep the objects matching every filter (OR within one key).
pub(super) fn filter(items: Vec<Value>, query: &[(String, String)]) -> Result<Vec<Value>, Fail> {
    let mut filters: Vec<(&str, Vec<&str>)> = Vec::new();
    for (k, v) in query {
        if IGNORED_QUERY.contains(&k.as_str()) {
            continue;
        }
        let idx = match filters.iter().position(|(fk, _)| fk == k) {
            Some(i) => i,
            None => {
                filters.push((k, Vec::new()));
                filters.len() - 1
            }
        };
        filters[idx].1.extend(list_literal(v));
    }
    if filters.is_empty() {
        return Ok(items);
    }
    if let Some(first) = items.first() {
        for (k, _) in &filters {
            if first.get(k).is_none() {
                return Err(Fail::bad(format!(
                    "{k} is an invalid attribute for filtering."
                )));
            }
        }
    }
    Ok(items
        .into_iter()
        .filter(|it| {
            filters.iter().all(|(k, vs)| {
                it.get(k)
                    .is_some_and(|v| vs.iter().any(|w| scalar_matches(v, w)))
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn query_parsing_and_decoding() {
        let q = parse_query("name=a%20b&id=1&id=2&fields=id&x=%zz+y");
        assert_eq!(q[0], ("name".into(), "a b".into()));
        assert_eq!(q[1], ("id".into(), "1".into()));
        assert_eq!(q[4], ("x".into(), "%zz y".into()));
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("a%4"), "a%4");
        assert_eq!(percent_decode("%41"), "A");
    }

    #[test]
    fn filters_or_within_key_and_reject_unknown() {
        let items = vec![
            json!({"id": "1", "name": "a", "s": true, "l": ["x"]}),
            json!({"id": "2", "name": "b", "s": false, "l": []}),
        ];
        let q = |s: &str| parse_query(s);
        assert_eq!(filter(items.clone(), &q("id=1&id=2")).unwrap().len(), 2);
        assert_eq!(
            filter(items.clone(), &q("name=b&fields=id")).unwrap().len(),
            1
        );
        assert_eq!(filter(items.clone(), &q("s=True")).unwrap().len(), 1);
        assert_eq!(filter(items.clone(), &q("l=x")).unwrap().len(), 1);
        // The openstack client's list literal (`port list --security-group SG`).
        assert_eq!(
            filter(items.clone(), &q("l=%5B%27x%27%5D")).unwrap().len(),
            1
        );
        assert_eq!(
            filter(items.clone(), &q("l=%5B%22y%22%5D")).unwrap().len(),
            0
        );
        assert_eq!(
            filter(items.clone(), &q("id=%5B%271%27%2C%20%272%27%5D"))
                .unwrap()
                .len(),
            2
        );
        assert_eq!(filter(items, &q("nope=1")).unwrap_err().status, 400);
    }
}
