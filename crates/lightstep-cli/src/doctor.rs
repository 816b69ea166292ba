//! `lightstep doctor`: why are my traces not arriving?
//!
//! Loads the configuration exactly as the library does (`LightstepConfig::builder()`: the file
//! named by `--config` or `LIGHTSTEP_CONFIG_FILE`, then the environment), prints every setting
//! with its value and source (secrets redacted) and the configuration's warnings (also when the
//! configuration fails: a misspelt variable is often why), then runs the diagnosis of
//! `lightstep_exporter::diagnose` and prints one line per step. Exit status 0 only when every
//! step passed.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use lightstep::LightstepConfig;
use lightstep::analysis::render::printable;
use lightstep::exporter::diagnose::diagnose;

/// Arguments of `lightstep doctor`.
#[derive(Debug, clap::Args)]
pub(crate) struct DoctorArgs {
    /// A configuration file to read (TOML, YAML or JSON); overrides LIGHTSTEP_CONFIG_FILE.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

pub(crate) fn run(args: &DoctorArgs) -> ExitCode {
    let mut builder = LightstepConfig::builder();
    if let Some(path) = &args.config {
        builder = builder.with_file(path);
    }
    let (config, warnings) = builder.build_with_warnings();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            crate::diagnostic(format_args!("cannot start a runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    match &config {
        // The effective configuration ends with its warnings.
        Ok(config) => {
            let _ = writeln!(
                out,
                "effective configuration (value, then where it came from):\n"
            );
            let _ = write!(out, "{}", printable_lines(&config.effective().to_string()));
            let _ = writeln!(out);
        }
        Err(_) if !warnings.is_empty() => {
            let _ = writeln!(out, "configuration warnings:\n");
            for warning in &warnings {
                let _ = writeln!(out, "warning: {}", printable(&warning.to_string()));
            }
            let _ = writeln!(out);
        }
        Err(_) => {}
    }
    let _ = writeln!(out, "checks:\n");
    let diagnosis = runtime.block_on(diagnose(config.as_ref()));
    let _ = write!(out, "{diagnosis}");
    if diagnosis.passed() {
        let _ = writeln!(
            out,
            "\nall checks passed: spans sent with this configuration should arrive"
        );
        ExitCode::SUCCESS
    } else {
        let _ = writeln!(out, "\na check failed: see the first FAIL line above");
        ExitCode::FAILURE
    }
}

/// Values in the configuration come from the environment and files, which a shared deployment
/// may fill from elsewhere: each line is made [`printable`], its line break kept.
fn printable_lines(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| match line.strip_suffix('\n') {
            Some(line) => format!("{}\n", printable(line)),
            None => printable(line).into_owned(),
        })
        .collect()
}
