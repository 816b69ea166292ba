//! The two transports, gRPC (tonic) and HTTP (protobuf or JSON), built from the configuration
//! alone: the request headers are exactly the configuration's, whatever the environment says.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::Receiver;
use lightstep_config::{Compression, LightstepConfig, Protocol};
use opentelemetry_http::{HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter as _};
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use crate::error::ExporterError;
use crate::processor::Transport;

/// The header Lightstep reads the token from.
pub const ACCESS_TOKEN_HEADER: &str = "lightstep-access-token";

/// Every header to send: the extra headers, then the token (marked sensitive).
pub(crate) fn header_list(config: &LightstepConfig) -> Vec<(String, String, bool)> {
    let mut headers: Vec<(String, String, bool)> = config
        .headers()
        .iter()
        .map(|h| (h.name.clone(), h.value.expose_secret().to_owned(), true))
        .collect();
    if let Some(token) = config.access_token() {
        headers.push((
            ACCESS_TOKEN_HEADER.into(),
            token.expose_secret().to_owned(),
            true,
        ));
    }
    headers
}

fn read(path: &std::path::Path, what: &'static str) -> Result<Vec<u8>, ExporterError> {
    std::fs::read(path).map_err(|error| ExporterError::TlsFile {
        what,
        path: path.into(),
        error,
    })
}

/// The tonic endpoint for the configuration: scheme, host and port, the timeouts, and TLS with
/// the system's roots plus the configured CA and client identity.
pub(crate) fn grpc_endpoint(
    config: &LightstepConfig,
) -> Result<tonic::transport::Endpoint, ExporterError> {
    let endpoint = config.traces_endpoint();
    let uri = format!(
        "{}://{}:{}",
        endpoint.url().scheme(),
        endpoint.url().host_str().unwrap_or_default(),
        endpoint.port()
    );
    let mut channel = tonic::transport::Endpoint::from_shared(uri)
        .map_err(|e| ExporterError::Build(format!("invalid gRPC endpoint: {e}")))?
        .timeout(config.timeout())
        .connect_timeout(config.timeout());
    if endpoint.is_tls() {
        let mut tls = ClientTlsConfig::new().with_native_roots();
        if let Some(ca) = &config.tls().ca_file {
            tls = tls.ca_certificate(Certificate::from_pem(read(ca, "CA certificate")?));
        }
        if let (Some(cert), Some(key)) =
            (&config.tls().client_certificate, &config.tls().client_key)
        {
            tls = tls.identity(Identity::from_pem(
                read(cert, "client certificate")?,
                read(key, "client key")?,
            ));
        }
        channel = channel
            .tls_config(tls)
            .map_err(|e| ExporterError::Build(format!("TLS configuration rejected: {e}")))?;
    }
    Ok(channel)
}

/// Exports on a small Tokio runtime of its own, so that neither the application's runtime
/// flavour nor a blocked application thread can stall an export.
pub(crate) struct GrpcTransport {
    runtime: tokio::runtime::Runtime,
    exporter: Arc<opentelemetry_otlp::SpanExporter>,
    export_timeout: Duration,
}

impl GrpcTransport {
    pub(crate) fn new(
        config: &LightstepConfig,
        resource: &opentelemetry_sdk::Resource,
        export_timeout: Duration,
    ) -> Result<Self, ExporterError> {
        let channel = grpc_endpoint(config)?;
        let mut metadata = MetadataMap::new();
        for (name, value, sensitive) in header_list(config) {
            let key = AsciiMetadataKey::from_bytes(name.as_bytes()).map_err(|_| {
                ExporterError::Build(format!("header name `{name}` is not valid gRPC metadata"))
            })?;
            let mut value = AsciiMetadataValue::try_from(value.as_str()).map_err(|_| {
                ExporterError::Build(format!(
                    "the value of header `{name}` is not valid gRPC metadata"
                ))
            })?;
            value.set_sensitive(sensitive);
            metadata.insert(key, value);
        }
        let metadata = Arc::new(metadata);
        // opentelemetry-otlp appends `OTEL_EXPORTER_OTLP_*HEADERS` from the process environment
        // before calling this interceptor; replacing them here makes the configuration, where
        // code beats the environment, the only word on what is sent.
        let interceptor = move |mut req: tonic::Request<()>| {
            for kv in metadata.iter() {
                if let tonic::metadata::KeyAndValueRef::Ascii(k, v) = kv {
                    req.metadata_mut().insert(k.clone(), v.clone());
                }
            }
            Ok(req)
        };
        // Built last: a runtime dropped on an error path inside the caller's async context
        // would panic, and everything fallible above needs no runtime.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("lightstep-export-io")
            .enable_all()
            .build()
            .map_err(ExporterError::Runtime)?;
        let exporter = {
            let _guard = runtime.enter();
            let channel = channel.connect_lazy();
            let mut builder = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_channel(channel)
                .with_interceptor(interceptor)
                .with_timeout(config.timeout());
            if config.compression() == Compression::Gzip {
                builder = builder.with_compression(opentelemetry_otlp::Compression::Gzip);
            }
            builder.build()
        };
        let mut exporter = match exporter {
            Ok(exporter) => exporter,
            Err(e) => {
                runtime.shutdown_background();
                return Err(ExporterError::Build(e.to_string()));
            }
        };
        exporter.set_resource(resource);
        Ok(Self {
            runtime,
            exporter: Arc::new(exporter),
            export_timeout,
        })
    }
}

impl Transport for GrpcTransport {
    fn start(&mut self, batch: Vec<SpanData>) -> Receiver<OTelSdkResult> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let exporter = Arc::clone(&self.exporter);
        let timeout = self.export_timeout;
        self.runtime.spawn(async move {
            let result = match tokio::time::timeout(timeout, exporter.export(batch)).await {
                Ok(result) => result,
                Err(_) => Err(OTelSdkError::Timeout(timeout)),
            };
            let _ = tx.send(result);
        });
        rx
    }

    fn close(self: Box<Self>) {
        let Self {
            runtime, exporter, ..
        } = *self;
        drop(exporter);
        runtime.shutdown_timeout(Duration::from_millis(200));
    }
}

/// HTTP exports run the blocking reqwest client on a thread of their own each, never on an
/// async worker (where the blocking client panics).
pub(crate) struct HttpTransport {
    exporter: Arc<opentelemetry_otlp::SpanExporter>,
}

impl HttpTransport {
    pub(crate) fn new(
        config: &LightstepConfig,
        resource: &opentelemetry_sdk::Resource,
    ) -> Result<Self, ExporterError> {
        let client = build_blocking_client(config)?;
        let mut headers = http::HeaderMap::new();
        for (name, value, sensitive) in header_list(config) {
            let name = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| ExporterError::Build(format!("header name `{name}` is not valid")))?;
            let mut value = http::HeaderValue::from_str(&value).map_err(|_| {
                ExporterError::Build(format!("the value of header `{name}` is not valid"))
            })?;
            value.set_sensitive(sensitive);
            headers.insert(name, value);
        }
        let protocol = match config.protocol() {
            Protocol::HttpJson => opentelemetry_otlp::Protocol::HttpJson,
            _ => opentelemetry_otlp::Protocol::HttpBinary,
        };
        let mut builder = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(ConfiguredHeaders { client, headers })
            .with_endpoint(config.traces_endpoint().as_str())
            .with_protocol(protocol)
            .with_timeout(config.timeout());
        if config.compression() == Compression::Gzip {
            builder = builder.with_compression(opentelemetry_otlp::Compression::Gzip);
        }
        let mut exporter = builder
            .build()
            .map_err(|e| ExporterError::Build(e.to_string()))?;
        exporter.set_resource(resource);
        Ok(Self {
            exporter: Arc::new(exporter),
        })
    }
}

impl Transport for HttpTransport {
    fn start(&mut self, batch: Vec<SpanData>) -> Receiver<OTelSdkResult> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let exporter = Arc::clone(&self.exporter);
        let spawned = std::thread::Builder::new()
            .name("lightstep-export-http".into())
            .spawn(move || {
                let result = futures_executor::block_on(exporter.export(batch));
                let _ = tx.send(result);
            });
        if let Err(e) = spawned {
            let (tx, rx) = crossbeam_channel::bounded(1);
            let _ = tx.send(Err(OTelSdkError::InternalFailure(format!(
                "cannot start an export thread: {e}"
            ))));
            return rx;
        }
        rx
    }

    fn close(self: Box<Self>) {}
}

/// The reqwest blocking client with rustls (ring), the system's roots, the configured CA and
/// client identity. Built on a thread of its own: reqwest's blocking client may not be created
/// inside an async context.
pub(crate) fn build_blocking_client(
    config: &LightstepConfig,
) -> Result<reqwest::blocking::Client, ExporterError> {
    let tls = rustls_config(config)?;
    let timeout = config.timeout();
    std::thread::spawn(move || {
        reqwest::blocking::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(timeout)
            // OTLP has no redirects, and following one would carry the token to another host
            // (reqwest keeps custom headers across hosts). A proxy from `HTTP_PROXY` would see
            // a plaintext token that the configuration only allowed to reach loopback.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|e| ExporterError::Build(format!("cannot build the HTTP client: {e}")))
    })
    .join()
    .map_err(|_| ExporterError::Build("the HTTP client builder panicked".into()))?
}

pub(crate) fn rustls_config(
    config: &LightstepConfig,
) -> Result<rustls::ClientConfig, ExporterError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(ca) = &config.tls().ca_file {
        let pem = read(ca, "CA certificate")?;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|_| {
                ExporterError::Build(format!("`{}` holds a malformed certificate", ca.display()))
            })?;
            roots
                .add(cert)
                .map_err(|e| ExporterError::Build(format!("`{}`: {e}", ca.display())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ExporterError::Build(e.to_string()))?
        .with_root_certificates(roots);
    let tls = match (&config.tls().client_certificate, &config.tls().client_key) {
        (Some(cert), Some(key)) => {
            let certs = CertificateDer::pem_slice_iter(&read(cert, "client certificate")?)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| {
                    ExporterError::Build(format!(
                        "`{}` holds a malformed certificate",
                        cert.display()
                    ))
                })?;
            let key = PrivateKeyDer::from_pem_slice(&read(key, "client key")?).map_err(|_| {
                ExporterError::Build(format!("`{}` holds no usable private key", key.display()))
            })?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| ExporterError::Build(format!("client identity rejected: {e}")))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(tls)
}

/// Sets the configured headers on every request, replacing any the exporter took from the
/// process environment.
#[derive(Debug)]
struct ConfiguredHeaders {
    client: reqwest::blocking::Client,
    headers: http::HeaderMap,
}

#[async_trait::async_trait]
impl HttpClient for ConfiguredHeaders {
    async fn send_bytes(&self, mut request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        for (name, value) in &self.headers {
            request.headers_mut().insert(name.clone(), value.clone());
        }
        self.client.send_bytes(request).await
    }
}
