//! [`TraceSource`], what every store implements, and [`TraceStore`], one of the built-in
//! stores chosen at run time.
//!
//! A trait, so that an application can put a store of its own (or a cache) behind
//! [`crate::LightstepPerformance`]; an enum beside it, so that a command line or a server
//! that learns which store to use from its arguments needs neither generics nor boxing (see
//! docs/adr/600-trace-sources.md).

use futures_util::StreamExt as _;
use lightstep_analysis::{Trace, TraceId};

use crate::{Error, Jaeger, Search, Tempo, Traces, Zipkin};

/// A place traces can be read from: by id, or by a search.
///
/// Implementations hand each trace over whole and bounded (a trace larger than the limit is
/// an error), and a search's traces one at a time, never the whole result set at once.
pub trait TraceSource: Send + Sync {
    /// Names the source in messages: the store and its base URL, without secrets.
    fn name(&self) -> String;

    /// The trace with this id (1 to 32 hex digits). A store that does not hold it answers
    /// [`Error::TraceNotFound`].
    fn fetch(&self, trace_id: &str) -> impl Future<Output = Result<Trace, Error>> + Send;

    /// The traces a search finds, as they arrive.
    fn search(&self, search: &Search) -> Traces;

    /// How many requests this source keeps in flight at once.
    fn concurrency(&self) -> usize {
        crate::DEFAULT_CONCURRENCY
    }

    /// The traces with these ids, in the order given, up to [`concurrency`](Self::concurrency)
    /// fetched at once. An id the store does not hold comes out as its error, in its place.
    fn fetch_each(&self, trace_ids: Vec<String>) -> Traces
    where
        Self: Clone + 'static,
    {
        let source = self.clone();
        let concurrency = self.concurrency().max(1);
        let fetches = futures_util::stream::iter(trace_ids).map(move |id| {
            let source = source.clone();
            async move { source.fetch(&id).await }
        });
        Traces::from_stream(fetches.buffered(concurrency))
    }
}

/// One of the built-in stores, chosen at run time.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum TraceStore {
    /// Jaeger's query API.
    Jaeger(Jaeger),
    /// Grafana Tempo's HTTP API.
    Tempo(Tempo),
    /// Zipkin's v2 API.
    Zipkin(Zipkin),
}

impl From<Jaeger> for TraceStore {
    fn from(source: Jaeger) -> Self {
        Self::Jaeger(source)
    }
}

impl From<Tempo> for TraceStore {
    fn from(source: Tempo) -> Self {
        Self::Tempo(source)
    }
}

impl From<Zipkin> for TraceStore {
    fn from(source: Zipkin) -> Self {
        Self::Zipkin(source)
    }
}

impl TraceSource for TraceStore {
    fn name(&self) -> String {
        match self {
            Self::Jaeger(s) => s.name(),
            Self::Tempo(s) => s.name(),
            Self::Zipkin(s) => s.name(),
        }
    }

    async fn fetch(&self, trace_id: &str) -> Result<Trace, Error> {
        match self {
            Self::Jaeger(s) => s.fetch(trace_id).await,
            Self::Tempo(s) => s.fetch(trace_id).await,
            Self::Zipkin(s) => s.fetch(trace_id).await,
        }
    }

    fn search(&self, search: &Search) -> Traces {
        match self {
            Self::Jaeger(s) => s.search(search),
            Self::Tempo(s) => s.search(search),
            Self::Zipkin(s) => s.search(search),
        }
    }

    fn concurrency(&self) -> usize {
        match self {
            Self::Jaeger(s) => s.concurrency(),
            Self::Tempo(s) => s.concurrency(),
            Self::Zipkin(s) => s.concurrency(),
        }
    }
}

/// A trace id as the stores take it in a path: 1 to 32 hex digits, lower case.
pub(crate) fn normalize_id(store: &str, id: &str) -> Result<String, Error> {
    let trimmed = id.trim();
    if trimmed.is_empty() || trimmed.len() > 32 || !trimmed.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::InvalidTraceId {
            store: store.to_owned(),
            id: lightstep_analysis::render::printable(id)
                .chars()
                .take(80)
                .collect(),
        });
    }
    Ok(trimmed.to_ascii_lowercase())
}

/// The trace asked for among what an answer holds: the one with its id, or the only one. An
/// answer with no span is a trace the store does not hold.
pub(crate) fn one_trace(traces: Vec<Trace>, id: &str) -> Option<Trace> {
    let wanted = TraceId::parse(id);
    let mut traces: Vec<Trace> = traces.into_iter().filter(|t| !t.spans.is_empty()).collect();
    let position = traces
        .iter()
        .position(|t| t.trace_id == wanted)
        .unwrap_or(0);
    (!traces.is_empty()).then(|| traces.swap_remove(position))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_are_hex_and_never_reach_a_path_otherwise() {
        assert_eq!(
            normalize_id("jaeger", " 0AF7651916CD43DD ").unwrap(),
            "0af7651916cd43dd"
        );
        for bad in [
            "",
            "xyz",
            "../../etc",
            "0af7651916cd43dd8448eb211c80319c0",
            "a b",
        ] {
            let err = normalize_id("jaeger", bad).unwrap_err().to_string();
            assert!(err.contains("expected 1 to 32 hex digits"), "{err}");
        }
        let err = normalize_id("jaeger", "\u{1b}[2J").unwrap_err().to_string();
        assert!(!err.contains('\u{1b}'), "{err}");
    }
}
