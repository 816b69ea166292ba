//! Propagators from `OTEL_PROPAGATORS`: W3C trace context and baggage from the SDK, AWS X-Ray
//! from opentelemetry-aws, and B3, Jaeger and OpenTracing (`ottrace`, used by Lightstep's older
//! tracers) implemented here, since no maintained crate offers them for this OpenTelemetry line.

use lightstep_config::Propagator;
use opentelemetry::baggage::BaggageExt;
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{
    Extractor, Injector, TextMapCompositePropagator, TextMapPropagator,
};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};

/// The composite propagator for a list from the configuration; empty means none. Each
/// propagator writes only header values without ASCII control characters, whatever it read.
pub fn build_propagator(list: &[Propagator]) -> TextMapCompositePropagator {
    let propagators: Vec<Box<dyn TextMapPropagator + Send + Sync>> = list
        .iter()
        .map(|p| -> Box<dyn TextMapPropagator + Send + Sync> {
            match p {
                Propagator::TraceContext => Box::new(HeaderSafe(TraceContextPropagator::new())),
                Propagator::Baggage => Box::new(HeaderSafe(BaggagePropagator::new())),
                Propagator::B3 => Box::new(HeaderSafe(B3::single())),
                Propagator::B3Multi => Box::new(HeaderSafe(B3::multi())),
                Propagator::Jaeger => Box::new(HeaderSafe(Jaeger::new())),
                Propagator::Xray => Box::new(HeaderSafe(Xray::new())),
                Propagator::OtTrace => Box::new(HeaderSafe(OtTrace::new())),
                _ => Box::new(TextMapCompositePropagator::new(Vec::new())),
            }
        })
        .collect();
    TextMapCompositePropagator::new(propagators)
}

/// A propagator that never injects a value holding an ASCII control character (tab aside), the
/// bytes HTTP forbids in a header value: such a value could split an outgoing header line. What
/// is injected was extracted from the caller's headers, and some formats decode before they
/// store: the SDK's W3C baggage propagator percent-decodes an entry's properties and writes them
/// back raw, so `;p=%0D%0Ax-evil:%201` would come out as a line break. The value is left out
/// instead, as `http::HeaderValue` would refuse it anyway.
#[derive(Debug)]
struct HeaderSafe<P>(P);

impl<P: TextMapPropagator> TextMapPropagator for HeaderSafe<P> {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        self.0.inject_context(cx, &mut NoControls(injector));
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        self.0.extract_with_context(cx, extractor)
    }

    fn fields(&self) -> FieldIter<'_> {
        self.0.fields()
    }
}

struct NoControls<'a>(&'a mut dyn Injector);

impl Injector for NoControls<'_> {
    fn set(&mut self, key: &str, value: String) {
        if !value.contains(|c: char| c.is_ascii_control() && c != '\t') {
            self.0.set(key, value);
        }
    }
}

fn parse_trace_id(hex: &str) -> Option<TraceId> {
    if hex.is_empty() || hex.len() > 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let id = TraceId::from_hex(&format!("{hex:0>32}")).ok()?;
    (id != TraceId::INVALID).then_some(id)
}

fn parse_span_id(hex: &str) -> Option<SpanId> {
    if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let id = SpanId::from_hex(&format!("{hex:0>16}")).ok()?;
    (id != SpanId::INVALID).then_some(id)
}

fn remote(trace_id: TraceId, span_id: SpanId, sampled: bool) -> SpanContext {
    let flags = if sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    SpanContext::new(trace_id, span_id, flags, true, TraceState::default())
}

/// The debug flag of B3 (`X-B3-Flags: 1`, sampling state `d`) and Jaeger (flags bit `0x02`):
/// "record this trace, and tell everyone downstream". It is kept in the [`Context`], next to the
/// trace it arrived with, rather than in the trace flags or the trace state: the SDK would copy
/// an extra trace flag into the OTLP `flags` of every span (where W3C Trace Context gives `0x02`
/// another meaning and X-Ray a third), and a trace state entry would travel in every
/// `tracestate` header to systems that know nothing of it. Contexts derived from the extracted
/// one (`parent.with_span(span)`, as the SDK's users and lightstep-instrument build them) keep
/// it; the trace id makes sure it is written back only for the trace it came with. See
/// `docs/adr/006-propagators-keep-what-they-carry.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DebugTrace(TraceId);

/// `cx` with the debug flag set for `trace_id`.
fn with_debug(cx: Context, trace_id: TraceId) -> Context {
    cx.with_value(DebugTrace(trace_id))
}

/// Whether the debug flag is to be written for `sc`, the span `cx` carries: it arrived with
/// this trace, and this span is sampled (debug implies sampled; a span this service chose not to
/// record does not claim it).
fn is_debug(cx: &Context, sc: &SpanContext) -> bool {
    sc.is_sampled() && cx.get::<DebugTrace>() == Some(&DebugTrace(sc.trace_id()))
}

/// How a format writes baggage values in its headers.
#[derive(Clone, Copy)]
enum BaggageValues {
    /// As they are (OpenTracing's `ot-baggage-*`).
    Raw,
    /// URL-encoded, as Jaeger's clients write `uberctx-*`: spaces arrive as `+` (Go's and
    /// Java's form encoding) or `%20`, and are written as `%20`, which every decoder reads.
    UrlEncoded,
}

/// What a URL-encoded value keeps as it is: RFC 3986's unreserved characters.
const BAGGAGE_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

impl BaggageValues {
    fn encode(self, value: &str) -> String {
        match self {
            Self::Raw => value.to_owned(),
            Self::UrlEncoded => {
                percent_encoding::utf8_percent_encode(value, BAGGAGE_VALUE).to_string()
            }
        }
    }

    /// The value as it was before encoding. One that does not decode to UTF-8 is kept as it
    /// came, as Jaeger's Go client does; a malformed escape (`%zz`) stays as written.
    fn decode(self, value: &str) -> String {
        match self {
            Self::Raw => value.to_owned(),
            Self::UrlEncoded => {
                let spaced = value.replace('+', " ");
                match percent_encoding::percent_decode_str(&spaced).decode_utf8() {
                    Ok(decoded) => decoded.into_owned(),
                    Err(_) => value.to_owned(),
                }
            }
        }
    }
}

/// Writes the context's baggage as one header per entry, `{prefix}{key}`.
fn inject_baggage(cx: &Context, injector: &mut dyn Injector, prefix: &str, values: BaggageValues) {
    for (k, (v, _)) in cx.baggage() {
        injector.set(&format!("{prefix}{k}"), values.encode(v.as_str().as_ref()));
    }
}

/// Reads `{prefix}{key}` headers into the context's baggage. The number and size of entries
/// kept are bounded by OpenTelemetry's `Baggage` (64 entries, 8 KiB).
fn extract_baggage(
    cx: Context,
    extractor: &dyn Extractor,
    prefix: &str,
    values: BaggageValues,
) -> Context {
    let baggage: Vec<KeyValue> = extractor
        .keys()
        .into_iter()
        .filter_map(|k| {
            let key = k.strip_prefix(prefix)?;
            let value = extractor.get(k)?;
            // A raw value goes out again as it came: one holding a control character (a carrier
            // other than HTTP can hold any) could split the outgoing header line, so it is not
            // taken. URL-encoded values are encoded again on the way out.
            if matches!(values, BaggageValues::Raw) && value.contains(char::is_control) {
                return None;
            }
            Some(KeyValue::new(key.to_owned(), values.decode(value)))
        })
        .collect();
    if baggage.is_empty() {
        cx
    } else {
        cx.with_baggage(baggage)
    }
}

/// Zipkin B3, single header (`b3`) or one header per field (`X-B3-*`).
#[derive(Debug)]
pub struct B3 {
    multi: bool,
    fields: Vec<String>,
}

impl B3 {
    /// The single-header form.
    pub fn single() -> Self {
        Self {
            multi: false,
            fields: vec!["b3".into()],
        }
    }

    /// The multi-header form.
    pub fn multi() -> Self {
        Self {
            multi: true,
            fields: ["x-b3-traceid", "x-b3-spanid", "x-b3-sampled", "x-b3-flags"]
                .map(String::from)
                .to_vec(),
        }
    }
}

impl TextMapPropagator for B3 {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let sc = span.span_context();
        if !sc.is_valid() {
            return;
        }
        let debug = is_debug(cx, sc);
        if self.multi {
            injector.set("x-b3-traceid", sc.trace_id().to_string());
            injector.set("x-b3-spanid", sc.span_id().to_string());
            // Debug implies an accept decision: B3 says not to send `X-B3-Sampled` with it.
            if debug {
                injector.set("x-b3-flags", "1".into());
            } else {
                injector.set(
                    "x-b3-sampled",
                    if sc.is_sampled() { "1" } else { "0" }.into(),
                );
            }
        } else {
            let state = match (debug, sc.is_sampled()) {
                (true, _) => "d",
                (false, true) => "1",
                (false, false) => "0",
            };
            injector.set("b3", format!("{}-{}-{state}", sc.trace_id(), sc.span_id()));
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let parsed = if let Some(single) = extractor.get("b3") {
            let mut parts = single.trim().split('-');
            let trace_id = parts.next().and_then(parse_trace_id);
            let span_id = parts.next().and_then(parse_span_id);
            let state = parts.next();
            let debug = state == Some("d");
            let sampled = debug || matches!(state, Some("1") | None);
            trace_id.zip(span_id).map(|(t, s)| (t, s, sampled, debug))
        } else {
            let trace_id = extractor
                .get("x-b3-traceid")
                .and_then(|v| parse_trace_id(v.trim()));
            let span_id = extractor
                .get("x-b3-spanid")
                .and_then(|v| parse_span_id(v.trim()));
            let debug = extractor.get("x-b3-flags").map(str::trim) == Some("1");
            let sampled = debug
                || matches!(
                    extractor.get("x-b3-sampled").map(str::trim),
                    Some("1" | "true") | None
                );
            trace_id.zip(span_id).map(|(t, s)| (t, s, sampled, debug))
        };
        match parsed {
            Some((t, s, sampled, debug)) => {
                let cx = cx.with_remote_span_context(remote(t, s, sampled));
                if debug { with_debug(cx, t) } else { cx }
            }
            None => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&self.fields)
    }
}

/// Bits of the flags field of Jaeger's `uber-trace-id`.
const JAEGER_SAMPLED: u8 = 0x01;
const JAEGER_DEBUG: u8 = 0x02;

/// Jaeger's `uber-trace-id` header and `uberctx-*` baggage (URL-encoded values).
#[derive(Debug)]
pub struct Jaeger {
    fields: Vec<String>,
}

impl Jaeger {
    /// The propagator.
    pub fn new() -> Self {
        Self {
            fields: vec!["uber-trace-id".into()],
        }
    }
}

impl Default for Jaeger {
    fn default() -> Self {
        Self::new()
    }
}

impl TextMapPropagator for Jaeger {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let sc = span.span_context();
        if sc.is_valid() {
            let flags = if is_debug(cx, sc) {
                JAEGER_SAMPLED | JAEGER_DEBUG
            } else {
                u8::from(sc.is_sampled())
            };
            injector.set(
                "uber-trace-id",
                format!("{}:{}:0:{flags:x}", sc.trace_id(), sc.span_id()),
            );
        }
        inject_baggage(cx, injector, "uberctx-", BaggageValues::UrlEncoded);
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let mut cx = cx.clone();
        if let Some(value) = extractor.get("uber-trace-id") {
            let value = value.replace("%3A", ":").replace("%3a", ":");
            let parts: Vec<&str> = value.trim().split(':').collect();
            if let [trace, span, _parent, flags] = parts[..]
                && let (Some(t), Some(s), Ok(f)) = (
                    parse_trace_id(trace),
                    parse_span_id(span),
                    u8::from_str_radix(flags, 16),
                )
            {
                // Jaeger's clients set debug only with sampled; debug alone is read as both,
                // as B3's debug is.
                let debug = f & JAEGER_DEBUG != 0;
                cx = cx.with_remote_span_context(remote(t, s, debug || f & JAEGER_SAMPLED != 0));
                if debug {
                    cx = with_debug(cx, t);
                }
            }
        }
        extract_baggage(cx, extractor, "uberctx-", BaggageValues::UrlEncoded)
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&self.fields)
    }
}

/// AWS X-Ray's `x-amzn-trace-id` header, through opentelemetry-aws's propagator.
///
/// One change to what that propagator extracts: a header without a sampling decision
/// (`Sampled=?` or none) marks the context with trace flag `0x02`, which the SDK copies into
/// every child span. That bit means "random trace id" to W3C Trace Context level 2 and would be
/// exported in each span's OTLP `flags`, and it makes the X-Ray propagator write `Sampled=?`
/// even for a span this service sampled. Here only the sampled flag is kept: no decision reads
/// as not sampled, as in OpenTelemetry Python's X-Ray propagator.
#[derive(Debug, Default)]
pub struct Xray {
    inner: opentelemetry_aws::trace::XrayPropagator,
}

impl Xray {
    /// The propagator.
    pub fn new() -> Self {
        Self::default()
    }
}

impl TextMapPropagator for Xray {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        self.inner.inject_context(cx, injector);
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let extracted = self.inner.extract_with_context(cx, extractor);
        let sc = extracted.span().span_context().clone();
        // Only what the header gave is changed, never a span of `cx`.
        let from_header = sc.is_valid() && sc != *cx.span().span_context();
        if !from_header {
            return extracted;
        }
        // opentelemetry-aws keeps the fields it does not know in the trace state, lower-cased,
        // and writes them back title-cased: `SAmpled=1` would leave as a second, conflicting
        // `Sampled=1` after the real decision. Another spelling of a field the header already
        // has is dropped.
        let mut state = sc.trace_state().clone();
        for reserved in ["root", "parent", "sampled"] {
            // Each spelling is an entry of its own: `PareNt` and `ParenT` are two.
            while state.get(reserved).is_some() {
                state = state.delete(reserved).unwrap_or_default();
            }
        }
        let flags = sc.trace_flags() & TraceFlags::SAMPLED;
        if flags == sc.trace_flags() && state == *sc.trace_state() {
            return extracted;
        }
        extracted.with_remote_span_context(SpanContext::new(
            sc.trace_id(),
            sc.span_id(),
            flags,
            true,
            state,
        ))
    }

    fn fields(&self) -> FieldIter<'_> {
        self.inner.fields()
    }
}

/// OpenTracing's `ot-tracer-*` headers, as Lightstep's older tracers send them. The trace id is
/// written as its low 64 bits, which those tracers expect (all 128 when the low half is zero);
/// 64-bit ids are read back zero-padded.
#[derive(Debug)]
pub struct OtTrace {
    fields: Vec<String>,
}

impl OtTrace {
    /// The propagator.
    pub fn new() -> Self {
        Self {
            fields: ["ot-tracer-traceid", "ot-tracer-spanid", "ot-tracer-sampled"]
                .map(String::from)
                .to_vec(),
        }
    }
}

impl Default for OtTrace {
    fn default() -> Self {
        Self::new()
    }
}

impl TextMapPropagator for OtTrace {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let sc = span.span_context();
        if sc.is_valid() {
            let trace = sc.trace_id().to_string();
            // The low half alone would be the invalid all-zero id: then the whole id is sent.
            let low = &trace[16..];
            let written = if low.bytes().all(|b| b == b'0') {
                trace.as_str()
            } else {
                low
            };
            injector.set("ot-tracer-traceid", written.to_owned());
            injector.set("ot-tracer-spanid", sc.span_id().to_string());
            injector.set("ot-tracer-sampled", sc.is_sampled().to_string());
        }
        inject_baggage(cx, injector, "ot-baggage-", BaggageValues::Raw);
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let mut cx = cx.clone();
        let trace = extractor
            .get("ot-tracer-traceid")
            .and_then(|v| parse_trace_id(v.trim()));
        let span = extractor
            .get("ot-tracer-spanid")
            .and_then(|v| parse_span_id(v.trim()));
        if let (Some(t), Some(s)) = (trace, span) {
            let sampled = !matches!(
                extractor.get("ot-tracer-sampled").map(str::trim),
                Some("false" | "0")
            );
            cx = cx.with_remote_span_context(remote(t, s, sampled));
        }
        extract_baggage(cx, extractor, "ot-baggage-", BaggageValues::Raw)
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&self.fields)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn context() -> Context {
        let sc = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        );
        Context::new()
            .with_remote_span_context(sc)
            .with_baggage([KeyValue::new("tenant", "acme")])
    }

    fn round_trip(p: &dyn TextMapPropagator) -> (HashMap<String, String>, Context) {
        let mut carrier = HashMap::new();
        p.inject_context(&context(), &mut carrier);
        let cx = p.extract_with_context(&Context::new(), &carrier);
        (carrier, cx)
    }

    #[test]
    fn xray_fields_spelt_another_way_do_not_come_back_twice() {
        let carrier: HashMap<String, String> = [(
            "x-amzn-trace-id".to_owned(),
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;SAmpled=1;Self=1-a;\
             PareNt=53993;ParenT=53994"
                .to_owned(),
        )]
        .into_iter()
        .collect();
        let cx = Xray::new().extract_with_context(&Context::new(), &carrier);
        let mut out = HashMap::new();
        Xray::new().inject_context(&cx, &mut out);
        let header = &out["x-amzn-trace-id"];
        assert_eq!(
            header.to_ascii_lowercase().matches("sampled=").count(),
            1,
            "{header}"
        );
        assert!(
            header.contains("Self=1-a"),
            "other fields are kept: {header}"
        );
    }

    #[test]
    fn decoded_control_characters_are_never_injected() {
        // The SDK's W3C baggage propagator decodes `%0D%0A` in properties and writes it raw.
        let carrier: HashMap<String, String> = [(
            "baggage".to_owned(),
            "k=v;p=%0D%0Ax-injected:%201".to_owned(),
        )]
        .into_iter()
        .collect();
        let propagator = build_propagator(&[Propagator::Baggage]);
        let cx = propagator.extract_with_context(&Context::new(), &carrier);
        let mut bare = HashMap::new();
        BaggagePropagator::new().inject_context(&cx, &mut bare);
        assert!(
            bare["baggage"].contains("\r\n"),
            "the SDK no longer writes it raw: {bare:?}"
        );
        let mut out = HashMap::new();
        propagator.inject_context(&cx, &mut out);
        assert!(!out.contains_key("baggage"), "{out:?}");
        // Clean values pass.
        let carrier: HashMap<String, String> = [("baggage".to_owned(), "k=v;p=1".to_owned())]
            .into_iter()
            .collect();
        let cx = propagator.extract_with_context(&Context::new(), &carrier);
        let mut out = HashMap::new();
        propagator.inject_context(&cx, &mut out);
        assert_eq!(out["baggage"], "k=v;p=1");
    }

    #[test]
    fn raw_baggage_with_control_characters_is_not_passed_on() {
        let carrier: HashMap<String, String> = [
            ("ot-baggage-ok", "fine value"),
            ("ot-baggage-split", "a\r\nx-injected: 1"),
            ("ot-baggage-nul", "a\0b"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let cx = OtTrace::new().extract_with_context(&Context::new(), &carrier);
        let mut out = HashMap::new();
        OtTrace::new().inject_context(&cx, &mut out);
        assert_eq!(
            out.get("ot-baggage-ok").map(String::as_str),
            Some("fine value")
        );
        assert!(!out.contains_key("ot-baggage-split"), "{out:?}");
        assert!(!out.contains_key("ot-baggage-nul"), "{out:?}");
    }

    #[test]
    fn b3_single_and_multi_round_trip() {
        let (carrier, cx) = round_trip(&B3::single());
        assert_eq!(
            carrier["b3"],
            "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1"
        );
        assert_eq!(
            cx.span().span_context().span_id().to_string(),
            "00f067aa0ba902b7"
        );
        let (carrier, cx) = round_trip(&B3::multi());
        assert_eq!(carrier["x-b3-sampled"], "1");
        assert!(cx.span().span_context().is_sampled());
        // 64-bit trace ids are padded.
        let carrier: HashMap<String, String> = [(
            "b3".to_owned(),
            "a3ce929d0e0e4736-00f067aa0ba902b7-0".to_owned(),
        )]
        .into();
        let cx = B3::single().extract_with_context(&Context::new(), &carrier);
        assert_eq!(
            cx.span().span_context().trace_id().to_string(),
            "0000000000000000a3ce929d0e0e4736"
        );
        assert!(!cx.span().span_context().is_sampled());
    }

    #[test]
    fn jaeger_round_trip_with_baggage() {
        let (carrier, cx) = round_trip(&Jaeger::new());
        assert_eq!(
            carrier["uber-trace-id"],
            "4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7:0:1"
        );
        assert_eq!(carrier["uberctx-tenant"], "acme");
        assert!(cx.span().span_context().is_valid());
        assert_eq!(
            cx.baggage().get("tenant").map(|v| v.to_string()),
            Some("acme".into())
        );
    }

    fn carrier(entries: &[(&str, &str)]) -> HashMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SPAN: &str = "00f067aa0ba902b7";

    /// Extracts `incoming` with `from`, makes a child span as an application would, and injects
    /// its context with `to`: what this service sends downstream.
    fn relay(
        from: &dyn TextMapPropagator,
        incoming: &HashMap<String, String>,
        to: &dyn TextMapPropagator,
    ) -> (HashMap<String, String>, SpanContext) {
        let parent = from.extract_with_context(&Context::new(), incoming);
        assert!(parent.span().span_context().is_sampled(), "{incoming:?}");
        let child = child_of(&parent);
        let sc = child.span().span_context().clone();
        assert_eq!(sc.trace_id().to_string(), TRACE);
        // The flag travels in the context, not in the trace flags the SDK exports.
        assert_eq!(sc.trace_flags(), TraceFlags::SAMPLED);
        let mut outgoing = HashMap::new();
        to.inject_context(&child, &mut outgoing);
        (outgoing, sc)
    }

    #[test]
    fn b3_debug_is_kept_and_passed_on_in_both_forms() {
        let single = carrier(&[("b3", &format!("{TRACE}-{SPAN}-d"))]);
        let multi = carrier(&[
            ("x-b3-traceid", TRACE),
            ("x-b3-spanid", SPAN),
            ("x-b3-flags", "1"),
        ]);
        // Debug wins over a sampled header that says no, and implies sampled.
        let multi_with_no = {
            let mut c = multi.clone();
            c.insert("x-b3-sampled".into(), "0".into());
            c
        };
        for incoming in [&single, &multi, &multi_with_no] {
            let (out, sc) = relay(&B3::single(), incoming, &B3::single());
            assert_eq!(
                out["b3"],
                format!("{TRACE}-{}-d", sc.span_id()),
                "{incoming:?}"
            );
            let (out, sc) = relay(&B3::multi(), incoming, &B3::multi());
            assert_eq!(out["x-b3-traceid"], TRACE);
            assert_eq!(out["x-b3-spanid"], sc.span_id().to_string());
            assert_eq!(out.get("x-b3-flags").map(String::as_str), Some("1"));
            assert!(!out.contains_key("x-b3-sampled"), "{out:?}");
        }
        // Without debug, nothing changes.
        let plain = carrier(&[("b3", &format!("{TRACE}-{SPAN}-1"))]);
        let (out, sc) = relay(&B3::single(), &plain, &B3::multi());
        assert_eq!(out["x-b3-sampled"], "1");
        assert!(!out.contains_key("x-b3-flags"));
        let (out, _) = relay(
            &B3::multi(),
            &carrier(&[
                ("x-b3-traceid", TRACE),
                ("x-b3-spanid", SPAN),
                ("x-b3-sampled", "1"),
            ]),
            &B3::single(),
        );
        assert!(out["b3"].ends_with("-1"), "{out:?} {sc:?}");
    }

    #[test]
    fn debug_is_written_only_for_the_trace_it_came_with() {
        let parent = B3::single().extract_with_context(
            &Context::new(),
            &carrier(&[("b3", &format!("{TRACE}-{SPAN}-d"))]),
        );
        // A span of another trace in a context derived from the debug one.
        let other = parent.with_remote_span_context(SpanContext::new(
            TraceId::from_hex("a3ce929d0e0e47364bf92f3577b34da6").unwrap(),
            SpanId::from_hex(SPAN).unwrap(),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ));
        let mut out = HashMap::new();
        B3::single().inject_context(&other, &mut out);
        assert!(out["b3"].ends_with("-1"), "{out:?}");
        // A span of the same trace this service chose not to sample claims no debug either.
        let unsampled = child_with(&parent, opentelemetry_sdk::trace::Sampler::AlwaysOff);
        let mut out = HashMap::new();
        B3::multi().inject_context(&unsampled, &mut out);
        assert_eq!(out.get("x-b3-sampled").map(String::as_str), Some("0"));
        assert!(!out.contains_key("x-b3-flags"), "{out:?}");
        // Other formats do not carry it.
        let child = child_of(&parent);
        let mut out = HashMap::new();
        TraceContextPropagator::new().inject_context(&child, &mut out);
        assert!(out["traceparent"].ends_with("-01"), "{out:?}");
    }

    #[test]
    fn jaeger_debug_is_kept_and_passed_on() {
        for flags in ["3", "03", "2"] {
            let incoming = carrier(&[("uber-trace-id", &format!("{TRACE}:{SPAN}:0:{flags}"))]);
            let (out, sc) = relay(&Jaeger::new(), &incoming, &Jaeger::new());
            assert_eq!(
                out["uber-trace-id"],
                format!("{TRACE}:{}:0:3", sc.span_id()),
                "flags {flags}"
            );
            // Debug from Jaeger is debug for B3 too.
            let (out, _) = relay(&Jaeger::new(), &incoming, &B3::single());
            assert!(out["b3"].ends_with("-d"), "{out:?}");
        }
        let incoming = carrier(&[("uber-trace-id", &format!("{TRACE}:{SPAN}:0:1"))]);
        let (out, sc) = relay(&Jaeger::new(), &incoming, &Jaeger::new());
        assert_eq!(
            out["uber-trace-id"],
            format!("{TRACE}:{}:0:1", sc.span_id())
        );
    }

    #[test]
    fn jaeger_baggage_values_are_url_decoded_and_encoded() {
        let incoming = carrier(&[
            ("uber-trace-id", &format!("{TRACE}:{SPAN}:0:1")),
            // Go's and Java's Jaeger clients write a space as `+`, JavaScript's as `%20`.
            ("uberctx-user", "J%C3%B6rg+M%C3%BCller%2C%20a%3Db%2Bc"),
            ("uberctx-plain", "acme"),
            // Not valid percent-encoded UTF-8: kept as it came.
            ("uberctx-odd", "100%zz"),
            ("uberctx-latin1", "%ff"),
        ]);
        let cx = Jaeger::new().extract_with_context(&Context::new(), &incoming);
        let value = |k: &str| cx.baggage().get(k).map(|v| v.to_string());
        assert_eq!(value("user").as_deref(), Some("Jörg Müller, a=b+c"));
        assert_eq!(value("plain").as_deref(), Some("acme"));
        assert_eq!(value("odd").as_deref(), Some("100%zz"));
        assert_eq!(value("latin1").as_deref(), Some("%ff"));
        let mut out = HashMap::new();
        Jaeger::new().inject_context(&cx, &mut out);
        assert_eq!(
            out["uberctx-user"],
            "J%C3%B6rg%20M%C3%BCller%2C%20a%3Db%2Bc"
        );
        assert_eq!(out["uberctx-plain"], "acme");
        // What is written reads back as it was.
        let back = Jaeger::new().extract_with_context(&Context::new(), &out);
        assert_eq!(
            back.baggage().get("user").map(|v| v.to_string()).as_deref(),
            Some("Jörg Müller, a=b+c")
        );
    }

    #[test]
    fn ottrace_round_trip() {
        let (carrier, cx) = round_trip(&OtTrace::new());
        assert_eq!(carrier["ot-tracer-traceid"], "a3ce929d0e0e4736");
        assert_eq!(carrier["ot-tracer-sampled"], "true");
        assert_eq!(carrier["ot-baggage-tenant"], "acme");
        assert_eq!(
            cx.span().span_context().trace_id().to_string(),
            "0000000000000000a3ce929d0e0e4736"
        );
    }

    /// A span of a real SDK pipeline with `sampler`, as an application makes one: the child of
    /// `parent`, in a context derived from it.
    fn child_with(parent: &Context, sampler: opentelemetry_sdk::trace::Sampler) -> Context {
        use opentelemetry::trace::{Tracer as _, TracerProvider as _};
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_sampler(sampler)
            .build();
        let span = provider.tracer("test").start_with_context("child", parent);
        parent.with_span(span)
    }

    /// [`child_with`] the default sampler, `parentbased_always_on`.
    fn child_of(parent: &Context) -> Context {
        child_with(
            parent,
            opentelemetry_sdk::trace::Sampler::ParentBased(Box::new(
                opentelemetry_sdk::trace::Sampler::AlwaysOn,
            )),
        )
    }

    #[test]
    fn xray_round_trip() {
        let (carrier, cx) = round_trip(&Xray::new());
        assert_eq!(
            carrier["x-amzn-trace-id"],
            "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1"
        );
        let sc = cx.span().span_context().clone();
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
        assert!(sc.is_sampled() && sc.is_remote());
        // The example of AWS's documentation, not sampled.
        let carrier: HashMap<String, String> = [(
            "x-amzn-trace-id".to_owned(),
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0".to_owned(),
        )]
        .into();
        let cx = Xray::new().extract_with_context(&Context::new(), &carrier);
        let sc = cx.span().span_context().clone();
        assert_eq!(
            sc.trace_id().to_string(),
            "5759e988bd862e3fe1be46a994272793"
        );
        assert_eq!(sc.span_id().to_string(), "53995c3f42cd8ad8");
        assert!(!sc.is_sampled());
    }

    #[test]
    fn xray_without_a_decision_leaves_no_stray_trace_flag() {
        for header in [
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=?",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
        ] {
            let carrier: HashMap<String, String> =
                [("x-amzn-trace-id".to_owned(), header.to_owned())].into();
            let cx = Xray::new().extract_with_context(&Context::new(), &carrier);
            let sc = cx.span().span_context().clone();
            assert!(sc.is_valid(), "{header}");
            assert_eq!(sc.trace_flags(), TraceFlags::default(), "{header}");
        }
        // A span this service samples under such a parent (its sampler decides alone) says so
        // downstream, and its exported flags carry no bit but `sampled`.
        let carrier: HashMap<String, String> = [(
            "x-amzn-trace-id".to_owned(),
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=?".to_owned(),
        )]
        .into();
        let parent = Xray::new().extract_with_context(&Context::new(), &carrier);
        let child = child_with(&parent, opentelemetry_sdk::trace::Sampler::AlwaysOn);
        assert_eq!(
            child.span().span_context().trace_flags(),
            TraceFlags::SAMPLED
        );
        let mut out = HashMap::new();
        Xray::new().inject_context(&child, &mut out);
        assert!(out["x-amzn-trace-id"].ends_with("Sampled=1"), "{out:?}");
    }

    #[test]
    fn otel_propagators_xray_reaches_the_pipelines_propagator() {
        let config = lightstep_config::LightstepConfig::builder()
            .with_env(
                lightstep_config::EnvSnapshot::empty()
                    .with("OTEL_PROPAGATORS", "xray")
                    .with("OTEL_TRACES_EXPORTER", "none"),
            )
            .build()
            .expect("xray is a propagator");
        let exporter = crate::LightstepExporter::new(config).unwrap();
        let propagator = exporter.propagator();
        let incoming: HashMap<String, String> = [(
            "x-amzn-trace-id".to_owned(),
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1".to_owned(),
        )]
        .into();
        let parent = propagator.extract(&incoming);
        let child = child_of(&parent);
        let mut outgoing = HashMap::new();
        propagator.inject_context(&child, &mut outgoing);
        let child_id = child.span().span_context().span_id();
        assert_eq!(
            outgoing["x-amzn-trace-id"],
            format!("Root=1-5759e988-bd862e3fe1be46a994272793;Parent={child_id};Sampled=1")
        );
    }

    #[test]
    fn garbage_is_ignored() {
        for (k, v) in [
            ("b3", "zz-yy-1"),
            ("uber-trace-id", "1:2"),
            ("ot-tracer-traceid", "not-hex"),
            ("x-b3-traceid", "00000000000000000000000000000000"),
            (
                "x-amzn-trace-id",
                "Root=1-zz;Parent=53995c3f42cd8ad8;Sampled=1",
            ),
            (
                "x-amzn-trace-id",
                "Root=1-00000000-000000000000000000000000;Parent=53995c3f42cd8ad8",
            ),
        ] {
            let carrier: HashMap<String, String> = [(k.to_owned(), v.to_owned())].into();
            for p in [
                &B3::single() as &dyn TextMapPropagator,
                &B3::multi(),
                &Jaeger::new(),
                &OtTrace::new(),
                &Xray::new(),
            ] {
                let cx = p.extract_with_context(&Context::new(), &carrier);
                assert!(!cx.span().span_context().is_valid(), "{k}={v}");
            }
        }
    }
}
