//! Every way a store can fail, against stand-ins that fail that way: each error names the
//! store, the URL without secrets, the status and what the server said (cleaned), and
//! nothing hangs or panics.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use lightstep_query::{Error, Jaeger, Search, Tempo, TraceSource, Zipkin};

use crate::fixtures;
use crate::standin::{Body, Recorded, Reply, StandIn};

const ID: &str = "0af7651916cd43dd8448eb211c80319c";

fn jaeger(standin: &StandIn) -> Jaeger {
    Jaeger::builder(standin.url())
        .with_timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_trace_id_is_not_found_in_every_store() {
    let jaeger_standin = StandIn::start(fixtures::jaeger_api()).await;
    let tempo_standin = StandIn::start(fixtures::tempo_api(Default::default())).await;
    let zipkin_standin = StandIn::start(fixtures::zipkin_api()).await;
    let errors = [
        jaeger(&jaeger_standin).fetch(ID).await.unwrap_err(),
        Tempo::builder(tempo_standin.url())
            .build()
            .unwrap()
            .fetch(ID)
            .await
            .unwrap_err(),
        Zipkin::builder(zipkin_standin.url())
            .build()
            .unwrap()
            .fetch(ID)
            .await
            .unwrap_err(),
    ];
    for (err, store) in errors.iter().zip(["jaeger", "tempo", "zipkin"]) {
        assert!(
            matches!(err, Error::TraceNotFound { trace_id, .. } if trace_id == ID),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("{store}: trace {ID} not found (http://127.0.0.1:")),
            "{text}"
        );
    }
    assert!(
        errors[0]
            .to_string()
            .ends_with("answered 404): trace not found"),
        "{}",
        errors[0]
    );
    assert!(
        errors[2]
            .to_string()
            .ends_with(&format!("answered 404): {ID} not found")),
        "{}",
        errors[2]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_say_so_with_the_servers_words() {
    for status in [401, 403] {
        let standin = StandIn::start(move |_: &Recorded| {
            Reply::json(status, r#"{"message":"invalid API key"}"#)
        })
        .await;
        let err = jaeger(&standin).fetch(ID).await.unwrap_err();
        assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
        assert_eq!(err.status(), Some(status));
        let text = err.to_string();
        assert!(
            text.contains(&format!("/api/traces/{ID}: {status}: access denied")),
            "{text}"
        );
        assert!(text.ends_with(": invalid API key"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_retried_after_retry_after_within_the_timeout() {
    for retry_after in ["1", "date"] {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let api = fixtures::zipkin_api();
        let standin = StandIn::start(move |request: &Recorded| {
            if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                let value = if retry_after == "date" {
                    httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2))
                } else {
                    retry_after.to_owned()
                };
                Reply::text(429, "slow down").with_header("retry-after", value)
            } else {
                api(request)
            }
        })
        .await;
        let zipkin = Zipkin::builder(standin.url())
            .with_timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let id = &fixtures::zipkin_traces()[0].0;
        let started = Instant::now();
        let trace = zipkin.fetch(id).await.unwrap();
        assert!(!trace.spans.is_empty());
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // It waited as asked (an HTTP-date has a one-second resolution).
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "{:?}",
            started.elapsed()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_asking_past_the_timeout_is_reported_with_its_retry_after() {
    // An HTTP-date has whole seconds, and on a loaded machine seconds pass between writing it
    // and reading it back: its range is wider.
    for (value, lowest, highest) in [
        ("120".to_owned(), 120, 122),
        (
            httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(90)),
            80,
            91,
        ),
    ] {
        let standin = StandIn::start(move |_: &Recorded| {
            Reply::text(429, "rate limit exceeded").with_header("retry-after", value.clone())
        })
        .await;
        let started = Instant::now();
        let err = jaeger(&standin).fetch(ID).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5), "it waited");
        let Error::RateLimited { retry_after, .. } = &err else {
            panic!("{err:?}")
        };
        let retry_after = retry_after.unwrap();
        assert!(
            (Duration::from_secs(lowest)..=Duration::from_secs(highest)).contains(&retry_after),
            "{retry_after:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains(": 429 too many requests (the server asked to retry after"),
            "{text}"
        );
        assert!(text.ends_with(": rate limit exceeded"), "{text}");
        assert_eq!(standin.requests().len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_names_the_status_and_what_the_server_said_without_control_characters() {
    let standin = StandIn::start(|_: &Recorded| {
        Reply::text(500, "storage \u{1b}[31mdown\u{1b}[0m\r\nretry later")
    })
    .await;
    let err = jaeger(&standin).fetch(ID).await.unwrap_err();
    assert_eq!(err.status(), Some(500));
    let text = err.to_string();
    assert!(!text.chars().any(char::is_control), "{text:?}");
    assert!(
        text.contains("status 500: storage \\u{1b}[31mdown"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_cut_half_way_is_an_error_not_a_short_trace() {
    let full = serde_json::json!({"data": [fixtures::jaeger_traces()[0].1]}).to_string();
    let half = full.as_bytes()[..full.len() / 2].to_vec();
    let declared = full.len();
    let standin = StandIn::start(move |_: &Recorded| Reply {
        status: 200,
        headers: vec![("content-type", "application/json".into())],
        body: Body::Cut {
            sent: half.clone(),
            declared,
        },
        delay: None,
    })
    .await;
    let err = jaeger(&standin).fetch(ID).await.unwrap_err();
    assert!(matches!(err, Error::Body { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("the answer broke off after"), "{text}");

    // A search streamed trace by trace fails the same way, after the traces that were whole.
    let search = jaeger(&standin).search(&Search::new().with_service("x"));
    let outcomes: Vec<_> = futures_collect(search).await;
    assert!(
        matches!(outcomes.last(), Some(Err(Error::Body { .. }))),
        "{outcomes:?}"
    );
}

async fn futures_collect(
    mut traces: lightstep_query::Traces,
) -> Vec<Result<lightstep_query::Trace, Error>> {
    let mut out = Vec::new();
    while let Some(item) = traces.next().await {
        out.push(item);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_or_stalls_times_out() {
    let never = StandIn::start(|_: &Recorded| Reply::never()).await;
    let started = Instant::now();
    let err = jaeger(&never).fetch(ID).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(err.to_string().ends_with("no answer within 500ms"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));

    let stalled = StandIn::start(|_: &Recorded| Reply {
        status: 200,
        headers: vec![("content-type", "application/json".into())],
        body: Body::Stalled(br#"{"data":[{"traceID":"#.to_vec()),
        delay: None,
    })
    .await;
    let err = jaeger(&stalled).fetch(ID).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    let search = jaeger(&stalled).search(&Search::new().with_service("x"));
    let outcomes = futures_collect(search).await;
    assert!(
        matches!(outcomes.last(), Some(Err(Error::Timeout { .. }))),
        "{outcomes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_body_is_reported_with_its_position() {
    let standin = StandIn::start(|request: &Recorded| {
        if request.path.starts_with("/api/v2/trace/") {
            Reply::json(200, "[{\"traceId\": \"a\",\n \"id\": 7, \"timestamp\": }]")
        } else {
            Reply::protobuf(vec![0x0a, 0x05, 0x12, 0x10])
        }
    })
    .await;
    let err = Zipkin::builder(standin.url())
        .build()
        .unwrap()
        .fetch(ID)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Malformed { .. }), "{err:?}");
    assert!(
        text.contains("malformed answer at line 2, column "),
        "{text}"
    );

    let err = Tempo::builder(standin.url())
        .build()
        .unwrap()
        .fetch(ID)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("malformed answer at byte "), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_store_says_so() {
    // A port that was just free: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let jaeger = Jaeger::builder(format!("http://127.0.0.1:{port}"))
        .build()
        .unwrap();
    let err = jaeger.fetch(ID).await.unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "jaeger: cannot reach http://127.0.0.1:{port}/api/traces/{ID}: "
        )),
        "{text}"
    );
    assert!(text.to_lowercase().contains("refused"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_values_never_appear_in_errors_or_debug_even_when_echoed() {
    let standin = StandIn::start(|request: &Recorded| {
        let auth = request
            .header("authorization")
            .unwrap_or_default()
            .to_owned();
        let key = request.header("x-api-key").unwrap_or_default().to_owned();
        Reply::text(401, format!("bad credentials: {auth} / {key}"))
    })
    .await;
    let jaeger = Jaeger::builder(format!("{}/?api_key=query-s3cret", standin.url()))
        .with_bearer_token("t0ken-s3cret")
        .with_header("X-Api-Key", "key-s3cret")
        .build()
        .unwrap();
    let err = jaeger.fetch(ID).await.unwrap_err();
    let request = &standin.requests()[0];
    assert_eq!(request.header("authorization"), Some("Bearer t0ken-s3cret"));
    assert_eq!(request.header("x-api-key"), Some("key-s3cret"));
    assert_eq!(request.param("api_key"), Some("query-s3cret"));
    for shown in [
        err.to_string(),
        format!("{err:?}"),
        format!("{jaeger:?}"),
        jaeger.name(),
    ] {
        assert!(!shown.contains("s3cret"), "{shown}");
    }
    assert!(err.to_string().contains("api_key=[REDACTED]"), "{err}");
    assert!(
        err.to_string()
            .contains("bad credentials: [REDACTED] / [REDACTED]"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_in_plaintext_to_a_remote_host_are_refused_unless_allowed() {
    let err = Tempo::builder("http://tempo.example.com:3200")
        .with_tenant("team-a")
        .with_bearer_token("t0ken")
        .build()
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::PlaintextSecrets { .. }), "{err:?}");
    assert_eq!(
        text,
        "tempo: the values of headers `x-scope-orgid`, `authorization` would travel in plaintext to `tempo.example.com`: use an https URL, or allow it explicitly (`with_insecure(true)`, `--insecure`)"
    );
    assert!(!text.contains("t0ken") && !text.contains("team-a"));
    let err = Zipkin::builder("http://zipkin.example.com?key=abc")
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("the base URL's query values"),
        "{err}"
    );
    // Allowed explicitly, to loopback, over TLS, or with nothing secret: built.
    Tempo::builder("http://tempo.example.com:3200")
        .with_tenant("team-a")
        .with_insecure(true)
        .build()
        .unwrap();
    for url in [
        "http://127.0.0.2:3200",
        "http://localhost:3200",
        "http://[::1]:3200",
        "https://tempo.example.com",
    ] {
        Tempo::builder(url).with_tenant("team-a").build().unwrap();
    }
    Tempo::builder("http://tempo.example.com:3200")
        .build()
        .unwrap();
    let err = Tempo::builder("http://tempo.localhost:3200")
        .with_tenant("team-a")
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::PlaintextSecrets { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_and_ids_are_refused_before_any_request() {
    let standin = StandIn::start(fixtures::jaeger_api()).await;
    let jaeger = jaeger(&standin);
    let err = jaeger.fetch("../../admin").await.unwrap_err();
    assert!(matches!(err, Error::InvalidTraceId { .. }), "{err:?}");
    assert!(standin.requests().is_empty());
    let err = Jaeger::builder("https://user:pass@jaeger.example.com")
        .build()
        .unwrap_err();
    assert!(!err.to_string().contains("pass"), "{err}");
    assert!(err.to_string().contains("without credentials"), "{err}");
    let err = Jaeger::builder("ftp://jaeger.example.com")
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err:?}");
    let err = Jaeger::builder(standin.url())
        .with_header("bad header", "x")
        .build()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("invalid header `bad header` (value hidden)"),
        "{err}"
    );
    let err = Jaeger::builder(standin.url())
        .with_header("x-key", "line\nbreak")
        .build()
        .unwrap_err();
    assert!(!err.to_string().contains("break"), "{err}");
    let err = Jaeger::builder(standin.url())
        .with_concurrency(0)
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("concurrency must be at least 1"),
        "{err}"
    );
    let missing = std::env::temp_dir().join("lightstep-query-no-such-ca.pem");
    let err = Jaeger::builder(standin.url())
        .with_ca_file(&missing)
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::CaFile { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_larger_than_the_limit_is_refused_by_id_and_in_a_search() {
    let standin = StandIn::start(fixtures::jaeger_api()).await;
    let small = Jaeger::builder(standin.url())
        .with_max_trace_bytes(10_000)
        .build()
        .unwrap();
    // DeathStarBench traces are about 180 kB each.
    let id = &fixtures::jaeger_traces()[0].0;
    let err = small.fetch(id).await.unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("the trace is larger than 10000 bytes"),
        "{err}"
    );
    let search = small.search(&Search::new().with_service("compose-post-service"));
    let outcomes = futures_collect(search).await;
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    let err = outcomes.into_iter().next().unwrap().unwrap_err();
    assert!(
        err.to_string()
            .contains("one trace of the answer is larger than 10000 bytes"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_route_or_a_redirect_says_what_is_likely_wrong() {
    let standin = StandIn::start(|request: &Recorded| {
        if request.path.starts_with("/api/traces/") {
            Reply::text(301, "").with_header("location", "https://jaeger.example.com/")
        } else {
            Reply::text(404, "404 page not found\n")
        }
    })
    .await;
    // Jaeger's v1 search is gone from the newest Jaeger.
    let v1 = jaeger(&standin).search(&Search::new().with_service("web"));
    let err = futures_collect(v1)
        .await
        .pop()
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(err.contains("status 404: 404 page not found"), "{err}");
    assert!(
        err.contains("use the v3 API (JaegerApi::V3, --jaeger-api v3)"),
        "{err}"
    );
    // The v3 search does not exist before Jaeger 2.19.
    let v3 = Jaeger::builder(standin.url())
        .with_api(lightstep_query::JaegerApi::V3)
        .build()
        .unwrap()
        .search(&Search::new());
    let err = futures_collect(v3)
        .await
        .pop()
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("trace-summaries needs Jaeger 2.19 or later"),
        "{err}"
    );
    // A redirect is not followed: it would take the headers elsewhere.
    let err = jaeger(&standin).fetch(ID).await.unwrap_err().to_string();
    assert!(
        err.contains("status 301 (redirects are not followed"),
        "{err}"
    );
    assert_eq!(standin.requests().len(), 3);
}
