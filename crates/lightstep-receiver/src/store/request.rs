//! What the receiver keeps of a request besides its spans: its protocol, a compact copy of its
//! headers (whose values print redacted), its peer, and how it was answered.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// Whether [`RequestInfo`]'s `Debug` may print a header's value: only framing and content
/// headers that never carry a credential. Every other value (`authorization`, `cookie`,
/// `proxy-authorization`, `dd-api-key`, a vendor's token header under any name) is a secret, and
/// prints as `[REDACTED]`; its name still shows.
fn value_is_printable(name: &str) -> bool {
    matches!(
        name,
        "content-type" | "content-encoding" | "content-length" | "user-agent" | "te"
    ) || name.starts_with("grpc-")
}

/// The wire protocol a request arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// OTLP/gRPC (`TraceService/Export`).
    Grpc,
    /// OTLP/HTTP with a binary protobuf body (`application/x-protobuf`).
    HttpProtobuf,
    /// OTLP/HTTP with an OTLP/JSON body (`application/json`).
    HttpJson,
}

/// Where a request came from and what it carried besides spans.
///
/// Every span from one request shares one `RequestInfo`. Its `Debug` output redacts the values
/// of `lightstep-access-token`, `authorization` and `x-api-key`; read them with
/// [`header`](Self::header) when a test needs to check them.
#[derive(Clone)]
#[non_exhaustive]
pub struct RequestInfo {
    /// The protocol and encoding of the request.
    pub protocol: Protocol,
    /// The request's headers (HTTP) or metadata (gRPC). Header names are lowercase.
    pub headers: http::HeaderMap,
    /// The client's address, when known.
    pub peer_addr: Option<SocketAddr>,
    /// Whether the connection was TLS.
    pub tls: bool,
    /// When the request arrived (wall clock).
    pub received_at: SystemTime,
    /// When the request arrived (monotonic, for idle detection).
    pub(crate) received_instant: Instant,
    /// What keeping this costs, in bytes ([`header_charge`]): its share of the store's byte
    /// budget, and what the request is charged in the in-flight budget for its headers.
    pub(crate) charge: usize,
}

/// What a header map copied by [`RequestInfo::new`] holds per entry beyond the name and value
/// text: the map's entry (or extra value, for a repeated name), its index, and the allocation
/// of the copied value or name. Measured with a counting allocator (http 1.5): 160 to 200
/// bytes per entry with the allocator's rounding, for maps of typical OTLP headers, of one
/// name repeated and of many short distinct names.
const HEADER_ENTRY_OVERHEAD: usize = 200;

/// The bytes a copy of `headers` made by [`RequestInfo::new`] holds, with the `RequestInfo`
/// itself: what a request is charged for its headers, before its body, and what a stored
/// request costs the store.
pub(crate) fn header_charge(headers: &http::HeaderMap) -> usize {
    std::mem::size_of::<RequestInfo>()
        + headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + HEADER_ENTRY_OVERHEAD)
            .sum::<usize>()
}

/// A copy of `headers` that shares no memory with them. Decoded headers are slices of the
/// buffer they were read into (hyper's read buffer for HTTP/1.1, a header block for HTTP/2):
/// keeping them would keep the whole buffer alive for as long as the request is stored or
/// recorded, beyond what [`header_charge`] counts.
fn compact(headers: &http::HeaderMap) -> http::HeaderMap {
    let mut copy = http::HeaderMap::new();
    for (name, value) in headers {
        // Standard names are static; only other names are copied.
        let name = http::HeaderName::from_bytes(name.as_str().as_bytes()).unwrap_or(name.clone());
        let mut copied = http::HeaderValue::from_bytes(value.as_bytes()).unwrap_or(value.clone());
        copied.set_sensitive(value.is_sensitive());
        copy.append(name, copied);
    }
    copy
}

impl RequestInfo {
    /// Keeps a copy of `headers` (see [`compact`]), which may then be dropped.
    pub(crate) fn new(
        protocol: Protocol,
        headers: &http::HeaderMap,
        peer_addr: Option<SocketAddr>,
        tls: bool,
    ) -> Self {
        let charge = header_charge(headers);
        let headers = compact(headers);
        Self {
            protocol,
            headers,
            peer_addr,
            tls,
            received_at: SystemTime::now(),
            received_instant: Instant::now(),
            charge,
        }
    }

    /// The value of header `name` (case-insensitive), if present and valid UTF-8. With several
    /// values, the first.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `lightstep-access-token` header, if present.
    pub fn access_token(&self) -> Option<&str> {
        self.header(crate::ACCESS_TOKEN_HEADER)
    }
}

impl fmt::Debug for RequestInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Headers<'a>(&'a http::HeaderMap);
        impl fmt::Debug for Headers<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut map = f.debug_map();
                for (name, value) in self.0 {
                    if value_is_printable(name.as_str()) && !value.is_sensitive() {
                        map.entry(&name.as_str(), value);
                    } else {
                        map.entry(&name.as_str(), &"[REDACTED]");
                    }
                }
                map.finish()
            }
        }
        f.debug_struct("RequestInfo")
            .field("protocol", &self.protocol)
            .field("headers", &Headers(&self.headers))
            .field("peer_addr", &self.peer_addr)
            .field("tls", &self.tls)
            .field("received_at", &self.received_at)
            .finish()
    }
}

/// How one export request was answered.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestOutcome {
    /// Decoded; `accepted` spans stored and `rejected` refused (partial success).
    Exported {
        /// Spans stored.
        accepted: u64,
        /// Spans refused, reported to the client as partial success.
        rejected: u64,
    },
    /// Refused for exceeding the size limit.
    TooLarge,
    /// Refused because the body could not be decoded; the message says why.
    Malformed(String),
    /// Refused with a simulated failure ([`Faults`](crate::Faults)).
    FaultInjected,
    /// Refused for lack of room in the in-flight byte budget (the client may retry).
    Throttled,
}

/// One export request the receiver answered: who sent it, what headers it carried, and how it was
/// answered. Kept for the newest [`MAX_REQUEST_RECORDS`](super::MAX_REQUEST_RECORDS) requests,
/// including refused ones, except those refused for a missing or wrong access token: those are only
/// counted
/// ([`ReceiverStats::requests_unauthenticated`](super::ReceiverStats::requests_unauthenticated)),
/// so that a token sent by mistake is not kept.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RequestRecord {
    /// The request's protocol, headers and peer.
    pub request: Arc<RequestInfo>,
    /// How it was answered.
    pub outcome: RequestOutcome,
}
