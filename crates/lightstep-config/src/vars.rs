//! The names of every environment variable lightstep-rs reads.

macro_rules! vars {
    ($($(#[$doc:meta])* $name:ident = $value:literal;)*) => {
        $($(#[$doc])* pub const $name: &str = $value;)*
        /// Every variable above, for checks and documentation.
        pub const ALL: &[&str] = &[$($value),*];
    };
}

vars! {
    /// The configuration file to read.
    CONFIG_FILE = "LIGHTSTEP_CONFIG_FILE";
    /// The access token (the seed's name).
    ACCESS_TOKEN = "LIGHTSTEP_ACCESS_TOKEN";
    /// The access token (Lightstep launchers' name).
    LS_ACCESS_TOKEN = "LS_ACCESS_TOKEN";
    /// The service name (launchers).
    LS_SERVICE_NAME = "LS_SERVICE_NAME";
    /// The service version (launchers).
    LS_SERVICE_VERSION = "LS_SERVICE_VERSION";
    /// Lightstep ingest region.
    REGION = "LIGHTSTEP_REGION";
    /// Deadline for flush and shutdown.
    SHUTDOWN_TIMEOUT = "LIGHTSTEP_SHUTDOWN_TIMEOUT";
    /// The service name.
    SERVICE_NAME = "OTEL_SERVICE_NAME";
    /// Resource attributes.
    RESOURCE_ATTRIBUTES = "OTEL_RESOURCE_ATTRIBUTES";
    /// Generic OTLP endpoint.
    ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT";
    /// Traces OTLP endpoint.
    TRACES_ENDPOINT = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
    /// Legacy traces endpoint (launchers).
    SPAN_ENDPOINT = "OTEL_EXPORTER_OTLP_SPAN_ENDPOINT";
    /// Legacy traces endpoint (the oldest Python launcher).
    LS_SATELLITE_URL = "LS_SATELLITE_URL";
    /// Generic headers.
    HEADERS = "OTEL_EXPORTER_OTLP_HEADERS";
    /// Traces headers.
    TRACES_HEADERS = "OTEL_EXPORTER_OTLP_TRACES_HEADERS";
    /// Generic protocol.
    PROTOCOL = "OTEL_EXPORTER_OTLP_PROTOCOL";
    /// Traces protocol.
    TRACES_PROTOCOL = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
    /// Generic timeout.
    TIMEOUT = "OTEL_EXPORTER_OTLP_TIMEOUT";
    /// Traces timeout.
    TRACES_TIMEOUT = "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT";
    /// Generic compression.
    COMPRESSION = "OTEL_EXPORTER_OTLP_COMPRESSION";
    /// Traces compression.
    TRACES_COMPRESSION = "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION";
    /// Generic CA file.
    CERTIFICATE = "OTEL_EXPORTER_OTLP_CERTIFICATE";
    /// Traces CA file.
    TRACES_CERTIFICATE = "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE";
    /// Generic client key.
    CLIENT_KEY = "OTEL_EXPORTER_OTLP_CLIENT_KEY";
    /// Traces client key.
    TRACES_CLIENT_KEY = "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY";
    /// Generic client certificate.
    CLIENT_CERTIFICATE = "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE";
    /// Traces client certificate.
    TRACES_CLIENT_CERTIFICATE = "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE";
    /// Generic insecure flag.
    INSECURE = "OTEL_EXPORTER_OTLP_INSECURE";
    /// Traces insecure flag.
    TRACES_INSECURE = "OTEL_EXPORTER_OTLP_TRACES_INSECURE";
    /// Legacy traces insecure flag (launchers).
    SPAN_INSECURE = "OTEL_EXPORTER_OTLP_SPAN_INSECURE";
    /// Batch delay.
    BSP_SCHEDULE_DELAY = "OTEL_BSP_SCHEDULE_DELAY";
    /// Batch export timeout.
    BSP_EXPORT_TIMEOUT = "OTEL_BSP_EXPORT_TIMEOUT";
    /// Queue size.
    BSP_MAX_QUEUE_SIZE = "OTEL_BSP_MAX_QUEUE_SIZE";
    /// Batch size.
    BSP_MAX_EXPORT_BATCH_SIZE = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE";
    /// Concurrent exports.
    BSP_MAX_CONCURRENT_EXPORTS = "OTEL_BSP_MAX_CONCURRENT_EXPORTS";
    /// Sampler.
    TRACES_SAMPLER = "OTEL_TRACES_SAMPLER";
    /// Sampler argument.
    TRACES_SAMPLER_ARG = "OTEL_TRACES_SAMPLER_ARG";
    /// Propagators.
    PROPAGATORS = "OTEL_PROPAGATORS";
    /// Traces exporter.
    TRACES_EXPORTER = "OTEL_TRACES_EXPORTER";
    /// SDK off switch.
    SDK_DISABLED = "OTEL_SDK_DISABLED";
    /// Attribute count, all kinds.
    ATTRIBUTE_COUNT_LIMIT = "OTEL_ATTRIBUTE_COUNT_LIMIT";
    /// Attribute value length, all kinds.
    ATTRIBUTE_VALUE_LENGTH_LIMIT = "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT";
    /// Span attribute count.
    SPAN_ATTRIBUTE_COUNT_LIMIT = "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT";
    /// Span attribute value length.
    SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT = "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT";
    /// Span event count.
    SPAN_EVENT_COUNT_LIMIT = "OTEL_SPAN_EVENT_COUNT_LIMIT";
    /// Span link count.
    SPAN_LINK_COUNT_LIMIT = "OTEL_SPAN_LINK_COUNT_LIMIT";
    /// Event attribute count.
    EVENT_ATTRIBUTE_COUNT_LIMIT = "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT";
    /// Link attribute count.
    LINK_ATTRIBUTE_COUNT_LIMIT = "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT";
    /// The declarative configuration file (not supported; warned about).
    OTEL_CONFIG_FILE = "OTEL_CONFIG_FILE";
    /// The proxy for `https://` endpoints.
    HTTPS_PROXY = "HTTPS_PROXY";
    /// The proxy for `https://` endpoints (curl's spelling).
    HTTPS_PROXY_LOWER = "https_proxy";
    /// The proxy for `http://` endpoints.
    HTTP_PROXY = "HTTP_PROXY";
    /// The proxy for `http://` endpoints (curl's spelling).
    HTTP_PROXY_LOWER = "http_proxy";
    /// Hosts reached without the proxy.
    NO_PROXY = "NO_PROXY";
    /// Hosts reached without the proxy (curl's spelling).
    NO_PROXY_LOWER = "no_proxy";
}

/// The proxy variables: the snapshot keeps them besides the variables of our prefixes.
pub(crate) const PROXY: [&str; 6] = [
    HTTPS_PROXY,
    HTTPS_PROXY_LOWER,
    HTTP_PROXY,
    HTTP_PROXY_LOWER,
    NO_PROXY,
    NO_PROXY_LOWER,
];

/// Variables of Lightstep's launchers that lightstep-rs knows but does not use, with the reason:
/// they are reported as warnings rather than silently ignored or taken for typos.
pub const LAUNCHER_IGNORED: &[(&str, &str)] = &[
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
