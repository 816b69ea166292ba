//! Each environment variable reaches its setting.

use std::time::Duration;

use lightstep_config::{
    Compression, Propagator, Protocol, Region, Sampler, Setting, Source, TracesExporter,
};

use crate::{build_err, build_ok, env, local, warning_messages};

#[test]
fn defaults_are_the_original_designs() {
    let c = build_ok(env(&[("LIGHTSTEP_ACCESS_TOKEN", "t")]));
    assert_eq!(
        c.traces_endpoint().as_str(),
        "https://ingest.lightstep.com/"
    );
    assert_eq!(c.traces_endpoint().port(), 443);
    assert!(c.traces_endpoint().is_tls());
    assert_eq!(c.service_name(), "rust-service");
    assert_eq!(c.service_version(), "1.0.0");
    assert_eq!(c.protocol(), Protocol::Grpc);
    assert_eq!(c.sampler(), Sampler::ParentBasedAlwaysOn);
    assert_eq!(
        c.propagators(),
        [Propagator::TraceContext, Propagator::Baggage]
    );
    assert_eq!(c.timeout(), Duration::from_secs(10));
    assert_eq!(c.batch().max_queue_size, 2048);
    assert_eq!(c.batch().max_export_batch_size, 512);
    assert_eq!(c.source_of(Setting::ServiceName), Some(&Source::Default));
}

#[test]
fn tokens() {
    let c = build_ok(env(&[("LIGHTSTEP_ACCESS_TOKEN", "seed-token")]));
    assert_eq!(c.access_token().unwrap().expose_secret(), "seed-token");
    let c = build_ok(env(&[("LS_ACCESS_TOKEN", "launcher-token")]));
    assert_eq!(c.access_token().unwrap().expose_secret(), "launcher-token");
    assert_eq!(
        c.source_of(Setting::AccessToken),
        Some(&Source::Env {
            var: "LS_ACCESS_TOKEN".into()
        })
    );
    // A token as a header, as the original design's docker-compose file sends it.
    let c = build_ok(env(&[(
        "OTEL_EXPORTER_OTLP_HEADERS",
        "lightstep-access-token=hdr-token",
    )]));
    assert_eq!(c.access_token().unwrap().expose_secret(), "hdr-token");
    assert!(c.headers().is_empty(), "the token is not sent twice");
}

#[test]
fn service_identity() {
    let c = build_ok(local(&[("OTEL_SERVICE_NAME", "checkout")]));
    assert_eq!(c.service_name(), "checkout");
    let c = build_ok(local(&[
        ("LS_SERVICE_NAME", "cart"),
        ("LS_SERVICE_VERSION", "2.3.4"),
    ]));
    assert_eq!(c.service_name(), "cart");
    assert_eq!(c.service_version(), "2.3.4");
}

#[test]
fn resource_attributes_are_percent_decoded() {
    let c = build_ok(local(&[(
        "OTEL_RESOURCE_ATTRIBUTES",
        "team=pay%20ments,service.version=9.9,deployment.environment.name=prod,region=eu%2Cwest",
    )]));
    assert_eq!(
        c.resource_attributes(),
        [
            ("region".into(), "eu,west".into()),
            ("team".into(), "pay ments".into())
        ]
    );
    assert_eq!(c.service_version(), "9.9");
    assert_eq!(c.deployment_environment(), Some("prod"));
}

#[test]
fn deprecated_deployment_environment_maps_with_a_warning() {
    let c = build_ok(local(&[(
        "OTEL_RESOURCE_ATTRIBUTES",
        "deployment.environment=production",
    )]));
    assert_eq!(c.deployment_environment(), Some("production"));
    assert!(
        c.warnings()
            .iter()
            .any(|w| w.message().contains("deprecated"))
    );
}

#[test]
fn endpoints_and_protocols() {
    let c = build_ok(env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector.local:4317"),
        ("OTEL_EXPORTER_OTLP_INSECURE", "true"),
    ]));
    assert_eq!(c.traces_endpoint().as_str(), "http://collector.local:4317/");
    // HTTP appends the signal path to the generic endpoint...
    let c = build_ok(env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318/base/"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
    ]));
    assert_eq!(c.protocol(), Protocol::HttpProtobuf);
    assert_eq!(
        c.traces_endpoint().as_str(),
        "http://localhost:4318/base/v1/traces"
    );
    // ...but uses the traces endpoint as given.
    let c = build_ok(env(&[
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://localhost:4318/custom",
        ),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
    ]));
    assert_eq!(c.protocol(), Protocol::HttpJson);
    assert_eq!(c.traces_endpoint().as_str(), "http://localhost:4318/custom");
    // The launchers' legacy name.
    let c = build_ok(env(&[
        ("OTEL_EXPORTER_OTLP_SPAN_ENDPOINT", "localhost:4317"),
        ("OTEL_EXPORTER_OTLP_TRACES_INSECURE", "true"),
    ]));
    assert_eq!(c.traces_endpoint().as_str(), "http://localhost:4317/");
    // Schemeless means TLS.
    let c = build_ok(env(&[(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "otel.example.com:4317",
    )]));
    assert_eq!(
        c.traces_endpoint().as_str(),
        "https://otel.example.com:4317/"
    );
}

#[test]
fn lightstep_regions_and_http_ingest() {
    let c = build_ok(env(&[("LIGHTSTEP_REGION", "eu"), ("LS_ACCESS_TOKEN", "t")]));
    assert_eq!(c.region(), Region::Eu);
    assert_eq!(c.traces_endpoint().host(), "ingest.eu.lightstep.com");
    assert_eq!(c.traces_endpoint().lightstep_region(), Some(Region::Eu));
    let c = build_ok(env(&[
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("LS_ACCESS_TOKEN", "t"),
    ]));
    assert_eq!(
        c.traces_endpoint().as_str(),
        "https://ingest.lightstep.com/traces/otlp/v0.9"
    );
}

#[test]
fn exporter_knobs() {
    let c = build_ok(local(&[
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=a,x-other=b%3Dc"),
        ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-tenant=b"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
        ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "none"),
    ]));
    let headers: Vec<_> = c
        .headers()
        .iter()
        .map(|h| (h.name.as_str(), h.value.expose_secret()))
        .collect();
    assert_eq!(headers, [("x-other", "b=c"), ("x-tenant", "b")]);
    assert_eq!(c.timeout(), Duration::from_millis(2500));
    assert_eq!(c.compression(), Compression::Gzip);
    let c = build_ok(local(&[("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "3s")]));
    assert_eq!(c.timeout(), Duration::from_secs(3));
}

#[test]
fn batch_processor() {
    let c = build_ok(local(&[
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("OTEL_BSP_EXPORT_TIMEOUT", "2000"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "10000"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1000"),
        ("OTEL_BSP_MAX_CONCURRENT_EXPORTS", "4"),
    ]));
    let b = c.batch();
    assert_eq!(b.scheduled_delay, Duration::from_millis(100));
    assert_eq!(b.export_timeout, Duration::from_secs(2));
    assert_eq!(
        (
            b.max_queue_size,
            b.max_export_batch_size,
            b.max_concurrent_exports
        ),
        (10000, 1000, 4)
    );
}

#[test]
fn samplers() {
    let cases = [
        ("always_on", None, Sampler::AlwaysOn),
        ("always_off", None, Sampler::AlwaysOff),
        ("traceidratio", Some("0.25"), Sampler::TraceIdRatio(0.25)),
        ("traceidratio", None, Sampler::TraceIdRatio(1.0)),
        ("parentbased_always_on", None, Sampler::ParentBasedAlwaysOn),
        (
            "parentbased_always_off",
            None,
            Sampler::ParentBasedAlwaysOff,
        ),
        (
            "parentbased_traceidratio",
            Some("0"),
            Sampler::ParentBasedTraceIdRatio(0.0),
        ),
    ];
    for (name, arg, expected) in cases {
        let mut vars = vec![("OTEL_TRACES_SAMPLER", name)];
        vars.extend(arg.map(|a| ("OTEL_TRACES_SAMPLER_ARG", a)));
        assert_eq!(build_ok(local(&vars)).sampler(), expected, "{name} {arg:?}");
    }
    let c = build_ok(local(&[
        ("OTEL_TRACES_SAMPLER", "always_on"),
        ("OTEL_TRACES_SAMPLER_ARG", "0.5"),
    ]));
    assert!(
        c.warnings()
            .iter()
            .any(|w| w.message().contains("takes no argument"))
    );
}

#[test]
fn propagators() {
    let c = build_ok(local(&[(
        "OTEL_PROPAGATORS",
        "b3multi,jaeger,ottrace,b3,xray",
    )]));
    assert_eq!(
        c.propagators(),
        [
            Propagator::B3Multi,
            Propagator::Jaeger,
            Propagator::OtTrace,
            Propagator::B3,
            Propagator::Xray
        ]
    );
    assert_eq!(
        c.effective()
            .settings
            .iter()
            .find(|s| s.key == "propagators")
            .unwrap()
            .value,
        "b3multi,jaeger,ottrace,b3,xray"
    );
    let c = build_ok(local(&[("OTEL_PROPAGATORS", "none")]));
    assert!(c.propagators().is_empty());
}

#[test]
fn exporter_and_switch() {
    let c = build_ok(local(&[("OTEL_TRACES_EXPORTER", "none")]));
    assert_eq!(c.traces_exporter(), TracesExporter::None);
    assert!(!c.exports());
    let c = build_ok(local(&[("OTEL_SDK_DISABLED", "TRUE")]));
    assert!(c.sdk_disabled());
    assert!(!c.exports());
    // Disabled or not exporting: Lightstep's ingest without a token is no error.
    build_ok(env(&[("OTEL_SDK_DISABLED", "true")]));
    build_ok(env(&[("OTEL_TRACES_EXPORTER", "none")]));
}

#[test]
fn limits() {
    let c = build_ok(local(&[
        ("OTEL_ATTRIBUTE_COUNT_LIMIT", "10"),
        ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "20"),
        ("OTEL_SPAN_EVENT_COUNT_LIMIT", "3"),
        ("OTEL_SPAN_LINK_COUNT_LIMIT", "4"),
        ("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", "5"),
        ("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", "6"),
    ]));
    let l = c.span_limits();
    assert_eq!(
        (
            l.attribute_count,
            l.attribute_value_length,
            l.event_count,
            l.link_count,
            l.event_attribute_count,
            l.link_attribute_count
        ),
        (10, Some(20), 3, 4, 5, 6)
    );
    // The span-specific variables beat the generic ones.
    let c = build_ok(local(&[
        ("OTEL_ATTRIBUTE_COUNT_LIMIT", "10"),
        ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "11"),
        ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "20"),
        ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "21"),
    ]));
    assert_eq!(c.span_limits().attribute_count, 11);
    assert_eq!(c.span_limits().attribute_value_length, Some(21));
}

#[test]
fn tls_files_and_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("ca.pem");
    std::fs::write(
        &pem,
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let p = pem.to_str().unwrap();
    let c = build_ok(local(&[
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", p),
        ("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", p),
        ("OTEL_EXPORTER_OTLP_CLIENT_KEY", p),
        ("LIGHTSTEP_SHUTDOWN_TIMEOUT", "750ms"),
    ]));
    assert_eq!(c.tls().ca_file.as_deref(), Some(pem.as_path()));
    assert_eq!(c.tls().client_certificate.as_deref(), Some(pem.as_path()));
    assert_eq!(c.tls().client_key.as_deref(), Some(pem.as_path()));
    assert_eq!(c.shutdown_timeout(), Duration::from_millis(750));
    let c = build_ok(local(&[("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", p)]));
    assert_eq!(
        c.source_of(Setting::TlsCaFile),
        Some(&Source::Env {
            var: "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE".into()
        })
    );
}

#[test]
fn every_variable_is_documented() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/configuration.md"
    ))
    .unwrap();
    let missing: Vec<_> = Setting::ALL
        .iter()
        .flat_map(|s| s.env_vars())
        .chain(["OTEL_CONFIG_FILE"])
        .filter(|v| !doc.contains(&format!("`{v}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "not in docs/configuration.md: {missing:?}"
    );
}

#[test]
fn unknown_lightstep_variables_are_warned_about() {
    let c = build_ok(local(&[("LIGHTSTEP_ACESS_TOKEN", "x")]));
    let w = warning_messages(&c);
    assert!(
        w.iter()
            .any(|m| m.contains("LIGHTSTEP_ACESS_TOKEN") && m.contains("LIGHTSTEP_ACCESS_TOKEN")),
        "{w:?}"
    );
    let c = build_ok(local(&[("OTEL_CONFIG_FILE", "/etc/otel.yaml")]));
    assert!(
        c.warnings()
            .iter()
            .any(|w| w.message().contains("OTEL_CONFIG_FILE"))
    );
}

/// Every variable of every setting reaches the setting it names: a table checked against the
/// settings, so that a variable added without a test fails here.
#[test]
fn every_variable_reaches_its_setting() {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("x.pem");
    std::fs::write(&pem, "-----BEGIN CERTIFICATE-----\n").unwrap();
    let pem = pem.to_str().unwrap().to_owned();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "").unwrap();
    let file = file.to_str().unwrap().to_owned();
    // (variable, value, setting, companion variables needed for a valid configuration)
    type Row<'a> = (&'a str, &'a str, Setting, Vec<(&'a str, &'a str)>);
    let table: Vec<Row<'_>> = vec![
        ("LIGHTSTEP_CONFIG_FILE", &file, Setting::ConfigFile, vec![]),
        ("LIGHTSTEP_ACCESS_TOKEN", "t", Setting::AccessToken, vec![]),
        ("LS_ACCESS_TOKEN", "t", Setting::AccessToken, vec![]),
        ("LS_SERVICE_NAME", "s", Setting::ServiceName, vec![]),
        ("LS_SERVICE_VERSION", "1", Setting::ServiceVersion, vec![]),
        (
            "LIGHTSTEP_REGION",
            "eu",
            Setting::Region,
            vec![("LS_ACCESS_TOKEN", "t")],
        ),
        (
            "LIGHTSTEP_SHUTDOWN_TIMEOUT",
            "1s",
            Setting::ShutdownTimeout,
            vec![],
        ),
        ("OTEL_SERVICE_NAME", "s", Setting::ServiceName, vec![]),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "a=b",
            Setting::ResourceAttributes,
            vec![],
        ),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://localhost:1",
            Setting::TracesEndpoint,
            vec![],
        ),
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://localhost:1",
            Setting::TracesEndpoint,
            vec![],
        ),
        (
            "OTEL_EXPORTER_OTLP_SPAN_ENDPOINT",
            "http://localhost:1",
            Setting::TracesEndpoint,
            vec![],
        ),
        (
            "LS_SATELLITE_URL",
            "http://localhost:1",
            Setting::TracesEndpoint,
            vec![],
        ),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "h=v",
            Setting::Headers,
            vec![],
        ),
        (
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            "h=v",
            Setting::Headers,
            vec![],
        ),
        (
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "http/json",
            Setting::Protocol,
            vec![],
        ),
        (
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "http/json",
            Setting::Protocol,
            vec![],
        ),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "5", Setting::Timeout, vec![]),
        (
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            "5",
            Setting::Timeout,
            vec![],
        ),
        (
            "OTEL_EXPORTER_OTLP_COMPRESSION",
            "gzip",
            Setting::Compression,
            vec![],
        ),
        (
            "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
            "gzip",
            Setting::Compression,
            vec![],
        ),
        (
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            &pem,
            Setting::TlsCaFile,
            vec![],
        ),
        (
            "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
            &pem,
            Setting::TlsCaFile,
            vec![],
        ),
        (
            "OTEL_EXPORTER_OTLP_CLIENT_KEY",
            &pem,
            Setting::TlsClientKey,
            vec![("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", &pem)],
        ),
        (
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
            &pem,
            Setting::TlsClientKey,
            vec![("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", &pem)],
        ),
        (
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            &pem,
            Setting::TlsClientCertificate,
            vec![("OTEL_EXPORTER_OTLP_CLIENT_KEY", &pem)],
        ),
        (
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
            &pem,
            Setting::TlsClientCertificate,
            vec![("OTEL_EXPORTER_OTLP_CLIENT_KEY", &pem)],
        ),
        (
            "OTEL_EXPORTER_OTLP_INSECURE",
            "true",
            Setting::TlsInsecure,
            vec![],
        ),
        (
            "OTEL_EXPORTER_OTLP_TRACES_INSECURE",
            "true",
            Setting::TlsInsecure,
            vec![],
        ),
        (
            "OTEL_EXPORTER_OTLP_SPAN_INSECURE",
            "true",
            Setting::TlsInsecure,
            vec![],
        ),
        (
            "OTEL_BSP_SCHEDULE_DELAY",
            "10",
            Setting::ScheduledDelay,
            vec![],
        ),
        (
            "OTEL_BSP_EXPORT_TIMEOUT",
            "10",
            Setting::ExportTimeout,
            vec![],
        ),
        (
            "OTEL_BSP_MAX_QUEUE_SIZE",
            "4096",
            Setting::MaxQueueSize,
            vec![],
        ),
        (
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
            "10",
            Setting::MaxExportBatchSize,
            vec![],
        ),
        (
            "OTEL_BSP_MAX_CONCURRENT_EXPORTS",
            "2",
            Setting::MaxConcurrentExports,
            vec![],
        ),
        (
            "OTEL_TRACES_SAMPLER",
            "always_on",
            Setting::SamplerName,
            vec![],
        ),
        (
            "OTEL_TRACES_SAMPLER_ARG",
            "0.5",
            Setting::SamplerArg,
            vec![("OTEL_TRACES_SAMPLER", "traceidratio")],
        ),
        ("OTEL_PROPAGATORS", "b3", Setting::Propagators, vec![]),
        (
            "OTEL_TRACES_EXPORTER",
            "none",
            Setting::TracesExporter,
            vec![],
        ),
        ("OTEL_SDK_DISABLED", "true", Setting::SdkDisabled, vec![]),
        (
            "OTEL_ATTRIBUTE_COUNT_LIMIT",
            "1",
            Setting::AttributeCountLimit,
            vec![],
        ),
        (
            "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            "1",
            Setting::AttributeValueLengthLimit,
            vec![],
        ),
        (
            "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
            "1",
            Setting::AttributeCountLimit,
            vec![],
        ),
        (
            "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            "1",
            Setting::AttributeValueLengthLimit,
            vec![],
        ),
        (
            "OTEL_SPAN_EVENT_COUNT_LIMIT",
            "1",
            Setting::EventCountLimit,
            vec![],
        ),
        (
            "OTEL_SPAN_LINK_COUNT_LIMIT",
            "1",
            Setting::LinkCountLimit,
            vec![],
        ),
        (
            "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT",
            "1",
            Setting::EventAttributeCountLimit,
            vec![],
        ),
        (
            "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT",
            "1",
            Setting::LinkAttributeCountLimit,
            vec![],
        ),
        (
            "HTTPS_PROXY",
            "http://proxy.example:3128",
            Setting::Proxy,
            vec![(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "https://collector.example:4317",
            )],
        ),
        (
            "https_proxy",
            "http://proxy.example:3128",
            Setting::Proxy,
            vec![(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "https://collector.example:4317",
            )],
        ),
        ("HTTP_PROXY", "proxy.example:3128", Setting::Proxy, vec![]),
        ("http_proxy", "proxy.example:3128", Setting::Proxy, vec![]),
        ("NO_PROXY", "collector.example", Setting::NoProxy, vec![]),
        ("no_proxy", "collector.example", Setting::NoProxy, vec![]),
    ];
    let covered: Vec<&str> = table.iter().map(|row| row.0).collect();
    let untested: Vec<_> = Setting::ALL
        .iter()
        .flat_map(|s| s.env_vars())
        .filter(|v| !covered.contains(v))
        .collect();
    assert!(
        untested.is_empty(),
        "variables without a row here: {untested:?}"
    );
    for (var, value, setting, companions) in table {
        let mut vars = vec![(var, value)];
        vars.extend(companions);
        let c = build_ok(local(&vars));
        // For the tables, the entry the value sets (`h=v`: the header `h`).
        let source = match setting {
            Setting::Headers | Setting::ResourceAttributes => {
                c.source_of_entry(setting, value.split('=').next().unwrap())
            }
            _ => c.source_of(setting),
        };
        assert_eq!(
            source,
            Some(&Source::Env { var: var.into() }),
            "{var} -> {setting:?}"
        );
    }
}

#[test]
fn launcher_variables_are_honoured_or_explained() {
    // The launchers' legacy names work, with a nudge towards the standard ones.
    let c = build_ok(env(&[
        (
            "OTEL_EXPORTER_OTLP_SPAN_ENDPOINT",
            "collector.internal:4317",
        ),
        ("OTEL_EXPORTER_OTLP_SPAN_INSECURE", "true"),
        ("LS_ACCESS_TOKEN", "t"),
    ]));
    assert_eq!(
        c.traces_endpoint().as_str(),
        "http://collector.internal:4317/"
    );
    assert!(c.warnings().iter().any(|w| {
        w.message()
            .contains("`OTEL_EXPORTER_OTLP_SPAN_INSECURE` is a deprecated launcher variable")
    }));
    let c = build_ok(env(&[
        ("LS_SATELLITE_URL", "ingest.lightstep.com:443"),
        ("LS_ACCESS_TOKEN", "t"),
    ]));
    assert_eq!(c.traces_endpoint().host(), "ingest.lightstep.com");
    // Metrics and debug switches are known, ignored, and said to be.
    let c = build_ok(local(&[
        ("LS_METRICS_ENABLED", "true"),
        ("LS_DEBUG", "true"),
    ]));
    let w = warning_messages(&c);
    assert!(w.iter().any(|m| m.contains("`LS_METRICS_ENABLED` (a Lightstep launcher variable) is ignored: lightstep-rs exports traces only")), "{w:?}");
    assert!(
        w.iter()
            .any(|m| m.contains("`LS_DEBUG`") && m.contains("RUST_LOG")),
        "{w:?}"
    );
    assert!(!w.iter().any(|m| m.contains("did you mean")), "{w:?}");
}

#[test]
fn misspelt_otel_variables_are_warned_about_and_other_signals_are_not() {
    let warnings = |vars: &[(&str, &str)]| warning_messages(&build_ok(local(vars)));
    for (typo, meant) in [
        ("OTEL_EXPORTER_OTLP_ENDPIONT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
        ("OTEL_SERVICE_NAM", "OTEL_SERVICE_NAME"),
        ("OTEL_BSP_MAX_QUEUE_SIZ", "OTEL_BSP_MAX_QUEUE_SIZE"),
        ("OTEL_TRACES_SAMPLER_ARGS", "OTEL_TRACES_SAMPLER_ARG"),
        ("OTEL_PROPAGATOR", "OTEL_PROPAGATORS"),
    ] {
        let w = warnings(&[(typo, "x")]);
        assert!(
            w.iter().any(
                |m| m.contains(&format!("`{typo}` is not one lightstep-rs reads"))
                    && m.contains(&format!("did you mean `{meant}`?"))
            ),
            "{typo}: {w:?}"
        );
    }
    // A name of a family lightstep-rs reads, far from any of its variables: warned, no guess.
    let w = warnings(&[("OTEL_EXPORTER_OTLP_TRACES_RETRY_POLICY", "x")]);
    assert!(
        w.iter()
            .any(|m| m.contains("`OTEL_EXPORTER_OTLP_TRACES_RETRY_POLICY`")
                && !m.contains("did you mean")),
        "{w:?}"
    );
    // The launchers' old `SPAN_` name of a setting read only as `TRACES_`: the new name.
    let w = warnings(&[("OTEL_EXPORTER_OTLP_SPAN_HEADERS", "a=b")]);
    assert!(
        w.iter().any(|m| m.contains("`OTEL_EXPORTER_OTLP_SPAN_HEADERS` is not one lightstep-rs reads; set `OTEL_EXPORTER_OTLP_TRACES_HEADERS` instead")),
        "{w:?}"
    );
    // The specification's variables of other signals and exporters, and unrelated `OTEL_`
    // names, are someone else's: no warning.
    let w = warnings(&[
        (
            "OTEL_EXPORTER_OTLP_PROFILES_ENDPOINT",
            "http://localhost:4317",
        ),
        ("OTEL_EXPORTER_OTLP_METRIC_HEADERS", "a=b"),
        ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://localhost:4318"),
        ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc"),
        ("OTEL_BLRP_MAX_QUEUE_SIZE", "10"),
        ("OTEL_METRICS_EXPORTER", "none"),
        ("OTEL_LOGS_EXPORTER", "none"),
        ("OTEL_SEMCONV_STABILITY_OPT_IN", "http"),
        ("OTEL_COLLECTOR_SOMETHING_ELSE", "x"),
    ]);
    assert!(w.is_empty(), "{w:?}");
}

#[test]
fn the_launchers_metric_variables_are_ignored_with_a_reason_not_taken_for_typos() {
    let c = build_ok(local(&[(
        "OTEL_EXPORTER_OTLP_METRIC_ENDPOINT",
        "http://localhost:4317",
    )]));
    let w = warning_messages(&c);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("`OTEL_EXPORTER_OTLP_METRIC_ENDPOINT` (a Lightstep launcher variable) is ignored: lightstep-rs exports traces only"),
        "{w:?}"
    );
}

#[test]
fn otel_log_level_is_not_read_and_says_where_to_look_instead() {
    let c = build_ok(local(&[("OTEL_LOG_LEVEL", "debug")]));
    let w = warning_messages(&c);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("`OTEL_LOG_LEVEL` is not read") && w[0].contains("RUST_LOG"),
        "{w:?}"
    );
}

/// The proxy: `with_proxy` in code, then the variable of the endpoint's scheme (`HTTPS_PROXY`
/// for `https://`, `HTTP_PROXY` for `http://`, uppercase before lowercase), then the file's
/// `proxy`; `NO_PROXY` in the same order. A bad URL is an error naming its variable,
/// without the credentials it holds.
#[test]
fn proxy_settings() {
    let https = [
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "https://collector.example:4317",
        ),
        ("HTTPS_PROXY", "http://env-proxy:3128"),
        ("HTTP_PROXY", "http://plain-proxy:3128"),
        ("NO_PROXY", "internal.example, 10.0.0.0/8"),
    ];
    let c = build_ok(local(&https));
    let proxy = c.proxy().expect("a proxy");
    assert_eq!(proxy.url().expose_secret(), "http://env-proxy:3128");
    assert_eq!(proxy.no_proxy(), Some("internal.example, 10.0.0.0/8"));
    assert_eq!(
        c.source_of(Setting::Proxy),
        Some(&Source::Env {
            var: "HTTPS_PROXY".into()
        })
    );
    // `http://` endpoints take HTTP_PROXY; a schemeless proxy is http://.
    let c = build_ok(local(&[("http_proxy", "plain-proxy:3128")]));
    assert_eq!(
        c.proxy().map(|p| p.url().expose_secret()),
        Some("http://plain-proxy:3128")
    );
    // Code beats the environment, the environment beats the file.
    let c = build_ok(local(&https).with_proxy("http://code-proxy:8080"));
    assert_eq!(
        c.proxy().map(|p| p.url().expose_secret()),
        Some("http://code-proxy:8080")
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "proxy = \"http://file-proxy:3128\"\n").unwrap();
    let c = build_ok(local(&[]).with_file(&file));
    assert_eq!(
        c.proxy().map(|p| p.url().expose_secret()),
        Some("http://file-proxy:3128")
    );
    let c = build_ok(local(&[("HTTP_PROXY", "http://env-proxy:3128")]).with_file(&file));
    assert_eq!(
        c.proxy().map(|p| p.url().expose_secret()),
        Some("http://env-proxy:3128")
    );
    assert!(build_ok(local(&[])).proxy().is_none());
    // The exceptions: code beats the environment, which beats the file.
    let c = build_ok(local(&https).with_no_proxy("code.example"));
    assert_eq!(c.proxy().and_then(|p| p.no_proxy()), Some("code.example"));
    assert_eq!(
        c.source_of(Setting::NoProxy),
        Some(&Source::Code {
            setter: "with_no_proxy"
        })
    );
    std::fs::write(
        &file,
        "proxy = \"http://file-proxy:3128\"\nno_proxy = \"file.example\"\n",
    )
    .unwrap();
    let c = build_ok(local(&[]).with_file(&file));
    assert_eq!(c.proxy().and_then(|p| p.no_proxy()), Some("file.example"));
    let c = build_ok(local(&[("no_proxy", "env.example")]).with_file(&file));
    assert_eq!(c.proxy().and_then(|p| p.no_proxy()), Some("env.example"));
    // Nothing but an http:// proxy with a host; the error names the variable, not the password.
    for bad in [
        "https://user:S3CRET@proxy:3128",
        "socks5://proxy:1080",
        "http://",
        "http://pro xy:3128",
    ] {
        let err = build_err(local(&[("HTTP_PROXY", bad)])).to_string();
        assert!(err.contains("HTTP_PROXY"), "{err}");
        assert!(err.contains("HTTP proxy URL"), "{err}");
        assert!(!err.contains("S3CRET"), "{err}");
    }
}
