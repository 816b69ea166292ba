//! Contribution to the critical path across many traces, per (service, operation).
//!
//! Each analyzed trace adds one value per operation on its path: the operation's critical-path
//! time in that trace and its share of that trace's duration. Percentiles are exact (nearest
//! rank over the stored values), so memory grows with traces × operations on their paths, not
//! with spans.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use crate::CriticalPathAnalysis;

/// Collects analyses; [`Aggregator::finish`] gives the table.
#[derive(Debug, Default)]
pub struct Aggregator {
    traces: usize,
    total_duration_ns: u128,
    operations: HashMap<OperationKey, Samples>,
}

#[derive(Debug, Default)]
struct Samples {
    critical_ns: Vec<u64>,
    shares: Vec<f64>,
    spans: usize,
}

/// A (service, operation).
pub(crate) type OperationKey = (Arc<str>, Arc<str>);

/// The traces added to an [`Aggregator`], and each operation's critical-path time per trace.
pub(crate) struct SetSamples {
    pub(crate) traces: usize,
    pub(crate) total_duration_ns: u128,
    pub(crate) operations: Vec<(OperationKey, Vec<u64>)>,
}

/// One row of the aggregate table.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Contribution {
    /// Service.
    pub service: Arc<str>,
    /// Operation.
    pub operation: Arc<str>,
    /// Traces whose critical path went through this operation.
    pub traces: usize,
    /// Spans of this operation on those paths.
    pub spans: usize,
    /// Critical-path time summed over all traces, nanoseconds.
    pub total_critical_ns: u128,
    /// Fraction of the summed duration of all traces spent in this operation on the path.
    pub share_of_latency: f64,
    /// Per-trace critical-path time percentiles (over the traces it appears in), nanoseconds.
    pub critical_ns_p50: u64,
    /// 90th percentile.
    pub critical_ns_p90: u64,
    /// 99th percentile.
    pub critical_ns_p99: u64,
    /// Per-trace share percentiles (0 to 1, over the traces it appears in).
    pub share_p50: f64,
    /// 90th percentile.
    pub share_p90: f64,
    /// 99th percentile.
    pub share_p99: f64,
}

/// The aggregate over all traces added.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Aggregate {
    /// Traces added.
    pub traces: usize,
    /// Their durations summed, nanoseconds.
    pub total_duration_ns: u128,
    /// One row per (service, operation), largest total contribution first.
    pub operations: Vec<Contribution>,
}

impl Aggregator {
    /// An empty aggregator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one trace's analysis.
    pub fn add(&mut self, analysis: &CriticalPathAnalysis) {
        self.traces += 1;
        self.total_duration_ns += u128::from(analysis.duration_ns());
        // Path spans per operation, by the operation's position in `analysis.operations`.
        let mut spans = vec![0usize; analysis.operations.len()];
        for p in &analysis.path {
            if let Some(count) = spans.get_mut(p.operation_index) {
                *count += 1;
            }
        }
        for (share, &count) in analysis.operations.iter().zip(&spans) {
            let operation = share.operation.clone().unwrap_or_else(|| Arc::from(""));
            let samples = self
                .operations
                .entry((share.service.clone(), operation))
                .or_default();
            samples.critical_ns.push(share.critical_ns);
            samples.shares.push(share.share);
            samples.spans += count;
        }
    }

    /// What a comparison needs: per (service, operation), its critical-path time in each trace
    /// whose path went through it.
    pub(crate) fn into_samples(self) -> SetSamples {
        SetSamples {
            traces: self.traces,
            total_duration_ns: self.total_duration_ns,
            operations: self
                .operations
                .into_iter()
                .map(|(key, samples)| (key, samples.critical_ns))
                .collect(),
        }
    }

    /// The table, largest total contribution first (ties by name).
    pub fn finish(self) -> Aggregate {
        let total = self.total_duration_ns;
        let mut operations: Vec<Contribution> = self
            .operations
            .into_iter()
            .map(|((service, operation), mut samples)| {
                samples.critical_ns.sort_unstable();
                samples.shares.sort_unstable_by(f64::total_cmp);
                let total_critical_ns: u128 =
                    samples.critical_ns.iter().map(|&v| u128::from(v)).sum();
                Contribution {
                    service,
                    operation,
                    traces: samples.critical_ns.len(),
                    spans: samples.spans,
                    total_critical_ns,
                    share_of_latency: if total == 0 {
                        0.0
                    } else {
                        total_critical_ns as f64 / total as f64
                    },
                    critical_ns_p50: percentile(&samples.critical_ns, 50).copied().unwrap_or(0),
                    critical_ns_p90: percentile(&samples.critical_ns, 90).copied().unwrap_or(0),
                    critical_ns_p99: percentile(&samples.critical_ns, 99).copied().unwrap_or(0),
                    share_p50: percentile(&samples.shares, 50).copied().unwrap_or(0.0),
                    share_p90: percentile(&samples.shares, 90).copied().unwrap_or(0.0),
                    share_p99: percentile(&samples.shares, 99).copied().unwrap_or(0.0),
                }
            })
            .collect();
        operations.sort_by(|a, b| {
            b.total_critical_ns
                .cmp(&a.total_critical_ns)
                .then_with(|| a.service.cmp(&b.service))
                .then_with(|| a.operation.cmp(&b.operation))
        });
        Aggregate {
            traces: self.traces,
            total_duration_ns: total,
            operations,
        }
    }
}

/// Nearest-rank percentile of sorted values: the smallest value with at least `p`% of the
/// values at or below it.
pub(crate) fn percentile<T>(sorted: &[T], p: usize) -> Option<&T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Options, Span, SpanId, Trace, TraceId, analyze_critical_path};

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 50), Some(&50));
        assert_eq!(percentile(&values, 99), Some(&99));
        assert_eq!(percentile(&[7u64], 90), Some(&7));
        assert_eq!(percentile::<u64>(&[], 50), None);
    }

    #[test]
    fn contributions_sum_to_the_paths() {
        let mut aggregator = Aggregator::new();
        let mut expected_total = 0u128;
        for k in 1..=10u64 {
            let t = TraceId::from_u128(u128::from(k));
            let trace = Trace::new(
                t.clone(),
                vec![
                    Span::new(t.clone(), SpanId::from_u64(1), 0, 100 * k)
                        .with_service("web")
                        .with_name("GET"),
                    Span::new(t.clone(), SpanId::from_u64(2), 10, 10 + 20 * k)
                        .with_parent(SpanId::from_u64(1))
                        .with_service("db")
                        .with_name("SELECT"),
                ],
            );
            let analysis = analyze_critical_path(&trace, &Options::default());
            expected_total += u128::from(analysis.critical_ns());
            aggregator.add(&analysis);
        }
        let aggregate = aggregator.finish();
        assert_eq!(aggregate.traces, 10);
        let sum: u128 = aggregate
            .operations
            .iter()
            .map(|c| c.total_critical_ns)
            .sum();
        assert_eq!(sum, expected_total);
        let db = aggregate
            .operations
            .iter()
            .find(|c| &*c.service == "db")
            .unwrap();
        assert_eq!(db.traces, 10);
        assert_eq!(db.critical_ns_p50, 20 * 5);
        assert!((db.share_p50 - 0.2).abs() < 1e-9);
        assert_eq!(&*aggregate.operations[0].service, "web");
    }
}
