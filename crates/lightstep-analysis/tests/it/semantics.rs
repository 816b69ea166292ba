//! The cases that define each mode, written out: what Jaeger UI's current code does where
//! older versions (and earlier releases of this crate) differed, and what robust mode reports
//! for work that did not block its parent.

use lightstep_analysis::render::JsonWriter;
use lightstep_analysis::{
    CriticalPathAnalysis, Mode, OffPathReason, Options, Span, SpanId, Trace, TraceId,
    analyze_critical_path,
};

/// `(id, parent, start, end)`, ids as written (Jaeger UI's test data uses text ids).
fn trace(spans: &[(&str, Option<&str>, u64, u64)]) -> Trace {
    let t = TraceId::from_u128(0x5e11);
    Trace::new(
        t.clone(),
        spans
            .iter()
            .map(|&(id, parent, start, end)| {
                let span = Span::new(t.clone(), SpanId::parse(id), start, end)
                    .with_service("svc")
                    .with_name(id);
                match parent {
                    Some(p) => span.with_parent(SpanId::parse(p)),
                    None => span,
                }
            })
            .collect(),
    )
}

/// Sections as `(span id, start, end)`.
fn path(trace: &Trace, analysis: &CriticalPathAnalysis) -> Vec<(String, u64, u64)> {
    analysis
        .sections
        .iter()
        .map(|s| {
            (
                trace.spans[s.span].span_id().to_string(),
                s.start_ns,
                s.end_ns,
            )
        })
        .collect()
}

fn owned(path: &[(&str, u64, u64)]) -> Vec<(String, u64, u64)> {
    path.iter()
        .map(|&(id, s, e)| (id.to_string(), s, e))
        .collect()
}

#[test]
fn jaeger_walks_the_root_when_the_earliest_top_level_span_is_an_orphan() {
    // The orphan s28 starts first; Jaeger UI walks every root and drops the orphan while
    // sanitizing, so s0 still gets its path.
    let t = trace(&[
        ("s0", None, 1000, 1200),
        ("s1", Some("s0"), 1010, 1050),
        ("s2", Some("s0"), 1060, 1150),
        ("s3", Some("s2"), 1070, 1100),
        ("s28", Some("missing28"), 985, 995),
    ]);
    let jaeger = analyze_critical_path(&t, &Options::new(Mode::Jaeger));
    assert_eq!(
        path(&t, &jaeger),
        owned(&[
            ("s0", 1000, 1010),
            ("s1", 1010, 1050),
            ("s0", 1050, 1060),
            ("s2", 1060, 1070),
            ("s3", 1070, 1100),
            ("s2", 1100, 1150),
            ("s0", 1150, 1200),
        ])
    );
    assert_eq!(jaeger.diagnostics.jaeger_failure, None);
    assert_eq!(jaeger.diagnostics.roots, 1);
    assert_eq!(jaeger.diagnostics.dropped, 1);
    assert_eq!((jaeger.start_ns, jaeger.end_ns), (1000, 1200));
    let compared = crate::properties::check_jaeger_against_port(&t).unwrap();
    assert_eq!((compared.roots_compared, compared.roots_failed), (2, 0));
}

#[test]
fn jaeger_takes_the_earlier_start_among_equal_sanitized_ends() {
    // s3 and s5 both end at 1100 once clamped into s0; Jaeger UI keeps the first of them in
    // its display order, by start: s3, although s5 ends later as recorded and comes first in
    // the input.
    let t = trace(&[
        ("s0", None, 1000, 1100),
        ("s5", Some("s0"), 1096, 1106),
        ("s3", Some("s0"), 1085, 1105),
        ("s4", Some("s3"), 1089, 1099),
    ]);
    let jaeger = analyze_critical_path(&t, &Options::new(Mode::Jaeger));
    assert_eq!(
        path(&t, &jaeger),
        owned(&[
            ("s0", 1000, 1085),
            ("s3", 1085, 1089),
            ("s4", 1089, 1099),
            ("s3", 1099, 1100),
        ])
    );
    let compared = crate::properties::check_jaeger_against_port(&t).unwrap();
    assert_eq!((compared.roots_compared, compared.roots_failed), (1, 0));
}

#[test]
fn jaeger_walks_every_root_and_reports_the_time_between_them_as_a_gap() {
    let t = trace(&[
        ("second", None, 300, 400),
        ("first", None, 100, 200),
        ("inner", Some("first"), 120, 180),
    ]);
    let jaeger = analyze_critical_path(&t, &Options::new(Mode::Jaeger));
    assert_eq!(
        path(&t, &jaeger),
        owned(&[
            ("first", 100, 120),
            ("inner", 120, 180),
            ("first", 180, 200),
            ("second", 300, 400),
        ])
    );
    assert_eq!(jaeger.diagnostics.roots, 2);
    assert_eq!((jaeger.start_ns, jaeger.end_ns), (100, 400));
    let gaps: Vec<_> = jaeger.gaps.iter().map(|g| (g.start_ns, g.end_ns)).collect();
    assert_eq!(gaps, vec![(200, 300)]);
    crate::properties::check_jaeger_against_port(&t).unwrap();
}

#[test]
fn robust_explains_the_request_and_reports_work_outside_it() {
    // One root of 100: one child inside it, one that starts after the root ended (with a
    // child of its own) and one that ended before the root began.
    let t = trace(&[
        ("root", None, 100, 200),
        ("inside", Some("root"), 120, 150),
        ("late", Some("root"), 250, 300),
        ("late-child", Some("late"), 260, 280),
        ("early", Some("root"), 20, 60),
    ]);
    let robust = analyze_critical_path(&t, &Options::default());
    assert_eq!(
        path(&t, &robust),
        owned(&[("root", 100, 120), ("inside", 120, 150), ("root", 150, 200)])
    );
    assert_eq!((robust.start_ns, robust.end_ns), (100, 200));
    assert_eq!(robust.critical_ns(), 100);
    assert!(robust.gaps.is_empty());
    assert_eq!(robust.diagnostics.detached, 2);
    let off: Vec<_> = robust
        .off_path
        .iter()
        .map(|o| (o.span_id.to_string(), o.start_ns, o.end_ns, o.reason))
        .collect();
    assert_eq!(
        off,
        vec![
            ("late".to_string(), 250, 300, OffPathReason::OutsideParent),
            ("early".to_string(), 20, 60, OffPathReason::OutsideParent),
        ]
    );

    // The JSON report lists them, with their parent.
    let mut writer = JsonWriter::new(Vec::new()).unwrap();
    writer.trace(&robust).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&writer.finish(None).unwrap()).unwrap();
    let report = &doc["traces"][0];
    assert_eq!(report["duration_ns"], 100);
    assert_eq!(report["critical_path_ns"], 100);
    assert_eq!(report["diagnostics"]["detached"], 2);
    let listed = report["off_path"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["span_id"], "late");
    assert_eq!(listed[0]["parent_span_id"], "root");
    assert_eq!(listed[0]["operation"], "late");
    assert_eq!(listed[0]["start_unix_nano"], 250);
    assert_eq!(listed[0]["end_unix_nano"], 300);
    assert_eq!(listed[0]["reason"], "outside_parent");
    assert_eq!(listed[1]["span_id"], "early");
}

#[test]
fn robust_still_spans_every_root_and_orphan() {
    // Several top-level requests: the virtual root spans them all, with the gap between.
    let t = trace(&[
        ("first", None, 100, 200),
        ("orphan", Some("gone"), 300, 400),
        ("late", Some("first"), 500, 600),
    ]);
    let robust = analyze_critical_path(&t, &Options::default());
    assert_eq!(
        path(&t, &robust),
        owned(&[("first", 100, 200), ("orphan", 300, 400)])
    );
    assert_eq!((robust.start_ns, robust.end_ns), (100, 400));
    let gaps: Vec<_> = robust.gaps.iter().map(|g| (g.start_ns, g.end_ns)).collect();
    assert_eq!(gaps, vec![(200, 300)]);
    assert_eq!(robust.off_path.len(), 1);
}
