//! Critical-path analysis of distributed traces.
//!
//! This crate will read traces (OTLP JSON and protobuf, Jaeger JSON, Zipkin v2 JSON), assemble
//! them robustly, and compute where a request's latency really went. It is being built under
//! issue #5; nothing is exported yet.
