//! What a search asks for ([`Search`]) and how its traces arrive ([`Traces`]).
//!
//! A search names what every store understands: a service, an operation, tags, a trace
//! duration range, a time window and a number of traces. Each store turns it into its own
//! query parameters. [`Traces`] hands the traces over one at a time, so a consumer that
//! analyzes each trace as it arrives holds one trace, not the result set.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use futures_util::{FutureExt as _, Stream, StreamExt as _};
use lightstep_analysis::Trace;
use tokio::sync::mpsc;

use crate::Error;

/// How far back a search looks when it names no start.
pub const DEFAULT_LOOKBACK: Duration = Duration::from_secs(3600);

/// How many traces a search asks for when it names no limit.
pub const DEFAULT_LIMIT: usize = 20;

/// A search for traces: the criteria every store understands.
///
/// ```
/// use std::time::Duration;
/// use lightstep_query::Search;
///
/// let search = Search::new()
///     .with_service("checkout")
///     .with_operation("POST /orders")
///     .with_tag("http.response.status_code", "500")
///     .with_min_duration(Duration::from_millis(250))
///     .with_lookback(Duration::from_secs(2 * 3600))
///     .with_limit(100);
/// assert_eq!(search.limit, 100);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Search {
    /// Traces with a span of this service (Jaeger needs one).
    pub service: Option<String>,
    /// Traces with a span of this operation (span name).
    pub operation: Option<String>,
    /// Traces with a span carrying each of these attributes (tags).
    pub tags: Vec<(String, String)>,
    /// Tempo only: a TraceQL query, instead of the service, operation, tags and durations.
    pub traceql: Option<String>,
    /// Traces at least this long.
    pub min_duration: Option<Duration>,
    /// Traces at most this long.
    pub max_duration: Option<Duration>,
    /// Traces that started at or after this time.
    pub since: Option<SystemTime>,
    /// Traces that started before this time (default: now).
    pub until: Option<SystemTime>,
    /// Instead of `since`: this long before `until` (default: [`DEFAULT_LOOKBACK`]).
    pub lookback: Option<Duration>,
    /// How many traces to ask for (default: [`DEFAULT_LIMIT`]).
    pub limit: usize,
}

impl Default for Search {
    fn default() -> Self {
        Self {
            service: None,
            operation: None,
            tags: Vec::new(),
            traceql: None,
            min_duration: None,
            max_duration: None,
            since: None,
            until: None,
            lookback: None,
            limit: DEFAULT_LIMIT,
        }
    }
}

impl Search {
    /// A search for the most recent [`DEFAULT_LIMIT`] traces of the last hour.
    pub fn new() -> Self {
        Self::default()
    }

    /// Traces with a span of this service.
    pub fn with_service(mut self, service: impl Into<String>) -> Self {
        self.service = Some(service.into());
        self
    }

    /// Traces with a span of this operation.
    pub fn with_operation(mut self, operation: impl Into<String>) -> Self {
        self.operation = Some(operation.into());
        self
    }

    /// Traces with a span carrying this attribute (repeat for several; all must match).
    pub fn with_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.push((key.into(), value.into()));
        self
    }

    /// Tempo only: a TraceQL query (`{ status = error }`).
    pub fn with_traceql(mut self, query: impl Into<String>) -> Self {
        self.traceql = Some(query.into());
        self
    }

    /// Traces at least this long.
    pub fn with_min_duration(mut self, duration: Duration) -> Self {
        self.min_duration = Some(duration);
        self
    }

    /// Traces at most this long.
    pub fn with_max_duration(mut self, duration: Duration) -> Self {
        self.max_duration = Some(duration);
        self
    }

    /// Traces that started at or after `since`.
    pub fn with_since(mut self, since: SystemTime) -> Self {
        self.since = Some(since);
        self
    }

    /// Traces that started before `until`.
    pub fn with_until(mut self, until: SystemTime) -> Self {
        self.until = Some(until);
        self
    }

    /// Traces that started this long before `until` (or now) at most.
    pub fn with_lookback(mut self, lookback: Duration) -> Self {
        self.lookback = Some(lookback);
        self
    }

    /// How many traces to ask for.
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Checks that the parts fit together and resolves the window against `now`: the start
    /// and the end of the search.
    pub(crate) fn window(&self, store: &str, now: SystemTime) -> Result<Window, Error> {
        let invalid = |reason: String| Error::InvalidSearch {
            store: store.to_owned(),
            reason,
        };
        if self.since.is_some() && self.lookback.is_some() {
            return Err(invalid("give a start or a lookback, not both".into()));
        }
        if self.limit == 0 {
            return Err(invalid("the limit must be at least 1".into()));
        }
        if let (Some(min), Some(max)) = (self.min_duration, self.max_duration)
            && min > max
        {
            return Err(invalid(
                "the minimum duration is longer than the maximum".into(),
            ));
        }
        let end = self.until.unwrap_or(now);
        let start = match self.since {
            Some(since) => since,
            None => end
                .checked_sub(self.lookback.unwrap_or(DEFAULT_LOOKBACK))
                .unwrap_or(SystemTime::UNIX_EPOCH),
        };
        if start >= end {
            return Err(invalid("the start is not before the end".into()));
        }
        if start < SystemTime::UNIX_EPOCH {
            return Err(invalid("the start is before 1970".into()));
        }
        Ok(Window { start, end })
    }

    /// [`window`](Self::window), for a store searched by service, operation and tags
    /// (`shown`, as messages name it), which refuses a TraceQL query.
    pub(crate) fn window_without_traceql(
        &self,
        store: &str,
        shown: &str,
        now: SystemTime,
    ) -> Result<Window, Error> {
        let window = self.window(store, now)?;
        if self.traceql.is_some() {
            return Err(Error::InvalidSearch {
                store: store.to_owned(),
                reason: format!(
                    "TraceQL is Tempo's; search {shown} by service, operation and tags"
                ),
            });
        }
        Ok(window)
    }
}

/// A search's time window, resolved.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    pub(crate) start: SystemTime,
    pub(crate) end: SystemTime,
}

impl Window {
    pub(crate) fn start_since_epoch(&self) -> Duration {
        self.start
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
    }

    pub(crate) fn end_since_epoch(&self) -> Duration {
        self.end
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
    }
}

/// A duration as Go's `time.ParseDuration` reads it (Jaeger and Tempo take these).
pub(crate) fn go_duration(duration: Duration) -> String {
    format!("{}ns", duration.as_nanos())
}

/// The traces of a search, or of several ids, one at a time as they arrive.
///
/// Use [`Traces::next`] (or it as a [`Stream`]). Dropping it stops the work behind it: the
/// requests in flight are cancelled.
pub struct Traces {
    inner: Pin<Box<dyn Stream<Item = Result<Trace, Error>> + Send>>,
}

impl Traces {
    /// Wraps any stream of traces, for a [`crate::TraceSource`] of your own.
    pub fn from_stream(stream: impl Stream<Item = Result<Trace, Error>> + Send + 'static) -> Self {
        Self {
            inner: Box::pin(stream),
        }
    }

    /// No traces.
    pub fn empty() -> Self {
        Self::from_stream(futures_util::stream::empty())
    }

    /// One error.
    pub(crate) fn failed(error: Error) -> Self {
        Self::from_stream(futures_util::stream::once(async move { Err(error) }))
    }

    /// The traces of a search that is first prepared by `search` (which may ask the store for
    /// ids), run when the stream is first polled; its error is the stream's only item.
    pub(crate) fn later(
        search: impl Future<Output = Result<Traces, Error>> + Send + 'static,
    ) -> Self {
        Self::from_stream(
            futures_util::stream::once(search).flat_map(|outcome| match outcome {
                Ok(traces) => traces,
                Err(error) => Traces::failed(error),
            }),
        )
    }

    /// The traces that `producer` sends, produced while the consumer reads (no task is
    /// spawned: the work runs when the stream is polled, and stops when it is dropped). The
    /// channel holds `capacity` traces ahead of the consumer. An error that ends the producer
    /// comes last.
    pub(crate) fn produced<F>(
        capacity: usize,
        producer: impl FnOnce(mpsc::Sender<Result<Trace, Error>>) -> F,
    ) -> Self
    where
        F: Future<Output = Result<(), Error>> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let errors = tx.clone();
        let work = producer(tx);
        // The producer's own error goes through the channel, after what it sent.
        let work = async move {
            if let Err(error) = work.await {
                let _ = errors.send(Err(error)).await;
            }
        };
        let received = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        let work = work.into_stream().filter_map(|()| async { None });
        Self::from_stream(futures_util::stream::select(work, received))
    }

    /// The next trace, or `None` when there are no more.
    pub async fn next(&mut self) -> Option<Result<Trace, Error>> {
        self.inner.next().await
    }
}

impl Stream for Traces {
    type Item = Result<Trace, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl fmt::Debug for Traces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Traces").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_defaults_to_the_last_hour_and_refuses_contradictions() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let window = Search::new().window("jaeger", now).unwrap();
        assert_eq!(window.end, now);
        assert_eq!(window.start, now - DEFAULT_LOOKBACK);

        let both = Search::new()
            .with_since(now - Duration::from_secs(60))
            .with_lookback(Duration::from_secs(60));
        let err = both.window("jaeger", now).unwrap_err().to_string();
        assert!(err.contains("a start or a lookback, not both"), "{err}");

        let reversed = Search::new()
            .with_since(now)
            .with_until(now - Duration::from_secs(1));
        let err = reversed.window("zipkin", now).unwrap_err().to_string();
        assert_eq!(
            err,
            "zipkin: invalid search: the start is not before the end"
        );

        let durations = Search::new()
            .with_min_duration(Duration::from_secs(2))
            .with_max_duration(Duration::from_secs(1));
        assert!(durations.window("tempo", now).is_err());
        assert!(Search::new().with_limit(0).window("tempo", now).is_err());
    }

    #[test]
    fn go_durations_are_exact() {
        assert_eq!(go_duration(Duration::from_micros(1500)), "1500000ns");
    }
}
