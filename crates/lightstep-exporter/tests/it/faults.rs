//! Backend not started yet, refusing, slow, stopped mid-run: the application is never blocked,
//! flush and shutdown keep their deadline on both runtime flavours, the counts are exact, and
//! when the backend is back it gets every span that fit in the queue meanwhile.
//!
//! Every case runs on a current-thread and on a multi-thread runtime (`on_both_runtimes!`),
//! over gRPC, HTTP/protobuf and HTTP/JSON at the same time (`over_every_protocol`).

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lightstep_config::{ConfigBuilder, EnvSnapshot, LightstepConfig, Protocol};
use lightstep_exporter::{ExportStats, ExporterError, LightstepExporter};
use lightstep_receiver::{Receiver, RunningReceiver};
use opentelemetry::trace::Tracer;

use crate::{TOKEN, config_for, endpoint, exporter, receiver};

/// Deadlines are properties, not speed targets; this slack only absorbs a loaded machine.
const SLACK: Duration = Duration::from_secs(3);
/// The flush and shutdown deadline (`shutdown_timeout`) of every case.
const DEADLINE: Duration = Duration::from_secs(2);
/// Long enough for anything that is not a deadline under test to happen on a loaded machine.
const HANG_GUARD: Duration = Duration::from_secs(20);
const QUEUE: usize = 100;
const BATCH: usize = 10;

/// Runs each named `async fn(Protocol)` as two tests, `current_thread::<case>` and
/// `multi_thread::<case>`, each over every protocol at once.
macro_rules! on_both_runtimes {
    ($($case:ident),* $(,)?) => {
        mod current_thread {
            $(
                #[tokio::test(flavor = "current_thread")]
                async fn $case() {
                    super::over_every_protocol(super::$case).await;
                }
            )*
        }
        mod multi_thread {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::over_every_protocol(super::$case).await;
                }
            )*
        }
    };
}

on_both_runtimes!(
    receiver_not_started_yet,
    receiver_answers_unavailable,
    receiver_black_holes_exports,
    receiver_stops_mid_run_and_comes_back,
    a_full_queue_drops_and_every_span_is_counted,
    ending_spans_never_waits_for_a_hanging_export,
    a_five_second_outage_loses_nothing_with_the_default_settings,
    a_long_outage_drops_exactly_what_does_not_fit,
    shutdown_during_an_outage_keeps_its_deadline_and_counts_every_span,
);

/// Every protocol concurrently, on the test's runtime.
async fn over_every_protocol<F: Future<Output = ()>>(case: impl Fn(Protocol) -> F) {
    tokio::join!(
        case(Protocol::Grpc),
        case(Protocol::HttpProtobuf),
        case(Protocol::HttpJson)
    );
}

/// A port the test holds for its receivers for the whole test: a socket bound to it with
/// `SO_REUSEPORT` and not listening. While no receiver listens, a connection is refused, as
/// to a backend that is down, and no other socket can take the port: Linux lets another socket
/// bind it only if that socket also sets `SO_REUSEPORT`, belongs to the same user and asks for
/// exactly this port, and it never hands the port out as an ephemeral one while it is bound.
struct HeldPort(socket2::Socket);

impl HeldPort {
    /// A port the OS picks.
    fn new() -> Self {
        Self(reuse_port_socket("127.0.0.1:0".parse().unwrap()))
    }

    fn addr(&self) -> SocketAddr {
        self.0.local_addr().unwrap().as_socket().unwrap()
    }

    /// A second socket on the port, for a receiver that will stop: it takes the connections
    /// while that receiver listens on it. Once the receiver has shut down (and closed it),
    /// connections are refused again, and the port is still held for the next receiver.
    fn listener_beside(&self) -> std::net::TcpListener {
        reuse_port_socket(self.addr()).into()
    }

    /// The held socket itself, for the last receiver (which listens on it when it starts).
    fn into_listener(self) -> std::net::TcpListener {
        self.0.into()
    }
}

/// A TCP socket with `SO_REUSEPORT`, bound to `addr`, not listening.
fn reuse_port_socket(addr: SocketAddr) -> socket2::Socket {
    let socket = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )
    .unwrap();
    // Unix only: elsewhere the second bind of the port (`listener_beside`) fails, and says so.
    #[cfg(unix)]
    socket.set_reuse_port(true).unwrap();
    socket
        .bind(&addr.into())
        .unwrap_or_else(|e| panic!("binding {addr} with SO_REUSEPORT: {e}"));
    socket
}

fn url(addr: SocketAddr, protocol: Protocol) -> String {
    if protocol.is_http() {
        format!("http://{addr}/v1/traces")
    } else {
        format!("http://{addr}")
    }
}

/// Batches of `BATCH` from a queue of `QUEUE`, sent only when full (or by a flush or shutdown),
/// so that what each export carries is known; enough concurrent exports that the export thread
/// never waits for a free slot (it answers flush and shutdown at once); each export bounded by
/// 1 s, retries included, so that an export that fails has failed well before the deadline.
fn fault_config(url: &str, protocol: Protocol) -> ConfigBuilder {
    config_for(url, protocol)
        .with_max_queue_size(QUEUE)
        .with_max_export_batch_size(BATCH)
        .with_scheduled_delay(Duration::from_secs(3600))
        .with_max_concurrent_exports(QUEUE / BATCH + 1)
        .with_timeout(Duration::from_millis(500))
        .with_export_timeout(Duration::from_secs(1))
        .with_shutdown_timeout(DEADLINE)
}

fn end_spans(exporter: &LightstepExporter, prefix: &str, n: usize) {
    let tracer = exporter.tracer();
    for i in 0..n {
        tracer.in_span(format!("{prefix}-{i}"), |_| {});
    }
}

async fn timed<T>(operation: impl Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let result = operation.await;
    (result, started.elapsed())
}

#[track_caller]
fn assert_within_deadline(took: Duration, what: &str, protocol: Protocol) {
    assert!(
        took < DEADLINE + SLACK,
        "{protocol:?}: {what} took {took:?}, its deadline is {DEADLINE:?}"
    );
}

/// `(ended, exported, dropped, failed)`, and nothing pending: every span is accounted for.
#[track_caller]
fn assert_counts(stats: &ExportStats, expected: (u64, u64, u64, u64), protocol: Protocol) {
    assert_eq!(
        (stats.ended, stats.exported, stats.dropped, stats.failed),
        expected,
        "{protocol:?}: {stats:?}"
    );
    assert_eq!(stats.pending(), 0, "{protocol:?}: {stats:?}");
}

/// `Undelivered` with exactly these numbers.
#[track_caller]
fn assert_undelivered(
    result: Result<impl std::fmt::Debug, ExporterError>,
    expected: (u64, u64, u64, u64),
    protocol: Protocol,
) {
    match result {
        Err(ExporterError::Undelivered {
            ended,
            undelivered,
            dropped,
            failed,
            ..
        }) => assert_eq!(
            (ended, undelivered, dropped, failed),
            expected,
            "{protocol:?}: (ended, undelivered, dropped, failed)"
        ),
        other => panic!("{protocol:?}: expected Undelivered {expected:?}, got {other:?}"),
    }
}

/// A flush that cannot deliver (the backend is down): it gives up at its deadline, and the
/// spans are neither dropped nor failed but still pending, `ended` of them.
async fn flush_keeps_pending(exporter: &LightstepExporter, ended: u64, protocol: Protocol) {
    let (flushed, took) = timed(exporter.force_flush()).await;
    assert_within_deadline(took, "force_flush", protocol);
    assert!(took >= DEADLINE, "{protocol:?}: the flush gave up early");
    match flushed {
        Err(ExporterError::Deadline {
            operation: "flush",
            pending,
            dropped: 0,
            failed: 0,
            // Only OTLP delivery was late.
            added_running: false,
            ..
        }) if pending == ended => {}
        other => panic!("{protocol:?}: expected {ended} spans pending, got {other:?}"),
    }
    let stats = exporter.stats();
    assert_eq!(
        (stats.ended, stats.exported, stats.pending()),
        (ended, 0, ended),
        "{protocol:?}: {stats:?}"
    );
}

/// A shutdown within its deadline that delivered every span, `ended` of them.
async fn shutdown_delivers_all(exporter: &LightstepExporter, ended: u64, protocol: Protocol) {
    let (shut, took) = timed(exporter.shutdown()).await;
    assert_within_deadline(took, "shutdown", protocol);
    if let Err(e) = shut {
        panic!("{protocol:?}: every span was to be delivered: {e}");
    }
    assert_counts(&exporter.stats(), (ended, ended, 0, 0), protocol);
}

async fn flush_delivers(exporter: &LightstepExporter, why: &str, protocol: Protocol) {
    let (flushed, took) = timed(exporter.force_flush()).await;
    assert_within_deadline(took, "force_flush", protocol);
    if let Err(e) = flushed {
        panic!("{protocol:?}: {why}, yet the flush failed: {e}");
    }
}

/// The names of the spans the receiver holds, sorted.
/// The names of the spans received, sorted, each once. Delivery is at least once: an export
/// given up at its timeout may still have reached the backend, and its spans go out again (on a
/// loaded machine a one-second export timeout is met now and then), so a span may arrive twice;
/// what these tests hold to is that none is lost and none is made up.
fn received_names(receiver: &RunningReceiver) -> Vec<String> {
    let mut names: Vec<String> = receiver
        .spans()
        .iter()
        .map(|s| s.name().to_owned())
        .collect();
    names.sort();
    let all = names.len();
    names.dedup();
    if names.len() < all {
        eprintln!(
            "note: {} span(s) arrived twice (an export given up at its timeout had arrived)",
            all - names.len()
        );
    }
    names
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    let mut names: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    names.sort();
    names
}

/// A receiver that serves `protocol` on `listener`.
async fn receiver_on(listener: std::net::TcpListener, protocol: Protocol) -> RunningReceiver {
    let builder = Receiver::builder().with_access_token(TOKEN);
    let builder = if protocol.is_http() {
        builder.with_http_listener(listener)
    } else {
        builder.with_grpc_listener(listener)
    };
    builder.start().await.expect("start on the held port")
}

/// Waits until the receiver holds `n` requests in its simulated delay: the exports are really
/// on the wire, blocked on the backend.
async fn until_held(receiver: &RunningReceiver, n: u64) {
    let started = Instant::now();
    while receiver.faults().delayed_requests() < n {
        assert!(
            started.elapsed() < HANG_GUARD,
            "{} of {n} exports reached the receiver",
            receiver.faults().delayed_requests()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Exporting starts before the backend does: what is ended while nothing listens stays
/// queued (a flush gives up at its deadline with every span pending); once a receiver listens
/// on that address, it gets those spans and the later ones, none lost.
async fn receiver_not_started_yet(protocol: Protocol) {
    let port = HeldPort::new();
    let exporter = exporter(fault_config(&url(port.addr(), protocol), protocol));
    // Two full batches go out at once, the flush sends the last 5; every connection is refused,
    // each export is retried for its second and goes back to the queue, again and again.
    end_spans(&exporter, "early", 25);
    flush_keeps_pending(&exporter, 25, protocol).await;

    let receiver = receiver_on(port.into_listener(), protocol).await;
    end_spans(&exporter, "late", 5);
    flush_delivers(&exporter, "the receiver is up", protocol).await;
    shutdown_delivers_all(&exporter, 30, protocol).await;
    let mut expected = names("early", 25);
    expected.extend(names("late", 5));
    expected.sort();
    assert_eq!(received_names(&receiver), expected, "{protocol:?}");
    receiver.shutdown().await;
}

/// Every request is answered gRPC `UNAVAILABLE` / HTTP 503 (transient: each export is retried
/// within its export timeout, then its spans go back to the queue): a flush gives up at its
/// deadline with the spans pending; once the receiver accepts again, it gets all of them.
async fn receiver_answers_unavailable(protocol: Protocol) {
    let receiver = receiver().await;
    receiver.faults().fail_next_requests(u64::MAX);
    let exporter = exporter(fault_config(&endpoint(&receiver, protocol), protocol));
    end_spans(&exporter, "refused", 25);
    flush_keeps_pending(&exporter, 25, protocol).await;
    assert!(receiver.spans().is_empty(), "{protocol:?}");
    // Three exports, each tried more than once: the refusals came from the receiver.
    assert!(
        receiver.stats().requests_failed_by_fault > 3,
        "{protocol:?}: {:?}",
        receiver.stats()
    );

    receiver.faults().fail_next_requests(0);
    end_spans(&exporter, "accepted", 5);
    flush_delivers(&exporter, "the receiver accepts again", protocol).await;
    shutdown_delivers_all(&exporter, 30, protocol).await;
    let mut expected = names("refused", 25);
    expected.extend(names("accepted", 5));
    expected.sort();
    assert_eq!(received_names(&receiver), expected, "{protocol:?}");
    receiver.shutdown().await;
}

/// The receiver holds every request for a minute and exports would wait far past the deadline:
/// a flush gives up at its deadline without giving up the spans (they are still pending), and
/// shutdown gives up at its deadline and counts every span it could not deliver as failed.
/// Spans sent once the receiver answers again are delivered by that same shutdown.
async fn receiver_black_holes_exports(protocol: Protocol) {
    let receiver = receiver().await;
    receiver
        .faults()
        .set_response_delay(Duration::from_secs(60));
    let exporter = exporter(
        fault_config(&endpoint(&receiver, protocol), protocol)
            .with_timeout(Duration::from_secs(30))
            .with_export_timeout(Duration::from_secs(30)),
    );
    end_spans(&exporter, "held", 25);
    until_held(&receiver, 2).await;
    let (flushed, took) = timed(exporter.force_flush()).await;
    assert_within_deadline(took, "force_flush", protocol);
    assert!(took >= DEADLINE, "{protocol:?}: the flush gave up early");
    match flushed {
        Err(ExporterError::Deadline {
            operation: "flush",
            ended: 25,
            pending: 25,
            dropped: 0,
            failed: 0,
            ..
        }) => {}
        other => panic!("{protocol:?}: {other:?}"),
    }
    let stats = exporter.stats();
    assert_eq!(
        (stats.ended, stats.exported, stats.pending()),
        (25, 0, 25),
        "{protocol:?}: {stats:?}"
    );

    // The receiver answers new requests at once (the three held ones keep waiting).
    receiver.faults().set_response_delay(Duration::ZERO);
    end_spans(&exporter, "answered", 5);
    let (shut, took) = timed(exporter.shutdown()).await;
    assert_within_deadline(took, "shutdown", protocol);
    assert!(took >= DEADLINE, "{protocol:?}: shutdown gave up early");
    assert_undelivered(shut, (30, 25, 0, 25), protocol);
    assert_counts(&exporter.stats(), (30, 5, 0, 25), protocol);
    assert_eq!(
        received_names(&receiver),
        names("answered", 5),
        "{protocol:?}"
    );
}

/// The receiver goes away while it holds an export, stays away, and a new one comes up on the
/// same address (a backend restart): the export it cut and everything ended while it was away
/// stay pending, and the new receiver gets them with the spans ended once it is up: nothing
/// lost.
async fn receiver_stops_mid_run_and_comes_back(protocol: Protocol) {
    let port = HeldPort::new();
    let first = receiver_on(port.listener_beside(), protocol).await;
    let exporter = exporter(fault_config(&endpoint(&first, protocol), protocol));
    end_spans(&exporter, "before", 1);
    flush_delivers(&exporter, "the receiver is up", protocol).await;
    assert_eq!(received_names(&first), names("before", 1), "{protocol:?}");

    // A full batch goes out and is held; the receiver shuts down under it.
    first.faults().set_response_delay(Duration::from_secs(60));
    end_spans(&exporter, "cut", BATCH);
    until_held(&first, 1).await;
    // The port stays held while nothing listens on it: connections are refused.
    first.shutdown().await;
    end_spans(&exporter, "while-down", 15);
    let (flushed, took) = timed(exporter.force_flush()).await;
    assert_within_deadline(took, "force_flush", protocol);
    assert!(
        matches!(
            flushed,
            Err(ExporterError::Deadline {
                pending: 25,
                dropped: 0,
                failed: 0,
                ..
            })
        ),
        "{protocol:?}: {flushed:?}"
    );

    let second = receiver_on(port.into_listener(), protocol).await;
    end_spans(&exporter, "after", 5);
    flush_delivers(&exporter, "the receiver is back", protocol).await;
    shutdown_delivers_all(&exporter, 31, protocol).await;
    let mut expected = names("cut", BATCH);
    expected.extend(names("while-down", 15));
    expected.extend(names("after", 5));
    expected.sort();
    assert_eq!(received_names(&second), expected, "{protocol:?}");
    second.shutdown().await;
}

/// One export at a time, each held by the receiver until it times out: 1,000 spans ended at
/// once overflow the queue, and each batch given up goes back to a queue that is full or
/// nearly. Every span is accounted for: dropped (no room, when it ended or when its batch came
/// back) or failed (left at shutdown), none exported, none left pending once shutdown returns,
/// and shutdown's error says how many of each.
async fn a_full_queue_drops_and_every_span_is_counted(protocol: Protocol) {
    const SMALL_QUEUE: usize = 30;
    const ENDED: u64 = 1_000;
    let receiver = receiver().await;
    receiver
        .faults()
        .set_response_delay(Duration::from_secs(60));
    // Each export times out after 200 ms; the export thread waits for it before it sends the
    // next batch, so it works through the whole queue (3 batches, plus the one in flight and
    // the one waiting) within about 1 s, and answers shutdown before the deadline.
    let exporter = exporter(
        fault_config(&endpoint(&receiver, protocol), protocol)
            .with_max_queue_size(SMALL_QUEUE)
            .with_max_concurrent_exports(1)
            .with_timeout(Duration::from_millis(200))
            .with_export_timeout(Duration::from_millis(200)),
    );
    end_spans(&exporter, "flood", ENDED as usize);
    let during = exporter.stats();
    assert_eq!(
        (during.ended, during.exported),
        (ENDED, 0),
        "{protocol:?}: {during:?}"
    );
    // Which spans drop depends on how far the export thread got while the spans were ending:
    // the queue always takes the first SMALL_QUEUE, the export thread takes at most one batch into
    // an export and one more while it waits for the export to finish, and each export that
    // times out meanwhile frees room for more. So the split between dropped and failed is not
    // deterministic; the sum is.
    assert!(
        during.dropped <= ENDED - SMALL_QUEUE as u64,
        "{protocol:?}: {during:?}"
    );

    let (shut, took) = timed(exporter.shutdown()).await;
    assert_within_deadline(took, "shutdown", protocol);
    let stats = exporter.stats();
    assert_eq!(stats.exported, 0, "{protocol:?}: {stats:?}");
    assert_eq!(stats.pending(), 0, "{protocol:?}: {stats:?}");
    assert_eq!(
        stats.dropped + stats.failed,
        ENDED,
        "{protocol:?}: {stats:?}"
    );
    // Drops also happen later, when a batch given up finds no room back in the queue; shutdown
    // fails what is left (the queue, the batch held, the export in flight).
    assert!(stats.dropped >= during.dropped, "{protocol:?}: {stats:?}");
    assert!(
        stats.failed >= SMALL_QUEUE as u64,
        "{protocol:?}: {stats:?}"
    );
    assert_undelivered(shut, (ENDED, ENDED, stats.dropped, stats.failed), protocol);
    assert!(receiver.spans().is_empty(), "{protocol:?}");
}

/// The application thread is never blocked by export: with every export hanging for 30 s,
/// ending 10,000 spans takes a small fraction of a second (waiting for even one export would
/// take 30 s). Shutdown keeps its deadline and counts every span: the export thread, waiting
/// for a slot behind the hanging export with a full batch in hand, takes the shutdown at once,
/// gives up at the deadline and counts what it holds and what is queued as failed, none left
/// pending.
async fn ending_spans_never_waits_for_a_hanging_export(protocol: Protocol) {
    const ENDED: u64 = 10_000;
    let receiver = receiver().await;
    receiver
        .faults()
        .set_response_delay(Duration::from_secs(60));
    let exporter = exporter(
        fault_config(&endpoint(&receiver, protocol), protocol)
            .with_max_concurrent_exports(1)
            .with_timeout(Duration::from_secs(30))
            .with_export_timeout(Duration::from_secs(30)),
    );
    let started = Instant::now();
    end_spans(&exporter, "app", ENDED as usize);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "{protocol:?}: ending {ENDED} spans took {took:?}"
    );
    let during = exporter.stats();
    // The queue holds QUEUE; the export thread holds at most one batch in the hanging export
    // and one waiting for it, taken while the spans were ending (how many of those it took by
    // then is not deterministic).
    let accepted = ENDED - during.dropped;
    assert!(
        (QUEUE as u64..=(QUEUE + 2 * BATCH) as u64).contains(&accepted),
        "{protocol:?}: {during:?}"
    );
    assert_eq!(
        (during.ended, during.exported, during.failed),
        (ENDED, 0, 0),
        "{protocol:?}: {during:?}"
    );

    let (shut, took) = timed(exporter.shutdown()).await;
    assert_within_deadline(took, "shutdown", protocol);
    let stats = exporter.stats();
    assert_eq!(stats.dropped, during.dropped, "{protocol:?}: {stats:?}");
    assert_eq!(stats.pending(), 0, "{protocol:?}: {stats:?}");
    assert_undelivered(shut, (ENDED, ENDED, during.dropped, accepted), protocol);
    assert!(receiver.spans().is_empty(), "{protocol:?}");
}

/// How long the backend refuses every export in the outage cases.
const OUTAGE: Duration = Duration::from_secs(5);

/// Ends `per_step` spans every `step` until `until`, each step's names with their own prefix;
/// returns how many it ended.
async fn end_spans_until(
    exporter: &LightstepExporter,
    prefix: &str,
    per_step: usize,
    step: Duration,
    until: Instant,
) -> u64 {
    let mut ended = 0;
    let mut k = 0;
    while Instant::now() < until {
        end_spans(exporter, &format!("{prefix}{k}"), per_step);
        ended += per_step as u64;
        k += 1;
        tokio::time::sleep(step).await;
    }
    ended
}

/// What the receiver holds: every span once (no duplicates), `n` of them.
#[track_caller]
/// `n` distinct spans arrived (see [`received_names`] for why some may have arrived twice).
fn assert_received_distinct(receiver: &RunningReceiver, n: u64, protocol: Protocol) {
    let names = received_names(receiver);
    assert_eq!(names.len() as u64, n, "{protocol:?}");
}

/// The backend refuses every export (gRPC `UNAVAILABLE`, HTTP 503) for five seconds, then
/// recovers. With the default settings (only the endpoint and the token set), nothing is lost:
/// every span ended before, during and after the outage arrives. (A batch of 512, the
/// default, leaves at once and meets the outage; spans keep ending during it.)
async fn a_five_second_outage_loses_nothing_with_the_default_settings(protocol: Protocol) {
    let receiver = receiver().await;
    receiver.faults().fail_next_requests(u64::MAX);
    let builder = LightstepConfig::builder()
        .with_env(EnvSnapshot::empty())
        .with_protocol(protocol)
        .with_service_name("outage")
        .with_access_token(TOKEN);
    let url = endpoint(&receiver, protocol);
    let exporter = exporter(if protocol.is_http() {
        builder.with_traces_endpoint(url)
    } else {
        builder.with_otlp_endpoint(url)
    });
    let outage_ends = Instant::now() + OUTAGE;
    end_spans(&exporter, "before", 600);
    let during = end_spans_until(
        &exporter,
        "during",
        20,
        Duration::from_millis(250),
        outage_ends,
    )
    .await;
    // The outage met the exports, more than once each: they were retried.
    assert!(
        receiver.stats().requests_failed_by_fault >= 2,
        "{protocol:?}: {:?}",
        receiver.stats()
    );
    let stats = exporter.stats();
    assert_eq!(
        (stats.dropped, stats.failed),
        (0, 0),
        "{protocol:?}: {stats:?}"
    );
    receiver.faults().fail_next_requests(0);
    end_spans(&exporter, "after", 10);
    let created = 600 + during + 10;
    // Delivery waits for the next attempt (at most 5 s apart) and the scheduled delay (5 s by
    // default): wait for it, not a speed.
    let waited = receiver
        .wait_for_spans(created as usize, Duration::from_secs(60))
        .await;
    assert!(
        waited.is_ok(),
        "{protocol:?}: {} of {created} spans arrived: {:?}",
        receiver.spans().len(),
        exporter.stats()
    );
    shutdown_delivers_all(&exporter, created, protocol).await;
    assert_received_distinct(&receiver, created, protocol);
}

/// Settings that shrink a 60-second outage to five with the same proportions: the outage
/// lasts five export timeouts (each export is tried for a second, then its spans go back to
/// the queue), and far more spans end during it than the queue holds.
fn outage_config(url: &str, protocol: Protocol) -> ConfigBuilder {
    config_for(url, protocol)
        .with_max_queue_size(QUEUE)
        .with_max_export_batch_size(BATCH)
        .with_max_concurrent_exports(1)
        .with_scheduled_delay(Duration::from_millis(50))
        .with_timeout(Duration::from_millis(300))
        .with_export_timeout(Duration::from_secs(1))
        .with_shutdown_timeout(DEADLINE)
}

/// Waits until every span ended so far is delivered, dropped or failed.
async fn until_settled(exporter: &LightstepExporter, protocol: Protocol) {
    let started = Instant::now();
    while exporter.stats().pending() > 0 {
        assert!(
            started.elapsed() < HANG_GUARD,
            "{protocol:?}: {:?}",
            exporter.stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A long outage: 1,000 spans end during it, the queue holds 100. What does not fit is dropped
/// and counted, exactly: once the backend is back and the queue has drained, delivered +
/// dropped = created, none failed, the receiver holds exactly the delivered spans (at least the
/// queue's worth that waited out the outage), and spans ended after that arrive. Shutdown keeps
/// its deadline.
async fn a_long_outage_drops_exactly_what_does_not_fit(protocol: Protocol) {
    let receiver = receiver().await;
    receiver.faults().fail_next_requests(u64::MAX);
    let exporter = exporter(outage_config(&endpoint(&receiver, protocol), protocol));
    let during = end_spans_until(
        &exporter,
        "during",
        10,
        Duration::from_millis(50),
        Instant::now() + OUTAGE,
    )
    .await;
    let stats = exporter.stats();
    assert!(
        stats.dropped > 0,
        "{protocol:?}: nothing overflowed: {stats:?}"
    );
    assert_eq!(stats.failed, 0, "{protocol:?}: {stats:?}");
    // The reason given is the backend's answer; only on a machine so loaded that an export's
    // first attempt was not answered within its timeout is it the processor's own give-up.
    let reason = if protocol.is_http() {
        "503"
    } else {
        "Unavailable"
    };
    assert!(
        stats
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains(reason) || e.contains("did not finish within")),
        "{protocol:?}: {stats:?}"
    );
    receiver.faults().fail_next_requests(0);
    until_settled(&exporter, protocol).await;
    // The queue has drained: spans ended now are not dropped.
    end_spans(&exporter, "after", 10);
    let created = during + 10;
    until_settled(&exporter, protocol).await;
    let stats = exporter.stats();
    assert_eq!(stats.ended, created, "{protocol:?}: {stats:?}");
    assert_eq!(
        (
            stats.exported + stats.dropped,
            stats.failed,
            stats.pending()
        ),
        (created, 0, 0),
        "{protocol:?}: delivered + dropped must be created: {stats:?}"
    );
    assert!(
        stats.exported >= (QUEUE + BATCH) as u64,
        "{protocol:?}: {stats:?}"
    );
    assert_received_distinct(&receiver, stats.exported, protocol);
    let received = received_names(&receiver);
    for name in names("after", 10) {
        assert!(received.contains(&name), "{protocol:?}: {name} is missing");
    }
    shutdown_undelivered_exactly(&exporter, &stats, protocol).await;
}

/// Shutdown within its deadline, reporting `Undelivered` with exactly the counters of `stats`
/// (nothing pending: the counts were final before).
async fn shutdown_undelivered_exactly(
    exporter: &LightstepExporter,
    stats: &ExportStats,
    protocol: Protocol,
) {
    let (shut, took) = timed(exporter.shutdown()).await;
    assert_within_deadline(took, "shutdown", protocol);
    assert_undelivered(
        shut,
        (
            stats.ended,
            stats.ended - stats.exported,
            stats.dropped,
            stats.failed,
        ),
        protocol,
    );
}

/// Shutdown while the backend still refuses: it returns within its deadline, every span is
/// counted (dropped when it did not fit, failed when it was still waiting), none pending, none
/// delivered.
async fn shutdown_during_an_outage_keeps_its_deadline_and_counts_every_span(protocol: Protocol) {
    let receiver = receiver().await;
    receiver.faults().fail_next_requests(u64::MAX);
    let exporter = exporter(outage_config(&endpoint(&receiver, protocol), protocol));
    let created = end_spans_until(
        &exporter,
        "during",
        10,
        Duration::from_millis(50),
        Instant::now() + Duration::from_secs(3),
    )
    .await;
    let (shut, took) = timed(exporter.shutdown()).await;
    assert_within_deadline(took, "shutdown", protocol);
    let stats = exporter.stats();
    assert_eq!(
        (stats.ended, stats.exported, stats.pending()),
        (created, 0, 0),
        "{protocol:?}: {stats:?}"
    );
    assert_eq!(
        stats.dropped + stats.failed,
        created,
        "{protocol:?}: {stats:?}"
    );
    assert!(
        stats.failed > 0 && stats.dropped > 0,
        "{protocol:?}: {stats:?}"
    );
    // Even for the exports shutdown gave up while they were still retrying, the reason is the
    // backend's answer.
    let reason = if protocol.is_http() {
        "503"
    } else {
        "Unavailable"
    };
    assert!(
        stats
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains(reason)),
        "{protocol:?}: {stats:?}"
    );
    assert_undelivered(
        shut,
        (created, created, stats.dropped, stats.failed),
        protocol,
    );
    assert!(receiver.spans().is_empty(), "{protocol:?}");
}
