//! Integration tests of lightstep-analysis: one binary, one module per concern.

mod fixtures;
mod jaeger_port;
mod oracle;
mod peers;
mod properties;
mod semantics;
mod streaming;
