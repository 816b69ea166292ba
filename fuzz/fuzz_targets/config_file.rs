//! The configuration file parser on arbitrary bytes: the first byte picks the format (TOML, YAML,
//! JSON), the rest is the file. No input may panic, and the token written into the file must
//! never appear in an error or a Debug print.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use lightstep_config::{EnvSnapshot, LightstepConfig};

const MARK: &str = "TOKENMARK7f3a";

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let extension = ["toml", "yaml", "json"][usize::from(selector % 3)];
    let mut file = tempfile::Builder::new()
        .suffix(&format!(".{extension}"))
        .tempfile()
        .expect("temp file");
    file.write_all(rest).expect("write");
    // Also a file that holds the token next to the fuzzed bytes.
    let mut with_token = tempfile::Builder::new()
        .suffix(&format!(".{extension}"))
        .tempfile()
        .expect("temp file");
    let prefix = match extension {
        "toml" => format!("access_token = \"{MARK}\"\n"),
        "yaml" => format!("access_token: \"{MARK}\"\n"),
        _ => format!("{{\"access_token\": \"{MARK}\", "),
    };
    with_token.write_all(prefix.as_bytes()).expect("write");
    with_token.write_all(rest).expect("write");
    for path in [file.path(), with_token.path()] {
        let result = LightstepConfig::builder()
            .with_env(
                EnvSnapshot::empty().with("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4317"),
            )
            .with_file(path)
            .build();
        let text = match &result {
            Ok(config) => format!("{config:?}{}", config.effective()),
            Err(e) => format!("{e}{e:?}"),
        };
        assert!(!text.contains(MARK), "the token leaked: {text}");
    }
});
