//! `lightstep analyze`: read traces from files or from a trace store (Jaeger, Tempo, Zipkin),
//! find each trace's critical path, print it.
//!
//! Traces are analyzed one at a time as the readers (or the store) hand them over, so memory
//! follows the largest trace; only `--aggregate` keeps anything across traces (a few numbers
//! per operation and trace), and `--format folded` and `flamegraph` one node per calling
//! context. With a store, the requests run on a small tokio runtime while the analysis and the
//! output stay on this thread. `lightstep compare` reads each of its two sets through the same
//! loop ([`Run`]).

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use clap::{Args, ValueEnum};
use lightstep::config::SecretString;
use lightstep::query::{
    Jaeger, JaegerApi, Search, SourceBuilder, Tempo, TempoApi, TraceSource as _, TraceStore,
    Traces, Zipkin,
};
use lightstep_analysis::aggregate::Aggregator;
use lightstep_analysis::compare::Profile;
use lightstep_analysis::context::{ContextAggregator, ContextOptions, DEFAULT_MAX_DEPTH};
use lightstep_analysis::read::{self, Format};
use lightstep_analysis::render::{self, JsonWriter};
use lightstep_analysis::{
    AssembledTrace, CriticalPathAnalysis, Mode, Options, Trace, TraceId, analyze_assembled_into,
    assemble,
};

use crate::progress::{Counting, Progress};

/// Rows of the text table before the rest is summarized.
const TEXT_ROWS: usize = 40;
/// Traces of at least this many spans are freed on a thread of their own.
const FREED_APART: usize = 100_000;

#[derive(Debug, Args)]
pub(crate) struct AnalyzeArgs {
    /// Trace files to read; `-` reads standard input. Or a store: --jaeger, --tempo, --zipkin.
    #[arg(
        value_name = "FILE",
        required_unless_present = "store",
        conflicts_with = "store"
    )]
    files: Vec<PathBuf>,

    /// Semantics: `robust` handles messy data soundly; `jaeger` reproduces Jaeger UI.
    #[arg(long, value_enum, default_value_t = ModeArg::Robust)]
    mode: ModeArg,

    /// Output: a table, the documented JSON shape, an SVG timeline of one trace, or over all
    /// traces the critical-path time per calling context as folded stacks (flamegraph.pl's and
    /// inferno's input) or as an SVG flame graph.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,

    /// With --format folded or flamegraph: start every context at its trace's entry point (the
    /// root's service and operation), one flame graph per entry point.
    #[arg(long)]
    by_root: bool,

    /// With --format folded or flamegraph: frames kept from the top of a context; deeper ones
    /// are folded into one `…(N more)` frame that keeps their time.
    #[arg(long, value_name = "N", value_parser = parse_max_depth)]
    max_depth: Option<usize>,

    /// Input format; detected from the content when not given.
    #[arg(long, value_name = "FORMAT", value_parser = parse_input_format, conflicts_with = "store")]
    input_format: Option<Format>,

    /// Only the trace with this id (hex; repeat for several). With a store: the traces to
    /// fetch, instead of a search.
    #[arg(long, value_name = "HEX")]
    trace_id: Vec<String>,

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

    // Boxed: the store's flags would make every command's arguments as large.
    #[command(flatten)]
    store: Box<StoreArgs>,
}

/// Where traces are read from instead of files: a store, how to reach it, and what to ask it
/// for (trace ids, or a search). Shared by every command that reads from a store.
#[derive(Debug, Args)]
#[command(next_help_heading = "Trace store")]
pub(crate) struct StoreArgs {
    /// Read from Jaeger's query API at this URL (`http://localhost:16686`).
    #[arg(long, value_name = "URL", group = "store")]
    jaeger: Option<String>,

    /// Read from Grafana Tempo at this URL (`http://localhost:3200`).
    #[arg(long, value_name = "URL", group = "store")]
    tempo: Option<String>,

    /// Read from Zipkin at this URL (`http://localhost:9411`).
    #[arg(long, value_name = "URL", group = "store")]
    zipkin: Option<String>,

    /// Jaeger's API: `v1` (Jaeger UI's JSON API) or `v3` (api_v3, OTLP; searches need Jaeger
    /// 2.19 or later).
    #[arg(long, value_enum, value_name = "API", requires = "jaeger")]
    jaeger_api: Option<JaegerApiArg>,

    /// Tempo's trace endpoint: `v1` (/api/traces) or `v2` (/api/v2/traces, Tempo 2.5 or later).
    #[arg(long, value_enum, value_name = "API", requires = "tempo")]
    tempo_api: Option<TempoApiArg>,

    /// Tempo's tenant (the X-Scope-OrgID header).
    #[arg(long, value_name = "ID", requires = "tempo")]
    tenant: Option<String>,

    /// A header sent with every request, `'Name: value'` (repeat for several). Values are
    /// secrets: never printed, and refused over plaintext to a host that is not loopback
    /// unless --insecure.
    #[arg(long = "header", value_name = "NAME: VALUE", value_parser = secret_arg, requires = "store")]
    headers: Vec<SecretString>,

    /// Trust the CA certificates of this PEM file, besides the system's.
    #[arg(long, value_name = "FILE", requires = "store")]
    ca_file: Option<PathBuf>,

    /// The longest wait to connect, for an answer, or between two pieces of one.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, requires = "store")]
    timeout: Option<Duration>,

    /// Allow header values to travel in plaintext (http://) to a host that is not loopback.
    #[arg(long, requires = "store")]
    insecure: bool,

    /// Requests in flight at once (fetches of several ids, and of a Tempo search's traces).
    #[arg(long, value_name = "N", requires = "store")]
    concurrency: Option<usize>,

    /// Reach the store through this HTTP proxy, `http://[user:password@]host:port` (default:
    /// HTTPS_PROXY for an https:// store, HTTP_PROXY for an http:// one; hosts in NO_PROXY, and
    /// loopback, are reached directly).
    #[arg(long, value_name = "URL", value_parser = secret_arg, requires = "store")]
    proxy: Option<SecretString>,

    /// Search: traces with a span of this service.
    #[arg(
        long,
        value_name = "NAME",
        requires = "store",
        conflicts_with = "trace_id"
    )]
    service: Option<String>,

    /// Search: traces with a span of this operation.
    #[arg(
        long,
        value_name = "NAME",
        requires = "store",
        conflicts_with = "trace_id"
    )]
    operation: Option<String>,

    /// Search: traces with a span carrying this tag, `key=value` (repeat for several).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag, requires = "store", conflicts_with = "trace_id")]
    tags: Vec<(String, String)>,

    /// Search (Tempo): a TraceQL query, instead of --service, --operation and --tag.
    #[arg(
        long,
        value_name = "QUERY",
        requires = "tempo",
        conflicts_with = "trace_id"
    )]
    traceql: Option<String>,

    /// Search: traces at least this long (`250ms`).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, requires = "store", conflicts_with = "trace_id")]
    min_duration: Option<Duration>,

    /// Search: traces at most this long.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, requires = "store", conflicts_with = "trace_id")]
    max_duration: Option<Duration>,

    /// Search: traces that started at or after this time (RFC 3339, `2026-11-03T14:00:00Z`,
    /// or a duration ago, `2h`).
    #[arg(long, value_name = "TIME", value_parser = parse_time, requires = "store", conflicts_with_all = ["trace_id", "lookback"])]
    since: Option<SystemTime>,

    /// Search: traces that started before this time (RFC 3339 or a duration ago; default now).
    #[arg(long, value_name = "TIME", value_parser = parse_time, requires = "store", conflicts_with = "trace_id")]
    until: Option<SystemTime>,

    /// Search: traces that started at most this long before --until (default 1h).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, requires = "store", conflicts_with = "trace_id")]
    lookback: Option<Duration>,

    /// Search: how many traces to ask for (default 20; with compare, 200 for each window).
    #[arg(
        long,
        value_name = "N",
        requires = "store",
        conflicts_with = "trace_id"
    )]
    limit: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum JaegerApiArg {
    V1,
    V3,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum TempoApiArg {
    V1,
    V2,
}

/// A `--header` as given: kept secret from the start, so that neither clap's errors nor
/// `Debug` can show it; it is split into name and value when the source is built.
fn secret_arg(text: &str) -> Result<SecretString, String> {
    Ok(SecretString::new(text))
}

fn parse_tag(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err("expected key=value".into()),
    }
}

/// A time as RFC 3339 (`2026-11-03T14:00:00Z`, or without the zone for UTC), or a duration
/// that long ago (`2h`).
pub(crate) fn parse_time(text: &str) -> Result<SystemTime, String> {
    if let Ok(time) = humantime::parse_rfc3339_weak(text) {
        return Ok(time);
    }
    let ago = humantime::parse_duration(text).map_err(|_| {
        "expected an RFC 3339 time (2026-11-03T14:00:00Z) or a duration ago (2h)".to_owned()
    })?;
    SystemTime::now()
        .checked_sub(ago)
        .ok_or_else(|| "the duration reaches before 1970".to_owned())
}

impl StoreArgs {
    /// Whether a store is named.
    pub(crate) fn is_set(&self) -> bool {
        self.jaeger.is_some() || self.tempo.is_some() || self.zipkin.is_some()
    }

    /// The proxy for the store at `url`, and the hosts that bypass it: `--proxy`, or the
    /// variable of the URL's scheme as curl reads them (`HTTPS_PROXY` or `https_proxy` for
    /// `https://`, `HTTP_PROXY` or `http_proxy` for `http://`), with `NO_PROXY` (or
    /// `no_proxy`).
    fn proxy(&self, url: &str) -> Option<(String, Option<String>)> {
        let env = lightstep::config::EnvSnapshot::from_process();
        let first = |names: [&str; 2]| {
            names
                .into_iter()
                .find_map(|name| env.get(name).filter(|v| !v.trim().is_empty()))
                .map(|v| v.trim().to_owned())
        };
        let proxy = match &self.proxy {
            Some(proxy) => proxy.expose_secret().trim().to_owned(),
            None if url
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("https://") =>
            {
                first(["HTTPS_PROXY", "https_proxy"])?
            }
            None => first(["HTTP_PROXY", "http_proxy"])?,
        };
        Some((proxy, first(["NO_PROXY", "no_proxy"])))
    }

    /// The store named, built from the settings.
    pub(crate) fn source(&self) -> Result<TraceStore, CliError> {
        fn common<S>(
            args: &StoreArgs,
            url: &str,
            mut builder: SourceBuilder<S>,
        ) -> Result<SourceBuilder<S>, CliError> {
            for (i, header) in args.headers.iter().enumerate() {
                let Some((name, value)) = header.expose_secret().split_once(':') else {
                    return Err(CliError::Usage(
                        format!(
                            "--header number {} is not `Name: value` (its text is not shown: it may be a secret)",
                            i + 1
                        )
                        .into(),
                    ));
                };
                builder = builder.with_header(name.trim(), value.trim());
            }
            if let Some(ca_file) = &args.ca_file {
                builder = builder.with_ca_file(ca_file);
            }
            if let Some(timeout) = args.timeout {
                builder = builder.with_timeout(timeout);
            }
            if let Some(concurrency) = args.concurrency {
                builder = builder.with_concurrency(concurrency);
            }
            if let Some((proxy, no_proxy)) = args.proxy(url) {
                builder = builder.with_proxy(proxy);
                if let Some(no_proxy) = no_proxy {
                    builder = builder.with_no_proxy(no_proxy);
                }
            }
            Ok(builder.with_insecure(args.insecure))
        }
        let store: TraceStore = if let Some(url) = &self.jaeger {
            let api = match self.jaeger_api {
                Some(JaegerApiArg::V3) => JaegerApi::V3,
                _ => JaegerApi::V1,
            };
            common(self, url, Jaeger::builder(url))?
                .with_api(api)
                .build()?
                .into()
        } else if let Some(url) = &self.tempo {
            let api = match self.tempo_api {
                Some(TempoApiArg::V2) => TempoApi::V2,
                _ => TempoApi::V1,
            };
            let mut builder = common(self, url, Tempo::builder(url))?.with_api(api);
            if let Some(tenant) = &self.tenant {
                builder = builder.with_tenant(tenant);
            }
            builder.build()?.into()
        } else if let Some(url) = &self.zipkin {
            common(self, url, Zipkin::builder(url))?.build()?.into()
        } else {
            return Err(CliError::Usage(
                "no store named: --jaeger, --tempo or --zipkin".into(),
            ));
        };
        Ok(store)
    }

    /// Whether a time window is given (--since, --until, --lookback).
    pub(crate) fn has_window(&self) -> bool {
        self.since.is_some() || self.until.is_some() || self.lookback.is_some()
    }

    /// The search the flags describe over the window `since..until`, asking for
    /// `default_limit` traces unless --limit says how many: for a command that reads two
    /// windows.
    pub(crate) fn search_between(
        &self,
        since: SystemTime,
        until: SystemTime,
        default_limit: usize,
    ) -> Search {
        let mut search = self.search();
        search.since = Some(since);
        search.until = Some(until);
        search.lookback = None;
        if self.limit.is_none() {
            search.limit = default_limit;
        }
        search
    }

    /// The search the flags describe.
    pub(crate) fn search(&self) -> Search {
        let mut search = Search::new();
        search.service = self.service.clone();
        search.operation = self.operation.clone();
        search.tags = self.tags.clone();
        search.traceql = self.traceql.clone();
        search.min_duration = self.min_duration;
        search.max_duration = self.max_duration;
        search.since = self.since;
        search.until = self.until;
        search.lookback = self.lookback;
        if let Some(limit) = self.limit {
            search.limit = limit;
        }
        search
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ModeArg {
    Robust,
    Jaeger,
}

impl ModeArg {
    pub(crate) fn options(self, correct_skew: bool) -> Options {
        let mode = match self {
            Self::Robust => Mode::Robust,
            Self::Jaeger => Mode::Jaeger,
        };
        Options::new(mode).with_skew_correction(correct_skew)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum OutputFormat {
    Text,
    Json,
    Svg,
    Folded,
    Flamegraph,
}

pub(crate) fn parse_input_format(text: &str) -> Result<Format, String> {
    text.parse()
}

/// A depth limit for calling contexts: at least 1.
pub(crate) fn parse_max_depth(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("expected a whole number of frames, at least 1".into()),
    }
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
    Usage(Cow<'static, str>),
    /// `--format svg` or `flamegraph` found no trace to draw.
    #[error("no traces in the input to draw")]
    NothingToDraw,
    /// A set of `lightstep compare` holds no trace.
    #[error("no traces {0}")]
    NoTraces(String),
    /// The store could not be used, or failed.
    #[error(transparent)]
    Store(#[from] lightstep::query::Error),
    /// The runtime for the store's requests could not start.
    #[error("cannot start the runtime for the store's requests")]
    Runtime(#[source] io::Error),
}

impl CliError {
    /// Whether the arguments themselves were wrong (exit status 2, as for clap's errors): the
    /// store's URL, headers, CA file, settings, trace ids or search.
    pub(crate) fn is_usage(&self) -> bool {
        use lightstep::query::Error as Q;
        matches!(
            self,
            Self::Usage(_)
                | Self::Store(
                    Q::InvalidUrl { .. }
                        | Q::InvalidHeader { .. }
                        | Q::PlaintextSecrets { .. }
                        | Q::CaFile { .. }
                        | Q::Setting { .. }
                        | Q::InvalidTraceId { .. }
                        | Q::InvalidSearch { .. }
                )
        )
    }
}

/// Where `--output` goes while the command runs: a regular file is written beside the
/// destination under a new temporary name and renamed over it only when everything is written,
/// so that a failed run leaves neither half a document nor a truncated earlier file; the
/// earlier file's permissions are kept. Anything else (a symbolic link, a terminal, a pipe,
/// `/dev/stdout`), or a directory where no file can be created, is written in place.
pub(crate) struct OutputFile {
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
    pub(crate) fn commit(mut self) -> io::Result<()> {
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
    /// `--format folded` or `flamegraph`: written at the end.
    Contexts {
        out: Box<dyn Write>,
        contexts: Box<ContextAggregator>,
        flamegraph: bool,
    },
    /// One set of `lightstep compare`.
    Profile(Box<Profile>),
}

/// Standard output that remembers when its reader has gone away (`| head`). The broken pipe
/// can reach [`run`] wrapped in errors whose kind no longer says so (the JSON writer's), so the
/// write itself takes note.
struct WatchedStdout {
    inner: Box<dyn Write>,
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
    quiet_when_closed(analyze(args, &stdout_closed), &stdout_closed)
}

/// A failure that only came from standard output's reader going away is none: the reader has
/// all it wanted, and the rest of the output has no one to go to (as with `git log | head`).
pub(crate) fn quiet_when_closed(
    outcome: Result<(), CliError>,
    stdout_closed: &Rc<Cell<bool>>,
) -> Result<(), CliError> {
    match outcome {
        Err(_) if stdout_closed.get() => Ok(()),
        outcome => outcome,
    }
}

/// Where the output goes: `--output`'s file (put in place by [`OutputFile::commit`]) or
/// standard output, buffered; the error that names it when writing fails.
pub(crate) fn open_output(
    output: Option<&Path>,
    stdout_closed: &Rc<Cell<bool>>,
) -> Result<(Option<OutputFile>, Box<dyn Write>), CliError> {
    match output {
        Some(path) => {
            let (output, file) = OutputFile::create(path).map_err(write_error(Some(path)))?;
            Ok((Some(output), Box::new(BufWriter::new(file))))
        }
        None => {
            let stdout = WatchedStdout {
                inner: stdout_writer(),
                closed: Rc::clone(stdout_closed),
            };
            Ok((None, Box::new(BufWriter::new(stdout))))
        }
    }
}

/// Standard output to write to. Where it is not a terminal (a pipe or a file, where large
/// answers go), it is written through a handle of its own: the standard library's standard
/// output is line-buffered, and searches each write for its last newline, which took about
/// half the time of writing a million-span JSON answer.
fn stdout_writer() -> Box<dyn Write> {
    let stdout = io::stdout();
    if !stdout.is_terminal() {
        #[cfg(unix)]
        let handle = std::os::fd::AsFd::as_fd(&stdout).try_clone_to_owned();
        #[cfg(windows)]
        let handle = std::os::windows::io::AsHandle::as_handle(&stdout).try_clone_to_owned();
        #[cfg(any(unix, windows))]
        if let Ok(handle) = handle {
            return Box::new(File::from(handle));
        }
    }
    Box::new(stdout.lock())
}

/// The error for a failed write to `--output`'s file, or to standard output.
pub(crate) fn write_error(output: Option<&Path>) -> impl Fn(io::Error) -> CliError + '_ {
    move |source| CliError::Output {
        path: output.map_or_else(|| PathBuf::from("<stdout>"), Path::to_path_buf),
        source,
    }
}

fn analyze(args: &AnalyzeArgs, stdout_closed: &Rc<Cell<bool>>) -> Result<(), CliError> {
    if args.aggregate && args.format != OutputFormat::Text && args.format != OutputFormat::Json {
        let format = args
            .format
            .to_possible_value()
            .map_or_else(String::new, |v| v.get_name().to_owned());
        return Err(CliError::Usage(
            format!("--aggregate has no {format} rendering; use --format text or json").into(),
        ));
    }
    let contexts = matches!(args.format, OutputFormat::Folded | OutputFormat::Flamegraph);
    if !contexts && (args.by_root || args.max_depth.is_some()) {
        return Err(CliError::Usage(
            "--by-root and --max-depth go with --format folded or flamegraph".into(),
        ));
    }
    // Before the output is created: a store that cannot be used leaves no file behind.
    let store = if args.store.is_set() {
        Some(args.store.source()?)
    } else {
        None
    };
    let write_error = write_error(args.output.as_deref());
    let (output_file, out) = open_output(args.output.as_deref(), stdout_closed)?;
    let sink = match args.format {
        OutputFormat::Text => Sink::Text(out),
        OutputFormat::Json => Sink::Json(JsonWriter::new(out).map_err(&write_error)?),
        OutputFormat::Svg => Sink::Svg {
            out,
            drawn: false,
            skipped: 0,
        },
        OutputFormat::Folded | OutputFormat::Flamegraph => Sink::Contexts {
            out,
            contexts: Box::new(ContextAggregator::new(
                ContextOptions::default()
                    .with_by_root(args.by_root)
                    .with_max_depth(args.max_depth.unwrap_or(DEFAULT_MAX_DEPTH)),
            )),
            flamegraph: args.format == OutputFormat::Flamegraph,
        },
    };
    let mut run = Run {
        sink,
        options: args.mode.options(args.correct_skew),
        // With a store, the ids are what is fetched, not a filter.
        wanted: if store.is_some() {
            Vec::new()
        } else {
            args.trace_id
                .iter()
                .map(|id| (TraceId::parse(id), false))
                .collect()
        },
        aggregator: args.aggregate.then(Aggregator::new),
        matched: 0,
        others: Vec::new(),
        others_total: 0,
        analysis: CriticalPathAnalysis::default(),
    };

    match store {
        Some(store) => read_store(&store, args, &mut run).map_err(|err| match err {
            StoreFailure::Store(err) => err,
            StoreFailure::Output(source) => write_error(source),
        })?,
        None => {
            for path in &args.files {
                read_file(path, args.input_format, &mut run).map_err(|err| match err {
                    lightstep_analysis::Error::Sink { source, .. } => write_error(source),
                    other => CliError::Input(other),
                })?;
            }
        }
    }

    if let Some(position) = run.wanted.iter().position(|(_, found)| !found) {
        return Err(CliError::TraceNotFound {
            id: args.trace_id[position].clone(),
            held: describe_held(&run.others, run.others_total),
        });
    }
    let aggregate = run.aggregator.map(Aggregator::finish);
    match run.sink {
        Sink::Text(mut out) => {
            if let Some(aggregate) = &aggregate {
                render::write_aggregate_text(&mut out, aggregate, TEXT_ROWS)
                    .map_err(&write_error)?;
            } else if run.matched == 0 {
                writeln!(out, "no traces in the input").map_err(&write_error)?;
            }
            out.flush().map_err(&write_error)?;
        }
        Sink::Json(writer) => {
            writer.finish(aggregate.as_ref()).map_err(&write_error)?;
        }
        Sink::Svg {
            mut out,
            drawn,
            skipped,
        } => {
            if !drawn {
                return Err(CliError::NothingToDraw);
            }
            out.flush().map_err(&write_error)?;
            if skipped > 0 {
                crate::diagnostic(format_args!(
                    "the svg shows the first trace; {skipped} more were not drawn (choose one with --trace-id)"
                ));
            }
        }
        Sink::Contexts {
            mut out,
            contexts,
            flamegraph,
        } => {
            let tree = contexts.finish();
            if flamegraph {
                if tree.traces == 0 {
                    return Err(CliError::NothingToDraw);
                }
                render::write_flamegraph(&mut out, &tree).map_err(&write_error)?;
            } else {
                if tree.traces == 0 {
                    crate::diagnostic(format_args!("no traces in the input"));
                }
                render::write_folded(&mut out, &tree).map_err(&write_error)?;
            }
        }
        Sink::Profile(_) => {}
    }
    if let Some(output) = output_file {
        output.commit().map_err(&write_error)?;
    }
    Ok(())
}

/// What one run keeps while traces go through it: the output, and what the end needs.
pub(crate) struct Run {
    sink: Sink,
    options: Options,
    /// `--trace-id` on files: the ids, and whether each was seen.
    wanted: Vec<(TraceId, bool)>,
    aggregator: Option<Aggregator>,
    matched: usize,
    /// For the error if an id matches nothing: what the input does hold.
    others: Vec<String>,
    others_total: usize,
    /// One result reused trace after trace: its memory stays mapped between traces.
    analysis: CriticalPathAnalysis,
}

impl Run {
    /// A run that adds every trace to a set of `lightstep compare`.
    pub(crate) fn profile(options: Options, contexts: ContextOptions) -> Self {
        Self {
            sink: Sink::Profile(Box::new(Profile::new(contexts))),
            options,
            wanted: Vec::new(),
            aggregator: None,
            matched: 0,
            others: Vec::new(),
            others_total: 0,
            analysis: CriticalPathAnalysis::default(),
        }
    }

    /// The set a [`Run::profile`] made.
    pub(crate) fn into_profile(self) -> Option<Profile> {
        match self.sink {
            Sink::Profile(profile) => Some(*profile),
            _ => None,
        }
    }

    /// Analyzes one trace and writes what the output format asks for.
    pub(crate) fn trace(&mut self, trace: Trace) -> io::Result<()> {
        if !self.wanted.is_empty() {
            let mut any = false;
            for (id, found) in &mut self.wanted {
                if *id == trace.trace_id {
                    *found = true;
                    any = true;
                }
            }
            if !any {
                if self.others.len() < SHOWN_OTHERS {
                    self.others.push(trace.trace_id.to_string());
                }
                self.others_total += 1;
                return Ok(());
            }
        }
        self.matched += 1;
        let assembled = assemble(&trace, &self.options);
        analyze_assembled_into(&trace, &assembled, &mut self.analysis);
        if let Some(aggregator) = self.aggregator.as_mut() {
            aggregator.add(&self.analysis);
        }
        let written = self.write(&trace, &assembled);
        // Freeing a million spans takes tens of milliseconds: a large trace is freed on a
        // thread of its own, while the next one is analyzed or the output finished (at the
        // end of the run, the process's exit frees it).
        if trace.spans.len() >= FREED_APART {
            // Without a thread to be had, the closure and the trace are freed here.
            let _ = std::thread::Builder::new()
                .name("lightstep-free".into())
                .spawn(move || drop((trace, assembled)));
        }
        written
    }

    /// Writes what the sink makes of one trace's analysis.
    fn write(&mut self, trace: &Trace, assembled: &AssembledTrace) -> io::Result<()> {
        match &mut self.sink {
            Sink::Text(out) if self.aggregator.is_none() => {
                if self.matched > 1 {
                    writeln!(out)?;
                }
                render::write_text(out, &self.analysis, TEXT_ROWS)
            }
            Sink::Text(_) => Ok(()),
            Sink::Json(writer) => writer.trace(&self.analysis),
            Sink::Svg {
                out,
                drawn: drawn @ false,
                ..
            } => {
                render::write_svg(out, trace, assembled, &self.analysis)?;
                *drawn = true;
                Ok(())
            }
            Sink::Svg { skipped, .. } => {
                *skipped += 1;
                Ok(())
            }
            Sink::Contexts { contexts, .. } => {
                contexts.add(trace, assembled, &self.analysis);
                Ok(())
            }
            Sink::Profile(profile) => {
                profile.add(trace, assembled, &self.analysis);
                Ok(())
            }
        }
    }
}

/// Reads one file (or standard input) through `run`, with a progress line on a terminal.
///
/// The file is read on a thread of its own while this one analyzes and writes: with many
/// traces, the next ones are read while the last are analyzed. They are handed over in groups
/// of about [`HANDOVER_SPANS`] spans (one trace when it is larger, and every trace on its own
/// from standard input, which may be a live stream), through a channel with room
/// for one group, so that small traces do not cost a thread switch each and at most three
/// groups are held; the traces come out in the file's order.
pub(crate) fn read_file(
    path: &Path,
    format: Option<Format>,
    run: &mut Run,
) -> Result<(), lightstep_analysis::Error> {
    let (groups, arrived) = std::sync::mpsc::sync_channel::<Vec<Trace>>(1);
    let reader = {
        let path = path.to_path_buf();
        std::thread::spawn(move || read_file_into(&path, format, groups))
    };
    let mut failed = None;
    'groups: for group in &arrived {
        for trace in group {
            if let Err(source) = run.trace(trace) {
                failed = Some(source);
                break 'groups;
            }
        }
    }
    // The reader's next send fails, and it stops. It is not waited for after a failure: it may
    // be blocked reading standard input from a producer that has more to say (`... | lightstep
    // analyze - | head -1`), and the process is about to end anyway.
    drop(arrived);
    // What the analysis or the output refused came first in the input.
    if let Some(source) = failed {
        return Err(lightstep_analysis::Error::Sink {
            file: path.to_path_buf(),
            source,
        });
    }
    let stats = reader
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
    if stats.split_traces > 0 {
        crate::diagnostic(format_args!(
            "{}: {} traces went on after more than {} spans were held across JSON lines, and were analyzed in parts",
            path.display(),
            stats.split_traces,
            read::HELD_SPANS,
        ));
    }
    Ok(())
}

/// Spans of small traces handed from the reading thread to the analysis at a time.
const HANDOVER_SPANS: usize = 16_384;

/// The reading side of [`read_file`]: the traces of the file, in order and in groups, into
/// `groups`.
fn read_file_into(
    path: &Path,
    format: Option<Format>,
    groups: std::sync::mpsc::SyncSender<Vec<Trace>>,
) -> Result<read::ReadStats, lightstep_analysis::Error> {
    let total = if path.as_os_str() == "-" {
        None
    } else {
        std::fs::metadata(path).ok().map(|m| m.len())
    };
    let progress = RefCell::new(Progress::new(path.display().to_string(), total));
    // Standard input may be a live stream: each trace goes over as soon as it is read.
    let handover = if path.as_os_str() == "-" {
        1
    } else {
        HANDOVER_SPANS
    };
    let mut group = Vec::new();
    let mut spans = 0;
    let stopped = |_| io::Error::other("the analysis stopped");
    let mut handle = |trace: Trace| -> io::Result<()> {
        if let Ok(mut p) = progress.try_borrow_mut() {
            p.add_trace();
        }
        spans += trace.spans.len();
        group.push(trace);
        if spans >= handover {
            spans = 0;
            groups.send(std::mem::take(&mut group)).map_err(stopped)?;
        }
        Ok(())
    };
    let result = if path.as_os_str() == "-" {
        let input = Counting {
            inner: io::stdin().lock(),
            progress: &progress,
        };
        read::read_traces(input, Path::new("<stdin>"), format, &mut handle)
    } else {
        let file = File::open(path).map_err(|source| lightstep_analysis::Error::Io {
            file: path.to_path_buf(),
            source,
        })?;
        let input = Counting {
            inner: file,
            progress: &progress,
        };
        read::read_traces(input, path, format, &mut handle)
    };
    progress.borrow_mut().finish();
    if !group.is_empty() {
        groups
            .send(group)
            .map_err(stopped)
            .map_err(|source| lightstep_analysis::Error::Sink {
                file: path.to_path_buf(),
                source,
            })?;
    }
    result
}

/// Why reading from a store stopped.
pub(crate) enum StoreFailure {
    Store(CliError),
    Output(io::Error),
}

/// Fetches the `--trace-id`s from the store, or runs the search, and puts each trace through
/// `run` as it arrives.
fn read_store(store: &TraceStore, args: &AnalyzeArgs, run: &mut Run) -> Result<(), StoreFailure> {
    read_store_traces(store, &args.trace_id, &args.store, |trace| run.trace(trace))
}

/// Fetches `trace_ids` from the store, or (with none) runs the search `args` describe, and
/// hands each trace to `each` as it arrives. The requests run on a small runtime of their own;
/// this thread, which analyzes and writes, is none of its workers.
pub(crate) fn read_store_traces(
    store: &TraceStore,
    trace_ids: &[String],
    args: &StoreArgs,
    each: impl FnMut(lightstep::analysis::Trace) -> io::Result<()>,
) -> Result<(), StoreFailure> {
    read_store_search(store, trace_ids, &args.search(), each)
}

/// [`read_store_traces`] with the search given.
pub(crate) fn read_store_search(
    store: &TraceStore,
    trace_ids: &[String],
    search: &Search,
    mut each: impl FnMut(lightstep::analysis::Trace) -> io::Result<()>,
) -> Result<(), StoreFailure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| StoreFailure::Store(CliError::Runtime(e)))?;
    let mut progress = Progress::new(store.name(), None);
    let outcome = {
        // Entered, so that the sources may start their work; dropped before the runtime.
        let _entered = runtime.enter();
        let mut traces: Traces = if trace_ids.is_empty() {
            store.search(search)
        } else {
            store.fetch_each(trace_ids.to_vec())
        };
        loop {
            match runtime.block_on(traces.next()) {
                None => break Ok(()),
                Some(Ok(trace)) => {
                    progress.add_trace();
                    if let Err(e) = each(trace) {
                        break Err(StoreFailure::Output(e));
                    }
                }
                Some(Err(e)) => break Err(StoreFailure::Store(e.into())),
            }
        }
    };
    progress.finish();
    // Whatever is still in flight is cancelled; nothing waits for it.
    runtime.shutdown_background();
    outcome
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
