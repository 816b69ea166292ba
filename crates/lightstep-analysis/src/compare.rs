//! Before and after: how each (service, operation) and each calling context changed its
//! critical-path time between two sets of traces, and whether the change is more than noise.
//!
//! Each set is a [`Profile`]: per operation and per context, the critical-path time of every
//! trace (0 where the trace's path did not go through it). The two are compared with the
//! Mann-Whitney U test (two-sided, normal approximation with tie and continuity correction):
//! latency is skewed and heavy-tailed and these values have many ties at 0, which a rank test
//! takes without assuming any distribution; it needs no resampling and no seed, so a report is
//! the same every time and costs a sort per row. ADR 105 gives the reasons and the measured
//! false-positive rate.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use crate::aggregate::{Aggregator, OperationKey, SetSamples, percentile};
use crate::context::{ContextAggregator, ContextOptions, ContextTree, Frame, FrameKey};
use crate::{AssembledTrace, CriticalPathAnalysis, Trace};

/// The significance level used unless told otherwise.
pub const DEFAULT_ALPHA: f64 = 0.01;

/// One set of traces, prepared for [`compare`].
#[derive(Debug)]
pub struct Profile {
    operations: Aggregator,
    contexts: ContextAggregator,
}

impl Profile {
    /// An empty set whose contexts are formed with `options` (their per-trace values are kept
    /// whatever `options.samples` says).
    pub fn new(options: ContextOptions) -> Self {
        Self {
            operations: Aggregator::new(),
            contexts: ContextAggregator::new(options.with_samples(true)),
        }
    }

    /// Adds one trace: `analysis` must be the analysis of `assembled`, the assembly of `trace`.
    pub fn add(
        &mut self,
        trace: &Trace,
        assembled: &AssembledTrace,
        analysis: &CriticalPathAnalysis,
    ) {
        self.operations.add(analysis);
        self.contexts.add(trace, assembled, analysis);
    }

    /// Traces added so far.
    pub fn traces(&self) -> usize {
        self.contexts.traces()
    }
}

/// Whether a row changed beyond noise, and which way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// After tends to spend more time here (significant).
    Slower,
    /// After tends to spend less time here (significant).
    Faster,
    /// The difference is within what chance gives at the significance level.
    Noise,
}

/// The Mann-Whitney U test of one row: the critical-path time per trace before against after.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RankTest {
    /// U of the after set: pairs (a trace before, a trace after) in which the after trace
    /// spent more time here, ties counted half.
    pub u: f64,
    /// U standardized (normal approximation, tie- and continuity-corrected): positive when
    /// after tends to spend more time here.
    pub z: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// U over the number of pairs: the probability that a trace after spent more time here
    /// than a trace before (ties counted half); 0.5 when neither tends to spend more.
    pub probability_slower: f64,
    /// The verdict at the comparison's significance level.
    pub change: Change,
}

impl RankTest {
    /// Whether the change is more than noise.
    pub fn significant(&self) -> bool {
        self.change != Change::Noise
    }
}

/// One set's figures for one row.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SideStats {
    /// Traces whose critical path spent time here.
    pub traces: usize,
    /// Critical-path time here, summed over the set, nanoseconds.
    pub total_ns: u128,
    /// That time per trace of the set (traces without it counting 0), nanoseconds.
    pub mean_ns: f64,
    /// Per-trace percentiles over the traces whose path spent time here (as
    /// [`crate::aggregate::Contribution`] has them), nanoseconds; 0 when there are none.
    pub p50_ns: u64,
    /// 90th percentile.
    pub p90_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// Fraction of the set's summed trace durations spent here.
    pub share: f64,
}

/// A whole set.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SetSummary {
    /// Traces in the set.
    pub traces: usize,
    /// Their durations summed, nanoseconds.
    pub total_duration_ns: u128,
    /// Their critical-path time summed, nanoseconds.
    pub critical_ns: u128,
}

/// The change of one (service, operation).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct OperationChange {
    /// Service.
    pub service: Arc<str>,
    /// Operation.
    pub operation: Arc<str>,
    /// Before.
    pub before: SideStats,
    /// After.
    pub after: SideStats,
    /// After's mean per trace minus before's, nanoseconds.
    pub change_mean_ns: f64,
    /// Whether it is more than noise.
    pub test: RankTest,
}

/// The change of one calling context (its own time: spans in exactly this context).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ContextChange {
    /// The context this one extends, by index in [`Comparison::contexts`].
    pub parent: Option<usize>,
    /// Its last frame (with the larger counts of both sets in its label).
    pub frame: Frame,
    /// The whole context as a folded-stack line shows it (without a count).
    pub folded: String,
    /// Before.
    pub before: SideStats,
    /// After.
    pub after: SideStats,
    /// After's mean per trace minus before's, nanoseconds.
    pub change_mean_ns: f64,
    /// Whether it is more than noise.
    pub test: RankTest,
}

/// The comparison of two sets.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Comparison {
    /// The test: `mann-whitney-u`.
    pub test: &'static str,
    /// The significance level: a row is flagged when its p-value is below it.
    pub alpha: f64,
    /// Rows tested (operations, and contexts with time in either set): about
    /// `rows_tested * alpha` of them are flagged by chance when nothing changed.
    pub rows_tested: usize,
    /// Whether contexts start at their trace's entry point.
    pub by_root: bool,
    /// Frames kept in a context before the rest is folded.
    pub max_depth: usize,
    /// The first set.
    pub before: SetSummary,
    /// The second set.
    pub after: SetSummary,
    /// Per (service, operation): significant changes first, each group by the size of the
    /// change per trace.
    pub operations: Vec<OperationChange>,
    /// Per calling context of either set, a parent before its children.
    pub contexts: Vec<ContextChange>,
}

/// Compares two sets at significance level `alpha` (a row is flagged when its two-sided
/// p-value is below it; [`DEFAULT_ALPHA`] is 0.01).
pub fn compare(before: Profile, after: Profile, alpha: f64) -> Comparison {
    let SetSamples {
        traces: traces_b,
        total_duration_ns: duration_b,
        operations: ops_b,
    } = before.operations.into_samples();
    let SetSamples {
        traces: traces_a,
        total_duration_ns: duration_a,
        operations: ops_a,
    } = after.operations.into_samples();
    let tree_b = before.contexts.finish();
    let tree_a = after.contexts.finish();
    let row = |b: Option<Vec<u64>>, a: Option<Vec<u64>>| {
        let mut b = b.unwrap_or_default();
        let mut a = a.unwrap_or_default();
        b.retain(|&v| v > 0);
        a.retain(|&v| v > 0);
        b.sort_unstable();
        a.sort_unstable();
        let before = side(&b, traces_b, duration_b);
        let after = side(&a, traces_a, duration_a);
        let test = mann_whitney(
            &b,
            traces_b.saturating_sub(b.len()),
            &a,
            traces_a.saturating_sub(a.len()),
            alpha,
        );
        let change = after.mean_ns - before.mean_ns;
        (before, after, change, test)
    };

    type Both = (Option<Vec<u64>>, Option<Vec<u64>>);
    let mut by_operation: HashMap<OperationKey, Both> = HashMap::new();
    for (key, samples) in ops_b {
        by_operation.entry(key).or_default().0 = Some(samples);
    }
    for (key, samples) in ops_a {
        by_operation.entry(key).or_default().1 = Some(samples);
    }
    let mut operations: Vec<OperationChange> = by_operation
        .into_iter()
        .map(|((service, operation), (b, a))| {
            let (before, after, change_mean_ns, test) = row(b, a);
            OperationChange {
                service,
                operation,
                before,
                after,
                change_mean_ns,
                test,
            }
        })
        .filter(|o| o.before.traces + o.after.traces > 0)
        .collect();
    operations.sort_by(|x, y| {
        y.test
            .significant()
            .cmp(&x.test.significant())
            .then_with(|| y.change_mean_ns.abs().total_cmp(&x.change_mean_ns.abs()))
            .then_with(|| x.service.cmp(&y.service))
            .then_with(|| x.operation.cmp(&y.operation))
    });

    let merged = merge(&tree_b, &tree_a);
    let mut contexts: Vec<ContextChange> = Vec::with_capacity(merged.len());
    for node in merged {
        let samples =
            |tree: &ContextTree, index: Option<usize>| index.map(|i| tree.nodes[i].samples.clone());
        let (before, after, change_mean_ns, test) =
            row(samples(&tree_b, node.before), samples(&tree_a, node.after));
        let folded = match node.parent {
            Some(p) => format!("{};{}", contexts[p].folded, node.frame.label()),
            None => node.frame.label(),
        };
        contexts.push(ContextChange {
            parent: node.parent,
            frame: node.frame,
            folded,
            before,
            after,
            change_mean_ns,
            test,
        });
    }
    let rows_tested = operations.len()
        + contexts
            .iter()
            .filter(|c| c.before.traces + c.after.traces > 0)
            .count();
    Comparison {
        test: "mann-whitney-u",
        alpha,
        rows_tested,
        by_root: tree_b.by_root || tree_a.by_root,
        max_depth: tree_b.max_depth.max(tree_a.max_depth),
        before: SetSummary {
            traces: traces_b,
            total_duration_ns: duration_b,
            critical_ns: tree_b.critical_ns,
        },
        after: SetSummary {
            traces: traces_a,
            total_duration_ns: duration_a,
            critical_ns: tree_a.critical_ns,
        },
        operations,
        contexts,
    }
}

struct MergedNode {
    parent: Option<usize>,
    frame: Frame,
    before: Option<usize>,
    after: Option<usize>,
}

/// The union of two context trees, matching frames by name (whatever their counts), a parent
/// before its children.
fn merge(before: &ContextTree, after: &ContextTree) -> Vec<MergedNode> {
    let mut merged: Vec<MergedNode> = Vec::new();
    let mut index: HashMap<(Option<usize>, FrameKey), usize> = HashMap::new();
    for (tree, is_after) in [(before, false), (after, true)] {
        // Each tree's parents precede their children, so a node's parent is mapped already.
        let mut mapped: Vec<usize> = Vec::with_capacity(tree.nodes.len());
        for (i, node) in tree.nodes.iter().enumerate() {
            let parent = node.parent.and_then(|p| mapped.get(p).copied());
            let next = merged.len();
            let m = *index.entry((parent, node.frame.key())).or_insert(next);
            if m == next {
                merged.push(MergedNode {
                    parent,
                    frame: node.frame.clone(),
                    before: None,
                    after: None,
                });
            } else {
                merged[m].frame.merge_counts(&node.frame);
            }
            if is_after {
                merged[m].after = Some(i);
            } else {
                merged[m].before = Some(i);
            }
            mapped.push(m);
        }
    }
    merged
}

fn side(sorted: &[u64], set_traces: usize, set_duration_ns: u128) -> SideStats {
    let total_ns: u128 = sorted.iter().map(|&v| u128::from(v)).sum();
    SideStats {
        traces: sorted.len(),
        total_ns,
        mean_ns: if set_traces == 0 {
            0.0
        } else {
            total_ns as f64 / set_traces as f64
        },
        p50_ns: percentile(sorted, 50).copied().unwrap_or(0),
        p90_ns: percentile(sorted, 90).copied().unwrap_or(0),
        p99_ns: percentile(sorted, 99).copied().unwrap_or(0),
        share: if set_duration_ns == 0 {
            0.0
        } else {
            total_ns as f64 / set_duration_ns as f64
        },
    }
}

/// The Mann-Whitney U test of `before` against `after`, each given as its sorted values above
/// 0 and a number of zeros (traces without time here), which are one block of ties.
pub(crate) fn mann_whitney(
    before: &[u64],
    before_zeros: usize,
    after: &[u64],
    after_zeros: usize,
    alpha: f64,
) -> RankTest {
    let n1 = (before.len() + before_zeros) as f64;
    let n2 = (after.len() + after_zeros) as f64;
    let no_test = RankTest {
        u: n1 * n2 / 2.0,
        z: 0.0,
        p_value: 1.0,
        probability_slower: 0.5,
        change: Change::Noise,
    };
    if n1 == 0.0 || n2 == 0.0 {
        return no_test;
    }
    // Ranks 1..=N; each group of equal values takes the mean of its ranks.
    let mut rank_sum_after = 0.0;
    let mut ties = 0.0;
    let mut taken = 0.0;
    let mut group = |in_before: usize, in_after: usize| {
        let t = (in_before + in_after) as f64;
        if t > 0.0 {
            rank_sum_after += in_after as f64 * (taken + (t + 1.0) / 2.0);
            ties += t * t * t - t;
            taken += t;
        }
    };
    group(before_zeros, after_zeros);
    let (mut i, mut j) = (0, 0);
    while i < before.len() || j < after.len() {
        let v = match (before.get(i), after.get(j)) {
            (Some(&b), Some(&a)) => b.min(a),
            (Some(&b), None) => b,
            (None, Some(&a)) => a,
            (None, None) => break,
        };
        let from_before = before[i..].iter().take_while(|&&x| x == v).count();
        let from_after = after[j..].iter().take_while(|&&x| x == v).count();
        group(from_before, from_after);
        i += from_before;
        j += from_after;
    }
    let u = rank_sum_after - n2 * (n2 + 1.0) / 2.0;
    let n = n1 + n2;
    let mean = n1 * n2 / 2.0;
    let variance = n1 * n2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    if variance.is_nan() || variance <= 0.0 {
        // Every value tied: no evidence either way.
        return RankTest { u, ..no_test };
    }
    let distance = (u - mean).abs();
    let z = (distance - 0.5).max(0.0) / variance.sqrt() * (u - mean).signum();
    let p_value = erfc(z.abs() / std::f64::consts::SQRT_2).min(1.0);
    let change = if p_value >= alpha {
        Change::Noise
    } else if z > 0.0 {
        Change::Slower
    } else {
        Change::Faster
    };
    RankTest {
        u,
        z,
        p_value,
        probability_slower: u / (n1 * n2),
        change,
    }
}

/// The complementary error function for `x >= 0`, by the Chebyshev fit of Numerical Recipes
/// (`erfcc`): relative error below 1.2e-7 everywhere, so small p-values keep their magnitude.
fn erfc(x: f64) -> f64 {
    let x = x.max(0.0);
    let t = 1.0 / (1.0 + 0.5 * x);
    let poly = -1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    t * (-x * x + poly).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small generator of known quality (xorshift64*), so every run draws the same sets.
    struct Draw(u64);

    impl Draw {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn uniform(&mut self) -> f64 {
            ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }

        /// A log-normal latency around `median` nanoseconds, rounded to microseconds (as
        /// Jaeger and Zipkin record them: ties happen), and 0 with probability `absent`.
        fn latency(&mut self, median: f64, absent: f64) -> u64 {
            if self.uniform() < absent {
                return 0;
            }
            let (a, b) = (self.uniform(), self.uniform());
            let normal = (-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos();
            let ns = median * (0.6 * normal).exp();
            ((ns / 1_000.0).round() * 1_000.0) as u64
        }
    }

    fn test(before: &[u64], after: &[u64]) -> RankTest {
        let split = |values: &[u64]| {
            let mut nonzero: Vec<u64> = values.iter().copied().filter(|&v| v > 0).collect();
            nonzero.sort_unstable();
            let zeros = values.len() - nonzero.len();
            (nonzero, zeros)
        };
        let (b, bz) = split(before);
        let (a, az) = split(after);
        mann_whitney(&b, bz, &a, az, DEFAULT_ALPHA)
    }

    #[test]
    fn erfc_matches_reference_values() {
        // math.erfc of CPython (the C library's), to 10 significant digits.
        for (x, expected) in [
            (0.0, 1.0),
            (0.5, 0.4795001222),
            (1.0, 0.1572992071),
            (1.7724, 0.0121915083),
            (2.5, 0.0004069520174),
            (4.0, 1.541725790e-08),
            (8.0, 1.122429717e-29),
        ] {
            let got = erfc(x);
            assert!(
                ((got - expected) / expected).abs() < 2e-7,
                "erfc({x}) = {got}, expected {expected}"
            );
        }
    }

    #[test]
    fn u_counts_the_pairs_where_after_is_larger() {
        // Brute force over all pairs, ties half, on random small sets with many ties.
        let mut draw = Draw(7);
        for _ in 0..200 {
            let n1 = 1 + (draw.next() % 12) as usize;
            let n2 = 1 + (draw.next() % 12) as usize;
            let before: Vec<u64> = (0..n1).map(|_| draw.next() % 5).collect();
            let after: Vec<u64> = (0..n2).map(|_| draw.next() % 5).collect();
            let mut pairs = 0.0;
            for &b in &before {
                for &a in &after {
                    pairs += match a.cmp(&b) {
                        std::cmp::Ordering::Greater => 1.0,
                        std::cmp::Ordering::Equal => 0.5,
                        std::cmp::Ordering::Less => 0.0,
                    };
                }
            }
            let got = test(&before, &after);
            assert!(
                (got.u - pairs).abs() < 1e-9,
                "{before:?} {after:?}: {} != {pairs}",
                got.u
            );
            assert!((got.probability_slower - pairs / (n1 * n2) as f64).abs() < 1e-12);
        }
    }

    #[test]
    fn p_values_of_worked_examples() {
        // No overlap, 5 against 5: U = 25, mean 12.5, sd sqrt(25 * 11 / 12), z = 12 / 4.787.
        let r = test(&[1, 2, 3, 4, 5], &[6, 7, 8, 9, 10]);
        assert_eq!(r.u, 25.0);
        assert!((r.z - 2.506_718_2).abs() < 1e-6, "{}", r.z);
        // math.erfc(z / sqrt(2)) of CPython.
        assert!((r.p_value - 0.012_185_78).abs() < 1e-8, "{}", r.p_value);
        assert_eq!(r.change, Change::Noise, "not below 0.01");
        // With ties: before 0,0,1,2 against after 1,2,2,3 (ranks 1.5 1.5 3.5 6 | 3.5 6 6 8):
        // U = 23.5 - 10 = 13.5 of 16 pairs; tie groups of 2, 2, 3 give 6 + 6 + 24 = 36.
        let r = test(&[0, 0, 1, 2], &[1, 2, 2, 3]);
        assert_eq!(r.u, 13.5);
        let variance: f64 = 16.0 / 12.0 * (9.0 - 36.0 / 56.0);
        let z = (13.5 - 8.0 - 0.5) / variance.sqrt();
        assert!((r.z - z).abs() < 1e-12);
        // Identical sets: nothing to see.
        let r = test(&[5, 5, 5], &[5, 5, 5]);
        assert_eq!((r.p_value, r.change), (1.0, Change::Noise));
        // An empty set cannot be compared.
        let r = test(&[], &[1, 2]);
        assert_eq!((r.p_value, r.change), (1.0, Change::Noise));
    }

    #[test]
    fn a_clear_shift_is_significant_in_the_right_direction() {
        let before: Vec<u64> = (1..=40).map(|v| v * 1_000).collect();
        let after: Vec<u64> = (21..=60).map(|v| v * 1_000).collect();
        assert_eq!(test(&before, &after).change, Change::Slower);
        assert_eq!(test(&after, &before).change, Change::Faster);
    }

    /// Two sets drawn from the same distribution, 2,000 times: the share flagged is the
    /// false-positive rate, which should be close to alpha (1%), and not above it for small
    /// sets, where the normal approximation is conservative. Values are rounded to
    /// microseconds and some are absent (0), so ties are many.
    #[test]
    fn false_positive_rate_is_about_alpha_when_nothing_changed() {
        let repetitions = 2_000;
        for (seed, traces, absent, lowest) in [
            (0x5eed, 50, 0.2, 0.002),
            (0x5eee, 200, 0.5, 0.002),
            (0x5eef, 10, 0.0, 0.0),
        ] {
            let (slower, faster) = verdicts(
                seed,
                repetitions,
                |d| d.latency(2.0e6, absent),
                |d| d.latency(2.0e6, absent),
                traces,
            );
            let flagged = slower + faster;
            let rate = flagged as f64 / repetitions as f64;
            eprintln!(
                "no change, {traces} traces a side, {absent} absent: {flagged} of {repetitions} flagged ({rate})"
            );
            // Binomial standard deviation at 1% over 2,000: 0.22%.
            assert!(
                (lowest..=0.02).contains(&rate),
                "false-positive rate {rate} ({flagged} of {repetitions}) with {traces} traces"
            );
        }
    }

    /// Runs `repetitions` comparisons of sets drawn by `before` and `after`, and counts the
    /// verdicts (slower, faster).
    fn verdicts(
        seed: u64,
        repetitions: usize,
        before: impl Fn(&mut Draw) -> u64,
        after: impl Fn(&mut Draw) -> u64,
        traces: usize,
    ) -> (usize, usize) {
        let mut draw = Draw(seed);
        let (mut slower, mut faster) = (0, 0);
        for _ in 0..repetitions {
            let b: Vec<u64> = (0..traces).map(|_| before(&mut draw)).collect();
            let a: Vec<u64> = (0..traces).map(|_| after(&mut draw)).collect();
            match test(&b, &a).change {
                Change::Slower => slower += 1,
                Change::Faster => faster += 1,
                Change::Noise => {}
            }
        }
        (slower, faster)
    }

    /// An operation 50% slower after, in 200 traces a side, absent from a fifth of them: found
    /// slower nearly always, never faster.
    #[test]
    fn a_known_shift_is_detected() {
        let (slower, faster) = verdicts(
            0xbeef,
            500,
            |d| d.latency(2.0e6, 0.2),
            |d| d.latency(3.0e6, 0.2),
            200,
        );
        eprintln!("50% slower, 200 traces a side: {slower} of 500 found slower, {faster} faster");
        assert_eq!(faster, 0);
        assert!(slower >= 450, "detected {slower} of 500");
        // Faster the other way round.
        let (slower, faster) = verdicts(
            0xbeef,
            100,
            |d| d.latency(3.0e6, 0.2),
            |d| d.latency(2.0e6, 0.2),
            200,
        );
        assert_eq!(slower, 0);
        assert!(faster >= 90, "detected {faster} of 100");
    }

    /// An operation on the path of a fifth of the traces before and of three fifths after,
    /// each time as long as before: per request it costs more, and absent counting as 0 is
    /// what lets the test see it.
    #[test]
    fn an_operation_on_more_paths_is_slower_per_request() {
        let (slower, faster) = verdicts(
            0xfeed,
            500,
            |d| d.latency(2.0e6, 0.8),
            |d| d.latency(2.0e6, 0.4),
            100,
        );
        eprintln!("on 20% then 60% of paths, 100 traces a side: {slower} of 500 found slower");
        assert_eq!(faster, 0);
        assert!(slower >= 450, "detected {slower} of 500");
    }
}
