//! The one error type of the protocol layer.
//!
//! Every parser in this crate returns [`ProtocolError`] for any input it cannot accept; none of
//! them panics. Each variant has a stable machine-readable [`ProtocolError::code`] that the
//! gateway puts into its `{"error": {"code", "message"}}` bodies.

/// Why a message could not be parsed, produced or verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The body is empty (or only white space).
    #[error("the body is empty")]
    Empty,
    /// The body starts with neither `{` (JSON) nor `<` (XML).
    #[error("the body is neither JSON nor XML")]
    UnknownFormat,
    /// The body is not valid JSON.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// The body is not well-formed XML.
    #[error("invalid XML: {0}")]
    InvalidXml(String),
    /// The XML carries a document type declaration; refused so that no entity can be defined.
    #[error("XML with a DOCTYPE declaration is refused")]
    XmlDoctype,
    /// The XML references an entity other than the five predefined ones or a character reference.
    #[error("XML entity reference `{0}` is refused")]
    XmlEntity(String),
    /// The XML nests deeper, or has more elements, than any provider message does.
    #[error("XML is too deep or too large")]
    XmlTooLarge,
    /// The document's top level is not the expected envelope (`{"data":{..}}`, `<mp>`, an object).
    #[error("unexpected envelope: {0}")]
    Envelope(String),
    /// A mandatory field is absent (or `null`).
    #[error("missing mandatory field `{0}`")]
    MissingField(String),
    /// A field is present but its value cannot be used.
    #[error("invalid value for `{field}`: {reason}")]
    InvalidField { field: String, reason: String },
    /// A status field holds a value outside the documented set.
    #[error("unknown value {value:?} for `{field}`")]
    UnknownValue { field: String, value: String },
    /// The v1 and v2 names of one field are both present with different values.
    #[error("fields `{first}` and `{second}` are both present and disagree")]
    ConflictingFields { first: String, second: String },
    /// A field lunas decides on appears twice with different values (see [`crate::json`]).
    #[error("repeated field: {0}")]
    DuplicateField(String),
    /// A signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
}

impl ProtocolError {
    /// A stable, machine-readable code for this error, used in API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            ProtocolError::Empty => "empty_body",
            ProtocolError::UnknownFormat => "unknown_format",
            ProtocolError::InvalidJson(_) => "invalid_json",
            ProtocolError::InvalidXml(_) => "invalid_xml",
            ProtocolError::XmlDoctype => "xml_doctype",
            ProtocolError::XmlEntity(_) => "xml_entity",
            ProtocolError::XmlTooLarge => "xml_too_large",
            ProtocolError::Envelope(_) => "bad_envelope",
            ProtocolError::MissingField(_) => "missing_field",
            ProtocolError::InvalidField { .. } => "invalid_field",
            ProtocolError::UnknownValue { .. } => "unknown_value",
            ProtocolError::ConflictingFields { .. } => "conflicting_fields",
            ProtocolError::DuplicateField(_) => "duplicate_field",
            ProtocolError::BadSignature => "bad_signature",
        }
    }

    pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> Self {
        ProtocolError::InvalidField {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }
}

pub type Result<T, E = ProtocolError> = std::result::Result<T, E>;
