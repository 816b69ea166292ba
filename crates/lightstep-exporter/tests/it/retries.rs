//! What the exporter retries and how long it waits, against stand-in backends on loopback that
//! answer each export from a script: every code and status the OTLP specification calls
//! transient is retried and no other, gRPC `RetryInfo` and HTTP `Retry-After` (seconds and
//! HTTP-date) are waited for, and a wait longer than the export's budget is cut at the budget,
//! the spans going back to the queue rather than being lost.
//!
//! Waits are checked from below only (a retry never comes before the delay the backend asked
//! for), with generous upper bounds: a loaded machine may be late, never early.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use lightstep_config::Protocol;
use lightstep_exporter::{ExporterError, LightstepExporter};
use opentelemetry::trace::Tracer;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;
use tonic_types::{ErrorDetails, StatusExt as _};

use crate::{config_for, exporter, read_http1_request};

/// What a stand-in backend saw: when each export arrived, and the spans of those it accepted.
#[derive(Default)]
struct Seen {
    arrivals: Mutex<Vec<Instant>>,
    accepted_spans: AtomicUsize,
}

impl Seen {
    fn arrivals(&self) -> Vec<Instant> {
        self.arrivals.lock().unwrap().clone()
    }

    /// The time between the arrivals of export `i` and export `i + 1`.
    fn gap(&self, i: usize) -> Duration {
        let arrivals = self.arrivals();
        arrivals[i + 1] - arrivals[i]
    }
}

/// A gRPC backend that answers the next exports with the statuses of its script, then accepts.
struct ScriptedGrpc {
    script: Mutex<VecDeque<tonic::Status>>,
    seen: Arc<Seen>,
}

#[tonic::async_trait]
impl TraceService for ScriptedGrpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.seen.arrivals.lock().unwrap().push(Instant::now());
        if let Some(status) = self.script.lock().unwrap().pop_front() {
            return Err(status);
        }
        let spans = spans_in(request.get_ref());
        self.seen.accepted_spans.fetch_add(spans, Ordering::SeqCst);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn spans_in(request: &ExportTraceServiceRequest) -> usize {
    request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum()
}

/// Starts a [`ScriptedGrpc`] on a loopback port; its endpoint and what it sees.
async fn grpc_backend(script: Vec<tonic::Status>) -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let service = ScriptedGrpc {
        script: Mutex::new(script.into()),
        seen: Arc::clone(&seen),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(service))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    (format!("http://{addr}"), seen)
}

/// An OTLP/HTTP backend that answers the next exports with the status lines and headers of its
/// script (`"503 Service Unavailable\r\nretry-after: 2"`), then accepts with `200 OK`.
fn http_backend(script: Vec<String>) -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let script = Arc::new(Mutex::new(VecDeque::from(script)));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let backend_seen = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let (seen, script) = (Arc::clone(&backend_seen), Arc::clone(&script));
            std::thread::spawn(move || {
                use std::io::Write as _;
                let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
                // Requests on the same connection (the client keeps it alive), one at a time.
                loop {
                    let request = read_http1_request(&mut stream);
                    if request.is_empty() {
                        return;
                    }
                    seen.arrivals.lock().unwrap().push(Instant::now());
                    let answer = script.lock().unwrap().pop_front();
                    let head = answer.unwrap_or_else(|| {
                        let body_at = request
                            .windows(4)
                            .position(|w| w == b"\r\n\r\n")
                            .map_or(request.len(), |p| p + 4);
                        let decoded = ExportTraceServiceRequest::decode(&request[body_at..])
                            .expect("an OTLP protobuf body");
                        seen.accepted_spans
                            .fetch_add(spans_in(&decoded), Ordering::SeqCst);
                        "200 OK".to_owned()
                    });
                    let response = format!("HTTP/1.1 {head}\r\ncontent-length: 0\r\n\r\n");
                    if stream.write_all(response.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (format!("http://{addr}/v1/traces"), seen)
}

/// An exporter for a stand-in: exports of 30 s (the default), flushes of up to 30 s, one span
/// a batch so that each export is one request.
fn exporter_for(endpoint: &str, protocol: Protocol, export_timeout: Duration) -> LightstepExporter {
    exporter(
        config_for(endpoint, protocol)
            .with_export_timeout(export_timeout)
            .with_shutdown_timeout(Duration::from_secs(30)),
    )
}

fn end_one(exporter: &LightstepExporter, name: &'static str) {
    exporter.tracer().in_span(name, |_| {});
}

/// `Undelivered` with that many spans failed and none dropped.
#[track_caller]
fn assert_failed(result: Result<(), ExporterError>, expected_failed: u64) {
    match result {
        Err(ExporterError::Undelivered {
            failed, dropped: 0, ..
        }) if failed == expected_failed => {}
        other => panic!("expected {expected_failed} failed, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transient_grpc_code_is_retried_and_no_other() {
    use tonic::Code;
    let transient = [
        Code::Cancelled,
        Code::DeadlineExceeded,
        Code::Aborted,
        Code::OutOfRange,
        Code::Unavailable,
        Code::DataLoss,
    ];
    let script = transient
        .iter()
        .map(|code| tonic::Status::new(*code, "try again"))
        .collect();
    let (endpoint, seen) = grpc_backend(script).await;
    let exporter = exporter_for(&endpoint, Protocol::Grpc, Duration::from_secs(30));
    end_one(&exporter, "retried");
    exporter
        .force_flush()
        .await
        .expect("delivered after retries");
    assert_eq!(seen.arrivals().len(), transient.len() + 1);
    assert_eq!(seen.accepted_spans.load(Ordering::SeqCst), 1);

    // Each of these fails the export at once: one request, the span counted as failed.
    for code in [
        Code::Unknown,
        Code::InvalidArgument,
        Code::PermissionDenied,
        Code::Unauthenticated,
        Code::Internal,
        Code::Unimplemented,
    ] {
        let (endpoint, seen) = grpc_backend(vec![tonic::Status::new(code, "no")]).await;
        let exporter = exporter_for(&endpoint, Protocol::Grpc, Duration::from_secs(30));
        end_one(&exporter, "refused");
        assert_failed(exporter.force_flush().await, 1);
        assert_eq!(seen.arrivals().len(), 1, "{code:?} was retried");
        assert!(
            exporter
                .stats()
                .last_error
                .is_some_and(|e| e.contains(&format!("{code:?}"))),
            "{code:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_resource_exhausted_is_retried_only_with_retry_info_and_after_its_delay() {
    let delay = Duration::from_millis(1500);
    let throttled = tonic::Status::with_error_details(
        tonic::Code::ResourceExhausted,
        "slow down",
        ErrorDetails::with_retry_info(Some(delay)),
    );
    let (endpoint, seen) = grpc_backend(vec![throttled]).await;
    let exporter = exporter_for(&endpoint, Protocol::Grpc, Duration::from_secs(30));
    end_one(&exporter, "throttled");
    exporter
        .force_flush()
        .await
        .expect("delivered after the delay");
    assert_eq!(seen.arrivals().len(), 2);
    assert!(seen.gap(0) >= delay, "retried after {:?}", seen.gap(0));

    // Without RetryInfo the backend does not say it will recover: not retried, failed.
    let exhausted = tonic::Status::new(tonic::Code::ResourceExhausted, "full");
    let (endpoint, seen) = grpc_backend(vec![exhausted]).await;
    let exporter = exporter_for(&endpoint, Protocol::Grpc, Duration::from_secs(30));
    end_one(&exporter, "exhausted");
    assert_failed(exporter.force_flush().await, 1);
    assert_eq!(seen.arrivals().len(), 1);

    // RetryInfo on another transient code sets its delay too.
    let unavailable = tonic::Status::with_error_details(
        tonic::Code::Unavailable,
        "restarting",
        ErrorDetails::with_retry_info(Some(delay)),
    );
    let (endpoint, seen) = grpc_backend(vec![unavailable]).await;
    let exporter = exporter_for(&endpoint, Protocol::Grpc, Duration::from_secs(30));
    end_one(&exporter, "unavailable");
    exporter
        .force_flush()
        .await
        .expect("delivered after the delay");
    assert!(seen.gap(0) >= delay, "retried after {:?}", seen.gap(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_retries_429_502_503_504_honouring_retry_after_in_both_forms() {
    // An HTTP-date three seconds from now, answered first: it holds whole seconds, so the wait
    // is two to three seconds.
    let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3));
    let script = vec![
        format!("429 Too Many Requests\r\nretry-after: {date}"),
        "503 Service Unavailable\r\nretry-after: 2".to_owned(),
        "502 Bad Gateway".to_owned(),
        "504 Gateway Timeout".to_owned(),
    ];
    let (url, seen) = http_backend(script);
    let exporter = exporter_for(&url, Protocol::HttpProtobuf, Duration::from_secs(30));
    end_one(&exporter, "retried");
    exporter
        .force_flush()
        .await
        .expect("delivered after retries");
    assert_eq!(seen.arrivals().len(), 5);
    assert_eq!(seen.accepted_spans.load(Ordering::SeqCst), 1);
    assert!(
        seen.gap(0) >= Duration::from_millis(1500),
        "{:?}",
        seen.gap(0)
    );
    assert!(seen.gap(1) >= Duration::from_secs(2), "{:?}", seen.gap(1));

    // Any other status fails the export at once, Retry-After or not.
    for head in [
        "400 Bad Request",
        "401 Unauthorized",
        "413 Payload Too Large\r\nretry-after: 1",
        "500 Internal Server Error",
    ] {
        let (url, seen) = http_backend(vec![head.to_owned()]);
        let exporter = exporter_for(&url, Protocol::HttpProtobuf, Duration::from_secs(30));
        end_one(&exporter, "refused");
        assert_failed(exporter.force_flush().await, 1);
        assert_eq!(seen.arrivals().len(), 1, "{head} was retried");
    }
}

/// The backend asks for an hour; the export's budget is a second. The export waits out its
/// budget (no request before it ends), its span goes back to the queue instead of failing, and
/// the next export delivers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delay_longer_than_the_budget_is_cut_at_the_budget_and_loses_nothing() {
    let budget = Duration::from_secs(1);
    let (url, http_seen) =
        http_backend(vec!["503 Service Unavailable\r\nretry-after: 3600".into()]);
    let throttled = tonic::Status::with_error_details(
        tonic::Code::ResourceExhausted,
        "slow down",
        ErrorDetails::with_retry_info(Some(Duration::from_secs(3600))),
    );
    let (endpoint, grpc_seen) = grpc_backend(vec![throttled]).await;
    for (protocol, url, seen) in [
        (Protocol::HttpProtobuf, url, http_seen),
        (Protocol::Grpc, endpoint, grpc_seen),
    ] {
        let exporter = exporter_for(&url, protocol, budget);
        end_one(&exporter, "throttled");
        let started = Instant::now();
        exporter
            .force_flush()
            .await
            .expect("delivered by the next export");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{protocol:?}: {:?}",
            started.elapsed()
        );
        assert_eq!(seen.arrivals().len(), 2, "{protocol:?}");
        assert!(
            seen.gap(0) >= budget / 2,
            "{protocol:?}: sent again after {:?}",
            seen.gap(0)
        );
        let stats = exporter.stats();
        assert_eq!(
            (stats.exported, stats.dropped, stats.failed),
            (1, 0, 0),
            "{protocol:?}: {stats:?}"
        );
        assert_eq!(seen.accepted_spans.load(Ordering::SeqCst), 1);
    }
}
