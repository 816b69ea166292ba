//! `lightstep analyze`: read trace files, find each trace's critical path, print it.
//!
//! Traces are analyzed one at a time as the readers hand them over, so memory follows the
//! largest trace; only `--aggregate` keeps anything across traces (a few numbers per operation
//! and trace).

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use clap::{Args, ValueEnum};
use lightstep_analysis::aggregate::Aggregator;
use lightstep_analysis::read::{self, Format};
use lightstep_analysis::render::{self, JsonWriter};
use lightstep_analysis::{
    CriticalPathAnalysis, Mode, Options, Trace, TraceId, analyze_assembled_into, assemble,
};

use crate::progress::{Counting, Progress};

/// Rows of the text table before the rest is summarized.
const TEXT_ROWS: usize = 40;

#[derive(Debug, Args)]
pub(crate) struct AnalyzeArgs {
    /// Trace files to read; `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,

    /// Semantics: `robust` handles messy data soundly; `jaeger` reproduces Jaeger UI.
    #[arg(long, value_enum, default_value_t = ModeArg::Robust)]
    mode: ModeArg,

    /// Output: a table, the documented JSON shape, or an SVG timeline of one trace.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,

    /// Input format; detected from the content when not given.
    #[arg(long, value_name = "FORMAT", value_parser = parse_input_format)]
    input_format: Option<Format>,

    /// Only the trace with this id (hex).
    #[arg(long, value_name = "HEX")]
    trace_id: Option<String>,

    /// Contribution to the critical path per service and operation across all traces (with
    /// `--format text` only this table is printed).
    #[arg(long)]
    aggregate: bool,

    /// Move server spans into their client span when their hosts' clocks disagree (robust mode).
    #[arg(long)]
    correct_skew: bool,

    /// Write to this file instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ModeArg {
    Robust,
    Jaeger,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum OutputFormat {
    Text,
    Json,
    Svg,
}

fn parse_input_format(text: &str) -> Result<Format, String> {
    text.parse()
}

/// Everything that can stop the command.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// Reading or analyzing an input failed.
    #[error(transparent)]
    Input(#[from] lightstep_analysis::Error),
    /// The output could not be written.
    #[error("cannot write {}", path.display())]
    Output {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// `--trace-id` named a trace that no input holds.
    #[error("trace {id} is not in the input; {held}")]
    TraceNotFound {
        /// The id as given.
        id: String,
        /// What the input holds instead, in a few words.
        held: String,
    },
    /// The arguments do not fit together.
    #[error("{0}")]
    Usage(&'static str),
    /// `--format svg` found no trace to draw.
    #[error("no traces in the input to draw")]
    NothingToDraw,
}

impl CliError {
    /// Whether the arguments themselves were wrong (exit status 2, as for clap's errors).
    pub(crate) fn is_usage(&self) -> bool {
        matches!(self, Self::Usage(_))
    }
}

/// Where `--output` goes while the command runs: a regular file is written beside the
/// destination under a new temporary name and renamed over it only when everything is written,
/// so that a failed run leaves neither half a document nor a truncated earlier file; the
/// earlier file's permissions are kept. Anything else (a symbolic link, a terminal, a pipe,
/// `/dev/stdout`), or a directory where no file can be created, is written in place.
struct OutputFile {
    destination: PathBuf,
    partial: Option<PathBuf>,
}

impl OutputFile {
    fn create(destination: &Path) -> io::Result<(Self, File)> {
        let in_place = |destination: &Path| {
            let file = File::create(destination)?;
            let output = Self {
                destination: destination.to_path_buf(),
                partial: None,
            };
            Ok((output, file))
        };
        // Not followed: a link is written through, as before, never replaced by a file.
        let earlier = match std::fs::symlink_metadata(destination) {
            Ok(meta) if meta.is_file() => Some(meta.permissions()),
            Ok(_) => return in_place(destination),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let Some(name) = destination.file_name() else {
            return in_place(destination);
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        for attempt in 0..16u32 {
            let mut partial_name = std::ffi::OsString::from(".");
            partial_name.push(name);
            partial_name.push(format!(
                ".{}-{:08x}.partial",
                std::process::id(),
                nanos.wrapping_add(attempt.wrapping_mul(0x9e37_79b9))
            ));
            let partial = destination.with_file_name(partial_name);
            // A new file only: never one (or a link) that is already there.
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&partial)
            {
                Ok(file) => {
                    let output = Self {
                        destination: destination.to_path_buf(),
                        partial: Some(partial),
                    };
                    if let Some(permissions) = earlier {
                        file.set_permissions(permissions)?;
                    }
                    return Ok((output, file));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                    return in_place(destination);
                }
                Err(e) => return Err(e),
            }
        }
        in_place(destination)
    }

    /// Puts the finished output in place.
    fn commit(mut self) -> io::Result<()> {
        match self.partial.take() {
            Some(partial) => std::fs::rename(&partial, &self.destination).inspect_err(|_| {
                let _ = std::fs::remove_file(&partial);
            }),
            None => Ok(()),
        }
    }
}

impl Drop for OutputFile {
    /// A run that did not commit leaves nothing behind.
    fn drop(&mut self) {
        if let Some(partial) = self.partial.take() {
            let _ = std::fs::remove_file(partial);
        }
    }
}

enum Sink {
    Text(Box<dyn Write>),
    Json(JsonWriter<Box<dyn Write>>),
    Svg {
        out: Box<dyn Write>,
        drawn: bool,
        skipped: usize,
    },
}

/// Standard output that remembers when its reader has gone away (`| head`). The broken pipe
/// can reach [`run`] wrapped in errors whose kind no longer says so (the JSON writer's), so the
/// write itself takes note.
struct WatchedStdout {
    inner: io::StdoutLock<'static>,
    closed: Rc<Cell<bool>>,
}

impl WatchedStdout {
    fn note<T>(&self, result: io::Result<T>) -> io::Result<T> {
        if result.as_ref().is_err_and(crate::is_closed_pipe) {
            self.closed.set(true);
        }
        result
    }
}

impl Write for WatchedStdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let result = self.inner.write(buf);
        self.note(result)
    }

    fn flush(&mut self) -> io::Result<()> {
        let result = self.inner.flush();
        self.note(result)
    }
}

pub(crate) fn run(args: &AnalyzeArgs) -> Result<(), CliError> {
    let stdout_closed = Rc::new(Cell::new(false));
    match analyze(args, &stdout_closed) {
        // The reader has all it wanted: the rest of the output has no one to go to, and that
        // is no failure (as with `git log | head`).
        Err(_) if stdout_closed.get() => Ok(()),
        outcome => outcome,
    }
}

fn analyze(args: &AnalyzeArgs, stdout_closed: &Rc<Cell<bool>>) -> Result<(), CliError> {
    if args.aggregate && args.format == OutputFormat::Svg {
        return Err(CliError::Usage(
            "--aggregate has no svg rendering; use --format text or json",
        ));
    }
    let output_path = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from("<stdout>"));
    let write_error = |source: io::Error| CliError::Output {
        path: output_path.clone(),
        source,
    };
    let (output_file, out): (Option<OutputFile>, Box<dyn Write>) = match &args.output {
        Some(path) => {
            let (output, file) = OutputFile::create(path).map_err(write_error)?;
            (Some(output), Box::new(BufWriter::new(file)))
        }
        None => {
            let stdout = WatchedStdout {
                inner: io::stdout().lock(),
                closed: Rc::clone(stdout_closed),
            };
            (None, Box::new(BufWriter::new(stdout)))
        }
    };
    let mut sink = match args.format {
        OutputFormat::Text => Sink::Text(out),
        OutputFormat::Json => Sink::Json(JsonWriter::new(out).map_err(write_error)?),
        OutputFormat::Svg => Sink::Svg {
            out,
            drawn: false,
            skipped: 0,
        },
    };
    let mode = match args.mode {
        ModeArg::Robust => Mode::Robust,
        ModeArg::Jaeger => Mode::Jaeger,
    };
    let options = Options::new(mode).with_skew_correction(args.correct_skew);
    let wanted = args.trace_id.as_deref().map(TraceId::parse);
    let mut aggregator = args.aggregate.then(Aggregator::new);
    let mut matched = 0usize;
    let (mut others, mut others_total) = (Vec::new(), 0usize);
    // One result reused trace after trace: its memory stays mapped between traces.
    let mut analysis = CriticalPathAnalysis::default();

    for path in &args.files {
        let total = if path.as_os_str() == "-" {
            None
        } else {
            std::fs::metadata(path).ok().map(|m| m.len())
        };
        let progress = RefCell::new(Progress::new(path.display().to_string(), total));
        let mut handle = |trace: Trace| -> io::Result<()> {
            if let Ok(mut p) = progress.try_borrow_mut() {
                p.add_trace();
            }
            if wanted.as_ref().is_some_and(|w| *w != trace.trace_id) {
                // For the error if none matches: what the input does hold.
                if others.len() < SHOWN_OTHERS {
                    others.push(trace.trace_id.to_string());
                }
                others_total += 1;
                return Ok(());
            }
            matched += 1;
            let assembled = assemble(&trace, &options);
            analyze_assembled_into(&trace, &assembled, &mut analysis);
            if let Some(aggregator) = aggregator.as_mut() {
                aggregator.add(&analysis);
            }
            match &mut sink {
                Sink::Text(out) if aggregator.is_none() => {
                    if matched > 1 {
                        writeln!(out)?;
                    }
                    render::write_text(out, &analysis, TEXT_ROWS)
                }
                Sink::Text(_) => Ok(()),
                Sink::Json(writer) => writer.trace(&analysis),
                Sink::Svg {
                    out, drawn: false, ..
                } => {
                    render::write_svg(out, &trace, &assembled, &analysis)?;
                    if let Sink::Svg { drawn, .. } = &mut sink {
                        *drawn = true;
                    }
                    Ok(())
                }
                Sink::Svg { skipped, .. } => {
                    *skipped += 1;
                    Ok(())
                }
            }
        };
        let result = if path.as_os_str() == "-" {
            let input = Counting {
                inner: io::stdin().lock(),
                progress: &progress,
            };
            read::read_traces(input, Path::new("<stdin>"), args.input_format, &mut handle)
        } else {
            let file = File::open(path).map_err(|source| lightstep_analysis::Error::Io {
                file: path.clone(),
                source,
            })?;
            let input = Counting {
                inner: file,
                progress: &progress,
            };
            read::read_traces(input, path, args.input_format, &mut handle)
        };
        progress.borrow_mut().finish();
        // The reader hands back what the output did as `Sink`: it is an output error.
        let stats = result.map_err(|err| match err {
            lightstep_analysis::Error::Sink { source, .. } => write_error(source),
            other => CliError::Input(other),
        })?;
        if stats.split_traces > 0 {
            crate::diagnostic(format_args!(
                "{}: {} traces went on after more than {} spans were held across JSON lines, and were analyzed in parts",
                path.display(),
                stats.split_traces,
                read::HELD_SPANS,
            ));
        }
    }

    if let Some(id) = &args.trace_id
        && matched == 0
    {
        return Err(CliError::TraceNotFound {
            id: id.clone(),
            held: describe_held(&others, others_total),
        });
    }
    let aggregate = aggregator.map(Aggregator::finish);
    match sink {
        Sink::Text(mut out) => {
            if let Some(aggregate) = &aggregate {
                render::write_aggregate_text(&mut out, aggregate, TEXT_ROWS)
                    .map_err(write_error)?;
            } else if matched == 0 {
                writeln!(out, "no traces in the input").map_err(write_error)?;
            }
            out.flush().map_err(write_error)?;
        }
        Sink::Json(writer) => {
            writer.finish(aggregate.as_ref()).map_err(write_error)?;
        }
        Sink::Svg {
            mut out,
            drawn,
            skipped,
        } => {
            if !drawn {
                return Err(CliError::NothingToDraw);
            }
            out.flush().map_err(write_error)?;
            if skipped > 0 {
                crate::diagnostic(format_args!(
                    "the svg shows the first trace; {skipped} more were not drawn (choose one with --trace-id)"
                ));
            }
        }
    }
    if let Some(output) = output_file {
        output.commit().map_err(write_error)?;
    }
    Ok(())
}

/// How many of the input's trace ids a `--trace-id` that matched none of them lists.
const SHOWN_OTHERS: usize = 5;

/// "it holds 3 traces: a, b, c", for the error of a `--trace-id` that matched nothing.
fn describe_held(shown: &[String], total: usize) -> String {
    match total {
        0 => "it holds no trace".to_owned(),
        1 => format!("it holds one trace: {}", shown[0]),
        _ => format!(
            "it holds {total} traces: {}{}",
            shown.join(", "),
            if total > shown.len() { ", ..." } else { "" }
        ),
    }
}
