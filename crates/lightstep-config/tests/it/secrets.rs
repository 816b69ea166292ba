//! The token's value appears in no Debug output, no error message, no effective-config dump.

use lightstep_config::{EnvSnapshot, LightstepConfig};

use crate::{build_err, build_ok, local};

const TOKEN: &str = "tok_9f8e7d6c5b4a-SECRET";

fn assert_hidden(what: &str, text: &str) {
    assert!(
        !text.contains(TOKEN),
        "the token leaked into {what}: {text}"
    );
    assert!(
        !text.contains("SECRET"),
        "part of the token leaked into {what}: {text}"
    );
}

#[test]
fn token_never_appears_in_debug_or_the_effective_configuration() {
    for vars in [
        vec![("LIGHTSTEP_ACCESS_TOKEN", TOKEN)],
        vec![("LS_ACCESS_TOKEN", TOKEN)],
        vec![(
            "OTEL_EXPORTER_OTLP_HEADERS",
            &*format!("lightstep-access-token={TOKEN},authorization=Bearer%20{TOKEN}"),
        )],
        vec![(
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            &*format!("x-api-key={TOKEN}"),
        )],
    ] {
        let snapshot: EnvSnapshot = vars.iter().copied().collect();
        assert_hidden("EnvSnapshot Debug", &format!("{snapshot:?}"));
        let builder = local(&vars)
            .with_access_token(TOKEN)
            .with_header("x-key", TOKEN);
        assert_hidden("ConfigBuilder Debug", &format!("{builder:?}"));
        let c = build_ok(local(&vars));
        assert_hidden("LightstepConfig Debug", &format!("{c:?}"));
        assert_hidden("LightstepConfig pretty Debug", &format!("{c:#?}"));
        let effective = c.effective();
        assert_hidden("effective Display", &effective.to_string());
        assert_hidden("effective Debug", &format!("{effective:?}"));
        for w in c.warnings() {
            assert_hidden("a warning", w.message());
        }
        assert!(effective.to_string().contains("[REDACTED]"));
    }
}

#[test]
fn token_never_appears_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    // A token with a line break, in every place a token can come from.
    let bad = format!("{TOKEN}\r\nx");
    let errors = [
        build_err(local(&[("LIGHTSTEP_ACCESS_TOKEN", &bad)])),
        build_err(local(&[]).with_access_token(bad.as_str())),
        build_err(local(&[(
            "OTEL_EXPORTER_OTLP_HEADERS",
            &format!("lightstep-access-token={TOKEN}%0A"),
        )])),
        build_err(local(&[("OTEL_EXPORTER_OTLP_HEADERS", TOKEN)])),
        build_err(local(&[(
            "OTEL_EXPORTER_OTLP_HEADERS",
            &format!("a={TOKEN}%ZZ,b"),
        )])),
        // Plaintext to a remote host.
        build_err(
            LightstepConfig::builder()
                .with_env(
                    EnvSnapshot::empty().with("OTEL_EXPORTER_OTLP_ENDPOINT", "http://remote:4317"),
                )
                .with_access_token(TOKEN),
        ),
    ];
    for e in &errors {
        assert_hidden("an error", &e.to_string());
        assert_hidden("an error's Debug", &format!("{e:?}"));
    }
    // A file whose syntax breaks on the token's own line: the parser's snippet must not leak it.
    for (name, text) in [
        (
            "t.toml",
            format!("access_token = \"{TOKEN}\nservice_name = 1\n"),
        ),
        ("t.yaml", format!("access_token: \"{TOKEN}\n  - : [\n")),
        ("t.json", format!("{{\"access_token\": \"{TOKEN}\" oops}}")),
        (
            "u.toml",
            format!("access_token = \"{TOKEN}\"\nacess_token = \"{TOKEN}\"\n"),
        ),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let e = build_err(local(&[]).with_file(&path));
        assert_hidden(name, &e.to_string());
        assert_hidden(name, &format!("{e:?}"));
    }
}

#[test]
fn a_misplaced_header_separator_does_not_print_the_value() {
    // `name:value` instead of `name=value`: the "name" is the secret.
    let e = build_err(local(&[(
        "OTEL_EXPORTER_OTLP_HEADERS",
        &format!("lightstep-access-token:{TOKEN}=="),
    )]));
    assert_hidden("a header-name error", &e.to_string());
    assert!(e.to_string().contains("a header name is invalid"), "{e}");
    let e = build_err(local(&[]).with_header(format!("Authorization Bearer {TOKEN}"), "x"));
    assert_hidden("a header-name error from code", &e.to_string());
}

#[test]
fn unknown_variables_are_redacted_in_debug() {
    // A misspelt token variable is still a token.
    let snapshot = EnvSnapshot::empty()
        .with("LS_ACESS_TOKEN", TOKEN)
        .with("OTEL_SERVICE_NAME", "shown");
    let debug = format!("{snapshot:?}");
    assert_hidden("EnvSnapshot Debug", &debug);
    assert!(debug.contains("shown"), "{debug}");
}

#[test]
fn credentials_in_an_endpoint_are_refused_without_being_repeated() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://user:{TOKEN}@127.0.0.1:4318");
    let file = dir.path().join("c.json");
    std::fs::write(&file, format!("{{\"otlp_endpoint\": \"{url}\"}}")).unwrap();
    let from_env = local(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &url)]);
    let from_code = local(&[]).with_otlp_endpoint(url.as_str());
    let traces_from_code = local(&[]).with_traces_endpoint(format!("user:{TOKEN}@collector:4317"));
    let from_file = LightstepConfig::builder()
        .with_env(EnvSnapshot::empty())
        .with_file(&file);
    // Two disagreeing endpoints of one layer, the one with credentials first: refused.
    let disagreeing = LightstepConfig::builder().with_env(
        EnvSnapshot::empty()
            .with("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &url)
            .with("LS_SATELLITE_URL", "http://localhost:4318"),
    );
    // The one with credentials second: the configuration builds, and the warning about the
    // disagreement quotes both values, the losing one redacted.
    let c = build_ok(
        LightstepConfig::builder().with_env(
            EnvSnapshot::empty()
                .with(
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "http://localhost:4318",
                )
                .with(
                    "LS_SATELLITE_URL",
                    format!("https://user:pa/{TOKEN}@collector:4318"),
                ),
        ),
    );
    let warning = c
        .warnings()
        .iter()
        .map(|w| w.message().to_owned())
        .find(|m| m.contains("disagree"))
        .expect("a warning about the disagreeing endpoints");
    assert_hidden("the disagreement warning", &warning);
    assert!(
        warning.contains("over `https://[REDACTED]@collector:4318`"),
        "{warning}"
    );
    assert_hidden(
        "EnvSnapshot Debug",
        &format!(
            "{:?}",
            EnvSnapshot::empty().with("OTEL_EXPORTER_OTLP_ENDPOINT", &url)
        ),
    );
    assert_hidden("ConfigBuilder Debug", &format!("{from_code:?}"));
    assert_hidden("ConfigBuilder Debug", &format!("{traces_from_code:?}"));
    for (origin, builder) in [
        (
            "environment variable `OTEL_EXPORTER_OTLP_ENDPOINT`",
            from_env,
        ),
        ("with_otlp_endpoint", from_code),
        ("with_traces_endpoint", traces_from_code),
        ("otlp_endpoint", from_file),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", disagreeing),
    ] {
        let builder_debug = format!("{builder:?}");
        assert_hidden("ConfigBuilder Debug", &builder_debug);
        let e = build_err(builder);
        let message = e.to_string();
        // The one error: not also the fallback endpoint's need of a token.
        assert_eq!(e.errors().len(), 1, "{message}");
        assert_hidden("an endpoint error", &message);
        assert_hidden("an endpoint error's Debug", &format!("{e:?}"));
        // The error still says where and what: the source, the host, and why.
        assert!(message.contains(origin), "{message}");
        assert!(message.contains("[REDACTED]@"), "{message}");
        assert!(message.contains("without credentials"), "{message}");
    }
}

/// The TLS files are read once, by the configuration: their bytes are what the exporter builds
/// its TLS from. The client key among them is a secret: no `Debug` shows it, nor any part of a
/// certificate (sizes only).
#[test]
fn tls_file_contents_are_kept_and_the_key_is_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, body: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        path
    };
    let ca = "-----BEGIN CERTIFICATE-----\nQ0EtQk9EWQ==\n-----END CERTIFICATE-----\n";
    let cert = "-----BEGIN CERTIFICATE-----\nQ0VSVC1CT0RZ\n-----END CERTIFICATE-----\n";
    let key = "-----BEGIN PRIVATE KEY-----\nS0VZLVNFQ1JFVA==\n-----END PRIVATE KEY-----\n";
    let c = build_ok(
        local(&[])
            .with_ca_file(write("ca.pem", ca))
            .with_client_identity(write("cert.pem", cert), write("key.pem", key)),
    );
    assert_eq!(c.tls().ca_pem(), Some(ca.as_bytes()));
    assert_eq!(c.tls().client_certificate_pem(), Some(cert.as_bytes()));
    assert_eq!(
        c.tls().client_key_pem().map(|k| k.expose_secret()),
        Some(key)
    );
    for text in [
        format!("{c:?}"),
        format!("{c:#?}"),
        format!("{:?}", c.tls()),
    ] {
        for secret in [
            "S0VZLVNFQ1JFVA",
            "PRIVATE KEY",
            "Q0VSVC1CT0RZ",
            "Q0EtQk9EWQ",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains(&format!("{} bytes", ca.len())), "{text}");
    }
}

/// A proxy URL's credentials are the proxy's password: shown by nothing.
#[test]
fn proxy_credentials_never_appear() {
    let vars = [("HTTP_PROXY", "http://user:PROXY-S3CRET@proxy.example:3128")];
    let snapshot: EnvSnapshot = vars.iter().copied().collect();
    let c = build_ok(local(&vars));
    let code = local(&[]).with_proxy("http://user:PROXY-S3CRET@proxy.example:3128");
    assert_eq!(
        c.proxy().map(|p| p.url().expose_secret()),
        Some("http://user:PROXY-S3CRET@proxy.example:3128")
    );
    for text in [
        format!("{snapshot:?}"),
        format!("{c:?}"),
        format!("{:?}", c.proxy()),
        c.effective().to_string(),
        format!("{code:?}"),
    ] {
        assert!(!text.contains("PROXY-S3CRET"), "{text}");
    }
    assert!(
        c.effective()
            .to_string()
            .contains("http://[REDACTED]@proxy.example:3128"),
        "{}",
        c.effective()
    );
}
