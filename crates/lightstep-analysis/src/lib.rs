//! Critical-path analysis of distributed traces, fast on huge and messy ones.
//!
//! The crate owns a span model of its own ([`Span`], [`Trace`]), trace assembly that repairs
//! messy input ([`assemble`]), the critical-path walk ([`analyze_critical_path`]) in two modes
//! ([`Mode::Robust`], the default, and [`Mode::Jaeger`], which reproduces Jaeger UI), and
//! aggregation across traces: per (service, operation) ([`aggregate`]), per calling context
//! ([`context`], for folded stacks and flame graphs), and the comparison of two sets of traces
//! ([`compare`]).
//!
//! # Quick start
//!
//! ```
//! use lightstep_analysis::{analyze_critical_path, Options, Span, SpanId, Trace, TraceId};
//!
//! let trace_id = TraceId::parse("5b8efff798038103d269b633813fc60c");
//! let root = SpanId::parse("eee19b7ec3c1b173");
//! let trace = Trace::new(trace_id.clone(), vec![
//!     Span::new(trace_id.clone(), root.clone(), 1_000, 9_000).with_service("web").with_name("GET /"),
//!     Span::new(trace_id.clone(), SpanId::parse("eee19b7ec3c1b174"), 2_000, 7_000)
//!         .with_parent(root)
//!         .with_service("db")
//!         .with_name("SELECT"),
//! ]);
//! let analysis = analyze_critical_path(&trace, &Options::default());
//! assert_eq!(analysis.critical_spans, ["eee19b7ec3c1b173", "eee19b7ec3c1b174"]);
//! assert_eq!(analysis.services[0].service.as_ref(), "db");
//! ```
//!
//! Nothing here recurses on the depth of a trace: assembly, sanitizing and the walk run on
//! explicit stacks and arrays indexed by span position.
//!
//! The minimum supported Rust version is 1.90. The crate has no feature flags.

pub mod aggregate;
mod assemble;
pub mod compare;
pub mod context;
mod critical_path;
mod error;
mod model;
mod parallel;
pub mod read;
pub mod render;
mod resolve;

pub use assemble::{AssembledTrace, OffPathReason, assemble};
pub use critical_path::{
    Analyzer, CriticalPathAnalysis, Diagnostics, Gap, Mode, OffPath, Options, PathSpan, Section,
    Share, analyze_assembled, analyze_assembled_into, analyze_critical_path,
};
pub use error::Error;
pub use model::{Link, ParentRelation, Span, SpanId, SpanKind, Status, Trace, TraceId};
pub use resolve::declared_parents;
