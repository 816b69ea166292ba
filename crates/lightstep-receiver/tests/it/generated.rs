//! The receiver mounted on a tonic server of the test's own, through opentelemetry-proto's
//! generated `TraceServiceServer` (`RunningReceiver::trace_service`), taking a real tonic client
//! over loopback.

use std::net::SocketAddr;

use lightstep_receiver::{ACCESS_TOKEN_HEADER, Receiver, RequestOutcome, RunningReceiver};
use tokio::sync::oneshot;

use crate::common::*;

const TOKEN: &str = "generated-server-token";

/// Serves `receiver.trace_service()` with tonic's own server on an OS-assigned loopback port,
/// until the returned sender is dropped.
async fn own_tonic_server(receiver: &RunningReceiver) -> (String, oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("address"));
    let (stop, stopped) = oneshot::channel::<()>();
    let router = tonic::transport::Server::builder().add_service(receiver.trace_service());
    tokio::spawn(async move {
        router
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async {
                    let _ = stopped.await;
                },
            )
            .await
            .expect("serve");
    });
    (endpoint, stop)
}

#[tokio::test]
async fn the_generated_server_stores_spans_with_the_receivers_checks() {
    let receiver = Receiver::builder()
        .with_access_token(TOKEN)
        .start()
        .await
        .expect("start");
    let (endpoint, _stop) = own_tonic_server(&receiver).await;

    // With the token, gzip-compressed: stored, with its resource, scope, ids and metadata.
    let resp = grpc_export(
        &endpoint,
        request("generated", three_span_trace(7)),
        &[(ACCESS_TOKEN_HEADER, TOKEN), ("x-extra", "yes")],
        true,
    )
    .await
    .expect("export");
    assert_eq!(resp.partial_success, None);
    let spans = receiver.wait_for_spans(3, HANG_GUARD).await.expect("spans");
    assert_eq!(spans.len(), 3);
    let root = spans.iter().find(|s| s.name() == "root").expect("root");
    assert_eq!(root.service_name(), Some("generated"));
    assert_eq!(root.scope().name, "it-scope");
    assert_eq!(root.parent_span_id(), None);
    let child = spans.iter().find(|s| s.name() == "child-a").expect("child");
    assert_eq!(child.parent_span_id(), Some(root.span_id()));
    assert_eq!(child.trace_id(), root.trace_id());
    let info = root.request();
    assert_eq!(info.access_token(), Some(TOKEN));
    assert_eq!(info.header("x-extra"), Some("yes"));
    assert!(
        info.peer_addr.is_some_and(|peer| peer.ip().is_loopback()),
        "{info:?}"
    );

    // Without the token: UNAUTHENTICATED, nothing stored, counted.
    let refused = grpc_export(
        &endpoint,
        request("intruder", three_span_trace(8)),
        &[],
        false,
    )
    .await
    .expect_err("refused");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    let with_wrong = grpc_export(
        &endpoint,
        request("intruder", three_span_trace(8)),
        &[(ACCESS_TOKEN_HEADER, "wrong")],
        false,
    )
    .await
    .expect_err("refused");
    assert_eq!(with_wrong.code(), tonic::Code::Unauthenticated);

    // Invalid ids: partial success, the valid span stored.
    let mut zero_trace = span(9, 1, None, "zero-trace");
    zero_trace.trace_id = vec![0; 16];
    let resp = grpc_export(
        &endpoint,
        request("generated", vec![zero_trace, span(9, 2, None, "fine")]),
        &[(ACCESS_TOKEN_HEADER, TOKEN)],
        false,
    )
    .await
    .expect("export");
    let partial = resp.partial_success.expect("partial success");
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial.error_message.contains("invalid trace or span id"),
        "{}",
        partial.error_message
    );

    // The fault knobs apply: a simulated failure is UNAVAILABLE and stores nothing.
    receiver.faults().fail_next_requests(1);
    let failed = grpc_export(
        &endpoint,
        request("generated", three_span_trace(10)),
        &[(ACCESS_TOKEN_HEADER, TOKEN)],
        false,
    )
    .await
    .expect_err("simulated failure");
    assert_eq!(failed.code(), tonic::Code::Unavailable, "{failed:?}");

    let stats = receiver.stats();
    assert_eq!(stats.spans_accepted, 4, "{stats:?}");
    assert_eq!(stats.spans_rejected_invalid, 1, "{stats:?}");
    assert_eq!(stats.requests_unauthenticated, 2, "{stats:?}");
    assert_eq!(stats.requests_failed_by_fault, 1, "{stats:?}");
    assert_eq!(receiver.spans().len(), 4);
    let outcomes: Vec<_> = receiver
        .requests()
        .into_iter()
        .map(|record| record.outcome)
        .collect();
    assert_eq!(
        outcomes,
        [
            RequestOutcome::Exported {
                accepted: 3,
                rejected: 0
            },
            RequestOutcome::Exported {
                accepted: 1,
                rejected: 1
            },
            RequestOutcome::FaultInjected,
        ],
    );
    assert_eq!(receiver.in_flight_bytes(), 0);

    // A large export (encoded again off the async workers) is stored whole.
    let many = (0..2_000u32)
        .map(|i| {
            let mut s = span(11, 1, None, "many");
            s.span_id = (u64::from(i) + 1).to_be_bytes().to_vec();
            s
        })
        .collect();
    grpc_export(
        &endpoint,
        request("generated", many),
        &[(ACCESS_TOKEN_HEADER, TOKEN)],
        true,
    )
    .await
    .expect("large export");
    assert_eq!(receiver.spans().len(), 2_004);
    assert_eq!(receiver.in_flight_bytes(), 0);

    // Once the receiver has shut down, the server still mounting its service takes nothing.
    let store = receiver.store().clone();
    receiver.shutdown().await;
    let after = grpc_export(
        &endpoint,
        request("generated", three_span_trace(12)),
        &[(ACCESS_TOKEN_HEADER, TOKEN)],
        false,
    )
    .await
    .expect_err("shut down");
    assert_eq!(after.code(), tonic::Code::Unavailable, "{after:?}");
    assert_eq!(store.len(), 2_004);
}

/// What tonic answers before the receiver sees the request, as `trace_service`'s
/// documentation says: over the size limit as sent, `OUT_OF_RANGE`; only once inflated,
/// `RESOURCE_EXHAUSTED`; undecodable, `INTERNAL`. None stores anything, and the server keeps
/// serving.
#[tokio::test]
async fn the_generated_server_refuses_oversized_and_malformed_messages() {
    let receiver = Receiver::builder()
        .with_max_request_bytes(4096)
        .start()
        .await
        .expect("start");
    let (endpoint, _stop) = own_tonic_server(&receiver).await;
    let spans = (1..=100)
        .map(|i| span(1, i, None, "a-rather-long-span-name"))
        .collect();
    let refused = grpc_export(&endpoint, request("big", spans), &[], false)
        .await
        .expect_err("too large");
    assert_eq!(refused.code(), tonic::Code::OutOfRange, "{refused:?}");
    // The same spans gzip-compressed fit the limit as sent, not once inflated.
    let spans = (1..=100)
        .map(|i| span(1, i, None, "a-rather-long-span-name"))
        .collect();
    let inflated = grpc_export(&endpoint, request("big", spans), &[], true)
        .await
        .expect_err("too large once inflated");
    assert_eq!(
        inflated.code(),
        tonic::Code::ResourceExhausted,
        "{inflated:?}"
    );
    // Field 1 announced as 200 bytes long, with 3 bytes present.
    let addr = endpoint
        .trim_start_matches("http://")
        .parse()
        .expect("address");
    let garbage = raw_grpc(addr, &[0x0a, 0xc8, 0x01, 1, 2, 3], false, &[]).await;
    assert_eq!(
        garbage.grpc_status(),
        Some(tonic::Code::Internal),
        "{garbage:?}"
    );
    assert!(receiver.spans().is_empty());
    // A request within the limit still goes through.
    grpc_export(&endpoint, request("small", three_span_trace(2)), &[], false)
        .await
        .expect("export");
    assert_eq!(receiver.spans().len(), 3);
    receiver.shutdown().await;
}
