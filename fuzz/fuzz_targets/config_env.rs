//! Every environment-value parser on arbitrary text: the input is split on NUL bytes and the
//! pieces are given, in order, to the variables lightstep-rs reads. No input may panic, and the
//! token must never appear in an error, a warning or a Debug print.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lightstep_config::{EnvSnapshot, LightstepConfig, Setting};

const MARK: &str = "TOKENMARK7f3a";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut env = EnvSnapshot::empty();
    let vars = Setting::ALL
        .iter()
        .filter(|s| **s != Setting::ConfigFile) // files have their own target
        .flat_map(|s| s.env_vars());
    for (var, value) in vars.zip(text.split('\0')) {
        env.set(var, value);
    }
    // The token, in the places a token can come from, next to whatever else was fuzzed.
    let token_var = ["LIGHTSTEP_ACCESS_TOKEN", "LS_ACCESS_TOKEN"][data.len() % 2];
    env.set(
        token_var,
        format!("{MARK}{}", text.split('\0').last().unwrap_or_default()),
    );
    let result = LightstepConfig::builder().with_env(env).build();
    let text = match &result {
        Ok(config) => format!("{config:?}{}{:?}", config.effective(), config.warnings()),
        Err(e) => format!("{e}{e:?}"),
    };
    assert!(!text.contains(MARK), "the token leaked: {text}");
});
