//! What a traced HTTP request costs: the helper next to the baselines a user would otherwise
//! write (a hand-made SDK span with the same attributes, and the same span through `tracing` +
//! tracing-opentelemetry), all exporting to a no-op exporter through the SDK's simple
//! processor; the unsampled path; and sanitizing a typical 200-byte SQL statement.
//!
//! Run: `cargo bench -p lightstep-instrument --bench instrument -- --warm-up-time 1
//! --measurement-time 3`. Figures and how to read them: `docs/benchmarks.md`.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context as TaskContext, Poll, Waker};

use criterion::{Criterion, criterion_main};
use http::StatusCode;
use opentelemetry::trace::{
    FutureExt as _, Span as _, SpanContext, SpanId, SpanKind, TraceContextExt as _, TraceFlags,
    TraceId, TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider, SpanData, SpanExporter};
use opentelemetry_semantic_conventions::attribute as semconv;
use tracing::Instrument as _;
use tracing_subscriber::layer::SubscriberExt as _;

use lightstep_instrument::LightstepTracing;
use lightstep_instrument::propagation::HeaderExtractor;
use lightstep_instrument::sql::sanitize;

/// Drops every batch.
#[derive(Debug)]
struct NoopExporter;

impl SpanExporter for NoopExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        black_box(batch);
        Ok(())
    }
}

fn provider(sampler: Sampler) -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_simple_exporter(NoopExporter)
        .build()
}

/// Polls a future that completes without waiting (every future here does).
fn run<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut task = TaskContext::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut task) {
            return output;
        }
    }
}

/// The handler every variant wraps.
async fn handler() -> StatusCode {
    black_box(StatusCode::OK)
}

const ROUTE: &str = "/users/{id}";

fn http_spans(c: &mut Criterion) {
    let provider = provider(Sampler::AlwaysOn);
    let tracer = provider.tracer("bench");
    let tracing = LightstepTracing::from_provider(&provider);
    let mut group = c.benchmark_group("http_server_span");

    // (a) By hand, the bare minimum: the same name, kind and attributes, no current context.
    group.bench_function("raw_sdk_span", |b| {
        b.iter(|| {
            let mut span = tracer
                .span_builder(format!("{} {}", "GET", ROUTE))
                .with_kind(SpanKind::Server)
                .with_attributes(vec![
                    KeyValue::new(semconv::HTTP_REQUEST_METHOD, "GET"),
                    KeyValue::new(semconv::HTTP_ROUTE, ROUTE),
                ])
                .start(&tracer);
            let status = run(handler());
            span.set_attribute(KeyValue::new(
                semconv::HTTP_RESPONSE_STATUS_CODE,
                i64::from(status.as_u16()),
            ));
            span.end();
            status
        })
    });

    // (a') By hand, doing what the helper does: the span is current while the future runs.
    group.bench_function("raw_sdk_span_current", |b| {
        b.iter(|| {
            let span = tracer
                .span_builder(format!("{} {}", "GET", ROUTE))
                .with_kind(SpanKind::Server)
                .with_attributes(vec![
                    KeyValue::new(semconv::HTTP_REQUEST_METHOD, "GET"),
                    KeyValue::new(semconv::HTTP_ROUTE, ROUTE),
                ])
                .start(&tracer);
            let cx = Context::current_with_span(span);
            let status = run(handler().with_context(cx.clone()));
            let span = cx.span();
            span.set_attribute(KeyValue::new(
                semconv::HTTP_RESPONSE_STATUS_CODE,
                i64::from(status.as_u16()),
            ));
            span.end();
            status
        })
    });

    // (b) The helper.
    group.bench_function("helper", |b| {
        b.iter(|| run(tracing.trace_http(black_box("GET"), black_box(ROUTE), handler())))
    });

    // (c) The same span through `tracing` and tracing-opentelemetry.
    let subscriber = tracing_subscriber::registry().with(
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("bench-tracing"))
            .with_context_activation(true),
    );
    let dispatch = tracing::Dispatch::new(subscriber);
    tracing::dispatcher::with_default(&dispatch, || {
        group.bench_function("tracing_opentelemetry", |b| {
            b.iter(|| {
                let span = tracing::info_span!(
                    "GET /users/{id}",
                    otel.kind = "server",
                    http.request.method = "GET",
                    http.route = ROUTE,
                    http.response.status_code = tracing::field::Empty,
                );
                let status = run(handler().instrument(span.clone()));
                span.record("http.response.status_code", i64::from(status.as_u16()));
                status
            })
        });
    });
    group.finish();
}

fn http_request_spans(c: &mut Criterion) {
    let provider = provider(Sampler::AlwaysOn);
    let tracer = provider.tracer("bench");
    let tracing = LightstepTracing::from_provider(&provider);
    let request = http::Request::get("/users/42?q=rust")
        .header("host", "api.example.com:8443")
        .header("user-agent", "bench/1.0")
        .body(())
        .expect("request");
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let mut group = c.benchmark_group("http_server_span_from_request");

    // Every attribute the helper records for a full request, by hand: parent extracted from
    // the headers, span current.
    group.bench_function("raw_sdk_span_current", |b| {
        b.iter(|| {
            let uri = request.uri();
            // What a hand-written span reads from the request: user agent, host and port.
            let header = |name: http::header::HeaderName| {
                request
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
            };
            let user_agent = header(http::header::USER_AGENT);
            let (host, port) = header(http::header::HOST)
                .rsplit_once(':')
                .map_or(("", 0), |(h, p)| (h, p.parse::<i64>().unwrap_or(0)));
            let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
                propagator.extract(&HeaderExtractor(request.headers()))
            });
            let span = tracer
                .span_builder(format!("{} {}", request.method(), ROUTE))
                .with_kind(SpanKind::Server)
                .with_attributes(vec![
                    KeyValue::new(semconv::HTTP_REQUEST_METHOD, "GET"),
                    KeyValue::new(semconv::NETWORK_PROTOCOL_VERSION, "1.1"),
                    KeyValue::new(semconv::URL_SCHEME, "http"),
                    KeyValue::new(semconv::URL_PATH, uri.path().to_owned()),
                    KeyValue::new(semconv::URL_QUERY, uri.query().unwrap_or("").to_owned()),
                    KeyValue::new(semconv::USER_AGENT_ORIGINAL, user_agent.to_owned()),
                    KeyValue::new(semconv::SERVER_ADDRESS, host.to_owned()),
                    KeyValue::new(semconv::SERVER_PORT, port),
                    KeyValue::new(semconv::HTTP_ROUTE, ROUTE),
                ])
                .start_with_context(&tracer, &parent);
            let cx = parent.with_span(span);
            let status = run(handler().with_context(cx.clone()));
            let span = cx.span();
            span.set_attribute(KeyValue::new(
                semconv::HTTP_RESPONSE_STATUS_CODE,
                i64::from(status.as_u16()),
            ));
            span.end();
            status
        })
    });

    group.bench_function("helper", |b| {
        b.iter(|| {
            run(tracing
                .http_server(request.method().as_str())
                .with_request(black_box(&request))
                .with_route(ROUTE)
                .trace(handler()))
        })
    });
    group.finish();
}

fn unsampled(c: &mut Criterion) {
    // Root spans that the sampler drops (`AlwaysOff`): the SDK is asked every time.
    let provider = provider(Sampler::AlwaysOff);
    let tracer = provider.tracer("bench");
    let tracing = LightstepTracing::from_provider(&provider);
    let mut group = c.benchmark_group("unsampled_root");
    // The floor: the SDK's own cost of an unsampled span, with no attributes and no context.
    group.bench_function("raw_sdk_span_minimal", |b| {
        b.iter(|| {
            let mut span = tracer.start(black_box("GET /users/{id}"));
            span.end();
        })
    });
    group.bench_function("raw_sdk_span_current", |b| b.iter(|| raw_current(&tracer)));
    group.bench_function("helper", |b| {
        b.iter(|| run(tracing.trace_http(black_box("GET"), black_box(ROUTE), handler())))
    });
    group.finish();

    // Under an unsampled parent with the SDK's default parent-based sampler: the common
    // production case (the caller did not sample this trace).
    let provider = provider_parent_based();
    let tracer = provider.tracer("bench");
    let tracing = LightstepTracing::from_provider(&provider);
    let parent = Context::new().with_remote_span_context(SpanContext::new(
        TraceId::from(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef_u128),
        SpanId::from(0x0123_4567_89ab_cdef_u64),
        TraceFlags::default(),
        true,
        TraceState::default(),
    ));
    let _attached = parent.attach();
    let mut group = c.benchmark_group("unsampled_parent");
    group.bench_function("raw_sdk_span_current", |b| b.iter(|| raw_current(&tracer)));
    group.bench_function("helper", |b| {
        b.iter(|| run(tracing.trace_http(black_box("GET"), black_box(ROUTE), handler())))
    });
    group.finish();
}

fn provider_parent_based() -> SdkTracerProvider {
    provider(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
}

/// The hand-written span with the span current, as in `http_server_span/raw_sdk_span_current`.
fn raw_current(tracer: &SdkTracer) -> StatusCode {
    let span = tracer
        .span_builder(format!("{} {}", "GET", ROUTE))
        .with_kind(SpanKind::Server)
        .with_attributes(vec![
            KeyValue::new(semconv::HTTP_REQUEST_METHOD, "GET"),
            KeyValue::new(semconv::HTTP_ROUTE, ROUTE),
        ])
        .start(tracer);
    let cx = Context::current_with_span(span);
    let status = run(handler().with_context(cx.clone()));
    let span = cx.span();
    span.set_attribute(KeyValue::new(
        semconv::HTTP_RESPONSE_STATUS_CODE,
        i64::from(status.as_u16()),
    ));
    span.end();
    status
}

fn sql(c: &mut Criterion) {
    let statement = "SELECT u.id, u.name, o.total FROM users u JOIN orders o ON o.user_id = u.id \
                     WHERE u.email = 'alice@example.com' AND o.total > 42.50 \
                     AND o.status IN ('paid', 'shipped', 'done') ORDER BY o.created_at DESC LIMIT 10";
    assert!(
        (190..=220).contains(&statement.len()),
        "{}",
        statement.len()
    );
    c.bench_function("sql_sanitize_200_bytes", |b| {
        b.iter(|| sanitize(black_box(statement)))
    });
}

// `criterion_group!` makes an undocumented `pub fn`.
#[allow(missing_docs, unreachable_pub)]
mod group {
    use super::{http_request_spans, http_spans, sql, unsampled};

    criterion::criterion_group!(benches, http_spans, http_request_spans, unsampled, sql);
}

criterion_main!(group::benches);
