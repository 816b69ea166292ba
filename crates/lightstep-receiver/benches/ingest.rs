//! The receiver's cost per span to take an OTLP protobuf request into its store, without
//! sockets: the current path (one validating walk over the bytes, each span kept as its bytes,
//! `ingest`) side by side with the previous one (prost decoding the request into structs, each
//! span wrapped with shared resource, scope and request and stored under one lock,
//! `prost-decode-and-store`, reproduced below as it was). The `*-then-drop` variants add taking
//! the spans out of the store and dropping them, which a long-running receiver also pays.
//!
//! Workload: the 100,000 spans of `lightstep-exporter`'s `stages` bench (four attributes, server
//! kind, 16-byte trace ids), in requests of 4,096 spans, as they arrive on the wire.
//!
//! Run: `cargo bench -p lightstep-receiver --bench ingest`. Read with `docs/benchmarks.md`.
#![allow(missing_docs)] // criterion's macros generate undocumented functions

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lightstep_receiver::bench_support;
use lightstep_receiver::proto::collector::trace::v1::ExportTraceServiceRequest;
use lightstep_receiver::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use lightstep_receiver::proto::resource::v1::Resource;
use lightstep_receiver::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message as _;

const SPANS: usize = 100_000;
const BATCH: usize = 4_096;

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

/// The encoded requests, as a client sends them.
fn bodies() -> Vec<Vec<u8>> {
    let resource = Resource {
        attributes: vec![
            kv(
                "service.name",
                any_value::Value::StringValue("bench".into()),
            ),
            kv(
                "telemetry.sdk.language",
                any_value::Value::StringValue("rust".into()),
            ),
        ],
        ..Resource::default()
    };
    let spans: Vec<Span> = (0..SPANS)
        .map(|i| Span {
            trace_id: ((i as u128 + 1) << 8).to_be_bytes().to_vec(),
            span_id: (i as u64 + 1).to_be_bytes().to_vec(),
            name: "GET /api/orders/{id}".into(),
            kind: 2,
            start_time_unix_nano: 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_000_000_100_000,
            attributes: vec![
                kv(
                    "http.request.method",
                    any_value::Value::StringValue("GET".into()),
                ),
                kv(
                    "http.route",
                    any_value::Value::StringValue("/api/orders/{id}".into()),
                ),
                kv("http.response.status_code", any_value::Value::IntValue(200)),
                kv("worker", any_value::Value::IntValue(i as i64)),
            ],
            flags: 0x101,
            ..Span::default()
        })
        .collect();
    spans
        .chunks(BATCH)
        .map(|batch| {
            ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    resource: Some(resource.clone()),
                    scope_spans: vec![ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: "bench".into(),
                            ..InstrumentationScope::default()
                        }),
                        spans: batch.to_vec(),
                        schema_url: String::new(),
                    }],
                    schema_url: String::new(),
                }],
            }
            .encode_to_vec()
        })
        .collect()
}

/// The previous ingest path (commit 514bdea, `SpanStore::ingest` after tonic's prost decoding),
/// reproduced for comparison.
mod previous {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use lightstep_receiver::RequestInfo;
    use lightstep_receiver::proto::collector::trace::v1::ExportTraceServiceRequest;
    use lightstep_receiver::proto::common::v1::InstrumentationScope;
    use lightstep_receiver::proto::resource::v1::Resource;
    use lightstep_receiver::proto::trace::v1::Span;
    use prost::Message as _;

    #[allow(dead_code)] // held, as the store held it
    pub(crate) struct Origin {
        resource: Arc<Resource>,
        resource_schema_url: String,
        scope: InstrumentationScope,
        scope_schema_url: String,
    }

    #[allow(dead_code)] // held, as the store held it
    pub(crate) struct ReceivedSpan {
        span: Span,
        origin: Arc<Origin>,
        request: Arc<RequestInfo>,
    }

    pub(crate) struct Store {
        pub(crate) spans: Mutex<VecDeque<ReceivedSpan>>,
        pub(crate) max_spans: usize,
    }

    fn invalid_ids(span: &Span) -> Option<String> {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        if span.trace_id.len() != 16 || span.trace_id.iter().all(|b| *b == 0) {
            return Some(format!("trace id `{}`", hex(&span.trace_id)));
        }
        if span.span_id.len() != 8 || span.span_id.iter().all(|b| *b == 0) {
            return Some(format!("span id `{}`", hex(&span.span_id)));
        }
        if !span.parent_span_id.is_empty() && span.parent_span_id.len() != 8 {
            return Some(format!("parent span id `{}`", hex(&span.parent_span_id)));
        }
        None
    }

    /// tonic's `ProstDecoder` followed by the previous `SpanStore::ingest`.
    pub(crate) fn ingest(store: &Store, body: &[u8], info: &Arc<RequestInfo>) -> u64 {
        let Ok(request) = ExportTraceServiceRequest::decode(body) else {
            return 0;
        };
        let mut valid = Vec::new();
        for rs in request.resource_spans {
            let resource = Arc::new(rs.resource.unwrap_or_default());
            for ss in rs.scope_spans {
                if ss.spans.is_empty() {
                    continue;
                }
                let origin = Arc::new(Origin {
                    resource: Arc::clone(&resource),
                    resource_schema_url: rs.schema_url.clone(),
                    scope: ss.scope.unwrap_or_default(),
                    scope_schema_url: ss.schema_url,
                });
                for span in ss.spans {
                    if invalid_ids(&span).is_some() {
                        continue;
                    }
                    valid.push(ReceivedSpan {
                        span,
                        origin: Arc::clone(&origin),
                        request: Arc::clone(info),
                    });
                }
            }
        }
        let mut accepted = 0;
        let mut spans = store.spans.lock().unwrap_or_else(|e| e.into_inner());
        for span in valid {
            if spans.len() >= store.max_spans {
                continue;
            }
            spans.push_back(span);
            accepted += 1;
        }
        accepted
    }
}

/// Times `iters` rounds of storing every body into an empty store, and of emptying it too when
/// `drop_too`.
fn time_previous(bodies: &[Vec<u8>], iters: u64, drop_too: bool) -> Duration {
    let info = bench_support::request_info(http::HeaderMap::new());
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let store = previous::Store {
            spans: std::sync::Mutex::new(Default::default()),
            max_spans: 1_000_000,
        };
        let started = Instant::now();
        let mut accepted = 0;
        for body in bodies {
            accepted += previous::ingest(&store, body, &info);
        }
        assert_eq!(accepted, SPANS as u64);
        let taken: Vec<_> = store
            .spans
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        if drop_too {
            drop(black_box(taken));
            total += started.elapsed();
        } else {
            total += started.elapsed();
            drop(taken);
        }
    }
    total
}

fn time_current(bodies: &[Vec<u8>], iters: u64, drop_too: bool) -> Duration {
    let info = bench_support::request_info(http::HeaderMap::new());
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let store = bench_support::store(1_000_000);
        let started = Instant::now();
        let mut accepted = 0;
        for body in bodies {
            accepted += bench_support::ingest_protobuf(&store, body, &info).unwrap_or(0);
        }
        assert_eq!(accepted, SPANS as u64);
        let taken = store.take_spans();
        if drop_too {
            drop(black_box(taken));
            total += started.elapsed();
        } else {
            total += started.elapsed();
            drop(taken);
        }
    }
    total
}

fn ingest(c: &mut Criterion) {
    let bodies = bodies();
    let mut group = c.benchmark_group("ingest");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Elements(SPANS as u64));
    group.bench_function("prost-decode-and-store", |b| {
        b.iter_custom(|iters| time_previous(&bodies, iters, false))
    });
    group.bench_function("ingest", |b| {
        b.iter_custom(|iters| time_current(&bodies, iters, false))
    });
    group.bench_function("prost-decode-and-store-then-drop", |b| {
        b.iter_custom(|iters| time_previous(&bodies, iters, true))
    });
    group.bench_function("ingest-then-drop", |b| {
        b.iter_custom(|iters| time_current(&bodies, iters, true))
    });
    group.finish();
}

/// Where a small request is cheaper to decode: on the async worker that read it, or handed to
/// the blocking pool and back (what requests of `INLINE_PROTOBUF_MAX`, 64 KiB, and more pay).
/// Each iteration stores one request of 25 spans (about 4 KiB) or 400 spans (about 64 KiB).
fn dispatch(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let info = bench_support::request_info(http::HeaderMap::new());
    let mut group = c.benchmark_group("dispatch");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(4));
    for spans in [25usize, 400] {
        let body = bodies_of(spans);
        group.throughput(Throughput::Elements(spans as u64));
        group.bench_function(format!("inline-{spans}-spans"), |b| {
            let store = bench_support::store(usize::MAX);
            b.iter(|| {
                runtime.block_on(async {
                    black_box(bench_support::ingest_protobuf(&store, &body, &info));
                });
                store.take_spans();
            });
        });
        group.bench_function(format!("blocking-pool-{spans}-spans"), |b| {
            let store = bench_support::store(usize::MAX);
            let body = bytes::Bytes::from(body.clone());
            b.iter(|| {
                runtime.block_on(async {
                    let (store, body, info) = (store.clone(), body.clone(), info.clone());
                    let handle = tokio::task::spawn_blocking(move || {
                        bench_support::ingest_protobuf(&store, &body, &info)
                    });
                    black_box(handle.await.ok());
                });
                store.take_spans();
            });
        });
    }
    group.finish();
}

/// One request of the first `spans` spans of the workload.
fn bodies_of(spans: usize) -> Vec<u8> {
    let first = ExportTraceServiceRequest::decode(&bodies()[0][..]).expect("request");
    let mut request = first.clone();
    request.resource_spans[0].scope_spans[0]
        .spans
        .truncate(spans);
    request.encode_to_vec()
}

criterion_group!(benches, ingest, dispatch);
criterion_main!(benches);
