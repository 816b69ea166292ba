//! Jaeger JSON: the query API's `{"data": [trace, ...]}` and a single trace object
//! (`traceID`, `spans`, `processes`), with spans' references, tags and processes.
//!
//! A trace's spans may come before its `traceID` and `processes`: they are built with a
//! provisional origin and given their own when the trace is complete. A long list of spans is
//! read in batches on two threads (see `batch`).

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::Arc;

use super::batch::{Batch, SEQUENTIAL};
use super::json::{DocumentKey, Parser, Reader};
use super::lexer::Res;
use super::{Interner, Values, end_from_micros, micros_to_nanos, peer_from};
use crate::model::{
    Label, Link, Origin, ParentRelation, Span, SpanId, SpanKind, Status, Trace, TraceId,
};

impl<R: Read> Reader<'_, R> {
    /// Jaeger's `data`: an array of traces (or null), each handed over when complete.
    pub(super) fn jaeger_data(&mut self) -> Res<()> {
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
}

impl<R: Read> Parser<R> {
    pub(super) fn jaeger_trace_field(
        &mut self,
        trace: &mut JaegerTrace,
        key: DocumentKey,
    ) -> Res<()> {
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
                            && crate::parallel::second_core()
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
}

impl Parser<io::Empty> {
    /// A batch of the spans of a Jaeger trace, as a trace of its own to append to it.
    fn jaeger_batch(&mut self, _: &mut (), batch: Batch) -> Res<JaegerTrace> {
        let mut trace = JaegerTrace::default();
        self.each(batch, |p| p.jaeger_span(&mut trace))?;
        Ok(trace)
    }
}

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
pub(super) struct JaegerTrace {
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
    pub(super) fn finish(mut self, names: &mut Interner) -> Trace {
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
