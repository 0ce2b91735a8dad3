//! A TOML document as a tree of values that remember where they were written.
//!
//! The config loader must (a) reject unknown keys and wrongly typed values with the line
//! of each, and (b) report *every* problem, not just the first. Serde derive does
//! neither: it stops at the first error. So the document is first read into this untyped
//! tree — every value with its byte span — and the schema is then walked by hand
//! ([`super::read`]), collecting errors.
//!
//! The tree is built from a `toml_edit` [`ImDocument`] (the parser the `toml` crate
//! itself runs, so syntax errors, their messages and spans are the same as with `toml`):
//! a parsed document keeps the span of every value, of every `[table]` /
//! `[[array of tables]]` (from its header to its last value) and of every inline table.
//! Implicit tables (created by dotted keys such as `backend.type = "tap"` or by `[a.b]`
//! headers) have no span; [`Node::line_span`] falls back to their first spanned
//! descendant.
//!
//! Owns: the shape of a parsed document (tables, arrays, scalars) and spans. May not
//! touch: the config schema ([`super::read`]) or messages.
//! Depends on `toml_edit` only, nothing else in the crate.
//!
//! History: this replaced `control/toml_tree.rs`, which got spans out of `toml`'s serde
//! deserializer by capturing `toml::Spanned`'s private struct and field names at run time
//! and replaying them (about 300 lines of serde visitors). Reading `toml_edit`'s document
//! directly needs no such trick, and it let the crate drop its `toml` dependency (the
//! export is written with `toml_edit` too, see [`super::write`]).
//! Rejected: `toml::Spanned` in serde-derived structs (stops at the first error, and
//! implicit tables have no span, so it cannot be asked for everywhere); scanning the
//! text for keys (wrong for quoted keys, inline tables, arrays).

use std::ops::Range;

use toml_edit::{ImDocument, Item, Table, TomlError, Value};

/// A TOML value with its byte span in the source, when known.
#[derive(Clone, PartialEq, Debug)]
pub(crate) struct Node {
    pub span: Option<Range<usize>>,
    pub kind: Kind,
}

/// The value of a [`Node`].
#[derive(Clone, PartialEq, Debug)]
pub(crate) enum Kind {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Datetime(String),
    Array(Vec<Node>),
    /// Keys in document order.
    Table(Vec<(String, Node)>),
}

impl Kind {
    /// The TOML type name, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Kind::Str(_) => "a string",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a float",
            Kind::Bool(_) => "a boolean",
            Kind::Datetime(_) => "a datetime",
            Kind::Array(_) => "an array",
            Kind::Table(_) => "a table",
        }
    }
}

impl Node {
    /// The span of this node, or of its first descendant that has one.
    pub fn line_span(&self) -> Option<Range<usize>> {
        if let Some(s) = &self.span {
            return Some(s.clone());
        }
        match &self.kind {
            Kind::Array(items) => items.iter().find_map(Node::line_span),
            Kind::Table(entries) => entries.iter().find_map(|(_, n)| n.line_span()),
            _ => None,
        }
    }

    /// The value under `key` if this is a table.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Table(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, n)| n),
            _ => None,
        }
    }

    /// The element at `index` if this is an array.
    pub fn at(&self, index: usize) -> Option<&Node> {
        match &self.kind {
            Kind::Array(items) => items.get(index),
            _ => None,
        }
    }
}

/// Parse a TOML document into a tree (the root is a table without span).
pub(crate) fn parse(text: &str) -> Result<Node, TomlError> {
    let doc = ImDocument::parse(text)?;
    Ok(Node {
        span: None,
        kind: table(doc.as_table()),
    })
}

/// 1-based line of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn table(t: &Table) -> Kind {
    Kind::Table(
        t.iter()
            .filter_map(|(k, item)| Some((k.to_string(), node(item)?)))
            .collect(),
    )
}

fn node(item: &Item) -> Option<Node> {
    Some(match item {
        Item::None => return None,
        Item::Value(v) => value(v),
        Item::Table(t) => Node {
            span: t.span(),
            kind: table(t),
        },
        Item::ArrayOfTables(a) => Node {
            span: a.span(),
            kind: Kind::Array(
                a.iter()
                    .map(|t| Node {
                        span: t.span(),
                        kind: table(t),
                    })
                    .collect(),
            ),
        },
    })
}

fn value(v: &Value) -> Node {
    let kind = match v {
        Value::String(s) => Kind::Str(s.value().clone()),
        Value::Integer(i) => Kind::Int(*i.value()),
        Value::Float(f) => Kind::Float(*f.value()),
        Value::Boolean(b) => Kind::Bool(*b.value()),
        Value::Datetime(d) => Kind::Datetime(d.value().to_string()),
        Value::Array(a) => Kind::Array(a.iter().map(value).collect()),
        Value::InlineTable(t) => {
            Kind::Table(t.iter().map(|(k, v)| (k.to_string(), value(v))).collect())
        }
    };
    Node {
        span: v.span(),
        kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str, node: &Node) -> Option<usize> {
        node.line_span().map(|s| line_of(text, s.start))
    }

    #[test]
    fn spans_of_values_tables_and_array_elements() {
        let text = "a = 1\n[[sg]]\nname = \"x\"\nrules = [ { direction = \"in\" },\n  { x = 2 } ]\n[[sg]]\nname = \"y\"\n[conntrack]\nudp = 5\n";
        let root = parse(text).unwrap();
        assert_eq!(line(text, root.get("a").unwrap()), Some(1));
        let sg = root.get("sg").unwrap();
        assert_eq!(line(text, sg.at(0).unwrap()), Some(2));
        assert_eq!(line(text, sg.at(0).unwrap().get("name").unwrap()), Some(3));
        let rules = sg.at(0).unwrap().get("rules").unwrap();
        assert_eq!(line(text, rules.at(0).unwrap()), Some(4));
        assert_eq!(line(text, rules.at(1).unwrap()), Some(5));
        assert_eq!(line(text, rules.at(1).unwrap().get("x").unwrap()), Some(5));
        assert_eq!(line(text, sg.at(1).unwrap()), Some(6));
        assert_eq!(line(text, root.get("conntrack").unwrap()), Some(8));
        assert_eq!(
            root.get("conntrack").unwrap().get("udp").unwrap().kind,
            Kind::Int(5)
        );
    }

    #[test]
    fn implicit_tables_and_datetimes() {
        let text = "[[p]]\nname = \"a\"\nbackend.type = \"tap\"\n[x.y]\nz = 1979-05-27T07:32:00Z\n";
        let root = parse(text).unwrap();
        let backend = root
            .get("p")
            .unwrap()
            .at(0)
            .unwrap()
            .get("backend")
            .unwrap();
        assert_eq!(backend.span, None);
        assert_eq!(line(text, backend), Some(3));
        let z = root.get("x").unwrap().get("y").unwrap().get("z").unwrap();
        assert!(matches!(z.kind, Kind::Datetime(_)));
        assert_eq!(line(text, z), Some(5));
    }

    #[test]
    fn syntax_error_has_span() {
        let text = "a = 1\nb = \n";
        let e = parse(text).unwrap_err();
        assert_eq!(line_of(text, e.span().unwrap().start), 2);
    }

    #[test]
    fn keys_in_document_order_and_values_typed() {
        let text =
            "z = \"s\"\na = 1.5\n[t]\nb = true\nq = [1, \"x\"]\n\"quoted key\" = { k = 2 }\n";
        let root = parse(text).unwrap();
        let Kind::Table(entries) = &root.kind else {
            panic!("root is a table")
        };
        let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["z", "a", "t"]);
        assert_eq!(root.get("z").unwrap().kind, Kind::Str("s".into()));
        assert_eq!(root.get("a").unwrap().kind, Kind::Float(1.5));
        let t = root.get("t").unwrap();
        assert_eq!(t.get("b").unwrap().kind, Kind::Bool(true));
        assert_eq!(
            t.get("q").unwrap().at(1).unwrap().kind,
            Kind::Str("x".into())
        );
        let inline = t.get("quoted key").unwrap();
        assert_eq!(line(text, inline), Some(6));
        assert_eq!(inline.get("k").unwrap().kind, Kind::Int(2));
    }
}
