//! Lenient access to the fields of a decoded document.
//!
//! Providers send the same field as a JSON string in one message and as a JSON number in another
//! (IAK callbacks send `"price":"16500"`, check-status sends `"price":16500`), and XML carries
//! every value as text. Decoders in this crate therefore read a [`serde_json::Map`] (JSON as is,
//! XML converted by [`crate::xml`]) through these helpers instead of deriving rigid types.

use serde_json::{Map, Value};

use crate::error::{ProtocolError, Result};

/// One object of a document, read field by field.
pub(crate) struct Fields<'a> {
    map: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(map: &'a Map<String, Value>) -> Self {
        Fields { map }
    }

    /// Looks a field up by its names (the v2 name first, then older aliases). A `null` counts as
    /// absent. Two names present with different values are an error. Returns the value and the
    /// index of the name that matched.
    pub(crate) fn lookup(&self, names: &[&str]) -> Result<Option<(&'a Value, usize)>> {
        let mut found: Option<(&'a Value, usize)> = None;
        for (i, name) in names.iter().enumerate() {
            match self.map.get(*name) {
                None | Some(Value::Null) => {}
                Some(v) => match found {
                    None => found = Some((v, i)),
                    Some((prev, j)) => {
                        if scalar_text(prev) != scalar_text(v) || scalar_text(v).is_none() {
                            return Err(ProtocolError::ConflictingFields {
                                first: names[j].to_owned(),
                                second: (*name).to_owned(),
                            });
                        }
                    }
                },
            }
        }
        Ok(found)
    }

    /// A text field given as a string or a number.
    pub(crate) fn text(&self, names: &[&str]) -> Result<Option<String>> {
        match self.lookup(names)? {
            None => Ok(None),
            Some((v, i)) => scalar_text(v)
                .map(Some)
                .ok_or_else(|| ProtocolError::invalid(names[i], "expected a string or a number")),
        }
    }

    pub(crate) fn text_req(&self, names: &[&str]) -> Result<String> {
        self.text(names)?
            .ok_or_else(|| ProtocolError::MissingField(names[0].to_owned()))
    }

    /// An integer field (amounts in rupiah, ids) given as a number or a numeric string.
    /// An empty string counts as absent.
    pub(crate) fn int(&self, names: &[&str]) -> Result<Option<i64>> {
        match self.lookup(names)? {
            None => Ok(None),
            Some((Value::String(s), _)) if s.trim().is_empty() => Ok(None),
            Some((v, i)) => int_value(v)
                .map(Some)
                .map_err(|r| ProtocolError::invalid(names[i], r)),
        }
    }

    pub(crate) fn int_req(&self, names: &[&str]) -> Result<i64> {
        self.int(names)?
            .ok_or_else(|| ProtocolError::MissingField(names[0].to_owned()))
    }

    /// A list of objects. XML cannot tell a one-element list from a single child, so a lone
    /// object counts as a list of one.
    pub(crate) fn objects(&self, name: &str) -> Result<Option<Vec<&'a Map<String, Value>>>> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => Ok(Some(vec![m])),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(Some(Vec::new())),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::Object(m) => Ok(m),
                    _ => Err(ProtocolError::invalid(name, "expected a list of objects")),
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(_) => Err(ProtocolError::invalid(name, "expected a list of objects")),
        }
    }

    /// The raw value, for fields kept verbatim (postpaid `desc`).
    pub(crate) fn raw(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name)
    }
}

/// The text of a scalar: strings as they are, numbers in their JSON spelling.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An integer from a JSON number or a numeric string. Amounts are whole rupiah: a fractional
/// part is accepted only when it is zero (`"16500.00"`, `16500.0`), never rounded.
pub fn int_value(v: &Value) -> std::result::Result<i64, String> {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(i)
            } else if n.is_u64() {
                Err("number out of range".into())
            } else {
                parse_int_text(&n.to_string())
            }
        }
        Value::String(s) => parse_int_text(s),
        _ => Err("expected a number or a numeric string".into()),
    }
}

/// Parses `[-]digits[.zeros]` (optionally surrounded by white space) into an `i64`.
pub fn parse_int_text(s: &str) -> std::result::Result<i64, String> {
    let t = s.trim();
    let (int_part, frac) = match t.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (t, None),
    };
    if let Some(f) = frac {
        if f.is_empty() || !f.bytes().all(|b| b == b'0') {
            return Err(format!("{t:?} is not a whole number of rupiah"));
        }
    }
    let digits = int_part.strip_prefix('-').unwrap_or(int_part);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{t:?} is not a number"));
    }
    int_part
        .parse::<i64>()
        .map_err(|_| format!("{t:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integers_arrive_as_numbers_strings_or_whole_decimals() {
        assert_eq!(int_value(&json!(16500)), Ok(16500));
        assert_eq!(int_value(&json!("16500")), Ok(16500));
        assert_eq!(int_value(&json!(" 16500 ")), Ok(16500));
        assert_eq!(int_value(&json!("16500.00")), Ok(16500));
        assert_eq!(int_value(&json!(16500.0)), Ok(16500));
        assert_eq!(int_value(&json!(99995833900_i64)), Ok(99995833900));
        assert_eq!(int_value(&json!("-5")), Ok(-5));
    }

    #[test]
    fn fractions_garbage_and_overflow_are_refused() {
        assert!(int_value(&json!("16500.5")).is_err());
        assert!(int_value(&json!(16500.5)).is_err());
        assert!(int_value(&json!("1e5")).is_err());
        assert!(int_value(&json!("")).is_err());
        assert!(int_value(&json!("12a")).is_err());
        assert!(int_value(&json!(u64::MAX)).is_err());
        assert!(int_value(&json!("99999999999999999999")).is_err());
        assert!(int_value(&json!(true)).is_err());
    }

    #[test]
    fn v1_and_v2_names_may_both_appear_only_when_they_agree() {
        let m = json!({"code": "x", "product_code": "x"});
        let f = Fields::new(m.as_object().unwrap());
        assert_eq!(
            f.text(&["product_code", "code"]).unwrap().as_deref(),
            Some("x")
        );
        let m = json!({"code": "x", "product_code": "y"});
        let f = Fields::new(m.as_object().unwrap());
        assert!(matches!(
            f.text(&["product_code", "code"]),
            Err(ProtocolError::ConflictingFields { .. })
        ));
    }
}

/// `deserialize_with` helpers for derived wire types whose numbers may arrive as strings.
pub(crate) mod lenient {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    /// An optional whole-rupiah amount: number, numeric string, `null`, or `""`.
    pub(crate) fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        match Option::<Value>::deserialize(d)? {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(v) => super::int_value(&v).map(Some).map_err(D::Error::custom),
        }
    }

    /// An optional text that some senders write as a number.
    pub(crate) fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        match Option::<Value>::deserialize(d)? {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(D::Error::custom("expected a string or a number")),
        }
    }

    /// An optional boolean, also as `"true"`/`"false"`.
    pub(crate) fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        match Option::<Value>::deserialize(d)? {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                _ => Err(D::Error::custom("expected true or false")),
            },
            Some(_) => Err(D::Error::custom("expected true or false")),
        }
    }
}
