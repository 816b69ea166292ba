//! Counters of what happened to the spans, readable at run time, and the reports of losses as
//! they happen: a `tracing` warning, plus the application's hook
//! ([`PipelineBuilder::on_export_error`](crate::PipelineBuilder::on_export_error))
//! or, with neither a hook nor a `tracing` subscriber to see the warning, one line on stderr, so
//! that a failing export never goes unseen. See `docs/adr/014-one-way-in.md`.

use std::fmt;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
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

/// The application's hook for export failures.
pub(crate) type FailureHook = Arc<dyn Fn(&ExportFailure) + Send + Sync>;

/// Where losses are reported besides `tracing`: the hook, or stderr when there is no hook.
#[derive(Default)]
pub(crate) struct Report(Option<FailureHook>);

impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() { "hook" } else { "stderr" })
    }
}

impl Report {
    pub(crate) fn new(hook: Option<FailureHook>) -> Self {
        Self(hook)
    }

    fn send(&self, failure: &ExportFailure) {
        match &self.0 {
            Some(hook) => {
                // It runs on an export thread (or, for a full queue, the thread ending the
                // span): a panic in it must not take the pipeline down with it.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(failure)));
            }
            // With no subscriber where the warning was logged (on the pipeline's own threads,
            // only a global one can be), it went nowhere: say it on stderr instead. A closed
            // stderr is not an error worth panicking over.
            None if no_subscriber() => {
                let _ = writeln!(std::io::stderr().lock(), "lightstep-rs: {failure}");
            }
            None => {}
        }
    }
}

/// Whether `tracing` events logged on this thread reach no subscriber at all.
fn no_subscriber() -> bool {
    tracing::dispatcher::get_default(|d| d.is::<tracing::subscriber::NoSubscriber>())
}

#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) ended: ShardedCounter,
    pub(crate) exported: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) failed: AtomicU64,
    /// Spans whose export by an exporter added in code failed: apart from the OTLP counters.
    pub(crate) added_exporter_failed: AtomicU64,
    /// Spans an exporter added in code never got: apart from the OTLP counters.
    pub(crate) added_exporter_dropped: AtomicU64,
    /// When the shutdown under way must end, for the processors added in code.
    shutdown_deadline: Mutex<Option<Instant>>,
    /// Set when the shutdown gave up at its deadline (a flush's is kept for the flush: see
    /// `pipeline::pipeline_flush`).
    pub(crate) deadline_missed: std::sync::atomic::AtomicBool,
    /// Set when processors added in code were among those that missed the shutdown's deadline.
    pub(crate) added_deadline_missed: std::sync::atomic::AtomicBool,
    last_error: Mutex<Option<String>>,
    last_drop_warning: WarnedAt,
    last_failure_warning: WarnedAt,
    last_rejection_warning: WarnedAt,
    last_added_exporter_warning: WarnedAt,
    last_added_exporter_drop_warning: WarnedAt,
    report: Report,
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
    /// Counters that report losses to `report` besides `tracing`.
    pub(crate) fn new(report: Report) -> Self {
        Self {
            report,
            ..Self::default()
        }
    }

    /// A span refused because the queue is full. Logs at most once every ten seconds.
    pub(crate) fn record_drop(&self) {
        let total = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        if due(&self.last_drop_warning) {
            tracing::warn!(
                dropped_total = total,
                "lightstep-rs: spans dropped because the export queue is full; raise OTEL_BSP_MAX_QUEUE_SIZE or check the backend"
            );
            self.report.send(&ExportFailure {
                kind: FailureKind::Dropped,
                spans: 1,
                total,
                message:
                    "the export queue is full; raise OTEL_BSP_MAX_QUEUE_SIZE or check the backend"
                        .to_owned(),
            });
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
            self.report.send(&ExportFailure {
                kind: FailureKind::Failed,
                spans,
                total,
                message: reason.to_owned(),
            });
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
            self.report.send(&ExportFailure {
                kind: FailureKind::Retrying { dropped },
                spans,
                total: dropped_total,
                message: reason.to_owned(),
            });
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
                self.report.send(&ExportFailure {
                    kind: FailureKind::Rejected,
                    spans: rejected,
                    total,
                    message: message.to_owned(),
                });
            }
        } else if answer.message.is_some() && due(&self.last_rejection_warning) {
            // A partial success that rejects nothing carries a warning from the backend.
            tracing::warn!(
                backend_message = message,
                "lightstep-rs: the backend accepted the spans with a warning"
            );
        }
    }

    /// Spans whose export by an exporter added in code
    /// ([`PipelineBuilder::with_span_exporter`](crate::PipelineBuilder::with_span_exporter))
    /// failed with `reason` (already cleaned). Counted apart from the OTLP counters, which say
    /// what reached the backend; logged and reported at most once every ten seconds. See
    /// `docs/adr/016-added-exporters-fail-apart.md`.
    pub(crate) fn added_exporter_failed(&self, spans: u64, reason: &str) {
        self.added_exporter_lost(
            FailureKind::AddedExporterFailed,
            &self.added_exporter_failed,
            &self.last_added_exporter_warning,
            spans,
            reason,
        );
    }

    /// Spans an exporter added in code never got (its queue was full, or they were still
    /// queued when it shut down), for `reason`. Counted and reported as failed exports are.
    pub(crate) fn added_exporter_dropped(&self, spans: u64, reason: &str) {
        self.added_exporter_lost(
            FailureKind::AddedExporterDropped,
            &self.added_exporter_dropped,
            &self.last_added_exporter_drop_warning,
            spans,
            reason,
        );
    }

    /// Counts `spans` an exporter added in code lost (`kind`) in `counter`; logs and reports
    /// them when `warned` was last more than ten seconds ago (each kind its own clock).
    fn added_exporter_lost(
        &self,
        kind: FailureKind,
        counter: &AtomicU64,
        warned: &WarnedAt,
        spans: u64,
        reason: &str,
    ) {
        let total = counter.fetch_add(spans, Ordering::Relaxed) + spans;
        if due(warned) {
            let what = if kind == FailureKind::AddedExporterFailed {
                "an exporter added in code failed to export spans"
            } else {
                "spans were dropped before an exporter added in code got them"
            };
            tracing::warn!(spans, total, reason, "lightstep-rs: {what}");
            self.report.send(&ExportFailure {
                kind,
                spans,
                total,
                message: reason.to_owned(),
            });
        }
    }

    /// A shutdown of the pipeline starts now, and must end within `timeout`.
    pub(crate) fn start_shutdown(&self, timeout: Duration) {
        if let Ok(mut deadline) = self.shutdown_deadline.lock() {
            *deadline = Some(Instant::now() + timeout);
        }
    }

    /// When the shutdown under way must end, if the pipeline started one.
    pub(crate) fn shutdown_deadline(&self) -> Option<Instant> {
        self.shutdown_deadline.lock().ok().and_then(|d| *d)
    }

    /// The guard's shutdown on drop failed with `error`, which has no caller to go to.
    pub(crate) fn shut_down_on_drop(&self, error: &str) {
        let undelivered = self.snapshot().undelivered();
        self.report.send(&ExportFailure {
            kind: FailureKind::ShutDownOnDrop,
            spans: undelivered,
            total: undelivered,
            message: error.to_owned(),
        });
    }

    pub(crate) fn snapshot(&self) -> ExportStats {
        ExportStats {
            ended: self.ended.load(),
            exported: self.exported.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            added_exporter_failed: self.added_exporter_failed.load(Ordering::Relaxed),
            added_exporter_dropped: self.added_exporter_dropped.load(Ordering::Relaxed),
            last_error: self.last_error.lock().ok().and_then(|e| e.clone()),
        }
    }
}

/// Spans that did not reach the backend, as the pipeline reports them to the hook given to
/// [`PipelineBuilder::on_export_error`](crate::PipelineBuilder::on_export_error)
/// (or on stderr, with no hook and no global `tracing` subscriber). At most one report of each
/// kind every ten seconds (drops; failures and retries; rejections), as the `tracing` warnings:
/// `total` counts those in between too.
///
/// Never holds the access token or a header value: `message` is what the transport or the
/// backend said, with every configured header value replaced by `[REDACTED]` and control
/// characters by spaces.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportFailure {
    /// What happened to the spans.
    pub kind: FailureKind,
    /// Spans this report is about.
    pub spans: u64,
    /// Spans lost this way since the pipeline started: dropped for [`FailureKind::Dropped`]
    /// and [`FailureKind::Retrying`], failed for [`FailureKind::Failed`] and
    /// [`FailureKind::Rejected`], added_exporter_failed for
    /// [`FailureKind::AddedExporterFailed`], added_exporter_dropped for
    /// [`FailureKind::AddedExporterDropped`] (the counters of [`ExportStats`]).
    pub total: u64,
    /// Why, in one line.
    pub message: String,
}

/// What happened to the spans of an [`ExportFailure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// A span ended while the queue was full, and was dropped.
    Dropped,
    /// An export failed for a reason retrying cannot fix (refused as invalid, unauthenticated,
    /// too large), or its spans were still queued or in flight at shutdown's deadline: the
    /// spans are lost.
    Failed,
    /// An export failed for a transient reason after its retries: its spans went back to the
    /// queue to be sent again, except `dropped` of them that found it full.
    Retrying {
        /// Spans that found the queue full, and were dropped.
        dropped: u64,
    },
    /// The backend accepted the export but rejected some of its spans (OTLP partial success).
    Rejected,
    /// The pipeline shut down when its guard was dropped, and `spans` were not delivered: the
    /// error `shutdown` would have returned, which nobody could receive. Reported every time.
    ShutDownOnDrop,
    /// An exporter added in code
    /// ([`PipelineBuilder::with_span_exporter`](crate::PipelineBuilder::with_span_exporter))
    /// returned an error for a batch of `spans`. It says nothing of OTLP delivery: the OTLP
    /// processor has its own copy of every span.
    AddedExporterFailed,
    /// Spans never reached an exporter added in code: its queue was full when they ended, or
    /// they were still queued when it shut down. Nothing to do with OTLP delivery either.
    AddedExporterDropped,
}

impl fmt::Display for ExportFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            kind,
            spans,
            total,
            message,
        } = self;
        match kind {
            FailureKind::Dropped => write!(f, "spans dropped ({total} in all so far): {message}"),
            FailureKind::Failed => write!(
                f,
                "export of {spans} spans failed ({total} failed in all so far): {message}"
            ),
            FailureKind::Retrying { dropped } => write!(
                f,
                "export of {spans} spans failed, to be sent again ({dropped} dropped, {total} dropped in all so far): {message}"
            ),
            FailureKind::Rejected => write!(
                f,
                "the backend rejected {spans} spans ({total} failed in all so far): {message}"
            ),
            FailureKind::ShutDownOnDrop => write!(f, "shutdown on drop: {message}"),
            FailureKind::AddedExporterFailed => write!(
                f,
                "an exporter added in code failed to export {spans} spans ({total} in all so far): {message}"
            ),
            FailureKind::AddedExporterDropped => write!(
                f,
                "{spans} spans dropped before an exporter added in code got them ({total} in all so far): {message}"
            ),
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
    /// Spans that an exporter added in code
    /// ([`PipelineBuilder::with_span_exporter`](crate::PipelineBuilder::with_span_exporter))
    /// failed to export (its `export` returned an error), over all added exporters. Apart from
    /// the counters above, which describe OTLP delivery: the OTLP processor has its own copy
    /// of every span, so these are not in [`ExportStats::undelivered`], and they do not make
    /// `shutdown` fail.
    pub added_exporter_failed: u64,
    /// Spans that an exporter added in code never got: they found its batch processor's queue
    /// full (it holds `batch.max_queue_size` spans), or were still queued when it shut down.
    /// Apart from the OTLP counters, like [`ExportStats::added_exporter_failed`].
    pub added_exporter_dropped: u64,
    /// The most recent export failure (of OTLP delivery).
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
    fn the_hook_hears_at_the_warnings_cadence_with_running_totals_and_may_panic() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let hook = {
            let seen = Arc::clone(&seen);
            move |failure: &ExportFailure| {
                seen.lock().unwrap().push(failure.clone());
                panic!("a faulty hook");
            }
        };
        let stats = Stats::new(Report::new(Some(Arc::new(hook))));
        stats.fail(3, "refused");
        stats.fail(2, "refused again");
        stats.requeue(4, 1, "unavailable");
        for _ in 0..5 {
            stats.record_drop();
        }
        let seen = seen.lock().unwrap().clone();
        let expected = [
            (FailureKind::Failed, 3, 3, "refused"),
            (
                FailureKind::Dropped,
                1,
                2,
                "the export queue is full; raise OTEL_BSP_MAX_QUEUE_SIZE or check the backend",
            ),
        ];
        assert_eq!(seen.len(), expected.len(), "{seen:?}");
        for (failure, (kind, spans, total, message)) in seen.iter().zip(expected) {
            assert_eq!(
                (
                    failure.kind,
                    failure.spans,
                    failure.total,
                    failure.message.as_str()
                ),
                (kind, spans, total, message)
            );
        }
        // What came in between is counted all the same.
        let snapshot = stats.snapshot();
        assert_eq!((snapshot.failed, snapshot.dropped), (5, 6));
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
