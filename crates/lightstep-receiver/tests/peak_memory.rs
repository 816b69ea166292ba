//! What decoding a body really takes stays within the in-flight byte budget: a gzip body is
//! refused before it inflates past the budget, not after, and an OTLP/JSON body is decoded in
//! the share of the budget it is charged. A test binary of its own, because these tests watch
//! the process's peak resident memory (Linux); they run one at a time for the same reason.

use std::sync::Mutex;
use std::time::Duration;

use lightstep_receiver::Receiver;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

#[allow(dead_code)]
#[path = "it/common.rs"]
mod common;

/// Held by each test while it runs: another test's allocations would count in its peak.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs `test` on a runtime of its own, alone.
fn alone(test: impl std::future::Future<Output = ()>) {
    let _alone = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(test);
}

/// Resets the peak resident set size and returns the current one, in bytes.
fn reset_peak() -> usize {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS");
    status_kib("VmRSS:") * 1024
}

/// The peak resident set size since [`reset_peak`], in bytes.
fn peak() -> usize {
    status_kib("VmHWM:") * 1024
}

fn status_kib(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("field")
}

#[test]
fn a_gzip_body_is_refused_before_it_inflates_past_the_in_flight_budget() {
    alone(async {
        const LIMIT: usize = 8 * 1024 * 1024;
        let rx = Receiver::builder()
            .with_max_request_bytes(LIMIT)
            .with_max_in_flight_bytes(LIMIT)
            .start()
            .await
            .expect("start");
        // A slow upload, whose body has begun, holds all of the budget but 64 KiB.
        let held = LIMIT - 64 * 1024;
        let mut holder = TcpStream::connect(rx.http_addr()).await.expect("connect");
        holder
            .write_all(
                format!(
                    "POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\ncontent-length: {held}\r\n\r\n\n"
                )
                .as_bytes(),
            )
            .await
            .expect("write");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        // The body's reservation, and the request's headers.
        while rx.in_flight_bytes() < held {
            assert!(tokio::time::Instant::now() < deadline, "never reserved");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        // A few KiB of gzip that inflate to the whole request limit.
        let bomb = common::gzip(&vec![0u8; LIMIT]);
        assert!(bomb.len() < 64 * 1024);
        let baseline = reset_peak();
        let resp = common::http_post(
            rx.http_addr(),
            &[
                ("content-type", "application/x-protobuf"),
                ("content-encoding", "gzip"),
            ],
            bomb,
        )
        .await;
        let grew = peak().saturating_sub(baseline);
        assert_eq!(resp.status, 503, "{resp:?}");
        assert!(
            grew < LIMIT / 4,
            "the refused body made the process allocate {grew} more bytes"
        );
        drop(holder);
        rx.shutdown().await;
    });
}

/// A body that cost the previous JSON decoder about 180 times its size: 1 MiB of empty spans
/// (each became a 264-byte struct, plus the JSON value it was read into). Its charge, about
/// 4.25 times its size, fits in the budget; what the process really allocates for it must
/// too. (Its spans have no ids: all are refused, so the store holds nothing afterwards.)
#[test]
fn an_otlp_json_body_is_decoded_within_its_share_of_the_in_flight_budget() {
    alone(async {
        const BUDGET: usize = 8 * 1024 * 1024;
        let rx = Receiver::builder()
            .with_max_request_bytes(2 * 1024 * 1024)
            .with_max_in_flight_bytes(BUDGET)
            .start()
            .await
            .expect("start");
        let spans = vec!["{}"; 340_000].join(",");
        let body = format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{spans}]}}]}}]}}"#)
            .into_bytes();
        assert!(
            (1_000_000..1_100_000).contains(&body.len()),
            "{}",
            body.len()
        );

        let baseline = reset_peak();
        let resp = common::http_post(
            rx.http_addr(),
            &[("content-type", "application/json")],
            body,
        )
        .await;
        let grew = peak().saturating_sub(baseline);
        assert_eq!(resp.status, 200, "{resp:?}");
        let rejected = resp.json()["partialSuccess"]["rejectedSpans"].to_string();
        assert_eq!(rejected.trim_matches('"'), "340000", "{resp:?}");
        assert!(
            grew < BUDGET,
            "decoding 1 MiB of JSON made the process allocate {grew} more bytes"
        );
        rx.shutdown().await;
    });
}
