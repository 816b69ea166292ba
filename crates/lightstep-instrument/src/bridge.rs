//! The `tracing` bridge: spans from `#[tracing::instrument]` and `tracing::info_span!` join the
//! same traces as the helpers' spans.
//!
//! The layer is tracing-opentelemetry's, with context activation on: entering a `tracing` span
//! makes its OpenTelemetry context current (so a helper called inside nests under it), and a
//! `tracing` span created inside a helper's future takes the helper's span as its parent.

use opentelemetry::trace::Tracer;
use tracing_opentelemetry::OpenTelemetryLayer;
use tracing_subscriber::registry::LookupSpan;

/// A `tracing-subscriber` layer that records `tracing` spans with `tracer`, in the same traces
/// as this crate's spans.
///
/// ```
/// use opentelemetry::trace::TracerProvider as _;
/// use tracing_subscriber::layer::SubscriberExt as _;
///
/// let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
/// let subscriber = tracing_subscriber::registry()
///     .with(lightstep_instrument::tracing_layer(provider.tracer("my-service")));
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::info_span!("work").in_scope(|| {});
/// });
/// ```
pub fn tracing_layer<S, T>(tracer: T) -> OpenTelemetryLayer<S, T>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
    T: Tracer + 'static,
    T::Span: Send + Sync,
{
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_context_activation(true)
}
