//! The access token, kept out of every log line, error and `Debug` print.

use std::fmt;

/// A secret string: the Lightstep access token, or a header value that may carry credentials.
///
/// `Debug` prints `[REDACTED]`, there is no `Display`, and reading the value takes an explicit
/// call to [`SecretString::expose_secret`], so a token cannot reach a log line by accident.
/// Equality compares in constant time, so comparing tokens leaks nothing through timing.
#[derive(Clone)]
pub struct SecretString(String);

/// The Lightstep access token, sent as the `lightstep-access-token` header.
pub type AccessToken = SecretString;

impl SecretString {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// Returns the token itself. Call this only where the value must travel: the request header.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Whether the token is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl PartialEq for SecretString {
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(self.0.as_bytes(), other.0.as_bytes())
    }
}

impl Eq for SecretString {}

impl From<String> for SecretString {
    fn from(token: String) -> Self {
        Self(token)
    }
}

impl From<&str> for SecretString {
    fn from(token: &str) -> Self {
        Self(token.to_owned())
    }
}

/// Compares two byte strings in time that depends on their lengths only.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let token = AccessToken::new("s3cr3t-value");
        assert_eq!(format!("{token:?}"), "[REDACTED]");
        assert_eq!(format!("{token:#?}"), "[REDACTED]");
        assert_eq!(token.expose_secret(), "s3cr3t-value");
    }

    #[test]
    fn equality() {
        assert_eq!(AccessToken::new("abc"), AccessToken::new("abc"));
        assert_ne!(AccessToken::new("abc"), AccessToken::new("abd"));
        assert_ne!(AccessToken::new("abc"), AccessToken::new("abcd"));
    }
}
