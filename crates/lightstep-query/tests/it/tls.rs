//! HTTPS to a stand-in whose certificate is signed by a CA made for the test: trusted through
//! the CA file, refused without it.

use std::sync::Arc;

use lightstep_query::{Error, Tempo, TraceSource};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::fixtures::{self, TempoOptions};
use crate::standin::StandIn;

/// A CA and a server certificate, as PEM.
pub(crate) struct TestPki {
    pub(crate) ca_pem: String,
    server_cert_pem: String,
    server_key_pem: String,
}

impl TestPki {
    /// For `localhost` and `127.0.0.1`.
    fn new() -> Self {
        Self::for_names(&["localhost", "127.0.0.1"])
    }

    pub(crate) fn for_names(names: &[&str]) -> Self {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "lightstep-query test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let server_key = rcgen::KeyPair::generate().unwrap();
        let server_params = rcgen::CertificateParams::new(
            names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>(),
        )
        .unwrap();
        let server_cert = server_params
            .signed_by(&server_key, &ca_cert, &ca_key)
            .unwrap();
        Self {
            ca_pem: ca_cert.pem(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
        }
    }

    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let certs = CertificateDer::pem_slice_iter(self.server_cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(self.server_key_pem.as_bytes()).unwrap();
        // Deprecated by rustls 0.23.48, with no replacement for *ring*: see
        // docs/adr/011-one-async-transport-core.md.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_ca_file_works_and_without_it_is_refused() {
    let pki = TestPki::new();
    let standin = StandIn::start_tls(
        fixtures::tempo_api(TempoOptions {
            json_only: false,
            tenant: Some("team-a"),
        }),
        pki.acceptor(),
    )
    .await;
    let url = format!("https://localhost:{}", standin.addr.port());
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();
    let id = &fixtures::otlp_traces()[2].0;

    let trusted = Tempo::builder(&url)
        .with_tenant("team-a")
        .with_ca_file(&ca_file)
        .build()
        .unwrap();
    let trace = trusted.fetch(id).await.unwrap();
    assert!(!trace.spans.is_empty());

    let untrusting = Tempo::builder(&url).with_tenant("team-a").build().unwrap();
    let err = untrusting.fetch(id).await.unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("UnknownIssuer") || text.contains("unknown issuer"),
        "{text}"
    );
    assert!(!text.contains("team-a"), "{text}");

    // A CA file with no certificate in it is refused when the source is built.
    std::fs::write(&ca_file, "not a certificate").unwrap();
    let err = Tempo::builder(&url)
        .with_ca_file(&ca_file)
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("holds no PEM certificate"),
        "{err}"
    );
}
