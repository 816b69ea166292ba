//! [`SourceBuilder`]: the settings every store shares, and the few that one store adds.

use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::time::Duration;

use lightstep_config::{Header, SecretString};

use crate::http::Settings;

/// The timeout when none is set: the longest wait to connect, for an answer to begin, and
/// between two pieces of a body.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Requests in flight to one store when no concurrency is set.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// The largest trace accepted when no limit is set: the body of a trace fetched by id, or the
/// bytes one trace of a search answer spans.
pub const DEFAULT_MAX_TRACE_BYTES: u64 = 128 * 1024 * 1024;

/// Builds a source ([`crate::Jaeger`], [`crate::Tempo`], [`crate::Zipkin`]) from its base URL
/// and settings. Made by `Jaeger::builder(url)` and its siblings; finished by `build()`, which
/// checks everything and returns an error naming what is wrong.
///
/// Every header value counts as a secret: it is never shown (`Debug` prints `[REDACTED]`,
/// errors name headers without their values, and a value a server echoes back is replaced),
/// and it is refused in plaintext (`http://`) to a host that is not loopback (a literal
/// loopback address or exactly `localhost`) unless [`with_insecure`](Self::with_insecure)
/// allows it. The same holds for query parameters of the base URL, where some gateways take
/// an API key.
#[must_use]
#[derive(Clone)]
pub struct SourceBuilder<S> {
    pub(crate) settings: Settings,
    pub(crate) jaeger_api: crate::JaegerApi,
    pub(crate) tempo_api: crate::TempoApi,
    source: PhantomData<fn() -> S>,
}

impl<S> SourceBuilder<S> {
    pub(crate) fn new(url: impl Into<String>) -> Self {
        Self {
            settings: Settings {
                url: url.into(),
                headers: Vec::new(),
                ca_file: None,
                timeout: DEFAULT_TIMEOUT,
                concurrency: DEFAULT_CONCURRENCY,
                insecure: false,
                max_trace_bytes: DEFAULT_MAX_TRACE_BYTES,
                proxy: None,
                no_proxy: None,
            },
            jaeger_api: crate::JaegerApi::default(),
            tempo_api: crate::TempoApi::default(),
            source: PhantomData,
        }
    }

    /// Sends this header with every request (repeat for several). The value is a secret.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<SecretString>) -> Self {
        self.settings.headers.push(Header {
            name: name.into().to_ascii_lowercase(),
            value: value.into(),
        });
        self
    }

    /// Sends `Authorization: Bearer <token>` with every request.
    pub fn with_bearer_token(self, token: impl Into<SecretString>) -> Self {
        let token: SecretString = token.into();
        self.with_header(
            "authorization",
            SecretString::new(format!("Bearer {}", token.expose_secret())),
        )
    }

    /// Trusts the CA certificates of this PEM file in addition to the system's roots.
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.settings.ca_file = Some(path.into());
        self
    }

    /// The longest wait to connect, for an answer to begin, and between two pieces of a body;
    /// also the budget for retrying a 429 or a 503 (default [`DEFAULT_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeout = timeout;
        self
    }

    /// How many requests may be in flight to the store at once (default
    /// [`DEFAULT_CONCURRENCY`]): fetches of several traces by id, and the fetches that
    /// follow a search that returns ids (Tempo, Jaeger's v3 API).
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.settings.concurrency = concurrency;
        self
    }

    /// Allows header values and the base URL's query values to travel in plaintext to a host
    /// that is not loopback.
    pub fn with_insecure(mut self, insecure: bool) -> Self {
        self.settings.insecure = insecure;
        self
    }

    /// The largest trace accepted (default [`DEFAULT_MAX_TRACE_BYTES`]): a larger one is an
    /// error rather than memory without bound.
    pub fn with_max_trace_bytes(mut self, bytes: u64) -> Self {
        self.settings.max_trace_bytes = bytes;
        self
    }

    /// Sends every request through this HTTP proxy (`http://host:port`, with
    /// `user:password@` for a proxy that asks for them; the password is a secret). An
    /// `https://` store is reached through a `CONNECT` tunnel with TLS to the store inside it,
    /// so the proxy sees the store's host and port and nothing else; a plaintext store's
    /// requests, headers included, are forwarded in clear, which the plaintext rule above
    /// allows only with [`with_insecure`](Self::with_insecure). A loopback store never goes
    /// through the proxy.
    pub fn with_proxy(mut self, url: impl Into<String>) -> Self {
        self.settings.proxy = Some(url.into());
        self
    }

    /// The hosts that bypass the proxy, in `NO_PROXY`'s syntax: comma-separated host names
    /// (a name matches itself and its subdomains), IP addresses, CIDR blocks, or `*` for all.
    pub fn with_no_proxy(mut self, hosts: impl Into<String>) -> Self {
        self.settings.no_proxy = Some(hosts.into());
        self
    }
}

impl<S> fmt::Debug for SourceBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceBuilder")
            .field("url", &shown_url(&self.settings.url))
            .field("headers", &self.settings.headers)
            .field("ca_file", &self.settings.ca_file)
            .field("timeout", &self.settings.timeout)
            .field("concurrency", &self.settings.concurrency)
            .field("insecure", &self.settings.insecure)
            .field("max_trace_bytes", &self.settings.max_trace_bytes)
            .field("proxy", &self.settings.proxy.as_deref().map(shown_url))
            .field("no_proxy", &self.settings.no_proxy)
            .finish_non_exhaustive()
    }
}

/// A URL as given, without what may be a secret: user information and query values.
fn shown_url(url: &str) -> String {
    let url = match url.split_once('?') {
        Some((before, _)) => format!("{before}?[REDACTED]"),
        None => url.to_owned(),
    };
    let start = url.find("://").map_or(0, |i| i + 3);
    match url[start..].find('@') {
        Some(at) => format!("{}[REDACTED]{}", &url[..start], &url[start + at..]),
        None => url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_secret() {
        let builder = SourceBuilder::<crate::Jaeger>::new("https://user:pw@jaeger.example?key=k3y")
            .with_proxy("http://proxyuser:pr0xypass@proxy.example:3128")
            .with_header("x-api-key", "v4lue")
            .with_bearer_token("t0ken");
        let shown = format!("{builder:?}");
        for secret in ["pw", "k3y", "v4lue", "t0ken", "pr0xypass"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("x-api-key"), "{shown}");
    }
}
