//! The OTLP trace wire format, written once for every lightstep crate that reads or writes it.
//!
//! Internal to lightstep-rs: the exporter's encoder, the receiver's validating walk and its
//! OTLP/JSON transcoder, and the analysis's protobuf reader all build on it, so that a change to
//! OTLP is made in one place. It is not public API and may change with any release.
//!
//! - [`Reader`]: decoding primitives over a message held in memory (varints of at most ten
//!   bytes, keys, lengths, fixed-width fields, unknown fields skipped with groups and the
//!   recursion limit), following prost 0.14's decoder rule for rule, with [`WireError`] naming
//!   what was wrong without allocating.
//! - [`encode`]: the encoding primitives: varints and keys into a `Vec` (byte for byte
//!   prost's), prost's length helpers, and a length prefix written after the content it
//!   measures.
//! - [`schema`]: one table per OTLP trace message (`ExportTraceServiceRequest` down to
//!   `AnyValue`), each field with its number, OTLP/JSON name, kind and cardinality, and named
//!   constants for the field numbers that hand-written decoders match on.
//! - [`validate`]: whether bytes decode as a given message, by the table.
//! - [`text`]: the characters that text from the wire must not carry to a terminal.
//!
//! See `docs/adr/013-one-otlp-wire-layer.md` for why it exists and what it does not cover.
//!
//! No features. Minimum supported Rust version: 1.90, as the whole workspace.

mod decode;
pub mod encode;
mod error;
pub mod schema;
pub mod text;

pub use decode::{RECURSION_LIMIT, Reader, split_key, validate};
pub use error::WireError;
pub use prost::encoding::WireType;
