//! The explorer over real sockets: its listener rules and headers, the Jaeger-shaped API over
//! real trace files, the critical path and contribution against the analysis crate's own
//! output, the waterfall windows, traces that come through the real embedded receiver, and the
//! pages in a real browser.

mod analysis;
mod browser;
mod jaeger;
mod large_files;
mod python;
mod received;
mod seeds;
mod server;
// Shared with the browser benchmark, which uses parts the tests do not.
#[allow(dead_code)]
#[path = "../support/webdriver.rs"]
mod webdriver;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use lightstep_analysis::Trace;
use lightstep_explorer::{Explorer, RunningExplorer, TraceStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A file under `testdata/traces/`.
pub(crate) fn fixture(path: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/traces"
    ))
    .join(path)
}

/// Every trace of a fixture, as the analysis crate reads it.
pub(crate) fn read_fixture(path: &str) -> Vec<Trace> {
    let mut traces = Vec::new();
    lightstep_analysis::read::read_path(&fixture(path), None, |t| {
        traces.push(t);
        Ok(())
    })
    .expect("fixture reads");
    traces
}

/// An explorer on an OS-assigned loopback port serving `store`.
pub(crate) async fn serve(store: TraceStore) -> RunningExplorer {
    Explorer::builder()
        .with_addr("127.0.0.1:0".parse().unwrap())
        .with_store(store)
        .start()
        .await
        .expect("explorer starts")
}

/// An explorer on an OS-assigned loopback port serving these fixtures.
pub(crate) async fn explorer_over(files: &[&str]) -> RunningExplorer {
    let store = TraceStore::default();
    for file in files {
        store
            .read_path(&fixture(file), None)
            .expect("fixture reads");
    }
    serve(store).await
}

/// An HTTP answer, read off the socket.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(400)])
            )
        })
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one HTTP/1.1 request as written (`head` without its final blank line) and reads the
/// answer until the server closes.
pub(crate) async fn raw(addr: SocketAddr, head: &str) -> Answer {
    let run = async {
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        tcp.write_all(format!("{head}\r\nConnection: close\r\n\r\n").as_bytes())
            .await
            .expect("write request");
        let mut bytes = Vec::new();
        tcp.read_to_end(&mut bytes).await.expect("read answer");
        bytes
    };
    let bytes = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("hang guard: the explorer did not answer");
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    assert!(
        !headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked")),
        "the helper reads bodies with a length only"
    );
    Answer {
        status,
        headers,
        body: bytes[split + 4..].to_vec(),
    }
}

/// `GET path` with the `Host` a browser pointed at the explorer's URL would send.
pub(crate) async fn get(explorer: &RunningExplorer, path: &str) -> Answer {
    let addr = explorer.addr();
    raw(addr, &format!("GET {path} HTTP/1.1\r\nHost: {addr}")).await
}

/// `GET path` expecting 200 and JSON.
pub(crate) async fn get_json(explorer: &RunningExplorer, path: &str) -> serde_json::Value {
    let answer = get(explorer, path).await;
    assert_eq!(answer.status, 200, "{path}: {}", answer.text());
    assert_eq!(answer.header("content-type"), Some("application/json"));
    answer.json()
}
