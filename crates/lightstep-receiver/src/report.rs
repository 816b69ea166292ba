//! Received traces handed to `lightstep-analysis`: the model conversion, and the report that
//! `lightstep dev` and the examples print (an indented tree, then the critical path).

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::Path;

use lightstep_analysis::read::{Format, read_traces};
use lightstep_analysis::render::{format_duration, printable, write_text};
use lightstep_analysis::{
    AssembledTrace, CriticalPathAnalysis, Options, SpanKind, analyze_assembled, assemble,
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
        "trace {} ({} spans; * = on the critical path, with the time it holds there)",
        printable(&trace.trace_id.to_string()),
        trace.spans.len()
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
            "  {:>10}  {:indent$}{marker}{} [{}{kind}]{mark}",
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
