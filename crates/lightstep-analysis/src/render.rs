//! Renderers: a terminal table, a stable JSON shape, an SVG timeline, and for calling
//! contexts folded stacks, flame graphs and the comparison of two sets of traces.
//!
//! # JSON shape
//!
//! [`JsonWriter`] writes one document, streaming one trace at a time:
//!
//! ```text
//! {"traces":[
//!   {"trace_id":"<hex>","mode":"robust"|"jaeger",
//!    "start_unix_nano":<int>,"end_unix_nano":<int>,"duration_ns":<int>,"critical_path_ns":<int>,
//!    "total_duration_ms":<int>,"critical_path_duration_ms":<int>,
//!    "critical_spans":["<hex>",...],
//!    "sections":[{"span_id":"<hex>","service":"..","operation":"..",
//!                 "start_unix_nano":<int>,"end_unix_nano":<int>},...],   // chronological
//!    "gaps":[{"start_unix_nano":<int>,"end_unix_nano":<int>},...],
//!    "spans":[{"span_id":"<hex>","service":"..","operation":"..","self_ns":<int>,"share":<0..1>},...],
//!    "services":[{"service":"..","critical_ns":<int>,"share":<0..1>},...],
//!    "operations":[{"service":"..","operation":"..","critical_ns":<int>,"share":<0..1>},...],
//!    "diagnostics":{"roots":<int>,"orphans":<int>,...},
//!    "off_path":[{"span_id":"<hex>","parent_span_id":"<hex>"|null,"service":"..",
//!                 "operation":"..","start_unix_nano":<int>,"end_unix_nano":<int>,
//!                 "reason":"outside_parent"|"non_blocking"},...]}
//! ],
//!  "aggregate":{...}}   // only with aggregation: see [`crate::aggregate::Aggregate`]
//! ```
//!
//! Fields are only ever added; none is renamed or removed within a major version. The
//! comparison's JSON ([`write_comparison_json`]) is [`crate::compare::Comparison`] as serde
//! writes it, under the same rule.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use lightstep_wire::text::acts_on_a_terminal;
use serde::Serialize;

use crate::aggregate::Aggregate;
use crate::compare::{Change, Comparison};
use crate::context::ContextTree;
use crate::{AssembledTrace, CriticalPathAnalysis, Diagnostics, OffPathReason, SpanId, Trace};

mod flame;

// ---- JSON -----------------------------------------------------------------------------------

#[derive(Serialize)]
struct OffPathJson<'a> {
    span_id: &'a SpanId,
    parent_span_id: Option<&'a SpanId>,
    service: &'a str,
    operation: &'a str,
    start_unix_nano: u64,
    end_unix_nano: u64,
    reason: OffPathReason,
}

#[derive(Serialize)]
struct ServiceJson<'a> {
    service: &'a str,
    critical_ns: u64,
    share: f64,
}

#[derive(Serialize)]
struct OperationJson<'a> {
    service: &'a str,
    operation: &'a str,
    critical_ns: u64,
    share: f64,
}

/// Output is gathered here and handed to the writer in pieces of about this size: a trace's
/// sections are millions of small fields, each too small for a call through the writer.
const CHUNK: usize = 1 << 16;

/// Writes one trace's JSON object. The arrays with an entry per span (ids, sections, path) are
/// written as they are walked, with each operation's names escaped once: a million-span path
/// needs no copy of itself, and its sections none of their names.
fn write_trace_json(out: &mut impl Write, analysis: &CriticalPathAnalysis) -> io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK + 1024);
    let window = analysis.duration_ns();
    let share = |ns: u64| {
        if window == 0 {
            0.0
        } else {
            ns as f64 / window as f64
        }
    };
    // `"service":"..","operation":".."` of each operation, as the path spans index them.
    let names: Vec<Vec<u8>> = analysis
        .operations
        .iter()
        .map(|op| {
            let mut fragment = b"\"service\":".to_vec();
            json_value(&mut fragment, &*op.service)?;
            fragment.extend_from_slice(b",\"operation\":");
            json_value(&mut fragment, op.operation.as_deref().unwrap_or(""))?;
            Ok(fragment)
        })
        .collect::<io::Result<_>>()?;
    let names_of = |k: usize| -> &[u8] {
        analysis
            .path
            .get(k)
            .and_then(|p| names.get(p.operation_index))
            .map_or(b"\"service\":\"\",\"operation\":\"\"", Vec::as_slice)
    };
    // Each span's entry in the path, for its sections.
    let spans = analysis.path.iter().map(|p| p.span + 1).max().unwrap_or(0);
    let mut entry = vec![u32::MAX; spans];
    for (k, p) in analysis.path.iter().enumerate() {
        entry[p.span] = k as u32;
    }

    buf.extend_from_slice(b"{\"trace_id\":");
    json_value(&mut buf, analysis.trace_id.as_str())?;
    buf.extend_from_slice(b",\"mode\":");
    json_value(&mut buf, &analysis.mode)?;
    for (key, value) in [
        ("start_unix_nano", analysis.start_ns),
        ("end_unix_nano", analysis.end_ns),
        ("duration_ns", window),
        ("critical_path_ns", analysis.critical_ns()),
        ("total_duration_ms", analysis.total_duration_ms),
        (
            "critical_path_duration_ms",
            analysis.critical_path_duration_ms,
        ),
    ] {
        buf.extend_from_slice(b",\"");
        buf.extend_from_slice(key.as_bytes());
        buf.extend_from_slice(b"\":");
        json_u64(&mut buf, value);
    }

    buf.extend_from_slice(b",\"critical_spans\":[");
    let ids = &analysis.critical_spans;
    entries(out, &mut buf, ids.len(), |k, buf| {
        buf.push(b',');
        json_span_id(buf, &ids[k])
    })?;

    buf.extend_from_slice(b"],\"sections\":[");
    entries(out, &mut buf, analysis.sections.len(), |j, buf| {
        let s = &analysis.sections[j];
        let Some(&k) = entry.get(s.span).filter(|&&k| k != u32::MAX) else {
            return Ok(());
        };
        let Some(id) = ids.get(k as usize) else {
            return Ok(());
        };
        buf.extend_from_slice(b",{\"span_id\":");
        json_span_id(buf, id)?;
        buf.push(b',');
        buf.extend_from_slice(names_of(k as usize));
        buf.extend_from_slice(b",\"start_unix_nano\":");
        json_u64(buf, s.start_ns);
        buf.extend_from_slice(b",\"end_unix_nano\":");
        json_u64(buf, s.end_ns);
        buf.push(b'}');
        Ok(())
    })?;
    drop(entry);

    buf.extend_from_slice(b"],\"gaps\":[");
    for (k, g) in analysis.gaps.iter().enumerate() {
        if k > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(b"{\"start_unix_nano\":");
        json_u64(&mut buf, g.start_ns);
        buf.extend_from_slice(b",\"end_unix_nano\":");
        json_u64(&mut buf, g.end_ns);
        buf.push(b'}');
        drain_full(out, &mut buf)?;
    }

    buf.extend_from_slice(b"],\"spans\":[");
    entries(
        out,
        &mut buf,
        analysis.path.len().min(ids.len()),
        |k, buf| {
            let p = &analysis.path[k];
            buf.extend_from_slice(b",{\"span_id\":");
            json_span_id(buf, &ids[k])?;
            buf.push(b',');
            buf.extend_from_slice(names_of(k));
            buf.extend_from_slice(b",\"self_ns\":");
            json_u64(buf, p.self_ns);
            buf.extend_from_slice(b",\"share\":");
            json_value(buf, &share(p.self_ns))?;
            buf.push(b'}');
            Ok(())
        },
    )?;

    buf.extend_from_slice(b"],\"services\":[");
    for (k, s) in analysis.services.iter().enumerate() {
        if k > 0 {
            buf.push(b',');
        }
        json_value(
            &mut buf,
            &ServiceJson {
                service: &s.service,
                critical_ns: s.critical_ns,
                share: s.share,
            },
        )?;
        drain_full(out, &mut buf)?;
    }
    buf.extend_from_slice(b"],\"operations\":[");
    for (k, s) in analysis.operations.iter().enumerate() {
        if k > 0 {
            buf.push(b',');
        }
        json_value(
            &mut buf,
            &OperationJson {
                service: &s.service,
                operation: s.operation.as_deref().unwrap_or(""),
                critical_ns: s.critical_ns,
                share: s.share,
            },
        )?;
        drain_full(out, &mut buf)?;
    }
    buf.extend_from_slice(b"],\"diagnostics\":");
    json_value(&mut buf, &analysis.diagnostics)?;
    buf.extend_from_slice(b",\"off_path\":[");
    for (k, o) in analysis.off_path.iter().enumerate() {
        if k > 0 {
            buf.push(b',');
        }
        json_value(
            &mut buf,
            &OffPathJson {
                span_id: &o.span_id,
                parent_span_id: o.parent_id.as_ref(),
                service: &o.service,
                operation: &o.name,
                start_unix_nano: o.start_ns,
                end_unix_nano: o.end_ns,
                reason: o.reason,
            },
        )?;
        drain_full(out, &mut buf)?;
    }
    buf.extend_from_slice(b"]}");
    out.write_all(&buf)
}

/// Entries of an array with one per span, at or past which they are written on two threads,
/// and how many go in each piece a thread writes. (Tests use small arrays.)
const PARALLEL_ENTRIES: usize = if cfg!(test) { 4 } else { 1 << 16 };
const PIECE: usize = if cfg!(test) { 3 } else { 8192 };

/// Writes the `n` entries of an array, `entry(k, buf)` appending the `k`th with a comma before
/// it (or nothing, to leave it out); the comma of the first entry written is dropped. A long
/// array is written in pieces, every other one by a helper thread, and handed to `out` in
/// order: the text of a million-span path takes half the time, and no more than four pieces of
/// it are held at once.
fn entries(
    out: &mut impl Write,
    buf: &mut Vec<u8>,
    n: usize,
    entry: impl Fn(usize, &mut Vec<u8>) -> io::Result<()> + Sync,
) -> io::Result<()> {
    let mut first = true;
    // Drops the leading comma of the first entry written in `piece`, which starts at `from`.
    let mut uncomma = |piece: &mut Vec<u8>, from: usize| {
        if first && piece.len() > from {
            piece.remove(from);
            first = false;
        }
    };
    let two_threads = n >= PARALLEL_ENTRIES && crate::parallel::second_core();
    if !two_threads {
        for k in 0..n {
            let from = buf.len();
            entry(k, buf)?;
            uncomma(buf, from);
            drain_full(out, buf)?;
        }
        return Ok(());
    }
    out.write_all(buf)?;
    buf.clear();
    let render = |range: std::ops::Range<usize>, piece: &mut Vec<u8>| {
        piece.clear();
        range.into_iter().try_for_each(|k| entry(k, piece))
    };
    std::thread::scope(|scope| {
        let (to_helper, jobs) = std::sync::mpsc::sync_channel::<(usize, Vec<u8>)>(1);
        let (done, results) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(1);
        let render = &render;
        scope.spawn(move || {
            for (start, mut piece) in jobs {
                let rendered = render(start..(start + PIECE).min(n), &mut piece).map(|()| piece);
                if done.send(rendered).is_err() {
                    return;
                }
            }
        });
        let mut spare = Vec::new();
        let mut start = 0;
        while start < n {
            // The helper writes this piece while this thread writes the next one.
            to_helper
                .send((start, std::mem::take(&mut spare)))
                .map_err(|_| io::Error::other("the helper writing the JSON stopped"))?;
            let next = (start + PIECE).min(n);
            let mine = render(next..(next + PIECE).min(n), buf);
            let mut theirs = results
                .recv()
                .map_err(|_| io::Error::other("the helper writing the JSON stopped"))??;
            mine?;
            uncomma(&mut theirs, 0);
            out.write_all(&theirs)?;
            uncomma(buf, 0);
            out.write_all(buf)?;
            buf.clear();
            spare = theirs;
            start = (next + PIECE).min(n);
        }
        Ok(())
    })
}

/// Hands the gathered output over once there is a chunk of it.
fn drain_full(out: &mut impl Write, buf: &mut Vec<u8>) -> io::Result<()> {
    if buf.len() >= CHUNK {
        out.write_all(buf)?;
        buf.clear();
    }
    Ok(())
}

fn json_u64(buf: &mut Vec<u8>, value: u64) {
    buf.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// A span id as a JSON string: a numeric id's sixteen digits directly, text escaped.
fn json_span_id(buf: &mut Vec<u8>, id: &SpanId) -> io::Result<()> {
    match id.as_u64() {
        Some(value) => {
            buf.push(b'"');
            buf.extend_from_slice(&crate::model::hex16(value));
            buf.push(b'"');
            Ok(())
        }
        None => json_value(buf, id),
    }
}

fn json_value(buf: &mut Vec<u8>, value: &(impl Serialize + ?Sized)) -> io::Result<()> {
    write_json(buf, value)
}

/// Writes the JSON document one trace at a time.
#[derive(Debug)]
pub struct JsonWriter<W: Write> {
    out: W,
    first: bool,
}

impl<W: Write> JsonWriter<W> {
    /// Starts the document.
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(b"{\"traces\":[")?;
        Ok(Self { out, first: true })
    }

    /// Writes one trace's analysis.
    pub fn trace(&mut self, analysis: &CriticalPathAnalysis) -> io::Result<()> {
        if !self.first {
            self.out.write_all(b",")?;
        }
        self.first = false;
        self.out.write_all(b"\n")?;
        write_trace_json(&mut self.out, analysis)
    }

    /// Ends the document, with the aggregate if there is one, and returns the writer.
    pub fn finish(mut self, aggregate: Option<&Aggregate>) -> io::Result<W> {
        self.out.write_all(b"\n]")?;
        if let Some(aggregate) = aggregate {
            self.out.write_all(b",\"aggregate\":")?;
            write_json(&mut self.out, aggregate)?;
        }
        self.out.write_all(b"}\n")?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Compact JSON in which the characters [`printable`] escapes are `\uXXXX` escapes, those that
/// JSON itself does not require (DEL, C1, bidirectional formatting) included: the document means
/// the same, and a report printed on a terminal cannot drive it.
fn write_json(out: &mut impl Write, value: &(impl Serialize + ?Sized)) -> io::Result<()> {
    let mut serializer = serde_json::Serializer::with_formatter(out, TerminalSafeJson);
    value.serialize(&mut serializer).map_err(io::Error::other)
}

struct TerminalSafeJson;

impl serde_json::ser::Formatter for TerminalSafeJson {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut rest = fragment;
        // Every such character is in the Basic Multilingual Plane: one `\uXXXX` each.
        while let Some((at, c)) = rest.char_indices().find(|&(_, c)| acts_on_a_terminal(c)) {
            writer.write_all(&rest.as_bytes()[..at])?;
            write!(writer, "\\u{:04x}", u32::from(c))?;
            rest = &rest[at + c.len_utf8()..];
        }
        writer.write_all(rest.as_bytes())
    }
}

// ---- text -----------------------------------------------------------------------------------

/// Human duration: `123ns`, `4.560µs`, `12.345ms`, `1.234s`.
pub fn format_duration(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns}ns"),
        1_000..1_000_000 => format!("{:.3}µs", ns as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.3}ms", ns as f64 / 1e6),
        _ => format!("{:.3}s", ns as f64 / 1e9),
    }
}

/// Text from a trace, made safe to print on a terminal: every control character (C0, DEL and
/// C1, which a terminal would obey: `ESC [2J` clears the screen, OSC 52 writes the clipboard) and
/// every bidirectional formatting character (which reorders what is shown) is written as a
/// visible escape, `\n`, `\r`, `\t` or `\u{1b}`. Names, attributes and ids come from whoever
/// sent the spans; anything a renderer prints as text goes through here.
///
/// ```
/// use lightstep_analysis::render::printable;
/// assert_eq!(printable("GET /users"), "GET /users");
/// assert_eq!(printable("x\u{1b}[2Jy\n"), "x\\u{1b}[2Jy\\n");
/// ```
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(acts_on_a_terminal) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if acts_on_a_terminal(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A table cell: the text made [`printable`], then cut to `width` characters.
fn truncate(text: &str, width: usize) -> String {
    let text = printable(text);
    if text.chars().count() <= width {
        text.into_owned()
    } else {
        let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// Writes the table for one trace: the path step by step (consecutive sections of one span
/// merged), at most `max_rows` steps, then the share per service and what was repaired.
pub fn write_text(
    out: &mut impl Write,
    analysis: &CriticalPathAnalysis,
    max_rows: usize,
) -> io::Result<()> {
    let window = analysis.duration_ns();
    let pct = |ns: u64| {
        if window == 0 {
            0.0
        } else {
            100.0 * ns as f64 / window as f64
        }
    };
    writeln!(
        out,
        "trace {} ({} mode): duration {}, critical path {} ({:.1}%), {} on the path",
        printable(&analysis.trace_id.to_string()),
        analysis.mode.as_str(),
        format_duration(window),
        format_duration(analysis.critical_ns()),
        pct(analysis.critical_ns()),
        counted(analysis.path.len(), "span", "spans"),
    )?;
    let info: HashMap<usize, (&crate::PathSpan, &SpanId)> = analysis
        .path
        .iter()
        .zip(&analysis.critical_spans)
        .map(|(p, id)| (p.span, (p, id)))
        .collect();
    // Steps: consecutive sections of the same span merged, gaps included.
    let mut steps: Vec<(Option<usize>, u64, u64)> = Vec::new();
    let mut gaps = analysis.gaps.iter().peekable();
    for section in &analysis.sections {
        while let Some(gap) = gaps.next_if(|g| g.start_ns < section.start_ns) {
            steps.push((None, gap.start_ns, gap.end_ns));
        }
        match steps.last_mut() {
            Some((Some(span), _, end)) if *span == section.span && *end == section.start_ns => {
                *end = section.end_ns
            }
            _ => steps.push((Some(section.span), section.start_ns, section.end_ns)),
        }
    }
    steps.extend(gaps.map(|g| (None, g.start_ns, g.end_ns)));
    writeln!(
        out,
        "  {:>12}  {:>12}  {:>6}  {:<24}  {:<32}  span",
        "at", "time", "share", "service", "operation"
    )?;
    for (span, start, end) in steps.iter().take(max_rows) {
        let at = format!(
            "+{}",
            format_duration(start.saturating_sub(analysis.start_ns))
        );
        let (service, operation, id) = match span.and_then(|s| info.get(&s)) {
            Some((p, id)) => (
                truncate(analysis.service_of(p), 24),
                truncate(analysis.name_of(p), 32),
                printable(&id.to_string()).into_owned(),
            ),
            None => (
                "(nothing running)".to_string(),
                String::new(),
                String::new(),
            ),
        };
        writeln!(
            out,
            "  {at:>12}  {:>12}  {:>5.1}%  {service:<24}  {operation:<32}  {id}",
            format_duration(end.saturating_sub(*start)),
            pct(end.saturating_sub(*start)),
        )?;
    }
    if steps.len() > max_rows {
        writeln!(
            out,
            "  … {} more steps (the JSON report lists every step)",
            steps.len() - max_rows
        )?;
    }
    let services: Vec<String> = analysis
        .services
        .iter()
        .take(8)
        .map(|s| {
            format!(
                "{} {:.1}%",
                if s.service.is_empty() {
                    Cow::Borrowed("(unknown)")
                } else {
                    printable(&s.service)
                },
                100.0 * s.share
            )
        })
        .collect();
    writeln!(out, "  by service: {}", services.join(", "))?;
    let repairs = repairs(&analysis.diagnostics);
    if !repairs.is_empty() {
        writeln!(out, "  repaired: {}", repairs.join(", "))?;
    }
    let remote = analysis.diagnostics.remote_parents;
    if remote > 0 {
        writeln!(
            out,
            "  {} a parent in a caller that sent no spans (remote parent: usual for a request \
             from an uninstrumented client)",
            counted(remote, "span has", "spans have"),
        )?;
    }
    if !analysis.off_path.is_empty() {
        const SHOWN: usize = 3;
        let listed: Vec<String> = analysis
            .off_path
            .iter()
            .take(SHOWN)
            .map(|o| {
                let why = match o.reason {
                    OffPathReason::OutsideParent => "outside its parent",
                    OffPathReason::NonBlocking => "non-blocking",
                };
                format!(
                    "{} {} {} ({}, {why})",
                    printable(&o.span_id.to_string()),
                    truncate(&o.service, 24),
                    truncate(&o.name, 32),
                    format_duration(o.end_ns.saturating_sub(o.start_ns)),
                )
            })
            .collect();
        let more = analysis.off_path.len().saturating_sub(SHOWN);
        writeln!(
            out,
            "  not on the path, did not block its parent: {}{}",
            listed.join(", "),
            if more > 0 {
                format!(" and {more} more (the JSON report lists them)")
            } else {
                String::new()
            }
        )?;
    }
    if let Some(reason) = analysis.diagnostics.jaeger_failure {
        writeln!(
            out,
            "  note: Jaeger UI shows no or a wrong path for this trace: {reason}"
        )?;
    }
    Ok(())
}

fn repairs(d: &Diagnostics) -> Vec<String> {
    [
        (d.orphans - d.remote_parents, "orphan", "orphans"),
        (d.self_parents, "self-parent", "self-parents"),
        (d.cycles_cut, "cycle cut", "cycles cut"),
        (d.duplicate_ids, "duplicate id", "duplicate ids"),
        (
            d.duplicates_dropped,
            "exact duplicate dropped",
            "exact duplicates dropped",
        ),
        (
            d.negative_durations,
            "negative duration",
            "negative durations",
        ),
        (
            d.clamped,
            "clamped into its parent",
            "clamped into their parent",
        ),
        (d.detached, "outside its parent", "outside their parent"),
        (d.non_blocking, "non-blocking", "non-blocking"),
        (d.skew_applied, "skew-corrected", "skew-corrected"),
        (d.dropped, "dropped", "dropped"),
    ]
    .iter()
    .filter(|(n, _, _)| *n > 0)
    .map(|&(n, one, many)| counted(n, one, many))
    .collect()
}

/// `1 span`, `2 spans`: a count with its noun, singular or plural, as the text outputs write
/// counts.
pub fn counted(n: usize, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}

/// Writes the aggregate table.
pub fn write_aggregate_text(
    out: &mut impl Write,
    aggregate: &Aggregate,
    max_rows: usize,
) -> io::Result<()> {
    writeln!(
        out,
        "contribution to the critical path over {} traces ({} in total)",
        aggregate.traces,
        format_duration(u64::try_from(aggregate.total_duration_ns).unwrap_or(u64::MAX)),
    )?;
    writeln!(
        out,
        "  {:<24}  {:<32}  {:>6}  {:>7}  {:>12}  {:>12}  {:>12}  {:>6}",
        "service", "operation", "traces", "latency", "p50", "p90", "p99", "p90%"
    )?;
    for row in aggregate.operations.iter().take(max_rows) {
        writeln!(
            out,
            "  {:<24}  {:<32}  {:>6}  {:>6.1}%  {:>12}  {:>12}  {:>12}  {:>5.1}%",
            truncate(&row.service, 24),
            truncate(&row.operation, 32),
            row.traces,
            100.0 * row.share_of_latency,
            format_duration(row.critical_ns_p50),
            format_duration(row.critical_ns_p90),
            format_duration(row.critical_ns_p99),
            100.0 * row.share_p90,
        )?;
    }
    if aggregate.operations.len() > max_rows {
        writeln!(
            out,
            "  … {} more operations",
            aggregate.operations.len() - max_rows
        )?;
    }
    Ok(())
}

// ---- SVG ------------------------------------------------------------------------------------

/// How many span rows an SVG shows before collapsing spans that are not on the path.
pub const SVG_MAX_ROWS: usize = 250;

const PALETTE: [&str; 12] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac", "#86bcb6", "#d37295",
];

pub(crate) fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Writes an SVG timeline: one row per span in tree order, coloured by service, with the
/// critical path drawn over the bars and summarized in a row of its own at the top. Beyond
/// [`SVG_MAX_ROWS`] spans only those on the path and their ancestors keep a row.
pub fn write_svg(
    out: &mut impl Write,
    trace: &Trace,
    assembled: &AssembledTrace,
    analysis: &CriticalPathAnalysis,
) -> io::Result<()> {
    let n = trace.spans.len();
    let on_path: Vec<bool> = {
        let mut v = vec![false; n];
        for p in &analysis.path {
            if let Some(slot) = v.get_mut(p.span) {
                *slot = true;
            }
        }
        v
    };
    // Tree order, children by start, iteratively.
    let mut order: Vec<(usize, usize)> = Vec::with_capacity(n);
    // Top-level spans include the ones off the path, so their subtrees are drawn too.
    let mut tops: Vec<usize> = assembled.top_level().collect();
    let start_of = |i: &usize| assembled.window(*i).map_or(0, |w| w.0);
    tops.sort_by_key(|i| (std::cmp::Reverse(start_of(i)), std::cmp::Reverse(*i)));
    let mut stack: Vec<(usize, usize)> = tops.into_iter().map(|i| (i, 0)).collect();
    while let Some((i, depth)) = stack.pop() {
        order.push((i, depth));
        let mut kids: Vec<usize> = assembled.children(i).collect();
        kids.sort_by_key(|k| (std::cmp::Reverse(start_of(k)), std::cmp::Reverse(*k)));
        stack.extend(kids.into_iter().map(|k| (k, depth + 1)));
    }
    let total_rows = order.len();
    if total_rows > SVG_MAX_ROWS {
        let mut keep = on_path.clone();
        for (i, flag) in on_path.iter().enumerate() {
            if !flag {
                continue;
            }
            let mut at = assembled.parent(i);
            while let Some(p) = at {
                if keep[p] {
                    break;
                }
                keep[p] = true;
                at = assembled.parent(p);
            }
        }
        order.retain(|(i, _)| keep[*i]);
        order.truncate(SVG_MAX_ROWS);
    }

    // Colours: services in name order.
    let mut services: Vec<&str> = trace.spans.iter().map(|s| s.service()).collect();
    services.sort_unstable();
    services.dedup();
    let colour =
        |service: &str| PALETTE[services.binary_search(&service).unwrap_or(0) % PALETTE.len()];

    let (t0, t1) = (
        analysis.start_ns,
        analysis.end_ns.max(analysis.start_ns.saturating_add(1)),
    );
    let label_w = 380.0;
    let plot_w = 820.0;
    let row_h = 18.0;
    let top = 64.0;
    let x = |t: u64| label_w + plot_w * (t.saturating_sub(t0)) as f64 / (t1 - t0).max(1) as f64;
    let width = label_w + plot_w + 20.0;
    // Legend entries, wrapped to the width: (x, line, text, colour).
    let mut legend: Vec<(f64, usize, String, Option<&str>)> = Vec::new();
    let (mut lx, mut line) = (8.0, 0usize);
    let shown_services = services.len().min(60);
    let mut entries: Vec<(String, Option<&str>)> = services
        .iter()
        .take(shown_services)
        .map(|s| {
            (
                truncate(if s.is_empty() { "(unknown)" } else { s }, 24),
                Some(colour(s)),
            )
        })
        .collect();
    if services.len() > shown_services {
        entries.push((
            format!("… {} more services", services.len() - shown_services),
            None,
        ));
    }
    entries.push(("dark bars: critical path".to_string(), None));
    for (text, swatch) in entries {
        let advance =
            7.0 * text.chars().count() as f64 + if swatch.is_some() { 24.0 } else { 10.0 };
        if lx + advance > width - 8.0 && lx > 8.0 {
            lx = 8.0;
            line += 1;
        }
        legend.push((lx, line, text, swatch));
        lx += advance;
    }
    let height = top + row_h * (order.len() as f64 + 1.0) + 32.0 + 16.0 * (line as f64 + 1.0);

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        svg,
        r##"<rect width="100%" height="100%" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        svg,
        r#"<text x="8" y="18" font-size="14" font-weight="bold">trace {} — {} mode</text>"#,
        xml(&analysis.trace_id),
        analysis.mode.as_str()
    );
    let _ = writeln!(
        svg,
        r#"<text x="8" y="36">duration {}, critical path {}; {} of {} spans shown{}</text>"#,
        format_duration(analysis.duration_ns()),
        format_duration(analysis.critical_ns()),
        order.len(),
        total_rows,
        if order.len() < total_rows {
            " (spans off the critical path collapsed)"
        } else {
            ""
        }
    );
    // Summary row: per pixel column, the service holding most of the path there.
    let _ = writeln!(svg, r#"<text x="8" y="{}">critical path</text>"#, top - 6.0);
    let columns = plot_w as usize;
    let mut best: Vec<HashMap<&str, u64>> = vec![HashMap::new(); columns];
    for s in &analysis.sections {
        let service = trace.spans.get(s.span).map_or("", |sp| sp.service());
        let (a, b) = (x(s.start_ns) - label_w, x(s.end_ns) - label_w);
        let first = (a.floor() as usize).min(columns - 1);
        let last = ((b.ceil() as usize).max(first + 1)).min(columns);
        let per_column = s.duration_ns() / (last - first) as u64;
        for column in best.iter_mut().take(last).skip(first) {
            *column.entry(service).or_insert(0) += per_column.max(1);
        }
    }
    let mut run: Option<(usize, &str)> = None;
    let flush = |svg: &mut String, from: usize, to: usize, service: &str| {
        let _ = writeln!(
            svg,
            r#"<rect x="{:.2}" y="{:.2}" width="{}" height="12" fill="{}"><title>{}</title></rect>"#,
            label_w + from as f64,
            top - 16.0,
            to - from,
            colour(service),
            xml(service)
        );
    };
    for (c, column) in best.iter().enumerate() {
        let winner = column
            .iter()
            .max_by_key(|(s, v)| (**v, std::cmp::Reverse(**s)))
            .map(|(s, _)| *s);
        match (run, winner) {
            (Some((from, service)), Some(w)) if w == service => run = Some((from, service)),
            (prev, w) => {
                if let Some((from, service)) = prev {
                    flush(&mut svg, from, c, service);
                }
                run = w.map(|w| (c, w));
            }
        }
    }
    if let Some((from, service)) = run {
        flush(&mut svg, from, columns, service);
    }

    // Span rows.
    let mut sections_of: HashMap<usize, Vec<(u64, u64)>> = HashMap::new();
    for s in &analysis.sections {
        sections_of
            .entry(s.span)
            .or_default()
            .push((s.start_ns, s.end_ns));
    }
    for (row, (i, depth)) in order.iter().enumerate() {
        let Some(span) = trace.spans.get(*i) else {
            continue;
        };
        let Some((s, e)) = assembled.window(*i) else {
            continue;
        };
        let y = top + row_h * row as f64;
        let label = format!(
            "{}{}: {}",
            "  ".repeat((*depth).min(20)),
            span.service(),
            span.name()
        );
        let _ = writeln!(
            svg,
            r#"<text x="8" y="{:.2}" xml:space="preserve">{}</text>"#,
            y + 12.0,
            xml(&truncate(&label, 60))
        );
        let _ = writeln!(
            svg,
            r#"<rect x="{:.2}" y="{:.2}" width="{:.2}" height="12" fill="{}" fill-opacity="0.45"><title>{} {} ({})</title></rect>"#,
            x(s),
            y + 2.0,
            (x(e) - x(s)).max(1.0),
            colour(span.service()),
            xml(span.service()),
            xml(span.name()),
            format_duration(e.saturating_sub(s))
        );
        // Critical sections over the bar, merged when closer than a pixel.
        let mut last: Option<(f64, f64)> = None;
        let draw = |svg: &mut String, a: f64, b: f64| {
            let _ = writeln!(
                svg,
                r##"<rect x="{:.2}" y="{:.2}" width="{:.2}" height="6" fill="#1a1a1a"/>"##,
                a,
                y + 5.0,
                (b - a).max(1.0)
            );
        };
        for &(a, b) in sections_of.get(i).map(Vec::as_slice).unwrap_or_default() {
            let (a, b) = (x(a), x(b));
            last = match last {
                Some((la, lb)) if a - lb < 1.0 => Some((la, b.max(lb))),
                Some((la, lb)) => {
                    draw(&mut svg, la, lb);
                    Some((a, b))
                }
                None => Some((a, b)),
            };
        }
        if let Some((a, b)) = last {
            draw(&mut svg, a, b);
        }
    }
    let legend_top = top + row_h * order.len() as f64 + 24.0;
    for (lx, line, text, swatch) in &legend {
        let y = legend_top + 16.0 * *line as f64;
        match swatch {
            Some(fill) => {
                let _ = writeln!(
                    svg,
                    r#"<rect x="{lx:.2}" y="{:.2}" width="10" height="10" fill="{fill}"/><text x="{:.2}" y="{y:.2}">{}</text>"#,
                    y - 9.0,
                    lx + 14.0,
                    xml(text)
                );
            }
            None => {
                let _ = writeln!(
                    svg,
                    r##"<text x="{lx:.2}" y="{y:.2}" fill="#555">{}</text>"##,
                    xml(text)
                );
            }
        }
    }
    svg.push_str("</svg>\n");
    out.write_all(svg.as_bytes())
}

// ---- calling contexts -----------------------------------------------------------------------

/// Each context's frames as a folded line (without the count), from cached frame labels.
fn folded_lines(tree: &ContextTree) -> Vec<Option<String>> {
    let labels: Vec<String> = tree.nodes.iter().map(|n| n.frame.label()).collect();
    (0..tree.nodes.len())
        .map(|i| {
            if tree.nodes[i].self_ns == 0 {
                return None;
            }
            let path = tree.path(i);
            let mut line = String::new();
            for (k, &p) in path.iter().enumerate() {
                if k > 0 {
                    line.push(';');
                }
                line.push_str(&labels[p]);
            }
            Some(line)
        })
        .collect()
}

/// Writes folded stacks, the input format of flamegraph.pl and inferno: one line per calling
/// context with critical-path time, `frame;frame;frame <nanoseconds>`, frames from the top of
/// the trace down ([`crate::context::Frame::label`]), the count the context's own critical-path
/// time summed over all traces in integer nanoseconds; lines in byte order, each stack once.
pub fn write_folded(out: &mut impl Write, tree: &ContextTree) -> io::Result<()> {
    let mut lines: Vec<(String, u128)> = folded_lines(tree)
        .into_iter()
        .zip(&tree.nodes)
        .filter_map(|(line, node)| Some((line?, node.self_ns)))
        .collect();
    lines.sort_unstable();
    // Two contexts can read the same (service `a:b` with operation `c`, and service `a` with
    // operation `b:c`): one line with their sum, as the format's readers would add them anyway.
    lines.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            kept.1 += later.1;
        }
        same
    });
    for (line, ns) in lines {
        writeln!(out, "{line} {ns}")?;
    }
    out.flush()
}

/// The colour of each service, by its place among all services in name order.
fn service_colours<'a>(services: impl Iterator<Item = &'a str>) -> HashMap<&'a str, &'static str> {
    let mut names: Vec<&str> = services.collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .enumerate()
        .map(|(k, name)| (name, PALETTE[k % PALETTE.len()]))
        .collect()
}

fn per_trace(ns: f64, traces: usize) -> String {
    format_duration(if traces == 0 {
        0
    } else {
        (ns / traces as f64).round() as u64
    })
}

fn folding_note(max_depth: usize) -> String {
    format!(
        "svc:op (xN): N consecutive calls of one operation (direct recursion) folded into one frame; \
         …(N more): frames beyond the {max_depth}th folded, with all their time"
    )
}

/// Writes a flame graph of the calling contexts as SVG: each frame as wide as the critical-path
/// time spent in it and below it over all traces, coloured by service. With
/// [`ContextTree::by_root`], one graph per entry point, each as wide as the page.
pub fn write_flamegraph(out: &mut impl Write, tree: &ContextTree) -> io::Result<()> {
    let colours = service_colours(tree.nodes.iter().filter_map(|n| n.frame.service()));
    let traces = tree.traces;
    let frames = tree
        .nodes
        .iter()
        .map(|node| flame::FlameFrame {
            parent: node.parent,
            label: node.frame.label(),
            own: node.self_ns as f64,
            fill: node
                .frame
                .service()
                .and_then(|s| colours.get(s))
                .copied()
                .unwrap_or("#bbbbbb")
                .to_owned(),
        })
        .collect();
    let total = tree.critical_ns as f64;
    let self_ns: Vec<(u128, usize)> = tree.nodes.iter().map(|n| (n.self_ns, n.traces)).collect();
    let pct = move |ns: f64| if total > 0.0 { 100.0 * ns / total } else { 0.0 };
    let detail = move |frames: Option<&[usize]>, inclusive: f64| match frames {
        None => format!(
            "{} of critical path in {traces} traces, {} a trace",
            format_duration(inclusive as u64),
            per_trace(inclusive, traces)
        ),
        Some(members) => {
            let figures = members.iter().filter_map(|&i| self_ns.get(i));
            let own: u128 = figures.clone().map(|&(own, _)| own).sum();
            let in_traces = figures.map(|&(_, n)| n).max().unwrap_or(0);
            // Contexts that read the same are drawn as one frame; a trace may have gone
            // through several of them, so only the largest count is certain.
            let on_path = if members.len() > 1 {
                format!(
                    "on the path of at least {in_traces} of {traces} traces ({} contexts that read the same)",
                    members.len()
                )
            } else {
                format!("on the path of {in_traces} of {traces} traces")
            };
            format!(
                "{} ({:.1}%), {} a trace; {} in the frame itself; {on_path}",
                format_duration(inclusive as u64),
                pct(inclusive),
                per_trace(inclusive, traces),
                format_duration(u64::try_from(own).unwrap_or(u64::MAX)),
            )
        }
    };
    let heading = move |label: &str, inclusive: f64| {
        format!(
            "{label}: {} of critical path ({:.1}% of all traces' critical path)",
            format_duration(inclusive as u64),
            pct(inclusive),
        )
    };
    let flame = flame::Flame {
        title: format!(
            "Critical path by calling context: {} traces, {}",
            tree.traces,
            format_duration(u64::try_from(tree.critical_ns).unwrap_or(u64::MAX))
        ),
        notes: vec![
            "width: critical-path time in the frame and below it, summed over all traces \
             (hover for figures); colour: service"
                .to_owned(),
            folding_note(tree.max_depth),
        ],
        frames,
        group_heading: tree.by_root.then(|| Box::new(heading) as flame::Heading),
        detail: Box::new(detail),
    };
    flame::write(out, &flame)?;
    out.flush()
}

/// Writes a differential flame graph of a comparison as SVG: the frames of the after set, each
/// as wide as its critical-path time per trace after; red where the context's own time got
/// significantly slower, blue where faster (the deeper, the larger the change), grey where the
/// difference is within noise.
pub fn write_diff_flamegraph(out: &mut impl Write, comparison: &Comparison) -> io::Result<()> {
    let largest = comparison
        .contexts
        .iter()
        .filter(|c| c.test.significant())
        .map(|c| c.change_mean_ns.abs())
        .fold(0.0, f64::max);
    let fill = |change: Change, delta: f64| {
        let r = if largest > 0.0 {
            (delta.abs() / largest).min(1.0)
        } else {
            0.0
        };
        let c = (215.0 - 175.0 * r).round() as u8;
        match change {
            Change::Slower => format!("#ff{c:02x}{c:02x}"),
            Change::Faster => format!("#{c:02x}{c:02x}ff"),
            Change::Noise => "#dddddd".to_owned(),
        }
    };
    let frames = comparison
        .contexts
        .iter()
        .map(|c| flame::FlameFrame {
            parent: c.parent,
            label: c.frame.label(),
            own: c.after.mean_ns,
            fill: fill(c.test.change, c.change_mean_ns),
        })
        .collect();
    let rows: Vec<(f64, f64, f64, Change, f64)> = comparison
        .contexts
        .iter()
        .map(|c| {
            (
                c.before.mean_ns,
                c.after.mean_ns,
                c.change_mean_ns,
                c.test.change,
                c.test.p_value,
            )
        })
        .collect();
    let detail = move |frames: Option<&[usize]>, inclusive: f64| {
        let members: Vec<_> = frames
            .unwrap_or_default()
            .iter()
            .filter_map(|&i| rows.get(i))
            .collect();
        if members.is_empty() {
            return format!(
                "{} a trace after, in the frames and below",
                format_duration(inclusive as u64)
            );
        }
        // Contexts that read the same are drawn as one frame: their times per trace add up,
        // their tests stay each its own.
        let before: f64 = members.iter().map(|r| r.0).sum();
        let after: f64 = members.iter().map(|r| r.1).sum();
        let delta: f64 = members.iter().map(|r| r.2).sum();
        let tests: Vec<String> = members
            .iter()
            .map(|&&(_, _, _, change, p)| format!("{}, p = {}", verdict(change), p_value(p)))
            .collect();
        let tests = if tests.len() > 1 {
            format!(
                "{} contexts that read the same: {}",
                tests.len(),
                tests.join("; ")
            )
        } else {
            tests.concat()
        };
        format!(
            "{} a trace after with what is below; its own time {} before, {} after ({}), {tests}",
            format_duration(inclusive as u64),
            format_duration(before.round() as u64),
            format_duration(after.round() as u64),
            signed_duration(delta),
        )
    };
    let gone = comparison
        .contexts
        .iter()
        .filter(|c| c.after.traces == 0 && c.before.traces > 0)
        .count();
    let mut notes = vec![
        format!(
            "width: critical-path time per trace after ({} traces; before: {}); red: significantly slower, \
             blue: significantly faster (Mann-Whitney U, two-sided, α = {}), grey: within noise",
            comparison.after.traces, comparison.before.traces, comparison.alpha
        ),
        folding_note(comparison.max_depth),
    ];
    if gone > 0 {
        notes.push(format!(
            "{gone} contexts had critical-path time only before, so no width here (the text and JSON reports list them)"
        ));
    }
    let heading = |label: &str, inclusive: f64| {
        format!(
            "{label}: {} a trace after",
            format_duration(inclusive as u64)
        )
    };
    let flame = flame::Flame {
        title: format!(
            "Critical path, after against before: {} a trace after, {} before",
            per_trace(comparison.after.critical_ns as f64, comparison.after.traces),
            per_trace(
                comparison.before.critical_ns as f64,
                comparison.before.traces
            ),
        ),
        notes,
        frames,
        group_heading: comparison
            .by_root
            .then(|| Box::new(heading) as flame::Heading),
        detail: Box::new(detail),
    };
    flame::write(out, &flame)?;
    out.flush()
}

fn signed_duration(ns: f64) -> String {
    let magnitude = format_duration(ns.abs().round() as u64);
    if ns < 0.0 {
        format!("-{magnitude}")
    } else {
        format!("+{magnitude}")
    }
}

fn p_value(p: f64) -> String {
    if p < 0.001 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

fn verdict(change: Change) -> &'static str {
    match change {
        Change::Slower => "slower",
        Change::Faster => "faster",
        Change::Noise => "noise",
    }
}

/// Writes the comparison as JSON: [`Comparison`] as serde writes it, with the same escaping of
/// terminal controls as the analysis JSON.
pub fn write_comparison_json(out: &mut impl Write, comparison: &Comparison) -> io::Result<()> {
    write_json(out, comparison)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Writes the comparison as text: the two sets, the test, then the operations and the calling
/// contexts whose critical-path time changed, significant changes first, at most `max_rows`
/// of each.
pub fn write_comparison_text(
    out: &mut impl Write,
    comparison: &Comparison,
    max_rows: usize,
) -> io::Result<()> {
    let (b, a) = (&comparison.before, &comparison.after);
    let mean_b = b.critical_ns as f64 / b.traces.max(1) as f64;
    let mean_a = a.critical_ns as f64 / a.traces.max(1) as f64;
    writeln!(
        out,
        "before: {}, critical path {} a trace; after: {}, {} a trace ({})",
        counted(b.traces, "trace", "traces"),
        format_duration(mean_b.round() as u64),
        counted(a.traces, "trace", "traces"),
        format_duration(mean_a.round() as u64),
        signed_duration(mean_a - mean_b),
    )?;
    writeln!(
        out,
        "Mann-Whitney U test of each row's critical-path time per trace (0 where absent), two-sided, \
         alpha {}: {} rows tested, so about {:.1} flagged by chance if nothing changed",
        comparison.alpha,
        comparison.rows_tested,
        comparison.rows_tested as f64 * comparison.alpha,
    )?;
    let row = |out: &mut dyn Write,
               name: &str,
               before: &crate::compare::SideStats,
               after: &crate::compare::SideStats,
               delta: f64,
               test: &crate::compare::RankTest|
     -> io::Result<()> {
        writeln!(
            out,
            "  {:<6}  {name}  {} a trace (p = {})",
            verdict(test.change),
            signed_duration(delta),
            p_value(test.p_value),
        )?;
        // Percentiles are over the traces that have the row: none, none to show.
        let at = |side: &crate::compare::SideStats, ns: u64| {
            if side.traces == 0 {
                "-".to_owned()
            } else {
                format_duration(ns)
            }
        };
        writeln!(
            out,
            "          traces {} → {}, p50 {} → {}, p90 {} → {}, p99 {} → {}, share {:.1}% → {:.1}%",
            before.traces,
            after.traces,
            at(before, before.p50_ns),
            at(after, after.p50_ns),
            at(before, before.p90_ns),
            at(after, after.p90_ns),
            at(before, before.p99_ns),
            at(after, after.p99_ns),
            100.0 * before.share,
            100.0 * after.share,
        )
    };
    let tail = |out: &mut dyn Write, shown: usize, total: usize, significant: usize, what: &str| {
        if total > shown {
            writeln!(
                out,
                "  … {} more {what} ({significant} of them significant; the JSON report lists all)",
                total - shown
            )
        } else {
            Ok(())
        }
    };

    writeln!(out, "\nper operation (service: operation):")?;
    for o in comparison.operations.iter().take(max_rows) {
        let name = format!(
            "{}: {}",
            truncate(&o.service, 32),
            truncate(&o.operation, 48)
        );
        row(out, &name, &o.before, &o.after, o.change_mean_ns, &o.test)?;
    }
    let shown = comparison.operations.len().min(max_rows);
    let hidden_significant = comparison
        .operations
        .iter()
        .skip(shown)
        .filter(|o| o.test.significant())
        .count();
    tail(
        out,
        shown,
        comparison.operations.len(),
        hidden_significant,
        "operations",
    )?;

    let mut contexts: Vec<&crate::compare::ContextChange> = comparison
        .contexts
        .iter()
        .filter(|c| c.before.traces + c.after.traces > 0)
        .collect();
    contexts.sort_by(|x, y| {
        y.test
            .significant()
            .cmp(&x.test.significant())
            .then_with(|| y.change_mean_ns.abs().total_cmp(&x.change_mean_ns.abs()))
            .then_with(|| x.folded.cmp(&y.folded))
    });
    writeln!(out, "\nper calling context (its own time):")?;
    for c in contexts.iter().take(max_rows) {
        row(
            out,
            &left_truncate(&c.folded, 100),
            &c.before,
            &c.after,
            c.change_mean_ns,
            &c.test,
        )?;
    }
    let shown = contexts.len().min(max_rows);
    let hidden_significant = contexts
        .iter()
        .skip(shown)
        .filter(|c| c.test.significant())
        .count();
    tail(out, shown, contexts.len(), hidden_significant, "contexts")?;
    out.flush()
}

/// The end of a folded context (already safe to print), cut to `width` characters with `…`
/// in front: the deepest frames say most.
fn left_truncate(text: &str, width: usize) -> String {
    let count = text.chars().count();
    if count <= width {
        return text.to_owned();
    }
    let mut out = String::from("…");
    out.extend(text.chars().skip(count - width.saturating_sub(1)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Options, Span, SpanId, TraceId, analyze_assembled, assemble};

    fn sample() -> Trace {
        let t = TraceId::from_u128(0xfeed);
        Trace::new(
            t.clone(),
            vec![
                Span::new(t.clone(), SpanId::from_u64(1), 1_000, 9_000)
                    .with_service("web")
                    .with_name("GET <a&b>"),
                Span::new(t.clone(), SpanId::from_u64(2), 2_000, 6_000)
                    .with_parent(SpanId::from_u64(1))
                    .with_service("db")
                    .with_name("SELECT"),
                Span::new(t, SpanId::from_u64(3), 20_000, 30_000)
                    .with_parent(SpanId::from_u64(77))
                    .with_service("late"),
            ],
        )
    }

    #[test]
    fn json_escapes_what_a_terminal_would_obey_and_means_the_same() {
        let name = "a\u{1b}[2J\u{7f}\u{9b}31m\u{202e}z\"\\é";
        let mut out = Vec::new();
        write_json(&mut out, &serde_json::json!({ "name": name })).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.chars().any(acts_on_a_terminal), "{text:?}");
        assert_eq!(text, r#"{"name":"a\u001b[2J\u007f\u009b31m\u202ez\"\\é"}"#);
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["name"], name);
    }

    #[test]
    fn long_arrays_written_on_two_threads_keep_order_and_commas() {
        // Under test, arrays of four entries or more are written in pieces of three.
        for n in [0, 1, 3, 4, 5, 10, 31] {
            for skip in [0, 1, 2, 4] {
                let mut out = Vec::new();
                let mut buf = b"[".to_vec();
                entries(&mut out, &mut buf, n, |k, buf| {
                    if skip > 0 && k % skip == 0 {
                        return Ok(());
                    }
                    write!(buf, ",{k}")
                })
                .unwrap();
                out.extend_from_slice(&buf);
                out.push(b']');
                let expected: Vec<usize> = (0..n).filter(|k| skip == 0 || k % skip != 0).collect();
                let written: Vec<usize> = serde_json::from_slice(&out)
                    .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)));
                assert_eq!(written, expected, "n = {n}, skip = {skip}");
            }
        }
    }

    #[test]
    fn a_long_path_is_written_whole_and_in_order() {
        let t = TraceId::from_u128(0xbeef);
        let mut spans = vec![Span::new(t.clone(), SpanId::from_u64(1), 0, 1_000)];
        for i in 0..40u64 {
            spans.push(
                Span::new(t.clone(), SpanId::from_u64(i + 2), 10 + i * 20, 20 + i * 20)
                    .with_parent(SpanId::from_u64(1))
                    .with_service(if i % 2 == 0 { "even" } else { "odd" })
                    .with_name(format!("op{}", i % 7)),
            );
        }
        let analysis = crate::analyze_critical_path(&Trace::new(t, spans), &Options::default());
        assert!(analysis.path.len() > 40, "{}", analysis.path.len());
        let mut writer = JsonWriter::new(Vec::new()).unwrap();
        writer.trace(&analysis).unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&writer.finish(None).unwrap()).unwrap();
        let trace = &doc["traces"][0];
        let ids: Vec<String> = analysis
            .critical_spans
            .iter()
            .map(|i| i.to_string())
            .collect();
        assert_eq!(trace["critical_spans"], serde_json::json!(ids));
        let spans = trace["spans"].as_array().unwrap();
        assert_eq!(spans.len(), analysis.path.len());
        for ((json, p), id) in spans.iter().zip(&analysis.path).zip(&ids) {
            assert_eq!(json["span_id"], *id);
            assert_eq!(json["self_ns"], p.self_ns);
            let op = &analysis.operations[p.operation_index];
            assert_eq!(json["service"], *op.service);
        }
        let sections = trace["sections"].as_array().unwrap();
        assert_eq!(sections.len(), analysis.sections.len());
        for (json, s) in sections.iter().zip(&analysis.sections) {
            assert_eq!(json["start_unix_nano"], s.start_ns);
            assert_eq!(json["end_unix_nano"], s.end_ns);
        }
    }

    #[test]
    fn json_is_valid_and_sections_are_chronological() {
        let trace = sample();
        let analysis = crate::analyze_critical_path(&trace, &Options::default());
        let mut writer = JsonWriter::new(Vec::new()).unwrap();
        writer.trace(&analysis).unwrap();
        writer.trace(&analysis).unwrap();
        let bytes = writer.finish(None).unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let traces = doc["traces"].as_array().unwrap();
        assert_eq!(traces.len(), 2);
        let sections = traces[0]["sections"].as_array().unwrap();
        let starts: Vec<u64> = sections
            .iter()
            .map(|s| s["start_unix_nano"].as_u64().unwrap())
            .collect();
        assert!(starts.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(sections[1]["span_id"], "0000000000000002");
        assert_eq!(traces[0]["gaps"][0]["start_unix_nano"], 9_000);
        assert_eq!(traces[0]["diagnostics"]["orphans"], 1);
    }

    #[test]
    fn text_lists_steps_and_gaps() {
        let analysis = crate::analyze_critical_path(&sample(), &Options::default());
        let mut out = Vec::new();
        write_text(&mut out, &analysis, 40).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("(nothing running)"), "{text}");
        assert!(text.contains("SELECT"));
        assert!(text.contains("repaired: 1 orphan"), "{text}");
        let mut short = Vec::new();
        write_text(&mut short, &analysis, 2).unwrap();
        assert!(String::from_utf8(short).unwrap().contains("3 more steps"));
    }

    #[test]
    fn text_shows_no_control_characters_from_the_trace() {
        let t = TraceId::parse("trace\u{1b}]0;title\u{7}");
        let trace = Trace::new(
            t.clone(),
            vec![
                Span::new(t.clone(), SpanId::parse("root\u{1b}[2J"), 1_000, 9_000)
                    .with_service("web\u{1b}[31m")
                    .with_name("GET \u{202e}/txt.exe"),
                Span::new(t, SpanId::parse("late\r"), 10_000, 12_000)
                    .with_parent(SpanId::parse("root\u{1b}[2J"))
                    .with_service("\u{9b}31m")
                    .with_name("job\n"),
            ],
        );
        let analysis = crate::analyze_critical_path(&trace, &Options::default());
        assert_eq!(analysis.off_path.len(), 1);
        let mut out = Vec::new();
        write_text(&mut out, &analysis, 40).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for c in ['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}', '\r'] {
            assert!(!text.contains(c), "{c:?} in {text:?}");
        }
        assert!(text.contains(r"web\u{1b}[31m"), "{text}");
        assert!(text.contains(r"GET \u{202e}/txt.exe"), "{text}");
        assert!(
            text.contains(r"not on the path, did not block its parent: late\r"),
            "{text}"
        );
        // One line per row: a newline in a name does not start a line of its own.
        assert!(lines.iter().any(|l| l.contains(r"job\n")), "{text}");
    }

    #[test]
    fn renderers_survive_what_jaeger_mode_leaves_of_broken_traces() {
        // A child ending before it starts stays reversed in Jaeger mode (Jaeger UI keeps it).
        let t = TraceId::from_u128(3);
        let trace = Trace::new(
            t.clone(),
            vec![
                Span::new(t.clone(), SpanId::from_u64(1), 100, 200),
                Span::new(t.clone(), SpanId::from_u64(2), 150, 50).with_parent(SpanId::from_u64(1)),
                Span::new(t, SpanId::from_u64(3), u64::MAX, u64::MAX)
                    .with_parent(SpanId::from_u64(1)),
            ],
        );
        for mode in [crate::Mode::Robust, crate::Mode::Jaeger] {
            let assembled = assemble(&trace, &Options::new(mode));
            let analysis = analyze_assembled(&trace, &assembled);
            let mut out = Vec::new();
            write_text(&mut out, &analysis, 40).unwrap();
            write_svg(&mut out, &trace, &assembled, &analysis).unwrap();
            assert!(!out.is_empty());
        }
    }

    #[test]
    fn svg_escapes_names_and_collapses_large_traces() {
        let trace = sample();
        let assembled = assemble(&trace, &Options::default());
        let analysis = analyze_assembled(&trace, &assembled);
        let mut out = Vec::new();
        write_svg(&mut out, &trace, &assembled, &analysis).unwrap();
        let svg = String::from_utf8(out).unwrap();
        assert!(svg.contains("GET &lt;a&amp;b&gt;"));
        assert!(!svg.contains("<a&b>"));
        assert!(svg.contains("3 of 3 spans shown"));

        let t = TraceId::from_u128(1);
        let mut spans = vec![Span::new(t.clone(), SpanId::from_u64(1), 0, 1_000_000)];
        for k in 0..1000u64 {
            // Overlapping children: only the last-finishing ones are on the path.
            spans.push(
                Span::new(t.clone(), SpanId::from_u64(k + 2), k, 500_000 + k)
                    .with_parent(SpanId::from_u64(1)),
            );
        }
        let big = Trace::new(t, spans);
        let assembled = assemble(&big, &Options::default());
        let analysis = analyze_assembled(&big, &assembled);
        let mut out = Vec::new();
        write_svg(&mut out, &big, &assembled, &analysis).unwrap();
        let svg = String::from_utf8(out).unwrap();
        let shown = analysis.path.len();
        assert!(
            svg.contains(&format!(
                "{shown} of 1001 spans shown (spans off the critical path collapsed)"
            )),
            "{}",
            &svg[..400]
        );
    }

    // ---- calling contexts ----

    use crate::compare::{Profile, compare};
    use crate::context::{ContextAggregator, ContextOptions};

    /// web:GET [0,100] calls `name` [10,60] (service db), which calls cache:get [20,30].
    fn context_trace(k: u128, name: &str, db_end: u64) -> Trace {
        let t = TraceId::from_u128(k);
        Trace::new(
            t.clone(),
            vec![
                Span::new(t.clone(), SpanId::from_u64(1), 0, 100)
                    .with_service("web")
                    .with_name("GET"),
                Span::new(t.clone(), SpanId::from_u64(2), 10, db_end)
                    .with_parent(SpanId::from_u64(1))
                    .with_service("db")
                    .with_name(name),
                Span::new(t, SpanId::from_u64(3), 20, 30)
                    .with_parent(SpanId::from_u64(2))
                    .with_service("cache")
                    .with_name("get"),
            ],
        )
    }

    fn tree_of(traces: &[Trace], options: ContextOptions) -> ContextTree {
        let mut contexts = ContextAggregator::new(options);
        for trace in traces {
            let assembled = assemble(trace, &Options::default());
            let analysis = analyze_assembled(trace, &assembled);
            contexts.add(trace, &assembled, &analysis);
        }
        contexts.finish()
    }

    #[test]
    fn folded_lines_are_frames_then_an_integer_count() {
        let tree = tree_of(
            &[context_trace(1, "query", 60), context_trace(2, "query", 80)],
            ContextOptions::default(),
        );
        let mut out = Vec::new();
        write_folded(&mut out, &tree).unwrap();
        let text = String::from_utf8(out).unwrap();
        // web: 10 + 40, then 10 + 20; db: 40, then 60; cache: 10 twice.
        assert_eq!(
            text,
            "web:GET 80\nweb:GET;db:query 100\nweb:GET;db:query;cache:get 20\n"
        );
        // What flamegraph.pl and inferno read: everything before the last space is the
        // stack, split at `;`; after it an integer.
        let sum: u64 = text
            .lines()
            .map(|line| line.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
            .sum();
        assert_eq!(u128::from(sum), tree.critical_ns);
    }

    #[test]
    fn contexts_that_read_the_same_are_one_line() {
        let t = TraceId::from_u128(3);
        let trace = Trace::new(
            t.clone(),
            vec![
                Span::new(t.clone(), SpanId::from_u64(1), 0, 100)
                    .with_service("web")
                    .with_name("GET"),
                Span::new(t.clone(), SpanId::from_u64(2), 10, 30)
                    .with_parent(SpanId::from_u64(1))
                    .with_service("a:b")
                    .with_name("c"),
                Span::new(t, SpanId::from_u64(3), 40, 90)
                    .with_parent(SpanId::from_u64(1))
                    .with_service("a")
                    .with_name("b:c"),
            ],
        );
        let mut out = Vec::new();
        write_folded(&mut out, &tree_of(&[trace], ContextOptions::default())).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "web:GET 30\nweb:GET;a:b:c 70\n"
        );
    }

    #[test]
    fn a_name_cannot_add_a_line_a_frame_or_markup() {
        let evil = "q;x\n<script>alert(1)</script> & \"\u{1b}[2J 99";
        let tree = tree_of(&[context_trace(1, evil, 60)], ContextOptions::default());
        let mut out = Vec::new();
        write_folded(&mut out, &tree).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        for line in text.lines() {
            let (stack, count) = line.rsplit_once(' ').unwrap();
            count.parse::<u64>().unwrap();
            assert!(stack.split(';').count() <= 3, "{line}");
            assert!(!line.contains('\u{1b}'));
        }
        assert!(text.contains(r"db:q\u{3b}x\n<script>"), "{text}");

        let mut svg = Vec::new();
        write_flamegraph(&mut svg, &tree).unwrap();
        let svg = String::from_utf8(svg).unwrap();
        let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
        assert!(doc.descendants().all(|n| n.tag_name().name() != "script"));
        let title = doc
            .descendants()
            .filter(|n| n.has_tag_name("title"))
            .filter_map(|n| n.text())
            .find(|t| t.starts_with("db:"))
            .unwrap();
        // The name as text, escapes and all, not as markup.
        assert!(title.starts_with(r#"db:q\u{3b}x\n<script>alert(1)</script> & "\u{1b}[2J 99"#));
    }

    /// Each `<g>` of a flame graph: (its title, its rectangle's fill and width).
    fn frames_of(svg: &str) -> Vec<(String, String, f64)> {
        let doc = roxmltree::Document::parse(svg).expect("well-formed SVG");
        doc.descendants()
            .filter(|n| n.has_tag_name("g") && n.attribute("transform").is_none())
            .map(|g| {
                let title = g
                    .children()
                    .find(|c| c.has_tag_name("title"))
                    .and_then(|c| c.text())
                    .unwrap_or_default()
                    .to_owned();
                let rect = g.children().find(|c| c.has_tag_name("rect")).unwrap();
                (
                    title,
                    rect.attribute("fill").unwrap().to_owned(),
                    rect.attribute("width").unwrap().parse().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn flame_graph_widths_follow_time_and_by_root_draws_one_graph_per_entry_point() {
        let t = TraceId::from_u128(9);
        let other_entry = Trace::new(
            t.clone(),
            vec![
                Span::new(t, SpanId::from_u64(1), 0, 300)
                    .with_service("batch")
                    .with_name("run"),
            ],
        );
        let traces = [context_trace(1, "query", 60), other_entry];
        let mut svg = Vec::new();
        write_flamegraph(&mut svg, &tree_of(&traces, ContextOptions::default())).unwrap();
        let frames = frames_of(&String::from_utf8(svg).unwrap());
        let width = |prefix: &str| {
            frames
                .iter()
                .find(|(title, _, _)| title.starts_with(prefix))
                .unwrap()
                .2
        };
        // One graph over `all`: 400 ns in all, web:GET 100 of it, batch:run 300.
        assert!((width("all") - 1180.0).abs() < 0.01);
        assert!((width("web:GET") - 295.0).abs() < 0.01);
        assert!((width("batch:run") - 885.0).abs() < 0.01);
        assert!((width("db:query") - 295.0 * 0.5).abs() < 0.01);

        let mut svg = Vec::new();
        let tree = tree_of(&traces, ContextOptions::default().with_by_root(true));
        write_flamegraph(&mut svg, &tree).unwrap();
        let svg = String::from_utf8(svg).unwrap();
        let frames = frames_of(&svg);
        // Each entry point as wide as the page, with a heading, and no `all`.
        assert!(frames.iter().all(|(title, _, _)| !title.starts_with("all")));
        assert!((width_of(&frames, "web:GET") - 1180.0).abs() < 0.01);
        assert!((width_of(&frames, "batch:run") - 1180.0).abs() < 0.01);
        assert!(
            svg.contains(
                ">batch:run: 300ns of critical path (75.0% of all traces&apos; critical path)<"
            ) || svg.contains(
                ">batch:run: 300ns of critical path (75.0% of all traces' critical path)<"
            ),
            "{svg}"
        );
    }

    /// web:GET [0,200] calls db:query twice ([10,30], [40,60]), then two contexts that read
    /// the same, `a:b` `c` [70,100] and `a` `b:c` [110,190], each calling cache:get ([75,80],
    /// [120,130]); `db_shift` lengthens the second `a:b:c` and its parent.
    fn same_reading_trace(k: u128, db_shift: u64) -> Trace {
        let t = TraceId::from_u128(k);
        let span = |id: u64, parent: Option<u64>, start: u64, end: u64, svc: &str, op: &str| {
            let s = Span::new(t.clone(), SpanId::from_u64(id), start, end)
                .with_service(svc)
                .with_name(op);
            match parent {
                Some(p) => s.with_parent(SpanId::from_u64(p)),
                None => s,
            }
        };
        Trace::new(
            t.clone(),
            vec![
                span(1, None, 0, 200 + db_shift, "web", "GET"),
                span(2, Some(1), 10, 30, "db", "query"),
                span(3, Some(1), 40, 60, "db", "query"),
                span(4, Some(1), 70, 100, "a:b", "c"),
                span(5, Some(4), 75, 80, "cache", "get"),
                span(6, Some(1), 110, 190 + db_shift, "a", "b:c"),
                span(7, Some(6), 120, 130, "cache", "get"),
            ],
        )
    }

    /// The frames of a flame graph whose label is `label` (the title up to its figures).
    fn frames_labelled<'a>(
        frames: &'a [(String, String, f64)],
        label: &str,
    ) -> Vec<&'a (String, String, f64)> {
        let prefix = format!("{label} — ");
        frames.iter().filter(|f| f.0.starts_with(&prefix)).collect()
    }

    #[test]
    fn flame_graphs_draw_what_reads_the_same_as_one_frame_as_the_folded_output_does() {
        let tree = tree_of(&[same_reading_trace(1, 0)], ContextOptions::default());
        let mut folded = Vec::new();
        write_folded(&mut folded, &tree).unwrap();
        let folded = String::from_utf8(folded).unwrap();
        assert_eq!(
            folded,
            "web:GET 50\nweb:GET;a:b:c 95\nweb:GET;a:b:c;cache:get 15\nweb:GET;db:query 40\n"
        );

        let mut svg = Vec::new();
        write_flamegraph(&mut svg, &tree).unwrap();
        let frames = frames_of(&String::from_utf8(svg).unwrap());
        // One frame per folded stack (each label is in one stack here), as wide as the stack's
        // count with what is below it: 1180 px for the 200 ns of the trace.
        let scale = 1180.0 / 200.0;
        let mut own_by_label = std::collections::HashMap::new();
        for line in folded.lines() {
            let (stack, count) = line.rsplit_once(' ').unwrap();
            let label = stack.rsplit(';').next().unwrap();
            *own_by_label.entry(label).or_insert(0.0) += count.parse::<f64>().unwrap();
        }
        let width = |label: &str| {
            let found = frames_labelled(&frames, label);
            assert_eq!(found.len(), 1, "{label}: {found:?}");
            found[0].2
        };
        for (label, below) in [
            ("web:GET", &["db:query", "a:b:c"][..]),
            ("db:query", &[]),
            ("a:b:c", &["cache:get"]),
            ("cache:get", &[]),
        ] {
            let own = width(label) - below.iter().map(|b| width(b)).sum::<f64>();
            assert!(
                (own - own_by_label[label] * scale).abs() < 0.02,
                "{label}: {own} px, folded {}",
                own_by_label[label]
            );
        }
        assert!((width("a:b:c") - 110.0 * scale).abs() < 0.02);
        let title = &frames_labelled(&frames, "a:b:c")[0].0;
        assert!(
            title.contains("95ns in the frame itself")
                && title.contains("at least 1 of 1 traces (2 contexts that read the same)"),
            "{title}"
        );

        // The differential one: the same frames, as wide as their time per trace after.
        let profile = |shift: u64, first: u128| {
            let mut profile = Profile::new(ContextOptions::default());
            for k in 0..10u64 {
                let trace = same_reading_trace(first + u128::from(k), shift + k % 2);
                let assembled = assemble(&trace, &Options::default());
                let analysis = analyze_assembled(&trace, &assembled);
                profile.add(&trace, &assembled, &analysis);
            }
            profile
        };
        let comparison = compare(profile(0, 0), profile(40, 100), 0.01);
        let mut svg = Vec::new();
        write_diff_flamegraph(&mut svg, &comparison).unwrap();
        let frames = frames_of(&String::from_utf8(svg).unwrap());
        for label in ["web:GET", "db:query", "a:b:c", "cache:get"] {
            assert_eq!(frames_labelled(&frames, label).len(), 1, "{label}");
        }
        // After: 240.5 ns a trace, of which a:b:c and below 150.5.
        let all = frames_of_all(&frames);
        let abc = frames_labelled(&frames, "a:b:c")[0];
        assert!(
            (abc.2 / all - 150.5 / 240.5).abs() < 1e-4,
            "{} of {all}",
            abc.2
        );
        assert!(
            abc.0.contains("2 contexts that read the same: "),
            "{}",
            abc.0
        );
    }

    /// The width of the `all` frame.
    fn frames_of_all(frames: &[(String, String, f64)]) -> f64 {
        frames_labelled(frames, "all")[0].2
    }

    fn width_of(frames: &[(String, String, f64)], prefix: &str) -> f64 {
        frames
            .iter()
            .find(|(title, _, _)| title.starts_with(prefix))
            .unwrap()
            .2
    }

    #[test]
    fn differential_flame_graph_is_red_where_slower_and_blue_where_faster() {
        // After: db:query 30 longer in every trace (and web 30 shorter); cache unchanged.
        let profile = |db_end: u64, first: u128| {
            let mut profile = Profile::new(ContextOptions::default());
            for k in 0..30u64 {
                // A little noise so that the sets are not all ties.
                let trace = context_trace(first + u128::from(k), "query", db_end + k % 3);
                let assembled = assemble(&trace, &Options::default());
                let analysis = analyze_assembled(&trace, &assembled);
                profile.add(&trace, &assembled, &analysis);
            }
            profile
        };
        let comparison = compare(profile(50, 0), profile(80, 100), 0.01);
        let mut svg = Vec::new();
        write_diff_flamegraph(&mut svg, &comparison).unwrap();
        let frames = frames_of(&String::from_utf8(svg).unwrap());
        let fill = |prefix: &str| {
            frames
                .iter()
                .find(|(title, _, _)| title.starts_with(prefix))
                .unwrap()
                .1
                .clone()
        };
        assert_eq!(
            fill("db:query"),
            "#ff2828",
            "the largest change is the deepest red"
        );
        assert!(fill("web:GET").starts_with("#2828ff") || fill("web:GET").ends_with("ff"));
        assert!(fill("web:GET").ends_with("ff") && !fill("web:GET").starts_with("#ff"));
        assert_eq!(fill("cache:get"), "#dddddd", "unchanged: grey");

        let mut text = Vec::new();
        write_comparison_text(&mut text, &comparison, 20).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("slower  db: query  +30ns a trace"), "{text}");
        assert!(text.contains("faster  web: GET  -30ns a trace"), "{text}");
        assert!(
            text.contains("noise   cache: get  +0ns a trace (p = 1.000)"),
            "{text}"
        );

        let mut json = Vec::new();
        write_comparison_json(&mut json, &comparison).unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(doc["test"], "mann-whitney-u");
        assert_eq!(doc["operations"][0]["test"]["change"], "slower");
        assert_eq!(doc["operations"][0]["operation"], "query");
        let contexts = doc["contexts"].as_array().unwrap();
        assert_eq!(contexts.len(), 3);
        assert_eq!(contexts[2]["folded"], "web:GET;db:query;cache:get");
        assert_eq!(contexts[2]["parent"], 1);
    }
}
