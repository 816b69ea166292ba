#![no_main]

use libfuzzer_sys::fuzz_target;
use lightstep_receiver::bench_support::{ingest_protobuf, request_info, store};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    // The receiver refuses a request as a whole exactly when prost cannot decode it; a request
    // prost decodes is taken (its spans stored, or refused one by one as partial success).
    let store = store(1_000_000);
    let info = request_info(http::HeaderMap::new());
    let ours = ingest_protobuf(&store, data, &info);
    let prost_ok = ExportTraceServiceRequest::decode(data).is_ok();
    assert_eq!(
        ours.is_some(),
        prost_ok,
        "the receiver and prost disagree on whether the body decodes"
    );
    // Whatever was stored decodes again (spans are decoded lazily from their bytes).
    for span in store.spans() {
        let _ = span.span();
    }
});
