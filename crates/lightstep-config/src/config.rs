//! [`LightstepConfig`]: the resolved, validated configuration, and its effective-value report.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::builder::ConfigBuilder;
use crate::error::{ConfigError, ConfigWarning};
use crate::model::{
    BatchConfig, Compression, Endpoint, Header, Propagator, Protocol, ProxyConfig, Region, Sampler,
    SpanLimits, TlsConfig, TracesExporter,
};
use crate::secret::AccessToken;
use crate::settings::{Setting, Show};
use crate::source::Source;

/// The configuration of a lightstep-rs pipeline: resolved from every source and validated.
///
/// Build one with [`LightstepConfig::builder`] (or [`LightstepConfig::from_env`]). `Default`
/// gives the built-in defaults and reads nothing; it is not validated (its endpoint is
/// Lightstep's public ingest, which needs a token).
#[derive(Debug, Clone)]
pub struct LightstepConfig {
    pub(crate) access_token: Option<AccessToken>,
    pub(crate) endpoint: Endpoint,
    pub(crate) protocol: Protocol,
    pub(crate) region: Region,
    pub(crate) service_name: String,
    pub(crate) service_version: String,
    pub(crate) deployment_environment: Option<String>,
    pub(crate) resource_attributes: Vec<(String, String)>,
    pub(crate) headers: Vec<Header>,
    pub(crate) timeout: Duration,
    pub(crate) compression: Compression,
    pub(crate) tls: TlsConfig,
    pub(crate) batch: BatchConfig,
    pub(crate) sampler: Sampler,
    pub(crate) propagators: Vec<Propagator>,
    pub(crate) limits: SpanLimits,
    pub(crate) sdk_disabled: bool,
    pub(crate) traces_exporter: TracesExporter,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) proxy: Option<ProxyConfig>,
    pub(crate) config_file: Option<PathBuf>,
    pub(crate) sources: BTreeMap<Setting, Source>,
    /// The sources of the entries of `headers` and `resource_attributes`, by entry name.
    pub(crate) entry_sources: BTreeMap<(Setting, String), Source>,
    pub(crate) warnings: Vec<ConfigWarning>,
}

impl Default for LightstepConfig {
    fn default() -> Self {
        Self {
            access_token: None,
            endpoint: Region::Us.traces_endpoint(Protocol::Grpc),
            protocol: Protocol::Grpc,
            region: Region::Us,
            service_name: "rust-service".into(),
            service_version: "1.0.0".into(),
            deployment_environment: None,
            resource_attributes: Vec::new(),
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
            compression: Compression::None,
            tls: TlsConfig::default(),
            batch: BatchConfig::default(),
            sampler: Sampler::default(),
            propagators: vec![Propagator::TraceContext, Propagator::Baggage],
            limits: SpanLimits::default(),
            sdk_disabled: false,
            traces_exporter: TracesExporter::Otlp,
            shutdown_timeout: Duration::from_secs(5),
            proxy: None,
            config_file: None,
            sources: BTreeMap::new(),
            entry_sources: BTreeMap::new(),
            warnings: Vec::new(),
        }
    }
}

impl LightstepConfig {
    /// A builder: defaults < file < environment < the values set on it.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::new()
    }

    /// The configuration from the process environment (and the file named by
    /// `LIGHTSTEP_CONFIG_FILE`), with nothing set in code.
    pub fn from_env() -> Result<Self, ConfigError> {
        ConfigBuilder::new().build()
    }

    /// The access token, if any. Reading its value takes
    /// [`SecretString::expose_secret`](crate::SecretString::expose_secret).
    pub fn access_token(&self) -> Option<&AccessToken> {
        self.access_token.as_ref()
    }

    /// The traces endpoint (for HTTP, the full URL requests are sent to).
    pub fn traces_endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The original design's name for the endpoint: the same as [`LightstepConfig::traces_endpoint`].
    /// It returns the traces endpoint, not the base URL that `with_otlp_endpoint` sets.
    #[deprecated(note = "returns the traces endpoint: use `traces_endpoint()`")]
    pub fn otlp_endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The OTLP transport.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The Lightstep region preset (used for the endpoint when none is set).
    pub fn region(&self) -> Region {
        self.region
    }

    /// `service.name`.
    pub fn service_name(&self) -> &str {
        &self.service_name
    }

    /// `service.version`.
    pub fn service_version(&self) -> &str {
        &self.service_version
    }

    /// `deployment.environment.name`.
    pub fn deployment_environment(&self) -> Option<&str> {
        self.deployment_environment.as_deref()
    }

    /// Resource attributes other than the service name, version and deployment environment, in
    /// key order.
    pub fn resource_attributes(&self) -> &[(String, String)] {
        &self.resource_attributes
    }

    /// Extra headers, lowercase names, in name order. The access token is not among them.
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// The export timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Request compression.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// TLS settings.
    pub fn tls(&self) -> &TlsConfig {
        &self.tls
    }

    /// The HTTP proxy exports go through, if one is set (`with_proxy`, `HTTPS_PROXY` or
    /// `HTTP_PROXY` by the endpoint's scheme, the file's `proxy`), with `NO_PROXY`.
    pub fn proxy(&self) -> Option<&ProxyConfig> {
        self.proxy.as_ref()
    }

    /// Batch span processor settings.
    pub fn batch(&self) -> &BatchConfig {
        &self.batch
    }

    /// The sampler.
    pub fn sampler(&self) -> Sampler {
        self.sampler
    }

    /// The propagators, in order; empty for none.
    pub fn propagators(&self) -> &[Propagator] {
        &self.propagators
    }

    /// Span and attribute limits.
    pub fn span_limits(&self) -> &SpanLimits {
        &self.limits
    }

    /// Whether the SDK is turned off (`OTEL_SDK_DISABLED`).
    pub fn sdk_disabled(&self) -> bool {
        self.sdk_disabled
    }

    /// Where spans go.
    pub fn traces_exporter(&self) -> TracesExporter {
        self.traces_exporter
    }

    /// Whether spans are exported at all: not disabled and not `OTEL_TRACES_EXPORTER=none`.
    pub fn exports(&self) -> bool {
        !self.sdk_disabled && self.traces_exporter == TracesExporter::Otlp
    }

    /// How long flushing and shutting down may take in all.
    pub fn shutdown_timeout(&self) -> Duration {
        self.shutdown_timeout
    }

    /// The configuration file read, if any.
    pub fn config_file(&self) -> Option<&Path> {
        self.config_file.as_deref()
    }

    /// Where a setting's value came from. `None` only where the configuration was not built
    /// (`Default`), or for the access token when there is none.
    pub fn source_of(&self, setting: Setting) -> Option<&Source> {
        self.sources.get(&setting)
    }

    /// Where one entry of a table setting came from: a header by its lowercase name
    /// (`Setting::Headers`, `x-tenant`) or a resource attribute by its key
    /// (`Setting::ResourceAttributes`, `team`).
    pub fn source_of_entry(&self, setting: Setting, entry: &str) -> Option<&Source> {
        self.entry_sources.get(&(setting, entry.to_owned()))
    }

    /// Things that work but are probably not what was meant.
    pub fn warnings(&self) -> &[ConfigWarning] {
        &self.warnings
    }

    /// Every setting, its value (secrets redacted) and its source.
    pub fn effective(&self) -> EffectiveConfig {
        let mut settings = Vec::new();
        for &setting in Setting::ALL {
            let key = setting.key();
            match setting.def().show {
                Show::Value(show) => settings.push(EffectiveSetting {
                    key: key.to_owned(),
                    value: show(self).unwrap_or_else(|| "(none)".into()),
                    source: self.source_of(setting).cloned().unwrap_or(Source::Default),
                }),
                Show::Entries(entries) => {
                    settings.extend(entries(self).into_iter().map(|(entry, value)| {
                        EffectiveSetting {
                            key: format!("{key}.{entry}"),
                            source: (self.source_of_entry(setting, &entry).cloned())
                                .unwrap_or(Source::Default),
                            value,
                        }
                    }));
                }
                Show::Elsewhere => {}
            }
        }
        EffectiveConfig {
            settings,
            warnings: self.warnings.clone(),
        }
    }
}

/// One line of the effective configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EffectiveSetting {
    /// The setting's file key.
    pub key: String,
    /// Its value as text; secrets show as `[REDACTED]`.
    pub value: String,
    /// Where the value came from.
    pub source: Source,
}

/// Every setting with its value and source, and the warnings; `Display` prints a table.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EffectiveConfig {
    /// The settings, in a fixed order.
    pub settings: Vec<EffectiveSetting>,
    /// The configuration's warnings.
    pub warnings: Vec<ConfigWarning>,
}

impl fmt::Display for EffectiveConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key_width = self.settings.iter().map(|s| s.key.len()).max().unwrap_or(0);
        let value_width = self
            .settings
            .iter()
            .map(|s| s.value.chars().count())
            .max()
            .unwrap_or(0)
            .min(60);
        for s in &self.settings {
            writeln!(
                f,
                "{:key_width$}  {:value_width$}  ({})",
                s.key,
                s.value,
                s.source.short()
            )?;
        }
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        Ok(())
    }
}
