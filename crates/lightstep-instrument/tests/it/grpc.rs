//! Two hops over gRPC: a tonic client (with `GrpcClientLayer`) calls a tonic server (with
//! `GrpcServerLayer`) whose health check queries SQLite through the database helper.

use std::net::SocketAddr;
use std::pin::Pin;

use futures_util::Stream;
use lightstep_receiver::proto::trace::v1::span::SpanKind;
use lightstep_receiver::proto::trace::v1::status::StatusCode;
use opentelemetry::Context;
use opentelemetry::trace::{FutureExt as _, TraceContextExt as _, Tracer as _};
use opentelemetry_semantic_conventions::attribute as semconv;
use tonic::transport::{Endpoint, Server};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tower::ServiceBuilder;

use lightstep_instrument::grpc::{GrpcClientLayer, GrpcServerLayer};

use crate::{
    attr_count, attr_int, attr_str, database, instrumentation, is_child_of, named,
    parent_is_remote, spans_of, status, test_tracer, with_kind,
};

const QUERY: &str = "SELECT count(*) FROM users WHERE name = ?1";
const CHECK: &str = "grpc.health.v1.Health/Check";

struct Checker {
    db: std::sync::Arc<std::sync::Mutex<rusqlite::Connection>>,
}

#[tonic::async_trait]
impl Health for Checker {
    async fn check(
        &self,
        request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<HealthCheckResponse>, tonic::Status> {
        let name = request.into_inner().service;
        let db = self.db.clone();
        let found: Result<i64, rusqlite::Error> = instrumentation()
            .trace_database("sqlite", QUERY, async move {
                let conn = db.lock().expect("database lock");
                conn.query_row(QUERY, [&name], |row| row.get(0))
            })
            .await;
        match found {
            Ok(n) if n > 0 => Ok(tonic::Response::new(HealthCheckResponse {
                status: ServingStatus::Serving as i32,
            })),
            Ok(_) => Err(tonic::Status::not_found("no such user")),
            Err(error) => Err(tonic::Status::internal(error.to_string())),
        }
    }

    type WatchStream =
        Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, tonic::Status>> + Send>>;

    async fn watch(
        &self,
        _request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
        Err(tonic::Status::unimplemented("watch"))
    }
}

async fn serve() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let server = Server::builder()
        .layer(GrpcServerLayer::new(instrumentation()))
        .add_service(HealthServer::new(Checker { db: database() }))
        .serve_with_incoming(incoming);
    tokio::spawn(server);
    addr
}

/// Calls `Check(name)` through the traced client under a new root span; returns the trace's
/// root context and the call's result.
async fn check(
    addr: SocketAddr,
    root_name: &'static str,
    name: &str,
) -> (Context, Result<i32, tonic::Status>) {
    crate::telemetry();
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let channel = ServiceBuilder::new()
        .layer(
            GrpcClientLayer::new(instrumentation())
                .with_server_address(addr.ip().to_string(), Some(addr.port())),
        )
        .service(channel);
    let mut client = HealthClient::new(channel);
    let root = Context::current_with_span(test_tracer().start(root_name));
    let result = client
        .check(HealthCheckRequest {
            service: name.to_owned(),
        })
        .with_context(root.clone())
        .await
        .map(|response| response.into_inner().status);
    root.span().end();
    (root, result)
}

#[tokio::test]
async fn client_server_database_is_one_trace() {
    crate::telemetry();
    let addr = serve().await;
    let (root, result) = check(addr, "two-hop grpc", "ada").await;
    assert_eq!(result.expect("serving"), ServingStatus::Serving as i32);

    let spans = spans_of(root.span().span_context().trace_id(), 4).await;
    let root = named(&spans, "two-hop grpc");
    let client = with_kind(&spans, CHECK, SpanKind::Client);
    let server = with_kind(&spans, CHECK, SpanKind::Server);
    let db = named(&spans, "SELECT users");

    assert_eq!(spans.len(), 4, "{spans:#?}");
    assert!(is_child_of(client, root));
    assert!(is_child_of(server, client));
    assert!(parent_is_remote(server));
    assert!(is_child_of(db, server));

    for span in [client, server] {
        assert_eq!(
            attr_str(span, semconv::RPC_SYSTEM_NAME).as_deref(),
            Some("grpc")
        );
        assert_eq!(attr_str(span, semconv::RPC_METHOD).as_deref(), Some(CHECK));
        assert_eq!(attr_count(span, semconv::RPC_METHOD), 1, "{span:#?}");
        assert_eq!(attr_str(span, semconv::RPC_METHOD_ORIGINAL), None);
        assert_eq!(
            attr_str(span, semconv::RPC_RESPONSE_STATUS_CODE).as_deref(),
            Some("OK")
        );
        assert_eq!(status(span).0, StatusCode::Unset);
        assert_eq!(
            attr_str(span, semconv::NETWORK_PROTOCOL_VERSION).as_deref(),
            Some("2")
        );
    }
    assert_eq!(
        attr_str(client, semconv::SERVER_ADDRESS).as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(
        attr_int(client, semconv::SERVER_PORT),
        Some(addr.port().into())
    );
    // Parameterized text is kept as it is.
    assert_eq!(attr_str(db, semconv::DB_QUERY_TEXT).as_deref(), Some(QUERY));
    assert_eq!(
        attr_str(db, semconv::DB_SYSTEM_NAME).as_deref(),
        Some("sqlite")
    );
}

#[tokio::test]
async fn not_found_is_an_error_for_the_client_only() {
    crate::telemetry();
    let addr = serve().await;
    let (root, result) = check(addr, "two-hop grpc not found", "nobody").await;
    assert_eq!(result.expect_err("not found").code(), tonic::Code::NotFound);

    let spans = spans_of(root.span().span_context().trace_id(), 4).await;
    let client = with_kind(&spans, CHECK, SpanKind::Client);
    let server = with_kind(&spans, CHECK, SpanKind::Server);
    assert_eq!(
        attr_str(client, semconv::RPC_RESPONSE_STATUS_CODE).as_deref(),
        Some("NOT_FOUND")
    );
    assert_eq!(
        status(client),
        (StatusCode::Error, "no such user".to_owned())
    );
    assert_eq!(
        attr_str(client, semconv::ERROR_TYPE).as_deref(),
        Some("NOT_FOUND")
    );
    assert_eq!(
        attr_str(server, semconv::RPC_RESPONSE_STATUS_CODE).as_deref(),
        Some("NOT_FOUND")
    );
    assert_eq!(status(server).0, StatusCode::Unset);
    assert_eq!(attr_str(server, semconv::ERROR_TYPE), None);
}

/// Calls `path` (any method, known to the server or not) with an empty message through the
/// traced client, under a new root span, as a gRPC client library would put it on the wire;
/// returns the root context and the `grpc-status` the server answered.
async fn call_path(addr: SocketAddr, root_name: &'static str, path: &str) -> (Context, String) {
    use tower::ServiceExt as _;

    crate::telemetry();
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let client = ServiceBuilder::new()
        .layer(GrpcClientLayer::new(instrumentation()))
        .service(channel);
    // One length-prefixed message: uncompressed, zero bytes long (an empty protobuf message).
    let frame = tonic::codegen::Bytes::from_static(&[0, 0, 0, 0, 0]);
    let request = http::Request::post(format!("http://{addr}{path}"))
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header(http::header::TE, "trailers")
        .body(tonic::body::Body::new(http_body_util::Full::new(frame)))
        .expect("request");
    let root = Context::current_with_span(test_tracer().start(root_name));
    let response = client
        .oneshot(request)
        .with_context(root.clone())
        .await
        .expect("a response");
    root.span().end();
    // tonic's unknown-method answers are trailers-only: the status is in the headers.
    let code = response
        .headers()
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (root, code)
}

/// The server span of a call to a method the server does not implement: `rpc.method` is
/// `_OTHER` (once), the method asked for is in `rpc.method_original`, the span is named after
/// `rpc.system.name`, and `UNIMPLEMENTED` is a server error.
fn assert_unknown_method_server_span(spans: &[lightstep_receiver::ReceivedSpan], asked: &str) {
    let server = with_kind(spans, "grpc", SpanKind::Server);
    assert_eq!(
        attr_str(server, semconv::RPC_METHOD).as_deref(),
        Some("_OTHER")
    );
    assert_eq!(attr_count(server, semconv::RPC_METHOD), 1, "{server:#?}");
    assert_eq!(
        attr_str(server, semconv::RPC_METHOD_ORIGINAL).as_deref(),
        Some(asked)
    );
    assert_eq!(attr_count(server, semconv::RPC_METHOD_ORIGINAL), 1);
    assert_eq!(
        attr_str(server, semconv::RPC_SYSTEM_NAME).as_deref(),
        Some("grpc")
    );
    assert_eq!(
        attr_str(server, semconv::RPC_RESPONSE_STATUS_CODE).as_deref(),
        Some("UNIMPLEMENTED")
    );
    assert_eq!(status(server).0, StatusCode::Error);
    assert_eq!(
        attr_str(server, semconv::ERROR_TYPE).as_deref(),
        Some("UNIMPLEMENTED")
    );
    // Nothing is named after the method the client made up.
    assert!(
        !spans
            .iter()
            .any(|s| s.name() == asked && s.span().kind == SpanKind::Server as i32),
        "{spans:#?}"
    );
}

#[tokio::test]
async fn an_unknown_method_of_a_known_service_is_other() {
    const ASKED: &str = "grpc.health.v1.Health/Nope";
    crate::telemetry();
    let addr = serve().await;
    let (root, code) = call_path(addr, "unknown method", "/grpc.health.v1.Health/Nope").await;
    assert_eq!(code, "12", "UNIMPLEMENTED");

    let spans = spans_of(root.span().span_context().trace_id(), 3).await;
    assert_eq!(spans.len(), 3, "{spans:#?}");
    assert_unknown_method_server_span(&spans, ASKED);
    let client = with_kind(&spans, ASKED, SpanKind::Client);
    let server = with_kind(&spans, "grpc", SpanKind::Server);
    assert!(is_child_of(server, client));
}

#[tokio::test]
async fn an_unknown_service_is_other() {
    const ASKED: &str = "pkg.Missing/Get";
    crate::telemetry();
    let addr = serve().await;
    let (root, code) = call_path(addr, "unknown service", "/pkg.Missing/Get").await;
    assert_eq!(code, "12", "UNIMPLEMENTED");

    let spans = spans_of(root.span().span_context().trace_id(), 3).await;
    assert_eq!(spans.len(), 3, "{spans:#?}");
    assert_unknown_method_server_span(&spans, ASKED);
}

/// A handler that answers `UNIMPLEMENTED` itself (with a message) is a method the server
/// knows: it keeps its name.
#[tokio::test]
async fn a_known_method_that_answers_unimplemented_keeps_its_name() {
    const WATCH: &str = "grpc.health.v1.Health/Watch";
    crate::telemetry();
    let addr = serve().await;
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let channel = ServiceBuilder::new()
        .layer(GrpcClientLayer::new(instrumentation()))
        .service(channel);
    let mut client = HealthClient::new(channel);
    let root = Context::current_with_span(test_tracer().start("known but unimplemented"));
    let result = client
        .watch(HealthCheckRequest {
            service: "ada".to_owned(),
        })
        .with_context(root.clone())
        .await;
    root.span().end();
    assert_eq!(
        result.expect_err("unimplemented").code(),
        tonic::Code::Unimplemented
    );

    let spans = spans_of(root.span().span_context().trace_id(), 3).await;
    let server = with_kind(&spans, WATCH, SpanKind::Server);
    assert_eq!(
        attr_str(server, semconv::RPC_METHOD).as_deref(),
        Some(WATCH)
    );
    assert_eq!(attr_count(server, semconv::RPC_METHOD), 1);
    assert_eq!(attr_str(server, semconv::RPC_METHOD_ORIGINAL), None);
    assert_eq!(
        attr_str(server, semconv::RPC_RESPONSE_STATUS_CODE).as_deref(),
        Some("UNIMPLEMENTED")
    );
    assert_eq!(status(server), (StatusCode::Error, "watch".to_owned()));
}
