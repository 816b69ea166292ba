//! Text that came from whoever sent the spans never reaches the terminal as control characters:
//! span and service names and ids carrying CSI (`ESC [2J`, clear the screen), OSC 52 (write the
//! clipboard) and 8-bit C1 sequences go through `lightstep dev`, `lightstep analyze --format
//! text` (the table and the aggregate) and the errors that quote input, and come out escaped.

use std::process::Command;

use crate::dev::{Dev, Listening, post_json};
use crate::{BIN, lightstep, stderr};

/// Clears the screen, writes "evil" to the clipboard, and an 8-bit CSI: each escaped in JSON.
const NAME_JSON: &str = r"GET \u001b[2J\u001b]52;c;ZXZpbA==\u0007\u009b31m/x";
/// What the terminal must show instead, with each control character visible.
const NAME_SHOWN: &str = r"GET \u{1b}[2J\u{1b}]52;c;ZXZpbA==\u{7}\u{9b}31m/x";
const SERVICE_JSON: &str = r"svc\u001b[31m\u007f";
const SERVICE_SHOWN: &str = r"svc\u{1b}[31m\u{7f}";

fn otlp_json() -> String {
    format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{SERVICE_JSON}"}}}}]}},"scopeSpans":[{{"scope":{{"name":"scope\u001b[2J"}},"spans":[{{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","name":"{NAME_JSON}","kind":2,"startTimeUnixNano":"1000000000","endTimeUnixNano":"2000000000"}},{{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"c7ad6b7169203332","parentSpanId":"b7ad6b7169203331","name":"child\u001b]0;title\u0007","kind":3,"startTimeUnixNano":"1100000000","endTimeUnixNano":"1900000000"}}]}}]}}]}}"#
    )
}

fn assert_no_controls(what: &str, text: &str) {
    let found: Vec<char> = text
        .chars()
        .filter(|c| c.is_control() && *c != '\n')
        .collect();
    assert!(
        found.is_empty(),
        "{what}: control characters {found:?} reached the terminal:\n{text:?}"
    );
}

#[test]
fn analyze_text_and_aggregate_escape_names() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("evil.json");
    std::fs::write(&file, otlp_json()).unwrap();
    let file = file.to_str().unwrap();
    for args in [
        vec!["analyze", "--format", "text", file],
        vec!["analyze", "--format", "text", "--aggregate", file],
    ] {
        let out = lightstep(&args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let text = String::from_utf8(out.stdout).unwrap();
        assert_no_controls(&format!("{args:?}"), &text);
        // Cut to the table's column width, but recognizably the escaped name and service.
        assert!(text.contains(r"GET \u{1b}[2J\u{1b}]52;"), "{text}");
        assert!(text.contains(SERVICE_SHOWN), "{text}");
    }
}

#[test]
fn errors_that_quote_ids_from_the_input_escape_them() {
    // Jaeger JSON allows any text as an id, and an unmatched --trace-id lists those of the input.
    let jaeger = r#"{"data":[{"traceID":"id\u001b[2J\u001b]52;c;ZXZpbA==\u0007","spans":[{"traceID":"id\u001b[2J\u001b]52;c;ZXZpbA==\u0007","spanID":"a","operationName":"op","references":[],"startTime":1000,"duration":10,"processID":"p1"}],"processes":{"p1":{"serviceName":"s"}}}]}"#;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ids.json");
    std::fs::write(&file, jaeger).unwrap();
    let out = lightstep(&["analyze", "--trace-id", "0123", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_no_controls("stderr", &err);
    assert!(
        err.contains(r"id\u{1b}[2J\u{1b}]52;c;ZXZpbA==\u{7}"),
        "{err}"
    );
}

#[test]
fn dev_prints_received_names_escaped() {
    let mut dev = Dev::start(&["--idle", "200ms"], &[]);
    let Listening { http, .. } = dev.listening();
    assert!(post_json(&http, None, &otlp_json()).contains(" 200 "));
    dev.wait_for(|l| l.contains("child"));
    // The critical-path table follows the tree.
    dev.wait_for(|l| l.contains("by service"));
    dev.stop();
    let all = dev.seen.join("\n");
    assert_no_controls("lightstep dev", &all);
    assert!(all.contains(NAME_SHOWN), "{all}");
    assert!(all.contains(r"child\u{1b}]0;title\u{7}"), "{all}");
    assert!(all.contains(SERVICE_SHOWN), "{all}");
}

#[test]
fn doctor_prints_configured_values_and_warnings_escaped() {
    // A shared environment is filled from elsewhere: its values reach the effective
    // configuration and its variables' names the warnings.
    let out = Command::new(BIN)
        .arg("doctor")
        .env_clear()
        .env("OTEL_SERVICE_NAME", "svc\x1b[2J\x1b]52;c;ZXZpbA==\x07")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
        .env("LS_SERVICE_NAM\x1b[31m", "typo")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_no_controls("doctor", &text);
    assert!(
        text.contains(r"svc\u{1b}[2J\u{1b}]52;c;ZXZpbA==\u{7}"),
        "{text}"
    );
}
