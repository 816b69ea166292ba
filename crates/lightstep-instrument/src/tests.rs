//! Unit tests of the helpers against the SDK's in-memory exporter: names, kinds, attributes,
//! status, parenting, cancellation and panics.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::task::{Context as TaskContext, Waker};

use opentelemetry::trace::{
    FutureExt as _, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, Value};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    InMemorySpanExporter, Sampler, SdkTracer, SdkTracerProvider, SpanData,
};
use opentelemetry_semantic_conventions::attribute as semconv;

use crate::{GrpcCode, LightstepTracing};

struct Harness {
    provider: SdkTracerProvider,
    exporter: InMemorySpanExporter,
    tracing: LightstepTracing<SdkTracer>,
}

fn harness() -> Harness {
    harness_with(Sampler::AlwaysOn)
}

fn harness_with(sampler: Sampler) -> Harness {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_simple_exporter(exporter.clone())
        .build();
    let tracing = LightstepTracing::from_provider(&provider);
    Harness {
        provider,
        exporter,
        tracing,
    }
}

impl Harness {
    fn spans(&self) -> Vec<SpanData> {
        self.exporter.get_finished_spans().expect("in-memory spans")
    }

    fn only_span(&self) -> SpanData {
        let mut spans = self.spans();
        assert_eq!(spans.len(), 1, "spans: {spans:#?}");
        spans.remove(0)
    }

    fn span_named(&self, name: &str) -> SpanData {
        self.spans()
            .into_iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no span named {name:?} in {:#?}", self.spans()))
    }
}

fn attr(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

fn attr_str(span: &SpanData, key: &str) -> Option<String> {
    attr(span, key).map(|v| v.as_str().into_owned())
}

fn assert_no_duration_attributes(span: &SpanData) {
    assert!(
        !span
            .attributes
            .iter()
            .any(|kv| kv.key.as_str().ends_with("duration_ms")),
        "{span:#?}"
    );
}

fn is_error(span: &SpanData) -> bool {
    matches!(span.status, Status::Error { .. })
}

fn install_propagator() {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
}

#[tokio::test]
async fn http_server_span_from_a_request() {
    let h = harness();
    let request = http::Request::get("/users/42?q=rust&sig=s3cr3t")
        .header("host", "api.example.com:8443")
        .header("user-agent", "curl/8.0")
        .body(())
        .unwrap();
    let response = h
        .tracing
        .http_server(request.method().as_str())
        .with_request(&request)
        .with_route("/users/{id}")
        .trace(async {
            tokio::task::yield_now().await;
            http::Response::builder().status(503).body(()).unwrap()
        })
        .await;
    assert_eq!(response.status(), 503);

    let span = h.only_span();
    assert_eq!(span.name, "GET /users/{id}");
    assert_eq!(span.span_kind, SpanKind::Server);
    assert_eq!(
        attr_str(&span, semconv::HTTP_REQUEST_METHOD).as_deref(),
        Some("GET")
    );
    assert_eq!(attr(&span, semconv::HTTP_REQUEST_METHOD_ORIGINAL), None);
    assert_eq!(
        attr_str(&span, semconv::HTTP_ROUTE).as_deref(),
        Some("/users/{id}")
    );
    assert_eq!(
        attr_str(&span, semconv::URL_PATH).as_deref(),
        Some("/users/42")
    );
    assert_eq!(
        attr_str(&span, semconv::URL_QUERY).as_deref(),
        Some("q=rust&sig=REDACTED")
    );
    assert_eq!(
        attr_str(&span, semconv::URL_SCHEME).as_deref(),
        Some("http")
    );
    assert_eq!(
        attr_str(&span, semconv::NETWORK_PROTOCOL_VERSION).as_deref(),
        Some("1.1")
    );
    assert_eq!(
        attr_str(&span, semconv::SERVER_ADDRESS).as_deref(),
        Some("api.example.com")
    );
    assert_eq!(attr(&span, semconv::SERVER_PORT), Some(Value::I64(8443)));
    assert_eq!(
        attr_str(&span, semconv::USER_AGENT_ORIGINAL).as_deref(),
        Some("curl/8.0")
    );
    assert_eq!(
        attr(&span, semconv::HTTP_RESPONSE_STATUS_CODE),
        Some(Value::I64(503))
    );
    assert_eq!(attr_str(&span, semconv::ERROR_TYPE).as_deref(), Some("503"));
    assert!(is_error(&span));
    assert!(span.events.is_empty(), "a status code is not an exception");
    assert_no_duration_attributes(&span);
    assert_eq!(span.instrumentation_scope.name(), crate::SCOPE_NAME);
}

#[tokio::test]
async fn http_4xx_is_an_error_for_clients_only() {
    let h = harness();
    let not_found = || async { http::StatusCode::NOT_FOUND };
    h.tracing
        .trace_http("GET", "/things/{id}", not_found())
        .await;
    let server = h.only_span();
    assert_eq!(server.status, Status::Unset);
    assert_eq!(attr(&server, semconv::ERROR_TYPE), None);
    assert_eq!(
        attr(&server, semconv::HTTP_RESPONSE_STATUS_CODE),
        Some(Value::I64(404))
    );

    let h = harness();
    let uri: http::Uri = "https://user:pw@example.com/things/7?token=abc"
        .parse()
        .unwrap();
    h.tracing
        .http_client("GET")
        .with_url(&uri)
        .trace(not_found())
        .await;
    let client = h.only_span();
    assert_eq!(client.name, "GET");
    assert_eq!(client.span_kind, SpanKind::Client);
    assert!(is_error(&client));
    assert_eq!(
        attr_str(&client, semconv::ERROR_TYPE).as_deref(),
        Some("404")
    );
    assert_eq!(
        attr_str(&client, semconv::URL_FULL).as_deref(),
        Some("https://REDACTED:REDACTED@example.com/things/7?token=REDACTED")
    );
    assert_eq!(
        attr_str(&client, semconv::SERVER_ADDRESS).as_deref(),
        Some("example.com")
    );
    assert_eq!(attr(&client, semconv::SERVER_PORT), Some(Value::I64(443)));
    assert_eq!(attr(&client, semconv::HTTP_ROUTE), None);
}

#[tokio::test]
async fn http_2xx_leaves_the_status_unset() {
    let h = harness();
    h.tracing
        .trace_http("POST", "/orders", async { http::StatusCode::CREATED })
        .await;
    let span = h.only_span();
    assert_eq!(span.name, "POST /orders");
    assert_eq!(span.status, Status::Unset);
    assert_eq!(attr(&span, semconv::ERROR_TYPE), None);
}

#[tokio::test]
async fn unknown_http_methods_become_other() {
    let h = harness();
    h.tracing.trace_http("PURGE", "/cache", async {}).await;
    let span = h.only_span();
    assert_eq!(span.name, "HTTP /cache");
    assert_eq!(
        attr_str(&span, semconv::HTTP_REQUEST_METHOD).as_deref(),
        Some("_OTHER")
    );
    assert_eq!(
        attr_str(&span, semconv::HTTP_REQUEST_METHOD_ORIGINAL).as_deref(),
        Some("PURGE")
    );

    let h = harness();
    let tracing = h.tracing.clone().with_known_http_methods(["GET", "PURGE"]);
    tracing.trace_http("PURGE", "/cache", async {}).await;
    let span = h.only_span();
    assert_eq!(span.name, "PURGE /cache");
    assert_eq!(attr(&span, semconv::HTTP_REQUEST_METHOD_ORIGINAL), None);
}

#[tokio::test]
async fn errors_record_type_and_exception_event() {
    let h = harness();
    let result: Result<http::StatusCode, std::io::Error> = h
        .tracing
        .trace_http("GET", "/x", async {
            Err(std::io::Error::other("disk on fire"))
        })
        .await;
    assert!(result.is_err());
    let span = h.only_span();
    assert_eq!(
        span.status,
        Status::Error {
            description: "disk on fire".into()
        }
    );
    assert_eq!(
        attr_str(&span, semconv::ERROR_TYPE).as_deref(),
        Some("std::io::error::Error")
    );
    let event = span.events.iter().next().expect("an exception event");
    assert_eq!(event.name, "exception");
    let message = event
        .attributes
        .iter()
        .find(|kv| kv.key.as_str() == semconv::EXCEPTION_MESSAGE)
        .map(|kv| kv.value.as_str().into_owned());
    assert_eq!(message.as_deref(), Some("disk on fire"));
}

#[tokio::test]
async fn spans_inside_nest_across_awaits_and_spawned_tasks() {
    let h = harness();
    let tracing = h.tracing.clone();
    let tracer = h.provider.tracer("test");
    h.tracing
        .trace_http("GET", "/outer", async move {
            tokio::task::yield_now().await;
            // Current context inside is the helper's span.
            let current = Context::current().span().span_context().clone();
            assert!(current.is_valid());
            let rows: Result<usize, std::io::Error> = tracing
                .trace_database("sqlite", "SELECT * FROM t WHERE a = 1", async {
                    tokio::task::yield_now().await;
                    Ok(1)
                })
                .await;
            assert_eq!(rows.unwrap(), 1);
            // A task spawned with the current context keeps it.
            tokio::spawn(
                async move {
                    tokio::task::yield_now().await;
                    tracer.in_span("spawned", |_| {});
                }
                .with_current_context(),
            )
            .await
            .unwrap();
        })
        .await;

    let http = h.span_named("GET /outer");
    let db = h.span_named("SELECT t");
    let spawned = h.span_named("spawned");
    assert_eq!(db.span_context.trace_id(), http.span_context.trace_id());
    assert_eq!(db.parent_span_id, http.span_context.span_id());
    assert_eq!(
        spawned.span_context.trace_id(),
        http.span_context.trace_id()
    );
    assert_eq!(spawned.parent_span_id, http.span_context.span_id());
    // And the context is not left behind after the future completes.
    assert!(!Context::current().span().span_context().is_valid());
}

#[test]
fn dropping_the_future_ends_the_span_as_cancelled() {
    let h = harness();
    {
        let mut traced = pin!(h.tracing.trace_rpc(
            "demo.Echo",
            "Say",
            std::future::pending::<GrpcCode>()
        ));
        let mut task = TaskContext::from_waker(Waker::noop());
        assert!(traced.as_mut().poll(&mut task).is_pending());
        assert!(h.spans().is_empty(), "still running");
    }
    let span = h.only_span();
    assert_eq!(span.name, "demo.Echo/Say");
    assert!(is_error(&span));
    assert_eq!(
        attr_str(&span, semconv::ERROR_TYPE).as_deref(),
        Some(crate::CANCELLED)
    );
    assert_eq!(
        attr_str(&span, semconv::RPC_RESPONSE_STATUS_CODE).as_deref(),
        Some("CANCELLED")
    );
}

#[test]
fn a_panic_ends_the_span_as_an_error_and_continues() {
    let h = harness();
    let traced = h.tracing.trace_http("GET", "/boom", async {
        if true {
            panic!("handler exploded");
        }
        http::StatusCode::OK
    });
    let caught = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let mut traced = pin!(traced);
        let mut task = TaskContext::from_waker(Waker::noop());
        let _ = traced.as_mut().poll(&mut task);
    }));
    let payload = caught.expect_err("the panic goes on");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"handler exploded"));
    let span = h.only_span();
    assert_eq!(
        attr_str(&span, semconv::ERROR_TYPE).as_deref(),
        Some(crate::PANIC)
    );
    assert!(is_error(&span));
    assert_eq!(span.events.len(), 1);
    assert!(!Context::current().span().span_context().is_valid());
}

#[tokio::test]
async fn grpc_split_rules() {
    let cases = [
        (true, GrpcCode::NotFound, true),
        (false, GrpcCode::NotFound, false),
        (false, GrpcCode::Internal, true),
        (false, GrpcCode::DeadlineExceeded, true),
        (true, GrpcCode::Ok, false),
        (false, GrpcCode::Ok, false),
    ];
    for (client, code, error) in cases {
        let h = harness();
        let builder = if client {
            h.tracing.rpc_client("pkg.Svc", "Get")
        } else {
            h.tracing.rpc_server("pkg.Svc", "Get")
        };
        builder.trace(async move { code }).await;
        let span = h.only_span();
        assert_eq!(span.name, "pkg.Svc/Get");
        assert_eq!(
            span.span_kind,
            if client {
                SpanKind::Client
            } else {
                SpanKind::Server
            }
        );
        assert_eq!(
            attr_str(&span, semconv::RPC_SYSTEM_NAME).as_deref(),
            Some("grpc")
        );
        assert_eq!(
            attr_str(&span, semconv::RPC_METHOD).as_deref(),
            Some("pkg.Svc/Get")
        );
        assert_eq!(
            attr_str(&span, semconv::RPC_RESPONSE_STATUS_CODE).as_deref(),
            Some(code.as_str())
        );
        assert_eq!(is_error(&span), error, "client {client} code {code}");
        assert_eq!(
            attr_str(&span, semconv::ERROR_TYPE),
            error.then(|| code.as_str().to_owned())
        );
        assert_no_duration_attributes(&span);
    }
}

#[tokio::test]
async fn unrecognized_rpc_methods() {
    let h = harness();
    h.tracing
        .rpc_server("pkg.Svc", "Nope")
        .with_unrecognized_method()
        .trace(async { GrpcCode::Unimplemented })
        .await;
    let span = h.only_span();
    assert_eq!(span.name, "grpc");
    assert_eq!(
        attr_str(&span, semconv::RPC_METHOD).as_deref(),
        Some("_OTHER")
    );
    assert_eq!(
        attr_str(&span, semconv::RPC_METHOD_ORIGINAL).as_deref(),
        Some("pkg.Svc/Nope")
    );
}

/// The gRPC server layer's spans: `rpc.method` waits for the outcome and is set exactly once,
/// however the span ends.
#[test]
fn deferred_rpc_methods_are_recorded_once() {
    fn count(span: &SpanData, key: &str) -> usize {
        span.attributes
            .iter()
            .filter(|kv| kv.key.as_str() == key)
            .count()
    }

    // Unknown: `_OTHER`, the original, renamed after the system.
    let h = harness();
    let mut span = h
        .tracing
        .rpc_server("pkg.Svc", "Nope")
        .start_deferring_method();
    span.resolve_method(false);
    span.resolve_method(true);
    span.finish(&GrpcCode::Unimplemented);
    let span = h.only_span();
    assert_eq!(span.name, "grpc");
    assert_eq!(
        attr_str(&span, semconv::RPC_METHOD).as_deref(),
        Some("_OTHER")
    );
    assert_eq!(count(&span, semconv::RPC_METHOD), 1);
    assert_eq!(
        attr_str(&span, semconv::RPC_METHOD_ORIGINAL).as_deref(),
        Some("pkg.Svc/Nope")
    );

    // Never resolved: the end takes the method as known (finished, dropped or panicked).
    let h = harness();
    h.tracing
        .rpc_server("pkg.Svc", "Get")
        .start_deferring_method()
        .finish(&GrpcCode::Ok);
    drop(
        h.tracing
            .rpc_server("pkg.Svc", "Get")
            .start_deferring_method(),
    );
    let spans = h.spans();
    assert_eq!(spans.len(), 2);
    for span in &spans {
        assert_eq!(span.name, "pkg.Svc/Get");
        assert_eq!(
            attr_str(span, semconv::RPC_METHOD).as_deref(),
            Some("pkg.Svc/Get")
        );
        assert_eq!(count(span, semconv::RPC_METHOD), 1);
        assert_eq!(attr_str(span, semconv::RPC_METHOD_ORIGINAL), None);
    }

    // A path that is not `/service/method` is known to be unrecognized from the start.
    let h = harness();
    // (What the layer makes of the path `/nonsense`.)
    let mut span = h
        .tracing
        .rpc_server("", "/nonsense")
        .with_unrecognized_method()
        .start_deferring_method();
    span.resolve_method(true);
    span.finish(&GrpcCode::Unimplemented);
    let span = h.only_span();
    assert_eq!(span.name, "grpc");
    assert_eq!(count(&span, semconv::RPC_METHOD), 1);
    assert_eq!(
        attr_str(&span, semconv::RPC_METHOD_ORIGINAL).as_deref(),
        Some("/nonsense")
    );
}

#[tokio::test]
async fn database_spans() {
    let h = harness();
    let rows: Result<Vec<u8>, std::io::Error> = h
        .tracing
        .database(
            "postgresql",
            "SELECT * FROM \"Users\" WHERE name = 'bob' AND id IN (1, 2)",
        )
        .with_namespace("shop")
        .with_server_address("db.internal", Some(5432))
        .trace(async { Ok(vec![1, 2]) })
        .await;
    assert_eq!(rows.unwrap(), [1, 2]);
    let span = h.only_span();
    assert_eq!(span.name, "SELECT \"Users\"");
    assert_eq!(span.span_kind, SpanKind::Client);
    assert_eq!(
        attr_str(&span, semconv::DB_SYSTEM_NAME).as_deref(),
        Some("postgresql")
    );
    assert_eq!(
        attr_str(&span, semconv::DB_QUERY_TEXT).as_deref(),
        Some("SELECT * FROM \"Users\" WHERE name = ? AND id IN (?)")
    );
    assert_eq!(
        attr_str(&span, semconv::DB_OPERATION_NAME).as_deref(),
        Some("SELECT")
    );
    assert_eq!(
        attr_str(&span, semconv::DB_COLLECTION_NAME).as_deref(),
        Some("\"Users\"")
    );
    assert_eq!(
        attr_str(&span, semconv::DB_NAMESPACE).as_deref(),
        Some("shop")
    );
    assert_eq!(
        attr_str(&span, semconv::SERVER_ADDRESS).as_deref(),
        Some("db.internal")
    );
    assert_eq!(attr(&span, semconv::SERVER_PORT), Some(Value::I64(5432)));
    assert_eq!(span.status, Status::Unset);
    assert_no_duration_attributes(&span);
    assert_eq!(attr(&span, "db.statement"), None);
    assert_eq!(attr(&span, "db.system"), None);
}

#[tokio::test]
async fn database_span_names_fall_back() {
    let cases: [(&str, Option<&str>, &str); 4] = [
        (
            "SELECT a FROM x JOIN y ON x.i = y.i",
            Some("shop"),
            "SELECT shop",
        ),
        ("SELECT 1", None, "SELECT"),
        ("VACUUM", Some("shop"), "shop"),
        ("VACUUM", None, "sqlite"),
    ];
    for (statement, namespace, name) in cases {
        let h = harness();
        let mut builder = h.tracing.database("sqlite", statement);
        if let Some(namespace) = namespace {
            builder = builder.with_namespace(namespace);
        }
        builder
            .trace(async { Ok::<_, std::io::Error>(()) })
            .await
            .unwrap();
        assert_eq!(h.only_span().name, name, "statement {statement}");
    }
}

#[tokio::test]
async fn database_sanitizing_can_be_turned_off() {
    let statement = "UPDATE accounts SET balance = 100 WHERE owner = 'eve'";
    let h = harness();
    let tracing = h.tracing.clone().with_sql_sanitizing(false);
    tracing
        .trace_database("mysql", statement, async { Ok::<_, std::io::Error>(()) })
        .await
        .unwrap();
    assert_eq!(
        attr_str(&h.only_span(), semconv::DB_QUERY_TEXT).as_deref(),
        Some(statement)
    );

    let h = harness();
    h.tracing
        .database("mysql", statement)
        .with_sanitizing(false)
        .with_operation("UPDATE")
        .with_collection("accounts")
        .trace(async { Ok::<_, std::io::Error>(()) })
        .await
        .unwrap();
    let span = h.only_span();
    assert_eq!(
        attr_str(&span, semconv::DB_QUERY_TEXT).as_deref(),
        Some(statement)
    );
    assert_eq!(span.name, "UPDATE accounts");

    // And on by default, for the same statement.
    let h = harness();
    h.tracing
        .trace_database("mysql", statement, async { Ok::<_, std::io::Error>(()) })
        .await
        .unwrap();
    assert_eq!(
        attr_str(&h.only_span(), semconv::DB_QUERY_TEXT).as_deref(),
        Some("UPDATE accounts SET balance = ? WHERE owner = ?")
    );
}

#[tokio::test]
async fn database_errors() {
    let h = harness();
    let result: Result<(), std::fmt::Error> = h
        .tracing
        .trace_database("sqlite", "DELETE FROM t", async { Err(std::fmt::Error) })
        .await;
    assert!(result.is_err());
    let span = h.only_span();
    assert!(is_error(&span));
    assert_eq!(
        attr_str(&span, semconv::ERROR_TYPE).as_deref(),
        Some("core::fmt::Error")
    );
    assert_eq!(span.events.len(), 1);
}

#[tokio::test]
async fn client_injects_and_server_extracts() {
    install_propagator();
    let h = harness();
    let client = h.tracing.http_client("GET").start();
    let mut headers = http::HeaderMap::new();
    client.inject_headers(&mut headers);
    let traceparent = headers
        .get("traceparent")
        .expect("a traceparent header")
        .to_str()
        .unwrap()
        .to_owned();
    let client_context = client.context().span().span_context().clone();
    assert!(traceparent.contains(&client_context.trace_id().to_string()));
    assert!(traceparent.contains(&client_context.span_id().to_string()));

    // The server side, with nothing current: the parent comes from the headers alone.
    let server = h
        .tracing
        .http_server("GET")
        .with_request_headers(&headers)
        .with_route("/r")
        .start();
    server.finish(&http::StatusCode::OK);
    client.finish(&http::StatusCode::OK);

    let server = h.span_named("GET /r");
    let client = h.span_named("GET");
    assert_eq!(
        server.span_context.trace_id(),
        client.span_context.trace_id()
    );
    assert_eq!(server.parent_span_id, client.span_context.span_id());
    assert!(server.parent_span_is_remote);
}

#[tokio::test]
async fn unsampled_spans_still_run_the_future() {
    let h = harness_with(Sampler::AlwaysOff);
    let out = h
        .tracing
        .trace_http("GET", "/quiet", async {
            assert!(!Context::current().span().is_recording());
            http::StatusCode::OK
        })
        .await;
    assert_eq!(out, http::StatusCode::OK);
    assert!(h.spans().is_empty());
}

/// A root span the sampler drops keeps its identity: what runs inside sees a valid, unsampled
/// span context (its own ids, not the parent's), injects it as unsampled, and makes no spans.
#[tokio::test]
async fn a_dropped_root_span_keeps_its_identity() {
    install_propagator();
    let h = harness_with(Sampler::AlwaysOff);
    let span = h.tracing.http_client("GET").start();
    let context = span.context().span().span_context().clone();
    assert!(context.is_valid());
    assert!(!context.is_sampled());
    let mut headers = http::HeaderMap::new();
    span.inject_headers(&mut headers);
    let traceparent = headers["traceparent"].to_str().expect("ascii").to_owned();
    assert_eq!(
        traceparent,
        format!("00-{}-{}-00", context.trace_id(), context.span_id())
    );
    span.instrument(async {
        assert_eq!(Context::current().span().span_context(), &context);
        h.tracing
            .trace_database("sqlite", "SELECT 1", async { Ok::<_, std::io::Error>(()) })
            .await
            .expect("runs");
    })
    .await;
    assert!(h.spans().is_empty());
}

#[cfg(feature = "tonic")]
#[tokio::test]
async fn tonic_status_keeps_its_code_inside_a_result() {
    let h = harness();
    let result: Result<tonic::Response<()>, tonic::Status> = h
        .tracing
        .rpc_server("pkg.Svc", "Get")
        .trace(async { Err(tonic::Status::not_found("no such thing")) })
        .await;
    assert!(result.is_err());
    let span = h.only_span();
    assert_eq!(
        attr_str(&span, semconv::RPC_RESPONSE_STATUS_CODE).as_deref(),
        Some("NOT_FOUND")
    );
    assert_eq!(
        span.status,
        Status::Unset,
        "NOT_FOUND is the caller's problem"
    );

    let h = harness();
    let _ = h
        .tracing
        .trace_rpc("pkg.Svc", "Get", async {
            Err::<tonic::Response<()>, _>(tonic::Status::unavailable("down"))
        })
        .await;
    let span = h.only_span();
    assert_eq!(
        span.status,
        Status::Error {
            description: "down".into()
        }
    );
    assert_eq!(
        attr_str(&span, semconv::ERROR_TYPE).as_deref(),
        Some("UNAVAILABLE")
    );
}

fn unsampled_remote_parent() -> Context {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    Context::new().with_remote_span_context(SpanContext::new(
        TraceId::from(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef_u128),
        SpanId::from(0x0123_4567_89ab_cdef_u64),
        TraceFlags::default(),
        true,
        TraceState::default(),
    ))
}

#[tokio::test]
async fn no_span_under_an_unsampled_parent() {
    install_propagator();
    // A sampler that would sample anything: the shortcut, not the sampler, decides here.
    let h = harness();
    let parent = unsampled_remote_parent();
    let expected = parent.span().span_context().clone();
    let tracing = h.tracing.clone();
    h.tracing
        .http_server("GET")
        .with_route("/quiet")
        .with_parent(parent.clone())
        .trace(async move {
            assert_eq!(Context::current().span().span_context(), &expected);
            let client = tracing.http_client("GET").start();
            let mut headers = http::HeaderMap::new();
            client.inject_headers(&mut headers);
            let traceparent = headers["traceparent"].to_str().unwrap().to_owned();
            assert!(traceparent.ends_with("-00"), "unsampled: {traceparent}");
            assert!(traceparent.contains(&expected.span_id().to_string()));
            client.finish(&http::StatusCode::OK);
        })
        .await;
    assert!(h.spans().is_empty(), "{:#?}", h.spans());

    // Turned off, the sampler is asked (and this one samples).
    let h = harness();
    let tracing = h.tracing.clone().with_unsampled_parent_shortcut(false);
    tracing
        .http_server("GET")
        .with_route("/loud")
        .with_parent(parent)
        .trace(async {})
        .await;
    assert_eq!(h.only_span().name, "GET /loud");
}

#[tokio::test]
async fn a_sampled_parent_is_not_skipped() {
    let h = harness();
    let tracer = h.provider.tracer("test");
    let parent = Context::current_with_span(tracer.start("parent"));
    // The span starts when the helper is called: under the context current then.
    let traced = {
        let _attached = parent.clone().attach();
        h.tracing.trace_http("GET", "/child", async {})
    };
    traced.await;
    parent.span().end();
    let child = h.span_named("GET /child");
    assert_eq!(
        child.parent_span_id,
        h.span_named("parent").span_context.span_id()
    );
}

#[cfg(feature = "tonic")]
#[tokio::test]
async fn metadata_round_trip_and_interceptor() {
    install_propagator();
    let h = harness();
    let client = h.tracing.rpc_client("pkg.Svc", "Get").start();
    let mut metadata = tonic::metadata::MetadataMap::new();
    client.inject_metadata(&mut metadata);
    let extracted = crate::propagation::extract_metadata(&metadata);
    assert_eq!(
        extracted.span().span_context().span_id(),
        client.context().span().span_context().span_id()
    );
    assert!(extracted.span().span_context().is_remote());

    // The interceptor injects whatever is current.
    let request = {
        let _attached = client.context().clone().attach();
        crate::grpc::propagate_current_context(tonic::Request::new(())).unwrap()
    };
    let traceparent = request
        .metadata()
        .get("traceparent")
        .expect("traceparent")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(traceparent.contains(&client.context().span().span_context().span_id().to_string()));

    // And a server span built from that metadata is the client's child.
    let server = h
        .tracing
        .rpc_server("pkg.Svc", "Get")
        .with_request_metadata(request.metadata())
        .start();
    server.finish(&GrpcCode::Ok);
    client.finish(&GrpcCode::Ok);
    let spans = h.spans();
    let server = spans
        .iter()
        .find(|s| s.span_kind == SpanKind::Server)
        .unwrap();
    let client = spans
        .iter()
        .find(|s| s.span_kind == SpanKind::Client)
        .unwrap();
    assert_eq!(server.parent_span_id, client.span_context.span_id());
}

/// A request without trace headers starts its own trace, even when the server runs inside
/// another span (a connection's `tracing` span, an in-process caller).
#[test]
fn a_server_span_without_trace_headers_is_a_root_whatever_is_current() {
    use opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _};
    // A real propagator: opentelemetry's no-op one answers with the current context.
    install_propagator();
    let h = harness();
    let tracer = h.provider.tracer("outer");
    let outer = tracer.start("connection");
    let outer_id = outer.span_context().trace_id();
    let _guard = Context::current_with_span(outer).attach();
    let server = h
        .tracing
        .http_server("GET")
        .with_request_headers(&http::HeaderMap::new())
        .with_route("/r")
        .start();
    server.finish(&http::StatusCode::OK);
    let span = h.span_named("GET /r");
    assert_ne!(span.span_context.trace_id(), outer_id);
    assert_eq!(span.parent_span_id, opentelemetry::trace::SpanId::INVALID);
}
