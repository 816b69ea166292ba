//! OTLP/JSON decoding.
//!
//! `opentelemetry-proto`'s serde mapping (feature `with-serde`) follows OTLP/JSON for what
//! matters here: lowerCamelCase names, trace and span ids as hex strings, 64-bit integers as
//! strings or numbers, enums as integers, unknown fields ignored. The tests below pin that
//! down against the examples of the OTLP specification, so an upgrade that breaks it fails here.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

/// Decodes an OTLP/JSON `ExportTraceServiceRequest`.
pub(crate) fn decode_request(body: &[u8]) -> Result<ExportTraceServiceRequest, String> {
    serde_json::from_slice(body).map_err(|e| format!("invalid OTLP/JSON body: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;

    /// The trace example of the OTLP specification's JSON encoding section, with 64-bit
    /// integers written both as strings and as numbers.
    const SPEC_EXAMPLE: &str = r#"{
      "resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
        "scopeSpans": [{
          "scope": {"name": "my.library", "version": "1.0.0",
                    "attributes": [{"key": "my.scope.attribute", "value": {"stringValue": "some scope attribute"}}]},
          "spans": [{
            "traceId": "5B8EFFF798038103D269B633813FC60C",
            "spanId": "EEE19B7EC3C1B174",
            "parentSpanId": "EEE19B7EC3C1B173",
            "name": "I'm a server span",
            "startTimeUnixNano": "1544712660000000000",
            "endTimeUnixNano": 1544712661000000000,
            "kind": 2,
            "attributes": [
              {"key": "my.span.attr", "value": {"stringValue": "some value"}},
              {"key": "an.int", "value": {"intValue": "42"}},
              {"key": "a.number.int", "value": {"intValue": 7}},
              {"key": "a.double", "value": {"doubleValue": 1.5}},
              {"key": "a.bool", "value": {"boolValue": true}},
              {"key": "an.array", "value": {"arrayValue": {"values": [{"stringValue": "x"}]}}}
            ],
            "events": [{"timeUnixNano": "1544712660500000000", "name": "ev"}],
            "status": {"code": 2, "message": "boom"},
            "someFutureField": {"ignored": true}
          }]
        }]
      }]
    }"#;

    #[test]
    fn decodes_the_specification_example() {
        let req = decode_request(SPEC_EXAMPLE.as_bytes()).expect("decodes");
        let span = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.trace_id[0], 0x5b);
        assert_eq!(span.trace_id.len(), 16);
        assert_eq!(span.span_id.len(), 8);
        assert_eq!(span.parent_span_id.len(), 8);
        assert_eq!(span.start_time_unix_nano, 1_544_712_660_000_000_000);
        assert_eq!(span.end_time_unix_nano, 1_544_712_661_000_000_000);
        assert_eq!(span.kind, 2);
        assert_eq!(span.events[0].time_unix_nano, 1_544_712_660_500_000_000);
        assert_eq!(span.status.as_ref().map(|s| s.code), Some(2));
        let attr = |k: &str| {
            span.attributes
                .iter()
                .find(|kv| kv.key == k)
                .and_then(|kv| kv.value.clone())
                .and_then(|v| v.value)
        };
        assert_eq!(attr("an.int"), Some(Value::IntValue(42)));
        assert_eq!(attr("a.number.int"), Some(Value::IntValue(7)));
        assert_eq!(attr("a.double"), Some(Value::DoubleValue(1.5)));
        assert_eq!(attr("a.bool"), Some(Value::BoolValue(true)));
        assert!(matches!(attr("an.array"), Some(Value::ArrayValue(a)) if a.values.len() == 1));
    }

    #[test]
    fn omitted_fields_take_their_defaults() {
        let req =
            decode_request(br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"n"}]}]}]}"#)
                .expect("decodes");
        let span = &req.resource_spans[0].scope_spans[0].spans[0];
        assert!(span.trace_id.is_empty() && span.parent_span_id.is_empty());
        assert!(
            decode_request(b"{}")
                .expect("empty")
                .resource_spans
                .is_empty()
        );
    }

    #[test]
    fn rejects_what_is_not_otlp_json() {
        for bad in [
            &b"not json"[..],
            br#"{"resourceSpans": 3}"#,
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}"#,
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"-1"}]}]}]}"#,
        ] {
            assert!(
                decode_request(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
