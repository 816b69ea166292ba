//! `lightstep compare`: two sets of traces, from files or from two time windows of a trace
//! store, and how each operation's and each calling context's critical-path time changed from
//! the first to the second, with a rank test saying whether the change is more than noise.
//!
//! Each set goes through `analyze`'s per-trace loop ([`Run::profile`]), so the readers, the
//! stores and the analysis are those of `lightstep analyze`; what is kept across traces is one
//! value per trace and operation or context on its path.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::SystemTime;

use clap::{Args, ValueEnum};
use lightstep::query::TraceSource as _;
use lightstep_analysis::compare::{DEFAULT_ALPHA, Profile, compare};
use lightstep_analysis::context::{ContextOptions, DEFAULT_MAX_DEPTH};
use lightstep_analysis::read::Format;
use lightstep_analysis::render;

use crate::analyze::{
    CliError, ModeArg, Run, StoreArgs, StoreFailure, open_output, parse_input_format,
    parse_max_depth, parse_time, quiet_when_closed, read_file, read_store_search, write_error,
};

/// Rows of each table of the text output before the rest is summarized.
const TEXT_ROWS: usize = 20;

/// Traces asked of a store for each window when --limit does not say: a rank test needs more
/// than the 20 a search of `analyze` asks for.
const DEFAULT_WINDOW_LIMIT: usize = 200;

#[derive(Debug, Args)]
pub(crate) struct CompareArgs {
    /// Trace files before: `BEFORE AFTER`, or `BEFORE... --against AFTER...` for several files
    /// a set; `-` reads standard input. Or a store (--jaeger, --tempo, --zipkin) with a
    /// --before and an --after window.
    #[arg(
        value_name = "FILE",
        required_unless_present = "store",
        conflicts_with = "store"
    )]
    files: Vec<PathBuf>,

    /// The files after (the FILEs before it are the files before).
    #[arg(long, value_name = "FILE", num_args = 1.., conflicts_with = "store")]
    against: Vec<PathBuf>,

    /// With a store: the traces before, those that started in this window: `START/DURATION`
    /// (`2026-12-07T10:00:00Z/1h`) or `START..END`, each time RFC 3339 or a duration ago (`2h`).
    #[arg(long, value_name = "WINDOW", value_parser = parse_window, requires = "store")]
    before: Option<Window>,

    /// With a store: the traces after, in a window of the same form.
    #[arg(long, value_name = "WINDOW", value_parser = parse_window, requires = "store")]
    after: Option<Window>,

    /// Output: the changes as text or JSON, or a differential flame graph (SVG: the contexts
    /// after, red where slower, blue where faster).
    #[arg(long, value_enum, default_value_t = CompareFormat::Text)]
    format: CompareFormat,

    /// Significance level: a change is reported as more than noise when its p-value is below.
    #[arg(long, value_name = "P", default_value_t = DEFAULT_ALPHA, value_parser = parse_alpha)]
    alpha: f64,

    /// Start every context at its trace's entry point (the root's service and operation).
    #[arg(long)]
    by_root: bool,

    /// Frames kept from the top of a context; deeper ones are folded into one frame.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_DEPTH, value_parser = parse_max_depth)]
    max_depth: usize,

    /// Semantics: `robust` handles messy data soundly; `jaeger` reproduces Jaeger UI.
    #[arg(long, value_enum, default_value_t = ModeArg::Robust)]
    mode: ModeArg,

    /// Move server spans into their client span when their hosts' clocks disagree (robust mode).
    #[arg(long)]
    correct_skew: bool,

    /// Input format; detected from the content when not given.
    #[arg(long, value_name = "FORMAT", value_parser = parse_input_format, conflicts_with = "store")]
    input_format: Option<Format>,

    /// Write to this file instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,

    /// Refused: the store's search flags name it; compare reads two windows, not ids.
    #[arg(long, value_name = "HEX", hide = true)]
    trace_id: Vec<String>,

    // Boxed: the store's flags would make every command's arguments as large.
    #[command(flatten)]
    store: Box<StoreArgs>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum CompareFormat {
    Text,
    Json,
    Flamegraph,
}

/// A window of time: the traces that started in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    start: SystemTime,
    end: SystemTime,
}

/// `START/DURATION` or `START..END`, each time as `parse_time` reads it.
fn parse_window(text: &str) -> Result<Window, String> {
    let expected = "expected START/DURATION (2026-12-07T10:00:00Z/1h) or START..END";
    let (start, end) = if let Some((start, end)) = text.split_once("..") {
        (
            parse_time(start.trim()).map_err(|e| format!("{expected}: start: {e}"))?,
            parse_time(end.trim()).map_err(|e| format!("{expected}: end: {e}"))?,
        )
    } else if let Some((start, length)) = text.rsplit_once('/') {
        let start = parse_time(start.trim()).map_err(|e| format!("{expected}: start: {e}"))?;
        let length = humantime::parse_duration(length.trim())
            .map_err(|e| format!("{expected}: duration: {e}"))?;
        let end = start
            .checked_add(length)
            .ok_or_else(|| format!("{expected}: the window ends too far in the future"))?;
        (start, end)
    } else {
        return Err(expected.to_owned());
    };
    if end <= start {
        return Err(format!("{expected}: the window ends before it starts"));
    }
    Ok(Window { start, end })
}

fn parse_alpha(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(alpha) if alpha > 0.0 && alpha < 1.0 => Ok(alpha),
        _ => Err("expected a probability between 0 and 1 (0.01)".into()),
    }
}

pub(crate) fn run(args: &CompareArgs) -> Result<(), CliError> {
    let stdout_closed = Rc::new(Cell::new(false));
    quiet_when_closed(compare_sets(args, &stdout_closed), &stdout_closed)
}

/// Where each set comes from.
enum Sets<'a> {
    Files(&'a [PathBuf], &'a [PathBuf]),
    Store(Window, Window),
}

fn sets(args: &CompareArgs) -> Result<Sets<'_>, CliError> {
    let usage = |text: &'static str| Err(CliError::Usage(text.into()));
    if !args.trace_id.is_empty() {
        return usage(
            "compare reads the traces of two windows (--before, --after), not --trace-id",
        );
    }
    if args.store.is_set() {
        if args.store.has_window() {
            return usage(
                "compare takes each set's window from --before and --after, not --since, --until or --lookback",
            );
        }
        return match (args.before, args.after) {
            (Some(before), Some(after)) => Ok(Sets::Store(before, after)),
            _ => usage("with a store, --before and --after name the two windows to compare"),
        };
    }
    let stdin_uses = args
        .files
        .iter()
        .chain(&args.against)
        .filter(|f| f.as_os_str() == "-")
        .count();
    if stdin_uses > 1 {
        return usage("standard input (-) can be only one of the files");
    }
    match (args.files.as_slice(), args.against.as_slice()) {
        (before @ [_, ..], after @ [_, ..]) => Ok(Sets::Files(before, after)),
        ([before, after], []) => Ok(Sets::Files(
            std::slice::from_ref(before),
            std::slice::from_ref(after),
        )),
        _ => usage("give the files as BEFORE AFTER, or BEFORE... --against AFTER..."),
    }
}

fn compare_sets(args: &CompareArgs, stdout_closed: &Rc<Cell<bool>>) -> Result<(), CliError> {
    let sets = sets(args)?;
    let options = args.mode.options(args.correct_skew);
    let contexts = ContextOptions::default()
        .with_by_root(args.by_root)
        .with_max_depth(args.max_depth);
    let mut before = Run::profile(options.clone(), contexts.clone());
    let mut after = Run::profile(options, contexts);
    let input_error = |err| match err {
        // Nothing is written while the sets are read.
        lightstep_analysis::Error::Sink { source, .. } => {
            write_error(args.output.as_deref())(source)
        }
        other => CliError::Input(other),
    };
    let described = match sets {
        Sets::Files(before_files, after_files) => {
            for path in before_files {
                read_file(path, args.input_format, &mut before).map_err(input_error)?;
            }
            for path in after_files {
                read_file(path, args.input_format, &mut after).map_err(input_error)?;
            }
            (describe_files(before_files), describe_files(after_files))
        }
        Sets::Store(before_window, after_window) => {
            let store = args.store.source()?;
            for (window, run) in [(before_window, &mut before), (after_window, &mut after)] {
                let search =
                    args.store
                        .search_between(window.start, window.end, DEFAULT_WINDOW_LIMIT);
                read_store_search(&store, &[], &search, |trace| run.trace(trace)).map_err(
                    |err| match err {
                        StoreFailure::Store(err) => err,
                        StoreFailure::Output(source) => write_error(args.output.as_deref())(source),
                    },
                )?;
            }
            (
                format!("in the --before window of {}", store.name()),
                format!("in the --after window of {}", store.name()),
            )
        }
    };
    let before = take(before, &described.0)?;
    let after = take(after, &described.1)?;
    let comparison = compare(before, after, args.alpha);

    let write_error = write_error(args.output.as_deref());
    let (output_file, mut out) = open_output(args.output.as_deref(), stdout_closed)?;
    match args.format {
        CompareFormat::Text => render::write_comparison_text(&mut out, &comparison, TEXT_ROWS),
        CompareFormat::Json => render::write_comparison_json(&mut out, &comparison),
        CompareFormat::Flamegraph => render::write_diff_flamegraph(&mut out, &comparison),
    }
    .map_err(&write_error)?;
    if let Some(output) = output_file {
        output.commit().map_err(&write_error)?;
    }
    Ok(())
}

/// The set a run read, unless it holds no trace.
fn take(run: Run, described: &str) -> Result<Profile, CliError> {
    match run.into_profile() {
        Some(profile) if profile.traces() > 0 => Ok(profile),
        _ => Err(CliError::NoTraces(described.to_owned())),
    }
}

fn describe_files(files: &[PathBuf]) -> String {
    let names: Vec<String> = files
        .iter()
        .map(|f| match f.as_os_str() == "-" {
            true => "<stdin>".to_owned(),
            false => Path::new(f).display().to_string(),
        })
        .collect();
    format!("in {}", names.join(", "))
}
