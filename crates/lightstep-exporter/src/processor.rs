//! The delivery processor: a bounded queue, a dedicated export thread, exact counters, and flush
//! and shutdown that keep their deadline.
//!
//! It replaces the SDK's `BatchSpanProcessor`, whose drops are one log line, whose shutdown
//! returns `Ok` after a failed export, and which loses spans when shut down from an async worker
//! (see `docs/exporter.md`). Ending a span never blocks: it is a send into a bounded queue, and
//! a full queue is counted as a drop.
//!
//! A batch whose export fails for a transient reason (after the transport's own retries within
//! the export timeout) goes back into the same queue, span by span, while the queue has room:
//! an outage the queue can hold loses nothing, and what does not fit is dropped and counted.
//! See `docs/adr/007-outages-keep-spans-queued.md`.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use opentelemetry::Context;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};

use crate::stats::Stats;

/// The largest queue allocated up front (about 360 bytes a span: 47 MB at this size).
pub(crate) const PREALLOCATED_QUEUE: usize = 131_072;

/// How long shutdown waits past its deadline for the export thread to finish counting what it
/// could not deliver (microseconds of work; this is only a bound).
const COUNTING_GRACE: Duration = Duration::from_millis(100);

/// How long past its export timeout the processor still waits for an export before giving it
/// up itself. The transports end every export by its timeout, with the backend's answer as the
/// reason (`UNAVAILABLE`, `503`); giving up at the same instant would race them and replace
/// that reason with "did not finish". This is only a backstop.
const BACKSTOP_GRACE: Duration = Duration::from_millis(100);

/// What a backend answered to an export it accepted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Delivered {
    /// Spans the backend refused (OTLP partial success); the rest were accepted.
    pub(crate) rejected: u64,
    /// The backend's explanation, cleaned of secrets.
    pub(crate) message: Option<String>,
}

/// An export that did not deliver its batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// Why, fit to log (cleaned of secrets).
    pub(crate) reason: String,
    /// Whether the OTLP specification calls the cause transient (retrying may succeed): the
    /// batch then goes back to the queue instead of being counted as failed.
    pub(crate) transient: bool,
}

impl Failure {
    /// A failure that retrying may fix (the backend unavailable, throttling, a timeout).
    pub(crate) fn transient(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            transient: true,
        }
    }

    /// A failure that retrying cannot fix (the request refused as invalid or unauthorized).
    pub(crate) fn permanent(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            transient: false,
        }
    }
}

/// The outcome of one export: accepted (maybe partly), or failed.
pub(crate) type ExportResult = Result<Delivered, Failure>;

/// One export: encodes a batch, sends it, and reports the outcome on the returned channel.
pub(crate) trait Transport: Send + 'static {
    /// Starts exporting the spans of `batch`. The processor keeps the spans until the outcome,
    /// to queue them again if the export fails for a transient reason.
    fn start(&mut self, batch: &[SpanData]) -> Receiver<ExportResult>;
    /// Why the most recent failed attempt of an export failed, if the last attempt failed: the
    /// reason given when the processor gives up an export that is still retrying.
    fn last_attempt_error(&self) -> Option<String> {
        None
    }
    /// Ends the transport; called once, on the export thread, after the last export.
    fn close(self: Box<Self>);
}

/// Batch settings the export thread follows.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) max_queue_size: usize,
    pub(crate) max_export_batch_size: usize,
    pub(crate) scheduled_delay: Duration,
    pub(crate) export_timeout: Duration,
    pub(crate) max_concurrent_exports: usize,
    pub(crate) attribute_value_length: Option<u32>,
}

enum Control {
    Flush(Instant, Sender<()>),
    Shutdown(Instant, Sender<()>),
}

/// The span processor installed in the tracer provider.
pub(crate) struct DeliveryProcessor {
    spans: Sender<SpanData>,
    /// The channel's other end, to take back spans sent after the export thread's last look
    /// at it (it also keeps the channel open, so such a send succeeds and is seen here).
    spans_back: Receiver<SpanData>,
    /// Set by the export thread at shutdown before it takes the last queued spans.
    closed: Arc<AtomicBool>,
    /// Set by the export thread when it takes the shutdown request: past the deadline it
    /// waits on nothing more, it only counts what it could not deliver and answers.
    shutting_down: Arc<AtomicBool>,
    /// Spans in the channel now, when the channel is the growing one (the queue limit is
    /// enforced on this count); `None` for the ring, whose capacity is the limit.
    queued: Option<Arc<AtomicUsize>>,
    max_queue_size: usize,
    control: Sender<Control>,
    stats: Arc<Stats>,
    worker: Mutex<Option<std::thread::JoinHandle<()>>>,
    attribute_value_length: Option<u32>,
    shut_down: AtomicBool,
    default_timeout: Duration,
}

impl fmt::Debug for DeliveryProcessor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveryProcessor")
            .field("stats", &self.stats.snapshot())
            .finish_non_exhaustive()
    }
}

impl DeliveryProcessor {
    pub(crate) fn start(
        settings: Settings,
        transport: Box<dyn Transport>,
        stats: Arc<Stats>,
        default_timeout: Duration,
    ) -> std::io::Result<Self> {
        // A full queue is a counted drop, never a wait. Up to `PREALLOCATED_QUEUE` spans the
        // queue is a ring allocated once, its capacity the limit, as the SDK's own
        // queue is: a growing channel allocates and zeroes a block per 31 spans, which the
        // kernel faults in again after every burst (a tenth of the application's core in the
        // delivery bench, measured in docs/adr/002). Larger limits get the growing channel, so that
        // the limit does not cost its full memory at start.
        //
        // The ring needs no count of its own: it refuses a span when full. Ending a span is
        // then one atomic operation shared by the application's threads (the ring's), not
        // three.
        let ring = (1..=PREALLOCATED_QUEUE).contains(&settings.max_queue_size);
        let (spans, span_rx) = if ring {
            crossbeam_channel::bounded(settings.max_queue_size)
        } else {
            crossbeam_channel::unbounded()
        };
        let queued = (!ring).then(|| Arc::new(AtomicUsize::new(0)));
        let max_queue_size = settings.max_queue_size;
        let (control, control_rx) = crossbeam_channel::unbounded();
        let worker_stats = Arc::clone(&stats);
        let worker_queued = queued.clone();
        let closed = Arc::new(AtomicBool::new(false));
        let worker_closed = Arc::clone(&closed);
        let shutting_down = Arc::new(AtomicBool::new(false));
        let worker_shutting_down = Arc::clone(&shutting_down);
        let spans_back = span_rx.clone();
        let requeue = spans.clone();
        let attribute_value_length = settings.attribute_value_length;
        let worker = std::thread::Builder::new()
            .name("lightstep-export".into())
            .spawn(move || {
                // Whatever the export does on this thread (encoding, the transport's own
                // `tracing` spans) is not telemetry of the application: never exported.
                let _suppressed = Context::enter_telemetry_suppressed_scope();
                Worker {
                    settings,
                    queued: worker_queued,
                    spans: span_rx,
                    requeue,
                    requeue_transient: true,
                    requeued: false,
                    spare: Vec::new(),
                    control: control_rx,
                    transport,
                    stats: worker_stats,
                    closed: worker_closed,
                    shutting_down: worker_shutting_down,
                    in_flight: Vec::new(),
                    deferred: None,
                    orphan: false,
                }
                .run();
            })?;
        Ok(Self {
            spans,
            spans_back,
            closed,
            shutting_down,
            queued,
            max_queue_size,
            control,
            stats,
            worker: Mutex::new(Some(worker)),
            attribute_value_length,
            shut_down: AtomicBool::new(false),
            default_timeout,
        })
    }

    /// Asks the export thread to do `make(deadline, reply)` and waits for it, at most until the
    /// deadline. Blocks the calling thread: async callers go through `spawn_blocking`.
    fn request(
        &self,
        timeout: Duration,
        make: impl FnOnce(Instant, Sender<()>) -> Control,
    ) -> OTelSdkResult {
        let deadline = Instant::now() + timeout;
        let (reply, done) = crossbeam_channel::bounded(1);
        let control = make(deadline, reply);
        let shutdown = matches!(control, Control::Shutdown(..));
        if self.control.send(control).is_err() {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        let answered = match done.recv_deadline(deadline) {
            Ok(()) => true,
            // The export thread has taken the shutdown and stopped waiting on exports at the
            // same deadline: all it has left is counting what it could not deliver, which does
            // not block. Wait for that, so that the counters are final when shutdown returns;
            // the grace only guards against a thread that is somehow stuck (never a hang).
            Err(RecvTimeoutError::Timeout)
                if shutdown && self.shutting_down.load(Ordering::SeqCst) =>
            {
                done.recv_timeout(COUNTING_GRACE).is_ok()
            }
            Err(_) => false,
        };
        if answered {
            Ok(())
        } else {
            if shutdown {
                self.stats.deadline_missed.store(true, Ordering::Release);
            } else {
                // Each flush has its own deadline: only the pipeline's flush on this thread
                // reports this one as its deadline error.
                crate::pipeline::flush_missed(false);
            }
            Err(OTelSdkError::Timeout(timeout))
        }
    }
}

impl SpanProcessor for DeliveryProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, mut span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        self.stats.ended.add(1);
        if let Some(limit) = self.attribute_value_length {
            truncate_values(&mut span, limit as usize);
        }
        if !enqueue(&self.spans, &self.queued, self.max_queue_size, span) {
            self.stats.record_drop();
        }
        // Shut down: the export thread may have taken its last spans before this one arrived.
        // Take back whatever is left (each span is received once, here or there) and count it,
        // never silently.
        if self.closed.load(Ordering::SeqCst) {
            while self.spans_back.try_recv().is_ok() {
                taken(&self.queued, 1);
                self.stats.record_drop();
            }
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.request(self.default_timeout, Control::Flush)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        if self.shut_down.swap(true, Ordering::AcqRel) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        let started = Instant::now();
        let result = self.request(timeout, Control::Shutdown);
        // The thread has answered and only drops its transport now: bounded, but not waited
        // for once the deadline has passed (exports still hanging hold the transport up to
        // 200 ms more); it then ends on its own.
        if result.is_ok()
            && started.elapsed() < timeout
            && let Some(worker) = self.worker.lock().ok().and_then(|mut w| w.take())
        {
            let _ = worker.join();
        }
        result
    }
}

/// Puts `span` in the queue if it has room (the limit being the ring's capacity, or `queued`
/// for the growing channel); false when it is full.
fn enqueue(
    spans: &Sender<SpanData>,
    queued: &Option<Arc<AtomicUsize>>,
    max_queue_size: usize,
    span: SpanData,
) -> bool {
    if let Some(queued) = queued
        && queued.fetch_add(1, Ordering::AcqRel) >= max_queue_size
    {
        queued.fetch_sub(1, Ordering::AcqRel);
        return false;
    }
    // Full only for the ring (the growing channel's length is kept within the limit by
    // `queued`); disconnected only once the export thread is gone.
    if spans.try_send(span).is_err() {
        taken(queued, 1);
        return false;
    }
    true
}

/// Counts `n` spans out of the growing channel (nothing to count for the ring).
fn taken(queued: &Option<Arc<AtomicUsize>>, n: usize) {
    if let Some(queued) = queued {
        queued.fetch_sub(n, Ordering::AcqRel);
    }
}

/// Truncates string attribute values to `limit` characters (`OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`,
/// which the SDK does not apply itself).
fn truncate_values(span: &mut SpanData, limit: usize) {
    let events = span
        .events
        .events
        .iter_mut()
        .flat_map(|e| e.attributes.iter_mut());
    let links = span
        .links
        .links
        .iter_mut()
        .flat_map(|l| l.attributes.iter_mut());
    for kv in span.attributes.iter_mut().chain(events).chain(links) {
        truncate_value(&mut kv.value, limit);
    }
}

fn truncate_value(value: &mut opentelemetry::Value, limit: usize) {
    use opentelemetry::{Array, StringValue, Value};
    let cut = |s: &StringValue| -> Option<StringValue> {
        (s.as_str().chars().count() > limit)
            .then(|| StringValue::from(s.as_str().chars().take(limit).collect::<String>()))
    };
    match value {
        Value::String(s) => {
            if let Some(short) = cut(s) {
                *s = short;
            }
        }
        Value::Array(Array::String(items)) => {
            for s in items.iter_mut() {
                if let Some(short) = cut(s) {
                    *s = short;
                }
            }
        }
        _ => {}
    }
}

struct InFlight {
    /// Kept until the outcome: delivered, they are dropped; failed for a transient reason,
    /// they go back to the queue.
    spans: Vec<SpanData>,
    result: Receiver<ExportResult>,
    /// When the processor stops waiting for it (its start plus the export timeout, plus
    /// `BACKSTOP_GRACE`), however often the wait is interrupted by a flush or a shutdown.
    give_up_at: Instant,
}

struct Worker {
    settings: Settings,
    queued: Option<Arc<AtomicUsize>>,
    spans: Receiver<SpanData>,
    /// The queue's sending side, to queue again the spans of an export that failed for a
    /// transient reason. (Holding it keeps the channel open: a processor dropped without a
    /// shutdown is noticed on the control channel.)
    requeue: Sender<SpanData>,
    /// Whether transient failures go back to the queue; off once shutdown's deadline has
    /// passed, when what is left is counted as failed.
    requeue_transient: bool,
    /// Set when spans went back to the queue, for a flush or shutdown to send them again.
    requeued: bool,
    /// Emptied batch vectors, reused so that a steady stream does not allocate one per export.
    spare: Vec<Vec<SpanData>>,
    control: Receiver<Control>,
    transport: Box<dyn Transport>,
    stats: Arc<Stats>,
    in_flight: Vec<InFlight>,
    closed: Arc<AtomicBool>,
    shutting_down: Arc<AtomicBool>,
    /// A flush or shutdown that arrived while a full batch waited for an export slot: it is
    /// taken before anything else (the batch is then sent under its deadline).
    deferred: Option<Control>,
    /// Set when the control channel was found closed while waiting for an export slot: the
    /// processor was dropped without a shutdown.
    orphan: bool,
}

impl Worker {
    fn run(mut self) {
        let mut batch: Vec<SpanData> =
            Vec::with_capacity(self.settings.max_export_batch_size.min(4096));
        let mut next_send = Instant::now() + self.settings.scheduled_delay;
        loop {
            self.reap();
            if let Some(request) = self.deferred.take() {
                if self.control(request, &mut batch) {
                    break;
                }
                continue;
            }
            if self.orphan {
                self.orphaned(&mut batch);
                break;
            }
            // A full batch still waiting for an export slot (its wait was interrupted by a
            // flush) goes out before any more spans are taken: a batch never grows past its
            // size.
            if batch.len() >= self.settings.max_export_batch_size {
                self.send(&mut batch, None);
                next_send = Instant::now() + self.settings.scheduled_delay;
                continue;
            }
            // The oldest export's outcome wakes the thread too: a transient failure goes back
            // to the queue at once, not at the next scheduled send. (Exports mostly end in
            // order; any other that has ended is counted by `reap` on the way.)
            let oldest = self
                .in_flight
                .first()
                .map_or_else(crossbeam_channel::never, |export| export.result.clone());
            // Biased towards the control channel: under a steady stream of spans a flush or a
            // shutdown is still taken at once, not after more batches picked at random.
            crossbeam_channel::select_biased! {
                recv(self.control) -> request => match request {
                    Ok(request) => {
                        if self.control(request, &mut batch) {
                            break;
                        }
                    }
                    // The processor was dropped without a shutdown.
                    Err(_) => {
                        self.orphaned(&mut batch);
                        break;
                    }
                },
                recv(self.spans) -> span => match span {
                    Ok(span) => {
                        batch.push(span);
                        // Take what else is queued without going through `select!` per span
                        // (its cost per call would dominate at millions of spans per second).
                        let mut count = 1;
                        while batch.len() < self.settings.max_export_batch_size {
                            let Ok(span) = self.spans.try_recv() else { break };
                            batch.push(span);
                            count += 1;
                        }
                        taken(&self.queued, count);
                        if batch.len() >= self.settings.max_export_batch_size {
                            self.send(&mut batch, None);
                            next_send = Instant::now() + self.settings.scheduled_delay;
                        }
                    }
                    // Every sender is gone, which cannot happen while this thread holds
                    // `requeue`; were it to, the processor would be gone.
                    Err(_) => {
                        self.orphaned(&mut batch);
                        break;
                    }
                },
                recv(oldest) -> result => {
                    // Nothing else touched the list since `oldest` was taken from its head.
                    let export = self.in_flight.remove(0);
                    let result = result.map_err(|_| RecvTimeoutError::Disconnected);
                    self.count(export.spans, result);
                },
                // Also woken when an export in flight reaches its timeout, for `reap` to give
                // it up.
                default(self.wake_at(next_send).saturating_duration_since(Instant::now())) => {
                    if Instant::now() >= next_send {
                        if !batch.is_empty() {
                            self.send(&mut batch, None);
                        }
                        next_send = Instant::now() + self.settings.scheduled_delay;
                    }
                }
            }
        }
        self.transport.close();
    }

    /// The earlier of `next_send` and the timeouts of the exports in flight.
    fn wake_at(&self, next_send: Instant) -> Instant {
        self.in_flight
            .iter()
            .map(|export| export.give_up_at)
            .fold(next_send, Instant::min)
    }

    /// The processor was dropped without a shutdown: as a shutdown would, what is queued is
    /// exported within one export timeout, and what could not be is counted as failed.
    fn orphaned(&mut self, batch: &mut Vec<SpanData>) {
        let deadline = Instant::now() + self.settings.export_timeout;
        self.settle(batch, deadline);
        self.give_up(batch, deadline);
    }

    /// Does a flush or a shutdown; true when the thread is to end.
    fn control(&mut self, request: Control, batch: &mut Vec<SpanData>) -> bool {
        match request {
            Control::Flush(deadline, reply) => {
                // Done only when nothing is left, queued, held or in flight; otherwise the
                // reply is dropped, and the flush fails even if its caller wakes up late.
                // Exports still running at the deadline keep running and are counted (or
                // queued again) when they end: a flush gives up waiting, not the spans.
                if self.settle(batch, deadline) {
                    let _ = reply.send(());
                }
                false
            }
            Control::Shutdown(deadline, reply) => {
                self.shutting_down.store(true, Ordering::SeqCst);
                self.settle(batch, deadline);
                self.give_up(batch, deadline);
                let _ = reply.send(());
                true
            }
        }
    }

    /// Sends everything queued and waits for the exports, until `deadline`, again as long as
    /// spans go back to the queue (an export that failed for a transient reason before the
    /// deadline). True when it found the queue empty and nothing is left held or in flight.
    fn settle(&mut self, batch: &mut Vec<SpanData>, deadline: Instant) -> bool {
        loop {
            self.requeued = false;
            let emptied = self.drain(batch, deadline);
            self.wait_until(deadline);
            if !self.requeued {
                return emptied && batch.is_empty() && self.in_flight.is_empty();
            }
            // Spans went back to the queue only after their export's own retries had used its
            // budget: sending them again at once does not spin.
            if Instant::now() >= deadline {
                return false;
            }
        }
    }

    /// At shutdown (or when orphaned), once `settle` is done: transient failures no longer go
    /// back to the queue, exports still running are waited for until `deadline` (each at most
    /// until its own timeout), and every span not delivered by then is counted as failed.
    fn give_up(&mut self, batch: &mut Vec<SpanData>, deadline: Instant) {
        self.requeue_transient = false;
        self.wait_all(deadline);
        // Before the last look at the queue: a span sent after it is taken back by its sender.
        self.closed.store(true, Ordering::SeqCst);
        self.abandon(batch);
    }

    /// Exports everything queued now, in batches, until `deadline`. What a flush cannot reach by
    /// then stays queued and goes out with the next batches; only shutdown gives it up.
    /// Returns whether it found the queue empty (before the deadline).
    fn drain(&mut self, batch: &mut Vec<SpanData>, deadline: Instant) -> bool {
        // The clock is read once a batch, not once a span: taking a batch from the queue takes
        // microseconds, and a flush of a full queue reads it hundreds of thousands of times.
        let mut emptied = false;
        while Instant::now() < deadline {
            let mut count = 0;
            while batch.len() < self.settings.max_export_batch_size {
                let Ok(span) = self.spans.try_recv() else {
                    break;
                };
                batch.push(span);
                count += 1;
            }
            taken(&self.queued, count);
            if batch.len() < self.settings.max_export_batch_size {
                emptied = true;
                break;
            }
            self.send(batch, Some(deadline));
        }
        if Instant::now() < deadline {
            self.send(batch, Some(deadline));
        }
        emptied
    }

    /// Starts exporting `batch`. With a `deadline` (flush, shutdown), an export that cannot
    /// start by then leaves the batch as it is: a flush keeps it for the next batches, shutdown
    /// counts it as abandoned.
    fn send(&mut self, batch: &mut Vec<SpanData>, deadline: Option<Instant>) {
        if batch.is_empty() {
            return;
        }
        // Respect the concurrency limit: wait for the oldest export to finish.
        while self.in_flight.len() >= self.settings.max_concurrent_exports {
            let oldest = self.in_flight.remove(0);
            match deadline {
                // Up to the export's own timeout, but a flush or a shutdown that arrives
                // meanwhile is not kept waiting that long: the batch stays, and the request
                // goes first (it sends the batch under its own deadline). The processor gone
                // (dropped without a shutdown): the batch stays, for the run loop to count.
                None => {
                    let until = oldest.give_up_at;
                    crossbeam_channel::select_biased! {
                        recv(self.control) -> request => {
                            self.in_flight.insert(0, oldest);
                            match request {
                                Ok(request) => self.deferred = Some(request),
                                Err(_) => self.orphan = true,
                            }
                            return;
                        },
                        recv(oldest.result) -> result => {
                            let result = result.map_err(|_| RecvTimeoutError::Disconnected);
                            self.count(oldest.spans, result);
                        },
                        default(until.saturating_duration_since(Instant::now())) => {
                            self.count(oldest.spans, Err(RecvTimeoutError::Timeout));
                        },
                    }
                }
                // Up to the request's deadline, or the export's own timeout if that comes
                // first: then the export is given up (failed) and its slot is free.
                Some(deadline) => {
                    match oldest.result.recv_deadline(deadline.min(oldest.give_up_at)) {
                        Err(RecvTimeoutError::Timeout) if Instant::now() < oldest.give_up_at => {
                            // Still running: it stays in flight, and so does the batch.
                            self.in_flight.insert(0, oldest);
                            return;
                        }
                        result => self.count(oldest.spans, result),
                    }
                }
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return;
        }
        let result = self.transport.start(batch);
        let spare = self
            .spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.settings.max_export_batch_size.min(4096)));
        let spans = std::mem::replace(batch, spare);
        self.in_flight.push(InFlight {
            spans,
            result,
            give_up_at: Instant::now() + self.settings.export_timeout + BACKSTOP_GRACE,
        });
    }

    fn finish(&mut self, export: InFlight, until: Instant) {
        let result = export.result.recv_deadline(until);
        self.count(export.spans, result);
    }

    /// Counts the outcome of an export. A transient failure, or an export given up at its
    /// timeout, puts its spans back in the queue instead (unless shutdown is past its
    /// deadline); the spans that find it full are dropped.
    fn count(&mut self, mut spans: Vec<SpanData>, result: Result<ExportResult, RecvTimeoutError>) {
        let n = spans.len() as u64;
        let failure = match result {
            Ok(Ok(delivered)) => {
                self.stats.delivered(n, &delivered);
                None
            }
            Ok(Err(failure)) => Some(failure),
            Err(RecvTimeoutError::Timeout) => Some(Failure::transient(self.with_last_attempt(
                "the export did not finish before its deadline",
                " (backend slow or not answering)",
            ))),
            Err(RecvTimeoutError::Disconnected) => {
                Some(Failure::permanent("the export task ended without a result"))
            }
        };
        match failure {
            None => {}
            Some(failure) if failure.transient && self.requeue_transient => {
                let mut dropped = 0;
                for span in spans.drain(..) {
                    if !enqueue(
                        &self.requeue,
                        &self.queued,
                        self.settings.max_queue_size,
                        span,
                    ) {
                        dropped += 1;
                    }
                }
                self.stats.requeue(n, dropped, &failure.reason);
                self.requeued = true;
            }
            Some(failure) => self.stats.fail(n, &failure.reason),
        }
        // Dropping the spans here, on the export thread, as before; the vector is kept.
        spans.clear();
        if self.spare.len() <= self.settings.max_concurrent_exports {
            self.spare.push(spans);
        }
    }

    /// Counts the exports that finish by `deadline`; the others stay in flight.
    /// (Each export is given up at its own timeout if that comes first.)
    fn wait_until(&mut self, deadline: Instant) {
        let mut still_running = Vec::new();
        for export in std::mem::take(&mut self.in_flight) {
            match export.result.recv_deadline(deadline.min(export.give_up_at)) {
                Err(RecvTimeoutError::Timeout) if Instant::now() < export.give_up_at => {
                    still_running.push(export);
                }
                result => self.count(export.spans, result),
            }
        }
        self.in_flight = still_running;
    }

    /// Counts finished exports, and those past their timeout as failed, without waiting.
    fn reap(&mut self) {
        if self.in_flight.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut i = 0;
        while i < self.in_flight.len() {
            // `try_recv`, not `is_empty`: an export whose task ended without a result is
            // empty forever, and is counted here too.
            match self.in_flight[i].result.try_recv() {
                Err(crossbeam_channel::TryRecvError::Empty)
                    if now >= self.in_flight[i].give_up_at =>
                {
                    let done = self.in_flight.remove(i);
                    self.count(done.spans, Err(RecvTimeoutError::Timeout));
                }
                Err(crossbeam_channel::TryRecvError::Empty) => i += 1,
                Ok(result) => {
                    let done = self.in_flight.remove(i);
                    self.count(done.spans, Ok(result));
                }
                Err(crossbeam_channel::TryRecvError::Disconnected) => {
                    let done = self.in_flight.remove(i);
                    self.count(done.spans, Err(RecvTimeoutError::Disconnected));
                }
            }
        }
    }

    /// Waits for every export, each at most until `deadline` or its own timeout.
    fn wait_all(&mut self, deadline: Instant) {
        for export in std::mem::take(&mut self.in_flight) {
            let until = deadline.min(export.give_up_at);
            self.finish(export, until);
        }
    }

    /// At shutdown: spans still queued (or held in the batch) after the deadline are not
    /// delivered. Spans that went back to the queue are among them.
    fn abandon(&mut self, batch: &mut Vec<SpanData>) {
        let mut left = batch.len() as u64;
        batch.clear();
        while self.spans.try_recv().is_ok() {
            taken(&self.queued, 1);
            left += 1;
        }
        if left > 0 {
            let reason =
                self.with_last_attempt("shut down before these spans could be exported", "");
            self.stats.fail(left, &reason);
        }
    }

    /// `what` happened to spans whose exports were still retrying, followed by the transport's
    /// most recent failed attempt, which says why (the backend refused, the connection was
    /// refused) better than a deadline does; by `otherwise` when no attempt has failed.
    fn with_last_attempt(&self, what: &str, otherwise: &str) -> String {
        match self.transport.last_attempt_error() {
            Some(last) => format!("{what}; the last attempt: {last}"),
            None => format!("{what}{otherwise}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    use opentelemetry::InstrumentationScope;
    use opentelemetry::trace::{
        SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};

    /// A transport whose exports finish when the test says so.
    struct Manual {
        results: crossbeam_channel::Sender<Sender<ExportResult>>,
        close_delay: Duration,
        /// The size of every batch exported, in order.
        sizes: Arc<Mutex<Vec<usize>>>,
    }

    impl Transport for Manual {
        fn start(&mut self, batch: &[SpanData]) -> Receiver<ExportResult> {
            self.sizes.lock().expect("sizes").push(batch.len());
            let (tx, rx) = crossbeam_channel::bounded(1);
            let _ = self.results.send(tx);
            rx
        }
        fn close(self: Box<Self>) {
            std::thread::sleep(self.close_delay);
        }
    }

    fn sampled_span() -> SpanData {
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(1),
                SpanId::from(1),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: Cow::Borrowed("s"),
            start_time: std::time::SystemTime::now(),
            end_time: std::time::SystemTime::now(),
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: InstrumentationScope::builder("t").build(),
        }
    }

    fn processor(
        max_concurrent_exports: usize,
        close_delay: Duration,
    ) -> (DeliveryProcessor, Receiver<Sender<ExportResult>>) {
        processor_with_queue(100, max_concurrent_exports, close_delay)
    }

    fn processor_with_queue(
        max_queue_size: usize,
        max_concurrent_exports: usize,
        close_delay: Duration,
    ) -> (DeliveryProcessor, Receiver<Sender<ExportResult>>) {
        let settings = Settings {
            max_queue_size,
            max_export_batch_size: 2,
            scheduled_delay: Duration::from_secs(3600),
            export_timeout: Duration::from_secs(30),
            max_concurrent_exports,
            attribute_value_length: None,
        };
        let (processor, exports, _) = processor_with(settings, close_delay);
        (processor, exports)
    }

    /// Settings for the tests that need an export timeout of their own: a queue of 100, batches
    /// of 2, no scheduled sends.
    fn small_batches(export_timeout: Duration, max_concurrent_exports: usize) -> Settings {
        Settings {
            max_queue_size: 100,
            max_export_batch_size: 2,
            scheduled_delay: Duration::from_secs(3600),
            export_timeout,
            max_concurrent_exports,
            attribute_value_length: None,
        }
    }

    /// Answers every export started from now on with success, until the transport is gone.
    fn answer_all(exports: Exports) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            for export in exports.iter() {
                let _ = export.send(Ok(Delivered::default()));
            }
        })
    }

    /// The exports a [`Manual`] transport starts: each one's answer channel.
    type Exports = Receiver<Sender<ExportResult>>;

    /// A processor over a [`Manual`] transport, the exports it starts, and their batch sizes.
    fn processor_with(
        settings: Settings,
        close_delay: Duration,
    ) -> (DeliveryProcessor, Exports, Arc<Mutex<Vec<usize>>>) {
        let (results, exports) = crossbeam_channel::unbounded();
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let processor = DeliveryProcessor::start(
            settings,
            Box::new(Manual {
                results,
                close_delay,
                sizes: Arc::clone(&sizes),
            }),
            Arc::new(Stats::default()),
            Duration::from_secs(5),
        )
        .expect("start");
        (processor, exports, sizes)
    }

    /// Ends 2 spans (one batch) and waits until their export has started and holds the only
    /// export slot; then 2 more, and waits until the export thread has taken them: it holds a
    /// full batch and waits for the slot. Returns the first export's answer channel.
    fn fill_the_slot_and_a_batch(
        processor: &DeliveryProcessor,
        exports: &Receiver<Sender<ExportResult>>,
    ) -> Sender<ExportResult> {
        processor.on_end(sampled_span());
        processor.on_end(sampled_span());
        let first = exports
            .recv_timeout(Duration::from_secs(5))
            .expect("the first export starts");
        processor.on_end(sampled_span());
        processor.on_end(sampled_span());
        let taken = Instant::now() + Duration::from_secs(5);
        while !processor.spans.is_empty() && Instant::now() < taken {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(
            processor.spans.is_empty(),
            "the export thread took the batch"
        );
        first
    }

    #[test]
    fn a_flush_that_times_out_does_not_count_a_running_export_as_failed() {
        let (processor, exports) = processor(1, Duration::ZERO);
        processor.on_end(sampled_span());
        processor.on_end(sampled_span());
        let first = exports
            .recv_timeout(Duration::from_secs(5))
            .expect("export");
        processor.on_end(sampled_span());
        // The flush cannot finish: the first export is still running and the limit is one.
        assert!(
            processor
                .request(Duration::from_millis(200), Control::Flush)
                .is_err()
        );
        std::thread::sleep(Duration::from_millis(200));
        let after_flush = processor.stats.snapshot();
        assert_eq!(after_flush.failed, 0, "{after_flush:?}");
        // The export then succeeds: its spans are exported, and the third span still goes out.
        first.send(Ok(Delivered::default())).expect("answer");
        let answering = answer_all(exports);
        processor
            .shutdown_with_timeout(Duration::from_secs(5))
            .expect("shutdown");
        let stats = processor.stats.snapshot();
        assert_eq!((stats.exported, stats.failed), (3, 0), "{stats:?}");
        // The shutdown joined the export thread, which dropped the transport: the answering
        // thread's channel is closed and it ends.
        answering.join().expect("answering thread");
    }

    #[test]
    fn a_span_ended_while_shutdown_closes_the_transport_is_counted() {
        let (processor, _exports) = processor(1, Duration::from_millis(600));
        let processor = Arc::new(processor);
        let shutting_down = {
            let processor = Arc::clone(&processor);
            std::thread::spawn(move || processor.shutdown_with_timeout(Duration::from_secs(5)))
        };
        // The export thread has answered the shutdown and is closing its transport.
        std::thread::sleep(Duration::from_millis(300));
        processor.on_end(sampled_span());
        shutting_down.join().expect("thread").expect("shutdown");
        let stats = processor.stats.snapshot();
        assert_eq!(stats.ended, 1);
        assert_eq!(
            stats.exported + stats.dropped + stats.failed,
            1,
            "a span went nowhere: {stats:?}"
        );
    }

    #[test]
    fn both_kinds_of_queue_deliver_every_span_and_drop_past_the_limit() {
        // The preallocated ring, and the growing channel used past `PREALLOCATED_QUEUE`.
        for queue in [100, PREALLOCATED_QUEUE + 1] {
            let (processor, exports) = processor_with_queue(queue, 1, Duration::ZERO);
            // Nothing is answered yet: the first batch waits on its export, so every span
            // ended now stays queued or in the export thread's hands.
            for _ in 0..50 {
                processor.on_end(sampled_span());
            }
            let answering = answer_all(exports);
            processor
                .shutdown_with_timeout(Duration::from_secs(5))
                .expect("shutdown");
            let stats = processor.stats.snapshot();
            assert_eq!(
                (stats.ended, stats.exported, stats.dropped, stats.failed),
                (50, 50, 0, 0),
                "queue of {queue}: {stats:?}"
            );
            drop(processor);
            answering.join().expect("answering thread");
        }
        // Past the limit, spans are counted as dropped, on the ring as on the channel.
        let (processor, exports) = processor_with_queue(4, 1, Duration::ZERO);
        // One batch in the hanging export, one held waiting for its slot, the queue full (4):
        // the other 992 are dropped.
        let _first = fill_the_slot_and_a_batch(&processor, &exports);
        for _ in 0..996 {
            processor.on_end(sampled_span());
        }
        let stats = processor.stats.snapshot();
        assert_eq!((stats.ended, stats.dropped), (1_000, 992), "{stats:?}");
        // Nothing was answered: the export thread is still waiting on its first export when
        // the deadline passes. Shutdown then counts what was not dropped as failed (the export
        // it gave up on, the batch in hand, the queue): every span is counted once, none is
        // left pending. (The counts are final when shutdown returns; the wait only keeps a
        // machine too loaded to schedule the export thread within the grace from failing.)
        let shut = processor.shutdown_with_timeout(Duration::from_millis(200));
        if shut.is_err() {
            // Only a machine too loaded to run the export thread within the counting grace
            // gets here; the counts must still become final.
            let settle = Instant::now() + Duration::from_secs(5);
            while processor.stats.snapshot().pending() > 0 && Instant::now() < settle {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        // When shutdown says it is done, the counts are final at once.
        let stats = processor.stats.snapshot();
        assert_eq!(stats.pending(), 0, "a span went nowhere: {stats:?}");
        assert_eq!(
            (stats.ended, stats.exported, stats.dropped, stats.failed),
            (1_000, 0, 992, 8),
            "{stats:?}"
        );
    }

    #[test]
    fn a_processor_dropped_without_shutdown_still_exports_and_counts_what_it_holds() {
        let (processor, exports, _) =
            processor_with(small_batches(Duration::from_secs(5), 1), Duration::ZERO);
        let first = fill_the_slot_and_a_batch(&processor, &exports);
        processor.on_end(sampled_span());
        let stats = Arc::clone(&processor.stats);
        // Dropped while the export thread waits for the slot with a full batch in hand.
        drop(processor);
        first.send(Ok(Delivered::default())).expect("answer");
        let answering = answer_all(exports);
        let settle = Instant::now() + Duration::from_secs(10);
        while stats.snapshot().pending() > 0 && Instant::now() < settle {
            std::thread::sleep(Duration::from_millis(5));
        }
        let stats = stats.snapshot();
        assert_eq!(
            (stats.ended, stats.exported, stats.dropped, stats.failed),
            (5, 5, 0, 0),
            "{stats:?}"
        );
        answering.join().expect("answering thread");
    }

    #[test]
    fn a_flush_gives_up_a_hanging_export_at_its_timeout_and_sends_its_spans_again() {
        let export_timeout = Duration::from_millis(300);
        let (processor, exports, sizes) =
            processor_with(small_batches(export_timeout, 1), Duration::ZERO);
        let _first = fill_the_slot_and_a_batch(&processor, &exports);
        // Every later export is answered at once; the first never is.
        let answering = answer_all(exports);
        let started = Instant::now();
        processor
            .request(Duration::from_secs(10), Control::Flush)
            .expect("the flush completes once the hanging export is given up");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        // The batch held behind it went out, then the hanging export's own spans, queued again.
        let stats = processor.stats.snapshot();
        assert_eq!((stats.exported, stats.failed), (4, 0), "{stats:?}");
        assert_eq!(*sizes.lock().expect("sizes"), [2, 2, 2]);
        processor
            .shutdown_with_timeout(Duration::from_secs(5))
            .expect("shutdown");
        drop(processor);
        answering.join().expect("answering thread");
    }

    #[test]
    fn a_hanging_export_is_given_up_at_its_timeout_with_a_slot_free_and_its_spans_sent_again() {
        let export_timeout = Duration::from_millis(200);
        let (processor, exports, sizes) =
            processor_with(small_batches(export_timeout, 2), Duration::ZERO);
        // One export that never answers, and a slot still free: nothing needs the slot, and
        // the export is still given up at its timeout; its spans go out again.
        processor.on_end(sampled_span());
        processor.on_end(sampled_span());
        let _first = exports
            .recv_timeout(Duration::from_secs(5))
            .expect("export");
        let again = exports
            .recv_timeout(Duration::from_secs(5))
            .expect("the same spans exported again");
        assert_eq!(*sizes.lock().expect("sizes"), [2, 2]);
        let stats = processor.stats.snapshot();
        assert_eq!((stats.failed, stats.dropped, stats.pending()), (0, 0, 2));
        assert!(
            stats
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("did not finish")),
            "{stats:?}"
        );
        again.send(Ok(Delivered::default())).expect("answer");
        // A flush with a long deadline waits for an export that never answers only until its
        // timeout; the spans then go out again (answered this time), and it is done.
        processor.on_end(sampled_span());
        let exports_seen = std::thread::spawn(move || {
            let hanging = exports
                .recv_timeout(Duration::from_secs(5))
                .expect("export");
            let retried = exports
                .recv_timeout(Duration::from_secs(5))
                .expect("export");
            retried.send(Ok(Delivered::default())).expect("answer");
            (hanging, exports)
        });
        let started = Instant::now();
        processor
            .request(Duration::from_secs(10), Control::Flush)
            .expect("flush");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        let (_hanging, _exports) = exports_seen.join().expect("thread");
        let stats = processor.stats.snapshot();
        assert_eq!(
            (stats.exported, stats.failed, stats.pending()),
            (3, 0, 0),
            "{stats:?}"
        );
        // Shutdown gives up on exports that never answer at its deadline: their spans fail.
        processor.on_end(sampled_span());
        let started = Instant::now();
        processor
            .shutdown_with_timeout(Duration::from_millis(500))
            .expect("shutdown");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        let stats = processor.stats.snapshot();
        assert_eq!((stats.failed, stats.pending()), (1, 0), "{stats:?}");
    }

    #[test]
    fn a_transient_failure_queues_the_spans_again_and_a_permanent_one_fails_them() {
        let (processor, exports, sizes) =
            processor_with(small_batches(Duration::from_secs(30), 1), Duration::ZERO);
        processor.on_end(sampled_span());
        processor.on_end(sampled_span());
        let recv = || {
            exports
                .recv_timeout(Duration::from_secs(5))
                .expect("export")
        };
        recv()
            .send(Err(Failure::transient("unavailable")))
            .expect("answer");
        recv()
            .send(Err(Failure::transient("unavailable")))
            .expect("answer");
        recv().send(Ok(Delivered::default())).expect("answer");
        let settle = Instant::now() + Duration::from_secs(5);
        while processor.stats.snapshot().exported < 2 && Instant::now() < settle {
            std::thread::sleep(Duration::from_millis(5));
        }
        let stats = processor.stats.snapshot();
        assert_eq!(
            (stats.exported, stats.dropped, stats.failed),
            (2, 0, 0),
            "{stats:?}"
        );
        assert_eq!(stats.last_error.as_deref(), Some("unavailable"));
        processor.on_end(sampled_span());
        processor.on_end(sampled_span());
        recv()
            .send(Err(Failure::permanent("invalid argument")))
            .expect("answer");
        let settle = Instant::now() + Duration::from_secs(5);
        while processor.stats.snapshot().failed < 2 && Instant::now() < settle {
            std::thread::sleep(Duration::from_millis(5));
        }
        let stats = processor.stats.snapshot();
        assert_eq!((stats.exported, stats.failed), (2, 2), "{stats:?}");
        assert_eq!(*sizes.lock().expect("sizes"), [2, 2, 2, 2]);
        // Nothing else was exported: the permanent failure was not sent again.
        assert!(exports.try_recv().is_err());
        processor
            .shutdown_with_timeout(Duration::from_secs(5))
            .expect("shutdown");
    }

    #[test]
    fn spans_that_find_no_room_back_in_the_queue_are_dropped_and_counted() {
        let settings = Settings {
            max_queue_size: 4,
            ..small_batches(Duration::from_secs(30), 1)
        };
        let (processor, exports, _) = processor_with(settings, Duration::ZERO);
        // Two in the only export, two held for its slot, and a full queue of four.
        let first = fill_the_slot_and_a_batch(&processor, &exports);
        for _ in 0..4 {
            processor.on_end(sampled_span());
        }
        assert_eq!(processor.stats.snapshot().dropped, 0);
        // The export fails for a transient reason: its two spans find the queue full.
        first
            .send(Err(Failure::transient("unavailable")))
            .expect("answer");
        let answering = answer_all(exports);
        processor
            .shutdown_with_timeout(Duration::from_secs(5))
            .expect("shutdown");
        let stats = processor.stats.snapshot();
        assert_eq!(
            (stats.ended, stats.exported, stats.dropped, stats.failed),
            (8, 6, 2, 0),
            "{stats:?}"
        );
        drop(processor);
        answering.join().expect("answering thread");
    }

    #[test]
    fn flushes_neither_extend_a_hanging_exports_timeout_nor_grow_the_batch() {
        let export_timeout = Duration::from_millis(300);
        let (processor, exports, sizes) =
            processor_with(small_batches(export_timeout, 1), Duration::ZERO);
        let started = Instant::now();
        let _first = fill_the_slot_and_a_batch(&processor, &exports);
        // A flush every 50 ms, each giving up after 20 ms (the first export never answers),
        // with a span ended between them: each flush interrupts the export thread's wait for
        // the slot.
        let mut second = None;
        while started.elapsed() < Duration::from_secs(3) && second.is_none() {
            processor.on_end(sampled_span());
            let _ = processor.request(Duration::from_millis(20), Control::Flush);
            std::thread::sleep(Duration::from_millis(30));
            second = exports.try_recv().ok();
        }
        // The hanging export was given up at its own timeout, flushes or not, and the held
        // batch went out in its place; the given-up spans went back to the queue, not lost.
        assert!(second.is_some(), "no export started after the hanging one");
        let stats = processor.stats.snapshot();
        assert_eq!((stats.failed, stats.dropped), (0, 0), "{stats:?}");
        assert!(
            started.elapsed() < export_timeout + Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        let sizes = sizes.lock().expect("sizes").clone();
        assert!(sizes.iter().all(|&n| n <= 2), "batches of {sizes:?}");
        drop(second);
        let _ = processor.shutdown_with_timeout(Duration::from_millis(100));
    }
}
