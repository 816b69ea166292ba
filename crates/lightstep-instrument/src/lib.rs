//! HTTP, RPC and database span helpers on OpenTelemetry semantic conventions 1.42.
//!
//! TODO(#4): crate docs.
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
