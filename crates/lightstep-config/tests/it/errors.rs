//! Every validation error, with its message.

use lightstep_config::{ConfigError, Sampler, Source};

use crate::{build_err, build_ok, env, local};

fn message(vars: &[(&str, &str)]) -> String {
    build_err(local(vars)).to_string()
}

#[test]
fn unparsable_numbers_durations_and_booleans() {
    assert_eq!(
        message(&[("OTEL_BSP_MAX_QUEUE_SIZE", "lots")]),
        "invalid value `lots` in environment variable `OTEL_BSP_MAX_QUEUE_SIZE`: expected a whole number such as `2048`"
    );
    assert_eq!(
        message(&[("OTEL_EXPORTER_OTLP_TIMEOUT", "soon")]),
        "invalid value `soon` in environment variable `OTEL_EXPORTER_OTLP_TIMEOUT`: expected milliseconds such as `10000`, or a duration with a unit such as `10s`"
    );
    assert_eq!(
        message(&[("OTEL_SDK_DISABLED", "yes")]),
        "invalid value `yes` in environment variable `OTEL_SDK_DISABLED`: expected `true` or `false`"
    );
    assert!(message(&[("OTEL_BSP_MAX_CONCURRENT_EXPORTS", "0")]).contains("at least 1"));
    assert!(
        message(&[("OTEL_SPAN_LINK_COUNT_LIMIT", "-1")]).contains("OTEL_SPAN_LINK_COUNT_LIMIT")
    );
}

#[test]
fn unknown_names() {
    assert!(
        message(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "thrift")])
            .contains("expected one of `grpc`, `http/protobuf`, `http/json`")
    );
    assert!(
        message(&[("OTEL_TRACES_SAMPLER", "sometimes")])
            .contains("`OTEL_TRACES_SAMPLER`: expected one of `always_on`")
    );
    assert!(message(&[("OTEL_PROPAGATORS", "tracecontext,w3c")]).contains("`w3c`"));
    assert!(message(&[("OTEL_PROPAGATORS", "none,b3")]).contains("`none` cannot be combined"));
    assert!(
        message(&[("OTEL_EXPORTER_OTLP_COMPRESSION", "zip")]).contains("expected `gzip` or `none`")
    );
    assert!(
        message(&[("OTEL_TRACES_EXPORTER", "stdout")])
            .contains("`OTEL_TRACES_EXPORTER`: expected `otlp` or `none`")
    );
    assert!(message(&[("LIGHTSTEP_REGION", "apac")]).contains("expected `us` or `eu`"));
}

#[test]
fn ratio_out_of_range() {
    assert_eq!(
        message(&[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "1.5")
        ]),
        "invalid value `1.5` in environment variable `OTEL_TRACES_SAMPLER_ARG`: expected a number from 0 to 1, such as `0.25`"
    );
    let e = build_err(local(&[]).with_sampler(Sampler::TraceIdRatio(-0.5)));
    assert!(
        e.to_string().contains("`ConfigBuilder::with_sampler`"),
        "{e}"
    );
}

#[test]
fn invalid_endpoints() {
    for bad in [
        "ftp://host:21",
        "http://",
        "https://user:pw@host:443",
        "not a url",
    ] {
        let e = build_err(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", bad)]));
        let text = e.to_string();
        assert!(
            text.contains("`OTEL_EXPORTER_OTLP_ENDPOINT`") && text.contains("expected a URL"),
            "{bad}: {text}"
        );
    }
}

#[test]
fn header_injection_is_refused() {
    let e = build_err(local(&[(
        "OTEL_EXPORTER_OTLP_HEADERS",
        "x-a=ok%0D%0AX-Evil: 1",
    )]));
    let text = e.to_string();
    assert!(
        text.contains("header `x-a`: a header value may not contain control characters"),
        "{text}"
    );
    assert!(
        !text.contains("X-Evil"),
        "the value is not repeated: {text}"
    );
    let e = build_err(local(&[]).with_header("x-b", "a\nb"));
    assert!(e.to_string().contains("control characters"), "{e}");
    let e = build_err(local(&[("OTEL_EXPORTER_OTLP_HEADERS", "bad name=1")]));
    assert!(e.to_string().contains("expected a header name"), "{e}");
    let e = build_err(local(&[("OTEL_EXPORTER_OTLP_HEADERS", "novalue")]));
    assert!(e.to_string().contains("entry 1 has no `=`"), "{e}");
}

#[test]
fn tls_files_must_exist_and_be_pem() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.pem");
    let e = build_err(local(&[(
        "OTEL_EXPORTER_OTLP_CERTIFICATE",
        missing.to_str().unwrap(),
    )]));
    assert!(
        e.to_string()
            .contains("environment variable `OTEL_EXPORTER_OTLP_CERTIFICATE` names")
            && e.to_string().contains("does not exist"),
        "{e}"
    );
    let text = dir.path().join("key.txt");
    std::fs::write(&text, "just text").unwrap();
    let e = build_err(local(&[]).with_client_identity(&text, &text));
    assert_eq!(e.errors().len(), 2, "{e}");
    assert!(e.to_string().contains("is not a PEM file"), "{e}");
    let pem = dir.path().join("c.pem");
    std::fs::write(&pem, "-----BEGIN CERTIFICATE-----\n").unwrap();
    let e = build_err(local(&[(
        "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
        pem.to_str().unwrap(),
    )]));
    assert!(e.to_string().contains("no client key is set"), "{e}");
}

#[test]
fn empty_service_name() {
    let e = build_err(local(&[]).with_service_name("  "));
    assert!(
        e.to_string().contains("expected a non-empty service name"),
        "{e}"
    );
}

#[test]
fn token_required_only_for_lightstep_public_ingest() {
    let e = build_err(env(&[]));
    assert!(
        matches!(e, ConfigError::MissingToken { ref host, .. } if host == "ingest.lightstep.com"),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with("no access token for Lightstep's public ingest"),
        "{e}"
    );
    let e = build_err(env(&[(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "https://ingest.eu.lightstep.com",
    )]));
    assert!(e.to_string().contains("ingest.eu.lightstep.com"), "{e}");
    // A Collector, a satellite, localhost: no token needed.
    build_ok(env(&[(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "https://collector.internal:4317",
    )]));
    build_ok(env(&[(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "http://localhost:8360",
    )]));
    // Tokens vary in length: any length is accepted.
    build_ok(env(&[("LS_ACCESS_TOKEN", "x")]));
    build_ok(env(&[("LS_ACCESS_TOKEN", &"j".repeat(900))]));
}

#[test]
fn plaintext_token_to_a_remote_host_needs_explicit_permission() {
    let e = build_err(env(&[
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://collector.internal:4317",
        ),
        ("LS_ACCESS_TOKEN", "t"),
    ]));
    let text = e.to_string();
    assert!(
        text.contains("the access token would travel in plaintext to `collector.internal`"),
        "{text}"
    );
    assert!(text.contains("OTEL_EXPORTER_OTLP_ENDPOINT"), "{text}");
    assert!(matches!(
        e,
        ConfigError::PlaintextSecrets {
            token: true,
            endpoint_source: Source::Env { .. },
            ..
        }
    ));
    build_ok(env(&[
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://collector.internal:4317",
        ),
        ("LS_ACCESS_TOKEN", "t"),
        ("OTEL_EXPORTER_OTLP_INSECURE", "true"),
    ]));
    build_ok(env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
        ("LS_ACCESS_TOKEN", "t"),
    ]));
    build_ok(env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://[::1]:4317"),
        ("LS_ACCESS_TOKEN", "t"),
    ]));
}

#[test]
fn every_header_value_is_a_secret_that_plaintext_needs_permission_for() {
    for (var, value, names) in [
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "authorization=Bearer%20s3cr3t-b34r3r",
            "the value of header `authorization`",
        ),
        (
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            "x-api-key=s3cr3t-k3y,dd-api-key=s3cr3t-dd",
            "the values of headers `dd-api-key`, `x-api-key`",
        ),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "x-honeycomb-team=s3cr3t-team",
            "the value of header `x-honeycomb-team`",
        ),
    ] {
        let e = build_err(env(&[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "http://collector.internal:4318",
            ),
            (var, value),
        ]));
        let text = e.to_string();
        assert!(
            text.contains(&format!(
                "{names} would travel in plaintext to `collector.internal`"
            )),
            "{var}: {text}"
        );
        assert!(!text.contains("s3cr3t"), "a header value was shown: {text}");
        assert!(!format!("{e:?}").contains("s3cr3t"), "{e:?}");
        // Explicit permission, TLS or loopback: accepted.
        for endpoint in [
            "https://collector.internal:4318",
            "http://127.0.0.1:4318",
            "http://[::1]:4318",
            "http://localhost:4318",
            "http://LOCALHOST:4318",
        ] {
            build_ok(env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
                (var, value),
            ]));
        }
        build_ok(env(&[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "http://collector.internal:4318",
            ),
            (var, value),
            ("OTEL_EXPORTER_OTLP_INSECURE", "true"),
        ]));
    }
    // With the token, both are named.
    let e = build_err(env(&[
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://collector.internal:4318",
        ),
        ("OTEL_EXPORTER_OTLP_HEADERS", "authorization=s3cr3t"),
        ("LS_ACCESS_TOKEN", "s3cr3t-token"),
    ]));
    assert!(
        e.to_string().contains(
            "the access token and the value of header `authorization` would travel in plaintext"
        ),
        "{e}"
    );
}

#[test]
fn only_exactly_localhost_or_a_loopback_address_counts_as_loopback() {
    // Names that end in localhost are resolved like any other name: they may lead anywhere.
    for host in [
        "evil.localhost",
        "localhost.evil.example",
        "localhost.",
        "127.0.0.1.nip.io",
    ] {
        let e = build_err(env(&[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                &format!("http://{host}:4317"),
            ),
            ("LS_ACCESS_TOKEN", "s3cr3t-token"),
        ]));
        assert!(
            matches!(e, ConfigError::PlaintextSecrets { token: true, .. }),
            "{host}: {e}"
        );
    }
    for host in ["localhost", "127.0.0.1", "127.1.2.3", "[::1]"] {
        build_ok(env(&[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                &format!("http://{host}:4317"),
            ),
            ("LS_ACCESS_TOKEN", "s3cr3t-token"),
        ]));
    }
}

#[test]
fn batch_larger_than_queue() {
    let e = build_err(local(&[
        ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "200"),
    ]));
    assert!(e.to_string().contains("the export batch size 200 (environment variable `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`) is larger than the queue size 100"), "{e}");
}

#[test]
fn zero_counts_set_in_code_are_refused() {
    let e = build_err(
        local(&[])
            .with_max_export_batch_size(0)
            .with_max_concurrent_exports(0),
    );
    let text = e.to_string();
    assert!(
        text.contains("batch.max_export_batch_size is 0 (")
            && text.contains("with_max_export_batch_size")
            && text.contains("it must be at least 1"),
        "{text}"
    );
    assert!(
        text.contains("batch.max_concurrent_exports is 0 (")
            && text.contains("with_max_concurrent_exports"),
        "{text}"
    );
    let e = build_err(local(&[]).with_max_queue_size(0));
    assert!(e.to_string().contains("batch.max_queue_size is 0 ("), "{e}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let e = build_err(local(&[
        ("OTEL_BSP_MAX_QUEUE_SIZE", "x"),
        ("OTEL_SDK_DISABLED", "maybe"),
        ("OTEL_TRACES_SAMPLER", "never"),
    ]));
    assert_eq!(e.errors().len(), 3, "{e}");
    assert!(
        e.to_string().starts_with("3 configuration errors: (1) "),
        "{e}"
    );
}

#[test]
fn messages_are_lowercase_without_trailing_period() {
    let e = build_err(local(&[
        ("OTEL_BSP_MAX_QUEUE_SIZE", "x"),
        ("OTEL_SDK_DISABLED", "maybe"),
    ]));
    for err in e.errors() {
        let text = err.to_string();
        assert!(text.chars().next().unwrap().is_lowercase(), "{text}");
        assert!(!text.ends_with('.'), "{text}");
    }
}

#[test]
fn durations_must_be_between_a_millisecond_and_a_day() {
    for (var, value) in [
        ("OTEL_BSP_SCHEDULE_DELAY", "0"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "0"),
        ("OTEL_BSP_EXPORT_TIMEOUT", "18446744073709551615s"),
        ("LIGHTSTEP_SHUTDOWN_TIMEOUT", "400days"),
    ] {
        let text = message(&[(var, value)]);
        assert!(
            text.contains(var) && text.contains("a duration from 1ms to 24h"),
            "{var}: {text}"
        );
    }
    let e = build_err(local(&[]).with_timeout(std::time::Duration::ZERO));
    assert!(
        e.to_string().contains("`ConfigBuilder::with_timeout`"),
        "{e}"
    );
}

#[cfg(unix)]
#[test]
fn tls_paths_must_be_regular_files() {
    let e = build_err(local(&[("OTEL_EXPORTER_OTLP_CERTIFICATE", "/dev/zero")]));
    assert!(e.to_string().contains("not a regular file"), "{e}");
}

#[test]
fn warnings_survive_an_error() {
    // The misspelt token variable is why the token is missing: the warning must not be lost
    // with the configuration.
    let (config, warnings) = env(&[("LS_ACESS_TOKEN", "secret-value")]).build_with_warnings();
    let error = config.expect_err("Lightstep's ingest without a token");
    assert!(error.to_string().contains("no access token"), "{error}");
    let messages: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        messages.iter().any(
            |m| m.contains("`LS_ACESS_TOKEN`") && m.contains("did you mean `LS_ACCESS_TOKEN`?")
        ),
        "{messages:?}"
    );
    assert!(!messages.iter().any(|m| m.contains("secret-value")));
    // On success they are the configuration's.
    let (config, warnings) = local(&[("LS_SERVCE_NAME", "x")]).build_with_warnings();
    assert_eq!(config.unwrap().warnings(), &warnings[..]);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
}
