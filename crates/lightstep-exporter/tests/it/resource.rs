//! The detected part of the Resource as the receiver gets it: `service.instance.id` and
//! `container.id`.

use std::time::Duration;

use lightstep_config::{EnvSnapshot, Protocol};
use lightstep_exporter::LightstepExporter;
use lightstep_receiver::RunningReceiver;
use lightstep_receiver::proto::common::v1::any_value::Value;
use opentelemetry::Key;
use opentelemetry::trace::Tracer;
use opentelemetry_resource_detectors::ContainerResourceDetector;
use opentelemetry_sdk::resource::ResourceDetector;

use crate::{config_for, endpoint, receiver};

/// The resource attribute `key` of the one span a pipeline built from `config` sends.
async fn sent_attribute(
    receiver: &RunningReceiver,
    config: lightstep_config::ConfigBuilder,
    key: &str,
) -> Option<String> {
    receiver.store().take_spans();
    let exporter = LightstepExporter::new(config.build().unwrap()).unwrap();
    exporter.tracer().in_span("work", |_| {});
    exporter.shutdown().await.expect("everything delivered");
    let spans = receiver
        .wait_for_spans(1, Duration::from_secs(10))
        .await
        .unwrap();
    match spans[0].resource_attribute(key) {
        Some(Value::StringValue(s)) => Some(s.clone()),
        None => None,
        other => panic!("{key} is not a string: {other:?}"),
    }
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[tokio::test]
async fn service_instance_id_is_a_uuid_stable_within_the_process() {
    let receiver = receiver().await;
    let config = || config_for(&endpoint(&receiver, Protocol::Grpc), Protocol::Grpc);
    let first = sent_attribute(&receiver, config(), "service.instance.id")
        .await
        .expect("service.instance.id is sent");
    assert!(is_uuid(&first), "{first}");
    let second = sent_attribute(&receiver, config(), "service.instance.id").await;
    assert_eq!(second.as_deref(), Some(first.as_str()));

    // The environment names the instance: that wins over the one made up.
    let named = sent_attribute(
        &receiver,
        config().with_env(
            EnvSnapshot::empty().with("OTEL_RESOURCE_ATTRIBUTES", "service.instance.id=pod-7"),
        ),
        "service.instance.id",
    )
    .await;
    assert_eq!(named.as_deref(), Some("pod-7"));
}

#[tokio::test]
async fn container_id_is_sent_when_this_process_runs_in_one() {
    let receiver = receiver().await;
    let detected = ContainerResourceDetector
        .detect()
        .get(&Key::from_static_str("container.id"))
        .map(|v| v.to_string());
    let sent = sent_attribute(
        &receiver,
        config_for(&endpoint(&receiver, Protocol::Grpc), Protocol::Grpc),
        "container.id",
    )
    .await;
    assert_eq!(sent, detected);
}
