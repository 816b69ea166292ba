//! `lightstep dev` as a user runs it: the real binary, spans from the Python OpenTelemetry SDK
//! (a third-party OTLP client), SIGTERM to stop, and a port that is taken.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_lightstep");
/// Hang guard only: how long to wait for a line that should come in well under a second.
const GUARD: Duration = Duration::from_secs(60);

fn tools_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/python-peers")
}

/// The Python peers' venv, or `None` (with a loud message) when Python or PyPI is unavailable
/// outside CI. In CI the test fails instead.
fn peer_python() -> Option<PathBuf> {
    let out = Command::new("bash")
        .arg(tools_dir().join("ensure.sh"))
        .output()
        .expect("run tools/python-peers/ensure.sh");
    match out.status.code() {
        Some(0) => Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())),
        Some(3) => {
            eprintln!(
                "!!! SKIPPED: the Python OpenTelemetry SDK is unavailable (it fails in CI): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            None
        }
        _ => panic!("ensure.sh failed: {}", String::from_utf8_lossy(&out.stderr)),
    }
}

/// The address after `key=` in dev's "listening" line.
pub(crate) fn address(listening: &str, key: &str) -> String {
    listening
        .split(&format!("{key}="))
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {key}= in {listening}"))
        .to_owned()
}

/// Standard output of the child, line by line, on a channel.
pub(crate) fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

pub(crate) fn wait_for(
    rx: &mpsc::Receiver<String>,
    seen: &mut Vec<String>,
    what: impl Fn(&str) -> bool,
) -> String {
    loop {
        let line = rx
            .recv_timeout(GUARD)
            .unwrap_or_else(|_| panic!("no such line; got:\n{}", seen.join("\n")));
        seen.push(line.clone());
        if what(&line) {
            return line;
        }
    }
}

/// A running `lightstep dev` on ports the system picks on loopback, its standard output read
/// line by line; killed if a test fails before it is stopped.
pub(crate) struct Dev {
    child: KillOnDrop,
    rx: mpsc::Receiver<String>,
    /// Every line read so far.
    pub(crate) seen: Vec<String>,
}

/// The addresses `lightstep dev` printed that it listens on.
pub(crate) struct Listening {
    pub(crate) grpc: String,
    pub(crate) http: String,
}

impl Dev {
    /// `lightstep dev --grpc 127.0.0.1:0 --http 127.0.0.1:0` and `args`, with nothing in the
    /// environment but `env`.
    pub(crate) fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = KillOnDrop(
            Command::new(BIN)
                .args(["dev", "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0"])
                .args(args)
                .env_clear()
                .envs(env.iter().copied())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let rx = lines(&mut child.0);
        Self {
            child,
            rx,
            seen: Vec::new(),
        }
    }

    /// Waits for the line that says where it listens, and reads the addresses from it.
    pub(crate) fn listening(&mut self) -> Listening {
        let line = self.wait_for(|l| l.starts_with("lightstep dev: listening"));
        Listening {
            grpc: address(&line, "grpc"),
            http: address(&line, "http"),
        }
    }

    /// Waits for a line of standard output that `what` accepts.
    pub(crate) fn wait_for(&mut self, what: impl Fn(&str) -> bool) -> String {
        wait_for(&self.rx, &mut self.seen, what)
    }

    /// Stops it as a user does, with SIGTERM: it says so, and exits with success.
    pub(crate) fn stop(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.wait_for(|l| l == "lightstep dev: stopped");
        assert!(
            self.child.0.wait().unwrap().success(),
            "SIGTERM is a clean stop"
        );
    }
}

#[test]
fn receives_from_the_python_sdk_prints_writes_and_stops_on_sigterm() {
    let Some(python) = peer_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("traces.jsonl");
    let svg_dir = dir.path().join("svg");
    let mut dev = Dev::start(
        &[
            "--idle",
            "300ms",
            "--out",
            out_file.to_str().unwrap(),
            "--svg-dir",
            svg_dir.to_str().unwrap(),
        ],
        &[],
    );
    let Listening { grpc, http } = dev.listening();

    let mut trace_ids = Vec::new();
    for (protocol, endpoint) in [("grpc", &grpc), ("http/protobuf", &http)] {
        let sent = Command::new(&python)
            .arg(tools_dir().join("send_spans.py"))
            .args([
                "--endpoint",
                endpoint,
                "--protocol",
                protocol,
                "--count",
                "4",
                "--service",
                "py-dev",
            ])
            .output()
            .unwrap();
        assert!(
            sent.status.success(),
            "{}",
            String::from_utf8_lossy(&sent.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&sent.stdout).unwrap();
        let trace_id = report["trace_id"].as_str().unwrap().to_owned();
        // Printed once idle: the tree's header line, then the critical path.
        dev.wait_for(|l| l.starts_with(&format!("trace {trace_id} (4 spans")));
        dev.wait_for(|l| l.contains(&trace_id) && l.contains("critical path"));
        trace_ids.push(trace_id);
    }
    let text = dev.seen.join("\n");
    assert!(
        text.contains("py-root [py-dev") && text.contains("py-child-1"),
        "{text}"
    );
    dev.stop();

    let written = std::fs::read_to_string(&out_file).unwrap();
    let objects: Vec<serde_json::Value> = written
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects.len(), 2, "{written}");
    for (object, trace_id) in objects.iter().zip(&trace_ids) {
        let spans = &object["resourceSpans"][0]["scopeSpans"][0]["spans"];
        assert_eq!(spans.as_array().unwrap().len(), 4);
        assert_eq!(
            spans[0]["traceId"].as_str().unwrap().to_lowercase(),
            *trace_id
        );
    }
    for trace_id in &trace_ids {
        let svg = std::fs::read_to_string(svg_dir.join(format!("{trace_id}.svg"))).unwrap();
        assert!(
            svg.starts_with("<svg") || svg.starts_with("<?xml"),
            "{}",
            &svg[..svg.len().min(80)]
        );
    }
    // The `--out` file is what `lightstep analyze` reads.
    let analyzed = Command::new(BIN)
        .arg("analyze")
        .arg(&out_file)
        .output()
        .unwrap();
    assert!(
        analyzed.status.success(),
        "{}",
        String::from_utf8_lossy(&analyzed.stderr)
    );
}

#[test]
fn a_stop_signal_right_after_the_listening_line_is_a_clean_stop() {
    // A supervisor may stop the process as soon as it printed where it listens: the signal
    // must already be listened for then, or its default action kills the process.
    for _ in 0..10 {
        let mut dev = Dev::start(&["--no-ui"], &[]);
        dev.listening();
        dev.stop();
    }
}

#[test]
fn a_taken_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(BIN)
        .args(["dev", "--grpc", &addr, "--http", "127.0.0.1:0"])
        .env_clear()
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&addr) && stderr.contains("could not bind"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
}

#[test]
fn a_zero_idle_time_is_refused_as_an_argument_error() {
    let out = Command::new(BIN)
        .args([
            "dev",
            "--idle",
            "0s",
            "--grpc",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
        ])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("from 10ms to 24h"));
}

/// Standard output closed before the first line (`lightstep dev | head -0`): it stops quietly
/// with status 0 instead of listening on with no one to print to.
#[test]
fn a_closed_standard_output_stops_it_quietly() {
    let (status, stderr) = with_closed_stdout(
        &["dev", "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0"],
        &[],
    );
    assert_eq!(status, Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

/// Runs the binary with `args` (and nothing in the environment but `env`) and its standard
/// output a pipe nobody reads: if it starts, it stops when it prints that it listens. Returns
/// its exit status and standard error.
fn with_closed_stdout(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(BIN)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `localhost:PORT` is taken as 127.0.0.1 (here with port 0 and standard output closed, so that
/// it starts and stops at once); a host name it cannot take is an argument error naming the flag.
#[test]
fn localhost_is_accepted_as_a_listen_address() {
    let (status, stderr) = with_closed_stdout(
        &["dev", "--grpc", "localhost:0", "--http", "localhost:0"],
        &[],
    );
    assert_eq!(status, Some(0), "{stderr}");

    let out = Command::new(BIN)
        .args(["dev", "--grpc", "example.invalid:4317"])
        .env_clear()
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--grpc") && stderr.contains("localhost:PORT"),
        "{stderr}"
    );
}

/// A child process that a failing test does not leave running.
pub(crate) struct KillOnDrop(pub(crate) Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One OTLP/JSON export over HTTP/1.1 to `http` (`127.0.0.1:PORT/v1/traces` as printed), with
/// `token` as `lightstep-access-token` if given. Returns the status line.
pub(crate) fn post_json(http: &str, token: Option<&str>, body: &str) -> String {
    use std::io::{Read, Write};
    let authority = http
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap();
    let mut stream = std::net::TcpStream::connect(authority).unwrap();
    stream.set_read_timeout(Some(GUARD)).unwrap();
    let token = token
        .map(|t| format!("lightstep-access-token: {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "POST /v1/traces HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n{token}\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn require_token_refuses_exports_without_it_and_says_so_without_printing_it() {
    const TOKEN: &str = "dev-token-4f1c-SECRET";
    let span = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"tokened"}}]},"scopeSpans":[{"scope":{"name":"t"},"spans":[{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","name":"GET /tokened","kind":2,"startTimeUnixNano":"1000000000","endTimeUnixNano":"2000000000"}]}]}]}"#;
    // Padded, as a value pasted into an environment file may be: the configuration trims it,
    // and so must the check.
    let padded = format!(" {TOKEN}\n");
    let mut dev = Dev::start(
        &["--idle", "200ms", "--require-token"],
        &[("LS_ACCESS_TOKEN", &padded)],
    );
    let Listening { http, .. } = dev.listening();
    assert!(
        post_json(&http, None, span).contains(" 401 "),
        "no token must be refused"
    );
    assert!(post_json(&http, Some("wrong"), span).contains(" 401 "));
    // Reported as the receiver counts them: in one line, or in two if a look fell between them.
    let mut refused = 0;
    while refused < 2 {
        let line = dev.wait_for(|l| l.contains("refused"));
        let rest = line
            .strip_prefix("lightstep dev: refused ")
            .unwrap_or_else(|| panic!("{line}"));
        let (n, what) = rest.split_once(' ').unwrap();
        assert!(
            what.starts_with("export request(s) without the expected access token"),
            "{line}"
        );
        refused += n.parse::<u32>().unwrap();
    }
    assert_eq!(refused, 2);
    assert!(post_json(&http, Some(TOKEN), span).contains(" 200 "));
    dev.wait_for(|l| l.contains("GET /tokened"));
    dev.stop();
    let all = dev.seen.join("\n");
    assert!(!all.contains("SECRET"), "the token was printed:\n{all}");

    // Without a token in the environment it says which variables it needs.
    let out = Command::new(BIN)
        .args([
            "dev",
            "--grpc",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--require-token",
        ])
        .env_clear()
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(
            "--require-token needs the token in LIGHTSTEP_ACCESS_TOKEN or LS_ACCESS_TOKEN"
        ),
        "{stderr}"
    );
}

/// `lightstep dev` with `args`, as [`with_closed_stdout`] runs it.
fn dev_with_closed_stdout(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let args: Vec<&str> = std::iter::once("dev").chain(args.iter().copied()).collect();
    with_closed_stdout(&args, env)
}

/// A listener other machines could reach is refused, naming the flag and the address, unless
/// `--allow-remote` says so; that needs `--require-token`. Nothing is bound meanwhile.
#[test]
fn listeners_stay_on_loopback_unless_remote_exports_are_allowed_with_a_token() {
    for (args, flag, addr) in [
        (
            ["--grpc", "0.0.0.0:0", "--http", "127.0.0.1:0"],
            "--grpc",
            "0.0.0.0:0",
        ),
        (
            ["--grpc", "127.0.0.1:0", "--http", "[::]:0"],
            "--http",
            "[::]:0",
        ),
        (
            ["--grpc", "127.0.0.1:0", "--http", "192.0.2.1:0"],
            "--http",
            "192.0.2.1:0",
        ),
    ] {
        let (status, stderr) = dev_with_closed_stdout(&args, &[]);
        assert_eq!(status, Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("{flag} {addr} is not a loopback address"))
                && stderr.contains("--allow-remote"),
            "{args:?}: {stderr}"
        );
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    }
    // --require-token alone does not open it to other machines.
    let (status, stderr) = dev_with_closed_stdout(
        &["--grpc", "0.0.0.0:0", "--require-token"],
        &[("LS_ACCESS_TOKEN", "t0ken")],
    );
    assert_eq!(status, Some(2), "{stderr}");
    assert!(stderr.contains("--grpc 0.0.0.0:0"), "{stderr}");
    // --allow-remote without a token is refused, whatever the addresses.
    let (status, stderr) = dev_with_closed_stdout(
        &[
            "--allow-remote",
            "--grpc",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
        ],
        &[],
    );
    assert_eq!(status, Some(2), "{stderr}");
    assert!(
        stderr.contains("--allow-remote needs --require-token"),
        "{stderr}"
    );
    // With both it starts (here on loopback), and warns that without TLS the token travels in
    // clear.
    let (status, stderr) = dev_with_closed_stdout(
        &[
            "--allow-remote",
            "--require-token",
            "--grpc",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
        ],
        &[("LS_ACCESS_TOKEN", "t0ken")],
    );
    assert_eq!(
        status,
        Some(0),
        "started, then stopped with its output: {stderr}"
    );
    assert!(
        stderr.contains("warning: --allow-remote without --tls-cert and --tls-key"),
        "{stderr}"
    );
    // A certificate without its key is an argument error.
    let (status, stderr) = dev_with_closed_stdout(&["--tls-cert", "cert.pem"], &[]);
    assert_eq!(status, Some(2), "{stderr}");
    assert!(stderr.contains("--tls-key"), "{stderr}");
}

/// A CA and a certificate for 127.0.0.1 made now, written to `dir`: (CA, certificate, key).
fn test_certificate(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca_cert, &ca_key)
        .unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&paths.0, ca_cert.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

/// `--tls-cert` and `--tls-key` serve TLS on both listeners: the project's exporter, trusting
/// the CA the certificate was made with, exports over gRPC and HTTP, and both traces are
/// printed. A key that is not one is refused naming the files.
#[test]
fn tls_exports_reach_dev_with_a_certificate_made_now() {
    use lightstep::config::{EnvSnapshot, LightstepConfig, Protocol};
    use lightstep::opentelemetry::trace::Tracer as _;

    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_certificate(dir.path());
    let mut dev = Dev::start(
        &[
            "--idle",
            "200ms",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[],
    );
    let Listening { grpc, http } = dev.listening();
    assert!(grpc.starts_with("https://127.0.0.1:"), "{grpc}");
    assert!(http.starts_with("https://127.0.0.1:"), "{http}");

    // The gRPC exporter is built on a Tokio runtime; it is shut down from this thread.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for (protocol, endpoint) in [(Protocol::Grpc, &grpc), (Protocol::HttpProtobuf, &http)] {
        let builder = LightstepConfig::builder()
            .with_env(EnvSnapshot::empty())
            .with_protocol(protocol)
            .with_service_name("dev-tls")
            .with_ca_file(&ca)
            .with_scheduled_delay(Duration::from_millis(50));
        let builder = if protocol.is_http() {
            builder.with_traces_endpoint(endpoint.as_str())
        } else {
            builder.with_otlp_endpoint(endpoint.as_str())
        };
        let exporter = {
            let _entered = runtime.enter();
            lightstep::LightstepExporter::new(builder.build().unwrap()).unwrap()
        };
        let name = format!("over TLS {protocol:?}");
        exporter.tracer().in_span(name.clone(), |_| {});
        exporter.shutdown_blocking().expect("delivered over TLS");
        dev.wait_for(|l| l.contains(&name));
    }
    dev.stop();

    // The certificate given as the key: refused, naming both files.
    let (status, stderr) = dev_with_closed_stdout(
        &[
            "--grpc",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            cert.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(status, Some(1), "{stderr}");
    assert!(
        stderr.contains("--tls-key")
            && stderr.contains("cert.pem")
            && stderr.contains("private key"),
        "{stderr}"
    );
}

/// `GET path` on `base` (`http://127.0.0.1:PORT/`) over HTTP/1.1; the status line and the body.
fn http_get(base: &str, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let authority = base
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut stream = std::net::TcpStream::connect(&authority).unwrap();
    stream.set_read_timeout(Some(GUARD)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: {authority}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}

#[test]
fn dev_serves_the_explorer_with_each_trace_it_prints() {
    let span = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"explored"}}]},"scopeSpans":[{"scope":{"name":"t"},"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"GET /explored","kind":2,"startTimeUnixNano":"1000000000","endTimeUnixNano":"2000000000","attributes":[{"key":"http.route","value":{"stringValue":"/explored"}}]}]}]}]}"#;
    let mut dev = Dev::start(&["--idle", "200ms", "--ui", "127.0.0.1:0"], &[]);
    let Listening { http, .. } = dev.listening();
    let line = dev.wait_for(|l| l.starts_with("lightstep dev: the trace explorer is at "));
    let url = line
        .trim_start_matches("lightstep dev: the trace explorer is at ")
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let (status, _) = http_get(&url, "/api/traces/5b8efff798038103d269b633813fc60c");
    assert!(
        status.contains(" 404 "),
        "not there before it arrives: {status}"
    );

    assert!(post_json(&http, None, span).contains(" 200 "));
    dev.wait_for(|l| l.contains("GET /explored"));
    let (status, body) = http_get(&url, "/api/traces/5b8efff798038103d269b633813fc60c");
    assert!(status.contains(" 200 "), "{status}: {body}");
    assert!(
        body.contains("GET /explored") && body.contains("http.route"),
        "{body}"
    );
    dev.stop();

    // Only loopback, even when exports may come from other machines.
    let out = Command::new(BIN)
        .args(["dev", "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .args(["--ui", "0.0.0.0:0"])
        .env_clear()
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--ui 0.0.0.0:0 is not a loopback address"),
        "{stderr}"
    );

    // --no-ui: no explorer, and no line about it.
    let mut dev = Dev::start(&["--no-ui"], &[]);
    dev.wait_for(|l| l.starts_with("a trace is printed once"));
    assert!(!dev.seen.join("\n").contains("explorer"), "{:?}", dev.seen);
}
