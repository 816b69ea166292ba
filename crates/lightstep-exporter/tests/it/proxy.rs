//! Exports through the HTTP proxy written for the tests (`tools/test-proxy`): it records every
//! request head and every byte a client sends through a tunnel, and resolves `collector.test`
//! (the endpoint's name in these tests) to this machine, as a corporate proxy resolves names
//! the client cannot.

use std::time::Duration;

use lightstep_config::{ConfigBuilder, EnvSnapshot, Protocol};
use lightstep_exporter::{ExporterError, LightstepExporter};
use lightstep_receiver::{Receiver, RunningReceiver};
use opentelemetry::trace::Tracer as _;

use crate::test_proxy::{Answer, TestProxy};
use crate::{TOKEN, TestPki, config_for, exporter};

/// A TLS receiver whose certificate names `collector.test`.
async fn tls_receiver(pki: &TestPki) -> RunningReceiver {
    Receiver::builder()
        .with_access_token(TOKEN)
        .with_tls(pki.server_cert.clone(), pki.server_key.clone())
        .start()
        .await
        .unwrap()
}

/// The receiver's endpoint for `protocol`, named `collector.test` (or as `scheme` says).
fn named_endpoint(receiver: &RunningReceiver, protocol: Protocol, scheme: &str) -> String {
    if protocol.is_http() {
        format!(
            "{scheme}://collector.test:{}/v1/traces",
            receiver.http_addr().port()
        )
    } else {
        format!("{scheme}://collector.test:{}", receiver.grpc_addr().port())
    }
}

fn port(receiver: &RunningReceiver, protocol: Protocol) -> u16 {
    if protocol.is_http() {
        receiver.http_addr().port()
    } else {
        receiver.grpc_addr().port()
    }
}

fn config_with_env(url: &str, protocol: Protocol, env: EnvSnapshot) -> ConfigBuilder {
    config_for(url, protocol).with_env(env)
}

async fn deliver_one(exporter: LightstepExporter, receiver: &RunningReceiver, protocol: Protocol) {
    exporter.tracer().in_span("through-the-proxy", |_| {});
    let stats = exporter
        .shutdown()
        .await
        .unwrap_or_else(|e| panic!("{protocol:?}: {e}"));
    assert_eq!((stats.exported, stats.failed), (1, 0), "{protocol:?}");
    let spans = receiver
        .wait_for_spans(1, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(spans[0].name(), "through-the-proxy");
    assert_eq!(spans[0].request().access_token(), Some(TOKEN));
}

/// HTTPS exports, gRPC and HTTP, go through the proxy in a CONNECT tunnel: the proxy gets the
/// endpoint's name and port (and its own credentials, when the URL has some), and the token
/// only inside TLS. From `HTTPS_PROXY`, and from `with_proxy` with credentials.
#[tokio::test]
async fn https_exports_tunnel_through_the_proxy_which_never_sees_the_token() {
    let pki = TestPki::new();
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf, Protocol::HttpJson] {
        for from_code in [false, true] {
            let receiver = tls_receiver(&pki).await;
            let proxy = TestProxy::start(Answer::Pass).await;
            let url = named_endpoint(&receiver, protocol, "https");
            let builder = if from_code {
                config_for(&url, protocol).with_proxy(format!("http://ops:pa55@{}", proxy.addr))
            } else {
                config_with_env(
                    &url,
                    protocol,
                    EnvSnapshot::empty().with("HTTPS_PROXY", proxy.url()),
                )
            };
            let exporter = exporter(builder.with_ca_file(pki.ca_file()));
            deliver_one(exporter, &receiver, protocol).await;

            let heads = proxy.heads();
            assert!(!heads.is_empty(), "{protocol:?}");
            let target = format!("collector.test:{}", port(&receiver, protocol));
            for head in &heads {
                assert!(
                    head.starts_with(&format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n")),
                    "{protocol:?}: {head}"
                );
                assert!(!head.contains(TOKEN), "{protocol:?}: {head}");
                // ops:pa55 in base64.
                assert_eq!(
                    head.contains("Proxy-Authorization: Basic b3BzOnBhNTU=\r\n"),
                    from_code,
                    "{protocol:?}: {head}"
                );
            }
            let tunnelled = proxy.relayed();
            assert!(!tunnelled.is_empty(), "{protocol:?}");
            for clear in [
                TOKEN.as_bytes(),
                b"lightstep-access-token",
                b"through-the-proxy",
            ] {
                assert!(
                    !tunnelled.windows(clear.len()).any(|w| w == clear),
                    "{protocol:?}: the proxy saw {} in clear",
                    String::from_utf8_lossy(clear)
                );
            }
            receiver.shutdown().await;
        }
    }
}

/// `NO_PROXY` sends an endpoint it names around the proxy (here the direct connection fails:
/// only the proxy knows `collector.test`), and a loopback endpoint never goes through one.
#[tokio::test]
async fn no_proxy_and_loopback_endpoints_bypass_the_proxy() {
    let pki = TestPki::new();
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let receiver = tls_receiver(&pki).await;
        let proxy = TestProxy::start(Answer::Pass).await;
        for no_proxy in ["collector.test", "localhost, .test", "*"] {
            let env = EnvSnapshot::empty()
                .with("HTTPS_PROXY", proxy.url())
                .with("NO_PROXY", no_proxy);
            let url = named_endpoint(&receiver, protocol, "https");
            let exporter = exporter(
                config_with_env(&url, protocol, env)
                    .with_ca_file(pki.ca_file())
                    .with_export_timeout(Duration::from_millis(500))
                    .with_shutdown_timeout(Duration::from_secs(1)),
            );
            exporter.tracer().in_span("bypassing", |_| {});
            let err = exporter
                .shutdown()
                .await
                .expect_err("collector.test does not resolve without the proxy");
            let text = err.to_string();
            assert!(
                text.contains(&format!(
                    "cannot connect to collector.test:{}",
                    port(&receiver, protocol)
                )),
                "{protocol:?}, NO_PROXY={no_proxy}: {text}"
            );
            assert!(!text.contains("proxy"), "{protocol:?}: {text}");
        }
        // The receiver's own loopback address, HTTPS_PROXY set and no NO_PROXY: direct.
        let env = EnvSnapshot::empty().with("HTTPS_PROXY", proxy.url());
        let url = crate::endpoint(&receiver, protocol);
        assert!(url.starts_with("https://127.0.0.1:"), "{url}");
        let exporter = exporter(config_with_env(&url, protocol, env).with_ca_file(pki.ca_file()));
        deliver_one(exporter, &receiver, protocol).await;
        assert_eq!(proxy.connections(), 0, "{protocol:?}");
        receiver.shutdown().await;
    }
}

/// A proxy that refuses the tunnel (407, 403): the export fails (and is retried), and the
/// error names the proxy, the endpoint and the answer, never the proxy's credentials.
#[tokio::test]
async fn a_proxy_that_refuses_the_tunnel_is_named_without_its_credentials() {
    let pki = TestPki::new();
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let receiver = tls_receiver(&pki).await;
        for status in ["407 Proxy Authentication Required", "403 Forbidden"] {
            let proxy = TestProxy::start(Answer::Refuse(status)).await;
            let url = named_endpoint(&receiver, protocol, "https");
            let config = config_for(&url, protocol)
                .with_ca_file(pki.ca_file())
                .with_proxy(format!("http://ops:S3CRET-PW@{}", proxy.addr))
                .with_export_timeout(Duration::from_millis(500))
                .with_shutdown_timeout(Duration::from_secs(1))
                .build()
                .unwrap();
            assert!(!format!("{config:?}").contains("S3CRET-PW"));
            let exporter = LightstepExporter::new(config).unwrap();
            exporter.tracer().in_span("refused", |_| {});
            let err = exporter.shutdown().await.expect_err("no tunnel");
            assert!(
                matches!(err, ExporterError::Undelivered { failed: 1, .. }),
                "{err}"
            );
            let text = err.to_string();
            let expected = format!(
                "the proxy http://{} refused the tunnel to collector.test:{}: {status}",
                proxy.addr,
                port(&receiver, protocol)
            );
            assert!(text.contains(&expected), "{protocol:?}: {text}");
            for secret in ["S3CRET-PW", "ops:", "b3BzOlMzQ1JFVC1QVw", TOKEN] {
                assert!(!text.contains(secret), "{protocol:?}: {text}");
            }
            assert!(proxy.connections() >= 1);
        }
        assert!(receiver.spans().is_empty());
        receiver.shutdown().await;
    }
}

/// Through a proxy the endpoint is never loopback, so an `http://` endpoint with a token needs
/// `insecure`, as without a proxy: the token would cross the proxy in clear. With it, plaintext
/// gRPC (HTTP/2 with prior knowledge) and HTTP go through the tunnel.
#[tokio::test]
async fn plaintext_through_a_proxy_needs_insecure() {
    let receiver = crate::receiver().await;
    let proxy = TestProxy::start(Answer::Pass).await;
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let url = named_endpoint(&receiver, protocol, "http");
        let env = EnvSnapshot::empty().with("HTTP_PROXY", proxy.url());
        let refused = config_with_env(&url, protocol, env.clone()).build();
        let err = refused.expect_err("a token in plaintext").to_string();
        assert!(err.contains("plaintext"), "{err}");
        assert!(!err.contains(TOKEN), "{err}");

        let exporter = exporter(config_with_env(&url, protocol, env).with_insecure(true));
        let before = receiver.spans().len();
        exporter.tracer().in_span("through-the-proxy", |_| {});
        let stats = exporter
            .shutdown()
            .await
            .unwrap_or_else(|e| panic!("{protocol:?}: {e}"));
        assert_eq!(stats.exported, 1, "{protocol:?}");
        assert_eq!(receiver.spans().len(), before + 1, "{protocol:?}");
        let target = format!("CONNECT collector.test:{} ", port(&receiver, protocol));
        assert!(
            proxy.heads().iter().any(|h| h.starts_with(&target)),
            "{protocol:?}: {:?}",
            proxy.heads()
        );
    }
}

/// The doctor checks the way the pipeline goes: through the proxy, it resolves and connects to
/// the proxy, opens the tunnel, handshakes with the endpoint inside it and exports; a proxy
/// that refuses the tunnel fails the connect step, named without its credentials.
#[tokio::test]
async fn the_doctor_goes_through_the_proxy() {
    use lightstep_exporter::diagnose::{Outcome, Step, diagnose};
    let pki = TestPki::new();
    let receiver = tls_receiver(&pki).await;
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let url = named_endpoint(&receiver, protocol, "https");
        let target = format!("collector.test:{}", port(&receiver, protocol));
        let proxy = TestProxy::start(Answer::Pass).await;
        let env = EnvSnapshot::empty().with("HTTPS_PROXY", proxy.url());
        let config = config_with_env(&url, protocol, env)
            .with_ca_file(pki.ca_file())
            .build()
            .unwrap();
        let d = diagnose(Ok(&config)).await;
        assert!(d.passed(), "{protocol:?}:\n{d}");
        let detail = |step: Step| {
            let check = d.checks.iter().find(|c| c.step == step).unwrap();
            check.detail.clone()
        };
        assert!(
            detail(Step::Resolve).contains("`127.0.0.1` (the proxy) resolves"),
            "{d}"
        );
        assert!(
            detail(Step::Connect).contains(&format!(
                "the proxy {}, which opens a tunnel to {target}",
                proxy.url()
            )),
            "{d}"
        );
        assert!(detail(Step::Tls).contains("verifies"), "{d}");

        let refusing = TestProxy::start(Answer::Refuse("407 Proxy Authentication Required")).await;
        let config = config_for(&url, protocol)
            .with_ca_file(pki.ca_file())
            .with_proxy(format!("http://ops:S3CRET-PW@{}", refusing.addr))
            .build()
            .unwrap();
        let d = diagnose(Ok(&config)).await;
        let connect = d.checks.iter().find(|c| c.step == Step::Connect).unwrap();
        assert_eq!(connect.outcome, Outcome::Fail, "{d}");
        assert!(
            connect.detail.contains(&format!(
                "the proxy {} refused the tunnel to {target}: 407 Proxy Authentication Required",
                refusing.url()
            )),
            "{d}"
        );
        assert!(!d.to_string().contains("S3CRET-PW"), "{d}");
    }
    receiver.shutdown().await;
}
