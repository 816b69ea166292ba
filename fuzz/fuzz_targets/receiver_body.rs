//! The receiver's handling of a request body through its own handler: gRPC message framing or
//! OTLP/HTTP, gzip, bodies of declared or unknown length in frames of any size, the in-flight
//! budget and the size limit. The first byte picks the request's shape, the second the frame
//! size, the rest is the payload (gzip-compressed here when the shape says so, so that
//! inflation runs on real gzip streams, bombs included). Whatever the input: no panic, no hang,
//! every byte charged to the budget is released once the answer is made, and nothing larger
//! than the limit is taken.
#![no_main]

use std::io::Write;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use lightstep_receiver::bench_support::{Export, handle_export};

const MAX_REQUEST: usize = 64 * 1024;
const BUDGET: usize = 256 * 1024;

fuzz_target!(|data: &[u8]| {
    let [shape, frame, payload @ ..] = data else {
        return;
    };
    let grpc = shape & 1 != 0;
    let json = !grpc && shape & 2 != 0;
    let gzip = shape & 4 != 0;
    // With gzip: compress the payload here (a real stream), or send it as it is (broken ones).
    let compress = gzip && shape & 8 == 0;
    // For gRPC: the 5-byte message header written right, or the payload as the whole body.
    let framed = grpc && shape & 16 == 0;
    let declared_length = shape & 32 != 0;

    let mut body = if compress {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(payload).expect("gzip into memory");
        encoder.finish().expect("gzip into memory")
    } else {
        payload.to_vec()
    };
    if framed {
        let mut message = vec![u8::from(gzip)];
        message.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes());
        message.extend_from_slice(&body);
        body = message;
    }
    let frame = usize::from(*frame).max(1) * 64;
    let frames = body.chunks(frame).map(Bytes::copy_from_slice).collect();
    let answer = handle_export(
        Export {
            grpc,
            json,
            gzip,
            declared_length,
            frames,
        },
        MAX_REQUEST,
        BUDGET,
    );
    assert_eq!(
        answer.in_flight_after, 0,
        "a request left bytes charged: {answer:?}"
    );
    let accepted = answer.status == 200 && answer.grpc_status.as_deref().unwrap_or("0") == "0";
    // The payload is the message itself, or (gRPC without our framing) its 5-byte header too.
    let limit = MAX_REQUEST + if grpc && !framed { 5 } else { 0 };
    if accepted && (!gzip || compress) {
        assert!(
            payload.len() <= limit,
            "a message of {} bytes (before any gzip) was taken past the {MAX_REQUEST}-byte limit: \
             {answer:?}",
            payload.len()
        );
    }
});
