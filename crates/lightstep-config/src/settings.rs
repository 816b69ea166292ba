//! The settings table: every setting of lightstep-rs, declared once.
//!
//! Each row gives a setting's key (its file key, and its name in the effective configuration and
//! in messages), its environment variables in precedence order, the resource attributes that may
//! carry it, its `ConfigBuilder` method, how it is shown, and what it means. Resolution and the
//! variable checks (`builder.rs`, `env.rs`), the file-key check (`file.rs`), the effective
//! configuration (`config.rs`) and the tables of `docs/configuration.md` and of this crate's
//! documentation all read this table, so that a key or a variable is written here and nowhere
//! else. Each value's typed parser stays where the value is resolved, beside the typed value set
//! in code: a table of one type cannot hold parsers of many.

use crate::config::LightstepConfig;

/// How a configuration file gives a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Scalar,
    /// A table of string values (`headers`, `resource_attributes`).
    Map,
    /// A list, or one comma-separated string (`propagators`).
    List,
}

/// An environment variable that sets a setting.
#[derive(Debug)]
pub(crate) struct Var {
    pub(crate) name: &'static str,
    /// Whose old name this is (`launchers`): it works, with a warning towards the standard one.
    pub(crate) deprecated_by: Option<&'static str>,
}

const fn var(name: &'static str) -> Var {
    Var {
        name,
        deprecated_by: None,
    }
}

const fn launchers(name: &'static str, who: &'static str) -> Var {
    Var {
        name,
        deprecated_by: Some(who),
    }
}

/// How a setting appears in the effective configuration.
#[derive(Debug)]
pub(crate) enum Show {
    /// One line; `None` shows as `(none)`.
    Value(fn(&LightstepConfig) -> Option<String>),
    /// One line per entry, named `key.entry`; none when empty.
    Entries(fn(&LightstepConfig) -> Vec<(String, String)>),
    /// On another setting's line: the generic endpoint's value is the traces endpoint's.
    Elsewhere,
}

/// One row of the table. The fields a row leaves out take [`Def::BASE`]'s values. The fields
/// only the docs show are read by the test that renders them.
#[derive(Debug)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) struct Def {
    pub(crate) key: &'static str,
    /// How a file gives it; `None`: it is no file key.
    pub(crate) file: Option<Shape>,
    pub(crate) vars: &'static [Var],
    /// Resource attributes that carry it, within `OTEL_RESOURCE_ATTRIBUTES` and the file's
    /// `resource_attributes`: the current name first, then deprecated ones.
    pub(crate) attributes: &'static [&'static str],
    /// Said after the variables in the docs: other places the value comes from.
    pub(crate) vars_note: &'static str,
    pub(crate) setter: &'static str,
    /// Said after the setter in the docs.
    pub(crate) setter_note: &'static str,
    /// The default as the docs say it, where showing the built-in default's value would not do.
    pub(crate) default: Option<&'static str>,
    pub(crate) meaning: &'static str,
    pub(crate) show: Show,
}

impl Def {
    const BASE: Def = Def {
        key: "",
        file: Some(Shape::Scalar),
        vars: &[],
        attributes: &[],
        vars_note: "",
        setter: "",
        setter_note: "",
        default: None,
        meaning: "",
        show: Show::Value(|_| None),
    };
}

/// Declares [`Setting`] and the table in one list: a variant's doc comment is the setting's
/// meaning in the docs, and the rows are in the variants' order.
macro_rules! settings {
    ($($(#[doc = $doc:literal])+ $name:ident = $key:literal { $($field:ident: $value:expr),* $(,)? })*) => {
        /// A setting of [`LightstepConfig`](crate::LightstepConfig), for
        /// [`LightstepConfig::source_of`](crate::LightstepConfig::source_of). Each one's
        /// documentation says what it means; [`Setting::key`] names it in files and messages.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Setting {
            $($(#[doc = $doc])+ $name,)*
        }

        impl Setting {
            /// Every setting, in the order of the effective configuration.
            pub const ALL: &'static [Setting] = &[$(Setting::$name),*];
        }

        const DEFS: &[Def] = &[$(Def {
            key: $key,
            meaning: concat!($($doc),+),
            $($field: $value,)*
            ..Def::BASE
        }),*];
    };
}

fn duration(d: std::time::Duration) -> Option<String> {
    Some(humantime::format_duration(d).to_string())
}

fn path(p: &Option<std::path::PathBuf>) -> Option<String> {
    p.as_ref().map(|p| p.display().to_string())
}

const REDACTED: &str = "[REDACTED]";

settings! {
    /// the configuration file to read
    ConfigFile = "config_file" {
        file: None,
        vars: &[var("LIGHTSTEP_CONFIG_FILE")],
        setter: "with_file",
        show: Show::Value(|c| path(&c.config_file)),
    }
    /// a working no-op pipeline when `true`
    SdkDisabled = "sdk_disabled" {
        vars: &[var("OTEL_SDK_DISABLED")],
        setter: "with_sdk_disabled",
        show: Show::Value(|c| Some(c.sdk_disabled.to_string())),
    }
    /// `otlp` or `none`; the specification's `zipkin`, `console`, `logging`, `jaeger` and
    /// `otlp/stdout` are skipped with a warning
    TracesExporter = "traces_exporter" {
        vars: &[var("OTEL_TRACES_EXPORTER")],
        setter: "with_traces_exporter",
        show: Show::Value(|c| Some(c.traces_exporter.as_str().into())),
    }
    /// the Lightstep access token; secret
    AccessToken = "access_token" {
        vars: &[var("LIGHTSTEP_ACCESS_TOKEN"), var("LS_ACCESS_TOKEN")],
        vars_note: ", `lightstep-access-token` in the headers variables",
        setter: "with_access_token",
        show: Show::Value(|c| c.access_token.as_ref().map(|_| REDACTED.into())),
    }
    /// `grpc`, `http/protobuf` or `http/json`
    Protocol = "protocol" {
        vars: &[var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"), var("OTEL_EXPORTER_OTLP_PROTOCOL")],
        setter: "with_protocol",
        show: Show::Value(|c| Some(c.protocol.as_str().into())),
    }
    /// Lightstep ingest region preset: `us` or `eu`
    Region = "region" {
        vars: &[var("LIGHTSTEP_REGION")],
        setter: "with_region",
        show: Show::Value(|c| Some(c.region.as_str().into())),
    }
    /// the OTLP endpoint (HTTP appends `/v1/traces`)
    OtlpEndpoint = "otlp_endpoint" {
        vars: &[var("OTEL_EXPORTER_OTLP_ENDPOINT")],
        setter: "with_otlp_endpoint",
        default: Some("region's ingest"),
        show: Show::Elsewhere,
    }
    /// the full traces endpoint, used as given
    TracesEndpoint = "traces_endpoint" {
        vars: &[
            var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            launchers("OTEL_EXPORTER_OTLP_SPAN_ENDPOINT", "launchers"),
            launchers("LS_SATELLITE_URL", "oldest launchers"),
        ],
        setter: "with_traces_endpoint",
        default: Some("from `otlp_endpoint`"),
        show: Show::Value(|c| Some(c.endpoint.to_string())),
    }
    /// `service.name`; must not be empty
    ServiceName = "service_name" {
        vars: &[var("OTEL_SERVICE_NAME"), var("LS_SERVICE_NAME")],
        attributes: &["service.name"],
        setter: "with_service_name",
        setter_note: " (overrides all); `with_default_service_name` (only when nothing else sets one)",
        show: Show::Value(|c| Some(c.service_name.clone())),
    }
    /// `service.version`
    ServiceVersion = "service_version" {
        vars: &[var("LS_SERVICE_VERSION")],
        attributes: &["service.version"],
        setter: "with_service_version",
        show: Show::Value(|c| Some(c.service_version.clone())),
    }
    /// `deployment.environment.name`
    DeploymentEnvironment = "deployment_environment" {
        attributes: &["deployment.environment.name", "deployment.environment"],
        setter: "with_deployment_environment",
        show: Show::Value(|c| c.deployment_environment.clone()),
    }
    /// more resource attributes
    ResourceAttributes = "resource_attributes" {
        file: Some(Shape::Map),
        vars: &[var("OTEL_RESOURCE_ATTRIBUTES")],
        setter: "with_resource_attribute",
        show: Show::Entries(|c| c.resource_attributes.clone()),
    }
    /// extra request headers; values are secret; no control characters
    Headers = "headers" {
        file: Some(Shape::Map),
        vars: &[var("OTEL_EXPORTER_OTLP_TRACES_HEADERS"), var("OTEL_EXPORTER_OTLP_HEADERS")],
        vars_note: " (merged, per name)",
        setter: "with_header",
        show: Show::Entries(|c| c.headers.iter().map(|h| (h.name.clone(), REDACTED.into())).collect()),
    }
    /// the longest one export request may take
    Timeout = "timeout" {
        vars: &[var("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"), var("OTEL_EXPORTER_OTLP_TIMEOUT")],
        setter: "with_timeout",
        show: Show::Value(|c| duration(c.timeout)),
    }
    /// `gzip` or `none`
    Compression = "compression" {
        vars: &[var("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION"), var("OTEL_EXPORTER_OTLP_COMPRESSION")],
        setter: "with_compression",
        show: Show::Value(|c| Some(c.compression.as_str().into())),
    }
    /// plaintext for schemeless endpoints; allows the token and headers in plaintext to a host
    /// that is not loopback
    TlsInsecure = "tls.insecure" {
        vars: &[
            var("OTEL_EXPORTER_OTLP_TRACES_INSECURE"),
            launchers("OTEL_EXPORTER_OTLP_SPAN_INSECURE", "launchers"),
            var("OTEL_EXPORTER_OTLP_INSECURE"),
        ],
        setter: "with_insecure",
        show: Show::Value(|c| Some(c.tls.insecure.to_string())),
    }
    /// PEM CA certificates trusted besides the system's roots
    TlsCaFile = "tls.ca_file" {
        vars: &[var("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"), var("OTEL_EXPORTER_OTLP_CERTIFICATE")],
        setter: "with_ca_file",
        show: Show::Value(|c| path(&c.tls.ca_file)),
    }
    /// PEM client certificate (mutual TLS); needs the key
    TlsClientCertificate = "tls.client_certificate" {
        vars: &[
            var("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE"),
            var("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"),
        ],
        setter: "with_client_identity",
        show: Show::Value(|c| path(&c.tls.client_certificate)),
    }
    /// PEM private key of the client certificate
    TlsClientKey = "tls.client_key" {
        vars: &[var("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY"), var("OTEL_EXPORTER_OTLP_CLIENT_KEY")],
        setter: "with_client_identity",
        show: Show::Value(|c| path(&c.tls.client_key)),
    }
    /// the HTTP proxy exports go through, `http://[user:password@]host[:port]`: an HTTP CONNECT
    /// tunnel to the endpoint, with TLS to the endpoint inside it; never used for a loopback
    /// endpoint; its user information is secret
    Proxy = "proxy" {
        vars: &[var("HTTPS_PROXY"), var("https_proxy"), var("HTTP_PROXY"), var("http_proxy")],
        vars_note: " (the `HTTPS_` pair for an `https://` endpoint, the `HTTP_` pair for `http://`)",
        setter: "with_proxy",
        show: Show::Value(|c| c.proxy.as_ref().map(|p| p.redacted_url())),
    }
    /// hosts reached without the proxy: comma-separated names (each with its subdomains), IP
    /// addresses, networks (`10.0.0.0/8`) or `*`
    NoProxy = "no_proxy" {
        vars: &[var("NO_PROXY"), var("no_proxy")],
        setter: "with_no_proxy",
        show: Show::Value(|c| c.proxy.as_ref().and_then(|p| p.no_proxy().map(str::to_owned))),
    }
    /// spans held before new ones are dropped; at least 1
    MaxQueueSize = "batch.max_queue_size" {
        vars: &[var("OTEL_BSP_MAX_QUEUE_SIZE")],
        setter: "with_max_queue_size",
        show: Show::Value(|c| Some(c.batch.max_queue_size.to_string())),
    }
    /// spans per request; at least 1, at most the queue size
    MaxExportBatchSize = "batch.max_export_batch_size" {
        vars: &[var("OTEL_BSP_MAX_EXPORT_BATCH_SIZE")],
        setter: "with_max_export_batch_size",
        show: Show::Value(|c| Some(c.batch.max_export_batch_size.to_string())),
    }
    /// the longest a span waits for its batch
    ScheduledDelay = "batch.scheduled_delay" {
        vars: &[var("OTEL_BSP_SCHEDULE_DELAY")],
        setter: "with_scheduled_delay",
        show: Show::Value(|c| duration(c.batch.scheduled_delay)),
    }
    /// the longest one batch export may take, its retries included; a batch still failing then
    /// goes back to the queue (see the exporter docs)
    ExportTimeout = "batch.export_timeout" {
        vars: &[var("OTEL_BSP_EXPORT_TIMEOUT")],
        setter: "with_export_timeout",
        show: Show::Value(|c| duration(c.batch.export_timeout)),
    }
    /// export requests in flight at once; at least 1
    MaxConcurrentExports = "batch.max_concurrent_exports" {
        vars: &[var("OTEL_BSP_MAX_CONCURRENT_EXPORTS")],
        setter: "with_max_concurrent_exports",
        show: Show::Value(|c| Some(c.batch.max_concurrent_exports.to_string())),
    }
    /// `always_on`, `always_off`, `traceidratio`, `parentbased_always_on`,
    /// `parentbased_always_off`, `parentbased_traceidratio`; the specification's `jaeger_remote`,
    /// `parentbased_jaeger_remote` and `xray` give a warning and the default
    SamplerName = "sampler.name" {
        vars: &[var("OTEL_TRACES_SAMPLER")],
        setter: "with_sampler",
        show: Show::Value(|c| Some(c.sampler.name().into())),
    }
    /// the ratio, from 0 to 1 (ratio samplers only; warned about otherwise)
    SamplerArg = "sampler.arg" {
        vars: &[var("OTEL_TRACES_SAMPLER_ARG")],
        setter: "with_sampler",
        default: Some("`1.0` for the ratio samplers; none for the others"),
        show: Show::Value(|c| c.sampler.ratio().map(|r| r.to_string())),
    }
    /// `tracecontext`, `baggage`, `b3`, `b3multi`, `jaeger`, `xray`, `ottrace`, or `none` alone
    Propagators = "propagators" {
        file: Some(Shape::List),
        vars: &[var("OTEL_PROPAGATORS")],
        setter: "with_propagators",
        show: Show::Value(|c| {
            let names: Vec<&str> = c.propagators.iter().map(|p| p.as_str()).collect();
            Some(if names.is_empty() { "none".into() } else { names.join(",") })
        }),
    }
    /// attributes per span
    AttributeCountLimit = "limits.attribute_count" {
        vars: &[var("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT"), var("OTEL_ATTRIBUTE_COUNT_LIMIT")],
        setter: "with_span_limits",
        show: Show::Value(|c| Some(c.limits.attribute_count.to_string())),
    }
    /// longest attribute value
    AttributeValueLengthLimit = "limits.attribute_value_length" {
        vars: &[
            var("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT"),
            var("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"),
        ],
        setter: "with_span_limits",
        default: Some("unlimited"),
        show: Show::Value(|c| {
            Some(c.limits.attribute_value_length.map_or_else(|| "unlimited".into(), |n| n.to_string()))
        }),
    }
    /// events per span
    EventCountLimit = "limits.event_count" {
        vars: &[var("OTEL_SPAN_EVENT_COUNT_LIMIT")],
        setter: "with_span_limits",
        show: Show::Value(|c| Some(c.limits.event_count.to_string())),
    }
    /// links per span
    LinkCountLimit = "limits.link_count" {
        vars: &[var("OTEL_SPAN_LINK_COUNT_LIMIT")],
        setter: "with_span_limits",
        show: Show::Value(|c| Some(c.limits.link_count.to_string())),
    }
    /// attributes per event
    EventAttributeCountLimit = "limits.event_attribute_count" {
        vars: &[var("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT")],
        setter: "with_span_limits",
        show: Show::Value(|c| Some(c.limits.event_attribute_count.to_string())),
    }
    /// attributes per link
    LinkAttributeCountLimit = "limits.link_attribute_count" {
        vars: &[var("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT")],
        setter: "with_span_limits",
        show: Show::Value(|c| Some(c.limits.link_attribute_count.to_string())),
    }
    /// deadline for flushing and shutting down
    ShutdownTimeout = "shutdown_timeout" {
        vars: &[var("LIGHTSTEP_SHUTDOWN_TIMEOUT")],
        setter: "with_shutdown_timeout",
        show: Show::Value(|c| duration(c.shutdown_timeout)),
    }
}

impl Setting {
    pub(crate) fn def(self) -> &'static Def {
        // `DEFS` and the variants come from one list in one order.
        &DEFS[self as usize]
    }

    /// The setting's key: its name in configuration files (dotted within a section, as in
    /// `batch.max_queue_size`), in the effective configuration and in messages.
    pub fn key(self) -> &'static str {
        self.def().key
    }

    /// The environment variables that set it, in precedence order.
    pub fn env_vars(self) -> impl Iterator<Item = &'static str> {
        self.def().vars.iter().map(|v| v.name)
    }

    /// The `ConfigBuilder` method that sets it, as named by [`crate::Source::Code`].
    pub(crate) fn setter(self) -> &'static str {
        self.def().setter
    }
}

/// Every variable lightstep-rs knows by name: those of the settings, and one it does not
/// support but warns about.
pub(crate) fn known_variables() -> impl Iterator<Item = &'static Var> {
    const UNSUPPORTED: Var = var(crate::vars::OTEL_CONFIG_FILE);
    DEFS.iter()
        .flat_map(|d| d.vars)
        .chain(std::iter::once(&UNSUPPORTED))
}

pub(crate) fn is_known_variable(name: &str) -> bool {
    known_variables().any(|v| v.name == name)
}

/// The table as the docs show it: `docs/configuration.md` and this crate's documentation hold
/// the rendered tables, and a test fails when they differ from the table above.
#[cfg(test)]
mod docs {
    use super::*;

    const HOW: &str = "generated from crates/lightstep-config/src/settings.rs: \
        LIGHTSTEP_BLESS=1 cargo test -p lightstep-config --lib -- docs to regenerate";

    fn variables(def: &Def) -> String {
        let mut names: Vec<String> = def
            .vars
            .iter()
            .map(|v| match v.deprecated_by {
                Some(who) => format!("`{}` ({who}, deprecated)", v.name),
                None => format!("`{}`", v.name),
            })
            .collect();
        names.extend(
            def.attributes
                .first()
                .map(|a| format!("`{a}` in `OTEL_RESOURCE_ATTRIBUTES`")),
        );
        format!("{}{}", names.join(", "), def.vars_note)
    }

    fn default(def: &Def) -> String {
        if let Some(text) = def.default {
            return text.into();
        }
        let config = LightstepConfig::default();
        match &def.show {
            Show::Value(show) => show(&config).map_or_else(|| "none".into(), |v| format!("`{v}`")),
            Show::Entries(_) | Show::Elsewhere => "none".into(),
        }
    }

    fn meaning(def: &Def) -> String {
        def.meaning.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// The table of `docs/configuration.md`.
    fn configuration_md() -> String {
        let mut out = String::from(
            "| setting (file key) | environment variable(s), in precedence order | code | default | meaning |\n\
             |---|---|---|---|---|\n",
        );
        for def in DEFS {
            let key = match def.file {
                Some(Shape::Scalar) => format!("`{}`", def.key),
                Some(Shape::Map) => format!("`{}` (table)", def.key),
                Some(Shape::List) => format!("`{}` (list or comma string)", def.key),
                None => format!("`{}` (not a file key: the file itself)", def.key),
            };
            out += &format!(
                "| {key} | {} | `{}`{} | {} | {} |\n",
                variables(def),
                def.setter,
                def.setter_note,
                default(def),
                meaning(def),
            );
        }
        out
    }

    /// The environment-variable table of the crate's documentation (`lib.rs`).
    fn lib_rs() -> String {
        let mut out = String::from("| variable | meaning | default |\n|---|---|---|\n");
        for def in DEFS {
            let variables = variables(def);
            if !variables.is_empty() {
                out += &format!("| {variables} | {} | {} |\n", meaning(def), default(def));
            }
        }
        out.lines().map(|l| format!("//! {l}\n")).collect()
    }

    /// Compares the part of `file` between the marker lines with `generated`; rewrites it when
    /// `LIGHTSTEP_BLESS=1`, and otherwise fails with both versions and the command to run.
    fn check(file: &str, begin: &str, end: &str, generated: &str) {
        let path = format!("{}/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        let (Some(start), Some(stop)) = (text.find(begin), text.find(end)) else {
            panic!("{path} has no `{begin}` ... `{end}` markers around the settings table");
        };
        let start = start + begin.len() + 1;
        if text[start..stop] == *generated {
            return;
        }
        let bless = crate::EnvSnapshot::from_process().get("LIGHTSTEP_BLESS") == Some("1");
        if bless {
            let updated = format!("{}{generated}{}", &text[..start], &text[stop..]);
            std::fs::write(&path, updated).unwrap();
            return;
        }
        // Rows are unique: the lines only in the file, then those only in the table.
        let (old, new): (Vec<&str>, Vec<&str>) = (
            text[start..stop].lines().collect(),
            generated.lines().collect(),
        );
        let only = |a: &[&str], b: &[&str], sign| {
            a.iter()
                .filter(|l| !b.contains(l))
                .map(|l| format!("{sign} {l}\n"))
                .collect::<String>()
        };
        let diff = only(&old, &new, '-') + &only(&new, &old, '+');
        panic!(
            "the settings table in {path} differs from src/settings.rs (- file, + table):\n{}({HOW})",
            if diff.is_empty() {
                "(the same rows in another order)\n"
            } else {
                &diff
            },
        );
    }

    #[test]
    fn docs_tables_are_generated_from_the_settings() {
        check(
            "../../docs/configuration.md",
            &format!("<!-- settings table: {HOW} -->"),
            "<!-- end of settings table -->",
            &configuration_md(),
        );
        check(
            "src/lib.rs",
            &format!("//! <!-- variables table: {HOW} -->"),
            "//! <!-- end of variables table -->",
            &lib_rs(),
        );
    }
}
