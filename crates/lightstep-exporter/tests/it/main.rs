//! The exporter against the real embedded receiver, over real sockets: delivery over gRPC and
//! HTTP, with TLS and in plaintext to loopback; faults; shutdown deadlines; load.

mod delivery;
mod doctor;
mod extensions;
mod failures;
mod faults;
mod hostile;
mod lifecycle;
mod otlp;
mod proxy;
mod resource;
mod retries;
// Shared with the other crate whose tests go through a proxy: each uses part of it.
#[allow(dead_code)]
#[path = "../../../../tools/test-proxy/proxy.rs"]
mod test_proxy;

use std::path::PathBuf;
use std::time::Duration;

use lightstep_config::{ConfigBuilder, EnvSnapshot, LightstepConfig, Protocol};
use lightstep_exporter::LightstepExporter;
use lightstep_receiver::{Receiver, RunningReceiver};

pub(crate) const TOKEN: &str = "test-token-0123";

/// Reads one HTTP/1.1 request from `stream` for a stand-in server: its head, then as much body
/// as its `Content-Length` says. Stops early at a first byte that cannot begin an HTTP/1.1
/// request (a TLS hello), at the end of the stream, or after `buf`-sized reads time out (set a
/// read timeout on the stream first).
pub(crate) fn read_http1_request(stream: &mut std::net::TcpStream) -> Vec<u8> {
    use std::io::Read as _;
    let mut request = Vec::new();
    let mut buf = [0u8; 65536];
    while let Ok(n @ 1..) = stream.read(&mut buf) {
        request.extend_from_slice(&buf[..n]);
        if !request[0].is_ascii_uppercase() {
            break;
        }
        let text = String::from_utf8_lossy(&request);
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text[..head_end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if request.len() >= head_end + 4 + length {
                break;
            }
        }
    }
    request
}

/// A configuration that reads no process environment and sends to `endpoint`.
pub(crate) fn config_for(endpoint: &str, protocol: Protocol) -> ConfigBuilder {
    let builder = LightstepConfig::builder()
        .with_env(EnvSnapshot::empty())
        .with_protocol(protocol)
        .with_service_name("exporter-test")
        .with_service_version("9.8.7")
        .with_access_token(TOKEN)
        .with_scheduled_delay(Duration::from_millis(50))
        .with_timeout(Duration::from_secs(2))
        .with_shutdown_timeout(Duration::from_secs(5));
    if protocol.is_http() {
        builder.with_traces_endpoint(endpoint)
    } else {
        builder.with_otlp_endpoint(endpoint)
    }
}

pub(crate) async fn receiver() -> RunningReceiver {
    Receiver::builder()
        .with_access_token(TOKEN)
        .with_max_spans(300_000)
        .start()
        .await
        .expect("receiver starts")
}

pub(crate) fn endpoint(receiver: &RunningReceiver, protocol: Protocol) -> String {
    if protocol.is_http() {
        receiver.http_traces_url()
    } else {
        receiver.grpc_endpoint()
    }
}

pub(crate) fn exporter(builder: ConfigBuilder) -> LightstepExporter {
    LightstepExporter::new(builder.build().expect("valid configuration")).expect("exporter builds")
}

/// A test CA and a server certificate for 127.0.0.1, `localhost` and `collector.test` (a name
/// only the test proxy resolves), made now.
pub(crate) struct TestPki {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) ca_pem: String,
    pub(crate) server_cert: String,
    pub(crate) server_key: String,
    ca: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
}

impl TestPki {
    pub(crate) fn new() -> Self {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "lightstep-exporter test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let names = vec![
            "localhost".into(),
            "127.0.0.1".into(),
            "collector.test".into(),
        ];
        let cert = rcgen::CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        Self {
            dir,
            ca_pem: ca.pem(),
            server_cert: cert.pem(),
            server_key: key.serialize_pem(),
            ca,
            ca_key,
        }
    }

    pub(crate) fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A client certificate for mutual TLS, signed by the CA and written next to it:
    /// (certificate file, key file).
    pub(crate) fn client_identity(&self) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["exporter.test".into()]).unwrap();
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        let (cert_file, key_file) = (
            self.dir.path().join("client.pem"),
            self.dir.path().join("client-key.pem"),
        );
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        (cert_file, key_file)
    }
}
