//! A store's answer to a search, as each source reads it: Jaeger's `{"data": [...]}` and
//! Zipkin's list of traces fed to the reader in pieces as they would arrive, with the bound on
//! the bytes of one trace; Jaeger v3's and Tempo's lists of trace ids. The first byte picks the
//! answer, the second the size of the pieces, the third the bound, the rest is the body. No
//! input may panic; where the pieces fall changes nothing that is read; an error holds no
//! control character from the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lightstep_query::bench_support::{Found, SEARCH_ANSWERS, read};

/// What a reading gave, to compare two readings of one body.
fn outcome(found: &Result<Found, lightstep_query::Error>) -> String {
    match found {
        Ok(Found::Traces(traces)) => traces
            .iter()
            .map(|t| format!("{}:{} ", t.trace_id, t.spans.len()))
            .collect(),
        Ok(other) => format!("{other:?}"),
        Err(error) => {
            let text = error.to_string();
            assert!(!text.chars().any(char::is_control), "{text:?}");
            text
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [selector, piece, bound, body @ ..] = data else {
        return;
    };
    let answer = SEARCH_ANSWERS[usize::from(*selector) % SEARCH_ANSWERS.len()];
    let piece = usize::from(*piece) + 1;
    let whole = read(answer, body, body.len(), u64::MAX);
    let in_pieces = read(answer, body, piece, u64::MAX);
    assert_eq!(
        outcome(&whole),
        outcome(&in_pieces),
        "{answer:?} read whole and in pieces of {piece} bytes"
    );
    // A bound from 64 bytes to 128 KiB: traces larger than it are an error, never a panic.
    let _ = outcome(&read(answer, body, piece, 64 << (bound % 12)));
});
