//! Integration tests of lightstep-analysis: one binary, one module per concern.

mod jaeger_port;
mod oracle;
mod properties;
