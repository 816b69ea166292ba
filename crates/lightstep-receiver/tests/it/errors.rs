//! Refusals: tokens, size limits, malformed input, partial success, the store's bound. Each
//! refusal stores nothing and the receiver keeps serving.

use lightstep_receiver::{Receiver, RequestOutcome, WhenFull};
use prost::Message as _;
use tonic::Code;

use crate::common::*;

const TOKEN: &str = "the-right-token";

#[tokio::test]
async fn grpc_token_right_wrong_and_missing() {
    let rx = Receiver::builder()
        .with_access_token(TOKEN)
        .start()
        .await
        .expect("start");
    let ep = rx.grpc_endpoint();
    let wrong = grpc_export(
        &ep,
        request("s", three_span_trace(1)),
        &[("lightstep-access-token", "nope")],
        false,
    )
    .await
    .expect_err("wrong token");
    assert_eq!(wrong.code(), Code::Unauthenticated, "{wrong:?}");
    // A token that is the right one with a byte more must not pass either.
    let longer = format!("{TOKEN}x");
    let longer = grpc_export(
        &ep,
        request("s", three_span_trace(1)),
        &[("lightstep-access-token", &longer)],
        false,
    )
    .await
    .expect_err("longer token");
    assert_eq!(longer.code(), Code::Unauthenticated);
    let missing = grpc_export(&ep, request("s", three_span_trace(1)), &[], false)
        .await
        .expect_err("missing token");
    assert_eq!(missing.code(), Code::Unauthenticated);
    assert!(rx.spans().is_empty());
    let stats = rx.stats();
    assert_eq!(stats.requests_unauthenticated, 3);
    assert_eq!(stats.requests, 3, "{stats:?}");
    // Counted, not recorded: the presented token is not kept.
    assert!(rx.requests().is_empty(), "{:?}", rx.requests());

    grpc_export(
        &ep,
        request("s", three_span_trace(1)),
        &[("lightstep-access-token", TOKEN)],
        false,
    )
    .await
    .expect("right token");
    let spans = rx.wait_for_spans(3, HANG_GUARD).await.expect("spans");
    assert_eq!(spans[0].request().access_token(), Some(TOKEN));
    assert_eq!(rx.stats().spans_accepted, 3);
    rx.shutdown().await;
}

#[tokio::test]
async fn http_token_right_wrong_and_missing() {
    let rx = Receiver::builder()
        .with_access_token(TOKEN)
        .start()
        .await
        .expect("start");
    let body = request("s", three_span_trace(1)).encode_to_vec();
    for headers in [
        vec![
            ("content-type", "application/x-protobuf"),
            ("lightstep-access-token", "nope"),
        ],
        vec![("content-type", "application/x-protobuf")],
        vec![
            ("content-type", "application/json"),
            ("lightstep-access-token", ""),
        ],
    ] {
        let resp = http_post(rx.http_addr(), &headers, body.clone()).await;
        assert_eq!(resp.status, 401, "{headers:?}");
    }
    // The JSON refusal is a google.rpc.Status in JSON.
    let resp = http_post(
        rx.http_addr(),
        &[("content-type", "application/json")],
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(resp.status, 401);
    assert_eq!(resp.json()["code"], 16);
    assert!(rx.spans().is_empty());
    assert_eq!(rx.stats().requests_unauthenticated, 4);
    // The token is checked before anything else: a wrong token with an unsupported content
    // type or encoding is still a 401, not a 415.
    for headers in [
        vec![
            ("content-type", "text/plain"),
            ("lightstep-access-token", "nope"),
        ],
        vec![
            ("content-type", "application/x-protobuf"),
            ("content-encoding", "br"),
        ],
    ] {
        let resp = http_post(rx.http_addr(), &headers, body.clone()).await;
        assert_eq!(resp.status, 401, "{headers:?}");
    }
    assert_eq!(rx.stats().requests_unauthenticated, 6);

    let resp = http_post(
        rx.http_addr(),
        &[
            ("content-type", "application/x-protobuf"),
            ("lightstep-access-token", TOKEN),
        ],
        body,
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(rx.spans().len(), 3);
    // With the token, an unsupported content type is refused as malformed.
    let resp = http_post(
        rx.http_addr(),
        &[
            ("content-type", "text/plain"),
            ("lightstep-access-token", TOKEN),
        ],
        b"x".to_vec(),
    )
    .await;
    assert_eq!(resp.status, 415);
    // Every export request counts, whatever its answer.
    let stats = rx.stats();
    assert_eq!(stats.requests_malformed, 1);
    assert_eq!(stats.requests, 8, "{stats:?}");
    rx.shutdown().await;
}

#[tokio::test]
async fn grpc_requests_over_the_size_limit_are_resource_exhausted() {
    let rx = Receiver::builder()
        .with_max_request_bytes(4096)
        .start()
        .await
        .expect("start");
    let mut big = span(1, 1, None, "big");
    big.attributes.push(string_kv("padding", &"x".repeat(8192)));
    let status = grpc_export(
        &rx.grpc_endpoint(),
        request("s", vec![big.clone()]),
        &[],
        false,
    )
    .await
    .expect_err("too large");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    // Compressed small but inflating past the limit: refused too.
    let status = grpc_export(&rx.grpc_endpoint(), request("s", vec![big]), &[], true)
        .await
        .expect_err("too large after inflating");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(rx.spans().is_empty());
    assert_eq!(rx.stats().requests_too_large, 2);
    export_trace(&rx.grpc_endpoint(), 1)
        .await
        .expect("a small request still works");
    assert_eq!(rx.spans().len(), 3);
    rx.shutdown().await;
}

#[tokio::test]
async fn http_requests_over_the_size_limit_are_413() {
    let rx = Receiver::builder()
        .with_max_request_bytes(4096)
        .start()
        .await
        .expect("start");
    let mut big = span(1, 1, None, "big");
    big.attributes.push(string_kv("padding", &"x".repeat(8192)));
    let body = request("s", vec![big]).encode_to_vec();
    let resp = http_post(
        rx.http_addr(),
        &[("content-type", "application/x-protobuf")],
        body.clone(),
    )
    .await;
    assert_eq!(resp.status, 413);
    // A gzip body under the limit that inflates past it.
    let small = gzip(&body);
    assert!(small.len() < 4096);
    let resp = http_post(
        rx.http_addr(),
        &[
            ("content-type", "application/x-protobuf"),
            ("content-encoding", "gzip"),
        ],
        small,
    )
    .await;
    assert_eq!(resp.status, 413);
    assert!(rx.spans().is_empty());
    // No content length: the limit applies while the body streams in.
    let status = chunked_post(
        rx.http_addr(),
        "application/x-protobuf",
        &body[..5000],
        false,
    )
    .await;
    assert_eq!(status, 413);
    assert_eq!(rx.stats().requests_too_large, 3);
    let status = chunked_post(
        rx.http_addr(),
        "application/x-protobuf",
        &request("s", three_span_trace(1)).encode_to_vec(),
        true,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(rx.spans().len(), 3);
    rx.shutdown().await;
}

#[tokio::test]
async fn malformed_input_is_invalid_argument_and_the_receiver_keeps_serving() {
    let rx = Receiver::builder().start().await.expect("start");
    // Not a protobuf message: field 1 announced as 200 bytes long, with 3 bytes present.
    let garbage = [0x0a, 0xc8, 0x01, 1, 2, 3];
    let resp = raw_grpc(rx.grpc_addr(), &garbage, false, &[]).await;
    assert_eq!(resp.grpc_status(), Some(Code::InvalidArgument), "{resp:?}");
    // Compressed flag set with a body that is not gzip.
    let resp = raw_grpc(
        rx.grpc_addr(),
        b"not gzip",
        true,
        &[("grpc-encoding", "gzip")],
    )
    .await;
    assert_eq!(resp.grpc_status(), Some(Code::InvalidArgument), "{resp:?}");

    for (ct, encoding, body) in [
        ("application/x-protobuf", None, garbage.to_vec()),
        ("application/json", None, b"{\"resourceSpans\": [".to_vec()),
        ("application/json", None, b"[1, 2, 3]".to_vec()),
        (
            "application/json",
            None,
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"xyz"}]}]}]}"#.to_vec(),
        ),
        (
            "application/x-protobuf",
            Some("gzip"),
            b"not gzip at all".to_vec(),
        ),
    ] {
        let mut headers = vec![("content-type", ct)];
        headers.extend(encoding.map(|e| ("content-encoding", e)));
        let resp = http_post(rx.http_addr(), &headers, body).await;
        assert_eq!(resp.status, 400, "{ct} {encoding:?}: {resp:?}");
    }
    assert!(rx.spans().is_empty());
    assert_eq!(rx.stats().requests_malformed, 7);
    assert!(matches!(
        rx.requests()[0].outcome,
        RequestOutcome::Malformed(_)
    ));

    export_trace(&rx.grpc_endpoint(), 1)
        .await
        .expect("good gRPC request after bad ones");
    let resp = http_post(
        rx.http_addr(),
        &[("content-type", "application/x-protobuf")],
        request("s", three_span_trace(2)).encode_to_vec(),
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(rx.spans().len(), 6);
    rx.shutdown().await;
}

#[tokio::test]
async fn wrong_path_method_content_type_and_encoding_are_refused() {
    let rx = Receiver::builder().start().await.expect("start");
    let addr = rx.http_addr();
    let resp = http1(
        addr,
        http::Method::POST,
        "/v1/metrics",
        &[("content-type", "application/x-protobuf")],
        vec![],
        None,
    )
    .await;
    assert_eq!(resp.status, 404);
    let resp = http1(addr, http::Method::GET, "/v1/traces", &[], vec![], None).await;
    assert_eq!(resp.status, 405);
    assert_eq!(resp.headers["allow"], "POST");
    let resp = http_post(addr, &[("content-type", "text/plain")], b"hi".to_vec()).await;
    assert_eq!(resp.status, 415);
    let resp = http_post(
        addr,
        &[
            ("content-type", "application/x-protobuf"),
            ("content-encoding", "br"),
        ],
        b"hi".to_vec(),
    )
    .await;
    assert_eq!(resp.status, 415);
    // Another gRPC method (here: the logs service) is not served.
    let resp = raw_grpc_at(
        rx.grpc_addr(),
        "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        &[],
        false,
        &[],
    )
    .await;
    assert_eq!(resp.grpc_status(), Some(Code::Unimplemented), "{resp:?}");
    assert!(rx.spans().is_empty());
    rx.shutdown().await;
}

#[tokio::test]
async fn invalid_ids_are_reported_as_partial_success_on_both_protocols() {
    let rx = Receiver::builder().start().await.expect("start");
    let mut zero_trace = span(0, 1, None, "zero-trace");
    zero_trace.trace_id = vec![0; 16];
    let mut short_span = span(1, 2, None, "short-span");
    short_span.span_id = vec![1, 2];
    let spans = vec![zero_trace, short_span, span(1, 3, None, "fine")];

    let resp = grpc_export(&rx.grpc_endpoint(), request("s", spans.clone()), &[], false)
        .await
        .expect("export");
    let ps = resp.partial_success.expect("partial success");
    assert_eq!(ps.rejected_spans, 2);
    assert!(
        ps.error_message.contains("invalid trace or span id"),
        "{}",
        ps.error_message
    );

    let resp = http_post(
        rx.http_addr(),
        &[("content-type", "application/x-protobuf")],
        request("s", spans).encode_to_vec(),
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.export_response()
            .partial_success
            .expect("partial")
            .rejected_spans,
        2
    );

    // JSON: an empty span id is zero-length, hence invalid.
    let json = format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[
            {{"traceId":"{t}","spanId":"","name":"no-id"}},
            {{"traceId":"{t}","spanId":"0102030405060708","name":"ok"}}]}}]}}]}}"#,
        t = "ab".repeat(16)
    );
    let resp = http_post(
        rx.http_addr(),
        &[("content-type", "application/json")],
        json.into_bytes(),
    )
    .await;
    assert_eq!(resp.status, 200);
    let body = resp.json();
    assert_eq!(body["partialSuccess"]["rejectedSpans"], 1, "{body}");
    assert!(
        body["partialSuccess"]["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("span id"))
    );

    let names: Vec<_> = rx.spans().iter().map(|s| s.name().to_owned()).collect();
    assert_eq!(names, ["fine", "fine", "ok"]);
    assert_eq!(rx.stats().spans_rejected_invalid, 5);
    rx.shutdown().await;
}

#[tokio::test]
async fn a_full_store_refuses_new_spans_and_says_so() {
    let rx = Receiver::builder()
        .with_max_spans(4)
        .start()
        .await
        .expect("start");
    let resp = export_trace(&rx.grpc_endpoint(), 1).await.expect("export");
    assert_eq!(resp.partial_success, None);
    let resp = export_trace(&rx.grpc_endpoint(), 2).await.expect("export");
    let ps = resp.partial_success.expect("partial success");
    assert_eq!(ps.rejected_spans, 2);
    assert!(
        ps.error_message.contains("store is full"),
        "{}",
        ps.error_message
    );
    assert_eq!(rx.spans().len(), 4);
    let stats = rx.stats();
    assert_eq!((stats.spans_accepted, stats.spans_rejected_full), (4, 2));

    // Taking spans out makes room again.
    rx.take_traces();
    let resp = export_trace(&rx.grpc_endpoint(), 3).await.expect("export");
    assert_eq!(resp.partial_success, None);
    rx.shutdown().await;
}

#[tokio::test]
async fn evict_oldest_keeps_the_newest_spans_and_counts_the_evicted() {
    let rx = Receiver::builder()
        .with_max_spans(4)
        .with_full_policy(WhenFull::EvictOldest)
        .start()
        .await
        .expect("start");
    for trace in 1..=3 {
        let resp = export_trace(&rx.grpc_endpoint(), trace)
            .await
            .expect("export");
        assert_eq!(resp.partial_success, None);
    }
    let spans = rx.spans();
    assert_eq!(spans.len(), 4);
    assert_eq!(spans[0].trace_id().0, [2; 16]);
    assert_eq!(spans[0].name(), "child-b");
    assert_eq!(rx.stats().spans_evicted, 5);
    rx.shutdown().await;
}
