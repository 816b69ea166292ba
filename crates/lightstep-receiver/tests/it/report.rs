//! Received traces converted for `lightstep-analysis` and printed as `lightstep dev` prints them.

use std::time::Duration;

use lightstep_receiver::{Receiver, write_report};

use crate::common::{grpc_export, request, span};

#[tokio::test]
async fn a_received_trace_converts_and_reports_its_tree_and_critical_path() {
    let receiver = Receiver::builder().start().await.unwrap();
    let mut spans = vec![
        span(7, 1, None, "GET /orders"),
        span(7, 2, Some(1), "SELECT orders"),
        span(7, 3, Some(2), "fetch row"),
    ];
    // Nested windows: root 0..500 ms, child 100..400 ms, grandchild 150..350 ms.
    let base = 1_700_000_000_000_000_000u64;
    for (s, (start, end)) in spans.iter_mut().zip([(0, 500), (100, 400), (150, 350)]) {
        s.start_time_unix_nano = base + start * 1_000_000;
        s.end_time_unix_nano = base + end * 1_000_000;
    }
    grpc_export(
        &receiver.grpc_endpoint(),
        request("shop", spans),
        &[],
        false,
    )
    .await
    .unwrap();
    receiver
        .wait_for_spans(3, Duration::from_secs(10))
        .await
        .unwrap();
    let trace = receiver.take_traces().pop().expect("one trace");

    let analysis_trace = trace.to_analysis().expect("converts");
    assert_eq!(analysis_trace.spans.len(), 3);
    assert!(analysis_trace.spans.iter().all(|s| s.service() == "shop"));

    let mut out = Vec::new();
    write_report(&mut out, &analysis_trace).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("trace 07070707070707070707070707070707 (3 spans"),
        "{text}"
    );
    // Indented by depth, under their parents.
    let indent = |name: &str| {
        let line = lines.iter().find(|l| l.contains(name)).expect(name);
        line.find(name).unwrap()
    };
    assert!(indent("GET /orders") < indent("SELECT orders"), "{text}");
    assert!(indent("SELECT orders") < indent("fetch row"), "{text}");
    // Every span is on the critical path of this chain.
    assert_eq!(text.matches("  * ").count(), 3, "{text}");
    assert!(text.contains("critical path"), "{text}");
}
