//! Not API: what each source makes of a store's answer, without a network, for the fuzz
//! targets (`fuzz/fuzz_targets/query_*.rs`) and the tests of their seeds. It runs the code the
//! sources run once a body has arrived: the envelopes unwrapped, the readers, the search answers
//! read chunk by chunk with the bound on one trace, and the errors as a user sees them. May
//! change at any time.

use std::sync::OnceLock;

use bytes::Bytes;
use lightstep_analysis::Trace;
use lightstep_analysis::read::Format;
use tokio::sync::mpsc;
use url::Url;

use crate::http::Connection;
use crate::source::one_trace;
use crate::{Error, JaegerApi, SourceBuilder, TempoApi, Zipkin};

/// An answer of a store to one request, as the source that asked reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Jaeger's v1 trace by id: `{"data": [trace]}`.
    JaegerTrace,
    /// Jaeger's v3 trace by id: `{"result": {"resourceSpans": [...]}}`.
    JaegerV3Trace,
    /// Tempo's trace by id, as protobuf or as JSON (gogo jsonpb), from either API.
    TempoTrace {
        /// Which endpoint answered.
        api: TempoApi,
        /// Whether the answer said it was JSON.
        json: bool,
    },
    /// Zipkin's trace by id: an array of spans.
    ZipkinTrace,
    /// Jaeger's v1 search: `{"data": [trace, ...]}`, read as it streams in.
    JaegerSearch,
    /// Jaeger's v3 `trace-summaries`: trace ids.
    JaegerV3Summaries,
    /// Tempo's search: trace ids.
    TempoSearch,
    /// Zipkin's search: an array of traces (arrays of spans), read as it streams in.
    ZipkinSearch,
}

/// The answers to a fetch by trace id.
pub const TRACE_ANSWERS: [Answer; 7] = [
    Answer::JaegerTrace,
    Answer::JaegerV3Trace,
    Answer::TempoTrace {
        api: TempoApi::V1,
        json: false,
    },
    Answer::TempoTrace {
        api: TempoApi::V2,
        json: false,
    },
    Answer::TempoTrace {
        api: TempoApi::V1,
        json: true,
    },
    Answer::TempoTrace {
        api: TempoApi::V2,
        json: true,
    },
    Answer::ZipkinTrace,
];

/// The answers to a search.
pub const SEARCH_ANSWERS: [Answer; 4] = [
    Answer::JaegerSearch,
    Answer::JaegerV3Summaries,
    Answer::TempoSearch,
    Answer::ZipkinSearch,
];

/// What an answer held.
#[derive(Debug)]
pub enum Found {
    /// The trace asked for (`None`: the answer holds no span, which the source reports as a
    /// trace the store does not hold).
    Trace(Option<Trace>),
    /// The traces of a search answer that holds whole traces.
    Traces(Vec<Trace>),
    /// The trace ids of a search answer that holds ids.
    Ids(Vec<String>),
}

/// Reads `body` as the source that got `answer` does. Search answers that hold traces are fed to
/// the reader in pieces of `chunk` bytes (at least 1), and no trace of theirs may span more than
/// `limit` bytes; a trace fetched by id is parsed whole, as its body was read up to the limit.
pub fn read(answer: Answer, body: &[u8], chunk: usize, limit: u64) -> Result<Found, Error> {
    let connection = connection();
    let url = connection.url("/fuzz", &[]);
    let trace = |(format, prepare): (Format, crate::http::Prepare)| {
        let traces = connection.read_body(&url, body.to_vec(), format, prepare)?;
        Ok(Found::Trace(one_trace(traces, "0")))
    };
    match answer {
        Answer::JaegerTrace => trace(crate::jaeger::trace_answer(JaegerApi::V1)),
        Answer::JaegerV3Trace => trace(crate::jaeger::trace_answer(JaegerApi::V3)),
        Answer::TempoTrace { api, json } => trace(crate::tempo::trace_answer(api, json)),
        Answer::ZipkinTrace => trace((Format::ZipkinJson, Ok)),
        Answer::JaegerSearch => streamed(connection, &url, body, Format::JaegerJson, chunk, limit),
        Answer::ZipkinSearch => streamed(connection, &url, body, Format::ZipkinJson, chunk, limit),
        Answer::JaegerV3Summaries => {
            crate::jaeger::summary_ids(connection, &url, body).map(Found::Ids)
        }
        Answer::TempoSearch => crate::tempo::found_ids(connection, &url, body).map(Found::Ids),
    }
}

/// A search answer's body through the reader of streamed answers, in pieces as they would
/// arrive.
fn streamed(
    connection: &Connection,
    url: &Url,
    body: &[u8],
    format: Format,
    chunk: usize,
    limit: u64,
) -> Result<Found, Error> {
    let pieces: Vec<&[u8]> = body.chunks(chunk.max(1)).collect();
    let (tx, rx) = mpsc::channel(pieces.len().max(1));
    for piece in pieces {
        // The channel holds every piece: nothing waits.
        let _ = tx.try_send(Ok(Bytes::copy_from_slice(piece)));
    }
    drop(tx);
    let mut traces = Vec::new();
    connection.read_chunks(url, rx, format, limit, |trace| {
        traces.push(trace);
        Ok(())
    })?;
    Ok(Found::Traces(traces))
}

/// One connection for every answer (the store's name only shows in errors); made once, as it
/// loads the system's certificates.
fn connection() -> &'static Connection {
    static CONNECTION: OnceLock<Connection> = OnceLock::new();
    CONNECTION.get_or_init(|| {
        let settings = SourceBuilder::<Zipkin>::new("http://127.0.0.1:9").settings;
        Connection::new("store", settings).expect("the settings of a loopback store are valid")
    })
}
