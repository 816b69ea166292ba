//! The HTTP side that every store shares: the client (reqwest on the caller's tokio runtime,
//! rustls with the system's roots plus a CA file, an HTTP proxy when one is set, no redirects),
//! the headers (every value a secret), the timeout, the bound on requests in flight, the
//! requests every store makes in the same way (a trace by id, a search's answer), and the way
//! answers become traces or errors. A store adds only its paths, parameters and envelopes.
//!
//! Bodies are never held whole unless they are one trace: a search that returns whole traces
//! (Jaeger's `{"data": [...]}`, Zipkin's `[[...], ...]`) is fed chunk by chunk to the readers of
//! `lightstep-analysis` on a blocking thread, which hand each trace over as soon as its closing
//! bracket is read; a trace fetched by id is read up to `max_trace_bytes` and parsed on a
//! blocking thread. Parsing and the readers' work never run on an async worker.

use std::cell::Cell;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use lightstep_analysis::Trace;
use lightstep_analysis::read::{Format, read_traces};
use lightstep_analysis::render::printable;
use lightstep_config::{Endpoint, Header};
use tokio::sync::{Semaphore, mpsc};
use url::Url;

use crate::source::{normalize_id, one_trace};
use crate::{Error, Traces};

/// Longest text kept from what a server said (in characters).
const MAX_MESSAGE_CHARS: usize = 300;

/// Bytes of an error answer read for its message.
const MAX_ERROR_BODY: usize = 4096;

/// Chunks of a streamed body between the network and the reader.
const CHUNKS_IN_FLIGHT: usize = 8;

/// The first wait before retrying a 429, 502, 503 or 504 that did not say how long to wait.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// What a source is built from (see `SourceBuilder`).
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) url: String,
    pub(crate) headers: Vec<Header>,
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) timeout: Duration,
    pub(crate) concurrency: usize,
    pub(crate) insecure: bool,
    pub(crate) max_trace_bytes: u64,
    /// An `http://` proxy, and the hosts that bypass it (`NO_PROXY`'s syntax).
    pub(crate) proxy: Option<String>,
    pub(crate) no_proxy: Option<String>,
}

/// One store's HTTP connection settings and client. Shared by the clones of a source.
pub(crate) struct Connection {
    pub(crate) store: &'static str,
    base: Url,
    /// Query parameters of the base URL: sent with every request, shown as `[REDACTED]`.
    base_params: usize,
    client: reqwest::Client,
    /// Header values (and the proxy's password), to replace them in whatever a server echoes
    /// back.
    secrets: Vec<String>,
    /// The proxy requests go through, as it may be shown (no credentials).
    proxy: Option<String>,
    pub(crate) timeout: Duration,
    pub(crate) concurrency: usize,
    pub(crate) max_trace_bytes: u64,
    /// Requests in flight (each holds a permit until its body is read).
    permits: Semaphore,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("store", &self.store)
            .field("base", &self.show(&self.base))
            .field("headers", &self.secrets.len())
            .field("proxy", &self.proxy)
            .field("timeout", &self.timeout)
            .field("concurrency", &self.concurrency)
            .field("max_trace_bytes", &self.max_trace_bytes)
            .finish_non_exhaustive()
    }
}

/// Reads the trace ids of a search answer's body (Tempo's search, Jaeger v3's summaries).
pub(crate) type IdsReader = fn(&Connection, &Url, &[u8]) -> Result<Vec<String>, Error>;

impl Connection {
    pub(crate) fn new(store: &'static str, settings: Settings) -> Result<Self, Error> {
        let setting = |reason: String| Error::Setting {
            store: store.to_owned(),
            reason,
        };
        let endpoint: Endpoint = settings.url.parse().map_err(|expected| Error::InvalidUrl {
            store: store.to_owned(),
            expected,
        })?;
        if settings.concurrency == 0 {
            return Err(setting("the concurrency must be at least 1".into()));
        }
        if settings.timeout.is_zero() {
            return Err(setting("the timeout must be longer than zero".into()));
        }
        let mut headers = HeaderMap::new();
        let mut secrets = Vec::new();
        for header in &settings.headers {
            let invalid = |reason: &str| Error::InvalidHeader {
                store: store.to_owned(),
                name: printable(&header.name).into_owned(),
                reason: reason.to_owned(),
            };
            let name = HeaderName::from_bytes(header.name.trim().as_bytes())
                .map_err(|_| invalid("not a valid header name"))?;
            let value = header.value.expose_secret();
            let mut value = HeaderValue::from_str(value.trim())
                .map_err(|_| invalid("the value holds characters a header cannot carry"))?;
            value.set_sensitive(true);
            headers.append(name, value);
            // Very short values would blank out ordinary words in messages.
            if header.value.expose_secret().trim().len() >= 4 {
                secrets.push(header.value.expose_secret().trim().to_owned());
            }
        }
        let base = endpoint.url().clone();
        let base_params = base.query_pairs().count();
        if (!headers.is_empty() || base_params > 0)
            && !endpoint.is_tls()
            && !endpoint.is_loopback()
            && !settings.insecure
        {
            let mut names: Vec<String> = headers.keys().map(|n| n.as_str().to_owned()).collect();
            names.dedup();
            return Err(Error::PlaintextSecrets {
                store: store.to_owned(),
                host: endpoint.host().to_owned(),
                headers: names,
                query: base_params > 0,
            });
        }
        let tls = tls_config(store, settings.ca_file.as_deref())?;
        // reqwest reads no proxy variable itself: the caller's setting is the only one.
        let mut client = reqwest::Client::builder().no_proxy();
        let mut proxy_shown = None;
        if let Some(proxy) = &settings.proxy
            && !endpoint.is_loopback()
        {
            let (proxy, shown, password) =
                proxy_for(store, proxy, settings.no_proxy.as_deref(), &base)?;
            if let Some(proxy) = proxy {
                client = client.proxy(proxy);
                proxy_shown = Some(shown);
                secrets.extend(password);
            }
        }
        let client = client
            .use_preconfigured_tls(tls)
            .connect_timeout(settings.timeout)
            .default_headers(headers)
            .user_agent(concat!("lightstep-query/", env!("CARGO_PKG_VERSION")))
            // A redirect would carry the headers (secrets) to wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| setting(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            store,
            base,
            base_params,
            client,
            secrets,
            proxy: proxy_shown,
            timeout: settings.timeout,
            concurrency: settings.concurrency,
            max_trace_bytes: settings.max_trace_bytes,
            permits: Semaphore::new(settings.concurrency),
        })
    }

    /// The base URL as it may be shown.
    pub(crate) fn base_shown(&self) -> String {
        self.show(&self.base)
    }

    /// How a source names itself: the store and its base URL, without secrets.
    pub(crate) fn name(&self) -> String {
        format!("{} {}", self.store, self.base_shown())
    }

    /// One trace by id, as every store is asked for it: the id checked, `path_of(id)` asked
    /// for with `accept`, the body read up to the limit and parsed as `answer` says (given
    /// whether the answer says it is JSON). An answer without spans is a trace the store does
    /// not hold.
    pub(crate) async fn fetch_trace(
        self: &Arc<Self>,
        trace_id: &str,
        path_of: impl FnOnce(&str) -> String,
        accept: &'static str,
        answer: impl FnOnce(bool) -> (Format, Prepare),
    ) -> Result<Trace, Error> {
        let id = normalize_id(self.store, trace_id)?;
        let url = self.url(&path_of(&id), &[]);
        let (json, body) = {
            let _permit = self.permit().await;
            let response = self.get(&url, accept, Some(&id)).await?;
            let json = is_json(&response);
            let body = self
                .body(&url, response, self.max_trace_bytes, "the trace")
                .await?;
            (json, body)
        };
        let (format, prepare) = answer(json);
        let traces = self.parse(&url, body, format, prepare).await?;
        one_trace(traces, &id).ok_or_else(|| Error::TraceNotFound {
            store: self.store.to_owned(),
            url: self.show(&url),
            trace_id: id,
            message: "the answer holds no spans".into(),
        })
    }

    /// The body of a search answer that holds trace ids (Tempo, Jaeger v3), asked for as JSON
    /// and read up to the limit. A 404 gets `hint` when there is one.
    async fn search_answer(&self, url: &Url, hint: Option<&'static str>) -> Result<Vec<u8>, Error> {
        let _permit = self.permit().await;
        let response = self
            .get(url, "application/json", None)
            .await
            .map_err(|e| with_hint(e, hint))?;
        self.body(url, response, self.max_trace_bytes, "the answer")
            .await
    }

    /// The trace ids of a search answer (see [`search_answer`](Self::search_answer)), read by
    /// `ids` on a blocking thread: the answer may be as large as a trace, and parsing it must
    /// not hold an async worker.
    pub(crate) async fn search_ids(
        self: &Arc<Self>,
        url: &Url,
        hint: Option<&'static str>,
        ids: IdsReader,
    ) -> Result<Vec<String>, Error> {
        let body = self.search_answer(url, hint).await?;
        let this = Arc::clone(self);
        let shown_url = url.clone();
        tokio::task::spawn_blocking(move || ids(&this, &shown_url, &body))
            .await
            .unwrap_or_else(|_| Err(self.reader_panicked(url)))
    }

    /// The traces a search finds, where the store answers with whole traces (Jaeger v1,
    /// Zipkin): the JSON answer streamed trace by trace as it arrives. A 404 gets `hint` when
    /// there is one.
    pub(crate) fn search_traces(
        self: &Arc<Self>,
        url: Url,
        format: Format,
        hint: Option<&'static str>,
    ) -> Traces {
        let connection = Arc::clone(self);
        Traces::produced(1, move |out| async move {
            let _permit = connection.permit().await;
            let response = connection
                .get(&url, "application/json", None)
                .await
                .map_err(|e| with_hint(e, hint))?;
            connection.stream(&url, response, format, &out).await
        })
    }

    /// `path` under the base URL's path, with the base URL's query parameters and `params`.
    pub(crate) fn url(&self, path: &str, params: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        let joined = format!("{}{path}", self.base.path().trim_end_matches('/'));
        url.set_path(&joined);
        if !params.is_empty() {
            let mut query = url.query_pairs_mut();
            for (key, value) in params {
                query.append_pair(key, value);
            }
        }
        url
    }

    /// A URL as it may be shown: the base URL's query values replaced by `[REDACTED]`.
    pub(crate) fn show(&self, url: &Url) -> String {
        let mut shown = url.clone();
        shown.set_query(None);
        let mut text = shown.to_string();
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        if !pairs.is_empty() {
            let encode = |text: &str| -> String {
                url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
            };
            let parts: Vec<String> = pairs
                .iter()
                .enumerate()
                .map(|(i, (key, value))| {
                    if i < self.base_params {
                        format!("{}=[REDACTED]", encode(key))
                    } else {
                        format!("{}={}", encode(key), encode(value))
                    }
                })
                .collect();
            text.push('?');
            text.push_str(&parts.join("&"));
        }
        printable(&text).into_owned()
    }

    /// Text from a server or the network, made safe for a message: echoed header values
    /// replaced, control characters escaped, cut to [`MAX_MESSAGE_CHARS`].
    pub(crate) fn clean(&self, text: &str) -> String {
        let mut text = text.trim().to_owned();
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), "[REDACTED]");
            }
        }
        let text = printable(&text);
        let mut out: String = text.chars().take(MAX_MESSAGE_CHARS).collect();
        if text.chars().count() > MAX_MESSAGE_CHARS {
            out.push('…');
        }
        out
    }

    /// Waits for one of the permits that bound the requests in flight.
    pub(crate) async fn permit(&self) -> tokio::sync::SemaphorePermit<'_> {
        // The semaphore is never closed.
        self.permits
            .acquire()
            .await
            .expect("the request semaphore is never closed")
    }

    /// Sends a GET and returns the answer when it is a success. A 429, 502, 503 or 504 is
    /// tried again after what `Retry-After` asks (or a short backoff) while that fits in the
    /// timeout; any other status is an error naming what the server said. `trace_id` makes a
    /// 404 an unknown trace.
    pub(crate) async fn get(
        &self,
        url: &Url,
        accept: &'static str,
        trace_id: Option<&str>,
    ) -> Result<reqwest::Response, Error> {
        let deadline = Instant::now() + self.timeout;
        let mut backoff = FIRST_BACKOFF;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let request = self.client.get(url.clone()).header(ACCEPT, accept).send();
            let response = match tokio::time::timeout(left, request).await {
                Err(_) => return Err(self.timeout_error(url)),
                Ok(Err(e)) => return Err(self.transport_error(url, e)),
                Ok(Ok(response)) => response,
            };
            let status = response.status().as_u16();
            if response.status().is_success() {
                return Ok(response);
            }
            if matches!(status, 429 | 502 | 503 | 504) {
                let asked = retry_after(response.headers(), SystemTime::now());
                let wait = asked.unwrap_or(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(2));
                if Instant::now() + wait < deadline {
                    drop(response);
                    tokio::time::sleep(wait).await;
                    continue;
                }
                return Err(self.refusal(url, response, asked, trace_id).await);
            }
            return Err(self.refusal(url, response, None, trace_id).await);
        }
    }

    fn timeout_error(&self, url: &Url) -> Error {
        Error::Timeout {
            store: self.store.to_owned(),
            url: self.show(url),
            after: self.timeout,
        }
    }

    fn transport_error(&self, url: &Url, error: reqwest::Error) -> Error {
        if error.is_timeout() {
            return self.timeout_error(url);
        }
        let reason = match &self.proxy {
            Some(proxy) => format!("through the proxy {proxy}: {}", chain(error)),
            None => chain(error),
        };
        Error::Unreachable {
            store: self.store.to_owned(),
            url: self.show(url),
            reason: self.clean(&reason),
        }
    }

    /// The error for an answer that is not a success.
    async fn refusal(
        &self,
        url: &Url,
        mut response: reqwest::Response,
        retry_after: Option<Duration>,
        trace_id: Option<&str>,
    ) -> Error {
        let status = response.status().as_u16();
        let mut body = Vec::new();
        // What the server said is read within the timeout and up to a few kilobytes.
        let read = async {
            while body.len() < MAX_ERROR_BODY {
                match response.chunk().await {
                    Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                    _ => break,
                }
            }
        };
        let _ = tokio::time::timeout(self.timeout, read).await;
        body.truncate(MAX_ERROR_BODY);
        let message = self.clean(&server_message(&body));
        let store = self.store.to_owned();
        let shown = self.show(url);
        match (status, trace_id) {
            (401 | 403, _) => Error::Unauthorized {
                store,
                url: shown,
                status,
                message,
            },
            (404, Some(id)) => Error::TraceNotFound {
                store,
                url: shown,
                trace_id: id.to_owned(),
                message,
            },
            (429, _) => Error::RateLimited {
                store,
                url: shown,
                retry_after,
                message,
            },
            _ => Error::Status {
                store,
                url: shown,
                status,
                message,
                hint: match status {
                    300..=399 => Some("redirects are not followed: give the URL they point to"),
                    404 => Some("is the base URL right, and does this version serve this API?"),
                    _ => None,
                },
            },
        }
    }

    /// The whole body of an answer holding one trace (or a list of ids), up to `limit`
    /// bytes; the timeout bounds each wait for more of it.
    pub(crate) async fn body(
        &self,
        url: &Url,
        mut response: reqwest::Response,
        limit: u64,
        what: &'static str,
    ) -> Result<Vec<u8>, Error> {
        let too_large = || Error::TooLarge {
            store: self.store.to_owned(),
            url: self.show(url),
            what,
            limit,
        };
        if response.content_length().is_some_and(|len| len > limit) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        loop {
            match tokio::time::timeout(self.timeout, response.chunk()).await {
                Err(_) => return Err(self.timeout_error(url)),
                Ok(Err(e)) => return Err(self.broken_off(url, body.len() as u64, e)),
                Ok(Ok(None)) => return Ok(body),
                Ok(Ok(Some(chunk))) => {
                    if (body.len() + chunk.len()) as u64 > limit {
                        return Err(too_large());
                    }
                    body.extend_from_slice(&chunk);
                }
            }
        }
    }

    fn broken_off(&self, url: &Url, received: u64, error: reqwest::Error) -> Error {
        if error.is_timeout() {
            return self.timeout_error(url);
        }
        Error::Body {
            store: self.store.to_owned(),
            url: self.show(url),
            received,
            reason: self.clean(&chain(error)),
        }
    }

    /// Parses a body that holds one trace (or a few) on a blocking thread. `prepare` turns the
    /// body into what the reader takes (it unwraps the stores' envelopes) and runs there too.
    pub(crate) async fn parse(
        self: &Arc<Self>,
        url: &Url,
        body: Vec<u8>,
        format: Format,
        prepare: Prepare,
    ) -> Result<Vec<Trace>, Error> {
        let this = Arc::clone(self);
        let shown_url = url.clone();
        let task =
            tokio::task::spawn_blocking(move || this.read_body(&shown_url, body, format, prepare));
        task.await
            .unwrap_or_else(|_| Err(self.reader_panicked(url)))
    }

    /// What [`parse`](Self::parse) does on its blocking thread: the envelope unwrapped, then
    /// the traces read.
    pub(crate) fn read_body(
        &self,
        url: &Url,
        body: Vec<u8>,
        format: Format,
        prepare: Prepare,
    ) -> Result<Vec<Trace>, Error> {
        let body = prepare(body).map_err(|m| self.malformed(url, m))?;
        let mut traces = Vec::new();
        read_traces(&body[..], Path::new("body"), Some(format), |trace| {
            traces.push(trace);
            Ok(())
        })
        .map_err(|e| self.reader_error(url, e))?;
        Ok(traces)
    }

    /// A JSON answer that is not traces (a search's list of trace ids) as `T`.
    pub(crate) fn json<T: serde::de::DeserializeOwned>(
        &self,
        url: &Url,
        body: &[u8],
    ) -> Result<T, Error> {
        serde_json::from_slice(body).map_err(|e| self.malformed(url, Malformed::json(&e)))
    }

    /// Streams the traces of a search answer to `out` as the reader finishes each one. Returns
    /// when the body is read, the reader fails, or `out`'s receiver is gone (which is no
    /// error: the consumer has what it wanted).
    pub(crate) async fn stream(
        self: &Arc<Self>,
        url: &Url,
        mut response: reqwest::Response,
        format: Format,
        out: &mpsc::Sender<Result<Trace, Error>>,
    ) -> Result<(), Error> {
        let (chunks, chunks_rx) = mpsc::channel::<Result<Bytes, ()>>(CHUNKS_IN_FLIGHT);
        let traces = out.clone();
        let this = Arc::clone(self);
        let shown_url = url.clone();
        let reader = tokio::task::spawn_blocking(move || {
            this.read_chunks(
                &shown_url,
                chunks_rx,
                format,
                this.max_trace_bytes,
                |trace| {
                    traces
                        .blocking_send(Ok(trace))
                        .map_err(|_| io::Error::other("the consumer is gone"))
                },
            )
        });
        let mut received = 0u64;
        let mut broken = None;
        loop {
            match tokio::time::timeout(self.timeout, response.chunk()).await {
                Err(_) => broken = Some(self.timeout_error(url)),
                Ok(Err(e)) => broken = Some(self.broken_off(url, received, e)),
                Ok(Ok(None)) => break,
                Ok(Ok(Some(chunk))) => {
                    received += chunk.len() as u64;
                    if chunks.send(Ok(chunk)).await.is_err() {
                        // The reader has stopped: it failed, or the consumer went away.
                        break;
                    }
                    continue;
                }
            }
            // The reader must not take a broken body for a complete one.
            let _ = chunks.send(Err(())).await;
            break;
        }
        drop(chunks);
        let outcome = reader.await;
        if let Some(error) = broken {
            return Err(error);
        }
        outcome.unwrap_or_else(|_| Err(self.reader_panicked(url)))
    }

    /// What [`stream`](Self::stream) does on its blocking thread: the traces of a streamed
    /// answer read from its chunks as they come, each handed to `sink` as soon as it is
    /// complete, no trace spanning more than `limit` bytes. A sink that fails (the consumer
    /// is gone) ends the reading without an error.
    pub(crate) fn read_chunks(
        &self,
        url: &Url,
        chunks: mpsc::Receiver<Result<Bytes, ()>>,
        format: Format,
        limit: u64,
        mut sink: impl FnMut(Trace) -> io::Result<()>,
    ) -> Result<(), Error> {
        let since_last = Rc::new(Cell::new(0u64));
        let too_large = Rc::new(Cell::new(false));
        let input = ChunkReader {
            chunks,
            current: Bytes::new(),
            since_last: Rc::clone(&since_last),
            too_large: Rc::clone(&too_large),
            limit,
        };
        let outcome = read_traces(input, Path::new("body"), Some(format), |trace| {
            since_last.set(0);
            sink(trace)
        });
        // The JSON reader reports a failed read as a JSON error at a position; the flag says
        // what it really was.
        match (outcome, too_large.get()) {
            (_, true) => Err(Error::TooLarge {
                store: self.store.to_owned(),
                url: self.show(url),
                what: "one trace of the answer",
                limit,
            }),
            (Ok(_) | Err(lightstep_analysis::Error::Sink { .. }), false) => Ok(()),
            (Err(e), false) => Err(self.reader_error(url, e)),
        }
    }

    fn reader_panicked(&self, url: &Url) -> Error {
        Error::Malformed {
            store: self.store.to_owned(),
            url: self.show(url),
            position: "an unknown place".into(),
            message: "the reader failed unexpectedly".into(),
        }
    }

    pub(crate) fn malformed(&self, url: &Url, m: Malformed) -> Error {
        Error::Malformed {
            store: self.store.to_owned(),
            url: self.show(url),
            position: m.position,
            message: self.clean(&m.message),
        }
    }

    /// A reader's error as this crate's: where in the body, and what.
    fn reader_error(&self, url: &Url, error: lightstep_analysis::Error) -> Error {
        use lightstep_analysis::Error as E;
        match error {
            E::Json {
                line,
                column,
                message,
                ..
            } => self.malformed(
                url,
                Malformed {
                    position: format!("line {line}, column {column}"),
                    message,
                },
            ),
            E::Protobuf {
                offset, message, ..
            } => self.malformed(
                url,
                Malformed {
                    position: format!("byte {offset}"),
                    message,
                },
            ),
            E::Io { source, .. } => Error::Body {
                store: self.store.to_owned(),
                url: self.show(url),
                received: 0,
                reason: self.clean(&source.to_string()),
            },
            other => {
                let text = other.to_string();
                let text = text.strip_prefix("body: ").unwrap_or(&text);
                self.malformed(
                    url,
                    Malformed {
                        position: "the start".into(),
                        message: text.to_owned(),
                    },
                )
            }
        }
    }
}

/// Turns a body into what a reader takes (unwraps a store's envelope); runs on a blocking
/// thread.
pub(crate) type Prepare = fn(Vec<u8>) -> Result<Vec<u8>, Malformed>;

/// Where an envelope around the trace (Jaeger's `result`, Tempo's `trace`) is malformed.
#[derive(Debug)]
pub(crate) struct Malformed {
    pub(crate) position: String,
    pub(crate) message: String,
}

impl Malformed {
    pub(crate) fn json(error: &serde_json::Error) -> Self {
        let text = error.to_string();
        let message = match text.rfind(" at line ") {
            Some(cut) => text[..cut].to_owned(),
            None => text,
        };
        Self {
            position: format!("line {}, column {}", error.line(), error.column()),
            message,
        }
    }
}

/// The body of a streamed answer as `Read`, for the readers on a blocking thread. Counts the
/// bytes read since the last trace was handed over, so that no single trace grows past the
/// limit (and says so through `too_large`).
struct ChunkReader {
    chunks: mpsc::Receiver<Result<Bytes, ()>>,
    current: Bytes,
    since_last: Rc<Cell<u64>>,
    too_large: Rc<Cell<bool>>,
    limit: u64,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.chunks.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(())) => return Err(io::Error::other("the answer broke off")),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        let since_last = self.since_last.get() + n as u64;
        self.since_last.set(since_last);
        if since_last > self.limit {
            self.too_large.set(true);
            return Err(io::Error::other(
                "one trace of the answer is larger than the limit",
            ));
        }
        Ok(n)
    }
}

/// A 404 with `hint` (when there is one) in place of the general one: a route that a version of
/// the store lacks says which version or API to use.
fn with_hint(error: Error, hint: Option<&'static str>) -> Error {
    match (error, hint) {
        (
            Error::Status {
                store,
                url,
                status: 404,
                message,
                ..
            },
            Some(hint),
        ) => Error::Status {
            store,
            url,
            status: 404,
            message,
            hint: Some(hint),
        },
        (other, _) => other,
    }
}

/// Whether an answer's `Content-Type` says JSON.
fn is_json(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        })
}

/// What a server said in an error answer: the message of the stores' JSON error shapes
/// (Jaeger's `{"errors": [{"msg"}]}`, Jaeger v3's `{"error": {"message"}}`, a `message` or
/// `error` string), or the text itself.
fn server_message(body: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        let found = value
            .pointer("/errors/0/msg")
            .or_else(|| value.pointer("/error/message"))
            .or_else(|| value.get("message"))
            .or_else(|| value.get("error"))
            .and_then(serde_json::Value::as_str);
        if let Some(message) = found {
            return message.to_owned();
        }
    }
    String::from_utf8_lossy(body).into_owned()
}

/// `Retry-After` as delay-seconds or as an HTTP-date (a date in the past meaning now).
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// An error and its sources on one line, without the URL (which reqwest would repeat).
fn chain(error: reqwest::Error) -> String {
    lightstep_config::ErrorChain(&error.without_url()).to_string()
}

/// The proxy of `url` (`http://[user:password@]host:port`, or `host:port` as curl takes it) for
/// the store at `base`, unless its host is in `no_proxy` (`NO_PROXY`'s syntax, matched as curl
/// does): the proxy, how it may be shown, and its password (a secret). HTTPS goes through a
/// `CONNECT` tunnel, with TLS to the store inside it; plaintext HTTP is forwarded, headers and
/// all, which the plaintext rule allows to loopback only (and loopback stores never use the
/// proxy).
fn proxy_for(
    store: &'static str,
    url: &str,
    no_proxy: Option<&str>,
    base: &Url,
) -> Result<(Option<reqwest::Proxy>, String, Option<String>), Error> {
    let url = if url.contains("://") {
        url.to_owned()
    } else {
        format!("http://{url}")
    };
    let invalid = |reason: &str| Error::Setting {
        store: store.to_owned(),
        reason: format!("the proxy {}: {reason}", printable(&shown_proxy(&url))),
    };
    let parsed = Url::parse(&url).map_err(|e| invalid(&format!("not a URL ({e})")))?;
    if parsed.scheme() != "http" {
        return Err(invalid(
            "only an http:// proxy is supported (the tunnel to the store is TLS when the store is https://)",
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    if !matches!(parsed.path(), "" | "/") || parsed.query().is_some() {
        return Err(invalid("a proxy URL is a scheme, a host and a port only"));
    }
    let matcher = hyper_util::client::proxy::matcher::Matcher::builder()
        .all(parsed.to_string())
        .no(no_proxy.unwrap_or_default().to_owned())
        .build();
    let uri: http::Uri = base
        .as_str()
        .parse()
        .map_err(|_| invalid("the store's URL cannot be matched against NO_PROXY"))?;
    if matcher.intercept(&uri).is_none() {
        return Ok((None, String::new(), None));
    }
    let password = parsed
        .password()
        .map(|p| {
            percent_encoding::percent_decode_str(p)
                .decode_utf8_lossy()
                .into_owned()
        })
        .filter(|p| p.len() >= 4);
    let proxy = reqwest::Proxy::all(parsed.as_str()).map_err(|e| invalid(&chain(e)))?;
    Ok((Some(proxy), shown_proxy(&url), password))
}

/// A proxy URL as it may be shown: without user information.
fn shown_proxy(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string().trim_end_matches('/').to_owned()
        }
        Err(_) => match url.rsplit_once('@') {
            Some((_, host)) => format!("[REDACTED]@{host}"),
            None => url.to_owned(),
        },
    }
}

/// rustls with ring: the system's roots plus the certificates of `ca_file`.
fn tls_config(store: &str, ca_file: Option<&Path>) -> Result<rustls::ClientConfig, Error> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(path) = ca_file {
        let ca_error = |reason: String| Error::CaFile {
            store: store.to_owned(),
            path: path.to_path_buf(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|_| ca_error("it holds a malformed certificate".into()))?;
            roots
                .add(cert)
                .map_err(|e| ca_error(format!("a certificate is not usable: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(ca_error("it holds no PEM certificate".into()));
        }
    }
    // Deprecated by rustls 0.23.48 (no post-quantum key exchange), with no replacement for
    // *ring*: see docs/adr/011-one-async-transport-core.md.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Setting {
            store: store.to_owned(),
            reason: format!("TLS: {e}"),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        headers.insert(RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(30)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        headers.insert(RETRY_AFTER, HeaderValue::from_str(&earlier).unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::ZERO));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers, now), None);
    }

    #[test]
    fn server_messages_come_out_of_the_stores_error_shapes() {
        let jaeger = br#"{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":404,"msg":"trace not found"}]}"#;
        assert_eq!(server_message(jaeger), "trace not found");
        let v3 = br#"{"error":{"httpCode":404,"message":"No traces found"}}"#;
        assert_eq!(server_message(v3), "No traces found");
        assert_eq!(server_message(b"0af7 not found\n"), "0af7 not found\n");
    }
}
