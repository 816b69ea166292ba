//! Two hops over HTTP: a hyper client (with `HttpClientLayer`) calls an axum server (with
//! `HttpServerLayer`) whose handler goes through a `#[tracing::instrument]` function to SQLite.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{MatchedPath, Path, State};
use axum::routing::get;
use http::StatusCode;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use lightstep_receiver::proto::trace::v1::span::SpanKind;
use lightstep_receiver::proto::trace::v1::status::StatusCode as SpanStatus;
use opentelemetry::baggage::BaggageExt as _;
use opentelemetry::trace::{FutureExt as _, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_semantic_conventions::attribute as semconv;
use tower::{ServiceBuilder, ServiceExt as _};

use lightstep_instrument::tower::{HttpClientLayer, HttpServerLayer};

use crate::{
    attr_int, attr_str, database, instrumentation, is_child_of, kind, named, parent_is_remote,
    spans_of, status as status_of, test_tracer,
};

type Db = std::sync::Arc<std::sync::Mutex<rusqlite::Connection>>;

#[tracing::instrument(skip(db))]
async fn load_user(db: Db, id: i64) -> Result<String, rusqlite::Error> {
    tokio::task::yield_now().await;
    // Legacy code that builds its SQL by hand: the literal must not reach the span.
    let statement = format!("SELECT name FROM users WHERE id = {id}");
    instrumentation()
        .database("sqlite", &statement)
        .with_namespace("main")
        .trace(async move {
            let conn = db.lock().expect("database lock");
            conn.query_row(&statement, [], |row| row.get(0))
        })
        .await
}

async fn user(State(db): State<Db>, Path(id): Path<i64>) -> Result<String, StatusCode> {
    match load_user(db, id).await {
        Ok(name) => Ok(name),
        Err(rusqlite::Error::QueryReturnedNoRows) => Err(StatusCode::NOT_FOUND),
        Err(_) => Err(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

async fn tenant() -> String {
    Context::current()
        .baggage()
        .get("tenant")
        .map(|v| v.to_string())
        .unwrap_or_default()
}

async fn serve() -> SocketAddr {
    let layer = HttpServerLayer::new(instrumentation()).with_route_from(|extensions| {
        extensions
            .get::<MatchedPath>()
            .map(|path| path.as_str().to_owned())
    });
    let app = Router::new()
        .route("/users/{id}", get(user))
        .route("/tenant", get(tenant))
        .with_state(database())
        .layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Sends `GET uri` through the traced client, under `cx`, and returns status and body.
async fn get_under(cx: &Context, uri: String) -> (StatusCode, String) {
    crate::telemetry();
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let client = ServiceBuilder::new()
        .layer(HttpClientLayer::new(instrumentation()))
        .service(client);
    let request = http::Request::get(uri).body(Empty::new()).expect("request");
    let response = client
        .oneshot(request)
        .with_context(cx.clone())
        .await
        .expect("response");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn client_server_database_is_one_trace() {
    crate::telemetry();
    let addr = serve().await;
    let root = Context::current_with_span(test_tracer().start("two-hop http"));
    let (status, body) =
        get_under(&root, format!("http://{addr}/users/1?token=hunter2&page=1")).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ada"));
    root.span().end();

    let trace_id = root.span().span_context().trace_id();
    let spans = spans_of(trace_id, 5).await;
    let root = named(&spans, "two-hop http");
    let client = named(&spans, "GET");
    let server = named(&spans, "GET /users/{id}");
    let function = named(&spans, "load_user");
    let db = named(&spans, "SELECT users");

    // One trace, linked hop by hop.
    assert_eq!(spans.len(), 5, "{spans:#?}");
    assert!(is_child_of(client, root));
    assert!(is_child_of(server, client));
    assert!(parent_is_remote(server));
    assert!(is_child_of(function, server));
    assert!(is_child_of(db, function));
    assert_eq!(server.scope().name, lightstep_instrument::SCOPE_NAME);

    assert_eq!(kind(client), SpanKind::Client);
    assert_eq!(
        attr_str(client, semconv::URL_FULL),
        Some(format!("http://{addr}/users/1?token=REDACTED&page=1"))
    );
    assert_eq!(
        attr_str(client, semconv::SERVER_ADDRESS).as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(
        attr_int(client, semconv::SERVER_PORT),
        Some(addr.port().into())
    );
    assert_eq!(
        attr_int(client, semconv::HTTP_RESPONSE_STATUS_CODE),
        Some(200)
    );
    assert_eq!(status_of(client).0, SpanStatus::Unset);

    assert_eq!(kind(server), SpanKind::Server);
    assert_eq!(
        attr_str(server, semconv::HTTP_ROUTE).as_deref(),
        Some("/users/{id}")
    );
    assert_eq!(
        attr_str(server, semconv::URL_PATH).as_deref(),
        Some("/users/1")
    );
    assert_eq!(
        attr_str(server, semconv::URL_QUERY).as_deref(),
        Some("token=REDACTED&page=1")
    );
    assert_eq!(
        attr_str(server, semconv::HTTP_REQUEST_METHOD).as_deref(),
        Some("GET")
    );
    assert_eq!(
        attr_str(server, semconv::URL_SCHEME).as_deref(),
        Some("http")
    );
    assert_eq!(
        attr_str(server, semconv::NETWORK_PROTOCOL_VERSION).as_deref(),
        Some("1.1")
    );
    assert_eq!(
        attr_int(server, semconv::SERVER_PORT),
        Some(addr.port().into())
    );
    assert_eq!(
        attr_int(server, semconv::HTTP_RESPONSE_STATUS_CODE),
        Some(200)
    );
    assert_eq!(status_of(server).0, SpanStatus::Unset);

    assert_eq!(kind(db), SpanKind::Client);
    assert_eq!(
        attr_str(db, semconv::DB_SYSTEM_NAME).as_deref(),
        Some("sqlite")
    );
    assert_eq!(
        attr_str(db, semconv::DB_QUERY_TEXT).as_deref(),
        Some("SELECT name FROM users WHERE id = ?")
    );
    assert_eq!(
        attr_str(db, semconv::DB_OPERATION_NAME).as_deref(),
        Some("SELECT")
    );
    assert_eq!(
        attr_str(db, semconv::DB_COLLECTION_NAME).as_deref(),
        Some("users")
    );
    assert_eq!(attr_str(db, semconv::DB_NAMESPACE).as_deref(), Some("main"));
    for span in &spans {
        assert!(
            !span
                .span()
                .attributes
                .iter()
                .any(|kv| kv.key.ends_with("duration_ms")),
            "{span:#?}"
        );
    }
}

#[tokio::test]
async fn not_found_is_an_error_for_the_client_only() {
    crate::telemetry();
    let addr = serve().await;
    let root = Context::current_with_span(test_tracer().start("two-hop http 404"));
    let (status, _) = get_under(&root, format!("http://{addr}/users/99")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    root.span().end();

    let spans = spans_of(root.span().span_context().trace_id(), 5).await;
    let client = named(&spans, "GET");
    let server = named(&spans, "GET /users/{id}");
    let db = named(&spans, "SELECT users");
    assert_eq!(status_of(client).0, SpanStatus::Error);
    assert_eq!(
        attr_str(client, semconv::ERROR_TYPE).as_deref(),
        Some("404")
    );
    assert_eq!(status_of(server).0, SpanStatus::Unset);
    assert_eq!(attr_str(server, semconv::ERROR_TYPE), None);
    assert_eq!(
        attr_int(server, semconv::HTTP_RESPONSE_STATUS_CODE),
        Some(404)
    );
    // No rows is an error for the query, with an exception event.
    assert_eq!(status_of(db).0, SpanStatus::Error);
    assert_eq!(
        attr_str(db, semconv::ERROR_TYPE).as_deref(),
        Some("rusqlite::error::Error")
    );
    assert_eq!(db.span().events.len(), 1);
    assert_eq!(db.span().events[0].name, "exception");
}

#[tokio::test]
async fn baggage_travels_with_the_trace() {
    crate::telemetry();
    let addr = serve().await;
    let root = Context::current_with_span(test_tracer().start("baggage"))
        .with_baggage(vec![KeyValue::new("tenant", "acme")]);
    let (status, body) = get_under(&root, format!("http://{addr}/tenant")).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "acme"));
    root.span().end();
    let spans = spans_of(root.span().span_context().trace_id(), 3).await;
    assert_eq!(kind(named(&spans, "GET /tenant")), SpanKind::Server);
}

/// The same layer on a plain hyper server (no axum): there is no router to name the route, so
/// the span is named by the method alone, never by the raw path.
#[tokio::test]
async fn plain_hyper_server() {
    use std::convert::Infallible;

    use http_body_util::Full;
    use hyper::body::Incoming;
    use hyper_util::rt::TokioIo;
    use hyper_util::service::TowerToHyperService;

    crate::telemetry();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    let service = ServiceBuilder::new()
        .layer(HttpServerLayer::new(instrumentation()))
        .service(tower::service_fn(
            |_request: http::Request<Incoming>| async {
                let response = http::Response::builder()
                    .status(StatusCode::SERVICE_UNAVAILABLE)
                    .body(Full::new(Bytes::from_static(b"busy")))
                    .expect("response");
                Ok::<_, Infallible>(response)
            },
        ));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });

    let root = Context::current_with_span(test_tracer().start("hyper"));
    let (status, body) = get_under(&root, format!("http://{addr}/orders/7")).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "busy")
    );
    root.span().end();

    let spans = spans_of(root.span().span_context().trace_id(), 3).await;
    let client = crate::with_kind(&spans, "GET", SpanKind::Client);
    let server = crate::with_kind(&spans, "GET", SpanKind::Server);
    assert!(is_child_of(server, client));
    assert_eq!(
        attr_str(server, semconv::URL_PATH).as_deref(),
        Some("/orders/7")
    );
    assert_eq!(attr_str(server, semconv::HTTP_ROUTE), None);
    assert_eq!(
        attr_int(server, semconv::HTTP_RESPONSE_STATUS_CODE),
        Some(503)
    );
    assert_eq!(status_of(server).0, SpanStatus::Error);
    assert_eq!(
        attr_str(server, semconv::ERROR_TYPE).as_deref(),
        Some("503")
    );
    assert_eq!(status_of(client).0, SpanStatus::Error);
}
