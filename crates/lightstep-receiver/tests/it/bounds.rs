//! What a client can make the receiver hold, and for how long: the store's byte budget, the
//! in-flight body budget, the idle timeout, the body timeout, and large bodies (decoded on the
//! blocking pool).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper_util::rt::{TokioExecutor, TokioIo};
use lightstep_receiver::proto::common::v1::{AnyValue, KeyValue, any_value};
use lightstep_receiver::proto::trace::v1::Span;
use lightstep_receiver::{Receiver, RunningReceiver, WhenFull};
use prost::Message as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tonic::Code;

use crate::common::*;

/// A span carrying `padding` bytes in an attribute.
fn padded(trace: u8, id: u8, padding: usize) -> Span {
    let mut span = span(trace, id, None, "padded");
    span.attributes
        .push(string_kv("padding", &"x".repeat(padding)));
    span
}

/// Polls `condition` until it holds (a guard against hangs, not a timing assertion).
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + HANG_GUARD;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn the_byte_budget_refuses_what_does_not_fit_and_says_so() {
    let rx = Receiver::builder()
        .with_max_stored_bytes(20_000)
        .start()
        .await
        .expect("start");
    assert_eq!(rx.store().max_stored_bytes(), 20_000);
    // Three spans of 8 KiB: two fit, by bytes (the span bound is far away).
    let spans = vec![padded(1, 1, 8192), padded(1, 2, 8192), padded(1, 3, 8192)];
    let resp = grpc_export(&rx.grpc_endpoint(), request("s", spans), &[], false)
        .await
        .expect("export");
    let ps = resp.partial_success.expect("partial success");
    assert_eq!(ps.rejected_spans, 1);
    assert!(
        ps.error_message.contains("store is full") && ps.error_message.contains("20000 bytes"),
        "{}",
        ps.error_message
    );
    assert_eq!(rx.store().len(), 2);
    let stored = rx.store().stored_bytes();
    assert!((16_384..=20_000).contains(&stored), "{stored}");
    // Small spans still fit beside them, over HTTP too.
    let resp = http_post(
        rx.http_addr(),
        &[("content-type", "application/x-protobuf")],
        request("s", vec![span(2, 1, None, "small")]).encode_to_vec(),
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.export_response().partial_success, None);
    // And a big one over HTTP does not.
    let resp = http_post(
        rx.http_addr(),
        &[("content-type", "application/x-protobuf")],
        request("s", vec![padded(3, 1, 8192)]).encode_to_vec(),
    )
    .await;
    assert_eq!(resp.status, 200);
    let ps = resp.export_response().partial_success.expect("partial");
    assert_eq!(ps.rejected_spans, 1);
    let stats = rx.stats();
    assert_eq!((stats.spans_accepted, stats.spans_rejected_full), (3, 2));
    assert!(rx.store().stored_bytes() <= 20_000);

    // Taking spans out gives their bytes back.
    rx.take_traces();
    assert_eq!(rx.store().stored_bytes(), 0);
    let resp = grpc_export(
        &rx.grpc_endpoint(),
        request("s", vec![padded(4, 1, 8192)]),
        &[],
        false,
    )
    .await
    .expect("export");
    assert_eq!(resp.partial_success, None);
    rx.shutdown().await;
}

#[tokio::test]
async fn the_byte_budget_evicts_the_oldest_but_never_for_a_span_that_cannot_fit() {
    let rx = Receiver::builder()
        .with_max_stored_bytes(20_000)
        .with_max_request_bytes(1 << 20)
        .with_full_policy(WhenFull::EvictOldest)
        .start()
        .await
        .expect("start");
    for trace in 1..=3 {
        let resp = grpc_export(
            &rx.grpc_endpoint(),
            request("s", vec![padded(trace, 1, 8192)]),
            &[],
            false,
        )
        .await
        .expect("export");
        assert_eq!(resp.partial_success, None);
    }
    let kept: Vec<_> = rx.spans().iter().map(|s| s.trace_id().0[0]).collect();
    assert_eq!(kept, [2, 3]);
    assert_eq!(rx.stats().spans_evicted, 1);
    assert!(rx.store().stored_bytes() <= 20_000);
    // Larger than the whole budget: refused (and said so) without emptying the store.
    let resp = grpc_export(
        &rx.grpc_endpoint(),
        request("s", vec![padded(9, 1, 30_000)]),
        &[],
        false,
    )
    .await
    .expect("export");
    assert_eq!(resp.partial_success.expect("partial").rejected_spans, 1);
    assert_eq!(rx.store().len(), 2);
    rx.shutdown().await;
}

#[tokio::test]
async fn a_large_resource_is_charged_once_for_all_its_spans() {
    let rx = Receiver::builder()
        .with_max_stored_bytes(20_000)
        .start()
        .await
        .expect("start");
    let mut req = request("s", (1..=20).map(|id| span(id, 1, None, "small")).collect());
    if let Some(resource) = req.resource_spans[0].resource.as_mut() {
        resource
            .attributes
            .push(string_kv("big", &"r".repeat(8192)));
    }
    let resp = grpc_export(&rx.grpc_endpoint(), req, &[], false)
        .await
        .expect("export");
    assert_eq!(resp.partial_success, None);
    let stored = rx.store().stored_bytes();
    assert!((8192..20_000).contains(&stored), "{stored}");
    // While any of its spans is stored, the resource stays charged; then it is given back.
    for trace in 1..=19 {
        rx.store()
            .take_trace(lightstep_receiver::TraceId([trace; 16]))
            .expect("trace");
    }
    assert_eq!(rx.store().len(), 1);
    assert!(rx.store().stored_bytes() > 8192);
    assert_eq!(rx.store().take_spans().len(), 1);
    assert_eq!(rx.store().stored_bytes(), 0);
    rx.shutdown().await;
}

/// An HTTP/2 gRPC export whose body the test sends piece by piece; the task returns the
/// response. Aborting the task closes the connection.
fn grpc_stream(
    addr: std::net::SocketAddr,
) -> (
    http_body_util::channel::Sender<Bytes>,
    tokio::task::JoinHandle<HttpResponse>,
) {
    let (tx, body) = http_body_util::channel::Channel::<Bytes>::new(4);
    let req = http::Request::builder()
        .method(http::Method::POST)
        .uri(format!("http://{addr}{EXPORT_PATH}"))
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header("te", "trailers")
        .body(body)
        .expect("request");
    let task = tokio::spawn(async move {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                .await
                .expect("h2 handshake");
        let mut conn = std::pin::pin!(conn);
        let exchange = async move {
            let resp = sender.send_request(req).await.expect("response");
            let (parts, body) = resp.into_parts();
            let collected = body.collect().await.expect("body");
            HttpResponse {
                status: parts.status,
                headers: parts.headers,
                trailers: collected.trailers().cloned(),
                body: collected.to_bytes(),
            }
        };
        tokio::select! {
            resp = exchange => resp,
            _ = &mut conn => panic!("the connection ended before the response"),
        }
    });
    (tx, task)
}

fn grpc_frame(message: &[u8]) -> Vec<u8> {
    let mut frame = vec![0];
    frame.extend_from_slice(&u32::try_from(message.len()).expect("len").to_be_bytes());
    frame.extend_from_slice(message);
    frame
}

async fn in_flight_settles(rx: &RunningReceiver, bytes: usize) {
    eventually(&format!("{bytes} bytes in flight"), || {
        rx.in_flight_bytes() == bytes
    })
    .await;
}

/// More than what one of these tests' requests is charged for its headers (a few hundred
/// bytes a header), less than any body they reserve.
const ONE_REQUEST_HEADERS: usize = 4096;

/// Waits until the receiver holds one request with a body reservation of `bytes`: that, and
/// the request's headers.
async fn holds_one_body_of(rx: &RunningReceiver, bytes: usize) {
    eventually(&format!("a request holding {bytes} bytes of body"), || {
        (bytes + 1..bytes + ONE_REQUEST_HEADERS).contains(&rx.in_flight_bytes())
    })
    .await;
}

#[tokio::test]
async fn the_in_flight_budget_makes_uploads_wait_then_answers_retryable_unavailable() {
    let rx = Receiver::builder()
        .with_max_request_bytes(64 * 1024)
        .with_max_in_flight_bytes(64 * 1024)
        .start()
        .await
        .expect("start");
    // A slow upload of about 58 KiB reserves its size from its first bytes on.
    let holder_message = request("s", vec![padded(1, 1, 58 * 1024)]).encode_to_vec();
    let holder_frame = grpc_frame(&holder_message);
    let (mut holder, holder_done) = grpc_stream(rx.grpc_addr());
    holder
        .send_data(Bytes::copy_from_slice(&holder_frame[..100]))
        .await
        .expect("send");
    holds_one_body_of(&rx, holder_frame.len()).await;

    // Others that do not fit beside it wait, then get a retryable refusal.
    let other = request("s", vec![padded(2, 1, 8 * 1024)]);
    let resp = http_post(
        rx.http_addr(),
        &[("content-type", "application/x-protobuf")],
        other.encode_to_vec(),
    )
    .await;
    assert_eq!(resp.status, 503, "{resp:?}");
    assert_eq!(resp.headers["retry-after"], "1");
    let status = grpc_export(&rx.grpc_endpoint(), other.clone(), &[], false)
        .await
        .expect_err("no room");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(rx.stats().requests_throttled, 2);
    assert!(rx.spans().is_empty());

    // One that waits gets in once the slow upload is done; both are stored.
    let rx_http = rx.http_addr();
    let body = other.encode_to_vec();
    let waiter = tokio::spawn(async move {
        http_post(rx_http, &[("content-type", "application/x-protobuf")], body).await
    });
    holder
        .send_data(Bytes::copy_from_slice(&holder_frame[100..]))
        .await
        .expect("send");
    drop(holder);
    let holder_resp = tokio::time::timeout(HANG_GUARD, holder_done)
        .await
        .expect("hang guard")
        .expect("holder task");
    assert_eq!(holder_resp.grpc_status(), Some(Code::Ok), "{holder_resp:?}");
    let waiter_resp = waiter.await.expect("waiter task");
    assert_eq!(waiter_resp.status, 200);
    assert_eq!(rx.store().len(), 2);
    in_flight_settles(&rx, 0).await;

    // A client that goes away mid-upload gives its reservation back.
    let (mut gone, gone_task) = grpc_stream(rx.grpc_addr());
    gone.send_data(Bytes::copy_from_slice(&holder_frame[..100]))
        .await
        .expect("send");
    holds_one_body_of(&rx, holder_frame.len()).await;
    gone_task.abort();
    in_flight_settles(&rx, 0).await;
    rx.shutdown().await;
}

/// An OTLP/JSON body as serde writes it: `spans` spans carrying `padding` bytes each.
fn json_body(spans: usize, padding: usize) -> Vec<u8> {
    let spans = (0..spans)
        .map(|i| padded(1, u8::try_from(i % 250 + 1).expect("id"), padding))
        .collect();
    serde_json::to_vec(&request("s", spans)).expect("JSON")
}

/// A receiver whose request size limit and in-flight budget are both `budget` bytes.
async fn budget_receiver(budget: usize) -> RunningReceiver {
    Receiver::builder()
        .with_max_request_bytes(budget)
        .with_max_in_flight_bytes(budget)
        .start()
        .await
        .expect("start")
}

/// A client that has sent the headers of an OTLP/JSON upload of `declared` bytes, and nothing
/// of its body yet.
async fn json_upload_headers(addr: std::net::SocketAddr, declared: usize) -> TcpStream {
    let mut client = TcpStream::connect(addr).await.expect("connect");
    client
        .write_all(
            format!(
                "POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                 content-length: {declared}\r\nexpect: 100-continue\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .expect("write");
    client
}

#[tokio::test]
async fn an_otlp_json_body_is_charged_what_decoding_it_takes() {
    const BUDGET: usize = 1 << 20;
    let rx = budget_receiver(BUDGET).await;
    // A client that has sent only the headers of a JSON upload holds nothing (so slow clients
    // cannot take the budget with headers alone); once its first bytes arrive it reserves the
    // body and what transcoding it takes: a little over four times its size. Protobuf reserves
    // its size (tested above).
    let declared = 100_000;
    let mut holder = json_upload_headers(rx.http_addr(), declared).await;
    // `100 Continue` comes when the handler first asks for the body: past its header checks,
    // where the headers-only reservation used to be made.
    let mut interim = Vec::new();
    while !String::from_utf8_lossy(&interim).contains("100 Continue\r\n\r\n") {
        let mut buf = [0u8; 256];
        let n = tokio::time::timeout(HANG_GUARD, holder.read(&mut buf))
            .await
            .expect("hang guard: no 100 Continue")
            .expect("read");
        assert!(n > 0, "closed before 100 Continue: {interim:?}");
        interim.extend_from_slice(&buf[..n]);
    }
    // Meanwhile another upload of the whole budget's worth of protobuf is taken at once.
    let resp = http_post(
        rx.http_addr(),
        &[("content-type", "application/x-protobuf")],
        request("s", (0..200).map(|i| padded(2, i + 1, 4096)).collect()).encode_to_vec(),
    )
    .await;
    assert_eq!(resp.status, 200, "{resp:?}");
    let headers = rx.in_flight_bytes();
    assert!(
        (1..ONE_REQUEST_HEADERS).contains(&headers),
        "headers alone hold {headers} bytes: their own charge, and nothing for the body"
    );
    holder.write_all(b"{").await.expect("write");
    eventually("the JSON upload reserves", || {
        rx.in_flight_bytes() > ONE_REQUEST_HEADERS
    })
    .await;
    let charged = rx.in_flight_bytes();
    assert!(
        (4 * declared..5 * declared).contains(&charged),
        "{charged} bytes charged for {declared} of JSON"
    );
    drop(holder);
    in_flight_settles(&rx, 0).await;

    // A JSON body whose decoding would take more than the whole budget is refused with 413
    // and a message that says why, with a length (before its body is read) or without one;
    // the same request in protobuf is taken.
    let body = json_body(60, 4096);
    assert!(
        (BUDGET / 5..BUDGET / 2).contains(&body.len()),
        "{}",
        body.len()
    );
    let resp = http_post(
        rx.http_addr(),
        &[("content-type", "application/json")],
        body.clone(),
    )
    .await;
    assert_eq!(resp.status, 413, "{resp:?}");
    let message = resp.json()["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("in-flight budget of 1048576 bytes"),
        "{message}"
    );
    let status = chunked_post(rx.http_addr(), "application/json", &body, true).await;
    assert_eq!(status, 413);
    assert_eq!(rx.stats().requests_too_large, 2);
    assert_eq!(rx.spans().len(), 200, "a refused body stored spans");
    let resp = http_post(
        rx.http_addr(),
        &[("content-type", "application/x-protobuf")],
        request("s", (0..60).map(|i| padded(1, i + 1, 4096)).collect()).encode_to_vec(),
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(rx.spans().len(), 260);

    // A smaller JSON body fits, chunked or not, and gives its whole reservation back.
    let body = json_body(20, 4096);
    let resp = http_post(
        rx.http_addr(),
        &[("content-type", "application/json")],
        body.clone(),
    )
    .await;
    assert_eq!(resp.status, 200, "{resp:?}");
    let status = chunked_post(rx.http_addr(), "application/json", &body, true).await;
    assert_eq!(status, 200);
    assert_eq!(rx.spans().len(), 300);
    in_flight_settles(&rx, 0).await;
    rx.shutdown().await;
}

/// A gzip body inflates into a buffer that doubles as it fills; decoding JSON is charged
/// what the body takes once inflated, as for the same body sent plain, not what the doubling
/// left (up to twice the body), which refused with `413` (not retried by clients) a gzip body
/// whose plain form was taken.
#[tokio::test]
async fn a_gzip_json_body_is_charged_like_the_same_body_plain() {
    const BUDGET: usize = 650_000;
    let rx = budget_receiver(BUDGET).await;
    // Just over 128 KiB: the inflated buffer doubles (from 4 KiB) to 256 KiB.
    let body = json_body(31, 4096);
    assert!((131_073..150_000).contains(&body.len()), "{}", body.len());
    let json = [("content-type", "application/json")];
    let resp = http_post(rx.http_addr(), &json, body.clone()).await;
    assert_eq!(resp.status, 200, "{resp:?}");
    let resp = http_post(
        rx.http_addr(),
        &[json[0], ("content-encoding", "gzip")],
        gzip(&body),
    )
    .await;
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(rx.spans().len(), 62);
    in_flight_settles(&rx, 0).await;
    rx.shutdown().await;
}

/// While a gzip body inflates, the receiver holds both the compressed body and the inflated
/// buffer, and the in-flight budget is charged for both; the compressed body's share goes back
/// once it is inflated.
#[tokio::test]
async fn a_gzip_body_is_charged_with_its_compressed_bytes_while_it_inflates() {
    const BUDGET: usize = 1 << 20;
    let rx = budget_receiver(BUDGET).await;
    // A JSON upload that has begun holds part of the budget (about 4.25 times its length).
    let mut holder = json_upload_headers(rx.http_addr(), 100_000).await;
    holder.write_all(b"{").await.expect("write");
    eventually("the JSON upload reserves", || {
        rx.in_flight_bytes() > ONE_REQUEST_HEADERS
    })
    .await;
    let room = BUDGET - rx.in_flight_bytes();
    // A protobuf body of bytes gzip cannot shrink. Inflating it takes a buffer of twice the
    // compressed size: that fits in the room left, the buffer and the compressed body do not.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let noise: Vec<u8> = (0..room * 2 / 5)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let mut noisy = span(3, 1, None, "noisy");
    noisy.attributes.push(KeyValue {
        key: "noise".into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::BytesValue(noise)),
        }),
        ..KeyValue::default()
    });
    let compressed = gzip(&request("s", vec![noisy]).encode_to_vec());
    let c = compressed.len();
    assert!(2 * c <= room && 3 * c > room, "{c} compressed, {room} free");
    let headers = [
        ("content-type", "application/x-protobuf"),
        ("content-encoding", "gzip"),
    ];
    let resp = http_post(rx.http_addr(), &headers, compressed.clone()).await;
    assert_eq!(resp.status, 503, "{resp:?}");
    assert!(rx.spans().is_empty());
    // With the budget free, the same body is taken, and nothing stays charged.
    drop(holder);
    in_flight_settles(&rx, 0).await;
    let resp = http_post(rx.http_addr(), &headers, compressed).await;
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(rx.spans().len(), 1);
    in_flight_settles(&rx, 0).await;
    rx.shutdown().await;
}

#[tokio::test]
async fn a_grpc_body_that_stalls_is_answered_deadline_exceeded() {
    let rx = Receiver::builder()
        .with_body_timeout(Duration::from_millis(300))
        .start()
        .await
        .expect("start");
    // Headers only, then nothing.
    let (silent, silent_done) = grpc_stream(rx.grpc_addr());
    // Part of a message, then nothing.
    let (mut partial, partial_done) = grpc_stream(rx.grpc_addr());
    let frame = grpc_frame(&request("s", three_span_trace(1)).encode_to_vec());
    partial
        .send_data(Bytes::copy_from_slice(&frame[..20]))
        .await
        .expect("send");
    for done in [silent_done, partial_done] {
        let resp = tokio::time::timeout(HANG_GUARD, done)
            .await
            .expect("hang guard")
            .expect("task");
        assert_eq!(resp.grpc_status(), Some(Code::DeadlineExceeded), "{resp:?}");
    }
    drop((silent, partial));
    assert!(rx.spans().is_empty());
    assert_eq!(rx.stats().requests_malformed, 2);
    in_flight_settles(&rx, 0).await;
    // The receiver keeps serving.
    export_trace(&rx.grpc_endpoint(), 2).await.expect("export");
    rx.shutdown().await;
}

#[tokio::test]
async fn idle_connections_are_closed_but_busy_ones_are_not() {
    let rx = Receiver::builder()
        .with_idle_timeout(Duration::from_millis(300))
        .start()
        .await
        .expect("start");

    // A connection that never sends a byte is closed too.
    let mut silent = TcpStream::connect(rx.grpc_addr()).await.expect("connect");
    let mut nothing = Vec::new();
    tokio::time::timeout(HANG_GUARD, silent.read_to_end(&mut nothing))
        .await
        .expect("the receiver closes the silent connection")
        .expect("read");
    assert!(nothing.is_empty());

    // HTTP/1.1 keep-alive: after its request, the connection is closed.
    let body = request("s", three_span_trace(1)).encode_to_vec();
    let mut tcp = TcpStream::connect(rx.http_addr()).await.expect("connect");
    let mut head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-protobuf\r\n\
         Content-Length: {}\r\n\r\n",
        rx.http_addr(),
        body.len()
    )
    .into_bytes();
    head.extend_from_slice(&body);
    tcp.write_all(&head).await.expect("write");
    let mut received = Vec::new();
    tokio::time::timeout(HANG_GUARD, tcp.read_to_end(&mut received))
        .await
        .expect("the receiver closes the idle connection")
        .expect("read");
    assert!(received.starts_with(b"HTTP/1.1 200"), "{received:?}");

    // HTTP/2: the connection ends (GOAWAY) once idle.
    let tcp = TcpStream::connect(rx.grpc_addr()).await.expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .expect("h2 handshake");
    let conn = tokio::spawn(conn);
    let frame = grpc_frame(&request("s", three_span_trace(2)).encode_to_vec());
    let req = http::Request::builder()
        .method(http::Method::POST)
        .uri(format!("http://{}{EXPORT_PATH}", rx.grpc_addr()))
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .body(http_body_util::Full::new(Bytes::from(frame)))
        .expect("request");
    let resp = sender.send_request(req).await.expect("response");
    let collected = resp.into_body().collect().await.expect("body");
    assert_eq!(
        collected.trailers().and_then(|t| t.get("grpc-status")),
        Some(&http::HeaderValue::from_static("0"))
    );
    tokio::time::timeout(HANG_GUARD, conn)
        .await
        .expect("the receiver closes the idle HTTP/2 connection")
        .expect("task")
        .expect("a clean close");

    // A request that takes longer than the idle timeout is not cut off.
    rx.faults().set_response_delay(Duration::from_millis(900));
    export_trace(&rx.grpc_endpoint(), 3)
        .await
        .expect("a slow request completes");
    assert_eq!(rx.store().len(), 9);
    rx.shutdown().await;
}

#[tokio::test]
async fn large_and_compressed_requests_arrive_intact() {
    let rx = Receiver::builder()
        .with_max_request_bytes(8 << 20)
        .with_max_spans(100_000)
        .start()
        .await
        .expect("start");
    let spans: Vec<Span> = (0..4000u32)
        .map(|i| {
            let mut s = span(
                u8::try_from(i % 200).expect("small") + 1,
                u8::try_from(i % 250).expect("small") + 1,
                None,
                &format!("span-{i}"),
            );
            s.attributes.push(int_kv("i", i64::from(i)));
            s
        })
        .collect();
    let req = request("s", spans.clone());
    assert!(req.encoded_len() > 256 * 1024);
    grpc_export(&rx.grpc_endpoint(), req.clone(), &[], false)
        .await
        .expect("large export");
    grpc_export(&rx.grpc_endpoint(), req.clone(), &[], true)
        .await
        .expect("large gzip export");
    let resp = http_post(
        rx.http_addr(),
        &[("content-type", "application/x-protobuf")],
        req.encode_to_vec(),
    )
    .await;
    assert_eq!(resp.status, 200);
    let stored = rx.store().take_spans();
    assert_eq!(stored.len(), 12_000);
    for (got, sent) in stored.iter().zip(spans.iter().cycle()) {
        assert_eq!(got.span(), sent);
        assert_eq!(got.encoded_span(), sent.encode_to_vec().as_slice());
    }
    rx.shutdown().await;
}
