//! The crate's one error type.

use std::path::PathBuf;

/// Why traces could not be read.
///
/// Every variant names the input; JSON errors carry line and column, protobuf errors the byte
/// offset of the message that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input could not be read.
    #[error("cannot read {}", file.display())]
    Io {
        /// The input.
        file: PathBuf,
        /// What the system reported.
        #[source]
        source: std::io::Error,
    },
    /// JSON that does not parse, or does not have the expected shape.
    #[error("{}:{line}:{column}: {message}", file.display())]
    Json {
        /// The input.
        file: PathBuf,
        /// One-based line.
        line: usize,
        /// One-based column.
        column: usize,
        /// What was wrong and what was expected.
        message: String,
    },
    /// Protobuf that does not decode.
    #[error("{}: byte {offset}: {message}", file.display())]
    Protobuf {
        /// The input.
        file: PathBuf,
        /// Byte offset where the failing field starts.
        offset: u64,
        /// What was wrong and what was expected.
        message: String,
    },
    /// The input is in none of the supported formats.
    #[error("{}: unrecognized trace format ({found}); supported formats: {}", file.display(), crate::read::Format::NAMES)]
    UnknownFormat {
        /// The input.
        file: PathBuf,
        /// What the input looked like.
        found: String,
    },
    /// The input is JSON of another format than the one asked for.
    #[error("{}: expected {expected} but the input is {found}", file.display())]
    WrongFormat {
        /// The input.
        file: PathBuf,
        /// The format asked for.
        expected: crate::read::Format,
        /// What the input looked like.
        found: &'static str,
    },
    /// The consumer of the traces failed (for example, writing the output).
    #[error("cannot process the traces of {}", file.display())]
    Sink {
        /// The input being read.
        file: PathBuf,
        /// The consumer's error.
        #[source]
        source: std::io::Error,
    },
}
