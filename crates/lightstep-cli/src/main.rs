//! `lightstep`: the command line of lightstep-rs.
//!
//! `lightstep analyze` reads trace files (OTLP JSON or protobuf, Jaeger JSON, Zipkin v2 JSON)
//! and reports where each request's latency went. `lightstep dev` receives OTLP locally and
//! prints each trace with its critical path. `lightstep compare` reports how the critical path
//! changed between two sets of traces (files, or two time windows of a trace store).
//! `lightstep doctor` says why traces are not
//! arriving: the effective configuration with sources, then each step to the backend.
//! `lightstep ui` serves the trace explorer in the browser over trace files.
//! Exit status: 0 on success, 1 when the input or the output fails, 2 for bad arguments; errors
//! are one line on standard error. A reader that goes away early (`lightstep analyze … | head`)
//! ends `analyze` and `dev` quietly with status 0, as in `git` and `rg`: a closed pipe is not a
//! failure (`doctor` finishes its checks and exits with their status).

mod analyze;
mod compare;
mod dev;
mod doctor;
mod progress;
mod stop;
mod ui;

use std::fmt;
use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use lightstep::analysis::render::printable;

/// Command line of lightstep-rs.
#[derive(Debug, Parser)]
#[command(
    name = "lightstep",
    version,
    about = "Tools for traces: critical paths in trace files (analyze), what changed between two \
             sets of traces (compare), a local OTLP receiver (dev), export diagnosis (doctor), \
             the trace explorer in the browser (ui)",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Find the critical path of traces in files or a trace store (Jaeger, Tempo, Zipkin): where
    /// each request's latency went.
    Analyze(analyze::AnalyzeArgs),
    /// How each operation's and calling context's critical-path time changed between two sets
    /// of traces (files, or two time windows of a store), and whether it is more than noise.
    Compare(compare::CompareArgs),
    /// Receive OTLP locally and print each trace with its critical path (no account, no
    /// Docker).
    Dev(dev::DevArgs),
    /// Why are my traces not arriving? Prints the effective configuration and checks each step
    /// to the backend.
    Doctor(doctor::DoctorArgs),
    /// Explore trace files in the browser: search, waterfalls with the critical path,
    /// contribution per service and operation (also a Jaeger-compatible query API).
    Ui(ui::UiArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return argument_error(&err),
    };
    let outcome = match cli.command {
        Command::Analyze(args) => analyze::run(&args),
        Command::Compare(args) => compare::run(&args),
        Command::Dev(args) => return dev::run(&args),
        Command::Doctor(args) => return doctor::run(&args),
        Command::Ui(args) => return ui::run(&args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            diagnostic(format_args!("{}", one_line(&err)));
            if err.is_usage() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Help and version go out as clap writes them; a mistake in the arguments becomes one line
/// (clap's message, its hints included, without the usage block) and exit status 2.
fn argument_error(err: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        // Only fails when the terminal is gone, and then there is no one to tell.
        let _ = err.print();
        return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2));
    }
    diagnostic(format_args!(
        "{} (see --help)",
        argument_message(&err.render().to_string())
    ));
    ExitCode::from(2)
}

/// Writes `lightstep: <message>` as one line on standard error. Messages quote input (ids, names,
/// paths, values), so control characters are escaped ([`printable`]) before they reach the
/// terminal. Standard error may be a pipe whose reader is gone (`2>&1 | head`); there is no one
/// left to tell then, so the failure is ignored where `eprintln!` would panic.
pub(crate) fn diagnostic(message: fmt::Arguments<'_>) {
    let message = message.to_string();
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "lightstep: {}", printable(&message));
}

/// Whether a write failed only because the reader has gone away.
pub(crate) fn is_closed_pipe(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::BrokenPipe
}

/// clap's rendered error without its usage block, on one line.
fn argument_message(rendered: &str) -> String {
    let parts: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .filter(|line| {
            !line.is_empty()
                && !line.starts_with("Usage:")
                && !line.starts_with("For more information")
        })
        .map(|line| line.strip_prefix("error: ").unwrap_or(line))
        .collect();
    parts.join(" ")
}

/// The error and its sources on one line, `outer: inner: innermost`.
pub(crate) fn one_line(err: &(dyn std::error::Error + 'static)) -> String {
    lightstep::config::ErrorChain(err).to_string()
}
