//! `lightstep ui`: the trace explorer in the browser over trace files or a trace store.
//!
//! Reads every file (any format `lightstep analyze` reads; `-` for standard input), or the
//! traces a store holds (`--jaeger`, `--tempo`, `--zipkin`, as `lightstep analyze` reads them),
//! into the explorer's bounded store, then serves the explorer on loopback (`--ui`, 127.0.0.1:16686 by
//! default; port 0 picks a free one) and prints its URL. SIGINT (Ctrl-C) and SIGTERM stop it.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use lightstep_analysis::read::Format;
use lightstep_explorer::{DEFAULT_MAX_SPANS, Explorer, Limits, TraceStore};

use crate::analyze::{CliError, StoreArgs, StoreFailure, read_store_traces};
use crate::stop::StopSignals;

/// Arguments of `lightstep ui`.
#[derive(Debug, clap::Args)]
pub(crate) struct UiArgs {
    /// Trace files to explore; `-` reads standard input. Or a store: --jaeger, --tempo,
    /// --zipkin.
    #[arg(
        value_name = "FILE",
        required_unless_present = "store",
        conflicts_with = "store"
    )]
    files: Vec<PathBuf>,
    /// With a store: the traces to fetch (hex; repeat for several), instead of a search.
    #[arg(long, value_name = "HEX", requires = "store")]
    trace_id: Vec<String>,
    // Boxed: the store's flags would make the arguments large.
    #[command(flatten)]
    store: Box<StoreArgs>,
    /// Address of the explorer: IP:PORT, or localhost:PORT for 127.0.0.1:PORT; port 0 picks a
    /// free port. Loopback only.
    #[arg(
        long = "ui",
        value_name = "ADDR",
        default_value = "127.0.0.1:16686",
        value_parser = crate::dev::parse_listen_addr
    )]
    addr: SocketAddr,
    /// Input format; detected from the content when not given.
    #[arg(long, value_name = "FORMAT", value_parser = |s: &str| s.parse::<Format>(), conflicts_with = "store")]
    input_format: Option<Format>,
    /// Hold at most this many spans; the oldest traces make room for newer ones.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_SPANS)]
    max_spans: usize,
}

pub(crate) fn run(args: &UiArgs) -> ExitCode {
    let store = TraceStore::new(Limits::default().with_max_spans(args.max_spans));
    if args.store.is_set()
        && let Err(code) = read_store(args, &store)
    {
        return code;
    }
    for path in &args.files {
        let stats = match store.read_path(path, args.input_format) {
            Ok(stats) => stats,
            Err(e) => {
                crate::diagnostic(format_args!("{}", crate::one_line(&e)));
                return ExitCode::FAILURE;
            }
        };
        if stats.traces == 0 {
            crate::diagnostic(format_args!("{}: no traces", path.display()));
        }
    }
    let held = store.stats();
    if held.evicted_traces > 0 || held.refused_traces > 0 {
        crate::diagnostic(format_args!(
            "{} traces did not fit in {} spans and {} larger than that were left out \
             (raise --max-spans to hold more)",
            held.evicted_traces, args.max_spans, held.refused_traces
        ));
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            crate::diagnostic(format_args!("cannot start a runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args.addr, store)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            crate::diagnostic(format_args!("{}", crate::one_line(&*e)));
            ExitCode::FAILURE
        }
    }
}

/// Fetches the `--trace-id`s, or the search's traces, from the store named into `store`, as
/// `lightstep analyze` reads them; the exit code of a failure, after its message.
fn read_store(args: &UiArgs, store: &TraceStore) -> Result<(), ExitCode> {
    let fail = |err: CliError| {
        crate::diagnostic(format_args!("{}", crate::one_line(&err)));
        Err(ExitCode::from(if err.is_usage() { 2 } else { 1 }))
    };
    let source = match args.store.source() {
        Ok(source) => source,
        Err(err) => return fail(err),
    };
    let read = read_store_traces(&source, &args.trace_id, &args.store, |trace| {
        store.add(trace);
        Ok(())
    });
    match read {
        Ok(()) => Ok(()),
        Err(StoreFailure::Store(err)) => fail(err),
        // Adding to the explorer's store does not fail.
        Err(StoreFailure::Output(e)) => fail(CliError::Usage(e.to_string().into())),
    }
}

async fn serve(addr: SocketAddr, store: TraceStore) -> Result<(), Box<dyn std::error::Error>> {
    let held = store.stats();
    // Before the URL is printed: a stop signal from whoever read it is a clean stop.
    let mut stop =
        StopSignals::listen().map_err(|e| format!("cannot listen for stop signals: {e}"))?;
    let explorer = Explorer::builder()
        .with_addr(addr)
        .with_store(store)
        .start()
        .await?;
    {
        let mut stdout = io::stdout().lock();
        // A closed standard output only means no one reads the URL: keep serving.
        let _ = writeln!(
            stdout,
            "lightstep ui: {} traces, {} spans; the explorer is at {} (Ctrl-C to stop)",
            held.traces,
            held.spans,
            explorer.url()
        )
        .and_then(|()| stdout.flush());
    }
    stop.recv().await;
    explorer.shutdown().await;
    Ok(())
}
