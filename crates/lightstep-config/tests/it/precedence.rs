//! defaults < file < environment < code, specific beats generic, and the spec's service.name rule.

use std::time::Duration;

use lightstep_config::{EnvSnapshot, LightstepConfig, Setting, Source};

use crate::{build_ok, local};

fn file(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let path = dir.path().join("lightstep.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn file_beats_default_env_beats_file_code_beats_env() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(
        &dir,
        "timeout = \"1s\"\nservice_name = \"from-file\"\nservice_version = \"f\"\ncompression = \"gzip\"\n",
    );
    let c = build_ok(
        local(&[
            ("OTEL_SERVICE_NAME", "from-env"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2000"),
        ])
        .with_file(&path)
        .with_timeout(Duration::from_secs(3)),
    );
    assert_eq!(c.timeout(), Duration::from_secs(3));
    assert_eq!(
        c.source_of(Setting::Timeout),
        Some(&Source::Code {
            setter: "with_timeout"
        })
    );
    assert_eq!(c.service_name(), "from-env");
    assert_eq!(
        c.source_of(Setting::ServiceName),
        Some(&Source::Env {
            var: "OTEL_SERVICE_NAME".into()
        })
    );
    assert_eq!(c.service_version(), "f");
    assert_eq!(
        c.source_of(Setting::ServiceVersion),
        Some(&Source::File {
            path: path.clone(),
            key: "service_version".into()
        })
    );
    assert_eq!(c.source_of(Setting::MaxQueueSize), Some(&Source::Default));
}

#[test]
fn config_file_from_the_environment_and_code_wins() {
    let dir = tempfile::tempdir().unwrap();
    let a = file(&dir, "service_name = \"a\"\n");
    let b = dir.path().join("b.yaml");
    std::fs::write(&b, "service_name: b\n").unwrap();
    let c = build_ok(local(&[("LIGHTSTEP_CONFIG_FILE", a.to_str().unwrap())]));
    assert_eq!(c.service_name(), "a");
    assert_eq!(c.config_file(), Some(a.as_path()));
    let c = build_ok(local(&[("LIGHTSTEP_CONFIG_FILE", a.to_str().unwrap())]).with_file(&b));
    assert_eq!(c.service_name(), "b");
}

#[test]
fn specific_variable_beats_generic() {
    let c = build_ok(local(&[
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://localhost:1111",
        ),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:2222"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "1000"),
        ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2000"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_INSECURE", "false"),
        ("OTEL_EXPORTER_OTLP_TRACES_INSECURE", "true"),
    ]));
    assert_eq!(c.traces_endpoint().port(), 1111);
    assert_eq!(c.timeout(), Duration::from_secs(2));
    assert_eq!(c.protocol().as_str(), "grpc");
    assert!(c.tls().insecure);
    // Two values for one setting from different-specificity variables are no conflict.
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
}

#[test]
fn code_generic_endpoint_beats_environment_specific_one() {
    let c = build_ok(
        local(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://localhost:1111",
        )])
        .with_otlp_endpoint("http://localhost:3333"),
    );
    assert_eq!(c.traces_endpoint().port(), 3333);
}

#[test]
fn otel_service_name_beats_resource_attribute() {
    let c = build_ok(local(&[
        ("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs"),
        ("OTEL_SERVICE_NAME", "from-var"),
    ]));
    assert_eq!(c.service_name(), "from-var");
    let c = build_ok(local(&[(
        "OTEL_RESOURCE_ATTRIBUTES",
        "service.name=from-attrs",
    )]));
    assert_eq!(c.service_name(), "from-attrs");
    assert_eq!(
        c.source_of(Setting::ServiceName),
        Some(&Source::Env {
            var: "OTEL_RESOURCE_ATTRIBUTES".into()
        })
    );
}

#[test]
fn disagreeing_names_for_one_setting_warn_and_the_documented_one_wins() {
    let c = build_ok(local(&[
        ("LIGHTSTEP_ACCESS_TOKEN", "one-secret"),
        ("LS_ACCESS_TOKEN", "two-secret"),
    ]));
    assert_eq!(c.access_token().unwrap().expose_secret(), "one-secret");
    let warning = c
        .warnings()
        .iter()
        .find(|w| w.message().contains("access_token"))
        .expect("a warning");
    assert!(
        warning.message().contains("LIGHTSTEP_ACCESS_TOKEN")
            && warning.message().contains("LS_ACCESS_TOKEN")
    );
    assert!(
        !warning.message().contains("secret"),
        "token values never appear: {warning}"
    );

    let c = build_ok(local(&[
        ("OTEL_SERVICE_NAME", "a"),
        ("LS_SERVICE_NAME", "b"),
    ]));
    assert_eq!(c.service_name(), "a");
    assert!(
        c.warnings()
            .iter()
            .any(|w| w.message().contains("LS_SERVICE_NAME"))
    );

    let c = build_ok(local(&[
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://localhost:1"),
        ("OTEL_EXPORTER_OTLP_SPAN_ENDPOINT", "http://localhost:2"),
    ]));
    assert_eq!(c.traces_endpoint().port(), 1);
    assert!(
        c.warnings()
            .iter()
            .any(|w| w.message().contains("OTEL_EXPORTER_OTLP_SPAN_ENDPOINT"))
    );
}

#[test]
fn token_set_in_code_beats_the_environment_header() {
    // The trap in opentelemetry-otlp: a header from the environment overrides the one set in
    // code. Here code wins, and what the configuration reports is what will be sent.
    let c = build_ok(
        local(&[(
            "OTEL_EXPORTER_OTLP_HEADERS",
            "lightstep-access-token=env-token",
        )])
        .with_access_token("code-token"),
    );
    assert_eq!(c.access_token().unwrap().expose_secret(), "code-token");
    assert_eq!(
        c.source_of(Setting::AccessToken),
        Some(&Source::Code {
            setter: "with_access_token"
        })
    );
    assert!(
        c.headers()
            .iter()
            .all(|h| h.name != "lightstep-access-token")
    );
    // The dedicated variable beats the generic header.
    let c = build_ok(local(&[
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "lightstep-access-token=env-header",
        ),
        ("LS_ACCESS_TOKEN", "env-var"),
    ]));
    assert_eq!(c.access_token().unwrap().expose_secret(), "env-var");
}

#[test]
fn headers_and_attributes_merge_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(
        &dir,
        "[headers]\nx-a = \"file\"\nx-b = \"file\"\n[resource_attributes]\nteam = \"file\"\nzone = \"file\"\n",
    );
    let c = build_ok(
        local(&[
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-b=env,x-c=env"),
            ("OTEL_RESOURCE_ATTRIBUTES", "zone=env"),
        ])
        .with_file(&path)
        .with_header("X-C", "code")
        .with_resource_attribute("extra", "code"),
    );
    let headers: Vec<_> = c
        .headers()
        .iter()
        .map(|h| (h.name.as_str(), h.value.expose_secret()))
        .collect();
    assert_eq!(headers, [("x-a", "file"), ("x-b", "env"), ("x-c", "code")]);
    assert_eq!(
        c.resource_attributes(),
        [
            ("extra".into(), "code".into()),
            ("team".into(), "file".into()),
            ("zone".into(), "env".into())
        ]
    );
    assert_eq!(
        c.source_of_entry(Setting::Headers, "x-c"),
        Some(&Source::Code {
            setter: "with_header"
        })
    );
}

#[test]
fn default_never_reads_the_environment() {
    let c = LightstepConfig::default();
    assert_eq!(c.service_name(), "rust-service");
    assert!(c.access_token().is_none());
    // And an empty snapshot is as good as no environment.
    let e = LightstepConfig::builder()
        .with_env(EnvSnapshot::empty())
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("no access token"), "{e}");
}

#[test]
fn a_default_service_name_in_code_yields_to_the_environment_and_the_file() {
    let c = build_ok(local(&[]).with_default_service_name("my-app"));
    assert_eq!(c.service_name(), "my-app");
    assert_eq!(
        c.source_of(Setting::ServiceName),
        Some(&Source::Code {
            setter: "with_default_service_name"
        })
    );
    let c = build_ok(
        local(&[("OTEL_SERVICE_NAME", "deployed-name")]).with_default_service_name("my-app"),
    );
    assert_eq!(c.service_name(), "deployed-name");
    let dir = tempfile::tempdir().unwrap();
    let path = file(&dir, "service_name = \"from-file\"\n");
    let c = build_ok(
        local(&[])
            .with_file(&path)
            .with_default_service_name("my-app"),
    );
    assert_eq!(c.service_name(), "from-file");
}

#[test]
fn missing_token_says_whether_anything_named_the_endpoint() {
    use lightstep_config::ConfigError;
    let e = crate::build_err(crate::env(&[]));
    assert!(
        matches!(
            e,
            ConfigError::MissingToken {
                endpoint_source: Source::Default,
                ..
            }
        ),
        "{e}"
    );
    let e = crate::build_err(crate::env(&[(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "ingest.lightstep.com:443",
    )]));
    assert!(
        matches!(
            e,
            ConfigError::MissingToken {
                endpoint_source: Source::Env { .. },
                ..
            }
        ),
        "{e}"
    );
}
