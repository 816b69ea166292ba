//! Integration tests: real receivers on real loopback sockets, real clients.

mod bounds;
mod common;
mod errors;
mod exports;
mod exposure;
mod faults;
mod generated;
mod lifecycle;
mod python;
mod report;
mod tls;
mod tokens;
