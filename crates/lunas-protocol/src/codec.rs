//! Format sniffing and the envelopes shared by IAK and IDSL messages.
//!
//! IAK answers and callbacks in JSON are wrapped as `{"data": {...}}` (postpaid adds
//! `"meta": []`); in XML the same fields are the children of `<mp>`. Requests are the bare
//! object in JSON, `<mp>` in XML. The format is sniffed from the first byte, never trusted from a
//! `Content-Type` header.

use serde_json::{Map, Value};

use crate::error::{ProtocolError, Result};
use crate::xml;

/// The two encodings IAK and IDSL speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Json,
    Xml,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Xml => "xml",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Xml => "application/xml",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = ProtocolError;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(Format::Json),
            "xml" => Ok(Format::Xml),
            _ => Err(ProtocolError::invalid("format", "expected json or xml")),
        }
    }
}

/// Tells JSON from XML by the first significant byte (after a UTF-8 byte-order mark and white
/// space).
pub fn sniff(bytes: &[u8]) -> Result<Format> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => Err(ProtocolError::Empty),
        Some(b'{') => Ok(Format::Json),
        Some(b'<') => Ok(Format::Xml),
        Some(_) => Err(ProtocolError::UnknownFormat),
    }
}

/// The root element of every IAK XML message.
pub const XML_ROOT: &str = "mp";

/// Whether a JSON message is wrapped in `{"data": ...}` (answers, callbacks) or bare (requests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Envelope {
    Data,
    Bare,
}

/// Decodes an IAK message in either format into the object that holds its fields.
pub(crate) fn decode(bytes: &[u8], envelope: Envelope) -> Result<(Format, Map<String, Value>)> {
    let (format, value) = decode_value(bytes, envelope)?;
    match value {
        Value::Object(m) => Ok((format, m)),
        Value::String(s) if format == Format::Xml && s.trim().is_empty() => {
            Ok((format, Map::new()))
        }
        _ if envelope == Envelope::Data => {
            Err(ProtocolError::Envelope("`data` is not an object".into()))
        }
        _ => Err(ProtocolError::Envelope(
            "expected an object of fields".into(),
        )),
    }
}

/// The IAK fields lunas decides on: repeated with different values, a message is refused
/// (see [`crate::json`]); XML repeats them as sibling elements, held to the same rule.
const IAK_DECISIVE: &[&str] = &[
    "data",
    "ref_id",
    "tr_id",
    "status",
    "rc",
    "response_code",
    "sign",
    "price",
    "balance",
    "sn",
    "pin",
    "activation_code",
    "code",
    "product_code",
    "customer_id",
    "hp",
    "nominal",
    "admin",
    "amount",
    "selling_price",
    "period",
];

/// Applies the repeated-key rule to XML: sibling elements with the same name arrive as a list.
/// A list of texts under a decisive name is one value if they agree, else refused; under any
/// other name the last text is kept. Lists of elements (bills, price lists) are lists.
fn collapse_repeats(value: &mut Value) -> Result<()> {
    match value {
        Value::Object(fields) => {
            for (key, field) in fields.iter_mut() {
                if let Value::Array(items) = field {
                    if !items.is_empty() && items.iter().all(Value::is_string) {
                        let last = items.last().cloned().unwrap_or(Value::Null);
                        if IAK_DECISIVE.contains(&key.as_str()) && items.iter().any(|i| *i != last)
                        {
                            return Err(ProtocolError::DuplicateField(format!(
                                "the element <{key}> appears twice with different values; lunas will not guess which one is meant"
                            )));
                        }
                        *field = last;
                        continue;
                    }
                }
                collapse_repeats(field)?;
            }
        }
        Value::Array(items) => {
            for item in items {
                collapse_repeats(item)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Decodes an IAK message into the value that holds its fields, whatever its type: the
/// `data` member (or the whole object, for requests) in JSON, the content of `<mp>` in XML.
pub(crate) fn decode_value(bytes: &[u8], envelope: Envelope) -> Result<(Format, Value)> {
    let format = sniff(bytes)?;
    let value = match format {
        Format::Json => {
            let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            let value = crate::json::parse(bytes, IAK_DECISIVE)?;
            let Value::Object(mut top) = value else {
                return Err(ProtocolError::Envelope("expected a JSON object".into()));
            };
            match envelope {
                Envelope::Bare => Value::Object(top),
                Envelope::Data => top
                    .remove("data")
                    .filter(|v| !v.is_null())
                    .ok_or_else(|| ProtocolError::Envelope("expected {\"data\": {...}}".into()))?,
            }
        }
        Format::Xml => {
            let (root, value) = xml::parse(bytes)?;
            if root != XML_ROOT {
                return Err(ProtocolError::Envelope(format!(
                    "expected root element <{XML_ROOT}>, found <{root}>"
                )));
            }
            let mut value = value;
            collapse_repeats(&mut value)?;
            value
        }
    };
    Ok((format, value))
}

/// Encodes fields as IAK would: JSON (wrapped in `data`, plus `extra` top-level members such
/// as postpaid's `meta`) or an `<mp>` document.
pub(crate) fn encode(
    fields: Map<String, Value>,
    format: Format,
    envelope: Envelope,
    extra: &[(&str, Value)],
) -> String {
    match format {
        Format::Json => {
            let value = match envelope {
                Envelope::Bare => Value::Object(fields),
                Envelope::Data => {
                    let mut top = Map::new();
                    top.insert("data".into(), Value::Object(fields));
                    for (k, v) in extra {
                        top.insert((*k).to_owned(), v.clone());
                    }
                    Value::Object(top)
                }
            };
            value.to_string()
        }
        Format::Xml => xml::to_document(XML_ROOT, &fields),
    }
}

/// Builds a JSON object field by field, leaving out absent optional fields.
#[derive(Default)]
pub(crate) struct ObjectBuilder(Map<String, Value>);

impl ObjectBuilder {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn put(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.0.insert(key.to_owned(), value.into());
        self
    }

    pub(crate) fn opt(self, key: &str, value: Option<impl Into<Value>>) -> Self {
        match value {
            Some(v) => self.put(key, v),
            None => self,
        }
    }

    pub(crate) fn build(self) -> Map<String, Value> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing_looks_past_bom_and_white_space() {
        assert_eq!(sniff(b"  \n{\"a\":1}"), Ok(Format::Json));
        assert_eq!(sniff(b"\xEF\xBB\xBF<mp/>"), Ok(Format::Xml));
        assert_eq!(sniff(b""), Err(ProtocolError::Empty));
        assert_eq!(sniff(b"ref_id=1"), Err(ProtocolError::UnknownFormat));
    }
}
