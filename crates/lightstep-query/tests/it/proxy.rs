//! Stores reached through the HTTP proxy written for the tests (`tools/test-proxy`). It tunnels
//! `CONNECT` and forwards plaintext requests, records every request head and every byte a
//! client sends through it, and resolves names under `.test` to this machine, as a corporate
//! proxy resolves names the client cannot.

use lightstep_query::{Error, Jaeger, TraceSource as _};

use crate::fixtures;
use crate::standin::StandIn;
use crate::test_proxy::{Answer, TestProxy};
use crate::tls::TestPki;

const TOKEN: &str = "s3cret-bearer-t0ken";

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
    let proxy = TestProxy::start(Answer::Pass).await;
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
    let proxy = TestProxy::start(Answer::Pass).await;
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
    let proxy = TestProxy::start(Answer::Pass).await;
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
    for status in ["403 Forbidden", "407 Proxy Authentication Required"] {
        let proxy = TestProxy::start(Answer::Refuse(status)).await;
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
