//! Stores reached through an HTTP proxy written for the tests. It tunnels `CONNECT` and
//! forwards plaintext requests, records every request head and every byte a client sends
//! through it, and resolves names under `.test` to this machine, as a corporate proxy resolves
//! names the client cannot.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use lightstep_query::{Error, Jaeger, TraceSource as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::fixtures;
use crate::standin::StandIn;
use crate::tls::TestPki;

const TOKEN: &str = "s3cret-bearer-t0ken";

#[derive(Default)]
struct Seen {
    connections: usize,
    heads: Vec<String>,
    /// Every byte clients sent after the head, through tunnels or forwarded.
    relayed: Vec<u8>,
}

struct TestProxy {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
}

impl TestProxy {
    /// A proxy that tunnels and forwards (`refuse: None`) or answers every request with this
    /// status.
    async fn start(refuse: Option<u16>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let shared = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                shared.lock().unwrap().connections += 1;
                tokio::spawn(serve(client, refuse, Arc::clone(&shared)));
            }
        });
        Self { addr, seen }
    }

    fn url_with_credentials(&self) -> String {
        format!("http://proxyuser:pr0xy-passw0rd@{}", self.addr)
    }

    fn connections(&self) -> usize {
        self.seen.lock().unwrap().connections
    }

    fn heads(&self) -> Vec<String> {
        self.seen.lock().unwrap().heads.clone()
    }

    fn relayed(&self) -> Vec<u8> {
        self.seen.lock().unwrap().relayed.clone()
    }
}

/// `name:port` with names under `.test` resolved to loopback.
fn resolve(authority: &str) -> String {
    let (host, port) = authority.rsplit_once(':').unwrap();
    if host.ends_with(".test") {
        format!("127.0.0.1:{port}")
    } else {
        authority.to_owned()
    }
}

async fn serve(mut client: TcpStream, refuse: Option<u16>, seen: Arc<Mutex<Seen>>) {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        match client.read_u8().await {
            Ok(byte) => head.push(byte),
            Err(_) => return,
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    seen.lock().unwrap().heads.push(text.clone());
    if let Some(status) = refuse {
        let answer = format!("HTTP/1.1 {status} Refused\r\ncontent-length: 0\r\n\r\n");
        let _ = client.write_all(answer.as_bytes()).await;
        return;
    }
    let mut words = text.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (authority, forwarded_head) = if method == "CONNECT" {
        (target.to_owned(), None)
    } else {
        // Absolute form: `GET http://host:port/path HTTP/1.1`.
        let rest = target.strip_prefix("http://").unwrap_or(target);
        let authority = rest.split('/').next().unwrap_or("").to_owned();
        (authority, Some(head))
    };
    let Ok(mut upstream) = TcpStream::connect(resolve(&authority)).await else {
        let _ = client
            .write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    };
    match forwarded_head {
        None => {
            if client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await
                .is_err()
            {
                return;
            }
        }
        Some(head) => {
            if upstream.write_all(&head).await.is_err() {
                return;
            }
        }
    }
    let (mut client_read, mut client_write) = client.into_split();
    let (mut upstream_read, mut upstream_write) = upstream.into_split();
    let recorder = Arc::clone(&seen);
    let up = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    recorder
                        .lock()
                        .unwrap()
                        .relayed
                        .extend_from_slice(&buf[..n]);
                    if upstream_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = upstream_write.shutdown().await;
    };
    let down = async move {
        let _ = tokio::io::copy(&mut upstream_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    tokio::join!(up, down);
}

/// A Jaeger stand-in behind TLS for `store.test`, and a CA file that trusts it.
async fn https_store() -> (StandIn, tempfile::TempDir, std::path::PathBuf) {
    let pki = TestPki::for_names(&["store.test"]);
    let standin = StandIn::start_tls(fixtures::jaeger_api(), pki.acceptor()).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();
    (standin, dir, ca_file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_goes_through_a_connect_tunnel_and_the_proxy_never_sees_the_token() {
    let proxy = TestProxy::start(None).await;
    let (standin, _dir, ca_file) = https_store().await;
    let (id, _) = &fixtures::jaeger_traces()[0];
    let jaeger = Jaeger::builder(format!("https://store.test:{}", standin.addr.port()))
        .with_proxy(proxy.url_with_credentials())
        .with_ca_file(&ca_file)
        .with_bearer_token(TOKEN)
        .build()
        .unwrap();
    let trace = jaeger.fetch(id).await.unwrap();
    assert!(!trace.spans.is_empty());
    let heads = proxy.heads();
    assert!(
        heads
            .iter()
            .any(|h| h.starts_with(&format!("CONNECT store.test:{} ", standin.addr.port()))),
        "{heads:?}"
    );
    // The proxy's own credentials go to the proxy; the store's token only inside TLS.
    assert!(
        heads.iter().any(|h| h
            .to_ascii_lowercase()
            .contains("proxy-authorization: basic")),
        "{heads:?}"
    );
    let everything = [heads.concat().into_bytes(), proxy.relayed()].concat();
    assert!(!everything.is_empty());
    assert!(
        !everything
            .windows(TOKEN.len())
            .any(|w| w == TOKEN.as_bytes()),
        "the proxy saw the token in clear"
    );
    // The store saw the token.
    let requests = standin.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.header("authorization") == Some(&format!("Bearer {TOKEN}"))),
        "{requests:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_is_forwarded_only_without_secrets_or_when_insecure_is_allowed() {
    let proxy = TestProxy::start(None).await;
    let standin = StandIn::start(fixtures::jaeger_api()).await;
    let url = format!("http://store.test:{}", standin.addr.port());
    let (id, _) = &fixtures::jaeger_traces()[0];

    // A header would travel in clear to a host that is not loopback: refused when built.
    let err = Jaeger::builder(&url)
        .with_proxy(proxy.url_with_credentials())
        .with_bearer_token(TOKEN)
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::PlaintextSecrets { .. }), "{err:?}");
    assert_eq!(proxy.connections(), 0);

    // Without one, the request is forwarded through the proxy.
    let jaeger = Jaeger::builder(&url)
        .with_proxy(proxy.url_with_credentials())
        .build()
        .unwrap();
    let trace = jaeger.fetch(id).await.unwrap();
    assert!(!trace.spans.is_empty());
    let heads = proxy.heads();
    assert!(
        heads.iter().any(|h| h.starts_with(&format!(
            "GET http://store.test:{}/api/traces/",
            standin.addr.port()
        ))),
        "{heads:?}"
    );

    // Allowed explicitly, the token travels in clear: the proxy sees it.
    let insecure = Jaeger::builder(&url)
        .with_proxy(proxy.url_with_credentials())
        .with_bearer_token(TOKEN)
        .with_insecure(true)
        .build()
        .unwrap();
    assert!(!insecure.fetch(id).await.unwrap().spans.is_empty());
    assert!(proxy.heads().concat().contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_stores_and_no_proxy_hosts_bypass_the_proxy() {
    let proxy = TestProxy::start(None).await;
    let standin = StandIn::start(fixtures::jaeger_api()).await;
    let (id, _) = &fixtures::jaeger_traces()[0];
    let local = Jaeger::builder(standin.url())
        .with_proxy(proxy.url_with_credentials())
        .build()
        .unwrap();
    assert!(!local.fetch(id).await.unwrap().spans.is_empty());
    assert_eq!(
        proxy.connections(),
        0,
        "a loopback store went through the proxy"
    );

    // `store.test` only resolves through the proxy: bypassing it, the name is not found.
    let bypassed = Jaeger::builder(format!("http://store.test:{}", standin.addr.port()))
        .with_proxy(proxy.url_with_credentials())
        .with_no_proxy("example.com,.test")
        .build()
        .unwrap();
    let err = bypassed.fetch(id).await.unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    assert!(!err.to_string().contains("through the proxy"), "{err}");
    assert_eq!(
        proxy.connections(),
        0,
        "a NO_PROXY host went through the proxy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_proxy_is_named_without_its_credentials() {
    for status in [403, 407] {
        let proxy = TestProxy::start(Some(status)).await;
        let (standin, _dir, ca_file) = https_store().await;
        let (id, _) = &fixtures::jaeger_traces()[0];
        let jaeger = Jaeger::builder(format!("https://store.test:{}", standin.addr.port()))
            .with_proxy(proxy.url_with_credentials())
            .with_ca_file(&ca_file)
            .build()
            .unwrap();
        let err = jaeger.fetch(id).await.unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
        assert!(
            text.contains(&format!("through the proxy http://{}", proxy.addr)),
            "{text}"
        );
        assert!(
            !text.contains("pr0xy-passw0rd") && !text.contains("proxyuser"),
            "{text}"
        );
        assert!(standin.requests().is_empty());
    }
}

#[test]
fn a_proxy_that_is_not_http_is_refused_naming_it_without_credentials() {
    // `host:port`, as curl and the proxy variables take it, is an http:// proxy.
    Jaeger::builder("https://jaeger.example")
        .with_proxy("proxy.example:3128")
        .build()
        .unwrap();
    for (url, expected) in [
        (
            "https://user:pr0xy-passw0rd@proxy.example:3128",
            "only an http:// proxy",
        ),
        (
            "socks5://user:pr0xy-passw0rd@proxy.example:1080",
            "only an http:// proxy",
        ),
        (
            "http://user:pr0xy-passw0rd@proxy.example:3128/path",
            "a scheme, a host and a port only",
        ),
        (
            "http://user:pr0xy-passw0rd@proxy.example:3128?x=1",
            "a scheme, a host and a port only",
        ),
    ] {
        let err = Jaeger::builder("https://jaeger.example")
            .with_proxy(url)
            .build()
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::Setting { .. }), "{err:?}");
        assert!(text.contains(expected), "{url}: {text}");
        assert!(text.contains("proxy.example"), "{url}: {text}");
        assert!(!text.contains("pr0xy-passw0rd"), "{url}: {text}");
    }
}
