//! OTLP/HTTP (protobuf or JSON bodies): hyper-util's client on the pipeline's connector,
//! HTTP/1.1 with kept-alive connections. No redirect is followed: OTLP has none, and following
//! one would carry the token to another host.

use std::io::Write as _;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Uri, header};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use lightstep_config::{Compression, LightstepConfig, Protocol};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message as _;

use super::{BufferPool, Connector, Redactor, USER_AGENT, delivered, error_chain, header_list};
use crate::error::ExporterError;
use crate::processor::Delivered;
use crate::retry::{self, Failed, Retry};

/// Largest OTLP/HTTP success body read (an `ExportTraceServiceResponse`).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Sends OTLP/HTTP exports: every request a `POST` of the encoded batch to the configured URL
/// with the configured headers.
#[derive(Clone)]
pub(crate) struct HttpWire {
    client: Client<Connector, Full<Bytes>>,
    url: Uri,
    headers: HeaderMap,
    json: bool,
    gzip: bool,
    redactor: Redactor,
}

impl HttpWire {
    /// The wire for `config`, with `tls` as the TLS configuration (built from the configuration
    /// when `None`), keeping up to `idle` connections open between exports.
    pub(crate) fn new(
        config: &LightstepConfig,
        tls: Option<rustls::ClientConfig>,
        redactor: Redactor,
        idle: usize,
    ) -> Result<Self, ExporterError> {
        let connector = super::connector(config, tls, &[b"http/1.1"])?;
        let url: Uri = config.traces_endpoint().as_str().parse().map_err(|e| {
            ExporterError::Build(format!(
                "`{}` is not a valid URL: {e}",
                config.traces_endpoint()
            ))
        })?;
        let mut headers = HeaderMap::new();
        for (name, value, sensitive) in header_list(config) {
            let name = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| ExporterError::Build(format!("header name `{name}` is not valid")))?;
            let mut value = HeaderValue::from_str(&value).map_err(|_| {
                ExporterError::Build(format!("the value of header `{name}` is not valid"))
            })?;
            value.set_sensitive(sensitive);
            headers.insert(name, value);
        }
        let json = config.protocol() == Protocol::HttpJson;
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(if json {
                "application/json"
            } else {
                "application/x-protobuf"
            }),
        );
        headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        let gzip = config.compression() == Compression::Gzip;
        if gzip {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_max_idle_per_host(idle.max(1))
            .build(connector);
        Ok(Self {
            client,
            url,
            headers,
            json,
            gzip,
            redactor,
        })
    }

    /// The body to send for `payload`: its gzip compression (in a pooled buffer) when the
    /// configuration asks for it, `None` to send it as it is.
    pub(crate) fn compress(
        &self,
        payload: &Bytes,
        pool: &BufferPool,
    ) -> std::io::Result<Option<Bytes>> {
        if !self.gzip {
            return Ok(None);
        }
        let mut buffer = pool.take();
        buffer.reserve(payload.len() / 4);
        let mut encoder = flate2::write::GzEncoder::new(buffer, flate2::Compression::default());
        encoder.write_all(payload)?;
        Ok(Some(Bytes::from(encoder.finish()?)))
    }

    /// Sends `body` once and returns the answer as it comes.
    pub(crate) async fn send(
        &self,
        body: Bytes,
    ) -> Result<http::Response<Incoming>, hyper_util::client::legacy::Error> {
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.url.clone();
        *request.headers_mut() = self.headers.clone();
        self.client.request(request).await
    }

    /// One attempt. A failure without an answer (refused connection, reset) is transient.
    pub(crate) async fn attempt(&self, body: Bytes) -> Result<Delivered, Failed> {
        match self.send(body).await {
            Ok(response) if response.status().is_success() => Ok(self.read_success(response).await),
            Ok(response) => {
                let status = response.status();
                Err(Failed {
                    reason: format!("HTTP export failed: status {status}"),
                    retry: retry::http(
                        status.as_u16(),
                        response.headers().get(header::RETRY_AFTER),
                    ),
                })
            }
            Err(e) => Err(Failed {
                reason: format!(
                    "HTTP export failed: {}",
                    self.redactor.clean(&error_chain(&e))
                ),
                retry: Retry::After(None),
            }),
        }
    }

    /// A 2xx answer: the body, if any, may report a partial success. A success whose body
    /// cannot be read still delivered the spans. At most `MAX_RESPONSE_BYTES` are read: an
    /// OTLP answer is a count and a message, and a body without end would otherwise be held
    /// until the attempt's timeout.
    async fn read_success(&self, response: http::Response<Incoming>) -> Delivered {
        let json = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map_or(self.json, |v| v.contains("json"));
        let Ok(body) = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
        else {
            return Delivered::default();
        };
        let body = body.to_bytes();
        if body.is_empty() {
            return Delivered::default();
        }
        if json {
            partial_success_from_json(&body, &self.redactor)
        } else {
            ExportTraceServiceResponse::decode(body)
                .map(|r| delivered(&r, &self.redactor))
                .unwrap_or_default()
        }
    }
}

/// `partialSuccess` of an OTLP/JSON response (`rejectedSpans` as a string or a number).
fn partial_success_from_json(body: &[u8], redactor: &Redactor) -> Delivered {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Delivered::default();
    };
    let partial = &value["partialSuccess"];
    let rejected = match &partial["rejectedSpans"] {
        serde_json::Value::String(s) => s.parse::<i64>().ok(),
        other => other.as_i64(),
    };
    let message = partial["errorMessage"]
        .as_str()
        .filter(|m| !m.is_empty())
        .map(|m| redactor.clean(m));
    Delivered {
        rejected: rejected.and_then(|r| u64::try_from(r).ok()).unwrap_or(0),
        message,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::retry::LastAttempt;
    use crate::transport::tests::redactor;

    /// The OTLP/HTTP protobuf wire to a plaintext test backend at `addr`.
    fn plaintext_wire(addr: std::net::SocketAddr) -> HttpWire {
        let config = LightstepConfig::builder()
            .with_env(lightstep_config::EnvSnapshot::empty())
            .with_protocol(Protocol::HttpProtobuf)
            .with_traces_endpoint(format!("http://{addr}/v1/traces"))
            .with_timeout(Duration::from_secs(10))
            .build()
            .expect("config");
        HttpWire::new(&config, None, redactor(), 1).expect("wire")
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn partial_success_from_json_in_both_number_forms() {
        let r = redactor();
        for body in [
            r#"{"partialSuccess":{"rejectedSpans":"3","errorMessage":"no"}}"#,
            r#"{"partialSuccess":{"rejectedSpans":3,"errorMessage":"no"}}"#,
        ] {
            assert_eq!(
                partial_success_from_json(body.as_bytes(), &r),
                Delivered {
                    rejected: 3,
                    message: Some("no".into())
                }
            );
        }
        for body in ["", "{}", "not json", r#"{"partialSuccess":{}}"#, "[1]"] {
            assert_eq!(
                partial_success_from_json(body.as_bytes(), &r),
                Delivered::default(),
                "{body}"
            );
        }
    }

    #[test]
    fn an_http_export_keeps_its_deadline_when_the_backend_never_answers() {
        // A backend that accepts connections and never answers.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming() {
                held.push(conn);
            }
        });
        // The per-request timeout (the configuration's) is far longer than the export's.
        let wire = plaintext_wire(addr);
        let started = Instant::now();
        let result = runtime().block_on(retry::run(
            "HTTP",
            Duration::from_millis(500),
            Duration::from_secs(10),
            &LastAttempt::default(),
            |_| wire.attempt(Bytes::from_static(&[1, 2, 3])),
        ));
        assert!(result.is_err());
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "the export took {took:?}");
    }

    #[test]
    fn an_endless_success_body_is_not_read_to_the_end() {
        use std::io::Write as _;
        // A backend that answers 200 and then streams its body for ever.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                std::thread::spawn(move || {
                    let mut request = [0u8; 4096];
                    let _ = conn.read(&mut request);
                    let _ = conn.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ntransfer-encoding: chunked\r\n\r\n",
                    );
                    let chunk = [0u8; 64 * 1024];
                    let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
                    framed.extend_from_slice(&chunk);
                    framed.extend_from_slice(b"\r\n");
                    while conn.write_all(&framed).is_ok() {}
                });
            }
        });
        let wire = plaintext_wire(addr);
        let started = Instant::now();
        // The backend said 200: the spans were delivered.
        let result = runtime().block_on(wire.attempt(Bytes::from_static(&[1, 2, 3])));
        assert_eq!(result.expect("delivered"), Delivered::default());
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "the export took {took:?}");
    }
}
