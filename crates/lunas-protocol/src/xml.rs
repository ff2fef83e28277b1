//! A small, hostile-input-safe bridge between provider XML and [`serde_json::Value`].
//!
//! IAK's XML messages are a root element (`<mp>`) whose children mirror the JSON `data` object,
//! so the decoders of this crate read both formats from the same [`Map`]: leaves become strings,
//! elements with children become objects, and repeated children become arrays.
//!
//! Refused outright: a DOCTYPE (so no entity can be declared, which rules out "billion laughs"
//! and external entities), any entity reference but the five predefined ones and character
//! references, mixed content, more than [`MAX_DEPTH`] levels or [`MAX_ELEMENTS`] elements.

use quick_xml::events::Event;
use quick_xml::Reader;
use serde_json::{Map, Value};

use crate::error::{ProtocolError, Result};

/// Deepest nesting any provider message uses is 5 (postpaid `desc/tagihan/detail/...`).
pub const MAX_DEPTH: usize = 32;
/// Far above any provider message, low enough to bound the work on hostile input.
pub const MAX_ELEMENTS: usize = 10_000;

/// The XML declaration IAK puts before every message.
pub const DECLARATION: &str = r#"<?xml version="1.0" encoding="UTF-8" ?>"#;

struct Frame {
    name: String,
    children: Map<String, Value>,
    has_children: bool,
    text: String,
}

/// Parses an XML document into its root element's name and content.
pub fn parse(bytes: &[u8]) -> Result<(String, Value)> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ProtocolError::InvalidXml(format!("not UTF-8: {e}")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = Reader::from_str(text);
    reader.config_mut().trim_text(false);
    reader.config_mut().check_end_names = true;

    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<(String, Value)> = None;
    let mut elements = 0usize;

    loop {
        let event = reader
            .read_event()
            .map_err(|e| ProtocolError::InvalidXml(e.to_string()))?;
        match event {
            Event::DocType(_) => return Err(ProtocolError::XmlDoctype),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Start(e) => {
                elements += 1;
                if stack.len() >= MAX_DEPTH || elements > MAX_ELEMENTS {
                    return Err(ProtocolError::XmlTooLarge);
                }
                if stack.is_empty() && root.is_some() {
                    return Err(ProtocolError::InvalidXml(
                        "more than one root element".into(),
                    ));
                }
                let name = element_name(e.name().as_ref())?;
                if let Some(parent) = stack.last_mut() {
                    parent.has_children = true;
                }
                stack.push(Frame {
                    name,
                    children: Map::new(),
                    has_children: false,
                    text: String::new(),
                });
            }
            Event::Empty(e) => {
                elements += 1;
                if elements > MAX_ELEMENTS {
                    return Err(ProtocolError::XmlTooLarge);
                }
                let name = element_name(e.name().as_ref())?;
                match stack.last_mut() {
                    Some(parent) => {
                        parent.has_children = true;
                        insert(&mut parent.children, name, Value::String(String::new()));
                    }
                    None if root.is_none() => root = Some((name, Value::String(String::new()))),
                    None => {
                        return Err(ProtocolError::InvalidXml(
                            "more than one root element".into(),
                        ))
                    }
                }
            }
            Event::Text(t) => {
                let s = t.unescape().map_err(|e| match e {
                    quick_xml::Error::Escape(esc) => ProtocolError::XmlEntity(esc.to_string()),
                    other => ProtocolError::InvalidXml(other.to_string()),
                })?;
                match stack.last_mut() {
                    Some(frame) => frame.text.push_str(&s),
                    None if s.trim().is_empty() => {}
                    None => {
                        return Err(ProtocolError::InvalidXml(
                            "text outside the root element".into(),
                        ))
                    }
                }
            }
            Event::CData(c) => {
                let raw = c.into_inner();
                let s = std::str::from_utf8(&raw)
                    .map_err(|e| ProtocolError::InvalidXml(format!("not UTF-8: {e}")))?;
                match stack.last_mut() {
                    Some(frame) => frame.text.push_str(s),
                    None => {
                        return Err(ProtocolError::InvalidXml(
                            "CDATA outside the root element".into(),
                        ))
                    }
                }
            }
            Event::End(_) => {
                let frame = stack
                    .pop()
                    .ok_or_else(|| ProtocolError::InvalidXml("unbalanced end tag".into()))?;
                let value = if frame.has_children {
                    if !frame.text.trim().is_empty() {
                        return Err(ProtocolError::InvalidXml(format!(
                            "element <{}> mixes text and elements",
                            frame.name
                        )));
                    }
                    Value::Object(frame.children)
                } else {
                    Value::String(frame.text)
                };
                match stack.last_mut() {
                    Some(parent) => insert(&mut parent.children, frame.name, value),
                    None => root = Some((frame.name, value)),
                }
            }
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(ProtocolError::InvalidXml(
            "document ends inside an element".into(),
        ));
    }
    root.ok_or_else(|| ProtocolError::InvalidXml("no root element".into()))
}

fn element_name(raw: &[u8]) -> Result<String> {
    std::str::from_utf8(raw)
        .map(str::to_owned)
        .map_err(|e| ProtocolError::InvalidXml(format!("element name not UTF-8: {e}")))
}

/// Adds a child; a repeated name turns the entry into an array, in document order.
fn insert(map: &mut Map<String, Value>, name: String, value: Value) {
    match map.get_mut(&name) {
        None => {
            map.insert(name, value);
        }
        Some(Value::Array(items)) => items.push(value),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
    }
}

/// Writes `content` as the document IAK sends: the declaration, then `<root>` with one child
/// element per field on its own line. Nested objects nest, arrays repeat their element, `null`
/// fields are left out, strings are escaped.
pub fn to_document(root: &str, content: &Map<String, Value>) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(DECLARATION);
    out.push('\n');
    out.push('<');
    out.push_str(root);
    out.push_str(">\n");
    write_children(&mut out, content);
    out.push_str("</");
    out.push_str(root);
    out.push('>');
    out
}

fn write_children(out: &mut String, map: &Map<String, Value>) {
    for (name, value) in map {
        write_element(out, name, value);
    }
}

fn write_element(out: &mut String, name: &str, value: &Value) {
    match value {
        Value::Null => {}
        Value::Array(items) => {
            for item in items {
                write_element(out, name, item);
            }
        }
        Value::Object(map) => {
            out.push('<');
            out.push_str(name);
            out.push_str(">\n");
            write_children(out, map);
            out.push_str("</");
            out.push_str(name);
            out.push_str(">\n");
        }
        Value::String(s) => leaf(out, name, &quick_xml::escape::escape(s.as_str())),
        Value::Number(n) => leaf(out, name, &n.to_string()),
        Value::Bool(b) => leaf(out, name, if *b { "true" } else { "false" }),
    }
}

fn leaf(out: &mut String, name: &str, text: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    out.push_str(text);
    out.push_str("</");
    out.push_str(name);
    out.push_str(">\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_objects_and_repeated_children() {
        let doc = br#"<?xml version="1.0"?>
<mp><a>1</a><b> x &amp; y </b><c><d>1</d><d>2</d></c><e/></mp>"#;
        let (root, v) = parse(doc).unwrap();
        assert_eq!(root, "mp");
        assert_eq!(
            v,
            serde_json::json!({"a": "1", "b": " x & y ", "c": {"d": ["1", "2"]}, "e": ""})
        );
    }

    #[test]
    fn doctype_and_custom_entities_are_refused() {
        let laughs = br#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><mp><a>&lol2;</a></mp>"#;
        assert_eq!(parse(laughs), Err(ProtocolError::XmlDoctype));
        let xxe = br#"<?xml version="1.0"?><!DOCTYPE mp [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><mp>&xxe;</mp>"#;
        assert_eq!(parse(xxe), Err(ProtocolError::XmlDoctype));
        let undeclared = b"<mp><a>&xxe;</a></mp>";
        assert!(matches!(
            parse(undeclared),
            Err(ProtocolError::XmlEntity(_))
        ));
    }

    #[test]
    fn malformed_documents_are_typed_errors() {
        for doc in [
            &b"<mp><a>1</a>"[..],
            b"<mp><product_code>x</code></mp>",
            b"<mp>text<a>1</a></mp>",
            b"<mp/><mp/>",
            b"",
            b"   ",
            b"\xff\xfe<mp/>",
        ] {
            assert!(parse(doc).is_err(), "{:?}", String::from_utf8_lossy(doc));
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("{}{}", "<a>".repeat(100), "</a>".repeat(100));
        assert_eq!(parse(deep.as_bytes()), Err(ProtocolError::XmlTooLarge));
    }

    #[test]
    fn written_documents_parse_back() {
        let v = serde_json::json!({"a": "x<&>y", "n": 5, "o": {"d": ["1", "2"]}, "skip": null});
        let doc = to_document("mp", v.as_object().unwrap());
        let (root, back) = parse(doc.as_bytes()).unwrap();
        assert_eq!(root, "mp");
        assert_eq!(
            back,
            serde_json::json!({"a": "x<&>y", "n": "5", "o": {"d": ["1", "2"]}})
        );
    }
}
