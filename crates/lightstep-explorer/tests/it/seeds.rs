//! The seeds of the fuzz target `explorer_lookup` (fuzz/seeds/): each is a file of the format
//! its first byte names, in which the lookup finds the details of the spans of the trace.

use std::path::Path;

use lightstep_explorer::bench_support::{FORMATS, look_up};

#[test]
fn every_lookup_seed_finds_the_spans_of_its_trace() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/explorer_lookup");
    let mut formats = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let format = FORMATS[usize::from(data[0]) % FORMATS.len()];
        formats.push(format);
        // Two spans of the trace in each; Zipkin's also has the client half of the first.
        let expected = if format == lightstep_analysis::read::Format::ZipkinJson {
            3
        } else {
            2
        };
        assert_eq!(look_up(&data[1..], format), expected, "{}", path.display());
    }
    for format in FORMATS {
        assert!(formats.contains(&format), "no seed for {format:?}");
    }
}
