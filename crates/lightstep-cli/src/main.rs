//! `lightstep`: the command line of lightstep-rs.
//!
//! `lightstep analyze` reads trace files (OTLP JSON or protobuf, Jaeger JSON, Zipkin v2 JSON)
//! and reports where each request's latency went. `lightstep dev` receives OTLP locally and
//! prints each trace with its critical path. `lightstep doctor` says why traces are not
//! arriving: the effective configuration with sources, then each step to the backend.
//! Exit status: 0 on success, 1 when the input or the output fails, 2 for bad arguments; errors
//! are one line on standard error.

mod analyze;
mod dev;
mod doctor;
mod progress;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Command line of lightstep-rs.
#[derive(Debug, Parser)]
#[command(
    name = "lightstep",
    version,
    about = "Tools for traces: critical-path analysis",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Find the critical path of traces in files: where each request's latency went.
    Analyze(analyze::AnalyzeArgs),
    /// Receive OTLP locally and print each trace with its critical path (no account, no
    /// Docker).
    Dev(dev::DevArgs),
    /// Why are my traces not arriving? Prints the effective configuration and checks each step
    /// to the backend.
    Doctor(doctor::DoctorArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Analyze(args) => analyze::run(&args),
        Command::Dev(args) => return dev::run(&args),
        Command::Doctor(args) => return doctor::run(&args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("lightstep: {}", one_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// The error and its sources on one line, `outer: inner: innermost`.
pub(crate) fn one_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        line.push_str(": ");
        line.push_str(&inner.to_string());
        source = inner.source();
    }
    line.replace('\n', " ")
}
