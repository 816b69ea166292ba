//! Backends that answer what no well-behaved one would: the export fails with a reason, and
//! nothing panics in the pipeline.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::StreamBody;
use hyper::body::{Frame, Incoming};
use lightstep_config::Protocol;
use lightstep_exporter::{ExportFailure, Pipeline};
use opentelemetry::trace::Tracer as _;

use crate::config_for;

/// A plaintext HTTP/2 backend that answers every request as gRPC with `trailers`.
async fn grpc_backend_answering(trailers: Vec<(&'static str, &'static str)>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let trailers = trailers.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_: http::Request<Incoming>| {
                    let mut map = http::HeaderMap::new();
                    for (name, value) in &trailers {
                        map.insert(*name, http::HeaderValue::from_static(value));
                    }
                    let frames = [Ok::<_, Infallible>(Frame::<bytes::Bytes>::trailers(map))];
                    let body = StreamBody::new(futures_util::stream::iter(frames));
                    async move {
                        Ok::<_, Infallible>(
                            http::Response::builder()
                                .header("content-type", "application/grpc")
                                .body(body)
                                .unwrap(),
                        )
                    }
                });
                let _ =
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                        .await;
            });
        }
    });
    addr
}

/// `grpc-status-details-bin` must be base64; tonic reads it with an `expect`. A backend (or a
/// proxy) that sends anything else fails the export like any error status, with its code and
/// message, and the pipeline goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_details_that_are_not_base64_fail_the_export_without_a_panic() {
    let addr = grpc_backend_answering(vec![
        // INVALID_ARGUMENT: not retried, so the flush ends with the one attempt.
        ("grpc-status", "3"),
        ("grpc-message", "backend%20says%20no"),
        ("grpc-status-details-bin", "!not base64!"),
    ])
    .await;
    let config = config_for(&format!("http://{addr}"), Protocol::Grpc)
        .with_scheduled_delay(Duration::from_secs(3600))
        .with_export_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::<ExportFailure>::new()));
    let pipeline = {
        let seen = Arc::clone(&seen);
        Pipeline::builder(config)
            .on_export_error(move |failure| seen.lock().unwrap().push(failure.clone()))
            .build()
            .unwrap()
    };
    pipeline.tracer().in_span("to a hostile backend", |_| {});
    let error = pipeline.force_flush().await.expect_err("the export fails");
    let failures = seen.lock().unwrap().clone();
    let said = format!("{error} {failures:?}");
    // The backend's status came through (a panic in the export's task ends it without one).
    assert!(
        failures
            .iter()
            .any(|f| f.message.contains("InvalidArgument: backend says no")),
        "the failure is the backend's status: {said}"
    );
    // The pipeline still exports afterwards: it was not taken down.
    pipeline.tracer().in_span("again", |_| {});
    assert!(pipeline.force_flush().await.is_err());
    let _ = pipeline.shutdown().await;
}
