#![no_main]

use libfuzzer_sys::fuzz_target;
use lightstep_receiver::bench_support::json_to_protobuf;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    // Whatever the bytes, the transcoder answers without panicking. What it accepts is a
    // request prost decodes (serde_json's nesting limit keeps it under prost's), written within
    // the output capacity that the in-flight budget charges for.
    let (encoded, capacity) = json_to_protobuf(data);
    if let Some(encoded) = encoded {
        assert!(
            encoded.len() <= capacity,
            "the output outgrew its reservation"
        );
        assert!(
            ExportTraceServiceRequest::decode(encoded.as_slice()).is_ok(),
            "the transcoder wrote protobuf that prost refuses"
        );
    }
});
