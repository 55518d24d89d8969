//! Outbound TLS trusts the system's store, or the CA file `SSL_CERT_FILE` names: an issuer
//! whose certificate comes from a private CA (made here with rcgen) is reachable by
//! `shoal serve --auth jwt` when that CA is in `SSL_CERT_FILE`, and refused at start, with an
//! error that names the certificate, when it is not.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use axum::Json;
use axum::Router;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use shoal_testkit::tls::{PrivateCa, TlsTerminator};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use common::{SHOAL, free_port, post, start_with_env};

const KID: &str = "private-ca-key";

/// An OpenID provider's metadata and JWKS on plain HTTP, behind a TLS terminator whose
/// certificate the private CA signed; tokens signed with its Ed25519 key.
struct Issuer {
    url: String,
    key: EncodingKey,
    _tls: TlsTerminator,
    server: JoinHandle<()>,
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Issuer {
    async fn start(ca: &PrivateCa) -> Issuer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream: SocketAddr = listener.local_addr().unwrap();
        let tls = TlsTerminator::start(ca, upstream).await;
        let url = tls.https_url("");
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let jwks = json!({"keys": [{
            "kty": "OKP", "crv": "Ed25519", "kid": KID, "use": "sig", "alg": "EdDSA",
            "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
        }]});
        let metadata = json!({"issuer": url, "jwks_uri": format!("{url}/jwks")});
        let app = Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || std::future::ready(Json(metadata.clone()))),
            )
            .route("/jwks", get(move || std::future::ready(Json(jwks.clone()))));
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Issuer {
            url,
            key: EncodingKey::from_ed_der(pkcs8.as_ref()),
            _tls: tls,
            server,
        }
    }

    /// An access token for `audience`, valid for five minutes.
    fn token(&self, audience: &str) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(KID.into());
        let claims = json!({
            "iss": self.url, "sub": "alice", "aud": audience, "iat": now, "exp": now + 300,
        });
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuer_of_a_private_ca_in_ssl_cert_file_is_trusted() {
    let ca = PrivateCa::new();
    let dir = tempdir("trusted");
    let ca_file = ca.write_ca_pem(&dir);
    let issuer = Issuer::start(&ca).await;
    let server = start_with_env(
        &["--auth", "jwt", "--issuer", &issuer.url],
        &[("SSL_CERT_FILE", ca_file.to_str().unwrap())],
    )
    .await;

    // The keys came over TLS too: a token they verify is accepted, one they do not is not.
    let client = reqwest::Client::new();
    let initialize = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "trust-roots", "version": "1"}}});
    let accepted = post(&client, &server.mcp, None, initialize.clone())
        .bearer_auth(issuer.token(&server.mcp))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 200, "{:?}", accepted.text().await);

    let other = Issuer::start(&ca).await;
    let refused = post(&client, &server.mcp, None, initialize)
        .bearer_auth(other.token(&server.mcp))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuer_of_an_untrusted_ca_is_refused_at_start_naming_the_certificate() {
    let ca = PrivateCa::new();
    let issuer = Issuer::start(&ca).await;
    // Without SSL_CERT_FILE (the system's store does not know the CA), and with the file of
    // another private CA.
    let stranger = PrivateCa::new();
    let dir = tempdir("untrusted");
    let stranger_file = stranger.write_ca_pem(&dir);
    for ssl_cert_file in [None, Some(stranger_file.to_str().unwrap())] {
        let mut shoal = Command::new(SHOAL);
        shoal
            .args(["serve", "--auth", "jwt", "--issuer", &issuer.url])
            .args(["--listen", &format!("127.0.0.1:{}", free_port())])
            .args(["--admin-listen", &format!("127.0.0.1:{}", free_port())])
            .env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR");
        if let Some(file) = ssl_cert_file {
            shoal.env("SSL_CERT_FILE", file);
        }
        let output = tokio::task::spawn_blocking(move || shoal.output())
            .await
            .unwrap()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "SSL_CERT_FILE={ssl_cert_file:?}: started: {stderr}"
        );
        assert!(
            stderr.contains(&issuer.url)
                && stderr.contains("TLS certificate is not trusted")
                && stderr.contains("UnknownIssuer")
                && stderr.contains("SSL_CERT_FILE"),
            "SSL_CERT_FILE={ssl_cert_file:?}: {stderr}"
        );
    }
}

/// A fresh directory under the system's temporary directory.
fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "shoal-trust-roots-{name}-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
