//! Not API: the lookup of a span's details in a large file, over bytes in memory, for the fuzz
//! target `fuzz/fuzz_targets/explorer_lookup.rs` and the tests of its seeds. May change at any
//! time.

use lightstep_analysis::read::Format;
use lightstep_analysis::{SpanId, TraceId};

/// The trace whose spans are looked up (the seeds hold spans of it).
pub const TRACE_ID: &str = "5b8efff798038103d269b633813fc60c";
/// The span selected in it.
pub const SPAN_ID: &str = "eee19b7ec3c1b173";
/// The formats a file may have, in the order the fuzz target's first byte picks them.
pub const FORMATS: [Format; 4] = [
    Format::OtlpJson,
    Format::OtlpProto,
    Format::JaegerJson,
    Format::ZipkinJson,
];

/// Looks up the spans of [`TRACE_ID`] in `body`, a file of `format`, as the explorer does when
/// [`SPAN_ID`] is selected; returns the details found (0 when none are).
pub fn look_up(body: &[u8], format: Format) -> usize {
    let (trace_id, span_id) = (TraceId::parse(TRACE_ID), SpanId::parse(SPAN_ID));
    crate::file_lookup::look_up_in(body, format, &trace_id, &span_id)
        .map_or(0, |(details, _)| details.len())
}
