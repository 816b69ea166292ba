//! HTTP, RPC and database spans that follow OpenTelemetry semantic conventions 1.42, nest,
//! propagate, and work with any tracer provider.
//!
//! [`LightstepTracing`] wraps an OpenTelemetry [`Tracer`](opentelemetry::trace::Tracer) (the
//! global one by default) and turns a future into a traced future: the span is current while
//! the future runs, so everything created inside nests under it; it ends when the future
//! completes, with a status the future's [`Outcome`] decides by the conventions' rules; a
//! dropped future ends it marked cancelled and a panic ends it as an error (and goes on).
//! This crate depends on the `opentelemetry` API only, not on the SDK or an exporter.
//!
//! # Quick start
//!
//! ```
//! use lightstep_instrument::LightstepTracing;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The global tracer provider: install yours first (`lightstep::init` does).
//! let tracing = LightstepTracing::global();
//!
//! // A SERVER span "GET /users/{id}"; the status comes from the response.
//! let response = tracing
//!     .trace_http("GET", "/users/{id}", async {
//!         // A CLIENT span "SELECT users", a child of the one above; its `db.query.text` is
//!         // "SELECT name FROM users WHERE id = ?".
//!         let name: Result<String, std::io::Error> = tracing
//!             .trace_database("postgresql", "SELECT name FROM users WHERE id = 42", async {
//!                 Ok("ada".to_owned())
//!             })
//!             .await;
//!         http::Response::builder().status(200).body(name.unwrap_or_default())
//!     })
//!     .await?;
//! assert_eq!(response.status(), 200);
//!
//! // A CLIENT span "grpc.health.v1.Health/Check" with `rpc.system.name = grpc`.
//! let code = tracing
//!     .trace_rpc("grpc.health.v1.Health", "Check", async {
//!         lightstep_instrument::GrpcCode::Ok
//!     })
//!     .await;
//! # drop(code);
//! # Ok(())
//! # }
//! ```
//!
//! The builders cover the richer cases: [`LightstepTracing::http_server`] (with the parent,
//! path, query, host and user agent read from an [`http::Request`](::http::Request)),
//! [`LightstepTracing::http_client`] (URL, server address, context injected into the request
//! headers), [`LightstepTracing::rpc_client`] and [`LightstepTracing::rpc_server`],
//! [`LightstepTracing::database`] (namespace, collection, server, sanitizing). Each has
//! `start()`, which returns an [`ActiveSpan`] to propagate or finish by hand, and `trace(future)`.
//! `docs/instrumentation.md` lists every attribute each one records.
//!
//! # Modules
//!
//! - [`http`], [`rpc`], [`db`]: the span builders and the conventions' details (method
//!   normalisation, query redaction, gRPC paths).
//! - [`sql`]: the SQL sanitizer behind `db.query.text`.
//! - [`propagation`]: trace context into and out of [`http::HeaderMap`](::http::HeaderMap) (and tonic metadata).
//!
//! # Feature flags
//!
//! All off by default; the crate then depends on `opentelemetry`,
//! `opentelemetry-semantic-conventions`, `http` and `pin-project-lite` only.
//!
//! - `tower`: [`tower::HttpServerLayer`] (axum, hyper) and [`tower::HttpClientLayer`].
//! - `tonic`: [`grpc::GrpcServerLayer`], [`grpc::GrpcClientLayer`] and
//!   [`grpc::propagate_current_context`]; [`Outcome`] for `tonic::Status`, `tonic::Code` and
//!   `tonic::Response`; propagation into and out of `tonic::metadata::MetadataMap`. Implies
//!   `tower`.
//! - `tracing`: [`tracing_layer`], which records `tracing` spans (`#[tracing::instrument]`) in the
//!   same traces as the helpers' spans, through tracing-opentelemetry.
//!
//! # Supported Rust version
//!
//! Rust 1.90 or newer.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "tracing")]
mod bridge;
pub mod db;
#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
pub mod grpc;
pub mod http;
mod lightstep_tracing;
mod outcome;
pub mod propagation;
pub mod rpc;
mod span;
pub mod sql;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod tower;

pub use crate::lightstep_tracing::{LightstepTracing, SCOPE_NAME};
pub use crate::outcome::{Failure, GrpcCode, Outcome, Report};
pub use crate::span::{ActiveSpan, CANCELLED, PANIC, Traced};

#[cfg(feature = "tracing")]
#[cfg_attr(docsrs, doc(cfg(feature = "tracing")))]
pub use crate::bridge::tracing_layer;

#[cfg(test)]
mod tests;
