//! Secrets that cannot leak through `Debug` or `Display`.

use std::fmt;

/// A secret string (API key, hash key, token). Its `Debug` and `Display` print `[redacted]`;
/// the value is reachable only through [`Secret::expose`], so every use of it is greppable.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value. Call only to compute a signature or an authorization header.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret::new(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("TESTKEY-not-real-0001");
        assert!(!format!("{s:?}").contains("TESTKEY"));
        assert!(!format!("{s}").contains("TESTKEY"));
        assert_eq!(s.expose(), "TESTKEY-not-real-0001");
    }
}
