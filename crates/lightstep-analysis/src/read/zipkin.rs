//! Zipkin v2: merging span fragments and splitting shared client/server span ids.
//!
//! Zipkin reports one RPC as two spans with the same id (the client's, and the server's with
//! `shared: true`), and may report a span in fragments (one with the timing, one with only a
//! name). Fragments with the same id, service and side are merged; the server half of a shared
//! id gets an id of its own (`<id>-server`) and becomes the client's child, and the children
//! that name the shared id hang under the side whose service they ran in (the server's when
//! unsure). Spans with no timestamp after merging carry no timing and are counted, not kept.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;

use super::{Interner, ReadStats, micros_to_nanos};
use crate::model::{Span, SpanId, SpanKind, Status, Trace, TraceId};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ZipkinSpan {
    // Required by Zipkin's v2 model: the error names the field and where.
    #[serde(deserialize_with = "super::json::required_id")]
    trace_id: String,
    #[serde(deserialize_with = "super::json::required_id")]
    id: String,
    #[serde(default)]
    parent_id: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "super::json::optional_micros")]
    timestamp: Option<u64>,
    #[serde(default, deserialize_with = "super::json::optional_micros")]
    duration: Option<u64>,
    #[serde(default)]
    local_endpoint: Option<Endpoint>,
    #[serde(default)]
    remote_endpoint: Option<Endpoint>,
    #[serde(default)]
    shared: Option<bool>,
    #[serde(default)]
    tags: Option<HashMap<String, serde_json::Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Endpoint {
    #[serde(default)]
    service_name: Option<String>,
    #[serde(default)]
    ipv4: Option<String>,
    #[serde(default)]
    ipv6: Option<String>,
    #[serde(default)]
    port: Option<u16>,
}

impl Endpoint {
    /// The peer this endpoint names: its service, else its address (and port).
    fn peer(self) -> Option<String> {
        if let Some(service) = self.service_name.filter(|s| !s.is_empty()) {
            return Some(service);
        }
        let address = self.ipv4.or(self.ipv6).filter(|a| !a.is_empty())?;
        Some(match self.port {
            Some(port) => format!("{address}:{port}"),
            None => address,
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Side {
    Server,
    Client,
    Other,
    Unknown,
}

struct Merged {
    id: String,
    service: String,
    side: Side,
    parent: Option<String>,
    kind: Option<String>,
    name: Option<String>,
    start_us: Option<u64>,
    end_us: Option<u64>,
    host: Option<String>,
    peer: Option<String>,
    error: bool,
}

impl Merged {
    fn absorb(&mut self, span: ZipkinSpan) {
        if self.parent.is_none() {
            self.parent = span.parent_id.filter(|p| !p.is_empty());
        }
        if self.kind.is_none() {
            self.kind = span.kind;
        }
        if self.name.as_deref().is_none_or(str::is_empty) {
            self.name = span.name;
        }
        if let Some(ts) = span.timestamp {
            self.start_us = Some(self.start_us.map_or(ts, |s| s.min(ts)));
            let end = ts.saturating_add(span.duration.unwrap_or(0));
            self.end_us = Some(self.end_us.map_or(end, |e| e.max(end)));
        }
        if self.host.is_none() {
            self.host = span.local_endpoint.and_then(|e| e.ipv4.or(e.ipv6));
        }
        if self.peer.is_none() {
            self.peer = span.remote_endpoint.and_then(Endpoint::peer);
        }
        self.error |= span.tags.as_ref().is_some_and(|t| t.contains_key("error"));
    }
}

fn side(span: &ZipkinSpan) -> Side {
    match span.kind.as_deref() {
        Some("SERVER") => Side::Server,
        _ if span.shared == Some(true) => Side::Server,
        Some("CLIENT") => Side::Client,
        Some(_) => Side::Other,
        None => Side::Unknown,
    }
}

fn service_of(span: &ZipkinSpan) -> String {
    span.local_endpoint
        .as_ref()
        .and_then(|e| e.service_name.clone())
        .unwrap_or_default()
}

/// Converts the spans of one or more traces.
pub(super) fn convert(
    spans: Vec<ZipkinSpan>,
    names: &mut Interner,
    stats: &mut ReadStats,
) -> Vec<Trace> {
    let mut order: Vec<String> = Vec::new();
    let mut by_trace: HashMap<String, Vec<ZipkinSpan>> = HashMap::new();
    for span in spans {
        let key = span.trace_id.to_ascii_lowercase();
        by_trace
            .entry(key.clone())
            .or_insert_with(|| {
                order.push(key);
                Vec::new()
            })
            .push(span);
    }
    order
        .into_iter()
        .filter_map(|key| {
            let spans = by_trace.remove(&key)?;
            Some(convert_trace(&key, spans, names, stats))
        })
        .collect()
}

fn convert_trace(
    trace_key: &str,
    spans: Vec<ZipkinSpan>,
    names: &mut Interner,
    stats: &mut ReadStats,
) -> Trace {
    // Merge fragments of the same (id, service, side); fragments of unknown side join the one
    // known fragment of their id and service, if there is exactly one.
    let mut merged: Vec<Merged> = Vec::new();
    let mut index: HashMap<(String, String, Side), usize> = HashMap::new();
    let mut unknown: Vec<ZipkinSpan> = Vec::new();
    for span in spans {
        let side = side(&span);
        if side == Side::Unknown {
            unknown.push(span);
            continue;
        }
        let key = (span.id.to_ascii_lowercase(), service_of(&span), side);
        let slot = *index.entry(key.clone()).or_insert_with(|| {
            merged.push(empty(key.0.clone(), key.1.clone(), side));
            merged.len() - 1
        });
        if let Some(m) = merged.get_mut(slot) {
            m.absorb(span);
        }
    }
    for span in unknown {
        let id = span.id.to_ascii_lowercase();
        let service = service_of(&span);
        let matches: Vec<usize> = merged
            .iter()
            .enumerate()
            .filter(|(_, m)| m.id == id && m.service == service && m.side != Side::Unknown)
            .map(|(i, _)| i)
            .collect();
        let slot = match (matches.first(), matches.len()) {
            (Some(&only), 1) => only,
            _ => {
                let key = (id.clone(), service.clone(), Side::Unknown);
                *index.entry(key).or_insert_with(|| {
                    merged.push(empty(id, service, Side::Unknown));
                    merged.len() - 1
                })
            }
        };
        if let Some(m) = merged.get_mut(slot) {
            m.absorb(span);
        }
    }
    let before = merged.len();
    merged.retain(|m| m.start_us.is_some());
    stats.skipped_spans += before - merged.len();

    // Shared ids: the server half gets its own id and hangs under the client half.
    let mut sides_by_id: HashMap<&str, (Option<usize>, Option<usize>)> = HashMap::new();
    for (i, m) in merged.iter().enumerate() {
        let entry = sides_by_id.entry(m.id.as_str()).or_default();
        if m.side == Side::Server {
            entry.0.get_or_insert(i);
        } else {
            entry.1.get_or_insert(i);
        }
    }
    // id -> (server's new id, server's service, client's service)
    let mut renamed: HashMap<String, (String, String, String)> = HashMap::new();
    let mut server_of: HashMap<usize, String> = HashMap::new();
    for (id, (server, client)) in &sides_by_id {
        if let (Some(server), Some(client)) = (server, client) {
            let new_id = format!("{id}-server");
            let server_service = merged[*server].service.clone();
            let client_service = merged[*client].service.clone();
            renamed.insert(
                (*id).to_string(),
                (new_id.clone(), server_service, client_service),
            );
            server_of.insert(*server, new_id);
        }
    }
    drop(sides_by_id);

    let trace_id = TraceId::parse(trace_key);
    let mut out = Vec::with_capacity(merged.len());
    for (i, m) in merged.into_iter().enumerate() {
        let start = micros_to_nanos(m.start_us.unwrap_or(0));
        let end = micros_to_nanos(m.end_us.unwrap_or(0));
        let (span_id, parent) = match server_of.get(&i) {
            Some(new_id) => (SpanId::parse(new_id), Some(SpanId::parse(&m.id))),
            None => {
                let parent = m.parent.as_deref().map(|p| {
                    let p = p.to_ascii_lowercase();
                    match renamed.get(&p) {
                        // A child of a shared id: the client's only if it ran in the client's
                        // service and not the server's.
                        Some((server_id, server_service, client_service))
                            if !(m.service == *client_service && m.service != *server_service) =>
                        {
                            SpanId::parse(server_id)
                        }
                        _ => SpanId::parse(&p),
                    }
                });
                (SpanId::parse(&m.id), parent)
            }
        };
        let mut span = Span::new(trace_id.clone(), span_id, start, end)
            .with_name(names.get(m.name.as_deref().unwrap_or("")))
            .with_kind(
                m.kind
                    .as_deref()
                    .map(SpanKind::from_name)
                    .unwrap_or_default(),
            );
        span.set_parent(parent.filter(|p| !p.is_zero()));
        span.set_service(names.get(&m.service));
        span.set_host(m.host.map(|h| -> Arc<str> { names.get(&h) }));
        if matches!(span.kind(), SpanKind::Client | SpanKind::Producer)
            && let Some(peer) = &m.peer
        {
            span = span.with_peer(names.get(peer));
        }
        if m.error {
            span = span.with_status(Status::Error);
        }
        out.push(span);
    }
    Trace::new(trace_id, out)
}

fn empty(id: String, service: String, side: Side) -> Merged {
    Merged {
        id,
        service,
        side,
        parent: None,
        kind: None,
        name: None,
        start_us: None,
        end_us: None,
        host: None,
        peer: None,
        error: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(json: &str) -> Vec<ZipkinSpan> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn shared_ids_are_split_and_children_follow_their_service() {
        let input = spans(
            r#"[{"traceId":"a","id":"1","kind":"SERVER","timestamp":0,"duration":100,"localEndpoint":{"serviceName":"front"}},
                {"traceId":"a","id":"2","parentId":"1","kind":"CLIENT","timestamp":10,"duration":80,"localEndpoint":{"serviceName":"front"}},
                {"traceId":"a","id":"2","parentId":"1","kind":"SERVER","shared":true,"timestamp":15,"duration":70,"localEndpoint":{"serviceName":"back"}},
                {"traceId":"a","id":"3","parentId":"2","timestamp":20,"duration":10,"localEndpoint":{"serviceName":"back"}},
                {"traceId":"a","id":"3","parentId":"2","name":"late name","localEndpoint":{"serviceName":"back"}},
                {"traceId":"a","id":"4","parentId":"2","name":"untimed","localEndpoint":{"serviceName":"other"}}]"#,
        );
        let mut stats = ReadStats::default();
        let traces = convert(input, &mut Interner::default(), &mut stats);
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
