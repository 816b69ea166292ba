//! The receiver under attack: what a hostile client makes it hold, measured as the resident
//! memory of the process it runs in, and whether a normal export still gets through meanwhile.
//!
//! Each test starts a receiver with the default in-flight budget (64 MiB) in a child process
//! (this test binary, running [`receiver_child`]), attacks it over real sockets, exports to it
//! during the attack, and reads the child's peak resident set size (`VmHWM` in
//! `/proc/<pid>/status`, Linux). The bound asserted is the budget plus a fixed overhead of
//! [`OVERHEAD_MIB`], the figure `docs/receiver.md` states: 160 MiB in all.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use lightstep_receiver::DEFAULT_MAX_IN_FLIGHT_BYTES;
use prost::Message as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

#[allow(dead_code)]
#[path = "it/common.rs"]
mod common;

use common::{HANG_GUARD, export_trace, http_post, request, three_span_trace};

/// What the receiver's process may hold beyond its in-flight budget, in MiB: the process
/// itself (about 10 MiB), its 128 connections' buffers (HTTP/2 frames and windows, headers
/// being decoded), the request records, and the allocator's slack.
const OVERHEAD_MIB: usize = 96;

/// Set on the child: its settings, `name=value` pairs separated by `,`.
const CHILD_ENV: &str = "LIGHTSTEP_RECEIVER_ATTACK_CHILD";

/// Held by each test while it runs: the attacks load both cores, and the exports made during
/// them wait for a hang guard only.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The receiver of the other tests, in a child process: started with the settings in
/// [`CHILD_ENV`], it prints its addresses, answers `in_flight` on standard input with its
/// in-flight bytes, and stops when standard input closes. Does nothing when run otherwise.
#[test]
#[ignore = "the receiver in a child process, started by the other tests"]
fn receiver_child() {
    #[allow(clippy::disallowed_methods)] // set by the parent test, not configuration
    let Some(settings) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let mut builder = lightstep_receiver::Receiver::builder();
    for setting in settings
        .to_string_lossy()
        .split(',')
        .filter(|s| !s.is_empty())
    {
        let (name, value) = setting.split_once('=').expect("name=value");
        let number: u64 = value.parse().expect("a number");
        let ms = Duration::from_millis(number);
        builder = match name {
            "idle_timeout_ms" => builder.with_idle_timeout(ms),
            "body_start_timeout_ms" => builder.with_body_start_timeout(ms),
            "body_timeout_ms" => builder.with_body_timeout(ms),
            "min_body_rate" => builder.with_min_body_rate(u32::try_from(number).expect("rate")),
            other => panic!("unknown setting {other}"),
        };
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let rx = builder.start().await.expect("start");
        let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::stdin().lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "listening grpc={} http={}",
            rx.grpc_addr(),
            rx.http_addr()
        )
        .expect("out");
        out.flush().expect("flush");
        drop(out);
        while let Some(line) = lines.recv().await {
            if line == "in_flight" {
                let mut out = std::io::stdout().lock();
                writeln!(out, "in_flight {}", rx.in_flight_bytes()).expect("out");
                out.flush().expect("flush");
            }
        }
        rx.shutdown().await;
    });
}

/// A receiver in a child process; killed when dropped.
struct ChildReceiver {
    child: Child,
    io: Mutex<(ChildStdin, BufReader<ChildStdout>)>,
    grpc: SocketAddr,
    http: SocketAddr,
}

impl ChildReceiver {
    fn start(settings: &str) -> Self {
        let mut child = Command::new(std::env::current_exe().expect("this test binary"))
            .args(["--exact", "receiver_child", "--ignored", "--nocapture"])
            .env(CHILD_ENV, settings)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the receiver child");
        let stdin = child.stdin.take().expect("piped");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let listening = read_line_starting(&mut stdout, "listening ");
        let addr = |key: &str| -> SocketAddr {
            listening
                .split(&format!("{key}="))
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|addr| addr.parse().ok())
                .unwrap_or_else(|| panic!("no {key}= in {listening}"))
        };
        let (grpc, http) = (addr("grpc"), addr("http"));
        Self {
            child,
            io: Mutex::new((stdin, stdout)),
            grpc,
            http,
        }
    }

    /// The child's in-flight bytes, as the receiver counts them.
    fn in_flight(&self) -> usize {
        let mut io = self.io.lock().expect("io");
        let (stdin, stdout) = &mut *io;
        writeln!(stdin, "in_flight").expect("ask the child");
        read_line_starting(stdout, "in_flight ")
            .trim_start_matches("in_flight ")
            .parse()
            .expect("a number")
    }

    /// Waits (a hang guard, not a timing assertion) until `condition` holds of the child's
    /// in-flight bytes.
    async fn in_flight_reaches(&self, what: &str, condition: impl Fn(usize) -> bool) {
        let deadline = tokio::time::Instant::now() + HANG_GUARD;
        loop {
            let in_flight = self.in_flight();
            if condition(in_flight) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "never happened: {what} (in flight: {in_flight})"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A field of the child's `/proc/<pid>/status`, in KiB.
    fn status_kib(&self, field: &str) -> usize {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the child's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in {status}"))
    }

    /// Asserts that the child's resident memory never exceeded the budget plus
    /// [`OVERHEAD_MIB`].
    fn assert_memory_bounded(&self, attack: &str) {
        let peak_mib = self.status_kib("VmHWM:") / 1024;
        let bound_mib = DEFAULT_MAX_IN_FLIGHT_BYTES / (1 << 20) + OVERHEAD_MIB;
        eprintln!("{attack}: peak resident memory {peak_mib} MiB (bound {bound_mib} MiB)");
        assert!(
            peak_mib < bound_mib,
            "{attack}: the receiver's process reached {peak_mib} MiB of resident memory, over \
             its {bound_mib} MiB bound"
        );
    }
}

impl Drop for ChildReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_line_starting(stdout: &mut BufReader<ChildStdout>, prefix: &str) -> String {
    loop {
        let mut line = String::new();
        let read = stdout
            .read_line(&mut line)
            .expect("read the child's output");
        assert!(
            read > 0,
            "the receiver child exited before printing {prefix:?}"
        );
        if line.starts_with(prefix) {
            return line.trim_end().to_owned();
        }
    }
}

/// Runs `attack` alone, on a runtime of its own.
fn alone(attack: impl std::future::Future<Output = ()>) {
    let _alone = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(attack);
}

/// An attack running on a thread and runtime of its own, as another process would: the
/// exports made meanwhile do not wait for the attack's tasks to be scheduled. Stops when
/// dropped.
struct Attack {
    stop: tokio::sync::watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Attack {
    /// Runs `attack(stop)` until `stop` turns true.
    fn start<F, Fut>(attack: F) -> Self
    where
        F: FnOnce(tokio::sync::watch::Receiver<bool>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("attack runtime");
            let mut until = stopped.clone();
            runtime.block_on(async move {
                tokio::select! {
                    () = attack(stopped) => {}
                    _ = until.wait_for(|stop| *stop) => {}
                }
            });
            // Whatever the attack left running goes with its runtime.
            runtime.shutdown_background();
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Attack {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A normal export over each protocol, on a new connection: both must be accepted.
async fn normal_exports_get_through(rx: &ChildReceiver, trace: u8) {
    export_trace(&format!("http://{}", rx.grpc), trace)
        .await
        .expect("a gRPC export during the attack");
    let resp = http_post(
        rx.http,
        &[("content-type", "application/x-protobuf")],
        request("s", three_span_trace(trace + 1)).encode_to_vec(),
    )
    .await;
    assert_eq!(
        resp.status, 200,
        "an HTTP export during the attack: {resp:?}"
    );
}

/// The headers of a chunked OTLP/HTTP protobuf upload.
const CHUNKED_HEAD: &[u8] = b"POST /v1/traces HTTP/1.1\r\nhost: receiver\r\n\
    content-type: application/x-protobuf\r\ntransfer-encoding: chunked\r\n\r\n";

/// Chunked uploads sent one byte per chunk, each chunk as the client writes it, and held
/// open. Every chunk is a frame of its own for the receiver, which used to keep every frame
/// until the body was complete, and with each frame the read buffer it came in: hyper reads
/// into a buffer of at least 8 KiB and hands out slices of it, so each one-byte chunk read on
/// its own held 8 KiB, while the budget charged one byte.
#[test]
fn chunked_uploads_in_one_byte_chunks_hold_what_they_are_charged() {
    alone(async {
        // The receiver reads these bodies far slower than the minimum body rate, on purpose.
        let rx = ChildReceiver::start("min_body_rate=1");
        // 12 uploads, each of which reserves its size limit in the budget: 48 MiB in all.
        const UPLOADS: usize = 12;
        const CHUNKS: usize = 6000;
        let mut uploads = Vec::new();
        for _ in 0..UPLOADS {
            let http = rx.http;
            uploads.push(tokio::spawn(async move {
                let mut tcp = TcpStream::connect(http).await.expect("connect");
                tcp.set_nodelay(true).expect("nodelay");
                tcp.write_all(CHUNKED_HEAD).await.expect("headers");
                for _ in 0..CHUNKS {
                    tcp.write_all(b"1\r\nx\r\n").await.expect("a chunk");
                    // Let the receiver read it on its own.
                    tokio::time::sleep(Duration::from_micros(500)).await;
                }
                // Held open: no last chunk.
                tcp
            }));
        }
        // Each holds the size limit it reserved, from its first byte on.
        rx.in_flight_reaches("every upload reserved its size limit", |bytes| {
            bytes >= UPLOADS * lightstep_receiver::DEFAULT_MAX_REQUEST_BYTES
        })
        .await;
        normal_exports_get_through(&rx, 1).await;
        // A broken chunk ends each upload: its answer (400) shows that every byte before it
        // was read, and held, by then.
        for upload in uploads {
            let mut tcp = tokio::time::timeout(HANG_GUARD, upload)
                .await
                .expect("hang guard: the uploads were not sent")
                .expect("upload task");
            tcp.write_all(b"zz\r\n").await.expect("broken chunk");
            let mut answer = [0u8; 12];
            tokio::time::timeout(HANG_GUARD, tcp.read_exact(&mut answer))
                .await
                .expect("hang guard: no answer")
                .expect("read");
            assert_eq!(
                &answer,
                b"HTTP/1.1 400",
                "{}",
                String::from_utf8_lossy(&answer)
            );
        }
        rx.assert_memory_bounded("12 chunked uploads in 1-byte chunks");
    });
}

/// Sends headers-only requests on `streams` HTTP/2 streams of one connection at a time, each
/// with `repeats` copies of a short header (one HPACK index byte each after the first), and
/// their bodies never sent; opens a new connection when the receiver closes one. Until `stop`.
async fn header_flood(
    addr: SocketAddr,
    streams: usize,
    repeats: usize,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    while !*stop.borrow() {
        let Ok(tcp) = TcpStream::connect(addr).await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let Ok((sender, conn)) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await
        else {
            continue;
        };
        let conn = tokio::spawn(conn);
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/x-protobuf"),
        );
        for _ in 0..repeats {
            headers.append("x", http::HeaderValue::from_static("abc"));
        }
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..streams {
            let mut sender = sender.clone();
            let stop = stop.clone();
            let headers = headers.clone();
            tasks.spawn(async move {
                while !*stop.borrow() && sender.ready().await.is_ok() {
                    let (body_tx, body) = http_body_util::channel::Channel::<Bytes>::new(1);
                    let mut req = http::Request::new(body);
                    *req.method_mut() = http::Method::POST;
                    *req.uri_mut() = format!("http://{addr}/v1/traces").parse().expect("uri");
                    *req.headers_mut() = headers.clone();
                    // Whatever the answer; the body is never sent.
                    let _ = sender.send_request(req).await;
                    drop(body_tx);
                }
            });
        }
        tokio::select! {
            _ = conn => {}
            _ = async { while tasks.join_next().await.is_some() {} } => {}
        }
    }
}

/// Many HTTP/2 connections, each with as many streams as it may open, each stream's headers
/// repeating one short header (a byte each on the wire, HPACK's dynamic table) and its body
/// never sent. The receiver used to copy every stream's headers before the body and keep both
/// copies until the body timeout, uncharged: 300 connections of 64 such streams took it past
/// 700 MiB.
#[test]
fn http2_header_floods_hold_what_the_budget_allows() {
    alone(async {
        let rx = ChildReceiver::start("");
        let http = rx.http;
        let flood = Attack::start(move |stop| async move {
            let mut flood = tokio::task::JoinSet::new();
            for _ in 0..300 {
                // 200 copies: within the 8 KiB header list the receiver takes (HTTP/2 counts
                // 32 bytes an entry beyond its text).
                flood.spawn(header_flood(http, 64, 200, stop.clone()));
            }
            while flood.join_next().await.is_some() {}
        });
        // Five seconds of it: the flood's connections come and go, taking every slot.
        tokio::time::sleep(Duration::from_secs(5)).await;
        normal_exports_get_through(&rx, 1).await;
        rx.assert_memory_bounded("HTTP/2 header flood");
        drop(flood);
    });
}

/// A client that has sent the headers of a protobuf upload of `declared` bytes, and `first`
/// bytes of its body.
async fn stalled_upload(addr: SocketAddr, declared: usize, first: usize) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let mut head = format!(
        "POST /v1/traces HTTP/1.1\r\nhost: receiver\r\ncontent-type: application/x-protobuf\r\n\
         content-length: {declared}\r\n\r\n"
    )
    .into_bytes();
    head.extend(std::iter::repeat_n(b'\n', first));
    tcp.write_all(&head).await.expect("write");
    tcp
}

/// Reads a status line and the rest of the answer until the receiver closes or a blank line
/// after the body; returns the status line and the text.
async fn answer(tcp: &mut TcpStream) -> String {
    let mut text = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = tokio::time::timeout(HANG_GUARD, tcp.read(&mut buf))
            .await
            .expect("hang guard: no answer")
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        text.extend_from_slice(&buf[..n]);
        let so_far = String::from_utf8_lossy(&text);
        if let Some((head, body)) = so_far.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .and_then(|l| l.trim().parse::<usize>().ok());
            if length.is_some_and(|length| body.len() >= length) {
                break;
            }
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// Sixteen clients each send the headers and one byte of a 4 MiB upload, then a byte now and
/// then: together they reserve the whole default budget and keep it. Small exports used to
/// wait behind them in the budget's queue and fail after two seconds.
#[test]
fn small_exports_get_through_while_large_uploads_hold_the_budget() {
    alone(async {
        // A byte a second is enough to hold an upload here.
        let rx = ChildReceiver::start("min_body_rate=1");
        let limit = lightstep_receiver::DEFAULT_MAX_REQUEST_BYTES;
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let mut holders = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let http = rx.http;
            let mut stop = stop.clone();
            holders.spawn(async move {
                let mut tcp = stalled_upload(http, limit, 1).await;
                while tokio::time::timeout(Duration::from_millis(300), stop.changed())
                    .await
                    .is_err()
                {
                    let _ = tcp.write_all(b"\n").await;
                }
                tcp
            });
        }
        // All of the budget that large bodies may take is theirs.
        rx.in_flight_reaches("the uploads hold the budget", |bytes| bytes >= 14 * limit)
            .await;
        normal_exports_get_through(&rx, 1).await;
        // And still is: the exports did not get in because the uploads had gone.
        assert!(rx.in_flight() >= 14 * limit, "{}", rx.in_flight());
        rx.assert_memory_bounded("16 stalled 4 MiB uploads");
        stop_tx.send_replace(true);
        holders.abort_all();
    });
}

/// Clients that stall: one sends only headers, others the first byte of a large body and then
/// nothing. The first loses its request after the body start timeout, the others theirs once
/// they fall behind the minimum body rate, and their room in the budget goes to others: a
/// large export fits again. Both used to hold on for the whole body timeout (60 s).
#[test]
fn stalled_bodies_lose_their_room() {
    alone(async {
        let rx = ChildReceiver::start("body_start_timeout_ms=1000");
        let limit = lightstep_receiver::DEFAULT_MAX_REQUEST_BYTES;
        let mut silent = stalled_upload(rx.http, limit, 0).await;
        let mut stalled = Vec::new();
        for _ in 0..16 {
            stalled.push(stalled_upload(rx.http, limit, 1).await);
        }
        rx.in_flight_reaches("the uploads hold the budget", |bytes| bytes >= 14 * limit)
            .await;
        normal_exports_get_through(&rx, 1).await;
        let said = answer(&mut silent).await;
        assert!(
            said.starts_with("HTTP/1.1 408") && said.contains("did not begin within 1s"),
            "{said}"
        );
        for tcp in &mut stalled {
            let said = answer(tcp).await;
            // Those that never got room were told so; the others were too slow.
            assert!(
                said.starts_with("HTTP/1.1 408")
                    && said.contains("slower than 65536 bytes per second")
                    || said.starts_with("HTTP/1.1 503"),
                "{said}"
            );
        }
        rx.in_flight_reaches("the room is given back", |bytes| bytes == 0)
            .await;
        // A large export fits again.
        let spans = (0..64u8)
            .map(|i| {
                let mut span = common::span(9, i + 1, None, "large");
                span.attributes
                    .push(common::string_kv("padding", &"p".repeat(60_000)));
                span
            })
            .collect();
        let resp = http_post(
            rx.http,
            &[("content-type", "application/x-protobuf")],
            request("s", spans).encode_to_vec(),
        )
        .await;
        assert_eq!(resp.status, 200, "{resp:?}");
        rx.assert_memory_bounded("stalled uploads");
    });
}

/// Keeps a connection to `addr` sending `GET /v1/traces` (answered `405`) every `every`, and
/// reconnects when the receiver closes it, until `stop`.
async fn refused_requests(
    addr: SocketAddr,
    every: Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let get = format!("GET /v1/traces HTTP/1.1\r\nhost: {addr}\r\n\r\n");
    while !*stop.borrow() {
        let Ok(mut tcp) = TcpStream::connect(addr).await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let mut buf = [0u8; 512];
        while !*stop.borrow() {
            if tcp.write_all(get.as_bytes()).await.is_err() {
                break;
            }
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => tokio::time::sleep(every).await,
            }
        }
    }
}

/// Sends a protobuf export on an open HTTP/1.1 connection and returns the status line.
async fn export_on(tcp: &mut TcpStream, trace: u8) -> String {
    let body = request("s", three_span_trace(trace)).encode_to_vec();
    let mut req = format!(
        "POST /v1/traces HTTP/1.1\r\nhost: receiver\r\ncontent-type: application/x-protobuf\r\n\
         content-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    tcp.write_all(&req).await.expect("write");
    answer(tcp)
        .await
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Connections that send only requests the receiver refuses (here `GET`, answered `405`) used
/// to keep their slot for as long as they sent one within each idle timeout. They now lose it
/// after the idle timeout whatever they send, and at once when another client needs a slot.
#[test]
fn connections_that_only_send_refused_requests_lose_their_slots() {
    alone(async {
        let rx = ChildReceiver::start("idle_timeout_ms=1500");
        // Without pressure: a connection sending a refused request every 100 ms is closed
        // after the idle timeout, one whose exports are accepted is not.
        let get = format!("GET /v1/traces HTTP/1.1\r\nhost: {}\r\n\r\n", rx.http);
        let mut refused = TcpStream::connect(rx.http).await.expect("connect");
        let mut exporting = TcpStream::connect(rx.http).await.expect("connect");
        let mut buf = [0u8; 512];
        let mut closed = false;
        // 4 s, more than twice the idle timeout.
        for round in 0..40u8 {
            let status = export_on(&mut exporting, round + 1).await;
            assert!(
                status.starts_with("HTTP/1.1 200"),
                "round {round}: {status}"
            );
            if !closed
                && (refused.write_all(get.as_bytes()).await.is_err()
                    || matches!(refused.read(&mut buf).await, Ok(0) | Err(_)))
            {
                closed = true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            closed,
            "the connection sending refused requests kept its slot"
        );

        // Under pressure: more connections than the receiver's slots, on both listeners, each
        // sending a refused request every 200 ms: normal exports still get a slot.
        let (http, grpc) = (rx.http, rx.grpc);
        let attack = Attack::start(move |stop| async move {
            let mut attackers = tokio::task::JoinSet::new();
            for i in 0..1100 {
                let addr = if i % 2 == 0 { http } else { grpc };
                attackers.spawn(refused_requests(
                    addr,
                    Duration::from_millis(200),
                    stop.clone(),
                ));
            }
            while attackers.join_next().await.is_some() {}
        });
        tokio::time::sleep(Duration::from_secs(2)).await;
        normal_exports_get_through(&rx, 1).await;
        rx.assert_memory_bounded("connections sending refused requests");
        drop(attack);
    });
}
