//! The explorer's lookup of a span's details in a large trace file, read again as a stream:
//! OTLP JSON (one document or JSON Lines), OTLP protobuf, Jaeger JSON and Zipkin JSON. The first
//! byte picks the format, the rest is the file. No input may panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lightstep_explorer::bench_support::{FORMATS, look_up};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let format = FORMATS[usize::from(selector) % FORMATS.len()];
    look_up(body, format);
});
