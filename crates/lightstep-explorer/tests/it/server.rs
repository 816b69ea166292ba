//! The listener's rules: loopback unless allowed, the `Host` check, methods, and the headers of
//! every answer.

use lightstep_explorer::{CONTENT_SECURITY_POLICY, Error, Explorer};

use crate::*;

#[tokio::test]
async fn an_address_that_is_not_loopback_is_refused_unless_allowed() {
    let err = Explorer::builder()
        .with_addr("0.0.0.0:0".parse().unwrap())
        .start()
        .await
        .expect_err("0.0.0.0 is not loopback");
    assert!(matches!(err, Error::NotLoopback { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("0.0.0.0:0") && message.contains("not a loopback address"),
        "{message}"
    );
    // A socket handed over is held to the same rule.
    let socket = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let err = Explorer::builder()
        .with_listener(socket)
        .start()
        .await
        .expect_err("a socket on 0.0.0.0 is not loopback");
    assert!(matches!(err, Error::NotLoopback { .. }), "{err:?}");

    let remote = Explorer::builder()
        .with_addr("0.0.0.0:0".parse().unwrap())
        .with_remote_access(true)
        .start()
        .await
        .expect("allowed explicitly");
    assert!(
        remote.url().starts_with("http://127.0.0.1:"),
        "{}",
        remote.url()
    );
    remote.shutdown().await;
}

#[tokio::test]
async fn requests_that_name_another_host_are_refused() {
    let explorer = explorer_over(&["crisp/1.json"]).await;
    let port = explorer.addr().port();
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ] {
        let answer = raw(
            explorer.addr(),
            &format!("GET /api/services HTTP/1.1\r\nHost: {host}"),
        )
        .await;
        assert_eq!(answer.status, 200, "{host}");
    }
    for host in [
        format!("rebind.example:{port}"),
        format!("localhost.rebind.example:{port}"),
        format!("127.0.0.1:{}", port.wrapping_add(1)),
        "localhost".to_owned(),
    ] {
        let answer = raw(
            explorer.addr(),
            &format!("GET /api/services HTTP/1.1\r\nHost: {host}"),
        )
        .await;
        assert_eq!(answer.status, 403, "{host}");
        assert!(!answer.text().contains("data"), "{}", answer.text());
    }
    // No Host at all (HTTP/1.0), and two of them, one wrong.
    let answer = raw(explorer.addr(), "GET /api/services HTTP/1.0").await;
    assert_eq!(answer.status, 403);
    let answer = raw(
        explorer.addr(),
        &format!(
            "GET /api/services HTTP/1.1\r\nHost: localhost:{port}\r\nHost: evil.example:{port}"
        ),
    )
    .await;
    assert_ne!(answer.status, 200);
    explorer.shutdown().await;
}

#[tokio::test]
async fn every_answer_carries_the_security_headers_and_no_cors() {
    let explorer = explorer_over(&["crisp/1.json"]).await;
    let addr = explorer.addr();
    let requests = [
        (
            format!("GET / HTTP/1.1\r\nHost: {addr}"),
            200,
            "text/html; charset=utf-8",
        ),
        (
            format!("GET /trace/abc HTTP/1.1\r\nHost: {addr}"),
            200,
            "text/html; charset=utf-8",
        ),
        (
            format!("GET /search?service=x HTTP/1.1\r\nHost: {addr}"),
            200,
            "text/html; charset=utf-8",
        ),
        (
            format!("GET /assets/app.js HTTP/1.1\r\nHost: {addr}"),
            200,
            "text/javascript; charset=utf-8",
        ),
        (
            format!("GET /assets/style.css HTTP/1.1\r\nHost: {addr}"),
            200,
            "text/css; charset=utf-8",
        ),
        (
            format!("GET /assets/favicon.svg HTTP/1.1\r\nHost: {addr}"),
            200,
            "image/svg+xml",
        ),
        (
            format!("GET /api/services HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://evil.example"),
            200,
            "application/json",
        ),
        (
            format!("GET /api/traces/ffffffff HTTP/1.1\r\nHost: {addr}"),
            404,
            "application/json",
        ),
        (
            format!("GET /api/nope HTTP/1.1\r\nHost: {addr}"),
            404,
            "application/json",
        ),
        (
            format!("GET /assets/nope.js HTTP/1.1\r\nHost: {addr}"),
            404,
            "text/plain; charset=utf-8",
        ),
        (
            format!("GET /etc/passwd HTTP/1.1\r\nHost: {addr}"),
            404,
            "text/plain; charset=utf-8",
        ),
        (
            format!("GET /assets/..%2Fsrc%2Flib.rs HTTP/1.1\r\nHost: {addr}"),
            404,
            "text/plain; charset=utf-8",
        ),
        (
            format!("POST /api/services HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0"),
            405,
            "text/plain; charset=utf-8",
        ),
        (
            format!(
                "OPTIONS /api/services HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://evil.example\r\nAccess-Control-Request-Method: GET"
            ),
            405,
            "text/plain; charset=utf-8",
        ),
        (
            format!(
                "GET /api/services HTTP/1.1\r\nHost: evil.example:{}",
                addr.port()
            ),
            403,
            "text/plain; charset=utf-8",
        ),
        (
            format!("GET /%FF HTTP/1.1\r\nHost: {addr}"),
            400,
            "text/plain; charset=utf-8",
        ),
    ];
    for (head, status, content_type) in requests {
        let answer = raw(addr, &head).await;
        let first = head.lines().next().unwrap();
        assert_eq!(answer.status, status, "{first}: {}", answer.text());
        assert_eq!(answer.header("content-type"), Some(content_type), "{first}");
        assert_eq!(
            answer.header("content-security-policy"),
            Some(CONTENT_SECURITY_POLICY),
            "{first}"
        );
        assert_eq!(
            answer.header("x-content-type-options"),
            Some("nosniff"),
            "{first}"
        );
        assert_eq!(answer.header("x-frame-options"), Some("DENY"), "{first}");
        let cors: Vec<_> = answer
            .headers
            .iter()
            .filter(|(k, _)| k.to_ascii_lowercase().starts_with("access-control-"))
            .collect();
        assert!(cors.is_empty(), "{first}: {cors:?}");
    }
    // The policy allows nothing inline and nothing from elsewhere.
    assert!(CONTENT_SECURITY_POLICY.contains("default-src 'self'"));
    assert!(CONTENT_SECURITY_POLICY.contains("script-src 'self';"));
    assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
    explorer.shutdown().await;
}

#[tokio::test]
async fn shutdown_frees_the_port() {
    let explorer = explorer_over(&[]).await;
    let addr = explorer.addr();
    assert_eq!(get(&explorer, "/api/status").await.status, 200);
    explorer.shutdown().await;
    let again = Explorer::builder()
        .with_addr(addr)
        .start()
        .await
        .expect("port free again");
    again.shutdown().await;
}

#[tokio::test]
async fn the_pages_never_turn_data_into_markup_and_run_nothing_inline() {
    let explorer = explorer_over(&[]).await;
    let script = get(&explorer, "/assets/app.js").await.text();
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        "setTimeout(\"",
        "createContextualFragment",
    ] {
        assert!(!script.contains(sink), "app.js uses {sink}");
    }
    let page = get(&explorer, "/").await.text();
    // The only script is the module file; no inline script, handler or style attribute.
    assert_eq!(page.matches("<script").count(), 1, "{page}");
    assert!(page.contains(r#"<script type="module" src="/assets/app.js"></script>"#));
    assert!(!page.contains("javascript:"));
    // Attribute names of every tag: no event handler, no style attribute.
    for tag in page.split('<').skip(1) {
        let inside = tag.split('>').next().unwrap_or_default();
        for attribute in inside.split_whitespace().skip(1) {
            let name = attribute
                .split('=')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            assert!(
                !name.starts_with("on") && name != "style",
                "index.html: <{inside}>"
            );
        }
    }
    explorer.shutdown().await;
}
