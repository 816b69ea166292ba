//! Files that list their traces one by one are read as a stream: each trace is handed over
//! once its own text has been read, not at the end of the file, so memory follows the largest
//! trace (`docs/critical-path.md`, reading input).

use std::cell::Cell;
use std::io::Read;
use std::path::Path;
use std::rc::Rc;

use lightstep_analysis::read::{Format, read_traces};

/// Counts the bytes the reader has taken from the input.
struct Counting<'a> {
    input: &'a [u8],
    taken: Rc<Cell<usize>>,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.input.read(buf)?;
        self.taken.set(self.taken.get() + n);
        Ok(n)
    }
}

/// The reader's own buffer: what it may have taken beyond the trace it hands over.
const READ_AHEAD: usize = 64 * 1024;

/// Reads `document` and checks that every trace was handed over before the reader had taken
/// more than a buffer's worth past that trace's end (`ends[k]`, byte offsets).
fn assert_streams(document: &[u8], ends: &[usize], format: Format) {
    assert!(
        document.len() > 20 * READ_AHEAD,
        "the document must be much larger than the read-ahead"
    );
    let taken = Rc::new(Cell::new(0));
    let input = Counting {
        input: document,
        taken: Rc::clone(&taken),
    };
    let mut handed_over = Vec::new();
    let stats = read_traces(input, Path::new("many.json"), Some(format), |trace| {
        handed_over.push((trace.spans.len(), taken.get()));
        Ok(())
    })
    .expect("reads");
    assert_eq!(stats.traces, ends.len());
    assert_eq!(handed_over.len(), ends.len());
    for (k, (&(spans, at), &end)) in handed_over.iter().zip(ends).enumerate() {
        assert_eq!(spans, SPANS, "trace {k}");
        assert!(
            at <= end + READ_AHEAD,
            "trace {k} (ending at byte {end}) was handed over after {at} bytes of {}",
            document.len()
        );
    }
}

const TRACES: usize = 300;
const SPANS: usize = 40;

#[test]
fn jaeger_files_hand_over_each_trace_as_it_is_read() {
    let mut doc = String::from("{\"data\": [");
    let mut ends = Vec::new();
    for t in 0..TRACES {
        if t > 0 {
            doc.push(',');
        }
        let trace_id = format!("{:032x}", t + 1);
        doc.push_str(&format!("{{\"traceID\": \"{trace_id}\", \"spans\": ["));
        for s in 0..SPANS {
            if s > 0 {
                doc.push(',');
            }
            let references = if s == 0 {
                String::new()
            } else {
                format!(
                    "{{\"refType\": \"CHILD_OF\", \"traceID\": \"{trace_id}\", \"spanID\": \"{:016x}\"}}",
                    t * SPANS + 1
                )
            };
            doc.push_str(&format!(
                "{{\"traceID\": \"{trace_id}\", \"spanID\": \"{:016x}\", \"operationName\": \"op{s}\", \
                 \"references\": [{references}], \"startTime\": {}, \"duration\": {}, \
                 \"processID\": \"p1\"}}",
                t * SPANS + s + 1,
                1_700_000_000_000_000u64 + s as u64,
                if s == 0 { 1_000 } else { 10 },
            ));
        }
        doc.push_str("], \"processes\": {\"p1\": {\"serviceName\": \"svc\"}}}");
        ends.push(doc.len());
    }
    doc.push_str("]}");
    assert_streams(doc.as_bytes(), &ends, Format::JaegerJson);
}

/// Zipkin JSON of `TRACES` traces: a list of traces, or with `flat` one list of all their spans
/// (as a span store dump); with the byte offset where each trace's spans end.
fn zipkin(flat: bool) -> (String, Vec<usize>) {
    let mut doc = String::from("[");
    let mut ends = Vec::new();
    for t in 0..TRACES {
        if t > 0 {
            doc.push(',');
        }
        if !flat {
            doc.push('[');
        }
        for s in 0..SPANS {
            if s > 0 {
                doc.push(',');
            }
            let parent = if s == 0 {
                String::new()
            } else {
                format!("\"parentId\": \"{:016x}\", ", t * SPANS + 1)
            };
            doc.push_str(&format!(
                "{{\"traceId\": \"{:032x}\", \"id\": \"{:016x}\", {parent}\"name\": \"op{s}\", \
                 \"timestamp\": {}, \"duration\": {}, \"localEndpoint\": {{\"serviceName\": \"svc\"}}}}",
                t + 1,
                t * SPANS + s + 1,
                1_700_000_000_000_000u64 + s as u64,
                if s == 0 { 1_000 } else { 10 },
            ));
        }
        if !flat {
            doc.push(']');
        }
        ends.push(doc.len());
    }
    doc.push(']');
    (doc, ends)
}

#[test]
fn zipkin_lists_of_traces_hand_over_each_trace_as_it_is_read() {
    let (doc, ends) = zipkin(false);
    assert_streams(doc.as_bytes(), &ends, Format::ZipkinJson);
}

/// One list mixing the spans of many traces can only be grouped once it has been read: the
/// documented exception, and a check that the measure above tells the two apart.
#[test]
fn a_flat_zipkin_array_is_grouped_at_its_end() {
    let (doc, _) = zipkin(true);
    let taken = Rc::new(Cell::new(0));
    let input = Counting {
        input: doc.as_bytes(),
        taken: Rc::clone(&taken),
    };
    let mut first = None;
    let stats = read_traces(
        input,
        Path::new("flat.json"),
        Some(Format::ZipkinJson),
        |_| {
            first.get_or_insert(taken.get());
            Ok(())
        },
    )
    .expect("reads");
    assert_eq!(stats.traces, TRACES);
    assert_eq!(first, Some(doc.len()));
}

/// A span that names one field twice is refused at the second one, in each JSON format: a
/// duplicate would silently replace the first value.
#[test]
fn a_field_given_twice_is_an_error_at_its_place() {
    let id = r#""traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708""#;
    let cases = [
        (
            Format::OtlpJson,
            format!(
                "{{\"resourceSpans\":[{{\"scopeSpans\":[{{\"spans\":[\n{{{id},\"name\":\"a\",\"name\":\"b\"}}]}}]}}]}}"
            ),
        ),
        (
            Format::JaegerJson,
            "{\"data\":[{\"traceID\":\"1\",\"spans\":[\n{\"traceID\":\"1\",\"spanID\":\"2\",\"spanID\":\"3\"}]}]}".to_owned(),
        ),
        (
            Format::ZipkinJson,
            "[\n{\"traceId\":\"1\",\"id\":\"2\",\"name\":\"a\",\"name\":\"b\"}]".to_owned(),
        ),
    ];
    for (format, input) in cases {
        let error = read_traces(
            input.as_bytes(),
            Path::new("twice.json"),
            Some(format),
            |_| Ok(()),
        )
        .expect_err("a duplicate field");
        let text = error.to_string();
        assert!(text.contains("duplicate field"), "{format:?}: {text}");
        assert!(text.contains("twice.json:2:"), "{format:?}: {text}");
    }
}
