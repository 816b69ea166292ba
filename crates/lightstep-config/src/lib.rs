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
//! use lightstep_config::{EnvSnapshot, LightstepConfig, Setting, Source};
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
//! assert_eq!(
//!     config.source_of(Setting::ServiceVersion),
//!     Some(&Source::Code { setter: "with_service_version" })
//! );
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
//! <!-- variables table: generated from crates/lightstep-config/src/settings.rs: LIGHTSTEP_BLESS=1 cargo test -p lightstep-config --lib -- docs to regenerate -->
//! | variable | meaning | default |
//! |---|---|---|
//! | `LIGHTSTEP_CONFIG_FILE` | the configuration file to read | none |
//! | `OTEL_SDK_DISABLED` | a working no-op pipeline when `true` | `false` |
//! | `OTEL_TRACES_EXPORTER` | `otlp` or `none`; the specification's `zipkin`, `console`, `logging`, `jaeger` and `otlp/stdout` are skipped with a warning | `otlp` |
//! | `LIGHTSTEP_ACCESS_TOKEN`, `LS_ACCESS_TOKEN`, `lightstep-access-token` in the headers variables | the Lightstep access token; secret | none |
//! | `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, `OTEL_EXPORTER_OTLP_PROTOCOL` | `grpc`, `http/protobuf` or `http/json` | `grpc` |
//! | `LIGHTSTEP_REGION` | Lightstep ingest region preset: `us` or `eu` | `us` |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | the OTLP endpoint (HTTP appends `/v1/traces`) | region's ingest |
//! | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_SPAN_ENDPOINT` (launchers, deprecated), `LS_SATELLITE_URL` (oldest launchers, deprecated) | the full traces endpoint, used as given | from `otlp_endpoint` |
//! | `OTEL_SERVICE_NAME`, `LS_SERVICE_NAME`, `service.name` in `OTEL_RESOURCE_ATTRIBUTES` | `service.name`; must not be empty | `rust-service` |
//! | `LS_SERVICE_VERSION`, `service.version` in `OTEL_RESOURCE_ATTRIBUTES` | `service.version` | `1.0.0` |
//! | `deployment.environment.name` in `OTEL_RESOURCE_ATTRIBUTES` | `deployment.environment.name` | none |
//! | `OTEL_RESOURCE_ATTRIBUTES` | more resource attributes | none |
//! | `OTEL_EXPORTER_OTLP_TRACES_HEADERS`, `OTEL_EXPORTER_OTLP_HEADERS` (merged, per name) | extra request headers; values are secret; no control characters | none |
//! | `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`, `OTEL_EXPORTER_OTLP_TIMEOUT` | the longest one export request may take | `10s` |
//! | `OTEL_EXPORTER_OTLP_TRACES_COMPRESSION`, `OTEL_EXPORTER_OTLP_COMPRESSION` | `gzip` or `none` | `none` |
//! | `OTEL_EXPORTER_OTLP_TRACES_INSECURE`, `OTEL_EXPORTER_OTLP_SPAN_INSECURE` (launchers, deprecated), `OTEL_EXPORTER_OTLP_INSECURE` | plaintext for schemeless endpoints; allows the token and headers in plaintext to a host that is not loopback | `false` |
//! | `OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE`, `OTEL_EXPORTER_OTLP_CERTIFICATE` | PEM CA certificates trusted besides the system's roots | none |
//! | `OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE`, `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE` | PEM client certificate (mutual TLS); needs the key | none |
//! | `OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY`, `OTEL_EXPORTER_OTLP_CLIENT_KEY` | PEM private key of the client certificate | none |
//! | `HTTPS_PROXY`, `https_proxy`, `HTTP_PROXY`, `http_proxy` (the `HTTPS_` pair for an `https://` endpoint, the `HTTP_` pair for `http://`) | the HTTP proxy exports go through, `http://[user:password@]host[:port]`: an HTTP CONNECT tunnel to the endpoint, with TLS to the endpoint inside it; never used for a loopback endpoint; its user information is secret | none |
//! | `NO_PROXY`, `no_proxy` | hosts reached without the proxy: comma-separated names (each with its subdomains), IP addresses, networks (`10.0.0.0/8`) or `*` | none |
//! | `OTEL_BSP_MAX_QUEUE_SIZE` | spans held before new ones are dropped; at least 1 | `2048` |
//! | `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` | spans per request; at least 1, at most the queue size | `512` |
//! | `OTEL_BSP_SCHEDULE_DELAY` | the longest a span waits for its batch | `5s` |
//! | `OTEL_BSP_EXPORT_TIMEOUT` | the longest one batch export may take, its retries included; a batch still failing then goes back to the queue (see the exporter docs) | `30s` |
//! | `OTEL_BSP_MAX_CONCURRENT_EXPORTS` | export requests in flight at once; at least 1 | `1` |
//! | `OTEL_TRACES_SAMPLER` | `always_on`, `always_off`, `traceidratio`, `parentbased_always_on`, `parentbased_always_off`, `parentbased_traceidratio`; the specification's `jaeger_remote`, `parentbased_jaeger_remote` and `xray` give a warning and the default | `parentbased_always_on` |
//! | `OTEL_TRACES_SAMPLER_ARG` | the ratio, from 0 to 1 (ratio samplers only; warned about otherwise) | `1.0` for the ratio samplers; none for the others |
//! | `OTEL_PROPAGATORS` | `tracecontext`, `baggage`, `b3`, `b3multi`, `jaeger`, `xray`, `ottrace`, or `none` alone | `tracecontext,baggage` |
//! | `OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`, `OTEL_ATTRIBUTE_COUNT_LIMIT` | attributes per span | `128` |
//! | `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`, `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT` | longest attribute value | unlimited |
//! | `OTEL_SPAN_EVENT_COUNT_LIMIT` | events per span | `128` |
//! | `OTEL_SPAN_LINK_COUNT_LIMIT` | links per span | `128` |
//! | `OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT` | attributes per event | `128` |
//! | `OTEL_LINK_ATTRIBUTE_COUNT_LIMIT` | attributes per link | `128` |
//! | `LIGHTSTEP_SHUTDOWN_TIMEOUT` | deadline for flushing and shutting down | `5s` |
//! <!-- end of variables table -->
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
mod settings;
mod source;
mod vars;

pub use builder::ConfigBuilder;

/// The header Lightstep reads the access token from, sent by the exporter with every export.
pub const ACCESS_TOKEN_HEADER: &str = "lightstep-access-token";
pub use config::{EffectiveConfig, EffectiveSetting, LightstepConfig};
pub use env::EnvSnapshot;
pub use error::{ConfigError, ConfigWarning, ErrorChain};
pub use model::{
    BatchConfig, Compression, Endpoint, Header, Propagator, Protocol, ProxyConfig, Region, Sampler,
    SpanLimits, TlsConfig, TracesExporter,
};
pub use secret::{AccessToken, SecretString};
pub use settings::Setting;
pub use source::Source;
