//! The Resource: what the spans are about.

use lightstep_config::LightstepConfig;
use opentelemetry::KeyValue;
use opentelemetry_resource_detectors::{
    ContainerResourceDetector, HostResourceDetector, OsResourceDetector,
    ServiceInstanceIdResourceDetector,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::resource::{ResourceDetector, TelemetryResourceDetector};
use opentelemetry_semantic_conventions::resource as semconv;

/// The name this distribution reports as `telemetry.distro.name`.
pub const DISTRO_NAME: &str = "lightstep-rs";

/// Builds the Resource, from lowest to highest precedence: detected attributes
/// (`telemetry.sdk.*`, `host.*`, `os.type`, `process.pid`, `service.instance.id`, and
/// `container.id` in a container), then, for a pipeline built with
/// [`crate::LightstepExporter::builder`], what its resource detectors find and its resource's
/// attributes, then the configured resource attributes (file, `OTEL_RESOURCE_ATTRIBUTES`,
/// code), then the service name, version and deployment environment, then `telemetry.distro.*`.
///
/// The SDK's environment detectors are not used: they let `service.name` in
/// `OTEL_RESOURCE_ATTRIBUTES` beat `OTEL_SERVICE_NAME` and skip percent-decoding, against the
/// specification; the configuration has already parsed both correctly. The process detector is
/// not used either: its `process.command_args` may carry secrets passed on the command line.
///
/// `service.instance.id` is a random UUID (version 7) made once per process, so every pipeline
/// of a process reports the same one; `OTEL_RESOURCE_ATTRIBUTES=service.instance.id=...` (or
/// the configuration's resource attributes) replaces it. `container.id` comes from
/// `/proc/self/cgroup` (cgroup v1 and v2 paths), else from the `/etc/hostname` line of
/// `/proc/self/mountinfo`; outside a container, or off Linux, it is simply absent.
pub fn build_resource(config: &LightstepConfig) -> Resource {
    build(config, &[], &[])
}

/// [`build_resource`] with the detectors and resources added in code. The result carries the
/// schema URL of the added resources, as [`crate::PipelineBuilder::with_resource`] describes.
pub(crate) fn build(
    config: &LightstepConfig,
    added_detectors: &[Box<dyn ResourceDetector>],
    added: &[Resource],
) -> Resource {
    let detectors: [Box<dyn ResourceDetector>; 5] = [
        Box::new(TelemetryResourceDetector),
        Box::new(HostResourceDetector::default()),
        Box::new(OsResourceDetector),
        Box::new(ServiceInstanceIdResourceDetector),
        Box::new(ContainerResourceDetector),
    ];
    let mut service = vec![
        KeyValue::new(semconv::SERVICE_NAME, config.service_name().to_owned()),
        KeyValue::new(
            semconv::SERVICE_VERSION,
            config.service_version().to_owned(),
        ),
    ];
    if let Some(env) = config.deployment_environment() {
        service.push(KeyValue::new("deployment.environment.name", env.to_owned()));
    }
    let mut builder = Resource::builder_empty()
        .with_detectors(&detectors)
        .with_attribute(KeyValue::new("process.pid", i64::from(std::process::id())))
        .with_detectors(added_detectors)
        .with_attributes(
            added
                .iter()
                .flat_map(|r| r.iter())
                .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
        );
    // The added resources' schema URLs, in the order they were added, through the SDK's own
    // merge (private, reached by `with_schema_url` with no attributes), so that the result is
    // what merging those resources with the SDK gives: a URL is kept while the next one is the
    // same or absent; a different one leaves none (the specification calls that conflict a
    // merge error), and a URL after that is kept again. The attributes merged around it carry
    // no URL, which keeps it.
    for url in added.iter().filter_map(Resource::schema_url) {
        builder = builder.with_schema_url(std::iter::empty(), url.to_owned());
    }
    builder
        .with_attributes(
            config
                .resource_attributes()
                .iter()
                .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
        )
        .with_attributes(service)
        .with_attributes([
            KeyValue::new("telemetry.distro.name", DISTRO_NAME),
            KeyValue::new("telemetry.distro.version", env!("CARGO_PKG_VERSION")),
        ])
        .build()
}
