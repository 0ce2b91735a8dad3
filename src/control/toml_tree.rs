//! A TOML document as a tree of values that remember where they were written.
//!
//! The config loader must (a) reject unknown keys and wrongly typed values with the line
//! of each, and (b) report *every* problem, not just the first. Serde derive does
//! neither: it stops at the first error. So the document is first read into this untyped
//! tree — every value with its byte span — and the schema is then walked by hand
//! (`config.rs`), collecting errors.
//!
//! Spans come from the `toml` crate's `Spanned` support: the deserializer hands out a
//! value's span when asked for a struct with `Spanned`'s private name and fields. Those
//! names are private to `serde_spanned`, so they are not copied here: they are captured
//! once at run time by asking `toml::Spanned` to deserialize from a recording
//! deserializer ([`spanned_magic`]). Implicit tables (created by dotted keys such as
//! `backend.type = "tap"` or by `[a.b]` headers) have no span in `toml`; such a table is
//! read without one, and [`Node::line_span`] falls back to its first spanned descendant.
//!
//! Rejected options: `toml_edit` documents (a second TOML API to keep in step with
//! `toml`); scanning the text for keys (wrong for quoted keys, inline tables, arrays).

use std::fmt;
use std::ops::Range;
use std::sync::OnceLock;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

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
pub(crate) fn parse(text: &str) -> Result<Node, toml::de::Error> {
    let kind = KindSeed.deserialize(toml::Deserializer::new(text))?;
    Ok(Node { span: None, kind })
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

/// `toml::Spanned`'s private struct name and field names (start, end, value).
struct SpannedMagic {
    name: &'static str,
    fields: &'static [&'static str],
}

/// Capture [`SpannedMagic`] once by letting `toml::Spanned` describe itself to a
/// recording deserializer.
fn spanned_magic() -> Option<&'static SpannedMagic> {
    static MAGIC: OnceLock<Option<SpannedMagic>> = OnceLock::new();
    MAGIC
        .get_or_init(|| {
            let mut captured = None;
            let _ = toml::Spanned::<()>::deserialize(Recorder(&mut captured));
            captured.filter(|m: &SpannedMagic| m.fields.len() == 3)
        })
        .as_ref()
}

#[derive(Debug)]
struct RecorderError;

impl fmt::Display for RecorderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("recorded")
    }
}

impl std::error::Error for RecorderError {}

impl de::Error for RecorderError {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        RecorderError
    }
}

/// A deserializer that only records the arguments of `deserialize_struct`.
struct Recorder<'a>(&'a mut Option<SpannedMagic>);

impl<'de> Deserializer<'de> for Recorder<'_> {
    type Error = RecorderError;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, RecorderError> {
        Err(RecorderError)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, RecorderError> {
        *self.0 = Some(SpannedMagic { name, fields });
        Err(RecorderError)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
        identifier ignored_any
    }
}

/// The key `toml` uses to smuggle a datetime through serde.
const DATETIME_KEY: &str = "$__toml_private_datetime";

/// Deserializes a [`Node`]: asks for a span, accepts a value without one.
struct NodeSeed;

impl<'de> DeserializeSeed<'de> for NodeSeed {
    type Value = Node;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        match spanned_magic() {
            Some(m) => d.deserialize_struct(m.name, m.fields, NodeVisitor),
            None => d.deserialize_any(NodeVisitor),
        }
    }
}

struct NodeVisitor;

fn unspanned(kind: Kind) -> Node {
    Node { span: None, kind }
}

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a TOML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(unspanned(Kind::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(unspanned(Kind::Int(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        KindVisitor.visit_u64(v).map(unspanned)
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(unspanned(Kind::Float(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(unspanned(Kind::Str(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(unspanned(Kind::Str(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Node, A::Error> {
        KindVisitor.visit_seq(seq).map(unspanned)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let Some(first) = map.next_key::<String>()? else {
            return Ok(unspanned(Kind::Table(Vec::new())));
        };
        if let Some(m) = spanned_magic() {
            if first == m.fields[0] {
                // The spanned form: start, end, value — in this order.
                let start: usize = map.next_value()?;
                let _end_key: Option<String> = map.next_key()?;
                let end: usize = map.next_value()?;
                let _value_key: Option<String> = map.next_key()?;
                let kind = map.next_value_seed(KindSeed)?;
                return Ok(Node {
                    span: Some(start..end),
                    kind,
                });
            }
        }
        // An implicit table: no span.
        table_entries(Some(first), map).map(unspanned)
    }
}

/// Read the rest of a table whose first key may already be consumed.
fn table_entries<'de, A: MapAccess<'de>>(
    mut pending: Option<String>,
    mut map: A,
) -> Result<Kind, A::Error> {
    let mut entries = Vec::new();
    loop {
        let key = match pending.take() {
            Some(k) => k,
            None => match map.next_key::<String>()? {
                Some(k) => k,
                None => break,
            },
        };
        if key == DATETIME_KEY && entries.is_empty() {
            let text: String = map.next_value()?;
            return Ok(Kind::Datetime(text));
        }
        let value = map.next_value_seed(NodeSeed)?;
        entries.push((key, value));
    }
    Ok(Kind::Table(entries))
}

/// Deserializes the [`Kind`] of a value whose span is already known.
struct KindSeed;

impl<'de> DeserializeSeed<'de> for KindSeed {
    type Value = Kind;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        d.deserialize_any(KindVisitor)
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = Kind;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a TOML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Kind, E> {
        Ok(Kind::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Kind, E> {
        Ok(Kind::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Kind, E> {
        i64::try_from(v)
            .map(Kind::Int)
            .map_err(|_| E::custom("integer out of range"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Kind, E> {
        Ok(Kind::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Kind, E> {
        Ok(Kind::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Kind, E> {
        Ok(Kind::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(NodeSeed)? {
            items.push(item);
        }
        Ok(Kind::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Kind, A::Error> {
        table_entries(None, map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str, node: &Node) -> Option<usize> {
        node.line_span().map(|s| line_of(text, s.start))
    }

    #[test]
    fn magic_is_captured() {
        let m = spanned_magic().expect("toml::Spanned must describe itself");
        assert_eq!(m.fields.len(), 3);
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
}
