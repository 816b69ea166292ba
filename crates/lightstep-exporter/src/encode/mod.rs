//! OTLP encoding of a batch of `SpanData`, written straight into bytes.
//!
//! opentelemetry-proto's conversion copies every key, value and name into a new prost struct
//! (a `String` each) before prost walks the structs again to encode them; at the rates the
//! export thread must sustain that copy is most of the cost of an export. These encoders read
//! the spans where they lie and write the `ExportTraceServiceRequest` (protobuf for gRPC and
//! OTLP/HTTP, JSON for OTLP/HTTP-JSON) into a buffer the caller reuses. The output decodes to
//! exactly what opentelemetry-proto's own conversion of the same spans gives: the tests in
//! `tests.rs` check this on varied spans.
//!
//! Layout, as opentelemetry-proto produces it: one `ResourceSpans` (the pipeline has one
//! resource), then one `ScopeSpans` per distinct instrumentation scope in the order the scopes
//! first appear in the batch, each with its spans in batch order.

pub(crate) mod json;
pub(crate) mod proto;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::InstrumentationScope;
use opentelemetry::trace::Status;
use opentelemetry_sdk::trace::SpanData;

/// The batch's spans grouped by instrumentation scope: `scopes[i]` owns the spans
/// `order[starts[i]..starts[i + 1]]`.
pub(crate) struct ScopeGroups<'a> {
    pub(crate) scopes: Vec<&'a InstrumentationScope>,
    starts: Vec<usize>,
    order: Vec<u32>,
}

impl<'a> ScopeGroups<'a> {
    pub(crate) fn new(spans: &'a [SpanData]) -> Self {
        let mut scopes: Vec<&'a InstrumentationScope> = Vec::new();
        let mut group_of: Vec<u32> = Vec::with_capacity(spans.len());
        let mut index: HashMap<&'a InstrumentationScope, u32> = HashMap::new();
        let mut last: Option<u32> = None;
        for span in spans {
            let scope = &span.instrumentation_scope;
            // Batches nearly always hold runs of one scope: compare with the previous span's
            // before hashing.
            let group = match last {
                Some(g) if scopes[g as usize] == scope => g,
                _ => *index.entry(scope).or_insert_with(|| {
                    scopes.push(scope);
                    (scopes.len() - 1) as u32
                }),
            };
            last = Some(group);
            group_of.push(group);
        }
        // Counting sort: stable, so each scope keeps its spans in batch order.
        let mut starts = vec![0usize; scopes.len() + 1];
        for &g in &group_of {
            starts[g as usize + 1] += 1;
        }
        for i in 1..starts.len() {
            starts[i] += starts[i - 1];
        }
        let mut next = starts.clone();
        let mut order = vec![0u32; spans.len()];
        for (i, &g) in group_of.iter().enumerate() {
            order[next[g as usize]] = i as u32;
            next[g as usize] += 1;
        }
        Self {
            scopes,
            starts,
            order,
        }
    }

    /// The indexes (into the batch) of the spans of scope `group`.
    pub(crate) fn spans(&self, group: usize) -> impl Iterator<Item = usize> + '_ {
        self.order[self.starts[group]..self.starts[group + 1]]
            .iter()
            .map(|&i| i as usize)
    }
}

/// Nanoseconds since the Unix epoch; 0 before it (as opentelemetry-proto does).
pub(crate) fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// The span's `flags` field: the W3C trace flags plus whether the parent is remote.
pub(crate) fn span_flags(trace_flags: u8, remote: bool) -> u32 {
    const HAS_IS_REMOTE: u32 = 0x100;
    const IS_REMOTE: u32 = 0x200;
    u32::from(trace_flags) | HAS_IS_REMOTE | if remote { IS_REMOTE } else { 0 }
}

/// `SpanKind` as the OTLP enum number.
pub(crate) fn kind_number(kind: &opentelemetry::trace::SpanKind) -> u64 {
    use opentelemetry::trace::SpanKind;
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

/// The status as (OTLP code, message): the message only travels with an error.
pub(crate) fn status_parts(status: &Status) -> (u64, &str) {
    match status {
        Status::Unset => (0, ""),
        Status::Ok => (1, ""),
        Status::Error { description } => (2, description.as_ref()),
    }
}

/// The W3C `tracestate` header of a trace state (`k=v,k=v`), written without building a
/// `String` for spans that have none.
pub(crate) fn trace_state_len(state: &opentelemetry::trace::TraceState) -> usize {
    let mut len = 0;
    for (i, (k, v)) in state.into_iter().enumerate() {
        len += usize::from(i > 0) + k.len() + 1 + v.len();
    }
    len
}

pub(crate) fn write_trace_state(out: &mut Vec<u8>, state: &opentelemetry::trace::TraceState) {
    for (i, (k, v)) in state.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(k.as_bytes());
        out.push(b'=');
        out.extend_from_slice(v.as_bytes());
    }
}
