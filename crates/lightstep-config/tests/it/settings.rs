//! The settings table, checked from outside: every setting has a row in the docs, a file key
//! that a file may set (the file's own path excepted), and a line in the effective
//! configuration that says where its value came from.

use lightstep_config::{ConfigError, EnvSnapshot, LightstepConfig, Setting, Source};

use crate::{build_err, build_ok, local};

/// A file setting `setting` to a valid value, and the key of the effective configuration's
/// line that shows it. `None` for the one setting no file can hold.
fn sample(setting: Setting, pem: &str) -> Option<(String, &'static str)> {
    let (text, shown) = match setting {
        Setting::ConfigFile => return None,
        Setting::SdkDisabled => ("sdk_disabled = false".into(), "sdk_disabled"),
        Setting::TracesExporter => ("traces_exporter = \"otlp\"".into(), "traces_exporter"),
        Setting::AccessToken => ("access_token = \"t\"".into(), "access_token"),
        Setting::Protocol => ("protocol = \"http/json\"".into(), "protocol"),
        Setting::Region => ("region = \"eu\"".into(), "region"),
        // The generic endpoint is shown as the traces endpoint it becomes.
        Setting::OtlpEndpoint => (
            "otlp_endpoint = \"http://localhost:4317\"".into(),
            "traces_endpoint",
        ),
        Setting::TracesEndpoint => (
            "traces_endpoint = \"http://localhost:4318/v1/traces\"".into(),
            "traces_endpoint",
        ),
        Setting::ServiceName => ("service_name = \"s\"".into(), "service_name"),
        Setting::ServiceVersion => ("service_version = \"2\"".into(), "service_version"),
        Setting::DeploymentEnvironment => (
            "deployment_environment = \"prod\"".into(),
            "deployment_environment",
        ),
        Setting::ResourceAttributes => (
            "[resource_attributes]\nteam = \"core\"".into(),
            "resource_attributes.team",
        ),
        Setting::Headers => ("[headers]\nx-tenant = \"a\"".into(), "headers.x-tenant"),
        Setting::Timeout => ("timeout = \"2s\"".into(), "timeout"),
        Setting::Compression => ("compression = \"gzip\"".into(), "compression"),
        Setting::TlsInsecure => ("[tls]\ninsecure = true".into(), "tls.insecure"),
        Setting::TlsCaFile => (format!("[tls]\nca_file = {pem:?}"), "tls.ca_file"),
        // A certificate needs its key and the other way round.
        Setting::TlsClientCertificate => (
            format!("[tls]\nclient_certificate = {pem:?}\nclient_key = {pem:?}"),
            "tls.client_certificate",
        ),
        Setting::TlsClientKey => (
            format!("[tls]\nclient_key = {pem:?}\nclient_certificate = {pem:?}"),
            "tls.client_key",
        ),
        Setting::Proxy => ("proxy = \"http://proxy.example:3128\"".into(), "proxy"),
        // The list is kept with the proxy it exempts from.
        Setting::NoProxy => (
            "proxy = \"http://proxy.example:3128\"\nno_proxy = \"internal.example\"".into(),
            "no_proxy",
        ),
        Setting::MaxQueueSize => (
            "[batch]\nmax_queue_size = 4096".into(),
            "batch.max_queue_size",
        ),
        Setting::MaxExportBatchSize => (
            "[batch]\nmax_export_batch_size = 10".into(),
            "batch.max_export_batch_size",
        ),
        Setting::ScheduledDelay => (
            "[batch]\nscheduled_delay = \"1s\"".into(),
            "batch.scheduled_delay",
        ),
        Setting::ExportTimeout => (
            "[batch]\nexport_timeout = \"1s\"".into(),
            "batch.export_timeout",
        ),
        Setting::MaxConcurrentExports => (
            "[batch]\nmax_concurrent_exports = 2".into(),
            "batch.max_concurrent_exports",
        ),
        Setting::SamplerName => ("[sampler]\nname = \"always_off\"".into(), "sampler.name"),
        Setting::SamplerArg => (
            "[sampler]\nname = \"traceidratio\"\narg = 0.5".into(),
            "sampler.arg",
        ),
        Setting::Propagators => ("propagators = [\"b3\"]".into(), "propagators"),
        Setting::AttributeCountLimit => (
            "[limits]\nattribute_count = 1".into(),
            "limits.attribute_count",
        ),
        Setting::AttributeValueLengthLimit => (
            "[limits]\nattribute_value_length = 1".into(),
            "limits.attribute_value_length",
        ),
        Setting::EventCountLimit => ("[limits]\nevent_count = 1".into(), "limits.event_count"),
        Setting::LinkCountLimit => ("[limits]\nlink_count = 1".into(), "limits.link_count"),
        Setting::EventAttributeCountLimit => (
            "[limits]\nevent_attribute_count = 1".into(),
            "limits.event_attribute_count",
        ),
        Setting::LinkAttributeCountLimit => (
            "[limits]\nlink_attribute_count = 1".into(),
            "limits.link_attribute_count",
        ),
        Setting::ShutdownTimeout => ("shutdown_timeout = \"1s\"".into(), "shutdown_timeout"),
        other => panic!("no sample for {other:?}: add one here"),
    };
    Some((text, shown))
}

#[test]
fn every_setting_is_read_from_its_file_key_and_shown_with_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("x.pem");
    std::fs::write(&pem, "-----BEGIN CERTIFICATE-----\n").unwrap();
    let pem = pem.to_str().unwrap();
    let path = dir.path().join("c.toml");
    for &setting in Setting::ALL {
        let Some((text, shown)) = sample(setting, pem) else {
            // Not a file key: a file naming it is refused, as any unknown key is.
            std::fs::write(&path, format!("{} = \"x\"\n", setting.key())).unwrap();
            let e = build_err(local(&[]).with_file(&path));
            assert!(
                matches!(&e, ConfigError::UnknownKey { key, .. } if key == setting.key()),
                "{setting:?}: {e}"
            );
            continue;
        };
        // Only the file: no endpoint in the environment that would win over the file's.
        let endpoint = match setting {
            Setting::OtlpEndpoint | Setting::TracesEndpoint => "",
            _ => "otlp_endpoint = \"http://localhost:4317\"\n",
        };
        std::fs::write(&path, format!("{endpoint}{text}\n")).unwrap();
        let config = build_ok(
            LightstepConfig::builder()
                .with_env(EnvSnapshot::empty())
                .with_file(&path),
        );
        // The generic endpoint's line is the traces endpoint's, its source the file's key.
        let key = match setting {
            Setting::OtlpEndpoint => setting.key(),
            _ => shown,
        };
        let from_file = Source::File {
            path: path.clone(),
            key: key.into(),
        };
        let effective = config.effective();
        let line = effective.settings.iter().find(|s| s.key == shown);
        assert_eq!(
            line.map(|l| &l.source),
            Some(&from_file),
            "{setting:?}: {effective}"
        );
        let source = match setting {
            Setting::Headers | Setting::ResourceAttributes => {
                config.source_of_entry(setting, &shown[setting.key().len() + 1..])
            }
            Setting::OtlpEndpoint => config.source_of(Setting::TracesEndpoint),
            _ => config.source_of(setting),
        };
        assert_eq!(source, Some(&from_file), "{setting:?}");
    }
}

#[test]
fn every_setting_has_a_row_in_the_docs() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/configuration.md"
    ))
    .unwrap();
    for setting in Setting::ALL {
        assert!(
            doc.lines()
                .any(|l| l.starts_with(&format!("| `{}`", setting.key()))),
            "no row for {setting:?} in docs/configuration.md"
        );
    }
}
