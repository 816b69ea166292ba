//! Not API: the ingest path without sockets, reachable from `benches/ingest.rs` and the fuzz
//! targets only. May change at any time.

use std::sync::Arc;

use crate::store::{Protocol, RequestInfo, SpanStore, WhenFull};

/// A store as the receiver makes it, with the default byte budget.
pub fn store(max_spans: usize) -> SpanStore {
    SpanStore::new(
        max_spans,
        crate::DEFAULT_MAX_STORED_BYTES,
        WhenFull::RejectNew,
    )
}

/// Request metadata as a gRPC export brings it.
pub fn request_info(headers: http::HeaderMap) -> Arc<RequestInfo> {
    Arc::new(RequestInfo::new(Protocol::Grpc, &headers, None, false))
}

/// Stores an encoded `ExportTraceServiceRequest` as a gRPC export does, returning the
/// number of spans accepted (`None` for an undecodable body).
pub fn ingest_protobuf(store: &SpanStore, body: &[u8], info: &Arc<RequestInfo>) -> Option<u64> {
    store.ingest_protobuf(body, info).ok().map(|o| o.accepted)
}

/// The protobuf encoding an OTLP/JSON body is transcoded into (`None` when it is refused),
/// and the most it may take, in bytes.
pub fn json_to_protobuf(body: &[u8]) -> (Option<Vec<u8>>, usize) {
    (
        crate::json::to_protobuf(body).ok(),
        crate::json::output_capacity(body.len()),
    )
}

/// One export request, as it would arrive on a connection, through the receiver's own
/// handler (framing, gzip, the in-flight budget, decoding, the store).
#[derive(Debug, Clone)]
pub struct Export {
    /// gRPC (`application/grpc`, `frames` then carry the gRPC message framing themselves)
    /// or OTLP/HTTP.
    pub grpc: bool,
    /// OTLP/JSON rather than protobuf (OTLP/HTTP only).
    pub json: bool,
    /// `grpc-encoding: gzip` or `content-encoding: gzip`.
    pub gzip: bool,
    /// Whether the body's length is declared up front (`content-length`), rather than
    /// known only at its end (chunked, or HTTP/2 without it).
    pub declared_length: bool,
    /// The body, in the frames a client sends it in.
    pub frames: Vec<bytes::Bytes>,
}

/// What the receiver answered, and what it holds afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The `grpc-status` of a gRPC answer.
    pub grpc_status: Option<String>,
    /// Bytes still charged to the in-flight budget once the answer is made: always zero,
    /// or a request leaked its charge.
    pub in_flight_after: usize,
    /// Spans in the store.
    pub spans_stored: usize,
}

/// Sends `export` through a receiver with the given request size limit and in-flight
/// budget, on a runtime of its own, and returns its answer.
pub fn handle_export(export: Export, max_request_bytes: usize, budget: usize) -> Answer {
    use std::time::Duration;

    use crate::service::{App, ConnInfo, Settings};

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    let (_shutdown_tx, shutdown) = tokio::sync::watch::channel(false);
    let store = store(1_000_000);
    let app = Arc::new(App::new(Settings {
        store: store.clone(),
        faults: crate::Faults::default(),
        token: None,
        max_request_bytes,
        max_in_flight_bytes: budget,
        body_timeout: Duration::from_secs(5),
        body_start_timeout: Duration::from_secs(5),
        min_body_rate: 1,
        shutdown,
    }));
    let length: usize = export.frames.iter().map(bytes::Bytes::len).sum();
    let mut request = http::Request::builder().method(http::Method::POST);
    request = if export.grpc {
        request
            .uri("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header("te", "trailers")
    } else {
        request.uri("/v1/traces").header(
            http::header::CONTENT_TYPE,
            if export.json {
                "application/json"
            } else {
                "application/x-protobuf"
            },
        )
    };
    if export.gzip {
        let name = if export.grpc {
            "grpc-encoding"
        } else {
            "content-encoding"
        };
        request = request.header(name, "gzip");
    }
    if export.declared_length {
        request = request.header(http::header::CONTENT_LENGTH, length);
    }
    let body = Frames {
        frames: export.frames.into(),
        declared: export.declared_length.then_some(length as u64),
    };
    let request = request.body(body).expect("a well-formed request");
    let conn = ConnInfo {
        peer: std::net::SocketAddr::from(([127, 0, 0, 1], 4318)),
        tls: false,
    };
    let response = runtime
        .block_on(Arc::clone(&app).handle(request, conn))
        .unwrap_or_else(|never| match never {});
    Answer {
        status: response.status().as_u16(),
        grpc_status: response
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        in_flight_after: app.in_flight_bytes(),
        spans_stored: store.len(),
    }
}

/// A request body that hands out the frames it was given.
struct Frames {
    frames: std::collections::VecDeque<bytes::Bytes>,
    declared: Option<u64>,
}

impl http_body::Body for Frames {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Ready(
            self.frames
                .pop_front()
                .map(|f| Ok(http_body::Frame::data(f))),
        )
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self.declared {
            Some(n) => http_body::SizeHint::with_exact(n),
            None => http_body::SizeHint::default(),
        }
    }
}
