//! Integration tests of lightstep-query: every store against stand-in servers on 127.0.0.1
//! that serve the repository's fixtures in each API's documented shapes, and fail in each way
//! a store can fail.

mod errors;
mod fixtures;
mod proxy;
mod seeds;
mod standin;
mod stores;
// Shared with the other crate whose tests go through a proxy: each uses part of it.
#[allow(dead_code)]
#[path = "../../../../tools/test-proxy/proxy.rs"]
mod test_proxy;
mod tls;
