#![no_main]

use libfuzzer_sys::fuzz_target;
use lightstep_analysis::{
    Mode, Options, ParentRelation, Span, SpanId, SpanKind, Trace, TraceId, analyze_assembled,
    assemble,
};

// Each 8-byte chunk is one span: id, parent, start, duration, flags. Small ranges make
// duplicates, cycles, orphans and touching siblings common.
fuzz_target!(|data: &[u8]| {
    let t = TraceId::from_u128(1);
    let spans: Vec<Span> = data
        .chunks_exact(8)
        .map(|c| {
            let id = u64::from(c[0] % 64);
            let start = u64::from(u16::from_le_bytes([c[2], c[3]]));
            let end = start.saturating_add_signed(i64::from(i16::from_le_bytes([c[4], c[5]])));
            let mut span = Span::new(t.clone(), SpanId::from_u64(id), start, end)
                .with_host(if c[6] & 1 == 0 { "a" } else { "b" })
                .with_kind(match c[6] >> 5 {
                    0 => SpanKind::Client,
                    1 => SpanKind::Server,
                    2 => SpanKind::Consumer,
                    _ => SpanKind::Internal,
                });
            if c[1] & 0x80 == 0 {
                span = span.with_parent(SpanId::from_u64(u64::from(c[1] % 66)));
            }
            if c[7] & 1 == 1 {
                span = span.with_relation(ParentRelation::FollowsFrom);
            }
            span
        })
        .collect();
    let trace = Trace::new(t, spans);
    for (mode, skew) in [
        (Mode::Robust, false),
        (Mode::Robust, true),
        (Mode::Jaeger, false),
    ] {
        let assembled = assemble(&trace, &Options::new(mode).with_skew_correction(skew));
        let analysis = analyze_assembled(&trace, &assembled);
        // Jaeger UI itself gives garbage where it reports a failure, and gives each of several
        // roots its own path (overlapping where the roots do); everywhere else sections never
        // overlap, are chronological and lie in their span's window.
        if analysis.diagnostics.jaeger_failure.is_some()
            || (mode == Mode::Jaeger && analysis.diagnostics.roots > 1)
        {
            continue;
        }
        let mut at = analysis.start_ns;
        for s in &analysis.sections {
            assert!(s.start_ns < s.end_ns && s.start_ns >= at);
            let (ws, we) = assembled
                .window(s.span)
                .expect("section of an excluded span");
            assert!(ws <= s.start_ns && s.end_ns <= we);
            at = s.end_ns;
        }
        if mode == Mode::Robust {
            let gaps: u64 = analysis.gaps.iter().map(|g| g.end_ns - g.start_ns).sum();
            assert_eq!(
                analysis.critical_ns() + gaps,
                analysis.end_ns - analysis.start_ns
            );
        }
    }
});
