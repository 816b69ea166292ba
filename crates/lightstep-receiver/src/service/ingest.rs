//! Storing a body that has been read: inflating gzip within the size limit, growing the body's
//! charge in the in-flight budget before each allocation, transcoding OTLP/JSON, and handing
//! the protobuf to the store. Runs on an async worker for small plain bodies and on the
//! blocking pool otherwise ([`App::store_body`](super::App)).

use std::io::Read as _;
use std::sync::Arc;

use bytes::Bytes;

use super::Failure;
use crate::budget::{Budget, Charge};
use crate::store::{IngestOutcome, Protocol, RequestInfo, SpanStore};

/// The work of storing one body, movable to the blocking pool.
pub(super) struct IngestJob {
    pub(super) store: SpanStore,
    pub(super) budget: Arc<Budget>,
    pub(super) limit: usize,
    pub(super) protocol: Protocol,
    pub(super) gzip: bool,
    pub(super) info: Arc<RequestInfo>,
}

impl IngestJob {
    /// Stores `body`, holding `charge` (its share of the in-flight budget) until it is done.
    pub(super) fn run(self, body: Bytes, charge: Charge) -> Result<IngestOutcome, Failure> {
        if !self.gzip {
            let held = body.len();
            return self.decode(&body, held, charge);
        }
        let (inflated, charge) = self.inflate_charged(body, charge)?;
        self.decode(&inflated, inflated.capacity(), charge)
    }

    /// Inflates a gzip body. `charge` covers the compressed body on entry; on return it covers
    /// the inflated buffer only.
    fn inflate_charged(
        &self,
        body: Bytes,
        mut charge: Charge,
    ) -> Result<(Vec<u8>, Charge), Failure> {
        // The reservation grows with the inflated buffer, before each allocation (so a small
        // gzip body cannot make the receiver allocate past the budget and only then be
        // refused). The compressed body stays charged while it is inflated: both are held.
        // The charge is capped at what one request may hold, so that a body whose two copies
        // exceed it is still taken when the receiver is otherwise idle (it could never be
        // otherwise); then up to one compressed body is held beyond the budget.
        let compressed = body.len();
        let largest = self.budget.largest();
        let mut inflated = inflate(&body, self.limit, |capacity| {
            self.grow(
                &mut charge,
                compressed.saturating_add(capacity).min(largest),
            )
        })?;
        drop(body);
        // The compressed body is gone: its share goes back to the budget.
        let release = charge
            .bytes()
            .saturating_sub(inflated.capacity())
            .min(compressed);
        charge.shrink_to(charge.bytes() - release);
        if self.protocol == Protocol::HttpJson {
            // Decoding JSON is charged on top of the inflated buffer: the buffer's length, as
            // for a plain body, not the capacity its doubling left (up to twice that).
            inflated.shrink_to_fit();
        }
        Ok((inflated, charge))
    }

    /// Decodes and stores an uncompressed body; `held` is what `charge` already covers of it.
    /// OTLP/JSON first has the charge grow by what transcoding it takes.
    fn decode(
        &self,
        plain: &[u8],
        held: usize,
        mut charge: Charge,
    ) -> Result<IngestOutcome, Failure> {
        if self.protocol == Protocol::HttpJson {
            let needed = held.saturating_add(crate::json::working_memory(plain.len()));
            if needed > self.budget.largest() {
                return Err(Failure::TooLargeToDecode(needed));
            }
            self.grow(&mut charge, needed)?;
        }
        let outcome = decode_and_store(&self.store, plain, self.protocol, &self.info);
        drop(charge);
        outcome
    }

    /// Grows `charge` to `bytes`, without waiting: waiting while holding a reservation could
    /// deadlock against another request doing the same.
    fn grow(&self, charge: &mut Charge, bytes: usize) -> Result<(), Failure> {
        if self.budget.grow(charge, bytes) {
            Ok(())
        } else {
            Err(Failure::Busy)
        }
    }
}

/// Decodes an uncompressed body and stores its spans.
fn decode_and_store(
    store: &SpanStore,
    body: &[u8],
    protocol: Protocol,
    info: &Arc<RequestInfo>,
) -> Result<IngestOutcome, Failure> {
    match protocol {
        Protocol::HttpJson => {
            let encoded = crate::json::to_protobuf(body).map_err(Failure::Malformed)?;
            store
                .ingest_protobuf(&encoded, info)
                .map_err(|e| Failure::Malformed(format!("invalid OTLP/JSON body: {e}")))
        }
        _ => store
            .ingest_protobuf(body, info)
            .map_err(|e| Failure::Malformed(format!("invalid protobuf body: {e}"))),
    }
}

/// Decompresses a gzip body, stopping at `limit` bytes so that a small gzip bomb cannot expand
/// without bound. `reserve(capacity)` is called before the output buffer grows to `capacity`
/// bytes, and may refuse.
fn inflate(
    bytes: &[u8],
    limit: usize,
    mut reserve: impl FnMut(usize) -> Result<(), Failure>,
) -> Result<Vec<u8>, Failure> {
    let cap = limit.saturating_add(1);
    let mut decoder = flate2::read::MultiGzDecoder::new(bytes);
    let mut out = Vec::new();
    loop {
        if out.len() == out.capacity() {
            // Twice the compressed size to start with, then doubling.
            let capacity = if out.capacity() == 0 {
                bytes.len().saturating_mul(2).max(4096)
            } else {
                out.len().saturating_mul(2)
            }
            .min(cap);
            reserve(capacity)?;
            out.reserve_exact(capacity - out.len());
        }
        let room = out.capacity() - out.len();
        let read = (&mut decoder)
            .take(u64::try_from(room).unwrap_or(u64::MAX))
            .read_to_end(&mut out)
            .map_err(|e| Failure::Malformed(format!("invalid gzip body: {e}")))?;
        if out.len() > limit {
            return Err(Failure::TooLarge);
        }
        // Less than the room read: the decoder reached the end.
        if read < room {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;
    use prost::Message as _;

    use crate::store::WhenFull;

    /// Decodes (and stores, in a store of its own) a body as an export would.
    fn decode_http(
        bytes: &[u8],
        gzip: bool,
        protocol: Protocol,
        limit: usize,
    ) -> Result<IngestOutcome, Failure> {
        let store = SpanStore::new(1000, usize::MAX, WhenFull::RejectNew);
        let info = Arc::new(RequestInfo::new(protocol, &HeaderMap::new(), None, false));
        let body = if gzip {
            inflate(bytes, limit, |_| Ok(()))?
        } else {
            bytes.to_vec()
        };
        decode_and_store(&store, &body, protocol, &info)
    }

    #[test]
    fn gzip_bombs_stop_at_the_limit() {
        use std::io::Write as _;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![0u8; 1 << 20]).expect("compress");
        let bomb = enc.finish().expect("finish");
        assert!(bomb.len() < 4096);
        assert!(matches!(
            decode_http(&bomb, true, Protocol::HttpProtobuf, 64 * 1024),
            Err(Failure::TooLarge)
        ));
    }

    /// An ingest job over `budget`, as the handlers make one.
    fn gzip_job(budget: &Arc<Budget>) -> IngestJob {
        IngestJob {
            store: SpanStore::new(1000, usize::MAX, WhenFull::RejectNew),
            budget: Arc::clone(budget),
            limit: 4 << 20,
            protocol: Protocol::HttpProtobuf,
            gzip: true,
            info: Arc::new(RequestInfo::new(
                Protocol::HttpProtobuf,
                &HeaderMap::new(),
                None,
                false,
            )),
        }
    }

    fn gzip(plain: &[u8]) -> Bytes {
        use std::io::Write as _;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(plain).expect("compress");
        Bytes::from(enc.finish().expect("finish"))
    }

    #[test]
    fn once_inflated_only_the_inflated_buffer_stays_charged() {
        let total = 1 << 20;
        // One lane: the whole budget holds the largest request.
        let budget = Arc::new(Budget::new(total, total));
        // Half a mebibyte of text that compresses to a few kibibytes.
        let plain: Vec<u8> = (0..512 * 1024).map(|i| b"span-"[i % 5]).collect();
        let body = gzip(&plain);
        let compressed = body.len();
        let charge = budget.try_charge(compressed).expect("room");
        let job = gzip_job(&budget);
        let (inflated, charge) = job.inflate_charged(body, charge).expect("inflates");
        assert_eq!(inflated, plain);
        // The compressed body went back to the budget; the inflated buffer is still charged,
        // with its whole capacity.
        assert_eq!(charge.bytes(), inflated.capacity());
        assert_eq!(budget.in_use(), inflated.capacity());
        drop(charge);
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn a_body_whose_two_copies_exceed_the_budget_is_charged_the_whole_budget_then_its_buffer() {
        let plain: Vec<u8> = (0..512 * 1024).map(|i| b"span-"[i % 5]).collect();
        let body = gzip(&plain);
        let compressed = body.len();
        // Room for the inflated buffer, not for it and the compressed body together.
        let capacity = inflate(&body, 4 << 20, |_| Ok(()))
            .expect("inflates")
            .capacity();
        let total = capacity + compressed / 2;
        let budget = Arc::new(Budget::new(total, total));
        let charge = budget.try_charge(compressed).expect("room");
        let job = gzip_job(&budget);
        let (inflated, charge) = job.inflate_charged(body, charge).expect("inflates");
        assert_eq!(inflated.capacity(), capacity);
        assert_eq!(charge.bytes(), capacity);
        assert_eq!(budget.in_use(), capacity);
    }

    #[test]
    fn bad_gzip_is_malformed() {
        assert!(matches!(
            decode_http(b"not gzip", true, Protocol::HttpProtobuf, 1024),
            Err(Failure::Malformed(_))
        ));
    }

    proptest::proptest! {
        /// Whatever the bytes, decoding answers (Ok or an error) and never panics.
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(proptest::arbitrary::any::<u8>(), 0..2048), gzip in proptest::arbitrary::any::<bool>()) {
            for protocol in [Protocol::HttpProtobuf, Protocol::HttpJson] {
                let _ = decode_http(&bytes, gzip, protocol, 64 * 1024);
            }
        }

        /// Corrupting bytes of a valid request (protobuf and JSON) never panics either.
        #[test]
        fn decoding_corrupted_requests_never_panics(flips in proptest::collection::vec((proptest::arbitrary::any::<usize>(), proptest::arbitrary::any::<u8>()), 1..8)) {
            let json = br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"s"}}]},"scopeSpans":[{"scope":{"name":"n"},"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"x","startTimeUnixNano":"1","endTimeUnixNano":2,"attributes":[{"key":"a","value":{"arrayValue":{"values":[{"intValue":"1"},{"kvlistValue":{"values":[{"key":"k","value":{"doubleValue":1.5}}]}}]}}}]}]}]}]}"#;
            let request = crate::json::decode_request(json).expect("valid");
            let proto = request.encode_to_vec();
            for (original, protocol) in [(json.to_vec(), Protocol::HttpJson), (proto, Protocol::HttpProtobuf)] {
                let mut bytes = original;
                for (at, value) in &flips {
                    let len = bytes.len();
                    bytes[at % len] = *value;
                }
                let _ = decode_http(&bytes, false, protocol, 64 * 1024);
            }
        }
    }
}
