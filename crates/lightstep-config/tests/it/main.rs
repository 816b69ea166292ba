//! Integration tests of lightstep-config: every variable, every precedence rule, the three file
//! formats, every validation error, the secrecy of the token, environments shared with other
//! OpenTelemetry SDKs, and the settings table's promises.

mod errors;
mod files;
mod precedence;
mod secrets;
mod settings;
mod shared;
mod variables;

use lightstep_config::{ConfigBuilder, ConfigError, EnvSnapshot, LightstepConfig};

/// A builder reading only `vars` (never the process environment), sending to a local Collector
/// so that the Lightstep token rule does not get in the way unless a test wants it.
pub(crate) fn local(vars: &[(&str, &str)]) -> ConfigBuilder {
    let mut env = EnvSnapshot::empty().with("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4317");
    for (k, v) in vars {
        env.set(*k, *v);
    }
    LightstepConfig::builder().with_env(env)
}

/// A builder reading exactly `vars`.
pub(crate) fn env(vars: &[(&str, &str)]) -> ConfigBuilder {
    LightstepConfig::builder().with_env(vars.iter().copied().collect())
}

pub(crate) fn build_ok(builder: ConfigBuilder) -> LightstepConfig {
    match builder.build() {
        Ok(config) => config,
        Err(e) => panic!("expected a valid configuration, got: {e}"),
    }
}

/// The text of each of `config`'s warnings.
pub(crate) fn warning_messages(config: &LightstepConfig) -> Vec<String> {
    config
        .warnings()
        .iter()
        .map(|w| w.message().to_owned())
        .collect()
}

pub(crate) fn build_err(builder: ConfigBuilder) -> ConfigError {
    match builder.build() {
        Ok(config) => panic!("expected an error, got {config:?}"),
        Err(e) => e,
    }
}
