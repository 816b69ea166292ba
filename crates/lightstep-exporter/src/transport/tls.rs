//! The one TLS client configuration of a pipeline, built once from the PEM bytes the
//! configuration read (bounded, once): the system's root certificates plus the configured CA,
//! and the client identity for mutual TLS. gRPC and HTTP exports, and the doctor's checks, all
//! handshake with it; only the ALPN protocols differ.

use std::sync::Arc;

use lightstep_config::LightstepConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::ExporterError;

/// The *ring* provider, the one both transports (and the receiver) use.
///
/// rustls 0.23.48 deprecated `crypto::ring::default_provider` (it has no post-quantum key
/// exchange) without a replacement for *ring*: the alternative is the aws-lc-rs provider, which
/// needs a C toolchain and CMake to build. The provider is the same whatever the version, so
/// the deprecation is allowed here, once. See docs/adr/011-one-async-transport-core.md.
#[allow(deprecated)]
pub(crate) fn ring_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client configuration for `config`, without ALPN (each transport sets its own).
pub(crate) fn client_config(
    config: &LightstepConfig,
) -> Result<rustls::ClientConfig, ExporterError> {
    let tls = config.tls();
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let (Some(path), Some(pem)) = (&tls.ca_file, tls.ca_pem()) {
        let malformed = || {
            ExporterError::Build(format!(
                "`{}` holds a malformed certificate",
                path.display()
            ))
        };
        for cert in CertificateDer::pem_slice_iter(pem) {
            roots
                .add(cert.map_err(|_| malformed())?)
                .map_err(|e| ExporterError::Build(format!("`{}`: {e}", path.display())))?;
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(ring_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ExporterError::Build(e.to_string()))?
        .with_root_certificates(roots);
    let identity = (
        &tls.client_certificate,
        tls.client_certificate_pem(),
        &tls.client_key,
        tls.client_key_pem(),
    );
    let config = match identity {
        (Some(cert_path), Some(cert), Some(key_path), Some(key)) => {
            let certs = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| {
                    ExporterError::Build(format!(
                        "`{}` holds a malformed certificate",
                        cert_path.display()
                    ))
                })?;
            let key =
                PrivateKeyDer::from_pem_slice(key.expose_secret().as_bytes()).map_err(|_| {
                    ExporterError::Build(format!(
                        "`{}` holds no usable private key",
                        key_path.display()
                    ))
                })?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| ExporterError::Build(format!("client identity rejected: {e}")))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(config)
}

/// `config` offering `protocols` by ALPN, shared.
pub(crate) fn with_alpn(
    mut config: rustls::ClientConfig,
    protocols: &[&[u8]],
) -> Arc<rustls::ClientConfig> {
    config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}
