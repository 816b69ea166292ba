//! Variables lightstep-rs knows but does not read: the launchers' settings it leaves out, and
//! the OpenTelemetry specification's variables of other signals and exporters. Knowing them
//! keeps them from being taken for typos of the variables it reads (`settings.rs`).

/// The OpenTelemetry declarative configuration file: not supported, which a warning says, and
/// known, so that it is not taken for a typo of ours.
pub(crate) const OTEL_CONFIG_FILE: &str = "OTEL_CONFIG_FILE";

/// Variables of Lightstep's launchers that lightstep-rs knows but does not use, with the reason:
/// they are reported as warnings rather than silently ignored or taken for typos.
pub(crate) const LAUNCHER_IGNORED: &[(&str, &str)] = &[
    ("LS_METRICS_ENABLED", "lightstep-rs exports traces only"),
    (
        "LS_METRICS_BUILTINS_ENABLED",
        "lightstep-rs exports traces only",
    ),
    (
        "LS_METRICS_BUILTIN_LIBRARIES",
        "lightstep-rs exports traces only",
    ),
    ("LS_METRICS_SDK", "lightstep-rs exports traces only"),
    ("LS_METRICS_URL", "lightstep-rs exports traces only"),
    (
        "LS_METRICS_HOST_ENABLED",
        "lightstep-rs exports traces only",
    ),
    (
        "LS_DEBUG",
        "lightstep-rs logs through `tracing`: set your subscriber's filter (for example RUST_LOG)",
    ),
    (
        "LS_USE_TLS",
        "TLS follows the endpoint's scheme; use OTEL_EXPORTER_OTLP_INSECURE=true for plaintext",
    ),
    ("LS_DEADLINE_MILLIS", "use OTEL_EXPORTER_OTLP_TIMEOUT"),
    (
        "OTEL_EXPORTER_OTLP_METRIC_ENDPOINT",
        "lightstep-rs exports traces only",
    ),
    (
        "OTEL_EXPORTER_OTLP_METRIC_INSECURE",
        "lightstep-rs exports traces only",
    ),
    (
        "OTEL_EXPORTER_OTLP_METRIC_PERIOD",
        "lightstep-rs exports traces only",
    ),
    (
        "OTEL_EXPORTER_OTLP_METRIC_TEMPORALITY_PREFERENCE",
        "lightstep-rs exports traces only",
    ),
];

/// Whether `name` is a variable of the OpenTelemetry specification (or of the Rust SDK) that
/// lightstep-rs does not read: another signal's (metrics, logs), another exporter's, or a
/// setting outside tracing. Such a variable is someone else's, not a misspelt one of ours.
pub(crate) fn is_other_otel_variable(name: &str) -> bool {
    const OTHERS: &[&str] = &[
        "OTEL_ENTITIES",
        "OTEL_LOG_LEVEL",
        "OTEL_EXPERIMENTAL_CONFIG_FILE",
        "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS",
        "OTEL_SEMCONV_STABILITY_OPT_IN",
        "OTEL_METRICS_EXPORTER",
        "OTEL_LOGS_EXPORTER",
        "OTEL_METRICS_EXEMPLAR_FILTER",
        "OTEL_METRIC_EXPORT_INTERVAL",
        "OTEL_METRIC_EXPORT_TIMEOUT",
        "OTEL_BLRP_SCHEDULE_DELAY",
        "OTEL_BLRP_EXPORT_TIMEOUT",
        "OTEL_BLRP_MAX_QUEUE_SIZE",
        "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE",
        "OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT",
        "OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT",
        "OTEL_EXPORTER_ZIPKIN_ENDPOINT",
        "OTEL_EXPORTER_ZIPKIN_TIMEOUT",
        "OTEL_EXPORTER_PROMETHEUS_HOST",
        "OTEL_EXPORTER_PROMETHEUS_PORT",
        "OTEL_EXPORTER_JAEGER_AGENT_HOST",
        "OTEL_EXPORTER_JAEGER_AGENT_PORT",
        "OTEL_EXPORTER_JAEGER_ENDPOINT",
        "OTEL_EXPORTER_JAEGER_USER",
        "OTEL_EXPORTER_JAEGER_PASSWORD",
        "OTEL_EXPORTER_JAEGER_TIMEOUT",
        "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
        "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
    ];
    const OTLP_SETTINGS: &[&str] = &[
        "ENDPOINT",
        "INSECURE",
        "CERTIFICATE",
        "CLIENT_KEY",
        "CLIENT_CERTIFICATE",
        "HEADERS",
        "COMPRESSION",
        "TIMEOUT",
        "PROTOCOL",
    ];
    if OTHERS.contains(&name) {
        return true;
    }
    // The OTLP exporter settings of the other signals, and the specification's old names for
    // metrics' (the old names for traces', `OTEL_EXPORTER_OTLP_SPAN_*`, are ours: launchers
    // still set them).
    [
        "OTEL_EXPORTER_OTLP_METRICS_",
        "OTEL_EXPORTER_OTLP_LOGS_",
        "OTEL_EXPORTER_OTLP_PROFILES_",
        "OTEL_EXPORTER_OTLP_METRIC_",
    ]
    .iter()
    .filter_map(|prefix| name.strip_prefix(prefix))
    .any(|setting| OTLP_SETTINGS.contains(&setting))
}
