//! The speed goals as ratios, measured so that a busy machine does not skew them: each
//! contender runs in short batches, interleaved round by round with its baseline, and the
//! median of the per-round ratios is reported (load that comes and goes hits both sides of a
//! round alike). Criterion's absolute figures are in `benches/instrument.rs`.
//!
//! Run: `cargo bench -p lightstep-instrument --bench ratios`.

#![allow(clippy::print_stdout)] // a benchmark report

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Instant;

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

fn run<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut task = TaskContext::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut task) {
            return output;
        }
    }
}

async fn handler() -> StatusCode {
    black_box(StatusCode::OK)
}

const ROUTE: &str = "/users/{id}";
const ROUNDS: usize = 41;
const BATCH: u32 = 20_000;

/// Nanoseconds per call of `f`, over one batch.
fn batch(f: &mut dyn FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..BATCH {
        f();
    }
    start.elapsed().as_nanos() as f64 / f64::from(BATCH)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Interleaves `contender` with `baseline`; prints medians and the median ratio.
fn compare(label: &str, baseline: &mut dyn FnMut(), contender: &mut dyn FnMut()) {
    // Warm up both.
    batch(baseline);
    batch(contender);
    let (mut base, mut cont, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        // Alternate which side goes first.
        let (b, c) = if round % 2 == 0 {
            let b = batch(baseline);
            (b, batch(contender))
        } else {
            let c = batch(contender);
            (batch(baseline), c)
        };
        base.push(b);
        cont.push(c);
        ratios.push(c / b);
    }
    println!(
        "{label:<58} baseline {:>8.1} ns  contender {:>8.1} ns  ratio {:.2}",
        median(&mut base),
        median(&mut cont),
        median(&mut ratios)
    );
}

fn raw(tracer: &SdkTracer, current: bool) -> StatusCode {
    let span = tracer
        .span_builder(format!("{} {}", "GET", ROUTE))
        .with_kind(SpanKind::Server)
        .with_attributes(vec![
            KeyValue::new(semconv::HTTP_REQUEST_METHOD, "GET"),
            KeyValue::new(semconv::HTTP_ROUTE, ROUTE),
        ])
        .start(tracer);
    let cx = Context::current_with_span(span);
    let status = if current {
        run(handler().with_context(cx.clone()))
    } else {
        run(handler())
    };
    let span = cx.span();
    span.set_attribute(KeyValue::new(
        semconv::HTTP_RESPONSE_STATUS_CODE,
        i64::from(status.as_u16()),
    ));
    span.end();
    status
}

fn main() {
    let sampled = provider(Sampler::AlwaysOn);
    let tracer = sampled.tracer("bench");
    let tracing = LightstepTracing::from_provider(&sampled);
    let helper = || {
        black_box(run(tracing.trace_http(
            black_box("GET"),
            black_box(ROUTE),
            handler(),
        )));
    };

    compare(
        "helper vs raw SDK span (not current)",
        &mut || {
            black_box(raw(&tracer, false));
        },
        &mut { helper },
    );
    compare(
        "helper vs raw SDK span made current (same behaviour)",
        &mut || {
            black_box(raw(&tracer, true));
        },
        &mut { helper },
    );

    let subscriber = tracing_subscriber::registry().with(
        tracing_opentelemetry::layer()
            .with_tracer(sampled.tracer("bench-tracing"))
            .with_context_activation(true),
    );
    let dispatch = tracing::Dispatch::new(subscriber);
    tracing::dispatcher::with_default(&dispatch, || {
        compare(
            "helper vs tracing + tracing-opentelemetry",
            &mut || {
                let span = tracing::info_span!(
                    "GET /users/{id}",
                    otel.kind = "server",
                    http.request.method = "GET",
                    http.route = ROUTE,
                    http.response.status_code = tracing::field::Empty,
                );
                let status = run(handler().instrument(span.clone()));
                span.record("http.response.status_code", i64::from(status.as_u16()));
                black_box(status);
            },
            &mut { helper },
        );
    });

    let request = http::Request::get("/users/42?q=rust")
        .header("host", "api.example.com:8443")
        .header("user-agent", "bench/1.0")
        .body(())
        .expect("request");
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    compare(
        "helper from a request vs raw SDK span, same attributes",
        &mut || {
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
            black_box(status);
        },
        &mut || {
            black_box(run(tracing
                .http_server(request.method().as_str())
                .with_request(black_box(&request))
                .with_route(ROUTE)
                .trace(handler())));
        },
    );
    compare(
        "helper from a request vs helper with route only",
        &mut { helper },
        &mut || {
            black_box(run(tracing
                .http_server(request.method().as_str())
                .with_request(black_box(&request))
                .with_route(ROUTE)
                .trace(handler())));
        },
    );

    // Root spans that the sampler drops (`AlwaysOff`): the SDK is asked every time.
    let dropped = provider(Sampler::AlwaysOff);
    let dropped_tracer = dropped.tracer("bench");
    let dropped_tracing = LightstepTracing::from_provider(&dropped);
    compare(
        "unsampled root: helper vs SDK floor (bare start + end)",
        &mut || {
            let mut span = dropped_tracer.start(black_box("GET /users/{id}"));
            span.end();
        },
        &mut || {
            black_box(run(dropped_tracing.trace_http(
                black_box("GET"),
                black_box(ROUTE),
                handler(),
            )));
        },
    );
    compare(
        "unsampled root: helper vs raw SDK span made current",
        &mut || {
            black_box(raw(&dropped_tracer, true));
        },
        &mut || {
            black_box(run(dropped_tracing.trace_http(
                black_box("GET"),
                black_box(ROUTE),
                handler(),
            )));
        },
    );

    let unsampled = provider(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)));
    let unsampled_tracer = unsampled.tracer("bench");
    let unsampled_tracing = LightstepTracing::from_provider(&unsampled);
    let parent = Context::new().with_remote_span_context(SpanContext::new(
        TraceId::from(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef_u128),
        SpanId::from(0x0123_4567_89ab_cdef_u64),
        TraceFlags::default(),
        true,
        TraceState::default(),
    ));
    {
        let _attached = parent.attach();
        compare(
            "unsampled parent: helper vs raw SDK span made current",
            &mut || {
                black_box(raw(&unsampled_tracer, true));
            },
            &mut || {
                black_box(run(unsampled_tracing.trace_http(
                    black_box("GET"),
                    black_box(ROUTE),
                    handler(),
                )));
            },
        );
    }

    let statement = "SELECT u.id, u.name, o.total FROM users u JOIN orders o ON o.user_id = u.id \
                     WHERE u.email = 'alice@example.com' AND o.total > 42.50 \
                     AND o.status IN ('paid', 'shipped', 'done') ORDER BY o.created_at DESC LIMIT 10";
    compare(
        "sanitize 211-byte SQL vs copying it",
        &mut || {
            black_box(black_box(statement).to_owned());
        },
        &mut || {
            black_box(sanitize(black_box(statement)));
        },
    );
}
