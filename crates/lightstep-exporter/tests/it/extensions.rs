//! What code adds to the pipeline through `Pipeline::builder`: a sampler, span
//! processors and exporters, resource attributes and detectors, an id generator; each checked
//! on what the real receiver gets.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use lightstep_config::{Protocol, Sampler as ConfiguredSampler};
use lightstep_exporter::Pipeline;
use lightstep_receiver::RunningReceiver;
use lightstep_receiver::proto::common::v1::any_value::Value;
use opentelemetry::trace::{Link, SpanId, SpanKind, TraceId, TraceState, Tracer};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::resource::ResourceDetector;
use opentelemetry_sdk::trace::{
    IdGenerator, SamplingDecision, SamplingResult, ShouldSample, SpanData, SpanExporter,
    SpanProcessor,
};

use crate::{config_for, endpoint, receiver};

fn str_value(v: Option<&Value>) -> Option<&str> {
    match v {
        Some(Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

async fn config(receiver: &RunningReceiver) -> lightstep_config::LightstepConfig {
    config_for(&endpoint(receiver, Protocol::Grpc), Protocol::Grpc)
        .build()
        .expect("valid configuration")
}

/// Records every span except those named `noise`.
#[derive(Debug, Clone)]
struct DropByName;

impl ShouldSample for DropByName {
    fn should_sample(
        &self,
        _parent: Option<&Context>,
        _trace_id: TraceId,
        name: &str,
        _kind: &SpanKind,
        _attributes: &[KeyValue],
        _links: &[Link],
    ) -> SamplingResult {
        let decision = if name == "noise" {
            SamplingDecision::Drop
        } else {
            SamplingDecision::RecordAndSample
        };
        SamplingResult {
            decision,
            attributes: Vec::new(),
            trace_state: TraceState::default(),
        }
    }
}

#[tokio::test]
async fn a_custom_sampler_replaces_the_configured_one() {
    let receiver = receiver().await;
    // The configured sampler would record nothing: the custom one replaces it.
    let config = config_for(&endpoint(&receiver, Protocol::Grpc), Protocol::Grpc)
        .with_sampler(ConfiguredSampler::AlwaysOff)
        .build()
        .unwrap();
    let exporter = Pipeline::builder(config)
        .with_sampler(DropByName)
        .build()
        .expect("pipeline builds");
    // What the pipeline reports running with says so.
    let effective = exporter.effective_config();
    let line = |key: &str| {
        let s = effective.settings.iter().find(|s| s.key == key).unwrap();
        (s.value.clone(), s.source.clone())
    };
    let code = lightstep_config::Source::Code {
        setter: "PipelineBuilder::with_sampler",
    };
    assert_eq!(line("sampler.name"), ("custom: DropByName".into(), code));
    let shown = effective.to_string();
    let shown_line = shown.lines().find(|l| l.starts_with("sampler.name "));
    assert!(
        shown_line.is_some_and(|l| l.contains("custom: DropByName")),
        "{shown}"
    );
    let tracer = exporter.tracer();
    for name in ["keep", "noise", "also-kept", "noise"] {
        tracer.in_span(name, |_| {});
    }
    let stats = exporter.shutdown().await.expect("everything delivered");
    assert_eq!((stats.ended, stats.exported), (2, 2));
    let mut names: Vec<String> = receiver
        .wait_for_spans(2, Duration::from_secs(10))
        .await
        .unwrap()
        .iter()
        .map(|s| s.name().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["also-kept", "keep"]);
}

/// Counts the spans it is given and its flushes and shutdowns.
#[derive(Debug, Default)]
struct Counting {
    ended: AtomicUsize,
    flushes: AtomicUsize,
    shutdowns: AtomicUsize,
}

#[derive(Debug)]
struct CountingProcessor(Arc<Counting>);

impl SpanProcessor for CountingProcessor {
    fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &Context) {}
    fn on_end(&self, _span: SpanData) {
        self.0.ended.fetch_add(1, Ordering::SeqCst);
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.0.flushes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        self.0.shutdowns.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test]
async fn an_added_span_processor_sees_every_span_and_delivery_goes_on() {
    let receiver = receiver().await;
    let counting = Arc::new(Counting::default());
    let exporter = Pipeline::builder(config(&receiver).await)
        .with_span_processor(CountingProcessor(Arc::clone(&counting)))
        .build()
        .unwrap();
    let tracer = exporter.tracer();
    for i in 0..25 {
        tracer.in_span(format!("span-{i}"), |_| {});
    }
    let stats = exporter.shutdown().await.expect("everything delivered");
    assert_eq!(stats.exported, 25);
    assert_eq!(counting.ended.load(Ordering::SeqCst), 25);
    assert_eq!(counting.shutdowns.load(Ordering::SeqCst), 1);
    assert_eq!(
        receiver
            .wait_for_spans(25, Duration::from_secs(10))
            .await
            .unwrap()
            .len(),
        25
    );
}

#[tokio::test]
async fn added_processors_are_flushed_when_otlp_does_not_export() {
    let receiver = receiver().await;
    let config = config_for(&endpoint(&receiver, Protocol::Grpc), Protocol::Grpc)
        .with_traces_exporter(lightstep_config::TracesExporter::None)
        .build()
        .unwrap();
    let counting = Arc::new(Counting::default());
    let exporter = Pipeline::builder(config)
        .with_span_processor(CountingProcessor(Arc::clone(&counting)))
        .build()
        .unwrap();
    exporter.tracer().in_span("local-only", |_| {});
    exporter.force_flush().await.expect("flushed");
    assert_eq!(counting.ended.load(Ordering::SeqCst), 1);
    assert_eq!(counting.flushes.load(Ordering::SeqCst), 1);
    exporter.shutdown().await.expect("shut down");
    assert_eq!(counting.shutdowns.load(Ordering::SeqCst), 1);
    assert!(receiver.spans().is_empty());
}

/// An exporter that keeps the names of what it is given, and the Resource the pipeline gives it.
#[derive(Debug, Clone, Default)]
struct NamesExporter(
    Arc<std::sync::Mutex<Vec<String>>>,
    Arc<std::sync::Mutex<Option<Resource>>>,
);

impl SpanExporter for NamesExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let mut names = self.0.lock().unwrap();
        names.extend(batch.into_iter().map(|s| s.name.into_owned()));
        Ok(())
    }

    fn set_resource(&mut self, resource: &Resource) {
        *self.1.lock().unwrap() = Some(resource.clone());
    }
}

/// Records the spans it gets, taking its time per batch.
#[derive(Debug, Clone)]
struct SlowNamesExporter(Arc<std::sync::Mutex<Vec<String>>>, Duration);

impl SpanExporter for SlowNamesExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        std::thread::sleep(self.1);
        let mut names = self.0.lock().unwrap();
        names.extend(batch.into_iter().map(|s| s.name.into_owned()));
        Ok(())
    }
}

/// Spans that find an added exporter's queue full are counted, not lost silently: each span
/// either reached the exporter or is in `added_exporter_dropped`.
#[tokio::test]
async fn an_added_exporters_full_queue_is_counted() {
    let receiver = receiver().await;
    let config = config_for(&endpoint(&receiver, Protocol::Grpc), Protocol::Grpc)
        .with_max_queue_size(100)
        .with_max_export_batch_size(100)
        .build()
        .unwrap();
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let names = SlowNamesExporter(Default::default(), Duration::from_millis(100));
    let exporter = {
        let failures = Arc::clone(&failures);
        Pipeline::builder(config)
            .with_span_exporter(names.clone())
            .on_export_error(move |failure| failures.lock().unwrap().push(failure.clone()))
            .build()
            .unwrap()
    };
    let tracer = exporter.tracer();
    // Far more than the queue holds, faster than its batches leave (each export takes 100 ms).
    for _ in 0..1_000 {
        tracer.in_span("burst", |_| {});
    }
    let stats = exporter.shutdown().await;
    let stats = stats.unwrap_or_else(|_| exporter.stats());
    let got = names.0.lock().unwrap().len() as u64;
    assert!(stats.added_exporter_dropped > 0, "{stats:?}");
    assert!(got > 0, "{stats:?}");
    assert_eq!(got + stats.added_exporter_dropped, 1_000, "{stats:?}");
    let failures = failures.lock().unwrap();
    let dropped = failures
        .iter()
        .find(|f| f.kind == lightstep_exporter::FailureKind::AddedExporterDropped)
        .expect("the drop is reported");
    assert!(dropped.to_string().contains("queue was full"), "{dropped}");
}

#[tokio::test]
async fn an_added_exporter_gets_every_span_by_shutdown() {
    let receiver = receiver().await;
    let names = NamesExporter::default();
    let exporter = Pipeline::builder(config(&receiver).await)
        .with_span_exporter(names.clone())
        .build()
        .unwrap();
    let tracer = exporter.tracer();
    tracer.in_span("first", |_| {});
    tracer.in_span("second", |_| {});
    let stats = exporter.shutdown().await.expect("everything delivered");
    assert_eq!(stats.exported, 2);
    let mut got = names.0.lock().unwrap().clone();
    got.sort();
    assert_eq!(got, ["first", "second"]);
    // The added exporter describes its spans with the pipeline's Resource, as the OTLP one.
    let resource = names
        .1
        .lock()
        .unwrap()
        .clone()
        .expect("a Resource was given");
    let service = resource.get(&opentelemetry::Key::new("service.name"));
    assert_eq!(
        service.map(|v| v.to_string()),
        Some("exporter-test".to_owned()),
        "{resource:?}"
    );
    assert_eq!(
        receiver
            .wait_for_spans(2, Duration::from_secs(10))
            .await
            .unwrap()
            .len(),
        2
    );
}

/// An exporter whose every export fails, with a message that holds a control character and
/// the access token (as a backend that echoes its request might).
#[derive(Debug)]
struct FailingExporter;

impl SpanExporter for FailingExporter {
    async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
        Err(opentelemetry_sdk::error::OTelSdkError::InternalFailure(
            format!("second backend said no\x1b[31m to {}", crate::TOKEN),
        ))
    }
}

#[tokio::test]
async fn an_added_exporters_failures_are_counted_apart_and_reach_the_hook() {
    let receiver = receiver().await;
    let names = NamesExporter::default();
    let seen = Arc::new(std::sync::Mutex::new(Vec::<
        lightstep_exporter::ExportFailure,
    >::new()));
    let hook = {
        let seen = Arc::clone(&seen);
        move |failure: &lightstep_exporter::ExportFailure| {
            seen.lock().unwrap().push(failure.clone())
        }
    };
    let exporter = Pipeline::builder(config(&receiver).await)
        .with_span_exporter(FailingExporter)
        .with_span_exporter(names.clone())
        .on_export_error(hook)
        .build()
        .unwrap();
    let tracer = exporter.tracer();
    for name in ["one", "two", "three"] {
        tracer.in_span(name, |_| {});
    }
    // OTLP delivery is whole: the added exporter's failure does not fail the shutdown.
    let stats = exporter.shutdown().await.expect("everything delivered");
    assert_eq!(
        (
            stats.exported,
            stats.failed,
            stats.dropped,
            stats.undelivered()
        ),
        (3, 0, 0, 0)
    );
    assert_eq!(stats.added_exporter_failed, 3);
    assert_eq!(stats.last_error, None);
    // The exporter that succeeds got every span; its success is not counted as a failure.
    assert_eq!(names.0.lock().unwrap().len(), 3);
    let failures = seen.lock().unwrap().clone();
    assert_eq!(failures.len(), 1, "{failures:?}");
    let failure = &failures[0];
    assert_eq!(
        (failure.kind, failure.spans, failure.total),
        (lightstep_exporter::FailureKind::AddedExporterFailed, 3, 3)
    );
    assert!(
        failure.message.contains("second backend said no"),
        "{failure:?}"
    );
    assert!(!failure.message.contains('\x1b'), "{failure:?}");
    assert!(!failure.message.contains(crate::TOKEN), "{failure:?}");
    assert!(
        failure.to_string().contains("exporter added in code"),
        "{failure}"
    );
    assert_eq!(
        receiver
            .wait_for_spans(3, Duration::from_secs(10))
            .await
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test]
async fn an_added_exporter_that_succeeds_counts_no_failure() {
    let receiver = receiver().await;
    let names = NamesExporter::default();
    let exporter = Pipeline::builder(config(&receiver).await)
        .with_span_exporter(names.clone())
        .build()
        .unwrap();
    exporter.tracer().in_span("fine", |_| {});
    let stats = exporter.shutdown().await.expect("everything delivered");
    assert_eq!((stats.exported, stats.added_exporter_failed), (1, 0));
    assert_eq!(*names.0.lock().unwrap(), ["fine"]);
}

/// An exporter whose export takes far longer than any shutdown deadline (a second backend
/// that does not answer, with no timeout of its own). It blocks the batch processor's thread,
/// which is what such an exporter does.
#[derive(Debug)]
struct HangingExporter;

impl SpanExporter for HangingExporter {
    async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
        std::thread::sleep(Duration::from_secs(60));
        Ok(())
    }
}

/// A processor whose shutdown ignores its timeout.
#[derive(Debug)]
struct StubbornProcessor;

impl SpanProcessor for StubbornProcessor {
    fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &Context) {}
    fn on_end(&self, _span: SpanData) {}
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        std::thread::sleep(Duration::from_secs(60));
        Ok(())
    }
}

/// A processor whose flush takes a minute (it has no timeout to ignore).
#[derive(Debug)]
struct SlowFlushProcessor;

impl SpanProcessor for SlowFlushProcessor {
    fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &Context) {}
    fn on_end(&self, _span: SpanData) {}
    fn force_flush(&self) -> OTelSdkResult {
        std::thread::sleep(Duration::from_secs(60));
        Ok(())
    }
    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// A flush keeps the same deadline as a shutdown, whatever the processors added in code do:
/// each, blocking or not, is given what is left of it, side by side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_keeps_its_deadline_with_added_processors_that_hang() {
    let receiver = receiver().await;
    let config = config_for(&endpoint(&receiver, Protocol::Grpc), Protocol::Grpc)
        .with_shutdown_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let exporter = Pipeline::builder(config)
        .with_span_processor(SlowFlushProcessor)
        .with_span_processor(SlowFlushProcessor)
        .build()
        .unwrap();
    exporter.tracer().in_span("one", |_| {});
    for blocking in [false, true] {
        let started = std::time::Instant::now();
        let result = if blocking {
            let exporter = &exporter;
            tokio::task::block_in_place(|| exporter.force_flush_blocking())
        } else {
            exporter.force_flush().await
        };
        let took = started.elapsed();
        // Generous: the deadline plus its grace is 700 ms; the processors would take minutes.
        assert!(took < Duration::from_secs(5), "flush took {took:?}");
        match result {
            Err(
                error @ lightstep_exporter::ExporterError::Deadline {
                    operation,
                    deadline,
                    added_running,
                    ..
                },
            ) => {
                assert_eq!(
                    (operation, deadline, added_running),
                    ("flush", Duration::from_millis(500), true)
                );
                // It says which part was late: OTLP's counts show nothing undelivered.
                let message = error.to_string();
                assert!(
                    message.contains("added in code was still running"),
                    "{message}"
                );
            }
            other => panic!("expected the deadline error, got {other:?}"),
        }
    }
    // OTLP delivered the span all the same.
    assert_eq!(exporter.stats().exported, 1);
}

/// A processor whose flush takes `.1` (forever, or a while), counting the flushes that reach it.
#[derive(Debug, Clone, Default)]
struct CountedFlush(Arc<std::sync::atomic::AtomicUsize>, Duration);

impl SpanProcessor for CountedFlush {
    fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &Context) {}
    fn on_end(&self, _span: SpanData) {}
    fn force_flush(&self) -> OTelSdkResult {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        std::thread::sleep(self.1);
        Ok(())
    }
    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// A processor whose flushes never return is flushed twice at most, however often the
/// pipeline flushes: each flush that reaches it holds a thread for good. The later flushes are
/// late at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushes_that_never_return_hold_two_threads_however_often_the_pipeline_flushes() {
    let receiver = receiver().await;
    let config = config_for(&endpoint(&receiver, Protocol::Grpc), Protocol::Grpc)
        .with_shutdown_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let hung = CountedFlush(Arc::default(), Duration::from_secs(3_600));
    let exporter = Pipeline::builder(config)
        .with_span_processor(hung.clone())
        .build()
        .unwrap();
    exporter.tracer().in_span("one", |_| {});
    for _ in 0..10 {
        let started = std::time::Instant::now();
        match exporter.force_flush().await {
            Err(lightstep_exporter::ExporterError::Deadline { added_running, .. }) => {
                assert!(added_running);
            }
            other => panic!("expected the deadline error, got {other:?}"),
        }
        // Generous: the flush's deadline is 200 ms, and the added processors get 200 ms at least.
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    assert_eq!(hung.0.load(std::sync::atomic::Ordering::SeqCst), 2);
    // OTLP's own delivery went on.
    assert_eq!(exporter.stats().exported, 1);
}

/// Only flushes left running past their deadline keep a processor from being flushed: many
/// flushes at once, each within its deadline, all reach it and all succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushes_at_once_within_their_deadline_all_reach_the_processor() {
    let receiver = receiver().await;
    let config = config_for(&endpoint(&receiver, Protocol::Grpc), Protocol::Grpc)
        .with_shutdown_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let slowish = CountedFlush(Arc::default(), Duration::from_millis(300));
    let exporter = Pipeline::builder(config)
        .with_span_processor(slowish.clone())
        .build()
        .unwrap();
    exporter.tracer().in_span("one", |_| {});
    let flushes = (0..5).map(|_| exporter.force_flush());
    for result in futures_util::future::join_all(flushes).await {
        result.expect("a flush within its deadline");
    }
    assert_eq!(slowish.0.load(std::sync::atomic::Ordering::SeqCst), 5);
}

/// A pipeline with a 500 ms shutdown deadline and `add` applied: its shutdown returns the
/// deadline error well before the added parts would let it, and OTLP delivered every span.
async fn shutdown_keeps_its_deadline(
    add: impl FnOnce(lightstep_exporter::PipelineBuilder) -> lightstep_exporter::PipelineBuilder,
) {
    let receiver = receiver().await;
    let config = config_for(&endpoint(&receiver, Protocol::Grpc), Protocol::Grpc)
        .with_shutdown_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let exporter = add(Pipeline::builder(config)).build().unwrap();
    let tracer = exporter.tracer();
    for name in ["one", "two", "three"] {
        tracer.in_span(name, |_| {});
    }
    let started = std::time::Instant::now();
    let result = exporter.shutdown().await;
    let took = started.elapsed();
    // Generous: the deadline plus its grace is 700 ms; the added parts would take a minute.
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    match result {
        Err(lightstep_exporter::ExporterError::Deadline {
            operation,
            deadline,
            added_running,
            ..
        }) => assert_eq!(
            (operation, deadline, added_running),
            ("shutdown", Duration::from_millis(500), true)
        ),
        other => panic!("expected the deadline error, got {other:?}"),
    }
    assert_eq!(exporter.stats().exported, 3);
    assert_eq!(
        receiver
            .wait_for_spans(3, Duration::from_secs(10))
            .await
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test]
async fn shutdown_keeps_its_deadline_with_an_added_exporter_that_hangs() {
    shutdown_keeps_its_deadline(|builder| {
        builder
            .with_span_exporter(HangingExporter)
            .with_span_exporter(HangingExporter)
    })
    .await;
}

#[tokio::test]
async fn shutdown_keeps_its_deadline_with_an_added_processor_that_ignores_it() {
    shutdown_keeps_its_deadline(|builder| builder.with_span_processor(StubbornProcessor)).await;
}

#[derive(Debug)]
struct TeamDetector;

impl ResourceDetector for TeamDetector {
    fn detect(&self) -> Resource {
        Resource::builder_empty()
            .with_attributes([
                KeyValue::new("team", "from-detector"),
                KeyValue::new("region", "eu-west-3"),
                // The pipeline's own detection loses to an added detector.
                KeyValue::new("os.type", "detected-os"),
            ])
            .build()
    }
}

#[tokio::test]
async fn added_resource_and_detector_arrive_with_the_configuration_winning() {
    let receiver = receiver().await;
    let config = config_for(&endpoint(&receiver, Protocol::Grpc), Protocol::Grpc)
        .with_resource_attribute("cost.center", "from-config")
        .build()
        .unwrap();
    let exporter = Pipeline::builder(config)
        .with_resource_detector(TeamDetector)
        .with_resource(
            Resource::builder_empty()
                .with_attributes([
                    KeyValue::new("team", "from-code"),
                    KeyValue::new("cost.center", "from-code"),
                    KeyValue::new("service.name", "from-code"),
                ])
                .build(),
        )
        .build()
        .unwrap();
    exporter.tracer().in_span("work", |_| {});
    exporter.shutdown().await.expect("everything delivered");
    let spans = receiver
        .wait_for_spans(1, Duration::from_secs(10))
        .await
        .unwrap();
    let attr = |key| str_value(spans[0].resource_attribute(key));
    assert_eq!(attr("region"), Some("eu-west-3"));
    assert_eq!(attr("os.type"), Some("detected-os"));
    assert_eq!(attr("team"), Some("from-code"));
    assert_eq!(attr("cost.center"), Some("from-config"));
    assert_eq!(attr("service.name"), Some("exporter-test"));
}

/// The `ResourceSpans.schema_url` the receiver gets from a pipeline given `resources` in code.
async fn sent_schema_url(resources: Vec<Resource>) -> String {
    let receiver = receiver().await;
    let mut builder = Pipeline::builder(config(&receiver).await);
    for resource in resources {
        builder = builder.with_resource(resource);
    }
    let exporter = builder.build().unwrap();
    exporter.tracer().in_span("work", |_| {});
    exporter.shutdown().await.expect("everything delivered");
    let spans = receiver
        .wait_for_spans(1, Duration::from_secs(10))
        .await
        .unwrap();
    let trace = receiver.store().take_trace(spans[0].trace_id()).unwrap();
    let resource_spans = trace.to_otlp().resource_spans;
    assert_eq!(resource_spans.len(), 1);
    resource_spans[0].schema_url.clone()
}

fn with_schema(url: &'static str, team: &'static str) -> Resource {
    Resource::builder_empty()
        .with_schema_url([KeyValue::new("team", team)], url)
        .build()
}

#[tokio::test]
async fn an_added_resource_keeps_its_schema_url() {
    const V126: &str = "https://opentelemetry.io/schemas/1.26.0";
    const V142: &str = "https://opentelemetry.io/schemas/1.42.0";
    assert_eq!(sent_schema_url(vec![with_schema(V126, "a")]).await, V126);
    // A resource without a URL, before or after, leaves it; the same URL again keeps it.
    let plain = || {
        Resource::builder_empty()
            .with_attribute(KeyValue::new("team", "plain"))
            .build()
    };
    assert_eq!(
        sent_schema_url(vec![plain(), with_schema(V126, "a"), plain()]).await,
        V126
    );
    assert_eq!(
        sent_schema_url(vec![with_schema(V126, "a"), with_schema(V126, "b")]).await,
        V126
    );
    // Two different URLs conflict: as the SDK's merge, none is sent.
    assert_eq!(
        sent_schema_url(vec![with_schema(V126, "a"), with_schema(V142, "b")]).await,
        ""
    );
    assert_eq!(sent_schema_url(vec![plain()]).await, "");
}

/// Trace ids counting up from 0x1234...01, span ids from 0xabc1.
#[derive(Debug, Default)]
struct Sequential {
    traces: AtomicU64,
    spans: AtomicU64,
}

impl IdGenerator for Sequential {
    fn new_trace_id(&self) -> TraceId {
        let n = self.traces.fetch_add(1, Ordering::SeqCst) + 1;
        TraceId::from(0x1234_0000_0000_0000_0000_0000_0000_0000 + u128::from(n))
    }
    fn new_span_id(&self) -> SpanId {
        SpanId::from(0xabc0 + self.spans.fetch_add(1, Ordering::SeqCst) + 1)
    }
}

#[tokio::test]
async fn a_custom_id_generator_makes_the_ids_that_arrive() {
    let receiver = receiver().await;
    let exporter = Pipeline::builder(config(&receiver).await)
        .with_id_generator(Sequential::default())
        .build()
        .unwrap();
    exporter.tracer().in_span("root", |_| {});
    exporter.shutdown().await.expect("everything delivered");
    let spans = receiver
        .wait_for_spans(1, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        spans[0].span().trace_id,
        0x1234_0000_0000_0000_0000_0000_0000_0001u128.to_be_bytes()
    );
    assert_eq!(spans[0].span().span_id, 0xabc1u64.to_be_bytes());
}

/// Spans that an added exporter's batch processor still exports after the pipeline's shutdown
/// ran out of time are not also counted as dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_out_of_time_counts_no_span_twice() {
    let receiver = receiver().await;
    let config = config_for(&endpoint(&receiver, Protocol::Grpc), Protocol::Grpc)
        .with_max_queue_size(100)
        .with_max_export_batch_size(10)
        .with_shutdown_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    // Ten batches of 150 ms: three times the deadline.
    let names = SlowNamesExporter(Default::default(), Duration::from_millis(150));
    let exporter = Pipeline::builder(config)
        .with_span_exporter(names.clone())
        .build()
        .unwrap();
    let tracer = exporter.tracer();
    for _ in 0..100 {
        tracer.in_span("late", |_| {});
    }
    let result = exporter.shutdown().await;
    assert!(
        matches!(
            result,
            Err(lightstep_exporter::ExporterError::Deadline { .. })
        ),
        "{result:?}"
    );
    // Its thread goes on exporting what it held.
    for _ in 0..100 {
        if names.0.lock().unwrap().len() == 100 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = names.0.lock().unwrap().len() as u64;
    let stats = exporter.stats();
    assert_eq!((got, stats.added_exporter_dropped), (100, 0), "{stats:?}");
}

/// What an added processor's flush does next, one step per flush.
#[derive(Debug, Clone)]
enum Step {
    Sleep(Duration),
    Fail,
}

#[derive(Debug, Clone, Default)]
struct ScriptedFlush(Arc<std::sync::Mutex<std::collections::VecDeque<Step>>>);

impl SpanProcessor for ScriptedFlush {
    fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &Context) {}
    fn on_end(&self, _span: SpanData) {}
    fn force_flush(&self) -> OTelSdkResult {
        let step = self.0.lock().unwrap().pop_front();
        match step {
            Some(Step::Sleep(d)) => {
                std::thread::sleep(d);
                Ok(())
            }
            Some(Step::Fail) => Err(opentelemetry_sdk::error::OTelSdkError::InternalFailure(
                "the processor failed".into(),
            )),
            None => Ok(()),
        }
    }
    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// Each flush has its own deadline: a flush of the provider itself (as `tracing-opentelemetry`
/// or application code may call it) after a flush of the pipeline gets the whole timeout, and
/// one that misses it does not make the next flush's failure a deadline error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_flush_keeps_its_own_deadline() {
    let receiver = receiver().await;
    let config = config_for(&endpoint(&receiver, Protocol::Grpc), Protocol::Grpc)
        .with_shutdown_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let script = ScriptedFlush::default();
    script.0.lock().unwrap().extend([
        Step::Sleep(Duration::ZERO),
        Step::Sleep(Duration::from_millis(600)),
        Step::Sleep(Duration::from_millis(2_500)),
        Step::Fail,
    ]);
    let exporter = Pipeline::builder(config)
        .with_span_processor(script.clone())
        .build()
        .unwrap();
    exporter.force_flush().await.expect("a quick flush");
    // Past that flush's deadline.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let provider = exporter.tracer_provider().clone();
    let direct = move || {
        let provider = provider.clone();
        tokio::task::spawn_blocking(move || provider.force_flush())
    };
    direct()
        .await
        .unwrap()
        .expect("600 ms is within the 1 s timeout");
    assert!(direct().await.unwrap().is_err(), "2.5 s is not");
    match exporter.force_flush().await {
        Err(lightstep_exporter::ExporterError::Sdk(message)) => {
            assert!(message.contains("the processor failed"), "{message}");
        }
        other => panic!("expected the processor's failure, got {other:?}"),
    }
}

/// The OTLP processor's missed flush deadline belongs to that flush too: a flush of the
/// provider itself that runs out of time while the backend is slow leaves nothing behind that
/// would make the next flush's unrelated failure a deadline error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_backend_during_one_flush_is_not_the_next_flushs_error() {
    let receiver = receiver().await;
    receiver
        .faults()
        .set_response_delay(Duration::from_millis(1_000));
    let config = config_for(&endpoint(&receiver, Protocol::Grpc), Protocol::Grpc)
        .with_timeout(Duration::from_secs(30))
        .with_export_timeout(Duration::from_secs(30))
        .with_shutdown_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let script = ScriptedFlush::default();
    script
        .0
        .lock()
        .unwrap()
        .extend([Step::Sleep(Duration::ZERO), Step::Fail]);
    let exporter = Pipeline::builder(config)
        .with_span_processor(script.clone())
        .build()
        .unwrap();
    for _ in 0..5 {
        exporter.tracer().in_span("held", |_| {});
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    let provider = exporter.tracer_provider().clone();
    let direct = tokio::task::spawn_blocking(move || provider.force_flush())
        .await
        .unwrap();
    assert!(
        direct.is_err(),
        "the export is held for a second: {direct:?}"
    );
    // The held export completes: nothing is pending when the pipeline flushes.
    for _ in 0..100 {
        if exporter.stats().exported == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    match exporter.force_flush().await {
        Err(lightstep_exporter::ExporterError::Sdk(message)) => {
            assert!(message.contains("the processor failed"), "{message}");
        }
        other => panic!("expected the processor's failure, got {other:?}"),
    }
}
