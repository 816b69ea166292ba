//! Integration tests of lightstep-analysis: one binary, one module per concern.

mod fixtures;
mod jaeger_port;
mod oracle;
mod properties;
mod semantics;
mod streaming;
