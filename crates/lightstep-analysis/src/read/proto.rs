//! OTLP protobuf, decoded by hand as it is read.
//!
//! `TracesData` and `ExportTraceServiceRequest` both hold `repeated ResourceSpans
//! resource_spans = 1`, so they are the same on the wire. The decoder walks into each
//! `ResourceSpans` and `ScopeSpans` as the bytes arrive, and decodes each span from the input
//! buffer into the span model directly: no message is held in raw form but the one span being
//! decoded, and nothing is allocated per span but the span. Only the fields the analysis uses
//! are decoded; the others are skipped, their wire format checked. An error names the byte
//! offset of the top-level `ResourceSpans` that failed and, inside it, what failed.

use std::cell::RefCell;
use std::io::{self, Read};
use std::sync::Arc;

use lightstep_wire::WireType::{
    LengthDelimited as LEN, SixtyFourBit as FIXED64, ThirtyTwoBit as FIXED32, Varint as VARINT,
};
use lightstep_wire::schema::{
    INSTRUMENTATION_LIBRARY_SPANS, any_value, key_value, link, request, resource, resource_spans,
    scope_spans, span, status,
};
use lightstep_wire::{RECURSION_LIMIT, Reader, WireError, WireType, split_key};

use super::batch::{BATCH, BATCH_BYTES, SEQUENTIAL, serve, two_threads};
use super::input::Input;
use super::lexer::{Fail, Failure, Res};
use super::{Grouper, Interner, Origins, PEER_KEYS, ReadStats, Values, peer_from};
use crate::model::{Link, Origin, Span, SpanId, SpanKind, Status, Trace, TraceId};

/// Whether a first byte can start an OTLP protobuf message: field 1, length-delimited.
pub(super) fn looks_like(first: u8) -> bool {
    first == 0x0a
}

/// Largest `ResourceSpans` accepted, so that a corrupt length cannot ask for all memory.
const MAX_MESSAGE: u64 = 1 << 31;

/// The input, as a stream of protobuf fields.
struct Stream<R> {
    input: Input<R>,
}

impl<R: Read> Stream<R> {
    fn offset(&self) -> u64 {
        self.input.offset(self.input.pos)
    }

    /// At least `n` bytes buffered; `false` if the input ends before.
    fn ensure(&mut self, n: usize) -> io::Result<bool> {
        while self.input.end - self.input.pos < n {
            if self.input.more()?.is_none() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// A varint; `Ok(None)` at a clean end of input before its first byte.
    fn varint(&mut self) -> Result<Option<u64>, String> {
        let io = |e: io::Error| e.to_string();
        if !self.ensure(1).map_err(io)? {
            return Ok(None);
        }
        // Ten bytes at most; fewer where the input ends first.
        let _ = self.ensure(10).map_err(io)?;
        let available = self.input.available();
        let mut reader = Reader::new(available);
        let value = reader.varint().map_err(|e| e.to_string())?;
        self.input.pos += available.len() - reader.rest().len();
        Ok(Some(value))
    }

    /// Skips `n` bytes, reading past them without keeping them.
    fn skip(&mut self, mut n: u64) -> Result<(), String> {
        loop {
            let here = (self.input.end - self.input.pos) as u64;
            if here >= n {
                self.input.pos += n as usize;
                return Ok(());
            }
            n -= here;
            self.input.pos = self.input.end;
            if self.input.more().map_err(|e| e.to_string())?.is_none() {
                return Err(format!(
                    "the input ends {n} bytes before the end of a field"
                ));
            }
        }
    }

    /// Skips a field of wire type `wire` whose key was read; `limit` is what is left of the
    /// enclosing message.
    /// Groups, which no OTLP message has, are refused here: skipping one needs its content.
    fn skip_field(&mut self, field: u32, wire: WireType, limit: &mut u64) -> Result<(), String> {
        let n = match wire {
            VARINT => {
                let before = self.offset();
                self.varint()?.ok_or("the input ends inside a varint")?;
                return take(limit, self.offset() - before);
            }
            FIXED64 => 8,
            FIXED32 => 4,
            LEN => {
                let before = self.offset();
                let len = self.varint()?.ok_or("the input ends before a length")?;
                take(limit, self.offset() - before)?;
                len
            }
            WireType::StartGroup | WireType::EndGroup => return Err(bad_wire(field, wire)),
        };
        take(limit, n)?;
        self.skip(n)
    }

    /// A key within a message of which `limit` bytes are left: `None` at its end.
    fn key(&mut self, limit: &mut u64) -> Result<Option<(u32, WireType)>, String> {
        if *limit == 0 {
            return Ok(None);
        }
        let before = self.offset();
        let key = self.varint()?.ok_or("the input ends inside a message")?;
        take(limit, self.offset() - before)?;
        split_key(key).map(Some).map_err(|e| e.to_string())
    }

    /// The length of a length-delimited field within `limit`, which it is taken from.
    fn length(&mut self, limit: &mut u64) -> Result<u64, String> {
        let before = self.offset();
        let len = self.varint()?.ok_or("the input ends before a length")?;
        take(limit, self.offset() - before)?;
        take(limit, len)?;
        Ok(len)
    }

    /// The next `n` bytes, whole in the buffer (a span, a resource: small messages).
    fn message(&mut self, n: u64) -> Result<&[u8], String> {
        let n = usize::try_from(n).map_err(|_| "a message is too large".to_string())?;
        if !self.ensure(n).map_err(|e| e.to_string())? {
            let have = self.input.end - self.input.pos;
            return Err(format!(
                "expected {n} bytes of message, the input ends after {have}"
            ));
        }
        let start = self.input.pos;
        self.input.pos += n;
        Ok(&self.input.buf[start..start + n])
    }
}

/// Takes `n` bytes from what is left of a message.
fn take(limit: &mut u64, n: u64) -> Result<(), String> {
    *limit = limit
        .checked_sub(n)
        .ok_or("a field runs past the end of its message")?;
    Ok(())
}

fn bad_wire(field: u32, wire: WireType) -> String {
    format!(
        "wire type {} of field {field} is not valid here",
        wire as u8
    )
}

/// Errors inside a message held whole are static: a span's failure is put in context once,
/// where it is caught.
type Bad = &'static str;

/// A string field's text, or `not_utf8`.
fn text<'a>(message: &mut Reader<'a>, not_utf8: Bad) -> Result<&'a str, Bad> {
    std::str::from_utf8(message.len_delimited()?).map_err(|_| not_utf8)
}

/// Skips a field the decoder does not use (groups included, as prost does).
fn skip(message: &mut Reader<'_>, field: u32, wire: WireType) -> Result<(), WireError> {
    message.skip(wire, field, RECURSION_LIMIT)
}

pub(super) fn read<R: Read>(
    input: Input<R>,
    sink: &mut dyn FnMut(Trace) -> io::Result<()>,
    stats: &mut ReadStats,
) -> Res<()> {
    let mut stream = Stream { input };
    let mut decoder = Decoder {
        grouper: Grouper::default(),
        spans: Spans::default(),
    };
    loop {
        let field_start = stream.offset();
        let Some(key) = stream.varint().map_err(|m| fail(field_start, m))? else {
            break;
        };
        // Field 0 is not valid, but at the top level it was always skipped like any other.
        let (field, wire) = (key >> 3, key & 7);
        match WireType::try_from(wire) {
            Ok(LEN) => {
                let len = stream
                    .varint()
                    .map_err(|m| fail(field_start, m))?
                    .ok_or_else(|| fail(field_start, "the input ends before a length".into()))?;
                if len > MAX_MESSAGE {
                    return Err(fail(
                        field_start,
                        format!("field length {len} is larger than 2 GiB"),
                    ));
                }
                if field != u64::from(request::RESOURCE_SPANS) {
                    stream.skip(len).map_err(|m| fail(field_start, m))?;
                    continue;
                }
                decoder.resource_spans(&mut stream, len, field_start)?;
            }
            Ok(VARINT) => {
                stream.varint().map_err(|m| fail(field_start, m))?;
            }
            Ok(FIXED64) => stream.skip(8).map_err(|m| fail(field_start, m))?,
            Ok(FIXED32) => stream.skip(4).map_err(|m| fail(field_start, m))?,
            _ => {
                return Err(fail(
                    field_start,
                    format!(
                        "wire type {wire} of field {field} is not valid here; expected an OTLP TracesData or ExportTraceServiceRequest"
                    ),
                ));
            }
        }
    }
    stats.format = Some(super::Format::OtlpProto);
    for trace in decoder.grouper.into_traces() {
        stats.traces += 1;
        stats.spans += trace.spans.len();
        sink(trace).map_err(|e| Fail::from(Failure::Sink(e)))?;
    }
    Ok(())
}

fn fail(offset: u64, message: String) -> Fail {
    Failure::Protobuf { offset, message }.into()
}

struct Decoder {
    grouper: Grouper,
    spans: Spans,
}

impl Decoder {
    /// One `ResourceSpans` of `len` bytes, the field at offset `at` (which its errors name).
    fn resource_spans<R: Read>(&mut self, stream: &mut Stream<R>, len: u64, at: u64) -> Res<()> {
        let mut limit = len;
        // The resource may come after the spans: spans read before it are pointed at it at
        // the end, as in OTLP JSON.
        let mut origins = Origins::default();
        let mut resource: Values<4> = Values::default();
        let mut resource_found = [false; 4];
        let mut resource_known = false;
        let mut replaced: Vec<Arc<Origin>> = Vec::new();
        let mut stale = false;
        let mut spans_read = false;
        let mut scope = 0;
        let here = |m: String| fail(at, m);
        while let Some((field, wire)) = stream.key(&mut limit).map_err(here)? {
            match (field, wire) {
                (resource_spans::RESOURCE, LEN) => {
                    let n = stream.length(&mut limit).map_err(here)?;
                    let bytes = stream.message(n).map_err(here)?;
                    resource_attributes(bytes, &mut resource, &mut resource_found)
                        .map_err(|m| here(format!("in its resource: {m}")))?;
                    let names = &mut self.spans.names;
                    let service = names.get(resource.get(0).unwrap_or(""));
                    let host = (1..4).find_map(|i| resource.get(i)).map(|h| h.to_owned());
                    let host = host.map(|h| names.get(&h));
                    if spans_read {
                        stale = true;
                        replaced.extend(origins.by_trace.values().cloned());
                    }
                    origins = Origins::new(service, host);
                    resource_known = true;
                }
                (resource_spans::SCOPE_SPANS | INSTRUMENTATION_LIBRARY_SPANS, LEN) => {
                    let n = stream.length(&mut limit).map_err(here)?;
                    if self.scope_spans(stream, n, scope, &mut origins, at)? {
                        spans_read = true;
                        stale |= !resource_known;
                    }
                    scope += 1;
                }
                (
                    resource_spans::RESOURCE
                    | resource_spans::SCOPE_SPANS
                    | INSTRUMENTATION_LIBRARY_SPANS,
                    other,
                ) => return Err(here(bad_wire(field, other))),
                _ => stream.skip_field(field, wire, &mut limit).map_err(here)?,
            }
        }
        if stale {
            self.grouper.repoint(replaced, &origins);
        }
        Ok(())
    }

    /// One `ScopeSpans` of `len` bytes, the `scope`th of its resource; whether it held a span.
    /// Past the first spans of a long one, the rest are decoded in batches on two threads.
    fn scope_spans<R: Read>(
        &mut self,
        stream: &mut Stream<R>,
        len: u64,
        scope: usize,
        origins: &mut Origins,
        at: u64,
    ) -> Res<bool> {
        let mut limit = len;
        let mut index = 0;
        let here = |m: String| fail(at, m);
        loop {
            if index == SEQUENTIAL && crate::parallel::second_core() {
                index += self.span_batches(stream, &mut limit, scope, index, origins, at)?;
            }
            let Some((field, wire)) = stream.key(&mut limit).map_err(here)? else {
                break;
            };
            match (field, wire) {
                (scope_spans::SPANS, LEN) => {
                    let n = stream.length(&mut limit).map_err(here)?;
                    let bytes = stream.message(n).map_err(here)?;
                    let span = self.spans.decode(bytes, origins, index, scope, at)?;
                    self.grouper.push(span);
                    index += 1;
                }
                (scope_spans::SPANS, other) => return Err(here(bad_wire(field, other))),
                _ => stream.skip_field(field, wire, &mut limit).map_err(here)?,
            }
        }
        Ok(index > 0)
    }

    /// The rest of a `ScopeSpans` from span `first` on, in batches on two threads (see
    /// `batch`); how many spans there were.
    fn span_batches<R: Read>(
        &mut self,
        stream: &mut Stream<R>,
        limit: &mut u64,
        scope: usize,
        first: usize,
        origins: &mut Origins,
        at: u64,
    ) -> Res<usize> {
        let shared = origins.clone();
        let mut next = first;
        let grouper = &mut self.grouper;
        // Batches come back once their spans are taken, and are filled again: the memory of a
        // few batches is used over and over instead of new memory for each.
        let returned = RefCell::new(Vec::<SpanBatch>::new());
        // What is wrong past the spans of a batch: reported once they are decoded, since a span
        // among them may be wrong too, and come first.
        let mut after_batch: Option<Fail> = None;
        two_threads(
            || {
                if let Some(err) = after_batch.take() {
                    return Err(err);
                }
                let mut batch = returned.borrow_mut().pop().unwrap_or_default();
                batch.bytes.clear();
                batch.lengths.clear();
                (batch.first, batch.scope, batch.at) = (next, scope, at);
                while batch.lengths.len() < BATCH && batch.bytes.len() < BATCH_BYTES {
                    let step = (|| {
                        let Some((field, wire)) = stream.key(limit)? else {
                            return Ok(false);
                        };
                        match (field, wire) {
                            (scope_spans::SPANS, LEN) => {
                                let n = stream.length(limit)?;
                                let bytes = stream.message(n)?;
                                batch.bytes.extend_from_slice(bytes);
                                batch.lengths.push(bytes.len());
                            }
                            (scope_spans::SPANS, other) => return Err(bad_wire(field, other)),
                            _ => stream.skip_field(field, wire, limit)?,
                        }
                        Ok(true)
                    })();
                    match step {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(m) if batch.lengths.is_empty() => return Err(fail(at, m)),
                        Err(m) => {
                            after_batch = Some(fail(at, m));
                            break;
                        }
                    }
                }
                next += batch.lengths.len();
                Ok((!batch.lengths.is_empty()).then_some(batch))
            },
            // Finding a batch's end is nearly free here: the helper decodes every batch.
            None::<fn(SpanBatch) -> Res<SpanBatch>>,
            move |jobs, done| {
                let (mut spans, mut origins) = (Spans::default(), shared);
                serve(jobs, done, |batch| spans.batch(batch, &mut origins));
            },
            |mut batch: SpanBatch| {
                for mut span in batch.spans.drain(..) {
                    origins.adopt(&mut span);
                    grouper.push(span);
                }
                // A batch grown far past the usual size by one huge span is not kept.
                if batch.bytes.capacity() <= 2 * BATCH_BYTES {
                    returned.borrow_mut().push(batch);
                }
                Ok(())
            },
        )?;
        Ok(next - first)
    }
}

/// What decoding spans keeps between them; a decoder of batches has one of its own.
#[derive(Default)]
struct Spans {
    names: Interner,
    peer_values: Values<5>,
    peer: String,
}

/// Some spans of a `ScopeSpans`, each message whole, and once decoded the spans.
#[derive(Default)]
struct SpanBatch {
    bytes: Vec<u8>,
    lengths: Vec<usize>,
    spans: Vec<Span>,
    /// The index of the first in its `ScopeSpans`, and that scope's in its resource.
    first: usize,
    scope: usize,
    /// The offset of the top-level field, which errors name.
    at: u64,
}

impl Spans {
    /// Span `index` of scope `scope`, from its message.
    fn decode(
        &mut self,
        bytes: &[u8],
        origins: &mut Origins,
        index: usize,
        scope: usize,
        at: u64,
    ) -> Res<Span> {
        decode_span(
            bytes,
            &mut self.names,
            &mut self.peer_values,
            &mut self.peer,
            origins,
        )
        .map_err(|m| {
            // "has no span_id" reads on; anything else follows a colon.
            let sep = if m.starts_with("has ") { " " } else { ": " };
            fail(
                at,
                format!("span {index} of scope {scope} in this ResourceSpans{sep}{m}"),
            )
        })
    }

    /// Decodes the spans of a batch into its `spans`.
    fn batch(&mut self, mut batch: SpanBatch, origins: &mut Origins) -> Res<SpanBatch> {
        batch.spans.clear();
        let mut from = 0;
        for (k, &len) in batch.lengths.iter().enumerate() {
            let bytes = batch.bytes.get(from..from + len).unwrap_or_default();
            from += len;
            let span = self.decode(bytes, origins, batch.first + k, batch.scope, batch.at)?;
            batch.spans.push(span);
        }
        Ok(batch)
    }
}

/// The values of a resource's `service.name`, `host.name`, `host.id` and
/// `service.instance.id`: of each, the first attribute's string value.
fn resource_attributes(
    bytes: &[u8],
    values: &mut Values<4>,
    found: &mut [bool; 4],
) -> Result<(), Bad> {
    const KEYS: [&str; 4] = [
        "service.name",
        "host.name",
        "host.id",
        "service.instance.id",
    ];
    let mut message = Reader::new(bytes);
    while let Some((field, wire)) = message.next_key()? {
        match (field, wire) {
            (resource::ATTRIBUTES, LEN) => {
                let (key, string, _) = key_value(message.len_delimited()?)?;
                if let Some(i) = KEYS.iter().position(|k| *k == key)
                    && !found[i]
                {
                    found[i] = true;
                    match (string, values.slot(i)) {
                        (Some(text), Some(out)) => out.push_str(text),
                        _ => values.unset(i),
                    }
                }
            }
            (resource::ATTRIBUTES, _) => return Err("Resource.attributes has the wrong wire type"),
            _ => skip(&mut message, field, wire)?,
        }
    }
    Ok(())
}

/// A `KeyValue`: its key, and its value's `string_value` and `int_value` if it has them.
fn key_value(bytes: &[u8]) -> Result<(&str, Option<&str>, Option<i64>), Bad> {
    let mut kv = Reader::new(bytes);
    let (mut key, mut string, mut int) = ("", None, None);
    while let Some((field, wire)) = kv.next_key()? {
        match (field, wire) {
            (key_value::KEY, LEN) => key = text(&mut kv, "KeyValue.key is not valid UTF-8")?,
            (key_value::VALUE, LEN) => {
                let mut any = Reader::new(kv.len_delimited()?);
                while let Some((field, wire)) = any.next_key()? {
                    match (field, wire) {
                        (any_value::STRING_VALUE, LEN) => {
                            let not_utf8 = "AnyValue.string_value is not valid UTF-8";
                            string = Some(text(&mut any, not_utf8)?);
                        }
                        (any_value::INT_VALUE, VARINT) => int = Some(any.varint()? as i64),
                        (any_value::STRING_VALUE | any_value::INT_VALUE, _) => {
                            return Err("an AnyValue field has the wrong wire type");
                        }
                        _ => skip(&mut any, field, wire)?,
                    }
                }
            }
            (key_value::KEY | key_value::VALUE, _) => {
                return Err("a KeyValue field has the wrong wire type");
            }
            _ => skip(&mut kv, field, wire)?,
        }
    }
    Ok((key, string, int))
}

/// One span, decoded from its message.
fn decode_span(
    bytes: &[u8],
    names: &mut Interner,
    peer_values: &mut Values<5>,
    peer: &mut String,
    origins: &mut Origins,
) -> Result<Span, Bad> {
    let mut message = Reader::new(bytes);
    let (mut trace_id, mut span_id, mut parent): (&[u8], &[u8], &[u8]) = (&[], &[], &[]);
    let mut name = "";
    let (mut kind, mut start, mut end, mut flags) = (0u64, 0, 0, 0);
    let mut status = Status::Unset;
    let mut links = Vec::new();
    // Of each peer attribute, the first.
    peer_values.clear();
    let mut found = [false; 5];
    while let Some((field, wire)) = message.next_key()? {
        match (field, wire) {
            (span::TRACE_ID, LEN) => trace_id = message.len_delimited()?,
            (span::SPAN_ID, LEN) => span_id = message.len_delimited()?,
            (span::PARENT_SPAN_ID, LEN) => parent = message.len_delimited()?,
            (span::NAME, LEN) => name = text(&mut message, "has a name that is not valid UTF-8")?,
            (span::KIND, VARINT) => kind = message.varint()?,
            (span::START_TIME_UNIX_NANO, FIXED64) => start = message.fixed64()?,
            (span::END_TIME_UNIX_NANO, FIXED64) => end = message.fixed64()?,
            (span::ATTRIBUTES, LEN) => {
                let (key, string, int) = key_value(message.len_delimited()?)?;
                if let Some(i) = PEER_KEYS.iter().position(|k| *k == key)
                    && !found[i]
                {
                    found[i] = true;
                    match (string, int, peer_values.slot(i)) {
                        (Some(text), _, Some(out)) => out.push_str(text),
                        (None, Some(number), Some(out)) => {
                            out.push_str(itoa::Buffer::new().format(number));
                        }
                        _ => peer_values.unset(i),
                    }
                }
            }
            (span::LINKS, LEN) => {
                let mut l = Reader::new(message.len_delimited()?);
                let (mut t, mut s): (&[u8], &[u8]) = (&[], &[]);
                while let Some((field, wire)) = l.next_key()? {
                    match (field, wire) {
                        (link::TRACE_ID, LEN) => t = l.len_delimited()?,
                        (link::SPAN_ID, LEN) => s = l.len_delimited()?,
                        (link::TRACE_ID | link::SPAN_ID, _) => {
                            return Err("has a link field of the wrong wire type");
                        }
                        _ => skip(&mut l, field, wire)?,
                    }
                }
                links.push(Link {
                    trace_id: TraceId::from_bytes(t),
                    span_id: SpanId::from_bytes(s),
                });
            }
            (span::STATUS, LEN) => {
                let mut s = Reader::new(message.len_delimited()?);
                while let Some((field, wire)) = s.next_key()? {
                    match (field, wire) {
                        (status::CODE, VARINT) => {
                            status = match s.varint()? as i32 {
                                1 => Status::Ok,
                                2 => Status::Error,
                                _ => Status::Unset,
                            };
                        }
                        (status::CODE, _) => {
                            return Err("has a status code of the wrong wire type");
                        }
                        _ => skip(&mut s, field, wire)?,
                    }
                }
            }
            (span::FLAGS, FIXED32) => flags = message.fixed32()?,
            (
                span::TRACE_ID
                | span::SPAN_ID
                | span::PARENT_SPAN_ID
                | span::NAME
                | span::KIND
                | span::START_TIME_UNIX_NANO
                | span::END_TIME_UNIX_NANO
                | span::ATTRIBUTES
                | span::LINKS
                | span::STATUS
                | span::FLAGS,
                _,
            ) => {
                return Err("has a field of the wrong wire type");
            }
            _ => skip(&mut message, field, wire)?,
        }
    }
    if trace_id.is_empty() {
        return Err("has no trace_id");
    }
    if span_id.is_empty() {
        return Err("has no span_id");
    }
    let kind = SpanKind::from_otlp(i64::from(kind as i32));
    let label = names.label(name, peer_from(kind, peer_values, peer));
    let trace_id = TraceId::from_bytes(trace_id);
    let mut span = Span::from_parts(
        origins.of(&trace_id),
        label,
        SpanId::from_bytes(span_id),
        start,
        end,
    );
    if !parent.is_empty() {
        span.set_parent(Some(SpanId::from_bytes(parent)));
    }
    span.set_kind(kind);
    span.set_status(status);
    for link in links {
        span.push_link(link);
    }
    // OTLP's span flags: bit 8 says whether bit 9 (the parent is remote) is known.
    span.set_remote_parent(flags & 0x300 == 0x300);
    Ok(span)
}

// ---- the encoder for tests and fuzz seeds ---------------------------------------------------

#[derive(Clone, PartialEq, prost::Message)]
struct ResourceSpans {
    #[prost(message, optional, tag = "1")]
    resource: Option<Resource>,
    #[prost(message, repeated, tag = "2")]
    scope_spans: Vec<ScopeSpans>,
    /// The deprecated `instrumentation_library_spans`, same shape as `scope_spans`.
    #[prost(message, repeated, tag = "1000")]
    instrumentation_library_spans: Vec<ScopeSpans>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Resource {
    #[prost(message, repeated, tag = "1")]
    attributes: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct KeyValue {
    #[prost(string, tag = "1")]
    key: String,
    #[prost(message, optional, tag = "2")]
    value: Option<AnyValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct AnyValue {
    #[prost(string, optional, tag = "1")]
    string_value: Option<String>,
    #[prost(int64, optional, tag = "3")]
    int_value: Option<i64>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ScopeSpans {
    #[prost(message, repeated, tag = "2")]
    spans: Vec<ProtoSpan>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ProtoSpan {
    #[prost(bytes = "vec", tag = "1")]
    trace_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    span_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    parent_span_id: Vec<u8>,
    #[prost(string, tag = "5")]
    name: String,
    #[prost(int32, tag = "6")]
    kind: i32,
    #[prost(fixed64, tag = "7")]
    start_time_unix_nano: u64,
    #[prost(fixed64, tag = "8")]
    end_time_unix_nano: u64,
    /// Read for the peer's name only (see `PEER_KEYS`).
    #[prost(message, repeated, tag = "9")]
    attributes: Vec<KeyValue>,
    #[prost(message, repeated, tag = "13")]
    links: Vec<ProtoLink>,
    #[prost(message, optional, tag = "15")]
    status: Option<ProtoStatus>,
    #[prost(fixed32, tag = "16")]
    flags: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ProtoLink {
    #[prost(bytes = "vec", tag = "1")]
    trace_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    span_id: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ProtoStatus {
    #[prost(int32, tag = "3")]
    code: i32,
}

/// Encodes traces as an OTLP `TracesData`, for tests and fuzz seeds: one `ResourceSpans` per
/// span, carrying the span's service.
#[doc(hidden)]
pub fn encode_traces_data(spans: &[Span]) -> Vec<u8> {
    #[derive(Clone, PartialEq, prost::Message)]
    struct TracesData {
        #[prost(message, repeated, tag = "1")]
        resource_spans: Vec<ResourceSpans>,
    }
    let id_bytes = |text: String, width: usize| -> Vec<u8> {
        let padded = format!("{text:0>width$}");
        (0..padded.len() / 2)
            .filter_map(|i| u8::from_str_radix(padded.get(2 * i..2 * i + 2)?, 16).ok())
            .collect()
    };
    let resource_spans = spans
        .iter()
        .map(|s| ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        string_value: Some(s.service().into()),
                        int_value: None,
                    }),
                }],
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![ProtoSpan {
                    trace_id: id_bytes(s.trace_id().to_string(), 32),
                    span_id: id_bytes(s.span_id().to_string(), 16),
                    parent_span_id: s
                        .parent_id()
                        .map(|p| id_bytes(p.to_string(), 16))
                        .unwrap_or_default(),
                    name: s.name().into(),
                    kind: 0,
                    start_time_unix_nano: s.start_ns(),
                    end_time_unix_nano: s.end_ns(),
                    attributes: Vec::new(),
                    links: Vec::new(),
                    status: None,
                    flags: 0,
                }],
            }],
            instrumentation_library_spans: Vec::new(),
        })
        .collect();
    prost::Message::encode_to_vec(&TracesData { resource_spans })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{Format, read_traces};
    use super::*;
    use crate::Error;

    fn sample() -> Vec<Span> {
        let t = TraceId::parse("5b8efff798038103d269b633813fc60c");
        vec![
            Span::new(
                t.clone(),
                SpanId::parse("eee19b7ec3c1b173"),
                1_544_712_660_000_000_001,
                1_544_712_661_000_000_000,
            )
            .with_service("a")
            .with_name("root"),
            Span::new(
                t,
                SpanId::parse("eee19b7ec3c1b174"),
                1_544_712_660_100_000_000,
                1_544_712_660_900_000_000,
            )
            .with_parent(SpanId::parse("eee19b7ec3c1b173"))
            .with_service("b")
            .with_name("child"),
        ]
    }

    #[test]
    fn round_trips_through_the_wire_format() {
        let bytes = encode_traces_data(&sample());
        let mut traces = Vec::new();
        let stats = read_traces(bytes.as_slice(), Path::new("t.pb"), None, |t| {
            traces.push(t);
            Ok(())
        })
        .unwrap();
        assert_eq!(stats.format, Some(Format::OtlpProto));
        assert_eq!(traces.len(), 1);
        assert_eq!(traces[0].spans, sample());
    }

    /// A root span from 1 to 2 ns with these ids and name, nothing else.
    fn proto_span(trace_id: Vec<u8>, span_id: Vec<u8>, name: &str) -> ProtoSpan {
        ProtoSpan {
            trace_id,
            span_id,
            parent_span_id: Vec::new(),
            name: name.into(),
            kind: 0,
            start_time_unix_nano: 1,
            end_time_unix_nano: 2,
            attributes: Vec::new(),
            links: Vec::new(),
            status: None,
            flags: 0,
        }
    }

    #[test]
    fn a_span_without_its_id_is_refused_at_its_message() {
        let first = encode_traces_data(&sample()[..1]);
        // A second ResourceSpans (field 1 of TracesData) whose one span has a trace id only.
        let span = proto_span(vec![1; 16], Vec::new(), "no id");
        let message = ResourceSpans {
            resource: None,
            scope_spans: vec![ScopeSpans { spans: vec![span] }],
            instrumentation_library_spans: Vec::new(),
        };
        let mut bytes = first.clone();
        let body = prost::Message::encode_to_vec(&message);
        prost::encoding::encode_key(1, prost::encoding::WireType::LengthDelimited, &mut bytes);
        prost::encoding::encode_varint(body.len() as u64, &mut bytes);
        bytes.extend_from_slice(&body);
        let err = read_traces(bytes.as_slice(), Path::new("t.pb"), None, |_| Ok(())).unwrap_err();
        match err {
            Error::Protobuf {
                offset, message, ..
            } => {
                assert_eq!(
                    offset,
                    first.len() as u64,
                    "where the second message starts"
                );
                assert_eq!(
                    message,
                    "span 0 of scope 0 in this ResourceSpans has no span_id"
                );
            }
            other => panic!("unexpected {other}"),
        }
    }

    /// One `TracesData` of one `ResourceSpans` whose one `ScopeSpans` holds `n` spans, a chain
    /// of service "late" (named after the spans); `broken` has no span id.
    fn one_long_scope(n: usize, broken: Option<usize>) -> Vec<u8> {
        let spans = (0..n)
            .map(|i| ProtoSpan {
                trace_id: vec![1; 16],
                span_id: if broken == Some(i) {
                    Vec::new()
                } else {
                    (i as u64 + 1).to_be_bytes().to_vec()
                },
                parent_span_id: if i > 0 {
                    (i as u64).to_be_bytes().to_vec()
                } else {
                    Vec::new()
                },
                name: format!("op{i}"),
                kind: 0,
                start_time_unix_nano: 10 * i as u64 + 1,
                end_time_unix_nano: 10 * i as u64 + 25,
                attributes: Vec::new(),
                links: Vec::new(),
                status: None,
                flags: 0,
            })
            .collect();
        let service = KeyValue {
            key: "service.name".into(),
            value: Some(AnyValue {
                string_value: Some("late".into()),
                int_value: None,
            }),
        };
        // The resource after the spans, as the encoding allows.
        let mut body = prost::Message::encode_to_vec(&ResourceSpans {
            resource: None,
            scope_spans: vec![ScopeSpans { spans }],
            instrumentation_library_spans: Vec::new(),
        });
        let resource = Resource {
            attributes: vec![service],
        };
        prost::encoding::message::encode(1, &resource, &mut body);
        let mut bytes = Vec::new();
        prost::encoding::encode_key(1, prost::encoding::WireType::LengthDelimited, &mut bytes);
        prost::encoding::encode_varint(body.len() as u64, &mut bytes);
        bytes.extend_from_slice(&body);
        bytes
    }

    #[test]
    fn long_scopes_come_out_as_one_thread_reads_them() {
        // Under test, spans past the third of a scope are decoded in batches of two on two
        // threads.
        let n = 21;
        let mut traces = Vec::new();
        read_traces(&one_long_scope(n, None)[..], Path::new("t.pb"), None, |t| {
            traces.push(t);
            Ok(())
        })
        .unwrap();
        assert_eq!(traces.len(), 1);
        let spans = &traces[0].spans;
        assert_eq!(spans.len(), n);
        for (i, span) in spans.iter().enumerate() {
            assert_eq!(span.span_id().as_u64(), Some(i as u64 + 1), "span {i}");
            let parent = span.parent_id().and_then(|p| p.as_u64());
            assert_eq!(parent, (i > 0).then_some(i as u64), "span {i}");
            assert_eq!(span.name(), format!("op{i}"));
            assert_eq!(span.service(), "late", "span {i}");
            assert_eq!(
                (span.start_ns(), span.end_ns()),
                (10 * i as u64 + 1, 10 * i as u64 + 25)
            );
        }
    }

    #[test]
    fn errors_in_later_batches_name_their_span() {
        for broken in [0, 4, 9, 20] {
            let bytes = one_long_scope(21, Some(broken));
            let err = read_traces(&bytes[..], Path::new("t.pb"), None, |_| Ok(())).unwrap_err();
            match err {
                Error::Protobuf {
                    offset, message, ..
                } => {
                    assert_eq!(offset, 0, "where the ResourceSpans starts");
                    assert_eq!(
                        message,
                        format!("span {broken} of scope 0 in this ResourceSpans has no span_id")
                    );
                }
                other => panic!("unexpected {other}"),
            }
        }
    }

    #[test]
    fn the_first_error_in_the_input_is_reported_whichever_thread_finds_it() {
        // A span without its id (found by the helper, which decodes the batches) and, later
        // or earlier, a `spans` field of the wrong wire type (found by the reading thread
        // while the helper may still decode): the first in the input is reported.
        for (broken, wrong_after) in [
            (10, 14),
            (4, 5),
            (18, 14),
            (12, 3),
            (13, 13),
            (5, 5),
            (3, 3),
        ] {
            let mut scope = Vec::new();
            for i in 0..21u64 {
                let id = if i == broken {
                    Vec::new()
                } else {
                    (i + 1).to_be_bytes().to_vec()
                };
                let span = proto_span(vec![1; 16], id, &format!("op{i}"));
                prost::encoding::message::encode(2, &span, &mut scope);
                if i == wrong_after {
                    prost::encoding::encode_key(2, prost::encoding::WireType::Varint, &mut scope);
                    prost::encoding::encode_varint(7, &mut scope);
                }
            }
            let mut resource_spans = Vec::new();
            prost::encoding::bytes::encode(2, &scope, &mut resource_spans);
            let mut bytes = Vec::new();
            prost::encoding::bytes::encode(1, &resource_spans, &mut bytes);
            let err = read_traces(&bytes[..], Path::new("t.pb"), None, |_| Ok(())).unwrap_err();
            let message = err.to_string();
            if broken <= wrong_after {
                assert!(
                    message.contains(&format!("span {broken} of scope 0")),
                    "{broken}, {wrong_after}: {message}"
                );
            } else {
                assert!(
                    message.contains("wire type"),
                    "{broken}, {wrong_after}: {message}"
                );
            }
        }
    }

    /// Unknown fields of any wire type inside a span, groups included, are skipped as prost
    /// skips them.
    #[test]
    fn unknown_groups_inside_a_span_are_skipped_like_prost() {
        let mut span =
            prost::Message::encode_to_vec(&proto_span(vec![1; 16], vec![2; 8], "grouped"));
        // group 19 { 1: 1 }, then the name again (the last one counts).
        span.extend_from_slice(&[0x9b, 0x01, 0x08, 0x01, 0x9c, 0x01]);
        prost::encoding::string::encode(5, &"after".to_string(), &mut span);
        let mut scope = Vec::new();
        prost::encoding::bytes::encode(2, &span, &mut scope);
        let mut resource_spans = Vec::new();
        prost::encoding::bytes::encode(2, &scope, &mut resource_spans);
        let mut bytes = Vec::new();
        prost::encoding::bytes::encode(1, &resource_spans, &mut bytes);
        let request: opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest =
            prost::Message::decode(bytes.as_slice()).expect("prost decodes it");
        let prost_span = &request.resource_spans[0].scope_spans[0].spans[0];
        let mut traces = Vec::new();
        read_traces(bytes.as_slice(), Path::new("t.pb"), None, |t| {
            traces.push(t);
            Ok(())
        })
        .expect("read");
        assert_eq!(traces[0].spans.len(), 1);
        assert_eq!(traces[0].spans[0].name(), prost_span.name);
        assert_eq!(prost_span.name, "after");
    }

    #[test]
    fn truncation_reports_the_offset_of_the_broken_field() {
        let bytes = encode_traces_data(&sample());
        let cut = bytes.len() - 3;
        let err = read_traces(&bytes[..cut], Path::new("t.pb"), None, |_| Ok(())).unwrap_err();
        match err {
            Error::Protobuf {
                offset, message, ..
            } => {
                assert!(offset > 0 && offset < cut as u64, "{offset}");
                assert!(message.contains("ends"), "{message}");
            }
            other => panic!("unexpected {other}"),
        }
    }
}
