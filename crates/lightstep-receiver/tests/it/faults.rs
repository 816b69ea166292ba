//! The fault knobs behave as a failing backend would, on the wire.

use std::time::Duration;

use lightstep_receiver::{Receiver, RequestOutcome};
use prost::Message as _;
use tonic::Code;

use crate::common::*;

#[tokio::test]
async fn fail_next_requests_answers_unavailable_then_recovers() {
    let rx = Receiver::builder().start().await.expect("start");
    rx.faults().fail_next_requests(2);
    let err = export_trace(&rx.grpc_endpoint(), 1)
        .await
        .expect_err("first fails");
    assert_eq!(err.code(), Code::Unavailable);
    let resp = http_post(
        rx.http_addr(),
        &[("content-type", "application/x-protobuf")],
        request("s", three_span_trace(1)).encode_to_vec(),
    )
    .await;
    assert_eq!(resp.status, 503);
    assert_eq!(resp.headers["retry-after"], "1");
    assert!(rx.spans().is_empty());
    assert_eq!(rx.faults().pending_failures(), 0);
    assert_eq!(rx.stats().requests_failed_by_fault, 2);

    export_trace(&rx.grpc_endpoint(), 1)
        .await
        .expect("third succeeds");
    assert_eq!(rx.spans().len(), 3);
    rx.shutdown().await;
}

#[tokio::test]
async fn a_delayed_request_is_held_until_the_receiver_shuts_down_then_unavailable() {
    let rx = Receiver::builder().start().await.expect("start");
    // Long enough to be a black hole for this test: only shutdown ends it.
    rx.faults().set_response_delay(Duration::from_secs(3600));
    assert_eq!(rx.faults().response_delay(), Duration::from_secs(3600));
    let channel = grpc_channel(&rx.grpc_endpoint(), None).await;
    let export = tokio::spawn(grpc_export_on(
        channel,
        request("s", three_span_trace(1)),
        &[],
        false,
    ));
    // Wait until the receiver holds the request (polling a condition, not timing anything).
    tokio::time::timeout(HANG_GUARD, async {
        while rx.faults().delayed_requests() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("hang guard: the request never reached the receiver");
    assert!(!export.is_finished());
    let store = rx.store().clone();
    let faults = rx.faults().clone();
    rx.shutdown().await;
    let err = tokio::time::timeout(HANG_GUARD, export)
        .await
        .expect("hang guard")
        .expect("join")
        .expect_err("no success while black-holed");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(store.is_empty());
    assert_eq!(faults.delayed_requests(), 0);
    assert_eq!(store.requests()[0].outcome, RequestOutcome::FaultInjected);
    // The refusal is counted with the other simulated failures, as its record says.
    let stats = store.stats();
    assert_eq!(stats.requests_failed_by_fault, 1);
    assert_eq!(stats.requests, 1);
}
