//! Each store against its stand-in: every fixture trace fetched by id analyzes exactly as the
//! same trace read from its file, searches send the documented parameters and stream their
//! traces, and the headers a store needs arrive.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use lightstep_analysis::{CriticalPathAnalysis, Options, analyze_critical_path};
use lightstep_query::{
    Jaeger, JaegerApi, LightstepPerformance, Search, Tempo, TempoApi, TraceSource, TraceStore,
    Zipkin,
};

use crate::fixtures::{self, JAEGER_FILES, OTLP_FILES, TempoOptions, ZIPKIN_FILES, file_analyses};
use crate::standin::StandIn;

/// Fetches every id through `source` and compares each analysis with the file's.
async fn assert_fetched_equal_files(
    source: &impl TraceSource,
    expected: &BTreeMap<String, CriticalPathAnalysis>,
    ids: &[String],
) {
    assert!(!ids.is_empty());
    for id in ids {
        let trace = source
            .fetch(id)
            .await
            .unwrap_or_else(|e| panic!("{}: {id}: {e}", source.name()));
        let analysis = analyze_critical_path(&trace, &Options::default());
        let from_file = expected
            .get(&analysis.trace_id)
            .unwrap_or_else(|| panic!("{id}: no file trace {}", analysis.trace_id));
        assert_eq!(&analysis, from_file, "{}: trace {id}", source.name());
    }
}

fn ids(traces: &[(String, serde_json::Value)]) -> Vec<String> {
    traces.iter().map(|(id, _)| id.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jaeger_v1_traces_by_id_analyze_as_their_files() {
    let standin = StandIn::start(fixtures::jaeger_api()).await;
    let jaeger = Jaeger::builder(standin.url()).build().unwrap();
    let expected = file_analyses(JAEGER_FILES);
    assert_fetched_equal_files(&jaeger, &expected, &ids(&fixtures::jaeger_traces())).await;
    let request = &standin.requests()[0];
    assert!(request.path.starts_with("/api/traces/"), "{request:?}");
    assert_eq!(request.header("accept"), Some("application/json"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jaeger_v3_traces_by_id_analyze_as_their_files() {
    let standin = StandIn::start(fixtures::jaeger_api()).await;
    let jaeger = Jaeger::builder(standin.url())
        .with_api(JaegerApi::V3)
        .build()
        .unwrap();
    let expected = file_analyses(OTLP_FILES);
    assert_fetched_equal_files(&jaeger, &expected, &ids(&fixtures::otlp_traces())).await;
    assert!(standin.requests()[0].path.starts_with("/api/v3/traces/"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jaeger_v1_search_streams_the_services_traces_with_the_documented_parameters() {
    let standin = StandIn::start(fixtures::jaeger_api()).await;
    let jaeger = Jaeger::builder(standin.url()).build().unwrap();
    let expected = file_analyses(JAEGER_FILES);
    let until = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let search = Search::new()
        .with_service("compose-post-service")
        .with_operation("compose_post_server")
        .with_tag("error", "true")
        .with_min_duration(Duration::from_millis(5))
        .with_max_duration(Duration::from_secs(2))
        .with_until(until)
        .with_lookback(Duration::from_secs(600))
        .with_limit(7);
    let mut traces = jaeger.search(&search);
    let mut seen = 0;
    while let Some(trace) = traces.next().await {
        let analysis = analyze_critical_path(&trace.unwrap(), &Options::default());
        assert_eq!(Some(&analysis), expected.get(&analysis.trace_id));
        seen += 1;
    }
    assert_eq!(seen, 7);
    let request = &standin.requests()[0];
    assert_eq!(request.path, "/api/traces");
    assert_eq!(request.param("service"), Some("compose-post-service"));
    assert_eq!(request.param("operation"), Some("compose_post_server"));
    assert_eq!(request.param("tags"), Some(r#"{"error":"true"}"#));
    assert_eq!(request.param("minDuration"), Some("5000000ns"));
    assert_eq!(request.param("maxDuration"), Some("2000000000ns"));
    assert_eq!(request.param("limit"), Some("7"));
    assert_eq!(request.param("end"), Some("1700000000000000"));
    assert_eq!(request.param("start"), Some("1699999400000000"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jaeger_v1_search_needs_a_service() {
    let standin = StandIn::start(fixtures::jaeger_api()).await;
    let jaeger = Jaeger::builder(standin.url()).build().unwrap();
    let mut traces = jaeger.search(&Search::new());
    let err = traces.next().await.unwrap().unwrap_err().to_string();
    assert!(err.contains("Jaeger searches within one service"), "{err}");
    assert!(traces.next().await.is_none());
    assert!(standin.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jaeger_v3_search_fetches_each_summary() {
    let standin = StandIn::start(fixtures::jaeger_api()).await;
    let jaeger = Jaeger::builder(standin.url())
        .with_api(JaegerApi::V3)
        .build()
        .unwrap();
    let expected = file_analyses(OTLP_FILES);
    let mut traces = jaeger.search(&Search::new().with_limit(100));
    let mut seen = Vec::new();
    while let Some(trace) = traces.next().await {
        let analysis = analyze_critical_path(&trace.unwrap(), &Options::default());
        assert_eq!(Some(&analysis), expected.get(&analysis.trace_id));
        seen.push(analysis.trace_id);
    }
    assert_eq!(seen.len(), OTLP_FILES.len());
    let requests = standin.requests();
    assert_eq!(requests[0].path, "/api/v3/trace-summaries");
    assert_eq!(requests[0].param("query.searchDepth"), Some("100"));
    let min = requests[0].param("query.startTimeMin").unwrap();
    assert!(min.ends_with('Z') && min.contains('T'), "{min}");
    assert_eq!(requests.len(), 1 + OTLP_FILES.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tempo_traces_by_id_analyze_as_their_files_in_protobuf_and_json_v1_and_v2() {
    let expected = file_analyses(OTLP_FILES);
    let ids = ids(&fixtures::otlp_traces());
    for json_only in [false, true] {
        let standin = StandIn::start(fixtures::tempo_api(TempoOptions {
            json_only,
            tenant: None,
        }))
        .await;
        for api in [TempoApi::V1, TempoApi::V2] {
            let tempo = Tempo::builder(standin.url()).with_api(api).build().unwrap();
            assert_fetched_equal_files(&tempo, &expected, &ids).await;
        }
        let requests = standin.requests();
        assert!(
            requests
                .iter()
                .all(|r| r.header("accept") == Some("application/protobuf"))
        );
        assert!(
            requests
                .iter()
                .any(|r| r.path.starts_with("/api/v2/traces/"))
        );
        assert!(requests.iter().any(|r| r.path.starts_with("/api/traces/")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tempo_sends_the_tenant_and_searches_by_tags_or_traceql() {
    let standin = StandIn::start(fixtures::tempo_api(TempoOptions {
        json_only: false,
        tenant: Some("team-a"),
    }))
    .await;
    let tempo = Tempo::builder(standin.url())
        .with_tenant("team-a")
        .build()
        .unwrap();
    let expected = file_analyses(OTLP_FILES);
    let search = Search::new()
        .with_service("query11-service")
        .with_operation("GET /")
        .with_min_duration(Duration::from_millis(1))
        .with_since(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000))
        .with_until(SystemTime::UNIX_EPOCH + Duration::from_millis(2_000_500));
    let mut traces = tempo.search(&search);
    let trace = traces.next().await.unwrap().unwrap();
    let analysis = analyze_critical_path(&trace, &Options::default());
    assert_eq!(Some(&analysis), expected.get(&analysis.trace_id));
    assert!(traces.next().await.is_none());
    let requests = standin.requests();
    let search_request = &requests[0];
    assert_eq!(search_request.path, "/api/search");
    assert_eq!(
        search_request.param("tags"),
        Some(r#"service.name=query11-service name="GET /""#)
    );
    assert_eq!(search_request.param("minDuration"), Some("1000000ns"));
    assert_eq!(search_request.param("start"), Some("1000"));
    assert_eq!(search_request.param("end"), Some("2001"));
    assert!(
        requests
            .iter()
            .all(|r| r.header("x-scope-orgid") == Some("team-a"))
    );

    let mut traces = tempo.search(&Search::new().with_traceql("{ status = error }"));
    let mut count = 0;
    while let Some(trace) = traces.next().await {
        trace.unwrap();
        count += 1;
    }
    assert_eq!(count, OTLP_FILES.len().min(20));
    let last_search = standin
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/search")
        .last()
        .unwrap();
    assert_eq!(last_search.param("q"), Some("{ status = error }"));
    assert_eq!(last_search.param("tags"), None);

    // Without the tenant, the multi-tenant Tempo refuses.
    let anonymous = Tempo::builder(standin.url()).build().unwrap();
    let err = anonymous
        .fetch(&ids(&fixtures::otlp_traces())[0])
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
    assert!(err.to_string().contains("no org id"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zipkin_traces_by_id_and_searches_analyze_as_their_files() {
    let standin = StandIn::start(fixtures::zipkin_api()).await;
    let zipkin = Zipkin::builder(standin.url()).build().unwrap();
    let expected = file_analyses(ZIPKIN_FILES);
    assert_fetched_equal_files(&zipkin, &expected, &ids(&fixtures::zipkin_traces())).await;

    let until = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
    let search = Search::new()
        .with_service("frontend")
        .with_tag("http.method", "GET")
        .with_tag("error", "true")
        .with_min_duration(Duration::from_micros(1500))
        .with_until(until)
        .with_lookback(Duration::from_secs(60))
        .with_limit(50);
    let mut traces = zipkin.search(&search);
    let mut seen = 0;
    while let Some(trace) = traces.next().await {
        let analysis = analyze_critical_path(&trace.unwrap(), &Options::default());
        assert_eq!(Some(&analysis), expected.get(&analysis.trace_id));
        seen += 1;
    }
    assert!(seen >= 1, "no zipkin fixture has a frontend span");
    let request = standin
        .requests()
        .into_iter()
        .find(|r| r.path == "/api/v2/traces")
        .unwrap();
    assert_eq!(request.param("serviceName"), Some("frontend"));
    assert_eq!(
        request.param("annotationQuery"),
        Some("http.method=GET and error=true")
    );
    assert_eq!(request.param("minDuration"), Some("1500"));
    assert_eq!(request.param("endTs"), Some("1700000000123"));
    assert_eq!(request.param("lookback"), Some("60000"));
    assert_eq!(request.param("limit"), Some("50"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lightstep_performance_analyzes_a_stored_trace_from_any_store() {
    let jaeger_standin = StandIn::start(fixtures::jaeger_api()).await;
    let tempo_standin = StandIn::start(fixtures::tempo_api(TempoOptions::default())).await;
    let zipkin_standin = StandIn::start(fixtures::zipkin_api()).await;
    let cases: Vec<(TraceStore, String, BTreeMap<String, CriticalPathAnalysis>)> = vec![
        (
            Jaeger::builder(jaeger_standin.url())
                .build()
                .unwrap()
                .into(),
            fixtures::jaeger_traces()[0].0.clone(),
            file_analyses(JAEGER_FILES),
        ),
        (
            Tempo::builder(tempo_standin.url()).build().unwrap().into(),
            fixtures::otlp_traces()[2].0.clone(),
            file_analyses(OTLP_FILES),
        ),
        (
            Zipkin::builder(zipkin_standin.url())
                .build()
                .unwrap()
                .into(),
            fixtures::zipkin_traces()[1].0.clone(),
            file_analyses(ZIPKIN_FILES),
        ),
    ];
    for (store, id, expected) in cases {
        let performance = LightstepPerformance::new(store);
        let analysis = performance.analyze_critical_path(&id).await.unwrap();
        assert_eq!(Some(&analysis), expected.get(&analysis.trace_id), "{id}");
        assert!(!analysis.critical_spans.is_empty());
        assert!(analysis.critical_path_duration_ms <= analysis.total_duration_ms);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_ids_come_in_the_order_given_with_bounded_concurrency() {
    let standin = StandIn::start(fixtures::jaeger_api()).await;
    let jaeger = Jaeger::builder(standin.url())
        .with_concurrency(2)
        .build()
        .unwrap();
    let wanted: Vec<String> = ids(&fixtures::jaeger_traces())
        .into_iter()
        .rev()
        .take(6)
        .collect();
    let mut traces = jaeger.fetch_each(wanted.clone());
    let mut got = Vec::new();
    while let Some(trace) = traces.next().await {
        got.push(trace.unwrap().trace_id.to_string());
    }
    let wanted: Vec<String> = wanted
        .iter()
        .map(|id| lightstep_analysis::TraceId::parse(id).to_string())
        .collect();
    assert_eq!(got, wanted);
}
