//! [`ConfigBuilder`]: the layers (defaults < file < environment < code) and their resolution.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::LightstepConfig;
use crate::env::EnvSnapshot;
use crate::error::{ConfigError, ConfigWarning};
use crate::file::FileLayer;
use crate::model::{
    BatchConfig, Compression, Endpoint, Header, Propagator, Protocol, ProxyConfig, Region, Sampler,
    SpanLimits, TlsConfig, TlsPem, TracesExporter,
};
use crate::parse::{self, Expected};
use crate::secret::SecretString;
use crate::settings::{self, Setting};
use crate::source::Source;
use crate::vars;

/// An endpoint as given in code: its `Debug` hides user information, which the endpoint is
/// refused for but may still hold.
#[derive(Clone)]
struct EndpointText(String);

impl fmt::Debug for EndpointText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&parse::redact_userinfo(&self.0), f)
    }
}

/// Builds a [`LightstepConfig`] from the built-in defaults, a configuration file, the
/// environment and the values set here, in that order of increasing precedence.
///
/// Each `with_*` method names the environment variables it overrides. Nothing is read until
/// [`ConfigBuilder::build`].
#[must_use]
#[derive(Debug, Default, Clone)]
pub struct ConfigBuilder {
    env: Option<EnvSnapshot>,
    file: Option<PathBuf>,
    access_token: Option<SecretString>,
    otlp_endpoint: Option<EndpointText>,
    traces_endpoint: Option<EndpointText>,
    protocol: Option<Protocol>,
    region: Option<Region>,
    service_name: Option<String>,
    default_service_name: Option<String>,
    service_version: Option<String>,
    deployment_environment: Option<String>,
    headers: Vec<(String, SecretString)>,
    resource_attributes: Vec<(String, String)>,
    timeout: Option<Duration>,
    compression: Option<Compression>,
    ca_file: Option<PathBuf>,
    client_certificate: Option<PathBuf>,
    client_key: Option<PathBuf>,
    insecure: Option<bool>,
    max_queue_size: Option<usize>,
    max_export_batch_size: Option<usize>,
    scheduled_delay: Option<Duration>,
    export_timeout: Option<Duration>,
    max_concurrent_exports: Option<usize>,
    sampler: Option<Sampler>,
    propagators: Option<Vec<Propagator>>,
    span_limits: Option<SpanLimits>,
    sdk_disabled: Option<bool>,
    traces_exporter: Option<TracesExporter>,
    shutdown_timeout: Option<Duration>,
    proxy: Option<EndpointText>,
    no_proxy: Option<String>,
}

/// The setters of [`ConfigBuilder`], written once. `ConfigBuilder` defines them from this list
/// (`config_setters!(define)`); the facade's builder, `lightstep::Builder`, forwards each one to
/// the `ConfigBuilder` it holds (`config_setters!(forward field)`), with the same signature and
/// documentation, so that a setting added here reaches both. Not API: may change at any time.
/// See `docs/adr/014-one-way-in.md`.
#[doc(hidden)]
#[macro_export]
macro_rules! config_setters {
    ($($mode:tt)*) => {
        $crate::__config_setter_items! { [$($mode)*]
        /// Uses this snapshot instead of the process environment. Tests fill one by hand;
        /// `EnvSnapshot::empty()` ignores the environment altogether.
        fn with_env(self, env: $crate::EnvSnapshot) {
            self.env = Some(env);
        }

        /// Reads this configuration file (TOML, YAML or JSON, by extension). Overrides
        /// `LIGHTSTEP_CONFIG_FILE`.
        fn with_file(self, path: impl Into<::std::path::PathBuf>) {
            self.file = Some(path.into());
        }

        /// The access token. Overrides `LIGHTSTEP_ACCESS_TOKEN`, `LS_ACCESS_TOKEN` and a
        /// `lightstep-access-token` in `OTEL_EXPORTER_OTLP_[TRACES_]HEADERS`.
        fn with_access_token(self, token: impl Into<$crate::SecretString>) {
            self.access_token = Some(token.into());
        }

        /// The OTLP endpoint (`host:port` or a URL; for HTTP, `/v1/traces` is appended). Overrides
        /// `OTEL_EXPORTER_OTLP_ENDPOINT` and, being code, the environment's traces endpoint too.
        fn with_otlp_endpoint(self, endpoint: impl Into<String>) {
            self.otlp_endpoint = Some(EndpointText(endpoint.into()));
        }

        /// The full traces endpoint, used as given. Overrides `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`.
        fn with_traces_endpoint(self, endpoint: impl Into<String>) {
            self.traces_endpoint = Some(EndpointText(endpoint.into()));
        }

        /// The transport. Overrides `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL`.
        fn with_protocol(self, protocol: $crate::Protocol) {
            self.protocol = Some(protocol);
        }

        /// Lightstep's ingest region, used when no endpoint is set. Overrides `LIGHTSTEP_REGION`.
        fn with_region(self, region: $crate::Region) {
            self.region = Some(region);
        }

        /// `service.name`. Overrides `OTEL_SERVICE_NAME`, `LS_SERVICE_NAME` and `service.name` in
        /// `OTEL_RESOURCE_ATTRIBUTES`.
        fn with_service_name(self, name: impl Into<String>) {
            self.service_name = Some(name.into());
        }

        /// A fallback `service.name`: used only when neither the environment (`OTEL_SERVICE_NAME`,
        /// `LS_SERVICE_NAME`, `service.name` in `OTEL_RESOURCE_ATTRIBUTES`) nor the file sets one.
        /// It replaces the built-in `rust-service`, which is what an application usually wants:
        /// its own name by default, overridable by whoever deploys it.
        fn with_default_service_name(self, name: impl Into<String>) {
            self.default_service_name = Some(name.into());
        }

        /// `service.version`. Overrides `LS_SERVICE_VERSION` and `service.version` in
        /// `OTEL_RESOURCE_ATTRIBUTES`.
        fn with_service_version(self, version: impl Into<String>) {
            self.service_version = Some(version.into());
        }

        /// `deployment.environment.name`. Overrides the same key in `OTEL_RESOURCE_ATTRIBUTES`.
        fn with_deployment_environment(self, environment: impl Into<String>) {
            self.deployment_environment = Some(environment.into());
        }

        /// An extra header on every export request. Overrides the same header in
        /// `OTEL_EXPORTER_OTLP_[TRACES_]HEADERS`.
        fn with_header(self, name: impl Into<String>, value: impl Into<$crate::SecretString>) {
            self.headers.push((name.into(), value.into()));
        }

        /// A resource attribute. Overrides the same key in `OTEL_RESOURCE_ATTRIBUTES`.
        fn with_resource_attribute(self, key: impl Into<String>, value: impl Into<String>) {
            self.resource_attributes.push((key.into(), value.into()));
        }

        /// The export timeout. Overrides `OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT`.
        fn with_timeout(self, timeout: ::std::time::Duration) {
            self.timeout = Some(timeout);
        }

        /// Request compression. Overrides `OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION`.
        fn with_compression(self, compression: $crate::Compression) {
            self.compression = Some(compression);
        }

        /// A PEM file of extra trusted CA certificates. Overrides
        /// `OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE`.
        fn with_ca_file(self, path: impl Into<::std::path::PathBuf>) {
            self.ca_file = Some(path.into());
        }

        /// A client certificate and key (PEM) for mutual TLS. Overrides
        /// `OTEL_EXPORTER_OTLP_[TRACES_]CLIENT_CERTIFICATE` and `..._CLIENT_KEY`.
        fn with_client_identity(self, certificate: impl Into<::std::path::PathBuf>, key: impl Into<::std::path::PathBuf>) {
            self.client_certificate = Some(certificate.into());
            self.client_key = Some(key.into());
        }

        /// Plaintext for schemeless endpoints, and permission to send the token and the headers
        /// (every value a secret) in plaintext to a host that is not loopback. Overrides `OTEL_EXPORTER_OTLP_[TRACES_]INSECURE`.
        fn with_insecure(self, insecure: bool) {
            self.insecure = Some(insecure);
        }

        /// Spans held before new ones are dropped (at least 1; `build` refuses 0). Overrides
        /// `OTEL_BSP_MAX_QUEUE_SIZE`.
        /// lightstep-exporter allocates a queue of up to 131,072 spans when the pipeline starts
        /// (about 360 bytes a span, as the SDK's batch processor does); a larger queue grows with
        /// what it holds.
        fn with_max_queue_size(self, size: usize) {
            self.max_queue_size = Some(size);
        }

        /// Spans in one export request (at least 1, at most the queue size; `build` refuses
        /// others). Overrides `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`.
        fn with_max_export_batch_size(self, size: usize) {
            self.max_export_batch_size = Some(size);
        }

        /// The longest a span waits before its batch is sent. Overrides `OTEL_BSP_SCHEDULE_DELAY`.
        fn with_scheduled_delay(self, delay: ::std::time::Duration) {
            self.scheduled_delay = Some(delay);
        }

        /// The longest one batch export may take, its retries included; a batch still failing then
        /// goes back to the queue while it has room. Overrides `OTEL_BSP_EXPORT_TIMEOUT`.
        fn with_export_timeout(self, timeout: ::std::time::Duration) {
            self.export_timeout = Some(timeout);
        }

        /// Export requests in flight at once (at least 1; `build` refuses 0). Overrides
        /// `OTEL_BSP_MAX_CONCURRENT_EXPORTS`.
        fn with_max_concurrent_exports(self, n: usize) {
            self.max_concurrent_exports = Some(n);
        }

        /// The propagators; empty for none. Overrides `OTEL_PROPAGATORS`.
        fn with_propagators(self, propagators: impl IntoIterator<Item = $crate::Propagator>) {
            self.propagators = Some(propagators.into_iter().collect());
        }

        /// Span and attribute limits. Overrides the `OTEL_*_LIMIT` variables.
        fn with_span_limits(self, limits: $crate::SpanLimits) {
            self.span_limits = Some(limits);
        }

        /// Turns the SDK off: a working no-op pipeline. Overrides `OTEL_SDK_DISABLED`.
        fn with_sdk_disabled(self, disabled: bool) {
            self.sdk_disabled = Some(disabled);
        }

        /// Where spans go. Overrides `OTEL_TRACES_EXPORTER`.
        fn with_traces_exporter(self, exporter: $crate::TracesExporter) {
            self.traces_exporter = Some(exporter);
        }

        /// How long flushing and shutting down may take in all. Overrides
        /// `LIGHTSTEP_SHUTDOWN_TIMEOUT`.
        fn with_shutdown_timeout(self, timeout: ::std::time::Duration) {
            self.shutdown_timeout = Some(timeout);
        }

        /// The HTTP proxy to reach the endpoint through, `http://[user:password@]host:port`: each
        /// connection is an HTTP CONNECT tunnel, inside which TLS to the endpoint is kept.
        /// Overrides `HTTPS_PROXY` / `https_proxy` (for an `https://` endpoint), `HTTP_PROXY` /
        /// `http_proxy` (for an `http://` endpoint) and the file's `proxy`. `NO_PROXY` still
        /// applies, and a loopback endpoint never goes through a proxy.
        fn with_proxy(self, url: impl Into<String>) {
            self.proxy = Some(EndpointText(url.into()));
        }

        /// The hosts reached without the proxy, as `NO_PROXY` writes them: comma-separated names
        /// (each with its subdomains), IP addresses, networks (`10.0.0.0/8`) or `*`. Overrides
        /// `NO_PROXY` / `no_proxy` and the file's `no_proxy`.
        fn with_no_proxy(self, hosts: impl Into<String>) {
            self.no_proxy = Some(hosts.into());
        }
        }
    };
}

/// The two expansions of [`config_setters!`]: the setters themselves, or methods of another
/// builder that pass their arguments on to the `ConfigBuilder` in its field `$field`.
#[doc(hidden)]
#[macro_export]
macro_rules! __config_setter_items {
    (
        [define]
        $( $(#[$attr:meta])* fn $name:ident($self:ident $(, $arg:ident: $ty:ty)*) $body:block )*
    ) => {
        $(
            $(#[$attr])*
            pub fn $name(mut $self $(, $arg: $ty)*) -> Self {
                $body
                $self
            }
        )*
    };
    (
        [forward $field:ident]
        $( $(#[$attr:meta])* fn $name:ident($self:ident $(, $arg:ident: $ty:ty)*) $body:block )*
    ) => {
        $(
            $(#[$attr])*
            pub fn $name(mut $self $(, $arg: $ty)*) -> Self {
                $self.$field = $self.$field.$name($($arg),*);
                $self
            }
        )*
    };
}

impl ConfigBuilder {
    /// A builder with nothing set in code.
    pub fn new() -> Self {
        Self::default()
    }

    config_setters!(define);

    /// The sampler. Overrides `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`.
    ///
    /// Not in `config_setters!`: the facade's builder has the pipeline's `with_sampler`, which
    /// takes any sampler of the SDK (see `docs/adr/014-one-way-in.md`).
    pub fn with_sampler(mut self, sampler: Sampler) -> Self {
        self.sampler = Some(sampler);
        self
    }

    /// Reads the file and the environment, applies the values set here, and validates the
    /// result. Every problem found is reported, in one [`ConfigError::Multiple`] when there are
    /// several. The warnings are in [`LightstepConfig::warnings`].
    pub fn build(self) -> Result<LightstepConfig, ConfigError> {
        self.build_with_warnings().0
    }

    /// [`ConfigBuilder::build`], and the warnings whether or not it succeeded: when the
    /// configuration fails, a warning is often what explains it (a misspelt
    /// `LS_ACESS_TOKEN` beside the missing token). On success they are also in
    /// [`LightstepConfig::warnings`].
    pub fn build_with_warnings(self) -> (Result<LightstepConfig, ConfigError>, Vec<ConfigWarning>) {
        let env = self.env.clone().unwrap_or_else(EnvSnapshot::from_process);
        let mut errors = Vec::new();
        let file_path = match &self.file {
            Some(path) => Some((path.clone(), code(Setting::ConfigFile))),
            None => Setting::ConfigFile
                .env_vars()
                .find_map(|var| Some((PathBuf::from(env.get(var)?), Source::env(var)))),
        };
        let file = file_path
            .as_ref()
            .and_then(|(path, _)| FileLayer::load(path, &mut errors));
        let mut r = Resolver {
            env: &env,
            file: file.as_ref(),
            file_failed: file_path.is_some() && file.is_none(),
            endpoint_failed: false,
            errors,
            warnings: Vec::new(),
            sources: BTreeMap::new(),
            entry_sources: BTreeMap::new(),
        };
        let config = r.resolve(self, file_path);
        let warnings = config.warnings.clone();
        match ConfigError::from_list(r.errors) {
            Some(error) => (Err(error), warnings),
            None => (Ok(config), warnings),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Layer {
    Code,
    Env,
    File,
}

/// One candidate value for a setting, in precedence order.
struct Candidate {
    layer: Layer,
    source: Source,
    value: String,
}

/// The source of a value set in code with the setting's own method.
fn code(setting: Setting) -> Source {
    Source::Code {
        setter: setting.setter(),
    }
}

impl Candidate {
    fn code(setting: Setting, value: impl Into<String>) -> Self {
        Self {
            layer: Layer::Code,
            source: code(setting),
            value: value.into(),
        }
    }
    fn env(var: &str, value: impl Into<String>) -> Self {
        Self {
            layer: Layer::Env,
            source: Source::env(var),
            value: value.into(),
        }
    }
}

/// The variable lightstep-rs reads, among those `family` accepts, closest to the misspelt
/// `name`, with its edit distance.
fn closest_variable(name: &str, family: impl Fn(&str) -> bool) -> Option<(usize, &'static str)> {
    settings::known_variables()
        .map(|v| v.name)
        .filter(|v| family(v))
        .map(|v| (crate::file::edit_distance(name, v), v))
        .min()
}

struct Resolver<'a> {
    env: &'a EnvSnapshot,
    file: Option<&'a FileLayer>,
    /// A file was named but could not be read or parsed (its error is reported): settings it
    /// may hold, such as the token, are not reported missing on top of it.
    file_failed: bool,
    /// The endpoint given did not parse (its error is reported): the fallback to Lightstep's
    /// ingest is not what the user asked for, so its need of a token is not reported on top.
    endpoint_failed: bool,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigWarning>,
    sources: BTreeMap<Setting, Source>,
    entry_sources: BTreeMap<(Setting, String), Source>,
}

/// The largest certificate or key file read: a bundle of every public CA is about 250 KiB.
const MAX_PEM_BYTES: u64 = 1 << 20;

/// Reads a PEM file that must be a regular file of at most [`MAX_PEM_BYTES`]: a path such as
/// `/dev/zero` or a FIFO must not hang the process or fill its memory.
fn read_pem_file(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    // `stat` before `open`: opening a FIFO for reading would block.
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if meta.len() > MAX_PEM_BYTES {
        return Err(std::io::Error::other("larger than 1 MiB"));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_PEM_BYTES)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// A header as found in one layer: name, value, where it came from.
type RawHeader = (String, String, Source);

impl Resolver<'_> {
    fn env_candidates(&self, setting: Setting) -> Vec<Candidate> {
        setting
            .env_vars()
            .filter_map(|v| self.env.get(v).map(|value| Candidate::env(v, value)))
            .collect()
    }

    fn file_candidate(&self, setting: Setting) -> Option<Candidate> {
        let file = self.file?;
        file.scalar(setting).map(|value| Candidate {
            layer: Layer::File,
            source: Source::file(&file.path, setting.key()),
            value: value.into(),
        })
    }

    /// The winning candidate (the first), warning when others of its layer disagree.
    fn pick(
        &mut self,
        setting: Setting,
        candidates: Vec<Candidate>,
        secret: bool,
    ) -> Option<Candidate> {
        let mut iter = candidates.into_iter();
        let winner = iter.next()?;
        for other in iter.filter(|c| c.layer == winner.layer) {
            if other.value != winner.value {
                let shown = if secret {
                    String::new()
                } else {
                    format!(
                        " (`{}` over `{}`)",
                        parse::redact_userinfo(&winner.value),
                        parse::redact_userinfo(&other.value)
                    )
                };
                self.warnings.push(ConfigWarning::new(format!(
                    "{} and {} both set `{}` and disagree; using the first{shown}",
                    winner.source,
                    other.source,
                    setting.key()
                )));
            }
        }
        self.sources.insert(setting, winner.source.clone());
        Some(winner)
    }

    /// A setting with one value: code, then the environment variables in order, then the file
    /// key, then the default.
    fn setting<T>(
        &mut self,
        setting: Setting,
        code_value: Option<T>,
        default: T,
        parse: impl Fn(&str) -> Result<T, Expected>,
    ) -> T {
        if let Some(value) = code_value {
            self.sources.insert(setting, code(setting));
            return value;
        }
        // The variables go from specific to generic (`..._TRACES_TIMEOUT`, `..._TIMEOUT`): the
        // first set one wins and the others are no conflict, only less specific.
        let mut candidates: Vec<Candidate> =
            self.env_candidates(setting).into_iter().take(1).collect();
        candidates.extend(self.file_candidate(setting));
        let Some(winner) = self.pick(setting, candidates, false) else {
            self.sources.insert(setting, Source::Default);
            return default;
        };
        match parse(&winner.value) {
            Ok(value) => value,
            Err(expected) => {
                self.errors.push(ConfigError::InvalidValue {
                    origin: winner.source,
                    value: winner.value,
                    expected,
                });
                default
            }
        }
    }

    fn resolve(&mut self, b: ConfigBuilder, file: Option<(PathBuf, Source)>) -> LightstepConfig {
        self.check_environment();
        let defaults = LightstepConfig::default();

        let sdk_disabled =
            self.setting(Setting::SdkDisabled, b.sdk_disabled, false, parse::boolean);
        let traces_exporter = self.traces_exporter(&b);
        let protocol = self.setting(
            Setting::Protocol,
            b.protocol,
            Protocol::Grpc,
            parse::protocol,
        );
        let insecure = self.setting(Setting::TlsInsecure, b.insecure, false, parse::boolean);
        let region = self.setting(Setting::Region, b.region, Region::Us, parse::region);
        let region_explicit = self.sources.get(&Setting::Region) != Some(&Source::Default);
        let endpoint = self.endpoint(&b, protocol, insecure, region, region_explicit);

        let (headers, header_tokens) = self.headers(&b);
        let access_token = self.access_token(&b, header_tokens);
        let resource = self.resource_attributes(&b);

        let service_name = self
            .named_setting(Setting::ServiceName, &b.service_name, &resource)
            .or_else(|| {
                let name = b.default_service_name.clone()?;
                self.sources.insert(
                    Setting::ServiceName,
                    Source::Code {
                        setter: "with_default_service_name",
                    },
                );
                Some(name)
            })
            .unwrap_or(defaults.service_name);
        if service_name.trim().is_empty() {
            let source = self.sources[&Setting::ServiceName].clone();
            self.errors.push(ConfigError::InvalidValue {
                origin: source,
                value: service_name.clone(),
                expected: "a non-empty service name".into(),
            });
        }
        let service_version = self
            .named_setting(Setting::ServiceVersion, &b.service_version, &resource)
            .unwrap_or(defaults.service_version);
        let deployment_environment = self.named_setting(
            Setting::DeploymentEnvironment,
            &b.deployment_environment,
            &resource,
        );
        let resource_attributes = resource
            .into_iter()
            .filter(|(k, _)| {
                !Setting::ALL
                    .iter()
                    .any(|s| s.def().attributes.contains(&k.as_str()))
            })
            .map(|(k, (v, source))| {
                self.entry_sources
                    .insert((Setting::ResourceAttributes, k.clone()), source);
                (k, v)
            })
            .collect();

        let timeout = self.setting(
            Setting::Timeout,
            b.timeout,
            defaults.timeout,
            parse::bounded_duration,
        );
        let compression = self.setting(
            Setting::Compression,
            b.compression,
            Compression::None,
            parse::compression,
        );
        let tls = self.tls(&b, insecure);
        let proxy = self.proxy(&b, &endpoint);
        let batch = self.batch(&b);
        let sampler = self.sampler(&b);
        let propagators = self.propagators(&b);
        let limits = self.limits(&b);
        let shutdown_timeout = self.setting(
            Setting::ShutdownTimeout,
            b.shutdown_timeout,
            defaults.shutdown_timeout,
            parse::bounded_duration,
        );

        // Values set in code skip the parsers: check their range here too.
        for (setting, value) in [
            (Setting::Timeout, timeout),
            (Setting::ShutdownTimeout, shutdown_timeout),
            (Setting::ScheduledDelay, batch.scheduled_delay),
            (Setting::ExportTimeout, batch.export_timeout),
        ] {
            if value < Duration::from_millis(1) || value > parse::MAX_DURATION {
                self.errors.push(ConfigError::InvalidValue {
                    origin: self.sources[&setting].clone(),
                    value: format!("{value:?}"),
                    expected: "a duration from 1ms to 24h".into(),
                });
            }
        }
        if !sdk_disabled && traces_exporter == TracesExporter::Otlp {
            self.check_transport(&endpoint, access_token.is_some(), &headers, insecure);
        }

        if let Some((_, source)) = &file {
            self.sources.insert(Setting::ConfigFile, source.clone());
        }
        LightstepConfig {
            access_token,
            endpoint,
            protocol,
            region,
            service_name,
            service_version,
            deployment_environment,
            resource_attributes,
            headers,
            timeout,
            compression,
            tls,
            batch,
            sampler,
            propagators,
            limits,
            sdk_disabled,
            traces_exporter,
            shutdown_timeout,
            proxy,
            config_file: file.map(|(path, _)| path),
            sources: std::mem::take(&mut self.sources),
            entry_sources: std::mem::take(&mut self.entry_sources),
            warnings: std::mem::take(&mut self.warnings),
        }
    }

    /// Warns about variables that look like ours but are not, and refuses values that are not
    /// UTF-8: a typo in a variable name must not silently do nothing.
    fn check_environment(&mut self) {
        for var in self.env.not_unicode() {
            if settings::is_known_variable(var) {
                self.errors
                    .push(ConfigError::NotUnicode { var: var.clone() });
            }
        }
        if self.env.get("OTEL_LOG_LEVEL").is_some() {
            self.warnings.push(ConfigWarning::new(
                "`OTEL_LOG_LEVEL` is not read: lightstep-rs logs through `tracing`; set your \
                 subscriber's filter (for example RUST_LOG=lightstep_exporter=debug)",
            ));
        }
        if self.env.get(vars::OTEL_CONFIG_FILE).is_some() {
            self.warnings.push(ConfigWarning::new(format!(
                "`{}` is not supported and was ignored; name a TOML, YAML or JSON file with `{}`",
                vars::OTEL_CONFIG_FILE,
                Setting::ConfigFile
                    .env_vars()
                    .collect::<Vec<_>>()
                    .join("` or `"),
            )));
        }
        let deprecated = settings::known_variables().filter(|v| v.deprecated_by.is_some());
        for legacy in deprecated.map(|v| v.name) {
            if self.env.get(legacy).is_some() {
                self.warnings.push(ConfigWarning::new(format!(
                    "`{legacy}` is a deprecated launcher variable; it works, but prefer its `OTEL_EXPORTER_OTLP_TRACES_*` form"
                )));
            }
        }
        for name in self.env.names() {
            if let Some((_, why)) = vars::LAUNCHER_IGNORED.iter().find(|(v, _)| *v == name) {
                self.warnings.push(ConfigWarning::new(format!(
                    "`{name}` (a Lightstep launcher variable) is ignored: {why}"
                )));
                continue;
            }
            let ours = name.starts_with("LIGHTSTEP_") || name.starts_with("LS_");
            if ours && !settings::is_known_variable(name) {
                let hint = closest_variable(name, |v| {
                    v.starts_with("LIGHTSTEP_") || v.starts_with("LS_")
                })
                .map(|(_, v)| format!("; did you mean `{v}`?"))
                .unwrap_or_default();
                self.warnings.push(ConfigWarning::new(format!(
                    "environment variable `{name}` is not one lightstep-rs reads{hint}"
                )));
                continue;
            }
            // `OTEL_*` is shared with every OpenTelemetry tool: warn only about names of the
            // families lightstep-rs reads, or names close to one it reads, that are no
            // variable of the specification either.
            if name.starts_with("OTEL_")
                && !settings::is_known_variable(name)
                && !vars::is_other_otel_variable(name)
            {
                let closest = closest_variable(name, |v| v.starts_with("OTEL_"));
                let family = ["OTEL_EXPORTER_OTLP_", "OTEL_BSP_", "OTEL_TRACES_"]
                    .iter()
                    .any(|prefix| name.starts_with(prefix));
                let close = closest.filter(|&(distance, _)| distance <= 3);
                // The launchers' old `SPAN_` names of settings lightstep-rs reads only under
                // their `TRACES_` names.
                let renamed = name
                    .strip_prefix("OTEL_EXPORTER_OTLP_SPAN_")
                    .map(|setting| format!("OTEL_EXPORTER_OTLP_TRACES_{setting}"))
                    .filter(|v| settings::is_known_variable(v));
                if family || close.is_some() {
                    let hint = match (renamed, close) {
                        (Some(v), _) => format!("; set `{v}` instead"),
                        (None, Some((_, v))) => format!("; did you mean `{v}`?"),
                        (None, None) => String::new(),
                    };
                    self.warnings.push(ConfigWarning::new(format!(
                        "environment variable `{name}` is not one lightstep-rs reads{hint}"
                    )));
                }
            }
        }
    }

    fn endpoint(
        &mut self,
        b: &ConfigBuilder,
        protocol: Protocol,
        insecure: bool,
        region: Region,
        region_explicit: bool,
    ) -> Endpoint {
        // Layer first (code > env > file), then within a layer the traces-specific setting
        // before the generic one: `with_otlp_endpoint` in code beats the environment's
        // `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`.
        let mut candidates: Vec<(Candidate, bool)> = Vec::new();
        if let Some(e) = &b.traces_endpoint {
            candidates.push((Candidate::code(Setting::TracesEndpoint, &e.0), true));
        }
        if let Some(e) = &b.otlp_endpoint {
            candidates.push((Candidate::code(Setting::OtlpEndpoint, &e.0), false));
        }
        for c in self.env_candidates(Setting::TracesEndpoint) {
            candidates.push((c, true));
        }
        for c in self.env_candidates(Setting::OtlpEndpoint) {
            candidates.push((c, false));
        }
        candidates.extend(
            self.file_candidate(Setting::TracesEndpoint)
                .map(|c| (c, true)),
        );
        candidates.extend(
            self.file_candidate(Setting::OtlpEndpoint)
                .map(|c| (c, false)),
        );
        // Only disagreeing names for the same kind of endpoint are worth a warning.
        let first_specific = candidates.first().map(|(_, specific)| *specific);
        let same_kind: Vec<Candidate> = candidates
            .into_iter()
            .filter(|(_, s)| Some(*s) == first_specific)
            .map(|(c, _)| c)
            .collect();
        let Some(winner) = self.pick(Setting::TracesEndpoint, same_kind, false) else {
            self.sources.insert(
                Setting::TracesEndpoint,
                self.sources
                    .get(&Setting::Region)
                    .cloned()
                    .unwrap_or(Source::Default),
            );
            return region.traces_endpoint(protocol);
        };
        let is_specific = first_specific.unwrap_or(false);
        let (mut url, explicit_scheme) = match parse::endpoint(&winner.value, insecure) {
            Ok(parsed) => parsed,
            Err(expected) => {
                self.endpoint_failed = true;
                self.errors.push(ConfigError::InvalidValue {
                    origin: winner.source,
                    value: parse::redact_userinfo(&winner.value).into_owned(),
                    expected,
                });
                return region.traces_endpoint(protocol);
            }
        };
        if protocol.is_http() && !is_specific {
            let path = url.path().trim_end_matches('/').to_owned();
            url.set_path(&format!("{path}/v1/traces"));
        }
        if explicit_scheme && insecure && url.scheme() == "https" {
            self.warnings.push(ConfigWarning::new(format!(
                "insecure is set but {} names an https endpoint: TLS is used",
                winner.source
            )));
        }
        let endpoint = Endpoint::from_url(url);
        if region_explicit && endpoint.lightstep_region() != Some(region) {
            self.warnings.push(ConfigWarning::new(format!(
                "the region `{}` is ignored: the endpoint `{endpoint}` is set by {}",
                region.as_str(),
                winner.source
            )));
        }
        endpoint
    }

    /// Merges the headers of every layer; the highest layer wins per header name. Returns the
    /// `lightstep-access-token` values found among them separately, as token candidates.
    fn headers(&mut self, b: &ConfigBuilder) -> (Vec<Header>, Vec<Candidate>) {
        let mut merged: BTreeMap<String, (SecretString, Source)> = BTreeMap::new();
        let mut tokens: Vec<Candidate> = Vec::new();
        let mut layers: Vec<(Layer, Vec<RawHeader>)> = Vec::new();
        if let Some(file) = self.file {
            let entries = file
                .map(Setting::Headers)
                .iter()
                .map(|(k, v)| {
                    let key = format!("{}.{k}", Setting::Headers.key());
                    (k.clone(), v.clone(), Source::file(&file.path, key))
                })
                .collect();
            layers.push((Layer::File, entries));
        }
        // Lowest first, as each layer overrides the one before.
        let vars: Vec<&str> = Setting::Headers.env_vars().collect();
        for var in vars.into_iter().rev() {
            let Some(text) = self.env.get(var) else {
                continue;
            };
            match parse::key_values(text) {
                Ok(pairs) => layers.push((
                    Layer::Env,
                    pairs
                        .into_iter()
                        .map(|(k, v)| (k, v, Source::env(var)))
                        .collect(),
                )),
                Err(e) => self.errors.push(ConfigError::InvalidSecret {
                    origin: Source::env(var),
                    reason: format!("expected {}", e.describe()),
                }),
            }
        }
        let code = b
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.expose_secret().to_owned(),
                    code(Setting::Headers),
                )
            })
            .collect();
        layers.push((Layer::Code, code));

        for (layer, entries) in layers {
            for (name, value, source) in entries {
                let name = match parse::header_name(name.trim()) {
                    Ok(name) => name,
                    Err(expected) => {
                        // Not shown: with a misplaced separator (`name:value`) the "name"
                        // holds the secret value.
                        self.errors.push(ConfigError::InvalidSecret {
                            origin: source,
                            reason: format!("a header name is invalid: expected {expected}"),
                        });
                        continue;
                    }
                };
                if let Err(reason) = parse::header_value(&value) {
                    self.errors.push(ConfigError::InvalidSecret {
                        origin: source,
                        reason: format!("header `{name}`: {reason}"),
                    });
                    continue;
                }
                if name == crate::ACCESS_TOKEN_HEADER {
                    tokens.push(Candidate {
                        layer,
                        source,
                        value,
                    });
                } else {
                    merged.insert(name, (SecretString::new(value), source));
                }
            }
        }
        // Highest layer first, as `pick` expects.
        tokens.reverse();
        let headers = merged
            .into_iter()
            .map(|(name, (value, source))| {
                self.entry_sources
                    .insert((Setting::Headers, name.clone()), source);
                Header { name, value }
            })
            .collect();
        (headers, tokens)
    }

    fn access_token(
        &mut self,
        b: &ConfigBuilder,
        header_tokens: Vec<Candidate>,
    ) -> Option<SecretString> {
        let mut candidates = Vec::new();
        if let Some(token) = b.access_token.as_ref().filter(|t| !t.is_empty()) {
            candidates.push(Candidate::code(Setting::AccessToken, token.expose_secret()));
        }
        let (code_headers, rest): (Vec<_>, Vec<_>) = header_tokens
            .into_iter()
            .partition(|c| c.layer == Layer::Code);
        candidates.extend(code_headers);
        candidates.extend(self.env_candidates(Setting::AccessToken));
        let (env_headers, file_headers): (Vec<_>, Vec<_>) =
            rest.into_iter().partition(|c| c.layer == Layer::Env);
        candidates.extend(env_headers);
        candidates.extend(self.file_candidate(Setting::AccessToken));
        candidates.extend(file_headers);
        let winner = self.pick(Setting::AccessToken, candidates, true)?;
        if let Err(reason) = parse::header_value(&winner.value) {
            self.errors.push(ConfigError::InvalidSecret {
                origin: winner.source,
                reason,
            });
            return None;
        }
        Some(SecretString::new(winner.value.trim()))
    }

    /// Resource attributes of every layer, highest layer winning per key.
    fn resource_attributes(&mut self, b: &ConfigBuilder) -> BTreeMap<String, (String, Source)> {
        const SETTING: Setting = Setting::ResourceAttributes;
        let mut merged = BTreeMap::new();
        if let Some(file) = self.file {
            for (k, v) in file.map(SETTING) {
                let key = format!("{}.{k}", SETTING.key());
                merged.insert(k.clone(), (v.clone(), Source::file(&file.path, key)));
            }
        }
        for var in SETTING.env_vars() {
            let Some(text) = self.env.get(var) else {
                continue;
            };
            match parse::key_values(text) {
                Ok(pairs) => {
                    for (k, v) in pairs {
                        merged.insert(k, (v, Source::env(var)));
                    }
                }
                Err(e) => self.errors.push(ConfigError::InvalidValue {
                    origin: Source::env(var),
                    value: text.to_owned(),
                    expected: e.describe(),
                }),
            }
        }
        for (k, v) in &b.resource_attributes {
            merged.insert(k.clone(), (v.clone(), code(SETTING)));
        }
        // An attribute's deprecated names, which a setting still reads (`deployment.environment`).
        for s in Setting::ALL {
            if let [current, deprecated @ ..] = s.def().attributes {
                for old in deprecated.iter().filter(|old| merged.contains_key(**old)) {
                    self.warnings.push(ConfigWarning::new(format!(
                        "the resource attribute `{old}` is deprecated; it is sent as `{current}`"
                    )));
                }
            }
        }
        merged
    }

    /// A setting that can also arrive as a resource attribute (`service.name` and the like).
    /// Order: code, its own variables, the attribute from the environment, the file key, the
    /// attribute from the file; `OTEL_SERVICE_NAME` beating `service.name` in
    /// `OTEL_RESOURCE_ATTRIBUTES`, as the specification says.
    fn named_setting(
        &mut self,
        setting: Setting,
        code_value: &Option<String>,
        resource: &BTreeMap<String, (String, Source)>,
    ) -> Option<String> {
        let mut candidates = Vec::new();
        if let Some(v) = code_value {
            candidates.push(Candidate::code(setting, v));
        }
        let from_resource = |layer: Layer| {
            setting.def().attributes.iter().filter_map(move |a| {
                let (value, source) = resource.get(*a)?;
                let this = match source {
                    Source::Code { .. } => Layer::Code,
                    Source::Env { .. } => Layer::Env,
                    _ => Layer::File,
                };
                (this == layer).then(|| Candidate {
                    layer,
                    source: source.clone(),
                    value: value.clone(),
                })
            })
        };
        candidates.extend(from_resource(Layer::Code));
        candidates.extend(self.env_candidates(setting));
        candidates.extend(from_resource(Layer::Env));
        candidates.extend(self.file_candidate(setting));
        candidates.extend(from_resource(Layer::File));
        match self.pick(setting, candidates, false) {
            Some(winner) => Some(winner.value),
            None => {
                self.sources.insert(setting, Source::Default);
                None
            }
        }
    }

    fn path_setting(
        &mut self,
        setting: Setting,
        code_value: Option<PathBuf>,
    ) -> Option<(PathBuf, Vec<u8>)> {
        let path = self.setting(setting, code_value.map(Some), None, |s| {
            Ok(Some(PathBuf::from(s.trim())))
        })?;
        let source = self.sources[&setting].clone();
        // Read once, here, bounded: the exporter builds its TLS from these bytes.
        let (bytes, reason) = match read_pem_file(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                (Vec::new(), Some("does not exist".to_owned()))
            }
            Err(e) => (Vec::new(), Some(format!("cannot be read ({e})"))),
            Ok(bytes) if !bytes.windows(11).any(|w| w == b"-----BEGIN ") => (
                Vec::new(),
                Some("is not a PEM file (no `-----BEGIN` line)".to_owned()),
            ),
            Ok(bytes) => (bytes, None),
        };
        if let Some(reason) = reason {
            self.errors.push(ConfigError::TlsFile {
                origin: source,
                path: path.clone(),
                reason,
            });
        }
        Some((path, bytes))
    }

    /// The proxy: code, then the variable for the endpoint's scheme (`HTTPS_PROXY` for an
    /// `https://` endpoint, `HTTP_PROXY` for `http://`), then the file. `NO_PROXY` comes with it.
    fn proxy(&mut self, b: &ConfigBuilder, endpoint: &Endpoint) -> Option<ProxyConfig> {
        let no_proxy = self.setting(Setting::NoProxy, b.no_proxy.clone().map(Some), None, |s| {
            Ok(Some(s.trim().to_owned()))
        });
        let mut candidates: Vec<Candidate> = b
            .proxy
            .iter()
            .map(|p| Candidate::code(Setting::Proxy, &p.0))
            .collect();
        let https = endpoint.is_tls();
        candidates.extend(self.env_candidates(Setting::Proxy).into_iter().filter(|c| {
            let var = match &c.source {
                Source::Env { var } => var.as_str(),
                _ => "",
            };
            var.eq_ignore_ascii_case("HTTPS_PROXY") == https
        }));
        candidates.extend(self.file_candidate(Setting::Proxy));
        let Some(winner) = self.pick(Setting::Proxy, candidates, false) else {
            self.sources.insert(Setting::Proxy, Source::Default);
            return None;
        };
        match parse::proxy(&winner.value) {
            Ok(url) => Some(ProxyConfig {
                url: SecretString::new(url),
                no_proxy,
            }),
            Err(expected) => {
                self.errors.push(ConfigError::InvalidValue {
                    origin: winner.source,
                    value: parse::redact_userinfo(&winner.value).into_owned(),
                    expected,
                });
                None
            }
        }
    }

    fn tls(&mut self, b: &ConfigBuilder, insecure: bool) -> TlsConfig {
        let ca_file = self.path_setting(Setting::TlsCaFile, b.ca_file.clone());
        let client_certificate =
            self.path_setting(Setting::TlsClientCertificate, b.client_certificate.clone());
        let client_key = self.path_setting(Setting::TlsClientKey, b.client_key.clone());
        if client_certificate.is_some() != client_key.is_some() {
            let (given, missing) = if client_certificate.is_some() {
                (Setting::TlsClientCertificate, "client key")
            } else {
                (Setting::TlsClientKey, "client certificate")
            };
            self.errors.push(ConfigError::Inconsistent(format!(
                "{} sets a client {} for mutual TLS but no {missing} is set",
                self.sources[&given],
                if client_certificate.is_some() {
                    "certificate"
                } else {
                    "key"
                },
            )));
        }
        let (ca_file, ca) = ca_file.map(|(p, b)| (p, b.into())).unzip();
        let (client_certificate, certificate) =
            client_certificate.map(|(p, b)| (p, b.into())).unzip();
        // A key is text; a byte that is not UTF-8 lies outside its PEM sections.
        let (client_key, key) = client_key
            .map(|(p, b)| (p, SecretString::new(String::from_utf8_lossy(&b))))
            .unzip();
        TlsConfig {
            ca_file,
            client_certificate,
            client_key,
            insecure,
            pem: TlsPem {
                ca,
                client_certificate: certificate,
                client_key: key,
            },
        }
    }

    fn batch(&mut self, b: &ConfigBuilder) -> BatchConfig {
        let d = BatchConfig::default();
        let batch = BatchConfig {
            max_queue_size: self.setting(
                Setting::MaxQueueSize,
                b.max_queue_size,
                d.max_queue_size,
                parse::positive_count,
            ),
            max_export_batch_size: self.setting(
                Setting::MaxExportBatchSize,
                b.max_export_batch_size,
                d.max_export_batch_size,
                parse::positive_count,
            ),
            scheduled_delay: self.setting(
                Setting::ScheduledDelay,
                b.scheduled_delay,
                d.scheduled_delay,
                parse::bounded_duration,
            ),
            export_timeout: self.setting(
                Setting::ExportTimeout,
                b.export_timeout,
                d.export_timeout,
                parse::bounded_duration,
            ),
            max_concurrent_exports: self.setting(
                Setting::MaxConcurrentExports,
                b.max_concurrent_exports,
                d.max_concurrent_exports,
                parse::positive_count,
            ),
        };
        // The environment and files cannot say 0 (`positive_count`); code can.
        for (setting, value) in [
            (Setting::MaxQueueSize, batch.max_queue_size),
            (Setting::MaxExportBatchSize, batch.max_export_batch_size),
            (Setting::MaxConcurrentExports, batch.max_concurrent_exports),
        ] {
            if value == 0 {
                self.errors.push(ConfigError::Inconsistent(format!(
                    "{} is 0 ({}): it must be at least 1",
                    setting.key(),
                    self.sources[&setting]
                )));
            }
        }
        if batch.max_export_batch_size > batch.max_queue_size {
            self.errors.push(ConfigError::Inconsistent(format!(
                "the export batch size {} ({}) is larger than the queue size {} ({}): a batch is taken from the queue",
                batch.max_export_batch_size,
                self.sources[&Setting::MaxExportBatchSize],
                batch.max_queue_size,
                self.sources[&Setting::MaxQueueSize],
            )));
        }
        batch
    }

    /// Warns that `names`, values of the setting `key` that the OpenTelemetry specification
    /// defines, are not implemented, and says what is done instead. `what` names the kind of
    /// value, singular and plural (`("a sampler", "samplers")`).
    fn unsupported(&mut self, setting: Setting, what: (&str, &str), names: &[&str], instead: &str) {
        let what = if names.len() == 1 { what.0 } else { what.1 };
        let names = names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        self.warnings.push(ConfigWarning::new(format!(
            "{} names {names}, {what} that the OpenTelemetry specification defines and lightstep-rs does not support; {instead}",
            self.sources[&setting]
        )));
    }

    fn traces_exporter(&mut self, b: &ConfigBuilder) -> TracesExporter {
        let list = self.setting(
            Setting::TracesExporter,
            b.traces_exporter.map(parse::ExporterList::of),
            parse::ExporterList::of(TracesExporter::Otlp),
            parse::traces_exporter,
        );
        if !list.skipped.is_empty() {
            let instead = match list.exporter {
                Some(exporter) => format!("skipped, and `{}` is used", exporter.as_str()),
                None => "the setting is ignored, as the specification says, and the default `otlp` is used".into(),
            };
            self.unsupported(
                Setting::TracesExporter,
                ("an exporter", "exporters"),
                &list.skipped,
                &instead,
            );
        }
        list.exporter.unwrap_or_else(|| {
            self.sources
                .insert(Setting::TracesExporter, Source::Default);
            TracesExporter::Otlp
        })
    }

    fn sampler(&mut self, b: &ConfigBuilder) -> Sampler {
        if let Some(sampler) = b.sampler {
            let source = code(Setting::SamplerName);
            if let Some(r) = sampler.ratio().filter(|r| !(0.0..=1.0).contains(r)) {
                self.errors.push(ConfigError::InvalidValue {
                    origin: source.clone(),
                    value: r.to_string(),
                    expected: "a ratio from 0 to 1".into(),
                });
            }
            self.sources.insert(Setting::SamplerName, source.clone());
            self.sources.insert(Setting::SamplerArg, source);
            return sampler;
        }
        let default = Sampler::default();
        let name = self.setting(
            Setting::SamplerName,
            None,
            parse::SamplerName::Supported(default.name(), false),
            parse::sampler_name,
        );
        let (name, takes_ratio) = match name {
            parse::SamplerName::Supported(name, takes_ratio) => (name, takes_ratio),
            parse::SamplerName::Unsupported(name) => {
                // The argument belongs to the sampler that is not there (for `jaeger_remote`, a
                // list of its own settings): it is not parsed, only reported as ignored.
                let arg = self
                    .env_candidates(Setting::SamplerArg)
                    .into_iter()
                    .chain(self.file_candidate(Setting::SamplerArg))
                    .next()
                    .map(|c| c.source);
                let ignored = arg
                    .as_ref()
                    .map(|s| format!(", and {s} is ignored"))
                    .unwrap_or_default();
                self.unsupported(
                    Setting::SamplerName,
                    ("a sampler", "samplers"),
                    &[name],
                    &format!(
                        "the setting is ignored, as the specification says, and the default `{}` is used{ignored}",
                        default.name()
                    ),
                );
                // Ignored, as if unset: the effective configuration shows the default's source.
                self.sources.insert(Setting::SamplerName, Source::Default);
                self.sources.insert(Setting::SamplerArg, Source::Default);
                return default;
            }
        };
        let ratio = self.setting(Setting::SamplerArg, None, 1.0, parse::ratio);
        let arg_given = self.sources[&Setting::SamplerArg] != Source::Default;
        if arg_given && !takes_ratio {
            self.warnings.push(ConfigWarning::new(format!(
                "{} is ignored: the sampler `{name}` takes no argument",
                self.sources[&Setting::SamplerArg]
            )));
        }
        match name {
            "always_on" => Sampler::AlwaysOn,
            "always_off" => Sampler::AlwaysOff,
            "traceidratio" => Sampler::TraceIdRatio(ratio),
            "parentbased_always_off" => Sampler::ParentBasedAlwaysOff,
            "parentbased_traceidratio" => Sampler::ParentBasedTraceIdRatio(ratio),
            _ => Sampler::ParentBasedAlwaysOn,
        }
    }

    fn propagators(&mut self, b: &ConfigBuilder) -> Vec<Propagator> {
        const SETTING: Setting = Setting::Propagators;
        let default = vec![Propagator::TraceContext, Propagator::Baggage];
        if let Some(list) = &b.propagators {
            self.sources.insert(SETTING, code(SETTING));
            return list.clone();
        }
        let from_env = SETTING
            .env_vars()
            .find_map(|var| Some((Source::env(var), self.env.get(var)?.split(',').collect())));
        let from_file = self.file.and_then(|file| {
            let list = file.list(SETTING)?.iter().map(String::as_str).collect();
            Some((Source::file(&file.path, SETTING.key()), list))
        });
        let Some((source, list)): Option<(Source, Vec<&str>)> = from_env.or(from_file) else {
            self.sources.insert(SETTING, Source::Default);
            return default;
        };
        self.sources.insert(SETTING, source.clone());
        parse::propagators(list.iter().copied()).unwrap_or_else(|expected| {
            self.errors.push(ConfigError::InvalidValue {
                origin: source,
                value: list.join(","),
                expected,
            });
            default
        })
    }

    fn limits(&mut self, b: &ConfigBuilder) -> SpanLimits {
        if let Some(limits) = &b.span_limits {
            // Every setting that `with_span_limits` sets.
            for &setting in Setting::ALL {
                if setting.setter() == Setting::AttributeCountLimit.setter() {
                    self.sources.insert(setting, code(setting));
                }
            }
            return limits.clone();
        }
        let d = SpanLimits::default();
        SpanLimits {
            attribute_count: self.setting(
                Setting::AttributeCountLimit,
                None,
                d.attribute_count,
                parse::limit,
            ),
            attribute_value_length: self.setting(
                Setting::AttributeValueLengthLimit,
                None,
                d.attribute_value_length,
                |s| parse::limit(s).map(Some),
            ),
            event_count: self.setting(Setting::EventCountLimit, None, d.event_count, parse::limit),
            link_count: self.setting(Setting::LinkCountLimit, None, d.link_count, parse::limit),
            event_attribute_count: self.setting(
                Setting::EventAttributeCountLimit,
                None,
                d.event_attribute_count,
                parse::limit,
            ),
            link_attribute_count: self.setting(
                Setting::LinkAttributeCountLimit,
                None,
                d.link_attribute_count,
                parse::limit,
            ),
        }
    }

    /// The checks that need the whole picture: Lightstep's ingest needs a token, and neither the
    /// token nor any other header value (they are all secrets) crosses the network in plaintext
    /// unless the user said so.
    fn check_transport(
        &mut self,
        endpoint: &Endpoint,
        has_token: bool,
        headers: &[Header],
        insecure: bool,
    ) {
        if endpoint.lightstep_region().is_some()
            && !has_token
            && !self.file_failed
            && !self.endpoint_failed
        {
            self.errors.push(ConfigError::MissingToken {
                host: endpoint.host().to_owned(),
                endpoint_source: self.sources[&Setting::TracesEndpoint].clone(),
            });
        }
        if (has_token || !headers.is_empty())
            && !endpoint.is_tls()
            && !endpoint.is_loopback()
            && !insecure
        {
            self.errors.push(ConfigError::PlaintextSecrets {
                host: endpoint.host().to_owned(),
                token: has_token,
                headers: headers.iter().map(|h| h.name.clone()).collect(),
                endpoint_source: self.sources[&Setting::TracesEndpoint].clone(),
            });
        }
    }
}
