//! Layered, validated configuration for lightstep-rs, with the access token kept secret.
//!
//! A [`LightstepConfig`] is resolved from built-in defaults, a configuration file (TOML, YAML or
//! JSON), the environment (`LIGHTSTEP_*`, `LS_*`, `OTEL_*`) and values set in code, in that
//! order of increasing precedence. Every value remembers where it came from, every bad value is
//! an error naming its variable or file key, and the token never reaches a log line.
//!
//! # Quick start
//!
//! ```
//! use lightstep_config::{EnvSnapshot, LightstepConfig, Source};
//!
//! // In a service: `LightstepConfig::from_env()?`. Here, a hand-filled environment.
//! let env = EnvSnapshot::empty()
//!     .with("LS_ACCESS_TOKEN", "my-token")
//!     .with("OTEL_SERVICE_NAME", "checkout");
//! let config = LightstepConfig::builder()
//!     .with_env(env)
//!     .with_service_version("2.1.0")
//!     .build()?;
//!
//! assert_eq!(config.service_name(), "checkout");
//! assert_eq!(config.traces_endpoint().host(), "ingest.lightstep.com");
//! assert_eq!(config.source_of("service_version"), Some(&Source::Code { setter: "with_service_version" }));
//! assert_eq!(format!("{:?}", config.access_token()), "Some([REDACTED])");
//! # Ok::<(), lightstep_config::ConfigError>(())
//! ```
//!
//! # Environment variables
//!
//! The full table, with file keys, defaults and precedence rules, is in
//! [`docs/configuration.md`](https://github.com/lightstep-rs/lightstep-rs/blob/main/docs/configuration.md).
//! Where two variables are listed, the first wins.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `LIGHTSTEP_ACCESS_TOKEN`, `LS_ACCESS_TOKEN` | the access token | none |
//! | `LIGHTSTEP_CONFIG_FILE` | a TOML, YAML or JSON file to read | none |
//! | `LIGHTSTEP_REGION` | `us` or `eu` ingest, when no endpoint is set | `us` |
//! | `LIGHTSTEP_SHUTDOWN_TIMEOUT` | deadline for flush and shutdown | `5s` |
//! | `OTEL_SERVICE_NAME`, `LS_SERVICE_NAME` | `service.name` | `rust-service` |
//! | `LS_SERVICE_VERSION` | `service.version` | `1.0.0` |
//! | `OTEL_RESOURCE_ATTRIBUTES` | `k=v,...` resource attributes, percent-decoded | none |
//! | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_SPAN_ENDPOINT` | full traces endpoint | |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | OTLP endpoint (HTTP appends `/v1/traces`) | `https://ingest.lightstep.com:443` |
//! | `OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL` | `grpc`, `http/protobuf`, `http/json` | `grpc` |
//! | `OTEL_EXPORTER_OTLP[_TRACES]_HEADERS` | `k=v,...` extra headers | none |
//! | `OTEL_EXPORTER_OTLP[_TRACES]_TIMEOUT` | export timeout | `10s` |
//! | `OTEL_EXPORTER_OTLP[_TRACES]_COMPRESSION` | `gzip` or `none` | `none` |
//! | `OTEL_EXPORTER_OTLP[_TRACES]_CERTIFICATE` | extra CA certificates (PEM) | none |
//! | `OTEL_EXPORTER_OTLP[_TRACES]_CLIENT_CERTIFICATE`, `..._CLIENT_KEY` | mutual TLS (PEM) | none |
//! | `OTEL_EXPORTER_OTLP[_TRACES]_INSECURE` | plaintext for schemeless endpoints | `false` |
//! | `HTTPS_PROXY` / `https_proxy`, `HTTP_PROXY` / `http_proxy` | HTTP proxy (CONNECT) for `https://` / `http://` endpoints; never for a loopback endpoint | none |
//! | `NO_PROXY` / `no_proxy` | hosts, domains (with their subdomains), IPs, networks or `*` reached without the proxy | none |
//! | `OTEL_BSP_MAX_QUEUE_SIZE`, `_MAX_EXPORT_BATCH_SIZE`, `_SCHEDULE_DELAY`, `_EXPORT_TIMEOUT`, `_MAX_CONCURRENT_EXPORTS` | batch processor | `2048`, `512`, `5s`, `30s`, `1` |
//! | `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG` | sampler and ratio (`jaeger_remote`, `parentbased_jaeger_remote`, `xray`: a warning and the default) | `parentbased_always_on` |
//! | `OTEL_PROPAGATORS` | `tracecontext`, `baggage`, `b3`, `b3multi`, `jaeger`, `xray`, `ottrace`, `none` | `tracecontext,baggage` |
//! | `OTEL_TRACES_EXPORTER` | `otlp` or `none` (`zipkin`, `console`, `logging`, `jaeger`, `otlp/stdout`: skipped with a warning) | `otlp` |
//! | `OTEL_SDK_DISABLED` | a no-op pipeline | `false` |
//! | `OTEL_[SPAN_]ATTRIBUTE_COUNT_LIMIT`, `OTEL_[SPAN_]ATTRIBUTE_VALUE_LENGTH_LIMIT`, `OTEL_SPAN_EVENT_COUNT_LIMIT`, `OTEL_SPAN_LINK_COUNT_LIMIT`, `OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT`, `OTEL_LINK_ATTRIBUTE_COUNT_LIMIT` | limits | `128`, unlimited |
//!
//! A value the OpenTelemetry specification defines that lightstep-rs does not implement (a
//! sampler or exporter of another SDK, in an environment shared with services in other
//! languages) is a [`ConfigWarning`] and the specification's fallback; any other value that does
//! not parse is a [`ConfigError`] naming its variable or file key.
//!
//! # The environment
//!
//! Only [`EnvSnapshot::from_process`] reads the process environment; everything else takes a
//! snapshot, so tests fill one by hand ([`ConfigBuilder::with_env`]).
//!
//! # Supported Rust version
//!
//! Rust 1.90 or later.

mod builder;
mod config;
mod env;
mod error;
mod file;
mod model;
mod parse;
mod secret;
mod source;
pub mod vars;

pub use builder::ConfigBuilder;
pub use config::{EffectiveConfig, EffectiveSetting, LightstepConfig};
pub use env::EnvSnapshot;
pub use error::{ConfigError, ConfigWarning};
pub use model::{
    BatchConfig, Compression, Endpoint, Header, Propagator, Protocol, ProxyConfig, Region, Sampler,
    SpanLimits, TlsConfig, TracesExporter,
};
pub use secret::{AccessToken, SecretString};
pub use source::Source;
