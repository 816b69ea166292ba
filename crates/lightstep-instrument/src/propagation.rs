//! Trace context in and out of HTTP headers and gRPC metadata, through the global propagator.
//!
//! Whatever propagators the application installed with
//! `opentelemetry::global::set_text_map_propagator` (W3C trace context and baggage, B3, ..) are
//! used; until one is installed, nothing is injected or extracted (OpenTelemetry's default).

use opentelemetry::Context;
use opentelemetry::global;
use opentelemetry::propagation::{Extractor, Injector};

/// Writes `cx` into `headers` with the global propagator. Entries that are not valid header
/// names or values are skipped.
pub fn inject_headers(cx: &Context, headers: &mut http::HeaderMap) {
    global::get_text_map_propagator(|propagator| {
        propagator.inject_context(cx, &mut HeaderInjector(headers));
    });
}

/// Reads the context `headers` carry with the global propagator, on top of the current context.
pub fn extract_headers(headers: &http::HeaderMap) -> Context {
    extract_headers_onto(&Context::current(), headers)
}

/// Reads the context `headers` carry on top of `base`. Server spans use an empty `base`: a
/// request without trace headers starts a trace of its own, whatever happens to be current
/// where the server runs (a connection's `tracing` span, a test's client span).
pub(crate) fn extract_headers_onto(base: &Context, headers: &http::HeaderMap) -> Context {
    global::get_text_map_propagator(|propagator| {
        propagator.extract_with_context(base, &HeaderExtractor(headers))
    })
}

/// [`Injector`] for an [`http::HeaderMap`].
#[derive(Debug)]
pub struct HeaderInjector<'a>(pub &'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// [`Extractor`] for an [`http::HeaderMap`].
#[derive(Debug)]
pub struct HeaderExtractor<'a>(pub &'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let values: Vec<&str> = self
            .0
            .get_all(key)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        (!values.is_empty()).then_some(values)
    }
}

/// Writes `cx` into gRPC `metadata` with the global propagator.
#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
pub fn inject_metadata(cx: &Context, metadata: &mut tonic::metadata::MetadataMap) {
    global::get_text_map_propagator(|propagator| {
        propagator.inject_context(cx, &mut MetadataInjector(metadata));
    });
}

/// Reads the context gRPC `metadata` carries with the global propagator, on top of the current
/// context.
#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
pub fn extract_metadata(metadata: &tonic::metadata::MetadataMap) -> Context {
    extract_metadata_onto(&Context::current(), metadata)
}

/// Reads the context `metadata` carries on top of `base` (empty for server spans, as with
/// [`extract_headers_onto`]).
#[cfg(feature = "tonic")]
pub(crate) fn extract_metadata_onto(
    base: &Context,
    metadata: &tonic::metadata::MetadataMap,
) -> Context {
    global::get_text_map_propagator(|propagator| {
        propagator.extract_with_context(base, &MetadataExtractor(metadata))
    })
}

/// [`Injector`] for a tonic `MetadataMap`.
#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
#[derive(Debug)]
pub struct MetadataInjector<'a>(pub &'a mut tonic::metadata::MetadataMap);

#[cfg(feature = "tonic")]
impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// [`Extractor`] for a tonic `MetadataMap`.
#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
#[derive(Debug)]
pub struct MetadataExtractor<'a>(pub &'a tonic::metadata::MetadataMap);

#[cfg(feature = "tonic")]
impl Extractor for MetadataExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .map(|key| match key {
                tonic::metadata::KeyRef::Ascii(k) => k.as_str(),
                tonic::metadata::KeyRef::Binary(k) => k.as_str(),
            })
            .collect()
    }
}
