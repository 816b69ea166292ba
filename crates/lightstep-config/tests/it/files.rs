//! TOML, YAML and JSON files: every key, unknown keys, syntax errors with line and column.

use std::path::PathBuf;
use std::time::Duration;

use lightstep_config::{ConfigError, Propagator, Protocol, Sampler};

use crate::{build_err, build_ok, local};

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const TOML: &str = r#"
otlp_endpoint = "http://localhost:4318"
protocol = "http/protobuf"
service_name = "file-svc"
service_version = "3.1.4"
deployment_environment = "staging"
timeout = "1500ms"
compression = "gzip"
propagators = ["tracecontext", "b3"]
shutdown_timeout = 2000
sdk_disabled = false
traces_exporter = "otlp"

[headers]
x-tenant = "acme"

[resource_attributes]
team = "core"

[batch]
max_queue_size = 4096
max_export_batch_size = 256
scheduled_delay = "200ms"
export_timeout = "5s"
max_concurrent_exports = 2

[sampler]
name = "parentbased_traceidratio"
arg = 0.5

[limits]
attribute_count = 64
attribute_value_length = 1024
event_count = 8
link_count = 9
event_attribute_count = 10
link_attribute_count = 11
"#;

const YAML: &str = r#"
otlp_endpoint: http://localhost:4318
protocol: http/protobuf
service_name: file-svc
service_version: "3.1.4"
deployment_environment: staging
timeout: 1500ms
compression: gzip
propagators: [tracecontext, b3]
shutdown_timeout: 2000
sdk_disabled: false
traces_exporter: otlp
headers:
  x-tenant: acme
resource_attributes:
  team: core
batch:
  max_queue_size: 4096
  max_export_batch_size: 256
  scheduled_delay: 200ms
  export_timeout: 5s
  max_concurrent_exports: 2
sampler:
  name: parentbased_traceidratio
  arg: 0.5
limits:
  attribute_count: 64
  attribute_value_length: 1024
  event_count: 8
  link_count: 9
  event_attribute_count: 10
  link_attribute_count: 11
"#;

const JSON: &str = r#"{
  "otlp_endpoint": "http://localhost:4318",
  "protocol": "http/protobuf",
  "service_name": "file-svc",
  "service_version": "3.1.4",
  "deployment_environment": "staging",
  "timeout": "1500ms",
  "compression": "gzip",
  "propagators": "tracecontext,b3",
  "shutdown_timeout": 2000,
  "sdk_disabled": false,
  "traces_exporter": "otlp",
  "headers": {"x-tenant": "acme"},
  "resource_attributes": {"team": "core"},
  "batch": {"max_queue_size": 4096, "max_export_batch_size": 256, "scheduled_delay": "200ms",
            "export_timeout": "5s", "max_concurrent_exports": 2},
  "sampler": {"name": "parentbased_traceidratio", "arg": 0.5},
  "limits": {"attribute_count": 64, "attribute_value_length": 1024, "event_count": 8,
             "link_count": 9, "event_attribute_count": 10, "link_attribute_count": 11}
}"#;

#[test]
fn all_three_formats_read_every_key_alike() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("a.toml", TOML),
        ("a.yaml", YAML),
        ("a.yml", YAML),
        ("a.json", JSON),
    ] {
        let path = write(&dir, name, text);
        // An empty environment: the file's endpoint is the one used.
        let c = build_ok(
            lightstep_config::LightstepConfig::builder()
                .with_env(lightstep_config::EnvSnapshot::empty())
                .with_file(&path),
        );
        assert_eq!(
            c.traces_endpoint().as_str(),
            "http://localhost:4318/v1/traces",
            "{name}"
        );
        assert_eq!(c.protocol(), Protocol::HttpProtobuf, "{name}");
        assert_eq!(c.service_name(), "file-svc", "{name}");
        assert_eq!(c.service_version(), "3.1.4", "{name}");
        assert_eq!(c.deployment_environment(), Some("staging"), "{name}");
        assert_eq!(c.timeout(), Duration::from_millis(1500), "{name}");
        assert_eq!(
            c.propagators(),
            [Propagator::TraceContext, Propagator::B3],
            "{name}"
        );
        assert_eq!(c.shutdown_timeout(), Duration::from_secs(2), "{name}");
        assert_eq!(c.headers()[0].name, "x-tenant", "{name}");
        assert_eq!(c.headers()[0].value.expose_secret(), "acme", "{name}");
        assert_eq!(
            c.resource_attributes(),
            [("team".into(), "core".into())],
            "{name}"
        );
        let b = c.batch();
        assert_eq!(
            (
                b.max_queue_size,
                b.max_export_batch_size,
                b.max_concurrent_exports
            ),
            (4096, 256, 2),
            "{name}"
        );
        assert_eq!(
            (b.scheduled_delay, b.export_timeout),
            (Duration::from_millis(200), Duration::from_secs(5)),
            "{name}"
        );
        assert_eq!(c.sampler(), Sampler::ParentBasedTraceIdRatio(0.5), "{name}");
        let l = c.span_limits();
        assert_eq!(
            (
                l.attribute_count,
                l.attribute_value_length,
                l.event_count,
                l.link_count,
                l.event_attribute_count,
                l.link_attribute_count
            ),
            (64, Some(1024), 8, 9, 10, 11),
            "{name}"
        );
    }
}

#[test]
fn tls_section() {
    let dir = tempfile::tempdir().unwrap();
    let pem = write(
        &dir,
        "ca.pem",
        "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n",
    );
    let path = write(
        &dir,
        "t.toml",
        &format!(
            "[tls]\nca_file = {:?}\ninsecure = true\n",
            pem.to_str().unwrap()
        ),
    );
    let c = build_ok(local(&[]).with_file(&path));
    assert_eq!(c.tls().ca_file.as_deref(), Some(pem.as_path()));
    assert!(c.tls().insecure);
}

#[test]
fn unknown_keys_are_errors_with_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "typo.toml",
        "servce_name = \"x\"\n[batch]\nmax_queue_sise = 5\n",
    );
    let e = build_err(local(&[]).with_file(&path));
    let text = e.to_string();
    assert!(
        text.contains("unknown key `servce_name`") && text.contains("did you mean `service_name`?"),
        "{text}"
    );
    assert!(
        text.contains("unknown key `batch.max_queue_sise`")
            && text.contains("did you mean `batch.max_queue_size`?"),
        "{text}"
    );
    assert!(text.contains("typo.toml"), "{text}");
    assert_eq!(e.errors().len(), 2);
}

#[test]
fn syntax_errors_name_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("bad.toml", "service_name = \"ok\"\ntimeout = = 3\n", 2),
        ("bad.yaml", "service_name: ok\nbatch:\n  - a\n  b: [\n", 4),
        (
            "bad.json",
            "{\n  \"service_name\": \"ok\",\n  \"timeout\" 3\n}",
            3,
        ),
    ];
    for (name, text, line) in cases {
        let path = write(&dir, name, text);
        match build_err(local(&[]).with_file(&path)) {
            ConfigError::FileSyntax {
                line: l,
                column,
                path: p,
                ..
            } => {
                assert_eq!(l, line, "{name}");
                assert!(column >= 1, "{name}");
                assert_eq!(p, path);
            }
            other => panic!("{name}: expected a syntax error, got {other}"),
        }
    }
}

#[test]
fn bad_values_in_files_name_the_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "v.yaml",
        "batch:\n  max_queue_size: lots\nheaders: [a, b]\nsampler: always_on\n",
    );
    let e = build_err(local(&[]).with_file(&path));
    let text = e.to_string();
    assert!(
        text.contains("invalid value `lots` in key `batch.max_queue_size` in file"),
        "{text}"
    );
    assert!(
        text.contains("key `headers` in file") && text.contains("expected a table"),
        "{text}"
    );
    assert!(text.contains("key `sampler` in file"), "{text}");
}

#[test]
fn unreadable_and_unrecognised_files() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let e = build_err(local(&[]).with_file(&missing));
    assert!(matches!(e, ConfigError::FileRead { .. }), "{e}");
    // The message says why, in the operating system's words.
    let why = std::fs::read_to_string(&missing).unwrap_err().to_string();
    assert!(
        e.to_string().contains(&format!(
            "cannot read configuration file `{}`: {why}",
            missing.display()
        )),
        "{e}"
    );
    let ini = write(&dir, "x.ini", "a=b");
    let e = build_err(local(&[]).with_file(&ini));
    assert!(
        e.to_string()
            .contains("expected the extension .toml, .yaml, .yml or .json"),
        "{e}"
    );
    let list = write(&dir, "list.json", "[1, 2]");
    let e = build_err(local(&[]).with_file(&list));
    assert!(
        e.to_string().contains("expected one table of settings"),
        "{e}"
    );
}

#[test]
fn a_file_that_fails_to_load_is_the_only_error_not_the_token_it_may_hold() {
    let dir = tempfile::tempdir().unwrap();
    let broken = write(&dir, "b.toml", "access_token = \"t\"\nservice_name = \"s\n");
    for path in [broken, dir.path().join("nope.toml")] {
        // No endpoint anywhere: Lightstep's ingest, which needs a token, the file's.
        let e = build_err(
            lightstep_config::LightstepConfig::builder()
                .with_env(lightstep_config::EnvSnapshot::empty())
                .with_file(&path),
        );
        assert_eq!(e.errors().len(), 1, "{e}");
        assert!(
            matches!(
                e,
                ConfigError::FileSyntax { .. } | ConfigError::FileRead { .. }
            ),
            "{e}"
        );
    }
    // A file that loads without a token still gets the missing-token error.
    let empty = write(&dir, "e.toml", "service_name = \"s\"\n");
    let e = build_err(
        lightstep_config::LightstepConfig::builder()
            .with_env(lightstep_config::EnvSnapshot::empty())
            .with_file(&empty),
    );
    assert!(matches!(e, ConfigError::MissingToken { .. }), "{e}");
}

#[test]
fn a_section_key_written_whole_at_the_top_level_is_read() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        (
            "d.yaml",
            "tls.insecure: true\nbatch.max_queue_size: 4096\nheaders.x-tenant: acme\n",
        ),
        (
            "d.toml",
            "\"tls.insecure\" = true\n\"batch.max_queue_size\" = 4096\n\"headers.x-tenant\" = \"acme\"\n",
        ),
    ] {
        let c = build_ok(local(&[]).with_file(write(&dir, name, text)));
        assert!(c.tls().insecure, "{name}");
        assert_eq!(c.batch().max_queue_size, 4096, "{name}");
        assert_eq!(c.headers()[0].name, "x-tenant", "{name}");
        assert_eq!(c.headers()[0].value.expose_secret(), "acme", "{name}");
    }
}

#[test]
fn a_value_the_format_allows_but_no_setting_takes_is_an_error_at_its_key() {
    let dir = tempfile::tempdir().unwrap();
    // YAML's infinity, a list as a key, and an empty header: each named by its key, and the
    // rest of the file still read.
    let path = write(
        &dir,
        "odd.yaml",
        "service_name: read\nsampler:\n  name: traceidratio\n  arg: .inf\nheaders:\n  ? [a, b]\n  : c\n  x-empty: ~\n",
    );
    let e = build_err(local(&[]).with_file(&path));
    let text = e.to_string();
    assert!(
        text.contains("invalid value `.inf` in key `sampler.arg` in file")
            && text.contains("expected a number from 0 to 1"),
        "{text}"
    );
    assert!(
        text.contains("unknown key `headers.<a list or table as a key>`"),
        "{text}"
    );
    assert!(
        text.contains("in key `headers.x-empty` in file") && text.contains("expected a string"),
        "{text}"
    );
    assert_eq!(e.errors().len(), 3, "{text}");
}
