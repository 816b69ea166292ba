//! The facade's one-call setup against the embedded receiver.

#[cfg(all(feature = "query", feature = "analysis"))]
mod query;
mod warnings;

use std::sync::Mutex;
use std::time::Duration;

use lightstep::config::EnvSnapshot;
use lightstep::opentelemetry::global;
use lightstep::opentelemetry::trace::Tracer;

/// Tests that install global state (the tracer provider, the subscriber) take turns.
pub(crate) static GLOBAL: Mutex<()> = Mutex::new(());

#[test]
fn init_installs_the_global_provider_and_the_guard_delivers() {
    let _turn = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = runtime
        .block_on(lightstep_receiver::Receiver::builder().start())
        .unwrap();
    let guard = lightstep::builder()
        .with_env(EnvSnapshot::empty())
        .with_otlp_endpoint(receiver.grpc_endpoint())
        .with_service_name("facade-test")
        .init()
        .expect("init");
    global::tracer("facade").in_span("through-the-global-provider", |_| {});
    let stats = guard.shutdown_blocking().expect("delivered");
    assert_eq!(stats.exported, 1);
    let spans = runtime
        .block_on(receiver.wait_for_spans(1, Duration::from_secs(10)))
        .unwrap();
    assert_eq!(spans[0].name(), "through-the-global-provider");
    assert_eq!(spans[0].service_name(), Some("facade-test"));
}

/// Settings and extensions of the pipeline on one builder, finished by `init()`: no trait to
/// import.
#[test]
fn builder_extensions_add_to_the_installed_pipeline() {
    use lightstep::opentelemetry::KeyValue;
    use lightstep::opentelemetry_sdk::Resource;
    use lightstep_receiver::proto::common::v1::any_value::Value;

    let _turn = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = runtime
        .block_on(lightstep_receiver::Receiver::builder().start())
        .unwrap();
    let guard = lightstep::builder()
        .with_env(EnvSnapshot::empty())
        .with_otlp_endpoint(receiver.grpc_endpoint())
        .with_resource(
            Resource::builder_empty()
                .with_attribute(KeyValue::new("team", "payments"))
                .build(),
        )
        .with_service_name("facade-test")
        .init()
        .expect("init");
    global::tracer("facade").in_span("extended", |_| {});
    let stats = guard.shutdown_blocking().expect("delivered");
    assert_eq!(stats.exported, 1);
    let spans = runtime
        .block_on(receiver.wait_for_spans(1, Duration::from_secs(10)))
        .unwrap();
    assert_eq!(spans[0].name(), "extended");
    assert!(
        matches!(spans[0].resource_attribute("team"), Some(Value::StringValue(t)) if t == "payments")
    );
}

#[test]
fn init_returns_configuration_errors() {
    let err = lightstep::builder()
        .with_env(EnvSnapshot::empty())
        .init()
        .expect_err("Lightstep's ingest without a token");
    assert!(
        matches!(err, lightstep::ExporterError::Config(_)),
        "{err:?}"
    );
    // `{err}` alone says what is wrong and where.
    assert!(err.to_string().contains("no access token"), "{err}");
}

/// With the `tracing` layer asked for, a bad configuration is the same error, and installs
/// nothing.
#[cfg(feature = "tracing")]
#[test]
fn the_tracing_layer_says_what_is_wrong_with_the_configuration() {
    let _turn = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    let err = lightstep::builder()
        .with_env(EnvSnapshot::empty())
        .with_tracing_layer()
        .init()
        .expect_err("Lightstep's ingest without a token");
    assert!(
        matches!(err, lightstep::ExporterError::Config(_)),
        "{err:?}"
    );
    assert!(err.to_string().contains("no access token"), "{err}");
}

/// A failed export reaches the hook given to the facade's builder, without the token or a
/// header value (nor does the builder's `Debug` show them).
#[test]
fn the_facade_hook_hears_of_failed_exports() {
    use std::sync::{Arc, Mutex};

    let _turn = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = runtime
        .block_on(
            lightstep_receiver::Receiver::builder()
                .with_access_token("the-right-token")
                .start(),
        )
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::<lightstep::ExportFailure>::new()));
    let hook = {
        let seen = Arc::clone(&seen);
        move |failure: &lightstep::ExportFailure| seen.lock().unwrap().push(failure.clone())
    };
    let builder = lightstep::builder()
        .with_env(EnvSnapshot::empty())
        .with_otlp_endpoint(receiver.grpc_endpoint())
        .with_access_token("a-wrong-S3CRET-token")
        .with_header("x-team", "header-S3CRET-value")
        .on_export_error(hook);
    let shown = format!("{builder:?}");
    assert!(!shown.contains("S3CRET"), "{shown}");
    let guard = builder.init().expect("init");
    global::tracer("facade").in_span("refused", |_| {});
    guard.force_flush_blocking().expect_err("refused");
    let failures = seen.lock().unwrap().clone();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].kind, lightstep::FailureKind::Failed);
    assert_eq!(failures[0].spans, 1);
    assert!(!format!("{:?}", failures[0]).contains("S3CRET"));
    guard.shutdown_blocking().expect_err("undelivered");
}

/// `#[tracing::instrument]` spans join the pipeline through the subscriber that
/// `with_tracing_layer` installs. The only test here that sets the global subscriber, which can
/// be set once.
#[cfg(feature = "tracing")]
#[test]
fn the_tracing_layer_bridges_tracing_spans() {
    #[tracing::instrument]
    fn handle(order: u32) -> u32 {
        order * 2
    }

    let _turn = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = runtime
        .block_on(lightstep_receiver::Receiver::builder().start())
        .unwrap();
    let guard = lightstep::builder()
        .with_env(EnvSnapshot::empty())
        .with_otlp_endpoint(receiver.grpc_endpoint())
        .with_service_name("bridge-test")
        .with_tracing_layer()
        .init()
        .expect("init with the tracing layer");
    assert_eq!(handle(21), 42);
    let stats = guard.shutdown_blocking().expect("delivered");
    assert_eq!(stats.exported, 1);
    let spans = runtime
        .block_on(receiver.wait_for_spans(1, Duration::from_secs(10)))
        .unwrap();
    assert_eq!(spans[0].name(), "handle");
    // A second global subscriber is refused, as an error that keeps its cause.
    let err = lightstep::builder()
        .with_env(EnvSnapshot::empty())
        .with_otlp_endpoint(receiver.grpc_endpoint())
        .with_tracing_layer()
        .init()
        .expect_err("already set");
    assert!(
        matches!(err, lightstep::ExporterError::TracingSubscriber(_)),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("cannot install the tracing subscriber"),
        "{err}"
    );
    let cause = std::error::Error::source(&err).expect("the cause is kept");
    assert!(!cause.to_string().is_empty());
    // `Debug`, what `main` prints, is the message and its cause.
    assert!(
        format!("{err:?}").starts_with("cannot install the tracing subscriber\n\nCaused by:"),
        "{err:?}"
    );
}

/// The pipeline never traces itself: with the `tracing` layer and everything enabled, the spans and
/// events that h2, hyper, tonic, tower and reqwest make while exporting are not exported. N
/// spans ended by the application arrive, exactly N, over gRPC and over HTTP. The global
/// subscriber can be set once per process and `RUST_LOG` only through a child's environment
/// (no `unsafe` here), so each case runs this test binary again as a child.
#[cfg(feature = "tracing")]
#[test]
fn the_tracing_layer_never_exports_the_pipelines_own_telemetry() {
    const CHILD: &str = "LIGHTSTEP_TEST_CHILD_SELF_TELEMETRY";
    const SPANS: usize = 200;
    let env = EnvSnapshot::from_process();
    if let Some(target) = env.get(CHILD) {
        let (protocol, url) = target.split_once(' ').expect("protocol and url");
        let builder = lightstep::builder()
            .with_env(EnvSnapshot::empty())
            .with_service_name("self-telemetry")
            .with_max_export_batch_size(20)
            .with_scheduled_delay(Duration::from_millis(20));
        let builder = if protocol == "grpc" {
            builder.with_otlp_endpoint(url)
        } else {
            builder
                .with_protocol(lightstep::config::Protocol::HttpProtobuf)
                .with_traces_endpoint(url)
        };
        let guard = builder
            .with_tracing_layer()
            .init()
            .expect("init with the tracing layer");
        // Spread over many exports, each of which made the transport's own spans before the
        // next one left.
        for i in 0..SPANS {
            tracing::info_span!("app", i).in_scope(|| tracing::info!("inside"));
            if i % 20 == 0 {
                std::thread::sleep(Duration::from_millis(30));
            }
        }
        guard.pipeline().shutdown_blocking().expect("delivered");
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = runtime
        .block_on(lightstep_receiver::Receiver::builder().start())
        .unwrap();
    // `trace` alone, then every transport crate asked for by name: the default filter keeps
    // them out in the first case; in the second only the export threads' suppressed context
    // does (and the layer's filter that reads it, for spans started without a parent).
    let everything =
        "trace,h2=trace,hyper=trace,hyper_util=trace,tonic=trace,tower=trace,reqwest=trace";
    for rust_log in ["trace", everything] {
        for (protocol, url) in [
            ("grpc", receiver.grpc_endpoint()),
            ("http", receiver.http_traces_url()),
        ] {
            let before = receiver.spans().len();
            let output = child(
                "the_tracing_layer_never_exports_the_pipelines_own_telemetry",
                &[
                    (CHILD, &format!("{protocol} {url}")),
                    ("RUST_LOG", rust_log),
                ],
            );
            assert!(
                output.status.success(),
                "the child failed ({protocol}, RUST_LOG={rust_log}): {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let spans = receiver.spans();
            let extra: Vec<&str> = spans[before..]
                .iter()
                .map(|s| s.name())
                .filter(|name| *name != "app")
                .collect();
            assert_eq!(
                (spans.len() - before, extra.len()),
                (SPANS, 0),
                "{protocol}, RUST_LOG={rust_log}: the pipeline exported its own spans: {:?}",
                &extra[..extra.len().min(20)]
            );
        }
    }
}

/// The `tracing` layer's filter is `RUST_LOG`: `warn` keeps an `info` span out and a `warn`
/// span in; a directive that does not parse is an error naming `RUST_LOG`, with the parser's
/// message as its cause, returned before anything is installed. (A child process each, as
/// above.)
#[cfg(feature = "tracing")]
#[test]
fn the_tracing_layer_honours_rust_log_and_refuses_a_bad_one() {
    const CHILD: &str = "LIGHTSTEP_TEST_CHILD_RUST_LOG";
    let env = EnvSnapshot::from_process();
    if let Some(endpoint) = env.get(CHILD) {
        let builder = lightstep::builder()
            .with_env(EnvSnapshot::empty())
            .with_otlp_endpoint(endpoint)
            .with_service_name("rust-log");
        match builder.with_tracing_layer().init() {
            Ok(guard) => {
                tracing::info_span!("info-span").in_scope(|| {});
                tracing::warn_span!("warn-span").in_scope(|| {});
                guard.pipeline().shutdown_blocking().expect("delivered");
            }
            Err(e) => {
                let message = e.to_string();
                assert!(message.contains("RUST_LOG"), "{message}");
                assert!(
                    matches!(e, lightstep::ExporterError::TracingFilter(_)),
                    "{e:?}"
                );
                assert!(std::error::Error::source(&e).is_some(), "{e:?}");
                // Nothing was installed: the global provider is still the no-op one.
                use lightstep::opentelemetry::trace::Span as _;
                let span = global::tracer("after").start("after");
                assert!(!span.span_context().is_valid());
                std::process::exit(3);
            }
        }
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = runtime
        .block_on(lightstep_receiver::Receiver::builder().start())
        .unwrap();
    let run = |rust_log: &str| {
        child(
            "the_tracing_layer_honours_rust_log_and_refuses_a_bad_one",
            &[(CHILD, &receiver.grpc_endpoint()), ("RUST_LOG", rust_log)],
        )
    };
    let output = run("warn");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let names: Vec<String> = receiver
        .spans()
        .iter()
        .map(|s| s.name().to_owned())
        .collect();
    assert_eq!(names, ["warn-span"]);
    let output = run("info,my_crate=loud");
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// When `init()` with the `tracing` layer fails because a global subscriber is already set (the
/// failure that comes after the pipeline is built), the global tracer provider the application
/// had stays installed, and so does its subscriber. In a child process: both are global, and
/// the subscriber can be set once per process.
#[cfg(feature = "tracing")]
#[test]
fn a_failed_init_with_the_tracing_layer_leaves_the_globals_as_they_were() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use lightstep::opentelemetry::Context;
    use lightstep::opentelemetry::trace::Span as _;
    use lightstep::opentelemetry_sdk::error::OTelSdkResult;
    use lightstep::opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanProcessor};

    /// The application's own subscriber, recognisable by its type.
    struct Previous;

    impl tracing::Subscriber for Previous {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, _: &tracing::Event<'_>) {}
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    /// The application's own tracer provider's processor: counts the spans that end there.
    #[derive(Debug)]
    struct Ended(Arc<AtomicUsize>);

    impl SpanProcessor for Ended {
        fn on_start(&self, _: &mut lightstep::opentelemetry_sdk::trace::Span, _: &Context) {}
        fn on_end(&self, _: SpanData) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        fn force_flush(&self) -> OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
            Ok(())
        }
    }

    const CHILD: &str = "LIGHTSTEP_TEST_CHILD_FAILED_INIT";
    let env = EnvSnapshot::from_process();
    if let Some(endpoint) = env.get(CHILD) {
        tracing::subscriber::set_global_default(Previous).expect("the first subscriber");
        let ended = Arc::new(AtomicUsize::new(0));
        let previous = SdkTracerProvider::builder()
            .with_span_processor(Ended(Arc::clone(&ended)))
            .build();
        global::set_tracer_provider(previous);
        let err = lightstep::builder()
            .with_env(EnvSnapshot::empty())
            .with_otlp_endpoint(endpoint)
            .with_service_name("failed-init")
            .with_tracing_layer()
            .init()
            .expect_err("a subscriber is already set");
        assert!(
            matches!(err, lightstep::ExporterError::TracingSubscriber(_)),
            "{err:?}"
        );
        // The subscriber is still the application's.
        assert!(tracing::dispatcher::get_default(|d| d.is::<Previous>()));
        // The global provider is still the application's: a span of the global tracer records
        // and ends there.
        let mut span = global::tracer("after").start("after-the-failed-init");
        assert!(span.is_recording());
        assert!(span.span_context().is_valid());
        span.end();
        assert_eq!(ended.load(Ordering::SeqCst), 1);
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = runtime
        .block_on(lightstep_receiver::Receiver::builder().start())
        .unwrap();
    let output = child(
        "a_failed_init_with_the_tracing_layer_leaves_the_globals_as_they_were",
        &[(CHILD, &receiver.grpc_endpoint())],
    );
    assert!(
        output.status.success(),
        "the child failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// An application with a `log` logger of its own (and tracing-subscriber built with its
/// `tracing-log` feature, as many are) can still install the tracing layer: `init()` installs
/// the subscriber and nothing else, and `tracing` spans reach the backend. In a child process:
/// the logger and the subscriber can be set once per process.
#[cfg(feature = "tracing")]
#[test]
fn the_tracing_layer_installs_beside_the_applications_log_logger() {
    struct AppLogger;

    impl log::Log for AppLogger {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            true
        }
        fn log(&self, _: &log::Record<'_>) {}
        fn flush(&self) {}
    }

    const CHILD: &str = "LIGHTSTEP_TEST_CHILD_LOG_LOGGER";
    let env = EnvSnapshot::from_process();
    if let Some(endpoint) = env.get(CHILD) {
        static LOGGER: AppLogger = AppLogger;
        log::set_logger(&LOGGER).expect("the application's logger");
        let guard = lightstep::builder()
            .with_env(EnvSnapshot::empty())
            .with_otlp_endpoint(endpoint)
            .with_service_name("beside-log")
            .with_tracing_layer()
            .init()
            .expect("init beside a log logger");
        tracing::info_span!("beside-the-log-logger").in_scope(|| {});
        guard.pipeline().shutdown_blocking().expect("delivered");
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = runtime
        .block_on(lightstep_receiver::Receiver::builder().start())
        .unwrap();
    let output = child(
        "the_tracing_layer_installs_beside_the_applications_log_logger",
        &[(CHILD, &receiver.grpc_endpoint())],
    );
    assert!(
        output.status.success(),
        "the child failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let names: Vec<String> = receiver
        .spans()
        .iter()
        .map(|s| s.name().to_owned())
        .collect();
    assert!(
        names.iter().any(|n| n == "beside-the-log-logger"),
        "{names:?}"
    );
}

/// The original design's names still compile and work: `LightstepConfig`,
/// `LightstepExporter::new(config)`, `tracer()`, and the deprecated `otlp_endpoint()`, which
/// returns the traces endpoint.
#[test]
fn the_original_designs_names_still_work() {
    use lightstep::{LightstepConfig, LightstepExporter};

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = runtime
        .block_on(lightstep_receiver::Receiver::builder().start())
        .unwrap();
    let config = LightstepConfig::builder()
        .with_env(EnvSnapshot::empty())
        .with_otlp_endpoint(receiver.http_endpoint())
        .with_protocol(lightstep::config::Protocol::HttpProtobuf)
        .with_service_name("original-design")
        .build()
        .unwrap();
    #[allow(deprecated)]
    let endpoint = config.otlp_endpoint().as_str().to_owned();
    assert_eq!(endpoint, config.traces_endpoint().as_str());
    assert!(endpoint.ends_with("/v1/traces"), "{endpoint}");
    let exporter: LightstepExporter = LightstepExporter::new(config).unwrap();
    exporter.tracer().in_span("named-as-designed", |_| {});
    let stats = exporter.shutdown_blocking().expect("delivered");
    assert_eq!(stats.exported, 1);
    let spans = runtime
        .block_on(receiver.wait_for_spans(1, Duration::from_secs(10)))
        .unwrap();
    assert_eq!(spans[0].name(), "named-as-designed");
}

/// Runs the test named `test` again in a child process of its own (for what sets a global once
/// per process), with `env` added to the environment.
#[cfg(feature = "tracing")]
fn child(test: &str, env: &[(&str, &str)]) -> std::process::Output {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture"])
        .envs(env.iter().copied())
        .output()
        .unwrap()
}
