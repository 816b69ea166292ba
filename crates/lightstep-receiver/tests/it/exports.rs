//! Spans sent over every protocol and encoding arrive whole: resource, scope, attributes,
//! parent/child ids and the request's headers.

use std::time::Duration;

use lightstep_receiver::proto::common::v1::any_value::Value;
use lightstep_receiver::{Protocol, ReceivedSpan, Receiver, SpanId, TraceId};
use prost::Message as _;

use crate::common::*;

/// Checks the spans of `three_span_trace(trace)` from service `service` arrived whole.
fn assert_three_span_trace(spans: &[ReceivedSpan], trace: u8, service: &str, protocol: Protocol) {
    assert_eq!(spans.len(), 3, "{spans:#?}");
    for (s, (id, name)) in spans
        .iter()
        .zip([(1u8, "root"), (2, "child-a"), (3, "child-b")])
    {
        assert_eq!(s.trace_id(), TraceId([trace; 16]));
        assert_eq!(s.span_id(), SpanId([id; 8]));
        assert_eq!(s.name(), name);
        assert_eq!(s.str_attribute("it.name"), Some(name));
        assert_eq!(s.attribute("it.id"), Some(&Value::IntValue(i64::from(id))));
        assert_eq!(s.service_name(), Some(service));
        assert_eq!(s.scope().name, "it-scope");
        assert_eq!(s.scope().version, "1.0");
        assert_eq!(s.span().kind, 2);
        assert_eq!(s.span().start_time_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(s.request().protocol, protocol);
        assert!(s.request().peer_addr.is_some_and(|a| a.ip().is_loopback()));
    }
    assert_eq!(spans[0].parent_span_id(), None);
    assert_eq!(spans[1].parent_span_id(), Some(SpanId([1; 8])));
    assert_eq!(spans[2].parent_span_id(), Some(SpanId([1; 8])));
}

#[tokio::test]
async fn grpc_export_arrives_with_resource_scope_attributes_and_metadata() {
    let rx = Receiver::builder().start().await.expect("start");
    assert!(rx.grpc_endpoint().starts_with("http://127.0.0.1:"));
    let resp = grpc_export(
        &rx.grpc_endpoint(),
        request("grpc-svc", three_span_trace(7)),
        &[("lightstep-access-token", "tok-123"), ("x-extra", "extra")],
        false,
    )
    .await
    .expect("export");
    assert_eq!(resp.partial_success, None);

    let spans = rx.wait_for_spans(3, HANG_GUARD).await.expect("spans");
    assert_three_span_trace(&spans, 7, "grpc-svc", Protocol::Grpc);
    assert_eq!(spans[0].request().access_token(), Some("tok-123"));
    assert_eq!(spans[0].request().header("x-extra"), Some("extra"));
    assert!(!spans[0].request().tls);
    assert_eq!(rx.stats().spans_accepted, 3);
    rx.shutdown().await;
}

#[tokio::test]
async fn grpc_gzip_export_arrives() {
    let rx = Receiver::builder().start().await.expect("start");
    grpc_export(
        &rx.grpc_endpoint(),
        request("gzip-svc", three_span_trace(8)),
        &[],
        true,
    )
    .await
    .expect("export");
    let spans = rx.wait_for_spans(3, HANG_GUARD).await.expect("spans");
    assert_three_span_trace(&spans, 8, "gzip-svc", Protocol::Grpc);
    assert_eq!(spans[0].request().header("grpc-encoding"), Some("gzip"));
    rx.shutdown().await;
}

#[tokio::test]
async fn http_protobuf_export_arrives_plain_and_gzipped() {
    let rx = Receiver::builder().start().await.expect("start");
    let body = request("http-svc", three_span_trace(9)).encode_to_vec();
    let resp = http_post(
        rx.http_addr(),
        &[
            ("content-type", "application/x-protobuf"),
            ("lightstep-access-token", "tok-http"),
        ],
        body.clone(),
    )
    .await;
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.headers["content-type"], "application/x-protobuf");
    assert_eq!(resp.export_response().partial_success, None);
    let spans = rx.store().take_spans();
    assert_three_span_trace(&spans, 9, "http-svc", Protocol::HttpProtobuf);
    assert_eq!(spans[0].request().access_token(), Some("tok-http"));

    let resp = http_post(
        rx.http_addr(),
        &[
            ("content-type", "application/x-protobuf"),
            ("content-encoding", "gzip"),
        ],
        gzip(&body),
    )
    .await;
    assert_eq!(resp.status, 200, "{resp:?}");
    let spans = rx.store().take_spans();
    assert_three_span_trace(&spans, 9, "http-svc", Protocol::HttpProtobuf);
    rx.shutdown().await;
}

/// OTLP/JSON as the specification writes it: hex ids, lowerCamelCase, 64-bit integers as
/// strings, enums as integers.
fn json_body(trace_hex: &str) -> String {
    format!(
        r#"{{"resourceSpans":[{{
            "resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"json-svc"}}}}]}},
            "scopeSpans":[{{"scope":{{"name":"it-scope","version":"1.0"}},"spans":[
              {{"traceId":"{trace_hex}","spanId":"0101010101010101","name":"root","kind":2,
                "startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000500000000",
                "attributes":[{{"key":"it.name","value":{{"stringValue":"root"}}}},
                              {{"key":"it.id","value":{{"intValue":"1"}}}}]}},
              {{"traceId":"{trace_hex}","spanId":"0202020202020202","parentSpanId":"0101010101010101",
                "name":"child-a","kind":2,
                "startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000500000000",
                "attributes":[{{"key":"it.name","value":{{"stringValue":"child-a"}}}},
                              {{"key":"it.id","value":{{"intValue":2}}}}]}},
              {{"traceId":"{trace_hex}","spanId":"0303030303030303","parentSpanId":"0101010101010101",
                "name":"child-b","kind":2,
                "startTimeUnixNano":1700000000000000000,"endTimeUnixNano":"1700000000500000000",
                "attributes":[{{"key":"it.name","value":{{"stringValue":"child-b"}}}},
                              {{"key":"it.id","value":{{"intValue":"3"}}}}]}}
            ]}}]
        }}]}}"#
    )
}

#[tokio::test]
async fn http_json_export_arrives_plain_and_gzipped() {
    let rx = Receiver::builder().start().await.expect("start");
    let body = json_body(&"0a".repeat(16)).into_bytes();
    let resp = http_post(
        rx.http_addr(),
        &[("content-type", "application/json; charset=utf-8")],
        body.clone(),
    )
    .await;
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.headers["content-type"], "application/json");
    assert!(
        resp.json()
            .get("partialSuccess")
            .is_none_or(|v| v.is_null()),
        "{resp:?}"
    );
    let spans = rx.store().take_spans();
    assert_three_span_trace(&spans, 0x0a, "json-svc", Protocol::HttpJson);

    let resp = http_post(
        rx.http_addr(),
        &[
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
        ],
        gzip(&body),
    )
    .await;
    assert_eq!(resp.status, 200, "{resp:?}");
    let spans = rx.store().take_spans();
    assert_three_span_trace(&spans, 0x0a, "json-svc", Protocol::HttpJson);
    rx.shutdown().await;
}

#[tokio::test]
async fn both_listeners_accept_both_protocols() {
    let rx = Receiver::builder().start().await.expect("start");
    // gRPC to the HTTP port.
    grpc_export(
        &rx.http_endpoint(),
        request("cross", vec![span(1, 1, None, "g")]),
        &[],
        false,
    )
    .await
    .expect("grpc on the http port");
    // OTLP/HTTP to the gRPC port.
    let resp = http_post(
        rx.grpc_addr(),
        &[("content-type", "application/x-protobuf")],
        request("cross", vec![span(1, 2, Some(1), "h")]).encode_to_vec(),
    )
    .await;
    assert_eq!(resp.status, 200);
    let spans = rx.wait_for_spans(2, HANG_GUARD).await.expect("spans");
    assert_eq!(spans.len(), 2);
    rx.shutdown().await;
}

#[tokio::test]
async fn traces_are_taken_whole_and_grouped_by_trace_id() {
    let rx = Receiver::builder().start().await.expect("start");
    let mut spans = three_span_trace(1);
    spans.extend(three_span_trace(2));
    spans.push(span(1, 4, Some(2), "late"));
    grpc_export(&rx.grpc_endpoint(), request("svc", spans), &[], false)
        .await
        .expect("export");
    rx.wait_for_spans(7, HANG_GUARD).await.expect("spans");
    let traces = rx.take_traces();
    assert_eq!(traces.len(), 2);
    assert_eq!(traces[0].trace_id(), TraceId([1; 16]));
    assert_eq!(traces[0].spans().len(), 4);
    assert_eq!(traces[1].spans().len(), 3);
    assert_eq!(traces[0].roots().count(), 1);
    assert!(rx.spans().is_empty());
    // The OTLP form regroups under one resource and scope, and round-trips through JSON.
    let otlp = traces[0].to_otlp();
    assert_eq!(otlp.resource_spans.len(), 1);
    let json = traces[0].to_otlp_json();
    assert!(json.starts_with("{\"resourceSpans\":["), "{json}");
    assert!(json.contains(&"01".repeat(16)), "hex trace id in {json}");
    let rx2 = Receiver::builder().start().await.expect("start");
    let resp = http_post(
        rx2.http_addr(),
        &[("content-type", "application/json")],
        json.into_bytes(),
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(rx2.spans().len(), 4);
    rx.shutdown().await;
    rx2.shutdown().await;
}

#[tokio::test]
async fn idle_traces_are_handed_off_while_fresh_ones_stay() {
    let rx = Receiver::builder().start().await.expect("start");
    grpc_export(
        &rx.grpc_endpoint(),
        request("svc", three_span_trace(3)),
        &[],
        false,
    )
    .await
    .expect("export");
    rx.wait_for_spans(3, HANG_GUARD).await.expect("spans");
    assert!(
        rx.store()
            .take_idle_traces(Duration::from_secs(3600))
            .is_empty()
    );
    let traces = rx.store().take_idle_traces(Duration::ZERO);
    assert_eq!(traces.len(), 1);
    assert_eq!(traces[0].spans().len(), 3);
    rx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_hundred_thousand_spans_from_concurrent_clients_all_arrive() {
    const TASKS: u32 = 8;
    const BATCHES: u32 = 25;
    const BATCH: u32 = 500;
    let total = (TASKS * BATCHES * BATCH) as usize;
    let rx = Receiver::builder()
        .with_max_spans(total)
        .start()
        .await
        .expect("start");
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let channel = grpc_channel(&rx.grpc_endpoint(), None).await;
        tasks.push(tokio::spawn(async move {
            for batch in 0..BATCHES {
                let spans = (0..BATCH)
                    .map(|i| {
                        let n = (task * BATCHES + batch) * BATCH + i + 1;
                        let mut s = span(1, 0, None, "load");
                        s.trace_id =
                            [task.to_be_bytes(), batch.to_be_bytes(), [0; 4], [1; 4]].concat();
                        s.span_id = u64::from(n).to_be_bytes().to_vec();
                        s
                    })
                    .collect();
                let resp = grpc_export_on(channel.clone(), request("load", spans), &[], true)
                    .await
                    .expect("export");
                assert_eq!(resp.partial_success, None);
            }
        }));
    }
    for t in tasks {
        t.await.expect("join");
    }
    let spans = rx.wait_for_spans(total, HANG_GUARD).await.expect("spans");
    assert_eq!(spans.len(), total);
    let ids: std::collections::HashSet<_> = spans.iter().map(|s| s.span_id()).collect();
    assert_eq!(ids.len(), total, "every span once");
    let stats = rx.stats();
    assert_eq!(stats.spans_accepted, total as u64);
    assert_eq!(stats.spans_rejected_full + stats.spans_rejected_invalid, 0);
    assert_eq!(rx.take_traces().len(), (TASKS * BATCHES) as usize);
    rx.shutdown().await;
}

/// OTLP that comes another way than over a connection (a file): checked as an export's body
/// is, stored whole, or refused with an error that says why and stores nothing.
#[test]
fn a_standalone_store_takes_requests_as_the_receiver_does() {
    let store = lightstep_receiver::SpanStore::standalone(1_000, 1 << 20);
    let json = json_body("5b8efff798038103d269b633813fc60c");
    assert_eq!(store.ingest_request(json.as_bytes(), true).unwrap(), 3);
    let traces = store.take_traces();
    assert_eq!(traces.len(), 1);
    assert_eq!(traces[0].spans().len(), 3);

    for (body, json, says) in [
        (
            &b"{\"resourceSpans\": [ {"[..],
            true,
            "not an OTLP trace request",
        ),
        (&b"[1, 2, 3]"[..], true, "not an OTLP trace request"),
        // Field 1 claims 200 bytes where 2 follow.
        (
            &[0x0a, 0xc8, 0x01, 0x00, 0x00][..],
            false,
            "not an OTLP trace request",
        ),
    ] {
        let error = store.ingest_request(body, json).unwrap_err().to_string();
        assert!(error.starts_with(says), "{error}");
        assert!(error.len() > says.len() + 2, "says why: {error}");
        assert!(store.is_empty());
    }
}
