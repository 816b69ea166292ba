//! Span helpers for HTTP, RPC and database calls on current OpenTelemetry semantic conventions.
//!
//! This crate will hold `LightstepTracing` with `trace_http`, `trace_rpc` and `trace_database`,
//! context propagation into and out of HTTP headers and gRPC metadata, and the tower, tonic and
//! tracing integrations. It depends on the `opentelemetry` API only. It is being built under
//! issue #4; nothing is exported yet.
