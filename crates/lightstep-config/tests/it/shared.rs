//! An environment shared with services in other languages: a value the OpenTelemetry
//! specification defines that lightstep-rs does not implement is a warning and the
//! specification's fallback; a value that is no valid value at all stays an error naming where
//! it came from.

use lightstep_config::{Sampler, Setting, Source, TracesExporter};

use crate::{build_err, build_ok, local, warning_messages};

/// The one warning of `messages` that mentions `needle`.
fn warning_about<'a>(messages: &'a [String], needle: &str) -> &'a str {
    let found: Vec<&String> = messages.iter().filter(|m| m.contains(needle)).collect();
    assert_eq!(found.len(), 1, "one warning about {needle} in {messages:?}");
    found[0]
}

#[test]
fn a_sampler_of_the_specification_falls_back_to_the_default_with_a_warning() {
    for name in ["jaeger_remote", "parentbased_jaeger_remote", "xray"] {
        let config = build_ok(local(&[
            ("OTEL_TRACES_SAMPLER", name),
            // jaeger_remote's argument is a list of its own settings, not a ratio: no error.
            (
                "OTEL_TRACES_SAMPLER_ARG",
                "endpoint=http://localhost:14250,pollingIntervalMs=5000,initialSamplingRate=0.25",
            ),
        ]));
        assert_eq!(config.sampler(), Sampler::ParentBasedAlwaysOn, "{name}");
        assert_eq!(
            config.source_of(Setting::SamplerName),
            Some(&Source::Default)
        );
        let messages = warning_messages(&config);
        let warning = warning_about(&messages, "`OTEL_TRACES_SAMPLER`");
        assert!(
            warning.contains(&format!("`{name}`"))
                && warning.contains("does not support")
                && warning.contains("the default `parentbased_always_on` is used")
                && warning.contains("`OTEL_TRACES_SAMPLER_ARG` is ignored"),
            "{warning}"
        );
    }
}

#[test]
fn a_sampler_of_the_specification_in_a_file_names_the_file_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.toml");
    std::fs::write(&path, "[sampler]\nname = \"xray\"\n").unwrap();
    let config = build_ok(local(&[]).with_file(&path));
    assert_eq!(config.sampler(), Sampler::ParentBasedAlwaysOn);
    let messages = warning_messages(&config);
    let warning = warning_about(&messages, "`xray`");
    assert!(
        warning.contains("key `sampler.name` in file") && !warning.contains("SAMPLER_ARG"),
        "{warning}"
    );
}

#[test]
fn an_exporter_of_the_specification_is_skipped_with_a_warning() {
    // Alone: the setting is ignored, and the default OTLP is used.
    for name in [
        "zipkin",
        "console",
        "logging",
        "jaeger",
        "otlp/stdout",
        "Zipkin",
    ] {
        let config = build_ok(local(&[("OTEL_TRACES_EXPORTER", name)]));
        assert_eq!(config.traces_exporter(), TracesExporter::Otlp, "{name}");
        assert!(config.exports());
        assert_eq!(
            config.source_of(Setting::TracesExporter),
            Some(&Source::Default)
        );
        let messages = warning_messages(&config);
        let warning = warning_about(&messages, "`OTEL_TRACES_EXPORTER`");
        assert!(
            warning.contains(&format!("`{}`", name.to_ascii_lowercase()))
                && warning.contains("an exporter that the OpenTelemetry specification defines")
                && warning.contains("the default `otlp` is used"),
            "{warning}"
        );
    }
    // In a list: skipped, and the others are used.
    let config = build_ok(local(&[("OTEL_TRACES_EXPORTER", "console, otlp,zipkin")]));
    assert_eq!(config.traces_exporter(), TracesExporter::Otlp);
    assert_eq!(
        config.source_of(Setting::TracesExporter),
        Some(&Source::Env {
            var: "OTEL_TRACES_EXPORTER".into()
        })
    );
    let messages = warning_messages(&config);
    let warning = warning_about(&messages, "`OTEL_TRACES_EXPORTER`");
    assert!(
        warning.contains("`console`, `zipkin`, exporters that")
            && warning.contains("skipped, and `otlp` is used"),
        "{warning}"
    );
}

#[test]
fn values_that_are_no_valid_value_at_all_stay_errors_naming_the_variable() {
    for (var, value) in [
        ("OTEL_PROPAGATORS", "unknownthing"),
        ("OTEL_PROPAGATORS", "tracecontext,unknownthing"),
        ("OTEL_TRACES_SAMPLER", "jaeger_remotely"),
        ("OTEL_TRACES_EXPORTER", "otlp,unknownthing"),
        ("OTEL_TRACES_EXPORTER", "zipkin,none"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/thrift"),
    ] {
        let message = build_err(local(&[(var, value)])).to_string();
        assert!(
            message.contains(&format!("environment variable `{var}`")) && message.contains(value),
            "{var}={value}: {message}"
        );
    }
}
