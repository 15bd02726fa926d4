//! Positions of dotted keys in the configuration text. toml's errors carry a byte span but no
//! key path, and semantic errors carry a key path but no span; a second, span-only walk of the
//! document turns either into file, line, column and key. The walk also tells validation which
//! keys the file sets and in what order, and is made only when one of these questions comes up.

use std::cell::OnceCell;
use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::ConfigError;

/// The text being parsed, with its span tree built on first use.
pub(super) struct Source<'a> {
    origin: &'a str,
    text: &'a str,
    tree: OnceCell<Option<Node>>,
}

impl<'a> Source<'a> {
    pub(super) fn new(origin: &'a str, text: &'a str) -> Self {
        Self {
            origin,
            text,
            tree: OnceCell::new(),
        }
    }

    fn tree(&self) -> Option<&Node> {
        self.tree
            .get_or_init(|| toml::from_str::<Node>(self.text).ok())
            .as_ref()
    }

    /// Byte offset of the key `path` (`meter[0].register[1].unit`), if the text sets it.
    pub(super) fn key_offset(&self, path: &str) -> Option<usize> {
        let (found, depth) = self.tree()?.find(path);
        (depth == segments(path).count()).then_some(found).flatten()
    }

    /// `path` with its line, for messages that point at a second key.
    pub(super) fn describe(&self, path: &str) -> String {
        match self.key_offset(path) {
            Some(offset) => format!("{path} at line {}", line_column(self.text, offset).0),
            None => format!("{path} left at its default"),
        }
    }

    /// An error about the value of `keys[0]` — or of the first of `keys` the text sets, when
    /// the rule involves several keys. A key the text leaves at its default is reported at the
    /// innermost table that the text does contain, so the operator knows where to add it.
    pub(super) fn invalid(&self, keys: &[String], message: String) -> ConfigError {
        let set = keys.iter().find_map(|k| Some((k, self.key_offset(k)?)));
        let (key, offset) = match set {
            Some((key, offset)) => (key.clone(), Some(offset)),
            None => {
                let key = keys.first().cloned().unwrap_or_default();
                let offset = self.tree().and_then(|t| t.find(&key).0);
                (key, offset)
            }
        };
        self.error_at(offset, key, message)
    }

    /// Translates a toml parse or deserialization error.
    pub(super) fn toml_error(&self, error: &toml::de::Error) -> ConfigError {
        let message = error.message().trim().replace('\n', "; ");
        let Some(span) = error.span() else {
            return self.error_at(None, String::new(), message);
        };
        let key = match self.tree() {
            Some(tree) => {
                let path = tree.path_at(span.start).unwrap_or_default();
                // The span of a missing field is its table; name the field itself.
                match quoted_name(&message, "missing field `") {
                    Some(field) if path.is_empty() => field.to_string(),
                    Some(field) => format!("{path}.{field}"),
                    None => path,
                }
            }
            None => syntax_context(self.text, span.start),
        };
        self.error_at(Some(span.start), key, message)
    }

    fn error_at(&self, offset: Option<usize>, key: String, message: String) -> ConfigError {
        let (line, column) = offset.map_or((0, 0), |o| line_column(self.text, o));
        ConfigError::Invalid {
            origin: self.origin.to_string(),
            line,
            column,
            key: if key.is_empty() { "(file)".into() } else { key },
            message,
        }
    }
}

/// The text before `offset`, cut at a character boundary.
fn before(text: &str, offset: usize) -> &str {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = before(text, offset);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

/// The name between `prefix` and the next backquote in a serde message.
fn quoted_name<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let rest = &message[message.find(prefix)? + prefix.len()..];
    Some(&rest[..rest.find('`')?])
}

/// Segments of a dotted path: `meter[0].register` → ("meter", Some(0)), ("register", None).
fn segments(path: &str) -> impl Iterator<Item = (&str, Option<usize>)> {
    path.split('.').filter(|s| !s.is_empty()).map(|segment| {
        match segment
            .strip_suffix(']')
            .and_then(|s| s.split_once('['))
            .and_then(|(name, index)| Some((name, index.parse().ok()?)))
        {
            Some((name, index)) => (name, Some(index)),
            None => (segment, None),
        }
    })
}

/// Best-effort key for a syntax error, where toml yields no tree: the last table header
/// before the error (with array indices counted) and the key on the error's line.
fn syntax_context(text: &str, offset: usize) -> String {
    let before = before(text, offset);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    // Header name → number of `[[name]]` headers seen under the current parent element.
    let mut counts: Vec<(String, usize)> = Vec::new();
    let mut table = String::new();
    for line in before[..line_start].lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("[[").and_then(|l| l.split_once("]]")) {
            let name = name.0.trim().to_string();
            counts.retain(|(n, _)| !n.starts_with(&format!("{name}.")));
            match counts.iter_mut().find(|(n, _)| *n == name) {
                Some((_, count)) => *count += 1,
                None => counts.push((name.clone(), 1)),
            }
            table = indexed(&name, &counts);
        } else if let Some(name) = line.strip_prefix('[').and_then(|l| l.split_once(']')) {
            table = indexed(name.0.trim(), &counts);
        }
    }
    let line = &text[line_start..];
    let line = line.lines().next().unwrap_or_default();
    let key = line.split_once('=').map(|(k, _)| k.trim()).filter(|k| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    });
    match (table.is_empty(), key) {
        (_, None) => table,
        (true, Some(key)) => key.to_string(),
        (false, Some(key)) => format!("{table}.{key}"),
    }
}

/// `meter.register` → `meter[0].register[2]` using the array-of-tables counts seen so far.
fn indexed(name: &str, counts: &[(String, usize)]) -> String {
    let mut path = String::new();
    let mut prefix = String::new();
    for part in name.split('.').map(str::trim) {
        if !prefix.is_empty() {
            prefix.push('.');
            path.push('.');
        }
        prefix.push_str(part);
        path.push_str(part);
        if let Some((_, count)) = counts.iter().find(|(n, _)| *n == prefix) {
            path.push_str(&format!("[{}]", count - 1));
        }
    }
    path
}

/// A TOML item reduced to its shape and spans.
#[derive(Debug)]
struct Node {
    span: Option<Range<usize>>,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Leaf,
    Table(Vec<Entry>),
    Array(Vec<Node>),
}

#[derive(Debug)]
struct Entry {
    key: Key,
    value: Node,
}

#[derive(Debug)]
struct Key {
    name: String,
    span: Option<Range<usize>>,
}

impl Node {
    fn contains(&self, offset: usize) -> bool {
        self.span
            .as_ref()
            .is_some_and(|s| s.start <= offset && offset < s.end)
    }

    /// Offset of the deepest part of `path` present in the tree, and how many segments of the
    /// path that part covers.
    fn find(&self, path: &str) -> (Option<usize>, usize) {
        let mut node = self;
        let mut found = (None, 0);
        for (depth, (name, index)) in segments(path).enumerate() {
            let Kind::Table(entries) = &node.kind else {
                break;
            };
            let Some(entry) = entries.iter().find(|e| e.key.name == name) else {
                break;
            };
            node = &entry.value;
            found = (entry.key.span.as_ref().map(|s| s.start), depth + 1);
            if let Some(index) = index {
                match &node.kind {
                    Kind::Array(items) if index < items.len() => {
                        node = &items[index];
                        let start = node.span.as_ref().map(|s| s.start);
                        found = (start.or(found.0), depth + 1);
                    }
                    _ => {
                        found.1 = depth;
                        break;
                    }
                }
            }
        }
        found
    }

    /// Dotted path of the key or value whose span holds `offset`, else of the innermost table
    /// whose span holds it. Every child is searched: the span of a table ends before its
    /// sub-tables (`[[meter.register]]` lies outside its `[[meter]]`), and implicit tables made
    /// by dotted keys have no span at all.
    fn path_at(&self, offset: usize) -> Option<String> {
        let join = |name: String, child: &Node| {
            let inner = match child.path_at(offset) {
                Some(inner) if matches!(child.kind, Kind::Array(_)) => inner,
                Some(inner) => format!(".{inner}"),
                None if child.contains(offset) => String::new(),
                None => return None,
            };
            Some(format!("{name}{inner}"))
        };
        match &self.kind {
            Kind::Leaf => None,
            Kind::Table(entries) => entries.iter().find_map(|e| {
                let on_key = e.key.span.as_ref().is_some_and(|s| s.contains(&offset));
                match on_key {
                    true => Some(e.key.name.clone()),
                    false => join(e.key.name.clone(), &e.value),
                }
            }),
            Kind::Array(items) => {
                (items.iter().enumerate()).find_map(|(i, item)| join(format!("[{i}]"), item))
            }
        }
    }
}

// serde_spanned's protocol, which `toml::Spanned` uses. It is spoken here directly because
// `toml::Spanned` fails on items that toml gives no span (implicit tables made by dotted keys,
// datetime internals), while this walk must accept every document toml accepts.
const SPANNED: &str = "$__serde_spanned_private_Spanned";
const START: &str = "$__serde_spanned_private_start";
const END: &str = "$__serde_spanned_private_end";
const VALUE: &str = "$__serde_spanned_private_value";
const FIELDS: &[&str] = &[START, END, VALUE];

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct(SPANNED, FIELDS, NodeVisitor)
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct(SPANNED, FIELDS, KeyVisitor)
    }
}

/// The item inside a spanned wrapper; asking for a span again would recurse forever.
struct Bare(Node);

impl<'de> Deserialize<'de> for Bare {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor).map(Bare)
    }
}

/// Reads the `end` and `value` fields of a spanned wrapper whose `start` key was just read.
fn spanned_rest<'de, A, T>(map: &mut A) -> Result<(Range<usize>, T), A::Error>
where
    A: MapAccess<'de>,
    T: Deserialize<'de>,
{
    let start: usize = map.next_value()?;
    let mut end = start;
    let mut value = None;
    while let Some(key) = map.next_key::<Key>()? {
        match key.name.as_str() {
            END => end = map.next_value()?,
            VALUE => value = Some(map.next_value()?),
            _ => map.next_value::<de::IgnoredAny>().map(drop)?,
        }
    }
    let value = value.ok_or_else(|| de::Error::missing_field(VALUE))?;
    Ok((start..end, value))
}

struct NodeVisitor;

impl NodeVisitor {
    fn leaf<E>(self) -> Result<Node, E> {
        Ok(Node {
            span: None,
            kind: Kind::Leaf,
        })
    }
}

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any TOML item")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
        self.leaf()
    }
    fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
        self.leaf()
    }
    fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
        self.leaf()
    }
    fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
        self.leaf()
    }
    fn visit_str<E>(self, _: &str) -> Result<Node, E> {
        self.leaf()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node {
            span: None,
            kind: Kind::Array(items),
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Key>()? {
            if entries.is_empty() && key.name == START {
                let (span, Bare(node)) = spanned_rest(&mut map)?;
                return Ok(Node {
                    span: Some(span),
                    kind: node.kind,
                });
            }
            entries.push(Entry {
                key,
                value: map.next_value()?,
            });
        }
        Ok(Node {
            span: None,
            kind: Kind::Table(entries),
        })
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a TOML key")
    }

    fn visit_str<E>(self, name: &str) -> Result<Key, E> {
        Ok(Key {
            name: name.to_string(),
            span: None,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Key, A::Error> {
        match map.next_key::<Key>()? {
            Some(key) if key.name == START => {
                let (span, name) = spanned_rest(&mut map)?;
                Ok(Key {
                    name,
                    span: Some(span),
                })
            }
            _ => Err(de::Error::invalid_type(de::Unexpected::Map, &self)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(text: &str) -> Node {
        match toml::from_str::<Node>(text) {
            Ok(tree) => tree,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn finds_keys_in_tables_arrays_of_tables_and_dotted_keys() {
        let text = "a.b = 1\n[t]\nk = 2\n[[c]]\nid = 'x'\n[[c]]\nid = 'y'\n[[c.r]]\nu = 3\n";
        let t = tree(text);
        let at = |path: &str| t.find(path).0.map(|o| &text[o..o + 1]);
        assert_eq!(at("a.b"), Some("b"));
        assert_eq!(at("t.k"), Some("k"));
        assert_eq!(at("c[1].id"), Some("i"));
        assert_eq!(at("c[1].r[0].u"), Some("u"));
        let second_header = text.match_indices("[[c]]").nth(1).map(|(i, _)| i);
        assert_eq!(t.find("c[1].missing"), (second_header, 1));
        assert_eq!(
            t.path_at(text.find("3").unwrap_or(0)),
            Some("c[1].r[0].u".into())
        );
        assert_eq!(t.path_at(6), Some("a.b".into()));
    }

    #[test]
    fn datetimes_do_not_break_the_walk() {
        let t = tree("when = 1979-05-27T07:32:00Z\nx = 1\n");
        assert_eq!(t.find("x").0, Some(28));
    }

    #[test]
    fn syntax_errors_are_placed_under_their_table() {
        let text = "[[m]]\n[[m.r]]\n[[m]]\n[[m.r]]\n[[m.r]]\nunit = [\n";
        assert_eq!(syntax_context(text, text.len() - 1), "m[1].r[1].unit");
        assert_eq!(syntax_context("k = [", 5), "k");
    }

    #[test]
    fn columns_count_characters() {
        assert_eq!(line_column("ä = 1\nöö = x", 14), (2, 6));
    }
}
