//! The typed settings that make up a [`crate::LightstepConfig`].

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::secret::SecretString;

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Protocol {
    /// OTLP over gRPC (`grpc`), the default.
    #[default]
    Grpc,
    /// OTLP over HTTP with protobuf bodies (`http/protobuf`).
    HttpProtobuf,
    /// OTLP over HTTP with JSON bodies (`http/json`).
    HttpJson,
}

impl Protocol {
    /// The name used by `OTEL_EXPORTER_OTLP_PROTOCOL`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::HttpProtobuf => "http/protobuf",
            Self::HttpJson => "http/json",
        }
    }

    /// Whether this is one of the HTTP protocols.
    pub fn is_http(self) -> bool {
        !matches!(self, Self::Grpc)
    }
}

/// Compression of export requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compression {
    /// No compression, the OpenTelemetry default.
    #[default]
    None,
    /// gzip.
    Gzip,
}

impl Compression {
    /// The name used by `OTEL_EXPORTER_OTLP_COMPRESSION`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
        }
    }
}

/// Which spans are recorded and exported.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub enum Sampler {
    /// Every span.
    AlwaysOn,
    /// No span.
    AlwaysOff,
    /// A fraction of traces, chosen by trace id.
    TraceIdRatio(f64),
    /// Follow the parent's decision; sample every root (the default).
    #[default]
    ParentBasedAlwaysOn,
    /// Follow the parent's decision; sample no root.
    ParentBasedAlwaysOff,
    /// Follow the parent's decision; sample a fraction of roots.
    ParentBasedTraceIdRatio(f64),
}

impl Sampler {
    /// The name used by `OTEL_TRACES_SAMPLER`.
    pub fn name(self) -> &'static str {
        match self {
            Self::AlwaysOn => "always_on",
            Self::AlwaysOff => "always_off",
            Self::TraceIdRatio(_) => "traceidratio",
            Self::ParentBasedAlwaysOn => "parentbased_always_on",
            Self::ParentBasedAlwaysOff => "parentbased_always_off",
            Self::ParentBasedTraceIdRatio(_) => "parentbased_traceidratio",
        }
    }

    /// The ratio of the ratio-based samplers.
    pub fn ratio(self) -> Option<f64> {
        match self {
            Self::TraceIdRatio(r) | Self::ParentBasedTraceIdRatio(r) => Some(r),
            _ => None,
        }
    }
}

impl fmt::Display for Sampler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ratio() {
            Some(r) => write!(f, "{} ({r})", self.name()),
            None => f.write_str(self.name()),
        }
    }
}

/// A context propagation format (`OTEL_PROPAGATORS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Propagator {
    /// W3C Trace Context (`tracecontext`).
    TraceContext,
    /// W3C Baggage (`baggage`).
    Baggage,
    /// Zipkin B3, single header (`b3`).
    B3,
    /// Zipkin B3, one header per field (`b3multi`).
    B3Multi,
    /// Jaeger's `uber-trace-id` (`jaeger`).
    Jaeger,
    /// AWS X-Ray's `x-amzn-trace-id` (`xray`).
    Xray,
    /// OpenTracing's `ot-tracer-*` headers, used by Lightstep's older tracers (`ottrace`).
    OtTrace,
}

impl Propagator {
    /// The name used by `OTEL_PROPAGATORS`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TraceContext => "tracecontext",
            Self::Baggage => "baggage",
            Self::B3 => "b3",
            Self::B3Multi => "b3multi",
            Self::Jaeger => "jaeger",
            Self::Xray => "xray",
            Self::OtTrace => "ottrace",
        }
    }
}

/// Where spans go (`OTEL_TRACES_EXPORTER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TracesExporter {
    /// OTLP, the default.
    #[default]
    Otlp,
    /// Nowhere: spans are created (and propagate context) but are not exported.
    None,
}

impl TracesExporter {
    /// The name used by `OTEL_TRACES_EXPORTER`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Otlp => "otlp",
            Self::None => "none",
        }
    }
}

/// A Lightstep (ServiceNow Cloud Observability) ingest region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Region {
    /// `ingest.lightstep.com`, the default.
    #[default]
    Us,
    /// `ingest.eu.lightstep.com`.
    Eu,
}

impl Region {
    /// The name used by `LIGHTSTEP_REGION`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Us => "us",
            Self::Eu => "eu",
        }
    }

    /// The public ingest host.
    pub fn host(self) -> &'static str {
        match self {
            Self::Us => "ingest.lightstep.com",
            Self::Eu => "ingest.eu.lightstep.com",
        }
    }

    /// The region whose public ingest host this is.
    pub fn from_host(host: &str) -> Option<Self> {
        let host = host.trim_end_matches('.');
        [Self::Us, Self::Eu]
            .into_iter()
            .find(|r| host.eq_ignore_ascii_case(r.host()))
    }

    /// The traces endpoint of this region for a protocol.
    pub fn traces_endpoint(self, protocol: Protocol) -> Endpoint {
        let url = if protocol.is_http() {
            format!("https://{}/traces/otlp/v0.9", self.host())
        } else {
            format!("https://{}:443", self.host())
        };
        Endpoint::from_url(Url::parse(&url).expect("static URL is valid"))
    }
}

/// The URL that traces are sent to. For gRPC only its scheme, host and port matter; for HTTP it
/// is the full path (for example `https://collector:4318/v1/traces`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    url: Url,
}

impl Endpoint {
    pub(crate) fn from_url(url: Url) -> Self {
        Self { url }
    }

    /// The full URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The URL as a string. For gRPC, the path is dropped, as tonic expects.
    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    /// The host name or address.
    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default()
    }

    /// The port, explicit or the scheme's default.
    pub fn port(&self) -> u16 {
        self.url.port_or_known_default().unwrap_or(443)
    }

    /// Whether TLS protects the connection (`https`).
    pub fn is_tls(&self) -> bool {
        self.url.scheme() == "https"
    }

    /// Whether the host is this machine: a literal loopback address (`127.0.0.0/8`, `::1`) or
    /// exactly `localhost`. Other names, `*.localhost` included, go through a resolver that
    /// may send them anywhere, so they do not count.
    pub fn is_loopback(&self) -> bool {
        match self.url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
            None => false,
        }
    }

    /// The Lightstep region when this is Lightstep's public ingest.
    pub fn lightstep_region(&self) -> Option<Region> {
        Region::from_host(self.host())
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.url.as_str())
    }
}

/// Parses an endpoint as a user writes it: a URL with the scheme `http` or `https`
/// (`http://localhost:16686`, `https://tempo.example.com/base`), or `host:port`, which means
/// `https`. User information (`https://user:password@host`) is refused: credentials travel as
/// headers. The error says what was expected and never repeats the text, which may hold them.
///
/// ```
/// use lightstep_config::Endpoint;
///
/// let endpoint: Endpoint = "http://localhost:16686".parse()?;
/// assert!(endpoint.is_loopback() && !endpoint.is_tls());
/// assert!("https://user:secret@example.com".parse::<Endpoint>().is_err());
/// # Ok::<(), String>(())
/// ```
impl std::str::FromStr for Endpoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::parse::endpoint(s, false).map(|(url, _)| Self::from_url(url))
    }
}

/// TLS settings for the export connection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TlsConfig {
    /// A PEM file of CA certificates trusted in addition to the system's roots.
    pub ca_file: Option<PathBuf>,
    /// A PEM client certificate for mutual TLS.
    pub client_certificate: Option<PathBuf>,
    /// The PEM private key of the client certificate.
    pub client_key: Option<PathBuf>,
    /// Plaintext for schemeless endpoints, and permission to send the token and the headers in
    /// plaintext to a host that is not loopback.
    pub insecure: bool,
    /// The files' contents, read once (at most 1 MiB each) when the configuration was built.
    pub(crate) pem: TlsPem,
}

impl TlsConfig {
    /// The contents of [`TlsConfig::ca_file`], as read when the configuration was built.
    pub fn ca_pem(&self) -> Option<&[u8]> {
        self.pem.ca.as_deref()
    }

    /// The contents of [`TlsConfig::client_certificate`], as read when the configuration was
    /// built.
    pub fn client_certificate_pem(&self) -> Option<&[u8]> {
        self.pem.client_certificate.as_deref()
    }

    /// The contents of [`TlsConfig::client_key`], as read when the configuration was built: a
    /// secret, shown by nothing.
    pub fn client_key_pem(&self) -> Option<&SecretString> {
        self.pem.client_key.as_ref()
    }
}

/// What the TLS files held. `Debug` shows sizes only: the key is a secret, and a bundle of CA
/// certificates would bury everything else in a `Debug` print.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct TlsPem {
    pub(crate) ca: Option<Arc<[u8]>>,
    pub(crate) client_certificate: Option<Arc<[u8]>>,
    pub(crate) client_key: Option<SecretString>,
}

impl fmt::Debug for TlsPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let size = |bytes: Option<usize>| bytes.map_or("none".to_owned(), |n| format!("{n} bytes"));
        f.debug_struct("TlsPem")
            .field(
                "ca",
                &format_args!("{}", size(self.ca.as_ref().map(|c| c.len()))),
            )
            .field(
                "client_certificate",
                &format_args!(
                    "{}",
                    size(self.client_certificate.as_ref().map(|c| c.len()))
                ),
            )
            .field("client_key", &self.client_key)
            .finish()
    }
}

/// The HTTP proxy that exports go through: an HTTP CONNECT tunnel to the endpoint, inside which
/// TLS to the endpoint is kept. From `with_proxy`, `HTTPS_PROXY` (`https://` endpoints) or
/// `HTTP_PROXY` (`http://` endpoints), or the file's `proxy`.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyConfig {
    pub(crate) url: SecretString,
    pub(crate) no_proxy: Option<String>,
}

impl ProxyConfig {
    /// The proxy's URL, `http://[user:password@]host[:port]`: its user information, if any, is
    /// the proxy's credentials, hence a secret.
    pub fn url(&self) -> &SecretString {
        &self.url
    }

    /// The hosts reached without the proxy (`NO_PROXY`): comma-separated names (each with its
    /// subdomains), IP addresses, networks (`10.0.0.0/8`) or `*`.
    pub fn no_proxy(&self) -> Option<&str> {
        self.no_proxy.as_deref()
    }

    /// The URL with its user information replaced by `[REDACTED]`, fit to show.
    pub fn redacted_url(&self) -> String {
        crate::parse::redact_userinfo(self.url.expose_secret()).into_owned()
    }
}

impl fmt::Debug for ProxyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyConfig")
            .field("url", &self.redacted_url())
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

/// Batch span processor settings (`OTEL_BSP_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchConfig {
    /// Spans held before new ones are dropped.
    pub max_queue_size: usize,
    /// Spans in one export request.
    pub max_export_batch_size: usize,
    /// The longest a span waits before its batch is sent.
    pub scheduled_delay: Duration,
    /// The longest one export may take (bounded by the exporter timeout too).
    pub export_timeout: Duration,
    /// Export requests in flight at once.
    pub max_concurrent_exports: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_queue_size: 2048,
            max_export_batch_size: 512,
            scheduled_delay: Duration::from_millis(5000),
            export_timeout: Duration::from_millis(30000),
            max_concurrent_exports: 1,
        }
    }
}

/// Span and attribute limits (`OTEL_SPAN_*_LIMIT`, `OTEL_ATTRIBUTE_*_LIMIT`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpanLimits {
    /// Attributes on one span.
    pub attribute_count: u32,
    /// The longest attribute value kept; longer strings are truncated. `None`: no limit.
    pub attribute_value_length: Option<u32>,
    /// Events on one span.
    pub event_count: u32,
    /// Links on one span.
    pub link_count: u32,
    /// Attributes on one event.
    pub event_attribute_count: u32,
    /// Attributes on one link.
    pub link_attribute_count: u32,
}

impl Default for SpanLimits {
    fn default() -> Self {
        Self {
            attribute_count: 128,
            attribute_value_length: None,
            event_count: 128,
            link_count: 128,
            event_attribute_count: 128,
            link_attribute_count: 128,
        }
    }
}

/// One extra header sent with every export request. Its value may carry credentials and is
/// treated as a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The header's name, lowercase.
    pub name: String,
    /// The header's value.
    pub value: SecretString,
}
