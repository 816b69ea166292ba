//! An embedded OTLP trace receiver for development and tests.
//!
//! This crate will serve OTLP/gRPC and OTLP/HTTP on loopback and keep what it receives in a
//! bounded in-memory store. It is being built under issue #3; nothing is exported yet.
