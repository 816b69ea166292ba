//! OTLP/gRPC: tonic's client on the pipeline's connector, with a pass-through codec (the
//! request is already encoded) and the configuration's headers as metadata.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{BufMut as _, Bytes};
use http::uri::PathAndQuery;
use lightstep_config::{Compression, LightstepConfig};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message as _;
use tonic::client::Grpc;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};
use tonic::transport::{Channel, Endpoint};

use super::{Connector, Redactor, USER_AGENT, delivered, error_chain, header_list};
use crate::error::ExporterError;
use crate::processor::Delivered;
use crate::retry::{self, Failed};

/// The OTLP/gRPC method.
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Everything a gRPC wire needs before the runtime exists.
pub(crate) struct Prepared {
    endpoint: Endpoint,
    connector: Connector,
    metadata: MetadataMap,
    gzip: bool,
    redactor: Redactor,
}

impl Prepared {
    /// The endpoint and connector for `config`, with `tls` as the TLS configuration (built from
    /// the configuration when `None`).
    pub(crate) fn new(
        config: &LightstepConfig,
        tls: Option<rustls::ClientConfig>,
        redactor: Redactor,
    ) -> Result<Self, ExporterError> {
        let connector = super::connector(config, tls, &[b"h2"])?;
        let endpoint = config.traces_endpoint();
        let authority = connector.authority();
        // The connector makes the connection, TLS included; tonic is given the `http://` form
        // so that its own TLS layer stays out, and the real origin for `:scheme` and
        // `:authority`.
        let origin = format!("{}://{authority}", endpoint.url().scheme());
        let origin = origin
            .parse()
            .map_err(|e| ExporterError::Build(format!("invalid gRPC endpoint `{origin}`: {e}")))?;
        let endpoint = Endpoint::from_shared(format!("http://{authority}"))
            .map_err(|e| ExporterError::Build(format!("invalid gRPC endpoint: {e}")))?
            .origin(origin)
            .timeout(config.timeout())
            .connect_timeout(config.timeout())
            .user_agent(USER_AGENT)
            .map_err(|e| ExporterError::Build(format!("invalid user agent: {e}")))?;
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
        Ok(Self {
            endpoint,
            connector,
            metadata,
            gzip: config.compression() == Compression::Gzip,
            redactor,
        })
    }

    /// The wire, with `connections` channels (at least one) that connect at their first
    /// export. Must run inside the pipeline's runtime.
    pub(crate) fn connect_lazy(self, connections: usize) -> GrpcWire {
        let clients = (0..connections.max(1))
            .map(|_| {
                let channel = self
                    .endpoint
                    .connect_with_connector_lazy(self.connector.clone());
                let client = Grpc::new(readable(channel));
                if self.gzip {
                    client.send_compressed(CompressionEncoding::Gzip)
                } else {
                    client
                }
            })
            .collect();
        GrpcWire {
            clients,
            next: AtomicUsize::new(0),
            metadata: self.metadata,
            redactor: self.redactor,
        }
    }

    /// A channel connected now, for the doctor, which reports why a connection fails.
    pub(crate) async fn connect(self) -> Result<Readable, tonic::transport::Error> {
        let channel = self.endpoint.connect_with_connector(self.connector).await?;
        Ok(readable(channel))
    }

    /// The metadata every export carries.
    pub(crate) fn metadata(&self) -> &MetadataMap {
        &self.metadata
    }
}

/// Sends OTLP/gRPC exports, each over the next of its channels in turn: one channel (one
/// HTTP/2 connection) per export allowed in flight, so that exports in flight do not share
/// one connection's flow-control window (64 KiB at a backend that keeps the protocol's
/// default), which would cut their data into more, smaller frames and writes (ADR 015).
pub(crate) struct GrpcWire {
    clients: Vec<Grpc<Readable>>,
    next: AtomicUsize,
    metadata: MetadataMap,
    redactor: Redactor,
}

impl GrpcWire {
    /// One attempt; `timeout` is also sent to the backend as the request's deadline.
    pub(crate) async fn attempt(
        &self,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Delivered, Failed> {
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        let mut client = self.clients[turn % self.clients.len()].clone();
        let mut request = tonic::Request::new(payload);
        *request.metadata_mut() = self.metadata.clone();
        request.set_timeout(timeout);
        let answer = match client.ready().await {
            Ok(()) => {
                client
                    .unary(request, PathAndQuery::from_static(EXPORT_PATH), OtlpCodec)
                    .await
            }
            Err(e) => Err(tonic::Status::unavailable(error_chain(&e))),
        };
        match answer {
            Ok(response) => Ok(delivered(response.get_ref(), &self.redactor)),
            Err(status) => Err(Failed {
                retry: retry::grpc(&status),
                reason: failure_reason(status, &self.redactor),
            }),
        }
    }
}

/// A channel whose answers tonic can read without panicking: tonic decodes a status's
/// `grpc-status-details-bin` with an `expect`, so a value that is not base64 (from a faulty
/// backend or proxy) would panic the export's task. Such a value is dropped; the status's code
/// and message stay.
pub(crate) type Readable = tower::util::MapResponse<Channel, fn(GrpcResponse) -> GrpcResponse>;

type GrpcResponse = http::Response<tonic::body::Body>;

const STATUS_DETAILS: &str = "grpc-status-details-bin";

fn readable(channel: Channel) -> Readable {
    tower::util::MapResponse::new(channel, drop_unreadable_details)
}

/// The answer with the status details dropped from its headers (a trailers-only answer) and
/// its trailers where they are not base64 as tonic decodes them.
fn drop_unreadable_details(response: GrpcResponse) -> GrpcResponse {
    use http_body_util::BodyExt as _;
    let (mut parts, body) = response.into_parts();
    drop_if_unreadable(&mut parts.headers);
    let body = body.map_frame(|mut frame| {
        if let Some(trailers) = frame.trailers_mut() {
            drop_if_unreadable(trailers);
        }
        frame
    });
    http::Response::from_parts(parts, tonic::body::Body::new(body))
}

fn drop_if_unreadable(headers: &mut http::HeaderMap) {
    use base64::Engine as _;
    // tonic's engine: the standard alphabet, padding optional.
    const ENGINE: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    if let Some(value) = headers.get(STATUS_DETAILS)
        && ENGINE.decode(value.as_bytes()).is_err()
    {
        headers.remove(STATUS_DETAILS);
    }
}

/// Why an attempt answered `status` failed: its code, its message and the causes the message
/// does not already say, cleaned.
fn failure_reason(status: tonic::Status, redactor: &Redactor) -> String {
    format!(
        "gRPC export failed: {:?}: {}",
        status.code(),
        redactor.clean(&error_chain(&StatusMessage(status)))
    )
}

/// A status as its message says it, with the status's causes: a status's own `Display` is a
/// debug dump of its fields.
#[derive(Debug)]
struct StatusMessage(tonic::Status);

impl fmt::Display for StatusMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.message())
    }
}

impl std::error::Error for StatusMessage {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.0)
    }
}

/// tonic codec that sends bytes already encoded and decodes the OTLP response.
#[derive(Debug, Clone, Copy, Default)]
struct OtlpCodec;

#[derive(Debug, Clone, Copy, Default)]
struct PassThrough;

#[derive(Debug, Clone, Copy, Default)]
struct ResponseDecoder;

impl Codec for OtlpCodec {
    type Encode = Bytes;
    type Decode = ExportTraceServiceResponse;
    type Encoder = PassThrough;
    type Decoder = ResponseDecoder;

    fn encoder(&mut self) -> PassThrough {
        PassThrough
    }

    fn decoder(&mut self) -> ResponseDecoder {
        ResponseDecoder
    }
}

impl Encoder for PassThrough {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for ResponseDecoder {
    type Item = ExportTraceServiceResponse;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut DecodeBuf<'_>,
    ) -> Result<Option<ExportTraceServiceResponse>, tonic::Status> {
        ExportTraceServiceResponse::decode(src)
            .map(Some)
            .map_err(|e| tonic::Status::internal(format!("undecodable export response: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::tests::redactor;

    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    struct Cause {
        text: &'static str,
        #[source]
        source: Option<Box<Cause>>,
    }

    #[test]
    fn a_failed_status_says_its_message_and_each_cause_once() {
        // tonic makes a status of a local error with the error's text as its message and the
        // error as its source: the source says nothing new, its own source does.
        let refused = Cause {
            text: "connection refused by s3cr3t-token",
            source: None,
        };
        let connect = Cause {
            text: "cannot connect to 127.0.0.1:9",
            source: Some(Box::new(refused)),
        };
        let status = tonic::Status::from_error(Box::new(connect));
        assert_eq!(
            failure_reason(status, &redactor()),
            "gRPC export failed: Unknown: cannot connect to 127.0.0.1:9: connection refused by \
             [REDACTED]"
        );
    }
}
