//! Zipkin v2: merging span fragments and splitting shared client/server span ids.
//!
//! Zipkin reports one RPC as two spans with the same id (the client's, and the server's with
//! `shared: true`), and may report a span in fragments (one with the timing, one with only a
//! name). Fragments with the same id, service and side are merged; the server half of a shared
//! id gets an id of its own (`<id>-server`) and becomes the client's child, and the children
//! that name the shared id hang under the side whose service they ran in (the server's when
//! unsure). Spans with no timestamp after merging carry no timing and are counted, not kept.
//!
//! Each fragment is read straight into a [`Span`] plus a few bytes of what merging needs; the
//! fragments of one id are found by sorting a hash of the ids, so that a million spans need no
//! map of a million strings. Ids are compared as Zipkin writes them, case aside: `01` and `1`
//! are different ids.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::io::{self, Read};
use std::sync::Arc;

use super::Format;
use super::batch::{Batch, SEQUENTIAL};
use super::json::{DOCUMENT, Parser, Reader};
use super::lexer::Res;
use super::{Interner, ReadStats, micros_to_nanos};
use crate::model::{Origin, Span, SpanId, SpanKind, Status, Trace, TraceId};

/// Which half of an RPC a fragment reports: what decides which fragments are one span.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Side {
    Server,
    Client,
    Other,
    Unknown,
}

/// What merging needs of a fragment beyond its span.
#[derive(Clone, Copy, Debug)]
struct Fragment {
    side: Side,
    /// Digits of a hex id as written (so that `01` and `1` stay apart); 0 for text ids.
    id_len: u8,
    parent_len: u8,
    has_time: bool,
    kind_given: bool,
    /// The name was given and not empty.
    named: bool,
    /// Merged into another fragment, or carrying no time: not a span of its own.
    gone: bool,
}

/// The fragments of one document or one trace, in input order.
#[derive(Default)]
pub(super) struct Fragments {
    spans: Vec<Span>,
    fragments: Vec<Fragment>,
}

impl Fragments {
    /// Appends the fragments of `part`, read on their own (see `batch`).
    pub(super) fn append(&mut self, part: Fragments) {
        self.spans.extend(part.spans);
        self.fragments.extend(part.fragments);
    }
}

const ZIPKIN_SPAN_FIELDS: [&str; 11] = [
    "traceId",
    "id",
    "parentId",
    "kind",
    "name",
    "timestamp",
    "duration",
    "localEndpoint",
    "remoteEndpoint",
    "shared",
    "tags",
];

/// A Zipkin endpoint: its service, address and port.
#[derive(Default)]
struct Endpoint {
    service: Option<Arc<str>>,
    address: Option<Arc<str>>,
    port: Option<u16>,
}

impl<R: Read> Parser<R> {
    /// One Zipkin span object, appended to `out`.
    pub(super) fn zipkin_span(&mut self, out: &mut Fragments) -> Res<()> {
        const WHAT: &str = "a Zipkin span";
        self.lx.begin_object(WHAT)?;
        let mut trace_id: Option<TraceId> = None;
        let mut id: Option<(SpanId, u8)> = None;
        let mut parent: Option<(SpanId, u8)> = None;
        let mut kind: Option<String> = None;
        let mut named = false;
        let mut timestamp: Option<u64> = None;
        let mut duration: Option<u64> = None;
        let mut local = Endpoint::default();
        let mut remote: Option<Endpoint> = None;
        let mut shared = None;
        let mut error = false;
        let mut seen = 0u32;
        self.name.clear();
        let mut first = true;
        while let Some(key) = self.lx.next_key(&mut first, |key| match key {
            b"traceId" => 1,
            b"id" => 2,
            b"parentId" => 3,
            b"kind" => 4,
            b"name" => 5,
            b"timestamp" => 6,
            b"duration" => 7,
            b"localEndpoint" => 8,
            b"remoteEndpoint" => 9,
            b"shared" => 10,
            b"tags" => 11,
            _ => 0u32,
        })? {
            self.lx.first_time(&mut seen, key, &ZIPKIN_SPAN_FIELDS)?;
            match key {
                1 => trace_id = Some(self.zipkin_id(TraceId::parse_bytes)?.0),
                2 => id = Some(self.zipkin_id(SpanId::parse_bytes)?),
                3 => {
                    parent = match self.lx.string_or_null("a string")? {
                        Some(text) if !self.lx.bytes(text).is_empty() => {
                            Some(self.lowercase_id(text, SpanId::parse_bytes)?)
                        }
                        _ => None,
                    };
                }
                4 => {
                    kind = match self.lx.string_or_null("a string")? {
                        Some(text) => Some(self.lx.str(text)?.to_owned()),
                        None => None,
                    };
                }
                5 => {
                    if let Some(text) = self.lx.string_or_null("a string")? {
                        let text = self.lx.str(text)?;
                        self.name.push_str(text);
                        named = !text.is_empty();
                    }
                }
                6 => timestamp = Some(self.unsigned()?),
                7 => duration = Some(self.unsigned()?),
                8 => local = self.endpoint()?.unwrap_or_default(),
                9 => remote = self.endpoint()?,
                10 => shared = self.lx.boolean("a boolean")?,
                11 => error = self.zipkin_tags_have_error()?,
                _ => self.lx.skip_value()?,
            }
        }
        let Some(trace_id) = trace_id else {
            return Err(self.lx.error("missing field `traceId`"));
        };
        let Some((span_id, id_len)) = id else {
            return Err(self.lx.error("missing field `id`"));
        };
        let side = match kind.as_deref() {
            Some("SERVER") => Side::Server,
            _ if shared == Some(true) => Side::Server,
            Some("CLIENT") => Side::Client,
            Some(_) => Side::Other,
            None => Side::Unknown,
        };
        let span_kind = kind.as_deref().map(SpanKind::from_name).unwrap_or_default();
        let service = local.service.unwrap_or_else(|| self.names.get(""));
        let host = local.address;
        // Kept whatever the kind, until merging has settled the kind.
        let peer = remote.and_then(|e| e.peer(&mut self.peer));
        let origin = match &self.last_origin {
            Some(last)
                if last.trace_id == trace_id && last.service == service && last.host == host =>
            {
                last.clone()
            }
            _ => {
                let origin = Origin::new(trace_id, service, host);
                self.last_origin = Some(origin.clone());
                origin
            }
        };
        let start = timestamp.map_or(0, micros_to_nanos);
        let end = timestamp.map_or(0, |ts| {
            micros_to_nanos(ts.saturating_add(duration.unwrap_or(0)))
        });
        let label = self.names.label(&self.name, peer);
        let mut span = Span::from_parts(origin, label, span_id, start, end);
        span.set_kind(span_kind);
        if let Some((parent, _)) = &parent {
            span.set_parent(Some(parent.clone()));
        }
        if error {
            span.set_status(Status::Error);
        }
        out.spans.push(span);
        out.fragments.push(Fragment {
            side,
            id_len,
            parent_len: parent.map_or(0, |(_, len)| len),
            has_time: timestamp.is_some(),
            kind_given: kind.is_some(),
            named,
            gone: false,
        });
        Ok(())
    }

    /// A required Zipkin id, lower-cased (Zipkin ids are case-insensitive), with its length.
    fn zipkin_id<T>(&mut self, parse: fn(&[u8]) -> Option<T>) -> Res<(T, u8)> {
        let Some(text) = self.lx.string_or_null("a string")? else {
            return Err(self.lx.error("invalid type: null, expected a string"));
        };
        if self.lx.bytes(text).is_empty() {
            return Err(self
                .lx
                .error("invalid value: string \"\", expected a non-empty id"));
        }
        self.lowercase_id(text, parse)
    }

    fn lowercase_id<T>(
        &self,
        text: super::lexer::Text,
        parse: fn(&[u8]) -> Option<T>,
    ) -> Res<(T, u8)> {
        let bytes = self.lx.bytes(text);
        let len = u8::try_from(bytes.len()).unwrap_or(u8::MAX);
        let id = if bytes.iter().any(u8::is_ascii_uppercase) {
            parse(&bytes.to_ascii_lowercase())
        } else {
            parse(bytes)
        };
        let id = id.ok_or_else(|| self.lx.error("a string is not valid UTF-8"))?;
        Ok((id, len))
    }

    fn endpoint(&mut self) -> Res<Option<Endpoint>> {
        if !self.lx.begin_object("a Zipkin endpoint")? {
            return Ok(None);
        }
        let mut endpoint = Endpoint::default();
        let mut ipv4 = None;
        let mut ipv6 = None;
        let mut first = true;
        while let Some(key) = self.lx.next_key(&mut first, |key| match key {
            b"serviceName" => 1,
            b"ipv4" => 2,
            b"ipv6" => 3,
            b"port" => 4,
            _ => 0,
        })? {
            match key {
                1..=3 => {
                    let value = match self.lx.string_or_null("a string")? {
                        Some(text) => {
                            let text = self.lx.str(text)?;
                            Some(self.names.get(text))
                        }
                        None => None,
                    };
                    match key {
                        1 => endpoint.service = value,
                        2 => ipv4 = value,
                        _ => ipv6 = value,
                    }
                }
                4 => endpoint.port = self.port()?,
                _ => self.lx.skip_value()?,
            }
        }
        endpoint.address = ipv4.or(ipv6);
        Ok(Some(endpoint))
    }

    fn port(&mut self) -> Res<Option<u16>> {
        const WHAT: &str = "u16";
        match self.lx.peek_value(WHAT)? {
            b'n' => {
                self.lx.skip_value()?;
                Ok(None)
            }
            b'-' | b'0'..=b'9' => match self.lx.number()? {
                super::lexer::Number::Unsigned(n) => u16::try_from(n).map(Some).map_err(|_| {
                    self.lx
                        .error(format!("invalid value: integer `{n}`, expected {WHAT}"))
                }),
                other => Err(self.lx.error(format!(
                    "invalid value: {}, expected {WHAT}",
                    other.to_text()
                ))),
            },
            _ => Err(self.lx.invalid_type(WHAT)),
        }
    }

    /// Zipkin tags, an object of any values: whether it has the key `error`.
    fn zipkin_tags_have_error(&mut self) -> Res<bool> {
        if !self.lx.begin_object("a map of Zipkin tags")? {
            return Ok(false);
        }
        let mut error = false;
        let mut first = true;
        while let Some(is_error) = self.lx.next_key(&mut first, |key| key == b"error")? {
            error |= is_error;
            self.lx.skip_value()?;
        }
        Ok(error)
    }
}

impl Endpoint {
    /// The peer this endpoint names, written to `out`: its service, else its address (and
    /// port).
    fn peer(self, out: &mut String) -> Option<&str> {
        out.clear();
        if let Some(service) = self.service.filter(|s| !s.is_empty()) {
            out.push_str(&service);
            return Some(out);
        }
        let address = self.address.filter(|a| !a.is_empty())?;
        out.push_str(&address);
        if let Some(port) = self.port {
            out.push(':');
            out.push_str(itoa::Buffer::new().format(port));
        }
        Some(out)
    }
}

/// Converts the fragments of one or more traces, traces in order of first appearance.
pub(super) fn convert(
    fragments: Fragments,
    names: &mut Interner,
    stats: &mut ReadStats,
) -> Vec<Trace> {
    let Fragments { spans, fragments } = fragments;
    let Some(first) = spans.first() else {
        return Vec::new();
    };
    // Usually one trace: no regrouping.
    let first_id = first.trace_id().clone();
    if spans.iter().all(|s| *s.trace_id() == first_id) {
        return vec![convert_trace(first_id, spans, fragments, names, stats)];
    }
    let mut order: Vec<TraceId> = Vec::new();
    let mut groups: HashMap<TraceId, Fragments> = HashMap::new();
    for (span, fragment) in spans.into_iter().zip(fragments) {
        let group = groups.entry(span.trace_id().clone()).or_insert_with(|| {
            order.push(span.trace_id().clone());
            Fragments::default()
        });
        group.spans.push(span);
        group.fragments.push(fragment);
    }
    order
        .into_iter()
        .filter_map(|id| {
            let group = groups.remove(&id)?;
            Some(convert_trace(
                id,
                group.spans,
                group.fragments,
                names,
                stats,
            ))
        })
        .collect()
}

/// Shared ids renamed: the id (and its length) to the server half's new id, the server's service
/// and the client's.
type Renamed = HashMap<(SpanId, u8), (SpanId, Arc<str>, Arc<str>)>;

/// The fragments of one id with what decides which of them are one span.
fn same_key(a: &Span, fa: &Fragment, b: &Span, fb: &Fragment) -> bool {
    fa.side == fb.side && a.service() == b.service()
}

fn same_id(a: &Span, fa: &Fragment, b: &Span, fb: &Fragment) -> bool {
    fa.id_len == fb.id_len && a.span_id() == b.span_id()
}

fn convert_trace(
    trace_id: TraceId,
    mut spans: Vec<Span>,
    mut fragments: Vec<Fragment>,
    names: &mut Interner,
    stats: &mut ReadStats,
) -> Trace {
    // The fragments of each id next to each other: a hash of the id, then input order.
    let hasher = foldhash::fast::RandomState::default();
    let mut by_id: Vec<(u64, u32)> = spans
        .iter()
        .zip(&fragments)
        .enumerate()
        .map(|(i, (span, fragment))| {
            let hash = match span.span_id().key() {
                Ok(value) => hasher.hash_one((value, fragment.id_len)),
                Err(text) => hasher.hash_one(text),
            };
            (hash, i as u32)
        })
        .collect();
    by_id.sort_unstable();

    // Shared ids renamed: id (and its length) -> the server's new id, the server's service and
    // the client's.
    let mut renamed: Renamed = HashMap::new();
    let mut server_of: HashMap<u32, SpanId> = HashMap::new();
    // Merged entries created by fragments of unknown side, which come after all the others.
    let mut unknown_created: Vec<bool> = vec![false; spans.len()];
    let mut run: Vec<u32> = Vec::new();
    let mut start = 0;
    while start < by_id.len() {
        let hash = by_id[start].0;
        let mut stop = start + 1;
        while stop < by_id.len() && by_id[stop].0 == hash {
            stop += 1;
        }
        if stop - start > 1 {
            // One hash may hold several ids: each is handled on its own.
            let mut rest: Vec<u32> = by_id[start..stop].iter().map(|&(_, i)| i).collect();
            while let Some(&lead) = rest.first() {
                let l = lead as usize;
                run.clear();
                run.extend(rest.iter().copied().filter(|&i| {
                    same_id(
                        &spans[l],
                        &fragments[l],
                        &spans[i as usize],
                        &fragments[i as usize],
                    )
                }));
                rest.retain(|i| !run.contains(i));
                merge_run(
                    &run,
                    &mut spans,
                    &mut fragments,
                    &mut unknown_created,
                    names,
                );
                share_run(
                    &run,
                    &spans,
                    &fragments,
                    &unknown_created,
                    &mut renamed,
                    &mut server_of,
                );
            }
        } else {
            let i = by_id[start].1 as usize;
            unknown_created[i] = fragments[i].side == Side::Unknown;
        }
        start = stop;
    }
    drop(by_id);

    let mut out = Vec::with_capacity(spans.len());
    let mut kept_unknown = Vec::new();
    for (i, (mut span, fragment)) in spans.into_iter().zip(fragments).enumerate() {
        if fragment.gone {
            continue;
        }
        if !fragment.has_time {
            stats.skipped_spans += 1;
            continue;
        }
        let index = i as u32;
        if let Some(new_id) = server_of.get(&index) {
            let parent = span.span_id().clone();
            span.set_span_id(new_id.clone());
            span.set_parent(Some(parent));
        } else if !renamed.is_empty()
            && let Some(parent) = span.parent_id().cloned()
            && let Some((server_id, server_service, client_service)) =
                renamed.get(&(parent, fragment.parent_len))
        {
            // A child of a shared id: the client's only if it ran in the client's service and
            // not the server's.
            if !(span.service_arc() == client_service && span.service_arc() != server_service) {
                span.set_parent(Some(server_id.clone()));
            }
        }
        // Only client and producer spans name a peer.
        if span.peer().is_some() && !matches!(span.kind(), SpanKind::Client | SpanKind::Producer) {
            let name = span.name_arc().clone();
            span.set_label(names.label(&name, None));
        }
        if unknown_created[i] {
            kept_unknown.push(span);
        } else {
            out.push(span);
        }
    }
    out.extend(kept_unknown);
    Trace::new(trace_id, out)
}

/// Merges the fragments of one id: those of a known side with the same service and side into
/// the first of them; then each of unknown side into the one known fragment of its service, if
/// there is exactly one, else with the other unknown ones of its service.
fn merge_run(
    run: &[u32],
    spans: &mut [Span],
    fragments: &mut [Fragment],
    unknown_created: &mut [bool],
    names: &mut Interner,
) {
    let mut entries: Vec<u32> = Vec::new();
    let known_sides: Vec<u32> = run
        .iter()
        .copied()
        .filter(|&i| fragments[i as usize].side != Side::Unknown)
        .collect();
    for &i in &known_sides {
        let into = entries.iter().copied().find(|&e| {
            same_key(
                &spans[e as usize],
                &fragments[e as usize],
                &spans[i as usize],
                &fragments[i as usize],
            )
        });
        match into {
            Some(e) => absorb(spans, fragments, names, e, i),
            None => entries.push(i),
        }
    }
    let known = entries.len();
    for &i in run.iter().filter(|&&i| !known_sides.contains(&i)) {
        let service = spans[i as usize].service_arc().clone();
        let mut matches = entries[..known]
            .iter()
            .copied()
            .filter(|&e| *spans[e as usize].service_arc() == service);
        let into = match (matches.next(), matches.next()) {
            (Some(only), None) => Some(only),
            _ => entries[known..]
                .iter()
                .copied()
                .find(|&e| *spans[e as usize].service_arc() == service),
        };
        match into {
            Some(e) => absorb(spans, fragments, names, e, i),
            None => {
                entries.push(i);
                unknown_created[i as usize] = true;
            }
        }
    }
}

/// Fragment `from` merged into the entry `into`: what `into` lacks is taken from it.
fn absorb(
    spans: &mut [Span],
    fragments: &mut [Fragment],
    names: &mut Interner,
    into: u32,
    from: u32,
) {
    let (i, f) = (into as usize, from as usize);
    fragments[f].gone = true;
    let other = spans[f].clone();
    let fragment = fragments[f];
    let span = &mut spans[i];
    let entry = &mut fragments[i];
    if span.parent_id().is_none() && other.parent_id().is_some() {
        span.set_parent(other.parent_id().cloned());
        entry.parent_len = fragment.parent_len;
    }
    if !entry.kind_given && fragment.kind_given {
        span.set_kind(other.kind());
        entry.kind_given = true;
    }
    let named = if entry.named { &*span } else { &other };
    let with_peer = if span.peer().is_some() {
        &*span
    } else {
        &other
    };
    if !entry.named || span.peer().is_none() {
        let label = names.label(named.name(), with_peer.peer());
        entry.named |= fragment.named;
        span.set_label(label);
    }
    if fragment.has_time {
        let (start, end) = if entry.has_time {
            (
                span.start_ns().min(other.start_ns()),
                span.end_ns().max(other.end_ns()),
            )
        } else {
            (other.start_ns(), other.end_ns())
        };
        span.set_times(start, end);
        entry.has_time = true;
    }
    if span.host().is_none() && other.host().is_some() {
        span.set_origin(other.origin().clone());
    }
    if other.status() == Status::Error {
        span.set_status(Status::Error);
    }
}

/// A shared id among the merged entries of one id: the first server-side one (with a time)
/// becomes `<id>-server`, the child of the first other one.
fn share_run(
    run: &[u32],
    spans: &[Span],
    fragments: &[Fragment],
    unknown_created: &[bool],
    renamed: &mut Renamed,
    server_of: &mut HashMap<u32, SpanId>,
) {
    let live = |&&i: &&u32| {
        let f = &fragments[i as usize];
        !f.gone && f.has_time
    };
    let server = run
        .iter()
        .filter(live)
        .copied()
        .find(|&i| fragments[i as usize].side == Side::Server);
    // Entries in the order they were made: known sides first, then unknown.
    let client = run
        .iter()
        .filter(live)
        .copied()
        .filter(|&i| fragments[i as usize].side != Side::Server)
        .min_by_key(|&i| (unknown_created[i as usize], i));
    let (Some(server), Some(client)) = (server, client) else {
        return;
    };
    let (s, c) = (&spans[server as usize], &spans[client as usize]);
    let len = fragments[server as usize].id_len;
    let text = match s.span_id().as_u64() {
        Some(value) => format!("{value:0width$x}", width = usize::from(len)),
        None => s.span_id().to_string(),
    };
    let new_id = SpanId::parse(&format!("{text}-server"));
    renamed.insert(
        (s.span_id().clone(), len),
        (
            new_id.clone(),
            s.service_arc().clone(),
            c.service_arc().clone(),
        ),
    );
    server_of.insert(server, new_id);
}

impl<R: Read> Reader<'_, R> {
    /// An array of Zipkin spans, or of traces (arrays of spans): each trace is handed over at
    /// its closing bracket, loose spans at the end of the document.
    pub(super) fn zipkin_document(&mut self) -> Res<()> {
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
                        && crate::parallel::second_core()
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
                            && crate::parallel::second_core()
                            && self.p.zipkin_batches(&mut trace)?
                        {
                            continue;
                        }
                        self.p.zipkin_span(&mut trace)?;
                    }
                    for trace in convert(trace, &mut self.p.names, self.stats) {
                        self.emit(trace)?;
                    }
                }
                _ => return Err(self.p.lx.invalid_type(WHAT)),
            }
        }
        for trace in convert(loose, &mut self.p.names, self.stats) {
            self.emit(trace)?;
        }
        Ok(())
    }
}

impl<R: Read> Parser<R> {
    /// The rest of a long list of Zipkin spans, from an element's start (see `batch`).
    fn zipkin_batches(&mut self, out: &mut Fragments) -> Res<bool> {
        self.in_batches((), Parser::zipkin_batch, |part| {
            out.append(part);
            Ok(())
        })
    }
}

impl Parser<io::Empty> {
    /// A batch of Zipkin spans.
    fn zipkin_batch(&mut self, _: &mut (), batch: Batch) -> Res<Fragments> {
        let mut fragments = Fragments::default();
        self.each(batch, |p| p.zipkin_span(&mut fragments))?;
        Ok(fragments)
    }
}

#[cfg(test)]
mod tests {
    use super::super::read_traces;
    use super::*;

    fn convert_json(json: &str) -> (Vec<Trace>, ReadStats) {
        let mut traces = Vec::new();
        let stats = read_traces(json.as_bytes(), "z.json".as_ref(), None, |t| {
            traces.push(t);
            Ok(())
        })
        .unwrap();
        (traces, stats)
    }

    #[test]
    fn shared_ids_are_split_and_children_follow_their_service() {
        let (traces, stats) = convert_json(
            r#"[{"traceId":"a","id":"1","kind":"SERVER","timestamp":0,"duration":100,"localEndpoint":{"serviceName":"front"}},
                {"traceId":"a","id":"2","parentId":"1","kind":"CLIENT","timestamp":10,"duration":80,"localEndpoint":{"serviceName":"front"}},
                {"traceId":"a","id":"2","parentId":"1","kind":"SERVER","shared":true,"timestamp":15,"duration":70,"localEndpoint":{"serviceName":"back"}},
                {"traceId":"a","id":"3","parentId":"2","timestamp":20,"duration":10,"localEndpoint":{"serviceName":"back"}},
                {"traceId":"a","id":"3","parentId":"2","name":"late name","localEndpoint":{"serviceName":"back"}},
                {"traceId":"a","id":"4","parentId":"2","name":"untimed","localEndpoint":{"serviceName":"other"}}]"#,
        );
        assert_eq!(traces.len(), 1);
        let spans = &traces[0].spans;
        assert_eq!(spans.len(), 4);
        assert_eq!(stats.skipped_spans, 1);
        let server = spans
            .iter()
            .find(|s| s.service() == "back" && s.kind() == SpanKind::Server)
            .unwrap();
        assert_eq!(server.span_id().to_string(), "2-server");
        assert_eq!(server.parent_id(), Some(&SpanId::parse("2")));
        let leaf = spans
            .iter()
            .find(|s| s.span_id() == &SpanId::parse("3"))
            .unwrap();
        assert_eq!(leaf.parent_id(), Some(server.span_id()));
        assert_eq!(leaf.name(), "late name");
        assert_eq!((leaf.start_ns(), leaf.end_ns()), (20_000, 30_000));
    }
}
