//! Connect Rust services to Lightstep and to any OpenTelemetry OTLP backend.
//!
//! This is the facade of lightstep-rs. It re-exports the workspace's crates, each behind a cargo
//! feature, so that you can depend on `lightstep` alone or pick the crates you need.
//!
//! # Crates
//!
//! | module | crate | feature |
//! |---|---|---|
//! | [`config`] | `lightstep-config` | always |
//!
//! The exporter, instrumentation, analysis and receiver modules join as their crates land.
//!
//! # Supported Rust version
//!
//! Rust 1.90 or later.

#[doc(inline)]
pub use lightstep_config as config;
