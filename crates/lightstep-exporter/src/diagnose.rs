//! Why are my traces not arriving? The checks behind `lightstep doctor`, as a library: each step
//! of the way from the configuration to an accepted export, with a one-line diagnosis.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lightstep_config::{ConfigError, LightstepConfig};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message as _;

use crate::transport;

/// One step of the diagnosis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// The configuration loads and validates.
    Configuration,
    /// The endpoint's host name resolves.
    Resolve,
    /// A TCP connection opens.
    Connect,
    /// TLS handshakes and the certificate verifies (or plaintext is the explicit choice).
    Tls,
    /// An empty OTLP export is accepted.
    Export,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Configuration => "configuration",
            Self::Resolve => "resolve",
            Self::Connect => "connect",
            Self::Tls => "tls",
            Self::Export => "export",
        })
    }
}

/// How a step went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// It worked.
    Pass,
    /// It failed: the diagnosis says why.
    Fail,
    /// Not tried, because an earlier step failed or it does not apply.
    Skip,
}

/// The result of one step, with its one-line diagnosis.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Check {
    /// The step.
    pub step: Step,
    /// How it went.
    pub outcome: Outcome,
    /// What happened, in one line (never the token).
    pub detail: String,
}

impl Check {
    /// Details quote what servers, resolvers and TLS libraries said: a control character in
    /// them would reach the terminal of whoever runs `lightstep doctor`, so each becomes a
    /// space, as in the transport's errors.
    fn new(step: Step, outcome: Outcome, detail: impl Into<String>) -> Self {
        let detail: String = detail.into();
        let detail = if detail.chars().any(char::is_control) {
            detail
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect()
        } else {
            detail
        };
        Self {
            step,
            outcome,
            detail,
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = match self.outcome {
            Outcome::Pass => "ok  ",
            Outcome::Fail => "FAIL",
            Outcome::Skip => "skip",
        };
        write!(f, "[{mark}] {:<13} {}", self.step, self.detail)
    }
}

/// Every step, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
}

impl Diagnosis {
    /// Whether every step passed (skips for steps that do not apply count as passing).
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.outcome != Outcome::Fail)
    }

    fn skip_rest(mut self, from: &[Step], why: &str) -> Self {
        for step in from {
            self.checks.push(Check::new(*step, Outcome::Skip, why));
        }
        self
    }
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for check in &self.checks {
            writeln!(f, "{check}")?;
        }
        Ok(())
    }
}

/// Runs every step against the configuration (or reports why it does not load).
pub async fn diagnose(config: Result<&LightstepConfig, &ConfigError>) -> Diagnosis {
    let config = match config {
        Ok(config) => config,
        Err(e) => {
            let d = Diagnosis {
                checks: vec![Check::new(
                    Step::Configuration,
                    Outcome::Fail,
                    e.to_string(),
                )],
            };
            return d.skip_rest(
                &[Step::Resolve, Step::Connect, Step::Tls, Step::Export],
                "the configuration is invalid",
            );
        }
    };
    let mut d = Diagnosis {
        checks: vec![Check::new(
            Step::Configuration,
            Outcome::Pass,
            format!(
                "valid; sending {} to {}",
                config.protocol().as_str(),
                config.traces_endpoint()
            ),
        )],
    };
    if !config.exports() {
        // Not an error of the configuration, but certainly why traces do not arrive.
        d.checks.push(Check::new(
            Step::Export,
            Outcome::Fail,
            "nothing is exported: OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none",
        ));
        return d.skip_rest(
            &[Step::Resolve, Step::Connect, Step::Tls],
            "nothing is exported",
        );
    }
    let endpoint = config.traces_endpoint();
    let timeout = config.timeout();
    let host = endpoint
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = endpoint.port();
    let authority: Arc<str> = format!("{}:{port}", endpoint.host()).into();
    // Through a proxy, the host resolved and connected to is the proxy's.
    let proxy = match transport::proxy_route(config) {
        Ok(proxy) => proxy,
        Err(e) => {
            d.checks
                .push(Check::new(Step::Resolve, Outcome::Fail, e.to_string()));
            return d.skip_rest(&[Step::Connect, Step::Tls, Step::Export], "no usable proxy");
        }
    };
    let (first_hop, first_port) = proxy
        .as_ref()
        .map_or_else(|| (host.clone(), port), transport::Proxy::host_port);
    let which = if proxy.is_some() { " (the proxy)" } else { "" };

    let addrs: Vec<SocketAddr> = match tokio::time::timeout(
        timeout,
        tokio::net::lookup_host((first_hop.as_str(), first_port)),
    )
    .await
    {
        Ok(Ok(addrs)) => addrs.collect(),
        Ok(Err(e)) => {
            d.checks.push(Check::new(
                Step::Resolve,
                Outcome::Fail,
                format!("`{first_hop}`{which} does not resolve: {e}"),
            ));
            return d.skip_rest(
                &[Step::Connect, Step::Tls, Step::Export],
                "no address to connect to",
            );
        }
        Err(_) => {
            d.checks.push(Check::new(
                Step::Resolve,
                Outcome::Fail,
                format!(
                    "resolving `{first_hop}`{which} took longer than {}ms",
                    timeout.as_millis()
                ),
            ));
            return d.skip_rest(
                &[Step::Connect, Step::Tls, Step::Export],
                "no address to connect to",
            );
        }
    };
    d.checks.push(Check::new(
        Step::Resolve,
        Outcome::Pass,
        format!(
            "`{first_hop}`{which} resolves to {}",
            addrs
                .iter()
                .map(|a| a.ip().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ));

    let mut stream = None;
    let mut last_error = String::new();
    for addr in &addrs {
        match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                stream = Some((s, *addr));
                break;
            }
            Ok(Err(e)) => last_error = format!("{addr}: {e}"),
            Err(_) => last_error = format!("{addr}: no answer within {}ms", timeout.as_millis()),
        }
    }
    let Some((stream, addr)) = stream else {
        let hint = match &proxy {
            Some(proxy) => format!("is the proxy {} right?", proxy.shown()),
            None => "is the collector or receiver running, and the port right?".to_owned(),
        };
        d.checks.push(Check::new(
            Step::Connect,
            Outcome::Fail,
            format!("cannot connect to port {first_port}{which} ({last_error}); {hint}"),
        ));
        return d.skip_rest(&[Step::Tls, Step::Export], "no connection");
    };
    let stream = match &proxy {
        None => stream,
        Some(proxy) => match open_tunnel(stream, &authority, proxy, timeout).await {
            Ok(stream) => stream,
            Err(detail) => {
                d.checks
                    .push(Check::new(Step::Connect, Outcome::Fail, detail));
                return d.skip_rest(&[Step::Tls, Step::Export], "no tunnel");
            }
        },
    };
    d.checks.push(Check::new(
        Step::Connect,
        Outcome::Pass,
        match &proxy {
            Some(proxy) => format!(
                "TCP connects to {addr}, the proxy {}, which opens a tunnel to {authority}",
                proxy.shown()
            ),
            None => format!("TCP connects to {addr}"),
        },
    ));

    // One TLS configuration for every check, as the pipeline has one.
    let tls = if endpoint.is_tls() {
        match transport::tls::client_config(config) {
            Ok(tls) => Some(tls),
            Err(e) => {
                d.checks
                    .push(Check::new(Step::Tls, Outcome::Fail, e.to_string()));
                return d.skip_rest(&[Step::Export], "no TLS configuration");
            }
        }
    } else {
        None
    };
    if let Some(tls) = &tls {
        match tls_handshake(config, tls.clone(), stream, &host, timeout).await {
            Ok(detail) => d.checks.push(Check::new(Step::Tls, Outcome::Pass, detail)),
            Err(detail) => {
                d.checks.push(Check::new(Step::Tls, Outcome::Fail, detail));
                return d.skip_rest(&[Step::Export], "no trusted TLS connection");
            }
        }
    } else {
        drop(stream);
        let why = if endpoint.is_loopback() {
            "plaintext to loopback (the endpoint is http://)"
        } else {
            "plaintext, explicitly allowed (http:// endpoint or insecure=true)"
        };
        d.checks.push(Check::new(Step::Tls, Outcome::Pass, why));
    }

    let export = if config.protocol().is_http() {
        empty_http_export(config, tls).await
    } else {
        let probe = Probe {
            addr,
            proxy: proxy.as_ref(),
            authority: &authority,
            host: &host,
        };
        empty_grpc_export(config, tls, &probe).await
    };
    d.checks.push(match export {
        Ok(detail) => Check::new(Step::Export, Outcome::Pass, detail),
        Err(detail) => Check::new(Step::Export, Outcome::Fail, detail),
    });
    d
}

async fn tls_handshake(
    config: &LightstepConfig,
    tls: rustls::ClientConfig,
    stream: tokio::net::TcpStream,
    host: &str,
    timeout: Duration,
) -> Result<String, String> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|_| format!("`{host}` is not a valid TLS server name"))?;
    match tokio::time::timeout(timeout, connector.connect(name, stream)).await {
        Ok(Ok(_)) => Ok(format!(
            "handshake done; the certificate for `{host}` verifies{}",
            if config.tls().ca_file.is_some() {
                " (system roots plus the configured CA)"
            } else {
                " (system roots)"
            }
        )),
        Ok(Err(e)) => Err(format!(
            "TLS handshake with `{host}` failed: {e}{}",
            if e.to_string().contains("UnknownIssuer") {
                "; set OTEL_EXPORTER_OTLP_CERTIFICATE to the CA that signed the server's certificate"
            } else if answered_without_tls(&e) {
                " (is the server speaking plaintext? then the endpoint wants http://)"
            } else {
                ""
            }
        )),
        Err(_) => Err(format!(
            "no TLS answer within {}ms (is the server speaking plaintext?)",
            timeout.as_millis()
        )),
    }
}

/// Whether the peer answered the client hello with bytes that are not a TLS record (rustls'
/// `InvalidContentType`): a plaintext server, typically an HTTP one answering `400`.
fn answered_without_tls(e: &std::io::Error) -> bool {
    matches!(
        e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()),
        Some(rustls::Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType
        ))
    )
}

fn token_hint(config: &LightstepConfig) -> &'static str {
    if config.access_token().is_some() {
        "the backend rejected the access token"
    } else {
        "the backend wants an access token and none is set (LIGHTSTEP_ACCESS_TOKEN or LS_ACCESS_TOKEN)"
    }
}

/// A TCP connection to the endpoint through the proxy's tunnel, within `timeout`.
async fn open_tunnel(
    stream: tokio::net::TcpStream,
    authority: &Arc<str>,
    proxy: &transport::Proxy,
    timeout: Duration,
) -> Result<tokio::net::TcpStream, String> {
    match tokio::time::timeout(timeout, transport::tunnel(stream, authority, proxy)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(transport::error_chain(&e)),
        Err(_) => Err(format!(
            "the proxy {} did not answer the tunnel request within {}ms",
            proxy.shown(),
            timeout.as_millis()
        )),
    }
}

/// Where the probe for an HTTP/1-only server connects: the address the connect step reached,
/// through the proxy's tunnel when there is one.
struct Probe<'a> {
    addr: SocketAddr,
    proxy: Option<&'a transport::Proxy>,
    authority: &'a Arc<str>,
    host: &'a str,
}

async fn empty_grpc_export(
    config: &LightstepConfig,
    tls: Option<rustls::ClientConfig>,
    probe: &Probe<'_>,
) -> Result<String, String> {
    let redactor = transport::Redactor::new(config);
    let prepared = transport::GrpcPrepared::new(config, tls.clone(), redactor.clone())
        .map_err(|e| e.to_string())?;
    let metadata = prepared.metadata().clone();
    let channel = match prepared.connect().await {
        Ok(channel) => channel,
        Err(e) if timed_out(&e) => {
            return Err(format!(
                "no answer within {}ms while opening the gRPC connection to {}",
                config.timeout().as_millis(),
                authority(config)
            ));
        }
        Err(_) if answers_http1(config, tls, probe).await => return Err(not_grpc(config)),
        Err(e) => {
            return Err(format!(
                "gRPC connection failed: {}",
                redactor.clean(&transport::error_chain(&e))
            ));
        }
    };
    let mut request = tonic::Request::new(ExportTraceServiceRequest::default());
    *request.metadata_mut() = metadata;
    let status = match TraceServiceClient::new(channel).export(request).await {
        Ok(_) => return Ok("an empty OTLP/gRPC export was accepted".into()),
        Err(status) => status,
    };
    // A status the server sent has no source; one tonic made from a local error has.
    let from_server = std::error::Error::source(&status).is_none();
    // The backend's message is its own text: it may echo a header (the token) or hold control
    // characters, so it goes through the same cleaning as the transport's errors.
    let message = redactor.clean(status.message());
    Err(match status.code() {
        tonic::Code::Unauthenticated | tonic::Code::PermissionDenied if from_server => {
            format!("{} (gRPC {:?})", token_hint(config), status.code())
        }
        // tonic reports its own deadline as `Cancelled`: nothing refused the export.
        _ if timed_out(&status) => no_answer(config),
        code if from_server => format!("the export was refused: gRPC {code:?}: {message}"),
        _ if answers_http1(config, tls, probe).await => not_grpc(config),
        code => format!(
            "the gRPC exchange with {} broke off without an answer: gRPC {code:?}: {message}",
            authority(config),
        ),
    })
}

/// What a client sends first on an HTTP/2 connection: the preface and an empty SETTINGS frame.
const H2_OPENING: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";

/// Whether the server at `addr` answers the opening of an HTTP/2 connection in HTTP/1.x, which
/// means it does not speak HTTP/2, so not gRPC either. On a new connection, after the export
/// failed: what the server sends back names the problem better than the HTTP/2 error it caused.
/// `false` when it cannot tell.
async fn answers_http1(
    config: &LightstepConfig,
    tls: Option<rustls::ClientConfig>,
    probe: &Probe<'_>,
) -> bool {
    let Probe {
        addr,
        proxy,
        authority,
        host,
    } = *probe;
    let probe = async {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
        if let Some(proxy) = proxy {
            tcp = open_tunnel(tcp, authority, proxy, config.timeout())
                .await
                .ok()?;
        }
        let Some(tls) = tls else {
            return http1_answer(&mut tcp).await;
        };
        let tls = transport::tls::with_alpn(tls, &[b"h2", b"http/1.1"]);
        let name = rustls::pki_types::ServerName::try_from(host.to_owned()).ok()?;
        let mut stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .ok()?;
        match stream.get_ref().1.alpn_protocol() {
            Some(b"h2") => Some(false),
            Some(b"http/1.1") => Some(true),
            _ => http1_answer(&mut stream).await,
        }
    };
    matches!(
        tokio::time::timeout(config.timeout(), probe).await,
        Ok(Some(true))
    )
}

/// Sends the HTTP/2 opening and reads whether the answer starts like an HTTP/1.x response.
async fn http1_answer<S>(stream: &mut S) -> Option<bool>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    stream.write_all(H2_OPENING).await.ok()?;
    stream.flush().await.ok()?;
    let mut answer = [0u8; 8];
    let mut got = 0;
    while got < answer.len() {
        match stream.read(&mut answer[got..]).await.ok()? {
            0 => break,
            n => got += n,
        }
    }
    Some(answer[..got].starts_with(b"HTTP/1."))
}

fn not_grpc(config: &LightstepConfig) -> String {
    format!(
        "{} does not speak gRPC (HTTP/2): it answered in HTTP/1.1; is this the OTLP/HTTP port \
         (4318)? set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf, or use the gRPC port (4317)",
        authority(config)
    )
}

async fn empty_http_export(
    config: &LightstepConfig,
    tls: Option<rustls::ClientConfig>,
) -> Result<String, String> {
    let redactor = transport::Redactor::new(config);
    let wire =
        transport::HttpWire::new(config, tls, redactor.clone(), 1).map_err(|e| e.to_string())?;
    let body = if config.protocol() == lightstep_config::Protocol::HttpJson {
        bytes::Bytes::from_static(b"{}")
    } else {
        ExportTraceServiceRequest::default().encode_to_vec().into()
    };
    let status = match tokio::time::timeout(config.timeout(), wire.send(body)).await {
        Ok(Ok(response)) => response.status(),
        Ok(Err(e)) => {
            return Err(format!(
                "the HTTP request failed: {}",
                redactor.clean(&transport::error_chain(&e))
            ));
        }
        Err(_) => return Err(no_answer(config)),
    };
    match status.as_u16() {
        200..=299 => Ok(format!("an empty OTLP/HTTP export was accepted ({status})")),
        401 | 403 => Err(format!("{} (HTTP {status})", token_hint(config))),
        404 => Err(not_found(config, status)),
        _ => Err(format!("the export was refused: HTTP {status}")),
    }
}

/// The path an OpenTelemetry collector serves OTLP/HTTP traces at.
const OTLP_HTTP_PATH: &str = "/v1/traces";

/// `host:port` of the endpoint, as configured: where the user looks.
fn authority(config: &LightstepConfig) -> String {
    let endpoint = config.traces_endpoint();
    format!("{}:{}", endpoint.host(), endpoint.port())
}

/// Whether the configured timeout expired somewhere in the chain: tonic's request deadline, or an
/// I/O timeout under it.
fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.is::<tonic::TimeoutExpired>()
            || e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        next = e.source();
    }
    false
}

fn no_answer(config: &LightstepConfig) -> String {
    format!(
        "no answer within {}ms: {} accepted the connection but did not answer the export",
        config.timeout().as_millis(),
        authority(config)
    )
}

fn not_found(config: &LightstepConfig, status: http::StatusCode) -> String {
    let path = config.traces_endpoint().url().path();
    // Lightstep's own ingest serves its own path, which the configuration chose.
    if path == OTLP_HTTP_PATH || config.traces_endpoint().lightstep_region().is_some() {
        // The path is right, so what answers is not an OTLP/HTTP receiver.
        format!(
            "HTTP {status} for `{path}`: {} answers HTTP but does not serve OTLP/HTTP there \
             (a wrong port, or a proxy in front of the collector?)",
            authority(config)
        )
    } else {
        format!("HTTP {status}: the path `{path}` is wrong; OTLP/HTTP wants `{OTLP_HTTP_PATH}`")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lightstep_config::{EnvSnapshot, Protocol};

    fn http_config(endpoint: Option<&str>) -> LightstepConfig {
        let mut builder = LightstepConfig::builder()
            .with_env(EnvSnapshot::empty())
            .with_protocol(Protocol::HttpProtobuf)
            .with_access_token("t");
        if let Some(endpoint) = endpoint {
            builder = builder.with_traces_endpoint(endpoint);
        }
        builder.build().expect("config")
    }

    #[test]
    fn a_404_blames_the_path_only_when_it_is_not_the_one_the_backend_serves() {
        let not_found = |config: &LightstepConfig| not_found(config, http::StatusCode::NOT_FOUND);
        // Lightstep's ingest, at the path the configuration chose for it: not a path problem.
        let lightstep = http_config(None);
        assert_eq!(
            lightstep.traces_endpoint().url().path(),
            "/traces/otlp/v0.9"
        );
        let message = not_found(&lightstep);
        assert!(
            message.contains("does not serve OTLP/HTTP there"),
            "{message}"
        );
        assert!(!message.contains("is wrong"), "{message}");
        // A collector's standard path: neither.
        let message = not_found(&http_config(Some("https://collector:4318/v1/traces")));
        assert!(
            message.contains("does not serve OTLP/HTTP there"),
            "{message}"
        );
        // Any other path on another host: the path.
        let message = not_found(&http_config(Some("https://collector:4318/v1/trace")));
        assert!(
            message.contains("the path `/v1/trace` is wrong; OTLP/HTTP wants `/v1/traces`"),
            "{message}"
        );
    }
}
