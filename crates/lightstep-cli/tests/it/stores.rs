//! `lightstep analyze --jaeger/--tempo/--zipkin`: the real binary against stand-in stores on
//! 127.0.0.1 that serve the repository's fixtures in each API's shape. What it prints for a
//! trace fetched from a store is what it prints for the same trace read from its file, in
//! every output format and with --aggregate.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::{fixture, json, lightstep, stderr};

/// A request as a stand-in saw it.
#[derive(Clone, Debug)]
pub(crate) struct Request {
    pub(crate) target: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A stand-in store on 127.0.0.1: one thread per connection, one answer per connection.
pub(crate) struct StandIn {
    pub(crate) url: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl StandIn {
    pub(crate) fn start(
        answer: impl Fn(&Request) -> (u16, &'static str, Vec<u8>) + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        let answer = Arc::new(answer);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let seen = Arc::clone(&seen);
                let answer = Arc::clone(&answer);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() {
                        return;
                    }
                    let target = line.split(' ').nth(1).unwrap_or_default().to_owned();
                    let mut headers = Vec::new();
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
                            break;
                        }
                        if let Some((name, value)) = header.trim_end().split_once(':') {
                            headers.push((name.to_owned(), value.trim().to_owned()));
                        }
                    }
                    let request = Request { target, headers };
                    seen.lock().unwrap().push(request.clone());
                    let (status, content_type, body) = answer(&request);
                    let head = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes());
                    let _ = stream.write_all(&body);
                    let _ = stream.flush();
                    // Let the client read everything before the connection goes.
                    let _ = stream.shutdown(std::net::Shutdown::Write);
                    let _ = reader.read_to_end(&mut Vec::new());
                });
            }
        });
        Self { url, requests }
    }

    pub(crate) fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

fn load(relative: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixture(relative)).unwrap()).unwrap()
}

const COMPOSE_POST: &str = "deathstarbench/socialnetwork-compose-post.json";

/// Jaeger's v1 API over DeathStarBench's traces: by id, and a search by service that answers
/// the first `limit` traces.
pub(crate) fn jaeger_standin() -> StandIn {
    let traces = load(COMPOSE_POST)["data"].as_array().unwrap().clone();
    StandIn::start(move |request| {
        let (path, query) = request
            .target
            .split_once('?')
            .unwrap_or((&request.target, ""));
        if let Some(id) = path.strip_prefix("/api/traces/") {
            return match traces.iter().find(|t| t["traceID"] == id) {
                Some(trace) => (
                    200,
                    "application/json",
                    json!({ "data": [trace] }).to_string().into_bytes(),
                ),
                None => (
                    404,
                    "application/json",
                    br#"{"data":null,"errors":[{"code":404,"msg":"trace not found"}]}"#.to_vec(),
                ),
            };
        }
        if path == "/api/traces" {
            let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
            let limit: usize = params
                .iter()
                .find(|(k, _)| k == "limit")
                .map_or(20, |(_, v)| v.parse().unwrap());
            let found: Vec<&Value> = traces.iter().take(limit).collect();
            return (
                200,
                "application/json",
                json!({ "data": found }).to_string().into_bytes(),
            );
        }
        (404, "text/plain", b"404 page not found".to_vec())
    })
}

pub(crate) fn trace_ids(file: &str) -> Vec<String> {
    let doc = json(&lightstep(&["analyze", "--format", "json", &fixture(file)]));
    doc["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["trace_id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn jaeger_traces_by_id_print_as_from_their_file_in_every_format() {
    let standin = jaeger_standin();
    let ids = trace_ids(COMPOSE_POST);
    let file = fixture(COMPOSE_POST);
    for format in ["json", "text", "svg"] {
        let mut from_file = vec!["analyze", "--format", format, &file];
        let mut from_store = vec!["analyze", "--format", format, "--jaeger", &standin.url];
        for id in &ids[3..6] {
            from_file.extend(["--trace-id", id]);
            from_store.extend(["--trace-id", id]);
        }
        let expected = lightstep(&from_file);
        let got = lightstep(&from_store);
        assert!(got.status.success(), "{format}: {}", stderr(&got));
        assert!(expected.status.success(), "{format}: {}", stderr(&expected));
        assert_eq!(
            String::from_utf8_lossy(&got.stdout),
            String::from_utf8_lossy(&expected.stdout),
            "{format}"
        );
        if format == "json" {
            assert_eq!(json(&got)["traces"].as_array().unwrap().len(), 3);
        }
    }
    let requests = standin.requests();
    assert!(
        requests
            .iter()
            .all(|r| r.target.starts_with("/api/traces/"))
    );
}

#[test]
fn a_jaeger_search_aggregates_as_the_same_traces_from_the_file() {
    let standin = jaeger_standin();
    let ids = trace_ids(COMPOSE_POST);
    let file = fixture(COMPOSE_POST);
    for format in ["json", "text"] {
        let mut from_file = vec!["analyze", "--aggregate", "--format", format, &file];
        for id in &ids[..5] {
            from_file.extend(["--trace-id", id]);
        }
        let expected = lightstep(&from_file);
        let got = lightstep(&[
            "analyze",
            "--aggregate",
            "--format",
            format,
            "--jaeger",
            &standin.url,
            "--service",
            "compose-post-service",
            "--operation",
            "compose_post_server",
            "--tag",
            "http.status_code=200",
            "--min-duration",
            "1ms",
            "--lookback",
            "2h",
            "--limit",
            "5",
        ]);
        assert!(got.status.success(), "{}", stderr(&got));
        assert_eq!(
            String::from_utf8_lossy(&got.stdout),
            String::from_utf8_lossy(&expected.stdout),
            "{format}"
        );
    }
    let search = standin.requests()[0].target.clone();
    for part in [
        "/api/traces?",
        "service=compose-post-service",
        "operation=compose_post_server",
        "tags=%7B%22http.status_code%22%3A%22200%22%7D",
        "minDuration=1000000ns",
        "limit=5",
    ] {
        assert!(search.contains(part), "{part} in {search}");
    }
}

#[test]
fn zipkin_and_tempo_traces_print_as_from_their_files() {
    let spans = load("zipkin/yelp.json");
    let zipkin = StandIn::start(move |request| {
        if request.target.starts_with("/api/v2/trace/") {
            (200, "application/json", spans.to_string().into_bytes())
        } else {
            (404, "text/plain", b"Not Found".to_vec())
        }
    });
    let zipkin_id = &trace_ids("zipkin/yelp.json")[0];
    let expected = lightstep(&["analyze", &fixture("zipkin/yelp.json")]);
    let got = lightstep(&["analyze", "--zipkin", &zipkin.url, "--trace-id", zipkin_id]);
    assert!(got.status.success(), "{}", stderr(&got));
    assert_eq!(got.stdout, expected.stdout);

    // Tempo answering in JSON, as jsonpb writes it: `batches`, ids in base64.
    let otlp = "otlp/jaeger-fixture-example_trace.json";
    let doc = load(otlp);
    let tempo = StandIn::start(move |request| {
        if request.header("x-scope-orgid") != Some("team-a") {
            return (401, "text/plain", b"no org id".to_vec());
        }
        let mut batches = doc["resourceSpans"].clone();
        to_base64_ids(&mut batches);
        (
            200,
            "application/json",
            json!({ "batches": batches }).to_string().into_bytes(),
        )
    });
    let tempo_id = &trace_ids(otlp)[0];
    let expected = lightstep(&["analyze", "--format", "json", &fixture(otlp)]);
    let got = lightstep(&[
        "analyze",
        "--format",
        "json",
        "--tempo",
        &tempo.url,
        "--tenant",
        "team-a",
        "--trace-id",
        tempo_id,
    ]);
    assert!(got.status.success(), "{}", stderr(&got));
    assert_eq!(json(&got), json(&expected));
    let request = &tempo.requests()[0];
    assert_eq!(request.target, format!("/api/traces/{tempo_id}"));
    assert_eq!(request.header("accept"), Some("application/protobuf"));
}

fn to_base64_ids(value: &mut Value) {
    use base64::Engine as _;
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                match (key.as_str(), inner.as_str()) {
                    ("traceId" | "spanId" | "parentSpanId", Some(hex)) if !hex.is_empty() => {
                        let bytes: Vec<u8> = (0..hex.len() / 2)
                            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
                            .collect();
                        *inner =
                            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
                    }
                    _ => to_base64_ids(inner),
                }
            }
        }
        Value::Array(list) => list.iter_mut().for_each(to_base64_ids),
        _ => {}
    }
}

#[test]
fn store_failures_are_one_line_with_the_right_status_and_no_secret() {
    let standin = jaeger_standin();
    // An unknown trace id: exit 1, the store's words.
    let output = lightstep(&[
        "analyze",
        "--jaeger",
        &standin.url,
        "--trace-id",
        "abcdef0123",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(
        message.starts_with("lightstep: jaeger: trace abcdef0123 not found (http://127.0.0.1:"),
        "{message}"
    );
    assert!(
        message
            .trim_end()
            .ends_with("answered 404): trace not found"),
        "{message}"
    );

    // A refusal that echoes the credentials: they are not printed.
    let echo = StandIn::start(|request| {
        let auth = request
            .header("authorization")
            .unwrap_or_default()
            .to_owned();
        (
            401,
            "text/plain",
            format!("token {auth} refused").into_bytes(),
        )
    });
    let output = lightstep(&[
        "analyze",
        "--zipkin",
        &echo.url,
        "--header",
        "Authorization: Bearer s3cret-t0ken",
        "--trace-id",
        "abc",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(!message.contains("s3cret"), "{message}");
    assert!(message.contains("401: access denied"), "{message}");
    assert_eq!(
        echo.requests()[0].header("authorization"),
        Some("Bearer s3cret-t0ken")
    );

    // Secrets in plaintext to a host that is not loopback: refused before any request, exit 2.
    let output = lightstep(&[
        "analyze",
        "--tempo",
        "http://tempo.example.com:3200",
        "--header",
        "X-Api-Key: s3cret",
        "--trace-id",
        "abc",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains(
            "the value of header `x-api-key` would travel in plaintext to `tempo.example.com`"
        ),
        "{message}"
    );
    assert!(!message.contains("s3cret"), "{message}");
    // With --insecure it is allowed: the request is made (and fails here, in its own way).
    let output = lightstep(&[
        "analyze",
        "--tempo",
        "http://127.0.0.1:1",
        "--header",
        "X-Api-Key: s3cret",
        "--insecure",
        "--timeout",
        "2s",
        "--trace-id",
        "abc",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("tempo: cannot reach http://127.0.0.1:1/api/traces/abc"));

    // A header that is not `Name: value`: exit 2, and its text is not repeated.
    let output = lightstep(&[
        "analyze",
        "--jaeger",
        &standin.url,
        "--header",
        "s3cret",
        "--trace-id",
        "abc",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("--header number 1 is not `Name: value`"),
        "{message}"
    );
    assert!(!message.contains("s3cret"), "{message}");

    // A trace id that is not hex, and a Jaeger search without a service: exit 2.
    let output = lightstep(&["analyze", "--jaeger", &standin.url, "--trace-id", "../x"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let output = lightstep(&["analyze", "--jaeger", &standin.url]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("Jaeger searches within one service"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn store_flags_are_checked_against_each_other() {
    let file = fixture("zipkin/yelp.json");
    for args in [
        // Files and a store, or two stores.
        &["analyze", &file, "--zipkin", "http://127.0.0.1:9411"][..],
        &[
            "analyze",
            "--zipkin",
            "http://127.0.0.1:9411",
            "--jaeger",
            "http://127.0.0.1:16686",
        ],
        // Store settings or a search without a store.
        &["analyze", &file, "--service", "web"],
        &["analyze", &file, "--header", "A: b"],
        // A search and ids at once; TraceQL for another store than Tempo.
        &[
            "analyze",
            "--zipkin",
            "http://127.0.0.1:9411",
            "--trace-id",
            "ab",
            "--service",
            "web",
        ],
        &[
            "analyze",
            "--zipkin",
            "http://127.0.0.1:9411",
            "--traceql",
            "{}",
        ],
        &[
            "analyze",
            "--zipkin",
            "http://127.0.0.1:9411",
            "--since",
            "yesterday",
        ],
    ] {
        let output = lightstep(args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert_eq!(stderr(&output).trim_end().lines().count(), 1, "{args:?}");
    }
    let help = lightstep(&["analyze", "--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--jaeger",
        "--tempo",
        "--zipkin",
        "--header",
        "--ca-file",
        "--timeout",
        "--insecure",
        "--lookback",
    ] {
        assert!(text.contains(flag), "{flag}");
    }
}

/// The proxy comes from `--proxy`, or from the variable of the store's scheme, with `NO_PROXY`
/// and loopback reached directly. No proxy listens at the addresses given: an error through
/// a proxy names it (without its credentials), one made directly does not.
#[test]
fn stores_are_reached_through_the_proxy_the_flags_or_the_environment_name() {
    const VARS: [&str; 6] = [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "NO_PROXY",
        "no_proxy",
    ];
    let run = |store: &str, vars: &[(&str, &str)], flags: &[&str]| {
        let mut command = std::process::Command::new(crate::BIN);
        command
            .args([
                "analyze",
                "--jaeger",
                store,
                "--trace-id",
                "abc",
                "--timeout",
                "5s",
            ])
            .args(flags);
        for var in VARS {
            command.env_remove(var);
        }
        let output = command.envs(vars.iter().copied()).output().unwrap();
        let message = stderr(&output);
        assert!(!message.contains("pr0xy-pw"), "{message}");
        (output.status.code(), message)
    };
    let through = |message: &str, proxy: &str| {
        message.contains(&format!("through the proxy http://{proxy}:"))
            || message.contains(&format!("through the proxy http://{proxy}/"))
    };
    let proxy = "http://user:pr0xy-pw@127.0.0.1:9";

    let (code, message) = run("http://store.test:9", &[("HTTP_PROXY", proxy)], &[]);
    assert_eq!(code, Some(1), "{message}");
    assert!(through(&message, "127.0.0.1"), "{message}");
    let (_, message) = run("https://store.test:9", &[("https_proxy", proxy)], &[]);
    assert!(through(&message, "127.0.0.1"), "{message}");
    // The variable of the other scheme is not used.
    let (_, message) = run("http://store.test:9", &[("HTTPS_PROXY", proxy)], &[]);
    assert!(!message.contains("through the proxy"), "{message}");
    // NO_PROXY, and a loopback store, are reached directly.
    let (_, message) = run(
        "http://store.test:9",
        &[
            ("HTTP_PROXY", proxy),
            ("NO_PROXY", "example.com,store.test"),
        ],
        &[],
    );
    assert!(!message.contains("through the proxy"), "{message}");
    let (_, message) = run("http://127.0.0.1:9", &[("HTTP_PROXY", proxy)], &[]);
    assert!(!message.contains("through the proxy"), "{message}");
    // --proxy wins over the environment.
    let (_, message) = run(
        "http://store.test:9",
        &[("HTTP_PROXY", proxy)],
        &["--proxy", "127.0.0.2:9"],
    );
    assert!(through(&message, "127.0.0.2"), "{message}");
    // A proxy that is not http:// is refused before any request.
    let (code, message) = run(
        "https://store.test:9",
        &[],
        &["--proxy", "socks5://user:pr0xy-pw@127.0.0.1:9"],
    );
    assert_eq!(code, Some(2), "{message}");
    assert!(message.contains("only an http:// proxy"), "{message}");
}
