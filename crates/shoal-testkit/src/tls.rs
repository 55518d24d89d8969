//! TLS for tests: [`PrivateCa`], a throwaway certificate authority (rcgen), and
//! [`TlsTerminator`], a TLS-terminating TCP proxy with a certificate from it, to put any
//! plain-HTTP server (shoal, an OpenID provider) behind `https://`.
//!
//! ```no_run
//! # async fn example(upstream: std::net::SocketAddr, dir: &std::path::Path) {
//! use shoal_testkit::tls::{PrivateCa, TlsTerminator};
//!
//! let ca = PrivateCa::new();
//! let ca_file = ca.write_ca_pem(dir); // `dir/ca.pem`: give it as SSL_CERT_FILE
//! let tls = TlsTerminator::start(&ca, upstream).await;
//! let url = tls.https_url("/mcp"); // https://127.0.0.1:<port>/mcp
//! # let _ = (ca_file, url);
//! # }
//! ```
//!
//! The CA is made fresh by each [`PrivateCa::new`], so no client trusts it unless told to:
//! a client that does not have `ca.pem` fails with an unknown issuer. The terminator's leaf
//! certificate is valid for `127.0.0.1`, `::1` and `localhost`. rustls uses its aws-lc-rs
//! provider here, as in the binaries.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, CertifiedIssuer, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

/// The names the terminator's certificate is valid for.
pub const LEAF_NAMES: [&str; 3] = ["127.0.0.1", "::1", "localhost"];
/// Bound on connecting to the upstream for one accepted connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on one TLS handshake (a client that never finishes one is dropped).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A self-signed certificate authority of its own, made by rcgen; it signs leaf certificates.
pub struct PrivateCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for PrivateCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The issuer holds a private key: not printed.
        f.debug_struct("PrivateCa").finish_non_exhaustive()
    }
}

impl Default for PrivateCa {
    fn default() -> Self {
        Self::new()
    }
}

impl PrivateCa {
    /// A new CA, `CN=Shoal test CA <key id>`, with a fresh ECDSA P-256 key.
    pub fn new() -> Self {
        let key = KeyPair::generate().expect("a CA key");
        // Each CA its own name: a verifier that finds a CA of the certificate's issuer name
        // checks the signature with it, and two CAs of one name would fail as a bad
        // signature instead of an unknown issuer.
        let key_id: String = key.public_key_raw()[1..9]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("Shoal test CA {key_id}"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, key).expect("a self-signed CA");
        Self { issuer }
    }

    /// The CA's certificate, PEM: what a client adds to its trust roots.
    pub fn ca_pem(&self) -> String {
        self.issuer.pem()
    }

    /// The CA's certificate, DER.
    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// Writes the CA's certificate to `dir/ca.pem` (creating `dir`) and returns that path.
    pub fn write_ca_pem(&self, dir: &Path) -> PathBuf {
        std::fs::create_dir_all(dir).expect("the directory of ca.pem");
        let path = dir.join("ca.pem");
        std::fs::write(&path, self.ca_pem()).expect("ca.pem written");
        path
    }

    /// A server certificate for `names` (DNS names or IP addresses) signed by this CA, and its
    /// private key.
    pub fn leaf(&self, names: &[&str]) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let (cert, key) = self.signed_leaf(names);
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (cert.der().clone(), key)
    }

    /// Writes a fresh leaf for `names` and its private key, PEM, to `dir/leaf.pem` and
    /// `dir/leaf-key.pem` (creating `dir`), for a server of another language (a test script's
    /// https server); returns both paths.
    pub fn write_leaf_pem(&self, dir: &Path, names: &[&str]) -> (PathBuf, PathBuf) {
        let (cert, key) = self.signed_leaf(names);
        std::fs::create_dir_all(dir).expect("the directory of leaf.pem");
        let cert_path = dir.join("leaf.pem");
        let key_path = dir.join("leaf-key.pem");
        std::fs::write(&cert_path, cert.pem()).expect("leaf.pem written");
        std::fs::write(&key_path, key.serialize_pem()).expect("leaf-key.pem written");
        (cert_path, key_path)
    }

    /// A server certificate for `names` signed by this CA, with its fresh key.
    fn signed_leaf(&self, names: &[&str]) -> (Certificate, KeyPair) {
        let names: Vec<String> = names.iter().map(|&name| name.to_owned()).collect();
        let mut params = CertificateParams::new(names).expect("valid certificate names");
        params
            .distinguished_name
            .push(DnType::CommonName, "Shoal test server");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().expect("a leaf key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("a leaf signed by the CA");
        (cert, key)
    }

    /// A rustls server configuration (aws-lc-rs) presenting a fresh leaf for `names`.
    pub fn server_config(&self, names: &[&str]) -> Arc<ServerConfig> {
        let (cert, key) = self.leaf(names);
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS 1.2 and 1.3 with aws-lc-rs")
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .expect("the leaf and its key match");
        Arc::new(config)
    }
}

/// A TLS-terminating proxy on `127.0.0.1:<free port>`: each connection's TLS is ended here and
/// its bytes go to the plain-TCP upstream. Stopped on drop (its listener and every connection).
#[derive(Debug)]
pub struct TlsTerminator {
    addr: SocketAddr,
    accept_task: JoinHandle<()>,
}

impl TlsTerminator {
    /// Listens on a free loopback port with a leaf certificate for [`LEAF_NAMES`] signed by
    /// `ca`, and forwards every connection to `upstream`.
    ///
    /// # Panics
    ///
    /// When no loopback port can be bound.
    pub async fn start(ca: &PrivateCa, upstream: SocketAddr) -> Self {
        let acceptor = TlsAcceptor::from(ca.server_config(&LEAF_NAMES));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port for the TLS terminator");
        let addr = listener.local_addr().expect("the TLS terminator's address");
        let accept_task = tokio::spawn(accept_loop(listener, acceptor, upstream));
        Self { addr, accept_task }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:<port><path>`.
    pub fn https_url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }
}

impl Drop for TlsTerminator {
    fn drop(&mut self) {
        // The connection tasks live in the accept task's `JoinSet`: aborted with it.
        self.accept_task.abort();
    }
}

async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, upstream: SocketAddr) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else {
                    // Out of file descriptors, say: try again shortly rather than spin.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                connections.spawn(forward(client, acceptor.clone(), upstream));
            }
            // Reap finished connections so that the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// One connection: the TLS handshake, then bytes both ways until either side closes. A
/// client that refuses the certificate, or an upstream that is down, just ends it.
async fn forward(client: TcpStream, acceptor: TlsAcceptor, upstream: SocketAddr) {
    let _ = client.set_nodelay(true);
    let Ok(Ok(mut tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(client)).await
    else {
        return;
    };
    let Ok(Ok(mut server)) =
        tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(upstream)).await
    else {
        return;
    };
    let _ = server.set_nodelay(true);
    // Either side's end is passed on (TLS close_notify towards the client).
    let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::TlsConnector;
    use tokio_rustls::rustls::pki_types::ServerName;
    use tokio_rustls::rustls::{ClientConfig, RootCertStore};

    use super::*;

    /// A client that trusts `ca` only.
    fn connector(ca: &PrivateCa) -> TlsConnector {
        let mut roots = RootCertStore::empty();
        roots.add(ca.ca_der()).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        TlsConnector::from(Arc::new(config))
    }

    /// An upstream that answers each connection with `hello ` and what it read, then closes.
    async fn echo_upstream() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut read = [0u8; 64];
                    let n = stream.read(&mut read).await.unwrap();
                    stream.write_all(b"hello ").await.unwrap();
                    stream.write_all(&read[..n]).await.unwrap();
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn forwards_for_every_name_and_fails_a_client_that_does_not_trust_the_ca() {
        let ca = PrivateCa::new();
        let terminator = TlsTerminator::start(&ca, echo_upstream().await).await;
        assert!(
            terminator
                .https_url("/mcp")
                .starts_with("https://127.0.0.1:")
        );
        assert!(terminator.https_url("/mcp").ends_with("/mcp"));
        for name in LEAF_NAMES {
            let tcp = TcpStream::connect(terminator.addr()).await.unwrap();
            let server_name = ServerName::try_from(name).unwrap().to_owned();
            let mut tls = connector(&ca).connect(server_name, tcp).await.unwrap();
            tls.write_all(name.as_bytes()).await.unwrap();
            let mut reply = String::new();
            tls.read_to_string(&mut reply).await.unwrap();
            assert_eq!(reply, format!("hello {name}"));
        }

        let other = PrivateCa::new();
        let tcp = TcpStream::connect(terminator.addr()).await.unwrap();
        let error = connector(&other)
            .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
            .await
            .unwrap_err();
        let error = error
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>());
        assert_eq!(
            error,
            Some(&rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer
            ))
        );
    }

    #[tokio::test]
    async fn writes_ca_pem_and_stops_listening_on_drop() {
        let ca = PrivateCa::new();
        let dir = std::env::temp_dir().join(format!("shoal-testkit-tls-{}", std::process::id()));
        let path = ca.write_ca_pem(&dir);
        assert_eq!(path, dir.join("ca.pem"));
        let pem = std::fs::read_to_string(&path).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
        assert_eq!(pem, ca.ca_pem());
        std::fs::remove_dir_all(&dir).unwrap();

        let terminator = TlsTerminator::start(&ca, echo_upstream().await).await;
        let addr = terminator.addr();
        drop(terminator);
        // The abort lands at the accept task's next poll: wait for the port to close.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(addr).await.is_ok() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{addr} still accepts connections after drop"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
