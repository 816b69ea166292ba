//! Extraction of every propagation format from untrusted HTTP headers (every instrumented service
//! reads them from its callers): the input is split on newlines into the values of the headers
//! the propagators read. No input may panic; whatever context a propagator accepts, it injects
//! again as valid header values (no control character, so no line break can be smuggled into an
//! outgoing request), and
//! that injection extracts to the same trace id, span id and sampled flag.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use lightstep_config::Propagator;
use lightstep_exporter::build_propagator;
use opentelemetry::Context;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;

/// Every header a propagator reads, in the order the input's lines fill them.
const HEADERS: &[&str] = &[
    "traceparent",
    "tracestate",
    "baggage",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-sampled",
    "x-b3-flags",
    "x-b3-parentspanid",
    "uber-trace-id",
    "uberctx-user",
    "ot-tracer-traceid",
    "ot-tracer-spanid",
    "ot-tracer-sampled",
    "ot-baggage-user",
    "x-amzn-trace-id",
];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // What an HTTP request can carry: a line that is no valid header value leaves its header
    // out, as the server's parser would have refused it.
    let carrier: HashMap<String, String> = HEADERS
        .iter()
        .zip(text.split('\n'))
        .filter(|(_, value)| http::HeaderValue::from_bytes(value.as_bytes()).is_ok())
        .map(|(name, value)| ((*name).to_owned(), value.to_owned()))
        .collect();
    // As the configuration builds them, with whether the format carries only the low 64 bits
    // of the trace id (OpenTracing's tracers expect that much).
    let propagators = [
        (Propagator::TraceContext, false),
        (Propagator::Baggage, false),
        (Propagator::B3, false),
        (Propagator::B3Multi, false),
        (Propagator::Jaeger, false),
        (Propagator::OtTrace, true),
        (Propagator::Xray, false),
    ]
    .map(|(p, low_64_bits)| (build_propagator(&[p]), low_64_bits));
    for (propagator, low_64_bits) in &propagators {
        let cx = propagator.extract_with_context(&Context::new(), &carrier);
        let mut injected: HashMap<String, String> = HashMap::new();
        propagator.inject_context(&cx, &mut injected);
        for (name, value) in &injected {
            assert!(
                http::HeaderValue::from_bytes(value.as_bytes()).is_ok(),
                "{name}: {value:?} is not a valid header value (from {carrier:?})"
            );
        }
        let span = cx.span().span_context().clone();
        if !span.is_valid() {
            continue;
        }
        let again = propagator.extract_with_context(&Context::new(), &injected);
        let back = again.span().span_context().clone();
        let trace_id = |id: opentelemetry::trace::TraceId| {
            let hex = id.to_string();
            if *low_64_bits {
                hex[16..].to_owned()
            } else {
                hex
            }
        };
        assert_eq!(
            (trace_id(back.trace_id()), back.span_id(), back.is_sampled()),
            (trace_id(span.trace_id()), span.span_id(), span.is_sampled()),
            "{injected:?} does not extract to what was injected (from {carrier:?})"
        );
    }
});
