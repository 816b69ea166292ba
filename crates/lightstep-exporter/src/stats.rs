//! Counters of what happened to the spans, readable at run time.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::processor::Delivered;

/// How often a warning about dropped or failed spans may be logged.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// How many cache lines the count of ended spans is spread over.
const ENDED_SHARDS: usize = 16;

/// A counter that many threads add to at once: each thread adds on one of `ENDED_SHARDS`
/// cache lines, so that the application's threads ending spans do not pass one line from core
/// to core on every span. Reading sums the lines.
#[derive(Debug, Default)]
pub(crate) struct ShardedCounter {
    shards: [Padded; ENDED_SHARDS],
}

/// One counter on a cache line of its own (128 bytes: adjacent-line prefetching pairs lines).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded(AtomicU64);

impl ShardedCounter {
    pub(crate) fn add(&self, n: u64) {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % ENDED_SHARDS;
        }
        let shard = SHARD.try_with(|s| *s).unwrap_or(0);
        self.shards[shard].0.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn load(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.0.load(Ordering::Relaxed))
            .sum()
    }
}

#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) ended: ShardedCounter,
    pub(crate) exported: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) failed: AtomicU64,
    /// Set when a flush or shutdown gave up at its deadline.
    pub(crate) deadline_missed: std::sync::atomic::AtomicBool,
    last_error: Mutex<Option<String>>,
    last_drop_warning: Mutex<Option<Instant>>,
    last_failure_warning: Mutex<Option<Instant>>,
    last_rejection_warning: Mutex<Option<Instant>>,
}

fn due(last: &Mutex<Option<Instant>>) -> bool {
    let Ok(mut last) = last.lock() else {
        return false;
    };
    let now = Instant::now();
    if last.is_some_and(|t| now.duration_since(t) < WARN_EVERY) {
        return false;
    }
    *last = Some(now);
    true
}

impl Stats {
    /// A span refused because the queue is full. Logs at most once every ten seconds.
    pub(crate) fn record_drop(&self) {
        let total = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        if due(&self.last_drop_warning) {
            tracing::warn!(
                dropped_total = total,
                "lightstep-rs: spans dropped because the export queue is full; raise OTEL_BSP_MAX_QUEUE_SIZE or check the backend"
            );
        }
    }

    /// Spans whose export failed for good (after the exporter's own retries).
    pub(crate) fn fail(&self, spans: u64, reason: &str) {
        let total = self.failed.fetch_add(spans, Ordering::Relaxed) + spans;
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(reason.to_owned());
        }
        if due(&self.last_failure_warning) {
            tracing::warn!(
                failed_total = total,
                error = reason,
                "lightstep-rs: span export failed"
            );
        }
    }

    /// An export the backend accepted, maybe partly: the spans it rejected (OTLP partial
    /// success) count as failed, never as exported. The backend's message is logged at most
    /// once every ten seconds.
    pub(crate) fn delivered(&self, spans: u64, answer: &Delivered) {
        let rejected = answer.rejected.min(spans);
        self.exported.fetch_add(spans - rejected, Ordering::Relaxed);
        let message = answer.message.as_deref().unwrap_or("no message");
        if rejected > 0 {
            let total = self.failed.fetch_add(rejected, Ordering::Relaxed) + rejected;
            if let Ok(mut last) = self.last_error.lock() {
                *last = Some(format!(
                    "the backend rejected {rejected} of {spans} spans: {message}"
                ));
            }
            if due(&self.last_rejection_warning) {
                tracing::warn!(
                    rejected,
                    sent = spans,
                    failed_total = total,
                    backend_message = message,
                    "lightstep-rs: the backend rejected spans (OTLP partial success)"
                );
            }
        } else if answer.message.is_some() && due(&self.last_rejection_warning) {
            // A partial success that rejects nothing carries a warning from the backend.
            tracing::warn!(
                backend_message = message,
                "lightstep-rs: the backend accepted the spans with a warning"
            );
        }
    }

    pub(crate) fn snapshot(&self) -> ExportStats {
        ExportStats {
            ended: self.ended.load(),
            exported: self.exported.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            last_error: self.last_error.lock().ok().and_then(|e| e.clone()),
        }
    }
}

/// What has happened to the sampled spans so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportStats {
    /// Sampled spans that ended and were handed to the pipeline.
    pub ended: u64,
    /// Spans the backend accepted.
    pub exported: u64,
    /// Spans refused because the queue was full.
    pub dropped: u64,
    /// Spans whose export failed (backend down, refused, too slow) or that were still queued
    /// when shutdown's deadline passed.
    pub failed: u64,
    /// The most recent export failure.
    pub last_error: Option<String>,
}

impl ExportStats {
    /// Spans still queued or in flight.
    pub fn pending(&self) -> u64 {
        self.ended
            .saturating_sub(self.exported + self.dropped + self.failed)
    }

    /// Spans that did not reach the backend (dropped, failed or still pending).
    pub fn undelivered(&self) -> u64 {
        self.ended.saturating_sub(self.exported)
    }
}
