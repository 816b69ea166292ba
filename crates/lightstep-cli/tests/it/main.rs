//! Integration tests of `lightstep`: the real binary, real files, real pipes.

mod dev;
mod doctor;
mod folded;
mod stores;
mod terminal;
mod ui;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_lightstep");
const TRACES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/traces");

fn lightstep(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run lightstep")
}

fn with_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run lightstep");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn fixture(relative: &str) -> String {
    Path::new(TRACES)
        .join(relative)
        .to_string_lossy()
        .into_owned()
}

fn fixtures() -> Vec<PathBuf> {
    let mut pending = vec![PathBuf::from(TRACES)];
    let mut files = Vec::new();
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json(output: &Output) -> serde_json::Value {
    assert!(output.status.success(), "{}", stderr(output));
    serde_json::from_slice(&output.stdout).expect("valid JSON on stdout")
}

#[test]
fn every_fixture_in_both_modes_gives_well_formed_json() {
    let files = fixtures();
    assert!(files.len() >= 60);
    let args: Vec<String> = files
        .iter()
        .map(|f| f.to_string_lossy().into_owned())
        .collect();
    for mode in ["robust", "jaeger"] {
        let mut all = vec!["analyze", "--format", "json", "--mode", mode];
        all.extend(args.iter().map(String::as_str));
        let doc = json(&lightstep(&all));
        let traces = doc["traces"].as_array().unwrap();
        assert!(
            traces.len() >= files.len(),
            "{mode}: {} traces from {} files",
            traces.len(),
            files.len()
        );
        for trace in traces {
            assert_eq!(trace["mode"], mode);
            let start = trace["start_unix_nano"].as_u64().unwrap();
            let end = trace["end_unix_nano"].as_u64().unwrap();
            // Sections and gaps, in time order, tile the window without overlap; in Jaeger
            // mode where Jaeger UI walks one root (the paths of roots that overlap in time
            // overlap too, and are in order of start).
            let tiles = mode == "robust" || trace["diagnostics"]["roots"] == 1;
            let mut pieces: Vec<(u64, u64)> = trace["sections"]
                .as_array()
                .unwrap()
                .iter()
                .chain(trace["gaps"].as_array().unwrap())
                .map(|s| {
                    (
                        s["start_unix_nano"].as_u64().unwrap(),
                        s["end_unix_nano"].as_u64().unwrap(),
                    )
                })
                .collect();
            let sections: Vec<u64> = trace["sections"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["start_unix_nano"].as_u64().unwrap())
                .collect();
            assert!(
                sections
                    .windows(2)
                    .all(|w| w[0] < w[1] || (!tiles && w[0] == w[1])),
                "sections out of order in {}",
                trace["trace_id"]
            );
            pieces.sort_unstable();
            if tiles {
                let mut at = start;
                for (s, e) in &pieces {
                    assert_eq!(*s, at, "{}", trace["trace_id"]);
                    assert!(e > s);
                    at = *e;
                }
                if !pieces.is_empty() {
                    assert_eq!(at, end, "{}", trace["trace_id"]);
                }
            } else {
                assert!(pieces.iter().all(|&(s, e)| start <= s && s < e && e <= end));
            }
            let path_ns: u64 = trace["spans"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["self_ns"].as_u64().unwrap())
                .sum();
            assert_eq!(path_ns, trace["critical_path_ns"].as_u64().unwrap());
        }
    }
}

#[test]
fn text_is_the_default_and_reads_like_a_table() {
    let output = lightstep(&["analyze", &fixture("zipkin/yelp.json")]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.starts_with("trace "), "{text}");
    assert!(text.contains("critical path"));
    assert!(text.contains("by service:"));
    assert!(
        output.stderr.is_empty(),
        "no progress bar when stderr is not a terminal"
    );
}

#[test]
fn trace_id_selects_one_trace_and_an_unknown_one_fails() {
    let file = fixture("deathstarbench/socialnetwork-compose-post.json");
    let all = json(&lightstep(&["analyze", "--format", "json", &file]));
    let traces = all["traces"].as_array().unwrap();
    assert_eq!(traces.len(), 20);
    let id = traces[7]["trace_id"].as_str().unwrap().to_uppercase();
    let one = json(&lightstep(&[
        "analyze",
        "--format",
        "json",
        "--trace-id",
        &id,
        &file,
    ]));
    assert_eq!(one["traces"].as_array().unwrap().len(), 1);
    assert_eq!(one["traces"][0]["sections"], traces[7]["sections"]);

    let missing = lightstep(&["analyze", "--trace-id", "abcdef", &file]);
    assert_eq!(missing.status.code(), Some(1));
    let message = stderr(&missing);
    assert_eq!(message.lines().count(), 1, "{message}");
    // It says what the input holds instead: the count and the first ids, as the output names
    // them, so that one can be copied.
    let first: Vec<&str> = traces[..5]
        .iter()
        .map(|t| t["trace_id"].as_str().unwrap())
        .collect();
    assert!(
        message.contains(&format!(
            "trace abcdef is not in the input; it holds 20 traces: {}, ...",
            first.join(", ")
        )),
        "{message}"
    );
    // An id that is not hex is looked up as written: some inputs (jaeger-ui's fixtures) use
    // such ids, and the output names them so.
    let jaeger = fixture("jaeger/testTrace.json");
    let found = lightstep(&["analyze", "--trace-id", "trace-123", &jaeger]);
    assert!(found.status.success(), "{}", stderr(&found));
    let missing = lightstep(&["analyze", "--trace-id", "zz", &jaeger]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("trace zz is not in the input; it holds one trace: trace-123"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn standard_input_is_read_with_a_dash() {
    let input = std::fs::read(fixture("zipkin/messaging.json")).unwrap();
    let doc = json(&with_stdin(&["analyze", "--format", "json", "-"], &input));
    assert_eq!(doc["traces"].as_array().unwrap().len(), 1);
}

#[test]
fn bad_input_fails_with_one_line_naming_file_line_and_column() {
    let output = with_stdin(
        &["analyze", "-"],
        b"{\"resourceSpans\": [\n  {\"scopeSpans\": 7}\n]}",
    );
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(message.starts_with("lightstep: <stdin>:2:"), "{message}");
    assert!(
        message.contains("expected an array of OTLP ScopeSpans"),
        "{message}"
    );

    let unknown = with_stdin(&["analyze", "-"], b"name,start,end\n");
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("otlp-json, otlp-proto, jaeger-json, zipkin-json"),
        "{}",
        stderr(&unknown)
    );

    let truncated = with_stdin(
        &["analyze", "--input-format", "otlp-proto", "-"],
        &[0x0a, 0x05, 0x0a],
    );
    assert_eq!(truncated.status.code(), Some(1));
    assert!(
        stderr(&truncated).contains("byte 0"),
        "{}",
        stderr(&truncated)
    );
}

#[test]
fn bad_arguments_exit_with_usage_status_and_one_line() {
    let output = lightstep(&["analyze", "--mode", "fastest", &fixture("zipkin/yelp.json")]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output).trim_end(),
        "lightstep: invalid value 'fastest' for '--mode <MODE>' \
         [possible values: robust, jaeger] (see --help)"
    );
    for args in [
        &["analyze"][..],
        &["analyze", "--format", "xml", "-"],
        &["analyze", "--no-such-flag", "-"],
        &["bogus"],
    ] {
        let output = lightstep(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let message = stderr(&output);
        assert_eq!(message.trim_end().lines().count(), 1, "{args:?}: {message}");
        assert!(message.starts_with("lightstep: "), "{args:?}: {message}");
    }
    let help = lightstep(&["analyze", "--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("--trace-id"));
    let wrong = lightstep(&[
        "analyze",
        "--input-format",
        "otlp-json",
        &fixture("zipkin/yelp.json"),
    ]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        stderr(&wrong).contains("expected otlp-json but the input is zipkin-json"),
        "{}",
        stderr(&wrong)
    );
}

#[test]
fn top_level_help_names_every_subcommand_in_its_first_line() {
    let help = lightstep(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8(help.stdout).unwrap();
    let about = text.lines().next().unwrap();
    for name in ["analyze", "dev", "doctor"] {
        assert!(about.contains(&format!("({name})")), "{about}");
    }
}

#[test]
fn protobuf_files_are_detected() {
    let mut traces = Vec::new();
    lightstep_analysis::read::read_path(
        Path::new(&fixture("otlp/jaeger-fixture-example_trace.json")),
        None,
        |t| {
            traces.push(t);
            Ok(())
        },
    )
    .unwrap();
    let spans: Vec<_> = traces
        .iter()
        .flat_map(|t| t.spans.iter().cloned())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let pb = dir.path().join("trace.pb");
    std::fs::write(&pb, lightstep_analysis::read::encode_traces_data(&spans)).unwrap();
    let from_pb = json(&lightstep(&[
        "analyze",
        "--format",
        "json",
        pb.to_str().unwrap(),
    ]));
    let from_json = json(&lightstep(&[
        "analyze",
        "--format",
        "json",
        &fixture("otlp/jaeger-fixture-example_trace.json"),
    ]));
    assert_eq!(
        from_pb["traces"][0]["sections"],
        from_json["traces"][0]["sections"]
    );
}

#[test]
fn svg_draws_one_trace_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("trace.svg");
    let output = lightstep(&[
        "analyze",
        "--format",
        "svg",
        "--output",
        out.to_str().unwrap(),
        &fixture("deathstarbench/socialnetwork-compose-post.json"),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(output.stdout.is_empty());
    assert!(
        stderr(&output).contains("19 more were not drawn"),
        "{}",
        stderr(&output)
    );
    let svg = std::fs::read_to_string(out).unwrap();
    assert!(svg.starts_with("<svg "));
    assert!(svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("33 of 33 spans shown"));
}

/// A pipe whose read end is already closed, as `| head` leaves it once it has its lines.
fn closed_pipe() -> std::io::PipeWriter {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    writer
}

/// A reader that goes away ends the run even while standard input stays open, as
/// `producer | lightstep analyze - | head -1` needs; and each trace from standard input is
/// analyzed as it arrives, not when the input ends.
#[test]
fn a_closed_output_ends_the_run_while_standard_input_stays_open() {
    let mut child = Command::new(BIN)
        .args(["analyze", "--format", "text", "-"])
        .stdin(Stdio::piped())
        .stdout(closed_pipe())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run lightstep");
    let mut input = child.stdin.take().unwrap();
    // Enough traces that their text fills the output buffer, which then meets the closed pipe.
    let trace = std::fs::read(fixture("deathstarbench/socialnetwork-compose-post.json")).unwrap();
    for _ in 0..40 {
        if input.write_all(&trace).is_err() {
            break;
        }
    }
    let _ = input.flush();
    // The input stays open: a producer with more to say.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if status.is_none() {
        let _ = child.kill();
    }
    drop(input);
    let output = child.wait_with_output().unwrap();
    let status = status.expect("lightstep ended while its input was still open");
    assert_eq!(status.code(), Some(0), "{}", stderr(&output));
}

/// A reader that goes away (`| head`) ends the run quietly with status 0: no message, no panic,
/// whether the output is text, JSON or SVG and whether standard error shares the closed pipe.
#[test]
fn a_closed_output_pipe_ends_the_run_quietly() {
    let file = fixture("deathstarbench/socialnetwork-compose-post.json");
    for format in ["text", "json", "svg"] {
        // `lightstep analyze … | head`: standard error is still there to read.
        let output = Command::new(BIN)
            .args(["analyze", "--format", format, &file])
            .stdout(closed_pipe())
            .stderr(Stdio::piped())
            .output()
            .expect("run lightstep");
        assert_eq!(
            output.status.code(),
            Some(0),
            "{format}: {}",
            stderr(&output)
        );
        assert!(output.stderr.is_empty(), "{format}: {}", stderr(&output));
    }
    for args in [
        &["analyze", "--format", "svg"][..],
        &["analyze", "--format", "text"],
        &["analyze", "--aggregate"],
    ] {
        // `lightstep analyze … 2>&1 | head`: nothing can be said, so only the status tells.
        let pipe = closed_pipe();
        let status = Command::new(BIN)
            .args(args)
            .arg(&file)
            .stdout(pipe.try_clone().unwrap())
            .stderr(pipe)
            .status()
            .expect("run lightstep");
        assert_eq!(status.code(), Some(0), "{args:?} (101 is a panic)");
    }
    // Only standard error closed: the svg is written, the note that 19 traces were not drawn
    // has no one to go to.
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("trace.svg");
    let status = Command::new(BIN)
        .args(["analyze", "--format", "svg", "--output"])
        .arg(&svg)
        .arg(&file)
        .stderr(closed_pipe())
        .status()
        .expect("run lightstep");
    assert_eq!(status.code(), Some(0), "101 is a panic");
    assert!(std::fs::read_to_string(svg).unwrap().starts_with("<svg "));
}

#[test]
fn aggregate_reports_contribution_per_operation() {
    let file = fixture("deathstarbench/socialnetwork-compose-post.json");
    let doc = json(&lightstep(&[
        "analyze",
        "--aggregate",
        "--format",
        "json",
        &file,
    ]));
    let aggregate = &doc["aggregate"];
    assert_eq!(aggregate["traces"], 20);
    let rows = aggregate["operations"].as_array().unwrap();
    let total: u128 = rows
        .iter()
        .map(|r| r["total_critical_ns"].as_u64().unwrap() as u128)
        .sum();
    let per_trace: u128 = doc["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["critical_path_ns"].as_u64().unwrap() as u128)
        .sum();
    assert_eq!(total, per_trace);
    let text = lightstep(&["analyze", "--aggregate", &file]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.starts_with("contribution to the critical path over 20 traces"),
        "{text}"
    );
    // Arguments that do not fit together are a usage error, as clap's own.
    let svg = lightstep(&["analyze", "--aggregate", "--format", "svg", &file]);
    assert_eq!(svg.status.code(), Some(2));
    assert!(stderr(&svg).contains("--aggregate has no svg rendering"));
}

/// `--output` holds the whole document or nothing: a run that fails leaves no half-written file
/// and keeps an earlier file as it was; one that succeeds leaves nothing else in the directory.
#[test]
fn output_files_are_complete_or_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("analysis.json");
    let good = fixture("deathstarbench/socialnetwork-compose-post.json");
    let bad = dir.path().join("truncated.json");
    let text = std::fs::read_to_string(&good).unwrap();
    std::fs::write(&bad, &text[..text.len() / 2]).unwrap();
    let listing = || {
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };

    // A failure before anything existed: no file at all.
    let args = |input: &str| {
        vec![
            "analyze".to_string(),
            "--format".into(),
            "json".into(),
            "--output".into(),
            out.to_str().unwrap().into(),
            input.into(),
        ]
    };
    let run = |input: &str| {
        let args = args(input);
        lightstep(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let failed = run(bad.to_str().unwrap());
    assert_eq!(failed.status.code(), Some(1), "{}", stderr(&failed));
    assert_eq!(listing(), ["truncated.json"]);

    // A success: the document, and nothing beside it.
    let ok = run(&good);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert_eq!(listing(), ["analysis.json", "truncated.json"]);
    let written = std::fs::read(&out).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&written).unwrap();
    assert_eq!(doc["traces"].as_array().unwrap().len(), 20);

    // A failure after it: the earlier document is still there, whole.
    let failed = run(bad.to_str().unwrap());
    assert_eq!(failed.status.code(), Some(1), "{}", stderr(&failed));
    assert_eq!(listing(), ["analysis.json", "truncated.json"]);
    assert_eq!(std::fs::read(&out).unwrap(), written);

    // The earlier file's permissions are kept, and a symbolic link is written through, never
    // replaced by a file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o600)).unwrap();
        let ok = run(&good);
        assert!(ok.status.success(), "{}", stderr(&ok));
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let target = dir.path().join("target.json");
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let args = [
            "analyze",
            "--format",
            "json",
            "--output",
            link.to_str().unwrap(),
            good.as_str(),
        ];
        let through = lightstep(&args);
        assert!(through.status.success(), "{}", stderr(&through));
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&target).unwrap(), written);
        std::fs::remove_file(&link).unwrap();
        std::fs::remove_file(&target).unwrap();
        assert_eq!(listing(), ["analysis.json", "truncated.json"]);
    }

    // A destination in a directory that does not exist: one line naming it, status 1.
    let nowhere = dir.path().join("missing").join("out.json");
    let args = [
        "analyze",
        "--output",
        nowhere.to_str().unwrap(),
        good.as_str(),
    ];
    let failed = lightstep(&args);
    assert_eq!(failed.status.code(), Some(1));
    let message = stderr(&failed);
    assert!(
        message.starts_with(&format!("lightstep: cannot write {}", nowhere.display()))
            && message.trim_end().lines().count() == 1,
        "{message}"
    );

    // An svg of nothing is a failure of the input (status 1), and leaves nothing either.
    let empty = dir.path().join("empty.json");
    std::fs::write(&empty, "{\"data\": []}").unwrap();
    let svg_out = dir.path().join("nothing.svg");
    let nothing = lightstep(&[
        "analyze",
        "--format",
        "svg",
        "--output",
        svg_out.to_str().unwrap(),
        empty.to_str().unwrap(),
    ]);
    assert_eq!(nothing.status.code(), Some(1), "{}", stderr(&nothing));
    assert!(stderr(&nothing).contains("no traces in the input to draw"));
    assert!(!svg_out.exists());
}

#[test]
fn skew_correction_is_opt_in() {
    let file = fixture("zipkin/skew.json");
    let plain = json(&lightstep(&["analyze", "--format", "json", &file]));
    let corrected = json(&lightstep(&[
        "analyze",
        "--format",
        "json",
        "--correct-skew",
        &file,
    ]));
    assert_eq!(plain["traces"][0]["diagnostics"]["skew_applied"], 0);
    assert_eq!(corrected["traces"][0]["diagnostics"]["skew_applied"], 1);
    assert_ne!(
        plain["traces"][0]["sections"],
        corrected["traces"][0]["sections"]
    );
}

/// Input that takes over a second to arrive shows a progress line on a terminal (a real
/// pseudo-terminal, through `script(1)`), cleared at the end; the same input with standard error
/// on a pipe shows nothing.
#[test]
fn progress_shows_on_a_terminal_only() {
    let file = fixture("deathstarbench/socialnetwork-compose-post.json");
    let dir = tempfile::tempdir().unwrap();
    let typescript = dir.path().join("typescript");
    let out = dir.path().join("out.json");
    let shell = format!(
        "(head -c 1000 '{file}'; sleep 1; tail -c +1001 '{file}') | '{BIN}' analyze --format json - > '{}'",
        out.display()
    );
    // util-linux's script(1) (`-e`, `-c`), as on Debian, where CI runs; elsewhere this part
    // cannot run and says so.
    let util_linux = Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("util-linux"));
    if !util_linux {
        eprintln!("skipping the terminal half: no util-linux script(1) here");
        return;
    }
    let script = Command::new("script")
        .args(["-q", "-e", "-c", &shell])
        .arg(&typescript)
        .stdin(Stdio::null())
        .output()
        .expect("script(1) runs the command on a pseudo-terminal");
    assert!(script.status.success(), "{}", stderr(&script));
    let seen = std::fs::read_to_string(&typescript).unwrap();
    assert!(
        seen.contains("\r\x1b[2K- ") && seen.contains(" MB, "),
        "no progress line on the terminal: {seen:?}"
    );
    let last_line = seen.rfind("\r\x1b[2K").unwrap();
    assert!(
        !seen[last_line + "\r\x1b[2K".len()..].contains(" MB, "),
        "the progress line was not cleared: {seen:?}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(doc["traces"].as_array().unwrap().len(), 20);

    let text = std::fs::read(&file).unwrap();
    let mut child = Command::new(BIN)
        .args(["analyze", "--format", "json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    // Written from another thread while the output is read, so that neither pipe fills up.
    let writer = std::thread::spawn(move || {
        input.write_all(&text[..1000]).unwrap();
        std::thread::sleep(std::time::Duration::from_secs(1));
        input.write_all(&text[1000..]).unwrap();
    });
    let piped = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(piped.status.success());
    assert!(piped.stderr.is_empty(), "{}", stderr(&piped));
    assert_eq!(json(&piped)["traces"].as_array().unwrap().len(), 20);
}
