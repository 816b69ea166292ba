//! The crate's one error type.
//!
//! Every message names the store (`jaeger`, `tempo`, `zipkin`) and, for a request, its URL as
//! it may be shown: user information is refused when a source is built, and the values of the
//! base URL's query parameters (where an API key may travel) are replaced by `[REDACTED]`. What
//! a server said is cleaned before it gets here: header values it echoed are replaced by
//! `[REDACTED]`, control characters are escaped, and it is cut to 300 characters.

use std::path::PathBuf;
use std::time::Duration;

/// Why a source could not be built, a trace not fetched, or a search not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The base URL is not a usable `http` or `https` URL.
    #[error("{store}: invalid base URL: expected {expected}")]
    InvalidUrl {
        /// The store.
        store: String,
        /// What would have been accepted (the URL itself is not repeated: it may hold a key).
        expected: String,
    },
    /// A header that HTTP cannot carry. Its value is never shown.
    #[error("{store}: invalid header `{name}` (value hidden): {reason}")]
    InvalidHeader {
        /// The store.
        store: String,
        /// The header's name, as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Header values (every one a secret) or the base URL's query values would cross the
    /// network unencrypted to a host that is not loopback, and that was not allowed.
    #[error(
        "{store}: {} would travel in plaintext to `{host}`: use an https URL, or allow it explicitly (`with_insecure(true)`, `--insecure`)",
        secrets_named(.headers, *.query)
    )]
    PlaintextSecrets {
        /// The store.
        store: String,
        /// The host, which is not loopback.
        host: String,
        /// The names of the headers (never their values).
        headers: Vec<String>,
        /// Whether the base URL has query parameters.
        query: bool,
    },
    /// The CA file could not be read or holds no usable certificate.
    #[error("{store}: cannot use the CA file `{}`: {reason}", path.display())]
    CaFile {
        /// The store.
        store: String,
        /// The path as given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A setting that cannot work (a zero concurrency, the HTTP client refusing its TLS
    /// configuration).
    #[error("{store}: {reason}")]
    Setting {
        /// The store.
        store: String,
        /// What is wrong.
        reason: String,
    },
    /// Not a trace id: ids are 1 to 32 hex digits.
    #[error("{store}: invalid trace id `{id}`: expected 1 to 32 hex digits")]
    InvalidTraceId {
        /// The store.
        store: String,
        /// The id as given (control characters escaped).
        id: String,
    },
    /// A search that this store cannot run, or whose parts contradict each other.
    #[error("{store}: invalid search: {reason}")]
    InvalidSearch {
        /// The store.
        store: String,
        /// What is wrong.
        reason: String,
    },
    /// No connection could be made (refused, no route, name not resolved, TLS handshake).
    #[error("{store}: cannot reach {url}: {reason}")]
    Unreachable {
        /// The store.
        store: String,
        /// The request's URL.
        url: String,
        /// What the system or the TLS layer said.
        reason: String,
    },
    /// The server did not answer, or stopped sending, for longer than the timeout.
    #[error("{store}: {url}: no answer within {}", humantime::format_duration(*.after))]
    Timeout {
        /// The store.
        store: String,
        /// The request's URL.
        url: String,
        /// The timeout.
        after: Duration,
    },
    /// 401 or 403: the credentials (a token, an API key, the tenant) are missing or refused.
    #[error(
        "{store}: {url}: {status}: access denied; check the headers (a token or API key, the tenant){}",
        said(.message)
    )]
    Unauthorized {
        /// The store.
        store: String,
        /// The request's URL.
        url: String,
        /// 401 or 403.
        status: u16,
        /// What the server said.
        message: String,
    },
    /// The store does not hold the trace.
    #[error("{store}: trace {trace_id} not found ({url} answered 404){}", said(.message))]
    TraceNotFound {
        /// The store.
        store: String,
        /// The request's URL.
        url: String,
        /// The trace id asked for.
        trace_id: String,
        /// What the server said.
        message: String,
    },
    /// 429, still refused when the timeout ran out (or asking to wait past it).
    #[error("{store}: {url}: 429 too many requests{}{}", retry(.retry_after), said(.message))]
    RateLimited {
        /// The store.
        store: String,
        /// The request's URL.
        url: String,
        /// How long the server asked to wait (`Retry-After`), when it said.
        retry_after: Option<Duration>,
        /// What the server said.
        message: String,
    },
    /// Any other answer that is not a success.
    #[error("{store}: {url}: status {status}{}{}", said(.message), hinted(.hint))]
    Status {
        /// The store.
        store: String,
        /// The request's URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// What the server said.
        message: String,
        /// What is likely wrong, when the status suggests it.
        hint: Option<&'static str>,
    },
    /// The body broke off: the connection closed or failed before the whole answer arrived.
    #[error("{store}: {url}: the answer broke off after {received} bytes of its body: {reason}")]
    Body {
        /// The store.
        store: String,
        /// The request's URL.
        url: String,
        /// Bytes of the body received.
        received: u64,
        /// What the connection reported.
        reason: String,
    },
    /// A body, or one trace of a search, larger than the limit (`with_max_trace_bytes`).
    #[error("{store}: {url}: {what} is larger than {limit} bytes (see `with_max_trace_bytes`)")]
    TooLarge {
        /// The store.
        store: String,
        /// The request's URL.
        url: String,
        /// What was too large.
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// A body that is not what the API documents: JSON or protobuf that does not parse, or
    /// does not have the expected shape.
    #[error("{store}: {url}: malformed answer at {position}: {message}")]
    Malformed {
        /// The store.
        store: String,
        /// The request's URL.
        url: String,
        /// Where in the body: `line L, column C` for JSON, `byte N` for protobuf.
        position: String,
        /// What was wrong and what was expected.
        message: String,
    },
}

impl Error {
    /// The HTTP status the server answered, for the errors that carry one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Unauthorized { status, .. } | Self::Status { status, .. } => Some(*status),
            Self::TraceNotFound { .. } => Some(404),
            Self::RateLimited { .. } => Some(429),
            _ => None,
        }
    }
}

/// `: <message>`, or nothing for an empty message.
fn said(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

fn hinted(hint: &Option<&'static str>) -> String {
    hint.map(|h| format!(" ({h})")).unwrap_or_default()
}

fn retry(after: &Option<Duration>) -> String {
    match after {
        Some(after) => format!(
            " (the server asked to retry after {})",
            humantime::format_duration(*after)
        ),
        None => String::new(),
    }
}

/// "the values of headers `a`, `b` and the base URL's query values".
fn secrets_named(headers: &[String], query: bool) -> String {
    let names = headers
        .iter()
        .map(|h| format!("`{h}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let headers = match headers.len() {
        0 => String::new(),
        1 => format!("the value of header {names}"),
        _ => format!("the values of headers {names}"),
    };
    match (headers.is_empty(), query) {
        (false, true) => format!("{headers} and the base URL's query values"),
        (false, false) => headers,
        (true, _) => "the base URL's query values".to_owned(),
    }
}
