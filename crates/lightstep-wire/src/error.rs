//! The one error of this crate: why bytes are not the protobuf they should be.

/// Why bytes do not decode, as a fixed message: the receiver refuses whole requests with it and
/// the analysis names it with the byte offset of the message that failed, both on hot paths
/// where an error must not allocate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct WireError {
    message: &'static str,
}

impl WireError {
    /// A varint runs past the end of its message, or is longer than ten bytes or 64 bits.
    pub const VARINT: Self = Self::new("invalid varint");
    /// A key does not fit in 32 bits.
    pub const KEY: Self = Self::new("invalid field key");
    /// A key names wire type 6 or 7.
    pub const WIRE_TYPE: Self = Self::new("invalid wire type");
    /// A key names field 0.
    pub const TAG_ZERO: Self = Self::new("invalid field tag 0");
    /// A field's value (or its declared length) runs past the end of its message.
    pub const TRUNCATED: Self = Self::new("a field runs past the end of its message");
    /// Messages or groups nest deeper than [`RECURSION_LIMIT`](crate::RECURSION_LIMIT).
    pub const RECURSION: Self = Self::new("messages nested too deeply");
    /// A known field arrives with another wire type than its kind has.
    pub const WRONG_WIRE_TYPE: Self = Self::new("a field has the wrong wire type");
    /// A string field is not UTF-8.
    pub const NOT_UTF8: Self = Self::new("a string is not UTF-8");
    /// A group ends with another field number than it started with.
    pub const END_GROUP_MISMATCH: Self = Self::new("mismatched end of group");
    /// A group ends that never started.
    pub const END_GROUP_UNEXPECTED: Self = Self::new("unexpected end of group");

    /// An error of the caller's own, for checks made on top of the wire format (a message that
    /// decodes but is not what the caller can take).
    pub const fn new(message: &'static str) -> Self {
        Self { message }
    }

    /// The message, for callers whose errors are static text.
    pub const fn message(self) -> &'static str {
        self.message
    }
}

impl From<WireError> for &'static str {
    fn from(error: WireError) -> Self {
        error.message
    }
}
