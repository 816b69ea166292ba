//! A request refused for its access token leaves nothing behind: whatever else is wrong with it
//! or with the receiver at that moment (a fault knob, a full in-flight budget, a body too large
//! or malformed), it is answered `UNAUTHENTICATED` / `401`, counted, and neither stored nor
//! recorded. The token it presented may be a real one meant for another project.

use std::time::Duration;

use lightstep_receiver::{Receiver, RunningReceiver};
use prost::Message as _;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tonic::Code;

use crate::common::*;

const TOKEN: &str = "the-receivers-own-token";
/// What a user might paste by mistake: a real token, for another project.
const SOMEONE_ELSES: &str = "real-token-for-another-project-7f3a91c2";
const LIMIT: usize = 4096;

/// Whether `haystack` contains `needle` anywhere.
fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Asserts that `secret` is nowhere in what the receiver keeps: not in a request record's or a
/// stored span's headers (read raw, not through the redacting `Debug`), and not in the `Debug`
/// output of the receiver, its store, its records, spans and counters.
fn assert_not_kept(rx: &RunningReceiver, secret: &str) {
    for record in rx.requests() {
        for (name, value) in &record.request.headers {
            assert!(
                !contains(value.as_bytes(), secret),
                "header {name} of a request answered {:?} keeps the token",
                record.outcome
            );
        }
    }
    for span in rx.spans() {
        for (name, value) in &span.request().headers {
            assert!(!contains(value.as_bytes(), secret), "span header {name}");
        }
    }
    let printed = format!(
        "{rx:?} {:?} {:?} {:?} {:?}",
        rx.store(),
        rx.requests(),
        rx.spans(),
        rx.stats()
    );
    assert!(!printed.contains(secret), "{printed}");
}

async fn receiver() -> RunningReceiver {
    Receiver::builder()
        .with_access_token(TOKEN)
        .with_max_request_bytes(LIMIT)
        .with_max_in_flight_bytes(LIMIT)
        .start()
        .await
        .expect("start")
}

/// Sends a gRPC export of three spans with `metadata`, and returns its status code.
async fn grpc(rx: &RunningReceiver, metadata: &[(&'static str, &str)]) -> Code {
    match grpc_export(
        &rx.grpc_endpoint(),
        request("s", three_span_trace(1)),
        metadata,
        false,
    )
    .await
    {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

/// Sends the same as OTLP/HTTP protobuf with `headers` added, and returns the status code.
async fn http(rx: &RunningReceiver, headers: &[(&str, &str)]) -> u16 {
    let mut all = vec![("content-type", "application/x-protobuf")];
    all.extend_from_slice(headers);
    let body = request("s", three_span_trace(1)).encode_to_vec();
    http_post(rx.http_addr(), &all, body).await.status.as_u16()
}

/// Both protocols, with the wrong token and without one: every answer is "unauthenticated".
async fn refused_on_both_protocols(rx: &RunningReceiver, situation: &str) {
    let wrong = [("lightstep-access-token", SOMEONE_ELSES)];
    assert_eq!(grpc(rx, &wrong).await, Code::Unauthenticated, "{situation}");
    assert_eq!(grpc(rx, &[]).await, Code::Unauthenticated, "{situation}");
    assert_eq!(http(rx, &wrong).await, 401, "{situation}");
    assert_eq!(http(rx, &[]).await, 401, "{situation}");
}

#[tokio::test]
async fn a_wrong_token_is_counted_and_never_kept_whatever_else_happens() {
    let rx = receiver().await;
    let wrong = ("lightstep-access-token", SOMEONE_ELSES);
    let mut refused = 0;

    refused_on_both_protocols(&rx, "plain").await;
    refused += 4;
    assert!(rx.requests().is_empty(), "{:?}", rx.requests());
    assert_not_kept(&rx, SOMEONE_ELSES);

    // A simulated failure is not used up by a request without the token (it never reaches
    // the knobs), on either protocol.
    rx.faults().fail_next_requests(1);
    refused_on_both_protocols(&rx, "fault armed").await;
    refused += 4;
    assert_eq!(rx.faults().pending_failures(), 1);
    rx.faults().fail_next_requests(0);

    // Nor is it held by a simulated delay: the answer comes at once (else the hang guard).
    rx.faults().set_response_delay(Duration::from_secs(3600));
    refused_on_both_protocols(&rx, "delay set").await;
    refused += 4;
    assert_eq!(rx.faults().delayed_requests(), 0);
    rx.faults().set_response_delay(Duration::ZERO);

    // Bodies that would be refused as too large or malformed: the token is checked first.
    let big = vec![0u8; LIMIT + 1000];
    let garbage = [0x0a, 0xc8, 0x01, 1, 2, 3];
    for (payload, compressed, headers) in [
        (&big[..], false, vec![wrong]),
        (&garbage[..], false, vec![wrong]),
        (
            &b"not gzip"[..],
            true,
            vec![wrong, ("grpc-encoding", "gzip")],
        ),
        (&garbage[..], false, vec![wrong, ("grpc-encoding", "br")]),
    ] {
        let resp = raw_grpc(rx.grpc_addr(), payload, compressed, &headers).await;
        assert_eq!(
            resp.grpc_status(),
            Some(Code::Unauthenticated),
            "{headers:?}"
        );
        refused += 1;
    }
    let bomb = gzip(&vec![0u8; 1 << 20]);
    for (body, headers) in [
        (
            big.clone(),
            vec![("content-type", "application/x-protobuf"), wrong],
        ),
        (
            garbage.to_vec(),
            vec![("content-type", "application/x-protobuf"), wrong],
        ),
        (
            b"{\"resourceSpans\": [".to_vec(),
            vec![("content-type", "application/json"), wrong],
        ),
        (
            bomb,
            vec![
                ("content-type", "application/x-protobuf"),
                ("content-encoding", "gzip"),
                wrong,
            ],
        ),
        (
            garbage.to_vec(),
            vec![
                ("content-type", "application/x-protobuf"),
                ("content-encoding", "br"),
                wrong,
            ],
        ),
        (
            garbage.to_vec(),
            vec![("content-type", "text/plain"), wrong],
        ),
    ] {
        let resp = http_post(rx.http_addr(), &headers, body).await;
        assert_eq!(resp.status, 401, "{headers:?}");
        refused += 1;
    }

    // A full in-flight budget: a slow upload with the right token, whose body has begun,
    // holds all of it. A request
    // without the token is refused at once instead of waiting for room and being recorded as
    // throttled.
    let mut holder = TcpStream::connect(rx.http_addr()).await.expect("connect");
    holder
        .write_all(
            format!(
                "POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\n\
                 lightstep-access-token: {TOKEN}\r\ncontent-length: {LIMIT}\r\n\r\n\n"
            )
            .as_bytes(),
        )
        .await
        .expect("write");
    tokio::time::timeout(HANG_GUARD, async {
        while rx.in_flight_bytes() != LIMIT {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("hang guard: the slow upload never reserved the budget");
    refused_on_both_protocols(&rx, "budget full").await;
    refused += 4;
    drop(holder);

    let stats = rx.stats();
    assert_eq!(stats.requests_unauthenticated, refused, "{stats:?}");
    assert_eq!(stats.requests_failed_by_fault, 0, "{stats:?}");
    assert_eq!(stats.requests_throttled, 0, "{stats:?}");
    assert_eq!(
        stats.requests_too_large + stats.requests_malformed,
        0,
        "{stats:?}"
    );
    assert!(rx.spans().is_empty());
    assert_not_kept(&rx, SOMEONE_ELSES);

    // The right token still gets through, and what it sent is recorded, token and all (the
    // receiver's own token is no secret to its user).
    assert_eq!(
        grpc(&rx, &[("lightstep-access-token", TOKEN)]).await,
        Code::Ok
    );
    assert_eq!(http(&rx, &[("lightstep-access-token", TOKEN)]).await, 200);
    let records = rx.requests();
    assert!(
        records
            .iter()
            .all(|r| r.request.access_token() == Some(TOKEN)),
        "{records:?}"
    );
    assert_eq!(rx.spans().len(), 6);
    assert_not_kept(&rx, SOMEONE_ELSES);
    rx.shutdown().await;
}

#[tokio::test]
async fn faults_answer_authenticated_requests_only() {
    let rx = receiver().await;
    rx.faults().fail_next_requests(2);
    let right = ("lightstep-access-token", TOKEN);
    // Faults answer authenticated requests (and are recorded); the wrong token is refused
    // before the knobs and leaves no record, even while a failure is pending.
    assert_eq!(grpc(&rx, &[right]).await, Code::Unavailable);
    assert_eq!(http(&rx, &[right]).await, 503);
    assert_eq!(
        grpc(&rx, &[("lightstep-access-token", SOMEONE_ELSES)]).await,
        Code::Unauthenticated
    );
    let stats = rx.stats();
    assert_eq!(stats.requests_failed_by_fault, 2, "{stats:?}");
    assert_eq!(stats.requests_unauthenticated, 1, "{stats:?}");
    assert_eq!(stats.requests, 3, "{stats:?}");
    let records = rx.requests();
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(
        records
            .iter()
            .all(|r| r.request.access_token() == Some(TOKEN)),
        "{records:?}"
    );
    assert_not_kept(&rx, SOMEONE_ELSES);
    rx.shutdown().await;
}
