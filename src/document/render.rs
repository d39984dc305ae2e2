//! Renderings of document content that recurse a bounded number of levels, whatever the
//! document holds.
//!
//! A client can nest values thousands of levels deep (a Y.Map in a Y.Map…, an `Any` array in
//! an array…, XML elements in elements). yrs's own `to_json` and `get_string` recurse once per
//! level, and so do serde_json's drop and serializer over the `Value` they would produce; in
//! wasm a stack overflow traps and resets the whole instance. So every walk here recurses at
//! most [`MAX_DEPTH`] levels:
//! - JSON renderings stop at that depth: a map or an array nested deeper is replaced by a
//!   marker, `{"$truncated": "<digest>"}`, whose digest is of the content cut off, so equal
//!   content gives equal markers and a change below the cut still shows as a change in a diff.
//! - XML renders as a string, written with an explicit stack: exact at any depth.
//! - Digests walk with an explicit stack: no recursion at all.

use serde_json::{Map as JsonMap, Value};
use std::fmt::Write as _;
use std::sync::Arc;
use yrs::branch::BranchPtr;
use yrs::types::text::YChange;
use yrs::types::{AsPrelim, ToJson};
use yrs::{
    Any, Array, ArrayRef, Doc, GetString, Map, MapRef, Number, Out, ReadTxn, Text, TextRef,
    Transact, Xml,
};

/// Deepest nesting of maps and arrays a rendering shows; deeper ones become a
/// [`TRUNCATED`] marker. Each level is one stack frame of a few hundred bytes, and the wasm
/// stack is 1 MiB (rustc's default for `wasm32-unknown-unknown`) shared with the request that
/// asked, so the bound keeps a rendering far from it. Real documents nest a dozen levels (a
/// ProseMirror tree, a canvas's groups); 64 is also half of serde_json's parser limit (128),
/// so a rendering, marker included, parses back with serde_json and most JSON parsers.
pub const MAX_DEPTH: usize = 64;

/// Key of the object that stands for content nested deeper than [`MAX_DEPTH`]. Its value is an
/// opaque digest of that content: equal content gives an equal digest.
pub const TRUNCATED: &str = "$truncated";

/// Renders every root type as plain JSON: texts as strings, maps as objects, arrays as arrays,
/// XML as its XML string. Root types a client never declared are inferred from their content.
///
/// Maps and arrays nested deeper than [`MAX_DEPTH`] are replaced by a [`TRUNCATED`] marker
/// (this is the rule for every JSON rendering: the document read, a version, the document at
/// an instant, diffs and the webhook summary's input); the document itself is untouched, and
/// its Yjs update form has all of it.
pub fn render_json(doc: &Doc) -> Value {
    let txn = doc.transact();
    let mut out = JsonMap::new();
    for (name, root) in txn.root_refs() {
        let value = match &root {
            // A root only ever received through updates: its kind is inferred from its
            // content, as for a restore (an XML node list is an XML fragment, for example).
            Out::UndefinedRef(_) => match root_kind(&txn, name) {
                Some(kind) => read_root(&txn, name, kind),
                None => empty_root(&txn, &root),
            },
            other => out_to_json(&txn, other),
        };
        out.insert(name.to_string(), value);
    }
    Value::Object(out)
}

/// The rendering of a root with no content left, by what its (deleted) items were. yrs's
/// `as_prelim` copies content recursively, but this root has none that is not deleted, so the
/// copy is one level deep.
fn empty_root<T: ReadTxn>(txn: &T, out: &Out) -> Value {
    match out.as_prelim(txn) {
        yrs::In::Text(_)
        | yrs::In::XmlText(_)
        | yrs::In::XmlElement(_)
        | yrs::In::XmlFragment(_) => Value::String(String::new()),
        yrs::In::Array(_) => Value::Array(Vec::new()),
        _ => Value::Object(JsonMap::new()),
    }
}

/// What a root type holds, as far as rendering, diffing and edits care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Text,
    Map,
    Array,
    Xml,
    Other,
}

impl Kind {
    /// The kind's name with its article, for messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Text => "a text",
            Kind::Map => "a map",
            Kind::Array => "an array",
            Kind::Xml => "an XML type",
            Kind::Other => "a value of another type",
        }
    }
}

/// The kind of root `name`; `None` when it is missing, or was only received through updates
/// and is empty, so nothing tells its type.
pub(crate) fn root_kind<T: ReadTxn>(txn: &T, name: &str) -> Option<Kind> {
    match txn.get(name)? {
        Out::YText(_) => Some(Kind::Text),
        Out::YMap(_) => Some(Kind::Map),
        Out::YArray(_) => Some(Kind::Array),
        Out::YXmlFragment(_) | Out::YXmlElement(_) | Out::YXmlText(_) => Some(Kind::Xml),
        Out::UndefinedRef(branch) => undefined_kind(txn, branch),
        _ => Some(Kind::Other),
    }
}

/// The kind of a root with no declared type, from its content, as yrs infers it (map entries
/// and a list: an XML element; text with map entries: XML text; …) except that a list of XML
/// nodes is an XML fragment rather than an array. yrs's inference (`as_prelim`) copies the
/// whole content recursively; this looks at the first level only.
fn undefined_kind<T: ReadTxn>(txn: &T, branch: BranchPtr) -> Option<Kind> {
    let has_map = MapRef::from(branch).len(txn) > 0;
    if branch.len() == 0 && !has_map {
        return None;
    }
    // A text's diff yields its strings and embeds as `Any`, and nested types as themselves;
    // an array's plain values yield nothing.
    let first = TextRef::from(branch)
        .diff(txn, YChange::identity)
        .into_iter()
        .next();
    let text = matches!(first, Some(ref chunk) if matches!(chunk.insert, Out::Any(_)));
    Some(match (has_map, branch.len() > 0, text) {
        (true, _, true) => Kind::Xml,
        (false, _, true) => Kind::Text,
        (true, true, false) => Kind::Xml,
        (true, false, false) => Kind::Map,
        (false, _, false) => match ArrayRef::from(branch).get(txn, 0) {
            Some(Out::YXmlElement(_) | Out::YXmlText(_)) => Kind::Xml,
            _ => Kind::Array,
        },
    })
}

/// Root `name` read as `kind`, as plain JSON: texts and XML as strings, maps as objects, arrays
/// as arrays (nested shared types as their plain JSON, as in [`render_json`]).
pub(crate) fn read_root<T: ReadTxn>(txn: &T, name: &str, kind: Kind) -> Value {
    match kind {
        Kind::Text => Value::String(
            txn.get_text(name)
                .map(|t| t.get_string(txn))
                .unwrap_or_default(),
        ),
        Kind::Map => txn
            .get_map(name)
            .map_or(Value::Object(JsonMap::new()), |m| {
                out_to_json(txn, &Out::YMap(m))
            }),
        Kind::Array => txn.get_array(name).map_or(Value::Array(Vec::new()), |a| {
            out_to_json(txn, &Out::YArray(a))
        }),
        Kind::Xml => Value::String(match txn.get(name) {
            Some(node @ (Out::YXmlElement(_) | Out::YXmlText(_))) => xml_string(txn, &node),
            _ => txn
                .get_xml_fragment(name)
                .map_or_else(String::new, |x| xml_string(txn, &Out::YXmlFragment(x))),
        }),
        Kind::Other => txn.get(name).map_or(Value::Null, |o| out_to_json(txn, &o)),
    }
}

/// How texts render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// As their string, as yrs's `to_json` does.
    Plain,
    /// As their content with formatting ([`text_delta`]), for comparing content exactly.
    Formatted,
}

/// A shared type or value as plain JSON, at most [`MAX_DEPTH`] levels deep.
pub(crate) fn out_to_json<T: ReadTxn>(txn: &T, out: &Out) -> Value {
    out_json(txn, out, 1, Mode::Plain)
}

/// `out` at nesting `level` (its parent's plus one; a root is at 1), rendered per `mode`.
pub(crate) fn out_json<T: ReadTxn>(txn: &T, out: &Out, level: usize, mode: Mode) -> Value {
    match out {
        Out::Any(any) => any_json(any, level),
        Out::YText(t) => match mode {
            Mode::Plain => Value::String(t.get_string(txn)),
            Mode::Formatted => text_delta(txn, t, level),
        },
        Out::YArray(_) | Out::YMap(_) if level > MAX_DEPTH => {
            truncated(digest(txn, Node::Out(out.clone()), mode))
        }
        Out::YArray(a) => Value::Array(
            a.iter(txn)
                .map(|v| out_json(txn, &v, level + 1, mode))
                .collect(),
        ),
        Out::YMap(m) => Value::Object(
            m.iter(txn)
                .map(|(k, v)| (k.to_string(), out_json(txn, &v, level + 1, mode)))
                .collect(),
        ),
        Out::YXmlElement(_) | Out::YXmlFragment(_) | Out::YXmlText(_) => {
            Value::String(xml_string(txn, out))
        }
        // A subdocument (as its guid) or an untyped branch (null): one level.
        other => any_json(&other.to_json(txn), level),
    }
}

/// Converts a yrs value to JSON (binary as an array of bytes, undefined as null), at most
/// [`MAX_DEPTH`] levels deep.
pub fn any_to_json(any: &Any) -> Value {
    any_json(any, 1)
}

fn any_json(any: &Any, level: usize) -> Value {
    match any {
        Any::Null | Any::Undefined => Value::Null,
        Any::Bool(b) => Value::Bool(*b),
        Any::Number(n) => serde_json::to_value(n).unwrap_or(Value::Null),
        Any::String(s) => Value::String(s.to_string()),
        Any::Buffer(b) => Value::Array(b.iter().map(|x| Value::from(*x)).collect()),
        Any::Array(_) | Any::Map(_) if level > MAX_DEPTH => truncated(any_digest(any)),
        Any::Array(items) => Value::Array(items.iter().map(|v| any_json(v, level + 1)).collect()),
        Any::Map(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), any_json(v, level + 1)))
                .collect(),
        ),
    }
}

/// A text's content with its formatting, in a canonical form: attributes set to null are
/// dropped and neighbouring strings with the same attributes merged, so equal content compares
/// equal however it is split into items. Embeds are one level below the text.
pub(crate) fn text_delta<T: ReadTxn>(txn: &T, text: &TextRef, level: usize) -> Value {
    if level > MAX_DEPTH {
        return truncated(digest(
            txn,
            Node::Out(Out::YText(text.clone())),
            Mode::Formatted,
        ));
    }
    let mut chunks: Vec<(Value, JsonMap<String, Value>)> = Vec::new();
    for chunk in text.diff(txn, YChange::identity) {
        let insert = out_json(txn, &chunk.insert, level + 1, Mode::Formatted);
        let attributes: JsonMap<String, Value> = chunk
            .attributes
            .iter()
            .flat_map(|a| a.iter())
            .filter(|(_, v)| !matches!(v, Any::Null))
            .map(|(k, v)| (k.to_string(), any_json(v, level + 1)))
            .collect();
        match (chunks.last_mut(), &insert) {
            (Some((Value::String(prev), attrs)), Value::String(s)) if *attrs == attributes => {
                prev.push_str(s)
            }
            _ => chunks.push((insert, attributes)),
        }
    }
    chunks
        .into_iter()
        .map(|(insert, attributes)| serde_json::json!({"insert": insert, "attributes": attributes}))
        .collect()
}

fn truncated(digest: String) -> Value {
    Value::Object(JsonMap::from_iter([(
        TRUNCATED.to_string(),
        Value::String(digest),
    )]))
}

/// Whether `value` nests maps and arrays at most `max` levels deep (a scalar is 0 levels, `[]`
/// and `{"a": 1}` are 1). Stops at the first level past `max`, so it recurses at most
/// `max + 1` times.
pub(crate) fn json_within(value: &Value, max: usize) -> bool {
    let children: Box<dyn Iterator<Item = &Value>> = match value {
        Value::Array(items) => Box::new(items.iter()),
        Value::Object(map) => Box::new(map.values()),
        _ => return true,
    };
    max > 0 && children.into_iter().all(|v| json_within(v, max - 1))
}

// ---- XML ----

/// An XML node as yrs's `get_string` writes it, at any depth: elements as `<tag a="v">…</tag>`,
/// XML text with its formatting as tags. Two differences make it deterministic: attributes are
/// in key order (yrs writes them in hash order), and a map or array value inside XML (rare) is
/// written as JSON (yrs writes its own notation).
pub(crate) fn xml_string<T: ReadTxn>(txn: &T, node: &Out) -> String {
    enum Step {
        Node(Out),
        Close(Arc<str>),
    }
    let mut s = String::new();
    let mut stack = vec![Step::Node(node.clone())];
    while let Some(step) = stack.pop() {
        match step {
            Step::Close(tag) => {
                let _ = write!(s, "</{tag}>");
            }
            Step::Node(Out::YXmlElement(x)) => {
                let tag = x.try_tag().cloned().unwrap_or_else(|| Arc::from(""));
                let _ = write!(s, "<{tag}");
                let mut attributes: Vec<(&str, Out)> = x.attributes(txn).collect();
                attributes.sort_by(|a, b| a.0.cmp(b.0));
                for (key, value) in attributes {
                    let _ = write!(s, " {key}=\"");
                    match &value {
                        Out::Any(any) => inline_any(&mut s, any),
                        // Shared types as an attribute: yrs writes their type's name.
                        other => {
                            let _ = write!(s, "{other}");
                        }
                    }
                    s.push('"');
                }
                s.push('>');
                stack.push(Step::Close(tag));
                // Every child, as `get_string` writes them (`children` stops at a non-XML one).
                let children: Vec<Out> = AsRef::<ArrayRef>::as_ref(&x).iter(txn).collect();
                stack.extend(children.into_iter().rev().map(Step::Node));
            }
            Step::Node(Out::YXmlFragment(f)) => {
                let children: Vec<Out> = AsRef::<ArrayRef>::as_ref(&f).iter(txn).collect();
                stack.extend(children.into_iter().rev().map(Step::Node));
            }
            Step::Node(Out::YXmlText(t)) => xml_text(&mut s, txn, &t),
            Step::Node(Out::Any(any)) => inline_any(&mut s, &any),
            Step::Node(Out::YText(t)) => s.push_str(&t.get_string(txn)),
            Step::Node(node @ (Out::YMap(_) | Out::YArray(_))) => {
                s.push_str(&out_to_json(txn, &node).to_string())
            }
            Step::Node(other) => s.push_str(&other.to_string(txn)),
        }
    }
    s
}

/// XML text as yrs writes it: each formatting attribute as a tag around its stretch.
fn xml_text<T: ReadTxn>(s: &mut String, txn: &T, text: &yrs::XmlTextRef) {
    for chunk in text.diff(txn, YChange::identity) {
        let mut attrs: Vec<(&Arc<str>, &Any)> =
            chunk.attributes.iter().flat_map(|a| a.iter()).collect();
        attrs.sort_by(|a, b| a.0.cmp(b.0));
        for (node, at) in &attrs {
            let _ = write!(s, "<{node}");
            if let Any::Map(at) = at {
                let mut at: Vec<_> = at.iter().collect();
                at.sort_by(|a, b| a.0.cmp(b.0));
                for (k, v) in at {
                    let _ = write!(s, " {k}=\"");
                    inline_any(s, v);
                    s.push('"');
                }
            }
            s.push('>');
        }
        if let Out::Any(any) = &chunk.insert {
            inline_any(s, any);
        }
        for (node, _) in attrs.iter().rev() {
            let _ = write!(s, "</{node}>");
        }
    }
}

/// A value inside XML: strings as they are, other scalars as yrs displays them, maps and arrays
/// as (bounded) JSON.
fn inline_any(s: &mut String, any: &Any) {
    match any {
        Any::String(v) => s.push_str(v),
        Any::Array(_) | Any::Map(_) => s.push_str(&any_to_json(any).to_string()),
        scalar => {
            let _ = write!(s, "{scalar}");
        }
    }
}

// ---- digests ----

/// What a digest walk visits.
pub(crate) enum Node {
    /// A shared type or value of the document.
    Out(Out),
    /// A plain value.
    Any(Any),
    /// A map key, before its value.
    Key(Arc<str>),
}

/// A digest of a plain value (see [`digest`]).
fn any_digest(any: &Any) -> String {
    let mut walk = Digest::default();
    walk.stack.push(Node::Any(any.clone()));
    // A plain value holds no shared type, so no transaction is needed.
    walk.finish::<yrs::Transaction<'static>>(None, Mode::Plain)
}

/// A digest of `node`'s content as `mode` renders it, walked with an explicit stack (no
/// recursion, whatever the depth). Map entries are taken in key order and every value is
/// tagged with its type and length, so equal content gives equal digests and different content
/// different ones (SHA-256, shortened to 128 bits: collisions are out of reach).
pub(crate) fn digest<T: ReadTxn>(txn: &T, node: Node, mode: Mode) -> String {
    let mut walk = Digest::default();
    walk.stack.push(node);
    walk.finish(Some(txn), mode)
}

#[derive(Default)]
struct Digest {
    hash: hmac_sha256::Hash,
    stack: Vec<Node>,
}

impl Digest {
    fn tag(&mut self, tag: u8, len: usize) {
        self.hash.update([tag]);
        self.hash.update((len as u64).to_le_bytes());
    }

    fn bytes(&mut self, tag: u8, bytes: &[u8]) {
        self.tag(tag, bytes.len());
        self.hash.update(bytes);
    }

    /// Walks the stack; shared types are read through `txn` (there are none without one).
    fn finish<T: ReadTxn>(mut self, txn: Option<&T>, mode: Mode) -> String {
        while let Some(node) = self.stack.pop() {
            match (node, txn) {
                (Node::Key(key), _) => self.bytes(b'k', key.as_bytes()),
                (Node::Any(any), _) => self.any(any),
                (Node::Out(out), Some(txn)) => self.out(txn, out, mode),
                (Node::Out(_), None) => self.tag(b'U', 0),
            }
        }
        let hash = self.hash.finalize();
        hash[..16].iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    fn any(&mut self, any: Any) {
        match any {
            Any::Null => self.tag(b'n', 0),
            Any::Undefined => self.tag(b'u', 0),
            Any::Bool(b) => self.tag(b'b', usize::from(b)),
            Any::Number(Number::Int(i)) => self.bytes(b'i', &i.to_le_bytes()),
            Any::Number(Number::Float(f)) => self.bytes(b'f', &f.to_bits().to_le_bytes()),
            Any::String(s) => self.bytes(b's', s.as_bytes()),
            Any::Buffer(b) => self.bytes(b'B', &b),
            Any::Array(items) => {
                self.tag(b'A', items.len());
                self.stack
                    .extend(items.iter().rev().map(|v| Node::Any(v.clone())));
            }
            Any::Map(map) => {
                self.tag(b'M', map.len());
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| b.0.cmp(a.0));
                for (k, v) in entries {
                    self.stack.push(Node::Any(v.clone()));
                    self.stack.push(Node::Key(Arc::from(k.as_str())));
                }
            }
        }
    }

    fn out<T: ReadTxn>(&mut self, txn: &T, out: Out, mode: Mode) {
        match out {
            Out::Any(any) => self.any(any),
            Out::YText(t) if mode == Mode::Plain => self.bytes(b'T', t.get_string(txn).as_bytes()),
            Out::YText(t) => {
                let chunks = t.diff(txn, YChange::identity);
                self.tag(b'D', chunks.len());
                for chunk in chunks.into_iter().rev() {
                    let attributes = chunk
                        .attributes
                        .iter()
                        .flat_map(|a| a.iter())
                        .filter(|(_, v)| !matches!(v, Any::Null))
                        .map(|(k, v)| (k.to_string(), v.clone()))
                        .collect();
                    self.stack.push(Node::Any(Any::Map(Arc::new(attributes))));
                    self.stack.push(Node::Out(chunk.insert));
                }
            }
            Out::YArray(a) => {
                let items: Vec<Out> = a.iter(txn).collect();
                self.tag(b'a', items.len());
                self.stack.extend(items.into_iter().rev().map(Node::Out));
            }
            Out::YMap(m) => {
                let mut entries: Vec<(Arc<str>, Out)> =
                    m.iter(txn).map(|(k, v)| (Arc::from(k), v)).collect();
                self.tag(b'm', entries.len());
                entries.sort_by(|a, b| b.0.cmp(&a.0));
                for (k, v) in entries {
                    self.stack.push(Node::Out(v));
                    self.stack.push(Node::Key(k));
                }
            }
            node @ (Out::YXmlElement(_) | Out::YXmlFragment(_) | Out::YXmlText(_)) => {
                self.bytes(b'x', xml_string(txn, &node).as_bytes())
            }
            Out::YDoc(doc) => self.bytes(b'd', doc.guid().as_bytes()),
            Out::UndefinedRef(_) => self.tag(b'U', 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use yrs::{MapPrelim, WriteTxn, XmlElementPrelim, XmlFragment, XmlTextPrelim};

    use crate::document::tests::replica;

    /// Root map `m` holding `a` → `a` → … `levels` Y.Maps deep, with `leaf` set in the last.
    fn nested_maps(levels: usize, leaf: &str) -> Doc {
        let doc = Doc::with_client_id(7);
        let mut map = doc.get_or_insert_map("m");
        let mut txn = doc.transact_mut();
        for _ in 0..levels {
            map = map.insert(&mut txn, "a", MapPrelim::default());
        }
        map.insert(&mut txn, "leaf", leaf);
        drop(txn);
        doc
    }

    #[test]
    fn maps_deeper_than_the_bound_become_a_marker() {
        let doc = nested_maps(MAX_DEPTH + 5, "x");
        let rendered = render_json(&doc);
        // The root map is at level 1: MAX_DEPTH maps are rendered, the next is the marker.
        let mut value = &rendered["m"];
        for _ in 1..MAX_DEPTH {
            value = &value["a"];
        }
        let marker = value["a"].as_object().unwrap();
        assert_eq!(marker.len(), 1);
        assert!(marker[TRUNCATED].as_str().is_some_and(|d| d.len() == 32));
        // The same content gives the same marker, in another replica too; other content not.
        assert_eq!(render_json(&replica(&doc)), rendered);
        assert_ne!(render_json(&nested_maps(MAX_DEPTH + 5, "y")), rendered);
        assert_ne!(render_json(&nested_maps(MAX_DEPTH + 6, "x")), rendered);
        // Within the bound, nothing is cut.
        let whole = serde_json::to_string(&render_json(&nested_maps(MAX_DEPTH - 1, "x")));
        assert!(!whole.unwrap().contains(TRUNCATED));
    }

    #[test]
    fn plain_values_deeper_than_the_bound_become_a_marker() {
        let deep =
            |leaf: i64| (0..MAX_DEPTH + 3).fold(Any::from(leaf), |v, _| Any::Array(Arc::from([v])));
        let rendered = any_to_json(&deep(1));
        let mut value = &rendered;
        for _ in 0..MAX_DEPTH {
            value = &value[0];
        }
        assert!(value[TRUNCATED].is_string(), "{value}");
        assert_eq!(any_to_json(&deep(1)), rendered);
        assert_ne!(any_to_json(&deep(2)), rendered);
        // Maps digest by key, whatever their hash order.
        let map = |pairs: &[(&str, i64)]| {
            let inner = Any::from(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), Any::from(*v)))
                    .collect::<std::collections::HashMap<_, _>>(),
            );
            (0..MAX_DEPTH).fold(inner, |v, _| Any::Array(Arc::from([v])))
        };
        assert_eq!(
            any_to_json(&map(&[("a", 1), ("b", 2), ("c", 3)])),
            any_to_json(&map(&[("c", 3), ("a", 1), ("b", 2)]))
        );
        assert_ne!(
            any_to_json(&map(&[("a", 1), ("b", 2)])),
            any_to_json(&map(&[("a", 2), ("b", 1)]))
        );
    }

    #[test]
    fn xml_renders_as_yrs_writes_it() {
        let doc = Doc::with_client_id(3);
        let frag = doc.get_or_insert_xml_fragment("x");
        {
            let mut txn = doc.transact_mut();
            let p = frag.push_back(&mut txn, XmlElementPrelim::empty("p"));
            p.insert_attribute(&mut txn, "class", "lead");
            let text = p.push_back(&mut txn, XmlTextPrelim::new("hello world"));
            text.format(
                &mut txn,
                0,
                5,
                yrs::types::Attrs::from([("b".into(), Any::Bool(true))]),
            );
            p.push_back(&mut txn, XmlElementPrelim::empty("br"));
        }
        let txn = doc.transact();
        let expected = frag.get_string(&txn);
        assert_eq!(
            expected,
            r#"<p class="lead"><b>hello</b> world<br></br></p>"#
        );
        assert_eq!(xml_string(&txn, &Out::YXmlFragment(frag.clone())), expected);
        drop(txn);
        assert_eq!(render_json(&replica(&doc))["x"], json!(expected));
    }

    #[test]
    fn xml_attributes_are_written_in_key_order() {
        let doc = Doc::with_client_id(3);
        let frag = doc.get_or_insert_xml_fragment("x");
        let mut txn = doc.transact_mut();
        let p = frag.push_back(&mut txn, XmlElementPrelim::empty("p"));
        for key in ["d", "b", "a", "c"] {
            p.insert_attribute(&mut txn, key, key);
        }
        assert_eq!(
            xml_string(&txn, &Out::YXmlElement(p)),
            r#"<p a="a" b="b" c="c" d="d"></p>"#
        );
    }

    #[test]
    fn deep_xml_renders_whole() {
        let doc = Doc::with_client_id(3);
        let frag = doc.get_or_insert_xml_fragment("x");
        {
            let mut txn = doc.transact_mut();
            let mut node = frag.push_back(&mut txn, XmlElementPrelim::empty("p"));
            for _ in 0..MAX_DEPTH * 3 {
                node = node.push_back(&mut txn, XmlElementPrelim::empty("p"));
            }
            node.push_back(&mut txn, XmlTextPrelim::new("deep"));
        }
        let n = MAX_DEPTH * 3 + 1;
        let expected = format!("{}deep{}", "<p>".repeat(n), "</p>".repeat(n));
        assert_eq!(render_json(&doc)["x"], json!(expected));
    }

    #[test]
    fn root_kinds_are_inferred_from_the_first_level_as_yrs_infers_them() {
        let client = Doc::with_client_id(7);
        {
            let mut txn = client.transact_mut();
            txn.get_or_insert_text("text").insert(&mut txn, 0, "hi");
            let embed = txn.get_or_insert_text("embed");
            embed.insert_embed(&mut txn, 0, Any::from("picture"));
            txn.get_or_insert_map("map").insert(&mut txn, "k", "v");
            txn.get_or_insert_array("array").push_back(&mut txn, "s");
            txn.get_or_insert_array("maps")
                .push_back(&mut txn, MapPrelim::default());
            txn.get_or_insert_xml_fragment("xml")
                .push_back(&mut txn, XmlTextPrelim::new("t"));
            txn.get_or_insert_text("emptied")
                .insert(&mut txn, 0, "gone");
        }
        client
            .get_or_insert_text("emptied")
            .remove_range(&mut client.transact_mut(), 0, 4);
        let server = replica(&client);
        let txn = server.transact();
        for (name, kind) in [
            ("text", Some(Kind::Text)),
            ("embed", Some(Kind::Text)),
            ("map", Some(Kind::Map)),
            ("array", Some(Kind::Array)),
            ("maps", Some(Kind::Array)),
            ("xml", Some(Kind::Xml)),
            ("emptied", None),
            ("missing", None),
        ] {
            assert_eq!(root_kind(&txn, name), kind, "{name}");
            // yrs's own inference, which copies the content.
            if let (Some(Out::UndefinedRef(b)), Some(kind)) = (txn.get(name), kind) {
                let yrs_kind = match Out::UndefinedRef(b).as_prelim(&txn) {
                    yrs::In::Text(_) => Kind::Text,
                    yrs::In::Map(_) => Kind::Map,
                    yrs::In::Array(_) if kind == Kind::Xml => Kind::Xml,
                    yrs::In::Array(_) => Kind::Array,
                    _ => Kind::Other,
                };
                assert_eq!(yrs_kind, kind, "{name}");
            }
        }
    }

    #[test]
    fn json_depths_are_measured_in_levels() {
        assert!(json_within(&json!(1), 0));
        assert!(!json_within(&json!([]), 0));
        assert!(json_within(&json!([]), 1));
        assert!(json_within(&json!({"a": [1, 2], "b": {}}), 2));
        assert!(!json_within(&json!({"a": [1, [2]]}), 2));
    }
}
