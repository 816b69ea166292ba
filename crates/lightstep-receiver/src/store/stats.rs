//! The receiver's counters: atomics bumped by the handlers and the store, read as one
//! [`ReceiverStats`] snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of everything the receiver did, since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReceiverStats {
    /// Export requests that reached a handler (every outcome).
    pub requests: u64,
    /// Spans accepted into the store.
    pub spans_accepted: u64,
    /// Spans refused because their trace or span id was invalid (reported as partial success).
    pub spans_rejected_invalid: u64,
    /// Spans refused because the store was full under
    /// [`WhenFull::RejectNew`](crate::WhenFull::RejectNew) (reported as partial success).
    pub spans_rejected_full: u64,
    /// Stored spans dropped to make room under
    /// [`WhenFull::EvictOldest`](crate::WhenFull::EvictOldest).
    pub spans_evicted: u64,
    /// Requests refused for a missing or wrong access token. Counted only: no
    /// [`RequestRecord`](crate::RequestRecord) is kept for them.
    pub requests_unauthenticated: u64,
    /// Requests refused because they exceeded the size limit.
    pub requests_too_large: u64,
    /// Requests refused because the body could not be decoded (or had an unsupported
    /// content type or encoding).
    pub requests_malformed: u64,
    /// Requests answered with a simulated failure ([`Faults`](crate::Faults)).
    pub requests_failed_by_fault: u64,
    /// Requests answered `UNAVAILABLE` / `503` because the in-flight byte budget
    /// ([`ReceiverBuilder::with_max_in_flight_bytes`](crate::ReceiverBuilder::with_max_in_flight_bytes))
    /// had no room for them in time: for their headers at once (such a request is counted, not
    /// recorded), or for their body within two seconds.
    pub requests_throttled: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) requests: AtomicU64,
    pub(crate) spans_accepted: AtomicU64,
    pub(crate) spans_rejected_invalid: AtomicU64,
    pub(crate) spans_rejected_full: AtomicU64,
    pub(crate) spans_evicted: AtomicU64,
    pub(crate) requests_unauthenticated: AtomicU64,
    pub(crate) requests_too_large: AtomicU64,
    pub(crate) requests_malformed: AtomicU64,
    pub(crate) requests_failed_by_fault: AtomicU64,
    pub(crate) requests_throttled: AtomicU64,
}

impl Counters {
    pub(super) fn snapshot(&self) -> ReceiverStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ReceiverStats {
            requests: get(&self.requests),
            spans_accepted: get(&self.spans_accepted),
            spans_rejected_invalid: get(&self.spans_rejected_invalid),
            spans_rejected_full: get(&self.spans_rejected_full),
            spans_evicted: get(&self.spans_evicted),
            requests_unauthenticated: get(&self.requests_unauthenticated),
            requests_too_large: get(&self.requests_too_large),
            requests_malformed: get(&self.requests_malformed),
            requests_failed_by_fault: get(&self.requests_failed_by_fault),
            requests_throttled: get(&self.requests_throttled),
        }
    }
}
