//! The JSON formats, read with [`Lexer`] straight into spans, each trace handed over as soon as
//! it is complete.
//!
//! One document at a time: an object is OTLP (`resourceSpans`) or Jaeger (`data`, or
//! `traceID`/`spans`/`processes`) whatever the order of its keys; an array is Zipkin. Keys that
//! no format uses (CRISP's `testing`, Jaeger's `total`) are skipped, their syntax checked. Where
//! a format puts what a span shares after the span (an OTLP resource after its spans, Jaeger's
//! processes after the spans), the spans are built first and pointed at it when it comes.
//!
//! This module holds the document and what the formats share (ids, numbers, batches); each
//! format's own fields are read in its module: `otlp_json`, `jaeger`, `zipkin`.

use std::cell::RefCell;
use std::io::{self, Read};
use std::sync::Arc;

use lightstep_wire::schema::request;

use super::batch::{BATCH_BYTES, Batch, serve, two_threads};
use super::input::Input;
use super::jaeger::JaegerTrace;
use super::lexer::{Failure, Lexer, Res, Text};
use super::otlp_json::Held;
use super::{Format, Grouper, Interner, ReadStats, Values};
use crate::model::{Origin, Trace};

/// The reader of one input: what is read as a whole (documents, their traces, what is held
/// across them), around the [`Parser`] that reads spans.
pub(super) struct Reader<'a, R> {
    pub(super) p: Parser<R>,
    sink: &'a mut dyn FnMut(Trace) -> io::Result<()>,
    pub(super) stats: &'a mut ReadStats,
    expected: Option<Format>,
    /// OTLP traces held across documents (JSON Lines).
    held: Held,
}

/// Reads spans and what they share, with what it keeps between spans. A reader of batches
/// (see `batch`) has one of its own on each thread.
pub(super) struct Parser<R> {
    pub(super) lx: Lexer<R>,
    pub(super) names: Interner,
    /// The peer attributes of the span being read.
    pub(super) peer_values: Values<5>,
    /// Text kept while the lexer moves on: a span's name, its peer.
    pub(super) name: String,
    pub(super) peer: String,
    pub(super) value: String,
    /// The origin of the last Zipkin span, which the next one usually shares.
    pub(super) last_origin: Option<Arc<Origin>>,
}

impl<R: Read> Parser<R> {
    pub(super) fn new(lx: Lexer<R>) -> Self {
        Self {
            lx,
            names: Interner::default(),
            peer_values: Values::default(),
            name: String::new(),
            peer: String::new(),
            value: String::new(),
            last_origin: None,
        }
    }
}

pub(super) fn read<R: Read>(
    input: Input<R>,
    expected: Option<Format>,
    sink: &mut dyn FnMut(Trace) -> io::Result<()>,
    stats: &mut ReadStats,
) -> Res<()> {
    let mut reader = Reader {
        p: Parser::new(Lexer::new(input)),
        sink,
        stats,
        expected,
        held: Held::new(super::HELD_SPANS),
    };
    // Several documents may follow each other (JSON Lines).
    let mut outcome = loop {
        if let Err(err) = reader.document() {
            break Err(err);
        }
        match reader.p.lx.peek() {
            Ok(None) => break Ok(()),
            Ok(Some(_)) => {}
            Err(err) => break Err(err),
        }
    };
    // What is still held is handed over even when a later line is broken: nothing read is lost.
    if !matches!(&outcome, Err(fail) if matches!(*fail.0, Failure::Sink(_))) {
        for trace in reader.held.drain() {
            if let Err(err) = reader.emit(trace) {
                outcome = Err(err);
                break;
            }
        }
    }
    outcome
}

pub(super) const DOCUMENT: &str = "a JSON object (OTLP or Jaeger) or array (Zipkin) of trace data";

#[derive(Clone, Copy)]
pub(super) enum DocumentKey {
    ResourceSpans,
    Data,
    TraceId,
    Spans,
    Processes,
    Other,
}

impl<R: Read> Reader<'_, R> {
    pub(super) fn claim(&mut self, found: Format) -> Res<()> {
        if let Some(expected) = self.expected
            && expected != found
        {
            return Err(Failure::WrongFormat(found.as_str()).into());
        }
        self.stats.format = Some(found);
        Ok(())
    }

    pub(super) fn emit(&mut self, trace: Trace) -> Res<()> {
        self.stats.traces += 1;
        self.stats.spans += trace.spans.len();
        (self.sink)(trace).map_err(|e| Failure::Sink(e).into())
    }

    fn document(&mut self) -> Res<()> {
        match self.p.lx.peek_value(DOCUMENT)? {
            b'{' => self.object_document(),
            b'[' => self.zipkin_document(),
            _ => Err(self.p.lx.invalid_type(DOCUMENT)),
        }
    }

    fn object_document(&mut self) -> Res<()> {
        self.p.lx.begin_object(DOCUMENT)?;
        let mut otlp: Option<Grouper> = None;
        let mut jaeger_data = false;
        let mut legacy: Option<JaegerTrace> = None;
        let mut first = true;
        while let Some(key) = self.p.lx.next_key(&mut first, |key| match key {
            request::json::RESOURCE_SPANS => DocumentKey::ResourceSpans,
            b"data" => DocumentKey::Data,
            b"traceID" => DocumentKey::TraceId,
            b"spans" => DocumentKey::Spans,
            b"processes" => DocumentKey::Processes,
            _ => DocumentKey::Other,
        })? {
            match key {
                DocumentKey::ResourceSpans => {
                    self.claim(Format::OtlpJson)?;
                    let grouper = otlp.get_or_insert_with(Grouper::default);
                    self.p.resource_spans_list(grouper)?;
                }
                DocumentKey::Data => {
                    self.claim(Format::JaegerJson)?;
                    jaeger_data = true;
                    self.jaeger_data()?;
                }
                DocumentKey::TraceId | DocumentKey::Spans | DocumentKey::Processes => {
                    self.claim(Format::JaegerJson)?;
                    let trace = legacy.get_or_insert_with(JaegerTrace::default);
                    self.p.jaeger_trace_field(trace, key)?;
                }
                DocumentKey::Other => self.p.lx.skip_value()?,
            }
        }
        if let Some(grouper) = otlp {
            let mut split = 0;
            let released = self.held.absorb(grouper.into_traces(), &mut split);
            self.stats.split_traces += split;
            for trace in released {
                self.emit(trace)?;
            }
        } else if let Some(trace) = legacy {
            let trace = trace.finish(&mut self.p.names);
            self.emit(trace)?;
        } else if !jaeger_data {
            return Err(self.p.lx.error(
                "no trace data: expected \"resourceSpans\" (OTLP), \"data\" or \"traceID\"/\"spans\" (Jaeger), or an array of spans (Zipkin)",
            ));
        }
        Ok(())
    }
}

impl<R: Read> Parser<R> {
    /// The rest of a long list of objects, from an element's start, in batches on two threads
    /// (see `batch`): `parse` reads a batch with the batch parser of the thread and its copy of
    /// `state`, `deliver` takes the results in input order. Whether there was any batch.
    pub(super) fn in_batches<S: Clone + Send, T: Send>(
        &mut self,
        state: S,
        parse: fn(&mut Parser<io::Empty>, &mut S, Batch) -> Res<T>,
        mut deliver: impl FnMut(T) -> Res<()>,
    ) -> Res<bool> {
        /// Parses a batch, and gives its text's memory back for the next one.
        fn parse_and_return<S, T>(
            parser: &mut Parser<io::Empty>,
            state: &mut S,
            batch: Batch,
            parse: fn(&mut Parser<io::Empty>, &mut S, Batch) -> Res<T>,
        ) -> Res<(T, Vec<u8>)> {
            let parsed = parse(parser, state, batch)?;
            Ok((parsed, parser.lx.take_buffer()))
        }
        let mut here = (Parser::batches(), state.clone());
        let mut any = false;
        let mut leading_comma = false;
        let lx = &mut self.lx;
        // The text of a batch comes back once it is parsed and is filled again: the memory of
        // a few batches is used over and over instead of new memory for each.
        let returned = RefCell::new(Vec::<Vec<u8>>::new());
        two_threads(
            || {
                let bytes = returned.borrow_mut().pop().unwrap_or_default();
                let batch = lx.scan_batch(leading_comma, bytes)?;
                leading_comma = true;
                Ok(batch)
            },
            Some(|batch| parse_and_return(&mut here.0, &mut here.1, batch, parse)),
            move |jobs, done| {
                let (mut parser, mut state) = (Parser::batches(), state);
                serve(jobs, done, |batch| {
                    parse_and_return(&mut parser, &mut state, batch, parse)
                });
            },
            |(result, bytes)| {
                // A batch grown far past the usual size by one huge element is not kept.
                if bytes.capacity() <= 2 * BATCH_BYTES {
                    returned.borrow_mut().push(bytes);
                }
                any = true;
                deliver(result)
            },
        )?;
        Ok(any)
    }

    /// A string id that must be there and not be empty.
    pub(super) fn required_id<T>(&mut self, parse: impl FnOnce(&[u8]) -> Option<T>) -> Res<T> {
        let Some(text) = self.lx.string_or_null("a string")? else {
            return Err(self.lx.error("invalid type: null, expected a string"));
        };
        if self.lx.bytes(text).is_empty() {
            return Err(self
                .lx
                .error("invalid value: string \"\", expected a non-empty id"));
        }
        self.id(text, parse)
    }

    /// An id from its text: hex when it is hex, otherwise the text, which must be UTF-8.
    pub(super) fn id<T>(&self, text: Text, parse: impl FnOnce(&[u8]) -> Option<T>) -> Res<T> {
        parse(self.lx.bytes(text)).ok_or_else(|| self.lx.error("a string is not valid UTF-8"))
    }

    pub(super) fn unsigned(&mut self) -> Res<u64> {
        let v = self.lx.integer(false)?;
        u64::try_from(v).map_err(|_| self.lx.error("integer out of range"))
    }

    pub(super) fn signed(&mut self) -> Res<i64> {
        let v = self.lx.integer(true)?;
        i64::try_from(v).map_err(|_| self.lx.error("integer out of range"))
    }
}

impl Parser<io::Empty> {
    /// A parser of batches (see `batch`), given a lexer for each.
    fn batches() -> Self {
        Self::new(Lexer::new(Input::new(io::empty())))
    }

    /// Reads the elements of a batch with `element`.
    pub(super) fn each(
        &mut self,
        mut batch: Batch,
        mut element: impl FnMut(&mut Self) -> Res<()>,
    ) -> Res<()> {
        self.lx = Lexer::for_batch(&mut batch);
        for k in 0..batch.elements {
            if k > 0 || batch.leading_comma {
                self.lx.comma()?;
            }
            element(self)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::read_traces;
    use super::*;
    use crate::Error;
    use crate::model::{ParentRelation, SpanId, SpanKind, Status};

    fn read_all(input: &str, format: Option<Format>) -> Result<Vec<Trace>, Error> {
        let mut traces = Vec::new();
        read_traces(input.as_bytes(), Path::new("in.json"), format, |t| {
            traces.push(t);
            Ok(())
        })?;
        Ok(traces)
    }

    #[test]
    fn otlp_numbers_beyond_2_pow_53_are_exact() {
        let doc = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"AB","spanId":"CD",
            "startTimeUnixNano":1544712660000000001,"endTimeUnixNano":"1544712661000000003"}]}],
            "resource":{"attributes":[{"key":"service.name","value":{"stringValue":"late"}}]}}]}"#;
        let traces = read_all(doc, None).unwrap();
        let span = &traces[0].spans[0];
        assert_eq!(span.start_ns(), 1_544_712_660_000_000_001);
        assert_eq!(span.end_ns(), 1_544_712_661_000_000_003);
        assert_eq!(
            span.service(),
            "late",
            "a resource after its spans still names them"
        );
        assert_eq!(span.span_id(), &SpanId::parse("cd"));
    }

    #[test]
    fn fractional_timestamps_are_refused_with_a_location() {
        let doc =
            "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[\n{\"startTimeUnixNano\":1.5}]}]}]}";
        let err = read_all(doc, None).unwrap_err();
        match err {
            Error::Json {
                line,
                column,
                message,
                ..
            } => {
                assert_eq!(line, 2);
                assert!(column > 1);
                assert!(message.contains("non-negative integer"), "{message}");
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn spans_without_their_ids_are_refused_with_the_field_and_a_location() {
        let cases = [
            (
                "otlp",
                "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[\n{\"traceId\":\"ab\"}]}]}]}",
                "missing field `spanId`",
            ),
            (
                "otlp",
                "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[\n{\"traceId\":\"\",\"spanId\":\"01\"}]}]}]}",
                "expected a non-empty id",
            ),
            (
                "zipkin",
                "[\n{\"traceId\":\"ab\",\"name\":\"x\"}]",
                "missing field `id`",
            ),
            ("zipkin", "[\n{\"id\":\"01\"}]", "missing field `traceId`"),
            (
                "jaeger",
                "{\"data\":[{\"traceID\":\"ab\",\"spans\":[\n{\"spanID\":\"\"}]}]}",
                "expected a non-empty id",
            ),
        ];
        for (format, doc, expected) in cases {
            match read_all(doc, None).unwrap_err() {
                Error::Json { line, message, .. } => {
                    assert_eq!(line, 2, "{format}: {message}");
                    assert!(message.contains(expected), "{format}: {message}");
                }
                other => panic!("{format}: unexpected {other}"),
            }
        }
    }

    #[test]
    fn errors_quoting_line_breaks_stay_on_one_line() {
        let doc =
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"1\n2"}]}]}]}"#;
        let err = read_all(doc, None).unwrap_err().to_string();
        assert!(!err.contains('\n'), "{err}");
        assert!(err.contains(r"1\n2"), "{err}");
    }

    #[test]
    fn legacy_instrumentation_library_spans_and_string_enums_are_read() {
        let doc = r#"{"resourceSpans":[{"instrumentationLibrarySpans":[{"instrumentationLibrary":{"name":"x"},
            "spans":[{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"B7AD6B7169203331",
            "kind":"SPAN_KIND_CONSUMER","status":{"code":"STATUS_CODE_ERROR"},
            "startTimeUnixNano":"1","endTimeUnixNano":"2","links":[{"traceId":"01","spanId":"02"}]}]}]}]}"#;
        let traces = read_all(doc, Some(Format::OtlpJson)).unwrap();
        let span = &traces[0].spans[0];
        assert_eq!(span.kind(), SpanKind::Consumer);
        assert_eq!(span.status(), Status::Error);
        assert_eq!(span.span_id().to_string(), "b7ad6b7169203331");
        assert_eq!(span.links()[0].span_id, SpanId::from_u64(2));
    }

    #[test]
    fn a_trace_spread_over_json_lines_is_one_trace() {
        // The Collector's file exporter writes one batch per line: a trace's spans land on
        // several lines, interleaved with other traces.
        let span = |trace: &str, id: &str, parent: &str| {
            format!(
                r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"{trace}","spanId":"{id}","parentSpanId":"{parent}","startTimeUnixNano":"1","endTimeUnixNano":"2"}}]}}]}}]}}"#
            )
        };
        let input = [
            span("01", "03", "02"),
            span("05", "06", ""),
            span("01", "02", ""),
        ]
        .join("\n");
        let traces = read_all(&input, None).unwrap();
        let shape: Vec<(String, usize)> = traces
            .iter()
            .map(|t| (t.trace_id.to_string(), t.spans.len()))
            .collect();
        assert_eq!(
            shape,
            [
                ("0000000000000001".to_string(), 2),
                ("0000000000000005".to_string(), 1)
            ]
        );
    }

    #[test]
    fn a_named_format_must_match() {
        let err = read_all("[]", Some(Format::OtlpJson)).unwrap_err();
        assert!(
            matches!(
                err,
                Error::WrongFormat {
                    found: "zipkin-json",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn objects_without_trace_data_are_refused() {
        let err = read_all(r#"{"hello": 1}"#, None).unwrap_err().to_string();
        assert!(err.contains("resourceSpans"), "{err}");
        assert!(err.starts_with("in.json:1:"), "{err}");
    }

    #[test]
    fn sink_errors_stop_reading() {
        let doc = r#"{"data":[{"traceID":"1","spans":[]},{"traceID":"2","spans":[]}]}"#;
        let mut seen = 0;
        let err = read_traces(doc.as_bytes(), Path::new("x"), None, |_| {
            seen += 1;
            Err(io::Error::other("full"))
        })
        .unwrap_err();
        assert!(matches!(err, Error::Sink { .. }));
        assert_eq!(seen, 1);
    }

    #[test]
    fn jaeger_references_define_parent_and_relation() {
        let doc = r#"{"traceID":"t","processes":{"p1":{"serviceName":"svc","tags":[{"key":"hostname","value":"h1"}]}},
          "spans":[{"spanID":"a","startTime":10,"duration":-5,"processID":"p1"},
                   {"spanID":"b","startTime":10,"duration":5,"processID":"p1",
                    "references":[{"refType":"FOLLOWS_FROM","spanID":"a"},{"refType":"CHILD_OF","spanID":"z"}],
                    "tags":[{"key":"span.kind","value":"producer"},{"key":"error","value":true}]}]}"#;
        let traces = read_all(doc, Some(Format::JaegerJson)).unwrap();
        let spans = &traces[0].spans;
        assert_eq!(spans[0].start_ns(), 10_000);
        assert_eq!(spans[0].end_ns(), 5_000);
        assert_eq!(spans[0].service(), "svc");
        assert_eq!(spans[0].host(), Some("h1"));
        assert_eq!(spans[1].relation(), ParentRelation::FollowsFrom);
        assert_eq!(spans[1].links().len(), 1);
        assert_eq!(spans[1].kind(), SpanKind::Producer);
        assert_eq!(spans[1].status(), Status::Error);
    }
}
