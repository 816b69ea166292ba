//! Counters of what happened to the spans, readable at run time.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
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
    last_drop_warning: WarnedAt,
    last_failure_warning: WarnedAt,
    last_rejection_warning: WarnedAt,
}

/// When a warning was last logged: milliseconds since the process's first look at the clock,
/// plus one (0: never). An atomic, not a lock: a full queue calls [`due`] for every span it
/// drops, from every application thread at once.
#[derive(Debug, Default)]
struct WarnedAt(AtomicU64);

/// Whether a warning may be logged now (at most once every `WARN_EVERY`); claims it if so.
fn due(last: &WarnedAt) -> bool {
    static START: OnceLock<Instant> = OnceLock::new();
    let now = START.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1;
    let previous = last.0.load(Ordering::Relaxed);
    if previous != 0 && now.saturating_sub(previous) < WARN_EVERY.as_millis() as u64 {
        return false;
    }
    // One of the threads that saw the same `previous` logs.
    last.0
        .compare_exchange(previous, now, Ordering::Relaxed, Ordering::Relaxed)
        .is_ok()
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

    /// Spans whose export failed for good: for a reason retrying cannot fix, or left over at
    /// shutdown.
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

    /// Spans of an export that failed for a transient reason, back in the queue to be sent
    /// again; `dropped` of them found it full and are counted as dropped. The reason becomes
    /// `last_error`; a warning is logged at most once every ten seconds.
    pub(crate) fn requeue(&self, spans: u64, dropped: u64, reason: &str) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(reason.to_owned());
        }
        let dropped_total = self.dropped.fetch_add(dropped, Ordering::Relaxed) + dropped;
        if due(&self.last_failure_warning) {
            tracing::warn!(
                spans,
                requeued = spans - dropped,
                dropped,
                dropped_total,
                error = reason,
                "lightstep-rs: span export failed; its spans are queued to be sent again (those that did not fit are dropped)"
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
    /// Spans refused because the queue was full: when they ended, or when their export failed
    /// for a transient reason and they found no room to go back to the queue.
    pub dropped: u64,
    /// Spans whose export failed for a reason retrying cannot fix (a request refused as
    /// invalid, unauthenticated, too large), or that were still queued or in flight when
    /// shutdown's deadline passed.
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    /// Counts the warnings logged through `tracing`.
    struct Warnings(Arc<AtomicUsize>);

    impl tracing::Subscriber for Warnings {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            if *event.metadata().level() == tracing::Level::WARN {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    #[test]
    fn drops_are_all_counted_and_warned_about_once_in_ten_seconds() {
        let stats = Arc::new(Stats::default());
        let warnings = Arc::new(AtomicUsize::new(0));
        std::thread::scope(|s| {
            for _ in 0..4 {
                let (stats, warnings) = (Arc::clone(&stats), Arc::clone(&warnings));
                s.spawn(move || {
                    tracing::subscriber::with_default(Warnings(warnings), || {
                        for _ in 0..10_000 {
                            stats.record_drop();
                        }
                    });
                });
            }
        });
        assert_eq!(stats.snapshot().dropped, 40_000);
        assert_eq!(warnings.load(Ordering::Relaxed), 1);
    }
}
