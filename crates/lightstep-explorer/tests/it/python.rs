//! The Python OpenTelemetry SDK as a third-party client, through `tools/python-peers` (a venv
//! under the target directory, made by `ensure.sh`; see its README). Without Python or PyPI the
//! tests that use it fail when `CI` is set (the script decides) and are skipped loudly
//! otherwise.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

/// First runs download the packages from PyPI: a generous guard, not an expectation.
const INSTALL_GUARD: Duration = Duration::from_secs(600);

fn tools_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/python-peers")
}

/// The venv's python, or `None` when Python or PyPI is unavailable outside CI.
pub(crate) async fn peer_python() -> Option<PathBuf> {
    let run = Command::new("bash")
        .arg(tools_dir().join("ensure.sh"))
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(INSTALL_GUARD, run)
        .await
        .expect("hang guard: tools/python-peers/ensure.sh did not finish")
        .expect("could not run bash tools/python-peers/ensure.sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())),
        Some(3) => {
            eprintln!(
                "\n!!! SKIPPED: the Python OpenTelemetry SDK is unavailable, so the browser test \
                 with it did not run (it fails instead when CI is set): {}",
                stderr.trim()
            );
            None
        }
        _ => panic!(
            "tools/python-peers/ensure.sh failed ({}): {}",
            out.status,
            stderr.trim()
        ),
    }
}

/// Sends one trace of `count` spans over OTLP/HTTP protobuf to `traces_url`; its summary
/// (`trace_id`, `root_span_id`, `exported`).
pub(crate) async fn send_spans(python: &Path, traces_url: &str, count: usize) -> serde_json::Value {
    let run = Command::new(python)
        .arg(tools_dir().join("send_spans.py"))
        .args(["--endpoint", traces_url, "--protocol", "http/protobuf"])
        .args([
            "--count",
            &count.to_string(),
            "--service",
            "python-peer-svc",
        ])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("hang guard: send_spans.py did not finish")
        .expect("run send_spans.py");
    assert!(
        out.status.success(),
        "send_spans.py failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("summary JSON");
    assert_eq!(summary["exported"], count);
    summary
}
