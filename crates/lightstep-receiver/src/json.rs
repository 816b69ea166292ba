//! OTLP/JSON decoding.
//!
//! `opentelemetry-proto`'s serde mapping (feature `with-serde`) gets the core of OTLP/JSON right:
//! lowerCamelCase names, trace and span ids as hex strings (either case), 64-bit integers as
//! strings or numbers, enums as integers, unknown fields ignored. It is stricter than the
//! protobuf JSON mapping that OTLP/JSON builds on in a few places, where real senders differ:
//! `null` for an absent field, an empty `arrayValue`/`kvlistValue` written as `{}` (protobuf
//! JSON writers omit empty repeated fields), a key/value without `key`, enum names
//! (`"SPAN_KIND_SERVER"`), and 32-bit integers written as strings. [`normalize`] rewrites those
//! into the form the serde mapping accepts before decoding. `NaN` and `Infinity` as
//! `doubleValue` are still refused (a `serde_json::Value` cannot hold them).
//!
//! The tests below pin all of this down against the examples of the OTLP specification, so an
//! upgrade of `opentelemetry-proto` that changes it fails here.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use serde_json::{Map, Value};

/// Decodes an OTLP/JSON `ExportTraceServiceRequest`.
pub(crate) fn decode_request(body: &[u8]) -> Result<ExportTraceServiceRequest, String> {
    // serde_json refuses nesting deeper than 128 levels, which also bounds `normalize`'s
    // recursion.
    let mut value: Value =
        serde_json::from_slice(body).map_err(|e| format!("invalid OTLP/JSON body: {e}"))?;
    normalize(&mut value, None, false);
    serde_json::from_value(value).map_err(|e| format!("invalid OTLP/JSON body: {e}"))
}

/// 32-bit integer fields of the trace protos (plus the enums), which protobuf JSON allows as
/// strings.
const INT32_FIELDS: &[&str] = &[
    "droppedAttributesCount",
    "droppedEventsCount",
    "droppedLinksCount",
    "flags",
    "kind",
    "code",
];

fn enum_value(field: &str, name: &str) -> Option<i64> {
    let names: &[&str] = match field {
        "kind" => &[
            "SPAN_KIND_UNSPECIFIED",
            "SPAN_KIND_INTERNAL",
            "SPAN_KIND_SERVER",
            "SPAN_KIND_CLIENT",
            "SPAN_KIND_PRODUCER",
            "SPAN_KIND_CONSUMER",
        ],
        "code" => &["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"],
        _ => return None,
    };
    names
        .iter()
        .position(|n| *n == name)
        .and_then(|i| i64::try_from(i).ok())
}

/// Rewrites the protobuf-JSON forms listed in the module docs into what the serde mapping
/// accepts. `key` is the field name the value sits under; `key_values` says that an array under
/// `values` holds key/value pairs (inside a `kvlistValue`) rather than plain values.
fn normalize(value: &mut Value, key: Option<&str>, key_values: bool) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            if matches!(key, Some("arrayValue" | "kvlistValue")) {
                map.entry("values")
                    .or_insert_with(|| Value::Array(Vec::new()));
            }
            fix_int32_fields(map);
            let in_kvlist = key == Some("kvlistValue");
            for (k, child) in map.iter_mut() {
                normalize(child, Some(k.as_str()), in_kvlist);
            }
        }
        Value::Array(items) => {
            let holds_key_values =
                key == Some("attributes") || (key == Some("values") && key_values);
            for item in items.iter_mut() {
                if holds_key_values && let Value::Object(kv) = item {
                    kv.entry("key")
                        .or_insert_with(|| Value::String(String::new()));
                }
                normalize(item, None, false);
            }
        }
        _ => {}
    }
}

fn fix_int32_fields(map: &mut Map<String, Value>) {
    for field in INT32_FIELDS {
        if let Some(Value::String(s)) = map.get(*field) {
            let n = s.parse::<i64>().ok().or_else(|| enum_value(field, s));
            if let Some(n) = n {
                map.insert((*field).to_owned(), Value::from(n));
            }
        }
    }
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

    #[test]
    fn accepts_the_protobuf_json_forms_real_senders_use() {
        let body = r#"{"resourceSpans":[{"resource":null,"scopeSpans":[{"spans":[{
            "traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708",
            "parentSpanId":null,"kind":"SPAN_KIND_CLIENT","droppedAttributesCount":"3",
            "status":{"code":"STATUS_CODE_ERROR"},
            "attributes":[
              {"key":"empty.array","value":{"arrayValue":{}}},
              {"key":"empty.kvlist","value":{"kvlistValue":{}}},
              {"key":"nested","value":{"kvlistValue":{"values":[{"value":{"intValue":"1"}}]}}},
              {"value":{"stringValue":"no key"}},
              {"key":"bytes","value":{"bytesValue":"aGVsbG8="}}
            ]}]}]}]}"#;
        let req = decode_request(body.as_bytes()).expect("decodes");
        let span = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.kind, 3);
        assert_eq!(span.dropped_attributes_count, 3);
        assert_eq!(span.status.as_ref().map(|s| s.code), Some(2));
        assert!(span.parent_span_id.is_empty());
        let value = |i: usize| span.attributes[i].value.clone().and_then(|v| v.value);
        assert!(matches!(value(0), Some(Value::ArrayValue(a)) if a.values.is_empty()));
        assert!(matches!(value(1), Some(Value::KvlistValue(l)) if l.values.is_empty()));
        assert!(matches!(value(2), Some(Value::KvlistValue(l)) if l.values[0].key.is_empty()));
        assert_eq!(span.attributes[3].key, "");
        assert_eq!(value(4), Some(Value::BytesValue(b"hello".to_vec())));
    }

    #[test]
    fn refuses_unknown_enum_names_and_deep_nesting() {
        let bad_kind = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"SERVERISH"}]}]}]}"#;
        assert!(decode_request(bad_kind).is_err());
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(decode_request(deep.as_bytes()).is_err());
    }
}
