//! Checks of the files under `deploy/` that cannot run on a development machine without a
//! Docker engine, a Kubernetes cluster or a Collector binary: each is parsed and its content
//! checked against what the code really accepts. The environment variables that the Compose
//! files and the Kubernetes Deployment give the service are fed to `lightstep-config` itself,
//! which must accept them without a warning; the Collector configurations are checked
//! structurally (every component a pipeline names is defined); the Dockerfile is read for its
//! stages, toolchain, example target and user.

use std::path::{Path, PathBuf};

use lightstep::LightstepConfig;
use lightstep::config::EnvSnapshot;
use yaml_rust2::{Yaml, YamlLoader};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the examples package sits in the workspace root")
        .to_path_buf()
}

fn read(relative: &str) -> String {
    let path = workspace().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn yaml(relative: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(&read(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

fn str_of<'a>(value: &'a Yaml, what: &str) -> &'a str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {value:?}"))
}

/// Builds the configuration the service would build from these variables, and fails on any
/// error or warning.
fn config_from(vars: &[(String, String)], origin: &str) -> LightstepConfig {
    let env: EnvSnapshot = vars.iter().cloned().collect();
    let config = LightstepConfig::builder()
        .with_env(env)
        .build()
        .unwrap_or_else(|e| panic!("{origin}: the service would refuse its configuration: {e}"));
    assert!(
        config.warnings().is_empty(),
        "{origin}: {:?}",
        config.warnings()
    );
    config
}

/// `${NAME:?message}` and `${NAME}` as Compose substitutes them, with a stand-in token.
fn compose_substitute(value: &str) -> String {
    if value.starts_with("${LIGHTSTEP_ACCESS_TOKEN") {
        "token-from-the-shell".to_owned()
    } else {
        assert!(!value.contains("${"), "unexpected substitution in {value}");
        value.to_owned()
    }
}

fn compose_env(service: &Yaml) -> Vec<(String, String)> {
    service["environment"]
        .as_hash()
        .expect("environment as a map")
        .iter()
        .map(|(k, v)| {
            (
                str_of(k, "variable").to_owned(),
                compose_substitute(str_of(v, "value")),
            )
        })
        .collect()
}

#[test]
fn compose_lightstep_uses_todays_variables_and_the_service_accepts_them() {
    let docs = yaml("deploy/docker-compose-lightstep.yml");
    let doc = &docs[0];
    assert!(doc["version"].is_badvalue(), "`version:` is obsolete");
    let app = &doc["services"]["rust-app"];
    let vars = compose_env(app);
    // The token once, not again in the headers.
    assert!(
        vars.iter().all(|(k, _)| !k.ends_with("_HEADERS")),
        "{vars:?}"
    );
    let config = config_from(&vars, "docker-compose-lightstep.yml");
    assert_eq!(
        config.access_token().map(|t| t.expose_secret().to_owned()),
        Some("token-from-the-shell".to_owned())
    );
    assert_eq!(config.traces_endpoint().host(), "ingest.lightstep.com");
    assert!(config.traces_endpoint().is_tls());
    assert_eq!(config.service_name(), "rust-microservice");
    assert_eq!(config.service_version(), "1.0.0");
    assert_eq!(config.deployment_environment(), Some("production"));
    assert_build_points_at_the_dockerfile(app);
    assert!(str_of(&app["stop_grace_period"], "stop_grace_period").ends_with('s'));
}

#[test]
fn compose_gateway_sends_to_the_collector_without_a_token() {
    let docs = yaml("deploy/docker-compose-gateway.yml");
    let services = &docs[0]["services"];
    let app = &services["rust-app"];
    let config = config_from(&compose_env(app), "docker-compose-gateway.yml");
    assert!(config.access_token().is_none());
    assert_eq!(config.traces_endpoint().host(), "otel-collector");
    assert_build_points_at_the_dockerfile(app);
    // The Collector gets the token and mounts the gateway configuration that exists here.
    let collector = &services["otel-collector"];
    let volume = str_of(&collector["volumes"][0], "volume");
    let source = volume.split(':').next().expect("source");
    assert!(
        workspace().join("deploy").join(source).is_file(),
        "{volume}"
    );
    assert!(!collector["environment"]["LIGHTSTEP_ACCESS_TOKEN"].is_badvalue());
}

fn assert_build_points_at_the_dockerfile(service: &Yaml) {
    let context = workspace()
        .join("deploy")
        .join(str_of(&service["build"]["context"], "build.context"));
    let dockerfile = str_of(&service["build"]["dockerfile"], "build.dockerfile");
    assert!(
        context.join("Cargo.toml").is_file(),
        "the context is the workspace root"
    );
    assert!(context.join(dockerfile).is_file(), "{dockerfile}");
}

#[test]
fn kubernetes_deployment_takes_the_token_from_a_secret_and_the_service_accepts_its_env() {
    let docs = yaml("deploy/kubernetes.yaml");
    let deployment = docs
        .iter()
        .find(|d| d["kind"].as_str() == Some("Deployment"))
        .expect("a Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    let container = &pod["containers"][0];
    let mut vars = Vec::new();
    let mut token_from_secret = false;
    for entry in container["env"].as_vec().expect("env list") {
        let name = str_of(&entry["name"], "env name").to_owned();
        if let Some(value) = entry["value"].as_str() {
            // `$(K8S_POD_NAME)` is expanded by Kubernetes; any pod name will do here.
            vars.push((name, value.replace("$(", "").replace(')', "")));
        } else if name == "LIGHTSTEP_ACCESS_TOKEN" {
            let secret = &entry["valueFrom"]["secretKeyRef"];
            assert_eq!(secret["name"].as_str(), Some("lightstep"));
            assert_eq!(secret["key"].as_str(), Some("access-token"));
            token_from_secret = true;
            vars.push((name, "token-from-the-secret".to_owned()));
        } else {
            assert!(
                !entry["valueFrom"]["fieldRef"]["fieldPath"].is_badvalue(),
                "{name}"
            );
        }
    }
    assert!(token_from_secret);
    let config = config_from(&vars, "kubernetes.yaml");
    assert!(config.access_token().is_some());
    assert_eq!(config.deployment_environment(), Some("production"));
    assert!(
        config
            .resource_attributes()
            .iter()
            .any(|(k, _)| k == "k8s.pod.name"),
        "{:?}",
        config.resource_attributes()
    );
    // Kubernetes waits longer than the flush may take before it kills the pod.
    let grace = pod["terminationGracePeriodSeconds"]
        .as_i64()
        .expect("terminationGracePeriodSeconds");
    assert!(
        u64::try_from(grace).expect("positive") > config.shutdown_timeout().as_secs(),
        "{grace}"
    );
    // The Service routes to the container's named port.
    let service = docs
        .iter()
        .find(|d| d["kind"].as_str() == Some("Service"))
        .expect("a Service");
    assert_eq!(
        service["spec"]["ports"][0]["targetPort"].as_str(),
        container["ports"][0]["name"].as_str()
    );
}

/// Every receiver, processor, exporter and extension the `service` section names is defined.
fn assert_collector_pipelines_are_complete(doc: &Yaml, file: &str) {
    let service = &doc["service"];
    for extension in service["extensions"].as_vec().into_iter().flatten() {
        let name = str_of(extension, "extension");
        assert!(
            !doc["extensions"][name].is_badvalue(),
            "{file}: extension {name}"
        );
    }
    let pipelines = service["pipelines"].as_hash().expect("pipelines");
    assert!(!pipelines.is_empty());
    for (pipeline, components) in pipelines {
        let pipeline = str_of(pipeline, "pipeline");
        for kind in ["receivers", "processors", "exporters"] {
            let names = components[kind]
                .as_vec()
                .unwrap_or_else(|| panic!("{file}: {pipeline} has no {kind}"));
            for name in names {
                let name = str_of(name, kind);
                assert!(
                    !doc[kind][name].is_badvalue(),
                    "{file}: {pipeline} names undefined {name}"
                );
            }
        }
        // memory_limiter first, batch after it, as the Collector's documentation advises.
        let processors: Vec<&str> = components["processors"]
            .as_vec()
            .expect("processors")
            .iter()
            .filter_map(Yaml::as_str)
            .collect();
        assert_eq!(processors.first(), Some(&"memory_limiter"), "{file}");
        assert!(processors.contains(&"batch"), "{file}");
    }
}

#[test]
fn collector_gateway_exports_to_lightstep_with_the_token_from_the_environment() {
    let docs = yaml("deploy/otel-collector-gateway.yaml");
    let doc = &docs[0];
    assert_collector_pipelines_are_complete(doc, "otel-collector-gateway.yaml");
    let exporter = &doc["exporters"]["otlp_grpc/lightstep"];
    assert_eq!(
        exporter["endpoint"].as_str(),
        Some("ingest.lightstep.com:443")
    );
    assert_eq!(
        exporter["headers"]["lightstep-access-token"].as_str(),
        Some("${env:LIGHTSTEP_ACCESS_TOKEN}")
    );
    assert_eq!(
        doc["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].as_str(),
        Some("0.0.0.0:4317")
    );
}

#[test]
fn collector_agent_balances_by_trace_id() {
    let docs = yaml("deploy/otel-collector-agent.yaml");
    let doc = &docs[0];
    assert_collector_pipelines_are_complete(doc, "otel-collector-agent.yaml");
    let exporter = &doc["exporters"]["loadbalancing"];
    assert_eq!(exporter["routing_key"].as_str(), Some("traceID"));
    assert!(!exporter["resolver"]["dns"]["hostname"].is_badvalue());
}

#[test]
fn dockerfile_is_multi_stage_on_the_pinned_toolchain_and_runs_as_a_user() {
    let dockerfile = read("deploy/Dockerfile");
    let instructions: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let stages: Vec<&&str> = instructions
        .iter()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(stages.len(), 2, "{stages:?}");

    // The build stage's Rust is the one rust-toolchain.toml pins.
    let toolchain = read("rust-toolchain.toml");
    let channel = toolchain
        .lines()
        .find_map(|l| l.strip_prefix("channel = "))
        .expect("channel")
        .trim_matches('"');
    assert!(
        stages[0].starts_with(&format!("FROM rust:{channel}-")),
        "{} vs {channel}",
        stages[0]
    );

    // The example it builds exists.
    let example = dockerfile
        .split("--example ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("--example NAME");
    assert!(
        read("examples/Cargo.toml").contains(&format!("name = \"{example}\"")),
        "{example}"
    );
    assert!(dockerfile.contains("--locked"));

    // After the last FROM: a non-root user, exec-form entry point, CA certificates.
    let last_from = instructions
        .iter()
        .rposition(|l| l.starts_with("FROM "))
        .expect("FROM");
    let runtime = &instructions[last_from..];
    let user = runtime
        .iter()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("USER in the final stage");
    let uid = user.split(':').next().expect("uid");
    assert!(uid != "0" && uid != "root", "{user}");
    assert!(
        runtime.iter().any(|l| l.starts_with("ENTRYPOINT [")),
        "exec form"
    );
    assert!(runtime.iter().any(|l| l.contains("ca-certificates")));
    // The listen flag it passes is one the example takes.
    assert!(read("examples/graceful_shutdown.rs").contains("\"--listen\""));
}
