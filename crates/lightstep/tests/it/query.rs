//! The `query` feature: `lightstep::LightstepPerformance` over `lightstep::query`'s stores,
//! against a stand-in Zipkin that answers one fixture trace.

use std::path::Path;

use lightstep::LightstepPerformance;
use lightstep::analysis::{Options, analyze_critical_path, read};
use lightstep::query::Zipkin;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lightstep_performance_analyzes_a_trace_held_by_a_store() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/traces/zipkin/skew.json");
    let body = std::fs::read(&path).unwrap();
    let mut expected = None;
    read::read_path(&path, None, |trace| {
        expected = Some(analyze_critical_path(&trace, &Options::default()));
        Ok(())
    })
    .unwrap();
    let expected = expected.unwrap();

    // A stand-in Zipkin: one answer, the fixture, to one request.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            request.extend_from_slice(&buf[..n]);
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&body).await.unwrap();
        String::from_utf8_lossy(&request).into_owned()
    });

    let zipkin = Zipkin::builder(format!("http://{addr}")).build().unwrap();
    let analysis = LightstepPerformance::new(zipkin)
        .analyze_critical_path(&expected.trace_id)
        .await
        .unwrap();
    assert_eq!(analysis, expected);
    let request = server.await.unwrap();
    assert!(
        request.starts_with(&format!("GET /api/v2/trace/{} HTTP/1.1", expected.trace_id)),
        "{request}"
    );
}
