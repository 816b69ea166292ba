//! Readers for trace files: OTLP JSON and protobuf, Jaeger JSON, Zipkin v2 JSON.
//!
//! Input is read as a stream and handed over one trace at a time, so memory follows the
//! largest trace rather than the file: a Jaeger `{"data": [...]}` or Zipkin `[[...], [...]]` file
//! releases each trace as soon as its closing bracket is read. Formats that do not group by
//! trace (OTLP, a flat Zipkin array) are grouped per document, except OTLP JSON Lines (one export
//! request per line, as the Collector's file exporter writes), where one trace's spans are spread
//! over the lines of several batches: there traces are held across lines, up to
//! [`HELD_SPANS`] spans in all (or the largest trace, if larger). Past that, the trace that
//! received spans least recently is handed over first; should more of its spans follow, they
//! are handed over as another part of the trace, and [`ReadStats::split_traces`] counts it.
//!
//! JSON timestamps are read as integers, never through `f64`: a number beyond 2^53 is exact.
//!
//! The input is read 64 KiB at a time into one buffer (`input`) that the parsers scan in
//! place: a pull parser of its own for JSON (`lexer`), a hand-written decoder for protobuf.
//! Long lists of spans are parsed on two threads (`batch`). Spans are built as they are read,
//! and what spans share (the trace, service and host of a process; the name and peer of an
//! operation) is built once and shared.

mod batch;
mod input;
mod jaeger;
mod json;
mod lexer;
mod otlp_json;
mod proto;
mod zipkin;

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use crate::Error;
use crate::model::{Label, Origin, Span, SpanKind, Trace, TraceId};
use input::Input;
use lexer::Failure;

#[doc(hidden)]
pub use proto::encode_traces_data;

/// A supported input format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// OTLP JSON: `{"resourceSpans": [...]}`, one document or one per line.
    OtlpJson,
    /// OTLP protobuf: `TracesData` or `ExportTraceServiceRequest` (the same wire shape).
    OtlpProto,
    /// Jaeger JSON: the query API's `{"data": [...]}`, UI exports, or a bare
    /// `{"traceID", "spans", "processes"}` trace.
    JaegerJson,
    /// Zipkin v2 JSON: an array of spans, or an array of traces (arrays of spans).
    ZipkinJson,
}

impl Format {
    /// The names accepted by [`FromStr`], for messages.
    pub const NAMES: &'static str = "otlp-json, otlp-proto, jaeger-json, zipkin-json";

    /// The name accepted by [`FromStr`].
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OtlpJson => "otlp-json",
            Self::OtlpProto => "otlp-proto",
            Self::JaegerJson => "jaeger-json",
            Self::ZipkinJson => "zipkin-json",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "otlp-json" | "otlp" => Ok(Self::OtlpJson),
            "otlp-proto" | "otlp-protobuf" => Ok(Self::OtlpProto),
            "jaeger-json" | "jaeger" => Ok(Self::JaegerJson),
            "zipkin-json" | "zipkin" => Ok(Self::ZipkinJson),
            other => Err(format!(
                "unknown format {other:?}; supported formats: {}",
                Self::NAMES
            )),
        }
    }
}

/// Counts from one input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadStats {
    /// Traces handed over.
    pub traces: usize,
    /// Spans handed over.
    pub spans: usize,
    /// Spans left out because they carry no time at all (Zipkin fragments never completed).
    pub skipped_spans: usize,
    /// The format found (the last one, if documents differ).
    pub format: Option<Format>,
    /// OTLP JSON Lines: traces that received more spans after they were handed over (because
    /// more than [`HELD_SPANS`] spans were held), and so were handed over in parts.
    pub split_traces: usize,
}

/// OTLP JSON Lines: how many spans are held across lines before the least recently extended
/// trace is handed over (about 100 MB of spans in memory).
pub const HELD_SPANS: usize = 1_000_000;

/// Reads every trace in `input`, calling `sink` once per trace.
///
/// `file` names the input in errors. With `format` set, input of another format is an error;
/// without it the format is detected from the content.
///
/// ```
/// use lightstep_analysis::read::read_traces;
///
/// let json = br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name",
///   "value":{"stringValue":"web"}}]},"scopeSpans":[{"spans":[{"traceId":"01","spanId":"02",
///   "name":"GET /","startTimeUnixNano":"1544712660000000000",
///   "endTimeUnixNano":1544712661000000001}]}]}]}"#;
/// let mut traces = Vec::new();
/// read_traces(&json[..], "example.json".as_ref(), None, |t| {
///     traces.push(t);
///     Ok(())
/// })?;
/// assert_eq!(traces[0].spans[0].end_ns(), 1_544_712_661_000_000_001);
/// # Ok::<(), lightstep_analysis::Error>(())
/// ```
pub fn read_traces<R: Read>(
    input: R,
    file: &Path,
    format: Option<Format>,
    mut sink: impl FnMut(Trace) -> io::Result<()>,
) -> Result<ReadStats, Error> {
    let mut input = Input::new(input);
    let peeked = sniff(&mut input).map_err(|source| Error::Io {
        file: file.into(),
        source,
    })?;
    let mut stats = ReadStats::default();
    let Some((raw_first, first)) = peeked else {
        return Err(Error::UnknownFormat {
            file: file.into(),
            found: "empty input".into(),
        });
    };
    let is_json = first == b'{' || first == b'[';
    let outcome = match format {
        Some(Format::OtlpProto) => proto::read(input, &mut sink, &mut stats),
        Some(expected) if !is_json => {
            return Err(Error::WrongFormat {
                file: file.into(),
                expected,
                found: "not json",
            });
        }
        _ if is_json => json::read(input, format, &mut sink, &mut stats),
        _ if proto::looks_like(raw_first) => proto::read(input, &mut sink, &mut stats),
        _ => {
            let found = if first.is_ascii_graphic() {
                format!("starts with {:?}", first as char)
            } else {
                format!("starts with byte 0x{first:02x}")
            };
            return Err(Error::UnknownFormat {
                file: file.into(),
                found,
            });
        }
    };
    outcome.map_err(|fail| match *fail.0 {
        Failure::Json {
            line,
            column,
            message,
        } => Error::Json {
            file: file.into(),
            line,
            column,
            message,
        },
        Failure::Protobuf { offset, message } => Error::Protobuf {
            file: file.into(),
            offset,
            message,
        },
        Failure::Io(source) => Error::Io {
            file: file.into(),
            source,
        },
        Failure::Sink(source) => Error::Sink {
            file: file.into(),
            source,
        },
        Failure::WrongFormat(found) => Error::WrongFormat {
            file: file.into(),
            // Only raised when a format was asked for.
            expected: format.unwrap_or(Format::OtlpJson),
            found,
        },
    })?;
    Ok(stats)
}

/// Reads a file, or standard input when `path` is `-`.
pub fn read_path(
    path: &Path,
    format: Option<Format>,
    sink: impl FnMut(Trace) -> io::Result<()>,
) -> Result<ReadStats, Error> {
    if path.as_os_str() == "-" {
        read_traces(io::stdin().lock(), Path::new("<stdin>"), format, sink)
    } else {
        let file = std::fs::File::open(path).map_err(|source| Error::Io {
            file: path.into(),
            source,
        })?;
        read_traces(file, path, format, sink)
    }
}

/// Peeks at the input: its first byte, and its first byte that is not JSON whitespace. Only a
/// UTF-8 byte-order mark is consumed, and whitespace only when a whole buffer of it precedes
/// anything else (protobuf never starts that way: its first byte is followed by a length).
fn sniff<R: Read>(input: &mut Input<R>) -> io::Result<Option<(u8, u8)>> {
    let mut raw_first = None;
    loop {
        while input.available().len() < 3 && input.more()?.is_some() {}
        let buf = input.available();
        if buf.is_empty() {
            return Ok(None);
        }
        if raw_first.is_none() && buf.starts_with(&[0xef, 0xbb, 0xbf]) {
            input.pos += 3;
            continue;
        }
        let first = *raw_first.get_or_insert(buf[0]);
        if let Some(&byte) = buf.iter().find(|b| !b.is_ascii_whitespace()) {
            return Ok(Some((first, byte)));
        }
        input.pos = input.end;
    }
}

/// Shares repeated names between spans, and the labels (name and peer) spans point to; bounded
/// so that a file of unique names does not grow a second copy of them.
#[derive(Default)]
pub(crate) struct Interner {
    names: HashMap<Box<str>, Arc<str>, foldhash::fast::RandomState>,
    /// Labels without a peer, by name.
    labels: HashMap<Box<str>, Arc<Label>, foldhash::fast::RandomState>,
    /// Labels with a peer, by the name's length, `:`, the name and the peer.
    peer_labels: HashMap<Box<str>, Arc<Label>, foldhash::fast::RandomState>,
    key: String,
}

impl Interner {
    const LIMIT: usize = 4096;

    pub(crate) fn get(&mut self, name: &str) -> Arc<str> {
        if let Some(shared) = self.names.get(name) {
            return shared.clone();
        }
        let shared: Arc<str> = Arc::from(name);
        if self.names.len() < Self::LIMIT {
            self.names.insert(name.into(), shared.clone());
        }
        shared
    }

    /// The shared label of an operation name and a peer.
    pub(crate) fn label(&mut self, name: &str, peer: Option<&str>) -> Arc<Label> {
        let Some(peer) = peer else {
            if let Some(label) = self.labels.get(name) {
                return label.clone();
            }
            let label = Label::new(self.get(name), None);
            if self.labels.len() < Self::LIMIT {
                self.labels.insert(name.into(), label.clone());
            }
            return label;
        };
        self.key.clear();
        self.key.push_str(itoa::Buffer::new().format(name.len()));
        self.key.push(':');
        self.key.push_str(name);
        self.key.push_str(peer);
        if let Some(label) = self.peer_labels.get(self.key.as_str()) {
            return label.clone();
        }
        let label = Label::new(self.get(name), Some(self.get(peer)));
        if self.peer_labels.len() < Self::LIMIT {
            self.peer_labels
                .insert(self.key.as_str().into(), label.clone());
        }
        label
    }
}

/// The origins of one resource, process or endpoint, by trace: spans of the same trace share
/// one. Kept per resource (not per file), so that it holds no more than what is being read.
#[derive(Clone, Default)]
pub(crate) struct Origins {
    service: Option<Arc<str>>,
    host: Option<Arc<str>>,
    last: Option<Arc<Origin>>,
    by_trace: HashMap<TraceId, Arc<Origin>, foldhash::fast::RandomState>,
}

impl Origins {
    pub(crate) fn new(service: Arc<str>, host: Option<Arc<str>>) -> Self {
        Self {
            service: Some(service),
            host,
            ..Self::default()
        }
    }

    /// The origin of a span of `trace_id`.
    pub(crate) fn of(&mut self, trace_id: &TraceId) -> Arc<Origin> {
        if let Some(last) = &self.last
            && last.trace_id == *trace_id
        {
            return last.clone();
        }
        let origin = match self.by_trace.get(trace_id) {
            Some(origin) => origin.clone(),
            None => {
                let service = self
                    .service
                    .clone()
                    .unwrap_or_else(|| Label::empty().name.clone());
                let origin = Origin::new(trace_id.clone(), service, self.host.clone());
                self.by_trace.insert(trace_id.clone(), origin.clone());
                origin
            }
        };
        self.last = Some(origin.clone());
        origin
    }
}

impl Origins {
    /// Makes a span read on another thread (from a copy of these origins) point at the origin
    /// of its trace here, or makes its origin the one here.
    pub(crate) fn adopt(&mut self, span: &mut Span) {
        if let Some(last) = &self.last
            && Arc::ptr_eq(last, span.origin())
        {
            return;
        }
        match self.by_trace.get(span.trace_id()) {
            Some(origin) => {
                if !Arc::ptr_eq(origin, span.origin()) {
                    span.set_origin(origin.clone());
                }
            }
            None => {
                self.by_trace
                    .insert(span.trace_id().clone(), span.origin().clone());
            }
        }
        self.last = Some(span.origin().clone());
    }
}

/// Groups spans by trace id, keeping traces in order of first appearance.
#[derive(Default)]
pub(crate) struct Grouper {
    traces: Vec<Trace>,
    index: HashMap<TraceId, usize, foldhash::fast::RandomState>,
    /// The origin of the last span and its trace: spans arrive in runs of the same origin.
    last: Option<(Arc<Origin>, usize)>,
}

impl Grouper {
    pub(crate) fn push(&mut self, span: Span) {
        let slot = match &self.last {
            Some((origin, slot)) if Arc::ptr_eq(origin, span.origin()) => *slot,
            _ => {
                let id = span.trace_id();
                let slot = match self.index.get(id) {
                    Some(&slot) => slot,
                    None => {
                        self.index.insert(id.clone(), self.traces.len());
                        self.traces.push(Trace::new(id.clone(), Vec::new()));
                        self.traces.len() - 1
                    }
                };
                self.last = Some((span.origin().clone(), slot));
                slot
            }
        };
        if let Some(trace) = self.traces.get_mut(slot) {
            trace.spans.push(span);
        }
    }

    /// Points the spans of a `ResourceSpans` whose resource came after them at origins with
    /// that resource (`origins`, as it ends): those whose origin is one of `replaced` (made
    /// under an earlier resource of the message) or one of `origins`' own. They are the last
    /// spans of their traces.
    pub(crate) fn repoint(&mut self, mut replaced: Vec<Arc<Origin>>, origins: &Origins) {
        replaced.extend(origins.by_trace.values().cloned());
        let mut last = Origins::new(
            origins
                .service
                .clone()
                .unwrap_or_else(|| Label::empty().name.clone()),
            origins.host.clone(),
        );
        let stale: std::collections::HashSet<*const Origin> =
            replaced.iter().map(Arc::as_ptr).collect();
        let traces: std::collections::HashSet<&TraceId> =
            replaced.iter().map(|o| &o.trace_id).collect();
        for trace_id in traces {
            let Some(trace) = self
                .index
                .get(trace_id)
                .and_then(|&s| self.traces.get_mut(s))
            else {
                continue;
            };
            for span in trace.spans.iter_mut().rev() {
                if !stale.contains(&Arc::as_ptr(span.origin())) {
                    break;
                }
                span.set_origin(last.of(trace_id));
            }
        }
        // The last span's origin may be one of those replaced.
        self.last = None;
    }

    pub(crate) fn into_traces(self) -> Vec<Trace> {
        self.traces
    }
}

/// The text values of a few attributes (tags) of one span, kept between spans so that reading
/// them allocates nothing once the buffers have grown.
pub(crate) struct Values<const N: usize> {
    text: [String; N],
    set: [bool; N],
}

impl<const N: usize> Default for Values<N> {
    fn default() -> Self {
        Self {
            text: std::array::from_fn(|_| String::new()),
            set: [false; N],
        }
    }
}

impl<const N: usize> Values<N> {
    pub(crate) fn clear(&mut self) {
        self.set = [false; N];
    }

    pub(crate) fn is_set(&self, i: usize) -> bool {
        self.set.get(i).copied().unwrap_or(false)
    }

    /// The slot of value `i`, marked set, for the caller to fill.
    pub(crate) fn slot(&mut self, i: usize) -> Option<&mut String> {
        let text = self.text.get_mut(i)?;
        text.clear();
        self.set[i] = true;
        Some(text)
    }

    pub(crate) fn unset(&mut self, i: usize) {
        if let Some(set) = self.set.get_mut(i) {
            *set = false;
        }
    }

    pub(crate) fn get(&self, i: usize) -> Option<&str> {
        self.is_set(i).then(|| self.text[i].as_str())
    }
}

/// The attributes (tags) that name a span's remote peer, and how they combine: the first of
/// `peer.service`, `server.address` (with `server.port`) and the older `net.peer.name` (with
/// `net.peer.port`) that the span has. Every reader looks its attributes up through here.
pub(crate) const PEER_KEYS: [&str; 5] = [
    "peer.service",
    "server.address",
    "server.port",
    "net.peer.name",
    "net.peer.port",
];

/// The peer from the values of [`PEER_KEYS`], in that order, as the span had them, written to
/// `out`; only client and producer spans have one (on a server span, `server.address` is the
/// server itself).
pub(crate) fn peer_from<'o>(
    kind: SpanKind,
    values: &Values<5>,
    out: &'o mut String,
) -> Option<&'o str> {
    if !matches!(kind, SpanKind::Client | SpanKind::Producer) {
        return None;
    }
    let non_empty = |i: usize| values.get(i).filter(|s| !s.is_empty());
    out.clear();
    if let Some(service) = non_empty(0) {
        out.push_str(service);
    } else {
        let (host, port) = match non_empty(1) {
            Some(address) => (address, values.get(2)),
            None => (non_empty(3)?, values.get(4)),
        };
        out.push_str(host);
        if let Some(port) = port.filter(|p| !p.is_empty()) {
            out.push(':');
            out.push_str(port);
        }
    }
    Some(out)
}

/// Converts microseconds to nanoseconds without overflow.
pub(crate) fn micros_to_nanos(us: u64) -> u64 {
    us.saturating_mul(1000)
}

/// End time from a start and a signed duration in microseconds (Jaeger allows negative ones).
pub(crate) fn end_from_micros(start_ns: u64, duration_us: i64) -> u64 {
    let delta = duration_us.unsigned_abs().saturating_mul(1000);
    if duration_us >= 0 {
        start_ns.saturating_add(delta)
    } else {
        start_ns.saturating_sub(delta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(input: &[u8], format: Option<Format>) -> Result<Vec<Trace>, Error> {
        let mut traces = Vec::new();
        read_traces(input, Path::new("test.json"), format, |t| {
            traces.push(t);
            Ok(())
        })?;
        Ok(traces)
    }

    #[test]
    fn empty_and_unknown_inputs_name_the_supported_formats() {
        let err = read_all(b"   ", None).unwrap_err().to_string();
        assert!(
            err.contains("otlp-json, otlp-proto, jaeger-json, zipkin-json"),
            "{err}"
        );
        let err = read_all(b"hello", None).unwrap_err().to_string();
        assert!(err.contains("starts with 'h'"), "{err}");
    }

    #[test]
    fn format_names_round_trip() {
        for format in [
            Format::OtlpJson,
            Format::OtlpProto,
            Format::JaegerJson,
            Format::ZipkinJson,
        ] {
            assert_eq!(format.as_str().parse::<Format>(), Ok(format));
        }
        assert!("csv".parse::<Format>().is_err());
    }

    #[test]
    fn durations_never_overflow() {
        assert_eq!(end_from_micros(u64::MAX - 5, i64::MAX), u64::MAX);
        assert_eq!(end_from_micros(5, i64::MIN), 0);
        assert_eq!(micros_to_nanos(u64::MAX), u64::MAX);
    }
}
