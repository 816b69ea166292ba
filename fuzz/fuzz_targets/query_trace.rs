//! A store's answer to a fetch by trace id, as each source reads it once the body has arrived:
//! Jaeger's `{"data": [...]}` and v3's `{"result": ...}`, Tempo's protobuf (v2's wrapper
//! unwrapped by hand) and jsonpb JSON (base64 ids converted), Zipkin's span list. The first byte
//! picks the answer, the rest is the body. No input may panic, and an error, which the command
//! line prints, holds no control character from the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lightstep_query::bench_support::{TRACE_ANSWERS, read};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let answer = TRACE_ANSWERS[usize::from(selector) % TRACE_ANSWERS.len()];
    if let Err(error) = read(answer, body, body.len(), u64::MAX) {
        let text = error.to_string();
        assert!(!text.chars().any(char::is_control), "{answer:?}: {text:?}");
    }
});
