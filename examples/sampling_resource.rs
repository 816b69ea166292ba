//! Sampling and a custom Resource, set in code (the same settings exist as environment
//! variables and file keys: `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`,
//! `OTEL_RESOURCE_ATTRIBUTES`, see docs/configuration.md).
//!
//! The sampler is `parentbased_traceidratio` at 0.25: a request that arrives without a trace
//! context starts a trace that is kept one time in four (decided by its trace id, so every
//! service decides alike); a request that arrives with a context follows the caller's decision,
//! kept or not. The Resource (what every span says about the process that made it) carries
//! `service.name`, `service.version`, `deployment.environment.name` and attributes of our own.
//!
//! ```sh
//! cargo run --example sampling_resource
//! ```
#![allow(clippy::print_stdout)]

use std::process::ExitCode;

use lightstep::config::Sampler;
use lightstep::instrument::LightstepTracing;
use lightstep::opentelemetry::Context;
use lightstep::opentelemetry::trace::TraceContextExt as _;
use lightstep::receiver::proto::common::v1::any_value::Value;
use lightstep_examples::{Demo, chain, config_builder};

const RATIO: f64 = 0.25;
const NEW_TRACES: usize = 40;
const CONTINUED: usize = 5;

#[tokio::main]
async fn main() -> ExitCode {
    let builder = config_builder("sampling-resource")
        .with_sampler(Sampler::ParentBasedTraceIdRatio(RATIO))
        .with_service_version("3.1.4")
        .with_deployment_environment("staging")
        .with_resource_attribute("service.namespace", "shop")
        .with_resource_attribute("cloud.region", "eu-west-1")
        .with_resource_attribute("team", "catalog");
    let demo = match Demo::start(builder).await {
        Ok(demo) => demo,
        Err(error) => {
            eprintln!("error: {}", chain(&*error));
            return ExitCode::FAILURE;
        }
    };
    let tracing = LightstepTracing::global();

    // Requests without a trace context: new traces, sampled by ratio.
    let mut kept = 0;
    for _ in 0..NEW_TRACES {
        if request(&tracing, None).await {
            kept += 1;
        }
    }
    println!("new traces: {kept} of {NEW_TRACES} sampled (ratio {RATIO})");

    // Requests whose caller sampled, and whose caller did not: the flag in `traceparent`.
    let (mut with_sampled, mut with_unsampled) = (0, 0);
    for i in 0..CONTINUED {
        let trace_id = format!("{:032x}", 0x5eed_0000_u128 + i as u128);
        if request(&tracing, Some(format!("00-{trace_id}-00f067aa0ba902b7-01"))).await {
            with_sampled += 1;
        }
        if request(&tracing, Some(format!("00-{trace_id}-00f067aa0ba902b8-00"))).await {
            with_unsampled += 1;
        }
    }
    println!("caller sampled: {with_sampled} of {CONTINUED} kept (parent-based)");
    println!("caller did not sample: {with_unsampled} of {CONTINUED} kept (parent-based)");
    println!(
        "expected at the backend: {} traces",
        kept + with_sampled + with_unsampled
    );

    // What the backend sees about this process: the Resource of a received span.
    if let Some(receiver) = demo.receiver() {
        if let Err(error) = demo.pipeline().force_flush().await {
            eprintln!("error: {}", chain(&error));
        }
        if let Some(span) = receiver.spans().first() {
            println!("the Resource every span carries:");
            let mut attributes: Vec<(String, String)> = span
                .resource()
                .attributes
                .iter()
                .map(|kv| {
                    let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                        Some(Value::StringValue(s)) => s.clone(),
                        Some(Value::IntValue(i)) => i.to_string(),
                        Some(other) => format!("{other:?}"),
                        None => String::new(),
                    };
                    (kv.key.clone(), value)
                })
                .collect();
            attributes.sort();
            for (key, value) in attributes {
                println!("  {key} = {value}");
            }
        }
    }
    demo.finish().await
}

/// One request, with or without an incoming `traceparent`; returns whether it was sampled.
async fn request(tracing: &LightstepTracing, traceparent: Option<String>) -> bool {
    let mut headers = http::HeaderMap::new();
    if let Some(value) = traceparent.and_then(|v| http::HeaderValue::from_str(&v).ok()) {
        headers.insert("traceparent", value);
    }
    let mut sampled = false;
    let _ = tracing
        .http_server("GET")
        .with_route("/catalog/{id}")
        .with_request_headers(&headers)
        .trace(async {
            sampled = Context::current().span().span_context().is_sampled();
            let _: Result<u32, std::io::Error> = tracing
                .trace_database("sqlite", "SELECT title FROM books WHERE id = ?1", async {
                    Ok(7)
                })
                .await;
            http::StatusCode::OK
        })
        .await;
    sampled
}
