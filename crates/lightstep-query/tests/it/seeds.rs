//! The seeds of the fuzz targets `query_trace` and `query_search` (fuzz/seeds/): each is an
//! answer of the shape its first byte names, read whole as the source would, and the search
//! answers read the same in pieces of any size.

use std::path::{Path, PathBuf};

use lightstep_query::bench_support::{Answer, Found, SEARCH_ANSWERS, TRACE_ANSWERS, read};

fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target);
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_trace_seed_is_a_trace_of_its_store() {
    let mut answers: Vec<Answer> = Vec::new();
    for (path, data) in seeds("query_trace") {
        let answer = TRACE_ANSWERS[usize::from(data[0]) % TRACE_ANSWERS.len()];
        answers.push(answer);
        let body = &data[1..];
        match read(answer, body, body.len(), u64::MAX) {
            Ok(Found::Trace(Some(trace))) => {
                assert!(!trace.spans.is_empty(), "{}: {trace:?}", path.display());
            }
            other => panic!("{} as {answer:?}: {other:?}", path.display()),
        }
    }
    for answer in TRACE_ANSWERS {
        assert!(answers.contains(&answer), "no seed for {answer:?}");
    }
}

#[test]
fn every_search_seed_reads_the_same_in_pieces() {
    let mut answers: Vec<Answer> = Vec::new();
    for (path, data) in seeds("query_search") {
        let answer = SEARCH_ANSWERS[usize::from(data[0]) % SEARCH_ANSWERS.len()];
        answers.push(answer);
        let body = &data[3..];
        let whole = read(answer, body, body.len(), u64::MAX);
        let shown = |found: &Found| match found {
            Found::Traces(traces) => traces
                .iter()
                .map(|t| format!("{}:{}", t.trace_id, t.spans.len()))
                .collect::<Vec<_>>(),
            Found::Ids(ids) => ids.clone(),
            Found::Trace(_) => panic!("{}: a search answer read as one trace", path.display()),
        };
        let expected = match &whole {
            Ok(found) => shown(found),
            Err(e) => panic!("{} as {answer:?}: {e}", path.display()),
        };
        assert!(!expected.is_empty(), "{}: {expected:?}", path.display());
        for piece in [1, 2, 3, 7, 64, 4096] {
            let again = read(answer, body, piece, u64::MAX)
                .unwrap_or_else(|e| panic!("{} in pieces of {piece}: {e}", path.display()));
            assert_eq!(
                shown(&again),
                expected,
                "{} in pieces of {piece}",
                path.display()
            );
        }
        if matches!(answer, Answer::JaegerSearch | Answer::ZipkinSearch) {
            // Two traces, and the bound on the bytes of one of them.
            assert_eq!(expected.len(), 2, "{}", path.display());
            let error = read(answer, body, 7, 100).unwrap_err().to_string();
            assert!(
                error.contains("one trace of the answer") && error.contains("100"),
                "{error}"
            );
        }
    }
    for answer in SEARCH_ANSWERS {
        assert!(answers.contains(&answer), "no seed for {answer:?}");
    }
}
