//! What the readers keep for the text outputs beyond the span tree: the remote peer a client
//! span talked to, in every format, and parents that ran in a caller's process (normal when the
//! caller sent no spans) told apart from orphans.

use lightstep_analysis::read::{Format, read_traces};
use lightstep_analysis::render::write_text;
use lightstep_analysis::{Options, Span, SpanId, SpanKind, Trace, TraceId, analyze_critical_path};

fn read(input: &str, format: Format) -> Vec<Trace> {
    let mut traces = Vec::new();
    read_traces(input.as_bytes(), "test".as_ref(), Some(format), |t| {
        traces.push(t);
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    traces
}

fn peers(trace: &Trace) -> Vec<(String, Option<String>)> {
    let mut all: Vec<_> = trace
        .spans
        .iter()
        .map(|s| (s.name().to_owned(), s.peer().map(str::to_owned)))
        .collect();
    all.sort();
    all
}

#[test]
fn otlp_json_names_the_peer_from_server_address_and_port_or_peer_service() {
    let doc = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"web"}}]},
      "scopeSpans":[{"spans":[
        {"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"0000000000000001","name":"GET","kind":3,"startTimeUnixNano":"1","endTimeUnixNano":"9",
         "attributes":[{"key":"http.request.method","value":{"stringValue":"GET"}},{"key":"server.address","value":{"stringValue":"users.internal"}},{"key":"server.port","value":{"intValue":"8080"}}]},
        {"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"0000000000000002","name":"POST","kind":3,"startTimeUnixNano":"1","endTimeUnixNano":"9",
         "attributes":[{"key":"server.address","value":{"stringValue":"10.0.0.7"}},{"key":"peer.service","value":{"stringValue":"billing"}}]},
        {"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"0000000000000003","name":"PUT","kind":3,"startTimeUnixNano":"1","endTimeUnixNano":"9",
         "attributes":[{"key":"net.peer.name","value":{"stringValue":"legacy"}},{"key":"net.peer.port","value":{"intValue":443}}]},
        {"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"0000000000000004","name":"work","kind":3,"startTimeUnixNano":"1","endTimeUnixNano":"9",
         "attributes":[{"key":"server.address","value":{"arrayValue":{"values":[]}}}]},
        {"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"0000000000000005","name":"GET /users","kind":2,"startTimeUnixNano":"1","endTimeUnixNano":"9",
         "attributes":[{"key":"server.address","value":{"stringValue":"this-server"}}]}
      ]}]}]}"#;
    let traces = read(doc, Format::OtlpJson);
    assert_eq!(
        peers(&traces[0]),
        [
            ("GET".into(), Some("users.internal:8080".into())),
            // On a server span, `server.address` is the server itself: no peer.
            ("GET /users".into(), None),
            ("POST".into(), Some("billing".into())),
            ("PUT".into(), Some("legacy:443".into())),
            ("work".into(), None),
        ]
    );
}

#[test]
fn jaeger_tags_and_zipkin_remote_endpoints_name_the_peer() {
    let jaeger = r#"{"data":[{"traceID":"t1","spans":[
        {"traceID":"t1","spanID":"a","operationName":"GET","references":[],"startTime":1,"duration":5,"processID":"p1",
         "tags":[{"key":"span.kind","type":"string","value":"client"},{"key":"server.address","type":"string","value":"users"},{"key":"server.port","type":"int64","value":80}]}],
        "processes":{"p1":{"serviceName":"web"}}}]}"#;
    let traces = read(jaeger, Format::JaegerJson);
    assert_eq!(peers(&traces[0]), [("GET".into(), Some("users:80".into()))]);

    let zipkin = r#"[{"traceId":"a","id":"1","kind":"CLIENT","name":"get","timestamp":1,"duration":5,
        "localEndpoint":{"serviceName":"web"},"remoteEndpoint":{"ipv4":"10.1.2.3","port":9411}},
       {"traceId":"a","id":"2","parentId":"1","kind":"CLIENT","name":"query","timestamp":2,"duration":1,
        "localEndpoint":{"serviceName":"web"},"remoteEndpoint":{"serviceName":"mysql"}}]"#;
    let traces = read(zipkin, Format::ZipkinJson);
    assert_eq!(
        peers(&traces[0]),
        [
            ("get".into(), Some("10.1.2.3:9411".into())),
            ("query".into(), Some("mysql".into())),
        ]
    );
}

#[test]
fn otlp_protobuf_names_the_peer_and_marks_remote_parents() {
    // The exporter's encoding of two spans, as the embedded receiver stores them: a server
    // span whose parent came in a `traceparent` (OTLP flags 0x300) and a client span to users.
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span as ProtoSpan};
    use prost::Message as _;

    let attribute = |key: &str, value: any_value::Value| KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    };
    let span = |id: u8, parent: u8, name: &str, kind: i32| ProtoSpan {
        trace_id: vec![1; 16],
        span_id: vec![id; 8],
        parent_span_id: vec![parent; 8],
        name: name.into(),
        kind,
        start_time_unix_nano: 1_000,
        end_time_unix_nano: 9_000,
        ..ProtoSpan::default()
    };
    let mut server = span(2, 9, "GET /users", 2);
    server.flags = 0x301;
    let mut client = span(3, 2, "GET", 3);
    client.attributes = vec![
        attribute(
            "server.address",
            any_value::Value::StringValue("users".into()),
        ),
        attribute("server.port", any_value::Value::IntValue(8080)),
    ];
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![server, client],
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    };
    let mut traces = Vec::new();
    read_traces(
        &request.encode_to_vec()[..],
        "test".as_ref(),
        Some(Format::OtlpProto),
        |t| {
            traces.push(t);
            Ok(())
        },
    )
    .unwrap();
    let trace = &traces[0];
    assert_eq!(
        peers(trace),
        [
            ("GET".into(), Some("users:8080".into())),
            ("GET /users".into(), None)
        ]
    );
    let root = trace
        .spans
        .iter()
        .find(|s| s.name() == "GET /users")
        .unwrap();
    assert!(root.has_remote_parent());
}

/// A trace whose top span's parent is elsewhere.
fn with_missing_parent(kind: SpanKind, remote: bool) -> Trace {
    let t = TraceId::from_u128(7);
    Trace::new(
        t.clone(),
        vec![
            Span::new(t.clone(), SpanId::from_u64(1), 1_000, 9_000)
                .with_parent(SpanId::from_u64(99))
                .with_kind(kind)
                .with_remote_parent(remote)
                .with_service("users")
                .with_name("GET /users/{id}"),
            Span::new(t, SpanId::from_u64(2), 2_000, 8_000)
                .with_parent(SpanId::from_u64(1))
                .with_service("users")
                .with_name("SELECT users"),
        ],
    )
}

fn text(trace: &Trace) -> String {
    let analysis = analyze_critical_path(trace, &Options::default());
    let mut out = Vec::new();
    write_text(&mut out, &analysis, 20).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn a_parent_in_the_callers_process_is_not_reported_as_a_repair() {
    for (kind, remote) in [
        (SpanKind::Server, false),
        (SpanKind::Consumer, false),
        (SpanKind::Internal, true),
    ] {
        let trace = with_missing_parent(kind, remote);
        let analysis = analyze_critical_path(&trace, &Options::default());
        assert_eq!(analysis.diagnostics.orphans, 1, "{kind:?}");
        assert_eq!(analysis.diagnostics.remote_parents, 1, "{kind:?}");
        let text = text(&trace);
        assert!(!text.contains("repaired"), "{kind:?}: {text}");
        assert!(
            text.contains("1 span has a parent in a caller that sent no spans (remote parent"),
            "{kind:?}: {text}"
        );
    }
    // An internal span whose parent is missing, with nothing saying it is remote, is an orphan.
    let trace = with_missing_parent(SpanKind::Internal, false);
    let analysis = analyze_critical_path(&trace, &Options::default());
    assert_eq!(analysis.diagnostics.remote_parents, 0);
    let text = text(&trace);
    assert!(text.contains("repaired: 1 orphan"), "{text}");
    assert!(!text.contains("1 orphans"), "{text}");
    assert!(text.contains("2 spans on the path"), "{text}");
}
