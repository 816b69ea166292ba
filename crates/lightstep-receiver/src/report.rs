//! Received traces handed to `lightstep-analysis`: the model conversion, and the report that
//! `lightstep dev` and the examples print (an indented tree, then the critical path).

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::Path;

use lightstep_analysis::read::{Format, read_traces};
use lightstep_analysis::render::{counted, format_duration, printable, write_text};
use lightstep_analysis::{
    AssembledTrace, CriticalPathAnalysis, Options, SpanKind, Status, analyze_assembled, assemble,
};

use crate::store::Trace;

/// The deepest indentation of [`write_tree`], in levels.
const MAX_INDENT: usize = 32;

/// Rows of the critical-path table in [`write_report`].
const PATH_ROWS: usize = 20;

impl Trace {
    /// The trace in `lightstep-analysis`'s model, ready for critical-path analysis.
    ///
    /// It goes through the analysis crate's own OTLP reader, so received traces and trace
    /// files are read the same way. A received trace always converts; `None` would mean the
    /// two crates disagree on OTLP.
    pub fn to_analysis(&self) -> Option<lightstep_analysis::Trace> {
        let bytes = self.to_otlp_protobuf();
        let mut out = None;
        read_traces(
            &bytes[..],
            Path::new("receiver"),
            Some(Format::OtlpProto),
            |trace| {
                out = Some(trace);
                Ok(())
            },
        )
        .ok()?;
        out
    }
}

/// Writes one trace as an indented tree with durations, spans on the critical path marked `*`
/// with the time they hold it, followed by the critical-path table.
pub fn write_report(out: &mut impl Write, trace: &lightstep_analysis::Trace) -> io::Result<()> {
    let assembled = assemble(trace, &Options::default());
    let analysis = analyze_assembled(trace, &assembled);
    write_tree(out, trace, &assembled, &analysis)?;
    writeln!(out)?;
    write_text(out, &analysis, PATH_ROWS)
}

/// Writes the span tree: one line per span, children under their parent by start time. Spans
/// that do not block their parent (follows-from, consumers) start a tree of their own.
pub fn write_tree(
    out: &mut impl Write,
    trace: &lightstep_analysis::Trace,
    assembled: &AssembledTrace,
    analysis: &CriticalPathAnalysis,
) -> io::Result<()> {
    let on_path: HashMap<usize, u64> = analysis.path.iter().map(|p| (p.span, p.self_ns)).collect();
    writeln!(
        out,
        "trace {} ({}; * = on the critical path, with the time it holds there)",
        printable(&trace.trace_id.to_string()),
        counted(trace.spans.len(), "span", "spans")
    )?;
    let by_start = |mut spans: Vec<usize>| {
        // Reversed: the stack pops the earliest first.
        spans.sort_by_key(|&i| std::cmp::Reverse(trace.spans[i].start_ns()));
        spans
    };
    // An explicit stack: traces can be deeper than the call stack should go.
    let mut stack: Vec<(usize, usize)> = by_start(assembled.top_level().collect())
        .into_iter()
        .map(|i| (i, 0))
        .collect();
    while let Some((index, depth)) = stack.pop() {
        let span = &trace.spans[index];
        let mark = match on_path.get(&index) {
            Some(&self_ns) => format!("  * {}", format_duration(self_ns)),
            None => String::new(),
        };
        let kind = match span.kind() {
            SpanKind::Unspecified | SpanKind::Internal => String::new(),
            kind => format!(", {}", kind.as_str()),
        };
        // A failed span says so; a client span names its peer, since the conventions name
        // HTTP client spans by their method alone (`GET`).
        let error = if span.status() == Status::Error {
            ", error"
        } else {
            ""
        };
        let peer = match span.peer() {
            Some(peer) => format!(" → {}", printable(peer)),
            None => String::new(),
        };
        // Indentation stops growing at MAX_INDENT levels, so that a deep chain of spans sent
        // by a client cannot make the output grow with the square of its depth.
        let deeper = depth.saturating_sub(MAX_INDENT);
        let marker = if deeper > 0 {
            format!("(+{deeper}) ")
        } else {
            String::new()
        };
        writeln!(
            out,
            "  {:>10}  {:indent$}{marker}{}{peer} [{}{kind}{error}]{mark}",
            format_duration(span.duration_ns()),
            "",
            printable(span.name()),
            printable(span.service()),
            indent = depth.min(MAX_INDENT) * 2,
        )?;
        stack.extend(
            by_start(assembled.children(index).collect())
                .into_iter()
                .map(|child| (child, depth + 1)),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use lightstep_analysis::{Span, SpanId, Status, Trace, TraceId};

    use super::*;

    #[test]
    fn the_tree_marks_failures_names_peers_and_counts_in_words() {
        let t = TraceId::from_u128(1);
        let span = |id: u64, parent: Option<u64>, start: u64, end: u64| {
            let span = Span::new(t.clone(), SpanId::from_u64(id), start, end);
            match parent {
                Some(p) => span.with_parent(SpanId::from_u64(p)),
                None => span,
            }
        };
        let trace = Trace::new(
            t.clone(),
            vec![
                span(1, Some(99), 1_000, 9_000)
                    .with_kind(SpanKind::Server)
                    .with_service("web")
                    .with_name("GET /checkout"),
                span(2, Some(1), 2_000, 4_000)
                    .with_kind(SpanKind::Client)
                    .with_service("web")
                    .with_name("GET")
                    .with_peer("users:8080"),
                span(3, Some(1), 5_000, 8_000)
                    .with_kind(SpanKind::Client)
                    .with_service("web")
                    .with_name("GET")
                    .with_peer("billing")
                    .with_status(Status::Error),
            ],
        );
        let mut out = Vec::new();
        write_report(&mut out, &trace).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("(3 spans;"), "{text}");
        assert!(text.contains("GET → users:8080 [web, client]"), "{text}");
        assert!(
            text.contains("GET → billing [web, client, error]"),
            "{text}"
        );
        // The server span's parent is in the caller: no repair is reported.
        assert!(!text.contains("repaired"), "{text}");
        assert!(text.contains("remote parent"), "{text}");

        let one = Trace::new(
            t.clone(),
            vec![span(1, None, 1_000, 2_000).with_name("job")],
        );
        let mut out = Vec::new();
        write_report(&mut out, &one).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("(1 span;"), "{text}");
        assert!(text.contains("1 span on the path"), "{text}");
    }
}
