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

/// The composite propagator for a list from the configuration; empty means none.
pub fn build_propagator(list: &[Propagator]) -> TextMapCompositePropagator {
    let propagators: Vec<Box<dyn TextMapPropagator + Send + Sync>> = list
        .iter()
        .map(|p| -> Box<dyn TextMapPropagator + Send + Sync> {
            match p {
                Propagator::TraceContext => Box::new(TraceContextPropagator::new()),
                Propagator::Baggage => Box::new(BaggagePropagator::new()),
                Propagator::B3 => Box::new(B3::single()),
                Propagator::B3Multi => Box::new(B3::multi()),
                Propagator::Jaeger => Box::new(Jaeger::new()),
                Propagator::Xray => Box::new(Xray::new()),
                Propagator::OtTrace => Box::new(OtTrace::new()),
                _ => Box::new(TextMapCompositePropagator::new(Vec::new())),
            }
        })
        .collect();
    TextMapCompositePropagator::new(propagators)
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

/// Writes the context's baggage as one header per entry, `{prefix}{key}`.
fn inject_baggage(cx: &Context, injector: &mut dyn Injector, prefix: &str) {
    for (k, (v, _)) in cx.baggage() {
        injector.set(&format!("{prefix}{k}"), v.to_string());
    }
}

/// Reads `{prefix}{key}` headers into the context's baggage.
fn extract_baggage(cx: Context, extractor: &dyn Extractor, prefix: &str) -> Context {
    let baggage: Vec<KeyValue> = extractor
        .keys()
        .into_iter()
        .filter_map(|k| {
            let key = k.strip_prefix(prefix)?;
            Some(KeyValue::new(key.to_owned(), extractor.get(k)?.to_owned()))
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
        let sampled = if sc.is_sampled() { "1" } else { "0" };
        if self.multi {
            injector.set("x-b3-traceid", sc.trace_id().to_string());
            injector.set("x-b3-spanid", sc.span_id().to_string());
            injector.set("x-b3-sampled", sampled.into());
        } else {
            injector.set(
                "b3",
                format!("{}-{}-{sampled}", sc.trace_id(), sc.span_id()),
            );
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let parsed = if let Some(single) = extractor.get("b3") {
            let mut parts = single.trim().split('-');
            let trace_id = parts.next().and_then(parse_trace_id);
            let span_id = parts.next().and_then(parse_span_id);
            let sampled = matches!(parts.next(), Some("1" | "d") | None);
            trace_id.zip(span_id).map(|(t, s)| (t, s, sampled))
        } else {
            let trace_id = extractor
                .get("x-b3-traceid")
                .and_then(|v| parse_trace_id(v.trim()));
            let span_id = extractor
                .get("x-b3-spanid")
                .and_then(|v| parse_span_id(v.trim()));
            let sampled = extractor.get("x-b3-flags").map(str::trim) == Some("1")
                || matches!(
                    extractor.get("x-b3-sampled").map(str::trim),
                    Some("1" | "true") | None
                );
            trace_id.zip(span_id).map(|(t, s)| (t, s, sampled))
        };
        match parsed {
            Some((t, s, sampled)) => cx.with_remote_span_context(remote(t, s, sampled)),
            None => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&self.fields)
    }
}

/// Jaeger's `uber-trace-id` header and `uberctx-*` baggage.
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
            let flags = u8::from(sc.is_sampled());
            injector.set(
                "uber-trace-id",
                format!("{}:{}:0:{flags}", sc.trace_id(), sc.span_id()),
            );
        }
        inject_baggage(cx, injector, "uberctx-");
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
                cx = cx.with_remote_span_context(remote(t, s, f & 1 == 1));
            }
        }
        extract_baggage(cx, extractor, "uberctx-")
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
        if !from_header || sc.trace_flags() == sc.trace_flags() & TraceFlags::SAMPLED {
            return extracted;
        }
        extracted.with_remote_span_context(SpanContext::new(
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags() & TraceFlags::SAMPLED,
            true,
            sc.trace_state().clone(),
        ))
    }

    fn fields(&self) -> FieldIter<'_> {
        self.inner.fields()
    }
}

/// OpenTracing's `ot-tracer-*` headers, as Lightstep's older tracers send them. The trace id is
/// written as its low 64 bits, which those tracers expect; 64-bit ids are read back zero-padded.
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
            injector.set("ot-tracer-traceid", trace[16..].to_owned());
            injector.set("ot-tracer-spanid", sc.span_id().to_string());
            injector.set("ot-tracer-sampled", sc.is_sampled().to_string());
        }
        inject_baggage(cx, injector, "ot-baggage-");
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
        extract_baggage(cx, extractor, "ot-baggage-")
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
