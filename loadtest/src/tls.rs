//! TLS for `https://` targets: rustls with its aws-lc-rs provider (the one the rest of Shoal
//! uses), HTTP/1.1 offered by ALPN, the server name (a DNS name or an IP address) from the URL.
//!
//! Server certificates are verified against the platform's trust store, the same roots as the
//! rest of Shoal (`rustls-platform-verifier`): on Linux the system's CA bundle, which
//! `SSL_CERT_FILE` and `SSL_CERT_DIR` replace when either is set (OpenSSL's convention).
//! `--insecure` accepts any certificate (the handshake's signatures are still checked): for
//! test servers only, and the binary warns when it is given.

use std::sync::Arc;

use rustls_platform_verifier::BuilderVerifierExt as _;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{self, WebPkiSupportedAlgorithms};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    self, CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme,
};

/// What `--insecure` prints: the run proves nothing about the server's certificate.
pub(crate) const INSECURE_WARNING: &str = "warning: --insecure: server certificates are not \
     verified; use it only against test servers";

/// The client configuration of every `https://` target; `insecure` accepts any certificate.
pub(crate) fn client_config(insecure: bool) -> Result<Arc<ClientConfig>, String> {
    // Explicit, not the process default: with both rustls providers compiled in (another
    // crate of the same build may enable ring), rustls would not pick one itself.
    let provider = Arc::new(crypto::aws_lc_rs::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?;
    let builder = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate { algorithms }))
    } else {
        builder.with_platform_verifier().map_err(|e| {
            format!(
                "cannot load the trust roots for https (the system's CA certificates, or \
                 SSL_CERT_FILE / SSL_CERT_DIR when set): {e}"
            )
        })?
    };
    let mut config = builder.with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The name the server's certificate must be valid for: the URL's host, a DNS name or an IP
/// address (`[::1]` without its brackets).
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(host.trim_matches(['[', ']']).to_owned())
        .map_err(|e| format!("{host:?} cannot be a TLS server name: {e}"))
}

/// What a failed handshake says; a certificate no trusted CA issued names the ways out.
pub(crate) fn describe(error: &rustls::Error) -> String {
    match error {
        rustls::Error::InvalidCertificate(reason @ CertificateError::UnknownIssuer) => format!(
            "certificate not trusted: {reason}: shoal-load trusts the system's CA certificates, \
             or only those in SSL_CERT_FILE / SSL_CERT_DIR when set; set SSL_CERT_FILE to the \
             PEM file of the CA that issued it, or pass --insecure (testing only)"
        ),
        rustls::Error::InvalidCertificate(reason) => format!(
            "certificate not trusted: {reason}; pass --insecure to skip the check (testing only)"
        ),
        other => format!("the TLS handshake failed: {other}"),
    }
}

/// `--insecure`: any certificate is accepted; the signatures that prove the server holds its
/// key are still checked, so that the handshake stays a real one.
#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

// === impl AnyCertificate ===

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
        crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn server_names_are_dns_names_or_ip_addresses() {
        assert!(matches!(
            server_name("127.0.0.1").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("[::1]").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("mcp.example").unwrap(),
            ServerName::DnsName(_)
        ));
        assert!(server_name("bad name").is_err());
    }

    #[test]
    fn an_unknown_issuer_names_ssl_cert_file_and_insecure() {
        let message = describe(&rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ));
        assert!(
            message.starts_with("certificate not trusted: UnknownIssuer: "),
            "{message}"
        );
        assert!(
            message.contains("set SSL_CERT_FILE") && message.contains("--insecure"),
            "{message}"
        );
        let message = describe(&rustls::Error::InvalidCertificate(
            CertificateError::Expired,
        ));
        assert!(
            message.starts_with("certificate not trusted: ") && message.contains("--insecure"),
            "{message}"
        );
        let message = describe(&rustls::Error::DecryptError);
        assert!(
            message.starts_with("the TLS handshake failed: "),
            "{message}"
        );
    }
}
