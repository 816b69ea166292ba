//! The OTLP trace pipeline of lightstep-rs.
//!
//! This crate will turn a `LightstepConfig` into an installed OpenTelemetry pipeline: the OTLP
//! exporter (gRPC over tonic with TLS, or HTTP/protobuf), the `lightstep-access-token` header,
//! the Resource, the sampler, the propagators and the batch processor, plus a guard that flushes
//! and shuts down within a deadline. It is being built under issue #3; nothing is exported yet.
