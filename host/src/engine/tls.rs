//! HTTPS for every connection the client opens: the load's own pool and the side requests
//! (model discovery, `/tokenize`, `/metrics`, `info`).
//!
//! rustls with the `ring` provider: no OpenSSL to find on the user's machine and nothing for
//! CI to install. Certificates are checked against the platform's roots (read once per
//! process) plus `--ca-cert`, and the server is named by SNI from the URL's host. `--insecure`
//! turns checking off, for self-signed test servers: the handshake's signatures are still
//! verified, only the certificate chain and name are not, and the run records that it was
//! insecure. The handshake is timed apart from the TCP connect so a report can say what TLS
//! cost (see [`super::connection`]).
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// How the client checks servers' certificates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM certificates trusted besides the platform's roots.
    pub ca_cert: Option<PathBuf>,
    /// Accept any certificate.
    pub insecure: bool,
}

impl TlsOptions {
    /// How certificates are checked, in words recorded with a result.
    pub fn describe(&self) -> String {
        match (&self.ca_cert, self.insecure) {
            (_, true) => "insecure: the certificate was not checked (--insecure)".to_owned(),
            (Some(ca), false) => format!(
                "certificate checked against the platform's roots and {}",
                ca.display()
            ),
            (None, false) => "certificate checked against the platform's roots".to_owned(),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum TlsError {
    #[error("--ca-cert {path}: {reason}")]
    CaCert { path: String, reason: String },
    #[error("the TLS settings are unusable: {0}")]
    Config(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The platform's trusted roots, read once: `(store, certificates that could not be used)`.
fn platform_roots() -> &'static (RootCertStore, usize) {
    static ROOTS: OnceLock<(RootCertStore, usize)> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::debug!("reading the platform's root certificates: {e}");
        }
        let mut store = RootCertStore::empty();
        let (_, unusable) = store.add_parsable_certificates(found.certs);
        (store, unusable)
    })
}

fn read_pem(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = |reason: String| TlsError::CaCert {
        path: path.display().to_string(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    Ok(certs)
}

/// A client configuration for `opts`: HTTP/1.1 only, as the pool speaks.
pub fn client_config(opts: &TlsOptions) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let mut config = if opts.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(
                provider().signature_verification_algorithms,
            )))
            .with_no_client_auth()
    } else {
        let mut roots = platform_roots().0.clone();
        if let Some(path) = &opts.ca_cert {
            for cert in read_pem(path)? {
                roots.add(cert).map_err(|e| TlsError::CaCert {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The configuration with the platform's roots only, built once.
pub fn default_config() -> Result<Arc<ClientConfig>, TlsError> {
    static DEFAULT: OnceLock<Result<Arc<ClientConfig>, TlsError>> = OnceLock::new();
    DEFAULT
        .get_or_init(|| client_config(&TlsOptions::default()))
        .clone()
}

/// The name the server is asked for by SNI and checked against: the URL's host without port
/// or IPv6 brackets.
pub fn server_name(authority: &str) -> Result<ServerName<'static>, TlsError> {
    let host = match authority.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned())
        .map_err(|e| TlsError::Config(format!("`{host}` is not a TLS server name: {e}")))
}

/// `--insecure`: any certificate, any name; the handshake's own signatures still checked.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_drop_the_port_and_brackets() {
        assert_eq!(
            server_name("example.com:8443").unwrap().to_str(),
            "example.com"
        );
        assert_eq!(server_name("127.0.0.1:443").unwrap().to_str(), "127.0.0.1");
        assert_eq!(server_name("[::1]:443").unwrap().to_str(), "::1");
        assert!(server_name("bad name:1").is_err());
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let e = client_config(&TlsOptions {
            ca_cert: Some(path.clone()),
            insecure: false,
        })
        .unwrap_err();
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        assert!(
            client_config(&TlsOptions {
                ca_cert: Some(dir.path().join("missing.pem")),
                insecure: false
            })
            .is_err()
        );
    }
}
