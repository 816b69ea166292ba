//! Critical-path analysis of a trace file: OTLP JSON or protobuf, Jaeger JSON or Zipkin v2 JSON
//! (detected from the content). For each trace it prints the span tree and the critical path as
//! text, and writes the analysis of every trace as JSON and an SVG timeline per trace shown.
//!
//! ```sh
//! cargo run --example analyze_file                                  # a fixture of the repository
//! cargo run --example analyze_file -- trace.json --out-dir /tmp/cp  # your own file
//! ```
//!
//! The default input is `testdata/traces/deathstarbench/socialnetwork-compose-post.json`
//! (relative to the workspace root): 20 traces of DeathStarBench's social network answering a
//! compose-post request, 33 spans each, exported from Jaeger UI. The same analysis is the `lightstep analyze`
//! command (`lightstep-cli`).
#![allow(clippy::print_stdout)]

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use lightstep::analysis::read::read_traces;
use lightstep::analysis::render::{JsonWriter, write_svg, write_text};
use lightstep::analysis::{Options, analyze_assembled, assemble};
use lightstep_examples::{chain, write_tree};

/// Traces printed as text and drawn as SVG; the JSON holds them all.
const SHOWN: usize = 2;

/// `testdata/traces/deathstarbench/socialnetwork-compose-post.json` from the workspace root
/// (this package's parent).
fn default_input() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/traces/deathstarbench/socialnetwork-compose-post.json")
}

fn main() -> ExitCode {
    let mut input = None;
    let mut out_dir = None;
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--out-dir" {
            out_dir = args.next().map(PathBuf::from);
        } else if input.is_none() {
            input = Some(PathBuf::from(arg));
        } else {
            eprintln!("usage: analyze_file [FILE] [--out-dir DIR]");
            return ExitCode::FAILURE;
        }
    }
    let input = input.unwrap_or_else(default_input);
    let out_dir = out_dir.unwrap_or_else(|| std::env::temp_dir().join("lightstep-analyze_file"));
    match analyze(&input, &out_dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", chain(&*error));
            ExitCode::FAILURE
        }
    }
}

fn analyze(input: &Path, out_dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let file = File::open(input).map_err(|e| format!("cannot open {}: {e}", input.display()))?;
    std::fs::create_dir_all(out_dir)?;
    let json_path = out_dir.join("analysis.json");
    let mut json = JsonWriter::new(BufWriter::new(File::create(&json_path)?))?;
    let mut stdout = io::stdout().lock();
    let mut svgs = Vec::new();
    let mut traces = 0;
    let stats = read_traces(BufReader::new(file), input, None, |trace| {
        let assembled = assemble(&trace, &Options::default());
        let analysis = analyze_assembled(&trace, &assembled);
        json.trace(&analysis)?;
        traces += 1;
        if traces <= SHOWN {
            // Text: the tree, then the critical path step by step.
            writeln!(stdout)?;
            write_tree(&mut stdout, &trace, &assembled, &analysis)?;
            writeln!(stdout)?;
            write_text(&mut stdout, &analysis, 20)?;
            // SVG: a timeline with the critical path drawn over the bars.
            let path = out_dir.join(format!("trace-{}.svg", trace.trace_id));
            let mut svg = BufWriter::new(File::create(&path)?);
            write_svg(&mut svg, &trace, &assembled, &analysis)?;
            svg.flush()?;
            svgs.push(path);
        }
        Ok(())
    })?;
    json.finish(None)?;
    writeln!(
        stdout,
        "\n{} traces, {} spans read from {} ({})",
        stats.traces,
        stats.spans,
        input.display(),
        stats.format.map(|f| f.to_string()).unwrap_or_default(),
    )?;
    if traces > SHOWN {
        writeln!(stdout, "text and SVG for the first {SHOWN} traces only")?;
    }
    writeln!(stdout, "JSON: {}", json_path.display())?;
    for svg in svgs {
        writeln!(stdout, "SVG: {}", svg.display())?;
    }
    Ok(())
}
