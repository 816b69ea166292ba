//! A gzip body is inflated within the in-flight byte budget: the receiver refuses it before it
//! allocates past the budget, not after. A test binary of its own, because it watches the
//! process's peak resident memory (Linux).

use std::time::Duration;

use lightstep_receiver::Receiver;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

#[allow(dead_code)]
#[path = "it/common.rs"]
mod common;

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

#[tokio::test]
async fn a_gzip_body_is_refused_before_it_inflates_past_the_in_flight_budget() {
    const LIMIT: usize = 8 * 1024 * 1024;
    let rx = Receiver::builder()
        .with_max_request_bytes(LIMIT)
        .with_max_in_flight_bytes(LIMIT)
        .start()
        .await
        .expect("start");
    // A slow upload holds all of the budget but 64 KiB.
    let held = LIMIT - 64 * 1024;
    let mut holder = TcpStream::connect(rx.http_addr()).await.expect("connect");
    holder
        .write_all(
            format!(
                "POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\ncontent-length: {held}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .expect("write");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while rx.in_flight_bytes() != held {
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
}
