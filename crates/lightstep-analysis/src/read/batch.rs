//! Long lists of spans read on two threads.
//!
//! A file holding one huge trace is one long list of spans (an OTLP `spans` array, a Jaeger
//! trace's `spans`, a Zipkin array, the spans of an OTLP `ScopeSpans` message). After the first
//! [`SEQUENTIAL`] elements of such a list, the reading thread only finds where each batch of
//! elements ends (brackets, strings and lengths: a small part of parsing) and copies it out; a
//! helper thread parses every other batch while the reading thread parses the one after (JSON),
//! or every batch while the reading thread finds the next ones (protobuf, whose lengths make
//! finding the end nearly free), and the spans of the batches are taken in input order. The
//! spans come out as one thread would have read them, the first error in the input is the one
//! reported, at its line and column (a batch carries where it starts), and the memory held is a
//! few batches of text.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use super::lexer::{Failure, Res};

/// Elements of a list read one by one before the rest is read in batches on two threads: for
/// fewer, a thread costs more than it saves. (Tests and fuzzing use small lists.)
pub(super) const SEQUENTIAL: usize = if cfg!(any(test, fuzzing)) { 3 } else { 8192 };

/// Elements per batch, and the bytes after which a batch ends early.
pub(super) const BATCH: usize = if cfg!(any(test, fuzzing)) { 2 } else { 4096 };
pub(super) const BATCH_BYTES: usize = 1 << 20;

/// Where in the input a batch starts: for the line and column (or offset) of its errors.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Position {
    pub(super) offset: u64,
    pub(super) line: u64,
    pub(super) line_start: u64,
    /// Objects and arrays open around the batch, which count towards the nesting limit.
    pub(super) depth: usize,
}

/// The text of some elements of a list, as it was in the input.
#[derive(Debug, Default)]
pub(super) struct Batch {
    pub(super) bytes: Vec<u8>,
    pub(super) at: Position,
    /// How many elements it holds.
    pub(super) elements: usize,
    /// Whether a comma precedes its first element (every batch after the first).
    pub(super) leading_comma: bool,
}

/// Batches sent to the helper and not yet taken back, at most.
const IN_FLIGHT: usize = 2;

/// Reads a list in batches: `scan` gives the next batch (`None` at the end), `helper` is the
/// body of the helper thread (it receives batches and sends back what it made of each), and
/// `deliver` takes the results in input order. With `parse_here`, every other batch is parsed
/// on this thread (where finding a batch's end costs about as much as parsing it: JSON);
/// without, the helper parses every batch while this thread finds the next ones and delivers
/// (where finding the end is nearly free: protobuf's lengths). The reading thread keeps up to
/// [`IN_FLIGHT`] batches queued for the helper, so that the helper does not wait for work while
/// this thread delivers.
pub(super) fn two_threads<B: Send, T: Send>(
    mut scan: impl FnMut() -> Res<Option<B>>,
    mut parse_here: Option<impl FnMut(B) -> Res<T>>,
    helper: impl FnOnce(Receiver<B>, SyncSender<Res<T>>) + Send,
    mut deliver: impl FnMut(T) -> Res<()>,
) -> Res<()> {
    /// A batch in input order: with the helper, or parsed here.
    enum Pending<T> {
        Helper,
        Here(Res<T>),
    }
    std::thread::scope(|scope| {
        let (to_helper, jobs) = sync_channel::<B>(IN_FLIGHT);
        let (done, results) = sync_channel::<Res<T>>(IN_FLIGHT);
        scope.spawn(move || helper(jobs, done));
        let mut pending = std::collections::VecDeque::new();
        let mut with_helper = 0;
        let mut scanned = 0usize;
        // `Some` once the input ended (or failed to scan: the failure comes after every batch
        // before it).
        let mut end: Option<Res<()>> = None;
        loop {
            while end.is_none() && with_helper < IN_FLIGHT {
                match scan() {
                    Ok(Some(batch)) => {
                        scanned += 1;
                        if let Some(parse_here) = parse_here.as_mut()
                            && scanned.is_multiple_of(2)
                        {
                            pending.push_back(Pending::Here(parse_here(batch)));
                            // Parsed here: whatever is wrong in it stops the scan.
                            if matches!(pending.back(), Some(Pending::Here(Err(_)))) {
                                end = Some(Ok(()));
                            }
                        } else {
                            // The helper only stops early when it panicked, which the scope
                            // then reports.
                            to_helper.send(batch).map_err(|_| helper_gone())?;
                            pending.push_back(Pending::Helper);
                            with_helper += 1;
                        }
                    }
                    Ok(None) => end = Some(Ok(())),
                    Err(err) => end = Some(Err(err)),
                }
            }
            match pending.pop_front() {
                Some(Pending::Helper) => {
                    with_helper -= 1;
                    let theirs = results.recv().map_err(|_| helper_gone())?;
                    deliver(theirs?)?;
                }
                Some(Pending::Here(mine)) => deliver(mine?)?,
                None => return end.unwrap_or(Ok(())),
            }
        }
    })
}

fn helper_gone() -> super::lexer::Fail {
    Failure::Io(std::io::Error::other(
        "the helper thread reading spans stopped",
    ))
    .into()
}

/// The body of a helper thread: parses each batch it receives with `parse`, until there are no
/// more or no one waits for the results.
pub(super) fn serve<B, T>(
    jobs: Receiver<B>,
    done: SyncSender<Res<T>>,
    mut parse: impl FnMut(B) -> Res<T>,
) {
    for batch in jobs {
        if done.send(parse(batch)).is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    //! Under test, lists longer than three elements are read in batches of two: these lists
    //! are long enough to go through several batches on both threads.

    use std::path::Path;

    use super::super::{Format, read_traces};
    use crate::Error;
    use crate::model::{SpanId, Trace};

    const SPANS: usize = 21;
    const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

    fn read(input: &str, format: Format) -> Result<Vec<Trace>, Error> {
        let mut traces = Vec::new();
        read_traces(input.as_bytes(), Path::new("in.json"), Some(format), |t| {
            traces.push(t);
            Ok(())
        })?;
        Ok(traces)
    }

    fn id(i: usize) -> String {
        format!("{:016x}", i + 1)
    }

    /// Span `i` of the list: its service alternates (in OTLP, by halves, as resources hold
    /// them), every third calls a peer.
    fn service(i: usize, format: Format) -> &'static str {
        let second = match format {
            Format::OtlpJson => i >= SPANS / 2,
            _ => i % 2 == 1,
        };
        if second { "b" } else { "a" }
    }

    fn client(i: usize) -> bool {
        i % 3 == 2
    }

    /// Each span as the reader must give it, whatever thread read it.
    fn check(traces: &[Trace], format: Format) {
        assert_eq!(traces.len(), 1, "{format:?}");
        let mut spans = traces[0].spans.clone();
        assert_eq!(spans.len(), SPANS, "{format:?}");
        // Zipkin's fragments are merged by id: their order is not the input's.
        if format == Format::ZipkinJson {
            spans.sort_by_key(|span| span.start_ns());
        }
        for (i, span) in spans.iter().enumerate() {
            let at = format!("{format:?} span {i}");
            assert_eq!(span.span_id(), &SpanId::parse(&id(i)), "{at}");
            let parent = (i > 0).then(|| SpanId::parse(&id(i - 1)));
            assert_eq!(span.parent_id(), parent.as_ref(), "{at}");
            assert_eq!(span.name(), format!("op{i}"), "{at}");
            assert_eq!(span.service(), service(i, format), "{at}");
            assert_eq!(span.peer(), client(i).then_some("db"), "{at}");
            assert_eq!(span.start_ns(), 1000 * (i as u64 + 1), "{at}");
            assert_eq!(span.end_ns(), 1000 * (i as u64 + 3), "{at}");
            assert_eq!(span.trace_id(), spans[0].trace_id(), "{at}");
        }
    }

    fn otlp_span(i: usize) -> String {
        let parent = if i > 0 {
            format!(r#""parentSpanId":"{}","#, id(i - 1))
        } else {
            String::new()
        };
        let (kind, attributes) = if client(i) {
            (
                3,
                r#"[{"key":"peer.service","value":{"stringValue":"db"}}]"#,
            )
        } else {
            (1, "[]")
        };
        format!(
            r#"{{"traceId":"{TRACE}","spanId":"{}",{parent}"name":"op{i}","kind":{kind},"startTimeUnixNano":"{}","endTimeUnixNano":{},"attributes":{attributes}}}"#,
            id(i),
            1000 * (i + 1),
            1000 * (i + 3),
        )
    }

    /// Two resources with a long list each, one span a line; the first names its service
    /// after its spans. `replace` changes one span's text.
    fn otlp(replace: Option<(usize, &str)>) -> String {
        let span = |i: usize| match replace {
            Some((k, text)) if k == i => text.to_owned(),
            _ => otlp_span(i),
        };
        let list = |range: std::ops::Range<usize>| range.map(span).collect::<Vec<_>>().join(",\n");
        let resource = |name: &str| {
            format!(
                r#"{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{name}"}}}}]}}"#
            )
        };
        format!(
            "{{\"resourceSpans\":[{{\"scopeSpans\":[{{\"spans\":[\n{}]}}],\"resource\":{}}},\n{{\"resource\":{},\"scopeSpans\":[{{\"spans\":[\n{}]}}]}}]}}",
            list(0..SPANS / 2),
            resource("a"),
            resource("b"),
            list(SPANS / 2..SPANS),
        )
    }

    #[test]
    fn long_otlp_lists_come_out_as_one_thread_reads_them() {
        check(
            &read(&otlp(None), Format::OtlpJson).unwrap(),
            Format::OtlpJson,
        );
    }

    #[test]
    fn traces_first_seen_in_a_batch_take_a_resource_named_after_them() {
        // Each span of its own trace: the origins of most are made on either thread, and must
        // still be the ones the resource, read last, names.
        let spans: Vec<String> = (0..SPANS)
            .map(|i| otlp_span(i).replace(TRACE, &format!("{:032x}", i + 1)))
            .collect();
        let doc = format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{}]}}],"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"late"}}}},{{"key":"host.name","value":{{"stringValue":"h"}}}}]}}}}]}}"#,
            spans.join(",\n")
        );
        let traces = read(&doc, Format::OtlpJson).unwrap();
        assert_eq!(traces.len(), SPANS);
        for (i, trace) in traces.iter().enumerate() {
            let span = &trace.spans[0];
            assert_eq!(span.span_id(), &SpanId::parse(&id(i)), "trace {i}");
            assert_eq!(
                (span.service(), span.host()),
                ("late", Some("h")),
                "trace {i}"
            );
        }
    }

    #[test]
    fn long_jaeger_lists_come_out_as_one_thread_reads_them() {
        let spans: Vec<String> = (0..SPANS)
            .map(|i| {
                let references = if i > 0 {
                    format!(r#"[{{"refType":"CHILD_OF","traceID":"{TRACE}","spanID":"{}"}}]"#, id(i - 1))
                } else {
                    "[]".into()
                };
                let tags = if client(i) {
                    r#"[{"key":"span.kind","type":"string","value":"client"},{"key":"peer.service","type":"string","value":"db"}]"#
                } else {
                    "[]"
                };
                // Every fifth span carries its process instead of naming one.
                let process = if i % 5 == 4 {
                    format!(r#""process":{{"serviceName":"{}"}}"#, service(i, Format::JaegerJson))
                } else {
                    format!(r#""processID":"p{}""#, i % 2)
                };
                format!(
                    r#"{{"traceID":"{TRACE}","spanID":"{}","operationName":"op{i}","references":{references},"startTime":{},"duration":2,{process},"tags":{tags}}}"#,
                    id(i),
                    i + 1,
                )
            })
            .collect();
        // The processes come after the spans that name them.
        let doc = format!(
            r#"{{"data":[{{"spans":[{}],"processes":{{"p0":{{"serviceName":"a"}},"p1":{{"serviceName":"b"}}}},"traceID":"{TRACE}"}}]}}"#,
            spans.join(",\n")
        );
        check(&read(&doc, Format::JaegerJson).unwrap(), Format::JaegerJson);
    }

    #[test]
    fn long_zipkin_lists_come_out_as_one_thread_reads_them() {
        let spans: Vec<String> = (0..SPANS)
            .map(|i| {
                let parent = if i > 0 {
                    format!(r#""parentId":"{}","#, id(i - 1))
                } else {
                    String::new()
                };
                let remote = if client(i) {
                    r#","kind":"CLIENT","remoteEndpoint":{"serviceName":"db"}"#
                } else {
                    ""
                };
                format!(
                    r#"{{"traceId":"{TRACE}","id":"{}",{parent}"name":"op{i}","timestamp":{},"duration":2,"localEndpoint":{{"serviceName":"{}"}}{remote}}}"#,
                    id(i),
                    i + 1,
                    service(i, Format::ZipkinJson),
                )
            })
            .collect();
        let loose = format!("[{}]", spans.join(",\n"));
        check(
            &read(&loose, Format::ZipkinJson).unwrap(),
            Format::ZipkinJson,
        );
        let nested = format!("[[{}]]", spans.join(",\n"));
        check(
            &read(&nested, Format::ZipkinJson).unwrap(),
            Format::ZipkinJson,
        );
    }

    #[test]
    fn errors_in_later_batches_name_their_line_and_column() {
        // One span a line, each list opening on a line of its own: span `k` of the first
        // resource is on line `k + 2`, of the second on line `k + 3`.
        for (k, line) in [(0, 2), (3, 5), (9, 11), (14, 17), (SPANS - 1, 23)] {
            let bad = otlp_span(k).replace(
                "\"startTimeUnixNano\":\"",
                "\"startTimeUnixNano\":1.5,\"x\":\"",
            );
            // As for a span read on its own: the column just past the number.
            let column = bad.find("1.5").unwrap() + "1.5".len() + 1;
            match read(&otlp(Some((k, &bad))), Format::OtlpJson).unwrap_err() {
                Error::Json {
                    line: l,
                    column: c,
                    message,
                    ..
                } => {
                    assert_eq!((l, c), (line, column), "span {k}: {message}");
                    assert!(message.contains("non-negative integer"), "{message}");
                }
                other => panic!("span {k}: unexpected {other}"),
            }
        }
    }

    #[test]
    fn the_first_error_in_the_input_is_the_one_reported() {
        // From the third element on, batches of two go to the helper and this thread in turn:
        // spans 2 and 3 to the helper, 4 and 5 here, 6 and 7 to the helper. Two errors in
        // batches of different threads, or one in a batch and one that stops the scan: the
        // first in the input is reported, whichever thread sees its error first.
        let broken_span = "{\"spanId\":true}";
        for (first, second, text) in [(3, 4, broken_span), (5, 6, broken_span), (3, 4, "7")] {
            let doc = otlp(Some((first, broken_span)));
            let doc = doc.replacen(&otlp_span(second), text, 1);
            match read(&doc, Format::OtlpJson).unwrap_err() {
                Error::Json { line, message, .. } => {
                    assert_eq!(line, first + 2, "{first} then {second}: {message}");
                }
                other => panic!("unexpected {other}"),
            }
        }
        // A broken span, then in the same batch the input failing to read inside the next
        // one: the broken span is reported, as one thread reading would.
        for broken in [3, 4, 5, 6] {
            let doc = otlp(Some((broken, broken_span)));
            let next = doc.find(&otlp_span(broken + 1)).unwrap();
            let readable = next + otlp_span(broken + 1).len() / 2;
            let input = FailsAfter(std::io::Cursor::new(doc.into_bytes()), readable as u64);
            let err = read_traces(input, Path::new("in.json"), Some(Format::OtlpJson), |_| {
                Ok(())
            })
            .unwrap_err();
            match err {
                Error::Json { line, message, .. } => {
                    assert_eq!(line, broken + 2, "{broken}: {message}");
                }
                other => panic!("{broken}: unexpected {other}"),
            }
        }
    }

    /// Reads its input up to a point, then fails.
    struct FailsAfter(std::io::Cursor<Vec<u8>>, u64);

    impl std::io::Read for FailsAfter {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let left = self.1.saturating_sub(self.0.position());
            if left == 0 {
                return Err(std::io::Error::other("the disk went away"));
            }
            let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            self.0.read(&mut buf[..n])
        }
    }
}
