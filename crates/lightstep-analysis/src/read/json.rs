//! The JSON formats, read with [`Lexer`] straight into spans, each trace handed over as soon as
//! it is complete.
//!
//! One document at a time: an object is OTLP (`resourceSpans`) or Jaeger (`data`, or
//! `traceID`/`spans`/`processes`) whatever the order of its keys; an array is Zipkin. Keys that
//! no format uses (CRISP's `testing`, Jaeger's `total`) are skipped, their syntax checked. Where
//! a format puts what a span shares after the span (an OTLP resource after its spans, Jaeger's
//! processes after the spans), the spans are built first and pointed at it when it comes.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::sync::Arc;

use lightstep_wire::schema::{
    INSTRUMENTATION_LIBRARY_SPANS_JSON, Msg, any_value, key_value, link, request, resource,
    resource_spans, scope_spans, span, status,
};

use super::batch::{Batch, SEQUENTIAL, Share, serve, two_threads, worth_a_thread};
use super::input::Input;
use super::lexer::{Failure, Lexer, Number, Res, Text};
use super::zipkin::{self, Fragments};
use super::{
    Format, Grouper, Interner, Origins, PEER_KEYS, ReadStats, Values, end_from_micros,
    micros_to_nanos, peer_from,
};
use crate::model::{
    Label, Link, Origin, ParentRelation, Span, SpanId, SpanKind, Status, Trace, TraceId,
};

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

const DOCUMENT: &str = "a JSON object (OTLP or Jaeger) or array (Zipkin) of trace data";

#[derive(Clone, Copy)]
enum DocumentKey {
    ResourceSpans,
    Data,
    TraceId,
    Spans,
    Processes,
    Other,
}

impl<R: Read> Reader<'_, R> {
    fn claim(&mut self, found: Format) -> Res<()> {
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

    // ---- OTLP -----------------------------------------------------------------------------

    /// Jaeger's `data`: an array of traces (or null), each handed over when complete.
    fn jaeger_data(&mut self) -> Res<()> {
        if !self.p.lx.begin_array("an array of Jaeger traces")? {
            return Ok(());
        }
        let mut first = true;
        while self.p.lx.next_element(&mut first)? {
            let mut trace = JaegerTrace::default();
            if self.p.lx.begin_object("a Jaeger trace")? {
                let mut inner = true;
                while let Some(key) = self.p.lx.next_key(&mut inner, |key| match key {
                    b"traceID" => DocumentKey::TraceId,
                    b"spans" => DocumentKey::Spans,
                    b"processes" => DocumentKey::Processes,
                    _ => DocumentKey::Other,
                })? {
                    self.p.jaeger_trace_field(&mut trace, key)?;
                }
            }
            let trace = trace.finish(&mut self.p.names);
            self.emit(trace)?;
        }
        Ok(())
    }

    /// An array of Zipkin spans, or of traces (arrays of spans): each trace is handed over at
    /// its closing bracket, loose spans at the end of the document.
    fn zipkin_document(&mut self) -> Res<()> {
        self.claim(Format::ZipkinJson)?;
        self.p.lx.begin_array(DOCUMENT)?;
        let mut loose = Fragments::default();
        let mut first = true;
        let mut read = 0;
        while self.p.lx.next_element(&mut first)? {
            const WHAT: &str = "a Zipkin span object or an array of spans";
            match self.p.lx.peek_value(WHAT)? {
                b'{' => {
                    read += 1;
                    if read == SEQUENTIAL
                        && worth_a_thread()
                        && self.p.zipkin_batches(&mut loose)?
                    {
                        continue;
                    }
                    self.p.zipkin_span(&mut loose)?;
                }
                b'[' => {
                    self.p.lx.begin_array(WHAT)?;
                    let mut trace = Fragments::default();
                    let mut inner = true;
                    let mut read = 0;
                    while self.p.lx.next_element(&mut inner)? {
                        read += 1;
                        if read == SEQUENTIAL
                            && worth_a_thread()
                            && self.p.zipkin_batches(&mut trace)?
                        {
                            continue;
                        }
                        self.p.zipkin_span(&mut trace)?;
                    }
                    for trace in zipkin::convert(trace, &mut self.p.names, self.stats) {
                        self.emit(trace)?;
                    }
                }
                _ => return Err(self.p.lx.invalid_type(WHAT)),
            }
        }
        for trace in zipkin::convert(loose, &mut self.p.names, self.stats) {
            self.emit(trace)?;
        }
        Ok(())
    }
}

impl<R: Read> Parser<R> {
    /// `resourceSpans`: each entry's spans go into the document's grouper.
    fn resource_spans_list(&mut self, grouper: &mut Grouper) -> Res<()> {
        if !self.lx.begin_array("an array of OTLP ResourceSpans")? {
            return Ok(());
        }
        let mut first = true;
        while self.lx.next_element(&mut first)? {
            self.resource_spans(grouper)?;
        }
        Ok(())
    }

    fn resource_spans(&mut self, grouper: &mut Grouper) -> Res<()> {
        const WHAT: &str = "an OTLP ResourceSpans object";
        if self.lx.peek_value(WHAT)? != b'{' {
            return Err(self.lx.invalid_type(WHAT));
        }
        self.lx.begin_object(WHAT)?;
        // The resource may come after the spans (or twice): spans read before the last one
        // are pointed at it at the end.
        let mut origins = Origins::default();
        let mut resource_known = false;
        let mut replaced: Vec<Arc<Origin>> = Vec::new();
        let mut spans_read = false;
        let mut stale = false;
        let mut first = true;
        while let Some(key) = self.lx.next_key(&mut first, |key| match key {
            resource_spans::json::RESOURCE => 1,
            resource_spans::json::SCOPE_SPANS | INSTRUMENTATION_LIBRARY_SPANS_JSON => 2,
            _ => 0,
        })? {
            match key {
                1 => {
                    let (service, host) = self.resource()?;
                    if spans_read {
                        stale = true;
                        replaced.extend(origins.by_trace.values().cloned());
                    }
                    origins = Origins::new(service, host);
                    resource_known = true;
                }
                2 => {
                    if self.scope_spans_list(grouper, &mut origins)? {
                        spans_read = true;
                        stale |= !resource_known;
                    }
                }
                _ => self.lx.skip_value()?,
            }
        }
        if stale {
            replaced.extend(origins.by_trace.values().cloned());
            let mut last = Origins::new(
                origins
                    .service
                    .clone()
                    .unwrap_or_else(|| Label::empty().name.clone()),
                origins.host.clone(),
            );
            grouper.repoint(&replaced, &mut last);
        }
        Ok(())
    }

    /// A resource's service and host (`service.name`; `host.name`, else `host.id`, else
    /// `service.instance.id`), from the first attribute of each name.
    fn resource(&mut self) -> Res<(Arc<str>, Option<Arc<str>>)> {
        const KEYS: [&str; 4] = [
            "service.name",
            "host.name",
            "host.id",
            "service.instance.id",
        ];
        let mut values: Values<4> = Values::default();
        if self.lx.begin_object("an OTLP Resource")? {
            let mut first = true;
            while let Some(key) = self
                .lx
                .next_key(&mut first, |key| key == resource::json::ATTRIBUTES)?
            {
                if key {
                    values.clear();
                    self.attributes(&KEYS, &mut values, false, true)?;
                } else {
                    self.lx.skip_value()?;
                }
            }
        }
        let service = self.names.get(values.get(0).unwrap_or(""));
        let host = (1..4)
            .find_map(|i| values.get(i))
            .map(|h| h.to_owned())
            .map(|h| self.names.get(&h));
        Ok((service, host))
    }

    /// OTLP attributes `[{"key", "value": {"stringValue"|"intValue"}}]`: the values of `keys`
    /// go to `values` as text (`intValue` too with `ints`); with `first_wins` the first
    /// attribute of a key counts, otherwise the last.
    fn attributes<const N: usize>(
        &mut self,
        keys: &[&str; N],
        values: &mut Values<N>,
        ints: bool,
        first_wins: bool,
    ) -> Res<()> {
        if !self.lx.begin_array("a list of OTLP attributes")? {
            return Ok(());
        }
        let mut found = [false; N];
        let mut first = true;
        while self.lx.next_element(&mut first)? {
            if !self.lx.begin_object("an OTLP attribute")? {
                continue;
            }
            // Which of `keys` this attribute is (N: another), once its key is read; a value
            // read before its key is kept in `self.value` until the key says whether it counts.
            let mut slot: Option<usize> = None;
            let mut early: Option<bool> = None;
            let mut inner = true;
            while let Some(field) = self.lx.next_key(&mut inner, |key| match key {
                key_value::json::KEY => 1,
                key_value::json::VALUE => 2,
                _ => 0,
            })? {
                match field {
                    1 => {
                        let Some(text) = self.lx.string_or_null("a string")? else {
                            slot = Some(N);
                            continue;
                        };
                        let key = self.lx.bytes(text);
                        slot = Some(keys.iter().position(|k| k.as_bytes() == key).unwrap_or(N));
                    }
                    2 => match slot {
                        Some(i) if i == N || (first_wins && found[i]) => {
                            self.lx.skip_value()?;
                        }
                        _ => {
                            let mut text = std::mem::take(&mut self.value);
                            let found = self.any_value(ints, &mut text);
                            self.value = text;
                            early = Some(found?);
                        }
                    },
                    _ => self.lx.skip_value()?,
                }
            }
            // A missing key is the empty key, which is none of `keys`.
            let i = slot.unwrap_or(N);
            if i == N || (first_wins && found[i]) {
                continue;
            }
            found[i] = true;
            // An attribute without a usable value still counts: it is the first (or replaces
            // an earlier one) with no value.
            match early {
                Some(true) => {
                    if let Some(out) = values.slot(i) {
                        out.push_str(&self.value);
                    }
                }
                _ => values.unset(i),
            }
        }
        Ok(())
    }

    /// An OTLP `AnyValue`'s `stringValue` (or with `ints` its `intValue`, a number or a string
    /// of digits) as text into `out`; whether it had one.
    fn any_value(&mut self, ints: bool, out: &mut String) -> Res<bool> {
        out.clear();
        if !self.lx.begin_object("an OTLP AnyValue")? {
            return Ok(false);
        }
        let mut string: Option<bool> = None;
        let mut int = false;
        let mut first = true;
        while let Some(field) = self.lx.next_key(&mut first, |key| match key {
            any_value::json::STRING_VALUE => 1,
            any_value::json::INT_VALUE => 2,
            _ => 0,
        })? {
            match field {
                1 => match self.lx.string_or_null("a string")? {
                    Some(text) => {
                        out.clear();
                        out.push_str(self.lx.str(text)?);
                        string = Some(true);
                    }
                    None => string = Some(false),
                },
                2 if ints && string != Some(true) => {
                    // Any JSON value is taken; a string or a number counts (a string value,
                    // before or after, wins).
                    int = match self.lx.peek_value("a value")? {
                        b'"' | b'-' | b'0'..=b'9' => self.lx.scalar_text(out)?,
                        _ => {
                            self.lx.skip_value()?;
                            false
                        }
                    };
                }
                _ => self.lx.skip_value()?,
            }
        }
        Ok(string == Some(true) || int)
    }

    /// `scopeSpans` (or the legacy `instrumentationLibrarySpans`); whether it held a span.
    fn scope_spans_list(&mut self, grouper: &mut Grouper, origins: &mut Origins) -> Res<bool> {
        if !self.lx.begin_array("an array of OTLP ScopeSpans")? {
            return Ok(false);
        }
        let mut any = false;
        let mut first = true;
        while self.lx.next_element(&mut first)? {
            const WHAT: &str = "an OTLP ScopeSpans object";
            if self.lx.peek_value(WHAT)? != b'{' {
                return Err(self.lx.invalid_type(WHAT));
            }
            self.lx.begin_object(WHAT)?;
            let mut inner = true;
            while let Some(spans) = self
                .lx
                .next_key(&mut inner, |key| key == scope_spans::json::SPANS)?
            {
                if !spans {
                    self.lx.skip_value()?;
                    continue;
                }
                if !self.lx.begin_array("an array of OTLP spans")? {
                    continue;
                }
                let mut element = true;
                let mut read = 0;
                while self.lx.next_element(&mut element)? {
                    any = true;
                    read += 1;
                    if read == SEQUENTIAL
                        && worth_a_thread()
                        && self.otlp_batches(grouper, origins)?
                    {
                        continue;
                    }
                    let span = self.otlp_span(origins)?;
                    grouper.push(span);
                }
            }
        }
        Ok(any)
    }

    /// The rest of a long `spans` array, from an element's start (see `batch`); whether there
    /// was any (the element may not be an object, which the caller then reports).
    fn otlp_batches(&mut self, grouper: &mut Grouper, origins: &mut Origins) -> Res<bool> {
        self.in_batches(origins.clone(), Parser::otlp_batch, |spans: Vec<Span>| {
            for mut span in spans {
                origins.adopt(&mut span);
                grouper.push(span);
            }
            Ok(())
        })
    }

    /// The rest of a long list of Zipkin spans, from an element's start (see `batch`).
    fn zipkin_batches(&mut self, out: &mut Fragments) -> Res<bool> {
        self.in_batches((), Parser::zipkin_batch, |part| {
            out.append(part);
            Ok(())
        })
    }

    /// The rest of a long list of objects, from an element's start, in batches on two threads
    /// (see `batch`): `parse` reads a batch with the batch parser of the thread and its copy of
    /// `state`, `deliver` takes the results in input order. Whether there was any batch.
    fn in_batches<S: Clone + Send, T: Send>(
        &mut self,
        state: S,
        parse: fn(&mut Parser<io::Empty>, &mut S, Batch) -> Res<T>,
        mut deliver: impl FnMut(T) -> Res<()>,
    ) -> Res<bool> {
        let mut here = (Parser::batches(), state.clone());
        let mut any = false;
        let mut leading_comma = false;
        let lx = &mut self.lx;
        two_threads(
            Share::Alternate,
            || {
                let batch = lx.scan_batch(leading_comma)?;
                leading_comma = true;
                Ok(batch)
            },
            |batch| parse(&mut here.0, &mut here.1, batch),
            move |jobs, done| {
                let (mut parser, mut state) = (Parser::batches(), state);
                serve(jobs, done, |batch| parse(&mut parser, &mut state, batch));
            },
            |result| {
                any = true;
                deliver(result)
            },
        )?;
        Ok(any)
    }

    fn otlp_span(&mut self, origins: &mut Origins) -> Res<Span> {
        const WHAT: &str = "an OTLP span";
        if self.lx.peek_value(WHAT)? != b'{' {
            return Err(self.lx.invalid_type(WHAT));
        }
        self.lx.begin_object(WHAT)?;
        let mut trace_id = None;
        let mut span_id = None;
        let mut parent = None;
        let mut kind = SpanKind::Unspecified;
        let mut start = 0;
        let mut end = 0;
        let mut status = Status::Unset;
        let mut links = Vec::new();
        let mut flags = 0;
        let mut seen = 0u32;
        self.name.clear();
        self.peer_values.clear();
        let mut first = true;
        // Keys by their protobuf field number (0: a field not read), as the table names them.
        while let Some(key) = self.lx.next_key(&mut first, |key| match key {
            span::json::TRACE_ID => span::TRACE_ID,
            span::json::SPAN_ID => span::SPAN_ID,
            span::json::PARENT_SPAN_ID => span::PARENT_SPAN_ID,
            span::json::NAME => span::NAME,
            span::json::KIND => span::KIND,
            span::json::START_TIME_UNIX_NANO => span::START_TIME_UNIX_NANO,
            span::json::END_TIME_UNIX_NANO => span::END_TIME_UNIX_NANO,
            span::json::STATUS => span::STATUS,
            span::json::LINKS => span::LINKS,
            span::json::ATTRIBUTES => span::ATTRIBUTES,
            span::json::FLAGS => span::FLAGS,
            _ => 0u32,
        })? {
            self.lx.first_time(&mut seen, key, &OTLP_SPAN_FIELDS)?;
            match key {
                span::TRACE_ID => trace_id = Some(self.required_id(TraceId::parse_bytes)?),
                span::SPAN_ID => span_id = Some(self.required_id(SpanId::parse_bytes)?),
                span::PARENT_SPAN_ID => {
                    if let Some(text) = self.lx.string_or_null("a string")?
                        && !self.lx.bytes(text).is_empty()
                    {
                        parent = Some(self.id(text, SpanId::parse_bytes)?);
                    }
                }
                span::NAME => {
                    if let Some(text) = self.lx.string_or_null("a string")? {
                        let text = self.lx.str(text)?;
                        self.name.push_str(text);
                    }
                }
                span::KIND => kind = self.otlp_kind()?,
                span::START_TIME_UNIX_NANO => start = self.unsigned()?,
                span::END_TIME_UNIX_NANO => end = self.unsigned()?,
                span::STATUS => status = self.otlp_status()?,
                span::LINKS => self.otlp_links(&mut links)?,
                span::ATTRIBUTES => {
                    let mut values = std::mem::take(&mut self.peer_values);
                    let read = self.attributes(&PEER_KEYS, &mut values, true, false);
                    self.peer_values = values;
                    read?;
                }
                span::FLAGS => flags = self.unsigned()?,
                _ => self.lx.skip_value()?,
            }
        }
        // A span without its ids cannot be placed in a trace: the error names the field.
        let Some(trace_id) = trace_id else {
            return Err(self.lx.error("missing field `traceId`"));
        };
        let Some(span_id) = span_id else {
            return Err(self.lx.error("missing field `spanId`"));
        };
        let peer = peer_from(kind, &self.peer_values, &mut self.peer);
        let label = self.names.label(&self.name, peer);
        let mut span = Span::from_parts(origins.of(&trace_id), label, span_id, start, end);
        span.set_parent(parent);
        span.set_kind(kind);
        span.set_status(status);
        for link in links {
            span.push_link(link);
        }
        // OTLP's span flags: bit 8 says whether bit 9 (the parent is remote) is known.
        span.set_remote_parent(flags & 0x300 == 0x300);
        Ok(span)
    }

    /// A string id that must be there and not be empty.
    fn required_id<T>(&mut self, parse: impl FnOnce(&[u8]) -> Option<T>) -> Res<T> {
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

    fn signed(&mut self) -> Res<i64> {
        let v = self.lx.integer(true)?;
        i64::try_from(v).map_err(|_| self.lx.error("integer out of range"))
    }

    /// A number or a name (`SPAN_KIND_SERVER`, `server`), as text in `self.value`.
    fn enum_text(&mut self, what: &str) -> Res<()> {
        self.value.clear();
        match self.lx.peek_value(what)? {
            b'"' => {
                let text = self.lx.string()?;
                let text = self.lx.str(text)?;
                self.value.push_str(text);
            }
            b'-' | b'0'..=b'9' => {
                let number = self.lx.number()?;
                match number {
                    Number::Float(_) => {
                        return Err(self
                            .lx
                            .error(format!("invalid type: floating point, expected {what}")));
                    }
                    _ => self.value.push_str(&number.to_text()),
                }
            }
            b'n' => {
                self.lx.skip_value()?;
            }
            _ => return Err(self.lx.invalid_type(what)),
        }
        Ok(())
    }

    fn otlp_kind(&mut self) -> Res<SpanKind> {
        const WHAT: &str = "a span kind as a number or a name";
        if let b'-' | b'0'..=b'9' = self.lx.peek_value(WHAT)? {
            return match self.lx.number()? {
                // Beyond i64, no kind.
                Number::Unsigned(n) => {
                    Ok(i64::try_from(n).map_or(SpanKind::Unspecified, SpanKind::from_otlp))
                }
                Number::Negative(n) => Ok(SpanKind::from_otlp(n)),
                Number::Float(_) => Err(self
                    .lx
                    .error(format!("invalid type: floating point, expected {WHAT}"))),
            };
        }
        self.enum_text(WHAT)?;
        Ok(match self.value.parse::<i64>() {
            Ok(n) => SpanKind::from_otlp(n),
            Err(_) => SpanKind::from_name(&self.value),
        })
    }

    fn otlp_status(&mut self) -> Res<Status> {
        let mut status = Status::Unset;
        if !self.lx.begin_object("an OTLP Status")? {
            return Ok(status);
        }
        let mut first = true;
        while let Some(code) = self
            .lx
            .next_key(&mut first, |key| key == status::json::CODE)?
        {
            if !code {
                self.lx.skip_value()?;
                continue;
            }
            self.enum_text("a status code as a number or a name")?;
            status = match self.value.as_str() {
                "1" | "STATUS_CODE_OK" | "OK" => Status::Ok,
                "2" | "STATUS_CODE_ERROR" | "ERROR" => Status::Error,
                _ => Status::Unset,
            };
        }
        Ok(status)
    }

    fn otlp_links(&mut self, links: &mut Vec<Link>) -> Res<()> {
        if !self.lx.begin_array("a list of OTLP links")? {
            return Ok(());
        }
        let mut first = true;
        while self.lx.next_element(&mut first)? {
            let mut trace_id = TraceId::parse("");
            let mut span_id = SpanId::parse("");
            if self.lx.begin_object("an OTLP link")? {
                let mut inner = true;
                while let Some(field) = self.lx.next_key(&mut inner, |key| match key {
                    link::json::TRACE_ID => link::TRACE_ID,
                    link::json::SPAN_ID => link::SPAN_ID,
                    _ => 0,
                })? {
                    match field {
                        link::TRACE_ID | link::SPAN_ID => {
                            let text = match self.lx.string_or_null("a string")? {
                                Some(text) => self.lx.str(text)?,
                                None => "",
                            };
                            if field == link::TRACE_ID {
                                trace_id = TraceId::parse(text);
                            } else {
                                span_id = SpanId::parse(text);
                            }
                        }
                        _ => self.lx.skip_value()?,
                    }
                }
            }
            links.push(Link { trace_id, span_id });
        }
        Ok(())
    }

    // ---- Jaeger ---------------------------------------------------------------------------

    fn jaeger_trace_field(&mut self, trace: &mut JaegerTrace, key: DocumentKey) -> Res<()> {
        match key {
            DocumentKey::TraceId => {
                trace.trace_id = match self.lx.string_or_null("a string")? {
                    Some(text) => Some(self.id(text, TraceId::parse_bytes)?),
                    None => None,
                };
            }
            DocumentKey::Spans => {
                trace.clear_spans();
                if self.lx.begin_array("a list of Jaeger spans")? {
                    let mut first = true;
                    let mut read = 0;
                    while self.lx.next_element(&mut first)? {
                        read += 1;
                        if read == SEQUENTIAL
                            && worth_a_thread()
                            && self.in_batches((), Parser::jaeger_batch, |part| {
                                trace.append(part);
                                Ok(())
                            })?
                        {
                            continue;
                        }
                        self.jaeger_span(trace)?;
                    }
                }
            }
            DocumentKey::Processes => {
                trace.processes.clear();
                if self.lx.begin_object("a map of Jaeger processes")? {
                    let mut first = true;
                    while let Some(id) = self.lx.next_key(&mut first, |key| {
                        std::str::from_utf8(key).map(str::to_owned)
                    })? {
                        let id = id.map_err(|_| self.lx.error("a key is not valid UTF-8"))?;
                        let process = self.jaeger_process()?;
                        trace.processes.insert(id, process);
                    }
                }
            }
            _ => self.lx.skip_value()?,
        }
        Ok(())
    }

    /// A Jaeger process: its service, and its host (`hostname`, else `ip`).
    fn jaeger_process(&mut self) -> Res<Option<Process>> {
        if !self.lx.begin_object("a Jaeger process")? {
            return Ok(None);
        }
        let mut service = String::new();
        let mut tags: Values<2> = Values::default();
        let mut first = true;
        while let Some(key) = self.lx.next_key(&mut first, |key| match key {
            b"serviceName" => 1,
            b"tags" => 2,
            _ => 0,
        })? {
            match key {
                1 => {
                    service.clear();
                    if let Some(text) = self.lx.string_or_null("a string")? {
                        service.push_str(self.lx.str(text)?);
                    }
                }
                2 => {
                    tags.clear();
                    self.jaeger_tags(&["hostname", "ip"], &mut tags)?;
                }
                _ => self.lx.skip_value()?,
            }
        }
        let service = self.names.get(&service);
        let host = tags
            .get(0)
            .or_else(|| tags.get(1))
            .map(str::to_owned)
            .map(|h| self.names.get(&h));
        Ok(Some((service, host)))
    }

    /// Jaeger tags `[{"key", "value"}]`: the first tag of each of `keys`, its value as text
    /// (a string, a number or a boolean; a tag whose value is something else counts as
    /// found without a value).
    fn jaeger_tags<const N: usize>(&mut self, keys: &[&str; N], values: &mut Values<N>) -> Res<()> {
        let mut found = [false; N];
        if !self.lx.begin_array("a list of Jaeger tags")? {
            return Ok(());
        }
        let mut first = true;
        while self.lx.next_element(&mut first)? {
            if !self.lx.begin_object("a Jaeger tag")? {
                continue;
            }
            let mut slot: Option<usize> = None;
            let mut early: Option<bool> = None;
            let mut inner = true;
            while let Some(field) = self.lx.next_key(&mut inner, |key| match key {
                b"key" => 1,
                b"value" => 2,
                _ => 0,
            })? {
                match field {
                    1 => {
                        slot = Some(match self.lx.string_or_null("a string")? {
                            Some(text) => {
                                let key = self.lx.bytes(text);
                                keys.iter().position(|k| k.as_bytes() == key).unwrap_or(N)
                            }
                            None => N,
                        });
                    }
                    2 => match slot {
                        Some(i) if i == N || found[i] => self.lx.skip_value()?,
                        _ => {
                            let mut text = std::mem::take(&mut self.value);
                            let read = self.lx.scalar_text(&mut text);
                            self.value = text;
                            early = Some(read?);
                        }
                    },
                    _ => self.lx.skip_value()?,
                }
            }
            let i = slot.unwrap_or(N);
            if i == N || found[i] {
                continue;
            }
            found[i] = true;
            if early == Some(true)
                && let Some(out) = values.slot(i)
            {
                out.push_str(&self.value);
            }
        }
        Ok(())
    }

    fn jaeger_span(&mut self, trace: &mut JaegerTrace) -> Res<()> {
        const WHAT: &str = "a Jaeger span";
        if self.lx.peek_value(WHAT)? != b'{' {
            return Err(self.lx.invalid_type(WHAT));
        }
        self.lx.begin_object(WHAT)?;
        const TAGS: [&str; 8] = [
            "peer.service",
            "server.address",
            "server.port",
            "net.peer.name",
            "net.peer.port",
            "span.kind",
            "error",
            "otel.status_code",
        ];
        let mut own_trace: Option<TraceId> = None;
        let mut span_id = None;
        let mut parent_span_id: Option<SpanId> = None;
        let mut references: Vec<(RefType, SpanId, Option<TraceId>)> = Vec::new();
        let mut start_us = 0;
        let mut duration_us = 0;
        let mut process = u32::MAX;
        let mut inline = None;
        let mut tags: Values<8> = Values::default();
        let mut seen = 0u32;
        self.name.clear();
        let mut first = true;
        while let Some(key) = self.lx.next_key(&mut first, |key| match key {
            b"traceID" => 1,
            b"spanID" => 2,
            b"parentSpanID" => 3,
            b"operationName" => 4,
            b"references" => 5,
            b"startTime" => 6,
            b"duration" => 7,
            b"processID" => 8,
            b"process" => 9,
            b"tags" => 10,
            _ => 0u32,
        })? {
            self.lx.first_time(&mut seen, key, &JAEGER_SPAN_FIELDS)?;
            match key {
                1 => {
                    own_trace = match self.lx.string_or_null("a string")? {
                        Some(text) => Some(self.id(text, TraceId::parse_bytes)?),
                        None => None,
                    }
                }
                2 => span_id = Some(self.required_id(SpanId::parse_bytes)?),
                3 => {
                    parent_span_id = match self.lx.string_or_null("a string")? {
                        Some(text) if !self.lx.bytes(text).is_empty() => {
                            Some(self.id(text, SpanId::parse_bytes)?)
                        }
                        _ => None,
                    }
                }
                4 => {
                    if let Some(text) = self.lx.string_or_null("a string")? {
                        let text = self.lx.str(text)?;
                        self.name.push_str(text);
                    }
                }
                5 => self.jaeger_references(&mut references)?,
                6 => start_us = self.unsigned()?,
                7 => duration_us = self.signed()?,
                8 => {
                    if let Some(text) = self.lx.string_or_null("a string")? {
                        let id = self.lx.str(text)?;
                        process = trace.process_slot(id);
                    }
                }
                9 => inline = self.jaeger_process()?,
                10 => self.jaeger_tags(&TAGS, &mut tags)?,
                _ => self.lx.skip_value()?,
            }
        }
        let Some(span_id) = span_id else {
            return Err(self.lx.error("missing field `spanID`"));
        };
        let start = micros_to_nanos(start_us);
        let end = end_from_micros(start, duration_us);
        let kind = tags
            .get(5)
            .map_or(SpanKind::Unspecified, SpanKind::from_name);
        let mut peer_values: Values<5> = Values::default();
        for i in 0..5 {
            if let (Some(value), Some(out)) = (tags.get(i), peer_values.slot(i)) {
                out.push_str(value);
            } else {
                peer_values.unset(i);
            }
        }
        let peer = peer_from(kind, &peer_values, &mut self.peer);
        let label = self.names.label(&self.name, peer);
        let origin = trace.provisional_origin(own_trace);
        let mut span = Span::from_parts(origin, label, span_id, start, end);
        span.set_kind(kind);
        let error = tags.get(6) == Some("true")
            || tags.get(7).is_some_and(|v| v.eq_ignore_ascii_case("error"));
        if error {
            span.set_status(Status::Error);
        }
        let index = trace.spans.len();
        let mut refs = references.into_iter();
        match refs.next() {
            Some((RefType::ChildOf, id, _)) => span.set_parent(Some(id)),
            Some((RefType::FollowsFrom, id, _)) => {
                span.set_parent(Some(id));
                span.set_relation(ParentRelation::FollowsFrom);
            }
            Some((RefType::Other, id, trace_id)) => trace.link(&mut span, index, id, trace_id),
            None => span.set_parent(parent_span_id),
        }
        for (_, id, trace_id) in refs {
            trace.link(&mut span, index, id, trace_id);
        }
        trace.push(span, process, inline);
        Ok(())
    }

    fn jaeger_references(
        &mut self,
        references: &mut Vec<(RefType, SpanId, Option<TraceId>)>,
    ) -> Res<()> {
        if !self.lx.begin_array("a list of Jaeger references")? {
            return Ok(());
        }
        let mut first = true;
        while self.lx.next_element(&mut first)? {
            let mut ref_type = RefType::Other;
            let mut span_id = SpanId::parse("");
            let mut trace_id = None;
            if self.lx.begin_object("a Jaeger reference")? {
                let mut inner = true;
                while let Some(field) = self.lx.next_key(&mut inner, |key| match key {
                    b"refType" => 1,
                    b"spanID" => 2,
                    b"traceID" => 3,
                    _ => 0,
                })? {
                    match field {
                        1 => {
                            let text = self.lx.string_or_null("a string")?;
                            let text = text.map_or(&b""[..], |t| self.lx.bytes(t));
                            ref_type = if text.eq_ignore_ascii_case(b"CHILD_OF") {
                                RefType::ChildOf
                            } else if text.eq_ignore_ascii_case(b"FOLLOWS_FROM") {
                                RefType::FollowsFrom
                            } else {
                                RefType::Other
                            };
                        }
                        2 => {
                            span_id = match self.lx.string_or_null("a string")? {
                                Some(text) => self.id(text, SpanId::parse_bytes)?,
                                None => SpanId::parse(""),
                            };
                        }
                        3 => {
                            trace_id = match self.lx.string_or_null("a string")? {
                                Some(text) => Some(self.id(text, TraceId::parse_bytes)?),
                                None => None,
                            };
                        }
                        _ => self.lx.skip_value()?,
                    }
                }
            }
            references.push((ref_type, span_id, trace_id));
        }
        Ok(())
    }

    // ---- Zipkin ---------------------------------------------------------------------------
}

impl Parser<io::Empty> {
    /// A parser of batches (see `batch`), given a lexer for each.
    fn batches() -> Self {
        Self::new(Lexer::new(Input::new(io::empty())))
    }

    /// Reads the elements of a batch with `element`.
    fn each(&mut self, mut batch: Batch, mut element: impl FnMut(&mut Self) -> Res<()>) -> Res<()> {
        self.lx = Lexer::for_batch(&mut batch);
        for k in 0..batch.elements {
            if k > 0 || batch.leading_comma {
                self.lx.comma()?;
            }
            element(self)?;
        }
        Ok(())
    }

    /// The spans of a batch of OTLP spans.
    fn otlp_batch(&mut self, origins: &mut Origins, batch: Batch) -> Res<Vec<Span>> {
        let mut spans = Vec::with_capacity(batch.elements);
        self.each(batch, |p| {
            spans.push(p.otlp_span(origins)?);
            Ok(())
        })?;
        Ok(spans)
    }

    /// A batch of Zipkin spans.
    fn zipkin_batch(&mut self, _: &mut (), batch: Batch) -> Res<Fragments> {
        let mut fragments = Fragments::default();
        self.each(batch, |p| p.zipkin_span(&mut fragments))?;
        Ok(fragments)
    }

    /// A batch of the spans of a Jaeger trace, as a trace of its own to append to it.
    fn jaeger_batch(&mut self, _: &mut (), batch: Batch) -> Res<JaegerTrace> {
        let mut trace = JaegerTrace::default();
        self.each(batch, |p| p.jaeger_span(&mut trace))?;
        Ok(trace)
    }
}

/// The OTLP/JSON names of a span's fields, indexed by field number less one (for duplicate
/// fields): the table's, whose span fields are numbered 1 to 16 without a gap.
const OTLP_SPAN_FIELDS: [&str; 16] = {
    let fields = Msg::Span.fields();
    let mut names = [""; 16];
    let mut i = 0;
    while i < fields.len() {
        names[fields[i].number as usize - 1] = fields[i].json;
        i += 1;
    }
    names
};

const JAEGER_SPAN_FIELDS: [&str; 10] = [
    "traceID",
    "spanID",
    "parentSpanID",
    "operationName",
    "references",
    "startTime",
    "duration",
    "processID",
    "process",
    "tags",
];

/// A Jaeger process as spans use it: its service and its host.
type Process = (Arc<str>, Option<Arc<str>>);

#[derive(Clone, Copy, PartialEq, Eq)]
enum RefType {
    ChildOf,
    FollowsFrom,
    Other,
}

/// A Jaeger trace being read. Its spans may come before its `traceID` and its `processes`:
/// they are built with a provisional origin and given their own when the trace is complete.
#[derive(Default)]
struct JaegerTrace {
    trace_id: Option<TraceId>,
    spans: Vec<Span>,
    /// Per span: which process id it names (an index into `process_ids`), or `u32::MAX`.
    process_of: Vec<u32>,
    /// Spans with a process of their own (`process`), and that process.
    inline: Vec<(usize, Option<Process>)>,
    process_ids: Vec<String>,
    process_index: HashMap<String, u32>,
    processes: HashMap<String, Option<Process>>,
    /// Provisional origins: one for spans without a trace id of their own (the trace's, which
    /// may not be known yet), and one per trace id that spans name themselves.
    placeholder: Option<Arc<Origin>>,
    own: HashMap<TraceId, Arc<Origin>>,
    /// Links whose reference names no trace: they take the trace's id, (span, link).
    trace_links: Vec<(usize, usize)>,
}

impl JaegerTrace {
    fn clear_spans(&mut self) {
        self.spans.clear();
        self.process_of.clear();
        self.inline.clear();
        self.trace_links.clear();
    }

    fn process_slot(&mut self, id: &str) -> u32 {
        if let Some(&slot) = self.process_index.get(id) {
            return slot;
        }
        let slot = self.process_ids.len() as u32;
        self.process_ids.push(id.to_owned());
        self.process_index.insert(id.to_owned(), slot);
        slot
    }

    fn provisional_origin(&mut self, own_trace: Option<TraceId>) -> Arc<Origin> {
        let empty = || Label::empty().name.clone();
        match own_trace {
            None => self
                .placeholder
                .get_or_insert_with(|| Origin::new(TraceId::default(), empty(), None))
                .clone(),
            Some(id) => self
                .own
                .entry(id.clone())
                .or_insert_with(|| Origin::new(id, empty(), None))
                .clone(),
        }
    }

    fn link(&mut self, span: &mut Span, index: usize, span_id: SpanId, trace_id: Option<TraceId>) {
        if trace_id.is_none() {
            self.trace_links.push((index, span.links().len()));
        }
        span.push_link(Link {
            trace_id: trace_id.unwrap_or_default(),
            span_id,
        });
    }

    fn push(&mut self, span: Span, process: u32, inline: Option<Process>) {
        if inline.is_some() {
            self.inline.push((self.spans.len(), inline));
        }
        self.spans.push(span);
        self.process_of.push(process);
    }

    /// Appends the spans of `part`, read on their own (see `batch`).
    fn append(&mut self, part: JaegerTrace) {
        let offset = self.spans.len();
        let slots: Vec<u32> = part
            .process_ids
            .iter()
            .map(|id| self.process_slot(id))
            .collect();
        // The part's provisional origins become this trace's: spans of one origin are usually
        // many in a row.
        let mut last: Option<(*const Origin, Arc<Origin>)> = None;
        for (mut span, slot) in part.spans.into_iter().zip(part.process_of) {
            let origin = match &last {
                Some((from, to)) if *from == Arc::as_ptr(span.origin()) => to.clone(),
                _ => {
                    let own = match &part.placeholder {
                        Some(p) if Arc::ptr_eq(p, span.origin()) => None,
                        _ => Some(span.trace_id().clone()),
                    };
                    let to = self.provisional_origin(own);
                    last = Some((Arc::as_ptr(span.origin()), to.clone()));
                    to
                }
            };
            span.set_origin(origin);
            self.spans.push(span);
            self.process_of
                .push(slots.get(slot as usize).copied().unwrap_or(u32::MAX));
        }
        self.inline.extend(
            part.inline
                .into_iter()
                .map(|(index, process)| (index + offset, process)),
        );
        self.trace_links.extend(
            part.trace_links
                .into_iter()
                .map(|(index, link)| (index + offset, link)),
        );
    }

    /// The trace, each span pointed at its origin: its process (by id, else its own), and its
    /// own trace id or the trace's.
    fn finish(mut self, names: &mut Interner) -> Trace {
        let trace_id = self.trace_id.take().unwrap_or_else(|| TraceId::parse(""));
        let placeholder = self.placeholder.take();
        let empty: Process = (names.get(""), None);
        let mut inline = self.inline.iter().peekable();
        let mut origins: HashMap<(TraceId, usize), Arc<Origin>> = HashMap::new();
        let mut last: Option<(*const Origin, u32, Arc<Origin>)> = None;
        for (index, (span, &process)) in self.spans.iter_mut().zip(&self.process_of).enumerate() {
            let own_inline = match inline.peek() {
                Some((at, process)) if *at == index => {
                    inline.next();
                    Some(process)
                }
                _ => None,
            };
            // The common case: the same provisional origin and process as the span before.
            if own_inline.is_none()
                && let Some((provisional, slot, origin)) = &last
                && *provisional == Arc::as_ptr(span.origin())
                && *slot == process
            {
                span.set_origin(origin.clone());
                continue;
            }
            let named = self
                .process_ids
                .get(process as usize)
                .and_then(|id| self.processes.get(id))
                .map(Option::as_ref);
            // Processes are numbered after the ids; a span's own process gets a key of its own.
            let (key, (service, host)) = match (named, own_inline) {
                (Some(Some(found)), _) => (process as usize, found),
                (_, Some(Some(found))) => (usize::MAX - index, found),
                _ => (usize::MAX, &empty),
            };
            let id = match &placeholder {
                Some(p) if Arc::ptr_eq(p, span.origin()) => trace_id.clone(),
                _ => span.trace_id().clone(),
            };
            let provisional = Arc::as_ptr(span.origin());
            let origin = origins
                .entry((id.clone(), key))
                .or_insert_with(|| Origin::new(id, service.clone(), host.clone()))
                .clone();
            span.set_origin(origin.clone());
            last = own_inline
                .is_none()
                .then_some((provisional, process, origin));
        }
        for &(index, link) in &self.trace_links {
            if let Some(link) = self
                .spans
                .get_mut(index)
                .and_then(|s| s.links_mut().get_mut(link))
            {
                link.trace_id = trace_id.clone();
            }
        }
        Trace::new(trace_id, self.spans)
    }
}

/// OTLP traces held across documents: one trace's spans are spread over several lines of a
/// JSON Lines file.
struct Held {
    traces: HashMap<TraceId, HeldTrace, foldhash::fast::RandomState>,
    spans: usize,
    limit: usize,
    /// Documents read so far: the clock for "received spans least recently".
    document: u64,
    /// Traces seen so far: the order of first appearance.
    seen: u64,
    /// Traces handed over before the end because of the limit (forgotten past a million).
    released: HashSet<TraceId, foldhash::fast::RandomState>,
}

struct HeldTrace {
    trace: Trace,
    /// Its place in the order of first appearance.
    first_seen: u64,
    /// The document that extended it last.
    last_seen: u64,
}

impl Held {
    fn new(limit: usize) -> Self {
        Self {
            traces: HashMap::default(),
            spans: 0,
            limit,
            document: 0,
            seen: 0,
            released: HashSet::default(),
        }
    }

    /// Takes one document's traces; returns the traces to hand over now to stay in the limit,
    /// least recently extended first.
    fn absorb(&mut self, traces: Vec<Trace>, split: &mut usize) -> Vec<Trace> {
        self.document += 1;
        let now = self.document;
        for trace in traces {
            self.spans += trace.spans.len();
            if self.released.remove(&trace.trace_id) {
                *split += 1;
            }
            match self.traces.get_mut(&trace.trace_id) {
                Some(held) => {
                    held.trace.spans.extend(trace.spans);
                    held.last_seen = now;
                }
                None => {
                    self.seen += 1;
                    self.traces.insert(
                        trace.trace_id.clone(),
                        HeldTrace {
                            trace,
                            first_seen: self.seen,
                            last_seen: now,
                        },
                    );
                }
            }
        }
        if self.spans <= self.limit {
            return Vec::new();
        }
        // Over the limit: release the least recently extended traces down to three quarters of
        // it, so that releasing (a sort of the held traces) happens once per many documents.
        let mut order: Vec<(u64, u64, TraceId)> = self
            .traces
            .iter()
            .map(|(id, held)| (held.last_seen, held.first_seen, id.clone()))
            .collect();
        order.sort_unstable_by_key(|&(last, first, _)| (last, first));
        let target = self.limit / 4 * 3;
        let mut out = Vec::new();
        for (_, _, id) in order {
            if self.spans <= target {
                break;
            }
            if let Some(held) = self.traces.remove(&id) {
                self.spans -= held.trace.spans.len();
                if self.released.len() >= 1_000_000 {
                    self.released.clear();
                }
                self.released.insert(id);
                out.push(held.trace);
            }
        }
        out
    }

    /// Everything still held, in order of first appearance.
    fn drain(&mut self) -> Vec<Trace> {
        let mut rest: Vec<HeldTrace> = self.traces.drain().map(|(_, held)| held).collect();
        rest.sort_unstable_by_key(|held| held.first_seen);
        self.spans = 0;
        rest.into_iter().map(|held| held.trace).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::read_traces;
    use super::*;
    use crate::Error;

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
    fn held_traces_past_the_limit_go_least_recently_extended_first() {
        let t = |id: u128, spans: u64| {
            let trace_id = TraceId::from_u128(id);
            let spans = (0..spans)
                .map(|s| Span::new(trace_id.clone(), SpanId::from_u64(s + 1), 0, 1))
                .collect();
            Trace::new(trace_id, spans)
        };
        let mut held = Held::new(4);
        let mut split = 0;
        assert!(held.absorb(vec![t(1, 3)], &mut split).is_empty());
        let released = held.absorb(vec![t(2, 3)], &mut split);
        assert_eq!(released.len(), 1);
        assert_eq!(released[0].trace_id, TraceId::from_u128(1));
        // Trace 1 goes on after it was handed over: a second part, counted.
        assert!(held.absorb(vec![t(1, 1)], &mut split).is_empty());
        assert_eq!(split, 1);
        let rest: Vec<_> = held.drain().into_iter().map(|t| t.trace_id).collect();
        assert_eq!(rest, [TraceId::from_u128(2), TraceId::from_u128(1)]);
        assert_eq!(held.spans, 0);
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
