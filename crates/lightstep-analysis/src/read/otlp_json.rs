//! OTLP JSON: `resourceSpans`, their resources, scopes and spans, as the OpenTelemetry protocol
//! writes them in JSON (field names in lowerCamelCase or as in the proto, ids in hex, 64-bit
//! integers as strings or numbers, enums as numbers or names), and the traces of JSON Lines
//! held across lines until they are complete or the limit says to hand them over.
//!
//! A resource may come after its spans: the spans are built first and pointed at it when it
//! comes. A long list of spans is read in batches on two threads (see `batch`).

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::sync::Arc;

use lightstep_wire::schema::{
    INSTRUMENTATION_LIBRARY_SPANS_JSON, Msg, any_value, key_value, link, resource, resource_spans,
    scope_spans, span, status,
};

use super::batch::{Batch, SEQUENTIAL};
use super::json::Parser;
use super::lexer::{Number, Res};
use super::{Grouper, Origins, PEER_KEYS, Values, peer_from};
use crate::model::{Link, Origin, Span, SpanId, SpanKind, Status, Trace, TraceId};

impl<R: Read> Parser<R> {
    /// `resourceSpans`: each entry's spans go into the document's grouper.
    pub(super) fn resource_spans_list(&mut self, grouper: &mut Grouper) -> Res<()> {
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
            grouper.repoint(replaced, &origins);
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
                        && crate::parallel::second_core()
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
}

impl Parser<io::Empty> {
    /// The spans of a batch of OTLP spans.
    fn otlp_batch(&mut self, origins: &mut Origins, batch: Batch) -> Res<Vec<Span>> {
        let mut spans = Vec::with_capacity(batch.elements);
        self.each(batch, |p| {
            spans.push(p.otlp_span(origins)?);
            Ok(())
        })?;
        Ok(spans)
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

/// OTLP traces held across documents: one trace's spans are spread over several lines of a
/// JSON Lines file.
pub(super) struct Held {
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
    pub(super) fn new(limit: usize) -> Self {
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
    pub(super) fn absorb(&mut self, traces: Vec<Trace>, split: &mut usize) -> Vec<Trace> {
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
    pub(super) fn drain(&mut self) -> Vec<Trace> {
        let mut rest: Vec<HeldTrace> = self.traces.drain().map(|(_, held)| held).collect();
        rest.sort_unstable_by_key(|held| held.first_seen);
        self.spans = 0;
        rest.into_iter().map(|held| held.trace).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
