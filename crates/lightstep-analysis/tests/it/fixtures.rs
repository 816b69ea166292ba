//! Every real trace in `testdata/traces/` is read and analyzed in both modes, and the results
//! are checked: the invariants and the oracle (robust), the Jaeger UI port (jaeger), CRISP's
//! expected numbers where its semantics agree with ours, and what each file is known to hold.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use lightstep_analysis::read::{Format, encode_traces_data, read_path, read_traces};
use lightstep_analysis::{
    CriticalPathAnalysis, Mode, Options, Span, Trace, analyze_assembled, analyze_critical_path,
    assemble,
};

use crate::oracle;

const TRACES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/traces");

/// All JSON files under the shared folder, walked without recursion.
pub(crate) fn fixture_files() -> Vec<PathBuf> {
    let mut pending = vec![PathBuf::from(TRACES)];
    let mut files = Vec::new();
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

pub(crate) fn fixture(relative: &str) -> PathBuf {
    Path::new(TRACES).join(relative)
}

fn read_all(path: &Path) -> (Vec<Trace>, Option<Format>) {
    let mut traces = Vec::new();
    let stats = read_path(path, None, |t| {
        traces.push(t);
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stats.traces, traces.len());
    (traces, stats.format)
}

fn analyze(trace: &Trace, mode: Mode) -> CriticalPathAnalysis {
    analyze_critical_path(trace, &Options::new(mode))
}

#[test]
fn every_fixture_is_analyzed_in_both_modes() {
    let files = fixture_files();
    assert!(
        files.len() >= 60,
        "expected the shared fixtures, found {} files",
        files.len()
    );
    let mut jaeger_compared = 0;
    for file in &files {
        let (traces, format) = read_all(file);
        assert!(!traces.is_empty(), "{}: no traces", file.display());
        assert!(format.is_some(), "{}: no format", file.display());
        for trace in &traces {
            assert!(!trace.spans.is_empty(), "{}: empty trace", file.display());
            let options = Options::new(Mode::Robust);
            let assembled = assemble(trace, &options);
            let robust = analyze_assembled(trace, &assembled);
            oracle::check_invariants(&assembled, &robust)
                .unwrap_or_else(|problem| panic!("{}: {problem}", file.display()));
            if trace.spans.len() <= 2000 {
                assert_eq!(
                    oracle::pieces(&robust),
                    oracle::robust(&assembled),
                    "{}",
                    file.display()
                );
            }
            assert!(
                !robust.sections.is_empty(),
                "{}: robust path is empty",
                file.display()
            );

            jaeger_compared += compare_with_jaeger_port(file, trace);
            // Jaeger UI repairs a start at 0 (all of CRISP's roots start there) and walks
            // forever where a span below a root starts at 0: compare the same trace moved one
            // second later too, where the times are ordinary.
            if trace.spans.iter().any(|s| s.start_ns() == 0) {
                jaeger_compared += compare_with_jaeger_port(file, &shifted(trace, 1_000_000_000));
            }
        }
    }
    assert!(
        jaeger_compared >= 80,
        "only {jaeger_compared} traces compared with the Jaeger port"
    );
}

/// Returns the number of roots whose sections were compared with Jaeger UI's.
fn compare_with_jaeger_port(file: &Path, trace: &Trace) -> usize {
    crate::properties::check_jaeger_against_port(trace)
        .unwrap_or_else(|problem| panic!("{}: {problem}", file.display()))
        .roots_compared
}

/// The same trace with every time moved by `offset` nanoseconds.
pub(crate) fn shifted(trace: &Trace, offset: u64) -> Trace {
    let spans = trace
        .spans
        .iter()
        .map(|s| {
            let mut span = Span::new(
                s.trace_id().clone(),
                s.span_id().clone(),
                s.start_ns() + offset,
                s.end_ns() + offset,
            )
            .with_relation(s.relation())
            .with_kind(s.kind())
            .with_status(s.status())
            .with_service(s.service_arc().clone())
            .with_name(s.name());
            if let Some(parent) = s.parent_id() {
                span = span.with_parent(parent.clone());
            }
            if let Some(host) = s.host() {
                span = span.with_host(host);
            }
            span
        })
        .collect();
    Trace::new(trace.trace_id.clone(), spans)
}

/// CRISP's expected exclusive critical-path time per "[service] operation".
fn crisp_expected(path: &Path) -> BTreeMap<String, u64> {
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let testing = &doc["testing"];
    let table = match testing {
        serde_json::Value::Array(items) => &items[0],
        other => &other["opTimeExclusive"],
    };
    table
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .filter(|(_, v)| *v > 0)
        .collect()
}

fn per_operation_us(analysis: &CriticalPathAnalysis) -> BTreeMap<String, u64> {
    analysis
        .operations
        .iter()
        .filter(|s| s.critical_ns > 0)
        .map(|s| {
            (
                format!("[{}] {}", s.service, s.operation.as_deref().unwrap_or("")),
                s.critical_ns / 1000,
            )
        })
        .collect()
}

/// Where CRISP's semantics agree with ours: no span has two children that overlap or touch
/// (CRISP splits overlaps and ties differently), no child sticks out of its parent, and no
/// parent is missing. A child entirely outside its parent is off the path for both.
fn crisp_semantics_agree(trace: &Trace) -> bool {
    let analysis = analyze(trace, Mode::Robust);
    if analysis.diagnostics.clamped + analysis.diagnostics.orphans > 0 {
        return false;
    }
    let assembled = assemble(trace, &Options::default());
    (0..trace.spans.len()).all(|p| {
        let mut kids: Vec<(u64, u64)> = assembled
            .children(p)
            .filter_map(|c| assembled.window(c))
            .collect();
        kids.sort_unstable();
        kids.windows(2).all(|w| w[0].1 < w[1].0)
    })
}

#[test]
fn crisp_expectations_hold_where_the_semantics_agree() {
    let mut compared = 0;
    let mut differing = Vec::new();
    for file in fixture_files()
        .iter()
        .filter(|f| f.to_string_lossy().contains("/crisp/"))
    {
        let expected = crisp_expected(file);
        let (traces, _) = read_all(file);
        let trace = &traces[0];
        let ours = per_operation_us(&analyze(trace, Mode::Robust));
        if crisp_semantics_agree(trace) {
            assert_eq!(ours, expected, "{}", file.display());
            compared += 1;
        } else if ours != expected {
            differing.push(file.file_name().unwrap().to_string_lossy().to_string());
        }
    }
    assert!(
        compared >= 10,
        "only {compared} CRISP files compared; differing: {differing:?}"
    );
    // The files where CRISP differs are the ones docs/critical-path.md discusses.
    assert!(!differing.is_empty());
}

fn robust_of(relative: &str) -> Vec<CriticalPathAnalysis> {
    read_all(&fixture(relative))
        .0
        .iter()
        .map(|t| analyze(t, Mode::Robust))
        .collect()
}

#[test]
fn otlp_proto_example_keeps_nanoseconds_beyond_2_pow_53() {
    let (traces, format) = read_all(&fixture("otlp/opentelemetry-proto-example-trace.json"));
    assert_eq!(format, Some(Format::OtlpJson));
    let span = &traces[0].spans[0];
    // 1544712660000000000 is above 2^53: through f64 it would lose its last digits.
    assert_eq!(span.start_ns(), 1_544_712_660_000_000_000);
    assert_eq!(span.end_ns(), 1_544_712_661_000_000_000);
    assert_eq!(span.span_id().to_string(), "eee19b7ec3c1b174");
    assert_eq!(
        traces[0].trace_id.to_string(),
        "5b8efff798038103d269b633813fc60c"
    );
    assert_eq!(span.service(), "my.service");
}

#[test]
fn otlp_json_and_protobuf_readers_agree_on_every_otlp_fixture() {
    let mut checked = 0;
    for file in fixture_files() {
        let (traces, format) = read_all(&file);
        if format != Some(Format::OtlpJson) {
            continue;
        }
        for trace in &traces {
            let bytes = encode_traces_data(&trace.spans);
            let mut back = Vec::new();
            read_traces(
                bytes.as_slice(),
                Path::new("re-encoded.pb"),
                Some(Format::OtlpProto),
                |t| {
                    back.push(t);
                    Ok(())
                },
            )
            .unwrap();
            assert_eq!(back.len(), 1, "{}", file.display());
            let key = |t: &Trace| -> Vec<_> {
                t.spans
                    .iter()
                    .map(|s| {
                        (
                            s.span_id().clone(),
                            s.parent_id().cloned(),
                            s.start_ns(),
                            s.end_ns(),
                            s.name().to_string(),
                            s.service().to_string(),
                        )
                    })
                    .collect()
            };
            assert_eq!(key(&back[0]), key(trace), "{}", file.display());
            checked += 1;
        }
    }
    assert!(checked >= 8, "{checked}");
}

#[test]
fn the_same_trace_in_otlp_and_jaeger_json_has_the_same_path() {
    let from_otlp = robust_of("jaeger/otlp2jaeger-in.json");
    let from_jaeger = robust_of("jaeger/otlp2jaeger-out.json");
    let path = |a: &CriticalPathAnalysis| -> Vec<_> {
        a.sections
            .iter()
            .map(|s| {
                (
                    a.critical_spans[a.path.iter().position(|p| p.span == s.span).unwrap()]
                        .to_string(),
                    s.start_ns,
                    s.end_ns,
                )
            })
            .collect()
    };
    assert_eq!(path(&from_otlp[0]), path(&from_jaeger[0]));
    // The OTLP file repeats its one span verbatim: a retransmission, dropped once.
    assert_eq!(from_otlp[0].diagnostics.duplicates_dropped, 1);
    assert_eq!(from_otlp[0].diagnostics.orphans, 1);
}

#[test]
fn zipkin_skew_is_corrected_only_when_asked() {
    let (traces, format) = read_all(&fixture("zipkin/skew.json"));
    assert_eq!(format, Some(Format::ZipkinJson));
    let plain = analyze(&traces[0], Mode::Robust);
    let corrected = analyze_critical_path(
        &traces[0],
        &Options::new(Mode::Robust).with_skew_correction(true),
    );
    assert_eq!(plain.diagnostics.skew_applied, 0);
    assert!(plain.diagnostics.clamped + plain.diagnostics.detached > 0);
    assert_eq!(corrected.diagnostics.skew_applied, 1);
    // After correction the server fits in its client, so nothing about it needs clamping.
    assert!(
        corrected.diagnostics.clamped + corrected.diagnostics.detached
            < plain.diagnostics.clamped + plain.diagnostics.detached
    );
}

#[test]
fn messaging_consumers_do_not_block_their_producers() {
    for file in ["zipkin/messaging.json", "zipkin/messaging-kafka.json"] {
        let analyses = robust_of(file);
        assert!(
            analyses.iter().any(|a| a.diagnostics.non_blocking > 0),
            "{file}"
        );
    }
    let orphaned = robust_of("zipkin/messaging2.json");
    assert!(orphaned.iter().any(|a| a.diagnostics.orphans > 0));
}

#[test]
fn zipkin_shared_ids_become_client_server_pairs() {
    let (traces, _) = read_all(&fixture("zipkin/smartthings-mobile-web-install.json"));
    assert_eq!(traces.len(), 1);
    let spans = &traces[0].spans;
    let servers: Vec<_> = spans
        .iter()
        .filter(|s| s.span_id().to_string().ends_with("-server"))
        .collect();
    assert!(servers.len() >= 100, "{}", servers.len());
    for server in &servers {
        let parent = server
            .parent_id()
            .expect("a split server has its client as parent");
        assert!(
            spans.iter().any(|s| s.span_id() == parent),
            "client of {} missing",
            server.span_id()
        );
    }
    let ids: std::collections::HashSet<_> = spans.iter().map(|s| s.span_id()).collect();
    assert_eq!(
        ids.len(),
        spans.len(),
        "ids are unique after splitting and merging fragments"
    );
}

#[test]
fn deathstarbench_export_holds_twenty_traces_of_33_spans() {
    let analyses = robust_of("deathstarbench/socialnetwork-compose-post.json");
    assert_eq!(analyses.len(), 20);
    let (traces, _) = read_all(&fixture("deathstarbench/socialnetwork-compose-post.json"));
    assert!(traces.iter().all(|t| t.spans.len() == 33));
    for a in &analyses {
        assert_eq!(a.diagnostics.roots, 1, "{}", a.trace_id);
        assert!(a.gaps.is_empty());
        assert_eq!(a.critical_ns(), a.duration_ns());
    }
}

#[test]
fn jaeger_mode_repairs_time_zero_as_jaeger_ui_does() {
    // Every CRISP root starts at 0, which Jaeger UI keeps: the path is the one of the same
    // trace moved off time 0, moved back.
    let (traces, _) = read_all(&fixture("crisp/10.json"));
    let at_zero = analyze(&traces[0], Mode::Jaeger);
    assert_eq!(at_zero.diagnostics.jaeger_failure, None);
    let offset = 1_000_000_000;
    let moved = analyze(&shifted(&traces[0], offset), Mode::Jaeger);
    let sections = |a: &CriticalPathAnalysis, by: u64| -> Vec<_> {
        a.sections
            .iter()
            .map(|s| (s.span, s.start_ns - by, s.end_ns - by))
            .collect()
    };
    assert!(!at_zero.sections.is_empty());
    assert_eq!(sections(&at_zero, 0), sections(&moved, offset));
    // A child that starts at 0 too gets its root's start, 0, and returning to the root at 0
    // makes Jaeger UI walk forever: the analysis says why.
    let (traces, _) = read_all(&fixture("crisp/3.json"));
    let jaeger = analyze(&traces[0], Mode::Jaeger);
    let reason = jaeger
        .diagnostics
        .jaeger_failure
        .expect("Jaeger UI fails here");
    assert!(
        reason.starts_with("a span below a root starts at time 0"),
        "{reason}"
    );
}
