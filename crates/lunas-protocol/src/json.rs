//! JSON with one policy for repeated keys, for every provider's messages.
//!
//! A JSON object may name a key twice; parsers disagree on what that means (most keep the last
//! value, some the first, some refuse), so a message could say one thing to a provider's
//! system and another to lunas. The policy: a key repeated with the **same** value, or a
//! repeated key lunas does not decide on (a free-text `additional_data`, a `message`), is
//! accepted and the last value kept — MCPayment's own documented example repeats
//! `response_code` and `additional_data`. A key lunas decides on (a ref, a status, an rc, an
//! amount, a signature, the `data` envelope; each provider names its own) repeated with
//! **different** values is refused: lunas will not guess which one the sender meant.

use std::cell::RefCell;

use serde::de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::error::{ProtocolError, Result};

/// Parses `bytes` as JSON under the repeated-key policy; `decisive` names the keys (at any
/// depth) that may not be repeated with different values.
pub fn parse(bytes: &[u8], decisive: &[&str]) -> Result<Value> {
    parse_noting(bytes, decisive).map(|(value, _)| value)
}

/// [`parse`], and the keys that were repeated and accepted (each once, in the order met), so
/// that the message's evidence can say so.
pub fn parse_noting(bytes: &[u8], decisive: &[&str]) -> Result<(Value, Vec<String>)> {
    let repeated = RefCell::new(Vec::new());
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = Strict {
        decisive,
        repeated: &repeated,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v))
    .map_err(|e| {
        if e.is_data() {
            ProtocolError::DuplicateField(e.to_string())
        } else {
            ProtocolError::InvalidJson(e.to_string())
        }
    })?;
    Ok((value, repeated.into_inner()))
}

#[derive(Clone, Copy)]
struct Strict<'a> {
    decisive: &'a [&'a str],
    repeated: &'a RefCell<Vec<String>>,
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> std::result::Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> std::result::Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> std::result::Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> std::result::Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> std::result::Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> std::result::Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_none<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Value, A::Error> {
        let mut fields = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self)?;
            if let Some(earlier) = fields.get(&key) {
                if *earlier != value && self.decisive.contains(&key.as_str()) {
                    return Err(A::Error::custom(format!(
                        "the field {key:?} appears twice with different values; lunas will not guess which one is meant"
                    )));
                }
                let mut repeated = self.repeated.borrow_mut();
                if !repeated.contains(&key) {
                    repeated.push(key.clone());
                }
            }
            fields.insert(key, value);
        }
        Ok(Value::Object(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DECISIVE: &[&str] = &["status", "data"];

    #[test]
    fn identical_or_informational_repeats_are_accepted_and_differing_decisive_ones_refused() {
        let v = parse(
            br#"{"status":"1","status":"1","note":"a","note":"b"}"#,
            DECISIVE,
        )
        .unwrap();
        assert_eq!(v, serde_json::json!({"status": "1", "note": "b"}));
        let (_, repeated) = parse_noting(
            br#"{"note":"a","status":"1","status":"1","note":"b","note":"c"}"#,
            DECISIVE,
        )
        .unwrap();
        assert_eq!(repeated, ["status", "note"]);
        assert!(parse_noting(br#"{"status":"1"}"#, DECISIVE)
            .unwrap()
            .1
            .is_empty());
        let e = parse(
            br#"{"data":{"status":"1"},"data":{"status":"2"}}"#,
            DECISIVE,
        )
        .unwrap_err();
        assert!(matches!(e, ProtocolError::DuplicateField(_)), "{e}");
        assert!(e.to_string().contains("\"data\""), "{e}");
        let e = parse(br#"{"x":{"status":"1","status":"2"}}"#, DECISIVE).unwrap_err();
        assert!(e.to_string().contains("\"status\""), "{e}");
        assert!(matches!(
            parse(br#"{"status":"1"} trailing"#, DECISIVE),
            Err(ProtocolError::InvalidJson(_))
        ));
        assert!(matches!(
            parse(b"{\"status\":", DECISIVE),
            Err(ProtocolError::InvalidJson(_))
        ));
    }
}
