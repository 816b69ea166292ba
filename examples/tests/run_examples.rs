//! Runs the examples as their users do: the real example binaries, as separate processes, with a
//! clean environment, checking what they print, their exit status and (with an endpoint set)
//! what a receiver started here got.
//!
//! Which binaries: integration tests cannot name example targets (`CARGO_BIN_EXE_*` exists for
//! `[[bin]]` targets only), and running `cargo run --example` from inside `cargo test` would
//! rebuild the examples with this package's features rather than the workspace's. But
//! `cargo test` builds every example of the package before it runs any test, into
//! `target/<profile>/examples/`, next to this test's own `deps/` directory; that is where these
//! tests find them. Run them with `cargo test -p lightstep-examples` (or the workspace-wide
//! command); `cargo test --test run_examples` alone does not rebuild the examples, so a binary
//! older than its sources is refused with a message saying so.
//!
//! Timeouts here are hang guards only (a minute or more); nothing asserts how fast anything is.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lightstep::receiver::Receiver;

/// Longest any example may run before the test calls it hung.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// The example binary `name`, built by `cargo test` next to this test binary.
fn example_path(name: &str) -> PathBuf {
    let test_exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/run_examples-<hash> -> target/<profile>/examples/<name>
    let profile_dir = test_exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test binary lives in target/<profile>/deps");
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "example binary {} not found: run `cargo test -p lightstep-examples`, which builds the \
         examples before the tests",
        path.display()
    );
    // `cargo test --test run_examples` does not rebuild the examples: refuse to test a binary
    // older than its own sources rather than report its old behaviour.
    let built = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .expect("the binary's mtime");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    for source in [
        manifest.join(format!("{name}.rs")),
        manifest.join("src/lib.rs"),
    ] {
        let changed = std::fs::metadata(&source)
            .and_then(|m| m.modified())
            .expect("the source's mtime");
        assert!(
            changed <= built,
            "{} is newer than {}: run `cargo test -p lightstep-examples`, which rebuilds the \
             examples",
            source.display(),
            path.display()
        );
    }
    path
}

/// A command for the example with an empty environment: no token, no endpoint, nothing from
/// the machine running the tests.
fn example(name: &str) -> Command {
    let mut command = Command::new(example_path(name));
    command
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

#[derive(Debug)]
struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Output {
    fn assert_success(&self) {
        assert!(self.status.success(), "{self}");
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status: {}\n--- stdout\n{}\n--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Reads a pipe to the end on a thread of its own.
fn collect(mut pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        let _ = tx.send(text);
    });
    rx
}

/// Waits for `child` to exit (killing it and failing after [`HANG_GUARD`]) and collects its
/// output.
fn wait(mut child: Child, stdout: mpsc::Receiver<String>) -> Output {
    let stderr = collect(child.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + HANG_GUARD;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the example") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the example did not exit within {HANG_GUARD:?}; stderr:\n{}",
                stderr.recv().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.recv().unwrap_or_default(),
        stderr: stderr.recv().unwrap_or_default(),
    }
}

fn run(mut command: Command) -> Output {
    let mut child = command.spawn().expect("start the example");
    let stdout = collect(child.stdout.take().expect("piped stdout"));
    wait(child, stdout)
}

/// Runs a command on the blocking pool, so that a receiver on the test's runtime keeps serving.
async fn run_async(command: Command) -> Output {
    tokio::task::spawn_blocking(move || run(command))
        .await
        .expect("the example runner")
}

// ---- quickstart -----------------------------------------------------------------------------

#[test]
fn quickstart_prints_the_received_trace_and_its_critical_path() {
    let out = run(example("quickstart"));
    out.assert_success();
    let stdout = &out.stdout;
    assert!(
        stdout.contains("sending spans of service `quickstart` to an embedded OTLP receiver"),
        "{out}"
    );
    assert!(stdout.contains("GET /api/users/1 -> 200 OK"), "{out}");
    assert!(stdout.contains("delivered 4 of 4 spans"), "{out}");
    assert!(
        stdout.contains("the embedded receiver got 4 spans in 1 trace"),
        "{out}"
    );
    // The tree: each span under its parent, indented.
    let tree: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains(" [quickstart"))
        .collect();
    let indent_of = |name: &str| {
        let line = tree
            .iter()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("no span {name} in the tree:\n{out}"));
        let after_duration = line.trim_start().split_once("  ").expect("duration").1;
        after_duration.len() - after_duration.trim_start().len()
    };
    assert!(indent_of("GET /api/users/{id}") < indent_of("users.v1.UserService/GetUser"));
    assert!(indent_of("users.v1.UserService/GetUser") < indent_of("SELECT users"));
    // The critical path table.
    assert!(stdout.contains("(robust mode): duration"), "{out}");
    assert!(stdout.contains("by service: quickstart 100.0%"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickstart_sends_to_the_endpoint_in_the_environment() {
    let receiver = Receiver::builder().start().await.expect("receiver");
    let mut command = example("quickstart");
    command
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.grpc_endpoint())
        .env("OTEL_SERVICE_NAME", "quickstart-under-test");
    let out = run_async(command).await;
    out.assert_success();
    assert!(
        out.stdout.contains(&format!(
            "sending spans of service `quickstart-under-test` to {}",
            receiver.grpc_endpoint()
        )),
        "{out}"
    );
    assert!(!out.stdout.contains("embedded"), "{out}");

    // Everything was acknowledged before the example exited: it is all here.
    let spans = receiver.spans();
    let mut names: Vec<&str> = spans.iter().map(|s| s.name()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "GET /api/users/{id}",
            "INSERT audit",
            "SELECT users",
            "users.v1.UserService/GetUser"
        ],
        "{out}"
    );
    assert!(
        spans
            .iter()
            .all(|s| s.service_name() == Some("quickstart-under-test"))
    );
    assert!(spans.iter().all(|s| s.trace_id() == spans[0].trace_id()));
    receiver.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickstart_over_http_protobuf_to_the_endpoint_in_the_environment() {
    let receiver = Receiver::builder().start().await.expect("receiver");
    let mut command = example("quickstart");
    command
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.http_endpoint())
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf");
    let out = run_async(command).await;
    out.assert_success();
    assert_eq!(receiver.spans().len(), 4, "{out}");
    receiver.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickstart_sends_the_token_to_the_traces_endpoint() {
    // A receiver that insists on the token, as Lightstep does.
    let receiver = Receiver::builder()
        .with_access_token("example-token")
        .start()
        .await
        .expect("receiver");
    let mut command = example("quickstart");
    command.env("LS_ACCESS_TOKEN", "example-token").env(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        receiver.grpc_endpoint(),
    );
    let out = run_async(command).await;
    out.assert_success();
    assert!(
        !out.stdout.contains("example-token"),
        "the token is never printed: {out}"
    );
    let spans = receiver.spans();
    assert_eq!(spans.len(), 4, "{out}");
    assert!(
        spans
            .iter()
            .all(|s| s.request().access_token() == Some("example-token"))
    );
    receiver.shutdown().await;
}

/// An endpoint that accepts TCP connections (the kernel completes the handshake for the
/// listen backlog) but never answers a byte: a black hole.
#[test]
fn quickstart_exits_and_says_what_it_could_not_deliver_when_the_endpoint_never_answers() {
    let black_hole = TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", black_hole.local_addr().expect("address"));
    let mut command = example("quickstart");
    command.env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint);
    let out = run(command);
    drop(black_hole);
    assert!(!out.status.success(), "{out}");
    assert!(
        out.stderr
            .contains(&format!("error: spans were not delivered to {endpoint}")),
        "{out}"
    );
    assert!(
        out.stderr.contains("4 of 4 spans were not delivered"),
        "the count of spans: {out}"
    );
    assert!(!out.stdout.contains("delivered 4 of 4"), "{out}");
}

#[test]
fn quickstart_exits_and_says_what_it_could_not_deliver_when_the_port_is_closed() {
    // Bind and close: nothing listens on the port afterwards.
    let endpoint = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", listener.local_addr().expect("address"))
    };
    let mut command = example("quickstart");
    command.env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint);
    let out = run(command);
    assert!(!out.status.success(), "{out}");
    assert!(
        out.stderr
            .contains(&format!("error: spans were not delivered to {endpoint}")),
        "{out}"
    );
    assert!(
        out.stderr.contains("4 of 4 spans were not delivered"),
        "{out}"
    );
}

#[test]
fn quickstart_refuses_lightstep_ingest_without_a_token() {
    let mut command = example("quickstart");
    command.env(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "https://ingest.lightstep.com:443",
    );
    let out = run(command);
    assert!(!out.status.success(), "{out}");
    assert!(out.stderr.contains("no access token"), "{out}");
}

// ---- the other examples -------------------------------------------------------------------

/// Runs `name` with its spans sent to a receiver started here, and returns the output and the
/// traces that arrived, each as (name, span id, parent span id) triples.
async fn run_against_receiver(name: &str) -> (Output, Vec<Vec<(String, Vec<u8>, Vec<u8>)>>) {
    let receiver = Receiver::builder().start().await.expect("receiver");
    let mut command = example(name);
    command.env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.grpc_endpoint());
    let out = run_async(command).await;
    out.assert_success();
    let traces = receiver
        .take_traces()
        .into_iter()
        .map(|trace| {
            trace
                .spans()
                .iter()
                .map(|s| {
                    (
                        s.name().to_owned(),
                        s.span().span_id.clone(),
                        s.span().parent_span_id.clone(),
                    )
                })
                .collect()
        })
        .collect();
    receiver.shutdown().await;
    (out, traces)
}

/// The span named `name` in `trace`, by position, panicking with the trace when absent.
fn find(trace: &[(String, Vec<u8>, Vec<u8>)], name: &str, nth: usize) -> usize {
    trace
        .iter()
        .enumerate()
        .filter(|(_, (n, _, _))| n == name)
        .nth(nth)
        .map(|(i, _)| i)
        .unwrap_or_else(|| panic!("no span {name} (#{nth}) in {trace:?}"))
}

fn parent_of(trace: &[(String, Vec<u8>, Vec<u8>)], child: usize) -> Option<usize> {
    trace.iter().position(|(_, id, _)| *id == trace[child].2)
}

#[test]
fn axum_service_prints_one_trace_per_request_across_both_services() {
    let out = run(example("axum_service"));
    out.assert_success();
    for line in [
        "GET /orders/espresso -> 200 OK order accepted, 12 in stock",
        "GET /orders/tea -> 200 OK order accepted, 40 in stock",
        "GET /orders/unicorn -> 404 Not Found no product unicorn",
        "delivered 12 of 12 spans",
        "the embedded receiver got 12 spans in 3 traces",
    ] {
        assert!(out.stdout.contains(line), "{line:?} missing:\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_service_propagates_context_to_the_downstream_service() {
    let (out, traces) = run_against_receiver("axum_service").await;
    assert_eq!(traces.len(), 3, "{out}");
    for trace in &traces {
        assert_eq!(trace.len(), 4, "{trace:?}");
        let shop = find(trace, "GET /orders/{sku}", 0);
        let client = find(trace, "GET", 0);
        let inventory = find(trace, "GET /stock/{sku}", 0);
        let query = find(trace, "SELECT stock", 0);
        assert_eq!(parent_of(trace, shop), None);
        assert_eq!(parent_of(trace, client), Some(shop));
        assert_eq!(parent_of(trace, inventory), Some(client));
        assert_eq!(parent_of(trace, query), Some(inventory));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tonic_grpc_client_and_server_spans_form_one_trace() {
    let (out, traces) = run_against_receiver("tonic_grpc").await;
    assert!(out.stdout.contains("Check(checkout) -> Serving"), "{out}");
    assert!(
        out.stdout.contains("Check(payments) -> NotServing"),
        "{out}"
    );
    assert!(out.stdout.contains("Check(unknown) -> NotFound"), "{out}");
    assert_eq!(traces.len(), 3, "{out}");
    for trace in &traces {
        assert_eq!(trace.len(), 4, "{trace:?}");
        let root = trace
            .iter()
            .position(|(name, _, _)| name.starts_with("check "))
            .expect("root");
        let client = find(trace, "grpc.health.v1.Health/Check", 0);
        let server = find(trace, "grpc.health.v1.Health/Check", 1);
        // Which of the two is the client: the one whose parent is the root.
        let (client, server) = if parent_of(trace, client) == Some(root) {
            (client, server)
        } else {
            (server, client)
        };
        let query = find(trace, "SELECT services", 0);
        assert_eq!(parent_of(trace, client), Some(root));
        assert_eq!(parent_of(trace, server), Some(client));
        assert_eq!(parent_of(trace, query), Some(server));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracing_bridge_nests_tracing_spans_and_helper_spans() {
    let (out, traces) = run_against_receiver("tracing_bridge").await;
    assert!(
        out.stdout
            .contains("POST /orders (ada, 3 items) -> 201 Created"),
        "{out}"
    );
    assert_eq!(traces.len(), 2, "{out}");
    for trace in &traces {
        assert_eq!(trace.len(), 4, "{trace:?}");
        let http = find(trace, "POST /orders", 0);
        let order = find(trace, "place_order", 0);
        let price = find(trace, "price_items", 0);
        let insert = find(trace, "INSERT orders", 0);
        assert_eq!(parent_of(trace, order), Some(http));
        assert_eq!(parent_of(trace, price), Some(order));
        assert_eq!(parent_of(trace, insert), Some(order));
    }
}

#[test]
fn config_file_reads_the_toml_and_the_yaml_file() {
    let out = run(example("config_file"));
    out.assert_success();
    for line in [
        "sending spans of service `config-file-toml` to an embedded OTLP receiver",
        "sending spans of service `config-file-yaml` to an embedded OTLP receiver",
        "file ",
        "lightstep.toml: batch.max_queue_size)",
        "lightstep.yaml: protocol)",
        "http/protobuf",
    ] {
        assert!(out.stdout.contains(line), "{line:?} missing:\n{out}");
    }
    assert_eq!(
        out.stdout.matches("delivered 2 of 2 spans").count(),
        2,
        "{out}"
    );
}

#[test]
fn config_file_reports_a_bad_file_by_key() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("app.toml");
    std::fs::write(&file, "servce_name = \"typo\"\n").expect("write the file");
    let mut command = example("config_file");
    command.arg(&file);
    let out = run(command);
    assert!(!out.status.success(), "{out}");
    assert!(out.stderr.contains("unknown key `servce_name`"), "{out}");
    assert!(out.stderr.contains("did you mean `service_name`"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_make_one_trace_across_both() {
    let receiver = Receiver::builder().start().await.expect("receiver");
    let mut command = example("two_processes");
    command.env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.grpc_endpoint());
    let out = run_async(command).await;
    out.assert_success();
    assert!(
        out.stdout.contains("GET /price/coffee -> 200 OK 3.50"),
        "{out}"
    );
    // The child said where it sends: the same receiver.
    assert!(
        out.stdout.contains(&format!(
            "backend | sending spans of service `two-processes-backend` to {}",
            receiver.grpc_endpoint()
        )),
        "{out}"
    );
    let traces = receiver.take_traces();
    assert_eq!(traces.len(), 2, "{out}");
    for trace in &traces {
        let spans = trace.spans();
        assert_eq!(spans.len(), 4, "{spans:#?}");
        let by_name = |name: &str| {
            spans
                .iter()
                .find(|s| s.name() == name)
                .unwrap_or_else(|| panic!("no span {name} in {spans:#?}"))
        };
        let client = by_name("GET");
        let server = by_name("GET /price/{item}");
        let query = by_name("SELECT prices");
        assert_eq!(client.service_name(), Some("two-processes-frontend"));
        assert_eq!(server.service_name(), Some("two-processes-backend"));
        // Different processes: the Resource says so.
        let pid =
            |s: &lightstep::receiver::ReceivedSpan| s.resource_attribute("process.pid").cloned();
        assert_ne!(pid(client), pid(server));
        assert_eq!(server.parent_span_id(), Some(client.span_id()));
        assert_eq!(query.parent_span_id(), Some(server.span_id()));
    }
    receiver.shutdown().await;
}

#[test]
fn two_processes_print_the_trace_of_both_with_the_embedded_receiver() {
    let out = run(example("two_processes"));
    out.assert_success();
    assert!(
        out.stdout
            .contains("the embedded receiver got 8 spans in 2 traces"),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("GET /price/{item} [two-processes-backend, server]"),
        "{out}"
    );
    // The client span, named by its method alone, names the backend it called.
    assert!(
        out.stdout
            .lines()
            .any(|l| l.contains("GET → 127.0.0.1:")
                && l.contains("[two-processes-frontend, client]")),
        "{out}"
    );
}

/// Parses `delivered N of M spans ...` and `the embedded receiver got K spans ...`.
fn delivered_and_received(stdout: &str) -> (u64, u64, u64) {
    let line = |prefix: &str| -> Vec<u64> {
        stdout
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line {prefix:?} in\n{stdout}"))
            .split_whitespace()
            .filter_map(|word| word.parse().ok())
            .collect()
    };
    let delivered = line("delivered ");
    let received = line("the embedded receiver got ");
    (delivered[0], delivered[1], received[0])
}

#[cfg(unix)]
#[test]
fn graceful_shutdown_on_sigterm_loses_no_span() {
    graceful_shutdown_on_signal("TERM", "received SIGTERM: stopping");
}

#[cfg(unix)]
#[test]
fn graceful_shutdown_on_ctrl_c_loses_no_span() {
    graceful_shutdown_on_signal("INT", "received Ctrl-C (SIGINT): stopping");
}

/// Starts the service, waits until it has done some work, sends it `signal` and checks that it
/// stopped by itself with every span delivered.
#[cfg(unix)]
fn graceful_shutdown_on_signal(signal: &str, says: &str) {
    use std::io::BufRead as _;

    let mut child = example("graceful_shutdown").spawn().expect("start");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut seen = String::new();
    // Wait until it has done some work: the second job's line.
    loop {
        let mut line = String::new();
        let read = stdout.read_line(&mut line).expect("read stdout");
        assert!(read > 0, "exited before working:\n{seen}");
        seen.push_str(&line);
        if line.starts_with("job 2 done") {
            break;
        }
    }
    let kill = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(kill.success());
    let out = wait(child, collect(stdout));
    let stdout = format!("{seen}{}", out.stdout);
    assert!(out.status.success(), "{out}\n{stdout}");
    assert!(stdout.contains(says), "{stdout}");
    let (delivered, ended, received) = delivered_and_received(&stdout);
    assert_eq!(delivered, ended, "{stdout}");
    assert_eq!(received, ended, "{stdout}");
    assert!(stdout.contains("(0 dropped, 0 failed)"), "{stdout}");
    // Two spans per job and per request.
    assert!(ended >= 4, "{stdout}");
}

#[test]
fn graceful_shutdown_after_a_deadline_loses_no_span() {
    let mut command = example("graceful_shutdown");
    command.args(["--exit-after", "1"]);
    let out = run(command);
    out.assert_success();
    assert!(
        out.stdout.contains("--exit-after reached: stopping"),
        "{out}"
    );
    let (delivered, ended, received) = delivered_and_received(&out.stdout);
    assert_eq!((delivered, received), (ended, ended), "{out}");
}

#[test]
fn sampling_resource_keeps_what_the_sampler_decides_and_shows_the_resource() {
    let out = run(example("sampling_resource"));
    out.assert_success();
    let stdout = &out.stdout;
    assert!(stdout.contains("caller sampled: 5 of 5 kept"), "{out}");
    assert!(
        stdout.contains("caller did not sample: 0 of 5 kept"),
        "{out}"
    );
    // What the example expects to arrive is what arrived.
    let expected: u64 = stdout
        .split("expected at the backend: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no expectation in\n{out}"));
    assert!(
        stdout.contains(&format!(
            "the embedded receiver got {} spans in {expected} {}",
            2 * expected,
            if expected == 1 { "trace" } else { "traces" }
        )),
        "{out}"
    );
    for attribute in [
        "service.name = sampling-resource",
        "service.version = 3.1.4",
        "deployment.environment.name = staging",
        "service.namespace = shop",
        "team = catalog",
    ] {
        assert!(stdout.contains(attribute), "{attribute:?} missing:\n{out}");
    }
}

#[test]
fn analyze_file_writes_text_json_and_svg() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut command = example("analyze_file");
    command.arg("--out-dir").arg(dir.path());
    let out = run(command);
    out.assert_success();
    assert!(
        out.stdout.contains("20 traces, 660 spans read from"),
        "{out}"
    );
    assert!(out.stdout.contains("(robust mode): duration"), "{out}");
    assert!(
        out.stdout
            .contains("compose_post_server [compose-post-service]"),
        "{out}"
    );

    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("analysis.json")).expect("analysis.json"),
    )
    .expect("valid JSON");
    let traces = json["traces"].as_array().expect("traces");
    assert_eq!(traces.len(), 20);
    assert!(
        traces
            .iter()
            .all(|t| !t["critical_spans"].as_array().expect("spans").is_empty())
    );

    let svgs: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .expect("out dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .collect();
    assert_eq!(svgs.len(), 2, "{svgs:?}");
    for svg in svgs {
        let text = std::fs::read_to_string(&svg).expect("svg");
        assert!(
            text.contains("<svg") && text.trim_end().ends_with("</svg>"),
            "{}",
            svg.display()
        );
    }
}

#[test]
fn analyze_file_reads_an_otlp_file_given_as_argument() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let input = dir.path().join("trace.json");
    std::fs::write(
        &input,
        r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"web"}}]},
        "scopeSpans":[{"spans":[
          {"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","name":"GET /",
           "startTimeUnixNano":"1000000000","endTimeUnixNano":"1009000000"},
          {"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203332","parentSpanId":"b7ad6b7169203331",
           "name":"SELECT users","startTimeUnixNano":"1002000000","endTimeUnixNano":"1007000000"}]}]}]}"#,
    )
    .expect("write the trace");
    let mut command = example("analyze_file");
    command.arg(&input).arg("--out-dir").arg(dir.path());
    let out = run(command);
    out.assert_success();
    assert!(out.stdout.contains("1 traces, 2 spans read from"), "{out}");
    assert!(
        out.stdout
            .contains("5.000ms    SELECT users [web]  * 5.000ms"),
        "{out}"
    );
    assert!(out.stdout.contains("duration 9.000ms"), "{out}");
}

// ---- query_jaeger ---------------------------------------------------------------------------

#[test]
fn query_jaeger_analyzes_a_trace_and_a_search_from_a_stand_in_jaeger() {
    let out = run(example("query_jaeger"));
    out.assert_success();
    assert!(
        out.stdout
            .contains("a stand-in Jaeger query API serves the fixture at http://127.0.0.1:"),
        "{out}"
    );
    // The first trace of the fixture, fetched by id and analyzed as `lightstep analyze` reads
    // it from the file.
    assert!(
        out.stdout.contains(
            "trace 151e8ea44a5cf41c (robust mode): duration 5.303ms, critical path 5.303ms (100.0%)"
        ),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("compose_post_server               77254e9f088634fc"),
        "{out}"
    );
    let listed = out
        .stdout
        .lines()
        .filter(|l| l.contains(" 33 spans, "))
        .count();
    assert_eq!(listed, 5, "{out}");
    assert!(
        out.stdout
            .contains("5 traces analyzed from jaeger http://127.0.0.1:"),
        "{out}"
    );
}

#[test]
fn query_jaeger_says_when_jaeger_cannot_be_reached() {
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
        .port();
    let mut command = example("query_jaeger");
    command.args([
        "--jaeger",
        &format!("http://127.0.0.1:{port}"),
        "--service",
        "frontend",
    ]);
    let out = run(command);
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(
        out.stderr.starts_with(&format!(
            "error: jaeger: cannot reach http://127.0.0.1:{port}/api/traces?service=frontend"
        )),
        "{out}"
    );
}
