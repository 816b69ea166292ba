//! HTTP, RPC and database span helpers on OpenTelemetry semantic conventions 1.42.
//!
//! TODO(#4): crate docs.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod db;
pub mod http;
mod lightstep_tracing;
mod outcome;
pub mod propagation;
pub mod rpc;
mod span;
pub mod sql;

pub use crate::lightstep_tracing::{LightstepTracing, SCOPE_NAME};
pub use crate::outcome::{Failure, GrpcCode, Outcome, Report};
pub use crate::span::{ActiveSpan, CANCELLED, PANIC, Traced};

#[cfg(test)]
mod tests;
