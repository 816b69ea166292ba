#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use lightstep_analysis::read::read_traces;

fuzz_target!(|data: &[u8]| {
    // Errors are expected; panics, hangs and unbounded memory are the bugs.
    let _ = read_traces(data, "fuzz".as_ref(), None, common::consume);
});
