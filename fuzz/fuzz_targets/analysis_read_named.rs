#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use lightstep_analysis::read::{Format, read_traces};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let format = match selector % 4 {
        0 => Format::OtlpJson,
        1 => Format::OtlpProto,
        2 => Format::JaegerJson,
        _ => Format::ZipkinJson,
    };
    let _ = read_traces(input, "fuzz".as_ref(), Some(format), common::consume);
});
